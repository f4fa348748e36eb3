/* Tests for incident.c on the store: tracking ids numbered after the day's highest, status
 * updates recorded and found by tracking id in any case, with the message's status update.
 * They run on SQLite and again on PostgreSQL (testlib.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "incident.h"
#include "store.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Saturday 6 December 2025, 12:00 UTC (the tests run with TZ=UTC). */
#define NOON 1765022400LL

static void test_ids_records_and_search(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    struct auth_user u;
    char token[AUTH_TOKEN_HEX + 1];
    assert_int_equal(auth_user_create(s, "Ana", AUTH_ROLE_AGENT, "", token, &u), 0);
    struct store_conversation c;
    memset(&c, 0, sizeof c);
    int64_t conv = testlib_conversation(s, &c);

    /* The day's first id, then one after the highest recorded that day. */
    char id[INCIDENT_ID_MAX];
    assert_int_equal(incident_id_new(s, NOON, id), 0);
    assert_string_equal(id, "INC-2025-1206-0001");
    int64_t seq =
        testlib_message(s, conv, STORE_SENDER_AGENT, u.id, "We are on it.",
                        "{\"status_update\":{\"status\":\"investigating\",\"owner\":\"Ana\"}}");
    assert_int_equal(incident_record(s, id, conv, seq, u.id, "investigating"), 0);
    assert_int_equal(incident_record(s, "INC-2025-1206-0041", conv, seq, u.id, "open"), 0);
    assert_int_equal(incident_id_new(s, NOON, id), 0);
    assert_string_equal(id, "INC-2025-1206-0042");
    /* Other days and other prefixes do not count; nor does an id with no number. */
    assert_int_equal(incident_record(s, "INC-2025-1205-0900", conv, seq, u.id, "open"), 0);
    assert_int_equal(incident_record(s, "OPS-2025-1206-0500", conv, seq, u.id, "open"), 0);
    assert_int_equal(incident_record(s, "INC-2025-1206-x", conv, seq, u.id, "open"), 0);
    assert_int_equal(incident_id_new(s, NOON, id), 0);
    assert_string_equal(id, "INC-2025-1206-0042");
    assert_int_equal(incident_id_new(s, NOON + 86400, id), 0);
    assert_string_equal(id, "INC-2025-1207-0001");

    /* Found in any case, oldest first, with the message's status update. */
    int64_t seq2 = testlib_message(s, conv, STORE_SENDER_AGENT, u.id, "We are on it.", NULL);
    assert_int_equal(incident_record(s, "INC-2025-1206-0001", conv, seq2, u.id, "resolved"), 0);
    json_t *out = NULL;
    assert_int_equal(incident_search(s, "inc-2025-1206-0001", &out), 0);
    assert_string_equal(json_string_value(json_object_get(out, "tracking_id")),
                        "INC-2025-1206-0001");
    json_t *updates = json_object_get(out, "updates");
    assert_int_equal(json_array_size(updates), 2);
    json_t *first = json_array_get(updates, 0), *second = json_array_get(updates, 1);
    assert_int_equal(json_integer_value(json_object_get(first, "conversation")), conv);
    assert_int_equal(json_integer_value(json_object_get(first, "seq")), seq);
    assert_string_equal(json_string_value(json_object_get(first, "agent")), "Ana");
    assert_string_equal(json_string_value(json_object_get(first, "status")), "investigating");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(first, "status_update"), "owner")),
        "Ana");
    assert_string_equal(json_string_value(json_object_get(second, "status")), "resolved");
    assert_true(json_is_null(json_object_get(second, "status_update")));
    json_decref(out);

    /* No updates: an empty list. */
    assert_int_equal(incident_search(s, "INC-2025-1201-0001", &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "updates")), 0);
    json_decref(out);
    store_close(s);
}

#define T(f) TESTLIB_ON_SQLITE(f)
#define P(f) TESTLIB_ON_PG(f)

int main(void)
{
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest on_sqlite[] = {
        T(test_ids_records_and_search),
    };
    const struct CMUnitTest on_postgres[] = {
        P(test_ids_records_and_search),
    };
    TESTLIB_RUN_BOTH("incident", on_sqlite, on_postgres, NULL);
}
