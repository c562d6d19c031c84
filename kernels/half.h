/* half: IEEE binary16 and bfloat16 <-> f32 conversions, exact and branch-light.
 * Shared by the loaders (F16/BF16 tensors) and, later, the kernels. Rounding on the
 * way down is round-to-nearest-even, as numpy/PyTorch do. */
#ifndef QB_HALF_H
#define QB_HALF_H

#include <stdint.h>
#include <string.h>

static inline float qb_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t qb_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float qb_bf16_to_f32(uint16_t h)
{
    return qb_bits_f32((uint32_t)h << 16);
}

static inline uint16_t qb_f32_to_bf16(float f)
{
    uint32_t u = qb_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet, never round to inf */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* binary16 -> f32, exact for every input including subnormals, inf and NaN. */
static inline float qb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f)
        return qb_bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* subnormal or zero: man * 2^-24 is exact in f32 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return qb_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* f32 -> binary16, round to nearest even, overflow to inf. */
static inline uint16_t qb_f32_to_f16(float f)
{
    uint32_t u = qb_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000u) /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) { /* below 2^-14: subnormal half */
        /* add 0.5 (as float) so the FPU rounds the mantissa for us */
        float v = qb_bits_f32(a) + 0.5f;
        return (uint16_t)(sign | (qb_f32_bits(v) - 0x3f000000u));
    }
    a += ((a >> 13) & 1) + 0xfff - (112u << 23);
    return (uint16_t)(sign | (a >> 13));
}

#endif
