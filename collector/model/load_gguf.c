/* load_gguf: builds a qb_model from a GGUF file (llama.cpp's format) for the `llama` (also
 * Mistral, which llama.cpp stores as llama), `qwen2` and `qwen3` architectures, with RoPE
 * scaling (rope.scaling.*, rope_freqs.weight), a sliding window and the chat template. Key and
 * tensor names follow llama.cpp's llama-arch.cpp; GGUF stores llama's W_q/W_k permuted for
 * interleaved RoPE pairs (convert_hf_to_gguf.py's LlamaModel.permute) and qwen2's unpermuted, hence
 * the rope_style. A tensor's ne[0] is its innermost (input) dimension: nn.Linear(in, out) is stored
 * with ne = {in, out}, i.e. row-major (out, in). */
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "kernels/base/progress.h"
#include "collector/model/gguf.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SPECIAL_NAME 128

/* Formats ne (innermost first) as "[outer, ..., inner]", the order PyTorch prints. */
static void fmt_shape(char *buf, size_t cap, int n_dims, const int64_t *ne)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (int d = n_dims - 1; d >= 0 && k < cap; d--)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d == n_dims - 1 ? "" : ", ",
                              (long long)ne[d]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static int to_dtype(uint32_t ggml_type, enum qb_dtype *dt)
{
    switch (ggml_type) {
    case QB_GGML_F32: *dt = QB_DT_F32; return 0;
    case QB_GGML_F16: *dt = QB_DT_F16; return 0;
    case QB_GGML_BF16: *dt = QB_DT_BF16; return 0;
    case QB_GGML_Q8_0: *dt = QB_DT_Q8_0; return 0;
    case QB_GGML_Q4_0: *dt = QB_DT_Q4_0; return 0;
    case QB_GGML_Q4_1: *dt = QB_DT_Q4_1; return 0;
    default: return -1;
    }
}

/* f32 weights of tensor `name`, which must have shape ne = {ne0, ne1} (ne1 = 0: a vector).
 * When optional and absent, *out = NULL and 0. */
static int weight(struct qb_model *m, const struct qb_gguf *g, const char *path, const char *name,
                  int64_t ne0, int64_t ne1, int optional, const float **out)
{
    const struct qb_gguf_tensor *t = qb_gguf_find_tensor(g, name);
    int64_t want[4] = {ne0, ne1 ? ne1 : 1, 1, 1};
    enum qb_dtype dt;
    char have_s[96], want_s[64];

    *out = NULL;
    if (!t)
        return optional ? 0 : qb_err(QB_EFORMAT, "'%s': tensor '%s' is missing", path, name);
    /* trailing dimensions of 1 are allowed: a vector stored as (1, n) is still a vector */
    if (memcmp(t->ne, want, sizeof want)) {
        fmt_shape(have_s, sizeof have_s, t->n_dims, t->ne);
        fmt_shape(want_s, sizeof want_s, ne1 ? 2 : 1, want);
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has shape %s but the model needs %s", path,
                      name, have_s, want_s);
    }
    if (to_dtype(t->type, &dt) < 0) {
        const char *tn = qb_gguf_ggml_type_name(t->type);
        if (!tn)
            return qb_err(QB_EUNSUP, "'%s': tensor '%s' has unknown ggml type %u", path, name,
                          t->type);
        return qb_err(QB_EUNSUP,
                      "'%s': tensor '%s' has type %s, which qbrief cannot load (f32, f16, bf16, "
                      "q8_0, q4_0 and q4_1 it can)",
                      path, name, tn);
    }
    return qb_model_f32_view(m, dt, t->data, (size_t)t->n_elements, out);
}

/* Records every tensor of the file in the model's inventory, shapes outermost first.
 * Types the inventory has no dtype for are left out: loading fails anyway if the model
 * needs them. */
static int inventory(struct qb_model *m, const struct qb_gguf *g)
{
    for (int64_t i = 0; i < qb_gguf_n_tensors(g); i++) {
        const struct qb_gguf_tensor *t = qb_gguf_tensor_at(g, i);
        int64_t shape[4];
        enum qb_dtype dt;
        int rc;
        if (to_dtype(t->type, &dt) < 0)
            continue;
        for (int d = 0; d < t->n_dims; d++)
            shape[d] = t->ne[t->n_dims - 1 - d];
        if ((rc = qb_model_add_tensor_info(m, t->name, dt, t->n_dims, shape, t->size)) < 0)
            return rc;
    }
    return 0;
}

