/* load_hf: loads a Hugging Face model directory (config.json + model.safetensors, or
 * model.safetensors.index.json + shards, + optional tokenizer.json) into a qb_model.
 * Tensor names and shapes follow transformers' modeling_llama.py / modeling_mistral.py /
 * modeling_qwen2.py; matrices are PyTorch nn.Linear weights, (out_features, in_features).
 * Q/K rows stay in HF's rotate-half order: the config says QB_ROPE_HALF and the engine
 * pairs (i, i + head_dim/2), so no permutation is applied. */
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "kernels/base/progress.h"
#include "collector/model/hf_config.h"
#include "collector/model/model.h"
#include "collector/model/safetensors.h"
#include "collector/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hf {
    struct qb_model *m;
    char *weights;          /* model.safetensors, or the index: named when a tensor is missing */
    struct qb_st_index *ix; /* NULL for a single file */
    struct qb_st_file **shards; /* ix->n_shards of them, or one */
    int n_shards;
};

/* Maps dir/name into the model and parses its header. */
static int open_shard(struct hf *h, const char *dir, const char *name, struct qb_st_file **out)
{
    struct qb_map map = {0};
    char *path = qb_path_join(dir, name);
    int rc;

    if (!path)
        return qb_err(QB_ENOMEM, "'%s': out of memory", dir);
    if ((rc = qb_map_open(path, &map)) < 0)
        goto out;
    if ((rc = qb_model_add_map(h->m, &map)) < 0) {
        qb_map_close(&map);
        goto out;
    }
    rc = qb_st_open_mem(map.data, map.size, path, out);
out:
    free(path);
    return rc;
}

static int open_weights(struct hf *h, const char *dir)
{
    char *index = NULL;
    int rc = 0;

    if (!(h->weights = qb_path_join(dir, "model.safetensors")) ||
        !(index = qb_path_join(dir, "model.safetensors.index.json"))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", dir);
        goto out;
    }
    if (access(h->weights, F_OK) == 0 || access(index, F_OK) != 0) {
        /* a single file (also when neither exists: the message names model.safetensors) */
        if (!(h->shards = calloc(1, sizeof *h->shards))) {
            rc = qb_err(QB_ENOMEM, "'%s': out of memory", dir);
            goto out;
        }
        h->n_shards = 1;
        rc = open_shard(h, dir, "model.safetensors", &h->shards[0]);
        goto out;
    }
    free(h->weights);
    h->weights = index;
    index = NULL;
    if ((rc = qb_st_index_load(h->weights, &h->ix)) < 0)
        goto out;
    if (!(h->shards = calloc((size_t)h->ix->n_shards + 1, sizeof *h->shards))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", dir);
        goto out;
    }
    for (; h->n_shards < h->ix->n_shards; h->n_shards++)
        if ((rc = open_shard(h, dir, h->ix->shards[h->n_shards], &h->shards[h->n_shards])) < 0)
            goto out;
out:
    free(index);
    return rc;
}

/* The tensor called name, or NULL (rc 0) when the model has none; an error when the index
 * promises a tensor its shard lacks. */
static int find(struct hf *h, const char *name, const struct qb_st_tensor **out, const char **file)
{
    int s = 0;

    *out = NULL;
    *file = h->weights;
    if (h->ix && (s = qb_st_index_lookup(h->ix, name)) < 0)
        return 0;
    if (!h->shards[s])
        return 0;
    *out = qb_st_find(h->shards[s], name);
    *file = h->shards[s]->path;
    if (!*out && h->ix)
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' is missing, although '%s' places it there",
                      h->shards[s]->path, name, h->weights);
    return 0;
}

/* Looks up a tensor the model needs, checks its dtype and shape (d1 == 0: a vector of d0)
 * and returns its f32 data, borrowed from the map or converted into the model. */
