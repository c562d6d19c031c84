#!/usr/bin/env bash
# qbrief import (collector/cli/cmd_import.c) and the brief it feeds: a run of the demo model,
# lm-eval samples for two configs (one the imported baseline) and a llama-bench table imported
# into it; the brief shows the imported configs per slice and in the latency chart's table,
# each marked imported with its file's sha256. Bad input is refused with the file and line
# and leaves the store as it was. Fixtures are written here after the published schemas.
. "$(dirname "$0")/lib.sh"

DB=$TMP/i.db
expect_exit "import: a run to import into" 0 "$QBRIEF" run --model examples/demo/qbrief-demo \
    --suite examples/suites/tiny.csv --configs f32 --db "$DB" --name r1 --quiet --no-memory --no-latency
mkdir -p "$TMP/base" "$TMP/q4"
python3 - "$TMP" <<'PY'
import hashlib, json, sys
h = lambda s: hashlib.sha256(s.encode()).hexdigest()
def rec(i, acc):
    doc = {"question": "What is %d + 1?" % i, "choices": [str(i + 1), str(i + 2)], "answer": 0}
    prompt = "Question: What is %d + 1?\nAnswer:" % i
    return {"doc_id": i, "doc": doc, "target": 0, "arguments": [[prompt, " %d" % (i + 1)]],
            "resps": [[[-0.5, True]]], "filtered_resps": [[-0.5, True]], "filter": "none",
            "metrics": ["acc"], "doc_hash": h(json.dumps(doc, indent=2)), "prompt_hash": h(prompt),
            "target_hash": h("0"), "acc": float(acc)}
for d, accs in (("base", [1] * 10 + [0] * 2), ("q4", [1] * 8 + [0] * 4)):
    with open("%s/%s/samples_arc_easy_2025-06-01T10-00-00.000000.jsonl" % (sys.argv[1], d), "w") as f:
        for i, a in enumerate(accs):
            f.write(json.dumps(rec(i, a)) + "\n")
b = {"build_commit": "3f4fc97f", "build_number": 5678, "cpu_info": "AMD EPYC", "gpu_info": "NVIDIA H100",
     "backends": "CUDA", "n_threads": 8, "n_depth": 0, "stddev_ts": 1.0}
with open(sys.argv[1] + "/bench.jsonl", "w") as f:
    for p, g, ts in ((128, 0, [4000.0, 4100.0]), (0, 128, [200.0, 210.0])):
        f.write(json.dumps(dict(b, n_prompt=p, n_gen=g, avg_ts=sum(ts) / 2, samples_ts=ts)) + "\n")
PY
BASE=$TMP/base/samples_arc_easy_2025-06-01T10-00-00.000000.jsonl
Q4=$TMP/q4/samples_arc_easy_2025-06-01T10-00-00.000000.jsonl
expect_exit "import: lm-eval baseline" 0 "$QBRIEF" import lm-eval "$BASE" --db "$DB" --run r1 --config "f16 (lm-eval)" --baseline
expect_exit "import: lm-eval candidate" 0 "$QBRIEF" import lm-eval "$Q4" --db "$DB" --run r1 --config "Q4_0 (llama.cpp)"
grep -q "imported 12 samples into run 'r1' as config 'Q4_0 (llama.cpp)' (imported, sha256 $(sha256sum "$Q4" | cut -c1-12)" "$TMP/out" &&
    ok "import: says what it recorded" || fail "import: says what it recorded" "$(cat "$TMP/out")"
expect_exit "import: llama-bench" 0 "$QBRIEF" import llama-bench "$TMP/bench.jsonl" --db "$DB" --run r1 --config "Q4_0 (llama.cpp)"
grep -q "device: llama.cpp b5678 3f4fc97f: NVIDIA H100 \[CUDA\]" "$TMP/out" && ok "import: names the device" ||
    fail "import: names the device" "$(cat "$TMP/out")"

