/* chat_int: what chat.c, chat_customer.c and chat_agent.c share and nothing else sees: the
 * state of connections and conversations, struct chat, and the helpers each protocol uses to
 * queue frames, run a unit of work and store messages. Include only from src/chat*.c. */
#ifndef CD_CHAT_INT_H
#define CD_CHAT_INT_H

#include "chat.h"

#include "auth.h"
#include "cd.h"
#include "htable.h"
#include "intents.h"
#include "kb.h"
#include "langid.h"
#include "queue.h"
#include "redact.h"
#include "store.h"
#include "text.h"
#include "triage.h"

#include <jansson.h>

#define CLIENT_ID_MAX   STORE_CLIENT_ID_MAX
#define AGENT_ID_MAX    40 /* an agent message id, under the "agent:N:" prefix */
#define NAME_MAX_BYTES  128
#define PAGE_MAX_BYTES  2048
#define NOTE_MAX_BYTES  2000
#define REPLAY_BATCH    500
#define TRANSCRIPT_MAX  1000
#define HISTORY_MAX     10

/* ---- state ---- */

enum conn_kind { CONN_CUSTOMER, CONN_AGENT };

struct conv;

struct conn {
    struct htable_node node; /* key: connection id */
    enum conn_kind kind;
    char address[64];
    struct conv *conv;         /* customer: the conversation, once started */
    struct conn *next_in_conv; /* customer: other connections of conv */
    int is_authed;             /* agent */
    struct auth_user agent;    /* agent */
    struct conn *prev_agent, *next_agent;
    struct conn *prev_replaying, *next_replaying; /* chat->replaying, while is_replaying */
    int has_pending;      /* frames queued in this turn */
    int n_pending;        /* how many */
    int64_t replay_after; /* replaying: the last seq sent so far */
    int64_t delivered_floor; /* customer: every seq up to it was sent (hello and replay) */
    int is_replaying;     /* stored messages still to send after resume */
    int is_resyncing;     /* a welcome or replay frames wait in this turn */
    int is_closing;       /* a close is queued: later frames are ignored */
};

struct conv {
    struct htable_node node; /* key: conversation id */
    struct store_conversation rec;
    /* With a shared store: the state and agent the store had when this node last read or
     * wrote rec; a save expects them (store_conversation_update_if()). */
    int synced_state;
    int64_t synced_agent;
    struct triage_context tctx;
    char last_intent[INTENT_NAME_MAX];
    uint64_t last_text_key;
    struct conn *conns;
    int n_conns;
    char agent_name[64];
    int last_position, last_eta; /* last queued status sent */
    char choices[TRIAGE_MAX_CANDIDATES][INTENT_NAME_MAX];
    int n_choices;
    char collect_field[64];
    char collect_intent[INTENT_NAME_MAX];
    char collect_queue[32];
    int collect_priority;
    int n_collect_tries;
    int is_touched;
    struct conv *next_touched;
    struct langid_probe *lang_probe; /* hello had no lang: detecting it (langid.h) */
    int is_ahead; /* an answer of it is in flight (chat_answers_settle()) */
    int has_customer_message;        /* 1, 0, or -1: not known yet (loaded from the store) */
    int has_agent_message;           /* the agent who has it has written (pickup time taken) */
};

/* A frame to send, or (text NULL) a close to make once the frames queued
 * before it are out: an error frame must reach the client before the close
 * that follows it. */
struct pending_frame {
    uint64_t conn;
    char *text;
    size_t len;
    int close_code;
    const char *close_reason; /* a static string */
};

/* A customer's question and the bot's answer sent without waiting
 * (store_message_pair_send()), until chat_answers_settle() reads whether they were stored; if not,
 * what the conversation and the counters were before, the frames it queued, and what to
 * take again the ordinary way. */
#define CHAT_AHEAD_MAX 16
struct chat_ahead {
    struct conv *c;
    int ticket;
    uint64_t conn;
    char client_id[STORE_CLIENT_ID_MAX + 1];
    char *text; /* masked */
    char choice[INTENT_NAME_MAX];
    int has_choice;
    int frame_start, frame_end;
    int state;
    char intent[sizeof ((struct store_conversation *)0)->intent];
    double confidence;
    int64_t last_seq;
    struct triage_context tctx;
    uint64_t last_text_key;
    char last_intent[INTENT_NAME_MAX];
    char choices[TRIAGE_MAX_CANDIDATES][INTENT_NAME_MAX];
    int n_choices;
    int has_customer_message, synced_state;
    int64_t synced_agent;
    uint64_t n_messages_in, n_answer, n_engaged, n_escalated; /* what it added */
};

struct pending_learn {
    char *question;
    char article[KB_ID_MAX];
};

