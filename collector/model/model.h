/* model: a loaded Llama-family decoder (Llama, Mistral, Qwen2) with f32 weights, whatever
 * file it came from (GGUF, a Hugging Face directory, a llama2.c .bin).
 *
 *     struct qb_model *m;
 *     struct qb_load_opts o = {.tokenizer_path = NULL};
 *     if ((rc = qb_model_load("model.gguf", &o, &m)) < 0) { ... qb_errmsg() ... }
 *     ... m->cfg.dim, m->layers[l].wq, m->tok ...
 *     qb_model_free(m);
 *
 * Weight pointers are either borrowed from a read-only mapping of the file (f32 tensors are
 * never copied) or point into buffers the model owns (converted F16/BF16/Q8_0/Q4_0); both
 * live as long as the model. Matrices are row-major (out_features, in_features), as in
 * PyTorch's nn.Linear and GGUF's ne = {in, out}. */
#ifndef QB_MODEL_H
#define QB_MODEL_H

#include "kernels/base/fileio.h"

#include <stddef.h>
#include <stdint.h>

struct qb_tokenizer;

/* How Q and K rows are laid out for rotary embeddings. */
enum qb_rope_style {
    QB_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): GGUF llama, llama2.c */
    QB_ROPE_HALF = 1,        /* pairs (i, i + head_dim/2), "rotate half": HF, GGUF qwen2 */
};

/* Source dtypes as stored in the file (for inspect and provenance). */
enum qb_dtype { QB_DT_F32, QB_DT_F16, QB_DT_BF16, QB_DT_Q8_0, QB_DT_Q4_0, QB_DT_Q4_1, QB_DT_COUNT };
const char *qb_dtype_name(enum qb_dtype dt);

/* RoPE frequency scaling (collector/model/rope.c computes the table), as transformers'
 * modeling_rope_utils.py defines each type. */
enum qb_rope_scaling {
    QB_ROPE_SCALE_NONE = 0,
    QB_ROPE_SCALE_LINEAR,  /* inv_freq / factor */
    QB_ROPE_SCALE_DYNAMIC, /* NTK: the base grows with the context past orig_ctx */
    QB_ROPE_SCALE_YARN,    /* ramp between interpolation and extrapolation, attention factor */
    QB_ROPE_SCALE_LLAMA3,  /* Llama 3.1: low/high frequency bands */
};

struct qb_rope_scale {
    enum qb_rope_scaling type;
    float factor;                            /* yarn: 0 = max_pos / orig_ctx */
    int64_t orig_ctx;                        /* original_max_position_embeddings, 0 = max_pos */
    int64_t max_pos;                         /* max_position_embeddings as the config gives it */
    float low_freq_factor, high_freq_factor; /* llama3 */
    float beta_fast, beta_slow;              /* yarn (32, 1 when absent) */
    float attn_factor;                       /* yarn: 0 = derived from factor (and mscale) */
    float mscale, mscale_all_dim;            /* yarn: 0 = absent */
    int truncate;                            /* yarn: floor/ceil the correction range (1) */
};

struct qb_config {
    char arch[32];      /* "llama", "mistral", "qwen2", "qwen3" */
    int64_t dim;        /* hidden size */
    int64_t hidden_dim; /* FFN intermediate size */
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;
    int64_t head_dim; /* usually dim / n_heads */
    int64_t vocab_size;
    int64_t max_seq_len; /* context the model was trained for */
    float rope_theta;    /* 10000 for Llama 1/2 */
    float norm_eps;      /* RMSNorm epsilon */
    enum qb_rope_style rope_style;
    int tied_embeddings; /* output head shares tok_embd */
    int has_qkv_bias;    /* Qwen2 */
    int has_qk_norm;     /* Qwen3: RMSNorm over each q and k head before RoPE */
    struct qb_rope_scale rope_scale;
    /* sliding-window attention: a position attends to the last `sliding_window` positions
     * (itself included) in the layers that use it; 0 = full attention everywhere */
    int64_t sliding_window;
    int64_t swa_from_layer; /* Qwen2 max_window_layers: layers >= this use the window */
};

struct qb_layer {
    const float *attn_norm;       /* (dim) */
    const float *wq;              /* (n_heads*head_dim, dim) */
    const float *wk;              /* (n_kv_heads*head_dim, dim) */
    const float *wv;              /* (n_kv_heads*head_dim, dim) */
    const float *bq, *bk, *bv;    /* biases, NULL unless has_qkv_bias */
    const float *q_norm, *k_norm; /* (head_dim) per-head RMSNorm, NULL unless has_qk_norm */
    const float *wo;              /* (dim, n_heads*head_dim) */
    const float *ffn_norm;        /* (dim) */
    const float *w_gate;          /* (hidden_dim, dim)  w1 */
    const float *w_down;          /* (dim, hidden_dim)  w2 */
    const float *w_up;            /* (hidden_dim, dim)  w3 */
};

/* One tensor as found in the source file, for `qbrief inspect`. */
struct qb_tensor_info {
    char name[96];
    enum qb_dtype dtype;
    int n_dims;
    int64_t shape[4]; /* outermost first, as PyTorch prints it */
    size_t bytes;     /* bytes in the file */
};