expect_exit "import: the brief" 0 "$QBRIEF" brief --db "$DB" --run r1 --template review -o "$TMP/b.md"
Q4SHA=$(sha256sum "$Q4" | cut -c1-8) BSHA=$(sha256sum "$TMP/bench.jsonl" | cut -c1-8)
grep -qF "| arc\_easy | \[imported\] Q4\_0 (llama.cpp) (lm-eval sha256 $Q4SHA, llama-bench sha256 $BSHA) | 12 | 66.7" "$TMP/b.md" &&
    ok "brief: imported config per slice" || fail "brief: imported config per slice" "$(grep -n arc "$TMP/b.md" | head -5)"
grep -qF "| \[imported\] Q4\_0 (llama.cpp) (lm-eval sha256 $Q4SHA, llama-bench sha256 $BSHA) | 128 / 128 / 1 | 31.6 / 32.0 | 4.88 / 4.99 | 205.0 |" "$TMP/b.md" &&
    ok "brief: imported latency" || fail "brief: imported latency" "$(grep -n "128 / 128" "$TMP/b.md" | head -5)"
grep -q "timed by another tool on llama.cpp b5678 3f4fc97f: NVIDIA H100" "$TMP/b.md" &&
    ok "brief: says where imported latency was timed" || fail "brief: says where imported latency was timed"
expect_exit "import: the PDF brief" 0 "$QBRIEF" brief --db "$DB" --run r1 --template review -o "$TMP/b.pdf"

# refusals: nothing written
snap() { sqlite3 "$DB" "select count(*) from item_results; select count(*) from imports; select count(*) from latency_samples; select count(*) from configs"; }
before=$(snap)
head -c 700 "$Q4" >"$TMP/trunc_samples_arc_easy_2025-06-01T10-00-00.000000.jsonl"
mv "$TMP/trunc_samples_arc_easy_2025-06-01T10-00-00.000000.jsonl" "$TMP/samples_cut_2025-06-01T10-00-00.000000.jsonl"
expect_exit "import: truncated JSONL refused" 1 "$QBRIEF" import lm-eval "$TMP/samples_cut_2025-06-01T10-00-00.000000.jsonl" --db "$DB" --run r1 --config x
grep -q "samples_cut_2025-06-01T10-00-00.000000.jsonl':2: truncated (no end of line) JSON" "$TMP/err" &&
    ok "import: truncated names file and line" || fail "import: truncated names file and line" "$(cat "$TMP/err")"
sed 's/"doc_hash": "[0-9a-f]*"/"doc_hash": "'"$(printf x | sha256sum | cut -c1-64)"'"/' "$Q4" >"$TMP/samples_arc_easy_2025-06-02T10-00-00.000000.jsonl"
expect_exit "import: disagreeing hashes refused" 1 "$QBRIEF" import lm-eval "$TMP/samples_arc_easy_2025-06-02T10-00-00.000000.jsonl" --db "$DB" --run r1 --config y
grep -q "':1: doc_id 0 of task 'arc_easy' has doc_hash" "$TMP/err" && ok "import: hash mismatch named" ||
    fail "import: hash mismatch named" "$(cat "$TMP/err")"
echo '{"build_commit": "a", "build_number": 1, "cuda": true, "n_prompt": 512, "n_gen": 0, "avg_ts": 10}' >"$TMP/old.jsonl"
expect_exit "import: unknown llama-bench version refused" 1 "$QBRIEF" import llama-bench "$TMP/old.jsonl" --db "$DB" --run r1 --config z
grep -q "old.jsonl':1: not a llama-bench record of a version qbrief knows" "$TMP/err" &&
    ok "import: unknown version named" || fail "import: unknown version named" "$(cat "$TMP/err")"
expect_exit "import: no such run" 1 "$QBRIEF" import lm-eval "$Q4" --db "$DB" --run nope --config z
expect_exit "import: bad usage" 2 "$QBRIEF" import lm-eval "$Q4" --db "$DB" --run r1
expect_exit "import: unknown source" 2 "$QBRIEF" import helm "$Q4" --db "$DB" --run r1 --config z
[ "$(snap)" = "$before" ] && ok "import: refusals left the store unchanged" || fail "import: refusals left the store unchanged"
finish
