/* matmul_q: the quantized formats on the Vulkan device (matmul_q.h), with the shaders
 * mmq_<fmt>_<act>_{mv,mm}.comp (one body, mmq_body.glsl), qact.comp and qembed.comp.
 *
 * Upload. The packed rows go up as they are (qtensor.h's layout, never re-packed), in chunks
 * of whole rows (vk.h); the per-row scales of I8/E4M3/E5M2 go in a second buffer whose units
 * are one data chunk's scales, so a chunk's scales always lie in one binding. I8's row sums
 * are not uploaded: the shaders multiply signed codes directly, they have no use for them.
 *
 * Matmul. n <= 2 tokens take the matrix-vector kernel (2 rows a workgroup), more the tiled
 * one (4 rows x 8 tokens a workgroup). For ACT_I8 / ACT_FP8 the activations are quantized on
 * the device first (qact: per token, as qb_quantize_act_i8 / _fp8), into scratch kept per
 * context (vk->ext), in batches of tokens that fit one binding. Workgroup sizes come from
 * the device's limits and the row's length: 32 threads for a row of at most 32 blocks of 32
 * weights, else up to 128 (matrix-vector) or 64 (tiled, bounded by shared memory). */
#include "kernels/vulkan/matmul_q.h"

#include "kernels/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qb_vkq_weight {
    enum qb_fmt fmt;
    enum qb_act act;
    int64_t rows, cols, in_cols;
    int group, asym;
    uint64_t row_bytes;
    struct qb_vk_buf *data;  /* packed rows, a unit per row */
    struct qb_vk_buf *scale; /* row scales, a unit per data chunk; NULL where none */
};

/* per-context scratch for quantized activations (vk->ext) */
struct vkq_scratch {
    struct qb_vk_buf *codes, *xscale, *xsum;
    uint64_t codes_bytes, tokens; /* what they hold room for */
};

static int is_group(enum qb_fmt f)
{
    return f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
}

static const char *act_name(enum qb_act a)
{
    return a == QB_ACT_I8 ? "i8" : a == QB_ACT_FP8 ? "fp8" : "f32";
}

static int supported(enum qb_fmt f, enum qb_act a)
{
    switch (a) {
    case QB_ACT_F32: return f == QB_FMT_I8 || f == QB_FMT_E4M3 || f == QB_FMT_E5M2 || is_group(f);
    case QB_ACT_I8: return f == QB_FMT_I8 || is_group(f);
    case QB_ACT_FP8: return f == QB_FMT_E4M3;
    }
    return 0;
}

int qb_vkq_weight_new(struct qb_vk *vk, const struct qb_qtensor *t, enum qb_act act,
                      struct qb_vkq_weight **out)
{
    struct qb_vkq_weight *w;
    char what[160];
    int rc;

