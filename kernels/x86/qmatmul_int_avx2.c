/* qmatmul_int_avx2: integer-weight kernels (I8, I4, I3, I2) with AVX2 + FMA + F16C. They
 * compute what qmatmul_int_ref.c computes; tests/kernels/test_qmatmul_int.c holds them to it.
 * The schemes are those of qmatmul_int_avx512.c at half the width, without VNNI:
 *
 * Batches up to RW_MAX tokens (decode): I8 and I4 rows are read in order, straight from the
 * packed layout, against activations rearranged once per call (see the row kernels below).
 * Larger batches, and I3/I2 always, go through blocks:
 * 1. Unpack. 8 weight rows at a time, CH columns at a time, into `struct blk`: one 32-byte
 *    vector holds 4 columns of the 8 rows as u8 codes (one row per 32-bit lane; I8 as
 *    q + 128), plus per group the 8 rows' d (and m) in f32.
 * 2. Tokens. Up to 4 tokens at once; each code vector meets a broadcast of 4 activations:
 *    ACT_I8:  vpmaddubsw (u8 codes x s8 activations), its int16 pair sums added over the 8
 *             vectors of a 32-column sub-block (at most 16 * 15 * 127 = 30480 < 2^15), then
 *             vpmaddwd by ones to int32. I8 (q + 128 would overflow the int16 pairs) takes the
 *             16-bit path on the int8 activations widened.
 *    ACT_F32: x->x16, the activations rounded once per matmul to 16-bit integers with a
 *             per-token scale ("A16", qb_quantize_act_i16); each code vector splits into the
 *             int16 pairs (columns 0,2) and (1,3) of each row for vpmaddwd, against the
 *             activations reordered to match.
 *    then per group and token: one convert and one FMA by the rows' d, m * xsum for asym.
 * The algebra (u8 codes q in [0, 2^b - 1]): sym d * (dot - 2^(b-1) xsum), asym d * dot + m xsum,
 * I8 row_scale * (dot(q + 128, x) - 128 xsum), xsum terms as the int32 start value. int32 sums
 * are exact: a group's result fits (|sum((q - off) x)| <= 256 * 128 * 32767 < 2^31) and the
 * additions on the way wrap modulo 2^32. */
#include "kernels/qmatmul.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CH 512         /* columns unpacked at a time (a multiple of every group size) */
#define GMAX (CH / 32) /* most groups in a chunk */
#define INLINE static inline __attribute__((always_inline))

struct blk {
    __m256i w[CH / 4]; /* code vectors: 8 rows x 4 columns, u8 */
    float d[GMAX][8] __attribute__((aligned(32)));
    float m[GMAX][8] __attribute__((aligned(32)));
    int16_t xw[4 * CH] __attribute__((aligned(32))); /* (4, CH) reordered 16-bit activations */
    int ng, gk; /* groups in this chunk, code vectors per group */
    int a16;    /* 16-bit dots */
    int asym;   /* add m * xsum per group */
    int xoff;   /* int32 start value is -xoff * xsum */
};

static inline int32_t ld32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __m256i load2x16(const uint8_t *a, const uint8_t *b)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                   _mm_loadu_si128((const __m128i *)b), 1);
}
static inline __m256i load2x8(const uint8_t *a, const uint8_t *b)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)a)),
                                   _mm_loadl_epi64((const __m128i *)b), 1);
}

/* z0..z3 hold rows (j, 4+j) for j = 0..3 in their two lanes (4 dwords each); c[k] gets dword
 * k of all 8 rows in row order. With n = 2 only dwords 0 and 1 are produced. */
INLINE void transpose(__m256i z0, __m256i z1, __m256i z2, __m256i z3, __m256i c[4], const int n)
{
    __m256i t0 = _mm256_unpacklo_epi32(z0, z1), t2 = _mm256_unpacklo_epi32(z2, z3);
    c[0] = _mm256_unpacklo_epi64(t0, t2);
    c[1] = _mm256_unpackhi_epi64(t0, t2);
    if (n > 2) {
        __m256i t1 = _mm256_unpackhi_epi32(z0, z1), t3 = _mm256_unpackhi_epi32(z2, z3);
        c[2] = _mm256_unpacklo_epi64(t1, t3);
        c[3] = _mm256_unpackhi_epi64(t1, t3);
    }
}

