/* store: the SQLite results store behind `qbrief run` and `qbrief brief`. It is the only
 * module that includes sqlite3.h; everything else sees struct qb_store and the rows below.
 *
 *     struct qb_store *s = NULL;
 *     int64_t run, suite, cfg, item;
 *     if ((rc = qb_store_open("results.db", 0, &s)) < 0) goto fail;
 *     if ((rc = qb_store_run_open(s, &run_info, &model, &suite_info, &run, &suite)) < 0) goto fail;
 *     rc = qb_store_put_config(s, run, &(struct qb_store_config){.spec = "w4g128", ...}, &cfg);
 *     rc = qb_store_put_item(s, suite, &item_row, &item);
 *     int done;
 *     qb_store_result_exists(s, run, cfg, item, &done);
 *     if (!done) {                         // one unit = one result + its top-k rows
 *         qb_store_begin(s);
 *         if ((rc = qb_store_put_result(s, run, &res)) < 0 ||
 *             (rc = qb_store_put_topk(s, run, item, pos, k, ids, lps)) < 0) {
 *             qb_store_rollback(s); goto fail;
 *         }
 *         qb_store_commit(s);
 *     }
 *     qb_store_run_finish(s, run);
 *   fail:
 *     qb_store_close(s);
 *
 * The file is opened in WAL mode with foreign_keys=ON, synchronous=NORMAL and a busy timeout,
 * so a crash (even SIGKILL) loses at most the transaction in flight, never half of one.
 * Open runs PRAGMA quick_check (one read of every page), so damage is reported there.
 *
 * Several processes share one store: every write transaction takes the write lock up front
 * and waits up to the busy timeout (10 s) for another, so two runs with different names
 * started together both finish. A run is written by one process at a time: the same name
 * started while a live process holds it is refused at once, naming that process (see
 * qb_store_run_open). A reader (QB_STORE_READONLY) writes nothing and leaves no -wal or
 * -shm of its own behind, even where it may not write the file or its folder.
 *
 * Schema (version QB_STORE_SCHEMA_VERSION, kept in PRAGMA user_version; migrations[] in
 * store.c are applied in order, one transaction each; a file with a newer version is refused).
 * Timestamps are ISO-8601 UTC text ("2026-11-23T15:25:48.123Z"). NULL means "not measured".
 *
 *   models(id, sha256 UNIQUE (64 hex), path, architecture, n_params, format IN gguf|hf|llama2c)
 *   suites(id, sha256 UNIQUE (64 hex), path, n_items)
 *   runs(id, name UNIQUE, qbrief_version, git_commit, command_line, host, machine_json,
 *        model_id -> models, suite_id -> suites, baseline_config, settings_json,
 *        started_at, finished_at NULL until qb_store_run_finish)
 *   configs(id, run_id -> runs CASCADE, spec, bits_per_weight, weight_bytes, quant_seconds,
 *        UNIQUE(run_id, spec))                       spec is the canonical config text
 *   items(id, suite_id -> suites CASCADE, item_key (the CSV id), slice, kind, metric,
 *        prompt_sha256, prompt (may be NULL), line, UNIQUE(suite_id, item_key))
 *        kind and metric are lowercase identifiers; their vocabulary belongs to the suite reader
 *   item_results(id, run_id -> runs CASCADE, config_id -> configs CASCADE, item_id -> items
 *        CASCADE, correct 0|1, score, output, nll, n_tokens, mean_kl, top1_agreement in [0,1],
 *        flipped 0|1 (NULL for the baseline), status ok|skipped|error (v2), error (v2: the
 *        reason, NULL when ok), UNIQUE(run_id, config_id, item_id))
 *   baseline_topk(id, run_id -> runs CASCADE, item_id -> items CASCADE, position, k,
 *        data BLOB, UNIQUE(run_id, item_id, position))
 *        data = k int32 token ids then k float32 log-probabilities, little-endian (8*k bytes):
 *        the baseline's top-k per scored position, so KL needs no second baseline pass
 *   latency_samples(id, run_id, config_id -> CASCADE, prompt_len, gen_len, batch, repetition,
 *        ttft_ms, tpot_ms, e2e_ms, decode_tok_s, UNIQUE(run_id, config_id, prompt_len, gen_len,
 *        batch, repetition))
 *   memory(id, run_id, config_id -> CASCADE, context, weight_bytes, kv_cache_bytes,
 *        peak_rss_bytes, UNIQUE(run_id, config_id, context))
 *   calibration(id, run_id -> runs CASCADE, config_id -> configs CASCADE (NULL: the whole
 *        run), sha256, n_sequences, seq_len)
 *        UNIQUE(run_id, ifnull(config_id, 0), sha256): recording it again is a no-op
 *   run_locks(run_id PRIMARY KEY -> runs CASCADE, host, pid, proc_start, since) (v3): the
 *        process writing the run (proc_start: its start time in clock ticks after boot, 0
 *        unknown); the row is dropped when the run finishes or its store is closed
 *   v4 added runs.device, runs.device_json, latency_samples.host, latency_samples.device,
 *        memory.host, memory.device (TEXT, NULL in older rows): the device the engines ran
 *        on ("cpu", or "vulkan:N NAME, DRIVER, MEMORY") and the host, per measurement
 *   shards(id, run_id -> runs CASCADE, shard_index (-1: the probe job), shard_count,
 *        plan_sha256, token (one shard's run, kept on resume), n_units (units it owns),
 *        probe 0|1 (it measures latency and memory), host, machine_json, source (the file
 *        a merged store took it from; NULL in the shard's own store), UNIQUE(run_id,
 *        shard_index)) (v5): see collector/store/store_merge.h and docs/distributed.md
 *   sens_scans, sens_units (v6): sensitivity scans and their units, written and read by
 *        collector/store/store_sens.h (which documents the columns); not merged
 *   imports(id, run_id, config_id -> configs CASCADE, kind lm-eval|llama-bench, source, sha256,
 *        n_rows, baseline 0|1, device, imported_at), import_suites(run_id, suite_id),
 *        import_items(item_id -> items, doc_hash, prompt_hash, target_hash) (v7): results qbrief
 *        was given, not measured; see collector/store/store_import.h and docs/interop.md
 *
 * Errors: every function that can fail returns 0 or a negative QB_E* code and sets the
 * message, which names the database path. Constraint failures (a duplicate, a bad kind, a
 * missing parent row) are QB_EINVAL and say which constraint; a full disk is QB_EIO with
 * "disk full" and the open transaction rolled back; a file that is not a qbrief results
 * database (or is corrupt, or has a schema version qbrief never wrote) is QB_EFORMAT; a newer
 * schema is QB_EUNSUP; a run held by another live process is QB_EIO.
 *
 * Reads go through callbacks: the row and its strings are borrowed for the duration of the
 * call only. A callback returning nonzero stops the listing and that value is returned. */
