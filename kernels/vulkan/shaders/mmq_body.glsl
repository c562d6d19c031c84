/* mmq_body.glsl: y (n, rows) = x (n, in_cols) . W^T for one quantized weight format and one
 * activation mode, the arithmetic of kernels/qmatmul_int_ref.c and qmatmul_float_ref.c. The
 * wrapper .comp files define the variant before including this body:
 *
 *   FMT_I8 | FMT_I4 | FMT_I3 | FMT_I2 | FMT_E4M3 | FMT_E5M2     weight format (qtensor.h)
 *   ACT_F32 | ACT_I8 | ACT_FP8                                 activation mode
 *   RM, TN                                                      rows x tokens per workgroup:
 *                                                               RM 2, TN 1 for decode (matrix-
 *                                                               vector), RM 4, TN 8 tiled
 *
 * A workgroup of WG threads (specialization constant 0, chosen from the device's limits; a
 * power of two >= RM * TN) computes RM rows for TN tokens: its threads split the row into
 * 32-weight blocks, each decodes its blocks once per row and multiplies them with the TN
 * tokens, and the partial sums meet in shared memory. Per block the sums are those of the
 * reference kernels (integer dot products per 32-block for ACT_I8); only the order of the f32
 * additions across blocks differs.
 *
 * Bindings (set 0, all storage buffers; the same six for every variant):
 *   0 W     packed rows (uint words; byte `wbase` is row `row0`'s first)
 *   1 S     per-row scales (I8, E4M3, E5M2), indexed by srow0 + r
 *   2 X     ACT_F32: f32 (t0 + n, in_cols); ACT_I8 / ACT_FP8: codes (n, cols), 4 per word
 *   3 XS    per-token activation scale (ACT_I8 / ACT_FP8)
 *   4 XSUM  per-token sums of the int8 codes per 32-block (n, cols / 32) (ACT_I8)
 *   5 Y     f32 (t0 + n, ldy): y[(t0 + t) * ldy + row0 + r] */
#extension GL_EXT_control_flow_attributes : enable

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer WB { uint W[]; };
layout(std430, set = 0, binding = 1) readonly buffer SB { float S[]; };
#ifdef ACT_F32
layout(std430, set = 0, binding = 2) readonly buffer XB { float X[]; };
#else
layout(std430, set = 0, binding = 2) readonly buffer XB { uint XQ[]; };
#endif
layout(std430, set = 0, binding = 3) readonly buffer XSB { float XS[]; };
layout(std430, set = 0, binding = 4) readonly buffer XSUMB { int XSUM[]; };
layout(std430, set = 0, binding = 5) writeonly buffer YB { float Y[]; };

layout(push_constant) uniform PC {
    uint rows;      /* rows of this dispatch */
    uint row0;      /* its first row: of Y's columns */
    uint srow0;     /* where row row0's scale is in S */
    uint wbase;     /* byte of W where row row0 starts */
    uint row_bytes; /* bytes of one packed row */
    uint cols;      /* weights per row, padding included */
    uint in_cols;   /* floats per token of X (ACT_F32) */
    uint n;         /* tokens */
    uint ldy;       /* floats per token of Y */
    uint group;     /* I4/I3/I2: weights per group */
    uint asym;      /* I4/I3/I2: header holds a minimum */
    uint t0;        /* first token of X and Y (codes, scales and sums start at it) */
} pc;

#include "q_common.glsl"

uint rd8(uint a)
{
    return (W[a >> 2] >> ((a & 3u) << 3)) & 0xffu;
}

uint rd16(uint a)
{
    return (a & 3u) != 3u ? (W[a >> 2] >> ((a & 3u) << 3)) & 0xffffu : rd8(a) | (rd8(a + 1u) << 8);
}

/* 4 bytes from any address; the buffer is whole words, so the second word exists */
uint rd32(uint a)
{
    uint i = a >> 2, s = (a & 3u) << 3;
    return s == 0u ? W[i] : (W[i] >> s) | (W[i + 1u] << (32u - s));
}

