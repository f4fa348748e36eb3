/* store_db: the store's database connection (db.h), for the modules that keep their own
 * tables in the store's database and run their own queries on them: report.c, report_week.c,
 * qa.c, incident.c, store_outbox.c and webhook.c. Private to src/: their public headers name
 * no database type, and callers use store.h. */
#ifndef CD_STORE_DB_H
#define CD_STORE_DB_H

#include "db.h"

struct store;

/* The connection of s (SQLite or PostgreSQL), valid until store_close(). Queries on it see
 * the writes of the store's open group transaction, and writes join it; by db.h's rule, a
 * statement that fails inside that transaction ends the unit of work it belongs to (on
 * PostgreSQL the whole group, without a mark). */
struct db *store_db(struct store *s);

#endif
