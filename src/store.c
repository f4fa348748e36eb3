/* store: the backend-neutral part of the store (store.h): every query on conversations,
 * messages, users, events, feedback, unanswered questions and statistics, written once over
 * db.h and run on SQLite (store_sqlite.c) or PostgreSQL (store_pg.c).
 *
 * DESIGN. Every statement used while serving is prepared once in store_open() and every query
 * is bounded by an index and a LIMIT. Where the two dialects differ, a statement has a
 * PostgreSQL text of its own beside the SQLite one (stmt_pg[]); the differences are few:
 * case-insensitive email matching (COLLATE NOCASE / lower()), SQLite's INDEXED BY hint,
 * boolean sums, and how a message gets its seq. On SQLite a message's seq is one more than
 * its conversation's last (one writer at a time); on PostgreSQL, where several nodes append to
 * one conversation, it comes from the conversation row's counter (UPDATE ... RETURNING), whose
 * row lock orders the appends of every node. */
#include "store.h"
#include "store_db.h"
#include "store_int.h"
#include "store_outbox.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- prepared statements ---- */

#define CONV_COLUMNS                                                                               \
    "c.id, c.token_hash, c.state, c.lang, c.customer_name, c.customer_email, c.customer_page, "    \
    "c.queue, c.intent, c.confidence, c.priority, c.is_offline, c.agent_id, c.created_s, "         \
    "c.queued_s, c.picked_s, c.closed_s, c.closed_by, c.disposition, c.note, c.rating, "           \
    "c.comment, (SELECT coalesce(max(m.seq), 0) FROM messages m WHERE m.conversation = c.id)"

/* The columns store_conversation_update() writes, ?2 to ?20 in the order of conv_columns[]. */
#define CONV_UPDATE                                                                                \
    "UPDATE conversations SET state = ?2, lang = ?3, customer_name = ?4, customer_email = ?5,"     \
    " customer_page = ?6, queue = ?7, intent = ?8, confidence = ?9, priority = ?10,"               \
    " is_offline = ?11, agent_id = ?12, queued_s = ?13, picked_s = ?14, closed_s = ?15,"           \
    " closed_by = ?16, disposition = ?17, note = ?18, rating = ?19, comment = ?20"

