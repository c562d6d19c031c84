/* qspec: parses and prints config specs ("w4g128-gptq+output=w8"), the names every run, plan
 * file, store row and brief uses for a configuration. Must agree with the grammar in qspec.h,
 * and printing must stay canonical: parse(format(x)) == x, and format(parse(s)) is the one
 * name of s. The parser accepts suffixes in any order and an explicit "-rtn"; it prints them
 * in the grammar's order and drops "-rtn". */
#include "collector/model/qspec.h"

#include "kernels/base/err.h"

#include <stdio.h>
#include <string.h>

#define VALID_FORMS                                                                                \
    "valid forms are f32, f16, bf16, fp8[-e5m2][-a8], w8, w8a8, w4g{32,64,128}[-sym][-a8], "       \
    "w3g{32,64,128}[-sym][-a8], w2g{32,64,128}[-sym][-a8], with an optional "                      \
    "-rtn|-gptq|-awq|-smooth and +TARGET=BASE overrides (TARGET: output, embed, attn, ffn, q, "    \
    "k, v, o, gate, up, down; or layers LN, LN-M, L* alone or as LN.TENSOR, e.g. +L0-1=w8, "       \
    "+L5.down=bf16)"

static const char *const method_names[] = {"rtn", "gptq", "awq", "smooth"};
static const char *const target_names[QB_TGT_COUNT] = {
    [QB_TGT_OUTPUT] = "output", [QB_TGT_EMBED] = "embed", [QB_TGT_ATTN] = "attn",
    [QB_TGT_FFN] = "ffn",       [QB_TGT_Q] = "q",         [QB_TGT_K] = "k",
    [QB_TGT_V] = "v",           [QB_TGT_O] = "o",         [QB_TGT_GATE] = "gate",
    [QB_TGT_UP] = "up",         [QB_TGT_DOWN] = "down",   [QB_TGT_LAYER] = "",
};

/* Does [s, s + n) spell word exactly? */
static int is_word(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && !memcmp(s, word, n);
}

/* The error for spec: a reason (may be NULL) and the list of valid forms, on one line. */
static int bad_spec(const char *spec, const char *why)
{
    if (!why)
        return qb_err(QB_EINVAL, "unknown config '%s': " VALID_FORMS, spec);
    return qb_err(QB_EINVAL, "bad config '%s': %s; " VALID_FORMS, spec, why);
}

/* Parses one base with its suffixes, and the method when method is not NULL, from
 * [s, s + n). On failure writes a reason to why (cap bytes) and returns -1, or -2 when the
 * precision itself is unknown. */
