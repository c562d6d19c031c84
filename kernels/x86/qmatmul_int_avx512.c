/* qmatmul_int_avx512: integer-weight kernels (I8, I4, I3, I2) with AVX-512F/BW, and VNNI where
 * the CPU has it (checked at run time; the VNNI functions carry their own target attribute).
 * They compute what qmatmul_int_ref.c computes; tests/kernels/test_qmatmul_int.c holds them to
 * it. Every format goes through one scheme:
 *
 * 1. Unpack. A block of 16 weight rows is decoded CH columns at a time into `struct blk`,
 *    interleaved so that one 64-byte vector holds 4 columns of all 16 rows as u8 codes (one
 *    row per 32-bit lane; I8 as q + 128), plus, per group, the 16 rows' d (and m) in f32.
 *    The transpose costs a few shuffles per 64 codes, paid once per weight and shared by every
 *    token; the block (8 KB of codes) stays in L1.
 * 2. Tokens. For up to 8 tokens at once, each code vector meets a broadcast of 4 activations
 *    per token: int32 dots per row and group, then one convert and one FMA by the rows' d
 *    per group and token (qmatmul_int_avx512_tile.h).
 *
 * Activations and the integer algebra, with u8 codes q in [0, 2^b - 1]:
 *   sym   d * (dot - 2^(b-1) * xsum)     the xsum term is the int32 start value
 *   asym  d * dot + m * xsum
 *   I8    row_scale * (dot((q + 128), x) - 128 * xsum)
 *   ACT_I8  (W8A8, W4A8...): x->xq, s8; vpdpbusd, 64 multiply-adds per instruction.
 *   ACT_F32 ("A16"): x->x16, the activations rounded ONCE per matmul to 16-bit integers with a
 *           per-token scale (qb_quantize_act_i16: scale = max|x| / 32767, so every x is within
 *           max|x| * 2^-16 of its f32 value: at least bf16's precision for every value within
 *           2^-7 of the token's largest). Each code vector splits in two int16 vectors
 *           (columns 0,2 and 1,3 of each row: an AND and a shift) for vpdpwssd, against the
 *           activations reordered to match per chunk.
 * Without VNNI, vpmaddubsw + vpmaddwd + vpaddd replace vpdpbusd (exact: I4/I3/I2 codes <= 15
 * keep each int16 pair sum <= 3810), and I8 with int8 activations takes the 16-bit path with
 * the activations widened. int32 sums are exact: a group is at most 128 columns (256 for I8)
 * and its result |sum((q - off) x)| <= 256 * 128 * 32767 < 2^31; the additions on the way wrap
 * modulo 2^32 and so cannot spoil it. */
#include "kernels/half.h"
#include "kernels/qmatmul.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CH 512         /* columns unpacked at a time (a multiple of every group size) */
#define GMAX (CH / 32) /* most groups in a chunk */

struct blk {
    __m512i w[CH / 4]; /* code vectors: 16 rows x 4 columns, u8 */
    float d[GMAX][16] __attribute__((aligned(64)));
    float m[GMAX][16] __attribute__((aligned(64)));
    int16_t xw[8 * CH] __attribute__((aligned(64))); /* (8, CH) reordered 16-bit activations */
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

/* Four 16-byte (or 8-byte) pieces, one per 128-bit lane. */
static inline __m512i load4x16(const uint8_t *a, const uint8_t *b, const uint8_t *c,
                               const uint8_t *d)
{
    __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)a));
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)b), 1);
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)c), 2);
    return _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)d), 3);
}
static inline __m512i load4x8(const uint8_t *a, const uint8_t *b, const uint8_t *c,
                              const uint8_t *d)
{
    __m512i z = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)a));
    z = _mm512_inserti32x4(z, _mm_loadl_epi64((const __m128i *)b), 1);
    z = _mm512_inserti32x4(z, _mm_loadl_epi64((const __m128i *)c), 2);
    return _mm512_inserti32x4(z, _mm_loadl_epi64((const __m128i *)d), 3);
}

/* z0..z3 hold rows (j, 4+j, 8+j, 12+j) for j = 0..3 in their four lanes (4 dwords each); c[k]
 * gets dword k of all 16 rows in row order. With n = 2 only dwords 0 and 1 are produced. */
static inline __attribute__((always_inline)) void transpose(__m512i z0, __m512i z1, __m512i z2,
                                                            __m512i z3, __m512i c[4], const int n)
{
    __m512i t0 = _mm512_unpacklo_epi32(z0, z1), t2 = _mm512_unpacklo_epi32(z2, z3);
    c[0] = _mm512_unpacklo_epi64(t0, t2);
    c[1] = _mm512_unpackhi_epi64(t0, t2);
    if (n > 2) {
        __m512i t1 = _mm512_unpackhi_epi32(z0, z1), t3 = _mm512_unpackhi_epi32(z2, z3);
        c[2] = _mm512_unpacklo_epi64(t1, t3);
        c[3] = _mm512_unpackhi_epi64(t1, t3);
    }
}

#define INLINE static inline __attribute__((always_inline))

struct rows {
    const uint8_t *p[16]; /* row starts; rows past the block repeat the first */
    int64_t r[16];        /* their row numbers */
    __m512i idx;          /* p[i] - p[0], for gathers */
    int n;
};

