/* analyze: reads one run from the results store and computes every number of the brief (see
 * analyze.h for the definitions; they must agree with the methodology section the brief
 * prints). The run is read with one query per table (all results at once), kept in a dense
 * config x item matrix, and every cell is computed from that matrix. */
#include "analysis/analyze.h"

#include "analysis/stats.h"
#include "kernels/base/err.h"
#include "collector/store/store.h"
#include "collector/model/qspec.h"

#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-12  /* slack when comparing a loss with its tolerance (both fractions) */
#define POWER 0.80 /* power of the minimum detectable effect */

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
    double def_tol;     /* points; NAN when the run names none */
    json_t *tol_slices; /* borrowed from settings */
    json_t *traffic;    /* borrowed from settings */
    json_t *settings;

    /* scratch for perplexity cells */
    double *xs, *ys;

    /* latency read-back */
    GArray *lat; /* struct qb_store_latency */
};

static void warn(struct an *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct an *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(x->warnings, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

static char *dup0(const char *s)
{
    return s ? g_strdup(s) : NULL;
}

const char *qb_an_verdict_name(enum qb_an_verdict v)
{
    switch (v) {
    case QB_VERDICT_HOLDS: return "holds";
    case QB_VERDICT_CLIFF: return "cliff";
    case QB_VERDICT_UNDECIDED: return "undecided";
    case QB_VERDICT_BASELINE: return "baseline";
    case QB_VERDICT_FAILS: return "baseline_fails";
    }
    return "?";
}

/* --- freeing ---------------------------------------------------------------------------- */

static void slice_release(struct qb_an_slice *sl)
{
    g_free(sl->name);
    free(sl->cells);
}

void qb_analysis_free(struct qb_analysis *a)
{
    if (!a)
        return;
    char **strs[] = {&a->run_name,     &a->title,        &a->question,       &a->template_name,
                     &a->model_path,   &a->model_sha256, &a->architecture,   &a->model_format,
                     &a->suite_path,   &a->suite_sha256, &a->qbrief_version, &a->git_commit,
                     &a->command_line, &a->host,         &a->machine_json,   &a->started_at,
                     &a->finished_at,  &a->calib_file,   &a->calib_sha256,   &a->settings_json};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        g_free(*strs[i]);
    for (int64_t i = 0; a->configs && i < a->n_configs; i++) {
        g_free(a->configs[i].spec);
        free(a->configs[i].lat);
    }
    free(a->configs);
    for (int64_t i = 0; a->slices && i < a->n_slices; i++)
        slice_release(&a->slices[i]);
    free(a->slices);
    slice_release(&a->overall);
    free(a->cliffs);
    free(a->single.config);
    free(a->routed.config);
    for (int64_t i = 0; a->warnings && i < a->n_warnings; i++)
        g_free(a->warnings[i]);
    free(a->warnings);
    free(a);
}

/* --- reading the run -------------------------------------------------------------------- */

struct find_run {
    const char *name; /* NULL: the first listed (newest) */
    int64_t run_id, suite_id;
    GString *names; /* every run name, for the message when none matches */
};

static int on_run_listed(void *ctx, int64_t run_id, int64_t suite_id, const char *name,
                         const char *started_at)
{
    struct find_run *f = ctx;
    (void)started_at;
    if (f->run_id <= 0 && (!f->name || (name && !strcmp(name, f->name)))) {
        f->run_id = run_id;
        f->suite_id = suite_id;
    }
    if (f->names->len < 400)
        g_string_append_printf(f->names, "%s'%s'", f->names->len ? ", " : "", name ? name : "");
    return 0;
}

static int on_run(void *ctx, const struct qb_store_run *r, const struct qb_store_model *m,
                  const struct qb_store_suite *su)
{
    struct an *x = ctx;
    struct qb_analysis *a = x->a;
    a->run_name = dup0(r->name);
    a->qbrief_version = dup0(r->qbrief_version);
    a->git_commit = dup0(r->git_commit);
    a->command_line = dup0(r->command_line);
    a->host = dup0(r->host);
    a->machine_json = dup0(r->machine_json);
    a->settings_json = dup0(r->settings_json);
    a->started_at = dup0(r->started_at);
    a->finished_at = dup0(r->finished_at);
    a->model_path = dup0(m->path);
    a->model_sha256 = dup0(m->sha256);
    a->architecture = dup0(m->architecture);
    a->model_format = dup0(m->format);
    a->n_params = m->n_params;
    a->suite_path = dup0(su->path);
    a->suite_sha256 = dup0(su->sha256);
    a->n_suite_items = su->n_items;
    x->baseline_spec = dup0(r->baseline_config);
    return 0;
}

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

static int on_item(void *ctx, int64_t id, const struct qb_store_item *it)
{
    struct an *x = ctx;
    const char *slice = it->slice ? it->slice : "";
    gpointer v;
    if (x->n_items == x->cap_items) {
        int64_t cap = x->cap_items ? 2 * x->cap_items : 1024;
        struct item *p = realloc(x->items, (size_t)cap * sizeof *p);
        if (!p)
            return qb_err(QB_ENOMEM, "out of memory reading items");
        x->items = p;
        x->cap_items = cap;
    }
    if (!(v = g_hash_table_lookup(x->slice_ix, slice))) {
        char *name = g_strdup(slice);
        g_ptr_array_add(x->slice_names, name);
        v = GINT_TO_POINTER((gint)x->slice_names->len);
        g_hash_table_insert(x->slice_ix, name, v);
    }
    x->items[x->n_items++] =
        (struct item){id, GPOINTER_TO_INT(v) - 1, it->kind && !strcmp(it->kind, "perplexity")};
    return 0;
}

static int64_t find_item(const struct an *x, int64_t id)
{
    int64_t lo = 0, hi = x->n_items - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (x->items[mid].id == id)
            return mid;
        if (x->items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int64_t find_config(const struct an *x, int64_t id)
{
    for (int64_t i = 0; i < x->n_raw; i++)
        if (x->raw[i].id == id)
            return x->ladder_of[i];
    return -1;
}

static int on_result(void *ctx, const struct qb_store_result *r)
{
    struct an *x = ctx;
    int64_t c = find_config(x, r->config_id), i = find_item(x, r->item_id);
    if (c < 0 || i < 0)
        return 0; /* an item of another suite cannot be joined; foreign keys forbid it */
    if (r->status && strcmp(r->status, "ok")) {
        x->a->n_failed++;
        return 0;
    }
    struct res *p = &x->res[c * x->n_items + i];
    p->have = 1;
    p->correct = (signed char)(r->correct == 0 || r->correct == 1 ? r->correct : -1);
    p->n_tokens = r->n_tokens;
    p->nll = r->nll;
    p->kl = r->mean_kl;
    p->top1 = r->top1_agreement;
    x->a->n_results++;
    x->a->configs[c].n_results++;
    return 0;
}

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

static int on_calib(void *ctx, const struct qb_store_calib *c)
{
    struct an *x = ctx;
    struct qb_analysis *a = x->a;
    /* the run-wide row (config 0, listed first) wins; else the first per-config one */
    if (!a->calib_sha256) {
        a->calib_sha256 = dup0(c->sha256);
        a->calib_sequences = c->n_sequences;
        a->calib_seq_len = c->seq_len;
    }
    return 0;
}

/* --- settings --------------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void read_settings(struct an *x, const struct qb_an_opts *o)
{
    struct qb_analysis *a = x->a;
    json_t *st = NULL, *v;
    json_error_t e;

    a->confidence = 0.95;
    a->policy = QB_AN_INTERVAL;
    x->def_tol = NAN;
    if (a->settings_json) {
        st = json_loads(a->settings_json, 0, &e);
        if (!st)
            warn(x, "the run's settings are not valid JSON (%s); using the defaults", e.text);
        else if (!json_is_object(st)) {
            warn(x, "the run's settings are not a JSON object; using the defaults");
            json_decref(st);
            st = NULL;
        }
    }
    x->settings = st;
    if (st) {
        a->title = dup0(jstr(st, "title"));
        a->question = dup0(jstr(st, "question"));
        a->template_name = dup0(jstr(st, "template"));
        if ((v = json_object_get(st, "policy")) && json_is_object(v)) {
            json_t *cf = json_object_get(v, "confidence");
            const char *b = jstr(v, "bound");
            if (json_is_number(cf)) {
                double c = json_number_value(cf);
                if (c > 0.0 && c < 1.0)
                    a->confidence = c;
                else
                    warn(x, "policy confidence %g is not between 0 and 1; using 0.95", c);
            }
            if (b && !strcmp(b, "point"))
                a->policy = QB_AN_POINT;
            else if (b && strcmp(b, "interval"))
                warn(x, "unknown policy bound '%s' (interval, point); using interval", b);
        }
        if ((v = json_object_get(st, "tolerances")) && json_is_object(v)) {
            json_t *d = json_object_get(v, "default");
            if (json_is_number(d) && json_number_value(d) >= 0)
                x->def_tol = json_number_value(d);
            else if (d && !json_is_null(d))
                warn(x, "the default tolerance is not a number >= 0; ignored");
            if ((d = json_object_get(v, "slices")) && json_is_object(d))
                x->tol_slices = d;
        }
        if ((v = json_object_get(st, "traffic")) && json_is_object(v) && json_object_size(v))
            x->traffic = v;
        if ((v = json_object_get(st, "calibration")) && json_is_object(v)) {
            json_t *n;
            a->calib_file = dup0(jstr(v, "file"));
            a->calib_sha256 = dup0(jstr(v, "sha256"));
            if (json_is_integer(n = json_object_get(v, "sequences")))
                a->calib_sequences = json_integer_value(n);
            if (json_is_integer(n = json_object_get(v, "seq_len")))
                a->calib_seq_len = json_integer_value(n);
            json_t *ov = json_object_get(v, "overlap");
            if (json_is_object(ov) && json_is_integer(json_object_get(ov, "items")) &&
                json_is_integer(json_object_get(ov, "ngram"))) {
                /* no warning: the brief states it as a caveat, and the JSON carries the counts */
                a->calib_overlap_items = json_integer_value(json_object_get(ov, "items"));
                a->calib_overlap_ngram = json_integer_value(json_object_get(ov, "ngram"));
            }
        }
    }
    if (o->confidence > 0)
        a->confidence = o->confidence;
    if (o->policy >= 0)
        a->policy = (enum qb_an_policy)o->policy;
    if (o->default_tolerance >= 0)
        x->def_tol = o->default_tolerance;
    a->resamples = o->resamples > 0 ? o->resamples : QB_AN_RESAMPLES;
    a->seed = o->seed ? o->seed : QB_AN_SEED;
}

