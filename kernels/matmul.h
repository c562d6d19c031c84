/* matmul: f32 matrix products for the engine, y = x W^T with W row-major (out, in) as
 * nn.Linear stores it, over a kernel chosen once at start-up from cpuid.
 *
 *     qb_kernels_init(NULL);                    // or "ref", "avx2", "avx512" to force one
 *     qb_matmul_f32(y, x, w, n, in, out);       // y (n,out) = x (n,in) . w (out,in)^T
 *
 * Threads (OpenMP) split output rows; small products stay on one thread. */
#ifndef QB_MATMUL_H
#define QB_MATMUL_H

#include <stdint.h>

/* One weight row w (k) against n activation rows x (n, ldx): y[t*ldy] = dot(w, x[t]). */
typedef void (*qb_dot_rows_fn)(const float *w, const float *x, int64_t n, int64_t ldx,
                               int64_t k, float *y, int64_t ldy);

struct qb_kernels {
    const char *isa; /* "ref", "avx2", "avx512" */
    qb_dot_rows_fn dot_rows_f32;
};

/* The dispatch table; valid after qb_kernels_init (called lazily by qb_matmul_f32). */
const struct qb_kernels *qb_kernels(void);

/* Chooses the kernels: isa NULL picks the best this CPU supports; otherwise "ref",
 * "avx2" or "avx512" (QB_EUNSUP when the CPU lacks it, QB_EINVAL when unknown). */
int qb_kernels_init(const char *isa);

void qb_dot_rows_f32_ref(const float *w, const float *x, int64_t n, int64_t ldx, int64_t k,
                         float *y, int64_t ldy);
void qb_dot_rows_f32_avx2(const float *w, const float *x, int64_t n, int64_t ldx, int64_t k,
                          float *y, int64_t ldy);
void qb_dot_rows_f32_avx512(const float *w, const float *x, int64_t n, int64_t ldx, int64_t k,
                            float *y, int64_t ldy);

void qb_matmul_f32(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out);

#endif
