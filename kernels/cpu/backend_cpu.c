/* backend_cpu: the backend interface of kernels/backend.h on the host (see backend_cpu.h).
 * The math is the engine's f32 reference forward as it stood before the interface, moved
 * here op by op with the same expressions and summation orders, so that logits do not
 * change by a bit: RMSNorm and RoPE as HF LlamaForCausalLM and llama2.c run.c compute them
 * (inv_freq and the angles in float), keys cached transposed so that a query's scores are
 * sums of rows, attention by the kernel of kernels/attend.h in the variant for the
 * instruction set chosen at creation, one (query, head) per OpenMP job. */
#include "kernels/cpu/backend_cpu.h"

#include "kernels/attend.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"
#include "kernels/quantize.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct qb_bbuf {
    float *p; /* (n) 64-byte aligned */
    int64_t n;
};

struct qb_bweight {
    struct qb_qtensor t; /* the caller's tensor, borrowed: data, scales and sums are its */
    enum qb_act act;
};

struct cpu {
    struct qb_backend_shape sh;
    int64_t kv_dim;       /* n_kv_heads * head_dim: the cache's row width */
    float *k_cache;       /* (cache_layers, n_kv_heads, head_dim, max_ctx): keys transposed */
    float *v_cache;       /* (cache_layers, max_ctx, kv_dim) */
    float *inv_freq;      /* (head_dim / 2) */
    float attn_factor;    /* cos and sin times this (YaRN), else 1 */
    float *cs;            /* (max_batch, head_dim): cos then sin of positions cs_pos.. */
    int64_t cs_pos, cs_n; /* the positions cs holds (cs_n = 0: none yet) */
    float *scores;        /* (n_score_threads, score_rows, max_ctx) attention weights */
    int n_score_threads;
    int64_t score_rows; /* heads per thread at once: 1, or a KV head's group (attend_heads) */
    float *row;         /* (row_cols) one padded embedding row */
    int64_t row_cols;
    qb_attend_fn attend;             /* chosen once from qb_kernels()->isa (--isa reaches it) */
    qb_attend_heads_fn attend_heads; /* the same for a KV head's group of query heads, or NULL */
};

