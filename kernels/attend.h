/* attend: softmax attention of one query head over the positions of a KV cache, the inner
 * kernel of the CPU backend's attention (kernels/cpu/backend_cpu.c), with a scalar reference
 * and AVX2 / AVX-512 twins (kernels/x86/attend_avx2.c, attend_avx512.c) chosen once from
 * qb_kernels()->isa (kernels/dispatch.h), so --isa reaches attention too.
 *
 *     qb_attend_fn f = qb_attend_for(qb_kernels()->isa);
 *     f(q, kt, ld, vc, stride, len, hd, 1 / sqrtf(hd), s, out);
 *
 * Every variant gives the same bits as the reference (the tests compare them exactly): each
 * score is q . k summed over the head's dimensions in order, times scale; the softmax's
 * exponentials are qb_attend_exp's (vectorized in the twins, same bits), summed in position
 * order; the weighted sum of values is unnormalised and divided by the sum of the weights
 * once at the end. For the output dimensions in whole blocks of 16 (i < hd - hd % 16) the
 * positions are summed in four interleaved partial sums (position p into sum p % 4, the
 * positions after the last whole group of four into sum 0), added as ((s0 + s1) + s2) + s3;
 * the remaining hd % 16 dimensions sum the positions in order. No fused multiply-adds: each
 * product is rounded, then added. */
#ifndef QB_ATTEND_H
#define QB_ATTEND_H

#include <stdint.h>

/* out (hd) = softmax over p < len of (q . k_p) * scale, applied to v_p: q (hd); the keys
 * transposed, kt (hd rows of ld floats: k_p[i] = kt[i * ld + p]); the values vc (len rows of
 * stride floats: v_p[i] = vc[p * stride + i]); s (len) is scratch. len >= 1, hd >= 1. */
typedef void (*qb_attend_fn)(const float *q, const float *kt, int64_t ld, const float *vc,
                             int64_t stride, int64_t len, int64_t hd, float scale, float *s,
                             float *out);

void qb_attend_ref(const float *q, const float *kt, int64_t ld, const float *vc, int64_t stride,
                   int64_t len, int64_t hd, float scale, float *s, float *out);
/* x86-64 only; callers reach them through qb_attend_for, which checks the isa. */
void qb_attend_avx2(const float *q, const float *kt, int64_t ld, const float *vc, int64_t stride,
                    int64_t len, int64_t hd, float scale, float *s, float *out);
void qb_attend_avx512(const float *q, const float *kt, int64_t ld, const float *vc, int64_t stride,
                      int64_t len, int64_t hd, float scale, float *s, float *out);

/* The reference's softmax step: s (len) scores in, qb_attend_exp(s - max s) out (the
 * weights, unnormalised); returns their sum, added in position order. The twins compute the
 * exponentials 8 or 16 at a time with the same operations, so the weights agree to the bit. */
float qb_attend_softmax(float *s, int64_t len);

/* e^x for QB_ATTEND_EXP_MIN <= x <= 88 (softmax passes x <= 0), a polynomial in place of
 * expf (test_attend measures its largest relative error to it: 1.2e-7); 0 below QB_ATTEND_EXP_MIN
 * (e^-87 is 1.6e-38, so a weight's absolute error is under that) and for NaN. */
#define QB_ATTEND_EXP_MIN (-87.0f)
float qb_attend_exp(float x);

/* The variant for an instruction set name ("ref", "avx2", "avx512"; the reference for any
 * other name). The caller passes qb_kernels()->isa, which only names what the CPU has. */
qb_attend_fn qb_attend_for(const char *isa);

/* nh query heads that share one KV head at once, each head's result bit for bit that of the
 * single-head kernel (head j: q + j * qs, scratch s + j * ss of len floats, out + j * os): the
 * keys and values are read once per few heads instead of once per head. */
typedef void (*qb_attend_heads_fn)(const float *q, int64_t qs, int64_t nh, const float *kt,
                                   int64_t ld, const float *vc, int64_t stride, int64_t len,
                                   int64_t hd, float scale, float *s, int64_t ss, float *out,
                                   int64_t os);
void qb_attend_heads_avx512(const float *q, int64_t qs, int64_t nh, const float *kt, int64_t ld,
                            const float *vc, int64_t stride, int64_t len, int64_t hd, float scale,
                            float *s, int64_t ss, float *out, int64_t os);
/* The grouped variant for an instruction set name, NULL where there is none (AVX-512 only). */
qb_attend_heads_fn qb_attend_heads_for(const char *isa);

#endif