struct rows {
    const uint8_t *p[8]; /* row starts; rows past the block repeat the first */
    int64_t r[8];        /* their row numbers */
    __m256i idx;         /* p[i] - p[0], for gathers */
    int n;
};

static void rows_at(const struct qb_qtensor *w, int64_t r0, int64_t r1, struct rows *R)
{
    int32_t idx[8];
    R->n = r1 - r0 < 8 ? (int)(r1 - r0) : 8;
    for (int i = 0; i < 8; i++) {
        R->r[i] = r0 + (i < R->n ? i : 0);
        R->p[i] = (const uint8_t *)w->data + (size_t)R->r[i] * w->row_bytes;
        idx[i] = (int32_t)((size_t)(R->r[i] - r0) * w->row_bytes); /* < 2^31: see run() */
    }
    R->idx = _mm256_loadu_si256((const __m256i *)idx);
}

/* The 32-bit word at byte offset o of each of the 8 rows. */
static inline __m256i gather_rows(const struct rows *R, size_t o)
{
    return _mm256_i32gather_epi32((const int *)(const void *)(R->p[0] + o), R->idx, 1);
}

/* The low 16 bits of each dword as f16, to f32. */
static inline __m256 half_lo(__m256i h)
{
    h = _mm256_and_si256(h, _mm256_set1_epi32(0xffff));
    return _mm256_cvtph_ps(
        _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}

static size_t sub_bytes(enum qb_fmt f)
{
    return f == QB_FMT_I4 ? QB_SUB_BYTES_I4 : f == QB_FMT_I3 ? QB_SUB_BYTES_I3 : QB_SUB_BYTES_I2;
}

/* Columns [c0, c0 + nc) of an I4/I3/I2 block; fmt and asym are constants after inlining. */
INLINE void unpack_group_t(const struct qb_qtensor *w, const struct rows *R, int64_t c0, int nc,
                           struct blk *b, const enum qb_fmt fmt, const int asym)
{
    const size_t hdr = asym ? 4 : 2, sub = sub_bytes(fmt);
    const size_t gbytes = hdr + (size_t)(w->group / QB_SUB) * sub;
    const __m256i m2 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(15);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 0,
                                            0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
    const __m256i bit = _mm256_set1_epi32(0x08040201), four = _mm256_set1_epi8(4);
    const uint8_t *const *p = R->p;
    b->ng = nc / w->group;
    b->gk = w->group / 4;
    for (int g = 0; g < b->ng; g++) {
        size_t go = (size_t)((c0 / w->group) + g) * gbytes;
        __m256i h = gather_rows(R, go); /* d in the low half, m (asym) in the high half */
        _mm256_store_ps(b->d[g], half_lo(h));
        if (asym)
            _mm256_store_ps(b->m[g], half_lo(_mm256_srli_epi32(h, 16)));
        for (int s = 0; s < w->group / QB_SUB; s++) {
            size_t o = go + hdr + (size_t)s * sub;
            int col = g * w->group + s * QB_SUB;
            __m256i c[4];
            if (fmt == QB_FMT_I4) {
                transpose(load2x16(p[0] + o, p[4] + o), load2x16(p[1] + o, p[5] + o),
                          load2x16(p[2] + o, p[6] + o), load2x16(p[3] + o, p[7] + o), c, 4);
/* byte i of a row: code i (low nibble), code i + 16 (high) */
#pragma GCC unroll 8
                for (int k = 0; k < 4; k++) {
                    _mm256_store_si256(&b->w[col / 4 + k], _mm256_and_si256(c[k], m4));
                    _mm256_store_si256(&b->w[col / 4 + 4 + k],
                                       _mm256_and_si256(_mm256_srli_epi16(c[k], 4), m4));
                }
                continue;
            }
            /* I2, and the low bits of I3: byte i holds codes i, i+8, i+16, i+24 */
            transpose(load2x8(p[0] + o, p[4] + o), load2x8(p[1] + o, p[5] + o),
                      load2x8(p[2] + o, p[6] + o), load2x8(p[3] + o, p[7] + o), c, 2);
            __m256i hb = fmt == QB_FMT_I3 ? gather_rows(R, o + 8) : _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                /* columns 4k..4k+3 are field k/2 of bytes 0-3 (k even) or 4-7 (k odd) */
                __m256i v = _mm256_and_si256(_mm256_srli_epi16(c[k & 1], 2 * (k >> 1)), m2);
                if (fmt == QB_FMT_I3) {
                    /* bits 4k..4k+3 of each row's u32 become bit 2 of its 4 code bytes */
                    __m256i nib = _mm256_shuffle_epi8(_mm256_srli_epi32(hb, 4 * k), spread);
                    __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(nib, bit), bit);
                    v = _mm256_or_si256(v, _mm256_and_si256(on, four));
                }
                _mm256_store_si256(&b->w[col / 4 + k], v);
            }
        }
    }
}

