/* test_vk: the Vulkan infrastructure (kernels/vulkan/vk.h) on the paths a big model or a
 * discrete GPU takes and lavapipe does not by itself:
 *   - binding in ranges: QB_VK_MAX_RANGE=4096 lowers the binding limit, so a weight of 120
 *     or 300 rows of 129 floats is split into chunks of whole rows; uploads, reads and copies
 *     that span chunks round-trip, and matmul (f32/f16/bf16), embed and logits (which then
 *     also runs in batches of tokens) agree with the CPU backend as in test_backend_vulkan;
 *     an activation buffer past the limit is refused with QB_ENOMEM naming the limit;
 *   - staging: QB_VK_STAGING=1 puts buffers in memory the host does not map, so every
 *     upload and read goes through the staging buffer (in pieces, with the small limit);
 *   - the pipeline cache and a shader name that is not built in.
 * Runs with QB_VK_VALIDATION=1 and requires no validation error; skips, saying why, where
 * there is no Vulkan device. */
#include "kernels/backend.h"
#include "kernels/base/err.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/quantize.h"
#include "kernels/vulkan/backend_vulkan.h"
#include "kernels/vulkan/vk.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

static uint32_t rng = 777;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / (float)0x800000 - 1.0f;
}

static void roundtrip(struct qb_vk *vk)
{
    const uint64_t unit = 516, units = 300, bytes = unit * units;
    struct qb_vk_buf *a = NULL, *b = NULL, *big = NULL;
    uint8_t *src = malloc(bytes), *dst = malloc(bytes);
    for (uint64_t i = 0; i < bytes; i++)
        src[i] = (uint8_t)(i * 131 + (i >> 9));
    CHECK(qb_vk_buf_new(vk, bytes, unit, QB_VK_MEM_WEIGHTS, "a test weight", &a) == 0);
    CHECK(qb_vk_buf_new(vk, bytes, 100, QB_VK_MEM_SCRATCH, "a second buffer", &b) == 0);
    if (!a || !b)
        goto out;
    CHECK(a->units_per_chunk == 4096 / 516 && a->n_chunks == 43); /* 7 rows a chunk */
    for (int c = 0; c < a->n_chunks; c++)
        CHECK(a->chunk[c].bytes <= vk->max_range && a->chunk[c].bytes % unit == 0);
    CHECK(qb_vk_upload(vk, a, 0, src, bytes) == 0);
    memset(dst, 0, bytes);
    CHECK(qb_vk_download(vk, a, 0, dst, bytes) == 0 && memcmp(src, dst, bytes) == 0);
    /* a piece across several chunk boundaries, at odd offsets */
    CHECK(qb_vk_upload(vk, a, 3001, src + 17, 9000) == 0);
    CHECK(qb_vk_download(vk, a, 3001, dst, 9000) == 0 && memcmp(src + 17, dst, 9000) == 0);
    /* a recorded copy between buffers chunked differently */
    CHECK(qb_vk_copy(vk, b, 1000, a, 0, 50000) == 0);
    CHECK(qb_vk_download(vk, b, 1000, dst, 50000) == 0);
    CHECK(qb_vk_download(vk, a, 0, dst + 60000, 50000) == 0);
    CHECK(memcmp(dst, dst + 60000, 50000) == 0);
    /* one binding past the limit: refused, naming the limit */
    CHECK(qb_vk_buf_new(vk, 8192, 0, QB_VK_MEM_SCRATCH, "an activation buffer", &big) == QB_ENOMEM);
    CHECK(strstr(qb_errmsg(), "maxStorageBufferRange") != NULL);
out:
    qb_vk_buf_free(vk, a);
    qb_vk_buf_free(vk, b);
    free(src);
    free(dst);
}

static void with_env(const char *max_range, const char *staging, int want_uma)
{
    struct qb_vk *vk = NULL;
    if (max_range)
        setenv("QB_VK_MAX_RANGE", max_range, 1);
    if (staging)
        setenv("QB_VK_STAGING", staging, 1);
    CHECK(qb_vk_new(0, &vk) == 0);
    unsetenv("QB_VK_MAX_RANGE");
    unsetenv("QB_VK_STAGING");
    if (!vk)
        return;
    CHECK(vk->max_range == 4096);
    if (want_uma >= 0)
        CHECK(vk->caps.uma == want_uma && (vk->staging != NULL) == !want_uma);
    roundtrip(vk);
    qb_vk_free(vk);
}

static void test_split_ranges(void)
{
    with_env("4096", NULL, -1);
}

