/* test_bandwidth: the probe returns a positive figure and names the way and thread count
 * that gave it (one of the ways this CPU has); a buffer too small for one step gives 0. */
#include "kernels/bandwidth.h"
#include "tests/check.h"

#include <omp.h>
#include <string.h>

static void test_probe(void)
{
    struct qb_bw bw;
    qb_read_bandwidth((size_t)16 << 20, 2, &bw);
    CHECK(bw.gb_s > 0);
    CHECK(bw.threads >= 1 && bw.threads <= omp_get_max_threads());
    CHECK(!strcmp(bw.how, "scalar") || !strcmp(bw.how, "avx2") || !strcmp(bw.how, "avx512") ||
          !strcmp(bw.how, "avx512-nt"));
    if (!strncmp(bw.how, "avx512", 6))
        CHECK(__builtin_cpu_supports("avx512f"));
    qb_read_bandwidth(100, 2, &bw);
    CHECK(bw.gb_s == 0 && bw.threads == 0);
}

int main(void)
{
    RUN(test_probe);
    return check_summary();
}
