/* store_sqlite: the SQLite backend of the store: opening the file, its schema migrations,
 * and checkpoints (the store's housekeeping on SQLite). The queries are store.c's.
 *
 * DESIGN. One connection in WAL mode, synchronous NORMAL (or FULL for the
 * "full" durability setting), a busy timeout so the KB's own connection to
 * the same file can share it. The schema is built by numbered migrations,
 * each run in its own transaction that also sets PRAGMA user_version, so a
 * database of any earlier version is brought forward and a crash half-way
 * leaves it at a whole version. Group commit: store_begin() opens BEGIN IMMEDIATE and it stays open
 * until store_commit(); a failed commit rolls everything back, so callers can
 * tell their clients that nothing of it was stored.
 *
 * Checkpoints. By default SQLite copies the WAL back into the database file
 * inside the COMMIT that takes the WAL over 1,000 pages, fsyncs included: a
 * stall of several milliseconds for whoever commits. With
 * store_options.housekeeping_thread a WAL hook replaces that: a commit that
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
#include "store_int.h"
#include "sql.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* 10: PostgreSQL's conversation-event trigger fires on the columns it reports only
     * (store_pg.c); nothing changes here. */
    "",
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

struct store_sqlite {
    sqlite3 *db;
    /* The background checkpoint (store_options.housekeeping_thread). */
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
    int rc = store_schema_check(version, err);
    if (rc)
        return rc;
    while (version < target) {
        char pragma[64];
        rc = exec_sql(db, "BEGIN IMMEDIATE", err);
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

int store_sqlite_migrate_to(const char *path, int version)
{
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
    struct store_sqlite *q = ctx;
    if (n_frames < q->ck_frames)
        return SQLITE_OK;
    pthread_mutex_lock(&q->ck_mutex);
    int is_due = n_frames >= q->ck_frames * CHECKPOINT_INLINE_FACTOR;
    int is_catch_up = (is_due && n_frames - q->ck_done_frames <= q->ck_frames / 16) ||
                      n_frames >= q->ck_frames * CHECKPOINT_INLINE_FACTOR * 2;
    q->ck_is_paused = is_catch_up;
    /* Not after every commit (each checkpoint costs two fsyncs), but again
     * and again once the catch-up is due, until little is left for it. */
    if (!is_catch_up && !q->ck_is_wanted &&
        (is_due || n_frames >= q->ck_last_frames + q->ck_frames / 4)) {
        q->ck_last_frames = n_frames;
        q->ck_is_wanted = 1;
        pthread_cond_signal(&q->ck_cond);
    }
    pthread_mutex_unlock(&q->ck_mutex);
    /* The catch-up (see the top of the file) is left to the next
     * store_begin(): by then the caller has sent what this commit made
     * visible, so only later work waits for it. */
    q->is_catch_up_due = is_catch_up;
    (void)db;
    (void)name;
    return SQLITE_OK;
}

/* Between two groups, on the committing thread: copies what the paused
 * checkpoint thread left, so that the write that follows starts the WAL
 * over. BUSY while the thread finishes its checkpoint: the next commit's
 * hook asks again. */
static void checkpoint_catch_up(struct store_sqlite *q)
{
    q->is_catch_up_due = 0;
    if (sqlite3_wal_checkpoint_v2(q->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
        return;
    pthread_mutex_lock(&q->ck_mutex);
    q->ck_is_paused = 0;
    q->ck_last_frames = 0; /* the WAL starts over */
    q->ck_done_frames = 0;
    pthread_mutex_unlock(&q->ck_mutex);
}

static void *checkpoint_main(void *arg)
{
    struct store_sqlite *q = arg;
    pthread_mutex_lock(&q->ck_mutex);
    while (!q->ck_is_stop) {
        if (!q->ck_is_wanted || q->ck_is_paused) {
            pthread_cond_wait(&q->ck_cond, &q->ck_mutex);
            continue;
        }
        q->ck_is_wanted = 0;
        pthread_mutex_unlock(&q->ck_mutex);
        /* PASSIVE: copies what no reader still needs, never waits for the
         * writer; commits made meanwhile wake it again. */
        int n_done = 0;
        int rc =
            sqlite3_wal_checkpoint_v2(q->ck_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, &n_done);
        pthread_mutex_lock(&q->ck_mutex);
        if (rc == SQLITE_OK) {
            q->n_ck++;
            q->ck_done_frames = n_done;
        }
    }
    pthread_mutex_unlock(&q->ck_mutex);
    return NULL;
}

/* Starts the background checkpoint; on failure SQLite's auto-checkpoint
 * stays in place (slower commits, same results). */
static void checkpoint_start(struct store_sqlite *q, const char *path,
                             const struct store_options *options)
{
    if (!strcmp(path, ":memory:") || !sqlite3_threadsafe())
        return;
    q->ck_db = open_db(path, options, NULL);
    if (!q->ck_db)
        return;
    sqlite3_wal_autocheckpoint(q->ck_db, 0);
    q->ck_frames =
        options->housekeeping_batch > 0 ? options->housekeeping_batch : CHECKPOINT_FRAMES;
    if (pthread_mutex_init(&q->ck_mutex, NULL))
        goto fail;
    if (pthread_cond_init(&q->ck_cond, NULL)) {
        pthread_mutex_destroy(&q->ck_mutex);
        goto fail;
    }
    if (pthread_create(&q->ck_thread, NULL, checkpoint_main, q)) {
        pthread_cond_destroy(&q->ck_cond);
        pthread_mutex_destroy(&q->ck_mutex);
        goto fail;
    }
    q->has_ck_thread = 1;
    sqlite3_wal_hook(q->db, wal_hook, q);
    return;
fail:
    sqlite3_close(q->ck_db);
    q->ck_db = NULL;
}

static void checkpoint_stop(struct store_sqlite *q)
{
    if (!q->has_ck_thread)
        return;
    sqlite3_wal_autocheckpoint(q->db, 1000); /* SQLite's default again */
    pthread_mutex_lock(&q->ck_mutex);
    q->ck_is_stop = 1;
    pthread_cond_signal(&q->ck_cond);
    pthread_mutex_unlock(&q->ck_mutex);
    pthread_join(q->ck_thread, NULL);
    pthread_cond_destroy(&q->ck_cond);
    pthread_mutex_destroy(&q->ck_mutex);
    sqlite3_close(q->ck_db);
    q->ck_db = NULL;
    q->has_ck_thread = 0;
}

int store_sqlite_open(struct store *s, const char *path, const struct store_options *options,
                      char **err)
{
    /* No global allocation statistics (a mutex per malloc); this only
     * takes effect if it comes before SQLite's first use in the process. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    struct store_sqlite *q = calloc(1, sizeof *q);
    if (!q)
        return CD_ENOMEM;
    s->sqlite = q;
    q->db = open_db(path, options, err);
    if (!q->db)
        return CD_EIO;
    int rc = migrate(q->db, STORE_SCHEMA_VERSION, err);
    if (rc)
        return rc;
    s->db = db_wrap_sqlite(q->db);
    if (!s->db)
        return CD_ENOMEM;
    if (options && options->housekeeping_thread)
        checkpoint_start(q, path, options);
    return 0;
}

void store_sqlite_close(struct store *s)
{
    struct store_sqlite *q = s->sqlite;
    if (!q)
        return;
    checkpoint_stop(q);
    sqlite3_close(q->db);
    free(q);
    s->sqlite = NULL;
}

void store_sqlite_before_begin(struct store *s)
{
    if (s->sqlite->is_catch_up_due)
        checkpoint_catch_up(s->sqlite);
}

int store_sqlite_schema_version(struct store *s)
{
    return user_version(s->sqlite->db);
}

int64_t store_sqlite_housekeeping_runs(struct store *s)
{
    struct store_sqlite *q = s->sqlite;
    if (!q || !q->has_ck_thread)
        return 0;
    pthread_mutex_lock(&q->ck_mutex);
    int64_t n = q->n_ck;
    pthread_mutex_unlock(&q->ck_mutex);
    return n;
}

/* Erased rows: every connection runs with secure_delete, so their pages are overwritten with
 * zeros; the earlier copies of those pages in the -wal file go with a TRUNCATE checkpoint. */
int store_sqlite_purge_erased(struct store *s)
{
    /* Another checkpoint (the store's thread, another process) holds the checkpoint lock for
     * a moment: SQLite answers BUSY at once then, without the busy handler. */
    int rc = SQLITE_BUSY;
    for (int i = 0; i < 100 && rc == SQLITE_BUSY; i++) {
        rc = sqlite3_wal_checkpoint_v2(s->sqlite->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        if (rc == SQLITE_BUSY)
            sqlite3_sleep(20);
    }
    return rc == SQLITE_OK ? 0 : rc == SQLITE_BUSY ? CD_EBUSY : sql_rc(rc);
}