static void unpack_group(const struct qb_qtensor *w, const struct rows *R, int64_t c0, int nc,
                         struct blk *b)
{
    switch (w->fmt) {
    case QB_FMT_I4:
        w->asym ? unpack_group_t(w, R, c0, nc, b, QB_FMT_I4, 1)
                : unpack_group_t(w, R, c0, nc, b, QB_FMT_I4, 0);
        break;
    case QB_FMT_I3:
        w->asym ? unpack_group_t(w, R, c0, nc, b, QB_FMT_I3, 1)
                : unpack_group_t(w, R, c0, nc, b, QB_FMT_I3, 0);
        break;
    default:
        w->asym ? unpack_group_t(w, R, c0, nc, b, QB_FMT_I2, 1)
                : unpack_group_t(w, R, c0, nc, b, QB_FMT_I2, 0);
        break;
    }
}

/* Columns [c0, c0 + nc) of an I8 block (nc a multiple of 32), as q + 128, in groups of 256
 * columns (fewer in a short last chunk) that all carry the row scales. */
static void unpack_i8(const struct qb_qtensor *w, const struct rows *R, int64_t c0, int nc,
                      struct blk *b)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const uint8_t *const *p = R->p;
    float s[8];
    for (int i = 0; i < 8; i++)
        s[i] = w->row_scale[R->r[i]];
    b->gk = 8;
    while (b->gk < 64 && (nc / 4) % (2 * b->gk) == 0)
        b->gk *= 2;
    b->ng = nc / 4 / b->gk;
    for (int g = 0; g < b->ng; g++)
        memcpy(b->d[g], s, sizeof s);
    for (int col = 0; col < nc; col += 16) {
        size_t o = (size_t)(c0 + col);
        __m256i c[4];
        transpose(load2x16(p[0] + o, p[4] + o), load2x16(p[1] + o, p[5] + o),
                  load2x16(p[2] + o, p[6] + o), load2x16(p[3] + o, p[7] + o), c, 4);
#pragma GCC unroll 8
        for (int k = 0; k < 4; k++)
            _mm256_store_si256(&b->w[col / 4 + k], _mm256_xor_si256(c[k], flip));
    }
}

/* Byte offset in a row of column c (a multiple of 32), and a prefetch of columns [c0, c1) of
 * 8 rows: the hardware prefetchers do not follow interleaved row streams well enough. */
static size_t col_offset(const struct qb_qtensor *w, int64_t c)
{
    if (w->fmt == QB_FMT_I8)
        return (size_t)c;
    size_t hdr = w->asym ? 4 : 2, sub = sub_bytes(w->fmt);
    return (size_t)(c / w->group) * (hdr + (size_t)(w->group / QB_SUB) * sub) +
           (size_t)((c % w->group) / QB_SUB) * sub;
}

static void prefetch_rows(const struct qb_qtensor *w, const uint8_t *const p[8], int64_t c0,
                          int64_t c1)
{
    size_t a = col_offset(w, c0) & ~(size_t)63, e = col_offset(w, c1);
    for (int i = 0; i < 8; i++)
        for (size_t o = a; o < e; o += 64)
            _mm_prefetch((const char *)p[i] + o, _MM_HINT_T0);
}

/* T tokens (T <= 4, a constant after inlining) over every group of the block, then
 * y (+)= xscale * sum; see the file comment for the two kinds of dots. */
