/* store: the SQLite implementation of store.h (conversations, messages, users,
 * events, feedback, unanswered questions, statistics).
 *
 * DESIGN. One connection in WAL mode, synchronous NORMAL (or FULL for the
 * "full" durability setting), a busy timeout so the KB's own connection to
 * the same file can share it. The schema is built by numbered migrations,
 * each run in its own transaction that also sets PRAGMA user_version, so a
 * database of any earlier version is brought forward and a crash half-way
 * leaves it at a whole version. Every statement used while serving is
 * prepared once in store_open() and every query is bounded by an index and a
 * LIMIT. Group commit: store_begin() opens BEGIN IMMEDIATE and it stays open
 * until store_commit(); a failed commit rolls everything back, so callers can
 * tell their clients that nothing of it was stored.
 *
 * Checkpoints. By default SQLite copies the WAL back into the database file
 * inside the COMMIT that takes the WAL over 1,000 pages, fsyncs included: a
 * stall of several milliseconds for whoever commits. With
 * store_options.checkpoint_thread a WAL hook replaces that: a commit that
 * leaves the WAL over CHECKPOINT_FRAMES pages (10 times SQLite's own
 * default, see there) only wakes a thread that runs a
 * PASSIVE checkpoint on its own connection, concurrently with later commits
 * (WAL allows one writer and one checkpointer at once; a commit is durable
 * in the WAL whether or not it was copied yet, so nothing changes for
 * durability). A WAL only starts over from its beginning when a write
 * finds it copied to the end, which a thread copying while commits go on
 * rarely leaves it: at CHECKPOINT_INLINE_FACTOR times the wake-up size the
 * thread runs until little is left, then pauses, and the committing thread
 * copies that little at its next store_begin() (a short checkpoint with its
 * two fsyncs, once per WAL cycle instead of SQLite's full one every 1,000
 * pages, and after the frames of the last commit went out); at twice that
 * it does so whatever is left, so the WAL stays bounded. */
#include "store.h"
#include "store_internal.h"
#include "store_outbox.h"
#include "sql.h"
#include "store_sqlite.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- migrations ---- */

static const char *const migrations[STORE_SCHEMA_VERSION] = {
    /* 1: conversations and their messages. */
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
    " WHERE reply_to IS NOT NULL;",
    /* 2: accounts and the audit/event log. */
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
    "CREATE INDEX events_created ON events(created_s);",
    /* 3: "was this helpful?" feedback and questions nothing answered. */
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
    "CREATE INDEX unanswered_conversation ON unanswered(conversation);",
    /* 4: messages in a rowid table. Appends then go to the end of the table
     * (a few pages per group commit) instead of into a leaf page per
     * conversation, and (conversation, seq) becomes a compact index. */
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
    " WHERE reply_to IS NOT NULL;",
    /* 5: no index on reply_to. The one query that used it (the reply to a
     * resent message) reads the few messages after the question through
     * messages_seq instead, and every bot reply then writes one index page
     * less (about a quarter of what a message writes). */
    "DROP INDEX messages_reply_to;",
    /* 6: the customer's "how likely are you to recommend us" answer (0-10,
     * -1 = not asked or not answered) and its comment (report.c). */
    "ALTER TABLE conversations ADD COLUMN nps INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE conversations ADD COLUMN nps_comment TEXT;",
    /* 7: the supervisor role, and QA audits (qa.c): the conversations drawn
     * for review each week, and each reviewer's scores against the rubric. */
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
    "CREATE INDEX qa_audits_agent ON qa_audits(agent_id, created_s);",
    /* 8: escalation status updates by tracking id (incident.c); the updates
     * themselves are agent messages with "status_update" in their meta. */
    "CREATE TABLE status_updates ("
    " id INTEGER PRIMARY KEY,"
    " tracking_id TEXT NOT NULL,"
    " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " agent_id INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL,"
    " created_s INTEGER NOT NULL);"
    "CREATE INDEX status_updates_tracking ON status_updates(tracking_id);"
    "CREATE INDEX status_updates_conversation ON status_updates(conversation);",
    /* 9: the webhook outbox (store_outbox.c): one row per event and endpoint, written in
     * the transaction of the change it reports. */
    "CREATE TABLE webhook_outbox ("
    " id INTEGER PRIMARY KEY,"
    " delivery TEXT NOT NULL UNIQUE,"
    " event TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " conversation INTEGER," /* NULL: not ordered with others (article events) */
    " payload TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0," /* 0 pending, 1 delivered, 2 failed */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " next_attempt_ms INTEGER NOT NULL,"
    " deadline_ms INTEGER NOT NULL,"
    " last_http INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " delivered_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX webhook_outbox_due ON webhook_outbox(next_attempt_ms) WHERE status = 0;"
    "CREATE INDEX webhook_outbox_order ON webhook_outbox(endpoint, conversation, id)"
    " WHERE status = 0;",
};

/* ---- prepared statements ---- */