static void rows_at(const struct qb_qtensor *w, int64_t r0, int64_t r1, struct rows *R)
{
    int32_t idx[16];
    R->n = r1 - r0 < 16 ? (int)(r1 - r0) : 16;
    for (int i = 0; i < 16; i++) {
        R->r[i] = r0 + (i < R->n ? i : 0);
        R->p[i] = (const uint8_t *)w->data + (size_t)R->r[i] * w->row_bytes;
        idx[i] = (int32_t)((size_t)(R->r[i] - r0) * w->row_bytes); /* < 2^31: see run() */
    }
    R->idx = _mm512_loadu_si512(idx);
}

/* The 32-bit word at byte offset o of each of the 16 rows. */
static inline __m512i gather_rows(const struct rows *R, size_t o)
{
    return _mm512_i32gather_epi32(R->idx, R->p[0] + o, 1);
}

/* --- unpacking, one function per format --- */

static size_t sub_bytes(enum qb_fmt f)
{
    return f == QB_FMT_I4 ? QB_SUB_BYTES_I4 : f == QB_FMT_I3 ? QB_SUB_BYTES_I3 : QB_SUB_BYTES_I2;
}

/* Columns [c0, c0 + nc) of an I4/I3/I2 block; fmt and asym are constants after inlining,
 * so each combination is its own straight-line loop. */
INLINE void unpack_group_t(const struct qb_qtensor *w, const struct rows *R, int64_t c0, int nc,
                           struct blk *b, const enum qb_fmt fmt, const int asym)
{
    const size_t hdr = asym ? 4 : 2, sub = sub_bytes(fmt);
    const size_t gbytes = hdr + (size_t)(w->group / QB_SUB) * sub;
    const __m512i m2 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(15);
    const __m512i spread =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12));
    const __m512i bit = _mm512_set1_epi32(0x08040201), four = _mm512_set1_epi8(4);
    const uint8_t *const *p = R->p;
    b->ng = nc / w->group;
    b->gk = w->group / 4;
    for (int g = 0; g < b->ng; g++) {
        size_t go = (size_t)((c0 / w->group) + g) * gbytes;
        __m512i h = gather_rows(R, go); /* d in the low half, m (asym) in the high half */
        _mm512_store_ps(b->d[g], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));
        if (asym)
            _mm512_store_ps(b->m[g],
                            _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h, 16))));
        for (int s = 0; s < w->group / QB_SUB; s++) {
            size_t o = go + hdr + (size_t)s * sub;
            int col = g * w->group + s * QB_SUB;
            __m512i z0, z1, z2, z3, c[4];
            if (fmt == QB_FMT_I4) {
                z0 = load4x16(p[0] + o, p[4] + o, p[8] + o, p[12] + o);
                z1 = load4x16(p[1] + o, p[5] + o, p[9] + o, p[13] + o);
                z2 = load4x16(p[2] + o, p[6] + o, p[10] + o, p[14] + o);
                z3 = load4x16(p[3] + o, p[7] + o, p[11] + o, p[15] + o);
                transpose(z0, z1, z2, z3, c, 4);
/* byte i of a row: code i (low nibble), code i + 16 (high) */
#pragma GCC unroll 8
                for (int k = 0; k < 4; k++) {
                    _mm512_store_si512(&b->w[col / 4 + k], _mm512_and_si512(c[k], m4));
                    _mm512_store_si512(&b->w[col / 4 + 4 + k],
                                       _mm512_and_si512(_mm512_srli_epi16(c[k], 4), m4));
                }
                continue;
            }
            /* I2, and the low bits of I3: byte i holds codes i, i+8, i+16, i+24 */
            z0 = load4x8(p[0] + o, p[4] + o, p[8] + o, p[12] + o);
            z1 = load4x8(p[1] + o, p[5] + o, p[9] + o, p[13] + o);
            z2 = load4x8(p[2] + o, p[6] + o, p[10] + o, p[14] + o);
            z3 = load4x8(p[3] + o, p[7] + o, p[11] + o, p[15] + o);
            transpose(z0, z1, z2, z3, c, 2);
            __m512i hb = fmt == QB_FMT_I3 ? gather_rows(R, o + 8) : _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                /* columns 4k..4k+3 are field k/2 of bytes 0-3 (k even) or 4-7 (k odd) */
                __m512i v = _mm512_and_si512(_mm512_srli_epi16(c[k & 1], 2 * (k >> 1)), m2);
                if (fmt == QB_FMT_I3) {
                    /* bits 4k..4k+3 of each row's u32 become bit 2 of its 4 code bytes */
                    __m512i nib = _mm512_shuffle_epi8(_mm512_srli_epi32(hb, 4 * k), spread);
                    v = _mm512_mask_mov_epi8(v, _mm512_test_epi8_mask(nib, bit),
                                             _mm512_or_si512(v, four));
                }
                _mm512_store_si512(&b->w[col / 4 + k], v);
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
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const uint8_t *const *p = R->p;
    float s[16];
    for (int i = 0; i < 16; i++)
        s[i] = w->row_scale[R->r[i]];
    b->gk = 8;
    while (b->gk < 64 && (nc / 4) % (2 * b->gk) == 0)
        b->gk *= 2;
    b->ng = nc / 4 / b->gk;
    for (int g = 0; g < b->ng; g++)
        memcpy(b->d[g], s, sizeof s);
    for (int col = 0; col < nc; col += 16) {
        size_t o = (size_t)(c0 + col);
        __m512i c[4];
        transpose(load4x16(p[0] + o, p[4] + o, p[8] + o, p[12] + o),
                  load4x16(p[1] + o, p[5] + o, p[9] + o, p[13] + o),
                  load4x16(p[2] + o, p[6] + o, p[10] + o, p[14] + o),
                  load4x16(p[3] + o, p[7] + o, p[11] + o, p[15] + o), c, 4);
#pragma GCC unroll 8
        for (int k = 0; k < 4; k++)
            _mm512_store_si512(&b->w[col / 4 + k], _mm512_xor_si512(c[k], flip));
    }
}

