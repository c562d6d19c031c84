/* attend_avx2: the attention kernel of kernels/attend.h on AVX2, 8 floats per register.
 * Compiled with -mavx2 -mfma (the Makefile's %_avx2 flags) only here, yet products and sums
 * stay separate instructions (no FMA), so the bits are qb_attend_ref's (kernels/attend.c):
 * every sum is in the reference's order and lanes are independent outputs. Scores: 32
 * positions at a time (four registers, summed over the head's dimensions), then 8, then a
 * scalar tail. Values: blocks of 16 dimensions as two halves of 8 with four partial sums over
 * the positions each, then the hd % 16 dimensions left, 8 at a time and one by one, each one
 * sum over the positions in order. The softmax's exponentials are qb_attend_exp's, 8 at a
 * time (exp8). */
#include "kernels/attend.h"

#include <immintrin.h>
#include <math.h>

/* qb_attend_exp (kernels/attend.c) on 8 lanes, the same operations in the same order */
static __m256 exp8(__m256 x)
{
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 ok = _mm256_cmp_ps(x, _mm256_set1_ps(QB_ATTEND_EXP_MIN), _CMP_GE_OQ);
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    __m256i e;

    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r),
                      _mm256_set1_ps(1.0f));
    e = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127 - 0x4b400000));
    e = _mm256_slli_epi32(e, 23);
    return _mm256_and_ps(ok, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* qb_attend_softmax (kernels/attend.c) with the max and the exponentials 8 at a time, the
 * last len % 8 through qb_attend_exp; the sum stays in position order, so the bits are the
 * reference's */
static float softmax8(float *s, int64_t len)
{
    const int64_t len8 = len - len % 8;
    __m256 vmx = _mm256_set1_ps(-INFINITY), vm;
    float mx, sum = 0, lanes[8];
    int64_t p;

    for (p = 0; p < len8; p += 8)
        vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(s + p));
    _mm256_storeu_ps(lanes, vmx);
    mx = lanes[0];
    for (int j = 1; j < 8; j++)
        mx = lanes[j] > mx ? lanes[j] : mx;
    for (; p < len; p++)
        mx = s[p] > mx ? s[p] : mx;
    vm = _mm256_set1_ps(mx);
    for (p = 0; p < len8; p += 8)
        _mm256_storeu_ps(s + p, exp8(_mm256_sub_ps(_mm256_loadu_ps(s + p), vm)));
    for (; p < len; p++)
        s[p] = qb_attend_exp(s[p] - mx);
    for (p = 0; p < len; p++)
        sum += s[p];
    return sum;
}

/* out[i0 .. i0+8) for dimensions inside a block of 16: four partial sums (attend.h) */
static void values8_blocked(const float *s, const float *v, int64_t stride, int64_t len,
                            int64_t len4, __m256 vsum, float *out)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t p = 0;
    for (; p < len4; p += 4) {
        a0 =
            _mm256_add_ps(a0, _mm256_mul_ps(_mm256_set1_ps(s[p]), _mm256_loadu_ps(v + p * stride)));
        a1 = _mm256_add_ps(
            a1, _mm256_mul_ps(_mm256_set1_ps(s[p + 1]), _mm256_loadu_ps(v + (p + 1) * stride)));
        a2 = _mm256_add_ps(
            a2, _mm256_mul_ps(_mm256_set1_ps(s[p + 2]), _mm256_loadu_ps(v + (p + 2) * stride)));
        a3 = _mm256_add_ps(
            a3, _mm256_mul_ps(_mm256_set1_ps(s[p + 3]), _mm256_loadu_ps(v + (p + 3) * stride)));
    }
    for (; p < len; p++)
        a0 =
            _mm256_add_ps(a0, _mm256_mul_ps(_mm256_set1_ps(s[p]), _mm256_loadu_ps(v + p * stride)));
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), a2), a3);
    _mm256_storeu_ps(out, _mm256_div_ps(a0, vsum));
}

void qb_attend_avx2(const float *q, const float *kt, int64_t ld, const float *vc, int64_t stride,
                    int64_t len, int64_t hd, float scale, float *s, float *out)
{
    const __m256 vscale = _mm256_set1_ps(scale);
    const int64_t hd16 = hd - hd % 16, len4 = len - len % 4;
    int64_t p = 0, i0 = 0;
    __m256 vsum;
    float sum;

    for (; p + 32 <= len; p += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < hd; i++) {
            const float *k = kt + i * ld + p;
            const __m256 qi = _mm256_set1_ps(q[i]);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(qi, _mm256_loadu_ps(k)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(qi, _mm256_loadu_ps(k + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(qi, _mm256_loadu_ps(k + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(qi, _mm256_loadu_ps(k + 24)));
        }
        _mm256_storeu_ps(s + p, _mm256_mul_ps(a0, vscale));
        _mm256_storeu_ps(s + p + 8, _mm256_mul_ps(a1, vscale));
        _mm256_storeu_ps(s + p + 16, _mm256_mul_ps(a2, vscale));
        _mm256_storeu_ps(s + p + 24, _mm256_mul_ps(a3, vscale));
    }
    for (; p + 8 <= len; p += 8) {
        __m256 a = _mm256_setzero_ps();
        for (int64_t i = 0; i < hd; i++)
            a = _mm256_add_ps(
                a, _mm256_mul_ps(_mm256_set1_ps(q[i]), _mm256_loadu_ps(kt + i * ld + p)));
        _mm256_storeu_ps(s + p, _mm256_mul_ps(a, vscale));
    }
    for (; p < len; p++) {
        float d = 0;
        for (int64_t i = 0; i < hd; i++)
            d += q[i] * kt[i * ld + p];
        s[p] = d * scale;
    }
    sum = softmax8(s, len);
    vsum = _mm256_set1_ps(sum);

    for (; i0 < hd16; i0 += 8)
        values8_blocked(s, vc + i0, stride, len, len4, vsum, out + i0);
    for (; i0 + 8 <= hd; i0 += 8) { /* past the blocks of 16: one sum, positions in order */
        __m256 a = _mm256_setzero_ps();
        for (p = 0; p < len; p++)
            a = _mm256_add_ps(
                a, _mm256_mul_ps(_mm256_set1_ps(s[p]), _mm256_loadu_ps(vc + p * stride + i0)));
        _mm256_storeu_ps(out + i0, _mm256_div_ps(a, vsum));
    }
    for (; i0 < hd; i0++) {
        float a = 0;
        for (p = 0; p < len; p++)
            a += s[p] * vc[p * stride + i0];
        out[i0] = a / sum;
    }
}