#define CONV_COLUMNS                                                                               \
    "c.id, c.token_hash, c.state, c.lang, c.customer_name, c.customer_email, c.customer_page, "    \
    "c.queue, c.intent, c.confidence, c.priority, c.is_offline, c.agent_id, c.created_s, "         \
    "c.queued_s, c.picked_s, c.closed_s, c.closed_by, c.disposition, c.note, c.rating, "           \
    "c.comment, (SELECT coalesce(max(m.seq), 0) FROM messages m WHERE m.conversation = c.id)"

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
    ST_CONV_UPDATE_TRIAGE,
    ST_CONV_CLAIM,
    ST_CONV_OPEN,
    ST_CONV_BY_EMAIL,
    ST_MSG_APPEND,
    ST_MSG_INSERT,
    ST_MSG_AFTER,
    ST_MSG_BY_CLIENT_ID,
    ST_MSG_BY_REPLY_TO,
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
        " customer_page, created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_CONV_GET] = "SELECT " CONV_COLUMNS " FROM conversations c WHERE c.id = ?1",
    [ST_CONV_BY_TOKEN] = "SELECT " CONV_COLUMNS " FROM conversations c WHERE c.token_hash = ?1",
    [ST_CONV_UPDATE] = "UPDATE conversations SET state = ?2, lang = ?3, customer_name = ?4,"
                       " customer_email = ?5, customer_page = ?6, queue = ?7, intent = ?8,"
                       " confidence = ?9, priority = ?10, is_offline = ?11, agent_id = ?12,"
                       " queued_s = ?13, picked_s = ?14, closed_s = ?15, closed_by = ?16,"
                       " disposition = ?17, note = ?18, rating = ?19, comment = ?20"
                       " WHERE id = ?1",
    [ST_CONV_UPDATE_TRIAGE] = "UPDATE conversations SET state = ?2, intent = ?3, confidence = ?4"
                              " WHERE id = ?1",
    [ST_CONV_CLAIM] = "UPDATE conversations SET state = 'with_agent', agent_id = ?2,"
                      " is_offline = 0,"
                      " picked_s = CASE WHEN picked_s = 0 THEN ?3 ELSE picked_s END"
                      " WHERE id = ?1 AND state = 'queued'",
    [ST_CONV_OPEN] = "SELECT " CONV_COLUMNS " FROM conversations c"
                     " WHERE c.state IN ('queued', 'with_agent') ORDER BY c.id LIMIT ?1",
    [ST_CONV_BY_EMAIL] = "SELECT id, created_s, state, intent, disposition FROM conversations"
                         " WHERE customer_email = ?1 COLLATE NOCASE AND id <> ?2"
                         " ORDER BY id DESC LIMIT ?3",
    [ST_MSG_APPEND] = "INSERT INTO messages (" MSG_COLUMNS ")"
                      " SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8"
                      " FROM messages WHERE conversation = ?1 RETURNING seq",
    [ST_MSG_INSERT] = "INSERT INTO messages (" MSG_COLUMNS ")"
                      " VALUES (?1, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_MSG_AFTER] = "SELECT " MSG_COLUMNS " FROM messages WHERE conversation = ?1 AND seq > ?2"
                     " ORDER BY seq LIMIT ?3",
    [ST_MSG_BY_CLIENT_ID] = "SELECT " MSG_COLUMNS " FROM messages"
                            " WHERE conversation = ?1 AND client_id = ?2 LIMIT 1",
    /* The reply comes after the question: messages_seq from there on. */
    [ST_MSG_BY_REPLY_TO] = "SELECT " MSG_COLUMNS " FROM messages INDEXED BY messages_seq"
                           " WHERE conversation = ?1 AND seq > ?3 AND reply_to = ?2"
                           " ORDER BY seq LIMIT 1",
    [ST_USER_ADD] = "INSERT INTO users (name, role, skills, token_hash, created_s)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
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
                           " WHERE created_s >= ?1 ORDER BY id DESC LIMIT 10000)"
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
};

/* WAL size (pages) at which the background checkpoint is woken, unless
 * store_options says otherwise: ten times SQLite's default. A checkpoint
 * copies each page once however often it changed, and a busy server changes
 * the same few hundred pages (index leaves, conversation rows) all the
 * time: a longer WAL means much less written to the database file and far
 * fewer fsyncs, for a WAL file of about 40 MB. */
#define CHECKPOINT_FRAMES 10000
/* WAL size, in multiples of the wake-up size, at which the committing
 * thread finishes the copying itself, so the WAL can start over (see
 * wal_hook()). */
#define CHECKPOINT_INLINE_FACTOR 2

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    store_observer_fn observer; /* store_outbox.h: told of each conversation and message write */
    void *observer_ctx;
    void *outbox; /* store_outbox.c's statements */
    int is_in_tx;
    int is_marked;
    /* The background checkpoint (store_options.checkpoint_thread). */
    sqlite3 *ck_db; /* its connection, used by that thread only */
    pthread_t ck_thread;
    pthread_mutex_t ck_mutex;
    pthread_cond_t ck_cond;
    int has_ck_thread;
    int ck_is_wanted;    /* under ck_mutex */
    int ck_is_stop;      /* under ck_mutex */
    int ck_is_paused;    /* under ck_mutex: the committing thread catches up */
    int ck_last_frames;  /* under ck_mutex: WAL size when the thread last started */
    int ck_done_frames;  /* under ck_mutex: WAL pages copied when it last finished */
    int is_catch_up_due; /* committing thread only: store_begin() catches up first */
    int64_t n_ck;        /* under ck_mutex: checkpoints run */
    int ck_frames;       /* WAL pages that wake the thread */
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

