/* test_backend_vulkan: each op of the Vulkan backend against the CPU backend through the
 * seam (kernels/backend.h), on odd shapes (rows and columns that are not multiples of any
 * workgroup, n = 1, 2, 3, 17, 31, 70), with a bound per op and format stated beside each check:
 *
 *   embed (f32/f16/bf16)      exact (decoding is exact on both)
 *   matmul (f32/f16/bf16)     |gpu - cpu| <= 1e-5 * sum_i |w_i x_i| + 1e-7 (f32 sums in
 *                             another order); n = 1, 2 take the matrix-vector kernel, the
 *                             others the tiled one; with and without subgroup reductions
 *   rmsnorm, add, add_bias    1e-6 relative to the row's largest magnitude
 *   swiglu                    1e-6 relative (exp on the device vs expf)
 *   rope (both layouts)       1e-6 relative (the same cos/sin table)
 *   attention (GQA, causal)   1e-5 absolute, over a prefill, single steps and a short
 *                             batch, also with a subset of heads
 *   logits                    as matmul
 *
 * Also: read/write/copy round trips, mem and device_name, and a clear error for a device
 * that does not exist. Runs with QB_VK_VALIDATION=1 and requires no validation error. Skips,
 * saying why, where there is no Vulkan device. */
#include "kernels/backend.h"
#include "kernels/base/err.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/quantize.h"
#include "kernels/vulkan/backend_vulkan.h"
#include "kernels/vulkan/vk.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

static struct qb_backend_shape shape = {.dim = 45,
                                        .hidden_dim = 97,
                                        .n_heads = 6,
                                        .n_kv_heads = 2,
                                        .head_dim = 18,
                                        .max_ctx = 70,
                                        .cache_layers = 2,
                                        .max_batch = 40,
                                        .rope_theta = 10000,
                                        .norm_eps = 1e-5f};
static struct qb_backend gpu, cpu;

static uint32_t rng = 12345;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / (float)0x800000 - 1.0f;
}
static float *rand_vec(int64_t n)
{
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = frand();
    return v;
}

/* the same host data in a buffer of each backend */
struct pair {
    struct qb_bbuf *g, *c;
    int64_t n;
};
static struct pair pair_new(const float *src, int64_t n)
{
    struct pair p = {NULL, NULL, n};
    CHECK(gpu.ops->buf_new(gpu.ctx, n, &p.g) == 0 && cpu.ops->buf_new(cpu.ctx, n, &p.c) == 0);
    if (src && p.g && p.c)
        CHECK(gpu.ops->write(gpu.ctx, p.g, 0, src, n) == 0 &&
              cpu.ops->write(cpu.ctx, p.c, 0, src, n) == 0);
    return p;
}
static void pair_free(struct pair *p)
{
    gpu.ops->buf_free(gpu.ctx, p->g);
    cpu.ops->buf_free(cpu.ctx, p->c);
}
/* max |gpu - cpu| / (max |cpu| + tiny) over the first n floats */
static double pair_rel(const struct pair *p, int64_t n)
{
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    double worst = 0, big = 1e-30;
    CHECK(gpu.ops->read(gpu.ctx, p->g, 0, a, n) == 0 && cpu.ops->read(cpu.ctx, p->c, 0, b, n) == 0);
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst ? d : worst;
        big = fabs(b[i]) > big ? fabs(b[i]) : big;
    }
    free(a);
    free(b);
    return worst / big;
}
static double pair_abs(const struct pair *p, int64_t n)
{
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    double worst = 0;
    CHECK(gpu.ops->read(gpu.ctx, p->g, 0, a, n) == 0 && cpu.ops->read(cpu.ctx, p->c, 0, b, n) == 0);
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst ? d : worst;
    }
    free(a);
    free(b);
    return worst;
}