#if defined(FMT_I4) || defined(FMT_I3) || defined(FMT_I2)
#define GROUPED 1
#if defined(FMT_I4)
#define SUBB 16u
#define BITS 4
#elif defined(FMT_I3)
#define SUBB 12u
#define BITS 3
#else
#define SUBB 8u
#define BITS 2
#endif

/* The 32 codes (0 .. 2^b - 1) of sub-block b of a row, and its group's header d, m. */
void codes(uint ra, uint b, out int q[32], out float d, out float m)
{
    uint gpb = pc.group >> 5, hdr = pc.asym != 0u ? 4u : 2u;
    uint g = b / gpb, k = b - g * gpb;
    uint ha = ra + g * (hdr + gpb * SUBB), pa = ha + hdr + k * SUBB;
    d = qf16(rd16(ha));
    m = pc.asym != 0u ? qf16(rd16(ha + 2u)) : 0.0;
#if BITS == 4
    uint w[4] = uint[4](rd32(pa), rd32(pa + 4u), rd32(pa + 8u), rd32(pa + 12u));
    [[unroll]] for (int j = 0; j < 16; j++) {
        uint by = (w[j >> 2] >> ((j & 3) << 3)) & 0xffu;
        q[j] = int(by & 15u);
        q[j + 16] = int(by >> 4);
    }
#else
    uint lo[2] = uint[2](rd32(pa), rd32(pa + 4u));
#if BITS == 3
    uint hi = rd32(pa + 8u);
#endif
    [[unroll]] for (int i = 0; i < 8; i++) {
        uint by = (lo[i >> 2] >> ((i & 3) << 3)) & 0xffu;
        [[unroll]] for (int k2 = 0; k2 < 4; k2++) {
            int j = i + 8 * k2;
            int c = int((by >> (2 * k2)) & 3u);
#if BITS == 3
            c |= int((hi >> j) & 1u) << 2;
#endif
            q[j] = c;
        }
    }
#endif
}
#else
/* I8 / E4M3 / E5M2: one byte per weight; the 32 bytes of block b (zero past cols). */
void bytes32(uint ra, uint b, out uint by[32])
{
    uint c0 = b << 5;
    if (c0 + 32u <= pc.cols) {
        [[unroll]] for (int k = 0; k < 8; k++) {
            uint w = rd32(ra + c0 + uint(4 * k));
            [[unroll]] for (int i = 0; i < 4; i++)
                by[4 * k + i] = (w >> (8 * i)) & 0xffu;
        }
    } else {
        /* the row's last block: clamp the address, zero the bytes past cols */
        [[unroll]] for (int j = 0; j < 32; j++) {
            uint c = c0 + uint(j);
            by[j] = c < pc.cols ? rd8(ra + min(c, pc.cols - 1u)) : 0u;
        }
    }
}

float bval(uint by)
{
#if defined(FMT_I8)
    return float(int(by << 24) >> 24);
#elif defined(FMT_E4M3)
    return qe4m3(by);
#else
    return qe5m2(by);
#endif
}
#endif

/* Accumulators: ints where the whole row's dot product is an integer (I8 x int8). */
#if defined(FMT_I8) && defined(ACT_I8)
#define ACC int
#define ACC0 0
#else
#define ACC float
#define ACC0 0.0
#endif

