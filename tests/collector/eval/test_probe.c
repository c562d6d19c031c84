/* test_probe: the latency probe delivers the samples it promises with self-consistent values
 * (no timing thresholds: timings belong in benchmarks), the memory probe reports the
 * qmodel's bytes and the KV size engine.c allocates, fails cleanly and reaps its child, and
 * the machine description is complete and valid JSON. */
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/eval/probe.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "tests/check.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define GGUF "models/stories260K-gguf/stories260K.gguf"

struct collect {
    int n1, nb;
    int64_t batch;
    int bad;
};

static int on_sample(void *ctx, const struct qb_latency_sample *s)
{
    struct collect *c = ctx;
    if (s->batch == 1) {
        c->n1++;
        printf("  p=%-3lld g=%lld rep=%lld  ttft %.3f ms  tpot %.3f ms  e2e %.3f ms  decode %.0f "
               "tok/s  "
               "prefill %.0f tok/s\n",
               (long long)s->prompt_len, (long long)s->gen_len, (long long)s->repetition,
               s->ttft_ms, s->tpot_ms, s->e2e_ms, s->decode_tok_s, s->prefill_tok_s);
        if (!(isfinite(s->ttft_ms) && s->ttft_ms > 0 && isfinite(s->tpot_ms) && s->tpot_ms > 0 &&
              isfinite(s->e2e_ms) && s->e2e_ms >= s->ttft_ms && isfinite(s->decode_tok_s) &&
              s->decode_tok_s > 0 && isfinite(s->prefill_tok_s) && s->prefill_tok_s > 0))
            c->bad++;
        /* e2e = ttft + (gen_len - 1) * tpot; tok/s = 1000 / tpot; prefill = p / ttft */
        if (fabs(s->e2e_ms - (s->ttft_ms + (double)(s->gen_len - 1) * s->tpot_ms)) >
                1e-6 * s->e2e_ms ||
            fabs(s->decode_tok_s * s->tpot_ms - 1000.0) > 1e-6 * 1000.0 ||
            fabs(s->prefill_tok_s * s->ttft_ms - 1000.0 * (double)s->prompt_len) >
                1e-6 * 1000.0 * (double)s->prompt_len)
            c->bad++;
        if (s->gen_len != 8 || (s->prompt_len != 8 && s->prompt_len != 32) || s->repetition < 0 ||
            s->repetition > 2)
            c->bad++;
    } else {
        c->nb++;
        printf("  p=%-3lld batch=%lld rep=%lld  %.3f ms for the batch, prefill %.0f tok/s\n",
               (long long)s->prompt_len, (long long)s->batch, (long long)s->repetition, s->e2e_ms,
               s->prefill_tok_s);
        if (s->batch != c->batch || s->gen_len != 0 || !isnan(s->ttft_ms) || !isnan(s->tpot_ms) ||
            !isnan(s->decode_tok_s) || !(isfinite(s->e2e_ms) && s->e2e_ms > 0) ||
            fabs(s->prefill_tok_s * s->e2e_ms - 1000.0 * (double)(s->batch * s->prompt_len)) >
                1e-6 * 1000.0 * (double)(s->batch * s->prompt_len))
            c->bad++;
    }
    return 0;
}

static int stop_early(void *ctx, const struct qb_latency_sample *s)
{
    (void)s;
    (*(int *)ctx)++;
    return QB_EIO;
}

static struct qb_model *load_gguf(void)
{
    struct qb_model *m = NULL;
    struct qb_load_opts lo = {0};
    if (qb_model_load(qb_shared_path(GGUF), &lo, &m) < 0) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        return NULL;
    }
    return m;
}

