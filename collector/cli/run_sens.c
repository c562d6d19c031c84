/* `qbrief run PLAN` with a `sensitivity:` section: the scan before the run (or the one a
 * previous call of the same run stored), and its mixed candidates added to the configs. */
#include "collector/cli/cli.h"
#include "collector/run/plan.h"
#include "collector/run/run.h"
#include "collector/run/sens.h"
#include "collector/store/store.h"
#include "collector/store/store_sens.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct found {
    const struct qb_plan *plan;
    json_t *cands; /* the stored scan's candidates when it matches the plan */
};

static int on_scan(void *ctx, const struct qb_store_sens_scan *s)
{
    struct found *f = ctx;
    const struct qb_plan *p = f->plan;
    const char *keep = p->sens.keep[0] ? p->sens.keep : "w8";
    int same = !strcmp(s->config, p->sens.config) && !strcmp(s->keep, keep) &&
               !strcmp(s->granularity, p->sens.by_layer ? "layer" : "tensor") &&
               (p->sens.slice ? s->slice && !strcmp(s->slice, p->sens.slice) : !s->slice) &&
               s->candidates_json;
    if (same)
        f->cands = json_loads(s->candidates_json, 0, NULL);
    return 0;
}

static void on_unit_progress(void *ctx, int64_t i, int64_t n, const char *unit, double kl,
                             double acc)
{
    (void)acc;
    if (!*(const int *)ctx)
        fprintf(stderr, "\rsensitivity: %lld/%lld %-10s KL %.5f   ", (long long)i + 1, (long long)n,
                unit, kl);
}

/* Scans and stores; the candidates go to *cands (a JSON array). */
static int scan(const struct qb_plan *p, const struct qb_run_opts *o, const char *db, int quiet,
                json_t **cands)
{
    struct qb_sens_opts so = QB_SENS_OPTS_INIT;
    struct qb_sens_result r;
    int rc;
    so.model_path = o->model_path;
    so.tokenizer_path = o->tokenizer_path;
    so.config = p->sens.config;
    so.baseline = o->baseline;
    so.keep = p->sens.keep[0] ? p->sens.keep : NULL;
    so.slice = p->sens.slice;
    if (p->sens.slice) {
        so.suite_path = o->suite_path;
        so.prompt_template = o->prompt_template;
    } else {
        so.calib_path = o->calib_path;
    }
    so.by_layer = p->sens.by_layer;
    so.threads = o->threads;
    so.n_budgets = p->sens.n_budgets;
    memcpy(so.budgets, p->sens.budgets, sizeof so.budgets);
    so.run_name = o->name;
    so.on_unit = on_unit_progress;
    so.ctx = &quiet;
    if ((rc = qb_sens_scan(&so, &r)) < 0)
        return qb_err_prefix(rc, "sensitivity");
    if (!quiet) {
        fprintf(stderr, "\n");
        qb_sens_print(stderr, &r, p->sens.slice ? p->sens.slice : "the calibration text");
    }
    *cands = json_array();
    for (int i = 0; i < r.n_candidates; i++)
        json_array_append_new(*cands, json_string(r.candidates[i]));
    rc = qb_sens_store(&so, &r, db, NULL);
    qb_sens_result_release(&r);
    return rc;
}

int qb_run_plan_sens(const struct qb_plan *p, struct qb_run_opts *o, const char ***cfgs,
                     char ***owned, int quiet)
{
    const char *db = o->db_path ? o->db_path : "qbrief.db";
    struct found f = {p, NULL};
    char sha[65];
    int rc;

    *owned = NULL;
    if (!p->sens.config[0])
        return 0;
    /* every shard (and the probe job) scans alike, so that all run the same configs: the
     * scan is deterministic for one model, binary and thread count */
    if (p->n_models > 1) {
        if (!quiet)
            fprintf(stderr, "sensitivity: skipped (a plan of several models)\n");
        return 0;
    }
    if (g_file_test(db, G_FILE_TEST_IS_REGULAR)) {
        struct qb_store *s = NULL;
        if ((rc = qb_run_model_sha256(o->model_path, sha)) < 0 ||
            (rc = qb_store_open(db, QB_STORE_READONLY, &s)) < 0 ||
            (rc = qb_store_sens_latest(s, sha, o->name, on_scan, NULL, &f)) < 0) {
            qb_store_close(s);
            return rc;
        }
        qb_store_close(s);
    }
    if (f.cands && !quiet)
        fprintf(stderr, "sensitivity: the scan stored in '%s' is reused\n", db);
    if (!f.cands && (rc = scan(p, o, db, quiet, &f.cands)) < 0)
        return rc;
    size_t n = json_array_size(f.cands);
    const char **all = calloc((size_t)o->n_configs + n, sizeof *all);
    *owned = calloc(n + 1, sizeof **owned);
    if (!all || !*owned) {
        free(all);
        json_decref(f.cands);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    memcpy(all, o->configs, (size_t)o->n_configs * sizeof *all);
    int64_t k = o->n_configs, m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = json_string_value(json_array_get(f.cands, i));
        int dup = !c;
        for (int64_t j = 0; j < k && !dup; j++)
            dup = !strcmp(all[j], c);
        if (dup)
            continue;
        (*owned)[m] = g_strdup(c);
        all[k++] = (*owned)[m++];
        if (!quiet)
            fprintf(stderr, "sensitivity: adds config %s\n", c);
    }
    json_decref(f.cands);
    free(*cfgs);
    *cfgs = all;
    o->configs = all;
    o->n_configs = k;
    return 0;
}
