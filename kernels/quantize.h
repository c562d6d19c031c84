/* quantize: round-to-nearest quantization of f32 weight matrices into every format of
 * qtensor.h, with an optional per-group clipping search, and the reference dequantizer that
 * is the oracle for every kernel.
 *
 *     struct qb_qtensor t;
 *     struct qb_quant_opts o = {.clip = -1};            // -1: the format's default
 *     qb_quantize(w, rows, cols, QB_FMT_I4, 32, 1, &o, &t);
 *     qb_dequantize_row(&t, r, row);                  // row (cols) ~ w[r]
 *     qb_qtensor_release(&t);
 */
#ifndef QB_QUANTIZE_H
#define QB_QUANTIZE_H

#include "kernels/qtensor.h"

struct qb_quant_opts {
    /* Per-group clipping search for I4/I3/I2: shrink each group's range over a grid of
     * factors and keep the one with the least squared error. -1: default (on for I3/I2,
     * off otherwise), 0 off, 1 on. */
    int clip;
};

/* Quantizes w (rows, cols) into out (owned). QB_EINVAL when cols does not suit the format
 * (group-wise formats need cols % group == 0; group must be 32, 64 or 128). QB_ERANGE when a
 * weight is not finite or does not fit the format (f16, or f16 group headers). */
int qb_quantize(const float *w, int64_t rows, int64_t cols, enum qb_fmt fmt, int group, int asym,
                const struct qb_quant_opts *opts, struct qb_qtensor *out);

/* A QB_FMT_F32 tensor that borrows w (no copy). */
void qb_qtensor_wrap_f32(const float *w, int64_t rows, int64_t cols, struct qb_qtensor *out);

/* Reference dequantization of one row into out (cols floats). */
void qb_dequantize_row(const struct qb_qtensor *t, int64_t row, float *out);

#endif
