#version 450
// y (n, ldy), columns [row0, row0 + rows) = x (n, k) . W^T for the rows of a float-format
// matrix the bound chunk holds, where the device has subgroup arithmetic: one subgroup per
// (row, token), its lanes splitting the k inputs and adding them with subgroupAdd; no
// shared memory and no barrier. Rows are strided over every subgroup of the grid, so every
// row is covered whatever subgroup size the driver picks.
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) readonly buffer Wt { uint W[]; };
layout(push_constant) uniform P { uint n, k, cols, row0, rows, ldy; } p;
#include "float_w.glsl"

void main()
{
    const uint lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize;
    const uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;
    for (uint r = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; r < p.rows; r += stride) {
        for (uint t = gl_WorkGroupID.y; t < p.n; t += gl_NumWorkGroups.y) {
            float s = 0.0;
            for (uint i = lane; i < p.k; i += sgs)
                s += wload(r * p.cols + i) * x[t * p.k + i];
            s = subgroupAdd(s);
            if (subgroupElect())
                y[t * p.ldy + p.row0 + r] = s;
        }
    }
}
