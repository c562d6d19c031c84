/* candidates: several runs as one run of a new store (analysis/candidates.h). */
#include "analysis/candidates.h"

#include "analysis/analyze.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static char *model_base(const char *path)
{
    char *b = g_path_get_basename(path ? path : "model");
    char *dot = strrchr(b, '.');
    if (dot && dot != b && (g_str_has_suffix(b, ".gguf") || g_str_has_suffix(b, ".bin")))
        *dot = 0;
    return b;
}

char *qb_candidates_label(const struct qb_analysis *const *runs, int64_t n, int64_t i)
{
    char *b = model_base(runs[i]->model_path);
    int64_t same = 0, before = 0;
    for (int64_t j = 0; j < n; j++) {
        char *o = model_base(runs[j]->model_path);
        if (!strcmp(o, b)) {
            same++;
            before += j < i;
        }
        g_free(o);
    }
    if (same > 1 && before > 0) {
        char *r = g_strdup_printf("%s-%lld", b, (long long)before + 1);
        g_free(b);
        return r;
    }
    return b;
}

/* "key\x1fhash" of item i of a */
static char *item_id(const struct qb_analysis *a, int64_t i)
{
    return g_strdup_printf("%s\x1f%s", a->items[i].key,
                           a->items[i].prompt_sha256 ? a->items[i].prompt_sha256 : "");
}

struct writer {
    const struct qb_analysis *const *runs;
    int64_t n;
    struct qb_store *s;
    int64_t run_id, suite_id;
    int64_t *item_ids;  /* per reference item: its id in the new store, 0 when left out */
    GHashTable **index; /* per run: item id string -> item index + 1 */
};

static int put_run(struct writer *w, const char *command_line)
{
    const struct qb_analysis *r = w->runs[0];
    GString *models = g_string_new(NULL);
    char *base = NULL;
    int rc;
    for (int64_t i = 0; i < w->n; i++) {
        char *l = qb_candidates_label(w->runs, w->n, i);
        g_string_append_printf(models, "%s%s", i ? " + " : "", l);
        g_free(l);
    }
    char *l0 = qb_candidates_label(w->runs, w->n, 0);
    base = g_strdup_printf("%s:%s", l0, r->configs[r->baseline].spec);
    g_free(l0);
    struct qb_store_run run = {.name = QB_CANDIDATES_RUN,
                               .qbrief_version = r->qbrief_version,
                               .git_commit = r->git_commit,
                               .command_line = command_line,
                               .host = r->host,
                               .machine_json = r->machine_json,
                               .baseline_config = base,
                               .settings_json = r->settings_json,
                               .device = r->device};
    struct qb_store_model m = {models->str, r->model_sha256, r->architecture, r->model_format,
                               r->n_params};
    struct qb_store_suite su = {r->suite_path, r->suite_sha256, r->n_suite_items};
    rc = qb_store_run_open(w->s, &run, &m, &su, &w->run_id, &w->suite_id);
    g_free(base);
    g_string_free(models, TRUE);
    return rc;
}

/* the reference's accuracy items; perplexity slices are left out */
static int put_items(struct writer *w)
{
    const struct qb_analysis *r = w->runs[0];
    int rc = 0;
    for (int64_t i = 0; rc >= 0 && i < r->n_items; i++) {
        const struct qb_an_item *it = &r->items[i];
        if (r->slices[it->slice].is_perplexity)
            continue;
        struct qb_store_item si = {
            it->key, r->slices[it->slice].name, "choice", "accuracy", it->prompt_sha256, NULL, -1};
        rc = qb_store_put_item(w->s, w->suite_id, &si, &w->item_ids[i]);
    }
    return rc;
}

static int put_measures(struct writer *w, const struct qb_analysis *a, int64_t c, int64_t cfg_id)
{
    const struct qb_an_config *cf = &a->configs[c];
    int rc = 0;
    if (cf->weight_bytes >= 0 || cf->peak_rss_bytes >= 0) {
        struct qb_store_memory m = {cf->mem_context > 0 ? cf->mem_context : 0,
                                    cf->weight_bytes,
                                    cf->kv_cache_bytes,
                                    cf->peak_rss_bytes,
                                    a->host,
                                    a->device};
        if ((rc = qb_store_put_memory(w->s, w->run_id, cfg_id, &m)) < 0)
            return rc;
    }
    for (int64_t k = 0; rc >= 0 && k < cf->n_lat; k++) {
        const struct qb_an_latency *l = &cf->lat[k];
        struct qb_store_latency row = {l->prompt_len, l->gen_len,  l->batch,   0,
                                       l->ttft_p50,   l->tpot_p50, l->e2e_p50, l->decode_tok_s_p50,
                                       a->host,       a->device};
        rc = qb_store_put_latency(w->s, w->run_id, cfg_id, &row);
    }
    return rc;
}

