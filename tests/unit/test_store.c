/* Tests for the store (store.h): round trips, idempotent appends, group commit
 * visibility, claims, migrations from every earlier version, statistics,
 * export, erasure and retention. One conformance suite: every test that is about store.h's
 * contract runs on SQLite and again on PostgreSQL (a throwaway cluster, see testlib.h), and
 * the tests of several nodes on one PostgreSQL database follow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include "../../src/sql.h"

#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int64_t new_conversation(struct store *s, unsigned char fill, const char *email)
{
    struct store_conversation c;
    memset(&c, 0, sizeof c);
    memset(c.token_hash, fill, sizeof c.token_hash);
    snprintf(c.lang, sizeof c.lang, "en");
    c.customer_email = (char *)email;
    c.customer_name = "Sam";
    assert_int_equal(store_conversation_create(s, &c), 0);
    assert_true(c.id > 0);
    return c.id;
}

/* Puts conversation id in the queue (queued at 90 s), as a handoff does. */
static void enqueue(struct store *s, int64_t id)
{
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    c.state = STORE_STATE_QUEUED;
    c.queued_s = 90;
    assert_int_equal(store_conversation_update(s, &c), 0);
    store_conversation_clear(&c);
}

static int64_t append(struct store *s, int64_t conv, int sender, const char *client_id,
                      const char *text)
{
    struct store_message m = testlib_message_of(conv, sender, client_id, NULL, text);
    int rc = store_message_append(s, &m);
    assert_true(rc == 0 || rc == CD_EEXIST);
    return rc == CD_EEXIST ? -m.seq : m.seq;
}

static void test_open_version(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    store_close(s);
    /* Re-opening an up-to-date database changes nothing. */
    s = testlib_store(testlib_db);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    store_close(s);
}

static void test_open_bad_path(void **state)
{
    (void)state;
    char *err = NULL;
    struct store *s = store_open("/nonexistent-dir/x/y.db", NULL, &err);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "/nonexistent-dir/x/y.db"));
    free(err);
    store_close(NULL);
}

static void test_conversation_round_trip(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t id = new_conversation(s, 0xab, "sam@example.com");
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    assert_int_equal(c.state, STORE_STATE_BOT);
    assert_string_equal(c.customer_email, "sam@example.com");
    assert_string_equal(c.customer_name, "Sam");
    assert_null(c.customer_page);
    assert_int_equal(c.last_seq, 0);
    c.state = STORE_STATE_CLOSED;
    snprintf(c.queue, sizeof c.queue, "billing");
    snprintf(c.disposition, sizeof c.disposition, "refund");
    c.note = strdup("refunded the double charge");
    c.rating = 4;
    c.closed_s = 1234;
    assert_int_equal(store_conversation_update(s, &c), 0);
    store_conversation_clear(&c);

    unsigned char hash[STORE_HASH_LEN];
    memset(hash, 0xab, sizeof hash);
    assert_int_equal(store_conversation_by_token(s, hash, &c), 0);
    assert_int_equal(c.id, id);
    assert_int_equal(c.state, STORE_STATE_CLOSED);
    assert_string_equal(c.queue, "billing");
    assert_string_equal(c.disposition, "refund");
    assert_string_equal(c.note, "refunded the double charge");
    assert_int_equal(c.rating, 4);
    store_conversation_clear(&c);

    memset(hash, 0xcd, sizeof hash);
    assert_int_equal(store_conversation_by_token(s, hash, &c), CD_ENOTFOUND);
    assert_int_equal(store_conversation_get(s, 999999, &c), CD_ENOTFOUND);
    c.id = 999999;
    assert_int_equal(store_conversation_update(s, &c), CD_ENOTFOUND);
    assert_int_equal(store_conversation_update_triage(s, &c), CD_ENOTFOUND);
    store_close(s);
}

/* A bot reply's update writes state, intent and confidence, and nothing else. */
static void test_conversation_update_triage(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t id = new_conversation(s, 0xac, "kim@example.com");
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    c.state = STORE_STATE_CLARIFYING;
    snprintf(c.intent, sizeof c.intent, "returns");
    c.confidence = 0.625;
    snprintf(c.queue, sizeof c.queue, "billing"); /* not written by this call */
    c.rating = 5;
    assert_int_equal(store_conversation_update_triage(s, &c), 0);
    store_conversation_clear(&c);
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    assert_int_equal(c.state, STORE_STATE_CLARIFYING);
    assert_string_equal(c.intent, "returns");
    assert_true(c.confidence == 0.625);
    assert_string_equal(c.queue, "");
    assert_int_equal(c.rating, 0);
    assert_string_equal(c.customer_email, "kim@example.com");
    assert_string_equal(c.customer_name, "Sam");
    store_conversation_clear(&c);
    store_close(s);
}

struct collected {
    int64_t seqs[64];
    char texts[64][64];
    int senders[64];
    int n;
};

static int collect(void *ctx, const struct store_message *m)
{
    struct collected *c = ctx;
    if (c->n < 64) {
        c->seqs[c->n] = m->seq;
        c->senders[c->n] = m->sender;
        snprintf(c->texts[c->n], sizeof c->texts[0], "%s", m->text);
        c->n++;
    }
    return 0;
}

/* A bot reply and the triage columns it sets, in one call: both are stored, nothing else
 * changes; a reply to no conversation stores neither. */
