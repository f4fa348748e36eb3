/* chat: conversations and the customer/agent protocols, with no network.
 * Built from chat.c (state, units of work, flush), chat_customer.c and
 * chat_agent.c (one protocol each), sharing the private src/chat_int.h.
 *
 * DESIGN. server.c owns sockets; it hands chat.c each connection's opening,
 * each text frame and each close, tagged with an opaque connection id, and
 * chat.c answers by queueing frames for connections through struct chat_io.
 * Frames are never delivered directly: chat.c appends what must be durable to
 * the store inside the current transaction, and chat_flush() (called by the
 * server once per event-loop turn) commits that transaction first and only
 * then hands the queued frames to io->send. So a client is never told of a
 * message that a crash could lose (durable before visible, group commit).
 * The protocol is documented in docs/protocol.md.
 *
 * For server.c: chat.c is built into libcaredesk.a; reference chat_* with
 * ordinary (strong) references: a "#pragma weak" reference does not pull
 * chat.o out of the static library, so chat_new would stay NULL. Call
 * chat_flush() after chat_tick() and after every turn in which chat_*
 * was called (chat_has_pending() says whether anything waits).
 * All functions are called from the event-loop thread. The
 * store transaction opened by chat_* calls blocks writers on other
 * connections to the same database file (kb.c): call chat_flush() before
 * writing through kb.h (REST article edits) in the same loop turn. */
#ifndef CD_CHAT_H
#define CD_CHAT_H

#include "queue.h"

#include <stddef.h>
#include <stdint.h>

struct store;
struct kb;
struct triage;
struct redactor;
struct chat;

/* How chat.c reaches connections; implemented by server.c (or a test). */
struct chat_io {
    /* Queues one JSON text frame for connection conn. */
    void (*send)(void *ctx, uint64_t conn, const char *frame, size_t len);
    /* Closes connection conn with a websocket close code (1000, 1001, 1008 ...). */
    void (*close)(void *ctx, uint64_t conn, int code, const char *reason);
    void *ctx;
};

/* What the server knows about a connection when it opens. */
struct chat_peer {
    const char *address; /* client IP, for logs and throttling */
    const char *origin;  /* Origin header or NULL */
    const char *user_agent;
};

/* Behaviour settings (from config.c); zero values mean the documented default. */
struct chat_settings {
    /* Queue names, agent capacity, pickup target and business hours, handed to queue_new()
     * as they are (defaults: queue_settings_defaults()). */
    struct queue_settings queue;
    int max_message_bytes;  /* default 4096 */
    int is_auto_assign;     /* assign to the least busy available agent with the skill */
    const char *public_url; /* base for article links, default "" (relative "/kb/ID") */
    /* Added by chat.c's owner (all optional, zero = default): */
    struct redactor *redactor; /* masks text before storage; NULL: chat makes a card-only one.
                                  Not freed by chat_free(). */
    int agent_grace_s;         /* an agent's chats wait this long for a reconnect, default 30 */
    int retention_days;        /* delete closed conversations after N days; 0 = keep */
    /* The language of a conversation whose hello has no lang while its messages do not say
     * which (langid.h detects it among the intents' and KB's languages); NULL = "en". */
    const char *default_lang;
    int is_nps; /* ask "how likely are you to recommend us" after the rating */
    /* Other nodes share the store (PostgreSQL): they change conversations too, and tell this
     * node through chat_remote_*(). An agent's chats are then counted by the node the agent
     * is signed in to. */
    int is_shared_store;
    const char *node_id; /* with is_shared_store: this node's id (store_set_node()) */
};

struct chat *chat_new(const struct chat_settings *settings, struct store *store, struct kb *kb,
                      struct triage *triage, const struct chat_io *io);
void chat_free(struct chat *chat);

/* Connection lifecycle on /chat (customers) and /agent (agents). */
void chat_customer_open(struct chat *chat, uint64_t conn, const struct chat_peer *peer);
void chat_customer_frame(struct chat *chat, uint64_t conn, const char *text, size_t len);
void chat_customer_closed(struct chat *chat, uint64_t conn);
void chat_agent_open(struct chat *chat, uint64_t conn, const struct chat_peer *peer);
void chat_agent_frame(struct chat *chat, uint64_t conn, const char *text, size_t len);
void chat_agent_closed(struct chat *chat, uint64_t conn);

/* Time-driven work: queue positions and waits, auto-assignment, pickup
 * targets, offline tickets, retention. Call about once a second. */
void chat_tick(struct chat *chat, int64_t now_s);

