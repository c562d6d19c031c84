/* qmatmul_float_ref: scalar reference kernels for the float weight formats of qtensor.h
 * (F32, F16, BF16, fp8 E4M3/E5M2 with a per-row scale), weight-only with f32 activations,
 * and W8A8-fp8 (E4M3 weights times per-token E4M3 activations, emulated exactly in f32).
 * These are the oracles (and the fallback) for kernels/x86/qmatmul_float_{avx2,avx512}.c,
 * which must agree with them up to the order of the f32 sums.
 *
 * Arithmetic, for weight row r and token t over i < cols:
 *   F32/F16/BF16:  y = sum_i w[r][i] * x[t][i]                    (w decoded exactly)
 *   E4M3/E5M2:     y = row_scale[r] * sum_i fp8(w[r][i]) * x[t][i]
 *   E4M3 x FP8:    y = row_scale[r] * xscale[t] * sum_i e4m3(w[r][i]) * e4m3(x8[t][i])
 * Every product is formed in f32 and summed in f32 (for the fp8 x fp8 case each product is
 * exact: two 4-bit significands). */
#include "kernels/qmatmul.h"

#include "kernels/fp8.h"
#include "kernels/half.h"

#include <stddef.h>

/* Weight i of a packed row, decoded exactly to f32 (before the row scale). */
static float wval(enum qb_fmt f, const void *row, int64_t i)
{
    switch (f) {
    case QB_FMT_F32: return ((const float *)row)[i];
    case QB_FMT_F16: return qb_f16_to_f32(((const uint16_t *)row)[i]);
    case QB_FMT_BF16: return qb_bf16_to_f32(((const uint16_t *)row)[i]);
    case QB_FMT_E4M3: return qb_e4m3_to_f32(((const uint8_t *)row)[i]);
    case QB_FMT_E5M2: return qb_e5m2_to_f32(((const uint8_t *)row)[i]);
    default: return 0;
    }
}

/* Weight-only: x (n, cols) f32. */
static void qdot_float_ref(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                           const struct qb_qact *x, float *y, int64_t ldy)
{
    const int64_t k = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const void *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float scale = w->row_scale ? w->row_scale[r] : 1.0f;
        for (int64_t t = 0; t < x->n; t++) {
            const float *xt = x->xf + t * k;
            float s = 0;
            for (int64_t i = 0; i < k; i++)
                s += wval(w->fmt, row, i) * xt[i];
            y[t * ldy + r] = w->row_scale ? scale * s : s;
        }
    }
}

/* W8A8-fp8: x->x8 (n, cols) e4m3 codes with per-token x->xscale. */
static void qdot_e4m3_fp8_ref(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                              const struct qb_qact *x, float *y, int64_t ldy)
{
    const int64_t k = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < x->n; t++) {
            const uint8_t *xt = x->x8 + t * k;
            float s = 0;
            for (int64_t i = 0; i < k; i++)
                s += qb_e4m3_to_f32(row[i]) * qb_e4m3_to_f32(xt[i]);
            y[t * ldy + r] = w->row_scale[r] * x->xscale[t] * s;
        }
    }
}

void qb_qkern_register_float_ref(struct qb_qkern_table *t)
{
    t->fn[QB_FMT_F32][QB_ACT_F32] = qdot_float_ref;
    t->fn[QB_FMT_F16][QB_ACT_F32] = qdot_float_ref;
    t->fn[QB_FMT_BF16][QB_ACT_F32] = qdot_float_ref;
    t->fn[QB_FMT_E4M3][QB_ACT_F32] = qdot_float_ref;
    t->fn[QB_FMT_E5M2][QB_ACT_F32] = qdot_float_ref;
    t->fn[QB_FMT_E4M3][QB_ACT_FP8] = qdot_e4m3_fp8_ref;
}
