/* calib: calibration data and the layer-by-layer calibrated quantizers (see calib.h). The
 * layers run on the engine's own forward pass (collector/engine/engine.h): each sequence's
 * residual stream goes through layer l with the weights of the moment (f32 working copies,
 * then the quantized matrices), and a hook copies out the input a group of matrices reads
 * and stops the pass there. So the quantized layers are fed exactly the activations the
 * engine will give them, and this file only observes and quantizes. Shapes are per
 * sequence of T tokens. */
#include "collector/quant/calib.h"

#include "collector/engine/engine.h"
#include "kernels/base/err.h"
#include "kernels/base/progress.h"
#include "kernels/base/fileio.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/gptq.h"
#include "kernels/qmatmul.h"
#include "kernels/quantize.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BYTES_PER_TOKEN 32 /* far more text than a token needs: the rest is not read */

/* ---- calibration data ------------------------------------------------------------------ */

static struct qb_calib *calib_alloc(int64_t n_seq, int64_t seq_len, const char *name)
{
    struct qb_calib *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->tokens = malloc((size_t)n_seq * (size_t)seq_len * sizeof *c->tokens);
    c->name = strdup(name ? name : "calibration tokens");
    if (!c->tokens || !c->name) {
        qb_calib_free(c);
        return NULL;
    }
    c->n_seq = n_seq;
    c->seq_len = seq_len;
    c->gptq_damp = 0.01;
    c->gptq_act_order = 0;
    c->gptq_head = 1;
    c->awq_head = 1;
    c->awq_duo = 0;
    c->awq_mlp_loss = 1;
    c->awq_attn_loss = 1;
    c->gptq_clip = 1;
    c->gptq_clip_weighted = 1;
    c->awq_grid = 20;
    c->awq_alpha = -1;
    c->awq_tokens = 4096;
    c->awq_search_weights = 1 << 20;
    c->smooth_alpha = 0.5f;
    return c;
}

void qb_calib_free(struct qb_calib *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->tokens);
    free(c);
}

int qb_calib_from_tokens(const int32_t *tokens, int64_t n_seq, int64_t seq_len, const char *name,
                         struct qb_calib **out)
{
    struct qb_calib *c;
    *out = NULL;
    if (!tokens || n_seq <= 0 || seq_len <= 0 || n_seq > INT32_MAX || seq_len > INT32_MAX)
        return qb_err(QB_EINVAL, "calibration: %lld sequences of %lld tokens", (long long)n_seq,
                      (long long)seq_len);
    if (!(c = calib_alloc(n_seq, seq_len, name)))
        return qb_err(QB_ENOMEM, "out of memory for calibration tokens");
    memcpy(c->tokens, tokens, (size_t)(n_seq * seq_len) * sizeof *tokens);
    *out = c;
    return 0;
}

int qb_calib_load(const char *path, const struct qb_tokenizer *tok, int64_t n_seq, int64_t seq_len,
                  int64_t max_len, struct qb_calib **out)
{
    FILE *f = NULL;
    char *buf = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0, body, ns;
    size_t cap, len;
    int rc = 0, has_bos;
    int32_t bos;

    *out = NULL;
    if (!tok)
        return qb_err(QB_EINVAL, "calibration file '%s': the model has no tokenizer", path);
    if (n_seq <= 0)
        n_seq = QB_CALIB_SEQUENCES;
    if (seq_len <= 0)
        seq_len = QB_CALIB_SEQ_LEN;
    if (max_len > 0 && seq_len > max_len)
        seq_len = max_len;
    if (seq_len < 2 || n_seq > (1 << 20) || seq_len > (1 << 24))
        return qb_err(QB_EINVAL, "calibration: %lld sequences of %lld tokens", (long long)n_seq,
                      (long long)seq_len);
    cap = (size_t)n_seq * (size_t)seq_len * READ_BYTES_PER_TOKEN;
    if ((rc = qb_fopen_regular(path, &f, NULL)) < 0) /* a FIFO or /dev/zero is refused */
        return qb_err_prefix(rc, "calibration file");
    if (!(buf = malloc(cap + 1))) {
        rc = qb_err(QB_ENOMEM, "out of memory reading calibration file '%s'", path);
        goto out;
    }
    len = fread(buf, 1, cap, f);
    if (ferror(f)) {
        rc = qb_err(QB_EIO, "cannot read calibration file '%s': %s", path, strerror(errno));
        goto out;
    }
    buf[len] = 0;
    if (len == 0) {
        rc = qb_err(QB_EINVAL, "calibration file '%s' is empty", path);
        goto out;
    }
    if ((rc = qb_tok_encode(tok, buf, len, QB_TOK_NO_BOS, &ids, &n_ids)) < 0) {
        rc = qb_err_prefix(rc, "calibration file '%s'", path);
        goto out;
    }
    if (n_ids == 0) {
        rc = qb_err(QB_EINVAL, "calibration file '%s' holds no text", path);
        goto out;
    }
    bos = qb_tok_bos(tok);
    has_bos = bos >= 0;
    body = seq_len - has_bos;
    ns = n_ids / body;
    if (ns > n_seq)
        ns = n_seq;
    if (ns == 0) { /* shorter than one sequence: one sequence of all of it */
        ns = 1;
        body = n_ids;
        seq_len = n_ids + has_bos;
    }
    if (!(*out = calib_alloc(ns, seq_len, path))) {
        rc = qb_err(QB_ENOMEM, "out of memory for calibration tokens");
        goto out;
    }
    for (int64_t s = 0; s < ns; s++) {
        int32_t *row = (*out)->tokens + s * seq_len;
        if (has_bos)
            row[0] = bos;
        memcpy(row + has_bos, ids + s * body, (size_t)body * sizeof *ids);
    }
out:
    if (f)
        fclose(f);
    free(buf);
    free(ids);
    return rc;
}

/* ---- the work of one calibration ------------------------------------------------------- */

static const enum qb_target lin_target[QB_LIN_COUNT] = {
    QB_TGT_Q, QB_TGT_K, QB_TGT_V, QB_TGT_O, QB_TGT_GATE, QB_TGT_UP, QB_TGT_DOWN,
};
static const char *const lin_name[QB_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};

/* The groups of linear layers sharing one input. */
enum site { SITE_QKV, SITE_O, SITE_GU, SITE_DOWN };
static const char *const site_name[] = {"q/k/v", "o", "gate/up", "down"};
static const struct {
    int n, lin[3];
} site_lins[4] = {
    {3, {QB_LIN_Q, QB_LIN_K, QB_LIN_V}},
    {1, {QB_LIN_O}},
    {2, {QB_LIN_GATE, QB_LIN_UP}},
    {1, {QB_LIN_DOWN}},
};

/* What one input accumulates over the calibration tokens. */
struct acc {
    int64_t k, n_tok;
    double *h;       /* (k, k) GPTQ: sum x x^T, lower triangle, then 2/N and mirrored */
    double *abs_sum; /* (k) AWQ: sum |x| */
    double *sq_sum;  /* (k) AWQ: sum x^2, for the clipping search */
    float *abs_max;  /* (k) SmoothQuant: max |x| */
    float *sample;   /* (cap, k) AWQ: every stride-th token (global token index) */
    int64_t n_keep, cap, stride;
};

struct work {
    const struct qb_calib *cal;
    struct qb_qmodel *qm;
    const struct qb_model *m;
    const struct qb_config *c;
    enum qb_method method;
    int64_t d, qd, kvd, hid, hd, T, n_seq, l;
    float *x;               /* (n_seq, T, d) residual stream of every sequence */
    struct qb_engine **eng; /* (n_threads) layers-only engines of T tokens, one per thread */
    float *batch;           /* (n_threads, T, max(d, qd, hid)) the observed inputs of a batch */
    float *xt;              /* (max(d, qd, hid), n_threads * T) those inputs transposed, for H */
    int n_threads;
    /* the layer being quantized */
    float *w[QB_LIN_COUNT]; /* f32 working copies (rows, cols); scales fold into these */
    int64_t rows[QB_LIN_COUNT], cols[QB_LIN_COUNT];
    float *attn_norm, *ffn_norm, *bq, *bk, *bv; /* working copies; biases NULL without */
    struct qb_qweight cur[QB_LIN_COUNT]; /* what the forward runs: an f32 wrap of w, or final */
    int final[QB_LIN_COUNT];             /* cur[i] is the quantized (owned) result */
    float *awq_cw[4]; /* (k) per site: mean x^2 of the scaled input, AWQ's clip weights */
    double *awq_h[4]; /* (k, k) per site: E[x x^T] of the scaled input, for the same */
};