/* Maps an SQLite result code to a CD_E* code. */
static sqlite3_stmt *st(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *stmt = s->stmt[id];
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *text)
{
    if (text)
        sqlite3_bind_text(stmt, i, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, i);
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* A malloc'd copy of a text column, NULL for NULL (or no memory). */
static char *dup_col(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    if (!t)
        return NULL;
    return cd_strndup((const char *)t, (size_t)sqlite3_column_bytes(stmt, col));
}

static int exec_sql(sqlite3 *db, const char *sql, char **err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        if (err) {
            size_t n = strlen(msg ? msg : "") + 32;
            *err = malloc(n);
            if (*err)
                snprintf(*err, n, "database: %s", msg ? msg : sqlite3_errstr(rc));
        }
        sqlite3_free(msg);
        return sql_rc(rc);
    }
    return 0;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* Brings the schema of db from its version up to target, one migration per
 * transaction. Returns 0 or CD_E* (with *err set). */
static int migrate(sqlite3 *db, int target, char **err)
{
    int version = user_version(db);
    if (version < 0) {
        exec_sql(db, "SELECT 1 FROM no_such_table_for_error", err);
        return CD_EIO;
    }
    if (version > STORE_SCHEMA_VERSION) {
        if (err) {
            *err = malloc(128);
            if (*err)
                snprintf(*err, 128, "database schema version %d is newer than this caredesk (%d)",
                         version, STORE_SCHEMA_VERSION);
        }
        return CD_EINVAL;
    }
    while (version < target) {
        char pragma[64];
        int rc = exec_sql(db, "BEGIN IMMEDIATE", err);
        if (rc)
            return rc;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
        rc = exec_sql(db, migrations[version], err);
        if (!rc)
            rc = exec_sql(db, pragma, err);
        if (!rc)
            rc = exec_sql(db, "COMMIT", err);
        if (rc) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        version++;
    }
    return 0;
}

static sqlite3 *open_db(const char *path, const struct store_options *options, char **err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (err) {
            size_t n = strlen(path) + 128;
            *err = malloc(n);
            if (*err)
                snprintf(*err, n, "cannot open database %s: %s", path,
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        }
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    int busy = options && options->busy_timeout_ms > 0 ? options->busy_timeout_ms : 5000;
    sqlite3_busy_timeout(db, busy);
    int is_full = options && options->durability == STORE_DURABILITY_FULL;
    /* An 8 MB page cache keeps a busy loop turn's pages in memory until the
     * commit instead of spilling them to the WAL mid-transaction, and the
     * savepoint journal of each unit of work (store_mark) stays in memory. */
    const char *pragmas = is_full ? "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                    " PRAGMA foreign_keys = ON; PRAGMA cache_size = -8192;"
                                    " PRAGMA temp_store = MEMORY; PRAGMA secure_delete = ON;"
                                  : "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                                    " PRAGMA foreign_keys = ON; PRAGMA cache_size = -8192;"
                                    " PRAGMA temp_store = MEMORY; PRAGMA secure_delete = ON;";
    if (exec_sql(db, pragmas, err)) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int store_migrate_to(const char *path, int version)
{
    if (!path || version < 1 || version > STORE_SCHEMA_VERSION)
        return CD_EINVAL;
    sqlite3 *db = open_db(path, NULL, NULL);
    if (!db)
        return CD_EIO;
    int rc = migrate(db, version, NULL);
    sqlite3_close(db);
    return rc;
}

/* The WAL hook of the main connection, called after each commit with the
 * WAL's size in pages (it replaces SQLite's auto-checkpoint). */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int n_frames)
{
    struct store *s = ctx;
    if (n_frames < s->ck_frames)
        return SQLITE_OK;
    pthread_mutex_lock(&s->ck_mutex);
    int is_due = n_frames >= s->ck_frames * CHECKPOINT_INLINE_FACTOR;
    int is_catch_up = (is_due && n_frames - s->ck_done_frames <= s->ck_frames / 16) ||
                      n_frames >= s->ck_frames * CHECKPOINT_INLINE_FACTOR * 2;
    s->ck_is_paused = is_catch_up;
    /* Not after every commit (each checkpoint costs two fsyncs), but again
     * and again once the catch-up is due, until little is left for it. */
    if (!is_catch_up && !s->ck_is_wanted &&
        (is_due || n_frames >= s->ck_last_frames + s->ck_frames / 4)) {
        s->ck_last_frames = n_frames;
        s->ck_is_wanted = 1;
        pthread_cond_signal(&s->ck_cond);
    }
    pthread_mutex_unlock(&s->ck_mutex);
    /* The catch-up (see the top of the file) is left to the next
     * store_begin(): by then the caller has sent what this commit made
     * visible, so only later work waits for it. */
    s->is_catch_up_due = is_catch_up;
    (void)db;
    (void)name;
    return SQLITE_OK;
}

/* Between two groups, on the committing thread: copies what the paused
 * checkpoint thread left, so that the write that follows starts the WAL
 * over. BUSY while the thread finishes its checkpoint: the next commit's
 * hook asks again. */
static void checkpoint_catch_up(struct store *s)
{
    s->is_catch_up_due = 0;
    if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
        return;
    pthread_mutex_lock(&s->ck_mutex);
    s->ck_is_paused = 0;
    s->ck_last_frames = 0; /* the WAL starts over */
    s->ck_done_frames = 0;
    pthread_mutex_unlock(&s->ck_mutex);
}

static void *checkpoint_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->ck_mutex);
    while (!s->ck_is_stop) {
        if (!s->ck_is_wanted || s->ck_is_paused) {
            pthread_cond_wait(&s->ck_cond, &s->ck_mutex);
            continue;
        }
        s->ck_is_wanted = 0;
        pthread_mutex_unlock(&s->ck_mutex);
        /* PASSIVE: copies what no reader still needs, never waits for the
         * writer; commits made meanwhile wake it again. */
        int n_done = 0;
        int rc =
            sqlite3_wal_checkpoint_v2(s->ck_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, &n_done);
        pthread_mutex_lock(&s->ck_mutex);
        if (rc == SQLITE_OK) {
            s->n_ck++;
            s->ck_done_frames = n_done;
        }
    }
    pthread_mutex_unlock(&s->ck_mutex);
    return NULL;
}

/* Starts the background checkpoint; on failure SQLite's auto-checkpoint
 * stays in place (slower commits, same results). */
static void checkpoint_start(struct store *s, const char *path, const struct store_options *options)
{
    if (!strcmp(path, ":memory:") || !sqlite3_threadsafe())
        return;
    s->ck_db = open_db(path, options, NULL);
    if (!s->ck_db)
        return;
    sqlite3_wal_autocheckpoint(s->ck_db, 0);
    s->ck_frames = options->checkpoint_pages > 0 ? options->checkpoint_pages : CHECKPOINT_FRAMES;
    if (pthread_mutex_init(&s->ck_mutex, NULL))
        goto fail;
    if (pthread_cond_init(&s->ck_cond, NULL)) {
        pthread_mutex_destroy(&s->ck_mutex);
        goto fail;
    }
    if (pthread_create(&s->ck_thread, NULL, checkpoint_main, s)) {
        pthread_cond_destroy(&s->ck_cond);
        pthread_mutex_destroy(&s->ck_mutex);
        goto fail;
    }
    s->has_ck_thread = 1;
    sqlite3_wal_hook(s->db, wal_hook, s);
    return;
fail:
    sqlite3_close(s->ck_db);
    s->ck_db = NULL;
}

