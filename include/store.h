/* store: the durable record of caredesk: conversations, their messages, agent
 * and author accounts, feedback, unanswered questions and the audit log.
 *
 * DESIGN. One struct store owns one database connection: a SQLite file (the default, one
 * node) or a PostgreSQL database (any number of nodes sharing it), chosen by the target
 * store_open() is given. Nothing in this header belongs to either; store.c holds every query,
 * written once, and store_sqlite.c / store_pg.c open, migrate and look after their database.
 * A store is used from one thread (the server's event loop). Writes are grouped:
 * store_begin() opens a transaction that stays open across many calls and store_commit()
 * makes all of them durable at once (group commit: one durable write per loop turn, not per
 * message). Outside store_begin()/store_commit() every call commits by itself. Every query is
 * bounded (LIMIT) and uses a statement prepared once.
 *
 * A failed write inside the group. A write that is expected to meet a duplicate (a resent
 * message, a taken user name) does not fail: it reports CD_EEXIST and the group goes on. Any
 * other failed write ends its unit of work: store_mark_undo() takes the group back to the
 * mark, and the group goes on. Without a mark the backends differ, so callers put every unit
 * of work that can fail under one: PostgreSQL aborts the whole transaction at its first error
 * (later writes and the commit then report CD_EIO and nothing of the group is stored), SQLite
 * undoes the failed statement alone.
 *
 * The knowledge base (kb.h) has a connection of its own. Commit (chat_flush) before writing
 * through kb.h: on one SQLite file a KB write waits for the open group. */
#ifndef CD_STORE_H
#define CD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cd.h"

struct store;

/* The schema version store_open() migrates to. */
#define STORE_SCHEMA_VERSION 10
/* The version PostgreSQL's schema starts at: it is created whole, as SQLite's is at this
 * version; later versions are migrations on both. */
#define STORE_PG_FIRST_VERSION 9

#define STORE_HASH_LEN      32 /* SHA-256 of a token */
#define STORE_NAME_MAX      64 /* user names, queue names, intents, dispositions */
#define STORE_CLIENT_ID_MAX 64

enum store_durability {
    STORE_DURABILITY_NORMAL = 0, /* safe against a process crash (synchronous=NORMAL) */
    STORE_DURABILITY_FULL = 1,   /* fsync per commit, safe against power loss */
};

struct store_options {
    int durability;      /* enum store_durability */
    int busy_timeout_ms; /* 0 = 5000: how long a write waits for another writer */
    /* Non-zero: the database's housekeeping (SQLite's checkpoints) runs on a thread of the
     * store's own, never inside store_commit() on the caller's thread. For the server's
     * event loop. */
    int housekeeping_thread;
    int housekeeping_batch; /* SQLite: pages of log that start it; 0 = 10000 (40 MB) */
};

/* Opens the database target names, creating it and bringing its schema to
 * STORE_SCHEMA_VERSION: a SQLite file path (":memory:" for a private one), or a PostgreSQL
 * connection URI (postgresql://USER@HOST:PORT/DB, any libpq URI; the password may come from
 * PGPASSWORD or ~/.pgpass and is never logged). options may be NULL (defaults). Returns NULL
 * on failure with, if err is not NULL, a malloc'd message in *err. */
struct store *store_open(const char *target, const struct store_options *options, char **err);

/* 1 if target is a PostgreSQL URI rather than a SQLite file. */
int store_target_is_postgres(const char *target);

/* Commits an open transaction, finalizes statements and closes. NULL is fine. */
void store_close(struct store *s);

/* Housekeeping runs the background thread (store_options.housekeeping_thread) has made so
 * far (0 without the thread, or on PostgreSQL, whose server does its own). */
int64_t store_housekeeping_runs(struct store *s);

/* The schema version of the open database. */
int store_schema_version(struct store *s);

