/* qmatmul_int_avx512_tile: the token loops over one unpacked 16-row block (struct blk in
 * qmatmul_int_avx512.c), included twice by that file: once with VNNI (vpdpbusd, vpdpwssd)
 * and once with plain AVX-512BW (vpmaddubsw / vpmaddwd + vpaddd). Not a public header.
 *
 * Before including, define SFX (name suffix), ATTR (function attributes), DOT8(acc, w, x)
 * (acc + dot of the u8 codes w with s8 x, 4 per 32-bit lane) and DOT16(acc, w, x) (acc + dot
 * of int16 pairs). With plain BW, DOT8 is exact only while each vpmaddubsw pair sum fits
 * int16, which I4/I3/I2 codes (<= 15) times |x| <= 127 do; I8 takes the 16-bit path there. */

#define NM2(a, b) a##_##b
#define NM1(a, b) NM2(a, b)
#define NM(a) NM1(a, SFX)

/* T tokens (T <= 8, a constant after inlining) over every group of the block, then
 * y (+)= xscale * sum. Per group and token: an int32 dot per row starting from init (the sym
 * offset), one convert and one FMA by the rows' d, and m * xsum for asym.
 * 8-bit: one DOT8 per code vector (16 rows x 4 columns), xt[t] the s8 activations.
 * 16-bit: the code vector splits into int16 pairs (columns 0,2) and (1,3) of each row, and
 * xt[t] holds the int16 activations with each 4 reordered the same way (see tokens). */
static inline __attribute__((always_inline)) ATTR void
NM(tile)(const struct blk *b, int T, const int GK, const void *const *xt, const int32_t *init,
         const float *xs, const float *xscale, float **yt, __mmask16 rmask, int first)
{
    const int gk = GK ? GK : b->gk; /* GK: the code vectors per group as a constant, or 0 */
    __m512 f[8];
    const __m512i *W = b->w;
    const __m512i lo16 = _mm512_set1_epi16(0xff);
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        f[t] = _mm512_setzero_ps();
    for (int g = 0; g < b->ng; g++) {
        __m512i acc[8];
        const char *xg[8];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            acc[t] = _mm512_set1_epi32(init[t * GMAX + g]);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            xg[t] = (const char *)xt[t] + (size_t)(g * gk) * (b->a16 ? 8 : 4);
        if (b->a16) {
            for (int k = 0; k < gk; k++, W++) {
                __m512i wv = _mm512_load_si512(W);
                __m512i w02 = _mm512_and_si512(wv, lo16), w13 = _mm512_srli_epi16(wv, 8);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    acc[t] = DOT16(acc[t], w02, _mm512_set1_epi32(ld32(xg[t] + 8 * k)));
                    acc[t] = DOT16(acc[t], w13, _mm512_set1_epi32(ld32(xg[t] + 8 * k + 4)));
                }
            }
        } else {
            /* unrolled whole for a constant GK: no loop-carried copies of acc */
#pragma GCC unroll 16
            for (int k = 0; k < gk; k++, W++) {
                __m512i wv = _mm512_load_si512(W);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++)
                    acc[t] = DOT8(acc[t], wv, _mm512_set1_epi32(ld32(xg[t] + 4 * k)));
            }
        }
        __m512 dv = _mm512_load_ps(b->d[g]);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), dv, f[t]);
        if (b->asym) {
            __m512 mv = _mm512_load_ps(b->m[g]);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++)
                f[t] = _mm512_fmadd_ps(mv, _mm512_set1_ps(xs[t * GMAX + g]), f[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        __m512 v = _mm512_mul_ps(f[t], _mm512_set1_ps(xscale[t]));
        if (!first)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(rmask, yt[t]));
        _mm512_mask_storeu_ps(yt[t], rmask, v);
    }
}

/* Every token against the block: tiles of 8, then 4, 2, 1. For 16-bit dots the activations
 * of the chunk are first copied to b->xw, each 4 reordered to (0, 2, 1, 3) to meet the split
 * code pairs; int8 activations on that path (I8 without VNNI) are widened on the way. */
static ATTR void NM(tokens)(struct blk *b, const struct qb_qact *x, int64_t c0, float *y,
                            int64_t ldy, int64_t r0, __mmask16 rmask, int first)
{
    int32_t init[8 * GMAX];
    float xs[8 * GMAX];
    const void *xt[8];
    float *yt[8];
    int64_t n_sub = x->cols / QB_SUB;
    int gcols = b->gk * 4, nc = b->ng * gcols;
    const __m512i perm =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15));
    for (int64_t t0 = 0; t0 < x->n;) {
        int T = x->n - t0 >= 8 ? 8 : x->n - t0 >= 4 ? 4 : x->n - t0 >= 2 ? 2 : 1;
        for (int t = 0; t < T; t++) {
            int64_t tk = t0 + t;
            const int32_t *sums = x->xsum + tk * n_sub + c0 / QB_SUB;
            if (gcols == QB_SUB && !b->asym) {
                /* one sub-block per group: the start values in one vector */
                __mmask16 gm = (__mmask16)((1u << b->ng) - 1);
                _mm512_storeu_si512(init + t * GMAX,
                                    _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(gm, sums),
                                                       _mm512_set1_epi32(-b->xoff)));
            } else {
                for (int g = 0; g < b->ng; g++) {
                    int32_t s = 0;
                    if (b->xoff || b->asym)
                        for (int j = 0; j < gcols / QB_SUB; j++)
                            s += sums[g * (gcols / QB_SUB) + j];
                    init[t * GMAX + g] = -b->xoff * s;
                    xs[t * GMAX + g] = (float)s;
                }
            }
            if (!b->a16) {
                xt[t] = x->xq + tk * x->cols + c0;
            } else if (x->act == QB_ACT_I8) {
                const int8_t *q = x->xq + tk * x->cols + c0;
                for (int i = 0; i < nc; i += 32)
                    _mm512_storeu_si512(b->xw + t * CH + i,
                                        _mm512_shuffle_epi8(_mm512_cvtepi8_epi16(_mm256_loadu_si256(
                                                                (const __m256i *)(q + i))),
                                                            perm));
                xt[t] = b->xw + t * CH;
            } else {
                const int16_t *q = x->x16 + tk * x->cols + c0;
                for (int i = 0; i < nc; i += 32)
                    _mm512_storeu_si512(b->xw + t * CH + i,
                                        _mm512_shuffle_epi8(_mm512_loadu_si512(q + i), perm));
                xt[t] = b->xw + t * CH;
            }
            yt[t] = y + tk * ldy + r0;
        }
        const float *xsc = x->xscale + t0;
        /* 8-bit dots with 8 or 16 code vectors per group (groups of 32 or 64 columns) get
         * their own copies with the group's loop unrolled whole */
        int gk = b->a16 ? 0 : b->gk == 8 ? 8 : b->gk == 16 ? 16 : 0;
#define TILE_T(TT)                                                                                 \
    (gk == 8    ? NM(tile)(b, TT, 8, xt, init, xs, xsc, yt, rmask, first)                          \
     : gk == 16 ? NM(tile)(b, TT, 16, xt, init, xs, xsc, yt, rmask, first)                         \
                : NM(tile)(b, TT, 0, xt, init, xs, xsc, yt, rmask, first))
        switch (T) {
        case 8: TILE_T(8); break;
        case 4: TILE_T(4); break;
        case 2: TILE_T(2); break;
        default: TILE_T(1); break;
        }
#undef TILE_T
        t0 += T;
    }
}

#undef NM
#undef NM1
#undef NM2
