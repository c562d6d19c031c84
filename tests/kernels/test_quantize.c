/* test_quantize: qb_quantize and qb_dequantize_row against the bounds each format promises
 * (qtensor.h, quantize.h), on odd shapes. The packed bytes are also decoded here a second
 * time, independently, straight from the layout comments in qtensor.h, and the fp8 codes are
 * compared with fp8.h's own encoders, so the quantizer, the reference decoder and the header
 * cannot drift apart together. */
#include "kernels/quantize.h"

#include "kernels/base/err.h"
#include "kernels/fp8.h"
#include "kernels/half.h"
#include "tests/check.h"

#include <float.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const int64_t shape_rows[] = {1, 3, 7};
static const int64_t group_cols[] = {32, 64, 96, 128, 4096};
static const int64_t any_cols[] = {1, 5, 17, 32, 33, 64, 96, 128, 4096};
#define N_OF(a) (int)(sizeof(a) / sizeof *(a))

/* ---- data ------------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;

static double urand(void) /* (0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
    return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand());
}

/* Student-t with 2 degrees of freedom: heavy tails, like the outlier weights of LLMs. */
static double heavy(void)
{
    double z = gauss(), a = gauss(), b = gauss();
    return z / sqrt((a * a + b * b) / 2);
}

enum dist { GAUSS, HEAVY, SHIFTED };

static float *make(int64_t rows, int64_t cols, enum dist d, float sigma)
{
    float *w = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t i = 0; w && i < rows * cols; i++)
        w[i] = (float)(sigma * (d == HEAVY ? heavy() : gauss()) + (d == SHIFTED ? 3 * sigma : 0));
    return w;
}

/* ---- an independent decoder, from the qtensor.h comments ------------------------------- */

static int bits_of(enum qb_fmt f)
{
    return f == QB_FMT_I4 ? 4 : f == QB_FMT_I3 ? 3 : 2;
}

/* Code j of a 32-code sub-block. */
static int code_at(const uint8_t *sb, int bits, int j)
{
    if (bits == 4) /* byte i: code i low nibble, code i+16 high nibble */
        return j < 16 ? sb[j] & 0xf : (sb[j - 16] >> 4) & 0xf;
    /* byte i holds codes i, i+8, i+16, i+24 at bits 0-1, 2-3, 4-5, 6-7 */
    int low = (sb[j & 7] >> (2 * (j >> 3))) & 3;
    if (bits == 2)
        return low;
    uint32_t qh =
        (uint32_t)sb[8] | (uint32_t)sb[9] << 8 | (uint32_t)sb[10] << 16 | (uint32_t)sb[11] << 24;
    return low | (int)((qh >> j) & 1) << 2;
}

/* Header d, m and the codes of group g of row r. */
static void group_of(const struct qb_qtensor *t, int64_t r, int64_t g, float *d, float *m,
                     int *codes)
{
    const int bits = bits_of(t->fmt);
    const size_t hb = t->asym ? 4 : 2, sub = bits == 4 ? 16 : bits == 3 ? 12 : 8;
    const uint8_t *p = (const uint8_t *)t->data + (size_t)r * t->row_bytes +
                       (size_t)g * (hb + (size_t)(t->group / 32) * sub);
    uint16_t h[2] = {0, 0};
    memcpy(h, p, hb);
    *d = qb_f16_to_f32(h[0]);
    *m = t->asym ? qb_f16_to_f32(h[1]) : 0;
    for (int b = 0; b < t->group / 32; b++)
        for (int j = 0; j < 32; j++)
            codes[b * 32 + j] = code_at(p + hb + (size_t)b * sub, bits, j);
}

/* Decodes the whole row independently and checks qb_dequantize_row gives the same floats. */
static void check_decoder_agrees(const struct qb_qtensor *t, int64_t r, const float *deq)
{
    int codes[128], z = 1 << (bits_of(t->fmt) - 1), bad = 0;
    for (int64_t g = 0; g < t->cols / t->group; g++) {
        float d, m;
        group_of(t, r, g, &d, &m, codes);
        for (int j = 0; j < t->group; j++) {
            float v = t->asym ? d * (float)codes[j] + m : d * (float)(codes[j] - z);
            bad += v != deq[g * t->group + j];
        }
    }
    CHECK(bad == 0);
}

/* ---- helpers --------------------------------------------------------------------------- */

static double sq_err(const float *a, const float *b, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return e;
}

