/* test_store: the SQLite results store. A run with configs, items, results, baseline top-k,
 * latency, memory and calibration is written, read back, and read back again after reopening;
 * resume semantics (a (run, config, item) is recorded once), run-name reuse with another model,
 * constraint failures, a full disk, files that are not a qbrief store or are from a newer
 * qbrief, SIGKILL in the middle of writing (every unit all there or absent), hostile schema
 * versions, readers without write access, and several processes on one store (different
 * runs together; the same run refused while another process holds it). I/O faults are
 * swept in test_store_faults.c. */
#include "kernels/base/err.h"
#include "collector/store/store.h"
#include "tests/check.h"

#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHA_A "ab12000000000000000000000000000000000000000000000000000000000000"
#define SHA_B "cd34000000000000000000000000000000000000000000000000000000000000"
#define SHA_S "5e1f000000000000000000000000000000000000000000000000000000000000"
#define SHA_C "ca11000000000000000000000000000000000000000000000000000000000000"
#define K 5
#define N_POS 3

static const struct qb_store_model model_a = {"m/a.gguf", SHA_A, "llama", "gguf", 260000};
static const struct qb_store_model model_b = {"m/b.gguf", SHA_B, "llama", "gguf", 260000};
static const struct qb_store_suite suite = {"suites/s.csv", SHA_S, 3};

static struct qb_store_run run_info(const char *name)
{
    return (struct qb_store_run){
        .name = name,
        .qbrief_version = "0.1",
        .git_commit = "deadbeef",
        .command_line = "qbrief run m/a.gguf",
        .host = "test",
        .machine_json =
            "{\"cpu\":\"x\",\"cores\":2,\"threads\":2,\"isa\":\"avx2\",\"os\":\"linux\"}",
        .baseline_config = "f32",
        .settings_json = "{\"seed\":1}",
    };
}

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 512, "%s/%s", check_tmpdir(), name);
    return p;
}

static int msg_has(const char *s)
{
    if (strstr(qb_errmsg(), s))
        return 1;
    fprintf(stderr, "  message '%s' lacks '%s'\n", qb_errmsg(), s);
    return 0;
}

static float lp(int64_t item, int64_t pos, int j)
{
    return -0.25f * (float)j - 0.001f * (float)(item * 10 + pos);
}

/* --- the run every read-back test checks ---------------------------------------------- */

struct ids {
    int64_t run, suite, cfg[2], item[3];
};

static const char *keys[3] = {"q1", "q2", "q3"};
static const char *slices[3] = {"arith", "arith", "facts"};

static int write_run(const char *path, struct ids *x)
{
    struct qb_store *s = NULL;
    struct qb_store_run r = run_info("demo");
    int rc;

    if ((rc = qb_store_open(path, 0, &s)) < 0)
        goto out;
    if ((rc = qb_store_run_open(s, &r, &model_a, &suite, &x->run, &x->suite)) < 0)
        goto out;
    rc = qb_store_put_config(s, x->run, &(struct qb_store_config){"f32", 32, 1040000, NAN},
                             &x->cfg[0]);
    if (rc < 0 ||
        (rc = qb_store_put_config(
             s, x->run, &(struct qb_store_config){"w4g128", 4.125, 134062, 0.5}, &x->cfg[1])) < 0)
        goto out;
    for (int i = 0; i < 3; i++) {
        struct qb_store_item it = {keys[i],
                                   slices[i],
                                   i == 2 ? "generate" : "choice",
                                   i == 2 ? "exact_match" : "accuracy",
                                   NULL,
                                   i == 1 ? NULL : "What is 2+2?",
                                   2 + i};
        if ((rc = qb_store_put_item(s, x->suite, &it, &x->item[i])) < 0)
            goto out;
    }
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++) {
            struct qb_store_result res = {
                .config_id = x->cfg[c],
                .item_id = x->item[i],
                .correct = (c + i) % 2,
                .score = i == 2 ? 0.5 : NAN,
                .output = i == 2 ? "four" : NULL,
                .nll = 1.5 + i,
                .n_tokens = 7,
                .mean_kl = c ? 0.01 * (i + 1) : NAN,
                .top1_agreement = c ? 0.9 : NAN,
                .flipped = c ? i == 1 : -1,
            };
            if ((rc = qb_store_begin(s)) < 0)
                goto out;
            rc = qb_store_put_result(s, x->run, &res);
            for (int p = 0; rc == 0 && c == 0 && p < N_POS; p++) {
                int32_t tok[K];
                float l[K];
                for (int j = 0; j < K; j++)
                    tok[j] = (int32_t)(1000 * i + 10 * p + j), l[j] = lp(x->item[i], p, j);
                rc = qb_store_put_topk(s, x->run, x->item[i], p, K, tok, l);
            }
            if (rc < 0) {
                qb_store_rollback(s);
                goto out;
            }
            if ((rc = qb_store_commit(s)) < 0)
                goto out;
        }
    for (int c = 0; c < 2; c++) {
        for (int rep = 0; rep < 2; rep++) {
            struct qb_store_latency l = {
                128, 64, 1, rep, 10.0 + c, 2.5, 170.0 + rep, 400.0, "host-a", "cpu",
            };
            if ((rc = qb_store_put_latency(s, x->run, x->cfg[c], &l)) < 0)
                goto out;
        }
        struct qb_store_memory m = {2048, c ? 134062 : 1040000, 65536, -1, "host-a", "cpu"};
        if ((rc = qb_store_put_memory(s, x->run, x->cfg[c], &m)) < 0)
            goto out;
    }
    if ((rc = qb_store_put_calibration(s, x->run,
                                       &(struct qb_store_calib){x->cfg[1], SHA_C, 128, 512})) < 0 ||
        (rc = qb_store_put_calibration(s, x->run, &(struct qb_store_calib){0, SHA_C, 16, 256})) < 0)
        goto out;
    rc = qb_store_run_finish(s, x->run);
out:
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    qb_store_close(s);
    return rc;
}

struct seen {
    const struct ids *x;
    int n, bad;
};

