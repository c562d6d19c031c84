/* matmul: the scalar reference kernels, cpuid dispatch and the threaded f32 matmul
 * (see matmul.h). The SIMD kernels live in kernels/x86/, one file per instruction set. */
#include "kernels/matmul.h"

#include "collector/err.h"

#include <stddef.h>
#include <string.h>

void qb_dot_rows_f32_ref(const float *w, const float *x, int64_t n, int64_t ldx, int64_t k,
                         float *y, int64_t ldy)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * ldx;
        float s = 0;
        for (int64_t i = 0; i < k; i++)
            s += w[i] * xt[i];
        y[t * ldy] = s;
    }
}

static const struct qb_kernels k_ref = {"ref", qb_dot_rows_f32_ref};
static const struct qb_kernels k_avx2 = {"avx2", qb_dot_rows_f32_avx2};
static const struct qb_kernels k_avx512 = {"avx512", qb_dot_rows_f32_avx512};
static const struct qb_kernels *active;

static int has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int has_avx512(void)
{
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

int qb_kernels_init(const char *isa)
{
    if (!isa) {
        active = has_avx512() ? &k_avx512 : has_avx2() ? &k_avx2 : &k_ref;
        return 0;
    }
    if (!strcmp(isa, "ref")) {
        active = &k_ref;
    } else if (!strcmp(isa, "avx2")) {
        if (!has_avx2())
            return qb_err(QB_EUNSUP, "this cpu does not support avx2 with fma");
        active = &k_avx2;
    } else if (!strcmp(isa, "avx512")) {
        if (!has_avx512())
            return qb_err(QB_EUNSUP, "this cpu does not support avx512f, bw and vl");
        active = &k_avx512;
    } else {
        return qb_err(QB_EINVAL, "unknown isa '%s' (valid: ref, avx2, avx512)", isa);
    }
    return 0;
}

const struct qb_kernels *qb_kernels(void)
{
    if (!active)
        qb_kernels_init(NULL);
    return active;
}

void qb_matmul_f32(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out)
{
    qb_dot_rows_fn dot = qb_kernels()->dot_rows_f32;
    /* Below ~64k multiply-adds a parallel region costs more than it saves. */
    int par = n * in * out >= (1 << 21) && out >= 16;

#pragma omp parallel for schedule(static) if (par)
    for (int64_t o = 0; o < out; o++)
        dot(w + o * in, x, n, in, in, y + o, out);
}