static int64_t max3(int64_t a, int64_t b, int64_t c)
{
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* ---- the layer forward: the engine's, with the weights of the moment ------------------- */

/* Layer l as it stands: the working copies or the quantized matrices (cur), the working
 * norms and biases. */
static struct qb_engine_lw layer_weights(const struct work *W)
{
    struct qb_engine_lw lw = {
        .attn_norm = W->attn_norm, .ffn_norm = W->ffn_norm, .bq = W->bq, .bk = W->bk, .bv = W->bv};
    for (int i = 0; i < QB_LIN_COUNT; i++)
        lw.lin[i] = &W->cur[i];
    return lw;
}

/* Where a pass copies what it observes (NULL: nowhere): rows at the positions the engine
 * reports. */
static int copy_out(void *ctx, const struct qb_engine_obs *o)
{
    float *dst = ctx;
    if (dst)
        memcpy(dst + o->pos * o->width, o->x, (size_t)(o->n * o->width) * sizeof *dst);
    return 1; /* the pass has reached what it ran for */
}

/* Runs layer l (weights lw) over x (n, d) from `from` with engine e, copying what site shows
 * into out (n, width) when out is not NULL and stopping there (QB_SITE_COUNT: the whole
 * layer). x is the stream where the pass ended. */
static int run_to(const struct work *W, struct qb_engine *e, const struct qb_engine_lw *lw,
                  enum qb_engine_start from, enum qb_site site, float *x, int64_t n, float *out)
{
    struct qb_engine_hook h = {copy_out, out, site < QB_SITE_COUNT ? QB_SITE_BIT(site) : 0, -1};
    int rc;
    qb_engine_set_hook(e, site < QB_SITE_COUNT ? &h : NULL);
    rc = qb_engine_layer(e, W->l, lw, from, x, 0, n);
    qb_engine_set_hook(e, NULL);
    return rc < 0 ? qb_err_prefix(rc, "calibration, layer %lld", (long long)W->l) : 0;
}

/* ---- accumulating what the methods need ------------------------------------------------ */

static void acc_free(struct acc *a)
{
    free(a->h);
    free(a->abs_sum);
    free(a->sq_sum);
    free(a->abs_max);
    free(a->sample);
    memset(a, 0, sizeof *a);
}

/* For an input of k channels; whole: AWQ scores whole sequences (its attention loss, which
 * reads them from the residual stream) rather than strided tokens, and keeps no sample. */
static int acc_init(struct work *W, struct acc *a, int64_t k, int whole)
{
    const int64_t total = W->n_seq * W->T;
    memset(a, 0, sizeof *a);
    a->k = k;
    if ((W->method == QB_METHOD_GPTQ || W->method == QB_METHOD_AWQ) &&
        !(a->h = calloc((size_t)(k * k), sizeof *a->h)))
        goto oom;
    if (W->method == QB_METHOD_AWQ) {
        if (!(a->abs_sum = calloc((size_t)k, sizeof *a->abs_sum)) ||
            !(a->sq_sum = calloc((size_t)k, sizeof *a->sq_sum)))
            goto oom;
        if (!whole) {
            a->cap = W->cal->awq_tokens < total ? W->cal->awq_tokens : total;
            a->cap = a->cap > 0 ? a->cap : 1;
            a->stride = total / a->cap > 1 ? total / a->cap : 1;
            if (!(a->sample = malloc((size_t)(a->cap * k) * sizeof *a->sample)))
                goto oom;
        }
    }
    if (W->method == QB_METHOD_SMOOTH && !(a->abs_max = calloc((size_t)k, sizeof *a->abs_max)))
        goto oom;
    return 0;
oom:
    acc_free(a);
    return qb_err(QB_ENOMEM, "out of memory for calibration statistics (%lld inputs)",
                  (long long)k);
}

/* Adds n inputs x (n, k), in order. */
static void observe(struct work *W, struct acc *a, const float *x, int64_t n)
{
    const int64_t k = a->k;
    if (a->h) {
        /* H += X^T X over the lower triangle, from X transposed so both rows are contiguous */
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < k; i++)
                W->xt[i * n + t] = x[t * k + i];
#pragma omp parallel for schedule(dynamic, 8) if (k * k * n >= (1 << 22))
        for (int64_t i = 0; i < k; i++) {
            const float *xi = W->xt + i * n;
            for (int64_t j = 0; j <= i; j++) {
                const float *xj = W->xt + j * n;
                float part[8] = {0};
                int64_t t = 0;
                for (; t + 8 <= n; t += 8)
                    for (int l = 0; l < 8; l++)
                        part[l] += xi[t + l] * xj[t + l];
                double s = 0;
                for (; t < n; t++)
                    s += (double)xi[t] * xj[t];
                for (int l = 0; l < 8; l++)
                    s += part[l];
                a->h[i * k + j] += s;
            }
        }
    }
    if (a->abs_sum || a->abs_max)
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < k; i++) {
                float v = fabsf(x[t * k + i]);
                if (a->abs_sum) {
                    a->abs_sum[i] += v;
                    a->sq_sum[i] += (double)v * v;
                }
                if (a->abs_max && v > a->abs_max[i])
                    a->abs_max[i] = v;
            }
    if (a->sample)
        for (int64_t t = 0; t < n && a->n_keep < a->cap; t++)
            if ((a->n_tok + t) % a->stride == 0)
                memcpy(a->sample + a->n_keep++ * k, x + t * k, (size_t)k * sizeof *x);
    a->n_tok += n;
}

/* The passes over every sequence, each stopping at one input of layer l. */
enum pass {
    P_QKV,     /* attn-normed stream: the input of q, k, v */
    P_O,       /* attention output: the input of o */
    P_ATTN_GU, /* the attention block applied to the stream; ffn-normed stream: gate, up */
    P_DOWN,    /* SwiGLU product: the input of down */
    P_FFN,     /* the ffn block applied to the stream */
    P_HEAD,    /* after the last layer: the final normed stream, the input of the head */
};

/* Sequence s through pass p on engine e; the observed input (T, k) is copied to obs when
 * not NULL. The passes that reach the layer's second half write the stream back into W->x. */
static int seq_pass(const struct work *W, struct qb_engine *e, enum pass p, int64_t s, float *obs)
{
    static const struct {
        enum qb_engine_start from;
        enum qb_site site;
    } how[] = {
        [P_QKV] = {QB_START_LAYER, QB_SITE_QKV_IN},    [P_O] = {QB_START_LAYER, QB_SITE_O_IN},
        [P_ATTN_GU] = {QB_START_LAYER, QB_SITE_GU_IN}, [P_DOWN] = {QB_START_FFN, QB_SITE_DOWN_IN},
        [P_FFN] = {QB_START_FFN, QB_SITE_COUNT},
    };
    const struct qb_engine_lw lw = layer_weights(W);
    float *xs = W->x + s * W->T * W->d; /* (T, d) */
    int rc;
    if (p == P_HEAD) {
        struct qb_engine_hook h = {copy_out, obs, QB_SITE_BIT(QB_SITE_HEAD_IN), -1};
        qb_engine_set_hook(e, &h);
        rc = qb_engine_head(e, W->m->out_norm, xs, 0, W->T, NULL);
        qb_engine_set_hook(e, NULL);
        return rc < 0 ? qb_err_prefix(rc, "calibration, the final norm") : 0;
    }
    return run_to(W, e, &lw, how[p].from, how[p].site, xs, W->T, obs);
}

/* Pass p over every sequence, a batch of n_threads sequences at a time (one per thread; the
 * matmuls inside then run on that thread alone), observing each batch in sequence order. */
static int run_pass(struct work *W, enum pass p, struct acc *a)
{
    char msg[512] = "";
    int rc = 0;
    for (int64_t s0 = 0; s0 < W->n_seq && rc == 0; s0 += W->n_threads) {
        const int64_t nb = W->n_seq - s0 < W->n_threads ? W->n_seq - s0 : W->n_threads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(W->n_threads) if (nb > 1)
        for (int64_t b = 0; b < nb; b++) {
            float *obs = a ? W->batch + b * W->T * a->k : NULL;
            int r = seq_pass(W, W->eng[omp_get_thread_num()], p, s0 + b, obs);
            if (r < 0) {
#pragma omp critical(qb_calib_fail)
                if (rc == 0) { /* the message is thread-local: carry it out */
                    rc = r;
                    snprintf(msg, sizeof msg, "%s", qb_errmsg());
                }
            }
        }
        if (rc < 0)
            return qb_err(rc, "%s", msg);
        if (a)
            observe(W, a, W->batch, nb * W->T);
    }
    return rc;
}