/* Commits the pending store transaction, then delivers the frames queued
 * since the last flush. On a store failure the queued frames are replaced by
 * "error" frames to their senders and nothing is reported as stored.
 * Returns 0 or CD_E*. */
int chat_flush(struct chat *chat);

/* Before conversation is erased from the store while the server runs: if it is open it is
 * closed by the system (its agent is told, it leaves the queue), and every customer
 * connection to it is closed (1000, "erased"), so that nothing more is written for it.
 * Call chat_flush() before the erasure. Returns 0 (also for a conversation not in memory)
 * or CD_E* (nothing changed). */
int chat_end_for_erasure(struct chat *chat, int64_t conversation);

/* Another node stored message seq of conversation (cluster.h): the customers and the agent
 * of that conversation connected to this node get it. */
void chat_remote_message(struct chat *chat, int64_t conversation, int64_t seq);

/* Another node changed conversation's state, agent or queue: this node's queue and agents
 * follow the store. */
void chat_remote_conversation(struct chat *chat, int64_t conversation);

/* Optional: room(io ctx, conn) says how many more frames a replay may queue for conn: what
 * the transport accepts before it would drop the client as a slow reader, less what it keeps
 * for the live frames that follow. With it, the replay of a long conversation on resume is
 * paced to fit: chat.c sends what fits and continues in later chat_flush() calls, so the
 * server should schedule a chat_flush() when the queue of a connection that replays has
 * drained (chat_is_replaying()). Without it (the default) a whole replay is queued at once. */
void chat_set_room(struct chat *chat, int (*room)(void *ctx, uint64_t conn));

/* Returns 1 while connection conn has a paced replay under way (chat_set_room()): a
 * chat_flush() continues it. */
int chat_is_replaying(struct chat *chat, uint64_t conn);

/* Returns 1 if frames are waiting for chat_flush(). */
int chat_has_pending(const struct chat *chat);

/* Counters and gauges for metrics.c (/metrics) and the dashboard. Histogram
 * buckets hold plain (not cumulative) counts; the last bucket is +Inf. */
/* Wait and pickup buckets, seconds: 1 5 10 30 60 120 300 600 1800 3600 +Inf, the bounds of
 * /metrics' caredesk_wait_seconds and caredesk_pickup_seconds (metrics_histogram_set() refuses
 * any other). */
#define CHAT_WAIT_BUCKETS 11
/* Store commit buckets, microseconds: 100 250 500 1000 2500 5000 10000 +Inf. */
#define CHAT_COMMIT_BUCKETS 8
extern const double chat_wait_bounds_s[CHAT_WAIT_BUCKETS - 1];
extern const double chat_commit_bounds_us[CHAT_COMMIT_BUCKETS - 1];

struct chat_metrics {
    /* gauges */
    int64_t n_customer_connections;
    int64_t n_agent_connections;
    int64_t queue_length;
    int64_t longest_wait_s;
    int64_t n_agents_online;
    int64_t n_agents_available;
    /* counters since chat_new() */
    uint64_t n_conversations;                /* started */
    uint64_t n_messages_in;                  /* customer messages stored */
    uint64_t n_agent_messages;               /* agent messages stored */
    uint64_t n_answer, n_clarify, n_handoff; /* bot decisions by action */
    uint64_t n_bad_frames;                   /* error frames sent for bad input */
    uint64_t n_store_errors;                 /* failed commits */
    uint64_t n_picked, n_picked_within_target;
    /* conversations created since chat_new() with a customer message, and of those the ones
     * handed off: the deflection of /metrics, defined as in store_stats() */
    uint64_t n_conversations_engaged, n_conversations_escalated;
    uint64_t n_kb_index_reads; /* kb_index_reads() of the KB */
    double oos_share;          /* the traffic's out-of-scope share, measured (triage.h) */
    int is_oos_share_kept;     /* the triage measures it (P(in scope) fitted, not fixed) */
    int is_oos_share_measured; /* ... or the assumed one still (too few questions yet) */
    int n_oos_share_questions; /* the questions it is measured on */
    uint64_t n_agent_messages_delivered; /* agent_message frames to customer connections */
    /* Waits since the first handoff: until an agent took the conversation ... */
    uint64_t wait_buckets[CHAT_WAIT_BUCKETS];
    double wait_sum_s;
    /* ... and until that agent's first message. */
    uint64_t pickup_buckets[CHAT_WAIT_BUCKETS];
    double pickup_sum_s;
    uint64_t commit_buckets[CHAT_COMMIT_BUCKETS];
    double commit_sum_us;
};

void chat_metrics_get(const struct chat *chat, struct chat_metrics *out);

#endif
