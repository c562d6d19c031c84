/* store: the SQLite results store (see store.h for the schema and the API). The only file in
 * qbrief that includes sqlite3.h. Every statement is prepared once at open and kept in
 * struct qb_store; migrations[] is the schema's history and must only ever be appended to. */
#include "collector/store/store.h"
#include "collector/store/store_int.h"

#include "kernels/base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define APP_ID 0x51425246 /* "QBRF" in PRAGMA application_id */
#define BUSY_MS 10000
#define TOPK_MAX 65536
#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* migrations[v - 1] takes the schema from version v - 1 to v. Append only. */
/* clang-format off */
static const char *const migrations[] = {
    /* 1: the first schema */
    "PRAGMA application_id = 1363300934; -- APP_ID, \"QBRF\"\n"
    "CREATE TABLE models (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  sha256 TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  path TEXT NOT NULL,\n"
    "  architecture TEXT NOT NULL,\n"
    "  n_params INTEGER NOT NULL CHECK (n_params >= 0),\n"
    "  format TEXT NOT NULL CHECK (format IN ('gguf', 'hf', 'llama2c'))\n"
    ") STRICT;\n"
    "CREATE TABLE suites (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  sha256 TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  path TEXT NOT NULL,\n"
    "  n_items INTEGER NOT NULL CHECK (n_items >= 0)\n"
    ") STRICT;\n"
    "CREATE TABLE runs (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE CHECK (name <> ''),\n"
    "  qbrief_version TEXT,\n"
    "  git_commit TEXT,\n"
    "  command_line TEXT,\n"
    "  host TEXT,\n"
    "  machine_json TEXT CHECK (machine_json IS NULL OR json_valid(machine_json)),\n"
    "  model_id INTEGER NOT NULL REFERENCES models(id),\n"
    "  suite_id INTEGER NOT NULL REFERENCES suites(id),\n"
    "  baseline_config TEXT NOT NULL CHECK (baseline_config <> ''),\n"
    "  settings_json TEXT CHECK (settings_json IS NULL OR json_valid(settings_json)),\n"
    "  started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "  finished_at TEXT\n"
    ") STRICT;\n"
    "CREATE TABLE configs (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  spec TEXT NOT NULL CHECK (spec <> ''),\n"
    "  bits_per_weight REAL CHECK (bits_per_weight > 0),\n"
    "  weight_bytes INTEGER CHECK (weight_bytes >= 0),\n"
    "  quant_seconds REAL CHECK (quant_seconds >= 0),\n"
    "  UNIQUE (run_id, spec),\n"
    "  UNIQUE (id, run_id)\n"
    ") STRICT;\n"
    "CREATE TABLE items (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  suite_id INTEGER NOT NULL REFERENCES suites(id) ON DELETE CASCADE,\n"
    "  item_key TEXT NOT NULL CHECK (item_key <> ''),\n"
    "  slice TEXT NOT NULL,\n"
    "  kind TEXT NOT NULL CHECK (kind GLOB '[a-z]*' AND kind NOT GLOB '*[^a-z0-9_]*'),\n"
    "  metric TEXT NOT NULL CHECK (metric GLOB '[a-z]*' AND metric NOT GLOB '*[^a-z0-9_]*'),\n"
    "  prompt_sha256 TEXT CHECK (prompt_sha256 IS NULL OR (length(prompt_sha256) = 64 AND prompt_sha256 NOT GLOB '*[^0-9a-f]*')),\n"
    "  prompt TEXT,\n"
    "  line INTEGER CHECK (line >= 1),\n"
    "  UNIQUE (suite_id, item_key)\n"
    ") STRICT;\n"
    "CREATE TABLE item_results (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  config_id INTEGER NOT NULL,\n"
    "  item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,\n"
    "  correct INTEGER CHECK (correct IN (0, 1)),\n"
    "  score REAL,\n"
    "  output TEXT,\n"
    "  nll REAL CHECK (nll >= 0),\n"
    "  n_tokens INTEGER CHECK (n_tokens >= 0),\n"
    "  mean_kl REAL,\n"
    "  top1_agreement REAL CHECK (top1_agreement BETWEEN 0 AND 1),\n"
    "  flipped INTEGER CHECK (flipped IN (0, 1)),\n"
    "  UNIQUE (run_id, config_id, item_id),\n"
    "  FOREIGN KEY (config_id, run_id) REFERENCES configs(id, run_id) ON DELETE CASCADE\n"
    ") STRICT;\n"
    "CREATE INDEX item_results_config ON item_results(config_id, run_id);\n"
    "CREATE INDEX item_results_item ON item_results(item_id);\n"
    "CREATE TABLE baseline_topk (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL CHECK (position >= 0),\n"
    "  k INTEGER NOT NULL CHECK (k BETWEEN 1 AND 65536),\n"
    "  data BLOB NOT NULL CHECK (length(data) = 8 * k),\n"
    "  UNIQUE (run_id, item_id, position)\n"
    ") STRICT;\n"
    "CREATE INDEX baseline_topk_item ON baseline_topk(item_id);\n"
    "CREATE TABLE latency_samples (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  config_id INTEGER NOT NULL,\n"
    "  prompt_len INTEGER NOT NULL CHECK (prompt_len >= 0),\n"
    "  gen_len INTEGER NOT NULL CHECK (gen_len >= 0),\n"
    "  batch INTEGER NOT NULL CHECK (batch >= 1),\n"
    "  repetition INTEGER NOT NULL CHECK (repetition >= 0),\n"
    "  ttft_ms REAL CHECK (ttft_ms >= 0),\n"
    "  tpot_ms REAL CHECK (tpot_ms >= 0),\n"
    "  e2e_ms REAL CHECK (e2e_ms >= 0),\n"
    "  decode_tok_s REAL CHECK (decode_tok_s >= 0),\n"
    "  UNIQUE (run_id, config_id, prompt_len, gen_len, batch, repetition),\n"
    "  FOREIGN KEY (config_id, run_id) REFERENCES configs(id, run_id) ON DELETE CASCADE\n"
    ") STRICT;\n"
    "CREATE INDEX latency_samples_config ON latency_samples(config_id, run_id);\n"
    "CREATE TABLE memory (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  config_id INTEGER NOT NULL,\n"
    "  context INTEGER NOT NULL CHECK (context >= 0),\n"
    "  weight_bytes INTEGER CHECK (weight_bytes >= 0),\n"
    "  kv_cache_bytes INTEGER CHECK (kv_cache_bytes >= 0),\n"
    "  peak_rss_bytes INTEGER CHECK (peak_rss_bytes >= 0),\n"
    "  UNIQUE (run_id, config_id, context),\n"
    "  FOREIGN KEY (config_id, run_id) REFERENCES configs(id, run_id) ON DELETE CASCADE\n"
    ") STRICT;\n"
    "CREATE INDEX memory_config ON memory(config_id, run_id);\n"
    "CREATE TABLE calibration (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  config_id INTEGER,\n"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  n_sequences INTEGER NOT NULL CHECK (n_sequences >= 1),\n"
    "  seq_len INTEGER NOT NULL CHECK (seq_len >= 1),\n"
    "  FOREIGN KEY (config_id, run_id) REFERENCES configs(id, run_id) ON DELETE CASCADE\n"
    ") STRICT;\n"
    "CREATE UNIQUE INDEX calibration_key ON calibration(run_id, ifnull(config_id, 0), sha256);\n"
    "CREATE INDEX calibration_config ON calibration(config_id, run_id);\n",
    /* 2: an item that was skipped (does not fit the context) or failed still gets its row,
     * so a brief can count it and a resumed run does not retry it forever */
    "ALTER TABLE item_results ADD COLUMN status TEXT NOT NULL DEFAULT 'ok'\n"
    "  CHECK (status IN ('ok', 'skipped', 'error'));\n"
    "ALTER TABLE item_results ADD COLUMN error TEXT;\n",
    /* 3: the process writing a run holds the run's row here, so the same run started twice
     * is refused at once instead of both evaluating the same units (run_lock). Readers never
     * read it: a version 2 store is read as it is (READ_MIN_VERSION). */
    "CREATE TABLE run_locks (\n"
    "  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  host TEXT NOT NULL,\n"
    "  pid INTEGER NOT NULL CHECK (pid > 0),\n"
    "  proc_start INTEGER NOT NULL CHECK (proc_start >= 0),\n"
    "  since TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n"
    ") STRICT;\n",
    /* 4: where each measurement was taken: the device the engines ran on (its name, driver
     * and memory, "cpu" for the CPU) on the run and on every latency sample and memory row,
     * with the host beside it. Older rows read NULL (a version 2 or 3 store is read as it
     * is: the reads select NULL for these columns). */
    "ALTER TABLE runs ADD COLUMN device TEXT;\n"
    "ALTER TABLE runs ADD COLUMN device_json TEXT\n"
    "  CHECK (device_json IS NULL OR json_valid(device_json));\n"
    "ALTER TABLE latency_samples ADD COLUMN host TEXT;\n"
    "ALTER TABLE latency_samples ADD COLUMN device TEXT;\n"
    "ALTER TABLE memory ADD COLUMN host TEXT;\n"
    "ALTER TABLE memory ADD COLUMN device TEXT;\n",
    /* 5: sharded runs (docs/distributed.md): a shard's store holds one row per run saying which
     * share of the units it evaluates; a merged store holds the rows of every shard merged
     * into it, with the file each came from. Only adds a table: readers never read it. */
    "CREATE TABLE shards (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  shard_index INTEGER NOT NULL CHECK (shard_index >= -1),\n"
    "  shard_count INTEGER NOT NULL CHECK (shard_count >= 0),\n"
    "  plan_sha256 TEXT NOT NULL CHECK (length(plan_sha256) = 64),\n"
    "  token TEXT NOT NULL CHECK (token <> ''),\n"
    "  n_units INTEGER NOT NULL CHECK (n_units >= 0),\n"
    "  probe INTEGER NOT NULL CHECK (probe IN (0, 1)),\n"
    "  host TEXT,\n"
    "  machine_json TEXT CHECK (machine_json IS NULL OR json_valid(machine_json)),\n"
    "  source TEXT,\n"
    "  UNIQUE (run_id, shard_index)\n"
    ") STRICT;\n",
    /* 6: sensitivity scans (collector/store/store_sens.h): one quantized unit at a time, the
     * rest at the baseline; each scan with its provenance, each unit's damage. Not tied to a
     * run (a scan may come before one); merging shard stores skips these tables. */
    "CREATE TABLE sens_scans (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  model_sha256 TEXT NOT NULL CHECK (length(model_sha256) = 64),\n"
    "  model_path TEXT NOT NULL,\n"
    "  config TEXT NOT NULL CHECK (config <> ''),\n"
    "  baseline TEXT NOT NULL CHECK (baseline <> ''),\n"
    "  keep TEXT NOT NULL CHECK (keep <> ''),\n"
    "  granularity TEXT NOT NULL CHECK (granularity IN ('tensor', 'layer')),\n"
    "  source TEXT NOT NULL CHECK (source IN ('calib', 'suite')),\n"
    "  source_path TEXT NOT NULL,\n"
    "  source_sha256 TEXT NOT NULL CHECK (length(source_sha256) = 64),\n"
    "  slice TEXT,\n"
    "  n_sequences INTEGER NOT NULL CHECK (n_sequences >= 0),\n"
    "  n_positions INTEGER NOT NULL CHECK (n_positions >= 0),\n"
    "  base_accuracy REAL,\n"
    "  config_kl REAL,\n"
    "  config_accuracy REAL,\n"
    "  topk INTEGER CHECK (topk >= 0),\n"
    "  topk_summed_kl REAL,\n"
    "  topk_measured_kl REAL,\n"
    "  seconds REAL CHECK (seconds >= 0),\n"
    "  threads INTEGER,\n"
    "  host TEXT,\n"
    "  run_name TEXT,\n"
    "  candidates_json TEXT CHECK (candidates_json IS NULL OR json_valid(candidates_json)),\n"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n"
    ") STRICT;\n"
    "CREATE TABLE sens_units (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  scan_id INTEGER NOT NULL REFERENCES sens_scans(id) ON DELETE CASCADE,\n"
    "  unit TEXT NOT NULL CHECK (unit <> ''),\n"
    "  layer INTEGER CHECK (layer >= 0),\n"
    "  tensor TEXT NOT NULL,\n"
    "  rank INTEGER NOT NULL CHECK (rank >= 1),\n"
    "  mean_kl REAL,\n"
    "  accuracy REAL,\n"
    "  extra_bytes INTEGER,\n"
    "  UNIQUE (scan_id, unit)\n"
    ") STRICT;\n",
    /* 7: results qbrief was given rather than measured (collector/store/store_import.h): one
     * row per imported file (lm-eval samples, a llama-bench table) with its sha256, so the
     * brief labels them; the lm-eval items of a run live in a suite of their own (import_suite)
     * with their lm-eval hashes, which match items across configs. Only adds tables: readers
     * of older versions never read them. */
    "CREATE TABLE imports (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  config_id INTEGER NOT NULL,\n"
    "  kind TEXT NOT NULL CHECK (kind IN ('lm-eval', 'llama-bench')),\n"
    "  source TEXT NOT NULL,\n"
    "  sha256 TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "  n_rows INTEGER NOT NULL CHECK (n_rows >= 0),\n"
    "  baseline INTEGER NOT NULL CHECK (baseline IN (0, 1)),\n"
    "  device TEXT,\n"
    "  imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "  UNIQUE (run_id, config_id, kind, sha256),\n"
    "  FOREIGN KEY (config_id, run_id) REFERENCES configs(id, run_id) ON DELETE CASCADE\n"
    ") STRICT;\n"
    "CREATE TABLE import_suites (\n"
    "  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  suite_id INTEGER NOT NULL UNIQUE REFERENCES suites(id) ON DELETE CASCADE\n"
    ") STRICT;\n"
    "CREATE TABLE import_items (\n"
    "  item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,\n"
    "  doc_hash TEXT NOT NULL,\n"
    "  prompt_hash TEXT NOT NULL,\n"
    "  target_hash TEXT NOT NULL\n"
    ") STRICT;\n",
};
/* clang-format on */
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(N_MIGRATIONS == QB_STORE_SCHEMA_VERSION, "one migration per schema version");
/* The oldest version a reader opens without migrating: 3 added only run_locks, which no
 * read touches, so `qbrief brief` reads a store no newer qbrief has written to yet. */
