/* compare: the brief of one run against another (`qbrief brief --against`). Both runs are
 * analysed and compared (analysis/compare.h); the brief is the template "compare" (or the one
 * named) over the newer run's analysis, with the comparison's tables, list and variables added
 * here. Every sentence comes from the template's patterns: compare_same, compare_changed,
 * compare_change. */
#include "analysis/analyze.h"
#include "analysis/compare.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"
#include "output/brief_int.h"

#include <errno.h>
#include <glib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void add(GPtrArray *v, char *s)
{
    g_ptr_array_add(v, s ? s : g_strdup(NA));
}

static char *acc_text(double acc)
{
    return isfinite(acc) ? brief_pts(acc) : NULL;
}

int brief_table_compare(struct brief_ctx *c, GPtrArray *cells)
{
    const struct qb_compare *k = c->cmp;
    for (int64_t i = 0; k && i < k->n_cells; i++) {
        const struct qb_cmp_cell *e = &k->cells[i];
        char *d = brief_spts(e->delta), *lo = brief_spts(e->delta_ci.lo),
             *hi = brief_spts(e->delta_ci.hi);
        add(cells, g_strdup(c->a->slices[e->slice].name));
        add(cells, g_strdup(c->a->configs[e->config].spec));
        add(cells, acc_text(e->acc_before));
        add(cells, acc_text(e->acc_now));
        add(cells, isfinite(e->delta) ? brief_fmt("%s (%s to %s)", d, lo, hi) : NULL);
        add(cells, e->paired ? brief_fmt("−%lld / +%lld", (long long)e->lost, (long long)e->gained)
                             : NULL);
        add(cells, e->paired
                       ? brief_i64(e->n_now)
                       : brief_fmt("%lld / %lld", (long long)e->n_before, (long long)e->n_now));
        g_free(d), g_free(lo), g_free(hi);
    }
    return 0;
}

static int verdict_text(struct brief_ctx *c, enum qb_an_verdict v, char **out)
{
    char name[48];
    snprintf(name, sizeof name, "verdict_%s", qb_an_verdict_name(v));
    return brief_pattern(c, name, NULL, out);
}

int brief_table_compare_recs(struct brief_ctx *c, GPtrArray *cells)
{
    const struct qb_compare *k = c->cmp;
    int rc = 0;
    for (int64_t s = 0; k && rc >= 0 && s < c->a->n_slices; s++) {
        const struct qb_an_slice *now = &c->a->slices[s];
        int64_t sb = k->slice_before[s];
        const struct qb_an_slice *bef = sb >= 0 ? &k->before->slices[sb] : NULL;
        char *vb = NULL, *vn = NULL;
        if ((bef && (rc = verdict_text(c, bef->verdict, &vb)) < 0) ||
            (rc = verdict_text(c, now->verdict, &vn)) < 0) {
            g_free(vb);
            break;
        }
        add(cells, g_strdup(now->name));
        add(cells, bef ? g_strdup(k->before->configs[bef->rec].spec) : NULL);
        add(cells, g_strdup(c->a->configs[now->rec].spec));
        add(cells, vb);
        add(cells, vn);
    }
    return rc;
}

static int64_t find_config(const struct qb_analysis *a, const char *spec)
{
    for (int64_t i = 0; i < a->n_configs; i++)
        if (!strcmp(a->configs[i].spec, spec))
            return i;
    return -1;
}

static char *mem_text(const struct qb_an_config *cf, int weights)
{
    int64_t b = !cf ? -1 : weights ? cf->weight_bytes : cf->peak_rss_bytes;
    return b >= 0 ? brief_bytes((double)b) : NULL;
}

static char *tpot_text(const struct qb_an_config *cf)
{
    return cf && cf->n_lat > 0 && isfinite(cf->lat[0].tpot_p50) ? brief_ms(cf->lat[0].tpot_p50)
                                                                : NULL;
}

/* every config of either run: this run's in ladder order, then those only the other has */
int brief_table_compare_cost(struct brief_ctx *c, GPtrArray *cells)
{
    const struct qb_compare *k = c->cmp;
    if (!k)
        return 0;
    const struct qb_analysis *b = k->before;
    for (int64_t i = 0; i < c->a->n_configs + b->n_configs; i++) {
        const struct qb_an_config *cn = NULL, *cb = NULL;
        if (i < c->a->n_configs) {
            cn = &c->a->configs[i];
            int64_t j = find_config(b, cn->spec);
            cb = j >= 0 ? &b->configs[j] : NULL;
        } else {
            cb = &b->configs[i - c->a->n_configs];
            if (find_config(c->a, cb->spec) >= 0)
                continue;
        }
        add(cells, g_strdup(cn ? cn->spec : cb->spec));
        add(cells, mem_text(cb, 1));
        add(cells, mem_text(cn, 1));
        add(cells, mem_text(cb, 0));
        add(cells, mem_text(cn, 0));
        add(cells, tpot_text(cb));
        add(cells, tpot_text(cn));
    }
    return 0;
}

