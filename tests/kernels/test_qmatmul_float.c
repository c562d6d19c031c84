/* test_qmatmul_float: the float-weight kernels (F32, F16, BF16, E4M3, E5M2 with f32
 * activations; E4M3 with per-token fp8 activations) of every instruction set, against an
 * independent double-precision reference on odd shapes, and the SIMD fp8 decoders over all
 * 256 codes against kernels/fp8.h. One result line per test and instruction set; those the
 * CPU lacks (or QB_ISA_MAX hides) are reported as skipped.
 *
 * Weight codes are drawn directly (random finite f16/bf16 bit patterns, random fp8 codes
 * other than NaN and inf), not produced by kernels/quantize.c, so these tests check the
 * kernels alone. */
#include "kernels/base/err.h"
#include "kernels/fp8.h"
#include "kernels/half.h"
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

static const int64_t row_sizes[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33};
static const int64_t col_sizes[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 64, 65, 127, 4097};
static const int64_t col_sizes_a8[] = {32, 64, 96, 4096};
static const int64_t batches[] = {1, 2, 3, 4, 5, 8, 33};
#define LEN(a) (int)(sizeof(a) / sizeof((a)[0]))

static const char *const isas[] = {"ref", "avx2", "avx512"};
static const enum qb_fmt float_fmts[] = {QB_FMT_F32, QB_FMT_F16, QB_FMT_BF16, QB_FMT_E4M3,
                                         QB_FMT_E5M2};

static uint32_t rnd(uint32_t *s)
{
    /* xorshift32: s must start nonzero */
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static float frand(uint32_t *s) /* uniform in [-1, 1) */
{
    return (float)(rnd(s) >> 8) / 8388608.0f - 1.0f;
}

/* A random finite code of the format (its bit pattern, as stored). */
static uint32_t random_code(enum qb_fmt f, uint32_t *s)
{
    uint32_t c;
    switch (f) {
    case QB_FMT_F32: {
        float v = ldexpf(frand(s), (int)(rnd(s) % 9) - 4);
        return qb_f32_bits(v);
    }
    case QB_FMT_F16:
        do
            c = rnd(s) & 0xffff;
        while (((c >> 10) & 31) == 31);
        return c;
    case QB_FMT_BF16: {
        /* exponents within 2^+-30 so sums stay finite; 1 in 16 zero or subnormal */
        uint32_t e = rnd(s) % 16 ? 127 - 30 + rnd(s) % 61 : 0;
        return (rnd(s) & 0x8000) | e << 7 | (rnd(s) & 0x7f);
    }
    case QB_FMT_E4M3:
        do
            c = rnd(s) & 0xff;
        while ((c & 0x7f) == 0x7f);
        return c;
    case QB_FMT_E5M2:
        do
            c = rnd(s) & 0xff;
        while (((c >> 2) & 31) == 31);
        return c;
    default: return 0;
    }
}

/* Exact value of a stored code, computed without kernels/half.h or fp8.h for the fp8 and
 * f16 formats (an independent decoder: sign * significand * 2^exponent in double). */
static double code_value(enum qb_fmt f, uint32_t c)
{
    int s, e, m, ebits, mbits, bias;
    switch (f) {
    case QB_FMT_F32: return qb_bits_f32(c);
    case QB_FMT_BF16: return qb_bits_f32(c << 16);
    case QB_FMT_F16: ebits = 5, mbits = 10, bias = 15; break;
    case QB_FMT_E4M3: ebits = 4, mbits = 3, bias = 7; break;
    case QB_FMT_E5M2: ebits = 5, mbits = 2, bias = 15; break;
    default: return 0;
    }
    s = (c >> (ebits + mbits)) & 1;
    e = (int)(c >> mbits) & ((1 << ebits) - 1);
    m = (int)c & ((1 << mbits) - 1);
    double v = e ? ldexp((double)((1 << mbits) | m), e - bias - mbits)
                 : ldexp((double)m, 1 - bias - mbits);
    return s ? -v : v;
}

static void put_code(enum qb_fmt f, void *row, int64_t i, uint32_t c)
{
    switch (f) {
    case QB_FMT_F32: ((uint32_t *)row)[i] = c; break;
    case QB_FMT_F16:
    case QB_FMT_BF16: ((uint16_t *)row)[i] = (uint16_t)c; break;
    default: ((uint8_t *)row)[i] = (uint8_t)c; break;
    }
}

static uint32_t get_code(enum qb_fmt f, const void *row, int64_t i)
{
    switch (f) {
    case QB_FMT_F32: return ((const uint32_t *)row)[i];
    case QB_FMT_F16:
    case QB_FMT_BF16: return ((const uint16_t *)row)[i];
    default: return ((const uint8_t *)row)[i];
    }
}

static int has_scale(enum qb_fmt f)
{
    return f == QB_FMT_E4M3 || f == QB_FMT_E5M2;
}

/* A tensor of random codes (and random row scales for fp8); free with free_tensor. */
static int make_tensor(enum qb_fmt f, int64_t rows, int64_t cols, uint32_t *s, struct qb_qtensor *t)
{
    size_t rb = qb_fmt_row_bytes(f, cols, 0, 0);
    size_t scale_off = (4 + (size_t)rows * rb + 3) / 4 * 4; /* row scales after the rows */
    uint8_t *mem = malloc(scale_off + (size_t)rows * sizeof(float));
    if (!mem)
        return -1;
    memset(t, 0, sizeof *t);
    t->fmt = f, t->rows = rows, t->cols = cols, t->row_bytes = rb;
    /* data aligned to its elements only (4 bytes), not to any vector width */
    t->data = mem + 4;
    t->owned = mem;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < cols; i++)
            put_code(f, mem + 4 + r * rb, i, random_code(f, s));
    if (has_scale(f)) {
        float *sc = (float *)(mem + scale_off);
        for (int64_t r = 0; r < rows; r++)
            sc[r] = ldexpf(0.5f + 0.5f * (frand(s) + 1.0f), (int)(rnd(s) % 9) - 6);
        t->row_scale = sc;
    }
    return 0;
}