#define READ_MIN_VERSION 2

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_MODEL_UPSERT,
    S_SUITE_UPSERT,
    S_RUN_LOOKUP,
    S_RUN_INSERT,
    S_RUN_FINISH,
    S_RUN_FIND,
    S_RUN_GET,
    S_CONFIG_UPSERT,
    S_CONFIG_LIST,
    S_ITEM_UPSERT,
    S_ITEM_ID,
    S_ITEM_LIST,
    S_RESULT_INSERT,
    S_RESULT_EXISTS,
    S_DONE_LIST,
    S_RESULT_LIST,
    S_TOPK_INSERT,
    S_TOPK_GET,
    S_TOPK_LIST,
    S_LAT_INSERT,
    S_LAT_LIST,
    S_MEM_UPSERT,
    S_MEM_LIST,
    S_CAL_INSERT,
    S_CAL_LIST,
    S_LOCK_GET,
    S_LOCK_PUT,
    S_LOCK_DROP,
    S_SHARD_GET,
    S_SHARD_PUT,
    N_STMT
};

/* Statements used only on a writable store are marked w: a read-only store leaves them NULL. */
static const struct {
    const char *sql;
    int w;
} stmt_sql[N_STMT] = {
    [S_BEGIN] = {"BEGIN IMMEDIATE", 1},
    [S_COMMIT] = {"COMMIT", 1},
    [S_ROLLBACK] = {"ROLLBACK", 1},
    [S_SAVEPOINT] = {"SAVEPOINT qb_store", 1},
    [S_RELEASE] = {"RELEASE qb_store", 1},
    [S_ROLLBACK_TO] = {"ROLLBACK TO qb_store", 1},
    [S_MODEL_UPSERT] = {"INSERT INTO models(sha256, path, architecture, n_params, format) "
                        "VALUES (?1, ?2, ?3, ?4, ?5) "
                        "ON CONFLICT(sha256) DO UPDATE SET path = excluded.path RETURNING id",
                        1},
    [S_SUITE_UPSERT] = {"INSERT INTO suites(sha256, path, n_items) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT(sha256) DO UPDATE SET path = excluded.path RETURNING id",
                        1},
    [S_RUN_LOOKUP] = {"SELECT r.id, m.sha256, s.sha256, r.suite_id FROM runs r "
                      "JOIN models m ON m.id = r.model_id JOIN suites s ON s.id = r.suite_id "
                      "WHERE r.name = ?1",
                      0},
    [S_RUN_INSERT] = {"INSERT INTO runs(name, qbrief_version, git_commit, command_line, host, "
                      "machine_json, model_id, suite_id, baseline_config, settings_json, "
                      "device, device_json) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
                      1},
    [S_RUN_FINISH] = {"UPDATE runs SET finished_at = " NOW " WHERE id = ?1", 1},
    [S_RUN_FIND] = {"SELECT id FROM runs WHERE name = ?1", 0},
    [S_RUN_GET] = {"SELECT r.name, r.qbrief_version, r.git_commit, r.command_line, r.host, "
                   "r.machine_json, r.baseline_config, r.settings_json, r.started_at, "
                   "r.finished_at, m.path, m.sha256, m.architecture, m.format, m.n_params, "
                   "s.path, s.sha256, s.n_items, r.device, r.device_json FROM runs r "
                   "JOIN models m ON m.id = r.model_id JOIN suites s ON s.id = r.suite_id "
                   "WHERE r.id = ?1",
                   0},
    [S_CONFIG_UPSERT] = {"INSERT INTO configs(run_id, spec, bits_per_weight, weight_bytes, "
                         "quant_seconds) VALUES (?1, ?2, ?3, ?4, ?5) "
                         "ON CONFLICT(run_id, spec) DO UPDATE SET "
                         "bits_per_weight = excluded.bits_per_weight, "
                         "weight_bytes = excluded.weight_bytes, "
                         "quant_seconds = excluded.quant_seconds RETURNING id",
                         1},
    [S_CONFIG_LIST] = {"SELECT id, spec, bits_per_weight, weight_bytes, quant_seconds "
                       "FROM configs WHERE run_id = ?1 ORDER BY id",
                       0},
    /* the no-op update makes RETURNING give the existing id */
    [S_ITEM_UPSERT] = {"INSERT INTO items(suite_id, item_key, slice, kind, metric, prompt_sha256, "
                       "prompt, line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                       "ON CONFLICT(suite_id, item_key) DO UPDATE SET item_key = excluded.item_key "
                       "RETURNING id",
                       1},
    [S_ITEM_ID] = {"SELECT id FROM items WHERE suite_id = ?1 AND item_key = ?2", 0},
    [S_ITEM_LIST] = {"SELECT id, item_key, slice, kind, metric, prompt_sha256, prompt, line "
                     "FROM items WHERE suite_id = ?1 ORDER BY id",
                     0},
    [S_RESULT_INSERT] = {"INSERT INTO item_results(run_id, config_id, item_id, correct, score, "
                         "output, nll, n_tokens, mean_kl, top1_agreement, flipped, status, error) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                         "ifnull(?12, 'ok'), ?13)",
                         1},
    [S_RESULT_EXISTS] = {"SELECT 1 FROM item_results WHERE run_id = ?1 AND config_id = ?2 "
                         "AND item_id = ?3",
                         0},
    [S_DONE_LIST] = {"SELECT config_id, item_id FROM item_results WHERE run_id = ?1 "
                     "ORDER BY config_id, item_id",
                     0},
    [S_RESULT_LIST] = {"SELECT config_id, item_id, correct, score, output, nll, n_tokens, "
                       "mean_kl, top1_agreement, flipped, status, error FROM item_results "
                       "WHERE run_id = ?1 AND (?2 = 0 OR config_id = ?2) "
                       "ORDER BY config_id, item_id",
                       0},
    [S_TOPK_INSERT] = {"INSERT INTO baseline_topk(run_id, item_id, position, k, data) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
                       1},
    [S_TOPK_GET] = {"SELECT k, data FROM baseline_topk WHERE run_id = ?1 AND item_id = ?2 "
                    "AND position = ?3",
                    0},
    [S_TOPK_LIST] = {"SELECT position, k, data FROM baseline_topk WHERE run_id = ?1 "
                     "AND item_id = ?2 ORDER BY position",
                     0},
    [S_LAT_INSERT] = {"INSERT INTO latency_samples(run_id, config_id, prompt_len, gen_len, batch, "
                      "repetition, ttft_ms, tpot_ms, e2e_ms, decode_tok_s, host, device) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                      1},
    [S_LAT_LIST] = {"SELECT prompt_len, gen_len, batch, repetition, ttft_ms, tpot_ms, e2e_ms, "
                    "decode_tok_s, host, device FROM latency_samples WHERE run_id = ?1 "
                    "AND config_id = ?2 "
                    "ORDER BY prompt_len, gen_len, batch, repetition",
                    0},
    [S_MEM_UPSERT] =
        {"INSERT INTO memory(run_id, config_id, context, weight_bytes, kv_cache_bytes, "
         "peak_rss_bytes, host, device) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
         "ON CONFLICT(run_id, config_id, context) DO UPDATE SET "
         "weight_bytes = excluded.weight_bytes, "
         "kv_cache_bytes = excluded.kv_cache_bytes, "
         "peak_rss_bytes = excluded.peak_rss_bytes, host = excluded.host, "
         "device = excluded.device",
         1},
    [S_MEM_LIST] = {"SELECT context, weight_bytes, kv_cache_bytes, peak_rss_bytes, host, device "
                    "FROM memory WHERE run_id = ?1 AND config_id = ?2 ORDER BY context",
                    0},
    [S_CAL_INSERT] = {"INSERT INTO calibration(run_id, config_id, sha256, n_sequences, seq_len) "
                      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                      1},
    [S_CAL_LIST] = {"SELECT ifnull(config_id, 0), sha256, n_sequences, seq_len FROM calibration "
                    "WHERE run_id = ?1 ORDER BY ifnull(config_id, 0), id",
                    0},
    /* run_locks is written only by writers, who have migrated to version 3 */
    [S_LOCK_GET] = {"SELECT host, pid, proc_start, since FROM run_locks WHERE run_id = ?1", 1},
    [S_LOCK_PUT] = {"INSERT OR REPLACE INTO run_locks(run_id, host, pid, proc_start) "
                    "VALUES (?1, ?2, ?3, ?4)",
                    1},
    [S_LOCK_DROP] = {"DELETE FROM run_locks WHERE run_id = ?1 AND host = ?2 AND pid = ?3", 1},
    /* shards (v5), written and read only by writers */
    [S_SHARD_GET] = {"SELECT shard_index, shard_count, plan_sha256, token, n_units, probe "
                     "FROM shards WHERE run_id = ?1 ORDER BY shard_index LIMIT 1",
                     1},
    [S_SHARD_PUT] = {"INSERT INTO shards(run_id, shard_index, shard_count, plan_sha256, token, "
                     "n_units, probe, host, machine_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                     "?9)",
                     1},
};

