/* dequant: scalar reference conversions of F16, BF16, Q8_0 and Q4_0 to f32 (see dequant.h).
 * Must agree with ggml's dequantize_row_q8_0_ref / dequantize_row_q4_0_ref. */
#include "kernels/dequant.h"

#include "kernels/half.h"

#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dequant reads little-endian file bytes directly; port the loads for big-endian hosts"
#endif

static inline uint16_t load_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void qb_dequant_f16(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++)
        dst[i] = qb_f16_to_f32(load_u16(p + 2 * i));
}

void qb_dequant_bf16(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++)
        dst[i] = qb_bf16_to_f32(load_u16(p + 2 * i));
}

void qb_dequant_q8_0(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    size_t nb = n / QB_QK8_0;
    for (size_t b = 0; b < nb; b++, p += sizeof(struct qb_block_q8_0), dst += QB_QK8_0) {
        float d = qb_f16_to_f32(load_u16(p));
        const int8_t *qs = (const int8_t *)(p + 2);
        for (int j = 0; j < QB_QK8_0; j++)
            dst[j] = (float)qs[j] * d;
    }
}

void qb_dequant_q4_0(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    size_t nb = n / QB_QK4_0;
    for (size_t b = 0; b < nb; b++, p += sizeof(struct qb_block_q4_0), dst += QB_QK4_0) {
        float d = qb_f16_to_f32(load_u16(p));
        const unsigned char *qs = p + 2;
        for (int j = 0; j < QB_QK4_0 / 2; j++) {
            dst[j] = (float)((qs[j] & 0x0f) - 8) * d;
            dst[j + QB_QK4_0 / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

void qb_dequant_q4_1(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    size_t nb = n / 32;
    for (size_t b = 0; b < nb; b++, p += sizeof(struct qb_block_q4_1), dst += 32) {
        float d = qb_f16_to_f32(load_u16(p)), m = qb_f16_to_f32(load_u16(p + 2));
        const unsigned char *qs = p + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(qs[j] & 0x0f) * d + m;
            dst[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}
