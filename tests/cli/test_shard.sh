#!/usr/bin/env bash
# Sharded runs (issue 21) on a small plan over the demo model: three shards merged equal the
# one-process run item for item (also with a shard killed part way and resumed), and the
# brief's JSON export equals it but for timings (given
# the same latency samples: configs that tie on memory are ordered by latency); the
# merge is idempotent, merges a partial set and says what is missing; bad input (another
# plan, a shard twice, a missing or corrupt shard, the output as input, a shard's store
# reused for another shard, no sbatch) is refused with a message, a non-zero exit and the
# existing files untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shard_lib.sh"

if [ ! -d "$DEMO" ]; then
    skip "sharded runs" "$DEMO not found"
    finish
    exit 0
fi
small_plan "$TMP"
P=$TMP/plan.yaml
sum() { sha256sum "$1" | cut -d' ' -f1; }

"$QBRIEF" run "$P" --db "$TMP/one.db" --quiet 2>"$TMP/err" || fail "one-process run" "$(cat "$TMP/err")"
for i in 0 1 2; do
    expect_exit "shard $i/3 runs" 0 "$QBRIEF" run "$P" --shard "$i/3" --db "$TMP/s$i.db" --quiet
done
expect_exit "merge of three shards" 0 "$QBRIEF" merge "$TMP/m.db" "$TMP/s0.db" "$TMP/s1.db" "$TMP/s2.db"
grep -q "run 'small': 144 of 144 units, 0 missing; 3 of 3 shards" "$TMP/out" &&
    ok "merge reports every unit" || fail "merge reports every unit" "$(cat "$TMP/out")"

# each shard holds only its own units, and together they are all of them, once
n0=$(results "$TMP/s0.db" | wc -l) n1=$(results "$TMP/s1.db" | wc -l) n2=$(results "$TMP/s2.db" | wc -l)
if [ $((n0 + n1 + n2)) -eq 144 ] && [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] && [ "$n2" -gt 0 ]; then
    ok "shards split the units ($n0 + $n1 + $n2)"
else
    fail "shards split the units" "$n0 + $n1 + $n2"
fi
results "$TMP/one.db" >"$TMP/one.txt"
results "$TMP/m.db" >"$TMP/m.txt"
if [ -s "$TMP/one.txt" ] && cmp -s "$TMP/one.txt" "$TMP/m.txt"; then
    ok "merged item results equal the one-process run's"
else
    fail "merged item results equal the one-process run's" "$(diff "$TMP/one.txt" "$TMP/m.txt" | head -5)"
fi
# only the probe shard (0, the default) measured latency and memory
lat() { sql "$1" "SELECT count(*) FROM latency_samples" "SELECT count(*) FROM memory" | tr '\n' ' '; }
if [ "$(lat "$TMP/s1.db")" = "0 0 " ] && [ "$(lat "$TMP/m.db")" = "$(lat "$TMP/one.db")" ] &&
    [ "$(sql "$TMP/m.db" "SELECT group_concat(shard_index) FROM shards WHERE probe = 1 AND host IS NOT NULL")" = 0 ]; then
    ok "latency and memory measured once, by the probe shard, whose host is recorded"
else
    fail "latency and memory measured once" "s1: $(lat "$TMP/s1.db") m: $(lat "$TMP/m.db") one: $(lat "$TMP/one.db")"
fi
"$QBRIEF" brief --db "$TMP/one.db" -o "$TMP/one.json" >/dev/null 2>&1
cp "$TMP/m.db" "$TMP/mt.db" && same_timings "$TMP/one.db" "$TMP/mt.db"
"$QBRIEF" brief --db "$TMP/mt.db" -o "$TMP/m.json" >/dev/null 2>&1
json_norm "$TMP/one.json" >"$TMP/one.norm" && json_norm "$TMP/m.json" >"$TMP/m.norm"
if [ -s "$TMP/one.norm" ] && cmp -s "$TMP/one.norm" "$TMP/m.norm"; then
    ok "brief JSON equal except timings"
else
    fail "brief JSON equal except timings" "$(diff "$TMP/one.norm" "$TMP/m.norm" | head -8)"
