/* bench-merge: how long `qbrief merge` takes for a large sharded run -- by default 50 shards
 * of one run of 10 configs x 5,000 items, built here with the store API as qbrief run
 * --shard I/N writes them: every shard registers every item and config, and holds the
 * results of its own items (a 1/50 share, dealt round-robin) in every config, with the
 * baseline's top-32 at 8 scored positions of each of its items; shard 0 also holds latency
 * and memory. Prints the time to build the shards and the time qb_store_merge takes, then
 * checks the merged store holds every unit once.
 *
 *     make bench-merge && build/tools/bench-merge [SHARDS] [CONFIGS] [ITEMS]
 *
 * The outcomes are synthetic; only the timings mean something. */
#include "collector/store/store.h"
#include "collector/store/store_merge.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POSITIONS 8
#define TOPK 32

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct bench {
    int n_shards, n_cfg, n_items;
    const char *dir;
};

static int put_units(struct qb_store *s, const struct bench *b, int shard, int64_t run_id,
                     const int64_t *cfg, const int64_t *item)
{
    int32_t ids[TOPK];
    float lps[TOPK];
    char out[32];
    int rc = 0;
    for (int k = 0; k < TOPK; k++) {
        ids[k] = k * 7;
        lps[k] = -0.1f * (float)(k + 1);
    }
    for (int i = shard; i < b->n_items && rc == 0; i += b->n_shards) {
        for (int c = 0; c < b->n_cfg && rc == 0; c++) {
            snprintf(out, sizeof out, "answer %d/%d", i, c);
            struct qb_store_result r = {.config_id = cfg[c],
                                        .item_id = item[i],
                                        .correct = (i + c) % 3 != 0,
                                        .score = NAN,
                                        .output = out,
                                        .nll = 0.5 + 0.01 * c,
                                        .n_tokens = POSITIONS,
                                        .mean_kl = c ? 0.001 * c : NAN,
                                        .top1_agreement = c ? 0.9 : 1,
                                        .flipped = c ? (i + c) % 7 == 0 : -1};
            rc = qb_store_put_result(s, run_id, &r);
        }
        for (int p = 0; p < POSITIONS && rc == 0; p++)
            rc = qb_store_put_topk(s, run_id, item[i], 10 + p, TOPK, ids, lps);
    }
    return rc;
}

/* One shard's store, as qbrief run --shard writes it (less the engine's work). */
static int build_shard(const struct bench *b, int shard, const char *path)
{
    struct qb_store *s = NULL;
    struct qb_store_run run = {.name = "bench",
                               .qbrief_version = "bench",
                               .host = "bench-host",
                               .baseline_config = "c0",
                               .settings_json = "{\"title\":\"merge benchmark\"}"};
    struct qb_store_model m = {"bench.gguf",
                               "1111111111111111111111111111111111111111111111111111111111111111",
                               "llama", "gguf", 1000000};
    struct qb_store_suite su = {"bench.csv",
                                "2222222222222222222222222222222222222222222222222222222222222222",
                                b->n_items};
    int64_t run_id, suite_id, *cfg = calloc((size_t)b->n_cfg, sizeof *cfg),
                              *item = calloc((size_t)b->n_items, sizeof *item);
    char token[32], spec[16], key[16];
    int rc;
    snprintf(token, sizeof token, "bench-%d", shard);
    struct qb_store_shard sh = {shard,
                                b->n_shards,
                                "3333333333333333333333333333333333333333333333333333333333333333",
                                token,
                                0,
                                shard == 0,
                                "bench-host",
                                NULL};
    if (!cfg || !item) {
        rc = QB_ENOMEM;
        goto out;
    }
    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &run, &m, &su, &run_id, &suite_id)) < 0 ||
        (rc = qb_store_put_shard(s, run_id, &sh)) < 0 || (rc = qb_store_begin(s)) < 0)
        goto out;
    for (int c = 0; c < b->n_cfg && rc == 0; c++) {
        snprintf(spec, sizeof spec, "c%d", c);
        struct qb_store_config sc = {spec, 32.0 / (c + 1), 1000000 / (c + 1), 0.1};
        rc = qb_store_put_config(s, run_id, &sc, &cfg[c]);
        if (rc == 0 && shard == 0) {
            struct qb_store_memory mem = {640, 1000000 / (c + 1), 28000, 2000000};
            struct qb_store_latency l = {64, 32, 1, 0, 1.0, 0.1, 4.0, 10000};
            if ((rc = qb_store_put_memory(s, run_id, cfg[c], &mem)) == 0)
                rc = qb_store_put_latency(s, run_id, cfg[c], &l);
        }
    }
    for (int i = 0; i < b->n_items && rc == 0; i++) {
        snprintf(key, sizeof key, "item-%05d", i);
        struct qb_store_item it = {.key = key,
                                   .slice = i % 2 ? "odd" : "even",
                                   .kind = "generate",
                                   .metric = "exact",
                                   .prompt = "a prompt of a few words",
                                   .line = i + 2};
        rc = qb_store_put_item(s, suite_id, &it, &item[i]);
    }
    if (rc == 0)
        rc = put_units(s, b, shard, run_id, cfg, item);
    if (rc == 0)
        rc = qb_store_commit(s);
    if (rc == 0)
        rc = qb_store_run_finish(s, run_id);
