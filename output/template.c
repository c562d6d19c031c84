/* template: the template language of the brief (docs/templates.md, which must agree with the
 * tables below: directives, conditions, variables, tables, lists). Parsing checks a whole
 * .tmpl file up front -- directives, their arguments, block nesting, every {{variable}} -- and
 * names file:line in every message; expanding fills {{variables}} from a brief_ctx and
 * @define patterns from the template, with item scopes for sentences and @each. */
#include "output/brief.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "output/brief_int.h"
#include "output/chart/chart.h"

#include <ctype.h>
#include <glib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* clang-format off */
static const char *const dir_names[] = {
    "title", "lead", "h1", "h2", "p", "note", "code", "stat", "table", "chart", "list",
    "if", "else", "endif", "each", "endeach", "page", "footer", "define",
};

/* @if conditions; "each" adds the per-slice ones */
static const char *const cond_names[] = {
    "has_cliffs", "has_hidden_cliff", "has_latency", "has_memory", "has_calibration",
    "has_warnings", "has_caveats", "has_question", "has_undecided", "has_perplexity",
    "has_missing", "routed", "has_speedup", "on_device", "has_behaviour", "has_unstable",
    "compared", "decision_changed", "has_compare_warnings", "has_sensitivity",
    /* inside @each slice */
    "slice_has_cliff", "slice_is_perplexity", "slice_undecided", "slice_has_behaviour",
};
_Static_assert(sizeof cond_names / sizeof cond_names[0] == C_SLICE_HAS_BEHAVIOUR + 1,
               "cond_names follows enum cond");

/* generated tables, their column count, and the columns right-aligned */
const struct brief_table brief_tables[N_TABLES] = {
    {"recommendation", 7, "lrlrrll"},
    {"slices", 5, "llrrr"},
    {"accuracy", 9, "llrrrrrrl"},
    {"slice_configs", 9, "lrrrrrrrl"},
    {"configs", 6, "lrrrrr"},
    {"latency", 8, "lrrrrrrr"},
    {"memory", 5, "lrrrr"},
    {"deployment", 6, "llrrrr"},
    {"divergence", 5, "lrrrr"},
    {"compare", 7, "llrrrrr"},
    {"compare_recs", 5, "lllll"},
    {"compare_cost", 7, "lrrrrrr"},
};

static const char *const list_names[] = {"cliffs",   "caveats",  "warnings",
                                         "behaviour", "examples", "compare_warnings",
                                         "sensitivity"};

/* Every {{variable}} the renderer knows. Item variables have values only inside the sentence
 * pattern (or @each body) that uses them; the template checker accepts them anywhere. */
static const char *const var_names[] = {
    "title", "question", "run", "model", "model_file", "model_sha", "architecture", "params",
    "model_format", "suite", "suite_file", "suite_sha", "n_items", "n_slices", "n_configs",
    "n_results", "n_missing", "baseline", "configs", "machine", "host", "device", "measured_on",
    "started", "finished",
    "date", "version", "commit", "run_command", "command", "confidence", "policy", "tolerance",
    "resamples", "seed", "answer", "mem_saving", "mem_baseline", "mem_plan", "speedup",
    "speedup_config", "blended_cost", "blended_tpot", "baseline_tpot", "single_config",
    "single_mem_saving", "single_cost", "calib_file", "calib_sha", "calib_sequences",
    "calib_seq_len", "n_cliffs", "cliff_slice", "cliff_above", "cliff_below", "cliff_loss",
    "cliff_loss_lo", "cliff_loss_hi", "cliff_n", "cliff_overall", "overall_config",
    "overall_delta", "page", "pages",
    /* item variables */
    "slice", "slices", "config", "n", "tol", "traffic", "rec", "verdict", "delta", "delta_lo",
    "delta_hi", "above", "below", "loss", "loss_lo", "loss_hi", "overall_loss", "mde", "item",
    "kind", "ngram", "floor", "lost", "lost_lo", "lost_hi", "gained", "gained_lo", "gained_hi",
    "share", "share_lo", "share_hi", "limit", "why", "prompt", "baseline_answer",
    "config_answer", "above_delta", "below_delta", "above_hi", "below_lo", "also",
    "flip_limit", "before_run", "before_machine", "before_device", "before_started", "before_answer",
    "before_store", "compare_answer", "n_changed", "changes", "rec_before", "rec_now", "deployed",
    /* sens_* patterns (brief_sens.c); "share" is shared with the flips patterns */
    "unit", "kl", "kl_sum", "acc_loss", "keep", "candidates", "source",
};
/* clang-format on */

