#!/usr/bin/env bash
# qbrief brief --runs: a plan with two models -- the bundled demo model and a variant of it
# written here by tools/make-variant.py (every weight perturbed by up to 5%) -- on 3 slices x 60
# items in three configs; the candidates brief (by --runs, and by default for the plan's store)
# renders as PDF and Markdown, names a model per slice, and its numbers are the two runs' own:
# each recommended candidate's change is its accuracy in its own run minus the reference's.
. "$(dirname "$0")/lib.sh"

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
if ! python3 tools/make-variant.py examples/demo/qbrief-demo "$TMP/variant" --noise 0.05 2>"$TMP/err"; then
    fail "make a second model" "$(cat "$TMP/err")"
    finish
    exit 0
fi
ok "make a second model"
cp -r examples/demo/qbrief-demo "$TMP/demo"
cat >"$TMP/plan.yaml" <<'YAML'
title: Two candidate models
models: [demo, variant]
suite: s.csv
configs: [f32, w8a8, w4g128]
latency: {prompt_lens: [16], gen_len: 4, batch: 1, repetitions: 1, warmup: 0}
threads: 1
name: cand
db: c.db
YAML
if ! "$QBRIEF" run "$TMP/plan.yaml" --quiet >"$TMP/out" 2>"$TMP/err"; then
    fail "run the two-model plan" "$(tail -3 "$TMP/err")"
    finish
    exit 0
fi
ok "run the two-model plan"

expect_exit "candidates: Markdown" 0 "$QBRIEF" brief --db "$TMP/c.db" --runs cand-demo,cand-variant -o "$TMP/c.md"
expect_exit "candidates: PDF" 0 "$QBRIEF" brief --db "$TMP/c.db" --runs cand-demo,cand-variant -o "$TMP/c.pdf"
head -c 5 "$TMP/c.pdf" | grep -q '%PDF-' && ok "a PDF" || fail "a PDF"
expect_exit "candidates: JSON" 0 "$QBRIEF" brief --db "$TMP/c.db" --runs cand-demo,cand-variant -o "$TMP/c.json"
[ -s "$TMP/c_files/acc_memory.png" ] && [ -s "$TMP/c_files/acc_tpot.png" ] && ok "both frontier charts" ||
    fail "both frontier charts" "$(ls "$TMP/c_files")"
# the default for the plan's store: the same brief
expect_exit "default brief of a two-model plan" 0 "$QBRIEF" brief --db "$TMP/c.db" -o "$TMP/d.md"
diff <(grep -v "rendered with" -A3 "$TMP/c.md" | grep "^| ") <(grep -v "rendered with" -A3 "$TMP/d.md" | grep "^| ") >/dev/null &&
    ok "the default is the candidates brief" || fail "the default is the candidates brief"
expect_exit "json of the demo run" 0 "$QBRIEF" brief --db "$TMP/c.db" --run cand-demo -o "$TMP/a.json"
expect_exit "json of the variant run" 0 "$QBRIEF" brief --db "$TMP/c.db" --run cand-variant -o "$TMP/b.json"
if python3 - "$TMP/c.md" "$TMP/c.json" "$TMP/a.json" "$TMP/b.json" <<'PY'
import json, sys
md = open(sys.argv[1]).read().splitlines()
c, a, b = (json.load(open(p)) for p in sys.argv[2:5])
own = {"demo": a, "variant": b}
def acc(d, s, cfg):
    return [x for sl in d["slices"] if sl["name"] == s for x in sl["cells"] if x["config"] == cfg][0]["acc"]
rows = [[x.strip() for x in l.split("|")[1:-1]] for l in md if l.startswith("| ") and l.count("|") == 8]
rows = [r for r in rows if r[0] in ("facts", "code", "json")]
assert len(rows) == 3, rows
assert c["baseline"] == "demo:f32", c["baseline"]
for s, traffic, cand, change, flips, verdict, breaks in rows:
    model, cfg = cand.split(":")
    assert model in own, cand                        # a model is named per slice
    sl = [x for x in c["slices"] if x["name"] == s][0]
    assert sl["rec"] == cand, (sl["rec"], cand)
    d = acc(own[model], s, cfg) - acc(a, s, "f32")   # against the reference, from each run
    cell = [x for x in sl["cells"] if x["config"] == cand][0]
    assert abs(cell["delta"] - d) < 1e-12, (s, cand, cell["delta"], d)
    assert change.split(" ")[0] == ("0.0" if abs(d) < 0.0005 else "%+.1f" % (100 * d)), (change, d)
PY
then ok "per slice a (model, config), its change from both runs' numbers"; else fail "per slice a (model, config) against the runs"; fi
grep -q "^\*\*Adopt demo:\|^\*\*Adopt variant:\|^\*\*Keep demo:f32" "$TMP/c.md" && ok "one sentence naming a model and a precision" ||
    fail "one sentence naming a model and a precision" "$(grep -m1 '^\*\*' "$TMP/c.md")"
expect_exit "--runs of one run is refused" 1 "$QBRIEF" brief --db "$TMP/c.db" --runs cand-demo -o "$TMP/x.md"
expect_exit "--runs with an unknown run" 1 "$QBRIEF" brief --db "$TMP/c.db" --runs cand-demo,zz -o "$TMP/x.md"
expect_exit "--runs with --run is a usage error" 2 "$QBRIEF" brief --db "$TMP/c.db" --runs a,b --run a -o "$TMP/x.md"
[ ! -e "$TMP/x.md" ] && ok "no output on failure" || fail "no output on failure"
ls "${TMPDIR:-/tmp}" | grep -q "^qbrief-candidates-" && fail "temporary store removed" || ok "temporary store removed"
finish