#define MSG_COLUMNS                                                                                \
    "conversation, seq, sender, client_id, reply_to, text, meta, agent_id, created_s"

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_MARK,
    ST_MARK_RELEASE,
    ST_MARK_UNDO,
    ST_CONV_CREATE,
    ST_CONV_GET,
    ST_CONV_BY_TOKEN,
    ST_CONV_UPDATE,
    ST_CONV_UPDATE_IF,
    ST_CONV_UPDATE_TRIAGE,
    ST_CONV_CLAIM,
    ST_AGENT_LOCK,
    ST_CONV_OPEN,
    ST_CONV_BY_EMAIL,
    ST_MSG_APPEND,
    ST_MSG_APPEND_TRIAGE,
    ST_MSG_APPEND_AT,
    ST_MSG_PAIR,
    ST_MSG_PAIR_TRIAGE,
    ST_MSG_INSERT,
    ST_MSG_AFTER,
    ST_MSG_BY_CLIENT_ID,
    ST_MSG_BY_REPLY_TO,
    ST_RECENT_QUESTIONS,
    ST_USER_ADD,
    ST_USER_BY_TOKEN,
    ST_USER_GET,
    ST_USER_LIST,
    ST_USER_REMOVE,
    ST_EVENT_ADD,
    ST_FEEDBACK_ADD,
    ST_UNANSWERED_ADD,
    ST_UNANSWERED_LIST,
    ST_UNANSWERED_RESOLVE,
    ST_STATS_TOTALS,
    ST_STATS_MEDIAN,
    ST_STATS_QUEUES,
    ST_STATS_DRIVERS,
    ST_STATS_UNANSWERED,
    ST_HAS_CUSTOMER_MESSAGE,
    ST_EMAIL_CONVERSATIONS,
    ST_ERASE_EMAIL,
    ST_RETENTION,
    ST_CONV_NPS,
    ST_SET_NODE,
    ST_PING,
    ST_NOTIFY,
    ST_AGENT_HERE,
    ST_AGENT_NODE,
    ST_ORPHANS,
    ST_KB_JOURNAL,
    ST_KB_JOURNAL_READ,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_MARK] = "SAVEPOINT frame",
    [ST_MARK_RELEASE] = "RELEASE frame",
    [ST_MARK_UNDO] = "ROLLBACK TO frame",
    [ST_CONV_CREATE] =
        "INSERT INTO conversations (token_hash, state, lang, customer_name, customer_email,"
        " customer_page, created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
    [ST_CONV_GET] = "SELECT " CONV_COLUMNS " FROM conversations c WHERE c.id = ?1",
    [ST_CONV_BY_TOKEN] = "SELECT " CONV_COLUMNS " FROM conversations c WHERE c.token_hash = ?1",
    [ST_CONV_UPDATE] = CONV_UPDATE " WHERE id = ?1",
    [ST_CONV_UPDATE_IF] = CONV_UPDATE " WHERE id = ?1 AND state = ?21 AND agent_id = ?22",
    [ST_CONV_UPDATE_TRIAGE] = "UPDATE conversations SET state = ?2, intent = ?3, confidence = ?4"
                              " WHERE id = ?1",
    [ST_CONV_CLAIM] = "UPDATE conversations SET state = 'with_agent', agent_id = ?2,"
                      " is_offline = 0,"
                      " picked_s = CASE WHEN picked_s = 0 THEN ?3 ELSE picked_s END"
                      " WHERE id = ?1 AND state = 'queued' AND (?4 <= 0 OR (SELECT count(*)"
                      " FROM conversations WHERE state = 'with_agent' AND agent_id = ?2) < ?4)",
    [ST_AGENT_LOCK] = "SELECT id FROM users WHERE id = ?1",
    [ST_CONV_OPEN] = "SELECT " CONV_COLUMNS " FROM conversations c"
                     " WHERE c.state IN ('queued', 'with_agent') ORDER BY c.id LIMIT ?1",
    [ST_CONV_BY_EMAIL] = "SELECT id, created_s, state, intent, disposition FROM conversations"
                         " WHERE customer_email = ?1 COLLATE NOCASE AND id <> ?2"
                         " ORDER BY id DESC LIMIT ?3",
    [ST_MSG_APPEND] = "INSERT INTO messages (" MSG_COLUMNS ")"
                      " SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8"
                      " FROM messages WHERE conversation = ?1 RETURNING seq",
    /* The caller knows the next seq; nothing if it is taken (or the client id is). No
     * RETURNING: on SQLite it would buffer a result row per message (the hottest write).
     * Used on SQLite only: on PostgreSQL the conversation's counter decides (ST_MSG_APPEND). */
    [ST_MSG_INSERT] = "INSERT INTO messages (" MSG_COLUMNS ")"
                      " VALUES (?1, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
    [ST_MSG_AFTER] = "SELECT " MSG_COLUMNS " FROM messages WHERE conversation = ?1 AND seq > ?2"
                     " ORDER BY seq LIMIT ?3",
    [ST_MSG_BY_CLIENT_ID] = "SELECT " MSG_COLUMNS " FROM messages"
                            " WHERE conversation = ?1 AND client_id = ?2 LIMIT 1",
    /* The reply comes after the question: messages_seq from there on. */
    [ST_MSG_BY_REPLY_TO] = "SELECT " MSG_COLUMNS " FROM messages INDEXED BY messages_seq"
                           " WHERE conversation = ?1 AND seq > ?3 AND reply_to = ?2"
                           " ORDER BY seq LIMIT 1",
    /* Customer messages whose P(in scope) the triage counted: the bot's reply is the next
     * message (the two are one unit of work) and says so in its meta. Newest first, the
     * table read backwards from its end but no further than the last ?2 messages (a store
     * of mostly agent chats is not read whole), one index probe for the reply and one for
     * the conversation's language per message. */
    [ST_RECENT_QUESTIONS] = "SELECT q.text, c.lang FROM messages q"
                            " JOIN conversations c ON c.id = q.conversation"
                            " WHERE q.id > (SELECT coalesce(max(id), 0) FROM messages) - ?2"
                            " AND q.sender = 'customer' AND EXISTS (SELECT 1 FROM messages b"
                            " WHERE b.conversation = q.conversation AND b.seq = q.seq + 1"
                            " AND b.sender = 'bot' AND b.meta LIKE '%\"scored\":true%')"
                            " ORDER BY q.id DESC LIMIT ?1",
    [ST_USER_ADD] = "INSERT INTO users (name, role, skills, token_hash, created_s)"
                    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING RETURNING id",
    [ST_USER_BY_TOKEN] = "SELECT id, name, role, skills, token_hash, created_s FROM users"
                         " WHERE token_hash = ?1",
    [ST_USER_GET] = "SELECT id, name, role, skills, token_hash, created_s FROM users"
                    " WHERE id = ?1",
    [ST_USER_LIST] = "SELECT id, name, role, skills, token_hash, created_s FROM users"
                     " ORDER BY name LIMIT ?1",
    [ST_USER_REMOVE] = "DELETE FROM users WHERE name = ?1",
    [ST_EVENT_ADD] = "INSERT INTO events (kind, conversation, user_id, detail, created_s)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_FEEDBACK_ADD] = "INSERT INTO feedback (conversation, seq, helpful, article, question,"
                        " created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_UNANSWERED_ADD] = "INSERT INTO unanswered (conversation, question, lang, intent,"
                          " confidence, created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* The most asked of the last 10000 unanswered questions since ?1 (the same question in
     * any case counts once), most asked first. */
    [ST_UNANSWERED_LIST] = "SELECT min(question), min(lang), count(*), max(created_s) FROM"
                           " (SELECT question, lang, created_s FROM unanswered"
                           " WHERE created_s >= ?1 ORDER BY id DESC LIMIT 10000) AS u"
                           " GROUP BY lower(question) ORDER BY 3 DESC, 4 DESC, 1 LIMIT ?2",
    [ST_UNANSWERED_RESOLVE] = "DELETE FROM unanswered WHERE lower(question) = lower(?1)",
    [ST_STATS_TOTALS] =
        "SELECT count(*), coalesce(sum(queued_s = 0), 0), coalesce(sum(queued_s > 0), 0),"
        " coalesce(sum(picked_s > 0), 0),"
        " coalesce(sum(picked_s > 0 AND picked_s - queued_s <= ?3), 0),"
        " coalesce(sum(rating > 0), 0), coalesce(avg(nullif(rating, 0)), 0),"
        " coalesce(sum(rating >= 4), 0)"
        " FROM conversations c WHERE c.created_s >= ?1 AND c.created_s < ?2"
        " AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation = c.id"
        " AND m.sender = 'customer')",
    [ST_STATS_MEDIAN] = "SELECT c.picked_s - c.queued_s AS w FROM conversations c"
                        " WHERE c.created_s >= ?1 AND c.created_s < ?2 AND c.picked_s > 0"
                        " AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation = c.id"
                        " AND m.sender = 'customer')"
                        " ORDER BY w LIMIT 2 OFFSET ?3",
    [ST_STATS_QUEUES] = "SELECT queue, count(*) FROM conversations"
                        " WHERE created_s >= ?1 AND created_s < ?2 AND queued_s > 0"
                        " GROUP BY queue ORDER BY 2 DESC, 1 LIMIT ?3",
    [ST_STATS_DRIVERS] =
        "SELECT CASE WHEN disposition <> '' THEN disposition ELSE intent END AS d, count(*)"
        " FROM conversations WHERE created_s >= ?1 AND created_s < ?2 AND d <> ''"
        " GROUP BY d ORDER BY 2 DESC, 1 LIMIT ?3",
    [ST_STATS_UNANSWERED] = "SELECT min(question), count(*) FROM unanswered"
                            " WHERE created_s >= ?1 AND created_s < ?2"
                            " GROUP BY lower(question) ORDER BY 2 DESC, 1 LIMIT ?3",
    [ST_HAS_CUSTOMER_MESSAGE] = "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation = ?1"
                                " AND sender = 'customer')",
    [ST_EMAIL_CONVERSATIONS] = "SELECT id FROM conversations WHERE customer_email = ?1"
                               " COLLATE NOCASE AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_ERASE_EMAIL] = "DELETE FROM conversations WHERE id IN (SELECT id FROM conversations"
                       " WHERE customer_email = ?1 COLLATE NOCASE LIMIT ?2)",
    [ST_RETENTION] = "DELETE FROM conversations WHERE id IN (SELECT id FROM conversations"
                     " WHERE closed_s > 0 AND closed_s < ?1 AND state IN ('closed', 'rated')"
                     " LIMIT ?2)",
    [ST_CONV_NPS] = "SELECT nps, nps_comment FROM conversations WHERE id = ?1",
    /* PostgreSQL only: ST_SET_NODE, ST_PING, ST_NOTIFY, ST_AGENT_HERE, ST_AGENT_NODE, ST_ORPHANS,
     * ST_KB_JOURNAL, ST_KB_JOURNAL_READ. */
};

/* PostgreSQL's text of the statements whose SQLite text it does not take. */
static const char *const stmt_pg[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    /* Text sorts by bytes, as on SQLite, whatever the database's locale. */
    [ST_USER_LIST] = "SELECT id, name, role, skills, token_hash, created_s FROM users"
                     " ORDER BY name COLLATE \"C\" LIMIT ?1",
    [ST_UNANSWERED_LIST] = "SELECT min(question COLLATE \"C\"), min(lang), count(*),"
                           " max(created_s) FROM (SELECT question, lang, created_s FROM unanswered"
                           " WHERE created_s >= ?1 ORDER BY id DESC LIMIT 10000) AS u"
                           " GROUP BY lower(question) ORDER BY 3 DESC, 4 DESC, 1 LIMIT ?2",
    [ST_STATS_QUEUES] = "SELECT queue, count(*) FROM conversations"
                        " WHERE created_s >= ?1 AND created_s < ?2 AND queued_s > 0"
                        " GROUP BY queue ORDER BY 2 DESC, queue COLLATE \"C\" LIMIT ?3",
    [ST_STATS_UNANSWERED] = "SELECT min(question COLLATE \"C\"), count(*) FROM unanswered"
                            " WHERE created_s >= ?1 AND created_s < ?2"
                            " GROUP BY lower(question) ORDER BY 2 DESC, 1 LIMIT ?3",
    [ST_SET_NODE] = "SELECT set_config('caredesk.node', ?1, false)",
    [ST_AGENT_LOCK] = "SELECT id FROM users WHERE id = ?1 FOR UPDATE",
    [ST_PING] = "SELECT 1",
    [ST_NOTIFY] = "SELECT pg_notify('caredesk_events', '')",
    [ST_AGENT_HERE] = "INSERT INTO agent_nodes (agent_id, node, seen_ms) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (agent_id) DO UPDATE SET node = ?2, seen_ms = ?3",
    [ST_AGENT_NODE] = "SELECT node FROM agent_nodes WHERE agent_id = ?1",
    /* Chats whose agent no node has seen since ?1 (the agent's node died, and the agent did
     * not sign in anywhere else). */
    [ST_ORPHANS] = "SELECT c.id FROM conversations c LEFT JOIN agent_nodes a"
                   " ON a.agent_id = c.agent_id WHERE c.state = 'with_agent'"
                   " AND coalesce(a.seen_ms, 0) < ?1 ORDER BY c.id LIMIT ?2",
    [ST_KB_JOURNAL] = "WITH e AS (INSERT INTO node_events (conversation, kind, node, payload)"
                      " VALUES (0, 'k', ?1, ?2) RETURNING id)"
                      " SELECT pg_notify('caredesk_events', '') FROM e",
    [ST_KB_JOURNAL_READ] = "SELECT id, payload FROM node_events WHERE kind = 'k' AND id > ?1"
                           " AND id <= ?2 ORDER BY id LIMIT ?3",
    [ST_CONV_BY_EMAIL] = "SELECT id, created_s, state, intent, disposition FROM conversations"
                         " WHERE lower(customer_email) = lower(?1) AND id <> ?2"
                         " ORDER BY id DESC LIMIT ?3",
    /* The next seq from the conversation's counter, unless the client id is stored already
     * (then no row: the caller looks it up). */
    [ST_MSG_APPEND] = "WITH c AS (UPDATE conversations SET last_seq = last_seq + 1"
                      " WHERE id = ?1 AND (?3::text IS NULL OR NOT EXISTS (SELECT 1 FROM messages"
                      " WHERE conversation = ?1 AND client_id = ?3)) RETURNING last_seq)"
                      " INSERT INTO messages (" MSG_COLUMNS ")"
                      " SELECT ?1, c.last_seq, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM c RETURNING seq",
    /* At the seq the caller expects (store_message_send()): nothing if the conversation's
     * counter is elsewhere (another node wrote) or the client id is stored. */
    [ST_MSG_APPEND_AT] = "WITH c AS (UPDATE conversations SET last_seq = ?9"
                         " WHERE id = ?1 AND last_seq = ?9 - 1 AND (?3::text IS NULL OR"
                         " NOT EXISTS (SELECT 1 FROM messages WHERE conversation = ?1"
                         " AND client_id = ?3)) RETURNING last_seq)"
                         " INSERT INTO messages (" MSG_COLUMNS ")"
                         " SELECT ?1, c.last_seq, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM c"
                         " RETURNING seq",
/* A customer's question held by store_message_send() and the bot's reply to it, in one
 * statement (PAIR_TRIAGE: and the reply's triage columns): both at the seqs the caller
 * expects, or neither (as ST_MSG_APPEND_AT). */
#define MSG_PAIR_CTE(TRIAGE)                                                                       \
    "WITH c AS (UPDATE conversations SET last_seq = ?9 + 1" TRIAGE                                 \
    " WHERE id = ?1 AND last_seq = ?9 - 1 AND (?3::text IS NULL OR NOT EXISTS (SELECT 1"           \
    " FROM messages WHERE conversation = ?1 AND client_id = ?3)) RETURNING last_seq)"
#define MSG_PAIR_INSERT                                                                            \
    " INSERT INTO messages (" MSG_COLUMNS ") SELECT v.* FROM c, (VALUES"                           \
    " (?1::bigint, ?9::bigint, ?2::text, ?3::text, NULL::text, ?5::text, ?6::text,"                \
    " ?7::bigint, ?8::bigint), (?1, ?9 + 1, 'bot', NULL, ?4, ?10, ?11, 0, ?8)) AS v"               \
    " ORDER BY 2 RETURNING seq"
    [ST_MSG_PAIR] = MSG_PAIR_CTE("") MSG_PAIR_INSERT,
    [ST_MSG_PAIR_TRIAGE] =
        MSG_PAIR_CTE(", state = ?12, intent = ?13, confidence = ?14") MSG_PAIR_INSERT,
    /* The same with a bot reply's triage columns (store_message_append_triage()): the
     * reply and the state it leaves in one statement, one round trip. */
    [ST_MSG_APPEND_TRIAGE] = "WITH c AS (UPDATE conversations SET last_seq = last_seq + 1,"
                             " state = ?9, intent = ?10, confidence = ?11"
                             " WHERE id = ?1 AND (?3::text IS NULL OR NOT EXISTS (SELECT 1"
                             " FROM messages WHERE conversation = ?1 AND client_id = ?3))"
                             " RETURNING last_seq)"
                             " INSERT INTO messages (" MSG_COLUMNS ")"
                             " SELECT ?1, c.last_seq, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM c"
                             " RETURNING seq",
    [ST_MSG_BY_REPLY_TO] = "SELECT " MSG_COLUMNS " FROM messages"
                           " WHERE conversation = ?1 AND seq > ?3 AND reply_to = ?2"
                           " ORDER BY seq LIMIT 1",
    [ST_STATS_TOTALS] =
        "SELECT count(*), count(*) FILTER (WHERE queued_s = 0),"
        " count(*) FILTER (WHERE queued_s > 0), count(*) FILTER (WHERE picked_s > 0),"
        " count(*) FILTER (WHERE picked_s > 0 AND picked_s - queued_s <= ?3),"
        " count(*) FILTER (WHERE rating > 0), coalesce(avg(nullif(rating, 0)), 0),"
        " count(*) FILTER (WHERE rating >= 4)"
        " FROM conversations c WHERE c.created_s >= ?1 AND c.created_s < ?2"
        " AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation = c.id"
        " AND m.sender = 'customer')",
    [ST_STATS_DRIVERS] =
        "SELECT d, count(*) FROM (SELECT CASE WHEN disposition <> '' THEN disposition"
        " ELSE intent END AS d FROM conversations WHERE created_s >= ?1 AND created_s < ?2) AS x"
        " WHERE d <> '' GROUP BY d ORDER BY 2 DESC, d COLLATE \"C\" LIMIT ?3",
    [ST_EMAIL_CONVERSATIONS] = "SELECT id FROM conversations WHERE lower(customer_email) ="
                               " lower(?1) AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_ERASE_EMAIL] = "DELETE FROM conversations WHERE id IN (SELECT id FROM conversations"
                       " WHERE lower(customer_email) = lower(?1) LIMIT ?2)",
};

static const char *const state_names[] = {"bot",        "clarifying", "collecting", "queued",
                                          "with_agent", "closed",     "rated"};
static const char *const sender_names[] = {"customer", "bot", "agent", "system"};

const char *store_state_name(int state)
{
    if (state < 0 || state >= (int)(sizeof state_names / sizeof state_names[0]))
        return "bot";
    return state_names[state];
}

int store_state_parse(const char *name)
{
    for (int i = 0; name && i < (int)(sizeof state_names / sizeof state_names[0]); i++)
        if (!strcmp(name, state_names[i]))
            return i;
    return -1;
}

const char *store_sender_name(int sender)
{
    if (sender < 0 || sender >= (int)(sizeof sender_names / sizeof sender_names[0]))
        return "system";
    return sender_names[sender];
}

static int sender_parse(const char *name)
{
    for (int i = 0; name && i < (int)(sizeof sender_names / sizeof sender_names[0]); i++)
        if (!strcmp(name, sender_names[i]))
            return i;
    return STORE_SENDER_SYSTEM;
}

static void send_ahead(struct store *s);
static int append_pair(struct store *s, struct store_message *m,
                       const struct store_conversation *t);

static struct db_stmt *st(struct store *s, enum stmt_id id)
{
    if (s->ahead_state == AHEAD_HELD && id != ST_MSG_PAIR && id != ST_MSG_PAIR_TRIAGE)
        send_ahead(s); /* a held message goes before any other statement */
    struct db_stmt *stmt = s->stmt[id];
    db_clear(stmt);
    return stmt;
}

static void copy_col(char *dst, size_t cap, struct db_stmt *stmt, int col)
{
    snprintf(dst, cap, "%s", db_col_str(stmt, col));
}

/* A malloc'd copy of a text column, NULL for NULL (or no memory). */
static char *dup_col(struct db_stmt *stmt, int col)
{
    const char *t = db_col_text(stmt, col);
    return t ? cd_strndup(t, db_col_bytes(stmt, col)) : NULL;
}

/* Steps a statement that returns at most one row of one integer (an INSERT ... RETURNING):
 * *out gets it; 0 if there was a row, 1 if none, or CD_E*. */
static int run_returning(struct db_stmt *stmt, int64_t *out)
{
    int rc = db_step(stmt);
    if (rc == DB_ROW) {
        *out = db_col_int64(stmt, 0);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = 1;
    }
    db_reset(stmt);
    return rc;
}

/* ---- open, close, transactions ---- */

int store_schema_check(int version, char **err)
{
    if (version <= STORE_SCHEMA_VERSION)
        return 0;
    if (err) {
        *err = malloc(128);
        if (*err)
            snprintf(*err, 128, "database schema version %d is newer than this caredesk (%d)",
                     version, STORE_SCHEMA_VERSION);
    }
    return CD_EINVAL;
}

int store_target_is_postgres(const char *target)
{
    return db_target_is_postgres(target);
}

struct store *store_open(const char *target, const struct store_options *options, char **err)
{
    if (err)
        *err = NULL;
    if (!target || !*target) {
        if (err)
            *err = cd_strndup("database path is empty", 22);
        return NULL;
    }
    _Static_assert(ST_COUNT <= STORE_MAX_STMT, "STORE_MAX_STMT is too small");
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    int rc = db_target_is_postgres(target) ? store_pg_open(s, target, err)
                                           : store_sqlite_open(s, target, options, err);
    if (rc)
        goto fail;
    for (int i = 0; i < ST_COUNT; i++) {
        if (s->sqlite && !stmt_sql[i])
            continue; /* PostgreSQL's only */
        s->stmt[i] = db_prepare2(s->db, stmt_sql[i], stmt_pg[i], err);
        if (!s->stmt[i])
            goto fail;
    }
    for (int k = 0; !s->sqlite && k < STORE_TICKETS; k++)
        for (int t = 0; t < 2; t++)
            if (!(s->pair[k][t] =
                      db_prepare2(s->db, NULL, stmt_pg[t ? ST_MSG_PAIR_TRIAGE : ST_MSG_PAIR], err)))
                goto fail;
    return s;
fail:
    store_close(s);
    return NULL;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->is_in_tx)
        store_commit(s);
    store_outbox_free(s);
    db_close(s->db); /* finalizes s->stmt[] */
    store_sqlite_close(s);
    free(s);
}

int store_migrate_to(const char *target, int version)
{
    if (!target || version < 1 || version > STORE_SCHEMA_VERSION)
        return CD_EINVAL;
    return db_target_is_postgres(target) ? store_pg_migrate_to(target, version)
                                         : store_sqlite_migrate_to(target, version);
}

int64_t store_housekeeping_runs(struct store *s)
{
    return s ? store_sqlite_housekeeping_runs(s) : 0;
}

int store_schema_version(struct store *s)
{
    return s->sqlite ? store_sqlite_schema_version(s) : store_pg_schema_version(s);
}

int store_is_up(struct store *s)
{
    return db_is_up(s->db);
}

static int apply_node(struct store *s);

/* PostgreSQL: a new connection, at most once a second (each try can take the connect
 * timeout). */
static int reconnect(struct store *s)
{
    int64_t now = cd_wall_s();
    if (now == s->last_reconnect_s)
        return CD_EIO;
    s->last_reconnect_s = now;
    return db_reconnect(s->db) || apply_node(s) ? CD_EIO : 0;
}

int store_ping(struct store *s)
{
    if (s->sqlite)
        return 0;
    if (!db_is_up(s->db) && (s->is_in_tx || reconnect(s)))
        return CD_EIO;
    return db_run(st(s, ST_PING));
}

static int apply_node(struct store *s)
{
    if (s->sqlite || !s->node[0])
        return 0;
    struct db_stmt *q = st(s, ST_SET_NODE);
    db_bind_text(q, 1, s->node);
    return db_run(q);
}

static int tx_ok(struct store *s);

int store_agent_here(struct store *s, int64_t agent_id)
{
    if (s->sqlite || !s->node[0])
        return 0;
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *q = st(s, ST_AGENT_HERE);
    db_bind_int64(q, 1, agent_id);
    db_bind_text(q, 2, s->node);
    db_bind_int64(q, 3, cd_wall_s() * 1000);
    return db_run(q);
}

int store_agent_node(struct store *s, int64_t agent_id, char *out, size_t cap)
{
    out[0] = 0;
    if (s->sqlite)
        return CD_ENOTFOUND;
    struct db_stmt *q = st(s, ST_AGENT_NODE);
    db_bind_int64(q, 1, agent_id);
    int rc = db_step(q);
    if (rc == DB_ROW)
        snprintf(out, cap, "%s", db_col_str(q, 0));
    db_reset(q);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? CD_ENOTFOUND : rc;
}

int store_orphaned_chats(struct store *s, int64_t seen_before_ms, int64_t *ids, int max, int *n_out)
{
    *n_out = 0;
    if (s->sqlite)
        return 0;
    struct db_stmt *q = st(s, ST_ORPHANS);
    db_bind_int64(q, 1, seen_before_ms);
    db_bind_int64(q, 2, max);
    int rc;
    while ((rc = db_step(q)) == DB_ROW && *n_out < max)
        ids[(*n_out)++] = db_col_int64(q, 0);
    db_reset(q);
    return rc < 0 ? rc : 0;
}

int store_kb_journal(struct store *s, const char *op)
{
    if (s->sqlite)
        return CD_EINVAL;
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *q = st(s, ST_KB_JOURNAL);
    db_bind_text(q, 1, s->node);
    db_bind_text(q, 2, op);
    return db_run(q);
}

int store_kb_journal_each(struct store *s, int64_t upto_id, int (*cb)(void *ctx, const char *op),
                          void *ctx)
{
    if (s->sqlite)
        return 0;
    int64_t after = 0;
    for (;;) {
        struct db_stmt *q = st(s, ST_KB_JOURNAL_READ);
        db_bind_int64(q, 1, after);
        db_bind_int64(q, 2, upto_id);
        db_bind_int64(q, 3, 500);
        int rc, n = 0;
        while ((rc = db_step(q)) == DB_ROW) {
            after = db_col_int64(q, 0);
            n++;
            int r = cb(ctx, db_col_str(q, 1));
            if (r) {
                db_reset(q);
                return r;
            }
        }
        db_reset(q);
        if (rc < 0)
            return rc;
        if (n < 500)
            return 0;
    }
}

int store_set_node(struct store *s, const char *node_id)
{
    snprintf(s->node, sizeof s->node, "%s", node_id ? node_id : "");
    return apply_node(s);
}

int store_begin(struct store *s)
{
    if (s->is_in_tx)
        return 0;
    if (s->sqlite)
        store_sqlite_before_begin(s);
    else if (!db_is_up(s->db) && reconnect(s))
        return CD_EIO; /* PostgreSQL is still away: try again later */
    int rc = db_run(st(s, ST_BEGIN));
    if (!rc)
        s->is_in_tx = 1;
    return rc;
}

/* 0 if writes may go ahead: no group is open, or the open one is still alive. SQLite rolls a
 * whole transaction back by itself after some errors (disk full, I/O error), PostgreSQL
 * after any; later writes would then commit one by one outside the group (SQLite) or fail
 * (PostgreSQL), so they are refused until the group is ended. */
static int tx_ok(struct store *s)
{
    return s->is_in_tx && db_tx_failed(s->db) ? CD_EIO : 0;
}

int store_mark(struct store *s)
{
    int rc = store_begin(s);
    if (rc)
        return rc;
    rc = tx_ok(s);
    if (!rc && !s->is_marked) {
        rc = db_defer(st(s, ST_MARK)); /* PostgreSQL: sent with the unit's first statement */
        if (!rc)
            s->is_marked = 1;
    }
    return rc;
}

void store_mark_release(struct store *s)
{
    if (s->is_marked && !db_tx_failed(s->db))
        db_defer(st(s, ST_MARK_RELEASE));
    s->is_marked = 0;
}

void store_mark_undo(struct store *s)
{
    s->ahead_state = AHEAD_NONE; /* a held message is dropped unsent, a sent one undone */
    /* A failed PostgreSQL transaction can still go back to its savepoint. */
    if (s->is_marked && db_in_tx(s->db)) {
        db_run(st(s, ST_MARK_UNDO));
        db_run(st(s, ST_MARK_RELEASE));
    }
    s->is_marked = 0;
}

int store_commit(struct store *s)
{
    s->is_marked = 0;
    if (!s->is_in_tx)
        return 0;
    if (db_tx_failed(s->db)) { /* rolled back (SQLite) or aborted (PostgreSQL) */
        if (db_in_tx(s->db))
            db_run(st(s, ST_ROLLBACK));
        s->is_in_tx = 0;
        return CD_EIO;
    }
    /* Other nodes hear of the group's messages when it commits (cluster.h). */
    if (s->is_notify_due && !s->sqlite)
        db_defer(st(s, ST_NOTIFY)); /* in the commit's round trip */
    s->is_notify_due = 0;
    int rc = db_run(st(s, ST_COMMIT));
    if (rc) {
        /* A failed COMMIT may leave the transaction open: end it, so that
         * none of its writes happen and the next turn starts clean. */
        if (db_in_tx(s->db))
            db_run(st(s, ST_ROLLBACK));
    }
    s->is_in_tx = 0;
    return rc;
}

void store_rollback(struct store *s)
{
    s->is_marked = 0;
    s->is_notify_due = 0;
    if (!s->is_in_tx)
        return;
    if (db_in_tx(s->db))
        db_run(st(s, ST_ROLLBACK));
    s->is_in_tx = 0;
}

int store_in_transaction(const struct store *s)
{
    return s->is_in_tx;
}

/* ---- conversations ---- */

/* How a field of struct store_conversation is held. */
enum conv_field {
    CONV_DUP,    /* char *, malloc'd or NULL */
    CONV_ARRAY,  /* char[], NUL-terminated */
    CONV_INT,    /* int */
    CONV_INT64,  /* int64_t */
    CONV_DOUBLE, /* double */
};

/* A plain field of struct store_conversation: where CONV_COLUMNS returns it and which ?N of
 * CONV_UPDATE writes it (0 = not written by an update). id, token_hash, state and lang are
 * read and bound by hand: they are converted or defaulted on the way. */
struct conv_column {
    enum conv_field kind;
    int col;
    int param;
    size_t offset;
    size_t size;
};

#define CONV_COLUMN(kind, field, col, param)                                                       \
    {                                                                                              \
        kind, col, param, offsetof(struct store_conversation, field),                              \
            sizeof(((struct store_conversation *)0)->field)                                        \
    }

/* clang-format off */
static const struct conv_column conv_columns[] = {
    CONV_COLUMN(CONV_DUP, customer_name, 4, 4),
    CONV_COLUMN(CONV_DUP, customer_email, 5, 5),
    CONV_COLUMN(CONV_DUP, customer_page, 6, 6),
    CONV_COLUMN(CONV_ARRAY, queue, 7, 7),
    CONV_COLUMN(CONV_ARRAY, intent, 8, 8),
    CONV_COLUMN(CONV_DOUBLE, confidence, 9, 9),
    CONV_COLUMN(CONV_INT, priority, 10, 10),
    CONV_COLUMN(CONV_INT, is_offline, 11, 11),
    CONV_COLUMN(CONV_INT64, agent_id, 12, 12),
    CONV_COLUMN(CONV_INT64, created_s, 13, 0),
    CONV_COLUMN(CONV_INT64, queued_s, 14, 13),
    CONV_COLUMN(CONV_INT64, picked_s, 15, 14),
    CONV_COLUMN(CONV_INT64, closed_s, 16, 15),
    CONV_COLUMN(CONV_ARRAY, closed_by, 17, 16),
    CONV_COLUMN(CONV_ARRAY, disposition, 18, 17),
    CONV_COLUMN(CONV_DUP, note, 19, 18),
    CONV_COLUMN(CONV_INT, rating, 20, 19),
    CONV_COLUMN(CONV_DUP, comment, 21, 20),
    CONV_COLUMN(CONV_INT64, last_seq, 22, 0),
};
/* clang-format on */

#define N_CONV_COLUMNS ((int)(sizeof conv_columns / sizeof conv_columns[0]))

void store_conversation_clear(struct store_conversation *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_CONV_COLUMNS; i++)
        if (conv_columns[i].kind == CONV_DUP)
            free(*(char **)((char *)c + conv_columns[i].offset));
    memset(c, 0, sizeof *c);
}

