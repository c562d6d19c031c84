/* q_common.glsl: what the quantized-format shaders share -- bytes read out of a uint[] buffer
 * at any byte address (qtensor.h's rows and groups are not 4-byte aligned), the exact f16 and
 * fp8 decoders of kernels/half.h and kernels/fp8.h, the fp8 encoder of fp8.h bit for bit, and
 * a division rounded as the CPU's. Included after the includer declares the weight buffer as
 * `WBUF` (a uint[] member) when it reads weights. */

/* The decoders are branch-free (selects), so that the unrolled kernels stay small for the
 * shader compilers (lavapipe's LLVM among them). */

/* IEEE binary16 -> f32, exact (subnormals included, as qb_f16_to_f32; never flushed). */
float qf16(uint h)
{
    uint e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint bits = e == 0x1fu ? 0x7f800000u | (m << 13) : ((e + 112u) << 23) | (m << 13);
    float v = mix(uintBitsToFloat(bits), float(m) * 5.9604644775390625e-8, e == 0u);
    return uintBitsToFloat(floatBitsToUint(v) | ((h & 0x8000u) << 16));
}

/* fp8 e4m3fn -> f32, exact (qb_e4m3_to_f32): no infinities, S.1111.111 is NaN. */
float qe4m3(uint b)
{
    uint e = (b >> 3) & 15u, m = b & 7u;
    float v = mix(uintBitsToFloat(((e + 120u) << 23) | (m << 20)), float(m) * 0.001953125,
                  e == 0u); /* subnormal: m * 2^-9 */
    v = uintBitsToFloat(floatBitsToUint(v) | ((b & 0x80u) << 24));
    return mix(v, uintBitsToFloat(0x7fc00000u), (b & 0x7fu) == 0x7fu);
}

/* fp8 e5m2 -> f32, exact (qb_e5m2_to_f32): IEEE-like infinities and NaN. */
float qe5m2(uint b)
{
    uint e = (b >> 2) & 31u, m = b & 3u;
    uint bits = e == 31u ? 0x7f800000u | (m << 21) : ((e + 112u) << 23) | (m << 21);
    float v = mix(uintBitsToFloat(bits), float(m) * 1.52587890625e-05, e == 0u); /* m * 2^-16 */
    return uintBitsToFloat(floatBitsToUint(v) | ((b & 0x80u) << 24));
}

/* f32 -> e4m3 as qb_f32_to_e4m3 (fp8.h): round to nearest even, saturating. */
uint qenc_e4m3(float x)
{
    uint u = floatBitsToUint(x), s = (u >> 24) & 0x80u, a = u & 0x7fffffffu, code;
    float f = uintBitsToFloat(a);
    if (a > 0x7f800000u)
        return 0x7fu;
    if (f >= 448.0)
        return s | 0x7eu;
    if (f < 0.015625) { /* below 2^-6: the subnormal step is 2^-9; magic 2^14 rounds to it */
        precise float g = f + 16384.0;
        return s | (floatBitsToUint(g) - floatBitsToUint(16384.0));
    }
    a += (1u << 19) - 1u + ((a >> 20) & 1u);
    code = (((a >> 23) - 120u) << 3) | ((a >> 20) & 7u);
    return s | min(code, 0x7eu);
}

/* p + e = a * b exactly (Dekker's product with Veltkamp's split: no fused multiply-add
 * needed, which Vulkan does not promise; `precise` keeps the compiler from fusing). */
void qtwo_prod(float a, float b, out float p, out float e)
{
    precise float pp = a * b;
    precise float ca = 4097.0 * a, cb = 4097.0 * b;
    precise float ah = ca - (ca - a), bh = cb - (cb - b);
    precise float al = a - ah, bl = b - bh;
    precise float ee = ((ah * bh - pp) + ah * bl + al * bh) + al * bl;
    p = pp;
    e = ee;
}

/* a - b q, exact for q within a few ulps of a / b (the remainder is then representable). */
float qrem(float a, float b, float q)
{
    float p, e;
    qtwo_prod(b, q, p, e);
    precise float r = (a - p) - e;
    return r;
}

/* a / b rounded to nearest even, as the CPU divides (GLSL's `/` may be 2.5 ulp off, and some
 * drivers' far more): the quotient corrected twice by its remainder, then whichever of it and
 * its two neighbours leaves the smallest exact remainder. For finite a >= 0 and normal b > 0
 * whose quotient is normal. */
float qdiv(float a, float b)
{
    if (a == 0.0)
        return 0.0;
    precise float q = a / b;
    q = q + qrem(a, b, q) / b;
    q = q + qrem(a, b, q) / b;
    float best = q, rb = abs(qrem(a, b, q));
    float c = uintBitsToFloat(floatBitsToUint(q) - 1u), rc = abs(qrem(a, b, c));
    if (rc < rb || (rc == rb && (floatBitsToUint(c) & 1u) == 0u)) {
        best = c;
        rb = rc;
    }
    c = uintBitsToFloat(floatBitsToUint(q) + 1u);
    rc = abs(qrem(a, b, c));
    if (rc < rb || (rc == rb && (floatBitsToUint(c) & 1u) == 0u))
        best = c;
    return best;
}

/* Round half to even (qb_quantize_act_i8's (v + 1.5 * 2^23) - 1.5 * 2^23 for |v| < 2^22). */
int qrne(float v)
{
    return int(roundEven(v));
}
