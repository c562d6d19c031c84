#!/usr/bin/env bash
# --device on generate, run and bench-kernels, `device:` in a plan and `inspect --devices`:
# bad specs are usage errors naming the accepted forms; an absent device (vulkan:N past the
# last, or no Vulkan driver at all: VK_ICD_FILENAMES=/nonexistent) and a config that does not
# fit the device's memory are refused before anything runs (no database is created); on a
# Vulkan device generate reproduces llama2.c's greedy text byte for byte, a run's store names
# the device on the run and on every latency and memory row and its brief names it; a
# version 3 store is read as it is and upgraded to version 4 by the next run. The device
# parts skip, saying why, without a Vulkan device or without ../shared/models.
. "$(dirname "$0")/lib.sh"

S=$SHARED/models/stories260K
G=$SHARED/models/stories260K-gguf/stories260K.gguf
SUITE=examples/suites/tiny.csv

# --- specs: usage errors, before any file is read ------------------------------------------
for spec in gpu vulkan: vulkan:x vulkan:-1 cuda:0; do
    expect_exit "generate --device $spec is a usage error" 2 "$QBRIEF" generate nope.bin --device "$spec"
    grep -q "'$spec'" "$TMP/err" && grep -q "vulkan:N" "$TMP/err" && ok "bad spec $spec named with the accepted forms" \
        || fail "bad spec $spec named with the accepted forms" "$(head -1 "$TMP/err")"
done
expect_exit "run --device tpu is a usage error" 2 "$QBRIEF" run --model x --suite y --configs f32 --device tpu --db "$TMP/bad.db"
[ ! -e "$TMP/bad.db" ] && ok "bad run spec creates no database" || fail "bad run spec creates no database"
expect_exit "bench-kernels --device gpu is a usage error" 2 "$QBRIEF" bench-kernels --device gpu
cat >"$TMP/badplan.yaml" <<PLAN
title: t
models: [m.gguf]
suite: s.csv
configs: [f32]
device: gpu0
PLAN
expect_exit "plan device: gpu0 is refused" 1 "$QBRIEF" run "$TMP/badplan.yaml"
grep -q "badplan.yaml':5:" "$TMP/err" && grep -q "gpu0" "$TMP/err" && ok "plan device error names the line" \
    || fail "plan device error names the line" "$(cat "$TMP/err")"

# --- no Vulkan driver at all ------------------------------------------------------------------
expect_exit "inspect --devices without Vulkan exits 0" 0 env VK_ICD_FILENAMES=/nonexistent "$QBRIEF" inspect --devices
grep -q "^vulkan: no devices" "$TMP/out" && ok "inspect --devices says there are none" \
    || fail "inspect --devices says there are none" "$(cat "$TMP/out")"
expect_exit "generate --device vulkan without Vulkan" 1 env VK_ICD_FILENAMES=/nonexistent "$QBRIEF" generate nope.bin --device vulkan
grep -q "no Vulkan device" "$TMP/err" && ok "no Vulkan device said before the model is read" \
    || fail "no Vulkan device said before the model is read" "$(cat "$TMP/err")"
expect_exit "run --device vulkan without Vulkan" 1 env VK_ICD_FILENAMES=/nonexistent "$QBRIEF" run --model "$G" --suite "$SUITE" --configs f32 --device vulkan --db "$TMP/nov.db"
[ ! -e "$TMP/nov.db" ] && ok "run without Vulkan creates no database" || fail "run without Vulkan creates no database"
expect_exit "bench-kernels --device vulkan without Vulkan" 1 env VK_ICD_FILENAMES=/nonexistent "$QBRIEF" bench-kernels --device vulkan --shapes 64x64

