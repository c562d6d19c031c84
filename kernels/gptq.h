/* gptq: GPTQ quantization of one weight matrix given the second moment of its inputs
 * (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for
 * Generative Pre-trained Transformers", 2022, arXiv 2210.17323). The output is a qtensor in
 * exactly the formats and layouts round-to-nearest writes (kernels/quantize.h), so every
 * kernel runs it unchanged.
 *
 *     // h (cols, cols) = 2/n sum_t x_t x_t^T over n calibration inputs x_t (cols)
 *     struct qb_gptq_opts o = QB_GPTQ_OPTS_INIT;       // damp 0.01, no act-order, clip default
 *     struct qb_qtensor t;
 *     if ((rc = qb_gptq_quantize(w, rows, cols, h, QB_FMT_I4, 32, 1, &o, &t)) < 0) ...;
 *     ... qb_qmatmul(y, x, n, &t, QB_ACT_F32) ...
 *     qb_qtensor_release(&t);
 *
 * The algorithm, per matrix W (rows, cols) with H (cols, cols):
 *   - dead inputs (H_ii == 0: the input is always zero) get H_ii = 1 and zero weights;
 *   - damping: H += damp * mean(diag H) * I (damp 0.01 by default; multiplied by 10 and
 *     retried, up to 1, when H is still not positive definite);
 *   - U = the upper Cholesky factor of H^-1 (H^-1 = U^T U);
 *   - columns in blocks of 128; column i of every row is rounded to the grid, the error
 *     e = (w_i - q_i) / U_ii is pushed onto the later columns of the block
 *     (w_j -= e U_ij), and once the block is done onto every later column in one pass;
 *   - group-wise formats: a group's scale and minimum are chosen when its first column is
 *     reached, from the weights as updated so far, by the same rules as RTN (f16 headers,
 *     signed-max symmetric scale, min/max asymmetric, and the same clipping search);
 *     int8: one symmetric scale per row, max|w| / 127 of the row before any update;
 *   - act-order (optional): columns are processed by decreasing H_ii ("static groups": every
 *     group's header is computed up front from the original weights, so the groups stay the
 *     contiguous column ranges the layout needs); codes are written back in the original
 *     column order.
 * Rows are independent given U, so threads take tiles of rows; each tile reads U once per
 * block. With H = I (uncorrelated inputs) nothing propagates and the result is bit for bit
 * RTN's. */
#ifndef QB_GPTQ_H
#define QB_GPTQ_H

#include "kernels/qtensor.h"

#include <stdint.h>

struct qb_gptq_opts {
    double damp;       /* fraction of the mean diagonal added to H; <= 0 means 0.01 */
    int act_order;     /* 1: process columns by decreasing H_ii, static groups */
    int clip;          /* group header clipping search: -1 default (on for I3/I2), 0 off, 1 on */
    int clip_weighted; /* 1: the search weighs column i's squared error by 1 / U_ii^2 */
};
#define QB_GPTQ_OPTS_INIT                                                                          \
    {                                                                                              \
        0.01, 0, -1, 0                                                                             \
    }

/* Quantizes w (rows, cols) into out (owned) for fmt I8, I4, I3 or I2 (group 32/64/128
 * dividing cols; asym as in quantize.h). h (cols, cols) is read, not modified. QB_EINVAL
 * for another format or bad shapes, QB_ERANGE for a non-finite weight or H entry, or when H
 * stays indefinite at the largest damping. */
int qb_gptq_quantize(const float *w, int64_t rows, int64_t cols, const double *h, enum qb_fmt fmt,
                     int group, int asym, const struct qb_gptq_opts *opts, struct qb_qtensor *out);

/* Round-to-nearest into I4/I3/I2 whose clipping search (clip: -1 default, 0, 1) scores a
 * group's candidates by the expected output error instead of the plain squared error: with h
 * (cols, cols) = E[x x^T] of the inputs, r^T H_gg r over the group's block (r = w - q); without
 * h, sum_i col_weight[i] r_i^2 (a diagonal H). AWQ's clipping search, with the inputs' second
 * moments standing in for its samples. With h and an asymmetric format, each group's scale
 * and minimum are then refit under r^T H_gg r (least squares with the codes fixed, codes
 * rounded again, kept while the error falls). */
int qb_quantize_weighted(const float *w, int64_t rows, int64_t cols, const float *col_weight,
                         const double *h, enum qb_fmt fmt, int group, int asym, int clip,
                         struct qb_qtensor *out);

/* The pieces, exposed for tests. */

/* u (n, n) = the upper Cholesky factor of (h + damp I)^-1 (lower triangle left zero).
 * QB_ERANGE when h + damp I is not positive definite. */
int qb_gptq_hinv_chol(const double *h, int64_t n, double damp, float *u);

/* perm (n): column indices by decreasing h_ii, ties by index (the act-order). */
void qb_gptq_act_order(const double *h, int64_t n, int64_t *perm);

#endif
