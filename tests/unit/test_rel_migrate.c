/* Schema migration tests for store.c from databases built by hand at every
 * earlier schema version, as released caredesk versions wrote them.
 *
 * The old schemas below are frozen copies of what each version created, not
 * calls into store.c, so a later change to an early migration that would no
 * longer match deployed databases shows up here. For each version: data in
 * every table of that version survives store_open() field by field, the
 * migrated schema is the same as a new database's, the tables of later
 * versions work, and a migration interrupted by a failing write (fault_vfs.h)
 * at every position leaves the database at a whole version with its data,
 * from which the next store_open() finishes the job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include "store.h"
#include "fault_vfs.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char db_path[256];
static char fresh_path[256];

/* Schema version 1 as released: conversations and messages. */
static const char *const schema_v1 =
    "CREATE TABLE conversations ("
    " id INTEGER PRIMARY KEY,"
    " token_hash BLOB NOT NULL UNIQUE,"
    " state TEXT NOT NULL DEFAULT 'bot',"
    " lang TEXT NOT NULL DEFAULT 'en',"
    " customer_name TEXT, customer_email TEXT, customer_page TEXT,"
    " queue TEXT NOT NULL DEFAULT '',"
    " intent TEXT NOT NULL DEFAULT '',"
    " confidence REAL NOT NULL DEFAULT 0,"
    " priority INTEGER NOT NULL DEFAULT 3,"
    " is_offline INTEGER NOT NULL DEFAULT 0,"
    " agent_id INTEGER NOT NULL DEFAULT 0,"
    " created_s INTEGER NOT NULL,"
    " queued_s INTEGER NOT NULL DEFAULT 0,"
    " picked_s INTEGER NOT NULL DEFAULT 0,"
    " closed_s INTEGER NOT NULL DEFAULT 0,"
    " closed_by TEXT NOT NULL DEFAULT '',"
    " disposition TEXT NOT NULL DEFAULT '',"
    " note TEXT,"
    " rating INTEGER NOT NULL DEFAULT 0,"
    " comment TEXT);"
    "CREATE INDEX conversations_open ON conversations(state)"
    " WHERE state IN ('queued', 'with_agent');"
    "CREATE INDEX conversations_created ON conversations(created_s);"
    "CREATE INDEX conversations_email ON conversations(customer_email COLLATE NOCASE);"
    "CREATE INDEX conversations_closed ON conversations(closed_s) WHERE closed_s > 0;"
    "CREATE TABLE messages ("
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " sender TEXT NOT NULL,"
    " client_id TEXT,"
    " reply_to TEXT,"
    " text TEXT NOT NULL,"
    " meta TEXT,"
    " agent_id INTEGER NOT NULL DEFAULT 0,"
    " created_s INTEGER NOT NULL,"
    " PRIMARY KEY (conversation, seq)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX messages_client_id ON messages(conversation, client_id)"
    " WHERE client_id IS NOT NULL;"
    "CREATE INDEX messages_reply_to ON messages(conversation, reply_to)"
    " WHERE reply_to IS NOT NULL;"
    "PRAGMA user_version = 1;";

/* What version 2 added: accounts and the audit log. */
static const char *const schema_v2_delta =
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('agent', 'author', 'admin')),"
    " skills TEXT NOT NULL DEFAULT '',"
    " token_hash BLOB NOT NULL UNIQUE,"
    " created_s INTEGER NOT NULL);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " conversation INTEGER NOT NULL DEFAULT 0,"
    " user_id INTEGER NOT NULL DEFAULT 0,"
    " detail TEXT,"
    " created_s INTEGER NOT NULL);"
    "CREATE INDEX events_created ON events(created_s);"
    "PRAGMA user_version = 2;";

/* What version 3 added: feedback and unanswered questions. */
static const char *const schema_v3_delta =
    "CREATE TABLE feedback ("
    " id INTEGER PRIMARY KEY,"
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " helpful INTEGER NOT NULL,"
    " article TEXT,"
    " question TEXT,"
    " created_s INTEGER NOT NULL);"
    "CREATE INDEX feedback_conversation ON feedback(conversation);"
    "CREATE TABLE unanswered ("
    " id INTEGER PRIMARY KEY,"
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " question TEXT NOT NULL,"
    " lang TEXT NOT NULL DEFAULT 'en',"
    " intent TEXT NOT NULL DEFAULT '',"
    " confidence REAL NOT NULL DEFAULT 0,"
    " created_s INTEGER NOT NULL);"
    "CREATE INDEX unanswered_created ON unanswered(created_s);"
    "CREATE INDEX unanswered_conversation ON unanswered(conversation);"
    "PRAGMA user_version = 3;";

