/* analyze_json: every number of a struct qb_analysis as one JSON document (`qbrief brief
 * --json`, and the machine-readable appendix). Field names match the struct's; fractions stay
 * fractions; NaN and infinities are written as null. Must list every field analyze.h adds. */
#include "analysis/analyze.h"

#include "kernels/base/err.h"

#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* text from the store is UTF-8 unless a file was damaged: invalid bytes become U+FFFD */
static json_t *str(const char *s)
{
    json_t *v;
    char *fixed;
    if (!s)
        return json_null();
    if ((v = json_string(s)))
        return v;
    fixed = g_utf8_make_valid(s, -1);
    v = json_string(fixed);
    g_free(fixed);
    return v;
}

/* json_object_set_new ignores a NULL value and reports it; a failed allocation shows up as a
 * missing key, which the caller catches through `bad` */
static void put(json_t *o, const char *k, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, k, v) < 0)
        *bad = 1;
}

static void push(json_t *arr, json_t *v, int *bad)
{
    if (!v || json_array_append_new(arr, v) < 0)
        *bad = 1;
}

static json_t *interval(struct qb_interval ci, int *bad)
{
    json_t *a = json_array();
    if (!a) {
        *bad = 1;
        return NULL;
    }
    push(a, num(ci.lo), bad);
    push(a, num(ci.hi), bad);
    return a;
}

static json_t *cell_json(const struct qb_analysis *a, const struct qb_an_cell *e, int64_t c,
                         int *bad)
{
    json_t *o = json_object();
    if (!o) {
        *bad = 1;
        return NULL;
    }
    put(o, "config", str(a->configs[c].spec), bad);
    put(o, "n", json_integer(e->n), bad);
    put(o, "n_correct", json_integer(e->n_correct), bad);
    put(o, "acc", num(e->acc), bad);
    put(o, "acc_ci", interval(e->acc_ci, bad), bad);
    put(o, "delta", num(e->delta), bad);
    put(o, "delta_ci", interval(e->delta_ci, bad), bad);
    put(o, "mcnemar_p", num(e->mcnemar_p), bad);
    put(o, "flips_lost", json_integer(e->flips_lost), bad);
    put(o, "flips_gained", json_integer(e->flips_gained), bad);
    put(o, "flip_rate", num(e->flip_rate), bad);
    put(o, "lost_ci", interval(e->lost_ci, bad), bad);
    put(o, "gained_ci", interval(e->gained_ci, bad), bad);
    put(o, "flip_ci", interval(e->flip_ci, bad), bad);
    put(o, "kl_mean", num(e->kl_mean), bad);
    put(o, "kl_p99", num(e->kl_p99), bad);
    put(o, "top1", num(e->top1), bad);
    put(o, "ppl", num(e->ppl), bad);
    put(o, "ppl_ratio", num(e->ppl_ratio), bad);
    put(o, "mde", num(e->mde), bad);
    put(o, "underpowered", json_boolean(e->underpowered), bad);
    put(o, "within_acc", json_boolean(e->within_acc), bad);
    put(o, "gains_beyond", json_boolean(e->gains_beyond), bad);
    put(o, "flips_over", json_boolean(e->flips_over), bad);
    put(o, "changes_behaviour", json_boolean(e->changes_behaviour), bad);
    put(o, "within", json_boolean(e->within), bad);
    put(o, "significant_loss", json_boolean(e->significant_loss), bad);
    put(o, "pareto", json_boolean(e->pareto), bad);
    return o;
}

static json_t *slice_json(const struct qb_analysis *a, const struct qb_an_slice *sl, int *bad)
{
    json_t *o = json_object(), *cells = json_array();
    if (!o || !cells) {
        json_decref(o);
        json_decref(cells);
        *bad = 1;
        return NULL;
    }
    put(o, "name", str(sl->name), bad);
    put(o, "is_perplexity", json_boolean(sl->is_perplexity), bad);
    put(o, "n_items", json_integer(sl->n_items), bad);
    put(o, "tolerance", num(sl->tolerance), bad);
    put(o, "traffic", num(sl->traffic), bad);
    put(o, "rec", str(a->configs[sl->rec].spec), bad);
    put(o, "verdict", json_string(qb_an_verdict_name(sl->verdict)), bad);
    put(o, "cliff", sl->cliff >= 0 ? json_integer(sl->cliff) : json_null(), bad);
    put(o, "max_flips", num(sl->max_flips), bad);
    put(o, "behaviour", sl->behaviour >= 0 ? str(a->configs[sl->behaviour].spec) : json_null(),
        bad);
    put(o, "unstable",
        sl->unstable_below >= 0
            ? json_pack("{s:s, s:s}", "above", a->configs[sl->unstable_above].spec, "below",
                        a->configs[sl->unstable_below].spec)
            : json_null(),
        bad);
    for (int64_t c = 0; sl->cells && c < a->n_configs; c++)
        push(cells, cell_json(a, &sl->cells[c], c, bad), bad);
    put(o, "cells", cells, bad);
    return o;
}

