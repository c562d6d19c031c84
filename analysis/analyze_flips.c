/* analyze_flips: what the flips of a slice say beyond its accuracy -- whether its precision
 * ladder rises again beyond its intervals (unstable), and, for the config a rule on accuracy
 * alone would have recommended but that changes behaviour, two items whose answers it
 * changed, quoted from the store (prompt, the baseline's answer, the config's answer).
 * Definitions in analyze.h. */
#include "analysis/analyze_int.h"

#include "collector/model/qspec.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-12

/* The quantization method of a config (RTN, GPTQ, AWQ, SmoothQuant), and in a candidates run
 * ("MODEL:SPEC", analysis/candidates.h) its model too: a ladder is read within one method of
 * one model -- GPTQ at 3 bits beating RTN at 4 is the method, a second model beating the first
 * is the model, neither an unstable slice. -1 when the spec does not parse. */
static int method_of(const char *spec, GHashTable *models)
{
    struct qb_qspec q;
    const char *colon = strrchr(spec, ':');
    char *model = g_strndup(spec, colon ? (gsize)(colon - spec) : 0);
    if (!g_hash_table_contains(models, model))
        g_hash_table_insert(models, g_strdup(model),
                            GINT_TO_POINTER(g_hash_table_size(models) + 1));
    int m = GPOINTER_TO_INT(g_hash_table_lookup(models, model));
    g_free(model);
    return qb_qspec_parse(colon ? colon + 1 : spec, &q) < 0 ? -1 : (int)q.method + 8 * m;
}

/* unstable_above / unstable_below of one row: of the pairs of one method where the lower has
 * strictly fewer bits per weight, the one with the widest gap between the lower one's interval
 * and the upper one's */
static void unstable(const struct qb_analysis *a, struct qb_an_slice *sl, const int *method)
{
    double best = 0;
    sl->unstable_above = sl->unstable_below = -1;
    if (a->n_configs < 3 || !sl->cells)
        return;
    for (int64_t i = 0; i < a->n_configs; i++) {
        const struct qb_an_cell *u = &sl->cells[i];
        if (i == a->baseline || u->n < QB_AN_MIN_ITEMS || isnan(u->delta_ci.hi))
            continue;
        for (int64_t j = i + 1; j < a->n_configs; j++) {
            const struct qb_an_cell *d = &sl->cells[j];
            if (j == a->baseline || d->n < QB_AN_MIN_ITEMS || isnan(d->delta_ci.lo) ||
                method[i] != method[j] ||
                !(a->configs[j].bits_per_weight < a->configs[i].bits_per_weight))
                continue;
            double gap = d->delta_ci.lo - u->delta_ci.hi;
            if (gap > best + EPS) {
                best = gap;
                sl->unstable_above = i;
                sl->unstable_below = j;
            }
        }
    }
}

int an_unstable(struct an *x)
{
    int *method = calloc((size_t)x->a->n_configs + 1, sizeof *method);
    if (!method)
        return qb_err(QB_ENOMEM, "out of memory");
    GHashTable *models = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (int64_t c = 0; c < x->a->n_configs; c++)
        method[c] = method_of(x->a->configs[c].spec, models);
    g_hash_table_destroy(models);
    for (int64_t s = 0; s < x->a->n_slices; s++)
        unstable(x->a, &x->a->slices[s], method);
    unstable(x->a, &x->a->overall, method);
    free(method);
    return 0;
}

/* --- example items ------------------------------------------------------------------------ */

/* the items to quote, by store item id, and where their text goes */
struct want {
    int64_t item_id, base_cfg_id, cfg_id;
    struct qb_an_example *ex;
};

struct fetch {
    struct want *w;
    int64_t n;
    int oom;
};

static char *dup_or_null(const char *s, int *oom)
{
    char *d;
    if (!s)
        return NULL;
    if (!(d = g_strdup(s)))
        *oom = 1;
    return d;
}

static int on_item(void *ctx, int64_t id, const struct qb_store_item *it)
{
    struct fetch *f = ctx;
    for (int64_t k = 0; k < f->n; k++)
        if (f->w[k].item_id == id) {
            f->w[k].ex->key = dup_or_null(it->key, &f->oom);
            f->w[k].ex->prompt = dup_or_null(it->prompt, &f->oom);
        }
    return 0;
}

static int on_result(void *ctx, const struct qb_store_result *r)
{
    struct fetch *f = ctx;
    for (int64_t k = 0; k < f->n; k++) {
        struct want *w = &f->w[k];
        if (w->item_id != r->item_id)
            continue;
        if (r->config_id == w->base_cfg_id && !w->ex->baseline_output)
            w->ex->baseline_output = dup_or_null(r->output, &f->oom);
        else if (r->config_id == w->cfg_id && !w->ex->config_output)
            w->ex->config_output = dup_or_null(r->output, &f->oom);
    }
    return 0;
}

