/* Tests for queue.c: service order, positions, capacity, claims, the
 * auto-assignment choice, wait estimates, pickup targets, agents that go
 * away, and business hours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cd.h"
#include "queue.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void push(struct queue *q, int64_t conv, const char *name, int priority, int64_t at)
{
    struct queue_item it;
    memset(&it, 0, sizeof it);
    it.conversation = conv;
    snprintf(it.queue, sizeof it.queue, "%s", name);
    it.priority = priority;
    it.enqueued_s = at;
    assert_int_equal(queue_push(q, &it), 0);
}

static void test_order_and_positions(void **state)
{
    (void)state;
    struct queue *q = queue_new(NULL);
    assert_non_null(q);
    push(q, 1, "billing", 3, 100);
    push(q, 2, "billing", 3, 90);  /* waited longer */
    push(q, 3, "billing", 1, 120); /* more urgent */
    push(q, 4, "orders", 3, 80);
    push(q, 5, "billing", 3, 90); /* same wait as 2: arrival breaks the tie */
    assert_int_equal(queue_length(q), 5);
    assert_int_equal(queue_position(q, 3), 1);
    assert_int_equal(queue_position(q, 2), 2);
    assert_int_equal(queue_position(q, 5), 3);
    assert_int_equal(queue_position(q, 1), 4);
    assert_int_equal(queue_position(q, 4), 1); /* its own queue */
    assert_int_equal(queue_position(q, 99), CD_ENOTFOUND);
    assert_int_equal(queue_at(q, 0)->conversation, 3);
    assert_null(queue_at(q, 5));
    assert_int_equal(queue_longest_wait_s(q, 200), 120);

    struct queue_item dup;
    memset(&dup, 0, sizeof dup);
    dup.conversation = 1;
    assert_int_equal(queue_push(q, &dup), CD_EEXIST);
    /* Unknown queue names go to general. */
    push(q, 6, "nonsense", 3, 100);
    assert_string_equal(queue_find(q, 6)->queue, "general");
    assert_int_equal(queue_remove(q, 2), 0);
    assert_int_equal(queue_remove(q, 2), CD_ENOTFOUND);
    assert_int_equal(queue_position(q, 5), 2);
    queue_set_preview(q, 5, "where is my order? I have been waiting for weeks");
    assert_string_equal(queue_find(q, 5)->preview,
                        "where is my order? I have been waiting for weeks");
    queue_free(q);
    queue_free(NULL);
}

static void test_names(void **state)
{
    (void)state;
    struct queue_settings s = {0};
    s.names = "vip,general";
    struct queue *q = queue_new(&s);
    assert_non_null(q);
    assert_true(queue_exists(q, "vip"));
    assert_false(queue_exists(q, "billing"));
    assert_string_equal(queue_names(q), "vip,general");
    queue_free(q);
    s.names = "vip,,general";
    assert_null(queue_new(&s));
    s.names = "";
    assert_null(queue_new(&s));
    s.names = "Bad Name";
    assert_null(queue_new(&s));
    /* The defaults, defined once in queue.h (config.c's table uses the same). */
    q = queue_new(NULL);
    assert_non_null(q);
    assert_string_equal(queue_names(q), QUEUE_DEFAULT_NAMES);
    assert_int_equal(queue_pickup_target_s(q), QUEUE_DEFAULT_PICKUP_TARGET_S);
    queue_free(q);
    struct queue_settings d = {0};
    d.agent_capacity = 5;
    queue_settings_defaults(&d);
    assert_int_equal(d.agent_capacity, 5);
    assert_int_equal(d.pickup_target_s, QUEUE_DEFAULT_PICKUP_TARGET_S);
}