INLINE void tile(const struct blk *b, int T, const void *const *xt, const int32_t *init,
                 const float *xs, const float *xscale, float **yt, int nr, int first)
{
    __m256 f[4];
    const __m256i *W = b->w;
    const __m256i lo16 = _mm256_set1_epi16(0xff), ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
        f[t] = _mm256_setzero_ps();
    for (int g = 0; g < b->ng; g++) {
        __m256i acc[4];
        const char *xg[4];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_set1_epi32(init[t * GMAX + g]);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            xg[t] = (const char *)xt[t] + (size_t)(g * b->gk) * (b->a16 ? 8 : 4);
        if (b->a16) {
            for (int k = 0; k < b->gk; k++, W++) {
                __m256i wv = _mm256_load_si256(W);
                __m256i w02 = _mm256_and_si256(wv, lo16), w13 = _mm256_srli_epi16(wv, 8);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    __m256i x02 = _mm256_set1_epi32(ld32(xg[t] + 8 * k));
                    __m256i x13 = _mm256_set1_epi32(ld32(xg[t] + 8 * k + 4));
                    acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(w02, x02));
                    acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(w13, x13));
                }
            }
        } else {
            /* int16 pair sums over one 32-column sub-block (8 vectors) stay below 2^15 */
            for (int k0 = 0; k0 < b->gk; k0 += 8) {
                __m256i s[4];
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    s[t] = _mm256_setzero_si256();
                for (int k = k0; k < k0 + 8; k++, W++) {
                    __m256i wv = _mm256_load_si256(W);
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++)
                        s[t] = _mm256_add_epi16(
                            s[t], _mm256_maddubs_epi16(wv, _mm256_set1_epi32(ld32(xg[t] + 4 * k))));
                }
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(s[t], ones));
            }
        }
        __m256 dv = _mm256_load_ps(b->d[g]);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            f[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t]), dv, f[t]);
        if (b->asym) {
            __m256 mv = _mm256_load_ps(b->m[g]);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                f[t] = _mm256_fmadd_ps(mv, _mm256_set1_ps(xs[t * GMAX + g]), f[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        __m256 v = _mm256_mul_ps(f[t], _mm256_set1_ps(xscale[t]));
        if (nr == 8) {
            if (!first)
                v = _mm256_add_ps(v, _mm256_loadu_ps(yt[t]));
            _mm256_storeu_ps(yt[t], v);
        } else {
            float o[8];
            _mm256_storeu_ps(o, v);
            for (int i = 0; i < nr; i++)
                yt[t][i] = first ? o[i] : yt[t][i] + o[i];
        }
    }
}

/* Every token against the block: tiles of 4, then 2, 1. For 16-bit dots the activations of
 * the chunk are first copied to b->xw, each 4 reordered to (0, 2, 1, 3) to meet the split code
 * pairs; int8 activations on that path (I8) are widened on the way. */
static void tokens(struct blk *b, const struct qb_qact *x, int64_t c0, float *y, int64_t ldy,
                   int64_t r0, int nr, int first)
{
    int32_t init[4 * GMAX];
    float xs[4 * GMAX];
    const void *xt[4];
    float *yt[4];
    int64_t n_sub = x->cols / QB_SUB;
    int gcols = b->gk * 4, nc = b->ng * gcols;
    const __m256i perm = _mm256_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15, 0,
                                          1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
    for (int64_t t0 = 0; t0 < x->n;) {
        int T = x->n - t0 >= 4 ? 4 : x->n - t0 >= 2 ? 2 : 1;
        for (int t = 0; t < T; t++) {
            int64_t tk = t0 + t;
            const int32_t *sums = x->xsum + tk * n_sub + c0 / QB_SUB;
            for (int g = 0; g < b->ng; g++) {
                int32_t s = 0;
                if (b->xoff || b->asym)
                    for (int j = 0; j < gcols / QB_SUB; j++)
                        s += sums[g * (gcols / QB_SUB) + j];
                init[t * GMAX + g] = -b->xoff * s;
                xs[t * GMAX + g] = (float)s;
            }
            if (!b->a16) {
                xt[t] = x->xq + tk * x->cols + c0;
            } else if (x->act == QB_ACT_I8) {
                const int8_t *q = x->xq + tk * x->cols + c0;
                for (int i = 0; i < nc; i += 16)
                    _mm256_store_si256(
                        (__m256i *)(b->xw + t * CH + i),
                        _mm256_shuffle_epi8(
                            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i))), perm));
                xt[t] = b->xw + t * CH;
            } else {
                const int16_t *q = x->x16 + tk * x->cols + c0;
                for (int i = 0; i < nc; i += 16)
                    _mm256_store_si256(
                        (__m256i *)(b->xw + t * CH + i),
                        _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(q + i)), perm));
                xt[t] = b->xw + t * CH;
            }
            yt[t] = y + tk * ldy + r0;
        }
        const float *xsc = x->xscale + t0;
        switch (T) {
        case 4: tile(b, 4, xt, init, xs, xsc, yt, nr, first); break;
        case 2: tile(b, 2, xt, init, xs, xsc, yt, nr, first); break;
        default: tile(b, 1, xt, init, xs, xsc, yt, nr, first); break;
        }
        t0 += T;
    }
}

