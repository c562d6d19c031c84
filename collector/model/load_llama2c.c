/* llama2c: loads llama2.c checkpoints (Karpathy's run.c format) into a qb_model.
 *  - legacy: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len),
 *    a negative vocab_size meaning a separate classifier; then token_embedding, rms_att,
 *    wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real, freq_cis_imag, [wcls].
 *  - version 1: magic "ak42", int32 version, the same 7 int32, uint8 shared_classifier,
 *    zero padding to 256 bytes; then all norms first, then embeddings and the matrices.
 * Q/K are stored permuted for interleaved RoPE pairs, like GGUF. The file has no tokenizer:
 * qb_model_tokenizer_file (model.h) picks one (--tokenizer, or tok<vocab>.bin / tokenizer.bin
 * beside the model). */
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V1_MAGIC 0x616b3432u /* "ak42" */

struct cursor {
    const unsigned char *base;
    size_t size, off;
    const char *path;
};

/* Takes count floats from the cursor; message names what. */
static int take(struct cursor *c, size_t count, const char *what, const float **out)
{
    size_t bytes;
    if (qb_mul_size(count, sizeof(float), &bytes) < 0 || bytes > c->size - c->off)
        return qb_err(QB_EFORMAT, "'%s': file ends inside '%s' (needs %zu more bytes, has %zu)",
                      c->path, what, bytes, c->size - c->off);
    *out = (const float *)(const void *)(c->base + c->off);
    c->off += bytes;
    return 0;
}

static int read_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void tensor_info(struct qb_model *m, const char *name, int n_dims, int64_t a, int64_t b,
                        int64_t c)
{
    int64_t shape[3] = {a, b, c};
    size_t n = 1;
    for (int i = 0; i < n_dims; i++)
        n *= (size_t)shape[i];
    qb_model_add_tensor_info(m, name, QB_DT_F32, n_dims, shape, n * sizeof(float));
}

/* The header: hdr (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab, max_seq_len), the
 * format version (0: legacy), whether the head is shared, and where the weights start. */
static int read_header(struct cursor *cur, int hdr[7], int *version, int *shared)
{
    const unsigned char *p = cur->base;
    *version = 0;
    if (cur->size >= 8 && (uint32_t)read_i32(p) == V1_MAGIC) {
        *version = read_i32(p + 4);
        if (*version != 1)
            return qb_err(QB_EUNSUP,
                          "'%s': llama2.c checkpoint version %d is not supported (only 1)",
                          cur->path, *version);
        if (cur->size < 256)
            return qb_err(QB_EFORMAT, "'%s': truncated llama2.c version 1 header", cur->path);
        for (int i = 0; i < 7; i++)
            hdr[i] = read_i32(p + 8 + 4 * i);
        *shared = p[36] != 0;
        cur->off = 256;
        return 0;
    }
    if (cur->size < 28)
        return qb_err(QB_EFORMAT, "'%s': too short for a llama2.c header (%zu bytes)", cur->path,
                      cur->size);
    for (int i = 0; i < 7; i++)
        hdr[i] = read_i32(p + 4 * i);
    *shared = hdr[5] > 0;
    if (hdr[5] < 0 && hdr[5] != INT32_MIN)
        hdr[5] = -hdr[5];
    cur->off = 28;
    return 0;
}

