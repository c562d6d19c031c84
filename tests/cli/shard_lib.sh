# Helpers for the sharded-run tests (sourced after lib.sh): a small plan over the demo model,
# comparisons of item results and of briefs' JSON exports.
DEMO=examples/demo/qbrief-demo

# small_plan DIR: a plan of 36 demo items (6 per slice) in four configs, one calibrated,
# with short latency settings, written to DIR/plan.yaml (and DIR/suite.csv)
small_plan() {
    python3 - "$1" <<'PY'
import csv, sys
d = sys.argv[1]
rows = list(csv.reader(open("examples/demo/skills.csv", newline="")))
out, seen = [rows[0]], {}
for r in rows[1:]:
    if seen.get(r[1], 0) < 6:
        out.append(r)
        seen[r[1]] = seen.get(r[1], 0) + 1
csv.writer(open(d + "/suite.csv", "w", newline=""), lineterminator="\n",
           quoting=csv.QUOTE_ALL).writerows(out)
PY
    cat >"$1/plan.yaml" <<YAML
title: shard test
models: [$PWD/$DEMO]
suite: suite.csv
calibration: {file: $PWD/examples/demo/calib.txt, sequences: 4, seq_len: 64}
configs: [f32, w4g128, w4g32-gptq, w2g32]
latency: {prompt_lens: [16], gen_len: 4, batch: 1, repetitions: 1, warmup: 0}
threads: 1
name: small
YAML
}

# results DB: every item result of the store, by config spec and item key, one per line
results() {
    python3 - "$1" <<'PY'
import sqlite3, sys
q = ("SELECT c.spec, i.item_key, r.correct, r.score, r.output, r.nll, r.n_tokens, r.mean_kl,"
     " r.top1_agreement, r.flipped, r.status, r.error FROM item_results r"
     " JOIN configs c ON c.id = r.config_id JOIN items i ON i.id = r.item_id ORDER BY 1, 2")
for row in sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True).execute(q):
    print(repr(row))
PY
}

# json_norm FILE: a brief's JSON export less what differs between runs of the same units:
# timings (latency, quantization seconds), the measured peak RSS, times and command lines;
# paths (a plan given relatively or absolutely) are cut to their file names
json_norm() {
    python3 - "$1" <<'PY'
import json, os, sys
DROP = {"command_line", "started_at", "finished_at", "lat_cost", "latency", "peak_rss_bytes",
        "quant_seconds", "tpot_ms", "tpot_ratio", "mem_cost_rss"}
PATHS = {"path", "file", "plan", "db"}
def clean(x):
    if isinstance(x, dict):
        return {k: (os.path.basename(v) if k in PATHS and isinstance(v, str) else clean(v))
                for k, v in x.items() if k not in DROP}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x
print(json.dumps(clean(json.load(open(sys.argv[1]))), indent=1, sort_keys=True))
PY
}

# sql DB STATEMENT...: each statement's rows, columns joined by '|', one row a line (python3's
# sqlite3, as the sqlite3 shell is not among the dependencies); writes when asked to
sql() {
    python3 - "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for q in sys.argv[2:]:
    for row in db.execute(q):
        print("|".join("" if v is None else str(v) for v in row))
db.commit()
PY
}

# same_timings REF DST: DST (a copy) gets REF's latency samples and peak RSS, matched by run,
# config and setting. What a brief decides follows the timings where configs tie on memory
# (a cheaper-first order: memory, then latency), so comparing two stores' briefs "except
# timings" means giving them the same timings first.
same_timings() {
    python3 - "$1" "$2" <<'PY'
import sqlite3, sys
ref = sqlite3.connect(sys.argv[1])
dst = sqlite3.connect(sys.argv[2])
lat = ("SELECT r.name, c.spec, l.prompt_len, l.gen_len, l.batch, l.repetition, l.ttft_ms,"
       " l.tpot_ms, l.e2e_ms, l.decode_tok_s FROM latency_samples l"
       " JOIN runs r ON r.id = l.run_id JOIN configs c ON c.id = l.config_id")
for row in ref.execute(lat):
    dst.execute("UPDATE latency_samples SET ttft_ms = ?, tpot_ms = ?, e2e_ms = ?, decode_tok_s = ?"
                " WHERE run_id = (SELECT id FROM runs WHERE name = ?) AND config_id = (SELECT c.id"
                " FROM configs c JOIN runs r ON r.id = c.run_id WHERE r.name = ? AND c.spec = ?)"
                " AND prompt_len = ? AND gen_len = ? AND batch = ? AND repetition = ?",
                row[6:] + (row[0], row[0], row[1]) + row[2:6])
mem = ("SELECT r.name, c.spec, m.context, m.peak_rss_bytes FROM memory m"
       " JOIN runs r ON r.id = m.run_id JOIN configs c ON c.id = m.config_id")
for row in ref.execute(mem):
    dst.execute("UPDATE memory SET peak_rss_bytes = ? WHERE run_id = (SELECT id FROM runs WHERE"
                " name = ?) AND config_id = (SELECT c.id FROM configs c JOIN runs r ON"
                " r.id = c.run_id WHERE r.name = ? AND c.spec = ?) AND context = ?",
                (row[3], row[0], row[0], row[1], row[2]))
dst.commit()
PY
}