static void test_claim_and_capacity(void **state)
{
    (void)state;
    struct queue_settings s = {0};
    s.agent_capacity = 2;
    struct queue *q = queue_new(&s);
    for (int i = 1; i <= 4; i++)
        push(q, i, "general", 3, 100 + i);
    assert_int_equal(queue_claim(q, 1, 7, 110), CD_EPERM); /* unknown agent */
    assert_int_equal(queue_agent_online(q, 7, "ana", "", 0), 0);
    assert_int_equal(queue_agent_online(q, 8, "bo", "", 0), 0);
    assert_int_equal(queue_claim(q, 1, 7, 110), 0);
    /* The race: the second claim for the same chat loses. */
    assert_int_equal(queue_claim(q, 1, 8, 110), CD_ENOTFOUND);
    assert_int_equal(queue_claim(q, 2, 7, 111), 0);
    assert_int_equal(queue_claim(q, 3, 7, 112), CD_EBUSY); /* capacity 2 */
    assert_non_null(queue_find(q, 3));                     /* still waiting */
    queue_agent_release(q, 7);
    assert_int_equal(queue_claim(q, 3, 7, 300), 0);
    int64_t n, n_in;
    queue_pickup_counts(q, &n, &n_in);
    assert_int_equal(n, 3);
    assert_int_equal(n_in, 2); /* 3 waited 197 s > 60 s target */
    queue_free(q);
}

static void test_auto_assignment(void **state)
{
    (void)state;
    struct queue *q = queue_new(NULL);
    int64_t conv = 0, agent = 0;
    push(q, 1, "billing", 3, 100);
    push(q, 2, "orders", 3, 101);
    assert_false(queue_next_assignment(q, &conv, &agent)); /* nobody online */
    queue_agent_online(q, 7, "ana", "orders", 0);
    assert_true(queue_next_assignment(q, &conv, &agent));
    assert_int_equal(conv, 2); /* billing waits longer, but ana has no billing skill */
    assert_int_equal(agent, 7);
    queue_agent_online(q, 8, "bo", "billing,orders", 0);
    queue_agent_online(q, 9, "cy", "billing", 0);
    assert_int_equal(queue_claim(q, 1, 8, 105), 0);
    push(q, 3, "billing", 3, 106);
    assert_true(queue_next_assignment(q, &conv, &agent));
    assert_int_equal(conv, 2);
    assert_int_equal(agent, 7); /* 7 has 0 chats, 8 has 1 */
    assert_int_equal(queue_claim(q, 2, 7, 107), 0);
    assert_true(queue_next_assignment(q, &conv, &agent));
    assert_int_equal(conv, 3);
    assert_int_equal(agent, 9); /* least busy with the billing skill */
    /* An unavailable agent gets nothing. */
    assert_int_equal(queue_agent_set_available(q, 9, 0), 0);
    assert_true(queue_next_assignment(q, &conv, &agent));
    assert_int_equal(agent, 8);
    assert_int_equal(queue_agent_set_available(q, 99, 0), CD_ENOTFOUND);
    queue_free(q);
}

static void test_estimates(void **state)
{
    (void)state;
    struct queue *q = queue_new(NULL);
    push(q, 1, "general", 3, 1000);
    assert_int_equal(queue_estimate_wait_s(q, 1, 1000), -1); /* nobody to pick it up */
    assert_int_equal(queue_estimate_wait_s(q, 42, 1000), CD_ENOTFOUND);
    queue_agent_online(q, 7, "ana", "", 1);
    /* An agent with room: the next chat is picked up at once. */
    assert_int_equal(queue_estimate_wait_s(q, 1, 1000), 0);
    assert_int_equal(queue_claim(q, 1, 7, 1040), 0); /* waited 40 s */
    push(q, 2, "general", 3, 1050);
    push(q, 3, "general", 3, 1051);
    /* Agent full: position 1 waits about one mean pickup (40 s), position 2 two. */
    int e2 = queue_estimate_wait_s(q, 2, 1050);
    int e3 = queue_estimate_wait_s(q, 3, 1051);
    assert_int_equal(e2, 40);
    assert_int_equal(e3, 80);
    /* More agents: shorter waits. */
    queue_agent_online(q, 8, "bo", "", 1);
    queue_agent_online(q, 9, "cy", "", 1);
    assert_int_equal(queue_claim(q, 2, 8, 1060), 0);
    assert_int_equal(queue_claim(q, 3, 9, 1061), 0);
    push(q, 4, "general", 3, 1062);
    int e4 = queue_estimate_wait_s(q, 4, 1062);
    assert_true(e4 > 0 && e4 < 40);
    queue_free(q);
}

