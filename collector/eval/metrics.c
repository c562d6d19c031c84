/* metrics: scores one suite item's output (see metrics.h; the meaning of every metric is
 * in docs/suite-format.md, which this file must agree with). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "collector/eval/metrics.h"
#include "kernels/base/err.h"

#include <ctype.h>
#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* A pathological pattern against a long output must not run for minutes. */
#define MATCH_LIMIT 10000000u

struct qb_metric_priv {
    pcre2_code *re;
    pcre2_match_context *mctx;
    json_t *json;
};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_ws((unsigned char)**s))
        (*s)++, (*len)--;
    while (*len && is_ws((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

static int dig(const char *s, size_t len, size_t i)
{
    return i < len && s[i] >= '0' && s[i] <= '9';
}

/* Parses the number grammar of qb_metric_first_number starting exactly at s[i] (a digit
 * or a '.' before a digit; the sign is the caller's). Returns the end index; *x the value. */
static size_t number_at(const char *s, size_t len, size_t i, double *x)
{
    size_t start = i, j, nint = 0, k = 0;
    char small[64], *buf = small;

    while (dig(s, len, i))
        i++, nint++;
    /* thousands groups: only after 1..3 leading digits, and exactly three digits each */
    if (nint >= 1 && nint <= 3)
        while (i < len && s[i] == ',' && dig(s, len, i + 1) && dig(s, len, i + 2) &&
               dig(s, len, i + 3) && !dig(s, len, i + 4))
            i += 4;
    if (i < len && s[i] == '.' && dig(s, len, i + 1)) {
        i++;
        while (dig(s, len, i))
            i++;
    }
    if (i - start + 2 > sizeof small && !(buf = malloc(i - start + 2))) {
        *x = NAN; /* out of memory: no number compares equal to NaN */
        return i;
    }
    if (nint == 0)
        buf[k++] = '0';
    for (j = start; j < i; j++)
        if (s[j] != ',')
            buf[k++] = s[j];
    buf[k] = 0;
    *x = g_ascii_strtod(buf, NULL);
    if (buf != small)
        free(buf);
    return i;
}

int qb_metric_first_number(const char *s, size_t len, double *x)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (dig(s, len, i) || (s[i] == '.' && dig(s, len, i + 1))) {
            double v;
            number_at(s, len, i, &v);
            if (i > 0 && s[i - 1] == '-')
                v = -v;
            *x = v;
            return 1;
        }
    }
    return 0;
}

/* target: NUMBER [ "+-" NUMBER ], NUMBER with an optional sign, whitespace around. */
static int parse_number_target(const char *s, double *x, double *tol)
{
    size_t len = strlen(s), i = 0;
    int neg = 0;

    trim(&s, &len);
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (!(dig(s, len, i) || (i < len && s[i] == '.' && dig(s, len, i + 1))))
        return -1;
    i = number_at(s, len, i, x);
    if (neg)
        *x = -*x;
    *tol = 0;
    while (i < len && is_ws((unsigned char)s[i]))
        i++;
    if (i == len)
        return isfinite(*x) ? 0 : -1;
    if (i + 1 >= len || s[i] != '+' || s[i + 1] != '-')
        return -1;
    i += 2;
    while (i < len && is_ws((unsigned char)s[i]))
        i++;
    if (!(dig(s, len, i) || (i < len && s[i] == '.' && dig(s, len, i + 1))))
        return -1;
    i = number_at(s, len, i, tol);
    return i == len && isfinite(*x) && isfinite(*tol) ? 0 : -1;
}

static int needs_target(enum qb_metric m)
{
    return m == QB_METRIC_EXACT || m == QB_METRIC_CONTAINS || m == QB_METRIC_REGEX ||
           m == QB_METRIC_NUMBER || m == QB_METRIC_JSON;
}

int qb_metric_prepare(struct qb_suite_item *it, const char *path, int64_t line, int col)
{
    struct qb_metric_priv *p = NULL;
    int rc = 0;

    if (it->kind != QB_KIND_GENERATE)
        return 0;
    if (needs_target(it->metric) && (!it->target || !it->target[0]))
        return qb_err(QB_EFORMAT, "'%s':%lld:%d: metric '%s' needs a target", path, (long long)line,
                      col, qb_metric_name(it->metric));
    if (it->metric == QB_METRIC_JSON_VALID && it->target)
        return qb_err(QB_EFORMAT, "'%s':%lld:%d: metric 'json_valid' takes no target", path,
                      (long long)line, col);
    switch (it->metric) {
    case QB_METRIC_NUMBER:
        if (parse_number_target(it->target, &it->number, &it->tolerance) < 0)
            return qb_err(
                QB_EFORMAT,
                "'%s':%lld:%d: number target '%.60s' is not NUMBER or NUMBER +- TOLERANCE", path,
                (long long)line, col, it->target);
        return 0;
    case QB_METRIC_REGEX: {
        int code;
        PCRE2_SIZE off;
        if (!(p = calloc(1, sizeof *p)))
            return qb_err(QB_ENOMEM, "out of memory");
        p->re = pcre2_compile((PCRE2_SPTR)it->target, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
        if (!p->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            rc = qb_err(QB_EFORMAT, "'%s':%lld:%d: bad regex '%.60s' at offset %zu: %s", path,
                        (long long)line, col, it->target, (size_t)off, (const char *)msg);
            goto fail;
        }
        if (!(p->mctx = pcre2_match_context_create(NULL))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto fail;
        }
        pcre2_set_match_limit(p->mctx, MATCH_LIMIT);
        break;
    }
    case QB_METRIC_JSON: {
        json_error_t e;
        if (!(p = calloc(1, sizeof *p)))
            return qb_err(QB_ENOMEM, "out of memory");
        p->json = json_loads(it->target, JSON_DECODE_ANY, &e);
        if (!p->json) {
            rc = qb_err(QB_EFORMAT, "'%s':%lld:%d: target is not valid JSON: %s (at offset %d)",
                        path, (long long)line, col, e.text, e.position);
            goto fail;
        }
        break;
    }
    default: return 0;
    }
    it->priv = p;
    return 0;
fail:
    if (p) {
        pcre2_code_free(p->re);
        pcre2_match_context_free(p->mctx);
        json_decref(p->json);
        free(p);
    }
    return rc;
}

void qb_metric_release(struct qb_suite_item *it)
{
    struct qb_metric_priv *p = it ? it->priv : NULL;
    if (!p)
        return;
    pcre2_code_free(p->re);
    pcre2_match_context_free(p->mctx);
    json_decref(p->json);
    free(p);
    it->priv = NULL;
}

static int score_regex(const struct qb_suite_item *it, const char *s, size_t len, double *score)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(it->priv->re, NULL);
    int r;
    if (!md)
        return qb_err(QB_ENOMEM, "out of memory");
    r = pcre2_match(it->priv->re, (PCRE2_SPTR)(len ? s : ""), len, 0, 0, md, it->priv->mctx);
    pcre2_match_data_free(md);
    if (r >= 0) {
        *score = 1.0;
        return 0;
    }
    if (r == PCRE2_ERROR_NOMATCH) {
        *score = 0.0;
        return 0;
    }
    {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(r, msg, sizeof msg);
        return qb_err(QB_ERANGE, "item '%s': regex match failed: %s", it->id, (const char *)msg);
    }
}

/* The output's first JSON value: from its first non-blank byte, else from its first '{'
 * or '['. Two attempts at most, so a long output costs linear time. */
static json_t *first_json(const char *s, size_t len)
{
    const size_t flags = JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK;
    json_t *v;
    size_t i;
    trim(&s, &len);
    if (!len)
        return NULL;
    if ((v = json_loadb(s, len, flags, NULL)))
        return v;
    for (i = 0; i < len && s[i] != '{' && s[i] != '['; i++) {
    }
    if (i == 0 || i == len)
        return NULL;
    return json_loadb(s + i, len - i, flags, NULL);
}

int qb_metric_score(const struct qb_suite_item *it, const char *output, size_t len, double *score)
{
    const char *s = output ? output : "";
    size_t n = output ? len : 0;
    const char *t;
    size_t tn;

    if (!it || !score || it->kind != QB_KIND_GENERATE)
        return qb_err(QB_EINVAL, "item '%s' is not a generate item",
                      it && it->id ? it->id : "(null)");
    *score = 0.0;
    switch (it->metric) {
    case QB_METRIC_EXACT:
        t = it->target, tn = strlen(t);
        trim(&s, &n);
        trim(&t, &tn);
        *score = n == tn && memcmp(s, t, n) == 0;
        return 0;
    case QB_METRIC_CONTAINS:
        *score = memmem(s, n, it->target, strlen(it->target)) != NULL;
        return 0;
    case QB_METRIC_REGEX:
        if (!it->priv || !it->priv->re)
            break;
        return score_regex(it, s, n, score);
    case QB_METRIC_NUMBER: {
        double x;
        *score = qb_metric_first_number(s, n, &x) && fabs(x - it->number) <= it->tolerance;
        return 0;
    }
    case QB_METRIC_JSON: {
        json_t *v;
        if (!it->priv || !it->priv->json)
            break;
        v = first_json(s, n);
        *score = v && json_equal(v, it->priv->json);
        json_decref(v);
        return 0;
    }
    case QB_METRIC_JSON_VALID: {
        json_t *v;
        trim(&s, &n);
        v = n ? json_loadb(s, n, JSON_DECODE_ANY, NULL) : NULL;
        *score = v != NULL;
        json_decref(v);
        return 0;
    }
    default: break;
    }
    return qb_err(QB_EINVAL, "item '%s': metric '%s' cannot score generated text", it->id,
                  qb_metric_name(it->metric));
}

int64_t qb_choice_argmax(const double *loglik, int64_t n)
{
    int64_t best = -1, i;
    for (i = 0; i < n; i++)
        if (!isnan(loglik[i]) && (best < 0 || loglik[i] > loglik[best]))
            best = i;
    return best;
}

int64_t qb_choice_argmax_norm(const double *loglik, const double *len, int64_t n)
{
    int64_t best = -1, i;
    double bv = 0;
    for (i = 0; i < n; i++) {
        double v;
        if (!(len[i] > 0) || isnan(loglik[i]))
            continue;
        v = loglik[i] / len[i];
        if (best < 0 || v > bv)
            best = i, bv = v;
    }
    return best;
}

int qb_choice_score(const struct qb_suite_item *it, const double *loglik, const int64_t *n_tokens,
                    double *score)
{
    int64_t best, i;
    double *len = NULL;

    if (!it || !score || !loglik || it->kind != QB_KIND_CHOICE || it->n_choices < 2)
        return qb_err(QB_EINVAL, "item '%s' is not a choice item",
                      it && it->id ? it->id : "(null)");
    if (it->metric == QB_METRIC_ACCURACY) {
        best = qb_choice_argmax(loglik, it->n_choices);
    } else {
        if (!(len = malloc((size_t)it->n_choices * sizeof *len)))
            return qb_err(QB_ENOMEM, "out of memory");
        for (i = 0; i < it->n_choices; i++)
            len[i] = n_tokens ? (double)n_tokens[i] : (double)strlen(it->choices[i]);
        best = qb_choice_argmax_norm(loglik, len, it->n_choices);
        free(len);
    }
    *score = best >= 0 && best == it->target_index;
    return 0;
}