/* For migration tests and tools: creates the database at target, or migrates
 * an older one, only up to schema version (1..STORE_SCHEMA_VERSION; PostgreSQL's first
 * schema is STORE_PG_FIRST_VERSION). Returns 0, CD_EINVAL (bad version or newer database)
 * or CD_E*. */
int store_migrate_to(const char *target, int version);

/* 1 while the database answers (a PostgreSQL connection can be lost; the store reconnects
 * at the next store_begin()); always 1 for SQLite. */
int store_is_up(struct store *s);

/* Asks the database whether it answers (PostgreSQL: one round trip; reconnects, at most once
 * a second, when the connection was lost and no group is open). 0 or CD_EIO. */
int store_ping(struct store *s);

/* Names the node this store writes for (PostgreSQL, several nodes: cluster.h), so that the
 * events its writes leave for the other nodes say where they came from. Kept across
 * reconnects. Does nothing on SQLite. Returns 0 or CD_E*. */
int store_set_node(struct store *s, const char *node_id);

/* Several nodes: agent_id signed in on this node (the last node an agent signed in to is the
 * one that counts the agent's chats). store_agent_node() names that node into out. Both do
 * nothing on SQLite or without store_set_node() (store_agent_node: CD_ENOTFOUND). Return 0
 * or CD_E*. */
int store_agent_here(struct store *s, int64_t agent_id);
int store_agent_node(struct store *s, int64_t agent_id, char *out, size_t cap);

/* Several nodes: the ids of up to max chats with an agent whom no node has seen since
 * seen_before_ms (store_agent_here() is each node's heartbeat for the agents signed in to it):
 * the agent's node died and the agent did not sign in elsewhere. *n_out gets how many; none
 * on SQLite. Returns 0 or CD_E*. */
int store_orphaned_chats(struct store *s, int64_t seen_before_ms, int64_t *ids, int max,
                         int *n_out);

/* Several nodes: appends a KB change (kb.h's journal: one JSON object) for every node to
 * make; it commits with the open group, or by itself. CD_EINVAL on SQLite. Returns 0 or
 * CD_E*. */
int store_kb_journal(struct store *s, const char *op);

/* Calls cb with every journaled KB change up to event id upto_id (cluster_start_id()), oldest
 * first: how a node's KB index catches up at start-up. Returns 0, cb's first non-zero value
 * or CD_E*. Nothing on SQLite. */
int store_kb_journal_each(struct store *s, int64_t upto_id, int (*cb)(void *ctx, const char *op),
                          void *ctx);

/* Group commit. store_begin() opens a write transaction if none is open (a
 * second call while open does nothing). store_commit() commits it (nothing
 * to do: returns 0). On a failed commit the transaction is rolled back and
 * CD_EFULL / CD_EIO is returned: none of its writes happened. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);
int store_in_transaction(const struct store *s);

/* Makes the writes of one unit of work (one client frame) all-or-nothing
 * inside the group: store_mark() opens the group if needed and sets a mark;
 * store_mark_release() keeps the writes since the mark, store_mark_undo()
 * drops them (the rest of the group stays). Marks do not nest. */
int store_mark(struct store *s);
void store_mark_release(struct store *s);
void store_mark_undo(struct store *s);

/* ---- conversations ---- */

enum store_state {
    STORE_STATE_BOT = 0,
    STORE_STATE_CLARIFYING,
    STORE_STATE_COLLECTING,
    STORE_STATE_QUEUED,
    STORE_STATE_WITH_AGENT,
    STORE_STATE_CLOSED,
    STORE_STATE_RATED,
};

/* "bot", "clarifying", ... ; store_state_parse returns -1 for unknown names. */
const char *store_state_name(int state);
int store_state_parse(const char *name);