/* What a reader of a store older than version 4 prepares instead: the same columns, with
 * NULL for those version 4 added (the statements above name them). */
static const struct {
    int id;
    const char *sql;
} pre_v4_sql[] = {
    {S_RUN_GET, "SELECT r.name, r.qbrief_version, r.git_commit, r.command_line, r.host, "
                "r.machine_json, r.baseline_config, r.settings_json, r.started_at, "
                "r.finished_at, m.path, m.sha256, m.architecture, m.format, m.n_params, "
                "s.path, s.sha256, s.n_items, NULL, NULL FROM runs r "
                "JOIN models m ON m.id = r.model_id JOIN suites s ON s.id = r.suite_id "
                "WHERE r.id = ?1"},
    {S_LAT_LIST, "SELECT prompt_len, gen_len, batch, repetition, ttft_ms, tpot_ms, e2e_ms, "
                 "decode_tok_s, NULL, NULL FROM latency_samples WHERE run_id = ?1 "
                 "AND config_id = ?2 ORDER BY prompt_len, gen_len, batch, repetition"},
    {S_MEM_LIST, "SELECT context, weight_bytes, kv_cache_bytes, peak_rss_bytes, NULL, NULL "
                 "FROM memory WHERE run_id = ?1 AND config_id = ?2 ORDER BY context"},
};

struct qb_store {
    sqlite3 *db;
    int64_t version; /* the schema version as opened (a reader may open an older one) */
    char *path;
    int readonly;
    int query_only;  /* a reader on a read-write connection (see open_db) */
    int through_wal; /* a reader that may not write, reading through a writer's -wal */
    sqlite3_stmt *st[N_STMT];
    unsigned char *buf; /* top-k encode/decode scratch */
    size_t buf_cap;
    int64_t *held; /* runs whose run_locks row this handle took; released at finish or close */
    int n_held, cap_held;
};

/* --- errors --------------------------------------------------------------------------- */

/* Maps a failed SQLite call (rc, the extended code) to a QB_E* code and message naming the
 * file. st, when given, is reset first; a full disk rolls the open transaction back. */
