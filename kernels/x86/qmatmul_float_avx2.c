/* qmatmul_float_avx2: AVX2 + FMA + F16C kernels for the float weight formats (F32, F16,
 * BF16, fp8 E4M3/E5M2 with f32 activations; E4M3 x per-token E4M3 activations). Compiled
 * with -mavx2 -mfma -mf16c only here. Agrees with kernels/qmatmul_float_ref.c up to the
 * order of the f32 sums. The fallback for CPUs without AVX-512 (and, for fp8, without
 * AVX512-VBMI); kernels/x86/qmatmul_float_avx512.c decodes fp8 by table instead.
 *
 * Weights are decoded to f32 in registers, 16 at a time, as two vectors of 8:
 *   F32   loaded as is; F16 vcvtph2ps; BF16 zero-extended to 32 bits and shifted left 16;
 *   E5M2  is the high byte of an f16: byte << 8, then vcvtph2ps (exact, inf and NaN too);
 *   E4M3  sign-extended to 16 bits and shifted left 7 gives the f16 whose value is the
 *         e4m3 value / 256 (same 3-bit mantissa, exponent bias 15 instead of 7, and e4m3
 *         subnormals land on f16 subnormals); the 256 is folded into the row scale. The two
 *         NaN codes (S.1111.111) become the f16 NaN 0xffff, so decoding is exact for all 256.
 * A kernel call covers a block of at most 16 rows (qmatmul.c). Batch 1 runs 4 rows at once
 * (4 streams, each activation vector loaded once for 4 rows); batch >= 2 runs tiles of 4
 * rows x up to 3 tokens (2 x 4 for E4M3), so each decoded weight vector serves 3-4 tokens.
 * Accumulators stay in registers over the whole row and are summed across lanes once. Row
 * tails repeat the last row (results dropped); the last k % 16 columns go through a
 * zero-padded copy, so the vector decoders handle them too.
 *
 * W8A8-fp8: activation codes are decoded once per call and 4 tokens to f32 (value / 256)
 * into a stack buffer, KC columns at a time; the E4M3 tile then runs on them. Both operands
 * are exact in f32 and so is each product (two 4-bit significands); sums are f32. */
#include "kernels/qmatmul.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- decoders: 16 codes to two vectors of 8 f32 (E4M3 scaled by 1/256) ---- */

AI void h16_f32(__m256i h, __m256 *lo, __m256 *hi)
{
    *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

/* 16 e4m3 codes -> f16 bits of value/256; NaN codes -> 0xffff (an f16 NaN). */
AI __m256i e4m3_h16(__m128i b)
{
    __m256i sx = _mm256_cvtepi8_epi16(b);
    __m256i u = _mm256_slli_epi16(sx, 7); /* bits 15,14 = sign */
    __m256i nan = _mm256_cmpeq_epi16(_mm256_or_si256(sx, _mm256_set1_epi16((short)0xff80)),
                                     _mm256_set1_epi16(-1));
    return _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi16((short)0xbfff)), nan);
}

AI __m256i e5m2_h16(__m128i b)
{
    return _mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8);
}

/* 16 weights of a row starting at element i. */
AI void wload(int fmt, const uint8_t *row, int64_t i, __m256 *lo, __m256 *hi)
{
    switch (fmt) {
    case QB_FMT_F32:
        *lo = _mm256_loadu_ps((const float *)row + i);
        *hi = _mm256_loadu_ps((const float *)row + i + 8);
        break;
    case QB_FMT_F16:
        *lo = _mm256_cvtph_ps(_mm_loadu_si128((const void *)(row + 2 * i)));
        *hi = _mm256_cvtph_ps(_mm_loadu_si128((const void *)(row + 2 * i + 16)));
        break;
    case QB_FMT_BF16:
        *lo = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(row + 2 * i))), 16));
        *hi = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(row + 2 * i + 16))), 16));
        break;
    case QB_FMT_E4M3: h16_f32(e4m3_h16(_mm_loadu_si128((const void *)(row + i))), lo, hi); break;
    default: h16_f32(e5m2_h16(_mm_loadu_si128((const void *)(row + i))), lo, hi); break;
    }
}

AI int fmt_bytes(int fmt)
{
    return fmt == QB_FMT_F32 ? 4 : fmt == QB_FMT_F16 || fmt == QB_FMT_BF16 ? 2 : 1;
}

/* ---- the R-row x T-token tile over a whole row of k weights ---- */

