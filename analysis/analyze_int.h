/* analyze_int: the working state of one qb_analyze call and its sections, shared by the files of
 * the analysis module and never included from outside it. analyze.c runs the sections in the
 * order listed below around one struct an; each section lives in the file named beside it and
 * returns 0 or a negative QB_E* code. Definitions of every number are in analyze.h. */
#ifndef QB_ANALYZE_INT_H
#define QB_ANALYZE_INT_H

#include "analysis/analyze.h"
#include "collector/store/settings.h"

#include <glib.h>
#include <math.h>
#include <stdint.h>

/* One measured (config, item) result, the fields analysis uses. */
struct res {
    signed char have;    /* an "ok" result exists */
    signed char correct; /* 0, 1, or -1 when not scored that way */
    int64_t n_tokens;    /* -1 unknown */
    double nll, kl, top1;
};

struct item {
    int64_t id, slice;
    int is_ppl;
};

/* A config as read, before ladder sorting. */
struct raw_config {
    int64_t id;
    char *spec;
    double bpw, qsec;
    int64_t wbytes;
};

/* The cells of one row (a slice, or the overall row) to compute: its items' indices. */
struct job {
    struct qb_an_slice *sl;
    const int64_t *items;
    int64_t n;
};

/* Working state of one qb_analyze call; a holds everything that outlives it. */
struct an {
    struct qb_analysis *a;
    struct qb_store *s;
    int64_t run_id, suite_id;
    char *baseline_spec;

    struct raw_config *raw; /* store order (by id) */
    int64_t n_raw, cap_raw;
    int64_t *ladder_of; /* raw index -> ladder index */

    struct item *items; /* by item id, ascending */
    int64_t n_items, cap_items;
    GHashTable *slice_ix;   /* slice name -> index + 1 */
    GPtrArray *slice_names; /* borrowed by slice_ix */

    struct res *res;     /* [ladder config * n_items + item] */
    int64_t *cost_order; /* config indices, cheapest first */

    GPtrArray *warnings; /* char *, g_free */

    /* settings */
    struct qb_settings set;          /* as the run stored them (collector/store/settings.h) */
    const struct qb_settings *rules; /* tolerances, flips, policy: &set or opts->rules */
    double def_tol;                  /* points; NAN when neither the run nor the options name one */

    /* rows to compute: one job per slice, then the overall row's */
    int64_t *idx; /* item indices grouped by slice (n_items), then the overall's (n_items) */
    struct job *jobs;

    /* scratch for perplexity cells */
    double *xs, *ys;

    /* latency read-back */
    GArray *lat; /* struct qb_store_latency */

    /* analyze_import.c: the imported --baseline config (ladder index + 1; 0: none), the
     * reference of imported items where the run's baseline has no result */
    int64_t import_base1;
};

/* --- the sections, in the order qb_analyze runs them --------------------------------------- */

/* analyze_load.c: the run named run_name (NULL: the newest), its settings with the options
 * over them, its items and the result matrix, its calibration rows */
int an_load_run(struct an *x, const char *run_name);
int an_read_settings(struct an *x, const struct qb_an_opts *o);
/* analyze_import.c: labels imported configs "[imported] NAME (KIND sha256 ...)", finds the
 * imported baseline; after an_load_configs */
int an_load_imports(struct an *x);
/* analyze_configs.c: configs in ladder order, the baseline found */
int an_load_configs(struct an *x);
/* analyze_load.c */
int an_load_results(struct an *x);
/* analyze_configs.c: memory and latency rows per config */
int an_load_measures(struct an *x);
/* analyze_load.c */
int an_load_calibration(struct an *x);
/* analyze_configs.c: memory and latency cost, speedups, cost order */
int an_config_costs(struct an *x);
/* analyze_cells.c: slices and the overall row (items, kind, tolerance), then every cell's
 * statistics and judgement */
int an_group_slices(struct an *x);
/* analyze_deploy.c: traffic shares per slice */
int an_traffic(struct an *x);
/* analyze_cells.c */
int an_compute_cells(struct an *x);
/* analyze_decide.c: recommendation, verdict and cliff of every row; the list of cliffs */
int an_decide(struct an *x);
/* analyze_deploy.c: the single and routed deployment plans */
int an_deploy(struct an *x);
/* analyze_flips.c: unstable ladders, and the example items of each slice's behaviour change */
int an_unstable(struct an *x);
int an_flip_examples(struct an *x);
/* analyze_flips.c: the items (key, hash, slice) and every result's correctness into a */
int an_export_items(struct an *x);
/* analyze_warn.c: warnings about the data (missing results, underpowered slices, ...) */
int an_data_warnings(struct an *x);

/* --- shared by the sections ---------------------------------------------------------------- */

/* Adds a warning to the analysis (printf-style). */
void an_warn(struct an *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An unknown (NAN) cost counts as infinite. */
static inline double an_or_inf(double v)
{
    return isnan(v) ? INFINITY : v;
}

#endif