static int sql_fail(struct qb_store *s, sqlite3_stmt *st, int rc, const char *what)
{
    char msg[512];

    snprintf(msg, sizeof msg, "%s", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    if (st)
        sqlite3_reset(st);
    switch (rc & 0xff) {
    case SQLITE_FULL:
        if (s->db && !sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return qb_err(QB_EIO, "'%s': disk full while %s; the transaction was rolled back", s->path,
                      what);
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return qb_err(QB_EINVAL, "'%s': %s: already recorded (%s)", s->path, what, msg);
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return qb_err(QB_EINVAL,
                          "'%s': %s: refers to a run, config, item or suite that is "
                          "not in the store (%s)",
                          s->path, what, msg);
        return qb_err(QB_EINVAL, "'%s': %s: %s", s->path, what, msg);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT:
        return qb_err(QB_EFORMAT, "'%s': not a qbrief results database (%s)", s->path, msg);
    case SQLITE_NOMEM: return qb_err(QB_ENOMEM, "'%s': out of memory while %s", s->path, what);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return qb_err(QB_EIO, "'%s': database is locked by another process while %s", s->path,
                      what);
    case SQLITE_READONLY:
        return qb_err(QB_EIO, "'%s': read-only while %s (%s)", s->path, what, msg);
    default: return qb_err(QB_EIO, "'%s': %s: %s", s->path, what, msg);
    }
}

/* Runs a statement that returns no rows and resets it. */
static int step_done(struct qb_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sql_fail(s, st, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return 0;
}

/* Runs a statement that returns one integer (RETURNING id, SELECT id) into *out. */
static int step_id(struct qb_store *s, sqlite3_stmt *st, const char *what, int64_t *out)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sql_fail(s, st, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, what);
    *out = sqlite3_column_int64(st, 0);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) /* RETURNING completes its write on DONE */
        ;
    if (rc != SQLITE_DONE)
        return sql_fail(s, st, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return 0;
}

static int exec(struct qb_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sql_fail(s, NULL, rc, what);
}

static int writable(struct qb_store *s)
{
    if (s->readonly)
        return qb_err(QB_EINVAL, "'%s': opened read-only", s->path);
    return 0;
}

/* --- binding -------------------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC); /* the caller's string outlives the step */
    else
        sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

/* v < 0 is NULL (unknown) */
static void bind_count(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static int64_t col_count(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* --- open, migrate, close ------------------------------------------------------------- */

static int pragma_int(struct qb_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        rc = sql_fail(s, st, rc, "reading the schema");
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    return 0;
}

/* quick_check reads every page once: a truncated or damaged file is refused at open */
static int quick_check(struct qb_store *s, const char *pragma)
{
    sqlite3_stmt *st = NULL;
    const char *row;
    int rc = sqlite3_prepare_v2(s->db, pragma, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = sql_fail(s, st, rc, "checking the database");
        goto out;
    }
    row = col_text(st, 0);
    if (!row || strcmp(row, "ok")) {
        rc = qb_err(QB_EFORMAT, "'%s': not a qbrief results database (corrupt: %s)", s->path,
                    row ? row : "no answer");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int migrate(struct qb_store *s, int64_t version)
{
    char sql[64];
    int rc;

    if (version < 0 || version > N_MIGRATIONS) /* read_header refuses these; never index */
        return qb_err(QB_EFORMAT, "'%s': schema version %lld", s->path, (long long)version);
    for (int64_t v = version + 1; v <= N_MIGRATIONS; v++) {
        int64_t now;
        if ((rc = exec(s, "BEGIN IMMEDIATE", "migrating the schema")) < 0)
            return rc;
        /* another process may have migrated between our read and the lock */
        if ((rc = pragma_int(s, "PRAGMA user_version", &now)) < 0)
            goto fail;
        if (now < v) {
            snprintf(sql, sizeof sql, "PRAGMA user_version = %d", (int)v);
            if ((rc = exec(s, migrations[v - 1], "migrating the schema")) < 0 ||
                (rc = exec(s, sql, "migrating the schema")) < 0)
                goto fail;
        }
        if ((rc = exec(s, "COMMIT", "migrating the schema")) < 0)
            goto fail;
    }
    return 0;
fail:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return qb_err_prefix(rc, "cannot migrate '%s' to schema version %d", s->path, N_MIGRATIONS);
}

/* 1 when this process may write path and create files beside it (effective ids; a
 * read-only filesystem says no). */
static int may_write(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t n = slash ? (size_t)(slash - path) : 0;

    if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0)
        return 0;
    if (!slash)
        return faccessat(AT_FDCWD, ".", W_OK, AT_EACCESS) == 0;
    if (n == 0)
        n = 1; /* "/x.db": the root */
    if (n >= sizeof dir)
        return 0;
    memcpy(dir, path, n);
    dir[n] = 0;
    return faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) == 0;
}

/* An SQLite URI for path with ?immutable=1: '%', '?', '#' and control bytes are escaped,
 * and an absolute path gets an empty authority ("file:///..."). NULL when out of memory. */
static char *immutable_uri(const char *path)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(path);
    char *u = malloc(3 * n + 32), *p = u;

    if (!u)
        return NULL;
    p += sprintf(p, "file:%s", path[0] == '/' ? "//" : "");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#' || *c < 0x20 || *c == 0x7f) {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        } else {
            *p++ = (char)*c;
        }
    }
    strcpy(p, "?immutable=1");
    return u;
}

/* 1 when path followed by suffix ("-wal") exists; 1 as well when out of memory, the side on
 * which a reader does not trust the file alone. */
static int beside_exists(const char *path, const char *suffix)
{
    char *p = malloc(strlen(path) + strlen(suffix) + 1);
    int yes;
    if (!p)
        return 1;
    strcpy(p, path);
    strcat(p, suffix);
    yes = access(p, F_OK) == 0;
    free(p);
    return yes;
}

/* Opens the connection. A writer opens read-write and creates the file. A reader never
 * leaves files it made behind nor writes a row:
 *  - it may write the store and its folder: read-write with query_only, so SQLite removes
 *    the -wal and -shm it makes when the last connection closes;
 *  - it may not, and a -wal is there (a writer is at work, or died): read-only, through
 *    the writer's -wal and -shm;
 *  - it may not, and there is no -wal: every committed transaction is in the file itself,
 *    which is opened immutable (no -shm, no locks; SQLite cannot read a WAL store
 *    read-only otherwise when it may not create the -shm). A writer that starts during
 *    such a read is not seen; were it to checkpoint (at 1000 pages of log, or at its
 *    close) before the read ends, the reader could meet changed pages and report the file
 *    as damaged, and reading again is the cure. */
static int open_db(struct qb_store *s, const char *path)
{
    struct stat st;
    char *uri = NULL;
    int flags = SQLITE_OPEN_NOMUTEX, rc;

    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return qb_err(QB_EIO, "'%s': not a regular file, so not a results database", path);
    if (!s->readonly) {
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    } else if (access(path, F_OK) != 0) {
        return qb_err(QB_EIO, "cannot open the results database '%s': %s", path, strerror(errno));
    } else if (may_write(path)) {
        flags |= SQLITE_OPEN_READWRITE;
        s->query_only = 1;
    } else {
        flags |= SQLITE_OPEN_READONLY;
        s->through_wal = beside_exists(path, "-wal");
        /* a -journal is a writer that died while creating the store: not immutable either */
        if (!s->through_wal && !beside_exists(path, "-journal")) {
            if (!(uri = immutable_uri(path)))
                return qb_err(QB_ENOMEM, "'%s': out of memory opening the results database", path);
            flags |= SQLITE_OPEN_URI;
        }
    }
    rc = sqlite3_open_v2(uri ? uri : path, &s->db, flags, NULL);
    free(uri);
    if (rc != SQLITE_OK)
        return qb_err(QB_EIO, "'%s': cannot open the results database: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    return 0;
}

/* Reads user_version, application_id and the table count, and refuses what is not a
 * qbrief store this qbrief can open, before anything is written or indexed by version. */
static int read_header(struct qb_store *s, int64_t *version, int64_t *n_tables)
{
    int64_t app_id;
    int rc;

    /* the first read of the header: a text file fails here with SQLITE_NOTADB */
    if ((rc = pragma_int(s, "SELECT count(*) FROM sqlite_schema", n_tables)) < 0 ||
        (rc = pragma_int(s, "PRAGMA user_version", version)) < 0 ||
        (rc = pragma_int(s, "PRAGMA application_id", &app_id)) < 0)
        return rc;
    if (s->readonly && *n_tables == 0 && *version == 0 && app_id == 0)
        return qb_err(QB_EFORMAT,
                      "'%s': an empty file, not a qbrief results database (qbrief run "
                      "writes one)",
                      s->path);
    if ((*version != 0 || *n_tables > 0 || s->readonly) && app_id != APP_ID)
        return qb_err(QB_EFORMAT,
                      "'%s': not a qbrief results database (an SQLite database of "
                      "something else, application_id %lld)",
                      s->path, (long long)app_id);
    if (*version < 0 || (*version == 0 && *n_tables > 0))
        return qb_err(QB_EFORMAT,
                      "'%s': not a qbrief results database (schema version %lld, with %lld "
                      "tables)",
                      s->path, (long long)*version, (long long)*n_tables);
    if (*version > N_MIGRATIONS)
        return qb_err(QB_EUNSUP,
                      "'%s': written by a newer qbrief (schema version %lld, this "
                      "qbrief knows up to %d); use a newer qbrief or another file",
                      s->path, (long long)*version, N_MIGRATIONS);
    if (s->readonly && *version < READ_MIN_VERSION)
        return qb_err(QB_EUNSUP,
                      "'%s': schema version %lld is older than %d; open it once "
                      "with qbrief run to upgrade it",
                      s->path, (long long)*version, READ_MIN_VERSION);
    return 0;
}

/* PRAGMA journal_mode = WAL. The mode is kept in the file, so a store that is already WAL
 * needs no lock; switching a new file does, and SQLite answers SQLITE_BUSY at once (its
 * busy handler is not used there) when a second qbrief opens the same new file at that
 * moment. So the switch is retried for up to BUSY_MS. */
static int set_wal(struct qb_store *s)
{
    for (int waited = 0;; waited += 5) {
        sqlite3_stmt *st = NULL;
        const char *mode;
        int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            mode = col_text(st, 0);
            rc = mode && !strcmp(mode, "wal") ? SQLITE_OK : SQLITE_CANTOPEN;
        }
        if (rc == SQLITE_OK) {
            sqlite3_finalize(st);
            return 0;
        }
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) || waited >= BUSY_MS) {
            rc = sql_fail(s, st, rc, "switching to WAL mode");
            sqlite3_finalize(st);
            return rc;
        }
        sqlite3_finalize(st);
        sqlite3_sleep(5);
    }
}