#ifndef QB_STORE_H
#define QB_STORE_H

#include <stddef.h>
#include <stdint.h>

#define QB_STORE_SCHEMA_VERSION 7

struct qb_store;

/* qb_store_open flags */
enum {
    QB_STORE_READONLY = 1, /* open an existing store for reading; never create or migrate */
};

struct qb_store_model {
    const char *path, *sha256, *architecture, *format;
    int64_t n_params;
};

struct qb_store_suite {
    const char *path, *sha256;
    int64_t n_items;
};

struct qb_store_run {
    const char *name;
    const char *qbrief_version, *git_commit, *command_line, *host; /* may be NULL */
    const char *machine_json; /* {"cpu":..,"cores":..,"threads":..,"isa":..,"os":..}; may be NULL */
    const char *baseline_config; /* canonical spec of the baseline, e.g. "f32" */
    const char *settings_json;   /* may be NULL */
    /* v4: the device the engines ran on, in words ("cpu"; "vulkan:0 NAME, DRIVER, N MiB"),
     * and as JSON {"spec","kind","index","name","driver","memory_bytes"}; NULL: unknown
     * (a run written before version 4) */
    const char *device, *device_json;
    /* filled by reads only */
    const char *started_at, *finished_at;
};

struct qb_store_config {
    const char *spec;       /* canonical text */
    double bits_per_weight; /* NAN = unknown */
    int64_t weight_bytes;   /* -1 = unknown */
    double quant_seconds;   /* NAN = unknown */
};

struct qb_store_item {
    const char *key, *slice, *kind, *metric;
    const char *prompt_sha256; /* may be NULL */
    const char *prompt;        /* may be NULL (then only the hash is kept) */
    int64_t line;              /* line in the suite file, -1 = unknown */
};

