/* brief: templates (parse, check, expand), the document they produce from an analysis, and
 * the Markdown, JSON and CSV writers; the PDF writer is pdf.c. The template language is
 * documented in docs/templates.md and must agree with the tables below (directives,
 * conditions, variables, tables, lists). Numbers follow shared/BRIEF.md: points with one
 * decimal, speedups with two significant digits, "n=240". */
#include "output/brief.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "collector/store/store.h"
#include "output/brief_int.h"
#include "output/chart.h"

#include <csv.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the language */

enum dir {
    D_TITLE, D_LEAD, D_H1, D_H2, D_P, D_NOTE, D_CODE, D_STAT, D_TABLE, D_CHART, D_LIST,
    D_IF, D_ELSE, D_ENDIF, D_EACH, D_ENDEACH, D_PAGE, D_FOOTER, D_DEFINE,
};
static const char *const dir_names[] = {
    "title", "lead", "h1", "h2", "p", "note", "code", "stat", "table", "chart", "list",
    "if", "else", "endif", "each", "endeach", "page", "footer", "define",
};

/* @if conditions; "each" adds the per-slice ones */
static const char *const cond_names[] = {
    "has_cliffs", "has_hidden_cliff", "has_latency", "has_memory", "has_calibration",
    "has_warnings", "has_caveats", "has_question", "has_undecided", "has_perplexity",
    "has_missing", "routed", "has_speedup",
    /* inside @each slice */
    "slice_has_cliff", "slice_is_perplexity", "slice_undecided",
};
enum { N_GLOBAL_CONDS = 13 };

/* generated tables, their column count, and the columns right-aligned */
static const struct {
    const char *name;
    int n_cols;
    const char *align;
} tables[] = {
    {"recommendation", 5, "lrlrl"},
    {"slices", 5, "llrrr"},
    {"accuracy", 9, "llrrrrrrl"},
    {"slice_configs", 9, "lrrrrrrrl"},
    {"configs", 6, "lrrrrr"},
    {"latency", 8, "lrrrrrrr"},
    {"memory", 5, "lrrrr"},
    {"deployment", 6, "llrrrr"},
    {"divergence", 5, "lrrrr"},
};
enum { T_RECOMMENDATION, T_SLICES, T_ACCURACY, T_SLICE_CONFIGS, T_CONFIGS, T_LATENCY, T_MEMORY,
       T_DEPLOYMENT, T_DIVERGENCE, N_TABLES };

static const char *const list_names[] = {"cliffs", "caveats", "warnings"};
enum { L_CLIFFS, L_CAVEATS, L_WARNINGS, N_LISTS };

/* Every {{variable}} the renderer knows. Item variables have values only inside the sentence
 * pattern (or @each body) that uses them; the template checker accepts them anywhere. */
static const char *const var_names[] = {
    "title", "question", "run", "model", "model_file", "model_sha", "architecture", "params",
    "model_format", "suite", "suite_file", "suite_sha", "n_items", "n_slices", "n_configs",
    "n_results", "n_missing", "baseline", "configs", "machine", "host", "started", "finished",
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
    "kind", "ngram", "floor",
};

struct tline {
    enum dir d;
    int line;
    int match;   /* @if: its @else or @endif; @else: its @endif; @each: its @endeach */
    int negate;  /* @if !cond */
    int arg;     /* condition, table, list or chart kind index */
    char *text;  /* text; @stat "value | label | note"; @define body */
    char *name;  /* @define name */
    char *cols;  /* @table cols= */
    char *title, *subtitle, *slice; /* @chart */
    double width, height;
};

struct qb_template {
    char *file;
    struct tline *l;
    int64_t n, cap;
};

int64_t qb_template_n_lines(const struct qb_template *t)
{
    return t ? t->n : 0;
}

static const struct tline *find_define(const struct qb_template *t, const char *name)
{
    for (int64_t i = 0; i < t->n; i++)
        if (t->l[i].d == D_DEFINE && !strcmp(t->l[i].name, name))
            return &t->l[i];
    return NULL;
}

const char *qb_template_define(const struct qb_template *t, const char *name)
{
    const struct tline *d = t ? find_define(t, name) : NULL;
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
        int ok = is_ident(name) &&
                 (find_name(var_names, (int)G_N_ELEMENTS(var_names), name) >= 0 || find_define(t, name));
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
            int rc = qb_err(QB_EFORMAT, "'%s':%d: unknown attribute '%s' of @%s", t->file, line, key,
                            dir_names[tl->d]);
            g_free(key), g_free(val);
            return rc;
        }
        g_free(key);
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
    case D_TITLE: case D_LEAD: case D_H1: case D_H2: case D_P: case D_NOTE: case D_CODE:
    case D_FOOTER: case D_STAT:
        if (!*rest)
            return qb_err(QB_EFORMAT, "'%s':%d: @%s needs text", t->file, line, dir_names[d]);
        tl.text = g_strdup(rest);
        break;
    case D_DEFINE: {
        char *q = rest;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        tl.name = g_strndup(rest, (gsize)(q - rest));
        tl.text = g_strdup(g_strstrip(q));
        if (!is_ident(tl.name)) {
            rc = qb_err(QB_EFORMAT, "'%s':%d: @define needs a NAME (letters, digits, _), not '%s'",
                        t->file, line, tl.name);
            g_free(tl.name), g_free(tl.text);
            return rc;
        }
        if (find_define(t, tl.name)) {
            rc = qb_err(QB_EFORMAT, "'%s':%d: '%s' is defined twice", t->file, line, tl.name);
            g_free(tl.name), g_free(tl.text);
            return rc;
        }
        if (find_name(var_names, (int)G_N_ELEMENTS(var_names), tl.name) >= 0) {
            rc = qb_err(QB_EFORMAT, "'%s':%d: '%s' is a variable and cannot be defined", t->file,
                        line, tl.name);
            g_free(tl.name), g_free(tl.text);
            return rc;
        }
        break;
    }
    case D_IF: {
        const char *c = rest;
        if (*c == '!')
            tl.negate = 1, c++;
        if ((tl.arg = find_name(cond_names, (int)G_N_ELEMENTS(cond_names), c)) < 0)
            return qb_err(QB_EFORMAT, "'%s':%d: unknown condition '%s'", t->file, line, rest);
        break;
    }
    case D_ELSE: case D_ENDIF: case D_ENDEACH: case D_PAGE:
        if (*rest)
            return qb_err(QB_EFORMAT, "'%s':%d: @%s takes no arguments", t->file, line, dir_names[d]);
        break;
    case D_EACH:
        if (strcmp(rest, "slice"))
            return qb_err(QB_EFORMAT, "'%s':%d: @each knows only 'slice', not '%s'", t->file, line, rest);
        break;
    case D_LIST:
        if ((tl.arg = find_name(list_names, N_LISTS, rest)) < 0)
            return qb_err(QB_EFORMAT, "'%s':%d: unknown list '%s' (cliffs, caveats, warnings)",
                          t->file, line, rest);
        break;
    case D_TABLE: case D_CHART: {
        char *q = rest;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        char *name = g_strndup(rest, (gsize)(q - rest));
        if (tl.d == D_TABLE) {
            tl.arg = -1;
            for (int i = 0; i < N_TABLES; i++)
                if (!strcmp(tables[i].name, name))
                    tl.arg = i;
            if (tl.arg < 0) {
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
            tl.arg = (int)k;
        }
        g_free(name);
        /* the struct goes into t only on success, so free what attrs set on failure */
        if ((rc = parse_attrs(t, line, q, &tl)) < 0) {
            g_free(tl.cols), g_free(tl.title), g_free(tl.subtitle), g_free(tl.slice);
            return rc;
        }
        if (tl.d == D_TABLE && tl.cols) {
            int n = 1;
            for (const char *c = tl.cols; *c; c++)
                n += *c == '|';
            if (n != tables[tl.arg].n_cols) {
                rc = qb_err(QB_EFORMAT, "'%s':%d: table '%s' has %d columns, cols= names %d",
                            t->file, line, tables[tl.arg].name, tables[tl.arg].n_cols, n);
                g_free(tl.cols);
                return rc;
            }
        }
        break;
    }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->l = g_renew(struct tline, t->l, (gsize)t->cap);
    }
    t->l[t->n++] = tl;
    return 0;
}

int qb_template_parse(const char *text, const char *file, struct qb_template **out)
{
    struct qb_template *t = g_new0(struct qb_template, 1);
    char **lines = g_strsplit(text, "\n", -1);
    GString *acc = g_string_new(NULL);
    int acc_line = 0, rc = 0;
    int stack[64], depth = 0;

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
        if ((rc = parse_line(t, acc_line, acc->str)) < 0)
            goto fail;
        g_string_truncate(acc, 0);
        struct tline *tl = &t->l[t->n - 1];
        int idx = (int)(t->n - 1);
        if (tl->d == D_IF || tl->d == D_EACH) {
            if (depth == 64) {
                rc = qb_err(QB_EFORMAT, "'%s':%d: blocks nested too deeply", t->file, acc_line);
                goto fail;
            }
            stack[depth++] = idx;
        } else if (tl->d == D_ELSE || tl->d == D_ENDIF) {
            if (!depth || t->l[stack[depth - 1]].d == D_EACH ||
                (tl->d == D_ELSE && t->l[stack[depth - 1]].d == D_ELSE)) {
                rc = qb_err(QB_EFORMAT, "'%s':%d: @%s without its @if", t->file, acc_line,
                            dir_names[tl->d]);
                goto fail;
            }
            t->l[stack[depth - 1]].match = idx;
            if (tl->d == D_ELSE)
                stack[depth - 1] = idx;
            else
                depth--;
        } else if (tl->d == D_ENDEACH) {
            if (!depth || t->l[stack[depth - 1]].d != D_EACH) {
                rc = qb_err(QB_EFORMAT, "'%s':%d: @endeach without its @each", t->file, acc_line);
                goto fail;
            }
            t->l[stack[--depth]].match = idx;
        } else if (tl->d == D_EACH) {
            ;
        }
    }
    if (depth) {
        rc = qb_err(QB_EFORMAT, "'%s':%d: @%s is never closed", t->file, t->l[stack[depth - 1]].line,
                    dir_names[t->l[stack[depth - 1]].d]);
        goto fail;
    }
    for (int64_t i = 0; i < t->n; i++) {
        const struct tline *tl = &t->l[i];
        const char *texts[] = {tl->text, tl->cols, tl->title, tl->subtitle, tl->slice};
        for (int k = 0; k < 5; k++)
            if (texts[k] && (rc = check_vars(t, texts[k], tl->line)) < 0)
                goto fail;
        if (tl->d == D_IF && tl->arg >= N_GLOBAL_CONDS) {
            /* per-slice conditions only inside @each */
            int inside = 0;
            for (int64_t j = 0; j < i; j++)
                if (t->l[j].d == D_EACH && t->l[j].match > i)
                    inside = 1;
            if (!inside) {
                rc = qb_err(QB_EFORMAT, "'%s':%d: '%s' is a condition of @each slice only", t->file,
                            tl->line, cond_names[tl->arg]);
                goto fail;
            }
        }
    }
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
            return qb_err(QB_EINVAL, "unknown template '%s' (leadership, review, or a path to a .tmpl file)", name);
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
            return qb_err(QB_EINVAL, "unknown template '%s' (leadership, review, or a path to a .tmpl "
                                     "file; looked in $QBRIEF_TEMPLATES and bin/../templates)", name);
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