struct store_conversation {
    int64_t id;
    unsigned char token_hash[STORE_HASH_LEN];
    int state; /* enum store_state */
    char lang[8];
    char *customer_name; /* malloc'd or NULL */
    char *customer_email;
    char *customer_page;
    char queue[STORE_NAME_MAX];  /* "" until handed off */
    char intent[STORE_NAME_MAX]; /* last triage intent, "" if none */
    double confidence;
    int priority;      /* 1 (most urgent) .. 5 */
    int is_offline;    /* waiting as an offline ticket */
    int64_t agent_id;  /* 0 = none */
    int64_t created_s; /* wall clock seconds */
    int64_t queued_s;  /* first handoff, 0 = never handed off */
    int64_t picked_s;  /* first pickup by an agent, 0 = never */
    int64_t closed_s;
    char closed_by[16]; /* "customer", "agent", "system" or "" */
    char disposition[STORE_NAME_MAX];
    char *note;
    int rating; /* 1..5, 0 = none */
    char *comment;
    int64_t last_seq; /* filled in by the getters */
};

/* Frees the malloc'd strings of c and zeroes it. */
void store_conversation_clear(struct store_conversation *c);

/* Creates a conversation from c's token_hash, lang, customer_* fields,
 * created_s (0 = now) and state; sets c->id. Returns 0 or CD_E*. */
int store_conversation_create(struct store *s, struct store_conversation *c);

/* 1 if the conversation has at least one customer message (the conversations that count in
 * store_stats()), 0 if not, or a negative CD_E* code. */
int store_has_customer_message(struct store *s, int64_t conversation);

/* Fetch one conversation into *out (clear it with store_conversation_clear).
 * Return 0, CD_ENOTFOUND or CD_E*. */
int store_conversation_get(struct store *s, int64_t id, struct store_conversation *out);
int store_conversation_by_token(struct store *s, const unsigned char hash[STORE_HASH_LEN],
                                struct store_conversation *out);

/* Writes every mutable field of c (state, customer_*, queue, intent,
 * confidence, priority, is_offline, agent_id, timestamps, closed_by,
 * disposition, note, rating, comment). Returns 0, CD_ENOTFOUND or CD_E*. */
int store_conversation_update(struct store *s, const struct store_conversation *c);

/* The same, only if the stored conversation is still in expect_state with expect_agent
 * (what the caller last read): with several nodes, a node whose copy is out of date must not
 * undo another node's claim or close. CD_EBUSY when it changed meanwhile. */
int store_conversation_update_if(struct store *s, const struct store_conversation *c,
                                 int expect_state, int64_t expect_agent);

/* Writes only c's state, intent and confidence: what a bot reply changes,
 * at a fraction of the cost of store_conversation_update() (no other
 * column, no index but the state's). Returns 0, CD_ENOTFOUND or CD_E*. */
int store_conversation_update_triage(struct store *s, const struct store_conversation *c);

/* Gives a queued conversation to agent_id: succeeds only if it is still
 * queued (so two nodes racing for it cannot both win). Sets picked_s if it
 * was 0. Returns 0, CD_EBUSY (not queued any more), CD_ENOTFOUND or CD_E*. */
int store_conversation_claim(struct store *s, int64_t id, int64_t agent_id, int64_t now_s);

/* The same, and only while agent_id has fewer than capacity conversations with an agent
 * (0 = no limit), counted in the store, so that an agent signed in on several nodes never goes
 * over: CD_EPERM when at capacity. */
int store_conversation_claim_within(struct store *s, int64_t id, int64_t agent_id, int64_t now_s,
                                    int capacity);

/* Calls cb for each conversation that is queued or with an agent (at most
 * max), oldest first; for rebuilding the queue after a restart. The struct
 * is valid during the call only. Returns 0, the first non-zero cb value, or
 * CD_E*. */
int store_conversations_open(struct store *s, int max,
                             int (*cb)(void *ctx, const struct store_conversation *c), void *ctx);

/* A short summary of an earlier conversation of the same customer. */
struct store_history_item {
    int64_t conversation;
    int64_t created_s;
    int state;
    char intent[STORE_NAME_MAX];
    char disposition[STORE_NAME_MAX];
};

