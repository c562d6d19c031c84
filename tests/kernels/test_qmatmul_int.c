/* test_qmatmul_int: the integer-weight kernels (I8, I4, I3, I2 with f32 and int8 activations)
 * of every instruction set against an f64 computation from the layouts in qtensor.h: ref,
 * avx2, avx512 and "avx512bw" (AVX-512 as on a CPU without VNNI), one result line each, skipped
 * where the CPU lacks the set or QB_ISA_MAX hides it. Batches 1-3 take the SIMD row kernels
 * and 4 and up the block kernels (tiles of 8, 4, 2 and 1 tokens: batches 4-9, 17, 33, and
 * 129 on rows up to 544 columns); every group size, sym and asym, odd row counts, columns of
 * a 128-column block cut short, I8 rows of any length; one token with a large outlier and one
 * all zero.
 *
 * Packed tensors are made here with random codes, random f16 headers and row scales (not by
 * kernels/quantize.c), and decoded by this file's own reader, written per weight index
 * rather than per byte as the kernels are. Bounds, with S = sum_i |w_i x_i| over a dot product:
 *   ACT_F32, ref:      |y - f64(W x)| <= 1e-5 S (f32 accumulation).
 *   ACT_F32, SIMD:     16-bit activations x16 (qb_quantize_act_i16, "A16"):
 *                      |y - f64(W x16 * scale)| <= 1e-5 S, and against the exact product
 *                      |y - f64(W x)| <= sum_i |w_i| * scale / 2 + 1e-5 S (the rounding step).
 *   ACT_I8, ref:       |y - f64(W xq * scale)| <= 1e-5 S (int8 codes from qb_quantize_act_i8).
 *   ACT_I8, SIMD:      |y - y_ref| <= 2e-6 S: the integer dot products are the same, only the
 *                      f32 order of the scaling differs; test_integer_exact checks that with
 *                      data where every result is an exact integer, compared with ==.
 *   W8A8 / W4A8 against the unquantized activations: each |x_i - scale * xq_i| <= scale / 2,
 *                      so |y - f64(W x)| <= sum_i |w_i| * scale / 2 + 1e-5 S. */
#include "kernels/base/err.h"
#include "kernels/half.h"
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

static const int64_t rows_list[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33};
/* 1088 and 2176: a row kernel's super-block of 16 groups of 64 / 128, then one group more */
static const int64_t cols_list[] = {32, 64, 96, 128, 192, 544, 1088, 2176, 4096};
static const int64_t batch_list[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 33, 129};
#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}
static double urand(void) /* [0, 1) */
{
    return (double)(rnd() >> 8) / 16777216.0;
}

/* A random packed tensor; everything lives in one malloc owned by t->owned. */
static int make_tensor(struct qb_qtensor *t, enum qb_fmt fmt, int64_t rows, int64_t cols, int group,
                       int asym)
{
    memset(t, 0, sizeof *t);
    t->fmt = fmt;
    t->rows = rows;
    t->cols = cols;
    t->group = fmt == QB_FMT_I8 ? 0 : group;
    t->asym = fmt == QB_FMT_I8 ? 0 : asym;
    t->row_bytes = qb_fmt_row_bytes(fmt, cols, t->group, t->asym);
    size_t data = (size_t)rows * t->row_bytes;
    uint8_t *p = aligned_alloc(64, (data + (size_t)rows * 8 + 64 + 63) / 64 * 64);
    if (!p)
        return -1;
    t->owned = p;
    t->data = p;
    for (size_t i = 0; i < data; i++)
        p[i] = (uint8_t)rnd();
    if (fmt == QB_FMT_I8) {
        float *scale = (float *)(p + (data + 63) / 64 * 64);
        int32_t *sum = (int32_t *)(scale + rows);
        int8_t *q = (int8_t *)p;
        for (int64_t r = 0; r < rows; r++) {
            scale[r] = (float)(1e-3 + 1e-2 * urand());
            sum[r] = 0;
            for (int64_t i = 0; i < cols; i++) {
                q[r * cols + i] = (int8_t)((int)(rnd() % 255) - 127);
                sum[r] += q[r * cols + i];
            }
        }
        t->row_scale = scale;
        t->row_sum = sum;
        return 0;
    }
    /* rewrite every group header with finite random f16 values of either sign */
    size_t hdr = asym ? 4 : 2, sub = fmt == QB_FMT_I4 ? 16 : fmt == QB_FMT_I3 ? 12 : 8;
    size_t gbytes = hdr + (size_t)(group / 32) * sub;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < cols / group; g++) {
            uint8_t *h = p + (size_t)r * t->row_bytes + (size_t)g * gbytes;
            uint16_t d = qb_f32_to_f16((float)((urand() - 0.5) * 0.1));
            uint16_t m = qb_f32_to_f16((float)((urand() - 0.5) * 0.4));
            memcpy(h, &d, 2);
            if (asym)
                memcpy(h + 2, &m, 2);
        }
    return 0;
}