static int see_run(void *ctx, const struct qb_store_run *r, const struct qb_store_model *m,
                   const struct qb_store_suite *su)
{
    struct seen *v = ctx;
    v->n++;
    v->bad += strcmp(r->name, "demo") || strcmp(r->git_commit, "deadbeef") ||
              strcmp(r->baseline_config, "f32") || !strstr(r->machine_json, "avx2") ||
              strcmp(m->sha256, SHA_A) || strcmp(m->format, "gguf") || m->n_params != 260000 ||
              strcmp(su->sha256, SHA_S) || su->n_items != 3;
    /* ISO-8601 UTC: 2026-11-23T15:25:48.123Z */
    v->bad += strlen(r->started_at) != 24 || r->started_at[10] != 'T' || r->started_at[23] != 'Z' ||
              !r->finished_at || strcmp(r->finished_at, r->started_at) < 0;
    return 0;
}

static int see_config(void *ctx, int64_t id, const struct qb_store_config *c)
{
    struct seen *v = ctx;
    int i = v->n++;
    if (i > 1 || id != v->x->cfg[i])
        return v->bad++, 0;
    v->bad += i == 0
                  ? strcmp(c->spec, "f32") || c->bits_per_weight != 32 || !isnan(c->quant_seconds)
                  : strcmp(c->spec, "w4g128") || c->bits_per_weight != 4.125 ||
                        c->weight_bytes != 134062 || c->quant_seconds != 0.5;
    return 0;
}

static int see_item(void *ctx, int64_t id, const struct qb_store_item *it)
{
    struct seen *v = ctx;
    int i = v->n++;
    if (i > 2 || id != v->x->item[i])
        return v->bad++, 0;
    v->bad += strcmp(it->key, keys[i]) || strcmp(it->slice, slices[i]) || it->line != 2 + i ||
              (i == 1 ? it->prompt != NULL : strcmp(it->prompt, "What is 2+2?")) ||
              it->prompt_sha256 != NULL;
    return 0;
}

static int see_result(void *ctx, const struct qb_store_result *r)
{
    struct seen *v = ctx;
    int c = v->n / 3, i = v->n % 3;
    v->n++;
    if (c > 1 || r->config_id != v->x->cfg[c] || r->item_id != v->x->item[i])
        return v->bad++, 0;
    v->bad +=
        r->correct != (c + i) % 2 || r->nll != 1.5 + i || r->n_tokens != 7 ||
        (i == 2 ? r->score != 0.5 || strcmp(r->output, "four")
                : !isnan(r->score) || r->output != NULL) ||
        (c ? r->mean_kl != 0.01 * (i + 1) || r->top1_agreement != 0.9 || r->flipped != (i == 1)
           : !isnan(r->mean_kl) || !isnan(r->top1_agreement) || r->flipped != -1);
    return 0;
}

struct topk_seen {
    int64_t item;
    int i, n, bad;
};

static int see_topk(void *ctx, int64_t pos, int k, const int32_t *ids, const float *l)
{
    struct topk_seen *v = ctx;
    v->bad += pos != v->n || k != K;
    for (int j = 0; j < K && k == K; j++)
        v->bad += ids[j] != 1000 * v->i + 10 * pos + j || l[j] != lp(v->item, pos, j);
    v->n++;
    return 0;
}

static int see_latency(void *ctx, const struct qb_store_latency *l)
{
    struct seen *v = ctx;
    v->bad += l->prompt_len != 128 || l->gen_len != 64 || l->batch != 1 || l->repetition != v->n ||
              l->e2e_ms != 170.0 + v->n || l->decode_tok_s != 400.0;
    v->n++;
    return 0;
}

static int see_memory(void *ctx, const struct qb_store_memory *m)
{
    struct seen *v = ctx;
    v->bad += m->context != 2048 || m->kv_cache_bytes != 65536 || m->peak_rss_bytes != -1;
    v->n++;
    return 0;
}

static int see_calib(void *ctx, const struct qb_store_calib *c)
{
    struct seen *v = ctx;
    v->bad +=
        strcmp(c->sha256, SHA_C) ||
        (v->n == 0 ? c->config_id != 0 || c->n_sequences != 16
                   : c->config_id != v->x->cfg[1] || c->n_sequences != 128 || c->seq_len != 512);
    v->n++;
    return 0;
}

static void check_run_contents(struct qb_store *s, const struct ids *x)
{
    struct seen v;
    int64_t id;
    int k;
    int32_t tok[K];
    float l[K];

    CHECK(qb_store_run_find(s, "demo", &id) == 0 && id == x->run);
    v = (struct seen){x, 0, 0};
    CHECK(qb_store_get_run(s, x->run, see_run, &v) == 0 && v.n == 1 && v.bad == 0);
    v = (struct seen){x, 0, 0};
    CHECK(qb_store_list_configs(s, x->run, see_config, &v) == 0 && v.n == 2 && v.bad == 0);
    v = (struct seen){x, 0, 0};
    CHECK(qb_store_list_items(s, x->suite, see_item, &v) == 0 && v.n == 3 && v.bad == 0);
    CHECK(qb_store_item_id(s, x->suite, "q2", &id) == 0 && id == x->item[1]);
    v = (struct seen){x, 0, 0};
    CHECK(qb_store_list_results(s, x->run, 0, see_result, &v) == 0 && v.n == 6 && v.bad == 0);
    for (int i = 0; i < 3; i++) {
        struct topk_seen t = {x->item[i], i, 0, 0};
        CHECK(qb_store_list_topk(s, x->run, x->item[i], see_topk, &t) == 0 && t.n == N_POS &&
              t.bad == 0);
    }
    /* get with a smaller buffer: k is the stored k, the first entries are copied */
    CHECK(qb_store_get_topk(s, x->run, x->item[2], 1, 3, tok, l, &k) == 0 && k == K);
    CHECK(tok[0] == 2010 && tok[2] == 2012 && l[2] == lp(x->item[2], 1, 2));
    CHECK(qb_store_get_topk(s, x->run, x->item[2], N_POS, K, tok, l, &k) == QB_EINVAL);
    for (int c = 0; c < 2; c++) {
        v = (struct seen){x, 0, 0};
        CHECK(qb_store_list_latency(s, x->run, x->cfg[c], see_latency, &v) == 0 && v.n == 2 &&
              v.bad == 0);
        v = (struct seen){x, 0, 0};
        CHECK(qb_store_list_memory(s, x->run, x->cfg[c], see_memory, &v) == 0 && v.n == 1 &&
              v.bad == 0);
    }
    v = (struct seen){x, 0, 0};
    CHECK(qb_store_list_calibration(s, x->run, see_calib, &v) == 0 && v.n == 2 && v.bad == 0);
    CHECK(qb_store_check(s) == 0);
}