static int quant(const float *w, int64_t rows, int64_t cols, enum qb_fmt f, int group, int asym,
                 int clip, struct qb_qtensor *t)
{
    struct qb_quant_opts o = {.clip = clip};
    int rc = qb_quantize(w, rows, cols, f, group, asym, &o, t);
    if (rc < 0)
        fprintf(stderr, "  qb_quantize: %s\n", qb_errmsg());
    return rc;
}

static float f16r(float x)
{
    return qb_f16_to_f32(qb_f32_to_f16(x));
}

/* ---- float formats --------------------------------------------------------------------- */

static void test_f32_f16_bf16(void)
{
    for (int ri = 0; ri < N_OF(shape_rows); ri++)
        for (int ci = 0; ci < N_OF(any_cols); ci++) {
            int64_t rows = shape_rows[ri], cols = any_cols[ci];
            float *w = make(rows, cols, GAUSS, 0.5f), *o = malloc((size_t)cols * sizeof(float));
            for (int f = QB_FMT_F32; f <= QB_FMT_BF16; f++) {
                struct qb_qtensor t;
                int bad = 0;
                if (quant(w, rows, cols, (enum qb_fmt)f, 0, 0, -1, &t) < 0) {
                    CHECK(0);
                    continue;
                }
                CHECK(t.row_scale == NULL && t.row_sum == NULL && t.owned == t.data);
                for (int64_t r = 0; r < rows; r++) {
                    qb_dequantize_row(&t, r, o);
                    for (int64_t i = 0; i < cols; i++) {
                        float x = w[r * cols + i], e = fabsf(x - o[i]);
                        /* half an ulp, relative; f16 below its normal range: half a step */
                        double tol = f == QB_FMT_F32    ? 0
                                     : f == QB_FMT_BF16 ? 0x1p-8 * fabsf(x)
                                                        : fmax(0x1p-11 * fabsf(x), 0x1p-25);
                        bad += !(e <= tol);
                    }
                }
                CHECK(bad == 0);
                qb_qtensor_release(&t);
            }
            free(w);
            free(o);
        }
}

/* ---- fp8 ------------------------------------------------------------------------------- */

static void test_fp8_bounds(void)
{
    for (int ri = 0; ri < N_OF(shape_rows); ri++)
        for (int ci = 0; ci < N_OF(any_cols); ci++)
            for (int e5 = 0; e5 < 2; e5++) {
                int64_t rows = shape_rows[ri], cols = any_cols[ci];
                float *w = make(rows, cols, HEAVY, 0.02f), *o = malloc((size_t)cols * 4);
                enum qb_fmt f = e5 ? QB_FMT_E5M2 : QB_FMT_E4M3;
                struct qb_qtensor t;
                int bad_bound = 0, bad_code = 0;
                if (quant(w, rows, cols, f, 0, 0, -1, &t) < 0) {
                    CHECK(0);
                    continue;
                }
                for (int64_t r = 0; r < rows; r++) {
                    const float *wr = w + r * cols;
                    const uint8_t *c = (const uint8_t *)t.data + r * t.row_bytes;
                    float amax = 0, s = t.row_scale[r];
                    for (int64_t i = 0; i < cols; i++)
                        amax = fmaxf(amax, fabsf(wr[i]));
                    CHECK(s == amax / (e5 ? QB_E5M2_MAX : QB_E4M3_MAX));
                    qb_dequantize_row(&t, r, o);
                    for (int64_t i = 0; i < cols; i++) {
                        /* relative half-ulp of 3 (2) mantissa bits, or half the smallest
                         * subnormal step 2^-9 (2^-16) times the scale; plus f32 rounding */
                        double tol = e5 ? 0x1p-3 * fabsf(wr[i]) + 0x1p-17 * s
                                        : 0x1p-4 * fabsf(wr[i]) + 0x1p-10 * s;
                        bad_bound += !(fabsf(wr[i] - o[i]) <= tol + 1e-6 * fabsf(wr[i]));
                        bad_code +=
                            c[i] != (e5 ? qb_f32_to_e5m2(wr[i] / s) : qb_f32_to_e4m3(wr[i] / s));
                    }
                }
                CHECK(bad_bound == 0);
                CHECK(bad_code == 0);
                qb_qtensor_release(&t);
                free(w);
                free(o);
            }
}

/* The nearest fp8 code by brute force over the grid: an oracle independent of fp8.h's bit
 * tricks. Ties go to the even code (mantissa LSB 0); beyond the maximum it saturates. */