struct qb_store_result {
    int64_t config_id, item_id;
    int correct;           /* 0 or 1; -1 = not scored that way */
    double score;          /* NAN = none */
    const char *output;    /* generated text; may be NULL */
    double nll;            /* NAN = none */
    int64_t n_tokens;      /* -1 = unknown */
    double mean_kl;        /* NAN = none (the baseline) */
    double top1_agreement; /* in [0, 1]; NAN = none */
    int flipped;           /* 0 or 1 against the baseline; -1 = NULL (the baseline itself) */
    const char *status;    /* "ok" (NULL reads as "ok"), "skipped" (does not fit the context)
                            * or "error" (the item failed; message in error). Only "ok" rows
                            * carry measurements; analysis ignores the others. */
    const char *error;     /* why it was skipped or failed; NULL for "ok" */
};

struct qb_store_latency {
    int64_t prompt_len, gen_len, batch, repetition;
    double ttft_ms, tpot_ms, e2e_ms, decode_tok_s; /* NAN = not measured */
    const char *host, *device;                     /* v4: where it was timed; NULL = unknown */
};

struct qb_store_memory {
    int64_t context; /* tokens of KV cache */
    /* -1 = unknown. On a device (device other than "cpu") the bytes are the device's own
     * memory as its backend reports it: weights, KV cache, and the peak of weights + KV cache
     * + scratch; on the CPU, the peak resident set of the serving process */
    int64_t weight_bytes, kv_cache_bytes, peak_rss_bytes;
    const char *host, *device; /* v4: where it was measured; NULL = unknown */
};

struct qb_store_calib {
    int64_t config_id; /* 0 = for the whole run */
    const char *sha256;
    int64_t n_sequences, seq_len;
};

/* Opens or creates the store at path (flags: QB_STORE_READONLY or 0) and migrates it to
 * QB_STORE_SCHEMA_VERSION; a reader opens versions 2 and up as they are and never creates
 * the file (an empty file is refused). path must be a regular file (or absent, for a
 * writer). *out is the caller's; qb_store_close(NULL) is a no-op; closing releases the runs
 * the handle locked. */
int qb_store_open(const char *path, int flags, struct qb_store **out);
void qb_store_close(struct qb_store *s);
/* The path given to open. Borrowed. */
const char *qb_store_path(const struct qb_store *s);

/* One write transaction per completed unit (BEGIN IMMEDIATE, so a second writer waits for
 * the busy timeout up front). After a failed write inside it, call qb_store_rollback. */
int qb_store_begin(struct qb_store *s);
int qb_store_commit(struct qb_store *s);
int qb_store_rollback(struct qb_store *s);

/* Creates run->name, or reopens it when it exists with the same model and suite sha256
 * (resume); a different model or suite is refused (QB_EINVAL) naming both hashes. The model
 * and suite rows are shared by runs (keyed by sha256). suite_id may be NULL.
 * The handle then holds the run: while it does, opening the run from another process fails
 * at once with QB_EIO naming this process's PID and host. The hold ends at
 * qb_store_run_finish or qb_store_close, or with the process (a crash leaves a row that the
 * next open finds stale: its PID is gone, reused, or from another machine). */
int qb_store_run_open(struct qb_store *s, const struct qb_store_run *run,
                      const struct qb_store_model *model, const struct qb_store_suite *suite,
                      int64_t *run_id /* out */, int64_t *suite_id /* out */);
/* Sets finished_at to now and releases the run (see qb_store_run_open). */
int qb_store_run_finish(struct qb_store *s, int64_t run_id);
/* The id of the run called name; QB_EINVAL when there is none. */
int qb_store_run_find(struct qb_store *s, const char *name, int64_t *run_id /* out */);
int qb_store_get_run(struct qb_store *s, int64_t run_id,
                     int (*cb)(void *ctx, const struct qb_store_run *run,
                               const struct qb_store_model *model,
                               const struct qb_store_suite *suite),
                     void *ctx);

/* Inserts the config, or updates its measurements when (run, spec) exists; *config_id is
 * its id either way. */
int qb_store_put_config(struct qb_store *s, int64_t run_id, const struct qb_store_config *c,
                        int64_t *config_id /* out */);
int qb_store_list_configs(struct qb_store *s, int64_t run_id,
                          int (*cb)(void *ctx, int64_t id, const struct qb_store_config *c),
                          void *ctx);

/* Inserts the item, or returns the id of (suite, key) when it exists (unchanged: a suite is
 * identified by its sha256, so the same key means the same item). */
int qb_store_put_item(struct qb_store *s, int64_t suite_id, const struct qb_store_item *it,
                      int64_t *item_id /* out */);
int qb_store_item_id(struct qb_store *s, int64_t suite_id, const char *key,
                     int64_t *item_id /* out */);
