/* backup: the online backup of the database file (see backup.h).
 *
 * DESIGN: the copy runs in one sqlite3_backup_step(-1), which reads the whole source in one
 * read transaction: with WAL that is one snapshot, taken without blocking the server's
 * writers, and a copy that never restarts because the server wrote meanwhile (copying in
 * steps would restart after each of its commits, forever on a busy server). The copy goes to
 * a temporary name and is renamed only once checked and synced. */
#include "backup.h"

#include "cd.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_BUSY_MS 10000 /* how long to wait for a lock (an exclusive writer) */

static int fail(char **err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char **err, int rc, const char *fmt, ...)
{
    if (err) {
        struct cd_buf b = {0};
        va_list ap;
        va_start(ap, fmt);
        char msg[512];
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        *err = cd_buf_puts(&b, msg) ? NULL : b.data;
    }
    return rc;
}

static int sync_path(const char *path, int is_dir)
{
    int fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

void backup_remove_database(const char *path)
{
    static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        struct cd_buf p = {0};
        if (!cd_buf_printf(&p, "%s%s", path, suffixes[i]))
            unlink(p.data);
        cd_buf_free(&p);
    }
}

int backup_database(const char *db_path, const char *out_path, long long *n_pages, int *page_size,
                    char **err)
{
    if (err)
        *err = NULL;
    if (!db_path || !out_path || !*db_path || !*out_path)
        return fail(err, CD_EINVAL, "no database or output path");
    /* The URL is not repeated: it may hold a password. */
    if (store_target_is_postgres(db_path))
        return fail(err, CD_EINVAL,
                    "the database is PostgreSQL, and caredesk backup copies a SQLite file; back "
                    "PostgreSQL up with its own tools: pg_dump --format=custom --file=OUT "
                    "DATABASE (or base backups with WAL archiving), see docs/operations.md");
    struct stat st;
    if (stat(db_path, &st) || !S_ISREG(st.st_mode))
        return fail(err, CD_ENOTFOUND, "%s: no such database file", db_path);
    if (!lstat(out_path, &st))
        return fail(err, CD_EEXIST, "%s exists; choose a new name (nothing was written)", out_path);
    struct cd_buf tmp = {0};
    if (cd_buf_printf(&tmp, "%s.tmp-%d", out_path, (int)getpid()))
        return fail(err, CD_ENOMEM, "out of memory");
    sqlite3 *src = NULL, *dst = NULL;
    int rc = 0;
    if (sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = fail(err, CD_EIO, "%s: %s", db_path, src ? sqlite3_errmsg(src) : "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(src, BACKUP_BUSY_MS);
    /* Not a database at all is better said before anything is written. */
    if (sqlite3_exec(src, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
        rc = fail(err, CD_EIO, "%s: %s", db_path, sqlite3_errmsg(src));
        goto done;
    }
    if (sqlite3_open_v2(tmp.data, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = fail(err, CD_EIO, "%s: %s", tmp.data, dst ? sqlite3_errmsg(dst) : "cannot create");
        goto done;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        rc = fail(err, CD_EIO, "%s: %s", out_path, sqlite3_errmsg(dst));
        goto done;
    }
    int step = sqlite3_backup_step(b, -1);
    long long pages = sqlite3_backup_pagecount(b);
    int frc = sqlite3_backup_finish(b);
    if (step != SQLITE_DONE || frc != SQLITE_OK) {
        rc = fail(err, step == SQLITE_BUSY || step == SQLITE_LOCKED ? CD_EBUSY : CD_EIO,
                  "copy failed: %s", sqlite3_errstr(step != SQLITE_DONE ? step : frc));
        goto done;
    }
    sqlite3_stmt *st_check = NULL;
    const char *verdict = NULL;
    if (sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &st_check, NULL) == SQLITE_OK &&
        sqlite3_step(st_check) == SQLITE_ROW)
        verdict = (const char *)sqlite3_column_text(st_check, 0);
    if (!verdict || strcmp(verdict, "ok")) {
        rc = fail(err, CD_EIO, "the copy failed its check: %s", verdict ? verdict : "no answer");
        sqlite3_finalize(st_check);
        goto done;
    }
    sqlite3_finalize(st_check);
    int psize = 0;
    if (sqlite3_prepare_v2(dst, "PRAGMA page_size", -1, &st_check, NULL) == SQLITE_OK &&
        sqlite3_step(st_check) == SQLITE_ROW)
        psize = sqlite3_column_int(st_check, 0);
    sqlite3_finalize(st_check);
    /* One file, no -wal beside it: the copy is complete in itself once closed. */
    sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    if (sqlite3_close(dst) != SQLITE_OK) {
        rc = fail(err, CD_EIO, "%s: cannot close the copy", tmp.data);
        dst = NULL;
        goto done;
    }
    dst = NULL;
    char *slash = strrchr(out_path, '/');
    struct cd_buf dir = {0};
    int dir_rc = slash ? cd_buf_append(&dir, out_path, (size_t)(slash - out_path + 1))
                       : cd_buf_puts(&dir, ".");
    if (sync_path(tmp.data, 0) || dir_rc || link(tmp.data, out_path) || sync_path(dir.data, 1)) {
        /* link(), not rename(): it refuses an out_path that appeared meanwhile. */
        rc = fail(err, errno == EEXIST ? CD_EEXIST : CD_EIO, "%s: %s", out_path,
                  strerror(errno ? errno : EIO));
        cd_buf_free(&dir);
        goto done;
    }
    cd_buf_free(&dir);
    if (n_pages)
        *n_pages = pages;
    if (page_size)
        *page_size = psize;
done:
    if (dst)
        sqlite3_close(dst);
    sqlite3_close(src);
    if (tmp.data)
        backup_remove_database(tmp.data);
    cd_buf_free(&tmp);
    return rc;
}