static void test_append_triage(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t id = new_conversation(s, 0xad, NULL);
    assert_int_equal(append(s, id, STORE_SENDER_CUSTOMER, "q1", "where is my parcel"), 1);
    struct store_conversation next;
    memset(&next, 0, sizeof next);
    next.id = id;
    next.state = STORE_STATE_CLARIFYING;
    snprintf(next.intent, sizeof next.intent, "order_status");
    next.confidence = 0.375;
    snprintf(next.queue, sizeof next.queue, "orders"); /* not written */
    struct store_message m =
        testlib_message_of(id, STORE_SENDER_BOT, NULL, "q1", "Which order do you mean?");
    m.meta = "{\"action\":\"clarify\"}";
    assert_int_equal(store_message_append_triage(s, &m, &next), 0);
    assert_int_equal(m.seq, 2);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    assert_int_equal(c.state, STORE_STATE_CLARIFYING);
    assert_string_equal(c.intent, "order_status");
    assert_true(c.confidence == 0.375);
    assert_string_equal(c.queue, "");
    assert_int_equal(c.last_seq, 2);
    store_conversation_clear(&c);
    struct collected got = {0};
    assert_int_equal(store_message_by_client_id(s, id, "q1", collect, &got), 0);
    assert_int_equal(got.n, 2); /* the question, then its reply */
    assert_int_equal(got.seqs[1], 2);
    assert_string_equal(got.texts[1], "Which order do you mean?");

    m = testlib_message_of(id + 1000, STORE_SENDER_BOT, NULL, NULL, "lost");
    next.id = id + 1000;
    assert_int_equal(store_mark(s), 0);
    assert_int_equal(store_message_append_triage(s, &m, &next), CD_ENOTFOUND);
    store_mark_undo(s);
    assert_int_equal(append(s, id, STORE_SENDER_BOT, NULL, "still fine"), 3);
    store_close(s);
}

/* Marks a unit of work in s and sends q ahead in it (PostgreSQL), which must go. */
static void mark_and_send(struct store *s, struct store_message *q)
{
    assert_int_equal(store_mark(s), 0);
    assert_int_equal(store_message_send(s, q), 0);
}

/* A customer message sent ahead at the seq the caller expects is stored there, read back
 * with the next write's round trip; at a seq that is taken, or with a client id stored
 * before, nothing is stored and the caller hears CD_EBUSY. SQLite does not send ahead. */
static void test_send_ahead(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t id = new_conversation(s, 0xae, NULL);
    struct store_message q =
        testlib_message_of(id, STORE_SENDER_CUSTOMER, "k1", NULL, "my order is late");
    q.seq = 1;
    assert_int_equal(store_mark(s), 0);
    int sent = store_message_send(s, &q);
    if (!store_target_is_postgres(testlib_db)) {
        assert_int_equal(sent, 1);
        store_mark_undo(s);
        store_close(s);
        return;
    }
    assert_int_equal(sent, 0);
    /* The reply's round trip carries the question's result. */
    assert_int_equal(append(s, id, STORE_SENDER_BOT, NULL, "Let me look."), 2);
    assert_int_equal(store_message_sent(s, &q), 0);
    assert_int_equal(q.seq, 1);
    store_mark_release(s);
    assert_int_equal(store_commit(s), 0);

    /* The same client id again: not stored, nothing else changes. */
    q.seq = 3;
    mark_and_send(s, &q);
    assert_int_equal(store_message_sent(s, &q), CD_EBUSY);
    store_mark_undo(s);
    /* ... also when the bot's reply would go with it: neither is stored. */
    mark_and_send(s, &q);
    struct store_message r = testlib_message_of(id, STORE_SENDER_BOT, NULL, "k1", "Again?");
    assert_int_equal(store_message_append(s, &r), CD_EBUSY);
    assert_int_equal(store_message_sent(s, &q), CD_EBUSY);
    store_mark_undo(s);
    /* A seq another writer took: not stored. */
    snprintf(q.client_id, sizeof q.client_id, "k2");
    q.seq = 2;
    mark_and_send(s, &q);
    assert_int_equal(store_message_sent(s, &q), CD_EBUSY);
    store_mark_undo(s);
    struct collected got = {0};
    assert_int_equal(store_messages_after(s, id, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.texts[0], "my order is late");
    assert_string_equal(got.texts[1], "Let me look.");
    /* At the right seq it is stored, read by its own step when no write carried it. */
    q.seq = 3;
    mark_and_send(s, &q);
    assert_int_equal(store_message_sent(s, &q), 0);
    store_mark_release(s);
    assert_int_equal(append(s, id, STORE_SENDER_BOT, NULL, "Found it."), 4);
    store_close(s);
}

static void test_messages_seq_and_idempotency(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 1, NULL);
    int64_t b = new_conversation(s, 2, NULL);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "hello"), 1);
    assert_int_equal(append(s, a, STORE_SENDER_BOT, NULL, "hi there"), 2);
    assert_int_equal(append(s, b, STORE_SENDER_CUSTOMER, "m1", "other"), 1);
    /* The same client id again is not stored twice: its seq comes back. */
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "hello"), -1);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m2", "more"), 3);

    struct collected got = {0};
    assert_int_equal(store_messages_after(s, a, 0, 100, collect, &got), 0);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.seqs[0], 1);
    assert_int_equal(got.seqs[2], 3);
    assert_string_equal(got.texts[1], "hi there");
    assert_int_equal(got.senders[1], STORE_SENDER_BOT);
    memset(&got, 0, sizeof got);
    assert_int_equal(store_messages_after(s, a, 1, 1, collect, &got), 0);
    assert_int_equal(got.n, 1); /* bounded */
    assert_int_equal(got.seqs[0], 2);

    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, a, &c), 0);
    assert_int_equal(c.last_seq, 3);
    store_conversation_clear(&c);

    /* A message for a conversation that does not exist. */
    struct store_message m = testlib_message_of(424242, STORE_SENDER_CUSTOMER, NULL, NULL, "x");
    assert_int_equal(store_message_append(s, &m), CD_ENOTFOUND);
    store_close(s);
}

