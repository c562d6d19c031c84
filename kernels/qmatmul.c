/* qmatmul: activation quantization and the threaded driver that splits weight rows over the
 * row kernels of a kernel table (see qmatmul.h; the tables are built in dispatch.c). */
#include "kernels/qmatmul.h"

#include "kernels/base/err.h"
#include "kernels/dispatch.h"
#include "kernels/fp8.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int qb_qmatmul_supported(enum qb_fmt f, enum qb_act a)
{
    switch (a) {
    case QB_ACT_F32: return (unsigned)f < QB_FMT_COUNT;
    case QB_ACT_I8: return f == QB_FMT_I8 || f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
    case QB_ACT_FP8: return f == QB_FMT_E4M3;
    }
    return 0;
}

/* max |x| of one token; no libm calls, and like fmaxf it skips NaN */
static float abs_max(const float *x, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

void qb_quantize_act_i8(const float *x, int64_t n, int64_t cols, int8_t *xq, float *scale,
                        int32_t *xsum)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * cols;
        int8_t *qt = xq + t * cols;
        float amax = abs_max(xt, cols), inv;
        scale[t] = amax / 127.0f;
        inv = amax > 0 ? 127.0f / amax : 0;
        /* (v + 1.5 * 2^23) - 1.5 * 2^23 rounds half to even for |v| < 2^22: nearbyintf in the
         * default rounding mode, bit for bit */
        for (int64_t i = 0; i < cols; i++)
            qt[i] = (int8_t)((xt[i] * inv + 12582912.0f) - 12582912.0f);
        if (xsum)
            for (int64_t b = 0; b < cols / QB_SUB; b++) {
                int32_t s = 0;
                for (int i = 0; i < QB_SUB; i++)
                    s += qt[b * QB_SUB + i];
                xsum[t * (cols / QB_SUB) + b] = s;
            }
    }
}

void qb_quantize_act_fp8(const float *x, int64_t n, int64_t cols, uint8_t *x8, float *scale)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * cols;
        float amax = abs_max(xt, cols), inv;
        scale[t] = amax / QB_E4M3_MAX;
        inv = amax > 0 ? QB_E4M3_MAX / amax : 0;
        for (int64_t i = 0; i < cols; i++)
            x8[t * cols + i] = qb_f32_to_e4m3(xt[i] * inv);
    }
}

void qb_quantize_act_i16(const float *x, int64_t n, int64_t cols, int16_t *x16, float *scale,
                         int32_t *xsum)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * cols;
        int16_t *qt = x16 + t * cols;
        float amax = abs_max(xt, cols), inv;
        scale[t] = amax / 32767.0f;
        inv = amax > 0 ? 32767.0f / amax : 0;
        /* rounding as in qb_quantize_act_i8 */
        for (int64_t i = 0; i < cols; i++)
            qt[i] = (int16_t)((xt[i] * inv + 12582912.0f) - 12582912.0f);
        if (xsum)
            for (int64_t b = 0; b < cols / QB_SUB; b++) {
                int32_t s = 0;
                for (int i = 0; i < QB_SUB; i++)
                    s += qt[b * QB_SUB + i];
                xsum[t * (cols / QB_SUB) + b] = s;
            }
    }
}

const struct qb_qkern_table *qb_qkern_ref(void)
{
    return &qb_kernels_for("ref")->qdot;
}

const struct qb_qkern_table *qb_qkern_for(const char *isa)
{
    const struct qb_kernels *k = qb_kernels_for(isa);
    return k ? &k->qdot : qb_qkern_ref();
}

/* The activation quantization of one qb_qmatmul_with call, done for tokens [t0, t1). */
struct qjob {
    enum { Q_NONE, Q_I8, Q_FP8, Q_I16 } mode;
    qb_quant_i8_fn quant_i8;
    const float *x;
    int64_t cols;
    float *scale;
    int32_t *xsum;
    int8_t *xq;
    uint8_t *x8;
    int16_t *x16;
};

static void quantize_tokens(const struct qjob *q, int64_t t0, int64_t t1)
{
    int64_t c = q->cols, ns = q->cols / QB_SUB;
    switch (q->mode) {
    case Q_I8:
        q->quant_i8(q->x + t0 * c, t1 - t0, c, q->xq + t0 * c, q->scale + t0, q->xsum + t0 * ns);
        break;
    case Q_FP8:
        qb_quantize_act_fp8(q->x + t0 * c, t1 - t0, c, q->x8 + t0 * c, q->scale + t0);
        break;
    case Q_I16:
        qb_quantize_act_i16(q->x + t0 * c, t1 - t0, c, q->x16 + t0 * c, q->scale + t0,
                            q->xsum + t0 * ns);
        break;
    case Q_NONE: break;
    }
}