out:
    qb_store_close(s);
    free(cfg);
    free(item);
    return rc;
}

static int count(void *ctx, const struct qb_store_result *r)
{
    (void)r;
    ++*(int64_t *)ctx;
    return 0;
}

int main(int argc, char **argv)
{
    struct bench b = {50, 10, 5000, NULL};
    if (argc > 1)
        b.n_shards = atoi(argv[1]);
    if (argc > 2)
        b.n_cfg = atoi(argv[2]);
    if (argc > 3)
        b.n_items = atoi(argv[3]);
    if (b.n_shards < 1 || b.n_cfg < 1 || b.n_items < 1) {
        fprintf(stderr, "usage: bench-merge [SHARDS] [CONFIGS] [ITEMS]\n");
        return 2;
    }
    char *dir = g_dir_make_tmp("bench-merge-XXXXXX", NULL);
    char **paths = calloc((size_t)b.n_shards + 1, sizeof *paths);
    double t0 = now();
    int rc = 0;
    for (int k = 0; k < b.n_shards && rc == 0; k++) {
        paths[k] = g_strdup_printf("%s/shard-%d.db", dir, k);
        rc = build_shard(&b, k, paths[k]);
    }
    double t1 = now();
    char *out = g_strdup_printf("%s/merged.db", dir);
    if (rc == 0)
        rc = qb_store_merge(out, (const char *const *)paths, b.n_shards, NULL, NULL);
    double t2 = now();
    if (rc < 0) {
        fprintf(stderr, "bench-merge: %s\n", qb_errmsg());
        return 1;
    }
    /* every unit once: count through the store API */
    struct qb_store *s = NULL;
    int64_t run_id = 0, n = 0;
    if (qb_store_open(out, QB_STORE_READONLY, &s) == 0 &&
        qb_store_run_find(s, "bench", &run_id) == 0)
        qb_store_list_results(s, run_id, 0, count, &n);
    qb_store_close(s);
    printf("%d shards x %d configs x %d items: built in %.1f s; merged in %.2f s; %lld of %lld "
           "units in the merged store\n",
           b.n_shards, b.n_cfg, b.n_items, t1 - t0, t2 - t1, (long long)n,
           (long long)b.n_cfg * b.n_items);
    for (int k = 0; k < b.n_shards; k++) {
        unlink(paths[k]);
        g_free(paths[k]);
    }
    unlink(out);
    rmdir(dir);
    g_free(out);
    free(paths);
    g_free(dir);
    return n == (int64_t)b.n_cfg * b.n_items ? 0 : 1;
}