static void test_split_ranges_staged(void)
{
    with_env("4096", "1", 0);
}

/* ops through the seam with the small limit (and optionally staging) vs the CPU */
static void seam_case(const char *staging)
{
    struct qb_backend_shape sh = {.dim = 129,
                                  .hidden_dim = 120,
                                  .n_heads = 2,
                                  .n_kv_heads = 2,
                                  .head_dim = 18,
                                  .max_ctx = 16,
                                  .cache_layers = 1,
                                  .max_batch = 7,
                                  .rope_theta = 10000,
                                  .norm_eps = 1e-5f};
    struct qb_backend g = {0}, c = {0};
    const enum qb_fmt fmts[] = {QB_FMT_F32, QB_FMT_F16, QB_FMT_BF16};
    const int64_t n = 7, cols = 129;
    float *w = malloc(300 * cols * sizeof *w), *xs = malloc(n * cols * sizeof *xs);
    float *a = malloc(300 * n * sizeof *a), *b = malloc(300 * n * sizeof *b);

    setenv("QB_VK_MAX_RANGE", "4096", 1);
    if (staging)
        setenv("QB_VK_STAGING", staging, 1);
    CHECK(qb_backend_vulkan_new(&sh, &g) == 0 && qb_backend_cpu_new(&sh, &c) == 0);
    unsetenv("QB_VK_MAX_RANGE");
    unsetenv("QB_VK_STAGING");
    if (!g.ops || !c.ops)
        goto out;
    for (int64_t i = 0; i < 300 * cols; i++)
        w[i] = frand();
    for (int64_t i = 0; i < n * cols; i++)
        xs[i] = frand();
    for (int f = 0; f < 3; f++) {
        struct qb_qtensor t;
        struct qb_bweight *wg = NULL, *wc = NULL, *hg = NULL, *hc = NULL;
        struct qb_bbuf *xg = NULL, *xc = NULL, *yg = NULL, *yc = NULL;
        int32_t tok[7] = {0, 119, 7, 8, 63, 64, 111};
        if (fmts[f] == QB_FMT_F32)
            qb_qtensor_wrap_f32(w, 300, cols, &t);
        else
            CHECK(qb_quantize(w, 300, cols, fmts[f], 0, 0, NULL, &t) == 0);
        struct qb_qtensor t120 = t;
        t120.rows = 120; /* the first 120 rows: a matmul whose output fits one binding */
        CHECK(g.ops->weight_new(g.ctx, &t120, QB_ACT_F32, &wg) == 0 &&
              c.ops->weight_new(c.ctx, &t120, QB_ACT_F32, &wc) == 0 &&
              g.ops->weight_new(g.ctx, &t, QB_ACT_F32, &hg) == 0 &&
              c.ops->weight_new(c.ctx, &t, QB_ACT_F32, &hc) == 0);
        CHECK(g.ops->buf_new(g.ctx, n * cols, &xg) == 0 &&
              c.ops->buf_new(c.ctx, n * cols, &xc) == 0 &&
              g.ops->buf_new(g.ctx, n * 120, &yg) == 0 && c.ops->buf_new(c.ctx, n * 120, &yc) == 0);
        if (!wg || !wc || !hg || !hc || !xg || !xc || !yg || !yc)
            goto next;
        /* matmul over 18 chunks (f32: 7 rows each) */
        CHECK(g.ops->write(g.ctx, xg, 0, xs, n * cols) == 0 &&
              c.ops->write(c.ctx, xc, 0, xs, n * cols) == 0);
        for (int64_t k = 1; k <= n; k += 6) { /* n = 1 (matrix-vector) and 7 (tiled) */
            CHECK(g.ops->matmul(g.ctx, yg, xg, k, wg) == 0 &&
                  c.ops->matmul(c.ctx, yc, xc, k, wc) == 0);
            CHECK(g.ops->read(g.ctx, yg, 0, a, k * 120) == 0 &&
                  c.ops->read(c.ctx, yc, 0, b, k * 120) == 0);
            for (int64_t i = 0; i < k * 120; i++)
                CHECK_NEAR(a[i], b[i], 1e-5 * cols);
        }
        /* logits of 300 rows: 3 tokens a batch */
        CHECK(g.ops->logits(g.ctx, a, xg, n, hg) == 0 && c.ops->logits(c.ctx, b, xc, n, hc) == 0);
        for (int64_t i = 0; i < n * 300; i++)
            CHECK_NEAR(a[i], b[i], 1e-5 * cols);
        /* embed from a split table: exact */
        CHECK(g.ops->embed(g.ctx, wg, tok, n, xg) == 0 && c.ops->embed(c.ctx, wc, tok, n, xc) == 0);
        CHECK(g.ops->read(g.ctx, xg, 0, a, n * cols) == 0 &&
              c.ops->read(c.ctx, xc, 0, b, n * cols) == 0);
        CHECK(memcmp(a, b, (size_t)(n * cols) * sizeof *a) == 0);
    next:
        g.ops->weight_free(g.ctx, wg);
        c.ops->weight_free(c.ctx, wc);
        g.ops->weight_free(g.ctx, hg);
        c.ops->weight_free(c.ctx, hc);
        g.ops->buf_free(g.ctx, xg);
        c.ops->buf_free(c.ctx, xc);
        g.ops->buf_free(g.ctx, yg);
        c.ops->buf_free(c.ctx, yc);
        qb_qtensor_release(&t);
    }
out:
    if (g.ops)
        g.ops->free(g.ctx);
    if (c.ops)
        c.ops->free(c.ctx);
    free(w);
    free(xs);
    free(a);
    free(b);
}

