/* matmul_f32_avx512: f32 dot products with AVX-512F (compiled with -mavx512f only here).
 * Agrees with qb_dot_rows_f32_ref up to summation order. */
#include "kernels/matmul.h"

#include <immintrin.h>

/* Four activation rows share each load of w; the tail is masked, not scalar. */
static void dot4(const float *w, const float *x, int64_t ldx, int64_t k, float *y, int64_t ldy)
{
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 wv = _mm512_loadu_ps(w + i);
        a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x0 + i), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x1 + i), a1);
        a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x2 + i), a2);
        a3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x3 + i), a3);
    }
    if (i < k) {
        __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
        __m512 wv = _mm512_maskz_loadu_ps(m, w + i);
        a0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x0 + i), a0);
        a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x1 + i), a1);
        a2 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x2 + i), a2);
        a3 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x3 + i), a3);
    }
    y[0] = _mm512_reduce_add_ps(a0);
    y[ldy] = _mm512_reduce_add_ps(a1);
    y[2 * ldy] = _mm512_reduce_add_ps(a2);
    y[3 * ldy] = _mm512_reduce_add_ps(a3);
}

static float dot1(const float *w, const float *x, int64_t k)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    for (; i + 16 <= k; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    if (i < k) {
        __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

void qb_dot_rows_f32_avx512(const float *w, const float *x, int64_t n, int64_t ldx, int64_t k,
                            float *y, int64_t ldy)
{
    int64_t t = 0;
    for (; t + 4 <= n; t += 4)
        dot4(w, x + t * ldx, ldx, k, y + t * ldy, ldy);
    for (; t < n; t++)
        y[t * ldy] = dot1(w, x + t * ldx, k);
}
