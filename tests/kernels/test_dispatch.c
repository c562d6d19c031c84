/* test_dispatch: the kernel table (kernels/dispatch.h): chosen once on first use, from any
 * number of threads at once; forced with qb_kernels_init (--isa), which qb_qmatmul and the
 * quad_form kernel then follow; every table complete. The kernels themselves are tested in
 * test_qmatmul_float.c, test_qmatmul_int.c and test_quad_form.c. tests/cli/test_isa_max.sh
 * runs these binaries under QB_ISA_MAX. */
#include "kernels/base/err.h"
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"
#include "kernels/quantize.h"
#include "tests/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const isas[] = {"ref", "avx2", "avx512"};
#define N_ISAS 3

/* First use from many threads at once: all see the same table, the best the CPU has. Must
 * run before anything else in this binary touches the table. */
static void test_first_use_from_threads(void)
{
    const struct qb_kernels *seen[64] = {0};
    const struct qb_kernels *best = NULL;
#pragma omp parallel for schedule(static, 1) num_threads(8)
    for (int i = 0; i < 64; i++)
        seen[i] = qb_kernels();
    for (int k = N_ISAS - 1; k >= 0 && !best; k--)
        if (qb_kernels_cpu_has(isas[k]))
            best = qb_kernels_for(isas[k]);
    CHECK(best != NULL);
    for (int i = 0; i < 64; i++)
        CHECK(seen[i] == best);
}

/* Forcing a path sticks; one the CPU lacks is refused and leaves the choice alone. */
static void test_forcing_each_isa(void)
{
    for (int i = 0; i < N_ISAS; i++) {
        const struct qb_kernels *before = qb_kernels();
        int rc = qb_kernels_init(isas[i]);
        CHECK((rc == 0) == qb_kernels_cpu_has(isas[i]));
        if (rc == 0) {
            CHECK(!strcmp(qb_kernels()->isa, isas[i]));
            CHECK(qb_kernels() == qb_kernels_for(isas[i]));
            CHECK(qb_kernels()->id == (enum qb_isa)i);
        } else {
            CHECK(rc == QB_EUNSUP && qb_kernels() == before);
        }
    }
    CHECK(qb_kernels_init(NULL) == 0);
}

static void test_unknown_isa(void)
{
    const struct qb_kernels *before = qb_kernels();
    CHECK(qb_kernels_init("sse9") == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "sse9") != NULL);
    CHECK(qb_kernels() == before);
    CHECK(qb_kernels_for("sse9") == NULL);
    CHECK(!qb_kernels_cpu_has("sse9"));
}

/* Every table has a kernel for every pair qbrief runs, and a quad_form. */
static void test_tables_complete(void)
{
    for (int i = 0; i < N_ISAS; i++) {
        const struct qb_kernels *k = qb_kernels_for(isas[i]);
        CHECK(k && k->quad_form && !strcmp(k->isa, isas[i]));
        for (int f = 0; f < QB_FMT_COUNT && k; f++)
            for (int a = 0; a < 3; a++)
                CHECK(!qb_qmatmul_supported((enum qb_fmt)f, (enum qb_act)a) ||
                      k->qdot.fn[f][a] != NULL);
    }
}

/* qb_qmatmul runs the forced table's kernels: its result is that table's, bit for bit
 * (I4 weights with f32 activations: the reference and the SIMD kernels differ in the last
 * bits, the SIMD ones round the activations to 16 bits). */
static void test_qmatmul_follows_isa(void)
{
    const int64_t rows = 33, cols = 256, n = 3;
    float *w = malloc((size_t)(rows * cols) * sizeof *w), *x = malloc((size_t)(n * cols) * 4);
    float y[3 * 33], want[3 * 33];
    struct qb_quant_opts qo = {.clip = 0};
    struct qb_qtensor t;
    uint32_t s = 7;
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    CHECK(qb_quantize(w, rows, cols, QB_FMT_I4, 32, 1, &qo, &t) == 0);
    for (int k = 0; k < N_ISAS; k++) {
        if (!check_begin_variant(k))
            continue;
        CHECK(qb_kernels_init(isas[k]) == 0);
        CHECK(qb_qmatmul(y, x, n, &t, QB_ACT_F32) == 0);
        CHECK(qb_qmatmul_with(qb_qkern_for(isas[k]), want, x, n, &t, QB_ACT_F32) == 0);
        CHECK(memcmp(y, want, sizeof y) == 0);
        CHECK(qb_kernels()->quad_form == qb_kernels_for(isas[k])->quad_form);
    }
    check_end_variant();
    qb_kernels_init(NULL);
    qb_qtensor_release(&t);
    free(w);
    free(x);
}

int main(void)
{
    const char *why[N_ISAS];
    RUN(test_first_use_from_threads);
    for (int k = 0; k < N_ISAS; k++)
        why[k] = check_isa_lacks(isas[k]);
    RUN(test_forcing_each_isa);
    RUN(test_unknown_isa);
    RUN(test_tables_complete);
    RUN_VARIANTS(test_qmatmul_follows_isa, N_ISAS, isas, why);
    return check_summary();
}
