#!/usr/bin/env bash
# qbrief export (collector/cli/cmd_export.c): usage errors, a refusal that names the nearest
# config and writes nothing, a calibrated config without --calib, and an export that
# `qbrief generate` runs to the same text as the source in the same config.
. "$(dirname "$0")/lib.sh"

D=examples/demo/qbrief-demo
expect_exit "export: no --config" 2 "$QBRIEF" export "$D" -o "$TMP/a.gguf"
expect_exit "export: no -o" 2 "$QBRIEF" export "$D" --config w4g32-sym
expect_exit "export: bad spec" 2 "$QBRIEF" export "$D" --config w5g32 -o "$TMP/a.gguf"
expect_exit "export: -o a directory" 2 "$QBRIEF" export "$D" --config f32 -o "$TMP"
expect_exit "export: w3g64 refused" 1 "$QBRIEF" export "$D" --config w3g64 -o "$TMP/a.gguf"
grep -q "nearest config that exports exactly: w4g64 (Q4_1)" "$TMP/err" && ok "export: names the nearest" ||
    fail "export: names the nearest" "$(cat "$TMP/err")"
[ ! -e "$TMP/a.gguf" ] && [ ! -e "$TMP/a.gguf.tmp" ] && ok "export: refusal writes nothing" ||
    fail "export: refusal writes nothing"
expect_exit "export: gptq without --calib" 1 "$QBRIEF" export "$D" --config w4g32-gptq -o "$TMP/a.gguf"
grep -q "needs calibration data" "$TMP/err" && ok "export: asks for --calib" || fail "export: asks for --calib" "$(cat "$TMP/err")"
expect_exit "export: w4g128" 0 "$QBRIEF" export "$D" --config w4g128 -o "$TMP/a.gguf"
grep -q "in config w4g128" "$TMP/out" && ok "export: says what it wrote" || fail "export: says what it wrote" "$(cat "$TMP/out")"
P="Q: What is 17 + 25?"
"$QBRIEF" generate "$D" --config w4g128 -p "$P" -n 24 --threads 1 >"$TMP/src.txt" 2>/dev/null
"$QBRIEF" generate "$TMP/a.gguf" --config w4g128 -p "$P" -n 24 --threads 1 >"$TMP/exp.txt" 2>/dev/null
[ -s "$TMP/src.txt" ] && cmp -s "$TMP/src.txt" "$TMP/exp.txt" && ok "export: generates the same text" ||
    fail "export: generates the same text" "$(head -c 200 "$TMP/src.txt") vs $(head -c 200 "$TMP/exp.txt")"
expect_exit "export: a8 note" 0 "$QBRIEF" export "$D" --config w4g32-sym-a8 -o "$TMP/b.gguf"
grep -q "^note: config w4g32-sym-a8 quantizes activations" "$TMP/err" && ok "export: a8 note said" ||
    fail "export: a8 note said" "$(cat "$TMP/err")"
finish
