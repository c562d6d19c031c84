/* test_quant_act: the AVX-512 int8 activation quantizer (kernels/x86/quant_act_avx512.c, the
 * avx512 table's quant_i8) against qb_quantize_act_i8, to the bit: codes, scales and the sums
 * of each 32 codes, on token counts 1..9, 17 and 33 and widths 32, 96, 544 and 4096 (and 40,
 * not a multiple of 32, which falls back to the scalar function); the values are random, with
 * ties that round half to even (k + 0.5 steps), zeros, negative zeros, an all-zero token and
 * NaN (skipped by max |x| in both). Skipped where the CPU has no AVX-512. */
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"
#include "tests/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 4242;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void test_avx512_matches_scalar(void)
{
    static const int64_t ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 33};
    static const int64_t widths[] = {32, 40, 96, 544, 4096};
    const struct qb_qkern_table *k = qb_qkern_for("avx512");
    int cases = 0, bad = 0;
    if (qb_kernels_init("avx512") < 0 || !k->quant_i8) {
        printf("  skipped: no AVX-512 on this CPU\n");
        qb_kernels_init(NULL);
        return;
    }
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof widths / sizeof *widths; b++) {
            int64_t n = ns[a], cols = widths[b], ns_ = cols / 32;
            float *x = malloc((size_t)(n * cols) * sizeof *x), s0[64], s1[64];
            int8_t *q0 = malloc((size_t)(n * cols)), *q1 = malloc((size_t)(n * cols));
            int32_t *x0 = calloc((size_t)(n * ns_ + 1), 4), *x1 = calloc((size_t)(n * ns_ + 1), 4);
            if (!x || !q0 || !q1 || !x0 || !x1) {
                CHECK(0);
                return;
            }
            for (int64_t t = 0; t < n; t++) {
                float *xt = x + t * cols;
                /* the token's max |x| is 127 * u, so v = (k + 0.5) * u sits on a tie */
                float u = (float)(rnd() % 1000 + 1) / 256.0f;
                for (int64_t i = 0; i < cols; i++) {
                    uint32_t r = rnd();
                    xt[i] = r % 5 == 0   ? (float)((int)(r >> 8) % 254 - 127) * 0.5f * u
                            : r % 7 == 0 ? (r & 256 ? 0.0f : -0.0f)
                                         : ((float)(r >> 8) / 8388608.0f - 1.0f) * 127.0f * u;
                }
                xt[rnd() % (uint32_t)cols] = 127.0f * u * (rnd() & 1 ? 1 : -1);
                if (t == 2)
                    memset(xt, 0, (size_t)cols * sizeof *xt);
                if (t == 3)
                    xt[rnd() % (uint32_t)cols] = NAN;
            }
            qb_quantize_act_i8(x, n, cols, q0, s0, x0);
            k->quant_i8(x, n, cols, q1, s1, x1);
            cases++;
            if (memcmp(q0, q1, (size_t)(n * cols)) || memcmp(s0, s1, (size_t)n * sizeof *s0) ||
                memcmp(x0, x1, (size_t)(n * ns_) * 4)) {
                bad++;
                fprintf(stderr, "  %lld tokens of %lld: differs\n", (long long)n, (long long)cols);
            }
            free(x);
            free(q0);
            free(q1);
            free(x0);
            free(x1);
        }
    qb_kernels_init(NULL);
    printf("  %d shapes, %d differ from qb_quantize_act_i8\n", cases, bad);
    CHECK(cases > 0 && bad == 0);
}

int main(void)
{
    RUN(test_avx512_matches_scalar);
    return check_summary();
}
