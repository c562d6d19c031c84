/* engine: the one forward pass of a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3), with
 * a KV cache, batched prefill and one-token decode. Matches the Hugging Face LlamaForCausalLM
 * forward (RMSNorm, RoPE, grouped-query attention, SwiGLU) and llama2.c's run.c to float
 * rounding. The control flow is written once here; the math runs on a backend
 * (kernels/backend.h), the CPU's unless the options name another.
 *
 *     struct qb_engine *e;
 *     qb_engine_new(model, 0, &e);               // 0: the model's max_seq_len
 *     qb_engine_forward(e, prompt, n, NULL);      // prefill; last logits in qb_engine_logits(e)
 *     qb_engine_forward(e, &next, 1, NULL);       // decode one token
 *     float *all = malloc(n * vocab * 4);
 *     qb_engine_reset(e); qb_engine_forward(e, ids, n, all); // logits of every position (n, vocab)
 *     qb_engine_free(e);
 *
 * Whatever observes the model hooks into this pass instead of re-implementing it: a hook is
 * called at named sites of each layer (enum qb_site) with the activations there, and may stop
 * the pass. Calibration, which streams layer by layer over stored residual streams and swaps
 * the weights of the layer it quantizes between passes, runs one layer at a time from a
 * residual stream it holds, with weights it supplies per call:
 *
 *     struct qb_engine_opts o = {.max_ctx = T, .max_batch = T, .layers_only = 1};
 *     qb_engine_new_opts(qm, &o, &e);                       // one per thread
 *     qb_engine_embed(e, &qm->embed, tokens, T, x);          // x (T, dim): layer 0's input
 *     struct qb_engine_hook h = {see_qkv_input, &mine, QB_SITE_BIT(QB_SITE_QKV_IN), -1};
 *     qb_engine_set_hook(e, &h);                            // see_qkv_input returns 1: stop
 *     qb_engine_layer(e, l, &weights_of_l, QB_START_LAYER, x, 0, T);
 *
 * The engine borrows the model (and qmodel), which must outlive it. Threads come from OpenMP
 * (omp_set_num_threads). One engine serves one thread at a time. */
#ifndef QB_ENGINE_H
#define QB_ENGINE_H

#include "collector/model/qmodel.h"
#include "kernels/backend.h"

#include <stdint.h>

struct qb_model;
struct qb_engine;

/* Where a hook sees the pass, in the order a layer reaches them. Widths are per token. */
enum qb_site {
    QB_SITE_QKV_IN,    /* (n, dim) the attention-normed stream: the input of q, k and v */
    QB_SITE_O_IN,      /* (n, n_heads * head_dim) the attention output: the input of o */
    QB_SITE_O_OUT,     /* (n, dim) o's output: what the attention block adds to the stream */
    QB_SITE_MID,       /* (n, dim) the residual stream after the attention block */
    QB_SITE_GU_IN,     /* (n, dim) the ffn-normed stream: the input of gate and up */
    QB_SITE_DOWN_IN,   /* (n, hidden_dim) the SwiGLU product: the input of down */
    QB_SITE_DOWN_OUT,  /* (n, dim) down's output: what the MLP adds to the stream */
    QB_SITE_LAYER_OUT, /* (n, dim) the residual stream after the layer */
    QB_SITE_HEAD_IN,   /* (n, dim) the final normed stream, the output head's input; its
                          layer is n_layers */
    QB_SITE_COUNT
};
#define QB_SITE_BIT(site) (1u << (site))

/* What a hook is shown: rows for the tokens at positions pos .. pos+n-1. A pass longer than
 * the engine's batch reaches each site once per batch of at most max_batch tokens. */
struct qb_engine_obs {
    enum qb_site site;
    int64_t layer;
    int64_t pos, n;
    int64_t width;  /* floats per row: dim, n_heads * head_dim or hidden_dim (the weights') */
    const float *x; /* (n, width) host memory, valid during the call */
};

/* Returns 0 to go on, 1 to stop the pass at this site (for this batch of tokens), or a
 * negative QB_E* code to fail it (the code is returned by the engine call). */
typedef int (*qb_engine_hook_fn)(void *ctx, const struct qb_engine_obs *obs);

struct qb_engine_hook {
    qb_engine_hook_fn fn;
    void *ctx;
    unsigned sites; /* QB_SITE_BIT of each site fn is called at */
    int64_t layer;  /* only this layer's sites; -1: every layer's */
};

/* Returned (positive) by a pass that a hook stopped. */
#define QB_ENGINE_STOPPED 1

struct qb_engine_opts {
    int64_t max_ctx;           /* positions; 0 (or beyond the model's): the model's max_seq_len */
    int64_t max_batch;         /* tokens per pass through the layers (activation memory); 0: 256 */
    int layers_only;           /* 1: the engine takes no weights from the qmodel (which calibration
                                  is still filling) and holds one layer's KV cache: only
                                  qb_engine_embed/layer/head with weights from the caller */
    qb_backend_new_fn backend; /* NULL: the CPU backend (kernels/cpu/backend_cpu.h) */
    int device;                /* which device of that backend's kind (vulkan:N), 0 first */
};