/* What version 4 did: messages moved to a rowid table, (conversation, seq)
 * an index (the rows already there are carried over by it). */
static const char *const schema_v4_delta =
    "CREATE TABLE messages_v4 ("
    " id INTEGER PRIMARY KEY,"
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " sender TEXT NOT NULL,"
    " client_id TEXT,"
    " reply_to TEXT,"
    " text TEXT NOT NULL,"
    " meta TEXT,"
    " agent_id INTEGER NOT NULL DEFAULT 0,"
    " created_s INTEGER NOT NULL);"
    "INSERT INTO messages_v4 (conversation, seq, sender, client_id, reply_to, text, meta,"
    " agent_id, created_s) SELECT conversation, seq, sender, client_id, reply_to, text, meta,"
    " agent_id, created_s FROM messages ORDER BY conversation, seq;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_v4 RENAME TO messages;"
    "CREATE UNIQUE INDEX messages_seq ON messages(conversation, seq);"
    "CREATE UNIQUE INDEX messages_client_id ON messages(conversation, client_id)"
    " WHERE client_id IS NOT NULL;"
    "CREATE INDEX messages_reply_to ON messages(conversation, reply_to)"
    " WHERE reply_to IS NOT NULL;"
    "PRAGMA user_version = 4;";

/* What version 5 did: no index on reply_to. */
static const char *const schema_v5_delta = "DROP INDEX messages_reply_to;"
                                           "PRAGMA user_version = 5;";

/* What version 6 did: the NPS answer on conversations. */
static const char *const schema_v6_delta =
    "ALTER TABLE conversations ADD COLUMN nps INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE conversations ADD COLUMN nps_comment TEXT;"
    "PRAGMA user_version = 6;";

/* What version 7 did: the supervisor role (users rebuilt for its CHECK), QA tables. */
static const char *const schema_v7_delta =
    "CREATE TABLE users_v7 ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('agent', 'author', 'admin', 'supervisor')),"
    " skills TEXT NOT NULL DEFAULT '',"
    " token_hash BLOB NOT NULL UNIQUE,"
    " created_s INTEGER NOT NULL);"
    "INSERT INTO users_v7 (id, name, role, skills, token_hash, created_s)"
    " SELECT id, name, role, skills, token_hash, created_s FROM users;"
    "DROP TABLE users;"
    "ALTER TABLE users_v7 RENAME TO users;"
    "CREATE TABLE qa_samples ("
    " id INTEGER PRIMARY KEY,"
    " week TEXT NOT NULL,"
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " agent_id INTEGER NOT NULL,"
    " queue TEXT NOT NULL DEFAULT '',"
    " seed INTEGER NOT NULL,"
    " drawn_by INTEGER NOT NULL DEFAULT 0,"
    " created_s INTEGER NOT NULL,"
    " UNIQUE (week, conversation));"
    "CREATE TABLE qa_audits ("
    " id INTEGER PRIMARY KEY,"
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " agent_id INTEGER NOT NULL,"
    " reviewer_id INTEGER NOT NULL,"
    " rubric TEXT NOT NULL,"
    " scores TEXT NOT NULL,"
    " score REAL NOT NULL,"
    " passed INTEGER NOT NULL,"
    " comment TEXT,"
    " created_s INTEGER NOT NULL,"
    " UNIQUE (conversation, reviewer_id));"
    "CREATE INDEX qa_audits_agent ON qa_audits(agent_id, created_s);"
    "PRAGMA user_version = 7;";

/* What version 8 did: escalation status updates. */
static const char *const schema_v8_delta =
    "CREATE TABLE status_updates ("
    " id INTEGER PRIMARY KEY,"
    " tracking_id TEXT NOT NULL,"
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " agent_id INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL,"
    " created_s INTEGER NOT NULL);"
    "CREATE INDEX status_updates_tracking ON status_updates(tracking_id);"
    "CREATE INDEX status_updates_conversation ON status_updates(conversation);"
    "PRAGMA user_version = 8;";

