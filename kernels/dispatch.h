/* matmul: which instruction set the matmul kernels (kernels/qmatmul.h) run on, chosen once at
 * start-up from cpuid, or forced with --isa so paths can be compared.
 *
 *     qb_kernels_init(NULL);          // the best this CPU supports
 *     qb_kernels_init("ref");         // force the scalar reference kernels
 *     printf("%s\n", qb_kernels()->isa);
 */
#ifndef QB_MATMUL_H
#define QB_MATMUL_H

struct qb_kernels {
    const char *isa; /* "ref", "avx2", "avx512" */
};

/* The choice in force; valid after qb_kernels_init (made lazily on first use). */
const struct qb_kernels *qb_kernels(void);

/* Chooses the kernels: isa NULL picks the best this CPU supports; otherwise "ref",
 * "avx2" or "avx512" (QB_EUNSUP when the CPU lacks it, QB_EINVAL when unknown). */
int qb_kernels_init(const char *isa);

/* Put before a plain-C hot loop's function: on x86-64 GCC/Clang compile it for AVX-512, AVX2
 * and baseline x86-64, and the loader picks the widest the CPU has (an ifunc); --isa does not
 * reach it. Off under ASan, whose runtime is not set up yet when the ifunc resolver runs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define QB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QB_CLONES
#endif

#endif