/* ---- quantizing one matrix ------------------------------------------------------------- */

static int is_int(enum qb_fmt f)
{
    return f == QB_FMT_I8 || f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
}

static const struct qb_qbase *base_of(const struct work *W, int i)
{
    static const struct qb_qbase f32 = {.fmt = QB_FMT_F32};
    return W->cal->fold_only ? &f32 : qb_qspec_for_layer(&W->qm->spec, W->l, lin_target[i]);
}

/* Makes cur[i] final: round-to-nearest of the working copy, or GPTQ with h (cols, cols)
 * when h is given and the precision is an integer one. */
static int site_of(int i)
{
    return i <= QB_LIN_V      ? SITE_QKV
           : i == QB_LIN_O    ? SITE_O
           : i == QB_LIN_DOWN ? SITE_DOWN
                              : SITE_GU;
}

static int is_group(enum qb_fmt f)
{
    return f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
}

/* q = w (rows, cols) in group precision b, rounded by the clipping search and refit scored
 * with column weights cw (cols) and E[x x^T] hw (cols, cols), or cw alone when hw is NULL
 * (kernels/gptq.h, qb_quantize_weighted); columns padded to b's groups carry no signal. */
static int weighted(const float *w, int64_t rows, int64_t cols, const struct qb_qbase *b,
                    const float *cw, const double *hw, const char *what, struct qb_qweight *q)
{
    const int64_t kp = qb_qbase_padded_cols(b, cols);
    float *wp = NULL, *cp = NULL;
    double *hp = NULL;
    int rc;
    memset(q, 0, sizeof *q);
    if (kp != cols) { /* padding inputs carry no signal: weight 0 */
        if (!(wp = calloc((size_t)(rows * kp), sizeof *wp)) ||
            !(cp = calloc((size_t)kp, sizeof *cp)) ||
            (hw && !(hp = calloc((size_t)(kp * kp), sizeof *hp)))) {
            free(wp);
            free(cp);
            return qb_err(QB_ENOMEM, "%s: out of memory", what);
        }
        for (int64_t r = 0; r < rows; r++)
            memcpy(wp + r * kp, w + r * cols, (size_t)cols * sizeof *wp);
        memcpy(cp, cw, (size_t)cols * sizeof *cp);
        for (int64_t r = 0; hw && r < cols; r++)
            memcpy(hp + r * kp, hw + r * cols, (size_t)cols * sizeof *hp);
        w = wp;
        cw = cp;
        hw = hp;
    }
    rc = qb_quantize_weighted(w, rows, kp, cw, hw, b->fmt, b->group, b->asym, 1, &q->t);
    free(wp);
    free(cp);
    free(hp);
    if (rc < 0)
        return qb_err_prefix(rc, "%s", what);
    q->act = b->act;
    q->t.in_cols = kp != cols ? cols : 0;
    return 0;
}

/* q = w (rows, cols) of lin i (or some of its rows) in its precision; group formats with
 * column weights cw (cols) get the weighted clipping search (AWQ's), the rest round to
 * nearest. */
static int quant_awq(const struct work *W, int i, const float *w, int64_t rows, const float *cw,
                     const double *hw, const char *what, struct qb_qweight *q)
{
    const struct qb_qbase *b = base_of(W, i);
    if (!cw || !is_group(b->fmt))
        return qb_qweight_quantize(w, rows, W->cols[i], b, 1, what, q);
    return weighted(w, rows, W->cols[i], b, cw, hw, what, q);
}

static int finish(struct work *W, int i, const double *h)
{
    const struct qb_qbase *b = base_of(W, i);
    const int64_t rows = W->rows[i], cols = W->cols[i];
    struct qb_qweight q = {0};
    char what[96];
    int rc;

    snprintf(what, sizeof what, "layer %lld %s projection", (long long)W->l, lin_name[i]);
    if (h && is_int(b->fmt)) {
        struct qb_gptq_opts o = {W->cal->gptq_damp, W->cal->gptq_act_order, W->cal->gptq_clip,
                                 W->cal->gptq_clip_weighted};
        const int64_t kp = qb_qbase_padded_cols(b, cols);
        const float *w = W->w[i];
        const double *hh = h;
        float *wp = NULL;
        double *hp = NULL;
        if (kp != cols) { /* padding inputs are dead inputs: zero in H */
            if (!(wp = calloc((size_t)(rows * kp), sizeof *wp)) ||
                !(hp = calloc((size_t)(kp * kp), sizeof *hp))) {
                free(wp);
                return qb_err(QB_ENOMEM, "%s: out of memory", what);
            }
            for (int64_t r = 0; r < rows; r++)
                memcpy(wp + r * kp, w + r * cols, (size_t)cols * sizeof *wp);
            for (int64_t r = 0; r < cols; r++)
                memcpy(hp + r * kp, h + r * cols, (size_t)cols * sizeof *hp);
            w = wp;
            hh = hp;
        }
        rc = qb_gptq_quantize(w, rows, kp, hh, b->fmt, b->group, b->asym, &o, &q.t);
        free(wp);
        free(hp);
        if (rc < 0)
            return qb_err_prefix(rc, "%s", what);
        q.act = b->act;
        q.t.in_cols = kp != cols ? cols : 0;
    } else if ((rc = quant_awq(W, i, W->w[i], W->rows[i], W->awq_cw[site_of(i)],
                               W->awq_h[site_of(i)], what, &q)) < 0) {
        return rc;
    }
    qb_qtensor_release(&W->cur[i].t); /* a no-op on the f32 wrap */
    W->cur[i] = q;
    W->final[i] = 1;
    return 0;
}

/* ---- scales: AWQ and SmoothQuant ------------------------------------------------------- */

/* The v channel (kvd) that input j (qd) of o reads. */
static int64_t o_to_v(const struct work *W, int64_t j)
{
    const int64_t group = W->c->n_heads / W->c->n_kv_heads, h = j / W->hd;
    return (h / group) * W->hd + j % W->hd;
}

/* Folds per-input scales s (k) of a site into the model: the input is divided by s and the
 * site's columns multiplied by it; exact in exact arithmetic. */
static void fold(struct work *W, enum site site, const float *s)
{
    const int64_t k = W->cols[site_lins[site].lin[0]];
    for (int n = 0; n < site_lins[site].n; n++) {
        int i = site_lins[site].lin[n];
        for (int64_t r = 0; r < W->rows[i]; r++)
            for (int64_t j = 0; j < k; j++)
                W->w[i][r * k + j] *= s[j];
    }
    switch (site) {
    case SITE_QKV:
        for (int64_t j = 0; j < k; j++)
            W->attn_norm[j] /= s[j];
        break;
    case SITE_GU:
        for (int64_t j = 0; j < k; j++)
            W->ffn_norm[j] /= s[j];
        break;
    case SITE_O: {
        /* v channel cc feeds o input j of every query head of its group, whose scales are
         * tied (awq_site), so v's row cc is divided by that one scale */
        const int64_t group = W->c->n_heads / W->c->n_kv_heads;
        for (int64_t cc = 0; cc < W->kvd; cc++) {
            const float sc = s[(cc / W->hd) * group * W->hd + cc % W->hd];
            for (int64_t i = 0; i < W->d; i++)
                W->w[QB_LIN_V][cc * W->d + i] /= sc;
            if (W->bv)
                W->bv[cc] /= sc;
        }
        break;
    }
    case SITE_DOWN:
        for (int64_t j = 0; j < k; j++) {
            for (int64_t i = 0; i < W->d; i++)
                W->w[QB_LIN_UP][j * W->d + i] /= s[j];
        }
        break;
    }
}

/* AWQ scales s (k) = m^alpha normalised, m the mean |x| per input (tied across the query
 * heads of a kv group for o). */
static void awq_scales(int64_t k, const float *m, const float *wm, float alpha, float *s)
{
    float mx = 0, mn = FLT_MAX;
    for (int64_t j = 0; j < k; j++) {
        s[j] = powf(m[j] > 1e-4f ? m[j] : 1e-4f, alpha);
        if (wm) /* "duo" scaling: s = m^a / wm^(1-a) */
            s[j] /= powf(wm[j], 1.0f - alpha) + 1e-4f;
        s[j] = s[j] > 1e-4f ? s[j] : 1e-4f;
        mx = s[j] > mx ? s[j] : mx;
        mn = s[j] < mn ? s[j] : mn;
    }
    const float norm = sqrtf(mx * mn);
    for (int64_t j = 0; j < k; j++)
        s[j] /= norm;
}

