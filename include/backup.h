/* backup: a consistent copy of the database file while the server runs (SQLite's online
 * backup API), for `caredesk backup`. */
#ifndef CD_BACKUP_H
#define CD_BACKUP_H

/* Unlinks the database file at path and its "-journal", "-wal" and "-shm" files, those that
 * exist. For a database nothing has open. */
void backup_remove_database(const char *path);

/* Copies the database at db_path (store and KB, the one file) to out_path, which must not
 * exist. The copy is one read snapshot of the database: the server goes on reading and
 * writing meanwhile (in WAL mode a reader blocks no writer), and the copy holds every
 * transaction committed before the snapshot and none after. It is written to a temporary
 * file beside out_path, checked (PRAGMA quick_check), synced, then renamed into place, so
 * out_path is never a partial copy. Returns 0, or a negative CD_E* code with a malloc'd
 * message in *err (the caller frees it) and nothing left behind. On success *n_pages gets the
 * size of the copy in pages of *page_size bytes, when those are not NULL. A PostgreSQL
 * db_path is refused (CD_EINVAL, the message naming pg_dump): its backups are PostgreSQL's. */
int backup_database(const char *db_path, const char *out_path, long long *n_pages, int *page_size,
                    char **err);

#endif
