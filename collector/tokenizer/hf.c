/* tok_hf: Hugging Face tokenizer.json (model type BPE) read with jansson into the BPE
 * pipeline of tok_bpe.c.
 *
 * Must agree with the `tokenizers` library's serialization: model {vocab, merges as
 * "a b" strings or [a, b] pairs, byte_fallback, unk_token, ignore_merges, fuse_unk},
 * added_tokens, normalizer, pre_tokenizer, decoder and post_processor objects tagged
 * by "type". Every field is hostile: a wrong type, a missing field, an id out of range,
 * a duplicate id or a merge naming an unknown piece is reported as QB_EFORMAT with
 * the file's name; a well-formed component we do not implement is QB_EUNSUP naming it.
 * BOS/EOS come from the post_processor template (tokenizer_config.json's add_bos_token
 * is not read). */
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/tokenizer/tokenizer_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_JSON ((size_t)256 << 20)
#define TOK_MAX_ADDED (1 << 20)
#define TOK_MAX_DEPTH 8

struct hf {
    const char *src;
    struct qb_tokenizer *t;
};

/* ---- typed field access ---- */

static int get_bool(struct hf *h, json_t *obj, const char *where, const char *key, int def,
                    int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return qb_err(QB_EFORMAT, "'%s': %s.%s is not a boolean", h->src, where, key);
    *out = json_is_true(v);
    return 0;
}