/* What version 9 did: the webhook outbox. */
static const char *const schema_v9_delta =
    "CREATE TABLE webhook_outbox ("
    " id INTEGER PRIMARY KEY,"
    " delivery TEXT NOT NULL UNIQUE,"
    " event TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " conversation INTEGER,"
    " payload TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " next_attempt_ms INTEGER NOT NULL,"
    " deadline_ms INTEGER NOT NULL,"
    " last_http INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " delivered_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX webhook_outbox_due ON webhook_outbox(next_attempt_ms) WHERE status = 0;"
    "CREATE INDEX webhook_outbox_order ON webhook_outbox(endpoint, conversation, id)"
    " WHERE status = 0;"
    "PRAGMA user_version = 9;";

/* Rows a version-1 deployment holds: a closed, rated conversation with a
 * customer question, a bot answer (meta JSON), an agent reply; a queued one;
 * one with NULL customer fields and non-ASCII text. */
static const char *const data_v1 =
    "INSERT INTO conversations (id, token_hash, state, lang, customer_name, customer_email,"
    " customer_page, queue, intent, confidence, priority, is_offline, agent_id, created_s,"
    " queued_s, picked_s, closed_s, closed_by, disposition, note, rating, comment) VALUES"
    " (11, x'1111111111111111111111111111111111111111111111111111111111111111', 'rated',"
    " 'en', 'Ana Ruiz', 'ana@example.com', '/orders', 'billing', 'refund_status', 0.42, 2,"
    " 0, 5, 1700000000, 1700000060, 1700000100, 1700000900, 'agent', 'refund_issued',"
    " 'refunded in full', 5, 'quick, thanks'),"
    " (12, x'1212121212121212121212121212121212121212121212121212121212121212', 'queued',"
    " 'es', 'Luis', 'LUIS@example.com', '/ayuda', 'orders', 'order_status', 0.3, 3, 1, 0,"
    " 1700001000, 1700001010, 0, 0, '', '', NULL, 0, NULL);"
    "INSERT INTO conversations (id, token_hash, created_s) VALUES"
    " (13, x'1313131313131313131313131313131313131313131313131313131313131313', 1700002000);"
    "INSERT INTO messages (conversation, seq, sender, client_id, reply_to, text, meta,"
    " agent_id, created_s) VALUES"
    " (11, 1, 'customer', 'c1', NULL, 'where is my refund? card **** **** **** 1111', NULL,"
    " 0, 1700000001),"
    " (11, 2, 'bot', NULL, 'c1', 'Refunds take 5-10 days.',"
    " '{\"action\":\"handoff\",\"intent\":\"refund_status\",\"confidence\":0.42}', 0,"
    " 1700000002),"
    " (11, 3, 'agent', 'a1', NULL, 'I have issued it now.', NULL, 5, 1700000200),"
    " (12, 1, 'customer', 'c1', NULL, '¿Dónde está mi pedido? 🚚', NULL, 0, 1700001001),"
    " (12, 2, 'system', NULL, NULL, 'queued', '{\"event\":\"queued\"}', 0, 1700001010);";

static const char *const data_v2 =
    "INSERT INTO users (id, name, role, skills, token_hash, created_s) VALUES"
    " (5, 'maria', 'agent', 'billing,orders',"
    " x'5555555555555555555555555555555555555555555555555555555555555555', 1690000000),"
    " (6, 'olga', 'author', '',"
    " x'6666666666666666666666666666666666666666666666666666666666666666', 1690000001);"
    "INSERT INTO events (kind, conversation, user_id, detail, created_s) VALUES"
    " ('claim', 11, 5, NULL, 1700000100),"
    " ('article_put', 0, 6, '{\"id\":\"returns\"}', 1700000500);";

static const char *const data_v3 =
    "INSERT INTO feedback (conversation, seq, helpful, article, question, created_s) VALUES"
    " (11, 2, 1, 'refunds', 'where is my refund?', 1700000003);";

static int setup(void **state)
{
    (void)state;
    assert_int_equal(fault_vfs_install(), SQLITE_OK);
    fault_vfs_disarm();
    snprintf(db_path, sizeof db_path, "/tmp/cd-test-migrate-%d.db", (int)getpid());
    snprintf(fresh_path, sizeof fresh_path, "/tmp/cd-test-migrate-fresh-%d.db", (int)getpid());
    testlib_remove_db(db_path);
    testlib_remove_db(fresh_path);
    return 0;
}