/* ---------------------------------------------------------------- numbers in words */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = g_strdup_vprintf(f, ap);
    va_end(ap);
    return s;
}

#define NA "–"

/* fraction -> points, one decimal, no "-0.0" */
static char *pts(double frac)
{
    if (!isfinite(frac))
        return g_strdup(NA);
    double v = round(frac * 1000.0) / 10.0;
    return fmt("%.1f", v == 0 ? 0.0 : v);
}

/* signed: "+1.2", "-3.1", "0.0" */
static char *spts(double frac)
{
    if (!isfinite(frac))
        return g_strdup(NA);
    double v = round(frac * 1000.0) / 10.0;
    return v == 0 ? g_strdup("0.0") : fmt("%+.1f", v);
}

/* two significant digits: 0.98, 2.1, 12 */
static char *sig2(double x)
{
    if (!isfinite(x))
        return g_strdup(NA);
    double a = fabs(x);
    if (a >= 9.95)
        return fmt("%.0f", x);
    if (a >= 0.995)
        return fmt("%.1f", x);
    return fmt("%.2f", x);
}

static char *times(double x)
{
    if (!isfinite(x))
        return g_strdup(NA);
    char *s = sig2(x), *r = fmt("%s×", s);
    g_free(s);
    return r;
}

static char *percent(double frac)
{
    if (!isfinite(frac))
        return g_strdup(NA);
    double v = frac * 100.0;
    if (fabs(v) >= 9.95 || v == 0)
        return fmt("%.0f%%", v);
    return fmt("%.1f%%", v);
}

static char *bytes(double b)
{
    if (!isfinite(b) || b < 0)
        return g_strdup(NA);
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024.0 && i < 4)
        b /= 1024.0, i++;
    return i == 0 ? fmt("%.0f B", b) : fmt(b >= 100 ? "%.0f %s" : "%.1f %s", b, u[i]);
}

static char *ms(double v)
{
    if (!isfinite(v))
        return g_strdup(NA);
    return fmt(v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
}

static char *i64(int64_t v)
{
    return fmt("%lld", (long long)v);
}

static char *pvalue(double p)
{
    if (!isfinite(p))
        return g_strdup(NA);
    if (p < 0.001)
        return g_strdup("<0.001");
    return fmt(p < 0.01 ? "%.3f" : "%.2f", p);
}

/* ---------------------------------------------------------------- rendering context */

struct scope {
    const char *k[24];
    char *v[24];
    int n;
};

static void scope_set(struct scope *s, const char *k, char *v /* owned */)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->k[i], k)) {
            g_free(s->v[i]);
            s->v[i] = v;
            return;
        }
    if (s->n == 24) {
        g_free(v);
        return;
    }
    s->k[s->n] = k;
    s->v[s->n++] = v;
}

static void scope_clear(struct scope *s)
{
    for (int i = 0; i < s->n; i++)
        g_free(s->v[i]);
    s->n = 0;
}

struct ctx {
    const struct qb_analysis *a;
    const struct qb_template *t;
    GHashTable *vars;       /* global name -> value */
    struct scope *local;    /* item variables, or NULL */
    int64_t each_slice;     /* inside @each: the slice, else -1 */
    int conds[N_GLOBAL_CONDS];
    char **caveats;
    int64_t n_caveats;
    struct qb_doc *doc;
    int draw_charts;
    double chart_dpi;
    double text_width_pt;
};

static int expand_into(struct ctx *c, const char *s, int line, GString *out, int depth);

static int expand_define(struct ctx *c, const struct tline *d, GString *out, int depth)
{
    if (depth > 8)
        return qb_err(QB_EFORMAT, "'%s':%d: '%s' refers to itself", c->t->file, d->line, d->name);
    return expand_into(c, d->text, d->line, out, depth + 1);
}