/* --- batches up to RW_MAX tokens: one row at a time ---
 *
 * As in qmatmul_int_avx512.c: with few tokens, I8 and I4 rows are read in order, straight
 * from the packed layout, against activations rearranged once per call:
 *   I4, per 64 columns (sub-blocks s = 0, 1, one 16-byte lane each): the low nibbles (codes
 *   0..15) meet lo = x[32s + 0..15] and the high nibbles hi = x[32s + 16..31]; vpmaddubsw pairs
 *   of both are summed in int16 (<= 4 * 15 * 127), vpmaddwd by ones gives 8 int32 lanes of 8
 *   products each, which start from -2^(b-1) * (their activations' sum) for sym and are scaled
 *   by their sub-block's d. 16-bit activations meet the code vectors split into int16 pairs
 *   (bytes 0,2 and 1,3 of each lane), split by parity to match.
 *   I8: vpmaddubsw(|q|, x * sign(q)) (pair sums <= 2 * 127 * 127), or vpmovsxbw + vpmaddwd. */

#define RW_MAX 3 /* most tokens for the row kernels */

/* The activations of one token for the I4 row kernel, per 64 columns: A8 uses v[0] = lo,
 * v[1] = hi; A16 v[0..3] = lo even/odd, hi even/odd; then c = the lane sums, times -off as
 * int32 (sym) or as f32 (asym). */
struct rwx4 {
    __m256i v[4], c;
};

static void rw_prep_i4(const struct qb_qact *x, int64_t t, int a16, int off, int asym,
                       struct rwx4 *out)
{
    int64_t cols = x->cols;
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    /* within each 128-bit lane: even words, then odd words */
    const __m256i eo = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1,
                                        4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    for (int64_t k = 0; k * 64 < cols; k++) {
        int64_t c0 = k * 64;
        int two = cols - c0 >= 64; /* cols is a multiple of 32: one or two sub-blocks */
        __m256i sum;
        if (!a16) {
            const int8_t *p = x->xq + t * cols + c0;
            __m256i a = _mm256_loadu_si256((const __m256i *)p);
            __m256i b =
                two ? _mm256_loadu_si256((const __m256i *)(p + 32)) : _mm256_setzero_si256();
            out[k].v[0] = _mm256_permute2x128_si256(a, b, 0x20); /* x[0..15], x[32..47] */
            out[k].v[1] = _mm256_permute2x128_si256(a, b, 0x31); /* x[16..31], x[48..63] */
            sum = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(ones8, out[k].v[0]),
                                                     _mm256_maddubs_epi16(ones8, out[k].v[1])),
                                    ones16);
        } else {
            const int16_t *p = x->x16 + t * cols + c0;
            __m256i u[4];
            for (int i = 0; i < 4; i++)
                u[i] =
                    i < 2 || two
                        ? _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(p + 16 * i)), eo)
                        : _mm256_setzero_si256();
            /* u[i] lane j: even then odd words of x[16i + 8j .. +7]; sub-block 0 lo is u[0],
             * its hi u[1], sub-block 1 lo u[2], hi u[3] */
            for (int h = 0; h < 2; h++) {
                __m256i a = u[h], b = u[2 + h]; /* lo (h = 0) or hi of sub-blocks 0 and 1 */
                /* even: qwords 0, 2 of a then of b; odd: qwords 1, 3 */
                __m256i e = _mm256_unpacklo_epi64(a, b), o = _mm256_unpackhi_epi64(a, b);
                out[k].v[2 * h] = _mm256_permute4x64_epi64(e, _MM_SHUFFLE(3, 1, 2, 0));
                out[k].v[2 * h + 1] = _mm256_permute4x64_epi64(o, _MM_SHUFFLE(3, 1, 2, 0));
            }
            sum = _mm256_setzero_si256();
            for (int i = 0; i < 4; i++)
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(out[k].v[i], ones16));
        }
        out[k].c = asym ? _mm256_castps_si256(_mm256_cvtepi32_ps(sum))
                        : _mm256_mullo_epi32(sum, _mm256_set1_epi32(-off));
    }
}

