/* queue: the handoff queues: who waits in which skill queue and in what order,
 * which agents are online with what capacity, who gets the next chat, and how
 * long a customer should expect to wait.
 *
 * DESIGN. Pure in-memory bookkeeping with no I/O, driven by chat.c, which
 * persists every change through store.h (and rebuilds the queue from the
 * store after a restart). Order within a queue: priority (1 = most urgent
 * first, as in intents.h), then waiting time (longest first), then arrival. A claim removes the
 * item, so of two claims for one chat exactly one succeeds. Times are wall-clock seconds passed in
 * by the caller, so tests control the clock. */
#ifndef CD_QUEUE_H
#define CD_QUEUE_H

#include <stdint.h>

#define QUEUE_NAME_MAX    32
#define QUEUE_PREVIEW_MAX 120
/* The defaults, defined here once: config.c's table and queue_settings_defaults() use them. */
#define QUEUE_DEFAULT_NAMES           "general,billing,orders,technical,accounts"
#define QUEUE_DEFAULT_PICKUP_TARGET_S 60
#define QUEUE_DEFAULT_AGENT_CAPACITY  3

struct queue;

struct queue_settings {
    const char *names;     /* comma-separated queue names; NULL = QUEUE_DEFAULT_NAMES */
    int agent_capacity;    /* default QUEUE_DEFAULT_AGENT_CAPACITY */
    int pickup_target_s;   /* default QUEUE_DEFAULT_PICKUP_TARGET_S */
    int business_open_min; /* minutes after local midnight; open == close: always open */
    int business_close_min;
    int business_days_mask; /* bit 0 = Sunday ... bit 6 = Saturday; 0 = every day */
};

struct queue_item {
    int64_t conversation;
    char queue[QUEUE_NAME_MAX];
    int priority;
    int64_t enqueued_s;
    char intent[64];
    char preview[QUEUE_PREVIEW_MAX + 1]; /* start of the last customer message */
    char customer[64];                   /* customer name or "" */
    int is_offline;
};

struct queue_agent {
    int64_t id;
    char name[64];
    char skills[256]; /* comma-separated; "" = every queue */
    int capacity;
    int n_active;      /* chats assigned now */
    int is_available;  /* wants chats */
    int n_connections; /* open agent connections; 0 = offline */
    int64_t offline_since_s;
};

/* Fills the zero fields of s that have a default (agent_capacity, pickup_target_s) with it;
 * names stays NULL for QUEUE_DEFAULT_NAMES. queue_new() and chat_new() both use it. */
void queue_settings_defaults(struct queue_settings *s);

/* NULL settings = defaults. Returns NULL on a bad queue list or no memory. */
struct queue *queue_new(const struct queue_settings *settings);
void queue_free(struct queue *q);

/* 1 if name is one of the configured queues. */
int queue_exists(const struct queue *q, const char *name);
/* The configured queue names, comma-separated. */
const char *queue_names(const struct queue *q);

/* ---- waiting chats ---- */

/* Adds a waiting chat (copied); priority 1 is the most urgent, 5 the least
 * (0 = 3). An unknown queue name becomes "general" (or
 * the first queue). Returns 0, CD_EEXIST or CD_ENOMEM. */
int queue_push(struct queue *q, const struct queue_item *item);
/* Removes a waiting chat. Returns 0 or CD_ENOTFOUND. */
int queue_remove(struct queue *q, int64_t conversation);
/* The waiting item, valid until the next change to q, or NULL. */
const struct queue_item *queue_find(const struct queue *q, int64_t conversation);
/* Updates the preview of a waiting chat (the customer wrote again). */
void queue_set_preview(struct queue *q, int64_t conversation, const char *text);
/* Marks a waiting chat as an offline ticket (or not any more). */
void queue_set_offline(struct queue *q, int64_t conversation, int is_offline);
/* 1-based position within its queue, or CD_ENOTFOUND. */
int queue_position(const struct queue *q, int64_t conversation);
/* Number of waiting chats (all queues). */
int queue_length(const struct queue *q);
/* The i-th waiting chat over all queues in service order (priority, then
 * wait), or NULL past the end. Valid until the next change to q. */
const struct queue_item *queue_at(const struct queue *q, int i);
/* Waiting time of the longest-waiting chat, 0 if none. */
int64_t queue_longest_wait_s(const struct queue *q, int64_t now_s);

/* ---- agents ---- */

/* An agent connection opened: registers the agent (or counts one more
 * connection). capacity 0 = the default. Returns 0 or CD_ENOMEM. */
int queue_agent_online(struct queue *q, int64_t agent_id, const char *name, const char *skills,
                       int capacity);
/* An agent connection closed; when the last one closes the agent is offline
 * since now_s (its chats stay assigned until queue_agents_gone says so). */
void queue_agent_offline(struct queue *q, int64_t agent_id, int64_t now_s);
int queue_agent_set_available(struct queue *q, int64_t agent_id, int is_available);
/* The agent, valid until the next change to q, or NULL. */
const struct queue_agent *queue_agent_get(const struct queue *q, int64_t agent_id);
/* Counts a chat as assigned to agent_id (e.g. rebuilt after a restart),
 * even if the agent is not online (it is registered offline). */
int queue_agent_add_chat(struct queue *q, int64_t agent_id, const char *name);
/* A chat of agent_id ended or was transferred: one less active chat. */
void queue_agent_release(struct queue *q, int64_t agent_id);
/* Finds one agent offline for at least grace_s seconds with chats still
 * assigned, and forgets it (its chats must be requeued by the caller).
 * Returns its id, or 0 if none. */
int64_t queue_agents_gone(struct queue *q, int64_t now_s, int grace_s);
/* Number of agents online and available with the skill for queue name (NULL:
 * any), and how many have room for one more chat. */
int queue_agents_available(const struct queue *q, const char *name, int *n_with_room);

/* ---- assignment ---- */

/* Agent agent_id takes the waiting chat. Returns 0; CD_ENOTFOUND if the chat
 * is not waiting (another agent took it first, or it never was); CD_EBUSY if
 * the agent is at capacity; CD_EPERM if the agent is unknown. On success the
 * wait (now_s - enqueued_s) is recorded for estimates and pickup targets. */
int queue_claim(struct queue *q, int64_t conversation, int64_t agent_id, int64_t now_s);

/* Auto-assignment: the first waiting chat (service order) for which some
 * online, available agent with the skill has room, and of those agents the
 * least busy one. Returns 1 and fills *conversation and *agent_id, or 0.
 * Does not claim: call queue_claim() with the pair. */
int queue_next_assignment(const struct queue *q, int64_t *conversation, int64_t *agent_id);

/* ---- estimates, targets, business hours ---- */

/* Estimated seconds until an agent picks this waiting chat up: from recent
 * pickup waits and the agents available for its queue; -1 when there is no
 * basis (no agent available). CD_ENOTFOUND if not waiting. */
int queue_estimate_wait_s(const struct queue *q, int64_t conversation, int64_t now_s);

/* Pickups so far (since queue_new) and how many within the pickup target. */
void queue_pickup_counts(const struct queue *q, int64_t *n_picked, int64_t *n_within_target);
int queue_pickup_target_s(const struct queue *q);

/* 1 if now_s is within business hours (local time). */
int queue_is_open(const struct queue *q, int64_t now_s);
/* The next time business hours begin at or after now_s (now_s if open). */
int64_t queue_next_open_s(const struct queue *q, int64_t now_s);

#endif