static int expand_into(struct ctx *c, const char *s, int line, GString *out, int depth)
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
        } else if ((d = find_define(c->t, name))) {
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

static int expand(struct ctx *c, const char *s, int line, char **out)
{
    GString *g = g_string_new(NULL);
    int rc = expand_into(c, s, line, g, 0);
    *out = g_string_free(g, rc < 0);
    return rc;
}

/* Expands @define name with the local scope; "" when the template has no such define. */
static int pattern(struct ctx *c, const char *name, struct scope *local, char **out)
{
    const struct tline *d = find_define(c->t, name);
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

static void set(struct ctx *c, const char *k, char *v /* owned; NULL -> "–" */)
{
    g_hash_table_replace(c->vars, g_strdup(k), v ? v : g_strdup(NA));
}

static int has_latency(const struct qb_analysis *a)
{
    for (int64_t i = 0; i < a->n_configs; i++)
        for (int64_t j = 0; j < a->configs[i].n_lat; j++)
            if (isfinite(a->configs[i].lat[j].tpot_p50) || isfinite(a->configs[i].lat[j].ttft_p50))
                return 1;
    return 0;
}

/* The decode setting the headline numbers use: the first latency setting (in the baseline's
 * sorted order) that generated tokens, so a prefill-only setting (gen_len 0) is skipped. */
static const struct qb_an_latency *decode_setting(const struct qb_an_config *cf, const struct qb_an_config *base)
{
    for (int64_t j = 0; j < base->n_lat; j++) {
        const struct qb_an_latency *b = &base->lat[j];
        if (!(b->gen_len > 0 && isfinite(b->tpot_p50)))
            continue;
        for (int64_t k = 0; k < cf->n_lat; k++) {
            const struct qb_an_latency *l = &cf->lat[k];
            if (l->prompt_len == b->prompt_len && l->gen_len == b->gen_len && l->batch == b->batch &&
                isfinite(l->tpot_p50))
                return l;
        }
    }
    return NULL;
}

/* Blended cost of a plan: traffic-weighted p50 time per output token over the baseline's --
 * the analysis' own numbers, or when it has none (its first latency setting generated no
 * tokens) the same computed at the first decode setting. */
static void plan_tpot(const struct qb_analysis *a, const struct qb_an_plan *pl, double *tpot, double *ratio)
{
    const struct qb_an_config *base = &a->configs[a->baseline];
    const struct qb_an_latency *bl = decode_setting(base, base);
    *tpot = pl->tpot_ms;
    *ratio = pl->tpot_ratio;
    if (isfinite(*ratio) || !bl || !pl->config)
        return;
    double sum = 0;
    for (int64_t si = 0; si < a->n_slices && isfinite(sum); si++) {
        const struct qb_an_latency *l = decode_setting(&a->configs[pl->config[si]], base);
        sum += a->slices[si].traffic * (l ? l->tpot_p50 : NAN);
    }
    *tpot = sum;
    *ratio = sum / bl->tpot_p50;
}

static int has_memory(const struct qb_analysis *a)
{
    for (int64_t i = 0; i < a->n_configs; i++)
        if (a->configs[i].peak_rss_bytes >= 0)
            return 1;
    return 0;
}

static int slice_undecided(const struct qb_analysis *a, int64_t s)
{
    return a->slices[s].verdict == QB_VERDICT_UNDECIDED;
}

/* Joins names as "a, b and c" with the template's word for "and". */
static int join_and(struct ctx *c, char **names, int64_t n, char **out)
{
    char *and_word = NULL;
    int rc = pattern(c, "and", NULL, &and_word);
    if (rc < 0)
        return rc;
    GString *g = g_string_new(NULL);
    for (int64_t i = 0; i < n; i++) {
        if (i)
            g_string_append(g, i == n - 1 ? (*and_word ? " " : ", ") : ", ");
        if (i && i == n - 1 && *and_word)
            g_string_append_printf(g, "%s ", and_word);
        g_string_append(g, names[i]);
    }
    g_free(and_word);
    *out = g_string_free(g, FALSE);
    return 0;
}

/* verdict word from the template: verdict_holds, verdict_cliff, ... */
static int verdict_word(struct ctx *c, enum qb_an_verdict v, char **out)
{
    char name[32];
    snprintf(name, sizeof name, "verdict_%s", qb_an_verdict_name(v));
    return pattern(c, name, NULL, out);
}

/* Cell delta with its interval, through the delta_points / delta_ppl patterns. */
static int delta_text(struct ctx *c, const struct qb_an_slice *s, const struct qb_an_cell *cell, char **out)
{
    struct scope sc = {0};
    int rc;
    if (s->is_perplexity) {
        /* loss = ppl_ratio - 1 as a fraction; shown as percent of perplexity */
        scope_set(&sc, "delta", spts(-cell->delta));
        scope_set(&sc, "delta_lo", spts(-cell->delta_ci.hi));
        scope_set(&sc, "delta_hi", spts(-cell->delta_ci.lo));
        rc = pattern(c, "delta_ppl", &sc, out);
    } else {
        scope_set(&sc, "delta", spts(cell->delta));
        scope_set(&sc, "delta_lo", spts(cell->delta_ci.lo));
        scope_set(&sc, "delta_hi", spts(cell->delta_ci.hi));
        rc = pattern(c, "delta_points", &sc, out);
    }
    scope_clear(&sc);
    return rc;
}

static void slice_scope(struct ctx *c, int64_t si, struct scope *sc)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_slice *s = &a->slices[si];
    const struct qb_an_cell *cell = &s->cells[s->rec];
    scope_set(sc, "slice", g_strdup(s->name));
    scope_set(sc, "n", i64(cell->n));
    scope_set(sc, "n_items", i64(s->n_items));
    scope_set(sc, "tol", fmt("%.1f", s->tolerance));
    scope_set(sc, "traffic", percent(s->traffic));
    scope_set(sc, "rec", g_strdup(a->configs[s->rec].spec));
    scope_set(sc, "config", g_strdup(a->configs[s->rec].spec));
    scope_set(sc, "mde", pts(cell->mde));
    scope_set(sc, "kind", g_strdup(s->is_perplexity ? "perplexity" : "accuracy"));
    scope_set(sc, "delta", s->is_perplexity ? spts(-cell->delta) : spts(cell->delta));
    scope_set(sc, "delta_lo", s->is_perplexity ? spts(-cell->delta_ci.hi) : spts(cell->delta_ci.lo));
    scope_set(sc, "delta_hi", s->is_perplexity ? spts(-cell->delta_ci.lo) : spts(cell->delta_ci.hi));
}

static void cliff_scope(const struct qb_analysis *a, const struct qb_an_cliff *cl, struct scope *sc)
{
    const struct qb_an_slice *s = &a->slices[cl->slice];
    scope_set(sc, "slice", g_strdup(s->name));
    scope_set(sc, "above", g_strdup(a->configs[cl->above].spec));
    scope_set(sc, "below", g_strdup(a->configs[cl->below].spec));
    scope_set(sc, "loss", pts(cl->loss));
    scope_set(sc, "loss_lo", pts(cl->loss_ci.lo));
    scope_set(sc, "loss_hi", pts(cl->loss_ci.hi));
    scope_set(sc, "n", i64(s->cells[cl->below].n));
    scope_set(sc, "tol", fmt("%.1f", s->tolerance));
    scope_set(sc, "overall_loss", pts(cl->overall_loss));
    scope_set(sc, "overall_delta", spts(-cl->overall_loss));
}

/* The one-sentence answer, from the answer_* patterns (see docs/templates.md). */
/* The deployment the brief recommends: routing slices to their own configs only when that
 * needs less memory than the one config that holds for every slice (each config routed to
 * is loaded on its own, so a router over five configs holds five sets of weights). */
static const struct qb_an_plan *chosen_plan(const struct qb_analysis *a)
{
    if (a->routed.n_distinct > 1 && !(a->routed.mem_cost < a->single.mem_cost))
        return &a->single;
    return &a->routed;
}

/* The answer when one config serves everything because routing would not save memory: the
 * slices that need it (their own recommendation is that config; not those too small to tell
 * or failed by the baseline), with a cliff when one of them has one. 1 when it wrote the
 * answer, 0 when no slice needs that config. */
static int answer_single(struct ctx *c, GString *g)
{
    const struct qb_analysis *a = c->a;
    int64_t sc_cfg = a->single_config, n = 0, first = -1;
    char **names = g_new0(char *, (gsize)a->n_slices + 1), *list = NULL, *s = NULL;
    struct scope sc = {0};
    int rc;

    for (int64_t si = 0; si < a->n_slices; si++) {
        const struct qb_an_slice *sl = &a->slices[si];
        if (sl->rec != sc_cfg || sl->verdict == QB_VERDICT_UNDECIDED || sl->verdict == QB_VERDICT_FAILS)
            continue;
        if (first < 0 || (a->slices[first].cliff < 0 && sl->cliff >= 0))
            first = si;
        names[n++] = sl->name;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    if ((rc = join_and(c, names, n, &list)) < 0)
        goto out;
    if (a->slices[first].cliff >= 0)
        cliff_scope(a, &a->cliffs[a->slices[first].cliff], &sc);
    scope_set(&sc, "config", g_strdup(a->configs[sc_cfg].spec));
    scope_set(&sc, "slices", list);
    /* the baseline is kept, not served: answer_keep_all(_cliff) when the template has them */
    const int keep = sc_cfg == a->baseline && find_define(c->t, "answer_keep_all");
    const int with_cliff = a->slices[first].cliff >= 0 &&
                           find_define(c->t, keep ? "answer_keep_all_cliff" : "answer_single_cliff");
    rc = pattern(c,
                 keep ? (with_cliff ? "answer_keep_all_cliff" : "answer_keep_all")
                      : (with_cliff ? "answer_single_cliff" : "answer_single"),
                 &sc, &s);
    scope_clear(&sc);
    if (rc >= 0) {
        g_string_assign(g, s);
        rc = 1;
    }
    g_free(s);
out:
    g_free(names);
    return rc;
}

/* Appends the clause on the slices the baseline itself fails (not judged), if any. */
static int answer_fails(struct ctx *c, GString *g)
{
    const struct qb_analysis *a = c->a;
    char **names = g_new0(char *, (gsize)a->n_slices + 1), *list = NULL, *clause = NULL;
    struct scope sc = {0};
    int64_t n = 0;
    int rc = 0;

    for (int64_t si = 0; si < a->n_slices; si++)
        if (a->slices[si].verdict == QB_VERDICT_FAILS)
            names[n++] = a->slices[si].name;
    if (n == 0 || (rc = join_and(c, names, n, &list)) < 0)
        goto out;
    scope_set(&sc, "config", g_strdup(a->configs[a->baseline].spec));
    scope_set(&sc, "slices", list);
    scope_set(&sc, "floor", fmt("%g", 100 * QB_AN_FLOOR_ACC));
    if ((rc = pattern(c, "answer_fails", &sc, &clause)) >= 0 && *clause) {
        if (g->len)
            g_string_append(g, "; ");
        g_string_append(g, clause);
    }
    g_free(clause);
    scope_clear(&sc);
out:
    g_free(names);
    return rc;
}

static int make_answer(struct ctx *c, char **out)
{
    const struct qb_analysis *a = c->a;
    GString *g = g_string_new(NULL);
    char **names = g_new0(char *, (gsize)a->n_slices + 1);
    int rc = 0;
    int64_t n_serve_groups = 0;

    *out = NULL;
    /* clauses, cheapest config first (the ladder's bottom); per config: the slices it serves
     * that hold, then those kept there by a cliff, then those too small to tell */
    for (int64_t ci = a->n_configs - 1; ci >= 0; ci--) {
        for (int kind = 0; kind < 3; kind++) {
            int64_t n = 0, first = -1;
            for (int64_t si = 0; si < a->n_slices; si++) {
                const struct qb_an_slice *s = &a->slices[si];
                if (s->rec != ci || s->verdict == QB_VERDICT_FAILS)
                    continue;
                int k = s->verdict == QB_VERDICT_UNDECIDED ? 2
                        : (s->verdict == QB_VERDICT_CLIFF || ci == a->baseline) ? 1 : 0;
                if (k != kind)
                    continue;
                if (first < 0)
                    first = si;
                names[n++] = a->slices[si].name;
            }
            if (!n)
                continue;
            struct scope sc = {0};
            char *list = NULL, *clause = NULL;
            const char *pat = kind == 0 ? "answer_serve" : kind == 2 ? "answer_undecided" : "answer_keep";
            if ((rc = join_and(c, names, n, &list)) < 0)
                goto out;
            if (kind == 1 && a->slices[first].cliff >= 0) {
                cliff_scope(a, &a->cliffs[a->slices[first].cliff], &sc);
                pat = "answer_keep_cliff";
            } else {
                scope_set(&sc, "n", i64(a->slices[first].cells[ci].n));
            }
            scope_set(&sc, "config", g_strdup(a->configs[ci].spec));
            scope_set(&sc, "slices", list);
            if (kind == 0)
                n_serve_groups++;
            rc = pattern(c, pat, &sc, &clause);
            scope_clear(&sc);
            if (rc < 0)
                goto out;
            if (*clause) {
                if (g->len)
                    g_string_append(g, "; ");
                g_string_append(g, clause);
            }
            g_free(clause);
        }
    }
    /* routing would not save memory: one config for all traffic (the baseline too, when a
     * slice needs it: the clauses above would route the rest to configs the deployment
     * figures do not count) */
    int single = 0;
    if (chosen_plan(a) == &a->single && find_define(c->t, "answer_single")) {
        if ((single = answer_single(c, g)) < 0) {
            rc = single;
            goto out;
        }
    }
    /* one config serves everything and holds: the short form */
    if (!single) {
        int all_one = a->n_slices > 0;
        for (int64_t si = 0; si < a->n_slices; si++)
            if (a->slices[si].rec != a->slices[0].rec || a->slices[si].verdict != QB_VERDICT_HOLDS)
                all_one = 0;
        int none = a->n_slices > 0;
        for (int64_t si = 0; si < a->n_slices; si++)
            if (a->slices[si].rec != a->baseline || a->slices[si].verdict == QB_VERDICT_CLIFF ||
                a->slices[si].verdict == QB_VERDICT_FAILS)
                none = 0;
        const char *pat = all_one ? "answer_all" : none ? "answer_none" : NULL;
        if (pat && find_define(c->t, pat)) {
            struct scope sc = {0};
            char *s = NULL;
            scope_set(&sc, "config", g_strdup(a->configs[all_one ? a->slices[0].rec : a->baseline].spec));
            rc = pattern(c, pat, &sc, &s);
            scope_clear(&sc);
            if (rc < 0)
                goto out;
            g_string_assign(g, s);
            g_free(s);
        }
    }
    if ((rc = answer_fails(c, g)) < 0)
        goto out;
    /* a sentence: capital first letter, one full stop */
    if (g->len) {
        gunichar u = g_utf8_get_char(g->str);
        if (g_unichar_islower(u)) {
            char buf[8];
            int n0 = g_unichar_to_utf8(u, NULL), n1 = g_unichar_to_utf8(g_unichar_toupper(u), buf);
            g_string_erase(g, 0, n0);
            g_string_insert_len(g, 0, buf, n1);
        }
        if (g->str[g->len - 1] != '.')
            g_string_append_c(g, '.');
    }
out:
    (void)n_serve_groups;
    g_free(names);
    *out = g_string_free(g, rc < 0);
    return rc;
}

static char *machine_text(const char *json, const char *host)
{
    json_error_t je;
    json_t *j = json ? json_loads(json, 0, &je) : NULL;
    char *r = NULL;
    if (j && json_is_object(j)) {
        const char *cpu = json_string_value(json_object_get(j, "cpu"));
        json_int_t cores = json_integer_value(json_object_get(j, "cores"));
        const char *isa = json_string_value(json_object_get(j, "isa"));
        GString *g = g_string_new(cpu ? cpu : host ? host : "");
        if (cores > 0 || isa) {
            g_string_append(g, " (");
            if (cores > 0)
                g_string_append_printf(g, "%lld cores%s", (long long)cores, isa ? ", " : "");
            if (isa)
                g_string_append(g, isa);
            g_string_append(g, ")");
        }
        r = g_string_free(g, FALSE);
    }
    json_decref(j);
    if (!r || !*r) {
        g_free(r);
        r = g_strdup(host ? host : NA);
    }
    return r;
}

static char *basename_of(const char *p)
{
    return p ? g_path_get_basename(p) : g_strdup(NA);
}

static char *file_stem(const char *p)
{
    char *b = basename_of(p), *dot = strrchr(b, '.');
    if (dot && dot != b)
        *dot = 0;
    return b;
}

static int make_caveats(struct ctx *c)
{
    const struct qb_analysis *a = c->a;
    GPtrArray *v = g_ptr_array_new();
    int rc = 0;
    char *s;

#define ADD(name, sc)                                          \
    do {                                                       \
        if ((rc = pattern(c, name, sc, &s)) < 0)               \
            goto out;                                          \
        if (*s) g_ptr_array_add(v, s); else g_free(s);          \
    } while (0)

    for (int64_t si = 0; si < a->n_slices; si++) {
        const struct qb_an_slice *sl = &a->slices[si];
        const struct qb_an_cell *cell = &sl->cells[sl->rec];
        struct scope sc = {0};
        slice_scope(c, si, &sc);
        /* the cell that decides: the recommendation, or the cheapest config when that is
         * the baseline (whose own mde says nothing) */
        const struct qb_an_cell *dec = cell;
        if (sl->rec == a->baseline && a->n_configs > 1)
            dec = &sl->cells[a->n_configs - 1 == a->baseline ? a->n_configs - 2 : a->n_configs - 1];
        scope_set(&sc, "mde", pts(dec->mde));
        if (cell->n < QB_AN_MIN_ITEMS)
            ADD("caveat_few_items", &sc);
        else if (dec->underpowered)
            ADD(sl->is_perplexity ? "caveat_underpowered_ppl" : "caveat_underpowered", &sc);
        scope_clear(&sc);
    }
    if (a->n_missing > 0) {
        struct scope sc = {0};
        scope_set(&sc, "n", i64(a->n_missing));
        ADD("caveat_missing", &sc);
        scope_clear(&sc);
    }
    for (int64_t si = 0; si < a->n_slices; si++)
        if (a->slices[si].is_perplexity) {
            ADD("caveat_perplexity", NULL);
            break;
        }
    if (!has_latency(a))
        ADD("caveat_no_latency", NULL);
    if (!has_memory(a))
        ADD("caveat_no_memory", NULL);
    if (!(a->calib_file || a->calib_sha256)) {
        ADD("caveat_no_calibration", NULL);
    } else if (a->calib_overlap_items < 0) {
        ADD("caveat_calibration", NULL);
    } else {
        struct scope sc = {0};
        scope_set(&sc, "n", i64(a->calib_overlap_items));
        scope_set(&sc, "ngram", i64(a->calib_overlap_ngram));
        ADD(a->calib_overlap_items > 0 ? "caveat_calibration_overlap" : "caveat_calibration_clean", &sc);
        scope_clear(&sc);
    }
#undef ADD
out:
    c->n_caveats = (int64_t)v->len;
    g_ptr_array_add(v, NULL);
    c->caveats = (char **)g_ptr_array_free(v, FALSE);
    return rc;
}

static int make_vars(struct ctx *c, const struct qb_brief_opts *o, const char *date)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_config *base = &a->configs[a->baseline];
    int rc;

    set(c, "model", file_stem(a->model_path));
    set(c, "machine", machine_text(a->machine_json, a->host));
    if (a->title && *a->title) {
        set(c, "title", g_strdup(a->title));
    } else { /* the run names no decision: the template's default_title says it */
        char *tt = NULL;
        if ((rc = pattern(c, "default_title", NULL, &tt)) < 0)
            return rc;
        set(c, "title", *tt ? tt : NULL);
        if (!*tt)
            g_free(tt);
    }
    set(c, "question", g_strdup(a->question));
    set(c, "run", g_strdup(a->run_name));
    set(c, "model_file", g_strdup(a->model_path));
    set(c, "model_sha", g_strdup(a->model_sha256));
    set(c, "architecture", g_strdup(a->architecture));
    set(c, "params", a->n_params > 0 ? (a->n_params >= 1000000000 ? fmt("%.1fB", a->n_params / 1e9)
                                      : a->n_params >= 1000000 ? fmt("%.0fM", a->n_params / 1e6)
                                                               : fmt("%.0fK", a->n_params / 1e3))
                                     : NULL);
    set(c, "model_format", g_strdup(a->model_format));
    set(c, "suite", file_stem(a->suite_path));
    set(c, "suite_file", g_strdup(a->suite_path));
    set(c, "suite_sha", g_strdup(a->suite_sha256));
    set(c, "n_items", i64(a->n_suite_items));
    set(c, "n_slices", i64(a->n_slices));
    set(c, "n_configs", i64(a->n_configs));
    set(c, "n_results", i64(a->n_results));
    set(c, "n_missing", i64(a->n_missing));
    set(c, "baseline", g_strdup(base->spec));
    {
        GString *g = g_string_new(NULL);
        for (int64_t i = 0; i < a->n_configs; i++)
            g_string_append_printf(g, "%s%s", i ? ", " : "", a->configs[i].spec);
        set(c, "configs", g_string_free(g, FALSE));
    }
    set(c, "host", g_strdup(a->host));
    set(c, "started", g_strdup(a->started_at));
    set(c, "finished", g_strdup(a->finished_at));
    set(c, "date", g_strdup(date));
    set(c, "version", g_strdup(a->qbrief_version));
    set(c, "commit", g_strdup(a->git_commit));
    set(c, "run_command", g_strdup(a->command_line));
    set(c, "command", g_strdup(o && o->command_line ? o->command_line : NULL));
    set(c, "confidence", fmt("%.0f%%", a->confidence * 100));
    {
        char *p = NULL;
        if ((rc = pattern(c, a->policy == QB_AN_POINT ? "policy_point" : "policy_interval", NULL, &p)) < 0)
            return rc;
        set(c, "policy", p);
    }
    set(c, "tolerance", fmt("%.1f", a->overall.tolerance));
    set(c, "resamples", i64(a->resamples));
    set(c, "seed", fmt("%llu", (unsigned long long)a->seed));
    const struct qb_an_plan *plan = chosen_plan(a);
    set(c, "mem_saving", percent(1.0 - plan->mem_ratio));
    set(c, "mem_baseline", bytes(base->mem_cost));
    set(c, "mem_plan", bytes(plan->mem_cost));
    {
        double tpot, ratio;
        const struct qb_an_latency *bl = decode_setting(base, base);
        plan_tpot(a, plan, &tpot, &ratio);
        set(c, "blended_cost", times(ratio));
        set(c, "blended_tpot", ms(tpot));
        set(c, "baseline_tpot", ms(bl ? bl->tpot_p50 : base->lat_cost));
    }
    set(c, "single_config", g_strdup(a->configs[a->single_config].spec));
    set(c, "single_mem_saving", percent(1.0 - a->single.mem_ratio));
    set(c, "single_cost", times(a->single.tpot_ratio));
    {
        /* decode speedup of the config serving the largest traffic share */
        int64_t best = a->baseline;
        double best_share = -1;
        for (int64_t ci = 0; ci < a->n_configs; ci++) {
            double share = 0;
            for (int64_t si = 0; si < a->n_slices; si++)
                if (plan->config && plan->config[si] == ci)
                    share += a->slices[si].traffic;
            if (share > best_share)
                best_share = share, best = ci;
        }
        const struct qb_an_config *cf = &a->configs[best];
        const struct qb_an_latency *l = decode_setting(cf, base), *bl = decode_setting(base, base);
        double sp = l && bl ? bl->tpot_p50 / l->tpot_p50 : NAN;
        set(c, "speedup", times(sp));
        set(c, "speedup_config", g_strdup(cf->spec));
        c->conds[12] = isfinite(sp);
    }
    set(c, "calib_file", basename_of(a->calib_file));
    set(c, "calib_sha", g_strdup(a->calib_sha256));
    set(c, "calib_sequences", i64(a->calib_sequences));
    set(c, "calib_seq_len", i64(a->calib_seq_len));
    set(c, "n_cliffs", i64(a->n_cliffs));
    {
        const struct qb_an_cliff *cl = a->n_cliffs ? &a->cliffs[0] : NULL;
        set(c, "cliff_slice", g_strdup(cl ? a->slices[cl->slice].name : NULL));
        set(c, "cliff_above", g_strdup(cl ? a->configs[cl->above].spec : NULL));
        set(c, "cliff_below", g_strdup(cl ? a->configs[cl->below].spec : NULL));
        set(c, "cliff_loss", cl ? pts(cl->loss) : NULL);
        set(c, "cliff_loss_lo", cl ? pts(cl->loss_ci.lo) : NULL);
        set(c, "cliff_loss_hi", cl ? pts(cl->loss_ci.hi) : NULL);
        set(c, "cliff_n", cl ? i64(a->slices[cl->slice].cells[cl->below].n) : NULL);
        set(c, "cliff_overall", cl ? spts(-cl->overall_loss) : NULL);
    }
    set(c, "overall_config", g_strdup(a->configs[a->overall.rec].spec));
    set(c, "overall_delta", a->overall.cells ? spts(a->overall.cells[a->overall.rec].delta) : NULL);
    set(c, "page", g_strdup("{page}"));
    set(c, "pages", g_strdup("{pages}"));

    /* conditions */
    int hidden = 0, undecided = 0, ppl = 0;
    for (int64_t i = 0; i < a->n_cliffs; i++)
        hidden |= a->cliffs[i].hides;
    for (int64_t i = 0; i < a->n_slices; i++)
        undecided |= slice_undecided(a, i), ppl |= a->slices[i].is_perplexity;
    c->conds[0] = a->n_cliffs > 0;
    c->conds[1] = hidden;
    c->conds[2] = has_latency(a);
    c->conds[3] = has_memory(a);
    c->conds[4] = a->calib_file || a->calib_sha256;
    c->conds[5] = a->n_warnings > 0;
    c->conds[7] = a->question && *a->question;
    c->conds[8] = undecided;
    c->conds[9] = ppl;
    c->conds[10] = a->n_missing > 0;
    c->conds[11] = a->routed.n_distinct > 1;

    if ((rc = make_caveats(c)) < 0)
        return rc;
    c->conds[6] = c->n_caveats > 0;
    char *ans = NULL;
    if ((rc = make_answer(c, &ans)) < 0)
        return rc;
    set(c, "answer", ans);
    return 0;
}

/* ---------------------------------------------------------------- the document */

static struct qb_blk *doc_add(struct qb_doc *d, enum qb_blk_kind k)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->blk = g_renew(struct qb_blk, d->blk, (gsize)d->cap);
    }
    struct qb_blk *b = &d->blk[d->n++];
    memset(b, 0, sizeof *b);
    b->kind = k;
    return b;
}