static int read_conversation(struct db_stmt *stmt, struct store_conversation *c)
{
    memset(c, 0, sizeof *c);
    c->id = db_col_int64(stmt, 0);
    if (db_col_bytes(stmt, 1) == STORE_HASH_LEN)
        memcpy(c->token_hash, db_col_blob(stmt, 1), STORE_HASH_LEN);
    int state = store_state_parse(db_col_text(stmt, 2));
    c->state = state < 0 ? STORE_STATE_BOT : state;
    copy_col(c->lang, sizeof c->lang, stmt, 3);
    for (int i = 0; i < N_CONV_COLUMNS; i++) {
        const struct conv_column *k = &conv_columns[i];
        void *field = (char *)c + k->offset;
        switch (k->kind) {
        case CONV_DUP:
            *(char **)field = dup_col(stmt, k->col);
            break;
        case CONV_ARRAY:
            copy_col(field, k->size, stmt, k->col);
            break;
        case CONV_INT:
            *(int *)field = db_col_int(stmt, k->col);
            break;
        case CONV_INT64:
            *(int64_t *)field = db_col_int64(stmt, k->col);
            break;
        case CONV_DOUBLE:
            *(double *)field = db_col_double(stmt, k->col);
            break;
        }
    }
    return 0;
}

/* Binds c's fields to ?2..?20 of CONV_UPDATE (?1, the id, too). */
static void bind_conversation_update(struct db_stmt *stmt, const struct store_conversation *c)
{
    db_bind_int64(stmt, 1, c->id);
    db_bind_text(stmt, 2, store_state_name(c->state));
    db_bind_text(stmt, 3, c->lang[0] ? c->lang : "en");
    for (int i = 0; i < N_CONV_COLUMNS; i++) {
        const struct conv_column *k = &conv_columns[i];
        const void *field = (const char *)c + k->offset;
        if (!k->param)
            continue;
        switch (k->kind) {
        case CONV_DUP:
            db_bind_text(stmt, k->param, *(char *const *)field);
            break;
        case CONV_ARRAY:
            db_bind_text(stmt, k->param, field);
            break;
        case CONV_INT:
            db_bind_int64(stmt, k->param, *(const int *)field);
            break;
        case CONV_INT64:
            db_bind_int64(stmt, k->param, *(const int64_t *)field);
            break;
        case CONV_DOUBLE:
            db_bind_double(stmt, k->param, *(const double *)field);
            break;
        }
    }
}

