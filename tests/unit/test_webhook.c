/* Tests for webhook and store_outbox: the signature, the backoff, endpoint settings, the
 * outbox's order per conversation, and events written in the transaction of their change
 * (undone with it). The tests on a store run on SQLite and again on PostgreSQL (testlib.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cd.h"
#include "config.h"
#include "kb.h"
#include "store.h"
#include "store_outbox.h"
#include "testlib.h"
#include "webhook.h"

static void test_signature(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_LEN + 1];
    const char *body = "{\"event\":\"conversation.created\"}";
    webhook_sign("whsec-test", "1700000000", body, strlen(body), sig);
    /* printf '%s' '1700000000.{"event":"conversation.created"}' |
     *   openssl dgst -sha256 -hmac whsec-test */
    assert_string_equal(sig,
                        "sha256=9919b64d4765682c796b1a36aeabdbbc1b34fd4d3011dbdc151aa10e3d3ab1a0");
    /* A key longer than a block is hashed first (RFC 2104). */
    char key[101];
    memset(key, 'k', 100);
    key[100] = '\0';
    webhook_sign(key, "1", "x", 1, sig);
    assert_string_equal(sig,
                        "sha256=8dc72019a8a249d8f2d36e36fac06f4497511f4f50cfee8600a5d97fb8a91da5");
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(webhook_backoff_ms(1, 1000, 0.5), 1000);
    assert_int_equal(webhook_backoff_ms(2, 1000, 0.5), 2000);
    assert_int_equal(webhook_backoff_ms(4, 1000, 0.5), 8000);
    assert_int_equal(webhook_backoff_ms(1, 1000, 0.0), 500);
    assert_true(webhook_backoff_ms(1, 1000, 0.999) < 1500);
    assert_int_equal(webhook_backoff_ms(40, 5000, 0.5), 3600 * 1000); /* capped at an hour */
    assert_int_equal(webhook_backoff_ms(1000, 5000, 1.0), 5400 * 1000);
}

static struct webhook *from_settings(const char *const *kv, char **err)
{
    struct config cfg;
    assert_int_equal(config_init(&cfg), 0);
    for (int i = 0; kv[i]; i += 2) {
        char *e = NULL;
        assert_int_equal(config_set(&cfg, kv[i], kv[i + 1], "test", &e), 0);
    }
    struct webhook *wh = webhook_new(&cfg, err);
    config_clear(&cfg);
    return wh;
}

static void test_settings(void **state)
{
    (void)state;
    char *err = NULL;
    const char *none[] = {NULL};
    struct webhook *wh = from_settings(none, &err);
    assert_non_null(wh);
    assert_int_equal(webhook_count(wh), 0);
    webhook_free(wh);

    const char *two[] = {"webhook-url",
                         "https://crm.example.com/hook",
                         "webhook-secret",
                         "s1",
                         "webhook-endpoints",
                         "https://tickets.example.com/in events=conversation.handoff,"
                         "conversation.closed secret=s2; http://127.0.0.1:9000/x events=message.*",
                         NULL};
    wh = from_settings(two, &err);
    assert_non_null(wh);
    assert_int_equal(webhook_count(wh), 3);
    webhook_free(wh);

    const char *bad[][5] = {
        {"webhook-url", "ftp://x/y", "webhook-secret", "s", NULL},
        {"webhook-url", "https://x/y", NULL, NULL, NULL},
        {"webhook-url", "https://x/y", "webhook-secret", "s", NULL},
        {"webhook-endpoints", "https://x/y events=chat.*", "webhook-secret", "s", NULL},
        {"webhook-endpoints", "https://x/y https://z/w", "webhook-secret", "s", NULL},
    };
    const char *want[] = {"not an http:// or https:// URL", "needs a secret", NULL,
                          "unknown event 'chat.*'", "unexpected 'https://z/w'"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        wh = from_settings(bad[i], &err);
        if (!want[i]) {
            assert_non_null(wh);
            webhook_free(wh);
            continue;
        }
        assert_null(wh);
        assert_non_null(err);
        if (!strstr(err, want[i]))
            fprintf(stderr, "got: %s\n", err);
        assert_non_null(strstr(err, want[i]));
        free(err);
    }
}