int64_t qb_template_n_lines(const struct qb_template *t)
{
    return t ? t->n : 0;
}

const struct tline *brief_find_define(const struct qb_template *t, const char *name)
{
    for (int64_t i = 0; i < t->n; i++)
        if (t->l[i].d == D_DEFINE && !strcmp(t->l[i].name, name))
            return &t->l[i];
    return NULL;
}

const char *qb_template_define(const struct qb_template *t, const char *name)
{
    const struct tline *d = t ? brief_find_define(t, name) : NULL;
    return d ? d->text : NULL;
}

void qb_template_free(struct qb_template *t)
{
    if (!t)
        return;
    for (int64_t i = 0; i < t->n; i++) {
        g_free(t->l[i].text);
        g_free(t->l[i].name);
        g_free(t->l[i].cols);
        g_free(t->l[i].title);
        g_free(t->l[i].subtitle);
        g_free(t->l[i].slice);
    }
    g_free(t->l);
    g_free(t->file);
    g_free(t);
}

static int find_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

static int is_ident(const char *s)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

/* Checks every {{name}} of s: well formed and a variable or a define of t (defines may come
 * later in the file, so this runs after the whole file is read). */
static int check_vars(const struct qb_template *t, const char *s, int line)
{
    const char *p = s;
    while ((p = strstr(p, "{{"))) {
        const char *e = strstr(p + 2, "}}");
        if (!e)
            return qb_err(QB_EFORMAT, "'%s':%d: '{{' without a closing '}}'", t->file, line);
        char *name = g_strstrip(g_strndup(p + 2, (gsize)(e - p - 2)));
        int ok = is_ident(name) && (find_name(var_names, (int)G_N_ELEMENTS(var_names), name) >= 0 ||
                                    brief_find_define(t, name));
        if (!ok) {
            int rc = qb_err(QB_EFORMAT, "'%s':%d: unknown variable '{{%s}}'", t->file, line, name);
            g_free(name);
            return rc;
        }
        g_free(name);
        p = e + 2;
    }
    return 0;
}

/* key=value or key="value" attributes of @table and @chart */
static int parse_attrs(const struct qb_template *t, int line, const char *s, struct tline *tl)
{
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        const char *k = s;
        while (*s && *s != '=' && *s != ' ' && *s != '\t')
            s++;
        if (*s != '=')
            return qb_err(QB_EFORMAT, "'%s':%d: expected key=value, not '%.*s'", t->file, line,
                          (int)(s - k), k);
        char *key = g_strndup(k, (gsize)(s - k));
        char *val;
        s++;
        if (*s == '"') {
            const char *v = ++s;
            while (*s && *s != '"')
                s++;
            if (*s != '"') {
                g_free(key);
                return qb_err(QB_EFORMAT, "'%s':%d: unterminated quote", t->file, line);
            }
            val = g_strndup(v, (gsize)(s - v));
            s++;
        } else {
            const char *v = s;
            while (*s && *s != ' ' && *s != '\t')
                s++;
            val = g_strndup(v, (gsize)(s - v));
        }
        char **slot = NULL;
        double *num = NULL;
        if (tl->d == D_TABLE && !strcmp(key, "cols"))
            slot = &tl->cols;
        else if (tl->d == D_CHART && !strcmp(key, "title"))
            slot = &tl->title;
        else if (tl->d == D_CHART && !strcmp(key, "subtitle"))
            slot = &tl->subtitle;
        else if (tl->d == D_CHART && !strcmp(key, "slice"))
            slot = &tl->slice;
        else if (tl->d == D_CHART && !strcmp(key, "width"))
            num = &tl->width;
        else if (tl->d == D_CHART && !strcmp(key, "height"))
            num = &tl->height;
        if (num) {
            char *end;
            *num = strtod(val, &end);
            if (end == val || *end || !(*num >= 72 && *num <= 720)) {
                int rc = qb_err(QB_EFORMAT, "'%s':%d: %s wants points between 72 and 720, not '%s'",
                                t->file, line, key, val);
                g_free(key), g_free(val);
                return rc;
            }
            g_free(val);
        } else if (slot) {
            g_free(*slot);
            *slot = val;
        } else {
            int rc = qb_err(QB_EFORMAT, "'%s':%d: unknown attribute '%s' of @%s", t->file, line,
                            key, dir_names[tl->d]);
            g_free(key), g_free(val);
            return rc;
        }
        g_free(key);
    }
    return 0;
}

