/* plan: reads a plan file (docs/plan-format.md) with libyaml's event API into a small tree
 * of nodes that keep their line and column, then validates the tree into struct qb_plan.
 * Every refusal names the file, the line and the column (1-based, as editors count).
 *
 * Decisions (documented in docs/plan-format.md): one document per file; aliases are refused
 * (anchors alone are harmless and ignored); explicit tags are refused; numbers must be plain
 * (unquoted) scalars; duplicate keys are errors at any depth. */
#include "collector/run/plan.h"

#include "collector/engine/device.h"

#include "kernels/base/err.h"
#include "kernels/base/fileio.h"

#include <yaml.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32     /* a plan nests 3 deep; deeper input is hostile */
#define MAX_ENTRIES 4096 /* per list or map: keeps the duplicate-key check cheap */

/* ---- the tree ---- */

enum { N_SCALAR, N_SEQ, N_MAP };

struct node {
    int kind;
    int line, col;
    int plain; /* scalar written without quotes or block style: may be null or a number */
    char *s;   /* scalar text, NUL-terminated (may hold an inner NUL: see len) */
    size_t len;
    struct node **kid; /* SEQ: items; MAP: key, value, key, value, ... */
    size_t n, cap;
};

static void node_free(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->kid[i]); /* depth is bounded by MAX_DEPTH */
    free(n->kid);
    free(n->s);
    free(n);
}

struct ctx {
    const char *path;
    const char *buf; /* the file, for positions of reader errors */
    size_t size;
    char *dir; /* the plan's directory with a trailing '/', or "" */
};