int qb_qmatmul_with(const struct qb_qkern_table *k, float *y, const float *x, int64_t n,
                    const struct qb_qtensor *w, enum qb_act act)
{
    struct qb_qact a = {.act = act, .n = n, .cols = w->cols, .xf = x};
    qb_qdot_fn fn;
    void *scratch = NULL;
    float *xpad = NULL;
    int64_t rows = w->rows, block, in = w->in_cols > 0 ? w->in_cols : w->cols;

    if (!qb_qmatmul_supported(w->fmt, act) || !(fn = k->fn[w->fmt][act]))
        return qb_err(QB_EINVAL, "no kernel for %s weights with %s activations",
                      qb_fmt_name(w->fmt),
                      act == QB_ACT_I8    ? "int8"
                      : act == QB_ACT_FP8 ? "fp8"
                                          : "f32");
    if ((w->fmt == QB_FMT_I4 || w->fmt == QB_FMT_I3 || w->fmt == QB_FMT_I2) &&
        ((w->group != 32 && w->group != 64 && w->group != 128) || w->cols % w->group))
        return qb_err(QB_EINVAL, "group of %d does not fit %lld %s columns", w->group,
                      (long long)w->cols, qb_fmt_name(w->fmt));
    if (in < w->cols) {
        /* padded rows (see qtensor.h): zero activations meet the zero padding */
        if (!(xpad = calloc((size_t)(n * w->cols), sizeof(float))))
            return qb_err(QB_ENOMEM, "out of memory for padded activations");
        for (int64_t t = 0; t < n; t++)
            memcpy(xpad + t * w->cols, x + t * in, (size_t)in * sizeof(float));
        x = a.xf = xpad;
    }
    struct qjob q = {
        .quant_i8 = k->quant_i8 ? k->quant_i8 : qb_quantize_act_i8, .x = x, .cols = w->cols};
    if (act != QB_ACT_F32) {
        size_t codes = (size_t)(n * w->cols),
               sums = act == QB_ACT_I8 ? (size_t)(n * (w->cols / QB_SUB)) : 0;
        if (w->cols % QB_SUB) {
            free(xpad);
            return qb_err(QB_EINVAL, "%lld input features are not a multiple of %d",
                          (long long)w->cols, QB_SUB);
        }
        scratch = malloc(codes + (size_t)n * sizeof(float) + sums * sizeof(int32_t) + 64);
        if (!scratch) {
            free(xpad);
            return qb_err(QB_ENOMEM, "out of memory for quantized activations");
        }
        float *scale = scratch;
        int32_t *xsum = (int32_t *)(scale + n);
        void *codes_p = xsum + sums;
        a.xscale = q.scale = scale;
        q.mode = act == QB_ACT_I8 ? Q_I8 : Q_FP8;
        if (act == QB_ACT_I8) {
            a.xq = q.xq = codes_p;
            a.xsum = q.xsum = xsum;
        } else {
            a.x8 = q.x8 = codes_p;
        }
    } else if (w->fmt == QB_FMT_I8 || w->fmt == QB_FMT_I4 || w->fmt == QB_FMT_I3 ||
               w->fmt == QB_FMT_I2) {
        /* 16-bit activations for the SIMD integer-weight kernels, once per call */
        size_t sums = (size_t)(n * (w->cols / QB_SUB));
        scratch = malloc((size_t)(n * w->cols) * sizeof(int16_t) + (size_t)n * sizeof(float) +
                         sums * sizeof(int32_t) + 64);
        if (!scratch) {
            free(xpad);
            return qb_err(QB_ENOMEM, "out of memory for 16-bit activations");
        }
        float *scale = scratch;
        int32_t *xsum = (int32_t *)(scale + n);
        int16_t *x16 = (int16_t *)(xsum + sums);
        q.mode = Q_I16;
        a.xscale = q.scale = scale;
        a.xsum = q.xsum = xsum;
        a.x16 = q.x16 = x16;
    }
    /* rows in blocks of 16 so kernels can keep several rows in flight; one thread for small work */
    block = 16;
    int64_t n_blocks = (rows + block - 1) / block;
    /* a parallel region costs tens of microseconds on a busy machine: only for real work;
     * small work does not enter one at all (even with if(0) it costs a team of one), nor does
     * any work with one thread. Blocks are handed out dynamically, several per chunk: on a
     * machine shared with other jobs a thread that was descheduled does not hold the others
     * at the barrier with its fixed half of the rows (every row block is still computed by
     * the same kernel call as before, so results do not change). The activations of 16 or
     * more tokens are quantized token by token in the same region, also handed out
     * dynamically (each token's codes do not depend on which thread makes them). */
    int threads = n * w->cols * rows >= (1 << 21) && n_blocks > 1 ? omp_get_max_threads() : 1;
    /* a few tokens are quantized before the region: a barrier costs more than they do */
    int par_quant = threads > 1 && n >= 16;
    if (!par_quant)
        quantize_tokens(&q, 0, n);
    if (threads > 1) {
        int64_t chunk = n_blocks / ((int64_t)threads * 8);
        chunk = chunk < 1 ? 1 : chunk;
#pragma omp parallel
        {
            if (par_quant && q.mode != Q_NONE) {
#pragma omp for schedule(dynamic, 8)
                for (int64_t t = 0; t < n; t++)
                    quantize_tokens(&q, t, t + 1);
            }
#pragma omp for schedule(dynamic, chunk)
            for (int64_t b = 0; b < n_blocks; b++) {
                int64_t r0 = b * block, r1 = r0 + block < rows ? r0 + block : rows;
                fn(w, r0, r1, &a, y, rows);
            }
        }
    } else {
        for (int64_t r0 = 0; r0 < rows; r0 += block)
            fn(w, r0, r0 + block < rows ? r0 + block : rows, &a, y, rows);
    }
    free(scratch);
    free(xpad);
    return 0;
}

int qb_qmatmul(float *y, const float *x, int64_t n, const struct qb_qtensor *w, enum qb_act act)
{
    /* one atomic load: the table was resolved once (dispatch.h) */
    return qb_qmatmul_with(&qb_kernels()->qdot, y, x, n, w, act);
}