int brief_list_compare_warnings(struct brief_ctx *c, GPtrArray *v)
{
    for (int64_t i = 0; c->cmp && i < c->cmp->n_warnings; i++)
        g_ptr_array_add(v, g_strdup(c->cmp->warnings[i]));
    return 0;
}

/* The configs each run deploys (the brief's chosen plan), per matched slice: 1 when any
 * slice is served by another config now; *deployed: this run's configs, ", "-joined. */
static int deploy_changed(struct brief_ctx *c, char **deployed)
{
    const struct qb_compare *k = c->cmp;
    const struct qb_an_plan *pn = brief_chosen_plan(c->a), *pb = brief_chosen_plan(k->before);
    GString *g = g_string_new(NULL);
    int changed = 0;
    for (int64_t s = 0; s < c->a->n_slices; s++) {
        int64_t sb = k->slice_before[s];
        int64_t cn = pn->config ? pn->config[s] : -1,
                cb = sb >= 0 && pb->config ? pb->config[sb] : -1;
        if (sb >= 0 && (cn < 0) != (cb < 0))
            changed = 1;
        else if (sb >= 0 && cn >= 0 && strcmp(c->a->configs[cn].spec, k->before->configs[cb].spec))
            changed = 1;
    }
    for (int64_t ci = 0; ci < c->a->n_configs; ci++) {
        int used = 0;
        for (int64_t s = 0; s < c->a->n_slices && pn->config; s++)
            used |= pn->config[s] == ci;
        if (used)
            g_string_append_printf(g, "%s%s", g->len ? ", " : "", c->a->configs[ci].spec);
    }
    *deployed = g_string_free(g, FALSE);
    return changed;
}

/* {{compare_answer}}: compare_same when no slice's recommendation moved; compare_same_deploy
 * when some did but every slice is deployed on the same config; else compare_changed; the
 * moves as one compare_change per slice */
static int compare_answer(struct brief_ctx *c, char **out)
{
    const struct qb_compare *k = c->cmp;
    struct scope sc = {0};
    GString *g = g_string_new(NULL);
    int rc = 0;
    for (int64_t s = 0; rc >= 0 && s < c->a->n_slices; s++) {
        int64_t sb = k->slice_before[s];
        if (sb < 0)
            continue;
        const char *rb = k->before->configs[k->before->slices[sb].rec].spec,
                   *rn = c->a->configs[c->a->slices[s].rec].spec;
        if (!strcmp(rb, rn))
            continue;
        struct scope one = {0};
        char *t = NULL;
        brief_scope_set(&one, "slice", g_strdup(c->a->slices[s].name));
        brief_scope_set(&one, "rec_before", g_strdup(rb));
        brief_scope_set(&one, "rec_now", g_strdup(rn));
        if ((rc = brief_pattern(c, "compare_change", &one, &t)) >= 0 && *t)
            g_string_append_printf(g, "%s%s", g->len ? "; " : "", t);
        g_free(t);
        brief_scope_clear(&one);
    }
    if (rc >= 0) {
        char *deployed = NULL;
        int moved = deploy_changed(c, &deployed);
        brief_scope_set(&sc, "n_changed", brief_i64(k->n_changed));
        brief_scope_set(&sc, "n", brief_i64(c->a->n_slices));
        brief_scope_set(&sc, "changes", g_strdup(g->str));
        brief_scope_set(&sc, "deployed", deployed);
        rc = brief_pattern(c,
                           !k->n_changed ? "compare_same"
                           : moved       ? "compare_changed"
                                         : "compare_same_deploy",
                           &sc, out);
    }
    brief_scope_clear(&sc);
    g_string_free(g, TRUE);
    return rc;
}

/* the other run's own answer, through the same template */
static int before_answer(struct brief_ctx *c, const struct qb_brief_opts *o, const char *date,
                         char **out)
{
    struct brief_ctx b = {0};
    struct qb_brief_opts ob = *o;
    int rc;
    b.a = c->cmp->before;
    b.t = c->t;
    b.each_slice = -1;
    b.vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    ob.compare = NULL;
    if ((rc = brief_make_vars(&b, &ob, date)) >= 0)
        *out = g_strdup(g_hash_table_lookup(b.vars, "answer"));
    g_strfreev(b.caveats);
    g_hash_table_destroy(b.vars);
    return rc;
}