static void test_roundtrip_and_reopen(void)
{
    struct ids x;
    struct qb_store *s = NULL;
    const char *path = tmp_path("roundtrip.db");

    CHECK(write_run(path, &x) == 0);
    CHECK(qb_store_open(path, 0, &s) == 0);
    if (s) {
        check_run_contents(s, &x);
        qb_store_close(s);
    }
    /* read-only, as qbrief brief opens it: reads work, writes are refused */
    s = NULL;
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    if (s) {
        check_run_contents(s, &x);
        CHECK(qb_store_put_memory(s, x.run, x.cfg[0],
                                  &(struct qb_store_memory){1, 1, 1, 1, NULL, NULL}) == QB_EINVAL);
        qb_store_close(s);
    }
    qb_store_close(NULL);
}

static int count_pair(void *ctx, int64_t config_id, int64_t item_id)
{
    (void)config_id, (void)item_id;
    ++*(int *)ctx;
    return 0;
}

static int stop_at_two(void *ctx, int64_t config_id, int64_t item_id)
{
    (void)config_id, (void)item_id;
    return ++*(int *)ctx == 2 ? 42 : 0;
}

static void test_resume(void)
{
    struct ids x;
    struct qb_store *s = NULL;
    struct qb_store_run r = run_info("demo");
    const char *path = tmp_path("resume.db");
    int64_t run, sid, id;
    int exists = -1, n = 0;
    int32_t tok[1] = {5};
    float l[1] = {-1};

    CHECK(write_run(path, &x) == 0);
    CHECK(qb_store_open(path, 0, &s) == 0);
    if (!s)
        return;
    /* the same name, model and suite reopen the run */
    CHECK(qb_store_run_open(s, &r, &model_a, &suite, &run, &sid) == 0 && run == x.run &&
          sid == x.suite);
    CHECK(qb_store_put_config(s, run, &(struct qb_store_config){"w4g128", 4.125, 134062, 0.5},
                              &id) == 0 &&
          id == x.cfg[1]);
    CHECK(qb_store_put_item(
              s, sid, &(struct qb_store_item){"q3", "x", "choice", "accuracy", NULL, NULL, -1},
              &id) == 0 &&
          id == x.item[2]);
    CHECK(qb_store_result_exists(s, run, x.cfg[1], x.item[2], &exists) == 0 && exists == 1);
    CHECK(qb_store_result_exists(s, run, x.cfg[1], x.item[2] + 100, &exists) == 0 && exists == 0);
    CHECK(qb_store_list_done(s, run, count_pair, &n) == 0 && n == 6);
    n = 0;
    CHECK(qb_store_list_done(s, run, stop_at_two, &n) == 42 && n == 2);
    /* a (run, config, item) is recorded once: the second is refused, the first kept */
    CHECK(qb_store_begin(s) == 0);
    CHECK(qb_store_put_result(s, run,
                              &(struct qb_store_result){x.cfg[1], x.item[2], 0, NAN, "five", NAN,
                                                        -1, NAN, NAN, 1, NULL, NULL}) == QB_EINVAL);
    CHECK(msg_has("already recorded") && msg_has("resume.db") && msg_has("item_results"));
    CHECK(qb_store_put_topk(s, run, x.item[0], 0, 1, tok, l) == QB_EINVAL);
    CHECK(msg_has("baseline_topk"));
    CHECK(qb_store_rollback(s) == 0);
    check_run_contents(s, &x);
    qb_store_close(s);
}

static void test_name_reuse_refused(void)
{
    struct ids x;
    struct qb_store *s = NULL;
    struct qb_store_run r = run_info("demo");
    struct qb_store_suite other = {"suites/t.csv", SHA_C, 3};
    const char *path = tmp_path("reuse.db");
    int64_t run;

    CHECK(write_run(path, &x) == 0);
    CHECK(qb_store_open(path, 0, &s) == 0);
    if (!s)
        return;
    CHECK(qb_store_run_open(s, &r, &model_b, &suite, &run, NULL) == QB_EINVAL);
    CHECK(msg_has("run 'demo'") && msg_has(SHA_A) && msg_has(SHA_B) && msg_has("--name"));
    CHECK(qb_store_run_open(s, &r, &model_a, &other, &run, NULL) == QB_EINVAL);
    CHECK(msg_has("suite sha256") && msg_has(SHA_S) && msg_has(SHA_C));
    /* another name is a new run sharing the suite row */
    r.name = "demo-b";
    CHECK(qb_store_run_open(s, &r, &model_b, &suite, &run, NULL) == 0 && run != x.run);
    check_run_contents(s, &x);
    qb_store_close(s);
}

