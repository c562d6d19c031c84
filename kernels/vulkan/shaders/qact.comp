#version 450
/* qact: per-token activation quantization on the device, exactly as qb_quantize_act_i8 /
 * qb_quantize_act_fp8 (kernels/qmatmul.c) do it on the CPU. One workgroup per token t:
 *   amax = max |x[t][i]| over the in_cols real inputs (the padding up to cols is zero)
 *   int8: scale = amax / 127, code = round-half-even(x * (127 / amax)) (0 when amax = 0),
 *         plus the sum of the codes of each 32-block
 *   fp8:  scale = amax / 448, code = e4m3(x * (448 / amax)), fp8.h's rounding bit for bit
 * Bindings: 0 X f32 (t0 + n, in_cols), tokens t0 .. t0 + n - 1 quantized; 1 XQ codes (n, cols), 4 per word; 2 XS scales (n);
 * 3 XSUM (n, cols / 32), int8 mode only. cols is a multiple of 32. */
#extension GL_EXT_control_flow_attributes : enable

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer XB { float X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer XQB { uint XQ[]; };
layout(std430, set = 0, binding = 2) writeonly buffer XSB { float XS[]; };
layout(std430, set = 0, binding = 3) writeonly buffer XSUMB { int XSUM[]; };

layout(push_constant) uniform PC {
    uint n, cols, in_cols;
    uint fp8; /* 0: int8 codes, 1: e4m3 codes */
    uint t0;
} pc;

#include "q_common.glsl"

shared float red[WG];

void main()
{
    const uint tid = gl_LocalInvocationID.x, t = gl_WorkGroupID.x;
    const uint xa = (pc.t0 + t) * pc.in_cols;
    float m = 0.0;
    /* as abs_max in qmatmul.c: a NaN fails the comparison and is skipped */
    for (uint i = tid; i < pc.in_cols; i += WG) {
        float a = abs(X[xa + i]);
        m = a > m ? a : m;
    }
    red[tid] = m;
    barrier();
    for (uint s = WG >> 1; s > 0u; s >>= 1) {
        if (tid < s) {
            float o = red[tid + s];
            red[tid] = o > red[tid] ? o : red[tid];
        }
        barrier();
    }
    const float amax = red[0];
    const float qmax = pc.fp8 != 0u ? 448.0 : 127.0;
    const float inv = amax > 0.0 ? qdiv(qmax, amax) : 0.0;
    if (tid == 0u)
        XS[t] = qdiv(amax, qmax);
    for (uint b = tid; b < (pc.cols >> 5); b += WG) {
        int sum = 0;
        [[unroll]] for (int k = 0; k < 8; k++) {
            uint word = 0u;
            [[unroll]] for (int i = 0; i < 4; i++) {
                const uint c = (b << 5) + uint(4 * k + i);
                const float x = c < pc.in_cols ? X[xa + c] : 0.0;
                precise float v = x * inv;
                uint code;
                if (pc.fp8 != 0u) {
                    code = qenc_e4m3(v);
                } else {
                    int q = qrne(v);
                    sum += q;
                    code = uint(q) & 0xffu;
                }
                word |= code << (8 * i);
            }
            XQ[((t * pc.cols) >> 2) + (b << 3) + uint(k)] = word;
        }
        if (pc.fp8 == 0u)
            XSUM[t * (pc.cols >> 5) + b] = sum;
    }
}
