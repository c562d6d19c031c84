#!/usr/bin/env bash
# Decode-speed benchmark: runs `qbrief generate` greedily several times per (model, threads,
# kernels) and prints a table of median prefill and decode tokens/s. Not a test.
#   tools/bench-decode.sh [MODEL] [TOKENS] [RUNS]
set -euo pipefail
QBRIEF=${QBRIEF:-bin/qbrief}
MODEL=${1:-../shared/models/stories260K-gguf/stories260K.gguf}
TOKENS=${2:-200}
RUNS=${3:-9}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "model: $MODEL, an 11-token prompt then $TOKENS generated tokens, median of $RUNS runs"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
printf '%-8s %-8s %14s %14s\n' threads isa "prefill tok/s" "decode tok/s"
for threads in 1 2; do
    for isa in ref avx2 avx512; do
        "$QBRIEF" generate "$MODEL" -n 1 --isa "$isa" >/dev/null 2>&1 || continue
        dec=() pre=()
        for _ in $(seq "$RUNS"); do
            err=$("$QBRIEF" generate "$MODEL" -p "Once upon a time, there was a little girl" -n "$TOKENS" \
                --threads "$threads" --isa "$isa" 2>&1 >/dev/null)
            pre+=("$(sed -n 's/^prefill:.*(\([0-9.]*\) tokens\/s).*/\1/p' <<<"$err")")
            dec+=("$(sed -n 's/^decode:.*(\([0-9.]*\) tokens\/s).*/\1/p' <<<"$err")")
        done
        printf '%-8s %-8s %14s %14s\n' "$threads" "$isa" "$(printf '%s\n' "${pre[@]}" | median)" \
            "$(printf '%s\n' "${dec[@]}" | median)"
    done
done
