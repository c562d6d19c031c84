/* suite: reads an evaluation suite CSV with libcsv (strict mode) and validates every row
 * against docs/suite-format.md, which this file must agree with. The file is hostile:
 * every field is checked, and every error names 'FILE':LINE:COL.
 *
 * libcsv reports fields and rows through callbacks but no positions, so the file is fed
 * one byte at a time and the line each field starts on is tracked here. COL is the
 * field's position in its row (1-based), the way a spreadsheet numbers columns. */
#include "collector/eval/suite.h"
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/eval/metrics.h"

#include <csv.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BYTES ((size_t)256 << 20)
#define DEFAULT_MAX_TOKENS 64
#define MAX_MAX_TOKENS 4096

enum col {
    C_ID,
    C_SLICE,
    C_KIND,
    C_PROMPT,
    C_TARGET,
    C_CHOICES,
    C_METRIC,
    C_MAX_TOKENS,
    C_STOP,
    N_COLS
};
static const char *const col_names[N_COLS] = {"id",      "slice",  "kind",       "prompt", "target",
                                              "choices", "metric", "max_tokens", "stop"};
static const int col_required[N_COLS] = {1, 1, 1, 1, 0, 0, 0, 0, 0};

static int metric_fits(enum qb_suite_kind k, enum qb_metric m)
{
    switch (k) {
    case QB_KIND_GENERATE: return m <= QB_METRIC_JSON_VALID;
    case QB_KIND_CHOICE: return m == QB_METRIC_ACCURACY || m == QB_METRIC_ACCURACY_NORM;
    case QB_KIND_PERPLEXITY: return m == QB_METRIC_PERPLEXITY;
    }
    return 0;
}

static const char *metrics_for(enum qb_suite_kind k)
{
    switch (k) {
    case QB_KIND_GENERATE: return "exact, contains, regex, number, json, json_valid";
    case QB_KIND_CHOICE: return "accuracy, accuracy_norm";
    case QB_KIND_PERPLEXITY: return "perplexity";
    }
    return "";
}

struct field {
    char *s;
    size_t len;
    int64_t line;
};

struct state {
    const char *path;
    int rc;
    int64_t cur_line;   /* line of the byte being fed */
    int64_t field_line; /* line the current field started on */
    int in_row;
    struct field *row;
    size_t n_row, cap_row;
    int have_header;
    int col[N_COLS]; /* index of each known column in the header, -1 when absent */
    size_t n_header;
    size_t cap_items, cap_slices, cap_warnings;
    GHashTable *ids;    /* id (borrowed from items) -> line */
    GHashTable *slices; /* name (borrowed from slices) -> index + 1 */
    struct qb_suite *s;
};

