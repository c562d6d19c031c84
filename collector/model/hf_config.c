/* hf_config: config.json -> struct qb_config (see hf_config.h). Keys and defaults follow
 * transformers' configuration_llama.py, configuration_mistral.py, configuration_qwen2.py. */
#include "collector/model/hf_config.h"

#include "kernels/base/err.h"
#include "kernels/base/fileio.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *cls;  /* "architectures" entry */
    const char *type; /* "model_type" */
    int qkv_bias, qk_norm;
    double rope_theta;   /* default when the file has none */
    long long head_dim;  /* default when the file has none; 0: hidden_size / heads */
    const char *refused; /* non-NULL: recognised, not run; what is missing */
} archs[] = {
    {"LlamaForCausalLM", "llama", 0, 0, 10000.0, 0, NULL},
    {"MistralForCausalLM", "mistral", 0, 0, 10000.0, 0, NULL},
    {"Qwen2ForCausalLM", "qwen2", 1, 0, 1000000.0, 0, NULL},
    {"Qwen3ForCausalLM", "qwen3", 0, 1, 10000.0, 128, NULL},
    {"Gemma2ForCausalLM", "gemma2", 0, 0, 10000.0, 0,
     "GeGLU, embedding scaling, 1+w RMSNorm, post-norms and logit soft-capping"},
    {"Gemma3ForCausalLM", "gemma3_text", 0, 0, 10000.0, 0,
     "GeGLU, embedding scaling, 1+w RMSNorm, post-norms, q/k norms and per-layer RoPE bases"},
    {"Gemma3ForConditionalGeneration", "gemma3", 0, 0, 10000.0, 0,
     "the vision tower, GeGLU, embedding scaling, 1+w RMSNorm and post-norms"},
};
#define N_ARCHS (int)(sizeof archs / sizeof archs[0])

/* Reads integer key into *out; absent or null gives def, or an error when def < 0. */
static int get_int(json_t *root, const char *path, const char *key, long long def, long long lo,
                   long long hi, int64_t *out)
{
    json_t *v = json_object_get(root, key);
    long long x;

    if (!v || json_is_null(v)) {
        if (def < 0)
            return qb_err(QB_EFORMAT, "'%s': missing '%s'", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return qb_err(QB_EFORMAT, "'%s': '%s' is not an integer", path, key);
    x = json_integer_value(v);
    if (x < lo || x > hi)
        return qb_err(QB_EFORMAT, "'%s': '%s' = %lld is outside [%lld, %lld]", path, key, x, lo,
                      hi);
    *out = x;
    return 0;
}

/* Reads a number in (lo, hi] into *out; absent or null gives def. */
static int get_num(json_t *obj, const char *path, const char *key, double def, double lo, double hi,
                   double *out)
{
    json_t *v = json_object_get(obj, key);
    double x;

    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v))
        return qb_err(QB_EFORMAT, "'%s': '%s' is not a number", path, key);
    x = json_number_value(v);
    if (!(x > lo && x <= hi))
        return qb_err(QB_EFORMAT, "'%s': '%s' = %g is outside (%g, %g]", path, key, x, lo, hi);
    *out = x;
    return 0;
}