/* Code j (0..31) of a packed sub-block, per the bit layout in qtensor.h. */
static int code_at(enum qb_fmt fmt, const uint8_t *sb, int j)
{
    switch (fmt) {
    case QB_FMT_I4: return j < 16 ? sb[j] & 15 : sb[j - 16] >> 4;
    case QB_FMT_I2: return (sb[j % 8] >> (2 * (j / 8))) & 3;
    case QB_FMT_I3: {
        int lo = (sb[j % 8] >> (2 * (j / 8))) & 3;
        int hi = (sb[8 + j / 8] >> (j % 8)) & 1; /* bit j of the little-endian u32 */
        return lo | hi << 2;
    }
    default: return 0;
    }
}

/* Row r of t as doubles. */
static void decode_row(const struct qb_qtensor *t, int64_t r, double *w)
{
    const uint8_t *row = (const uint8_t *)t->data + (size_t)r * t->row_bytes;
    if (t->fmt == QB_FMT_I8) {
        for (int64_t i = 0; i < t->cols; i++)
            w[i] = (double)t->row_scale[r] * ((const int8_t *)row)[i];
        return;
    }
    int bits = qb_fmt_bits(t->fmt);
    size_t hdr = t->asym ? 4 : 2, sub = (size_t)(32 * bits / 8);
    for (int64_t i = 0; i < t->cols; i++) {
        int64_t g = i / t->group, s = (i % t->group) / 32;
        const uint8_t *h = row + (size_t)g * (hdr + (size_t)(t->group / 32) * sub);
        uint16_t d, m = 0;
        memcpy(&d, h, 2);
        if (t->asym)
            memcpy(&m, h + 2, 2);
        int q = code_at(t->fmt, h + hdr + (size_t)s * sub, (int)(i % 32));
        w[i] = t->asym ? (double)qb_f16_to_f32(d) * q + qb_f16_to_f32(m)
                       : (double)qb_f16_to_f32(d) * (q - (1 << (bits - 1)));
    }
}

struct ref {
    double *exact, *mag; /* (n, rows) f64 product with the f32 x, and sum |w x| */
    double *a16, *mag16; /* with x16 * scale */
    double *a8, *mag8;   /* with xq * scale */
    double *sw;          /* (rows) sum |w| */
    float *s16, *s8;     /* (n) activation steps */
};

static void compute_ref(const struct qb_qtensor *t, const double *w, const float *x, int64_t n,
                        struct ref *R)
{
    int64_t rows = t->rows, cols = t->cols;
    int16_t *x16 = malloc((size_t)(n * cols) * 2);
    int8_t *xq = malloc((size_t)(n * cols));
    int32_t *xs = malloc((size_t)(n * (cols / 32) + 1) * 4);
    qb_quantize_act_i16(x, n, cols, x16, R->s16, xs);
    qb_quantize_act_i8(x, n, cols, xq, R->s8, xs);
    for (int64_t r = 0; r < rows; r++) {
        const double *wr = w + r * cols;
        R->sw[r] = 0;
        for (int64_t i = 0; i < cols; i++)
            R->sw[r] += fabs(wr[i]);
        for (int64_t tk = 0; tk < n; tk++) {
            double e = 0, m = 0, e16 = 0, m16 = 0, e8 = 0, m8 = 0;
            for (int64_t i = 0; i < cols; i++) {
                double xi = x[tk * cols + i], x16i = (double)R->s16[tk] * x16[tk * cols + i],
                       x8i = (double)R->s8[tk] * xq[tk * cols + i];
                e += wr[i] * xi;
                m += fabs(wr[i] * xi);
                e16 += wr[i] * x16i;
                m16 += fabs(wr[i] * x16i);
                e8 += wr[i] * x8i;
                m8 += fabs(wr[i] * x8i);
            }
            R->exact[tk * rows + r] = e;
            R->mag[tk * rows + r] = m;
            R->a16[tk * rows + r] = e16;
            R->mag16[tk * rows + r] = m16;
            R->a8[tk * rows + r] = e8;
            R->mag8[tk * rows + r] = m8;
        }
    }
    free(x16);
    free(xq);
    free(xs);
}

