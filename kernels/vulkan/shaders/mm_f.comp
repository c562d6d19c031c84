#version 450
// y (n, ldy), columns [row0, row0 + rows) = x (n, k) . W^T, tiled for prefill and batches:
// a workgroup of TS x TS threads computes a TS-token by TS-row tile, staging TS inputs of x
// and of W at a time in shared memory; each output sums its inputs in order.
// Constants: 0 = TS (workgroup x), 1 = FMT (float_w.glsl), 2 = TS (workgroup y).
layout(local_size_x_id = 0, local_size_y_id = 2) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) readonly buffer Wt { uint W[]; };
layout(push_constant) uniform P { uint n, k, cols, row0, rows, ldy; } p;
#include "float_w.glsl"

const uint TS = gl_WorkGroupSize.x;
shared float xs[TS][TS + 1];
shared float ws[TS][TS + 1];

void main()
{
    const uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    const uint r0 = gl_WorkGroupID.x * TS, t0 = gl_WorkGroupID.y * TS;
    float s = 0.0;
    for (uint k0 = 0u; k0 < p.k; k0 += TS) {
        uint i = k0 + lx;
        xs[ly][lx] = (t0 + ly < p.n && i < p.k) ? x[(t0 + ly) * p.k + i] : 0.0;
        ws[ly][lx] = (r0 + ly < p.rows && i < p.k) ? wload((r0 + ly) * p.cols + i) : 0.0;
        barrier();
        uint m = min(TS, p.k - k0);
        for (uint j = 0u; j < m; j++)
            s += xs[ly][j] * ws[lx][j];
        barrier();
    }
    if (t0 + ly < p.n && r0 + lx < p.rows)
        y[(t0 + ly) * p.ldy + p.row0 + r0 + lx] = s;
}
