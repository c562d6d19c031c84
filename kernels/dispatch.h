/* dispatch: the kernel table. Which instruction set every SIMD kernel runs on (qmatmul's row
 * kernels, gptq's quad_form), resolved once into a table of function pointers: at the first
 * use from cpuid, or when --isa calls qb_kernels_init. Callers go through the table per row
 * block or per group, never per element, and pay no lookup per call (an atomic load).
 *
 *     qb_kernels_init(NULL);          // the best this CPU supports (also done lazily)
 *     qb_kernels_init("ref");         // force the scalar reference kernels (--isa ref)
 *     const struct qb_kernels *k = qb_kernels();
 *     k->qdot.fn[QB_FMT_I4][QB_ACT_F32](w, r0, r1, &x, y, ldy);   // what qb_qmatmul does
 *     printf("%s\n", k->isa);
 *
 * QB_ISA_MAX=ref|avx2|avx512 in the environment makes the CPU look as if it had at most that
 * instruction set: nothing above it is chosen, forced or tested (the kernel tests report those
 * variants as skipped, as on an older CPU). It is read once, at the first use.
 *
 * The tables are built by registration hooks, one per kernel family and instruction set
 * (kernels/qmatmul_*_ref.c, kernels/quad_form_ref.c, kernels/x86/): each starts from the table
 * below it and overrides what it implements. */
#ifndef QB_DISPATCH_H
#define QB_DISPATCH_H

#include "kernels/qtensor.h"

#include <stdint.h>

enum qb_isa {
    QB_ISA_REF,    /* the scalar _ref kernels: any CPU */
    QB_ISA_AVX2,   /* AVX2 + FMA (+ F16C) */
    QB_ISA_AVX512, /* AVX-512 F, BW and VL on top of AVX2 */
    QB_ISA_COUNT
};

struct qb_qact; /* kernels/qmatmul.h */

/* qmatmul's row kernel: y[t * ldy + r] for tokens t in [0, x->n) and rows r in [r0, r1). */
typedef void (*qb_qdot_fn)(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                           const struct qb_qact *x, float *y, int64_t ldy);

/* gptq's r^T H r for a symmetric H (n, n) at h with leading dimension ld, read from its
 * diagonal and lower triangle. Every variant returns the _ref's double bit for bit. */
typedef double (*qb_quad_form_fn)(const double *h, int64_t ld, const double *r, int n);

/* qb_quantize_act_i8's signature: a faster version, bit for bit the same codes and sums. */
typedef void (*qb_quant_i8_fn)(const float *x, int64_t n, int64_t cols, int8_t *xq, float *scale,
                               int32_t *xsum);

/* One row kernel per (format, activation mode); NULL where the pair is not supported.
 * quant_i8: the int8 activation quantizer of this set (NULL: qb_quantize_act_i8). */
struct qb_qkern_table {
    qb_qdot_fn fn[QB_FMT_COUNT][3];
    qb_quant_i8_fn quant_i8;
};

struct qb_kernels {
    const char *isa; /* "ref", "avx2", "avx512" */
    enum qb_isa id;
    struct qb_qkern_table qdot;
    qb_quad_form_fn quad_form;
};

/* The table in force: chosen on first use (as qb_kernels_init(NULL)) if nothing chose it yet.
 * Thread-safe; the pointer stays valid for the life of the process. */
const struct qb_kernels *qb_kernels(void);

/* Chooses the table: isa NULL picks the best this CPU supports; otherwise "ref", "avx2" or
 * "avx512" (QB_EUNSUP when the CPU lacks it, QB_EINVAL when unknown; the choice in force is
 * then left alone). QB_EINVAL too when QB_ISA_MAX holds something else than those three. */
int qb_kernels_init(const char *isa);

/* The table of one instruction set, whether the CPU runs it or not (tests compare them):
 * slots this CPU cannot run keep the kernels of the set below. NULL for an unknown name. */
const struct qb_kernels *qb_kernels_for(const char *isa);

/* Does this CPU run the instruction set, QB_ISA_MAX considered? 0 for an unknown name. */
int qb_kernels_cpu_has(const char *isa);

/* Registration hooks (each fills the slots it implements; the x86 ones also check the CPU
 * themselves, so a table never holds a kernel the CPU cannot run). */
void qb_qkern_register_int_ref(struct qb_qkern_table *t);
void qb_qkern_register_float_ref(struct qb_qkern_table *t);
void qb_qkern_register_int_avx2(struct qb_qkern_table *t);
void qb_qkern_register_int_avx512(struct qb_qkern_table *t);
void qb_qkern_register_int_avx512_novnni(struct qb_qkern_table *t); /* tests: as without VNNI */
void qb_quantize_act_i8_avx512(const float *x, int64_t n, int64_t cols, int8_t *xq, float *scale,
                               int32_t *xsum);
void qb_qkern_register_float_avx2(struct qb_qkern_table *t);
void qb_qkern_register_float_avx512(struct qb_qkern_table *t);
double qb_quad_form_ref(const double *h, int64_t ld, const double *r, int n);
double qb_quad_form_avx2(const double *h, int64_t ld, const double *r, int n);
double qb_quad_form_avx512(const double *h, int64_t ld, const double *r, int n);

#endif