/* The clip weights of the input scaled by 1/s: cw (k) its mean square, hs (k, k) its
 * second moment, from a's lower-triangle sums. */
static void scaled_moments(const struct acc *a, const float *s, float *cw, double *hs)
{
    const int64_t k = a->k;
    const double inv_n = 1.0 / (double)(a->n_tok > 0 ? a->n_tok : 1);
    for (int64_t j = 0; j < k; j++)
        cw[j] = (float)(a->sq_sum[j] * inv_n) / (s[j] * s[j]);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j <= i; j++)
            hs[i * k + j] = hs[j * k + i] = a->h[i * k + j] * inv_n / ((double)s[i] * s[j]);
}

/* Whether the gate/up search scores the MLP's output rather than gate's and up's. */
static int mlp_loss(const struct work *W, enum site site)
{
    return W->method == QB_METHOD_AWQ && site == SITE_GU && W->cal->awq_mlp_loss;
}

/* Whether the q/k/v search scores the attention block's output rather than q's, k's, v's. */
static int attn_loss(const struct work *W, enum site site)
{
    return W->method == QB_METHOD_AWQ && site == SITE_QKV && W->cal->awq_attn_loss;
}

/* How many output rows of a (rows, cols) layer the alpha search scores: every row up to
 * awq_search_weights weights, else that many weights' worth of evenly spaced rows (at least
 * 64). Each row is rounded on its own, so the rows scored estimate the whole layer's error;
 * the final quantization covers every row. */
static int64_t search_rows(const struct qb_calib *cal, int64_t rows, int64_t cols)
{
    int64_t ns;
    if (cal->awq_search_weights <= 0 || rows * cols <= cal->awq_search_weights)
        return rows;
    ns = cal->awq_search_weights / cols;
    ns = ns > 64 ? ns : 64;
    return ns < rows ? ns : rows;
}

/* Row r of the ns evenly spaced rows out of rows (every row when ns == rows). */
static int64_t search_row(int64_t r, int64_t ns, int64_t rows)
{
    return r * rows / ns;
}

/* The alpha search of one site: the rows it scores, their f32 outputs on the sampled inputs
 * (or the block's f32 output), and its buffers. Scoring a block (the MLP, the attention), the
 * rows of the first layer are the block's hidden units or query channels, read by the
 * block's output layer (down, o) through the same columns of it; scoring the attention, the
 * rows are those of whole kv heads, evenly spaced, and of the query heads that read them. A
 * block runs on the engine from the residual stream (block_run), its norm divided by the
 * scales where the matrices' own outputs are scored on the normed inputs divided by them. */
struct search {
    int n_lin, block;
    int64_t n, k, ns[3];
    int64_t nkv;     /* scoring the attention: the kv heads scored */
    const float *x;  /* (n, k) scoring the matrices: the sampled inputs */
    float *xr;       /* (n, d) scoring a block: the stream it reads (the MLP: the sampled
                        tokens' after the attention block; the attention: whole sampled
                        sequences' entering the layer) */
    int64_t *row[3]; /* (ns) the rows scored */
    float *w[3];     /* (ns, k) the rows scored, f32, unscaled */
    float *b[3];     /* (ns) their biases, or NULL */
    float *out_w;  /* (d, ns[0]) scoring a block: its output layer's columns for the rows scored */
    float *ref[3]; /* (n, ns) scoring the matrices: their f32 outputs */
    float *yq[3];  /* the same, quantized */
    float *ref_out, *yq_out; /* (n, d) scoring a block: its output, f32 and quantized */
    float *norm;             /* (k) scoring a block: its norm's weights divided by the scales */
    float *xs;               /* (n, k) scoring the matrices: the inputs divided by the scales */
    float *ws;               /* (max ns, k) the rows scored, times the scales */
};

static void search_free(struct search *S)
{
    for (int i = 0; i < 3; i++) {
        free(S->row[i]);
        free(S->w[i]);
        free(S->b[i]);
        free(S->ref[i]);
        free(S->yq[i]);
    }
    free(S->xr);
    free(S->out_w);
    free(S->ref_out);
    free(S->yq_out);
    free(S->norm);
    free(S->xs);
    free(S->ws);
    memset(S, 0, sizeof *S);
}

/* The block's output (n, d) on the engine, with the scored rows' weights q[] (f32 or
 * quantized) behind the norm weights nw (d) and the block's output layer's columns for them
 * in f32: the MLP's (down's output) over the sampled tokens, the attention's (o's output,
 * after the biases, RoPE and causal attention) over each sampled sequence. Pieces of T
 * tokens (whole sequences for the attention) run in parallel, one per thread and engine, as
 * the passes do: one parallel region per call, where the matmuls of one engine over all the
 * tokens would open several per piece. The passes stop before the residual add, so S->xr
 * is left as it was. */
static int block_run(const struct work *W, enum site site, struct search *S,
                     const struct qb_qweight *const q[3], const float *nw, float *out)
{
    const int64_t T = W->T, d = W->d, n_piece = (S->n + T - 1) / T;
    const int mlp = site == SITE_GU;
    struct qb_qweight wo = {.act = QB_ACT_F32};
    char msg[512] = "";
    int rc = 0;
    qb_qtensor_wrap_f32(S->out_w, W->d, S->ns[0], &wo.t);
    const struct qb_engine_lw lw = mlp ? (struct qb_engine_lw){.lin = {[QB_LIN_GATE] = q[0],
                                                                       [QB_LIN_UP] = q[1],
                                                                       [QB_LIN_DOWN] = &wo},
                                                               .ffn_norm = nw}
                                       : (struct qb_engine_lw){.lin = {q[0], q[1], q[2], &wo},
                                                               .attn_norm = nw,
                                                               .bq = S->b[0],
                                                               .bk = S->b[1],
                                                               .bv = S->b[2]};
#pragma omp parallel for schedule(dynamic, 1) num_threads(W->n_threads) if (n_piece > 1)
    for (int64_t c = 0; c < n_piece; c++) {
        const int64_t t0 = c * T, k = S->n - t0 < T ? S->n - t0 : T;
        int r = run_to(W, W->eng[omp_get_thread_num()], &lw, mlp ? QB_START_FFN : QB_START_LAYER,
                       mlp ? QB_SITE_DOWN_OUT : QB_SITE_O_OUT, S->xr + t0 * d, k, out + t0 * d);
        if (r < 0) {
#pragma omp critical(qb_calib_fail)
            if (rc == 0) { /* the message is thread-local: carry it out */
                rc = r;
                snprintf(msg, sizeof msg, "%s", qb_errmsg());
            }
        }
    }
    return rc < 0 ? qb_err(rc, "%s", msg) : 0;
}

/* The stream S's block reads, gathered from W->x: for the attention, awq_tokens' worth of
 * whole sequences, evenly spaced (at least one); for the MLP, the tokens a sampled (every
 * stride-th, W->x then holding the stream after the attention block). */
static int gather_stream(const struct work *W, enum site site, const struct acc *a,
                         struct search *S)
{
    const int64_t d = W->d, T = W->T;
    if (site == SITE_QKV) {
        int64_t cap = W->cal->awq_tokens / T < W->n_seq ? W->cal->awq_tokens / T : W->n_seq;
        cap = cap > 0 ? cap : 1;
        S->n = cap * T;
        if (!(S->xr = malloc((size_t)(S->n * d) * sizeof *S->xr)))
            return qb_err(QB_ENOMEM, "out of memory for the awq search");
        for (int64_t j = 0; j < cap; j++) /* sequence j * (n_seq / cap) */
            memcpy(S->xr + j * T * d, W->x + j * (W->n_seq / cap) * T * d,
                   (size_t)(T * d) * sizeof *S->xr);
        return 0;
    }
    S->n = a->n_keep;
    if (!(S->xr = malloc((size_t)(S->n * d) * sizeof *S->xr)))
        return qb_err(QB_ENOMEM, "out of memory for the awq search");
    for (int64_t j = 0; j < S->n; j++)
        memcpy(S->xr + j * d, W->x + j * a->stride * d, (size_t)d * sizeof *S->xr);
    return 0;
}

/* Sets up S for site: the rows scored and their weights, the f32 reference (the rows'
 * outputs on a's sampled inputs, or the block's output), buffers. */
