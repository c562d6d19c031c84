/* attend_avx512: the attention kernel of kernels/attend.h on AVX-512F, 16 floats per
 * register. Compiled with -mavx512f (and the rest of the Makefile's %_avx512 flags) only
 * here. Same bits as qb_attend_ref (kernels/attend.c): every sum is in the reference's order,
 * products and sums as separate instructions (no FMA); lanes are independent outputs, so
 * the vector width changes nothing; the softmax's exponentials are qb_attend_exp's, 16 at a
 * time (exp16). Scores: 64 positions at a time (four registers, summed
 * over the head's dimensions), then 16, then a masked tail. Values: blocks of 16 dimensions
 * with four partial sums over the positions, then the hd % 16 dimensions left, masked, one
 * sum over the positions in order. */
#include "kernels/attend.h"

#include <immintrin.h>
#include <math.h>

/* qb_attend_exp (kernels/attend.c) on 16 lanes, the same operations in the same order */
static __m512 exp16(__m512 x)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(QB_ATTEND_EXP_MIN), _CMP_GE_OQ);
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), magic);
    const __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    __m512i e;

    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r),
                      _mm512_set1_ps(1.0f));
    e = _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(127 - 0x4b400000));
    e = _mm512_slli_epi32(e, 23);
    return _mm512_maskz_mov_ps(ok, _mm512_mul_ps(p, _mm512_castsi512_ps(e)));
}

/* qb_attend_softmax (kernels/attend.c) with the max and the exponentials 16 at a time; the
 * sum stays in position order, so the bits are the reference's */
static float softmax16(float *s, int64_t len)
{
    __m512 vmx = _mm512_set1_ps(-INFINITY), vm;
    float sum = 0;
    int64_t p;

    for (p = 0; p < len; p += 16) {
        const __mmask16 m = len - p >= 16 ? 0xffff : (__mmask16)((1u << (len - p)) - 1);
        vmx = _mm512_max_ps(vmx, _mm512_mask_loadu_ps(vmx, m, s + p));
    }
    vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmx));
    for (p = 0; p < len; p += 16) {
        const __mmask16 m = len - p >= 16 ? 0xffff : (__mmask16)((1u << (len - p)) - 1);
        _mm512_mask_storeu_ps(s + p, m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + p), vm)));
    }
    for (p = 0; p < len; p++)
        sum += s[p];
    return sum;
}

