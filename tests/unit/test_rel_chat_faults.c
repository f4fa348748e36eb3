/* Fault-injection test of the chat protocol over a failing disk: customers
 * and an agent talk through chat.h (a fake transport, the real store on a
 * file, the real triage) while the test VFS (fault_vfs.h) makes writes and
 * syncs fail with SQLITE_FULL or SQLITE_IOERR at many positions of the group
 * commits, once or until space returns.
 *
 * What must hold, checked after every turn and at the end: every customer
 * and agent message the client got a reply or ack for is in the transcript
 * with that seq, exactly once, in order; a message that got store_failed is
 * not stored until the client re-sends it (same id), and a re-send is
 * answered once; seqs are 1..n without gaps; PRAGMA integrity_check is ok.
 * Then a restart (new store and chat on the same file): customers resume
 * with last_seq and get exactly the messages after it, in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "chat.h"
#include "intents.h"
#include "store.h"
#include "triage.h"
#include "testlib.h"
#include "fault_vfs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_CUSTOMERS 8
#define MAX_SENT    256
#define AGENT_CONN  100
#define N_TURNS     120

struct sent {
    char id[16];
    int64_t seq;  /* of the reply or ack; 0 until one came */
    int is_reply; /* a bot reply (its own seq) rather than an ack (the message's seq) */
    int n_answers;
};

struct customer {
    uint64_t conn;
    int64_t conversation;
    char token[65];
    int is_welcomed;
    struct sent sent[MAX_SENT];
    int n_sent;
    int outstanding; /* index of the message awaiting an answer, -1 if none */
    int64_t max_seq; /* highest seq seen in any frame */
};

struct agent_msg {
    int64_t conversation;
    char id[16];
    int64_t seq;
    int n_acks;
};

struct world {
    struct customer cust[N_CUSTOMERS];
    struct agent_msg amsgs[MAX_SENT * 2];
    int n_amsgs;
    int agent_outstanding; /* index into amsgs, -1 if none */
    int64_t assigned[64];
    int n_assigned;
    int64_t claim_wanted[64];
    int n_claim_wanted;
    int64_t agent_id;
    uint64_t next_conn;
    long n_store_failed; /* store_failed errors seen */
    long n_faults;       /* injected faults */
};

static char db_path[128];
static char agent_token[AUTH_TOKEN_HEX + 1];
static struct store *store;
static struct triage *triage;
static struct chat *chat;
static struct world *w;

/* Frames from chat.c (testlib's fake transport, which fails the test on any close), kept
 * until the test reads them. */
static struct testlib_io io = {.is_close_fatal = 1};

/* Frame i, parsed; the caller decrefs. */
static json_t *frame_json(int i)
{
    json_t *o = json_loadb(io.frames[i].text, io.frames[i].len, 0, NULL);
    assert_non_null(o);
    return o;
}

static const char *const intent_defs =
    "[{\"name\":\"returns\",\"description\":\"Return an item\",\"examples\":[\"how do I return "
    "shoes\",\"return an item\",\"send back my purchase\",\"how to return a product\",\"I want "
    "to return this\"],\"patterns\":[\"return\"],\"response\":\"You can return any item within "
    "30 days.\"},"
    "{\"name\":\"human\",\"description\":\"Talk to a person\",\"examples\":[\"talk to a "
    "person\",\"I want a human\",\"agent please\",\"real person\"],\"patterns\":[\"human\","
    "\"real person\"],\"action\":\"handoff\",\"queue\":\"general\"},"
    "{\"name\":\"order_status\",\"description\":\"Where is my order?\",\"examples\":[\"where is "
    "my order\",\"track my package\",\"order status\",\"has my parcel shipped\"],\"patterns\":"
    "[\"where is my order\"],\"response\":\"Track your order from the Orders page.\"}]";

static const char *const texts[] = {
    "how do I return shoes",         "where is my order",     "my card 4111 1111 1111 1111",
    "¿puedo devolver esto? ñandú 🚚", "I want a human please", "thanks, and where is my order now",
    "send back my purchase",         "track my package",
};