/* Chats further back that have waited longer: each still expects longer than the one before. */
static void test_estimate_grows_with_position(void **state)
{
    (void)state;
    struct queue *q = queue_new(NULL);
    queue_agent_online(q, 7, "ana", "", 1);
    push(q, 1, "general", 3, 1000);
    assert_int_equal(queue_claim(q, 1, 7, 1010), 0); /* mean pickup 10 s; Ana is full */
    /* Served as 2 (priority 2, waited 5 s), 4 (waited 25 s), 3 (waited 15 s). */
    push(q, 4, "general", 3, 1075);
    push(q, 3, "general", 3, 1085);
    push(q, 2, "general", 2, 1095);
    int e2 = queue_estimate_wait_s(q, 2, 1100), e3 = queue_estimate_wait_s(q, 3, 1100);
    int e4 = queue_estimate_wait_s(q, 4, 1100);
    assert_int_equal(queue_position(q, 2), 1);
    assert_int_equal(queue_position(q, 4), 2);
    assert_int_equal(queue_position(q, 3), 3);
    assert_true(e2 >= 5);
    assert_true(e4 > e2);
    assert_true(e3 > e4);
    queue_free(q);
}

static void test_agents_gone(void **state)
{
    (void)state;
    struct queue *q = queue_new(NULL);
    push(q, 1, "general", 3, 100);
    queue_agent_online(q, 7, "ana", "", 0);
    queue_agent_online(q, 7, "ana", "", 0); /* two tabs */
    assert_int_equal(queue_claim(q, 1, 7, 101), 0);
    queue_agent_offline(q, 7, 200);
    assert_int_equal(queue_agents_gone(q, 1000, 30), 0); /* one tab still open */
    queue_agent_offline(q, 7, 200);
    assert_int_equal(queue_agents_available(q, NULL, NULL), 0);
    assert_int_equal(queue_agents_gone(q, 220, 30), 0); /* within the grace */
    assert_int_equal(queue_agents_gone(q, 231, 30), 7);
    assert_null(queue_agent_get(q, 7));
    /* Rebuilt after a restart: the chat counts for an offline agent. */
    assert_int_equal(queue_agent_add_chat(q, 8, "bo"), 0);
    assert_int_equal(queue_agent_get(q, 8)->n_active, 1);
    assert_int_equal(queue_agent_online(q, 8, "bo", "", 0), 0);
    assert_int_equal(queue_agent_get(q, 8)->n_active, 1);
    queue_agent_offline(q, 8, 300);
    queue_agent_release(q, 8);
    assert_null(queue_agent_get(q, 8)); /* nothing left to wait for */
    queue_free(q);
}

static int64_t local_time(int year, int mon, int day, int hour, int min)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

static void test_business_hours(void **state)
{
    (void)state;
    struct queue *q = queue_new(NULL);
    assert_true(queue_is_open(q, local_time(2026, 11, 22, 3, 0))); /* default: always */
    queue_free(q);
    struct queue_settings s = {0};
    s.business_open_min = 9 * 60;
    s.business_close_min = 17 * 60;
    s.business_days_mask = 0x3e; /* Monday to Friday */
    q = queue_new(&s);
    /* 2026-11-23 is a Monday. */
    assert_true(queue_is_open(q, local_time(2026, 11, 23, 9, 0)));
    assert_true(queue_is_open(q, local_time(2026, 11, 23, 16, 59)));
    assert_false(queue_is_open(q, local_time(2026, 11, 23, 17, 0)));
    assert_false(queue_is_open(q, local_time(2026, 11, 22, 12, 0))); /* Sunday */
    int64_t fri_evening = local_time(2026, 11, 27, 18, 30);
    assert_int_equal(queue_next_open_s(q, fri_evening), local_time(2026, 11, 30, 9, 0));
    int64_t open = local_time(2026, 11, 24, 10, 0);
    assert_int_equal(queue_next_open_s(q, open), open);
    queue_free(q);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_order_and_positions),
                    cmocka_unit_test(test_names),
                    cmocka_unit_test(test_claim_and_capacity),
                    cmocka_unit_test(test_auto_assignment),
                    cmocka_unit_test(test_estimates),
                    cmocka_unit_test(test_estimate_grows_with_position),
                    cmocka_unit_test(test_agents_gone),
                    cmocka_unit_test(test_business_hours),
                });
}
