/* dequant: the ggml block layouts qbrief reads from GGUF files (Q8_0, Q4_0) and the scalar
 * reference conversions of Q8_0, Q4_0, F16 and BF16 to f32. Layouts and arithmetic match
 * ggml's ggml-common.h and dequantize_row_*_ref in ggml-quants.c bit for bit.
 *
 *     float *w = malloc(n * sizeof *w);
 *     qb_dequant_q4_0(tensor_bytes, w, n);     // n a multiple of QB_QK4_0
 *
 * Sources are raw file bytes: they need not be aligned, and are read as little-endian.
 * These are the scalar oracles; faster versions must match them exactly. */
#ifndef QB_DEQUANT_H
#define QB_DEQUANT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define QB_QK8_0 32
#define QB_QK4_0 32

/* Q8_0: x[i] = d * qs[i] */
struct qb_block_q8_0 {
    uint16_t d; /* scale, IEEE binary16 */
    int8_t qs[QB_QK8_0];
};
static_assert(sizeof(struct qb_block_q8_0) == 34, "q8_0 block must be 34 bytes, as in ggml");

/* Q4_0: x[i] = d * ((qs[i] & 15) - 8) for i < 16, d * ((qs[i-16] >> 4) - 8) for i >= 16 */
struct qb_block_q4_0 {
    uint16_t d;               /* scale, IEEE binary16 */
    uint8_t qs[QB_QK4_0 / 2]; /* low nibbles: elements 0..15, high nibbles: 16..31 */
};
static_assert(sizeof(struct qb_block_q4_0) == 18, "q4_0 block must be 18 bytes, as in ggml");

/* Q4_1: x[i] = d * q[i] + m, the nibbles laid out as Q4_0's */
struct qb_block_q4_1 {
    uint16_t d, m;            /* scale and minimum, IEEE binary16 */
    uint8_t qs[QB_QK4_0 / 2]; /* low nibbles: elements 0..15, high nibbles: 16..31 */
};
static_assert(sizeof(struct qb_block_q4_1) == 20, "q4_1 block must be 20 bytes, as in ggml");

/* Each converts n elements from src into dst (n floats). For Q8_0 and Q4_0, n must be a
 * multiple of 32; a partial trailing block is not read and its dst elements are untouched. */
void qb_dequant_f16(const void *src, float *dst, size_t n);
void qb_dequant_bf16(const void *src, float *dst, size_t n);
void qb_dequant_q8_0(const void *src, float *dst, size_t n);
void qb_dequant_q4_0(const void *src, float *dst, size_t n);
void qb_dequant_q4_1(const void *src, float *dst, size_t n);

#endif