static int parse_base(const char *s, size_t n, struct qb_qbase *b, int *method, char *why,
                      size_t cap)
{
    const char *end = s + n, *tok = s, *dash;
    size_t len;
    int seen_sym = 0, seen_a8 = 0, seen_e5m2 = 0, seen_method = 0, bits = 0;

    memset(b, 0, sizeof *b);
    dash = memchr(s, '-', n);
    len = dash ? (size_t)(dash - s) : n;
    if (is_word(s, len, "f32"))
        b->fmt = QB_FMT_F32;
    else if (is_word(s, len, "f16"))
        b->fmt = QB_FMT_F16;
    else if (is_word(s, len, "bf16"))
        b->fmt = QB_FMT_BF16;
    else if (is_word(s, len, "fp8"))
        b->fmt = QB_FMT_E4M3;
    else if (is_word(s, len, "w8"))
        b->fmt = QB_FMT_I8;
    else if (is_word(s, len, "w8a8")) {
        b->fmt = QB_FMT_I8;
        b->act = QB_ACT_I8;
    } else if (len >= 3 && s[0] == 'w' && s[1] >= '2' && s[1] <= '4' && s[2] == 'g') {
        static const enum qb_fmt fmts[] = {QB_FMT_I2, QB_FMT_I3, QB_FMT_I4};
        bits = s[1] - '0';
        b->fmt = fmts[bits - 2];
        b->asym = 1;
        if (is_word(s + 3, len - 3, "32"))
            b->group = 32;
        else if (is_word(s + 3, len - 3, "64"))
            b->group = 64;
        else if (is_word(s + 3, len - 3, "128"))
            b->group = 128;
        else {
            snprintf(why, cap, "group size '%.*s' is not 32, 64 or 128", (int)(len - 3), s + 3);
            return -1;
        }
    } else {
        snprintf(why, cap, "unknown precision '%.*s'", (int)len, s);
        return -2;
    }

    /* suffixes, each at most once */
    for (tok = s + len; tok < end;) {
        const char *t = tok + 1;
        dash = memchr(t, '-', (size_t)(end - t));
        len = dash ? (size_t)(dash - t) : (size_t)(end - t);
        tok = t + len;
        if (is_word(t, len, "sym") && bits && !seen_sym) {
            seen_sym = 1;
            b->asym = 0;
        } else if (is_word(t, len, "a8") && !seen_a8 &&
                   (bits || b->fmt == QB_FMT_E4M3 || b->fmt == QB_FMT_E5M2)) {
            seen_a8 = 1;
            b->act = bits ? QB_ACT_I8 : QB_ACT_FP8;
        } else if (is_word(t, len, "e5m2") && b->fmt == QB_FMT_E4M3 && !seen_e5m2) {
            seen_e5m2 = 1;
            b->fmt = QB_FMT_E5M2;
        } else {
            int m = -1;
            for (int i = 0; i < (int)(sizeof method_names / sizeof *method_names); i++)
                if (is_word(t, len, method_names[i]))
                    m = i;
            if (m >= 0 && !method) {
                snprintf(why, cap, "an override takes no method ('-%.*s')", (int)len, t);
                return -1;
            }
            if (m >= 0 && !seen_method) {
                seen_method = 1;
                *method = m;
                continue;
            }
            if (m >= 0)
                snprintf(why, cap, "more than one method");
            else if (len == 0)
                snprintf(why, cap, "empty suffix");
            else if ((is_word(t, len, "sym") && seen_sym) || (is_word(t, len, "a8") && seen_a8) ||
                     (is_word(t, len, "e5m2") && seen_e5m2))
                snprintf(why, cap, "'-%.*s' given twice", (int)len, t);
            else if (is_word(t, len, "sym"))
                snprintf(why, cap, "'-sym' applies only to w4gN, w3gN and w2gN");
            else if (is_word(t, len, "a8"))
                snprintf(why, cap,
                         "'-a8' applies only to fp8 and wNgN (int8 weights with int8 "
                         "activations are w8a8)");
            else if (is_word(t, len, "e5m2"))
                snprintf(why, cap, "'-e5m2' applies only to fp8");
            else
                snprintf(why, cap, "unknown suffix '-%.*s'", (int)len, t);
            return -1;
        }
    }
    if (b->fmt == QB_FMT_E5M2 && seen_a8) {
        snprintf(why, cap, "fp8-e5m2 has no -a8 form (fp8 activations are e4m3: use fp8-a8)");
        return -1;
    }
    return 0;
}

/* One override as written: a tensor (or QB_TGT_LAYER: every linear matrix), the layers
 * lo..hi (-1, -1: without layers) and the text, for messages. */
struct lay {
    enum qb_target target;
    int lo, hi;
    struct qb_qbase base;
    const char *text;
    int n_text;
};
#define MAX_RAW 64

static const char *tname(enum qb_target t)
{
    return t == QB_TGT_LAYER ? "L*" : target_names[t];
}

/* The linear matrices (bit k: QB_TGT_Q + k) a target covers. */
static unsigned kinds_of(enum qb_target t)
{
    if (t == QB_TGT_LAYER)
        return 0x7f;
    if (t == QB_TGT_ATTN)
        return 0x0f;
    if (t == QB_TGT_FFN)
        return 0x70;
    return t >= QB_TGT_Q && t <= QB_TGT_DOWN ? 1u << (t - QB_TGT_Q) : 0;
}