static uint8_t nearest_fp8(float x, int e5)
{
    float a = fabsf(x);
    int best = 0;
    double best_d = INFINITY;
    for (int c = 0; c < 128; c++) {
        float v = e5 ? qb_e5m2_to_f32((uint8_t)c) : qb_e4m3_to_f32((uint8_t)c);
        double d;
        if (!isfinite(v))
            continue;
        d = fabs((double)v - (double)a);
        if (d < best_d || (d == best_d && (c & 1) == 0)) {
            best = c;
            best_d = d;
        }
    }
    return (uint8_t)(best | (signbit(x) ? 0x80 : 0));
}

/* Every fp8 value, the midpoints between neighbours and the floats either side of them, with
 * the format's maximum in the row so the scale is exactly 1: the quantizer's codes must be the
 * nearest grid points, ties to even included, and agree with fp8.h's encoders. */
static void test_fp8_codes_match_header(void)
{
    for (int e5 = 0; e5 < 2; e5++) {
        float vals[256], *w = malloc(256 * 8 * sizeof(float));
        int n = 0, nv = 0, bad = 0;
        struct qb_qtensor t;
        for (int c = 0; c < 128; c++) {
            float v = e5 ? qb_e5m2_to_f32((uint8_t)c) : qb_e4m3_to_f32((uint8_t)c);
            if (isfinite(v))
                vals[nv++] = v;
        }
        w[n++] = e5 ? QB_E5M2_MAX : QB_E4M3_MAX;
        for (int i = 0; i < nv; i++) {
            float mid = i + 1 < nv ? (vals[i] + vals[i + 1]) / 2 : vals[i]; /* max: no midpoint */
            float pts[] = {vals[i], nextafterf(vals[i], 0), mid, nextafterf(mid, 0),
                           nextafterf(mid, INFINITY)};
            for (int k = 0; k < (i + 1 < nv ? 5 : 2); k++) {
                w[n++] = pts[k];
                w[n++] = -pts[k];
            }
        }
        if (quant(w, 1, n, e5 ? QB_FMT_E5M2 : QB_FMT_E4M3, 0, 0, -1, &t) < 0) {
            CHECK(0);
            free(w);
            continue;
        }
        CHECK(t.row_scale[0] == 1.0f);
        for (int i = 0; i < n; i++) {
            uint8_t want = nearest_fp8(w[i], e5);
            bad += ((const uint8_t *)t.data)[i] != want;
            bad += want != (e5 ? qb_f32_to_e5m2(w[i]) : qb_f32_to_e4m3(w[i]));
        }
        CHECK(bad == 0);
        qb_qtensor_release(&t);
        free(w);
    }
}

/* ---- int8 ------------------------------------------------------------------------------ */

static void test_i8(void)
{
    for (int ri = 0; ri < N_OF(shape_rows); ri++)
        for (int ci = 0; ci < N_OF(any_cols); ci++) {
            int64_t rows = shape_rows[ri], cols = any_cols[ci];
            float *w = make(rows, cols, HEAVY, 0.02f), *o = malloc((size_t)cols * 4);
            struct qb_qtensor t;
            int bad = 0;
            if (quant(w, rows, cols, QB_FMT_I8, 0, 0, -1, &t) < 0) {
                CHECK(0);
                continue;
            }
            for (int64_t r = 0; r < rows; r++) {
                const int8_t *q = (const int8_t *)t.data + r * t.row_bytes;
                float amax = 0, s = t.row_scale[r];
                int32_t sum = 0;
                int has_max = 0;
                for (int64_t i = 0; i < cols; i++)
                    amax = fmaxf(amax, fabsf(w[r * cols + i]));
                CHECK(s == amax / 127.0f);
                qb_dequantize_row(&t, r, o);
                for (int64_t i = 0; i < cols; i++) {
                    sum += q[i];
                    has_max |= q[i] == 127 || q[i] == -127;
                    bad += q[i] < -127;
                    bad += !(fabsf(w[r * cols + i] - o[i]) <= s / 2 * (1 + 1e-6f));
                }
                CHECK(sum == t.row_sum[r]);
                CHECK(has_max);
            }
            CHECK(bad == 0);
            qb_qtensor_release(&t);
            free(w);
            free(o);
        }
}

/* ---- group-wise int4/3/2 --------------------------------------------------------------- */

/* The RTN bound of every weight of every group (clip off), the header choices quantize.c
 * documents, and the independent decoder. */