static int fail_at(const struct ctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(const struct ctx *c, int line, int col, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qb_err(QB_EFORMAT, "'%s':%d:%d: %s", c->path, line, col, msg);
}

#define FAIL(n, ...) fail_at(c, (n)->line, (n)->col, __VA_ARGS__)

static int is_null(const struct node *n)
{
    return n->kind == N_SCALAR && n->plain &&
           (n->len == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") || !strcmp(n->s, "Null") ||
            !strcmp(n->s, "NULL"));
}

static const char *kind_name(const struct node *n)
{
    if (n->kind == N_MAP)
        return "a map";
    if (n->kind == N_SEQ)
        return "a list";
    if (is_null(n))
        return "empty";
    return n->plain ? "a plain value" : "a quoted string";
}

static int node_add(const struct ctx *c, struct node *parent, struct node *kid)
{
    if (parent->n >= (parent->kind == N_MAP ? 2 : 1) * (size_t)MAX_ENTRIES)
        return fail_at(c, kid->line, kid->col, "more than %d entries in one %s", MAX_ENTRIES,
                       parent->kind == N_MAP ? "map" : "list");
    if (parent->n == parent->cap) {
        size_t ncap = parent->cap ? parent->cap * 2 : 8;
        struct node **nk;
        nk = realloc(parent->kid, ncap * sizeof *nk);
        if (!nk)
            return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
        parent->kid = nk;
        parent->cap = ncap;
    }
    parent->kid[parent->n++] = kid;
    return 0;
}

/* Line and column (in characters) of a byte offset, for libyaml's reader errors, which
 * carry an offset but no mark. */
static void offset_pos(const struct ctx *c, size_t off, int *line, int *col)
{
    int l = 1, k = 1;
    for (size_t i = 0; i < off && i < c->size; i++) {
        unsigned char b = (unsigned char)c->buf[i];
        if (b == '\n') {
            l++;
            k = 1;
        } else if ((b & 0xC0) != 0x80) {
            k++;
        }
    }
    *line = l;
    *col = k;
}

static int syntax_error(const struct ctx *c, const yaml_parser_t *p)
{
    int line, col;
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_MEMORY_ERROR)
        return qb_err(QB_ENOMEM, "'%s': out of memory while parsing", c->path);
    if (p->error == YAML_READER_ERROR) {
        /* "invalid ... UTF-8 octet", or a valid character YAML forbids (control codes) */
        const char *what = strstr(problem, "UTF-8") ? "not valid UTF-8 text" : "not plain text";
        offset_pos(c, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            return fail_at(c, line, col, "%s: %s (0x%02X)", what, problem,
                           (unsigned)p->problem_value);
        return fail_at(c, line, col, "%s: %s", what, problem);
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        return fail_at(c, line, col, "yaml syntax error: %s (%s at %d:%d)", problem, p->context,
                       (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    return fail_at(c, line, col, "yaml syntax error: %s", problem);
}

/* Parses the whole buffer into one tree. *root is NULL for a stream with no document. */
static int build_tree(const struct ctx *c, struct node **root)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct node *stack[MAX_DEPTH];
    int depth = 0, n_docs = 0, done = 0, have_event = 0, rc = 0;

    *root = NULL;
    if (!yaml_parser_initialize(&p))
        return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
    yaml_parser_set_input_string(&p, (const unsigned char *)c->buf, c->size);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING); /* refuse UTF-16 and stray bytes */

    while (!done) {
        struct node *n = NULL;
        int line, col;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(c, &p);
            goto fail;
        }
        have_event = 1;
        line = (int)ev.start_mark.line + 1;
        col = (int)ev.start_mark.column + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++n_docs > 1) {
                rc = fail_at(c, line, col, "a plan is one yaml document; a second one starts here");
                goto fail;
            }
            break;
        case YAML_ALIAS_EVENT:
            rc = fail_at(c, line, col, "alias '*%s' not supported; write the value out",
                         (const char *)ev.data.alias.anchor);
            goto fail;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            const yaml_char_t *tag = ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.tag
                                     : ev.type == YAML_SEQUENCE_START_EVENT
                                         ? ev.data.sequence_start.tag
                                         : ev.data.mapping_start.tag;
            if (tag) {
                rc = fail_at(c, line, col, "yaml tag '%s' not supported", (const char *)tag);
                goto fail;
            }
            n = calloc(1, sizeof *n);
            if (!n) {
                rc = qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
                goto fail;
            }
            n->line = line;
            n->col = col;
            if (ev.type == YAML_SCALAR_EVENT) {
                n->kind = N_SCALAR;
                n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                n->len = ev.data.scalar.length;
                n->s = malloc(n->len + 1);
                if (!n->s) {
                    node_free(n);
                    rc = qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
                    goto fail;
                }
                memcpy(n->s, ev.data.scalar.value, n->len);
                n->s[n->len] = 0;
            } else {
                n->kind = ev.type == YAML_SEQUENCE_START_EVENT ? N_SEQ : N_MAP;
            }
            if (depth == 0) {
                *root = n;
            } else if ((rc = node_add(c, stack[depth - 1], n)) < 0) {
                node_free(n);
                goto fail;
            }
            if (n->kind != N_SCALAR) {
                if (depth == MAX_DEPTH) {
                    rc = fail_at(c, line, col, "nested deeper than %d levels", MAX_DEPTH);
                    goto fail;
                }
                stack[depth++] = n;
            }
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default: break;
        }
        yaml_event_delete(&ev);
        have_event = 0;
    }
    yaml_parser_delete(&p);
    return 0;
fail:
    if (have_event)
        yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    node_free(*root);
    *root = NULL;
    return rc;
}

/* ---- typed values ---- */

/* Checks key i of map m: a non-empty scalar not seen earlier in the map. */
static int check_key(const struct ctx *c, const struct node *m, size_t i, const char *where)
{
    const struct node *k = m->kid[2 * i];
    if (k->kind != N_SCALAR || is_null(k))
        return FAIL(k, "keys of %s must be names, not %s", where, kind_name(k));
    if (strlen(k->s) != k->len)
        return FAIL(k, "a key of %s contains a NUL byte", where);
    for (size_t j = 0; j < i; j++) {
        const struct node *e = m->kid[2 * j];
        if (e->kind == N_SCALAR && !strcmp(e->s, k->s))
            return FAIL(k, "duplicate key '%s' in %s (first at %d:%d)", k->s, where, e->line,
                        e->col);
    }
    return 0;
}

static int get_string(const struct ctx *c, const char *key, const struct node *v, char **out)
{
    if (v->kind != N_SCALAR || is_null(v))
        return FAIL(v, "'%s' must be a string, not %s", key, kind_name(v));
    if (strlen(v->s) != v->len)
        return FAIL(v, "'%s' contains a NUL byte", key);
    if (!(*out = strdup(v->s)))
        return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
    return 0;
}

