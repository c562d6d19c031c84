/* backend_vulkan: the ops of kernels/backend.h on a Vulkan device (backend_vulkan.h), on the
 * infrastructure of vk.h. F32/F16/BF16 weights are kept here (shaders embed_f, mv_f[_sg],
 * mm_f); every other format goes to matmul_q.h. Ops are recorded into one command buffer
 * and run when the host needs data (read, logits), or when a buffer is written or freed.
 *
 * Numerics follow the CPU backend (kernels/cpu/backend_cpu.c): RoPE's cos/sin come from the
 * same float expressions on the host (a table per position, uploaded once); RMSNorm, SwiGLU
 * and attention use its formulas with f32 sums in another order (parallel reductions), so
 * results agree to rounding, not to the bit. */
#include "kernels/vulkan/backend_vulkan.h"

#include "kernels/base/err.h"
#include "kernels/vulkan/matmul_q.h"
#include "kernels/vulkan/vk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qb_bbuf {
    struct qb_vk_buf *b; /* one chunk */
    int64_t n;
};

struct qb_bweight {
    enum qb_fmt fmt;
    enum qb_act act;
    int64_t rows, cols, in_cols;
    struct qb_vk_buf *data;  /* F32/F16/BF16: rows in chunks of whole rows */
    struct qb_vkq_weight *q; /* any other format */
};

struct vkb {
    struct qb_vk *vk;
    struct qb_backend_shape sh;
    int64_t kv_dim;
    struct qb_vk_buf **kc, **vc; /* per layer (max_ctx, kv_dim) */
    struct qb_vk_buf *cs;        /* (max_ctx, head_dim): cos then sin per position */
    struct qb_vk_buf *lg;        /* logits scratch (lg_n floats) */
    int64_t lg_n;
};

#define WG(c) ((c)->vk->lim.wg_size)

static uint32_t groups(int64_t work, uint32_t per, uint32_t max)
{
    int64_t g = (work + per - 1) / per;
    if (g < 1)
        g = 1;
    return g > (int64_t)max ? max : (uint32_t)g;
}

/* a workgroup size for `work` items split about `per` to a thread: a power of two from
 * `lo` (or the subgroup) up to the device's 1-D size */
static uint32_t wg_for(const struct vkb *c, int64_t work, int64_t per, uint32_t lo)
{
    uint32_t wg = 1;
    if (c->vk->lim.subgroup_size > lo)
        lo = c->vk->lim.subgroup_size;
    while (wg < lo || ((int64_t)wg * per < work && wg < c->vk->lim.wg_size))
        wg *= 2;
    return wg > c->vk->lim.wg_size ? c->vk->lim.wg_size : wg;
}

static void vkb_free(void *vctx)
{
    struct vkb *c = vctx;
    if (!c)
        return;
    if (c->vk) {
        (void)qb_vk_flush(c->vk);
        for (int64_t l = 0; c->kc && l < c->sh.cache_layers; l++) {
            qb_vk_buf_free(c->vk, c->kc[l]);
            qb_vk_buf_free(c->vk, c->vc[l]);
        }
        qb_vk_buf_free(c->vk, c->cs);
        qb_vk_buf_free(c->vk, c->lg);
        qb_vk_free(c->vk);
    }
    free(c->kc);
    free(c->vc);
    free(c);
}

/* ---- memory ---------------------------------------------------------------------------- */

static int buf_new(void *vctx, int64_t n, struct qb_bbuf **out)
{
    struct vkb *c = vctx;
    struct qb_bbuf *b = calloc(1, sizeof *b);
    char what[96];
    int rc;

    *out = NULL;
    if (!b || n < 0) {
        free(b);
        return qb_err(QB_ENOMEM, "out of memory for a buffer of %lld floats", (long long)n);
    }
    snprintf(what, sizeof what, "an activation buffer of %lld floats", (long long)n);
    if ((rc = qb_vk_buf_new(c->vk, (uint64_t)(n ? n : 1) * 4, 0, QB_VK_MEM_SCRATCH, what, &b->b)) <
        0) {
        free(b);
        return rc;
    }
    b->n = n;
    *out = b;
    return 0;
}