static void free_tensor(struct qb_qtensor *t)
{
    free(t->owned);
    memset(t, 0, sizeof *t);
}

/* Compares y (n, rows) with the double reference for every (token, row); a difference
 * above 1e-5 of sum |w x| (in the units of y) fails. Prints the first few misses. */
static int compare(const char *isa, const struct qb_qtensor *w, int64_t n, const float *y,
                   const double *ref, const double *mag)
{
    int bad = 0;
    for (int64_t i = 0; i < n * w->rows; i++) {
        double bound = 1e-5 * mag[i] + 1e-30;
        if (!(fabs(y[i] - ref[i]) <= bound)) {
            if (bad++ < 3)
                fprintf(stderr, "  %s %s rows=%lld cols=%lld n=%lld t=%lld r=%lld: %.9g vs %.9g\n",
                        isa, qb_fmt_name(w->fmt), (long long)w->rows, (long long)w->cols,
                        (long long)n, (long long)(i / w->rows), (long long)(i % w->rows), y[i],
                        ref[i]);
        }
    }
    return bad;
}

/* Weight-only: y = scale * sum_i w x, reference in double. */
static void check_f32act(enum qb_fmt f, int64_t rows, int64_t cols, int64_t n, uint32_t *s)
{
    struct qb_qtensor w;
    float *x = malloc((size_t)(n * cols) * sizeof(float)), *y = malloc((size_t)(n * rows) * 4);
    double *ref = malloc((size_t)(n * rows) * 8), *mag = malloc((size_t)(n * rows) * 8);
    double *wd = malloc((size_t)cols * 8);
    CHECK(make_tensor(f, rows, cols, s, &w) == 0);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = frand(s);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)w.data + r * w.row_bytes;
        double sc = w.row_scale ? w.row_scale[r] : 1.0;
        for (int64_t i = 0; i < cols; i++)
            wd[i] = code_value(f, get_code(f, row, i));
        for (int64_t t = 0; t < n; t++) {
            double acc = 0, m = 0;
            for (int64_t i = 0; i < cols; i++) {
                acc += wd[i] * x[t * cols + i];
                m += fabs(wd[i] * x[t * cols + i]);
            }
            ref[t * rows + r] = sc * acc;
            mag[t * rows + r] = fabs(sc) * m;
        }
    }
    for (int a = 0; a < LEN(isas); a++) {
        if (!check_begin_variant(a))
            continue;
        memset(y, 0xff, (size_t)(n * rows) * 4); /* NaN: every output must be written */
        CHECK(qb_qmatmul_with(qb_qkern_for(isas[a]), y, x, n, &w, QB_ACT_F32) == 0);
        if (compare(isas[a], &w, n, y, ref, mag))
            CHECK(!"weight-only result differs from the f64 reference");
    }
    check_end_variant();
    free_tensor(&w);
    free(x), free(y), free(ref), free(mag), free(wd);
}

