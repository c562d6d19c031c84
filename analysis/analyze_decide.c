/* analyze_decide: per row (each slice, and the overall row) the recommendation -- the cheapest
 * config within tolerance --, the cliff down the ladder and the verdict; then the list of
 * cliffs, down the ladder and in slice order. Definitions and precedence in analyze.h. */
#include "analysis/analyze_int.h"

#include "kernels/base/err.h"

#include <math.h>
#include <stdlib.h>

/* An accuracy slice the baseline itself fails: no config can show a loss there. */
static int baseline_fails(const struct qb_analysis *a, const struct qb_an_slice *sl)
{
    const struct qb_an_cell *b = &sl->cells[a->baseline];
    return !sl->is_perplexity && b->n >= QB_AN_MIN_ITEMS && b->acc < QB_AN_FLOOR_ACC;
}

/* rec, the cliff (returned through *cl, below == -1 when none) and the verdict of a slice */
static void decide(struct an *x, struct qb_an_slice *sl, struct qb_an_cliff *cl)
{
    struct qb_analysis *a = x->a;
    int64_t cand;

    sl->rec = a->baseline;
    for (int64_t k = 0; k < a->n_configs; k++)
        if (sl->cells[x->cost_order[k]].within) {
            sl->rec = x->cost_order[k];
            break;
        }
    *cl = (struct qb_an_cliff){.slice = -1,
                               .above = -1,
                               .below = -1,
                               .loss = NAN,
                               .loss_ci = {NAN, NAN},
                               .overall_loss = NAN};
    if (baseline_fails(a, sl)) {
        sl->rec = a->baseline;
        sl->behaviour = -1;
        sl->verdict = QB_VERDICT_FAILS;
        return;
    }
    for (int64_t l = 1; l < a->n_configs; l++) {
        const struct qb_an_cell *e = &sl->cells[l];
        if (l == a->baseline || !e->significant_loss)
            continue;
        cl->above = l - 1;
        cl->below = l;
        cl->loss = -e->delta;
        cl->loss_ci = (struct qb_interval){-e->delta_ci.hi, -e->delta_ci.lo};
        break;
    }
    cand = sl->rec;
    if (cand == a->baseline && a->baseline + 1 < a->n_configs)
        cand = a->baseline + 1;
    /* the config a rule on accuracy alone would have picked, when cheaper than rec */
    sl->behaviour = -1;
    for (int64_t k = 0; k < a->n_configs && x->cost_order[k] != sl->rec; k++) {
        const struct qb_an_cell *e = &sl->cells[x->cost_order[k]];
        if (e->within_acc && e->changes_behaviour) {
            sl->behaviour = x->cost_order[k];
            break;
        }
    }
    if (sl->cells[cand].n < QB_AN_MIN_ITEMS)
        sl->verdict = QB_VERDICT_UNDECIDED;
    else if (cl->below >= 0 && (sl->rec == cl->above || sl->rec == a->baseline))
        sl->verdict = sl->rec != a->baseline ? QB_VERDICT_HOLDS : QB_VERDICT_BASELINE;
    /* an interval inside the tolerance decides whatever the MDE says; only a slice that
     * could not show a cheaper config holds (or that decides on point estimates) is
     * undecided for want of items */
    else if (cand != a->baseline && sl->cells[cand].underpowered &&
             (sl->rec == a->baseline || a->policy == QB_AN_POINT))
        sl->verdict = QB_VERDICT_UNDECIDED;
    else
        sl->verdict = sl->rec != a->baseline ? QB_VERDICT_HOLDS : QB_VERDICT_BASELINE;
}

/* Every row decided; the slices' cliffs listed down the ladder, then in slice order, each
 * with what the overall row shows at its config. */
int an_decide(struct an *x)
{
    struct qb_analysis *a = x->a;
    struct qb_an_cliff *cl = NULL;

    decide(x, &a->overall, &a->overall_cliff);
    if (!(a->cliffs = calloc((size_t)a->n_slices + 1, sizeof *a->cliffs)) ||
        !(cl = calloc((size_t)a->n_slices + 1, sizeof *cl)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t s = 0; s < a->n_slices; s++) {
        decide(x, &a->slices[s], &cl[s]);
        cl[s].slice = s;
        if (cl[s].below >= 0) {
            cl[s].overall_loss = -a->overall.cells[cl[s].below].delta;
            cl[s].hides = a->overall.cells[cl[s].below].within;
        }
    }
    for (int64_t l = 0; l < a->n_configs; l++)
        for (int64_t s = 0; s < a->n_slices; s++)
            if (cl[s].below == l) {
                a->slices[s].cliff = a->n_cliffs;
                a->cliffs[a->n_cliffs++] = cl[s];
            }
    free(cl);
    return 0;
}