static void doc_free(struct qb_doc *d)
{
    for (int64_t i = 0; i < d->n; i++) {
        struct qb_blk *b = &d->blk[i];
        g_free(b->text);
        for (int64_t j = 0; j < b->n_items; j++)
            g_free(b->items[j]);
        g_free(b->items);
        for (int64_t j = 0; j < b->n_rows * b->n_cols; j++)
            g_free(b->cells[j]);
        g_free(b->cells);
        g_free(b->align);
        free(b->png);
        g_free(b->file);
        g_free(b->title);
        g_free(b->subtitle);
        g_free(b->slice);
    }
    g_free(d->blk);
    g_free(d->footer);
    g_free(d->page_label);
    g_free(d->doc_title);
    g_free(d->answer);
    memset(d, 0, sizeof *d);
}

/* table builder: rows of owned strings */
struct tb {
    GPtrArray *cells;
    int n_cols;
};

static void tb_add(struct tb *t, char *s)
{
    g_ptr_array_add(t->cells, s ? s : g_strdup(NA));
}

static int status_word(struct ctx *c, const struct qb_an_slice *s, int64_t ci, char **out)
{
    const struct qb_an_cell *cell = &s->cells[ci];
    const char *name = ci == c->a->baseline      ? "status_baseline"
                       : cell->significant_loss ? "status_loss"
                       : cell->within           ? "status_within"
                                                : "status_unclear";
    char *w = NULL;
    int rc = pattern(c, name, NULL, &w);
    if (rc < 0)
        return rc;
    if (ci == s->rec && ci != c->a->baseline) {
        char *r = NULL;
        if ((rc = pattern(c, "status_recommended", NULL, &r)) < 0) {
            g_free(w);
            return rc;
        }
        if (*r) {
            char *x = *w ? fmt("%s, %s", w, r) : g_strdup(r);
            g_free(w);
            w = x;
        }
        g_free(r);
    }
    *out = w;
    return 0;
}

