#!/usr/bin/env bash
# qbrief brief: a run of the tiny real model rendered in every format -- the PDF opens, renders
# and holds the recommendation table with the JSON export's numbers; Markdown links its charts;
# CSV parses -- and bad inputs (missing database, unknown run or template, a bad template line)
# exit 1 with a clear message, leave no output file and never clobber an existing brief.
. "$(dirname "$0")/lib.sh"

M=$SHARED/models/stories260K
S=examples/suites/tiny.csv
expect_exit "brief --help exits 0" 0 "$QBRIEF" brief --help
grep -q "usage: qbrief brief" "$TMP/out" && ok "brief --help prints usage" || fail "brief --help prints usage"
expect_exit "brief without -o is a usage error" 2 "$QBRIEF" brief --db "$TMP/x.db"
expect_exit "brief --format junk is a usage error" 2 "$QBRIEF" brief --db "$TMP/x.db" -o "$TMP/x" --format docx
expect_exit "brief --paper junk is a usage error" 2 "$QBRIEF" brief --db "$TMP/x.db" -o "$TMP/x.pdf" --paper a3
expect_exit "missing database" 1 "$QBRIEF" brief --db "$TMP/nope.db" -o "$TMP/nope.pdf"
grep -q "nope.db" "$TMP/err" && ok "missing database named" || fail "missing database named" "$(cat "$TMP/err")"
[ ! -e "$TMP/nope.pdf" ] && ok "missing database leaves no brief" || fail "missing database leaves no brief"

if [ ! -r "$M/stories260K.bin" ]; then
    skip "brief of a real run" "../shared/models not found"
    finish
    exit 0
fi
if ! "$QBRIEF" run --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --suite "$S" \
    --configs f32,w8a8,w4g32,w2g32 --db "$TMP/r.db" --name tiny --no-latency --quiet >"$TMP/out" 2>"$TMP/err"; then
    fail "run for the brief" "$(tail -3 "$TMP/err")"
    finish
    exit 0
fi
ok "run for the brief"

# every format
expect_exit "brief pdf" 0 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/b.pdf"
expect_exit "brief pdf letter review" 0 "$QBRIEF" brief --db "$TMP/r.db" --run tiny -o "$TMP/r.pdf" --template review --paper letter
expect_exit "brief md" 0 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/b.md"
expect_exit "brief json" 0 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/b.json"
expect_exit "brief csv" 0 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/b.csv"
expect_exit "brief --format overrides the extension" 0 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/b.out" --format json
cmp -s "$TMP/b.out" "$TMP/b.json" && ok "--format json writes the JSON" || fail "--format json writes the JSON"
ls "$TMP" | grep -q '[.]tmp......$' && fail "no temporary files left" "$(ls "$TMP")" || ok "no temporary files left"

if command -v pdfinfo >/dev/null; then
    pdfinfo "$TMP/b.pdf" >"$TMP/info" 2>/dev/null && ok "pdfinfo opens the brief" || fail "pdfinfo opens the brief"
    pages=$(sed -n 's/^Pages: *//p' "$TMP/info")
    [ "${pages:-0}" -ge 2 ] && [ "${pages:-0}" -le 5 ] && ok "leadership brief has 2-5 pages" || fail "leadership brief has 2-5 pages" "$pages"
    grep -q "A4" "$TMP/info" && ok "A4 by default" || fail "A4 by default" "$(grep 'Page size' "$TMP/info")"
    pdfinfo "$TMP/r.pdf" 2>/dev/null | grep -q "612 x 792" && ok "--paper letter" || fail "--paper letter"
    rpages=$(pdfinfo "$TMP/r.pdf" 2>/dev/null | sed -n 's/^Pages: *//p')
    [ "${rpages:-0}" -gt "${pages:-0}" ] && ok "review is longer than leadership" || fail "review is longer than leadership" "$rpages vs $pages"
else
    skip "pdfinfo" "poppler-utils not installed"
fi
if command -v pdftoppm >/dev/null; then
    mkdir -p "$TMP/png"
    pdftoppm -r 30 -png "$TMP/b.pdf" "$TMP/png/p" 2>/dev/null && ok "pdftoppm renders the pages" || fail "pdftoppm renders the pages"
    n=$(ls "$TMP/png" | wc -l)
    [ "$n" -eq "${pages:-0}" ] && ok "one image per page" || fail "one image per page" "$n images, $pages pages"
fi
if command -v pdftotext >/dev/null && command -v python3 >/dev/null; then
    pdftotext -layout "$TMP/b.pdf" "$TMP/b.txt" 2>/dev/null
    # the recommendation table's numbers are the JSON export's, formatted as the brief says
    python3 - "$TMP/b.json" "$TMP/b.txt" >"$TMP/cmp" 2>&1 <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
def sp(x):
    v = round(x * 1000) / 10
    return "0.0" if v == 0 else "%+.1f" % v