/* Byte offset in a row of column c (a multiple of 32), and a prefetch of columns [c0, c1) of
 * 16 rows: the hardware prefetchers do not follow 16 interleaved row streams well enough. */
static size_t col_offset(const struct qb_qtensor *w, int64_t c)
{
    if (w->fmt == QB_FMT_I8)
        return (size_t)c;
    size_t hdr = w->asym ? 4 : 2, sub = sub_bytes(w->fmt);
    return (size_t)(c / w->group) * (hdr + (size_t)(w->group / QB_SUB) * sub) +
           (size_t)((c % w->group) / QB_SUB) * sub;
}

static void prefetch_rows(const struct qb_qtensor *w, const uint8_t *const p[16], int64_t c0,
                          int64_t c1)
{
    size_t a = col_offset(w, c0) & ~(size_t)63, e = col_offset(w, c1);
    for (int i = 0; i < 16; i++)
        for (size_t o = a; o < e; o += 64)
            _mm_prefetch((const char *)p[i] + o, _MM_HINT_T0);
}

/* --- the token loops, with and without VNNI --- */

#define SFX vnni
#define ATTR __attribute__((target("avx512vnni")))
#define DOT8(acc, w, x) _mm512_dpbusd_epi32(acc, w, x)
#define DOT16(acc, w, x) _mm512_dpwssd_epi32(acc, w, x)
#include "kernels/x86/qmatmul_int_avx512_tile.h"
#undef SFX
#undef ATTR
#undef DOT8
#undef DOT16

#define SFX bw
#define ATTR
#define DOT8(acc, w, x)                                                                            \
    _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w, x), _mm512_set1_epi16(1)))
#define DOT16(acc, w, x) _mm512_add_epi32(acc, _mm512_madd_epi16(w, x))
#include "kernels/x86/qmatmul_int_avx512_tile.h"
#undef SFX
#undef ATTR
#undef DOT8
#undef DOT16

/* --- batches up to RW_MAX tokens: one row at a time (VNNI only) ---
 *
 * With few tokens the block scheme's transpose and 16 interleaved row streams cost more than
 * they save, so I8 and I4 rows are read in order, straight from the packed layout, against
 * activations rearranged once per call to meet the codes where they lie:
 *   I4, per 128 columns (4 sub-blocks s): one vector of the 64 low nibbles (codes 0..15 of
 *   each sub-block, one 16-byte lane per s) and one of the 64 high nibbles (codes 16..31), so
 *   the 8-bit activations go in the same order: lo = x[32s + 0..15], hi = x[32s + 16..31].
 *   Each 32-bit lane then meets 8 activations of one sub-block; the sym offset is the int32
 *   start value -2^(b-1) * (their sum), and the 16 lanes are scaled by their sub-block's d
 *   (see rw_i4_t for where d comes from). 16-bit activations are further split by parity
 *   to meet the code vectors split into int16 pairs (bytes 0,2 and 1,3 of each lane).
 *   I8: dot(x + 128, q) - 128 * sum(q) with vpdpbusd; vpmovsxbw and vpdpwssd for 16 bits. */

#define RW_MAX 3 /* most tokens for the row kernels */

/* Rows per pass of the I8 row kernel. One, reading the matrix in order, while the T tokens'
 * activations stay in L1 (RW_L1 bytes); past that, several, so that each activation vector
 * is loaded once per pass, as many as the 32 registers allow. (The I4 row kernel always
 * reads one row at a time, P blocks in flight: on Zen 4 that streamed 1.3-1.8x faster from
 * memory than 4 rows side by side, which were faster only with the weights in cache.) */
#define RW_ROWS(T) ((T) == 3 ? 2 : 4)
#define RW_L1 16384

/* The activations of one token for the I4 row kernel, nv vectors per 128 columns (k):
 * A8 (nv = 3): lo, hi, c; A16 (nv = 5): lo even, lo odd, hi even, hi odd, c; where c holds the
 * lane sums, times -off as int32 (sym) or as f32 (asym). Columns past the end are zero. */