/* --- configs: ladder, memory, latency, cost --------------------------------------------- */

/* qsort_r comparators over index arrays; ctx is the array indexed */
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

static double or_inf(double v)
{
    return isnan(v) ? INFINITY : v;
}

/* cheaper first: memory, then latency, then fewer bits (further down the ladder) */
static int cost_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct qb_an_config *cfg = ctx;
    const struct qb_an_config *a = &cfg[*(const int64_t *)pa], *b = &cfg[*(const int64_t *)pb];
    double ma = or_inf(a->mem_cost), mb = or_inf(b->mem_cost);
    double la = or_inf(a->lat_cost), lb = or_inf(b->lat_cost);
    if (ma != mb)
        return ma < mb ? -1 : 1;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->ladder > b->ladder ? -1 : a->ladder < b->ladder;
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

static const struct qb_an_latency *lat_at(const struct qb_an_config *c, int64_t pl, int64_t gl,
                                          int64_t b)
{
    for (int64_t i = 0; i < c->n_lat; i++)
        if (c->lat[i].prompt_len == pl && c->lat[i].gen_len == gl && c->lat[i].batch == b)
            return &c->lat[i];
    return NULL;
}

static void config_costs(struct an *x)
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
}

/* --- slices and cells ------------------------------------------------------------------- */