static int64_t store_config_id(const struct an *x, int64_t ladder)
{
    for (int64_t i = 0; i < x->n_raw; i++)
        if (x->ladder_of[i] == ladder)
            return x->raw[i].id;
    return -1;
}

/* The first item of the slice, in suite order, that config c lost (lost = 1) or gained. */
static int64_t first_flip(const struct an *x, int64_t s, int64_t c, int lost)
{
    const struct res *B = &x->res[x->a->baseline * x->n_items], *C = &x->res[c * x->n_items];
    for (int64_t i = 0; i < x->n_items; i++) {
        if (x->items[i].slice != s || !B[i].have || !C[i].have || B[i].correct < 0 ||
            C[i].correct < 0)
            continue;
        if (lost ? B[i].correct && !C[i].correct : !B[i].correct && C[i].correct)
            return i;
    }
    return -1;
}

/* Up to two examples per slice with a passed-over config: one item lost and one gained when
 * both exist, else the first two of the kind there is. */
static int pick(struct an *x, GArray *wants)
{
    struct qb_analysis *a = x->a;
    int64_t base_id = store_config_id(x, a->baseline);
    for (int64_t s = 0; s < a->n_slices; s++) {
        struct qb_an_slice *sl = &a->slices[s];
        int64_t c = sl->behaviour, it[2], n = 0;
        int kind[2];
        if (c < 0 || sl->is_perplexity)
            continue;
        for (int lost = 1; lost >= 0; lost--) {
            int64_t i = first_flip(x, s, c, lost);
            if (i >= 0) {
                it[n] = i;
                kind[n++] = lost;
            }
        }
        if (!(sl->examples = calloc(2, sizeof *sl->examples)))
            return qb_err(QB_ENOMEM, "out of memory");
        sl->n_examples = n;
        for (int64_t k = 0; k < n; k++) {
            struct want w = {x->items[it[k]].id, base_id, store_config_id(x, c), &sl->examples[k]};
            sl->examples[k].lost = kind[k];
            g_array_append_val(wants, w);
        }
    }
    return 0;
}

int an_flip_examples(struct an *x)
{
    GArray *wants = g_array_new(FALSE, TRUE, sizeof(struct want));
    struct fetch f = {0};
    int rc;

    if ((rc = pick(x, wants)) < 0 || wants->len == 0)
        goto out;
    f.w = (struct want *)(void *)wants->data;
    f.n = wants->len;
    if ((rc = qb_store_list_items(x->s, x->suite_id, on_item, &f)) < 0 ||
        (rc = qb_store_list_results(x->s, x->run_id, f.w[0].base_cfg_id, on_result, &f)) < 0)
        goto out;
    /* each passed-over config's results, once per distinct config */
    for (int64_t k = 0; k < f.n; k++) {
        int seen = 0;
        for (int64_t j = 0; j < k; j++)
            seen |= f.w[j].cfg_id == f.w[k].cfg_id;
        if (!seen &&
            (rc = qb_store_list_results(x->s, x->run_id, f.w[k].cfg_id, on_result, &f)) < 0)
            goto out;
    }
    if (f.oom)
        rc = qb_err(QB_ENOMEM, "out of memory quoting example items");
out:
    g_array_free(wants, TRUE);
    return rc;
}

/* --- items, for comparing runs ------------------------------------------------------------ */

static int on_export_item(void *ctx, int64_t id, const struct qb_store_item *it)
{
    struct an *x = ctx;
    int64_t lo = 0, hi = x->n_items - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (x->items[mid].id == id) {
            struct qb_an_item *e = &x->a->items[mid];
            e->key = g_strdup(it->key ? it->key : "");
            e->prompt_sha256 = it->prompt_sha256 ? g_strdup(it->prompt_sha256) : NULL;
            e->slice = x->items[mid].slice;
            return 0;
        }
        if (x->items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

int an_export_items(struct an *x)
{
    struct qb_analysis *a = x->a;
    size_t n = (size_t)(a->n_configs * x->n_items);
    if (!(a->items = calloc((size_t)x->n_items + 1, sizeof *a->items)) ||
        !(a->correct = malloc(n + 1)) || !(a->kl = malloc((n + 1) * sizeof *a->kl)) ||
        !(a->top1 = malloc((n + 1) * sizeof *a->top1)))
        return qb_err(QB_ENOMEM, "out of memory");
    a->n_items = x->n_items;
    for (size_t k = 0; k < n; k++) {
        a->correct[k] = x->res[k].have ? x->res[k].correct : -1;
        a->kl[k] = x->res[k].have ? x->res[k].kl : NAN;
        a->top1[k] = x->res[k].have ? x->res[k].top1 : NAN;
    }
    return qb_store_list_items(x->s, x->suite_id, on_export_item, x);
}
