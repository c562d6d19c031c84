#!/usr/bin/env bash
# Evaluation throughput of `qbrief run`: an OLD and a NEW qbrief binary run interleaved
# (old, new, new, old, ...) ROUNDS times on the same generated suite (N perplexity items of
# ~150 tokens, N choice items with 4 options, tools/make-eval-suite.py) and model, per
# config (baseline = the config itself, no latency or memory probe). Prints one table:
# setup seconds (load + quantize + everything before the first item: wall less item time),
# perplexity and choice items/s (as the run prints them: items / seconds spent in them),
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
trap 'rm -rf "$TMP"' EXIT
python3 "$(dirname "$0")/make-eval-suite.py" "$TMP/suite.csv" "$N"

# one run: prints "setup ppl_rate choice_rate wall"
one() {
    local bin=$1 cfg=$2 t0 t1 err=$TMP/err
    rm -f "$TMP/r.db"
    t0=$(date +%s.%N)
    "$bin" run --model "$MODEL" --suite "$TMP/suite.csv" --configs "$cfg" --baseline "$cfg" \
        --no-latency --no-memory --threads "$THREADS" --db "$TMP/r.db" 2>"$err" >/dev/null ||
        { echo "bench-eval: $bin failed:" >&2; tail -5 "$err" >&2; exit 1; }
    t1=$(date +%s.%N)
    local pr cr
    pr=$(sed -n 's/.*perplexity \([0-9.]*\) items\/s.*/\1/p' "$err" | tail -1)
    cr=$(sed -n 's/.*choice \([0-9.]*\) items\/s.*/\1/p' "$err" | tail -1)
    awk -v t0="$t0" -v t1="$t1" -v n="$N" -v pr="$pr" -v cr="$cr" 'BEGIN {
        w = t1 - t0; items = (pr > 0 ? n / pr : 0) + (cr > 0 ? n / cr : 0)
        printf "%.2f %s %s %.2f\n", w - items, pr, cr, w }'
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