# --- with a Vulkan device (the validation layer on, where installed: no error may show) ------
export QB_VK_VALIDATION=1
clean() { ! grep -q "vulkan validation error" "$TMP/err" && ok "$1: no validation error" || fail "$1: no validation error" "$(grep -m1 "validation error" "$TMP/err")"; }
"$QBRIEF" inspect --devices >"$TMP/devs" 2>&1
n_dev=$(grep -c "^vulkan:[0-9]" "$TMP/devs")
if [ "$n_dev" -eq 0 ]; then
    skip "Vulkan device tests" "no Vulkan device ($(grep '^vulkan' "$TMP/devs" | head -1))"
    finish
    exit 0
fi
grep -q "^vulkan:0 " "$TMP/devs" && grep -q "memory:" "$TMP/devs" && grep -q "features:" "$TMP/devs" \
    && ok "inspect --devices lists vulkan:0 with memory and features" || fail "inspect --devices lists vulkan:0 with memory and features" "$(cat "$TMP/devs")"
expect_exit "generate --device vulkan:$n_dev (absent)" 1 "$QBRIEF" generate nope.bin --device "vulkan:$n_dev"
grep -q "vulkan:$n_dev is absent" "$TMP/err" && ok "absent device named with the count" || fail "absent device named with the count" "$(cat "$TMP/err")"
expect_exit "bench-kernels --device vulkan" 0 "$QBRIEF" bench-kernels --device vulkan --shapes 256x96 --formats f32,bf16 --batches 1,4 --reps 3
grep -q "^device: vulkan:0 .*copy bandwidth" "$TMP/out" && [ "$(grep -c "^  256x96 " "$TMP/out")" -ge 2 ] \
    && ok "bench-kernels on the device prints the table" || fail "bench-kernels on the device prints the table" "$(cat "$TMP/out" "$TMP/err")"
clean "bench-kernels"

if [ ! -r "$S/stories260K.bin" ] || [ ! -r "$G" ]; then
    skip "generate and run on the device" "../shared/models not found"
    finish
    exit 0
fi
expect_exit "generate --device vulkan" 0 "$QBRIEF" generate "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -n 200 --device vulkan
cmp -s "$TMP/out" "$S/expected_greedy_200steps.txt" && ok "generate on the device prints the reference text exactly" \
    || fail "generate on the device prints the reference text exactly" "$(diff "$TMP/out" "$S/expected_greedy_200steps.txt" | head -5)"
grep -q "decode:.* on .*MiB" "$TMP/err" && ok "generate names the device" || fail "generate names the device" "$(cat "$TMP/err")"
clean "generate"

expect_exit "a config that does not fit is refused" 1 env QB_DEVICE_MEMORY_MIB=1 "$QBRIEF" run --model "$G" --suite "$SUITE" --configs f32 --device vulkan --db "$TMP/fit.db"
grep -q "config f32 does not fit device vulkan:0.*1.0 MiB" "$TMP/err" && ok "the refusal names the config, need and capacity" \
    || fail "the refusal names the config, need and capacity" "$(tail -1 "$TMP/err")"
[ ! -e "$TMP/fit.db" ] && ok "a config that does not fit creates no database" || fail "a config that does not fit creates no database"

cat >"$TMP/dev.yaml" <<PLAN
title: on the device
models: [$(pwd)/$G]
suite: $(pwd)/$SUITE
configs: [f32, bf16]
latency: {prompt_lens: [16], gen_len: 4, batch: 1, repetitions: 1, warmup: 0}
device: vulkan
db: dev.db
PLAN
expect_exit "run with device: vulkan" 0 "$QBRIEF" run "$TMP/dev.yaml"
grep -q "22 evaluated" "$TMP/err" && ok "every item evaluated on the device" || fail "every item evaluated on the device" "$(tail -2 "$TMP/err")"
clean "run"
if command -v sqlite3 >/dev/null; then
    q() { sqlite3 "$TMP/dev.db" "$1"; }
    q "select device from runs" | grep -q "^vulkan:0 .*MiB$" && q "select device_json from runs" | grep -q '"kind":"vulkan"' \
        && ok "the run names the device" || fail "the run names the device" "$(q 'select device, device_json from runs')"
    [ "$(q "select count(*) from latency_samples where device like 'vulkan:0 %' and host <> ''")" = 2 ] \
        && ok "every latency sample names the device and host" || fail "every latency sample names the device and host" "$(q 'select * from latency_samples')"
    [ "$(q "select count(*) from memory where device like 'vulkan:0 %' and host <> '' and peak_rss_bytes >= weight_bytes + kv_cache_bytes and weight_bytes > 0")" = 2 ] \
        && ok "every memory row is the device's (peak >= weights + KV cache)" || fail "every memory row is the device's (peak >= weights + KV cache)" "$(q 'select * from memory')"