    *out = NULL;
    if (!supported(t->fmt, act))
        return qb_err(QB_EUNSUP, "vulkan: no kernel for %s weights with %s activations",
                      qb_fmt_name(t->fmt), act_name(act));
    if (is_group(t->fmt) &&
        ((t->group != 32 && t->group != 64 && t->group != 128) || t->cols % t->group))
        return qb_err(QB_EINVAL, "vulkan: group of %d does not fit %lld %s columns", t->group,
                      (long long)t->cols, qb_fmt_name(t->fmt));
    if (act != QB_ACT_F32 && t->cols % 32)
        return qb_err(QB_EINVAL, "vulkan: %lld input features are not a multiple of 32",
                      (long long)t->cols);
    if ((uint64_t)t->rows * t->row_bytes > (uint64_t)UINT32_MAX * 4 || t->cols > INT32_MAX / 127)
        return qb_err(QB_EINVAL, "vulkan: a (%lld, %lld) %s weight is too large",
                      (long long)t->rows, (long long)t->cols, qb_fmt_name(t->fmt));
    if (!(w = calloc(1, sizeof *w)))
        return qb_err(QB_ENOMEM, "out of memory for a weight handle");
    w->fmt = t->fmt;
    w->act = act;
    w->rows = t->rows;
    w->cols = t->cols;
    w->in_cols = t->in_cols > 0 ? t->in_cols : t->cols;
    w->group = t->group;
    w->asym = t->asym;
    w->row_bytes = t->row_bytes;
    snprintf(what, sizeof what, "a %lld x %lld %s weight", (long long)t->rows, (long long)t->cols,
             qb_fmt_name(t->fmt));
    if ((rc = qb_vk_buf_new(vk, (uint64_t)t->rows * t->row_bytes, t->row_bytes, QB_VK_MEM_WEIGHTS,
                            what, &w->data)) < 0 ||
        (rc = qb_vk_upload(vk, w->data, 0, t->data, (uint64_t)t->rows * t->row_bytes)) < 0)
        goto fail;
    if (t->row_scale) {
        uint64_t per = w->data->units_per_chunk * sizeof(float);
        snprintf(what, sizeof what, "the row scales of a %lld x %lld %s weight", (long long)t->rows,
                 (long long)t->cols, qb_fmt_name(t->fmt));
        if ((rc = qb_vk_buf_new(vk, (uint64_t)t->rows * sizeof(float), per, QB_VK_MEM_WEIGHTS, what,
                                &w->scale)) < 0 ||
            (rc = qb_vk_upload(vk, w->scale, 0, t->row_scale, (uint64_t)t->rows * sizeof(float))) <
                0)
            goto fail;
    }
    *out = w;
    return 0;
fail:
    qb_vkq_weight_free(vk, w);
    return rc;
}

void qb_vkq_weight_free(struct qb_vk *vk, struct qb_vkq_weight *w)
{
    if (!w)
        return;
    qb_vk_buf_free(vk, w->data);
    qb_vk_buf_free(vk, w->scale);
    free(w);
}

int64_t qb_vkq_weight_bytes(const struct qb_vkq_weight *w)
{
    if (!w)
        return 0;
    return (int64_t)(w->data->bytes + (w->scale ? w->scale->bytes : 0));
}

/* The scale binding of data chunk ch, and where its first row's scale is in it. A format
 * without scales binds the data chunk in its place (the shader never reads it). */
static struct qb_vk_range scale_range(const struct qb_vkq_weight *w, int ch, uint32_t *srow0)
{
    uint64_t per, in;
    int sc;
    if (!w->scale) {
        *srow0 = 0;
        return qb_vk_chunk_range(w->data, ch);
    }
    per = w->scale->units_per_chunk;
    sc = (int)((uint64_t)ch / per);
    in = (uint64_t)ch % per;
    *srow0 = (uint32_t)(in * w->data->units_per_chunk);
    return qb_vk_chunk_range(w->scale, sc);
}

static void scratch_free(struct qb_vk *vk, void *ext)
{
    struct vkq_scratch *s = ext;
    qb_vk_buf_free(vk, s->codes);
    qb_vk_buf_free(vk, s->xscale);
    qb_vk_buf_free(vk, s->xsum);
    free(s);
}

/* Scratch for `tokens` tokens of cols codes, kept in vk->ext and grown as needed. */
static int scratch_for(struct qb_vk *vk, uint64_t tokens, uint64_t cols, struct vkq_scratch **out)
{
    struct vkq_scratch *s = vk->ext;
    int rc;
    if (!s) {
        if (!(s = calloc(1, sizeof *s)))
            return qb_err(QB_ENOMEM, "out of memory for the quantized activations' scratch");
        vk->ext = s;
        vk->ext_free = scratch_free;
    }
    if (s->codes_bytes < tokens * cols || s->tokens < tokens) {
        uint64_t cb = s->codes_bytes > tokens * cols ? s->codes_bytes : tokens * cols;
        uint64_t nt = s->tokens > tokens ? s->tokens : tokens;
        qb_vk_buf_free(vk, s->codes);
        qb_vk_buf_free(vk, s->xscale);
        qb_vk_buf_free(vk, s->xsum);
        s->codes = s->xscale = s->xsum = NULL;
        s->codes_bytes = s->tokens = 0;
        if ((rc = qb_vk_buf_new(vk, cb, 0, QB_VK_MEM_SCRATCH, "the quantized activations",
                                &s->codes)) < 0 ||
            (rc = qb_vk_buf_new(vk, nt * sizeof(float), 0, QB_VK_MEM_SCRATCH,
                                "the activation scales", &s->xscale)) < 0 ||
            (rc = qb_vk_buf_new(vk, cb / 32 * sizeof(int32_t) + 16, 0, QB_VK_MEM_SCRATCH,
                                "the activation sums", &s->xsum)) < 0)
            return rc;
        s->codes_bytes = cb;
        s->tokens = nt;
    }
    *out = s;
    return 0;
}

