/* analyze: reads one run from the results store and computes every number of the brief (see
 * analyze.h for the definitions; they must agree with the methodology section the brief
 * prints). The run is read with one query per table (all results at once), kept in a dense
 * config x item matrix, and every cell is computed from that matrix. This file runs the
 * sections in order around one struct an (analyze_int.h); each section is in its own file:
 * analyze_load.c (the run, its settings, items and results, calibration), analyze_configs.c
 * (the ladder, memory, latency, costs), analyze_cells.c (rows and cell statistics),
 * analyze_decide.c (recommendations, verdicts, cliffs), analyze_deploy.c (traffic, deployment
 * plans), analyze_warn.c (warnings about the data). */
#include "analysis/analyze.h"

#include "analysis/analyze_int.h"
#include "analysis/analyze_sens.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <stdarg.h>
#include <stdlib.h>

void an_warn(struct an *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(x->warnings, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

const char *qb_an_verdict_name(enum qb_an_verdict v)
{
    switch (v) {
    case QB_VERDICT_HOLDS: return "holds";
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
    for (int64_t i = 0; sl->examples && i < sl->n_examples; i++) {
        g_free(sl->examples[i].key);
        g_free(sl->examples[i].prompt);
        g_free(sl->examples[i].baseline_output);
        g_free(sl->examples[i].config_output);
    }
    free(sl->examples);
}

void qb_analysis_free(struct qb_analysis *a)
{
    if (!a)
        return;
    char **strs[] = {&a->run_name,     &a->title,        &a->question,       &a->template_name,
                     &a->model_path,   &a->model_sha256, &a->architecture,   &a->model_format,
                     &a->suite_path,   &a->suite_sha256, &a->qbrief_version, &a->git_commit,
                     &a->command_line, &a->host,         &a->machine_json,   &a->started_at,
                     &a->finished_at,  &a->calib_file,   &a->calib_sha256,   &a->settings_json,
                     &a->device};
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
    for (int64_t i = 0; a->items && i < a->n_items; i++) {
        g_free(a->items[i].key);
        g_free(a->items[i].prompt_sha256);
    }
    free(a->items);
    free(a->correct);
    free(a->kl);
    free(a->top1);
    for (int64_t i = 0; a->warnings && i < a->n_warnings; i++)
        g_free(a->warnings[i]);
    free(a->warnings);
    qb_an_sens_free(a->sens);
    free(a);
}

/* --- the working state --------------------------------------------------------------------- */

static int an_init(struct an *x, struct qb_store *s)
{
    x->s = s;
    x->slice_ix = g_hash_table_new(g_str_hash, g_str_equal);
    x->slice_names = g_ptr_array_new_with_free_func(g_free);
    x->warnings = g_ptr_array_new();
    x->lat = g_array_new(FALSE, FALSE, sizeof(struct qb_store_latency));
    qb_settings_init(&x->set);
    if (!(x->a = calloc(1, sizeof *x->a)))
        return qb_err(QB_ENOMEM, "out of memory");
    x->a->overall_cliff.below = -1;
    x->a->calib_overlap_items = -1;
    return 0;
}

/* Hands the warnings over to the analysis. */
static int take_warnings(struct an *x)
{
    struct qb_analysis *a = x->a;
    if (!(a->warnings = calloc((size_t)x->warnings->len + 1, sizeof *a->warnings)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (guint i = 0; i < x->warnings->len; i++)
        a->warnings[i] = g_ptr_array_index(x->warnings, i);
    a->n_warnings = x->warnings->len;
    g_ptr_array_set_size(x->warnings, 0); /* no free function: a owns them now */
    return 0;
}

/* Frees the working state, and the analysis when it has not been handed out. */
static void an_release(struct an *x)
{
    for (guint i = 0; i < x->warnings->len; i++)
        g_free(g_ptr_array_index(x->warnings, i));
    g_ptr_array_free(x->warnings, TRUE);
    qb_analysis_free(x->a);
    g_hash_table_destroy(x->slice_ix);
    g_ptr_array_free(x->slice_names, TRUE);
    g_array_free(x->lat, TRUE);
    for (int64_t i = 0; i < x->n_raw; i++)
        g_free(x->raw[i].spec);
    free(x->raw);
    free(x->ladder_of);
    free(x->items);
    free(x->res);
    free(x->cost_order);
    free(x->idx);
    free(x->jobs);
    free(x->xs);
    free(x->ys);
    g_free(x->baseline_spec);
    qb_settings_release(&x->set);
}

/* --- the whole analysis -------------------------------------------------------------------- */

static int check_opts(const struct qb_an_opts *o)
{
    if (o->confidence != 0 && !(o->confidence > 0 && o->confidence < 1))
        return qb_err(QB_EINVAL, "confidence %g is not between 0 and 1", o->confidence);
    if (o->policy != -1 && o->policy != QB_AN_INTERVAL && o->policy != QB_AN_POINT)
        return qb_err(QB_EINVAL, "unknown policy %d (interval, point)", o->policy);
    if (o->resamples < 0)
        return qb_err(QB_EINVAL, "resamples %lld is negative", (long long)o->resamples);
    return 0;
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
    if ((rc = check_opts(&o)) < 0)
        return rc;
    if ((rc = an_init(&x, s)) < 0)
        goto out;
    /* the sections, in order; each reads what the ones before it left in x */
    if ((rc = an_load_run(&x, run_name)) < 0 || /* the run row */
        (rc = an_read_settings(&x, &o)) < 0 ||  /* its settings, the options over them */
        (rc = an_load_configs(&x)) < 0 ||       /* configs in ladder order */
        (rc = an_load_imports(&x)) < 0 ||       /* labels of imported configs */
        (rc = an_load_results(&x)) < 0 ||       /* items, the config x item results */
        (rc = an_load_measures(&x)) < 0 ||      /* memory and latency per config */
        (rc = an_load_calibration(&x)) < 0 ||   /* what calibrated the configs */
        (rc = an_config_costs(&x)) < 0 ||       /* cost order, speedups */
        (rc = an_group_slices(&x)) < 0 ||       /* slices and the overall row */
        (rc = an_traffic(&x)) < 0 ||            /* each slice's share */
        (rc = an_compute_cells(&x)) < 0 ||      /* statistics of every cell, judged */
        (rc = an_decide(&x)) < 0 ||             /* recommendations, verdicts, cliffs */
        (rc = an_unstable(&x)) < 0 ||           /* ladders that rise beyond their intervals */
        (rc = an_flip_examples(&x)) < 0 ||      /* items a passed-over config changed */
        (rc = an_export_items(&x)) < 0 ||       /* items and correctness, for comparisons */
        (rc = an_deploy(&x)) < 0 ||             /* single and routed plans */
        (rc = an_data_warnings(&x)) < 0 ||      /* what the brief lists as caveats */
        (rc = take_warnings(&x)) < 0)
        goto out;
    /* the model's sensitivity scan, when the store holds one (schema 6) */
    if ((rc = qb_an_sens_load(s, x.a->model_sha256, x.a->run_name, &x.a->sens)) < 0)
        goto out;
    *out = x.a;
    x.a = NULL;
out:
    an_release(&x);
    return rc;
}
