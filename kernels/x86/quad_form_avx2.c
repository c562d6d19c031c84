/* quad_form_avx2: gptq's r^T H r with AVX2, the 8 partial sums of quad_form_ref.c in two
 * 4-lane vectors. It must return the reference's double bit for bit (the clipping searches
 * compare these errors; tests/kernels/test_quad_form.c checks it on odd sizes): the same
 * terms (r_i * h_ij) * r_j in the same lanes, separate multiplies and adds (no FMA: this file
 * is built with -mfma, but the code is ISO C, where GCC does not contract), the same scalar
 * tail and the same final order. */
#include "kernels/dispatch.h"

#include <immintrin.h>

double qb_quad_form_avx2(const double *h, int64_t ld, const double *r, int n)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(); /* lanes 0-3 and 4-7 */
    double acc[8], diag = 0, tail = 0, low = 0;
    for (int i = 0; i < n; i++) {
        const double *hr = h + i * ld, ri = r[i];
        const __m256d vi = _mm256_set1_pd(ri);
        int j = 0;
        for (; j + 8 <= i; j += 8) {
            __m256d p0 = _mm256_mul_pd(vi, _mm256_loadu_pd(hr + j));
            __m256d p1 = _mm256_mul_pd(vi, _mm256_loadu_pd(hr + j + 4));
            a0 = _mm256_add_pd(a0, _mm256_mul_pd(p0, _mm256_loadu_pd(r + j)));
            a1 = _mm256_add_pd(a1, _mm256_mul_pd(p1, _mm256_loadu_pd(r + j + 4)));
        }
        for (; j < i; j++)
            tail += ri * hr[j] * r[j];
        diag += ri * hr[i] * ri;
    }
    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    for (int l = 0; l < 8; l++)
        low += acc[l];
    return diag + 2 * (low + tail);
}