else
    skip "the store names the device" "the sqlite3 command is not installed"
fi
expect_exit "brief of a device run" 0 "$QBRIEF" brief --db "$TMP/dev.db" -o "$TMP/dev.md" --template review
grep -q "Measured on vulkan:0 .*, beside the CPU " "$TMP/dev.md" && grep -q "Peak device memory" "$TMP/dev.md" \
    && ok "the brief names the device beside the CPU" || fail "the brief names the device beside the CPU" "$(grep -n 'Measured on' "$TMP/dev.md")"

# --- a version 3 store: read as it is, upgraded by the next run -------------------------------
if command -v sqlite3 >/dev/null; then
    expect_exit "run on the CPU" 0 "$QBRIEF" run --model "$G" --suite "$SUITE" --configs f32,w4g32 --db "$TMP/v3.db" --no-latency --no-memory
    sqlite3 "$TMP/v3.db" "ALTER TABLE runs DROP COLUMN device; ALTER TABLE runs DROP COLUMN device_json;
        ALTER TABLE latency_samples DROP COLUMN host; ALTER TABLE latency_samples DROP COLUMN device;
        ALTER TABLE memory DROP COLUMN host; ALTER TABLE memory DROP COLUMN device; DROP TABLE shards;
        DROP TABLE sens_units; DROP TABLE sens_scans;
        DROP TABLE imports; DROP TABLE import_suites; DROP TABLE import_items; PRAGMA user_version = 3"
    [ "$(sqlite3 "$TMP/v3.db" 'PRAGMA user_version')" = 3 ] && ok "a version 3 store made" || fail "a version 3 store made"
    expect_exit "brief reads a version 3 store" 0 "$QBRIEF" brief --db "$TMP/v3.db" -o "$TMP/v3.md" --template review
    [ "$(sqlite3 "$TMP/v3.db" 'PRAGMA user_version')" = 3 ] && ok "reading leaves version 3" || fail "reading leaves version 3"
    grep -q "on the CPU, " "$TMP/v3.md" && ok "a version 3 run was measured on the CPU" || fail "a version 3 run was measured on the CPU" "$(grep -n 'on the' "$TMP/v3.md" | head -3)"
    expect_exit "a run resumes a version 3 store" 0 "$QBRIEF" run --model "$G" --suite "$SUITE" --configs f32,w4g32 --db "$TMP/v3.db" --no-latency --no-memory
    # the current version: what this qbrief writes into a store of its own (the first run's)
    cur=$(sqlite3 "$TMP/dev.db" 'PRAGMA user_version')
    [ "$(sqlite3 "$TMP/v3.db" 'PRAGMA user_version')" = "$cur" ] && ok "the run upgrades it to the current version ($cur)" || fail "the run upgrades it to the current version ($cur)"
    sqlite3 "$TMP/v3.db" "select device, host from memory" >/dev/null 2>&1 && [ -z "$(sqlite3 "$TMP/v3.db" 'select device from runs')" ] \
        && ok "version 4 columns exist, NULL in older rows" || fail "version 4 columns exist, NULL in older rows"
else
    skip "version 3 store" "the sqlite3 command is not installed"
fi
finish