static void test_latency(void)
{
    struct qb_model *m = load_gguf();
    struct qb_qmodel *qm = NULL;
    struct qb_qspec spec;
    int64_t lens[] = {8, 32};
    struct qb_latency_opts o = {.prompt_lens = lens,
                                .n_prompt_lens = 2,
                                .gen_len = 8,
                                .warmup = 1,
                                .repetitions = 3,
                                .batch = 4,
                                .seed = 7};
    struct collect c = {.batch = 4};
    int calls = 0;

    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(qb_qspec_parse("w4g32", &spec) == 0);
    CHECK(qb_qmodel_new(m, &spec, &qm) == 0);
    if (!qm)
        goto out;
    CHECK(qb_probe_latency(qm, &o, on_sample, &c) == 0);
    CHECK(c.n1 == 2 * 3);
    CHECK(c.nb == 2 * 3);
    CHECK(c.bad == 0);

    /* batch 0 measures batch 1 only */
    c = (struct collect){.batch = 0};
    o.batch = 0;
    o.n_prompt_lens = 1;
    CHECK(qb_probe_latency(qm, &o, on_sample, &c) == 0);
    CHECK(c.n1 == 3 && c.nb == 0 && c.bad == 0);

    /* the callback's error stops the probe */
    CHECK(qb_probe_latency(qm, &o, stop_early, &calls) == QB_EIO);
    CHECK(calls == 1);

    /* a request longer than the model's context is refused before anything runs */
    int64_t too_long[] = {8, m->cfg.max_seq_len};
    o.prompt_lens = too_long;
    o.n_prompt_lens = 2;
    c = (struct collect){0};
    CHECK(qb_probe_latency(qm, &o, on_sample, &c) == QB_ERANGE);
    printf("  %s\n", qb_errmsg());
    CHECK(strstr(qb_errmsg(), "context") != NULL);
    CHECK(c.n1 == 0);

    /* one position past the context: prompt + gen_len - 1 positions are needed */
    int64_t one_over[] = {m->cfg.max_seq_len - 6};
    o.prompt_lens = one_over;
    o.n_prompt_lens = 1;
    CHECK(qb_probe_latency(qm, &o, on_sample, &c) == QB_ERANGE);
    CHECK(c.n1 == 0);

    /* bad options */
    o.gen_len = 1;
    CHECK(qb_probe_latency(qm, &o, on_sample, &c) == QB_EINVAL);
    o.gen_len = 8;
    o.repetitions = 0;
    CHECK(qb_probe_latency(qm, &o, on_sample, &c) == QB_EINVAL);
out:
    qb_qmodel_free(qm);
    qb_model_free(m);
}

static void test_memory(void)
{
    struct qb_model *m = load_gguf();
    struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}}, w4;
    struct qb_qmodel *qm_f32 = NULL, *qm_w4 = NULL;
    struct qb_mem_result rf = {0}, rw = {0};
    struct qb_load_opts lo = {0};
    char path[4096];
    int64_t ctx = 128, kv;

    CHECK(m != NULL);
    if (!m)
        return;
    snprintf(path, sizeof path, "%s", qb_shared_path(GGUF));
    CHECK(qb_qspec_parse("w4g32", &w4) == 0);
    CHECK(qb_qmodel_new(m, &f32, &qm_f32) == 0);
    CHECK(qb_qmodel_new(m, &w4, &qm_w4) == 0);
    if (!qm_f32 || !qm_w4)
        goto out;
    kv = (int64_t)m->cfg.n_layers * ctx * m->cfg.n_kv_heads * m->cfg.head_dim * 2 * 4;
    CHECK(qb_probe_kv_bytes(&m->cfg, ctx) == kv);

    CHECK(qb_probe_memory(path, &lo, &f32, ctx, &rf) == 0);
    CHECK(qb_probe_memory(path, &lo, &w4, ctx, &rw) == 0);
    printf("  f32:   context %lld, weights %lld B, kv %lld B, peak rss %lld B, VmHWM %lld B, at "
           "fork %lld B\n",
           (long long)rf.context, (long long)rf.weight_bytes, (long long)rf.kv_cache_bytes,
           (long long)rf.peak_rss_bytes, (long long)rf.vm_hwm_bytes, (long long)rf.start_rss_bytes);
    printf("  w4g32: context %lld, weights %lld B, kv %lld B, peak rss %lld B, VmHWM %lld B, at "
           "fork %lld B\n",
           (long long)rw.context, (long long)rw.weight_bytes, (long long)rw.kv_cache_bytes,
           (long long)rw.peak_rss_bytes, (long long)rw.vm_hwm_bytes, (long long)rw.start_rss_bytes);
    CHECK(rf.context == ctx && rw.context == ctx);
    CHECK(rf.weight_bytes == (int64_t)qb_qmodel_bytes(qm_f32));
    CHECK(rw.weight_bytes == (int64_t)qb_qmodel_bytes(qm_w4));
    CHECK(rw.weight_bytes < rf.weight_bytes);
    CHECK(rf.kv_cache_bytes == kv && rw.kv_cache_bytes == kv);
    CHECK(rf.peak_rss_bytes > 0 && rw.peak_rss_bytes > 0);
    CHECK(rf.vm_hwm_bytes > 0 && rf.start_rss_bytes > 0); /* Linux has /proc */
    CHECK(rf.peak_rss_bytes >= rf.start_rss_bytes && rw.peak_rss_bytes >= rw.start_rss_bytes);

    /* context 0 means the model's own; a longer one is refused by the child */
    CHECK(qb_probe_memory(path, &lo, &w4, 0, &rw) == 0);
    CHECK(rw.context == m->cfg.max_seq_len);
    CHECK(qb_probe_memory(path, &lo, &w4, m->cfg.max_seq_len + 1, &rw) == QB_ERANGE);
    printf("  %s\n", qb_errmsg());