/* a power of two in [32, cap] near `blocks` (blocks of 32 weights a thread takes first) */
static uint32_t wg_for(uint64_t blocks, uint32_t cap)
{
    return blocks <= 32 || cap < 64 ? 32 : cap;
}

int qb_vkq_matmul(struct qb_vk *vk, struct qb_vk_buf *y, const struct qb_vk_buf *x, int64_t n,
                  const struct qb_vkq_weight *w)
{
    static const char *const fmts[QB_FMT_COUNT] = {
        [QB_FMT_E4M3] = "e4m3", [QB_FMT_E5M2] = "e5m2", [QB_FMT_I8] = "i8",
        [QB_FMT_I4] = "i4",     [QB_FMT_I3] = "i3",     [QB_FMT_I2] = "i2"};
    const int tiled = n > 2;
    const uint32_t rm = tiled ? 4 : 2, tn = tiled ? 8 : 1;
    const uint64_t blocks = (uint64_t)(w->cols + 31) / 32;
    uint32_t cap = tiled ? 64 : 128, wg;
    struct qb_vk_pipe *p, *pq = NULL;
    struct vkq_scratch *s = NULL;
    char name[32];
    int64_t batch = n;
    int rc;

    if (n <= 0)
        return 0;
    while (cap > 32 &&
           (cap > vk->lim.max_invocations || (uint64_t)cap * rm * tn * 4 > vk->lim.shared_bytes))
        cap /= 2;
    if (cap * rm * tn * 4 > vk->lim.shared_bytes || cap > vk->lim.max_invocations)
        return qb_err(QB_EUNSUP, "vulkan: the device's workgroups are too small for %s matmuls",
                      qb_fmt_name(w->fmt));
    wg = wg_for(blocks, cap);
    snprintf(name, sizeof name, "mmq_%s_%s_%s", fmts[w->fmt], act_name(w->act),
             tiled ? "mm" : "mv");
    if ((rc = qb_vk_pipeline(vk, name, 6, &wg, 1, &p)) < 0)
        return rc;
    if (w->act != QB_ACT_F32) {
        uint32_t qwg = vk->lim.wg_size < 64 ? vk->lim.wg_size : 64;
        int64_t fit = (int64_t)(vk->max_range / (uint64_t)w->cols);
        if (fit < 1)
            return qb_err(QB_ENOMEM, "vulkan: one token's %lld codes exceed a binding",
                          (long long)w->cols);
        batch = n < fit ? n : fit;
        if ((rc = qb_vk_pipeline(vk, "qact", 4, &qwg, 1, &pq)) < 0 ||
            (rc = scratch_for(vk, (uint64_t)batch, (uint64_t)w->cols, &s)) < 0)
            return rc;
    }
    for (int64_t t0 = 0; t0 < n; t0 += batch) {
        const int64_t k = n - t0 < batch ? n - t0 : batch;
        struct qb_vk_range xq = qb_vk_chunk_range(x, 0), xs = xq, xsum = xq;
        if (s) {
            struct {
                uint32_t n, cols, in_cols, fp8, t0;
            } pc = {(uint32_t)k, (uint32_t)w->cols, (uint32_t)w->in_cols, w->act == QB_ACT_FP8,
                    (uint32_t)t0};
            struct qb_vk_range b[4] = {qb_vk_chunk_range(x, 0), qb_vk_chunk_range(s->codes, 0),
                                       qb_vk_chunk_range(s->xscale, 0),
                                       qb_vk_chunk_range(s->xsum, 0)};
            if ((rc = qb_vk_dispatch(vk, pq, b, 4, &pc, sizeof pc, (uint32_t)k, 1, 1)) < 0)
                return rc;
            xq = b[1];
            xs = b[2];
            xsum = b[3];
        }
        for (int ch = 0; ch < w->data->n_chunks; ch++) {
            const uint64_t rows = w->data->chunk[ch].bytes / w->row_bytes;
            const uint64_t row0 = (uint64_t)ch * w->data->units_per_chunk;
            /* a chunk's rows in dispatches the grid can take */
            const uint64_t per = (uint64_t)vk->lim.max_group_x * rm;
            uint32_t srow0;
            struct qb_vk_range sr = scale_range(w, ch, &srow0);
            for (uint64_t r0 = 0; r0 < rows; r0 += per) {
                const uint64_t nr = rows - r0 < per ? rows - r0 : per;
                struct {
                    uint32_t rows, row0, srow0, wbase, row_bytes, cols, in_cols, n, ldy, group,
                        asym, t0;
                } pc = {(uint32_t)nr,           (uint32_t)(row0 + r0),
                        (uint32_t)(srow0 + r0), (uint32_t)(r0 * w->row_bytes),
                        (uint32_t)w->row_bytes, (uint32_t)w->cols,
                        (uint32_t)w->in_cols,   (uint32_t)k,
                        (uint32_t)w->rows,      (uint32_t)w->group,
                        (uint32_t)w->asym,      (uint32_t)t0};
                struct qb_vk_range b[6] = {qb_vk_chunk_range(w->data, ch), sr, xq, xs, xsum,
                                           qb_vk_chunk_range(y, 0)};
                uint32_t gy = (uint32_t)((k + tn - 1) / tn);
                if (gy > vk->lim.max_group_x)
                    return qb_err(QB_EINVAL, "vulkan matmul: %lld tokens exceed the grid",
                                  (long long)k);
                if ((rc = qb_vk_dispatch(vk, p, b, 6, &pc, sizeof pc,
                                         (uint32_t)((nr + rm - 1) / rm), gy, 1)) < 0)
                    return rc;
            }
        }
    }
    return 0;
}