/* Reads a boolean key; absent or null gives def. */
static int get_bool(json_t *root, const char *path, const char *key, int def, int *out)
{
    json_t *v = json_object_get(root, key);

    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return qb_err(QB_EFORMAT, "'%s': '%s' is not true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

/* The rope type of a rope_scaling / rope_parameters object ("default" when unnamed). */
static int rope_type(json_t *obj, const char *path, const char *key, const char **out)
{
    json_t *t;

    if (!json_is_object(obj))
        return qb_err(QB_EFORMAT, "'%s': '%s' is not an object or null", path, key);
    t = json_object_get(obj, "rope_type");
    if (!t)
        t = json_object_get(obj, "type");
    if (t && !json_is_string(t))
        return qb_err(QB_EFORMAT, "'%s': '%s' has a rope type that is not a string", path, key);
    *out = t ? json_string_value(t) : "default";
    return 0;
}

/* rope_scaling / rope_parameters -> c->rope_scale; "default" (or no type) is no scaling.
 * c->max_seq_len must hold max_position_embeddings. */
static int rope_scaling(json_t *obj, const char *path, const char *key, struct qb_config *c)
{
    static const struct {
        const char *name;
        enum qb_rope_scaling type;
    } types[] = {
        {"default", QB_ROPE_SCALE_NONE},    {"linear", QB_ROPE_SCALE_LINEAR},
        {"dynamic", QB_ROPE_SCALE_DYNAMIC}, {"yarn", QB_ROPE_SCALE_YARN},
        {"llama3", QB_ROPE_SCALE_LLAMA3},
    };
    struct qb_rope_scale *s = &c->rope_scale;
    double factor, lo, hi, bf, bs, af, ms, msa;
    int64_t orig = 0;
    const char *rt = "default";
    int rc, k, trunc = 1;

    if ((rc = rope_type(obj, path, key, &rt)) < 0)
        return rc;
    for (k = 0; k < (int)(sizeof types / sizeof types[0]); k++)
        if (!strcmp(rt, types[k].name))
            break;
    if (k == (int)(sizeof types / sizeof types[0]))
        return qb_err(QB_EUNSUP,
                      "'%s': %s type '%.32s' is not supported (default, linear, dynamic, yarn "
                      "and llama3 are)",
                      path, key, rt);
    memset(s, 0, sizeof *s);
    s->type = types[k].type;
    s->max_pos = c->max_seq_len;
    s->truncate = 1;
    if (s->type == QB_ROPE_SCALE_NONE)
        return 0;
    /* factor: required except by yarn, which derives it from the two contexts */
    if ((rc = get_num(obj, path, "factor", -1, -2, 1e6, &factor)) < 0)
        return rc;
    if (factor == -1 && s->type != QB_ROPE_SCALE_YARN)
        return qb_err(QB_EFORMAT, "'%s': %s ('%s') has no 'factor'", path, key, rt);
    if (factor != -1 && !(factor >= 1))
        return qb_err(QB_EFORMAT, "'%s': %s 'factor' = %g is below 1", path, key, factor);
    if ((rc = get_int(obj, path, "original_max_position_embeddings", 0, 1, 1 << 24, &orig)) < 0 ||
        (rc = get_num(obj, path, "low_freq_factor", 1, 0, 1e6, &lo)) < 0 ||
        (rc = get_num(obj, path, "high_freq_factor", 4, 0, 1e6, &hi)) < 0 ||
        (rc = get_num(obj, path, "beta_fast", 32, 0, 1e6, &bf)) < 0 ||
        (rc = get_num(obj, path, "beta_slow", 1, 0, 1e6, &bs)) < 0 ||
        (rc = get_num(obj, path, "attention_factor", 0, -1, 1e3, &af)) < 0 ||
        (rc = get_num(obj, path, "mscale", 0, -1, 1e3, &ms)) < 0 ||
        (rc = get_num(obj, path, "mscale_all_dim", 0, -1, 1e3, &msa)) < 0 ||
        (rc = get_bool(obj, path, "truncate", 1, &trunc)) < 0)
        return rc;
    if (s->type == QB_ROPE_SCALE_LLAMA3 && (!orig || !(hi > lo)))
        return qb_err(QB_EFORMAT,
                      "'%s': %s ('llama3') needs original_max_position_embeddings and "
                      "high_freq_factor > low_freq_factor",
                      path, key);
    if (s->type == QB_ROPE_SCALE_YARN && factor == -1 && !orig)
        return qb_err(QB_EFORMAT,
                      "'%s': %s ('yarn') has neither 'factor' nor "
                      "original_max_position_embeddings",
                      path, key);
    s->factor = factor == -1 ? 0 : (float)factor;
    s->orig_ctx = orig;
    s->low_freq_factor = (float)lo;
    s->high_freq_factor = (float)hi;
    s->beta_fast = (float)bf;
    s->beta_slow = (float)bs;
    s->attn_factor = (float)af;
    s->mscale = (float)ms;
    s->mscale_all_dim = (float)msa;
    s->truncate = trunc;
    return 0;
}

/* Which layers attend through a sliding window, as transformers decides: Mistral whenever
 * sliding_window is set (4096 when the key is absent), Qwen2/Qwen3 only with
 * use_sliding_window and then in layers >= max_window_layers; an explicit layer_types list
 * wins, when it is a run of full layers followed by sliding ones. */
static int sliding_window(json_t *root, const char *path, struct qb_config *c)
{
    json_t *lt = json_object_get(root, "layer_types");
    int64_t window = 0, from = 0;
    int rc, flag = 0;

    if ((rc = get_int(root, path, "sliding_window", 0, 0, 1 << 30, &window)) < 0)
        return rc;
    if (!strcmp(c->arch, "mistral") && !json_object_get(root, "sliding_window"))
        window = 4096;
    if (!strcmp(c->arch, "qwen2") || !strcmp(c->arch, "qwen3")) {
        if ((rc = get_bool(root, path, "use_sliding_window", 0, &flag)) < 0 ||
            (rc = get_int(root, path, "max_window_layers", 28, 0, 1 << 20, &from)) < 0)
            return rc;
        if (!flag)
            window = 0;
    }
    if (!strcmp(c->arch, "llama"))
        window = 0;
    if (window > 0 && lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int64_t)json_array_size(lt) != c->n_layers)
            return qb_err(QB_EFORMAT, "'%s': 'layer_types' is not a list of %lld entries", path,
                          (long long)c->n_layers);
        from = c->n_layers;
        for (size_t i = 0; i < json_array_size(lt); i++) {
            const char *t = json_string_value(json_array_get(lt, i));
            int sliding = t && !strcmp(t, "sliding_attention");
            if (!t || (!sliding && strcmp(t, "full_attention")))
                return qb_err(QB_EFORMAT, "'%s': 'layer_types' holds an unknown layer type", path);
            if (sliding && from == c->n_layers)
                from = (int64_t)i;
            if (!sliding && from < c->n_layers)
                return qb_err(QB_EUNSUP,
                              "'%s': 'layer_types' alternates full and sliding attention, which "
                              "is not supported (full layers, then sliding ones, are)",
                              path);
        }
    }
    if (from >= c->n_layers)
        window = 0; /* no layer uses it */
    c->sliding_window = window;
    c->swa_from_layer = window ? from : 0;
    return 0;
}

