/* store_import: results qbrief was given rather than measured -- lm-evaluation-harness
 * samples and llama-bench tables (docs/interop.md) -- read into a run of the results store,
 * labelled with the sha256 of the file they came from.
 *
 *     struct qb_import_opts o = {.run = "demo", .config = "Q4_0 (llama.cpp)", .baseline = 0};
 *     rc = qb_import_lmeval(store, &o, paths, n_paths, &summary);    // all files or nothing
 *     rc = qb_import_llamabench(store, &o, "bench.jsonl", &summary);
 *
 * Both write in one transaction: on any error (a truncated line, a sample without doc_id,
 * hashes that disagree with the same item imported before, a llama-bench record of a version
 * qbrief does not know) nothing is written and the message names the file and line.
 *
 * lm-eval: every line of a `--log_samples` file (samples_TASK_DATE.jsonl) is one doc: doc_id,
 * doc, target, filtered_resps, doc_hash / prompt_hash / target_hash and the metric values. The
 * item is (TASK, doc_id) with slice TASK (or TASK/doc[FIELD] with slice_field); it joins the
 * run's import suite, and the same item imported for another config must carry the same three
 * hashes. The metric (acc, acc_norm, exact_match, or opts->metric) must be 0 or 1 per doc: it
 * is the item's correctness. With baseline, the config is the reference of these items (the
 * run's own baseline has no results on them).
 *
 * llama-bench: -o json (an array), -o jsonl (one object per line) or -o sql (CREATE TABLE
 * test + INSERTs; read in a private in-memory database that may do nothing else). Each test
 * becomes latency samples of the config, one per repetition (samples_ts): pp P (n_gen 0) a
 * prefill of P tokens (ttft), tg G (n_prompt 0) decode speed, pg a whole request; the device
 * is gpu_info and backends, the host cpu_info. */
#ifndef QB_STORE_IMPORT_H
#define QB_STORE_IMPORT_H

#include <stdint.h>

struct qb_store;

struct qb_import_opts {
    const char *run;         /* an existing run of the store */
    const char *config;      /* the name the imported config gets in the run */
    int baseline;            /* lm-eval: the reference of the imported items */
    const char *metric;      /* lm-eval: the metric that is correctness; NULL: acc, acc_norm,
                                exact_match, the first present */
    const char *filter;      /* lm-eval: keep samples of this filter only; NULL: all (a doc seen
                                twice is then an error) */
    const char *slice_field; /* lm-eval: slice = TASK/doc[slice_field]; NULL: TASK */
    const char *task;        /* lm-eval: the task name; NULL: from samples_TASK_DATE.jsonl */
};

struct qb_import_summary {
    int64_t rows;     /* items (lm-eval) or latency samples (llama-bench) written */
    int64_t skipped;  /* llama-bench tests with n_depth > 0 (no qbrief equivalent), or lm-eval
                         samples of another filter */
    char sha256[65];  /* of the last file */
    char device[256]; /* llama-bench: the device as recorded */
};

int qb_import_lmeval(struct qb_store *s, const struct qb_import_opts *o, const char *const *paths,
                     int n_paths, struct qb_import_summary *sum);
int qb_import_llamabench(struct qb_store *s, const struct qb_import_opts *o, const char *path,
                         struct qb_import_summary *sum);

/* Reading back, for the brief. */
struct qb_store_import {
    int64_t config_id;
    const char *kind, *source, *sha256, *device, *imported_at;
    int64_t n_rows;
    int baseline;
};
/* The imports of a run, in the order they were made (none for a store before version 7). */
int qb_store_list_imports(struct qb_store *s, int64_t run_id,
                          int (*cb)(void *ctx, const struct qb_store_import *im), void *ctx);
/* The run's import suite (*suite_id 0 when it has none). */
int qb_store_import_suite(struct qb_store *s, int64_t run_id, int64_t *suite_id);

/* --- for import_lmeval.c and import_llamabench.c (store_import.c) --- */

/* The config the import writes: created, or an existing config of the run that is itself
 * imported (a qbrief-measured config is refused); in a transaction the caller holds. */
int qb_import_config(struct qb_store *s, int64_t run_id, const char *name, int64_t *config_id);
/* The run's import suite, created when it has none. */
int qb_import_suite_get(struct qb_store *s, int64_t run_id, int64_t *suite_id);
/* Records one imported file (refused when the same file was imported for the config). */
int qb_import_record(struct qb_store *s, int64_t run_id, int64_t config_id, const char *kind,
                     const char *source, const char *sha256, int64_t n_rows, int baseline,
                     const char *device);
/* The hashes of an imported item: recorded the first time, compared afterwards (*same 0 and
 * the stored ones in have[3][65] when they differ). */
int qb_import_item_hashes(struct qb_store *s, int64_t item_id, const char *const hash[3], int *same,
                          char have[3][65]);

#endif