/* W8A8-fp8: the activations quantized as the driver does (qb_quantize_act_fp8), then
 * y = row_scale * xscale * sum_i e4m3(w) e4m3(x8), emulated in double. */
static void check_fp8act(int64_t rows, int64_t cols, int64_t n, uint32_t *s)
{
    struct qb_qtensor w;
    float *x = malloc((size_t)(n * cols) * sizeof(float)), *y = malloc((size_t)(n * rows) * 4);
    float *xs = malloc((size_t)n * sizeof(float));
    uint8_t *x8 = malloc((size_t)(n * cols));
    double *ref = malloc((size_t)(n * rows) * 8), *mag = malloc((size_t)(n * rows) * 8);
    CHECK(make_tensor(QB_FMT_E4M3, rows, cols, s, &w) == 0);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = frand(s) * (float)(1 + rnd(s) % 4);
    qb_quantize_act_fp8(x, n, cols, x8, xs);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)w.data + r * w.row_bytes;
        for (int64_t t = 0; t < n; t++) {
            double acc = 0, m = 0;
            for (int64_t i = 0; i < cols; i++) {
                double p =
                    code_value(QB_FMT_E4M3, row[i]) * code_value(QB_FMT_E4M3, x8[t * cols + i]);
                acc += p;
                m += fabs(p);
            }
            double sc = (double)w.row_scale[r] * xs[t];
            ref[t * rows + r] = sc * acc;
            mag[t * rows + r] = fabs(sc) * m;
        }
    }
    for (int a = 0; a < LEN(isas); a++) {
        if (!check_begin_variant(a))
            continue;
        memset(y, 0xff, (size_t)(n * rows) * 4);
        CHECK(qb_qmatmul_with(qb_qkern_for(isas[a]), y, x, n, &w, QB_ACT_FP8) == 0);
        if (compare(isas[a], &w, n, y, ref, mag))
            CHECK(!"w8a8-fp8 result differs from the exact f64 emulation");
    }
    check_end_variant();
    free_tensor(&w);
    free(x), free(y), free(xs), free(x8), free(ref), free(mag);
}

static void test_weight_only_odd_shapes(void)
{
    uint32_t s = 12345;
    for (int f = 0; f < LEN(float_fmts); f++)
        for (int a = 0; a < LEN(row_sizes); a++)
            for (int b = 0; b < LEN(col_sizes); b++)
                for (int c = 0; c < LEN(batches); c++)
                    check_f32act(float_fmts[f], row_sizes[a], col_sizes[b], batches[c], &s);
}

static void test_w8a8_fp8_odd_shapes(void)
{
    uint32_t s = 777;
    for (int a = 0; a < LEN(row_sizes); a++)
        for (int b = 0; b < LEN(col_sizes_a8); b++)
            for (int c = 0; c < LEN(batches); c++)
                check_fp8act(row_sizes[a], col_sizes_a8[b], batches[c], &s);
}

