#!/usr/bin/env bash
# QB_ISA_MAX (kernels/dispatch.h) makes the CPU look older: the kernel tests must then report
# the hidden instruction sets' variants as skipped, with the reason, never as passed; --isa
# cannot force a hidden set, the default choice stays below the cap, and a bad value is
# refused. Runs test_quad_form (fast, one line per instruction set) from the build folder.
. "$(dirname "$0")/lib.sh"

T=${QB_BUILD:-build}/tbin/kernels/test_quad_form
# count FILE WORD: the number after WORD (passed, failed, skipped) in FILE's summary line
count() { grep '^# passed' "$1" | tail -1 | sed -n "s/.*$2 \([0-9]*\).*/\1/p"; }

if [ ! -x "$T" ]; then
    skip "kernel tests under QB_ISA_MAX" "$T not built (make test builds it)"
else
    QB_ISA_MAX=avx2 "$T" >"$TMP/avx2" 2>&1
    n=$(grep -c '/avx512' "$TMP/avx2")
    s=$(grep -c '^skip .*/avx512: CPU lacks AVX-512$' "$TMP/avx2")
    [ "$n" -gt 0 ] && [ "$s" -eq "$n" ] && ok "QB_ISA_MAX=avx2: every avx512 variant skipped, with the reason" \
        || fail "QB_ISA_MAX=avx2: every avx512 variant skipped, with the reason" "$(grep avx512 "$TMP/avx2")"
    [ "$(count "$TMP/avx2" skipped)" -eq "$s" ] && [ "$(count "$TMP/avx2" failed)" -eq 0 ] \
        && ok "QB_ISA_MAX=avx2: the summary counts them as skipped" \
        || fail "QB_ISA_MAX=avx2: the summary counts them as skipped" "$(tail -1 "$TMP/avx2")"
    if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
        grep -q '^ok   .*/avx2$' "$TMP/avx2" && ! grep -q '/avx2: ' "$TMP/avx2" \
            && ok "QB_ISA_MAX=avx2: avx2 variants still run" || fail "QB_ISA_MAX=avx2: avx2 variants still run"
    fi
    QB_ISA_MAX=ref "$T" >"$TMP/ref" 2>&1
    grep -q '^skip .*/avx2: CPU lacks AVX2$' "$TMP/ref" && ! grep -q '^ok   .*/avx' "$TMP/ref" \
        && [ "$(count "$TMP/ref" passed)" -gt 0 ] \
        && ok "QB_ISA_MAX=ref: only the reference runs" || fail "QB_ISA_MAX=ref: only the reference runs" "$(cat "$TMP/ref")"
    "$T" >"$TMP/all" 2>&1
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
        [ "$(count "$TMP/all" skipped)" -eq 0 ] && ok "without QB_ISA_MAX nothing is skipped on this CPU" \
            || fail "without QB_ISA_MAX nothing is skipped on this CPU" "$(grep '^skip' "$TMP/all")"
    fi
fi

expect_exit "--isa avx512 under QB_ISA_MAX=avx2 is refused" 1 env QB_ISA_MAX=avx2 "$QBRIEF" generate "$TMP/none.bin" --isa avx512
grep -q "QB_ISA_MAX" "$TMP/err" && ok "the refusal names QB_ISA_MAX" || fail "the refusal names QB_ISA_MAX" "$(cat "$TMP/err")"
expect_exit "a bad QB_ISA_MAX is refused" 1 env QB_ISA_MAX=sse9 "$QBRIEF" generate "$TMP/none.bin"
grep -q "QB_ISA_MAX='sse9'" "$TMP/err" && ok "the bad QB_ISA_MAX is named" || fail "the bad QB_ISA_MAX is named" "$(cat "$TMP/err")"

S=$SHARED/models/stories260K
if [ -r "$S/stories260K.bin" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    expect_exit "generate under QB_ISA_MAX=avx2" 0 env QB_ISA_MAX=avx2 "$QBRIEF" generate "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -n 8
    grep -q "avx2 kernels" "$TMP/err" && ok "the default choice stays below the cap" || fail "the default choice stays below the cap" "$(cat "$TMP/err")"
else
    skip "generate under QB_ISA_MAX=avx2" "needs ../shared/models/stories260K and an AVX2 CPU"
fi
finish