/* A string field; *s NULL when absent or null and !required. */
static int get_str(struct hf *h, json_t *obj, const char *where, const char *key, int required,
                   const char **s, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    *s = NULL;
    *len = 0;
    if (!v || json_is_null(v)) {
        if (required)
            return qb_err(QB_EFORMAT, "'%s': %s.%s is missing", h->src, where, key);
        return 0;
    }
    if (!json_is_string(v))
        return qb_err(QB_EFORMAT, "'%s': %s.%s is not a string", h->src, where, key);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static int get_int(struct hf *h, json_t *obj, const char *where, const char *key, int64_t def,
                   int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    json_int_t x;
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return qb_err(QB_EFORMAT, "'%s': %s.%s is not an integer", h->src, where, key);
    x = json_integer_value(v);
    if (x < lo || x > hi)
        return qb_err(QB_EFORMAT, "'%s': %s.%s = %lld is outside %lld..%lld", h->src, where, key,
                      (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* The "type" tag of a component object. */
static int get_type(struct hf *h, json_t *obj, const char *what, const char **type)
{
    size_t len;
    int rc;
    if (!json_is_object(obj))
        return qb_err(QB_EFORMAT, "'%s': %s is not an object", h->src, what);
    if ((rc = get_str(h, obj, what, "type", 1, type, &len)) < 0)
        return rc;
    return 0;
}

/* {"String": "..."} or {"Regex": "..."} */
static int get_pattern(struct hf *h, json_t *obj, const char *where, struct tok_pattern *p)
{
    json_t *pat = json_object_get(obj, "pattern"), *v;
    if (!json_is_object(pat))
        return qb_err(QB_EFORMAT, "'%s': %s.pattern is missing or not an object", h->src, where);
    if ((v = json_object_get(pat, "String")) != NULL) {
        if (!json_is_string(v))
            return qb_err(QB_EFORMAT, "'%s': %s.pattern.String is not a string", h->src, where);
        if (json_string_length(v) > TOK_MAX_PATTERN)
            return qb_err(QB_EFORMAT, "'%s': %s.pattern is too long", h->src, where);
        p->lit_len = json_string_length(v);
        if (!(p->lit = dup_bytes(json_string_value(v), p->lit_len)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
        return 0;
    }
    if ((v = json_object_get(pat, "Regex")) != NULL) {
        if (!json_is_string(v))
            return qb_err(QB_EFORMAT, "'%s': %s.pattern.Regex is not a string", h->src, where);
        p->known = tok_regex_gguf_name(json_string_value(v), json_string_length(v));
        return tok_regex_compile(json_string_value(v), json_string_length(v), h->src, "regex",
                                 &p->re);
    }
    return qb_err(QB_EFORMAT, "'%s': %s.pattern is neither String nor Regex", h->src, where);
}

/* One character (as tokenizers' Metaspace wants), copied into buf[8]. */
static int get_char(struct hf *h, json_t *obj, const char *where, const char *key, const char *def,
                    char *buf, size_t *len)
{
    const char *s;
    size_t n;
    int rc;
    if ((rc = get_str(h, obj, where, key, 0, &s, &n)) < 0)
        return rc;
    if (!s) {
        s = def;
        n = strlen(def);
    }
    if (n == 0 || n > 4 || tok_utf8_len((const unsigned char *)s, n) != n)
        return qb_err(QB_EFORMAT, "'%s': %s.%s is not one character", h->src, where, key);
    memcpy(buf, s, n);
    buf[n] = '\0';
    *len = n;
    return 0;
}

static int get_prepend(struct hf *h, json_t *obj, const char *where, enum tok_prepend *out)
{
    const char *s;
    size_t n;
    int rc, aps;
    if ((rc = get_str(h, obj, where, "prepend_scheme", 0, &s, &n)) < 0)
        return rc;
    if (s) {
        if (strcmp(s, "always") == 0)
            *out = TOK_PREPEND_ALWAYS;
        else if (strcmp(s, "first") == 0)
            *out = TOK_PREPEND_FIRST;
        else if (strcmp(s, "never") == 0)
            *out = TOK_PREPEND_NEVER;
        else
            return qb_err(QB_EFORMAT,
                          "'%s': %s.prepend_scheme '%.32s' is not always, first or never", h->src,
                          where, s);
        return 0;
    }
    /* older files: add_prefix_space */
    if ((rc = get_bool(h, obj, where, "add_prefix_space", 1, &aps)) < 0)
        return rc;
    *out = aps ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
    return 0;
}

static int get_behavior(struct hf *h, json_t *obj, const char *where, int required,
                        enum tok_split_behavior *out)
{
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    const char *s;
    size_t n;
    int rc;
    if ((rc = get_str(h, obj, where, "behavior", required, &s, &n)) < 0)
        return rc;
    if (!s) {
        *out = TOK_SPLIT_ISOLATED;
        return 0;
    }
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum tok_split_behavior)i;
            return 0;
        }
    }
    return qb_err(QB_EFORMAT, "'%s': %s.behavior '%.32s' is unknown", h->src, where, s);
}

/* The array of a Sequence component. */
static int get_seq(struct hf *h, json_t *obj, const char *where, const char *key, json_t **arr)
{
    *arr = json_object_get(obj, key);
    if (!json_is_array(*arr))
        return qb_err(QB_EFORMAT, "'%s': %s.%s is missing or not an array", h->src, where, key);
    return 0;
}

/* ---- normalizers, pre-tokenizers, decoders ---- */

static int grow_stage(struct hf *h, void **arr, int *n, size_t size, const char *what)
{
    void *na;
    if (*n >= TOK_MAX_STAGES)
        return qb_err(QB_EFORMAT, "'%s': more than %d %s", h->src, TOK_MAX_STAGES, what);
    na = realloc(*arr, (size_t)(*n + 1) * size);
    if (!na)
        return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
    memset((char *)na + (size_t)*n * size, 0, size);
    *arr = na;
    (*n)++;
    return 0;
}

static int parse_norm(struct hf *h, json_t *j, int depth)
{
    struct qb_tokenizer *t = h->t;
    const char *type, *s;
    size_t n;
    struct tok_norm *nm;
    int rc;

    if (!j || json_is_null(j))
        return 0;
    if (depth > TOK_MAX_DEPTH)
        return qb_err(QB_EFORMAT, "'%s': normalizers nested too deeply", h->src);
    if ((rc = get_type(h, j, "normalizer", &type)) < 0)
        return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr, *x;
        size_t i;
        if ((rc = get_seq(h, j, "normalizer", "normalizers", &arr)) < 0)
            return rc;
        json_array_foreach(arr, i, x) if ((rc = parse_norm(h, x, depth + 1)) < 0) return rc;
        return 0;
    }
    if ((rc = grow_stage(h, (void **)&t->norm, &t->n_norm, sizeof *t->norm, "normalizers")) < 0)
        return rc;
    nm = &t->norm[t->n_norm - 1];
    if (strcmp(type, "Prepend") == 0) {
        nm->kind = TOK_NORM_PREPEND;
        if ((rc = get_str(h, j, "normalizer Prepend", "prepend", 1, &s, &n)) < 0)
            return rc;
        if (n > TOK_MAX_PATTERN)
            return qb_err(QB_EFORMAT, "'%s': normalizer Prepend.prepend is too long", h->src);
        nm->str_len = n;
        if (!(nm->str = dup_bytes(s, n)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
    } else if (strcmp(type, "Replace") == 0) {
        nm->kind = TOK_NORM_REPLACE;
        if ((rc = get_pattern(h, j, "normalizer Replace", &nm->pat)) < 0 ||
            (rc = get_str(h, j, "normalizer Replace", "content", 1, &s, &n)) < 0)
            return rc;
        if (n > TOK_MAX_PATTERN)
            return qb_err(QB_EFORMAT, "'%s': normalizer Replace.content is too long", h->src);
        nm->str_len = n;
        if (!(nm->str = dup_bytes(s, n)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
    } else if (strcmp(type, "NFC") == 0) {
        nm->kind = TOK_NORM_NFC;
    } else if (strcmp(type, "NFKC") == 0) {
        nm->kind = TOK_NORM_NFKC;
    } else if (strcmp(type, "NFD") == 0) {
        nm->kind = TOK_NORM_NFD;
    } else if (strcmp(type, "NFKD") == 0) {
        nm->kind = TOK_NORM_NFKD;
    } else if (strcmp(type, "Lowercase") == 0) {
        nm->kind = TOK_NORM_LOWER;
    } else if (strcmp(type, "Strip") == 0) {
        nm->kind = TOK_NORM_STRIP;
        if ((rc = get_bool(h, j, "normalizer Strip", "strip_left", 1, &nm->left)) < 0 ||
            (rc = get_bool(h, j, "normalizer Strip", "strip_right", 1, &nm->right)) < 0)
            return rc;
    } else {
        return qb_err(QB_EUNSUP, "'%s': normalizer '%.64s' is not supported", h->src, type);
    }
    return 0;
}

static int parse_pre(struct hf *h, json_t *j, int depth)
{
    struct qb_tokenizer *t = h->t;
    const char *type, *re = NULL;
    struct tok_pre *p;
    int rc;

    if (!j || json_is_null(j))
        return 0;
    if (depth > TOK_MAX_DEPTH)
        return qb_err(QB_EFORMAT, "'%s': pre-tokenizers nested too deeply", h->src);
    if ((rc = get_type(h, j, "pre_tokenizer", &type)) < 0)
        return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr, *x;
        size_t i;
        if ((rc = get_seq(h, j, "pre_tokenizer", "pretokenizers", &arr)) < 0)
            return rc;
        json_array_foreach(arr, i, x) if ((rc = parse_pre(h, x, depth + 1)) < 0) return rc;
        return 0;
    }
    if ((rc = grow_stage(h, (void **)&t->pre, &t->n_pre, sizeof *t->pre, "pre-tokenizers")) < 0)
        return rc;
    p = &t->pre[t->n_pre - 1];
    p->kind = TOK_PRE_SPLIT;
    p->behavior = TOK_SPLIT_ISOLATED;
    if (strcmp(type, "ByteLevel") == 0) {
        p->kind = TOK_PRE_BYTELEVEL;
        if ((rc = get_bool(h, j, "pre_tokenizer ByteLevel", "add_prefix_space", 1,
                           &p->add_prefix_space)) < 0 ||
            (rc = get_bool(h, j, "pre_tokenizer ByteLevel", "use_regex", 1, &p->use_regex)) < 0)
            return rc;
        if (p->use_regex)
            re = tok_re_gpt2;
    } else if (strcmp(type, "Metaspace") == 0) {
        p->kind = TOK_PRE_METASPACE;
        if ((rc = get_char(h, j, "pre_tokenizer Metaspace", "replacement", TOK_SPACE, p->repl,
                           &p->repl_len)) < 0 ||
            (rc = get_prepend(h, j, "pre_tokenizer Metaspace", &p->prepend)) < 0 ||
            (rc = get_bool(h, j, "pre_tokenizer Metaspace", "split", 1, &p->split)) < 0)
            return rc;
    } else if (strcmp(type, "Split") == 0) {
        if ((rc = get_pattern(h, j, "pre_tokenizer Split", &p->pat)) < 0 ||
            (rc = get_behavior(h, j, "pre_tokenizer Split", 1, &p->behavior)) < 0 ||
            (rc = get_bool(h, j, "pre_tokenizer Split", "invert", 0, &p->invert)) < 0)
            return rc;
    } else if (strcmp(type, "Digits") == 0) {
        int ind;
        if ((rc = get_bool(h, j, "pre_tokenizer Digits", "individual_digits", 0, &ind)) < 0)
            return rc;
        re = ind ? "\\p{N}" : "\\p{N}+";
    } else if (strcmp(type, "Punctuation") == 0) {
        if ((rc = get_behavior(h, j, "pre_tokenizer Punctuation", 0, &p->behavior)) < 0)
            return rc;
        /* Rust: is_ascii_punctuation || Unicode punctuation, one character per match */
        re = "[\\p{P}!-/:-@\\[-`{-~]";
    } else if (strcmp(type, "Whitespace") == 0) {
        /* Oniguruma's \w (letters, marks, decimal digits, connectors), spelled out:
         * PCRE2 10.42's \w has no marks and all numbers */
        re = "[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]+|[^\\p{L}\\p{M}\\p{Nd}\\p{Pc}\\s]+";
        p->behavior = TOK_SPLIT_REMOVED;
        p->invert = 1;
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        re = "\\s+";
        p->behavior = TOK_SPLIT_REMOVED;
    } else {
        return qb_err(QB_EUNSUP, "'%s': pre-tokenizer '%.64s' is not supported", h->src, type);
    }
    if (re &&
        (rc = tok_regex_compile(re, strlen(re), h->src, "pre-tokenizer regex", &p->pat.re)) < 0)
        return rc;
    if (re)
        p->pat.known = tok_regex_gguf_name(re, strlen(re));
    return 0;
}

static int parse_dec(struct hf *h, json_t *j, int depth)
{
    struct qb_tokenizer *t = h->t;
    const char *type, *s;
    size_t n;
    struct tok_dec *d;
    int rc;

    if (!j || json_is_null(j))
        return 0;
    if (depth > TOK_MAX_DEPTH)
        return qb_err(QB_EFORMAT, "'%s': decoders nested too deeply", h->src);
    if ((rc = get_type(h, j, "decoder", &type)) < 0)
        return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr, *x;
        size_t i;
        if ((rc = get_seq(h, j, "decoder", "decoders", &arr)) < 0)
            return rc;
        json_array_foreach(arr, i, x) if ((rc = parse_dec(h, x, depth + 1)) < 0) return rc;
        return 0;
    }
    if ((rc = grow_stage(h, (void **)&t->dec, &t->n_dec, sizeof *t->dec, "decoders")) < 0)
        return rc;
    d = &t->dec[t->n_dec - 1];
    if (strcmp(type, "ByteLevel") == 0) {
        d->kind = TOK_DEC_BYTELEVEL;
    } else if (strcmp(type, "Metaspace") == 0) {
        d->kind = TOK_DEC_METASPACE;
        if ((rc = get_char(h, j, "decoder Metaspace", "replacement", TOK_SPACE, d->repl,
                           &d->repl_len)) < 0 ||
            (rc = get_prepend(h, j, "decoder Metaspace", &d->prepend)) < 0)
            return rc;
    } else if (strcmp(type, "Replace") == 0) {
        d->kind = TOK_DEC_REPLACE;
        if ((rc = get_pattern(h, j, "decoder Replace", &d->pat)) < 0 ||
            (rc = get_str(h, j, "decoder Replace", "content", 1, &s, &n)) < 0)
            return rc;
        if (n > TOK_MAX_PATTERN)
            return qb_err(QB_EFORMAT, "'%s': decoder Replace.content is too long", h->src);
        d->str_len = n;
        if (!(d->str = dup_bytes(s, n)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
    } else if (strcmp(type, "ByteFallback") == 0) {
        d->kind = TOK_DEC_BYTEFALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        d->kind = TOK_DEC_FUSE;
    } else if (strcmp(type, "Strip") == 0) {
        char c[8];
        d->kind = TOK_DEC_STRIP;
        if ((rc = get_char(h, j, "decoder Strip", "content", " ", c, &n)) < 0 ||
            (rc = get_int(h, j, "decoder Strip", "start", 0, 0, 1 << 20, &d->start)) < 0 ||
            (rc = get_int(h, j, "decoder Strip", "stop", 0, 0, 1 << 20, &d->stop)) < 0)
            return rc;
        d->str_len = n;
        if (!(d->str = dup_bytes(c, n)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
    } else {
        return qb_err(QB_EUNSUP, "'%s': decoder '%.64s' is not supported", h->src, type);
    }
    return 0;
}

/* ---- post-processor: where BOS/EOS come from ---- */

/* The id of a template's special token: special_tokens[name].ids[0], else the piece. */
static int special_id(struct hf *h, json_t *tp, const char *name, size_t len, int32_t *id)
{
    json_t *st = json_object_get(tp, "special_tokens"), *e, *ids;
    if (json_is_object(st) && (e = json_object_getn(st, name, len)) != NULL) {
        ids = json_object_get(e, "ids");
        if (!json_is_array(ids) || json_array_size(ids) == 0 ||
            !json_is_integer(json_array_get(ids, 0)))
            return qb_err(QB_EFORMAT, "'%s': post_processor special token '%.64s' has no ids",
                          h->src, name);
        json_int_t x = json_integer_value(json_array_get(ids, 0));
        if (x < 0 || x >= h->t->n_vocab)
            return qb_err(QB_EFORMAT,
                          "'%s': post_processor special token '%.64s' has id %lld outside the "
                          "vocabulary (%lld tokens)",
                          h->src, name, (long long)x, (long long)h->t->n_vocab);
        *id = (int32_t)x;
        return 0;
    }
    for (int64_t k = 0; k < h->t->n_added; k++) {
        if (h->t->added[k].len == len && memcmp(h->t->added[k].s, name, len) == 0) {
            *id = h->t->added[k].id;
            return 0;
        }
    }
    if ((*id = tok_lookup(h->t, name, len)) >= 0)
        return 0;
    return qb_err(QB_EFORMAT, "'%s': post_processor special token '%.64s' is not in the vocabulary",
                  h->src, name);
}

static int parse_post(struct hf *h, json_t *j, int depth)
{
    struct qb_tokenizer *t = h->t;
    const char *type;
    int rc;

    if (!j || json_is_null(j))
        return 0;
    if (depth > TOK_MAX_DEPTH)
        return qb_err(QB_EFORMAT, "'%s': post-processors nested too deeply", h->src);
    if ((rc = get_type(h, j, "post_processor", &type)) < 0)
        return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr, *x;
        size_t i;
        if ((rc = get_seq(h, j, "post_processor", "processors", &arr)) < 0)
            return rc;
        json_array_foreach(arr, i, x) if ((rc = parse_post(h, x, depth + 1)) < 0) return rc;
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        json_t *single = json_object_get(j, "single"), *item;
        size_t i;
        int seen_seq = 0;
        if (!json_is_array(single))
            return qb_err(QB_EFORMAT, "'%s': post_processor.single is missing or not an array",
                          h->src);
        json_array_foreach(single, i, item)
        {
            json_t *sp = json_object_get(item, "SpecialToken");
            const char *name;
            size_t len;
            int32_t id = -1;
            if (json_object_get(item, "Sequence")) {
                seen_seq = 1;
                continue;
            }
            if (!json_is_object(sp))
                return qb_err(
                    QB_EFORMAT,
                    "'%s': post_processor.single[%zu] is neither SpecialToken nor Sequence", h->src,
                    i);
            if ((rc = get_str(h, sp, "post_processor SpecialToken", "id", 1, &name, &len)) < 0 ||
                (rc = special_id(h, j, name, len, &id)) < 0)
                return rc;
            if (!seen_seq && !t->add_bos) {
                t->bos = id; /* more than one leading special token: only the first */
                t->add_bos = 1;
            } else if (seen_seq && !t->add_eos) {
                t->eos = id;
                t->add_eos = 1;
            }
        }
    } else if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        const char *keys[2] = {"cls", "sep"};
        for (int k = 0; k < 2; k++) {
            json_t *v = json_object_get(j, keys[k]), *id = json_array_get(v, 1);
            json_int_t x;
            if (!json_is_array(v) || !json_is_integer(id))
                return qb_err(QB_EFORMAT, "'%s': post_processor.%s is not [token, id]", h->src,
                              keys[k]);
            x = json_integer_value(id);
            if (x < 0 || x >= t->n_vocab)
                return qb_err(QB_EFORMAT,
                              "'%s': post_processor.%s id %lld is outside the vocabulary", h->src,
                              keys[k], (long long)x);
            if (k == 0) {
                t->bos = (int32_t)x;
                t->add_bos = 1;
            } else {
                t->eos = (int32_t)x;
                t->add_eos = 1;
            }
        }
    } /* ByteLevel and others change offsets only */
    return 0;
}

/* BOS/EOS the template did not give: the usual names among the added tokens. */
static int32_t added_named(const struct qb_tokenizer *t, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < t->n_added; k++)
            if (t->added[k].len == strlen(names[i]) && strcmp(t->added[k].s, names[i]) == 0)
                return t->added[k].id;
    return -1;
}

/* ---- model ---- */

struct added_tmp {
    int64_t id;
    const char *s;
    size_t len;
    int special, lstrip, rstrip, single_word, normalized;
};

static int parse_added(struct hf *h, json_t *arr, struct added_tmp **out, int64_t *n_out,
                       int64_t *max_id)
{
    struct added_tmp *a = NULL;
    json_t *x;
    size_t i, n;
    int rc;

    *out = NULL;
    *n_out = 0;
    *max_id = -1;
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return qb_err(QB_EFORMAT, "'%s': added_tokens is not an array", h->src);
    n = json_array_size(arr);
    if (n > TOK_MAX_ADDED)
        return qb_err(QB_EFORMAT, "'%s': %zu added tokens (at most %d)", h->src, n, TOK_MAX_ADDED);
    if (n == 0)
        return 0;
    a = calloc(n, sizeof *a);
    if (!a)
        return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
    json_array_foreach(arr, i, x)
    {
        struct added_tmp *e = &a[i];
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (!json_is_object(x)) {
            rc = qb_err(QB_EFORMAT, "'%s': added_tokens[%zu] is not an object", h->src, i);
            goto fail;
        }
        if ((rc = get_int(h, x, where, "id", -1, 0, TOK_MAX_VOCAB - 1, &e->id)) < 0)
            goto fail;
        if (e->id < 0) {
            rc = qb_err(QB_EFORMAT, "'%s': added_tokens[%zu].id is missing", h->src, i);
            goto fail;
        }
        if ((rc = get_str(h, x, where, "content", 1, &e->s, &e->len)) < 0)
            goto fail;
        if (e->len == 0 || e->len > TOK_MAX_PIECE) {
            rc = qb_err(QB_EFORMAT, "'%s': added_tokens[%zu].content is empty or too long", h->src,
                        i);
            goto fail;
        }
        if ((rc = get_bool(h, x, where, "special", 0, &e->special)) < 0 ||
            (rc = get_bool(h, x, where, "lstrip", 0, &e->lstrip)) < 0 ||
            (rc = get_bool(h, x, where, "rstrip", 0, &e->rstrip)) < 0 ||
            (rc = get_bool(h, x, where, "single_word", 0, &e->single_word)) < 0 ||
            (rc = get_bool(h, x, where, "normalized", !e->special, &e->normalized)) < 0)
            goto fail;
        if (e->id > *max_id)
            *max_id = e->id;
    }
    *out = a;
    *n_out = (int64_t)n;
    return 0;
fail:
    free(a);
    return rc;
}

static int parse_merges(struct hf *h, json_t *merges)
{
    struct qb_tokenizer *t = h->t;
    char *buf = NULL;
    json_t *x;
    size_t i, n;
    int rc = 0;

    if (!json_is_array(merges))
        return qb_err(QB_EFORMAT, "'%s': model.merges is missing or not an array", h->src);
    n = json_array_size(merges);
    if (n > TOK_MAX_MERGES)
        return qb_err(QB_EFORMAT, "'%s': %zu merges (at most %d)", h->src, n, TOK_MAX_MERGES);
    if ((rc = tok_pairmap_init(&t->merges, (int64_t)n)) < 0)
        return rc;
    buf = malloc(2 * (size_t)TOK_MAX_PIECE + 1);
    if (!buf)
        return qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
    json_array_foreach(merges, i, x)
    {
        const char *a, *b, *sp;
        size_t al, bl;
        int32_t ia, ib, iab;
        if (json_is_string(x)) {
            /* "a b": exactly one space, as tokenizers requires */
            const char *s = json_string_value(x);
            size_t len = json_string_length(x);
            sp = memchr(s, ' ', len);
            if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s))) {
                rc = qb_err(QB_EFORMAT, "'%s': model.merges[%zu] '%.64s' is not two pieces", h->src,
                            i, s);
                goto out;
            }
            a = s;
            al = (size_t)(sp - s);
            b = sp + 1;
            bl = len - al - 1;
        } else if (json_is_array(x) && json_array_size(x) == 2 &&
                   json_is_string(json_array_get(x, 0)) && json_is_string(json_array_get(x, 1))) {
            a = json_string_value(json_array_get(x, 0));
            al = json_string_length(json_array_get(x, 0));
            b = json_string_value(json_array_get(x, 1));
            bl = json_string_length(json_array_get(x, 1));
        } else {
            rc = qb_err(QB_EFORMAT, "'%s': model.merges[%zu] is neither \"a b\" nor [a, b]", h->src,
                        i);
            goto out;
        }
        ia = tok_lookup(t, a, al);
        ib = tok_lookup(t, b, bl);
        if (ia < 0 || ia >= t->n_model || ib < 0 || ib >= t->n_model) {
            rc = qb_err(
                QB_EFORMAT,
                "'%s': model.merges[%zu] ('%.*s' '%.*s') names a piece not in the vocabulary",
                h->src, i, (int)(al > 64 ? 64 : al), a, (int)(bl > 64 ? 64 : bl), b);
            goto out;
        }
        memcpy(buf, a, al);
        memcpy(buf + al, b, bl);
        iab = tok_lookup(t, buf, al + bl);
        if (iab < 0 || iab >= t->n_model) {
            rc = qb_err(
                QB_EFORMAT,
                "'%s': model.merges[%zu] ('%.*s' '%.*s') makes a piece not in the vocabulary",
                h->src, i, (int)(al > 64 ? 64 : al), a, (int)(bl > 64 ? 64 : bl), b);
            goto out;
        }
        tok_pairmap_add(&t->merges, ia, ib, (int32_t)i, iab);
    }
out:
    free(buf);
    return rc;
}

/* model.vocab's pieces into ids 0..limit-1; t->n_model becomes the last id + 1. */
static int read_vocab(struct hf *h, json_t *vocab, int64_t limit)
{
    struct qb_tokenizer *t = h->t;
    const char *key;
    size_t klen;
    json_t *v;
    int rc;

    t->n_model = 0;
    json_object_keylen_foreach(vocab, key, klen, v)
    {
        json_int_t id;
        if (!json_is_integer(v))
            return qb_err(QB_EFORMAT, "'%s': model.vocab['%.*s'] is not an integer", h->src,
                          (int)(klen > 64 ? 64 : klen), key);
        id = json_integer_value(v);
        if (id < 0 || id >= limit)
            return qb_err(
                QB_EFORMAT,
                "'%s': model.vocab['%.*s'] = %lld is outside 0..%lld (the vocabulary size)", h->src,
                (int)(klen > 64 ? 64 : klen), key, (long long)id, (long long)limit - 1);
        if (t->types[id] != QB_TT_UNUSED)
            return qb_err(QB_EFORMAT, "'%s': model.vocab gives id %lld twice ('%.*s' and '%.*s')",
                          h->src, (long long)id, (int)(t->len[id] > 64 ? 64 : t->len[id]),
                          t->arena + t->off[id], (int)(klen > 64 ? 64 : klen), key);
        if ((rc = tok_set_piece(t, id, key, klen)) < 0)
            return rc;
        t->types[id] = QB_TT_NORMAL;
        if (id + 1 > t->n_model)
            t->n_model = id + 1;
    }
    return 0;
}

/* Added tokens: pieces where the model has none, and the list matched in the text. */
static int install_added(struct hf *h, const struct added_tmp *added, int64_t n_added)
{
    struct qb_tokenizer *t = h->t;
    unsigned char *seen = calloc((size_t)t->n_vocab, 1);
    int rc = 0;

    if (n_added && (!(t->added = calloc((size_t)n_added, sizeof *t->added)) || !seen)) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
        goto out;
    }
    for (int64_t k = 0; k < n_added; k++) {
        const struct added_tmp *e = &added[k];
        struct tok_added *a = &t->added[k];
        if (seen[e->id]) {
            rc = qb_err(QB_EFORMAT, "'%s': added token id %lld appears twice", h->src,
                        (long long)e->id);
            goto out;
        }
        seen[e->id] = 1;
        if (t->types[e->id] == QB_TT_UNUSED && (rc = tok_set_piece(t, e->id, e->s, e->len)) < 0)
            goto out;
        t->types[e->id] = e->special ? QB_TT_CONTROL : QB_TT_USER_DEFINED;
        a->id = (int32_t)e->id;
        a->len = e->len;
        if (!(a->s = dup_bytes(e->s, e->len))) {
            rc = qb_err(QB_ENOMEM, "'%s': out of memory", h->src);
            goto out;
        }
        a->special = !!e->special;
        a->lstrip = !!e->lstrip;
        a->rstrip = !!e->rstrip;
        a->single_word = !!e->single_word;
        a->normalized = !!e->normalized;
        t->n_added++;
    }
out:
    free(seen);
    return rc;
}

/* The model's options (byte fallback, unk token ...), refusing the ones BPE here lacks. */
static int read_model_options(struct hf *h, json_t *model)
{
    struct qb_tokenizer *t = h->t;
    const char *s;
    size_t n;
    int rc;

    if ((rc = get_bool(h, model, "model", "byte_fallback", 0, &t->byte_fallback)) < 0 ||
        (rc = get_bool(h, model, "model", "ignore_merges", 0, &t->ignore_merges)) < 0 ||
        (rc = get_bool(h, model, "model", "fuse_unk", 0, &t->fuse_unk)) < 0)
        return rc;
    if ((rc = get_str(h, model, "model", "continuing_subword_prefix", 0, &s, &n)) < 0)
        return rc;
    if (n)
        return qb_err(QB_EUNSUP, "'%s': model.continuing_subword_prefix is not supported", h->src);
    if ((rc = get_str(h, model, "model", "end_of_word_suffix", 0, &s, &n)) < 0)
        return rc;
    if (n)
        return qb_err(QB_EUNSUP, "'%s': model.end_of_word_suffix is not supported", h->src);
    if ((rc = get_str(h, model, "model", "unk_token", 0, &s, &n)) < 0)
        return rc;
    if (s) {
        t->unk = tok_lookup(t, s, n);
        if (t->unk < 0 || t->unk >= t->n_model)
            return qb_err(QB_EFORMAT, "'%s': model.unk_token '%.64s' is not in the vocabulary",
                          h->src, s);
    }
    return 0;
}

static int parse_model(struct hf *h, json_t *root)
{
    struct qb_tokenizer *t = h->t;
    json_t *model = json_object_get(root, "model"), *vocab;
    struct added_tmp *added = NULL;
    int64_t n_added = 0, max_added, count, limit;
    const char *type;
    size_t n;
    int rc;

    if (!json_is_object(model))
        return qb_err(QB_EFORMAT, "'%s': model is missing or not an object", h->src);
    if ((rc = get_str(h, model, "model", "type", 0, &type, &n)) < 0)
        return rc;
    if (type && strcmp(type, "BPE") != 0)
        return qb_err(QB_EUNSUP, "'%s': model type '%.64s' is not supported (only BPE)", h->src,
                      type);
    if (!type && !json_object_get(model, "merges"))
        return qb_err(QB_EUNSUP, "'%s': a model without type or merges is not supported (only BPE)",
                      h->src);
    vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return qb_err(QB_EFORMAT, "'%s': model.vocab is missing or not an object", h->src);
    count = (int64_t)json_object_size(vocab);
    if (count == 0)
        return qb_err(QB_EFORMAT, "'%s': model.vocab is empty", h->src);
    if (count > TOK_MAX_VOCAB)
        return qb_err(QB_EFORMAT, "'%s': model.vocab has %lld pieces (at most %d)", h->src,
                      (long long)count, TOK_MAX_VOCAB);
    if ((rc = parse_added(h, json_object_get(root, "added_tokens"), &added, &n_added, &max_added)) <
        0)
        return rc;
    /* added tokens live after the model's pieces (Llama-3, Qwen2) or on top of them
     * (Llama-2's <s>); an id, the model's or an added token's, is never past what the two
     * together can fill, so a small file cannot ask for a huge table */
    limit = count + n_added;
    if (max_added >= limit) {
        for (int64_t k = 0; k < n_added; k++)
            if (added[k].id == max_added)
                rc = qb_err(QB_EFORMAT,
                            "'%s': added token '%.64s' has id %lld, past the vocabulary (%lld "
                            "pieces and %lld added tokens)",
                            h->src, added[k].s, (long long)max_added, (long long)count,
                            (long long)n_added);
        goto out;
    }
    if ((rc = tok_vocab_init(t, limit, 0)) < 0 || (rc = read_vocab(h, vocab, limit)) < 0)
        goto out;
    /* the table ends at the last id used: holes inside stay empty pieces of type UNUSED */
    t->n_vocab = t->n_model > max_added + 1 ? t->n_model : max_added + 1;
    if ((rc = install_added(h, added, n_added)) < 0 || (rc = tok_sort_added(t)) < 0 ||
        (rc = tok_build_map(t)) < 0 || (rc = read_model_options(h, model)) < 0)
        goto out;
    tok_find_byte_pieces(t);
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] >= t->n_model)
            t->byte_id[b] = -1;
        else if (t->byte_fallback && t->byte_id[b] >= 0 && t->types[t->byte_id[b]] == QB_TT_NORMAL)
            t->types[t->byte_id[b]] = QB_TT_BYTE;
    rc = parse_merges(h, json_object_get(model, "merges"));
