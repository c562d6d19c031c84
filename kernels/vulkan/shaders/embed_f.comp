#version 450
// x (n, d) = rows tok[0..n) of a float-format table, for the table rows [row0, row0 + rows)
// that the bound chunk holds (one dispatch per chunk; other tokens are left alone).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Wt { uint W[]; };
layout(std430, binding = 1) readonly buffer Tok { int tok[]; };
layout(std430, binding = 2) writeonly buffer X { float x[]; };
layout(push_constant) uniform P { uint n, d, cols, row0, rows; } p;
#include "float_w.glsl"

void main()
{
    uint t = gl_WorkGroupID.y;
    uint id = uint(tok[t]) - p.row0;
    if (uint(tok[t]) < p.row0 || id >= p.rows)
        return;
    for (uint i = gl_GlobalInvocationID.x; i < p.d; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x)
        x[t * p.d + i] = wload(id * p.cols + i);
}
