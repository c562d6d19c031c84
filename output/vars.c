/* vars: the numbers in words (shared/BRIEF.md: points with one decimal, speedups with two
 * significant digits, "n=240") and the global {{variables}} and @if conditions of a brief,
 * computed once from the analysis before the template runs (docs/templates.md lists them). */
#include "output/brief.h"

#include "analysis/analyze.h"
#include "output/brief_int.h"

#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---------------------------------------------------------------- numbers in words */

char *brief_fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = g_strdup_vprintf(f, ap);
    va_end(ap);
    return s;
}

/* fraction -> points, one decimal, no "-0.0" */
char *brief_pts(double frac)
{
    if (!isfinite(frac))
        return g_strdup(NA);
    double v = round(frac * 1000.0) / 10.0;
    return brief_fmt("%.1f", v == 0 ? 0.0 : v);
}

/* signed: "+1.2", "-3.1", "0.0" */
char *brief_spts(double frac)
{
    if (!isfinite(frac))
        return g_strdup(NA);
    double v = round(frac * 1000.0) / 10.0;
    return v == 0 ? g_strdup("0.0") : brief_fmt("%+.1f", v);
}

/* two significant digits: 0.98, 2.1, 12 */
static char *sig2(double x)
{
    if (!isfinite(x))
        return g_strdup(NA);
    double a = fabs(x);
    if (a >= 9.95)
        return brief_fmt("%.0f", x);
    if (a >= 0.995)
        return brief_fmt("%.1f", x);
    return brief_fmt("%.2f", x);
}

char *brief_times(double x)
{
    if (!isfinite(x))
        return g_strdup(NA);
    char *s = sig2(x), *r = brief_fmt("%s×", s);
    g_free(s);
    return r;
}

char *brief_percent(double frac)
{
    if (!isfinite(frac))
        return g_strdup(NA);
    double v = frac * 100.0;
    if (fabs(v) >= 9.95 || v == 0)
        return brief_fmt("%.0f%%", v);
    return brief_fmt("%.1f%%", v);
}

char *brief_bytes(double b)
{
    if (!isfinite(b) || b < 0)
        return g_strdup(NA);
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024.0 && i < 4)
        b /= 1024.0, i++;
    return i == 0 ? brief_fmt("%.0f B", b) : brief_fmt(b >= 100 ? "%.0f %s" : "%.1f %s", b, u[i]);
}

