/* fp8: exact conversions between f32 and the two OCP 8-bit float formats.
 *   e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; max 448; no infinities; S.1111.111 is NaN
 *   e5m2:   1 sign, 5 exponent (bias 15), 2 mantissa; max 57344; inf and NaN as in IEEE
 * f32 -> fp8 rounds to nearest even and saturates to the largest finite value (the
 * "satfinite" conversion quantizers use); decode is exact. Spec: OCP 8-bit Floating Point
 * Specification (OFP8) rev 1.0, and NVIDIA's "FP8 Formats for Deep Learning" (2022). */
#ifndef QB_FP8_H
#define QB_FP8_H

#include "kernels/half.h"

#include <math.h>
#include <stdint.h>

#define QB_E4M3_MAX 448.0f
#define QB_E5M2_MAX 57344.0f

static inline float qb_fp8_decode(uint8_t b, int ebits, int mbits, int bias)
{
    int e = (b >> mbits) & ((1 << ebits) - 1), m = b & ((1 << mbits) - 1);
    float v;
    if (e == 0)
        v = ldexpf((float)m, 1 - bias - mbits);
    else
        v = ldexpf((float)((1 << mbits) | m), e - bias - mbits);
    return (b & 0x80) ? -v : v;
}

static inline float qb_e4m3_to_f32(uint8_t b)
{
    if ((b & 0x7f) == 0x7f)
        return NAN;
    return qb_fp8_decode(b, 4, 3, 7);
}

static inline float qb_e5m2_to_f32(uint8_t b)
{
    if (((b >> 2) & 31) == 31)
        return (b & 3) ? NAN : ((b & 0x80) ? -INFINITY : INFINITY);
    return qb_fp8_decode(b, 5, 2, 15);
}

/* f32 -> fp8 by bit manipulation (no libm: the quantizers call this for every weight and
 * activation). min_normal = 2^(1-bias); magic = 2^(24-bias-mbits) has an ulp of the
 * subnormal step, so adding it rounds a subnormal to nearest even and its low bits are the
 * code (a carry gives the smallest normal code). Checked against a frexpf/ldexpf reference
 * over all 2^32 inputs. */
static inline uint8_t qb_fp8_encode(float x, int mbits, int bias, uint32_t max_code, float maxv,
                                    float min_normal, float magic)
{
    uint32_t u = qb_f32_bits(x), s = (u >> 24) & 0x80, a = u & 0x7fffffffu, code;
    float f = qb_bits_f32(a);
    if (a > 0x7f800000u)
        return 0x7f;
    if (f >= maxv)
        return (uint8_t)(s | max_code);
    if (f < min_normal)
        return (uint8_t)(s | (qb_f32_bits(f + magic) - qb_f32_bits(magic)));
    /* round the f32 mantissa to mbits, half to even; a carry bumps the exponent */
    a += (1u << (22 - mbits)) - 1 + ((a >> (23 - mbits)) & 1);
    code =
        ((a >> 23) - 127 + (uint32_t)bias) << mbits | ((a >> (23 - mbits)) & ((1u << mbits) - 1));
    return (uint8_t)(s | (code > max_code ? max_code : code));
}

static inline uint8_t qb_f32_to_e4m3(float x)
{
    return qb_fp8_encode(x, 3, 7, 0x7e, QB_E4M3_MAX, 0x1p-6f, 0x1p14f);
}

static inline uint8_t qb_f32_to_e5m2(float x)
{
    return qb_fp8_encode(x, 2, 15, 0x7b, QB_E5M2_MAX, 0x1p-14f, 0x1p7f);
}

#endif
