/* test_candidates: two runs -- two models on one suite, built with the store's write API where
 * every answer is known -- written as one candidates run (analysis/candidates.h) and analysed:
 * every (model, config) is a config "MODEL:SPEC" against the first run's baseline, paired over
 * the items; each slice names the cheapest candidate that holds, from either model; KL stays
 * the candidate's own, against its own model's baseline; a run listed twice is refused. */
#include "analysis/analyze.h"
#include "analysis/candidates.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA_S "5e1f000000000000000000000000000000000000000000000000000000000000"
#define N 100 /* items per slice; slices "a" and "b" */

/* correct under config c (0 = f32, 1 = w8a8, 2 = w4g32) of model m for item i of slice s */
static int outcome(int m, int c, int s, int i)
{
    if (m == 0) /* model A: f32 right on 0..79 everywhere; w4g32 breaks slice b */
        return c == 2 && s == 1 ? i >= 40 && i < 80 : i < 80;
    /* model B (smaller): f32 as A's on a, loses 30 on b; its w4g32 holds on a */
    return s == 0 ? i < 80 : i >= 30 && i < 80;
}

static int build(const char *path, const char *run_name, int m)
{
    static const char *const specs[] = {"f32", "w8a8", "w4g32"};
    static const double bpw[] = {32, 8.5, 4.5};
    struct qb_store *s = NULL;
    struct qb_store_run run = {
        .name = run_name, .qbrief_version = "0.1", .host = "test", .baseline_config = "f32"};
    char msha[65];
    struct qb_store_model md = {m ? "models/b.gguf" : "models/a.gguf", msha, "llama", "gguf", 1000};
    struct qb_store_suite su = {"suites/x.csv", SHA_S, 2 * N};
    int64_t run_id, suite_id, cfg_id[3], item_id[2 * N];
    int rc;

    snprintf(msha, sizeof msha, "%064d", m + 1);
    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &run, &md, &su, &run_id, &suite_id)) < 0 ||
        (rc = qb_store_begin(s)) < 0)
        goto out;
    for (int c = 0; c < 3; c++) {
        /* model B has half the weights */
        struct qb_store_config sc = {specs[c], bpw[c], (int64_t)(bpw[c] * (m ? 500 : 1000)), 1.0};
        struct qb_store_memory mem = {512, sc.weight_bytes, 10, sc.weight_bytes + 100, NULL, NULL};
        if ((rc = qb_store_put_config(s, run_id, &sc, &cfg_id[c])) < 0 ||
            (rc = qb_store_put_memory(s, run_id, cfg_id[c], &mem)) < 0)
            goto out;
    }
    for (int i = 0; i < 2 * N; i++) {
        char key[32], sha[65];
        snprintf(key, sizeof key, "%c-%d", i < N ? 'a' : 'b', i % N);
        snprintf(sha, sizeof sha, "%064d", i);
        struct qb_store_item it = {key, i < N ? "a" : "b", "choice", "accuracy", sha, NULL, i + 2};
        if ((rc = qb_store_put_item(s, suite_id, &it, &item_id[i])) < 0)
            goto out;
    }
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 2 * N; i++) {
            struct qb_store_result r = {.config_id = cfg_id[c],
                                        .item_id = item_id[i],
                                        .correct = outcome(m, c, i / N, i % N),
                                        .score = NAN,
                                        .nll = NAN,
                                        .n_tokens = -1,
                                        .mean_kl = c ? 0.01 * (c + 10 * m) : NAN,
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

static const struct qb_an_cell *cell(const struct qb_analysis *a, int64_t s, const char *spec)
{
    for (int64_t c = 0; c < a->n_configs; c++)
        if (!strcmp(a->configs[c].spec, spec))
            return &a->slices[s].cells[c];
    return NULL;
}

static void test_two_models(void)
{
    char pa[512], pb[512], pc[512];
    struct qb_store *sa = NULL, *sb = NULL, *sc = NULL;
    struct qb_analysis *a = NULL, *b = NULL, *all = NULL;
    snprintf(pa, sizeof pa, "%s/a.db", check_tmpdir());
    snprintf(pb, sizeof pb, "%s/b.db", check_tmpdir());
    snprintf(pc, sizeof pc, "%s/c.db", check_tmpdir());
    CHECK(build(pa, "ra", 0) == 0 && build(pb, "rb", 1) == 0);
    CHECK(qb_store_open(pa, QB_STORE_READONLY, &sa) == 0 && qb_analyze(sa, "ra", NULL, &a) == 0);
    CHECK(qb_store_open(pb, QB_STORE_READONLY, &sb) == 0 && qb_analyze(sb, "rb", NULL, &b) == 0);
    if (!a || !b)
        goto out;
    const struct qb_analysis *runs[] = {a, b}, *twice[] = {a, a};
    CHECK(qb_candidates_write(twice, 2, pc, "x") == QB_EINVAL);
    CHECK(qb_candidates_write(runs, 1, pc, "x") == QB_EINVAL);
    CHECK(qb_candidates_write(runs, 2, pc, "qbrief brief --runs ra,rb") == 0);
    CHECK(qb_store_open(pc, QB_STORE_READONLY, &sc) == 0 &&
          qb_analyze(sc, QB_CANDIDATES_RUN, NULL, &all) == 0);
    if (!all)
        goto out;
    CHECK(all->n_configs == 6 && !strcmp(all->configs[all->baseline].spec, "a:f32"));
    CHECK(all->n_slices == 2 && all->slices[0].cells[all->baseline].n == N);
    /* slice a: b:w4g32 answers as a:f32 and is the cheapest (half the weights at 4.5 bits) */
    CHECK(!strcmp(all->configs[all->slices[0].rec].spec, "b:w4g32"));
    const struct qb_an_cell *e = cell(all, 0, "b:w4g32");
    CHECK(e && e->n == N && e->delta == 0 && e->flips_lost == 0 && e->flips_gained == 0);
    /* slice b: model B loses 30 points against A's f32 (30 lost); A's w4g32 loses 40: the
     * cheapest that holds is A's w8a8 */
    e = cell(all, 1, "b:f32");
    CHECK(e && e->flips_lost == 30 && e->flips_gained == 0 && fabs(e->delta + 0.30) < 1e-12);
    CHECK(e && e->significant_loss);
    CHECK(!strcmp(all->configs[all->slices[1].rec].spec, "a:w8a8"));
    /* KL stays within a model: a candidate's KL is against its own baseline */
    e = cell(all, 0, "b:w8a8");
    CHECK(e && fabs(e->kl_mean - 0.11) < 1e-12);
    e = cell(all, 0, "b:f32");
    CHECK(e && isnan(e->kl_mean));
out:
    qb_analysis_free(all);
    qb_analysis_free(a);
    qb_analysis_free(b);
    qb_store_close(sa);
    qb_store_close(sb);
    qb_store_close(sc);
}

int main(void)
{
    RUN(test_two_models);
    return check_summary();
}
