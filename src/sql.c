/* sql: SQLite helpers shared by store.c and the kb*.c files (sql.h). */
#include "sql.h"

#include "cd.h"

int sql_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_NOMEM:
        return CD_ENOMEM;
    case SQLITE_FULL:
        return CD_EFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return CD_EBUSY;
    case SQLITE_CONSTRAINT:
        return CD_EEXIST;
    case SQLITE_TOOBIG:
        return CD_ETOOBIG;
    default:
        return CD_EIO;
    }
}

int sql_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_rc(rc);
}

const char *sql_text(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? (const char *)s : "";
}
