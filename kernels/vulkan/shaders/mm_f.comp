#version 450
// y (n, ldy), columns [row0, row0 + rows) = x (n, k) . W^T, tiled for prefill and batches:
// a workgroup of TS x TS threads computes a tile of BT = 4 TS tokens by BT rows, each thread
// 4 x 4 outputs (tokens ly + i TS, rows lx + j TS) held in registers, staging TS inputs of x
// and of W at a time in shared memory; each output sums its inputs in order.
// Constants: 0 = TS (workgroup x), 1 = FMT (float_w.glsl), 2 = TS (workgroup y).
layout(local_size_x_id = 0, local_size_y_id = 2) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) readonly buffer Wt { uint W[]; };
layout(push_constant) uniform P { uint n, k, cols, row0, rows, ldy; } p;
#include "float_w.glsl"

const uint TS = gl_WorkGroupSize.x;
const uint R = 4;
const uint BT = TS * R;
shared float xs[BT][TS + 1];
shared float ws[BT][TS + 1];

void main()
{
    const uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y, lid = ly * TS + lx;
    const uint r0 = gl_WorkGroupID.x * BT, t0 = gl_WorkGroupID.y * BT;
    float acc[R][R];
    for (uint i = 0u; i < R; i++)
        for (uint j = 0u; j < R; j++)
            acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < p.k; k0 += TS) {
        for (uint e = lid; e < BT * TS; e += TS * TS) {
            uint row = e / TS, col = e % TS, i = k0 + col;
            xs[row][col] = (t0 + row < p.n && i < p.k) ? x[(t0 + row) * p.k + i] : 0.0;
            ws[row][col] = (r0 + row < p.rows && i < p.k) ? wload((r0 + row) * p.cols + i) : 0.0;
        }
        barrier();
        uint m = min(TS, p.k - k0);
        for (uint c = 0u; c < m; c++) {
            float a[R], b[R];
            for (uint i = 0u; i < R; i++) {
                a[i] = xs[ly + i * TS][c];
                b[i] = ws[lx + i * TS][c];
            }
            for (uint i = 0u; i < R; i++)
                for (uint j = 0u; j < R; j++)
                    acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    for (uint i = 0u; i < R; i++)
        for (uint j = 0u; j < R; j++) {
            uint t = t0 + ly + i * TS, r = r0 + lx + j * TS;
            if (t < p.n && r < p.rows)
                y[t * p.ldy + p.row0 + r] = acc[i][j];
        }
}