struct wpair {
    struct qb_qtensor t;
    struct qb_bweight *g, *c;
    float *w; /* the f32 source (rows, cols) */
};
static struct wpair wpair_new(enum qb_fmt fmt, int64_t rows, int64_t cols)
{
    struct wpair p = {0};
    p.w = rand_vec(rows * cols);
    if (fmt == QB_FMT_F32)
        qb_qtensor_wrap_f32(p.w, rows, cols, &p.t);
    else
        CHECK(qb_quantize(p.w, rows, cols, fmt, 0, 0, NULL, &p.t) == 0);
    CHECK(gpu.ops->weight_new(gpu.ctx, &p.t, QB_ACT_F32, &p.g) == 0);
    CHECK(cpu.ops->weight_new(cpu.ctx, &p.t, QB_ACT_F32, &p.c) == 0);
    return p;
}
static void wpair_free(struct wpair *p)
{
    gpu.ops->weight_free(gpu.ctx, p->g);
    cpu.ops->weight_free(cpu.ctx, p->c);
    qb_qtensor_release(&p->t);
    free(p->w);
}

static const enum qb_fmt fmts[] = {QB_FMT_F32, QB_FMT_F16, QB_FMT_BF16};

static void test_embed(void)
{
    for (int f = 0; f < 3; f++) {
        struct wpair t = wpair_new(fmts[f], 53, 45);
        int32_t tok[17];
        for (int i = 0; i < 17; i++)
            tok[i] = (int32_t)((i * 29 + 3) % 53);
        tok[16] = 52;
        for (int k = 0; k < 3; k++) {
            int64_t n = k == 0 ? 1 : k == 1 ? 3 : 17;
            struct pair x = pair_new(NULL, 17 * 45);
            CHECK(gpu.ops->embed(gpu.ctx, t.g, tok, n, x.g) == 0 &&
                  cpu.ops->embed(cpu.ctx, t.c, tok, n, x.c) == 0);
            CHECK(pair_abs(&x, n * 45) == 0); /* exact */
            pair_free(&x);
        }
        int32_t bad = 53;
        struct pair x = pair_new(NULL, 45);
        CHECK(gpu.ops->embed(gpu.ctx, t.g, &bad, 1, x.g) == QB_EINVAL); /* refused, no crash */
        pair_free(&x);
        wpair_free(&t);
    }
}

/* y = x . W^T on both; bound 1e-5 * sum |w x| + 1e-7 per output */
static void matmul_case(enum qb_fmt fmt, int64_t rows, int64_t cols, int64_t n)
{
    struct wpair w = wpair_new(fmt, rows, cols);
    float *xs = rand_vec(n * cols), *yg = malloc((size_t)(n * rows) * sizeof *yg),
          *yc = malloc((size_t)(n * rows) * sizeof *yc), *wr = malloc((size_t)cols * sizeof *wr);
    struct pair x = pair_new(xs, n * cols), y = pair_new(NULL, n * rows);
    int bad = 0;
    CHECK(gpu.ops->matmul(gpu.ctx, y.g, x.g, n, w.g) == 0 &&
          cpu.ops->matmul(cpu.ctx, y.c, x.c, n, w.c) == 0);
    CHECK(gpu.ops->read(gpu.ctx, y.g, 0, yg, n * rows) == 0 &&
          cpu.ops->read(cpu.ctx, y.c, 0, yc, n * rows) == 0);
    for (int64_t r = 0; r < rows; r++) {
        qb_dequantize_row(&w.t, r, wr);
        for (int64_t t = 0; t < n; t++) {
            double mag = 0;
            for (int64_t i = 0; i < cols; i++)
                mag += fabs((double)wr[i] * xs[t * cols + i]);
            if (!(fabs((double)yg[t * rows + r] - yc[t * rows + r]) <= 1e-5 * mag + 1e-7) &&
                bad++ < 3)
                fprintf(stderr, "  %s %lldx%lld n=%lld: y[%lld][%lld] gpu %.9g cpu %.9g\n",
                        qb_fmt_name(fmt), (long long)rows, (long long)cols, (long long)n,
                        (long long)t, (long long)r, yg[t * rows + r], yc[t * rows + r]);
        }
    }
    CHECK(bad == 0);
    pair_free(&x);
    pair_free(&y);
    wpair_free(&w);
    free(xs);
    free(yg);
    free(yc);
    free(wr);
}

