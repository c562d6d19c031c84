/* analyze_configs: the configs of a run -- read from the store and sorted into the precision
 * ladder, their memory rows (the largest measured context), their latency samples reduced to
 * percentiles per setting, and the cost every "cheapest" in analyze.h is measured by (memory,
 * then latency, then fewer bits). */
#include "analysis/analyze_int.h"

#include "analysis/stats.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* --- the ladder --------------------------------------------------------------------------- */

static int on_config(void *ctx, int64_t id, const struct qb_store_config *c)
{
    struct an *x = ctx;
    if (x->n_raw == x->cap_raw) {
        int64_t cap = x->cap_raw ? 2 * x->cap_raw : 16;
        struct raw_config *p = realloc(x->raw, (size_t)cap * sizeof *p);
        if (!p)
            return qb_err(QB_ENOMEM, "out of memory reading configs");
        x->raw = p;
        x->cap_raw = cap;
    }
    x->raw[x->n_raw++] = (struct raw_config){id, g_strdup(c->spec ? c->spec : "?"),
                                             c->bits_per_weight, c->quant_seconds, c->weight_bytes};
    return 0;
}

/* qsort_r comparator over raw config indices; ctx is x->raw */
static int ladder_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct raw_config *raw = ctx;
    const struct raw_config *a = &raw[*(const int64_t *)pa], *b = &raw[*(const int64_t *)pb];
    int na = isnan(a->bpw), nb = isnan(b->bpw);
    if (na != nb)
        return na - nb; /* unknown bits last */
    if (!na && a->bpw != b->bpw)
        return a->bpw > b->bpw ? -1 : 1;
    if (a->wbytes != b->wbytes)
        return a->wbytes > b->wbytes ? -1 : 1; /* -1 (unknown) sorts last */
    return strcmp(a->spec, b->spec);
}

static int build_configs(struct an *x)
{
    struct qb_analysis *a = x->a;
    int64_t *order = NULL;
    int rc = 0;

    if (!(order = calloc((size_t)x->n_raw, sizeof *order)) ||
        !(x->ladder_of = calloc((size_t)x->n_raw, sizeof *x->ladder_of)) ||
        !(a->configs = calloc((size_t)x->n_raw, sizeof *a->configs)) ||
        !(x->cost_order = calloc((size_t)x->n_raw, sizeof *x->cost_order))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < x->n_raw; i++)
        order[i] = i;
    qsort_r(order, (size_t)x->n_raw, sizeof *order, ladder_cmp, x->raw);
    a->n_configs = x->n_raw;
    a->baseline = -1;
    for (int64_t l = 0; l < x->n_raw; l++) {
        struct raw_config *r = &x->raw[order[l]];
        struct qb_an_config *c = &a->configs[l];
        x->ladder_of[order[l]] = l;
        c->spec = r->spec;
        r->spec = NULL;
        c->ladder = l;
        c->bits_per_weight = r->bpw;
        c->weight_bytes = r->wbytes;
        c->quant_seconds = r->qsec;
        c->peak_rss_bytes = c->kv_cache_bytes = c->mem_context = -1;
        c->mem_cost = c->lat_cost = c->mem_saving = NAN;
        if (x->baseline_spec && !strcmp(c->spec, x->baseline_spec)) {
            c->is_baseline = 1;
            a->baseline = l;
        }
    }
out:
    free(order);
    return rc;
}

int an_load_configs(struct an *x)
{
    int rc;
    if ((rc = qb_store_list_configs(x->s, x->run_id, on_config, x)) < 0 ||
        (rc = build_configs(x)) < 0)
        return rc;
    if (x->a->baseline < 0)
        return qb_err(QB_EINVAL, "run '%s' has no config for its baseline '%s'", x->a->run_name,
                      x->baseline_spec ? x->baseline_spec : "?");
    return 0;
}

/* --- memory and latency ------------------------------------------------------------------- */

