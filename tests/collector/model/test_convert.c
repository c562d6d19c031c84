/* test_convert: qb_model_f32_view converts F16, BF16, Q8_0, Q4_0 and Q4_1 tensors in chunks
 * spread over threads; the result is bit for bit what one serial qb_dequant_* call gives,
 * for sizes below, at and across the chunk size (2^18 elements) and not a multiple of it,
 * with 1 and 2 threads. F32 that is 4-byte aligned is borrowed, unaligned F32 copied. */
#include "collector/model/model.h"
#include "kernels/dequant.h"
#include "tests/check.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x243f6a8885a308d3ull;
static unsigned char next_byte(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned char)(rng >> 32);
}

/* Bytes of n elements of dt. */
static size_t nbytes(enum qb_dtype dt, size_t n)
{
    switch (dt) {
    case QB_DT_F16:
    case QB_DT_BF16: return 2 * n;
    case QB_DT_Q8_0: return n / 32 * 34;
    case QB_DT_Q4_0: return n / 32 * 18;
    case QB_DT_Q4_1: return n / 32 * 20;
    default: return 4 * n;
    }
}

static void serial(enum qb_dtype dt, const void *src, float *dst, size_t n)
{
    switch (dt) {
    case QB_DT_F16: qb_dequant_f16(src, dst, n); break;
    case QB_DT_BF16: qb_dequant_bf16(src, dst, n); break;
    case QB_DT_Q8_0: qb_dequant_q8_0(src, dst, n); break;
    case QB_DT_Q4_0: qb_dequant_q4_0(src, dst, n); break;
    case QB_DT_Q4_1: qb_dequant_q4_1(src, dst, n); break;
    default: memcpy(dst, src, n * 4); break;
    }
}

static void test_same_as_serial(void)
{
    const enum qb_dtype dts[] = {QB_DT_F16, QB_DT_BF16, QB_DT_Q8_0, QB_DT_Q4_0, QB_DT_Q4_1};
    const size_t sizes[] = {32,
                            96,
                            (size_t)1 << 18,
                            ((size_t)1 << 18) + 32,
                            3 * ((size_t)1 << 18) - 64,
                            5 * ((size_t)1 << 18) + 4128};
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        for (size_t d = 0; d < sizeof dts / sizeof *dts; d++)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                size_t n = sizes[s], b = nbytes(dts[d], n);
                unsigned char *src = malloc(b);
                float *want = malloc(n * sizeof *want);
                struct qb_model *m = calloc(1, sizeof *m);
                const float *got = NULL;
                CHECK(src && want && m);
                if (!src || !want || !m)
                    return;
                for (size_t i = 0; i < b; i++)
                    src[i] = next_byte();
                serial(dts[d], src, want, n);
                CHECK(qb_model_f32_view(m, dts[d], src, n, &got) == 0);
                /* memcmp: NaN patterns from random halves must match too */
                CHECK(got && got != (const float *)src && !memcmp(got, want, n * sizeof *want));
                qb_model_free(m);
                free(src);
                free(want);
            }
    }
}

static void test_f32(void)
{
    const size_t n = 1000;
    unsigned char *buf = malloc(n * 4 + 1);
    struct qb_model *m = calloc(1, sizeof *m);
    const float *got = NULL;
    CHECK(buf && m);
    if (!buf || !m)
        return;
    for (size_t i = 0; i < n * 4 + 1; i++)
        buf[i] = next_byte();
    CHECK(qb_model_f32_view(m, QB_DT_F32, buf, n, &got) == 0 && got == (const float *)buf);
    CHECK(qb_model_f32_view(m, QB_DT_F32, buf + 1, n, &got) == 0 &&
          got != (const float *)(buf + 1) && !memcmp(got, buf + 1, n * 4));
    qb_model_free(m);
    free(buf);
}

int main(void)
{
    RUN(test_same_as_serial);
    RUN(test_f32);
    return check_summary();
}
