// Decoding one weight of a float-format matrix stored as 32-bit words W[] (declared by the
// includer): FMT (specialization constant 1) is 0 f32, 1 f16, 2 bf16; e is the element index
// from the start of the bound chunk. Every format decodes exactly to f32.
layout(constant_id = 1) const uint FMT = 0;

float wload(uint e)
{
    if (FMT == 0u)
        return uintBitsToFloat(W[e]);
    uint h = (W[e >> 1] >> ((e & 1u) * 16u)) & 0xffffu;
    if (FMT == 1u)
        return unpackHalf2x16(h).x;
    return uintBitsToFloat(h << 16);
}