/* @define NAME BODY: NAME a new identifier, not a variable's. */
static int parse_define(struct qb_template *t, int line, char *rest, struct tline *tl)
{
    int rc;
    char *q = rest;
    while (*q && *q != ' ' && *q != '\t')
        q++;
    tl->name = g_strndup(rest, (gsize)(q - rest));
    tl->text = g_strdup(g_strstrip(q));
    if (!is_ident(tl->name)) {
        rc = qb_err(QB_EFORMAT, "'%s':%d: @define needs a NAME (letters, digits, _), not '%s'",
                    t->file, line, tl->name);
        g_free(tl->name), g_free(tl->text);
        return rc;
    }
    if (brief_find_define(t, tl->name)) {
        rc = qb_err(QB_EFORMAT, "'%s':%d: '%s' is defined twice", t->file, line, tl->name);
        g_free(tl->name), g_free(tl->text);
        return rc;
    }
    if (find_name(var_names, (int)G_N_ELEMENTS(var_names), tl->name) >= 0) {
        rc = qb_err(QB_EFORMAT, "'%s':%d: '%s' is a variable and cannot be defined", t->file, line,
                    tl->name);
        g_free(tl->name), g_free(tl->text);
        return rc;
    }
    return 0;
}

/* @table NAME [cols="a | b"] and @chart KIND [title= subtitle= slice= width= height=]: a
 * known name, its attributes, and as many cols= as the table has columns. */
static int parse_table_or_chart(struct qb_template *t, int line, char *rest, struct tline *tl)
{
    int rc;
    char *q = rest;
    while (*q && *q != ' ' && *q != '\t')
        q++;
    char *name = g_strndup(rest, (gsize)(q - rest));
    if (tl->d == D_TABLE) {
        tl->arg = -1;
        for (int i = 0; i < N_TABLES; i++)
            if (!strcmp(brief_tables[i].name, name))
                tl->arg = i;
        if (tl->arg < 0) {
            rc = qb_err(QB_EFORMAT, "'%s':%d: unknown table '%s'", t->file, line, name);
            g_free(name);
            return rc;
        }
    } else {
        enum qb_chart_kind k;
        if (!*name || qb_chart_kind_parse(name, &k) < 0) {
            rc = qb_err_prefix(QB_EFORMAT, "'%s':%d", t->file, line);
            if (!*name)
                rc = qb_err(QB_EFORMAT, "'%s':%d: @chart needs a KIND", t->file, line);
            g_free(name);
            return rc;
        }
        tl->arg = (int)k;
    }
    g_free(name);
    /* the struct goes into t only on success, so free what attrs set on failure */
    if ((rc = parse_attrs(t, line, q, tl)) < 0) {
        g_free(tl->cols), g_free(tl->title), g_free(tl->subtitle), g_free(tl->slice);
        return rc;
    }
    if (tl->d == D_TABLE && tl->cols) {
        int n = 1;
        for (const char *c = tl->cols; *c; c++)
            n += *c == '|';
        if (n != brief_tables[tl->arg].n_cols) {
            rc = qb_err(QB_EFORMAT, "'%s':%d: table '%s' has %d columns, cols= names %d", t->file,
                        line, brief_tables[tl->arg].name, brief_tables[tl->arg].n_cols, n);
            g_free(tl->cols);
            return rc;
        }
    }
    return 0;
}