static void test_constraints(void)
{
    struct ids x, y;
    struct qb_store *s = NULL;
    struct qb_store_run r = run_info("other");
    const char *path = tmp_path("constraints.db");
    int64_t id;
    int32_t tok[1] = {1};
    float l[1] = {0};

    CHECK(write_run(path, &x) == 0);
    CHECK(qb_store_open(path, 0, &s) == 0);
    if (!s)
        return;
    CHECK(qb_store_put_item(
              s, x.suite,
              &(struct qb_store_item){"q9", "x", "Multiple Choice", "accuracy", NULL, NULL, -1},
              &id) == QB_EINVAL);
    CHECK(msg_has("CHECK constraint failed") && msg_has("constraints.db"));
    r.machine_json = "{not json";
    CHECK(qb_store_run_open(s, &r, &model_b, &suite, &y.run, NULL) == QB_EINVAL);
    CHECK(msg_has("machine_json"));
    r.machine_json = NULL;
    CHECK(qb_store_run_open(s, &r, &model_b, &suite, &y.run, NULL) == 0);
    /* a config of run "demo" used with run "other" */
    CHECK(qb_store_put_result(s, y.run,
                              &(struct qb_store_result){x.cfg[0], x.item[0], 1, NAN, NULL, NAN, -1,
                                                        NAN, NAN, -1, NULL, NULL}) == QB_EINVAL);
    CHECK(msg_has("FOREIGN KEY"));
    CHECK(qb_store_put_result(s, x.run,
                              &(struct qb_store_result){x.cfg[0], x.item[0] + 99, 1, NAN, NULL, NAN,
                                                        -1, NAN, NAN, -1, NULL, NULL}) ==
          QB_EINVAL);
    CHECK(qb_store_put_result(s, x.run,
                              &(struct qb_store_result){x.cfg[0], x.item[0], 1, NAN, NULL, NAN, -1,
                                                        NAN, 1.5, -1, NULL, NULL}) == QB_EINVAL);
    CHECK(qb_store_put_topk(s, x.run, x.item[0], 9, 0, tok, l) == QB_EINVAL);
    CHECK(qb_store_put_latency(s, x.run, x.cfg[0],
                               &(struct qb_store_latency){128, 64, 1, 0, 1, 1, 1, 1, NULL, NULL}) ==
          QB_EINVAL);
    CHECK(qb_store_run_finish(s, 12345) == QB_EINVAL);
    CHECK(qb_store_run_find(s, "nope", &id) == QB_EINVAL && msg_has("'nope'"));
    CHECK(qb_store_check(s) == 0);
    qb_store_close(s);
}

/* A cap on the file's size fails writes as a full disk does. */
static void test_disk_full(void)
{
    struct ids x;
    struct qb_store *s = NULL;
    const char *path = tmp_path("full.db");
    char *big = malloc(200000);
    int rc = 0, n_before = 0, n_after = 0, units = 0;
    int32_t tok[64];
    float l[64];

    CHECK(write_run(path, &x) == 0);
    CHECK(qb_store_open(path, 0, &s) == 0);
    if (!s || !big) {
        qb_store_close(s);
        free(big);
        return;
    }
    memset(big, 'x', 199999);
    big[199999] = 0;
    for (int j = 0; j < 64; j++)
        tok[j] = j, l[j] = -j;
    CHECK(qb_store_list_done(s, x.run, count_pair, &n_before) == 0);
    CHECK(qb_store_set_max_bytes(s, 1 << 20) == 0);
    /* each unit: a new item, its result (200 kB of output) and 50 top-k rows */
    for (int u = 0; u < 100 && rc == 0; u++) {
        char key[16];
        int64_t item;
        snprintf(key, sizeof key, "big%d", u);
        if ((rc = qb_store_begin(s)) < 0)
            break;
        rc = qb_store_put_item(
            s, x.suite, &(struct qb_store_item){key, "x", "generate", "exact", NULL, NULL, -1},
            &item);
        if (rc == 0)
            rc = qb_store_put_result(s, x.run,
                                     &(struct qb_store_result){x.cfg[0], item, 1, NAN, big, NAN, -1,
                                                               NAN, NAN, -1, NULL, NULL});
        for (int p = 0; rc == 0 && p < 50; p++)
            rc = qb_store_put_topk(s, x.run, item, p, 64, tok, l);
        if (rc == 0)
            rc = qb_store_commit(s);
        else
            qb_store_rollback(s);
        units += rc == 0;
    }
    CHECK(rc == QB_EIO && msg_has("disk full") && msg_has("full.db"));
    CHECK(units >= 1 && units < 100);
    CHECK(qb_store_list_done(s, x.run, count_pair, &n_after) == 0 && n_after == n_before + units);
    CHECK(qb_store_check(s) == 0);
    qb_store_close(s);
    /* nothing of the failed unit reached the file */
    s = NULL;
    CHECK(qb_store_open(path, 0, &s) == 0);
    if (s) {
        int64_t id;
        char key[16];
        snprintf(key, sizeof key, "big%d", units);
        CHECK(qb_store_item_id(s, x.suite, key, &id) == QB_EINVAL);
        CHECK(qb_store_item_id(s, x.suite, "big0", &id) == 0);
        CHECK(qb_store_check(s) == 0);
        qb_store_close(s);
    }
    free(big);
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f))
        ok = 0;
    return ok ? 0 : -1;
}

static void test_not_a_store(void)
{
    struct qb_store *s = NULL;
    const char *text = tmp_path("text.db");
    static const char junk[] = "id,prompt,answer\nq1,What is 2+2?,4\n";

    CHECK(write_file(text, junk, sizeof junk - 1) == 0);
    CHECK(qb_store_open(text, 0, &s) == QB_EFORMAT && !s);
    CHECK(msg_has("not a qbrief results database") && msg_has("text.db'"));
    CHECK(access(tmp_path("text.db-wal"), F_OK) != 0); /* left as it was */
    CHECK(qb_store_open(tmp_path("missing/x.db"), 0, &s) == QB_EIO && msg_has("missing/x.db"));
    CHECK(qb_store_open(tmp_path("absent.db"), QB_STORE_READONLY, &s) == QB_EIO);
}

/* user_version lives at byte 60 of the header, big-endian */
static void test_future_version(void)
{
    struct ids x;
    struct qb_store *s = NULL;
    const char *path = tmp_path("future.db");
    unsigned char v[4] = {0, 0, 0, 99};
    FILE *f;

    CHECK(write_run(path, &x) == 0); /* closing the last connection checkpoints the WAL */
    CHECK(access(tmp_path("future.db-wal"), F_OK) != 0);
    CHECK((f = fopen(path, "r+b")) != NULL);
    if (!f)
        return;
    CHECK(fseek(f, 60, SEEK_SET) == 0 && fwrite(v, 1, 4, f) == 4);
    fclose(f);
    CHECK(qb_store_open(path, 0, &s) == QB_EUNSUP && !s);
    CHECK(msg_has("newer qbrief") && msg_has("99") && msg_has("future.db'"));
}

static void test_truncated(void)
{
    struct ids x;
    struct qb_store *s = NULL;
    const char *path = tmp_path("trunc.db");
    FILE *f;
    long size;

    CHECK(write_run(path, &x) == 0);
    CHECK((f = fopen(path, "rb")) != NULL);
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fclose(f);
    CHECK(size > 8192 && truncate(path, size / 2) == 0);
    CHECK(qb_store_open(path, 0, &s) == QB_EFORMAT && !s);
    CHECK(msg_has("not a qbrief results database") && msg_has("trunc.db'"));
}

