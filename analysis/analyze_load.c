/* analyze_load: the analysis's reading of one run from the results store -- the run row, its
 * settings (through collector/store/settings.h, the one reader of runs.settings_json), its
 * items, every result at once into the dense config x item matrix, and the calibration rows.
 * Configs, memory and latency rows are read by analyze_configs.c. */
#include "analysis/analyze_int.h"

#include "collector/store/store.h"
#include "collector/store/store_import.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *dup0(const char *s)
{
    return s ? g_strdup(s) : NULL;
}

/* --- the run ------------------------------------------------------------------------------ */

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
    a->device = dup0(r->device);
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

int an_load_run(struct an *x, const char *run_name)
{
    struct find_run f = {run_name, 0, 0, g_string_new(NULL)};
    int rc;

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
    rc = qb_store_get_run(x->s, x->run_id, on_run, x);
out:
    g_string_free(f.names, TRUE);
    return rc;
}

/* --- settings ----------------------------------------------------------------------------- */

static void on_settings_warning(void *ctx, const char *msg)
{
    an_warn(ctx, "%s", msg);
}

/* The run's settings, then the options over them. Settings that cannot be used are warned
 * about (by the reader) and replaced by their defaults. */
int an_read_settings(struct an *x, const struct qb_an_opts *o)
{
    struct qb_analysis *a = x->a;
    const struct qb_settings *st = &x->set;
    int rc;

    if ((rc = qb_settings_read(a->settings_json, &x->set, on_settings_warning, x)) < 0)
        return rc;
    a->title = dup0(st->title);
    a->question = dup0(st->question);
    a->template_name = dup0(st->template_name);
    x->rules = o->rules ? o->rules : st;
    a->confidence = x->rules->policy.confidence;
    a->policy = x->rules->policy.bound == QB_BOUND_POINT ? QB_AN_POINT : QB_AN_INTERVAL;
    x->def_tol = x->rules->tolerances.has_default ? x->rules->tolerances.default_points : NAN;
    a->calib_file = dup0(st->calibration.file);
    a->calib_sha256 = dup0(st->calibration.sha256);
    a->calib_sequences = st->calibration.sequences;
    a->calib_seq_len = st->calibration.seq_len;
    /* no warning about an overlap: the brief states it as a caveat, and the JSON carries the
     * counts */
    a->calib_overlap_items = st->calibration.overlap_items;
    a->calib_overlap_ngram = st->calibration.overlap_ngram;

    if (o->confidence > 0)
        a->confidence = o->confidence;
    if (o->policy >= 0)
        a->policy = (enum qb_an_policy)o->policy;
    if (o->default_tolerance >= 0)
        x->def_tol = o->default_tolerance;
    a->resamples = o->resamples > 0 ? o->resamples : QB_AN_RESAMPLES;
    a->seed = o->seed ? o->seed : QB_AN_SEED;
    return 0;
}

/* --- items and results -------------------------------------------------------------------- */

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

static int item_cmp(const void *pa, const void *pb)
{
    const struct item *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

/* The suite's items (and the run's imported ones, store_import.h) and every result of the run;
 * QB_EINVAL when the baseline has none. */
int an_load_results(struct an *x)
{
    struct qb_analysis *a = x->a;
    int64_t import_suite = 0;
    int rc;

    if ((rc = qb_store_list_items(x->s, x->suite_id, on_item, x)) < 0 ||
        (rc = qb_store_import_suite(x->s, x->run_id, &import_suite)) < 0 ||
        (import_suite && (rc = qb_store_list_items(x->s, import_suite, on_item, x)) < 0))
        return rc;
    qsort(x->items, (size_t)x->n_items, sizeof *x->items, item_cmp); /* find_item bisects */
    if (!(x->res = calloc((size_t)(a->n_configs * x->n_items) + 1, sizeof *x->res)) ||
        !(x->xs = malloc(((size_t)x->n_items + 1) * sizeof *x->xs)) ||
        !(x->ys = malloc(((size_t)x->n_items + 1) * sizeof *x->ys)))
        return qb_err(QB_ENOMEM, "out of memory for %lld results",
                      (long long)(a->n_configs * x->n_items));
    if ((rc = qb_store_list_results(x->s, x->run_id, 0, on_result, x)) < 0)
        return rc;
    if (a->configs[a->baseline].n_results == 0)
        return qb_err(QB_EINVAL, "run '%s' has no results for its baseline '%s'", a->run_name,
                      a->configs[a->baseline].spec);
    a->n_missing = a->n_configs * x->n_items - a->n_results;
    return 0;
}

/* --- calibration -------------------------------------------------------------------------- */

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

/* The calibration table's rows describe what was used; they win over the settings' copy. */
int an_load_calibration(struct an *x)
{
    struct qb_analysis *a = x->a;
    char *sha = a->calib_sha256;
    int64_t ns = a->calib_sequences, sl = a->calib_seq_len;
    int rc;

    a->calib_sha256 = NULL;
    if ((rc = qb_store_list_calibration(x->s, x->run_id, on_calib, x)) < 0) {
        g_free(sha);
        return rc;
    }
    if (a->calib_sha256) {
        g_free(sha);
    } else {
        a->calib_sha256 = sha;
        a->calib_sequences = ns;
        a->calib_seq_len = sl;
    }
    return 0;
}