static void *xalloc(int64_t n_floats)
{
    size_t bytes = ((size_t)n_floats * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static void cpu_free(void *vctx)
{
    struct cpu *c = vctx;
    if (!c)
        return;
    free(c->k_cache);
    free(c->v_cache);
    free(c->inv_freq);
    free(c->cs);
    free(c->scores);
    free(c->row);
    free(c);
}

/* ---- memory -------------------------------------------------------------------------- */

static int buf_new(void *vctx, int64_t n, struct qb_bbuf **out)
{
    struct qb_bbuf *b = malloc(sizeof *b);
    (void)vctx;
    *out = NULL;
    if (!b || n < 0 || !(b->p = xalloc(n))) {
        free(b);
        return qb_err(QB_ENOMEM, "out of memory for a buffer of %lld floats", (long long)n);
    }
    b->n = n;
    *out = b;
    return 0;
}

static void buf_free(void *vctx, struct qb_bbuf *b)
{
    (void)vctx;
    if (b)
        free(b->p);
    free(b);
}

static int buf_write(void *vctx, struct qb_bbuf *dst, int64_t off, const float *src, int64_t n)
{
    (void)vctx;
    memcpy(dst->p + off, src, (size_t)n * sizeof *src);
    return 0;
}

static int buf_read(void *vctx, const struct qb_bbuf *src, int64_t off, float *dst, int64_t n)
{
    (void)vctx;
    memcpy(dst, src->p + off, (size_t)n * sizeof *dst);
    return 0;
}

static int buf_copy(void *vctx, struct qb_bbuf *dst, int64_t doff, const struct qb_bbuf *src,
                    int64_t soff, int64_t n)
{
    (void)vctx;
    memcpy(dst->p + doff, src->p + soff, (size_t)n * sizeof(float));
    return 0;
}

static int weight_new(void *vctx, const struct qb_qtensor *t, enum qb_act act,
                      struct qb_bweight **out)
{
    struct qb_bweight *w = malloc(sizeof *w);
    (void)vctx;
    *out = NULL;
    if (!w)
        return qb_err(QB_ENOMEM, "out of memory for a weight handle");
    w->t = *t;
    w->t.owned = NULL; /* borrowed: never released through the handle */
    w->act = act;
    *out = w;
    return 0;
}

static void weight_free(void *vctx, struct qb_bweight *w)
{
    (void)vctx;
    free(w);
}

/* ---- math ---------------------------------------------------------------------------- */

/* Rows are dequantized at the stored width (t.cols, padding included) and exactly in_cols
 * floats go to x: a table whose width is not a whole number of groups (dim 64 in groups of
 * 128) is stored padded (kernels/qtensor.h), and writing the padded row would run past x's
 * last row. */
static int embed(void *vctx, const struct qb_bweight *table, const int32_t *tok, int64_t n,
                 struct qb_bbuf *x)
{
    struct cpu *c = vctx;
    const struct qb_qtensor *t = &table->t;
    const int64_t d = t->in_cols ? t->in_cols : t->cols;

    if (d == t->cols) {
        for (int64_t i = 0; i < n; i++)
            qb_dequantize_row(t, tok[i], x->p + i * d);
        return 0;
    }
    if (c->row_cols < t->cols) {
        free(c->row);
        c->row_cols = 0;
        if (!(c->row = xalloc(t->cols)))
            return qb_err(QB_ENOMEM, "out of memory for an embedding row");
        c->row_cols = t->cols;
    }
    for (int64_t i = 0; i < n; i++) {
        qb_dequantize_row(t, tok[i], c->row);
        memcpy(x->p + i * d, c->row, (size_t)d * sizeof(float));
    }
    return 0;
}

static int matmul(void *vctx, struct qb_bbuf *y, const struct qb_bbuf *x, int64_t n,
                  const struct qb_bweight *w)
{
    (void)vctx;
    return qb_qmatmul(y->p, x->p, n, &w->t, w->act);
}

static int logits(void *vctx, float *out, const struct qb_bbuf *x, int64_t n,
                  const struct qb_bweight *head)
{
    (void)vctx;
    return qb_qmatmul(out, x->p, n, &head->t, head->act);
}

/* y (n, d) = x (n, d) / rms(x) * w; y may be x (each row's sum is taken before it is
 * written) */
static int rmsnorm(void *vctx, struct qb_bbuf *y, const struct qb_bbuf *x, const struct qb_bbuf *w,
                   int64_t n, int64_t d)
{
    const float eps = ((struct cpu *)vctx)->sh.norm_eps;
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x->p + t * d;
        float *yt = y->p + t * d;
        float ss = 0;
        for (int64_t i = 0; i < d; i++)
            ss += xt[i] * xt[i];
        ss = 1.0f / sqrtf(ss / (float)d + eps);
        for (int64_t i = 0; i < d; i++)
            yt[i] = w->p[i] * (ss * xt[i]);
    }
    return 0;
}

static int add_bias(void *vctx, struct qb_bbuf *y, const struct qb_bbuf *b, int64_t n, int64_t d)
{
    (void)vctx;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < d; i++)
            y->p[t * d + i] += b->p[i];
    return 0;
}

static int add(void *vctx, struct qb_bbuf *x, const struct qb_bbuf *y, int64_t n)
{
    (void)vctx;
    for (int64_t i = 0; i < n; i++)
        x->p[i] += y->p[i];
    return 0;
}

static int swiglu(void *vctx, struct qb_bbuf *g, const struct qb_bbuf *u, int64_t n)
{
    (void)vctx;
    for (int64_t i = 0; i < n; i++) {
        float v = g->p[i];
        g->p[i] = v / (1.0f + expf(-v)) * u->p[i];
    }
    return 0;
}

/* cos then sin (head_dim) of positions pos .. pos+n-1, kept for the next call: q and k of a
 * layer, and every layer of a pass, rotate by the same positions. */
static const float *angles(struct cpu *c, int64_t pos, int64_t n)
{
    const int64_t hd = c->sh.head_dim;
    if (c->cs_n > 0 && pos >= c->cs_pos && pos + n <= c->cs_pos + c->cs_n)
        return c->cs + (pos - c->cs_pos) * hd;
    for (int64_t t = 0; t < n; t++) {
        float *cs = c->cs + t * hd;
        for (int64_t i = 0; i < hd / 2; i++) {
            float ang = (float)(pos + t) * c->inv_freq[i];
            cs[i] = cosf(ang);
            cs[hd / 2 + i] = sinf(ang);
            if (c->attn_factor != 1.0f) {
                cs[i] *= c->attn_factor;
                cs[hd / 2 + i] *= c->attn_factor;
            }
        }
    }
    c->cs_pos = pos;
    c->cs_n = n;
    return c->cs;
}

