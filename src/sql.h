/* sql: the few SQLite helpers the modules that own a SQLite connection (store.c and the
 * kb*.c files) share, so that a result code means the same CD_E* code everywhere. Private to
 * src/: store.h and kb.h stay free of SQLite types. */
#ifndef CD_SQL_H
#define CD_SQL_H

#include <sqlite3.h>

/* Maps a SQLite result code (primary or extended) to 0 (OK, ROW, DONE) or a CD_E* code:
 * NOMEM -> CD_ENOMEM, FULL -> CD_EFULL, BUSY and LOCKED -> CD_EBUSY, CONSTRAINT -> CD_EEXIST,
 * TOOBIG -> CD_ETOOBIG, anything else CD_EIO. */
int sql_rc(int rc);

/* Steps a statement that returns no rows (or whose rows are not wanted) once and resets it.
 * Returns 0 or CD_E*. */
int sql_run(sqlite3_stmt *st);

/* Column col of the current row as text; "" for NULL. Valid until the statement steps or
 * resets. */
const char *sql_text(sqlite3_stmt *st, int col);

#endif