static void check_group_bounds(const float *w, const struct qb_qtensor *t)
{
    const int bits = bits_of(t->fmt), z = 1 << (bits - 1), qmax = (1 << bits) - 1;
    float o[4096];
    int codes[128], bad = 0, bad_hdr = 0;
    for (int64_t r = 0; r < t->rows; r++) {
        qb_dequantize_row(t, r, o);
        check_decoder_agrees(t, r, o);
        for (int64_t g = 0; g < t->cols / t->group; g++) {
            const float *wg = w + r * t->cols + g * t->group, *og = o + g * t->group;
            float d, m, mn = wg[0], mx = wg[0], vmax = 0;
            group_of(t, r, g, &d, &m, codes);
            for (int j = 0; j < t->group; j++) {
                mn = fminf(mn, wg[j]);
                mx = fmaxf(mx, wg[j]);
                if (fabsf(wg[j]) > fabsf(vmax))
                    vmax = wg[j];
            }
            if (t->asym) {
                /* m = f16(min), d = f16((max - min) / qmax) up to the rounding of m */
                double dm = fabs((double)m - mn), dd = (mx - (double)mn) / qmax;
                bad_hdr += m != f16r(mn);
                bad_hdr += !(fabs(d - dd) <= 0x1p-11 * d + dm / qmax + 1e-9);
                for (int j = 0; j < t->group; j++) {
                    double tol = d / 2 + dm + qmax * 0x1p-11 * d + 1e-6 * fabsf(wg[j]) + 1e-9;
                    bad += !(fabs((double)wg[j] - og[j]) <= tol);
                }
            } else {
                /* d = f16(signed max / -2^(b-1)): the signed max is code 0, exactly up to
                 * the rounding of d; the other side clamps at 2^(b-1) - 1 */
                bad_hdr += d != f16r(vmax / -(float)z);
                bad_hdr += codes[0] < 0; /* keep codes used */
                for (int j = 0; j < t->group; j++) {
                    double c = (double)wg[j] / d;
                    double tol =
                        fabs(d) * (c > z - 0.5 ? c - (z - 1) : 0.5) + 1e-6 * fabsf(wg[j]) + 1e-9;
                    bad += !(fabs((double)wg[j] - og[j]) <= tol);
                }
            }
        }
    }
    CHECK(bad == 0);
    CHECK(bad_hdr == 0);
}

/* Each code is the nearest grid point of the header as stored (f16), so dequantization gives
 * exactly what the quantizer optimised: no neighbouring code is closer. */
static void check_codes_nearest(const float *w, const struct qb_qtensor *t)
{
    const int bits = bits_of(t->fmt), z = 1 << (bits - 1), qmax = (1 << bits) - 1;
    int codes[128], bad = 0;
    for (int64_t r = 0; r < t->rows; r++)
        for (int64_t g = 0; g < t->cols / t->group; g++) {
            const float *wg = w + r * t->cols + g * t->group;
            float d, m;
            group_of(t, r, g, &d, &m, codes);
            for (int j = 0; j < t->group; j++) {
                double e[3];
                for (int k = -1; k <= 1; k++) {
                    int q = codes[j] + k;
                    double v = t->asym ? (double)d * q + m : (double)d * (q - z);
                    e[k + 1] = q < 0 || q > qmax ? INFINITY : fabs(wg[j] - v);
                }
                bad += e[1] > e[0] + 1e-6 * fabs(d) || e[1] > e[2] + 1e-6 * fabs(d);
            }
        }
    CHECK(bad == 0);
}