/* An engine over the model's own f32 weights. */
int qb_engine_new(const struct qb_model *m, int64_t max_ctx, struct qb_engine **out);
/* An engine over one quantized config; qm (and its model) must outlive the engine. */
int qb_engine_new_q(const struct qb_qmodel *qm, int64_t max_ctx, struct qb_engine **out);
/* The same with options (o NULL: the defaults). The qmodel's weights are uploaded to the
 * backend once, here (not when layers_only). */
int qb_engine_new_opts(const struct qb_qmodel *qm, const struct qb_engine_opts *o,
                       struct qb_engine **out);
void qb_engine_free(struct qb_engine *e);

/* Forgets the KV cache: the next forward starts at position 0. */
void qb_engine_reset(struct qb_engine *e);
/* Drops cached positions >= pos (pos <= current position), e.g. to rescore from a shared prefix. */
int qb_engine_truncate(struct qb_engine *e, int64_t pos);
int64_t qb_engine_pos(const struct qb_engine *e);
int64_t qb_engine_max_ctx(const struct qb_engine *e);
/* The backend the engine runs on ("cpu"). */
const char *qb_engine_backend(const struct qb_engine *e);

/* What the engine's backend holds (weights, KV cache, scratch, peak); QB_EUNSUP where
 * the backend does not say. */
int qb_engine_mem(const struct qb_engine *e, struct qb_backend_mem *m);
/* The device the backend runs on, in words ("cpu" where the backend does not say). */
const char *qb_engine_device_name(const struct qb_engine *e);

/* Calls h->fn at h->sites from now on (a copy of *h is kept); NULL removes the hook. */
void qb_engine_set_hook(struct qb_engine *e, const struct qb_engine_hook *h);

/* Runs tokens[0..n) at positions pos..pos+n-1. When logits is non-NULL it receives the
 * logits of every one of the n positions, (n, vocab_size) row-major. QB_ERANGE when the
 * context would overflow, QB_EINVAL for a token id outside the vocabulary. When a hook stops
 * the pass it returns QB_ENGINE_STOPPED, the position stays where it was (the tokens count
 * as not run) and no logits are written; with a hook on QB_SITE_HEAD_IN every row is normed,
 * else only the rows whose logits are computed. */
int qb_engine_forward(struct qb_engine *e, const int32_t *tokens, int64_t n, float *logits);

/* Logits (vocab_size) of the last position processed. Borrowed; overwritten by the next
 * forward. */
const float *qb_engine_logits(const struct qb_engine *e);

/* ---- a pass from a residual stream the caller holds ----------------------------------- */

/* One layer's weights for qb_engine_layer, borrowed for the call (the CPU backend reads
 * them in place). Shapes come from the weights: n_heads = q rows / head_dim, n_kv_heads =
 * k rows / head_dim, hidden = gate rows; they may be below the model's (a subset of whole
 * kv heads with the query heads that read them, or of hidden units, with o's and down's
 * matching columns) but not above. A weight or vector the pass does not reach may be NULL. */
struct qb_engine_lw {
    const struct qb_qweight *lin[QB_LIN_COUNT]; /* q, k, v, o, gate, up, down */
    const float *attn_norm, *ffn_norm;          /* (dim) */
    const float *bq, *bk, *bv;                  /* (rows of q, k, v), or NULL: no bias */
};

/* Where qb_engine_layer starts in the layer. */
enum qb_engine_start {
    QB_START_LAYER, /* x is the stream entering the layer */
    QB_START_FFN,   /* x is the stream after the layer's attention block (QB_SITE_MID):
                       only the MLP half runs, and positions do not matter */
};

/* x (n, dim) = the token embeddings of tokens[0..n): rows of table (NULL: the engine's own),
 * exactly dim floats each. The input of layer 0. QB_EINVAL for an id outside the table. */
int qb_engine_embed(struct qb_engine *e, const struct qb_qweight *table, const int32_t *tokens,
                    int64_t n, float *x);

/* Runs layer l from `from` over x (n, dim), the residual stream of the tokens at positions
 * pos .. pos+n-1, with the weights w (NULL: the engine's own). The layer's KV cache receives
 * their keys and values; it must hold positions 0 .. pos-1 of the same sequence from earlier
 * calls (pos = 0: a new sequence). On return x is the stream where the pass ended: after the
 * layer, or where a hook stopped it (unchanged before QB_SITE_MID, after the attention block
 * from QB_SITE_MID on). Returns 0, QB_ENGINE_STOPPED when a hook stopped it, or a negative
 * code. This overwrites cached positions, so a token forward afterwards starts with
 * qb_engine_reset. */
int qb_engine_layer(struct qb_engine *e, int64_t l, const struct qb_engine_lw *w,
                    enum qb_engine_start from, float *x, int64_t pos, int64_t n);

/* The final norm of x (n, dim) (out_norm (dim), NULL: the engine's own), shown to a hook at
 * QB_SITE_HEAD_IN, then, when logits is non-NULL, the engine's output head: logits (n,
 * vocab). */
int qb_engine_head(struct qb_engine *e, const float *out_norm, const float *x, int64_t pos,
                   int64_t n, float *logits);

#endif