static int need_int(const struct qb_gguf *g, const char *path, const char *key, int64_t *out)
{
    int rc = qb_gguf_get_int(g, key, out);
    if (rc == 0)
        return qb_err(QB_EFORMAT, "'%s': metadata '%s' is missing", path, key);
    return rc < 0 ? rc : 0;
}

/* {arch}.rope.scaling.* (llama.cpp's llama-model.cpp: type none/linear/yarn, factor,
 * original_context_length, attn_factor) and {arch}.attention.sliding_window (every layer).
 * YaRN follows the HF formula with beta_fast 32, beta_slow 1 (llama.cpp's defaults) and an
 * attention factor of attn_factor x (0.1 ln(factor) + 1), as ggml_rope_yarn scales. */
static int read_scaling(const struct qb_gguf *g, const char *path, struct qb_config *c)
{
    struct qb_rope_scale *s = &c->rope_scale;
    const char *type = NULL;
    size_t type_len = 0;
    float factor = 0, attn = 0;
    int64_t orig = 0, window = 0;
    char key[128];
    int rc;

#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, c->arch), key)
    if ((rc = qb_gguf_get_str(g, KEY("rope.scaling.type"), &type, &type_len)) < 0 ||
        (rc = qb_gguf_get_f32(g, KEY("rope.scaling.factor"), &factor)) < 0 ||
        (rc = qb_gguf_get_f32(g, KEY("rope.scaling.attn_factor"), &attn)) < 0 ||
        (rc = qb_gguf_get_int(g, KEY("rope.scaling.original_context_length"), &orig)) < 0 ||
        (rc = qb_gguf_get_int(g, KEY("attention.sliding_window"), &window)) < 0)
        return rc;
#undef KEY
    memset(s, 0, sizeof *s);
    s->max_pos = c->max_seq_len;
    s->truncate = 1;
    if (!type || (type_len == 4 && !memcmp(type, "none", 4)))
        s->type = QB_ROPE_SCALE_NONE;
    else if (type_len == 6 && !memcmp(type, "linear", 6))
        s->type = QB_ROPE_SCALE_LINEAR;
    else if (type_len == 4 && !memcmp(type, "yarn", 4))
        s->type = QB_ROPE_SCALE_YARN;
    else
        return qb_err(QB_EUNSUP,
                      "'%s': rope scaling type '%.*s' is not supported (none, linear and yarn "
                      "are)",
                      path, type_len > 32 ? 32 : (int)type_len, type);
    if (s->type != QB_ROPE_SCALE_NONE) {
        if (!(factor >= 1 && factor <= 1e6f))
            return qb_err(QB_EFORMAT, "'%s': rope scaling factor %g is out of range", path, factor);
        if (orig < 0 || orig > (1 << 24))
            return qb_err(QB_EFORMAT, "'%s': original context length %lld is out of range", path,
                          (long long)orig);
        s->factor = factor;
        s->orig_ctx = orig;
        if (s->type == QB_ROPE_SCALE_YARN && attn > 0)
            s->attn_factor = attn * (0.1f * logf(factor) + 1.0f);
        /* a scaled RoPE runs to factor x the original context, as in hf_config.c */
        if ((double)(orig ? orig : c->max_seq_len) * factor > (double)c->max_seq_len &&
            (double)(orig ? orig : c->max_seq_len) * factor < (double)(1 << 24))
            c->max_seq_len = (int64_t)((double)(orig ? orig : c->max_seq_len) * factor);
    }
    if (window < 0 || window > (1 << 30))
        return qb_err(QB_EFORMAT, "'%s': sliding window %lld is out of range", path,
                      (long long)window);
    c->sliding_window = window;
    return 0;
}