static void add(struct store *s, const char *event, int64_t conversation, int64_t now)
{
    struct store_outbox_item it;
    memset(&it, 0, sizeof it);
    assert_int_equal(store_outbox_new_delivery_id(it.delivery), 0);
    snprintf(it.event, sizeof it.event, "%s", event);
    snprintf(it.endpoint, sizeof it.endpoint, "http://127.0.0.1:1/x");
    it.conversation = conversation;
    it.payload = "{}";
    it.created_ms = now;
    it.deadline_ms = now + 1000;
    assert_int_equal(store_outbox_add(s, &it), 0);
}

static void test_outbox_order(void **state)
{
    (void)state;
    char *err = NULL;
    struct store *s = store_open(testlib_db, NULL, &err);
    assert_non_null(s);
    struct store_conversation c;
    memset(&c, 0, sizeof c);
    assert_int_equal(store_conversation_create(s, &c), 0);
    int64_t c1 = c.id;
    memset(&c, 0, sizeof c);
    c.token_hash[0] = 1; /* tokens are unique */
    assert_int_equal(store_conversation_create(s, &c), 0);
    int64_t c2 = c.id;
    add(s, "conversation.created", c1, 100);
    add(s, "message.created", c1, 101);
    add(s, "conversation.created", c2, 102);
    add(s, "article.published", 0, 103);
    add(s, "article.published", 0, 104);
    struct store_outbox_item items[8];
    int n = 0;
    assert_int_equal(store_outbox_due(s, 1000, items, 8, &n), 0);
    /* The second event of c1 waits for the first; unordered article events all go. */
    assert_int_equal(n, 4);
    assert_string_equal(items[0].event, "conversation.created");
    assert_int_equal(items[0].conversation, c1);
    assert_int_equal(items[1].conversation, c2);
    assert_int_equal(items[2].conversation, 0);
    assert_int_equal(items[3].conversation, 0);
    int64_t first = items[0].id;
    char delivery[STORE_DELIVERY_ID_LEN + 1];
    memcpy(delivery, items[0].delivery, sizeof delivery);
    store_outbox_clear(items, n);

    /* A retry scheduled later still holds c1's next event back. */
    assert_int_equal(
        store_outbox_record(s, first, STORE_OUTBOX_PENDING, 1, 5000, 500, "HTTP 500", 1000), 0);
    assert_int_equal(store_outbox_due(s, 1000, items, 8, &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++)
        assert_int_not_equal(items[i].conversation, c1);
    store_outbox_clear(items, n);
    /* Failed: the next one goes. */
    assert_int_equal(
        store_outbox_record(s, first, STORE_OUTBOX_FAILED, 2, 0, 500, "HTTP 500", 1200), 0);
    assert_int_equal(store_outbox_due(s, 1300, items, 8, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(items[0].event, "message.created");
    store_outbox_clear(items, n);

    /* Redelivered: pending again, same delivery id, ahead of the later one again. */
    assert_int_equal(store_outbox_redeliver(s, first, 2000, 9000), 0);
    struct store_outbox_item one;
    assert_int_equal(store_outbox_get(s, first, &one), 0);
    assert_int_equal(one.status, STORE_OUTBOX_PENDING);
    assert_string_equal(one.delivery, delivery);
    assert_int_equal(one.deadline_ms, 9000);
    store_outbox_clear(&one, 1);
    int64_t pending, delivered, failed;
    assert_int_equal(store_outbox_counts(s, &pending, &delivered, &failed), 0);
    assert_int_equal(pending, 5);
    assert_int_equal(failed, 0);
    assert_int_equal(store_outbox_redeliver(s, 999, 2000, 9000), CD_ENOTFOUND);
    store_close(s);
}

/* Delivery threads take rows with store_outbox_claim(): on PostgreSQL a row one node took is
 * held from the others until its hold ends or its attempt is recorded; on SQLite (one node)
 * nothing is held. */
static void test_outbox_claim(void **state)
{
    (void)state;
    char *err = NULL;
    struct store *a = store_open(testlib_db, NULL, &err);
    assert_non_null(a);
    struct store *b = store_open(testlib_db, NULL, &err); /* another node's delivery thread */
    assert_non_null(b);
    int is_pg = store_target_is_postgres(testlib_db);
    struct store_conversation c;
    memset(&c, 0, sizeof c);
    assert_int_equal(store_conversation_create(a, &c), 0);
    add(a, "conversation.created", c.id, 100);
    add(a, "message.created", c.id, 101);
    add(a, "article.published", 0, 102);

    struct store_outbox_item items[8];
    int n = 0;
    assert_int_equal(store_outbox_claim(a, 1000, 5000, items, 8, &n), 0);
    assert_int_equal(n, 2); /* the conversation's first event, and the article's */
    assert_string_equal(items[0].event, "conversation.created");
    assert_string_equal(items[1].event, "article.published");
    int64_t first = items[0].id;
    store_outbox_clear(items, n);
    assert_int_equal(store_outbox_claim(b, 1000, 5000, items, 8, &n), 0);
    assert_int_equal(n, is_pg ? 0 : 2);
    store_outbox_clear(items, n);

    /* The first delivered: the conversation's next event is free; the article's is held. */
    assert_int_equal(store_outbox_record(a, first, STORE_OUTBOX_DELIVERED, 1, 0, 200, NULL, 1200),
                     0);
    assert_int_equal(store_outbox_claim(b, 1500, 5000, items, 8, &n), 0);
    assert_int_equal(n, is_pg ? 1 : 2);
    assert_string_equal(items[0].event, "message.created");
    store_outbox_clear(items, n);
    /* Past their holds, rows whose node went away are taken by another. */
    assert_int_equal(store_outbox_claim(b, 7000, 5000, items, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].event, "message.created");
    assert_string_equal(items[1].event, "article.published");
    store_outbox_clear(items, n);
    store_close(b);
    store_close(a);
}

static int count_events(struct store *s, const char *event)
{
    struct store_outbox_item items[32];
    int n = 0, k = 0;
    assert_int_equal(store_outbox_list(s, -1, items, 32, &n), 0);
    for (int i = 0; i < n; i++)
        k += !strcmp(items[i].event, event);
    store_outbox_clear(items, n);
    return k;
}

static void test_events_in_the_change_transaction(void **state)
{
    (void)state;
    char *err = NULL;
    const char *kv[] = {"webhook-url",
                        "https://crm.example.com/hook",
                        "webhook-secret",
                        "s",
                        "webhook-endpoints",
                        "https://b.example.com/x events=conversation.closed",
                        NULL};
    struct webhook *wh = from_settings(kv, &err);
    assert_non_null(wh);
    struct store *s = store_open(testlib_db, NULL, &err);
    assert_non_null(s);
    webhook_observe(wh, s);

    struct store_conversation c;
    memset(&c, 0, sizeof c);
    assert_int_equal(store_conversation_create(s, &c), 0);
    assert_int_equal(count_events(s, "conversation.created"), 1);

    /* A handoff undone with its unit of work leaves no event. */
    assert_int_equal(store_mark(s), 0);
    c.state = STORE_STATE_QUEUED;
    snprintf(c.queue, sizeof c.queue, "billing");
    assert_int_equal(store_conversation_update(s, &c), 0);
    assert_int_equal(count_events(s, "conversation.handoff"), 1);
    store_mark_undo(s);
    assert_int_equal(count_events(s, "conversation.handoff"), 0);
    assert_int_equal(store_commit(s), 0);

    /* Kept: one each, and the closed event for both endpoints. */
    assert_int_equal(store_conversation_update(s, &c), 0);
    assert_int_equal(count_events(s, "conversation.handoff"), 1);
    assert_int_equal(store_conversation_update(s, &c), 0); /* no state change: no event */
    assert_int_equal(count_events(s, "conversation.handoff"), 1);
    assert_int_equal(store_conversation_claim(s, c.id, 7, 1000), 0);
    assert_int_equal(count_events(s, "conversation.assigned"), 1);
    testlib_message(s, c.id, STORE_SENDER_CUSTOMER, 0, "my card **** **** **** 4242", NULL);
    assert_int_equal(count_events(s, "message.created"), 1);
    assert_int_equal(store_conversation_get(s, c.id, &c), 0);
    c.state = STORE_STATE_CLOSED;
    snprintf(c.disposition, sizeof c.disposition, "refund");
    assert_int_equal(store_conversation_update(s, &c), 0);
    assert_int_equal(count_events(s, "conversation.closed"), 2);
    c.state = STORE_STATE_RATED;
    c.rating = 4;
    assert_int_equal(store_conversation_update(s, &c), 0);
    assert_int_equal(count_events(s, "conversation.rated"), 1);
    assert_int_equal(count_events(s, "conversation.closed"), 2);
    store_conversation_clear(&c);
    store_close(s);
    webhook_free(wh);
}

/* Publishes article id through webhook_kb_put() (new, so with its event); returns its result. */
static int publish(struct webhook *wh, struct kb *kb, struct store *s, const char *id)
{
    struct kb_article a;
    memset(&a, 0, sizeof a);
    a.id = (char *)id;
    a.title = "Returns";
    a.lang = "en";
    a.body = "Send it back within 30 days.";
    a.is_published = 1;
    char why[200];
    return webhook_kb_put(wh, kb, s, &a, 0, why, sizeof why);
}

/* article.published goes into the store's outbox with its article, whether the KB shares the
 * store's SQLite file (the article's own transaction) or not (PostgreSQL, a KB file apart: a
 * unit of work of the store around the article's write); a refused article leaves no event,
 * and inside the caller's open group it leaves the group alive. */
static void test_article_event(void **state)
{
    (void)state;
    char *err = NULL;
    const char *kv[] = {"webhook-url", "https://crm.example.com/hook", "webhook-secret", "s", NULL};
    struct webhook *wh = from_settings(kv, &err);
    assert_non_null(wh);
    struct store *s = store_open(testlib_db, NULL, &err);
    assert_non_null(s);
    char kb_apart[256];
    testlib_remove_db(testlib_db_path(kb_apart, sizeof kb_apart, "webhook-kb"));
    const char *kb_paths[2] = {kb_apart, testlib_db};
    int n_kbs = store_target_is_postgres(testlib_db) ? 1 : 2;
    int n_events = 0;
    for (int k = 0; k < n_kbs; k++) {
        struct kb *kb = kb_open(kb_paths[k], &err);
        assert_non_null(kb);
        char id[32];
        snprintf(id, sizeof id, "returns-%d", k);
        assert_int_equal(publish(wh, kb, s, id), 0);
        assert_int_equal(count_events(s, "article.published"), ++n_events);
        struct kb_article got;
        assert_int_equal(kb_get(kb, id, &got), 0);
        kb_article_clear(&got);
        assert_int_equal(publish(wh, kb, s, "Not A Slug"), CD_EINVAL);
        assert_int_equal(count_events(s, "article.published"), n_events);
        kb_close(kb);
    }
    /* Inside an open group (the KB apart). */
    struct kb *kb = kb_open(kb_apart, &err);
    assert_non_null(kb);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(publish(wh, kb, s, "Not A Slug"), CD_EINVAL);
    assert_int_equal(publish(wh, kb, s, "exchanges"), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(count_events(s, "article.published"), n_events + 1);
    kb_close(kb);
    testlib_remove_db(kb_apart);
    store_close(s);
    webhook_free(wh);
}

#define T(f) TESTLIB_ON_SQLITE(f)
#define P(f) TESTLIB_ON_PG(f)

int main(void)
{
    const struct CMUnitTest on_sqlite[] = {
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_settings),
        T(test_outbox_order),
        T(test_outbox_claim),
        T(test_events_in_the_change_transaction),
        T(test_article_event),
    };
    const struct CMUnitTest on_postgres[] = {
        P(test_outbox_order),
        P(test_outbox_claim),
        P(test_events_in_the_change_transaction),
        P(test_article_event),
    };
    TESTLIB_RUN_BOTH("webhook", on_sqlite, on_postgres, NULL);
}