static const int64_t mm_shapes[][3] = {{1, 1, 1},     {7, 45, 1},    {33, 100, 3}, {67, 257, 17},
                                       {300, 129, 2}, {130, 600, 5}, {19, 33, 31}, {45, 37, 70}};

static void test_matmul(void)
{
    for (int f = 0; f < 3; f++)
        for (size_t s = 0; s < sizeof mm_shapes / sizeof *mm_shapes; s++)
            matmul_case(fmts[f], mm_shapes[s][0], mm_shapes[s][1], mm_shapes[s][2]);
}

/* the matrix-vector kernel with the shared-memory reduction where the device has subgroups
 * (the backend reads QB_VK_NO_SUBGROUP at each matmul) */
static void test_matmul_no_subgroup(void)
{
    setenv("QB_VK_NO_SUBGROUP", "1", 1);
    for (int f = 0; f < 3; f++) {
        matmul_case(fmts[f], 67, 257, 1);
        matmul_case(fmts[f], 300, 129, 2);
    }
    unsetenv("QB_VK_NO_SUBGROUP");
}

static void test_logits(void)
{
    struct wpair w = wpair_new(QB_FMT_F32, 61, 45);
    float *xs = rand_vec(17 * 45), *lg = malloc(17 * 61 * sizeof *lg),
          *lc = malloc(17 * 61 * sizeof *lc);
    struct pair x = pair_new(xs, 17 * 45);
    double worst = 0;
    CHECK(gpu.ops->logits(gpu.ctx, lg, x.g, 17, w.g) == 0 &&
          cpu.ops->logits(cpu.ctx, lc, x.c, 17, w.c) == 0);
    for (int i = 0; i < 17 * 61; i++)
        worst = fabs((double)lg[i] - lc[i]) > worst ? fabs((double)lg[i] - lc[i]) : worst;
    CHECK(worst <= 1e-5 * 45); /* |w x| <= 1 per term */
    pair_free(&x);
    wpair_free(&w);
    free(xs);
    free(lg);
    free(lc);
}

static void test_rmsnorm_add_bias_swiglu(void)
{
    const int64_t ns[] = {1, 3, 17};
    for (int k = 0; k < 3; k++) {
        int64_t n = ns[k], d = 45, h = 97;
        float *xs = rand_vec(n * d), *ws = rand_vec(d), *us = rand_vec(n * h),
              *gs = rand_vec(n * h);
        for (int64_t i = 0; i < n * h; i++)
            gs[i] *= 8; /* silu over a wider range */
        struct pair x = pair_new(xs, n * d), y = pair_new(NULL, n * d), w = pair_new(ws, d),
                    g = pair_new(gs, n * h), u = pair_new(us, n * h);
        CHECK(gpu.ops->rmsnorm(gpu.ctx, y.g, x.g, w.g, n, d) == 0 &&
              cpu.ops->rmsnorm(cpu.ctx, y.c, x.c, w.c, n, d) == 0);
        CHECK(pair_rel(&y, n * d) <= 1e-6);
        /* in place, y = x */
        CHECK(gpu.ops->rmsnorm(gpu.ctx, x.g, x.g, w.g, n, d) == 0 &&
              cpu.ops->rmsnorm(cpu.ctx, x.c, x.c, w.c, n, d) == 0);
        CHECK(pair_rel(&x, n * d) <= 1e-6);
        CHECK(gpu.ops->add_bias(gpu.ctx, y.g, w.g, n, d) == 0 &&
              cpu.ops->add_bias(cpu.ctx, y.c, w.c, n, d) == 0);
        CHECK(pair_rel(&y, n * d) <= 1e-6);
        CHECK(gpu.ops->add(gpu.ctx, y.g, x.g, n * d) == 0 &&
              cpu.ops->add(cpu.ctx, y.c, x.c, n * d) == 0);
        CHECK(pair_rel(&y, n * d) <= 1e-6);
        CHECK(gpu.ops->swiglu(gpu.ctx, g.g, u.g, n * h) == 0 &&
              cpu.ops->swiglu(cpu.ctx, g.c, u.c, n * h) == 0);
        CHECK(pair_rel(&g, n * h) <= 1e-6);
        pair_free(&x);
        pair_free(&y);
        pair_free(&w);
        pair_free(&g);
        pair_free(&u);
        free(xs);
        free(ws);
        free(us);
        free(gs);
    }
}