static int read_config(const struct qb_gguf *g, const char *path, struct qb_config *c)
{
    const struct qb_gguf_tensor *emb;
    const char *arch;
    size_t arch_len;
    char key[128];
    int64_t head_dim = 0;
    int rc;

#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, c->arch), key)
    if ((rc = qb_gguf_get_str(g, "general.architecture", &arch, &arch_len)) < 0)
        return rc;
    if (rc == 0)
        return qb_err(QB_EFORMAT, "'%s': metadata 'general.architecture' is missing", path);
    if (arch_len == 5 && !memcmp(arch, "llama", 5)) {
        c->rope_style = QB_ROPE_INTERLEAVED;
    } else if (arch_len == 7 && !memcmp(arch, "mistral", 7)) {
        c->rope_style = QB_ROPE_INTERLEAVED;
    } else if (arch_len == 5 && !memcmp(arch, "qwen2", 5)) {
        c->rope_style = QB_ROPE_HALF;
        c->has_qkv_bias = 1;
    } else if (arch_len == 5 && !memcmp(arch, "qwen3", 5)) {
        c->rope_style = QB_ROPE_HALF;
        c->has_qk_norm = 1;
    } else if (arch_len == 6 && (!memcmp(arch, "gemma2", 6) || !memcmp(arch, "gemma3", 6))) {
        return qb_err(QB_EUNSUP,
                      "'%s': architecture '%.6s' is recognised but not supported: the engine "
                      "lacks GeGLU, embedding scaling, 1+w RMSNorm, post-norms and logit "
                      "soft-capping",
                      path, arch);
    } else {
        return qb_err(QB_EUNSUP,
                      "'%s': architecture '%.*s' is not supported (llama, mistral, qwen2 and "
                      "qwen3 are)",
                      path, arch_len > 64 ? 64 : (int)arch_len, arch);
    }
    memcpy(c->arch, arch, arch_len);
    c->arch[arch_len] = 0;

    if ((rc = need_int(g, path, KEY("embedding_length"), &c->dim)) < 0 ||
        (rc = need_int(g, path, KEY("feed_forward_length"), &c->hidden_dim)) < 0 ||
        (rc = need_int(g, path, KEY("block_count"), &c->n_layers)) < 0 ||
        (rc = need_int(g, path, KEY("attention.head_count"), &c->n_heads)) < 0 ||
        (rc = need_int(g, path, KEY("context_length"), &c->max_seq_len)) < 0)
        return rc;
    c->n_kv_heads = c->n_heads;
    if ((rc = qb_gguf_get_int(g, KEY("attention.head_count_kv"), &c->n_kv_heads)) < 0)
        return rc;
    c->rope_theta = 10000.0f;
    if ((rc = qb_gguf_get_f32(g, KEY("rope.freq_base"), &c->rope_theta)) < 0)
        return rc;
    c->norm_eps = 1e-5f;
    if ((rc = qb_gguf_get_f32(g, KEY("attention.layer_norm_rms_epsilon"), &c->norm_eps)) < 0)
        return rc;
    /* head size: attention.key_length where written (newer converters), else the rotary
     * dimension count (all of a head for these architectures), else dim / heads */
    if ((rc = qb_gguf_get_int(g, KEY("attention.key_length"), &head_dim)) < 0)
        return rc;
    if (rc == 0 && (rc = qb_gguf_get_int(g, KEY("rope.dimension_count"), &head_dim)) < 0)
        return rc;
    if (rc == 0)
        head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->head_dim = head_dim;
#undef KEY

    /* the vocabulary is the embedding's outer dimension */
    if (!(emb = qb_gguf_find_tensor(g, "token_embd.weight")))
        return qb_err(QB_EFORMAT, "'%s': tensor 'token_embd.weight' is missing", path);
    c->vocab_size = emb->ne[1];
    if ((rc = read_scaling(g, path, c)) < 0)
        return rc;
    return qb_config_check(c, path);
}

static int load_weights(struct qb_model *m, const struct qb_gguf *g, const char *path)
{
    const struct qb_config *c = &m->cfg;
    int64_t d = c->dim, h = c->hidden_dim, q = c->n_heads * c->head_dim;
    int64_t kv = c->n_kv_heads * c->head_dim; /* no overflow: qb_config_check bounds them */
    char name[64];
    int rc;

    if (!(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers)))
        return qb_err(QB_ENOMEM, "'%s': out of memory", path);
    qb_progress("loading", 0, c->n_layers); /* the embeddings and head count towards layer 1 */
    if ((rc = weight(m, g, path, "token_embd.weight", d, c->vocab_size, 0, &m->tok_embd)) < 0 ||
        (rc = weight(m, g, path, "output_norm.weight", d, 0, 0, &m->out_norm)) < 0 ||
        (rc = weight(m, g, path, "output.weight", d, c->vocab_size, 1, &m->output)) < 0)
        return rc;
    if (!m->output) {
        m->output = m->tok_embd;
        m->cfg.tied_embeddings = 1;
    }
