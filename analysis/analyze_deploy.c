/* analyze_deploy: the traffic mix over the suite's slices, and the two deployment plans the
 * brief compares with the baseline -- "single" (one config for every slice) and "routed" (each
 * slice on its recommendation, configs of equal memory merged) -- with their memory and
 * traffic-weighted latency. Definitions in analyze.h. */
#include "analysis/analyze_int.h"

#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- traffic ------------------------------------------------------------------------------- */

/* Each slice's share: the settings' traffic mix, scaled to sum to 1; else proportional to the
 * items per slice. Entries that name no slice of the suite or hold no number >= 0 are warned
 * about and left out. */
int an_traffic(struct an *x)
{
    struct qb_analysis *a = x->a;
    double sum = 0;
    int64_t total = 0;

    if (x->set.traffic.n > 0) {
        for (int64_t i = 0; i < x->set.traffic.n; i++) {
            const char *k = x->set.traffic.slices[i].slice;
            gpointer ix = g_hash_table_lookup(x->slice_ix, k);
            double t = x->set.traffic.slices[i].value; /* NAN when not a number */
            if (!ix)
                an_warn(x, "the traffic mix names slice '%s', which the suite does not have", k);
            else if (!(t >= 0))
                an_warn(x, "the traffic share of slice '%s' is not a number >= 0; taken as 0", k);
            else {
                a->slices[GPOINTER_TO_INT(ix) - 1].traffic = t;
                sum += t;
            }
        }
        if (sum > 0 && fabs(sum - 1.0) > 1e-6) {
            an_warn(x, "the traffic shares sum to %.4g, not 1; they were scaled to sum to 1", sum);
            for (int64_t s = 0; s < a->n_slices; s++)
                a->slices[s].traffic /= sum;
        }
        if (sum > 0)
            return 0;
        an_warn(x,
                "the traffic mix gives no share to any slice of the suite; using the item counts");
    }
    for (int64_t s = 0; s < a->n_slices; s++)
        total += a->slices[s].n_items;
    for (int64_t s = 0; s < a->n_slices; s++)
        a->slices[s].traffic = total ? (double)a->slices[s].n_items / (double)total : 0.0;
    return 0;
}

/* --- plans --------------------------------------------------------------------------------- */

