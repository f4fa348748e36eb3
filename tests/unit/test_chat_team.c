/* Tests for chat_team.c through the customer and agent protocols with a fake
 * transport (testlib): the NPS question after the rating when the deployment
 * asks it, its answer stored (comment masked) and counted in report.c's NPS,
 * bad answers refused with nothing stored, and no question when it is off;
 * the escalation status update: a tracking id generated or continued, the
 * card to the customer (also on replay), the transcript and the export, the
 * search by tracking id, bad updates refused with nothing stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "chat.h"
#include "incident.h"
#include "intents.h"
#include "report.h"
#include "triage.h"
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
static struct triage *triage;

static struct triage *make_triage(void)
{
    static const char intent[] =
        "{\"name\":\"greeting\",\"description\":\"Say hello\",\"examples\":[\"hello\","
        "\"hi there\",\"good morning\"],\"patterns\":[\"hello\"],\"response\":\"Hello!\"}";
    return testlib_triage(intent);
}

static void start(int is_nps)
{
    testlib_db_path(db_path, sizeof db_path, "chat-team");
    testlib_remove_db(db_path);
    store = testlib_store(db_path);
    struct chat_settings settings;
    memset(&settings, 0, sizeof settings);
    settings.is_nps = is_nps;
    struct chat_io io = testlib_chat_io(&io_state);
    triage = make_triage();
    chat = chat_new(&settings, store, NULL, triage, &io);
    assert_non_null(chat);
    cursor = 0;
}

static int teardown(void **state)
{
    (void)state;
    chat_free(chat);
    triage_free(triage);
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
    /* The answer is part of the customer's data: in the export. */
    struct cd_buf out = {0};
    assert_int_equal(store_export_conversation(store, id, &out), 0);
    assert_non_null(strstr(out.data, "\"nps\":9"));
    assert_non_null(strstr(out.data, "\"nps_comment\":\"Quick."));
    cd_buf_free(&out);
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

static void agent(const char *frame)
{
    chat_agent_frame(chat, 2, frame, strlen(frame));
    assert_int_equal(chat_flush(chat), 0);
}

/* The next frame to connection conn of this type, from frame index *at. */
static json_t *expect_on(uint64_t conn, int *at, const char *type)
{
    while (*at < io_state.n) {
        struct testlib_frame *f = &io_state.frames[(*at)++];
        json_t *o = json_loads(f->text, 0, NULL);
        assert_non_null(o);
        if (f->conn == conn && !strcmp(json_string_value(json_object_get(o, "type")), type))
            return o;
        json_decref(o);
    }
    fail_msg("no '%s' frame to %llu", type, (unsigned long long)conn);
    return NULL;
}