out:
    qb_qmodel_free(qm_w4);
    qb_qmodel_free(qm_f32);
    qb_model_free(m);
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
}

static void test_memory_missing(void)
{
    struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}};
    struct qb_mem_result r = {0};
    const char *path = "/nonexistent/qbrief-test/model.gguf";
    int rc = qb_probe_memory(path, NULL, &f32, 16, &r);

    printf("  %s\n", qb_errmsg());
    CHECK(rc == QB_EIO);
    CHECK(strstr(qb_errmsg(), path) != NULL);
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
}

static void test_machine(void)
{
    struct qb_machine mi;
    char *js = NULL;
    json_t *root;
    json_error_t err;

    qb_machine_info(&mi);
    printf("  cpu '%s', %lld cores, %d threads, isa %s, features '%s', %lld B, %s, host %s\n",
           mi.cpu, (long long)mi.cores, mi.threads, mi.isa, mi.features, (long long)mi.memory_bytes,
           mi.os, mi.hostname);
    CHECK(mi.cpu[0] != '\0');
    CHECK(mi.cores >= 1);
    CHECK(mi.threads >= 1);
    CHECK(mi.isa[0] != '\0');
    CHECK(mi.os[0] != '\0');
    CHECK(qb_machine_json(&mi, &js) == 0);
    if (!js)
        return;
    printf("  %s\n", js);
    root = json_loads(js, 0, &err);
    CHECK(root && json_is_object(root));
    if (root) {
        CHECK(json_is_string(json_object_get(root, "cpu")) &&
              strcmp(json_string_value(json_object_get(root, "cpu")), mi.cpu) == 0);
        CHECK(json_integer_value(json_object_get(root, "cores")) == mi.cores);
        CHECK(json_integer_value(json_object_get(root, "threads")) == mi.threads);
        CHECK(json_is_string(json_object_get(root, "isa")) &&
              strcmp(json_string_value(json_object_get(root, "isa")), mi.isa) == 0);
        CHECK(json_is_array(json_object_get(root, "features")));
        CHECK(json_is_integer(json_object_get(root, "memory_bytes")));
        CHECK(json_is_string(json_object_get(root, "os")));
        CHECK(json_is_string(json_object_get(root, "hostname")));
    }
    json_decref(root);
    free(js);
}

int main(void)
{
    RUN(test_machine);
    RUN(test_memory_missing);
    if (!qb_shared_path(GGUF)) {
        check_skip("test_latency", "needs ../shared/" GGUF);
        check_skip("test_memory", "needs ../shared/" GGUF);
    } else {
        RUN(test_latency);
        RUN(test_memory);
    }
    return check_summary();
}
