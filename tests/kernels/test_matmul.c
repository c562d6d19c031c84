/* test_matmul: every f32 kernel path against the scalar reference on odd shapes, and the
 * threaded matmul against a plain f64 triple loop. */
#include "collector/err.h"
#include "kernels/matmul.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

static const int64_t sizes[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 4097};
#define N_SIZES (int)(sizeof sizes / sizeof sizes[0])

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void check_isa(const char *isa, qb_dot_rows_fn fn)
{
    uint32_t seed = 7;
    if (qb_kernels_init(isa) < 0) {
        printf("  %s: not supported on this cpu, not tested\n", isa);
        return;
    }
    for (int a = 0; a < N_SIZES; a++) {
        int64_t k = sizes[a];
        for (int64_t n = 1; n <= 9; n += 2) {
            float *w = malloc((size_t)k * 4), *x = malloc((size_t)(n * k) * 4);
            float *y = malloc((size_t)n * 4), *r = malloc((size_t)n * 4);
            for (int64_t i = 0; i < k; i++)
                w[i] = frand(&seed);
            for (int64_t i = 0; i < n * k; i++)
                x[i] = frand(&seed);
            qb_dot_rows_f32_ref(w, x, n, k, k, r, 1);
            fn(w, x, n, k, k, y, 1);
            for (int64_t t = 0; t < n; t++) {
                /* summation order differs; random rounding errors grow like sqrt(k), so
                 * this is far above them yet far below any indexing mistake */
                double mag = 0, bound;
                for (int64_t i = 0; i < k; i++)
                    mag += fabs((double)w[i] * x[t * k + i]);
                bound = 4e-6 * mag + 1e-6;
                if (fabs(y[t] - r[t]) > bound) {
                    fprintf(stderr, "  %s k=%lld n=%lld t=%lld: %g vs %g\n", isa, (long long)k,
                            (long long)n, (long long)t, y[t], r[t]);
                    CHECK(0);
                }
            }
            free(w);
            free(x);
            free(y);
            free(r);
        }
    }
}

static void test_isas_against_ref(void)
{
    check_isa("avx2", qb_dot_rows_f32_avx2);
    check_isa("avx512", qb_dot_rows_f32_avx512);
    qb_kernels_init(NULL);
}

static void test_matmul_against_f64(void)
{
    uint32_t seed = 3;
    const int64_t n = 5, in = 33, out = 17;
    float x[5 * 33], w[17 * 33], y[5 * 17];
    for (int i = 0; i < n * in; i++)
        x[i] = frand(&seed);
    for (int i = 0; i < out * in; i++)
        w[i] = frand(&seed);
    qb_matmul_f32(y, x, w, n, in, out);
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < out; o++) {
            double s = 0;
            for (int64_t i = 0; i < in; i++)
                s += (double)x[t * in + i] * w[o * in + i];
            CHECK_NEAR(y[t * out + o], s, 1e-4);
        }
}

static void test_unknown_isa(void)
{
    CHECK(qb_kernels_init("sse9") == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "sse9") != NULL);
    CHECK(qb_kernels() != NULL);
}

int main(void)
{
    RUN(test_isas_against_ref);
    RUN(test_matmul_against_f64);
    RUN(test_unknown_isa);
    return check_summary();
}