/* A layer number at *p (digits only); advances *p. -1 when there are none or it is too big. */
static int layer_num(const char **p, const char *end)
{
    long v = 0;
    const char *q = *p;
    while (q < end && *q >= '0' && *q <= '9' && v < 100000)
        v = v * 10 + (*q++ - '0');
    if (q == *p)
        return -1;
    *p = q;
    return (int)(v < 100000 ? v : 100000);
}

/* Parses the target [o, o + n): "TENSOR", "LN[-M][.TENSOR]" or "L*[.TENSOR]". */
static int parse_target(const char *o, size_t n, struct lay *out, char *why, size_t cap)
{
    const char *p = o, *end = o + n, *dot;
    memset(out, 0, sizeof *out);
    out->text = o, out->n_text = (int)n;
    out->lo = out->hi = -1;
    out->target = QB_TGT_COUNT;
    if (n > 0 && o[0] == 'L') {
        p = o + 1;
        if (p < end && *p == '*')
            p++;
        else if ((out->lo = out->hi = layer_num(&p, end)) < 0) {
            snprintf(why, cap, "bad layers in '%.*s' (write LN, LN-M or L*)", (int)n, o);
            return -1;
        } else if (p < end && *p == '-') {
            p++;
            if ((out->hi = layer_num(&p, end)) < 0) {
                snprintf(why, cap, "bad layer range in '%.*s' (write LN-M)", (int)n, o);
                return -1;
            }
        }
        if (out->hi >= QB_QSPEC_MAX_LAYERS) {
            snprintf(why, cap, "layer %d in '%.*s' is beyond L%d", out->hi, (int)n, o,
                     QB_QSPEC_MAX_LAYERS - 1);
            return -1;
        }
        if (out->hi < out->lo) {
            snprintf(why, cap, "layer range '%.*s' ends before it starts", (int)n, o);
            return -1;
        }
        if (p == end) {
            out->target = QB_TGT_LAYER;
            return 0;
        }
        if (*p != '.') {
            snprintf(why, cap, "bad layers in '%.*s' (write LN, LN-M or L*)", (int)n, o);
            return -1;
        }
        p++;
    }
    dot = p;
    for (int i = 0; i < QB_TGT_COUNT; i++)
        if (i != QB_TGT_LAYER && is_word(dot, (size_t)(end - dot), target_names[i]))
            out->target = (enum qb_target)i;
    if (out->target == QB_TGT_COUNT) {
        if (dot == o)
            snprintf(why, cap, "unknown override target '%.*s'", (int)n, o);
        else
            snprintf(why, cap,
                     "unknown tensor '%.*s' in '%.*s' (a layer has attn, ffn, q, k, v, o, gate, "
                     "up, down)",
                     (int)(end - dot), dot, (int)n, o);
        return -1;
    }
    if (dot != o && !kinds_of(out->target)) {
        snprintf(why, cap, "'%s' has no layers: write +%s=BASE", target_names[out->target],
                 target_names[out->target]);
        return -1;
    }
    return 0;
}

/* Appends an override without layers; the same target twice is an error. */
static int add_plain(struct qb_qspec *p, const struct lay *o, char *why, size_t cap)
{
    for (int i = 0; i < p->n_overrides; i++)
        if (p->overrides[i].target == o->target) {
            snprintf(why, cap, "override target '%s' given twice", tname(o->target));
            return -1;
        }
    if (p->n_overrides == QB_QSPEC_MAX_OVERRIDES) {
        snprintf(why, cap, "more than %d overrides", QB_QSPEC_MAX_OVERRIDES);
        return -1;
    }
    p->overrides[p->n_overrides].target = o->target;
    p->overrides[p->n_overrides].base = o->base;
    p->n_overrides++;
    return 0;
}

static int same_base(const struct qb_qbase *a, const struct qb_qbase *b)
{
    return a->fmt == b->fmt && a->group == b->group && a->asym == b->asym && a->act == b->act;
}

