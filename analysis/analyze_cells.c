/* analyze_cells: the rows of the analysis (one per slice, in suite order, and the overall row
 * that pools every accuracy item) and the statistics of every row x config cell: accuracy with
 * its Wilson interval, the paired bootstrap of the delta, McNemar, flips, KL, perplexity and
 * the minimum detectable effect; then each cell judged against its row's tolerance (within,
 * significant loss, underpowered) and the row's Pareto frontier. Definitions in analyze.h. */
#include "analysis/analyze_int.h"

#include "analysis/stats.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-12  /* slack when comparing a loss with its tolerance (both fractions) */
#define POWER 0.80 /* power of the minimum detectable effect */

/* --- rows ---------------------------------------------------------------------------------- */

/* The tolerance of a slice in points: its own entry in the settings when that is a number
 * >= 0, else the default. An entry that is neither that nor null is warned about. */
static double slice_tolerance(struct an *x, const char *name)
{
    const struct qb_settings_slice *e =
        qb_settings_find(x->rules->tolerances.slices, x->rules->tolerances.n, name);
    if (e && e->value >= 0)
        return e->value;
    if (e && !e->is_null)
        an_warn(x, "the tolerance of slice '%s' is not a number >= 0; using the default", name);
    return isnan(x->def_tol) ? QB_AN_DEFAULT_TOLERANCE : x->def_tol;
}

/* The flip limit of a slice in percent: its own entry when a number in [0, 100], else the
 * default of the settings, else QB_AN_DEFAULT_FLIPS. */
static double slice_max_flips(struct an *x, const char *name)
{
    const struct qb_settings *r = x->rules;
    const struct qb_settings_slice *e = qb_settings_find(r->flips.slices, r->flips.n, name);
    if (e && e->value >= 0 && e->value <= 100)
        return e->value;
    if (e && !e->is_null)
        an_warn(x, "the flip limit of slice '%s' is not a number from 0 to 100; using the default",
                name);
    return r->flips.has_default ? r->flips.default_percent : QB_AN_DEFAULT_FLIPS;
}

/* Row s: its name, kind and tolerance, and its job over items[0..n). */
static int init_slice(struct an *x, int64_t s, const int64_t *items, int64_t n)
{
    struct qb_an_slice *sl = &x->a->slices[s];
    int64_t n_ppl = 0;

    sl->name = g_strdup(g_ptr_array_index(x->slice_names, s));
    sl->n_items = n;
    for (int64_t k = 0; k < n; k++)
        n_ppl += x->items[items[k]].is_ppl;
    sl->is_perplexity = n_ppl == n && n > 0;
    sl->tolerance = slice_tolerance(x, sl->name);
    sl->max_flips = slice_max_flips(x, sl->name);
    sl->cliff = -1;
    sl->behaviour = sl->unstable_above = sl->unstable_below = -1;
    if (n_ppl && !sl->is_perplexity)
        an_warn(x,
                "slice '%s' mixes perplexity and accuracy items; its %lld perplexity items "
                "are left out of its accuracy",
                sl->name, (long long)n_ppl);
    if (n < QB_AN_MIN_ITEMS)
        an_warn(x, "slice '%s' has %lld items: too few to decide", sl->name, (long long)n);
    if (!(sl->cells = calloc((size_t)x->a->n_configs, sizeof *sl->cells)))
        return qb_err(QB_ENOMEM, "out of memory");
    x->jobs[s] = (struct job){sl, items, n};
    return 0;
}

/* The overall row: every accuracy item (perplexity items never enter it), into the second
 * half of x->idx. Its tolerance: the default, else the smallest of the slices the settings
 * name, else QB_AN_DEFAULT_TOLERANCE. */
