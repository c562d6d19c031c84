/* qmatmul_int_avx512_tile: the token loops over one unpacked 16-row block (struct blk in
 * qmatmul_int_avx512.c), included twice by that file: once with VNNI (vpdpbusd, vpdpwssd)
 * and once with plain AVX-512BW (vpmaddubsw / vpmaddwd + vpaddd). Not a public header.
 *
 * Before including, define SFX (name suffix), ATTR (function attributes), DOT8(acc, w, x)
 * (acc + dot of u8 codes w with s8 x, 4 per lane) and DOT16(acc, w, x) (acc + dot of int16
 * pairs). With plain BW, DOT8 is exact only while each vpmaddubsw pair sum fits int16, which
 * the I4/I3/I2 codes (<= 15) times |x| <= 127 do; I8 weights take the 16-bit path there. */

#define NM2(a, b) a##_##b
#define NM1(a, b) NM2(a, b)
#define NM(a) NM1(a, SFX)

/* T tokens (T <= 8, a constant after inlining) over every group of the block: per group an
 * int32 dot per row and token, converted once and scaled by the rows' d; the minimum term
 * m * xsum for asym; then y (+)= xscale * sum. */
static inline __attribute__((always_inline)) ATTR void NM(tile)(const struct blk *b, int T,
                                                                const void *const *xt,
                                                                const int32_t *init,
                                                                const float *xs,
                                                                const float *xscale, float **yt,
                                                                __mmask16 rmask, int first)
{
    __m512 f[8];
    const __m512i *W = b->w;
    int step = b->a16 ? 2 : 4; /* columns per 64-byte chunk */
    for (int t = 0; t < T; t++)
        f[t] = _mm512_setzero_ps();
    for (int g = 0; g < b->ng; g++) {
        __m512i acc[8];
        for (int t = 0; t < T; t++)
            acc[t] = _mm512_set1_epi32(init[t * GMAX + g]);
        const char *xg[8];
        for (int t = 0; t < T; t++)
            xg[t] = (const char *)xt[t] + (size_t)(g * b->gk * step) * (b->a16 ? 2 : 1);
        if (b->a16) {
            for (int k = 0; k < b->gk; k++, W++) {
                __m512i wv = _mm512_load_si512(W);
                for (int t = 0; t < T; t++)
                    acc[t] = DOT16(acc[t], wv, _mm512_set1_epi32(ld32(xg[t] + 4 * k)));
            }
        } else {
            for (int k = 0; k < b->gk; k++, W++) {
                __m512i wv = _mm512_load_si512(W);
                for (int t = 0; t < T; t++)
                    acc[t] = DOT8(acc[t], wv, _mm512_set1_epi32(ld32(xg[t] + 4 * k)));
            }
        }
        __m512 dv = _mm512_load_ps(b->d[g]);
        for (int t = 0; t < T; t++)
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), dv, f[t]);
        if (b->asym) {
            __m512 mv = _mm512_load_ps(b->m[g]);
            for (int t = 0; t < T; t++)
                f[t] = _mm512_fmadd_ps(mv, _mm512_set1_ps(xs[t * GMAX + g]), f[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        __m512 v = _mm512_mul_ps(f[t], _mm512_set1_ps(xscale[t]));
        if (!first)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(rmask, yt[t]));
        _mm512_mask_storeu_ps(yt[t], rmask, v);
    }
}

/* Tokens [t0, t0 + nt) against the block: tiles of 8, then 4, 2, 1. */
static ATTR void NM(tokens)(const struct blk *b, const struct qb_qact *x, int64_t c0, float *y,
                            int64_t ldy, int64_t r0, __mmask16 rmask, int first)
{
    int32_t init[8 * GMAX];
    float xs[8 * GMAX];
    const void *xt[8];
    float *yt[8];
    int64_t n_sub = x->cols / QB_SUB;
    int gcols = b->gk * (b->a16 ? 2 : 4);
    int16_t *x16 = b->xw; /* int8 activations widened for the 16-bit path, or NULL */
    for (int64_t t0 = 0; t0 < x->n;) {
        int T = x->n - t0 >= 8 ? 8 : x->n - t0 >= 4 ? 4 : x->n - t0 >= 2 ? 2 : 1;
        for (int t = 0; t < T; t++) {
            int64_t tk = t0 + t;
            const int32_t *sums = x->xsum ? x->xsum + tk * n_sub + c0 / QB_SUB : NULL;
            for (int g = 0; g < b->ng; g++) {
                int32_t s = 0;
                if (sums && (b->xoff || b->asym))
                    for (int j = 0; j < gcols / QB_SUB; j++)
                        s += sums[g * (gcols / QB_SUB) + j];
                init[t * GMAX + g] = -b->xoff * s;
                xs[t * GMAX + g] = (float)s;
            }
            if (x16) {
                const int8_t *q = x->xq + tk * x->cols + c0;
                for (int i = 0; i < b->ng * gcols; i++)
                    x16[t * CH + i] = q[i];
                xt[t] = x16 + t * CH;
            } else if (b->a16) {
                xt[t] = x->x16 + tk * x->cols + c0;
            } else {
                xt[t] = x->xq + tk * x->cols + c0;
            }
            yt[t] = y + tk * ldy + r0;
        }
        const float *xsc = x->xscale + t0;
        switch (T) {
        case 8: NM(tile)(b, 8, xt, init, xs, xsc, yt, rmask, first); break;
        case 4: NM(tile)(b, 4, xt, init, xs, xsc, yt, rmask, first); break;
        case 2: NM(tile)(b, 2, xt, init, xs, xsc, yt, rmask, first); break;
        default: NM(tile)(b, 1, xt, init, xs, xsc, yt, rmask, first); break;
        }
        t0 += T;
    }
}

#undef NM
#undef NM1
#undef NM2