static json_t *cliff_json(const struct qb_analysis *a, const struct qb_an_cliff *c, int *bad)
{
    json_t *o = json_object();
    if (!o) {
        *bad = 1;
        return NULL;
    }
    put(o, "slice", c->slice >= 0 ? str(a->slices[c->slice].name) : json_null(), bad);
    put(o, "above", str(a->configs[c->above].spec), bad);
    put(o, "below", str(a->configs[c->below].spec), bad);
    put(o, "loss", num(c->loss), bad);
    put(o, "loss_ci", interval(c->loss_ci, bad), bad);
    put(o, "hides", json_boolean(c->hides), bad);
    put(o, "overall_loss", num(c->overall_loss), bad);
    return o;
}

static json_t *plan_json(const struct qb_analysis *a, const struct qb_an_plan *p, int *bad)
{
    json_t *o = json_object(), *m = json_object();
    if (!o || !m) {
        json_decref(o);
        json_decref(m);
        *bad = 1;
        return NULL;
    }
    for (int64_t s = 0; p->config && s < a->n_slices; s++)
        put(m, a->slices[s].name, str(a->configs[p->config[s]].spec), bad);
    put(o, "configs", m, bad);
    put(o, "n_distinct", json_integer(p->n_distinct), bad);
    put(o, "mem_cost", num(p->mem_cost), bad);
    put(o, "mem_ratio", num(p->mem_ratio), bad);
    put(o, "tpot_ms", num(p->tpot_ms), bad);
    put(o, "tpot_ratio", num(p->tpot_ratio), bad);
    return o;
}

static json_t *config_json(const struct qb_an_config *c, int *bad)
{
    json_t *o = json_object(), *lat = json_array();
    if (!o || !lat) {
        json_decref(o);
        json_decref(lat);
        *bad = 1;
        return NULL;
    }
    put(o, "spec", str(c->spec), bad);
    put(o, "is_baseline", json_boolean(c->is_baseline), bad);
    put(o, "ladder", json_integer(c->ladder), bad);
    put(o, "bits_per_weight", num(c->bits_per_weight), bad);
    put(o, "weight_bytes", c->weight_bytes >= 0 ? json_integer(c->weight_bytes) : json_null(), bad);
    put(o, "quant_seconds", num(c->quant_seconds), bad);
    put(o, "peak_rss_bytes", c->peak_rss_bytes >= 0 ? json_integer(c->peak_rss_bytes) : json_null(),
        bad);
    put(o, "kv_cache_bytes", c->kv_cache_bytes >= 0 ? json_integer(c->kv_cache_bytes) : json_null(),
        bad);
    put(o, "mem_context", c->mem_context >= 0 ? json_integer(c->mem_context) : json_null(), bad);
    put(o, "mem_cost", num(c->mem_cost), bad);
    put(o, "lat_cost", num(c->lat_cost), bad);
    put(o, "mem_saving", num(c->mem_saving), bad);
    put(o, "n_results", json_integer(c->n_results), bad);
    for (int64_t i = 0; i < c->n_lat; i++) {
        const struct qb_an_latency *l = &c->lat[i];
        json_t *e = json_object();
        if (!e) {
            *bad = 1;
            break;
        }
        put(e, "prompt_len", json_integer(l->prompt_len), bad);
        put(e, "gen_len", json_integer(l->gen_len), bad);
        put(e, "batch", json_integer(l->batch), bad);
        put(e, "n_samples", json_integer(l->n_samples), bad);
        put(e, "ttft_p50", num(l->ttft_p50), bad);
        put(e, "ttft_p95", num(l->ttft_p95), bad);
        put(e, "ttft_p99", num(l->ttft_p99), bad);
        put(e, "tpot_p50", num(l->tpot_p50), bad);
        put(e, "tpot_p95", num(l->tpot_p95), bad);
        put(e, "tpot_p99", num(l->tpot_p99), bad);
        put(e, "e2e_p50", num(l->e2e_p50), bad);
        put(e, "e2e_p95", num(l->e2e_p95), bad);
        put(e, "e2e_p99", num(l->e2e_p99), bad);
        put(e, "decode_tok_s_p50", num(l->decode_tok_s_p50), bad);
        put(e, "speedup_tpot", num(l->speedup_tpot), bad);
        put(e, "speedup_ttft", num(l->speedup_ttft), bad);
        push(lat, e, bad);
    }
    put(o, "latency", lat, bad);
    return o;
}