static void test_append_with_seq_hint(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 8, NULL);
    struct store_message m = testlib_message_of(a, STORE_SENDER_CUSTOMER, NULL, NULL, "one");
    m.seq = 1; /* the right hint */
    assert_int_equal(store_message_append(s, &m), 0);
    assert_int_equal(m.seq, 1);
    m.seq = 1; /* a stale hint: the store finds the next seq itself */
    m.text = "two";
    assert_int_equal(store_message_append(s, &m), 0);
    assert_int_equal(m.seq, 2);
    /* A known client id with a hint is still a duplicate. */
    m = testlib_message_of(a, STORE_SENDER_CUSTOMER, "c3", NULL, "three");
    m.seq = 3;
    assert_int_equal(store_message_append(s, &m), 0);
    m.seq = 4;
    assert_int_equal(store_message_append(s, &m), CD_EEXIST);
    assert_int_equal(m.seq, 3);
    m.seq = 2; /* stale hint and duplicate id */
    assert_int_equal(store_message_append(s, &m), CD_EEXIST);
    assert_int_equal(m.seq, 3);
    struct collected got = {0};
    assert_int_equal(store_messages_after(s, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(got.seqs[i], i + 1);
    m = testlib_message_of(999999, STORE_SENDER_CUSTOMER, NULL, NULL, "x");
    m.seq = 1;
    assert_int_equal(store_message_append(s, &m), CD_ENOTFOUND);
    store_close(s);
}

static void test_message_by_client_id(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 3, NULL);
    append(s, a, STORE_SENDER_CUSTOMER, "q1", "how do I return shoes");
    struct store_message m = testlib_message_of(a, STORE_SENDER_BOT, NULL, "q1", "within 30 days");
    m.meta = "{\"action\":\"answer\"}";
    assert_int_equal(store_message_append(s, &m), 0);
    struct collected got = {0};
    assert_int_equal(store_message_by_client_id(s, a, "q1", collect, &got), 0);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.senders[0], STORE_SENDER_CUSTOMER);
    assert_int_equal(got.senders[1], STORE_SENDER_BOT);
    assert_string_equal(got.texts[1], "within 30 days");
    assert_int_equal(store_message_by_client_id(s, a, "nope", collect, &got), CD_ENOTFOUND);
    store_close(s);
}

/* The questions the triage scored, newest first: a customer message whose next message is
 * the bot's reply marked "scored", not one an agent answered, nor one the bot replied to
 * without scoring it (a detail it asked for), nor the bot's or an agent's own; each with
 * its conversation's language; max of them; the callback can stop the walk. */
struct questions {
    char text[8][64], lang[8][8];
    int n, stop_at;
};

static int keep_question(void *ctx, const char *text, const char *lang)
{
    struct questions *q = ctx;
    if (q->stop_at && q->n == q->stop_at)
        return CD_ENOMEM;
    snprintf(q->text[q->n], sizeof q->text[q->n], "%s", text);
    snprintf(q->lang[q->n++], sizeof q->lang[0], "%s", lang);
    return 0;
}

static void test_recent_questions(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    struct questions q = {0};
    assert_int_equal(store_recent_questions(s, 10, keep_question, &q), 0);
    assert_int_equal(q.n, 0);
    int64_t a = new_conversation(s, 7, NULL), b = new_conversation(s, 8, NULL);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, b, &c), 0);
    snprintf(c.lang, sizeof c.lang, "es");
    assert_int_equal(store_conversation_update(s, &c), 0);
    store_conversation_clear(&c);
    const char *scored = "{\"action\":\"answer\",\"scored\":true}";
    append(s, a, STORE_SENDER_CUSTOMER, "a1", "where is my order");
    testlib_message(s, a, STORE_SENDER_BOT, 0, "Track it under Orders.", scored);
    append(s, b, STORE_SENDER_CUSTOMER, "b1", "hola");
    testlib_message(s, b, STORE_SENDER_BOT, 0, "Hola, dime.", scored);
    append(s, a, STORE_SENDER_CUSTOMER, "a4", "NW-12345"); /* the order number it asked for */
    testlib_message(s, a, STORE_SENDER_BOT, 0, "Thank you.", "{\"action\":\"handoff\"}");
    append(s, a, STORE_SENDER_CUSTOMER, "a2", "I want a person");
    testlib_message(s, a, STORE_SENDER_BOT, 0, "Someone will be with you.", scored);
    append(s, a, STORE_SENDER_CUSTOMER, "a3", "hello? still there"); /* for the agent */
    append(s, a, STORE_SENDER_AGENT, NULL, "Hi, I am Ana.");
    append(s, b, STORE_SENDER_CUSTOMER, "b2", "sin respuesta"); /* not replied to yet */
    assert_int_equal(store_recent_questions(s, 10, keep_question, &q), 0);
    assert_int_equal(q.n, 3);
    assert_string_equal(q.text[0], "I want a person");
    assert_string_equal(q.lang[0], "en");
    assert_string_equal(q.text[1], "hola");
    assert_string_equal(q.lang[1], "es");
    assert_string_equal(q.text[2], "where is my order");
    memset(&q, 0, sizeof q);
    assert_int_equal(store_recent_questions(s, 2, keep_question, &q), 0);
    assert_int_equal(q.n, 2);
    assert_string_equal(q.text[1], "hola");
    memset(&q, 0, sizeof q);
    q.stop_at = 1;
    assert_int_equal(store_recent_questions(s, 10, keep_question, &q), CD_ENOMEM);
    assert_int_equal(q.n, 1);
    /* Only the last max x STORE_RECENT_SCAN messages are read: a long agent chat since puts
     * the bot's questions out of reach for a small max, not for a larger one. */
    for (int i = 0; i < STORE_RECENT_SCAN; i++)
        append(s, b, STORE_SENDER_AGENT, NULL, "still checking");
    memset(&q, 0, sizeof q);
    assert_int_equal(store_recent_questions(s, 1, keep_question, &q), 0);
    assert_int_equal(q.n, 0);
    assert_int_equal(store_recent_questions(s, 2, keep_question, &q), 0);
    assert_int_equal(q.n, 2);
    assert_string_equal(q.text[0], "I want a person");
    store_close(s);
}

