/* backend: the one interface through which the engine (collector/engine/engine.c) drives the
 * math of a Llama-family forward pass -- embedding lookup, matmul by weight format, RMSNorm,
 * RoPE, attention over the KV cache, SwiGLU, residual and bias adds, logits -- so that a GPU
 * backend can be added in its own folder (kernels/vulkan/, kernels/cuda/) without touching
 * the engine's control flow. The CPU backend (kernels/cpu/backend_cpu.h) is the first
 * implementation; it runs the kernels of kernels/qmatmul.h and kernels/attend.h.
 *
 * A backend is a table of operations plus an opaque context:
 *
 *     struct qb_backend_shape sh = {.dim = 128, .hidden_dim = 384, .n_heads = 4,
 *                                   .n_kv_heads = 2, .head_dim = 32, .max_ctx = 512,
 *                                   .cache_layers = 4, .max_batch = 256,
 *                                   .rope_theta = 10000, .norm_eps = 1e-5f};
 *     struct qb_backend be;
 *     if ((rc = qb_backend_cpu_new(&sh, &be)) < 0) ...;
 *     const struct qb_backend_ops *B = be.ops;
 *
 *     struct qb_bweight *wq;                       // upload once: the backend owns it now
 *     B->weight_new(be.ctx, &qm->lin[QB_LIN_Q].t, qm->lin[QB_LIN_Q].act, &wq);
 *     struct qb_bbuf *x, *xb, *norm, *q;           // activations live on the backend
 *     B->buf_new(be.ctx, 256 * 128, &x);  ...
 *     B->write(be.ctx, norm, 0, attn_norm, 128);   // host -> backend
 *
 *     B->embed(be.ctx, embed, tokens, n, x);       // x (n, dim)
 *     B->rmsnorm(be.ctx, xb, x, norm, n, 128);     // xb (n, dim)
 *     B->matmul(be.ctx, q, xb, n, wq);             // q (n, n_heads * head_dim)
 *     B->rope(be.ctx, q, n, 4, pos);
 *     B->attention(be.ctx, layer, q, k, v, att, n, pos, 4, 2, 0);
 *     ...
 *     B->logits(be.ctx, host_logits, xb, n, head); // backend -> host (n, vocab)
 *     B->read(be.ctx, x, 0, host_x, n * 128);      // what a hook asks to observe
 *
 *     B->weight_free(be.ctx, wq);  B->buf_free(be.ctx, x);  ...
 *     B->free(be.ctx);
 *
 * Ownership. The backend owns its buffers (activations, the KV cache, scratch) and the
 * weights it was given: after weight_new the caller's tensor is no longer needed by a device
 * backend, which copies it. The CPU backend "uploads" by borrowing (its memory is the host's):
 * there the tensor must outlive the weight handle, which every caller arranges (a qmodel
 * outlives its engines; calibration frees a weight handle before the tensor behind it). Host
 * memory is read only by write, embed's token ids, and read/logits, which write host memory.
 *
 * Units and shapes. Every size is a count of floats (int64_t), never bytes. A buffer holds
 * rows of tokens: (n, width) row-major, row t being the token at position pos + t; an op on
 * n tokens uses rows 0 .. n-1 of each buffer it is given. Widths: dim (the residual stream),
 * n_heads * head_dim (queries, attention output), n_kv_heads * head_dim (keys, values),
 * hidden_dim (the MLP), and a weight's rows (its output) and in_cols (its input). Head
 * counts may be below the shape's (a caller scoring a subset of heads), never above.
 *
 * Ordering. Ops run in the order they are called; a device backend may queue them, but read
 * and logits return only once the data is on the host. Every op returns 0 or a negative QB_E*
 * code with the thread-local message set (kernels/base/err.h); after a failure the buffers'
 * contents are undefined but the backend stays usable.
 *
 * Threads: one context serves one thread at a time; ops may use OpenMP inside (the CPU
 * backend splits matmul rows and attention heads). Several contexts may run at once. */
