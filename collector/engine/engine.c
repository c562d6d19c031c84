/* engine: the forward pass (see engine.h), written once against the backend interface of
 * kernels/backend.h. Matches HF LlamaForCausalLM / Qwen2ForCausalLM and llama2.c run.c:
 * x = embed[tok]; per layer x += Wo attn(rope(Wq n(x)), rope(Wk n(x)), Wv n(x)) -- RoPE by
 * the model's scaled frequencies (collector/model/rope.c), q/k heads RMS-normed first for
 * Qwen3, attention through a sliding window in the layers that use one;
 * x += Wdown (silu(Wgate n(x)) * Wup n(x)); logits = Wout n(x), n = RMSNorm.
 * A prompt goes through every matrix in batches of up to max_batch tokens, each one
 * (batch, in) x (in, out) product. The engine knows the backend only through its ops: it
 * uploads the weights once, keeps the activations on the backend, and reads back only the
 * logits and what a hook asks to see. */
#include "collector/engine/engine.h"

#include "collector/model/model.h"
#include "kernels/base/err.h"
#include "kernels/cpu/backend_cpu.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 256

/* One layer's weights and vectors as the backend holds them, and the shapes they give. */
struct dlayer {
    struct qb_bweight *lin[QB_LIN_COUNT];
    struct qb_bbuf *attn_norm, *ffn_norm, *bq, *bk, *bv; /* biases NULL without */
    struct qb_bbuf *q_norm, *k_norm;                     /* (head_dim) Qwen3, else NULL */
    int64_t n_heads, n_kv_heads, hidden;
    int64_t window; /* sliding-window attention: positions attended; 0 = all */
};

struct qb_engine {
    const struct qb_model *m;
    const struct qb_qmodel *qm;
    struct qb_qmodel *own_qm; /* the f32 wrapper when created from a plain model */
    struct qb_backend be;
    int64_t max_ctx, max_batch, pos;
    int64_t q_dim, kv_dim;
    int layers_only;
    /* the qmodel's weights, uploaded once (none when layers_only) */
    struct dlayer *layer;              /* (n_layers) */
    struct qb_bweight *embed, *output; /* the same handle when the qmodel shares them */
    struct qb_bbuf *out_norm;          /* (dim) */
    /* a caller's layer (qb_engine_layer) or final norm (qb_engine_head): the vectors are
     * copied into these per call, the weights uploaded per call */
    struct dlayer call;
    /* activations, (max_batch, width) */
    struct qb_bbuf *x;    /* (dim) residual stream */
    struct qb_bbuf *xb;   /* (dim) normed stream, then a block's output */
    struct qb_bbuf *q;    /* (q_dim) */
    struct qb_bbuf *k;    /* (kv_dim) new keys, before they go into the cache */
    struct qb_bbuf *v;    /* (kv_dim) new values */
    struct qb_bbuf *att;  /* (q_dim) attention output */
    struct qb_bbuf *hb;   /* (hidden_dim) gate, then the SwiGLU product */
    struct qb_bbuf *hb2;  /* (hidden_dim) up */
    struct qb_bbuf *last; /* (dim) the last position's normed stream */
    float *logits;        /* (vocab) host: the last position's logits */
    float *seen;          /* (max_batch, max width) host: what a hook is shown */
    struct qb_engine_hook hook;
};

#define B (e->be.ops)
#define BC (e->be.ctx)
/* calls a backend op or an engine step; leaves the function with its code when it fails
 * (or, for a step, when a hook stopped the pass) */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((rc = (call)) != 0)                                                                    \
            return rc;                                                                             \
    } while (0)

static void dlayer_release(struct qb_engine *e, struct dlayer *L, int weights, int vectors)
{
    for (int i = 0; weights && i < QB_LIN_COUNT; i++) {
        B->weight_free(BC, L->lin[i]);
        L->lin[i] = NULL;
    }
    if (vectors) {
        B->buf_free(BC, L->attn_norm);
        B->buf_free(BC, L->ffn_norm);
        B->buf_free(BC, L->bq);
        B->buf_free(BC, L->bk);
        B->buf_free(BC, L->bv);
        B->buf_free(BC, L->q_norm);
        B->buf_free(BC, L->k_norm);
        L->attn_norm = L->ffn_norm = L->bq = L->bk = L->bv = L->q_norm = L->k_norm = NULL;
    }
}

