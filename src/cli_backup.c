/* cli_backup: `caredesk backup [--db PATH] OUT`, a consistent copy of the database while the
 * server runs (backup.h). */
#include "backup.h"
#include "cd.h"
#include "cli.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char backup_usage[] =
    "usage: caredesk backup [--db PATH] OUT\n"
    "\n"
    "Copies the database (conversations, accounts, articles: the one file) to OUT, a new\n"
    "file, while the server goes on serving. The copy is one consistent snapshot, checked\n"
    "before it is given its name. Restore: stop the server, replace the database file with\n"
    "the copy (and remove its -wal and -shm files), start the server (docs/operations.md).\n"
    "A PostgreSQL database (--db postgresql://...) is backed up with pg_dump instead.\n"
    "\n"
    "  --db PATH   the database (default $CAREDESK_DB or ./caredesk.db)\n"
    "\n"
    "Exit status: 0 copied, 1 failed (nothing written), 2 usage error.\n";

int cli_backup(int argc, char **argv)
{
    const char *db = getenv("CAREDESK_DB"), *out = NULL;
    if (!db || !*db)
        db = "caredesk.db";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(backup_usage, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strncmp(a, "--db=", 5))
            db = a + 5;
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "caredesk: %s '%s'\n\n%s",
                    strcmp(a, "--db") ? "unknown option" : "option needs a value", a, backup_usage);
            return CLI_USAGE;
        } else if (!out)
            out = a;
        else {
            fprintf(stderr, "caredesk: one output file only, not also '%s'\n\n%s", a, backup_usage);
            return CLI_USAGE;
        }
    }
    if (!out) {
        fprintf(stderr, "caredesk: no output file given\n\n%s", backup_usage);
        return CLI_USAGE;
    }
    long long n_pages = 0;
    int page_size = 0;
    char *err = NULL;
    int64_t t0 = cd_now_us();
    int rc = backup_database(db, out, &n_pages, &page_size, &err);
    if (rc) {
        /* A PostgreSQL URL is not repeated: it may hold a password. */
        fprintf(stderr, "caredesk: backup of %s failed: %s\n",
                store_target_is_postgres(db) ? "the PostgreSQL database" : db,
                err ? err : cd_strerror(rc));
        free(err);
        return CLI_FAIL;
    }
    printf("backed up %s to %s: %lld pages of %d bytes in %lld ms\n", db, out, n_pages, page_size,
           (long long)((cd_now_us() - t0) / 1000));
    return CLI_OK;
}