static int open_close(const char *path)
{
    struct qb_store *s = NULL;
    int rc = qb_store_open(path, 0, &s);
    qb_store_close(s);
    return rc;
}

static void test_corpus(void)
{
    CHECK(check_corpus("tests/malformed/store", ".db", open_close) >= 2);
}

/* --- hostile headers -------------------------------------------------------------------- */

static int put_be32(const char *path, long off, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    FILE *f = fopen(path, "r+b");
    int ok = f && fseek(f, off, SEEK_SET) == 0 && fwrite(b, 1, 4, f) == 4;
    if (f && fclose(f))
        ok = 0;
    return ok ? 0 : -1;
}

/* The whole file in a malloc'd buffer (NULL when unreadable). */
static unsigned char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0 && (*n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)*n)) && fread(b, 1, (size_t)*n, f) != (size_t)*n) {
        free(b);
        b = NULL;
    }
    if (f)
        fclose(f);
    return b;
}

/* Opens path in a child, so that a crash fails one check instead of the binary; returns
 * the open's code, or 100 + the signal that killed the child. The message comes back too. */
static int open_in_child(const char *path, int flags)
{
    int fds[2], status = 0, rc;
    char msg[512] = "";
    ssize_t n;
    pid_t pid;

    if (pipe(fds) != 0)
        return 99;
    fflush(NULL);
    if ((pid = fork()) == 0) {
        struct qb_store *s = NULL;
        close(fds[0]);
        rc = qb_store_open(path, flags, &s);
        qb_store_close(s);
        if (write(fds[1], qb_errmsg(), strlen(qb_errmsg())) < 0)
            _exit(98);
        _exit(-rc);
    }
    close(fds[1]);
    n = read(fds[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = 0;
    close(fds[0]);
    waitpid(pid, &status, 0);
    qb_err(0, "%s", msg);
    if (WIFSIGNALED(status))
        return 100 + WTERMSIG(status);
    return -WEXITSTATUS(status);
}

/* A negative user_version indexed migrations[] at -1 (issue 19, item 3): it ran whatever
 * that memory held as SQL, or crashed; a reader was told to upgrade the file with run. */
static void test_negative_version(void)
{
    struct ids x;
    const char *path = tmp_path("negative.db");
    unsigned char *before, *after;
    long n0 = 0, n1 = 0;

    CHECK(write_run(path, &x) == 0 && put_be32(path, 60, 0xffffffffu) == 0);
    before = slurp(path, &n0);
    CHECK(open_in_child(path, 0) == QB_EFORMAT);
    CHECK(msg_has("not a qbrief results database") && msg_has("schema version -1") &&
          msg_has("negative.db'"));
    CHECK(open_in_child(path, QB_STORE_READONLY) == QB_EFORMAT);
    CHECK(msg_has("schema version -1") && !strstr(qb_errmsg(), "upgrade"));
    after = slurp(path, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, (size_t)n0)); /* untouched */
    free(before);
    free(after);
    /* version 0 with our application_id and tables: damage, not a new store to migrate */
    CHECK(put_be32(path, 60, 0) == 0);
    CHECK(open_in_child(path, 0) == QB_EFORMAT && msg_has("schema version 0"));
}

/* A 0-byte file read by brief was "an SQLite database of something else, application_id 0" */
static void test_empty_file_read(void)
{
    struct qb_store *s = NULL;
    const char *path = tmp_path("empty.db");

    CHECK(write_file(path, "", 0) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == QB_EFORMAT && !s);
    CHECK(msg_has("empty.db'") && msg_has("an empty file") &&
          !strstr(qb_errmsg(), "application_id"));
    CHECK(access(tmp_path("empty.db-wal"), F_OK) != 0 &&
          access(tmp_path("empty.db-shm"), F_OK) != 0);
    /* a writer makes a store of it */
    CHECK(qb_store_open(path, 0, &s) == 0 && s);
    qb_store_close(s);
}

/* --- readers ----------------------------------------------------------------------------- */

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int no_wal_shm(const char *db)
{
    char p[600];
    int ok;
    snprintf(p, sizeof p, "%s-wal", db);
    ok = !exists(p);
    snprintf(p, sizeof p, "%s-shm", db);
    return ok && !exists(p);
}

/* A reader that may write leaves no -wal or -shm behind (SQLITE_OPEN_READONLY left both). */
static void test_reader_leaves_nothing(void)
{
    struct ids x;
    struct qb_store *s = NULL;
    const char *path = tmp_path("reader.db");

    CHECK(write_run(path, &x) == 0 && no_wal_shm(path));
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    if (s) {
        check_run_contents(s, &x);
        CHECK(qb_store_put_memory(s, x.run, x.cfg[0],
                                  &(struct qb_store_memory){1, 1, 1, 1, NULL, NULL}) == QB_EINVAL);
        qb_store_close(s);
    }
    CHECK(no_wal_shm(path));
}

/* Drops to user nobody when root (root may write anything); 0 when this process now lacks
 * write access to files it does not own, -1 when it cannot get there. */
static int become_reader(void)
{
    if (geteuid() != 0)
        return 0;
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
        return -1;
    return 0;
}

/* In a child without write access: opens path read-only, checks the run's contents and,
 * when also_run is given, that a run of that name (written by a writer still at work) is
 * seen. The child's exit status: 0 when all held, 77 when it could not drop its rights,
 * another number for the failed step. */
static int read_as_reader(const char *path, const struct ids *x, const char *also_run)
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    if ((pid = fork()) == 0) {
        struct qb_store *s = NULL;
        int64_t id;
        if (become_reader() < 0)
            _exit(77);
        if (qb_store_open(path, QB_STORE_READONLY, &s) < 0) {
            fprintf(stderr, "  reader: %s\n", qb_errmsg());
            _exit(2);
        }
        check_run_contents(s, x);
        if (check_failed_in_test)
            _exit(3);
        if (also_run && qb_store_run_find(s, also_run, &id) < 0)
            _exit(4);
        qb_store_close(s);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* brief could not read a store it may only read (issue 19, item 5): in a read-only folder
 * SQLite could not create the -shm; in a writable one it left -wal and -shm owned by the
 * reader. Root is made user nobody in the child, as root may write anything. */
static void test_reader_without_write_access(void)
{
    struct ids x;
    struct qb_store *w = NULL;
    char dir[512], path[600];
    int rc;

    snprintf(dir, sizeof dir, "%s/ro", check_tmpdir());
    snprintf(path, sizeof path, "%s/r.db", dir);
    CHECK(chmod(check_tmpdir(), 0755) == 0 && mkdir(dir, 0755) == 0);
    CHECK(write_run(path, &x) == 0);

    /* a read-only folder and file */
    CHECK(chmod(path, 0444) == 0 && chmod(dir, 0555) == 0);
    if ((rc = read_as_reader(path, &x, NULL)) == 77) {
        check_skip("test_reader_without_write_access", "cannot drop root's rights");
        goto out;
    }
    CHECK(rc == 0);
    CHECK(no_wal_shm(path));
    /* a read-only file in a folder anyone may write */
    CHECK(chmod(dir, 0777) == 0);
    CHECK(read_as_reader(path, &x, NULL) == 0);
    CHECK(no_wal_shm(path));
    /* a writer at work: the reader reads through its -wal and sees its last commit */
    CHECK(chmod(path, 0644) == 0 && chmod(dir, 0755) == 0);
    CHECK(qb_store_open(path, 0, &w) == 0);
    if (w) {
        struct qb_store_run r = run_info("live");
        int64_t run;
        CHECK(qb_store_run_open(w, &r, &model_b, &suite, &run, NULL) == 0);
        CHECK(access(tmp_path("ro/r.db-wal"), F_OK) == 0);
        CHECK(read_as_reader(path, &x, "live") == 0);
        qb_store_close(w);
    }
    CHECK(no_wal_shm(path));
out:
    chmod(dir, 0755);
    chmod(path, 0644);
}

/* --- several processes on one store ------------------------------------------------------ */

#define N_PROCS 6
#define N_UNITS 12

/* One unit as a run writes it: the item, then its result and top-k in one transaction. */
static int write_unit(struct qb_store *s, int64_t run, int64_t sid, int64_t cfg, int u)
{
    struct qb_store_item it = {NULL, "x", "choice", "accuracy", NULL, NULL, -1};
    char key[16];
    int64_t item;
    int32_t tok[8];
    float l[8];
    int rc;

    snprintf(key, sizeof key, "c%d", u);
    it.key = key;
    for (int j = 0; j < 8; j++)
        tok[j] = u * 10 + j, l[j] = (float)-j;
    if ((rc = qb_store_put_item(s, sid, &it, &item)) < 0 || (rc = qb_store_begin(s)) < 0)
        return rc;
    rc = qb_store_put_result(
        s, run,
        &(struct qb_store_result){cfg, item, u % 2, NAN, NULL, NAN, -1, NAN, NAN, -1, NULL, NULL});
    for (int p = 0; rc == 0 && p < 2; p++)
        rc = qb_store_put_topk(s, run, item, p, 8, tok, l);
    if (rc < 0) {
        qb_store_rollback(s);
        return rc;
    }
    return qb_store_commit(s);
}

/* A child run: waits for the start byte, then writes run `name` on a store that may not
 * exist yet, the way `qbrief run` does, and exits 0 when all of it worked. */
static void run_child(const char *path, const char *name, int go_fd)
{
    struct qb_store *s = NULL;
    struct qb_store_run r = run_info(name);
    int64_t run, sid, cfg;
    char c;
    int rc;

    if (read(go_fd, &c, 1) != 1)
        _exit(9);
    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &r, &model_a, &suite, &run, &sid)) < 0 ||
        (rc = qb_store_put_config(s, run, &(struct qb_store_config){"f32", 32, -1, NAN}, &cfg)) < 0)
        goto fail;
    for (int u = 0; u < N_UNITS; u++)
        if ((rc = write_unit(s, run, sid, cfg, u)) < 0)
            goto fail;
    if ((rc = qb_store_run_finish(s, run)) < 0)
        goto fail;
    qb_store_close(s);
    _exit(0);
