/* engine: the f32 forward pass (see engine.h). Matches HF LlamaForCausalLM / Qwen2ForCausalLM
 * and llama2.c run.c: x = embed[tok]; per layer x += Wo attn(rope(Wq n(x)), rope(Wk n(x)),
 * Wv n(x)); x += Wdown (silu(Wgate n(x)) * Wup n(x)); logits = Wout n(x), n = RMSNorm.
 * A prompt of T tokens goes through every matrix as one (T, in) x (in, out) product. */
#include "collector/engine/engine.h"

#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"
#include "kernels/quantize.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Tokens per pass through the layers; bounds scratch memory for long prompts. */
#define CHUNK 256

struct qb_engine {
    const struct qb_model *m;
    const struct qb_qmodel *qm;
    struct qb_qmodel *own_qm; /* the f32 wrapper when created from a plain model */
    int64_t max_ctx, pos;
    int64_t q_dim, kv_dim;
    float *k_cache; /* (n_layers, n_kv_heads, head_dim, max_ctx): keys transposed, so that a
                       query's scores are a sum of rows (no per-position reductions) */
    float *v_cache; /* (n_layers, max_ctx, kv_dim) */
    float *inv_freq;          /* (head_dim/2) */
    /* scratch for up to CHUNK tokens */
    float *x;    /* (CHUNK, dim) residual stream */
    float *xb;   /* (CHUNK, dim) normed input */
    float *q;    /* (CHUNK, q_dim) */
    float *k;    /* (CHUNK, kv_dim) new keys, before they go into the cache */
    float *att;  /* (CHUNK, q_dim) attention output */
    float *hb;   /* (CHUNK, hidden_dim) */
    float *hb2;  /* (CHUNK, hidden_dim) */
    float *cs;   /* (CHUNK, head_dim) cos then sin per position */
    float *scores; /* (n_threads, max_ctx) */
    int n_score_threads;
    float *logits; /* (vocab) last position */
};

static void *xalloc(size_t n_floats)
{
    size_t bytes = (n_floats * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

void qb_engine_free(struct qb_engine *e)
{
    if (!e)
        return;
    qb_qmodel_free(e->own_qm);
    free(e->k_cache);
    free(e->v_cache);
    free(e->inv_freq);
    free(e->x);
    free(e->xb);
    free(e->q);
    free(e->k);
    free(e->att);
    free(e->hb);
    free(e->hb2);
    free(e->cs);
    free(e->scores);
    free(e->logits);
    free(e);
}

int qb_engine_new(const struct qb_model *m, int64_t max_ctx, struct qb_engine **out)
{
    struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}};
    struct qb_qmodel *qm;
    int rc;

    *out = NULL;
    if ((rc = qb_qmodel_new(m, &f32, &qm)) < 0)
        return rc;
    if ((rc = qb_engine_new_q(qm, max_ctx, out)) < 0) {
        qb_qmodel_free(qm);
        return rc;
    }
    (*out)->own_qm = qm;
    return 0;
}

int qb_engine_new_q(const struct qb_qmodel *qm, int64_t max_ctx, struct qb_engine **out)
{
    const struct qb_model *m = qm->m;
    const struct qb_config *c = &m->cfg;
    struct qb_engine *e;
    size_t cache;

    *out = NULL;
    if (max_ctx <= 0 || max_ctx > c->max_seq_len)
        max_ctx = c->max_seq_len;
    e = calloc(1, sizeof *e);
    if (!e)
        return qb_err(QB_ENOMEM, "out of memory for the engine");
    e->m = m;
    e->qm = qm;
    e->max_ctx = max_ctx;
    e->q_dim = c->n_heads * c->head_dim;
    e->kv_dim = c->n_kv_heads * c->head_dim;
    if (qb_mul_size((size_t)c->n_layers * (size_t)max_ctx, (size_t)e->kv_dim, &cache) < 0)
        goto oom;
    e->k_cache = xalloc(cache);
    e->v_cache = xalloc(cache);
    e->inv_freq = xalloc((size_t)c->head_dim / 2);
    e->x = xalloc(CHUNK * (size_t)c->dim);
    e->xb = xalloc(CHUNK * (size_t)c->dim);
    e->q = xalloc(CHUNK * (size_t)e->q_dim);
    e->k = xalloc(CHUNK * (size_t)e->kv_dim);
    e->att = xalloc(CHUNK * (size_t)e->q_dim);
    e->hb = xalloc(CHUNK * (size_t)c->hidden_dim);
    e->hb2 = xalloc(CHUNK * (size_t)c->hidden_dim);
    e->cs = xalloc(CHUNK * (size_t)c->head_dim);
    e->logits = xalloc((size_t)c->vocab_size);
    if (!e->k_cache || !e->v_cache || !e->inv_freq || !e->x || !e->xb || !e->q || !e->k ||
        !e->att || !e->hb || !e->hb2 || !e->cs || !e->logits)
        goto oom;
    /* inv_freq[i] = theta^(-2i/head_dim), in float as HF and llama2.c compute it */
    for (int64_t i = 0; i < c->head_dim / 2; i++)
        e->inv_freq[i] = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
    *out = e;
    return 0;
oom:
    qb_engine_free(e);
    return qb_err(QB_ENOMEM, "out of memory for a context of %lld tokens", (long long)max_ctx);
}