static double slice_tolerance(struct an *x, const char *name)
{
    json_t *v = x->tol_slices ? json_object_get(x->tol_slices, name) : NULL;
    if (json_is_number(v) && json_number_value(v) >= 0)
        return json_number_value(v);
    if (v && !json_is_null(v))
        warn(x, "the tolerance of slice '%s' is not a number >= 0; using the default", name);
    return isnan(x->def_tol) ? QB_AN_DEFAULT_TOLERANCE : x->def_tol;
}

/* The statistics of one cell. items[0..n) are the slice's item indices; ppl: a perplexity
 * slice. Flags are set by judge(). */
static int compute_cell(const struct an *x, const int64_t *items, int64_t n, int ppl, int64_t c,
                        struct qb_an_cell *out, double *xs, double *ys)
{
    struct qb_analysis *a = x->a;
    const struct res *B = &x->res[a->baseline * x->n_items], *C = &x->res[c * x->n_items];
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
        const struct res *b = &B[i], *r = &C[i];
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
    out->mde = qb_mde_paired(out->n, out->flip_rate, alpha, POWER);
    return 0;
}

/* within / significant_loss / underpowered of every cell of a slice, then its Pareto flags */
static void judge(struct an *x, struct qb_an_slice *sl)
{
    struct qb_analysis *a = x->a;
    double tol = sl->tolerance / 100.0;

    for (int64_t c = 0; c < a->n_configs; c++) {
        struct qb_an_cell *e = &sl->cells[c];
        if (c == a->baseline) {
            e->delta = e->n ? 0.0 : NAN;
            e->delta_ci = e->n ? (struct qb_interval){0, 0} : (struct qb_interval){NAN, NAN};
            e->mde = NAN;
            e->within = 1;
            continue;
        }
        if (e->n == 0 || isnan(e->delta)) {
            e->underpowered = 1;
            continue;
        }
        double loss = -e->delta, loss_hi = -e->delta_ci.lo;
        e->within = (a->policy == QB_AN_POINT ? loss : loss_hi) <= tol + EPS;
        /* a bootstrap interval of a handful of items is no evidence: no cliff below QB_AN_MIN_ITEMS */
        e->significant_loss = e->n >= QB_AN_MIN_ITEMS && loss > tol + EPS && e->delta_ci.hi < 0;
        e->underpowered = e->mde > tol + EPS;
    }
    /* Pareto on (memory cost, delta): delta orders accuracy and perplexity alike */
    for (int64_t i = 0; i < a->n_configs; i++) {
        struct qb_an_cell *e = &sl->cells[i];
        double mi = or_inf(a->configs[i].mem_cost);
        e->pareto = !isnan(e->delta);
        for (int64_t j = 0; e->pareto && j < a->n_configs; j++) {
            double mj = or_inf(a->configs[j].mem_cost), dj = sl->cells[j].delta;
            if (j == i || isnan(dj))
                continue;
            if (mj <= mi && dj >= e->delta && (mj < mi || dj > e->delta))
                e->pareto = 0;
        }
    }
}

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
    if (sl->cells[cand].n < QB_AN_MIN_ITEMS)
        sl->verdict = QB_VERDICT_UNDECIDED;
    else if (cl->below >= 0 && (sl->rec == cl->above || sl->rec == a->baseline))
        sl->verdict = QB_VERDICT_CLIFF;
    /* an interval inside the tolerance decides whatever the MDE says; only a slice that
     * could not show a cheaper config holds (or that decides on point estimates) is
     * undecided for want of items */
    else if (cand != a->baseline && sl->cells[cand].underpowered &&
             (sl->rec == a->baseline || a->policy == QB_AN_POINT))
        sl->verdict = QB_VERDICT_UNDECIDED;
    else
        sl->verdict = sl->rec != a->baseline ? QB_VERDICT_HOLDS : QB_VERDICT_BASELINE;
}

