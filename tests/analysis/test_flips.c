/* test_flips: behaviour change as the analysis decides it, on stores built with the store's
 * write API where every flip is known by construction: a config within tolerance on accuracy
 * that changes more answers than the flip limit (passed over, two example items quoted from
 * the store, a plan's limit letting it hold), a config that gains beyond the tolerance, a
 * ladder that falls and rises again (unstable, and the verdict of the config recommended below
 * the cliff is "holds"), flip intervals, and the gate of qbrief check (analysis/check.h) with
 * each of its reasons. */
#include "analysis/analyze.h"
#include "analysis/check.h"
#include "collector/store/settings.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA_M "ab12000000000000000000000000000000000000000000000000000000000000"
#define SHA_S "5e1f000000000000000000000000000000000000000000000000000000000000"
#define N 200 /* items of the one slice */

static const char *const specs[] = {"f32", "w8a8", "w4g32", "w3g64", "w2g32"};
static const double bpw[] = {32, 8, 4.5, 3.5, 2.5};

/* correct under config c for item i; the baseline is right on items 0..149 */
typedef int (*outcome_fn)(int c, int i);

static int build(const char *path, const char *settings, outcome_fn f)
{
    struct qb_store *s = NULL;
    struct qb_store_run run = {.name = "r",
                               .qbrief_version = "0.1",
                               .host = "test",
                               .baseline_config = "f32",
                               .settings_json = settings};
    struct qb_store_model m = {"m/x.gguf", SHA_M, "llama", "gguf", 1000};
    struct qb_store_suite su = {"suites/x.csv", SHA_S, N};
    int64_t run_id, suite_id, cfg_id[5], item_id[N];
    int rc;

    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &run, &m, &su, &run_id, &suite_id)) < 0 ||
        (rc = qb_store_begin(s)) < 0)
        goto out;
    for (int c = 0; c < 5; c++) {
        struct qb_store_config sc = {specs[c], bpw[c], (int64_t)(bpw[c] * 1000), 1.0};
        if ((rc = qb_store_put_config(s, run_id, &sc, &cfg_id[c])) < 0)
            goto out;
    }
    for (int i = 0; i < N; i++) {
        char key[32], prompt[64];
        snprintf(key, sizeof key, "a-%d", i);
        snprintf(prompt, sizeof prompt, "question %d?", i);
        struct qb_store_item it = {key, "a", "choice", "accuracy", NULL, prompt, i + 2};
        if ((rc = qb_store_put_item(s, suite_id, &it, &item_id[i])) < 0)
            goto out;
    }
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < N; i++) {
            char out[32];
            snprintf(out, sizeof out, "ans-%s-%d", specs[c], i);
            struct qb_store_result r = {.config_id = cfg_id[c],
                                        .item_id = item_id[i],
                                        .correct = f(c, i),
                                        .score = NAN,
                                        .output = out,
                                        .nll = NAN,
                                        .n_tokens = -1,
                                        .mean_kl = NAN,
                                        .top1_agreement = NAN,
                                        .flipped = -1};
            if ((rc = qb_store_put_result(s, run_id, &r)) < 0)
                goto out;
        }
    rc = qb_store_commit(s);
out:
    if (rc < 0)
        fprintf(stderr, "  build: %s\n", qb_errmsg());
    qb_store_close(s);
    return rc;
}

static struct qb_analysis *analyze(const char *file, const char *settings, outcome_fn f,
                                   const struct qb_an_opts *o)
{
    char path[512];
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;
    snprintf(path, sizeof path, "%s/%s", check_tmpdir(), file);
    if (build(path, settings, f) < 0 || qb_store_open(path, QB_STORE_READONLY, &s) < 0 ||
        qb_analyze(s, "r", o, &a) < 0)
        fprintf(stderr, "  %s: %s\n", file, qb_errmsg());
    qb_store_close(s);
    return a;
}

static int64_t cfg(const struct qb_analysis *a, const char *spec)
{
    for (int64_t c = 0; c < a->n_configs; c++)
        if (!strcmp(a->configs[c].spec, spec))
            return c;
    return -1;
}