static int n_reported;
static void report(const char *what, const char *isa, const struct qb_qtensor *t, int64_t n,
                   int64_t tk, int64_t r, double got, double want, double bound)
{
    if (n_reported++ < 12)
        fprintf(stderr,
                "  %s %s %s g%d %s rows=%lld cols=%lld n=%lld: y[%lld][%lld] = %.9g, want "
                "%.9g (bound %.3g)\n",
                what, isa, qb_fmt_name(t->fmt), t->group, t->asym ? "asym" : "sym",
                (long long)t->rows, (long long)t->cols, (long long)n, (long long)tk, (long long)r,
                got, want, bound);
    CHECK(0);
}

static const char *isas[] = {"ref", "avx2", "avx512", "avx512bw"};

/* The kernel table of an instruction set; "avx512bw" is AVX-512 as on a CPU without VNNI. */
static const struct qb_qkern_table *table(const char *isa)
{
    static struct qb_qkern_table bw;
    if (strcmp(isa, "avx512bw"))
        return qb_qkern_for(isa);
    bw = *qb_qkern_for("avx512");
    qb_qkern_register_int_avx512_novnni(&bw);
    return &bw;
}

/* Every shape for one (format, group, asym): both activation modes, every instruction set. */
static void check_config(enum qb_fmt fmt, int group, int asym)
{
    n_reported = 0;
    /* I8 takes any number of columns with f32 activations: also a few that are not 32s */
    static const int64_t i8_cols[] = {1, 7, 45, 100};
    int n_cols = N_OF(cols_list) + (fmt == QB_FMT_I8 ? N_OF(i8_cols) : 0);
    for (int a = 0; a < N_OF(rows_list); a++)
        for (int b = 0; b < n_cols; b++) {
            int64_t rows = rows_list[a];
            int64_t cols = b < N_OF(cols_list) ? cols_list[b] : i8_cols[b - N_OF(cols_list)];
            struct qb_qtensor t;
            if (fmt != QB_FMT_I8 && cols % group)
                continue;
            if (make_tensor(&t, fmt, rows, cols, group, asym) < 0) {
                CHECK(0);
                return;
            }
            double *w = malloc((size_t)(rows * cols) * sizeof *w);
            for (int64_t r = 0; r < rows; r++)
                decode_row(&t, r, w + r * cols);
            for (int c = 0; c < N_OF(batch_list); c++) {
                int64_t n = batch_list[c], ny = n * rows;
                if (n > 64 && cols > 544) /* 129 tokens (16 tiles of 8 and 1) on short rows */
                    continue;
                float *x = malloc((size_t)(n * cols) * sizeof *x);
                float *y = malloc((size_t)ny * sizeof *y), *yref = malloc((size_t)ny * sizeof *y);
                struct ref R = {
                    malloc((size_t)ny * 8),   malloc((size_t)ny * 8), malloc((size_t)ny * 8),
                    malloc((size_t)ny * 8),   malloc((size_t)ny * 8), malloc((size_t)ny * 8),
                    malloc((size_t)rows * 8), malloc((size_t)n * 4),  malloc((size_t)n * 4),
                };
                for (int64_t i = 0; i < n * cols; i++)
                    x[i] = (float)(urand() * 2 - 1);
                if (n > 1) /* one token with an outlier, one all zero */
                    x[cols + (int64_t)(rnd() % (uint32_t)cols)] = 40.0f;
                if (n > 2)
                    memset(x + 2 * cols, 0, (size_t)cols * sizeof *x);
                compute_ref(&t, w, x, n, &R);
                for (int act = QB_ACT_F32; act <= QB_ACT_I8; act++) {
                    if (act == QB_ACT_I8 && cols % 32) { /* int8 activations come in 32s */
                        CHECK(qb_qmatmul_with(qb_qkern_ref(), yref, x, n, &t, act) == QB_EINVAL);
                        continue;
                    }
                    CHECK(qb_qmatmul_with(qb_qkern_ref(), yref, x, n, &t, act) == 0);
                    for (int k = 0; k < N_OF(isas); k++) {
                        const char *isa = isas[k];
                        if (!check_begin_variant(k))
                            continue;
                        memset(y, 0xff, (size_t)ny * sizeof *y); /* NaN: every y must be written */
                        if (qb_qmatmul_with(table(isa), y, x, n, &t, act) != 0) {
                            fprintf(stderr, "  %s: %s\n", isa, qb_errmsg());
                            CHECK(0);
                            continue;
                        }
                        int simd = k > 0;
                        for (int64_t tk = 0; tk < n; tk++)
                            for (int64_t r = 0; r < rows; r++) {
                                int64_t i = tk * rows + r;
                                double got = y[i], bound, want;
                                double step = act == QB_ACT_F32 ? R.s16[tk] : R.s8[tk];
                                if (act == QB_ACT_F32 && !simd) {
                                    want = R.exact[i];
                                    bound = 1e-5 * R.mag[i] + 1e-30;
                                } else if (act == QB_ACT_F32) {
                                    want = R.a16[i];
                                    bound = 1e-5 * R.mag16[i] + 1e-30;
                                } else if (!simd) {
                                    want = R.a8[i];
                                    bound = 1e-5 * R.mag8[i] + 1e-30;
                                } else {
                                    want = yref[i];
                                    bound = 2e-6 * R.mag8[i] + 1e-30;
                                }
                                if (!(fabs(got - want) <= bound))
                                    report("close", isa, &t, n, tk, r, got, want, bound);
                                /* against the unquantized activations: the rounding step */
                                if (act == QB_ACT_F32 && !simd)
                                    continue;
                                want = R.exact[i];
                                bound = R.sw[r] * step * 0.5 * (1 + 1e-6) + 1e-5 * R.mag[i] + 1e-30;
                                if (!(fabs(got - want) <= bound))
                                    report("step", isa, &t, n, tk, r, got, want, bound);
                            }
                    }
                    check_end_variant();
                }
                free(x);
                free(y);
                free(yref);
                free(R.exact);
                free(R.mag);
                free(R.a16);
                free(R.mag16);
                free(R.a8);
                free(R.mag8);
                free(R.sw);
                free(R.s16);
                free(R.s8);
            }
            free(w);
            qb_qtensor_release(&t);
        }
}