static int search_init(const struct work *W, enum site site, const struct acc *a, struct search *S)
{
    const int64_t k = a->k;
    int64_t most = 0;
    const int attn = attn_loss(W, site);
    int rc = 0;
    memset(S, 0, sizeof *S);
    S->n_lin = site_lins[site].n;
    S->k = k;
    S->block = mlp_loss(W, site) || attn;
    S->x = a->sample;
    S->n = a->n_keep;
    if (S->block && (rc = gather_stream(W, site, a, S)) < 0)
        return rc;
    if (attn) { /* whole kv heads, as many as the weights allow, at least one */
        const int64_t group = W->c->n_heads / W->c->n_kv_heads;
        const int64_t per = (group + 2) * W->hd * k;
        S->nkv =
            W->cal->awq_search_weights > 0 ? W->cal->awq_search_weights / per : W->c->n_kv_heads;
        S->nkv = S->nkv < 1 ? 1 : S->nkv > W->c->n_kv_heads ? W->c->n_kv_heads : S->nkv;
    }
    for (int nl = 0; nl < S->n_lin; nl++) {
        const int i = site_lins[site].lin[nl];
        int64_t ns;
        if (attn)
            ns = (i == QB_LIN_Q ? W->c->n_heads / W->c->n_kv_heads : 1) * S->nkv * W->hd;
        else /* gate and up have as many rows: the same hidden units */
            ns = search_rows(W->cal, W->rows[i], k);
        S->ns[nl] = ns;
        most = ns > most ? ns : most;
        if (!(S->row[nl] = malloc((size_t)ns * sizeof *S->row[nl])))
            goto oom;
        for (int64_t r = 0; r < ns; r++) {
            if (attn) { /* kv head hk and, for q, the query heads reading it */
                const int64_t per = ns / S->nkv, hk = (r / per) * W->c->n_kv_heads / S->nkv;
                S->row[nl][r] = hk * per + r % per;
            } else {
                S->row[nl][r] = search_row(r, ns, W->rows[i]);
            }
        }
    }
    for (int nl = 0; nl < S->n_lin && rc == 0; nl++) {
        const int i = site_lins[site].lin[nl];
        const int64_t ns = S->ns[nl];
        const float *bias = !attn ? NULL : i == QB_LIN_Q ? W->bq : i == QB_LIN_K ? W->bk : W->bv;
        struct qb_qtensor wf;
        if (!(S->w[nl] = malloc((size_t)(ns * k) * sizeof *S->w[nl])) ||
            (!S->block && (!(S->ref[nl] = malloc((size_t)(S->n * ns) * sizeof *S->ref[nl])) ||
                           !(S->yq[nl] = malloc((size_t)(S->n * ns) * sizeof *S->yq[nl])))) ||
            (bias && !(S->b[nl] = malloc((size_t)ns * sizeof *S->b[nl]))))
            goto oom;
        for (int64_t r = 0; r < ns; r++) {
            memcpy(S->w[nl] + r * k, W->w[i] + S->row[nl][r] * k, (size_t)k * sizeof *S->w[nl]);
            if (bias)
                S->b[nl][r] = bias[S->row[nl][r]];
        }
        if (!S->block) {
            qb_qtensor_wrap_f32(S->w[nl], ns, k, &wf);
            rc = qb_qmatmul(S->ref[nl], S->x, S->n, &wf, QB_ACT_F32);
        }
    }
    if (rc == 0 && S->block) {
        const int out = site == SITE_GU ? QB_LIN_DOWN : QB_LIN_O;
        const int64_t ns = S->ns[0], d = W->d, cols = W->cols[out];
        struct qb_qweight wf[3] = {{.act = QB_ACT_F32}, {.act = QB_ACT_F32}, {.act = QB_ACT_F32}};
        if (!(S->out_w = malloc((size_t)(d * ns) * sizeof *S->out_w)) ||
            !(S->ref_out = malloc((size_t)(S->n * d) * sizeof *S->ref_out)) ||
            !(S->yq_out = malloc((size_t)(S->n * d) * sizeof *S->yq_out)) ||
            !(S->norm = malloc((size_t)k * sizeof *S->norm)))
            goto oom;
        for (int64_t o = 0; o < d; o++)
            for (int64_t r = 0; r < ns; r++)
                S->out_w[o * ns + r] = W->w[out][o * cols + S->row[0][r]];
        for (int nl = 0; nl < S->n_lin; nl++)
            qb_qtensor_wrap_f32(S->w[nl], S->ns[nl], k, &wf[nl].t);
        rc = block_run(W, site, S, (const struct qb_qweight *const[3]){&wf[0], &wf[1], &wf[2]},
                       site == SITE_GU ? W->ffn_norm : W->attn_norm, S->ref_out);
    }
    if (rc == 0 && ((!S->block && !(S->xs = malloc((size_t)(S->n * k) * sizeof *S->xs))) ||
                    !(S->ws = malloc((size_t)(most * k) * sizeof *S->ws))))
        goto oom;
    return rc;
oom:
    return qb_err(QB_ENOMEM, "out of memory for the awq search");
}

/* Squared distance between the f32 outputs of the rows scored (or of the block) and those
 * of the same rows quantized with scales s (k), on the sampled inputs; cw (k) and hs (k, k)
 * get the clip weights of the scaled input. */
static int search_error(const struct work *W, enum site site, const struct acc *a, const float *s,
                        struct search *S, float *cw, double *hs, double *err)
{
    const int64_t k = S->k, n = S->n;
    struct qb_qweight q[3];
    int rc = 0;
    memset(q, 0, sizeof q);
    scaled_moments(a, s, cw, hs);
    *err = 0;
    for (int64_t t = 0; !S->block && t < n; t++)
        for (int64_t j = 0; j < k; j++)
            S->xs[t * k + j] = S->x[t * k + j] / s[j];
    for (int nl = 0; nl < S->n_lin && rc == 0; nl++) {
        const int64_t ns = S->ns[nl];
        for (int64_t r = 0; r < ns; r++)
            for (int64_t j = 0; j < k; j++)
                S->ws[r * k + j] = S->w[nl][r * k + j] * s[j];
        if ((rc = quant_awq(W, site_lins[site].lin[nl], S->ws, ns, cw, hs, "awq search", &q[nl])) <
            0)
            break;
        if (S->block) /* all the block's rows are needed at once */
            continue;
        rc = qb_qmatmul(S->yq[nl], S->xs, n, &q[nl].t, q[nl].act);
        for (int64_t e = 0; rc == 0 && e < n * ns; e++) {
            double dlt = (double)S->ref[nl][e] - S->yq[nl][e];
            *err += dlt * dlt;
        }
    }
    if (rc == 0 && S->block) {
        const float *g = site == SITE_GU ? W->ffn_norm : W->attn_norm;
        for (int64_t j = 0; j < k; j++) /* as fold() will divide the norm */
            S->norm[j] = g[j] / s[j];
        rc = block_run(W, site, S, (const struct qb_qweight *const[3]){&q[0], &q[1], &q[2]},
                       S->norm, S->yq_out);
        for (int64_t e = 0; rc == 0 && e < n * W->d; e++) {
            double dlt = (double)S->ref_out[e] - S->yq_out[e];
            *err += dlt * dlt;
        }
    }
    for (int nl = 0; nl < 3; nl++)
        qb_qtensor_release(&q[nl].t);
    return rc;
}

/* One line of cal->awq_trace, if set: what the scales had to work with (the spread of the
 * mean |x| per input, m (k)) and what the search won (best_err at alpha best_g / grid
 * against err0 at alpha 0). */
static void awq_trace(const struct work *W, const char *what, int64_t k, const float *m,
                      double err0, int best_g, double best_err)
{
    float mx = 0, mn = FLT_MAX;
    if (!W->cal->awq_trace)
        return;
    for (int64_t j = 0; j < k; j++) {
        mx = m[j] > mx ? m[j] : mx;
        mn = m[j] < mn ? m[j] : mn;
    }
    fprintf(W->cal->awq_trace,
            "awq layer %lld %-8s mean|x| max/min %7.1f  output error: alpha 0 %.4g, alpha %.2f "
            "%.4g (%+.1f%%)\n",
            (long long)W->l, what, mn > 0 ? mx / mn : INFINITY, err0,
            (double)best_g / W->cal->awq_grid, best_err,
            err0 > 0 ? 100.0 * (best_err - err0) / err0 : 0.0);
}