static void buf_free(void *vctx, struct qb_bbuf *b)
{
    struct vkb *c = vctx;
    if (!b)
        return;
    qb_vk_buf_free(c->vk, b->b);
    free(b);
}

static int range_ok(const struct qb_bbuf *b, int64_t off, int64_t n, const char *op)
{
    if (off < 0 || n < 0 || off + n > b->n)
        return qb_err(QB_EINVAL, "vulkan %s: %lld floats at %lld past a buffer of %lld", op,
                      (long long)n, (long long)off, (long long)b->n);
    return 0;
}

static int buf_write(void *vctx, struct qb_bbuf *dst, int64_t off, const float *src, int64_t n)
{
    struct vkb *c = vctx;
    int rc = range_ok(dst, off, n, "write");
    return rc < 0 ? rc : qb_vk_upload(c->vk, dst->b, (uint64_t)off * 4, src, (uint64_t)n * 4);
}

static int buf_read(void *vctx, const struct qb_bbuf *src, int64_t off, float *dst, int64_t n)
{
    struct vkb *c = vctx;
    int rc = range_ok(src, off, n, "read");
    return rc < 0 ? rc : qb_vk_download(c->vk, src->b, (uint64_t)off * 4, dst, (uint64_t)n * 4);
}

static int buf_copy(void *vctx, struct qb_bbuf *dst, int64_t doff, const struct qb_bbuf *src,
                    int64_t soff, int64_t n)
{
    struct vkb *c = vctx;
    int rc;
    if ((rc = range_ok(dst, doff, n, "copy")) < 0 || (rc = range_ok(src, soff, n, "copy")) < 0)
        return rc;
    return qb_vk_copy(c->vk, dst->b, (uint64_t)doff * 4, src->b, (uint64_t)soff * 4,
                      (uint64_t)n * 4);
}

static int is_float(enum qb_fmt f)
{
    return f == QB_FMT_F32 || f == QB_FMT_F16 || f == QB_FMT_BF16;
}

static int weight_new(void *vctx, const struct qb_qtensor *t, enum qb_act act,
                      struct qb_bweight **out)
{
    struct vkb *c = vctx;
    struct qb_bweight *w = calloc(1, sizeof *w);
    char what[128];
    int rc;

