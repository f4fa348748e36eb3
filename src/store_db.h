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

/* sql (pg_sql instead on PostgreSQL, when not NULL) prepared on the connection of s, for a
 * query run now and then rather than kept: the caller finalizes it with db_finalize(). NULL
 * when it cannot be prepared (the reason is not kept). */
struct db_stmt *store_db_prepare(struct store *s, const char *sql, const char *pg_sql);

/* store_db_prepare() for a query over a window of time: ?1 bound to since_s and ?2 to
 * until_s (the query says which times they bound and whether until_s is in). */
struct db_stmt *store_db_prepare_window(struct store *s, const char *sql, const char *pg_sql,
                                        int64_t since_s, int64_t until_s);

/* The result of a statement's last db_step(): 0 when it ended (or stopped at a row), or its
 * CD_E* code. */
static inline int store_db_step_status(int rc)
{
    return rc < 0 ? rc : 0;
}

/* Names, queues and drivers sort by their bytes on both backends, as SQLite's default (BINARY)
 * does: PostgreSQL's texts of the statements that sort by text add this, whatever the
 * database's locale, so that lists come in the same order on both. */
#define BY_BYTES_PG " COLLATE \"C\""

#endif
