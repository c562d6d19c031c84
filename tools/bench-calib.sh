#!/bin/sh
# Peak memory of calibrated quantization on a random ~1B Llama (docs/quality.md, "Memory"):
#   tools/bench-calib.sh [SEQS LEN [CONFIG...]]     (defaults: 4 256 w4g128-gptq w4g128-awq)
# Writes build/rand-1b.gguf once (tools/make-random-model.py, TinyLlama-1.1B shapes, 2.2 GB)
# and tokenizes the demo's calibration text with the demo's tokenizer (ids < 32000, so valid
# for the random model's vocabulary). Needs about 9 GB of memory and, on 2 cores, 10-20
# minutes per config.
set -e
cd "$(dirname "$0")/.."
make -s build/tools/bench-calib
[ -f build/rand-1b.gguf ] || python3 tools/make-random-model.py build/rand-1b.gguf --preset 1b
SEQS=${1:-4}
LEN=${2:-256}
[ $# -ge 2 ] && shift 2 || shift $#
[ $# -gt 0 ] || set -- w4g128-gptq w4g128-awq
build/tools/bench-calib build/rand-1b.gguf examples/demo/qbrief-demo/tokenizer.json \
    examples/demo/calib.txt "$SEQS" "$LEN" "$@"