/* Tells the observer of a change to conversation id: the row as it is now, with before and
 * m as given. Returns what the observer returns. */
static int observe(struct store *s, int kind, int64_t id, const struct store_conversation *before,
                   const struct store_message *m)
{
    struct store_conversation after;
    int rc = store_conversation_get(s, id, &after);
    if (rc)
        return rc;
    struct store_change change = {kind, before, &after, m};
    rc = s->observer(s->observer_ctx, s, &change);
    store_conversation_clear(&after);
    return rc;
}

void store_set_observer(struct store *s, store_observer_fn fn, void *ctx)
{
    s->observer = fn;
    s->observer_ctx = ctx;
}

struct db *store_db(struct store *s)
{
    return s->db;
}

struct db_stmt *store_db_prepare(struct store *s, const char *sql, const char *pg_sql)
{
    char *err = NULL;
    struct db_stmt *stmt = db_prepare2(s->db, sql, pg_sql, &err);
    free(err);
    return stmt;
}

struct db_stmt *store_db_prepare_window(struct store *s, const char *sql, const char *pg_sql,
                                        int64_t since_s, int64_t until_s)
{
    struct db_stmt *stmt = store_db_prepare(s, sql, pg_sql);
    if (stmt) {
        db_bind_int64(stmt, 1, since_s);
        db_bind_int64(stmt, 2, until_s);
    }
    return stmt;
}

