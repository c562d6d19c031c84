/* import_llamabench: llama-bench's -o json / jsonl / sql tables into a run's latency samples
 * (store_import.h). A record is one test: build_commit, build_number, cpu_info, gpu_info,
 * backends, model_*, n_batch, n_threads, ..., n_prompt, n_gen, n_depth, test_time, avg_ns,
 * stddev_ns, avg_ts, stddev_ts, samples_ns, samples_ts (json/jsonl; the sql table has no
 * samples). A record without build_commit, build_number, backends, gpu_info, n_prompt, n_gen or
 * avg_ts is from a llama-bench this reader does not know (before backends replaced the
 * per-backend flags) and is refused. pp P and tg G tests combine into qbrief's requests of a
 * P-token prompt then G tokens: ttft = P / pp speed, tpot = 1 / tg speed, e2e = ttft + G tpot;
 * repetition i pairs the i-th samples. A pg test (both) is one whole request (e2e only). */
#include "collector/store/store_import.h"

#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/store/store.h"

#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test {
    int64_t line, n_prompt, n_gen;
    double *ts; /* tokens/s per repetition */
    int64_t n_ts;
};

struct lb {
    const char *path;
    GArray *tests; /* struct test */
    char device[256], host[256];
    int64_t skipped;
};

static void free_tests(GArray *a)
{
    for (guint i = 0; a && i < a->len; i++)
        free(g_array_index(a, struct test, i).ts);
    if (a)
        g_array_free(a, TRUE);
}

/* One record (an object from any of the three formats) at line. */
static int one_record(struct lb *x, json_t *o, int64_t line)
{
    static const char *const need[] = {"build_commit", "build_number", "backends", "gpu_info",
                                       "n_prompt",     "n_gen",        "avg_ts"};
    json_t *smp = json_object_get(o, "samples_ts"), *depth = json_object_get(o, "n_depth");
    struct test t = {line, 0, 0, NULL, 0};
    char dev[256];
    const char *gpu, *cpu;

    if (!json_is_object(o))
        return qb_err(QB_EINVAL, "'%s':%lld: not a JSON object", x->path, (long long)line);
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (!json_object_get(o, need[i]))
            return qb_err(QB_EUNSUP,
                          "'%s':%lld: not a llama-bench record of a version qbrief knows: field "
                          "'%s' is missing (known: llama-bench -o json|jsonl|sql with "
                          "build_commit, build_number, backends, gpu_info, n_prompt, n_gen, "
                          "avg_ts)",
                          x->path, (long long)line, need[i]);
    if (!json_is_integer(json_object_get(o, "n_prompt")) ||
        !json_is_integer(json_object_get(o, "n_gen")) ||
        !json_is_number(json_object_get(o, "avg_ts")) ||
        !json_is_string(json_object_get(o, "backends")))
        return qb_err(QB_EINVAL,
                      "'%s':%lld: n_prompt and n_gen must be integers, avg_ts a number and "
                      "backends a string",
                      x->path, (long long)line);
    if (json_is_integer(depth) && json_integer_value(depth) > 0) {
        x->skipped++; /* a test at a filled context: qbrief's requests start empty */
        return 0;
    }
    t.n_prompt = json_integer_value(json_object_get(o, "n_prompt"));
    t.n_gen = json_integer_value(json_object_get(o, "n_gen"));
    if (t.n_prompt < 0 || t.n_gen < 0 || t.n_prompt + t.n_gen == 0)
        return qb_err(QB_EINVAL, "'%s':%lld: a test of %lld prompt and %lld generated tokens",
                      x->path, (long long)line, (long long)t.n_prompt, (long long)t.n_gen);
    t.n_ts = json_is_array(smp) && json_array_size(smp) > 0 ? (int64_t)json_array_size(smp) : 1;
    if (!(t.ts = malloc((size_t)t.n_ts * sizeof *t.ts)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < t.n_ts; i++) {
        json_t *v = json_is_array(smp) && json_array_size(smp) > 0 ? json_array_get(smp, (size_t)i)
                                                                   : json_object_get(o, "avg_ts");
        t.ts[i] = json_is_number(v) ? json_number_value(v) : NAN;
        if (!(t.ts[i] > 0) || !isfinite(t.ts[i])) {
            free(t.ts);
            return qb_err(QB_EINVAL, "'%s':%lld: tokens/s must be positive numbers", x->path,
                          (long long)line);
        }
    }
    gpu = json_string_value(json_object_get(o, "gpu_info"));
    cpu = json_string_value(json_object_get(o, "cpu_info"));
    snprintf(dev, sizeof dev, "llama.cpp b%lld %s: %s [%s]",
             (long long)json_integer_value(json_object_get(o, "build_number")),
             json_is_string(json_object_get(o, "build_commit"))
                 ? json_string_value(json_object_get(o, "build_commit"))
                 : "?",
             gpu && *gpu ? gpu : "CPU", json_string_value(json_object_get(o, "backends")));
    if (x->device[0] && strcmp(x->device, dev)) {
        free(t.ts);
        return qb_err(QB_EINVAL,
                      "'%s':%lld: a second device or build (%s, earlier %s): import one device "
                      "per config",
                      x->path, (long long)line, dev, x->device);
    }
    snprintf(x->device, sizeof x->device, "%s", dev);
    snprintf(x->host, sizeof x->host, "%s", cpu ? cpu : "");
    g_array_append_val(x->tests, t);
    return 0;
}

/* --- json and jsonl ------------------------------------------------------------------------ */

/* The line of every object that opens at depth 1 of a JSON array, in order. */
static GArray *object_lines(const char *s, size_t n)
{
    GArray *lines = g_array_new(FALSE, FALSE, sizeof(int64_t));
    int64_t line = 1;
    int depth = 0, in_str = 0, esc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\n')
            line++;
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{') {
            if (c == '{' && depth == 1)
                g_array_append_val(lines, line);
            depth++;
        } else if (c == ']' || c == '}')
            depth--;
    }
    return lines;
}