static void test_group_commit_visibility(void **state)
{
    (void)state;
    struct store *w = testlib_store(testlib_db);
    struct store *r = testlib_store(testlib_db);
    int64_t a = new_conversation(w, 4, NULL);
    assert_int_equal(store_begin(w), 0);
    assert_int_equal(store_begin(w), 0); /* nested begin is a no-op */
    assert_true(store_in_transaction(w));
    append(w, a, STORE_SENDER_CUSTOMER, "m1", "one");
    append(w, a, STORE_SENDER_CUSTOMER, "m2", "two");
    struct collected got = {0};
    assert_int_equal(store_messages_after(r, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 0); /* not visible before the commit */
    assert_int_equal(store_commit(w), 0);
    assert_false(store_in_transaction(w));
    assert_int_equal(store_messages_after(r, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 2);

    /* A rolled-back group leaves nothing. */
    assert_int_equal(store_begin(w), 0);
    append(w, a, STORE_SENDER_CUSTOMER, "m3", "three");
    store_rollback(w);
    memset(&got, 0, sizeof got);
    assert_int_equal(store_messages_after(r, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 2);
    assert_int_equal(store_commit(w), 0); /* nothing open: fine */
    store_close(r);
    store_close(w);
}

static void test_marks(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 7, NULL);
    /* One unit kept, one undone, one kept: the group holds the first and
     * the third, and the undone unit's seq is not skipped. */
    assert_int_equal(store_mark(s), 0);
    assert_true(store_in_transaction(s));
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "kept"), 1);
    store_mark_release(s);
    assert_int_equal(store_mark(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m2", "undone"), 2);
    assert_int_equal(append(s, a, STORE_SENDER_BOT, NULL, "undone too"), 3);
    store_mark_undo(s);
    assert_int_equal(store_mark(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m3", "kept too"), 2);
    store_mark_release(s);
    assert_int_equal(store_commit(s), 0);
    struct collected got = {0};
    assert_int_equal(store_messages_after(s, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.texts[0], "kept");
    assert_string_equal(got.texts[1], "kept too");
    /* The undone client id can be stored later. */
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m2", "again"), 3);
    store_mark_release(s); /* nothing marked: harmless */
    store_mark_undo(s);
    store_close(s);
}

static void test_close_commits_open_group(void **state)
{
    (void)state;
    /* store_close commits what is open: nothing told to a client is lost. */
    struct store *w = testlib_store(testlib_db);
    int64_t a = new_conversation(w, 5, NULL);
    assert_int_equal(store_begin(w), 0);
    append(w, a, STORE_SENDER_CUSTOMER, "m1", "kept");
    store_close(w);
    struct store *r = testlib_store(testlib_db);
    struct collected got = {0};
    assert_int_equal(store_messages_after(r, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 1);
    store_close(r);
}

static void test_claim_once(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 6, NULL);
    assert_int_equal(store_conversation_claim(s, a, 7, 100), CD_EBUSY); /* not queued */
    enqueue(s, a);
    struct store_conversation c;
    assert_int_equal(store_conversation_claim(s, a, 7, 100), 0);
    assert_int_equal(store_conversation_claim(s, a, 8, 101), CD_EBUSY);
    assert_int_equal(store_conversation_claim(s, 99999, 8, 101), CD_ENOTFOUND);
    assert_int_equal(store_conversation_get(s, a, &c), 0);
    assert_int_equal(c.state, STORE_STATE_WITH_AGENT);
    assert_int_equal(c.agent_id, 7);
    assert_int_equal(c.picked_s, 100);
    store_conversation_clear(&c);
    store_close(s);
}

static int count_open(void *ctx, const struct store_conversation *c)
{
    int *n = ctx;
    assert_true(c->state == STORE_STATE_QUEUED || c->state == STORE_STATE_WITH_AGENT);
    (*n)++;
    return 0;
}

static void test_open_conversations_and_history(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = new_conversation(s, (unsigned char)(10 + i), "Pat@Example.com");
        struct store_conversation c;
        assert_int_equal(store_conversation_get(s, ids[i], &c), 0);
        c.state = i < 2 ? STORE_STATE_QUEUED : STORE_STATE_RATED;
        snprintf(c.intent, sizeof c.intent, "returns");
        assert_int_equal(store_conversation_update(s, &c), 0);
        store_conversation_clear(&c);
    }
    int n = 0;
    assert_int_equal(store_conversations_open(s, 100, count_open, &n), 0);
    assert_int_equal(n, 2);
    struct store_history_item h[10];
    assert_int_equal(store_conversations_by_email(s, "pat@example.com", ids[3], h, 10, &n), 0);
    assert_int_equal(n, 3);                      /* case-insensitive, excluding the current one */
    assert_int_equal(h[0].conversation, ids[2]); /* newest first */
    assert_string_equal(h[0].intent, "returns");
    assert_int_equal(store_conversations_by_email(s, "pat@example.com", 0, h, 2, &n), 0);
    assert_int_equal(n, 2);
    store_close(s);
}

static void test_users(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    struct store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "ana");
    snprintf(u.role, sizeof u.role, "agent");
    snprintf(u.skills, sizeof u.skills, "billing,orders");
    memset(u.token_hash, 0x11, sizeof u.token_hash);
    assert_int_equal(store_user_add(s, &u), 0);
    struct store_user dup = u;
    memset(dup.token_hash, 0x12, sizeof dup.token_hash);
    assert_int_equal(store_user_add(s, &dup), CD_EEXIST);
    struct store_user bad = u;
    snprintf(bad.name, sizeof bad.name, "bo");
    snprintf(bad.role, sizeof bad.role, "root");
    memset(bad.token_hash, 0x13, sizeof bad.token_hash);
    assert_int_equal(store_user_add(s, &bad), CD_EEXIST); /* CHECK constraint */
    struct store_user got;
    unsigned char h[STORE_HASH_LEN];
    memset(h, 0x11, sizeof h);
    assert_int_equal(store_user_by_token(s, h, &got), 0);
    assert_string_equal(got.name, "ana");
    assert_string_equal(got.skills, "billing,orders");
    assert_int_equal(store_user_get(s, u.id, &got), 0);
    struct store_user list[4];
    int n = 0;
    assert_int_equal(store_user_list(s, list, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_user_remove(s, "ana"), 0);
    assert_int_equal(store_user_remove(s, "ana"), CD_ENOTFOUND);
    assert_int_equal(store_user_by_token(s, h, &got), CD_ENOTFOUND);
    store_close(s);
}

/* Sets the timestamps of a conversation for the statistics test. */
static void set_conv(struct store *s, int64_t id, int state, const char *queue, const char *intent,
                     int64_t queued_s, int64_t picked_s, int rating, const char *disposition)
{
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    c.state = state;
    snprintf(c.queue, sizeof c.queue, "%s", queue);
    snprintf(c.intent, sizeof c.intent, "%s", intent);
    c.queued_s = queued_s;
    c.picked_s = picked_s;
    c.rating = rating;
    snprintf(c.disposition, sizeof c.disposition, "%s", disposition);
    assert_int_equal(store_conversation_update(s, &c), 0);
    store_conversation_clear(&c);
}

static void test_stats(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t now = cd_wall_s();
    int64_t ids[6];
    for (int i = 0; i < 6; i++) {
        ids[i] = new_conversation(s, (unsigned char)(30 + i), NULL);
        append(s, ids[i], STORE_SENDER_CUSTOMER, "m1", "question");
    }
    new_conversation(s, 40, NULL); /* no customer message: not counted */
    /* 3 resolved by the bot, 3 handed off: waits 10, 30, 100 s (target 60). */
    set_conv(s, ids[0], STORE_STATE_RATED, "", "returns", 0, 0, 5, "");
    set_conv(s, ids[1], STORE_STATE_CLOSED, "", "returns", 0, 0, 0, "");
    set_conv(s, ids[2], STORE_STATE_CLOSED, "", "shipping", 0, 0, 0, "");
    set_conv(s, ids[3], STORE_STATE_RATED, "billing", "billing_dispute", now, now + 10, 2,
             "refund");
    set_conv(s, ids[4], STORE_STATE_CLOSED, "billing", "billing_dispute", now, now + 30, 0,
             "refund");
    set_conv(s, ids[5], STORE_STATE_CLOSED, "orders", "order_status", now, now + 100, 4, "");
    store_unanswered_add(s, ids[3], "Why was I charged twice", "en", "", 0.2);
    store_unanswered_add(s, ids[4], "why was i charged twice", "en", "", 0.2);
    store_unanswered_add(s, ids[5], "where is my parcel", "en", "", 0.3);

    struct store_stats st;
    assert_int_equal(store_stats(s, now - 3600, now + 3600, 60, &st), 0);
    assert_int_equal(st.n_conversations, 6);
    assert_int_equal(st.n_bot_resolved, 3);
    assert_int_equal(st.n_handoffs, 3);
    assert_true(st.deflection_rate > 0.49 && st.deflection_rate < 0.51);
    assert_true(st.escalation_rate > 0.49 && st.escalation_rate < 0.51);
    assert_int_equal(st.n_picked, 3);
    assert_int_equal(st.n_within_target, 2);
    assert_true(st.median_wait_s > 29.9 && st.median_wait_s < 30.1);
    assert_int_equal(st.n_ratings, 3);
    assert_true(st.csat > 3.66 && st.csat < 3.67);
    assert_int_equal(st.n_by_queue, 2);
    assert_string_equal(st.by_queue[0].name, "billing");
    assert_int_equal(st.by_queue[0].n, 2);
    /* Drivers: disposition if set, else intent: refund 2, returns 2, ... */
    assert_true(st.n_drivers >= 3);
    assert_int_equal(st.drivers[0].n, 2);
    assert_int_equal(st.n_unanswered, 2);
    assert_int_equal(st.unanswered[0].n, 2);

    /* An empty window. */
    assert_int_equal(store_stats(s, now + 7200, now + 9000, 60, &st), 0);
    assert_int_equal(st.n_conversations, 0);
    assert_true(st.deflection_rate == 0.0);

    /* The unanswered list: most asked first, any case counts once, bounded. */
    struct store_unanswered u[4];
    int n = -1;
    assert_int_equal(store_unanswered_list(s, 0, u, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(strcasecmp(u[0].question, "why was i charged twice"), 0);
    assert_int_equal(u[0].n, 2);
    assert_string_equal(u[0].lang, "en");
    assert_true(u[0].last_s >= now && u[0].last_s <= now + 60);
    assert_string_equal(u[1].question, "where is my parcel");
    store_unanswered_clear(u, n);
    assert_int_equal(store_unanswered_list(s, 0, u, 1, &n), 0);
    assert_int_equal(n, 1);
    store_unanswered_clear(u, n);
    assert_int_equal(store_unanswered_list(s, now + 3600, u, 4, &n), 0);
    assert_int_equal(n, 0);
    /* Taught: every record of the question goes, in any case; others stay. */
    assert_int_equal(store_unanswered_resolve(s, "WHY WAS I CHARGED TWICE"), 2);
    assert_int_equal(store_unanswered_resolve(s, "never asked"), 0);
    assert_int_equal(store_unanswered_list(s, 0, u, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(u[0].question, "where is my parcel");
    store_unanswered_clear(u, n);
    assert_int_equal(store_unanswered_list(NULL, 0, u, 4, &n), CD_EINVAL);
    store_close(s);
}

static void test_export_erase_retention(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 50, "erase.me@example.com");
    int64_t b = new_conversation(s, 51, "ERASE.ME@example.com");
    int64_t keep = new_conversation(s, 52, "keep@example.com");
    append(s, a, STORE_SENDER_CUSTOMER, "m1", "my \"quoted\" question");
    append(s, b, STORE_SENDER_CUSTOMER, "m1", "other");
    append(s, keep, STORE_SENDER_CUSTOMER, "m1", "stay");
    store_feedback_add(s, a, 1, 1, "returns", "q");

    struct cd_buf out = {0};
    assert_int_equal(store_export_conversation(s, a, &out), 0);
    assert_non_null(strstr(out.data, "\"conversation\":"));
    assert_non_null(strstr(out.data, "my \\\"quoted\\\" question"));
    assert_non_null(strstr(out.data, "erase.me@example.com"));
    cd_buf_free(&out);
    assert_int_equal(store_export_conversation(s, 987654, &out), CD_ENOTFOUND);

    int n = 0;
    assert_int_equal(store_erase_email(s, "erase.me@example.com", 0, &n), 0);
    assert_int_equal(n, 2);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, a, &c), CD_ENOTFOUND);
    struct collected got = {0};
    assert_int_equal(store_messages_after(s, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 0); /* messages went with it */
    assert_int_equal(store_conversation_get(s, keep, &c), 0);
    store_conversation_clear(&c);
    assert_int_equal(store_erase_email(s, "", 0, &n), CD_EINVAL);

    /* Retention deletes closed conversations older than the cut-off only. */
    set_conv(s, keep, STORE_STATE_CLOSED, "", "", 0, 0, 0, "");
    assert_int_equal(store_conversation_get(s, keep, &c), 0);
    c.closed_s = 1000;
    assert_int_equal(store_conversation_update(s, &c), 0);
    store_conversation_clear(&c);
    int64_t open_one = new_conversation(s, 53, NULL);
    assert_int_equal(store_retention(s, 2000, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_conversation_get(s, keep, &c), CD_ENOTFOUND);
    assert_int_equal(store_conversation_get(s, open_one, &c), 0);
    store_conversation_clear(&c);
    /* A retention run that deleted something says what in the audit log; one that deleted
     * nothing writes nothing. */
    assert_int_equal(store_retention(s, 2000, 100, &n), 0);
    assert_int_equal(n, 0);
    char text[256];
    assert_string_equal(testlib_sql_text(testlib_db,
                                         "SELECT count(*) FROM events WHERE kind = 'retention'",
                                         text, sizeof text),
                        "1");
    testlib_sql_text(testlib_db, "SELECT max(detail) FROM events WHERE kind = 'retention'", text,
                     sizeof text);
    assert_non_null(strstr(text, "\"conversations\":1"));
    store_close(s);
}

static void test_migrations_from_every_version(void **state)
{
    (void)state;
    for (int v = 1; v < STORE_SCHEMA_VERSION; v++) {
        testlib_db_sqlite(NULL);
        assert_int_equal(store_migrate_to(testlib_db, v), 0);
        /* Data written at version 1 survives every later migration. */
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(testlib_db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO conversations (id, token_hash, created_s)"
                                      " VALUES (7, x'00112233445566778899aabbccddeeff00112233"
                                      "445566778899aabbccddeeff', 1);"
                                      "INSERT INTO messages (conversation, seq, sender, text,"
                                      " created_s) VALUES (7, 1, 'customer', 'old', 1);",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), v);
        sqlite3_finalize(st);
        sqlite3_close(db);

        struct store *s = testlib_store(testlib_db);
        assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
        struct collected got = {0};
        assert_int_equal(store_messages_after(s, 7, 0, 10, collect, &got), 0);
        assert_int_equal(got.n, 1);
        assert_string_equal(got.texts[0], "old");
        assert_int_equal(append(s, 7, STORE_SENDER_BOT, NULL, "new"), 2);
        assert_int_equal(store_feedback_add(s, 7, 2, 1, NULL, "old"), 0);
        store_close(s);
    }
    assert_int_equal(store_migrate_to(testlib_db, 0), CD_EINVAL);
    assert_int_equal(store_migrate_to(testlib_db, STORE_SCHEMA_VERSION + 1), CD_EINVAL);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(testlib_db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char *err = NULL;
    struct store *s = store_open(testlib_db, NULL, &err);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    free(err);
}

static void test_durability_full(void **state)
{
    (void)state;
    struct store_options o = {.durability = STORE_DURABILITY_FULL, .busy_timeout_ms = 1000};
    struct store *s = store_open(testlib_db, &o, NULL);
    assert_non_null(s);
    int64_t a = new_conversation(s, 60, NULL);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "x"), 1);
    store_close(s);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* With checkpoint_thread, commits past the WAL threshold are copied back
 * by the store's own thread: the WAL is reused instead of growing with
 * everything written, and every message is there after reopening. */
static void test_checkpoint_thread(void **state)
{
    (void)state;
    struct store_options o = {.housekeeping_thread = 1, .housekeeping_batch = 200};
    struct store *s = store_open(testlib_db, &o, NULL);
    assert_non_null(s);
    assert_int_equal(store_housekeeping_runs(s), 0);
    int64_t a = new_conversation(s, 61, NULL);
    static char text[8192];
    memset(text, 'x', sizeof text - 1);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", testlib_db);
    int n = 0;
    long written = 0;
    /* About 3 WAL pages per message, 10 messages per group: enough for
     * several checkpoints, each woken at 200 pages, the WAL starting over by
     * 800 at the latest. */
    for (int round = 0; round < 200; round++) {
        assert_int_equal(store_begin(s), 0);
        for (int i = 0; i < 10; i++) {
            char id[32];
            snprintf(id, sizeof id, "c%d", ++n);
            assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, id, text), n);
            written += (long)sizeof text;
        }
        assert_int_equal(store_commit(s), 0);
        usleep(1000); /* lets the thread run on a busy machine */
    }
    for (int i = 0; i < 5000 && store_housekeeping_runs(s) < 2; i++)
        usleep(1000);
    assert_true(store_housekeeping_runs(s) >= 2);
    assert_true(file_size(wal) < written / 2);
    store_close(s);
    s = testlib_store(testlib_db);
    assert_int_equal(store_housekeeping_runs(s), 0); /* no thread without the option */
    struct collected got = {0};
    assert_int_equal(store_messages_after(s, a, n - 2, 10, collect, &got), 0);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.seqs[1], n);
    assert_int_equal(got.texts[1][0], 'x');
    store_close(s);
}

/* One mapping of SQLite result codes for the store and the KB (src/sql.h). */
static void test_sql_result_codes(void **state)
{
    (void)state;
    assert_int_equal(sql_rc(SQLITE_OK), 0);
    assert_int_equal(sql_rc(SQLITE_DONE), 0);
    assert_int_equal(sql_rc(SQLITE_NOMEM), CD_ENOMEM);
    assert_int_equal(sql_rc(SQLITE_FULL), CD_EFULL);
    assert_int_equal(sql_rc(SQLITE_BUSY_SNAPSHOT), CD_EBUSY); /* extended codes too */
    assert_int_equal(sql_rc(SQLITE_CONSTRAINT_UNIQUE), CD_EEXIST);
    assert_int_equal(sql_rc(SQLITE_TOOBIG), CD_ETOOBIG);
    assert_int_equal(sql_rc(SQLITE_IOERR_WRITE), CD_EIO);
}

/* An agent's capacity is counted in the store, so that it holds across nodes. */
static void test_claim_within_capacity(void **state)
{
    (void)state;
    struct store *n1 = testlib_store(testlib_db);
    struct store *n2 = testlib_store(testlib_db);
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = new_conversation(n1, (unsigned char)(80 + i), NULL);
        enqueue(n1, ids[i]);
    }
    assert_int_equal(store_conversation_claim_within(n1, ids[0], 9, 100, 2), 0);
    assert_int_equal(store_conversation_claim_within(n2, ids[1], 9, 100, 2), 0);
    assert_int_equal(store_conversation_claim_within(n1, ids[2], 9, 100, 2), CD_EPERM);
    assert_int_equal(store_conversation_claim_within(n2, ids[1], 10, 100, 2), CD_EBUSY);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(n2, ids[2], &c), 0);
    assert_int_equal(c.state, STORE_STATE_QUEUED); /* still waiting for someone else */
    store_conversation_clear(&c);
    assert_int_equal(store_conversation_claim_within(n2, ids[2], 10, 100, 2), 0);
    store_close(n2);
    store_close(n1);
}

/* A node whose copy is out of date does not undo another node's claim. */
static void test_update_if_unchanged(void **state)
{
    (void)state;
    struct store *n1 = testlib_store(testlib_db);
    struct store *n2 = testlib_store(testlib_db);
    int64_t a = new_conversation(n1, 90, NULL);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(n1, a, &c), 0);
    c.state = STORE_STATE_QUEUED;
    assert_int_equal(store_conversation_update_if(n1, &c, STORE_STATE_BOT, 0), 0);
    /* Node 2 claims; node 1, still seeing it queued, marks it offline. */
    assert_int_equal(store_conversation_claim_within(n2, a, 12, 100, 0), 0);
    c.is_offline = 1;
    assert_int_equal(store_conversation_update_if(n1, &c, STORE_STATE_QUEUED, 0), CD_EBUSY);
    store_conversation_clear(&c);
    assert_int_equal(store_conversation_get(n1, a, &c), 0);
    assert_int_equal(c.state, STORE_STATE_WITH_AGENT);
    assert_int_equal(c.agent_id, 12);
    assert_int_equal(c.is_offline, 0);
    /* Read again, the write goes through. */
    c.state = STORE_STATE_CLOSED;
    assert_int_equal(store_conversation_update_if(n1, &c, STORE_STATE_WITH_AGENT, 12), 0);
    c.id = 987654;
    assert_int_equal(store_conversation_update_if(n1, &c, STORE_STATE_CLOSED, 12), CD_ENOTFOUND);
    store_conversation_clear(&c);
    store_close(n2);
    store_close(n1);
}

