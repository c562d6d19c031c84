#!/usr/bin/env bash
# `qbrief slurm` on a real one-node Slurm cluster (scripts/slurm-local.sh, started here when
# it is not running and stopped again if this test started it): the demo plan in 4 shards
# as a job array, merged and briefed by the dependent job, gives the answer of the
# one-process run (`make demo`), and its brief's JSON export equals that run's except for
# timings (given the same latency samples, as the cheaper-first order of configs that tie on
# memory follows latency). A failed array task is reported by the merge job. An unknown partition is refused before anything is written.
# Skipped where the Slurm packages are absent or the user is not root. Set QB_SKIP_SLURM=1
# to skip it (CI runs it in the plain pass only: it takes minutes, not sanitizer coverage).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/shard_lib.sh"

why=""
if [ -n "${QB_SKIP_SLURM:-}" ]; then
    why="QB_SKIP_SLURM is set"
elif [ "$(id -u)" -ne 0 ]; then
    why="needs root to start a local Slurm cluster"
else
    for b in munged slurmctld slurmd sbatch sinfo squeue; do
        command -v "$b" >/dev/null 2>&1 || { why="'$b' is not installed (scripts/install-deps.sh installs slurmctld slurmd slurm-client munge)"; break; }
    done
fi
[ -n "$why" ] || [ -d "$DEMO" ] || why="$DEMO not found"
if [ -n "$why" ]; then
    skip "qbrief slurm on a local cluster" "$why"
    finish
    exit 0
fi
started=0
if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
    if scripts/slurm-local.sh start >"$TMP/start.out" 2>&1; then
        started=1
    else
        fail "local Slurm cluster starts" "$(cat "$TMP/start.out")"
        finish
        exit 0
    fi
fi
trap '[ "$started" = 0 ] || scripts/slurm-local.sh stop >/dev/null 2>&1; rm -rf "$TMP"' EXIT
P=examples/demo/plan.yaml
Q=$PWD/$QBRIEF

expect_exit "unknown partition" 1 "$Q" slurm "$P" --shards 2 --partition no-such-partition --dir "$TMP/bad"
grep -q "no-such-partition': no such partition" "$TMP/err" && [ ! -e "$TMP/bad" ] &&
    ok "unknown partition: clear message, nothing written" || fail "unknown partition message" "$(cat "$TMP/err")"

# wait_job ID: until the job has left the queue (at most 30 minutes)
wait_job() {
    local waited=0
    while [ -n "$1" ] && squeue -h -j "$1" 2>/dev/null | grep -q . && [ "$waited" -lt 1800 ]; do
        sleep 2
        waited=$((waited + 2))
    done
}

# a failed array task: shard 1's store is in the way (a folder), so task 1 fails at once;
# the merge job names it and its log, still merges shard 0 and writes a brief that counts
# the missing units, and fails itself
small_plan "$TMP"
F=$TMP/fail
mkdir -p "$F/shard-1.db"
expect_exit "qbrief slurm submits a small plan in 2 shards" 0 "$Q" slurm "$TMP/plan.yaml" --shards 2 --dir "$F" -o "$F/brief.md"
wait_job "$(sed -n 's/^merge job \([0-9]*\).*/\1/p' "$TMP/out")"
if grep -q "shard 1 of 2 failed (1); log: $F/shard-1.log" "$F/merge.log" &&
    grep -q "not a regular file" "$F/shard-1.log" && grep -q "1 task(s) failed" "$F/merge.log" &&
    grep -q "(config, item) results are missing" "$F/brief.md" 2>/dev/null; then
    ok "the merge job reports a failed task and briefs what there is"
else
    fail "the merge job reports a failed task" "$(cat "$F/merge.log" 2>/dev/null | head -8)"
fi

D=$TMP/sl
expect_exit "qbrief slurm submits the demo in 4 shards" 0 "$Q" slurm "$P" --shards 4 --dir "$D" --db "$D/demo.db" -o "$D/brief.pdf"
cat "$TMP/out"
merge=$(sed -n 's/^merge job \([0-9]*\).*/\1/p' "$TMP/out")
# the reference meanwhile: the one-process run of `make demo`, into a store of its own
"$QBRIEF" run "$P" --db "$TMP/one.db" --quiet 2>"$TMP/one.err" || fail "one-process demo run" "$(tail -3 "$TMP/one.err")"
wait_job "$merge"
if [ -s "$D/brief.pdf" ] && grep -q "brief in $D/brief.pdf" "$D/merge.log" 2>/dev/null; then
    ok "the merge job wrote brief.pdf"
else
    fail "the merge job wrote brief.pdf" "$(tail -5 "$D/merge.log" 2>/dev/null) $(tail -3 "$D"/shard-*.log 2>/dev/null)"
fi
# 1200 items x 15 configs: 13, and the 2 mixed configs of the plan's sensitivity scan
grep -q "run 'demo': 18000 of 18000 units, 0 missing; 4 of 4 shards" "$D/merge.log" &&
    ok "all demo units merged" || fail "all demo units merged" "$(grep "run 'demo'" "$D/merge.log")"
"$QBRIEF" brief --db "$D/demo.db" -o "$TMP/slraw.json" >/dev/null 2>&1
cp "$D/demo.db" "$TMP/slt.db" && same_timings "$TMP/one.db" "$TMP/slt.db"
"$QBRIEF" brief --db "$TMP/slt.db" -o "$TMP/sl.json" >/dev/null 2>&1
"$QBRIEF" brief --db "$TMP/one.db" -o "$TMP/one.json" >/dev/null 2>&1
json_norm "$TMP/sl.json" >"$TMP/sl.norm"
json_norm "$TMP/one.json" >"$TMP/one.norm"
a=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["single_config"])' "$TMP/one.json" 2>/dev/null)
b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["single_config"])' "$TMP/slraw.json" 2>/dev/null)
if [ -n "$a" ] && [ "$a" = "$b" ] && cmp -s "$TMP/one.norm" "$TMP/sl.norm"; then
    ok "same answer as the one-process demo ($a), brief JSON equal except timings"
else
    fail "same answer as the one-process demo" "'$a' vs '$b': $(diff "$TMP/one.norm" "$TMP/sl.norm" | head -8)"
fi
finish