static int get(struct hf *h, const char *name, int64_t d0, int64_t d1, const float **out)
{
    const struct qb_st_tensor *t;
    int64_t want[2] = {d0, d1};
    int n_dims = d1 ? 2 : 1;
    char have_s[128], want_s[64];
    const char *file;
    int rc;

    if ((rc = find(h, name, &t, &file)) < 0)
        return rc;
    if (!t)
        return qb_err(QB_EFORMAT, "'%s': missing tensor '%s'", h->weights, name);
    if (t->n_dims != n_dims || t->shape[0] != d0 || (n_dims == 2 && t->shape[1] != d1))
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has shape %s, config.json implies %s", file,
                      name, qb_st_shape_str(t->n_dims, t->shape, have_s, sizeof have_s),
                      qb_st_shape_str(n_dims, want, want_s, sizeof want_s));
    if (!t->supported)
        return qb_err(QB_EUNSUP, "'%s': tensor '%s' is %s (F32, F16 and BF16 are supported)", file,
                      name, t->dtype_name);
    return qb_model_f32_view(h->m, t->dtype, t->data, (size_t)t->n_elems, out);
}

static int get_layer(struct hf *h, int64_t l, const char *suffix, int64_t d0, int64_t d1,
                     const float **out)
{
    char name[128];
    snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, suffix);
    return get(h, name, d0, d1, out);
}

/* Lists every tensor of the files that qbrief can read, for `qbrief inspect`, and refuses
 * layers past num_hidden_layers: a config that undercounts them would otherwise load as a
 * silently truncated model. */
static int add_inventory(struct hf *h)
{
    const char *pre = "model.layers.";
    int rc;

    for (int s = 0; s < h->n_shards; s++)
        for (int64_t i = 0; i < h->shards[s]->n_tensors; i++) {
            const struct qb_st_tensor *t = &h->shards[s]->tensors[i];
            if (!strncmp(t->name, pre, strlen(pre))) {
                char *end;
                long long l = strtoll(t->name + strlen(pre), &end, 10);
                if (end != t->name + strlen(pre) && *end == '.' && l >= h->m->cfg.n_layers)
                    return qb_err(QB_EFORMAT,
                                  "'%s': tensor '%s' is for layer %lld, but config.json has %lld "
                                  "layers",
                                  h->shards[s]->path, t->name, l, (long long)h->m->cfg.n_layers);
            }
            if (!t->supported || t->n_dims > 4)
                continue;
            if ((rc = qb_model_add_tensor_info(h->m, t->name, t->dtype, t->n_dims, t->shape,
                                               t->nbytes)) < 0)
                return rc;
        }
    return 0;
}

static int load_tokenizer(struct qb_model *m, const char *dir, const struct qb_load_opts *opts)
{
    char *path = NULL;
    int rc = 0;

    if ((rc = qb_model_tokenizer_file(dir, "hf", m->cfg.vocab_size, opts, &path)) < 0)
        return rc;
    if (path)
        rc = qb_tok_load_file(path, m->cfg.vocab_size, &m->tok);
    /* HF pads the embedding past the tokenizer (Qwen2: 151936 rows, 151665 tokens); the
     * other way round the engine would be handed ids it has no row for */
    if (rc == 0 && m->tok && qb_tok_n_vocab(m->tok) > m->cfg.vocab_size)
        rc = qb_err(QB_EFORMAT, "'%s': tokenizer has %lld tokens but the model only %lld", dir,
                    (long long)qb_tok_n_vocab(m->tok), (long long)m->cfg.vocab_size);
    free(path);
    return rc;
}