#define W(suffix, ne0, ne1, opt, dst)                                                              \
    (snprintf(name, sizeof name, "blk.%d." suffix, l), weight(m, g, path, name, ne0, ne1, opt, dst))
    for (int l = 0; l < (int)c->n_layers; l++) {
        struct qb_layer *ly = &m->layers[l];
        if ((rc = W("attn_norm.weight", d, 0, 0, &ly->attn_norm)) < 0 ||
            (rc = W("attn_q.weight", d, q, 0, &ly->wq)) < 0 ||
            (rc = W("attn_k.weight", d, kv, 0, &ly->wk)) < 0 ||
            (rc = W("attn_v.weight", d, kv, 0, &ly->wv)) < 0 ||
            (rc = W("attn_output.weight", q, d, 0, &ly->wo)) < 0 ||
            (rc = W("ffn_norm.weight", d, 0, 0, &ly->ffn_norm)) < 0 ||
            (rc = W("ffn_gate.weight", d, h, 0, &ly->w_gate)) < 0 ||
            (rc = W("ffn_down.weight", h, d, 0, &ly->w_down)) < 0 ||
            (rc = W("ffn_up.weight", d, h, 0, &ly->w_up)) < 0)
            return rc;
        if (c->has_qk_norm && ((rc = W("attn_q_norm.weight", c->head_dim, 0, 0, &ly->q_norm)) < 0 ||
                               (rc = W("attn_k_norm.weight", c->head_dim, 0, 0, &ly->k_norm)) < 0))
            return rc;
        if (c->has_qkv_bias && ((rc = W("attn_q.bias", q, 0, 0, &ly->bq)) < 0 ||
                                (rc = W("attn_k.bias", kv, 0, 0, &ly->bk)) < 0 ||
                                (rc = W("attn_v.bias", kv, 0, 0, &ly->bv)) < 0))
            return rc;
        qb_progress("loading", l + 1, c->n_layers);
    }
#undef W
    /* Llama 3.1's per-frequency factors, as convert_hf_to_gguf.py writes them */
    if ((rc = weight(m, g, path, "rope_freqs.weight", c->head_dim / 2, 0, 1, &m->rope_freqs)) < 0)
        return rc;
    for (int64_t i = 0; m->rope_freqs && i < c->head_dim / 2; i++)
        if (!(m->rope_freqs[i] > 0) || m->rope_freqs[i] > 1e6f)
            return qb_err(QB_EFORMAT, "'%s': rope_freqs.weight[%lld] = %g is not a positive factor",
                          path, (long long)i, m->rope_freqs[i]);
    return 0;
}

/* rows (n_heads heads of hd rows, each cols wide) from GGUF llama's interleaved order back to
 * rotate-half order: out row h*hd + j*hd/2 + i = in row h*hd + 2i + j. */
static int unpermute(struct qb_model *m, const float *in, int64_t n_heads, int64_t hd, int64_t cols,
                     const float **out)
{
    float *dst = qb_model_alloc_f32(m, (size_t)(n_heads * hd * cols));
    if (!dst)
        return QB_ENOMEM;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < hd / 2; i++)
            for (int64_t j = 0; j < 2; j++)
                memcpy(dst + (h * hd + j * (hd / 2) + i) * cols, in + (h * hd + 2 * i + j) * cols,
                       (size_t)cols * sizeof *dst);
    *out = dst;
    return 0;
}

/* A file qbrief exported from a rotate-half (Hugging Face) source says so in
 * qbrief.source_rope = "half": its q/k rows were permuted for llama.cpp, and are put back
 * here so that qbrief runs exactly the rows it measured (same order, same sums). */
static int restore_source_rope(struct qb_model *m, const struct qb_gguf *g, const char *path)
{
    struct qb_config *c = &m->cfg;
    const char *s;
    size_t len;
    int rc;

    if ((rc = qb_gguf_get_str(g, "qbrief.source_rope", &s, &len)) <= 0)
        return rc;
    if (len != 4 || memcmp(s, "half", 4) || c->rope_style != QB_ROPE_INTERLEAVED)
        return 0;
    if (c->head_dim % 2)
        return qb_err(QB_EFORMAT, "'%s': qbrief.source_rope = half with an odd head size", path);
    for (int64_t l = 0; l < c->n_layers; l++) {
        struct qb_layer *ly = &m->layers[l];
        if ((rc = unpermute(m, ly->wq, c->n_heads, c->head_dim, c->dim, &ly->wq)) < 0 ||
            (rc = unpermute(m, ly->wk, c->n_kv_heads, c->head_dim, c->dim, &ly->wk)) < 0)
            return rc;
        if (ly->bq && ((rc = unpermute(m, ly->bq, c->n_heads, c->head_dim, 1, &ly->bq)) < 0 ||
                       (rc = unpermute(m, ly->bk, c->n_kv_heads, c->head_dim, 1, &ly->bk)) < 0))
            return rc;
    }
    c->rope_style = QB_ROPE_HALF;
    return 0;
}