/* Rows longer than the kernels' activation buffers (16384 f32 or 32768 bf16 values per
 * call, split among up to 4 tokens) are done in chunks of columns, not a multiple of any
 * chunk size here. */
static void test_weight_only_long_rows(void)
{
    uint32_t s = 99;
    for (int f = 0; f < LEN(float_fmts); f++) {
        check_f32act(float_fmts[f], 5, 16384 + 33, 1, &s);
        check_f32act(float_fmts[f], 3, 8192 + 17, 3, &s);
        check_f32act(float_fmts[f], 6, 4096 + 65, 6, &s);
    }
}

static void test_w8a8_fp8_long_rows(void)
{
    uint32_t s = 4242;
    check_fp8act(17, 14336 + 32, 1, &s);
    check_fp8act(2, 32768 + 64, 1, &s);
    check_fp8act(3, 8192 + 96, 4, &s);
    check_fp8act(5, 8192 + 96, 6, &s);
}

/* Every fp8 code through every kernel: row c holds code c at column c % cols and zeros
 * elsewhere, x is all ones, so y[c] must be the code's value exactly (NaN for NaN). */
static int same_value(float got, float want)
{
    return isnan(want) ? isnan(got) : got == want;
}

static void check_decoder_codes(const char *isa, enum qb_fmt f, int64_t cols, int64_t n)
{
    struct qb_qtensor w = {.fmt = f, .rows = 256, .cols = cols, .row_bytes = (size_t)cols};
    uint8_t *codes = calloc(256, (size_t)cols);
    float *scale = malloc(256 * sizeof(float)), *x = malloc((size_t)(n * cols) * 4);
    float *y = malloc((size_t)n * 256 * 4);
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        codes[c * cols + c % cols] = (uint8_t)c;
        scale[c] = 1.0f;
    }
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = 1.0f;
    w.data = codes;
    w.row_scale = scale;
    CHECK(qb_qmatmul_with(qb_qkern_for(isa), y, x, n, &w, QB_ACT_F32) == 0);
    for (int64_t t = 0; t < n; t++)
        for (int c = 0; c < 256; c++) {
            float want = f == QB_FMT_E4M3 ? qb_e4m3_to_f32((uint8_t)c) : qb_e5m2_to_f32((uint8_t)c);
            if (!same_value(y[t * 256 + c], want) && bad++ < 3)
                fprintf(stderr, "  %s %s code 0x%02x cols=%lld: %g, want %g\n", isa, qb_fmt_name(f),
                        c, (long long)cols, y[t * 256 + c], want);
        }
    CHECK(bad == 0);
    free(codes), free(scale), free(x), free(y);
}

/* The same for the W8A8 kernel, whose slot is called directly with hand-made activation
 * codes: first each weight code against activations of 1.0 (code 0x38), then each
 * activation code (one token per code) against weights of 1.0. */
static void check_decoder_codes_a8(const char *isa)
{
    const int64_t cols = 64;
    qb_qdot_fn fn = qb_qkern_for(isa)->fn[QB_FMT_E4M3][QB_ACT_FP8];
    uint8_t *w8 = calloc(256, cols), *x8 = calloc(256, cols);
    float scale[256], y[256];
    int bad = 0;
    struct qb_qtensor w = {.fmt = QB_FMT_E4M3, .cols = cols, .row_bytes = cols, .row_scale = scale};
    struct qb_qact a = {.act = QB_ACT_FP8, .cols = cols, .xscale = scale};
    for (int c = 0; c < 256; c++)
        scale[c] = 1.0f;

    /* weight codes: 256 rows, one token of ones; blocks of 16 rows as the driver calls */
    for (int c = 0; c < 256; c++)
        w8[c * cols + c % cols] = (uint8_t)c;
    memset(x8, 0x38, cols);
    w.data = w8, w.rows = 256;
    a.n = 1, a.x8 = x8;
    for (int64_t r = 0; r < 256; r += 16)
        fn(&w, r, r + 16, &a, y, 256);
    for (int c = 0; c < 256; c++)
        if (!same_value(y[c], qb_e4m3_to_f32((uint8_t)c)) && bad++ < 3)
            fprintf(stderr, "  %s w8a8 weight code 0x%02x: %g\n", isa, c, y[c]);

    /* activation codes: one row of ones, 256 tokens */
    memset(w8, 0x38, cols);
    memset(x8, 0, (size_t)256 * cols);
    for (int c = 0; c < 256; c++)
        x8[c * cols + (c * 7) % cols] = (uint8_t)c;
    w.rows = 1;
    a.n = 256;
    fn(&w, 0, 1, &a, y, 1);
    for (int c = 0; c < 256; c++)
        if (!same_value(y[c], qb_e4m3_to_f32((uint8_t)c)) && bad++ < 6)
            fprintf(stderr, "  %s w8a8 activation code 0x%02x: %g\n", isa, c, y[c]);
    CHECK(bad == 0);
    free(w8), free(x8);
}

