/* test_analyze: qb_analyze on stores built with the store's write API, where every answer is
 * known by construction: a cliff the pooled score hides, a slice too small to decide, every
 * config failing, a perplexity slice, the two policies, exact cell numbers (Wilson from its
 * closed form, exact McNemar from the binomial), flips, KL, latency percentiles, memory
 * savings, the traffic-weighted plans, the JSON export, run lookup errors; and an info line
 * with the time to analyze 10 configs x 5,000 items. */
#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "collector/store/store.h"
#include "tests/check.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHA_M "ab12000000000000000000000000000000000000000000000000000000000000"
#define SHA_S "5e1f000000000000000000000000000000000000000000000000000000000000"
#define N_REP 5

struct cfgdef {
    const char *spec;
    double bpw;
    int64_t wbytes, rss;             /* rss < 0: no memory row */
    double tpot[N_REP], ttft[N_REP]; /* tpot[0] == 0: no latency */
};

struct slicedef {
    const char *name;
    int64_t n;
    int ppl;
};

/* Fills r (preset: no measurement) for config c, slice s, item i of the slice; setting
 * r->config_id to 0 leaves the result out. */
typedef void (*outcome_fn)(int c, int s, int64_t i, struct qb_store_result *r);

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", check_tmpdir(), name);
    return p;
}

static int build(const char *path, const char *run_name, const char *settings,
                 const struct cfgdef *cfg, int n_cfg, const struct slicedef *sl, int n_sl,
                 outcome_fn f)
{
    struct qb_store *s = NULL;
    struct qb_store_run run = {.name = run_name,
                               .qbrief_version = "0.1",
                               .host = "test",
                               .baseline_config = cfg[0].spec,
                               .settings_json = settings};
    struct qb_store_model m = {"m/x.gguf", SHA_M, "llama", "gguf", 1000};
    char sha[65];
    struct qb_store_suite su = {"suites/x.csv", sha, 0};
    int64_t run_id, suite_id, cfg_id[16], n_items = 0, *item_id = NULL;
    int rc;

    /* one suite per run name: runs sharing a suite would share its items */
    uint64_t h = 1469598103934665603ull;
    for (const char *p = run_name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(sha, sizeof sha, "%016llx%s", (unsigned long long)h, SHA_S + 16);
    for (int k = 0; k < n_sl; k++)
        n_items += sl[k].n;
    su.n_items = n_items;
    if (!(item_id = calloc((size_t)n_items, sizeof *item_id)))
        return QB_ENOMEM;
    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &run, &m, &su, &run_id, &suite_id)) < 0 ||
        (rc = qb_store_begin(s)) < 0)
        goto out;
    for (int c = 0; c < n_cfg; c++) {
        struct qb_store_config sc = {cfg[c].spec, cfg[c].bpw, cfg[c].wbytes, 1.0 + c};
        if ((rc = qb_store_put_config(s, run_id, &sc, &cfg_id[c])) < 0)
            goto out;
        if (cfg[c].rss >= 0) {
            /* a smaller context first: analysis must take the largest */
            struct qb_store_memory m0 = {128, cfg[c].wbytes, 10, cfg[c].rss / 2, NULL, NULL};
            struct qb_store_memory m1 = {512, cfg[c].wbytes, 40, cfg[c].rss, NULL, NULL};
            if ((rc = qb_store_put_memory(s, run_id, cfg_id[c], &m1)) < 0 ||
                (rc = qb_store_put_memory(s, run_id, cfg_id[c], &m0)) < 0)
                goto out;
        }
        for (int r = 0; cfg[c].tpot[0] > 0 && r < N_REP; r++) {
            struct qb_store_latency l = {128,
                                         64,
                                         1,
                                         r,
                                         cfg[c].ttft[r],
                                         cfg[c].tpot[r],
                                         cfg[c].ttft[r] + 64 * cfg[c].tpot[r],
                                         1000.0 / cfg[c].tpot[r],
                                         NULL,
                                         NULL};
            if ((rc = qb_store_put_latency(s, run_id, cfg_id[c], &l)) < 0)
                goto out;
        }
    }
    for (int k = 0, j = 0; k < n_sl; k++)
        for (int64_t i = 0; i < sl[k].n; i++, j++) {
            char key[64];
            snprintf(key, sizeof key, "%s-%lld", sl[k].name, (long long)i);
            struct qb_store_item it = {key,
                                       sl[k].name,
                                       sl[k].ppl ? "perplexity" : "choice",
                                       sl[k].ppl ? "perplexity" : "accuracy",
                                       NULL,
                                       NULL,
                                       j + 2};
            if ((rc = qb_store_put_item(s, suite_id, &it, &item_id[j])) < 0)
                goto out;
        }
    for (int c = 0; c < n_cfg; c++)
        for (int k = 0, j = 0; k < n_sl; k++)
            for (int64_t i = 0; i < sl[k].n; i++, j++) {
                struct qb_store_result r = {.config_id = cfg_id[c],
                                            .item_id = item_id[j],
                                            .correct = -1,
                                            .score = NAN,
                                            .nll = NAN,
                                            .n_tokens = -1,
                                            .mean_kl = NAN,
                                            .top1_agreement = NAN,
                                            .flipped = -1};
                f(c, k, i, &r);
                if (r.config_id && (rc = qb_store_put_result(s, run_id, &r)) < 0)
                    goto out;
            }
    rc = qb_store_commit(s);
out:
    if (rc < 0)
        fprintf(stderr, "  build: %s\n", qb_errmsg());
    qb_store_close(s);
    free(item_id);
    return rc;
}

/* build() into a fresh store named file, then qb_analyze of its run (settings: the default
 * ones); NULL, with the message, when any step fails. */