int qb_store_list_items(struct qb_store *s, int64_t suite_id,
                        int (*cb)(void *ctx, int64_t id, const struct qb_store_item *it),
                        void *ctx);

/* Records one result. A (run, config, item) that already has one is refused (QB_EINVAL,
 * "already recorded") and the stored row is kept: resume with qb_store_result_exists or
 * qb_store_list_done first. */
int qb_store_put_result(struct qb_store *s, int64_t run_id, const struct qb_store_result *r);
int qb_store_result_exists(struct qb_store *s, int64_t run_id, int64_t config_id, int64_t item_id,
                           int *exists /* out: 0 or 1 */);
/* Every completed (config, item) pair of the run. */
int qb_store_list_done(struct qb_store *s, int64_t run_id,
                       int (*cb)(void *ctx, int64_t config_id, int64_t item_id), void *ctx);
/* The results of the run, of one config (config_id > 0) or all (0), by config then item. */
int qb_store_list_results(struct qb_store *s, int64_t run_id, int64_t config_id,
                          int (*cb)(void *ctx, const struct qb_store_result *r), void *ctx);

/* The baseline's top-k (ids, log-probabilities) at one scored position of an item.
 * k is 1..65536; a position already recorded is refused (QB_EINVAL). */
int qb_store_put_topk(struct qb_store *s, int64_t run_id, int64_t item_id, int64_t position, int k,
                      const int32_t *ids, const float *logprobs);
/* Copies at most k_max entries into ids/logprobs and sets *k to the stored k (which may be
 * larger than k_max). QB_EINVAL when the position was not recorded. */
int qb_store_get_topk(struct qb_store *s, int64_t run_id, int64_t item_id, int64_t position,
                      int k_max, int32_t *ids, float *logprobs, int *k /* out */);
/* All positions of an item in order; ids and logprobs are borrowed during the call. */
int qb_store_list_topk(struct qb_store *s, int64_t run_id, int64_t item_id,
                       int (*cb)(void *ctx, int64_t position, int k, const int32_t *ids,
                                 const float *logprobs),
                       void *ctx);

int qb_store_put_latency(struct qb_store *s, int64_t run_id, int64_t config_id,
                         const struct qb_store_latency *l);
int qb_store_list_latency(struct qb_store *s, int64_t run_id, int64_t config_id,
                          int (*cb)(void *ctx, const struct qb_store_latency *l), void *ctx);

/* Inserts or replaces the row for (run, config, context). */
int qb_store_put_memory(struct qb_store *s, int64_t run_id, int64_t config_id,
                        const struct qb_store_memory *m);
int qb_store_list_memory(struct qb_store *s, int64_t run_id, int64_t config_id,
                         int (*cb)(void *ctx, const struct qb_store_memory *m), void *ctx);

int qb_store_put_calibration(struct qb_store *s, int64_t run_id, const struct qb_store_calib *c);
int qb_store_list_calibration(struct qb_store *s, int64_t run_id,
                              int (*cb)(void *ctx, const struct qb_store_calib *c), void *ctx);

/* One shard's record (the shards table, v4). */
struct qb_store_shard {
    int64_t shard_index, shard_count; /* -1, 0: the probe job */
    const char *plan_sha256;          /* 64 hex */
    const char *token;                /* identifies this shard's run */
    int64_t n_units;                  /* (config, item) units the shard owns */
    int probe;                        /* it measures latency and memory */
    const char *host, *machine_json;  /* may be NULL */
};

/* Records that the run's store is shard sh; a store that holds it already (a resume) is
 * left as it is, and one that holds another shard, or the same shard of another plan, is
 * refused (QB_EINVAL). */
int qb_store_put_shard(struct qb_store *s, int64_t run_id, const struct qb_store_shard *sh);

/* PRAGMA integrity_check and foreign_key_check: 0 when both are clean, QB_EFORMAT naming
 * the first problem otherwise. */
int qb_store_check(struct qb_store *s);

/* Caps the database file at about max_bytes (PRAGMA max_page_count): past it writes fail as
 * on a full disk. For tests and quotas. */
int qb_store_set_max_bytes(struct qb_store *s, int64_t max_bytes);

/* Every run of the store, the most recently started first (ties: the higher id first), with
 * the id of its suite. name and started_at are borrowed during the call. (Appended for
 * analysis: `qbrief brief` without a run name reads the newest run.) */
int qb_store_list_runs(struct qb_store *s,
                       int (*cb)(void *ctx, int64_t run_id, int64_t suite_id, const char *name,
                                 const char *started_at),
                       void *ctx);

#endif