struct qb_model {
    struct qb_config cfg;
    char format[16]; /* "gguf", "hf", "llama2c" */
    char *path;
    const float *tok_embd;    /* (vocab_size, dim) */
    struct qb_layer *layers;  /* n_layers */
    const float *out_norm;    /* (dim) */
    const float *output;      /* (vocab_size, dim); == tok_embd when tied */
    struct qb_tokenizer *tok; /* owned; NULL when the file has none and none was given */
    const float *rope_freqs;  /* (head_dim/2) GGUF rope_freqs.weight: inv_freq[i] is divided
                                 by it (Llama 3.1 converted); NULL when absent */
    char *chat_template;      /* the model's chat template (owned), NULL when none */

    struct qb_tensor_info *tensors; /* inventory of the source file(s) */
    int64_t n_tensors;

    /* ownership: mappings of the source files and buffers of converted tensors */
    struct qb_map *maps;
    int n_maps;
    void **bufs;
    int n_bufs;
};

struct qb_load_opts {
    const char *tokenizer_path; /* overrides or supplies the tokenizer: qb_model_tokenizer_file */
};

/* Which tokenizer file a model uses -- the one place that decides it; every loader goes
 * through it. Candidates, the first that applies:
 *   1. opts->tokenizer_path (--tokenizer FILE, a plan's tokenizer:) when set: it wins over
 *      whatever the model carries or has beside it, in every format;
 *   2. format "gguf": none -- the file carries its own tokenizer.ggml.* (or has none);
 *   3. format "hf": MODEL_DIR/tokenizer.json when it exists, else MODEL_DIR/tokenizer.model
 *      (SentencePiece) when it exists;
 *   4. format "llama2c" (the file has no tokenizer): tok<n_vocab>.bin, then tokenizer.bin,
 *      in the model file's directory, the first readable.
 * model_path NULL (a model read from memory) has nothing beside it: only 1 applies.
 * *out: a malloc'd path, read with qb_tok_load_file (collector/tokenizer/tokenizer.h), or
 * NULL when none is picked (the model's own, or no tokenizer). */
int qb_model_tokenizer_file(const char *model_path, const char *format, int64_t n_vocab,
                            const struct qb_load_opts *opts, char **out);

/* Detects the format (directory -> HF; "GGUF" magic -> GGUF; else llama2.c) and loads. */
int qb_model_load(const char *path, const struct qb_load_opts *opts, struct qb_model **out);
void qb_model_free(struct qb_model *m);

/* The RoPE inverse frequencies (head_dim/2) and the factor cos and sin are multiplied by
 * (yarn's attention factor, else 1) for a pass of up to seq_len positions: rope_theta,
 * the scaling of cfg.rope_scale, and m->rope_freqs when set. Matches transformers'
 * ROPE_INIT_FUNCTIONS (float32 as it computes them). dynamic depends on seq_len: HF
 * recomputes it from the longest position of each pass (equal when a pass reaches
 * seq_len); the engine passes max_seq_len (factor x the original context), as vLLM does. */
void qb_rope_inv_freq(const struct qb_model *m, int64_t seq_len, float *inv_freq,
                      float *attn_factor);
/* "none", "linear", "dynamic", "yarn", "llama3" */
const char *qb_rope_scaling_name(enum qb_rope_scaling t);
/* Whether layer l uses the sliding window (cfg.sliding_window > 0 and l in range). */
int qb_layer_uses_window(const struct qb_config *c, int64_t l);

/* Number of parameters (embeddings counted once when tied). */
int64_t qb_model_n_params(const struct qb_model *m);

/* --- helpers for the format loaders (model.c) --- */

struct qb_model *qb_model_new(const char *path, const char *format);
/* Registers a mapping the model now owns (copied by value). */
int qb_model_add_map(struct qb_model *m, const struct qb_map *map);
/* Allocates an owned, 64-byte aligned buffer of n floats. NULL on OOM (message set). */
float *qb_model_alloc_f32(struct qb_model *m, size_t n);
/* Records one tensor of the source file in the inventory. */
int qb_model_add_tensor_info(struct qb_model *m, const char *name, enum qb_dtype dt, int n_dims,
                             const int64_t *shape, size_t bytes);
/* Returns f32 data for n elements of a source tensor: borrowed when already f32 and 4-byte
 * aligned, converted into an owned buffer otherwise. Q8_0/Q4_0 need n % 32 == 0. */
int qb_model_f32_view(struct qb_model *m, enum qb_dtype dt, const void *src, size_t n,
                      const float **out);
/* Checks the config for values the engine cannot run (zero or absurd dimensions,
 * n_heads % n_kv_heads, etc.); message names path. */
int qb_config_check(const struct qb_config *c, const char *path);

/* Per-format loaders, called by qb_model_load. */
int qb_load_gguf(const char *path, const struct qb_load_opts *opts, struct qb_model **out);
int qb_load_hf(const char *dir, const struct qb_load_opts *opts, struct qb_model **out);
int qb_load_llama2c(const char *path, const struct qb_load_opts *opts, struct qb_model **out);
/* The same from a caller's buffer (fuzzing, tests): the model borrows data, which must
 * outlive it; name stands for the path in messages. */
int qb_load_llama2c_mem(const void *data, size_t size, const char *name,
                        const struct qb_load_opts *opts, struct qb_model **out);

#endif
