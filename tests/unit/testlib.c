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
