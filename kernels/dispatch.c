/* dispatch: builds the three kernel tables once (pthread_once) from cpuid and QB_ISA_MAX, and
 * publishes the one in force through an atomic pointer (see dispatch.h). The kernels
 * themselves are in kernels/qmatmul*.c, kernels/quad_form_ref.c and kernels/x86/, one file
 * per instruction set. */
#include "kernels/dispatch.h"

#include "kernels/base/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const isa_names[QB_ISA_COUNT] = {"ref", "avx2", "avx512"};

static struct qb_kernels tables[QB_ISA_COUNT];
static enum qb_isa cpu_real; /* the widest set this CPU runs */
static enum qb_isa cpu_best; /* the same after QB_ISA_MAX */
static char max_env[32];     /* QB_ISA_MAX as read (cut to 31 bytes), "" when unset */
static int bad_max;          /* QB_ISA_MAX names no instruction set */
static pthread_once_t built = PTHREAD_ONCE_INIT;
static _Atomic(const struct qb_kernels *) active;

static int isa_of(const char *name)
{
    for (int i = 0; i < QB_ISA_COUNT; i++)
        if (!strcmp(name, isa_names[i]))
            return i;
    return -1;
}

static enum qb_isa detect(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return QB_ISA_REF;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl"))
        return QB_ISA_AVX2;
    return QB_ISA_AVX512;
}

/* Runs once: what the CPU has, capped by QB_ISA_MAX (an unknown cap counts as "ref", the
 * safe reading, and is reported by qb_kernels_init), then each table on top of the one
 * below. */
static void build(void)
{
    const char *max = getenv("QB_ISA_MAX");
    cpu_best = cpu_real = detect();
    if (max && *max) {
        int cap = isa_of(max);
        snprintf(max_env, sizeof max_env, "%s", max);
        if (cap < 0) {
            bad_max = 1;
            cap = QB_ISA_REF;
        }
        if ((int)cpu_best > cap)
            cpu_best = (enum qb_isa)cap;
    }
    struct qb_kernels *t = tables;
    qb_qkern_register_int_ref(&t[QB_ISA_REF].qdot);
    qb_qkern_register_float_ref(&t[QB_ISA_REF].qdot);
    t[QB_ISA_REF].quad_form = qb_quad_form_ref;
    t[QB_ISA_AVX2] = t[QB_ISA_REF];
    if (cpu_best >= QB_ISA_AVX2) {
        qb_qkern_register_int_avx2(&t[QB_ISA_AVX2].qdot);
        qb_qkern_register_float_avx2(&t[QB_ISA_AVX2].qdot);
        t[QB_ISA_AVX2].quad_form = qb_quad_form_avx2;
    }
    t[QB_ISA_AVX512] = t[QB_ISA_AVX2];
    if (cpu_best >= QB_ISA_AVX512) {
        qb_qkern_register_int_avx512(&t[QB_ISA_AVX512].qdot);
        qb_qkern_register_float_avx512(&t[QB_ISA_AVX512].qdot);
        t[QB_ISA_AVX512].quad_form = qb_quad_form_avx512;
    }
    for (int i = 0; i < QB_ISA_COUNT; i++) {
        t[i].isa = isa_names[i];
        t[i].id = (enum qb_isa)i;
    }
}

int qb_kernels_init(const char *isa)
{
    int want;
    pthread_once(&built, build);
    if (!isa) {
        if (bad_max)
            return qb_err(QB_EINVAL, "QB_ISA_MAX='%s' is not ref, avx2 or avx512", max_env);
        want = cpu_best;
    } else if ((want = isa_of(isa)) < 0) {
        return qb_err(QB_EINVAL, "unknown isa '%s' (valid: ref, avx2, avx512)", isa);
    } else if (want > (int)cpu_best) {
        if (want <= (int)cpu_real)
            return qb_err(QB_EUNSUP, "QB_ISA_MAX='%s' hides %s from the kernels", max_env,
                          isa_names[want]);
        return qb_err(QB_EUNSUP, "this cpu does not support %s",
                      want == QB_ISA_AVX2 ? "avx2 with fma" : "avx512f, bw and vl");
    }
    atomic_store_explicit(&active, &tables[want], memory_order_release);
    return 0;
}

const struct qb_kernels *qb_kernels(void)
{
    const struct qb_kernels *k = atomic_load_explicit(&active, memory_order_acquire);
    if (k)
        return k;
    /* first use: the best this CPU has (the reference kernels under a bad QB_ISA_MAX), unless
     * another thread chose meanwhile */
    pthread_once(&built, build);
    atomic_compare_exchange_strong(&active, &k, &tables[bad_max ? QB_ISA_REF : cpu_best]);
    return atomic_load_explicit(&active, memory_order_acquire);
}

const struct qb_kernels *qb_kernels_for(const char *isa)
{
    int i = isa ? isa_of(isa) : -1;
    pthread_once(&built, build);
    return i < 0 ? NULL : &tables[i];
}

int qb_kernels_cpu_has(const char *isa)
{
    int i = isa ? isa_of(isa) : -1;
    pthread_once(&built, build);
    return i >= 0 && i <= (int)cpu_best;
}