static int find_arch(json_t *root, const char *path, int *out)
{
    json_t *a = json_object_get(root, "architectures"), *mt = json_object_get(root, "model_type");
    const char *first = NULL;
    size_t i;

    if (a && !json_is_null(a)) {
        if (!json_is_array(a))
            return qb_err(QB_EFORMAT, "'%s': 'architectures' is not a list", path);
        for (i = 0; i < json_array_size(a); i++) {
            const char *s = json_string_value(json_array_get(a, i));
            if (!s)
                return qb_err(QB_EFORMAT, "'%s': 'architectures' holds a non-string", path);
            if (!first)
                first = s;
            for (int k = 0; k < N_ARCHS; k++)
                if (!strcmp(s, archs[k].cls)) {
                    *out = k;
                    return 0;
                }
        }
    }
    if (first)
        return qb_err(QB_EUNSUP,
                      "'%s': unsupported architecture '%.64s' (LlamaForCausalLM, "
                      "MistralForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM are supported)",
                      path, first);
    if (mt && !json_is_null(mt)) {
        if (!json_is_string(mt))
            return qb_err(QB_EFORMAT, "'%s': 'model_type' is not a string", path);
        for (int k = 0; k < N_ARCHS; k++)
            if (!strcmp(json_string_value(mt), archs[k].type)) {
                *out = k;
                return 0;
            }
        return qb_err(QB_EUNSUP,
                      "'%s': unsupported model_type '%.64s' (llama, mistral, qwen2 and qwen3 "
                      "are supported)",
                      path, json_string_value(mt));
    }
    return qb_err(QB_EFORMAT, "'%s': neither 'architectures' nor 'model_type' is given", path);
}