static void checkpoint_stop(struct store *s)
{
    if (!s->has_ck_thread)
        return;
    sqlite3_wal_autocheckpoint(s->db, 1000); /* SQLite's default again */
    pthread_mutex_lock(&s->ck_mutex);
    s->ck_is_stop = 1;
    pthread_cond_signal(&s->ck_cond);
    pthread_mutex_unlock(&s->ck_mutex);
    pthread_join(s->ck_thread, NULL);
    pthread_cond_destroy(&s->ck_cond);
    pthread_mutex_destroy(&s->ck_mutex);
    sqlite3_close(s->ck_db);
    s->ck_db = NULL;
    s->has_ck_thread = 0;
}

int64_t store_checkpoints(struct store *s)
{
    if (!s || !s->has_ck_thread)
        return 0;
    pthread_mutex_lock(&s->ck_mutex);
    int64_t n = s->n_ck;
    pthread_mutex_unlock(&s->ck_mutex);
    return n;
}

struct store *store_open(const char *path, const struct store_options *options, char **err)
{
    if (err)
        *err = NULL;
    if (!path || !*path) {
        if (err)
            *err = cd_strndup("database path is empty", 22);
        return NULL;
    }
    /* No global allocation statistics (a mutex per malloc); this only
     * takes effect if it comes before SQLite's first use in the process. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->db = open_db(path, options, err);
    if (!s->db)
        goto fail;
    if (migrate(s->db, STORE_SCHEMA_VERSION, err))
        goto fail;
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            if (err) {
                size_t n = 256;
                *err = malloc(n);
                if (*err)
                    snprintf(*err, n, "database: preparing statement %d: %s", i,
                             sqlite3_errmsg(s->db));
            }
            goto fail;
        }
    }
    if (options && options->checkpoint_thread)
        checkpoint_start(s, path, options);
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
    checkpoint_stop(s);
    store_outbox_free(s);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    free(s);
}

sqlite3 *store_sqlite_db(struct store *s)
{
    return s->db;
}

int store_schema_version(struct store *s)
{
    return user_version(s->db);
}

int store_begin(struct store *s)
{
    if (s->is_in_tx)
        return 0;
    if (s->is_catch_up_due)
        checkpoint_catch_up(s);
    int rc = sql_run(st(s, ST_BEGIN));
    if (!rc)
        s->is_in_tx = 1;
    return rc;
}

/* 0 if writes may go ahead: no group is open, or the open one is still
 * alive. SQLite rolls a whole transaction back by itself after some errors
 * (disk full, I/O error); later writes would then commit one by one outside
 * the group, so they are refused until the group is ended. */
static int tx_ok(struct store *s)
{
    return s->is_in_tx && sqlite3_get_autocommit(s->db) ? CD_EIO : 0;
}

int store_mark(struct store *s)
{
    int rc = store_begin(s);
    if (rc)
        return rc;
    rc = tx_ok(s);
    if (!rc && !s->is_marked) {
        rc = sql_run(st(s, ST_MARK));
        if (!rc)
            s->is_marked = 1;
    }
    return rc;
}

void store_mark_release(struct store *s)
{
    if (s->is_marked && !sqlite3_get_autocommit(s->db))
        sql_run(st(s, ST_MARK_RELEASE));
    s->is_marked = 0;
}

void store_mark_undo(struct store *s)
{
    if (s->is_marked && !sqlite3_get_autocommit(s->db)) {
        sql_run(st(s, ST_MARK_UNDO));
        sql_run(st(s, ST_MARK_RELEASE));
    }
    s->is_marked = 0;
}

int store_commit(struct store *s)
{
    s->is_marked = 0;
    if (!s->is_in_tx)
        return 0;
    if (sqlite3_get_autocommit(s->db)) { /* rolled back by SQLite after an error */
        s->is_in_tx = 0;
        return CD_EIO;
    }
    int rc = sql_run(st(s, ST_COMMIT));
    if (rc) {
        /* A failed COMMIT may leave the transaction open: end it, so that
         * none of its writes happen and the next turn starts clean. */
        if (!sqlite3_get_autocommit(s->db))
            sql_run(st(s, ST_ROLLBACK));
    }
    s->is_in_tx = 0;
    return rc;
}

void store_rollback(struct store *s)
{
    s->is_marked = 0;
    if (!s->is_in_tx)
        return;
    if (!sqlite3_get_autocommit(s->db))
        sql_run(st(s, ST_ROLLBACK));
    s->is_in_tx = 0;
}

int store_in_transaction(const struct store *s)
{
    return s->is_in_tx;
}

/* ---- conversations ---- */

void store_conversation_clear(struct store_conversation *c)
{
    if (!c)
        return;
    free(c->customer_name);
    free(c->customer_email);
    free(c->customer_page);
    free(c->note);
    free(c->comment);
    memset(c, 0, sizeof *c);
}

static int read_conversation(sqlite3_stmt *stmt, struct store_conversation *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(stmt, 0);
    if (sqlite3_column_bytes(stmt, 1) == STORE_HASH_LEN)
        memcpy(c->token_hash, sqlite3_column_blob(stmt, 1), STORE_HASH_LEN);
    int state = store_state_parse((const char *)sqlite3_column_text(stmt, 2));
    c->state = state < 0 ? STORE_STATE_BOT : state;
    copy_col(c->lang, sizeof c->lang, stmt, 3);
    c->customer_name = dup_col(stmt, 4);
    c->customer_email = dup_col(stmt, 5);
    c->customer_page = dup_col(stmt, 6);
    copy_col(c->queue, sizeof c->queue, stmt, 7);
    copy_col(c->intent, sizeof c->intent, stmt, 8);
    c->confidence = sqlite3_column_double(stmt, 9);
    c->priority = sqlite3_column_int(stmt, 10);
    c->is_offline = sqlite3_column_int(stmt, 11);
    c->agent_id = sqlite3_column_int64(stmt, 12);
    c->created_s = sqlite3_column_int64(stmt, 13);
    c->queued_s = sqlite3_column_int64(stmt, 14);
    c->picked_s = sqlite3_column_int64(stmt, 15);
    c->closed_s = sqlite3_column_int64(stmt, 16);
    copy_col(c->closed_by, sizeof c->closed_by, stmt, 17);
    copy_col(c->disposition, sizeof c->disposition, stmt, 18);
    c->note = dup_col(stmt, 19);
    c->rating = sqlite3_column_int(stmt, 20);
    c->comment = dup_col(stmt, 21);
    c->last_seq = sqlite3_column_int64(stmt, 22);
    return 0;
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

void **store_outbox_slot(struct store *s)
{
    return &s->outbox;
}

int store_conversation_create(struct store *s, struct store_conversation *c)
{
    if (tx_ok(s))
        return CD_EIO;
    sqlite3_stmt *stmt = st(s, ST_CONV_CREATE);
    sqlite3_bind_blob(stmt, 1, c->token_hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, store_state_name(c->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, c->lang[0] ? c->lang : "en", -1, SQLITE_STATIC);
    bind_text(stmt, 4, c->customer_name);
    bind_text(stmt, 5, c->customer_email);
    bind_text(stmt, 6, c->customer_page);
    if (!c->created_s)
        c->created_s = cd_wall_s();
    sqlite3_bind_int64(stmt, 7, c->created_s);
    int rc = sql_run(stmt);
    if (!rc)
        c->id = sqlite3_last_insert_rowid(s->db);
    if (!rc && s->observer)
        rc = observe(s, STORE_CHANGE_CONVERSATION_CREATED, c->id, NULL, NULL);
    return rc;
}

static int get_one_conversation(sqlite3_stmt *stmt, struct store_conversation *out)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rc = read_conversation(stmt, out);
    else if (rc == SQLITE_DONE)
        rc = CD_ENOTFOUND;
    else
        rc = sql_rc(rc);
    sqlite3_reset(stmt);
    return rc;
}

int store_conversation_get(struct store *s, int64_t id, struct store_conversation *out)
{
    sqlite3_stmt *stmt = st(s, ST_CONV_GET);
    sqlite3_bind_int64(stmt, 1, id);
    return get_one_conversation(stmt, out);
}

int store_conversation_by_token(struct store *s, const unsigned char hash[STORE_HASH_LEN],
                                struct store_conversation *out)
{
    sqlite3_stmt *stmt = st(s, ST_CONV_BY_TOKEN);
    sqlite3_bind_blob(stmt, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    return get_one_conversation(stmt, out);
}

int store_conversation_update(struct store *s, const struct store_conversation *c)
{
    if (tx_ok(s))
        return CD_EIO;
    struct store_conversation before = {0};
    if (s->observer && store_conversation_get(s, c->id, &before))
        return CD_ENOTFOUND;
    sqlite3_stmt *stmt = st(s, ST_CONV_UPDATE);
    sqlite3_bind_int64(stmt, 1, c->id);
    sqlite3_bind_text(stmt, 2, store_state_name(c->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, c->lang[0] ? c->lang : "en", -1, SQLITE_STATIC);
    bind_text(stmt, 4, c->customer_name);
    bind_text(stmt, 5, c->customer_email);
    bind_text(stmt, 6, c->customer_page);
    sqlite3_bind_text(stmt, 7, c->queue, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 8, c->intent, -1, SQLITE_STATIC);
    sqlite3_bind_double(stmt, 9, c->confidence);
    sqlite3_bind_int(stmt, 10, c->priority);
    sqlite3_bind_int(stmt, 11, c->is_offline);
    sqlite3_bind_int64(stmt, 12, c->agent_id);
    sqlite3_bind_int64(stmt, 13, c->queued_s);
    sqlite3_bind_int64(stmt, 14, c->picked_s);
    sqlite3_bind_int64(stmt, 15, c->closed_s);
    sqlite3_bind_text(stmt, 16, c->closed_by, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 17, c->disposition, -1, SQLITE_STATIC);
    bind_text(stmt, 18, c->note);
    sqlite3_bind_int(stmt, 19, c->rating);
    bind_text(stmt, 20, c->comment);
    int rc = sql_run(stmt);
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = CD_ENOTFOUND;
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
    sqlite3_stmt *stmt = st(s, ST_CONV_UPDATE_TRIAGE);
    sqlite3_bind_int64(stmt, 1, c->id);
    sqlite3_bind_text(stmt, 2, store_state_name(c->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, c->intent, -1, SQLITE_STATIC);
    sqlite3_bind_double(stmt, 4, c->confidence);
    int rc = sql_run(stmt);
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = CD_ENOTFOUND;
    if (!rc && s->observer)
        rc = observe(s, STORE_CHANGE_CONVERSATION_UPDATED, c->id, &before, NULL);
    store_conversation_clear(&before);
    return rc;
}

int store_conversation_claim(struct store *s, int64_t id, int64_t agent_id, int64_t now_s)
{
    if (tx_ok(s))
        return CD_EIO;
    sqlite3_stmt *stmt = st(s, ST_CONV_CLAIM);
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, agent_id);
    sqlite3_bind_int64(stmt, 3, now_s);
    int rc = sql_run(stmt);
    if (rc)
        return rc;
    if (sqlite3_changes(s->db) == 1)
        return s->observer ? observe(s, STORE_CHANGE_CONVERSATION_CLAIMED, id, NULL, NULL) : 0;
    struct store_conversation c;
    rc = store_conversation_get(s, id, &c);
    store_conversation_clear(&c);
    return rc == 0 ? CD_EBUSY : rc;
}

int store_conversations_open(struct store *s, int max,
                             int (*cb)(void *ctx, const struct store_conversation *c), void *ctx)
{
    sqlite3_stmt *stmt = st(s, ST_CONV_OPEN);
    sqlite3_bind_int(stmt, 1, max);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct store_conversation c;
        read_conversation(stmt, &c);
        int r = cb(ctx, &c);
        store_conversation_clear(&c);
        if (r) {
            sqlite3_reset(stmt);
            return r;
        }
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : sql_rc(rc);
}

int store_conversations_by_email(struct store *s, const char *email, int64_t exclude_id,
                                 struct store_history_item *out, int max, int *n_out)
{
    *n_out = 0;
    if (!email || !*email || max <= 0)
        return 0;
    sqlite3_stmt *stmt = st(s, ST_CONV_BY_EMAIL);
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, exclude_id);
    sqlite3_bind_int(stmt, 3, max);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && *n_out < max) {
        struct store_history_item *h = &out[(*n_out)++];
        memset(h, 0, sizeof *h);
        h->conversation = sqlite3_column_int64(stmt, 0);
        h->created_s = sqlite3_column_int64(stmt, 1);
        int state = store_state_parse((const char *)sqlite3_column_text(stmt, 2));
        h->state = state < 0 ? 0 : state;
        copy_col(h->intent, sizeof h->intent, stmt, 3);
        copy_col(h->disposition, sizeof h->disposition, stmt, 4);
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_rc(rc);
}

/* ---- messages ---- */

static void read_message(sqlite3_stmt *stmt, struct store_message *m)
{
    memset(m, 0, sizeof *m);
    m->conversation = sqlite3_column_int64(stmt, 0);
    m->seq = sqlite3_column_int64(stmt, 1);
    m->sender = sender_parse((const char *)sqlite3_column_text(stmt, 2));
    copy_col(m->client_id, sizeof m->client_id, stmt, 3);
    copy_col(m->reply_to, sizeof m->reply_to, stmt, 4);
    const unsigned char *text = sqlite3_column_text(stmt, 5);
    m->text = text ? (const char *)text : "";
    m->meta = (const char *)sqlite3_column_text(stmt, 6);
    m->agent_id = sqlite3_column_int64(stmt, 7);
    m->created_s = sqlite3_column_int64(stmt, 8);
}

/* Looks up the seq of the message with this client id; 0 if none. */
static int64_t seq_of_client_id(struct store *s, int64_t conversation, const char *client_id)
{
    sqlite3_stmt *stmt = st(s, ST_MSG_BY_CLIENT_ID);
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_text(stmt, 2, client_id, -1, SQLITE_STATIC);
    int64_t seq = 0;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        seq = sqlite3_column_int64(stmt, 1);
    sqlite3_reset(stmt);
    return seq;
}

/* Binds the columns of m shared by both append statements. */
static void bind_message(sqlite3_stmt *stmt, struct store_message *m)
{
    sqlite3_bind_int64(stmt, 1, m->conversation);
    sqlite3_bind_text(stmt, 2, store_sender_name(m->sender), -1, SQLITE_STATIC);
    bind_text(stmt, 3, m->client_id[0] ? m->client_id : NULL);
    bind_text(stmt, 4, m->reply_to[0] ? m->reply_to : NULL);
    sqlite3_bind_text(stmt, 5, m->text ? m->text : "", -1, SQLITE_STATIC);
    bind_text(stmt, 6, m->meta);
    sqlite3_bind_int64(stmt, 7, m->agent_id);
    if (!m->created_s)
        m->created_s = cd_wall_s();
    sqlite3_bind_int64(stmt, 8, m->created_s);
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

int store_message_append(struct store *s, struct store_message *m)
{
    if (tx_ok(s))
        return CD_EIO;
    int rc;
    if (m->seq > 0) {
        /* The caller knows the next seq: a plain insert. If that seq is
         * taken after all (another writer), compute it below. */
        sqlite3_stmt *stmt = st(s, ST_MSG_INSERT);
        bind_message(stmt, m);
        sqlite3_bind_int64(stmt, 9, m->seq);
        rc = sqlite3_step(stmt);
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE)
            return s->observer ? observe(s, STORE_CHANGE_MESSAGE_APPENDED, m->conversation, NULL, m)
                               : 0;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return CD_ENOTFOUND;
        if ((rc & 0xff) != SQLITE_CONSTRAINT)
            return sql_rc(rc);
        int r = client_id_conflict(s, m);
        if (r != 1)
            return r;
    }
    sqlite3_stmt *stmt = st(s, ST_MSG_APPEND);
    bind_message(stmt, m);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        m->seq = sqlite3_column_int64(stmt, 0);
        rc = sqlite3_step(stmt);
    }
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE)
        return s->observer ? observe(s, STORE_CHANGE_MESSAGE_APPENDED, m->conversation, NULL, m)
                           : 0;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return CD_ENOTFOUND;
    if ((rc & 0xff) == SQLITE_CONSTRAINT && client_id_conflict(s, m) == CD_EEXIST)
        return CD_EEXIST;
    return sql_rc(rc);
}

int store_messages_after(struct store *s, int64_t conversation, int64_t after_seq, int max,
                         int (*cb)(void *ctx, const struct store_message *m), void *ctx)
{
    sqlite3_stmt *stmt = st(s, ST_MSG_AFTER);
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_int64(stmt, 2, after_seq);
    sqlite3_bind_int(stmt, 3, max);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct store_message m;
        read_message(stmt, &m);
        int r = cb(ctx, &m);
        if (r) {
            sqlite3_reset(stmt);
            return r;
        }
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : sql_rc(rc);
}

int store_message_by_client_id(struct store *s, int64_t conversation, const char *client_id,
                               int (*cb)(void *ctx, const struct store_message *m), void *ctx)
{
    if (!client_id || !*client_id)
        return CD_ENOTFOUND;
    sqlite3_stmt *stmt = st(s, ST_MSG_BY_CLIENT_ID);
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_text(stmt, 2, client_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return rc == SQLITE_DONE ? CD_ENOTFOUND : sql_rc(rc);
    }
    struct store_message m;
    read_message(stmt, &m);
    int r = cb(ctx, &m);
    sqlite3_reset(stmt);
    if (r)
        return r;
    int64_t question_seq = m.seq;
    stmt = st(s, ST_MSG_BY_REPLY_TO);
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_text(stmt, 2, client_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, question_seq);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        read_message(stmt, &m);
        r = cb(ctx, &m);
        sqlite3_reset(stmt);
        return r;
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : sql_rc(rc);
}

/* ---- users ---- */

static void read_user(sqlite3_stmt *stmt, struct store_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(stmt, 0);
    copy_col(u->name, sizeof u->name, stmt, 1);
    copy_col(u->role, sizeof u->role, stmt, 2);
    copy_col(u->skills, sizeof u->skills, stmt, 3);
    if (sqlite3_column_bytes(stmt, 4) == STORE_HASH_LEN)
        memcpy(u->token_hash, sqlite3_column_blob(stmt, 4), STORE_HASH_LEN);
    u->created_s = sqlite3_column_int64(stmt, 5);
}

int store_user_add(struct store *s, struct store_user *u)
{
    if (tx_ok(s))
        return CD_EIO;
    sqlite3_stmt *stmt = st(s, ST_USER_ADD);
    sqlite3_bind_text(stmt, 1, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, u->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, u->skills, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 4, u->token_hash, STORE_HASH_LEN, SQLITE_STATIC);
    if (!u->created_s)
        u->created_s = cd_wall_s();
    sqlite3_bind_int64(stmt, 5, u->created_s);
    int rc = sql_run(stmt);
    if (!rc)
        u->id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int get_one_user(sqlite3_stmt *stmt, struct store_user *out)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        read_user(stmt, out);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? CD_ENOTFOUND : sql_rc(rc);
    }
    sqlite3_reset(stmt);
    return rc;
}