int qb_load_hf(const char *dir, const struct qb_load_opts *opts, struct qb_model **out)
{
    struct hf h = {0};
    struct qb_config *c;
    char *cfg_path = NULL;
    int64_t d, q, kv, hid, v;
    int rc;

    *out = NULL;
    if (!(h.m = qb_model_new(dir, "hf")) || !(cfg_path = qb_path_join(dir, "config.json"))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", dir);
        goto fail;
    }
    c = &h.m->cfg;
    if ((rc = qb_hf_config_load(cfg_path, c)) < 0 || (rc = open_weights(&h, dir)) < 0 ||
        (rc = add_inventory(&h)) < 0)
        goto fail;

    /* dimensions were bounded by qb_config_check: these products do not overflow */
    d = c->dim;
    q = c->n_heads * c->head_dim;
    kv = c->n_kv_heads * c->head_dim;
    hid = c->hidden_dim;
    v = c->vocab_size;
    if (!(h.m->layers = calloc((size_t)c->n_layers, sizeof *h.m->layers))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", dir);
        goto fail;
    }
    qb_progress("loading", 0, c->n_layers);
    if ((rc = get(&h, "model.embed_tokens.weight", v, d, &h.m->tok_embd)) < 0 ||
        (rc = get(&h, "model.norm.weight", d, 0, &h.m->out_norm)) < 0)
        goto fail;
    for (int64_t l = 0; l < c->n_layers; l++) {
        struct qb_layer *y = &h.m->layers[l];
        if ((rc = get_layer(&h, l, "input_layernorm.weight", d, 0, &y->attn_norm)) < 0 ||
            (rc = get_layer(&h, l, "self_attn.q_proj.weight", q, d, &y->wq)) < 0 ||  // (q, d)
            (rc = get_layer(&h, l, "self_attn.k_proj.weight", kv, d, &y->wk)) < 0 || // (kv, d)
            (rc = get_layer(&h, l, "self_attn.v_proj.weight", kv, d, &y->wv)) < 0 || // (kv, d)
            (rc = get_layer(&h, l, "self_attn.o_proj.weight", d, q, &y->wo)) < 0 ||  // (d, q)
            (rc = get_layer(&h, l, "post_attention_layernorm.weight", d, 0, &y->ffn_norm)) < 0 ||
            (rc = get_layer(&h, l, "mlp.gate_proj.weight", hid, d, &y->w_gate)) < 0 || // (hid, d)
            (rc = get_layer(&h, l, "mlp.up_proj.weight", hid, d, &y->w_up)) < 0 ||     // (hid, d)
            (rc = get_layer(&h, l, "mlp.down_proj.weight", d, hid, &y->w_down)) < 0)   // (d, hid)
            goto fail;
        if (c->has_qkv_bias &&
            ((rc = get_layer(&h, l, "self_attn.q_proj.bias", q, 0, &y->bq)) < 0 ||
             (rc = get_layer(&h, l, "self_attn.k_proj.bias", kv, 0, &y->bk)) < 0 ||
             (rc = get_layer(&h, l, "self_attn.v_proj.bias", kv, 0, &y->bv)) < 0))
            goto fail;
        if (c->has_qk_norm &&
            ((rc = get_layer(&h, l, "self_attn.q_norm.weight", c->head_dim, 0, &y->q_norm)) < 0 ||
             (rc = get_layer(&h, l, "self_attn.k_norm.weight", c->head_dim, 0, &y->k_norm)) < 0))
            goto fail;
        qb_progress("loading", l + 1, c->n_layers);
    }

    /* output head: lm_head unless tied; a checkpoint without one ties it, as transformers
     * does for the models that omit it */
    {
        const struct qb_st_tensor *t = NULL;
        const char *file;
        if (!c->tied_embeddings && (rc = find(&h, "lm_head.weight", &t, &file)) < 0)
            goto fail;
        if (t) {
            if ((rc = get(&h, "lm_head.weight", v, d, &h.m->output)) < 0)
                goto fail;
        } else {
            c->tied_embeddings = 1;
            h.m->output = h.m->tok_embd;
        }
    }
    if ((rc = load_tokenizer(h.m, dir, opts)) < 0 ||
        (rc = qb_hf_chat_template(dir, &h.m->chat_template)) < 0)
        goto fail;

    *out = h.m;
    h.m = NULL;
fail:
    for (int s = 0; s < h.n_shards; s++)
        qb_st_free(h.shards[s]);
    free(h.shards);
    qb_st_index_free(h.ix);
    free(h.weights);
    free(cfg_path);
    qb_model_free(h.m);
    return rc;
}