static int parse(json_t *root, const char *path, struct qb_config *c)
{
    json_t *rs = json_object_get(root, "rope_scaling");
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *act = json_object_get(root, "hidden_act");
    double theta, eps, prf;
    int a = 0, rc, flag;

    if ((rc = find_arch(root, path, &a)) < 0)
        return rc;
    if (archs[a].refused)
        return qb_err(QB_EUNSUP, "'%s': %s is recognised but not supported: the engine lacks %s",
                      path, archs[a].cls, archs[a].refused);
    snprintf(c->arch, sizeof c->arch, "%s", archs[a].type);

    if ((rc = get_int(root, path, "hidden_size", -1, 1, 1 << 20, &c->dim)) < 0 ||
        (rc = get_int(root, path, "intermediate_size", -1, 1, 1 << 22, &c->hidden_dim)) < 0 ||
        (rc = get_int(root, path, "num_hidden_layers", -1, 1, 4096, &c->n_layers)) < 0 ||
        (rc = get_int(root, path, "num_attention_heads", -1, 1, 4096, &c->n_heads)) < 0 ||
        (rc = get_int(root, path, "num_key_value_heads", c->n_heads, 1, c->n_heads,
                      &c->n_kv_heads)) < 0 ||
        (rc = get_int(root, path, "vocab_size", -1, 1, 1 << 24, &c->vocab_size)) < 0 ||
        (rc = get_int(root, path, "max_position_embeddings", 2048, 1, 1 << 30, &c->max_seq_len)) <
            0)
        return rc;
    if (c->n_heads % c->n_kv_heads)
        return qb_err(QB_EFORMAT,
                      "'%s': num_attention_heads (%lld) is not a multiple of "
                      "num_key_value_heads (%lld)",
                      path, (long long)c->n_heads, (long long)c->n_kv_heads);
    if ((!json_object_get(root, "head_dim") || json_is_null(json_object_get(root, "head_dim"))) &&
        archs[a].head_dim) {
        c->head_dim = archs[a].head_dim;
    } else if (!json_object_get(root, "head_dim") ||
               json_is_null(json_object_get(root, "head_dim"))) {
        if (c->dim % c->n_heads)
            return qb_err(QB_EFORMAT,
                          "'%s': hidden_size (%lld) is not a multiple of num_attention_heads "
                          "(%lld)",
                          path, (long long)c->dim, (long long)c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    } else if ((rc = get_int(root, path, "head_dim", -1, 1, 4096, &c->head_dim)) < 0) {
        return rc;
    }
    if (c->head_dim % 2)
        return qb_err(QB_EFORMAT, "'%s': head_dim (%lld) is odd; RoPE rotates pairs", path,
                      (long long)c->head_dim);

    /* RoPE: a base and a scaling; transformers >= 5 moves both into rope_parameters */
    theta = archs[a].rope_theta;
    if ((rc = get_num(root, path, "rope_theta", theta, 0, 1e12, &theta)) < 0)
        return rc;
    if (rp && !json_is_null(rp)) {
        if (!json_is_object(rp))
            return qb_err(QB_EFORMAT, "'%s': 'rope_parameters' is not an object or null", path);
        if ((rc = get_num(rp, path, "rope_theta", theta, 0, 1e12, &theta)) < 0 ||
            (rc = rope_scaling(rp, path, "rope_parameters", c)) < 0)
            return rc;
    } else if (rs && !json_is_null(rs) && (rc = rope_scaling(rs, path, "rope_scaling", c)) < 0) {
        return rc;
    }
    if ((rc = get_num(root, path, "partial_rotary_factor", 1, 0, 1, &prf)) < 0)
        return rc;
    if (prf != 1)
        return qb_err(QB_EUNSUP, "'%s': partial_rotary_factor %g is not supported (1 is)", path,
                      prf);
    if ((rc = get_num(root, path, "rms_norm_eps", 1e-6, 0, 0.5, &eps)) < 0)
        return rc;
    c->rope_theta = (float)theta;
    c->norm_eps = (float)eps;
    c->rope_style = QB_ROPE_HALF;
    c->has_qkv_bias = archs[a].qkv_bias;
    c->has_qk_norm = archs[a].qk_norm;
    if ((rc = get_bool(root, path, "tie_word_embeddings", 0, &c->tied_embeddings)) < 0)
        return rc;

    /* what the engine does not compute */
    if (act && !json_is_null(act)) {
        if (!json_is_string(act))
            return qb_err(QB_EFORMAT, "'%s': 'hidden_act' is not a string", path);
        if (strcmp(json_string_value(act), "silu") && strcmp(json_string_value(act), "swish"))
            return qb_err(QB_EUNSUP, "'%s': activation '%.32s' is not supported (silu is)", path,
                          json_string_value(act));
    }
    if (!archs[a].qkv_bias) {
        if ((rc = get_bool(root, path, "attention_bias", 0, &flag)) < 0)
            return rc;
        if (flag)
            return qb_err(QB_EUNSUP, "'%s': attention_bias is not supported", path);
    }
    if ((rc = get_bool(root, path, "mlp_bias", 0, &flag)) < 0)
        return rc;
    if (flag)
        return qb_err(QB_EUNSUP, "'%s': mlp_bias is not supported", path);

    if ((rc = sliding_window(root, path, c)) < 0)
        return rc;
    /* a scaled RoPE runs past the context it was trained for: that is its point */
    if (c->rope_scale.type == QB_ROPE_SCALE_LINEAR || c->rope_scale.type == QB_ROPE_SCALE_DYNAMIC ||
        (c->rope_scale.type == QB_ROPE_SCALE_YARN && c->rope_scale.factor > 0)) {
        int64_t orig = c->rope_scale.orig_ctx > 0 ? c->rope_scale.orig_ctx : c->max_seq_len;
        double ext = (double)orig * c->rope_scale.factor;
        if (ext > (double)c->max_seq_len && ext < (double)(1 << 24))
            c->max_seq_len = (int64_t)ext;
    }
    return 0;
}

int qb_hf_config_parse(const char *text, size_t len, const char *path, struct qb_config *out)
{
    struct qb_config c;
    json_error_t jerr;
    json_t *root;
    int rc;

    memset(&c, 0, sizeof c);
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return qb_err(QB_EFORMAT, "'%s': not valid JSON: %s (line %d)", path, jerr.text, jerr.line);
    if (!json_is_object(root))
        rc = qb_err(QB_EFORMAT, "'%s': not a JSON object", path);
    else if ((rc = parse(root, path, &c)) == 0)
        rc = qb_config_check(&c, path);
    json_decref(root);
    if (rc == 0)
        *out = c;
    return rc;
}

int qb_hf_config_load(const char *path, struct qb_config *out)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if ((rc = qb_read_file(path, (size_t)16 << 20, &text, &len)) < 0)
        return rc;
    rc = qb_hf_config_parse(text, len, path, out);
    free(text);
    return rc;
}