INLINE void rw_i4_t(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                    float *y, int64_t ldy, const struct rwx4 *xp, int64_t nk, const int T,
                    const int a16, const int asym)
{
    size_t hdr = asym ? 4 : 2, gb = hdr + (size_t)(w->group / QB_SUB) * QB_SUB_BYTES_I4;
    const __m256i m4 = _mm256_set1_epi8(15), lo16 = _mm256_set1_epi16(0xff);
    const __m256i ones16 = _mm256_set1_epi16(1);
    /* the d (m) of sub-blocks 0 and 1 to lanes 0-3 and 4-7 */
    const __m128i dd = _mm_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 4, 5, 4, 5, 4, 5, 4, 5);
    const __m128i mm = _mm_setr_epi8(2, 3, 2, 3, 2, 3, 2, 3, 6, 7, 6, 7, 6, 7, 6, 7);
    int gl = w->group == 32 ? 0 : w->group == 64 ? 1 : 2; /* log2 of sub-blocks per group */
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        __m256 f[RW_MAX], f2[RW_MAX]; /* even and odd steps: two FMA chains */
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            f[t] = f2[t] = _mm256_setzero_ps();
        for (int64_t k = 0; k < nk; k++) {
            int64_t s0 = 2 * k, s1 = 2 * k + 1; /* the two sub-blocks of this step */
            int two = s1 * 32 < w->cols;
            const uint8_t *g0 = row + (size_t)(s0 >> gl) * gb, *g1 = row + (size_t)(s1 >> gl) * gb;
            const uint8_t *c0 = g0 + hdr + (size_t)(s0 & ((1 << gl) - 1)) * 16;
            const uint8_t *c1 = g1 + hdr + (size_t)(s1 & ((1 << gl) - 1)) * 16;
            uint32_t h0 = 0, h1 = 0;
            memcpy(&h0, g0, hdr);
            if (two)
                memcpy(&h1, g1, hdr);
            __m128i hh = _mm_set_epi32(0, 0, (int)h1, (int)h0);
            __m256 d = _mm256_cvtph_ps(_mm_shuffle_epi8(hh, dd)), m = _mm256_setzero_ps();
            if (asym)
                m = _mm256_cvtph_ps(_mm_shuffle_epi8(hh, mm));
            __m256i z = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)c0)),
                two ? _mm_loadu_si128((const __m128i *)c1) : _mm_setzero_si128(), 1);
            __m256i lo = _mm256_and_si256(z, m4),
                    hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), m4);
            const struct rwx4 *xk = xp + k;
            if (a16) {
                __m256i le = _mm256_and_si256(lo, lo16), lodd = _mm256_srli_epi16(lo, 8);
                __m256i he = _mm256_and_si256(hi, lo16), hodd = _mm256_srli_epi16(hi, 8);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    const struct rwx4 *xt = xk + t * nk;
                    __m256i acc = _mm256_add_epi32(_mm256_madd_epi16(le, xt->v[0]),
                                                   _mm256_madd_epi16(lodd, xt->v[1]));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(he, xt->v[2]));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(hodd, xt->v[3]));
                    if (!asym)
                        acc = _mm256_add_epi32(acc, xt->c);
                    f[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), d, f[t]);
                    if (asym)
                        f2[t] = _mm256_fmadd_ps(m, _mm256_castsi256_ps(xt->c), f2[t]);
                }
            } else {
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    const struct rwx4 *xt = xk + t * nk;
                    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xt->v[0]),
                                                 _mm256_maddubs_epi16(hi, xt->v[1]));
                    __m256i acc = _mm256_madd_epi16(p, ones16);
                    if (!asym)
                        acc = _mm256_add_epi32(acc, xt->c);
                    f[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), d, f[t]);
                    if (asym)
                        f2[t] = _mm256_fmadd_ps(m, _mm256_castsi256_ps(xt->c), f2[t]);
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) { /* swap the chains */
                __m256 tmp = f[t];
                f[t] = f2[t];
                f2[t] = tmp;
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            f[t] = _mm256_add_ps(f[t], f2[t]);
            __m128 v = _mm_add_ps(_mm256_castps256_ps128(f[t]), _mm256_extractf128_ps(f[t], 1));
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_movehdup_ps(v));
            y[t * ldy + r] = _mm_cvtss_f32(v) * x->xscale[t];
        }
    }
}

