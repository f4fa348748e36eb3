/* db: one small statement interface over the two databases the store runs on, SQLite (one
 * file, the default) and PostgreSQL (through libpq, for several nodes), in the spirit of
 * Dovecot's lib-sql drivers. Private to src/: store.h, report.h, qa.h and the other public
 * headers name no database type.
 *
 * A statement is written once, with SQLite's numbered parameters ?1, ?2 ... (the driver
 * rewrites them to $1, $2 ... for PostgreSQL), and prepared once per connection. Where the
 * two dialects differ, the caller gives PostgreSQL its own text (db_prepare2()); everything
 * else (binding, stepping through rows, reading columns, result codes) is the same on both:
 *
 *   struct db_stmt *st = db_prepare(db, "SELECT id, name FROM users WHERE id = ?1", &err);
 *   db_bind_int64(st, 1, id);
 *   while ((rc = db_step(st)) == DB_ROW)
 *       use(db_col_int64(st, 0), db_col_text(st, 1));
 *   db_clear(st);              // rc is DB_DONE, or a CD_E* code
 *
 * Bound text and blobs are not copied: they must stay valid until the statement is reset.
 * Column values are valid until the next db_step() or db_reset() of that statement.
 *
 * Failed statements inside a transaction. SQLite undoes a failed statement alone and the
 * transaction goes on; PostgreSQL marks the whole transaction failed, and it can then only
 * roll back (to a savepoint, or entirely). The rule both backends keep, so the store behaves
 * the same on each: a statement that is expected to "fail" in normal operation (a duplicate)
 * is written not to fail (INSERT ... ON CONFLICT DO NOTHING, then looking at what it returned);
 * any other failure ends the unit of work it belongs to, which rolls back to its savepoint
 * (store_mark_undo()) or, without one, takes the whole group down with it (db_tx_failed()).
 * Result codes: CD_EEXIST for a constraint (unique, not null, check), CD_ENOTFOUND for a
 * foreign key whose row is missing, CD_EBUSY for a lock
 * or a serialization failure, CD_EFULL for a full disk, CD_ETOOBIG, CD_ENOMEM, and CD_EIO for
 * anything else, a lost connection included. */
#ifndef CD_DB_H
#define CD_DB_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct db_stmt;

enum db_kind { DB_SQLITE = 0, DB_POSTGRES = 1 };

/* db_step(): a row is ready, or the statement is done. Errors are negative CD_E* codes. */
#define DB_DONE 0
#define DB_ROW  1

/* 1 if target names a PostgreSQL database (postgresql:// or postgres:// URI, or a libpq
 * key=value string starting "host=" / "dbname="), 0 for a SQLite path. */
int db_target_is_postgres(const char *target);

/* Opens the PostgreSQL database at the libpq connection string uri (the password may come
 * from PGPASSWORD or ~/.pgpass; it is never part of an error message). Returns NULL on failure
 * with a malloc'd message in *err. For SQLite, the store opens its own connection and wraps it
 * with db_wrap_sqlite() (see store_sqlite.c). */
struct db *db_open_postgres(const char *uri, char **err);

/* A db over an open sqlite3 connection (a sqlite3 *, passed as void * so this header does not
 * include sqlite3.h). The db does not own it: db_close() leaves it open. */
struct db *db_wrap_sqlite(void *sqlite3_db);

/* Finalizes the statements prepared on db and closes it (a PostgreSQL connection; a wrapped
 * SQLite connection stays open). NULL is fine. */
void db_close(struct db *db);

enum db_kind db_kind(const struct db *db);

/* The file of a SQLite database ("" for one in memory or temporary), NULL for PostgreSQL: two
 * connections on one file give the same name. */
const char *db_filename(struct db *db);

/* The underlying connection: sqlite3 * or PGconn *. For the backend files only. */
void *db_handle(struct db *db);

/* Prepares sql (pg_sql instead on PostgreSQL, when not NULL). The statement belongs to db
 * and is finalized by db_close() if not before. NULL on failure, with *err (malloc'd) set. */
struct db_stmt *db_prepare(struct db *db, const char *sql, char **err);
struct db_stmt *db_prepare2(struct db *db, const char *sql, const char *pg_sql, char **err);
void db_finalize(struct db_stmt *st);

/* Parameters are numbered from 1. text NULL binds NULL. */
void db_bind_int64(struct db_stmt *st, int i, int64_t v);
void db_bind_double(struct db_stmt *st, int i, double v);
void db_bind_text(struct db_stmt *st, int i, const char *text);
void db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n);
void db_bind_null(struct db_stmt *st, int i);

/* Runs the statement (first call) and moves to its next row: DB_ROW, DB_DONE or CD_E*. */
int db_step(struct db_stmt *st);

/* Ends the current run, ready to step again; the bindings stay (as sqlite3_reset()).
 * db_clear() also forgets them. */
void db_reset(struct db_stmt *st);
void db_clear(struct db_stmt *st);

/* Steps once, resets, and returns 0 (done or a row) or CD_E*: for statements whose rows are
 * not wanted. */
int db_run(struct db_stmt *st);

/* Runs st (a statement without parameters whose result is not wanted: a savepoint, its
 * release, a NOTIFY) with the next statement that runs on its connection: on PostgreSQL both
 * go in one round trip, and an error of st is that next statement's; SQLite runs it now.
 * Returns 0 or CD_E*. */
int db_defer(struct db_stmt *st);

/* Sends st now, with its parameters, and returns without waiting for its result: on
 * PostgreSQL it runs while the caller goes on, and the next round trip on its connection
 * (another statement's, or st's own db_step()) reads its result into st; its db_step() then
 * gives that result, or its error. Between the two, st is not bound or run again. SQLite:
 * nothing (db_step() runs it). Returns 0 or CD_E* (not sent). */
int db_send(struct db_stmt *st);

/* Columns of the current row, numbered from 0. A boolean column (PostgreSQL) reads as 1/0.
 * db_col_text() returns NULL for NULL; db_col_str() returns "" for it. */
int db_col_is_null(struct db_stmt *st, int col);
int64_t db_col_int64(struct db_stmt *st, int col);
int db_col_int(struct db_stmt *st, int col);
double db_col_double(struct db_stmt *st, int col);
const char *db_col_text(struct db_stmt *st, int col);
const char *db_col_str(struct db_stmt *st, int col);
size_t db_col_bytes(struct db_stmt *st, int col); /* of a text or blob value */
const void *db_col_blob(struct db_stmt *st, int col);

/* Rows changed by the statement that ran last on db (INSERT, UPDATE, DELETE). */
int64_t db_changes(struct db *db);

/* Runs a script of ;-separated statements without parameters. Returns 0 or CD_E*, with *err
 * (malloc'd, "database: ...") if err is not NULL. */
int db_exec(struct db *db, const char *script, char **err);

/* 1 inside a transaction that can no longer commit: PostgreSQL after a failed statement, or
 * SQLite after an error that rolled the whole transaction back by itself. */
int db_tx_failed(struct db *db);

/* 1 inside a transaction (BEGIN ... not yet ended). */
int db_in_tx(struct db *db);

/* The last error message of db ("" if none). */
const char *db_errmsg(struct db *db);

/* 1 while a PostgreSQL connection is up (0 after it was lost); always 1 for SQLite. A lost
 * connection is reset (reconnected) by db_reconnect(), which returns 0 when it is back. */
int db_is_up(struct db *db);
int db_reconnect(struct db *db);

#endif