int brief_compare_vars(struct brief_ctx *c, const struct qb_brief_opts *o, const char *date)
{
    const struct qb_analysis *b = c->cmp->before;
    char *ans = NULL, *bans = NULL;
    int rc;
    g_hash_table_replace(c->vars, g_strdup("before_run"), g_strdup(b->run_name ? b->run_name : NA));
    g_hash_table_replace(c->vars, g_strdup("before_machine"),
                         brief_machine_text(b->machine_json, b->host));
    g_hash_table_replace(c->vars, g_strdup("before_device"),
                         g_strdup(b->device ? b->device : "cpu"));
    g_hash_table_replace(c->vars, g_strdup("before_started"),
                         g_strdup(b->started_at ? b->started_at : NA));
    g_hash_table_replace(c->vars, g_strdup("before_store"), g_strdup(o->against ? o->against : NA));
    g_hash_table_replace(c->vars, g_strdup("n_changed"), brief_i64(c->cmp->n_changed));
    if ((rc = compare_answer(c, &ans)) < 0 || (rc = before_answer(c, o, date, &bans)) < 0) {
        g_free(ans);
        return rc;
    }
    g_hash_table_replace(c->vars, g_strdup("compare_answer"), ans);
    g_hash_table_replace(c->vars, g_strdup("before_answer"), bans ? bans : g_strdup(NA));
    c->conds[C_COMPARED] = 1;
    c->conds[C_DECISION_CHANGED] = c->cmp->n_changed > 0;
    c->conds[C_HAS_COMPARE_WARNINGS] = c->cmp->n_warnings > 0;
    return 0;
}

/* --- the two runs --------------------------------------------------------------------------- */

struct only_run {
    int64_t n;
    char *name;
};

static int on_run(void *ctx, int64_t run_id, int64_t suite_id, const char *name,
                  const char *started_at)
{
    struct only_run *r = ctx;
    (void)run_id, (void)suite_id, (void)started_at;
    if (!r->n++)
        r->name = g_strdup(name ? name : "");
    return 0;
}

/* Splits --against into a store path and a run name (NULL: the store's only run): "RUN" (a
 * run of db), "FILE.db" or "FILE.db#RUN"; a name that is a file is a store. */
static int resolve(const struct qb_brief_opts *o, char **path, char **run)
{
    const char *hash = strrchr(o->against, '#');
    struct stat st;
    *path = *run = NULL;
    if (hash) {
        *path = g_strndup(o->against, (gsize)(hash - o->against));
        *run = g_strdup(hash + 1);
    } else if (stat(o->against, &st) == 0 || g_str_has_suffix(o->against, ".db")) {
        *path = g_strdup(o->against);
    } else {
        *path = g_strdup(o->db_path);
        *run = g_strdup(o->against);
    }
    if (access(*path, F_OK) != 0)
        return qb_err(QB_EIO, "--against: cannot open database '%s': %s", *path, strerror(errno));
    return 0;
}

static int open_before(const struct qb_brief_opts *o, struct qb_store **s, struct qb_analysis **a)
{
    char *path = NULL, *run = NULL;
    struct only_run r = {0, NULL};
    int rc;
    if ((rc = resolve(o, &path, &run)) < 0 || (rc = qb_store_open(path, QB_STORE_READONLY, s)) < 0)
        goto out;
    if (!run) {
        if ((rc = qb_store_list_runs(*s, on_run, &r)) < 0)
            goto out;
        if (r.n != 1) {
            rc = qb_err(QB_EINVAL,
                        "--against '%s': the store holds %lld runs; name one as FILE.db#RUN", path,
                        (long long)r.n);
            goto out;
        }
        run = r.name;
        r.name = NULL;
    }
    rc = qb_analyze(*s, run, NULL, a);
out:
    g_free(path), g_free(run), g_free(r.name);
    return rc;
}

int brief_write_against(const struct qb_brief_opts *o)
{
    struct qb_store *sn = NULL, *sb = NULL;
    struct qb_analysis *now = NULL, *before = NULL;
    struct qb_compare *k = NULL;
    struct qb_brief_opts oo = *o;
    int rc;

    if (o->format != QB_BRIEF_PDF && o->format != QB_BRIEF_MD)
        return qb_err(QB_EINVAL, "--against writes a PDF or Markdown brief, not JSON or CSV");
    if (access(o->db_path, F_OK) != 0)
        return qb_err(QB_EIO, "cannot open database '%s': %s", o->db_path, strerror(errno));
    if ((rc = qb_store_open(o->db_path, QB_STORE_READONLY, &sn)) < 0 ||
        (rc = qb_analyze(sn, o->run_name, NULL, &now)) < 0 ||
        (rc = open_before(o, &sb, &before)) < 0 || (rc = qb_compare(now, before, &k)) < 0)
        goto out;
    /* qb_brief_render does not branch on against: it stays, for {{before_store}} */
    oo.compare = k;
    if (!oo.template_name)
        oo.template_name = "compare";
    rc = qb_brief_render(now, NULL, &oo);
out:
    qb_compare_free(k);
    qb_analysis_free(now);
    qb_analysis_free(before);
    qb_store_close(sn);
    qb_store_close(sb);
    return rc;
}
