/* fault_vfs: a test SQLite VFS that wraps the default one and makes writes,
 * syncs and truncations fail on demand, the way SQLite's own test VFSes
 * (test_vfs.c, the ioerr tests) inject I/O errors.
 *
 * DESIGN. fault_vfs_install() registers the wrapper as the default VFS, so
 * every sqlite3_open*() without a VFS name (store_open(), kb.c, a checker
 * connection in the test) goes through it; nothing in the product needs to
 * know. Every xWrite, xSync and xTruncate on any file (database, WAL,
 * journal) counts as one "operation". fault_vfs_arm(k, err, is_persistent)
 * lets k operations through and fails operation k with err (SQLITE_FULL or
 * an SQLITE_IOERR code); a persistent fault keeps failing every later
 * operation (a disk that stays full), a transient one fails once. A failed
 * write is torn: its first half reaches the file, as a write cut short by a
 * full disk would. Reads, locks and shared memory are never failed.
 * Header-only (static functions) so that several test binaries can use it. */
#ifndef CD_TEST_FAULT_VFS_H
#define CD_TEST_FAULT_VFS_H

#include <sqlite3.h>
#include <string.h>

struct fault_vfs_state {
    int is_armed;
    int is_persistent;
    int countdown;     /* operations still allowed before the fault */
    int err;           /* SQLITE_FULL or SQLITE_IOERR */
    long n_ops;        /* write/sync/truncate operations seen */
    long n_faults;     /* operations failed */
    long n_torn_bytes; /* bytes of torn writes that reached a file */
};

static struct fault_vfs_state fault_vfs;
static sqlite3_vfs *fault_vfs_real;

struct fault_file {
    sqlite3_file base;
    sqlite3_file *real; /* the wrapped file, allocated right after this struct */
};

#define FAULT_REAL(f) (((struct fault_file *)(f))->real)

/* Returns the error to inject for this operation, or SQLITE_OK. */
static int fault_vfs_hit(int ioerr_code)
{
    fault_vfs.n_ops++;
    if (!fault_vfs.is_armed)
        return SQLITE_OK;
    if (fault_vfs.countdown > 0) {
        fault_vfs.countdown--;
        return SQLITE_OK;
    }
    if (!fault_vfs.is_persistent)
        fault_vfs.is_armed = 0;
    fault_vfs.n_faults++;
    return fault_vfs.err == SQLITE_FULL ? SQLITE_FULL : ioerr_code;
}

/* Lets k more operations succeed, then fails with err (once, or for good if
 * is_persistent). */
static void fault_vfs_arm(int k, int err, int is_persistent)
{
    fault_vfs.is_armed = 1;
    fault_vfs.countdown = k;
    fault_vfs.err = err;
    fault_vfs.is_persistent = is_persistent;
    fault_vfs.n_faults = 0;
}

/* Space returns: no more faults. */
static void fault_vfs_disarm(void)
{
    fault_vfs.is_armed = 0;
}

static int fault_close(sqlite3_file *f)
{
    return FAULT_REAL(f)->pMethods->xClose(FAULT_REAL(f));
}

static int fault_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return FAULT_REAL(f)->pMethods->xRead(FAULT_REAL(f), buf, n, off);
}

static int fault_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    int rc = fault_vfs_hit(SQLITE_IOERR_WRITE);
    if (rc != SQLITE_OK) {
        if (n / 2 > 0 && FAULT_REAL(f)->pMethods->xWrite(FAULT_REAL(f), buf, n / 2, off) == 0)
            fault_vfs.n_torn_bytes += n / 2;
        return rc;
    }
    return FAULT_REAL(f)->pMethods->xWrite(FAULT_REAL(f), buf, n, off);
}

static int fault_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = fault_vfs_hit(SQLITE_IOERR_TRUNCATE);
    return rc != SQLITE_OK ? rc : FAULT_REAL(f)->pMethods->xTruncate(FAULT_REAL(f), size);
}

static int fault_sync(sqlite3_file *f, int flags)
{
    int rc = fault_vfs_hit(SQLITE_IOERR_FSYNC);
    return rc != SQLITE_OK ? rc : FAULT_REAL(f)->pMethods->xSync(FAULT_REAL(f), flags);
}

static int fault_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return FAULT_REAL(f)->pMethods->xFileSize(FAULT_REAL(f), size);
}

static int fault_lock(sqlite3_file *f, int lock)
{
    return FAULT_REAL(f)->pMethods->xLock(FAULT_REAL(f), lock);
}

static int fault_unlock(sqlite3_file *f, int lock)
{
    return FAULT_REAL(f)->pMethods->xUnlock(FAULT_REAL(f), lock);
}

static int fault_check_reserved_lock(sqlite3_file *f, int *out)
{
    return FAULT_REAL(f)->pMethods->xCheckReservedLock(FAULT_REAL(f), out);
}

static int fault_file_control(sqlite3_file *f, int op, void *arg)
{
    return FAULT_REAL(f)->pMethods->xFileControl(FAULT_REAL(f), op, arg);
}

