#version 450
/* qembed: the embedding lookup for a quantized table (I8, E4M3, E5M2, I4, I3, I2): x[t][c] =
 * row tok[t] of the table dequantized exactly as qb_dequantize_row (kernels/quantize.c) does,
 * for c < in_cols (the padding is not written). A table past the device's storage-buffer
 * range is bound in row ranges: a dispatch covers rows [row0, row0 + rows) and writes only the
 * tokens whose id falls there. Grid: x over columns, y over tokens.
 * Bindings: 0 W packed rows (byte wbase is row row0's first); 1 S per-row scales (row row0's
 * at srow0); 2 TOK int ids (n); 3 X f32 (n, in_cols). */

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer WB { uint W[]; };
layout(std430, set = 0, binding = 1) readonly buffer SB { float S[]; };
layout(std430, set = 0, binding = 2) readonly buffer TB { int TOK[]; };
layout(std430, set = 0, binding = 3) writeonly buffer XB { float X[]; };

layout(push_constant) uniform PC {
    uint rows, row0, srow0, wbase, row_bytes, cols, in_cols, n;
    uint fmt; /* enum qb_fmt: 3 E4M3, 4 E5M2, 5 I8, 6 I4, 7 I3, 8 I2 */
    uint group, asym;
} pc;

#include "q_common.glsl"

uint rd8(uint a)
{
    return (W[a >> 2] >> ((a & 3u) << 3)) & 0xffu;
}

uint rd16(uint a)
{
    return rd8(a) | (rd8(a + 1u) << 8);
}

void main()
{
    const uint c = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (c >= pc.in_cols || t >= pc.n)
        return;
    const int id = TOK[t];
    if (id < int(pc.row0) || id >= int(pc.row0 + pc.rows))
        return;
    const uint ra = pc.wbase + (uint(id) - pc.row0) * pc.row_bytes;
    precise float v;
    if (pc.fmt <= 5u) {
        const uint by = rd8(ra + c);
        const float s = S[pc.srow0 + uint(id) - pc.row0];
        v = s * (pc.fmt == 3u ? qe4m3(by) : pc.fmt == 4u ? qe5m2(by) : float(int(by << 24) >> 24));
    } else {
        const uint bits = 10u - pc.fmt, sb = bits == 4u ? 16u : bits == 3u ? 12u : 8u;
        const uint gpb = pc.group >> 5, hdr = pc.asym != 0u ? 4u : 2u;
        const uint b = c >> 5, j = c & 31u, g = b / gpb, k = b - g * gpb;
        const uint ha = ra + g * (hdr + gpb * sb), pa = ha + hdr + k * sb;
        uint q;
        if (bits == 4u)
            q = j < 16u ? rd8(pa + j) & 15u : rd8(pa + j - 16u) >> 4;
        else
            q = (rd8(pa + (j & 7u)) >> (2u * (j >> 3))) & 3u;
        if (bits == 3u)
            q |= ((rd8(pa + 8u + (j >> 3)) >> (j & 7u)) & 1u) << 2;
        const float d = qf16(rd16(ha));
        if (pc.asym != 0u)
            v = d * float(q) + qf16(rd16(ha + 2u));
        else
            v = d * float(int(q) - (1 << (bits - 1u)));
    }
    X[t * pc.in_cols + c] = v;
}