static int prepare_all(struct qb_store *s)
{
    for (int i = 0; i < N_STMT; i++) {
        const char *sql = stmt_sql[i].sql;
        int rc;
        if (s->readonly && stmt_sql[i].w)
            continue;
        for (size_t k = 0; s->version < 4 && k < sizeof pre_v4_sql / sizeof *pre_v4_sql; k++)
            if (pre_v4_sql[k].id == i)
                sql = pre_v4_sql[k].sql;
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) /* the schema is ours by application_id and version: damage */
            return qb_err(QB_EFORMAT, "'%s': not a qbrief results database (%s)", s->path,
                          sqlite3_errmsg(s->db));
    }
    return 0;
}

int qb_store_open(const char *path, int flags, struct qb_store **out)
{
    struct qb_store *s = NULL;
    int64_t version, n_tables;
    int rc;

    *out = NULL;
    if (!(s = calloc(1, sizeof *s)) || !(s->path = strdup(path))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory opening the results database", path);
        goto fail;
    }
    s->readonly = !!(flags & QB_STORE_READONLY);
    if ((rc = open_db(s, path)) < 0)
        goto fail;
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_MS);

    if ((rc = read_header(s, &version, &n_tables)) < 0) {
        /* SQLite needs the -shm beside a -wal, and this user may not create it */
        if (s->through_wal && rc == QB_EIO)
            rc = qb_err_prefix(rc,
                               "'%s': cannot read it while its write-ahead log '%s-wal' is "
                               "there and this user may not create '%s-shm' (let the writing "
                               "qbrief finish, or open it once where it is writable)",
                               path, path, path);
        goto fail;
    }
    if (n_tables > 0 && (rc = quick_check(s, "PRAGMA quick_check(1)")) < 0)
        goto fail;
    if (!s->readonly && (rc = set_wal(s)) < 0)
        goto fail;
    if ((rc = exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL",
                   "setting up the connection")) < 0)
        goto fail;
    if (s->query_only && (rc = exec(s, "PRAGMA query_only = ON", "setting up the connection")) < 0)
        goto fail;
    if (!s->readonly && version < N_MIGRATIONS && (rc = migrate(s, version)) < 0)
        goto fail;
    s->version = s->readonly ? version : N_MIGRATIONS;
    if ((rc = prepare_all(s)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    qb_store_close(s);
    return rc;
}

static int run_unlock(struct qb_store *s, int64_t run_id);

void qb_store_close(struct qb_store *s)
{
    if (!s)
        return;
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    /* a run left unfinished (an error, a stop) can be resumed at once; on failure here the
     * row stays and the next run finds its process gone */
    for (int i = 0; i < s->n_held; i++)
        run_unlock(s, s->held[i]);
    for (int i = 0; i < N_STMT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->held);
    free(s->buf);
    free(s->path);
    free(s);
}

const char *qb_store_path(const struct qb_store *s)
{
    return s->path;
}

int qb_store_set_max_bytes(struct qb_store *s, int64_t max_bytes)
{
    int64_t page, got;
    char sql[80];
    int rc;

    if ((rc = pragma_int(s, "PRAGMA page_size", &page)) < 0)
        return rc;
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
             (long long)(max_bytes / page > 0 ? max_bytes / page : 1));
    return pragma_int(s, sql, &got);
}

int qb_store_check(struct qb_store *s)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = quick_check(s, "PRAGMA integrity_check(1)")) < 0)
        return rc;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA foreign_key_check", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = qb_err(QB_EFORMAT, "'%s': corrupt: a row of '%s' refers to a missing '%s' row",
                    s->path, col_text(st, 0), col_text(st, 2));
    else if (rc != SQLITE_DONE)
        rc = sql_fail(s, st, rc, "checking foreign keys");
    else
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

/* --- transactions --------------------------------------------------------------------- */

int qb_store_begin(struct qb_store *s)
{
    int rc;
    if ((rc = writable(s)) < 0)
        return rc;
    return step_done(s, s->st[S_BEGIN], "beginning a transaction");
}

int qb_store_commit(struct qb_store *s)
{
    int rc;
    if ((rc = writable(s)) < 0)
        return rc;
    if ((rc = step_done(s, s->st[S_COMMIT], "committing")) < 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* all or nothing */
    return rc;
}

int qb_store_rollback(struct qb_store *s)
{
    int rc;
    if ((rc = writable(s)) < 0)
        return rc;
    if (sqlite3_get_autocommit(s->db))
        return 0; /* already rolled back (a full disk, or SQLite did it) */
    return step_done(s, s->st[S_ROLLBACK], "rolling back");
}

/* --- runs ----------------------------------------------------------------------------- */

static int run_open(struct qb_store *s, const struct qb_store_run *run,
                    const struct qb_store_model *m, const struct qb_store_suite *su,
                    int64_t *run_id, int64_t *suite_id)
{
    sqlite3_stmt *st = s->st[S_RUN_LOOKUP];
    int64_t model_id;
    int rc;

    sqlite3_bind_text(st, 1, run->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *msha = col_text(st, 1), *ssha = col_text(st, 2);
        *run_id = sqlite3_column_int64(st, 0);
        *suite_id = sqlite3_column_int64(st, 3);
        if (strcmp(msha, m->sha256))
            rc = qb_err(QB_EINVAL,
                        "'%s': run '%s' was recorded with model sha256 %s, this "
                        "model is %s; use another --name",
                        s->path, run->name, msha, m->sha256);
        else if (strcmp(ssha, su->sha256))
            rc = qb_err(QB_EINVAL,
                        "'%s': run '%s' was recorded with suite sha256 %s, this "
                        "suite is %s; use another --name",
                        s->path, run->name, ssha, su->sha256);
        else
            rc = 0;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc;
    }
    if (rc != SQLITE_DONE)
        return sql_fail(s, st, rc, "looking up the run");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);

    st = s->st[S_MODEL_UPSERT];
    bind_text(st, 1, m->sha256);
    bind_text(st, 2, m->path);
    bind_text(st, 3, m->architecture);
    sqlite3_bind_int64(st, 4, m->n_params);
    bind_text(st, 5, m->format);
    if ((rc = step_id(s, st, "recording the model", &model_id)) < 0)
        return rc;

    st = s->st[S_SUITE_UPSERT];
    bind_text(st, 1, su->sha256);
    bind_text(st, 2, su->path);
    sqlite3_bind_int64(st, 3, su->n_items);
    if ((rc = step_id(s, st, "recording the suite", suite_id)) < 0)
        return rc;

    st = s->st[S_RUN_INSERT];
    bind_text(st, 1, run->name);
    bind_text(st, 2, run->qbrief_version);
    bind_text(st, 3, run->git_commit);
    bind_text(st, 4, run->command_line);
    bind_text(st, 5, run->host);
    bind_text(st, 6, run->machine_json);
    sqlite3_bind_int64(st, 7, model_id);
    sqlite3_bind_int64(st, 8, *suite_id);
    bind_text(st, 9, run->baseline_config);
    bind_text(st, 10, run->settings_json);
    bind_text(st, 11, run->device);
    bind_text(st, 12, run->device_json);
    return step_id(s, st, "recording the run", run_id);
}

/* --- run locks ------------------------------------------------------------------------ */

/* The process's start time (field 22 of /proc/PID/stat, clock ticks after boot): with the
 * PID it names one process, so a PID reused after a crash is not taken for the process that
 * locked the run. 0 when unknown (no /proc), -1 when the process is gone or a zombie. */
static long long proc_start(long long pid)
{
    char path[64], buf[1024], *p;
    long long start = 0;
    size_t n;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    if (!(f = fopen(path, "re")))
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* "pid (comm) S ppid ...": comm may hold spaces and parentheses, the last ')' ends it */
    if (!(p = strrchr(buf, ')')) || p[1] != ' ')
        return 0;
    if (p[2] == 'Z' || p[2] == 'X')
        return -1;
    p += 2;
    for (int field = 3; field < 22 && p; field++)
        if ((p = strchr(p, ' ')))
            p++;
    if (p && sscanf(p, "%lld", &start) != 1)
        start = 0;
    return start > 0 ? start : 0;
}