int store_user_by_token(struct store *s, const unsigned char hash[STORE_HASH_LEN],
                        struct store_user *out)
{
    sqlite3_stmt *stmt = st(s, ST_USER_BY_TOKEN);
    sqlite3_bind_blob(stmt, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    return get_one_user(stmt, out);
}

int store_user_get(struct store *s, int64_t id, struct store_user *out)
{
    sqlite3_stmt *stmt = st(s, ST_USER_GET);
    sqlite3_bind_int64(stmt, 1, id);
    return get_one_user(stmt, out);
}

int store_user_list(struct store *s, struct store_user *out, int max, int *n_out)
{
    *n_out = 0;
    sqlite3_stmt *stmt = st(s, ST_USER_LIST);
    sqlite3_bind_int(stmt, 1, max);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && *n_out < max)
        read_user(stmt, &out[(*n_out)++]);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_rc(rc);
}

int store_user_remove(struct store *s, const char *name)
{
    if (tx_ok(s))
        return CD_EIO;
    sqlite3_stmt *stmt = st(s, ST_USER_REMOVE);
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sql_run(stmt);
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = CD_ENOTFOUND;
    return rc;
}

int store_has_customer_message(struct store *s, int64_t conversation)
{
    sqlite3_stmt *stmt = st(s, ST_HAS_CUSTOMER_MESSAGE);
    sqlite3_bind_int64(stmt, 1, conversation);
    int rc = sqlite3_step(stmt);
    int has = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW ? has : sql_rc(rc);
}