char *brief_ms(double v)
{
    if (!isfinite(v))
        return g_strdup(NA);
    return brief_fmt(v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
}

char *brief_i64(int64_t v)
{
    return brief_fmt("%lld", (long long)v);
}

char *brief_pvalue(double p)
{
    if (!isfinite(p))
        return g_strdup(NA);
    if (p < 0.001)
        return g_strdup("<0.001");
    return brief_fmt(p < 0.01 ? "%.3f" : "%.2f", p);
}

/* ---------------------------------------------------------------- the variables */

static void set(struct brief_ctx *c, const char *k, char *v /* owned; NULL -> "–" */)
{
    g_hash_table_replace(c->vars, g_strdup(k), v ? v : g_strdup(NA));
}

int brief_on_device(const struct qb_analysis *a)
{
    return a->device && strcmp(a->device, "cpu") != 0;
}

int brief_has_latency(const struct qb_analysis *a)
{
    for (int64_t i = 0; i < a->n_configs; i++)
        for (int64_t j = 0; j < a->configs[i].n_lat; j++)
            if (isfinite(a->configs[i].lat[j].tpot_p50) || isfinite(a->configs[i].lat[j].ttft_p50))
                return 1;
    return 0;
}

/* The decode setting the headline numbers use: the first latency setting (in the baseline's
 * sorted order) that generated tokens, so a prefill-only setting (gen_len 0) is skipped. */
static const struct qb_an_latency *decode_setting(const struct qb_an_config *cf,
                                                  const struct qb_an_config *base)
{
    for (int64_t j = 0; j < base->n_lat; j++) {
        const struct qb_an_latency *b = &base->lat[j];
        if (!(b->gen_len > 0 && isfinite(b->tpot_p50)))
            continue;
        for (int64_t k = 0; k < cf->n_lat; k++) {
            const struct qb_an_latency *l = &cf->lat[k];
            if (l->prompt_len == b->prompt_len && l->gen_len == b->gen_len &&
                l->batch == b->batch && isfinite(l->tpot_p50))
                return l;
        }
    }
    return NULL;
}

/* Blended cost of a plan: traffic-weighted p50 time per output token over the baseline's --
 * the analysis' own numbers, or when it has none (its first latency setting generated no
 * tokens) the same computed at the first decode setting. */
void brief_plan_tpot(const struct qb_analysis *a, const struct qb_an_plan *pl, double *tpot,
                     double *ratio)
{
    const struct qb_an_config *base = &a->configs[a->baseline];
    const struct qb_an_latency *bl = decode_setting(base, base);
    *tpot = pl->tpot_ms;
    *ratio = pl->tpot_ratio;
    if (isfinite(*ratio) || !bl || !pl->config)
        return;
    double sum = 0;
    for (int64_t si = 0; si < a->n_slices && isfinite(sum); si++) {
        const struct qb_an_latency *l = decode_setting(&a->configs[pl->config[si]], base);
        sum += a->slices[si].traffic * (l ? l->tpot_p50 : NAN);
    }
    *tpot = sum;
    *ratio = sum / bl->tpot_p50;
}

int brief_has_memory(const struct qb_analysis *a)
{
    for (int64_t i = 0; i < a->n_configs; i++)
        if (a->configs[i].peak_rss_bytes >= 0)
            return 1;
    return 0;
}

static int slice_undecided(const struct qb_analysis *a, int64_t s)
{
    return a->slices[s].verdict == QB_VERDICT_UNDECIDED;
}

/* The deployment the brief recommends: routing slices to their own configs only when that
 * needs less memory than the one config that holds for every slice (each config routed to
 * is loaded on its own, so a router over five configs holds five sets of weights). */
const struct qb_an_plan *brief_chosen_plan(const struct qb_analysis *a)
{
    if (a->routed.n_distinct > 1 && !(a->routed.mem_cost < a->single.mem_cost))
        return &a->single;
    return &a->routed;
}

char *brief_machine_text(const char *json, const char *host)
{
    json_error_t je;
    json_t *j = json ? json_loads(json, 0, &je) : NULL;
    char *r = NULL;
    if (j && json_is_object(j)) {
        const char *cpu = json_string_value(json_object_get(j, "cpu"));
        json_int_t cores = json_integer_value(json_object_get(j, "cores"));
        const char *isa = json_string_value(json_object_get(j, "isa"));
        GString *g = g_string_new(cpu ? cpu : host ? host : "");
        if (cores > 0 || isa) {
            g_string_append(g, " (");
            if (cores > 0)
                g_string_append_printf(g, "%lld cores%s", (long long)cores, isa ? ", " : "");
            if (isa)
                g_string_append(g, isa);
            g_string_append(g, ")");
        }
        r = g_string_free(g, FALSE);
    }
    json_decref(j);
    if (!r || !*r) {
        g_free(r);
        r = g_strdup(host ? host : NA);
    }
    return r;
}

static char *basename_of(const char *p)
{
    return p ? g_path_get_basename(p) : g_strdup(NA);
}

static char *file_stem(const char *p)
{
    char *b = basename_of(p), *dot = strrchr(b, '.');
    if (dot && dot != b)
        *dot = 0;
    return b;
}

/* The run: model, suite, configs, machine, dates, commands, statistics; the title and the
 * policy from the template's patterns (default_title, policy_point / policy_interval). */
static int vars_run(struct brief_ctx *c, const struct qb_brief_opts *o, const char *date)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_config *base = &a->configs[a->baseline];
    int rc;

    set(c, "model", file_stem(a->model_path));
    set(c, "machine", brief_machine_text(a->machine_json, a->host));
    if (a->title && *a->title) {
        set(c, "title", g_strdup(a->title));
    } else { /* the run names no decision: the template's default_title says it */
        char *tt = NULL;
        if ((rc = brief_pattern(c, "default_title", NULL, &tt)) < 0)
            return rc;
        set(c, "title", *tt ? tt : NULL);
        if (!*tt)
            g_free(tt);
    }
    set(c, "question", g_strdup(a->question));
    set(c, "run", g_strdup(a->run_name));
    set(c, "model_file", g_strdup(a->model_path));
    set(c, "model_sha", g_strdup(a->model_sha256));
    set(c, "architecture", g_strdup(a->architecture));
    set(c, "params",
        a->n_params > 0 ? (a->n_params >= 1000000000 ? brief_fmt("%.1fB", a->n_params / 1e9)
                           : a->n_params >= 1000000  ? brief_fmt("%.0fM", a->n_params / 1e6)
                                                     : brief_fmt("%.0fK", a->n_params / 1e3))
                        : NULL);
    set(c, "model_format", g_strdup(a->model_format));
    set(c, "suite", file_stem(a->suite_path));
    set(c, "suite_file", g_strdup(a->suite_path));
    set(c, "suite_sha", g_strdup(a->suite_sha256));
    set(c, "n_items", brief_i64(a->n_suite_items));
    set(c, "n_slices", brief_i64(a->n_slices));
    int64_t n_measured = 0; /* configs with results: a stopped run lists more */
    for (int64_t i = 0; i < a->n_configs; i++)
        n_measured += a->configs[i].n_results > 0;
    set(c, "n_configs", brief_i64(n_measured));
    set(c, "n_results", brief_i64(a->n_results));
    set(c, "n_missing", brief_i64(a->n_missing));
    set(c, "baseline", g_strdup(base->spec));
    {
        GString *g = g_string_new(NULL);
        for (int64_t i = 0; i < a->n_configs; i++)
            g_string_append_printf(g, "%s%s", i ? ", " : "", a->configs[i].spec);
        set(c, "configs", g_string_free(g, FALSE));
    }
    set(c, "host", g_strdup(a->host));
    /* where latency and memory were measured; a run from before schema 4 ran on the CPU */
    set(c, "device", g_strdup(a->device ? a->device : "cpu"));
    {
        char *p = NULL;
        if ((rc = brief_pattern(c, brief_on_device(a) ? "measured_on_device" : "measured_on_cpu",
                                NULL, &p)) < 0)
            return rc;
        set(c, "measured_on", p);
    }
    set(c, "started", g_strdup(a->started_at));
    set(c, "finished", g_strdup(a->finished_at));
    set(c, "date", g_strdup(date));
    set(c, "version", g_strdup(a->qbrief_version));
    set(c, "commit", g_strdup(a->git_commit));
    set(c, "run_command", g_strdup(a->command_line));
    set(c, "command", g_strdup(o && o->command_line ? o->command_line : NULL));
    set(c, "confidence", brief_fmt("%.0f%%", a->confidence * 100));
    {
        char *p = NULL;
        if ((rc = brief_pattern(c, a->policy == QB_AN_POINT ? "policy_point" : "policy_interval",
                                NULL, &p)) < 0)
            return rc;
        set(c, "policy", p);
    }
    set(c, "tolerance", brief_fmt("%.1f", a->overall.tolerance));
    set(c, "resamples", brief_i64(a->resamples));
    set(c, "seed", brief_fmt("%llu", (unsigned long long)a->seed));
    return 0;
}