static int on_memory(void *ctx, const struct qb_store_memory *m)
{
    struct qb_an_config *c = ctx;
    if (c->mem_context >= 0 && m->context < c->mem_context)
        return 0; /* keep the largest context */
    c->mem_context = m->context;
    c->peak_rss_bytes = m->peak_rss_bytes;
    c->kv_cache_bytes = m->kv_cache_bytes;
    if (c->weight_bytes < 0 && m->weight_bytes >= 0)
        c->weight_bytes = m->weight_bytes;
    return 0;
}

static int on_latency(void *ctx, const struct qb_store_latency *l)
{
    struct an *x = ctx;
    g_array_append_val(x->lat, *l);
    return 0;
}

/* p-quantiles of one field of samples [b, e); NAN when none is measured */
static void pct(const struct qb_store_latency *v, int64_t n, size_t off, double *buf, double *p50,
                double *p95, double *p99)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = *(const double *)((const char *)&v[i] + off);
        if (!isnan(d))
            buf[k++] = d;
    }
    *p50 = qb_quantile(buf, k, 0.50);
    if (p95)
        *p95 = qb_quantile(buf, k, 0.95);
    if (p99)
        *p99 = qb_quantile(buf, k, 0.99);
}

static int lat_cmp(const void *pa, const void *pb)
{
    const struct qb_an_latency *a = pa, *b = pb;
    int da = !(a->gen_len > 0 && a->batch == 1), db = !(b->gen_len > 0 && b->batch == 1);
    if (da != db)
        return da - db;
    if (a->prompt_len != b->prompt_len)
        return a->prompt_len < b->prompt_len ? -1 : 1;
    if (a->gen_len != b->gen_len)
        return a->gen_len < b->gen_len ? -1 : 1;
    return a->batch < b->batch ? -1 : a->batch > b->batch;
}

static int read_latency(struct an *x, int64_t run_id, int64_t store_id, struct qb_an_config *c)
{
    const struct qb_store_latency *v;
    double *buf = NULL;
    int64_t n, n_groups = 0;
    int rc;

    g_array_set_size(x->lat, 0);
    if ((rc = qb_store_list_latency(x->s, run_id, store_id, on_latency, x)) < 0)
        return rc;
    v = (const struct qb_store_latency *)(void *)x->lat->data;
    n = x->lat->len;
    if (n == 0)
        return 0;
    for (int64_t i = 0; i < n; i++) /* listed in (prompt_len, gen_len, batch) order */
        if (i == 0 || v[i].prompt_len != v[i - 1].prompt_len || v[i].gen_len != v[i - 1].gen_len ||
            v[i].batch != v[i - 1].batch)
            n_groups++;
    if (!(c->lat = calloc((size_t)n_groups, sizeof *c->lat)) ||
        !(buf = malloc((size_t)n * sizeof *buf)))
        return qb_err(QB_ENOMEM, "out of memory reading latency");
    for (int64_t i = 0, g = 0; i < n; g++) {
        int64_t j = i + 1;
        while (j < n && v[j].prompt_len == v[i].prompt_len && v[j].gen_len == v[i].gen_len &&
               v[j].batch == v[i].batch)
            j++;
        struct qb_an_latency *L = &c->lat[g];
        L->prompt_len = v[i].prompt_len;
        L->gen_len = v[i].gen_len;
        L->batch = v[i].batch;
        L->n_samples = j - i;
        pct(v + i, j - i, offsetof(struct qb_store_latency, ttft_ms), buf, &L->ttft_p50,
            &L->ttft_p95, &L->ttft_p99);
        pct(v + i, j - i, offsetof(struct qb_store_latency, tpot_ms), buf, &L->tpot_p50,
            &L->tpot_p95, &L->tpot_p99);
        pct(v + i, j - i, offsetof(struct qb_store_latency, e2e_ms), buf, &L->e2e_p50, &L->e2e_p95,
            &L->e2e_p99);
        pct(v + i, j - i, offsetof(struct qb_store_latency, decode_tok_s), buf,
            &L->decode_tok_s_p50, NULL, NULL);
        L->speedup_tpot = L->speedup_ttft = NAN;
        i = j;
    }
    c->n_lat = n_groups;
    free(buf);
    /* decode settings (tokens generated one request at a time) first: lat[0] is then the
     * setting costs and speedups are read at, never a prefill-only batch setting */
    qsort(c->lat, (size_t)n_groups, sizeof *c->lat, lat_cmp);
    return 0;
}

