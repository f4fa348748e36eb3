/* store_internal: what the store backend's own files (store.c, store_outbox.c) share. Not for
 * callers: they use store.h and store_outbox.h, which name no SQLite type. The connection
 * itself comes from store_sqlite.h. */
#ifndef CD_STORE_INTERNAL_H
#define CD_STORE_INTERNAL_H

struct store;

/* Where store_outbox.c keeps its prepared statements for s (freed by store_outbox_free()). */
void **store_outbox_slot(struct store *s);

#endif