void qb_attend_avx512(const float *q, const float *kt, int64_t ld, const float *vc, int64_t stride,
                      int64_t len, int64_t hd, float scale, float *s, float *out)
{
    const __m512 vscale = _mm512_set1_ps(scale);
    const int64_t hd16 = hd - hd % 16, len4 = len - len % 4;
    int64_t p = 0, i0 = 0;
    __m512 vsum;

    for (; p + 64 <= len; p += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < hd; i++) {
            const float *k = kt + i * ld + p;
            const __m512 qi = _mm512_set1_ps(q[i]);
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(qi, _mm512_loadu_ps(k)));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(qi, _mm512_loadu_ps(k + 16)));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(qi, _mm512_loadu_ps(k + 32)));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(qi, _mm512_loadu_ps(k + 48)));
        }
        _mm512_storeu_ps(s + p, _mm512_mul_ps(a0, vscale));
        _mm512_storeu_ps(s + p + 16, _mm512_mul_ps(a1, vscale));
        _mm512_storeu_ps(s + p + 32, _mm512_mul_ps(a2, vscale));
        _mm512_storeu_ps(s + p + 48, _mm512_mul_ps(a3, vscale));
    }
    for (; p < len; p += 16) {
        const __mmask16 m = len - p >= 16 ? 0xffff : (__mmask16)((1u << (len - p)) - 1);
        __m512 a = _mm512_setzero_ps();
        for (int64_t i = 0; i < hd; i++)
            a = _mm512_add_ps(
                a, _mm512_mul_ps(_mm512_set1_ps(q[i]), _mm512_maskz_loadu_ps(m, kt + i * ld + p)));
        _mm512_mask_storeu_ps(s + p, m, _mm512_mul_ps(a, vscale));
    }
    vsum = _mm512_set1_ps(softmax16(s, len));

    for (; i0 < hd16; i0 += 16) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *v = vc + i0;
        for (p = 0; p < len4; p += 4) {
            a0 = _mm512_add_ps(
                a0, _mm512_mul_ps(_mm512_set1_ps(s[p]), _mm512_loadu_ps(v + p * stride)));
            a1 = _mm512_add_ps(
                a1, _mm512_mul_ps(_mm512_set1_ps(s[p + 1]), _mm512_loadu_ps(v + (p + 1) * stride)));
            a2 = _mm512_add_ps(
                a2, _mm512_mul_ps(_mm512_set1_ps(s[p + 2]), _mm512_loadu_ps(v + (p + 2) * stride)));
            a3 = _mm512_add_ps(
                a3, _mm512_mul_ps(_mm512_set1_ps(s[p + 3]), _mm512_loadu_ps(v + (p + 3) * stride)));
        }
        for (; p < len; p++)
            a0 = _mm512_add_ps(
                a0, _mm512_mul_ps(_mm512_set1_ps(s[p]), _mm512_loadu_ps(v + p * stride)));
        a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), a2), a3);
        _mm512_storeu_ps(out + i0, _mm512_div_ps(a0, vsum));
    }
    if (i0 < hd) { /* the last hd % 16 dimensions: one sum per dimension, positions in order */
        const __mmask16 m = (__mmask16)((1u << (hd - i0)) - 1);
        __m512 a = _mm512_setzero_ps();
        for (p = 0; p < len; p++)
            a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(s[p]),
                                               _mm512_maskz_loadu_ps(m, vc + p * stride + i0)));
        _mm512_mask_storeu_ps(out + i0, m, _mm512_div_ps(a, vsum));
    }
}

/* Scores of NH heads (a constant) against 32 positions at a time (masked at the end): each
 * keys vector is loaded once for all NH heads; each lane sums over i in order, as above. */
static inline __attribute__((always_inline)) void scores_heads(const float *q, int64_t qs,
                                                               const int NH, const float *kt,
                                                               int64_t ld, int64_t len, int64_t hd,
                                                               float scale, float *s, int64_t ss)
{
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int64_t p = 0; p < len; p += 32) {
        const int64_t l0 = len - p, l1 = len - p - 16;
        const __mmask16 m0 = l0 >= 16 ? 0xffff : (__mmask16)((1u << l0) - 1);
        const __mmask16 m1 = l1 >= 16 ? 0xffff : l1 > 0 ? (__mmask16)((1u << l1) - 1) : 0;
        __m512 a[8][2];
#pragma GCC unroll 8
        for (int j = 0; j < NH; j++)
            a[j][0] = a[j][1] = _mm512_setzero_ps();
        for (int64_t i = 0; i < hd; i++) {
            const float *k = kt + i * ld + p;
            const __m512 k0 = _mm512_maskz_loadu_ps(m0, k), k1 = _mm512_maskz_loadu_ps(m1, k + 16);
#pragma GCC unroll 8
            for (int j = 0; j < NH; j++) {
                const __m512 qi = _mm512_set1_ps(q[j * qs + i]);
                a[j][0] = _mm512_add_ps(a[j][0], _mm512_mul_ps(qi, k0));
                a[j][1] = _mm512_add_ps(a[j][1], _mm512_mul_ps(qi, k1));
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < NH; j++) {
            _mm512_mask_storeu_ps(s + j * ss + p, m0, _mm512_mul_ps(a[j][0], vscale));
            _mm512_mask_storeu_ps(s + j * ss + p + 16, m1, _mm512_mul_ps(a[j][1], vscale));
        }
    }
}

/* The weighted values of NH heads (a constant, <= 4) over dimensions [i0, i0 + 16): each
 * values vector is loaded once for all NH heads; per head the four partial sums of
 * qb_attend_avx512, in the same order. */
