/* store_sens: sensitivity scans in the results store (see store_sens.h). */
#include "collector/store/store_sens.h"

#include "collector/store/store.h"
#include "collector/store/store_int.h"
#include "kernels/base/err.h"

#include <math.h>
#include <sqlite3.h>
#include <stddef.h>

static int sql_err(sqlite3 *db, const char *path, const char *what)
{
    return qb_err(QB_EIO, "'%s': %s: %s", path, what, db ? sqlite3_errmsg(db) : "cannot open");
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double x)
{
    if (isfinite(x))
        sqlite3_bind_double(st, i, x);
    else
        sqlite3_bind_null(st, i);
}

static const char *const put_scan_sql =
    "INSERT INTO sens_scans (model_sha256, model_path, config, baseline, keep, granularity, "
    "source, source_path, source_sha256, slice, n_sequences, n_positions, base_accuracy, "
    "config_kl, config_accuracy, topk, topk_summed_kl, topk_measured_kl, seconds, threads, host, "
    "run_name, candidates_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

static void bind_scan(sqlite3_stmt *st, const struct qb_store_sens_scan *s)
{
    const char *txt[] = {s->model_sha256,  s->model_path,  s->config, s->baseline,
                         s->keep,          s->granularity, s->source, s->source_path,
                         s->source_sha256, s->slice};
    for (int i = 0; i < 10; i++)
        bind_text(st, i + 1, txt[i]);
    sqlite3_bind_int64(st, 11, s->n_sequences);
    sqlite3_bind_int64(st, 12, s->n_positions);
    bind_real(st, 13, s->base_accuracy);
    bind_real(st, 14, s->config_kl);
    bind_real(st, 15, s->config_accuracy);
    sqlite3_bind_int64(st, 16, s->topk);
    bind_real(st, 17, s->topk_summed_kl);
    bind_real(st, 18, s->topk_measured_kl);
    bind_real(st, 19, s->seconds);
    sqlite3_bind_int64(st, 20, s->threads);
    bind_text(st, 21, s->host);
    bind_text(st, 22, s->run_name);
    bind_text(st, 23, s->candidates_json);
}

static int put_units(sqlite3 *db, const char *path, int64_t scan,
                     const struct qb_store_sens_unit *u, int64_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO sens_units (scan_id, unit, layer, tensor, rank, mean_kl, "
                           "accuracy, extra_bytes) VALUES (?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_err(db, path, "preparing a sensitivity unit");
    for (int64_t i = 0; i < n && rc == 0; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, scan);
        bind_text(st, 2, u[i].unit);
        if (u[i].layer >= 0)
            sqlite3_bind_int64(st, 3, u[i].layer);
        else
            sqlite3_bind_null(st, 3);
        bind_text(st, 4, u[i].tensor);
        sqlite3_bind_int64(st, 5, u[i].rank);
        bind_real(st, 6, u[i].mean_kl);
        bind_real(st, 7, u[i].accuracy);
        sqlite3_bind_int64(st, 8, u[i].extra_bytes);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sql_err(db, path, "writing a sensitivity unit");
    }
    sqlite3_finalize(st);
    return rc;
}