static void test_fp8_decoders_all_codes(void)
{
    static const int64_t cols[] = {16, 33, 64};
    for (int a = 0; a < LEN(isas); a++) {
        if (!check_begin_variant(a))
            continue;
        for (int c = 0; c < LEN(cols); c++)
            for (int64_t n = 1; n <= 5; n += 4) {
                check_decoder_codes(isas[a], QB_FMT_E4M3, cols[c], n);
                check_decoder_codes(isas[a], QB_FMT_E5M2, cols[c], n);
            }
        check_decoder_codes_a8(isas[a]);
    }
    check_end_variant();
}

/* f16 and bf16 specials that random finite codes skip: inf and NaN weights must give inf
 * and NaN, as the reference does. */
static void test_half_specials(void)
{
    static const uint16_t f16[] = {0x7c00, 0xfc00, 0x7e00, 0x0001, 0x8001, 0x03ff, 0x7bff};
    static const uint16_t bf16[] = {0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8001, 0x007f, 0x7f7f};
    const int64_t cols = 33;
    for (int a = 0; a < LEN(isas); a++) {
        if (!check_begin_variant(a))
            continue;
        for (int bf = 0; bf < 2; bf++) {
            const uint16_t *v = bf ? bf16 : f16;
            uint16_t codes[7 * 33] = {0};
            float x[33], y[7];
            struct qb_qtensor w = {.fmt = bf ? QB_FMT_BF16 : QB_FMT_F16,
                                   .rows = 7,
                                   .cols = cols,
                                   .row_bytes = 2 * cols,
                                   .data = codes};
            for (int r = 0; r < 7; r++)
                codes[r * cols + (r * 5) % cols] = v[r];
            for (int i = 0; i < cols; i++)
                x[i] = 1.0f;
            CHECK(qb_qmatmul_with(qb_qkern_for(isas[a]), y, x, 1, &w, QB_ACT_F32) == 0);
            for (int r = 0; r < 7; r++) {
                float want = bf ? qb_bf16_to_f32(v[r]) : qb_f16_to_f32(v[r]);
                if (!same_value(y[r], want)) {
                    fprintf(stderr, "  %s %s code 0x%04x: %g, want %g\n", isas[a],
                            bf ? "bf16" : "f16", v[r], y[r], want);
                    CHECK(0);
                }
            }
        }
    }
    check_end_variant();
}

int main(void)
{
    const char *why[LEN(isas)];
    for (int a = 0; a < LEN(isas); a++)
        why[a] = check_isa_lacks(isas[a]);
    RUN_VARIANTS(test_fp8_decoders_all_codes, LEN(isas), isas, why);
    RUN_VARIANTS(test_half_specials, LEN(isas), isas, why);
    RUN_VARIANTS(test_weight_only_odd_shapes, LEN(isas), isas, why);
    RUN_VARIANTS(test_weight_only_long_rows, LEN(isas), isas, why);
    RUN_VARIANTS(test_w8a8_fp8_odd_shapes, LEN(isas), isas, why);
    RUN_VARIANTS(test_w8a8_fp8_long_rows, LEN(isas), isas, why);
    return check_summary();
}
