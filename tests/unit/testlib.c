/* testlib: helpers shared by the unit tests (testlib.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include "backup.h"

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