static int init_overall(struct an *x)
{
    struct qb_analysis *a = x->a;
    struct qb_an_slice *ov = &a->overall;
    int64_t k = 0, *ov_idx = x->idx + x->n_items;
    double min_tol = INFINITY;
    int any_slice_tol = 0;

    for (int64_t s = 0; s < a->n_slices; s++)
        if (qb_settings_find(x->rules->tolerances.slices, x->rules->tolerances.n,
                             a->slices[s].name)) {
            any_slice_tol = 1;
            if (a->slices[s].tolerance < min_tol)
                min_tol = a->slices[s].tolerance;
        }
    for (int64_t i = 0; i < x->n_items; i++)
        if (!x->items[i].is_ppl)
            ov_idx[k++] = i;
    ov->name = g_strdup("overall");
    ov->n_items = k;
    ov->traffic = 1.0;
    ov->cliff = -1;
    ov->behaviour = ov->unstable_above = ov->unstable_below = -1;
    ov->max_flips =
        x->rules->flips.has_default ? x->rules->flips.default_percent : QB_AN_DEFAULT_FLIPS;
    ov->tolerance = !isnan(x->def_tol) ? x->def_tol
                    : any_slice_tol    ? min_tol
                                       : QB_AN_DEFAULT_TOLERANCE;
    if (!(ov->cells = calloc((size_t)a->n_configs, sizeof *ov->cells)))
        return qb_err(QB_ENOMEM, "out of memory");
    x->jobs[a->n_slices] = (struct job){ov, ov_idx, k};
    return 0;
}

/* The slices (items grouped by slice in suite order: slice s holds x->idx[start[s] ..
 * start[s] + n_in[s])), then the overall row; one job per row. */
int an_group_slices(struct an *x)
{
    struct qb_analysis *a = x->a;
    int64_t *n_in = NULL, *start = NULL, *fill = NULL;
    int rc = 0;

    a->n_slices = x->slice_names->len;
    if (!(a->slices = calloc((size_t)a->n_slices + 1, sizeof *a->slices)) ||
        !(x->idx = malloc((2 * (size_t)x->n_items + 1) * sizeof *x->idx)) ||
        !(x->jobs = calloc((size_t)a->n_slices + 1, sizeof *x->jobs)) ||
        !(n_in = calloc((size_t)a->n_slices + 1, sizeof *n_in)) ||
        !(start = calloc((size_t)a->n_slices + 1, sizeof *start)) ||
        !(fill = calloc((size_t)a->n_slices + 1, sizeof *fill))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < x->n_items; i++)
        n_in[x->items[i].slice]++;
    for (int64_t s = 1; s < a->n_slices; s++)
        start[s] = start[s - 1] + n_in[s - 1];
    for (int64_t i = 0; i < x->n_items; i++) {
        int64_t s = x->items[i].slice;
        x->idx[start[s] + fill[s]++] = i;
    }
    for (int64_t s = 0; rc == 0 && s < a->n_slices; s++)
        rc = init_slice(x, s, x->idx + start[s], n_in[s]);
    if (rc == 0)
        rc = init_overall(x);
out:
    free(n_in);
    free(start);
    free(fill);
    return rc;
}

/* --- cells --------------------------------------------------------------------------------- */

/* The statistics of one cell. items[0..n) are the slice's item indices; ppl: a perplexity
 * slice. Flags are set by judge(). */
static int compute_cell(const struct an *x, const int64_t *items, int64_t n, int ppl, int64_t c,
                        struct qb_an_cell *out, double *xs, double *ys)
{
    struct qb_analysis *a = x->a;
    const struct res *B = &x->res[a->baseline * x->n_items], *C = &x->res[c * x->n_items];
    /* imported items: the imported baseline where the run's has no result (analyze_import.c) */
    const struct res *IB = x->import_base1 ? &x->res[(x->import_base1 - 1) * x->n_items] : NULL;
    int64_t n11 = 0, n10 = 0, n01 = 0, n00 = 0, n_kl = 0, n_top1 = 0, n_ppl = 0;
    double kl_sum = 0, top1_sum = 0, nll_b = 0, nll_c = 0, tok_b = 0, tok_c = 0;
    int is_base = c == a->baseline;
    int rc;

    for (int64_t k = 0; k < n; k++) {
        int64_t i = items[k];
        const struct res *r = &C[i];
        if (!r->have)
            continue;
        if (!isnan(r->kl)) {
            ys[n_kl++] = r->kl; /* ys holds KL values first; reused for NLL below */
            kl_sum += r->kl;
        }
        if (!isnan(r->top1)) {
            top1_sum += r->top1;
            n_top1++;
        }
    }
    out->kl_mean = n_kl && !is_base ? kl_sum / (double)n_kl : NAN;
    out->kl_p99 = n_kl && !is_base ? qb_quantile(ys, n_kl, 0.99) : NAN;
    out->top1 = n_top1 ? top1_sum / (double)n_top1 : NAN;

