#!/usr/bin/env bash
# qbrief brief by a user who may only read the store (issue 19, item 5): a 0444 store in a
# read-only folder is read (SQLite could not create its -shm), a 0444 store in a folder
# anyone may write is read without leaving a -wal or -shm owned by the reader, a reader that
# may write leaves none either, and an empty file is named as such. As root the reader is
# user nobody (setpriv), since root may write anything.
. "$(dirname "$0")/lib.sh"

G=$SHARED/models/stories260K-gguf/stories260K.gguf
S=examples/suites/tiny.csv
if [ ! -r "$G" ]; then
    skip "read-only brief" "../shared/models not found"
    finish
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    if ! command -v setpriv >/dev/null; then
        skip "read-only brief" "root without setpriv cannot read as another user"
        finish
        exit 0
    fi
    AS_READER="setpriv --reuid=65534 --regid=65534 --clear-groups"
else
    AS_READER=
fi
Q=$(cd "$(dirname "$QBRIEF")" && pwd)/$(basename "$QBRIEF")
D=$TMP/store
mkdir -p "$D" "$TMP/briefs" && chmod 755 "$TMP" && chmod 777 "$TMP/briefs"
if ! "$QBRIEF" run --model "$G" --suite "$S" --configs f32,w4g32 --db "$D/r.db" --name ro \
    --no-latency --no-memory --quiet >"$TMP/run.out" 2>"$TMP/run.err"; then
    fail "run for the brief" "$(tail -2 "$TMP/run.err")"
    finish
    exit 0
fi
cp "$D/r.db" "$TMP/copy.db" # the expected brief, from a copy: r.db stays as the run left it
"$QBRIEF" brief --db "$TMP/copy.db" -o "$TMP/want.json" >/dev/null 2>&1
left() { ls "$D" | grep -E -- '-(wal|shm)$' | tr '\n' ' '; }
[ -z "$(left)" ] && ok "the run leaves no -wal or -shm" || fail "the run leaves no -wal or -shm" "$(ls -l "$D")"

chmod 444 "$D/r.db" && chmod 555 "$D"
expect_exit "brief of a 0444 store in a read-only folder" 0 $AS_READER "$Q" brief --db "$D/r.db" -o "$TMP/briefs/a.json"
cmp -s "$TMP/briefs/a.json" "$TMP/want.json" && ok "it reads what a writer reads" || fail "it reads what a writer reads"
chmod 777 "$D"
expect_exit "brief of a 0444 store in a folder anyone may write" 0 $AS_READER "$Q" brief --db "$D/r.db" -o "$TMP/briefs/b.json"
[ -z "$(left)" ] && ok "the reader leaves no -wal or -shm" || fail "the reader leaves no -wal or -shm" "$(ls -l "$D")"
chmod 644 "$D/r.db" && chmod 755 "$D"
expect_exit "brief by a reader that may write" 0 "$QBRIEF" brief --db "$D/r.db" -o "$TMP/briefs/c.json"
[ -z "$(left)" ] && ok "nor does a reader that may write" || fail "nor does a reader that may write" "$(ls -l "$D")"
: >"$TMP/empty.db"
expect_exit "brief of an empty file" 1 "$QBRIEF" brief --db "$TMP/empty.db" -o "$TMP/briefs/e.json"
grep -q "empty.db': an empty file, not a qbrief results database" "$TMP/err" && ok "an empty file is named as such" || fail "an empty file is named as such" "$(cat "$TMP/err")"
chmod -R u+w "$D"
finish
