#!/usr/bin/env bash
# qbrief run from a plan on a suite with every kind and metric, five configs, latency and
# memory: the database must then hold everything the brief needs (checked with Python's
# sqlite3 module, an independent reader of the file).
. "$(dirname "$0")/lib.sh"

G=$SHARED/models/stories260K-gguf/stories260K.gguf
if [ ! -r "$G" ]; then
    skip "every kind and metric on stories260K" "../shared/models not found"
    finish
    exit 0
fi
S=$(pwd)/tests/data/every-kind.csv
# the calibration text repeats two items (p-story, and g-contains's prompt with its target):
# the run must count them as overlapping and the brief must say so
printf 'Lily and Tom played in the park. The sun was warm.\nOnce upon a time, there was a little girl named Lily. She loved to play outside in the park.\n' >"$TMP/calib.txt"
cat >"$TMP/plan.yaml" <<PLAN
title: Every kind and metric
question: Does anything break?
models: [$(pwd)/$G]
suite: $S
calibration: {file: calib.txt, sequences: 4, seq_len: 16}
configs: [f32, bf16, w8a8, w4g32, w2g32]
latency: {prompt_lens: [8, 16], gen_len: 4, batch: 2, repetitions: 2, warmup: 1}
tolerances: {default: 1.5, math: 3}
traffic: {stories: 2, math: 1, json: 1}
policy: {confidence: 0.9, bound: point}
name: every
db: every.db
PLAN
expect_exit "run every kind" 0 "$QBRIEF" run "$TMP/plan.yaml"
grep -q "item 'g-too-long' skipped" "$TMP/err" && ok "too-long item warned" || fail "too-long item warned" "$(head -5 "$TMP/err")"
MODEL_SHA=$(sha256sum "$G" | cut -d' ' -f1)
SUITE_SHA=$(sha256sum "$S" | cut -d' ' -f1)
CALIB_SHA=$(sha256sum "$TMP/calib.txt" | cut -d' ' -f1)
cat >"$TMP/check.py" <<'PY'
import json, sqlite3, sys
db, msha, ssha, csha = sys.argv[1:]
c = sqlite3.connect(db)
q = lambda sql, *a: c.execute(sql, a).fetchall()
def check(name, cond):
    print(("ok " if cond else "FAIL ") + name)
CFG = ["f32", "bf16", "w8a8", "w4g32", "w2g32"]
(run,) = q("SELECT id FROM runs WHERE name = 'every'")[0]
r = q("SELECT finished_at, machine_json, settings_json, command_line, qbrief_version FROM runs WHERE id = ?", run)[0]
check("run finished", r[0] is not None)
m = json.loads(r[1])
check("machine recorded", all(k in m for k in ("cpu", "cores", "threads", "isa", "os")))
st = json.loads(r[2])
check("plan settings recorded", st.get("title") == "Every kind and metric" and st["question"] == "Does anything break?"
      and st["tolerances"]["default"] == 1.5 and st["tolerances"]["slices"]["math"] == 3
      and abs(st["traffic"]["stories"] - 0.5) < 1e-9 and st["policy"] == {"confidence": 0.9, "bound": "point"})
check("command line recorded", "plan.yaml" in r[3] and r[4])
check("model hash", q("SELECT sha256 FROM models m JOIN runs r ON r.model_id = m.id WHERE r.id = ?", run)[0][0] == msha)
check("suite hash", q("SELECT sha256 FROM suites s JOIN runs r ON r.suite_id = s.id WHERE r.id = ?", run)[0][0] == ssha)
check("calibration overlap counted", st["calibration"]["overlap"] == {"ngram": 8, "items": 2, "of": 13}
      and st["calibration"]["sha256"] == csha)
check("calibration hash", q("SELECT sha256, n_sequences, seq_len FROM calibration WHERE run_id = ?", run) == [(csha, 4, 16)])
cfgs = q("SELECT spec, bits_per_weight, weight_bytes, quant_seconds FROM configs WHERE run_id = ? ORDER BY id", run)
check("five configs measured", [x[0] for x in cfgs] == CFG and all(x[1] and x[2] and x[3] is not None for x in cfgs))
check("bits per weight fall down the ladder", cfgs[0][1] > cfgs[1][1] > cfgs[2][1] > cfgs[3][1] > cfgs[4][1])
items = q("SELECT item_key, kind, metric FROM items i JOIN runs r ON r.suite_id = i.suite_id WHERE r.id = ?", run)
metrics = {x[2] for x in items}
check("every kind and metric stored", {x[1] for x in items} == {"generate", "choice", "perplexity"} and
      metrics == {"exact", "contains", "regex", "number", "json", "json_valid", "accuracy", "accuracy_norm", "perplexity"})
