/* test_vk_qmatmul: the quantized kernels of kernels/vulkan/matmul_q.h against the CPU's
 * reference kernels (qb_qmatmul_with(qb_qkern_ref(), ...)): every weight format x activation
 * mode qb_qmatmul_supported accepts (I8, I4, I3, I2 with f32 or int8 activations, groups of
 * 32/64/128, symmetric and asymmetric; E4M3 with f32 or fp8; E5M2 with f32), on five odd
 * shapes each -- rows and real input columns not multiples of 32, the group or the workgroup,
 * rows padded as qtensor.h says, 1, 2 (matrix-vector kernel) and 3, 11, 17 tokens (tiled).
 *
 * Bound, every format and mode: max |gpu - ref| <= 1e-5 * max |ref| (printed per pair). The
 * arithmetic per 32-weight block is the reference's (exact integer dot products for int8
 * activations, exact fp8 products), and the activations are quantized on the device exactly
 * as on the CPU, so only the order of the f32 sums across blocks differs (observed below 1e-6);
 * one activation code off by one would show as ~1e-3.
 *
 * Also: the quantized embedding against qb_dequantize_row (bit for bit: same expressions),
 * and both again with QB_VK_MAX_RANGE=4096, which splits the weights (and their row scales)
 * into chunks of whole rows. QB_VK_VALIDATION=1, and no validation error allowed. Skips,
 * saying why, where there is no Vulkan device. */
#include "kernels/base/err.h"
#include "kernels/qmatmul.h"
#include "kernels/quantize.h"
#include "kernels/vulkan/matmul_q.h"
#include "kernels/vulkan/vk.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct qb_vk *vk;
static uint32_t rng = 12345;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / (float)0x800000 - 1.0f;
}

#define BOUND 1e-5

struct shape {
    int64_t rows, in_cols, n;
    int group, asym;
};
static const struct shape shapes[] = {
    {37, 67, 1, 32, 0}, {19, 200, 11, 64, 1}, {5, 300, 3, 128, 1},
    {70, 96, 2, 32, 1}, {13, 129, 17, 64, 0},
};
#define N_SHAPES (int)(sizeof shapes / sizeof *shapes)

struct pair {
    enum qb_fmt fmt;
    enum qb_act act;
};
static const struct pair pairs[] = {
    {QB_FMT_I8, QB_ACT_F32},   {QB_FMT_I8, QB_ACT_I8},    {QB_FMT_I4, QB_ACT_F32},
    {QB_FMT_I4, QB_ACT_I8},    {QB_FMT_I3, QB_ACT_F32},   {QB_FMT_I3, QB_ACT_I8},
    {QB_FMT_I2, QB_ACT_F32},   {QB_FMT_I2, QB_ACT_I8},    {QB_FMT_E4M3, QB_ACT_F32},
    {QB_FMT_E4M3, QB_ACT_FP8}, {QB_FMT_E5M2, QB_ACT_F32},
};
#define N_PAIRS (int)(sizeof pairs / sizeof *pairs)

static int is_group(enum qb_fmt f)
{
    return f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
}

static const char *act_name(enum qb_act a)
{
    return a == QB_ACT_I8 ? "i8" : a == QB_ACT_FP8 ? "fp8" : "f32";
}

/* Quantizes a random (rows, in_cols) matrix padded to the format's columns. */
static int make_weight(enum qb_fmt fmt, enum qb_act act, const struct shape *s,
                       struct qb_qtensor *t)
{
    int g = is_group(fmt) ? s->group : act != QB_ACT_F32 ? 32 : 1;
    int64_t cols = (s->in_cols + g - 1) / g * g;
    float *w = calloc((size_t)(s->rows * cols), sizeof *w);
    int rc;
    for (int64_t r = 0; r < s->rows; r++)
        for (int64_t c = 0; c < s->in_cols; c++)
            w[r * cols + c] = frand() * (c % 13 == 0 ? 3.0f : 1.0f);
    rc = qb_quantize(w, s->rows, cols, fmt, is_group(fmt) ? s->group : 0, s->asym, NULL, t);
    t->in_cols = s->in_cols;
    free(w);
    return rc;
}