/* The override index + 1 that sets every matrix of mask in layer l to one precision, or 0. */
static int uniform(unsigned char (*cell)[7], const struct lay *ly, int l, unsigned mask)
{
    int first = 0;
    for (int k = 0; k < 7; k++) {
        if (!(mask >> k & 1))
            continue;
        if (!cell[l][k] || (first && !same_base(&ly[first - 1].base, &ly[cell[l][k] - 1].base)))
            return 0;
        if (!first)
            first = cell[l][k];
    }
    return first;
}

/* Lays the layer overrides out canonically after the others: each matrix of each layer set
 * at most once (else they overlap), then emitted as whole layers, attn/ffn groups and
 * single tensors, each as ranges of adjacent layers with one precision. */
static int layout_layers(const struct lay *ly, int n, struct qb_qspec *p, char *why, size_t cap)
{
    static const enum qb_target order[] = {QB_TGT_LAYER, QB_TGT_ATTN, QB_TGT_FFN, QB_TGT_Q,
                                           QB_TGT_K,     QB_TGT_V,    QB_TGT_O,   QB_TGT_GATE,
                                           QB_TGT_UP,    QB_TGT_DOWN};
    unsigned char cell[QB_QSPEC_MAX_LAYERS][7];
    int top = -1;
    memset(cell, 0, sizeof cell);
    for (int i = 0; i < n; i++) {
        unsigned mask = kinds_of(ly[i].target);
        for (int l = ly[i].lo; l <= ly[i].hi; l++)
            for (int k = 0; k < 7; k++) {
                if (!(mask >> k & 1))
                    continue;
                if (cell[l][k]) {
                    const struct lay *a = &ly[cell[l][k] - 1];
                    snprintf(why, cap, "layer overrides '%.*s' and '%.*s' overlap (layer %d %s)",
                             a->n_text, a->text, ly[i].n_text, ly[i].text, l,
                             target_names[QB_TGT_Q + k]);
                    return -1;
                }
                cell[l][k] = (unsigned char)(i + 1);
            }
        if (ly[i].hi > top)
            top = ly[i].hi;
    }
    for (size_t g = 0; g < sizeof order / sizeof *order; g++) {
        unsigned mask = kinds_of(order[g]);
        for (int l = 0, m; l <= top; l = m + 1) {
            int b = uniform(cell, ly, l, mask);
            m = l;
            if (!b)
                continue;
            while (m + 1 <= top && uniform(cell, ly, m + 1, mask) &&
                   same_base(&ly[b - 1].base, &ly[uniform(cell, ly, m + 1, mask) - 1].base))
                m++;
            if (p->n_overrides == QB_QSPEC_MAX_OVERRIDES) {
                snprintf(why, cap, "more than %d overrides", QB_QSPEC_MAX_OVERRIDES);
                return -1;
            }
            p->overrides[p->n_overrides].target = order[g];
            p->overrides[p->n_overrides].base = ly[b - 1].base;
            p->overrides[p->n_overrides].layered = 1;
            p->overrides[p->n_overrides].lo = l;
            p->overrides[p->n_overrides].hi = m;
            p->n_overrides++;
            for (int j = l; j <= m; j++)
                for (int k = 0; k < 7; k++)
                    if (mask >> k & 1)
                        cell[j][k] = 0;
        }
    }
    return 0;
}

/* Is method m allowed on base b? */
static const char *method_conflict(enum qb_method m, const struct qb_qbase *b)
{
    int is_int =
        b->fmt == QB_FMT_I8 || b->fmt == QB_FMT_I4 || b->fmt == QB_FMT_I3 || b->fmt == QB_FMT_I2;
    switch (m) {
    case QB_METHOD_GPTQ: return is_int ? NULL : "gptq needs an integer base (w8, w8a8, wNgN)";
    case QB_METHOD_AWQ:
        return is_int && b->act == QB_ACT_F32 ? NULL
                                              : "awq needs a weight-only integer base (w8, wNgN)";
    case QB_METHOD_SMOOTH:
        return b->act != QB_ACT_F32 ? NULL
                                    : "smooth needs quantized activations (w8a8, wNgN-a8, fp8-a8)";
    default: return NULL;
    }
}