/* 1 when process pid of this host still runs and (when both are known) started at start. */
static int proc_alive(long long pid, long long start)
{
    long long now;
    if (pid <= 0 || (pid_t)pid != pid || (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
        return 0;
    if ((now = proc_start(pid)) < 0)
        return 0;
    return !(start > 0 && now > 0 && now != start);
}

static void host_name(char *buf, size_t n)
{
    if (gethostname(buf, n) != 0 || !buf[0])
        snprintf(buf, n, "unknown");
    buf[n - 1] = 0;
}

/* QB_EIO naming the process when a live process of this host other than this one holds
 * run_id's row of run_locks; 0 when no row, or one of a process that is gone (a crash,
 * SIGKILL), of a PID since reused, or of another host, which can be taken over. Another
 * host cannot be writing: SQLite's WAL works on one machine only, so such a row came with
 * a store copied from elsewhere. This process's own row is taken again (a resume). */
static int run_holder(struct qb_store *s, int64_t run_id, const char *name, const char *host)
{
    sqlite3_stmt *st = s->st[S_LOCK_GET];
    int rc;

    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_fail(s, st, rc, "reading the run's lock");
    if (rc == SQLITE_ROW) {
        const char *o_host = col_text(st, 0), *since = col_text(st, 3);
        long long o_pid = sqlite3_column_int64(st, 1), o_start = sqlite3_column_int64(st, 2);
        rc = 0;
        if (o_host && !strcmp(o_host, host) && o_pid != (long long)getpid() &&
            proc_alive(o_pid, o_start))
            rc = qb_err(QB_EIO,
                        "'%s': run '%s' is being written by process %lld on '%s' (since "
                        "%s); wait for it to finish, or use another --name",
                        s->path, name, o_pid, o_host, since ? since : "?");
    } else {
        rc = 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Takes the run's row of run_locks inside run_open's transaction (see run_holder). */
static int run_lock(struct qb_store *s, int64_t run_id, const char *name)
{
    sqlite3_stmt *st = s->st[S_LOCK_PUT];
    long long start = proc_start((long long)getpid());
    char host[256];
    int rc;

    host_name(host, sizeof host);
    if ((rc = run_holder(s, run_id, name, host)) < 0)
        return rc;
    if (s->n_held == s->cap_held) {
        int cap = s->cap_held ? 2 * s->cap_held : 4;
        int64_t *p = realloc(s->held, (size_t)cap * sizeof *p);
        if (!p)
            return qb_err(QB_ENOMEM, "'%s': out of memory locking run '%s'", s->path, name);
        s->held = p;
        s->cap_held = cap;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (long long)getpid());
    sqlite3_bind_int64(st, 4, start > 0 ? start : 0);
    if ((rc = step_done(s, st, "locking the run")) < 0)
        return rc;
    for (int i = 0; i < s->n_held; i++)
        if (s->held[i] == run_id)
            return 0;
    s->held[s->n_held++] = run_id;
    return 0;
}

/* Before waiting for the write lock: a run held by a live process is refused at once, even
 * while that process is inside a transaction (a read does not wait in WAL mode). run_lock
 * decides again under the write lock. */
static int run_precheck(struct qb_store *s, const char *name)
{
    sqlite3_stmt *st = s->st[S_RUN_FIND];
    char host[256];
    int64_t run_id;
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) { /* a new run */
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return 0;
    }
    if (rc != SQLITE_ROW)
        return sql_fail(s, st, rc, "looking up the run");
    run_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    host_name(host, sizeof host);
    return run_holder(s, run_id, name, host);
}

/* Drops this process's row for the run (another process's row is left alone). */
static int run_unlock(struct qb_store *s, int64_t run_id)
{
    sqlite3_stmt *st = s->st[S_LOCK_DROP];
    char host[256];
    int j = 0;

    for (int i = 0; i < s->n_held; i++)
        if (s->held[i] != run_id)
            s->held[j++] = s->held[i];
    s->n_held = j;
    host_name(host, sizeof host);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (long long)getpid());
    return step_done(s, st, "unlocking the run");
}

int qb_store_run_open(struct qb_store *s, const struct qb_store_run *run,
                      const struct qb_store_model *model, const struct qb_store_suite *suite,
                      int64_t *run_id, int64_t *suite_id)
{
    int64_t sid = 0;
    int own, rc;

    if ((rc = writable(s)) < 0)
        return rc;
    if (!run->name || !model->sha256 || !suite->sha256)
        return qb_err(QB_EINVAL, "'%s': a run needs a name, a model sha256 and a suite sha256",
                      s->path);
    /* Outside the caller's transaction, BEGIN IMMEDIATE takes the write lock before the
     * lookup: a deferred transaction that reads and then writes gets SQLITE_BUSY at once
     * (the busy timeout does not apply) when another process wrote in between. Inside
     * one, a savepoint. */
    own = sqlite3_get_autocommit(s->db);
    if (own && (rc = run_precheck(s, run->name)) < 0)
        return rc;
    if ((rc = step_done(s, s->st[own ? S_BEGIN : S_SAVEPOINT], "opening the run")) < 0)
        return rc;
    if ((rc = run_open(s, run, model, suite, run_id, &sid)) < 0 ||
        (rc = run_lock(s, *run_id, run->name)) < 0 ||
        (rc = step_done(s, s->st[own ? S_COMMIT : S_RELEASE], "opening the run")) < 0) {
        if (!sqlite3_get_autocommit(s->db) && own) {
            sqlite3_step(s->st[S_ROLLBACK]);
            sqlite3_reset(s->st[S_ROLLBACK]);
        } else if (!sqlite3_get_autocommit(s->db)) {
            sqlite3_step(s->st[S_ROLLBACK_TO]);
            sqlite3_reset(s->st[S_ROLLBACK_TO]);
            sqlite3_step(s->st[S_RELEASE]);
            sqlite3_reset(s->st[S_RELEASE]);
        }
        return rc;
    }
    if (suite_id)
        *suite_id = sid;
    return 0;
}

int qb_store_run_finish(struct qb_store *s, int64_t run_id)
{
    int rc;
    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(s->st[S_RUN_FINISH], 1, run_id);
    if ((rc = step_done(s, s->st[S_RUN_FINISH], "finishing the run")) < 0)
        return rc;
    if (sqlite3_changes(s->db) != 1)
        return qb_err(QB_EINVAL, "'%s': no run with id %lld", s->path, (long long)run_id);
    return run_unlock(s, run_id);
}

int qb_store_run_find(struct qb_store *s, const char *name, int64_t *run_id)
{
    sqlite3_stmt *st = s->st[S_RUN_FIND];
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return qb_err(QB_EINVAL, "'%s': no run named '%s'", s->path, name);
    }
    if (rc != SQLITE_ROW)
        return sql_fail(s, st, rc, "looking up the run");
    *run_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return 0;
}

int qb_store_get_run(struct qb_store *s, int64_t run_id,
                     int (*cb)(void *ctx, const struct qb_store_run *run,
                               const struct qb_store_model *model,
                               const struct qb_store_suite *suite),
                     void *ctx)
{
    sqlite3_stmt *st = s->st[S_RUN_GET];
    int rc;

    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return qb_err(QB_EINVAL, "'%s': no run with id %lld", s->path, (long long)run_id);
    }
    if (rc != SQLITE_ROW)
        return sql_fail(s, st, rc, "reading the run");
    {
        struct qb_store_run r = {
            .name = col_text(st, 0),
            .qbrief_version = col_text(st, 1),
            .git_commit = col_text(st, 2),
            .command_line = col_text(st, 3),
            .host = col_text(st, 4),
            .machine_json = col_text(st, 5),
            .baseline_config = col_text(st, 6),
            .settings_json = col_text(st, 7),
            .started_at = col_text(st, 8),
            .finished_at = col_text(st, 9),
            .device = col_text(st, 18),
            .device_json = col_text(st, 19),
        };
        struct qb_store_model m = {
            .path = col_text(st, 10),
            .sha256 = col_text(st, 11),
            .architecture = col_text(st, 12),
            .format = col_text(st, 13),
            .n_params = sqlite3_column_int64(st, 14),
        };
        struct qb_store_suite su = {
            .path = col_text(st, 15),
            .sha256 = col_text(st, 16),
            .n_items = sqlite3_column_int64(st, 17),
        };
        rc = cb(ctx, &r, &m, &su);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Steps a bound SELECT and calls row(s, st, ctx) per row until it returns nonzero. */
static int each_row(struct qb_store *s, sqlite3_stmt *st, const char *what,
                    int (*row)(struct qb_store *s, sqlite3_stmt *st, void *ctx), void *ctx)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int r = row(s, st, ctx);
        if (r) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return r;
        }
    }
    if (rc != SQLITE_DONE)
        return sql_fail(s, st, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return 0;
}

/* --- configs -------------------------------------------------------------------------- */

int qb_store_put_config(struct qb_store *s, int64_t run_id, const struct qb_store_config *c,
                        int64_t *config_id)
{
    sqlite3_stmt *st = s->st[S_CONFIG_UPSERT];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    bind_text(st, 2, c->spec);
    bind_real(st, 3, c->bits_per_weight);
    bind_count(st, 4, c->weight_bytes);
    bind_real(st, 5, c->quant_seconds);
    return step_id(s, st, "recording a config", config_id);
}

struct list_ctx {
    void (*fn)(void); /* the caller's callback, cast back by each row function */
    void *ctx;
};