static int teardown(void **state)
{
    fault_vfs_disarm();
    return setup(state);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

/* Builds a database at schema version (1 to 9) with that version's rows, in
 * rollback-journal mode as an old file copied from elsewhere may be. */
static void build_old(int version)
{
    testlib_remove_db(db_path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    exec_ok(db, "BEGIN");
    exec_ok(db, schema_v1);
    exec_ok(db, data_v1);
    if (version >= 2) {
        exec_ok(db, schema_v2_delta);
        exec_ok(db, data_v2);
    }
    if (version >= 3) {
        exec_ok(db, schema_v3_delta);
        exec_ok(db, data_v3);
    }
    if (version >= 4)
        exec_ok(db, schema_v4_delta);
    if (version >= 5)
        exec_ok(db, schema_v5_delta);
    if (version >= 6)
        exec_ok(db, schema_v6_delta);
    if (version >= 7)
        exec_ok(db, schema_v7_delta);
    if (version >= 8)
        exec_ok(db, schema_v8_delta);
    if (version >= 9)
        exec_ok(db, schema_v9_delta);
    exec_ok(db, "COMMIT");
    sqlite3_close(db);
}

static int query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int v = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

static char *query_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(stmt, 0);
    char *out = strdup(t ? (const char *)t : "");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    assert_non_null(out);
    return out;
}

struct collected {
    int n;
    int64_t seq[8];
    int sender[8];
    char text[8][128];
    char client_id[8][STORE_CLIENT_ID_MAX + 1];
    char reply_to[8][STORE_CLIENT_ID_MAX + 1];
    char meta[8][128];
};

static int collect(void *ctx, const struct store_message *m)
{
    struct collected *c = ctx;
    if (c->n >= 8)
        return 1;
    c->seq[c->n] = m->seq;
    c->sender[c->n] = m->sender;
    snprintf(c->text[c->n], sizeof c->text[c->n], "%s", m->text);
    snprintf(c->client_id[c->n], sizeof c->client_id[c->n], "%s", m->client_id);
    snprintf(c->reply_to[c->n], sizeof c->reply_to[c->n], "%s", m->reply_to);
    snprintf(c->meta[c->n], sizeof c->meta[c->n], "%s", m->meta ? m->meta : "");
    c->n++;
    return 0;
}

/* Every row written at version 1 (and 2) reads back through store.h. */
static void check_old_data(struct store *s, int version)
{
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, 11, &c), 0);
    assert_int_equal(c.state, STORE_STATE_RATED);
    assert_string_equal(c.lang, "en");
    assert_string_equal(c.customer_name, "Ana Ruiz");
    assert_string_equal(c.customer_email, "ana@example.com");
    assert_string_equal(c.customer_page, "/orders");
    assert_string_equal(c.queue, "billing");
    assert_string_equal(c.intent, "refund_status");
    assert_true(c.confidence > 0.419 && c.confidence < 0.421);
    assert_int_equal(c.priority, 2);
    assert_int_equal(c.agent_id, 5);
    assert_int_equal(c.created_s, 1700000000);
    assert_int_equal(c.queued_s, 1700000060);
    assert_int_equal(c.picked_s, 1700000100);
    assert_int_equal(c.closed_s, 1700000900);
    assert_string_equal(c.closed_by, "agent");
    assert_string_equal(c.disposition, "refund_issued");
    assert_string_equal(c.note, "refunded in full");
    assert_int_equal(c.rating, 5);
    assert_string_equal(c.comment, "quick, thanks");
    assert_int_equal(c.last_seq, 3);
    store_conversation_clear(&c);

    unsigned char hash[STORE_HASH_LEN];
    memset(hash, 0x12, sizeof hash);
    assert_int_equal(store_conversation_by_token(s, hash, &c), 0);
    assert_int_equal(c.id, 12);
    assert_int_equal(c.state, STORE_STATE_QUEUED);
    assert_int_equal(c.is_offline, 1);
    assert_null(c.note);
    store_conversation_clear(&c);

    assert_int_equal(store_conversation_get(s, 13, &c), 0);
    assert_int_equal(c.state, STORE_STATE_BOT);
    assert_null(c.customer_name);
    assert_int_equal(c.priority, 3);
    assert_int_equal(c.last_seq, 0);
    store_conversation_clear(&c);

    struct collected got;
    memset(&got, 0, sizeof got);
    assert_int_equal(store_messages_after(s, 11, 0, 10, collect, &got), 0);
    assert_int_equal(got.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(got.seq[i], i + 1);
    assert_int_equal(got.sender[0], STORE_SENDER_CUSTOMER);
    assert_string_equal(got.client_id[0], "c1");
    assert_string_equal(got.text[0], "where is my refund? card **** **** **** 1111");
    assert_int_equal(got.sender[1], STORE_SENDER_BOT);
    assert_string_equal(got.reply_to[1], "c1");
    assert_non_null(strstr(got.meta[1], "\"refund_status\""));
    assert_int_equal(got.sender[2], STORE_SENDER_AGENT);

    memset(&got, 0, sizeof got);
    assert_int_equal(store_messages_after(s, 12, 1, 10, collect, &got), 0);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.sender[0], STORE_SENDER_SYSTEM);
    memset(&got, 0, sizeof got);
    assert_int_equal(store_messages_after(s, 12, 0, 1, collect, &got), 0);
    assert_string_equal(got.text[0], "¿Dónde está mi pedido? 🚚");

    /* Idempotency by client id still holds on old rows. */
    struct store_message m;
    memset(&m, 0, sizeof m);
    m.conversation = 11;
    m.sender = STORE_SENDER_CUSTOMER;
    snprintf(m.client_id, sizeof m.client_id, "c1");
    m.text = "again";
    assert_int_equal(store_message_append(s, &m), CD_EEXIST);
    assert_int_equal(m.seq, 1);

    /* Email lookups are case-insensitive on old rows too. */
    struct store_history_item h[4];
    int n = 0;
    assert_int_equal(store_conversations_by_email(s, "luis@EXAMPLE.com", 0, h, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].conversation, 12);

    if (version >= 2) {
        struct store_user u;
        memset(hash, 0x55, sizeof hash);
        assert_int_equal(store_user_by_token(s, hash, &u), 0);
        assert_string_equal(u.name, "maria");
        assert_string_equal(u.role, "agent");
        assert_string_equal(u.skills, "billing,orders");
        assert_int_equal(u.created_s, 1690000000);
        assert_int_equal(store_user_get(s, 6, &u), 0);
        assert_string_equal(u.role, "author");
    }
}