void **store_outbox_slot(struct store *s)
{
    return &s->outbox;
}

int store_conversation_create(struct store *s, struct store_conversation *c)
{
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *stmt = st(s, ST_CONV_CREATE);
    db_bind_blob(stmt, 1, c->token_hash, STORE_HASH_LEN);
    db_bind_text(stmt, 2, store_state_name(c->state));
    db_bind_text(stmt, 3, c->lang[0] ? c->lang : "en");
    db_bind_text(stmt, 4, c->customer_name);
    db_bind_text(stmt, 5, c->customer_email);
    db_bind_text(stmt, 6, c->customer_page);
    if (!c->created_s)
        c->created_s = cd_wall_s();
    db_bind_int64(stmt, 7, c->created_s);
    int rc = run_returning(stmt, &c->id);
    if (rc == 1)
        rc = CD_EIO;
    if (!rc && s->observer)
        rc = observe(s, STORE_CHANGE_CONVERSATION_CREATED, c->id, NULL, NULL);
    return rc;
}

static int get_one_conversation(struct db_stmt *stmt, struct store_conversation *out)
{
    int rc = db_step(stmt);
    if (rc == DB_ROW)
        rc = read_conversation(stmt, out);
    else if (rc == DB_DONE)
        rc = CD_ENOTFOUND;
    db_reset(stmt);
    return rc;
}

int store_conversation_get(struct store *s, int64_t id, struct store_conversation *out)
{
    struct db_stmt *stmt = st(s, ST_CONV_GET);
    db_bind_int64(stmt, 1, id);
    return get_one_conversation(stmt, out);
}

int store_conversation_by_token(struct store *s, const unsigned char hash[STORE_HASH_LEN],
                                struct store_conversation *out)
{
    struct db_stmt *stmt = st(s, ST_CONV_BY_TOKEN);
    db_bind_blob(stmt, 1, hash, STORE_HASH_LEN);
    return get_one_conversation(stmt, out);
}

int store_conversation_update(struct store *s, const struct store_conversation *c)
{
    return store_conversation_update_if(s, c, -1, 0);
}

int store_conversation_update_if(struct store *s, const struct store_conversation *c,
                                 int expect_state, int64_t expect_agent)
{
    if (tx_ok(s))
        return CD_EIO;
    struct store_conversation before = {0};
    if (s->observer && store_conversation_get(s, c->id, &before))
        return CD_ENOTFOUND;
    struct db_stmt *stmt = st(s, expect_state < 0 ? ST_CONV_UPDATE : ST_CONV_UPDATE_IF);
    bind_conversation_update(stmt, c);
    if (expect_state >= 0) {
        db_bind_text(stmt, 21, store_state_name(expect_state));
        db_bind_int64(stmt, 22, expect_agent);
    }
    int rc = db_run(stmt);
    if (!rc && db_changes(s->db) == 0) {
        /* No such conversation, or (expecting) another node changed it meanwhile. */
        struct store_conversation now;
        rc = expect_state >= 0 && store_conversation_get(s, c->id, &now) == 0 ? CD_EBUSY
                                                                              : CD_ENOTFOUND;
        if (rc == CD_EBUSY)
            store_conversation_clear(&now);
    }
    if (!rc && s->observer)
        rc = observe(s, STORE_CHANGE_CONVERSATION_UPDATED, c->id, &before, NULL);
    store_conversation_clear(&before);
    return rc;
}

int store_conversation_update_triage(struct store *s, const struct store_conversation *c)
{
    if (tx_ok(s))
        return CD_EIO;
    struct store_conversation before = {0};
    if (s->observer && store_conversation_get(s, c->id, &before))
        return CD_ENOTFOUND;
    struct db_stmt *stmt = st(s, ST_CONV_UPDATE_TRIAGE);
    db_bind_int64(stmt, 1, c->id);
    db_bind_text(stmt, 2, store_state_name(c->state));
    db_bind_text(stmt, 3, c->intent);
    db_bind_double(stmt, 4, c->confidence);
    int rc = db_run(stmt);
    if (!rc && db_changes(s->db) == 0)
        rc = CD_ENOTFOUND;
    if (!rc && s->observer)
        rc = observe(s, STORE_CHANGE_CONVERSATION_UPDATED, c->id, &before, NULL);
    store_conversation_clear(&before);
    return rc;
}

int store_conversation_claim(struct store *s, int64_t id, int64_t agent_id, int64_t now_s)
{
    return store_conversation_claim_within(s, id, agent_id, now_s, 0);
}

int store_conversation_claim_within(struct store *s, int64_t id, int64_t agent_id, int64_t now_s,
                                    int capacity)
{
    if (tx_ok(s))
        return CD_EIO;
    int rc = 0;
    if (capacity > 0) {
        /* Claims for one agent wait for each other here (PostgreSQL: the agent's row lock,
         * held to the commit), so the count below sees every earlier claim of any node. */
        struct db_stmt *lock = st(s, ST_AGENT_LOCK);
        db_bind_int64(lock, 1, agent_id);
        rc = db_run(lock);
        if (rc)
            return rc;
    }
    struct db_stmt *stmt = st(s, ST_CONV_CLAIM);
    db_bind_int64(stmt, 1, id);
    db_bind_int64(stmt, 2, agent_id);
    db_bind_int64(stmt, 3, now_s);
    db_bind_int64(stmt, 4, capacity);
    rc = db_run(stmt);
    if (rc)
        return rc;
    if (db_changes(s->db) == 1)
        return s->observer ? observe(s, STORE_CHANGE_CONVERSATION_CLAIMED, id, NULL, NULL) : 0;
    struct store_conversation c;
    rc = store_conversation_get(s, id, &c);
    int is_queued = !rc && c.state == STORE_STATE_QUEUED;
    store_conversation_clear(&c);
    return rc ? rc : is_queued ? CD_EPERM : CD_EBUSY;
}

int store_conversations_open(struct store *s, int max,
                             int (*cb)(void *ctx, const struct store_conversation *c), void *ctx)
{
    struct db_stmt *stmt = st(s, ST_CONV_OPEN);
    db_bind_int64(stmt, 1, max);
    int rc;
    while ((rc = db_step(stmt)) == DB_ROW) {
        struct store_conversation c;
        read_conversation(stmt, &c);
        int r = cb(ctx, &c);
        store_conversation_clear(&c);
        if (r) {
            db_reset(stmt);
            return r;
        }
    }
    db_reset(stmt);
    return rc == DB_DONE ? 0 : rc;
}

int store_conversations_by_email(struct store *s, const char *email, int64_t exclude_id,
                                 struct store_history_item *out, int max, int *n_out)
{
    *n_out = 0;
    if (!email || !*email || max <= 0)
        return 0;
    struct db_stmt *stmt = st(s, ST_CONV_BY_EMAIL);
    db_bind_text(stmt, 1, email);
    db_bind_int64(stmt, 2, exclude_id);
    db_bind_int64(stmt, 3, max);
    int rc;
    while ((rc = db_step(stmt)) == DB_ROW && *n_out < max) {
        struct store_history_item *h = &out[(*n_out)++];
        memset(h, 0, sizeof *h);
        h->conversation = db_col_int64(stmt, 0);
        h->created_s = db_col_int64(stmt, 1);
        int state = store_state_parse(db_col_text(stmt, 2));
        h->state = state < 0 ? 0 : state;
        copy_col(h->intent, sizeof h->intent, stmt, 3);
        copy_col(h->disposition, sizeof h->disposition, stmt, 4);
    }
    db_reset(stmt);
    return rc == DB_DONE || rc == DB_ROW ? 0 : rc;
}

/* ---- messages ---- */

static void read_message(struct db_stmt *stmt, struct store_message *m)
{
    memset(m, 0, sizeof *m);
    m->conversation = db_col_int64(stmt, 0);
    m->seq = db_col_int64(stmt, 1);
    m->sender = sender_parse(db_col_text(stmt, 2));
    copy_col(m->client_id, sizeof m->client_id, stmt, 3);
    copy_col(m->reply_to, sizeof m->reply_to, stmt, 4);
    m->text = db_col_str(stmt, 5);
    m->meta = db_col_text(stmt, 6);
    m->agent_id = db_col_int64(stmt, 7);
    m->created_s = db_col_int64(stmt, 8);
}

/* Looks up the seq of the message with this client id; 0 if none. */
static int64_t seq_of_client_id(struct store *s, int64_t conversation, const char *client_id)
{
    struct db_stmt *stmt = st(s, ST_MSG_BY_CLIENT_ID);
    db_bind_int64(stmt, 1, conversation);
    db_bind_text(stmt, 2, client_id);
    int64_t seq = 0;
    if (db_step(stmt) == DB_ROW)
        seq = db_col_int64(stmt, 1);
    db_reset(stmt);
    return seq;
}

/* Binds the columns of m shared by both append statements. */
static void bind_message(struct db_stmt *stmt, struct store_message *m)
{
    db_bind_int64(stmt, 1, m->conversation);
    db_bind_text(stmt, 2, store_sender_name(m->sender));
    db_bind_text(stmt, 3, m->client_id[0] ? m->client_id : NULL);
    db_bind_text(stmt, 4, m->reply_to[0] ? m->reply_to : NULL);
    db_bind_text(stmt, 5, m->text ? m->text : "");
    db_bind_text(stmt, 6, m->meta);
    db_bind_int64(stmt, 7, m->agent_id);
    if (!m->created_s)
        m->created_s = cd_wall_s();
    db_bind_int64(stmt, 8, m->created_s);
}

/* After a constraint failure: a client id seen before is CD_EEXIST with
 * its stored seq; anything else is 1 (the seq was taken). */
static int client_id_conflict(struct store *s, struct store_message *m)
{
    if (m->client_id[0]) {
        int64_t seq = seq_of_client_id(s, m->conversation, m->client_id);
        if (seq > 0) {
            m->seq = seq;
            return CD_EEXIST;
        }
    }
    return 1;
}

