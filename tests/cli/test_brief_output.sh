#!/usr/bin/env bash
# qbrief brief -o: the output path is treated the way careful tools treat it (issue 19). A FIFO,
# a device or a symlink to one is refused (-o - is stdout); a symlink is written through, not
# replaced; a dangling one is refused; a read-only file, or another user's, is left alone; the
# old file's permissions stay; a brief killed or cut short by a full disk leaves the old file
# and no temporary, and says "File too large"/"No space left", not a libharu error number. A run
# with only its baseline measured is refused in words; a suite in UTF-16 is named as such.
. "$(dirname "$0")/lib.sh"

M=$SHARED/models/stories260K
S=examples/suites/tiny.csv
notmp() { # NAME DIR: no OUT.tmpXXXXXX file or folder left in DIR
    if ls -A "$2" | grep -q '[.]tmp......$'; then fail "$1" "$(ls -A "$2")"; else ok "$1"; fi
}

if [ ! -r "$M/stories260K.bin" ]; then
    skip "brief output paths" "../shared/models not found"
    finish
    exit 0
fi
if ! "$QBRIEF" run --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --suite "$S" \
    --configs f32,w8a8,w2g32 --db "$TMP/r.db" --name tiny --no-latency --quiet >"$TMP/out" 2>"$TMP/err"; then
    fail "run for the brief" "$(tail -3 "$TMP/err")"
    finish
    exit 0
fi
QB=$(cd "$(dirname "$QBRIEF")" && pwd)/$(basename "$QBRIEF") # callable from another folder
B=("$QB" brief --db "$TMP/r.db")

# a suite saved as UTF-16 is named as such (before: "1:1: field contains a NUL byte")
if command -v iconv >/dev/null; then
    printf 'id,slice,kind,prompt,target,choices,metric,max_tokens\na,s,generate,Hi,Tom,,contains,8\n' |
        iconv -f UTF-8 -t UTF-16LE | { printf '\377\376'; cat; } >"$TMP/u16.csv"
    expect_exit "UTF-16 suite refused" 1 "$QBRIEF" run --model "$M/stories260K.bin" \
        --tokenizer "$M/tok512.bin" --suite "$TMP/u16.csv" --configs f32 --db "$TMP/u.db" \
        --no-latency --no-memory --quiet
    grep -q "u16.csv': the file is UTF-16 (little-endian); save it as UTF-8" "$TMP/err" &&
        ok "UTF-16 suite named" || fail "UTF-16 suite named" "$(cat "$TMP/err")"
else
    skip "UTF-16 suite" "iconv not installed"
fi

mkdir "$TMP/o"
O=$TMP/o

# -o - is stdout; the summary line goes to stderr; no file named '-'
(cd "$O" && "${B[@]}" -o - --format json >"$TMP/stdout.json" 2>"$TMP/err")
"${B[@]}" -o "$O/file.json" >/dev/null 2>&1
cmp -s "$TMP/stdout.json" "$O/file.json" && ok "-o - writes the brief to stdout" || fail "-o - writes the brief to stdout"
[ ! -e "$O/-" ] && ok "-o - creates no file '-'" || fail "-o - creates no file '-'"
grep -q "^stdout: written" "$TMP/err" && ok "-o - says so on stderr" || fail "-o - says so on stderr" "$(cat "$TMP/err")"
rm -f "$O/file.json"

# a FIFO (like /dev/null, a device) is refused, and stays a FIFO; so is a symlink to one
mkfifo "$O/fifo"
expect_exit "a FIFO is refused" 1 "${B[@]}" -o "$O/fifo" --format json
grep -q "'$O/fifo': it is a FIFO, not a regular file (-o - writes to stdout)" "$TMP/err" &&
    ok "a FIFO named as such" || fail "a FIFO named as such" "$(cat "$TMP/err")"
[ -p "$O/fifo" ] && ok "the FIFO stays a FIFO" || fail "the FIFO stays a FIFO" "$(ls -l "$O")"
ln -s fifo "$O/tofifo.json"
expect_exit "a symlink to a FIFO is refused" 1 "${B[@]}" -o "$O/tofifo.json"
[ -L "$O/tofifo.json" ] && ok "the symlink to the FIFO stays" || fail "the symlink to the FIFO stays"
expect_exit "a folder is refused" 1 "${B[@]}" -o "$O" --format json

