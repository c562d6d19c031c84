#!/usr/bin/env bash
# qbrief brief --against: two runs of the bundled demo model (3 slices x 60 items; the second
# with a changed config list) rendered as PDF and Markdown, run against run in one store and
# against a run of another store (FILE.db, FILE.db#RUN); the Markdown's accuracies and changes
# are the two runs' own numbers from their JSON briefs; bad --against values fail cleanly.
. "$(dirname "$0")/lib.sh"

MODEL=examples/demo/qbrief-demo
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
run() { "$QBRIEF" run --model "$MODEL" --suite "$TMP/s.csv" --quiet --threads 1 --no-latency "$@" >"$TMP/out" 2>"$TMP/err"; }
if ! run --configs f32,w4g128,w2g32 --db "$TMP/r.db" --name a ||
    ! run --configs f32,w8a8,w4g128 --db "$TMP/r.db" --name b ||
    ! run --configs f32,w4g128 --db "$TMP/o.db" --name other; then
    fail "runs to compare" "$(tail -3 "$TMP/err")"
    finish
    exit 0
fi
ok "runs to compare"

expect_exit "against: Markdown" 0 "$QBRIEF" brief --db "$TMP/r.db" --run b --against a -o "$TMP/c.md"
expect_exit "against: PDF" 0 "$QBRIEF" brief --db "$TMP/r.db" --run b --against a -o "$TMP/c.pdf"
head -c 5 "$TMP/c.pdf" | grep -q '%PDF-' && ok "a PDF" || fail "a PDF"
if command -v pdftotext >/dev/null; then
    pdftotext -layout "$TMP/c.pdf" - | grep -q "What changed, slice by slice" && ok "the PDF holds the comparison" ||
        fail "the PDF holds the comparison"
fi
grep -q "^\*\*The decision changed: the recommendation moved on 2 of 3 slices (code moves from f32 to w8a8; json moves from f32 to w8a8), and this run deploys w8a8.\*\*" "$TMP/c.md" &&
    ok "one sentence: the decision changed" || fail "one sentence: the decision changed" "$(grep -m1 '^\*\*' "$TMP/c.md")"
expect_exit "json of a" 0 "$QBRIEF" brief --db "$TMP/r.db" --run a -o "$TMP/a.json"
expect_exit "json of b" 0 "$QBRIEF" brief --db "$TMP/r.db" --run b -o "$TMP/b.json"
# every row of the comparison table against the runs' own cells: configs in both (f32, w4g128)
if python3 - "$TMP/c.md" "$TMP/a.json" "$TMP/b.json" <<'PY'
import json, sys
md = open(sys.argv[1]).read().splitlines()
a, b = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
def cell(d, s, c):
    return [x for sl in d["slices"] if sl["name"] == s for x in sl["cells"] if x["config"] == c][0]
rows = [l.split("|")[1:-1] for l in md if l.startswith("| ") and l.count("|") == 8]
rows = [[x.strip() for x in r] for r in rows if r[0].strip() in ("facts", "code", "json")]
assert len(rows) == 6, rows  # 3 slices x {f32, w4g128}
for s, c, before, now, change, flips, n in rows:
    ca, cb = cell(a, s, c), cell(b, s, c)
    assert before == "%.1f" % (100 * ca["acc"]), (s, c, before, ca["acc"])
    assert now == "%.1f" % (100 * cb["acc"]), (s, c, now, cb["acc"])
    d = 100 * (cb["acc"] - ca["acc"])
    assert change.split(" ")[0] == ("0.0" if abs(d) < 0.05 else "%+.1f" % d), (change, d)
    assert int(n) == ca["n"] == cb["n"], (n, ca["n"])
PY
then ok "the table's numbers are the runs' own"; else fail "the table's numbers are the runs' own"; fi
grep -q "| w2g32 | 388 KiB | – |" "$TMP/c.md" && ok "a config only the old run has, side by side" ||
    fail "a config only the old run has" "$(grep w2g32 "$TMP/c.md")"

# another store: its only run, or one named
expect_exit "against FILE.db" 0 "$QBRIEF" brief --db "$TMP/r.db" --run b --against "$TMP/o.db" -o "$TMP/o.md"
grep -q "run b against other" "$TMP/o.md" && ok "FILE.db: its only run" || fail "FILE.db: its only run"
expect_exit "against FILE.db#RUN" 0 "$QBRIEF" brief --db "$TMP/o.db" --against "$TMP/r.db#a" -o "$TMP/o2.md"
grep -q "run other against a" "$TMP/o2.md" && ok "FILE.db#RUN" || fail "FILE.db#RUN"
# bad values
expect_exit "against a store of two runs" 1 "$QBRIEF" brief --db "$TMP/o.db" --against "$TMP/r.db" -o "$TMP/x.md"
grep -q "holds 2 runs; name one as FILE.db#RUN" "$TMP/err" && ok "two runs: say how to name one" || fail "two runs" "$(cat "$TMP/err")"
expect_exit "against an unknown run" 1 "$QBRIEF" brief --db "$TMP/r.db" --against zz -o "$TMP/x.md"
expect_exit "against a missing store" 1 "$QBRIEF" brief --db "$TMP/r.db" --against "$TMP/nope.db" -o "$TMP/x.md"
expect_exit "against as JSON is refused" 1 "$QBRIEF" brief --db "$TMP/r.db" --against a -o "$TMP/x.json"
[ ! -e "$TMP/x.md" ] && [ ! -e "$TMP/x.json" ] && ok "no output on failure" || fail "no output on failure"
finish