/* ---- events, feedback, unanswered ---- */

int store_event_add(struct store *s, const char *kind, int64_t conversation, int64_t user_id,
                    const char *detail)
{
    if (tx_ok(s))
        return CD_EIO;
    sqlite3_stmt *stmt = st(s, ST_EVENT_ADD);
    sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, conversation);
    sqlite3_bind_int64(stmt, 3, user_id);
    bind_text(stmt, 4, detail);
    sqlite3_bind_int64(stmt, 5, cd_wall_s());
    return sql_run(stmt);
}

int store_feedback_add(struct store *s, int64_t conversation, int64_t seq, int is_helpful,
                       const char *article_id, const char *question)
{
    if (tx_ok(s))
        return CD_EIO;
    sqlite3_stmt *stmt = st(s, ST_FEEDBACK_ADD);
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_int64(stmt, 2, seq);
    sqlite3_bind_int(stmt, 3, is_helpful ? 1 : 0);
    bind_text(stmt, 4, article_id);
    bind_text(stmt, 5, question);
    sqlite3_bind_int64(stmt, 6, cd_wall_s());
    int rc = sql_run(stmt);
    return rc == CD_EEXIST ? CD_ENOTFOUND : rc; /* foreign key: no such conversation */
}

int store_unanswered_add(struct store *s, int64_t conversation, const char *question,
                         const char *lang, const char *intent, double confidence)
{
    if (tx_ok(s))
        return CD_EIO;
    sqlite3_stmt *stmt = st(s, ST_UNANSWERED_ADD);
    sqlite3_bind_int64(stmt, 1, conversation);
    sqlite3_bind_text(stmt, 2, question ? question : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, lang && *lang ? lang : "en", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, intent ? intent : "", -1, SQLITE_STATIC);
    sqlite3_bind_double(stmt, 5, confidence);
    sqlite3_bind_int64(stmt, 6, cd_wall_s());
    int rc = sql_run(stmt);
    return rc == CD_EEXIST ? CD_ENOTFOUND : rc;
}

