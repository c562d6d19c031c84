#!/usr/bin/env bash
# Evaluation throughput of `qbrief run`: an OLD and a NEW qbrief binary run interleaved
# (old, new, new, old, ...) ROUNDS times on the same generated suite (N perplexity items of
# ~150 tokens, N choice items with 4 options, tools/make-eval-suite.py) and model, per
# config (baseline = the config itself, no latency or memory probe). Prints one table:
# setup seconds (start to the end of quantizing: loading, checking, converting, quantizing),
# perplexity and choice items/s (items / seconds from the end of quantizing or the last
# perplexity item to the last item of the kind, as stamped on the run's progress lines),
# total wall seconds, medians over the rounds, old and new and new/old.  Not a test.
#
#   QB_BASE_QBRIEF=/path/to/old/qbrief tools/bench-eval.sh [ROUNDS] [N] [CONFIGS...]
#
# Environment: QB_BENCH_DIR (default /tmp/qb-bench) holding rand-1b-f16.gguf, or QB_BENCH_MODEL;
# QB_NEW_QBRIEF (default bin/qbrief); QB_BENCH_THREADS (default 2). Configs default to bf16.
set -euo pipefail
OLD=${QB_BASE_QBRIEF:?set QB_BASE_QBRIEF to the old qbrief binary}
NEW=${QB_NEW_QBRIEF:-bin/qbrief}
ROUNDS=${1:-1} N=${2:-6}
shift $(($# > 2 ? 2 : $#))
CONFIGS=("$@")
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(bf16)
MODEL=${QB_BENCH_MODEL:-${QB_BENCH_DIR:-/tmp/qb-bench}/rand-1b-f16.gguf}
THREADS=${QB_BENCH_THREADS:-2}
[ -e "$MODEL" ] || { echo "bench-eval: model '$MODEL' not found" >&2; exit 1; }
TMP=$(mktemp -d /tmp/bench-eval.XXXXXX)
trap '[ -n "${QB_BENCH_KEEP:-}" ] || rm -rf "$TMP"' EXIT
python3 "$(dirname "$0")/make-eval-suite.py" "$TMP/suite.csv" "$N"

# one run: prints "setup ppl_rate choice_rate wall". Every stderr line is stamped as it
# arrives (QB_PROGRESS_EVERY_S=0.000001: a line per phase report and per item): setup is
# the start to the end of quantizing ("quantizing, 100%"), perplexity the time from there to
# the Nth item's line (the suite's perplexity items come first), choice from there to the
# 2Nth; so the rates count only item time and need nothing from the binary but its lines.
one() {
    local bin=$1 cfg=$2 err=$TMP/err
    rm -f "$TMP/r.db"
    QB_PROGRESS_EVERY_S=0.000001 "$bin" run --model "$MODEL" --suite "$TMP/suite.csv" \
        --configs "$cfg" --baseline "$cfg" --no-latency --no-memory --threads "$THREADS" \
        --db "$TMP/r.db" 2>&1 >/dev/null | python3 -c '
import sys, time
t0 = time.monotonic()
for line in iter(sys.stdin.readline, ""):
    print("%.3f %s" % (time.monotonic() - t0, line), end="")
' >"$err"
    grep -q " evaluated, " "$err" || { echo "bench-eval: $bin failed:" >&2; tail -5 "$err" >&2; exit 1; }
    awk -v n="$N" '
        / quantizing, 100% / && !hq { q = $1; hq = 1 }
        match($0, /: [0-9]+\/[0-9]+ items/) {
            split(substr($0, RSTART + 2), a, "/"); k = a[1] + 0
            if (k == n && !hp) { p = $1; hp = 1 }
            if (k == 2 * n && !hc) { c = $1; hc = 1 }
        }
        { last = $1 }
        END {
            if (!hq || !hp || !hc) { print "bench-eval: lines missing" > "/dev/stderr"; exit 1 }
            printf "%.2f %.3f %.3f %.2f\n", q, n / (p - q), n / (c - p), last
        }' "$err"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "model $(basename "$MODEL"), $THREADS threads, $N perplexity + $N choice items," \
    "$ROUNDS interleaved rounds (medians), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %-22s %9s %9s %7s\n' config measure old new new/old
for cfg in "${CONFIGS[@]}"; do
    : >"$TMP/old" && : >"$TMP/new"
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            one "$OLD" "$cfg" >>"$TMP/old"; one "$NEW" "$cfg" >>"$TMP/new"
        else
            one "$NEW" "$cfg" >>"$TMP/new"; one "$OLD" "$cfg" >>"$TMP/old"
        fi
    done
    col=1
    for what in "setup (load+quantize) s" "perplexity items/s" "choice items/s" "total wall s"; do
        o=$(cut -d' ' -f$col "$TMP/old" | median) n=$(cut -d' ' -f$col "$TMP/new" | median)
        printf '%-14s %-22s %9s %9s %7.2f\n' "$cfg" "$what" "$o" "$n" "$(echo "$n / $o" | bc -l)"
        col=$((col + 1))
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