out:
    free(added);
    return rc;
}

int qb_tok_load_hf_mem(const char *json, size_t len, const char *name, struct qb_tokenizer **out)
{
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"};
    static const char *const eos_names[] = {"</s>",       "<|endoftext|>", "<|end_of_text|>",
                                            "<|im_end|>", "<|eot_id|>",    "<eos>"};
    struct hf h = {name ? name : "tokenizer.json", NULL};
    json_error_t jerr;
    json_t *root = NULL;
    int rc;

    if (!out)
        return qb_err(QB_EINVAL, "qb_tok_load_hf_mem: no output");
    *out = NULL;
    if (!json && len)
        return qb_err(QB_EINVAL, "qb_tok_load_hf_mem: no text");
    if (len > TOK_MAX_JSON)
        return qb_err(QB_EFORMAT, "'%s': larger than %zu bytes", h.src, TOK_MAX_JSON);
    root = json_loadb(json ? json : "", len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return qb_err(QB_EFORMAT, "'%s': not valid JSON: %s (line %d, column %d)", h.src, jerr.text,
                      jerr.line, jerr.column);
    if (!json_is_object(root)) {
        rc = qb_err(QB_EFORMAT, "'%s': not a JSON object", h.src);
        goto fail;
    }
    h.t = tok_new(QB_TOK_BPE, h.src);
    if (!h.t) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", h.src);
        goto fail;
    }
    if ((rc = parse_model(&h, root)) < 0 ||
        (rc = parse_norm(&h, json_object_get(root, "normalizer"), 0)) < 0 ||
        (rc = tok_normalize_added(h.t)) < 0 ||
        (rc = parse_pre(&h, json_object_get(root, "pre_tokenizer"), 0)) < 0 ||
        (rc = parse_dec(&h, json_object_get(root, "decoder"), 0)) < 0 ||
        (rc = parse_post(&h, json_object_get(root, "post_processor"), 0)) < 0)
        goto fail;
    if (h.t->bos < 0)
        h.t->bos = added_named(h.t, bos_names, sizeof bos_names / sizeof *bos_names);
    if (h.t->eos < 0)
        h.t->eos = added_named(h.t, eos_names, sizeof eos_names / sizeof *eos_names);
    json_decref(root);
    *out = h.t;
    return 0;
fail:
    qb_tok_free(h.t);
    json_decref(root);
    return rc;
}

int qb_tok_load_hf(const char *path, struct qb_tokenizer **out)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    if (!out || !path)
        return qb_err(QB_EINVAL, "qb_tok_load_hf: no path");
    *out = NULL;
    if ((rc = qb_read_file(path, TOK_MAX_JSON, &buf, &len)) < 0)
        return rc;
    rc = qb_tok_load_hf_mem(buf, len, path, out);
    free(buf);
    return rc;
}
