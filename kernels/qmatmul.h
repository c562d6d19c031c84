/* qmatmul: y = x W^T for every weight format in qtensor.h, through the row kernels of the
 * kernel table in force (kernels/dispatch.h: chosen once, or forced by --isa).
 *
 *     struct qb_qtensor w;  ... quantized by kernels/quantize.h ...
 *     qb_qmatmul(y, x, n, &w, QB_ACT_I8);   // y (n, w.rows) = x (n, w.cols) . W^T
 *
 * For QB_ACT_I8 / QB_ACT_FP8 the activations are quantized once per call, per token (row of
 * x), before any weight row is touched. Threads (OpenMP) split weight rows. */
#ifndef QB_QMATMUL_H
#define QB_QMATMUL_H

#include "kernels/dispatch.h"
#include "kernels/qtensor.h"

#include <stdint.h>

/* Activations as a kernel sees them. */
struct qb_qact {
    enum qb_act act;
    int64_t n, cols;     /* n tokens of cols values */
    const float *xf;     /* (n, cols) f32: always set */
    const int8_t *xq;    /* (n, cols) ACT_I8: int8 codes, x ~ xscale[t] * xq */
    const uint8_t *x8;   /* (n, cols) ACT_FP8: e4m3 codes, x ~ xscale[t] * e4m3(x8) */
    const float *xscale; /* (n) ACT_I8 / ACT_FP8; ACT_F32 with integer weights: of x16 */
    const int32_t *xsum; /* (n, cols/32) ACT_I8: sum of xq over each 32-value sub-block;
                            ACT_F32 with integer weights: the same sums of x16 */
    const int16_t *x16;  /* (n, cols) ACT_F32 with I8/I4/I3/I2 weights: x ~ xscale[t] * x16,
                            16-bit per-token codes for the SIMD kernels (qb_quantize_act_i16);
                            the _ref kernels read xf */
};

/* Is this (format, activation) pair a config qbrief runs? */
int qb_qmatmul_supported(enum qb_fmt f, enum qb_act a);

/* y (n, w->rows) = x (n, w->cols) . W^T. QB_EINVAL for an unsupported pair or cols that
 * the format cannot take; QB_ENOMEM when the activation scratch cannot be allocated. */
int qb_qmatmul(float *y, const float *x, int64_t n, const struct qb_qtensor *w, enum qb_act act);

/* The same with a forced kernel table (tests compare ISAs against the reference). */
int qb_qmatmul_with(const struct qb_qkern_table *k, float *y, const float *x, int64_t n,
                    const struct qb_qtensor *w, enum qb_act act);

/* The row kernels of the scalar reference, and of an instruction set ("ref", "avx2",
 * "avx512"; an unknown name gives the reference): qb_kernels_for(isa)->qdot. */
const struct qb_qkern_table *qb_qkern_ref(void);
const struct qb_qkern_table *qb_qkern_for(const char *isa);

/* Per-token activation quantization (reference versions; also used by the SIMD paths). */
void qb_quantize_act_i8(const float *x, int64_t n, int64_t cols, int8_t *xq, float *scale,
                        int32_t *xsum);
void qb_quantize_act_fp8(const float *x, int64_t n, int64_t cols, uint8_t *x8, float *scale);
/* 16-bit per-token codes: scale = max|x| / 32767, x16 = round-half-even(x / scale); xsum as for
 * int8 (sums over each full 32-value block; may be NULL). The SIMD integer-weight kernels use
 * them for ACT_F32 ("A16": every x within scale/2 = max|x| * 2^-16 of its value). */
void qb_quantize_act_i16(const float *x, int64_t n, int64_t cols, int16_t *x16, float *scale,
                         int32_t *xsum);

#endif