static struct qb_analysis *build_and_analyze(const char *file, const char *run_name,
                                             const struct cfgdef *cfg, int n_cfg,
                                             const struct slicedef *sl, int n_sl, outcome_fn f)
{
    const char *path = tmp_path(file);
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;
    if (build(path, run_name, NULL, cfg, n_cfg, sl, n_sl, f) < 0 ||
        qb_store_open(path, QB_STORE_READONLY, &s) < 0 || qb_analyze(s, run_name, NULL, &a) < 0)
        fprintf(stderr, "  %s: %s\n", file, qb_errmsg());
    qb_store_close(s);
    return a;
}

static int64_t slice_ix(const struct qb_analysis *a, const char *name)
{
    for (int64_t s = 0; s < a->n_slices; s++)
        if (!strcmp(a->slices[s].name, name))
            return s;
    return -1;
}

static int64_t cfg_ix(const struct qb_analysis *a, const char *spec)
{
    for (int64_t c = 0; c < a->n_configs; c++)
        if (!strcmp(a->configs[c].spec, spec))
            return c;
    return -1;
}

static int has_warning(const struct qb_analysis *a, const char *part)
{
    for (int64_t i = 0; i < a->n_warnings; i++)
        if (strstr(a->warnings[i], part))
            return 1;
    fprintf(stderr, "  no warning contains '%s'; warnings:\n", part);
    for (int64_t i = 0; i < a->n_warnings; i++)
        fprintf(stderr, "    %s\n", a->warnings[i]);
    return 0;
}

/* Wilson score interval from its closed form (Wilson 1927), independent of stats.c */
static void wilson_ref(double k, double n, double z, double *lo, double *hi)
{
    double p = k / n, d = 1 + z * z / n, c = (p + z * z / (2 * n)) / d;
    double h = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
    *lo = c - h;
    *hi = c + h;
}

/* --- (1) a cliff the pooled score hides -------------------------------------------------- */

/* f32 > w8 > w4g128. chat, json, retrieval (600 items each) hold at w4 (2 flips each way);
 * arith (100 items) loses 20 points at w4 (items with i % 10 in {0, 1} go wrong). Baseline
 * accuracy 80% (i % 10 < 8). Pooled at w4: -20/1900 = -1.05 points, inside 2. */
static const struct cfgdef cliff_cfg[] = {
    {"f32", 32, 4000, 5000, {40, 42, 41, 45, 39}, {100, 110, 105, 120, 95}},
    {"w8", 8.5, 1100, 2000, {20, 21, 22, 19, 20}, {60, 62, 61, 65, 59}},
    {"w4g128", 4.5, 600, 1500, {10, 12, 11, 13, 9}, {30, 31, 32, 33, 34}},
};
static const struct slicedef cliff_sl[] = {
    {"chat", 600, 0}, {"json", 600, 0}, {"retrieval", 600, 0}, {"arith", 100, 0}};
static const char cliff_settings[] =
    "{\"title\":\"Quantizing x for CPU\",\"question\":\"which "
    "config?\",\"template\":\"leadership\","
    "\"tolerances\":{\"default\":2.0,\"slices\":{\"arith\":3.0}},"
    "\"traffic\":{\"chat\":0.4,\"json\":0.3,\"retrieval\":0.2,\"arith\":0.1},"
    "\"policy\":{\"confidence\":0.95,\"bound\":\"interval\"},\"calibration\":null}";

static void cliff_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    int base = i % 10 < 8, v = base;
    if (c == 2 && s < 3) {
        if (i == 0 || i == 1)
            v = 0; /* lost */
        if (i == 8 || i == 9)
            v = 1; /* gained */
    }
    if (c == 2 && s == 3 && i % 10 < 2)
        v = 0;
    r->correct = v;
    r->nll = 1.0;
    r->n_tokens = 10;
    if (c) {
        r->mean_kl = 0.001 * c * (double)(1 + i % 5);
        r->top1_agreement = 0.9;
        r->flipped = v != base;
    }
}

static struct qb_analysis *cliff_analysis(const char *file)
{
    const char *path = tmp_path(file);
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;
    if (build(path, "cliff", cliff_settings, cliff_cfg, 3, cliff_sl, 4, cliff_outcome) < 0)
        return NULL;
    if (qb_store_open(path, QB_STORE_READONLY, &s) < 0 || qb_analyze(s, "cliff", NULL, &a) < 0)
        fprintf(stderr, "  analyze: %s\n", qb_errmsg());
    qb_store_close(s);
    return a;
}

