/* test_quad_form: gptq's r^T H r kernel (kernels/dispatch.h, qb_quad_form_fn) of every
 * instruction set against the scalar reference, bit for bit, on odd sizes; the reference
 * against the function it replaced (gptq.c's quad_form before it became a kernel) and against
 * an independent long-double sum; and AWQ's clipping search (qb_quantize_weighted with H)
 * under each --isa, which must write the same bytes. One result line per instruction set:
 * those the CPU lacks, or QB_ISA_MAX hides, are reported as skipped. */
#include "kernels/dispatch.h"
#include "kernels/gptq.h"
#include "kernels/qtensor.h"
#include "tests/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const isas[] = {"ref", "avx2", "avx512"};
#define N_ISAS 3
static const int sizes[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 127, 128};
#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

static uint64_t rng = 0x243f6a8885a308d3ull;

static double unif(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

/* gptq.c's quad_form as of commit 1aa1961 (then compiled with target_clones), kept verbatim:
 * the reference must go on returning its bits, or AWQ's choices would change. */
static double quad_form_1aa1961(const double *hb, int64_t ld, const double *r, int n)
{
    double acc[8] = {0}, diag = 0, tail = 0, low = 0;
    for (int i = 0; i < n; i++) {
        const double *hr = hb + i * ld, ri = r[i];
        int j = 0;
        for (; j + 8 <= i; j += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += ri * hr[j + l] * r[j + l];
        for (; j < i; j++)
            tail += ri * hr[j] * r[j];
        diag += ri * hr[i] * ri;
    }
    for (int l = 0; l < 8; l++)
        low += acc[l];
    return diag + 2 * (low + tail);
}

/* h (n, ld): a symmetric lower triangle and diagonal with values over several orders of
 * magnitude and both signs; the upper triangle and the padding hold NaN, which no kernel may
 * read. r (n) likewise spread. */
static void make_case(int n, int64_t ld, double *h, double *r)
{
    for (int64_t i = 0; i < n * ld; i++)
        h[i] = NAN;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++)
            h[i * ld + j] = ldexp(unif(), (int)(unif() * 8));
        h[i * ld + i] = fabs(h[i * ld + i]) + 1;
        r[i] = ldexp(unif(), (int)(unif() * 6));
    }
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void test_quad_form_odd_sizes(void)
{
    double *h = malloc(128 * 131 * sizeof *h), r[128];
    for (int s = 0; s < N_OF(sizes); s++)
        for (int64_t pad = 0; pad <= 3; pad += 3) {
            const int n = sizes[s];
            const int64_t ld = n + pad;
            make_case(n, ld, h, r);
            const double want = qb_quad_form_ref(h, ld, r, n);
            for (int k = 0; k < N_ISAS; k++) {
                if (!check_begin_variant(k))
                    continue;
                double got = qb_kernels_for(isas[k])->quad_form(h, ld, r, n);
                if (!same_bits(got, want)) {
                    fprintf(stderr, "  %s n=%d ld=%lld: %.17g, ref %.17g\n", isas[k], n,
                            (long long)ld, got, want);
                    CHECK(0);
                }
            }
            check_end_variant();
        }
    free(h);
}

/* The reference is the old function, bit for bit, and within rounding of the exact sum. */
static void test_quad_form_ref(void)
{
    double *h = malloc(128 * 128 * sizeof *h), r[128];
    for (int s = 0; s < N_OF(sizes); s++) {
        const int n = sizes[s];
        make_case(n, n, h, r);
        long double exact = 0, mag = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                long double v = (long double)r[i] * h[i >= j ? i * n + j : j * n + i] * r[j];
                exact += v;
                mag += fabsl(v);
            }
        double got = qb_quad_form_ref(h, n, r, n);
        CHECK(same_bits(got, quad_form_1aa1961(h, n, r, n)));
        CHECK_NEAR(got, (double)exact, 1e-13 * (double)mag);
    }
    free(h);
}

/* AWQ's clipping search under each SIMD --isa: the same header for every group as under
 * "ref" (variants avx2 and avx512). */
static void test_weighted_search_same_bytes(void)
{
    const int64_t rows = 9, cols = 128, n = 64;
    float *w = malloc((size_t)(rows * cols) * sizeof *w), *x = malloc((size_t)(n * cols) * 4);
    double *h = calloc((size_t)(cols * cols), sizeof *h);
    static const enum qb_fmt fmts[] = {QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = (float)(0.05 * unif());
    for (int64_t t = 0; t < n; t++) /* correlated inputs: a shared factor plus noise */
        for (int64_t j = 0, f = 0; j < cols; j++) {
            if (j % 16 == 0)
                f = (int64_t)(unif() * 1000);
            x[t * cols + j] = (float)(f / 1000.0 + 0.3 * unif()) * (float)(1 + j % 5);
        }
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < cols; i++)
            for (int64_t j = 0; j < cols; j++)
                h[i * cols + j] += (double)x[t * cols + i] * x[t * cols + j] / (double)n;
    for (int f = 0; f < N_OF(fmts); f++)
        for (int asym = 0; asym <= 1; asym++) {
            struct qb_qtensor want = {0};
            CHECK(qb_kernels_init("ref") == 0);
            CHECK(qb_quantize_weighted(w, rows, cols, NULL, h, fmts[f], 32, asym, 1, &want) == 0);
            for (int k = 1; k < N_ISAS; k++) {
                struct qb_qtensor got = {0};
                if (!check_begin_variant(k - 1))
                    continue;
                CHECK(qb_kernels_init(isas[k]) == 0);
                CHECK(qb_quantize_weighted(w, rows, cols, NULL, h, fmts[f], 32, asym, 1, &got) ==
                      0);
                CHECK(got.row_bytes == want.row_bytes &&
                      memcmp(got.data, want.data, (size_t)rows * want.row_bytes) == 0);
                qb_qtensor_release(&got);
            }
            check_end_variant();
            qb_qtensor_release(&want);
        }
    qb_kernels_init(NULL);
    free(w);
    free(x);
    free(h);
}

int main(void)
{
    const char *why[N_ISAS];
    for (int k = 0; k < N_ISAS; k++)
        why[k] = check_isa_lacks(isas[k]);
    RUN_VARIANTS(test_quad_form_odd_sizes, N_ISAS, isas, why);
    RUN(test_quad_form_ref);
    RUN_VARIANTS(test_weighted_search_same_bytes, N_ISAS - 1, isas + 1, why + 1);
    return check_summary();
}