shared ACC red[WG * RM * TN];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint rb = gl_WorkGroupID.x * RM, tb = gl_WorkGroupID.y * TN;
    const uint nb = (pc.cols + 31u) >> 5;
    ACC acc[RM * TN];
    [[unroll]] for (int i = 0; i < RM * TN; i++)
        acc[i] = ACC0;

    for (uint b = tid; b < nb; b += WG) {
        const uint c0 = b << 5;
        [[unroll]] for (int i = 0; i < RM; i++) {
            const uint r = rb + uint(i);
            if (r >= pc.rows)
                break;
            const uint ra = pc.wbase + r * pc.row_bytes;
#if defined(GROUPED)
            int q[32];
            float d, m;
            codes(ra, b, q, d, m);
#if defined(ACT_F32)
            float w[32];
            const int off = 1 << (BITS - 1);
            [[unroll]] for (int j = 0; j < 32; j++) {
                precise float v = pc.asym != 0u ? d * float(q[j]) + m : d * float(q[j] - off);
                w[j] = v;
            }
#endif
#else
            uint by[32];
            bytes32(ra, b, by);
#if defined(ACT_I8)
            int q[32];
            [[unroll]] for (int j = 0; j < 32; j++)
                q[j] = int(by[j] << 24) >> 24;
#else
            float w[32];
            [[unroll]] for (int j = 0; j < 32; j++)
                w[j] = bval(by[j]);
#endif
#endif
            [[unroll]] for (int tt = 0; tt < TN; tt++) {
                const uint t = tb + uint(tt);
                if (t >= pc.n)
                    break;
#if defined(ACT_F32)
                const uint xa = (pc.t0 + t) * pc.in_cols;
                float s = 0.0;
                if (c0 + 32u <= pc.in_cols) {
                    [[unroll]] for (int j = 0; j < 32; j++)
                        s += w[j] * X[xa + c0 + uint(j)];
                } else { /* past in_cols the activations are the padding's zeros */
                    [[unroll]] for (int j = 0; j < 32; j++) {
                        uint c = c0 + uint(j);
                        float xv = X[xa + min(c, pc.in_cols - 1u)];
                        s += w[j] * (c < pc.in_cols ? xv : 0.0);
                    }
                }
                acc[i * TN + tt] += s;
#elif defined(ACT_I8)
                const uint xa = (t * pc.cols + c0) >> 2;
                int dot = 0;
                [[unroll]] for (int k = 0; k < 8; k++) {
                    const uint xw = XQ[xa + uint(k)];
                    [[unroll]] for (int i2 = 0; i2 < 4; i2++)
                        dot += q[4 * k + i2] * (int(xw << (24 - 8 * i2)) >> 24);
                }
#if defined(GROUPED)
                const int xsum = XSUM[t * (pc.cols >> 5) + b];
                if (pc.asym != 0u) {
                    precise float v = d * float(dot) + m * float(xsum);
                    acc[i * TN + tt] += v;
                } else {
                    precise float v = d * float(dot - (1 << (BITS - 1)) * xsum);
                    acc[i * TN + tt] += v;
                }
#else
                acc[i * TN + tt] += dot;
#endif
#else /* ACT_FP8: each product of two e4m3 values is exact in f32 */
                const uint xa = (t * pc.cols + c0) >> 2;
                float s = 0.0;
                [[unroll]] for (int k = 0; k < 8; k++) {
                    const uint xw = XQ[xa + uint(k)];
                    [[unroll]] for (int i2 = 0; i2 < 4; i2++)
                        s += w[4 * k + i2] * qe4m3((xw >> (8 * i2)) & 0xffu);
                }
                acc[i * TN + tt] += s;
#endif
            }
        }
    }

    /* tree reduction over the workgroup; slot k of every thread lies at red[k * WG + tid] */
    [[unroll]] for (int k = 0; k < RM * TN; k++)
        red[uint(k) * WG + tid] = acc[k];
    barrier();
    for (uint s = WG >> 1; s > 0u; s >>= 1) {
        if (tid < s)
            [[unroll]] for (int k = 0; k < RM * TN; k++)
                red[uint(k) * WG + tid] += red[uint(k) * WG + tid + s];
        barrier();
    }
    if (tid < uint(RM * TN)) {
        const uint r = rb + tid / uint(TN), t = tb + tid % uint(TN);
        if (r < pc.rows && t < pc.n) {
            const ACC tot = red[tid * WG];
            precise float y;
#if defined(GROUPED) && defined(ACT_F32)
            y = tot;
#elif defined(GROUPED)
            y = tot * XS[t];
#elif defined(ACT_F32)
            y = S[pc.srow0 + r] * tot;
#else
            y = S[pc.srow0 + r] * XS[t] * float(tot);
#endif
            Y[(pc.t0 + t) * pc.ldy + pc.row0 + r] = y;
        }
    }
}