bad = 0
for s in a["slices"]:
    cell = next(c for c in s["cells"] if c["config"] == s["rec"])
    lo, hi = cell["delta_ci"]
    if s["is_perplexity"]:
        want = "%s%% ppl (%s to %s)" % (sp(-cell["delta"]), sp(-hi), sp(-lo))
    else:
        want = "%s (%s to %s)" % (sp(cell["delta"]), sp(lo), sp(hi))
    row = [l for l in lines if l.split()[:1] == [s["name"]] and s["rec"] in l.split()]
    if not any(want in l for l in row):
        print("slice %s: wanted '%s' beside %s in %s" % (s["name"], want, s["rec"], row))
        bad += 1
    else:
        print("slice %s: %s %s" % (s["name"], s["rec"], want))
sys.exit(1 if bad or not a["slices"] else 0)
EOF
    [ $? -eq 0 ] && ok "PDF recommendation table equals the JSON export" || fail "PDF recommendation table equals the JSON export" "$(cat "$TMP/cmp")"
    grep -q "Page 1 of $pages" "$TMP/b.txt" && ok "page numbers" || fail "page numbers"
    grep -q "stories260K · suite tiny · qbrief" "$TMP/b.txt" && ok "footer names model, suite and version" || fail "footer names model, suite and version"
fi

# Markdown: charts as PNG files beside it, linked
[ -s "$TMP/b_files/heatmap.png" ] && ok "md writes its charts" || fail "md writes its charts" "$(ls "$TMP")"
grep -q '](b_files/heatmap.png)' "$TMP/b.md" && ok "md links its charts" || fail "md links its charts"
head -c 8 "$TMP/b_files/heatmap.png" | od -c | grep -q 'P   N   G' && ok "md charts are PNG" || fail "md charts are PNG"
grep -q '^| Slice | Traffic | Config | Accuracy change' "$TMP/b.md" && ok "md has the recommendation table" || fail "md has the recommendation table"

# CSV: one header, the accuracy table has slices x configs rows
if command -v python3 >/dev/null; then
    python3 - "$TMP/b.csv" "$TMP/b.json" >"$TMP/cmp" 2>&1 <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
a = json.load(open(sys.argv[2]))
acc = [r for r in rows if r["table"] == "accuracy" and r["slice"] != "(overall)"]
want = len(a["slices"]) * len(a["configs"])
mem = [r for r in rows if r["table"] == "memory"]
print(len(acc), want, len(mem))
sys.exit(0 if len(acc) == want and len(mem) == len(a["configs"]) else 1)
EOF
    [ $? -eq 0 ] && ok "csv holds every slice x config" || fail "csv holds every slice x config" "$(cat "$TMP/cmp")"
fi

# bad inputs: exit 1, a message naming what is wrong, no output, the old brief untouched
cp "$TMP/b.pdf" "$TMP/good.pdf"
expect_exit "unknown run" 1 "$QBRIEF" brief --db "$TMP/r.db" --run nosuchrun -o "$TMP/b.pdf"
grep -q "nosuchrun" "$TMP/err" && ok "unknown run named" || fail "unknown run named" "$(cat "$TMP/err")"
cmp -s "$TMP/b.pdf" "$TMP/good.pdf" && ok "a failed brief leaves the old one" || fail "a failed brief leaves the old one"
expect_exit "unknown template" 1 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/t1.pdf" --template nosuchtemplate
grep -q "unknown template 'nosuchtemplate'" "$TMP/err" && ok "unknown template named" || fail "unknown template named" "$(cat "$TMP/err")"
printf '@title x\n@p fine\n@tabel recommendation\n' >"$TMP/bad.tmpl"
expect_exit "bad template line" 1 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/t2.pdf" --template "$TMP/bad.tmpl"
grep -q "bad.tmpl':3: unknown directive '@tabel'" "$TMP/err" && ok "bad template line names file:line" || fail "bad template line names file:line" "$(cat "$TMP/err")"
printf '@title x\n@p {{nosuchvar}}\n' >"$TMP/bad2.tmpl"
expect_exit "unknown template variable" 1 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/t3.md" --template "$TMP/bad2.tmpl"
grep -q "bad2.tmpl':2: unknown variable '{{nosuchvar}}'" "$TMP/err" && ok "unknown variable names file:line" || fail "unknown variable names file:line" "$(cat "$TMP/err")"
[ ! -e "$TMP/t1.pdf" ] && [ ! -e "$TMP/t2.pdf" ] && [ ! -e "$TMP/t3.md" ] && [ ! -e "$TMP/t3_files" ] \
    && ok "bad inputs leave no output" || fail "bad inputs leave no output" "$(ls "$TMP")"
ls "$TMP" | grep -q '[.]tmp......$' && fail "failures leave no temporary files" "$(ls "$TMP")" || ok "failures leave no temporary files"
QBRIEF_FONT_DIR="$TMP/nofonts" expect_exit "missing font" 1 "$QBRIEF" brief --db "$TMP/r.db" -o "$TMP/t4.pdf"
grep -q "fonts-dejavu-core" "$TMP/err" && ok "missing font says what to install" || fail "missing font says what to install" "$(cat "$TMP/err")"
[ ! -e "$TMP/t4.pdf" ] && ok "missing font leaves no brief" || fail "missing font leaves no brief"
finish
