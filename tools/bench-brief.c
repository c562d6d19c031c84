/* bench-brief: how long `qbrief brief` takes on a large store -- 10 configs x 5,000 items
 * (six slices, one of them perplexity), latency at two settings and memory per config --
 * built here with the store API from seeded synthetic outcomes. Prints a table of wall times
 * per output format and template (the target: a brief in under 2 s).
 *
 *     make bench-brief && build/tools/bench-brief [ITEMS] [CONFIGS]
 *
 * The numbers it prints are timings of this repository's analysis and renderers on this
 * machine; the synthetic accuracies themselves mean nothing. */
#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "collector/store/store.h"
#include "output/brief.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const specs[] = {"f32",   "bf16",  "fp8",   "w8a8",  "w8",    "w4g128",
                                    "w4g64", "w4g32", "w3g64", "w3g32", "w2g64", "w2g32"};
static const double bpw[] = {32, 16, 8.1, 8.2, 8.1, 4.3, 4.5, 5.0, 3.6, 4.0, 2.5, 3.0};
static const char *const slices[] = {"facts", "arithmetic", "retrieval", "code", "json", "chat"};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double unif(uint64_t a, uint64_t b)
{
    return (double)(mix(a * 1000003u + b) >> 11) * 0x1.0p-53;
}

static int build(const char *path, int64_t n_items, int n_cfg)
{
    struct qb_store *s = NULL;
    struct qb_store_run run = {.name = "bench",
                               .qbrief_version = "bench",
                               .host = "bench",
                               .baseline_config = "f32",
                               .settings_json = "{\"title\":\"Brief benchmark\","
                                                "\"question\":\"How fast is a large brief?\","
                                                "\"tolerances\":{\"default\":1.0}}"};
    struct qb_store_model m = {"bench.gguf",
                               "1111111111111111111111111111111111111111111111111111111111111111",
                               "llama", "gguf", 1000000};
    struct qb_store_suite su = {
        "bench.csv", "2222222222222222222222222222222222222222222222222222222222222222", n_items};
    int64_t run_id, suite_id, cfg_id[12], *item = calloc((size_t)n_items, sizeof *item);
    int rc;

    if (!item)
        return QB_ENOMEM;
    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &run, &m, &su, &run_id, &suite_id)) < 0 ||
        (rc = qb_store_begin(s)) < 0)
        goto out;
    for (int c = 0; c < n_cfg; c++) {
        int64_t wb = (int64_t)(1e9 * bpw[c] / 32);
        struct qb_store_config sc = {specs[c], bpw[c], wb, 0.5 * c};
        struct qb_store_memory mem = {640, wb, 28000000, wb + 60000000, "bench", "cpu"};
        if ((rc = qb_store_put_config(s, run_id, &sc, &cfg_id[c])) < 0 ||
            (rc = qb_store_put_memory(s, run_id, cfg_id[c], &mem)) < 0)
            goto out;
        for (int p = 0; p < 2; p++)
            for (int r = 0; r < 5; r++) {
                double tpot = 5 + 40 * bpw[c] / 32 * (1 + 0.05 * unif(c * 10 + p, r));
                struct qb_store_latency l = {
                    p ? 512 : 128, 128,           1,       r,    50.0 * (p + 1) * bpw[c] / 8, tpot,
                    128 * tpot,    1000.0 / tpot, "bench", "cpu"};
                if ((rc = qb_store_put_latency(s, run_id, cfg_id[c], &l)) < 0)
                    goto out;
            }
    }
    for (int64_t i = 0; i < n_items; i++) {
        char key[32];
        int k = (int)(i % 6);
        snprintf(key, sizeof key, "%s-%lld", slices[k], (long long)i);
        struct qb_store_item it = {key,
                                   slices[k],
                                   k == 5 ? "perplexity" : "generate",
                                   k == 5 ? "perplexity" : "exact",
                                   NULL,
                                   NULL,
                                   i + 2};
        if ((rc = qb_store_put_item(s, suite_id, &it, &item[i])) < 0)
            goto out;
    }
    for (int c = 0; c < n_cfg; c++)
        for (int64_t i = 0; i < n_items; i++) {
            int k = (int)(i % 6);
            /* accuracy holds down to 8 bits, then falls, arithmetic (k == 1) faster */
            double p = 0.8 - (bpw[c] >= 8 ? 0.0 : (k == 1 ? 0.08 : 0.003) * (8 - bpw[c]));
            int ok = unif(i, 7) < p; /* one latent draw per item keeps pairs correlated */
            struct qb_store_result r = {.config_id = cfg_id[c],
                                        .item_id = item[i],
                                        .correct = k == 5 ? -1 : ok,
                                        .score = NAN,
                                        .output = "out",
                                        .nll = 2.0 + 0.002 * (32 - bpw[c]) * unif(i, c),
                                        .n_tokens = 20,
                                        .mean_kl = c ? 0.001 * (32 - bpw[c]) : NAN,
                                        .top1_agreement = c ? 0.99 : 1,
                                        .flipped = -1};
            if ((rc = qb_store_put_result(s, run_id, &r)) < 0)
                goto out;
        }
    if ((rc = qb_store_commit(s)) < 0)
        goto out;
    rc = qb_store_run_finish(s, run_id);