struct chat {
    struct chat_settings settings;
    int64_t started_s; /* chat_new() time: the deflection counts cover conversations since */
    char public_url[512];
    struct store *store;
    struct kb *kb;
    struct triage *triage;
    /* Detects the language of conversations whose hello had none: built on first use from
     * the intents (rebuilt when they are swapped) and the KB. */
    struct langid *langid;
    unsigned langid_generation; /* triage_intents_generation() langid was built for */
    char default_lang[8];
    struct chat_io io;
    int (*room)(void *ctx, uint64_t conn); /* chat_set_room(), or NULL */
    struct redactor *redactor;
    int owns_redactor;
    struct queue *queue;
    struct auth_throttle *throttle;
    struct htable conns;
    struct htable convs;
    struct conn *agents; /* authenticated agent connections */
    struct pending_frame *frames;
    int n_frames, cap_frames;
    struct pending_learn *learns;
    int n_learns, cap_learns;
    struct conv *touched;
    int unit_frames; /* frames queued before the current unit of work */
    /* Conversations whose last_seq the current unit moved, with the value
     * before, so that an undone unit puts them back (seq hints must never
     * run ahead of the store). */
    struct conv *unit_convs[4];
    int64_t unit_last_seq[4];
    int n_unit_convs;
    /* The current unit's customer message sent ahead (chat_send_message()), until a write
     * reads whether it was stored (chat_sent_message()). */
    struct store_message *ahead;
    /* Answers in flight (chat_answers_settle()); may_batch: the message being decided may join
     * them (set around its decision, cleared for any action but an answer), and
     * batch_ticket its ticket once it did. */
    struct chat_ahead aheads[CHAT_AHEAD_MAX];
    int n_aheads;
    int may_batch, batch_ticket;
    struct conn *replaying; /* customer connections with a paced replay under way */
    int is_queue_dirty; /* the waiting list or agents changed: agents get a new view */
    int is_eta_dirty;   /* time passed: customers' estimates may have moved */
    int64_t last_retention_s;
    int64_t last_heartbeat_s; /* several nodes: chat_remote_tick() */
    struct chat_metrics m;
};

/* ---- chat.c: frames out, units of work, conversations, storing, queue status, decisions ---- */

void chat_touch(struct chat *chat, struct conv *c);
struct conn *chat_conn_get(struct chat *chat, uint64_t id);
void chat_emit_close(struct chat *chat, uint64_t conn_id, int code, const char *reason);
void chat_emit(struct chat *chat, uint64_t conn_id, json_t *obj);
void chat_emit_customer(struct chat *chat, struct conv *c, json_t *obj);
void chat_emit_customer_stored_text(struct chat *chat, struct conv *c, const char *text);
void chat_emit_customer_stored(struct chat *chat, struct conv *c, json_t *obj);
void chat_emit_agent(struct chat *chat, int64_t agent_id, json_t *obj);
void chat_emit_error(struct chat *chat, uint64_t conn_id, const char *code, const char *message,
                     const char *reply_to, int64_t conversation);
/* The "unknown_type" error for a frame whose type neither protocol knows. */
void chat_emit_unknown_type(struct chat *chat, uint64_t conn_id, const char *type);
int chat_unit_begin(struct chat *chat);
void chat_unit_end(struct chat *chat);
void chat_unit_undo(struct chat *chat);
struct conv *chat_conv_cached(struct chat *chat, int64_t id);
struct conv *chat_conv_adopt(struct chat *chat, struct store_conversation *rec);
void chat_agent_name_of(struct chat *chat, int64_t agent_id, char *out, size_t cap);
void chat_queue_item_of(struct conv *c, struct queue_item *it);
int chat_field_str(struct chat *chat, uint64_t conn, json_t *o, const char *key, size_t min,
                   size_t max, const char **out, const char *reply_to);
int chat_need_str(struct chat *chat, uint64_t conn, json_t *o, const char *key, size_t min,
                  size_t max, const char **out, const char *reply_to);
int chat_need_int(struct chat *chat, uint64_t conn, json_t *o, const char *key, int64_t min,
                  int64_t max, int64_t *out);
int chat_append_message(struct chat *chat, struct conv *c, int sender, const char *client_id,
                        const char *reply_to, const char *text, const char *meta, int64_t agent_id,
                        int64_t *seq);
/* Sends the customer's message m ahead (store_message_send()) at the seq this node expects
 * for c, as the current unit's; m->seq is that seq. The next append of the unit reads
 * whether it was stored, and fails with CD_EBUSY when it was not. Returns 0, 1 (the store
 * does not send ahead: nothing done) or CD_E*. */