static int make_plan(struct an *x, struct qb_an_plan *p, const int64_t *cfg)
{
    struct qb_analysis *a = x->a;
    const struct qb_an_config *base = &a->configs[a->baseline];
    char *used = NULL;

    if (!(p->config = calloc((size_t)a->n_slices + 1, sizeof *p->config)) ||
        !(used = calloc((size_t)a->n_configs, 1))) {
        free(used);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    p->mem_cost = 0;
    p->tpot_ms = 0;
    for (int64_t s = 0; s < a->n_slices; s++) {
        int64_t c = cfg[s];
        p->config[s] = c;
        if (!used[c]) {
            used[c] = 1;
            p->n_distinct++;
            p->mem_cost += a->configs[c].mem_cost;
        }
        if (a->slices[s].traffic > 0)
            p->tpot_ms += a->slices[s].traffic * a->configs[c].lat_cost; /* NAN propagates */
    }
    if (a->n_slices == 0) {
        p->mem_cost = base->mem_cost;
        p->tpot_ms = base->lat_cost;
    }
    p->mem_ratio = p->mem_cost / base->mem_cost;
    p->tpot_ratio = p->tpot_ms / base->lat_cost;
    free(used);
    return 0;
}

/* Drops from the routed plan cfg (n_slices; -1 for a slice not yet routed) each config whose
 * slices all hold on another config it deploys at the same memory cost: two such configs
 * loaded side by side hold twice the memory of one (a calibrated config and its
 * round-to-nearest twin, say, whose measured latencies differ by noise). The config with the
 * fewest slices goes first, the later in cost order among equals; its slices move to the
 * first such config in cost order. */
static int share_equal_memory(const struct an *x, int64_t *cfg)
{
    const struct qb_analysis *a = x->a;
    int64_t *served = calloc((size_t)a->n_configs, sizeof *served);
    if (!served)
        return qb_err(QB_ENOMEM, "out of memory");
    for (int moved = 1; moved;) {
        int64_t drop = -1, to = -1;
        moved = 0;
        memset(served, 0, (size_t)a->n_configs * sizeof *served);
        for (int64_t s = 0; s < a->n_slices; s++)
            if (cfg[s] >= 0) /* -1: a failed slice, routed later */
                served[cfg[s]]++;
        for (int64_t k = a->n_configs - 1; k >= 0; k--) {
            const int64_t d = x->cost_order[k];
            int64_t t = -1;
            if (!served[d] || (drop >= 0 && served[d] >= served[drop]))
                continue;
            for (int64_t j = 0; j < a->n_configs && t < 0; j++) {
                const int64_t c = x->cost_order[j];
                int ok = c != d && served[c] && a->configs[c].mem_cost == a->configs[d].mem_cost;
                for (int64_t s = 0; ok && s < a->n_slices; s++)
                    ok = cfg[s] != d || a->slices[s].cells[c].within;
                t = ok ? c : -1;
            }
            if (t >= 0)
                drop = d, to = t;
        }
        for (int64_t s = 0; drop >= 0 && s < a->n_slices; s++)
            if (cfg[s] == drop)
                cfg[s] = to, moved = 1;
    }
    free(served);
    return 0;
}

/* "single": the cheapest config within tolerance for every judged slice at once (the
 * baseline when none, or when every slice fails). */
static int single_plan(struct an *x, int64_t *cfg)
{
    struct qb_analysis *a = x->a;
    int64_t n_judged = 0;

    for (int64_t s = 0; s < a->n_slices; s++)
        n_judged += a->slices[s].verdict != QB_VERDICT_FAILS;
    a->single_config = a->baseline;
    for (int64_t k = 0; n_judged > 0 && k < a->n_configs; k++) {
        int64_t c = x->cost_order[k], ok = 1;
        for (int64_t s = 0; ok && s < a->n_slices; s++)
            ok = a->slices[s].verdict == QB_VERDICT_FAILS || a->slices[s].cells[c].within;
        if (ok) {
            a->single_config = c;
            break;
        }
    }
    for (int64_t s = 0; s < a->n_slices; s++)
        cfg[s] = a->single_config;
    return make_plan(x, &a->single, cfg);
}

/* "routed": each judged slice on its recommendation, configs of equal memory merged; a slice
 * the baseline fails goes to the cheapest config the others use. */
static int routed_plan(struct an *x, int64_t *cfg)
{
    struct qb_analysis *a = x->a;
    int64_t cheapest_used = -1;
    int rc;

    for (int64_t s = 0; s < a->n_slices; s++)
        cfg[s] = a->slices[s].verdict != QB_VERDICT_FAILS ? a->slices[s].rec : -1;
    if ((rc = share_equal_memory(x, cfg)) < 0)
        return rc;
    for (int64_t k = 0; k < a->n_configs && cheapest_used < 0; k++)
        for (int64_t s = 0; s < a->n_slices; s++)
            if (cfg[s] == x->cost_order[k])
                cheapest_used = x->cost_order[k];
    for (int64_t s = 0; s < a->n_slices; s++)
        if (cfg[s] < 0)
            cfg[s] = cheapest_used >= 0 ? cheapest_used : a->baseline;
    return make_plan(x, &a->routed, cfg);
}

/* Both plans; a slice the baseline fails constrains neither. */
int an_deploy(struct an *x)
{
    int64_t *cfg = calloc((size_t)x->a->n_slices + 1, sizeof *cfg); /* per slice: a config */
    int rc;

    if (!cfg)
        return qb_err(QB_ENOMEM, "out of memory");
    if ((rc = single_plan(x, cfg)) == 0)
        rc = routed_plan(x, cfg);
    free(cfg);
    return rc;
}
