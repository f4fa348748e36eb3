/* testlib: what the unit tests share, so each helper is written once: removing a test
 * database with its WAL, shared-memory and journal files, opening a store, building a
 * message, writing a file, loading and training an intent set, checking that a text holds a
 * list of strings (or none of another), running a file's tests, and a fake chat transport
 * (struct chat_io) that records every frame and close in growable arrays (testlib_io.c, which
 * the chat fuzzer links too). Link with testlib.o and testlib_io.o (the Makefile does for
 * every tests/unit/test_*.c); the helpers use cmocka's assertions. */
#ifndef CD_TESTLIB_H
#define CD_TESTLIB_H

#include "cd.h"
#include "chat.h"
#include "intents.h"
#include "store.h"
#include "triage.h"

#include <stddef.h>
#include <stdint.h>

/* Unlinks path and its "-wal", "-shm" and "-journal" files, if they exist. */
void testlib_remove_db(const char *path);

/* Writes "/tmp/cd-test-NAME-PID.db" into out (cap bytes). Returns out. */
char *testlib_db_path(char *out, size_t cap, const char *name);

/* Writes text to the file name in the directory dir; fails the test when it cannot. */
void testlib_write_file(const char *dir, const char *name, const char *text);

/* The URL of a new, empty PostgreSQL database named after name (and the process), in the
 * test cluster: CAREDESK_TEST_PG's (tests/run.sh starts one for the whole run), or one this
 * process starts with scripts/pg-cluster.sh and stops at exit. A database of that name left
 * by an earlier run is dropped first. Writes the URL into out and returns out. */
char *testlib_pg_database(char *out, size_t cap, const char *name);

/* The database of the running test, for a test file whose tests run on both backends: a
 * SQLite file that testlib_db_sqlite() removes before and after each test, or a new, empty
 * PostgreSQL database that testlib_db_pg() makes before each test; both are named after the
 * program. Use them as cmocka setups with TESTLIB_ON_SQLITE(test) and TESTLIB_ON_PG(test). */
extern char testlib_db[256];
int testlib_db_sqlite(void **state);
int testlib_db_pg(void **state);
#define TESTLIB_ON_SQLITE(f) cmocka_unit_test_setup_teardown(f, testlib_db_sqlite, testlib_db_sqlite)
#define TESTLIB_ON_PG(f)     cmocka_unit_test_setup_teardown(f, testlib_db_pg, NULL)

/* The end of main() of such a file: the array on_sqlite as the group "WHAT on SQLite", then
 * on_postgres as "WHAT on PostgreSQL", each with group_setup (NULL for none); returns the
 * failures of both. */
#define TESTLIB_RUN_BOTH(what, on_sqlite, on_postgres, group_setup)                                \
    do {                                                                                           \
        int failed_ = _cmocka_run_group_tests(what " on SQLite", on_sqlite,                        \
                                              sizeof(on_sqlite) / sizeof(on_sqlite)[0],            \
                                              group_setup, NULL);                                  \
        failed_ += _cmocka_run_group_tests(what " on PostgreSQL", on_postgres,                     \
                                           sizeof(on_postgres) / sizeof(on_postgres)[0],           \
                                           group_setup, NULL);                                     \
        return failed_;                                                                            \
    } while (0)

/* The first column of the first row sql gives on the database at target (a SQLite path or a
 * PostgreSQL URL), as text ("" for no row or NULL), in out. Fails the test on an error. */
char *testlib_sql_text(const char *target, const char *sql, char *out, size_t cap);

/* The store at path (":memory:" for an empty one in memory); fails the test, saying why,
 * when it cannot be opened. */
struct store *testlib_store(const char *path);

/* Creates the conversation c in s (a zeroed struct with the caller's fields set) with a
 * token hash no other call gives and, when c->lang is empty, lang "en"; fails the test when
 * the store refuses it. Returns c->id. */
int64_t testlib_conversation(struct store *s, struct store_conversation *c);

/* A message of sender (enum store_sender) in conversation, not stored: all other fields zero
 * but client_id and reply_to (NULL for none) and text, which is not copied. */
struct store_message testlib_message_of(int64_t conversation, int sender, const char *client_id,
                                        const char *reply_to, const char *text);

/* Appends a message of sender (enum store_sender) to conversation in s: text, meta (JSON
 * text or NULL) and, for an agent's, agent_id; fails the test when the store refuses it.
 * Returns its seq. */
int64_t testlib_message(struct store *s, int64_t conversation, int sender, int64_t agent_id,
                        const char *text, const char *meta);

/* A new intent set with the n JSON documents in jsons loaded (as from a file named source)
 * and trained quietly; fails the test on any error. */
struct intents *testlib_intents(const char *const *jsons, size_t n, const char *source);

/* A triage with default settings over the trained intent set of one JSON document. */
struct triage *testlib_triage(const char *json);

/* Fails the test unless text holds every string of the NULL-terminated list want. */
void testlib_assert_has_all(const char *text, const char *const *want);

/* Fails the test when text holds any string of the NULL-terminated list unwanted. */
void testlib_assert_has_none(const char *text, const char *const *unwanted);

/* One input of a yes/no check and the answer it must get. */
struct testlib_case {
    const char *in;
    int is_true;
};

/* Fails the test, naming the check and the input, unless check(in) is nonzero exactly for the
 * cases marked is_true. */
void testlib_check_cases(const char *name, int (*check)(const char *),
                         const struct testlib_case *cases, size_t n);
#define TESTLIB_CHECK_CASES(check, cases)                                                          \
    testlib_check_cases(#check, check, cases, sizeof(cases) / sizeof(cases)[0])

/* Two inputs of a yes/no check and the answer it must get. */
struct testlib_case2 {
    const char *a, *b;
    int is_true;
};

/* As testlib_check_cases, for a check of two strings. */
void testlib_check_cases2(const char *name, int (*check)(const char *, const char *),
                          const struct testlib_case2 *cases, size_t n);
#define TESTLIB_CHECK_CASES2(check, cases)                                                         \
    testlib_check_cases2(#check, check, cases, sizeof(cases) / sizeof(cases)[0])

/* The end of a test file's main(): runs the braced list of tests given (cmocka_unit_test()
 * and friends) as one group with group_setup and group_teardown (NULL for none) and returns
 * its result. */
#define TESTLIB_RUN(group_setup, group_teardown, ...)                                              \
    do {                                                                                           \
        const struct CMUnitTest tests[] = __VA_ARGS__;                                             \
        return cmocka_run_group_tests(tests, group_setup, group_teardown);                         \
    } while (0)

struct testlib_frame {
    uint64_t conn;
    char *text; /* NUL-terminated copy of the frame */
    size_t len;
};

struct testlib_close {
    uint64_t conn;
    int code;
    int after; /* frames recorded (to anyone) when the close came */
};

/* A fake transport: zero-initialise, hand testlib_chat_io() to chat_new(), free with
 * testlib_io_reset(). */
struct testlib_io {
    struct testlib_frame *frames;
    int n, cap;
    struct testlib_close *closes;
    int n_closed, cap_closed;
    int is_close_fatal; /* 1: a close fails the test (a transport that never closes) */
};

/* Fails the test with the message fmt formats; does not return. testlib.c's fails the cmocka
 * test; a program that links testlib_io.c alone (the chat fuzzer) defines its own. */
void testlib_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A chat_io whose send and close record into io (testlib_io.c). */
struct chat_io testlib_chat_io(struct testlib_io *io);

/* Frees every recorded frame and close and empties io (is_close_fatal is kept). */
void testlib_io_reset(struct testlib_io *io);

#endif
