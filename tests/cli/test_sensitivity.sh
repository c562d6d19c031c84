#!/usr/bin/env bash
# qbrief sensitivity end to end: on stories260K (skipped when ../shared/models is absent) a
# per-tensor and a per-layer scan print a ranked table, the additivity line and the time,
# and store their units; bad specs and flags are refused with the valid forms.
. "$(dirname "$0")/lib.sh"

M=$SHARED/models/stories260K
D=examples/demo/qbrief-demo
expect_exit "no model" 2 "$QBRIEF" sensitivity --config w4g32 --calib examples/demo/calib.txt
expect_exit "calib and suite" 2 "$QBRIEF" sensitivity --model "$D" --config w4g32 \
    --calib examples/demo/calib.txt --suite examples/demo/skills.csv
expect_exit "bad granularity" 2 "$QBRIEF" sensitivity --model "$D" --config w4g32 \
    --calib examples/demo/calib.txt --granularity row
expect_exit "layer beyond the model" 1 "$QBRIEF" sensitivity --model "$D" \
    --config 'w4g32+L9.down=w8' --calib examples/demo/calib.txt --db "$TMP/x.db"
grep -q "names layer 9 but the model has 4 layers (L0-3); valid forms are" "$TMP/err" &&
    ok "layer beyond the model: named" || fail "layer beyond the model: named" "$(cat "$TMP/err")"
expect_exit "overlapping layers" 2 "$QBRIEF" inspect "$D" --config 'w4g32+L0-2=w8+L1.down=f16'
grep -q "'L0-2' and 'L1.down' overlap (layer 1 down); valid forms are" "$TMP/err" &&
    ok "overlapping layers: named" || fail "overlapping layers: named" "$(cat "$TMP/err")"
expect_exit "unknown tensor" 2 "$QBRIEF" inspect "$D" --config 'w4g32+L0.mlp=w8'
grep -q "unknown tensor 'mlp' in 'L0.mlp'" "$TMP/err" &&
    ok "unknown tensor: named" || fail "unknown tensor: named" "$(cat "$TMP/err")"

if [ ! -r "$M/stories260K.bin" ]; then
    skip "stories260K scans" "../shared/models not found"
    finish
    exit 0
fi
for g in tensor layer; do
    expect_exit "stories260K $g scan" 0 "$QBRIEF" sensitivity --model "$M/stories260K.bin" \
        --tokenizer "$M/tok512.bin" --config w3g32 --calib "$M/expected_greedy_200steps.txt" \
        --granularity $g --db "$TMP/s.db" --quiet
    cat "$TMP/out"
    grep -q "^   1  " "$TMP/out" && grep -q "^rank  unit" "$TMP/out" &&
        grep -q "^top 3 together: measured KL" "$TMP/out" && grep -q "^scan took" "$TMP/out" &&
        ok "stories260K $g: ranked table" || fail "stories260K $g: ranked table"
done
n=$(sqlite3 "$TMP/s.db" "SELECT count(*) FROM sens_units u JOIN sens_scans s ON s.id = u.scan_id
    WHERE s.granularity = 'tensor'")
# stories260K: 5 layers x 7 matrices, plus the output head and the embeddings
[ "$n" = 37 ] && ok "stories260K: 37 units stored" || fail "stories260K: 37 units stored" "$n"

# the brief of a run of the same model shows the latest scan: the heatmap and the sentences
if "$QBRIEF" run --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" \
    --suite examples/suites/tiny.csv --configs f32,w3g32 --db "$TMP/s.db" --name tiny \
    --no-latency --quiet >"$TMP/out" 2>"$TMP/err"; then
    for t in leadership review; do
        expect_exit "brief $t with a scan" 0 "$QBRIEF" brief --db "$TMP/s.db" --template $t \
            -o "$TMP/$t.md"
        [ -s "$TMP/${t}_files/sensitivity.png" ] && grep -q "sensitivity.png" "$TMP/$t.md" &&
            ok "brief $t: sensitivity heatmap" || fail "brief $t: sensitivity heatmap" "$(ls "$TMP/${t}_files")"
        # the layer scan is the latest: its biggest unit is named in words
        grep -q "carries [0-9]*% of the damage w3g32 does on the calibration text" "$TMP/$t.md" &&
            grep -q "Quantized together, the top 3 units measure" "$TMP/$t.md" &&
            ok "brief $t: the units that matter in words" ||
            fail "brief $t: the units that matter in words" "$(grep -i carries "$TMP/$t.md")"
    done
    expect_exit "brief pdf with a scan" 0 "$QBRIEF" brief --db "$TMP/s.db" -o "$TMP/b.pdf"
else
    fail "run for the brief" "$(tail -3 "$TMP/err")"
fi
finish
