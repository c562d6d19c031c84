#!/usr/bin/env bash
# Inputs that are not files (issue 19, items 4 and 7): a FIFO or a device given where a
# file is expected (suite, model, tokenizer, calibration text, a plan and its calibration:
# key) is refused at once with a message naming it, instead of waiting for a writer or
# hashing /dev/zero forever; a suite over the 256 MiB limit is refused before it is read.
# Every command runs under a 20 s timeout, so a hang fails (exit 124) instead of waiting.
. "$(dirname "$0")/lib.sh"

G=$SHARED/models/stories260K-gguf/stories260K.gguf
S=examples/suites/tiny.csv
if [ ! -r "$G" ]; then
    skip "inputs that are not files" "../shared/models not found"
    finish
    exit 0
fi
mkfifo "$TMP/fifo"
# refused NAME PATTERN ARGS...: exit 1 within the timeout, the message matches PATTERN
refused() {
    local name=$1 pat=$2
    shift 2
    expect_exit "$name" 1 timeout 20 "$QBRIEF" "$@"
    grep -q -- "$pat" "$TMP/err" && ok "$name: named" || fail "$name: named" "$(tail -1 "$TMP/err")"
}
run=(run --model "$G" --suite "$S" --configs w4g32 --no-latency --no-memory --quiet)
refused "--calib /dev/zero" "'/dev/zero': is a character device" "${run[@]}" --db "$TMP/a.db" --calib /dev/zero
refused "--calib FIFO" "fifo': is a FIFO" "${run[@]}" --db "$TMP/a.db" --calib "$TMP/fifo"
refused "--calib FIFO with a calibrated config" "fifo': is a FIFO" run --model "$G" --suite "$S" --configs w4g32-gptq --db "$TMP/a.db" --calib "$TMP/fifo" --no-latency --no-memory
refused "--suite FIFO" "fifo': is a FIFO" run --model "$G" --suite "$TMP/fifo" --configs w4g32 --db "$TMP/a.db" --no-latency
refused "--suite /dev/zero" "'/dev/zero': is a character device" run --model "$G" --suite /dev/zero --configs w4g32 --db "$TMP/a.db" --no-latency
refused "--model FIFO" "fifo': is a FIFO" run --model "$TMP/fifo" --suite "$S" --configs w4g32 --db "$TMP/a.db" --no-latency
refused "--tokenizer FIFO" "fifo': is a FIFO" run --model "$SHARED/models/stories260K/stories260K.bin" --tokenizer "$TMP/fifo" --suite "$S" --configs w4g32 --db "$TMP/a.db" --no-latency
refused "a plan that is a FIFO" "fifo': is a FIFO" run "$TMP/fifo"
cat >"$TMP/plan.yaml" <<PLAN
title: calibration from a device
models: [$(pwd)/$G]
suite: $(pwd)/$S
configs: [f32, w4g32]
calibration: /dev/zero
db: $TMP/p.db
PLAN
refused "a plan's calibration: /dev/zero" "'/dev/zero': is a character device" run "$TMP/plan.yaml" --no-latency --no-memory
[ ! -e "$TMP/a.db" ] && [ ! -e "$TMP/p.db" ] && ok "no store is created" || fail "no store is created"
refused "brief --db FIFO" "fifo': not a regular file" brief --db "$TMP/fifo" -o "$TMP/b.md"

# a sparse suite of 300 MB: refused from its size, before a byte is read
: >"$TMP/big.csv" && truncate -s 300000000 "$TMP/big.csv"
if command -v /usr/bin/time >/dev/null; then
    expect_exit "a 300 MB suite" 1 /usr/bin/time -f "%M" -o "$TMP/rss" timeout 20 "$QBRIEF" run --model "$G" --suite "$TMP/big.csv" --configs w4g32 --db "$TMP/a.db" --no-latency
    rss=$(tail -1 "$TMP/rss")
    [ "${rss:-999999}" -lt 100000 ] && ok "a 300 MB suite is refused in ${rss} KiB of memory" || fail "a 300 MB suite is refused without reading it" "peak RSS ${rss} KiB"
else
    expect_exit "a 300 MB suite" 1 timeout 20 "$QBRIEF" run --model "$G" --suite "$TMP/big.csv" --configs w4g32 --db "$TMP/a.db" --no-latency
fi
grep -q "big.csv': 300000000 bytes, larger than 268435456 bytes" "$TMP/err" && ok "a 300 MB suite: named with its size" || fail "a 300 MB suite: named with its size" "$(tail -1 "$TMP/err")"
finish