int qb_qspec_parse(const char *s, struct qb_qspec *out)
{
    struct qb_qspec p;
    struct lay lays[MAX_RAW];
    int n_lays = 0;
    char why[200], canon[2 * QB_QSPEC_MAX];
    const char *plus, *end;
    int method = QB_METHOD_RTN, rc, len;

    if (out)
        memset(out, 0, sizeof *out);
    if (!s || !out)
        return qb_err(QB_EINVAL, "no config given: " VALID_FORMS);
    memset(&p, 0, sizeof p);
    end = s + strlen(s);
    plus = strchr(s, '+');
    if (!plus)
        plus = end;
    if ((rc = parse_base(s, (size_t)(plus - s), &p.base, &method, why, sizeof why)) < 0)
        return bad_spec(s, rc == -2 ? NULL : why);
    p.method = (enum qb_method)method;
    const char *conflict = method_conflict(p.method, &p.base);
    if (conflict)
        return bad_spec(s, conflict);

    /* overrides: +target=base, in the order given; layer overrides laid out after them */
    while (plus < end) {
        const char *o = plus + 1, *eq, *next = strchr(o, '+');
        struct lay cur;
        if (!next)
            next = end;
        eq = memchr(o, '=', (size_t)(next - o));
        if (!eq) {
            snprintf(why, sizeof why, "override '+%.*s' is not TARGET=BASE", (int)(next - o), o);
            return bad_spec(s, why);
        }
        if (parse_target(o, (size_t)(eq - o), &cur, why, sizeof why) < 0)
            return bad_spec(s, why);
        if (parse_base(eq + 1, (size_t)(next - eq - 1), &cur.base, NULL, why, sizeof why) < 0)
            return bad_spec(s, why);
        if (cur.lo >= 0) {
            if (n_lays == MAX_RAW) {
                snprintf(why, sizeof why, "more than %d layer overrides", MAX_RAW);
                return bad_spec(s, why);
            }
            lays[n_lays++] = cur;
        } else if (add_plain(&p, &cur, why, sizeof why) < 0)
            return bad_spec(s, why);
        plus = next;
    }
    if (n_lays && layout_layers(lays, n_lays, &p, why, sizeof why) < 0)
        return bad_spec(s, why);

    /* the canonical name must fit the buffers callers size with QB_QSPEC_MAX */
    qb_qspec_format(&p, canon, sizeof canon);
    if ((len = (int)strlen(canon)) >= QB_QSPEC_MAX) {
        snprintf(why, sizeof why, "its canonical name is %d characters, more than %d", len,
                 QB_QSPEC_MAX - 1);
        return bad_spec(s, why);
    }
    *out = p;
    return 0;
}

void qb_qbase_format(const struct qb_qbase *b, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    switch (b->fmt) {
    case QB_FMT_F32: snprintf(buf, cap, "f32"); break;
    case QB_FMT_F16: snprintf(buf, cap, "f16"); break;
    case QB_FMT_BF16: snprintf(buf, cap, "bf16"); break;
    case QB_FMT_E4M3: snprintf(buf, cap, "fp8%s", b->act == QB_ACT_FP8 ? "-a8" : ""); break;
    case QB_FMT_E5M2: snprintf(buf, cap, "fp8-e5m2"); break;
    case QB_FMT_I8: snprintf(buf, cap, "%s", b->act == QB_ACT_I8 ? "w8a8" : "w8"); break;
    case QB_FMT_I4:
    case QB_FMT_I3:
    case QB_FMT_I2:
        snprintf(buf, cap, "w%dg%d%s%s", qb_fmt_bits(b->fmt), b->group, b->asym ? "" : "-sym",
                 b->act == QB_ACT_I8 ? "-a8" : "");
        break;
    default: snprintf(buf, cap, "?"); break;
    }
}