struct job {
    struct qb_an_slice *sl;
    const int64_t *items;
    int64_t n;
};

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

/* --- traffic and plans ------------------------------------------------------------------ */

static void read_traffic(struct an *x)
{
    struct qb_analysis *a = x->a;
    double sum = 0;
    int64_t total = 0;

    if (x->traffic) {
        const char *k;
        json_t *v;
        json_object_foreach(x->traffic, k, v)
        {
            gpointer ix = g_hash_table_lookup(x->slice_ix, k);
            double t = json_is_number(v) ? json_number_value(v) : -1;
            if (!ix)
                warn(x, "the traffic mix names slice '%s', which the suite does not have", k);
            else if (!(t >= 0))
                warn(x, "the traffic share of slice '%s' is not a number >= 0; taken as 0", k);
            else {
                a->slices[GPOINTER_TO_INT(ix) - 1].traffic = t;
                sum += t;
            }
        }
        if (sum > 0 && fabs(sum - 1.0) > 1e-6) {
            warn(x, "the traffic shares sum to %.4g, not 1; they were scaled to sum to 1", sum);
            for (int64_t s = 0; s < a->n_slices; s++)
                a->slices[s].traffic /= sum;
        }
        if (sum > 0)
            return;
        warn(x, "the traffic mix gives no share to any slice of the suite; using the item counts");
    }
    for (int64_t s = 0; s < a->n_slices; s++)
        total += a->slices[s].n_items;
    for (int64_t s = 0; s < a->n_slices; s++)
        a->slices[s].traffic = total ? (double)a->slices[s].n_items / (double)total : 0.0;
}

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