res = q("""SELECT f.spec, i.item_key, i.kind, x.status, x.correct, x.output, x.nll, x.n_tokens, x.mean_kl,
                  x.top1_agreement, x.flipped, x.error
           FROM item_results x JOIN configs f ON f.id = x.config_id JOIN items i ON i.id = x.item_id
           WHERE x.run_id = ?""", run)
check("one row per config and item", len(res) == len(CFG) * len(items) and
      len({(x[0], x[1]) for x in res}) == len(res))
skipped = [x for x in res if x[1] == "g-too-long"]
check("skipped item has a row per config", len(skipped) == 5 and all(x[3] == "skipped" and "context" in x[11] for x in skipped))
ok = [x for x in res if x[3] == "ok"]
check("every other unit ok", len(ok) == len(CFG) * (len(items) - 1))
base = [x for x in ok if x[0] == "f32"]
check("baseline: no KL, no flip, agreement 1", all(x[8] is None and x[10] is None and x[9] == 1 for x in base))
other = [x for x in ok if x[0] != "f32"]
check("configs: KL and agreement", all(x[8] is not None and x[8] >= 0 and 0 <= x[9] <= 1 for x in other))
check("flips where both are scored", all((x[10] is None) == (x[2] == "perplexity") for x in other))
check("generate outputs stored", all(x[5] is not None for x in ok if x[2] == "generate"))
check("choice outputs are options", all(x[5] in (" park", " moon", " computer", " car", " ball", " idea", " shining", " purple", " sad") for x in ok if x[2] == "choice"))
check("perplexity: nll, no correct", all(x[6] is not None and x[6] > 0 and x[7] > 1 and x[4] is None for x in ok if x[2] == "perplexity"))
check("accuracy items scored 0/1", all(x[4] in (0, 1) for x in ok if x[2] != "perplexity"))
kl = {cf: sum(x[8] for x in other if x[0] == cf) for cf in CFG[1:]}
check("KL grows down the ladder (bf16 < w8a8 < w4g32 < w2g32)", kl["bf16"] < kl["w8a8"] < kl["w4g32"] < kl["w2g32"])
topk = q("SELECT count(DISTINCT item_id), min(k) FROM baseline_topk WHERE run_id = ?", run)[0]
check("baseline top-k for every scored item", topk[0] == len(items) - 1 and topk[1] == 32)
lat = q("""SELECT f.spec, l.prompt_len, l.batch, count(*), min(l.ttft_ms), min(l.e2e_ms) FROM latency_samples l
           JOIN configs f ON f.id = l.config_id WHERE l.run_id = ? GROUP BY 1, 2, 3""", run)
check("latency: 2 prompt lengths x (batch 1, batch 2) x 2 repetitions per config",
      len(lat) == 5 * 4 and all(x[3] == 2 and x[5] > 0 for x in lat) and
      all(x[4] is not None and x[4] > 0 for x in lat if x[2] == 1))
mem = q("SELECT f.spec, m.context, m.weight_bytes, m.kv_cache_bytes, m.peak_rss_bytes FROM memory m JOIN configs f ON f.id = m.config_id WHERE m.run_id = ?", run)
check("memory per config", len(mem) == 5 and all(x[1] == 20 and x[2] > 0 and x[3] > 0 and x[4] > x[2] for x in mem))
wb = {x[0]: x[2] for x in mem}
check("weight bytes fall down the ladder", wb["f32"] > wb["bf16"] > wb["w8a8"] > wb["w4g32"] > wb["w2g32"])
PY
while read -r st name; do
    if [ "$st" = ok ]; then ok "$name"; else fail "$name"; fi
done < <(python3 "$TMP/check.py" "$TMP/every.db" "$MODEL_SHA" "$SUITE_SHA" "$CALIB_SHA" 2>&1 | sed 's/^Traceback.*/FAIL python checks raised/')
expect_exit "brief of the every-kind run" 0 "$QBRIEF" brief --db "$TMP/every.db" -o "$TMP/every.md"
grep -q "2 of the 13 evaluation items share a run of 8 words with the calibration text" "$TMP/every.md" && ok "brief names the calibration overlap" || fail "brief names the calibration overlap" "$(grep -i calibration "$TMP/every.md")"
finish