static int rw_i4(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                 float *y, int64_t ldy)
{
    int a16 = x->act != QB_ACT_I8, asym = w->asym, off = 1 << (qb_fmt_bits(w->fmt) - 1);
    int64_t nk = (w->cols + 63) / 64;
    struct rwx4 *xp = aligned_alloc(32, (size_t)(x->n * nk) * sizeof *xp);
    if (!xp)
        return -1;
    for (int64_t t = 0; t < x->n; t++)
        rw_prep_i4(x, t, a16, off, asym, xp + t * nk);
#define RW(T, A16, ASYM) rw_i4_t(w, r0, r1, x, y, ldy, xp, nk, T, A16, ASYM)
#define RW_T(A16, ASYM)                                                                            \
    (x->n == 1 ? RW(1, A16, ASYM) : x->n == 2 ? RW(2, A16, ASYM) : RW(3, A16, ASYM))
    if (a16)
        asym ? RW_T(1, 1) : RW_T(1, 0);
    else
        asym ? RW_T(0, 1) : RW_T(0, 0);
#undef RW_T
#undef RW
    free(xp);
    return 0;
}

static inline int64_t hsum_epi32(__m256i v) /* in int64: 8 lanes of up to 2^31 */
{
    __m256i a = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                 _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    __m128i b = _mm_add_epi64(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    return _mm_cvtsi128_si64(b) + _mm_extract_epi64(b, 1);
}

INLINE void rw_i8_t(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                    float *y, int64_t ldy, const int T, const int a16)
{
    int64_t cols = w->cols;
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *q = (const int8_t *)w->data + (size_t)r * w->row_bytes;
        int64_t dot[RW_MAX] = {0};
        /* lanes are moved to int64 every 2048 columns: below 2^31 for either path */
        for (int64_t c0 = 0; c0 < cols; c0 += 2048) {
            __m256i acc[RW_MAX];
            int64_t c = c0, ce = cols < c0 + 2048 ? cols : c0 + 2048;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                acc[t] = _mm256_setzero_si256();
            if (a16) {
                for (; c + 16 <= ce; c += 16) {
                    __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + c)));
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++)
                        acc[t] = _mm256_add_epi32(
                            acc[t],
                            _mm256_madd_epi16(
                                wv, _mm256_loadu_si256((const __m256i *)(x->x16 + t * cols + c))));
                }
                for (; c < ce; c++) { /* the last columns of a row of any length */
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++)
                        dot[t] += q[c] * x->x16[t * cols + c];
                }
            } else { /* cols is a multiple of 32 with int8 activations */
                for (; c < ce; c += 32) {
                    __m256i wv = _mm256_loadu_si256((const __m256i *)(q + c));
                    __m256i wa = _mm256_sign_epi8(wv, wv);
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) {
                        __m256i xv = _mm256_loadu_si256((const __m256i *)(x->xq + t * cols + c));
                        acc[t] = _mm256_add_epi32(
                            acc[t],
                            _mm256_madd_epi16(_mm256_maddubs_epi16(wa, _mm256_sign_epi8(xv, wv)),
                                              ones16));
                    }
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                dot[t] += hsum_epi32(acc[t]);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            y[t * ldy + r] = w->row_scale[r] * x->xscale[t] * (float)dot[t];
    }
}