static int cell_row(struct ctx *c, struct tb *t, int64_t si, int64_t ci, int with_slice)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_slice *s = &a->slices[si];
    const struct qb_an_cell *cell = &s->cells[ci];
    char *d = NULL, *w = NULL;
    int rc;
    if (with_slice)
        tb_add(t, g_strdup(s->name));
    tb_add(t, g_strdup(a->configs[ci].spec));
    tb_add(t, i64(cell->n));
    if (s->is_perplexity) {
        tb_add(t, isfinite(cell->ppl) ? fmt("ppl %.3g", cell->ppl) : NULL);
    } else {
        char *x = pts(cell->acc), *lo = pts(cell->acc_ci.lo), *hi = pts(cell->acc_ci.hi);
        tb_add(t, fmt("%s (%s–%s)", x, lo, hi));
        g_free(x), g_free(lo), g_free(hi);
    }
    if ((rc = delta_text(c, s, cell, &d)) < 0)
        return rc;
    tb_add(t, ci == a->baseline ? g_strdup(NA) : d);
    if (ci == a->baseline)
        g_free(d);
    tb_add(t, ci == a->baseline || s->is_perplexity
                  ? g_strdup(NA)
                  : fmt("−%lld / +%lld", (long long)cell->flips_lost, (long long)cell->flips_gained));
    if (with_slice) {
        tb_add(t, ci == a->baseline ? g_strdup(NA) : pvalue(cell->mcnemar_p));
    } else {
        tb_add(t, ci == a->baseline ? g_strdup(NA) : pvalue(cell->mcnemar_p));
        tb_add(t, ci == a->baseline || !isfinite(cell->kl_mean) ? g_strdup(NA) : fmt("%.3g", cell->kl_mean));
    }
    tb_add(t, ci == a->baseline ? g_strdup(NA) : pts(cell->mde));
    if (with_slice) {
        /* accuracy table: 9 columns: slice config n acc delta flips p mde status */
    }
    if ((rc = status_word(c, s, ci, &w)) < 0)
        return rc;
    tb_add(t, w);
    return 0;
}

static int build_table(struct ctx *c, const struct tline *tl, struct qb_blk *b)
{
    const struct qb_analysis *a = c->a;
    struct tb t = {g_ptr_array_new(), tables[tl->arg].n_cols};
    int rc = 0;

    /* header */
    if (tl->cols) {
        char *cols = NULL;
        if ((rc = expand(c, tl->cols, tl->line, &cols)) < 0)
            goto out;
        char **v = g_strsplit(cols, "|", -1);
        for (int i = 0; v[i]; i++)
            tb_add(&t, g_strdup(g_strstrip(v[i])));
        g_strfreev(v);
        g_free(cols);
    } else {
        for (int i = 0; i < t.n_cols; i++)
            tb_add(&t, g_strdup(""));
    }
    switch (tl->arg) {
    case T_RECOMMENDATION:
        for (int64_t si = 0; si < a->n_slices; si++) {
            const struct qb_an_slice *s = &a->slices[si];
            char *d = NULL, *v = NULL;
            tb_add(&t, g_strdup(s->name));
            tb_add(&t, percent(s->traffic));
            tb_add(&t, g_strdup(a->configs[s->rec].spec));
            if ((rc = delta_text(c, s, &s->cells[s->rec], &d)) < 0 || (rc = verdict_word(c, s->verdict, &v)) < 0) {
                g_free(d);
                goto out;
            }
            tb_add(&t, d);
            tb_add(&t, v);
        }
        break;
    case T_SLICES:
        for (int64_t si = 0; si < a->n_slices; si++) {
            const struct qb_an_slice *s = &a->slices[si];
            char *k = NULL;
            if ((rc = pattern(c, s->is_perplexity ? "kind_perplexity" : "kind_accuracy", NULL, &k)) < 0)
                goto out;
            tb_add(&t, g_strdup(s->name));
            tb_add(&t, k);
            tb_add(&t, i64(s->n_items));
            tb_add(&t, fmt("%.1f", s->tolerance));
            tb_add(&t, percent(s->traffic));
        }
        break;
    case T_ACCURACY:
        for (int64_t si = 0; si < a->n_slices; si++)
            for (int64_t ci = 0; ci < a->n_configs; ci++)
                if ((rc = cell_row(c, &t, si, ci, 1)) < 0)
                    goto out;
        break;
    case T_SLICE_CONFIGS:
        if (c->each_slice < 0) {
            rc = qb_err(QB_EFORMAT, "'%s':%d: table 'slice_configs' belongs inside @each slice",
                        c->t->file, tl->line);
            goto out;
        }
        for (int64_t ci = 0; ci < a->n_configs; ci++)
            if ((rc = cell_row(c, &t, c->each_slice, ci, 0)) < 0)
                goto out;
        break;
    case T_CONFIGS:
        for (int64_t ci = 0; ci < a->n_configs; ci++) {
            const struct qb_an_config *cf = &a->configs[ci];
            tb_add(&t, g_strdup(cf->spec));
            tb_add(&t, isfinite(cf->bits_per_weight) ? fmt("%.2f", cf->bits_per_weight) : NULL);
            tb_add(&t, cf->weight_bytes >= 0 ? bytes((double)cf->weight_bytes) : NULL);
            tb_add(&t, cf->peak_rss_bytes >= 0 ? bytes((double)cf->peak_rss_bytes) : NULL);
            tb_add(&t, ci == a->baseline ? g_strdup(NA) : percent(cf->mem_saving));
            tb_add(&t, isfinite(cf->quant_seconds) ? fmt("%.2f", cf->quant_seconds) : NULL);
        }
        break;
    case T_LATENCY:
        for (int64_t ci = 0; ci < a->n_configs; ci++) {
            const struct qb_an_config *cf = &a->configs[ci];
            for (int64_t li = 0; li < cf->n_lat; li++) {
                const struct qb_an_latency *l = &cf->lat[li];
                char *p50 = ms(l->ttft_p50), *p95 = ms(l->ttft_p95), *t50 = ms(l->tpot_p50),
                     *t95 = ms(l->tpot_p95);
                tb_add(&t, g_strdup(cf->spec));
                tb_add(&t, fmt("%lld / %lld / %lld", (long long)l->prompt_len, (long long)l->gen_len,
                               (long long)l->batch));
                tb_add(&t, fmt("%s / %s", p50, p95));
                tb_add(&t, fmt("%s / %s", t50, t95));
                tb_add(&t, isfinite(l->decode_tok_s_p50) ? fmt("%.1f", l->decode_tok_s_p50) : NULL);
                tb_add(&t, times(l->speedup_tpot));
                tb_add(&t, times(l->speedup_ttft));
                tb_add(&t, i64(l->n_samples));
                g_free(p50), g_free(p95), g_free(t50), g_free(t95);
            }
        }
        break;
    case T_MEMORY:
        for (int64_t ci = 0; ci < a->n_configs; ci++) {
            const struct qb_an_config *cf = &a->configs[ci];
            tb_add(&t, g_strdup(cf->spec));
            tb_add(&t, cf->weight_bytes >= 0 ? bytes((double)cf->weight_bytes) : NULL);
            if (cf->kv_cache_bytes >= 0) {
                char *kv = bytes((double)cf->kv_cache_bytes);
                tb_add(&t, cf->mem_context > 0 ? fmt("%s (%lld)", kv, (long long)cf->mem_context) : g_strdup(kv));
                g_free(kv);
            } else {
                tb_add(&t, NULL);
            }
            tb_add(&t, cf->peak_rss_bytes >= 0 ? bytes((double)cf->peak_rss_bytes) : NULL);
            tb_add(&t, ci == a->baseline ? g_strdup(NA) : percent(cf->mem_saving));
        }
        break;
    case T_DEPLOYMENT:
        for (int p = 0; p < 2; p++) {
            const struct qb_an_plan *pl = p ? &a->routed : &a->single;
            char *name = NULL;
            if ((rc = pattern(c, p ? "plan_routed" : "plan_single", NULL, &name)) < 0)
                goto out;
            tb_add(&t, name);
            GString *g = g_string_new(NULL);
            for (int64_t ci = 0; ci < a->n_configs; ci++) {
                int used = 0;
                for (int64_t si = 0; si < a->n_slices && pl->config; si++)
                    used |= pl->config[si] == ci;
                if (used)
                    g_string_append_printf(g, "%s%s", g->len ? ", " : "", a->configs[ci].spec);
            }
            tb_add(&t, g_string_free(g, FALSE));
            tb_add(&t, bytes(pl->mem_cost));
            tb_add(&t, times(pl->mem_ratio));
            double tpot, ratio;
            plan_tpot(a, pl, &tpot, &ratio);
            tb_add(&t, ms(tpot));
            tb_add(&t, times(ratio));
        }
        break;
    case T_DIVERGENCE:
        for (int64_t ci = 0; ci < a->n_configs; ci++) {
            const struct qb_an_cell *cell = a->overall.cells ? &a->overall.cells[ci] : NULL;
            tb_add(&t, g_strdup(a->configs[ci].spec));
            if (!cell || ci == a->baseline) {
                for (int k = 0; k < 4; k++)
                    tb_add(&t, NULL);
                continue;
            }
            tb_add(&t, isfinite(cell->kl_mean) ? fmt("%.3g", cell->kl_mean) : NULL);
            tb_add(&t, isfinite(cell->kl_p99) ? fmt("%.3g", cell->kl_p99) : NULL);
            tb_add(&t, isfinite(cell->top1) ? percent(cell->top1) : NULL);
            tb_add(&t, isfinite(cell->flip_rate) ? percent(cell->flip_rate) : NULL);
        }
        break;
    }
    b->n_cols = t.n_cols;
    b->n_rows = (int64_t)t.cells->len / t.n_cols;
    b->align = g_strdup(tables[tl->arg].align);
out:
    if (rc < 0) {
        for (guint i = 0; i < t.cells->len; i++)
            g_free(g_ptr_array_index(t.cells, i));
        g_ptr_array_set_size(t.cells, 0);
        b->n_rows = b->n_cols = 0;
    }
    b->cells = (char **)g_ptr_array_free(t.cells, FALSE);
    if (rc >= 0 && b->n_rows * b->n_cols == 0)
        b->n_rows = 0;
    return rc;
}

