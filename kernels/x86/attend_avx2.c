/* attend_avx2: the attention kernel of kernels/attend.h on AVX2, 8 floats per register.
 * Compiled with -mavx2 -mfma (the Makefile's %_avx2 flags) only here, yet products and sums
 * stay separate instructions (no FMA), so the bits are qb_attend_ref's (kernels/attend.c):
 * every sum is in the reference's order and lanes are independent outputs. Scores: 32
 * positions at a time (four registers, summed over the head's dimensions), then 8, then a
 * scalar tail. Values: blocks of 16 dimensions as two halves of 8 with four partial sums over
 * the positions each, then the hd % 16 dimensions left, 8 at a time and one by one, each one
 * sum over the positions in order. */
#include "kernels/attend.h"

#include <immintrin.h>

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
    sum = qb_attend_softmax(s, len);
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