fi

# idempotent: the same shard again, in a later merge, changes no result
before=$(results "$TMP/m.db" | sha256sum)
expect_exit "merging a shard again" 0 "$QBRIEF" merge "$TMP/m.db" "$TMP/s1.db"
grep -q "merged before" "$TMP/err" && [ "$(results "$TMP/m.db" | sha256sum)" = "$before" ] &&
    [ "$(sql "$TMP/m.db" "SELECT count(*) FROM shards")" = 3 ] &&
    ok "merging a shard again changes nothing" || fail "merging a shard again changes nothing" "$(cat "$TMP/err")"
# a shard resumed after it finished has nothing new; its record (token) is kept
expect_exit "a finished shard resumes to nothing" 0 "$QBRIEF" run "$P" --shard 1/3 --db "$TMP/s1.db" --quiet
expect_exit "and merges again unchanged" 0 "$QBRIEF" merge "$TMP/m.db" "$TMP/s1.db"
[ "$(results "$TMP/m.db" | sha256sum)" = "$before" ] && ok "resumed shard merges unchanged" ||
    fail "resumed shard merges unchanged"

# shards: {probe: job}: no shard measures; the probe job measures latency and memory only
{ cat "$P"; echo "shards: {probe: job}"; } >"$TMP/plan-probe.yaml"
for i in 0 1; do
    "$QBRIEF" run "$TMP/plan-probe.yaml" --shard "$i/2" --db "$TMP/j$i.db" --quiet 2>/dev/null
done
expect_exit "the probe job runs" 0 "$QBRIEF" run "$TMP/plan-probe.yaml" --probe --db "$TMP/jp.db" --quiet
expect_exit "shards and the probe job merge" 0 "$QBRIEF" merge "$TMP/jm.db" "$TMP/j0.db" "$TMP/j1.db" "$TMP/jp.db"
if [ "$(lat "$TMP/j0.db")$(lat "$TMP/j1.db")" = "0 0 0 0 " ] && [ "$(results "$TMP/jp.db" | wc -l)" = 0 ] &&
    [ "$(lat "$TMP/jm.db")" = "$(lat "$TMP/one.db")" ] && grep -q "the probe job" "$TMP/err" &&
    results "$TMP/jm.db" | cmp -s - "$TMP/one.txt"; then
    ok "probe: job measures latency and memory once, the shards none"
else
    fail "probe: job" "j0 $(lat "$TMP/j0.db") jp $(lat "$TMP/jp.db") jm $(lat "$TMP/jm.db"): $(cat "$TMP/err")"
fi

# a shard killed (SIGKILL) part way resumes like any run: the same command finishes it, and
# the merge equals the one-process run
"$QBRIEF" run "$P" --shard 1/3 --db "$TMP/k1.db" --quiet 2>/dev/null &
kpid=$!
# SIGKILL once two units are committed (polled every few milliseconds, read-only)
had=$(python3 - "$kpid" "$TMP/k1.db" <<'PY'
import os, signal, sqlite3, sys, time
pid, db = int(sys.argv[1]), sys.argv[2]
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        print(-1)
        break
    try:
        n = sqlite3.connect("file:%s?mode=ro" % db, uri=True).execute(
            "SELECT count(*) FROM item_results").fetchone()[0]
    except sqlite3.Error:
        n = 0
    if n >= 2:
        os.kill(pid, signal.SIGKILL)
        print(n)
        break
    time.sleep(0.003)
PY
)
wait "$kpid" 2>/dev/null
if [ "$had" -ge 0 ]; then
    had=$(sql "$TMP/k1.db" "SELECT count(*) FROM item_results")
    expect_exit "a killed shard resumes" 0 "$QBRIEF" run "$P" --shard 1/3 --db "$TMP/k1.db" --quiet
    "$QBRIEF" merge "$TMP/k.db" "$TMP/s0.db" "$TMP/k1.db" "$TMP/s2.db" >/dev/null 2>&1
    [ "$had" -lt "$n1" ] && results "$TMP/k.db" | cmp -s - "$TMP/one.txt" &&
        ok "killed at $had of $n1 units, resumed and merged: equal to the one-process run" ||
        fail "killed shard resumed and merged" "had $had of $n1"
