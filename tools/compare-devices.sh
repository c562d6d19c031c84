#!/usr/bin/env bash
# compare-devices: the demo suite (examples/demo) scored on the CPU and on a Vulkan device,
# config by config, and how far the two agree: per config, the share of items whose
# correctness is the same on both devices (items scored correct/incorrect on both), and the
# largest logit difference over the items' prompts (build/tools/compare-logits).
#
#   tools/compare-devices.sh                     # 120 items of the suite, the seven configs
#   ITEMS=0 tools/compare-devices.sh             # all 1200 (slow on lavapipe: 30 items in two
#                                                # configs took 4.4 minutes on 2 busy cores)
#   CONFIGS="f32 w4g128" DEVICE=vulkan:1 OUT=/tmp/cmp tools/compare-devices.sh
#
# A config the device cannot run is reported as such and the others go on. Results stay in
# $OUT (cpu.db, device.db, the subset suite); rerunning resumes both runs.
set -u
cd "$(dirname "$0")/.."
CONFIGS=${CONFIGS:-"f32 bf16 w8a8 w4g128 w4g32-a8 w3g64 fp8"}
DEVICE=${DEVICE:-vulkan}
ITEMS=${ITEMS:-120}
OUT=${OUT:-out/compare-devices}
MODEL=examples/demo/qbrief-demo
SUITE=examples/demo/skills.csv
QBRIEF=bin/qbrief
mkdir -p "$OUT"
make -s all build/tools/compare-logits >/dev/null || exit 1
command -v sqlite3 >/dev/null || { echo "compare-devices: needs the sqlite3 command" >&2; exit 1; }

# every k-th item, so each slice keeps its share
if [ "$ITEMS" -gt 0 ]; then
    python3 - "$SUITE" "$OUT/suite.csv" "$ITEMS" <<'PY' || exit 1
import csv, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, newline='') as f:
    rows = list(csv.reader(f))
head, body = rows[0], rows[1:]
step = max(1, len(body) // n)
def q(x):  # quoted when it needs to be, and where spaces at its ends are part of it
    if x and (x != x.strip() or any(ch in x for ch in ',"\n\r')):
        return '"' + x.replace('"', '""') + '"'
    return x
with open(dst, 'w', newline='') as f:
    for r in [head] + body[::step][:n]:
        f.write(','.join(q(x) for x in r) + '\n')
PY
    SUITE=$OUT/suite.csv
fi

ran=""
for c in $CONFIGS; do
    for side in cpu device; do
        dev=cpu
        [ "$side" = device ] && dev=$DEVICE
        if ! "$QBRIEF" run --model "$MODEL" --suite "$SUITE" --configs "$c" --name compare \
            --db "$OUT/$side.db" --no-latency --no-memory --threads 1 --quiet --device "$dev" \
            2>"$OUT/$side-$c.err"; then
            echo "$c on $dev: not run: $(tail -1 "$OUT/$side-$c.err")"
            continue 2
        fi
    done
    ran="$ran $c"
done

echo
echo "per-item correctness, $DEVICE against cpu ($(sqlite3 "$OUT/device.db" 'select device from runs limit 1'))"
printf '%-12s %7s %7s %9s\n' config items agree agreement
for c in $ran; do
    sqlite3 -separator ' ' "$OUT/device.db" "
        ATTACH '$OUT/cpu.db' AS cpu;
        SELECT count(*), sum(d.correct = p.correct)
        FROM item_results d JOIN configs dc ON dc.id = d.config_id
        JOIN items di ON di.id = d.item_id
        JOIN cpu.items pi ON pi.item_key = di.item_key
        JOIN cpu.configs pc ON pc.spec = dc.spec
        JOIN cpu.item_results p ON p.config_id = pc.id AND p.item_id = pi.id
        WHERE dc.spec = '$c' AND d.correct IS NOT NULL AND p.correct IS NOT NULL" |
        while read -r n agree; do
            awk -v c="$c" -v n="$n" -v a="${agree:-0}" \
                'BEGIN { printf "%-12s %7d %7d %8.2f%%\n", c, n, a, n ? 100 * a / n : 0 }'
        done
done

echo
# shellcheck disable=SC2086
build/tools/compare-logits "$MODEL" "$SUITE" --devices "cpu,$DEVICE" $CONFIGS