/* Uses what the newest schema added, and writes to every older table. */
static void check_new_schema_works(struct store *s)
{
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    struct store_message m;
    memset(&m, 0, sizeof m);
    m.conversation = 12;
    m.sender = STORE_SENDER_AGENT;
    snprintf(m.client_id, sizeof m.client_id, "a9");
    m.text = "on its way";
    assert_int_equal(store_message_append(s, &m), 0);
    assert_int_equal(m.seq, 3);
    assert_int_equal(store_feedback_add(s, 11, 2, 0, "refunds", "where is my refund?"), 0);
    assert_int_equal(store_unanswered_add(s, 13, "can I pay in crypto?", "en", "", 0.1), 0);
    assert_int_equal(store_event_add(s, "migrated", 0, 0, NULL), 0);
    struct store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "newagent");
    snprintf(u.role, sizeof u.role, "agent");
    memset(u.token_hash, 0x77, sizeof u.token_hash);
    assert_int_equal(store_user_add(s, &u), 0);
    struct store_stats st;
    assert_int_equal(store_stats(s, 0, 2000000000, 60, &st), 0);
    assert_int_equal(st.n_conversations, 2);
    assert_int_equal(st.n_ratings, 1);
    assert_int_equal(st.n_unanswered, 1);
    int n = 0;
    assert_int_equal(store_retention(s, 1800000000, 10, &n), 0);
    assert_int_equal(n, 1); /* the rated conversation, with its messages and feedback */
    /* Version 6: the conversations kept from before have no NPS answer (-1). */
    assert_int_equal(query_int(db_path, "SELECT count(*) FROM conversations WHERE nps = -1"), 2);
    /* Version 7: the supervisor role, and QA audits. */
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "newsupervisor");
    snprintf(u.role, sizeof u.role, "supervisor");
    memset(u.token_hash, 0x78, sizeof u.token_hash);
    assert_int_equal(store_user_add(s, &u), 0);
    assert_int_equal(query_int(db_path, "SELECT count(*) FROM qa_audits"), 0);
    /* Version 8: status updates by tracking id. */
    assert_int_equal(query_int(db_path, "SELECT count(*) FROM status_updates"), 0);
}

/* The schema (tables, indexes and their SQL) of path, one line per object. */
static char *schema_of(const char *path)
{
    return query_text(path, "SELECT group_concat(type || ' ' || name || ': ' || sql, char(10))"
                            " FROM (SELECT * FROM sqlite_master WHERE sql IS NOT NULL"
                            " ORDER BY type, name)");
}