static void rope_case(enum qb_backend_rope style)
{
    struct qb_backend_shape s = shape;
    struct qb_backend g2, c2;
    s.rope_style = style;
    CHECK(qb_backend_vulkan_new(&s, &g2) == 0 && qb_backend_cpu_new(&s, &c2) == 0);
    if (!g2.ops || !c2.ops)
        return;
    const int64_t cases[][2] = {{1, 0}, {3, 5}, {17, 40}, {1, 69}};
    for (int k = 0; k < 4; k++) {
        int64_t n = cases[k][0], pos = cases[k][1], w = 6 * 18;
        float *xs = rand_vec(n * w), *a = malloc((size_t)(n * w) * sizeof *a),
              *b = malloc((size_t)(n * w) * sizeof *b);
        struct qb_bbuf *xg, *xc;
        CHECK(g2.ops->buf_new(g2.ctx, n * w, &xg) == 0 && c2.ops->buf_new(c2.ctx, n * w, &xc) == 0);
        CHECK(g2.ops->write(g2.ctx, xg, 0, xs, n * w) == 0 &&
              c2.ops->write(c2.ctx, xc, 0, xs, n * w) == 0);
        CHECK(g2.ops->rope(g2.ctx, xg, n, 6, pos) == 0 && c2.ops->rope(c2.ctx, xc, n, 6, pos) == 0);
        CHECK(g2.ops->read(g2.ctx, xg, 0, a, n * w) == 0 &&
              c2.ops->read(c2.ctx, xc, 0, b, n * w) == 0);
        for (int64_t i = 0; i < n * w; i++)
            CHECK_NEAR(a[i], b[i], 1e-6 * 2);
        g2.ops->buf_free(g2.ctx, xg);
        c2.ops->buf_free(c2.ctx, xc);
        free(xs);
        free(a);
        free(b);
    }
    g2.ops->free(g2.ctx);
    c2.ops->free(c2.ctx);
}

static void test_rope_interleaved(void)
{
    rope_case(QB_BROPE_INTERLEAVED);
}
static void test_rope_half(void)
{
    rope_case(QB_BROPE_HALF);
}

/* a prefill of 17 at 0, single steps, a batch of 3, then 31 more: 1e-5 absolute; layer 1
 * with a subset of heads (3 of 6, 1 kv head of 2) */
static void test_attention(void)
{
    const int64_t steps[][2] = {{17, 0}, {1, 17}, {1, 18}, {3, 19}, {31, 22}, {17, 53}};
    const int64_t hd = 18;
    for (int sub = 0; sub < 2; sub++) {
        int64_t layer = sub, nh = sub ? 3 : 6, nkv = sub ? 1 : 2;
        for (int k = 0; k < 6; k++) {
            int64_t n = steps[k][0], pos = steps[k][1];
            float *qs = rand_vec(n * nh * hd), *ks = rand_vec(n * nkv * hd),
                  *vs = rand_vec(n * nkv * hd);
            for (int64_t i = 0; i < n * nh * hd; i++)
                qs[i] *= 3; /* sharper softmax */
            struct pair q = pair_new(qs, n * nh * hd), kk = pair_new(ks, n * nkv * hd),
                        v = pair_new(vs, n * nkv * hd), o = pair_new(NULL, n * nh * hd);
            CHECK(gpu.ops->attention(gpu.ctx, layer, q.g, kk.g, v.g, o.g, n, pos, nh, nkv, 0) ==
                      0 &&
                  cpu.ops->attention(cpu.ctx, layer, q.c, kk.c, v.c, o.c, n, pos, nh, nkv, 0) == 0);
            CHECK(pair_abs(&o, n * nh * hd) <= 1e-5);
            pair_free(&q);
            pair_free(&kk);
            pair_free(&v);
            pair_free(&o);
            free(qs);
            free(ks);
            free(vs);
        }
    }
    /* past the context: refused */
    struct pair q = pair_new(NULL, 6 * hd), kk = pair_new(NULL, 2 * hd);
    CHECK(gpu.ops->attention(gpu.ctx, 0, q.g, kk.g, kk.g, q.g, 1, 70, 6, 2, 0) == QB_EINVAL);
    pair_free(&q);
    pair_free(&kk);
}

