/* store_import: the imports tables (schema v7) behind collector/store/store_import.h. */
#include "collector/store/store_import.h"

#include "kernels/base/err.h"
#include "collector/store/store.h"
#include "collector/store/store_int.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Prepares sql; QB_E* naming what on failure. */
static int prep(struct qb_store *s, const char *sql, const char *what, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(qb_store_sqlite(s), sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : qb_store_fail_(s, NULL, rc, what);
}

/* Steps a statement expected to give at most one row: 1 with a row, 0 without. */
static int step1(struct qb_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return qb_store_fail_(s, st, rc, what);
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static int has_v7(struct qb_store *s)
{
    return qb_store_version_(s) >= 7;
}

int qb_store_list_imports(struct qb_store *s, int64_t run_id,
                          int (*cb)(void *ctx, const struct qb_store_import *im), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!has_v7(s))
        return 0;
    if ((rc = prep(s,
                   "SELECT config_id, kind, source, sha256, device, imported_at, n_rows, baseline "
                   "FROM imports WHERE run_id = ?1 ORDER BY id",
                   "listing imports", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    while ((rc = step1(s, st, "listing imports")) == 1) {
        struct qb_store_import im = {sqlite3_column_int64(st, 0),
                                     col(st, 1),
                                     col(st, 2),
                                     col(st, 3),
                                     col(st, 4),
                                     col(st, 5),
                                     sqlite3_column_int64(st, 6),
                                     sqlite3_column_int(st, 7)};
        if ((rc = cb(ctx, &im)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

int qb_store_import_suite(struct qb_store *s, int64_t run_id, int64_t *suite_id)
{
    sqlite3_stmt *st = NULL;
    int rc;
    *suite_id = 0;
    if (!has_v7(s))
        return 0;
    if ((rc = prep(s, "SELECT suite_id FROM import_suites WHERE run_id = ?1",
                   "reading the import suite", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    if ((rc = step1(s, st, "reading the import suite")) == 1) {
        *suite_id = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int qb_import_suite_get(struct qb_store *s, int64_t run_id, int64_t *suite_id)
{
    sqlite3_stmt *st = NULL;
    char key[128], *sha;
    int rc;

    if ((rc = qb_store_import_suite(s, run_id, suite_id)) < 0 || *suite_id)
        return rc;
    /* a suite of its own, so no other run on the same suite file sees these items */
    snprintf(key, sizeof key, "qbrief import suite of run %lld", (long long)run_id);
    sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
    rc = prep(s, "INSERT INTO suites(sha256, path, n_items) VALUES (?1, ?2, 0) RETURNING id",
              "creating the import suite", &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, sha, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, "(imported items)", -1, SQLITE_STATIC);
        if ((rc = step1(s, st, "creating the import suite")) == 1) {
            *suite_id = sqlite3_column_int64(st, 0);
            rc = step1(s, st, "creating the import suite");
        }
    }
    sqlite3_finalize(st);
    g_free(sha);
    if (rc < 0)
        return rc;
    if ((rc = prep(s, "INSERT INTO import_suites(run_id, suite_id) VALUES (?1, ?2)",
                   "creating the import suite", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, *suite_id);
    rc = step1(s, st, "creating the import suite");
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

int qb_import_config(struct qb_store *s, int64_t run_id, const char *name, int64_t *config_id)
{
    sqlite3_stmt *st = NULL;
    int rc, found, imported = 0;
    struct qb_store_config c = {name, NAN, -1, NAN};

    if ((rc = prep(s,
                   "SELECT c.id, EXISTS (SELECT 1 FROM imports i WHERE i.config_id = c.id) "
                   "FROM configs c WHERE c.run_id = ?1 AND c.spec = ?2",
                   "finding the config", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if ((found = step1(s, st, "finding the config")) == 1) {
        *config_id = sqlite3_column_int64(st, 0);
        imported = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    if (found < 0)
        return found;
    if (found && !imported)
        return qb_err(QB_EINVAL,
                      "'%s': config '%s' of this run was measured by qbrief; give the imported "
                      "results another name (--config)",
                      qb_store_path(s), name);
    if (found)
        return 0;
    return qb_store_put_config(s, run_id, &c, config_id);
}

int qb_import_record(struct qb_store *s, int64_t run_id, int64_t config_id, const char *kind,
                     const char *source, const char *sha256, int64_t n_rows, int baseline,
                     const char *device)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = prep(s,
                   "INSERT INTO imports(run_id, config_id, kind, source, sha256, n_rows, baseline, "
                   "device) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   "recording the import", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, config_id);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, n_rows);
    sqlite3_bind_int(st, 7, baseline != 0);
    if (device)
        sqlite3_bind_text(st, 8, device, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        sqlite3_finalize(st);
        return qb_err(QB_EINVAL, "'%s' (sha256 %.12s...) was already imported for this config",
                      source, sha256);
    }
    rc = rc == SQLITE_DONE ? 0 : qb_store_fail_(s, st, rc, "recording the import");
    sqlite3_finalize(st);
    return rc;
}

int qb_import_item_hashes(struct qb_store *s, int64_t item_id, const char *const hash[3], int *same,
                          char have[3][65])
{
    sqlite3_stmt *st = NULL;
    int rc;
    *same = 1;
    if ((rc = prep(s,
                   "SELECT doc_hash, prompt_hash, target_hash FROM import_items WHERE item_id = ?1",
                   "reading item hashes", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, item_id);
    if ((rc = step1(s, st, "reading item hashes")) == 1) {
        for (int k = 0; k < 3; k++) {
            snprintf(have[k], 65, "%s", col(st, k) ? col(st, k) : "");
            *same &= !strcmp(have[k], hash[k]);
        }
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    if ((rc = prep(s,
                   "INSERT INTO import_items(item_id, doc_hash, prompt_hash, target_hash) "
                   "VALUES (?1, ?2, ?3, ?4)",
                   "recording item hashes", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, item_id);
    for (int k = 0; k < 3; k++)
        sqlite3_bind_text(st, 2 + k, hash[k], -1, SQLITE_STATIC);
    rc = step1(s, st, "recording item hashes");
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}