static int fill_config(struct qb_config *c, const int hdr[7], int shared, const char *path)
{
    snprintf(c->arch, sizeof c->arch, "llama");
    c->dim = hdr[0];
    c->hidden_dim = hdr[1];
    c->n_layers = hdr[2];
    c->n_heads = hdr[3];
    c->n_kv_heads = hdr[4];
    c->vocab_size = hdr[5];
    c->max_seq_len = hdr[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->rope_style = QB_ROPE_INTERLEAVED;
    c->tied_embeddings = shared;
    if (c->n_heads > 0 && c->dim % c->n_heads)
        return qb_err(QB_EFORMAT, "'%s': dimension %lld is not a multiple of %lld heads", path,
                      (long long)c->dim, (long long)c->n_heads);
    return qb_config_check(c, path);
}

/* The weights in the file's order (legacy and version 1 differ), pointed to from m's layers. */
static int take_weights(struct cursor *cur, struct qb_model *m, int version, int shared)
{
    const struct qb_config *c = &m->cfg;
    const int64_t L = c->n_layers, d = c->dim, kvd = c->n_kv_heads * c->head_dim,
                  hid = c->hidden_dim;
    const float *att_norms = NULL, *ffn_norms = NULL, *wq = NULL, *wk = NULL, *wv = NULL;
    const float *wo = NULL, *w1 = NULL, *w2 = NULL, *w3 = NULL, *skip = NULL;
    int rc;

    /* the sizes below are products of checked dimensions: none overflows size_t */
    if (version == 0) {
        if ((rc = take(cur, (size_t)(c->vocab_size * d), "token_embedding", &m->tok_embd)) < 0 ||
            (rc = take(cur, (size_t)(L * d), "rms_att", &att_norms)) < 0)
            return rc;
    } else {
        if ((rc = take(cur, (size_t)(L * d), "rms_att", &att_norms)) < 0 ||
            (rc = take(cur, (size_t)(L * d), "rms_ffn", &ffn_norms)) < 0 ||
            (rc = take(cur, (size_t)d, "rms_final", &m->out_norm)) < 0 ||
            (rc = take(cur, (size_t)(c->vocab_size * d), "token_embedding", &m->tok_embd)) < 0)
            return rc;
    }
    if ((rc = take(cur, (size_t)(L * d * d), "wq", &wq)) < 0 ||
        (rc = take(cur, (size_t)(L * kvd * d), "wk", &wk)) < 0 ||
        (rc = take(cur, (size_t)(L * kvd * d), "wv", &wv)) < 0 ||
        (rc = take(cur, (size_t)(L * d * d), "wo", &wo)) < 0)
        return rc;
    if (version == 0 && (rc = take(cur, (size_t)(L * d), "rms_ffn", &ffn_norms)) < 0)
        return rc;
    if ((rc = take(cur, (size_t)(L * hid * d), "w1", &w1)) < 0 ||
        (rc = take(cur, (size_t)(L * d * hid), "w2", &w2)) < 0 ||
        (rc = take(cur, (size_t)(L * hid * d), "w3", &w3)) < 0)
        return rc;
    if (version == 0 &&
        ((rc = take(cur, (size_t)d, "rms_final", &m->out_norm)) < 0 ||
         (rc = take(cur, (size_t)(c->max_seq_len * c->head_dim), "freq_cis", &skip)) < 0))
        return rc;
    if (shared)
        m->output = m->tok_embd;
    else if ((rc = take(cur, (size_t)(c->vocab_size * d), "wcls", &m->output)) < 0)
        return rc;
    if (cur->off != cur->size)
        return qb_err(QB_EFORMAT,
                      "'%s': %zu unexpected bytes after the weights (header says dim %lld, "
                      "%lld layers, vocab %lld)",
                      cur->path, cur->size - cur->off, (long long)d, (long long)L,
                      (long long)c->vocab_size);
    for (int64_t l = 0; l < L; l++) {
        struct qb_layer *ly = &m->layers[l];
        ly->attn_norm = att_norms + l * d;
        ly->ffn_norm = ffn_norms + l * d;
        ly->wq = wq + l * d * d;
        ly->wk = wk + l * kvd * d;
        ly->wv = wv + l * kvd * d;
        ly->wo = wo + l * d * d;
        ly->w_gate = w1 + l * hid * d;
        ly->w_down = w2 + l * d * hid;
        ly->w_up = w3 + l * hid * d;
    }
    return 0;
}

/* The tensors as `inspect` lists them, by their llama2.c names. */
static void describe_tensors(struct qb_model *m, int shared)
{
    const struct qb_config *c = &m->cfg;
    const int64_t L = c->n_layers, d = c->dim, kvd = c->n_kv_heads * c->head_dim,
                  hid = c->hidden_dim;
    tensor_info(m, "token_embedding", 2, c->vocab_size, d, 0);
    tensor_info(m, "rms_att", 2, L, d, 0);
    tensor_info(m, "wq", 3, L, d, d);
    tensor_info(m, "wk", 3, L, kvd, d);
    tensor_info(m, "wv", 3, L, kvd, d);
    tensor_info(m, "wo", 3, L, d, d);
    tensor_info(m, "rms_ffn", 2, L, d, 0);
    tensor_info(m, "w1", 3, L, hid, d);
    tensor_info(m, "w2", 3, L, d, hid);
    tensor_info(m, "w3", 3, L, hid, d);
    tensor_info(m, "rms_final", 1, d, 0, 0);
    if (!shared)
        tensor_info(m, "wcls", 2, c->vocab_size, d, 0);
}

/* The tokenizer qb_model_tokenizer_file picks; a buffer (fuzzing, tests) has no directory to
 * look in, so only opts->tokenizer_path applies to it. */
static int attach_tokenizer(struct qb_model *m, const char *path, int from_file,
                            const struct qb_load_opts *opts)
{
    const int64_t vocab = m->cfg.vocab_size;
    char *tok_path = NULL;
    int rc;
    if ((rc = qb_model_tokenizer_file(from_file ? path : NULL, "llama2c", vocab, opts, &tok_path)) <
            0 ||
        (tok_path && (rc = qb_tok_load_file(tok_path, vocab, &m->tok)) < 0))
        goto out;
    if (m->tok && qb_tok_n_vocab(m->tok) != vocab)
        rc = qb_err(QB_EFORMAT, "'%s': tokenizer has %lld tokens but the model has %lld", path,
                    (long long)qb_tok_n_vocab(m->tok), (long long)vocab);
out:
    free(tok_path);
    return rc;
}

/* Loads from map.data[0..map.size); when own_map, the model takes the mapping over. */
static int load(struct qb_map map, int own_map, const char *path, const struct qb_load_opts *opts,
                struct qb_model **out)
{
    static const struct qb_load_opts no_opts;
    const int from_file = own_map;
    struct qb_model *m = NULL;
    struct cursor cur = {.base = map.data, .size = map.size, .path = path};
    int hdr[7] = {0}, version = 0, shared = 0, rc;

    *out = NULL;
    if ((rc = read_header(&cur, hdr, &version, &shared)) < 0)
        goto fail;
    if (!(m = qb_model_new(path, "llama2c"))) {
        rc = QB_ENOMEM;
        goto fail;
    }
    if (own_map) {
        if ((rc = qb_model_add_map(m, &map)) < 0)
            goto fail;
        own_map = 0; /* the model owns it now */
    }
    if ((rc = fill_config(&m->cfg, hdr, shared, path)) < 0)
        goto fail;
    if (!(m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    if ((rc = take_weights(&cur, m, version, shared)) < 0)
        goto fail;
    describe_tensors(m, shared);
    if ((rc = attach_tokenizer(m, path, from_file, opts ? opts : &no_opts)) < 0)
        goto fail;
    *out = m;
    return 0;
fail:
    if (own_map)
        qb_map_close(&map);
    qb_model_free(m);
    return rc;
}

int qb_load_llama2c(const char *path, const struct qb_load_opts *opts, struct qb_model **out)
{
    struct qb_map map;
    int rc;

    *out = NULL;
    if ((rc = qb_map_open(path, &map)) < 0)
        return rc;
    return load(map, 1, path, opts, out);
}

int qb_load_llama2c_mem(const void *data, size_t size, const char *name,
                        const struct qb_load_opts *opts, struct qb_model **out)
{
    struct qb_map map = {data, size};
    return load(map, 0, name, opts, out);
}