    for (int64_t k = 0; k < n; k++) {
        int64_t i = items[k];
        const struct res *b = !B[i].have && IB ? &IB[i] : &B[i], *r = &C[i];
        if (!b->have || !r->have)
            continue;
        if (x->items[i].is_ppl) {
            if (isnan(b->nll) || isnan(r->nll) || b->n_tokens <= 0 || r->n_tokens <= 0)
                continue;
            xs[n_ppl] = b->nll;
            ys[n_ppl++] = r->nll;
            nll_b += b->nll * (double)b->n_tokens;
            nll_c += r->nll * (double)r->n_tokens;
            tok_b += (double)b->n_tokens;
            tok_c += (double)r->n_tokens;
        } else if (!ppl && b->correct >= 0 && r->correct >= 0) {
            if (b->correct && r->correct)
                n11++;
            else if (b->correct)
                n10++;
            else if (r->correct)
                n01++;
            else
                n00++;
        }
    }
    /* ppl = exp(token-weighted mean NLL); both sides over the same paired items (the token
     * counts agree: same text, same tokenizer) */
    out->ppl = n_ppl ? exp(nll_c / tok_c) : NAN;
    out->ppl_ratio = n_ppl ? exp(nll_c / tok_c - nll_b / tok_b) : NAN;
    double alpha = 1.0 - a->confidence;

    if (ppl) {
        out->n = n_ppl;
        out->n_correct = 0;
        out->acc = NAN;
        out->acc_ci = (struct qb_interval){NAN, NAN};
        out->mcnemar_p = NAN;
        out->flip_rate = NAN;
        out->lost_ci = out->gained_ci = out->flip_ci = (struct qb_interval){NAN, NAN};
        if (n_ppl == 0) {
            out->delta = NAN;
            out->delta_ci = (struct qb_interval){NAN, NAN};
            out->mde = INFINITY;
            return 0;
        }
        struct qb_interval d;
        if ((rc = qb_bootstrap_paired_mean(xs, ys, n_ppl, a->resamples, a->seed, a->confidence,
                                           &d)) < 0)
            return rc;
        out->delta = -(out->ppl_ratio - 1.0);
        out->delta_ci = (struct qb_interval){-expm1(d.hi), -expm1(d.lo)};
        /* MDE of a paired mean difference of NLL (normal approximation), as relative ppl */
        double mean = 0, ss = 0;
        for (int64_t k = 0; k < n_ppl; k++)
            mean += ys[k] - xs[k];
        mean /= (double)n_ppl;
        for (int64_t k = 0; k < n_ppl; k++) {
            double e = ys[k] - xs[k] - mean;
            ss += e * e;
        }
        out->mde = n_ppl < 2 ? INFINITY
                             : expm1((qb_norm_ppf(1.0 - alpha / 2) + qb_norm_ppf(POWER)) *
                                     sqrt(ss / (double)(n_ppl - 1) / (double)n_ppl));
        return 0;
    }

    out->n = n11 + n10 + n01 + n00;
    out->n_correct = n11 + n01;
    out->flips_lost = n10;
    out->flips_gained = n01;
    if (out->n == 0) {
        out->acc = out->delta = out->flip_rate = NAN;
        out->acc_ci = out->delta_ci = (struct qb_interval){NAN, NAN};
        out->lost_ci = out->gained_ci = out->flip_ci = (struct qb_interval){NAN, NAN};
        out->mcnemar_p = NAN;
        out->mde = INFINITY;
        return 0;
    }
    out->acc = (double)out->n_correct / (double)out->n;
    if ((rc = qb_wilson(out->n_correct, out->n, a->confidence, &out->acc_ci)) < 0)
        return rc;
    out->delta = (double)(n01 - n10) / (double)out->n;
    if ((rc = qb_bootstrap_paired_binary(n11, n10, n01, n00, a->resamples, a->seed, a->confidence,
                                         &out->delta_ci)) < 0)
        return rc;
    out->mcnemar_p = qb_mcnemar_exact(n10, n01);
    out->flip_rate = (double)(n10 + n01) / (double)out->n;
    if ((rc = qb_wilson(n10, out->n, a->confidence, &out->lost_ci)) < 0 ||
        (rc = qb_wilson(n01, out->n, a->confidence, &out->gained_ci)) < 0 ||
        (rc = qb_wilson(n10 + n01, out->n, a->confidence, &out->flip_ci)) < 0)
        return rc;
    out->mde = qb_mde_paired(out->n, out->flip_rate, alpha, POWER);
    return 0;
}