static int add_warning(struct state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_warning(struct state *st, const char *fmt, ...)
{
    struct qb_suite *s = st->s;
    char *w;
    va_list ap;
    int r;

    if ((size_t)s->n_warnings == st->cap_warnings) {
        size_t cap = st->cap_warnings ? 2 * st->cap_warnings : 8;
        char **p = realloc(s->warnings, cap * sizeof *p);
        if (!p)
            return qb_err(QB_ENOMEM, "out of memory");
        s->warnings = p, st->cap_warnings = cap;
    }
    va_start(ap, fmt);
    r = vasprintf(&w, fmt, ap);
    va_end(ap);
    if (r < 0)
        return qb_err(QB_ENOMEM, "out of memory");
    s->warnings[s->n_warnings++] = w;
    return 0;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Trims a field in place (for names, kinds, metrics, numbers). */
static void trim_field(struct field *f)
{
    size_t a = 0, n = f->len;
    while (a < n && is_ws((unsigned char)f->s[a]))
        a++;
    while (n > a && is_ws((unsigned char)f->s[n - 1]))
        n--;
    memmove(f->s, f->s + a, n - a);
    f->len = n - a;
    f->s[f->len] = 0;
}

/* A suite saved as UTF-16 or UTF-32 (as some spreadsheet programs do) shows itself in the
 * file's first field: a byte order mark, or a NUL beside each ASCII letter of "id". Named
 * here, before "field contains a NUL byte" or "not valid UTF-8" would puzzle its author. */
static int wide_encoding(const struct state *st, const unsigned char *b, size_t n)
{
    const char *enc = NULL;
    if (n >= 4 && !memcmp(b, "\xFF\xFE\0\0", 4))
        enc = "UTF-32 (little-endian)";
    else if (n >= 4 && !memcmp(b, "\0\0\xFE\xFF", 4))
        enc = "UTF-32 (big-endian)";
    else if (n >= 2 && b[0] == 0xFF && b[1] == 0xFE)
        enc = "UTF-16 (little-endian)";
    else if (n >= 2 && b[0] == 0xFE && b[1] == 0xFF)
        enc = "UTF-16 (big-endian)";
    else if (n >= 4 && b[0] && !b[1] && !b[2] && !b[3])
        enc = "UTF-32 (little-endian)";
    else if (n >= 4 && !b[0] && !b[1] && !b[2] && b[3])
        enc = "UTF-32 (big-endian)";
    else if (n >= 2 && b[0] && !b[1])
        enc = "UTF-16 (little-endian)";
    else if (n >= 2 && !b[0] && b[1])
        enc = "UTF-16 (big-endian)";
    if (!enc)
        return 0;
    return qb_err(QB_EFORMAT, "'%s': the file is %s; save it as UTF-8", st->path, enc);
}

static void on_field(void *data, size_t len, void *arg)
{
    struct state *st = arg;
    struct field *f;
    const char *end;

    if (st->rc)
        return;
    if (st->n_row == st->cap_row) {
        size_t cap = st->cap_row ? 2 * st->cap_row : 16;
        struct field *p = realloc(st->row, cap * sizeof *p);
        if (!p) {
            st->rc = qb_err(QB_ENOMEM, "out of memory");
            return;
        }
        st->row = p, st->cap_row = cap;
    }
    f = &st->row[st->n_row];
    f->line = st->field_line;
    f->len = len;
    if (!(f->s = malloc(len + 1))) {
        st->rc = qb_err(QB_ENOMEM, "out of memory");
        return;
    }
    if (len)
        memcpy(f->s, data, len);
    f->s[len] = 0;
    st->n_row++;
    st->field_line = st->cur_line; /* the next field starts after this delimiter */
    if (!st->have_header && st->n_row == 1 && (st->rc = wide_encoding(st, data, len)) < 0)
        return;
    if (memchr(f->s, 0, len))
        st->rc = qb_err(QB_EFORMAT, "'%s':%lld:%zu: field contains a NUL byte", st->path,
                        (long long)f->line, st->n_row);
    else if (!g_utf8_validate(f->s, (gssize)len, &end))
        st->rc = qb_err(QB_EFORMAT, "'%s':%lld:%zu: field is not valid UTF-8 (byte %zu)", st->path,
                        (long long)f->line, st->n_row, (size_t)(end - f->s));
}

static void clear_row(struct state *st)
{
    size_t i;
    for (i = 0; i < st->n_row; i++)
        free(st->row[i].s);
    st->n_row = 0;
}

static int row_is_blank(const struct state *st)
{
    size_t i, j;
    for (i = 0; i < st->n_row; i++)
        for (j = 0; j < st->row[i].len; j++)
            if (!is_ws((unsigned char)st->row[i].s[j]))
                return 0;
    return 1;
}

static int do_header(struct state *st)
{
    size_t i;
    int c, rc;
    int64_t line = st->row[0].line;

    st->n_header = st->n_row;
    for (c = 0; c < N_COLS; c++)
        st->col[c] = -1;
    for (i = 0; i < st->n_row; i++) {
        struct field *f = &st->row[i];
        trim_field(f);
        for (c = 0; c < N_COLS && strcmp(f->s, col_names[c]); c++) {
        }
        if (c == N_COLS) {
            if ((rc = add_warning(st, "'%s':%lld:%zu: unknown column '%.60s' ignored", st->path,
                                  (long long)f->line, i + 1, f->s)) < 0)
                return rc;
            continue;
        }
        if (st->col[c] >= 0)
            return qb_err(QB_EFORMAT, "'%s':%lld:%zu: column '%s' appears twice (also column %d)",
                          st->path, (long long)f->line, i + 1, col_names[c], st->col[c] + 1);
        st->col[c] = (int)i;
    }
    for (c = 0; c < N_COLS; c++)
        if (col_required[c] && st->col[c] < 0)
            return qb_err(QB_EFORMAT,
                          "'%s':%lld:1: missing required column '%s' (header has %zu columns)",
                          st->path, (long long)line, col_names[c], st->n_header);
    st->have_header = 1;
    return 0;
}

/* The row's field for column c, or NULL when the header has no such column. */
static struct field *get(struct state *st, int c)
{
    return st->col[c] >= 0 ? &st->row[st->col[c]] : NULL;
}

/* Takes ownership of the field's string (leaving an empty one behind). */
static char *take(struct field *f)
{
    char *s = f->s;
    f->s = NULL;
    f->len = 0;
    return s;
}

static void item_release(struct qb_suite_item *it)
{
    int64_t i;
    qb_metric_release(it);
    free(it->id);
    free(it->slice);
    free(it->prompt);
    free(it->target);
    free(it->stop);
    for (i = 0; i < it->n_choices; i++)
        free(it->choices[i]);
    free(it->choices);
}

/* Splits choices on '|'; "\|" is a literal bar and "\\" a literal backslash; any other
 * backslash stays as written. */
static int split_choices(struct state *st, struct field *f, struct qb_suite_item *it)
{
    size_t i, n = 1, k = 0;
    char *buf = NULL;
    int64_t j;

    for (i = 0; i < f->len; i++) {
        if (f->s[i] == '\\' && i + 1 < f->len && (f->s[i + 1] == '|' || f->s[i + 1] == '\\'))
            i++;
        else if (f->s[i] == '|')
            n++;
    }
    if (!(it->choices = calloc(n, sizeof *it->choices)) || !(buf = malloc(f->len + 1)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (i = 0; i <= f->len; i++) {
        char c = i < f->len ? f->s[i] : '|';
        if (c == '\\' && i + 1 < f->len && (f->s[i + 1] == '|' || f->s[i + 1] == '\\')) {
            buf[k++] = f->s[++i];
            continue;
        }
        if (c != '|') {
            buf[k++] = c;
            continue;
        }
        buf[k] = 0;
        if (!k) {
            free(buf);
            return qb_err(QB_EFORMAT, "'%s':%lld:%d: choice %lld is empty", st->path,
                          (long long)f->line, st->col[C_CHOICES] + 1, (long long)it->n_choices);
        }
        if (!(it->choices[it->n_choices] = strdup(buf))) {
            free(buf);
            return qb_err(QB_ENOMEM, "out of memory");
        }
        it->n_choices++; /* owned by the item from here, freed with it on error */
        for (j = 0; j < it->n_choices - 1; j++)
            if (!strcmp(it->choices[j], buf)) {
                free(buf);
                return qb_err(QB_EFORMAT, "'%s':%lld:%d: choices %lld and %lld are both '%.60s'",
                              st->path, (long long)f->line, st->col[C_CHOICES] + 1, (long long)j,
                              (long long)it->n_choices - 1, it->choices[j]);
            }
        k = 0;
    }
    free(buf);
    return 0;
}

/* The correct option: its exact text, or its 0-based index. A target that is both an
 * index and the text of a different option is ambiguous and refused. */
static int resolve_choice_target(struct state *st, struct field *f, struct qb_suite_item *it)
{
    int64_t by_text = -1, by_index = -1, i;
    const char *t = it->target;
    size_t k;
    int col = st->col[C_TARGET] + 1;

    for (i = 0; i < it->n_choices; i++)
        if (!strcmp(it->choices[i], t))
            by_text = i;
    for (k = 0; t[k] >= '0' && t[k] <= '9' && k < 18; k++) {
    }
    if (k > 0 && !t[k])
        by_index = strtoll(t, NULL, 10);
    if (by_index >= it->n_choices) {
        if (by_text < 0)
            return qb_err(QB_EFORMAT, "'%s':%lld:%d: target index %lld out of range (%lld choices)",
                          st->path, (long long)f->line, col, (long long)by_index,
                          (long long)it->n_choices);
        by_index = -1;
    }
    if (by_text >= 0 && by_index >= 0 && by_text != by_index)
        return qb_err(
            QB_EFORMAT,
            "'%s':%lld:%d: target '%.60s' is ambiguous: choice %lld's text and index %lld",
            st->path, (long long)f->line, col, t, (long long)by_text, (long long)by_index);
    if (by_text < 0 && by_index < 0)
        return qb_err(QB_EFORMAT, "'%s':%lld:%d: target '%.60s' is neither a choice nor an index",
                      st->path, (long long)f->line, col, t);
    it->target_index = by_text >= 0 ? by_text : by_index;
    return 0;
}

static int parse_max_tokens(struct state *st, struct field *f, int64_t *out)
{
    size_t i;
    long long v = 0;
    trim_field(f);
    for (i = 0; i < f->len && f->s[i] >= '0' && f->s[i] <= '9' && v <= MAX_MAX_TOKENS; i++)
        v = v * 10 + (f->s[i] - '0');
    if (!f->len || i != f->len || v < 1 || v > MAX_MAX_TOKENS)
        return qb_err(QB_EFORMAT, "'%s':%lld:%d: max_tokens '%.40s' is not an integer in 1..%d",
                      st->path, (long long)f->line, st->col[C_MAX_TOKENS] + 1, f->s,
                      MAX_MAX_TOKENS);
    *out = v;
    return 0;
}

/* Refuses a non-empty optional field that the kind does not use. */
static int must_be_empty(struct state *st, int c, enum qb_suite_kind k)
{
    struct field *f = get(st, c);
    if (f && f->len)
        return qb_err(QB_EFORMAT, "'%s':%lld:%d: kind '%s' takes no %s", st->path,
                      (long long)f->line, st->col[c] + 1, qb_suite_kind_name((enum qb_suite_kind)k),
                      col_names[c]);
    return 0;
}

static int add_slice(struct state *st, const char *name)
{
    struct qb_suite *s = st->s;
    gpointer v = g_hash_table_lookup(st->slices, name);
    if (v) {
        s->slices[GPOINTER_TO_SIZE(v) - 1].n_items++;
        return 0;
    }
    if ((size_t)s->n_slices == st->cap_slices) {
        size_t cap = st->cap_slices ? 2 * st->cap_slices : 8;
        struct qb_suite_slice *p = realloc(s->slices, cap * sizeof *p);
        if (!p)
            return qb_err(QB_ENOMEM, "out of memory");
        s->slices = p, st->cap_slices = cap;
    }
    if (!(s->slices[s->n_slices].name = strdup(name)))
        return qb_err(QB_ENOMEM, "out of memory");
    s->slices[s->n_slices].n_items = 1;
    s->n_slices++;
    g_hash_table_insert(st->slices, s->slices[s->n_slices - 1].name,
                        GSIZE_TO_POINTER((size_t)s->n_slices));
    return 0;
}

/* A slice name is one line of plain text: it heads tables and sentences of the brief, where a
 * newline or another control character (C0, DEL, C1, U+2028/U+2029) would break the line. */
static int check_slice_name(const struct state *st, const struct field *f)
{
    for (const char *p = f->s; *p; p = g_utf8_next_char(p)) {
        gunichar u = g_utf8_get_char(p);
        if (!g_unichar_iscntrl(u) && u != 0x2028 && u != 0x2029)
            continue;
        const char *q = p - f->s > 60 ? f->s + 60 : p; /* what precedes it, whole characters */
        while (q > f->s && ((unsigned char)*q & 0xC0) == 0x80)
            q--;
        return qb_err(QB_EFORMAT,
                      "'%s':%lld:%d: slice name has a control character (U+%04X) after '%.*s'; "
                      "a slice name is one line of plain text",
                      st->path, (long long)f->line, st->col[C_SLICE] + 1, (unsigned)u,
                      (int)(q - f->s), f->s);
    }
    return 0;
}

static int do_item(struct state *st)
{
    struct qb_suite_item it = {0};
    struct qb_suite *s = st->s;
    struct field *f, *fid = get(st, C_ID), *fslice = get(st, C_SLICE), *fkind = get(st, C_KIND),
                     *fprompt = get(st, C_PROMPT);
    int64_t line = st->row[0].line;
    gpointer prev;
    int rc, k, m;

    it.line = line;
    it.target_index = -1;
    if (st->n_row != st->n_header)
        return qb_err(QB_EFORMAT, "'%s':%lld:%zu: row has %zu fields, the header has %zu", st->path,
                      (long long)line, (st->n_row < st->n_header ? st->n_row : st->n_header) + 1,
                      st->n_row, st->n_header);
    trim_field(fid);
    trim_field(fslice);
    trim_field(fkind);
    {
        struct field *req[] = {fid, fslice, fkind, fprompt};
        int cols[] = {C_ID, C_SLICE, C_KIND, C_PROMPT};
        for (k = 0; k < 4; k++)
            if (!req[k]->len)
                return qb_err(QB_EFORMAT, "'%s':%lld:%d: empty %s", st->path,
                              (long long)req[k]->line, st->col[cols[k]] + 1, col_names[cols[k]]);
    }
    if ((rc = check_slice_name(st, fslice)) < 0)
        return rc;
    if ((prev = g_hash_table_lookup(st->ids, fid->s)))
        return qb_err(QB_EFORMAT, "'%s':%lld:%d: duplicate id '%.60s' (first on line %lld)",
                      st->path, (long long)fid->line, st->col[C_ID] + 1, fid->s,
                      (long long)GPOINTER_TO_SIZE(prev));
    for (k = 0; k < QB_N_KINDS && strcmp(fkind->s, qb_suite_kind_name((enum qb_suite_kind)k));
         k++) {
    }
    if (k == QB_N_KINDS)
        return qb_err(QB_EFORMAT,
                      "'%s':%lld:%d: unknown kind '%.40s' (generate, choice, perplexity)", st->path,
                      (long long)fkind->line, st->col[C_KIND] + 1, fkind->s);
    it.kind = (enum qb_suite_kind)k;

    f = get(st, C_METRIC);
    if (f)
        trim_field(f);
    if (f && f->len) {
        for (m = 0; m < QB_N_METRICS && strcmp(f->s, qb_metric_name((enum qb_metric)m)); m++) {
        }
        if (m == QB_N_METRICS)
            return qb_err(QB_EFORMAT,
                          "'%s':%lld:%d: unknown metric '%.40s' (exact, contains, regex, number, "
                          "json, json_valid, accuracy, accuracy_norm, perplexity)",
                          st->path, (long long)f->line, st->col[C_METRIC] + 1, f->s);
        if (!metric_fits(it.kind, (enum qb_metric)m))
            return qb_err(QB_EFORMAT, "'%s':%lld:%d: metric '%s' does not apply to kind '%s' (%s)",
                          st->path, (long long)f->line, st->col[C_METRIC] + 1,
                          qb_metric_name((enum qb_metric)m),
                          qb_suite_kind_name((enum qb_suite_kind)k), metrics_for(it.kind));
        it.metric = (enum qb_metric)m;
    } else if (it.kind == QB_KIND_GENERATE) {
        return qb_err(QB_EFORMAT, "'%s':%lld:%d: generate item needs a metric (%s)", st->path,
                      (long long)line, f ? st->col[C_METRIC] + 1 : (int)st->n_header,
                      metrics_for(it.kind));
    } else {
        it.metric = it.kind == QB_KIND_CHOICE ? QB_METRIC_ACCURACY : QB_METRIC_PERPLEXITY;
    }

    f = get(st, C_TARGET);
    if (f && f->len)
        it.target = take(f);
    switch (it.kind) {
    case QB_KIND_GENERATE:
        if ((rc = must_be_empty(st, C_CHOICES, it.kind)) < 0)
            goto fail;
        it.max_tokens = DEFAULT_MAX_TOKENS;
        if ((f = get(st, C_MAX_TOKENS)) && f->len &&
            (rc = parse_max_tokens(st, f, &it.max_tokens)) < 0)
            goto fail;
        if ((f = get(st, C_STOP)) && f->len)
            it.stop = take(f);
        break;
    case QB_KIND_CHOICE:
        if ((rc = must_be_empty(st, C_MAX_TOKENS, it.kind)) < 0 ||
            (rc = must_be_empty(st, C_STOP, it.kind)) < 0)
            goto fail;
        f = get(st, C_CHOICES);
        if (!f || !f->len) {
            rc = qb_err(QB_EFORMAT,
                        "'%s':%lld:%d: choice item needs choices (options separated by '|')",
                        st->path, (long long)line, f ? st->col[C_CHOICES] + 1 : (int)st->n_header);
            goto fail;
        }
        if ((rc = split_choices(st, f, &it)) < 0)
            goto fail;
        if (it.n_choices < 2) {
            rc = qb_err(QB_EFORMAT, "'%s':%lld:%d: choice item needs at least 2 choices, has %lld",
                        st->path, (long long)f->line, st->col[C_CHOICES] + 1,
                        (long long)it.n_choices);
            goto fail;
        }
        if (!it.target) {
            rc = qb_err(QB_EFORMAT, "'%s':%lld:%d: choice item needs a target (index or text)",
                        st->path, (long long)line,
                        st->col[C_TARGET] >= 0 ? st->col[C_TARGET] + 1 : (int)st->n_header);
            goto fail;
        }
        if ((rc = resolve_choice_target(st, get(st, C_TARGET), &it)) < 0)
            goto fail;
        break;
    case QB_KIND_PERPLEXITY:
        if (it.target) {
            rc = qb_err(QB_EFORMAT, "'%s':%lld:%d: kind 'perplexity' takes no target", st->path,
                        (long long)get(st, C_TARGET)->line, st->col[C_TARGET] + 1);
            goto fail;
        }
        if ((rc = must_be_empty(st, C_CHOICES, it.kind)) < 0 ||
            (rc = must_be_empty(st, C_MAX_TOKENS, it.kind)) < 0 ||
            (rc = must_be_empty(st, C_STOP, it.kind)) < 0)
            goto fail;
        break;
    }
    if ((rc = qb_metric_prepare(&it, st->path, get(st, C_TARGET) ? get(st, C_TARGET)->line : line,
                                st->col[C_TARGET] >= 0 ? st->col[C_TARGET] + 1
                                                       : (int)st->n_header)) < 0)
        goto fail;

    it.id = take(fid);
    it.slice = take(fslice);
    it.prompt = take(fprompt);
    if ((size_t)s->n_items == st->cap_items) {
        size_t cap = st->cap_items ? 2 * st->cap_items : 64;
        struct qb_suite_item *p = realloc(s->items, cap * sizeof *p);
        if (!p) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto fail;
        }
        s->items = p, st->cap_items = cap;
    }
    if ((rc = add_slice(st, it.slice)) < 0)
        goto fail;
    s->items[s->n_items++] = it;
    g_hash_table_insert(st->ids, it.id, GSIZE_TO_POINTER((size_t)fid->line));
    return 0;
fail:
    item_release(&it);
    return rc;
}

static void on_row(int c, void *arg)
{
    struct state *st = arg;
    (void)c;
    st->in_row = 0;
    if (!st->rc && st->n_row && !row_is_blank(st))
        st->rc = st->have_header ? do_item(st) : do_header(st);
    clear_row(st);
}

int qb_suite_apply_template(const char *tmpl, const char *prompt, char **out)
{
    static const char key[] = "{prompt}";
    const size_t klen = sizeof key - 1;
    size_t n = 0, plen = strlen(prompt), total, tlen;
    const char *p, *q;
    char *o;

    *out = NULL;
    if (!tmpl) {
        if (!(*out = strdup(prompt)))
            return qb_err(QB_ENOMEM, "out of memory");
        return 0;
    }
    tlen = strlen(tmpl);
    for (p = tmpl; (p = strstr(p, key)); p += klen)
        n++;
    if (!n)
        return qb_err(QB_EINVAL, "prompt template '%.60s' has no {prompt}", tmpl);
    if (qb_mul_size(n, plen, &total) < 0 || qb_add_size(total, tlen - n * klen + 1, &total) < 0 ||
        !(o = malloc(total)))
        return qb_err(QB_ENOMEM, "out of memory");
    *out = o;
    for (p = tmpl; (q = strstr(p, key)); p = q + klen) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, prompt, plen);
        o += plen;
    }
    strcpy(o, p);
    return 0;
}

int qb_suite_format_prompt(const struct qb_suite *s, const struct qb_suite_item *it, char **out)
{
    return qb_suite_apply_template(s->prompt_template, it->prompt, out);
}

void qb_suite_free(struct qb_suite *s)
{
    int64_t i;
    if (!s)
        return;
    for (i = 0; i < s->n_items; i++)
        item_release(&s->items[i]);
    free(s->items);
    for (i = 0; i < s->n_slices; i++)
        free(s->slices[i].name);
    free(s->slices);
    for (i = 0; i < s->n_warnings; i++)
        free(s->warnings[i]);
    free(s->warnings);
    free(s->prompt_template);
    free(s->path);
    free(s);
}

int qb_suite_load(const char *path, const struct qb_suite_opts *o, struct qb_suite **out)
{
    static const struct qb_suite_opts defaults = QB_SUITE_OPTS_INIT;
    struct state st = {0};
    struct csv_parser p;
    int p_init = 0, rc = 0;
    char *buf = NULL, *sum = NULL;
    const unsigned char *data;
    size_t len = 0, i;

    *out = NULL;
    if (!o)
        o = &defaults;
    st.path = path;
    st.cur_line = 1;
    if (!(st.s = calloc(1, sizeof *st.s)) || !(st.s->path = strdup(path))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto fail;
    }
    if (o->prompt_template) {
        char *t = NULL;
        if ((rc = qb_suite_apply_template(o->prompt_template, "", &t)) < 0)
            goto fail;
        free(t);
        if (!(st.s->prompt_template = strdup(o->prompt_template))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if ((rc = qb_read_file(path, o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES, &buf, &len)) < 0)
        goto fail;
    if (!(sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)buf, len))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(st.s->sha256, sizeof st.s->sha256, "%s", sum);
    st.ids = g_hash_table_new(g_str_hash, g_str_equal);
    st.slices = g_hash_table_new(g_str_hash, g_str_equal);
    if (csv_init(&p, CSV_STRICT | CSV_APPEND_NULL | CSV_STRICT_FINI) != 0) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto fail;
    }
    p_init = 1;

    data = (const unsigned char *)buf;
    i = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0; /* UTF-8 byte order mark */
    for (; i < len && !st.rc; i++) {
        unsigned char c = data[i];
        if (!st.in_row && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            st.in_row = 1;
            st.field_line = st.cur_line;
        }
        if (csv_parse(&p, &data[i], 1, on_field, on_row, &st) != 1 && !st.rc) {
            if (csv_error(&p) == CSV_EPARSE)
                st.rc = qb_err(QB_EFORMAT,
                               "'%s':%lld:%zu: bad quoting: a '\"' inside an unquoted field, or "
                               "text after a closing quote",
                               path, (long long)st.cur_line, st.n_row + 1);
            else
                st.rc = qb_err(QB_ENOMEM, "'%s': %s", path, csv_strerror(csv_error(&p)));
        }
        if (c == '\n' || (c == '\r' && (i + 1 == len || data[i + 1] != '\n')))
            st.cur_line++;
    }
    if (!st.rc && csv_fini(&p, on_field, on_row, &st) != 0 && !st.rc)
        st.rc = qb_err(QB_EFORMAT, "'%s':%lld:%zu: quoted field never closed", path,
                       (long long)st.field_line, st.n_row + 1);
    if ((rc = st.rc) < 0)
        goto fail;
    if (!st.have_header) {
        rc = qb_err(QB_EFORMAT, "'%s': empty suite, no header row", path);
        goto fail;
    }
    if (!st.s->n_items) {
        rc = qb_err(QB_EFORMAT, "'%s': suite has a header but no items", path);
        goto fail;
    }
    for (int64_t k = 0; k < st.s->n_slices; k++)
        if (st.s->slices[k].n_items < o->min_slice_items &&
            (rc = add_warning(&st, "'%s': slice '%.60s' has %lld items, fewer than %lld", path,
                              st.s->slices[k].name, (long long)st.s->slices[k].n_items,
                              (long long)o->min_slice_items)) < 0)
            goto fail;
    *out = st.s;
    st.s = NULL;
fail:
    if (p_init)
        csv_free(&p);
    clear_row(&st);
    free(st.row);
    if (st.ids)
        g_hash_table_destroy(st.ids);
    if (st.slices)
        g_hash_table_destroy(st.slices);
    g_free(sum);
    free(buf);
    qb_suite_free(st.s);
    return rc;
}