void qb_engine_free(struct qb_engine *e)
{
    if (!e)
        return;
    if (B) {
        for (int64_t l = 0; e->layer && l < e->m->cfg.n_layers; l++)
            dlayer_release(e, &e->layer[l], 1, 1);
        dlayer_release(e, &e->call, 1, 1);
        if (e->embed != e->output)
            B->weight_free(BC, e->embed);
        B->weight_free(BC, e->output);
        B->buf_free(BC, e->out_norm);
        B->buf_free(BC, e->x);
        B->buf_free(BC, e->xb);
        B->buf_free(BC, e->q);
        B->buf_free(BC, e->k);
        B->buf_free(BC, e->v);
        B->buf_free(BC, e->att);
        B->buf_free(BC, e->hb);
        B->buf_free(BC, e->hb2);
        B->buf_free(BC, e->last);
        B->free(BC);
    }
    free(e->layer);
    free(e->logits);
    free(e->seen);
    qb_qmodel_free(e->own_qm);
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
    struct qb_engine_opts o = {.max_ctx = max_ctx};
    return qb_engine_new_opts(qm, &o, out);
}

/* A vector (n) on the backend: a new buffer holding src. */
static int upload_vec(struct qb_engine *e, const float *src, int64_t n, struct qb_bbuf **out)
{
    int rc;
    *out = NULL;
    if (!src)
        return 0;
    if ((rc = B->buf_new(BC, n, out)) < 0)
        return rc;
    return B->write(BC, *out, 0, src, n);
}

/* The qmodel's weights and vectors, once. */
static int upload_model(struct qb_engine *e)
{
    const struct qb_qmodel *qm = e->qm;
    const struct qb_config *c = &e->m->cfg;
    int rc;

    if (!(e->layer = calloc((size_t)c->n_layers, sizeof *e->layer)))
        return qb_err(QB_ENOMEM, "out of memory for the engine's layers");
    for (int64_t l = 0; l < c->n_layers; l++) {
        struct dlayer *L = &e->layer[l];
        const struct qb_qlayer *V = &qm->layer[l];
        for (int i = 0; i < QB_LIN_COUNT; i++) {
            const struct qb_qweight *w = &qm->lin[l * QB_LIN_COUNT + i];
            TRY(B->weight_new(BC, &w->t, w->act, &L->lin[i]));
        }
        TRY(upload_vec(e, V->attn_norm, c->dim, &L->attn_norm));
        TRY(upload_vec(e, V->ffn_norm, c->dim, &L->ffn_norm));
        TRY(upload_vec(e, V->bq, e->q_dim, &L->bq));
        TRY(upload_vec(e, V->bk, e->kv_dim, &L->bk));
        TRY(upload_vec(e, V->bv, e->kv_dim, &L->bv));
        TRY(upload_vec(e, e->m->layers[l].q_norm, c->head_dim, &L->q_norm));
        TRY(upload_vec(e, e->m->layers[l].k_norm, c->head_dim, &L->k_norm));
        L->n_heads = c->n_heads;
        L->n_kv_heads = c->n_kv_heads;
        L->hidden = c->hidden_dim;
        L->window = qb_layer_uses_window(c, l) ? c->sliding_window : 0;
    }
    TRY(B->weight_new(BC, &qm->output.t, qm->output.act, &e->output));
    if (qm->embed_shares_output)
        e->embed = e->output;
    else
        TRY(B->weight_new(BC, &qm->embed.t, qm->embed.act, &e->embed));
    return upload_vec(e, qm->out_norm, c->dim, &e->out_norm);
}