int qb_vkq_embed(struct qb_vk *vk, const struct qb_vkq_weight *table, struct qb_vk_range tok,
                 int64_t n, struct qb_vk_buf *x)
{
    struct qb_vk_pipe *p;
    uint32_t wg = vk->lim.wg_size < 64 ? vk->lim.wg_size : 64;
    int rc;
    if (n <= 0)
        return 0;
    if (n > (int64_t)vk->lim.max_group_x)
        return qb_err(QB_EINVAL, "vulkan embed: %lld tokens exceed the grid", (long long)n);
    if ((rc = qb_vk_pipeline(vk, "qembed", 4, &wg, 1, &p)) < 0)
        return rc;
    for (int ch = 0; ch < table->data->n_chunks; ch++) {
        uint32_t srow0;
        struct qb_vk_range sr = scale_range(table, ch, &srow0);
        struct {
            uint32_t rows, row0, srow0, wbase, row_bytes, cols, in_cols, n, fmt, group, asym;
        } pc = {(uint32_t)(table->data->chunk[ch].bytes / table->row_bytes),
                (uint32_t)((uint64_t)ch * table->data->units_per_chunk),
                srow0,
                0,
                (uint32_t)table->row_bytes,
                (uint32_t)table->cols,
                (uint32_t)table->in_cols,
                (uint32_t)n,
                (uint32_t)table->fmt,
                (uint32_t)table->group,
                (uint32_t)table->asym};
        struct qb_vk_range b[4] = {qb_vk_chunk_range(table->data, ch), sr, tok,
                                   qb_vk_chunk_range(x, 0)};
        uint32_t gx = (uint32_t)((table->in_cols + wg - 1) / wg);
        if ((rc = qb_vk_dispatch(vk, p, b, 4, &pc, sizeof pc, gx, (uint32_t)n, 1)) < 0)
            return rc;
    }
    return 0;
}