static void test_hidden_cliff(void)
{
    struct qb_analysis *a = cliff_analysis("cliff.db");
    CHECK(a != NULL);
    if (!a)
        return;
    int64_t f32 = cfg_ix(a, "f32"), w8 = cfg_ix(a, "w8"), w4 = cfg_ix(a, "w4g128");
    int64_t arith = slice_ix(a, "arith");
    CHECK(a->n_configs == 3 && f32 == 0 && w8 == 1 && w4 == 2); /* the ladder */
    CHECK(a->baseline == f32 && a->configs[f32].is_baseline && !a->configs[w4].is_baseline);
    CHECK(a->n_slices == 4 && arith == 3 && !strcmp(a->slices[0].name, "chat"));
    CHECK(a->title && !strcmp(a->title, "Quantizing x for CPU"));
    CHECK(a->template_name && !strcmp(a->template_name, "leadership"));
    CHECK_NEAR(a->confidence, 0.95, 1e-12);
    CHECK(a->policy == QB_AN_INTERVAL && a->resamples == QB_AN_RESAMPLES);

    /* one cliff, arith between w8 and w4, hidden by the pooled score */
    CHECK(a->n_cliffs == 1);
    if (a->n_cliffs >= 1) {
        const struct qb_an_cliff *cl = &a->cliffs[0];
        CHECK(cl->slice == arith && cl->above == w8 && cl->below == w4);
        CHECK(cl->hides == 1);
        CHECK_NEAR(cl->loss, 0.20, 1e-12);
        CHECK(cl->loss_ci.lo > 0.1 && cl->loss_ci.hi < 0.3);
        CHECK_NEAR(cl->overall_loss, 20.0 / 1900, 1e-12);
    }
    CHECK(a->slices[arith].cliff == 0);
    CHECK(a->overall_cliff.below == -1 && a->overall.cliff == -1);
    CHECK(a->overall.n_items == 1900 && a->overall.cells[w4].within);

    /* recommendations */
    for (int64_t s = 0; s < 3; s++) {
        CHECK(a->slices[s].rec == w4);
        CHECK(a->slices[s].verdict == QB_VERDICT_HOLDS);
        CHECK(a->slices[s].cliff == -1);
    }
    CHECK(a->slices[arith].rec == w8);
    CHECK(a->slices[arith].verdict == QB_VERDICT_HOLDS);
    CHECK(a->overall.rec == w4 && a->overall.verdict == QB_VERDICT_HOLDS);
    CHECK_NEAR(a->slices[arith].tolerance, 3.0, 0);
    CHECK_NEAR(a->slices[0].tolerance, 2.0, 0);
    CHECK_NEAR(a->overall.tolerance, 2.0, 0);

    /* the known arith x w4 cell: 60 both right, 20 lost, 20 both wrong */
    const struct qb_an_cell *e = &a->slices[arith].cells[w4];
    double lo, hi;
    CHECK(e->n == 100 && e->n_correct == 60 && e->flips_lost == 20 && e->flips_gained == 0);
    CHECK_NEAR(e->acc, 0.60, 1e-12);
    wilson_ref(60, 100, 1.959963984540054, &lo, &hi);
    CHECK_NEAR(e->acc_ci.lo, lo, 1e-7);
    CHECK_NEAR(e->acc_ci.hi, hi, 1e-7);
    CHECK_NEAR(e->acc_ci.lo, 0.5020026, 1e-7); /* the closed form evaluated in Python */
    CHECK_NEAR(e->delta, -0.20, 1e-12);
    CHECK_NEAR(e->mcnemar_p, 2.0 * pow(0.5, 20), 1e-15); /* 2 P(X <= 0), X ~ B(20, 1/2) */
    CHECK_NEAR(e->flip_rate, 0.20, 1e-12);
    CHECK(e->delta_ci.hi < 0 && e->delta_ci.lo < -0.2 && e->delta_ci.hi > -0.2);
    CHECK(e->significant_loss && !e->within);
    /* MDE = (z_.975 + z_.8) sqrt(flip rate / n) = 12.5 points: underpowered for its own 3-point
     * tolerance, yet the loss it found is significant, so the verdict stays CLIFF */
    CHECK_NEAR(e->mde, (1.959963984540054 + 0.8416212335729143) * sqrt(0.2 / 100), 1e-9);
    CHECK(e->underpowered);
    CHECK_NEAR(e->kl_mean, 0.006, 1e-12); /* 0.002 * mean(1..5) */
    CHECK_NEAR(e->kl_p99, 0.010, 1e-12);
    CHECK_NEAR(e->top1, 0.9, 1e-12);
    CHECK(isnan(e->ppl) && isnan(e->ppl_ratio));
    /* baseline cell */
    const struct qb_an_cell *b = &a->slices[arith].cells[f32];
    CHECK(b->n == 100 && b->n_correct == 80 && b->within && !b->significant_loss);
    CHECK_NEAR(b->acc, 0.80, 1e-12);
    CHECK_NEAR(b->mcnemar_p, 1.0, 0);
    CHECK(isnan(b->kl_mean) && b->delta == 0);
    /* a holding cell: 2 lost, 2 gained */
    e = &a->slices[0].cells[w4];
    CHECK(e->n == 600 && e->flips_lost == 2 && e->flips_gained == 2 && e->delta == 0);
    CHECK_NEAR(e->mcnemar_p, 1.0, 1e-12); /* min(1, 2 P(X <= 2)), X ~ B(4, 1/2) = 1.375 */
    CHECK(e->within && !e->significant_loss && !e->underpowered);
    CHECK_NEAR(e->mde, (1.959963984540054 + 0.8416212335729143) * sqrt(4.0 / 600 / 600), 1e-9);
    /* overall pooled cell at w4 */
    e = &a->overall.cells[w4];
    CHECK(e->n == 1900 && e->flips_lost == 26 && e->flips_gained == 6);
    CHECK_NEAR(e->delta, -20.0 / 1900, 1e-12);

    /* latency: percentiles of known samples (type 7) and speedups */
    const struct qb_an_config *c0 = &a->configs[f32], *c2 = &a->configs[w4];
    CHECK(c0->n_lat == 1 && c2->n_lat == 1);
    if (c0->n_lat == 1 && c2->n_lat == 1) {
        CHECK(c0->lat[0].prompt_len == 128 && c0->lat[0].gen_len == 64 &&
              c0->lat[0].n_samples == N_REP);
        CHECK_NEAR(c0->lat[0].tpot_p50, 41, 1e-12);
        CHECK_NEAR(c0->lat[0].tpot_p95, 44.4, 1e-9); /* 42 + 0.8 * (45 - 42) */
        CHECK_NEAR(c0->lat[0].ttft_p50, 105, 1e-12);
        CHECK_NEAR(c2->lat[0].tpot_p50, 11, 1e-12);
        CHECK_NEAR(c2->lat[0].speedup_tpot, 41.0 / 11.0, 1e-12);
        CHECK_NEAR(c2->lat[0].speedup_ttft, 105.0 / 32.0, 1e-12);
        CHECK_NEAR(c0->lat[0].speedup_tpot, 1.0, 1e-12);
        CHECK_NEAR(c2->lat[0].decode_tok_s_p50, 1000.0 / 11.0, 1e-9);
    }
    /* memory: the largest context's row; the cost is weight bytes, savings against the baseline */
    CHECK(a->mem_cost_rss == 0);
    CHECK(c2->peak_rss_bytes == 1500 && c2->mem_context == 512 && c2->kv_cache_bytes == 40);
    CHECK_NEAR(c2->mem_cost, 600, 0);
    CHECK_NEAR(c2->mem_saving, 1 - 600.0 / 4000, 1e-12);
    CHECK_NEAR(a->configs[w8].mem_saving, 1 - 1100.0 / 4000, 1e-12);
    CHECK_NEAR(c2->lat_cost, 11, 1e-12);
    CHECK_NEAR(c2->quant_seconds, 3.0, 0);
    CHECK(c2->n_results == 1900);

    /* plans: single = w8 (the only cheaper config inside everywhere); routed = w4 + w8 */
    CHECK(a->single_config == w8);
    CHECK(a->single.n_distinct == 1 && a->single.config[arith] == w8);
    CHECK_NEAR(a->single.mem_cost, 1100, 0);
    CHECK_NEAR(a->single.mem_ratio, 1100.0 / 4000, 1e-12);
    CHECK_NEAR(a->single.tpot_ms, 20, 1e-12);
    CHECK_NEAR(a->single.tpot_ratio, 20.0 / 41.0, 1e-12);
    CHECK(a->routed.n_distinct == 2 && a->routed.config[0] == w4 && a->routed.config[arith] == w8);
    CHECK_NEAR(a->routed.mem_cost, 1700, 0);
    CHECK_NEAR(a->routed.mem_ratio, 1700.0 / 4000, 1e-12);
    CHECK_NEAR(a->routed.tpot_ms, 0.9 * 11 + 0.1 * 20, 1e-12);
    CHECK_NEAR(a->routed.tpot_ratio, 11.9 / 41, 1e-12);
    CHECK_NEAR(a->slices[0].traffic, 0.4, 1e-12);

    /* Pareto (delta vs memory): chat: f32 and w8 are dominated by w4 (same delta, less memory) */
    CHECK(a->slices[0].cells[w4].pareto && !a->slices[0].cells[w8].pareto &&
          !a->slices[0].cells[f32].pareto);
    CHECK(a->slices[arith].cells[w4].pareto && a->slices[arith].cells[w8].pareto &&
          !a->slices[arith].cells[f32].pareto);

    /* nothing missing; no calibrated method, so no calibration warning */
    CHECK(a->n_results == 3 * 1900 && a->n_missing == 0 && a->n_failed == 0);
    for (int64_t i = 0; i < a->n_warnings; i++)
        fprintf(stderr, "  warning: %s\n", a->warnings[i]);
    CHECK(a->n_warnings == 0);
    qb_analysis_free(a);
}

