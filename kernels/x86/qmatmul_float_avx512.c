/* qmatmul_float_avx512: AVX-512 kernels for the float weight formats (F32, F16, BF16, fp8
 * E4M3/E5M2 with f32 activations; E4M3 x per-token E4M3 activations). Compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c only here; the fp8 kernels also use
 * AVX512-VBMI (and the W8A8 one AVX512-BF16) through target attributes and are registered
 * only when cpuid reports them; otherwise the AVX2 fp8 kernels keep their slots. Agrees with
 * kernels/qmatmul_float_ref.c up to the order of the f32 sums.
 *
 * qmatmul.c calls a kernel per block of at most 16 rows (longer ranges are cut into 16s
 * here). Register tiles are 4 rows x T <= 4 tokens of 16-lane accumulators, summed across
 * lanes once at the end; row and token tails reuse the tile with the last row repeated (its
 * results dropped), and column tails are masked loads, so there is no scalar tail.
 *   n == 1 (decode) with F16/BF16: one whole row after the other, 64 weights per step, so
 *     each thread reads its rows as one sequential stream.
 *   n <= 4 otherwise: whole rows, 4 streams at a time, the weights decoded in
 *     registers and each activation vector shared by 4 rows (fp8: the next 4 rows are
 *     prefetched).
 *   n >= 5 (prefill): groups of up to 32 tokens and chunks of 512 columns: a chunk of the
 *     group's activations (64 KB f32) stays in L2 for all 16 rows, a 4-row chunk of weights
 *     in L1 for all 32 tokens (the next chunk is prefetched meanwhile), and the accumulators
 *     of the block (32 KB) live on the stack between chunks. (The kernels use up to about
 *     100 KB of stack.)
 *
 * F32 weights are loaded as they are, F16 through vcvtph2ps, BF16 zero-extended and shifted
 * left 16 -- cheap enough to redo for each tile of 4 tokens.
 *
 * fp8 weights are decoded exactly by table: vpermi2b looks the 7-bit magnitude up in two
 * 128-byte tables, bytes 3 and 2 of its f32 (fp8 values have at most 3 mantissa bits, so
 * bytes 1 and 0 are zero; the tables are built from kernels/fp8.h, so inf and NaN decode as
 * there), and the sign is or-ed into byte 3.
 *   n <= 4: two byte unpacks give 64 bf16 values and four word unpacks with zero give f32.
 *     Unpacks work within 128-bit lanes, so f32 vector q, lane l holds codes 16l + 4q ..
 *     16l + 4q + 3 of each 64-code block; the activations are permuted the same way once per
 *     call (a 4x4 transpose of 128-bit blocks) into a stack buffer. 2.1 cycles per 16
 *     weights on Zen 4, against 3.4 for the f16 bit trick with its NaN fix.
 *   n >= 5: the bytes are interleaved in natural order by four masked vpermi2b into an L1
 *     buffer of 4 rows x 512 f32, decoded once for up to 32 tokens; activations used as is.
 *
 * W8A8-fp8 (with AVX512-BF16) multiplies bf16 pairs with vdpbf16ps: both operands are e4m3
 * values, exact in bf16, so each product of two 4-bit significands is exact in f32 and the
 * sums are f32 -- the reference's arithmetic in another order, at twice the multiply rate.
 * vdpbf16ps flushes denormals, and none occur: |values| >= 2^-9, |products| >= 2^-18, and
 * sums are multiples of 2^-18. Activation codes are decoded by the same table and unpacks
 * (so in the same order as the weights) into a stack buffer once per call; weights are
 * decoded in registers (n <= 4) or once per 4 rows x 512 columns x 32 tokens (n >= 5). */
#include "kernels/qmatmul.h"

#include "kernels/fp8.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define VBMI __attribute__((target("avx512vbmi")))
#define VBMI_BF16 __attribute__((target("avx512vbmi,avx512bf16")))

/* ---- F32 / F16 / BF16 weights (and decoded fp8 from a buffer, as F32) ---- */

/* Activation floats buffered per call by the fp8 kernels (64 KB). */
#define XCAP 16384
/* n >= 5: columns per chunk and tokens per group (see the top of the file). */
#define KC 512
#define NG 32

/* 16 weights of a row starting at element i; the masked form reads only the lanes in m and
 * yields 0 in the others. */
