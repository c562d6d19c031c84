/* analyze_warn: the warnings about the data the brief lists with its caveats -- results
 * missing or failed, configs without results, slices too small to detect their tolerance,
 * slices the baseline fails, a calibrated method without recorded calibration data. */
#include "analysis/analyze_int.h"

#include "collector/model/qspec.h"

static void underpowered_warning(struct an *x, const struct qb_an_slice *sl, const char *what)
{
    struct qb_analysis *a = x->a;
    int64_t cand = sl->rec;
    if (sl->verdict != QB_VERDICT_UNDECIDED)
        return;
    if (cand == a->baseline && a->baseline + 1 < a->n_configs)
        cand = a->baseline + 1;
    const struct qb_an_cell *e = &sl->cells[cand];
    if (e->n < QB_AN_MIN_ITEMS)
        return; /* said already, as too few items */
    if (sl->is_perplexity)
        an_warn(x,
                "%s '%s' cannot detect a %.3g%% perplexity increase at %s with %lld items "
                "(minimum detectable %.2g%%)",
                what, sl->name, sl->tolerance, a->configs[cand].spec, (long long)e->n,
                100 * e->mde);
    else
        an_warn(x,
                "%s '%s' cannot detect a %.3g-point loss at %s with %lld items "
                "(minimum detectable %.2g points)",
                what, sl->name, sl->tolerance, a->configs[cand].spec, (long long)e->n,
                100 * e->mde);
}

static int uses_calibration(const char *spec)
{
    struct qb_qspec q;
    return spec && qb_qspec_parse(spec, &q) == 0 && q.method != QB_METHOD_RTN;
}

int an_data_warnings(struct an *x)
{
    struct qb_analysis *a = x->a;

    if (a->n_missing > 0)
        an_warn(x,
                "%lld of %lld (config, item) results are missing; each cell uses the items "
                "measured under both the baseline and the config",
                (long long)a->n_missing, (long long)(a->n_configs * x->n_items));
    if (a->n_failed > 0)
        an_warn(x, "%lld results were skipped or failed and are left out", (long long)a->n_failed);
    for (int64_t c = 0; c < a->n_configs; c++)
        if (a->configs[c].n_results == 0)
            an_warn(x, "config '%s' has no results", a->configs[c].spec);
    for (int64_t s = 0; s < a->n_slices; s++) {
        const struct qb_an_cell *b = &a->slices[s].cells[a->baseline];
        underpowered_warning(x, &a->slices[s], "slice");
        /* a slice the baseline already fails cannot show a loss: it is not judged */
        if (a->slices[s].verdict == QB_VERDICT_FAILS)
            an_warn(x,
                    "slice '%s': %s scores %.1f%% (n=%lld), so no config can show a loss there; "
                    "it is not judged and does not constrain the deployment",
                    a->slices[s].name, a->configs[a->baseline].spec, 100 * b->acc, (long long)b->n);
    }
    if (!a->calib_sha256 && !a->calib_file)
        for (int64_t c = 0; c < a->n_configs; c++)
            if (uses_calibration(a->configs[c].spec)) {
                an_warn(x,
                        "config '%s' uses a calibrated method but the run records no "
                        "calibration data",
                        a->configs[c].spec);
                break;
            }

    return 0;
}
