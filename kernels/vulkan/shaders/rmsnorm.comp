#version 450
// y (n, d) = x (n, d) / sqrt(mean(x^2) + eps) * w (d), one workgroup per row; y may be x.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) readonly buffer Wb { float w[]; };
layout(push_constant) uniform P { uint n, d; float eps; } p;

shared float red[gl_WorkGroupSize.x];

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    for (uint t = gl_WorkGroupID.x; t < p.n; t += gl_NumWorkGroups.x) {
        float s = 0.0;
        for (uint i = lid; i < p.d; i += wg)
            s += x[t * p.d + i] * x[t * p.d + i];
        red[lid] = s;
        barrier();
        for (uint h = wg / 2u; h > 0u; h /= 2u) {
            if (lid < h)
                red[lid] += red[lid + h];
            barrier();
        }
        float ss = 1.0 / sqrt(red[0] / float(p.d) + p.eps);
        barrier(); /* every thread has ss before red is reused, and x is read before y is written */
        for (uint i = lid; i < p.d; i += wg)
            y[t * p.d + i] = w[i] * (ss * x[t * p.d + i]);
        barrier();
    }
}