static int parse_line(struct qb_template *t, int line, char *s)
{
    struct tline tl = {0};
    char *p = s + 1, *rest;
    int rc;

    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    char save = *p;
    *p = 0;
    int d = find_name(dir_names, (int)G_N_ELEMENTS(dir_names), s + 1);
    if (d < 0)
        return qb_err(QB_EFORMAT, "'%s':%d: unknown directive '@%s'", t->file, line, s + 1);
    *p = save;
    if (*p && *p != ' ' && *p != '\t')
        return qb_err(QB_EFORMAT, "'%s':%d: unknown directive '%s'", t->file, line, s);
    rest = g_strstrip(p);
    tl.d = (enum dir)d;
    tl.line = line;
    tl.match = -1;
    switch (tl.d) {
    case D_TITLE:
    case D_LEAD:
    case D_H1:
    case D_H2:
    case D_P:
    case D_NOTE:
    case D_CODE:
    case D_FOOTER:
    case D_STAT:
        if (!*rest)
            return qb_err(QB_EFORMAT, "'%s':%d: @%s needs text", t->file, line, dir_names[d]);
        tl.text = g_strdup(rest);
        break;
    case D_DEFINE:
        if ((rc = parse_define(t, line, rest, &tl)) < 0)
            return rc;
        break;
    case D_IF: {
        const char *c = rest;
        if (*c == '!')
            tl.negate = 1, c++;
        if ((tl.arg = find_name(cond_names, (int)G_N_ELEMENTS(cond_names), c)) < 0)
            return qb_err(QB_EFORMAT, "'%s':%d: unknown condition '%s'", t->file, line, rest);
        break;
    }
    case D_ELSE:
    case D_ENDIF:
    case D_ENDEACH:
    case D_PAGE:
        if (*rest)
            return qb_err(QB_EFORMAT, "'%s':%d: @%s takes no arguments", t->file, line,
                          dir_names[d]);
        break;
    case D_EACH:
        if (strcmp(rest, "slice"))
            return qb_err(QB_EFORMAT, "'%s':%d: @each knows only 'slice', not '%s'", t->file, line,
                          rest);
        break;
    case D_LIST:
        if ((tl.arg = find_name(list_names, N_LISTS, rest)) < 0)
            return qb_err(QB_EFORMAT, "'%s':%d: unknown list '%s' (cliffs, caveats, warnings)",
                          t->file, line, rest);
        break;
    case D_TABLE:
    case D_CHART:
        if ((rc = parse_table_or_chart(t, line, rest, &tl)) < 0)
            return rc;
        break;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->l = g_renew(struct tline, t->l, (gsize)t->cap);
    }
    t->l[t->n++] = tl;
    return 0;
}

/* Open blocks while parsing: the @if, @else or @each lines not yet closed. */
struct blocks {
    int stack[64];
    int depth;
};

/* Links the directive just parsed (line idx of t) into its block: @if and @each open one,
 * @else and @endif close an @if (@else opening its second branch), @endeach an @each. */
static int match_block(struct qb_template *t, struct blocks *bl, int line)
{
    struct tline *tl = &t->l[t->n - 1];
    int idx = (int)(t->n - 1), *stack = bl->stack;

    if (tl->d == D_IF || tl->d == D_EACH) {
        if (bl->depth == 64)
            return qb_err(QB_EFORMAT, "'%s':%d: blocks nested too deeply", t->file, line);
        stack[bl->depth++] = idx;
    } else if (tl->d == D_ELSE || tl->d == D_ENDIF) {
        if (!bl->depth || t->l[stack[bl->depth - 1]].d == D_EACH ||
            (tl->d == D_ELSE && t->l[stack[bl->depth - 1]].d == D_ELSE))
            return qb_err(QB_EFORMAT, "'%s':%d: @%s without its @if", t->file, line,
                          dir_names[tl->d]);
        t->l[stack[bl->depth - 1]].match = idx;
        if (tl->d == D_ELSE)
            stack[bl->depth - 1] = idx;
        else
            bl->depth--;
    } else if (tl->d == D_ENDEACH) {
        if (!bl->depth || t->l[stack[bl->depth - 1]].d != D_EACH)
            return qb_err(QB_EFORMAT, "'%s':%d: @endeach without its @each", t->file, line);
        t->l[stack[--bl->depth]].match = idx;
    }
    return 0;
}

