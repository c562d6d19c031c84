/* qmatmul_int_ref: the scalar reference kernels for integer weights (I8, I4, I3, I2), read
 * straight from the layouts in qtensor.h. They are the oracle the SIMD kernels in
 * kernels/x86/qmatmul_int_*.c are tested against, and the fallback on any CPU.
 *
 *   ACT_F32: each weight is decoded to f32 (I8: row_scale * q; I4/I3/I2: d * (q - 2^(b-1)) or
 *            d * q + m) and multiplied with the f32 activation, accumulated in f32.
 *   ACT_I8:  integer dot products of the codes with the int8 activations xq:
 *            I8:       y = row_scale * xscale[t] * sum(q * xq)
 *            I4/I3/I2: per 32-weight sub-block s of a group with header (d, m), in int32
 *                      dot_s = sum(q * xq), then sym  d * (dot_s - 2^(b-1) * xsum_s)
 *                                                asym d * dot_s + m * xsum_s
 *                      summed over sub-blocks in f32, times xscale[t].
 * y[t * ldy + r] for tokens t < x->n, rows r in [r0, r1). */
#include "kernels/half.h"
#include "kernels/qmatmul.h"

#include <string.h>

/* The 32 codes of one packed sub-block, in weight order. */
static void decode_sub(enum qb_fmt fmt, const uint8_t *p, int q[QB_SUB])
{
    switch (fmt) {
    case QB_FMT_I4:
        for (int i = 0; i < 16; i++) {
            q[i] = p[i] & 15;
            q[i + 16] = p[i] >> 4;
        }
        break;
    case QB_FMT_I3: {
        uint32_t hi =
            (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < 4; k++) {
                int j = i + 8 * k;
                q[j] = ((p[i] >> (2 * k)) & 3) | (int)((hi >> j) & 1) << 2;
            }
        break;
    }
    case QB_FMT_I2:
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < 4; k++)
                q[i + 8 * k] = (p[i] >> (2 * k)) & 3;
        break;
    default: memset(q, 0, QB_SUB * sizeof *q); break;
    }
}

static size_t sub_bytes(enum qb_fmt fmt)
{
    return fmt == QB_FMT_I4   ? QB_SUB_BYTES_I4
           : fmt == QB_FMT_I3 ? QB_SUB_BYTES_I3
                              : QB_SUB_BYTES_I2;
}

/* Header of group g of a row: scale d and minimum m (0 when symmetric). */
static const uint8_t *group_at(const struct qb_qtensor *w, const uint8_t *row, int64_t g, float *d,
                               float *m)
{
    size_t hdr = w->asym ? sizeof(struct qb_ghdr_asym) : sizeof(struct qb_ghdr_sym);
    const uint8_t *p = row + (size_t)g * (hdr + (size_t)(w->group / QB_SUB) * sub_bytes(w->fmt));
    uint16_t h[2] = {0, 0};
    memcpy(h, p, hdr);
    *d = qb_f16_to_f32(h[0]);
    *m = w->asym ? qb_f16_to_f32(h[1]) : 0;
    return p + hdr;
}

static void group_f32_ref(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                          const struct qb_qact *x, float *y, int64_t ldy)
{
    int off = w->asym ? 0 : 1 << (qb_fmt_bits(w->fmt) - 1);
    int64_t n_groups = w->cols / w->group;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < x->n; t++) {
            const float *xt = x->xf + t * x->cols;
            float acc = 0;
            for (int64_t g = 0; g < n_groups; g++) {
                float d, m;
                const uint8_t *p = group_at(w, row, g, &d, &m);
                for (int s = 0; s < w->group / QB_SUB; s++) {
                    int q[QB_SUB];
                    const float *xs = xt + g * w->group + s * QB_SUB;
                    decode_sub(w->fmt, p + (size_t)s * sub_bytes(w->fmt), q);
                    for (int j = 0; j < QB_SUB; j++)
                        acc += (d * (float)(q[j] - off) + m) * xs[j];
                }
            }
            y[t * ldy + r] = acc;
        }
    }
}

static void group_i8_ref(const struct qb_qtensor *w, int64_t r0, int64_t r1,
                         const struct qb_qact *x, float *y, int64_t ldy)
{
    int off = w->asym ? 0 : 1 << (qb_fmt_bits(w->fmt) - 1);
    int64_t n_groups = w->cols / w->group, n_sub = x->cols / QB_SUB;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < x->n; t++) {
            const int8_t *xt = x->xq + t * x->cols;
            const int32_t *xsum = x->xsum + t * n_sub;
            float acc = 0;
            for (int64_t g = 0; g < n_groups; g++) {
                float d, m;
                const uint8_t *p = group_at(w, row, g, &d, &m);
                for (int s = 0; s < w->group / QB_SUB; s++) {
                    int q[QB_SUB];
                    int64_t sb = g * (w->group / QB_SUB) + s;
                    const int8_t *xs = xt + sb * QB_SUB;
                    int32_t dot = 0;
                    decode_sub(w->fmt, p + (size_t)s * sub_bytes(w->fmt), q);
                    for (int j = 0; j < QB_SUB; j++)
                        dot += q[j] * xs[j];
                    if (w->asym)
                        acc += d * (float)dot + m * (float)xsum[sb];
                    else
                        acc += d * (float)(dot - off * xsum[sb]);
                }
            }
            y[t * ldy + r] = acc * x->xscale[t];
        }
    }
}

static void i8_f32_ref(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                       float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *q = (const int8_t *)w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < x->n; t++) {
            const float *xt = x->xf + t * x->cols;
            float acc = 0;
            for (int64_t i = 0; i < w->cols; i++)
                acc += (float)q[i] * xt[i];
            y[t * ldy + r] = w->row_scale[r] * acc;
        }
    }
}

static void i8_i8_ref(const struct qb_qtensor *w, int64_t r0, int64_t r1, const struct qb_qact *x,
                      float *y, int64_t ldy)
{
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *q = (const int8_t *)w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < x->n; t++) {
            const int8_t *xt = x->xq + t * x->cols;
            int64_t dot = 0; /* 127 * 127 * cols overflows int32 past 133k columns */
            for (int64_t i = 0; i < w->cols; i++)
                dot += q[i] * xt[i];
            y[t * ldy + r] = w->row_scale[r] * x->xscale[t] * (float)dot;
        }
    }
}

void qb_qkern_register_int_ref(struct qb_qkern_table *t)
{
    t->fn[QB_FMT_I8][QB_ACT_F32] = i8_f32_ref;
    t->fn[QB_FMT_I8][QB_ACT_I8] = i8_i8_ref;
    for (int f = QB_FMT_I4; f <= QB_FMT_I2; f++) {
        t->fn[f][QB_ACT_F32] = group_f32_ref;
        t->fn[f][QB_ACT_I8] = group_i8_ref;
    }
}