static int rope(void *vctx, struct qb_bbuf *x, int64_t n, int64_t n_heads, int64_t pos)
{
    struct cpu *c = vctx;
    const int64_t hd = c->sh.head_dim, w = n_heads * hd;
    const float *cs;

    if (n > c->sh.max_batch)
        return qb_err(QB_EINVAL, "rope: %lld tokens exceed the backend's batch of %lld",
                      (long long)n, (long long)c->sh.max_batch);
    cs = angles(c, pos, n);
    for (int64_t t = 0; t < n; t++) {
        const float *cosv = cs + t * hd, *sinv = cosv + hd / 2;
        for (int64_t h = 0; h < n_heads; h++) {
            float *p = x->p + t * w + h * hd;
            if (c->sh.rope_style == QB_BROPE_INTERLEAVED) {
                for (int64_t i = 0; i < hd / 2; i++) {
                    float a = p[2 * i], b = p[2 * i + 1];
                    p[2 * i] = a * cosv[i] - b * sinv[i];
                    p[2 * i + 1] = a * sinv[i] + b * cosv[i];
                }
            } else {
                for (int64_t i = 0; i < hd / 2; i++) {
                    float a = p[i], b = p[i + hd / 2];
                    p[i] = a * cosv[i] - b * sinv[i];
                    p[i + hd / 2] = a * sinv[i] + b * cosv[i];
                }
            }
        }
    }
    return 0;
}

static int ensure_scores(struct cpu *c, int64_t rows)
{
    int nt = omp_get_max_threads();
    if (nt <= c->n_score_threads && rows <= c->score_rows)
        return 0;
    free(c->scores);
    c->score_rows = rows > c->score_rows ? rows : c->score_rows;
    c->scores = xalloc((int64_t)nt * c->score_rows * c->sh.max_ctx);
    if (!c->scores) {
        c->n_score_threads = 0;
        return qb_err(QB_ENOMEM, "out of memory for attention scores");
    }
    c->n_score_threads = nt;
    return 0;
}

static int attention(void *vctx, int64_t layer, const struct qb_bbuf *q, const struct qb_bbuf *k,
                     const struct qb_bbuf *v, struct qb_bbuf *out, int64_t n, int64_t pos,
                     int64_t n_heads, int64_t n_kv_heads, int64_t window)
{
    struct cpu *c = vctx;
    const int64_t hd = c->sh.head_dim, ctx = c->sh.max_ctx, kvd = c->kv_dim;
    const int64_t qd = n_heads * hd, kvw = n_kv_heads * hd, group = n_heads / n_kv_heads;
    const float scale = 1.0f / sqrtf((float)hd);
    float *kc = c->k_cache + layer * kvd * ctx, *vc = c->v_cache + layer * ctx * kvd;
    const int64_t work = n * n_heads;
    int rc;

    if (layer < 0 || layer >= c->sh.cache_layers || pos < 0 || n > c->sh.max_batch ||
        pos + n > ctx || n_kv_heads < 1 || n_kv_heads > c->sh.n_kv_heads ||
        n_heads % n_kv_heads != 0 || window < 0)
        return qb_err(QB_EINVAL,
                      "attention: layer %lld, %lld tokens at %lld, %lld/%lld heads "
                      "do not fit the backend",
                      (long long)layer, (long long)n, (long long)pos, (long long)n_heads,
                      (long long)n_kv_heads);
    if ((rc = ensure_scores(c, c->attend_heads ? group : 1)) < 0)
        return rc;
    /* keys go in transposed: row j of the cache holds dimension j % hd of kv head j / hd */
    for (int64_t t = 0; t < n; t++) {
        for (int64_t j = 0; j < kvw; j++)
            kc[j * ctx + pos + t] = k->p[t * kvw + j];
        memcpy(vc + (pos + t) * kvd, v->p + t * kvw, (size_t)kvw * sizeof(float));
    }
    if (c->attend_heads) { /* per (KV head, token): its group of query heads at once */
        float *sc = c->scores;
        const int64_t rows = c->score_rows;
#pragma omp parallel for schedule(dynamic, 1) if (work * (pos + n) * hd >= (1 << 20))
        for (int64_t job = 0; job < n * n_kv_heads; job++) {
            int64_t t = job % n, kvh = job / n;
            int64_t lo = window > 0 && pos + t + 1 > window ? pos + t + 1 - window : 0;
            c->attend_heads(q->p + t * qd + kvh * group * hd, hd, group, kc + kvh * hd * ctx + lo,
                            ctx, vc + lo * kvd + kvh * hd, kvd, pos + t + 1 - lo, hd, scale,
                            sc + (int64_t)omp_get_thread_num() * rows * ctx, ctx,
                            out->p + t * qd + kvh * group * hd, hd);
        }
        return 0;
    }
#pragma omp parallel for schedule(dynamic, 1) if (work * (pos + n) * hd >= (1 << 20))
    for (int64_t job = 0; job < work; job++) {
        /* head-major: consecutive jobs share a KV head's keys and values, which stay in the
         * core's cache through the tokens instead of every head's being cycled per token */
        int64_t t = job % n, h = job / n, kvh = h / group;
        /* a sliding window starts the keys and values at the window's first position */
        int64_t lo = window > 0 && pos + t + 1 > window ? pos + t + 1 - window : 0;
        c->attend(q->p + t * qd + h * hd, kc + kvh * hd * ctx + lo, ctx, vc + lo * kvd + kvh * hd,
                  kvd, pos + t + 1 - lo, hd, scale,
                  c->scores + (int64_t)omp_get_thread_num() * c->score_rows * ctx,
                  out->p + t * qd + h * hd);
    }
    return 0;
}

