/* cluster: what the other nodes sharing one PostgreSQL database changed, delivered to this one.
 *
 * DESIGN. The database is the only channel between nodes; there is no node-to-node protocol.
 * Two commit-ordered streams carry what the other nodes did, each row naming the node whose
 * store connection wrote it (store_set_node()): the messages table itself (a stored message,
 * by its id), and node_events, rows written in the transaction of the change: a change of a
 * conversation's state, agent or queue (by a trigger), and a KB change (kb.h's journal). Each
 * node has one thread with one connection of its own that LISTENs on channel caredesk_events:
 * the NOTIFY carries no payload and is only a doorbell (the store sends one per group commit
 * that stored messages; the trigger one per changed conversation; PostgreSQL merges identical
 * notifications of one transaction). On the doorbell, and every CLUSTER_POLL_MS without one (a
 * notification lost with a dropped connection), the thread reads both streams past the
 * highest id it has seen, keeps the other nodes' events and wakes the event loop, which takes
 * them with cluster_take().
 *
 * Ids are handed out when a row is written and become visible when its transaction commits, so
 * a later id can be seen before an earlier one. The thread remembers the ids it skipped over
 * and asks for them again (every 20 ms while any is missing) for up to CLUSTER_GAP_MS (a
 * transaction still committing) before it gives them up (one that rolled back never comes).
 * An event is therefore delivered once, and at most CLUSTER_GAP_MS late.
 *
 * Real-time delivery never waits behind anything else: the thread does nothing but this. The
 * thread also deletes conversation events older than CLUSTER_KEEP_S (every node does; the
 * deletes are idempotent); KB events stay: they are the journal a starting node replays. */
#ifndef CD_CLUSTER_H
#define CD_CLUSTER_H

#include <stdint.h>

#define CLUSTER_POLL_MS 250
#define CLUSTER_GAP_MS  5000
#define CLUSTER_KEEP_S  600
#define CLUSTER_NODE_ID 17 /* bytes of a node id, with its NUL */

struct cluster;

enum cluster_kind {
    CLUSTER_MESSAGE = 'm',      /* a message was stored: conversation, seq */
    CLUSTER_CONVERSATION = 'c', /* a conversation's state, agent or queue changed */
    CLUSTER_KB = 'k',           /* a KB change: payload is kb.h's journaled op */
};

struct cluster_event {
    int64_t id;
    int64_t conversation;
    int64_t seq;   /* CLUSTER_MESSAGE */
    int kind;      /* enum cluster_kind */
    char *payload; /* CLUSTER_KB: malloc'd, the taker frees it */
};

/* A new random node id (hex) in out[CLUSTER_NODE_ID]. */
void cluster_new_node_id(char out[CLUSTER_NODE_ID]);

/* Starts the listening thread on the database at uri for node node_id. wake(wake_ctx) is
 * called from that thread whenever events wait (it must be thread-safe: the server's
 * server_wake()). Returns NULL with *err (malloc'd) on failure. */
struct cluster *cluster_start(const char *uri, const char *node_id, void (*wake)(void *ctx),
                              void *wake_ctx, char **err);

/* The last event id when the thread started: events up to it are this node's to read from
 * the store (store_kb_journal_each()), later ones come through cluster_take(). */
int64_t cluster_start_id(const struct cluster *cl);

/* Moves up to max waiting events into out, oldest first; returns how many. Any thread. */
int cluster_take(struct cluster *cl, struct cluster_event *out, int max);

/* Stops the thread and closes its connection. NULL is fine. */
void cluster_stop(struct cluster *cl);

#endif