/* A NUL-terminated copy of metadata string `key` (NULL and 0 when absent). */
static int dup_str(const struct qb_gguf *g, const char *path, const char *key, char **out)
{
    const char *s;
    size_t len;
    int rc;

    *out = NULL;
    if ((rc = qb_gguf_get_str(g, key, &s, &len)) <= 0)
        return rc;
    if (memchr(s, 0, len))
        return qb_err(QB_EFORMAT, "'%s': metadata '%s' contains a NUL byte", path, key);
    if (!(*out = strndup(s, len)))
        return qb_err(QB_ENOMEM, "'%s': out of memory", path);
    return 0;
}

/* A special token id; -1 when absent or outside the vocabulary (llama.cpp ignores those too:
 * stories260K stores an unused padding id as 0xffffffff). */
static int special_id(const struct qb_gguf *g, const char *key, int64_t n_vocab, int32_t *out)
{
    int64_t v = -1;
    int rc = qb_gguf_get_int(g, key, &v);
    *out = v >= 0 && v < n_vocab ? (int32_t)v : -1;
    return rc < 0 ? rc : 0;
}

static int opt_bool(const struct qb_gguf *g, const char *key, int *out)
{
    int rc;
    *out = -1;
    rc = qb_gguf_get_bool(g, key, out);
    return rc < 0 ? rc : 0;
}

/* The tokenizer stored in the file (tokenizer.ggml.*), or none when the file has none. */
static int embedded_tokenizer(struct qb_model *m, const struct qb_gguf *g, const char *path)
{
    struct qb_tok_vocab v;
    char *model = NULL, *pre = NULL;
    const char **pieces = NULL, **merges = NULL;
    size_t *piece_lens = NULL, *merge_lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    int64_t n_vocab = 0, n;
    int rc;

    memset(&v, 0, sizeof v);
    /* no tokenizer in the file: no key, or llama.cpp's "none" / "no" */
    if ((rc = dup_str(g, path, "tokenizer.ggml.model", &model)) < 0 || !model ||
        !strcmp(model, "none") || !strcmp(model, "no"))
        goto out;
    if ((rc = dup_str(g, path, "tokenizer.ggml.pre", &pre)) < 0)
        goto out;
    if ((rc = qb_gguf_get_str_arr(g, "tokenizer.ggml.tokens", &pieces, &piece_lens, &n_vocab)) < 0)
        goto out;
    if (rc == 0) {
        rc = qb_err(QB_EFORMAT, "'%s': metadata 'tokenizer.ggml.tokens' is missing", path);
        goto out;
    }
    if (n_vocab != m->cfg.vocab_size) {
        rc = qb_err(QB_EFORMAT,
                    "'%s': the tokenizer has %lld tokens but the model's vocabulary has %lld", path,
                    (long long)n_vocab, (long long)m->cfg.vocab_size);
        goto out;
    }
    if ((rc = qb_gguf_get_f32_arr(g, "tokenizer.ggml.scores", &scores, &n)) < 0)
        goto out;
    if (rc == 1 && n != n_vocab) {
        rc = qb_err(QB_EFORMAT, "'%s': tokenizer.ggml.scores has %lld entries for %lld tokens",
                    path, (long long)n, (long long)n_vocab);
        goto out;
    }
    if ((rc = qb_gguf_get_i32_arr(g, "tokenizer.ggml.token_type", &types, &n)) < 0)
        goto out;
    if (rc == 1 && n != n_vocab) {
        rc = qb_err(QB_EFORMAT, "'%s': tokenizer.ggml.token_type has %lld entries for %lld tokens",
                    path, (long long)n, (long long)n_vocab);
        goto out;
    }
    if ((rc = qb_gguf_get_str_arr(g, "tokenizer.ggml.merges", &merges, &merge_lens, &v.n_merges)) <
        0)
        goto out;
    if ((rc = special_id(g, "tokenizer.ggml.bos_token_id", n_vocab, &v.bos_id)) < 0 ||
        (rc = special_id(g, "tokenizer.ggml.eos_token_id", n_vocab, &v.eos_id)) < 0 ||
        (rc = special_id(g, "tokenizer.ggml.unknown_token_id", n_vocab, &v.unk_id)) < 0 ||
        (rc = special_id(g, "tokenizer.ggml.padding_token_id", n_vocab, &v.pad_id)) < 0 ||
        (rc = opt_bool(g, "tokenizer.ggml.add_bos_token", &v.add_bos)) < 0 ||
        (rc = opt_bool(g, "tokenizer.ggml.add_eos_token", &v.add_eos)) < 0 ||
        (rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix)) < 0)
        goto out;
    v.model = model;
    v.pre = pre;
    v.n_vocab = n_vocab;
    v.pieces = pieces;
    v.piece_lens = piece_lens;
    v.scores = scores;
    v.types = types;
    v.merges = merges;
    v.merge_lens = merge_lens;
    rc = qb_tok_from_vocab(&v, path, &m->tok);