int an_load_measures(struct an *x)
{
    int rc;
    for (int64_t r = 0; r < x->n_raw; r++) {
        struct qb_an_config *c = &x->a->configs[x->ladder_of[r]];
        if ((rc = qb_store_list_memory(x->s, x->run_id, x->raw[r].id, on_memory, c)) < 0 ||
            (rc = read_latency(x, x->run_id, x->raw[r].id, c)) < 0)
            return rc;
    }
    return 0;
}

/* --- costs -------------------------------------------------------------------------------- */

static const struct qb_an_latency *lat_at(const struct qb_an_config *c, int64_t pl, int64_t gl,
                                          int64_t b)
{
    for (int64_t i = 0; i < c->n_lat; i++)
        if (c->lat[i].prompt_len == pl && c->lat[i].gen_len == gl && c->lat[i].batch == b)
            return &c->lat[i];
    return NULL;
}

/* qsort_r comparator over config indices, cheaper first: memory, then latency, then fewer
 * bits (further down the ladder); ctx is a->configs */
static int cost_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct qb_an_config *cfg = ctx;
    const struct qb_an_config *a = &cfg[*(const int64_t *)pa], *b = &cfg[*(const int64_t *)pb];
    double ma = an_or_inf(a->mem_cost), mb = an_or_inf(b->mem_cost);
    double la = an_or_inf(a->lat_cost), lb = an_or_inf(b->lat_cost);
    if (ma != mb)
        return ma < mb ? -1 : 1;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->ladder > b->ladder ? -1 : a->ladder < b->ladder;
}

int an_config_costs(struct an *x)
{
    struct qb_analysis *a = x->a;
    struct qb_an_config *base = &a->configs[a->baseline];
    /* memory cost = the config's weight bytes: what serving it must hold. Peak RSS adds the
     * process, the KV cache and activations, which are the same for every config (and, on a
     * small model, dwarf the weights); it is reported, and used only when weight bytes are
     * unknown for some config */
    int all_rss = a->n_configs > 0, all_wb = a->n_configs > 0;

    for (int64_t i = 0; i < a->n_configs; i++) {
        all_rss &= a->configs[i].peak_rss_bytes >= 0;
        all_wb &= a->configs[i].weight_bytes >= 0;
    }
    all_rss &= !all_wb;
    a->mem_cost_rss = all_rss;
    for (int64_t i = 0; i < a->n_configs; i++) {
        struct qb_an_config *c = &a->configs[i];
        const struct qb_an_latency *l = NULL;
        c->mem_cost = all_rss                ? (double)c->peak_rss_bytes
                      : c->weight_bytes >= 0 ? (double)c->weight_bytes
                                             : NAN;
        if (base->n_lat > 0)
            l = lat_at(c, base->lat[0].prompt_len, base->lat[0].gen_len, base->lat[0].batch);
        if (!l && c->n_lat > 0)
            l = &c->lat[0];
        c->lat_cost = l ? l->tpot_p50 : NAN;
        for (int64_t k = 0; k < c->n_lat; k++) {
            const struct qb_an_latency *b =
                lat_at(base, c->lat[k].prompt_len, c->lat[k].gen_len, c->lat[k].batch);
            if (b) {
                c->lat[k].speedup_tpot = b->tpot_p50 / c->lat[k].tpot_p50;
                c->lat[k].speedup_ttft = b->ttft_p50 / c->lat[k].ttft_p50;
            }
        }
    }
    for (int64_t i = 0; i < a->n_configs; i++) {
        struct qb_an_config *c = &a->configs[i];
        c->mem_saving = 1.0 - c->mem_cost / base->mem_cost;
        x->cost_order[i] = i;
    }
    qsort_r(x->cost_order, (size_t)a->n_configs, sizeof *x->cost_order, cost_cmp, a->configs);
    return 0;
}