int chat_send_message(struct chat *chat, struct conv *c, const char *client_id, const char *text,
                      struct store_message *m);
/* Reads whether the answers in flight were stored; the conversations of those that were
 * not are put back as they were and their messages taken again the ordinary way. Every
 * entry point that reads or changes conversations calls it first (and chat_flush(), before
 * the commit). */
void chat_answers_settle(struct chat *chat);
/* The fields of c an answer may change, kept in a (is_back 0) or put back from a into c
 * (is_back 1): one list for both ways. */
void chat_ahead_copy(struct chat_ahead *a, struct conv *c, int is_back);
/* Takes the customer's message (masked, taken over) on connection conn of conversation c:
 * stored, and decided by the bot or passed on to its agent. may_batch: its answer may go
 * without waiting (chat_answers_settle()). */
void chat_take_message(struct chat *chat, uint64_t conn, struct conv *c, const char *client_id,
                       char *masked, const char *choice, int may_batch);
/* Reads whether the message sent ahead was stored: 0 or CD_EBUSY (not stored) or CD_E*. */
int chat_sent_message(struct chat *chat);
/* Appends the bot's reply to reply_to (NULL: none) and, when next is not NULL, writes
 * next's state, intent and confidence with it (store_message_append_triage()); sets *seq. */
int chat_append_reply(struct chat *chat, struct conv *c, const char *reply_to, const char *text,
                      const char *meta, const struct store_conversation *next, int64_t *seq);
int chat_append_event(struct chat *chat, struct conv *c, const char *event, const char *text,
                      json_t *extra, int64_t *seq);
int chat_save_conv(struct chat *chat, struct conv *c);
/* Stores c's record, which the caller changed from old (a copy of it taken before), as one
 * unit of work for the frame connection conn sent. Returns 0, or the CD_E* code with the unit
 * undone, c->rec equal to old again (the strings the caller put in are still the caller's to
 * free) and "store_failed" sent to conn. */
int chat_save_conv_change(struct chat *chat, struct conv *c, const struct store_conversation *old,
                          uint64_t conn);
/* Stores a move of c in or into the queue, made on c->rec by the caller: the event (as
 * chat_append_event() with event, text and data, stolen), then the record. On failure c's
 * queue placement (state, queue, priority, queued_s, agent_id, is_offline) is put back as it
 * was in old, and the CD_E* code returned. */
int chat_store_queue_move(struct chat *chat, struct conv *c, const struct store_conversation *old,
                          const char *event, const char *text, json_t *data, int64_t *seq);
json_t *chat_queued_frame(struct chat *chat, struct conv *c, int64_t seq);
json_t *chat_queue_items_json(struct chat *chat);
int chat_decide(struct chat *chat, struct conv *c, const char *text, size_t n,
                struct triage_decision *d);
void chat_update_context(struct conv *c, const struct triage_decision *d);
int chat_enqueue(struct chat *chat, struct conv *c, const char *queue_name, int priority);

/* Whether c has a customer message, asked of the store once for a conversation loaded from
 * it (a reconnect, a restart). */
int chat_conv_has_customer_message(struct chat *chat, struct conv *c);

/* The deflection counts of /metrics, with the definition of store_stats() (GET /api/stats):
 * per conversation created since chat_new() with at least one customer message, "engaged";
 * of those, the ones ever handed off, "escalated". Called after c's first customer message
 * is stored (is_first_message) and after its first handoff, so that however often the
 * customer reconnects a conversation counts once. */
void chat_count_outcome(struct chat *chat, struct conv *c, int is_first_message);
/* Tells agent that conversation was closed by by ("customer", "agent", "system"): a
 * customer_left frame unless the agent closed it, then closed. */
void chat_tell_agent_closed(struct chat *chat, int64_t agent, int64_t conversation,
                            const char *by);
int chat_close_conversation(struct chat *chat, struct conv *c, const char *by,
                            const char *disposition, const char *note);
/* The frame text (len bytes) of conn, when conn is an open connection of kind, parsed and
 * checked: size cap, UTF-8, a JSON object with a string "type". Returns the object (caller
 * decrefs), the connection in *k and the frame's type in *type; or NULL (no open connection
 * of kind, or an error emitted to it). */
json_t *chat_conn_frame(struct chat *chat, uint64_t conn, enum conn_kind kind, const char *text,
                        size_t len, struct conn **k, const char **type);

/* conn has closed: settles the answers in flight (chat_answers_settle()) and returns the
 * connection when it is one of kind, else NULL (nothing of it to undo). */
struct conn *chat_conn_closed(struct chat *chat, uint64_t conn, enum conn_kind kind);

