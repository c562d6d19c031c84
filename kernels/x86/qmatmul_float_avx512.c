/* qmatmul_float_avx512: AVX-512 kernels for the float weight formats (F32, F16, BF16, fp8
 * E4M3/E5M2 with f32 activations; E4M3 x per-token E4M3 activations). Compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c only here; the W8A8-fp8 kernel that
 * uses vdpbf16ps carries target("avx512bf16") and is registered only when cpuid has it.
 * Agrees with kernels/qmatmul_float_ref.c up to the order of the f32 sums.
 *
 * Design. Weights are decoded to f32 in registers, never to memory:
 *   F32   loaded as is; F16 vcvtph2ps; BF16 zero-extended to 32 bits and shifted left 16;
 *   E5M2  is the high byte of an f16: byte << 8, then vcvtph2ps (exact, inf and NaN too);
 *   E4M3  sign-extended to 16 bits and shifted left 7 gives the f16 whose value is the
 *         e4m3 value / 256 (same 3-bit mantissa, exponent bias 15 instead of 7, and e4m3
 *         subnormals land on f16 subnormals); the 256 is folded into the row scale. The two
 *         NaN codes (S.1111.111) are patched to NaN by mask, so decoding is exact for all 256.
 * A kernel call covers a block of at most 16 rows (qmatmul.c). Tiles of 4 rows x T tokens
 * (T <= 4) keep 4T accumulators of 16 lanes in registers over the whole row: each decoded
 * weight vector is used by T tokens and each activation vector by 4 rows; the 16 lanes are
 * summed once at the end. Batch 1 is a 4-row GEMV streaming 4 rows at once. Row and token
 * tails reuse the 4-row tile with the last row repeated (its results dropped); the column
 * tail is a masked load, so there is no scalar tail.
 *
 * W8A8-fp8: activation codes are decoded once per call and 4 tokens into a stack buffer
 * (chunks of KC columns), then the E4M3 tile runs on them. With AVX512-BF16 both operands
 * are converted to bf16 (exact: e4m3 has a 4-bit significand and a range bf16 covers) and
 * multiplied by vdpbf16ps: each product of two 4-bit significands is exact in f32 and the
 * sums are f32, so this is the same arithmetic as the reference in a different order, at
 * twice the multiply rate. vdpbf16ps flushes denormal inputs and outputs, and none occur:
 * decoded values are >= 2^-17 in magnitude, products >= 2^-34, sums multiples of 2^-34. */
#include "kernels/qmatmul.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define AI static inline __attribute__((always_inline))

/* ---- decoders: 16 codes to 16 f32 (E4M3 scaled by 1/256) ---- */

/* 16 e4m3 codes -> f16 bits of value/256; NaN codes -> 0xffff (an f16 NaN). */
AI __m256i e4m3_h16(__m128i b)
{
    __m256i u = _mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7); /* bits 15,14 = sign */
    __mmask16 nan = _mm_testn_epi8_mask(_mm_add_epi8(b, _mm_set1_epi8(1)), _mm_set1_epi8(0x7f));
    return _mm256_mask_mov_epi16(_mm256_and_si256(u, _mm256_set1_epi16((short)0xbfff)), nan,
                                 _mm256_set1_epi16(-1));
}

AI __m512 e4m3_f32(__m128i b)
{
    return _mm512_cvtph_ps(e4m3_h16(b));
}

AI __m512 e5m2_f32(__m128i b)
{
    return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8));
}

/* 16 weights of a row starting at element i; the masked form reads only lanes in m and
 * yields 0 in the others. */
AI __m512 wload(int fmt, const uint8_t *row, int64_t i)
{
    switch (fmt) {
    case QB_FMT_F32: return _mm512_loadu_ps((const float *)row + i);
    case QB_FMT_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(row + 2 * i)));
    case QB_FMT_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(row + 2 * i))), 16));
    case QB_FMT_E4M3: return e4m3_f32(_mm_loadu_si128((const void *)(row + i)));
    default: return e5m2_f32(_mm_loadu_si128((const void *)(row + i)));
    }
}

AI __m512 wload_mask(int fmt, const uint8_t *row, int64_t i, __mmask16 m)
{
    switch (fmt) {
    case QB_FMT_F32: return _mm512_maskz_loadu_ps(m, (const float *)row + i);
    case QB_FMT_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    case QB_FMT_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i)), 16));
    case QB_FMT_E4M3: return e4m3_f32(_mm_maskz_loadu_epi8(m, row + i));
    default: return e5m2_f32(_mm_maskz_loadu_epi8(m, row + i));
    }
}

/* ---- the 4-row x T-token tile over a whole row of k weights ---- */