/* The deployment: memory and speed of the chosen plan and of the single config, and the
 * decode speedup of the config serving the largest traffic share. */
static void vars_deployment(struct brief_ctx *c)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_config *base = &a->configs[a->baseline];

    const struct qb_an_plan *plan = brief_chosen_plan(a);
    set(c, "mem_saving", brief_percent(1.0 - plan->mem_ratio));
    set(c, "mem_baseline", brief_bytes(base->mem_cost));
    set(c, "mem_plan", brief_bytes(plan->mem_cost));
    {
        double tpot, ratio;
        const struct qb_an_latency *bl = decode_setting(base, base);
        brief_plan_tpot(a, plan, &tpot, &ratio);
        set(c, "blended_cost", brief_times(ratio));
        set(c, "blended_tpot", brief_ms(tpot));
        set(c, "baseline_tpot", brief_ms(bl ? bl->tpot_p50 : base->lat_cost));
    }
    set(c, "single_config", g_strdup(a->configs[a->single_config].spec));
    set(c, "single_mem_saving", brief_percent(1.0 - a->single.mem_ratio));
    set(c, "single_cost", brief_times(a->single.tpot_ratio));
    {
        /* decode speedup of the config serving the largest traffic share */
        int64_t best = a->baseline;
        double best_share = -1;
        for (int64_t ci = 0; ci < a->n_configs; ci++) {
            double share = 0;
            for (int64_t si = 0; si < a->n_slices; si++)
                if (plan->config && plan->config[si] == ci)
                    share += a->slices[si].traffic;
            if (share > best_share)
                best_share = share, best = ci;
        }
        const struct qb_an_config *cf = &a->configs[best];
        const struct qb_an_latency *l = decode_setting(cf, base), *bl = decode_setting(base, base);
        double sp = l && bl ? bl->tpot_p50 / l->tpot_p50 : NAN;
        set(c, "speedup", brief_times(sp));
        set(c, "speedup_config", g_strdup(cf->spec));
        c->conds[C_HAS_SPEEDUP] = isfinite(sp);
    }
}