/* A failed write inside a unit of work: the mark takes the group back, and the group goes on
 * (store.h's rule, the same on both backends). */
static void test_failed_write_undone_by_mark(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 70, NULL);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "before"), 1);
    assert_int_equal(store_mark(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m2", "undone"), 2);
    assert_int_equal(store_feedback_add(s, 424242, 1, 1, NULL, "q"), CD_ENOTFOUND);
    store_mark_undo(s);
    assert_int_equal(store_mark(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m3", "after"), 2);
    store_mark_release(s);
    assert_int_equal(store_commit(s), 0);
    struct collected got = {0};
    assert_int_equal(store_messages_after(s, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.texts[0], "before");
    assert_string_equal(got.texts[1], "after");
    /* An expected duplicate is no failure: the group goes on without a mark. */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "resent"), -1);
    struct store_user u = {.role = "agent"};
    snprintf(u.name, sizeof u.name, "sam");
    memset(u.token_hash, 1, sizeof u.token_hash);
    assert_int_equal(store_user_add(s, &u), 0);
    memset(u.token_hash, 2, sizeof u.token_hash);
    assert_int_equal(store_user_add(s, &u), CD_EEXIST);
    assert_int_equal(append(s, a, STORE_SENDER_BOT, NULL, "still fine"), 3);
    assert_int_equal(store_commit(s), 0);
    store_close(s);
}

/* PostgreSQL: a failed write outside a mark takes the whole group down, and says so. */
static void test_pg_failed_write_without_mark(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 71, NULL);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "lost"), 1);
    assert_int_equal(store_feedback_add(s, 424242, 1, 1, NULL, "q"), CD_ENOTFOUND);
    struct store_message m = {.conversation = a, .sender = STORE_SENDER_BOT, .text = "refused"};
    assert_int_equal(store_message_append(s, &m), CD_EIO);
    assert_int_equal(store_commit(s), CD_EIO);
    assert_false(store_in_transaction(s));
    struct collected got = {0};
    assert_int_equal(store_messages_after(s, a, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 0);
    /* The next group is a fresh one. */
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "kept"), 1);
    store_close(s);
}

