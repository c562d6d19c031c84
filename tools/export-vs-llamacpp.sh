#!/usr/bin/env bash
# export-vs-llamacpp: does llama.cpp run what qbrief measured? For each (model, config):
# `qbrief export` writes the GGUF, qbrief runs that file greedily (build/tools/greedy-ids) and
# llama.cpp runs the same file (node-llama-cpp@3.21.1's prebuilt CPU library, installed with
# --ignore-scripts into a scratch folder outside the repository; neither node nor llama.cpp is
# a dependency of qbrief). One line per pair: whether llama.cpp tokenizes the prompt as qbrief
# does, how many of the N greedy tokens agree (and whether the texts are equal), and the share
# of positions of qbrief's sequence where llama.cpp's argmax is qbrief's.
#
#   tools/export-vs-llamacpp.sh                  # stories260K (when ../shared/models has it)
#                                                # and the demo model, 64 tokens
#   N=128 SCRATCH=/tmp/llcpp OUT=/tmp/x tools/export-vs-llamacpp.sh
#
# llama.cpp multiplies Q4_0/Q4_1/Q8_0 weights by activations it rounds to 8 bits per block of
# 32, qbrief by f32 activations, so quantized configs may part where two tokens are nearly
# tied; f32 exports run the same arithmetic up to summation order.
set -u
cd "$(dirname "$0")/.."
N=${N:-64}
SCRATCH=${SCRATCH:-/tmp/qbrief-llamacpp}
OUT=${OUT:-out/export-vs-llamacpp}
STORIES=../shared/models/stories260K/stories260K.bin
DEMO=examples/demo/qbrief-demo
mkdir -p "$OUT" "$SCRATCH"
command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "export-vs-llamacpp: needs node and npm" >&2; exit 1; }
make -s all build/tools/greedy-ids >/dev/null || exit 1
if [ ! -d "$SCRATCH/node_modules/node-llama-cpp" ]; then
    echo "installing node-llama-cpp@3.21.1 into $SCRATCH (prebuilt llama.cpp, no build)" >&2
    (cd "$SCRATCH" && npm i -E node-llama-cpp@3.21.1 --ignore-scripts --no-audit --no-fund \
        >npm.log 2>&1) || { echo "export-vs-llamacpp: npm failed, see $SCRATCH/npm.log" >&2; exit 1; }
fi

printf '%-14s %-22s %-9s %-16s %-12s %s\n' model config tokenize "greedy agree" "top-1 agree" "same text"
fail=0
run() { # NAME MODEL CONFIG PROMPT
    local name=$1 model=$2 cfg=$3 prompt=$4 f="$OUT/$1-$3.gguf"
    if ! bin/qbrief export "$model" --config "$cfg" -o "$f" >/dev/null 2>"$OUT/err"; then
        printf '%-14s %-22s refused: %s\n' "$name" "$cfg" "$(cat "$OUT/err")"; return
    fi
    build/tools/greedy-ids "$f" "$cfg" "$N" "$prompt" >"$OUT/q.json" || { fail=1; return; }
    NODE_PATH="$SCRATCH/node_modules" node tools/llamacpp-greedy.mjs "$f" "$prompt" \
        <"$OUT/q.json" >"$OUT/l.json" 2>"$OUT/err" ||
        { printf '%-14s %-22s llama.cpp failed: %s\n' "$name" "$cfg" "$(tail -3 "$OUT/err")"; fail=1; return; }
    python3 - "$OUT/q.json" "$OUT/l.json" "$name" "$cfg" <<'PY'
import json, sys
q, l = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
g = sum(a == b for a, b in zip(q["ids"], l["ids"]))
first = next((i for i, (a, b) in enumerate(zip(q["ids"], l["ids"])) if a != b), None)
t = sum(a == b for a, b in zip(q["top1"], l["top1"]))
print("%-14s %-22s %-9s %-16s %-12s %s" % (sys.argv[3], sys.argv[4],
      "same" if q["prompt_ids"] == l["prompt_ids"] else "DIFFERS",
      "%d/%d%s" % (g, len(q["ids"]), "" if first is None else " (from %d)" % first),
      "%.1f%%" % (100.0 * t / len(q["top1"])), "yes" if q["text"] == l["text"] else "no"))
PY
}
if [ -f "$STORIES" ]; then
    for c in f32 w4g32-sym+down=f16 w4g32+down=f16 w4g32-sym; do
        run stories260K "$STORIES" "$c" "Once upon a time"
    done
else
    echo "stories260K: skipped, $STORIES not found"
fi
for c in f32 bf16 w4g32-sym w4g128-sym w4g32 w4g128 w8; do
    run demo "$DEMO" "$c" "Q: What is 17 + 25?
A:"
done
exit $fail