/* Activations for max_batch tokens, the caller's vectors, host read-back space. */
static int alloc_activations(struct qb_engine *e)
{
    const struct qb_config *c = &e->m->cfg;
    const int64_t nb = e->max_batch;
    int64_t widest = c->dim > e->q_dim ? c->dim : e->q_dim;
    int rc;

    widest = widest > c->hidden_dim ? widest : c->hidden_dim;
    TRY(B->buf_new(BC, nb * c->dim, &e->x));
    TRY(B->buf_new(BC, nb * c->dim, &e->xb));
    TRY(B->buf_new(BC, nb * e->q_dim, &e->q));
    TRY(B->buf_new(BC, nb * e->kv_dim, &e->k));
    TRY(B->buf_new(BC, nb * e->kv_dim, &e->v));
    TRY(B->buf_new(BC, nb * e->q_dim, &e->att));
    TRY(B->buf_new(BC, nb * c->hidden_dim, &e->hb));
    TRY(B->buf_new(BC, nb * c->hidden_dim, &e->hb2));
    TRY(B->buf_new(BC, c->dim, &e->last));
    TRY(B->buf_new(BC, c->dim, &e->call.attn_norm));
    TRY(B->buf_new(BC, c->dim, &e->call.ffn_norm));
    TRY(B->buf_new(BC, e->q_dim, &e->call.bq));
    TRY(B->buf_new(BC, e->kv_dim, &e->call.bk));
    TRY(B->buf_new(BC, e->kv_dim, &e->call.bv));
    if (c->has_qk_norm) {
        TRY(B->buf_new(BC, c->head_dim, &e->call.q_norm));
        TRY(B->buf_new(BC, c->head_dim, &e->call.k_norm));
    }
    e->logits = malloc((size_t)c->vocab_size * sizeof *e->logits);
    e->seen = malloc((size_t)(nb * widest) * sizeof *e->seen);
    if (!e->logits || !e->seen)
        return qb_err(QB_ENOMEM, "out of memory for the engine");
    return 0;
}

int qb_engine_new_opts(const struct qb_qmodel *qm, const struct qb_engine_opts *o,
                       struct qb_engine **out)
{
    static const struct qb_engine_opts defaults = {0};
    const struct qb_model *m = qm->m;
    const struct qb_config *c = &m->cfg;
    struct qb_backend_shape sh;
    struct qb_engine *e;
    float *inv_freq = NULL, attn_factor = 1;
    int rc;