static int config_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, int64_t, const struct qb_store_config *) =
        (int (*)(void *, int64_t, const struct qb_store_config *))l->fn;
    struct qb_store_config c = {
        .spec = col_text(st, 1),
        .bits_per_weight = col_real(st, 2),
        .weight_bytes = col_count(st, 3),
        .quant_seconds = col_real(st, 4),
    };
    (void)s;
    return cb(l->ctx, sqlite3_column_int64(st, 0), &c);
}

int qb_store_list_configs(struct qb_store *s, int64_t run_id,
                          int (*cb)(void *ctx, int64_t id, const struct qb_store_config *c),
                          void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_CONFIG_LIST], 1, run_id);
    return each_row(s, s->st[S_CONFIG_LIST], "listing configs", config_row, &l);
}

/* --- items ---------------------------------------------------------------------------- */

int qb_store_put_item(struct qb_store *s, int64_t suite_id, const struct qb_store_item *it,
                      int64_t *item_id)
{
    sqlite3_stmt *st = s->st[S_ITEM_UPSERT];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, suite_id);
    bind_text(st, 2, it->key);
    bind_text(st, 3, it->slice);
    bind_text(st, 4, it->kind);
    bind_text(st, 5, it->metric);
    bind_text(st, 6, it->prompt_sha256);
    bind_text(st, 7, it->prompt);
    bind_count(st, 8, it->line);
    return step_id(s, st, "recording an item", item_id);
}

int qb_store_item_id(struct qb_store *s, int64_t suite_id, const char *key, int64_t *item_id)
{
    sqlite3_stmt *st = s->st[S_ITEM_ID];
    int rc;

    sqlite3_bind_int64(st, 1, suite_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return qb_err(QB_EINVAL, "'%s': no item '%s' in suite %lld", s->path, key,
                      (long long)suite_id);
    }
    if (rc != SQLITE_ROW)
        return sql_fail(s, st, rc, "looking up an item");
    *item_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return 0;
}

static int item_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, int64_t, const struct qb_store_item *) =
        (int (*)(void *, int64_t, const struct qb_store_item *))l->fn;
    struct qb_store_item it = {
        .key = col_text(st, 1),
        .slice = col_text(st, 2),
        .kind = col_text(st, 3),
        .metric = col_text(st, 4),
        .prompt_sha256 = col_text(st, 5),
        .prompt = col_text(st, 6),
        .line = col_count(st, 7),
    };
    (void)s;
    return cb(l->ctx, sqlite3_column_int64(st, 0), &it);
}

int qb_store_list_items(struct qb_store *s, int64_t suite_id,
                        int (*cb)(void *ctx, int64_t id, const struct qb_store_item *it), void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_ITEM_LIST], 1, suite_id);
    return each_row(s, s->st[S_ITEM_LIST], "listing items", item_row, &l);
}

/* --- results -------------------------------------------------------------------------- */

int qb_store_put_result(struct qb_store *s, int64_t run_id, const struct qb_store_result *r)
{
    sqlite3_stmt *st = s->st[S_RESULT_INSERT];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, r->config_id);
    sqlite3_bind_int64(st, 3, r->item_id);
    bind_count(st, 4, r->correct);
    bind_real(st, 5, r->score);
    bind_text(st, 6, r->output);
    bind_real(st, 7, r->nll);
    bind_count(st, 8, r->n_tokens);
    bind_real(st, 9, r->mean_kl);
    bind_real(st, 10, r->top1_agreement);
    bind_count(st, 11, r->flipped);
    bind_text(st, 12, r->status);
    bind_text(st, 13, r->error);
    return step_done(s, st, "recording a result");
}

int qb_store_result_exists(struct qb_store *s, int64_t run_id, int64_t config_id, int64_t item_id,
                           int *exists)
{
    sqlite3_stmt *st = s->st[S_RESULT_EXISTS];
    int rc;

    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, config_id);
    sqlite3_bind_int64(st, 3, item_id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_fail(s, st, rc, "looking up a result");
    *exists = rc == SQLITE_ROW;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return 0;
}

static int done_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, int64_t, int64_t) = (int (*)(void *, int64_t, int64_t))l->fn;
    (void)s;
    return cb(l->ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
}

int qb_store_list_done(struct qb_store *s, int64_t run_id,
                       int (*cb)(void *ctx, int64_t config_id, int64_t item_id), void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_DONE_LIST], 1, run_id);
    return each_row(s, s->st[S_DONE_LIST], "listing completed results", done_row, &l);
}

static int result_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, const struct qb_store_result *) =
        (int (*)(void *, const struct qb_store_result *))l->fn;
    struct qb_store_result r = {
        .config_id = sqlite3_column_int64(st, 0),
        .item_id = sqlite3_column_int64(st, 1),
        .correct = (int)col_count(st, 2),
        .score = col_real(st, 3),
        .output = col_text(st, 4),
        .nll = col_real(st, 5),
        .n_tokens = col_count(st, 6),
        .mean_kl = col_real(st, 7),
        .top1_agreement = col_real(st, 8),
        .flipped = (int)col_count(st, 9),
        .status = col_text(st, 10),
        .error = col_text(st, 11),
    };
    (void)s;
    return cb(l->ctx, &r);
}

int qb_store_list_results(struct qb_store *s, int64_t run_id, int64_t config_id,
                          int (*cb)(void *ctx, const struct qb_store_result *r), void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_RESULT_LIST], 1, run_id);
    sqlite3_bind_int64(s->st[S_RESULT_LIST], 2, config_id);
    return each_row(s, s->st[S_RESULT_LIST], "listing results", result_row, &l);
}

/* --- baseline top-k ------------------------------------------------------------------- */

static int grow(struct qb_store *s, size_t n)
{
    unsigned char *p;
    if (n <= s->buf_cap)
        return 0;
    if (!(p = realloc(s->buf, n)))
        return qb_err(QB_ENOMEM, "'%s': out of memory for %zu bytes of top-k", s->path, n);
    s->buf = p;
    s->buf_cap = n;
    return 0;
}

static void put_u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int qb_store_put_topk(struct qb_store *s, int64_t run_id, int64_t item_id, int64_t position, int k,
                      const int32_t *ids, const float *logprobs)
{
    sqlite3_stmt *st = s->st[S_TOPK_INSERT];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    if (k < 1 || k > TOPK_MAX)
        return qb_err(QB_EINVAL, "'%s': top-k of %d entries (1..%d)", s->path, k, TOPK_MAX);
    if ((rc = grow(s, (size_t)k * 8)) < 0)
        return rc;
    for (int i = 0; i < k; i++) {
        uint32_t bits;
        memcpy(&bits, &logprobs[i], 4);
        put_u32le(s->buf + 4 * (size_t)i, (uint32_t)ids[i]);
        put_u32le(s->buf + 4 * ((size_t)k + i), bits);
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, item_id);
    sqlite3_bind_int64(st, 3, position);
    sqlite3_bind_int(st, 4, k);
    sqlite3_bind_blob(st, 5, s->buf, k * 8, SQLITE_STATIC); /* s->buf is untouched until reset */
    return step_done(s, st, "recording baseline top-k");
}

/* Validates a stored (k, data) pair; returns its k or a negative code. */
static int topk_blob(struct qb_store *s, sqlite3_stmt *st, int ki, const unsigned char **data)
{
    int64_t k = sqlite3_column_int64(st, ki);
    *data = sqlite3_column_blob(st, ki + 1);
    if (k < 1 || k > TOPK_MAX || sqlite3_column_bytes(st, ki + 1) != k * 8 || !*data)
        return qb_err(QB_EFORMAT,
                      "'%s': not a qbrief results database (a top-k row holds %d "
                      "bytes for k = %lld)",
                      s->path, sqlite3_column_bytes(st, ki + 1), (long long)k);
    return (int)k;
}

static void topk_decode(const unsigned char *data, int k, int n, int32_t *ids, float *logprobs)
{
    for (int i = 0; i < n; i++) {
        uint32_t bits = get_u32le(data + 4 * ((size_t)k + i));
        ids[i] = (int32_t)get_u32le(data + 4 * (size_t)i);
        memcpy(&logprobs[i], &bits, 4);
    }
}

int qb_store_get_topk(struct qb_store *s, int64_t run_id, int64_t item_id, int64_t position,
                      int k_max, int32_t *ids, float *logprobs, int *k)
{
    sqlite3_stmt *st = s->st[S_TOPK_GET];
    const unsigned char *data;
    int rc;

    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, item_id);
    sqlite3_bind_int64(st, 3, position);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return qb_err(QB_EINVAL, "'%s': no baseline top-k for run %lld, item %lld, position %lld",
                      s->path, (long long)run_id, (long long)item_id, (long long)position);
    }
    if (rc != SQLITE_ROW)
        return sql_fail(s, st, rc, "reading baseline top-k");
    if ((rc = topk_blob(s, st, 0, &data)) > 0) {
        *k = rc;
        topk_decode(data, rc, rc < k_max ? rc : k_max, ids, logprobs);
        rc = 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int topk_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, int64_t, int, const int32_t *, const float *) =
        (int (*)(void *, int64_t, int, const int32_t *, const float *))l->fn;
    const unsigned char *data;
    int k, rc;

    if ((k = topk_blob(s, st, 1, &data)) < 0)
        return k;
    if ((rc = grow(s, (size_t)k * 8)) < 0)
        return rc;
    /* int32 ids then floats in one aligned buffer */
    topk_decode(data, k, k, (int32_t *)(void *)s->buf, (float *)(void *)(s->buf + 4 * (size_t)k));
    return cb(l->ctx, sqlite3_column_int64(st, 0), k, (const int32_t *)(void *)s->buf,
              (const float *)(void *)(s->buf + 4 * (size_t)k));
}