/* store_message_append(), and with t (not NULL) store_conversation_update_triage(t) in the
 * same statement on PostgreSQL. */
static int append(struct store *s, struct store_message *m, const struct store_conversation *t)
{
    if (tx_ok(s))
        return CD_EIO;
    if (s->ahead_state == AHEAD_HELD && m->sender == STORE_SENDER_BOT &&
        m->conversation == s->ahead->conversation)
        return append_pair(s, m, t);
    int64_t seq = 0;
    int rc = 1;
    if (m->seq > 0 && s->sqlite) {
        /* The caller knows the next seq: a plain insert. Nothing is inserted if that seq is
         * taken after all (another writer) or the client id is stored: see below. (On
         * PostgreSQL several nodes append, and the conversation's counter decides.) */
        struct db_stmt *stmt = st(s, ST_MSG_INSERT);
        bind_message(stmt, m);
        db_bind_int64(stmt, 9, m->seq);
        rc = db_run(stmt);
        if (rc < 0)
            return rc;
        if (db_changes(s->db) == 1) {
            seq = m->seq;
            rc = 0;
        } else {
            rc = 1;
        }
        if (rc == 1) {
            int r = client_id_conflict(s, m);
            if (r != 1)
                return r;
        }
    }
    if (rc == 1) {
        struct db_stmt *stmt = st(s, t ? ST_MSG_APPEND_TRIAGE : ST_MSG_APPEND);
        bind_message(stmt, m);
        if (t) {
            db_bind_text(stmt, 9, store_state_name(t->state));
            db_bind_text(stmt, 10, t->intent);
            db_bind_double(stmt, 11, t->confidence);
        }
        rc = run_returning(stmt, &seq);
        if (rc == 1 || rc == CD_EEXIST) {
            /* A client id stored already (by another node, on PostgreSQL, just now), or no
             * such conversation. */
            int r = client_id_conflict(s, m);
            return r != 1 ? r : rc == 1 ? CD_ENOTFOUND : CD_EEXIST;
        }
        if (rc)
            return rc;
    }
    m->seq = seq;
    if (!s->sqlite) {
        if (s->is_in_tx)
            s->is_notify_due = 1;
        else
            db_run(st(s, ST_NOTIFY)); /* committed by itself: ring now */
    }
    return s->observer ? observe(s, STORE_CHANGE_MESSAGE_APPENDED, m->conversation, NULL, m) : 0;
}

int store_message_append(struct store *s, struct store_message *m)
{
    return append(s, m, NULL);
}

int store_sends_ahead(const struct store *s)
{
    /* SQLite has no round trip to save; an observer reads the store as each change lands. */
    return !s->sqlite && !s->observer;
}

int store_message_send(struct store *s, struct store_message *m)
{
    if (!store_sends_ahead(s) || !s->is_in_tx || m->seq <= 0)
        return 1;
    if (tx_ok(s))
        return CD_EIO;
    if (s->ahead_state == AHEAD_HELD)
        send_ahead(s);
    if (!m->created_s)
        m->created_s = cd_wall_s();
    s->ahead = m;
    s->ahead_state = AHEAD_HELD;
    return 0;
}

/* Sends the held message alone (db_send(): its result comes with the next round trip). */
static void send_ahead(struct store *s)
{
    struct store_message *m = s->ahead;
    s->ahead_state = AHEAD_SENT;
    struct db_stmt *stmt = st(s, ST_MSG_APPEND_AT);
    bind_message(stmt, m);
    db_bind_int64(stmt, 9, m->seq);
    s->ahead_rc = db_send(stmt);
    if (s->ahead_rc)
        s->ahead_state = AHEAD_DONE;
}

static void bind_pair(struct db_stmt *stmt, struct store_message *q, struct store_message *m,
                      const struct store_conversation *t)
{
    bind_message(stmt, q);
    db_bind_text(stmt, 4, m->reply_to[0] ? m->reply_to : NULL);
    db_bind_int64(stmt, 9, q->seq);
    db_bind_text(stmt, 10, m->text ? m->text : "");
    db_bind_text(stmt, 11, m->meta);
    if (t) {
        db_bind_text(stmt, 12, store_state_name(t->state));
        db_bind_text(stmt, 13, t->intent);
        db_bind_double(stmt, 14, t->confidence);
    }
}

int store_message_pair_send(struct store *s, struct store_message *m,
                            const struct store_conversation *t, int *ticket)
{
    if (s->ahead_state != AHEAD_HELD || m->sender != STORE_SENDER_BOT ||
        m->conversation != s->ahead->conversation)
        return 1;
    int k = 0;
    while (k < STORE_TICKETS && s->is_ticket_used[k])
        k++;
    if (k == STORE_TICKETS)
        return 1;
    if (tx_ok(s))
        return CD_EIO;
    struct store_message *q = s->ahead;
    struct db_stmt *stmt = s->pair[k][t != NULL];
    db_clear(stmt);
    bind_pair(stmt, q, m, t);
    int rc = db_send(stmt);
    if (rc)
        return rc;
    s->ahead_state = AHEAD_NONE;
    s->is_ticket_used[k] = 1;
    m->seq = q->seq + 1;
    m->created_s = q->created_s;
    *ticket = k * 2 + (t != NULL);
    return 0;
}

/* What a question-and-reply statement did: 0 (both rows stored), CD_EBUSY (neither) or
 * CD_E*. */
static int pair_done(struct store *s, struct db_stmt *stmt)
{
    int n = 0, rc;
    while ((rc = db_step(stmt)) == DB_ROW)
        n++;
    db_reset(stmt);
    rc = rc < 0 ? rc : n == 2 ? 0 : CD_EBUSY;
    if (!rc)
        s->is_notify_due = 1;
    return rc;
}

int store_message_pair_result(struct store *s, int ticket)
{
    if (ticket < 0 || ticket >= STORE_TICKETS * 2 || !s->is_ticket_used[ticket / 2])
        return CD_EINVAL;
    s->is_ticket_used[ticket / 2] = 0;
    return pair_done(s, s->pair[ticket / 2][ticket % 2]);
}

/* The held message and m, the bot's reply to it, in one statement (and t's triage columns
 * when t is not NULL). Returns 0 (both stored, m->seq set) or CD_EBUSY (neither: see
 * store_message_send()) or CD_E*. */
static int append_pair(struct store *s, struct store_message *m, const struct store_conversation *t)
{
    struct store_message *q = s->ahead;
    struct db_stmt *stmt = st(s, t ? ST_MSG_PAIR_TRIAGE : ST_MSG_PAIR);
    bind_pair(stmt, q, m, t);
    int rc = pair_done(s, stmt);
    s->ahead_state = AHEAD_DONE;
    s->ahead_rc = rc;
    if (!rc) {
        m->seq = q->seq + 1; /* the reply's, as the statement stored it */
        m->created_s = q->created_s;
    }
    return rc;
}

int store_message_sent(struct store *s, struct store_message *m)
{
    int state = s->ahead_state;
    s->ahead_state = AHEAD_NONE;
    if (s->ahead != m || state == AHEAD_NONE)
        return CD_EINVAL;
    if (state == AHEAD_HELD) { /* nothing carried it: alone, now */
        send_ahead(s);
        state = s->ahead_state;
        s->ahead_state = AHEAD_NONE;
    }
    if (state == AHEAD_DONE)
        return s->ahead_rc;
    int64_t seq = 0;
    /* Not st(): that would clear the result the statement is waiting for. */
    int rc = run_returning(s->stmt[ST_MSG_APPEND_AT], &seq);
    if (rc)
        return rc == 1 ? CD_EBUSY : rc;
    m->seq = seq;
    s->is_notify_due = 1;
    return 0;
}

int store_message_append_triage(struct store *s, struct store_message *m,
                                const struct store_conversation *t)
{
    /* SQLite has no round trip to save; an observer wants the row before the change. */
    if (s->sqlite || s->observer) {
        int rc = append(s, m, NULL);
        return rc ? rc : store_conversation_update_triage(s, t);
    }
    return append(s, m, t);
}

int store_messages_after(struct store *s, int64_t conversation, int64_t after_seq, int max,
                         int (*cb)(void *ctx, const struct store_message *m), void *ctx)
{
    struct db_stmt *stmt = st(s, ST_MSG_AFTER);
    db_bind_int64(stmt, 1, conversation);
    db_bind_int64(stmt, 2, after_seq);
    db_bind_int64(stmt, 3, max);
    int rc;
    while ((rc = db_step(stmt)) == DB_ROW) {
        struct store_message m;
        read_message(stmt, &m);
        int r = cb(ctx, &m);
        if (r) {
            db_reset(stmt);
            return r;
        }
    }
    db_reset(stmt);
    return rc == DB_DONE ? 0 : rc;
}

int store_message_by_client_id(struct store *s, int64_t conversation, const char *client_id,
                               int (*cb)(void *ctx, const struct store_message *m), void *ctx)
{
    if (!client_id || !*client_id)
        return CD_ENOTFOUND;
    struct db_stmt *stmt = st(s, ST_MSG_BY_CLIENT_ID);
    db_bind_int64(stmt, 1, conversation);
    db_bind_text(stmt, 2, client_id);
    int rc = db_step(stmt);
    if (rc != DB_ROW) {
        db_reset(stmt);
        return rc == DB_DONE ? CD_ENOTFOUND : rc;
    }
    struct store_message m;
    read_message(stmt, &m);
    int r = cb(ctx, &m);
    db_reset(stmt);
    if (r)
        return r;
    int64_t question_seq = m.seq;
    stmt = st(s, ST_MSG_BY_REPLY_TO);
    db_bind_int64(stmt, 1, conversation);
    db_bind_text(stmt, 2, client_id);
    db_bind_int64(stmt, 3, question_seq);
    rc = db_step(stmt);
    if (rc == DB_ROW) {
        read_message(stmt, &m);
        r = cb(ctx, &m);
        db_reset(stmt);
        return r;
    }
    db_reset(stmt);
    return rc == DB_DONE ? 0 : rc;
}