static int build_list(struct ctx *c, const struct tline *tl, struct qb_blk *b)
{
    const struct qb_analysis *a = c->a;
    GPtrArray *v = g_ptr_array_new();
    int rc = 0;
    if (tl->arg == L_CLIFFS) {
        for (int64_t i = 0; i < a->n_cliffs; i++) {
            const struct qb_an_cliff *cl = &a->cliffs[i];
            struct scope sc = {0};
            char *s1 = NULL, *s2 = NULL;
            cliff_scope(a, cl, &sc);
            int ppl = a->slices[cl->slice].is_perplexity;
            rc = pattern(c, ppl ? "cliff_ppl" : "cliff", &sc, &s1);
            if (rc >= 0)
                rc = pattern(c, cl->hides ? "cliff_hidden" : "cliff_visible", &sc, &s2);
            /* a config further down the ladder than the loss holds for the slice all the same
             * (losses need not grow as bits fall): say so, or the cliff reads as binding */
            const struct qb_an_slice *sl = &a->slices[cl->slice];
            char *s3 = NULL;
            if (rc >= 0 && sl->verdict == QB_VERDICT_HOLDS && sl->rec > cl->below) {
                scope_set(&sc, "rec", g_strdup(a->configs[sl->rec].spec));
                rc = pattern(c, "cliff_passed", &sc, &s3);
            }
            scope_clear(&sc);
            if (rc < 0) {
                g_free(s1), g_free(s2), g_free(s3);
                break;
            }
            GString *item = g_string_new(s1);
            if (*s2)
                g_string_append_printf(item, " %s", s2);
            if (s3 && *s3)
                g_string_append_printf(item, " %s", s3);
            g_ptr_array_add(v, g_string_free(item, FALSE));
            g_free(s1), g_free(s2), g_free(s3);
        }
    } else if (tl->arg == L_CAVEATS) {
        for (int64_t i = 0; i < c->n_caveats; i++)
            g_ptr_array_add(v, g_strdup(c->caveats[i]));
    } else {
        for (int64_t i = 0; i < a->n_warnings; i++)
            g_ptr_array_add(v, g_strdup(a->warnings[i]));
    }
    b->n_items = (int64_t)v->len;
    b->items = (char **)g_ptr_array_free(v, FALSE);
    return rc;
}

static int eval_cond(struct ctx *c, const struct tline *tl)
{
    int v;
    if (tl->arg < N_GLOBAL_CONDS) {
        v = c->conds[tl->arg];
    } else {
        const struct qb_an_slice *s = &c->a->slices[c->each_slice];
        v = tl->arg == N_GLOBAL_CONDS     ? s->cliff >= 0
            : tl->arg == N_GLOBAL_CONDS + 1 ? s->is_perplexity
                                            : s->verdict == QB_VERDICT_UNDECIDED;
    }
    return tl->negate ? !v : v;
}

static char *safe_name(const char *s)
{
    char *r = g_strdup(s);
    for (char *p = r; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_'))
            *p = '_';
    return r;
}

static int build_range(struct ctx *c, int64_t from, int64_t to)
{
    const struct qb_template *t = c->t;
    int rc = 0;
    for (int64_t i = from; i < to; i++) {
        const struct tline *tl = &t->l[i];
        struct qb_blk *b;
        char *s = NULL;
        switch (tl->d) {
        case D_DEFINE: case D_ENDIF: case D_ENDEACH:
            break;
        case D_ELSE: /* reached from the then-branch: skip to @endif */
            i = tl->match;
            break;
        case D_IF: {
            int64_t m = tl->match, end = m;
            while (t->l[end].d == D_ELSE)
                end = t->l[end].match;
            if (eval_cond(c, tl)) {
                if ((rc = build_range(c, i + 1, m)) < 0)
                    return rc;
            } else if (t->l[m].d == D_ELSE) {
                if ((rc = build_range(c, m + 1, end)) < 0)
                    return rc;
            }
            i = end;
            break;
        }
        case D_EACH: {
            struct scope sc = {0};
            struct scope *save = c->local;
            for (int64_t si = 0; si < c->a->n_slices; si++) {
                char *v = NULL;
                slice_scope(c, si, &sc);
                if ((rc = verdict_word(c, c->a->slices[si].verdict, &v)) < 0)
                    break;
                scope_set(&sc, "verdict", v);
                c->local = &sc;
                c->each_slice = si;
                rc = build_range(c, i + 1, tl->match);
                c->local = save;
                c->each_slice = -1;
                scope_clear(&sc);
                if (rc < 0)
                    return rc;
            }
            scope_clear(&sc);
            if (rc < 0)
                return rc;
            i = tl->match;
            break;
        }
        case D_PAGE:
            doc_add(c->doc, QB_BLK_PAGE);
            break;
        case D_FOOTER:
            if ((rc = expand(c, tl->text, tl->line, &s)) < 0)
                return rc;
            g_free(c->doc->footer);
            c->doc->footer = s;
            break;
        case D_TITLE: case D_LEAD: case D_H1: case D_H2: case D_P: case D_NOTE: case D_CODE: {
            static const enum qb_blk_kind k[] = {
                [D_TITLE] = QB_BLK_TITLE, [D_LEAD] = QB_BLK_LEAD, [D_H1] = QB_BLK_H1,
                [D_H2] = QB_BLK_H2, [D_P] = QB_BLK_P, [D_NOTE] = QB_BLK_NOTE, [D_CODE] = QB_BLK_CODE,
            };
            if ((rc = expand(c, tl->text, tl->line, &s)) < 0)
                return rc;
            if (tl->d == D_TITLE && !c->doc->doc_title)
                c->doc->doc_title = g_strdup(s);
            b = doc_add(c->doc, k[tl->d]);
            b->text = s;
            break;
        }
        case D_STAT: {
            if ((rc = expand(c, tl->text, tl->line, &s)) < 0)
                return rc;
            /* consecutive @stat lines share one row */
            struct qb_blk *prev = c->doc->n ? &c->doc->blk[c->doc->n - 1] : NULL;
            b = prev && prev->kind == QB_BLK_STATS ? prev : doc_add(c->doc, QB_BLK_STATS);
            char **v = g_strsplit(s, "|", 3);
            b->items = g_renew(char *, b->items, (gsize)b->n_items + 3);
            for (int k = 0, have = 1; k < 3; k++) {
                have = have && v[k];
                b->items[b->n_items + k] = g_strdup(have ? g_strstrip(v[k]) : "");
            }
            b->n_items += 3;
            g_strfreev(v);
            g_free(s);
            break;
        }
        case D_TABLE:
            b = doc_add(c->doc, QB_BLK_TABLE);
            if ((rc = build_table(c, tl, b)) < 0)
                return rc;
            break;
        case D_LIST:
            b = doc_add(c->doc, QB_BLK_LIST);
            if ((rc = build_list(c, tl, b)) < 0)
                return rc;
            break;
        case D_CHART: {
            char *title = NULL, *sub = NULL, *slice = NULL;
            if ((tl->title && (rc = expand(c, tl->title, tl->line, &title)) < 0) ||
                (tl->subtitle && (rc = expand(c, tl->subtitle, tl->line, &sub)) < 0) ||
                (tl->slice && (rc = expand(c, tl->slice, tl->line, &slice)) < 0)) {
                g_free(title), g_free(sub);
                return rc;
            }
            b = doc_add(c->doc, QB_BLK_CHART);
            b->chart_kind = tl->arg;
            b->title = title;
            b->subtitle = sub;
            b->slice = slice;
            b->line = tl->line;
            b->width_pt = tl->width > 0 ? tl->width : c->text_width_pt;
            /* a heatmap grows with its rows (about 30 pt per slice, plus header and legend) so
             * its text stays at print size; other charts default to 0.6 x their width */
            b->height_pt = tl->height > 0                          ? tl->height
                           : tl->arg == QB_CHART_HEATMAP && !slice ? fmin(600.0, 95.0 + 30.0 * (double)(c->a->n_slices + 1))
                                                                   : b->width_pt * 0.6;
            /* unique file name: kind[-slice][-N].png */
            char *base = slice ? fmt("%s-%s", qb_chart_kind_name((enum qb_chart_kind)tl->arg), slice)
                               : g_strdup(qb_chart_kind_name((enum qb_chart_kind)tl->arg));
            char *sb = safe_name(base);
            b->file = fmt("%s.png", sb);
            for (int k = 2;; k++) {
                int dup = 0;
                for (int64_t j = 0; j < c->doc->n - 1; j++)
                    if (c->doc->blk[j].kind == QB_BLK_CHART && !strcmp(c->doc->blk[j].file, b->file))
                        dup = 1;
                if (!dup)
                    break;
                g_free(b->file);
                b->file = fmt("%s-%d.png", sb, k);
            }
            g_free(base), g_free(sb);
            break;
        }
        }
    }
    return rc;
}

/* Draws every chart of doc (in parallel: each chart is its own Cairo surface): PNG files for
 * Markdown, raw pixels for the PDF (libharu compresses them once; no PNG encode and decode). */
static int draw_charts(const struct qb_analysis *a, struct qb_doc *doc, double dpi, int raw)
{
    int64_t n = 0;
    int64_t *idx = g_new(int64_t, (gsize)doc->n + 1);
    for (int64_t i = 0; i < doc->n; i++)
        if (doc->blk[i].kind == QB_BLK_CHART)
            idx[n++] = i;
    int *rcs = g_new0(int, (gsize)n + 1);
    char **msgs = g_new0(char *, (gsize)n + 1);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t j = 0; j < n; j++) {
        struct qb_blk *b = &doc->blk[idx[j]];
        struct qb_chart_opts o = QB_CHART_OPTS_INIT;
        o.width_pt = b->width_pt;
        o.height_pt = b->height_pt;
        o.dpi = dpi;
        o.title = b->title;
        o.subtitle = b->subtitle;
        o.slice = b->slice;
        if (raw) {
            rcs[j] = qb_chart_rgb(a, (enum qb_chart_kind)b->chart_kind, &o, &b->png, &b->px_w, &b->px_h);
            b->n_png = rcs[j] < 0 ? 0 : (size_t)b->px_w * (size_t)b->px_h * 3;
        } else {
            rcs[j] = qb_chart_png(a, (enum qb_chart_kind)b->chart_kind, &o, &b->png, &b->n_png);
        }
        if (rcs[j] < 0)
            msgs[j] = g_strdup(qb_errmsg());
    }
    int rc = 0;
    for (int64_t j = 0; j < n; j++)
        if (rcs[j] < 0 && !rc)
            rc = qb_err(rcs[j], "chart '%s' (template line %d): %s", doc->blk[idx[j]].file,
                        doc->blk[idx[j]].line, msgs[j]);
    for (int64_t j = 0; j < n; j++)
        g_free(msgs[j]);
    g_free(msgs), g_free(rcs), g_free(idx);
    if (n)
        qb_chart_release_caches(); /* Cairo's font caches: a clean exit for leak checkers */
    return rc;
}

