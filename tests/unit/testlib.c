/* testlib: helpers shared by the unit tests (testlib.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include "../../src/db.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void testlib_remove_db(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

char *testlib_db_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "/tmp/cd-test-%s-%d.db", name, (int)getpid());
    return out;
}

void testlib_write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

struct store *testlib_store(const char *path)
{
    char *err = NULL;
    struct store *s = store_open(path, NULL, &err);
    if (!s)
        print_error("store_open: %s\n", err ? err : "?");
    free(err);
    assert_non_null(s);
    return s;
}

int64_t testlib_conversation(struct store *s, struct store_conversation *c)
{
    static int n_made = 0;
    n_made++;
    memcpy(c->token_hash, &n_made, sizeof n_made);
    if (!c->lang[0])
        snprintf(c->lang, sizeof c->lang, "en");
    assert_int_equal(store_conversation_create(s, c), 0);
    return c->id;
}

struct intents *testlib_intents(const char *const *jsons, size_t n, const char *source)
{
    struct intents *set = intents_new();
    assert_non_null(set);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(intents_load_json(set, jsons[i], strlen(jsons[i]), source, NULL), 0);
    struct intents_train_options o = {.is_quiet = 1};
    assert_int_equal(intents_train(set, &o), 0);
    return set;
}

struct triage *testlib_triage(const char *json)
{
    struct triage *t = triage_new(NULL, testlib_intents(&json, 1, "test"), NULL);
    assert_non_null(t);
    return t;
}

void testlib_assert_has_all(const char *text, const char *const *want)
{
    assert_non_null(text);
    for (; *want; want++)
        if (!strstr(text, *want))
            fail_msg("missing \"%s\" in:\n%s", *want, text);
}

/* Makes room in the array *items (capacity *cap) for element number n; doubles, from first. */
static void grow(void **items, int *cap, int n, size_t size, int first)
{
    if (n < *cap)
        return;
    int want = *cap ? *cap * 2 : first;
    void *p = realloc(*items, (size_t)want * size);
    assert_non_null(p);
    *items = p;
    *cap = want;
}

static void io_send(void *ctx, uint64_t conn, const char *frame, size_t len)
{
    struct testlib_io *io = ctx;
    grow((void **)&io->frames, &io->cap, io->n, sizeof *io->frames, 256);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, frame, len);
    text[len] = '\0';
    io->frames[io->n++] = (struct testlib_frame){conn, text, len};
}

static void io_close(void *ctx, uint64_t conn, int code, const char *reason)
{
    struct testlib_io *io = ctx;
    if (io->is_close_fatal)
        fail_msg("connection %llu closed with %d (%s)", (unsigned long long)conn, code,
                 reason ? reason : "");
    grow((void **)&io->closes, &io->cap_closed, io->n_closed, sizeof *io->closes, 16);
    io->closes[io->n_closed++] = (struct testlib_close){conn, code, io->n};
}

struct chat_io testlib_chat_io(struct testlib_io *io)
{
    struct chat_io c;
    memset(&c, 0, sizeof c);
    c.send = io_send;
    c.close = io_close;
    c.ctx = io;
    return c;
}

void testlib_io_reset(struct testlib_io *io)
{
    for (int i = 0; i < io->n; i++)
        free(io->frames[i].text);
    free(io->frames);
    free(io->closes);
    int is_close_fatal = io->is_close_fatal;
    memset(io, 0, sizeof *io);
    io->is_close_fatal = is_close_fatal;
}

/* ---- PostgreSQL ---- */

static char pg_base[256];    /* the cluster's URL, without the database name */
static char pg_started[256]; /* the directory of a cluster this process started, "" if none */

static void pg_stop(void)
{
    if (!pg_started[0])
        return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "scripts/pg-cluster.sh stop %s", pg_started);
    if (system(cmd) != 0)
        fprintf(stderr, "testlib: stopping the test PostgreSQL failed\n");
    pg_started[0] = 0;
}

/* The cluster's URL up to the last '/': CAREDESK_TEST_PG's (tests/run.sh starts one), or one
 * this process starts now with scripts/pg-cluster.sh and stops at exit. */
static const char *pg_cluster(void)
{
    if (pg_base[0])
        return pg_base;
    const char *url = getenv("CAREDESK_TEST_PG");
    char started[256] = "";
    if (!url || !*url) {
        char dir[] = "/tmp/cd-test-pg-XXXXXX";
        if (!mkdtemp(dir))
            fail_msg("testlib: mkdtemp failed");
        char cmd[512];
        snprintf(cmd, sizeof cmd, "PG_FSYNC=off scripts/pg-cluster.sh start %s", dir);
        FILE *p = popen(cmd, "r");
        if (!p || !fgets(started, sizeof started, p))
            fail_msg("testlib: could not start a test PostgreSQL (%s)", cmd);
        pclose(p);
        started[strcspn(started, "\n")] = 0;
        snprintf(pg_started, sizeof pg_started, "%s", dir);
        atexit(pg_stop);
        url = started;
    }
    snprintf(pg_base, sizeof pg_base, "%s", url);
    char *slash = strrchr(pg_base, '/');
    if (!slash || slash < pg_base + 14)
        fail_msg("testlib: CAREDESK_TEST_PG is not a postgresql:// URL with a database");
    slash[1] = 0;
    return pg_base;
}

char *testlib_pg_database(char *out, size_t cap, const char *name)
{
    const char *base = pg_cluster();
    char admin[300], dbname[96], sql[256];
    snprintf(admin, sizeof admin, "%scaredesk", base);
    snprintf(dbname, sizeof dbname, "t_%s_%d", name, (int)getpid());
    struct db *db = db_open_postgres(admin, NULL);
    if (!db)
        fail_msg("testlib: cannot connect to the test PostgreSQL at %s", admin);
    /* A database left by an earlier run of this test is dropped with its connections. */
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    int rc = db_exec(db, sql, NULL);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    if (!rc)
        rc = db_exec(db, sql, NULL);
    if (rc)
        fail_msg("testlib: %s: %s", sql, db_errmsg(db));
    db_close(db);
    snprintf(out, cap, "%s%s", base, dbname);
    return out;
}

char *testlib_sql_text(const char *target, const char *sql, char *out, size_t cap)
{
    out[0] = 0;
    struct db *db = NULL;
    sqlite3 *sq = NULL;
    if (store_target_is_postgres(target)) {
        db = db_open_postgres(target, NULL);
    } else if (sqlite3_open(target, &sq) == SQLITE_OK) {
        sqlite3_busy_timeout(sq, 5000);
        db = db_wrap_sqlite(sq);
    }
    if (!db)
        fail_msg("testlib: cannot open %s", target);
    struct db_stmt *st = db_prepare(db, sql, NULL);
    if (!st)
        fail_msg("testlib: %s: %s", sql, db_errmsg(db));
    int rc = db_step(st);
    if (rc < 0)
        fail_msg("testlib: %s: %s", sql, db_errmsg(db));
    if (rc == DB_ROW)
        snprintf(out, cap, "%s", db_col_str(st, 0));
    db_close(db);
    sqlite3_close(sq);
    return out;
}