static inline __attribute__((always_inline)) void
values_heads(const float *vc, int64_t stride, int64_t len, const int NH, const float *s, int64_t ss,
             const float *sum, float *out, int64_t os, int64_t i0)
{
    const int64_t len4 = len - len % 4;
    const float *v = vc + i0;
    __m512 a[4][4];
    int64_t p;
#pragma GCC unroll 4
    for (int j = 0; j < NH; j++)
        a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm512_setzero_ps();
    for (p = 0; p < len4; p += 4) {
        __m512 vv[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            vv[r] = _mm512_loadu_ps(v + (p + r) * stride);
#pragma GCC unroll 4
        for (int j = 0; j < NH; j++)
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
                a[j][r] =
                    _mm512_add_ps(a[j][r], _mm512_mul_ps(_mm512_set1_ps(s[j * ss + p + r]), vv[r]));
    }
    for (; p < len; p++) {
        const __m512 vv = _mm512_loadu_ps(v + p * stride);
#pragma GCC unroll 4
        for (int j = 0; j < NH; j++)
            a[j][0] = _mm512_add_ps(a[j][0], _mm512_mul_ps(_mm512_set1_ps(s[j * ss + p]), vv));
    }
#pragma GCC unroll 4
    for (int j = 0; j < NH; j++) {
        __m512 t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[j][0], a[j][1]), a[j][2]), a[j][3]);
        _mm512_storeu_ps(out + j * os + i0, _mm512_div_ps(t, _mm512_set1_ps(sum[j])));
    }
}

void qb_attend_heads_avx512(const float *q, int64_t qs, int64_t nh, const float *kt, int64_t ld,
                            const float *vc, int64_t stride, int64_t len, int64_t hd, float scale,
                            float *s, int64_t ss, float *out, int64_t os)
{
    const int64_t hd16 = hd - hd % 16;
    float sum[4];
    for (int64_t h = 0; h < nh;) {
        int64_t k = nh - h >= 8 ? 8 : nh - h >= 4 ? 4 : nh - h >= 2 ? 2 : 1;
        const float *qh = q + h * qs;
        float *sh = s + h * ss;
        switch (k) {
        case 8: scores_heads(qh, qs, 8, kt, ld, len, hd, scale, sh, ss); break;
        case 4: scores_heads(qh, qs, 4, kt, ld, len, hd, scale, sh, ss); break;
        case 2: scores_heads(qh, qs, 2, kt, ld, len, hd, scale, sh, ss); break;
        default: scores_heads(qh, qs, 1, kt, ld, len, hd, scale, sh, ss); break;
        }
        h += k;
    }
    for (int64_t h = 0; h < nh;) {
        int64_t k = nh - h >= 4 ? 4 : nh - h >= 2 ? 2 : 1;
        const float *sh = s + h * ss;
        float *oh = out + h * os;
        for (int64_t j = 0; j < k; j++)
            sum[j] = softmax16(s + (h + j) * ss, len);
        for (int64_t i0 = 0; i0 < hd16; i0 += 16)
            switch (k) {
            case 4: values_heads(vc, stride, len, 4, sh, ss, sum, oh, os, i0); break;
            case 2: values_heads(vc, stride, len, 2, sh, ss, sum, oh, os, i0); break;
            default: values_heads(vc, stride, len, 1, sh, ss, sum, oh, os, i0); break;
            }
        if (hd16 < hd) { /* the last hd % 16 dimensions, per head as in qb_attend_avx512 */
            const __mmask16 m = (__mmask16)((1u << (hd - hd16)) - 1);
            for (int64_t j = 0; j < k; j++) {
                __m512 a = _mm512_setzero_ps();
                for (int64_t p = 0; p < len; p++)
                    a = _mm512_add_ps(
                        a, _mm512_mul_ps(_mm512_set1_ps(sh[j * ss + p]),
                                         _mm512_maskz_loadu_ps(m, vc + p * stride + hd16)));
                _mm512_mask_storeu_ps(oh + j * os + hd16, m,
                                      _mm512_div_ps(a, _mm512_set1_ps(sum[j])));
            }
        }
        h += k;
    }
}
