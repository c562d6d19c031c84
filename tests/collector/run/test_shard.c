/* test_shard: the split of a suite into shards (collector/run/shard.h) -- every (model, item)
 * pair in exactly one shard, the same split computed twice, loads balanced by cost within
 * one item's cost, and --shard's forms (I/N, auto from Slurm's or Kubernetes' variables,
 * auto/N) with their refusals. The split of real runs is checked end to end by
 * tests/cli/test_shard.sh. */
#include "collector/run/shard.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ITEMS 97

/* A suite in memory: items of three kinds with varied lengths. */
static struct qb_suite *make_suite(void)
{
    static struct qb_suite su;
    static struct qb_suite_item items[N_ITEMS];
    static char prompts[N_ITEMS][200];
    static char *choices[2] = {"yes", "a much longer choice than the other"};
    memset(items, 0, sizeof items);
    for (int i = 0; i < N_ITEMS; i++) {
        int len = 5 + (i * 37) % 190;
        memset(prompts[i], 'a' + i % 26, (size_t)len);
        prompts[i][len] = 0;
        items[i].prompt = prompts[i];
        items[i].kind = i % 3 == 0   ? QB_KIND_GENERATE
                        : i % 3 == 1 ? QB_KIND_CHOICE
                                     : QB_KIND_PERPLEXITY;
        if (items[i].kind == QB_KIND_GENERATE)
            items[i].max_tokens = 1 + i % 64;
        if (items[i].kind == QB_KIND_CHOICE) {
            items[i].choices = choices;
            items[i].n_choices = 2;
        }
    }
    su.items = items;
    su.n_items = N_ITEMS;
    return &su;
}

static void test_split_partition(void)
{
    struct qb_suite *su = make_suite();
    int64_t counts[] = {1, 2, 3, 4, 7, 50, 200};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int64_t n = counts[c], models = 2;
        int64_t *a = malloc(sizeof *a * N_ITEMS * models),
                *b = malloc(sizeof *b * N_ITEMS * models);
        int64_t *load = calloc((size_t)n, sizeof *load), max_cost = 0;
        CHECK(qb_shard_split(su, models, n, a) == 0);
        CHECK(qb_shard_split(su, models, n, b) == 0);
        CHECK(memcmp(a, b, sizeof *a * N_ITEMS * models) == 0); /* deterministic */
        for (int64_t u = 0; u < N_ITEMS * models; u++) {
            CHECK(a[u] >= 0 && a[u] < n); /* exactly one owner each */
            int64_t cost = qb_shard_item_cost(su, &su->items[u % N_ITEMS]);
            load[a[u]] += cost;
            if (cost > max_cost)
                max_cost = cost;
        }
        int64_t lo = load[0], hi = load[0];
        for (int64_t s = 1; s < n; s++) {
            lo = load[s] < lo ? load[s] : lo;
            hi = load[s] > hi ? load[s] : hi;
        }
        /* greedy largest-first: no shard exceeds another by more than one item's cost */
        CHECK(hi - lo <= max_cost);
        /* the owned sets of qb_shard_items cover every item of each model once */
        for (int64_t m = 0; m < models; m++) {
            int64_t total = 0;
            for (int64_t s = 0; s < n; s++) {
                unsigned char *mine = NULL;
                int64_t n_mine = -1;
                struct qb_shard sh = {s, n};
                CHECK(qb_shard_items(su, m, models, &sh, &mine, &n_mine) == 0);
                for (int64_t i = 0; i < N_ITEMS; i++)
                    CHECK(!mine[i] == (a[m * N_ITEMS + i] != s));
                total += n_mine;
                free(mine);
            }
            CHECK(total == N_ITEMS);
        }
        free(a);
        free(b);
        free(load);
    }
}

static void test_cost(void)
{
    struct qb_suite *su = make_suite();
    /* a generate item costs its decode steps on top of its prompt */
    struct qb_suite_item g = su->items[0];
    int64_t c0 = qb_shard_item_cost(su, &g);
    g.max_tokens += 10;
    CHECK(qb_shard_item_cost(su, &g) == c0 + 10);
    /* the probe job owns nothing */
    unsigned char *mine = NULL;
    int64_t n_mine = -1;
    struct qb_shard probe = {-1, 0};
    CHECK(qb_shard_items(su, 0, 1, &probe, &mine, &n_mine) == 0 && n_mine == 0);
    free(mine);
}

static void test_parse(void)
{
    struct qb_shard sh;
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    unsetenv("SLURM_ARRAY_TASK_MIN");
    unsetenv("JOB_COMPLETION_INDEX");
    unsetenv("QBRIEF_SHARDS");
    CHECK(qb_shard_parse("2/4", &sh) == 0 && sh.index == 2 && sh.count == 4);
    CHECK(qb_shard_parse("0/1", &sh) == 0 && sh.index == 0 && sh.count == 1);
    CHECK(qb_shard_parse("4/4", &sh) == QB_EINVAL && strstr(qb_errmsg(), "out of range"));
    CHECK(qb_shard_parse("1/0", &sh) == QB_EINVAL);
    CHECK(qb_shard_parse("-1/4", &sh) == QB_EINVAL);
    CHECK(qb_shard_parse("x/4", &sh) == QB_EINVAL);
    CHECK(qb_shard_parse("3", &sh) == QB_EINVAL);
    CHECK(qb_shard_parse("", &sh) == QB_EINVAL);
    CHECK(qb_shard_parse("auto", &sh) == QB_EINVAL && strstr(qb_errmsg(), "SLURM_ARRAY_TASK_ID"));
    setenv("SLURM_ARRAY_TASK_ID", "5", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "2", 1);
    CHECK(qb_shard_parse("auto", &sh) == 0 && sh.index == 3 && sh.count == 4);
    CHECK(qb_shard_parse("auto/4", &sh) == 0 && sh.index == 3);
    CHECK(qb_shard_parse("auto/5", &sh) == QB_EINVAL); /* the environment says 4 */
    setenv("SLURM_ARRAY_TASK_ID", "x", 1);
    CHECK(qb_shard_parse("auto", &sh) == QB_EINVAL && strstr(qb_errmsg(), "'x'"));
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    unsetenv("SLURM_ARRAY_TASK_MIN");
    setenv("JOB_COMPLETION_INDEX", "1", 1);
    CHECK(qb_shard_parse("auto", &sh) == QB_EINVAL && strstr(qb_errmsg(), "auto/N"));
    CHECK(qb_shard_parse("auto/3", &sh) == 0 && sh.index == 1 && sh.count == 3);
    setenv("QBRIEF_SHARDS", "2", 1);
    CHECK(qb_shard_parse("auto", &sh) == 0 && sh.index == 1 && sh.count == 2);
    setenv("JOB_COMPLETION_INDEX", "2", 1);
    CHECK(qb_shard_parse("auto", &sh) == QB_EINVAL); /* index 2 of 2 */
    unsetenv("JOB_COMPLETION_INDEX");
    unsetenv("QBRIEF_SHARDS");
}

int main(void)
{
    RUN(test_split_partition);
    RUN(test_cost);
    RUN(test_parse);
    return check_summary();
}