void qb_engine_reset(struct qb_engine *e)
{
    e->pos = 0;
}

int qb_engine_truncate(struct qb_engine *e, int64_t pos)
{
    if (pos < 0 || pos > e->pos)
        return qb_err(QB_EINVAL, "cannot truncate the context at %lld: it holds %lld tokens",
                      (long long)pos, (long long)e->pos);
    e->pos = pos;
    return 0;
}

int64_t qb_engine_pos(const struct qb_engine *e)
{
    return e->pos;
}

int64_t qb_engine_max_ctx(const struct qb_engine *e)
{
    return e->max_ctx;
}

const float *qb_engine_logits(const struct qb_engine *e)
{
    return e->logits;
}

/* out (n, d) = x (n, d) / rms(x) * w */
static void rmsnorm(float *out, const float *x, const float *w, int64_t n, int64_t d, float eps)
{
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * d;
        float *ot = out + t * d;
        float ss = 0;
        for (int64_t i = 0; i < d; i++)
            ss += xt[i] * xt[i];
        ss = 1.0f / sqrtf(ss / (float)d + eps);
        for (int64_t i = 0; i < d; i++)
            ot[i] = w[i] * (ss * xt[i]);
    }
}

/* Rotates each head of v (n_heads, head_dim) by the angles whose cos/sin are cs. */
static void rope(float *v, int64_t n_heads, int64_t hd, const float *cs, enum qb_rope_style style)
{
    const float *cosv = cs, *sinv = cs + hd / 2;
    for (int64_t h = 0; h < n_heads; h++) {
        float *p = v + h * hd;
        if (style == QB_ROPE_INTERLEAVED) {
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

static void add_bias(float *y, const float *b, int64_t n, int64_t d)
{
    if (!b)
        return;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < d; i++)
            y[t * d + i] += b[i];
}

static int ensure_scores(struct qb_engine *e)
{
    int nt = omp_get_max_threads();
    if (nt <= e->n_score_threads)
        return 0;
    free(e->scores);
    e->scores = xalloc((size_t)nt * (size_t)e->max_ctx);
    if (!e->scores) {
        e->n_score_threads = 0;
        return qb_err(QB_ENOMEM, "out of memory for attention scores");
    }
    e->n_score_threads = nt;
    return 0;
}

typedef float vf16 __attribute__((vector_size(64))); /* 16 floats: zmm, 2 ymm or 4 xmm */

/* 16 floats from p, which need not be aligned (a macro: a function returning vf16 would have
 * an ABI that depends on the instruction set) */
#define load16(p) __extension__({ vf16 v_; memcpy(&v_, (p), sizeof v_); v_; })

/* Softmax attention of one query q (hd) over len cached positions into out (hd): keys kt
 * transposed (hd rows of ld floats), values every stride floats; s (len) is scratch.
 * Attention is most of a long prompt's time on a small model: QB_CLONES. */
QB_CLONES static void attend(const float *q, const float *kt, int64_t ld, const float *vc, int64_t stride,
                   int64_t len, int64_t hd, float scale, float *s, float *out)
{
    float mx = -INFINITY, sum = 0;
    int64_t p = 0;

    /* scores, 64 positions at a time in four independent sums over the key rows */
    for (; p + 64 <= len; p += 64) {
        vf16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t i = 0; i < hd; i++) {
            const float *k = kt + i * ld + p, qi = q[i];
            a0 += qi * load16(k);
            a1 += qi * load16(k + 16);
            a2 += qi * load16(k + 32);
            a3 += qi * load16(k + 48);
        }
        a0 *= scale, a1 *= scale, a2 *= scale, a3 *= scale;
        memcpy(s + p, &a0, sizeof a0);
        memcpy(s + p + 16, &a1, sizeof a1);
        memcpy(s + p + 32, &a2, sizeof a2);
        memcpy(s + p + 48, &a3, sizeof a3);
    }
    for (; p + 16 <= len; p += 16) {
        vf16 a = {0};
        for (int64_t i = 0; i < hd; i++)
            a += q[i] * load16(kt + i * ld + p);
        a *= scale;
        memcpy(s + p, &a, sizeof a);
    }
    for (; p < len; p++) {
        float d = 0;
        for (int64_t i = 0; i < hd; i++)
            d += q[i] * kt[i * ld + p];
        s[p] = d * scale;
    }
#pragma omp simd reduction(max : mx)
    for (p = 0; p < len; p++)
        mx = s[p] > mx ? s[p] : mx;
    for (p = 0; p < len; p++) {
        s[p] = expf(s[p] - mx);
        sum += s[p];
    }
    /* the weighted sum of values, 16 outputs at a time over four positions at once,
     * normalised once at the end */
    int64_t i0 = 0;
    for (; i0 + 16 <= hd; i0 += 16) {
        vf16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        const float *v = vc + i0;
        for (p = 0; p + 4 <= len; p += 4) {
            a0 += s[p] * load16(v + p * stride);
            a1 += s[p + 1] * load16(v + (p + 1) * stride);
            a2 += s[p + 2] * load16(v + (p + 2) * stride);
            a3 += s[p + 3] * load16(v + (p + 3) * stride);
        }
        for (; p < len; p++)
            a0 += s[p] * load16(v + p * stride);
        a0 = (a0 + a1 + a2 + a3) / sum;
        memcpy(out + i0, &a0, sizeof a0);
    }
    for (; i0 < hd; i0++) {
        float a = 0;
        for (p = 0; p < len; p++)
            a += s[p] * vc[p * stride + i0];
        out[i0] = a / sum;
    }
}

/* Causal attention of n new tokens (positions p0..p0+n-1) over the cache of layer l. */
static void attention(struct qb_engine *e, int64_t l, int64_t p0, int64_t n)
{
    const struct qb_config *c = &e->m->cfg;
    const int64_t hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *kc = e->k_cache + l * e->kv_dim * e->max_ctx;
    const float *vc = e->v_cache + l * e->max_ctx * e->kv_dim;
    const int64_t work = n * c->n_heads;

#pragma omp parallel for schedule(dynamic, 1) if (work * (p0 + n) * hd >= (1 << 20))
    for (int64_t job = 0; job < work; job++) {
        int64_t t = job / c->n_heads, h = job % c->n_heads, kvh = h / group;
        attend(e->q + t * e->q_dim + h * hd, kc + kvh * hd * e->max_ctx, e->max_ctx,
               vc + kvh * hd, e->kv_dim, p0 + t + 1, hd, scale,
               e->scores + (int64_t)omp_get_thread_num() * e->max_ctx,
               e->att + t * e->q_dim + h * hd);
    }
}

static int mm(float *y, const float *x, int64_t n, const struct qb_qweight *w)
{
    return qb_qmatmul(y, x, n, &w->t, w->act);
}

/* One chunk of n <= CHUNK tokens at positions e->pos.. ; logits (n, vocab) or NULL. */
static int forward_chunk(struct qb_engine *e, const int32_t *tok, int64_t n, float *logits)
{
    const struct qb_model *m = e->m;
    const struct qb_qmodel *qm = e->qm;
    const struct qb_config *c = &m->cfg;
    const int64_t d = c->dim, hd = c->head_dim, hid = c->hidden_dim, p0 = e->pos;
    const int64_t kvd = e->kv_dim, qd = e->q_dim;
    int rc;

    for (int64_t t = 0; t < n; t++) {
        float *cs = e->cs + t * hd;
        qb_dequantize_row(&qm->embed.t, tok[t], e->x + t * d);
        for (int64_t i = 0; i < hd / 2; i++) {
            float ang = (float)(p0 + t) * e->inv_freq[i];
            cs[i] = cosf(ang);
            cs[hd / 2 + i] = sinf(ang);
        }
    }

    for (int64_t l = 0; l < c->n_layers; l++) {
        const struct qb_qlayer *L = &qm->layer[l]; /* norms and biases, folded scales included */
        const struct qb_qweight *W = &qm->lin[l * QB_LIN_COUNT];
        float *kc = e->k_cache + l * kvd * e->max_ctx + p0; /* column p0 of row 0 */
        float *vc = e->v_cache + (l * e->max_ctx + p0) * kvd;

        rmsnorm(e->xb, e->x, L->attn_norm, n, d, c->norm_eps);
        /* values go straight into the cache rows of these positions, keys after RoPE */
        if ((rc = mm(e->q, e->xb, n, &W[QB_LIN_Q])) < 0 || (rc = mm(e->k, e->xb, n, &W[QB_LIN_K])) < 0 ||
            (rc = mm(vc, e->xb, n, &W[QB_LIN_V])) < 0)
            return rc;
        add_bias(e->q, L->bq, n, qd);
        add_bias(e->k, L->bk, n, kvd);
        add_bias(vc, L->bv, n, kvd);
        for (int64_t t = 0; t < n; t++) {
            rope(e->q + t * qd, c->n_heads, hd, e->cs + t * hd, c->rope_style);
            rope(e->k + t * kvd, c->n_kv_heads, hd, e->cs + t * hd, c->rope_style);
        }
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < kvd; j++)
                kc[j * e->max_ctx + t] = e->k[t * kvd + j];
        attention(e, l, p0, n);
        if ((rc = mm(e->xb, e->att, n, &W[QB_LIN_O])) < 0)
            return rc;
        for (int64_t i = 0; i < n * d; i++)
            e->x[i] += e->xb[i];

        rmsnorm(e->xb, e->x, L->ffn_norm, n, d, c->norm_eps);
        if ((rc = mm(e->hb, e->xb, n, &W[QB_LIN_GATE])) < 0 ||
            (rc = mm(e->hb2, e->xb, n, &W[QB_LIN_UP])) < 0)
            return rc;
        for (int64_t i = 0; i < n * hid; i++) {
            float g = e->hb[i];
            e->hb[i] = g / (1.0f + expf(-g)) * e->hb2[i];
        }
        if ((rc = mm(e->xb, e->hb, n, &W[QB_LIN_DOWN])) < 0)
            return rc;
        for (int64_t i = 0; i < n * d; i++)
            e->x[i] += e->xb[i];
    }

    if (logits) {
        rmsnorm(e->xb, e->x, qm->out_norm, n, d, c->norm_eps);
        if ((rc = mm(logits, e->xb, n, &qm->output)) < 0)
            return rc;
        memcpy(e->logits, logits + (n - 1) * c->vocab_size, (size_t)c->vocab_size * sizeof(float));
    } else {
        rmsnorm(e->xb, e->x + (n - 1) * d, qm->out_norm, 1, d, c->norm_eps);
        if ((rc = mm(e->logits, e->xb, 1, &qm->output)) < 0)
            return rc;
    }
    e->pos += n;
    return 0;
}

int qb_engine_forward(struct qb_engine *e, const int32_t *tokens, int64_t n, float *logits)
{
    const int64_t vocab = e->m->cfg.vocab_size;
    int rc;

    if (n <= 0)
        return qb_err(QB_EINVAL, "no tokens to run");
    if (n > e->max_ctx - e->pos)
        return qb_err(QB_ERANGE, "%lld more tokens do not fit in the context (%lld of %lld used)",
                      (long long)n, (long long)e->pos, (long long)e->max_ctx);
    for (int64_t t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= vocab)
            return qb_err(QB_EINVAL, "token id %d is outside the vocabulary (0..%lld)",
                          (int)tokens[t], (long long)vocab - 1);
    if ((rc = ensure_scores(e)) < 0)
        return rc;
    for (int64_t t0 = 0; t0 < n; t0 += CHUNK) {
        int64_t k = n - t0 < CHUNK ? n - t0 : CHUNK;
        /* intermediate chunks need no logits unless all positions were asked for */
        if ((rc = forward_chunk(e, tokens + t0, k, logits ? logits + t0 * vocab : NULL)) < 0)
            return rc;
    }
    return 0;
}
