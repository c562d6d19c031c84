#!/usr/bin/env bash
# qbrief run's progress (issue 23): where stderr is not a terminal, every long phase prints
# lines with an ETA as it goes -- loading, items, quantizing, calibrating, the memory probe,
# measuring latency -- at most QB_PROGRESS_EVERY_S seconds apart (5 by default; a tiny
# interval here, so the small model's short phases still print).
. "$(dirname "$0")/lib.sh"

G=$SHARED/models/stories260K-gguf/stories260K.gguf
S=examples/suites/tiny.csv
if [ -r "$G" ]; then
    printf 'Once upon a time there was a little girl who liked to play.\n%.0s' $(seq 40) >"$TMP/calib.txt"
    expect_exit "run with progress" 0 env QB_PROGRESS_EVERY_S=0.000001 "$QBRIEF" run --model "$G" \
        --suite "$S" --configs w4g32,w4g32-gptq --calib "$TMP/calib.txt" --db "$TMP/p.db" --no-memory
    for phase in quantizing calibrating "measuring latency"; do
        grep -Eq "^w4g32[-a-z]*: $phase, [0-9]+% \([0-9]+/[0-9]+\), eta [0-9]+ s$" "$TMP/err" &&
            ok "a '$phase' line with an ETA" || fail "a '$phase' line with an ETA" "$(cat "$TMP/err")"
    done
    grep -Eq "^f32: [0-9]+/11 items, [0-9.]+ items/s, eta [0-9]+ s$" "$TMP/err" &&
        ok "item lines with an ETA before the config ends" || fail "item lines with an ETA" "$(cat "$TMP/err")"
    grep -q "measuring latency, 100% " "$TMP/err" && ok "a phase's line at its end" ||
        fail "a phase's line at its end" "$(cat "$TMP/err")"
    # without the memory probe's children the model is loaded once, not checked and reloaded
    [ "$(grep -c "^run: loading, 100% " "$TMP/err")" = 1 ] && ok "the model loaded once" ||
        fail "the model loaded once" "$(cat "$TMP/err")"
    # the phases before the first item: loading the model (once for the run), and the memory
    # probe's forked child, which loads, quantizes and fills the context on its own
    expect_exit "run with the memory probe" 0 env QB_PROGRESS_EVERY_S=0.000001 "$QBRIEF" run \
        --model "$G" --suite "$S" --configs w4g32 --db "$TMP/m.db" --no-latency
    grep -Eq "^run: loading, [0-9]+% \([0-9]+/[0-9]+\), eta [0-9]+ s$" "$TMP/err" &&
        ok "a 'loading' line with an ETA" || fail "a 'loading' line with an ETA" "$(cat "$TMP/err")"
    grep -Eq "^w4g32: measuring memory, 100% \(([0-9]+)/\1\), eta [0-9]+ s$" "$TMP/err" &&
        ok "the memory probe's child reports its prefill" ||
        fail "the memory probe's child reports its prefill" "$(cat "$TMP/err")"
    expect_exit "default interval" 0 "$QBRIEF" run --model "$G" --suite "$S" --configs w4g32 \
        --db "$TMP/q.db" --no-memory --no-latency
    grep -q "quantizing" "$TMP/err" &&
        fail "no line for a phase shorter than the interval" "$(cat "$TMP/err")" ||
        ok "no line for a phase shorter than the interval"
else
    skip "progress on stories260K" "../shared/models not found"
fi
finish