static void test_groups_rtn_bounds(void)
{
    static const enum qb_fmt fmts[] = {QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    for (int fi = 0; fi < 3; fi++)
        for (int asym = 0; asym < 2; asym++)
            for (int group = 32; group <= 128; group *= 2)
                for (int ci = 0; ci < N_OF(group_cols); ci++)
                    for (int ri = 0; ri < N_OF(shape_rows); ri++) {
                        int64_t rows = shape_rows[ri], cols = group_cols[ci];
                        struct qb_qtensor t;
                        float *w;
                        if (cols % group)
                            continue;
                        w = make(rows, cols, ri == 1 ? HEAVY : ri == 2 ? SHIFTED : GAUSS, 0.03f);
                        if (quant(w, rows, cols, fmts[fi], group, asym, 0, &t) == 0) {
                            CHECK(t.group == group && t.asym == asym);
                            CHECK(t.row_bytes == qb_fmt_row_bytes(fmts[fi], cols, group, asym));
                            check_group_bounds(w, &t);
                            check_codes_nearest(w, &t);
                        } else {
                            CHECK(0);
                        }
                        qb_qtensor_release(&t);
                        free(w);
                    }
}

/* Values already on the grid come back exactly: int8, every group format (clip on and off),
 * fp8, f16, bf16. */
static void test_grid_exact(void)
{
    enum { COLS = 256 };
    float w[2 * COLS], o[COLS];
    struct qb_qtensor t;

    /* int8: s * k with s a power of two and +-127 present */
    for (int i = 0; i < 2 * COLS; i++)
        w[i] = 0x1p-7f * (float)((i * 37) % 255 - 127);
    w[5] = 127 * 0x1p-7f;
    w[COLS + 9] = -127 * 0x1p-7f;
    CHECK(quant(w, 2, COLS, QB_FMT_I8, 0, 0, -1, &t) == 0);
    for (int r = 0; r < 2; r++) {
        qb_dequantize_row(&t, r, o);
        CHECK(memcmp(o, w + r * COLS, sizeof o) == 0);
    }
    qb_qtensor_release(&t);

    /* groups: asym w = d q + m with q = 0 and qmax in every group; sym w = d (q - z) with
     * q = 0 (the signed max) in every group. d, m powers of two / f16-exact. */
    static const enum qb_fmt fmts[] = {QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    for (int fi = 0; fi < 3; fi++)
        for (int asym = 0; asym < 2; asym++)
            for (int clip = 0; clip < 2; clip++) {
                int bits = bits_of(fmts[fi]), qmax = (1 << bits) - 1, z = 1 << (bits - 1);
                for (int i = 0; i < 2 * COLS; i++) {
                    int q = (i * 7 + i / 5) % (qmax + 1);
                    if (i % 32 == 3)
                        q = 0;
                    if (asym && i % 32 == 17)
                        q = qmax;
                    w[i] = asym ? 0x1p-6f * (float)q - 0.375f : 0x1p-5f * (float)(q - z);
                }
                CHECK(quant(w, 2, COLS, fmts[fi], 32, asym, clip, &t) == 0);
                for (int r = 0; r < 2; r++) {
                    qb_dequantize_row(&t, r, o);
                    CHECK(memcmp(o, w + r * COLS, sizeof o) == 0);
                }
                qb_qtensor_release(&t);
            }

    /* fp8: fp8 values times a power of two, the maximum present */
    for (int e5 = 0; e5 < 2; e5++) {
        for (int i = 0; i < COLS; i++) {
            uint8_t c = (uint8_t)(i % 128 == 127 ? 0 : i);
            float v = e5 ? qb_e5m2_to_f32(c) : qb_e4m3_to_f32(c);
            w[i] = isfinite(v) ? 0x1p-12f * v : 0;
        }
        w[3] = 0x1p-12f * (e5 ? QB_E5M2_MAX : QB_E4M3_MAX);
        CHECK(quant(w, 1, COLS, e5 ? QB_FMT_E5M2 : QB_FMT_E4M3, 0, 0, -1, &t) == 0);
        qb_dequantize_row(&t, 0, o);
        CHECK(memcmp(o, w, sizeof o) == 0);
        qb_qtensor_release(&t);
    }

    /* f16 / bf16: representable values */
    for (int i = 0; i < COLS; i++)
        w[i] = f16r((float)gauss()) * 0x1p-3f;
    CHECK(quant(w, 1, COLS, QB_FMT_F16, 0, 0, -1, &t) == 0);
    qb_dequantize_row(&t, 0, o);
    CHECK(memcmp(o, w, sizeof o) == 0);
    qb_qtensor_release(&t);
    for (int i = 0; i < COLS; i++)
        w[i] = qb_bf16_to_f32(qb_f32_to_bf16((float)gauss()));
    CHECK(quant(w, 1, COLS, QB_FMT_BF16, 0, 0, -1, &t) == 0);
    qb_dequantize_row(&t, 0, o);
    CHECK(memcmp(o, w, sizeof o) == 0);
    qb_qtensor_release(&t);
}

/* Per group, clipping never adds squared error; on heavy-tailed weights it removes some. */
static void test_clip_search(void)
{
    static const enum qb_fmt fmts[] = {QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    const int64_t rows = 16, cols = 1024;
    float *w = make(rows, cols, HEAVY, 0.02f), o0[1024], o1[1024];
    for (int fi = 0; fi < 3; fi++)
        for (int asym = 0; asym < 2; asym++)
            for (int group = 32; group <= 128; group *= 2) {
                struct qb_qtensor t0, t1;
                double e0 = 0, e1 = 0;
                int worse = 0;
                if (quant(w, rows, cols, fmts[fi], group, asym, 0, &t0) < 0 ||
                    quant(w, rows, cols, fmts[fi], group, asym, 1, &t1) < 0) {
                    CHECK(0);
                    continue;
                }
                for (int64_t r = 0; r < rows; r++) {
                    qb_dequantize_row(&t0, r, o0);
                    qb_dequantize_row(&t1, r, o1);
                    for (int64_t g = 0; g < cols / group; g++) {
                        const float *wg = w + r * cols + g * group;
                        double a = sq_err(wg, o0 + g * group, group);
                        double b = sq_err(wg, o1 + g * group, group);
                        worse += b > a * (1 + 1e-6) + 1e-15;
                        e0 += a;
                        e1 += b;
                    }
                }
                CHECK(worse == 0);
                /* heavy tails: clipping pays (measured: 4-14% sym, 22-82% asym) */
                CHECK(e1 < e0 * (asym ? 0.8 : 0.98));
                if (e1 >= e0 * (asym ? 0.8 : 0.98))
                    fprintf(stderr, "  %s g%d %s: clip %.4g vs rtn %.4g\n", qb_fmt_name(fmts[fi]),
                            group, asym ? "asym" : "sym", e1, e0);
                qb_qtensor_release(&t0);
                qb_qtensor_release(&t1);
            }
    free(w);
}

/* opts NULL or clip -1: the search runs for I3/I2 only. */
static void test_clip_default(void)
{
    static const enum qb_fmt fmts[] = {QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    float *w = make(4, 256, HEAVY, 0.02f);
    for (int fi = 0; fi < 3; fi++) {
        struct qb_qtensor td, tn, tx;
        CHECK(qb_quantize(w, 4, 256, fmts[fi], 64, 1, NULL, &tn) == 0);
        CHECK(quant(w, 4, 256, fmts[fi], 64, 1, -1, &td) == 0);
        CHECK(quant(w, 4, 256, fmts[fi], 64, 1, fi == 0 ? 0 : 1, &tx) == 0);
        CHECK(memcmp(td.data, tx.data, 4 * td.row_bytes) == 0);
        CHECK(memcmp(tn.data, tx.data, 4 * td.row_bytes) == 0);
        qb_qtensor_release(&td);
        qb_qtensor_release(&tn);
        qb_qtensor_release(&tx);
    }
    free(w);
}

/* On weights shifted off zero, min/max groups beat symmetric ones. */
static void test_asym_beats_sym_shifted(void)
{
    static const enum qb_fmt fmts[] = {QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    const int64_t rows = 8, cols = 512;
    float *w = make(rows, cols, SHIFTED, 0.02f), o[512];
    for (int fi = 0; fi < 3; fi++)
        for (int clip = 0; clip < 2; clip++) {
            struct qb_qtensor ts, ta;
            double es = 0, ea = 0;
            CHECK(quant(w, rows, cols, fmts[fi], 32, 0, clip, &ts) == 0);
            CHECK(quant(w, rows, cols, fmts[fi], 32, 1, clip, &ta) == 0);
            for (int64_t r = 0; r < rows; r++) {
                qb_dequantize_row(&ts, r, o);
                es += sq_err(w + r * cols, o, cols);
                qb_dequantize_row(&ta, r, o);
                ea += sq_err(w + r * cols, o, cols);
            }
            CHECK(ea < 0.8 * es);
            qb_qtensor_release(&ts);
            qb_qtensor_release(&ta);
        }
    free(w);
}

/* Zero rows: zero scales, zero weights back, in every format. */
static void test_zero_rows(void)
{
    float w[3 * 64] = {0}, o[64];
    for (int i = 64; i < 128; i++)
        w[i] = (float)(i - 100) / 64; /* the middle row is not zero */
    for (int f = 0; f < QB_FMT_COUNT; f++)
        for (int asym = 0; asym < 2; asym++) {
            struct qb_qtensor t;
            int bad = 0;
            CHECK(quant(w, 3, 64, (enum qb_fmt)f, 32, asym, -1, &t) == 0);
            for (int r = 0; r < 3; r += 2) {
                qb_dequantize_row(&t, r, o);
                for (int i = 0; i < 64; i++)
                    bad += o[i] != 0;
                if (t.row_scale)
                    bad += t.row_scale[r] != 0;
                if (t.row_sum)
                    bad += t.row_sum[r] != 0;
            }
            CHECK(bad == 0);
            qb_qtensor_release(&t);
        }
}

/* Sizes, bits per weight, alignment and the one allocation. */
static void test_sizes(void)
{
    static const struct {
        enum qb_fmt f;
        int group, asym;
        double bpw; /* for cols = 4096 */
    } cases[] = {
        {QB_FMT_F32, 0, 0, 32},
        {QB_FMT_F16, 0, 0, 16},
        {QB_FMT_BF16, 0, 0, 16},
        {QB_FMT_E4M3, 0, 0, 8 + 32.0 / 4096}, /* f32 row scale */
        {QB_FMT_E5M2, 0, 0, 8 + 32.0 / 4096},
        {QB_FMT_I8, 0, 0, 8 + 64.0 / 4096}, /* f32 row scale and i32 row sum */
        {QB_FMT_I4, 32, 1, 4 + 32.0 / 32},  /* 5.0 */
        {QB_FMT_I4, 32, 0, 4 + 16.0 / 32},  /* 4.5 */
        {QB_FMT_I4, 128, 1, 4 + 32.0 / 128},
        {QB_FMT_I4, 64, 0, 4 + 16.0 / 64},
        {QB_FMT_I3, 32, 0, 3 + 16.0 / 32},
        {QB_FMT_I3, 128, 1, 3 + 32.0 / 128},
        {QB_FMT_I2, 32, 1, 2 + 32.0 / 32},
        {QB_FMT_I2, 64, 0, 2 + 16.0 / 64},
    };
    const int64_t rows = 3, cols = 4096;
    float *w = make(rows, cols, GAUSS, 0.02f);
    for (int i = 0; i < N_OF(cases); i++) {
        struct qb_qtensor t;
        if (quant(w, rows, cols, cases[i].f, cases[i].group, cases[i].asym, 0, &t) < 0) {
            CHECK(0);
            continue;
        }
        CHECK_NEAR(qb_qtensor_bpw(&t), cases[i].bpw, 1e-12);
        CHECK(t.row_bytes * 8 == (size_t)((cases[i].f == QB_FMT_I8 || cases[i].f == QB_FMT_E4M3 ||
                                           cases[i].f == QB_FMT_E5M2)
                                              ? 8 * cols
                                              : (cases[i].bpw) * cols));
        CHECK(((uintptr_t)t.data & 63) == 0);
        CHECK(t.owned == t.data);
        if (t.row_scale)
            CHECK((const char *)t.row_scale >= (const char *)t.data + rows * t.row_bytes &&
                  ((uintptr_t)t.row_scale & 3) == 0);
        if (t.row_sum)
            CHECK((const char *)t.row_sum >= (const char *)(t.row_scale + rows));
        qb_qtensor_release(&t);
        CHECK(t.owned == NULL && t.data == NULL);
    }
    free(w);
}

/* Same bytes whatever the thread count. */
static void test_threads_deterministic(void)
{
    const int64_t rows = 64, cols = 1024;
    float *w = make(rows, cols, HEAVY, 0.02f);
    int nt = omp_get_max_threads();
    for (int f = QB_FMT_E4M3; f < QB_FMT_COUNT; f++) {
        struct qb_qtensor a, b;
        omp_set_num_threads(1);
        CHECK(quant(w, rows, cols, (enum qb_fmt)f, 64, 1, 1, &a) == 0);
        omp_set_num_threads(nt > 1 ? nt : 2);
        CHECK(quant(w, rows, cols, (enum qb_fmt)f, 64, 1, 1, &b) == 0);
        CHECK(a.data && b.data && memcmp(a.data, b.data, rows * a.row_bytes) == 0);
        if (a.row_scale)
            CHECK(memcmp(a.row_scale, b.row_scale, rows * sizeof(float)) == 0);
        qb_qtensor_release(&a);
        qb_qtensor_release(&b);
    }
    omp_set_num_threads(nt);
    free(w);
}

static void test_wrap_f32(void)
{
    float w[6] = {1, -2, 3, 4, 5.5f, -6}, o[3];
    struct qb_qtensor t;
    qb_qtensor_wrap_f32(w, 2, 3, &t);
    CHECK(t.fmt == QB_FMT_F32 && t.rows == 2 && t.cols == 3 && t.row_bytes == 12);
    CHECK(t.data == w && t.owned == NULL && t.row_scale == NULL);
    qb_dequantize_row(&t, 1, o);
    CHECK(o[0] == 4 && o[1] == 5.5f && o[2] == -6);
    qb_qtensor_release(&t); /* borrows: frees nothing */
    CHECK(w[0] == 1);
}

/* Refused with QB_EINVAL / QB_ERANGE and a message, leaving out zeroed. */
static void expect_fail(const float *w, int64_t rows, int64_t cols, enum qb_fmt f, int group,
                        int clip, int code, const char *needle)
{
    struct qb_qtensor t;
    struct qb_quant_opts o = {.clip = clip};
    memset(&t, 0x5a, sizeof t);
    int rc = qb_quantize(w, rows, cols, f, group, 1, &o, &t);
    CHECK(rc == code);
    CHECK(t.owned == NULL && t.data == NULL);
    if (needle && !strstr(qb_errmsg(), needle)) {
        fprintf(stderr, "  message '%s' lacks '%s'\n", qb_errmsg(), needle);
        CHECK(0);
    }
}

static void test_bad_args(void)
{
    float w[256];
    for (int i = 0; i < 256; i++)
        w[i] = (float)i / 256;
    expect_fail(w, 0, 32, QB_FMT_I8, 0, -1, QB_EINVAL, "(0, 32)");
    expect_fail(w, 1, 0, QB_FMT_F16, 0, -1, QB_EINVAL, "(1, 0)");
    expect_fail(w, -1, 32, QB_FMT_I4, 32, -1, QB_EINVAL, NULL);
    expect_fail(w, 1, 64, QB_FMT_I4, 48, -1, QB_EINVAL, "group size 48");
    expect_fail(w, 1, 64, QB_FMT_I3, 0, -1, QB_EINVAL, "group size 0");
    expect_fail(w, 1, 256, QB_FMT_I2, 256, -1, QB_EINVAL, "group size 256");
    expect_fail(w, 1, 96, QB_FMT_I4, 64, -1, QB_EINVAL, "96 columns");
    expect_fail(w, 1, 33, QB_FMT_I4, 32, -1, QB_EINVAL, "33 columns");
    expect_fail(w, 1, 32, (enum qb_fmt)QB_FMT_COUNT, 0, -1, QB_EINVAL, "format");
    expect_fail(w, 1, 32, (enum qb_fmt)(-1), 0, -1, QB_EINVAL, "format");
    expect_fail(w, 1, 32, QB_FMT_I4, 32, 2, QB_EINVAL, "clip");
    expect_fail(NULL, 1, 32, QB_FMT_I8, 0, -1, QB_EINVAL, "weights");
    /* sizes that overflow are refused before anything is read or allocated */
    expect_fail(w, INT64_MAX / 2, 64, QB_FMT_I8, 0, -1, QB_EINVAL, "too large");
    expect_fail(w, (int64_t)1 << 40, (int64_t)1 << 30, QB_FMT_I4, 32, -1, QB_EINVAL, "too large");
    CHECK(qb_quantize(w, 1, 32, QB_FMT_I8, 0, 0, NULL, NULL) == QB_EINVAL);

    /* values: non-finite anywhere, f16 overflow, f16 group headers overflow */
    for (int f = 0; f < QB_FMT_COUNT; f++) {
        w[64 + 7] = NAN;
        expect_fail(w, 4, 64, (enum qb_fmt)f, 32, -1, QB_ERANGE, "row 1");
        w[64 + 7] = INFINITY;
        expect_fail(w, 4, 64, (enum qb_fmt)f, 32, -1, QB_ERANGE, "non-finite");
        w[64 + 7] = 0.5f;
    }
    w[130] = 1e6f;
    expect_fail(w, 4, 64, QB_FMT_F16, 0, -1, QB_ERANGE, "row 2");
    w[130] = 1e7f;
    expect_fail(w, 4, 64, QB_FMT_I4, 32, -1, QB_ERANGE, "f16 group headers");
    w[130] = FLT_MAX;
    expect_fail(w, 4, 64, QB_FMT_BF16, 0, -1, QB_ERANGE, "row 2");
    w[130] = 0.5f;

    /* the decoder does not read outside the tensor */
    {
        struct qb_qtensor t;
        float o[64];
        CHECK(quant(w, 1, 64, QB_FMT_I4, 32, 1, 0, &t) == 0);
        qb_dequantize_row(&t, 1, o);
        CHECK(isnan(o[0]) && isnan(o[63]));
        qb_dequantize_row(&t, -1, o);
        CHECK(isnan(o[0]));
        qb_qtensor_release(&t);
        qb_qtensor_release(&t); /* twice: a no-op */
    }
}

int main(void)
{
    RUN(test_f32_f16_bf16);
    RUN(test_fp8_bounds);
    RUN(test_fp8_codes_match_header);
    RUN(test_i8);
    RUN(test_groups_rtn_bounds);
    RUN(test_grid_exact);
    RUN(test_clip_search);
    RUN(test_clip_default);
    RUN(test_asym_beats_sym_shifted);
    RUN(test_zero_rows);
    RUN(test_sizes);
    RUN(test_threads_deterministic);
    RUN(test_wrap_f32);
    RUN(test_bad_args);
    return check_summary();
}
