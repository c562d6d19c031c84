#version 450
// Rotates n tokens of n_heads heads (hd each) of x by positions pos .. pos+n-1; cs holds, per
// position, cos (hd/2) then sin (hd/2), computed on the host as the CPU backend does.
// half 0: pairs (2i, 2i+1); half 1: pairs (i, i + hd/2).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer CS { float cs[]; };
layout(push_constant) uniform P { uint n, n_heads, hd, pos, half_style; } p;

void main()
{
    const uint hh = p.hd / 2u, total = p.n * p.n_heads * hh;
    for (uint j = gl_GlobalInvocationID.x; j < total; j += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
        uint i = j % hh, h = (j / hh) % p.n_heads, t = j / (hh * p.n_heads);
        float c = cs[(p.pos + t) * p.hd + i], s = cs[(p.pos + t) * p.hd + hh + i];
        uint base = (t * p.n_heads + h) * p.hd;
        uint ia = p.half_style != 0u ? base + i : base + 2u * i;
        uint ib = p.half_style != 0u ? base + i + hh : base + 2u * i + 1u;
        float a = x[ia], b = x[ib];
        x[ia] = a * c - b * s;
        x[ib] = a * s + b * c;
    }
}
