/* check: the gate behind `qbrief check` -- does a config hold on every slice of an analysed
 * run, under its tolerances and flip limits (analysis/analyze.h defines both)?
 *
 *     struct qb_check *k = NULL;
 *     if ((rc = qb_check(a, "w4g128", &k)) < 0)   // NULL config: the brief's recommendation
 *         return rc;                               // QB_EINVAL: no such config in the run
 *     for (int64_t i = 0; i < k->n; i++)
 *         if (!k->slices[i].holds) printf("%s: %s\n", a->slices[k->slices[i].slice].name, ...);
 *     qb_check_free(k);
 *
 * A slice fails when the config checked there is not the baseline and its cell has fewer than
 * QB_AN_MIN_ITEMS items (too few to tell), is not within tolerance on accuracy (a loss), or
 * changes behaviour (a gain beyond the tolerance, or more flips than the slice allows). A
 * slice the baseline itself fails is not judged and never fails the gate. The default
 * config is the deployment the brief recommends: per slice, the routed plan's config, or the
 * single config when routing would hold more memory. */
#ifndef QB_ANALYSIS_CHECK_H
#define QB_ANALYSIS_CHECK_H

#include <stdint.h>

struct qb_analysis;

enum qb_check_reason {
    QB_CHECK_HOLDS,
    QB_CHECK_NOT_JUDGED, /* the baseline fails the slice: not judged, not failing */
    QB_CHECK_FEW_ITEMS,
    QB_CHECK_LOSS,  /* not within tolerance on accuracy */
    QB_CHECK_GAIN,  /* gains beyond the tolerance */
    QB_CHECK_FLIPS, /* changes more answers than the flip limit */
};

struct qb_check_slice {
    int64_t slice, config; /* indices into a->slices, a->configs */
    int holds;             /* 1 unless reason is FEW_ITEMS, LOSS, GAIN or FLIPS */
    enum qb_check_reason reason;
};

struct qb_check {
    struct qb_check_slice *slices; /* one per slice of the analysis, in its order */
    int64_t n, n_failing;
};

/* config: a spec as the run stores it (canonical), or NULL for the recommendation.
 * QB_EINVAL naming the run's configs when config is not one of them. */
int qb_check(const struct qb_analysis *a, const char *config, struct qb_check **out);
void qb_check_free(struct qb_check *k);
/* "holds", "not judged", "too few items", "loss", "gain", "flips" */
const char *qb_check_reason_name(enum qb_check_reason r);

#endif