static char *today_utc(void)
{
    time_t now = time(NULL);
    struct tm tm;
    char buf[32];
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return g_strdup(buf);
}

static int build_doc(const struct qb_analysis *a, const struct qb_template *t, const struct qb_brief_opts *o,
                     const char *date, double text_width_pt, struct qb_doc *doc)
{
    struct ctx c = {0};
    int rc;
    if (a->n_configs < 1 || a->baseline < 0 || a->baseline >= a->n_configs)
        return qb_err(QB_EINVAL, "run '%s' has no baseline results", a->run_name ? a->run_name : "");
    c.a = a;
    c.t = t;
    c.doc = doc;
    c.each_slice = -1;
    c.text_width_pt = text_width_pt;
    c.vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if ((rc = make_vars(&c, o, date)) < 0)
        goto out;
    rc = build_range(&c, 0, t->n);
    if (rc >= 0) {
        const char *ans = g_hash_table_lookup(c.vars, "answer");
        doc->answer = ans ? g_strdup(ans) : NULL;
    }
    if (rc >= 0) {
        char *lab = NULL;
        if ((rc = pattern(&c, "page_label", NULL, &lab)) >= 0)
            doc->page_label = lab;
    }
out:
    g_strfreev(c.caveats);
    g_hash_table_destroy(c.vars);
    return rc;
}

/* ---------------------------------------------------------------- Markdown */

static void md_escape(GString *g, const char *s, int in_table)
{
    for (; *s; s++) {
        if (strchr("\\`*_[]<>|", *s) && (in_table || *s != '|'))
            g_string_append_c(g, '\\');
        if (in_table && *s == '\n')
            g_string_append(g, "<br>");
        else
            g_string_append_c(g, *s);
    }
}

static char *md_render(const struct qb_doc *d, const char *files_dir)
{
    GString *g = g_string_new(NULL);
    for (int64_t i = 0; i < d->n; i++) {
        const struct qb_blk *b = &d->blk[i];
        switch (b->kind) {
        case QB_BLK_PAGE:
            if (i > 0 && i < d->n - 1)
                g_string_append(g, "---\n\n");
            break;
        case QB_BLK_TITLE: case QB_BLK_H1: case QB_BLK_H2:
            g_string_append(g, b->kind == QB_BLK_TITLE ? "# " : b->kind == QB_BLK_H1 ? "## " : "### ");
            md_escape(g, b->text, 0);
            g_string_append(g, "\n\n");
            break;
        case QB_BLK_LEAD:
            g_string_append(g, "**");
            md_escape(g, b->text, 0);
            g_string_append(g, "**\n\n");
            break;
        case QB_BLK_P:
            md_escape(g, b->text, 0);
            g_string_append(g, "\n\n");
            break;
        case QB_BLK_NOTE:
            g_string_append(g, "*");
            md_escape(g, b->text, 0);
            g_string_append(g, "*\n\n");
            break;
        case QB_BLK_CODE:
            g_string_append_printf(g, "```\n%s\n```\n\n", b->text);
            break;
        case QB_BLK_STATS:
            for (int64_t k = 0; k + 2 < b->n_items; k += 3) {
                g_string_append(g, "- **");
                md_escape(g, b->items[k], 0);
                g_string_append(g, "** ");
                md_escape(g, b->items[k + 1], 0);
                if (*b->items[k + 2]) {
                    g_string_append(g, " — ");
                    md_escape(g, b->items[k + 2], 0);
                }
                g_string_append(g, "\n");
            }
            g_string_append(g, "\n");
            break;
        case QB_BLK_LIST:
            for (int64_t k = 0; k < b->n_items; k++) {
                g_string_append(g, "- ");
                md_escape(g, b->items[k], 0);
                g_string_append(g, "\n");
            }
            if (b->n_items)
                g_string_append(g, "\n");
            break;
        case QB_BLK_TABLE:
            if (!b->n_rows)
                break;
            for (int64_t r = 0; r < b->n_rows; r++) {
                g_string_append(g, "|");
                for (int64_t k = 0; k < b->n_cols; k++) {
                    g_string_append_c(g, ' ');
                    md_escape(g, b->cells[r * b->n_cols + k], 1);
                    g_string_append(g, " |");
                }
                g_string_append(g, "\n");
                if (r == 0) {
                    g_string_append(g, "|");
                    for (int64_t k = 0; k < b->n_cols; k++)
                        g_string_append(g, b->align[k] == 'r' ? " ---: |" : " --- |");
                    g_string_append(g, "\n");
                }
            }
            g_string_append(g, "\n");
            break;
        case QB_BLK_CHART:
            if (!files_dir)
                break;
            g_string_append(g, "![");
            md_escape(g, b->title ? b->title : b->file, 0);
            /* <...> keeps a folder name with spaces one link */
            g_string_append_printf(g, strchr(files_dir, ' ') ? "](<%s/%s>)\n\n" : "](%s/%s)\n\n", files_dir,
                                   b->file);
            if (b->subtitle) {
                g_string_append(g, "*");
                md_escape(g, b->subtitle, 0);
                g_string_append(g, "*\n\n");
            }
            break;
        }
    }
    if (d->footer) {
        g_string_append(g, "---\n\n<small>");
        md_escape(g, d->footer, 0);
        g_string_append(g, "</small>\n");
    }
    return g_string_free(g, FALSE);
}

int qb_brief_markdown(const struct qb_analysis *a, const struct qb_template *t, const char *files_dir,
                      const char *date, char **out)
{
    struct qb_doc doc = {0};
    int rc;
    *out = NULL;
    if ((rc = build_doc(a, t, NULL, date ? date : "1970-01-01", 480, &doc)) >= 0)
        *out = md_render(&doc, files_dir);
    doc_free(&doc);
    return rc;
}

/* ---------------------------------------------------------------- CSV */

static void csv_str(FILE *f, const char *s)
{
    if (s)
        csv_fwrite(f, s, strlen(s));
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
}

static void csv_int(FILE *f, int64_t v, int ok)
{
    if (ok)
        fprintf(f, "%lld", (long long)v);
}

/* One file, one header; the `table` column says which of accuracy, latency, memory a row is
 * (docs/templates.md, "CSV export"). Fractions as in the analysis, not points. */
static const char *const csv_cols[] = {
    "table", "slice", "config", "is_baseline", "ladder", "n", "n_correct", "acc", "acc_lo",
    "acc_hi", "delta", "delta_lo", "delta_hi", "mcnemar_p", "flips_lost", "flips_gained",
    "flip_rate", "kl_mean", "kl_p99", "top1", "ppl", "ppl_ratio", "mde", "tolerance",
    "underpowered", "within", "significant_loss", "pareto", "recommended", "verdict",
    "prompt_len", "gen_len", "batch", "n_samples", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms",
    "tpot_p50_ms", "tpot_p95_ms", "tpot_p99_ms", "e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms",
    "decode_tok_s_p50", "speedup_tpot", "speedup_ttft", "bits_per_weight", "weight_bytes",
    "peak_rss_bytes", "kv_cache_bytes", "mem_context", "mem_cost", "mem_saving",
};
enum { CSV_N = sizeof csv_cols / sizeof csv_cols[0], CSV_LAT0 = 30, CSV_MEM0 = 46 };

static void csv_skip(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc(',', f);
}

static void csv_cell_row(FILE *f, const struct qb_analysis *a, const struct qb_an_slice *s, int64_t ci)
{
    const struct qb_an_cell *c = &s->cells[ci];
    const struct qb_an_config *cf = &a->configs[ci];
    fputs("accuracy,", f);
    csv_str(f, s->name), fputc(',', f);
    csv_str(f, cf->spec), fputc(',', f);
    fprintf(f, "%d,%lld,", ci == a->baseline, (long long)cf->ladder);
    csv_int(f, c->n, 1), fputc(',', f);
    csv_int(f, c->n_correct, 1), fputc(',', f);
    double v[] = {c->acc, c->acc_ci.lo, c->acc_ci.hi, c->delta, c->delta_ci.lo, c->delta_ci.hi, c->mcnemar_p};
    for (int i = 0; i < 7; i++)
        csv_num(f, v[i]), fputc(',', f);
    fprintf(f, "%lld,%lld,", (long long)c->flips_lost, (long long)c->flips_gained);
    double w[] = {c->flip_rate, c->kl_mean, c->kl_p99, c->top1, c->ppl, c->ppl_ratio, c->mde, s->tolerance};
    for (int i = 0; i < 8; i++)
        csv_num(f, w[i]), fputc(',', f);
    fprintf(f, "%d,%d,%d,%d,%d,", c->underpowered, c->within, c->significant_loss, c->pareto, s->rec == ci);
    if (s->rec == ci)
        csv_str(f, qb_an_verdict_name(s->verdict));
    csv_skip(f, CSV_N - CSV_LAT0);
    fputc('\n', f);
}