/* --- (2) too small to decide; policies; skipped results ---------------------------------- */

/* big (300 items) holds; tiny (8 items) has no flips; close (200 items) loses 1.5 points
 * (5 lost, 2 gained): inside 2 by the point estimate, not by the interval. */
static const struct cfgdef small_cfg[] = {
    {"f16", 16, 2000, -1, {0}, {0}},
    {"w4g32", 4.5, 600, -1, {0}, {0}},
};
static const struct slicedef small_sl[] = {{"big", 300, 0}, {"tiny", 8, 0}, {"close", 200, 0}};

static void small_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    int base = i % 2, v = base;
    if (c == 1 && s == 2) {
        if (i == 1 || i == 3 || i == 5 || i == 7 || i == 9)
            v = 0;
        if (i == 0 || i == 2)
            v = 1;
    }
    if (c == 1 && s == 0 && i >= 290) { /* the last 10 big items: 4 skipped, 6 missing */
        if (i < 294)
            r->status = "skipped", r->error = "does not fit the context";
        else
            r->config_id = 0;
        return;
    }
    r->correct = v;
}

static void test_too_small_and_policy(void)
{
    const char *path = tmp_path("small.db");
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL, *p = NULL;
    struct qb_an_opts o = QB_AN_OPTS_INIT;

    CHECK(build(path, "small", "{\"tolerances\":{\"default\":2.0}}", small_cfg, 2, small_sl, 3,
                small_outcome) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    CHECK(qb_analyze(s, NULL, NULL, &a) == 0); /* NULL: the newest (only) run */
    o.policy = QB_AN_POINT;
    CHECK(qb_analyze(s, "small", &o, &p) == 0);
    qb_store_close(s);
    if (!a || !p) {
        qb_analysis_free(a);
        qb_analysis_free(p);
        return;
    }
    int64_t big = slice_ix(a, "big"), tiny = slice_ix(a, "tiny"), close = slice_ix(a, "close");
    int64_t w4 = cfg_ix(a, "w4g32");
    CHECK(a->slices[tiny].n_items == 8 && a->slices[tiny].cells[w4].n == 8);
    CHECK(a->slices[tiny].verdict == QB_VERDICT_UNDECIDED);
    CHECK(has_warning(a, "slice 'tiny' has 8 items: too few to decide"));
    CHECK(a->slices[big].verdict == QB_VERDICT_HOLDS && a->slices[big].rec == w4);
    CHECK(a->slices[big].cells[w4].n == 290);

    /* close: interval policy -> not within (baseline kept); point policy -> within */
    const struct qb_an_cell *e = &a->slices[close].cells[w4];
    CHECK(e->flips_lost == 5 && e->flips_gained == 2);
    CHECK_NEAR(e->delta, -0.015, 1e-12);
    CHECK(!e->within && !e->significant_loss && e->underpowered);
    CHECK_NEAR(e->mcnemar_p, 2 * (1.0 + 7 + 21) / 128, 1e-12); /* 2 P(X <= 2), X ~ B(7, 1/2) */
    CHECK(a->slices[close].rec == a->baseline);
    CHECK(a->slices[close].verdict == QB_VERDICT_UNDECIDED);
    CHECK(has_warning(a, "slice 'close' cannot detect a 2-point loss at w4g32"));
    CHECK(a->single_config == a->baseline);
    CHECK(p->policy == QB_AN_POINT);
    CHECK(p->slices[close].cells[w4].within && p->slices[close].rec == w4);
    CHECK(p->single_config == w4);

    /* skipped and missing results; traffic from the item counts; default tolerances */
    CHECK(a->n_failed == 4 && a->n_missing == 10);
    CHECK(a->n_results == 2 * 508 - 10);
    CHECK(has_warning(a, "10 of 1016 (config, item) results are missing"));
    CHECK(has_warning(a, "4 results were skipped or failed"));
    CHECK_NEAR(a->slices[big].traffic, 300.0 / 508, 1e-12);
    CHECK(a->mem_cost_rss == 0);
    CHECK_NEAR(a->configs[w4].mem_cost, 600, 0);
    CHECK(isnan(a->configs[w4].lat_cost) && isnan(a->routed.tpot_ms));
    CHECK(a->configs[w4].n_lat == 0);
    qb_analysis_free(a);
    qb_analysis_free(p);
}

/* --- (3) every config fails ------------------------------------------------------------- */

static const struct cfgdef fail_cfg[] = {
    {"f32", 32, 4000, 5000, {40, 40, 40, 40, 40}, {100, 100, 100, 100, 100}},
    {"w8", 8.5, 1100, 2000, {20, 20, 20, 20, 20}, {60, 60, 60, 60, 60}},
    {"w4g128", 4.5, 600, 1500, {10, 10, 10, 10, 10}, {30, 30, 30, 30, 30}},
};
static const struct slicedef fail_sl[] = {{"a", 300, 0}, {"b", 300, 0}};

static void fail_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    (void)s;
    r->correct = (i % 10 < 8) && !(c >= 1 && i % 10 == 0) && !(c == 2 && i % 10 == 1);
}

