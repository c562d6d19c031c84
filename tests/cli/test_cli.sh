#!/usr/bin/env bash
# The command line: help, exit statuses (0 ok, 1 error, 2 usage), and generate reproducing
# llama2.c's greedy reference text exactly from the .bin and the GGUF copy.
. "$(dirname "$0")/lib.sh"

expect_exit "help exits 0" 0 "$QBRIEF" --help
grep -q "generate" "$TMP/out" && ok "help lists generate" || fail "help lists generate"
expect_exit "no command is a usage error" 2 "$QBRIEF"
expect_exit "unknown command is a usage error" 2 "$QBRIEF" frobnicate
grep -q "'frobnicate' is not a command" "$TMP/err" && ok "unknown command named" || fail "unknown command named"
for c in inspect generate tokenize; do
    expect_exit "$c --help exits 0" 0 "$QBRIEF" "$c" --help
    grep -q "usage: qbrief $c" "$TMP/out" && ok "$c --help prints usage" || fail "$c --help prints usage"
    expect_exit "$c with a bad option is a usage error" 2 "$QBRIEF" "$c" --no-such-option x
done
expect_exit "generate without a model is a usage error" 2 "$QBRIEF" generate
expect_exit "generate -n junk is a usage error" 2 "$QBRIEF" generate x -n junk
expect_exit "missing model file is an error" 1 "$QBRIEF" inspect "$TMP/nope.gguf"
grep -q "nope.gguf" "$TMP/err" && ok "missing model file named" || fail "missing model file named"
printf 'GGUF\3\0\0\0' >"$TMP/trunc.gguf"
expect_exit "truncated gguf is an error" 1 "$QBRIEF" inspect "$TMP/trunc.gguf"
grep -q "^qbrief: '.*trunc.gguf'" "$TMP/err" && ok "truncated gguf named" || fail "truncated gguf named" "$(cat "$TMP/err")"

S=$SHARED/models/stories260K
G=$SHARED/models/stories260K-gguf/stories260K.gguf
if [ -r "$S/stories260K.bin" ] && [ -r "$S/expected_greedy_200steps.txt" ] && [ -r "$G" ]; then
    expect_exit "generate .bin" 0 "$QBRIEF" generate "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -n 200
    cmp -s "$TMP/out" "$S/expected_greedy_200steps.txt" && ok "generate .bin prints the reference text exactly" \
        || fail "generate .bin prints the reference text exactly" "$(diff "$TMP/out" "$S/expected_greedy_200steps.txt" | head -5)"
    grep -q "decode:.*tokens/s" "$TMP/err" && ok "generate reports decode speed" || fail "generate reports decode speed"
    expect_exit "generate gguf" 0 "$QBRIEF" generate "$G" -n 200 --threads 1
    cmp -s "$TMP/out" "$S/expected_greedy_200steps.txt" && ok "generate gguf prints the reference text exactly" \
        || fail "generate gguf prints the reference text exactly" "$(diff "$TMP/out" "$S/expected_greedy_200steps.txt" | head -5)"
    expect_exit "generate v1 .bin" 0 "$QBRIEF" generate "$S/stories260K_v1.bin" --tokenizer "$S/tok512.bin" -n 200 --isa ref
    cmp -s "$TMP/out" "$S/expected_greedy_200steps.txt" && ok "generate v1 (ref kernels) prints the reference text" \
        || fail "generate v1 (ref kernels) prints the reference text"
    expect_exit "generate with a prompt and sampling" 0 "$QBRIEF" generate "$G" -p "Once upon a time" -n 40 --temp 0.8 --top-p 0.9 --seed 7
    grep -q "^Once upon a time" "$TMP/out" && ok "prompt is echoed" || fail "prompt is echoed" "$(head -c 200 "$TMP/out")"
    cp "$TMP/out" "$TMP/sample1"
    "$QBRIEF" generate "$G" -p "Once upon a time" -n 40 --temp 0.8 --top-p 0.9 --seed 7 >"$TMP/sample2" 2>/dev/null
    cmp -s "$TMP/sample1" "$TMP/sample2" && ok "sampling is reproducible with a seed" || fail "sampling is reproducible with a seed"
    expect_exit "bad isa is a usage error" 2 "$QBRIEF" generate "$G" --isa sse9
    expect_exit "inspect gguf" 0 "$QBRIEF" inspect "$G"
    grep -q "layers: *5" "$TMP/out" && grep -q "blk.0.attn_q.weight" "$TMP/out" && ok "inspect shows layers and tensors" \
        || fail "inspect shows layers and tensors"
    expect_exit "inspect .bin" 0 "$QBRIEF" inspect "$S/stories260K.bin"
    grep -q "kv heads 4" "$TMP/out" && ok "inspect .bin finds the dimensions" || fail "inspect .bin finds the dimensions"
    expect_exit "tokenize" 0 "$QBRIEF" tokenize "$G" "Once upon a time"
    grep -q "decoded: Once upon a time" "$TMP/out" && ok "tokenize round-trips" || fail "tokenize round-trips" "$(cat "$TMP/out")"
    expect_exit "tokenize a bare tokenizer.bin" 0 "$QBRIEF" tokenize "$S/tok512.bin" "Lily"
    expect_exit "tokenize --ids" 0 "$QBRIEF" tokenize "$G" --ids "1 403 407"
    expect_exit "tokenize --ids out of range" 1 "$QBRIEF" tokenize "$G" --ids "1 99999"
    head -c 5000 "$S/stories260K.bin" >"$TMP/short.bin"
    expect_exit "truncated .bin is an error" 1 "$QBRIEF" generate "$TMP/short.bin" --tokenizer "$S/tok512.bin"
    grep -q "short.bin" "$TMP/err" && ok "truncated .bin named" || fail "truncated .bin named"
else
    skip "generate and inspect on stories260K" "../shared/models not found"
fi
finish