int qb_hf_chat_template(const char *dir, char **out)
{
    char *path = NULL, *text = NULL;
    json_error_t jerr;
    json_t *root = NULL, *ct;
    size_t len = 0;
    int rc = 0;

    *out = NULL;
    /* chat_template.jinja (transformers >= 4.47 saves it there) wins */
    if (!(path = qb_path_join(dir, "chat_template.jinja")))
        return qb_err(QB_ENOMEM, "'%s': out of memory", dir);
    if (access(path, F_OK) == 0) {
        if ((rc = qb_read_file(path, (size_t)1 << 20, &text, &len)) == 0 && memchr(text, 0, len))
            rc = qb_err(QB_EFORMAT, "'%s': contains a NUL byte", path);
        if (rc == 0)
            *out = text;
        else
            free(text);
        free(path);
        return rc;
    }
    free(path);
    if (!(path = qb_path_join(dir, "tokenizer_config.json")))
        return qb_err(QB_ENOMEM, "'%s': out of memory", dir);
    if (access(path, F_OK) != 0)
        goto out;
    if ((rc = qb_read_file(path, (size_t)64 << 20, &text, &len)) < 0)
        goto out;
    if (!(root = json_loadb(text, len, 0, &jerr)) || !json_is_object(root)) {
        rc = qb_err(QB_EFORMAT, "'%s': not a JSON object (line %d: %s)", path, jerr.line,
                    root ? "" : jerr.text);
        goto out;
    }
    ct = json_object_get(root, "chat_template");
    if (json_is_array(ct)) { /* [{"name": ..., "template": ...}]: "default", else the first */
        json_t *pick = json_array_get(ct, 0), *e;
        size_t i;
        json_array_foreach(ct, i, e)
        {
            const char *nm = json_string_value(json_object_get(e, "name"));
            if (nm && !strcmp(nm, "default"))
                pick = e;
        }
        ct = json_object_get(pick, "template");
    }
    if (ct && !json_is_null(ct) && !json_is_string(ct)) {
        rc = qb_err(QB_EFORMAT, "'%s': 'chat_template' is not a string", path);
        goto out;
    }
    if (json_is_string(ct) && !(*out = strdup(json_string_value(ct))))
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
out:
    json_decref(root);
    free(text);
    free(path);
    return rc;
}