static void test_everything_fails(void)
{
    struct qb_analysis *a =
        build_and_analyze("fail.db", "fail", fail_cfg, 3, fail_sl, 2, fail_outcome);
    CHECK(a != NULL);
    if (!a)
        return;
    for (int64_t k = 0; k < a->n_slices; k++) {
        CHECK(a->slices[k].rec == a->baseline);
        CHECK(a->slices[k].verdict == QB_VERDICT_BASELINE);
        CHECK_NEAR(a->slices[k].tolerance, QB_AN_DEFAULT_TOLERANCE, 0);
        CHECK(a->slices[k].cells[1].flips_lost == 30 && a->slices[k].cells[2].flips_lost == 60);
    }
    CHECK(a->n_cliffs == 2);
    if (a->n_cliffs == 2)
        CHECK(a->cliffs[0].above == a->baseline && a->cliffs[0].below == 1 &&
              a->cliffs[0].slice == 0 && a->cliffs[1].slice == 1 && !a->cliffs[0].hides);
    CHECK(a->single_config == a->baseline);
    CHECK(a->single.n_distinct == 1 && a->routed.n_distinct == 1);
    CHECK_NEAR(a->single.mem_ratio, 1.0, 0);
    CHECK_NEAR(a->routed.tpot_ratio, 1.0, 1e-12);
    CHECK(a->overall.rec == a->baseline && a->overall.verdict == QB_VERDICT_BASELINE);
    CHECK(a->overall_cliff.below == 1 && a->overall_cliff.slice == -1);
    CHECK_NEAR(a->overall_cliff.loss, 0.10, 1e-12);
    CHECK(a->policy == QB_AN_INTERVAL && fabs(a->confidence - 0.95) < 1e-12);
    qb_analysis_free(a);
}

/* --- a slice the baseline itself fails -------------------------------------------------- */

/* "good" (300 items, 80%) holds down to w4g128; "broken" (300 items) scores 1% under every
 * config, w4g128 losing its 3 correct items: not judged, no cliff, and it constrains
 * neither deployment plan. */
static const struct slicedef broken_sl[] = {{"good", 300, 0}, {"broken", 300, 0}};

static void broken_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    r->correct = s == 0 ? i % 10 < 8 : i % 100 == 0 && c < 2;
}

static void all_broken_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    (void)s;
    r->correct = i % 100 == 0 && c < 2;
}

static void test_baseline_fails(void)
{
    struct qb_analysis *a =
        build_and_analyze("broken.db", "broken", fail_cfg, 3, broken_sl, 2, broken_outcome);
    CHECK(a != NULL);
    if (!a)
        return;
    int64_t good = slice_ix(a, "good"), broken = slice_ix(a, "broken"), w4 = cfg_ix(a, "w4g128");
    CHECK(good >= 0 && broken >= 0 && w4 >= 0);
    if (good < 0 || broken < 0 || w4 < 0) {
        qb_analysis_free(a);
        return;
    }
    CHECK(a->slices[good].rec == w4 && a->slices[good].verdict == QB_VERDICT_HOLDS);
    CHECK(a->slices[broken].rec == a->baseline && a->slices[broken].verdict == QB_VERDICT_FAILS);
    CHECK(a->slices[broken].cliff == -1 && a->n_cliffs == 0);
    CHECK(strcmp(qb_an_verdict_name(QB_VERDICT_FAILS), "baseline_fails") == 0);
    /* the broken slice neither keeps the baseline loaded nor blocks the single config */
    CHECK(a->single_config == w4);
    CHECK(a->routed.n_distinct == 1 && a->routed.config[broken] == w4);
    CHECK_NEAR(a->routed.mem_ratio, a->configs[w4].mem_cost / a->configs[a->baseline].mem_cost,
               1e-12);
    CHECK(has_warning(a, "slice 'broken': f32 scores 1.0% (n=300)"));
    CHECK(has_warning(a, "not judged"));
    qb_analysis_free(a);

    /* every slice broken: nothing to serve on, so the plans keep the baseline */
    a = build_and_analyze("allbroken.db", "allbroken", fail_cfg, 3, broken_sl, 2,
                          all_broken_outcome);
    CHECK(a != NULL);
    if (!a)
        return;
    for (int64_t k = 0; k < a->n_slices; k++)
        CHECK(a->slices[k].verdict == QB_VERDICT_FAILS && a->slices[k].rec == a->baseline);
    CHECK(a->single_config == a->baseline);
    CHECK(a->routed.n_distinct == 1 && a->routed.config[0] == a->baseline);
    qb_analysis_free(a);
}

