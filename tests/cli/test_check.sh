#!/usr/bin/env bash
# qbrief check: a run of the bundled demo model (examples/demo/qbrief-demo) on 3 slices x 60
# items in three configs; the gate exits 0 for the recommendation, 1 for a config that loses
# (one FAIL line per failing slice, --json saying the same), 0 again under a looser --policy,
# and 2 for every bad input (flag, store, run, config, policy file).
. "$(dirname "$0")/lib.sh"

MODEL=examples/demo/qbrief-demo
expect_exit "check --help exits 0" 0 "$QBRIEF" check --help
grep -q "usage: qbrief check" "$TMP/out" && ok "check --help prints usage" || fail "check --help prints usage"
expect_exit "check: unknown flag" 2 "$QBRIEF" check --nope
expect_exit "check: missing store" 2 "$QBRIEF" check --db "$TMP/nope.db"
grep -q "nope.db" "$TMP/err" && ok "missing store named" || fail "missing store named" "$(cat "$TMP/err")"

python3 - "$TMP/s.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open("examples/demo/skills.csv")))
out, n = [rows[0]], {}
for r in rows[1:]:
    if r[1] in ("facts", "code", "json") and n.get(r[1], 0) < 60:
        n[r[1]] = n.get(r[1], 0) + 1
        out.append(r)
csv.writer(open(sys.argv[1], "w", newline="")).writerows(out)
PY
if ! "$QBRIEF" run --model "$MODEL" --suite "$TMP/s.csv" --configs f32,w4g128,w2g32 --db "$TMP/r.db" \
    --name a --no-latency --quiet --threads 1 >"$TMP/out" 2>"$TMP/err"; then
    fail "run for the gate" "$(tail -3 "$TMP/err")"
    finish
    exit 0
fi
ok "run for the gate"

expect_exit "the recommendation holds: exit 0" 0 "$QBRIEF" check --db "$TMP/r.db" --run a
grep -q "^ok: run 'a' holds on all 3 slices" "$TMP/out" && ok "ok line" || fail "ok line" "$(cat "$TMP/out")"
expect_exit "w2g32 fails: exit 1" 1 "$QBRIEF" check --db "$TMP/r.db" --config w2g32
[ "$(grep -c '^FAIL ' "$TMP/out")" -ge 1 ] && ok "one FAIL line per failing slice" || fail "FAIL lines" "$(cat "$TMP/out")"
grep -q "^FAIL json: w2g32 changes accuracy by" "$TMP/out" && ok "the failing slice and why" || fail "the failing slice and why" "$(cat "$TMP/out")"
# the JSON says the same as the lines, and its numbers are the brief's
expect_exit "check --json exit 1" 1 "$QBRIEF" check --db "$TMP/r.db" --config w2g32 --json
cp "$TMP/out" "$TMP/check.json"
expect_exit "brief json" 0 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/b.json"
if python3 - "$TMP/check.json" "$TMP/b.json" "$TMP/out.txt" <<'PY'
import json, sys
k = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert k["holds"] is False and k["failing"] == sum(1 for s in k["slices"] if not s["holds"])
for s in k["slices"]:
    cell = [c for sl in b["slices"] if sl["name"] == s["slice"] for c in sl["cells"] if c["config"] == "w2g32"][0]
    assert abs(cell["delta"] - s["delta"]) < 1e-12 and cell["n"] == s["n"], s
    assert s["holds"] == cell["within"], s
PY
then ok "--json matches the brief's cells"; else fail "--json matches the brief's cells"; fi
# a plan as the policy: a tolerance and flip limit of 100 let even w2g32 hold
cat >"$TMP/loose.yaml" <<'YAML'
title: loose
models: [x]
suite: s.csv
configs: [f32]
tolerances: {default: 100}
flips: {default: 100}
YAML
expect_exit "a looser --policy: exit 0" 0 "$QBRIEF" check --db "$TMP/r.db" --config w2g32 --policy "$TMP/loose.yaml"
printf 'title: t\nmodels: [x]\nsuite: s.csv\nconfigs: [f32]\nflips: {default: 101}\n' >"$TMP/bad.yaml"
expect_exit "a bad --policy: exit 2" 2 "$QBRIEF" check --db "$TMP/r.db" --policy "$TMP/bad.yaml"
grep -q "flips.default" "$TMP/err" && ok "bad policy named" || fail "bad policy named" "$(cat "$TMP/err")"
expect_exit "unknown run: exit 2" 2 "$QBRIEF" check --db "$TMP/r.db" --run zz
expect_exit "config not in the run: exit 2" 2 "$QBRIEF" check --db "$TMP/r.db" --config w8a8
grep -q "no config 'w8a8'" "$TMP/err" && ok "missing config named" || fail "missing config named" "$(cat "$TMP/err")"
expect_exit "bad config spec: exit 2" 2 "$QBRIEF" check --db "$TMP/r.db" --config w9
finish