__attribute__((target("avx512vnni"))) static void
rw_prep_i4(const struct qb_qact *x, int64_t t, int a16, int off, int asym, __m512i *out)
{
    int64_t cols = x->cols;
    int nv = a16 ? 5 : 3;
    const __m512i ones8 = _mm512_set1_epi8(1), ones16 = _mm512_set1_epi16(1);
    /* even / odd words of two 32-word sources: [a even 0..7, b even 0..7, a even 8..15, b...] */
    __m512i ie, io;
    {
        int16_t e[32], o[32];
        for (int i = 0; i < 32; i++) {
            int src = (i / 8) % 2, pos = (i / 16) * 8 + i % 8; /* source, pair index */
            e[i] = (int16_t)(src * 32 + 2 * pos);
            o[i] = (int16_t)(src * 32 + 2 * pos + 1);
        }
        ie = _mm512_loadu_si512(e);
        io = _mm512_loadu_si512(o);
    }
    for (int64_t k = 0; k * 128 < cols; k++) {
        int64_t c0 = k * 128, left = cols - c0;
        __m512i sum, *v = out + k * nv;
        if (!a16) {
            const int8_t *p = x->xq + t * cols + c0;
            __mmask64 m0 = left >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << left) - 1;
            __mmask64 m1 = left >= 128 ? ~(__mmask64)0
                           : left > 64 ? ((__mmask64)1 << (left - 64)) - 1
                                       : 0;
            __m512i v0 = _mm512_maskz_loadu_epi8(m0, p), v1 = _mm512_maskz_loadu_epi8(m1, p + 64);
            v[0] = _mm512_shuffle_i32x4(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
            v[1] = _mm512_shuffle_i32x4(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
            sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones8, v[0]),
                                      ones8, v[1]);
        } else {
            const int16_t *p = x->x16 + t * cols + c0;
            __m512i u[4];
            for (int s = 0; s < 4; s++) {
                int64_t l = left - 32 * s;
                __mmask32 m = l >= 32 ? ~(__mmask32)0 : l > 0 ? ((__mmask32)1 << l) - 1 : 0;
                u[s] = _mm512_maskz_loadu_epi16(m, p + 32 * s);
            }
            __m512i e01 = _mm512_permutex2var_epi16(u[0], ie, u[1]);
            __m512i e23 = _mm512_permutex2var_epi16(u[2], ie, u[3]);
            __m512i o01 = _mm512_permutex2var_epi16(u[0], io, u[1]);
            __m512i o23 = _mm512_permutex2var_epi16(u[2], io, u[3]);
            v[0] = _mm512_shuffle_i64x2(e01, e23, _MM_SHUFFLE(1, 0, 1, 0));
            v[1] = _mm512_shuffle_i64x2(o01, o23, _MM_SHUFFLE(1, 0, 1, 0));
            v[2] = _mm512_shuffle_i64x2(e01, e23, _MM_SHUFFLE(3, 2, 3, 2));
            v[3] = _mm512_shuffle_i64x2(o01, o23, _MM_SHUFFLE(3, 2, 3, 2));
            sum = _mm512_setzero_si512();
            for (int i = 0; i < 4; i++)
                sum = _mm512_dpwssd_epi32(sum, v[i], ones16);
        }
        v[nv - 1] = asym ? _mm512_castps_si512(_mm512_cvtepi32_ps(sum))
                         : _mm512_mullo_epi32(sum, _mm512_set1_epi32(-off));
    }
}

/* d (or m, with +1) of each lane's sub-block, as word indices into the 64 bytes starting at
 * a 128-column block: the headers lie at multiples of the group's bytes. */
static __m512i rw_hdr_index(const struct qb_qtensor *w, int plus)
{
    size_t hdr = w->asym ? 4 : 2, gb = hdr + (size_t)(w->group / QB_SUB) * QB_SUB_BYTES_I4;
    int16_t ix[32];
    for (int l = 0; l < 32; l++)
        ix[l] = (int16_t)((l < 16 ? ((l / 4) * 32 / w->group) * gb / 2 : 0) + plus);
    return _mm512_loadu_si512(ix);
}

/* The packed codes of the sub-blocks of a 128-column block, one 16-byte lane each (nsb < 4
 * at the end of a row: the other lanes are zero). */
static inline __m512i rw_codes(const uint8_t *blk, const size_t so[4], int nsb)
{
    if (nsb == 4)
        return _mm512_inserti32x4(
            _mm512_inserti32x4(
                _mm512_inserti32x4(
                    _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(blk + so[0]))),
                    _mm_loadu_si128((const __m128i *)(blk + so[1])), 1),
                _mm_loadu_si128((const __m128i *)(blk + so[2])), 2),
            _mm_loadu_si128((const __m128i *)(blk + so[3])), 3);
    __m512i z = _mm512_setzero_si512();
    for (int s = 0; s < nsb; s++)
        z = _mm512_mask_broadcast_i32x4(z, (__mmask16)(0xf << (4 * s)),
                                        _mm_loadu_si128((const __m128i *)(blk + so[s])));
    return z;
}

/* The lanes' d and m for a block cut short by the end of the row, read without touching bytes
 * past it. */
static void rw_hdr_tail(const struct qb_qtensor *w, const uint8_t *blk, int nsb, __m512 *d,
                        __m512 *m)
{
    size_t hdr = w->asym ? 4 : 2, gb = hdr + (size_t)(w->group / QB_SUB) * QB_SUB_BYTES_I4;
    uint16_t dd[16] = {0}, mm[16] = {0};
    /* one header per group; its lanes repeat it; one vcvtph2ps converts all 16 */
    for (int g = 0; g * w->group < nsb * QB_SUB; g++) {
        uint16_t h[2] = {0, 0};
        memcpy(h, blk + (size_t)g * gb, hdr);
        for (int l = g * w->group / 8; l < (g + 1) * w->group / 8 && l < 4 * nsb; l++) {
            dd[l] = h[0];
            mm[l] = h[1];
        }
    }
    *d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dd));
    *m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)mm));
}