/* Up to max other conversations with this email (newest first), except
 * exclude_id. *n_out gets the count. Returns 0 or CD_E*. */
int store_conversations_by_email(struct store *s, const char *email, int64_t exclude_id,
                                 struct store_history_item *out, int max, int *n_out);

/* ---- messages ---- */

enum store_sender {
    STORE_SENDER_CUSTOMER = 0,
    STORE_SENDER_BOT,
    STORE_SENDER_AGENT,
    STORE_SENDER_SYSTEM,
};

const char *store_sender_name(int sender);

struct store_message {
    int64_t conversation;
    int64_t seq;                             /* set by store_message_append */
    int sender;                              /* enum store_sender */
    char client_id[STORE_CLIENT_ID_MAX + 1]; /* customer/agent message id, "" if none */
    char reply_to[STORE_CLIENT_ID_MAX + 1];  /* bot reply: the client_id it answers */
    const char *text;                        /* already redacted */
    const char *meta; /* JSON object text (action, intent, confidence, articles,
                         event ...) or NULL */
    int64_t agent_id;
    int64_t created_s; /* 0 = now */
};

/* Appends m as the next message of its conversation and sets m->seq. If
 * m->seq > 0 on input, the caller asserts it is the next seq (1 + the last
 * stored one; never more): that saves a lookup, and if the seq is taken
 * after all the store computes the next one itself.
 * A customer or agent message whose client_id is already stored for that
 * conversation is not stored again: CD_EEXIST is returned and m->seq is set
 * to the stored message's seq. Returns 0, CD_EEXIST, CD_ENOTFOUND or CD_E*. */
int store_message_append(struct store *s, struct store_message *m);

/* Sends the append of m at m->seq, the seq the caller expects (1 + the last it knows of),
 * and returns without waiting: on PostgreSQL it runs while the caller goes on (a bot
 * decides its reply), and the caller's next write reads its result in the same round trip.
 * store_message_sent() then says whether it was stored: 0 (it was, at m->seq) or CD_EBUSY
 * (nothing was stored: the client id is stored already, or another node wrote to the
 * conversation since; the caller undoes its unit of work and appends the ordinary way), or
 * CD_E*. Inside a unit of work (store_mark()) only, and no other append in between but the
 * one whose round trip carries it. Returns 0 (sent), 1 (this store does not send ahead:
 * SQLite, or an observer is set; append the ordinary way) or CD_E*. */
int store_message_send(struct store *s, struct store_message *m);
/* Whether store_message_send() can send ahead here (PostgreSQL without an observer). */
int store_sends_ahead(const struct store *s);
int store_message_sent(struct store *s, struct store_message *m);

/* The question held by store_message_send() and m, the bot's reply to it (with t: and t's
 * triage columns), in one statement sent without waiting (PostgreSQL): m->seq is set to the
 * seq the reply gets if both are stored. Several may be in flight; the caller's next round
 * trip carries them. store_message_pair_result(ticket) then says 0 (both stored, as
 * expected), CD_EBUSY (neither: see store_message_send()) or CD_E* (the group fails), and
 * frees the ticket; every ticket is read before the group commits. Returns 0 with *ticket
 * set, 1 when it cannot (SQLite, nothing held for m's conversation, all tickets in flight:
 * append the ordinary way) or CD_E*. */
int store_message_pair_send(struct store *s, struct store_message *m,
                            const struct store_conversation *t, int *ticket);
int store_message_pair_result(struct store *s, int ticket);

/* A bot reply and what it changes: appends m as store_message_append() does and writes
 * t's state, intent and confidence as store_conversation_update_triage() does (t->id is
 * m->conversation). On PostgreSQL that is one statement, so one round trip. Returns as
 * store_message_append(), or CD_ENOTFOUND/CD_E* from the update; on a failure the caller
 * undoes its unit of work (store_mark_undo()), which holds both. */
