/* sens: the per-layer sensitivity scan behind `qbrief sensitivity` and a plan's
 * `sensitivity:` section -- which part of a model a low-bit config breaks, and the mixed
 * configs that keep just that part at a higher precision.
 *
 *     struct qb_sens_opts o = QB_SENS_OPTS_INIT;
 *     o.model_path = "examples/demo/qbrief-demo"; o.config = "w3g64";
 *     o.suite_path = "examples/demo/skills.csv"; o.slice = "arithmetic";
 *     struct qb_sens_result r;
 *     if ((rc = qb_sens_scan(&o, &r)) < 0) fprintf(stderr, "qbrief: %s\n", qb_errmsg());
 *     for (int64_t i = 0; i < r.n_units; i++) printf("%s %g\n", r.units[i].name, r.units[i].kl);
 *     qb_sens_store(&o, &r, "qbrief.db", NULL);
 *     qb_sens_result_release(&r);
 *
 * How it measures. The model is quantized twice, at the baseline (default f32) and at the
 * config, and every unit -- one linear matrix of one layer ("L3.down"; granularity tensor)
 * or every matrix of a layer ("L3"; granularity layer), plus the output head and the
 * embeddings -- is scanned alone: a qmodel that borrows every baseline tensor but the unit's,
 * which it borrows from the config (nothing is re-quantized per unit), runs through the one
 * engine. Damage is the mean KL(p_base || q) over the scored positions, from the baseline's
 * full log-probabilities computed once: every position of the calibration sequences, or on
 * a suite slice the positions that predict the baseline's own answer (generate items:
 * teacher-forced on the baseline's greedy output, end included; choice items: the correct
 * choice; perplexity: the whole text). With a suite each unit also gets the slice's accuracy
 * (greedy generation scored by the item's metric; choices by log-likelihood). Then the whole
 * config and the top-k units together are measured, to say how the damages add.
 *
 * Mixed candidates: units are taken greedily by damage per extra byte (keeping the unit at
 * `keep` instead of the config) until each budget (a percent of the bytes that keeping every
 * unit would add) is spent; each candidate is the config plus layer overrides, in canonical
 * form (collector/model/qspec.h), to be measured per slice like any other config. */
#ifndef QB_SENS_H
#define QB_SENS_H

#include "collector/model/qspec.h"

#include <stdint.h>

#define QB_SENS_MAX_BUDGETS 8

struct qb_sens_opts {
    const char *model_path;     /* required */
    const char *tokenizer_path; /* NULL: the model's own */
    const char *config;         /* required: the low-bit config, round-to-nearest */
    const char *baseline;       /* NULL: "f32" */
    const char *keep;           /* NULL: "w8": what candidates keep damaging units at */
    /* the text damage is measured on: calibration text, or a suite (slice NULL: every item) */
    const char *calib_path;
    int64_t calib_sequences, calib_seq_len; /* 0: 8 and 256 */
    const char *suite_path, *slice, *prompt_template;
    int by_layer;  /* 1: a unit is a whole layer; 0: one matrix */
    int threads;   /* 0: OpenMP's default */
    int topk;      /* units quantized together for the additivity check; 0: 3 */
    int n_budgets; /* 0: {10, 25, 50} */
    double budgets[QB_SENS_MAX_BUDGETS];
    const char *run_name; /* recorded with the scan (a plan's run); may be NULL */
    /* called after each unit with its index and what it measured; may be NULL */
    void (*on_unit)(void *ctx, int64_t i, int64_t n, const char *unit, double kl, double acc);
    void *ctx;
};
#define QB_SENS_OPTS_INIT                                                                          \
    {                                                                                              \
        0                                                                                          \
    }

struct qb_sens_unit {
    char name[24];       /* "L3.down", "L3", "output", "embed" */
    int64_t layer;       /* -1 for output and embed */
    int kind;            /* 0..6 q..down, 7 a whole layer, 8 output, 9 embed */
    double kl;           /* mean KL from the baseline, nats per scored position */
    double accuracy;     /* points (0-100) on the suite with only this unit quantized; NAN: none */
    int64_t extra_bytes; /* keeping it at `keep` instead of the config */
};

struct qb_sens_result {
    char config[QB_QSPEC_MAX], baseline[QB_QSPEC_MAX], keep[QB_QSPEC_MAX];
    char model_sha256[65], source_sha256[65];
    struct qb_sens_unit *units; /* by damage, largest first */
    int64_t n_units;
    int64_t n_sequences, n_positions, n_items;
    double base_accuracy, config_accuracy, config_kl; /* NAN where not measured */
    int topk;
    double topk_summed_kl, topk_measured_kl;
    char (*candidates)[QB_QSPEC_MAX]; /* mixed configs, cheapest first */
    int64_t *candidate_extra;         /* their extra bytes over the config */
    int n_candidates;
    int64_t config_bytes; /* the config's weights (qb_qmodel_bytes) */
    double seconds;       /* the whole scan, wall time */
    int threads;
};

int qb_sens_scan(const struct qb_sens_opts *o, struct qb_sens_result *out);
/* Writes the scan (with o's provenance) into the store at db_path; *id may be NULL. */
int qb_sens_store(const struct qb_sens_opts *o, const struct qb_sens_result *r, const char *db_path,
                  int64_t *id);
void qb_sens_result_release(struct qb_sens_result *r);

#endif