#ifndef QB_BACKEND_H
#define QB_BACKEND_H

#include "kernels/qtensor.h"

#include <stdint.h>

/* How RoPE pairs the dimensions of a head (matches enum qb_rope_style, collector/model). */
enum qb_backend_rope {
    QB_BROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): GGUF llama, llama2.c */
    QB_BROPE_HALF = 1,        /* pairs (i, i + head_dim/2): "rotate half", Hugging Face */
};

/* What a backend is created for; fixed for its lifetime. */
struct qb_backend_shape {
    int64_t dim, hidden_dim; /* residual stream, MLP */
    int64_t n_heads, n_kv_heads, head_dim;
    int64_t max_ctx;      /* positions each layer's KV cache holds */
    int64_t cache_layers; /* KV caches (one per layer; 1 for a layer-at-a-time caller) */
    int64_t max_batch;    /* most tokens per op (attention scratch is sized by it) */
    float rope_theta;     /* inv_freq[i] = theta^(-2i / head_dim), in float */
    /* A scaled RoPE (collector/model/rope.c): the inverse frequencies (head_dim / 2),
     * copied at creation, used instead of rope_theta's; NULL: rope_theta's. cos and sin are
     * multiplied by rope_attn_factor (YaRN's attention factor; 0 counts as 1). */
    const float *rope_inv_freq;
    float rope_attn_factor;
    enum qb_backend_rope rope_style;
    float norm_eps; /* RMSNorm's epsilon */
    int device;     /* which device of the backend's kind, 0 first (vulkan:N); the CPU ignores it */
};

/* What a backend holds in its own memory, in bytes (a device backend: device memory). */
struct qb_backend_mem {
    int64_t weights;  /* weight matrices and vectors uploaded (0 where borrowed from the host) */
    int64_t kv_cache; /* every layer's keys and values */
    int64_t scratch;  /* activation buffers and staging */
    int64_t peak;     /* most of weights + kv_cache + scratch held at once so far */
    int64_t capacity; /* memory the device reports (its largest device-local heap); 0: host */
};

struct qb_bbuf;    /* n floats of activations, owned by the backend */
struct qb_bweight; /* a weight matrix (kernels/qtensor.h layout), owned by the backend */

struct qb_backend_ops {
    const char *name; /* "cpu" */
    /* Releases the context and everything it still owns (buffers, weights, KV cache). */
    void (*free)(void *ctx);

    /* -- memory -------------------------------------------------------------------------- */
    /* A buffer of n floats, contents undefined. */
    int (*buf_new)(void *ctx, int64_t n, struct qb_bbuf **out);
    void (*buf_free)(void *ctx, struct qb_bbuf *b); /* NULL: no-op */
    /* dst[off .. off+n) = src (host, n floats). */
    int (*write)(void *ctx, struct qb_bbuf *dst, int64_t off, const float *src, int64_t n);
    /* dst (host, n floats) = src[off .. off+n). */
    int (*read)(void *ctx, const struct qb_bbuf *src, int64_t off, float *dst, int64_t n);
    /* dst[doff .. doff+n) = src[soff .. soff+n); the ranges do not overlap. */
    int (*copy)(void *ctx, struct qb_bbuf *dst, int64_t doff, const struct qb_bbuf *src,
                int64_t soff, int64_t n);
    /* Takes a weight matrix (any format and activation mode qb_qmatmul_supported accepts; an
     * embedding table needs only a format qb_dequantize_row reads). See Ownership above. */
    int (*weight_new)(void *ctx, const struct qb_qtensor *t, enum qb_act act,
                      struct qb_bweight **out);
    void (*weight_free)(void *ctx, struct qb_bweight *w); /* NULL: no-op */