/* A type of frame a connection sends, and what handles it. */
struct chat_frame_handler {
    const char *type;
    void (*handle)(struct chat *chat, struct conn *k, json_t *o);
    int needs_conversation; /* a customer's: refused before the conversation started */
};

/* The handler of type among the n in handlers, or NULL. */
const struct chat_frame_handler *chat_frame_handler_find(const struct chat_frame_handler *handlers,
                                                         size_t n, const char *type);
struct conn *chat_conn_new(struct chat *chat, uint64_t id, enum conn_kind kind,
                           const struct chat_peer *peer);
void chat_detach(struct chat *chat, struct conn *k);
/* k's paced replay begins (after replay_after) or ends: it is on chat->replaying meanwhile. */
void chat_replay_begin(struct chat *chat, struct conn *k, int64_t replay_after);
void chat_replay_end(struct chat *chat, struct conn *k);
void chat_drop_conn(struct chat *chat, struct conn *k);

int chat_conv_is_open(const struct conv *c);
/* Notes that c->rec's state and agent are the store's now. */
void chat_conv_synced(struct conv *c);
/* Puts cached c, queued in the store, in this node's queue with its preview. */
void chat_conv_enqueue(struct chat *chat, struct conv *c);
/* 1 if agent_id is signed in on this node. */
int chat_agent_here(const struct chat *chat, int64_t agent_id);
/* Caches a copy of rec (its strings duplicated); NULL if out of memory. */
struct conv *chat_conv_adopt_copy(struct chat *chat, const struct store_conversation *rec);
/* Conversation id, cached or read from the store and cached; NULL if there is none. */
struct conv *chat_conv_load(struct chat *chat, int64_t id);
/* Makes cached c the store's rec (taken over): the queue and the agents' chat counts follow
 * it (with a shared store, only this node's agents are counted). */
void chat_conv_refresh(struct chat *chat, struct conv *c, struct store_conversation *rec);
/* Forgets c (its memory only; the store keeps it). */
void chat_conv_evict(struct chat *chat, struct conv *c);
/* Sets the agents' preview of queued c to the customer's last stored words. */
void chat_preview_from_store(struct chat *chat, const struct conv *c);

/* ---- chat_remote.c ---- */

/* Several nodes: counts (and loads) every chat agent_id has, for an agent new on this node. */
void chat_remote_adopt_agent(struct chat *chat, int64_t agent_id);

/* Several nodes, from chat_tick(): the heartbeat of this node's agents, and the chats of
 * agents whose node died put back in the queue. */
void chat_remote_tick(struct chat *chat, int64_t now_s);

/* ---- chat_customer.c ---- */

/* The frame a customer gets for stored message m of c (replays, other nodes' messages). */
json_t *chat_message_frame(struct chat *chat, struct conv *c, const struct store_message *m);

void chat_replay_step(struct chat *chat, struct conn *k);

/* ---- chat_team.c ---- */

/* The nps_request frame (new reference). */
json_t *chat_nps_request(void);
void chat_customer_nps(struct chat *chat, struct conn *k, json_t *o);
/* status_update on c (an agent's open conversation, checked by the caller). */
void chat_agent_status_update(struct chat *chat, struct conn *k, struct conv *c, json_t *o);

/* ---- chat_agent.c ---- */

int chat_assign(struct chat *chat, struct conv *c, int64_t agent_id);
int chat_requeue(struct chat *chat, struct conv *c, const char *queue_arg, const char *why);

/* The stored client id of agent message client_id from k's agent, into out (cap at least
 * CLIENT_ID_MAX + 1): "agent:ID:client_id". Agent ids share a conversation's id space with
 * the customer's, and "agent:ID:" is a prefix customer ids may not use, so the two never
 * collide; ids are at most AGENT_ID_MAX, so the prefix always fits. */
void chat_agent_scoped_id(const struct conn *k, const char *client_id, char *out, size_t cap);

/* The ack of agent message client_id, stored as seq of conversation c: {"type":"ack",
 * "conversation","reply_to","seq"} (a new reference, NULL when out of memory), for the
 * caller to add to and emit. */
json_t *chat_agent_ack(const struct conv *c, const char *client_id, int64_t seq);

/* Counts a wait of waited_s seconds into a CHAT_WAIT_BUCKETS histogram and its sum. */
void chat_wait_observe(uint64_t *buckets, double *sum_s, int64_t waited_s);

/* Ends the current unit of work: kept when rc is 0; otherwise undone, counted as a store
 * error and answered with one "store_failed" error to conn (reply_to and conversation as for
 * chat_emit_error()). Returns rc. */
int chat_unit_finish(struct chat *chat, int rc, uint64_t conn, const char *reply_to,
                     int64_t conversation);

#endif