static void test_i8(void)
{
    check_config(QB_FMT_I8, 0, 0);
}

#define GROUP_TESTS(F, f)                                                                          \
    static void test_##f##_g32_sym(void)                                                           \
    {                                                                                              \
        check_config(F, 32, 0);                                                                    \
    }                                                                                              \
    static void test_##f##_g32_asym(void)                                                          \
    {                                                                                              \
        check_config(F, 32, 1);                                                                    \
    }                                                                                              \
    static void test_##f##_g64_sym(void)                                                           \
    {                                                                                              \
        check_config(F, 64, 0);                                                                    \
    }                                                                                              \
    static void test_##f##_g64_asym(void)                                                          \
    {                                                                                              \
        check_config(F, 64, 1);                                                                    \
    }                                                                                              \
    static void test_##f##_g128_sym(void)                                                          \
    {                                                                                              \
        check_config(F, 128, 0);                                                                   \
    }                                                                                              \
    static void test_##f##_g128_asym(void)                                                         \
    {                                                                                              \
        check_config(F, 128, 1);                                                                   \
    }
GROUP_TESTS(QB_FMT_I4, i4)
GROUP_TESTS(QB_FMT_I3, i3)
GROUP_TESTS(QB_FMT_I2, i2)

/* Integer data with unit scales: every kernel must return the exact result, so the integer
 * dot products (and the sym/asym and row_sum algebra) are compared with ==, not within a
 * tolerance. For ACT_I8 the activations are integers in [-127, 127] with one at +-127 per
 * token (scale 1, xq = x); for ACT_F32 they are j / 256 with |j| <= 63 and one j = +-32767
 * (scale 2^-8, x16 = j). Every partial sum stays an exact f32 (below 2^24 units). */
