/* store_sqlite: the SQLite connection under a struct store, for the modules
 * that belong to the SQLite backend and run their own queries on it
 * (report.c). Nothing but such modules includes this header: callers use
 * store.h and report.h, which name no SQLite type, so a PostgreSQL backend
 * replaces store.c and these modules together. */
#ifndef CD_STORE_SQLITE_H
#define CD_STORE_SQLITE_H

#include <sqlite3.h>

struct store;

/* The store's connection, valid until store_close(). Queries on it see the
 * writes of the store's open group transaction, and writes join it. */
sqlite3 *store_sqlite_db(struct store *s);

#endif