static int awq_site(struct work *W, enum site site, const struct acc *a)
{
    const int64_t k = a->k;
    float *m = NULL, *s = NULL, *best = NULL, *cw = NULL, *wm = NULL;
    double *hs = NULL;
    struct search S = {0};
    int rc = 0;

    if (!(m = malloc((size_t)k * sizeof *m)) || !(s = malloc((size_t)k * sizeof *s)) ||
        !(best = malloc((size_t)k * sizeof *best)) || !(cw = malloc((size_t)k * sizeof *cw)) ||
        !(hs = malloc((size_t)(k * k) * sizeof *hs)))
        goto oom;
    for (int64_t j = 0; j < k; j++)
        m[j] = (float)(a->abs_sum[j] / (double)(a->n_tok > 0 ? a->n_tok : 1));
    if (W->cal->awq_duo) {
        /* mean over the rows of |w| relative to its group's max, per input channel */
        int64_t n_rows = 0;
        if (!(wm = calloc((size_t)k, sizeof *wm)))
            goto oom;
        for (int nl = 0; nl < site_lins[site].n; nl++) {
            const int i = site_lins[site].lin[nl];
            const int64_t g = base_of(W, i)->group > 0 ? base_of(W, i)->group : k;
            for (int64_t r = 0; r < W->rows[i]; r++, n_rows++)
                for (int64_t j0 = 0; j0 < k; j0 += g) {
                    const float *wr = W->w[i] + r * k;
                    float mx = 0;
                    for (int64_t j = j0; j < j0 + g && j < k; j++)
                        mx = fabsf(wr[j]) > mx ? fabsf(wr[j]) : mx;
                    for (int64_t j = j0; mx > 0 && j < j0 + g && j < k; j++)
                        wm[j] += fabsf(wr[j]) / mx;
                }
        }
        for (int64_t j = 0; j < k; j++)
            wm[j] /= (float)n_rows;
    }
    if (site == SITE_O) { /* one statistic per v channel: the mean over the heads reading it */
        const int64_t group = W->c->n_heads / W->c->n_kv_heads;
        float *mv = calloc((size_t)(2 * W->kvd), sizeof *mv);
        if (!mv)
            goto oom;
        for (int64_t j = 0; j < k; j++) {
            mv[o_to_v(W, j)] += m[j] / (float)group;
            if (wm)
                mv[W->kvd + o_to_v(W, j)] += wm[j] / (float)group;
        }
        for (int64_t j = 0; j < k; j++) {
            m[j] = mv[o_to_v(W, j)];
            if (wm)
                wm[j] = mv[W->kvd + o_to_v(W, j)];
        }
        free(mv);
    }
    if (W->cal->fold_only || W->cal->awq_alpha >= 0) {
        awq_scales(k, m, wm, W->cal->awq_alpha >= 0 ? W->cal->awq_alpha : 0.5f, best);
    } else {
        double best_err = INFINITY, err0 = 0;
        int best_g = 0;
        if ((rc = search_init(W, site, a, &S)) < 0)
            goto out;
        for (int g = 0; g < W->cal->awq_grid; g++) {
            double e;
            awq_scales(k, m, wm, (float)g / (float)W->cal->awq_grid, s);
            if ((rc = search_error(W, site, a, s, &S, cw, hs, &e)) < 0)
                goto out;
            if (g == 0)
                err0 = e;
            if (e < best_err) { /* alpha 0 (plain RTN) first: only a strict gain moves off it */
                best_err = e;
                best_g = g;
                memcpy(best, s, (size_t)k * sizeof *s);
            }
        }
        awq_trace(W, site_name[site], k, m, err0, best_g, best_err);
    }
    fold(W, site, best);
    /* the clip weights of the final quantization: the scaled input's mean square */
    scaled_moments(a, best, cw, hs);
    free(W->awq_cw[site]);
    free(W->awq_h[site]);
    W->awq_cw[site] = cw;
    W->awq_h[site] = hs;
    cw = NULL;
    hs = NULL;
    goto out;
oom:
    rc = qb_err(QB_ENOMEM, "out of memory for the awq search");
out:
    free(cw);
    free(hs);
    free(wm);
    free(m);
    free(s);
    free(best);
    search_free(&S);
    return rc;
}

static int smooth_site(struct work *W, enum site site, const struct acc *a)
{
    const int64_t k = a->k;
    const float alpha = W->cal->smooth_alpha;
    float *s = malloc((size_t)k * sizeof *s);
    if (!s)
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t j = 0; j < k; j++) {
        float wmax = 0;
        for (int nl = 0; nl < site_lins[site].n; nl++) {
            int i = site_lins[site].lin[nl];
            for (int64_t r = 0; r < W->rows[i]; r++) {
                float v = fabsf(W->w[i][r * k + j]);
                wmax = v > wmax ? v : wmax;
            }
        }
        if (a->abs_max[j] > 0 && wmax > 0) {
            s[j] = powf(a->abs_max[j], alpha) / powf(wmax, 1.0f - alpha);
            s[j] = s[j] > 1e-5f ? s[j] : 1e-5f;
        } else {
            s[j] = 1;
        }
    }
    fold(W, site, s);
    free(s);
    return 0;
}

/* One site: statistics gathered in a; quantize (GPTQ, SmoothQuant) or fold (AWQ). */
static int do_site(struct work *W, enum site site, struct acc *a)
{
    int rc = 0;
    switch (W->method) {
    case QB_METHOD_GPTQ: {
        const int64_t k = a->k;
        const double sc = 2.0 / (double)(a->n_tok > 0 ? a->n_tok : 1);
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j <= i; j++)
                a->h[i * k + j] = a->h[j * k + i] = a->h[i * k + j] * sc;
        for (int n = 0; n < site_lins[site].n && rc == 0; n++)
            rc = finish(W, site_lins[site].lin[n], a->h);
        return rc;
    }
    case QB_METHOD_AWQ: return awq_site(W, site, a);
    case QB_METHOD_SMOOTH:
        if ((rc = smooth_site(W, site, a)) < 0)
            return rc;
        for (int n = 0; n < site_lins[site].n && rc == 0; n++)
            rc = finish(W, site_lins[site].lin[n], NULL);
        return rc;
    default: return qb_err(QB_EINVAL, "calibration: unknown method %d", (int)W->method);
    }
}

/* Observe one site over every sequence, then handle it. */
static int site_pass(struct work *W, enum pass p, enum site site, int64_t k)
{
    struct acc a;
    int rc;
    if ((rc = acc_init(W, &a, k, attn_loss(W, site))) < 0)
        return rc;
    if ((rc = run_pass(W, p, &a)) == 0)
        rc = do_site(W, site, &a);
    acc_free(&a);
    return rc;
}