static int base(int i)
{
    return i < 150;
}

/* w4g32: loses items 0..19 and gains 150..169 -- no net change, 20% of answers changed;
 * w3g64 and w2g32 lose 60 items (a loss); w8a8 is the baseline */
static int churn(int c, int i)
{
    if (c == 2)
        return i < 20 ? 0 : i >= 150 && i < 170 ? 1 : base(i);
    if (c >= 3)
        return i < 60 ? 0 : base(i);
    return base(i);
}

/* a 10-point tolerance: the churn's delta interval (about +-6 points) lies inside it */
#define TOL10 "\"plan\":\"p.yaml\",\"tolerances\":{\"default\":10}"

static void test_flip_limit(void)
{
    struct qb_analysis *a = analyze("churn.db", "{" TOL10 "}", churn, NULL);
    CHECK(a != NULL);
    if (!a)
        return;
    const struct qb_an_slice *s = &a->slices[0];
    int64_t w4 = cfg(a, "w4g32"), w8 = cfg(a, "w8a8");
    const struct qb_an_cell *e = &s->cells[w4];
    CHECK(s->max_flips == QB_AN_DEFAULT_FLIPS);
    CHECK(e->flips_lost == 20 && e->flips_gained == 20 && e->n == N);
    CHECK_NEAR(e->flip_rate, 0.2, 1e-12);
    CHECK(e->delta == 0 && e->within_acc);
    CHECK(e->flips_over && !e->gains_beyond && e->changes_behaviour && !e->within);
    /* Wilson around each share */
    CHECK(e->lost_ci.lo < 0.1 && e->lost_ci.hi > 0.1 && e->lost_ci.lo > 0.05);
    CHECK(e->flip_ci.lo < 0.2 && e->flip_ci.hi > 0.2);
    CHECK(s->rec == w8 && s->verdict == QB_VERDICT_HOLDS);
    CHECK(s->behaviour == w4);
    /* two items quoted: one lost, one gained, with both answers from the store */
    CHECK(s->n_examples == 2);
    if (s->n_examples == 2) {
        CHECK(s->examples[0].lost && !strcmp(s->examples[0].key, "a-0"));
        CHECK(s->examples[0].prompt && !strcmp(s->examples[0].prompt, "question 0?"));
        CHECK(s->examples[0].baseline_output &&
              !strcmp(s->examples[0].baseline_output, "ans-f32-0"));
        CHECK(s->examples[0].config_output && !strcmp(s->examples[0].config_output, "ans-w4g32-0"));
        CHECK(!s->examples[1].lost && !strcmp(s->examples[1].key, "a-150"));
        CHECK(s->examples[1].config_output &&
              !strcmp(s->examples[1].config_output, "ans-w4g32-150"));
    }
    /* the gate: the recommendation holds; w4g32 fails on its flips; w2g32 on its loss */
    struct qb_check *k = NULL;
    CHECK(qb_check(a, NULL, &k) == 0 && k && k->n == 1 && k->n_failing == 0);
    qb_check_free(k);
    k = NULL;
    CHECK(qb_check(a, "w4g32", &k) == 0 && k && k->n_failing == 1 &&
          k->slices[0].reason == QB_CHECK_FLIPS);
    qb_check_free(k);
    k = NULL;
    CHECK(qb_check(a, "w2g32", &k) == 0 && k && k->n_failing == 1 &&
          k->slices[0].reason == QB_CHECK_LOSS);
    qb_check_free(k);
    k = NULL;
    CHECK(qb_check(a, "w5", &k) == QB_EINVAL && !k && strstr(qb_errmsg(), "w4g32"));
    qb_analysis_free(a);

    /* the run's own flip limit for the slice lets w4g32 hold */
    static const char settings[] = "{" TOL10 ",\"flips\":{\"default\":null,"
                                   "\"slices\":{\"a\":25}}}";
    a = analyze("churn25.db", settings, churn, NULL);
    CHECK(a != NULL);
    if (a) {
        CHECK(a->slices[0].max_flips == 25);
        CHECK(a->slices[0].rec == cfg(a, "w4g32") && a->slices[0].behaviour == -1);
        CHECK(a->slices[0].n_examples == 0);
        qb_analysis_free(a);
    }
    /* a policy's rules (qbrief check --policy) replace the run's */
    struct qb_settings rules;
    qb_settings_init(&rules);
    rules.flips.has_default = 1;
    rules.flips.default_percent = 30;
    rules.tolerances.has_default = 1;
    rules.tolerances.default_points = 10;
    struct qb_an_opts o = QB_AN_OPTS_INIT;
    o.rules = &rules;
    a = analyze("churn_rules.db", NULL, churn, &o);
    CHECK(a != NULL);
    if (a) {
        CHECK(a->slices[0].max_flips == 30 && a->slices[0].rec == cfg(a, "w4g32"));
        k = NULL;
        CHECK(qb_check(a, "w4g32", &k) == 0 && k && k->n_failing == 0);
        qb_check_free(k);
        qb_analysis_free(a);
    }
}