void qb_qspec_format(const struct qb_qspec *s, char *buf, size_t cap)
{
    size_t n;
    if (!buf || cap == 0)
        return;
    qb_qbase_format(&s->base, buf, cap);
    n = strlen(buf);
    if (s->method != QB_METHOD_RTN && (unsigned)s->method < 4 && n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "-%s", method_names[s->method]);
    for (int i = 0; i < s->n_overrides && i < QB_QSPEC_MAX_OVERRIDES && n < cap; i++) {
        char base[32], lay[32] = "";
        unsigned t = (unsigned)s->overrides[i].target;
        int lo = s->overrides[i].layered ? s->overrides[i].lo : -1, hi = s->overrides[i].hi;
        qb_qbase_format(&s->overrides[i].base, base, sizeof base);
        if (lo >= 0 && hi > lo)
            snprintf(lay, sizeof lay, "L%d-%d%s", lo, hi, t == QB_TGT_LAYER ? "" : ".");
        else if (lo >= 0)
            snprintf(lay, sizeof lay, "L%d%s", lo, t == QB_TGT_LAYER ? "" : ".");
        n += (size_t)snprintf(buf + n, cap - n, "+%s%s=%s", lay,
                              t >= QB_TGT_COUNT              ? "?"
                              : lo >= 0 && t == QB_TGT_LAYER ? ""
                                                             : tname((enum qb_target)t),
                              base);
    }
}

const struct qb_qbase *qb_qspec_for(const struct qb_qspec *s, enum qb_target tensor)
{
    const struct qb_qbase *b = &s->base;
    for (int i = 0; i < s->n_overrides && i < QB_QSPEC_MAX_OVERRIDES; i++) {
        enum qb_target t = s->overrides[i].target;
        if (s->overrides[i].layered)
            continue;
        if (t == tensor ||
            (kinds_of(tensor) && (kinds_of(t) & kinds_of(tensor)) == kinds_of(tensor)))
            b = &s->overrides[i].base;
    }
    return b;
}

const struct qb_qbase *qb_qspec_for_layer(const struct qb_qspec *s, int64_t l,
                                          enum qb_target tensor)
{
    unsigned want = kinds_of(tensor);
    for (int i = 0; i < s->n_overrides && i < QB_QSPEC_MAX_OVERRIDES; i++)
        if (s->overrides[i].layered && l >= s->overrides[i].lo && l <= s->overrides[i].hi && want &&
            (kinds_of(s->overrides[i].target) & want) == want)
            return &s->overrides[i].base;
    return qb_qspec_for(s, tensor);
}

int qb_qspec_max_layer(const struct qb_qspec *s)
{
    int top = -1;
    for (int i = 0; i < s->n_overrides && i < QB_QSPEC_MAX_OVERRIDES; i++)
        if (s->overrides[i].layered && s->overrides[i].hi > top)
            top = s->overrides[i].hi;
    return top;
}

int qb_qspec_check_layers(const struct qb_qspec *s, int64_t n_layers)
{
    int top = qb_qspec_max_layer(s);
    char name[QB_QSPEC_MAX];
    if (top < n_layers)
        return 0;
    qb_qspec_format(s, name, sizeof name);
    return qb_err(
        QB_EINVAL,
        "config '%s' names layer %d but the model has %lld layers (L0-%lld); " VALID_FORMS, name,
        top, (long long)n_layers, (long long)n_layers - 1);
}

int qb_qspec_unties_head(const struct qb_qspec *s)
{
    enum qb_fmt f = qb_qspec_for(s, QB_TGT_OUTPUT)->fmt;
    int is_int = f == QB_FMT_I8 || f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
    int is_group = f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
    return (s->method == QB_METHOD_GPTQ && is_int) || (s->method == QB_METHOD_AWQ && is_group);
}