/* --- configs of the same size share a route ---------------------------------------------- */

/* w4g128 and w4g128-awq have the same bytes; w4g128 measures faster, so it comes first in
 * cost order. "calc" (300 items) breaks at w4g128 and holds at w4g128-awq; "chat" holds at
 * both, so its recommendation is w4g128 -- but routing calc to w4g128-awq and chat to
 * w4g128 would load two configs of one size, so chat shares w4g128-awq. "code" holds only at
 * f32 and w8 (more bytes), which stays in the plan. */
static const struct cfgdef twin_cfg[] = {
    {"f32", 32, 4000, 5000, {40, 40, 40, 40, 40}, {100, 100, 100, 100, 100}},
    {"w8", 8.5, 1100, 2000, {20, 20, 20, 20, 20}, {60, 60, 60, 60, 60}},
    {"w4g128", 4.5, 600, 1500, {10, 10, 10, 10, 10}, {30, 30, 30, 30, 30}},
    {"w4g128-awq", 4.5, 600, 1500, {11, 11, 11, 11, 11}, {31, 31, 31, 31, 31}},
};
static const struct slicedef twin_sl[] = {{"calc", 300, 0}, {"chat", 300, 0}, {"code", 300, 0}};

static void twin_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    r->correct = i % 10 < 8;
    if ((s == 0 && c == 2) || (s == 2 && c >= 2))
        r->correct = i % 10 < 5;
}

static void test_same_size_shares(void)
{
    struct qb_analysis *a =
        build_and_analyze("twin.db", "twin", twin_cfg, 4, twin_sl, 3, twin_outcome);
    CHECK(a != NULL);
    if (!a)
        return;
    int64_t calc = slice_ix(a, "calc"), chat = slice_ix(a, "chat"), code = slice_ix(a, "code");
    int64_t w8 = cfg_ix(a, "w8"), w4 = cfg_ix(a, "w4g128"), awq = cfg_ix(a, "w4g128-awq");
    CHECK(calc >= 0 && chat >= 0 && code >= 0 && w8 >= 0 && w4 >= 0 && awq >= 0);
    if (calc < 0 || chat < 0 || code < 0 || w8 < 0 || w4 < 0 || awq < 0) {
        qb_analysis_free(a);
        return;
    }
    /* the recommendations are unchanged: each slice's cheapest config that holds */
    CHECK(a->slices[calc].rec == awq && a->slices[chat].rec == w4 && a->slices[code].rec == w8);
    CHECK(a->routed.n_distinct == 2);
    CHECK(a->routed.config[calc] == awq && a->routed.config[chat] == awq &&
          a->routed.config[code] == w8);
    CHECK_NEAR(a->routed.mem_cost, 600 + 1100, 0);
    CHECK(a->single_config == w8);
    qb_analysis_free(a);
}

/* --- a perplexity slice ---------------------------------------------------------------- */

static const struct slicedef ppl_sl[] = {{"qa", 200, 0}, {"wiki", 39, 1}};

static void ppl_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    if (s == 0) {
        r->correct = i % 4 != 0;
        return;
    }
    r->n_tokens = 100 + 50 * (i % 2);
    r->nll = 2.0 + 0.1 * (double)(i % 2);
    if (c == 1)
        r->nll += 0.002 + 0.001 * (double)(i % 3 - 1); /* +0.2% perplexity: holds */
    if (c == 2)
        r->nll += 0.05; /* +5.1% perplexity: a significant loss */
}

