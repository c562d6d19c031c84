#version 450
// y (n, ldy), columns [row0, row0 + rows) = x (n, k) . W^T for the rows of a float-format
// matrix the bound chunk holds: one workgroup per (row, token), threads split the k inputs
// and add their partial sums by a shared-memory tree (the workgroup size is a power of two).
// mv_f_sg.comp is the subgroup variant.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) readonly buffer Wt { uint W[]; };
layout(push_constant) uniform P { uint n, k, cols, row0, rows, ldy; } p;
#include "float_w.glsl"

shared float red[gl_WorkGroupSize.x];

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    for (uint r = gl_WorkGroupID.x; r < p.rows; r += gl_NumWorkGroups.x) {
        for (uint t = gl_WorkGroupID.y; t < p.n; t += gl_NumWorkGroups.y) {
            float s = 0.0;
            for (uint i = lid; i < p.k; i += wg)
                s += wload(r * p.cols + i) * x[t * p.k + i];
            red[lid] = s;
            barrier();
            for (uint h = wg / 2u; h > 0u; h /= 2u) {
                if (lid < h)
                    red[lid] += red[lid + h];
                barrier();
            }
            if (lid == 0u)
                y[t * p.ldy + p.row0 + r] = red[0];
            barrier();
        }
    }
}