/* Once the whole file is read: every {{name}} is a variable or a define (defines may come
 * later in the file), and per-slice conditions sit inside @each. */
static int check_template(const struct qb_template *t)
{
    int rc;

    for (int64_t i = 0; i < t->n; i++) {
        const struct tline *tl = &t->l[i];
        const char *texts[] = {tl->text, tl->cols, tl->title, tl->subtitle, tl->slice};
        for (int k = 0; k < 5; k++)
            if (texts[k] && (rc = check_vars(t, texts[k], tl->line)) < 0)
                return rc;
        if (tl->d == D_IF && tl->arg >= N_GLOBAL_CONDS) {
            int inside = 0;
            for (int64_t j = 0; j < i; j++)
                if (t->l[j].d == D_EACH && t->l[j].match > i)
                    inside = 1;
            if (!inside)
                return qb_err(QB_EFORMAT, "'%s':%d: '%s' is a condition of @each slice only",
                              t->file, tl->line, cond_names[tl->arg]);
        }
    }
    return 0;
}

int qb_template_parse(const char *text, const char *file, struct qb_template **out)
{
    struct qb_template *t = g_new0(struct qb_template, 1);
    char **lines = g_strsplit(text, "\n", -1);
    GString *acc = g_string_new(NULL);
    struct blocks bl = {{0}, 0};
    int acc_line = 0, rc = 0;

    *out = NULL;
    t->file = g_strdup(file ? file : "template");
    for (int i = 0; lines[i]; i++) {
        char *s = lines[i];
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = 0;
        if (!acc->len) {
            char *b = s;
            while (*b == ' ' || *b == '\t')
                b++;
            if (!*b || *b == '#')
                continue;
            acc_line = i + 1;
            s = b;
            n = strlen(s);
        } else {
            g_string_append_c(acc, ' ');
            s = g_strchug(s);
            n = strlen(s);
        }
        if (n && s[n - 1] == '\\') { /* continued on the next line */
            s[n - 1] = 0;
            g_string_append(acc, g_strchomp(s));
            if (lines[i + 1])
                continue;
        } else {
            g_string_append(acc, s);
        }
        if (acc->str[0] != '@') {
            rc = qb_err(QB_EFORMAT, "'%s':%d: a line starts with a directive (@p, @h1, ...) or '#'",
                        t->file, acc_line);
            goto fail;
        }
        if ((rc = parse_line(t, acc_line, acc->str)) < 0 ||
            (rc = match_block(t, &bl, acc_line)) < 0)
            goto fail;
        g_string_truncate(acc, 0);
    }
    if (bl.depth) {
        const struct tline *unclosed = &t->l[bl.stack[bl.depth - 1]];
        rc = qb_err(QB_EFORMAT, "'%s':%d: @%s is never closed", t->file, unclosed->line,
                    dir_names[unclosed->d]);
        goto fail;
    }
    if ((rc = check_template(t)) < 0)
        goto fail;
    g_strfreev(lines);
    g_string_free(acc, TRUE);
    *out = t;
    return 0;
fail:
    g_strfreev(lines);
    g_string_free(acc, TRUE);
    qb_template_free(t);
    return rc;
}

static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    return g_path_get_dirname(buf);
}