static void test_incident_ids(void **state)
{
    (void)state;
    assert_true(incident_id_valid("INC-2026-1206-0042"));
    assert_true(incident_id_valid("OPS-2026-0101-123456"));
    static const char *const bad[] = {"",
                                      "INC",
                                      "inc-2026-1206-0042",
                                      "INC-26-1206-0042",
                                      "INC-2026-126-0042",
                                      "INC-2026-1206-042",
                                      "INC-2026-1206-0042x",
                                      "I-2026-1206-0042",
                                      "INCIDENTS-2026-1206-0042",
                                      "INC-2026-1206-1234567"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(incident_id_valid(bad[i]));
    assert_false(incident_id_valid(NULL));
}

static void test_status_update(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    start(0);
    char token[AUTH_TOKEN_HEX + 1];
    assert_int_equal(auth_user_create(store, "Alex", AUTH_ROLE_AGENT, "", token, NULL), 0);
    struct chat_peer peer = {"10.0.0.2", NULL, "test"};
    chat_agent_open(chat, 2, &peer);
    char frame[512];
    snprintf(frame, sizeof frame, "{\"type\":\"auth\",\"token\":\"%s\"}", token);
    int at = 0;
    agent(frame);
    json_decref(expect_on(2, &at, "ready"));
    chat_customer_open(chat, 1, &peer);
    cust("{\"type\":\"hello\",\"lang\":\"en\",\"name\":\"Sam\"}");
    json_t *w = expect("welcome");
    int64_t conv = json_integer_value(json_object_get(w, "conversation"));
    char customer_token[AUTH_TOKEN_HEX + 1];
    snprintf(customer_token, sizeof customer_token, "%s",
             json_string_value(json_object_get(w, "token")));
    json_decref(w);
    cust("{\"type\":\"handoff\"}");
    json_decref(expect("queued"));
    snprintf(frame, sizeof frame, "{\"type\":\"claim\",\"conversation\":%lld}", (long long)conv);
    agent(frame);
    json_decref(expect_on(2, &at, "assigned"));

    /* Bad updates: an error each, nothing stored. */
    static const char *const bad[] = {
        "\"owner\":\"\",\"status\":\"x\",\"next_update\":\"2099-01-01T10:00Z\"",
        "\"owner\":\"Billing\",\"next_update\":\"2099-01-01T10:00Z\"",
        "\"owner\":\"Billing\",\"status\":\"x\",\"next_update\":\"tomorrow\"",
        "\"owner\":\"Billing\",\"status\":\"x\",\"next_update\":\"2099-02-30T10:00Z\"",
        "\"owner\":\"Billing\",\"status\":\"x\",\"next_update\":\"2099-01-01T10:00\"",
        "\"owner\":\"Billing\",\"status\":\"x\",\"next_update\":\"2001-01-01T10:00Z\"",
        "\"owner\":\"Billing\",\"status\":\"x\",\"next_update\":\"2099-01-01T10:00Z\","
        "\"tracking_id\":\"INC-1\"",
        "\"owner\":\"Billing\",\"status\":\"x\",\"next_update\":\"2099-01-01T10:00Z\","
        "\"time_zone\":\"Europe Madrid;\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(frame, sizeof frame,
                 "{\"type\":\"status_update\",\"conversation\":%lld,\"id\":\"b%zu\",%s}",
                 (long long)conv, i, bad[i]);
        agent(frame);
        json_t *e = expect_on(2, &at, "error");
        assert_string_equal(json_string_value(json_object_get(e, "code")), "bad_frame");
        json_decref(e);
    }
    json_t *found = NULL;
    char today[INCIDENT_ID_MAX];
    assert_int_equal(incident_id_new(store, cd_wall_s(), today), 0);
    assert_true(incident_id_valid(today));
    assert_non_null(strstr(today, "-0001"));

    /* A new incident: the tracking id is generated; the customer gets the card. */
    snprintf(frame, sizeof frame,
             "{\"type\":\"status_update\",\"conversation\":%lld,\"id\":\"s1\","
             "\"owner\":\"Billing team\",\"status\":\"Refund approved, waiting for the bank\","
             "\"next_update\":\"2099-01-02T09:30+01:00\",\"time_zone\":\"Europe/Madrid\","
             "\"workaround\":\"Use card 4111 1111 1111 1111 meanwhile\"}",
             (long long)conv);
    agent(frame);
    json_t *ack = expect_on(2, &at, "ack");
    char tid[INCIDENT_ID_MAX];
    snprintf(tid, sizeof tid, "%s", json_string_value(json_object_get(ack, "tracking_id")));
    assert_string_equal(tid, today);
    int64_t seq = json_integer_value(json_object_get(ack, "seq"));
    json_decref(ack);
    json_t *card = expect("agent_message");
    json_t *su = json_object_get(card, "status_update");
    assert_string_equal(json_string_value(json_object_get(su, "tracking_id")), tid);
    assert_string_equal(json_string_value(json_object_get(su, "owner")), "Billing team");
    assert_int_equal(json_integer_value(json_object_get(su, "next_update_s")), 4071025800LL);
    assert_null(strstr(json_string_value(json_object_get(su, "workaround")), "4111 1111"));
    assert_non_null(strstr(json_string_value(json_object_get(card, "text")), tid));
    json_decref(card);

    /* The same update again is stored once. */
    agent(frame);
    ack = expect_on(2, &at, "ack");
    assert_true(json_is_true(json_object_get(ack, "duplicate")));
    assert_int_equal(json_integer_value(json_object_get(ack, "seq")), seq);
    json_decref(ack);

    /* A follow-up on the same incident keeps its tracking id. */
    snprintf(frame, sizeof frame,
             "{\"type\":\"status_update\",\"conversation\":%lld,\"id\":\"s2\","
             "\"owner\":\"Billing team\",\"status\":\"Refund sent\","
             "\"next_update\":\"2099-01-03T09:30Z\",\"tracking_id\":\"%s\"}",
             (long long)conv, tid);
    agent(frame);
    ack = expect_on(2, &at, "ack");
    assert_string_equal(json_string_value(json_object_get(ack, "tracking_id")), tid);
    json_decref(ack);

    /* Searchable by tracking id (any case), in order. */
    char lower[INCIDENT_ID_MAX];
    snprintf(lower, sizeof lower, "inc%s", tid + 3);
    assert_int_equal(incident_search(store, lower, &found), 0);
    json_t *updates = json_object_get(found, "updates");
    assert_int_equal(json_array_size(updates), 2);
    json_t *u0 = json_array_get(updates, 0);
    assert_int_equal(json_integer_value(json_object_get(u0, "conversation")), conv);
    assert_int_equal(json_integer_value(json_object_get(u0, "seq")), seq);
    assert_string_equal(json_string_value(json_object_get(u0, "agent")), "Alex");
    assert_string_equal(json_string_value(json_object_get(json_array_get(updates, 1), "status")),
                        "Refund sent");
    json_decref(found);
    assert_int_equal(incident_search(store, "INC-2000-0101-0001", &found), 0);
    assert_int_equal(json_array_size(json_object_get(found, "updates")), 0);
    json_decref(found);
    /* The next new incident of the day gets the next number. */
    assert_int_equal(incident_id_new(store, cd_wall_s(), today), 0);
    assert_non_null(strstr(today, "-0002"));

    /* In the export (the transcript for agents and the data-subject copy). */
    struct cd_buf out = {0};
    assert_int_equal(store_export_conversation(store, conv, &out), 0);
    assert_non_null(strstr(out.data, "\"status_update\""));
    assert_non_null(strstr(out.data, tid));
    cd_buf_free(&out);

    /* A customer who reconnects gets the card again in the replay. */
    chat_customer_closed(chat, 1);
    chat_customer_open(chat, 3, &peer);
    snprintf(frame, sizeof frame, "{\"type\":\"hello\",\"token\":\"%s\",\"last_seq\":0}",
             customer_token);
    int at3 = io_state.n;
    chat_customer_frame(chat, 3, frame, strlen(frame));
    assert_int_equal(chat_flush(chat), 0);
    card = expect_on(3, &at3, "agent_message");
    assert_int_equal(json_integer_value(json_object_get(card, "seq")), seq);
    su = json_object_get(card, "status_update");
    assert_string_equal(json_string_value(json_object_get(su, "tracking_id")), tid);
    assert_string_equal(json_string_value(json_object_get(su, "time_zone")), "Europe/Madrid");
    json_decref(card);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test_teardown(test_nps_asked_and_stored, teardown),
                    cmocka_unit_test_teardown(test_nps_only_after_close_and_only_when_on, teardown),
                    cmocka_unit_test(test_incident_ids),
                    cmocka_unit_test_teardown(test_status_update, teardown),
                });
}