/* GPTQ of the output head on the final normed stream (W.x after the last layer). */
static int gptq_head(struct work *W)
{
    struct qb_qmodel *qm = W->qm;
    const struct qb_qbase *b = qb_qspec_for(&qm->spec, QB_TGT_OUTPUT);
    const int64_t d = W->d, vocab = W->c->vocab_size, kp = qb_qbase_padded_cols(b, d);
    struct qb_gptq_opts o = {W->cal->gptq_damp, W->cal->gptq_act_order, W->cal->gptq_clip,
                             W->cal->gptq_clip_weighted};
    struct qb_qweight q = {0};
    struct acc a;
    float *wp = NULL;
    double *hp = NULL;
    int rc;
    if ((rc = acc_init(W, &a, d, 0)) < 0)
        return rc;
    if ((rc = run_pass(W, P_HEAD, &a)) < 0)
        goto out;
    if (!(wp = calloc((size_t)(vocab * kp), sizeof *wp)) ||
        !(hp = calloc((size_t)(kp * kp), sizeof *hp))) {
        rc = qb_err(QB_ENOMEM, "output head: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j <= i; j++)
            hp[i * kp + j] = hp[j * kp + i] = a.h[i * d + j] * 2.0 / (double)a.n_tok;
    for (int64_t r = 0; r < vocab; r++)
        memcpy(wp + r * kp, W->m->output + r * d, (size_t)d * sizeof *wp);
    if ((rc = qb_gptq_quantize(wp, vocab, kp, hp, b->fmt, b->group, b->asym, &o, &q.t)) < 0) {
        rc = qb_err_prefix(rc, "output head");
        goto out;
    }
    q.act = b->act;
    q.t.in_cols = kp != d ? d : 0;
    /* a head tied to the embeddings is untied: the embeddings keep their RTN rows (looking up
     * the GPTQ rows instead raised llama2xs's w4g32 KL from 0.056 to 0.087) */
    if (qm->embed_shares_output)
        qm->embed_shares_output = 0;
    else
        qb_qtensor_release(&qm->output.t);
    qm->output = q;
out:
    acc_free(&a);
    free(wp);
    free(hp);
    return rc;
}

/* AWQ of the output head on the final normed stream: scales folded into a copy of the
 * output norm (qm->out_norm, in own_vecs) and of the head, searched as for the layers on at
 * most 512 sampled positions, then the weighted clipping search. */
static int awq_head(struct work *W, float *out_norm)
{
    struct qb_qmodel *qm = W->qm;
    const struct qb_qbase *b = qb_qspec_for(&qm->spec, QB_TGT_OUTPUT);
    const int64_t d = W->d, vocab = W->c->vocab_size;
    const int64_t ns = search_rows(W->cal, vocab, d); /* the rows the alpha search scores */
    struct qb_qweight q = {0};
    struct qb_qtensor wf;
    struct acc a;
    float *m = NULL, *s = NULL, *best = NULL, *cw = NULL, *wh = NULL, *ws = NULL, *xs = NULL;
    float *ref = NULL, *yq = NULL;
    double *hs = NULL;
    double best_err = INFINITY, err0 = 0;
    int best_g = 0;
    int64_t n;
    int rc;
    if ((rc = acc_init(W, &a, d, 0)) < 0)
        return rc;
    if ((rc = run_pass(W, P_HEAD, &a)) < 0)
        goto out;
    n = a.n_keep < 512 ? a.n_keep : 512;
    if (!(m = malloc((size_t)d * sizeof *m)) || !(s = malloc((size_t)d * sizeof *s)) ||
        !(best = malloc((size_t)d * sizeof *best)) || !(cw = malloc((size_t)d * sizeof *cw)) ||
        !(wh = malloc((size_t)(ns * d) * sizeof *wh)) ||
        !(ws = malloc((size_t)(vocab * d) * sizeof *ws)) ||
        !(xs = malloc((size_t)(n * d) * sizeof *xs)) ||
        !(ref = malloc((size_t)(n * ns) * sizeof *ref)) ||
        !(yq = malloc((size_t)(n * ns) * sizeof *yq)) ||
        !(hs = malloc((size_t)(d * d) * sizeof *hs))) {
        rc = qb_err(QB_ENOMEM, "output head: out of memory for the awq search");
        goto out;
    }
    for (int64_t r = 0; r < ns; r++)
        memcpy(wh + r * d, W->m->output + search_row(r, ns, vocab) * d, (size_t)d * sizeof *wh);
    for (int64_t j = 0; j < d; j++) {
        m[j] = (float)(a.abs_sum[j] / (double)a.n_tok);
        best[j] = 1;
    }
    qb_qtensor_wrap_f32(wh, ns, d, &wf);
    if ((rc = qb_qmatmul(ref, a.sample, n, &wf, QB_ACT_F32)) < 0)
        goto out;
    for (int g = 0; g < W->cal->awq_grid; g++) {
        double e = 0;
        awq_scales(d, m, NULL, (float)g / (float)W->cal->awq_grid, s);
        scaled_moments(&a, s, cw, hs);
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < d; j++)
                xs[t * d + j] = a.sample[t * d + j] / s[j];
        for (int64_t r = 0; r < ns; r++)
            for (int64_t j = 0; j < d; j++)
                ws[r * d + j] = wh[r * d + j] * s[j];
        if ((rc = weighted(ws, ns, d, b, cw, hs, "output head", &q)) < 0)
            goto out;
        rc = qb_qmatmul(yq, xs, n, &q.t, QB_ACT_F32);
        qb_qtensor_release(&q.t);
        if (rc < 0)
            goto out;
        for (int64_t i = 0; i < n * ns; i++)
            e += ((double)ref[i] - yq[i]) * ((double)ref[i] - yq[i]);
        if (g == 0)
            err0 = e;
        if (e < best_err) {
            best_err = e;
            best_g = g;
            memcpy(best, s, (size_t)d * sizeof *s);
        }
    }
    awq_trace(W, "head", d, m, err0, best_g, best_err);
    for (int64_t j = 0; j < d; j++)
        out_norm[j] = W->m->out_norm[j] / best[j];
    scaled_moments(&a, best, cw, hs);
    for (int64_t r = 0; r < vocab; r++)
        for (int64_t j = 0; j < d; j++)
            ws[r * d + j] = W->m->output[r * d + j] * best[j];
    if ((rc = weighted(ws, vocab, d, b, cw, hs, "output head", &q)) < 0)
        goto out;
    if (qm->embed_shares_output) /* untied: the embeddings keep their own rows */
        qm->embed_shares_output = 0;
    else
        qb_qtensor_release(&qm->output.t);
    qm->output = q;
    qm->out_norm = out_norm;
out:
    acc_free(&a);
    free(m);
    free(s);
    free(best);
    free(cw);
    free(wh);
    free(ws);
    free(xs);
    free(ref);
    free(yq);
    free(hs);
    return rc;
}

/* ---- driver ---------------------------------------------------------------------------- */

static void work_release(struct work *W)
{
    free(W->x);
    for (int i = 0; W->eng && i < W->n_threads; i++)
        qb_engine_free(W->eng[i]);
    free(W->eng);
    free(W->batch);
    free(W->xt);
    for (int i = 0; i < QB_LIN_COUNT; i++) {
        if (W->final[i])
            qb_qtensor_release(&W->cur[i].t);
        free(W->w[i]);
    }
    for (int i = 0; i < 4; i++) {
        free(W->awq_cw[i]);
        free(W->awq_h[i]);
    }
}

/* W's buffers: the residual streams, a layers-only engine of T tokens per thread (one layer's
 * KV cache each), the observed inputs, the working copies of a layer, and the qmodel's own
 * vectors (vec_stride per layer, then the output norm). */
static int work_alloc(struct work *W, int64_t vec_stride)
{
    const struct qb_engine_opts eo = {.max_ctx = W->T, .max_batch = W->T, .layers_only = 1};
    const int64_t kmax = max3(W->d, W->qd, W->hid);
    struct qb_qmodel *qm = W->qm;
    int rc = 0, ok;
    W->x = malloc((size_t)(W->n_seq * W->T * W->d) * sizeof(float));
    W->eng = calloc((size_t)W->n_threads, sizeof *W->eng);
    W->batch = malloc((size_t)(W->n_threads * W->T * kmax) * sizeof(float));
    W->xt = malloc((size_t)(W->n_threads * W->T * kmax) * sizeof(float));
    qm->own_vecs = malloc((size_t)(W->c->n_layers * vec_stride + W->d) * sizeof(float));
    ok = W->x && W->eng && W->batch && W->xt && qm->own_vecs;
    for (int i = 0; i < QB_LIN_COUNT && ok; i++)
        ok = (W->w[i] = malloc((size_t)(W->rows[i] * W->cols[i]) * sizeof(float))) != NULL;
    if (!ok)
        return qb_err(QB_ENOMEM, "out of memory for calibration on %lld sequences of %lld tokens",
                      (long long)W->n_seq, (long long)W->T);
    for (int i = 0; i < W->n_threads && rc == 0; i++)
        rc = qb_engine_new_opts(qm, &eo, &W->eng[i]);
    return rc;
}

/* The token embeddings for GPTQ and AWQ. Looked up, not multiplied, they have no inputs to
 * calibrate on; what the rounding r of a row e costs is first seen by layer 0's q, k and v,
 * which read g * e / rms(e) (g the layer's attention norm weight). So each row is rounded by
 * the clipping search and refit scored with H = diag(g) (Wq^T Wq + Wk^T Wk + Wv^T Wv) diag(g):
 * r^T H r is the squared error of those outputs, up to the row's own 1 / rms(e)^2 and to
 * first order (the norm's removal of the part of r along e is left out). H needs only the
 * weights. Replaces the RTN embeddings; a tied head is untied later (head quantized too). */
static int embed_rows(struct work *W)
{
    const struct qb_layer *L = &W->m->layers[0];
    const float *lin[3] = {L->wq, L->wk, L->wv};
    const int64_t d = W->d, nr = W->qd + 2 * W->kvd, vocab = W->c->vocab_size;
    struct qb_qbase b = *qb_qspec_for(&W->qm->spec, QB_TGT_EMBED);
    struct qb_qweight q;
    double *h = malloc((size_t)(d * d) * sizeof *h);
    float *wt = malloc((size_t)(d * nr) * sizeof *wt), *cw = malloc((size_t)d * sizeof *cw);
    int rc = 0;
    if (!h || !wt || !cw) {
        rc = qb_err(QB_ENOMEM, "token embeddings: out of memory");
        goto out;
    }
    /* wt (d, nr): the columns of q, k and v stacked, times g, one input per row */
    for (int64_t n = 0, r0 = 0; n < 3; r0 += W->rows[n], n++)
        for (int64_t r = 0; r < W->rows[n]; r++)
            for (int64_t i = 0; i < d; i++)
                wt[i * nr + r0 + r] = lin[n][r * d + i] * L->attn_norm[i];
#pragma omp parallel for schedule(dynamic, 8) if (d * d * nr >= (1 << 22))
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t r = 0; r < nr; r++)
                s += (double)wt[i * nr + r] * wt[j * nr + r];
            h[i * d + j] = h[j * d + i] = s;
        }
    for (int64_t i = 0; i < d; i++)
        cw[i] = (float)h[i * d + i];
    b.act = QB_ACT_F32; /* looked up: the activation mode is irrelevant */
    if ((rc = weighted(W->m->tok_embd, vocab, d, &b, cw, h, "token embeddings", &q)) < 0)
        goto out;
    if (W->qm->embed_shares_output) /* the head keeps the RTN tensor until it is quantized */
        W->qm->embed_shares_output = 0;
    else
        qb_qtensor_release(&W->qm->embed.t);
    W->qm->embed = q;