static void check_same_schema_as_new(void)
{
    struct store *fresh = testlib_store(fresh_path);
    store_close(fresh);
    char *want = schema_of(fresh_path);
    char *got = schema_of(db_path);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static void test_from_every_version(void **state)
{
    for (int v = 1; v < STORE_SCHEMA_VERSION; v++) {
        build_old(v);
        assert_int_equal(query_int(db_path, "PRAGMA user_version"), v);
        struct store *s = testlib_store(db_path);
        check_old_data(s, v);
        store_close(s);
        check_same_schema_as_new();
        assert_int_equal(query_int(db_path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);

        s = testlib_store(db_path); /* a second open migrates nothing and loses nothing */
        check_old_data(s, v);
        check_new_schema_works(s);
        store_close(s);
        char *ok = query_text(db_path, "PRAGMA integrity_check");
        assert_string_equal(ok, "ok");
        free(ok);
        assert_int_equal(query_int(db_path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    }
}

/* Version 0: an empty file, and a database another program made (tables of
 * its own, user_version 0). Both get the whole schema; foreign tables stay. */
static void test_from_version_zero(void **state)
{
    FILE *f = fopen(db_path, "w");
    assert_non_null(f);
    fclose(f);
    struct store *s = testlib_store(db_path);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    store_close(s);
    check_same_schema_as_new();

    testlib_remove_db(db_path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                "INSERT INTO notes (body) VALUES ('keep me');");
    sqlite3_close(db);
    s = testlib_store(db_path);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    store_close(s);
    char *body = query_text(db_path, "SELECT body FROM notes");
    assert_string_equal(body, "keep me");
    free(body);
}

/* A file that is not a database is refused with a message and not changed. */
static void test_not_a_database(void **state)
{
    static const char junk[] = "this is not an SQLite database, it is a customer's CSV\n"
                               "name,email\nAna,ana@example.com\n";
    FILE *f = fopen(db_path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100; i++)
        fputs(junk, f);
    fclose(f);
    char *err = NULL;
    struct store *s = store_open(db_path, NULL, &err);
    assert_null(s);
    assert_non_null(err);
    assert_true(strlen(err) > 0);
    free(err);
    size_t len = 0;
    char *after = cd_read_file(db_path, &len);
    assert_non_null(after);
    assert_int_equal(len, 100 * strlen(junk));
    assert_memory_equal(after, junk, strlen(junk));
    free(after);
}

/* A migration that fails half-way (disk full or I/O error at any write)
 * leaves a whole version with the old data; the next open completes it. */
static void test_interrupted_migration(void **state)
{
    for (int persistent = 0; persistent < 2; persistent++) {
        int k;
        for (k = 0;; k++) {
            build_old(1);
            fault_vfs_arm(k, k % 2 ? SQLITE_IOERR : SQLITE_FULL, persistent);
            char *err = NULL;
            struct store *s = store_open(db_path, NULL, &err);
            long n_faults = fault_vfs.n_faults;
            fault_vfs_disarm();
            if (n_faults == 0) {
                assert_non_null(s);
                store_close(s);
                break;
            }
            if (s) {
                /* Only a fault after the last migration committed (the WAL
                 * checkpoint of close) may let the open succeed. */
                assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
                store_close(s);
            } else {
                assert_non_null(err);
            }
            free(err);
            int v = query_int(db_path, "PRAGMA user_version");
            assert_true(v >= 1 && v <= STORE_SCHEMA_VERSION);
            char *ok = query_text(db_path, "PRAGMA integrity_check");
            assert_string_equal(ok, "ok");
            free(ok);
            /* Tables of versions not reached do not exist half-made. */
            assert_int_equal(query_int(db_path, "SELECT count(*) FROM sqlite_master"
                                                " WHERE name = 'users'"),
                             v >= 2);
            assert_int_equal(query_int(db_path, "SELECT count(*) FROM sqlite_master"
                                                " WHERE name IN ('feedback', 'unanswered')"),
                             v >= 3 ? 2 : 0);
            s = testlib_store(db_path);
            check_old_data(s, 1);
            store_close(s);
            check_same_schema_as_new();
        }
        assert_true(k >= 3);
    }
}

/* A test that runs with setup() before it and teardown() after it. */
#define WITH_FIXTURE(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    WITH_FIXTURE(test_from_every_version),
                    WITH_FIXTURE(test_from_version_zero),
                    WITH_FIXTURE(test_not_a_database),
                    WITH_FIXTURE(test_interrupted_migration),
                });
}