/* Software prefetch distance of the I4 row kernel, in bytes ahead in the row (and past its end
 * into the next row): worth 20-40% from memory on Zen 4 over the hardware prefetcher alone. */
#define RW_PF 1536

/* The 16 f16 values at p + j * gb (j < 16) as f32: scalar loads packed in four 64-bit words,
 * far cheaper than vpgatherdd on Zen 4 (which took a third of the kernel's time). */
INLINE __m512 rw_hdr16(const uint8_t *p, size_t gb)
{
    uint64_t q[4];
#pragma GCC unroll 4
    for (int a = 0; a < 4; a++) {
        uint64_t v = 0;
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            uint16_t h;
            memcpy(&h, p + (size_t)(4 * a + b) * gb, 2);
            v |= (uint64_t)h << (16 * b);
        }
        q[a] = v;
    }
    return _mm512_cvtph_ps(
        _mm256_setr_epi64x((long long)q[0], (long long)q[1], (long long)q[2], (long long)q[3]));
}
/* One 128-column block of one row against T tokens: codes z (4 sub-blocks, one per 16-byte
 * lane), the lanes' d, and for the block-at-a-time path (lane_m) their m; f[t] += the lanes'
 * partial sums. v: the block's activation vectors of token 0 (rw_prep_i4), tokens vs apart. */
INLINE __attribute__((target("avx512vnni"))) void rw_blk(const __m512i *v, int64_t vs, __m512i z,
                                                         __m512 d, __m512 m, __m512 *f, const int T,
                                                         const int a16, const int asym,
                                                         const int lane_m)
{
    const __m512i m4 = _mm512_set1_epi8(15), lo16 = _mm512_set1_epi16(0xff);
    __m512i lo = _mm512_and_si512(z, m4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    if (a16) {
        __m512i le = _mm512_and_si512(lo, lo16), lodd = _mm512_srli_epi16(lo, 8);
        __m512i he = _mm512_and_si512(hi, lo16), hodd = _mm512_srli_epi16(hi, 8);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++, v += vs) {
            __m512i acc = asym ? _mm512_setzero_si512() : v[4];
            acc = _mm512_dpwssd_epi32(acc, le, v[0]);
            acc = _mm512_dpwssd_epi32(acc, lodd, v[1]);
            acc = _mm512_dpwssd_epi32(acc, he, v[2]);
            acc = _mm512_dpwssd_epi32(acc, hodd, v[3]);
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), d, f[t]);
            if (lane_m)
                f[t] = _mm512_fmadd_ps(m, _mm512_castsi512_ps(v[4]), f[t]);
        }
    } else {
#pragma GCC unroll 4
        for (int t = 0; t < T; t++, v += vs) {
            __m512i acc = asym ? _mm512_setzero_si512() : v[2];
            acc = _mm512_dpbusd_epi32(acc, lo, v[0]);
            acc = _mm512_dpbusd_epi32(acc, hi, v[1]);
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), d, f[t]);
            if (lane_m)
                f[t] = _mm512_fmadd_ps(m, _mm512_castsi512_ps(v[2]), f[t]);
        }
    }
}

/* Rows [r0, r1) against T tokens, group G (a constant after inlining), one row at a time so
 * the matrix streams in order; P blocks in flight, each with its own f32 accumulators, so
 * the FMA chains do not wait on each other. For G >= 64 the columns go in super-blocks of
 * 16 groups (16 * G columns, G / 8 blocks of 128): the row's 16 headers come in with scalar
 * loads and one convert, each block takes its lanes' d with one vpermps, and asym's sum of
 * m * xsum over the 16 groups is one FMA against xg, the f32 activation sums per group (16 per
 * super-block and token). G = 32 and the blocks past the last whole super-block read the
 * headers per block. */