static int fault_sector_size(sqlite3_file *f)
{
    return FAULT_REAL(f)->pMethods->xSectorSize(FAULT_REAL(f));
}

static int fault_device_characteristics(sqlite3_file *f)
{
    return FAULT_REAL(f)->pMethods->xDeviceCharacteristics(FAULT_REAL(f));
}

static int fault_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
    return FAULT_REAL(f)->pMethods->xShmMap(FAULT_REAL(f), region, size, extend, pp);
}

static int fault_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return FAULT_REAL(f)->pMethods->xShmLock(FAULT_REAL(f), offset, n, flags);
}

static void fault_shm_barrier(sqlite3_file *f)
{
    FAULT_REAL(f)->pMethods->xShmBarrier(FAULT_REAL(f));
}

static int fault_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return FAULT_REAL(f)->pMethods->xShmUnmap(FAULT_REAL(f), delete_flag);
}

static int fault_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return FAULT_REAL(f)->pMethods->xFetch(FAULT_REAL(f), off, n, pp);
}

static int fault_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return FAULT_REAL(f)->pMethods->xUnfetch(FAULT_REAL(f), off, p);
}

static const sqlite3_io_methods fault_io_methods = {
    3,
    fault_close,
    fault_read,
    fault_write,
    fault_truncate,
    fault_sync,
    fault_file_size,
    fault_lock,
    fault_unlock,
    fault_check_reserved_lock,
    fault_file_control,
    fault_sector_size,
    fault_device_characteristics,
    fault_shm_map,
    fault_shm_lock,
    fault_shm_barrier,
    fault_shm_unmap,
    fault_fetch,
    fault_unfetch,
};

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    struct fault_file *ff = (struct fault_file *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    memset(ff->real, 0, (size_t)fault_vfs_real->szOsFile);
    int rc = fault_vfs_real->xOpen(fault_vfs_real, name, ff->real, flags, out);
    /* SQLite calls xClose only when pMethods is set: set it only if the real
     * file is open (and then xClose must close it). */
    ff->base.pMethods = ff->real->pMethods ? &fault_io_methods : NULL;
    return rc;
}

static int fault_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return fault_vfs_real->xDelete(fault_vfs_real, name, sync_dir);
}

static int fault_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    return fault_vfs_real->xAccess(fault_vfs_real, name, flags, out);
}

static int fault_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    return fault_vfs_real->xFullPathname(fault_vfs_real, name, n, out);
}

static void *fault_dl_open(sqlite3_vfs *vfs, const char *name)
{
    return fault_vfs_real->xDlOpen(fault_vfs_real, name);
}

static void fault_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
    fault_vfs_real->xDlError(fault_vfs_real, n, msg);
}

static void (*fault_dl_sym(sqlite3_vfs *vfs, void *handle, const char *sym))(void)
{
    return fault_vfs_real->xDlSym(fault_vfs_real, handle, sym);
}

static void fault_dl_close(sqlite3_vfs *vfs, void *handle)
{
    fault_vfs_real->xDlClose(fault_vfs_real, handle);
}

static int fault_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    return fault_vfs_real->xRandomness(fault_vfs_real, n, out);
}

static int fault_sleep(sqlite3_vfs *vfs, int us)
{
    return fault_vfs_real->xSleep(fault_vfs_real, us);
}

static int fault_current_time(sqlite3_vfs *vfs, double *out)
{
    return fault_vfs_real->xCurrentTime(fault_vfs_real, out);
}

static int fault_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    return fault_vfs_real->xGetLastError(fault_vfs_real, n, out);
}

static int fault_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    return fault_vfs_real->xCurrentTimeInt64(fault_vfs_real, out);
}

static sqlite3_vfs fault_vfs_def = {
    2,    /* iVersion */
    0,    /* szOsFile: set at install */
    0,    /* mxPathname: set at install */
    NULL, /* pNext */
    "caredesk-fault",
    NULL, /* pAppData */
    fault_open,
    fault_delete,
    fault_access,
    fault_full_pathname,
    fault_dl_open,
    fault_dl_error,
    fault_dl_sym,
    fault_dl_close,
    fault_randomness,
    fault_sleep,
    fault_current_time,
    fault_get_last_error,
    fault_current_time_int64,
    NULL,
    NULL,
    NULL,
};

/* Registers the fault VFS as the default (once). Returns SQLITE_OK or an
 * SQLite error code. */
static int fault_vfs_install(void)
{
    if (fault_vfs_real)
        return SQLITE_OK;
    sqlite3_initialize();
    fault_vfs_real = sqlite3_vfs_find(NULL);
    if (!fault_vfs_real)
        return SQLITE_ERROR;
    fault_vfs_def.szOsFile = (int)sizeof(struct fault_file) + fault_vfs_real->szOsFile;
    fault_vfs_def.mxPathname = fault_vfs_real->mxPathname;
    return sqlite3_vfs_register(&fault_vfs_def, 1);
}

#endif