static void remove_db(void)
{
    testlib_remove_db(db_path);
}

static void start(void)
{
    store = testlib_store(db_path);
    triage = testlib_triage(intent_defs);
    struct chat_settings settings;
    memset(&settings, 0, sizeof settings);
    struct chat_io cio = testlib_chat_io(&io);
    chat = chat_new(&settings, store, NULL, triage, &cio);
    assert_non_null(chat);
}

static void stop(void)
{
    chat_free(chat);
    triage_free(triage);
    store_close(store);
    chat = NULL;
    triage = NULL;
    store = NULL;
}

static int setup(void **state)
{
    assert_int_equal(fault_vfs_install(), SQLITE_OK);
    fault_vfs_disarm();
    testlib_db_path(db_path, sizeof db_path, "chat-faults");
    remove_db();
    w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->agent_outstanding = -1;
    w->next_conn = 1;
    for (int i = 0; i < N_CUSTOMERS; i++)
        w->cust[i].outstanding = -1;
    start();
    struct auth_user u;
    assert_int_equal(auth_user_create(store, "Ana", AUTH_ROLE_AGENT, "", agent_token, &u), 0);
    return 0;
}

static int teardown(void **state)
{
    fault_vfs_disarm();
    if (chat)
        stop();
    testlib_io_reset(&io);
    free(w);
    remove_db();
    return 0;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int64_t num(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static struct customer *customer_of(uint64_t conn)
{
    for (int i = 0; i < N_CUSTOMERS; i++)
        if (w->cust[i].conn == conn)
            return &w->cust[i];
    return NULL;
}

static void note_seq(struct customer *c, json_t *o)
{
    int64_t seq = num(o, "seq");
    if (seq > c->max_seq)
        c->max_seq = seq;
}

static void customer_frame(struct customer *c, json_t *o)
{
    const char *type = str(o, "type");
    if (!strcmp(type, "welcome")) {
        assert_false(c->is_welcomed);
        c->is_welcomed = 1;
        c->conversation = num(o, "conversation");
        snprintf(c->token, sizeof c->token, "%s", str(o, "token"));
        return;
    }
    if (!strcmp(type, "error")) {
        assert_string_equal(str(o, "code"), "store_failed");
        w->n_store_failed++;
        return; /* the outstanding message (if any) is re-sent next turn */
    }
    note_seq(c, o);
    if (!strcmp(type, "reply") || !strcmp(type, "ack")) {
        const char *reply_to = str(o, "reply_to");
        if (!*reply_to)
            return; /* a reply to a handoff request has no id */
        for (int i = 0; i < c->n_sent; i++) {
            struct sent *s = &c->sent[i];
            if (strcmp(s->id, reply_to))
                continue;
            /* One answer per id; a re-send gets the same seq back. */
            if (s->seq) {
                assert_int_equal(num(o, "seq"), s->seq);
            }
            s->seq = num(o, "seq");
            s->is_reply = !strcmp(type, "reply");
            s->n_answers++;
            if (c->outstanding == i)
                c->outstanding = -1;
            return;
        }
        fail_msg("reply to unknown id %s", reply_to);
    }
}

/* The agent stops trying to claim conversation id. */
static void forget_claim(int64_t id)
{
    for (int i = 0; i < w->n_claim_wanted; i++)
        if (w->claim_wanted[i] == id)
            w->claim_wanted[i--] = w->claim_wanted[--w->n_claim_wanted];
}

static void agent_frame(json_t *o)
{
    const char *type = str(o, "type");
    if (!strcmp(type, "ready")) {
        w->agent_id = num(json_object_get(o, "agent"), "id");
    } else if (!strcmp(type, "queue")) {
        json_t *items = json_object_get(o, "items");
        size_t i;
        json_t *it;
        w->n_claim_wanted = 0;
        json_array_foreach(items, i, it)
        {
            if (w->n_claim_wanted < 64)
                w->claim_wanted[w->n_claim_wanted++] = num(it, "conversation");
        }
    } else if (!strcmp(type, "assigned")) {
        int64_t id = num(o, "conversation");
        for (int i = 0; i < w->n_assigned; i++)
            if (w->assigned[i] == id)
                return;
        assert_true(w->n_assigned < 64);
        w->assigned[w->n_assigned++] = id;
        forget_claim(id);
    } else if (!strcmp(type, "ack")) {
        const char *reply_to = str(o, "reply_to");
        int64_t conv = num(o, "conversation");
        for (int i = 0; i < w->n_amsgs; i++) {
            struct agent_msg *m = &w->amsgs[i];
            if (m->conversation != conv || strcmp(m->id, reply_to))
                continue;
            if (m->seq) {
                assert_int_equal(num(o, "seq"), m->seq);
            }
            m->seq = num(o, "seq");
            m->n_acks++;
            if (w->agent_outstanding == i)
                w->agent_outstanding = -1;
            return;
        }
        fail_msg("agent ack for unknown id %s", reply_to);
    } else if (!strcmp(type, "error")) {
        const char *code = str(o, "code");
        if (!strcmp(code, "store_failed"))
            w->n_store_failed++;
        else if (!strcmp(code, "already_claimed") || !strcmp(code, "at_capacity") ||
                 !strcmp(code, "not_found"))
            forget_claim(num(o, "conversation"));
        else
            fail_msg("agent error %s: %s", code, str(o, "message"));
    }
}

/* Hands every captured frame to the client models. */
static void deliver(void)
{
    for (int i = 0; i < io.n; i++) {
        json_t *o = frame_json(i);
        if (io.frames[i].conn == AGENT_CONN)
            agent_frame(o);
        else {
            struct customer *c = customer_of(io.frames[i].conn);
            if (c)
                customer_frame(c, o);
        }
        json_decref(o);
    }
    testlib_io_reset(&io);
}

static void send_customer(struct customer *c, const char *frame)
{
    chat_customer_frame(chat, c->conn, frame, strlen(frame));
}

static void send_agent(const char *frame)
{
    chat_agent_frame(chat, AGENT_CONN, frame, strlen(frame));
}

/* One customer's move this turn: connect and hello, or (re-)send a message. */
static void customer_turn(struct customer *c, int turn)
{
    char frame[256];
    if (!c->is_welcomed) {
        /* A new connection for each attempt: a hello whose conversation
         * could not be stored leaves nothing to resume. */
        if (c->conn)
            chat_customer_closed(chat, c->conn);
        c->conn = w->next_conn++;
        struct chat_peer peer = {"10.1.0.1", NULL, "test"};
        chat_customer_open(chat, c->conn, &peer);
        send_customer(c, "{\"type\":\"hello\",\"lang\":\"en\",\"name\":\"Sam\"}");
        return;
    }
    int i = c->outstanding;
    if (i < 0) {
        if (c->n_sent >= MAX_SENT)
            return;
        i = c->n_sent++;
        snprintf(c->sent[i].id, sizeof c->sent[i].id, "m%d", i);
        c->outstanding = i;
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", "message", "id", c->sent[i].id, "text",
                          texts[(turn + i + (int)(c - w->cust)) % 8]);
    char *dump = json_dumps(o, JSON_COMPACT);
    snprintf(frame, sizeof frame, "%s", dump);
    free(dump);
    json_decref(o);
    send_customer(c, frame);
}

static void agent_turn(int turn)
{
    char frame[256];
    for (int i = 0; i < w->n_claim_wanted; i++) {
        snprintf(frame, sizeof frame, "{\"type\":\"claim\",\"conversation\":%lld}",
                 (long long)w->claim_wanted[i]);
        send_agent(frame);
    }
    if (w->n_assigned == 0)
        return;
    int i = w->agent_outstanding;
    if (i < 0) {
        assert_true(w->n_amsgs < MAX_SENT * 2);
        i = w->n_amsgs++;
        w->amsgs[i].conversation = w->assigned[turn % w->n_assigned];
        snprintf(w->amsgs[i].id, sizeof w->amsgs[i].id, "a%d", i);
        w->agent_outstanding = i;
    }
    snprintf(frame, sizeof frame,
             "{\"type\":\"message\",\"conversation\":%lld,\"id\":\"%s\",\"text\":\"agent "
             "reply %d\"}",
             (long long)w->amsgs[i].conversation, w->amsgs[i].id, i);
    send_agent(frame);
}

struct transcript {
    int n;
    int64_t seq[2048];
    int sender[2048];
    char client_id[2048][STORE_CLIENT_ID_MAX + 1];
    char reply_to[2048][STORE_CLIENT_ID_MAX + 1];
};

static int collect(void *ctx, const struct store_message *m)
{
    struct transcript *t = ctx;
    assert_true(t->n < 2048);
    t->seq[t->n] = m->seq;
    t->sender[t->n] = m->sender;
    snprintf(t->client_id[t->n], sizeof t->client_id[t->n], "%s", m->client_id);
    snprintf(t->reply_to[t->n], sizeof t->reply_to[t->n], "%s", m->reply_to);
    t->n++;
    return 0;
}

static struct transcript tr;

/* Every acked message is stored once at its seq; unacked ones are not
 * stored; seqs are 1..n; is_final: nothing may be outstanding. */
static void check_store(int is_final)
{
    for (int ci = 0; ci < N_CUSTOMERS; ci++) {
        struct customer *c = &w->cust[ci];
        if (!c->is_welcomed)
            continue;
        memset(&tr, 0, sizeof tr);
        assert_int_equal(store_messages_after(store, c->conversation, 0, 2048, collect, &tr), 0);
        for (int i = 0; i < tr.n; i++)
            assert_int_equal(tr.seq[i], i + 1);
        int64_t last_seq = 0;
        for (int i = 0; i < c->n_sent; i++) {
            struct sent *s = &c->sent[i];
            int n_found = 0;
            int64_t stored_seq = 0;
            for (int j = 0; j < tr.n; j++)
                if (tr.sender[j] == STORE_SENDER_CUSTOMER && !strcmp(tr.client_id[j], s->id)) {
                    n_found++;
                    stored_seq = tr.seq[j];
                }
            if (s->seq) {
                assert_int_equal(n_found, 1);
                if (s->is_reply) {
                    /* The bot's reply is stored at the seq the client saw. */
                    assert_true(s->seq > stored_seq && s->seq <= tr.n);
                    assert_int_equal(tr.sender[s->seq - 1], STORE_SENDER_BOT);
                    assert_string_equal(tr.reply_to[s->seq - 1], s->id);
                } else {
                    assert_int_equal(stored_seq, s->seq);
                }
                assert_true(stored_seq > last_seq); /* in the order sent */
                last_seq = stored_seq;
                assert_int_equal(s->n_answers >= 1, 1);
            } else {
                /* Not acked: told store_failed, so not stored. */
                assert_int_equal(n_found, 0);
                assert_true(!is_final);
            }
        }
    }
    for (int i = 0; i < w->n_amsgs; i++) {
        struct agent_msg *m = &w->amsgs[i];
        memset(&tr, 0, sizeof tr);
        assert_int_equal(store_messages_after(store, m->conversation, 0, 2048, collect, &tr), 0);
        int n_found = 0;
        char scoped[64]; /* chat.c keeps agent ids apart from the customer's */
        snprintf(scoped, sizeof scoped, "agent:%lld:%s", (long long)w->agent_id, m->id);
        for (int j = 0; j < tr.n; j++)
            if (tr.sender[j] == STORE_SENDER_AGENT && !strcmp(tr.client_id[j], scoped)) {
                n_found++;
                if (m->seq)
                    assert_int_equal(tr.seq[j], m->seq);
            }
        assert_int_equal(n_found, m->seq ? 1 : 0);
        if (is_final)
            assert_true(m->seq > 0);
    }
}

static void check_integrity(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void run_turn(int turn, int fault_k, int err, int is_persistent)
{
    for (int i = 0; i < N_CUSTOMERS; i++)
        customer_turn(&w->cust[i], turn);
    agent_turn(turn);
    if (fault_k >= 0)
        fault_vfs_arm(fault_k, err, is_persistent);
    int rc = chat_flush(chat);
    w->n_faults += fault_vfs.n_faults;
    long n_faults = fault_vfs.n_faults;
    fault_vfs_disarm();
    if (fault_k >= 0 && n_faults == 0)
        assert_int_equal(rc, 0);
    deliver();
    check_store(0);
}

static void test_chat_under_write_faults(void **state)
{
    struct chat_peer peer = {"10.1.0.9", NULL, "test"};
    chat_agent_open(chat, AGENT_CONN, &peer);
    char frame[160];
    snprintf(frame, sizeof frame, "{\"type\":\"auth\",\"token\":\"%s\"}", agent_token);
    send_agent(frame);
    assert_int_equal(chat_flush(chat), 0);
    deliver();

    int n_failed_turns = 0;
    for (int turn = 0; turn < N_TURNS; turn++) {
        /* Two turns in three fail somewhere in the commit (positions 0-11,
         * disk full or I/O error, once or until the turn ends); the third
         * succeeds, as when space comes back. */
        int k = turn % 3 == 2 ? -1 : (turn / 3) % 12;
        int err = (turn / 2) % 2 ? SQLITE_IOERR : SQLITE_FULL;
        long before = w->n_store_failed;
        run_turn(turn, k, err, turn % 5 == 0);
        if (w->n_store_failed > before)
            n_failed_turns++;
    }
    /* Space is back: a few clean turns answer everything outstanding. */
    for (int turn = N_TURNS; turn < N_TURNS + 4; turn++)
        run_turn(turn, -1, 0, 0);
    check_store(1);
    check_integrity();
    assert_true(w->n_faults > N_TURNS / 2);
    assert_true(n_failed_turns > N_TURNS / 3);
    assert_true(w->n_assigned > 0); /* the handoff path ran too */
    int n_acked = 0;
    for (int ci = 0; ci < N_CUSTOMERS; ci++)
        for (int i = 0; i < w->cust[ci].n_sent; i++)
            n_acked += w->cust[ci].sent[i].seq > 0;
    assert_true(n_acked > N_CUSTOMERS * 10);

    /* Restart on the same file; every customer resumes from a seq it saw. */
    stop();
    start();
    for (int ci = 0; ci < N_CUSTOMERS; ci++) {
        struct customer *c = &w->cust[ci];
        memset(&tr, 0, sizeof tr);
        assert_int_equal(store_messages_after(store, c->conversation, 0, 2048, collect, &tr), 0);
        int64_t last_seq = c->max_seq / 2;
        c->conn = w->next_conn++;
        chat_customer_open(chat, c->conn, &peer);
        snprintf(frame, sizeof frame, "{\"type\":\"hello\",\"token\":\"%s\",\"last_seq\":%lld}",
                 c->token, (long long)last_seq);
        send_customer(c, frame);
        assert_int_equal(chat_flush(chat), 0);
        int64_t want = last_seq + 1;
        int saw_welcome = 0;
        for (int i = 0; i < io.n; i++) {
            json_t *o = frame_json(i);
            assert_true(io.frames[i].conn == c->conn);
            if (!strcmp(str(o, "type"), "welcome")) {
                assert_int_equal(i, 0);
                assert_int_equal(num(o, "seq"), tr.n);
                assert_true(json_is_true(json_object_get(o, "resumed")));
                saw_welcome = 1;
            } else if (json_object_get(o, "seq")) {
                assert_int_equal(num(o, "seq"), want);
                if (!strcmp(str(o, "type"), "customer_message"))
                    assert_string_equal(str(o, "id"), tr.client_id[want - 1]);
                want++;
            }
            json_decref(o);
        }
        testlib_io_reset(&io);
        assert_true(saw_welcome);
        assert_int_equal(want, tr.n + 1); /* everything after last_seq, once, in order */
    }
    check_integrity();
}

/* Sends frame from the agent, flushes with a disk that is full for this
 * turn (or not), and returns the agent's first frame of the given type
 * (NULL if none); the caller decrefs. */
static json_t *agent_turn_expect(const char *frame, int is_full, const char *type)
{
    send_agent(frame);
    if (is_full)
        fault_vfs_arm(0, SQLITE_FULL, 1);
    int rc = chat_flush(chat);
    fault_vfs_disarm();
    if (is_full)
        assert_int_not_equal(rc, 0);
    json_t *found = NULL;
    for (int i = 0; i < io.n; i++) {
        json_t *o = frame_json(i);
        if (io.frames[i].conn == AGENT_CONN && !found && !strcmp(str(o, "type"), type))
            found = json_incref(o);
        json_decref(o);
    }
    testlib_io_reset(&io);
    return found;
}

static void expect_agent_error(const char *frame, int is_full, const char *code)
{
    json_t *e = agent_turn_expect(frame, is_full, "error");
    if (!e)
        fail_msg("%s: expected error %s, got none", frame, code);
    if (strcmp(str(e, "code"), code))
        fail_msg("%s: expected error %s, got %s", frame, code, str(e, "code"));
    json_decref(e);
}

static void expect_agent_frame(const char *frame, const char *type)
{
    json_t *o = agent_turn_expect(frame, 0, type);
    if (!o)
        fail_msg("%s: expected %s, got none", frame, type);
    json_decref(o);
}

/* A claim or a close whose commit failed leaves the agent's capacity as
 * the store has it: failed claims do not use it up, a failed close does
 * not free it. */
static void test_failed_commits_keep_agent_capacity(void **state)
{
    struct chat_peer peer = {"10.1.0.9", NULL, "test"};
    char frame[160];
    chat_agent_open(chat, AGENT_CONN, &peer);
    snprintf(frame, sizeof frame, "{\"type\":\"auth\",\"token\":\"%s\"}", agent_token);
    expect_agent_frame(frame, "ready");
    int64_t conv[4];
    for (int i = 0; i < 4; i++) {
        struct customer *c = &w->cust[i];
        c->conn = w->next_conn++;
        chat_customer_open(chat, c->conn, &peer);
        send_customer(c, "{\"type\":\"hello\"}");
        send_customer(c, "{\"type\":\"handoff\"}");
        assert_int_equal(chat_flush(chat), 0);
        deliver();
        assert_true(c->is_welcomed);
        conv[i] = c->conversation;
    }
    /* Capacity is 3: four claims of conv[0] that could not be stored. */
    snprintf(frame, sizeof frame, "{\"type\":\"claim\",\"conversation\":%lld}", (long long)conv[0]);
    for (int i = 0; i < 4; i++)
        expect_agent_error(frame, 1, "store_failed");
    for (int i = 0; i < 3; i++) {
        snprintf(frame, sizeof frame, "{\"type\":\"claim\",\"conversation\":%lld}",
                 (long long)conv[i]);
        expect_agent_frame(frame, "assigned");
    }
    snprintf(frame, sizeof frame, "{\"type\":\"claim\",\"conversation\":%lld}", (long long)conv[3]);
    expect_agent_error(frame, 0, "at_capacity");

    /* A close that could not be stored: the agent still has the chat (and
     * can write in it) and still has no room for a fourth. */
    snprintf(frame, sizeof frame,
             "{\"type\":\"close\",\"conversation\":%lld,\"disposition\":\"resolved\"}",
             (long long)conv[0]);
    expect_agent_error(frame, 1, "store_failed");
    snprintf(frame, sizeof frame,
             "{\"type\":\"message\",\"conversation\":%lld,\"id\":\"x1\",\"text\":\"still here\"}",
             (long long)conv[0]);
    expect_agent_frame(frame, "ack");
    snprintf(frame, sizeof frame, "{\"type\":\"claim\",\"conversation\":%lld}", (long long)conv[3]);
    expect_agent_error(frame, 0, "at_capacity");
    check_integrity();
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test_setup_teardown(test_chat_under_write_faults, setup, teardown),
                    cmocka_unit_test_setup_teardown(test_failed_commits_keep_agent_capacity, setup,
                                                    teardown),
                });
}
