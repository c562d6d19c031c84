/* qmatmul: y = x W^T for every weight format in qtensor.h, with the kernel for this CPU
 * chosen once at start-up (qb_kernels_init in matmul.h picks the instruction set).
 *
 *     struct qb_qtensor w;  ... quantized by kernels/quantize.h ...
 *     qb_qmatmul(y, x, n, &w, QB_ACT_I8);   // y (n, w.rows) = x (n, w.cols) . W^T
 *
 * For QB_ACT_I8 / QB_ACT_FP8 the activations are quantized once per call, per token (row of
 * x), before any weight row is touched. Threads (OpenMP) split weight rows. */
#ifndef QB_QMATMUL_H
#define QB_QMATMUL_H

#include "kernels/qtensor.h"

#include <stdint.h>

/* Activations as a kernel sees them. */
struct qb_qact {
    enum qb_act act;
    int64_t n, cols;   /* n tokens of cols values */
    const float *xf;   /* (n, cols) f32: always set */
    const int8_t *xq;  /* (n, cols) ACT_I8: int8 codes, x ~ xscale[t] * xq */
    const uint8_t *x8; /* (n, cols) ACT_FP8: e4m3 codes, x ~ xscale[t] * e4m3(x8) */
    const float *xscale; /* (n) ACT_I8 / ACT_FP8; ACT_F32 with integer weights: of x16 */
    const int32_t *xsum; /* (n, cols/32) ACT_I8: sum of xq over each 32-value sub-block;
                            ACT_F32 with integer weights: the same sums of x16 */
    const int16_t *x16;  /* (n, cols) ACT_F32 with I8/I4/I3/I2 weights: x ~ xscale[t] * x16,
                            16-bit per-token codes for the SIMD kernels (qb_quantize_act_i16);
                            the _ref kernels read xf */
};

/* Computes y[t * ldy + r] for tokens t in [0, x->n) and weight rows r in [r0, r1). */
typedef void (*qb_qdot_fn)(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                           const struct qb_qact *x, float *y, int64_t ldy);

/* One kernel per (format, activation mode); NULL where the pair is not supported. */
struct qb_qkern_table {
    qb_qdot_fn fn[QB_FMT_COUNT][3];
};

/* Is this (format, activation) pair a config qbrief runs? */
int qb_qmatmul_supported(enum qb_fmt f, enum qb_act a);

/* y (n, w->rows) = x (n, w->cols) . W^T. QB_EINVAL for an unsupported pair or cols that
 * the format cannot take; QB_ENOMEM when the activation scratch cannot be allocated. */
int qb_qmatmul(float *y, const float *x, int64_t n, const struct qb_qtensor *w, enum qb_act act);

/* The same with a forced kernel table (tests compare ISAs against the reference). */
int qb_qmatmul_with(const struct qb_qkern_table *k, float *y, const float *x, int64_t n,
                    const struct qb_qtensor *w, enum qb_act act);

/* Kernel tables: the scalar reference, and the best for an instruction set ("ref", "avx2",
 * "avx512"; each starts from the reference and overrides what it implements). */
const struct qb_qkern_table *qb_qkern_ref(void);
const struct qb_qkern_table *qb_qkern_for(const char *isa);
const struct qb_qkern_table *qb_qkern_active(void);

/* Per-token activation quantization (reference versions; also used by the SIMD paths). */
void qb_quantize_act_i8(const float *x, int64_t n, int64_t cols, int8_t *xq, float *scale,
                        int32_t *xsum);
void qb_quantize_act_fp8(const float *x, int64_t n, int64_t cols, uint8_t *x8, float *scale);
/* 16-bit per-token codes: scale = max|x| / 32767, x16 = round-half-even(x / scale); xsum as for
 * int8 (sums over each full 32-value block; may be NULL). The SIMD integer-weight kernels use
 * them for ACT_F32 ("A16": every x within scale/2 = max|x| * 2^-16 of its value). */
void qb_quantize_act_i16(const float *x, int64_t n, int64_t cols, int16_t *x16, float *scale,
                         int32_t *xsum);

/* Registration hooks, one per kernel family and instruction set: each fills the slots it
 * implements. Defined in kernels/qmatmul_{int,float}_ref.c and
 * kernels/x86/qmatmul_{int,float}_{avx2,avx512}.c. */
void qb_qkern_register_int_ref(struct qb_qkern_table *t);
void qb_qkern_register_float_ref(struct qb_qkern_table *t);
void qb_qkern_register_int_avx2(struct qb_qkern_table *t);
void qb_qkern_register_int_avx512(struct qb_qkern_table *t);
void qb_qkern_register_int_avx512_novnni(struct qb_qkern_table *t); /* tests: as without VNNI */
void qb_qkern_register_float_avx2(struct qb_qkern_table *t);
void qb_qkern_register_float_avx512(struct qb_qkern_table *t);

#endif
