/* testlib: helpers shared by the unit tests (testlib.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include "../../src/db.h"
#include "backup.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void testlib_remove_db(const char *path)
{
    backup_remove_database(path);
}

void testlib_check_cases(const char *name, int (*check)(const char *),
                         const struct testlib_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!check(cases[i].in) != !cases[i].is_true)
            fail_msg("%s(\"%s\") should be %s", name, cases[i].in ? cases[i].in : "(null)",
                     cases[i].is_true ? "true" : "false");
}

void testlib_check_cases2(const char *name, int (*check)(const char *, const char *),
                          const struct testlib_case2 *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!check(cases[i].a, cases[i].b) != !cases[i].is_true)
            fail_msg("%s(\"%s\", \"%s\") should be %s", name, cases[i].a, cases[i].b,
                     cases[i].is_true ? "true" : "false");
}

char *testlib_db_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "/tmp/cd-test-%s-%d.db", name, (int)getpid());
    return out;
}

char testlib_db[256];

int testlib_db_sqlite(void **state)
{
    (void)state;
    testlib_remove_db(
        testlib_db_path(testlib_db, sizeof testlib_db, program_invocation_short_name));
    return 0;
}

int testlib_db_pg(void **state)
{
    (void)state;
    testlib_pg_database(testlib_db, sizeof testlib_db, program_invocation_short_name);
    return 0;
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

struct store_message testlib_message_of(int64_t conversation, int sender, const char *client_id,
                                        const char *reply_to, const char *text)
{
    struct store_message m;
    memset(&m, 0, sizeof m);
    m.conversation = conversation;
    m.sender = sender;
    if (client_id)
        snprintf(m.client_id, sizeof m.client_id, "%s", client_id);
    if (reply_to)
        snprintf(m.reply_to, sizeof m.reply_to, "%s", reply_to);
    m.text = text;
    return m;
}

int64_t testlib_message(struct store *s, int64_t conversation, int sender, int64_t agent_id,
                        const char *text, const char *meta)
{
    struct store_message m = testlib_message_of(conversation, sender, NULL, NULL, text);
    m.agent_id = agent_id;
    m.meta = meta;
    assert_int_equal(store_message_append(s, &m), 0);
    return m.seq;
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

void testlib_assert_has_none(const char *text, const char *const *unwanted)
{
    assert_non_null(text);
    for (; *unwanted; unwanted++)
        if (strstr(text, *unwanted))
            fail_msg("unwanted \"%s\" in:\n%s", *unwanted, text);
}

void testlib_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail_msg("%s", msg);
    abort(); /* not reached: fail_msg() does not return */
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
