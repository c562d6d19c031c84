/* matmul: the cpuid check behind --isa (see matmul.h). The kernels themselves are in
 * kernels/qmatmul*.c and kernels/x86/, one file per instruction set. */
#include "kernels/dispatch.h"

#include "kernels/base/err.h"

#include <stddef.h>
#include <string.h>

static const struct qb_kernels k_ref = {"ref"};
static const struct qb_kernels k_avx2 = {"avx2"};
static const struct qb_kernels k_avx512 = {"avx512"};
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
