/* quant_act_avx512: qb_quantize_act_i8 (kernels/qmatmul.c) with AVX-512F/BW, bit for bit: the
 * same max |x| (vmaxps keeps its second operand when the first is NaN, as the scalar loop
 * skips NaN; a maximum does not depend on the order), the same scale and reciprocal computed
 * in scalar, the same two f32 roundings per value (x * inv, then + and - 1.5 * 2^23: round half
 * to even; NaN, which the scalar cast makes 0x80000000, keeps its low byte there too), and
 * exact int32 sums of each 32 stored codes. Registered in the AVX-512 integer tables
 * (qmatmul_int_avx512.c); columns that are not a multiple of 32 go to the scalar function. */
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

void qb_quantize_act_i8_avx512(const float *x, int64_t n, int64_t cols, int8_t *xq, float *scale,
                               int32_t *xsum)
{
    if (cols % QB_SUB) {
        qb_quantize_act_i8(x, n, cols, xq, scale, xsum);
        return;
    }
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * cols;
        int8_t *qt = xq + t * cols;
        __m512 m = _mm512_setzero_ps();
        for (int64_t i = 0; i < cols; i += 16)
            m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xt + i)), m);
        float amax = _mm512_reduce_max_ps(m), inv;
        scale[t] = amax / 127.0f;
        inv = amax > 0 ? 127.0f / amax : 0;
        const __m512 vinv = _mm512_set1_ps(inv);
        for (int64_t b = 0; b < cols / QB_SUB; b++) {
            __m512i q[2];
            for (int h = 0; h < 2; h++) {
                __m512 v = _mm512_mul_ps(_mm512_loadu_ps(xt + b * QB_SUB + 16 * h), vinv);
                __m128i c = _mm512_cvtepi32_epi8(
                    _mm512_cvttps_epi32(_mm512_sub_ps(_mm512_add_ps(v, magic), magic)));
                _mm_storeu_si128((__m128i *)(qt + b * QB_SUB + 16 * h), c);
                q[h] = _mm512_cvtepi8_epi32(c); /* the stored codes (NaN's included) */
            }
            if (xsum)
                xsum[t * (cols / QB_SUB) + b] =
                    _mm512_reduce_add_epi32(_mm512_add_epi32(q[0], q[1]));
        }
    }
}