/* Calibration, the first cliff, the overall recommendation, page placeholders. */
static void vars_cliff(struct brief_ctx *c)
{
    const struct qb_analysis *a = c->a;

    set(c, "calib_file", basename_of(a->calib_file));
    set(c, "calib_sha", g_strdup(a->calib_sha256));
    set(c, "calib_sequences", brief_i64(a->calib_sequences));
    set(c, "calib_seq_len", brief_i64(a->calib_seq_len));
    set(c, "n_cliffs", brief_i64(a->n_cliffs));
    {
        const struct qb_an_cliff *cl = a->n_cliffs ? &a->cliffs[0] : NULL;
        set(c, "cliff_slice", g_strdup(cl ? a->slices[cl->slice].name : NULL));
        set(c, "cliff_above", g_strdup(cl ? a->configs[cl->above].spec : NULL));
        set(c, "cliff_below", g_strdup(cl ? a->configs[cl->below].spec : NULL));
        set(c, "cliff_loss", cl ? brief_pts(cl->loss) : NULL);
        set(c, "cliff_loss_lo", cl ? brief_pts(cl->loss_ci.lo) : NULL);
        set(c, "cliff_loss_hi", cl ? brief_pts(cl->loss_ci.hi) : NULL);
        set(c, "cliff_n", cl ? brief_i64(a->slices[cl->slice].cells[cl->below].n) : NULL);
        set(c, "cliff_overall", cl ? brief_spts(-cl->overall_loss) : NULL);
    }
    set(c, "overall_config", g_strdup(a->configs[a->overall.rec].spec));
    set(c, "overall_delta",
        a->overall.cells ? brief_spts(a->overall.cells[a->overall.rec].delta) : NULL);
    set(c, "flip_limit", brief_fmt("%g%%", a->overall.max_flips));
    set(c, "page", g_strdup("{page}"));
    set(c, "pages", g_strdup("{pages}"));
}

/* The @if conditions that follow from the analysis alone. */
static void set_conds(struct brief_ctx *c)
{
    const struct qb_analysis *a = c->a;
    int hidden = 0, undecided = 0, ppl = 0, behaviour = 0, unstable = 0;
    for (int64_t i = 0; i < a->n_cliffs; i++)
        hidden |= a->cliffs[i].hides;
    for (int64_t i = 0; i < a->n_slices; i++) {
        undecided |= slice_undecided(a, i), ppl |= a->slices[i].is_perplexity;
        behaviour |= a->slices[i].behaviour >= 0, unstable |= a->slices[i].unstable_below >= 0;
    }
    c->conds[C_HAS_BEHAVIOUR] = behaviour;
    c->conds[C_HAS_UNSTABLE] = unstable;
    c->conds[C_HAS_CLIFFS] = a->n_cliffs > 0;
    c->conds[C_HAS_HIDDEN_CLIFF] = hidden;
    c->conds[C_HAS_LATENCY] = brief_has_latency(a);
    c->conds[C_HAS_MEMORY] = brief_has_memory(a);
    c->conds[C_ON_DEVICE] = brief_on_device(a);
    c->conds[C_HAS_CALIBRATION] = a->calib_file || a->calib_sha256;
    c->conds[C_HAS_SENSITIVITY] = a->sens != NULL;
    c->conds[C_HAS_WARNINGS] = a->n_warnings > 0;
    c->conds[C_HAS_QUESTION] = a->question && *a->question;
    c->conds[C_HAS_UNDECIDED] = undecided;
    c->conds[C_HAS_PERPLEXITY] = ppl;
    c->conds[C_HAS_MISSING] = a->n_missing > 0;
    c->conds[C_ROUTED] = a->routed.n_distinct > 1;
}

int brief_make_vars(struct brief_ctx *c, const struct qb_brief_opts *o, const char *date)
{
    char *ans = NULL;
    int rc;

    if ((rc = vars_run(c, o, date)) < 0)
        return rc;
    vars_deployment(c);
    vars_cliff(c);
    set_conds(c);
    if ((rc = brief_make_caveats(c)) < 0)
        return rc;
    c->conds[C_HAS_CAVEATS] = c->n_caveats > 0;
    if ((rc = brief_make_answer(c, &ans)) < 0)
        return rc;
    set(c, "answer", ans);
    return c->cmp ? brief_compare_vars(c, o, date) : 0;
}