/* w4g32 gains 30 items (150..179) and loses none: +15 points, beyond a 2-point tolerance */
static int gain(int c, int i)
{
    if (c == 2)
        return i < 180;
    if (c >= 3)
        return i < 60 ? 0 : base(i);
    return base(i);
}

static void test_gain_beyond_tolerance(void)
{
    /* a flip limit of 50% isolates the gain */
    static const char settings[] = "{\"plan\":\"p.yaml\",\"flips\":{\"default\":50}}";
    struct qb_analysis *a = analyze("gain.db", settings, gain, NULL);
    CHECK(a != NULL);
    if (!a)
        return;
    const struct qb_an_slice *s = &a->slices[0];
    const struct qb_an_cell *e = &s->cells[cfg(a, "w4g32")];
    CHECK_NEAR(e->delta, 0.15, 1e-12);
    CHECK(e->within_acc && e->gains_beyond && !e->flips_over && e->changes_behaviour);
    CHECK(!e->within);
    CHECK(s->rec == cfg(a, "w8a8") && s->behaviour == cfg(a, "w4g32"));
    CHECK(s->n_examples == 1 && s->examples && !s->examples[0].lost);
    struct qb_check *k = NULL;
    CHECK(qb_check(a, "w4g32", &k) == 0 && k && k->slices[0].reason == QB_CHECK_GAIN);
    qb_check_free(k);
    qb_analysis_free(a);
}

/* w4g32 loses 40 items (-20 points), w3g64 answers as the baseline, w2g32 loses 100: the
 * ladder falls at w4g32 and rises again at w3g64 */
static int valley(int c, int i)
{
    if (c == 2)
        return i < 40 ? 0 : base(i);
    if (c == 4)
        return i < 100 ? 0 : base(i);
    return base(i);
}

static void test_non_monotone(void)
{
    struct qb_analysis *a = analyze("valley.db", NULL, valley, NULL);
    CHECK(a != NULL);
    if (!a)
        return;
    const struct qb_an_slice *s = &a->slices[0];
    int64_t w4 = cfg(a, "w4g32"), w3 = cfg(a, "w3g64");
    CHECK(s->unstable_above == w4 && s->unstable_below == w3);
    /* the recommendation sits below the cliff and holds: its verdict says so, the cliff is
     * its own fact */
    CHECK(s->rec == w3 && s->verdict == QB_VERDICT_HOLDS);
    CHECK(s->cliff >= 0 && a->cliffs[s->cliff].below == w4);
    CHECK(s->behaviour == -1);
    qb_analysis_free(a);

    /* a monotone ladder is not flagged */
    a = analyze("churn_mono.db", "{" TOL10 "}", churn, NULL);
    CHECK(a && a->slices[0].unstable_below == -1);
    qb_analysis_free(a);
}

int main(void)
{
    RUN(test_flip_limit);
    RUN(test_gain_beyond_tolerance);
    RUN(test_non_monotone);
    return check_summary();
}
