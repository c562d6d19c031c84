/* fp8: exact conversions between f32 and the two OCP 8-bit float formats.
 *   e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; max 448; no infinities; S.1111.111 is NaN
 *   e5m2:   1 sign, 5 exponent (bias 15), 2 mantissa; max 57344; inf and NaN as in IEEE
 * f32 -> fp8 rounds to nearest even and saturates to the largest finite value (the
 * "satfinite" conversion quantizers use); decode is exact. Spec: OCP 8-bit Floating Point
 * Specification (OFP8) rev 1.0, and NVIDIA's "FP8 Formats for Deep Learning" (2022). */
#ifndef QB_FP8_H
#define QB_FP8_H

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

/* Round |x| (finite, < 2 * max) to the format's grid; returns the code without sign. */
static inline uint8_t qb_fp8_encode_abs(float a, int mbits, int bias, uint8_t max_code)
{
    int e;
    float q;
    if (a < ldexpf(1.0f, 1 - bias)) {
        /* subnormal: multiples of 2^(1-bias-mbits); 2^mbits carries into the min normal */
        q = nearbyintf(ldexpf(a, bias - 1 + mbits));
        return (uint8_t)q;
    }
    frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    e -= 1;        /* a = (1 + frac) * 2^e */
    q = nearbyintf(ldexpf(a, mbits - e)) - (float)(1 << mbits);
    if (q >= (float)(1 << mbits)) {
        q = 0;
        e++;
    }
    int code = ((e + bias) << mbits) | (int)q;
    return code > max_code ? max_code : (uint8_t)code;
}

static inline uint8_t qb_f32_to_e4m3(float x)
{
    uint8_t s = signbit(x) ? 0x80 : 0;
    float a = fabsf(x);
    if (isnan(x))
        return 0x7f;
    if (a >= QB_E4M3_MAX)
        return s | 0x7e;
    return s | qb_fp8_encode_abs(a, 3, 7, 0x7e);
}

static inline uint8_t qb_f32_to_e5m2(float x)
{
    uint8_t s = signbit(x) ? 0x80 : 0;
    float a = fabsf(x);
    if (isnan(x))
        return 0x7f;
    if (a >= QB_E5M2_MAX)
        return s | 0x7b;
    return s | qb_fp8_encode_abs(a, 2, 15, 0x7b);
}

#endif