int qb_template_load(const char *name, struct qb_template **out)
{
    char *path = NULL, *text = NULL, *dir = NULL;
    GError *ge = NULL;
    int rc;

    *out = NULL;
    if (!name || !strcmp(name, "default"))
        name = "leadership";
    if (strchr(name, '/') || g_str_has_suffix(name, ".tmpl")) {
        path = g_strdup(name);
    } else {
        if (!is_ident(name))
            return qb_err(QB_EINVAL,
                          "unknown template '%s' (leadership, review, or a path to a .tmpl file)",
                          name);
        const char *env = getenv("QBRIEF_TEMPLATES");
        char *cands[3] = {NULL, NULL, NULL};
        int nc = 0;
        if (env && *env)
            cands[nc++] = g_strdup_printf("%s/%s.tmpl", env, name);
        if ((dir = exe_dir()))
            cands[nc++] = g_strdup_printf("%s/../templates/%s.tmpl", dir, name);
        cands[nc++] = g_strdup_printf("templates/%s.tmpl", name);
        for (int i = 0; i < nc; i++) {
            if (!path && access(cands[i], R_OK) == 0)
                path = cands[i];
            else
                g_free(cands[i]);
        }
        g_free(dir);
        if (!path)
            return qb_err(QB_EINVAL,
                          "unknown template '%s' (leadership, review, or a path to a .tmpl "
                          "file; looked in $QBRIEF_TEMPLATES and bin/../templates)",
                          name);
    }
    if (!g_file_get_contents(path, &text, NULL, &ge)) {
        rc = qb_err(QB_EINVAL, "cannot read template '%s': %s", path, ge->message);
        g_error_free(ge);
        g_free(path);
        return rc;
    }
    if (!g_utf8_validate(text, -1, NULL)) {
        rc = qb_err(QB_EFORMAT, "'%s': template is not UTF-8 text", path);
    } else {
        char *base = g_path_get_basename(path);
        rc = qb_template_parse(text, strchr(name, '/') ? path : base, out);
        g_free(base);
    }
    g_free(text);
    g_free(path);
    return rc;
}

/* ---------------------------------------------------------------- expanding */

void brief_scope_set(struct scope *s, const char *k, char *v /* owned */)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->k[i], k)) {
            g_free(s->v[i]);
            s->v[i] = v;
            return;
        }
    if (s->n == (int)(sizeof s->k / sizeof s->k[0])) {
        g_free(v);
        return;
    }
    s->k[s->n] = k;
    s->v[s->n++] = v;
}

void brief_scope_clear(struct scope *s)
{
    for (int i = 0; i < s->n; i++)
        g_free(s->v[i]);
    s->n = 0;
}
static int expand_into(struct brief_ctx *c, const char *s, int line, GString *out, int depth);

static int expand_define(struct brief_ctx *c, const struct tline *d, GString *out, int depth)
{
    if (depth > 8)
        return qb_err(QB_EFORMAT, "'%s':%d: '%s' refers to itself", c->t->file, d->line, d->name);
    return expand_into(c, d->text, d->line, out, depth + 1);
}

static int expand_into(struct brief_ctx *c, const char *s, int line, GString *out, int depth)
{
    const char *p = s;
    int rc;
    for (;;) {
        const char *b = strstr(p, "{{");
        if (!b) {
            g_string_append(out, p);
            return 0;
        }
        g_string_append_len(out, p, b - p);
        const char *e = strstr(b + 2, "}}");
        if (!e)
            return qb_err(QB_EFORMAT, "'%s':%d: '{{' without a closing '}}'", c->t->file, line);
        char *name = g_strstrip(g_strndup(b + 2, (gsize)(e - b - 2)));
        const char *v = NULL;
        const struct tline *d;
        if (c->local)
            for (int i = 0; i < c->local->n && !v; i++)
                if (!strcmp(c->local->k[i], name))
                    v = c->local->v[i];
        if (!v)
            v = g_hash_table_lookup(c->vars, name);
        if (v) {
            g_string_append(out, v);
        } else if ((d = brief_find_define(c->t, name))) {
            if ((rc = expand_define(c, d, out, depth)) < 0) {
                g_free(name);
                return rc;
            }
        } else {
            rc = qb_err(QB_EFORMAT, "'%s':%d: '{{%s}}' has no value here", c->t->file, line, name);
            g_free(name);
            return rc;
        }
        g_free(name);
        p = e + 2;
    }
}

int brief_expand(struct brief_ctx *c, const char *s, int line, char **out)
{
    GString *g = g_string_new(NULL);
    int rc = expand_into(c, s, line, g, 0);
    *out = g_string_free(g, rc < 0);
    return rc;
}

/* Expands @define name with the local scope; "" when the template has no such define. */
int brief_pattern(struct brief_ctx *c, const char *name, struct scope *local, char **out)
{
    const struct tline *d = brief_find_define(c->t, name);
    struct scope *save = c->local;
    int rc;
    *out = NULL;
    if (!d) {
        *out = g_strdup("");
        return 0;
    }
    c->local = local;
    GString *g = g_string_new(NULL);
    rc = expand_define(c, d, g, 0);
    c->local = save;
    *out = g_string_free(g, rc < 0);
    return rc;
}