INLINE __attribute__((target("avx512vnni"))) void
rw_i4_t(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x, float *y,
        int64_t ldy, const __m512i *xp, const __m512 *xg, int64_t nk, const int T, const int P,
        const int a16, const int asym, const int G)
{
    const int nv = a16 ? 5 : 3, kps = G / 8;
    const int64_t vs = nk * nv; /* activation vectors per token */
    const size_t hdr = asym ? 4 : 2, gb = hdr + (size_t)(G / QB_SUB) * QB_SUB_BYTES_I4;
    const size_t bb = gb * (size_t)(128 / G); /* bytes per 128 columns */
    const __m512i ixd = rw_hdr_index(w, 0), ixm = rw_hdr_index(w, 1);
    /* lane l of a block's d: its group in the super-block */
    const __m512i idl = _mm512_srli_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), G == 32   ? 2
                                                                                 : G == 64 ? 3
                                                                                           : 4);
    const __m512i istep = _mm512_set1_epi32(128 / G);
    int64_t full = w->cols / 128;                   /* blocks with all 4 sub-blocks */
    int64_t nsb = G == 32 ? 0 : w->cols / (16 * G); /* whole super-blocks */
    size_t so[4]; /* byte offsets of the 4 sub-blocks' codes in a block */
    for (int s = 0; s < 4; s++)
        so[s] = (size_t)(s * 32 / G) * gb + hdr + (size_t)(s % (G / 32)) * 16;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        __m512 f[4][RW_MAX];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++)
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                f[p][t] = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++) {
            const uint8_t *hp = row + (size_t)sb * 16 * gb;
            __m512 d = rw_hdr16(hp, gb);
            if (asym) {
                __m512 m = rw_hdr16(hp + 2, gb);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    f[0][t] = _mm512_fmadd_ps(m, xg[t * nsb + sb], f[0][t]);
            }
            __m512i il = idl;
            for (int kk = 0; kk < kps; kk += P) {
#pragma GCC unroll 4
                for (int p = 0; p < P; p++, il = _mm512_add_epi32(il, istep)) {
                    int64_t k = sb * kps + kk + p;
                    const uint8_t *blk = row + (size_t)k * bb;
                    _mm_prefetch((const char *)blk + RW_PF, _MM_HINT_T0);
                    if (bb > 64)
                        _mm_prefetch((const char *)blk + RW_PF + bb - 1, _MM_HINT_T0);
                    __m512i z;
                    if (G == 128)
                        z = _mm512_loadu_si512(blk + hdr);
                    else
                        z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(
                                                   (const __m256i *)(blk + so[0]))),
                                               _mm256_loadu_si256((const __m256i *)(blk + so[2])),
                                               1);
                    rw_blk(xp + k * nv, vs, z, _mm512_permutexvar_ps(il, d), d, f[p], T, a16, asym,
                           0);
                }
            }
        }
        int64_t k = nsb * kps;
        for (; k + P <= full; k += P)
#pragma GCC unroll 4
            for (int p = 0; p < P; p++) {
                const uint8_t *blk = row + (size_t)(k + p) * bb;
                _mm_prefetch((const char *)blk + RW_PF, _MM_HINT_T0);
                if (bb > 64)
                    _mm_prefetch((const char *)blk + RW_PF + bb - 1, _MM_HINT_T0);
                /* a whole block spans at least 64 bytes */
                __m512i span = _mm512_loadu_si512(blk);
                __m512 d =
                    _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(ixd, span)));
                __m512 m = asym ? _mm512_cvtph_ps(
                                      _mm512_castsi512_si256(_mm512_permutexvar_epi16(ixm, span)))
                                : d;
                rw_blk(xp + (k + p) * nv, vs, rw_codes(blk, so, 4), d, m, f[p], T, a16, asym, asym);
            }
        for (; k < nk; k++) {
            const uint8_t *blk = row + (size_t)k * bb;
            int nsub = k < full ? 4 : (int)((w->cols - k * 128) / 32);
            __m512 d, m;
            if (nsub == 4) {
                rw_hdr_tail(w, blk, nsub, &d, &m);
            } else {
                /* the short block's bytes in one masked load (nothing past them is touched:
                 * masked-off bytes do not fault), its headers picked out as in a whole block;
                 * lanes past the end index headers beyond it and read 0 */
                size_t tb = (size_t)(nsub * 32 / G) * gb;
                __m512i span = _mm512_maskz_loadu_epi8(
                    tb >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << tb) - 1, blk);
                d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(ixd, span)));
                m = asym ? _mm512_cvtph_ps(
                               _mm512_castsi512_si256(_mm512_permutexvar_epi16(ixm, span)))
                         : d;
            }
            rw_blk(xp + k * nv, vs, rw_codes(blk, so, nsub), d, m, f[0], T, a16, asym, asym);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512 s = f[0][t];
#pragma GCC unroll 4
            for (int p = 1; p < P; p++)
                s = _mm512_add_ps(s, f[p][t]);
            y[t * ldy + r] = _mm512_reduce_add_ps(s) * x->xscale[t];
        }
    }
}

/* Activation scratch of the row kernels up to this size lives on the stack. */
#define RW_STACK 32768

__attribute__((target("avx512vnni"))) static int rw_i4(const struct qb_qtensor *w, int64_t r0,
                                                       int64_t r1, const struct qb_qact *x,
                                                       float *y, int64_t ldy)
{
    int a16 = x->act != QB_ACT_I8, asym = w->asym, off = 1 << (qb_fmt_bits(w->fmt) - 1);
    int G = w->group;
    int64_t nk = (w->cols + 127) / 128, nv = a16 ? 5 : 3, nsb = G == 32 ? 0 : w->cols / (16 * G);
    size_t need = (size_t)(x->n * (nk * nv + (asym ? nsb : 0))) * sizeof(__m512i);
    __m512i stack[RW_STACK / sizeof(__m512i)];
    __m512i *xp = need <= sizeof stack ? stack : aligned_alloc(64, need);
    if (!xp)
        return -1;
    __m512 *xg = (__m512 *)(xp + x->n * nk * nv); /* (n, nsb) per-group sums, asym */
    for (int64_t t = 0; t < x->n; t++) {
        rw_prep_i4(x, t, a16, off, asym, xp + t * nk * nv);
        if (!asym)
            continue;
        const int32_t *s = x->xsum + t * (x->cols / QB_SUB);
        for (int64_t g = 0; g < nsb * 16; g++) {
            int32_t v = 0;
            for (int j = 0; j < G / QB_SUB; j++)
                v += s[g * (G / QB_SUB) + j];
            ((float *)(xg + t * nsb))[g] = (float)v;
        }
    }
#define RW_G(T, A16, ASYM)                                                                         \
    (G == 32   ? rw_i4_t(w, r0, r1, x, y, ldy, xp, xg, nk, T, (T) == 3 ? 2 : 4, A16, ASYM, 32)     \
     : G == 64 ? rw_i4_t(w, r0, r1, x, y, ldy, xp, xg, nk, T, (T) == 3 ? 2 : 4, A16, ASYM, 64)     \
               : rw_i4_t(w, r0, r1, x, y, ldy, xp, xg, nk, T, (T) == 3 ? 2 : 4, A16, ASYM, 128))
#define RW_T(A16, ASYM)                                                                            \
    (x->n == 1 ? RW_G(1, A16, ASYM) : x->n == 2 ? RW_G(2, A16, ASYM) : RW_G(3, A16, ASYM))
    if (a16)
        asym ? RW_T(1, 1) : RW_T(1, 0);
    else
        asym ? RW_T(0, 1) : RW_T(0, 0);
#undef RW_T
#undef RW_G
    if (xp != stack)
        free(xp);
    return 0;
}