    *out = NULL;
    o = o ? o : &defaults;
    if (o->max_batch < 0)
        return qb_err(QB_EINVAL, "engine: a batch of %lld tokens", (long long)o->max_batch);
    if (!(e = calloc(1, sizeof *e)))
        return qb_err(QB_ENOMEM, "out of memory for the engine");
    e->m = m;
    e->qm = qm;
    e->max_ctx = o->max_ctx <= 0 || o->max_ctx > c->max_seq_len ? c->max_seq_len : o->max_ctx;
    e->max_batch = o->max_batch ? o->max_batch : DEFAULT_BATCH;
    e->layers_only = o->layers_only;
    e->q_dim = c->n_heads * c->head_dim;
    e->kv_dim = c->n_kv_heads * c->head_dim;
    /* the RoPE frequencies, scaled as the model asks; dynamic NTK at the model's whole
     * (scaled) context, as vLLM fixes it, so that every engine of a model agrees */
    if (!(inv_freq = malloc((size_t)(c->head_dim / 2) * sizeof *inv_freq))) {
        free(e);
        return qb_err(QB_ENOMEM, "out of memory for the engine");
    }
    qb_rope_inv_freq(m, c->max_seq_len, inv_freq, &attn_factor);
    sh = (struct qb_backend_shape){
        .dim = c->dim,
        .hidden_dim = c->hidden_dim,
        .n_heads = c->n_heads,
        .n_kv_heads = c->n_kv_heads,
        .head_dim = c->head_dim,
        .max_ctx = e->max_ctx,
        .cache_layers = o->layers_only ? 1 : c->n_layers,
        .max_batch = e->max_batch,
        .rope_theta = c->rope_theta,
        .rope_inv_freq = inv_freq,
        .rope_attn_factor = attn_factor,
        .rope_style = c->rope_style == QB_ROPE_HALF ? QB_BROPE_HALF : QB_BROPE_INTERLEAVED,
        .norm_eps = c->norm_eps,
        .device = o->device,
    };
    rc = (o->backend ? o->backend : qb_backend_cpu_new)(&sh, &e->be);
    free(inv_freq);
    if (rc < 0) {
        free(e);
        return rc;
    }
    if ((rc = alloc_activations(e)) < 0 || (!e->layers_only && (rc = upload_model(e)) < 0)) {
        qb_engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
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

const char *qb_engine_backend(const struct qb_engine *e)
{
    return e->be.ops->name;
}

int qb_engine_mem(const struct qb_engine *e, struct qb_backend_mem *m)
{
    memset(m, 0, sizeof *m);
    if (!e->be.ops->mem)
        return qb_err(QB_EUNSUP, "the %s backend does not report its memory", e->be.ops->name);
    return e->be.ops->mem(e->be.ctx, m);
}

const char *qb_engine_device_name(const struct qb_engine *e)
{
    return e->be.ops->device_name ? e->be.ops->device_name(e->be.ctx) : e->be.ops->name;
}

const float *qb_engine_logits(const struct qb_engine *e)
{
    return e->logits;
}

void qb_engine_set_hook(struct qb_engine *e, const struct qb_engine_hook *h)
{
    if (h)
        e->hook = *h;
    else
        memset(&e->hook, 0, sizeof e->hook);
}

static int wants(const struct qb_engine *e, enum qb_site site, int64_t layer)
{
    return e->hook.fn && (e->hook.sites & QB_SITE_BIT(site)) &&
           (e->hook.layer < 0 || e->hook.layer == layer);
}

/* Shows buf (n, width) to the hook when it asked for this site: 0 go on, QB_ENGINE_STOPPED,
 * or the hook's error. */
static int site(struct qb_engine *e, enum qb_site s, int64_t layer, int64_t pos, int64_t n,
                const struct qb_bbuf *buf, int64_t width)
{
    struct qb_engine_obs obs = {s, layer, pos, n, width, e->seen};
    int rc;
    if (!wants(e, s, layer))
        return 0;
    if ((rc = B->read(BC, buf, 0, e->seen, n * width)) < 0)
        return rc;
    rc = e->hook.fn(e->hook.ctx, &obs);
    return rc < 0 ? rc : rc > 0 ? QB_ENGINE_STOPPED : 0;
}

static int mm(struct qb_engine *e, struct qb_bbuf *y, struct qb_bbuf *x, int64_t n,
              const struct dlayer *L, int i)
{
    static const char *const name[QB_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
    if (!L->lin[i])
        return qb_err(QB_EINVAL, "engine: the layer's weights lack %s", name[i]);
    return B->matmul(BC, y, x, n, L->lin[i]);
}

/* The attention block of layer l over e->x (n tokens at pos): x += o(attn(...)). Cache
 * slot: the layer's, or the one slot of a layers_only engine. */
static int attn_block(struct qb_engine *e, int64_t l, const struct dlayer *L, int64_t pos,
                      int64_t n)
{
    const int64_t d = e->m->cfg.dim, hd = e->m->cfg.head_dim;
    const int64_t qd = L->n_heads * hd, kvd = L->n_kv_heads * hd;
    int rc;

    if (!L->attn_norm)
        return qb_err(QB_EINVAL, "engine: the layer's weights lack the attention norm");
    TRY(B->rmsnorm(BC, e->xb, e->x, L->attn_norm, n, d));
    TRY(site(e, QB_SITE_QKV_IN, l, pos, n, e->xb, d));
    TRY(mm(e, e->q, e->xb, n, L, QB_LIN_Q));
    TRY(mm(e, e->k, e->xb, n, L, QB_LIN_K));
    TRY(mm(e, e->v, e->xb, n, L, QB_LIN_V));
    if (L->bq)
        TRY(B->add_bias(BC, e->q, L->bq, n, qd));
    if (L->bk)
        TRY(B->add_bias(BC, e->k, L->bk, n, kvd));
    if (L->bv)
        TRY(B->add_bias(BC, e->v, L->bv, n, kvd));
    if (L->q_norm) /* Qwen3: RMSNorm over each head, before RoPE */
        TRY(B->rmsnorm(BC, e->q, e->q, L->q_norm, n * L->n_heads, hd));
    if (L->k_norm)
        TRY(B->rmsnorm(BC, e->k, e->k, L->k_norm, n * L->n_kv_heads, hd));
    TRY(B->rope(BC, e->q, n, L->n_heads, pos));
    TRY(B->rope(BC, e->k, n, L->n_kv_heads, pos));
    TRY(B->attention(BC, e->layers_only ? 0 : l, e->q, e->k, e->v, e->att, n, pos, L->n_heads,
                     L->n_kv_heads, L->window));
    TRY(site(e, QB_SITE_O_IN, l, pos, n, e->att, qd));
    TRY(mm(e, e->xb, e->att, n, L, QB_LIN_O));
    TRY(site(e, QB_SITE_O_OUT, l, pos, n, e->xb, d));
    TRY(B->add(BC, e->x, e->xb, n * d));
    return site(e, QB_SITE_MID, l, pos, n, e->x, d);
}

/* The MLP block of layer l over e->x: x += down(silu(gate(n(x))) * up(n(x))). */
static int ffn_block(struct qb_engine *e, int64_t l, const struct dlayer *L, int64_t pos, int64_t n)
{
    const int64_t d = e->m->cfg.dim, hid = L->hidden;
    int rc;

    if (!L->ffn_norm)
        return qb_err(QB_EINVAL, "engine: the layer's weights lack the ffn norm");
    TRY(B->rmsnorm(BC, e->xb, e->x, L->ffn_norm, n, d));
    TRY(site(e, QB_SITE_GU_IN, l, pos, n, e->xb, d));
    TRY(mm(e, e->hb, e->xb, n, L, QB_LIN_GATE));
    TRY(mm(e, e->hb2, e->xb, n, L, QB_LIN_UP));
    TRY(B->swiglu(BC, e->hb, e->hb2, n * hid));
    TRY(site(e, QB_SITE_DOWN_IN, l, pos, n, e->hb, hid));
    TRY(mm(e, e->xb, e->hb, n, L, QB_LIN_DOWN));
    TRY(site(e, QB_SITE_DOWN_OUT, l, pos, n, e->xb, d));
    TRY(B->add(BC, e->x, e->xb, n * d));
    return site(e, QB_SITE_LAYER_OUT, l, pos, n, e->x, d);
}

/* Norms every row of e->x (n) into e->xb when a hook wants them or all logits are asked
 * for, else only the last into e->last; then the logits. */
static int head(struct qb_engine *e, const struct qb_bbuf *norm, int64_t pos, int64_t n,
                float *logits)
{
    const struct qb_config *c = &e->m->cfg;
    const int64_t d = c->dim;
    int rc;

    if (logits || wants(e, QB_SITE_HEAD_IN, c->n_layers)) {
        TRY(B->rmsnorm(BC, e->xb, e->x, norm, n, d));
        TRY(site(e, QB_SITE_HEAD_IN, c->n_layers, pos, n, e->xb, d));
        if (logits)
            return B->logits(BC, logits, e->xb, n, e->output);
        TRY(B->copy(BC, e->last, 0, e->xb, (n - 1) * d, d));
    } else {
        TRY(B->copy(BC, e->last, 0, e->x, (n - 1) * d, d));
        TRY(B->rmsnorm(BC, e->last, e->last, norm, 1, d));
    }
    return e->output ? B->logits(BC, e->logits, e->last, 1, e->output) : 0;
}

/* One batch of n <= max_batch tokens at positions e->pos.. ; logits (n, vocab) or NULL. */
static int forward_batch(struct qb_engine *e, const int32_t *tok, int64_t n, float *logits)
{
    const struct qb_config *c = &e->m->cfg;
    int rc;

    TRY(B->embed(BC, e->embed, tok, n, e->x));
    for (int64_t l = 0; l < c->n_layers; l++) {
        TRY(attn_block(e, l, &e->layer[l], e->pos, n));
        TRY(ffn_block(e, l, &e->layer[l], e->pos, n));
    }
    TRY(head(e, e->out_norm, e->pos, n, logits));
    if (logits)
        memcpy(e->logits, logits + (n - 1) * c->vocab_size, (size_t)c->vocab_size * sizeof(float));
    return 0;
}

int qb_engine_forward(struct qb_engine *e, const int32_t *tokens, int64_t n, float *logits)
{
    const int64_t vocab = e->m->cfg.vocab_size;
    const int64_t pos0 = e->pos;
    int rc, stopped = 0;

    if (e->layers_only)
        return qb_err(QB_EINVAL, "engine: a layers-only engine has no weights to run tokens on");
    if (n <= 0)
        return qb_err(QB_EINVAL, "no tokens to run");
    if (n > e->max_ctx - e->pos)
        return qb_err(QB_ERANGE, "%lld more tokens do not fit in the context (%lld of %lld used)",
                      (long long)n, (long long)e->pos, (long long)e->max_ctx);
    for (int64_t t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= vocab)
            return qb_err(QB_EINVAL, "token id %d is outside the vocabulary (0..%lld)",
                          (int)tokens[t], (long long)vocab - 1);
    for (int64_t t0 = 0; t0 < n; t0 += e->max_batch) {
        int64_t k = n - t0 < e->max_batch ? n - t0 : e->max_batch;
        /* intermediate batches need no logits unless all positions were asked for */
        rc = forward_batch(e, tokens + t0, k, logits ? logits + t0 * vocab : NULL);
        if (rc < 0) {
            e->pos = pos0;
            return rc;
        }
        stopped |= rc == QB_ENGINE_STOPPED;
        e->pos += k;
    }
    if (stopped) /* the deeper layers' caches lack these positions */
        e->pos = pos0;
    return stopped ? QB_ENGINE_STOPPED : 0;
}

/* ---- a pass from a residual stream the caller holds ----------------------------------- */

/* The caller's weights as e->call: weights uploaded (freed by call_done), vectors copied
 * into the call buffers, shapes from the weights and checked against the model's. */
static int call_load(struct qb_engine *e, int64_t l, const struct qb_engine_lw *w)
{
    const struct qb_config *c = &e->m->cfg;
    struct dlayer *L = &e->call;
    const struct qb_qweight *const *lin = w->lin;
    const int64_t hd = c->head_dim;
    int rc;

    L->n_heads = lin[QB_LIN_Q] ? lin[QB_LIN_Q]->t.rows / hd : c->n_heads;
    L->n_kv_heads = lin[QB_LIN_K] ? lin[QB_LIN_K]->t.rows / hd : c->n_kv_heads;
    L->hidden = lin[QB_LIN_GATE] ? lin[QB_LIN_GATE]->t.rows : c->hidden_dim;
    L->window = qb_layer_uses_window(c, l) ? c->sliding_window : 0;
    if ((lin[QB_LIN_Q] && lin[QB_LIN_Q]->t.rows % hd) ||
        (lin[QB_LIN_K] && lin[QB_LIN_K]->t.rows % hd) || L->n_heads < 1 ||
        L->n_heads > c->n_heads || L->n_kv_heads < 1 || L->n_kv_heads > c->n_kv_heads ||
        L->n_heads % L->n_kv_heads || L->n_heads / L->n_kv_heads != c->n_heads / c->n_kv_heads ||
        L->hidden < 1 || L->hidden > c->hidden_dim)
        return qb_err(QB_EINVAL,
                      "engine: layer weights of %lld/%lld heads and %lld hidden units "
                      "do not fit the model's %lld/%lld and %lld",
                      (long long)L->n_heads, (long long)L->n_kv_heads, (long long)L->hidden,
                      (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->hidden_dim);
    for (int i = 0; i < QB_LIN_COUNT; i++)
        if (lin[i])
            TRY(B->weight_new(BC, &lin[i]->t, lin[i]->act, &L->lin[i]));
    struct {
        const float *src;
        struct qb_bbuf *dst;
        int64_t n;
    } vec[] = {
        {w->attn_norm, L->attn_norm, c->dim},
        {w->ffn_norm, L->ffn_norm, c->dim},
        {w->bq, L->bq, L->n_heads * hd},
        {w->bk, L->bk, L->n_kv_heads * hd},
        {w->bv, L->bv, L->n_kv_heads * hd},
        /* per-head norms are never quantized: the model's own */
        {e->m->layers ? e->m->layers[l].q_norm : NULL, L->q_norm, hd},
        {e->m->layers ? e->m->layers[l].k_norm : NULL, L->k_norm, hd},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
        if (vec[i].src)
            TRY(B->write(BC, vec[i].dst, 0, vec[i].src, vec[i].n));
    return 0;
}

static void call_done(struct qb_engine *e)
{
    dlayer_release(e, &e->call, 1, 0);
}

/* e->call with the vectors the caller did not give hidden (NULL) for one pass. */
static struct dlayer call_view(const struct qb_engine *e, const struct qb_engine_lw *w)
{
    struct dlayer L = e->call;
    L.attn_norm = w->attn_norm ? L.attn_norm : NULL;
    L.ffn_norm = w->ffn_norm ? L.ffn_norm : NULL;
    L.bq = w->bq ? L.bq : NULL;
    L.bk = w->bk ? L.bk : NULL;
    L.bv = w->bv ? L.bv : NULL;
    return L;
}

int qb_engine_embed(struct qb_engine *e, const struct qb_qweight *table, const int32_t *tokens,
                    int64_t n, float *x)
{
    const int64_t d = e->m->cfg.dim;
    struct qb_bweight *t = NULL;
    int64_t rows, width;
    int rc = 0;

    if (!table && e->layers_only)
        return qb_err(QB_EINVAL, "engine: a layers-only engine has no embeddings of its own");
    rows = table ? table->t.rows : e->m->cfg.vocab_size;
    width = !table ? d : table->t.in_cols ? table->t.in_cols : table->t.cols;
    if (width != d)
        return qb_err(QB_EINVAL,
                      "engine: an embedding table of width %lld for a model of dim "
                      "%lld",
                      (long long)width, (long long)d);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= rows)
            return qb_err(QB_EINVAL, "token id %d is outside the embedding table (0..%lld)",
                          (int)tokens[i], (long long)rows - 1);
    if (table && (rc = B->weight_new(BC, &table->t, table->act, &t)) < 0)
        return rc;
    for (int64_t t0 = 0; t0 < n && rc == 0; t0 += e->max_batch) {
        int64_t k = n - t0 < e->max_batch ? n - t0 : e->max_batch;
        if ((rc = B->embed(BC, t ? t : e->embed, tokens + t0, k, e->x)) == 0)
            rc = B->read(BC, e->x, 0, x + t0 * d, k * d);
    }
    B->weight_free(BC, t);
    return rc;
}

int qb_engine_layer(struct qb_engine *e, int64_t l, const struct qb_engine_lw *w,
                    enum qb_engine_start from, float *x, int64_t pos, int64_t n)
{
    const int64_t d = e->m->cfg.dim;
    struct dlayer view;
    const struct dlayer *L;
    int rc = 0, stopped = 0;

    if (l < 0 || l >= e->m->cfg.n_layers || n <= 0 || pos < 0 ||
        (from == QB_START_LAYER && n > e->max_ctx - pos) ||
        (from != QB_START_LAYER && from != QB_START_FFN))
        return qb_err(QB_EINVAL,
                      "engine: layer %lld over %lld tokens at %lld does not fit "
                      "(context %lld)",
                      (long long)l, (long long)n, (long long)pos, (long long)e->max_ctx);
    if (!w && e->layers_only)
        return qb_err(QB_EINVAL, "engine: a layers-only engine has no layer weights of its own");
    if (w && (rc = call_load(e, l, w)) < 0) {
        call_done(e);
        return rc;
    }
    if (w)
        view = call_view(e, w);
    L = w ? &view : &e->layer[l];
    for (int64_t t0 = 0; t0 < n && rc >= 0; t0 += e->max_batch) {
        const int64_t k = n - t0 < e->max_batch ? n - t0 : e->max_batch;
        if ((rc = B->write(BC, e->x, 0, x + t0 * d, k * d)) < 0)
            break;
        rc = from == QB_START_LAYER ? attn_block(e, l, L, pos + t0, k) : 0;
        if (rc == 0)
            rc = ffn_block(e, l, L, pos + t0, k);
        stopped |= rc == QB_ENGINE_STOPPED;
        if (rc >= 0)
            rc = B->read(BC, e->x, 0, x + t0 * d, k * d);
    }
    if (w)
        call_done(e);
    return rc < 0 ? rc : stopped ? QB_ENGINE_STOPPED : 0;
}

int qb_engine_head(struct qb_engine *e, const float *out_norm, const float *x, int64_t pos,
                   int64_t n, float *logits)
{
    const struct qb_config *c = &e->m->cfg;
    const int64_t d = c->dim;
    struct qb_bbuf *norm = e->out_norm;
    int rc = 0, stopped = 0;

    if (n <= 0 || (!out_norm && !e->out_norm) || (logits && !e->output))
        return qb_err(QB_EINVAL, "engine: the final norm of %lld tokens%s", (long long)n,
                      logits && !e->output ? " with a head the engine does not hold" : "");
    if (out_norm) { /* the caller's, in the call's attention-norm buffer */
        norm = e->call.attn_norm;
        TRY(B->write(BC, norm, 0, out_norm, d));
    }
    for (int64_t t0 = 0; t0 < n && rc >= 0; t0 += e->max_batch) {
        const int64_t k = n - t0 < e->max_batch ? n - t0 : e->max_batch;
        if ((rc = B->write(BC, e->x, 0, x + t0 * d, k * d)) < 0)
            break;
        if ((rc = B->rmsnorm(BC, e->xb, e->x, norm, k, d)) < 0)
            break;
        rc = site(e, QB_SITE_HEAD_IN, c->n_layers, pos + t0, k, e->xb, d);
        stopped |= rc == QB_ENGINE_STOPPED;
        if (rc == 0 && logits)
            rc = B->logits(BC, logits + t0 * c->vocab_size, e->xb, k, e->output);
    }
    return rc < 0 ? rc : stopped ? QB_ENGINE_STOPPED : 0;
}