static int write_csv(const struct qb_analysis *a, FILE *f)
{
    for (int i = 0; i < CSV_N; i++)
        fprintf(f, "%s%s", i ? "," : "", csv_cols[i]);
    fputc('\n', f);
    for (int64_t si = 0; si < a->n_slices; si++)
        for (int64_t ci = 0; ci < a->n_configs; ci++)
            csv_cell_row(f, a, &a->slices[si], ci);
    if (a->overall.cells) {
        struct qb_an_slice ov = a->overall;
        ov.name = "(overall)";
        for (int64_t ci = 0; ci < a->n_configs; ci++)
            csv_cell_row(f, a, &ov, ci);
    }
    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_config *cf = &a->configs[ci];
        for (int64_t li = 0; li < cf->n_lat; li++) {
            const struct qb_an_latency *l = &cf->lat[li];
            fputs("latency,,", f);
            csv_str(f, cf->spec);
            fprintf(f, ",%d,%lld", ci == a->baseline, (long long)cf->ladder);
            csv_skip(f, CSV_LAT0 - 5 + 1);
            fprintf(f, "%lld,%lld,%lld,%lld", (long long)l->prompt_len, (long long)l->gen_len,
                    (long long)l->batch, (long long)l->n_samples);
            double v[] = {l->ttft_p50, l->ttft_p95, l->ttft_p99, l->tpot_p50, l->tpot_p95, l->tpot_p99,
                          l->e2e_p50, l->e2e_p95, l->e2e_p99, l->decode_tok_s_p50, l->speedup_tpot,
                          l->speedup_ttft};
            for (int i = 0; i < 12; i++)
                fputc(',', f), csv_num(f, v[i]);
            csv_skip(f, CSV_N - CSV_MEM0);
            fputc('\n', f);
        }
    }
    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_config *cf = &a->configs[ci];
        fputs("memory,,", f);
        csv_str(f, cf->spec);
        fprintf(f, ",%d,%lld", ci == a->baseline, (long long)cf->ladder);
        csv_skip(f, CSV_MEM0 - 5 + 1);
        csv_num(f, cf->bits_per_weight), fputc(',', f);
        csv_int(f, cf->weight_bytes, cf->weight_bytes >= 0), fputc(',', f);
        csv_int(f, cf->peak_rss_bytes, cf->peak_rss_bytes >= 0), fputc(',', f);
        csv_int(f, cf->kv_cache_bytes, cf->kv_cache_bytes >= 0), fputc(',', f);
        csv_int(f, cf->mem_context, cf->mem_context >= 0), fputc(',', f);
        csv_num(f, cf->mem_cost), fputc(',', f);
        csv_num(f, cf->mem_saving);
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

/* ---------------------------------------------------------------- files */

int qb_brief_format_parse(const char *s, enum qb_brief_format *out)
{
    static const char *n[] = {"pdf", "md", "json", "csv"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, n[i])) {
            *out = (enum qb_brief_format)i;
            return 0;
        }
    return qb_err(QB_EINVAL, "unknown format '%s' (pdf, md, json, csv)", s);
}

int qb_brief_paper_parse(const char *s, enum qb_brief_paper *out)
{
    if (!g_ascii_strcasecmp(s, "a4"))
        *out = QB_PAPER_A4;
    else if (!g_ascii_strcasecmp(s, "letter"))
        *out = QB_PAPER_LETTER;
    else
        return qb_err(QB_EINVAL, "unknown paper '%s' (a4, letter)", s);
    return 0;
}

int qb_brief_format_from_path(const char *path)
{
    static const char *ext[] = {".pdf", ".md", ".json", ".csv"};
    for (int i = 0; i < 4; i++)
        if (g_str_has_suffix(path, ext[i]))
            return i;
    return -1;
}

/* A temporary file beside path: path.tmpXXXXXX, created (fd closed). */
static int make_temp(const char *path, char **tmp)
{
    *tmp = fmt("%s.tmpXXXXXX", path);
    int fd = mkstemp(*tmp);
    if (fd < 0) {
        int rc = qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno));
        g_free(*tmp);
        *tmp = NULL;
        return rc;
    }
    fchmod(fd, 0644);
    close(fd);
    return 0;
}

static int write_text(const char *tmp, const char *path, const char *s, size_t n)
{
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno));
    size_t w = fwrite(s, 1, n, f);
    int bad = w != n || ferror(f);
    if (fclose(f) != 0 || bad)
        return qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    return 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = fmt("%s/%s", dir, e->d_name);
        unlink(p);
        g_free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Markdown: the .md plus its charts in STEM_files/ (written to a temporary folder first). */
static int write_md(const struct qb_analysis *a, const struct qb_doc *doc, const char *path, const char *tmp)
{
    char *dir = g_path_get_dirname(path), *base = g_path_get_basename(path);
    char *stem = g_strdup(base), *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = 0;
    char *files = fmt("%s_files", stem), *files_path = g_build_filename(dir, files, NULL);
    char *tmpdir = fmt("%s.tmpXXXXXX", files_path), *md = NULL;
    int rc = 0, nchart = 0;
    (void)a;

    for (int64_t i = 0; i < doc->n; i++)
        nchart += doc->blk[i].kind == QB_BLK_CHART;
    if (nchart && !mkdtemp(tmpdir)) {
        rc = qb_err(QB_EIO, "cannot create '%s': %s", tmpdir, strerror(errno));
        goto out;
    }
    for (int64_t i = 0; i < doc->n && nchart; i++) {
        const struct qb_blk *b = &doc->blk[i];
        if (b->kind != QB_BLK_CHART)
            continue;
        char *p = g_build_filename(tmpdir, b->file, NULL);
        rc = write_text(p, p, (const char *)b->png, b->n_png);
        g_free(p);
        if (rc < 0)
            goto out;
    }
    md = md_render(doc, nchart ? files : NULL);
    if ((rc = write_text(tmp, path, md, strlen(md))) < 0)
        goto out;
    if (nchart) {
        chmod(tmpdir, 0755);
        remove_dir(files_path); /* the previous brief's charts */
        if (rename(tmpdir, files_path) != 0) {
            rc = qb_err(QB_EIO, "cannot write '%s': %s", files_path, strerror(errno));
            goto out;
        }
    }
out:
    if (rc < 0 && nchart)
        remove_dir(tmpdir);
    g_free(md), g_free(dir), g_free(base), g_free(stem), g_free(files), g_free(files_path), g_free(tmpdir);
    return rc;
}

int qb_brief_render(const struct qb_analysis *a, const struct qb_template *t, const struct qb_brief_opts *o)
{
    struct qb_template *own = NULL;
    struct qb_doc doc = {0};
    char *tmp = NULL, *date = NULL, *json = NULL;
    int rc = 0;

    if (!o->out_path)
        return qb_err(QB_EINVAL, "no output file");
    date = o->date ? g_strdup(o->date) : today_utc();
    if (o->format == QB_BRIEF_PDF || o->format == QB_BRIEF_MD) {
        if (!t) {
            if ((rc = qb_template_load(o->template_name ? o->template_name : a->template_name, &own)) < 0)
                goto out;
            t = own;
        }
        /* text width: A4 595 pt or Letter 612 pt less 2 x 56 pt margins */
        double tw = (o->paper == QB_PAPER_LETTER ? 612.0 : 595.0) - 2 * 56.0;
        if ((rc = build_doc(a, t, o, date, tw, &doc)) < 0 ||
            (rc = draw_charts(a, &doc, o->format == QB_BRIEF_PDF ? 300.0 : 150.0, o->format == QB_BRIEF_PDF)) < 0)
            goto out;
    }
    if ((rc = make_temp(o->out_path, &tmp)) < 0)
        goto out;
    switch (o->format) {
    case QB_BRIEF_PDF:
        rc = qb_pdf_write(&doc, o->paper, tmp);
        break;
    case QB_BRIEF_MD:
        rc = write_md(a, &doc, o->out_path, tmp);
        break;
    case QB_BRIEF_JSON:
        if ((rc = qb_analysis_json(a, &json)) >= 0) {
            size_t n = strlen(json);
            char *j2 = fmt("%s%s", json, n && json[n - 1] == '\n' ? "" : "\n");
            rc = write_text(tmp, o->out_path, j2, strlen(j2));
            g_free(j2);
        }
        break;
    case QB_BRIEF_CSV: {
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            rc = qb_err(QB_EIO, "cannot write '%s': %s", o->out_path, strerror(errno));
            break;
        }
        int bad = write_csv(a, f) < 0;
        if (fclose(f) != 0 || bad)
            rc = qb_err(QB_EIO, "cannot write '%s': %s", o->out_path, strerror(errno ? errno : EIO));
        break;
    }
    }
    if (rc >= 0 && rename(tmp, o->out_path) != 0)
        rc = qb_err(QB_EIO, "cannot write '%s': %s", o->out_path, strerror(errno));
    if (rc >= 0 && o->answer)
        *o->answer = doc.answer ? strdup(doc.answer) : NULL;
out:
    if (tmp && rc < 0)
        unlink(tmp);
    g_free(tmp);
    free(json);
    g_free(date);
    doc_free(&doc);
    qb_template_free(own);
    return rc;
}

int qb_brief_write(const struct qb_brief_opts *o)
{
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;
    struct qb_template *t = NULL;
    int rc;

    if (!o->db_path || !o->out_path)
        return qb_err(QB_EINVAL, "qb_brief_write needs a database and an output file");
    if (access(o->db_path, F_OK) != 0)
        return qb_err(QB_EIO, "cannot open database '%s': %s", o->db_path, strerror(errno));
    /* the template first: a bad template line fails before the slow part */
    if ((o->format == QB_BRIEF_PDF || o->format == QB_BRIEF_MD) && o->template_name &&
        (rc = qb_template_load(o->template_name, &t)) < 0)
        return rc;
    if ((rc = qb_store_open(o->db_path, QB_STORE_READONLY, &s)) < 0 ||
        (rc = qb_analyze(s, o->run_name, NULL, &a)) < 0)
        goto out;
    rc = qb_brief_render(a, t, o);
out:
    qb_template_free(t);
    qb_analysis_free(a);
    qb_store_close(s);
    return rc;
}