/* out[j][t] = sum_i w_j[i] * x_t[i] (weights decoded, before any row scale). */
AI void tile(int fmt, int T, const uint8_t *const wr[4], const float *const xt[4], int64_t k,
             float out[4][4])
{
    __m512 acc[4][4];
    int64_t i = 0;
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[j][t] = _mm512_setzero_ps();
    for (; i + 16 <= k; i += 16) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            wv[j] = wload(fmt, wr[j], i);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_loadu_ps(xt[t] + i);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[j][t] = _mm512_fmadd_ps(wv[j], xv, acc[j][t]);
        }
    }
    if (i < k) {
        __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            wv[j] = wload_mask(fmt, wr[j], i, m);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, xt[t] + i);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[j][t] = _mm512_fmadd_ps(wv[j], xv, acc[j][t]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[j][t] = _mm512_reduce_add_ps(acc[j][t]);
}

/* Rows [r0, r1) against n tokens x (n, ldx) f32; y = scale(r) * sum, where scale is
 * row_scale[r] * extra (extra undoes a decoder's power-of-two factor) or 1 without scales. */
AI void rows_f32act(int fmt, const struct qb_qtensor *w, int64_t r0, int64_t r1, const float *x,
                    int64_t n, int64_t ldx, const float *tscale, float extra, float *y, int64_t ldy)
{
    const uint8_t *base = w->data;
    for (int64_t r = r0; r < r1; r += 4) {
        int nr = r1 - r < 4 ? (int)(r1 - r) : 4;
        const uint8_t *wr[4];
        float sc[4];
        for (int j = 0; j < 4; j++) {
            int64_t rj = r + (j < nr ? j : nr - 1); /* tail: repeat the last row */
            wr[j] = base + (size_t)rj * w->row_bytes;
            sc[j] = w->row_scale ? w->row_scale[rj] * extra : extra;
        }
        for (int64_t t = 0; t < n; t += 4) {
            int nt = n - t < 4 ? (int)(n - t) : 4;
            const float *xt[4];
            float out[4][4];
            for (int u = 0; u < 4; u++)
                xt[u] = x + (t + (u < nt ? u : nt - 1)) * ldx;
            switch (nt) {
            case 4: tile(fmt, 4, wr, xt, w->cols, out); break;
            case 3: tile(fmt, 3, wr, xt, w->cols, out); break;
            case 2: tile(fmt, 2, wr, xt, w->cols, out); break;
            default: tile(fmt, 1, wr, xt, w->cols, out); break;
            }
            for (int u = 0; u < nt; u++) {
                float ts = tscale ? tscale[t + u] : 1.0f;
                for (int j = 0; j < nr; j++)
                    y[(t + u) * ldy + r + j] = tscale ? sc[j] * ts * out[j][u] : sc[j] * out[j][u];
            }
        }
    }
}

#define DEF_F32ACT(name, fmt, extra) \
    static void name(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x, \
                     float *y, int64_t ldy) \
    { \
        rows_f32act(fmt, w, r0, r1, x->xf, x->n, w->cols, NULL, extra, y, ldy); \
    }
DEF_F32ACT(qdot_f32_avx512, QB_FMT_F32, 1.0f)
DEF_F32ACT(qdot_f16_avx512, QB_FMT_F16, 1.0f)
DEF_F32ACT(qdot_bf16_avx512, QB_FMT_BF16, 1.0f)
DEF_F32ACT(qdot_e4m3_avx512, QB_FMT_E4M3, 256.0f)
DEF_F32ACT(qdot_e5m2_avx512, QB_FMT_E5M2, 1.0f)

/* ---- W8A8-fp8 ---- */

/* With AVX512-BF16 (checked at run time): both operands in bf16, vdpbf16ps. */
#define BF16_FN __attribute__((target("avx512bf16")))

/* 32 e4m3 codes (fewer under a mask, the rest 0) -> 32 bf16 of value/256, in order. */
BF16_FN AI __m512bh e4m3_bf16(const uint8_t *p, __mmask32 m)
{
    __m512 lo, hi;
    if (m == 0xffffffffu) {
        lo = e4m3_f32(_mm_loadu_si128((const void *)p));
        hi = e4m3_f32(_mm_loadu_si128((const void *)(p + 16)));
    } else {
        lo = e4m3_f32(_mm_maskz_loadu_epi8((__mmask16)m, p));
        hi = e4m3_f32(_mm_maskz_loadu_epi8((__mmask16)(m >> 16), p + 16));
    }
    return _mm512_cvtne2ps_pbh(hi, lo);
}

/* out[j][t] = sum_i w_j[i] * x_t[i] / 2^16 over k columns (k rounded up to 32 in xt, the
 * padding zero). */