static void test_integer_exact(void)
{
    const enum qb_fmt fmts[] = {QB_FMT_I8, QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    const int64_t shapes[][3] = {{17, 1024, 1}, {33, 256, 5}, {16, 512, 33}, {3, 96, 4}};
    for (int f = 0; f < 4; f++)
        for (int g = 32; g <= 128; g *= 2)
            for (int asym = 0; asym <= 1; asym++)
                for (int s = 0; s < 4; s++) {
                    int64_t rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2];
                    struct qb_qtensor t;
                    if ((fmts[f] == QB_FMT_I8 && (g > 32 || asym)) || cols % g)
                        continue;
                    if (make_tensor(&t, fmts[f], rows, cols, g, asym) < 0) {
                        CHECK(0);
                        return;
                    }
                    if (fmts[f] == QB_FMT_I8) {
                        for (int64_t r = 0; r < rows; r++)
                            ((float *)((uint8_t *)t.owned +
                                       (t.rows * t.row_bytes + 63) / 64 * 64))[r] = 1.0f;
                    } else {
                        size_t hdr = asym ? 4 : 2;
                        size_t gb = hdr + (size_t)(g / 32) * (size_t)(4 * qb_fmt_bits(fmts[f]));
                        for (int64_t r = 0; r < rows; r++)
                            for (int64_t k = 0; k < cols / g; k++) {
                                uint8_t *h = (uint8_t *)t.owned + r * t.row_bytes +
                                             k * gb; /* data == owned */
                                static const float ds[3] = {-1, 1, 2};
                                uint16_t d = qb_f32_to_f16(ds[rnd() % 3]);
                                uint16_t m = qb_f32_to_f16((float)((int)(rnd() % 7) - 3));
                                memcpy(h, &d, 2);
                                if (asym)
                                    memcpy(h + 2, &m, 2);
                            }
                    }
                    double *w = malloc((size_t)(rows * cols) * sizeof *w);
                    float *x = malloc((size_t)(n * cols) * sizeof *x);
                    float *y = malloc((size_t)(n * rows) * sizeof *y);
                    for (int64_t r = 0; r < rows; r++)
                        decode_row(&t, r, w + r * cols);
                    for (int act = QB_ACT_F32; act <= QB_ACT_I8; act++)
                        for (int k = 0; k < N_OF(isas); k++) {
                            for (int64_t i = 0; i < n * cols; i++)
                                x[i] = act == QB_ACT_I8 ? (float)((int)(rnd() % 255) - 127)
                                                        : (float)((int)(rnd() % 127) - 63) / 256;
                            for (int64_t tk = 0; tk < n; tk++)
                                x[tk * cols + (int64_t)(rnd() % (uint32_t)cols)] =
                                    (act == QB_ACT_I8 ? 127.0f : 32767.0f / 256) *
                                    (rnd() & 1 ? 1 : -1);
                            if (!check_begin_variant(k))
                                continue;
                            CHECK(qb_qmatmul_with(table(isas[k]), y, x, n, &t, act) == 0);
                            for (int64_t tk = 0; tk < n; tk++)
                                for (int64_t r = 0; r < rows; r++) {
                                    double e = 0;
                                    for (int64_t i = 0; i < cols; i++)
                                        e += w[r * cols + i] * x[tk * cols + i];
                                    if (y[tk * rows + r] != e)
                                        report(act ? "exact-i8" : "exact-f32", isas[k], &t, n, tk,
                                               r, y[tk * rows + r], e, 0);
                                }
                        }
                    check_end_variant();
                    free(w);
                    free(x);
                    free(y);
                    qb_qtensor_release(&t);
                }
}

/* Groups that do not fit the columns are refused, not read past the row. */
static void test_bad_group(void)
{
    struct qb_qtensor t;
    float x[96] = {0}, y[4];
    CHECK(make_tensor(&t, QB_FMT_I4, 2, 96, 32, 0) == 0);
    t.group = 64;
    CHECK(qb_qmatmul_with(qb_qkern_ref(), y, x, 1, &t, QB_ACT_F32) == QB_EINVAL);
    t.group = 0;
    CHECK(qb_qmatmul_with(qb_qkern_ref(), y, x, 1, &t, QB_ACT_I8) == QB_EINVAL);
    qb_qtensor_release(&t);
}

#define RUN_ISAS(fn) RUN_VARIANTS(fn, N_OF(isas), isas, why)

int main(void)
{
    const char *why[N_OF(isas)];
    for (int k = 0; k < N_OF(isas); k++)
        why[k] = check_isa_lacks(isas[k]);
    RUN_ISAS(test_integer_exact);
    RUN(test_bad_group);
    RUN_ISAS(test_i8);
    RUN_ISAS(test_i4_g32_sym);
    RUN_ISAS(test_i4_g32_asym);
    RUN_ISAS(test_i4_g64_sym);
    RUN_ISAS(test_i4_g64_asym);
    RUN_ISAS(test_i4_g128_sym);
    RUN_ISAS(test_i4_g128_asym);
    RUN_ISAS(test_i3_g32_sym);
    RUN_ISAS(test_i3_g32_asym);
    RUN_ISAS(test_i3_g64_sym);
    RUN_ISAS(test_i3_g64_asym);
    RUN_ISAS(test_i3_g128_sym);
    RUN_ISAS(test_i3_g128_asym);
    RUN_ISAS(test_i2_g32_sym);
    RUN_ISAS(test_i2_g32_asym);
    RUN_ISAS(test_i2_g64_sym);
    RUN_ISAS(test_i2_g64_asym);
    RUN_ISAS(test_i2_g128_sym);
    RUN_ISAS(test_i2_g128_asym);
    return check_summary();
}