int store_unanswered_list(struct store *s, int64_t since_s, struct store_unanswered *out, int max,
                          int *n_out)
{
    if (n_out)
        *n_out = 0;
    if (!s || !out || !n_out || max < 0)
        return CD_EINVAL;
    sqlite3_stmt *stmt = st(s, ST_UNANSWERED_LIST);
    sqlite3_bind_int64(stmt, 1, since_s);
    sqlite3_bind_int(stmt, 2, max);
    int rc = 0, step = SQLITE_DONE, n = 0;
    while (n < max && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct store_unanswered *u = &out[n];
        memset(u, 0, sizeof *u);
        const char *q = (const char *)sqlite3_column_text(stmt, 0);
        u->question = strdup(q ? q : "");
        copy_col(u->lang, sizeof u->lang, stmt, 1);
        u->n = sqlite3_column_int64(stmt, 2);
        u->last_s = sqlite3_column_int64(stmt, 3);
        n++;
        if (!u->question) {
            rc = CD_ENOMEM;
            break;
        }
    }
    if (!rc && n < max && step != SQLITE_DONE)
        rc = sql_rc(step);
    sqlite3_reset(stmt);
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
    sqlite3_stmt *stmt = st(s, ST_UNANSWERED_RESOLVE);
    sqlite3_bind_text(stmt, 1, question, -1, SQLITE_STATIC);
    int rc = sql_run(stmt);
    return rc ? rc : sqlite3_changes(s->db);
}