    /* -- math, on rows 0 .. n-1 ---------------------------------------------------------- */
    /* x (n, table in_cols) = rows tok[0..n) of the table (vocab, in_cols), dequantized:
     * exactly in_cols floats per token, whatever padding the stored rows carry. tok is host
     * memory, every id in [0, table rows) (the caller checks). */
    int (*embed)(void *ctx, const struct qb_bweight *table, const int32_t *tok, int64_t n,
                 struct qb_bbuf *x);
    /* y (n, w rows) = x (n, w in_cols) . W^T in w's format and activation mode: the kernels
     * of kernels/qmatmul.h, whose sums per output do not depend on n. y and x differ. */
    int (*matmul)(void *ctx, struct qb_bbuf *y, const struct qb_bbuf *x, int64_t n,
                  const struct qb_bweight *w);
    /* y (n, d) = x (n, d) / sqrt(mean(x^2) + norm_eps) * w (d); y may be x. */
    int (*rmsnorm)(void *ctx, struct qb_bbuf *y, const struct qb_bbuf *x, const struct qb_bbuf *w,
                   int64_t n, int64_t d);
    /* y (n, d) += b (d), per row. */
    int (*add_bias)(void *ctx, struct qb_bbuf *y, const struct qb_bbuf *b, int64_t n, int64_t d);
    /* x[0 .. n) += y[0 .. n): the residual add (n floats). */
    int (*add)(void *ctx, struct qb_bbuf *x, const struct qb_bbuf *y, int64_t n);
    /* Rotates each of the n_heads heads (head_dim) of x (n, n_heads * head_dim) by the angles
     * of positions pos .. pos+n-1 (rope_theta, rope_style). */
    int (*rope)(void *ctx, struct qb_bbuf *x, int64_t n, int64_t n_heads, int64_t pos);
    /* Causal grouped-query attention of n tokens at positions pos .. pos+n-1 through KV
     * cache `layer` (0 .. cache_layers-1): appends k, v (n, n_kv_heads * head_dim, keys
     * already rotated) at those positions, then out (n, n_heads * head_dim) = for each query
     * head h (reading kv head h / (n_heads / n_kv_heads)) softmax(q k^T / sqrt(head_dim)) v
     * over cached positions 0 .. pos+t, or with window > 0 (sliding-window attention, as
     * HF's mask kv > q - window) only the last window of them: max(0, pos+t-window+1) ..
     * pos+t. Positions below pos must hold what earlier calls appended; pos + n <= max_ctx,
     * n <= max_batch. */
    int (*attention)(void *ctx, int64_t layer, const struct qb_bbuf *q, const struct qb_bbuf *k,
                     const struct qb_bbuf *v, struct qb_bbuf *out, int64_t n, int64_t pos,
                     int64_t n_heads, int64_t n_kv_heads, int64_t window);
    /* g[i] = silu(g[i]) * u[i] for n floats: SwiGLU's product, g / (1 + exp(-g)) * u. */
    int (*swiglu)(void *ctx, struct qb_bbuf *g, const struct qb_bbuf *u, int64_t n);
    /* out (host, n, head rows) = x (n, head in_cols) . head^T: the output head, written
     * straight to the host (the one result the engine always reads back). */
    int (*logits)(void *ctx, float *out, const struct qb_bbuf *x, int64_t n,
                  const struct qb_bweight *head);

    /* -- optional (NULL where the backend does not know) ----------------------------------- */
    /* What the backend holds now and at its peak. */
    int (*mem)(void *ctx, struct qb_backend_mem *m);
    /* The device in words: "llvmpipe (LLVM 15.0.6, 256 bits), Mesa 22.3.6, 2048 MiB". */
    const char *(*device_name)(void *ctx);
};

/* One backend instance. */
struct qb_backend {
    const struct qb_backend_ops *ops;
    void *ctx; /* passed to every op; released by ops->free */
};

/* What a backend's constructor looks like (qb_backend_cpu_new is one): the engine takes one
 * to choose its backend. On failure *out is zeroed. */
typedef int (*qb_backend_new_fn)(const struct qb_backend_shape *shape, struct qb_backend *out);

#endif
