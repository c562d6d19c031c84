/* matmul_f32_avx2: f32 dot products with AVX2 + FMA (compiled with -mavx2 -mfma only
 * here). Agrees with qb_dot_rows_f32_ref up to summation order. */
#include "kernels/matmul.h"

#include <immintrin.h>

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* Four activation rows share each load of w. */
static void dot4(const float *w, const float *x, int64_t ldx, int64_t k, float *y, int64_t ldy)
{
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 wv = _mm256_loadu_ps(w + i);
        a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), a0);
        a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), a1);
        a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + i), a2);
        a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + i), a3);
    }
    float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
    for (; i < k; i++) {
        s0 += w[i] * x0[i];
        s1 += w[i] * x1[i];
        s2 += w[i] * x2[i];
        s3 += w[i] * x3[i];
    }
    y[0] = s0;
    y[ldy] = s1;
    y[2 * ldy] = s2;
    y[3 * ldy] = s3;
}

static float dot1(const float *w, const float *x, int64_t k)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= k; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < k; i++)
        s += w[i] * x[i];
    return s;
}

void qb_dot_rows_f32_avx2(const float *w, const float *x, int64_t n, int64_t ldx, int64_t k,
                          float *y, int64_t ldy)
{
    int64_t t = 0;
    for (; t + 4 <= n; t += 4)
        dot4(w, x + t * ldx, ldx, k, y + t * ldy, ldy);
    for (; t < n; t++)
        y[t * ldy] = dot1(w, x + t * ldx, k);
}
