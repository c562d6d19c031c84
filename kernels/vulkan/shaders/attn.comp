#version 450
// Causal grouped-query attention over a layer's KV cache: one workgroup per (head, token).
// kc and vc are (max_ctx, kvd) rows per position. Token t at position pos + t attends to
// positions 0 .. pos + t (window > 0: only the last window of them, from
// max(0, pos + t + 1 - window)): scores q . k_p (in the order of the head's dimensions) times scale,
// softmax with the maximum subtracted, weights times values summed, divided by the weights'
// sum once at the end. Scores are held S (constant 1) at a time in shared memory; past S
// positions the blocks are combined with a running maximum (exact rescaling by exp).
// Constants: 0 = workgroup size, 1 = S, 2 = HD (most head dims).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint S = 1024;
layout(constant_id = 2) const uint HD = 128;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float kc[]; };
layout(std430, binding = 2) readonly buffer V { float vc[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n, pos, n_heads, group, hd, kvd, qd; float scale; uint window; } p;

shared float sc[S];
shared float qs[HD];
shared float acc[HD];
shared float red[gl_WorkGroupSize.x];

float reduce_max(float v)
{
    const uint lid = gl_LocalInvocationID.x;
    red[lid] = v;
    barrier();
    for (uint h = gl_WorkGroupSize.x / 2u; h > 0u; h /= 2u) {
        if (lid < h)
            red[lid] = max(red[lid], red[lid + h]);
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

float reduce_sum(float v)
{
    const uint lid = gl_LocalInvocationID.x;
    red[lid] = v;
    barrier();
    for (uint h = gl_WorkGroupSize.x / 2u; h > 0u; h /= 2u) {
        if (lid < h)
            red[lid] += red[lid + h];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    const uint kvh = h / p.group, end = p.pos + t + 1u;
    const uint lo = p.window > 0u && end > p.window ? end - p.window : 0u;
    const uint qoff = t * p.qd + h * p.hd, koff = kvh * p.hd;
    for (uint i = lid; i < p.hd; i += wg) {
        qs[i] = q[qoff + i];
        acc[i] = 0.0;
    }
    barrier();
    float m = -1.0 / 0.0, l = 0.0;
    for (uint b0 = lo; b0 < end; b0 += S) {
        uint cnt = min(S, end - b0);
        float bm = -1.0 / 0.0;
        for (uint j = lid; j < cnt; j += wg) {
            uint kb = (b0 + j) * p.kvd + koff;
            float s = 0.0;
            for (uint i = 0u; i < p.hd; i++)
                s += qs[i] * kc[kb + i];
            s *= p.scale;
            sc[j] = s;
            bm = max(bm, s);
        }
        bm = reduce_max(bm);
        float mn = max(m, bm);
        float corr = b0 == lo ? 0.0 : exp(m - mn);
        float ls = 0.0;
        for (uint j = lid; j < cnt; j += wg) {
            float e = exp(sc[j] - mn);
            sc[j] = e;
            ls += e;
        }
        l = l * corr + reduce_sum(ls); /* reduce_sum's barriers also publish sc */
        for (uint i = lid; i < p.hd; i += wg) {
            float a = 0.0;
            for (uint j = 0u; j < cnt; j++)
                a += sc[j] * vc[(b0 + j) * p.kvd + koff + i];
            acc[i] = acc[i] * corr + a;
        }
        m = mn;
        barrier();
    }
    for (uint i = lid; i < p.hd; i += wg)
        o[qoff + i] = acc[i] / l;
}