/* Two nodes append to one conversation: the seqs come from the database, one after another,
 * whatever seq each node believed came next; a client id stored by one node is a duplicate
 * on the other. */
static void test_pg_seq_across_nodes(void **state)
{
    (void)state;
    struct store *n1 = testlib_store(testlib_db);
    struct store *n2 = testlib_store(testlib_db);
    int64_t a = new_conversation(n1, 72, NULL);
    struct store_message m = {.conversation = a, .sender = STORE_SENDER_CUSTOMER, .text = "one"};
    m.seq = 1;
    snprintf(m.client_id, sizeof m.client_id, "c1");
    assert_int_equal(store_message_append(n1, &m), 0);
    assert_int_equal(m.seq, 1);
    struct store_message r = {.conversation = a, .sender = STORE_SENDER_AGENT, .text = "two"};
    r.seq = 1; /* node 2's stale belief */
    assert_int_equal(store_message_append(n2, &r), 0);
    assert_int_equal(r.seq, 2);
    struct store_message b = {.conversation = a, .sender = STORE_SENDER_BOT, .text = "three"};
    b.seq = 2;
    assert_int_equal(store_message_append(n1, &b), 0);
    assert_int_equal(b.seq, 3);
    struct store_message again = {.conversation = a, .sender = STORE_SENDER_CUSTOMER};
    again.text = "one, resent to node 2";
    snprintf(again.client_id, sizeof again.client_id, "c1");
    assert_int_equal(store_message_append(n2, &again), CD_EEXIST);
    assert_int_equal(again.seq, 1);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(n2, a, &c), 0);
    assert_int_equal(c.last_seq, 3);
    store_conversation_clear(&c);
    store_close(n2);
    store_close(n1);
}

