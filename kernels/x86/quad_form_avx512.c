/* quad_form_avx512: gptq's r^T H r with AVX-512F, the 8 partial sums of quad_form_ref.c in
 * one 8-lane vector. It must return the reference's double bit for bit (the clipping searches
 * compare these errors; tests/kernels/test_quad_form.c checks it on odd sizes): the same
 * terms (r_i * h_ij) * r_j in the same lanes, separate multiplies and adds (no FMA: this file
 * is built with -mfma, but the code is ISO C, where GCC does not contract), the same scalar
 * tail and the same final order. */
#include "kernels/dispatch.h"

#include <immintrin.h>

double qb_quad_form_avx512(const double *h, int64_t ld, const double *r, int n)
{
    __m512d a = _mm512_setzero_pd();
    double acc[8], diag = 0, tail = 0, low = 0;
    for (int i = 0; i < n; i++) {
        const double *hr = h + i * ld, ri = r[i];
        const __m512d vi = _mm512_set1_pd(ri);
        int j = 0;
        for (; j + 8 <= i; j += 8)
            a = _mm512_add_pd(a, _mm512_mul_pd(_mm512_mul_pd(vi, _mm512_loadu_pd(hr + j)),
                                               _mm512_loadu_pd(r + j)));
        for (; j < i; j++)
            tail += ri * hr[j] * r[j];
        diag += ri * hr[i] * ri;
    }
    _mm512_storeu_pd(acc, a);
    for (int l = 0; l < 8; l++)
        low += acc[l];
    return diag + 2 * (low + tail);
}