static void test_perplexity(void)
{
    const char *path = tmp_path("ppl.db");
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;

    CHECK(build(path, "ppl", "{\"tolerances\":{\"default\":2.0}}", cliff_cfg, 3, ppl_sl, 2,
                ppl_outcome) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    CHECK(qb_analyze(s, "ppl", NULL, &a) == 0);
    qb_store_close(s);
    if (!a)
        return;
    int64_t wiki = slice_ix(a, "wiki");
    CHECK(a->slices[wiki].is_perplexity && !a->slices[0].is_perplexity);
    CHECK(a->overall.n_items == 200); /* perplexity items never enter the pooled row */
    double sb = 0, st = 0, s1 = 0;
    for (int i = 0; i < 39; i++) {
        double t = 100 + 50 * (i % 2), nb = 2.0 + 0.1 * (i % 2);
        sb += nb * t;
        s1 += (nb + 0.002 + 0.001 * (i % 3 - 1)) * t;
        st += t;
    }
    const struct qb_an_cell *b = &a->slices[wiki].cells[0], *e1 = &a->slices[wiki].cells[1],
                            *e2 = &a->slices[wiki].cells[2];
    CHECK(b->n == 39 && e2->n == 39 && isnan(e2->acc) && isnan(e2->mcnemar_p));
    CHECK_NEAR(b->ppl, exp(sb / st), 1e-9);
    CHECK_NEAR(b->ppl_ratio, 1.0, 1e-12);
    CHECK_NEAR(e1->ppl_ratio, exp((s1 - sb) / st), 1e-9);
    CHECK_NEAR(e2->ppl_ratio, exp(0.05), 1e-9);
    CHECK_NEAR(e2->delta, -expm1(0.05), 1e-9);
    CHECK_NEAR(e2->delta_ci.lo, -expm1(0.05), 1e-9); /* every item +0.05: a point interval */
    CHECK(e2->significant_loss && !e2->within);
    CHECK(e1->within && !e1->significant_loss);
    CHECK(a->slices[wiki].rec == 1 && a->slices[wiki].verdict == QB_VERDICT_HOLDS);
    CHECK(a->n_cliffs == 1 && a->cliffs[0].slice == wiki && a->cliffs[0].below == 2);
    CHECK(a->slices[0].rec == 2 && a->slices[0].verdict == QB_VERDICT_HOLDS);
    qb_analysis_free(a);
}

/* --- JSON export ------------------------------------------------------------------------ */

static void test_json(void)
{
    struct qb_analysis *a = cliff_analysis("json.db");
    char *js = NULL;
    json_t *root = NULL, *arith = NULL, *cell;
    json_error_t err;

    CHECK(a != NULL);
    if (!a)
        return;
    CHECK(qb_analysis_json(a, &js) == 0 && js);
    CHECK(js && (root = json_loads(js, 0, &err)) != NULL);
    if (root) {
        json_t *sl = json_object_get(root, "slices");
        for (size_t i = 0; i < json_array_size(sl); i++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(sl, i), "name")), "arith"))
                arith = json_array_get(sl, i);
        CHECK(arith != NULL);
        cell = json_array_get(json_object_get(arith, "cells"), 2);
        CHECK(!strcmp(json_string_value(json_object_get(cell, "config")), "w4g128"));
        CHECK(json_integer_value(json_object_get(cell, "n")) == 100);
        CHECK(json_integer_value(json_object_get(cell, "flips_lost")) == 20);
        CHECK_NEAR(json_number_value(json_object_get(cell, "acc")), 0.6, 1e-12);
        CHECK_NEAR(json_number_value(json_array_get(json_object_get(cell, "acc_ci"), 0)),
                   a->slices[3].cells[2].acc_ci.lo, 1e-12);
        CHECK_NEAR(json_number_value(json_object_get(cell, "mcnemar_p")), 2.0 * pow(0.5, 20),
                   1e-15);
        CHECK(json_is_true(json_object_get(cell, "significant_loss")));
        CHECK(!strcmp(json_string_value(json_object_get(arith, "verdict")), "holds"));
        CHECK(!strcmp(json_string_value(json_object_get(arith, "rec")), "w8"));
        /* the baseline's KL is NaN: written as null */
        CHECK(json_is_null(
            json_object_get(json_array_get(json_object_get(arith, "cells"), 0), "kl_mean")));
        CHECK(json_is_true(
            json_object_get(json_array_get(json_object_get(root, "cliffs"), 0), "hides")));
        CHECK_NEAR(json_number_value(json_object_get(json_object_get(root, "routed"), "tpot_ms")),
                   11.9, 1e-12);
        CHECK(!strcmp(json_string_value(json_object_get(
                          json_object_get(json_object_get(root, "routed"), "configs"), "arith")),
                      "w8"));
        CHECK(json_array_size(json_object_get(root, "configs")) == 3);
    }
    json_decref(root);
    free(js);
    qb_analysis_free(a);
}

/* --- lookup errors and the newest run ---------------------------------------------------- */

static void none_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    (void)s;
    (void)i;
    if (c == 0)
        r->config_id = 0; /* the baseline has nothing */
    else
        r->correct = 1;
}

static void test_lookup(void)
{
    const char *path = tmp_path("lookup.db");
    struct qb_store *s = NULL;
    struct qb_analysis *a = (struct qb_analysis *)&a; /* must be reset to NULL on failure */

    CHECK(build(path, "first", NULL, small_cfg, 2, small_sl, 3, small_outcome) == 0);
    CHECK(build(path, "second", NULL, cliff_cfg, 3, cliff_sl, 4, cliff_outcome) == 0);
    CHECK(build(path, "nobase", NULL, small_cfg, 2, small_sl, 1, none_outcome) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);

    CHECK(qb_analyze(s, "nope", NULL, &a) == QB_EINVAL && a == NULL);
    CHECK(strstr(qb_errmsg(), "no run named 'nope'") && strstr(qb_errmsg(), "'second'"));
    CHECK(qb_analyze(s, "nobase", NULL, &a) == QB_EINVAL && a == NULL);
    CHECK(strstr(qb_errmsg(), "no results for its baseline 'f16'"));
    struct qb_an_opts o = QB_AN_OPTS_INIT;
    o.confidence = 1.5;
    CHECK(qb_analyze(s, "first", &o, &a) == QB_EINVAL && a == NULL);

    /* NULL: the run started last */
    CHECK(qb_analyze(s, NULL, NULL, &a) == QB_EINVAL); /* that is "nobase" */
    CHECK(qb_analyze(s, "second", NULL, &a) == 0 && a && !strcmp(a->run_name, "second"));
    qb_analysis_free(a);
    a = NULL;
    CHECK(qb_analyze(s, "first", NULL, &a) == 0 && a && a->n_slices == 3);
    qb_analysis_free(a);
    qb_analysis_free(NULL);
    qb_store_close(s);
}

/* --- calibration warning ---------------------------------------------------------------- */

static const struct cfgdef gptq_cfg[] = {
    {"f32", 32, 4000, -1, {0}, {0}},
    {"w4g128-gptq", 4.5, 600, -1, {0}, {0}},
};

