#!/usr/bin/env bash
# qbrief run: a run exits 0 and resumes to nothing new; bad specs, malformed suites and a run
# name reused with another suite are refused, the first two before the database exists.
. "$(dirname "$0")/lib.sh"

G=$SHARED/models/stories260K-gguf/stories260K.gguf
S=examples/suites/tiny.csv
expect_exit "run --help exits 0" 0 "$QBRIEF" run --help
grep -q "usage: qbrief run" "$TMP/out" && ok "run --help prints usage" || fail "run --help prints usage"
expect_exit "run without arguments is a usage error" 2 "$QBRIEF" run
if [ -r "$G" ]; then
    expect_exit "run" 0 "$QBRIEF" run --model "$G" --suite "$S" --configs f32,w4g32,w2g32 --db "$TMP/a.db" --no-latency --no-memory
    grep -q "33 evaluated" "$TMP/err" && ok "run evaluates 3 configs x 11 items" || fail "run evaluates 3 configs x 11 items" "$(tail -2 "$TMP/err")"
    expect_exit "rerun" 0 "$QBRIEF" run --model "$G" --suite "$S" --configs f32,w4g32,w2g32 --db "$TMP/a.db" --no-latency --no-memory
    grep -q "0 evaluated, 33 already done" "$TMP/err" && ok "rerun evaluates nothing new" || fail "rerun evaluates nothing new" "$(tail -1 "$TMP/err")"
    expect_exit "bad spec" 2 "$QBRIEF" run --model "$G" --suite "$S" --configs f32,w5g7 --db "$TMP/b.db" --no-latency
    [ ! -e "$TMP/b.db" ] && ok "bad spec creates no database" || fail "bad spec creates no database"
    printf 'id,slice,kind,prompt\nx,s,frobnicate,hello\n' >"$TMP/bad.csv"
    expect_exit "malformed suite" 1 "$QBRIEF" run --model "$G" --suite "$TMP/bad.csv" --configs f32 --db "$TMP/c.db" --no-latency
    grep -q "bad.csv" "$TMP/err" && ok "malformed suite named" || fail "malformed suite named" "$(cat "$TMP/err")"
    [ ! -e "$TMP/c.db" ] && ok "malformed suite creates no database" || fail "malformed suite creates no database"
    head -6 "$S" >"$TMP/other.csv"
    expect_exit "run name reused with another suite" 1 "$QBRIEF" run --model "$G" --suite "$TMP/other.csv" --configs f32 --db "$TMP/a.db" --name stories260K-tiny --no-latency --no-memory
    expect_exit "latency and memory" 0 "$QBRIEF" run --model "$G" --suite "$TMP/other.csv" --configs w8 --db "$TMP/d.db" --quiet
else
    skip "run on stories260K" "../shared/models not found"
fi
finish