else
    skip "a killed shard resumes" "the shard finished before it could be killed"
fi

# a partial set: merged, the missing units counted, the brief says so; completed later
expect_exit "partial merge" 0 "$QBRIEF" merge "$TMP/p.db" "$TMP/s0.db" "$TMP/s2.db"
grep -q "144 units, $n1 missing; 2 of 3 shards (not merged: 1)" "$TMP/out" &&
    ok "partial merge reports missing units and shards" || fail "partial merge reports missing units" "$(cat "$TMP/out")"
"$QBRIEF" brief --db "$TMP/p.db" -o "$TMP/p.md" >/dev/null 2>&1
grep -q "$n1 (config, item) results are missing" "$TMP/p.md" && ok "the brief of a partial merge counts the missing" ||
    fail "the brief of a partial merge counts the missing" "$(grep -i missing "$TMP/p.md" | head -3)"
expect_exit "completing a partial merge" 0 "$QBRIEF" merge "$TMP/p.db" "$TMP/s1.db"
results "$TMP/p.db" | cmp -s - "$TMP/one.txt" && ok "partial merge completed equals the one-process run" ||
    fail "partial merge completed equals the one-process run"

# rows are copied column by column: a column that a later schema adds (here by hand, to the
# output and to one shard) travels with its values
cp "$TMP/s0.db" "$TMP/g0.db"
sql "$TMP/g0.db" "ALTER TABLE latency_samples ADD COLUMN measured_on TEXT" \
    "UPDATE latency_samples SET measured_on = 'host-a'"
"$QBRIEF" merge "$TMP/g.db" "$TMP/s1.db" >/dev/null 2>&1
sql "$TMP/g.db" "ALTER TABLE latency_samples ADD COLUMN measured_on TEXT"
expect_exit "merge with a column the schema does not know" 0 "$QBRIEF" merge "$TMP/g.db" "$TMP/g0.db"
n_lat=$(sql "$TMP/s0.db" "SELECT count(*) FROM latency_samples")
[ "$n_lat" -gt 0 ] && [ "$(sql "$TMP/g.db" "SELECT count(*) FROM latency_samples WHERE measured_on = 'host-a'")" = "$n_lat" ] &&
    ok "an added column is carried with its values" || fail "an added column is carried" "$n_lat"

# bad input: each refused, the output untouched
cp "$TMP/m.db" "$TMP/keep.db"
keep=$(sum "$TMP/keep.db")
refused() { # NAME PATTERN CMD...: exit 1, the message matches, keep.db unchanged, no temp file left
    local name=$1 pat=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$pat" "$TMP/err" && [ "$(sum "$TMP/keep.db")" = "$keep" ] &&
        ! ls "$TMP"/keep.db.merge-* >/dev/null 2>&1; then
        ok "$name"
    else
        fail "$name" "exit $rc: $(head -c 300 "$TMP/err")"
    fi
}
sed 's/w2g32\]/w3g64]/' "$P" >"$TMP/plan2.yaml"
cp "$TMP/suite.csv" "$TMP/suite.csv.bak" 2>/dev/null
"$QBRIEF" run "$TMP/plan2.yaml" --shard 1/3 --db "$TMP/other.db" --quiet 2>/dev/null
refused "a shard of another plan" "another plan" "$QBRIEF" merge "$TMP/keep.db" "$TMP/other.db"
rm -f "$TMP/fresh.db"
refused "shards of two plans" "another plan" "$QBRIEF" merge "$TMP/fresh.db" "$TMP/s0.db" "$TMP/other.db"
[ ! -e "$TMP/fresh.db" ] && ok "no output written when refused" || fail "no output written when refused"
cp "$TMP/s1.db" "$TMP/s1copy.db"
refused "a shard twice (a copy)" "the same shard" "$QBRIEF" merge "$TMP/fresh.db" "$TMP/s1.db" "$TMP/s1copy.db"
refused "a shard twice (one file)" "given twice" "$QBRIEF" merge "$TMP/fresh.db" "$TMP/s1.db" "$TMP/s1.db"
refused "a missing shard" "no-such.db" "$QBRIEF" merge "$TMP/keep.db" "$TMP/s0.db" "$TMP/no-such.db"
# a shard whose file was cut short (a copy that stopped half way) and scribbled on
cp "$TMP/s2.db" "$TMP/bad.db"
truncate -s $(($(stat -c %s "$TMP/bad.db") / 2)) "$TMP/bad.db"
printf 'garbage garbage garbage' | dd of="$TMP/bad.db" bs=1 seek=4096 conv=notrunc 2>/dev/null
refused "a corrupt shard" "bad.db" "$QBRIEF" merge "$TMP/keep.db" "$TMP/bad.db"
printf 'not a database at all' >"$TMP/text.db"
refused "a file that is not a store" "not a qbrief results database" "$QBRIEF" merge "$TMP/keep.db" "$TMP/text.db"
refused "a one-process store as a shard" "not a shard" "$QBRIEF" merge "$TMP/keep.db" "$TMP/one.db"
cp "$TMP/one.db" "$TMP/plain.db"
keep_plain=$(sum "$TMP/plain.db")
"$QBRIEF" merge "$TMP/plain.db" "$TMP/s0.db" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "not merged shards" "$TMP/err" && [ "$(sum "$TMP/plain.db")" = "$keep_plain" ] &&
    ok "a one-process store as the output" || fail "a one-process store as the output" "$(cat "$TMP/err")"