static void test_calibration_warning(void)
{
    const char *path = tmp_path("calib.db");
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL, *b = NULL;

    CHECK(build(path, "gptq", NULL, gptq_cfg, 2, small_sl, 1, small_outcome) == 0);
    CHECK(build(path, "gptq2",
                "{\"calibration\":{\"file\":\"c.txt\",\"sha256\":\"" SHA_S "\","
                "\"sequences\":128,\"seq_len\":512}}",
                gptq_cfg, 2, small_sl, 1, small_outcome) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    CHECK(qb_analyze(s, "gptq", NULL, &a) == 0);
    CHECK(qb_analyze(s, "gptq2", NULL, &b) == 0);
    qb_store_close(s);
    if (a) {
        CHECK(has_warning(a, "'w4g128-gptq' uses a calibrated method"));
        CHECK(a->calib_sha256 == NULL && a->calib_file == NULL);
    }
    if (b) {
        CHECK(b->calib_file && !strcmp(b->calib_file, "c.txt"));
        CHECK(b->calib_sequences == 128 && b->calib_seq_len == 512);
        for (int64_t i = 0; i < b->n_warnings; i++)
            CHECK(!strstr(b->warnings[i], "calibrated"));
    }
    qb_analysis_free(a);
    qb_analysis_free(b);
}

/* --- settings that cannot be used are reported and replaced by the defaults ------------- */

static void test_bad_settings(void)
{
    const char *path = tmp_path("bad.db");
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL, *b = NULL;

    CHECK(build(path, "bad",
                "{\"title\":7,\"tolerances\":{\"default\":\"x\",\"slices\":{\"big\":-3}},"
                "\"traffic\":{\"nope\":1,\"tiny\":\"a\",\"big\":3,\"close\":1},"
                "\"policy\":{\"confidence\":7,\"bound\":\"weird\"}}",
                small_cfg, 2, small_sl, 3, small_outcome) == 0);
    CHECK(build(path, "scaled", "{\"traffic\":{\"big\":0,\"tiny\":0}}", small_cfg, 2, small_sl, 3,
                small_outcome) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    CHECK(qb_analyze(s, "bad", NULL, &a) == 0);
    CHECK(qb_analyze(s, "scaled", NULL, &b) == 0);
    qb_store_close(s);
    if (a) {
        CHECK(a->title == NULL && a->policy == QB_AN_INTERVAL);
        CHECK_NEAR(a->confidence, 0.95, 0);
        CHECK_NEAR(a->slices[0].tolerance, QB_AN_DEFAULT_TOLERANCE, 0);
        CHECK_NEAR(a->slices[0].traffic, 0.75, 1e-12); /* 3 : 0 : 1, scaled */
        CHECK_NEAR(a->slices[1].traffic, 0.0, 0);
        CHECK_NEAR(a->slices[2].traffic, 0.25, 1e-12);
        CHECK(has_warning(a, "the default tolerance is not a number"));
        CHECK(has_warning(a, "the tolerance of slice 'big' is not a number >= 0"));
        CHECK(has_warning(a, "names slice 'nope', which the suite does not have"));
        CHECK(has_warning(a, "traffic share of slice 'tiny' is not a number"));
        CHECK(has_warning(a, "sum to 4, not 1"));
        CHECK(has_warning(a, "policy confidence 7 is not between 0 and 1"));
        CHECK(has_warning(a, "unknown policy bound 'weird'"));
    }
    if (b) { /* no share for any slice: back to the item counts */
        CHECK(has_warning(b, "gives no share to any slice"));
        CHECK_NEAR(b->slices[0].traffic, 300.0 / 508, 1e-12);
    }
    qb_analysis_free(a);
    qb_analysis_free(b);
}

/* --- timing: 10 configs x 5,000 items (info only, never pass/fail) ----------------------- */

static const struct cfgdef big_cfg[] = {
    {"f32", 32, 40000, 50000, {40, 41, 42, 43, 44}, {100, 101, 102, 103, 104}},
    {"bf16", 16, 20000, 30000, {30, 31, 32, 33, 34}, {90, 91, 92, 93, 94}},
    {"f16", 16, 20001, 30001, {30, 31, 32, 33, 34}, {90, 91, 92, 93, 94}},
    {"fp8", 8.2, 10000, 16000, {25, 26, 27, 28, 29}, {80, 81, 82, 83, 84}},
    {"w8", 8.5, 10500, 16500, {24, 25, 26, 27, 28}, {80, 81, 82, 83, 84}},
    {"w8a8", 8.6, 10600, 16600, {20, 21, 22, 23, 24}, {70, 71, 72, 73, 74}},
    {"w4g128", 4.25, 5500, 9000, {15, 16, 17, 18, 19}, {60, 61, 62, 63, 64}},
    {"w4g32", 4.5, 6000, 9500, {15, 16, 17, 18, 19}, {60, 61, 62, 63, 64}},
    {"w3g64", 3.5, 4500, 8000, {14, 15, 16, 17, 18}, {60, 61, 62, 63, 64}},
    {"w2g32", 2.5, 3500, 7000, {13, 14, 15, 16, 17}, {60, 61, 62, 63, 64}},
};
static const struct slicedef big_sl[] = {
    {"chat", 1000, 0}, {"json", 1000, 0}, {"math", 1000, 0}, {"code", 1000, 0}, {"wiki", 1000, 1}};

static void big_outcome(int c, int s, int64_t i, struct qb_store_result *r)
{
    uint64_t h = (uint64_t)(i * 2654435761u) ^ (uint64_t)(c * 40503u + s * 977u);
    h ^= h >> 13;
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    if (s == 4) {
        r->nll = 2.0 + 0.01 * c + 0.001 * (double)(h % 7);
        r->n_tokens = 256;
    } else
        r->correct = (i % 10) < 7 ? (h % 100) >= (uint64_t)(2 * c) : (h % 100) < (uint64_t)c;
    if (c) {
        r->mean_kl = 0.001 * c;
        r->top1_agreement = 0.95;
    }
}

static void test_timing_10x5000(void)
{
    const char *path = tmp_path("big.db");
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;
    struct timespec t0, t1;

    CHECK(build(path, "big", "{\"tolerances\":{\"default\":1.0}}", big_cfg, 10, big_sl, 5,
                big_outcome) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(qb_analyze(s, "big", NULL, &a) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    qb_store_close(s);
    if (a) {
        CHECK(a->n_results == 50000 && a->n_configs == 10 && a->n_slices == 5);
        printf("info analyze 10 configs x 5000 items (%lld resamples per cell): %.3f s\n",
               (long long)a->resamples,
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
    qb_analysis_free(a);
}

int main(void)
{
    RUN(test_hidden_cliff);
    RUN(test_too_small_and_policy);
    RUN(test_everything_fails);
    RUN(test_baseline_fails);
    RUN(test_same_size_shares);
    RUN(test_perplexity);
    RUN(test_json);
    RUN(test_lookup);
    RUN(test_calibration_warning);
    RUN(test_bad_settings);
    RUN(test_timing_10x5000);
    return check_summary();
}
