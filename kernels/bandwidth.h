/* bandwidth: this machine's read bandwidth, for setting a kernel's bytes per second against
 * it (qbrief bench-kernels). One way of streaming a buffer can read well below what the
 * memory gives (one thread, one dependency chain, 8-byte loads), and then a kernel seems to
 * read more than 100% of it; so the figure is the best of several ways: 1 thread and all of
 * them; 8-byte scalar loads, AVX2 and AVX-512 loads into four independent accumulators, and
 * AVX-512 non-temporal loads (vmovntdqa), each where the CPU has it.
 *
 *     struct qb_bw bw;
 *     qb_read_bandwidth((size_t)1 << 30, 3, &bw);   // 1 GiB, best of 3 passes per way
 *     printf("%.1f GB/s (%s, %d threads)\n", bw.gb_s, bw.how, bw.threads);
 */
#ifndef QB_BANDWIDTH_H
#define QB_BANDWIDTH_H

#include <stddef.h>

struct qb_bw {
    double gb_s;     /* the best of every way, 0 when the buffer could not be allocated */
    const char *how; /* the way that gave it: "scalar", "avx2", "avx512", "avx512-nt" */
    int threads;     /* and with how many threads */
};

/* Streams a buffer of `bytes` (rounded down to 256) `reps` times per way and thread count. */
void qb_read_bandwidth(size_t bytes, int reps, struct qb_bw *out);

#endif
