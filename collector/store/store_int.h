/* store_int: what the files of the store module share (store.c, store_sens.c). Internal:
 * never included from outside collector/store/. */
#ifndef QB_STORE_INT_H
#define QB_STORE_INT_H

#include <sqlite3.h>

struct qb_store;

/* The store's own connection, opened as its mode says (a reader's leaves no files behind and
 * works in a read-only folder; see open_db in store.c). Borrowed. */
sqlite3 *qb_store_sqlite(struct qb_store *s);

#endif
