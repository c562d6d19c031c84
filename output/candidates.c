/* candidates: the brief across candidate models (`qbrief brief --runs R1,R2,...`). Each run is
 * analysed, the runs are written as one run of a temporary store (analysis/candidates.h), that
 * run is analysed like any other and rendered through the template "candidates" (or the one
 * named); the temporary store is removed. */
#include "analysis/analyze.h"
#include "analysis/candidates.h"
#include "collector/store/settings.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"
#include "output/brief_int.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* the temporary store's files and folder */
static void remove_tmp(const char *dir, const char *db)
{
    static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char *p = g_strconcat(db, ext[i], NULL);
        g_unlink(p);
        g_free(p);
    }
    g_rmdir(dir);
}

static int analyse_runs(struct qb_store *s, char **names, struct qb_analysis ***out, int64_t *n)
{
    int64_t k = g_strv_length(names);
    struct qb_analysis **a = g_new0(struct qb_analysis *, (gsize)k + 1);
    int rc = 0;
    for (int64_t i = 0; rc >= 0 && i < k; i++)
        rc = qb_analyze(s, g_strstrip(names[i]), NULL, &a[i]);
    *out = a;
    *n = k;
    return rc;
}

/* --- a multi-model plan's runs ------------------------------------------------------------- */

struct plan_runs {
    struct qb_store *s;
    char *plan;        /* the newest run's plan file, NULL when from flags */
    char *suite;       /* ... and its suite sha256 */
    GPtrArray *names;  /* runs of that plan on that suite, newest first */
    GPtrArray *models; /* their model sha256s */
    int first;
};

static int on_run_info(void *ctx, const struct qb_store_run *r, const struct qb_store_model *m,
                       const struct qb_store_suite *su)
{
    struct plan_runs *p = ctx;
    struct qb_settings st;
    if (qb_settings_read(r->settings_json, &st, NULL, NULL) < 0)
        return 0;
    if (p->first) {
        p->plan = st.plan ? g_strdup(st.plan) : NULL;
        p->suite = g_strdup(su->sha256);
        p->first = 0;
    }
    int same = p->plan && st.plan && !strcmp(p->plan, st.plan) && !strcmp(p->suite, su->sha256);
    for (guint i = 0; same && i < p->models->len; i++)
        same = strcmp(g_ptr_array_index(p->models, i), m->sha256) != 0;
    if (same) {
        g_ptr_array_add(p->names, g_strdup(r->name));
        g_ptr_array_add(p->models, g_strdup(m->sha256));
    }
    qb_settings_release(&st);
    return 0;
}

static int on_listed(void *ctx, int64_t run_id, int64_t suite_id, const char *name,
                     const char *started_at)
{
    struct plan_runs *p = ctx;
    (void)suite_id, (void)name, (void)started_at;
    return qb_store_get_run(p->s, run_id, on_run_info, p);
}

int brief_plan_runs(const char *db, char **runs)
{
    struct plan_runs p = {NULL,
                          NULL,
                          NULL,
                          g_ptr_array_new_with_free_func(g_free),
                          g_ptr_array_new_with_free_func(g_free),
                          1};
    int rc;
    *runs = NULL;
    if ((rc = qb_store_open(db, QB_STORE_READONLY, &p.s)) < 0)
        goto out;
    if ((rc = qb_store_list_runs(p.s, on_listed, &p)) < 0 || p.names->len < 2)
        goto out;
    /* in the order the plan ran them: oldest first */
    GString *g = g_string_new(NULL);
    for (guint i = p.names->len; i-- > 0;)
        g_string_append_printf(g, "%s%s", g->len ? "," : "",
                               (const char *)g_ptr_array_index(p.names, i));
    *runs = g_string_free(g, FALSE);
out:
    qb_store_close(p.s);
    g_free(p.plan);
    g_free(p.suite);
    g_ptr_array_free(p.names, TRUE);
    g_ptr_array_free(p.models, TRUE);
    return rc;
}

int brief_write_candidates(const struct qb_brief_opts *o)
{
    struct qb_store *s = NULL, *ts = NULL;
    struct qb_analysis **runs = NULL, *all = NULL;
    struct qb_brief_opts oo = *o;
    char **names = g_strsplit(o->runs, ",", -1), *dir = NULL, *db = NULL;
    int64_t n = 0;
    int rc;

    if (o->format != QB_BRIEF_PDF && o->format != QB_BRIEF_MD && o->format != QB_BRIEF_JSON) {
        rc = qb_err(QB_EINVAL, "--runs writes a PDF, Markdown or JSON brief, not CSV");
        goto out;
    }
    if (access(o->db_path, F_OK) != 0) {
        rc = qb_err(QB_EIO, "cannot open database '%s': %s", o->db_path, strerror(errno));
        goto out;
    }
    if (!(dir = g_dir_make_tmp("qbrief-candidates-XXXXXX", NULL))) {
        rc = qb_err(QB_EIO, "cannot make a temporary folder for the candidates' store");
        goto out;
    }
    db = g_build_filename(dir, "candidates.db", NULL);
    if ((rc = qb_store_open(o->db_path, QB_STORE_READONLY, &s)) < 0 ||
        (rc = analyse_runs(s, names, &runs, &n)) < 0 ||
        (rc = qb_candidates_write((const struct qb_analysis *const *)runs, n, db,
                                  o->command_line)) < 0 ||
        (rc = qb_store_open(db, QB_STORE_READONLY, &ts)) < 0 ||
        (rc = qb_analyze(ts, QB_CANDIDATES_RUN, NULL, &all)) < 0)
        goto out;
    if (!oo.template_name)
        oo.template_name = "candidates";
    oo.runs = NULL;
    rc = qb_brief_render(all, NULL, &oo);
out:
    qb_analysis_free(all);
    for (int64_t i = 0; runs && i < n; i++)
        qb_analysis_free(runs[i]);
    g_free(runs);
    qb_store_close(ts);
    qb_store_close(s);
    if (dir)
        remove_tmp(dir, db);
    g_free(dir);
    g_free(db);
    g_strfreev(names);
    return rc;
}