/* out[j][t] = sum_i w_j[i] * x_t[i] (weights decoded, before any row scale). */
AI void tile(int fmt, int R, int T, const uint8_t *const wr[4], const float *const xt[4], int64_t k,
             float out[4][4])
{
    __m256 acc[4][4];
    int64_t i = 0;
#pragma GCC unroll 4
    for (int j = 0; j < R; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[j][t] = _mm256_setzero_ps();
    for (; i + 16 <= k; i += 16) {
        __m256 wl[4], wh[4];
#pragma GCC unroll 4
        for (int j = 0; j < R; j++)
            wload(fmt, wr[j], i, &wl[j], &wh[j]);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256 xl = _mm256_loadu_ps(xt[t] + i), xh = _mm256_loadu_ps(xt[t] + i + 8);
#pragma GCC unroll 4
            for (int j = 0; j < R; j++)
                acc[j][t] = _mm256_fmadd_ps(wh[j], xh, _mm256_fmadd_ps(wl[j], xl, acc[j][t]));
        }
    }
    if (i < k) {
        /* the last k - i < 16 columns, from zero-padded copies */
        uint8_t wpad[4][64] __attribute__((aligned(32)));
        float xpad[4][16] __attribute__((aligned(32)));
        const int64_t nb = (k - i) * fmt_bytes(fmt);
        __m256 wl[4], wh[4];
        for (int j = 0; j < R; j++) {
            memset(wpad[j], 0, sizeof wpad[j]);
            memcpy(wpad[j], wr[j] + i * fmt_bytes(fmt), (size_t)nb);
            wload(fmt, wpad[j], 0, &wl[j], &wh[j]);
        }
        for (int t = 0; t < T; t++) {
            memset(xpad[t], 0, sizeof xpad[t]);
            memcpy(xpad[t], xt[t] + i, (size_t)(k - i) * sizeof(float));
            __m256 xl = _mm256_load_ps(xpad[t]), xh = _mm256_load_ps(xpad[t] + 8);
            for (int j = 0; j < R; j++)
                acc[j][t] = _mm256_fmadd_ps(wh[j], xh, _mm256_fmadd_ps(wl[j], xl, acc[j][t]));
        }
    }
    /* lane sums, four at a time where possible */
#pragma GCC unroll 4
    for (int j = 0; j < R; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m128 s =
                _mm_add_ps(_mm256_castps256_ps128(acc[j][t]), _mm256_extractf128_ps(acc[j][t], 1));
            s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            out[j][t] = _mm_cvtss_f32(s);
        }
}

/* Rows [r0, r1) in tiles of R rows (the last one repeating its last row) against tokens
 * [0, n) of x (n, ldx), T <= 4 at a time. */
AI void rows_tiles(int fmt, int R, int TM, const struct qb_qtensor *w, int64_t r0, int64_t r1,
                   const float *x, int64_t n, int64_t ldx, const float *tscale, float extra,
                   float *y, int64_t ldy)
{
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r += R) {
        int nr = r1 - r < R ? (int)(r1 - r) : R;
        const uint8_t *wr[4];
        float sc[4];
        for (int j = 0; j < R; j++) {
            int64_t rj = r + (j < nr ? j : nr - 1);
            wr[j] = base + (size_t)rj * w->row_bytes;
            sc[j] = w->row_scale ? w->row_scale[rj] * extra : extra;
        }
        for (int64_t t = 0; t < n; t += TM) {
            int nt = n - t < TM ? (int)(n - t) : TM;
            const float *xt[4];
            float out[4][4];
            for (int u = 0; u < nt; u++)
                xt[u] = x + (t + u) * ldx;
            switch (nt) {
            case 4: tile(fmt, R, 4, wr, xt, w->cols, out); break;
            case 3: tile(fmt, R, 3, wr, xt, w->cols, out); break;
            case 2: tile(fmt, R, 2, wr, xt, w->cols, out); break;
            default: tile(fmt, R, 1, wr, xt, w->cols, out); break;
            }
            for (int u = 0; u < nt; u++)
                for (int j = 0; j < nr; j++)
                    y[(t + u) * ldy + r + j] =
                        tscale ? sc[j] * tscale[t + u] * out[j][u] : sc[j] * out[j][u];
        }
    }
}

/* y = scale(r) * sum, where scale is row_scale[r] * extra (extra undoes a decoder's
 * power-of-two factor) or extra alone without scales; times tscale[t] when given. */
AI void rows_f32act(int fmt, const struct qb_qtensor *w, int64_t r0, int64_t r1, const float *x,
                    int64_t n, int64_t ldx, const float *tscale, float extra, float *y, int64_t ldy)
{
    /* 16 ymm registers: 4 x 3 accumulators plus 4 weight vectors; the E4M3 decoder needs more
     * temporaries, so it gets 2 x 4 (measured on Zen 4: 36-41 vs 31 GMAC/s per core for
     * 2 x 4 on f32/f16/bf16, 33 vs 28 for e4m3) */
    if (n == 1)
        rows_tiles(fmt, 4, 1, w, r0, r1, x, n, ldx, tscale, extra, y, ldy);
    else if (fmt == QB_FMT_E4M3)
        rows_tiles(fmt, 2, 4, w, r0, r1, x, n, ldx, tscale, extra, y, ldy);
    else
        rows_tiles(fmt, 4, 3, w, r0, r1, x, n, ldx, tscale, extra, y, ldy);
}

#define DEF_F32ACT(name, fmt, extra)                                                               \
    static void name(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,  \
                     float *y, int64_t ldy)                                                        \
    {                                                                                              \
        rows_f32act(fmt, w, r0, r1, x->xf, x->n, w->cols, NULL, extra, y, ldy);                    \
    }