static int read_json(struct lb *x, const char *text, size_t n)
{
    json_error_t je;
    json_t *root;
    GArray *lines;
    int rc = 0;

    if (!(root = json_loadb(text, n, 0, &je)))
        return qb_err(QB_EINVAL, "'%s':%d: invalid JSON: %s", x->path, je.line, je.text);
    if (!json_is_array(root)) {
        json_decref(root);
        return qb_err(QB_EINVAL, "'%s':1: llama-bench -o json writes an array of tests", x->path);
    }
    lines = object_lines(text, n);
    for (size_t i = 0; i < json_array_size(root) && rc == 0; i++)
        rc = one_record(x, json_array_get(root, i),
                        i < lines->len ? g_array_index(lines, int64_t, i) : 1);
    g_array_free(lines, TRUE);
    json_decref(root);
    return rc;
}

static int read_jsonl(struct lb *x, const char *text, size_t n)
{
    int64_t line = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (text + i)) : n - i;
        json_error_t je;
        json_t *o;
        line++;
        if (strspn(text + i, " \t\r") < len) {
            if (!(o = json_loadb(text + i, len, 0, &je)))
                rc = qb_err(QB_EINVAL, "'%s':%lld: %s JSON: %s", x->path, (long long)line,
                            nl ? "invalid" : "truncated (no end of line)", je.text);
            else
                rc = one_record(x, o, line);
            json_decref(o);
        }
        i += len + 1;
    }
    return rc;
}

/* --- sql ---------------------------------------------------------------------------------- */

/* What the llama-bench script may do in the private database: create and fill table test. */
static int sql_auth(void *ctx, int action, const char *a, const char *b, const char *c,
                    const char *d)
{
    (void)ctx, (void)b, (void)c, (void)d;
    switch (action) {
    case SQLITE_CREATE_TABLE: return a && !strcmp(a, "test") ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_INSERT:
        return a && (!strcmp(a, "test") || !strcmp(a, "sqlite_master")) ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_UPDATE: return a && !strcmp(a, "sqlite_master") ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_READ:
    case SQLITE_SELECT: return SQLITE_OK;
    default: return SQLITE_DENY;
    }
}

