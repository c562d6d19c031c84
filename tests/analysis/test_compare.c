/* test_compare: one run against another (analysis/compare.h) on stores built with the store's
 * write API, where every answer is known: the same 100 items paired (lost and gained counted,
 * delta and McNemar exact), a config only one run has left out, a recommendation that moved
 * (the decision changed), and items whose prompts differ compared unpaired with a warning. */
#include "analysis/analyze.h"
#include "analysis/compare.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA_M "ab12000000000000000000000000000000000000000000000000000000000000"
#define N 100

/* correct under config c (0 = f32) for item i */
typedef int (*outcome_fn)(int c, int i);

/* one run named run over N items of slice "a" in configs specs[0..n_cfg); prompts differ
 * from the default ones when variant != 0 */
static int build(const char *path, const char *run_name, const char *const *specs, int n_cfg,
                 int variant, outcome_fn f)
{
    struct qb_store *s = NULL;
    struct qb_store_run run = {
        .name = run_name, .qbrief_version = "0.1", .host = "test", .baseline_config = "f32"};
    struct qb_store_model m = {"m/x.gguf", SHA_M, "llama", "gguf", 1000};
    char suite_sha[65];
    struct qb_store_suite su = {"suites/x.csv", suite_sha, N};
    int64_t run_id, suite_id, cfg_id[4], item_id[N];
    int rc;

    snprintf(suite_sha, sizeof suite_sha, "%064d", variant + 1);
    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &run, &m, &su, &run_id, &suite_id)) < 0 ||
        (rc = qb_store_begin(s)) < 0)
        goto out;
    for (int c = 0; c < n_cfg; c++) {
        double bpw = !strcmp(specs[c], "f32") ? 32 : !strcmp(specs[c], "w8a8") ? 8 : 4.5;
        struct qb_store_config sc = {specs[c], bpw, (int64_t)(bpw * 1000), 1.0};
        if ((rc = qb_store_put_config(s, run_id, &sc, &cfg_id[c])) < 0)
            goto out;
    }
    for (int i = 0; i < N; i++) {
        char key[32], sha[65];
        snprintf(key, sizeof key, "a-%d", i);
        snprintf(sha, sizeof sha, "%064d", i + (variant && i < 10 ? 1000 : 0));
        struct qb_store_item it = {key, "a", "choice", "accuracy", sha, NULL, i + 2};
        if ((rc = qb_store_put_item(s, suite_id, &it, &item_id[i])) < 0)
            goto out;
    }
    for (int c = 0; c < n_cfg; c++)
        for (int i = 0; i < N; i++) {
            int spec_ix = !strcmp(specs[c], "f32") ? 0 : !strcmp(specs[c], "w8a8") ? 1 : 2;
            struct qb_store_result r = {.config_id = cfg_id[c],
                                        .item_id = item_id[i],
                                        .correct = f(spec_ix, i),
                                        .score = NAN,
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

static struct qb_analysis *analyze(const char *file, const char *run_name, const char *const *specs,
                                   int n_cfg, int variant, outcome_fn f)
{
    char path[512];
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;
    snprintf(path, sizeof path, "%s/%s", check_tmpdir(), file);
    if (build(path, run_name, specs, n_cfg, variant, f) < 0 ||
        qb_store_open(path, QB_STORE_READONLY, &s) < 0 || qb_analyze(s, run_name, NULL, &a) < 0)
        fprintf(stderr, "  %s: %s\n", file, qb_errmsg());
    qb_store_close(s);
    return a;
}

/* before: f32 right on 0..79; w4g32 loses 0..29 (a loss: not recommended) */
static int old_outcome(int c, int i)
{
    return c == 2 ? i >= 30 && i < 80 : i < 80;
}

/* now: f32 right on 0..84 (5 gained: 80..84); w4g32 answers as f32 did before, except it
 * also loses item 0 and gains item 99 */
static int new_outcome(int c, int i)
{
    if (c == 2)
        return i == 99 || (i >= 1 && i < 80);
    return i < 85;
}

static const struct qb_cmp_cell *cell(const struct qb_compare *k, const char *spec)
{
    for (int64_t i = 0; i < k->n_cells; i++)
        if (!strcmp(k->now->configs[k->cells[i].config].spec, spec))
            return &k->cells[i];
    return NULL;
}

static void test_paired(void)
{
    static const char *const old_specs[] = {"f32", "w4g32"}, *const new_specs[] = {"f32", "w8a8",
                                                                                   "w4g32"};
    struct qb_analysis *before = analyze("old.db", "old", old_specs, 2, 0, old_outcome);
    struct qb_analysis *now = analyze("new.db", "new", new_specs, 3, 0, new_outcome);
    struct qb_compare *k = NULL;
    CHECK(before && now);
    if (!before || !now)
        goto out;
    CHECK(qb_compare(now, before, &k) == 0 && k);
    if (!k)
        goto out;
    /* w8a8 is only in the new run: two cells, f32 and w4g32 */
    CHECK(k->n_cells == 2 && k->n_unpaired == 0 && k->n_warnings == 0);
    const struct qb_cmp_cell *f = cell(k, "f32"), *w = cell(k, "w4g32");
    CHECK(f && w && !cell(k, "w8a8"));
    if (f) {
        CHECK(f->paired && f->n_now == N && f->n_before == N);
        CHECK(f->lost == 0 && f->gained == 5);
        CHECK_NEAR(f->acc_before, 0.80, 1e-12);
        CHECK_NEAR(f->acc_now, 0.85, 1e-12);
        CHECK_NEAR(f->delta, 0.05, 1e-12);
        CHECK_NEAR(f->mcnemar_p, 2.0 * pow(0.5, 5), 1e-12);
        CHECK(f->delta_ci.lo > 0 && f->delta_ci.hi >= 0.05);
    }
    if (w) {
        /* before: right on 30..79 (50); now: right on 1..79 and 99 (80): lost 0, gained
         * 1..29 and 99 (30); item 0 wrong in both */
        CHECK(w->paired && w->lost == 0 && w->gained == 30);
        CHECK_NEAR(w->delta, 0.30, 1e-12);
    }
    /* the recommendation moved from f32 (w4g32 lost 30 points) to w8a8 */
    CHECK(
        strcmp(now->configs[now->slices[0].rec].spec, before->configs[before->slices[0].rec].spec));
    CHECK(k->n_changed == 1);
out:
    qb_compare_free(k);
    qb_analysis_free(now);
    qb_analysis_free(before);
}

static void test_unpaired(void)
{
    static const char *const specs[] = {"f32", "w4g32"};
    struct qb_analysis *before = analyze("u_old.db", "old", specs, 2, 0, old_outcome);
    struct qb_analysis *now = analyze("u_new.db", "new", specs, 2, 1, old_outcome);
    struct qb_compare *k = NULL;
    CHECK(before && now);
    if (before && now) {
        CHECK(qb_compare(now, before, &k) == 0 && k);
        if (k) {
            CHECK(k->n_unpaired == 1 && k->n_warnings == 1 &&
                  strstr(k->warnings[0], "compared unpaired"));
            const struct qb_cmp_cell *f = cell(k, "f32");
            CHECK(f && !f->paired && isnan(f->mcnemar_p) && f->lost == 0);
            /* same answers, different prompts: no change, an interval around zero */
            CHECK(f && f->delta == 0 && f->delta_ci.lo < 0 && f->delta_ci.hi > 0);
            CHECK(k->n_changed == 0);
        }
    }
    qb_compare_free(k);
    qb_analysis_free(now);
    qb_analysis_free(before);
}

int main(void)
{
    RUN(test_paired);
    RUN(test_unpaired);
    return check_summary();
}
