/* store_outbox: the store's durable outbox of webhook deliveries, and the observer through
 * which the store reports its changes (webhook.h turns them into events).
 *
 * DESIGN. An event is a row written in the same transaction as the change it reports: the
 * observer runs inside each conversation and message write, and its store_outbox_add() joins
 * the open transaction (the group commit, or the write's own). A crash therefore never loses
 * an event whose change committed, and never keeps one whose change did not. Another thread
 * (the delivery thread, with a store of its own) reads due rows and records the outcome of
 * each attempt. Rows are kept per endpoint, so each endpoint's deliveries succeed, retry and
 * fail on their own. Nothing here is SQLite's (store.h's rule). */
#ifndef CD_STORE_OUTBOX_H
#define CD_STORE_OUTBOX_H

#include <stdint.h>

#include "store.h"

/* ---- the observer ---- */

enum store_change_kind {
    STORE_CHANGE_CONVERSATION_CREATED = 1,
    STORE_CHANGE_CONVERSATION_UPDATED, /* before and after given */
    STORE_CHANGE_CONVERSATION_CLAIMED, /* after given; agent_id is the claimer */
    STORE_CHANGE_MESSAGE_APPENDED,     /* conversation (after) and message given */
};

struct store_change {
    int kind;                                /* enum store_change_kind */
    const struct store_conversation *before; /* UPDATED: the row before the write */
    const struct store_conversation *after;  /* the row after the write */
    const struct store_message *message;     /* MESSAGE_APPENDED */
};

/* Called inside a write, after the change, in its transaction. Returns 0, or a CD_E* code
 * that the write then returns (so that the caller's unit of work is undone). */
typedef int (*store_observer_fn)(void *ctx, struct store *s, const struct store_change *change);

/* Sets (fn NULL: removes) the observer of s. Without one the writes cost nothing more; with
 * one an update reads the conversation before and after it. */
void store_set_observer(struct store *s, store_observer_fn fn, void *ctx);

/* ---- the outbox ---- */

enum store_outbox_status {
    STORE_OUTBOX_PENDING = 0,
    STORE_OUTBOX_DELIVERED,
    STORE_OUTBOX_FAILED,
};

#define STORE_DELIVERY_ID_LEN 36 /* "dlv_" and 32 hex digits */

struct store_outbox_item {
    int64_t id;                               /* row id, set by store_outbox_add() */
    char delivery[STORE_DELIVERY_ID_LEN + 1]; /* the same on every attempt */
    char event[48];                           /* "conversation.created" ... */
    char endpoint[512];                       /* the URL it goes to */
    int64_t conversation;                     /* 0: none (article events) */
    char *payload;                            /* the JSON body, malloc'd by the getters */
    int status;                               /* enum store_outbox_status */
    int attempts;
    int64_t created_ms;
    int64_t next_attempt_ms;
    int64_t deadline_ms; /* retries stop after it: failed */
    int last_http;       /* 0: no response (connection error, timeout) */
    char last_error[160];
    int64_t delivered_ms;
};

/* Makes a new delivery id ("dlv_" + 32 random hex digits) into out. Returns 0 or CD_EIO. */
int store_outbox_new_delivery_id(char out[STORE_DELIVERY_ID_LEN + 1]);

/* Adds a pending delivery (item->delivery, event, endpoint, conversation, payload,
 * created_ms, deadline_ms; next attempt now) in the open transaction, or in one of its own.
 * Sets item->id. Returns 0 or CD_E*. */
int store_outbox_add(struct store *s, struct store_outbox_item *item);

/* The pending deliveries due at now_ms, oldest first, at most max, into items (caller's
 * array): for each endpoint and conversation only the oldest pending one, so that a
 * conversation's events arrive in order. Free with store_outbox_clear(). Returns 0 or CD_E*. */
int store_outbox_due(struct store *s, int64_t now_ms, struct store_outbox_item *items, int max,
                     int *n_out);

/* The deliveries a delivery thread is to attempt now: those store_outbox_due() gives, taken
 * for this thread. On PostgreSQL, where every node runs a delivery thread, each row taken is
 * held until now_ms + hold_ms (its next attempt moves there; store_outbox_record() sets the
 * real one), so no other node takes it meanwhile, and one that died with it lets another
 * retry it after that; rows another node holds are skipped, not waited for. On SQLite, one
 * node, nothing is held. Oldest first. Returns 0 or CD_E*. */
int store_outbox_claim(struct store *s, int64_t now_ms, int64_t hold_ms,
                       struct store_outbox_item *items, int max, int *n_out);

/* Records an attempt on delivery id: its new status, attempt count, next attempt time (for
 * a pending one), the HTTP status (0: none) and an error text (may be NULL). */
int store_outbox_record(struct store *s, int64_t id, int status, int attempts,
                        int64_t next_attempt_ms, int last_http, const char *error, int64_t now_ms);

/* The most recent deliveries, newest first: status -1 for any, else only that status; at most
 * max. Free with store_outbox_clear(). Returns 0 or CD_E*. */
int store_outbox_list(struct store *s, int status, struct store_outbox_item *items, int max,
                      int *n_out);

/* Fetches one delivery by row id. Returns 0, CD_ENOTFOUND or CD_E*. */
int store_outbox_get(struct store *s, int64_t id, struct store_outbox_item *out);

/* Makes a delivery pending again, due now, with a new deadline (same delivery id: a
 * receiver that saw it already can tell). Returns 0, CD_ENOTFOUND or CD_E*. */
int store_outbox_redeliver(struct store *s, int64_t id, int64_t now_ms, int64_t deadline_ms);

/* Counts of deliveries by status, for /metrics and the dashboard. */
int store_outbox_counts(struct store *s, int64_t *pending, int64_t *delivered, int64_t *failed);

void store_outbox_clear(struct store_outbox_item *items, int n);

/* store.c: the outbox's prepared statements (freed with the store). */
void store_outbox_free(struct store *s);

#endif