/* --- warnings --------------------------------------------------------------------------- */

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
        warn(x,
             "%s '%s' cannot detect a %.3g%% perplexity increase at %s with %lld items "
             "(minimum detectable %.2g%%)",
             what, sl->name, sl->tolerance, a->configs[cand].spec, (long long)e->n, 100 * e->mde);
    else
        warn(x,
             "%s '%s' cannot detect a %.3g-point loss at %s with %lld items "
             "(minimum detectable %.2g points)",
             what, sl->name, sl->tolerance, a->configs[cand].spec, (long long)e->n, 100 * e->mde);
}

static int uses_calibration(const char *spec)
{
    struct qb_qspec q;
    return spec && qb_qspec_parse(spec, &q) == 0 && q.method != QB_METHOD_RTN;
}

/* --- the whole analysis ----------------------------------------------------------------- */

static int analyze(struct an *x, const char *run_name, const struct qb_an_opts *o)
{
    struct qb_analysis *a = x->a;
    int64_t *idx = NULL, *n_in = NULL, *start = NULL, *cfg = NULL;
    struct qb_an_cliff *cl = NULL;
    struct job *jobs = NULL;
    struct find_run f = {run_name, 0, 0, g_string_new(NULL)};
    int rc;

    /* the run */
    if ((rc = qb_store_list_runs(x->s, on_run_listed, &f)) < 0)
        goto out;
    if (f.run_id <= 0) {
        if (run_name)
            rc = qb_err(QB_EINVAL, "'%s': no run named '%s' (runs: %s)", qb_store_path(x->s),
                        run_name, f.names->len ? f.names->str : "none");
        else
            rc = qb_err(QB_EINVAL, "'%s': the store has no runs", qb_store_path(x->s));
        goto out;
    }
    x->run_id = f.run_id;
    x->suite_id = f.suite_id;
    if ((rc = qb_store_get_run(x->s, x->run_id, on_run, x)) < 0)
        goto out;
    read_settings(x, o);

    /* configs, items, results */
    if ((rc = qb_store_list_configs(x->s, x->run_id, on_config, x)) < 0 ||
        (rc = build_configs(x)) < 0)
        goto out;
    if (a->baseline < 0) {
        rc = qb_err(QB_EINVAL, "run '%s' has no config for its baseline '%s'", a->run_name,
                    x->baseline_spec ? x->baseline_spec : "?");
        goto out;
    }
    if ((rc = qb_store_list_items(x->s, x->suite_id, on_item, x)) < 0)
        goto out;
    if (!(x->res = calloc((size_t)(a->n_configs * x->n_items) + 1, sizeof *x->res)) ||
        !(x->xs = malloc(((size_t)x->n_items + 1) * sizeof *x->xs)) ||
        !(x->ys = malloc(((size_t)x->n_items + 1) * sizeof *x->ys))) {
        rc = qb_err(QB_ENOMEM, "out of memory for %lld results",
                    (long long)(a->n_configs * x->n_items));
        goto out;
    }
    if ((rc = qb_store_list_results(x->s, x->run_id, 0, on_result, x)) < 0)
        goto out;
    if (a->configs[a->baseline].n_results == 0) {
        rc = qb_err(QB_EINVAL, "run '%s' has no results for its baseline '%s'", a->run_name,
                    a->configs[a->baseline].spec);
        goto out;
    }
    a->n_missing = a->n_configs * x->n_items - a->n_results;

    /* memory, latency, calibration */
    for (int64_t r = 0; r < x->n_raw; r++) {
        struct qb_an_config *c = &a->configs[x->ladder_of[r]];
        if ((rc = qb_store_list_memory(x->s, x->run_id, x->raw[r].id, on_memory, c)) < 0 ||
            (rc = read_latency(x, x->run_id, x->raw[r].id, c)) < 0)
            goto out;
    }
    {
        /* the table's rows describe what was used; they win over the settings' copy */
        char *sha = a->calib_sha256;
        int64_t ns = a->calib_sequences, sl = a->calib_seq_len;
        a->calib_sha256 = NULL;
        if ((rc = qb_store_list_calibration(x->s, x->run_id, on_calib, x)) < 0) {
            g_free(sha);
            goto out;
        }
        if (a->calib_sha256)
            g_free(sha);
        else {
            a->calib_sha256 = sha;
            a->calib_sequences = ns;
            a->calib_seq_len = sl;
        }
    }
    config_costs(x);

    /* slices: items grouped by slice in suite order */
    a->n_slices = x->slice_names->len;
    if (!(a->slices = calloc((size_t)a->n_slices + 1, sizeof *a->slices)) ||
        !(idx = malloc((2 * (size_t)x->n_items + 1) * sizeof *idx)) ||
        !(jobs = calloc((size_t)a->n_slices + 1, sizeof *jobs)) ||
        !(n_in = calloc((size_t)a->n_slices + 1, sizeof *n_in)) ||
        !(start = calloc((size_t)a->n_slices + 1, sizeof *start)) ||
        !(cfg = calloc((size_t)a->n_slices + 1, sizeof *cfg))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < x->n_items; i++)
        n_in[x->items[i].slice]++;
    for (int64_t s = 1; s < a->n_slices; s++)
        start[s] = start[s - 1] + n_in[s - 1];
    {
        int64_t *fill = cfg; /* zeroed; reused below for the plans */
        for (int64_t i = 0; i < x->n_items; i++) {
            int64_t s = x->items[i].slice;
            idx[start[s] + fill[s]++] = i;
        }
        memset(fill, 0, ((size_t)a->n_slices + 1) * sizeof *fill);
    }
    double min_tol = INFINITY;
    int any_slice_tol = 0;
    for (int64_t s = 0; s < a->n_slices; s++) {
        struct qb_an_slice *sl = &a->slices[s];
        int64_t n_ppl = 0;
        sl->name = g_strdup(g_ptr_array_index(x->slice_names, s));
        sl->n_items = n_in[s];
        for (int64_t k = 0; k < n_in[s]; k++)
            n_ppl += x->items[idx[start[s] + k]].is_ppl;
        sl->is_perplexity = n_ppl == n_in[s] && n_in[s] > 0;
        sl->tolerance = slice_tolerance(x, sl->name);
        sl->cliff = -1;
        if (x->tol_slices && json_object_get(x->tol_slices, sl->name)) {
            any_slice_tol = 1;
            if (sl->tolerance < min_tol)
                min_tol = sl->tolerance;
        }
        if (n_ppl && !sl->is_perplexity)
            warn(x,
                 "slice '%s' mixes perplexity and accuracy items; its %lld perplexity items "
                 "are left out of its accuracy",
                 sl->name, (long long)n_ppl);
        if (n_in[s] < QB_AN_MIN_ITEMS)
            warn(x, "slice '%s' has %lld items: too few to decide", sl->name, (long long)n_in[s]);
        if (!(sl->cells = calloc((size_t)a->n_configs, sizeof *sl->cells))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto out;
        }
        jobs[s] = (struct job){sl, idx + start[s], n_in[s]};
    }
    read_traffic(x);

    /* overall: every accuracy item (perplexity items never enter it) */
    {
        struct qb_an_slice *ov = &a->overall;
        int64_t k = 0, *ov_idx = idx + x->n_items;
        for (int64_t i = 0; i < x->n_items; i++)
            if (!x->items[i].is_ppl)
                ov_idx[k++] = i;
        ov->name = g_strdup("overall");
        ov->n_items = k;
        ov->traffic = 1.0;
        ov->cliff = -1;
        ov->tolerance = !isnan(x->def_tol) ? x->def_tol
                        : any_slice_tol    ? min_tol
                                           : QB_AN_DEFAULT_TOLERANCE;
        if (!(ov->cells = calloc((size_t)a->n_configs, sizeof *ov->cells))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto out;
        }
        jobs[a->n_slices] = (struct job){ov, ov_idx, k};
    }
    if ((rc = compute_all(x, jobs, a->n_slices + 1)) < 0)
        goto out;
    for (int64_t s = 0; s < a->n_slices; s++)
        judge(x, &a->slices[s]);
    judge(x, &a->overall);
    decide(x, &a->overall, &a->overall_cliff);

    /* recommendations and cliffs (listed down the ladder, then in slice order) */
    if (!(a->cliffs = calloc((size_t)a->n_slices + 1, sizeof *a->cliffs)) ||
        !(cl = calloc((size_t)a->n_slices + 1, sizeof *cl))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
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

    /* deployment plans; a slice the baseline fails constrains neither */
    int64_t n_judged = 0, cheapest_used = -1;
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
    if ((rc = make_plan(x, &a->single, cfg)) < 0)
        goto out;
    for (int64_t s = 0; s < a->n_slices; s++)
        cfg[s] = a->slices[s].verdict != QB_VERDICT_FAILS ? a->slices[s].rec : -1;
    if ((rc = share_equal_memory(x, cfg)) < 0)
        goto out;
    for (int64_t k = 0; k < a->n_configs && cheapest_used < 0; k++)
        for (int64_t s = 0; s < a->n_slices; s++)
            if (cfg[s] == x->cost_order[k])
                cheapest_used = x->cost_order[k];
    for (int64_t s = 0; s < a->n_slices; s++)
        if (cfg[s] < 0)
            cfg[s] = cheapest_used >= 0 ? cheapest_used : a->baseline;
    if ((rc = make_plan(x, &a->routed, cfg)) < 0)
        goto out;

    /* warnings about the data */
    if (a->n_missing > 0)
        warn(x,
             "%lld of %lld (config, item) results are missing; each cell uses the items "
             "measured under both the baseline and the config",
             (long long)a->n_missing, (long long)(a->n_configs * x->n_items));
    if (a->n_failed > 0)
        warn(x, "%lld results were skipped or failed and are left out", (long long)a->n_failed);
    for (int64_t c = 0; c < a->n_configs; c++)
        if (a->configs[c].n_results == 0)
            warn(x, "config '%s' has no results", a->configs[c].spec);
    for (int64_t s = 0; s < a->n_slices; s++) {
        const struct qb_an_cell *b = &a->slices[s].cells[a->baseline];
        underpowered_warning(x, &a->slices[s], "slice");
        /* a slice the baseline already fails cannot show a loss: it is not judged */
        if (a->slices[s].verdict == QB_VERDICT_FAILS)
            warn(x, "slice '%s': %s scores %.1f%% (n=%lld), so no config can show a loss there; "
                    "it is not judged and does not constrain the deployment",
                 a->slices[s].name, a->configs[a->baseline].spec, 100 * b->acc, (long long)b->n);
    }
    if (!a->calib_sha256 && !a->calib_file)
        for (int64_t c = 0; c < a->n_configs; c++)
            if (uses_calibration(a->configs[c].spec)) {
                warn(x,
                     "config '%s' uses a calibrated method but the run records no "
                     "calibration data",
                     a->configs[c].spec);
                break;
            }

out:
    g_string_free(f.names, TRUE);
    free(idx);
    free(n_in);
    free(start);
    free(cfg);
    free(cl);
    free(jobs);
    return rc;
}

int qb_analyze(struct qb_store *s, const char *run_name, const struct qb_an_opts *opts,
               struct qb_analysis **out)
{
    struct qb_an_opts o = QB_AN_OPTS_INIT;
    struct an x = {0};
    int rc;

    if (!s || !out)
        return qb_err(QB_EINVAL, "qb_analyze: no store or no output");
    *out = NULL;
    if (opts)
        o = *opts;
    if (o.confidence != 0 && !(o.confidence > 0 && o.confidence < 1))
        return qb_err(QB_EINVAL, "confidence %g is not between 0 and 1", o.confidence);
    if (o.policy != -1 && o.policy != QB_AN_INTERVAL && o.policy != QB_AN_POINT)
        return qb_err(QB_EINVAL, "unknown policy %d (interval, point)", o.policy);
    if (o.resamples < 0)
        return qb_err(QB_EINVAL, "resamples %lld is negative", (long long)o.resamples);
    if (!(x.a = calloc(1, sizeof *x.a)))
        return qb_err(QB_ENOMEM, "out of memory");
    x.s = s;
    x.a->overall_cliff.below = -1;
    x.a->calib_overlap_items = -1;
    x.slice_ix = g_hash_table_new(g_str_hash, g_str_equal);
    x.slice_names = g_ptr_array_new_with_free_func(g_free);
    x.warnings = g_ptr_array_new();
    x.lat = g_array_new(FALSE, FALSE, sizeof(struct qb_store_latency));

    rc = analyze(&x, run_name, &o);
    if (rc == 0) {
        x.a->n_warnings = x.warnings->len;
        if (!(x.a->warnings = calloc((size_t)x.warnings->len + 1, sizeof *x.a->warnings)))
            rc = qb_err(QB_ENOMEM, "out of memory");
        else
            for (guint i = 0; i < x.warnings->len; i++)
                x.a->warnings[i] = g_ptr_array_index(x.warnings, i);
    }
    if (rc < 0) {
        for (guint i = 0; i < x.warnings->len; i++)
            g_free(g_ptr_array_index(x.warnings, i));
        x.a->n_warnings = 0;
        qb_analysis_free(x.a);
        x.a = NULL;
    }
    g_ptr_array_free(x.warnings, TRUE);
    g_hash_table_destroy(x.slice_ix);
    g_ptr_array_free(x.slice_names, TRUE);
    g_array_free(x.lat, TRUE);
    for (int64_t i = 0; i < x.n_raw; i++)
        g_free(x.raw[i].spec);
    free(x.raw);
    free(x.ladder_of);
    free(x.items);
    free(x.res);
    free(x.cost_order);
    free(x.xs);
    free(x.ys);
    g_free(x.baseline_spec);
    json_decref(x.settings);
    *out = x.a;
    return rc;
}