int qb_analysis_json(const struct qb_analysis *a, char **out)
{
    json_t *root = NULL, *arr;
    int bad = 0;

    if (!a || !out)
        return qb_err(QB_EINVAL, "qb_analysis_json: no analysis or no output");
    *out = NULL;
    if (!(root = json_object()))
        return qb_err(QB_ENOMEM, "out of memory writing the analysis as JSON");

    put(root, "run", str(a->run_name), &bad);
    put(root, "title", str(a->title), &bad);
    put(root, "question", str(a->question), &bad);
    put(root, "template", str(a->template_name), &bad);
    {
        json_t *m = json_object();
        put(m, "path", str(a->model_path), &bad);
        put(m, "sha256", str(a->model_sha256), &bad);
        put(m, "architecture", str(a->architecture), &bad);
        put(m, "format", str(a->model_format), &bad);
        put(m, "n_params", json_integer(a->n_params), &bad);
        put(root, "model", m, &bad);
    }
    {
        json_t *m = json_object();
        put(m, "path", str(a->suite_path), &bad);
        put(m, "sha256", str(a->suite_sha256), &bad);
        put(m, "n_items", json_integer(a->n_suite_items), &bad);
        put(root, "suite", m, &bad);
    }
    {
        json_t *m = json_object(), *mach = NULL;
        put(m, "qbrief_version", str(a->qbrief_version), &bad);
        put(m, "git_commit", str(a->git_commit), &bad);
        put(m, "command_line", str(a->command_line), &bad);
        put(m, "host", str(a->host), &bad);
        if (a->machine_json)
            mach = json_loads(a->machine_json, 0, NULL);
        put(m, "machine", mach ? mach : str(a->machine_json), &bad);
        put(m, "device", str(a->device ? a->device : "cpu"), &bad);
        put(m, "started_at", str(a->started_at), &bad);
        put(m, "finished_at", str(a->finished_at), &bad);
        put(root, "provenance", m, &bad);
    }
    {
        json_t *m = json_object();
        put(m, "file", str(a->calib_file), &bad);
        put(m, "sha256", str(a->calib_sha256), &bad);
        put(m, "sequences", json_integer(a->calib_sequences), &bad);
        put(m, "seq_len", json_integer(a->calib_seq_len), &bad);
        put(m, "overlap_items",
            a->calib_overlap_items >= 0 ? json_integer(a->calib_overlap_items) : json_null(), &bad);
        put(m, "overlap_ngram", json_integer(a->calib_overlap_ngram), &bad);
        put(root, "calibration", m, &bad);
    }
    {
        json_t *m = json_object();
        put(m, "confidence", num(a->confidence), &bad);
        put(m, "bound", json_string(a->policy == QB_AN_POINT ? "point" : "interval"), &bad);
        put(m, "resamples", json_integer(a->resamples), &bad);
        put(m, "seed", json_integer((json_int_t)a->seed), &bad);
        put(root, "policy", m, &bad);
    }
    put(root, "baseline", str(a->configs[a->baseline].spec), &bad);
    put(root, "mem_cost_rss", json_boolean(a->mem_cost_rss), &bad);
    if ((arr = json_array()))
        for (int64_t i = 0; i < a->n_configs; i++)
            push(arr, config_json(&a->configs[i], &bad), &bad);
    put(root, "configs", arr, &bad);
    if ((arr = json_array()))
        for (int64_t i = 0; i < a->n_slices; i++)
            push(arr, slice_json(a, &a->slices[i], &bad), &bad);
    put(root, "slices", arr, &bad);
    put(root, "overall", slice_json(a, &a->overall, &bad), &bad);
    put(root, "overall_cliff",
        a->overall_cliff.below >= 0 ? cliff_json(a, &a->overall_cliff, &bad) : json_null(), &bad);
    if ((arr = json_array()))
        for (int64_t i = 0; i < a->n_cliffs; i++)
            push(arr, cliff_json(a, &a->cliffs[i], &bad), &bad);
    put(root, "cliffs", arr, &bad);
    put(root, "single_config", str(a->configs[a->single_config].spec), &bad);
    put(root, "single", plan_json(a, &a->single, &bad), &bad);
    put(root, "routed", plan_json(a, &a->routed, &bad), &bad);
    put(root, "n_results", json_integer(a->n_results), &bad);
    put(root, "n_missing", json_integer(a->n_missing), &bad);
    put(root, "n_failed", json_integer(a->n_failed), &bad);
    if ((arr = json_array()))
        for (int64_t i = 0; i < a->n_warnings; i++)
            push(arr, str(a->warnings[i]), &bad);
    put(root, "warnings", arr, &bad);

    if (!bad)
        *out = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!*out)
        return qb_err(QB_ENOMEM, "out of memory writing the analysis as JSON");
    return 0;
}