/* Two nodes claim one queued conversation: exactly one wins. */
static void test_pg_claim_across_nodes(void **state)
{
    (void)state;
    struct store *n1 = testlib_store(testlib_db);
    struct store *n2 = testlib_store(testlib_db);
    int64_t a = new_conversation(n1, 73, NULL);
    enqueue(n1, a);
    struct store_conversation c;
    assert_int_equal(store_conversation_claim(n2, a, 8, 100), 0);
    assert_int_equal(store_conversation_claim(n1, a, 7, 100), CD_EBUSY);
    assert_int_equal(store_conversation_get(n1, a, &c), 0);
    assert_int_equal(c.agent_id, 8);
    store_conversation_clear(&c);
    store_close(n2);
    store_close(n1);
}

/* The connection is cut (a PostgreSQL restart, a failover): calls fail with CD_EIO, and the
 * next group reconnects by itself. */
static void test_pg_reconnects(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t a = new_conversation(s, 74, NULL);
    assert_true(store_is_up(s));
    char text[64];
    testlib_sql_text(testlib_db,
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                     " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                     text, sizeof text);
    assert_string_equal(text, "1");
    struct store_conversation c;
    for (int i = 0; i < 100 && store_is_up(s); i++) {
        int rc = store_conversation_get(s, a, &c);
        if (rc == 0)
            store_conversation_clear(&c);
        else
            assert_int_equal(rc, CD_EIO);
        usleep(10000);
    }
    assert_false(store_is_up(s));
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(append(s, a, STORE_SENDER_CUSTOMER, "m1", "after the cut"), 1);
    assert_int_equal(store_commit(s), 0);
    assert_true(store_is_up(s));
    store_close(s);
}

/* PostgreSQL's schema starts whole at STORE_PG_FIRST_VERSION; a newer one is refused. */
static void test_pg_schema_versions(void **state)
{
    (void)state;
    assert_int_equal(store_migrate_to(testlib_db, STORE_PG_FIRST_VERSION - 1), CD_EINVAL);
    assert_int_equal(store_migrate_to(testlib_db, STORE_PG_FIRST_VERSION), 0);
    struct store *s = testlib_store(testlib_db);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    /* Migrated from the first version: an append's seq counter is no event for other
     * nodes, a queued conversation is one. */
    int64_t id = new_conversation(s, 0x42, NULL);
    assert_int_equal(append(s, id, STORE_SENDER_CUSTOMER, "c1", "hi"), 1);
    char text[8];
    testlib_sql_text(testlib_db, "SELECT count(*) FROM node_events WHERE kind = 'c'", text,
                     sizeof text);
    assert_string_equal(text, "0");
    enqueue(s, id);
    testlib_sql_text(testlib_db, "SELECT count(*) FROM node_events WHERE kind = 'c'", text,
                     sizeof text);
    assert_string_equal(text, "1");
    store_close(s);
    testlib_sql_text(testlib_db, "UPDATE caredesk_schema SET version = 99", text, sizeof text);
    char *err = NULL;
    s = store_open(testlib_db, NULL, &err);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    free(err);
}

#define T(f) TESTLIB_ON_SQLITE(f)

#define P(f) TESTLIB_ON_PG(f)

int main(void)
{
    const struct CMUnitTest on_sqlite[] = {
        cmocka_unit_test(test_sql_result_codes),
        T(test_open_version),
        T(test_open_bad_path),
        T(test_conversation_round_trip),
        T(test_conversation_update_triage),
        T(test_append_triage),
        T(test_send_ahead),
        T(test_messages_seq_and_idempotency),
        T(test_append_with_seq_hint),
        T(test_message_by_client_id),
        T(test_recent_questions),
        T(test_group_commit_visibility),
        T(test_close_commits_open_group),
        T(test_marks),
        T(test_claim_once),
        T(test_open_conversations_and_history),
        T(test_users),
        T(test_stats),
        T(test_export_erase_retention),
        T(test_migrations_from_every_version),
        T(test_newer_schema_refused),
        T(test_durability_full),
        T(test_checkpoint_thread),
        T(test_failed_write_undone_by_mark),
        T(test_claim_within_capacity),
        T(test_update_if_unchanged),
    };
    const struct CMUnitTest on_postgres[] = {
        P(test_open_version),
        P(test_conversation_round_trip),
        P(test_conversation_update_triage),
        P(test_append_triage),
        P(test_send_ahead),
        P(test_messages_seq_and_idempotency),
        P(test_append_with_seq_hint),
        P(test_message_by_client_id),
        P(test_recent_questions),
        P(test_group_commit_visibility),
        P(test_close_commits_open_group),
        P(test_marks),
        P(test_claim_once),
        P(test_open_conversations_and_history),
        P(test_users),
        P(test_stats),
        P(test_export_erase_retention),
        P(test_failed_write_undone_by_mark),
        P(test_claim_within_capacity),
        P(test_update_if_unchanged),
        P(test_pg_failed_write_without_mark),
        P(test_pg_seq_across_nodes),
        P(test_pg_claim_across_nodes),
        P(test_pg_reconnects),
        P(test_pg_schema_versions),
    };
    TESTLIB_RUN_BOTH("store", on_sqlite, on_postgres, NULL);
}