static const struct qb_backend_ops cpu_ops = {
    .name = "cpu",
    .free = cpu_free,
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
};

int qb_backend_cpu_new(const struct qb_backend_shape *shape, struct qb_backend *out)
{
    const struct qb_backend_shape *s = shape;
    struct cpu *c;
    size_t cache;

    memset(out, 0, sizeof *out);
    if (s->dim <= 0 || s->n_heads <= 0 || s->n_kv_heads <= 0 || s->n_heads % s->n_kv_heads ||
        s->head_dim <= 0 || s->head_dim % 2 || s->max_ctx <= 0 || s->cache_layers <= 0 ||
        s->max_batch <= 0)
        return qb_err(QB_EINVAL,
                      "cpu backend: bad shape (dim %lld, heads %lld/%lld of %lld, "
                      "context %lld, batch %lld)",
                      (long long)s->dim, (long long)s->n_heads, (long long)s->n_kv_heads,
                      (long long)s->head_dim, (long long)s->max_ctx, (long long)s->max_batch);
    if (!(c = calloc(1, sizeof *c)))
        return qb_err(QB_ENOMEM, "out of memory for the cpu backend");
    c->sh = *s;
    c->kv_dim = s->n_kv_heads * s->head_dim;
    if (qb_mul_size((size_t)s->cache_layers * (size_t)s->max_ctx, (size_t)c->kv_dim, &cache) < 0 ||
        cache > (size_t)INT64_MAX / sizeof(float))
        goto oom;
    c->k_cache = xalloc((int64_t)cache);
    c->v_cache = xalloc((int64_t)cache);
    c->inv_freq = xalloc(s->head_dim / 2);
    c->cs = xalloc(s->max_batch * s->head_dim);
    if (!c->k_cache || !c->v_cache || !c->inv_freq || !c->cs)
        goto oom;
    /* inv_freq[i] = theta^(-2i/head_dim), in float as HF and llama2.c compute it, or the
     * scaled table the engine gives */
    for (int64_t i = 0; i < s->head_dim / 2; i++)
        c->inv_freq[i] = s->rope_inv_freq
                             ? s->rope_inv_freq[i]
                             : 1.0f / powf(s->rope_theta, (float)(2 * i) / (float)s->head_dim);
    c->attn_factor = s->rope_attn_factor > 0 ? s->rope_attn_factor : 1.0f;
    c->sh.rope_inv_freq = NULL; /* the caller's: not kept */
    c->attend = qb_attend_for(qb_kernels()->isa);
    c->attend_heads = qb_attend_heads_for(qb_kernels()->isa);
    out->ops = &cpu_ops;
    out->ctx = c;
    return 0;
oom:
    cpu_free(c);
    return qb_err(QB_ENOMEM, "out of memory for a kv cache of %lld tokens in %lld layers",
                  (long long)s->max_ctx, (long long)s->cache_layers);
}