BF16_FN AI void tile_bf16(int T, const uint8_t *const wr[4], const uint16_t *const xt[4],
                          int64_t k, float out[4][4])
{
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[j][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 32) {
        __mmask32 m = k - i >= 32 ? 0xffffffffu : (__mmask32)((1u << (k - i)) - 1);
        __m512bh wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            wv[j] = e4m3_bf16(wr[j] + i, m);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512bh xv = (__m512bh)_mm512_load_si512((const void *)(xt[t] + i));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[j][t] = _mm512_dpbf16_ps(acc[j][t], wv[j], xv);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            out[j][t] = _mm512_reduce_add_ps(acc[j][t]);
}

/* Columns per chunk of decoded activations: 4 tokens of bf16 fill 32 KB. */
#define KCB 4096

BF16_FN static void qdot_e4m3_fp8_avx512bf16_16(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                                             const struct qb_qact *x, float *y, int64_t ldy)
{
    const int64_t k = w->cols;
    const uint8_t *base = w->data;
    uint16_t xbuf[4 * KCB] __attribute__((aligned(64)));
    float acc[16][4];

    for (int64_t t = 0; t < x->n; t += 4) {
        int nt = x->n - t < 4 ? (int)(x->n - t) : 4;
        const uint16_t *xt[4];
        for (int u = 0; u < 4; u++)
            xt[u] = xbuf + (u < nt ? u : nt - 1) * KCB;
        for (int64_t j = 0; j < r1 - r0; j++)
            for (int u = 0; u < 4; u++)
                acc[j][u] = 0;
        for (int64_t k0 = 0; k0 < k; k0 += KCB) {
            int64_t kc = k - k0 < KCB ? k - k0 : KCB;
            for (int u = 0; u < nt; u++) {
                const uint8_t *src = x->x8 + (t + u) * k + k0;
                for (int64_t i = 0; i < kc; i += 32) {
                    __mmask32 m = kc - i >= 32 ? 0xffffffffu : (__mmask32)((1u << (kc - i)) - 1);
                    _mm512_store_si512((void *)(xbuf + u * KCB + i), (__m512i)e4m3_bf16(src + i, m));
                }
            }
            for (int64_t r = r0; r < r1; r += 4) {
                int nr = r1 - r < 4 ? (int)(r1 - r) : 4;
                const uint8_t *wr[4];
                float out[4][4];
                for (int j = 0; j < 4; j++)
                    wr[j] = base + (size_t)(r + (j < nr ? j : nr - 1)) * w->row_bytes + k0;
                switch (nt) {
                case 4: tile_bf16(4, wr, xt, kc, out); break;
                case 3: tile_bf16(3, wr, xt, kc, out); break;
                case 2: tile_bf16(2, wr, xt, kc, out); break;
                default: tile_bf16(1, wr, xt, kc, out); break;
                }
                for (int j = 0; j < nr; j++)
                    for (int u = 0; u < nt; u++)
                        acc[r - r0 + j][u] += out[j][u];
            }
        }
        /* the decoders divided each operand by 2^8 */
        for (int u = 0; u < nt; u++)
            for (int64_t j = 0; j < r1 - r0; j++)
                y[(t + u) * ldy + r0 + j] =
                    w->row_scale[r0 + j] * x->xscale[t + u] * (65536.0f * acc[j][u]);
    }
}

/* Rows [r0, r1) in blocks of at most 16 (qmatmul.c passes one block per call). */
BF16_FN static void qdot_e4m3_fp8_avx512bf16(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                                             const struct qb_qact *x, float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r += 16)
        qdot_e4m3_fp8_avx512bf16_16(w, r, r1 - r < 16 ? r1 : r + 16, x, y, ldy);
}

void qb_qkern_register_float_avx512(struct qb_qkern_table *t)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("f16c") ||
        !__builtin_cpu_supports("fma"))
        return;
    t->fn[QB_FMT_F32][QB_ACT_F32] = qdot_f32_avx512;
    t->fn[QB_FMT_F16][QB_ACT_F32] = qdot_f16_avx512;
    t->fn[QB_FMT_BF16][QB_ACT_F32] = qdot_bf16_avx512;
    t->fn[QB_FMT_E4M3][QB_ACT_F32] = qdot_e4m3_avx512;
    t->fn[QB_FMT_E5M2][QB_ACT_F32] = qdot_e5m2_avx512;
    /* without BF16 the AVX2 W8A8 kernel (f32 products) stays in the slot */
    if (__builtin_cpu_supports("avx512bf16"))
        t->fn[QB_FMT_E4M3][QB_ACT_FP8] = qdot_e4m3_fp8_avx512bf16;
}
