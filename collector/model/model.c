/* model: format detection, the choice of a model's tokenizer file, ownership of mappings
 * and converted buffers, and the checks every loader shares (see model.h). */
#include "collector/model/model.h"

#include "kernels/base/bigalloc.h"
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/dequant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const dtype_names[QB_DT_COUNT] = {
    [QB_DT_F32] = "F32",   [QB_DT_F16] = "F16",   [QB_DT_BF16] = "BF16",
    [QB_DT_Q8_0] = "Q8_0", [QB_DT_Q4_0] = "Q4_0", [QB_DT_Q4_1] = "Q4_1",
};

const char *qb_dtype_name(enum qb_dtype dt)
{
    return (unsigned)dt < QB_DT_COUNT ? dtype_names[dt] : "?";
}

struct qb_model *qb_model_new(const char *path, const char *format)
{
    struct qb_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        qb_err(QB_ENOMEM, "'%s': out of memory", path);
        return NULL;
    }
    snprintf(m->format, sizeof m->format, "%s", format);
    return m;
}

void qb_model_free(struct qb_model *m)
{
    if (!m)
        return;
    qb_tok_free(m->tok);
    for (int i = 0; i < m->n_maps; i++)
        qb_map_close(&m->maps[i]);
    for (int i = 0; i < m->n_bufs; i++)
        free(m->bufs[i]);
    free(m->maps);
    free(m->bufs);
    free(m->layers);
    free(m->tensors);
    free(m->chat_template);
    free(m->path);
    free(m);
}

/* tok<n_vocab>.bin, then tokenizer.bin, in the directory of the llama2.c file at path;
 * NULL when neither is readable. */
static int sibling_tokenizer(const char *path, int64_t n_vocab, char **out)
{
    char name[64];
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    char *dir = strndup(slash ? path : ".", dlen);
    char *cand[2] = {NULL, NULL};
    int rc = 0;

    *out = NULL;
    snprintf(name, sizeof name, "tok%lld.bin", (long long)n_vocab);
    if (!dir || !(cand[0] = qb_path_join(dir, name)) ||
        !(cand[1] = qb_path_join(dir, "tokenizer.bin"))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto out;
    }
    for (int i = 0; i < 2 && !*out; i++)
        if (access(cand[i], R_OK) == 0) {
            *out = cand[i];
            cand[i] = NULL;
        }
out:
    free(cand[0]);
    free(cand[1]);
    free(dir);
    return rc;
}

