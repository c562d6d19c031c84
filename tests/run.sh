#!/usr/bin/env bash
# Runs every test binary given on the command line, then the CLI tests (tests/cli/*.sh),
# and prints the closing line "N passed, N failed" (plus skips). Exit 1 if any failed.
set -u
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0 broken=0
tally() { # reads a test's output on stdin, adds its summary line
    local out line
    out=$(cat)
    printf '%s\n' "$out" | grep -v '^ok ' | grep -v '^# passed'
    line=$(printf '%s\n' "$out" | grep '^# passed' | tail -1)
    if [ -z "$line" ]; then
        echo "FAIL $1: ended without a summary (crashed?)"
        broken=$((broken + 1))
        return
    fi
    set -- $line
    pass=$((pass + $3)) fail=$((fail + $5)) skip=$((skip + $7))
}
for t in "$@"; do
    echo "== $t"
    tally "$t" < <("$t" 2>&1)
done
for t in tests/cli/test_*.sh; do
    [ -e "$t" ] || continue
    echo "== $t"
    tally "$t" < <(QBRIEF=${QBRIEF:-bin/qbrief} bash "$t" 2>&1)
done
fail=$((fail + broken))
echo "$pass passed, $fail failed${skip:+, $skip skipped}"
[ "$fail" -eq 0 ]