int store_message_append_triage(struct store *s, struct store_message *m,
                                const struct store_conversation *t);

/* Calls cb for each message of conversation with seq > after_seq, in order,
 * at most max of them. The message and its strings are valid during the
 * call only. Returns 0, the first non-zero cb value, or CD_E*. */
int store_messages_after(struct store *s, int64_t conversation, int64_t after_seq, int max,
                         int (*cb)(void *ctx, const struct store_message *m), void *ctx);

/* Finds the message with this client_id (and its sender) and, if the bot
 * replied to it, the bot reply. cb is called with the message, then with the
 * reply if any. Returns 0, CD_ENOTFOUND or CD_E*. */
int store_message_by_client_id(struct store *s, int64_t conversation, const char *client_id,
                               int (*cb)(void *ctx, const struct store_message *m), void *ctx);

/* Calls cb with the text and conversation language of each of the last max customer
 * messages the triage scored (the bot's reply after it has "scored":true in its meta,
 * triage_decision.is_scored), newest first, among the last max x STORE_RECENT_SCAN
 * messages; a non-zero return from cb stops and is returned. For measuring the traffic's
 * out-of-scope share again at start-up (triage_add_traffic()). */
#define STORE_RECENT_SCAN 50
int store_recent_questions(struct store *s, int max,
                           int (*cb)(void *ctx, const char *text, const char *lang), void *ctx);

/* ---- users (agents, authors, admins) ---- */

struct store_user {
    int64_t id;
    char name[STORE_NAME_MAX];
    char role[16];    /* "agent", "author", "admin", "supervisor" */
    char skills[256]; /* comma-separated queue names, "" = none */
    unsigned char token_hash[STORE_HASH_LEN];
    int64_t created_s;
};

/* Adds u (name, role, skills, token_hash); sets u->id. Returns 0, CD_EEXIST
 * (name taken) or CD_E*. */
int store_user_add(struct store *s, struct store_user *u);
int store_user_by_token(struct store *s, const unsigned char hash[STORE_HASH_LEN],
                        struct store_user *out);
int store_user_get(struct store *s, int64_t id, struct store_user *out);
/* Up to max users ordered by name; *n_out gets the count. */
int store_user_list(struct store *s, struct store_user *out, int max, int *n_out);
/* Returns 0 or CD_ENOTFOUND. */
int store_user_remove(struct store *s, const char *name);

/* ---- events (audit log), feedback, unanswered questions ---- */

/* Appends an audit/event record: kind ("handoff", "claim", "user_add",
 * "article_put", "erase" ...), optional conversation and user (0 = none),
 * optional detail (JSON text or NULL). Returns 0 or CD_E*. */
int store_event_add(struct store *s, const char *kind, int64_t conversation, int64_t user_id,
                    const char *detail);

/* Records "was this helpful?" for the bot reply seq. article_id may be NULL. */
int store_feedback_add(struct store *s, int64_t conversation, int64_t seq, int is_helpful,
                       const char *article_id, const char *question);

/* Records a question the bot could not answer (handoff or clarify for lack
 * of evidence, or a "no" feedback). */
int store_unanswered_add(struct store *s, int64_t conversation, const char *question,
                         const char *lang, const char *intent, double confidence);

/* One unanswered question, counted over every time it was asked (any case). */
struct store_unanswered {
    char *question; /* owned; free with store_unanswered_clear() */
    char lang[8];
    int64_t n;      /* times asked */
    int64_t last_s; /* last asked */
};

/* Lists up to max unanswered questions asked since since_s (from the last 10000 recorded),
 * most asked first, into out (caller's array); *n_out gets the count. Returns 0 or CD_E*. */
int store_unanswered_list(struct store *s, int64_t since_s, struct store_unanswered *out, int max,
                          int *n_out);
void store_unanswered_clear(struct store_unanswered *items, int n);