fail:
    fprintf(stderr, "  %s: %s\n", name, qb_errmsg());
    qb_store_close(s);
    _exit(1);
}

/* Runs with different names started together on one store all finish (issue 19, item 6:
 * one failed at once with 'database is locked', or 'locked while switching to WAL mode' on
 * a new store). Each round starts N_PROCS processes on a new file at the same moment. */
static void test_concurrent_runs(void)
{
    for (int round = 0; round < 4; round++) {
        char path[512], name[N_PROCS][16], go[N_PROCS];
        int fds[2], n_ok = 0;
        pid_t pid[N_PROCS];
        struct qb_store *s = NULL;

        snprintf(path, sizeof path, "%s/together%d.db", check_tmpdir(), round);
        CHECK(pipe(fds) == 0);
        fflush(NULL);
        for (int i = 0; i < N_PROCS; i++) {
            snprintf(name[i], sizeof name[i], "run%d", i);
            if ((pid[i] = fork()) == 0) {
                close(fds[1]);
                run_child(path, name[i], fds[0]);
            }
        }
        close(fds[0]);
        memset(go, 'g', sizeof go);
        CHECK(write(fds[1], go, sizeof go) == (ssize_t)sizeof go); /* all start at once */
        close(fds[1]);
        for (int i = 0; i < N_PROCS; i++) {
            int status = 0;
            waitpid(pid[i], &status, 0);
            n_ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        CHECK(n_ok == N_PROCS);
        CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
        for (int i = 0; s && i < N_PROCS; i++) {
            int64_t run;
            int n = 0;
            CHECK(qb_store_run_find(s, name[i], &run) == 0);
            CHECK(qb_store_list_done(s, run, count_pair, &n) == 0 && n == N_UNITS);
        }
        if (s)
            CHECK(qb_store_check(s) == 0);
        qb_store_close(s);
        if (n_ok != N_PROCS)
            break;
    }
}

struct claim {
    int rc;
    int pid;
    char msg[240];
};

/* The same run name started twice: both evaluated the same units and the loser died on a
 * UNIQUE constraint (issue 19, item 6). Now exactly one process holds the run and every
 * other is refused at once with a message that names it; a run that finished, or whose
 * process died (a zombie, or reaped), is free again. */
static void test_same_run_twice(void)
{
    const char *path = tmp_path("same.db");
    struct qb_store *s = NULL, *s2 = NULL;
    struct qb_store_run r = run_info("same");
    int res[2], rel[2], n_ok = 0, winner = 0;
    struct claim got[N_PROCS];
    pid_t pid[N_PROCS];
    int64_t run;
    char buf[N_PROCS];

    CHECK(qb_store_open(path, 0, &s) == 0); /* the file exists: only the lock is raced */
    qb_store_close(s);
    s = NULL;
    CHECK(pipe(res) == 0 && pipe(rel) == 0);
    fflush(NULL);
    for (int i = 0; i < N_PROCS; i++)
        if ((pid[i] = fork()) == 0) {
            struct claim c = {0, (int)getpid(), ""};
            int64_t id;
            char b;
            close(res[0]);
            close(rel[1]);
            if ((c.rc = qb_store_open(path, 0, &s)) == 0)
                c.rc = qb_store_run_open(s, &r, &model_a, &suite, &id, NULL);
            snprintf(c.msg, sizeof c.msg, "%s", c.rc ? qb_errmsg() : "");
            if (write(res[1], &c, sizeof c) != (ssize_t)sizeof c || read(rel[0], &b, 1) != 1)
                _exit(9);
            qb_store_close(s);
            _exit(0);
        }
    close(res[1]);
    close(rel[0]);
    for (int i = 0; i < N_PROCS; i++) {
        CHECK(read(res[0], &got[i], sizeof got[i]) == (ssize_t)sizeof got[i]);
        if (got[i].rc == 0)
            n_ok++, winner = got[i].pid;
    }
    CHECK(n_ok == 1);
    for (int i = 0; n_ok == 1 && i < N_PROCS; i++) {
        char want[64];
        snprintf(want, sizeof want, "process %d on", winner);
        if (got[i].rc != 0 && (got[i].rc != QB_EIO || !strstr(got[i].msg, want) ||
                               !strstr(got[i].msg, "run 'same' is being written"))) {
            fprintf(stderr, "  refusal: %s\n", got[i].msg);
            CHECK(0);
        }
    }
    /* while the winner holds it, this process is refused too */
    CHECK(qb_store_open(path, 0, &s) == 0);
    if (s && n_ok == 1) {
        CHECK(qb_store_run_open(s, &r, &model_a, &suite, &run, NULL) == QB_EIO);
        CHECK(msg_has("same.db'") && msg_has("wait for it to finish"));
    }
    memset(buf, 'r', sizeof buf);
    CHECK(write(rel[1], buf, sizeof buf) == (ssize_t)sizeof buf);
    close(rel[1]);
    close(res[0]);
    for (int i = 0; i < N_PROCS; i++)
        waitpid(pid[i], NULL, 0);
    if (!s)
        return;
    /* closing released it; a second handle of the same process takes it again (a resume) */
    CHECK(qb_store_run_open(s, &r, &model_a, &suite, &run, NULL) == 0);
    CHECK(qb_store_open(path, 0, &s2) == 0);
    if (s2)
        CHECK(qb_store_run_open(s2, &r, &model_a, &suite, &run, NULL) == 0);
    qb_store_close(s2);
    qb_store_close(s);
    s = NULL;

    /* a process that died holding its run: once a zombie, then reaped */
    for (int reap = 0; reap < 2; reap++) {
        struct qb_store_run g = run_info(reap ? "gone-reaped" : "gone-zombie");
        siginfo_t info;
        pid_t p;
        fflush(NULL);
        if ((p = fork()) == 0) {
            int64_t id;
            if (qb_store_open(path, 0, &s) < 0 ||
                qb_store_run_open(s, &g, &model_a, &suite, &id, NULL) < 0)
                _exit(1);
            _exit(0); /* no close: the row stays */
        }
        CHECK(waitid(P_PID, (id_t)p, &info, WEXITED | (reap ? 0 : WNOWAIT)) == 0 &&
              info.si_status == 0);
        CHECK(qb_store_open(path, 0, &s) == 0);
        if (s)
            CHECK(qb_store_run_open(s, &g, &model_a, &suite, &run, NULL) == 0);
        qb_store_close(s);
        s = NULL;
        if (!reap)
            waitpid(p, NULL, 0);
    }

    /* the holder inside a write transaction: refused at once all the same, not after the
     * busy timeout */
    {
        struct qb_store_run b = run_info("busy");
        int sync[2], back[2];
        char c = 0;
        time_t t0;
        pid_t p;
        CHECK(pipe(sync) == 0 && pipe(back) == 0);
        fflush(NULL);
        if ((p = fork()) == 0) {
            int64_t id;
            close(sync[0]);
            close(back[1]);
            if (qb_store_open(path, 0, &s) < 0 ||
                qb_store_run_open(s, &b, &model_a, &suite, &id, NULL) < 0 || qb_store_begin(s) < 0)
                _exit(1);
            if (write(sync[1], "b", 1) != 1 || read(back[0], &c, 1) != 1)
                _exit(2);
            qb_store_close(s);
            _exit(0);
        }
        close(sync[1]);
        close(back[0]);
        CHECK(read(sync[0], &c, 1) == 1);
        t0 = time(NULL);
        CHECK(qb_store_open(path, 0, &s) == 0);
        if (s)
            CHECK(qb_store_run_open(s, &b, &model_a, &suite, &run, NULL) == QB_EIO &&
                  msg_has("is being written by process"));
        CHECK(time(NULL) - t0 < 5);
        qb_store_close(s);
        s = NULL;
        CHECK(write(back[1], "x", 1) == 1);
        close(back[1]);
        close(sync[0]);
        waitpid(p, NULL, 0);
    }

    /* a finished run is free while its process still runs */
    {
        struct qb_store_run f = run_info("finished");
        int sync[2], back[2];
        char b = 0;
        pid_t p;
        CHECK(pipe(sync) == 0 && pipe(back) == 0);
        fflush(NULL);
        if ((p = fork()) == 0) {
            int64_t id;
            close(sync[0]);
            close(back[1]);
            if (qb_store_open(path, 0, &s) < 0 ||
                qb_store_run_open(s, &f, &model_a, &suite, &id, NULL) < 0 ||
                qb_store_run_finish(s, id) < 0)
                _exit(1);
            if (write(sync[1], "f", 1) != 1 || read(back[0], &b, 1) != 1)
                _exit(2);
            qb_store_close(s);
            _exit(0);
        }
        close(sync[1]);
        close(back[0]);
        CHECK(read(sync[0], &b, 1) == 1);
        CHECK(qb_store_open(path, 0, &s) == 0);
        if (s)
            CHECK(qb_store_run_open(s, &f, &model_a, &suite, &run, NULL) == 0);
        qb_store_close(s);
        CHECK(write(back[1], "x", 1) == 1);
        close(back[1]);
        close(sync[0]);
        waitpid(p, NULL, 0);
    }
}

/* --- crash safety ---------------------------------------------------------------------- */

#define CRASH_POS 8

/* The child: writes units (item + result + CRASH_POS top-k rows, one transaction each),
 * skipping those already done, tells the parent after the first few, and never exits. */
static void crash_child(const char *path, int fd)
{
    struct qb_store *s = NULL;
    struct qb_store_run r = run_info("crash");
    int64_t run, sid, cfg;
    int told = 0, n_new = 0;

    if (qb_store_open(path, 0, &s) < 0 ||
        qb_store_run_open(s, &r, &model_a, &suite, &run, &sid) < 0 ||
        qb_store_put_config(s, run, &(struct qb_store_config){"f32", 32, -1, NAN}, &cfg) < 0)
        _exit(2);
    for (int u = 0; u < 1000000; u++) {
        char key[16];
        int64_t item;
        int exists, rc;
        snprintf(key, sizeof key, "u%d", u);
        if (qb_store_begin(s) < 0 ||
            qb_store_put_item(
                s, sid, &(struct qb_store_item){key, "x", "choice", "accuracy", NULL, NULL, -1},
                &item) < 0)
            _exit(3);
        if (qb_store_result_exists(s, run, cfg, item, &exists) < 0)
            _exit(3);
        rc = exists
                 ? 0
                 : qb_store_put_result(s, run,
                                       &(struct qb_store_result){cfg, item, u % 2, NAN, "out", NAN,
                                                                 -1, NAN, NAN, -1, NULL, NULL});
        for (int p = 0; rc == 0 && !exists && p < CRASH_POS; p++) {
            int32_t tok[16];
            float l[16];
            for (int j = 0; j < 16; j++)
                tok[j] = (int32_t)(u * 100 + p), l[j] = (float)-j;
            rc = qb_store_put_topk(s, run, item, p, 16, tok, l);
        }
        if (rc < 0 || qb_store_commit(s) < 0)
            _exit(4);
        n_new += !exists;
        if (!told && n_new >= 5) { /* at least 5 more units than the last round are committed */
            told = 1;
            if (write(fd, "x", 1) != 1)
                _exit(5);
        }
    }
    _exit(0);
}

struct crash_seen {
    struct qb_store *s;
    int64_t run;
    int n_items, n_results, bad;
};

static int crash_item(void *ctx, int64_t id, const struct qb_store_item *it)
{
    struct crash_seen *v = ctx;
    int64_t cfg = 0;
    int exists = 0, k = 0, u = atoi(it->key + 1);
    int32_t tok[16];
    float l[16];

    if (it->key[0] != 'u')
        return 0;
    v->n_items++;
    /* the run's only config is the first: ids start at 1 in a fresh file */
    cfg = 1;
    if (qb_store_result_exists(v->s, v->run, cfg, id, &exists) < 0 || !exists) {
        v->bad++;
        return 0;
    }
    v->n_results++;
    for (int p = 0; p < CRASH_POS; p++)
        if (qb_store_get_topk(v->s, v->run, id, p, 16, tok, l, &k) < 0 || k != 16 ||
            tok[15] != u * 100 + p || l[15] != -15.0f)
            v->bad++;
    if (qb_store_get_topk(v->s, v->run, id, CRASH_POS, 16, tok, l, &k) != QB_EINVAL)
        v->bad++;
    return 0;
}

static void test_crash_safety(void)
{
    const char *path = tmp_path("crash.db");
    int last = 0;

    /* kill three times at different points; each child resumes where the last one died */
    for (int round = 0; round < 3; round++) {
        int fds[2], status = 0;
        char c;
        pid_t pid;
        struct qb_store *s = NULL;
        struct crash_seen v = {0};
        int64_t run;

        CHECK(pipe(fds) == 0);
        fflush(NULL);
        if ((pid = fork()) == 0) {
            close(fds[0]);
            crash_child(path, fds[1]);
        }
        close(fds[1]);
        CHECK(pid > 0 && read(fds[0], &c, 1) == 1);
        close(fds[0]);
        usleep(10000 + 15000 * round);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        CHECK(qb_store_open(path, 0, &s) == 0);
        if (!s)
            return;
        CHECK(qb_store_check(s) == 0);
        CHECK(qb_store_run_find(s, "crash", &run) == 0);
        v.s = s;
        v.run = run;
        CHECK(qb_store_list_items(s, 1, crash_item, &v) == 0);
        printf("  round %d: %d units complete, none partial\n", round, v.n_results);
        CHECK(v.bad == 0 && v.n_items == v.n_results && v.n_results > last);
        last = v.n_results;
        qb_store_close(s);
    }
}

int main(void)
{
    RUN(test_roundtrip_and_reopen);
    RUN(test_resume);
    RUN(test_name_reuse_refused);
    RUN(test_constraints);
    RUN(test_disk_full);
    RUN(test_not_a_store);
    RUN(test_future_version);
    RUN(test_truncated);
    RUN(test_corpus);
    RUN(test_crash_safety);
    RUN(test_negative_version);
    RUN(test_empty_file_read);
    RUN(test_reader_leaves_nothing);
    RUN(test_reader_without_write_access);
    RUN(test_concurrent_runs);
    RUN(test_same_run_twice);
    return check_summary();
}