/* Runs the script statement by statement (each INSERT's first line kept by rowid). */
static int sql_load(struct lb *x, sqlite3 *db, const char *text, size_t n, GArray *line_of)
{
    GString *stmt = g_string_new(NULL);
    int64_t line = 0, start = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (text + i)) + 1 : n - i;
        line++;
        if (stmt->len == 0 && strspn(text + i, " \t\r\n") >= len) {
            i += len;
            continue;
        }
        if (stmt->len == 0)
            start = line;
        g_string_append_len(stmt, text + i, (gssize)len);
        i += len;
        if (!sqlite3_complete(stmt->str))
            continue;
        if (sqlite3_exec(db, stmt->str, NULL, NULL, NULL) != SQLITE_OK) {
            rc = qb_err(QB_EINVAL, "'%s':%lld: not a llama-bench -o sql statement: %s", x->path,
                        (long long)start, sqlite3_errmsg(db));
            break;
        }
        if (sqlite3_changes(db) > 0) {
            int64_t rowid = sqlite3_last_insert_rowid(db);
            if (rowid >= (int64_t)line_of->len)
                g_array_set_size(line_of, (guint)rowid + 1);
            g_array_index(line_of, int64_t, rowid) = start;
        }
        g_string_truncate(stmt, 0);
    }
    if (rc == 0 && stmt->len && strspn(stmt->str, " \t\r\n;") < stmt->len)
        rc = qb_err(QB_EINVAL, "'%s':%lld: truncated SQL statement", x->path, (long long)start);
    g_string_free(stmt, TRUE);
    return rc;
}

static int read_sql(struct lb *x, const char *text, size_t n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    GArray *line_of = g_array_new(FALSE, TRUE, sizeof(int64_t));
    int rc;

    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) !=
        SQLITE_OK) {
        rc = qb_err(QB_ENOMEM, "'%s': cannot open a scratch database", x->path);
        goto out;
    }
    sqlite3_set_authorizer(db, sql_auth, NULL);
    if ((rc = sql_load(x, db, text, n, line_of)) < 0)
        goto out;
    if (sqlite3_prepare_v2(db, "SELECT rowid, * FROM test ORDER BY rowid", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = qb_err(QB_EINVAL, "'%s': no table 'test' (llama-bench -o sql creates it)", x->path);
        goto out;
    }
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        json_t *o = json_object();
        int64_t rowid = sqlite3_column_int64(st, 0);
        for (int c = 1; c < sqlite3_column_count(st); c++) {
            const char *name = sqlite3_column_name(st, c);
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER:
                json_object_set_new(o, name, json_integer(sqlite3_column_int64(st, c)));
                break;
            case SQLITE_FLOAT:
                json_object_set_new(o, name, json_real(sqlite3_column_double(st, c)));
                break;
            case SQLITE_TEXT:
                json_object_set_new(o, name, json_string((const char *)sqlite3_column_text(st, c)));
                break;
            default: break;
            }
        }
        rc = one_record(x, o,
                        rowid < (int64_t)line_of->len ? g_array_index(line_of, int64_t, rowid) : 1);
        json_decref(o);
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    g_array_free(line_of, TRUE);
    return rc;
}

/* --- into the store ----------------------------------------------------------------------- */

static int put(struct qb_store *s, int64_t run, int64_t cfg, struct lb *x,
               struct qb_store_latency *l, int64_t line, int64_t *rows)
{
    int rc;
    l->host = x->host[0] ? x->host : NULL;
    l->device = x->device;
    l->batch = 1;
    if ((rc = qb_store_put_latency(s, run, cfg, l)) < 0)
        return qb_err(rc,
                      "'%s':%lld: a second test of %lld prompt and %lld generated tokens for "
                      "this config (llama-bench settings such as threads differ?): import "
                      "one setting per config",
                      x->path, (long long)line, (long long)l->prompt_len, (long long)l->gen_len);
    (*rows)++;
    return 0;
}