/* max |gpu - ref| / max |ref| of one format, mode and shape; < 0 when something failed */
static double one(enum qb_fmt fmt, enum qb_act act, const struct shape *s)
{
    struct qb_qtensor t;
    struct qb_vkq_weight *w = NULL;
    struct qb_vk_buf *x = NULL, *y = NULL;
    int64_t nx = s->n * s->in_cols, ny = s->n * s->rows;
    float *xh = malloc((size_t)nx * sizeof *xh), *ref = malloc((size_t)ny * sizeof *ref),
          *got = malloc((size_t)ny * sizeof *got);
    double worst = -1, big = 1e-30, d = 0;

    for (int64_t i = 0; i < nx; i++)
        xh[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
    if (make_weight(fmt, act, s, &t) < 0 ||
        qb_qmatmul_with(qb_qkern_ref(), ref, xh, s->n, &t, act) < 0) {
        fprintf(stderr, "cpu: %s\n", qb_errmsg());
        goto out;
    }
    if (qb_vkq_weight_new(vk, &t, act, &w) < 0 ||
        qb_vk_buf_new(vk, (uint64_t)nx * 4, 0, QB_VK_MEM_SCRATCH, "x", &x) < 0 ||
        qb_vk_buf_new(vk, (uint64_t)ny * 4, 0, QB_VK_MEM_SCRATCH, "y", &y) < 0 ||
        qb_vk_upload(vk, x, 0, xh, (uint64_t)nx * 4) < 0 || qb_vkq_matmul(vk, y, x, s->n, w) < 0 ||
        qb_vk_download(vk, y, 0, got, (uint64_t)ny * 4) < 0) {
        fprintf(stderr, "vulkan: %s\n", qb_errmsg());
        goto out;
    }
    CHECK(qb_vkq_weight_bytes(w) >= (int64_t)(t.rows * t.row_bytes));
    for (int64_t i = 0; i < ny; i++) {
        double e = fabs((double)got[i] - ref[i]);
        d = e > d || e != e ? e : d;
        big = fabs(ref[i]) > big ? fabs(ref[i]) : big;
    }
    worst = d / big;
out:
    qb_vkq_weight_free(vk, w);
    qb_vk_buf_free(vk, x);
    qb_vk_buf_free(vk, y);
    qb_qtensor_release(&t);
    free(xh);
    free(ref);
    free(got);
    return worst;
}

static void test_matmul(void)
{
    for (int p = 0; p < N_PAIRS; p++) {
        double worst = 0;
        int ok = 1;
        for (int k = 0; k < N_SHAPES; k++) {
            double e = one(pairs[p].fmt, pairs[p].act, &shapes[k]);
            if (e < 0 || !(e <= BOUND)) {
                fprintf(stderr, "  %s x %s: rows %lld in_cols %lld n %lld g%d%s: rel %.3g\n",
                        qb_fmt_name(pairs[p].fmt), act_name(pairs[p].act),
                        (long long)shapes[k].rows, (long long)shapes[k].in_cols,
                        (long long)shapes[k].n, shapes[k].group, shapes[k].asym ? " asym" : "", e);
                ok = 0;
            }
            worst = e > worst ? e : worst;
        }
        printf("  %-4s x %-3s: max |gpu - ref| / max |ref| = %.3g over %d shapes (bound %.0e)\n",
               qb_fmt_name(pairs[p].fmt), act_name(pairs[p].act), worst, N_SHAPES, BOUND);
        CHECK(ok);
    }
}

static void test_embed(void)
{
    static const enum qb_fmt f[] = {QB_FMT_I8, QB_FMT_E4M3, QB_FMT_E5M2,
                                    QB_FMT_I4, QB_FMT_I3,   QB_FMT_I2};
    for (int i = 0; i < 6; i++) {
        for (int asym = 0; asym <= 1; asym++) {
            struct shape s = {41, 67, 9, asym ? 64 : 32, asym};
            struct qb_qtensor t;
            struct qb_vkq_weight *w = NULL;
            struct qb_vk_buf *x = NULL;
            struct qb_vk_range tr;
            int32_t tok[9] = {0, 40, 7, 7, 13, 39, 1, 20, 33};
            float *got = malloc(9 * 67 * sizeof *got), *row = malloc(128 * sizeof *row);
            int exact = 1;
            if (!is_group(f[i]) && asym)
                continue;
            CHECK(make_weight(f[i], QB_ACT_F32, &s, &t) == 0);
            CHECK(qb_vkq_weight_new(vk, &t, QB_ACT_F32, &w) == 0);
            CHECK(qb_vk_buf_new(vk, 9 * 67 * 4, 0, QB_VK_MEM_SCRATCH, "x", &x) == 0);
            if (w && x) {
                CHECK(qb_vk_arena(vk, tok, sizeof tok, &tr) == 0);
                CHECK(qb_vkq_embed(vk, w, tr, 9, x) == 0);
                CHECK(qb_vk_download(vk, x, 0, got, 9 * 67 * 4) == 0);
                for (int k = 0; k < 9; k++) {
                    qb_dequantize_row(&t, tok[k], row);
                    exact &= memcmp(row, got + k * 67, 67 * sizeof *row) == 0;
                }
            }
            printf("  embed %-4s%s: %s\n", qb_fmt_name(f[i]),
                   is_group(f[i]) ? (asym ? " g64 asym" : " g32 sym") : "",
                   exact ? "bit for bit" : "DIFFERS");
            CHECK(exact);
            qb_vkq_weight_free(vk, w);
            qb_vk_buf_free(vk, x);
            qb_qtensor_release(&t);
            free(got);
            free(row);
        }
    }
}

/* what the device refuses: a pair with no kernel, columns the mode cannot take */
static void test_refused(void)
{
    struct shape s = {4, 64, 1, 32, 0};
    struct qb_qtensor t;
    struct qb_vkq_weight *w = NULL;
    CHECK(make_weight(QB_FMT_E5M2, QB_ACT_F32, &s, &t) == 0);
    CHECK(qb_vkq_weight_new(vk, &t, QB_ACT_FP8, &w) == QB_EUNSUP && w == NULL);
    CHECK(strstr(qb_errmsg(), "e5m2") != NULL);
    qb_qtensor_release(&t);
    s.in_cols = 40;
    CHECK(make_weight(QB_FMT_I8, QB_ACT_F32, &s, &t) == 0);
    CHECK(qb_vkq_weight_new(vk, &t, QB_ACT_I8, &w) == QB_EINVAL && w == NULL);
    qb_qtensor_release(&t);
}

/* the same with bindings of 4096 bytes: weights and scales in chunks of whole rows */
static void test_split(void)
{
    struct qb_vk *big = vk;
    setenv("QB_VK_MAX_RANGE", "4096", 1);
    CHECK(qb_vk_new(0, &vk) == 0);
    unsetenv("QB_VK_MAX_RANGE");
    if (vk) {
        const struct shape s = {150, 200, 5, 32, 1};
        const struct pair pp[] = {
            {QB_FMT_I8, QB_ACT_I8}, {QB_FMT_I4, QB_ACT_F32}, {QB_FMT_E4M3, QB_ACT_FP8}};
        for (int p = 0; p < 3; p++) {
            double e = one(pp[p].fmt, pp[p].act, &s);
            printf("  split %-4s x %-3s (150 rows in 4096-byte chunks): rel %.3g\n",
                   qb_fmt_name(pp[p].fmt), act_name(pp[p].act), e);
            CHECK(e >= 0 && e <= BOUND);
        }
        test_embed();
        qb_vk_free(vk);
    }
    vk = big;
}

static void test_no_validation_errors(void)
{
    CHECK(qb_vk_validation_errors() == 0);
}

int main(void)
{
    char why[600];
    setenv("QB_VK_VALIDATION", "1", 0);
    if (qb_vk_new(0, &vk) < 0) {
        snprintf(why, sizeof why, "no Vulkan device: %s", qb_errmsg());
        check_skip("vulkan quantized matmul tests", why);
        return check_summary();
    }
    printf("device: %s\n", vk->device_words);
    RUN(test_matmul);
    RUN(test_embed);
    RUN(test_refused);
    RUN(test_split);
    qb_vk_free(vk);
    RUN(test_no_validation_errors);
    return check_summary();
}