AI __m512 wload(int fmt, const uint8_t *row, int64_t i)
{
    switch (fmt) {
    case QB_FMT_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(row + 2 * i)));
    case QB_FMT_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(row + 2 * i))), 16));
    default: return _mm512_loadu_ps((const float *)row + i);
    }
}

AI __m512 wload_mask(int fmt, const uint8_t *row, int64_t i, __mmask16 m)
{
    switch (fmt) {
    case QB_FMT_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
    case QB_FMT_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * i)), 16));
    default: return _mm512_maskz_loadu_ps(m, (const float *)row + i);
    }
}

/* acc[j][t] += w_j . x_t over k columns, 4 rows x T tokens. */
AI void tile(int fmt, int T, const uint8_t *const wr[4], const float *const xt[4], int64_t k,
             __m512 acc[4][4])
{
    __m512 a[4][4];
    int64_t i = 0;
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            a[j][t] = acc[j][t];
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
                a[j][t] = _mm512_fmadd_ps(wv[j], xv, a[j][t]);
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
                a[j][t] = _mm512_fmadd_ps(wv[j], xv, a[j][t]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[j][t] = a[j][t];
}

AI void tile_T(int fmt, int T, const uint8_t *const wr[4], const float *const xt[4], int64_t k,
               __m512 acc[4][4])
{
    switch (T) {
    case 4: tile(fmt, 4, wr, xt, k, acc); break;
    case 3: tile(fmt, 3, wr, xt, k, acc); break;
    case 2: tile(fmt, 2, wr, xt, k, acc); break;
    default: tile(fmt, 1, wr, xt, k, acc); break;
    }
}

/* Pointers to rows r .. r+3 (the last valid row repeated past r1), at byte offset off. */
AI int row_ptrs(const struct qb_qtensor *w, int64_t r, int64_t r1, size_t off, const uint8_t *wr[4])
{
    int nr = r1 - r < 4 ? (int)(r1 - r) : 4;
    for (int j = 0; j < 4; j++)
        wr[j] = (const uint8_t *)w->data + (size_t)(r + (j < nr ? j : nr - 1)) * w->row_bytes + off;
    return nr;
}

/* Prefetches bytes [off, off + len) of rows wr[0..3] (the tile's next chunk): in the chunked
 * GEMM the rows are 16 short streams the hardware prefetcher follows poorly (on Zen 4, 1 core:
 * e4m3 and W8A8 at batch 32 10-15% faster, f32/f16 within noise). */
AI void prefetch_rows(const uint8_t *const wr[4], int64_t off, int64_t len)
{
    for (int j = 0; j < 4; j++)
        for (int64_t i = 0; i < len; i += 64)
            _mm_prefetch((const char *)(wr[j] + off + i), _MM_HINT_T0);
}

static void zero_acc(__m512 acc[4][4])
{
    for (int j = 0; j < 4; j++)
        for (int t = 0; t < 4; t++)
            acc[j][t] = _mm512_setzero_ps();
}

/* Rows [r0, r1), r1 - r0 <= 16, against n tokens of f32 x (n, cols): y = sum. */
AI void rows_f32act_16(int fmt, const struct qb_qtensor *w, int64_t r0, int64_t r1,
                       const struct qb_qact *x, float *y, int64_t ldy)
{
    const int64_t k = w->cols, n = x->n;
    const int eb = fmt == QB_FMT_F32 ? 4 : 2; /* bytes per weight */
    const int n_rt = (int)((r1 - r0 + 3) / 4);

    if (n <= 4) {
        /* whole rows, 4 at a time */
        for (int rt = 0; rt < n_rt; rt++) {
            const uint8_t *wr[4];
            const float *xt[4];
            __m512 acc[4][4];
            int nr = row_ptrs(w, r0 + 4 * rt, r1, 0, wr);
            for (int u = 0; u < n; u++)
                xt[u] = x->xf + u * k;
            zero_acc(acc);
            tile_T(fmt, (int)n, wr, xt, k, acc);
            for (int u = 0; u < n; u++)
                for (int j = 0; j < nr; j++)
                    y[u * ldy + r0 + 4 * rt + j] = _mm512_reduce_add_ps(acc[j][u]);
        }
        return;
    }
    /* n >= 5: chunks of KC columns, so the activations are reused by all 16 rows from L2
     * (measured on Zen 4, 1 core: f32 34-39 GMAC/s against 26-29 with whole rows) */
    __m512 acc[4][NG / 4][4][4]; /* [row tile][token tile][row][token] */
    for (int64_t t0 = 0; t0 < n; t0 += NG) {
        const int64_t ng = n - t0 < NG ? n - t0 : NG;
        for (int rt = 0; rt < n_rt; rt++)
            for (int tt = 0; tt < NG / 4; tt++)
                zero_acc(acc[rt][tt]);
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            const int64_t kc = k - k0 < KC ? k - k0 : KC;
            for (int rt = 0; rt < n_rt; rt++) {
                const uint8_t *wr[4];
                row_ptrs(w, r0 + 4 * rt, r1, (size_t)(eb * k0), wr);
                if (k0 + KC < k)
                    prefetch_rows(wr, eb * KC, eb * (k - k0 - KC < KC ? k - k0 - KC : KC));
                for (int tt = 0; tt < (ng + 3) / 4; tt++) {
                    const int nt = ng - 4 * tt < 4 ? (int)(ng - 4 * tt) : 4;
                    const float *xt[4];
                    for (int u = 0; u < nt; u++)
                        xt[u] = x->xf + (t0 + 4 * tt + u) * k + k0;
                    tile_T(fmt, nt, wr, xt, kc, acc[rt][tt]);
                }
            }
        }
        for (int rt = 0; rt < n_rt; rt++)
            for (int j = 0; j < 4 && r0 + 4 * rt + j < r1; j++)
                for (int64_t u = 0; u < ng; u++)
                    y[(t0 + u) * ldy + r0 + 4 * rt + j] =
                        _mm512_reduce_add_ps(acc[rt][u / 4][j][u % 4]);
    }
}