static inline int64_t hsum_epi32(__m512i v) /* in int64 */
{
    return _mm512_reduce_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(v))) +
           _mm512_reduce_add_epi64(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
}

/* I8 rows [r0, r1) against T tokens, R (<= 4) rows per pass; int32 lanes are moved to int64
 * every 4096 columns (a lane gains at most 2 * 127 * 32767 per 32 columns with 16 bits, or
 * 4 * 255 * 127 per 64 with 8). xu: the int8 activations + 128 as u8. */
INLINE __attribute__((target("avx512vnni"))) void rw_i8_t(const struct qb_qtensor *w, int64_t r0,
                                                          int64_t r1, const struct qb_qact *x,
                                                          float *y, int64_t ldy, const uint8_t *xu,
                                                          const int T, const int R, const int a16)
{
    int64_t cols = w->cols;
    const __m512i ones8 = _mm512_set1_epi8(1);
    for (int64_t r = r0; r < r1; r += R) {
        const int8_t *q[4]; /* rows past r1 repeat row r; their sums are not stored */
        int64_t dot[4][RW_MAX], qsum[4];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            q[i] = (const int8_t *)w->data + (size_t)(r + i < r1 ? r + i : r) * w->row_bytes;
            qsum[i] = 0;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                dot[i][t] = 0;
        }
        for (int64_t c0 = 0; c0 < cols; c0 += 4096) {
            int64_t c = c0, ce = cols < c0 + 4096 ? cols : c0 + 4096;
            __m512i acc[4][RW_MAX], qs[4];
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                qs[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    acc[i][t] = _mm512_setzero_si512();
            }
            if (a16) {
                for (; c < ce; c += 32) {
                    __mmask32 m = ce - c >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << (ce - c)) - 1;
                    __m512i xv[RW_MAX];
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++)
                        xv[t] = m == ~(__mmask32)0
                                    ? _mm512_loadu_si512(x->x16 + t * cols + c)
                                    : _mm512_maskz_loadu_epi16(m, x->x16 + t * cols + c);
#pragma GCC unroll 4
                    for (int i = 0; i < R; i++) {
                        __m512i wv = _mm512_cvtepi8_epi16(
                            m == ~(__mmask32)0 ? _mm256_loadu_si256((const __m256i *)(q[i] + c))
                                               : _mm256_maskz_loadu_epi8(m, q[i] + c));
#pragma GCC unroll 4
                        for (int t = 0; t < T; t++)
                            acc[i][t] = _mm512_dpwssd_epi32(acc[i][t], wv, xv[t]);
                    }
                }
            } else { /* cols is a multiple of 32 with int8 activations */
                for (; c < ce; c += 64) {
                    __mmask64 m = ce - c >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (ce - c)) - 1;
                    __m512i xv[RW_MAX];
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++)
                        xv[t] = m == ~(__mmask64)0 ? _mm512_loadu_si512(xu + t * cols + c)
                                                   : _mm512_maskz_loadu_epi8(m, xu + t * cols + c);
#pragma GCC unroll 4
                    for (int i = 0; i < R; i++) {
                        __m512i wv = m == ~(__mmask64)0 ? _mm512_loadu_si512(q[i] + c)
                                                        : _mm512_maskz_loadu_epi8(m, q[i] + c);
                        qs[i] = _mm512_dpbusd_epi32(qs[i], ones8, wv);
#pragma GCC unroll 4
                        for (int t = 0; t < T; t++)
                            acc[i][t] = _mm512_dpbusd_epi32(acc[i][t], xv[t], wv);
                    }
                }
            }
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                qsum[i] += hsum_epi32(qs[i]);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    dot[i][t] += hsum_epi32(acc[i][t]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < R; i++)
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                if (r + i < r1)
                    y[t * ldy + r + i] = w->row_scale[r + i] * x->xscale[t] *
                                         (float)(dot[i][t] - (a16 ? 0 : 128 * qsum[i]));
    }
}

