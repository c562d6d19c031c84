/* hf_config: config.json -> struct qb_config (see hf_config.h). Keys and defaults follow
 * transformers' configuration_llama.py, configuration_mistral.py, configuration_qwen2.py. */
#include "collector/model/hf_config.h"

#include "kernels/base/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *cls;  /* "architectures" entry */
    const char *type; /* "model_type" */
    int qkv_bias;
    double rope_theta; /* default when the file has none */
} archs[] = {
    {"LlamaForCausalLM", "llama", 0, 10000.0},
    {"MistralForCausalLM", "mistral", 0, 10000.0},
    {"Qwen2ForCausalLM", "qwen2", 1, 1000000.0},
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
                      "MistralForCausalLM and Qwen2ForCausalLM are supported)",
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
                      "'%s': unsupported model_type '%.64s' (llama, mistral and qwen2 are "
                      "supported)",
                      path, json_string_value(mt));
    }
    return qb_err(QB_EFORMAT, "'%s': neither 'architectures' nor 'model_type' is given", path);
}

static int parse(json_t *root, const char *path, struct qb_config *c)
{
    json_t *rs = json_object_get(root, "rope_scaling");
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *act = json_object_get(root, "hidden_act");
    int64_t window = 0;
    double theta, eps;
    const char *rt;
    int a = 0, rc, flag;

    if ((rc = find_arch(root, path, &a)) < 0)
        return rc;
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
    if (!json_object_get(root, "head_dim") || json_is_null(json_object_get(root, "head_dim"))) {
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

    /* RoPE: a base, no scaling. transformers >= 5 moves the base into rope_parameters. */
    theta = archs[a].rope_theta;
    if (rp && !json_is_null(rp)) {
        if ((rc = rope_type(rp, path, "rope_parameters", &rt)) < 0 ||
            (rc = get_num(rp, path, "rope_theta", theta, 0, 1e12, &theta)) < 0)
            return rc;
        if (strcmp(rt, "default"))
            return qb_err(QB_EUNSUP, "'%s': scaled RoPE ('%.32s') is not supported yet", path, rt);
    }
    if ((rc = get_num(root, path, "rope_theta", theta, 0, 1e12, &theta)) < 0)
        return rc;
    if (rs && !json_is_null(rs)) {
        if ((rc = rope_type(rs, path, "rope_scaling", &rt)) < 0)
            return rc;
        if (strcmp(rt, "default"))
            return qb_err(QB_EUNSUP, "'%s': rope_scaling ('%.32s') is not supported yet", path, rt);
    }
    if ((rc = get_num(root, path, "rms_norm_eps", 1e-6, 0, 0.5, &eps)) < 0)
        return rc;
    c->rope_theta = (float)theta;
    c->norm_eps = (float)eps;
    c->rope_style = QB_ROPE_HALF;
    c->has_qkv_bias = archs[a].qkv_bias;
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

    /* Sliding-window attention equals full attention up to the window: cap the context
     * there rather than compute something else. Mistral applies it whenever set (4096 when
     * the key is absent); Qwen2 only with use_sliding_window. */
    if ((rc = get_int(root, path, "sliding_window", 0, 0, 1 << 30, &window)) < 0)
        return rc;
    if (!strcmp(c->arch, "mistral") && !json_object_get(root, "sliding_window"))
        window = 4096;
    if (!strcmp(c->arch, "qwen2")) {
        if ((rc = get_bool(root, path, "use_sliding_window", 0, &flag)) < 0)
            return rc;
        if (!flag)
            window = 0;
    }
    if (!strcmp(c->arch, "llama"))
        window = 0;
    if (window > 0 && window < c->max_seq_len)
        c->max_seq_len = window;
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