int store_recent_questions(struct store *s, int max,
                           int (*cb)(void *ctx, const char *text, const char *lang), void *ctx)
{
    struct db_stmt *stmt = st(s, ST_RECENT_QUESTIONS);
    db_bind_int64(stmt, 1, max > 0 ? max : 0);
    db_bind_int64(stmt, 2, (int64_t)(max > 0 ? max : 0) * STORE_RECENT_SCAN);
    int rc;
    while ((rc = db_step(stmt)) == DB_ROW) {
        int r = cb(ctx, db_col_str(stmt, 0), db_col_str(stmt, 1));
        if (r) {
            db_reset(stmt);
            return r;
        }
    }
    db_reset(stmt);
    return rc == DB_DONE ? 0 : rc;
}

/* ---- users ---- */

static void read_user(struct db_stmt *stmt, struct store_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = db_col_int64(stmt, 0);
    copy_col(u->name, sizeof u->name, stmt, 1);
    copy_col(u->role, sizeof u->role, stmt, 2);
    copy_col(u->skills, sizeof u->skills, stmt, 3);
    if (db_col_bytes(stmt, 4) == STORE_HASH_LEN)
        memcpy(u->token_hash, db_col_blob(stmt, 4), STORE_HASH_LEN);
    u->created_s = db_col_int64(stmt, 5);
}

int store_user_add(struct store *s, struct store_user *u)
{
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *stmt = st(s, ST_USER_ADD);
    db_bind_text(stmt, 1, u->name);
    db_bind_text(stmt, 2, u->role);
    db_bind_text(stmt, 3, u->skills);
    db_bind_blob(stmt, 4, u->token_hash, STORE_HASH_LEN);
    if (!u->created_s)
        u->created_s = cd_wall_s();
    db_bind_int64(stmt, 5, u->created_s);
    int rc = run_returning(stmt, &u->id);
    return rc == 1 ? CD_EEXIST : rc; /* the name (or token) is taken */
}

static int get_one_user(struct db_stmt *stmt, struct store_user *out)
{
    int rc = db_step(stmt);
    if (rc == DB_ROW) {
        read_user(stmt, out);
        rc = 0;
    } else {
        rc = rc == DB_DONE ? CD_ENOTFOUND : rc;
    }
    db_reset(stmt);
    return rc;
}

int store_user_by_token(struct store *s, const unsigned char hash[STORE_HASH_LEN],
                        struct store_user *out)
{
    struct db_stmt *stmt = st(s, ST_USER_BY_TOKEN);
    db_bind_blob(stmt, 1, hash, STORE_HASH_LEN);
    return get_one_user(stmt, out);
}

int store_user_get(struct store *s, int64_t id, struct store_user *out)
{
    struct db_stmt *stmt = st(s, ST_USER_GET);
    db_bind_int64(stmt, 1, id);
    return get_one_user(stmt, out);
}

int store_user_list(struct store *s, struct store_user *out, int max, int *n_out)
{
    *n_out = 0;
    struct db_stmt *stmt = st(s, ST_USER_LIST);
    db_bind_int64(stmt, 1, max);
    int rc;
    while ((rc = db_step(stmt)) == DB_ROW && *n_out < max)
        read_user(stmt, &out[(*n_out)++]);
    db_reset(stmt);
    return rc == DB_DONE || rc == DB_ROW ? 0 : rc;
}

int store_user_remove(struct store *s, const char *name)
{
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *stmt = st(s, ST_USER_REMOVE);
    db_bind_text(stmt, 1, name);
    int rc = db_run(stmt);
    if (!rc && db_changes(s->db) == 0)
        rc = CD_ENOTFOUND;
    return rc;
}

int store_has_customer_message(struct store *s, int64_t conversation)
{
    struct db_stmt *stmt = st(s, ST_HAS_CUSTOMER_MESSAGE);
    db_bind_int64(stmt, 1, conversation);
    int rc = db_step(stmt);
    int has = rc == DB_ROW ? db_col_int(stmt, 0) : 0;
    db_reset(stmt);
    return rc == DB_ROW ? has : rc;
}

/* ---- events, feedback, unanswered ---- */

int store_event_add(struct store *s, const char *kind, int64_t conversation, int64_t user_id,
                    const char *detail)
{
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *stmt = st(s, ST_EVENT_ADD);
    db_bind_text(stmt, 1, kind);
    db_bind_int64(stmt, 2, conversation);
    db_bind_int64(stmt, 3, user_id);
    db_bind_text(stmt, 4, detail);
    db_bind_int64(stmt, 5, cd_wall_s());
    return db_run(stmt);
}

int store_feedback_add(struct store *s, int64_t conversation, int64_t seq, int is_helpful,
                       const char *article_id, const char *question)
{
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *stmt = st(s, ST_FEEDBACK_ADD);
    db_bind_int64(stmt, 1, conversation);
    db_bind_int64(stmt, 2, seq);
    db_bind_int64(stmt, 3, is_helpful ? 1 : 0);
    db_bind_text(stmt, 4, article_id);
    db_bind_text(stmt, 5, question);
    db_bind_int64(stmt, 6, cd_wall_s());
    int rc = db_run(stmt);
    return rc == CD_EEXIST ? CD_ENOTFOUND : rc; /* foreign key: no such conversation */
}

int store_unanswered_add(struct store *s, int64_t conversation, const char *question,
                         const char *lang, const char *intent, double confidence)
{
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *stmt = st(s, ST_UNANSWERED_ADD);
    db_bind_int64(stmt, 1, conversation);
    db_bind_text(stmt, 2, question ? question : "");
    db_bind_text(stmt, 3, lang && *lang ? lang : "en");
    db_bind_text(stmt, 4, intent ? intent : "");
    db_bind_double(stmt, 5, confidence);
    db_bind_int64(stmt, 6, cd_wall_s());
    int rc = db_run(stmt);
    return rc == CD_EEXIST ? CD_ENOTFOUND : rc;
}

int store_unanswered_list(struct store *s, int64_t since_s, struct store_unanswered *out, int max,
                          int *n_out)
{
    if (n_out)
        *n_out = 0;
    if (!s || !out || !n_out || max < 0)
        return CD_EINVAL;
    struct db_stmt *stmt = st(s, ST_UNANSWERED_LIST);
    db_bind_int64(stmt, 1, since_s);
    db_bind_int64(stmt, 2, max);
    int rc = 0, step = DB_DONE, n = 0;
    while (n < max && (step = db_step(stmt)) == DB_ROW) {
        struct store_unanswered *u = &out[n];
        memset(u, 0, sizeof *u);
        const char *q = db_col_text(stmt, 0);
        u->question = strdup(q ? q : "");
        copy_col(u->lang, sizeof u->lang, stmt, 1);
        u->n = db_col_int64(stmt, 2);
        u->last_s = db_col_int64(stmt, 3);
        n++;
        if (!u->question) {
            rc = CD_ENOMEM;
            break;
        }
    }
    if (!rc && n < max && step != DB_DONE)
        rc = step < 0 ? step : CD_EIO;
    db_reset(stmt);
    if (rc) {
        store_unanswered_clear(out, n);
        return rc;
    }
    *n_out = n;
    return 0;
}

void store_unanswered_clear(struct store_unanswered *items, int n)
{
    for (int i = 0; items && i < n; i++) {
        free(items[i].question);
        items[i].question = NULL;
    }
}

int store_unanswered_resolve(struct store *s, const char *question)
{
    if (!s || !question)
        return CD_EINVAL;
    if (tx_ok(s))
        return CD_EIO;
    struct db_stmt *stmt = st(s, ST_UNANSWERED_RESOLVE);
    db_bind_text(stmt, 1, question);
    int rc = db_run(stmt);
    return rc ? rc : db_changes(s->db);
}

/* ---- statistics ---- */

static int read_counts(struct db_stmt *stmt, struct store_count *out, int *n_out)
{
    int rc;
    *n_out = 0;
    while ((rc = db_step(stmt)) == DB_ROW && *n_out < STORE_STATS_TOP) {
        struct store_count *c = &out[(*n_out)++];
        copy_col(c->name, sizeof c->name, stmt, 0);
        c->n = db_col_int64(stmt, 1);
    }
    db_reset(stmt);
    return rc == DB_DONE || rc == DB_ROW ? 0 : rc;
}

static struct db_stmt *window_stmt(struct store *s, enum stmt_id id, int64_t since_s,
                                   int64_t until_s)
{
    struct db_stmt *stmt = st(s, id);
    db_bind_int64(stmt, 1, since_s);
    db_bind_int64(stmt, 2, until_s);
    return stmt;
}

int store_stats(struct store *s, int64_t since_s, int64_t until_s, int pickup_target_s,
                struct store_stats *out)
{
    memset(out, 0, sizeof *out);
    out->since_s = since_s;
    out->until_s = until_s;
    struct db_stmt *stmt = window_stmt(s, ST_STATS_TOTALS, since_s, until_s);
    db_bind_int64(stmt, 3, pickup_target_s);
    int rc = db_step(stmt);
    if (rc != DB_ROW) {
        db_reset(stmt);
        return rc < 0 ? rc : CD_EIO;
    }
    out->n_conversations = db_col_int64(stmt, 0);
    out->n_bot_resolved = db_col_int64(stmt, 1);
    out->n_handoffs = db_col_int64(stmt, 2);
    out->n_picked = db_col_int64(stmt, 3);
    out->n_within_target = db_col_int64(stmt, 4);
    out->n_ratings = db_col_int64(stmt, 5);
    out->csat = db_col_double(stmt, 6);
    int64_t n_satisfied = db_col_int64(stmt, 7);
    db_reset(stmt);
    if (out->n_conversations > 0) {
        out->deflection_rate = (double)out->n_bot_resolved / (double)out->n_conversations;
        out->escalation_rate = (double)out->n_handoffs / (double)out->n_conversations;
    }
    if (out->n_picked > 0)
        out->pickup_within_target = (double)out->n_within_target / (double)out->n_picked;
    if (out->n_ratings > 0)
        out->csat_satisfied = (double)n_satisfied / (double)out->n_ratings;