static void test_split_through_the_backend(void)
{
    seam_case(NULL);
}

static void test_split_staged_through_the_backend(void)
{
    seam_case("1");
}

static void test_pipelines(void)
{
    struct qb_vk *vk = NULL;
    struct qb_vk_pipe *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
    CHECK(qb_vk_new(0, &vk) == 0);
    if (!vk)
        return;
    uint32_t s1[2] = {vk->lim.wg_size, 1}, s2[2] = {vk->lim.wg_size, 2};
    CHECK(vk->lim.wg_size >= 1 && (vk->lim.wg_size & (vk->lim.wg_size - 1)) == 0 &&
          vk->lim.wg_size <= vk->lim.max_invocations);
    CHECK(qb_vk_pipeline(vk, "ew", 2, s1, 2, &p1) == 0 &&
          qb_vk_pipeline(vk, "ew", 2, s1, 2, &p2) == 0 &&
          qb_vk_pipeline(vk, "ew", 2, s2, 2, &p3) == 0);
    CHECK(p1 && p1 == p2 && p3 != p1); /* cached by name and constants */
    CHECK(qb_vk_pipeline(vk, "no_such_shader", 1, NULL, 0, &p4) == QB_EINVAL && !p4);
    CHECK(strstr(qb_errmsg(), "no_such_shader") != NULL);
    CHECK(qb_vk_n_shaders >= 8);
    qb_vk_free(vk);
}

/* buffers a caller never freed go with the context (the validation layer reports any
 * object left at vkDestroyDevice, and LSan any host memory) */
static void test_teardown_releases_buffers(void)
{
    struct qb_vk *vk = NULL;
    struct qb_vk_buf *a = NULL, *b = NULL;
    float x[5] = {1, 2, 3, 4, 5};
    int before = qb_vk_validation_errors();
    CHECK(qb_vk_new(0, &vk) == 0);
    if (!vk)
        return;
    CHECK(qb_vk_buf_new(vk, 20, 0, QB_VK_MEM_SCRATCH, "a", &a) == 0 &&
          qb_vk_buf_new(vk, 20, 0, QB_VK_MEM_WEIGHTS, "b", &b) == 0);
    CHECK(a && b && qb_vk_upload(vk, a, 0, x, sizeof x) == 0 &&
          qb_vk_copy(vk, b, 0, a, 0, sizeof x) == 0); /* recorded, never submitted */
    CHECK(vk->mem[QB_VK_MEM_WEIGHTS] == 20);
    qb_vk_buf_free(vk, a);
    qb_vk_free(vk);
    CHECK(qb_vk_validation_errors() == before);
}

static void test_no_validation_errors(void)
{
    CHECK(qb_vk_validation_errors() == 0);
}

int main(void)
{
    char why[600];
    struct qb_vk_device_info dev[4];
    int nd = 0;
    setenv("QB_VK_VALIDATION", "1", 0);
    if (qb_vulkan_devices(dev, 4, &nd) < 0 || nd == 0) {
        snprintf(why, sizeof why, "no Vulkan device: %s", qb_errmsg());
        check_skip("vulkan infrastructure tests", why);
        return check_summary();
    }
    RUN(test_split_ranges);
    RUN(test_split_ranges_staged);
    RUN(test_split_through_the_backend);
    RUN(test_split_staged_through_the_backend);
    RUN(test_pipelines);
    RUN(test_teardown_releases_buffers);
    RUN(test_no_validation_errors);
    return check_summary();
}
