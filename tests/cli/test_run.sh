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
    B=$SHARED/models/stories260K/stories260K.bin
    mkdir -p "$TMP/copy" && ln -s "$(pwd)/$B" "$TMP/copy/stories260K.bin"
    cat >"$TMP/two.yaml" <<PLAN
title: three models, two with one base name
models: [$(pwd)/$G, $(pwd)/$B, $TMP/copy/stories260K.bin]
tokenizer: $(pwd)/$SHARED/models/stories260K/tok512.bin
suite: $(pwd)/$S
configs: [f32, w4g32]
name: two
db: two.db
PLAN
    expect_exit "plan with several models" 0 "$QBRIEF" run "$TMP/two.yaml" --no-latency --no-memory
    grep -q "model 3 of 3" "$TMP/err" && ok "one run per model" || fail "one run per model" "$(tail -3 "$TMP/err")"
    expect_exit "several models resume" 0 "$QBRIEF" run "$TMP/two.yaml" --no-latency --no-memory
    [ "$(grep -c "0 evaluated, 22 already done" "$TMP/err")" = 3 ] && ok "several models resume to nothing new" || fail "several models resume to nothing new" "$(cat "$TMP/err")"
    grep -q "run 'two-stories260K-3'" "$TMP/err" && ok "models with one base name get distinct runs" || fail "models with one base name get distinct runs" "$(cat "$TMP/err")"
    # an item whose regex exceeds PCRE2's match limit fails alone: an error row, the run goes on
    printf 'id,slice,kind,prompt,target,choices,metric,max_tokens,stop\nbad,s,generate,Once upon a time,"(\\w+\\s?)*$",,regex,24,\ngood,s,generate,Once upon a time,there,,contains,8,\n' >"$TMP/err.csv"
    expect_exit "a failing item does not stop the run" 0 "$QBRIEF" run --model "$G" --suite "$TMP/err.csv" --configs w4g32 --db "$TMP/e.db" --no-latency --no-memory
    grep -q "item 'bad' failed: .*match limit" "$TMP/err" && ok "failing item warned" || fail "failing item warned" "$(cat "$TMP/err")"
    rows=$(python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(\"SELECT group_concat(i.item_key||':'||x.status, ' ') FROM (SELECT * FROM item_results ORDER BY config_id, item_id) x JOIN items i ON i.id = x.item_id\").fetchone()[0])" "$TMP/e.db")
    [ "$rows" = "bad:error good:ok bad:skipped good:ok" ] && ok "error and skipped rows recorded" || fail "error and skipped rows recorded" "$rows"
    expect_exit "latency and memory" 0 "$QBRIEF" run --model "$G" --suite "$TMP/other.csv" --configs w8 --db "$TMP/d.db" --quiet
else
    skip "run on stories260K" "../shared/models not found"
fi
finish