out:
    free(model);
    free(pre);
    free(pieces);
    free(piece_lens);
    free(scores);
    free(types);
    free(merges);
    free(merge_lens);
    return rc < 0 ? rc : 0;
}

/* A tokenizer the user named instead of the file's own. */
static int external_tokenizer(struct qb_model *m, const char *tok_path)
{
    int64_t n;
    int rc;

    if ((rc = qb_tok_load_file(tok_path, m->cfg.vocab_size, &m->tok)) < 0)
        return rc;
    /* Qwen2 pads its embedding past the tokenizer's last id, so a smaller tokenizer is fine;
     * a larger one would produce ids the model has no row for */
    n = qb_tok_n_vocab(m->tok);
    if (n > m->cfg.vocab_size)
        return qb_err(QB_EFORMAT,
                      "'%s': the tokenizer has %lld tokens but the model '%s' has only %lld",
                      tok_path, (long long)n, m->path, (long long)m->cfg.vocab_size);
    return 0;
}

/* Fills m from the GGUF image at data; path names it in messages. */
static int build(struct qb_model *m, const void *data, size_t size, const char *path,
                 const struct qb_load_opts *opts)
{
    struct qb_gguf *g = NULL;
    char *tok_path = NULL;
    int rc;

    if ((rc = qb_gguf_open_mem(data, size, path, &g)) < 0)
        goto out;
    if ((rc = read_config(g, path, &m->cfg)) < 0 || (rc = load_weights(m, g, path)) < 0 ||
        (rc = restore_source_rope(m, g, path)) < 0 || (rc = inventory(m, g)) < 0)
        goto out;
    if ((rc = qb_model_tokenizer_file(path, "gguf", m->cfg.vocab_size, opts, &tok_path)) < 0)
        goto out;
    rc = tok_path ? external_tokenizer(m, tok_path) : embedded_tokenizer(m, g, path);
    if (rc == 0)
        rc = dup_str(g, path, "tokenizer.chat_template", &m->chat_template);
out:
    free(tok_path);
    qb_gguf_close(g);
    return rc;
}

int qb_load_gguf_mem(const void *data, size_t size, const char *name,
                     const struct qb_load_opts *opts, struct qb_model **out)
{
    struct qb_model *m;
    int rc;

    *out = NULL;
    if (!(m = qb_model_new(name, "gguf")))
        return QB_ENOMEM;
    if ((rc = build(m, data, size, name, opts)) < 0) {
        qb_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int qb_load_gguf(const char *path, const struct qb_load_opts *opts, struct qb_model **out)
{
    struct qb_model *m = NULL;
    struct qb_map map = {0};
    int rc;

    *out = NULL;
    if ((rc = qb_map_open(path, &map)) < 0)
        return rc;
    if (!(m = qb_model_new(path, "gguf"))) {
        rc = QB_ENOMEM;
        goto fail;
    }
    if ((rc = qb_model_add_map(m, &map)) < 0)
        goto fail;
    map.data = NULL; /* the model owns the mapping now: weights borrow from it */
    map.size = 0;
    if ((rc = build(m, m->maps[m->n_maps - 1].data, m->maps[m->n_maps - 1].size, path, opts)) < 0)
        goto fail;
    *out = m;
    return 0;
fail:
    qb_map_close(&map);
    qb_model_free(m);
    return rc;
}