/* A path relative to the plan's directory; absolute paths are kept. */
static int get_path(const struct ctx *c, const char *key, const struct node *v, char **out)
{
    int rc;
    char *s = NULL;
    size_t a, b;
    if ((rc = get_string(c, key, v, &s)) < 0)
        return rc;
    if (s[0] == '/' || !c->dir[0]) {
        *out = s;
        return 0;
    }
    a = strlen(c->dir);
    b = strlen(s);
    *out = malloc(a + b + 1);
    if (!*out) {
        free(s);
        return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
    }
    memcpy(*out, c->dir, a);
    memcpy(*out + a, s, b + 1);
    free(s);
    return 0;
}

/* Plain decimal digits with an optional sign: strtoll with a full-consumption check. */
static int get_int(const struct ctx *c, const char *key, const struct node *v, int64_t lo,
                   int64_t hi, int64_t *out)
{
    char *end;
    long long x;
    const char *s = v->s;
    if (v->kind != N_SCALAR || !v->plain || is_null(v))
        return FAIL(v, "'%s' must be an integer, not %s", key, kind_name(v));
    if (!((s[0] >= '0' && s[0] <= '9') ||
          ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9')))
        return FAIL(v, "'%s' must be an integer, not '%s'", key, s);
    errno = 0;
    x = strtoll(s, &end, 10);
    if (*end || end != s + v->len)
        return FAIL(v, "'%s' must be an integer, not '%s'", key, s);
    if (errno == ERANGE || x < lo || x > hi)
        return FAIL(v, "'%s' is %s; it must lie in [%lld, %lld]", key, s, (long long)lo,
                    (long long)hi);
    *out = x;
    return 0;
}

/* A finite decimal number: digits, sign, point and exponent only (no inf, nan or hex). */
static int get_number(const struct ctx *c, const char *key, const struct node *v, double *out)
{
    char *end;
    double x;
    const char *s = v->s;
    if (v->kind != N_SCALAR || !v->plain || is_null(v))
        return FAIL(v, "'%s' must be a number, not %s", key, kind_name(v));
    if (strspn(s, "0123456789+-.eE") != v->len || !strpbrk(s, "0123456789"))
        return FAIL(v, "'%s' must be a number, not '%s'", key, s);
    errno = 0;
    x = strtod(s, &end);
    if (*end || end == s)
        return FAIL(v, "'%s' must be a number, not '%s'", key, s);
    if (errno == ERANGE || !isfinite(x))
        return FAIL(v, "'%s' is out of range: '%s'", key, s);
    *out = x;
    return 0;
}

/* Refuses key k of a map whose valid keys are names[0..n). */
static int unknown_key(const struct ctx *c, const struct node *k, const char *where,
                       const char *const *names, int n)
{
    char list[512];
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    return FAIL(k, "unknown key '%s' in %s; valid keys: %s", k->s, where, list);
}

/* Matches the keys of map m against names, filling vals[i] (NULL when absent). */
static int read_map(const struct ctx *c, const struct node *m, const char *where,
                    const char *const *names, int n, const struct node **vals)
{
    for (int i = 0; i < n; i++)
        vals[i] = NULL;
    for (size_t i = 0; i < m->n / 2; i++) {
        const struct node *k = m->kid[2 * i];
        int rc, j;
        if ((rc = check_key(c, m, i, where)) < 0)
            return rc;
        for (j = 0; j < n && strcmp(names[j], k->s); j++)
            ;
        if (j == n)
            return unknown_key(c, k, where, names, n);
        vals[j] = m->kid[2 * i + 1];
    }
    return 0;
}

/* ---- the sections ---- */

static int read_models(const struct ctx *c, const struct node *v, struct qb_plan *p)
{
    int rc;
    if (v->kind == N_SCALAR) {
        if (!(p->models = calloc(1, sizeof *p->models)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
        if ((rc = get_path(c, "models", v, &p->models[0])) < 0)
            return rc;
        p->n_models = 1;
        return 0;
    }
    if (v->kind != N_SEQ || v->n == 0)
        return FAIL(v, "'models' must be a list of model paths (at least one) or one path, not %s",
                    v->kind == N_SEQ ? "an empty list" : kind_name(v));
    if (!(p->models = calloc(v->n, sizeof *p->models)))
        return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
    for (size_t i = 0; i < v->n; i++) {
        if ((rc = get_path(c, "models", v->kid[i], &p->models[i])) < 0)
            return rc;
        p->n_models++;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->models[j], p->models[i]))
                return FAIL(v->kid[i], "model '%s' is listed twice", v->kid[i]->s);
    }
    return 0;
}

static int read_calibration(const struct ctx *c, const struct node *v, struct qb_settings *st)
{
    static const char *const names[] = {"file", "sequences", "seq_len"};
    const struct node *f[3];
    int rc;
    if (v->kind == N_SCALAR)
        return get_path(c, "calibration", v, &st->calibration.file);
    if (v->kind != N_MAP)
        return FAIL(v, "'calibration' must be a path or a map {file, sequences, seq_len}, not %s",
                    kind_name(v));
    if ((rc = read_map(c, v, "'calibration'", names, 3, f)) < 0)
        return rc;
    if (!f[0])
        return FAIL(v, "'calibration' needs a 'file'");
    if ((rc = get_path(c, "calibration.file", f[0], &st->calibration.file)) < 0)
        return rc;
    if (f[1] && (rc = get_int(c, "calibration.sequences", f[1], 1, 1 << 20,
                              &st->calibration.sequences)) < 0)
        return rc;
    if (f[2] &&
        (rc = get_int(c, "calibration.seq_len", f[2], 1, 1 << 20, &st->calibration.seq_len)) < 0)
        return rc;
    return 0;
}

/* shards: {probe: INDEX | job}: where a sharded run measures latency and memory, once per
 * config: in shard INDEX (default 0; a shard index past a run's count measures nothing) or in
 * a separate `qbrief run PLAN --probe` job (docs/distributed.md). */
static int read_shards(const struct ctx *c, const struct node *v, struct qb_plan *p)
{
    static const char *const names[] = {"probe"};
    const struct node *f[1];
    int rc;
    if (v->kind != N_MAP)
        return FAIL(v, "'shards' must be a map {probe: INDEX | job}, not %s", kind_name(v));
    if ((rc = read_map(c, v, "'shards'", names, 1, f)) < 0)
        return rc;
    if (!f[0])
        return 0;
    if (f[0]->kind == N_SCALAR && !is_null(f[0]) && !strcmp(f[0]->s, "job")) {
        p->probe_shard = -1;
        return 0;
    }
    if (f[0]->kind != N_SCALAR || !f[0]->plain || is_null(f[0]) || f[0]->s[0] < '0' ||
        f[0]->s[0] > '9')
        return FAIL(f[0], "'shards.probe' must be a shard index or 'job', not %s",
                    f[0]->kind == N_SCALAR && !is_null(f[0]) ? f[0]->s : kind_name(f[0]));
    return get_int(c, "shards.probe", f[0], 0, 1 << 20, &p->probe_shard);
}

static int parse_spec(const struct ctx *c, const char *key, const struct node *v,
                      struct qb_plan_config *out)
{
    char msg[768];
    if (v->kind != N_SCALAR || is_null(v) || strlen(v->s) != v->len)
        return FAIL(v, "'%s' must be a config spec such as w4g128, not %s", key, kind_name(v));
    if (qb_qspec_parse(v->s, &out->spec) < 0) {
        snprintf(msg, sizeof msg, "%s", qb_errmsg());
        return FAIL(v, "'%s': %s", key, msg);
    }
    qb_qspec_format(&out->spec, out->name, sizeof out->name);
    return 0;
}

/* sensitivity: {config, slice, granularity, keep, budgets} */
static int read_sensitivity(const struct ctx *c, const struct node *v, struct qb_plan *p)
{
    static const char *const names[] = {"config", "slice", "granularity", "keep", "budgets"};
    const struct node *f[5];
    struct qb_plan_config pc;
    int rc;
    if (v->kind != N_MAP)
        return FAIL(v,
                    "'sensitivity' must be a map {config, slice, granularity, keep, budgets}, "
                    "not %s",
                    kind_name(v));
    if ((rc = read_map(c, v, "'sensitivity'", names, 5, f)) < 0)
        return rc;
    if (!f[0])
        return FAIL(v, "'sensitivity' needs a 'config' (the low-bit config to scan)");
    if ((rc = parse_spec(c, "sensitivity.config", f[0], &pc)) < 0)
        return rc;
    memcpy(p->sens.config, pc.name, sizeof pc.name);
    if (f[1] && (rc = get_string(c, "sensitivity.slice", f[1], &p->sens.slice)) < 0)
        return rc;
    if (!f[1] && !p->settings.calibration.file)
        return FAIL(v, "'sensitivity' needs a 'slice' of the suite, or the plan's 'calibration'");
    if (f[2] && (f[2]->kind != N_SCALAR || is_null(f[2]) ||
                 (strcmp(f[2]->s, "tensor") && strcmp(f[2]->s, "layer"))))
        return FAIL(f[2], "'sensitivity.granularity' must be tensor or layer");
    p->sens.by_layer = f[2] && !strcmp(f[2]->s, "layer");
    if (f[3]) {
        if ((rc = parse_spec(c, "sensitivity.keep", f[3], &pc)) < 0)
            return rc;
        memcpy(p->sens.keep, pc.name, sizeof pc.name);
    }
    if (f[4] && (f[4]->kind != N_SEQ || f[4]->n == 0 || f[4]->n > 8))
        return FAIL(f[4], "'sensitivity.budgets' must be a list of 1 to 8 percents");
    for (size_t i = 0; f[4] && i < f[4]->n; i++) {
        double d;
        if ((rc = get_number(c, "sensitivity.budgets", f[4]->kid[i], &d)) < 0)
            return rc;
        if (!(d > 0 && d <= 100))
            return FAIL(f[4]->kid[i], "'sensitivity.budgets' holds %s; percents lie in (0, 100]",
                        f[4]->kid[i]->s);
        p->sens.budgets[p->sens.n_budgets++] = d;
    }
    return 0;
}

static int read_configs(const struct ctx *c, const struct node *v, const struct node *base,
                        struct qb_plan *p)
{
    struct qb_plan_config b;
    int rc;
    if (v->kind != N_SEQ || v->n == 0)
        return FAIL(v, "'configs' must be a list of config specs (at least one), not %s",
                    v->kind == N_SEQ ? "an empty list" : kind_name(v));
    if (base) {
        if ((rc = parse_spec(c, "baseline", base, &b)) < 0)
            return rc;
    } else {
        memset(&b, 0, sizeof b);
        if (qb_qspec_parse("f32", &b.spec) < 0)
            return qb_err(QB_EFORMAT, "'%s': cannot parse the default baseline f32", c->path);
        qb_qspec_format(&b.spec, b.name, sizeof b.name);
    }
    /* one spare slot for the baseline */
    if (!(p->configs = calloc(v->n + 1, sizeof *p->configs)))
        return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
    p->configs[0] = b;
    p->n_configs = 1;
    p->baseline = -1;
    for (size_t i = 0; i < v->n; i++) {
        struct qb_plan_config *cf = &p->configs[p->n_configs];
        const struct node *e = v->kid[i];
        if ((rc = parse_spec(c, "configs", e, cf)) < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->configs[1 + j].name, cf->name))
                return FAIL(e, "config '%s' is the same as '%s' at %d:%d (both are %s)", e->s,
                            v->kid[j]->s, v->kid[j]->line, v->kid[j]->col, cf->name);
        if (p->baseline < 0 && !strcmp(cf->name, b.name))
            p->baseline = p->n_configs;
        p->n_configs++;
    }
    if (p->baseline < 0) {
        p->baseline = 0; /* measured first: the brief compares every config to it */
    } else {
        memmove(&p->configs[0], &p->configs[1], (size_t)(p->n_configs - 1) * sizeof *p->configs);
        p->n_configs--;
        p->baseline--;
    }
    return 0;
}

static int read_latency(const struct ctx *c, const struct node *v, struct qb_settings *st)
{
    static const char *const names[] = {"prompt_lens", "gen_len", "batch", "repetitions", "warmup"};
    const struct node *f[5];
    int rc;
    if (v->kind != N_MAP)
        return FAIL(v, "'latency' must be a map, not %s", kind_name(v));
    if ((rc = read_map(c, v, "'latency'", names, 5, f)) < 0)
        return rc;
    if (f[0]) {
        const struct node *l = f[0];
        if (l->kind != N_SEQ || l->n == 0)
            return FAIL(l,
                        "'latency.prompt_lens' must be a list of integers (at least one), not %s",
                        l->kind == N_SEQ ? "an empty list" : kind_name(l));
        if (l->n > QB_PLAN_MAX_PROMPT_LENS)
            return FAIL(l->kid[QB_PLAN_MAX_PROMPT_LENS],
                        "'latency.prompt_lens' lists %zu lengths; a run times at most %d", l->n,
                        QB_PLAN_MAX_PROMPT_LENS);
        free(st->latency.prompt_lens);
        st->latency.n_prompt_lens = 0;
        if (!(st->latency.prompt_lens = calloc(l->n, sizeof *st->latency.prompt_lens)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
        for (size_t i = 0; i < l->n; i++) {
            if ((rc = get_int(c, "latency.prompt_lens", l->kid[i], 1, 1 << 20,
                              &st->latency.prompt_lens[i])) < 0)
                return rc;
            st->latency.n_prompt_lens++;
        }
    }
    if (f[1] && (rc = get_int(c, "latency.gen_len", f[1], 1, 1 << 20, &st->latency.gen_len)) < 0)
        return rc;
    if (f[1] && st->latency.gen_len < 2)
        return FAIL(f[1],
                    "'latency.gen_len' is %lld; it must be at least 2 (the time per output token "
                    "is measured on the tokens after the first)",
                    (long long)st->latency.gen_len);
    if (f[2] && (rc = get_int(c, "latency.batch", f[2], 1, 4096, &st->latency.batch)) < 0)
        return rc;
    if (f[3] &&
        (rc = get_int(c, "latency.repetitions", f[3], 1, 100000, &st->latency.repetitions)) < 0)
        return rc;
    if (f[4] && (rc = get_int(c, "latency.warmup", f[4], 0, 100000, &st->latency.warmup)) < 0)
        return rc;
    return 0;
}

/* A map of slice -> number >= 0 (at most max). `special`, when set, is a key stored apart. */
static int read_slices(const struct ctx *c, const struct node *v, const char *key, double max,
                       const char *special, int *has_special, double *special_val,
                       struct qb_settings_slice **out, int64_t *n_out)
{
    char where[64], item[160];
    int rc;
    snprintf(where, sizeof where, "'%s'", key);
    if (v->kind != N_MAP)
        return FAIL(v, "'%s' must be a map of slice names to numbers, not %s", key, kind_name(v));
    if (!(*out = calloc(v->n / 2 + 1, sizeof **out)))
        return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
    for (size_t i = 0; i < v->n / 2; i++) {
        const struct node *k = v->kid[2 * i], *x = v->kid[2 * i + 1];
        double d;
        if ((rc = check_key(c, v, i, where)) < 0)
            return rc;
        snprintf(item, sizeof item, "%s.%s", key, k->s);
        if ((rc = get_number(c, item, x, &d)) < 0)
            return rc;
        if (!(d >= 0 && d <= max))
            return FAIL(x, "'%s' is %s; it must lie in [0, %g]", item, x->s, max);
        if (special && !strcmp(k->s, special)) {
            *has_special = 1;
            *special_val = d;
            continue;
        }
        if (!((*out)[*n_out].slice = strdup(k->s)))
            return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
        (*out)[(*n_out)++].value = d;
    }
    return 0;
}

static int read_traffic(const struct ctx *c, const struct node *v, struct qb_settings *st)
{
    double sum = 0;
    int rc;
    if ((rc = read_slices(c, v, "traffic", 1e9, NULL, NULL, NULL, &st->traffic.slices,
                          &st->traffic.n)) < 0)
        return rc;
    for (int64_t i = 0; i < st->traffic.n; i++)
        sum += st->traffic.slices[i].value;
    if (!(sum > 0))
        return FAIL(v, "'traffic' shares are all zero; give at least one slice a share above 0");
    for (int64_t i = 0; i < st->traffic.n; i++)
        st->traffic.slices[i].value /= sum;
    return 0;
}

static int read_policy(const struct ctx *c, const struct node *v, struct qb_settings *st)
{
    static const char *const names[] = {"confidence", "bound"};
    const struct node *f[2];
    int rc;
    if (v->kind != N_MAP)
        return FAIL(v, "'policy' must be a map, not %s", kind_name(v));
    if ((rc = read_map(c, v, "'policy'", names, 2, f)) < 0)
        return rc;
    if (f[0]) {
        if ((rc = get_number(c, "policy.confidence", f[0], &st->policy.confidence)) < 0)
            return rc;
        if (!(st->policy.confidence > 0 && st->policy.confidence < 1))
            return FAIL(f[0], "'policy.confidence' is %s; it must lie strictly between 0 and 1",
                        f[0]->s);
    }
    if (f[1]) {
        char *s = NULL;
        if ((rc = get_string(c, "policy.bound", f[1], &s)) < 0)
            return rc;
        if (!strcmp(s, "interval"))
            st->policy.bound = QB_BOUND_INTERVAL;
        else if (!strcmp(s, "point"))
            st->policy.bound = QB_BOUND_POINT;
        else
            rc = FAIL(f[1], "'policy.bound' is '%s'; it must be 'interval' or 'point'", s);
        free(s);
    }
    return rc;
}

/* ---- the plan ---- */

enum {
    K_TITLE,
    K_QUESTION,
    K_MODELS,
    K_TOKENIZER,
    K_SUITE,
    K_PROMPT_TEMPLATE,
    K_CALIBRATION,
    K_CONFIGS,
    K_BASELINE,
    K_LATENCY,
    K_TOLERANCES,
    K_TRAFFIC,
    K_POLICY,
    K_THREADS,
    K_NAME,
    K_DB,
    K_TEMPLATE,
    K_OUTPUT,
    K_DEVICE,
    K_SHARDS,
    K_FLIPS,
    K_SENSITIVITY,
    K_COUNT
};
static const char *const plan_keys[K_COUNT] = {
    "title",       "question", "models",   "tokenizer",   "suite",      "prompt_template",
    "calibration", "configs",  "baseline", "latency",     "tolerances", "traffic",
    "policy",      "threads",  "name",     "db",          "template",   "output",
    "device",      "shards",   "flips",    "sensitivity",
};

static int read_plan(const struct ctx *c, const struct node *root, struct qb_plan *p)
{
    struct qb_settings *st = &p->settings;
    const struct node *v[K_COUNT];
    static const int required[] = {K_TITLE, K_MODELS, K_SUITE, K_CONFIGS};
    int rc;

    if (root->kind != N_MAP)
        return FAIL(root,
                    "a plan must be a map of keys (title, models, suite, configs, ...), not %s",
                    kind_name(root));
    if ((rc = read_map(c, root, "the plan", plan_keys, K_COUNT, v)) < 0)
        return rc;
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!v[required[i]])
            return FAIL(root, "missing required key '%s'", plan_keys[required[i]]);

    if ((rc = get_string(c, "title", v[K_TITLE], &st->title)) < 0)
        return rc;
    if (v[K_QUESTION] && (rc = get_string(c, "question", v[K_QUESTION], &st->question)) < 0)
        return rc;
    if ((rc = read_models(c, v[K_MODELS], p)) < 0)
        return rc;
    if (v[K_TOKENIZER] && (rc = get_path(c, "tokenizer", v[K_TOKENIZER], &p->tokenizer)) < 0)
        return rc;
    if ((rc = get_path(c, "suite", v[K_SUITE], &p->suite)) < 0)
        return rc;
    if (v[K_PROMPT_TEMPLATE]) {
        if ((rc = get_string(c, "prompt_template", v[K_PROMPT_TEMPLATE], &p->prompt_template)) < 0)
            return rc;
        /* "chat": the model's own chat template (collector/model/chat.h) */
        if (strcmp(p->prompt_template, "chat") && !strstr(p->prompt_template, "{prompt}"))
            return FAIL(v[K_PROMPT_TEMPLATE],
                        "'prompt_template' must contain {prompt} or be 'chat'");
    } else if (!(p->prompt_template = strdup("{prompt}"))) {
        return qb_err(QB_ENOMEM, "'%s': out of memory", c->path);
    }
    if (v[K_CALIBRATION] && (rc = read_calibration(c, v[K_CALIBRATION], st)) < 0)
        return rc;
    if ((rc = read_configs(c, v[K_CONFIGS], v[K_BASELINE], p)) < 0)
        return rc;
    if (v[K_LATENCY] && (rc = read_latency(c, v[K_LATENCY], st)) < 0)
        return rc;
    if (v[K_TOLERANCES] &&
        (rc = read_slices(c, v[K_TOLERANCES], "tolerances", 100, "default",
                          &st->tolerances.has_default, &st->tolerances.default_points,
                          &st->tolerances.slices, &st->tolerances.n)) < 0)
        return rc;
    if (v[K_FLIPS] &&
        (rc = read_slices(c, v[K_FLIPS], "flips", 100, "default", &st->flips.has_default,
                          &st->flips.default_percent, &st->flips.slices, &st->flips.n)) < 0)
        return rc;
    if (v[K_TRAFFIC] && (rc = read_traffic(c, v[K_TRAFFIC], st)) < 0)
        return rc;
    if (v[K_POLICY] && (rc = read_policy(c, v[K_POLICY], st)) < 0)
        return rc;
    if (v[K_THREADS] && (rc = get_int(c, "threads", v[K_THREADS], 1, 4096, &st->threads)) < 0)
        return rc;
    if (v[K_NAME] && (rc = get_string(c, "name", v[K_NAME], &p->name)) < 0)
        return rc;
    if (v[K_DB] && (rc = get_path(c, "db", v[K_DB], &p->db)) < 0)
        return rc;
    if (v[K_TEMPLATE] && (rc = get_string(c, "template", v[K_TEMPLATE], &st->template_name)) < 0)
        return rc;
    if (v[K_OUTPUT] && (rc = get_path(c, "output", v[K_OUTPUT], &p->output)) < 0)
        return rc;
    if (v[K_DEVICE]) {
        struct qb_device d;
        if ((rc = get_string(c, "device", v[K_DEVICE], &p->device)) < 0)
            return rc;
        if (qb_device_parse(p->device, &d) < 0)
            return FAIL(v[K_DEVICE], "%s", qb_errmsg());
    }
    if (v[K_SHARDS] && (rc = read_shards(c, v[K_SHARDS], p)) < 0)
        return rc;
    if (v[K_SENSITIVITY] && (rc = read_sensitivity(c, v[K_SENSITIVITY], p)) < 0)
        return rc;
    return 0;
}

static int set_defaults(struct qb_plan *p)
{
    static const int64_t lens[] = {128, 512};
    struct qb_settings *st = &p->settings;
    qb_settings_init(st);
    if (!(st->latency.prompt_lens = malloc(sizeof lens)) || !(st->plan = strdup(p->path)))
        return -1;
    memcpy(st->latency.prompt_lens, lens, sizeof lens);
    st->latency.n_prompt_lens = 2;
    st->latency.gen_len = 128;
    st->latency.batch = 4;
    st->latency.repetitions = 5;
    st->latency.warmup = 1;
    st->calibration.sequences = 128;
    st->calibration.seq_len = 512;
    st->policy.confidence = 0.95;
    st->policy.bound = QB_BOUND_INTERVAL;
    return 0;
}

int qb_plan_load(const char *path, struct qb_plan **out)
{
    struct ctx c = {path, NULL, 0, NULL};
    struct node *root = NULL;
    struct qb_plan *p = NULL;
    char *buf = NULL;
    const char *slash;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = qb_read_file(path, QB_PLAN_MAX_BYTES, &buf, &len)) < 0)
        return rc;
    c.buf = buf;
    c.size = len;
    slash = strrchr(path, '/');
    if (!(c.dir = strndup(path, slash ? (size_t)(slash - path) + 1 : 0))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    if ((rc = build_tree(&c, &root)) < 0)
        goto fail;
    if (!root) {
        rc = fail_at(&c, 1, 1, "the plan is empty");
        goto fail;
    }
    if (!(p = calloc(1, sizeof *p)) || !(p->path = strdup(path)) || set_defaults(p) < 0) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    if ((rc = read_plan(&c, root, p)) < 0)
        goto fail;
    *out = p;
    p = NULL;
fail:
    qb_plan_free(p);
    node_free(root);
    free(c.dir);
    free(buf);
    return rc;
}

void qb_plan_free(struct qb_plan *p)
{
    if (!p)
        return;
    free(p->path);
    for (int64_t i = 0; i < p->n_models; i++)
        free(p->models[i]);
    free(p->models);
    free(p->tokenizer);
    free(p->suite);
    free(p->device);
    free(p->prompt_template);
    free(p->configs);
    qb_settings_release(&p->settings);
    free(p->name);
    free(p->db);
    free(p->output);
    free(p->sens.slice);
    free(p);
}

double qb_plan_tolerance(const struct qb_plan *p, const char *slice)
{
    const struct qb_settings *st = &p->settings;
    const struct qb_settings_slice *e =
        qb_settings_find(st->tolerances.slices, st->tolerances.n, slice);
    return e ? e->value : st->tolerances.has_default ? st->tolerances.default_points : -1;
}
