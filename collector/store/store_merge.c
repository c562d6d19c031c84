/* store_merge: shard stores into one store (see store_merge.h). */
#include "collector/store/store_merge.h"

#include "collector/store/store.h"
#include "kernels/base/err.h"

#include <errno.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tables copied, parents first, and how rows are keyed in OUT. Tables not listed here
 * (run_locks: a live process's hold) are not copied. */
static const char *const tables[] = {"models", "suites",       "runs",          "configs",
                                     "items",  "item_results", "baseline_topk", "latency_samples",
                                     "memory", "calibration",  "shards"};

struct merge {
    sqlite3 *db;
    const char *out;    /* for messages */
    const char *path;   /* the shard being merged */
    GHashTable *tokens; /* token -> path, of this call's shards */
    char plan[65];      /* the plan every shard must share ("" until known) */
    int64_t count;      /* the shard count every shard must share (0 until known) */
    void (*on_event)(void *, const struct qb_merge_event *);
    void *ctx;
};

static int sql_err(struct merge *m, const char *what)
{
    return qb_err(QB_EIO, "merging '%s' into '%s': %s: %s", m->path ? m->path : "?", m->out, what,
                  sqlite3_errmsg(m->db));
}

static int exec(struct merge *m, const char *sql, const char *what)
{
    return sqlite3_exec(m->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : sql_err(m, what);
}

/* A query's first row: each column as text (NULL kept) into out[0..n); *found 0 when none. */
static int row_text(struct merge *m, const char *sql, const char *bind, char **out, int n,
                    int *found)
{
    sqlite3_stmt *st = NULL;
    int rc;
    *found = 0;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_err(m, "preparing a check");
    if (bind)
        sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = 1;
        for (int i = 0; i < n; i++) {
            const char *t = (const char *)sqlite3_column_text(st, i);
            out[i] = t ? g_strdup(t) : NULL;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_err(m, "reading");
    return 0;
}

static int count_of(struct merge *m, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_err(m, "preparing a count");
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_err(m, "counting");
}

/* The columns of schema.table, into a NULL-terminated g_strv (caller frees). */
static int columns(struct merge *m, const char *schema, const char *table, char ***out)
{
    char *sql = g_strdup_printf("SELECT name FROM pragma_table_info('%s', '%s') ORDER BY cid",
                                table, schema);
    GPtrArray *a = g_ptr_array_new();
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL);
    g_free(sql);
    if (rc != SQLITE_OK) {
        g_ptr_array_free(a, TRUE);
        return sql_err(m, "reading a table's columns");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        g_ptr_array_add(a, g_strdup((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    g_ptr_array_add(a, NULL);
    *out = (char **)g_ptr_array_free(a, FALSE);
    return rc == SQLITE_DONE ? 0 : sql_err(m, "reading a table's columns");
}

/* The id map a foreign-key column goes through, or NULL for a plain column. */
static const char *map_of(const char *col)
{
    static const char *const k[][2] = {{"model_id", "m_models"},
                                       {"suite_id", "m_suites"},
                                       {"run_id", "m_runs"},
                                       {"config_id", "m_configs"},
                                       {"item_id", "m_items"}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(col, k[i][0]))
            return k[i][1];
    return NULL;
}

/* INSERT OR IGNORE of src.table into main.table, every column both have but id, foreign
 * keys through their maps. where (may be NULL) filters the source rows (alias s). */
static int copy_rows(struct merge *m, const char *table, const char *where)
{
    char **dst = NULL, **src = NULL;
    int rc;
    if ((rc = columns(m, "main", table, &dst)) < 0 || (rc = columns(m, "src", table, &src)) < 0) {
        g_strfreev(dst);
        return rc;
    }
    GString *cols = g_string_new(NULL), *vals = g_string_new(NULL);
    for (char **c = dst; *c; c++) {
        if (!strcmp(*c, "id") || !g_strv_contains((const char *const *)src, *c))
            continue;
        const char *map = map_of(*c);
        g_string_append_printf(cols, "%s\"%s\"", cols->len ? ", " : "", *c);
        if (map)
            g_string_append_printf(vals, "%s(SELECT new FROM temp.%s WHERE old = s.\"%s\")",
                                   vals->len ? ", " : "", map, *c);
        else
            g_string_append_printf(vals, "%ss.\"%s\"", vals->len ? ", " : "", *c);
    }
    char *sql = g_strdup_printf("INSERT OR IGNORE INTO main.\"%s\" (%s) SELECT %s FROM src.\"%s\" "
                                "AS s%s%s",
                                table, cols->str, vals->str, table, where ? " WHERE " : "",
                                where ? where : "");
    char *what = g_strdup_printf("copying %s", table);
    rc = exec(m, sql, what);
    g_free(what);
    g_free(sql);
    g_string_free(cols, TRUE);
    g_string_free(vals, TRUE);
    g_strfreev(dst);
    g_strfreev(src);
    return rc;
}

/* The id maps of the parent tables, after their rows are copied. */
static int build_maps(struct merge *m, int stage)
{
    static const char *const sql[] = {
        "DELETE FROM temp.m_models; DELETE FROM temp.m_suites; DELETE FROM temp.m_runs;"
        "DELETE FROM temp.m_configs; DELETE FROM temp.m_items;"
        "INSERT INTO temp.m_models SELECT s.id, d.id FROM src.models s JOIN main.models d "
        "  ON d.sha256 = s.sha256;"
        "INSERT INTO temp.m_suites SELECT s.id, d.id FROM src.suites s JOIN main.suites d "
        "  ON d.sha256 = s.sha256;",
        "INSERT INTO temp.m_runs SELECT s.id, d.id FROM src.runs s JOIN main.runs d "
        "  ON d.name = s.name;",
        "INSERT INTO temp.m_configs SELECT s.id, d.id FROM src.configs s "
        "  JOIN temp.m_runs r ON r.old = s.run_id "
        "  JOIN main.configs d ON d.run_id = r.new AND d.spec = s.spec;"
        "INSERT INTO temp.m_items SELECT s.id, d.id FROM src.items s "
        "  JOIN temp.m_suites u ON u.old = s.suite_id "
        "  JOIN main.items d ON d.suite_id = u.new AND d.item_key = s.item_key;",
    };
    return exec(m, sql[stage], "mapping ids");
}

/* A run that OUT has already must be the same run: model, suite, version, baseline and
 * calibration. */
static int check_runs(struct merge *m)
{
    static const char *const q =
        "SELECT s.name, CASE"
        "  WHEN sm.sha256 <> dm.sha256 THEN 'model sha256 ' || sm.sha256 || ' vs ' || dm.sha256"
        "  WHEN ss.sha256 <> ds.sha256 THEN 'suite sha256 ' || ss.sha256 || ' vs ' || ds.sha256"
        "  WHEN s.qbrief_version IS NOT d.qbrief_version OR s.git_commit IS NOT d.git_commit"
        "    THEN 'qbrief ' || ifnull(s.qbrief_version, '?') || ' ' || ifnull(s.git_commit, '')"
        "      || ' vs ' || ifnull(d.qbrief_version, '?') || ' ' || ifnull(d.git_commit, '')"
        "  WHEN s.baseline_config <> d.baseline_config"
        "    THEN 'baseline ' || s.baseline_config || ' vs ' || d.baseline_config"
        "  WHEN (SELECT group_concat(sha256) FROM (SELECT DISTINCT sha256 FROM src.calibration"
        "         WHERE run_id = s.id ORDER BY sha256)) IS NOT"
        "       (SELECT group_concat(sha256) FROM (SELECT DISTINCT sha256 FROM main.calibration"
        "         WHERE run_id = d.id ORDER BY sha256))"
        "    THEN 'calibration sha256'"
        "  END FROM src.runs s JOIN main.runs d ON d.name = s.name"
        "  JOIN src.models sm ON sm.id = s.model_id JOIN main.models dm ON dm.id = d.model_id"
        "  JOIN src.suites ss ON ss.id = s.suite_id JOIN main.suites ds ON ds.id = d.suite_id"
        " WHERE s.id IN (SELECT run_id FROM src.shards)";
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(m->db, q, -1, &st, NULL) != SQLITE_OK)
        return sql_err(m, "comparing runs");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *why = (const char *)sqlite3_column_text(st, 1);
        if (why) {
            rc = qb_err(QB_EINVAL,
                        "'%s' does not belong with the shards merged before it: run '%s' "
                        "differs in its %s",
                        m->path, (const char *)sqlite3_column_text(st, 0), why);
            sqlite3_finalize(st);
            return rc;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_err(m, "comparing runs");
}

/* The shard records of src against the plan, the count, this call's other shards and OUT's
 * own records. *again: every shard of src is in OUT already (by token). */
static int check_shards(struct merge *m, int *again)
{
    static const char *const q =
        "SELECT r.name, s.shard_index, s.shard_count, s.plan_sha256, s.token,"
        "  (SELECT d.token FROM main.shards d JOIN main.runs dr ON dr.id = d.run_id"
        "    WHERE dr.name = r.name AND d.shard_index = s.shard_index),"
        "  (SELECT d.source FROM main.shards d JOIN main.runs dr ON dr.id = d.run_id"
        "    WHERE dr.name = r.name AND d.shard_index = s.shard_index)"
        " FROM src.shards s JOIN src.runs r ON r.id = s.run_id ORDER BY r.name, s.shard_index";
    sqlite3_stmt *st = NULL;
    int rc, n = 0, n_again = 0;
    if (sqlite3_prepare_v2(m->db, q, -1, &st, NULL) != SQLITE_OK)
        return sql_err(m, "reading shard records");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *run = (const char *)sqlite3_column_text(st, 0);
        int64_t idx = sqlite3_column_int64(st, 1), cnt = sqlite3_column_int64(st, 2);
        const char *plan = (const char *)sqlite3_column_text(st, 3);
        const char *token = (const char *)sqlite3_column_text(st, 4);
        const char *had = (const char *)sqlite3_column_text(st, 5);
        const char *had_src = (const char *)sqlite3_column_text(st, 6);
        const char *twice = g_hash_table_lookup(m->tokens, token);
        n++;
        if (twice && strcmp(twice, m->path)) {
            rc = qb_err(QB_EINVAL,
                        "'%s' is shard %lld/%lld of run '%s' again: '%s' is the same shard",
                        m->path, (long long)idx, (long long)cnt, run, twice);
        } else if (!m->plan[0]) {
            snprintf(m->plan, sizeof m->plan, "%s", plan);
        } else if (strcmp(m->plan, plan)) {
            rc = qb_err(QB_EINVAL,
                        "'%s' is a shard of another plan: plan sha256 %.12s..., the other "
                        "shards %.12s...",
                        m->path, plan, m->plan);
        }
        if (rc == SQLITE_ROW && idx >= 0) {
            if (!m->count)
                m->count = cnt;
            else if (cnt != m->count)
                rc = qb_err(QB_EINVAL,
                            "'%s' is shard %lld of %lld, the other shards are of %lld: shards "
                            "of one split all have the same count",
                            m->path, (long long)idx, (long long)cnt, (long long)m->count);
        }
        if (rc == SQLITE_ROW && had && strcmp(had, token))
            rc = qb_err(QB_EINVAL,
                        "'%s' and '%s' are two different runs of shard %lld/%lld of run '%s'; "
                        "merge only one of them",
                        m->path, had_src ? had_src : m->out, (long long)idx, (long long)cnt, run);
        if (rc != SQLITE_ROW) {
            sqlite3_finalize(st);
            return rc;
        }
        n_again += had != NULL;
        g_hash_table_insert(m->tokens, g_strdup(token), g_strdup(m->path));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sql_err(m, "reading shard records");
    if (!n)
        return qb_err(QB_EINVAL,
                      "'%s' is not a shard: it has no shard record (run it with qbrief run "
                      "--shard I/N)",
                      m->path);
    *again = n_again == n;
    return 0;
}

/* Units of src that OUT holds already from another shard: the shards overlap. */
static int check_disjoint(struct merge *m)
{
    char *row[2] = {0};
    int found, rc;
    rc = row_text(m,
                  "SELECT count(*), min(r.name) FROM src.item_results s"
                  "  JOIN src.runs r ON r.id = s.run_id"
                  "  JOIN main.item_results d ON d.run_id = (SELECT new FROM temp.m_runs WHERE "
                  "old = s.run_id) AND d.config_id = (SELECT new FROM temp.m_configs WHERE old = "
                  "s.config_id) AND d.item_id = (SELECT new FROM temp.m_items WHERE old = "
                  "s.item_id)"
                  "  WHERE s.run_id IN (SELECT run_id FROM src.shards)",
                  NULL, row, 2, &found);
    if (rc == 0 && found && row[0] && strcmp(row[0], "0"))
        rc = qb_err(QB_EINVAL,
                    "'%s' overlaps the shards merged before it: %s of its (config, item) "
                    "units of run '%s' are there already (shards of one split are disjoint; "
                    "were these split with different counts?)",
                    m->path, row[0], row[1] ? row[1] : "?");
    g_free(row[0]);
    g_free(row[1]);
    return rc;
}

/* One shard's rows into OUT, in one transaction; *again: OUT had all of it already. */
static int merge_one(struct merge *m, int *again)
{
    int rc;
    char *fin = sqlite3_mprintf(
        "UPDATE main.shards SET source = %Q WHERE source IS NULL;"
        "UPDATE main.runs SET started_at = (SELECT min(runs.started_at, s.started_at) FROM "
        "src.runs s WHERE s.name = runs.name), finished_at = (SELECT CASE WHEN s.finished_at IS "
        "NULL OR runs.finished_at IS NULL THEN NULL ELSE max(s.finished_at, runs.finished_at) "
        "END FROM src.runs s WHERE s.name = runs.name) WHERE name IN (SELECT name FROM src.runs "
        "WHERE id IN (SELECT run_id FROM src.shards))",
        m->path);
    if (!fin)
        return qb_err(QB_ENOMEM, "out of memory");
    if ((rc = exec(m, "BEGIN IMMEDIATE", "starting")) < 0) {
        sqlite3_free(fin);
        return rc;
    }
    if ((rc = check_shards(m, again)) < 0 || (rc = check_runs(m)) < 0)
        goto fail;
    if ((rc = copy_rows(m, "models", NULL)) < 0 || (rc = copy_rows(m, "suites", NULL)) < 0 ||
        (rc = build_maps(m, 0)) < 0 ||
        (rc = copy_rows(m, "runs", "s.id IN (SELECT run_id FROM src.shards)")) < 0 ||
        (rc = build_maps(m, 1)) < 0 || (rc = copy_rows(m, "configs", NULL)) < 0 ||
        (rc = copy_rows(m, "items", NULL)) < 0 || (rc = build_maps(m, 2)) < 0)
        goto fail;
    if (!*again && (rc = check_disjoint(m)) < 0)
        goto fail;
    for (size_t t = 5; t < sizeof tables / sizeof tables[0]; t++)
        if ((rc = copy_rows(m, tables[t], "s.run_id IN (SELECT run_id FROM src.shards)")) < 0)
            goto fail;
    if ((rc = exec(m, fin, "recording the shard's source")) < 0)
        goto fail;
    sqlite3_free(fin);
    return exec(m, "COMMIT", "committing");
fail:
    sqlite3_free(fin);
    sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Reports one shard's runs (from src, after its merge). */
static int report_shard(struct merge *m, int again_all)
{
    static const char *const q =
        "SELECT r.name, s.shard_index, s.shard_count, s.n_units, s.probe,"
        "  (SELECT count(*) FROM src.item_results x WHERE x.run_id = r.id), s.host"
        " FROM src.shards s JOIN src.runs r ON r.id = s.run_id ORDER BY r.name, s.shard_index";
    sqlite3_stmt *st = NULL;
    int rc;
    if (!m->on_event)
        return 0;
    if (sqlite3_prepare_v2(m->db, q, -1, &st, NULL) != SQLITE_OK)
        return sql_err(m, "reading shard records");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct qb_merge_event ev = {.kind = QB_MERGE_EV_SHARD,
                                    .path = m->path,
                                    .run = (const char *)sqlite3_column_text(st, 0),
                                    .index = sqlite3_column_int64(st, 1),
                                    .count = sqlite3_column_int64(st, 2),
                                    .n_units = sqlite3_column_int64(st, 3),
                                    .probe = sqlite3_column_int(st, 4),
                                    .n_results = sqlite3_column_int64(st, 5),
                                    .host = (const char *)sqlite3_column_text(st, 6),
                                    .again = again_all};
        m->on_event(m->ctx, &ev);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_err(m, "reading shard records");
}

/* After the merge: per run, the units expected and held, and the shards missing; a run
 * with units missing has no finished_at. */
static int summarize(struct merge *m)
{
    static const char *const q =
        "SELECT r.id, r.name, (SELECT count(*) FROM main.configs c WHERE c.run_id = r.id) * "
        "u.n_items, (SELECT count(*) FROM main.item_results x WHERE x.run_id = r.id),"
        "  (SELECT count(*) FROM main.shards s WHERE s.run_id = r.id AND s.shard_index >= 0),"
        "  (SELECT max(shard_count) FROM main.shards s WHERE s.run_id = r.id)"
        " FROM main.runs r JOIN main.suites u ON u.id = r.suite_id ORDER BY r.name";
    sqlite3_stmt *st = NULL, *idx = NULL;
    int rc;
    m->path = NULL;
    if (sqlite3_prepare_v2(m->db, q, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "SELECT 1 FROM main.shards WHERE run_id = ?1 AND shard_index = ?2", -1,
                           &idx, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return sql_err(m, "summarizing");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), want = sqlite3_column_int64(st, 2);
        int64_t have = sqlite3_column_int64(st, 3), count = sqlite3_column_int64(st, 5);
        GString *missing = g_string_new(NULL);
        for (int64_t k = 0; k < count; k++) {
            sqlite3_bind_int64(idx, 1, id);
            sqlite3_bind_int64(idx, 2, k);
            if (sqlite3_step(idx) != SQLITE_ROW)
                g_string_append_printf(missing, "%s%lld", missing->len ? ", " : "", (long long)k);
            sqlite3_reset(idx);
        }
        if (want > have) {
            char *sql = sqlite3_mprintf("UPDATE main.runs SET finished_at = NULL WHERE id = %lld",
                                        (long long)id);
            int e = sql ? exec(m, sql, "marking a partial run") : QB_ENOMEM;
            sqlite3_free(sql);
            if (e < 0) {
                g_string_free(missing, TRUE);
                rc = e;
                break;
            }
        }
        if (m->on_event) {
            struct qb_merge_event ev = {.kind = QB_MERGE_EV_RUN,
                                        .run = (const char *)sqlite3_column_text(st, 1),
                                        .count = count,
                                        .n_units = want,
                                        .n_results = have,
                                        .n_missing = want > have ? want - have : 0,
                                        .n_shards = sqlite3_column_int64(st, 4),
                                        .missing_shards = missing->len ? missing->str : NULL};
            m->on_event(m->ctx, &ev);
        }
        g_string_free(missing, TRUE);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(idx);
    return rc == SQLITE_DONE ? 0 : rc < 0 ? rc : sql_err(m, "summarizing");
}

/* Every input is a store qbrief can read (qb_store_open checks it and its pages), none is
 * OUT, and no file comes twice. */
static int check_inputs(const char *out, const char *const *in, int n)
{
    struct stat so, a, b;
    int have_out = stat(out, &so) == 0;
    for (int i = 0; i < n; i++) {
        struct qb_store *s = NULL;
        int rc = qb_store_open(in[i], QB_STORE_READONLY, &s);
        qb_store_close(s);
        if (rc < 0)
            return qb_err_prefix(rc, "shard '%s'", in[i]);
        if (stat(in[i], &a) != 0)
            return qb_err(QB_EIO, "'%s': %s", in[i], strerror(errno));
        if (have_out && a.st_dev == so.st_dev && a.st_ino == so.st_ino)
            return qb_err(QB_EINVAL, "'%s' is the output itself; give the shards and a new OUT",
                          in[i]);
        for (int j = 0; j < i; j++)
            if (stat(in[j], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                return qb_err(QB_EINVAL, "'%s' is given twice (also as '%s')", in[i], in[j]);
    }
    return 0;
}

/* tmp (an empty file) becomes a copy of OUT, or a new store when OUT does not exist. */
static int start_copy(const char *out, const char *tmp)
{
    struct qb_store *s = NULL;
    int rc;
    if (access(out, F_OK) == 0) {
        char wal[4096];
        struct stat st;
        snprintf(wal, sizeof wal, "%s-wal", out);
        if (stat(wal, &st) == 0 && st.st_size > 0)
            return qb_err(QB_EIO,
                          "'%s' is being written (its -wal is not empty): wait for the writer, "
                          "or merge into another file",
                          out);
        if ((rc = qb_store_open(out, QB_STORE_READONLY, &s)) < 0)
            return qb_err_prefix(rc, "output");
        qb_store_close(s);
        sqlite3 *db = NULL;
        char *sql = sqlite3_mprintf("VACUUM INTO %Q", tmp);
        rc = sqlite3_open_v2(out, &db, SQLITE_OPEN_READONLY, NULL);
        if (rc == SQLITE_OK && sql)
            rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            rc = qb_err(QB_EIO, "copying '%s': %s", out, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_free(sql);
        sqlite3_close(db);
        if (rc < 0)
            return rc;
    }
    /* creates the schema, or migrates OUT's copy to this qbrief's */
    rc = qb_store_open(tmp, 0, &s);
    qb_store_close(s);
    return rc;
}

static void remove_db(const char *path)
{
    char side[4096];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static int merge_all(struct merge *m, const char *tmp, const char *const *in, int n)
{
    int rc;
    if (sqlite3_open_v2(tmp, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL) != SQLITE_OK)
        return qb_err(QB_EIO, "'%s': %s", tmp, m->db ? sqlite3_errmsg(m->db) : "cannot open");
    sqlite3_busy_timeout(m->db, 10000);
    if ((rc = exec(m,
                   "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                   "CREATE TEMP TABLE m_models(old INTEGER PRIMARY KEY, new INTEGER);"
                   "CREATE TEMP TABLE m_suites(old INTEGER PRIMARY KEY, new INTEGER);"
                   "CREATE TEMP TABLE m_runs(old INTEGER PRIMARY KEY, new INTEGER);"
                   "CREATE TEMP TABLE m_configs(old INTEGER PRIMARY KEY, new INTEGER);"
                   "CREATE TEMP TABLE m_items(old INTEGER PRIMARY KEY, new INTEGER);",
                   "preparing")) < 0)
        return rc;
    /* the plan and count of the shards OUT holds already */
    char *row[2] = {0};
    int found;
    if ((rc = row_text(m, "SELECT plan_sha256, max(shard_count) FROM main.shards", NULL, row, 2,
                       &found)) < 0)
        return rc;
    if (found && row[0]) {
        snprintf(m->plan, sizeof m->plan, "%s", row[0]);
        m->count = g_ascii_strtoll(row[1] ? row[1] : "0", NULL, 10);
    }
    g_free(row[0]);
    g_free(row[1]);
    int64_t plain = 0;
    if ((rc = count_of(m,
                       "SELECT count(*) FROM main.runs WHERE id NOT IN (SELECT run_id FROM "
                       "main.shards)",
                       &plain)) < 0)
        return rc;
    if (plain)
        return qb_err(QB_EINVAL,
                      "'%s' holds runs that are not merged shards (a store of qbrief run); "
                      "merge into a new file",
                      m->out);
    for (int i = 0; i < n; i++) {
        /* read-only; immutable (no -shm or -wal left behind) unless a writer's -wal is there */
        char *esc = g_uri_escape_string(in[i], "/", FALSE), *wal = g_strdup_printf("%s-wal", in[i]);
        char *uri =
            g_strdup_printf("file:%s?mode=ro%s", esc, access(wal, F_OK) == 0 ? "" : "&immutable=1");
        g_free(wal);
        g_free(esc);
        char *sql = sqlite3_mprintf("ATTACH %Q AS src", uri);
        m->path = in[i];
        rc = exec(m, sql, "attaching");
        sqlite3_free(sql);
        g_free(uri);
        if (rc < 0)
            return rc;
        int64_t has = 0;
        if ((rc = count_of(m, "SELECT count(*) FROM src.sqlite_schema WHERE name = 'shards'",
                           &has)) == 0 &&
            !has)
            rc = qb_err(QB_EINVAL,
                        "'%s' is not a shard: it has no shard record (run it with qbrief run "
                        "--shard I/N)",
                        in[i]);
        int again = 0;
        if (rc == 0 && (rc = merge_one(m, &again)) == 0)
            rc = report_shard(m, again);
        int d = exec(m, "DETACH src", "detaching");
        if (rc < 0)
            return rc;
        if (d < 0)
            return d;
    }
    return summarize(m);
}

int qb_store_merge(const char *out_path, const char *const *in, int n,
                   void (*on_event)(void *ctx, const struct qb_merge_event *ev), void *ctx)
{
    struct merge m = {.out = out_path, .on_event = on_event, .ctx = ctx};
    char *tmp = NULL;
    int fd, rc;

    if (n < 1)
        return qb_err(QB_EINVAL, "merge: no shards given");
    if ((rc = check_inputs(out_path, in, n)) < 0)
        return rc;
    tmp = g_strdup_printf("%s.merge-XXXXXX", out_path);
    if ((fd = mkstemp(tmp)) < 0) {
        rc = qb_err(QB_EIO, "cannot create a file beside '%s': %s", out_path, strerror(errno));
        g_free(tmp);
        return rc;
    }
    close(fd);
    m.tokens = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if ((rc = start_copy(out_path, tmp)) == 0)
        rc = merge_all(&m, tmp, in, n);
    if (m.db && sqlite3_close(m.db) != SQLITE_OK && rc == 0)
        rc = qb_err(QB_EIO, "'%s': closing the merged store failed", tmp);
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = qb_err(QB_EIO, "cannot write '%s': %s", out_path, strerror(errno));
    if (rc < 0)
        remove_db(tmp);
    g_hash_table_destroy(m.tokens);
    g_free(tmp);
    return rc;
}