    /* The median wait over the same picked conversations n_picked counts. */
    int64_t n_waits = out->n_picked;
    if (n_waits > 0) {
        stmt = window_stmt(s, ST_STATS_MEDIAN, since_s, until_s);
        db_bind_int64(stmt, 3, (n_waits - 1) / 2);
        double w[2] = {0, 0};
        int n_w = 0;
        while (n_w < 2 && db_step(stmt) == DB_ROW)
            w[n_w++] = db_col_double(stmt, 0);
        db_reset(stmt);
        if (n_w == 1 || (n_waits % 2) == 1)
            out->median_wait_s = w[0];
        else if (n_w == 2)
            out->median_wait_s = (w[0] + w[1]) / 2;
    }

    stmt = window_stmt(s, ST_STATS_QUEUES, since_s, until_s);
    db_bind_int64(stmt, 3, STORE_STATS_TOP);
    rc = read_counts(stmt, out->by_queue, &out->n_by_queue);
    if (rc)
        return rc;
    stmt = window_stmt(s, ST_STATS_DRIVERS, since_s, until_s);
    db_bind_int64(stmt, 3, STORE_STATS_TOP);
    rc = read_counts(stmt, out->drivers, &out->n_drivers);
    if (rc)
        return rc;
    stmt = window_stmt(s, ST_STATS_UNANSWERED, since_s, until_s);
    db_bind_int64(stmt, 3, STORE_STATS_TOP);
    return read_counts(stmt, out->unanswered, &out->n_unanswered);
}

/* ---- export, erasure, retention ---- */

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

struct export_ctx {
    json_t *messages;
};

static int export_message(void *ctx, const struct store_message *m)
{
    struct export_ctx *e = ctx;
    json_t *o = json_object();
    if (!o)
        return CD_ENOMEM;
    json_object_set_new(o, "seq", json_integer(m->seq));
    json_object_set_new(o, "sender", json_string(store_sender_name(m->sender)));
    json_object_set_new(o, "text", json_string(m->text));
    json_object_set_new(o, "at", json_integer(m->created_s));
    if (m->client_id[0])
        json_object_set_new(o, "id", json_string(m->client_id));
    if (m->meta) {
        json_t *meta = json_loads(m->meta, 0, NULL);
        if (meta)
            json_object_set_new(o, "meta", meta);
    }
    json_array_append_new(e->messages, o);
    return 0;
}

int store_export_conversation(struct store *s, int64_t id, struct cd_buf *out)
{
    struct store_conversation c;
    int rc = store_conversation_get(s, id, &c);
    if (rc)
        return rc;
    json_t *o = json_object();
    struct export_ctx e = {json_array()};
    if (!o || !e.messages) {
        rc = CD_ENOMEM;
        goto done;
    }
    json_object_set_new(o, "conversation", json_integer(c.id));
    json_object_set_new(o, "state", json_string(store_state_name(c.state)));
    json_object_set_new(o, "lang", json_string(c.lang));
    json_t *cust = json_object();
    json_object_set_new(cust, "name", json_str_or_null(c.customer_name));
    json_object_set_new(cust, "email", json_str_or_null(c.customer_email));
    json_object_set_new(cust, "page", json_str_or_null(c.customer_page));
    json_object_set_new(o, "customer", cust);
    json_object_set_new(o, "queue", json_string(c.queue));
    json_object_set_new(o, "intent", json_string(c.intent));
    json_object_set_new(o, "confidence", json_real(c.confidence));
    json_object_set_new(o, "agent_id", json_integer(c.agent_id));
    json_object_set_new(o, "created", json_integer(c.created_s));
    json_object_set_new(o, "queued", json_integer(c.queued_s));
    json_object_set_new(o, "picked", json_integer(c.picked_s));
    json_object_set_new(o, "closed", json_integer(c.closed_s));
    json_object_set_new(o, "closed_by", json_string(c.closed_by));
    json_object_set_new(o, "disposition", json_string(c.disposition));
    json_object_set_new(o, "note", json_str_or_null(c.note));
    json_object_set_new(o, "rating", c.rating ? json_integer(c.rating) : json_null());
    json_object_set_new(o, "comment", json_str_or_null(c.comment));
    /* The NPS answer and its comment (schema 6), when the customer gave one. */
    struct db_stmt *nps = st(s, ST_CONV_NPS);
    db_bind_int64(nps, 1, id);
    if (db_step(nps) == DB_ROW && db_col_int(nps, 0) >= 0) {
        json_object_set_new(o, "nps", json_integer(db_col_int(nps, 0)));
        json_object_set_new(o, "nps_comment", json_str_or_null(db_col_text(nps, 1)));
    }
    db_reset(nps);
    /* Page through the messages so that each query stays bounded. */
    int64_t after = 0;
    for (;;) {
        size_t before = json_array_size(e.messages);
        rc = store_messages_after(s, id, after, 1000, export_message, &e);
        if (rc)
            goto done;
        size_t now = json_array_size(e.messages);
        if (now == before)
            break;
        after = json_integer_value(json_object_get(json_array_get(e.messages, now - 1), "seq"));
        if (now - before < 1000)
            break;
    }
    json_object_set(o, "messages", e.messages);
    char *text = json_dumps(o, JSON_COMPACT);
    if (!text) {
        rc = CD_ENOMEM;
        goto done;
    }
    rc = cd_buf_puts(out, text);
    free(text);
done:
    json_decref(e.messages);
    json_decref(o);
    store_conversation_clear(&c);
    return rc;
}

/* Runs a bounded DELETE repeatedly until it deletes nothing (or max is
 * reached when max > 0), inside one transaction. */
static int delete_batches(struct store *s, struct db_stmt *stmt, int batch, int max, int *n_out)
{
    int was_in_tx = s->is_in_tx;
    int rc = store_begin(s);
    if (rc)
        return rc;
    *n_out = 0;
    for (;;) {
        int limit = batch;
        if (max > 0 && max - *n_out < limit)
            limit = max - *n_out;
        if (limit <= 0)
            break;
        db_bind_int64(stmt, 2, limit);
        rc = db_run(stmt);
        if (rc)
            break;
        int n = db_changes(s->db);
        *n_out += n;
        if (n < limit)
            break;
    }
    if (rc) {
        store_rollback(s);
        *n_out = 0;
        return rc;
    }
    return was_in_tx ? 0 : store_commit(s);
}

int store_email_conversation_ids(struct store *s, const char *email, int64_t after_id, int64_t *ids,
                                 int max, int *n_out)
{
    *n_out = 0;
    if (!email || !*email || max <= 0)
        return CD_EINVAL;
    struct db_stmt *stmt = st(s, ST_EMAIL_CONVERSATIONS);
    db_bind_text(stmt, 1, email);
    db_bind_int64(stmt, 2, after_id);
    db_bind_int64(stmt, 3, max);
    int rc;
    while ((rc = db_step(stmt)) == DB_ROW)
        ids[(*n_out)++] = db_col_int64(stmt, 0);
    db_reset(stmt);
    return rc == DB_DONE ? 0 : rc;
}

int store_export_email(struct store *s, const char *email, struct cd_buf *out, int *n_out)
{
    *n_out = 0;
    json_t *head = json_pack("{s:s}", "email", email ? email : "");
    char *text = head ? json_dumps(head, JSON_COMPACT) : NULL;
    json_decref(head);
    if (!text)
        return CD_ENOMEM;
    /* {"email":...,"conversations":[one store_export_conversation() object each]} */
    int rc = cd_buf_append(out, text, strlen(text) - 1);
    free(text);
    if (!rc)
        rc = cd_buf_puts(out, ",\"conversations\":[");
    int64_t ids[200], after = 0;
    int n = 0;
    while (!rc && !(rc = store_email_conversation_ids(s, email, after, ids, 200, &n)) && n > 0) {
        for (int i = 0; i < n && !rc; i++) {
            if (*n_out > 0)
                rc = cd_buf_puts(out, ",");
            if (!rc)
                rc = store_export_conversation(s, ids[i], out);
            if (!rc)
                (*n_out)++;
        }
        after = ids[n - 1];
        if (n < 200)
            break;
    }
    if (!rc)
        rc = cd_buf_puts(out, "]}");
    return rc;
}

int store_purge_erased(struct store *s)
{
    if (s->is_in_tx)
        return CD_EBUSY;
    return s->sqlite ? store_sqlite_purge_erased(s) : 0;
}

int store_erase_email(struct store *s, const char *email, int64_t user_id, int *n_out)
{
    *n_out = 0;
    if (!email || !*email)
        return CD_EINVAL;
    struct db_stmt *stmt = st(s, ST_ERASE_EMAIL);
    db_bind_text(stmt, 1, email);
    int rc = delete_batches(s, stmt, 500, 0, n_out);
    if (!rc) {
        char detail[64];
        snprintf(detail, sizeof detail, "{\"conversations\":%d}", *n_out);
        rc = store_event_add(s, "erase", 0, user_id, detail);
    }
    return rc;
}

int store_retention(struct store *s, int64_t before_s, int max, int *n_out)
{
    *n_out = 0;
    struct db_stmt *stmt = st(s, ST_RETENTION);
    db_bind_int64(stmt, 1, before_s);
    int rc = delete_batches(s, stmt, 200, max > 0 ? max : 200, n_out);
    if (!rc && *n_out > 0) {
        /* What a retention run deleted is in the audit log, as an erasure is. */
        char detail[96];
        snprintf(detail, sizeof detail, "{\"conversations\":%d,\"closed_before\":%lld}", *n_out,
                 (long long)before_s);
        rc = store_event_add(s, "retention", 0, 0, detail);
    }
    return rc;
}