int qb_store_list_topk(struct qb_store *s, int64_t run_id, int64_t item_id,
                       int (*cb)(void *ctx, int64_t position, int k, const int32_t *ids,
                                 const float *logprobs),
                       void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_TOPK_LIST], 1, run_id);
    sqlite3_bind_int64(s->st[S_TOPK_LIST], 2, item_id);
    return each_row(s, s->st[S_TOPK_LIST], "listing baseline top-k", topk_row, &l);
}

/* --- latency, memory, calibration ----------------------------------------------------- */

int qb_store_put_latency(struct qb_store *s, int64_t run_id, int64_t config_id,
                         const struct qb_store_latency *l)
{
    sqlite3_stmt *st = s->st[S_LAT_INSERT];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, config_id);
    sqlite3_bind_int64(st, 3, l->prompt_len);
    sqlite3_bind_int64(st, 4, l->gen_len);
    sqlite3_bind_int64(st, 5, l->batch);
    sqlite3_bind_int64(st, 6, l->repetition);
    bind_real(st, 7, l->ttft_ms);
    bind_real(st, 8, l->tpot_ms);
    bind_real(st, 9, l->e2e_ms);
    bind_real(st, 10, l->decode_tok_s);
    bind_text(st, 11, l->host);
    bind_text(st, 12, l->device);
    return step_done(s, st, "recording a latency sample");
}

static int latency_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, const struct qb_store_latency *) =
        (int (*)(void *, const struct qb_store_latency *))l->fn;
    struct qb_store_latency v = {
        .prompt_len = sqlite3_column_int64(st, 0),
        .gen_len = sqlite3_column_int64(st, 1),
        .batch = sqlite3_column_int64(st, 2),
        .repetition = sqlite3_column_int64(st, 3),
        .ttft_ms = col_real(st, 4),
        .tpot_ms = col_real(st, 5),
        .e2e_ms = col_real(st, 6),
        .decode_tok_s = col_real(st, 7),
        .host = col_text(st, 8),
        .device = col_text(st, 9),
    };
    (void)s;
    return cb(l->ctx, &v);
}

int qb_store_list_latency(struct qb_store *s, int64_t run_id, int64_t config_id,
                          int (*cb)(void *ctx, const struct qb_store_latency *l), void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_LAT_LIST], 1, run_id);
    sqlite3_bind_int64(s->st[S_LAT_LIST], 2, config_id);
    return each_row(s, s->st[S_LAT_LIST], "listing latency samples", latency_row, &l);
}

int qb_store_put_memory(struct qb_store *s, int64_t run_id, int64_t config_id,
                        const struct qb_store_memory *m)
{
    sqlite3_stmt *st = s->st[S_MEM_UPSERT];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, config_id);
    sqlite3_bind_int64(st, 3, m->context);
    bind_count(st, 4, m->weight_bytes);
    bind_count(st, 5, m->kv_cache_bytes);
    bind_count(st, 6, m->peak_rss_bytes);
    bind_text(st, 7, m->host);
    bind_text(st, 8, m->device);
    return step_done(s, st, "recording memory");
}

static int memory_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, const struct qb_store_memory *) =
        (int (*)(void *, const struct qb_store_memory *))l->fn;
    struct qb_store_memory m = {
        .context = sqlite3_column_int64(st, 0),
        .weight_bytes = col_count(st, 1),
        .kv_cache_bytes = col_count(st, 2),
        .peak_rss_bytes = col_count(st, 3),
        .host = col_text(st, 4),
        .device = col_text(st, 5),
    };
    (void)s;
    return cb(l->ctx, &m);
}

int qb_store_list_memory(struct qb_store *s, int64_t run_id, int64_t config_id,
                         int (*cb)(void *ctx, const struct qb_store_memory *m), void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_MEM_LIST], 1, run_id);
    sqlite3_bind_int64(s->st[S_MEM_LIST], 2, config_id);
    return each_row(s, s->st[S_MEM_LIST], "listing memory", memory_row, &l);
}

int qb_store_put_calibration(struct qb_store *s, int64_t run_id, const struct qb_store_calib *c)
{
    sqlite3_stmt *st = s->st[S_CAL_INSERT];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    if (c->config_id > 0)
        sqlite3_bind_int64(st, 2, c->config_id);
    else
        sqlite3_bind_null(st, 2);
    bind_text(st, 3, c->sha256);
    sqlite3_bind_int64(st, 4, c->n_sequences);
    sqlite3_bind_int64(st, 5, c->seq_len);
    return step_done(s, st, "recording calibration");
}

static int calib_row(struct qb_store *s, sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *l = ctx;
    int (*cb)(void *, const struct qb_store_calib *) =
        (int (*)(void *, const struct qb_store_calib *))l->fn;
    struct qb_store_calib c = {
        .config_id = sqlite3_column_int64(st, 0),
        .sha256 = col_text(st, 1),
        .n_sequences = sqlite3_column_int64(st, 2),
        .seq_len = sqlite3_column_int64(st, 3),
    };
    (void)s;
    return cb(l->ctx, &c);
}

int qb_store_list_calibration(struct qb_store *s, int64_t run_id,
                              int (*cb)(void *ctx, const struct qb_store_calib *c), void *ctx)
{
    struct list_ctx l = {(void (*)(void))cb, ctx};
    sqlite3_bind_int64(s->st[S_CAL_LIST], 1, run_id);
    return each_row(s, s->st[S_CAL_LIST], "listing calibration", calib_row, &l);
}

/* --- run listing (appended for analysis) ---------------------------------------------- */

int qb_store_list_runs(struct qb_store *s,
                       int (*cb)(void *ctx, int64_t run_id, int64_t suite_id, const char *name,
                                 const char *started_at),
                       void *ctx)
{
    static const char sql[] = "SELECT id, suite_id, name, started_at FROM runs "
                              "ORDER BY started_at DESC, id DESC";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK) {
        rc = sql_fail(s, NULL, rc, "listing runs");
        sqlite3_finalize(st);
        return rc;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int r = cb(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), col_text(st, 2),
                   col_text(st, 3));
        if (r) {
            sqlite3_finalize(st);
            return r;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : sql_fail(s, st, rc, "listing runs");
    sqlite3_finalize(st);
    return rc;
}

int qb_store_put_shard(struct qb_store *s, int64_t run_id, const struct qb_store_shard *sh)
{
    sqlite3_stmt *st = s->st[S_SHARD_GET];
    int rc;

    if ((rc = writable(s)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t idx = sqlite3_column_int64(st, 0), cnt = sqlite3_column_int64(st, 1);
        const char *plan = col_text(st, 2);
        int same_plan = plan && sh->plan_sha256 && !strcmp(plan, sh->plan_sha256);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (idx != sh->shard_index || cnt != sh->shard_count)
            return qb_err(QB_EINVAL,
                          "'%s' holds %s %lld/%lld of this run, not %lld/%lld: give each shard "
                          "its own --db",
                          s->path, idx < 0 ? "the probe job, not shard" : "shard", (long long)idx,
                          (long long)cnt, (long long)sh->shard_index, (long long)sh->shard_count);
        if (!same_plan)
            return qb_err(QB_EINVAL,
                          "'%s' holds shard %lld/%lld of another plan (plan sha256 %.12s..., "
                          "this one %.12s...)",
                          s->path, (long long)idx, (long long)cnt, plan ? plan : "?",
                          sh->plan_sha256 ? sh->plan_sha256 : "?");
        return 0; /* the same shard, resumed */
    }
    if (rc != SQLITE_DONE)
        return sql_fail(s, st, rc, "reading the shard record");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    st = s->st[S_SHARD_PUT];
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, sh->shard_index);
    sqlite3_bind_int64(st, 3, sh->shard_count);
    bind_text(st, 4, sh->plan_sha256);
    bind_text(st, 5, sh->token);
    sqlite3_bind_int64(st, 6, sh->n_units);
    sqlite3_bind_int(st, 7, sh->probe ? 1 : 0);
    bind_text(st, 8, sh->host);
    bind_text(st, 9, sh->machine_json);
    return step_done(s, st, "recording the shard");
}

sqlite3 *qb_store_sqlite(struct qb_store *s)
{
    return s ? s->db : NULL;
}

int qb_store_fail_(struct qb_store *s, sqlite3_stmt *st, int rc, const char *what)
{
    return sql_fail(s, st, rc, what);
}

int64_t qb_store_version_(const struct qb_store *s)
{
    return s->version;
}