    *out = NULL;
    if (!w)
        return qb_err(QB_ENOMEM, "out of memory for a weight handle");
    w->fmt = t->fmt;
    w->act = act;
    w->rows = t->rows;
    w->cols = t->cols;
    w->in_cols = t->in_cols > 0 ? t->in_cols : t->cols;
    if (!is_float(t->fmt)) {
        if ((rc = qb_vkq_weight_new(c->vk, t, act, &w->q)) < 0) {
            free(w);
            return rc;
        }
        *out = w;
        return 0;
    }
    if (act != QB_ACT_F32) {
        free(w);
        return qb_err(QB_EUNSUP, "vulkan: %s weights take f32 activations only",
                      qb_fmt_name(t->fmt));
    }
    snprintf(what, sizeof what, "a %lld x %lld %s weight", (long long)t->rows, (long long)t->cols,
             qb_fmt_name(t->fmt));
    if ((rc = qb_vk_buf_new(c->vk, (uint64_t)t->rows * t->row_bytes, t->row_bytes,
                            QB_VK_MEM_WEIGHTS, what, &w->data)) < 0 ||
        (rc = qb_vk_upload(c->vk, w->data, 0, t->data, (uint64_t)t->rows * t->row_bytes)) < 0) {
        qb_vk_buf_free(c->vk, w->data);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

static void weight_free(void *vctx, struct qb_bweight *w)
{
    struct vkb *c = vctx;
    if (!w)
        return;
    qb_vk_buf_free(c->vk, w->data);
    qb_vkq_weight_free(c->vk, w->q);
    free(w);
}

/* ---- math ---------------------------------------------------------------------------- */

static uint32_t fmt_code(enum qb_fmt f)
{
    return f == QB_FMT_F32 ? 0 : f == QB_FMT_F16 ? 1 : 2;
}

static int embed(void *vctx, const struct qb_bweight *table, const int32_t *tok, int64_t n,
                 struct qb_bbuf *x)
{
    struct vkb *c = vctx;
    struct qb_vk_range tr;
    struct qb_vk_pipe *p;
    int rc;

    if (n <= 0)
        return 0;
    if ((rc = range_ok(x, 0, n * table->in_cols, "embed")) < 0)
        return rc;
    for (int64_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= table->rows)
            return qb_err(QB_EINVAL, "vulkan embed: token %d outside the table's %lld rows", tok[i],
                          (long long)table->rows);
    if ((rc = qb_vk_arena(c->vk, tok, (uint64_t)n * sizeof *tok, &tr)) < 0)
        return rc;
    if (table->q)
        return qb_vkq_embed(c->vk, table->q, tr, n, x->b);
    uint32_t spec[2] = {WG(c), fmt_code(table->fmt)};
    if ((rc = qb_vk_pipeline(c->vk, "embed_f", 3, spec, 2, &p)) < 0)
        return rc;
    for (int ch = 0; ch < table->data->n_chunks; ch++) {
        uint64_t row0 = (uint64_t)ch * table->data->units_per_chunk;
        struct {
            uint32_t n, d, cols, row0, rows;
        } pc = {(uint32_t)n, (uint32_t)table->in_cols, (uint32_t)table->cols, (uint32_t)row0,
                (uint32_t)(table->data->chunk[ch].bytes / table->data->unit)};
        struct qb_vk_range b[3] = {qb_vk_chunk_range(table->data, ch), tr,
                                   qb_vk_chunk_range(x->b, 0)};
        if ((rc = qb_vk_dispatch(c->vk, p, b, 3, &pc, sizeof pc,
                                 groups(table->in_cols, WG(c), c->vk->lim.max_group_x), (uint32_t)n,
                                 1)) < 0)
            return rc;
    }
    return 0;
}

/* y (n, ldy) columns of each chunk's rows = x . W^T for a float-format weight: the
 * matrix-vector kernel for one or two tokens, the tiled kernel for more */
static int matmul_f(struct vkb *c, struct qb_vk_buf *y, const struct qb_vk_buf *x, int64_t n,
                    const struct qb_bweight *w)
{
    struct qb_vk_pipe *p;
    int rc, tiled = n > 2;
    uint32_t ts = c->vk->lim.max_invocations >= 256 ? 16 : 8;
    const int sg = c->vk->caps.subgroup && !getenv("QB_VK_NO_SUBGROUP");
    /* subgroup path: a subgroup per row, 64 threads (or one subgroup) a workgroup; shared
     * path: a workgroup per row, about 4 inputs per thread, so that a short row does not idle
     * 256 threads */
    uint32_t mv_wg = sg ? wg_for(c, 64, 1, 1) : wg_for(c, w->in_cols, 4, 32);
    uint32_t mv_rows = sg ? mv_wg / c->vk->lim.subgroup_size : 1; /* rows a workgroup takes */

    if (tiled) {
        uint32_t spec[3] = {ts, fmt_code(w->fmt), ts};
        rc = qb_vk_pipeline(c->vk, "mm_f", 3, spec, 3, &p);
    } else {
        uint32_t spec[2] = {mv_wg, fmt_code(w->fmt)};
        rc = qb_vk_pipeline(c->vk, sg ? "mv_f_sg" : "mv_f", 3, spec, 2, &p);
    }
    if (rc < 0)
        return rc;
    for (int ch = 0; ch < w->data->n_chunks; ch++) {
        uint32_t rows = (uint32_t)(w->data->chunk[ch].bytes / w->data->unit);
        struct {
            uint32_t n, k, cols, row0, rows, ldy;
        } pc = {(uint32_t)n,
                (uint32_t)w->in_cols,
                (uint32_t)w->cols,
                (uint32_t)((uint64_t)ch * w->data->units_per_chunk),
                rows,
                (uint32_t)w->rows};
        struct qb_vk_range b[3] = {qb_vk_chunk_range(y, 0), qb_vk_chunk_range(x, 0),
                                   qb_vk_chunk_range(w->data, ch)};
        /* the tiled kernel: 4 ts x 4 ts outputs a workgroup (mm_f.comp) */
        uint32_t gx = tiled ? groups(rows, 4 * ts, c->vk->lim.max_group_x)
                            : groups(rows, mv_rows, c->vk->lim.max_group_x);
        uint32_t gy = tiled ? groups(n, 4 * ts, c->vk->lim.max_group_x)
                            : groups(n, 1, c->vk->lim.max_group_x);
        if (tiled && ((int64_t)gx * 4 * ts < rows || (int64_t)gy * 4 * ts < n))
            return qb_err(QB_EINVAL, "vulkan matmul: %u rows by %lld tokens exceed the grid", rows,
                          (long long)n);
        if ((rc = qb_vk_dispatch(c->vk, p, b, 3, &pc, sizeof pc, gx, gy, 1)) < 0)
            return rc;
    }
    return 0;
}

static int matmul(void *vctx, struct qb_bbuf *y, const struct qb_bbuf *x, int64_t n,
                  const struct qb_bweight *w)
{
    struct vkb *c = vctx;
    int rc;
    if (n <= 0)
        return 0;
    if ((rc = range_ok(y, 0, n * w->rows, "matmul")) < 0 ||
        (rc = range_ok(x, 0, n * w->in_cols, "matmul")) < 0)
        return rc;
    if (w->q)
        return qb_vkq_matmul(c->vk, y->b, x->b, n, w->q);
    return matmul_f(c, y->b, x->b, n, w);
}

/* the head into a scratch buffer, read back in batches of tokens that fit one binding */
static int logits(void *vctx, float *out, const struct qb_bbuf *x, int64_t n,
                  const struct qb_bweight *head)
{
    struct vkb *c = vctx;
    int64_t per = (int64_t)(c->vk->max_range / 4 / (uint64_t)head->rows), rc;
    if (n <= 0)
        return 0;
    if ((rc = range_ok(x, 0, n * head->in_cols, "logits")) < 0)
        return (int)rc;
    if (per < 1)
        return qb_err(QB_ENOMEM, "vulkan: one row of %lld logits exceeds a binding",
                      (long long)head->rows);
    if (per > n)
        per = n;
    if (c->lg_n < per * head->rows) {
        qb_vk_buf_free(c->vk, c->lg);
        c->lg = NULL;
        c->lg_n = 0;
        if ((rc = qb_vk_buf_new(c->vk, (uint64_t)(per * head->rows) * 4, 0, QB_VK_MEM_SCRATCH,
                                "the logits", &c->lg)) < 0)
            return (int)rc;
        c->lg_n = per * head->rows;
    }
    for (int64_t t0 = 0; t0 < n; t0 += per) {
        int64_t k = n - t0 < per ? n - t0 : per;
        const struct qb_vk_buf *xs = x->b;
        struct qb_vk_buf *tmp = NULL;
        if (t0) { /* the batch's rows of x, moved to the front of a temporary */
            if ((rc = qb_vk_buf_new(c->vk, (uint64_t)(k * head->in_cols) * 4, 0, QB_VK_MEM_SCRATCH,
                                    "the logits' input", &tmp)) < 0 ||
                (rc = qb_vk_copy(c->vk, tmp, 0, x->b, (uint64_t)(t0 * head->in_cols) * 4,
                                 (uint64_t)(k * head->in_cols) * 4)) < 0) {
                qb_vk_buf_free(c->vk, tmp);
                return (int)rc;
            }
            xs = tmp;
        }
        rc =
            head->q ? qb_vkq_matmul(c->vk, c->lg, xs, k, head->q) : matmul_f(c, c->lg, xs, k, head);
        if (rc == 0)
            rc = qb_vk_download(c->vk, c->lg, 0, out + t0 * head->rows,
                                (uint64_t)(k * head->rows) * 4);
        qb_vk_buf_free(c->vk, tmp);
        if (rc < 0)
            return (int)rc;
    }
    return 0;
}

static int rmsnorm(void *vctx, struct qb_bbuf *y, const struct qb_bbuf *x, const struct qb_bbuf *w,
                   int64_t n, int64_t d)
{
    struct vkb *c = vctx;
    struct qb_vk_pipe *p;
    int rc;
    uint32_t spec[1] = {wg_for(c, d, 4, 32)};
    struct {
        uint32_t n, d;
        float eps;
    } pc = {(uint32_t)n, (uint32_t)d, c->sh.norm_eps};
    if (n <= 0)
        return 0;
    if ((rc = range_ok(y, 0, n * d, "rmsnorm")) < 0 ||
        (rc = range_ok(x, 0, n * d, "rmsnorm")) < 0 || (rc = range_ok(w, 0, d, "rmsnorm")) < 0 ||
        (rc = qb_vk_pipeline(c->vk, "rmsnorm", 3, spec, 1, &p)) < 0)
        return rc;
    struct qb_vk_range b[3] = {qb_vk_chunk_range(y->b, 0), qb_vk_chunk_range(x->b, 0),
                               qb_vk_chunk_range(w->b, 0)};
    return qb_vk_dispatch(c->vk, p, b, 3, &pc, sizeof pc, groups(n, 1, c->vk->lim.max_group_x), 1,
                          1);
}

/* a (count) op= b: 0 add, 1 swiglu, 2 bias of d per row */
static int elementwise(struct vkb *c, uint32_t op, struct qb_bbuf *a, const struct qb_bbuf *b,
                       int64_t count, int64_t d)
{
    struct qb_vk_pipe *p;
    int rc;
    uint32_t spec[2] = {WG(c), op};
    struct {
        uint32_t count, d;
    } pc = {(uint32_t)count, (uint32_t)d};
    if (count <= 0)
        return 0;
    if ((rc = range_ok(a, 0, count, "elementwise")) < 0 ||
        (rc = range_ok(b, 0, op == 2 ? d : count, "elementwise")) < 0 ||
        (rc = qb_vk_pipeline(c->vk, "ew", 2, spec, 2, &p)) < 0)
        return rc;
    struct qb_vk_range bind[2] = {qb_vk_chunk_range(a->b, 0), qb_vk_chunk_range(b->b, 0)};
    return qb_vk_dispatch(c->vk, p, bind, 2, &pc, sizeof pc,
                          groups(count, WG(c), c->vk->lim.max_group_x), 1, 1);
}

static int add_bias(void *vctx, struct qb_bbuf *y, const struct qb_bbuf *b, int64_t n, int64_t d)
{
    return elementwise(vctx, 2, y, b, n * d, d);
}

static int add(void *vctx, struct qb_bbuf *x, const struct qb_bbuf *y, int64_t n)
{
    return elementwise(vctx, 0, x, y, n, 1);
}

static int swiglu(void *vctx, struct qb_bbuf *g, const struct qb_bbuf *u, int64_t n)
{
    return elementwise(vctx, 1, g, u, n, 1);
}

static int rope(void *vctx, struct qb_bbuf *x, int64_t n, int64_t n_heads, int64_t pos)
{
    struct vkb *c = vctx;
    struct qb_vk_pipe *p;
    int rc;
    const int64_t hd = c->sh.head_dim;
    uint32_t spec[1] = {WG(c)};
    struct {
        uint32_t n, n_heads, hd, pos, half_style;
    } pc = {(uint32_t)n, (uint32_t)n_heads, (uint32_t)hd, (uint32_t)pos,
            c->sh.rope_style == QB_BROPE_HALF};
    if (n <= 0)
        return 0;
    if (n > c->sh.max_batch || pos < 0 || pos + n > c->sh.max_ctx)
        return qb_err(QB_EINVAL,
                      "rope: %lld tokens at %lld exceed the backend's batch of %lld "
                      "or context of %lld",
                      (long long)n, (long long)pos, (long long)c->sh.max_batch,
                      (long long)c->sh.max_ctx);
    if ((rc = range_ok(x, 0, n * n_heads * hd, "rope")) < 0 ||
        (rc = qb_vk_pipeline(c->vk, "rope", 2, spec, 1, &p)) < 0)
        return rc;
    struct qb_vk_range b[2] = {qb_vk_chunk_range(x->b, 0), qb_vk_chunk_range(c->cs, 0)};
    return qb_vk_dispatch(c->vk, p, b, 2, &pc, sizeof pc,
                          groups(n * n_heads * (hd / 2), WG(c), c->vk->lim.max_group_x), 1, 1);
}

static int attention(void *vctx, int64_t layer, const struct qb_bbuf *q, const struct qb_bbuf *k,
                     const struct qb_bbuf *v, struct qb_bbuf *out, int64_t n, int64_t pos,
                     int64_t n_heads, int64_t n_kv_heads, int64_t window)
{
    struct vkb *c = vctx;
    const int64_t hd = c->sh.head_dim, kvd = c->kv_dim, ctx = c->sh.max_ctx;
    const int64_t qd = n_heads * hd, kvw = n_kv_heads * hd;
    struct qb_vk_pipe *p;
    int rc;

    if (layer < 0 || layer >= c->sh.cache_layers || pos < 0 || n > c->sh.max_batch ||
        pos + n > ctx || n_kv_heads < 1 || n_kv_heads > c->sh.n_kv_heads ||
        n_heads % n_kv_heads != 0 || n_heads > c->sh.n_heads || window < 0 || window > UINT32_MAX)
        return qb_err(QB_EINVAL,
                      "attention: layer %lld, %lld tokens at %lld, %lld/%lld heads "
                      "do not fit the backend",
                      (long long)layer, (long long)n, (long long)pos, (long long)n_heads,
                      (long long)n_kv_heads);
    if (n <= 0)
        return 0;
    if ((rc = range_ok(q, 0, n * qd, "attention")) < 0 ||
        (rc = range_ok(k, 0, n * kvw, "attention")) < 0 ||
        (rc = range_ok(v, 0, n * kvw, "attention")) < 0 ||
        (rc = range_ok(out, 0, n * qd, "attention")) < 0)
        return rc;
    /* append k and v at positions pos .. pos+n-1 (rows of kvd; a head subset fills the front) */
    for (int64_t t = 0; t < n; t += kvw == kvd ? n : 1) {
        int64_t len = kvw == kvd ? n * kvd : kvw;
        if ((rc = qb_vk_copy(c->vk, c->kc[layer], (uint64_t)((pos + t) * kvd) * 4, k->b,
                             (uint64_t)(t * kvw) * 4, (uint64_t)len * 4)) < 0 ||
            (rc = qb_vk_copy(c->vk, c->vc[layer], (uint64_t)((pos + t) * kvd) * 4, v->b,
                             (uint64_t)(t * kvw) * 4, (uint64_t)len * 4)) < 0)
            return rc;
    }
    /* scores held in shared memory beside q, the accumulator and the reduction */
    uint32_t wg = wg_for(c, hd, 1, 64), hdmax = (uint32_t)hd;
    int64_t room = (int64_t)c->vk->lim.shared_bytes / 4 - 2 * hdmax - wg - 64;
    uint32_t s = (uint32_t)(room < ctx ? room : ctx);
    if (s > 4096)
        s = 4096;
    if (room < 16)
        return qb_err(QB_EUNSUP,
                      "vulkan attention: head_dim %lld does not fit %u bytes of shared "
                      "memory",
                      (long long)hd, c->vk->lim.shared_bytes);
    uint32_t spec[3] = {wg, s, hdmax};
    struct {
        uint32_t n, pos, n_heads, group, hd, kvd, qd;
        float scale;
        uint32_t window;
    } pc = {(uint32_t)n,     (uint32_t)pos, (uint32_t)n_heads, (uint32_t)(n_heads / n_kv_heads),
            (uint32_t)hd,    (uint32_t)kvd, (uint32_t)qd,      1.0f / sqrtf((float)hd),
            (uint32_t)window};
    if ((rc = qb_vk_pipeline(c->vk, "attn", 4, spec, 3, &p)) < 0)
        return rc;
    struct qb_vk_range b[4] = {qb_vk_chunk_range(q->b, 0), qb_vk_chunk_range(c->kc[layer], 0),
                               qb_vk_chunk_range(c->vc[layer], 0), qb_vk_chunk_range(out->b, 0)};
    return qb_vk_dispatch(c->vk, p, b, 4, &pc, sizeof pc, (uint32_t)n_heads, (uint32_t)n, 1);
}

static int vkb_mem(void *vctx, struct qb_backend_mem *m)
{
    struct vkb *c = vctx;
    m->weights = c->vk->mem[QB_VK_MEM_WEIGHTS];
    m->kv_cache = c->vk->mem[QB_VK_MEM_KV];
    m->scratch = c->vk->mem[QB_VK_MEM_SCRATCH];
    m->peak = c->vk->peak;
    m->capacity = (int64_t)c->vk->capacity;
    return 0;
}

static const char *vkb_device_name(void *vctx)
{
    return ((struct vkb *)vctx)->vk->device_words;
}

static const struct qb_backend_ops vulkan_ops = {
    .name = "vulkan",
    .free = vkb_free,
    .buf_new = buf_new,
    .buf_free = buf_free,
    .write = buf_write,
    .read = buf_read,
    .copy = buf_copy,
    .weight_new = weight_new,
    .weight_free = weight_free,
    .embed = embed,
    .matmul = matmul,
    .rmsnorm = rmsnorm,
    .add_bias = add_bias,
    .add = add,
    .rope = rope,
    .attention = attention,
    .swiglu = swiglu,
    .logits = logits,
    .mem = vkb_mem,
    .device_name = vkb_device_name,
};

int qb_backend_vulkan_new(const struct qb_backend_shape *shape, struct qb_backend *out)
{
    const struct qb_backend_shape *s = shape;
    struct vkb *c;
    float *cs = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (s->dim <= 0 || s->n_heads <= 0 || s->n_kv_heads <= 0 || s->n_heads % s->n_kv_heads ||
        s->head_dim <= 0 || s->head_dim % 2 || s->max_ctx <= 0 || s->cache_layers <= 0 ||
        s->max_batch <= 0 || s->max_ctx > UINT32_MAX / 8 / s->head_dim)
        return qb_err(QB_EINVAL,
                      "vulkan backend: bad shape (dim %lld, heads %lld/%lld of %lld, "
                      "context %lld, batch %lld)",
                      (long long)s->dim, (long long)s->n_heads, (long long)s->n_kv_heads,
                      (long long)s->head_dim, (long long)s->max_ctx, (long long)s->max_batch);
    if (!(c = calloc(1, sizeof *c)))
        return qb_err(QB_ENOMEM, "out of memory for the vulkan backend");
    c->sh = *s;
    c->kv_dim = s->n_kv_heads * s->head_dim;
    if ((rc = qb_vk_new(s->device, &c->vk)) < 0)
        goto fail;
    {
        /* the KV cache is checked whole before any of it is allocated */
        double kv = 2.0 * (double)s->cache_layers * (double)s->max_ctx * (double)c->kv_dim * 4;
        if (kv > (double)c->vk->capacity) {
            rc = qb_err(QB_ENOMEM,
                        "vulkan: a KV cache of %lld positions in %lld layers (%.0f MiB) does not "
                        "fit %s (%llu MiB)",
                        (long long)s->max_ctx, (long long)s->cache_layers, kv / 1048576.0,
                        c->vk->name, (unsigned long long)(c->vk->capacity >> 20));
            goto fail;
        }
    }
    if (!(c->kc = calloc((size_t)s->cache_layers, sizeof *c->kc)) ||
        !(c->vc = calloc((size_t)s->cache_layers, sizeof *c->vc))) {
        rc = qb_err(QB_ENOMEM, "out of memory for the vulkan backend");
        goto fail;
    }
    for (int64_t l = 0; l < s->cache_layers; l++) {
        char what[128];
        snprintf(what, sizeof what, "the KV cache of layer %lld (%lld positions)", (long long)l,
                 (long long)s->max_ctx);
        uint64_t bytes = (uint64_t)(s->max_ctx * c->kv_dim) * 4;
        if ((rc = qb_vk_buf_new(c->vk, bytes, 0, QB_VK_MEM_KV, what, &c->kc[l])) < 0 ||
            (rc = qb_vk_buf_new(c->vk, bytes, 0, QB_VK_MEM_KV, what, &c->vc[l])) < 0)
            goto fail;
    }
    /* cos then sin per position, as the CPU backend computes them (inv_freq and the angle
     * in float) */
    if (!(cs = malloc((size_t)(s->max_ctx * s->head_dim) * sizeof *cs))) {
        rc = qb_err(QB_ENOMEM, "out of memory for the rope table");
        goto fail;
    }
    for (int64_t i = 0; i < s->head_dim / 2; i++) {
        float inv = s->rope_inv_freq
                        ? s->rope_inv_freq[i]
                        : 1.0f / powf(s->rope_theta, (float)(2 * i) / (float)s->head_dim);
        float af = s->rope_attn_factor > 0 ? s->rope_attn_factor : 1.0f;
        for (int64_t p = 0; p < s->max_ctx; p++) {
            float ang = (float)p * inv, co = cosf(ang), si = sinf(ang);
            if (af != 1.0f) {
                co *= af;
                si *= af;
            }
            cs[p * s->head_dim + i] = co;
            cs[p * s->head_dim + s->head_dim / 2 + i] = si;
        }
    }
    c->sh.rope_inv_freq = NULL; /* the caller's: not kept */
    if ((rc = qb_vk_buf_new(c->vk, (uint64_t)(s->max_ctx * s->head_dim) * 4, 0, QB_VK_MEM_SCRATCH,
                            "the rope table", &c->cs)) < 0 ||
        (rc = qb_vk_upload(c->vk, c->cs, 0, cs, (uint64_t)(s->max_ctx * s->head_dim) * 4)) < 0)
        goto fail;
    free(cs);
    out->ops = &vulkan_ops;
    out->ctx = c;
    return 0;
fail:
    free(cs);
    vkb_free(c);
    return rc;
}

int qb_vulkan_devices(struct qb_vk_device_info *out, int max, int *n)
{
    VkInstance inst;
    VkDebugUtilsMessengerEXT msg;
    VkPhysicalDevice *devs;
    uint32_t nd;
    int rc;

    *n = 0;
    if ((rc = qb_vk_instance(&inst, &msg, &devs, &nd)) < 0)
        return rc;
    for (uint32_t i = 0; i < nd && (int)i < max; i++) {
        struct qb_vk_device_info *d = &out[i];
        VkPhysicalDeviceProperties2 pr = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
        VkPhysicalDeviceSubgroupProperties sub = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
        VkPhysicalDeviceDriverProperties drv = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceVulkan12Features f12 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
        VkPhysicalDeviceVulkan13Features f13 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
        VkPhysicalDeviceFeatures2 f = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                       .pNext = &f12};
        VkPhysicalDeviceMemoryProperties mp;
        const VkPhysicalDeviceLimits *L = &pr.properties.limits;
        uint32_t heap;

        pr.pNext = &sub;
        sub.pNext = &drv;
        vkGetPhysicalDeviceProperties2(devs[i], &pr);
        if (VK_API_VERSION_MINOR(pr.properties.apiVersion) >= 3)
            f12.pNext = &f13;
        vkGetPhysicalDeviceFeatures2(devs[i], &f);
        vkGetPhysicalDeviceMemoryProperties(devs[i], &mp);
        memset(d, 0, sizeof *d);
        d->index = (int)i;
        snprintf(d->name, sizeof d->name, "%s", pr.properties.deviceName);
        snprintf(d->driver, sizeof d->driver, "%.120s, %.120s", drv.driverName, drv.driverInfo);
        switch (pr.properties.deviceType) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
            snprintf(d->type, sizeof d->type, "discrete");
            break;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
            snprintf(d->type, sizeof d->type, "integrated");
            break;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
            snprintf(d->type, sizeof d->type, "virtual");
            break;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: snprintf(d->type, sizeof d->type, "cpu"); break;
        default: snprintf(d->type, sizeof d->type, "other"); break;
        }
        d->api_version = pr.properties.apiVersion;
        d->memory = qb_vk_local_heap(&mp, &heap);
        d->max_storage_buffer_range = L->maxStorageBufferRange;
        d->max_workgroup_invocations = L->maxComputeWorkGroupInvocations;
        d->max_shared_memory = L->maxComputeSharedMemorySize;
        d->subgroup = qb_vk_subgroup_usable(&sub);
        d->subgroup_size = d->subgroup ? sub.subgroupSize : 0;
        d->int8 = f12.shaderInt8;
        d->fp16 = f12.shaderFloat16;
        d->int_dot = f13.shaderIntegerDotProduct;
    }
    *n = (int)nd;
    free(devs);
    qb_vk_instance_free(inst, msg);
    if (!nd)
        return qb_err(QB_EUNSUP, "no Vulkan device found");
    return 0;
}
