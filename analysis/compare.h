/* compare: one run against another (`qbrief brief --against`) -- per slice and config that
 * both runs measured, what changed: paired over the items when the two runs scored the same
 * items (same item keys and prompt hashes in that slice), unpaired otherwise; and whether the
 * decision (the recommendation of each slice) changed. Both analyses are the caller's.
 *
 *     struct qb_compare *k = NULL;
 *     if ((rc = qb_compare(now, before, &k)) < 0) return rc;
 *     for (int64_t i = 0; i < k->n_cells; i++) ... k->cells[i].delta ...
 *     qb_compare_free(k);
 *
 * Definitions. Slices are matched by name and configs by spec. A slice is paired when every
 * item of it in either run has an item with the same key and prompt hash in the other (a hash
 * NULL in both counts as equal); then a cell's n is the items scored right/wrong in both runs,
 * delta = (gained - lost) / n (now minus before; lost: right before and wrong now), with the
 * paired bootstrap interval and McNemar's exact p, as for a config against its baseline.
 * Otherwise the cell is unpaired: each run's accuracy over its own scored items, delta their
 * difference with Newcombe's hybrid score interval (from the two Wilson intervals), no flips,
 * and the comparison carries a warning naming the slice. The decision changed when some
 * matched slice's recommended config differs between the runs. */
#ifndef QB_COMPARE_H
#define QB_COMPARE_H

#include "analysis/stats.h"

#include <stdint.h>

struct qb_analysis;

struct qb_cmp_cell {
    int64_t slice, slice_before;   /* indices into now->slices, before->slices */
    int64_t config, config_before; /* indices into now->configs, before->configs */
    int paired;
    int64_t n_before, n_now;     /* items scored in each run (paired: both equal n) */
    double acc_before, acc_now;  /* fractions */
    double delta;                /* acc_now - acc_before */
    struct qb_interval delta_ci; /* at now->confidence */
    double mcnemar_p;            /* NAN when unpaired */
    int64_t lost, gained;        /* paired: right before -> wrong now, and the reverse; else 0 */
};

struct qb_compare {
    const struct qb_analysis *now, *before; /* borrowed */
    struct qb_cmp_cell *cells; /* slices of `now` in order, configs in its ladder order */
    int64_t n_cells;
    int64_t *slice_before; /* per slice of now: the matching slice of before, or -1 */
    int64_t n_unpaired;    /* matched slices compared unpaired */
    int64_t n_changed;     /* matched slices whose recommended config changed */
    char **warnings;       /* NULL-terminated; one per unpaired or unmatched slice */
    int64_t n_warnings;
};

int qb_compare(const struct qb_analysis *now, const struct qb_analysis *before,
               struct qb_compare **out);
void qb_compare_free(struct qb_compare *k);

#endif
