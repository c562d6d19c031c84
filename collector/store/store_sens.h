/* store_sens: sensitivity scans in the results store (schema version 6 and up; store.h).
 *
 *   sens_scans(id, model_sha256, model_path, config (the low-bit spec scanned), baseline (the
 *        precision of everything else), keep (what mixed candidates keep damaging units at),
 *        granularity tensor|layer, source calib|suite, source_path, source_sha256, slice
 *        (NULL: the whole suite or calibration text), n_sequences, n_positions (scored),
 *        base_accuracy, config_kl and config_accuracy (the whole config at once), topk,
 *        topk_summed_kl, topk_measured_kl (additivity: the top-k units quantized together,
 *        measured, beside the sum of their single damages), seconds, threads, host,
 *        run_name (the plan's run it serves; NULL from `qbrief sensitivity`),
 *        candidates_json (["spec", ...] the mixed candidates built from it), created_at)
 *   sens_units(id, scan_id -> sens_scans CASCADE, unit ("L3.down", "L3", "output", "embed"),
 *        layer (NULL for output/embed), tensor ("down", "layer", "output", "embed"), rank (1 the
 *        most damaging), mean_kl (nats per scored position, from the baseline), accuracy (on
 *        the slice with this unit quantized; NULL without a suite), extra_bytes (what keeping
 *        it at `keep` costs over `config`), UNIQUE(scan_id, unit))
 *
 *     struct qb_store_sens_scan sc = {.model_sha256 = sha, ...};
 *     int64_t id;
 *     if ((rc = qb_store_sens_put("qbrief.db", &sc, units, n, &id)) < 0) ...;
 *     qb_store_open("qbrief.db", QB_STORE_READONLY, &s);
 *     qb_store_sens_latest(s, sha, "demo", on_scan, on_unit, ctx);
 *
 * Writes open (create or migrate) the store; reads go through a store the caller opened,
 * reader or writer, on its own connection. Sensitivity tables are not copied by `qbrief merge`. NAN
 * reads and writes as NULL. */
#ifndef QB_STORE_SENS_H
#define QB_STORE_SENS_H

#include <stdint.h>

struct qb_store_sens_scan {
    int64_t id; /* filled by reads */
    const char *model_sha256, *model_path, *config, *baseline, *keep, *granularity, *source;
    const char *source_path, *source_sha256, *slice; /* slice may be NULL */
    int64_t n_sequences, n_positions;
    double base_accuracy, config_kl, config_accuracy; /* NAN: not measured */
    int64_t topk;
    double topk_summed_kl, topk_measured_kl, seconds;
    int64_t threads;
    const char *host, *run_name, *candidates_json; /* may be NULL */
    const char *created_at;                        /* filled by reads */
};

struct qb_store_sens_unit {
    const char *unit, *tensor;
    int64_t layer; /* -1: none */
    int64_t rank;
    double mean_kl, accuracy; /* NAN: not measured */
    int64_t extra_bytes;
};

/* Writes one scan and its units in one transaction (the store is created or migrated
 * first); *id (may be NULL) receives the scan's id. */
int qb_store_sens_put(const char *db_path, const struct qb_store_sens_scan *scan,
                      const struct qb_store_sens_unit *units, int64_t n_units, int64_t *id);

/* The latest scan of the model (model_sha256 NULL: of any model), one of run_name's when it
 * has one, else any: on_scan once, then on_unit per unit by rank. Nothing is called when
 * the store has no scan (or predates version 6). Borrowed strings; a nonzero callback return
 * stops and is returned. */
struct qb_store;
int qb_store_sens_latest(struct qb_store *s, const char *model_sha256, const char *run_name,
                         int (*on_scan)(void *ctx, const struct qb_store_sens_scan *s),
                         int (*on_unit)(void *ctx, const struct qb_store_sens_unit *u), void *ctx);

#endif