refused "the output as a shard" "the output itself" "$QBRIEF" merge "$TMP/keep.db" "$TMP/keep.db"
# shards of different counts overlap
"$QBRIEF" run "$P" --shard 0/2 --db "$TMP/h0.db" --quiet --no-latency --no-memory 2>/dev/null
refused "shards of another count" "the other shards are of 3" "$QBRIEF" merge "$TMP/keep.db" "$TMP/h0.db"
# a shard's store is its own
s1sum=$(sum "$TMP/s1.db")
expect_exit "another shard into a shard's store" 1 "$QBRIEF" run "$P" --shard 2/3 --db "$TMP/s1.db" --quiet
grep -q "holds shard 1/3" "$TMP/err" && [ "$(results "$TMP/s1.db" | wc -l)" = "$n1" ] &&
    ok "a shard's store refuses another shard" || fail "a shard's store refuses another shard" "$(cat "$TMP/err")"
expect_exit "--shard out of range" 2 "$QBRIEF" run "$P" --shard 3/3
grep -q "out of range" "$TMP/err" && ok "--shard 3/3 says out of range" || fail "--shard 3/3 message" "$(cat "$TMP/err")"
expect_exit "--shard auto outside an array" 2 env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX "$QBRIEF" run "$P" --shard auto
grep -q "SLURM_ARRAY_TASK_ID" "$TMP/err" && ok "--shard auto names the variables" || fail "--shard auto message" "$(cat "$TMP/err")"

# qbrief slurm without sbatch: refused before anything is written; --dry-run prints the jobs
mkdir -p "$TMP/nobin"
expect_exit "slurm without sbatch" 1 env PATH="$TMP/nobin" "$PWD/$QBRIEF" slurm "$P" --shards 2 --dir "$TMP/sl"
grep -q "sbatch is not on PATH" "$TMP/err" && [ ! -e "$TMP/sl" ] && ok "no sbatch: clear message, nothing written" ||
    fail "no sbatch: clear message, nothing written" "$(cat "$TMP/err")"
expect_exit "slurm --dry-run" 0 env PATH="$TMP/nobin" "$PWD/$QBRIEF" slurm "$P" --shards 2 --dir "$TMP/sl" --dry-run
grep -q "^#SBATCH --array=0-1" "$TMP/out" && grep -q -- "--shard auto" "$TMP/out" && grep -q "afterany" "$TMP/out" &&
    [ ! -e "$TMP/sl" ] && ok "dry run prints the array and the merge job" || fail "dry run prints the jobs" "$(head -5 "$TMP/out")"
expect_exit "slurm --shards 0" 2 "$QBRIEF" slurm "$P" --shards 0
finish
