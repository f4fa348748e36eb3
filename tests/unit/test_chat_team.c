/* Tests for chat_team.c through the customer protocol with a fake transport
 * (testlib): the NPS question after the rating when the deployment asks it,
 * its answer stored (comment masked) and counted in report.c's NPS, bad
 * answers refused with nothing stored, and no question when it is off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat.h"
#include "report.h"
#include "store.h"
#include "testlib.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct testlib_io io_state;
static int cursor;
static char db_path[128];
static struct store *store;
static struct chat *chat;

static void start(int is_nps)
{
    testlib_db_path(db_path, sizeof db_path, "chat-team");
    testlib_remove_db(db_path);
    store = store_open(db_path, NULL, NULL);
    assert_non_null(store);
    struct chat_settings settings;
    memset(&settings, 0, sizeof settings);
    settings.is_nps = is_nps;
    struct chat_io io = testlib_chat_io(&io_state);
    chat = chat_new(&settings, store, NULL, NULL, &io);
    assert_non_null(chat);
    cursor = 0;
}

static int teardown(void **state)
{
    (void)state;
    chat_free(chat);
    store_close(store);
    testlib_io_reset(&io_state);
    testlib_remove_db(db_path);
    return 0;
}

static void cust(const char *frame)
{
    chat_customer_frame(chat, 1, frame, strlen(frame));
    assert_int_equal(chat_flush(chat), 0);
}

/* The next frame to connection 1 of this type, skipping others. */
static json_t *expect(const char *type)
{
    while (cursor < io_state.n) {
        struct testlib_frame *f = &io_state.frames[cursor++];
        json_t *o = json_loads(f->text, 0, NULL);
        assert_non_null(o);
        if (f->conn == 1 && !strcmp(json_string_value(json_object_get(o, "type")), type))
            return o;
        json_decref(o);
    }
    fail_msg("no '%s' frame", type);
    return NULL;
}

static int64_t closed_and_rated(void)
{
    struct chat_peer peer = {"10.0.0.1", NULL, "test"};
    chat_customer_open(chat, 1, &peer);
    cust("{\"type\":\"hello\",\"lang\":\"en\",\"name\":\"Sam\"}");
    json_t *w = expect("welcome");
    int64_t id = json_integer_value(json_object_get(w, "conversation"));
    json_decref(w);
    cust("{\"type\":\"close\"}");
    json_decref(expect("rating_request"));
    cust("{\"type\":\"rating\",\"score\":4}");
    json_decref(expect("rating_ok"));
    return id;
}

static const struct report_nps_group *nps_now(struct report *r)
{
    int64_t now = cd_wall_s();
    assert_int_equal(report_compute(store, NULL, now - 3600, now + 3600, now, r), 0);
    return &r->nps.all;
}

static void test_nps_asked_and_stored(void **state)
{
    (void)state;
    start(1);
    int64_t id = closed_and_rated();
    json_t *q = expect("nps_request");
    assert_int_equal(json_integer_value(json_object_get(q, "min")), 0);
    assert_int_equal(json_integer_value(json_object_get(q, "max")), 10);
    json_decref(q);

    /* Bad answers: an error each, nothing stored. */
    static const char *const bad[] = {
        "{\"type\":\"nps\",\"score\":11}",
        "{\"type\":\"nps\",\"score\":-1}",
        "{\"type\":\"nps\",\"score\":4.5}",
        "{\"type\":\"nps\"}",
        "{\"type\":\"nps\",\"score\":9,\"comment\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cust(bad[i]);
        json_t *e = expect("error");
        assert_string_equal(json_string_value(json_object_get(e, "code")), "bad_frame");
        json_decref(e);
    }
    struct report r;
    assert_int_equal(nps_now(&r)->n, 0);
    report_clear(&r);

    cust("{\"type\":\"nps\",\"score\":9,\"comment\":\"Quick. My card 4111 1111 1111 1111 "
         "was never needed\"}");
    json_t *ok = expect("nps_ok");
    assert_int_equal(json_integer_value(json_object_get(ok, "score")), 9);
    json_decref(ok);
    const struct report_nps_group *g = nps_now(&r);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->n_promoters, 1);
    assert_true(g->score == 100.0);
    assert_int_equal(r.nps.n_verbatims, 1);
    assert_int_equal(r.nps.verbatims[0].conversation, id);
    assert_null(strstr(r.nps.verbatims[0].comment, "4111 1111 1111 1111"));
    assert_non_null(strstr(r.nps.verbatims[0].comment, "Quick."));
    report_clear(&r);
    /* A second answer replaces the first. */
    cust("{\"type\":\"nps\",\"score\":3}");
    json_decref(expect("nps_ok"));
    g = nps_now(&r);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->n_detractors, 1);
    report_clear(&r);
}

static void test_nps_only_after_close_and_only_when_on(void **state)
{
    (void)state;
    start(1);
    struct chat_peer peer = {"10.0.0.1", NULL, "test"};
    chat_customer_open(chat, 1, &peer);
    cust("{\"type\":\"hello\",\"lang\":\"en\"}");
    json_decref(expect("welcome"));
    cust("{\"type\":\"nps\",\"score\":9}");
    json_t *e = expect("error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "bad_state");
    json_decref(e);
    teardown(NULL);

    start(0);
    closed_and_rated();
    for (int i = cursor; i < io_state.n; i++)
        assert_null(strstr(io_state.frames[i].text, "nps_request"));
    cust("{\"type\":\"nps\",\"score\":9}");
    e = expect("error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "bad_state");
    json_decref(e);
    struct report r;
    assert_int_equal(nps_now(&r)->n, 0);
    report_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nps_asked_and_stored, teardown),
        cmocka_unit_test_teardown(test_nps_only_after_close_and_only_when_on, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