static void test_read_write_copy(void)
{
    float *a = rand_vec(100), b[100] = {0};
    struct qb_bbuf *x, *y;
    CHECK(gpu.ops->buf_new(gpu.ctx, 100, &x) == 0 && gpu.ops->buf_new(gpu.ctx, 100, &y) == 0);
    CHECK(gpu.ops->write(gpu.ctx, x, 0, a, 100) == 0);
    CHECK(gpu.ops->copy(gpu.ctx, y, 10, x, 37, 50) == 0);
    CHECK(gpu.ops->read(gpu.ctx, y, 10, b, 50) == 0 && memcmp(b, a + 37, 50 * sizeof *b) == 0);
    CHECK(gpu.ops->write(gpu.ctx, x, 95, a, 6) == QB_EINVAL); /* past the end: refused */
    gpu.ops->buf_free(gpu.ctx, x);
    gpu.ops->buf_free(gpu.ctx, y);
    gpu.ops->buf_free(gpu.ctx, NULL);
    gpu.ops->weight_free(gpu.ctx, NULL);
    free(a);
}

static void test_mem_and_name(void)
{
    struct qb_backend_mem m;
    const char *name = gpu.ops->device_name(gpu.ctx);
    CHECK(gpu.ops->mem(gpu.ctx, &m) == 0);
    /* the KV cache: 2 layers x (k + v) x 70 positions x 36 floats */
    CHECK(m.kv_cache == 2 * 2 * 70 * 36 * 4);
    CHECK(m.scratch > 0 && m.capacity > 0 && m.peak >= m.weights + m.kv_cache + m.scratch);
    CHECK(name && strstr(name, " MiB") && strchr(name, ','));
    printf("# %s\n", name);
}

static void test_absent_device(void)
{
    struct qb_backend_shape s = shape;
    struct qb_backend b;
    s.device = 99;
    CHECK(qb_backend_vulkan_new(&s, &b) == QB_EUNSUP && b.ops == NULL);
    CHECK(strstr(qb_errmsg(), "no Vulkan device 99") != NULL);
}

/* a KV cache past the device's memory: QB_ENOMEM naming it, before anything is allocated */
static void test_kv_cache_too_big(void)
{
    struct qb_backend_shape s = shape;
    struct qb_backend b;
    s.max_ctx = 1 << 20;
    s.cache_layers = 4096;
    CHECK(qb_backend_vulkan_new(&s, &b) == QB_ENOMEM && b.ops == NULL);
    CHECK(strstr(qb_errmsg(), "KV cache") != NULL && strstr(qb_errmsg(), "does not fit") != NULL);
}

static void test_no_validation_errors(void)
{
    CHECK(qb_vk_validation_errors() == 0);
}

int main(void)
{
    char why[600];
    int rc;
    setenv("QB_VK_VALIDATION", "1", 0);
    if ((rc = qb_backend_vulkan_new(&shape, &gpu)) < 0) {
        snprintf(why, sizeof why, "no Vulkan device: %s", qb_errmsg());
        check_skip("vulkan backend tests", why);
        return check_summary();
    }
    if (qb_backend_cpu_new(&shape, &cpu) < 0) {
        fprintf(stderr, "%s\n", qb_errmsg());
        return 1;
    }
    RUN(test_embed);
    RUN(test_matmul);
    RUN(test_matmul_no_subgroup);
    RUN(test_logits);
    RUN(test_rmsnorm_add_bias_swiglu);
    RUN(test_rope_interleaved);
    RUN(test_rope_half);
    RUN(test_attention);
    RUN(test_read_write_copy);
    RUN(test_mem_and_name);
    RUN(test_absent_device);
    RUN(test_kv_cache_too_big);
    gpu.ops->free(gpu.ctx);
    cpu.ops->free(cpu.ctx);
    RUN(test_no_validation_errors);
    return check_summary();
}