static void rw_i8(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                  float *y, int64_t ldy)
{
#define RW(T, A16) rw_i8_t(w, r0, r1, x, y, ldy, T, A16)
    if (x->act != QB_ACT_I8)
        x->n == 1 ? RW(1, 1) : x->n == 2 ? RW(2, 1) : RW(3, 1);
    else
        x->n == 1 ? RW(1, 0) : x->n == 2 ? RW(2, 0) : RW(3, 0);
#undef RW
}

static void kern(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                 float *y, int64_t ldy)
{
    if (x->n <= RW_MAX && w->fmt == QB_FMT_I8) {
        rw_i8(w, r0, r1, x, y, ldy);
        return;
    }
    /* the I4 row kernel allocates its rearranged activations; without memory, the block path */
    if (x->n <= RW_MAX && w->fmt == QB_FMT_I4 && rw_i4(w, r0, r1, x, y, ldy) == 0)
        return;
    struct blk b;
    int i8 = w->fmt == QB_FMT_I8;
    b.a16 = x->act != QB_ACT_I8 || i8;
    b.asym = !i8 && w->asym;
    b.xoff = i8 ? 128 : w->asym ? 0 : 1 << (qb_fmt_bits(w->fmt) - 1);
    int64_t body = i8 ? w->cols & ~(int64_t)31 : w->cols;
    if (w->row_bytes > INT32_MAX / 8) { /* gathers index 8 rows with 32-bit offsets */
        qb_qkern_ref()->fn[w->fmt][x->act](w, r0, r1, x, y, ldy);
        return;
    }
    for (int64_t rb = r0; rb < r1; rb += 8) {
        struct rows R;
        int64_t re = rb + 8 < r1 ? rb + 8 : r1;
        rows_at(w, rb, re, &R);
        if (rb == r0) /* the first two chunks; then each chunk fetches the one after next */
            prefetch_rows(w, R.p, 0, body < 2 * CH ? body : 2 * CH);
        for (int64_t c0 = 0; c0 < body; c0 += CH) {
            int nc = body - c0 < CH ? (int)(body - c0) : CH;
            if (c0 + 2 * CH < body) {
                prefetch_rows(w, R.p, c0 + 2 * CH, c0 + 3 * CH < body ? c0 + 3 * CH : body);
            } else if (c0 + 2 * CH - body < CH && re < w->rows) {
                /* near the end of the row: the start of the next 8 rows */
                struct rows N;
                rows_at(w, re, re + 8 < w->rows ? re + 8 : w->rows, &N);
                int64_t a = c0 + 2 * CH - body;
                prefetch_rows(w, N.p, a, a + CH < body ? a + CH : body);
            }
            if (i8)
                unpack_i8(w, &R, c0, nc, &b);
            else
                unpack_group(w, &R, c0, nc, &b);
            tokens(&b, x, c0, y, ldy, rb, R.n, c0 == 0);
        }
        /* I8 with ACT_F32: columns past the last multiple of 32, in scalar */
        for (int i = 0; i < R.n && body < w->cols; i++)
            for (int64_t t = 0; t < x->n; t++) {
                const int8_t *q = (const int8_t *)R.p[i];
                const int16_t *xt = x->x16 + t * x->cols;
                int32_t s = 0;
                for (int64_t c = body; c < w->cols; c++)
                    s += q[c] * xt[c];
                float v = w->row_scale[R.r[i]] * x->xscale[t] * (float)s;
                y[t * ldy + R.r[i]] = body ? y[t * ldy + R.r[i]] + v : v;
            }
    }
}

void qb_qkern_register_int_avx2(struct qb_qkern_table *t)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return;
    for (int f = QB_FMT_I8; f <= QB_FMT_I2; f++) {
        t->fn[f][QB_ACT_F32] = kern;
        t->fn[f][QB_ACT_I8] = kern;
    }
}