/* within / significant_loss / underpowered of every cell of a slice, then its Pareto flags */
static void judge(struct an *x, struct qb_an_slice *sl)
{
    struct qb_analysis *a = x->a;
    double tol = sl->tolerance / 100.0, lim = sl->max_flips / 100.0;

    for (int64_t c = 0; c < a->n_configs; c++) {
        struct qb_an_cell *e = &sl->cells[c];
        if (c == a->baseline) {
            e->delta = e->n ? 0.0 : NAN;
            e->delta_ci = e->n ? (struct qb_interval){0, 0} : (struct qb_interval){NAN, NAN};
            e->mde = NAN;
            e->within = e->within_acc = 1;
            continue;
        }
        if (e->n == 0 || isnan(e->delta)) {
            e->underpowered = 1;
            continue;
        }
        double loss = -e->delta, loss_hi = -e->delta_ci.lo;
        e->within_acc = (a->policy == QB_AN_POINT ? loss : loss_hi) <= tol + EPS;
        /* behaviour: a gain beyond the tolerance, or more answers changed than the limit */
        e->gains_beyond = e->n >= QB_AN_MIN_ITEMS && e->delta > tol + EPS && e->delta_ci.lo > 0;
        e->flips_over =
            e->n >= QB_AN_MIN_ITEMS && isfinite(e->flip_rate) && e->flip_rate > lim + EPS;
        e->changes_behaviour = e->gains_beyond || e->flips_over;
        e->within = e->within_acc && !e->changes_behaviour;
        /* a bootstrap interval of a handful of items is no evidence: no cliff below QB_AN_MIN_ITEMS
         */
        e->significant_loss = e->n >= QB_AN_MIN_ITEMS && loss > tol + EPS && e->delta_ci.hi < 0;
        e->underpowered = e->mde > tol + EPS;
    }
    /* Pareto on (memory cost, delta): delta orders accuracy and perplexity alike */
    for (int64_t i = 0; i < a->n_configs; i++) {
        struct qb_an_cell *e = &sl->cells[i];
        double mi = an_or_inf(a->configs[i].mem_cost);
        e->pareto = !isnan(e->delta);
        for (int64_t j = 0; e->pareto && j < a->n_configs; j++) {
            double mj = an_or_inf(a->configs[j].mem_cost), dj = sl->cells[j].delta;
            if (j == i || isnan(dj))
                continue;
            if (mj <= mi && dj >= e->delta && (mj < mi || dj > e->delta))
                e->pareto = 0;
        }
    }
}

/* Every cell of every job, in parallel: a perplexity cell's bootstrap costs n x resamples
 * draws, so cells are handed out one at a time. A cell that fails in a worker is computed
 * again here, so its message lands in this thread's error buffer. */
static int compute_all(struct an *x, const struct job *jobs, int64_t n_jobs)
{
    int64_t n_cfg = x->a->n_configs, n_cells = n_jobs * n_cfg;
    int *rcs = calloc((size_t)n_cells + 1, sizeof *rcs);
    int rc = 0;

    if (!rcs)
        return qb_err(QB_ENOMEM, "out of memory");
#pragma omp parallel
    {
        double *xs = malloc(((size_t)x->n_items + 1) * sizeof *xs);
        double *ys = malloc(((size_t)x->n_items + 1) * sizeof *ys);
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < n_cells; k++) {
            const struct job *j = &jobs[k / n_cfg];
            rcs[k] = xs && ys ? compute_cell(x, j->items, j->n, j->sl->is_perplexity, k % n_cfg,
                                             &j->sl->cells[k % n_cfg], xs, ys)
                              : QB_ENOMEM;
        }
        free(xs);
        free(ys);
    }
    for (int64_t k = 0; rc == 0 && k < n_cells; k++) {
        const struct job *j = &jobs[k / n_cfg];
        if (rcs[k] < 0)
            rc = compute_cell(x, j->items, j->n, j->sl->is_perplexity, k % n_cfg,
                              &j->sl->cells[k % n_cfg], x->xs, x->ys);
    }
    free(rcs);
    return rc;
}

int an_compute_cells(struct an *x)
{
    struct qb_analysis *a = x->a;
    int rc;

    if ((rc = compute_all(x, x->jobs, a->n_slices + 1)) < 0)
        return rc;
    for (int64_t s = 0; s < a->n_slices; s++)
        judge(x, &a->slices[s]);
    judge(x, &a->overall);
    return 0;
}