out:
    free(h);
    free(wt);
    free(cw);
    return rc;
}

/* Copies layer l's weights and vectors into the working copies. */
static void load_layer(struct work *W, int64_t l, float *vec)
{
    const struct qb_layer *L = &W->m->layers[l];
    const float *src[QB_LIN_COUNT] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
    W->l = l;
    for (int i = 0; i < QB_LIN_COUNT; i++) {
        memcpy(W->w[i], src[i], (size_t)(W->rows[i] * W->cols[i]) * sizeof(float));
        qb_qtensor_wrap_f32(W->w[i], W->rows[i], W->cols[i], &W->cur[i].t);
        W->cur[i].act = QB_ACT_F32;
        W->final[i] = 0;
    }
    W->attn_norm = vec;
    W->ffn_norm = vec + W->d;
    memcpy(W->attn_norm, L->attn_norm, (size_t)W->d * sizeof(float));
    memcpy(W->ffn_norm, L->ffn_norm, (size_t)W->d * sizeof(float));
    W->bq = W->bk = W->bv = NULL;
    if (W->c->has_qkv_bias) {
        W->bq = vec + 2 * W->d;
        W->bk = W->bq + W->qd;
        W->bv = W->bk + W->kvd;
        memcpy(W->bq, L->bq, (size_t)W->qd * sizeof(float));
        memcpy(W->bk, L->bk, (size_t)W->kvd * sizeof(float));
        memcpy(W->bv, L->bv, (size_t)W->kvd * sizeof(float));
    }
}

static int calib_fill(const void *ctx, struct qb_qmodel *qm)
{
    const struct qb_calib *cal = ctx;
    struct work W = {0};
    const struct qb_model *m = qm->m;
    const struct qb_config *c = &m->cfg;
    int64_t vec_stride;
    int rc = 0;

    if (!cal || !cal->tokens || cal->n_seq <= 0 || cal->seq_len <= 0)
        return qb_err(QB_EINVAL, "calibration: no calibration tokens");
    if (cal->seq_len > c->max_seq_len)
        return qb_err(QB_ERANGE,
                      "calibration '%s': sequences of %lld tokens exceed the model's "
                      "context of %lld",
                      cal->name, (long long)cal->seq_len, (long long)c->max_seq_len);
    for (int64_t i = 0; i < cal->n_seq * cal->seq_len; i++)
        if (cal->tokens[i] < 0 || cal->tokens[i] >= c->vocab_size)
            return qb_err(QB_EINVAL, "calibration '%s': token id %d is outside the vocabulary",
                          cal->name, (int)cal->tokens[i]);
    if (cal->awq_grid < 1 || cal->awq_tokens < 1 ||
        !(cal->smooth_alpha >= 0 && cal->smooth_alpha <= 1))
        return qb_err(QB_EINVAL,
                      "calibration: bad settings (awq grid %d, awq tokens %lld, "
                      "smooth alpha %g)",
                      cal->awq_grid, (long long)cal->awq_tokens, (double)cal->smooth_alpha);

    W.cal = cal;
    W.qm = qm;
    W.m = m;
    W.c = c;
    W.method = qm->spec.method;
    W.d = c->dim;
    W.hd = c->head_dim;
    W.qd = c->n_heads * c->head_dim;
    W.kvd = c->n_kv_heads * c->head_dim;
    W.hid = c->hidden_dim;
    W.T = cal->seq_len;
    W.n_seq = cal->n_seq;
    W.n_threads = omp_get_max_threads();
    {
        const int64_t rows[QB_LIN_COUNT] = {W.qd, W.kvd, W.kvd, W.d, W.hid, W.hid, W.d};
        const int64_t cols[QB_LIN_COUNT] = {W.d, W.d, W.d, W.qd, W.d, W.d, W.hid};
        memcpy(W.rows, rows, sizeof rows);
        memcpy(W.cols, cols, sizeof cols);
    }
    vec_stride = 2 * W.d + W.qd + 2 * W.kvd;
    const struct qb_qbase *bo = qb_qspec_for(&qm->spec, QB_TGT_OUTPUT);
    /* the head: GPTQ's (gptq_head), AWQ's (group formats); a tied head is untied */
    const int head =
        !cal->fold_only && ((W.method == QB_METHOD_GPTQ && cal->gptq_head && is_int(bo->fmt)) ||
                            (W.method == QB_METHOD_AWQ && cal->awq_head && is_group(bo->fmt)));
    if (W.n_threads > W.n_seq)
        W.n_threads = (int)W.n_seq;
    if (W.n_threads < 1)
        W.n_threads = 1;
    if ((rc = work_alloc(&W, vec_stride)) < 0)
        goto out;
    if ((W.method == QB_METHOD_GPTQ || W.method == QB_METHOD_AWQ) && !cal->fold_only &&
        is_group(qm->embed.t.fmt) && (!qm->embed_shares_output || head) &&
        (rc = embed_rows(&W)) < 0)
        goto out;
    /* the embeddings of every sequence, as the engine looks them up (quantized) */
    if ((rc = qb_engine_embed(W.eng[0], &qm->embed, cal->tokens, W.n_seq * W.T, W.x)) < 0) {
        rc = qb_err_prefix(rc, "calibration '%s'", cal->name);
        goto out;
    }

    for (int64_t l = 0; l < c->n_layers; l++) {
        float *vec = qm->own_vecs + l * vec_stride;
        load_layer(&W, l, vec);
        /* attention: q/k/v, then o */
        if ((rc = site_pass(&W, P_QKV, SITE_QKV, W.d)) < 0)
            goto out;
        qb_progress("calibrating", 4 * l + 1, 4 * c->n_layers);
        if (W.method != QB_METHOD_SMOOTH) {
            if ((rc = site_pass(&W, P_O, SITE_O, W.qd)) < 0)
                goto out;
        }
        for (int i = QB_LIN_Q; i <= QB_LIN_O; i++) /* what the method left to round */
            if (!W.final[i] && (rc = finish(&W, i, NULL)) < 0)
                goto out;
        /* the quantized attention block moves the stream on; then gate/up, then down */
        qb_progress("calibrating", 4 * l + 2, 4 * c->n_layers);
        if ((rc = site_pass(&W, P_ATTN_GU, SITE_GU, W.d)) < 0)
            goto out;
        qb_progress("calibrating", 4 * l + 3, 4 * c->n_layers);
        if (W.method != QB_METHOD_SMOOTH) {
            if ((rc = site_pass(&W, P_DOWN, SITE_DOWN, W.hid)) < 0)
                goto out;
        }
        for (int i = QB_LIN_GATE; i <= QB_LIN_DOWN; i++)
            if (!W.final[i] && (rc = finish(&W, i, NULL)) < 0)
                goto out;
        if ((l + 1 < c->n_layers || head) && (rc = run_pass(&W, P_FFN, NULL)) < 0)
            goto out;
        /* the layer is done: its matrices and vectors go to the qmodel */
        for (int i = 0; i < QB_LIN_COUNT; i++) {
            qm->lin[l * QB_LIN_COUNT + i] = W.cur[i];
            memset(&W.cur[i], 0, sizeof W.cur[i]);
            W.final[i] = 0;
        }
        qm->layer[l] = (struct qb_qlayer){W.attn_norm, W.ffn_norm, W.bq, W.bk, W.bv};
        qb_progress("calibrating", 4 * l + 4, 4 * c->n_layers);
    }
    if (head)
        rc = W.method == QB_METHOD_GPTQ ? gptq_head(&W)
                                        : awq_head(&W, qm->own_vecs + c->n_layers * vec_stride);
out:
    work_release(&W);
    return rc;
}

int qb_qmodel_new_calib(const struct qb_model *m, const struct qb_qspec *spec,
                        const struct qb_calib *calib, struct qb_qmodel **out)
{
    return qb_qmodel_new_with(m, spec, calib ? calib_fill : NULL, calib, out);
}