DEF_F32ACT(qdot_f32_avx2, QB_FMT_F32, 1.0f)
DEF_F32ACT(qdot_f16_avx2, QB_FMT_F16, 1.0f)
DEF_F32ACT(qdot_bf16_avx2, QB_FMT_BF16, 1.0f)
DEF_F32ACT(qdot_e4m3_avx2, QB_FMT_E4M3, 256.0f)
DEF_F32ACT(qdot_e5m2_avx2, QB_FMT_E5M2, 1.0f)

/* ---- W8A8-fp8 ---- */

/* Columns per chunk of decoded activations: 4 tokens of f32 fill 32 KB. */
#define KC 2048

/* Activation codes src[0, kc) -> dst as f32 of value/256, zero-padded to a multiple of 16. */
static void decode_x(const uint8_t *src, int64_t kc, float *dst)
{
    int64_t i = 0;
    __m256 lo, hi;
    for (; i + 16 <= kc; i += 16) {
        h16_f32(e4m3_h16(_mm_loadu_si128((const void *)(src + i))), &lo, &hi);
        _mm256_store_ps(dst + i, lo);
        _mm256_store_ps(dst + i + 8, hi);
    }
    if (i < kc) {
        uint8_t pad[16] = {0};
        memcpy(pad, src + i, (size_t)(kc - i));
        h16_f32(e4m3_h16(_mm_loadu_si128((const void *)pad)), &lo, &hi);
        _mm256_store_ps(dst + i, lo);
        _mm256_store_ps(dst + i + 8, hi);
    }
}

static void qdot_e4m3_fp8_avx2_16(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                                  const struct qb_qact *x, float *y, int64_t ldy)
{
    const int64_t k = w->cols;
    float xbuf[4 * KC] __attribute__((aligned(32)));
    struct qb_qtensor part = *w;
    float acc[4 * 16], tmp[4 * 16];

    for (int64_t t = 0; t < x->n; t += 4) {
        int64_t nt = x->n - t < 4 ? x->n - t : 4;
        if (k <= KC) {
            /* the common case: one chunk holds whole rows */
            for (int64_t u = 0; u < nt; u++)
                decode_x(x->x8 + (t + u) * k, k, xbuf + u * KC);
            /* the decoders divided each operand by 2^8 */
            rows_f32act(QB_FMT_E4M3, w, r0, r1, xbuf, nt, KC, x->xscale + t, 65536.0f, y + t * ldy,
                        ldy);
            continue;
        }
        /* long rows: partial sums per chunk of columns, added in f32 */
        for (int64_t i = 0; i < 4 * 16; i++)
            acc[i] = 0;
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            int64_t kc = k - k0 < KC ? k - k0 : KC;
            for (int64_t u = 0; u < nt; u++)
                decode_x(x->x8 + (t + u) * k + k0, kc, xbuf + u * KC);
            /* a view of columns [k0, k0 + kc) of rows [r0, r1), without scales */
            part.data = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes + k0;
            part.cols = kc;
            part.row_scale = NULL;
            rows_f32act(QB_FMT_E4M3, &part, 0, r1 - r0, xbuf, nt, KC, NULL, 1.0f, tmp, 16);
            for (int64_t u = 0; u < nt; u++)
                for (int64_t j = 0; j < r1 - r0; j++)
                    acc[u * 16 + j] += tmp[u * 16 + j];
        }
        for (int64_t u = 0; u < nt; u++)
            for (int64_t j = 0; j < r1 - r0; j++)
                y[(t + u) * ldy + r0 + j] =
                    w->row_scale[r0 + j] * x->xscale[t + u] * (65536.0f * acc[u * 16 + j]);
    }
}

/* Rows [r0, r1) in blocks of at most 16 (qmatmul.c passes one block per call). */
static void qdot_e4m3_fp8_avx2(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                               const struct qb_qact *x, float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r += 16)
        qdot_e4m3_fp8_avx2_16(w, r, r1 - r < 16 ? r1 : r + 16, x, y, ldy);
}

void qb_qkern_register_float_avx2(struct qb_qkern_table *t)
{
    __builtin_cpu_init();
    /* every CPU with AVX2 has F16C (it came a generation earlier), and clang's
     * __builtin_cpu_supports does not know "f16c" */
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return;
    t->fn[QB_FMT_F32][QB_ACT_F32] = qdot_f32_avx2;
    t->fn[QB_FMT_F16][QB_ACT_F32] = qdot_f16_avx2;
    t->fn[QB_FMT_BF16][QB_ACT_F32] = qdot_bf16_avx2;
    t->fn[QB_FMT_E4M3][QB_ACT_F32] = qdot_e4m3_avx2;
    t->fn[QB_FMT_E5M2][QB_ACT_F32] = qdot_e5m2_avx2;
    t->fn[QB_FMT_E4M3][QB_ACT_FP8] = qdot_e4m3_fp8_avx2;
}