# a symlink is written through: the link stays, the file it points to gets the brief
echo old >"$O/target.json"
ln -s target.json "$O/link.json"
expect_exit "brief through a symlink" 0 "${B[@]}" -o "$O/link.json"
[ -L "$O/link.json" ] && ok "the symlink stays a symlink" || fail "the symlink stays a symlink" "$(ls -l "$O")"
grep -q '"run": "tiny"' "$O/target.json" && ok "the file it points to holds the brief" || fail "the file it points to holds the brief"
ln -s nowhere.json "$O/dangling.json"
expect_exit "a dangling symlink is refused" 1 "${B[@]}" -o "$O/dangling.json"
grep -q "symbolic link to 'nowhere.json', which does not exist" "$TMP/err" &&
    ok "a dangling symlink named as such" || fail "a dangling symlink named as such" "$(cat "$TMP/err")"
[ -L "$O/dangling.json" ] && [ ! -e "$O/nowhere.json" ] && ok "the dangling symlink is left alone" ||
    fail "the dangling symlink is left alone"

# permissions: 0600 stays 0600; a read-only file is not replaced
echo old >"$O/private.json"
chmod 600 "$O/private.json"
expect_exit "brief over a 0600 file" 0 "${B[@]}" -o "$O/private.json"
[ "$(stat -c %a "$O/private.json")" = 600 ] && ok "0600 stays 0600" || fail "0600 stays 0600" "$(stat -c %a "$O/private.json")"
echo old >"$O/ro.json"
chmod 444 "$O/ro.json"
expect_exit "a read-only file is refused" 1 "${B[@]}" -o "$O/ro.json"
[ "$(cat "$O/ro.json")" = old ] && ok "the read-only file is untouched" || fail "the read-only file is untouched"
if [ "$(id -u)" = 0 ]; then # only root can make a file of another user
    echo old >"$O/theirs.json"
    chmod 644 "$O/theirs.json"
    chown 65534 "$O/theirs.json"
    expect_exit "another user's file is refused" 1 "${B[@]}" -o "$O/theirs.json"
    grep -q "belongs to another user" "$TMP/err" && ok "another user's file named as such" ||
        fail "another user's file named as such" "$(cat "$TMP/err")"
    [ "$(cat "$O/theirs.json")" = old ] && [ "$(stat -c %u "$O/theirs.json")" = 65534 ] &&
        ok "another user's file is untouched" || fail "another user's file is untouched"
else
    skip "another user's file" "needs root to chown a file"
fi
notmp "refusals leave no temporaries" "$O"

# a file size limit: the write fails (EFBIG) -> a plain message, the old PDF intact, no temporary
echo old >"$O/big.pdf"
(trap '' XFSZ; ulimit -f 64; exec "${B[@]}" -o "$O/big.pdf") >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && ok "a full disk fails the PDF" || fail "a full disk fails the PDF" "exit $rc"
grep -q "cannot write '$O/big.pdf': File too large" "$TMP/err" && ok "a full disk reads as such" ||
    fail "a full disk reads as such" "$(cat "$TMP/err")"
[ "$(cat "$O/big.pdf")" = old ] && ok "a full disk leaves the old PDF" || fail "a full disk leaves the old PDF"
notmp "a full disk leaves no temporary" "$O"
# the same limit as a signal (SIGXFSZ kills): nothing left behind either (the inner shell
# reports the kill, to /dev/null). 48 KiB lets the store's 32 KiB -shm file be made and stops
# the Markdown brief at its first chart.
bash -c 'ulimit -f 64; "$@"; true' _ "${B[@]}" -o "$O/big.pdf" >/dev/null 2>&1
[ "$(cat "$O/big.pdf")" = old ] && ok "a killed brief leaves the old PDF" || fail "a killed brief leaves the old PDF"
notmp "a killed brief leaves no temporary" "$O"
bash -c 'ulimit -f 48; "$@"; true' _ "${B[@]}" -o "$O/big.md" >/dev/null 2>&1
[ ! -e "$O/big.md" ] && [ ! -e "$O/big_files" ] && ok "a killed Markdown brief leaves nothing" ||
    fail "a killed Markdown brief leaves nothing" "$(ls -A "$O")"
notmp "a killed Markdown brief leaves no temporary" "$O"

# a run with only its baseline: refused in words, not "N configs" it never measured
"$QBRIEF" run --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --suite "$S" \
    --configs f32 --db "$TMP/base.db" --name base --no-latency --no-memory --quiet >/dev/null 2>&1
expect_exit "a baseline-only brief is refused" 1 "$QBRIEF" brief --db "$TMP/base.db" -o "$O/base.md"
grep -q "run 'base' measured only its baseline 'f32'" "$TMP/err" && ok "a baseline-only run named as such" ||
    fail "a baseline-only run named as such" "$(cat "$TMP/err")"
expect_exit "a baseline-only run still exports JSON" 0 "$QBRIEF" brief --db "$TMP/base.db" -o "$O/base.json"
finish
