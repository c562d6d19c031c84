#!/usr/bin/env bash
# A/B decode benchmark: two qbrief binaries run interleaved (A, B, A, B ...) ROUNDS times per
# (model, config), single-threaded, greedy; prints the median decode tokens/s of each and B/A.
# Not a test.  tools/bench-ab.sh OLD_QBRIEF NEW_QBRIEF [ROUNDS] [TOKENS]
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-5} TOKENS=${4:-400}
PROMPT="Once upon a time, there was a little girl"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
decode() { "$@" 2>&1 >/dev/null | sed -n 's/^decode:.*(\([0-9.]*\) tokens\/s).*/\1/p'; }
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), 1 thread," \
    "$ROUNDS interleaved rounds, -n $TOKENS, median decode tok/s"
printf '%-12s %-7s %10s %10s %7s\n' model config A B B/A
for m in stories260K demo; do
    case $m in
    stories260K) args=(../shared/models/stories260K/stories260K.bin
        --tokenizer ../shared/models/stories260K/tok512.bin) ;;
    demo) args=(examples/demo/qbrief-demo) ;;
    esac
    [ -e "${args[0]}" ] || { echo "$m: ${args[0]} absent, skipped"; continue; }
    for c in f32 w3g64 w2g32; do
        ra=() rb=()
        for _ in $(seq "$ROUNDS"); do
            ra+=("$(decode "$A" generate "${args[@]}" -p "$PROMPT" -n "$TOKENS" --threads 1 --config "$c")")
            rb+=("$(decode "$B" generate "${args[@]}" -p "$PROMPT" -n "$TOKENS" --threads 1 --config "$c")")
        done
        ma=$(printf '%s\n' "${ra[@]}" | median) mb=$(printf '%s\n' "${rb[@]}" | median)
        printf '%-12s %-7s %10s %10s %7.2f\n' "$m" "$c" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
    done
done
