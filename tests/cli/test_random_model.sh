#!/usr/bin/env bash
# tools/make-random-model.py (issue 23): the tiny preset written as GGUF Q4_0, Q8_0 and F16
# with the Llama 2 vocabulary embedded loads in qbrief with its own tokenizer and generates;
# the Q4_0 file holds its matrices as q4_0.
. "$(dirname "$0")/lib.sh"

V=$SHARED/models/llama2-tokenizer/tokenizer.model
if [ -r "$V" ]; then
    for t in q4_0 q8_0 f16; do
        expect_exit "write tiny $t" 0 python3 tools/make-random-model.py "$TMP/m-$t.gguf" \
            --preset tiny --type "$t" --vocab "$V"
        expect_exit "inspect tiny $t" 0 "$QBRIEF" inspect "$TMP/m-$t.gguf"
        grep -Eq "tokenizer: *sentencepiece( bpe)?, 32000 tokens, bos 1, eos 2" "$TMP/out" &&
            ok "tiny $t carries the Llama 2 vocabulary" ||
            fail "tiny $t carries the Llama 2 vocabulary" "$(cat "$TMP/out")"
        expect_exit "generate from tiny $t" 0 "$QBRIEF" generate "$TMP/m-$t.gguf" -p "Hello" -n 4
    done
    python3 - "$TMP/m-q4_0.gguf" <<'PY' && ok "tiny q4_0 stores q4_0 matrices" || fail "tiny q4_0 stores q4_0 matrices"
import struct, sys
b = open(sys.argv[1], "rb").read(1 << 22)
# tensor infos: name, n_dims, dims, type (2 = q4_0), offset; find blk.0.attn_q.weight's type
i = b.index(b"blk.0.attn_q.weight") + len("blk.0.attn_q.weight")
nd = struct.unpack_from("<I", b, i)[0]
t = struct.unpack_from("<I", b, i + 4 + 8 * nd)[0]
sys.exit(0 if t == 2 else 1)
PY
else
    skip "random GGUF with the Llama 2 vocabulary" "../shared/models not found"
fi
finish