int qb_store_sens_put(const char *db_path, const struct qb_store_sens_scan *scan,
                      const struct qb_store_sens_unit *units, int64_t n_units, int64_t *id)
{
    struct qb_store *s = NULL;
    sqlite3_stmt *st = NULL;
    sqlite3 *db;
    int rc;

    if ((rc = qb_store_open(db_path, 0, &s)) < 0) /* creates or migrates */
        return rc;
    db = qb_store_sqlite(s);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sql_err(db, db_path, "starting a transaction");
        goto out;
    }
    if (sqlite3_prepare_v2(db, put_scan_sql, -1, &st, NULL) != SQLITE_OK) {
        rc = sql_err(db, db_path, "preparing a sensitivity scan");
        goto fail;
    }
    bind_scan(st, scan);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = sql_err(db, db_path, "writing a sensitivity scan");
        goto fail;
    }
    int64_t scan_id = sqlite3_last_insert_rowid(db);
    if ((rc = put_units(db, db_path, scan_id, units, n_units)) < 0)
        goto fail;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sql_err(db, db_path, "committing a sensitivity scan");
        goto fail;
    }
    if (id)
        *id = scan_id;
    goto out;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    qb_store_close(s);
    return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static void read_scan(sqlite3_stmt *st, struct qb_store_sens_scan *s)
{
    s->id = sqlite3_column_int64(st, 0);
    s->model_sha256 = col_text(st, 1), s->model_path = col_text(st, 2);
    s->config = col_text(st, 3), s->baseline = col_text(st, 4), s->keep = col_text(st, 5);
    s->granularity = col_text(st, 6), s->source = col_text(st, 7);
    s->source_path = col_text(st, 8), s->source_sha256 = col_text(st, 9);
    s->slice = col_text(st, 10);
    s->n_sequences = sqlite3_column_int64(st, 11), s->n_positions = sqlite3_column_int64(st, 12);
    s->base_accuracy = col_real(st, 13), s->config_kl = col_real(st, 14);
    s->config_accuracy = col_real(st, 15), s->topk = sqlite3_column_int64(st, 16);
    s->topk_summed_kl = col_real(st, 17), s->topk_measured_kl = col_real(st, 18);
    s->seconds = col_real(st, 19), s->threads = sqlite3_column_int64(st, 20);
    s->host = col_text(st, 21), s->run_name = col_text(st, 22);
    s->candidates_json = col_text(st, 23), s->created_at = col_text(st, 24);
}

static int read_units(sqlite3 *db, const char *path, int64_t scan,
                      int (*on_unit)(void *, const struct qb_store_sens_unit *), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, step;
    if (sqlite3_prepare_v2(
            db,
            "SELECT unit, tensor, ifnull(layer, -1), rank, mean_kl, accuracy, "
            "ifnull(extra_bytes, -1) FROM sens_units WHERE scan_id = ? ORDER BY rank",
            -1, &st, NULL) != SQLITE_OK)
        return sql_err(db, path, "reading sensitivity units");
    sqlite3_bind_int64(st, 1, scan);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct qb_store_sens_unit u = {col_text(st, 0),
                                       col_text(st, 1),
                                       sqlite3_column_int64(st, 2),
                                       sqlite3_column_int64(st, 3),
                                       col_real(st, 4),
                                       col_real(st, 5),
                                       sqlite3_column_int64(st, 6)};
        rc = on_unit(ctx, &u);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = sql_err(db, path, "reading sensitivity units");
    sqlite3_finalize(st);
    return rc;
}

int qb_store_sens_latest(struct qb_store *store, const char *model_sha256, const char *run_name,
                         int (*on_scan)(void *ctx, const struct qb_store_sens_scan *s),
                         int (*on_unit)(void *ctx, const struct qb_store_sens_unit *u), void *ctx)
{
    sqlite3 *db = qb_store_sqlite(store);
    const char *db_path = qb_store_path(store);
    sqlite3_stmt *st = NULL;
    int rc = 0, step;

    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'sens_scans'", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = sql_err(db, db_path, "reading the schema");
        goto out;
    }
    step = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (step != SQLITE_ROW) /* an older store: no scans */
        goto out;
    if (sqlite3_prepare_v2(
            db,
            "SELECT id, model_sha256, model_path, config, baseline, keep, granularity, source, "
            "source_path, source_sha256, slice, n_sequences, n_positions, base_accuracy, "
            "config_kl, config_accuracy, ifnull(topk, 0), topk_summed_kl, topk_measured_kl, "
            "seconds, ifnull(threads, 0), host, run_name, candidates_json, created_at "
            "FROM sens_scans WHERE (?1 IS NULL OR model_sha256 = ?1) "
            "ORDER BY (?2 IS NOT NULL AND run_name IS ?2) DESC, id DESC LIMIT 1",
            -1, &st, NULL) != SQLITE_OK) {
        rc = sql_err(db, db_path, "reading sensitivity scans");
        goto out;
    }
    bind_text(st, 1, model_sha256);
    bind_text(st, 2, run_name);
    if ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct qb_store_sens_scan s;
        read_scan(st, &s);
        if ((rc = on_scan(ctx, &s)) == 0 && on_unit)
            rc = read_units(db, db_path, s.id, on_unit, ctx);
    } else if (step != SQLITE_DONE) {
        rc = sql_err(db, db_path, "reading sensitivity scans");
    }
out:
    sqlite3_finalize(st);
    return rc;
}