/* One row against one token: w . x over k columns, 64 weights (one or two cache lines) per
 * step into 4 accumulators. */
AI float row_dot(int fmt, const uint8_t *row, const float *x, int64_t k)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= k; i += 64) {
        a0 = _mm512_fmadd_ps(wload(fmt, row, i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(wload(fmt, row, i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(wload(fmt, row, i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(wload(fmt, row, i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= k; i += 16)
        a0 = _mm512_fmadd_ps(wload(fmt, row, i), _mm512_loadu_ps(x + i), a0);
    if (i < k) {
        __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
        a0 = _mm512_fmadd_ps(wload_mask(fmt, row, i, m), _mm512_maskz_loadu_ps(m, x + i), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

AI void rows_f32act(int fmt, const struct qb_qtensor *w, int64_t r0, int64_t r1,
                    const struct qb_qact *x, float *y, int64_t ldy)
{
    if (x->n == 1 && fmt != QB_FMT_F32) {
        /* decode: one row after the other, so the block's rows are read as one sequential
         * stream (4 KB f16 rows are a page each; 4 rows side by side are 4 streams that the
         * hardware prefetcher starts again at every page): on Zen 4, the f16 GEMVs of a 1.1B
         * Llama token 1.3-1.7x faster on one core than with tiles of 4 rows (bf16 1.6x; f32,
         * with 8 KB rows, within noise: it keeps the tiles, and its bits) */
        for (int64_t r = r0; r < r1; r++)
            y[r] =
                row_dot(fmt, (const uint8_t *)w->data + (size_t)r * w->row_bytes, x->xf, w->cols);
        return;
    }
    for (int64_t r = r0; r < r1; r += 16)
        rows_f32act_16(fmt, w, r, r1 - r < 16 ? r1 : r + 16, x, y, ldy);
}

#define DEF_F32ACT(name, fmt)                                                                      \
    static void name(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,  \
                     float *y, int64_t ldy)                                                        \
    {                                                                                              \
        rows_f32act(fmt, w, r0, r1, x, y, ldy);                                                    \
    }
DEF_F32ACT(qdot_f32_avx512, QB_FMT_F32)
DEF_F32ACT(qdot_f16_avx512, QB_FMT_F16)
DEF_F32ACT(qdot_bf16_avx512, QB_FMT_BF16)

/* ---- fp8 by table (AVX512-VBMI) ---- */

/* Software prefetch for the fp8 GEMV, in rows: the tile streaming rows r..r+3 prefetches the
 * same columns of rows r+4..r+7 (the next tile, or the next block's first). A 4096-byte fp8
 * row is one page, where the hardware prefetcher starts again: on Zen 4 this makes the e4m3
 * GEMV 15-20% faster on one core; for f16/f32 rows (8-57 KB) it made things slower. */
#define PF_ROWS 4
#define PF(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)

/* Bytes 3 and 2 of the f32 of each fp8 magnitude 0..127, from kernels/fp8.h; built once by
 * the register hook before any kernel runs, read-only afterwards. */
struct fp8_lut {
    uint8_t b3[128], b2[128];
} __attribute__((aligned(64)));
static struct fp8_lut lut_e4m3, lut_e5m2;

struct lut_regs {
    __m512i b3lo, b3hi, b2lo, b2hi;
};

AI struct lut_regs lut_load(const struct fp8_lut *t)
{
    struct lut_regs L = {_mm512_load_si512(t->b3), _mm512_load_si512(t->b3 + 64),
                         _mm512_load_si512(t->b2), _mm512_load_si512(t->b2 + 64)};
    return L;
}

/* 64 codes -> their values as bf16, in two vectors of 32 (within each 128-bit lane l, wl holds
 * codes 16l..16l+7 and wh codes 16l+8..16l+15). */
VBMI AI void fp8_bf16(const struct lut_regs *L, __m512i b, __m512i *wl, __m512i *wh)
{
    __m512i hi = _mm512_permutex2var_epi8(L->b3lo, b, L->b3hi);
    __m512i lo = _mm512_permutex2var_epi8(L->b2lo, b, L->b2hi);
    hi = _mm512_ternarylogic_epi32(hi, b, _mm512_set1_epi8((char)0x80), 0xf8); /* hi | b & 0x80 */
    *wl = _mm512_unpacklo_epi8(lo, hi);
    *wh = _mm512_unpackhi_epi8(lo, hi);
}

/* 64 codes -> 4 vectors of 16 f32: vector q, lane l = codes 16l + 4q .. 16l + 4q + 3. */
VBMI AI void fp8_f32(const struct lut_regs *L, __m512i b, __m512 v[4])
{
    __m512i wl, wh, z = _mm512_setzero_si512();
    fp8_bf16(L, b, &wl, &wh);
    v[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, wl));
    v[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, wl));
    v[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, wh));
    v[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, wh));
}

/* 64 codes of a row from column i (k columns in all; zeros past the end). */
AI __m512i codes64(const uint8_t *row, int64_t i, int64_t k)
{
    if (k - i >= 64)
        return _mm512_loadu_si512((const void *)(row + i));
    return _mm512_maskz_loadu_epi8((1ull << (k - i)) - 1, row + i);
}

/* 64 activations in v[0..3] -> dst in the decoder's order: out q = [v0 block q, v1 block q,
 * v2 block q, v3 block q] (a 4x4 transpose of 128-bit blocks). */
AI void xperm64(const __m512 v[4], float *dst)
{
    __m512 t0 = _mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(1, 0, 1, 0));
    __m512 t1 = _mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(3, 2, 3, 2));
    __m512 t2 = _mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(1, 0, 1, 0));
    __m512 t3 = _mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(3, 2, 3, 2));
    _mm512_store_ps(dst, _mm512_shuffle_f32x4(t0, t2, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_store_ps(dst + 16, _mm512_shuffle_f32x4(t0, t2, _MM_SHUFFLE(3, 1, 3, 1)));
    _mm512_store_ps(dst + 32, _mm512_shuffle_f32x4(t1, t3, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_store_ps(dst + 48, _mm512_shuffle_f32x4(t1, t3, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* f32 activations x[0, kc) -> dst in the decoder's order, zero-padded to a multiple of 64. */
static void xperm_f32(const float *x, int64_t kc, float *dst)
{
    int64_t i = 0;
    __m512 v[4];
    for (; i + 64 <= kc; i += 64) {
        for (int l = 0; l < 4; l++)
            v[l] = _mm512_loadu_ps(x + i + 16 * l);
        xperm64(v, dst + i);
    }
    if (i < kc) {
        for (int l = 0; l < 4; l++) {
            int64_t left = kc - i - 16 * l;
            v[l] = _mm512_maskz_loadu_ps(left >= 16 ? 0xffff
                                         : left > 0 ? (__mmask16)((1u << left) - 1)
                                                    : 0,
                                         x + i + 16 * l);
        }
        xperm64(v, dst + i);
    }
}

/* acc[j][t] += w_j . x_t over k columns of raw codes (x in decoder order, padded), weights
 * decoded in registers. With one token the four vectors of a block go to four accumulators
 * (acc[j][q]) so the FMA chains stay short; the caller adds them. */
VBMI AI void tile_fp8_step(const struct lut_regs *L, int T, int full, const uint8_t *const wr[4],
                           const float *const xt[4], int64_t i, int64_t k, size_t pf,
                           __m512 a[4][4])
{
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512 v[4];
        PF(wr[j] + i + pf);
        fp8_f32(L, full ? _mm512_loadu_si512((const void *)(wr[j] + i)) : codes64(wr[j], i, k), v);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                int s = T == 1 ? q : t;
                a[j][s] = _mm512_fmadd_ps(v[q], _mm512_load_ps(xt[t] + i + 16 * q), a[j][s]);
            }
    }
}

VBMI AI void tile_fp8(const struct lut_regs *L, int T, const uint8_t *const wr[4],
                      const float *const xt[4], int64_t k, size_t pf, __m512 acc[4][4])
{
    __m512 a[4][4];
    int64_t i = 0;
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            a[j][t] = acc[j][t];
    for (; i + 64 <= k; i += 64)
        tile_fp8_step(L, T, 1, wr, xt, i, k, pf, a);
    if (i < k)
        tile_fp8_step(L, T, 0, wr, xt, i, k, pf, a);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            acc[j][t] = a[j][t];
}

/* Byte indices that interleave lo and hi bytes into f32 in natural order: f32 vector q gets
 * codes 16q .. 16q + 15 (bytes 2 and 3 of each lane; bytes 0 and 1 are masked to zero). */
AI void inorder_idx(__m512i idx[4])
{
    const __m512i i = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i base =
        _mm512_or_si512(_mm512_slli_epi32(i, 16),
                        _mm512_slli_epi32(_mm512_add_epi32(i, _mm512_set1_epi32(64)), 24));
    for (int q = 0; q < 4; q++)
        idx[q] = _mm512_add_epi32(base, _mm512_set1_epi32(16 * q * 0x01010000));
}

/* Rows wr[0..3], columns [0, kc) decoded to f32 in natural order in dst (4 rows of ld
 * floats, zero-padded to a multiple of 64); costlier than the unpack order, but done once for
 * up to NG tokens, and the activations are then used as they are. */
VBMI AI void decode_rows_f32(const struct lut_regs *L, const __m512i idx[4],
                             const uint8_t *const wr[4], int64_t kc, float *dst, int64_t ld)
{
    for (int j = 0; j < 4; j++)
        for (int64_t i = 0; i < kc; i += 64) {
            __m512i b = codes64(wr[j], i, kc);
            __m512i hi = _mm512_permutex2var_epi8(L->b3lo, b, L->b3hi);
            __m512i lo = _mm512_permutex2var_epi8(L->b2lo, b, L->b2hi);
            hi = _mm512_ternarylogic_epi32(hi, b, _mm512_set1_epi8((char)0x80), 0xf8);
            for (int q = 0; q < 4; q++)
                _mm512_store_si512(
                    (void *)(dst + j * ld + i + 16 * q),
                    _mm512_maskz_permutex2var_epi8(0xccccccccccccccccull, lo, idx[q], hi));
        }
}

/* fp8 weights, f32 activations: y = row_scale * sum, rows [r0, r1) with r1 - r0 <= 16. */
VBMI AI void fp8_f32act_16(const struct fp8_lut *lut, const struct qb_qtensor *w, int64_t r0,
                           int64_t r1, const struct qb_qact *x, float *y, int64_t ldy)
{
    const struct lut_regs L = lut_load(lut);
    const int64_t k = w->cols, n = x->n;
    const int n_rt = (int)((r1 - r0 + 3) / 4);
    __m512 acc[4][NG / 4][4][4]; /* [row tile][token tile][row][token] */

    if (n <= 4) {
        /* weights decoded in registers; activations permuted to the decoder's order, in
         * chunks as long as the buffer allows */
        float xbuf[XCAP] __attribute__((aligned(64)));
        const int64_t kcap = (XCAP / n) & ~(int64_t)63;
        const size_t pf = PF_ROWS * w->row_bytes;
        for (int rt = 0; rt < n_rt; rt++)
            zero_acc(acc[rt][0]);
        for (int64_t k0 = 0; k0 < k; k0 += kcap) {
            const int64_t kc = k - k0 < kcap ? k - k0 : kcap, kcp = (kc + 63) & ~(int64_t)63;
            const float *xt[4];
            for (int u = 0; u < 4; u++) {
                if (u < n)
                    xperm_f32(x->xf + u * k + k0, kc, xbuf + u * kcp);
                xt[u] = xbuf + (u < n ? u : 0) * kcp;
            }
            for (int rt = 0; rt < n_rt; rt++) {
                const uint8_t *wr[4];
                row_ptrs(w, r0 + 4 * rt, r1, (size_t)k0, wr);
                switch (n) {
                case 4: tile_fp8(&L, 4, wr, xt, kc, pf, acc[rt][0]); break;
                case 3: tile_fp8(&L, 3, wr, xt, kc, pf, acc[rt][0]); break;
                case 2: tile_fp8(&L, 2, wr, xt, kc, pf, acc[rt][0]); break;
                default: tile_fp8(&L, 1, wr, xt, kc, pf, acc[rt][0]); break;
                }
            }
        }
        for (int rt = 0; rt < n_rt; rt++)
            for (int j = 0; j < 4 && r0 + 4 * rt + j < r1; j++) {
                const int64_t r = r0 + 4 * rt + j;
                __m512 *a = acc[rt][0][j];
                if (n == 1)
                    a[0] = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
                for (int64_t u = 0; u < n; u++)
                    y[u * ldy + r] = w->row_scale[r] * _mm512_reduce_add_ps(a[u]);
            }
        return;
    }

    /* n >= 5: 4 rows x KC columns decoded once per group of NG tokens */
    __m512i idx[4];
    float wbuf[4 * KC] __attribute__((aligned(64)));
    inorder_idx(idx);
    for (int64_t t0 = 0; t0 < n; t0 += NG) {
        const int64_t ng = n - t0 < NG ? n - t0 : NG;
        for (int rt = 0; rt < n_rt; rt++)
            for (int tt = 0; tt < NG / 4; tt++)
                zero_acc(acc[rt][tt]);
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            const int64_t kc = k - k0 < KC ? k - k0 : KC;
            for (int rt = 0; rt < n_rt; rt++) {
                const uint8_t *wr[4], *wb[4];
                row_ptrs(w, r0 + 4 * rt, r1, (size_t)k0, wr);
                if (k0 + KC < k)
                    prefetch_rows(wr, KC, k - k0 - KC < KC ? k - k0 - KC : KC);
                decode_rows_f32(&L, idx, wr, kc, wbuf, KC);
                for (int j = 0; j < 4; j++)
                    wb[j] = (const uint8_t *)(wbuf + j * KC);
                for (int tt = 0; tt < (ng + 3) / 4; tt++) {
                    const int nt = ng - 4 * tt < 4 ? (int)(ng - 4 * tt) : 4;
                    const float *xt[4];
                    for (int u = 0; u < nt; u++)
                        xt[u] = x->xf + (t0 + 4 * tt + u) * k + k0;
                    tile_T(QB_FMT_F32, nt, wb, xt, kc, acc[rt][tt]);
                }
            }
        }
        for (int rt = 0; rt < n_rt; rt++)
            for (int j = 0; j < 4 && r0 + 4 * rt + j < r1; j++) {
                const int64_t r = r0 + 4 * rt + j;
                for (int64_t u = 0; u < ng; u++)
                    y[(t0 + u) * ldy + r] =
                        w->row_scale[r] * _mm512_reduce_add_ps(acc[rt][u / 4][j][u % 4]);
            }
    }
}

VBMI static void qdot_e4m3_avx512(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                                  const struct qb_qact *x, float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r += 16)
        fp8_f32act_16(&lut_e4m3, w, r, r1 - r < 16 ? r1 : r + 16, x, y, ldy);
}

VBMI static void qdot_e5m2_avx512(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                                  const struct qb_qact *x, float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r += 16)
        fp8_f32act_16(&lut_e5m2, w, r, r1 - r < 16 ? r1 : r + 16, x, y, ldy);
}

/* ---- W8A8-fp8: bf16 pairs and vdpbf16ps (AVX512-VBMI and AVX512-BF16) ---- */

/* Activation codes x8[0, kc) -> dst as bf16 in decoder order, zero-padded to 64. */
VBMI AI void xdec_bf16(const struct lut_regs *L, const uint8_t *x8, int64_t kc, uint16_t *dst)
{
    for (int64_t i = 0; i < kc; i += 64) {
        __m512i wl, wh;
        fp8_bf16(L, codes64(x8, i, kc), &wl, &wh);
        _mm512_store_si512((void *)(dst + i), wl);
        _mm512_store_si512((void *)(dst + i + 32), wh);
    }
}

/* acc[j][t] += w_j . x_t over k columns, weights raw codes (inl) decoded in registers, or
 * bf16 already decoded (padded to 64); x bf16 in decoder order, padded. Inline with one
 * token, the two halves of a block go to acc[j][0] and acc[j][1]; the caller adds them. */
VBMI_BF16 AI void tile_dp_step(const struct lut_regs *L, int inl, int T, int full,
                               const uint8_t *const wr[4], const uint16_t *const xt[4], int64_t i,
                               int64_t k, size_t pf, __m512 a[4][4])
{
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512i v[2];
        if (inl) {
            PF(wr[j] + i + pf);
            fp8_bf16(L, full ? _mm512_loadu_si512((const void *)(wr[j] + i)) : codes64(wr[j], i, k),
                     &v[0], &v[1]);
        } else {
            v[0] = _mm512_load_si512((const void *)(wr[j] + 2 * i));
            v[1] = _mm512_load_si512((const void *)(wr[j] + 2 * i + 64));
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                int s = T == 1 && inl ? h : t;
                a[j][s] = _mm512_dpbf16_ps(
                    a[j][s], (__m512bh)v[h],
                    (__m512bh)_mm512_load_si512((const void *)(xt[t] + i + 32 * h)));
            }
    }
}

VBMI_BF16 AI void tile_dp(const struct lut_regs *L, int inl, int T, const uint8_t *const wr[4],
                          const uint16_t *const xt[4], int64_t k, size_t pf, __m512 acc[4][4])
{
    __m512 a[4][4];
    int64_t i = 0;
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            a[j][t] = acc[j][t];
    for (; i + 64 <= k; i += 64)
        tile_dp_step(L, inl, T, 1, wr, xt, i, k, pf, a);
    if (i < k)
        tile_dp_step(L, inl, T, 0, wr, xt, i, k, pf, a);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            acc[j][t] = a[j][t];
}

VBMI_BF16 AI void tile_dp_T(const struct lut_regs *L, int inl, int T, const uint8_t *const wr[4],
                            const uint16_t *const xt[4], int64_t k, size_t pf, __m512 acc[4][4])
{
    switch (T) {
    case 4: tile_dp(L, inl, 4, wr, xt, k, pf, acc); break;
    case 3: tile_dp(L, inl, 3, wr, xt, k, pf, acc); break;
    case 2: tile_dp(L, inl, 2, wr, xt, k, pf, acc); break;
    default: tile_dp(L, inl, 1, wr, xt, k, pf, acc); break;
    }
}

/* y = row_scale * xscale * sum over e4m3(w) e4m3(x8), rows [r0, r1) with r1 - r0 <= 16. */
VBMI_BF16 static void e4m3_fp8_16(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                                  const struct qb_qact *x, float *y, int64_t ldy)
{
    const struct lut_regs L = lut_load(&lut_e4m3);
    const int64_t k = w->cols, n = x->n;
    const int n_rt = (int)((r1 - r0 + 3) / 4);
    uint16_t xbuf[2 * XCAP] __attribute__((aligned(64)));
    __m512 acc[4][NG / 4][4][4]; /* [row tile][token tile][row][token] */

    for (int64_t t0 = 0; t0 < n; t0 += NG) {
        const int64_t ng = n - t0 < NG ? n - t0 : NG;
        const int inl = n <= 4;
        const int64_t kcap = inl ? (2 * XCAP / ng) & ~(int64_t)63 : KC;
        for (int rt = 0; rt < n_rt; rt++)
            for (int tt = 0; tt < NG / 4; tt++)
                zero_acc(acc[rt][tt]);
        for (int64_t k0 = 0; k0 < k; k0 += kcap) {
            const int64_t kc = k - k0 < kcap ? k - k0 : kcap, kcp = (kc + 63) & ~(int64_t)63;
            for (int64_t u = 0; u < ng; u++)
                xdec_bf16(&L, x->x8 + (t0 + u) * k + k0, kc, xbuf + u * kcp);
            for (int rt = 0; rt < n_rt; rt++) {
                const uint8_t *wr[4];
                row_ptrs(w, r0 + 4 * rt, r1, (size_t)k0, wr);
                if (inl) {
                    const uint16_t *xt[4];
                    for (int u = 0; u < 4; u++)
                        xt[u] = xbuf + (u < ng ? u : 0) * kcp;
                    tile_dp_T(&L, 1, (int)ng, wr, xt, kc, PF_ROWS * w->row_bytes, acc[rt][0]);
                    continue;
                }
                uint16_t wbuf[4 * KC] __attribute__((aligned(64)));
                const uint8_t *wb[4];
                if (k0 + KC < k)
                    prefetch_rows(wr, KC, k - k0 - KC < KC ? k - k0 - KC : KC);
                for (int j = 0; j < 4; j++) {
                    xdec_bf16(&L, wr[j], kc, wbuf + j * KC);
                    wb[j] = (const uint8_t *)(wbuf + j * KC);
                }
                for (int tt = 0; tt < (ng + 3) / 4; tt++) {
                    const int nt = ng - 4 * tt < 4 ? (int)(ng - 4 * tt) : 4;
                    const uint16_t *xt[4];
                    for (int u = 0; u < nt; u++)
                        xt[u] = xbuf + (4 * tt + u) * kcp;
                    tile_dp_T(&L, 0, nt, wb, xt, kcp, 0, acc[rt][tt]);
                }
            }
        }
        for (int rt = 0; rt < n_rt; rt++)
            for (int j = 0; j < 4 && r0 + 4 * rt + j < r1; j++) {
                const int64_t r = r0 + 4 * rt + j;
                for (int64_t u = 0; u < ng; u++) {
                    __m512 s = inl && ng == 1 ? _mm512_add_ps(acc[rt][0][j][0], acc[rt][0][j][1])
                                              : acc[rt][u / 4][j][u % 4];
                    y[(t0 + u) * ldy + r] =
                        w->row_scale[r] * x->xscale[t0 + u] * _mm512_reduce_add_ps(s);
                }
            }
    }
}

VBMI_BF16 static void qdot_e4m3_fp8_avx512(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                                           const struct qb_qact *x, float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r += 16)
        e4m3_fp8_16(w, r, r1 - r < 16 ? r1 : r + 16, x, y, ldy);
}

/* Fills t from fp8.h's decoders; 0 when every value has zero low 16 bits, as the table
 * decoder needs. */
static int build_lut(struct fp8_lut *t, float (*dec)(uint8_t))
{
    for (int m = 0; m < 128; m++) {
        float v = dec((uint8_t)m);
        uint32_t u;
        memcpy(&u, &v, 4);
        if (u & 0xffff)
            return -1;
        t->b3[m] = (uint8_t)(u >> 24);
        t->b2[m] = (uint8_t)(u >> 16);
    }
    return 0;
}

void qb_qkern_register_float_avx512(struct qb_qkern_table *t)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("fma"))
        return;
    t->fn[QB_FMT_F32][QB_ACT_F32] = qdot_f32_avx512;
    t->fn[QB_FMT_F16][QB_ACT_F32] = qdot_f16_avx512;
    t->fn[QB_FMT_BF16][QB_ACT_F32] = qdot_bf16_avx512;
    /* fp8 needs VBMI for the table decoder; without it the AVX2 kernels keep the slots */
    if (!__builtin_cpu_supports("avx512vbmi") || build_lut(&lut_e4m3, qb_e4m3_to_f32) < 0 ||
        build_lut(&lut_e5m2, qb_e5m2_to_f32) < 0)
        return;
    t->fn[QB_FMT_E4M3][QB_ACT_F32] = qdot_e4m3_avx512;
    t->fn[QB_FMT_E5M2][QB_ACT_F32] = qdot_e5m2_avx512;
    if (__builtin_cpu_supports("avx512bf16"))
        t->fn[QB_FMT_E4M3][QB_ACT_FP8] = qdot_e4m3_fp8_avx512;
}
