#version 450
// Element-wise ops on a (count floats) and b: OP (constant 1) 0: a[i] += b[i] (residual);
// 1: a[i] = silu(a[i]) * b[i] (SwiGLU); 2: a[i] += b[i % d] (bias per row of d).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;
layout(std430, binding = 0) buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(push_constant) uniform P { uint count, d; } p;

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += gl_NumWorkGroups.x * gl_WorkGroupSize.x) {
        if (OP == 0u) {
            a[i] += b[i];
        } else if (OP == 1u) {
            float v = a[i];
            a[i] = v / (1.0 + exp(-v)) * b[i];
        } else {
            a[i] += b[i % p.d];
        }
    }
}