/* config c of run k: the config row, its measures, and one result per reference item */
static int put_candidate(struct writer *w, int64_t k, int64_t c)
{
    const struct qb_analysis *a = w->runs[k], *r = w->runs[0];
    const struct qb_an_config *cf = &a->configs[c];
    char *label = qb_candidates_label(w->runs, w->n, k);
    char *spec = g_strdup_printf("%s:%s", label, cf->spec);
    struct qb_store_config sc = {spec, cf->bits_per_weight, cf->weight_bytes, cf->quant_seconds};
    int64_t cfg_id;
    int rc;
    g_free(label);
    if ((rc = qb_store_put_config(w->s, w->run_id, &sc, &cfg_id)) < 0 ||
        (rc = put_measures(w, a, c, cfg_id)) < 0)
        goto out;
    for (int64_t i = 0; rc >= 0 && i < r->n_items; i++) {
        if (!w->item_ids[i])
            continue;
        char *id = item_id(r, i);
        int64_t j = GPOINTER_TO_INT(g_hash_table_lookup(w->index[k], id)) - 1;
        g_free(id);
        if (j < 0 || a->correct[c * a->n_items + j] < 0)
            continue;
        int64_t at = c * a->n_items + j;
        struct qb_store_result res = {.config_id = cfg_id,
                                      .item_id = w->item_ids[i],
                                      .correct = a->correct[at],
                                      .score = NAN,
                                      .nll = NAN,
                                      .n_tokens = -1,
                                      .mean_kl = c == a->baseline ? NAN : a->kl[at],
                                      .top1_agreement = a->top1[at],
                                      .flipped = -1};
        rc = qb_store_put_result(w->s, w->run_id, &res);
    }
out:
    g_free(spec);
    return rc;
}

static int check_runs(const struct qb_analysis *const *runs, int64_t n)
{
    if (n < 2)
        return qb_err(QB_EINVAL, "a candidates brief needs at least two runs, got %lld",
                      (long long)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            if (runs[i] == runs[j] ||
                (runs[i]->run_name && runs[j]->run_name &&
                 !strcmp(runs[i]->run_name, runs[j]->run_name) && runs[i]->model_sha256 &&
                 runs[j]->model_sha256 && !strcmp(runs[i]->model_sha256, runs[j]->model_sha256)))
                return qb_err(QB_EINVAL, "run '%s' is listed twice",
                              runs[i]->run_name ? runs[i]->run_name : "?");
    return 0;
}

int qb_candidates_write(const struct qb_analysis *const *runs, int64_t n, const char *path,
                        const char *command_line)
{
    struct writer w = {runs, n, NULL, 0, 0, NULL, NULL};
    int rc;

    if ((rc = check_runs(runs, n)) < 0)
        return rc;
    w.item_ids = g_new0(int64_t, (gsize)runs[0]->n_items + 1);
    w.index = g_new0(GHashTable *, (gsize)n);
    for (int64_t k = 0; k < n; k++) {
        w.index[k] = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (int64_t i = 0; i < runs[k]->n_items; i++)
            g_hash_table_insert(w.index[k], item_id(runs[k], i), GINT_TO_POINTER((gint)(i + 1)));
    }
    if ((rc = qb_store_open(path, 0, &w.s)) < 0 || (rc = put_run(&w, command_line)) < 0 ||
        (rc = qb_store_begin(w.s)) < 0)
        goto out;
    if ((rc = put_items(&w)) >= 0)
        for (int64_t k = 0; rc >= 0 && k < n; k++)
            for (int64_t c = 0; rc >= 0 && c < runs[k]->n_configs; c++)
                rc = put_candidate(&w, k, c);
    if (rc >= 0)
        rc = qb_store_commit(w.s);
    else
        qb_store_rollback(w.s);
    if (rc >= 0)
        rc = qb_store_run_finish(w.s, w.run_id);
out:
    qb_store_close(w.s);
    for (int64_t k = 0; k < n; k++)
        if (w.index[k])
            g_hash_table_destroy(w.index[k]);
    g_free(w.index);
    g_free(w.item_ids);
    return rc;
}
