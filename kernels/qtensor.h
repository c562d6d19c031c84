/* qtensor: the quantized weight formats qbrief measures, their exact storage layout, and the
 * tensor that carries them. One header for the C kernels and (later) kernels/cuda/, so both
 * read the same bytes. Every layout has a _Static_assert on its size.
 *
 * A weight matrix is (rows = out_features, cols = in_features), row-major, as nn.Linear
 * stores it. Each row is packed independently into row_bytes bytes, so threads can split rows
 * and a GEMV streams the matrix once.
 *
 *   QB_FMT_F32      4 bytes per weight
 *   QB_FMT_F16      IEEE binary16 per weight
 *   QB_FMT_BF16     bfloat16 per weight
 *   QB_FMT_E4M3     fp8 e4m3fn (OCP: bias 7, max 448, no inf, S.1111.111 = NaN) per weight,
 *                   times a per-row f32 scale (row_scale)
 *   QB_FMT_E5M2     fp8 e5m2 (IEEE-like: bias 15, max 57344, inf/NaN) per weight, per-row scale
 *   QB_FMT_I8       int8 per weight, symmetric, per-row f32 scale: w = row_scale * q,
 *                   q in [-127, 127]; row_sum holds sum(q) per row (for the u8 x s8 trick)
 *   QB_FMT_I4/I3/I2 group-wise: each row is cols/group groups; each group is a header then
 *                   the group's packed codes, group/32 sub-blocks of 32 weights:
 *                     symmetric:  struct qb_ghdr_sym  {f16 d}        w = d * (q - 2^(b-1))
 *                     asymmetric: struct qb_ghdr_asym {f16 d, f16 m} w = d * q + m
 *                   with q in [0, 2^b - 1]. Sub-block packing of 32 codes (j = 0..31):
 *                     I4: 16 bytes; byte i holds code i (low nibble) and code i+16 (high)
 *                     I3: 8 bytes of low 2 bits, byte i holds codes i, i+8, i+16, i+24 at
 *                         bits 0-1, 2-3, 4-5, 6-7; then 4 bytes (little-endian u32) whose
 *                         bit j is bit 2 of code j
 *                     I2: 8 bytes; byte i holds codes i, i+8, i+16, i+24 at bits 0-1, 2-3,
 *                         4-5, 6-7
 *                   group is 32, 64 or 128 and divides cols.
 *
 * Activations for the *A8 configs are quantized per token (per row of x) at run time, once per
 * matmul: int8 symmetric (scale = max|x| / 127) or fp8 e4m3 (scale = max|x| / 448). */
#ifndef QB_QTENSOR_H
#define QB_QTENSOR_H

#include <stddef.h>
#include <stdint.h>

enum qb_fmt {
    QB_FMT_F32,
    QB_FMT_F16,
    QB_FMT_BF16,
    QB_FMT_E4M3,
    QB_FMT_E5M2,
    QB_FMT_I8,
    QB_FMT_I4,
    QB_FMT_I3,
    QB_FMT_I2,
    QB_FMT_COUNT
};

/* How activations enter the matmul. */
enum qb_act {
    QB_ACT_F32 = 0, /* weight-only: activations stay f32 (the "A16" of W8A16/W4A16 on CPU) */
    QB_ACT_I8 = 1,  /* dynamic per-token int8 (W8A8, W4A8): integer dot products */
    QB_ACT_FP8 = 2, /* dynamic per-token fp8 e4m3 (W8A8-fp8), emulated exactly in f32 */
};

struct qb_ghdr_sym {
    uint16_t d; /* f16 scale */
};
struct qb_ghdr_asym {
    uint16_t d; /* f16 scale */
    uint16_t m; /* f16 minimum (offset) */
};
_Static_assert(sizeof(struct qb_ghdr_sym) == 2, "group header layout");
_Static_assert(sizeof(struct qb_ghdr_asym) == 4, "group header layout");

/* Bytes of packed codes per sub-block of 32 weights. */
#define QB_SUB 32
#define QB_SUB_BYTES_I4 16
#define QB_SUB_BYTES_I3 12
#define QB_SUB_BYTES_I2 8

/* The 32-weight sub-blocks as structs, so layouts are checked by the compiler. */
struct qb_sub_i4 {
    uint8_t qs[16];
};
struct qb_sub_i3 {
    uint8_t ql[8]; /* low 2 bits */
    uint8_t qh[4]; /* bit 2, one per code */
};
struct qb_sub_i2 {
    uint8_t qs[8];
};
_Static_assert(sizeof(struct qb_sub_i4) == QB_SUB_BYTES_I4, "i4 sub-block layout");
_Static_assert(sizeof(struct qb_sub_i3) == QB_SUB_BYTES_I3, "i3 sub-block layout");
_Static_assert(sizeof(struct qb_sub_i2) == QB_SUB_BYTES_I2, "i2 sub-block layout");

/* Padding: a kernel iterates over `cols` inputs, which for the integer formats (and for any
 * format with quantized activations) is a whole number of groups / 32-value sub-blocks. A
 * matrix whose real input count is not (stories260K's 172-wide FFN) is stored with zero
 * weights appended to each row, cols rounded up, and in_cols set to the real count; qb_qmatmul
 * then pads the activations with zeros, so the padding contributes nothing. */
struct qb_qtensor {
    enum qb_fmt fmt;
    int64_t rows, cols;     /* (out_features, in_features as stored, padding included) */
    int group;              /* I4/I3/I2: weights per group (32, 64, 128); 0 otherwise */
    int asym;               /* I4/I3/I2: header has a minimum */
    size_t row_bytes;       /* bytes of one packed row */
    const void *data;       /* rows * row_bytes; 64-byte aligned when owned */
    const float *row_scale; /* (rows) E4M3/E5M2/I8; NULL otherwise */
    const int32_t *row_sum; /* (rows) I8: sum of the codes of each row; NULL otherwise */
    void *owned;            /* freed by qb_qtensor_release (data, scales and sums live here) */
    int64_t in_cols;        /* real in_features when the rows are padded (< cols); 0 = cols */
};

/* Bits per code of each format, and the format's name ("f32", "i4", ...). */
int qb_fmt_bits(enum qb_fmt f);
const char *qb_fmt_name(enum qb_fmt f);

/* Bytes of one packed row of `cols` weights (group and asym only matter for I4/I3/I2). */
size_t qb_fmt_row_bytes(enum qb_fmt f, int64_t cols, int group, int asym);

/* Total bytes the tensor occupies (packed rows plus per-row scales and sums), and
 * bits per real weight = 8 * bytes / (rows * in_cols), padding counted as a cost. */
size_t qb_qtensor_bytes(const struct qb_qtensor *t);
double qb_qtensor_bpw(const struct qb_qtensor *t);

void qb_qtensor_release(struct qb_qtensor *t); /* no-op on a zeroed tensor */

#endif