__attribute__((target("avx512vnni"))) static int rw_i8(const struct qb_qtensor *w, int64_t r0,
                                                       int64_t r1, const struct qb_qact *x,
                                                       float *y, int64_t ldy)
{
    uint8_t *xu = NULL;
    int a16 = x->act != QB_ACT_I8;
    if (!a16) { /* x + 128 as u8, for vpdpbusd */
        if (!(xu = malloc((size_t)(x->n * x->cols))))
            return -1;
        int64_t n = x->n * x->cols, i = 0;
        for (; i + 64 <= n; i += 64)
            _mm512_storeu_si512(xu + i, _mm512_xor_si512(_mm512_loadu_si512(x->xq + i),
                                                         _mm512_set1_epi8((char)0x80)));
        for (; i < n; i++)
            xu[i] = (uint8_t)(x->xq[i] ^ 0x80);
    }
    int one = x->n * x->cols * (a16 ? 2 : 1) <= RW_L1;
#define RW(T, A16)                                                                                 \
    (one ? rw_i8_t(w, r0, r1, x, y, ldy, xu, T, 1, A16)                                            \
         : rw_i8_t(w, r0, r1, x, y, ldy, xu, T, RW_ROWS(T), A16))
    if (a16)
        x->n == 1 ? RW(1, 1) : x->n == 2 ? RW(2, 1) : RW(3, 1);
    else
        x->n == 1 ? RW(1, 0) : x->n == 2 ? RW(2, 0) : RW(3, 0);
#undef RW
    free(xu);
    return 0;
}

/* --- kernels --- */

static void run(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                float *y, int64_t ldy, int vnni)
{
    struct blk b;
    int i8 = w->fmt == QB_FMT_I8;
    /* I8 weights take 8-bit dots only with VNNI: q + 128 overflows vpmaddubsw's pairs */
    b.a16 = x->act != QB_ACT_I8 || (i8 && !vnni);
    b.asym = !i8 && w->asym;
    b.xoff = i8 ? 128 : w->asym ? 0 : 1 << (qb_fmt_bits(w->fmt) - 1);
    int64_t body = i8 ? w->cols & ~(int64_t)31 : w->cols;
    if (w->row_bytes > INT32_MAX / 16) { /* gathers index 16 rows with 32-bit offsets */
        qb_qkern_ref()->fn[w->fmt][x->act](w, r0, r1, x, y, ldy);
        return;
    }
    for (int64_t rb = r0; rb < r1; rb += 16) {
        struct rows R;
        int64_t re = rb + 16 < r1 ? rb + 16 : r1;
        rows_at(w, rb, re, &R);
        __mmask16 rmask = (__mmask16)((1u << R.n) - 1);
        if (rb == r0) /* the first two chunks; then each chunk fetches the one after next */
            prefetch_rows(w, R.p, 0, body < 2 * CH ? body : 2 * CH);
        for (int64_t c0 = 0; c0 < body; c0 += CH) {
            int nc = body - c0 < CH ? (int)(body - c0) : CH;
            if (c0 + 2 * CH < body) {
                prefetch_rows(w, R.p, c0 + 2 * CH, c0 + 3 * CH < body ? c0 + 3 * CH : body);
            } else if (c0 + 2 * CH - body < CH && re < w->rows) {
                /* near the end of the row: the start of the next 16 rows */
                struct rows N;
                rows_at(w, re, re + 16 < w->rows ? re + 16 : w->rows, &N);
                int64_t a = c0 + 2 * CH - body;
                prefetch_rows(w, N.p, a, a + CH < body ? a + CH : body);
            }
            if (i8)
                unpack_i8(w, &R, c0, nc, &b);
            else
                unpack_group(w, &R, c0, nc, &b);
            if (vnni)
                tokens_vnni(&b, x, c0, y, ldy, rb, rmask, c0 == 0);
            else
                tokens_bw(&b, x, c0, y, ldy, rb, rmask, c0 == 0);
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

static void kern_vnni(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                      float *y, int64_t ldy)
{
    /* the row kernels allocate their rearranged activations; without memory, the block path */
    if (x->n <= RW_MAX && w->fmt == QB_FMT_I8 && rw_i8(w, r0, r1, x, y, ldy) == 0)
        return;
    if (x->n <= RW_MAX && w->fmt == QB_FMT_I4 && rw_i4(w, r0, r1, x, y, ldy) == 0)
        return;
    run(w, r0, r1, x, y, ldy, 1);
}

static void kern_bw(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                    float *y, int64_t ldy)
{
    run(w, r0, r1, x, y, ldy, 0);
}

void qb_qkern_register_int_avx512_novnni(struct qb_qkern_table *t)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl"))
        return;
    for (int f = QB_FMT_I8; f <= QB_FMT_I2; f++) {
        t->fn[f][QB_ACT_F32] = kern_bw;
        t->fn[f][QB_ACT_I8] = kern_bw;
    }
    t->quant_i8 = qb_quantize_act_i8_avx512;
}

void qb_qkern_register_int_avx512(struct qb_qkern_table *t)
{
    int vnni;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl"))
        return;
    vnni = __builtin_cpu_supports("avx512vnni");
    for (int f = QB_FMT_I8; f <= QB_FMT_I2; f++) {
        t->fn[f][QB_ACT_F32] = vnni ? kern_vnni : kern_bw;
        t->fn[f][QB_ACT_I8] = vnni ? kern_vnni : kern_bw;
    }
    t->quant_i8 = qb_quantize_act_i8_avx512;
}