int qb_model_tokenizer_file(const char *model_path, const char *format, int64_t n_vocab,
                            const struct qb_load_opts *opts, char **out)
{
    *out = NULL;
    if (opts && opts->tokenizer_path) {
        if (!(*out = strdup(opts->tokenizer_path)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", opts->tokenizer_path);
        return 0;
    }
    if (!model_path)
        return 0;
    if (!strcmp(format, "hf")) {
        /* tokenizer.json, else SentencePiece's tokenizer.model (Llama 2, Mistral dirs) */
        static const char *const names[] = {"tokenizer.json", "tokenizer.model"};
        for (int i = 0; i < 2 && !*out; i++) {
            char *p = qb_path_join(model_path, names[i]);
            if (!p)
                return qb_err(QB_ENOMEM, "'%s': out of memory", model_path);
            if (access(p, F_OK) == 0)
                *out = p;
            else
                free(p);
        }
        return 0;
    }
    if (!strcmp(format, "llama2c"))
        return sibling_tokenizer(model_path, n_vocab, out);
    return 0; /* gguf: its own */
}

int qb_model_add_map(struct qb_model *m, const struct qb_map *map)
{
    struct qb_map *p = realloc(m->maps, (size_t)(m->n_maps + 1) * sizeof *p);
    if (!p)
        return qb_err(QB_ENOMEM, "'%s': out of memory", m->path);
    m->maps = p;
    m->maps[m->n_maps++] = *map;
    return 0;
}

float *qb_model_alloc_f32(struct qb_model *m, size_t n)
{
    void **p;
    void *buf = NULL;
    size_t bytes;

    if (qb_mul_size(n ? n : 1, sizeof(float), &bytes) < 0 || bytes > ((size_t)1 << 40)) {
        qb_err(QB_ENOMEM, "'%s': tensor of %zu elements is too large", m->path, n);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    p = realloc(m->bufs, (size_t)(m->n_bufs + 1) * sizeof *p);
    if (p)
        m->bufs = p;
    if (!p || !(buf = qb_alloc_big(64, bytes))) {
        qb_err(QB_ENOMEM, "'%s': out of memory for a tensor of %zu elements", m->path, n);
        return NULL;
    }
    m->bufs[m->n_bufs++] = buf;
    return buf;
}

int qb_model_add_tensor_info(struct qb_model *m, const char *name, enum qb_dtype dt, int n_dims,
                             const int64_t *shape, size_t bytes)
{
    struct qb_tensor_info *t;
    if (n_dims < 0 || n_dims > 4)
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has %d dimensions", m->path, name, n_dims);
    t = realloc(m->tensors, (size_t)(m->n_tensors + 1) * sizeof *t);
    if (!t)
        return qb_err(QB_ENOMEM, "'%s': out of memory", m->path);
    m->tensors = t;
    t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++)
        t->shape[i] = shape[i];
    t->bytes = bytes;
    return 0;
}

/* Bytes of n elements of dt, n a multiple of 32 for the block formats. */
static size_t src_bytes(enum qb_dtype dt, size_t n)
{
    switch (dt) {
    case QB_DT_F32: return n * 4;
    case QB_DT_F16:
    case QB_DT_BF16: return n * 2;
    case QB_DT_Q8_0: return n / 32 * sizeof(struct qb_block_q8_0);
    case QB_DT_Q4_0: return n / 32 * sizeof(struct qb_block_q4_0);
    default: return n / 32 * sizeof(struct qb_block_q4_1);
    }
}

/* src (n elements of dt, a supported dtype) into dst as f32, in chunks of whole blocks spread
 * over the threads: each element is converted on its own, so the result does not depend
 * on the split. */
static void convert_f32(enum qb_dtype dt, const void *src, float *dst, size_t n)
{
    const size_t chunk = (size_t)1 << 18; /* elements: a multiple of 32 */
    const long long n_chunks = (long long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(dynamic, 1) if (n_chunks > 1)
    for (long long k = 0; k < n_chunks; k++) {
        size_t i = (size_t)k * chunk, len = n - i < chunk ? n - i : chunk;
        const unsigned char *s = (const unsigned char *)src + src_bytes(dt, i);
        switch (dt) {
        case QB_DT_F32: memcpy(dst + i, s, len * sizeof(float)); break;
        case QB_DT_F16: qb_dequant_f16(s, dst + i, len); break;
        case QB_DT_BF16: qb_dequant_bf16(s, dst + i, len); break;
        case QB_DT_Q8_0: qb_dequant_q8_0(s, dst + i, len); break;
        case QB_DT_Q4_0: qb_dequant_q4_0(s, dst + i, len); break;
        default: qb_dequant_q4_1(s, dst + i, len); break;
        }
    }
}

int qb_model_f32_view(struct qb_model *m, enum qb_dtype dt, const void *src, size_t n,
                      const float **out)
{
    float *dst;

    if (dt == QB_DT_F32 && ((uintptr_t)src & 3) == 0) {
        *out = src;
        return 0;
    }
    if ((dt == QB_DT_Q8_0 || dt == QB_DT_Q4_0 || dt == QB_DT_Q4_1) && n % 32 != 0)
        return qb_err(QB_EFORMAT, "'%s': %s tensor of %zu elements is not whole blocks of 32",
                      m->path, qb_dtype_name(dt), n);
    if (dt != QB_DT_F32 && dt != QB_DT_F16 && dt != QB_DT_BF16 && dt != QB_DT_Q8_0 &&
        dt != QB_DT_Q4_0 && dt != QB_DT_Q4_1)
        return qb_err(QB_EUNSUP, "'%s': unsupported dtype %d", m->path, (int)dt);
    if (!(dst = qb_model_alloc_f32(m, n)))
        return QB_ENOMEM;
    convert_f32(dt, src, dst, n);
    *out = dst;
    return 0;
}

int qb_config_check(const struct qb_config *c, const char *path)
{
    /* Bounds generous enough for any released Llama-family model, tight enough that
     * products of two of them cannot overflow and absurd headers fail early. */
    const int64_t max_dim = 1 << 16, max_vocab = 1 << 22, max_layers = 1024;
    const int64_t max_ctx = 1 << 24;

    if (c->dim <= 0 || c->dim > max_dim)
        return qb_err(QB_EFORMAT, "'%s': model dimension %lld is out of range", path,
                      (long long)c->dim);
    if (c->hidden_dim <= 0 || c->hidden_dim > 4 * max_dim)
        return qb_err(QB_EFORMAT, "'%s': feed-forward dimension %lld is out of range", path,
                      (long long)c->hidden_dim);
    if (c->n_layers <= 0 || c->n_layers > max_layers)
        return qb_err(QB_EFORMAT, "'%s': layer count %lld is out of range", path,
                      (long long)c->n_layers);
    if (c->n_heads <= 0 || c->n_heads > c->dim)
        return qb_err(QB_EFORMAT, "'%s': head count %lld is out of range", path,
                      (long long)c->n_heads);
    if (c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return qb_err(QB_EFORMAT, "'%s': %lld key/value heads do not divide %lld heads", path,
                      (long long)c->n_kv_heads, (long long)c->n_heads);
    if (c->head_dim <= 0 || c->head_dim % 2 || c->head_dim > 1024)
        return qb_err(QB_EFORMAT,
                      "'%s': head dimension %lld is not a positive even number up to 1024", path,
                      (long long)c->head_dim);
    if (c->n_heads * c->head_dim > 4 * max_dim)
        return qb_err(QB_EFORMAT, "'%s': attention width %lld is out of range", path,
                      (long long)(c->n_heads * c->head_dim));
    if (c->vocab_size <= 0 || c->vocab_size > max_vocab)
        return qb_err(QB_EFORMAT, "'%s': vocabulary size %lld is out of range", path,
                      (long long)c->vocab_size);
    if (c->max_seq_len <= 0 || c->max_seq_len > max_ctx)
        return qb_err(QB_EFORMAT, "'%s': context length %lld is out of range", path,
                      (long long)c->max_seq_len);
    if (!(c->rope_theta > 0) || c->rope_theta > 1e9f)
        return qb_err(QB_EFORMAT, "'%s': rope theta %g is out of range", path, c->rope_theta);
    if (!(c->norm_eps > 0) || c->norm_eps > 1)
        return qb_err(QB_EFORMAT, "'%s': rms norm epsilon %g is out of range", path, c->norm_eps);
    if (c->rope_scale.type != QB_ROPE_SCALE_NONE && c->rope_scale.type != QB_ROPE_SCALE_YARN &&
        !(c->rope_scale.factor >= 1 && c->rope_scale.factor <= 1e6f))
        return qb_err(QB_EFORMAT, "'%s': rope scaling factor %g is out of range", path,
                      c->rope_scale.factor);
    if (c->sliding_window < 0 || c->swa_from_layer < 0)
        return qb_err(QB_EFORMAT, "'%s': sliding window %lld is out of range", path,
                      (long long)c->sliding_window);
    return 0;
}

int64_t qb_model_n_params(const struct qb_model *m)
{
    const struct qb_config *c = &m->cfg;
    int64_t q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    int64_t per_layer = 2 * c->dim + c->dim * q * 2 + c->dim * kv * 2 + 3 * c->dim * c->hidden_dim;
    if (c->has_qkv_bias)
        per_layer += q + 2 * kv;
    if (c->has_qk_norm)
        per_layer += 2 * c->head_dim;
    return c->vocab_size * c->dim * (c->tied_embeddings ? 1 : 2) + c->dim + c->n_layers * per_layer;
}

int qb_model_load(const char *path, const struct qb_load_opts *opts, struct qb_model **out)
{
    static const struct qb_load_opts no_opts;
    unsigned char magic[4] = {0};
    size_t n;
    FILE *f;

    *out = NULL;
    if (!opts)
        opts = &no_opts;
    if (qb_is_dir(path))
        return qb_load_hf(path, opts, out);
    if (qb_fopen_regular(path, &f, NULL) < 0) /* a FIFO would block the open */
        return qb_err_prefix(QB_EIO, "model");
    if (fread(magic, 1, 4, f) != 4) {
        fclose(f);
        return qb_err(QB_EFORMAT, "'%s': too short to be a model file", path);
    }
    fclose(f);
    if (!memcmp(magic, "GGUF", 4))
        return qb_load_gguf(path, opts, out);
    n = strlen(path);
    if (n >= 5 && !strcasecmp(path + n - 5, ".gguf"))
        return qb_err(QB_EFORMAT,
                      "'%s': not a GGUF file (it starts with %02x %02x %02x %02x, not "
                      "\"GGUF\")",
                      path, magic[0], magic[1], magic[2], magic[3]);
    return qb_load_llama2c(path, opts, out);
}
