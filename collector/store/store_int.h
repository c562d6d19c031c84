/* store_int: what the files of collector/store/ share beyond store.h (never included from
 * outside this folder): the connection of an open store and store.c's error mapping. */
#ifndef QB_STORE_INT_H
#define QB_STORE_INT_H

#include <sqlite3.h>

#include <stdint.h>

struct qb_store;

/* The store's own connection, opened as its mode says (a reader's leaves no files behind and
 * works in a read-only folder; see open_db in store.c). Borrowed. */
sqlite3 *qb_store_sqlite(struct qb_store *s);
/* sql_fail of store.c: maps a failed SQLite call to a QB_E* code and a message naming the
 * store; st (may be NULL) is reset first. */
int qb_store_fail_(struct qb_store *s, sqlite3_stmt *st, int rc, const char *what);
/* The schema version the store was opened at (a reader may open an older one). */
int64_t qb_store_version_(const struct qb_store *s);

#endif