/* ---- statistics ---- */

static int read_counts(sqlite3_stmt *stmt, struct store_count *out, int *n_out)
{
    int rc;
    *n_out = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && *n_out < STORE_STATS_TOP) {
        struct store_count *c = &out[(*n_out)++];
        copy_col(c->name, sizeof c->name, stmt, 0);
        c->n = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_rc(rc);
}

static sqlite3_stmt *window_stmt(struct store *s, enum stmt_id id, int64_t since_s, int64_t until_s)
{
    sqlite3_stmt *stmt = st(s, id);
    sqlite3_bind_int64(stmt, 1, since_s);
    sqlite3_bind_int64(stmt, 2, until_s);
    return stmt;
}

int store_stats(struct store *s, int64_t since_s, int64_t until_s, int pickup_target_s,
                struct store_stats *out)
{
    memset(out, 0, sizeof *out);
    out->since_s = since_s;
    out->until_s = until_s;
    sqlite3_stmt *stmt = window_stmt(s, ST_STATS_TOTALS, since_s, until_s);
    sqlite3_bind_int(stmt, 3, pickup_target_s);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return sql_rc(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
    }
    out->n_conversations = sqlite3_column_int64(stmt, 0);
    out->n_bot_resolved = sqlite3_column_int64(stmt, 1);
    out->n_handoffs = sqlite3_column_int64(stmt, 2);
    out->n_picked = sqlite3_column_int64(stmt, 3);
    out->n_within_target = sqlite3_column_int64(stmt, 4);
    out->n_ratings = sqlite3_column_int64(stmt, 5);
    out->csat = sqlite3_column_double(stmt, 6);
    int64_t n_satisfied = sqlite3_column_int64(stmt, 7);
    sqlite3_reset(stmt);
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
        sqlite3_bind_int64(stmt, 3, (n_waits - 1) / 2);
        double w[2] = {0, 0};
        int n_w = 0;
        while (n_w < 2 && sqlite3_step(stmt) == SQLITE_ROW)
            w[n_w++] = sqlite3_column_double(stmt, 0);
        sqlite3_reset(stmt);
        if (n_w == 1 || (n_waits % 2) == 1)
            out->median_wait_s = w[0];
        else if (n_w == 2)
            out->median_wait_s = (w[0] + w[1]) / 2;
    }

    stmt = window_stmt(s, ST_STATS_QUEUES, since_s, until_s);
    sqlite3_bind_int(stmt, 3, STORE_STATS_TOP);
    rc = read_counts(stmt, out->by_queue, &out->n_by_queue);
    if (rc)
        return rc;
    stmt = window_stmt(s, ST_STATS_DRIVERS, since_s, until_s);
    sqlite3_bind_int(stmt, 3, STORE_STATS_TOP);
    rc = read_counts(stmt, out->drivers, &out->n_drivers);
    if (rc)
        return rc;
    stmt = window_stmt(s, ST_STATS_UNANSWERED, since_s, until_s);
    sqlite3_bind_int(stmt, 3, STORE_STATS_TOP);
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
    sqlite3_stmt *nps = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT nps, nps_comment FROM conversations WHERE id = ?1", -1,
                           &nps, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(nps, 1, id);
        if (sqlite3_step(nps) == SQLITE_ROW && sqlite3_column_int(nps, 0) >= 0) {
            json_object_set_new(o, "nps", json_integer(sqlite3_column_int(nps, 0)));
            json_object_set_new(o, "nps_comment",
                                json_str_or_null((const char *)sqlite3_column_text(nps, 1)));
        }
    }
    sqlite3_finalize(nps);
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
static int delete_batches(struct store *s, sqlite3_stmt *stmt, int batch, int max, int *n_out)
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
        sqlite3_bind_int(stmt, 2, limit);
        rc = sql_run(stmt);
        if (rc)
            break;
        int n = sqlite3_changes(s->db);
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
    sqlite3_stmt *stmt = st(s, ST_EMAIL_CONVERSATIONS);
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, after_id);
    sqlite3_bind_int(stmt, 3, max);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ids[(*n_out)++] = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : sql_rc(rc);
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

int store_wipe_wal(struct store *s)
{
    if (s->is_in_tx)
        return CD_EBUSY;
    /* Another checkpoint (the store's thread, another process) holds the checkpoint lock for
     * a moment: SQLite answers BUSY at once then, without the busy handler. */
    int rc = SQLITE_BUSY;
    for (int i = 0; i < 100 && rc == SQLITE_BUSY; i++) {
        rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        if (rc == SQLITE_BUSY)
            sqlite3_sleep(20);
    }
    return rc == SQLITE_OK ? 0 : rc == SQLITE_BUSY ? CD_EBUSY : sql_rc(rc);
}

int store_erase_email(struct store *s, const char *email, int64_t user_id, int *n_out)
{
    *n_out = 0;
    if (!email || !*email)
        return CD_EINVAL;
    sqlite3_stmt *stmt = st(s, ST_ERASE_EMAIL);
    sqlite3_bind_text(stmt, 1, email, -1, SQLITE_STATIC);
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
    sqlite3_stmt *stmt = st(s, ST_RETENTION);
    sqlite3_bind_int64(stmt, 1, before_s);
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