/* pp x tg into requests; pg tests as they are; a pp without any tg as a prefill. */
static int write_tests(struct qb_store *s, int64_t run, int64_t cfg, struct lb *x, int64_t *rows)
{
    const struct test *t = (const struct test *)(void *)x->tests->data;
    int64_t n = x->tests->len, n_tg = 0;
    int rc;
    for (int64_t i = 0; i < n; i++)
        n_tg += t[i].n_prompt == 0;
    for (int64_t i = 0; i < n; i++) {
        const struct test *p = &t[i];
        if (p->n_prompt > 0 && p->n_gen > 0) {
            for (int64_t r = 0; r < p->n_ts; r++) {
                struct qb_store_latency l = {p->n_prompt,
                                             p->n_gen,
                                             1,
                                             r,
                                             NAN,
                                             NAN,
                                             1000.0 * (double)(p->n_prompt + p->n_gen) / p->ts[r],
                                             NAN,
                                             NULL,
                                             NULL};
                if ((rc = put(s, run, cfg, x, &l, p->line, rows)) < 0)
                    return rc;
            }
            continue;
        }
        if (p->n_gen > 0)
            continue; /* a tg: taken with each pp below, or alone when there is none */
        for (int64_t j = 0; j < n; j++) {
            const struct test *g = &t[j];
            if (g->n_prompt != 0)
                continue;
            for (int64_t r = 0; r < p->n_ts && r < g->n_ts; r++) {
                double ttft = 1000.0 * (double)p->n_prompt / p->ts[r], tpot = 1000.0 / g->ts[r];
                struct qb_store_latency l = {
                    p->n_prompt, g->n_gen, 1,   r, ttft, tpot, ttft + (double)g->n_gen * tpot,
                    g->ts[r],    NULL,     NULL};
                if ((rc = put(s, run, cfg, x, &l, g->line, rows)) < 0)
                    return rc;
            }
        }
        for (int64_t r = 0; n_tg == 0 && r < p->n_ts; r++) {
            double ttft = 1000.0 * (double)p->n_prompt / p->ts[r];
            struct qb_store_latency l = {p->n_prompt, 0, 1, r, ttft, NAN, ttft, NAN, NULL, NULL};
            if ((rc = put(s, run, cfg, x, &l, p->line, rows)) < 0)
                return rc;
        }
    }
    for (int64_t j = 0; j < n && rows && *rows == 0; j++) /* only tg tests */
        for (int64_t r = 0; t[j].n_prompt == 0 && r < t[j].n_ts; r++) {
            double tpot = 1000.0 / t[j].ts[r];
            struct qb_store_latency l = {
                0, t[j].n_gen, 1, r, NAN, tpot, (double)t[j].n_gen * tpot, t[j].ts[r], NULL, NULL};
            if ((rc = put(s, run, cfg, x, &l, t[j].line, rows)) < 0)
                return rc;
        }
    return 0;
}

static int parse_file(struct lb *x, const char *text, size_t n)
{
    const char *ext = strrchr(x->path, '.');
    size_t skip = 0;
    while (skip < n &&
           (text[skip] == ' ' || text[skip] == '\n' || text[skip] == '\r' || text[skip] == '\t'))
        skip++;
    if (skip == n)
        return qb_err(QB_EINVAL, "'%s': empty file", x->path);
    if (ext && !strcmp(ext, ".sql"))
        return read_sql(x, text, n);
    if (ext && !strcmp(ext, ".jsonl"))
        return read_jsonl(x, text, n);
    if (ext && !strcmp(ext, ".json"))
        return read_json(x, text, n);
    if (text[skip] == '[')
        return read_json(x, text, n);
    if (text[skip] == '{')
        return read_jsonl(x, text, n);
    return read_sql(x, text, n);
}

int qb_import_llamabench(struct qb_store *s, const struct qb_import_opts *o, const char *path,
                         struct qb_import_summary *sum)
{
    struct lb x = {.path = path};
    gchar *text = NULL;
    gsize n = 0;
    GError *ge = NULL;
    int64_t run_id, cfg;
    int rc;

    memset(sum, 0, sizeof *sum);
    if ((rc = qb_store_run_find(s, o->run, &run_id)) < 0 ||
        (rc = qb_file_sha256(path, sum->sha256)) < 0)
        return rc;
    if (!g_file_get_contents(path, &text, &n, &ge)) {
        rc = qb_err(QB_EIO, "'%s': %s", path, ge->message);
        g_error_free(ge);
        return rc;
    }
    x.tests = g_array_new(FALSE, FALSE, sizeof(struct test));
    if ((rc = parse_file(&x, text, n)) < 0)
        goto out;
    if (x.tests->len == 0) {
        rc = qb_err(QB_EINVAL, "'%s': no llama-bench tests to import", path);
        goto out;
    }
    if ((rc = qb_store_begin(s)) < 0)
        goto out;
    if ((rc = qb_import_config(s, run_id, o->config, &cfg)) < 0 ||
        (rc = write_tests(s, run_id, cfg, &x, &sum->rows)) < 0 ||
        (rc = qb_import_record(s, run_id, cfg, "llama-bench", path, sum->sha256, sum->rows, 0,
                               x.device)) < 0) {
        qb_store_rollback(s);
        goto out;
    }
    rc = qb_store_commit(s);
out:
    sum->skipped = x.skipped;
    snprintf(sum->device, sizeof sum->device, "%s", x.device);
    free_tests(x.tests);
    g_free(text);
    return rc;
}