/* Forgets every record of question (any case): the KB was taught its answer. Returns how many
 * records went (0 or more) or a negative CD_E* code. */
int store_unanswered_resolve(struct store *s, const char *question);

/* ---- statistics (GET /api/stats, dashboard) ---- */

struct store_count {
    char name[160];
    int64_t n;
};

#define STORE_STATS_TOP 10

struct store_stats {
    int64_t since_s, until_s;
    int64_t n_conversations; /* with at least one customer message */
    int64_t n_bot_resolved;  /* never handed off */
    int64_t n_handoffs;      /* handed off to the queue */
    int64_t n_picked;        /* picked up by an agent */
    int64_t n_within_target; /* picked up within the pickup target */
    int64_t n_ratings;
    double deflection_rate;      /* n_bot_resolved / n_conversations (0 if none) */
    double escalation_rate;      /* n_handoffs / n_conversations */
    double pickup_within_target; /* n_within_target / n_picked */
    double median_wait_s;        /* queued -> picked, over picked conversations */
    double csat;                 /* mean rating 1..5, 0 if none */
    double csat_satisfied;       /* share of ratings >= 4 */
    struct store_count by_queue[STORE_STATS_TOP];
    int n_by_queue;
    struct store_count drivers[STORE_STATS_TOP]; /* disposition, else intent */
    int n_drivers;
    struct store_count unanswered[STORE_STATS_TOP];
    int n_unanswered;
};

/* Fills *out for conversations created in [since_s, until_s), counting the pickups within
 * pickup_target_s (the caller's setting; the store has no default of its own). Returns 0 or
 * CD_E*. */
int store_stats(struct store *s, int64_t since_s, int64_t until_s, int pickup_target_s,
                struct store_stats *out);

/* ---- data-subject access, erasure, retention ---- */

/* Appends the conversation with its messages as one JSON object to out.
 * Returns 0, CD_ENOTFOUND or CD_E*. */
int store_export_conversation(struct store *s, int64_t id, struct cd_buf *out);

/* The ids of up to max conversations of email (case-insensitive) with an id above after_id,
 * in id order, into ids; *n_out gets how many. Returns 0 or CD_E*. */
int store_email_conversation_ids(struct store *s, const char *email, int64_t after_id, int64_t *ids,
                                 int max, int *n_out);

/* Appends {"email","conversations":[...]} to out: every conversation of email
 * (case-insensitive) as store_export_conversation() writes it, oldest first (an empty list
 * when there is none). *n_out gets how many. Returns 0 or CD_E*. */
int store_export_email(struct store *s, const char *email, struct cd_buf *out, int *n_out);

/* Deletes every conversation (with messages, feedback, unanswered questions)
 * whose customer email is email (case-insensitive). *n_out gets the number of
 * conversations deleted. Commits (unless the caller's transaction is open) and writes the
 * audit log ("erase" by user_id, 0 for the command line; the email is not written). Call
 * store_purge_erased() after the commit so that no earlier copy of the rows stays in the
 * database's own files. Returns 0 or CD_E*. */
int store_erase_email(struct store *s, const char *email, int64_t user_id, int *n_out);

/* Makes erased rows unrecoverable from the database's files. SQLite: the rows' pages were
 * overwritten with zeros (secure_delete) and their earlier copies leave the write-ahead log
 * here, waiting for other connections up to the busy timeout. PostgreSQL: the server reclaims
 * dead rows with VACUUM (autovacuum, or the operator's); nothing to do here. Returns 0,
 * CD_EBUSY (inside a transaction, or the database stayed busy: try again) or CD_E*. */
int store_purge_erased(struct store *s);

/* Deletes closed or rated conversations closed before before_s, at most max
 * per call, and writes what it deleted to the audit log ("retention"). *n_out gets the
 * number deleted. Returns 0 or CD_E*. */
int store_retention(struct store *s, int64_t before_s, int max, int *n_out);

#endif