out:
    qb_store_close(s);
    free(item);
    return rc;
}

int main(int argc, char **argv)
{
    int64_t n_items = argc > 1 ? atoll(argv[1]) : 5000;
    int n_cfg = argc > 2 ? atoi(argv[2]) : 10;
    char dir[] = "/tmp/qbrief-bench-XXXXXX", db[64], out[96];
    static const struct {
        const char *label, *ext, *tmpl;
        enum qb_brief_format f;
    } jobs[] = {
        {"pdf, leadership", "pdf", "leadership", QB_BRIEF_PDF},
        {"pdf, review", "pdf", "review", QB_BRIEF_PDF},
        {"markdown + PNG charts", "md", "leadership", QB_BRIEF_MD},
        {"json", "json", "leadership", QB_BRIEF_JSON},
        {"csv", "csv", "leadership", QB_BRIEF_CSV},
    };
    double t;
    int rc;

    if (n_items < 12 || n_cfg < 2 || n_cfg > 12) {
        fprintf(stderr, "usage: bench-brief [ITEMS >= 12] [CONFIGS 2..12]\n");
        return 2;
    }
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(db, sizeof db, "%s/bench.db", dir);
    t = now();
    if ((rc = build(db, n_items, n_cfg)) < 0) {
        fprintf(stderr, "bench-brief: %s\n", qb_errmsg());
        return 1;
    }
    printf("store: %d configs x %lld items (%s), built in %.2f s\n\n", n_cfg, (long long)n_items,
           db, now() - t);
    printf("| output | wall s | bytes |\n|---|---|---|\n");
    {
        struct qb_store *s = NULL;
        struct qb_analysis *a = NULL;
        t = now();
        if ((rc = qb_store_open(db, QB_STORE_READONLY, &s)) < 0 ||
            (rc = qb_analyze(s, NULL, NULL, &a)) < 0) {
            fprintf(stderr, "bench-brief: %s\n", qb_errmsg());
            return 1;
        }
        printf("| analysis alone (%lld resamples per cell) | %.3f | |\n", (long long)a->resamples,
               now() - t);
        qb_analysis_free(a);
        qb_store_close(s);
    }
    for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
        struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
        struct stat st;
        snprintf(out, sizeof out, "%s/brief-%zu.%s", dir, j, jobs[j].ext);
        o.db_path = db;
        o.out_path = out;
        o.template_name = jobs[j].tmpl;
        o.format = jobs[j].f;
        t = now();
        if ((rc = qb_brief_write(&o)) < 0) {
            fprintf(stderr, "bench-brief: %s\n", qb_errmsg());
            return 1;
        }
        t = now() - t;
        printf("| %s (analysis included) | %.3f | %lld |\n", jobs[j].label, t,
               stat(out, &st) == 0 ? (long long)st.st_size : -1LL);
    }
    printf("\nfiles left in %s\n", dir);
    return 0;
}
