/* store_internal: what the store backend's own files (store.c, store_outbox.c) share. Not for
 * callers: they use store.h and store_outbox.h, which name no SQLite type. */
#ifndef CD_STORE_INTERNAL_H
#define CD_STORE_INTERNAL_H

#include <sqlite3.h>

struct store;

/* The store's connection; used from the store's thread only. */
sqlite3 *store_sqlite(struct store *s);

/* Where store_outbox.c keeps its prepared statements for s (freed by store_outbox_free()). */
void **store_outbox_slot(struct store *s);

#endif
