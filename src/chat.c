/* chat: the conversation state machine and the customer and agent websocket
 * protocols (docs/protocol.md), with no network: frames in, frames out.
 *
 * DESIGN. Each client frame is one unit of work: it is validated completely
 * before anything changes, its store writes are made all-or-nothing with a
 * store mark inside the loop turn's group transaction, and the frames it
 * causes are queued, not sent. chat_flush() first settles the queue (auto-
 * assignment, position updates, the agents' queue view), then commits the
 * group and only then hands the queued frames to the transport: a client is
 * never told about a message a crash could lose. If the commit fails, every
 * connection that had frames waiting gets one "store_failed" error instead
 * and the conversations touched in the turn are reloaded from the store, so
 * memory never claims more than the database holds.
 *
 * Conversations live in memory while a customer is connected or while they
 * are queued or with an agent (a restart rebuilds those from the store);
 * everything else is read from the store on demand. */
#include "chat.h"

#include "auth.h"
#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "queue.h"
#include "redact.h"
#include "store.h"
#include "triage.h"

#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double chat_wait_bounds_s[CHAT_WAIT_BUCKETS - 1] = {5, 15, 30, 60, 120, 300, 600};
const double chat_commit_bounds_us[CHAT_COMMIT_BUCKETS - 1] = {100,  250,  500,  1000,
                                                               2500, 5000, 10000};

#define CLIENT_ID_MAX   STORE_CLIENT_ID_MAX
#define AGENT_ID_MAX    40 /* an agent message id, under the "agent:N:" prefix */
#define NAME_MAX_BYTES  128
#define EMAIL_MAX_BYTES 254
#define PAGE_MAX_BYTES  2048
#define NOTE_MAX_BYTES  2000
#define REPLAY_BATCH    500
#define TRANSCRIPT_MAX  1000
#define HISTORY_MAX     10

/* ---- a small intrusive hash table keyed by 64-bit ids ---- */

struct hnode {
    uint64_t key;
    struct hnode *next;
};

struct htable {
    struct hnode **buckets;
    size_t n_buckets; /* power of two */
    size_t n;
};

static size_t h_index(const struct htable *t, uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (t->n_buckets - 1);
}

static struct hnode *h_get(const struct htable *t, uint64_t key)
{
    if (!t->n_buckets)
        return NULL;
    for (struct hnode *n = t->buckets[h_index(t, key)]; n; n = n->next)
        if (n->key == key)
            return n;
    return NULL;
}

static int h_put(struct htable *t, struct hnode *node)
{
    if (t->n + 1 > t->n_buckets) {
        size_t nb = t->n_buckets ? t->n_buckets * 2 : 64;
        struct hnode **b = calloc(nb, sizeof *b);
        if (!b)
            return CD_ENOMEM;
        struct htable nt = {b, nb, t->n};
        for (size_t i = 0; i < t->n_buckets; i++) {
            struct hnode *n = t->buckets[i];
            while (n) {
                struct hnode *next = n->next;
                size_t j = h_index(&nt, n->key);
                n->next = b[j];
                b[j] = n;
                n = next;
            }
        }
        free(t->buckets);
        *t = nt;
    }
    size_t i = h_index(t, node->key);
    node->next = t->buckets[i];
    t->buckets[i] = node;
    t->n++;
    return 0;
}

static void h_del(struct htable *t, struct hnode *node)
{
    if (!t->n_buckets)
        return;
    struct hnode **p = &t->buckets[h_index(t, node->key)];
    while (*p && *p != node)
        p = &(*p)->next;
    if (*p) {
        *p = node->next;
        t->n--;
    }
}

/* ---- state ---- */

enum conn_kind { CONN_CUSTOMER, CONN_AGENT };

struct conv;

struct conn {
    struct hnode node; /* key: connection id */
    enum conn_kind kind;
    char address[64];
    struct conv *conv;         /* customer: the conversation, once started */
    struct conn *next_in_conv; /* customer: other connections of conv */
    int is_authed;             /* agent */
    struct auth_user agent;    /* agent */
    struct conn *prev_agent, *next_agent;
    int has_pending;      /* frames queued in this turn */
    int n_pending;        /* how many */
    int64_t replay_after; /* replaying: the last seq sent so far */
    int is_replaying;     /* stored messages still to send after resume */
    int is_resyncing;     /* a welcome or replay frames wait in this turn */
    int is_closing;       /* a close is queued: later frames are ignored */
};

struct conv {
    struct hnode node; /* key: conversation id */
    struct store_conversation rec;
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
    int has_customer_message; /* 1, 0, or -1: not known yet (loaded from the store) */
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
    int n_replaying;    /* customer connections with a paced replay under way */
    int is_queue_dirty; /* the waiting list or agents changed: agents get a new view */
    int is_eta_dirty;   /* time passed: customers' estimates may have moved */
    int64_t last_retention_s;
    struct chat_metrics m;
};

/* ---- frames out ---- */

static void touch(struct chat *chat, struct conv *c)
{
    if (c && !c->is_touched) {
        c->is_touched = 1;
        c->next_touched = chat->touched;
        chat->touched = c;
    }
}

static struct conn *conn_get(struct chat *chat, uint64_t id)
{
    return (struct conn *)h_get(&chat->conns, id);
}

/* Queues text (taken over, NUL-terminated) as a frame for connection id.
 * Out of memory drops the frame (the client can resume to get what it
 * missed). */
static void emit_text(struct chat *chat, uint64_t conn_id, char *text)
{
    if (!text)
        return;
    if (chat->n_frames == chat->cap_frames) {
        int cap = chat->cap_frames ? chat->cap_frames * 2 : 64;
        struct pending_frame *f = realloc(chat->frames, (size_t)cap * sizeof *f);
        if (!f) {
            free(text);
            return;
        }
        chat->frames = f;
        chat->cap_frames = cap;
    }
    chat->frames[chat->n_frames++] = (struct pending_frame){conn_id, text, strlen(text), 0, NULL};
    struct conn *c = conn_get(chat, conn_id);
    if (c) {
        c->has_pending = 1;
        c->n_pending++;
    }
}

/* Closes connection id with code once the frames queued before are sent
 * (in chat_flush()). reason must be a static string. */
static void emit_close(struct chat *chat, uint64_t conn_id, int code, const char *reason)
{
    struct conn *k = conn_get(chat, conn_id);
    if (k)
        k->is_closing = 1;
    if (chat->n_frames == chat->cap_frames) {
        int cap = chat->cap_frames ? chat->cap_frames * 2 : 64;
        struct pending_frame *f = realloc(chat->frames, (size_t)cap * sizeof *f);
        if (!f) {
            chat->io.close(chat->io.ctx, conn_id, code, reason); /* at once, then */
            return;
        }
        chat->frames = f;
        chat->cap_frames = cap;
    }
    chat->frames[chat->n_frames++] = (struct pending_frame){conn_id, NULL, 0, code, reason};
}

/* Queues obj (consumed) as a frame for connection id. */
static void emit(struct chat *chat, uint64_t conn_id, json_t *obj)
{
    if (!obj)
        return;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    emit_text(chat, conn_id, text);
}

/* Sends obj (consumed) to every customer connection of conversation c. */
static void emit_customer(struct chat *chat, struct conv *c, json_t *obj)
{
    if (!obj)
        return;
    char *text = c->conns ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return;
    for (struct conn *k = c->conns; k; k = k->next_in_conv)
        emit_text(chat, k->node.key, k->next_in_conv ? strdup(text) : text);
}

/* Like emit_customer(), for a frame that reports a stored message (it has a
 * seq) or must follow one: connections still catching up with a paced
 * replay skip it, because the replay will bring it, in order. */
static void emit_customer_stored_text(struct chat *chat, struct conv *c, const char *text)
{
    for (struct conn *k = c->conns; k; k = k->next_in_conv)
        if (!k->is_replaying)
            emit_text(chat, k->node.key, strdup(text));
}

static void emit_customer_stored(struct chat *chat, struct conv *c, json_t *obj)
{
    if (!obj)
        return;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return;
    emit_customer_stored_text(chat, c, text);
    free(text);
}

/* Sends obj (consumed) to every connection of agent agent_id. */
static void emit_agent(struct chat *chat, int64_t agent_id, json_t *obj)
{
    if (!obj)
        return;
    for (struct conn *k = chat->agents; k; k = k->next_agent)
        if (k->agent.id == agent_id)
            emit(chat, k->node.key, json_deep_copy(obj));
    json_decref(obj);
}

static void emit_error(struct chat *chat, uint64_t conn_id, const char *code, const char *message,
                       const char *reply_to, int64_t conversation)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);
    if (o && reply_to)
        json_object_set_new(o, "reply_to", json_string(reply_to));
    if (o && conversation > 0)
        json_object_set_new(o, "conversation", json_integer(conversation));
    chat->m.n_bad_frames++;
    emit(chat, conn_id, o);
}

/* One unit of work (one client frame, one assignment): its store writes and
 * the frames it queues happen together or not at all. */
static int unit_begin(struct chat *chat)
{
    chat->unit_frames = chat->n_frames;
    chat->n_unit_convs = 0;
    return store_mark(chat->store);
}

static void unit_end(struct chat *chat)
{
    store_mark_release(chat->store);
    chat->n_unit_convs = 0;
}

static void unit_undo(struct chat *chat)
{
    store_mark_undo(chat->store);
    while (chat->n_frames > chat->unit_frames)
        free(chat->frames[--chat->n_frames].text);
    while (chat->n_unit_convs > 0) {
        int i = --chat->n_unit_convs;
        chat->unit_convs[i]->rec.last_seq = chat->unit_last_seq[i];
    }
}

/* ---- settings, lifecycle ---- */

static void rebuild_from_store(struct chat *chat);

struct chat *chat_new(const struct chat_settings *settings, struct store *store, struct kb *kb,
                      struct triage *triage, const struct chat_io *io)
{
    if (!store || !io || !io->send)
        return NULL;
    struct chat *chat = calloc(1, sizeof *chat);
    if (chat)
        chat->started_s = cd_wall_s();
    if (!chat)
        return NULL;
    if (settings)
        chat->settings = *settings;
    struct chat_settings *s = &chat->settings;
    if (s->pickup_target_s <= 0)
        s->pickup_target_s = 60;
    if (s->agent_capacity <= 0)
        s->agent_capacity = 3;
    if (s->max_message_bytes <= 0)
        s->max_message_bytes = 4096;
    if (s->agent_grace_s <= 0)
        s->agent_grace_s = 30;
    snprintf(chat->public_url, sizeof chat->public_url, "%s", s->public_url ? s->public_url : "");
    size_t n_url = strlen(chat->public_url);
    if (n_url && chat->public_url[n_url - 1] == '/')
        chat->public_url[n_url - 1] = '\0';
    s->public_url = chat->public_url;
    chat->store = store;
    chat->kb = kb;
    chat->triage = triage;
    chat->io = *io;
    struct queue_settings qs = {0};
    qs.names = s->queue_names;
    qs.agent_capacity = s->agent_capacity;
    qs.pickup_target_s = s->pickup_target_s;
    qs.business_open_min = s->business_open_min;
    qs.business_close_min = s->business_close_min;
    qs.business_days_mask = s->business_days_mask;
    s->queue_names = NULL;
    chat->queue = queue_new(&qs);
    chat->throttle = auth_throttle_new(0, 0);
    chat->redactor = s->redactor;
    if (!chat->redactor) {
        chat->redactor = redact_new(NULL, 0, NULL);
        chat->owns_redactor = 1;
    }
    if (!chat->queue || !chat->throttle || !chat->redactor) {
        chat_free(chat);
        return NULL;
    }
    rebuild_from_store(chat);
    return chat;
}

static void conv_free(struct conv *c)
{
    if (!c)
        return;
    store_conversation_clear(&c->rec);
    free(c);
}

void chat_free(struct chat *chat)
{
    if (!chat)
        return;
    if (chat->store && store_in_transaction(chat->store))
        store_commit(chat->store);
    for (size_t i = 0; i < chat->conns.n_buckets; i++) {
        struct hnode *n = chat->conns.buckets[i];
        while (n) {
            struct hnode *next = n->next;
            free(n);
            n = next;
        }
    }
    for (size_t i = 0; i < chat->convs.n_buckets; i++) {
        struct hnode *n = chat->convs.buckets[i];
        while (n) {
            struct hnode *next = n->next;
            conv_free((struct conv *)n);
            n = next;
        }
    }
    free(chat->conns.buckets);
    free(chat->convs.buckets);
    for (int i = 0; i < chat->n_frames; i++)
        free(chat->frames[i].text);
    free(chat->frames);
    for (int i = 0; i < chat->n_learns; i++)
        free(chat->learns[i].question);
    free(chat->learns);
    queue_free(chat->queue);
    auth_throttle_free(chat->throttle);
    if (chat->owns_redactor)
        redact_free(chat->redactor);
    free(chat);
}

/* ---- conversations in memory ---- */

static struct conv *conv_cached(struct chat *chat, int64_t id)
{
    return (struct conv *)h_get(&chat->convs, (uint64_t)id);
}

/* Wraps a loaded record (taken over) in a cached conversation. */
static struct conv *conv_adopt(struct chat *chat, struct store_conversation *rec)
{
    struct conv *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->rec = *rec;
    memset(rec, 0, sizeof *rec);
    c->node.key = (uint64_t)c->rec.id;
    c->last_position = -2;
    c->last_eta = -2;
    c->has_customer_message = -1;
    snprintf(c->last_intent, sizeof c->last_intent, "%s", c->rec.intent);
    if (h_put(&chat->convs, &c->node)) {
        conv_free(c);
        return NULL;
    }
    return c;
}

static int conv_is_open(const struct conv *c)
{
    return c->rec.state == STORE_STATE_QUEUED || c->rec.state == STORE_STATE_WITH_AGENT;
}

static void conv_evict(struct chat *chat, struct conv *c)
{
    h_del(&chat->convs, &c->node);
    conv_free(c);
}

static void agent_name_of(struct chat *chat, int64_t agent_id, char *out, size_t cap)
{
    const struct queue_agent *a = queue_agent_get(chat->queue, agent_id);
    if (a && a->name[0]) {
        snprintf(out, cap, "%s", a->name);
        return;
    }
    struct store_user u;
    if (store_user_get(chat->store, agent_id, &u) == 0)
        snprintf(out, cap, "%s", u.name);
    else
        snprintf(out, cap, "agent");
}

static void queue_item_of(struct conv *c, struct queue_item *it)
{
    memset(it, 0, sizeof *it);
    it->conversation = c->rec.id;
    snprintf(it->queue, sizeof it->queue, "%.*s", (int)sizeof it->queue - 1, c->rec.queue);
    it->priority = c->rec.priority;
    it->enqueued_s = c->rec.queued_s ? c->rec.queued_s : cd_wall_s();
    snprintf(it->intent, sizeof it->intent, "%s", c->rec.intent);
    snprintf(it->customer, sizeof it->customer, "%s",
             c->rec.customer_name ? c->rec.customer_name : "");
    it->is_offline = c->rec.is_offline;
}

struct preview_ctx {
    char text[QUEUE_PREVIEW_MAX + 1];
};

static int last_customer_text(void *ctx, const struct store_message *m)
{
    struct preview_ctx *p = ctx;
    if (m->sender == STORE_SENDER_CUSTOMER)
        snprintf(p->text, sizeof p->text, "%s", m->text);
    return 0;
}

/* Sets the agents' preview of a queued chat to the customer's last words (stored, so
 * already redacted; from the last 20 messages, so the query stays small). */
static void preview_from_store(struct chat *chat, const struct conv *c)
{
    struct preview_ctx p = {""};
    int64_t after = c->rec.last_seq > 20 ? c->rec.last_seq - 20 : 0;
    store_messages_after(chat->store, c->rec.id, after, 20, last_customer_text, &p);
    queue_set_preview(chat->queue, c->rec.id, p.text);
}

static int rebuild_one(void *ctx, const struct store_conversation *rec)
{
    struct chat *chat = ctx;
    struct store_conversation copy = *rec;
    /* The callback's strings are freed by the store after the call: copy. */
    copy.customer_name = rec->customer_name ? strdup(rec->customer_name) : NULL;
    copy.customer_email = rec->customer_email ? strdup(rec->customer_email) : NULL;
    copy.customer_page = rec->customer_page ? strdup(rec->customer_page) : NULL;
    copy.note = rec->note ? strdup(rec->note) : NULL;
    copy.comment = rec->comment ? strdup(rec->comment) : NULL;
    struct conv *c = conv_adopt(chat, &copy);
    if (!c) {
        store_conversation_clear(&copy);
        return 0;
    }
    if (c->rec.state == STORE_STATE_QUEUED) {
        struct queue_item it;
        queue_item_of(c, &it);
        queue_push(chat->queue, &it);
        preview_from_store(chat, c);
    } else {
        agent_name_of(chat, c->rec.agent_id, c->agent_name, sizeof c->agent_name);
        queue_agent_add_chat(chat->queue, c->rec.agent_id, c->agent_name);
    }
    return 0;
}

/* After a restart: every queued chat is back in its queue, every chat with
 * an agent counts for that agent (who has the grace period to reconnect). */
static void rebuild_from_store(struct chat *chat)
{
    store_conversations_open(chat->store, 100000, rebuild_one, chat);
}

/* ---- JSON helpers ---- */

/* Reads an optional string field: 0 if absent (*out = NULL), 1 if present
 * and valid, -1 if of the wrong type or length (an error is emitted). */
static int field_str(struct chat *chat, uint64_t conn, json_t *o, const char *key, size_t min,
                     size_t max, const char **out, const char *reply_to)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        char msg[160];
        snprintf(msg, sizeof msg, "field '%s' must be a string (got %s)", key, cd_json_kind(v));
        emit_error(chat, conn, "bad_frame", msg, reply_to, 0);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n < min || n > max || memchr(json_string_value(v), '\0', n)) {
        char msg[160];
        snprintf(msg, sizeof msg, "field '%s' must be %zu to %zu bytes of text", key, min, max);
        emit_error(chat, conn, n > max ? "too_big" : "bad_frame", msg, reply_to, 0);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

/* A required string field; returns 0 and *out, or -1 (error emitted). */
static int need_str(struct chat *chat, uint64_t conn, json_t *o, const char *key, size_t min,
                    size_t max, const char **out, const char *reply_to)
{
    int r = field_str(chat, conn, o, key, min, max, out, reply_to);
    if (r == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "missing field '%s'", key);
        emit_error(chat, conn, "bad_frame", msg, reply_to, 0);
        return -1;
    }
    return r < 0 ? -1 : 0;
}

/* A required integer field in [min, max] (a JSON integer: "3" is a string, not an id);
 * returns 0 and *out, or -1 (error emitted, naming the field and the type it got). */
static int need_int(struct chat *chat, uint64_t conn, json_t *o, const char *key, int64_t min,
                    int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    char msg[192];
    if (!v) {
        snprintf(msg, sizeof msg, "missing field '%s'", key);
        emit_error(chat, conn, "bad_frame", msg, NULL, 0);
        return -1;
    }
    int64_t x = json_is_integer(v) ? json_integer_value(v) : 0;
    if (!json_is_integer(v) || x < min || x > max) {
        int n = snprintf(msg, sizeof msg, "field '%s' must be an integer from %lld to %lld", key,
                         (long long)min, (long long)max);
        if (!json_is_integer(v) && n > 0 && (size_t)n < sizeof msg)
            snprintf(msg + n, sizeof msg - (size_t)n, " (got %s)", cd_json_kind(v));
        emit_error(chat, conn, "bad_frame", msg, NULL, 0);
        return -1;
    }
    *out = x;
    return 0;
}

/* ---- JSON text for the hot frames ----
 * The reply and its stored meta are built as text, as json_dumps() with
 * JSON_COMPACT would write them (same key order, escapes and numbers), with
 * no json_t tree: they are most of the JSON a message costs. */

/* Appends s as a JSON string. CD_EINVAL for invalid UTF-8 (json_string()
 * refuses it too), CD_ENOMEM. */
static int jb_str(struct cd_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!cd_utf8_valid(s, n))
        return CD_EINVAL;
    int rc = cd_buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        rc = cd_buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (ch) {
        case '"':
            memcpy(esc, "\\\"", 3);
            break;
        case '\\':
            memcpy(esc, "\\\\", 3);
            break;
        case '\b':
            memcpy(esc, "\\b", 3);
            break;
        case '\f':
            memcpy(esc, "\\f", 3);
            break;
        case '\n':
            memcpy(esc, "\\n", 3);
            break;
        case '\r':
            memcpy(esc, "\\r", 3);
            break;
        case '\t':
            memcpy(esc, "\\t", 3);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", ch);
            break;
        }
        if (!rc)
            rc = cd_buf_append(b, esc, strlen(esc));
    }
    if (!rc)
        rc = cd_buf_append(b, s + run, n - run);
    return rc ? rc : cd_buf_append(b, "\"", 1);
}

/* Appends s as a JSON string, or null for NULL. */
static int jb_str_or_null(struct cd_buf *b, const char *s)
{
    return s ? jb_str(b, s) : cd_buf_append(b, "null", 4);
}

/* Appends a real as jansson does: %.17g, always with a '.' or an exponent,
 * the exponent without '+' or leading zeros. CD_EINVAL for NaN/infinity. */
static int jb_real(struct cd_buf *b, double v)
{
    if (!isfinite(v))
        return CD_EINVAL;
    char num[48];
    int n = snprintf(num, sizeof num, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof num - 3)
        return CD_EINVAL;
    if (!strchr(num, '.') && !strchr(num, 'e')) {
        memcpy(num + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(num, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(num + n - end) + 1);
            n -= (int)(end - start);
        }
    }
    return cd_buf_append(b, num, (size_t)n);
}

/* Appends an integer (no printf: this is on every reply's path). */
static int jb_int(struct cd_buf *b, long long v)
{
    char num[24];
    char *p = num + sizeof num;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return cd_buf_append(b, p, (size_t)(num + sizeof num - p));
}

/* [{"id":..,"title":..,"url":..}, ...] for the decision's articles. */
static int jb_articles(struct cd_buf *b, const struct triage_decision *d, const char *public_url)
{
    int rc = cd_buf_append(b, "[", 1);
    size_t n_base = strlen(public_url);
    for (int i = 0; !rc && i < d->n_articles; i++) {
        char url[1024]; /* public_url + the article's path, cut to fit as snprintf would */
        size_t n_path = strlen(d->articles[i].url);
        size_t n1 = n_base < sizeof url - 1 ? n_base : sizeof url - 1;
        size_t n2 = n_path < sizeof url - 1 - n1 ? n_path : sizeof url - 1 - n1;
        memcpy(url, public_url, n1);
        memcpy(url + n1, d->articles[i].url, n2);
        url[n1 + n2] = '\0';
        rc = cd_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        if (!rc)
            rc = jb_str(b, d->articles[i].id);
        if (!rc)
            rc = cd_buf_puts(b, ",\"title\":");
        if (!rc)
            rc = jb_str(b, d->articles[i].title ? d->articles[i].title : "");
        if (!rc)
            rc = cd_buf_puts(b, ",\"url\":");
        if (!rc)
            rc = jb_str(b, url);
        if (!rc)
            rc = cd_buf_append(b, "}", 1);
    }
    return rc ? rc : cd_buf_append(b, "]", 1);
}

/* [{"id":..,"label":..}, ...] for the decision's clarify candidates. */
static int jb_choices(struct cd_buf *b, const struct triage_decision *d)
{
    int rc = cd_buf_append(b, "[", 1);
    for (int i = 0; !rc && i < d->n_candidates; i++) {
        rc = cd_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        if (!rc)
            rc = jb_str(b, d->candidates[i].intent);
        if (!rc)
            rc = cd_buf_puts(b, ",\"label\":");
        if (!rc)
            rc = jb_str(b,
                        d->candidates[i].label ? d->candidates[i].label : d->candidates[i].intent);
        if (!rc)
            rc = cd_buf_append(b, "}", 1);
    }
    return rc ? rc : cd_buf_append(b, "]", 1);
}

/* ---- storing messages ---- */

/* Appends a message; sets *seq. Returns 0, CD_EEXIST (client id seen: *seq is
 * the stored one) or CD_E*. */
static int append_message(struct chat *chat, struct conv *c, int sender, const char *client_id,
                          const char *reply_to, const char *text, const char *meta,
                          int64_t agent_id, int64_t *seq)
{
    struct store_message m;
    memset(&m, 0, sizeof m);
    m.conversation = c->rec.id;
    m.sender = sender;
    if (client_id)
        snprintf(m.client_id, sizeof m.client_id, "%s", client_id);
    if (reply_to)
        snprintf(m.reply_to, sizeof m.reply_to, "%s", reply_to);
    m.text = text;
    m.meta = meta;
    m.agent_id = agent_id;
    m.seq = c->rec.last_seq + 1; /* exact: this process is the conversation's only writer */
    int rc = store_message_append(chat->store, &m);
    *seq = m.seq;
    if (!rc && m.seq > c->rec.last_seq) {
        int known = 0;
        for (int i = 0; i < chat->n_unit_convs; i++)
            known |= chat->unit_convs[i] == c;
        if (!known && chat->n_unit_convs < 4) {
            chat->unit_convs[chat->n_unit_convs] = c;
            chat->unit_last_seq[chat->n_unit_convs++] = c->rec.last_seq;
        }
        c->rec.last_seq = m.seq;
    }
    touch(chat, c);
    return rc;
}

/* Appends a system event (meta {"event": event, ...extra}); consumes extra. */
static int append_event(struct chat *chat, struct conv *c, const char *event, const char *text,
                        json_t *extra, int64_t *seq)
{
    json_t *meta = extra ? extra : json_object();
    json_object_set_new(meta, "event", json_string(event));
    char *meta_text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    if (!meta_text)
        return CD_ENOMEM;
    int rc = append_message(chat, c, STORE_SENDER_SYSTEM, NULL, NULL, text, meta_text, 0, seq);
    free(meta_text);
    return rc;
}

static int save_conv(struct chat *chat, struct conv *c)
{
    touch(chat, c);
    return store_conversation_update(chat->store, &c->rec);
}

/* ---- queue status to customers and agents ---- */

static json_t *queued_frame(struct chat *chat, struct conv *c, int64_t seq)
{
    int pos = queue_position(chat->queue, c->rec.id);
    int eta = queue_estimate_wait_s(chat->queue, c->rec.id, cd_wall_s());
    json_t *o = json_pack("{s:s, s:s, s:b}", "type", "queued", "queue", c->rec.queue, "offline",
                          c->rec.is_offline);
    if (!o)
        return NULL;
    json_object_set_new(o, "position", pos > 0 ? json_integer(pos) : json_null());
    /* An offline ticket has no basis for an estimate, even when agents are signed in. */
    json_object_set_new(o, "estimated_wait_s",
                        eta >= 0 && !c->rec.is_offline ? json_integer(eta) : json_null());
    if (seq > 0)
        json_object_set_new(o, "seq", json_integer(seq));
    if (c->rec.is_offline) {
        int64_t now = cd_wall_s();
        int64_t when = queue_is_open(chat->queue, now) ? now + chat->settings.pickup_target_s
                                                       : queue_next_open_s(chat->queue, now);
        char iso[32];
        time_t t = (time_t)when;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(o, "reply_by", json_string(iso));
        json_object_set_new(o, "ask_email",
                            json_boolean(!c->rec.customer_email || !c->rec.customer_email[0]));
    }
    c->last_position = pos;
    c->last_eta = eta;
    return o;
}

/* The waiting chats in service order, at most QUEUE_VIEW_MAX of them (the
 * agents' view; "total" in the frame says how many wait in all). */
#define QUEUE_VIEW_MAX 200

static json_t *queue_items_json(struct chat *chat)
{
    json_t *items = json_array();
    int64_t now = cd_wall_s();
    for (int i = 0; items && i < QUEUE_VIEW_MAX; i++) {
        const struct queue_item *it = queue_at(chat->queue, i);
        if (!it)
            break;
        json_array_append_new(
            items,
            json_pack("{s:I, s:s, s:i, s:I, s:s, s:s, s:b, s:s}", "conversation",
                      (json_int_t)it->conversation, "queue", it->queue, "priority", it->priority,
                      "waiting_s", (json_int_t)(now - it->enqueued_s), "intent", it->intent,
                      "preview", it->preview, "offline", it->is_offline, "customer", it->customer));
    }
    return items;
}

/* ---- bot decisions ---- */

/* The decision for a clicked clarify choice: the intent's own answer (or
 * handoff), without asking the model again. Returns 0 if it could be made. */
static int decide_choice(struct chat *chat, const char *intent_name, struct triage_decision *d)
{
    if (!chat->triage)
        return CD_ENOTFOUND;
    const struct intents *set = triage_intents(chat->triage);
    int i = set ? intents_find(set, intent_name) : -1;
    if (i < 0)
        return CD_ENOTFOUND;
    const struct intent *in = intents_get(set, i);
    memset(d, 0, sizeof *d);
    snprintf(d->intent, sizeof d->intent, "%s", in->name);
    d->confidence = 1.0;
    d->priority = in->priority > 0 ? in->priority : 3;
    d->is_sensitive = in->is_sensitive;
    snprintf(d->queue, sizeof d->queue, "%s", in->queue ? in->queue : "general");
    d->evidence.reason = "choice";
    if (in->action != INTENT_ANSWER || in->is_sensitive || in->is_person_request) {
        d->action = TRIAGE_HANDOFF;
        if (in->action == INTENT_COLLECT && in->collect.prompt) {
            d->collect_field = strdup(in->collect.field ? in->collect.field : "detail");
            d->collect_prompt = strdup(in->collect.prompt);
        }
        d->answer = strdup("I'm passing you to a colleague who can help with this.");
        return d->answer ? 0 : CD_ENOMEM;
    }
    d->action = TRIAGE_ANSWER;
    char *passage = NULL;
    if (in->article && chat->kb) {
        struct kb_article a;
        memset(&a, 0, sizeof a);
        if (kb_get(chat->kb, in->article, &a) == 0) {
            snprintf(d->articles[0].id, sizeof d->articles[0].id, "%s", a.id);
            d->articles[0].title = a.title ? strdup(a.title) : NULL;
            snprintf(d->articles[0].url, sizeof d->articles[0].url, "/kb/%s", a.id);
            d->n_articles = 1;
            if (!in->response && a.body) {
                /* The first paragraph of the article. */
                const char *b = a.body;
                while (*b == '#' || *b == '\n' || *b == ' ') {
                    if (*b == '#')
                        b = strchr(b, '\n') ? strchr(b, '\n') : b + strlen(b);
                    else
                        b++;
                }
                const char *end = strstr(b, "\n\n");
                passage = cd_strndup(b, end ? (size_t)(end - b) : strlen(b));
            }
            kb_article_clear(&a);
        }
    }
    if (in->response)
        d->answer = strdup(in->response);
    else if (passage)
        d->answer = passage, passage = NULL;
    else
        d->answer = strdup(in->description ? in->description : in->name);
    free(passage);
    return d->answer ? 0 : CD_ENOMEM;
}

/* Without a triage engine (a KB-only deployment): answer from the best
 * article, else hand off. */
static int decide_kb_only(struct chat *chat, const char *text, const char *lang,
                          struct triage_decision *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->queue, sizeof d->queue, "general");
    d->priority = 3;
    struct kb_hit hits[3];
    int n = 0;
    if (chat->kb && kb_search(chat->kb, text, lang, hits, 3, &n) == 0 && n > 0) {
        d->action = TRIAGE_ANSWER;
        d->confidence = 0.5;
        d->answer = strdup(hits[0].passage ? hits[0].passage : "");
        for (int i = 0; i < n && i < TRIAGE_MAX_ARTICLES; i++) {
            snprintf(d->articles[i].id, sizeof d->articles[i].id, "%.*s", KB_ID_MAX - 1,
                     hits[i].id);
            d->articles[i].title = hits[i].title ? strdup(hits[i].title) : NULL;
            snprintf(d->articles[i].url, sizeof d->articles[i].url, "/kb/%.*s", KB_ID_MAX - 1,
                     hits[i].id);
            d->n_articles++;
        }
        kb_hits_clear(hits, n);
    } else {
        d->action = TRIAGE_HANDOFF;
        d->answer = strdup("Let me connect you with a person who can help.");
    }
    d->evidence.reason = "kb";
    return d->answer ? 0 : CD_ENOMEM;
}

static int decide(struct chat *chat, struct conv *c, const char *text, size_t n,
                  struct triage_decision *d)
{
    const char *lang = c->rec.lang[0] ? c->rec.lang : NULL;
    if (!chat->triage)
        return decide_kb_only(chat, text, lang, d);
    c->tctx.last_intent = c->last_intent[0] ? c->last_intent : NULL;
    return triage_decide(chat->triage, text, n, lang, &c->tctx, d);
}

/* Folds one decision into the conversation's triage context. */
static void update_context(struct conv *c, const struct triage_decision *d)
{
    struct triage_context *t = &c->tctx;
    if (d->action == TRIAGE_CLARIFY)
        t->n_clarify++;
    else if (d->action == TRIAGE_ANSWER)
        t->n_clarify = 0;
    t->n_not_helped = d->signals.is_not_helped ? t->n_not_helped + 1 : 0;
    if (d->signals.text_key && d->signals.text_key == c->last_text_key)
        t->n_repeats++;
    else
        t->n_repeats = 0;
    c->last_text_key = d->signals.text_key;
    if (d->signals.anger > t->anger)
        t->anger = d->signals.anger;
    if (d->intent[0])
        snprintf(c->last_intent, sizeof c->last_intent, "%s", d->intent);
}

/* ---- handoff ---- */

/* Puts c in the queue (state queued), stores the "queued" event and queues
 * the customer's queued frame. Returns 0 or CD_E*. */
/* Whether conversation c has a customer message, asked of the store once for a conversation
 * loaded from it (a reconnect, a restart). */
static int conv_has_customer_message(struct chat *chat, struct conv *c)
{
    if (c->has_customer_message < 0) {
        int has = store_has_customer_message(chat->store, c->rec.id);
        c->has_customer_message = has > 0;
    }
    return c->has_customer_message;
}

/* The deflection counts of /metrics, with the definition of store_stats() (GET /api/stats):
 * per conversation created since chat_new() with at least one customer message, "engaged";
 * of those, the ones ever handed off, "escalated". Called after c's first customer message
 * is stored (is_first_message) and after its first handoff, so that however often the
 * customer reconnects a conversation counts once. */
static void count_outcome(struct chat *chat, struct conv *c, int is_first_message)
{
    if (c->rec.created_s < chat->started_s)
        return;
    if (is_first_message)
        chat->m.n_conversations_engaged++;
    if (c->rec.queued_s > 0 && (is_first_message || conv_has_customer_message(chat, c)))
        chat->m.n_conversations_escalated++;
}

static int enqueue(struct chat *chat, struct conv *c, const char *queue_name, int priority)
{
    int64_t now = cd_wall_s();
    struct store_conversation old = c->rec;
    c->rec.state = STORE_STATE_QUEUED;
    snprintf(c->rec.queue, sizeof c->rec.queue, "%s",
             queue_exists(chat->queue, queue_name) ? queue_name : "general");
    if (!queue_exists(chat->queue, c->rec.queue))
        snprintf(c->rec.queue, sizeof c->rec.queue, "%s", queue_names(chat->queue));
    char *comma = strchr(c->rec.queue, ',');
    if (comma)
        *comma = '\0';
    c->rec.priority = priority > 0 ? priority : 3;
    if (!c->rec.queued_s)
        c->rec.queued_s = now;
    c->rec.agent_id = 0;
    c->rec.is_offline = !queue_is_open(chat->queue, now) ||
                        queue_agents_available(chat->queue, c->rec.queue, NULL) == 0;
    int64_t seq = 0;
    char text[96];
    snprintf(text, sizeof text, "Waiting in queue %s", c->rec.queue);
    int rc = append_event(
        chat, c, "queued", text,
        json_pack("{s:s, s:b}", "queue", c->rec.queue, "offline", c->rec.is_offline), &seq);
    if (!rc)
        rc = save_conv(chat, c);
    if (rc) {
        /* Restore the record fields changed above (strings were not touched). */
        c->rec.state = old.state;
        memcpy(c->rec.queue, old.queue, sizeof c->rec.queue);
        c->rec.priority = old.priority;
        c->rec.queued_s = old.queued_s;
        c->rec.agent_id = old.agent_id;
        c->rec.is_offline = old.is_offline;
        return rc;
    }
    struct queue_item it;
    queue_item_of(c, &it);
    it.enqueued_s = c->rec.queued_s;
    queue_push(chat->queue, &it);
    /* Whatever started the handoff (a message, the button), agents see the customer's latest
     * message, not "No preview". */
    preview_from_store(chat, c);
    chat->is_queue_dirty = 1;
    store_event_add(chat->store, "handoff", c->rec.id, 0, NULL);
    if (!old.queued_s)
        count_outcome(chat, c, 0);
    emit_customer_stored(chat, c, queued_frame(chat, c, seq));
    return 0;
}

/* ---- the bot's reply ---- */

/* 1 if a question the bot handed off or clarified (d), or one the customer said "No" to
 * (intent_name, d NULL), is one an author should see in the unanswered list: the bot did not
 * know. Not a request for a person, not small talk (an answer intent with its own response
 * and no article: greetings, thanks, goodbyes), and not a handoff by policy (anger, a
 * sensitive intent, an intent that always goes to a person). */
static int is_unanswered(const struct chat *chat, const struct triage_decision *d,
                         const char *intent_name)
{
    const char *reason = d ? d->evidence.reason : NULL;
    if (d && (d->signals.is_person_request || d->is_sensitive))
        return 0;
    if (reason && (!strcmp(reason, "person_request") || !strcmp(reason, "sensitive") ||
                   !strcmp(reason, "anger") || !strcmp(reason, "empty")))
        return 0;
    /* A clarification or a low-confidence handoff names the bot's best guess, not what the
     * question was: such a question is unanswered whatever the guess. */
    int is_decided = !d || (reason && (!strcmp(reason, "rule") || !strcmp(reason, "model")));
    const char *name = d ? d->intent : intent_name;
    const struct intents *set = chat->triage ? triage_intents(chat->triage) : NULL;
    int i = is_decided && set && name && name[0] ? intents_find(set, name) : -1;
    const struct intent *in = i >= 0 ? intents_get(set, i) : NULL;
    if (!in)
        return 1;
    if (in->is_person_request || in->is_sensitive || in->action == INTENT_HANDOFF)
        return 0;
    return !(in->action == INTENT_ANSWER && in->response && !in->article);
}

/* Stores the bot reply for decision d (answering client message reply_to,
 * NULL for none) and queues the reply frame, then acts on it (clarify
 * choices, collecting, handoff). Returns 0 or CD_E*. */
static int bot_reply(struct chat *chat, struct conv *c, const char *reply_to, int64_t question_seq,
                     const char *question, struct triage_decision *d)
{
    const char *action = triage_action_name(d->action);
    int is_collect = d->action == TRIAGE_HANDOFF && d->collect_prompt && d->collect_prompt[0];
    const char *text = is_collect ? d->collect_prompt : (d->answer ? d->answer : "");
    if (is_collect)
        action = "clarify";
    /* The articles and choices are the same in the stored meta and the
     * frame: built once. */
    struct cd_buf arts = {0}, choices = {0}, meta = {0}, conf = {0};
    int has_choices = d->action == TRIAGE_CLARIFY && d->n_candidates > 0;
    const char *queue_name = d->queue[0] ? d->queue : "general";
    int is_handoff = d->action == TRIAGE_HANDOFF && !is_collect;
    const char *intent = d->intent[0] ? d->intent : NULL;
    int rc = jb_articles(&arts, d, chat->public_url);
    if (!rc && has_choices)
        rc = jb_choices(&choices, d);
    if (!rc)
        rc = jb_real(&conf, d->confidence);
    if (!rc)
        rc = cd_buf_puts(&meta, "{\"action\":");
    if (!rc)
        rc = jb_str(&meta, action);
    if (!rc)
        rc = cd_buf_puts(&meta, ",\"intent\":");
    if (!rc)
        rc = jb_str_or_null(&meta, intent);
    if (!rc)
        rc = cd_buf_puts(&meta, ",\"confidence\":");
    if (!rc)
        rc = cd_buf_append(&meta, conf.data, conf.len);
    if (!rc)
        rc = cd_buf_puts(&meta, ",\"articles\":");
    if (!rc)
        rc = cd_buf_append(&meta, arts.data, arts.len);
    if (!rc)
        rc = cd_buf_puts(&meta, ",\"question_seq\":");
    if (!rc)
        rc = jb_int(&meta, (long long)question_seq);
    if (!rc && has_choices)
        rc = cd_buf_puts(&meta, ",\"choices\":");
    if (!rc && has_choices)
        rc = cd_buf_append(&meta, choices.data, choices.len);
    if (!rc && is_collect) {
        rc = cd_buf_puts(&meta, ",\"collect\":");
        if (!rc)
            rc = jb_str(&meta, d->collect_field ? d->collect_field : "detail");
    }
    if (!rc && is_handoff) {
        rc = cd_buf_puts(&meta, ",\"queue\":");
        if (!rc)
            rc = jb_str(&meta, queue_name);
    }
    if (!rc && reply_to) {
        rc = cd_buf_puts(&meta, ",\"reply_to\":");
        if (!rc)
            rc = jb_str(&meta, reply_to);
    }
    if (!rc)
        rc = cd_buf_append(&meta, "}", 1);
    int64_t seq = 0;
    if (!rc)
        rc = append_message(chat, c, STORE_SENDER_BOT, NULL, reply_to, text, meta.data, 0, &seq);
    else
        rc = CD_ENOMEM; /* as when json_pack() failed */
    cd_buf_free(&meta);
    if (rc) {
        cd_buf_free(&arts);
        cd_buf_free(&choices);
        cd_buf_free(&conf);
        return rc;
    }

    /* The conversation's new state. */
    int old_state = c->rec.state;
    char old_intent[sizeof c->rec.intent];
    memcpy(old_intent, c->rec.intent, sizeof old_intent);
    snprintf(c->rec.intent, sizeof c->rec.intent, "%s", d->intent);
    c->rec.confidence = d->confidence;
    c->n_choices = 0;
    if (d->action == TRIAGE_CLARIFY) {
        c->rec.state = STORE_STATE_CLARIFYING;
        for (int i = 0; i < d->n_candidates && i < TRIAGE_MAX_CANDIDATES; i++)
            snprintf(c->choices[c->n_choices++], sizeof c->choices[0], "%s",
                     d->candidates[i].intent);
        chat->m.n_clarify++;
    } else if (is_collect) {
        c->rec.state = STORE_STATE_COLLECTING;
        snprintf(c->collect_field, sizeof c->collect_field, "%s",
                 d->collect_field ? d->collect_field : "detail");
        snprintf(c->collect_intent, sizeof c->collect_intent, "%s", d->intent);
        snprintf(c->collect_queue, sizeof c->collect_queue, "%s", d->queue);
        c->collect_priority = d->priority;
        if (old_state != STORE_STATE_COLLECTING)
            c->n_collect_tries = 0;
        chat->m.n_clarify++;
    } else if (d->action == TRIAGE_ANSWER) {
        c->rec.state = STORE_STATE_BOT;
        chat->m.n_answer++;
    } else {
        chat->m.n_handoff++;
    }
    if (d->action != TRIAGE_ANSWER && question && !is_collect && d->n_articles == 0 &&
        is_unanswered(chat, d, NULL))
        store_unanswered_add(chat->store, c->rec.id, question, c->rec.lang, d->intent,
                             d->confidence);

    struct cd_buf frame = {0};
    int frc = cd_buf_puts(&frame, "{\"type\":\"reply\",\"reply_to\":");
    if (!frc)
        frc = jb_str_or_null(&frame, reply_to);
    if (!frc)
        frc = cd_buf_puts(&frame, ",\"seq\":");
    if (!frc)
        frc = jb_int(&frame, (long long)seq);
    if (!frc)
        frc = cd_buf_puts(&frame, ",\"text\":");
    if (!frc)
        frc = jb_str(&frame, text);
    if (!frc)
        frc = cd_buf_puts(&frame, ",\"action\":");
    if (!frc)
        frc = jb_str(&frame, action);
    if (!frc)
        frc = cd_buf_puts(&frame, ",\"intent\":");
    if (!frc)
        frc = jb_str_or_null(&frame, intent);
    if (!frc)
        frc = cd_buf_puts(&frame, ",\"confidence\":");
    if (!frc)
        frc = cd_buf_append(&frame, conf.data, conf.len);
    if (!frc)
        frc = cd_buf_puts(&frame, ",\"articles\":");
    if (!frc)
        frc = cd_buf_append(&frame, arts.data, arts.len);
    if (!frc && has_choices)
        frc = cd_buf_puts(&frame, ",\"choices\":");
    if (!frc && has_choices)
        frc = cd_buf_append(&frame, choices.data, choices.len);
    if (!frc && is_collect) {
        frc = cd_buf_puts(&frame, ",\"collect\":");
        if (!frc)
            frc = jb_str(&frame, c->collect_field);
    }
    if (!frc && is_handoff) {
        frc = cd_buf_puts(&frame, ",\"queue\":");
        if (!frc)
            frc = jb_str(&frame, queue_name);
    }
    if (!frc)
        frc = cd_buf_append(&frame, "}", 1);
    if (!frc) /* as before: a frame that cannot be built is not sent */
        emit_customer_stored_text(chat, c, frame.data);
    cd_buf_free(&frame);
    cd_buf_free(&arts);
    cd_buf_free(&choices);
    cd_buf_free(&conf);
    if (d->action == TRIAGE_HANDOFF && !is_collect)
        return enqueue(chat, c, d->queue[0] ? d->queue : "general", d->priority);
    /* The row changes only when the state or the intent does (a question
     * answered like the one before costs no UPDATE), and then only in the
     * three columns a reply sets. */
    if (c->rec.state == old_state && !strcmp(c->rec.intent, old_intent))
        return 0;
    touch(chat, c);
    return store_conversation_update_triage(chat->store, &c->rec);
}

/* ---- customer frames ---- */

static json_t *welcome_frame(struct conv *c, const char *token, int is_resumed)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:I, s:b}", "type", "welcome", "conversation",
                     (json_int_t)c->rec.id, "token", token, "state", store_state_name(c->rec.state),
                     "seq", (json_int_t)c->rec.last_seq, "resumed", is_resumed);
}

static void attach(struct chat *chat, struct conn *k, struct conv *c)
{
    k->conv = c;
    k->next_in_conv = c->conns;
    c->conns = k;
    c->n_conns++;
    touch(chat, c);
}

/* Valid language tag: 2-7 of [a-zA-Z-]. */
static int lang_ok(const char *lang)
{
    size_t n = strlen(lang);
    if (n < 2 || n > 7)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((lang[i] >= 'a' && lang[i] <= 'z') || (lang[i] >= 'A' && lang[i] <= 'Z') ||
              lang[i] == '-'))
            return 0;
    return 1;
}

/* Starts a new conversation for connection k (fields from hello, or none). */
static struct conv *start_conversation(struct chat *chat, struct conn *k, const char *lang,
                                       const char *name, const char *email, const char *page)
{
    char token[AUTH_TOKEN_HEX + 1];
    struct store_conversation rec;
    memset(&rec, 0, sizeof rec);
    if (auth_token_new(token, rec.token_hash)) {
        emit_error(chat, k->node.key, "store_failed", "no randomness for a token", NULL, 0);
        return NULL;
    }
    snprintf(rec.lang, sizeof rec.lang, "%s", lang ? lang : "en");
    for (char *p = rec.lang; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    /* Customer-supplied details are masked like message text before they are stored. */
    rec.customer_name = name ? redact_text(chat->redactor, name, strlen(name), NULL) : NULL;
    rec.customer_email = email ? redact_email_field(chat->redactor, email) : NULL;
    rec.customer_page = page ? redact_text(chat->redactor, page, strlen(page), NULL) : NULL;
    rec.state = STORE_STATE_BOT;
    if ((name && !rec.customer_name) || (email && !rec.customer_email) ||
        (page && !rec.customer_page)) {
        store_conversation_clear(&rec);
        emit_error(chat, k->node.key, "store_failed", "out of memory", NULL, 0);
        return NULL;
    }
    int rc = unit_begin(chat);
    if (!rc)
        rc = store_conversation_create(chat->store, &rec);
    if (rc) {
        unit_undo(chat);
        store_conversation_clear(&rec);
        emit_error(chat, k->node.key, "store_failed", cd_strerror(rc), NULL, 0);
        chat->m.n_store_errors++;
        return NULL;
    }
    unit_end(chat);
    struct conv *c = conv_adopt(chat, &rec);
    if (!c) {
        store_conversation_clear(&rec);
        emit_error(chat, k->node.key, "store_failed", "out of memory", NULL, 0);
        return NULL;
    }
    c->has_customer_message = 0;
    attach(chat, k, c);
    chat->m.n_conversations++;
    k->is_resyncing = 1;
    emit(chat, k->node.key, welcome_frame(c, token, 0));
    return c;
}

struct replay_ctx {
    struct chat *chat;
    struct conv *conv;
    uint64_t conn;
    int64_t last;
    int n;
};

#define REPLAY_MARGIN 16 /* transport slots kept free for live frames */

/* One stored message as the frame it was sent as live. */
static json_t *message_frame(struct chat *chat, struct conv *c, const struct store_message *m)
{
    json_t *meta = m->meta ? json_loads(m->meta, 0, NULL) : NULL;
    json_t *o = NULL;
    if (m->sender == STORE_SENDER_CUSTOMER) {
        o = json_pack("{s:s, s:I, s:s, s:s}", "type", "customer_message", "seq", (json_int_t)m->seq,
                      "id", m->client_id, "text", m->text);
    } else if (m->sender == STORE_SENDER_BOT) {
        o = json_pack("{s:s, s:s?, s:I, s:s}", "type", "reply", "reply_to",
                      m->reply_to[0] ? m->reply_to : NULL, "seq", (json_int_t)m->seq, "text",
                      m->text);
        const char *keys[] = {"action",  "intent", "confidence", "articles",
                              "choices", "queue",  "collect"};
        for (size_t i = 0; o && meta && i < sizeof keys / sizeof keys[0]; i++) {
            json_t *v = json_object_get(meta, keys[i]);
            if (v)
                json_object_set(o, keys[i], v);
        }
        if (o && !json_object_get(o, "articles"))
            json_object_set_new(o, "articles", json_array());
    } else if (m->sender == STORE_SENDER_AGENT) {
        json_t *agent = meta ? json_object_get(meta, "agent") : NULL;
        o = json_pack("{s:s, s:I, s:s, s:s}", "type", "agent_message", "seq", (json_int_t)m->seq,
                      "text", m->text, "agent",
                      json_is_string(agent) ? json_string_value(agent) : "agent");
    } else {
        const char *event = meta ? json_string_value(json_object_get(meta, "event")) : NULL;
        event = event ? event : "note";
        if (!strcmp(event, "queued")) {
            o = queued_frame(chat, c, m->seq);
            json_t *q = meta ? json_object_get(meta, "queue") : NULL;
            if (o && json_is_string(q))
                json_object_set(o, "queue", q);
        } else if (!strcmp(event, "agent_joined")) {
            json_t *agent = meta ? json_object_get(meta, "agent") : NULL;
            o = json_pack("{s:s, s:I, s:s}", "type", "agent_joined", "seq", (json_int_t)m->seq,
                          "agent", json_is_string(agent) ? json_string_value(agent) : "agent");
        } else if (!strcmp(event, "closed")) {
            json_t *by = meta ? json_object_get(meta, "by") : NULL;
            o = json_pack("{s:s, s:I, s:s}", "type", "closed", "seq", (json_int_t)m->seq, "by",
                          json_is_string(by) ? json_string_value(by) : "system");
        } else {
            o = json_pack("{s:s, s:I, s:s, s:s}", "type", "system", "seq", (json_int_t)m->seq,
                          "event", event, "text", m->text);
        }
    }
    json_decref(meta);
    return o;
}

static int replay_one(void *ctx, const struct store_message *m)
{
    struct replay_ctx *r = ctx;
    emit(r->chat, r->conn, message_frame(r->chat, r->conv, m));
    r->last = m->seq;
    r->n++;
    return 0;
}

/* The frames that tell a resumed connection where its conversation stands,
 * once the replay has caught up. */
static void replay_done(struct chat *chat, struct conn *k)
{
    struct conv *c = k->conv;
    if (k->is_replaying) {
        k->is_replaying = 0;
        chat->n_replaying--;
    }
    if (c->rec.state == STORE_STATE_QUEUED)
        emit(chat, k->node.key, queued_frame(chat, c, 0));
    else if (c->rec.state == STORE_STATE_CLOSED)
        emit(chat, k->node.key, json_pack("{s:s, s:i}", "type", "rating_request", "scale", 5));
}

/* Sends one resumed connection the stored messages after k->replay_after,
 * as many as the transport has room for (all of them when the transport
 * does not say), in bounded pages, then the current state. New messages
 * stored meanwhile are part of the replay: live frames skip a connection
 * while it replays (emit_customer_stored), so everything arrives in order
 * and once. */
static void replay_step(struct chat *chat, struct conn *k)
{
    struct conv *c = k->conv;
    int budget = INT32_MAX;
    if (chat->room) {
        budget = chat->room(chat->io.ctx, k->node.key) - k->n_pending - REPLAY_MARGIN;
        if (budget <= 0)
            return;
    }
    k->is_resyncing = 1;
    struct replay_ctx r = {chat, c, k->node.key, k->replay_after, 0};
    while (budget > 0 && r.last < c->rec.last_seq) {
        int page = budget < REPLAY_BATCH ? budget : REPLAY_BATCH;
        r.n = 0;
        if (store_messages_after(chat->store, c->rec.id, r.last, page, replay_one, &r) || !r.n)
            break;
        budget -= r.n;
    }
    k->replay_after = r.last;
    if (r.last >= c->rec.last_seq)
        replay_done(chat, k);
}

/* hello {token?, last_seq?, lang?, name?, email?, page?} */
static void customer_hello(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    if (k->conv) {
        emit_error(chat, id, "already_started", "this connection already has a conversation", NULL,
                   0);
        return;
    }
    const char *token, *lang, *name, *email, *page;
    if (field_str(chat, id, o, "token", 1, 256, &token, NULL) < 0 ||
        field_str(chat, id, o, "lang", 1, 64, &lang, NULL) < 0 ||
        field_str(chat, id, o, "name", 1, NAME_MAX_BYTES, &name, NULL) < 0 ||
        field_str(chat, id, o, "email", 3, EMAIL_MAX_BYTES, &email, NULL) < 0 ||
        field_str(chat, id, o, "page", 1, PAGE_MAX_BYTES, &page, NULL) < 0)
        return;
    if (lang && !lang_ok(lang)) {
        emit_error(chat, id, "bad_frame", "field 'lang' must be a language code such as \"en\"",
                   NULL, 0);
        return;
    }
    if (email && !strchr(email, '@')) {
        emit_error(chat, id, "bad_frame", "field 'email' must be an email address", NULL, 0);
        return;
    }
    json_t *ls = json_object_get(o, "last_seq");
    int64_t last_seq = -1;
    if (ls && !json_is_null(ls)) {
        if (!json_is_integer(ls) || json_integer_value(ls) < 0) {
            emit_error(chat, id, "bad_frame", "field 'last_seq' must be an integer >= 0", NULL, 0);
            return;
        }
        last_seq = json_integer_value(ls);
    }
    if (!token) {
        start_conversation(chat, k, lang, name, email, page);
        return;
    }
    int64_t now = cd_wall_s();
    if (auth_throttle_blocked(chat->throttle, k->address, now)) {
        emit_error(chat, id, "throttled", "too many bad tokens; try again later", NULL, 0);
        emit_close(chat, id, 1008, "throttled");
        return;
    }
    unsigned char hash[AUTH_HASH_LEN];
    struct store_conversation rec;
    int rc = auth_token_hash(token, strlen(token), hash);
    if (!rc)
        rc = store_conversation_by_token(chat->store, hash, &rec);
    if (!rc && !auth_equal(rec.token_hash, hash, AUTH_HASH_LEN)) {
        store_conversation_clear(&rec);
        rc = CD_ENOTFOUND;
    }
    if (rc) {
        auth_throttle_fail(chat->throttle, k->address, now);
        emit_error(chat, id, rc == CD_EINVAL || rc == CD_ENOTFOUND ? "bad_token" : "store_failed",
                   rc == CD_EINVAL || rc == CD_ENOTFOUND
                       ? "unknown conversation token; start a new conversation without one"
                       : cd_strerror(rc),
                   NULL, 0);
        return;
    }
    struct conv *c = conv_cached(chat, rec.id);
    if (c) {
        store_conversation_clear(&rec);
    } else {
        c = conv_adopt(chat, &rec);
        if (!c) {
            store_conversation_clear(&rec);
            emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
            return;
        }
    }
    int was_alone = c->n_conns == 0;
    attach(chat, k, c);
    char hex[AUTH_TOKEN_HEX + 1];
    for (int i = 0; i < AUTH_TOKEN_HEX; i++) {
        char ch = token[i];
        hex[i] = (char)(ch >= 'A' && ch <= 'F' ? ch - 'A' + 'a' : ch);
    }
    hex[AUTH_TOKEN_HEX] = '\0';
    k->is_resyncing = 1;
    emit(chat, id, welcome_frame(c, hex, 1));
    if (last_seq >= 0 && last_seq < c->rec.last_seq) {
        k->is_replaying = 1;
        k->replay_after = last_seq;
        chat->n_replaying++;
        replay_step(chat, k);
    } else {
        replay_done(chat, k);
    }
    if (was_alone && c->rec.state == STORE_STATE_WITH_AGENT)
        emit_agent(chat, c->rec.agent_id,
                   json_pack("{s:s, s:I}", "type", "customer_back", "conversation",
                             (json_int_t)c->rec.id));
}

struct dup_ctx {
    struct chat *chat;
    struct conv *conv;
    uint64_t conn;
    int n;
    int64_t seq;
    int has_reply;
};

static int dup_one(void *ctx, const struct store_message *m)
{
    struct dup_ctx *d = ctx;
    if (d->n++ == 0) {
        d->seq = m->seq;
        return 0;
    }
    d->has_reply = 1;
    emit(d->chat, d->conn, message_frame(d->chat, d->conv, m));
    return 0;
}

/* A message id that is already stored: answer as the first time (the same
 * reply, or an ack), storing nothing. */
static void resend_answer(struct chat *chat, struct conv *c, uint64_t conn, const char *client_id)
{
    struct dup_ctx d = {chat, c, conn, 0, 0, 0};
    store_message_by_client_id(chat->store, c->rec.id, client_id, dup_one, &d);
    if (!d.has_reply)
        emit(chat, conn,
             json_pack("{s:s, s:s, s:I, s:b}", "type", "ack", "reply_to", client_id, "seq",
                       (json_int_t)d.seq, "duplicate", 1));
}

/* 1 if text is a valid answer to the detail conversation c is collecting
 * (the intent's collect.regex, if it has one). *prompt gets the intent's
 * question, valid while the intent set is. */
static int collect_matches(struct chat *chat, struct conv *c, const char *text, const char **prompt)
{
    *prompt = NULL;
    if (!chat->triage)
        return 1;
    const struct intents *set = triage_intents(chat->triage);
    int i = set ? intents_find(set, c->collect_intent) : -1;
    const struct intent *in = i >= 0 ? intents_get(set, i) : NULL;
    if (!in || !in->collect.regex || !in->collect.regex[0])
        return 1;
    *prompt = in->collect.prompt;
    regex_t re;
    if (regcomp(&re, in->collect.regex, REG_EXTENDED | REG_NOSUB | REG_ICASE))
        return 1;
    int is_match = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return is_match;
}

/* message {id, text, choice?} */
static void customer_message(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *client_id, *text, *choice;
    /* The id is a string (protocol.md): a number is a wrong type, not an id. */
    if (need_str(chat, id, o, "id", 1, CLIENT_ID_MAX, &client_id, NULL) < 0)
        return;
    if (!strncmp(client_id, "agent:", 6)) {
        emit_error(chat, id, "bad_frame", "field 'id' may not start with \"agent:\"", NULL, 0);
        return;
    }
    if (need_str(chat, id, o, "text", 1, (size_t)chat->settings.max_message_bytes, &text,
                 client_id) < 0 ||
        field_str(chat, id, o, "choice", 1, INTENT_NAME_MAX - 1, &choice, client_id) < 0)
        return;
    size_t n_text = strlen(text);
    int is_blank = 1;
    for (size_t i = 0; i < n_text && is_blank; i++)
        if (text[i] != ' ' && text[i] != '\n' && text[i] != '\t' && text[i] != '\r')
            is_blank = 0;
    if (is_blank) {
        emit_error(chat, id, "bad_frame", "field 'text' is empty", client_id, 0);
        return;
    }
    struct conv *c = k->conv;
    if (!c) {
        c = start_conversation(chat, k, NULL, NULL, NULL, NULL);
        if (!c)
            return;
    }
    if (c->rec.state == STORE_STATE_CLOSED || c->rec.state == STORE_STATE_RATED) {
        emit_error(chat, id, "bad_state", "this conversation is closed; start a new one", client_id,
                   0);
        return;
    }
    char *masked = redact_text(chat->redactor, text, n_text, NULL);
    if (!masked) {
        emit_error(chat, id, "store_failed", "out of memory", client_id, 0);
        return;
    }
    int is_first_message = !conv_has_customer_message(chat, c);
    int rc = unit_begin(chat);
    int64_t seq = 0;
    if (!rc)
        rc = append_message(chat, c, STORE_SENDER_CUSTOMER, client_id, NULL, masked, NULL, 0, &seq);
    if (rc == CD_EEXIST) {
        unit_end(chat);
        resend_answer(chat, c, id, client_id);
        free(masked);
        return;
    }
    if (!rc) {
        chat->m.n_messages_in++;
        if (is_first_message) {
            c->has_customer_message = 1;
            count_outcome(chat, c, 1);
        }
        if (c->rec.state == STORE_STATE_QUEUED || c->rec.state == STORE_STATE_WITH_AGENT) {
            emit_customer_stored(chat, c,
                                 json_pack("{s:s, s:s, s:I}", "type", "ack", "reply_to", client_id,
                                           "seq", (json_int_t)seq));
            if (c->rec.state == STORE_STATE_WITH_AGENT) {
                emit_agent(chat, c->rec.agent_id,
                           json_pack("{s:s, s:I, s:I, s:s}", "type", "customer_message",
                                     "conversation", (json_int_t)c->rec.id, "seq", (json_int_t)seq,
                                     "text", masked));
            } else {
                queue_set_preview(chat->queue, c->rec.id, masked);
                chat->is_queue_dirty = 1;
            }
        } else {
            struct triage_decision d;
            memset(&d, 0, sizeof d);
            if (c->rec.state == STORE_STATE_COLLECTING) {
                /* The detail the bot asked for: hand off with it, unless it
                 * does not look like one (asked again once). */
                snprintf(d.intent, sizeof d.intent, "%s", c->collect_intent);
                snprintf(d.queue, sizeof d.queue, "%s", c->collect_queue);
                d.priority = c->collect_priority;
                d.confidence = c->rec.confidence;
                d.action = TRIAGE_HANDOFF;
                const char *prompt = NULL;
                if (!c->n_collect_tries++ && !collect_matches(chat, c, masked, &prompt) && prompt) {
                    char again[600];
                    snprintf(again, sizeof again, "Sorry, I could not read that. %s", prompt);
                    d.collect_field = strdup(c->collect_field);
                    d.collect_prompt = strdup(again);
                    d.answer = strdup(again);
                    rc = d.answer && d.collect_field && d.collect_prompt ? 0 : CD_ENOMEM;
                } else {
                    d.answer = strdup("Thank you. I'm passing you to a colleague now.");
                    rc = d.answer ? 0 : CD_ENOMEM;
                }
            } else {
                int is_choice = 0;
                for (int i = 0; choice && i < c->n_choices; i++)
                    if (!strcmp(choice, c->choices[i]))
                        is_choice = 1;
                rc = is_choice ? decide_choice(chat, choice, &d) : CD_ENOTFOUND;
                if (rc) {
                    triage_decision_clear(&d);
                    memset(&d, 0, sizeof d);
                    rc = decide(chat, c, masked, strlen(masked), &d);
                }
                if (rc == CD_EINVAL) {
                    triage_decision_clear(&d);
                    unit_undo(chat);
                    emit_error(chat, id, "bad_utf8", "text is not valid UTF-8", client_id, 0);
                    free(masked);
                    return;
                }
            }
            if (!rc) {
                update_context(c, &d);
                rc = bot_reply(chat, c, client_id, seq, masked, &d);
            }
            triage_decision_clear(&d);
        }
    }
    free(masked);
    if (rc) {
        unit_undo(chat);
        chat->m.n_store_errors++;
        emit_error(chat, id, "store_failed", cd_strerror(rc), client_id, 0);
        return;
    }
    unit_end(chat);
}

struct bot_msg_ctx {
    int is_bot;
    int64_t question_seq;
    char article[KB_ID_MAX];
    char *question;
};

static int read_bot_msg(void *ctx, const struct store_message *m)
{
    struct bot_msg_ctx *b = ctx;
    if (m->sender != STORE_SENDER_BOT)
        return 0;
    b->is_bot = 1;
    json_t *meta = m->meta ? json_loads(m->meta, 0, NULL) : NULL;
    json_t *qs = meta ? json_object_get(meta, "question_seq") : NULL;
    b->question_seq = json_is_integer(qs) ? json_integer_value(qs) : 0;
    json_t *a = meta ? json_array_get(json_object_get(meta, "articles"), 0) : NULL;
    const char *aid = a ? json_string_value(json_object_get(a, "id")) : NULL;
    snprintf(b->article, sizeof b->article, "%s", aid ? aid : "");
    json_decref(meta);
    return 0;
}

static int read_question(void *ctx, const struct store_message *m)
{
    struct bot_msg_ctx *b = ctx;
    if (m->sender == STORE_SENDER_CUSTOMER && !b->question)
        b->question = strdup(m->text);
    return 0;
}

static void defer_learn(struct chat *chat, const char *question, const char *article)
{
    if (!chat->kb || !question || !article[0])
        return;
    if (chat->n_learns == chat->cap_learns) {
        int cap = chat->cap_learns ? chat->cap_learns * 2 : 8;
        struct pending_learn *l = realloc(chat->learns, (size_t)cap * sizeof *l);
        if (!l)
            return;
        chat->learns = l;
        chat->cap_learns = cap;
    }
    struct pending_learn *l = &chat->learns[chat->n_learns];
    l->question = strdup(question);
    if (!l->question)
        return;
    snprintf(l->article, sizeof l->article, "%s", article);
    chat->n_learns++;
}

/* feedback {seq, helpful} */
static void customer_feedback(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    struct conv *c = k->conv;
    int64_t seq;
    if (need_int(chat, id, o, "seq", 1, INT64_MAX, &seq) < 0)
        return;
    json_t *h = json_object_get(o, "helpful");
    if (!json_is_boolean(h)) {
        emit_error(chat, id, "bad_frame", "field 'helpful' must be true or false", NULL, 0);
        return;
    }
    int is_helpful = json_is_true(h);
    struct bot_msg_ctx b;
    memset(&b, 0, sizeof b);
    if (seq <= c->rec.last_seq)
        store_messages_after(chat->store, c->rec.id, seq - 1, 1, read_bot_msg, &b);
    if (!b.is_bot) {
        emit_error(chat, id, "bad_frame", "field 'seq' is not a bot reply in this conversation",
                   NULL, 0);
        return;
    }
    if (b.question_seq > 0)
        store_messages_after(chat->store, c->rec.id, b.question_seq - 1, 1, read_question, &b);
    int rc = unit_begin(chat);
    if (!rc)
        rc = store_feedback_add(chat->store, c->rec.id, seq, is_helpful,
                                b.article[0] ? b.article : NULL, b.question);
    if (!rc && !is_helpful && b.question && is_unanswered(chat, NULL, c->rec.intent))
        rc = store_unanswered_add(chat->store, c->rec.id, b.question, c->rec.lang, c->rec.intent,
                                  c->rec.confidence);
    if (rc)
        goto fail;
    emit_customer(chat, c,
                  json_pack("{s:s, s:I, s:b}", "type", "feedback_ok", "seq", (json_int_t)seq,
                            "helpful", is_helpful));
    if (is_helpful) {
        defer_learn(chat, b.question, b.article);
    } else if (c->rec.state == STORE_STATE_BOT || c->rec.state == STORE_STATE_CLARIFYING) {
        /* "No": ask again with the policy's view of a conversation that did
         * not help: clarify among the candidates, or hand off. */
        c->tctx.n_not_helped++;
        struct triage_decision d;
        memset(&d, 0, sizeof d);
        const char *q = b.question ? b.question : "";
        rc = decide(chat, c, q, strlen(q), &d);
        if (!rc && d.action == TRIAGE_ANSWER) {
            /* The same kind of answer did not help: offer the candidates if
             * there is a real choice, else a person. */
            if (d.n_candidates >= 2) {
                d.action = TRIAGE_CLARIFY;
                free(d.answer);
                d.answer = strdup("Sorry about that. Which of these is closest?");
            } else {
                d.action = TRIAGE_HANDOFF;
                free(d.answer);
                d.answer = strdup("Sorry that did not help. Let me connect you with a person.");
            }
            d.n_articles = d.action == TRIAGE_CLARIFY ? 0 : d.n_articles;
            rc = d.answer ? 0 : CD_ENOMEM;
        }
        if (!rc) {
            if (d.action == TRIAGE_HANDOFF && !d.queue[0])
                snprintf(d.queue, sizeof d.queue, "general");
            rc = bot_reply(chat, c, NULL, b.question_seq, NULL, &d);
        }
        triage_decision_clear(&d);
        if (rc)
            goto fail;
    }
    free(b.question);
    unit_end(chat);
    return;
fail:
    free(b.question);
    unit_undo(chat);
    chat->m.n_store_errors++;
    emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, 0);
}

/* The priority of a customer's explicit request for a person: that of the person-request
 * intent (in the conversation's language if there is one), so the "Talk to a person" button
 * and typing "I want to talk to a person" queue alike; 3 without such an intent. */
static int person_request_priority(const struct chat *chat, const char *lang)
{
    const struct intents *set = chat->triage ? triage_intents(chat->triage) : NULL;
    int priority = 0, n = set ? intents_count(set) : 0;
    for (int i = 0; i < n; i++) {
        const struct intent *in = intents_get(set, i);
        if (!in || !in->is_person_request || in->priority <= 0)
            continue;
        int is_same_lang = in->lang && lang && !strcmp(in->lang, lang);
        if (is_same_lang)
            return in->priority;
        if (!priority)
            priority = in->priority;
    }
    return priority > 0 ? priority : 3;
}

/* handoff {} */
static void customer_handoff(struct chat *chat, struct conn *k)
{
    struct conv *c = k->conv;
    if (c->rec.state == STORE_STATE_QUEUED) {
        emit(chat, k->node.key, queued_frame(chat, c, 0));
        return;
    }
    if (c->rec.state != STORE_STATE_BOT && c->rec.state != STORE_STATE_CLARIFYING &&
        c->rec.state != STORE_STATE_COLLECTING) {
        emit_error(chat, k->node.key, "bad_state",
                   c->rec.state == STORE_STATE_WITH_AGENT ? "an agent already has this chat"
                                                          : "this conversation is closed",
                   NULL, 0);
        return;
    }
    struct triage_decision d;
    memset(&d, 0, sizeof d);
    d.action = TRIAGE_HANDOFF;
    snprintf(d.intent, sizeof d.intent, "human");
    d.confidence = 1.0;
    d.priority = person_request_priority(chat, c->rec.lang);
    /* Route by what the conversation is about, if the bot knows; the priority is that of
     * the request itself, not of the intent before it (a greeting is not urgent, nor is it
     * a reason to wait longer). */
    const char *q = c->collect_queue[0] ? c->collect_queue : "general";
    if (chat->triage && c->last_intent[0]) {
        const struct intents *set = triage_intents(chat->triage);
        int i = set ? intents_find(set, c->last_intent) : -1;
        const struct intent *in = i >= 0 ? intents_get(set, i) : NULL;
        if (in && in->queue)
            q = in->queue;
    }
    snprintf(d.queue, sizeof d.queue, "%s", q);
    d.answer = strdup("I'm connecting you with a person.");
    int rc = d.answer ? unit_begin(chat) : CD_ENOMEM;
    if (!rc)
        rc = bot_reply(chat, c, NULL, 0, NULL, &d);
    triage_decision_clear(&d);
    if (rc) {
        unit_undo(chat);
        chat->m.n_store_errors++;
        emit_error(chat, k->node.key, "store_failed", cd_strerror(rc), NULL, 0);
        return;
    }
    unit_end(chat);
}

/* contact {email?, name?} */
static void customer_contact(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    struct conv *c = k->conv;
    const char *email, *name;
    if (field_str(chat, id, o, "email", 3, EMAIL_MAX_BYTES, &email, NULL) < 0 ||
        field_str(chat, id, o, "name", 1, NAME_MAX_BYTES, &name, NULL) < 0)
        return;
    if (!email && !name) {
        emit_error(chat, id, "bad_frame", "send 'email' or 'name'", NULL, 0);
        return;
    }
    if (email && !strchr(email, '@')) {
        emit_error(chat, id, "bad_frame", "field 'email' must be an email address", NULL, 0);
        return;
    }
    char *new_email = email ? redact_email_field(chat->redactor, email) : NULL;
    char *new_name = name ? redact_text(chat->redactor, name, strlen(name), NULL) : NULL;
    if ((email && !new_email) || (name && !new_name)) {
        free(new_email);
        free(new_name);
        emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
        return;
    }
    char *old_email = c->rec.customer_email, *old_name = c->rec.customer_name;
    if (new_email)
        c->rec.customer_email = new_email;
    if (new_name)
        c->rec.customer_name = new_name;
    int rc = unit_begin(chat);
    if (!rc)
        rc = save_conv(chat, c);
    if (rc) {
        unit_undo(chat);
        c->rec.customer_email = old_email;
        c->rec.customer_name = old_name;
        free(new_email);
        free(new_name);
        emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, 0);
        return;
    }
    unit_end(chat);
    if (new_email)
        free(old_email);
    if (new_name)
        free(old_name);
    json_t *ok = json_pack("{s:s}", "type", "contact_ok");
    if (ok && email)
        json_object_set_new(ok, "email", json_string(c->rec.customer_email));
    if (ok && name)
        json_object_set_new(ok, "name", json_string(c->rec.customer_name));
    emit_customer(chat, c, ok);
}

/* Ends a conversation (by "customer", "agent" or "system"). The agent who
 * had it is told and released. Returns 0 or CD_E*; nothing changes on error. */
static int close_conversation(struct chat *chat, struct conv *c, const char *by,
                              const char *disposition, const char *note)
{
    struct store_conversation old = c->rec;
    char *new_note = note ? strdup(note) : NULL;
    if (note && !new_note)
        return CD_ENOMEM;
    int was_queued = c->rec.state == STORE_STATE_QUEUED;
    int64_t agent = c->rec.state == STORE_STATE_WITH_AGENT ? c->rec.agent_id : 0;
    c->rec.state = STORE_STATE_CLOSED;
    c->rec.closed_s = cd_wall_s();
    snprintf(c->rec.closed_by, sizeof c->rec.closed_by, "%s", by);
    if (disposition)
        snprintf(c->rec.disposition, sizeof c->rec.disposition, "%s", disposition);
    if (new_note)
        c->rec.note = new_note;
    int64_t seq = 0;
    int rc =
        append_event(chat, c, "closed", "Conversation closed", json_pack("{s:s}", "by", by), &seq);
    if (!rc)
        rc = save_conv(chat, c);
    if (rc) {
        if (new_note)
            c->rec.note = old.note;
        free(new_note);
        c->rec.state = old.state;
        c->rec.closed_s = old.closed_s;
        memcpy(c->rec.closed_by, old.closed_by, sizeof c->rec.closed_by);
        memcpy(c->rec.disposition, old.disposition, sizeof c->rec.disposition);
        return rc;
    }
    if (new_note)
        free(old.note);
    if (was_queued) {
        queue_remove(chat->queue, c->rec.id);
        chat->is_queue_dirty = 1;
    }
    if (agent) {
        queue_agent_release(chat->queue, agent);
        chat->is_queue_dirty = 1; /* capacity freed: auto-assignment may go on */
        if (strcmp(by, "agent"))
            emit_agent(chat, agent,
                       json_pack("{s:s, s:I, s:s}", "type", "customer_left", "conversation",
                                 (json_int_t)c->rec.id, "reason", "closed"));
        emit_agent(
            chat, agent,
            json_pack("{s:s, s:I}", "type", "closed", "conversation", (json_int_t)c->rec.id));
    }
    if (disposition)
        store_event_add(chat->store, "wrap_up", c->rec.id, agent, NULL);
    emit_customer_stored(
        chat, c, json_pack("{s:s, s:I, s:s}", "type", "closed", "seq", (json_int_t)seq, "by", by));
    emit_customer_stored(chat, c, json_pack("{s:s, s:i}", "type", "rating_request", "scale", 5));
    return 0;
}

/* close {} */
static void customer_close(struct chat *chat, struct conn *k)
{
    struct conv *c = k->conv;
    if (c->rec.state == STORE_STATE_CLOSED || c->rec.state == STORE_STATE_RATED) {
        emit_error(chat, k->node.key, "bad_state", "this conversation is already closed", NULL, 0);
        return;
    }
    int rc = unit_begin(chat);
    if (!rc)
        rc = close_conversation(chat, c, "customer", NULL, NULL);
    if (rc) {
        unit_undo(chat);
        chat->m.n_store_errors++;
        emit_error(chat, k->node.key, "store_failed", cd_strerror(rc), NULL, 0);
        return;
    }
    unit_end(chat);
}

/* rating {score, comment?} */
static void customer_rating(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    struct conv *c = k->conv;
    json_t *sv = json_object_get(o, "score");
    const char *comment;
    if (!json_is_integer(sv) || json_integer_value(sv) < 1 || json_integer_value(sv) > 5) {
        emit_error(chat, id, "bad_frame", "field 'score' must be an integer from 1 to 5", NULL, 0);
        return;
    }
    if (field_str(chat, id, o, "comment", 0, NOTE_MAX_BYTES, &comment, NULL) < 0)
        return;
    if (c->rec.state != STORE_STATE_CLOSED) {
        emit_error(chat, id, "bad_state",
                   c->rec.state == STORE_STATE_RATED ? "this conversation is already rated"
                                                     : "rate the conversation after it is closed",
                   NULL, 0);
        return;
    }
    char *masked = comment ? redact_text(chat->redactor, comment, strlen(comment), NULL) : NULL;
    if (comment && !masked) {
        emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
        return;
    }
    char *old_comment = c->rec.comment;
    int score = (int)json_integer_value(sv);
    c->rec.rating = score;
    c->rec.state = STORE_STATE_RATED;
    if (masked)
        c->rec.comment = masked;
    int rc = unit_begin(chat);
    if (!rc)
        rc = save_conv(chat, c);
    if (rc) {
        unit_undo(chat);
        c->rec.rating = 0;
        c->rec.state = STORE_STATE_CLOSED;
        c->rec.comment = old_comment;
        free(masked);
        emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, 0);
        return;
    }
    unit_end(chat);
    if (masked)
        free(old_comment);
    emit_customer(chat, c, json_pack("{s:s, s:i}", "type", "rating_ok", "score", score));
    if (c->rec.agent_id) {
        json_t *r = json_pack("{s:s, s:I, s:i}", "type", "rating", "conversation",
                              (json_int_t)c->rec.id, "score", score);
        if (r && c->rec.comment)
            json_object_set_new(r, "comment", json_string(c->rec.comment));
        emit_agent(chat, c->rec.agent_id, r);
    }
}

/* typing {} */
static void customer_typing(struct chat *chat, struct conn *k)
{
    struct conv *c = k->conv;
    if (c->rec.state == STORE_STATE_WITH_AGENT)
        emit_agent(chat, c->rec.agent_id,
                   json_pack("{s:s, s:I, s:s}", "type", "typing", "conversation",
                             (json_int_t)c->rec.id, "from", "customer"));
}

/* Parses a frame: size cap, UTF-8, JSON object with a string "type".
 * Returns the object (caller decrefs) and *type, or NULL (error emitted). */
static json_t *parse_frame(struct chat *chat, uint64_t conn, const char *text, size_t len,
                           const char **type)
{
    size_t cap = (size_t)chat->settings.max_message_bytes * 2 + 4096;
    if (len > cap) {
        emit_error(chat, conn, "too_big", "frame is over the size limit", NULL, 0);
        return NULL;
    }
    if (!cd_utf8_valid(text, len)) {
        emit_error(chat, conn, "bad_utf8", "frame is not valid UTF-8", NULL, 0);
        return NULL;
    }
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        char msg[256];
        if (o)
            snprintf(msg, sizeof msg, "frame must be a JSON object");
        else
            snprintf(msg, sizeof msg, "malformed JSON: %s", je.text);
        json_decref(o);
        emit_error(chat, conn, "bad_json", msg, NULL, 0);
        return NULL;
    }
    json_t *t = json_object_get(o, "type");
    if (!json_is_string(t)) {
        char msg[96];
        if (t)
            snprintf(msg, sizeof msg, "field 'type' must be a string (got %s)", cd_json_kind(t));
        else
            snprintf(msg, sizeof msg, "missing field 'type'");
        json_decref(o);
        emit_error(chat, conn, "bad_frame", msg, NULL, 0);
        return NULL;
    }
    *type = json_string_value(t);
    return o;
}

static struct conn *conn_new(struct chat *chat, uint64_t id, enum conn_kind kind,
                             const struct chat_peer *peer)
{
    struct conn *old = conn_get(chat, id);
    if (old) /* the transport reused an id without closing: start over */
        return NULL;
    struct conn *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->node.key = id;
    k->kind = kind;
    snprintf(k->address, sizeof k->address, "%s", peer && peer->address ? peer->address : "");
    if (h_put(&chat->conns, &k->node)) {
        free(k);
        return NULL;
    }
    return k;
}

void chat_customer_open(struct chat *chat, uint64_t conn, const struct chat_peer *peer)
{
    if (conn_new(chat, conn, CONN_CUSTOMER, peer))
        chat->m.n_customer_connections++;
}

void chat_customer_frame(struct chat *chat, uint64_t conn, const char *text, size_t len)
{
    struct conn *k = conn_get(chat, conn);
    if (!k || k->kind != CONN_CUSTOMER || k->is_closing)
        return;
    const char *type = NULL;
    json_t *o = parse_frame(chat, conn, text, len, &type);
    if (!o)
        return;
    if (!strcmp(type, "hello")) {
        customer_hello(chat, k, o);
    } else if (!strcmp(type, "message")) {
        customer_message(chat, k, o);
    } else if (!strcmp(type, "feedback") || !strcmp(type, "handoff") || !strcmp(type, "typing") ||
               !strcmp(type, "rating") || !strcmp(type, "close") || !strcmp(type, "contact")) {
        if (!k->conv)
            emit_error(chat, conn, "no_conversation",
                       "send 'hello' or a 'message' to start a conversation first", NULL, 0);
        else if (!strcmp(type, "feedback"))
            customer_feedback(chat, k, o);
        else if (!strcmp(type, "handoff"))
            customer_handoff(chat, k);
        else if (!strcmp(type, "typing"))
            customer_typing(chat, k);
        else if (!strcmp(type, "rating"))
            customer_rating(chat, k, o);
        else if (!strcmp(type, "close"))
            customer_close(chat, k);
        else
            customer_contact(chat, k, o);
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown frame type '%.60s'", type);
        emit_error(chat, conn, "unknown_type", msg, NULL, 0);
    }
    json_decref(o);
}

static void detach(struct chat *chat, struct conn *k)
{
    if (k->is_replaying) {
        k->is_replaying = 0;
        chat->n_replaying--;
    }
    struct conv *c = k->conv;
    if (!c)
        return;
    for (struct conn **p = &c->conns; *p; p = &(*p)->next_in_conv)
        if (*p == k) {
            *p = k->next_in_conv;
            c->n_conns--;
            break;
        }
    k->conv = NULL;
}

static void drop_conn(struct chat *chat, struct conn *k)
{
    h_del(&chat->conns, &k->node);
    free(k);
}

void chat_customer_closed(struct chat *chat, uint64_t conn)
{
    struct conn *k = conn_get(chat, conn);
    if (!k || k->kind != CONN_CUSTOMER)
        return;
    struct conv *c = k->conv;
    detach(chat, k);
    if (c) {
        touch(chat, c);
        if (c->n_conns == 0 && c->rec.state == STORE_STATE_WITH_AGENT)
            emit_agent(chat, c->rec.agent_id,
                       json_pack("{s:s, s:I, s:s}", "type", "customer_left", "conversation",
                                 (json_int_t)c->rec.id, "reason", "disconnected"));
    }
    chat->m.n_customer_connections--;
    drop_conn(chat, k);
}

/* ---- agent frames ---- */

static json_t *agent_json(struct chat *chat, const struct conn *k)
{
    const struct queue_agent *a = queue_agent_get(chat->queue, k->agent.id);
    json_t *skills = json_array();
    const char *p = k->agent.skills;
    while (skills && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(skills, json_stringn(p, n));
        p = end ? end + 1 : p + n;
    }
    return json_pack("{s:I, s:s, s:s, s:o, s:i, s:b}", "id", (json_int_t)k->agent.id, "name",
                     k->agent.name, "role", auth_role_name(k->agent.role), "skills", skills,
                     "capacity", a ? a->capacity : chat->settings.agent_capacity, "available",
                     a ? a->is_available : 1);
}

struct transcript_ctx {
    json_t *items;
    json_t *last_articles;
};

static int transcript_one(void *ctx, const struct store_message *m)
{
    struct transcript_ctx *t = ctx;
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:I}", "seq", (json_int_t)m->seq, "sender",
                  store_sender_name(m->sender), "text", m->text, "at", (json_int_t)m->created_s);
    json_t *meta = m->meta ? json_loads(m->meta, 0, NULL) : NULL;
    if (o && meta) {
        const char *keys[] = {"action", "intent", "confidence", "articles", "event", "agent"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_t *v = json_object_get(meta, keys[i]);
            if (v)
                json_object_set(o, keys[i], v);
        }
        json_t *a = json_object_get(meta, "articles");
        if (m->sender == STORE_SENDER_BOT && json_array_size(a) > 0) {
            json_decref(t->last_articles);
            t->last_articles = json_incref(a);
        }
    }
    json_decref(meta);
    if (o)
        json_array_append_new(t->items, o);
    return 0;
}

static void emit_assigned(struct chat *chat, struct conv *c, uint64_t conn)
{
    struct transcript_ctx t = {json_array(), NULL};
    if (!t.items)
        return;
    /* The most recent TRANSCRIPT_MAX messages. */
    int64_t after = c->rec.last_seq > TRANSCRIPT_MAX ? c->rec.last_seq - TRANSCRIPT_MAX : 0;
    store_messages_after(chat->store, c->rec.id, after, TRANSCRIPT_MAX, transcript_one, &t);
    json_t *history = json_array();
    struct store_history_item h[HISTORY_MAX];
    int n_h = 0;
    if (c->rec.customer_email)
        store_conversations_by_email(chat->store, c->rec.customer_email, c->rec.id, h, HISTORY_MAX,
                                     &n_h);
    for (int i = 0; history && i < n_h; i++)
        json_array_append_new(history, json_pack("{s:I, s:I, s:s, s:s, s:s}", "conversation",
                                                 (json_int_t)h[i].conversation, "created",
                                                 (json_int_t)h[i].created_s, "state",
                                                 store_state_name(h[i].state), "intent",
                                                 h[i].intent, "disposition", h[i].disposition));
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:o, s:{s:s?, s:f, s:o}, s:{s:s?, s:s?, s:s?, s:s, s:o}}", "type",
        "assigned", "conversation", (json_int_t)c->rec.id, "queue", c->rec.queue, "transcript",
        t.items, "triage", "intent", c->rec.intent[0] ? c->rec.intent : NULL, "confidence",
        c->rec.confidence, "articles", t.last_articles ? t.last_articles : json_array(), "customer",
        "name", c->rec.customer_name, "email", c->rec.customer_email, "page", c->rec.customer_page,
        "lang", c->rec.lang, "history", history);
    emit(chat, conn, o);
}

/* Hands conversation c to agent agent_id (who claimed it, or was chosen by
 * auto-assignment). Returns 0, CD_ENOTFOUND (not waiting), CD_EBUSY (at
 * capacity) or CD_E*. */
static int assign(struct chat *chat, struct conv *c, int64_t agent_id)
{
    int64_t now = cd_wall_s();
    const struct queue_item *it = queue_find(chat->queue, c->rec.id);
    if (!it)
        return CD_ENOTFOUND;
    int64_t waited = now - it->enqueued_s;
    struct queue_item saved = *it;
    int rc = queue_claim(chat->queue, c->rec.id, agent_id, now);
    if (rc)
        return rc;
    rc = unit_begin(chat);
    if (!rc)
        rc = store_conversation_claim(chat->store, c->rec.id, agent_id, now);
    int64_t seq = 0;
    char name[64];
    agent_name_of(chat, agent_id, name, sizeof name);
    if (!rc) {
        char text[128];
        snprintf(text, sizeof text, "%s joined", name);
        rc = append_event(chat, c, "agent_joined", text, json_pack("{s:s}", "agent", name), &seq);
    }
    if (rc) {
        unit_undo(chat);
        queue_agent_release(chat->queue, agent_id);
        queue_push(chat->queue, &saved);
        return rc == CD_EBUSY ? CD_ENOTFOUND : rc;
    }
    unit_end(chat);
    c->rec.state = STORE_STATE_WITH_AGENT;
    c->rec.agent_id = agent_id;
    c->rec.is_offline = 0;
    if (!c->rec.picked_s)
        c->rec.picked_s = now;
    snprintf(c->agent_name, sizeof c->agent_name, "%s", name);
    touch(chat, c);
    chat->is_queue_dirty = 1;
    chat->m.n_picked++;
    if (waited <= chat->settings.pickup_target_s)
        chat->m.n_picked_within_target++;
    int b = 0;
    while (b < CHAT_WAIT_BUCKETS - 1 && (double)waited > chat_wait_bounds_s[b])
        b++;
    chat->m.wait_buckets[b]++;
    chat->m.wait_sum_s += (double)waited;
    store_event_add(chat->store, "pickup", c->rec.id, agent_id, NULL);
    for (struct conn *k = chat->agents; k; k = k->next_agent)
        if (k->agent.id == agent_id)
            emit_assigned(chat, c, k->node.key);
    emit_customer_stored(chat, c,
                         json_pack("{s:s, s:I, s:s}", "type", "agent_joined", "seq",
                                   (json_int_t)seq, "agent", name));
    return 0;
}

/* The conversation named by an agent frame's "conversation" field, which
 * this agent must have. Returns NULL (error emitted) otherwise. */
static struct conv *agent_conv(struct chat *chat, struct conn *k, json_t *o)
{
    int64_t id;
    if (need_int(chat, k->node.key, o, "conversation", 1, INT64_MAX, &id) < 0)
        return NULL;
    struct conv *c = conv_cached(chat, id);
    if (!c || c->rec.state != STORE_STATE_WITH_AGENT ||
        (c->rec.agent_id != k->agent.id && k->agent.role != AUTH_ROLE_ADMIN)) {
        emit_error(chat, k->node.key, c ? "not_assigned" : "not_found",
                   c ? "you do not have this conversation" : "no such open conversation", NULL, id);
        return NULL;
    }
    return c;
}

static void agent_auth(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *token;
    if (need_str(chat, id, o, "token", 1, 256, &token, NULL) < 0) {
        emit_close(chat, id, 1008, "bad token");
        return;
    }
    int rc = auth_check_user(chat->store, chat->throttle, k->address, token, strlen(token),
                             cd_wall_s(), &k->agent);
    if (rc == CD_EBUSY) {
        emit_error(chat, id, "throttled", "too many bad tokens; try again later", NULL, 0);
        emit_close(chat, id, 1008, "throttled");
        return;
    }
    if (rc) {
        emit_error(chat, id, rc == CD_EPERM ? "bad_token" : "store_failed",
                   rc == CD_EPERM ? "unknown or revoked token" : cd_strerror(rc), NULL, 0);
        emit_close(chat, id, 1008, "bad token");
        return;
    }
    if (k->agent.role != AUTH_ROLE_AGENT && k->agent.role != AUTH_ROLE_ADMIN) {
        emit_error(chat, id, "forbidden", "this account's role cannot take chats", NULL, 0);
        emit_close(chat, id, 1008, "forbidden");
        return;
    }
    if (queue_agent_online(chat->queue, k->agent.id, k->agent.name, k->agent.skills,
                           chat->settings.agent_capacity)) {
        emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
        return;
    }
    k->is_authed = 1;
    k->next_agent = chat->agents;
    if (chat->agents)
        chat->agents->prev_agent = k;
    chat->agents = k;
    chat->m.n_agent_connections++;
    json_t *queues = json_array();
    const char *p = queue_names(chat->queue);
    while (queues && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(queues, json_stringn(p, n));
        p = end ? end + 1 : p + n;
    }
    emit(chat, id,
         json_pack("{s:s, s:o, s:o, s:o}", "type", "ready", "agent", agent_json(chat, k), "queue",
                   queue_items_json(chat), "queues", queues));
    /* The chats this agent already has (console reload, server restart). */
    for (size_t i = 0; i < chat->convs.n_buckets; i++)
        for (struct hnode *n = chat->convs.buckets[i]; n; n = n->next) {
            struct conv *c = (struct conv *)n;
            if (c->rec.state == STORE_STATE_WITH_AGENT && c->rec.agent_id == k->agent.id)
                emit_assigned(chat, c, id);
        }
    chat->is_queue_dirty = 1; /* estimates and auto-assignment change */
}

static void agent_claim(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    int64_t conv_id;
    if (need_int(chat, id, o, "conversation", 1, INT64_MAX, &conv_id) < 0)
        return;
    struct conv *c = conv_cached(chat, conv_id);
    if (!c || (c->rec.state != STORE_STATE_QUEUED && c->rec.state != STORE_STATE_WITH_AGENT)) {
        emit_error(chat, id, "not_found", "no such waiting conversation", NULL, conv_id);
        return;
    }
    if (c->rec.state == STORE_STATE_WITH_AGENT) {
        char msg[128];
        snprintf(msg, sizeof msg, "conversation %lld was taken by %s", (long long)conv_id,
                 c->rec.agent_id == k->agent.id ? "you already" : "another agent");
        emit_error(chat, id, "already_claimed", msg, NULL, conv_id);
        return;
    }
    int rc = assign(chat, c, k->agent.id);
    if (rc == CD_EBUSY)
        emit_error(chat, id, "at_capacity", "you already have as many chats as you can take", NULL,
                   conv_id);
    else if (rc == CD_ENOTFOUND)
        emit_error(chat, id, "already_claimed", "another agent took it first", NULL, conv_id);
    else if (rc) {
        chat->m.n_store_errors++;
        emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, conv_id);
    }
}

static void agent_message(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    /* The fields first: a frame of the wrong shape is bad_frame whatever the state. */
    const char *client_id, *text;
    if (need_str(chat, id, o, "id", 1, AGENT_ID_MAX, &client_id, NULL) < 0 ||
        need_str(chat, id, o, "text", 1, (size_t)chat->settings.max_message_bytes, &text, NULL) < 0)
        return;
    struct conv *c = agent_conv(chat, k, o);
    if (!c)
        return;
    char *masked = redact_text(chat->redactor, text, strlen(text), NULL);
    if (!masked) {
        emit_error(chat, id, "store_failed", "out of memory", NULL, c->rec.id);
        return;
    }
    char *meta = NULL;
    json_t *mj = json_pack("{s:s}", "agent", k->agent.name);
    meta = mj ? json_dumps(mj, JSON_COMPACT) : NULL;
    json_decref(mj);
    /* Agent ids share the conversation's id space with the customer's:
     * "agent:ID:" is a prefix customer ids may not use, so the two never
     * collide; ids are at most AGENT_ID_MAX so the prefix always fits. */
    char scoped[CLIENT_ID_MAX + 1];
    snprintf(scoped, sizeof scoped, "agent:%lld:%s", (long long)k->agent.id, client_id);
    int64_t seq = 0;
    int rc = meta ? unit_begin(chat) : CD_ENOMEM;
    if (!rc)
        rc = append_message(chat, c, STORE_SENDER_AGENT, scoped, NULL, masked, meta, k->agent.id,
                            &seq);
    free(meta);
    if (rc == CD_EEXIST) {
        unit_end(chat);
        emit(chat, id,
             json_pack("{s:s, s:I, s:s, s:I, s:b}", "type", "ack", "conversation",
                       (json_int_t)c->rec.id, "reply_to", client_id, "seq", (json_int_t)seq,
                       "duplicate", 1));
        free(masked);
        return;
    }
    if (rc) {
        unit_undo(chat);
        free(masked);
        chat->m.n_store_errors++;
        emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, c->rec.id);
        return;
    }
    unit_end(chat);
    chat->m.n_agent_messages++;
    emit_customer_stored(chat, c,
                         json_pack("{s:s, s:I, s:s, s:s}", "type", "agent_message", "seq",
                                   (json_int_t)seq, "text", masked, "agent", k->agent.name));
    emit(chat, id,
         json_pack("{s:s, s:I, s:s, s:I}", "type", "ack", "conversation", (json_int_t)c->rec.id,
                   "reply_to", client_id, "seq", (json_int_t)seq));
    free(masked);
}

static void agent_close(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *disposition, *note;
    if (need_str(chat, id, o, "disposition", 1, STORE_NAME_MAX - 1, &disposition, NULL) < 0 ||
        field_str(chat, id, o, "note", 0, NOTE_MAX_BYTES, &note, NULL) < 0)
        return;
    struct conv *c = agent_conv(chat, k, o);
    if (!c)
        return;
    char *masked = note ? redact_text(chat->redactor, note, strlen(note), NULL) : NULL;
    int rc = note && !masked ? CD_ENOMEM : unit_begin(chat);
    if (!rc)
        rc = close_conversation(chat, c, "agent", disposition, masked);
    free(masked);
    if (rc) {
        unit_undo(chat);
        chat->m.n_store_errors++;
        emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, c->rec.id);
        return;
    }
    unit_end(chat);
}

/* Puts a chat that an agent had back into a queue (transfer, or the agent
 * went away). Returns 0 or CD_E*. */
static int requeue(struct chat *chat, struct conv *c, const char *queue_arg, const char *why)
{
    char queue_name[QUEUE_NAME_MAX];
    snprintf(queue_name, sizeof queue_name, "%s", queue_arg); /* may be c->rec.queue itself */
    int64_t agent = c->rec.agent_id;
    struct store_conversation old = c->rec;
    int64_t seq = 0;
    char text[128];
    snprintf(text, sizeof text, "%s: back to queue %s", why, queue_name);
    c->rec.state = STORE_STATE_QUEUED;
    snprintf(c->rec.queue, sizeof c->rec.queue, "%s", queue_name);
    c->rec.agent_id = 0;
    int rc = append_event(chat, c, why, text, json_pack("{s:s}", "queue", queue_name), &seq);
    if (!rc)
        rc = save_conv(chat, c);
    if (rc) {
        c->rec.state = old.state;
        memcpy(c->rec.queue, old.queue, sizeof c->rec.queue);
        c->rec.agent_id = old.agent_id;
        return rc;
    }
    queue_agent_release(chat->queue, agent);
    struct queue_item it;
    queue_item_of(c, &it);
    it.priority = 1; /* already waited once: to the front */
    queue_push(chat->queue, &it);
    chat->is_queue_dirty = 1;
    emit_customer_stored(chat, c, queued_frame(chat, c, seq));
    return 0;
}

static void agent_transfer(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *q;
    if (need_str(chat, id, o, "queue", 1, QUEUE_NAME_MAX - 1, &q, NULL) < 0)
        return;
    struct conv *c = agent_conv(chat, k, o);
    if (!c)
        return;
    if (!queue_exists(chat->queue, q)) {
        char msg[192];
        snprintf(msg, sizeof msg, "no queue named '%.40s' (queues: %.60s)", q,
                 queue_names(chat->queue));
        emit_error(chat, id, "not_found", msg, NULL, c->rec.id);
        return;
    }
    int64_t agent = c->rec.agent_id;
    int rc = unit_begin(chat);
    if (!rc)
        rc = requeue(chat, c, q, "transferred");
    if (rc) {
        unit_undo(chat);
        emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, c->rec.id);
        return;
    }
    unit_end(chat);
    emit_agent(chat, agent,
               json_pack("{s:s, s:I, s:s}", "type", "transferred", "conversation",
                         (json_int_t)c->rec.id, "queue", q));
}

void chat_agent_open(struct chat *chat, uint64_t conn, const struct chat_peer *peer)
{
    conn_new(chat, conn, CONN_AGENT, peer);
}

void chat_agent_frame(struct chat *chat, uint64_t conn, const char *text, size_t len)
{
    struct conn *k = conn_get(chat, conn);
    if (!k || k->kind != CONN_AGENT || k->is_closing)
        return;
    const char *type = NULL;
    json_t *o = parse_frame(chat, conn, text, len, &type);
    if (!o)
        return;
    if (!strcmp(type, "auth")) {
        if (k->is_authed)
            emit_error(chat, conn, "bad_state", "already signed in", NULL, 0);
        else
            agent_auth(chat, k, o);
    } else if (!k->is_authed) {
        emit_error(chat, conn, "not_authenticated", "send 'auth' with your token first", NULL, 0);
        emit_close(chat, conn, 1008, "not authenticated");
    } else if (!strcmp(type, "claim")) {
        agent_claim(chat, k, o);
    } else if (!strcmp(type, "message")) {
        agent_message(chat, k, o);
    } else if (!strcmp(type, "typing")) {
        struct conv *c = agent_conv(chat, k, o);
        if (c)
            emit_customer(chat, c, json_pack("{s:s, s:s}", "type", "typing", "from", "agent"));
    } else if (!strcmp(type, "close")) {
        agent_close(chat, k, o);
    } else if (!strcmp(type, "transfer")) {
        agent_transfer(chat, k, o);
    } else if (!strcmp(type, "status")) {
        json_t *a = json_object_get(o, "available");
        if (!json_is_boolean(a)) {
            emit_error(chat, conn, "bad_frame", "field 'available' must be true or false", NULL, 0);
        } else {
            queue_agent_set_available(chat->queue, k->agent.id, json_is_true(a));
            chat->is_queue_dirty = 1;
            emit_agent(chat, k->agent.id,
                       json_pack("{s:s, s:b}", "type", "status", "available", json_is_true(a)));
        }
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown frame type '%.60s'", type);
        emit_error(chat, conn, "unknown_type", msg, NULL, 0);
    }
    json_decref(o);
}

void chat_agent_closed(struct chat *chat, uint64_t conn)
{
    struct conn *k = conn_get(chat, conn);
    if (!k || k->kind != CONN_AGENT)
        return;
    if (k->is_authed) {
        if (k->prev_agent)
            k->prev_agent->next_agent = k->next_agent;
        else
            chat->agents = k->next_agent;
        if (k->next_agent)
            k->next_agent->prev_agent = k->prev_agent;
        queue_agent_offline(chat->queue, k->agent.id, cd_wall_s());
        chat->m.n_agent_connections--;
        chat->is_queue_dirty = 1;
    }
    drop_conn(chat, k);
}

/* ---- time, settling, flushing ---- */

/* Auto-assignment, the agents' queue view and customers' positions. Runs
 * inside the turn's group, before the commit. */
static void settle(struct chat *chat)
{
    if (!chat->is_queue_dirty && !chat->is_eta_dirty)
        return;
    int is_agent_view = chat->is_queue_dirty;
    chat->is_queue_dirty = 0;
    chat->is_eta_dirty = 0;
    if (is_agent_view && chat->settings.is_auto_assign) {
        int64_t conv_id, agent_id;
        int n = 0;
        while (n++ < 1000 && queue_next_assignment(chat->queue, &conv_id, &agent_id)) {
            struct conv *c = conv_cached(chat, conv_id);
            if (!c || assign(chat, c, agent_id)) {
                /* Not assignable now (a store error): try again next turn. */
                chat->is_queue_dirty = 1;
                break;
            }
        }
    }
    /* Offline tickets become live chats when an agent for their queue is
     * there during business hours, and the other way round. */
    int64_t now = cd_wall_s();
    int is_open = queue_is_open(chat->queue, now);
    for (int i = 0;; i++) {
        const struct queue_item *it = queue_at(chat->queue, i);
        if (!it)
            break;
        struct conv *c = conv_cached(chat, it->conversation);
        if (!c)
            continue;
        int is_offline = !is_open || queue_agents_available(chat->queue, it->queue, NULL) == 0;
        if (is_offline == c->rec.is_offline)
            continue;
        c->rec.is_offline = is_offline;
        if (unit_begin(chat) == 0 && save_conv(chat, c) == 0) {
            unit_end(chat);
            queue_set_offline(chat->queue, c->rec.id, is_offline);
            c->last_position = -2; /* tell the customer */
            is_agent_view = 1;
        } else {
            unit_undo(chat);
            c->rec.is_offline = !is_offline;
        }
    }
    if (is_agent_view) {
        json_t *frame = json_pack("{s:s, s:o, s:i}", "type", "queue", "items",
                                  queue_items_json(chat), "total", queue_length(chat->queue));
        for (struct conn *k = chat->agents; frame && k; k = k->next_agent)
            emit(chat, k->node.key, json_deep_copy(frame));
        json_decref(frame);
    }
    for (int i = 0;; i++) {
        const struct queue_item *it = queue_at(chat->queue, i);
        if (!it)
            break;
        struct conv *c = conv_cached(chat, it->conversation);
        if (!c || !c->conns)
            continue;
        int pos = queue_position(chat->queue, c->rec.id);
        int eta = queue_estimate_wait_s(chat->queue, c->rec.id, now);
        int d_eta = eta - c->last_eta;
        if (pos != c->last_position || (eta < 0) != (c->last_eta < 0) || d_eta > 10 || d_eta < -10)
            emit_customer(chat, c, queued_frame(chat, c, 0));
    }
}

void chat_tick(struct chat *chat, int64_t now_s)
{
    /* Agents who left and did not come back: their chats go back to the
     * front of their queues. */
    int64_t gone;
    while ((gone = queue_agents_gone(chat->queue, now_s, chat->settings.agent_grace_s)) != 0) {
        for (size_t i = 0; i < chat->convs.n_buckets; i++) {
            struct hnode *n = chat->convs.buckets[i];
            while (n) {
                struct conv *c = (struct conv *)n;
                n = n->next;
                if (c->rec.state == STORE_STATE_WITH_AGENT && c->rec.agent_id == gone) {
                    if (unit_begin(chat) == 0 &&
                        requeue(chat, c, c->rec.queue[0] ? c->rec.queue : "general",
                                "agent_left") == 0)
                        unit_end(chat);
                    else
                        unit_undo(chat);
                }
            }
        }
    }
    if (queue_length(chat->queue) > 0)
        chat->is_eta_dirty = 1; /* estimates and business hours move with time */
    if (chat->settings.retention_days > 0 && now_s - chat->last_retention_s >= 3600) {
        chat->last_retention_s = now_s;
        int n = 0;
        store_retention(chat->store, now_s - (int64_t)chat->settings.retention_days * 86400, 500,
                        &n);
    }
}

void chat_set_room(struct chat *chat, int (*room)(void *ctx, uint64_t conn))
{
    chat->room = room;
}

int chat_has_pending(const struct chat *chat)
{
    return chat->n_frames > 0 || chat->is_queue_dirty || chat->is_eta_dirty ||
           store_in_transaction(chat->store) || chat->touched != NULL;
}

/* After a failed commit: memory goes back to what the store holds. */
static void reload_touched(struct chat *chat)
{
    for (struct conv *c = chat->touched; c; c = c->next_touched) {
        struct store_conversation rec;
        int in_queue = queue_find(chat->queue, c->rec.id) != NULL;
        if (store_conversation_get(chat->store, c->rec.id, &rec))
            continue; /* created in the failed group: evicted below */
        /* Agents' chat counts follow the store too: a claim that was not
         * stored gives its slot back, a close or transfer that was not
         * stored keeps the chat with its agent. */
        int64_t mem_agent = c->rec.state == STORE_STATE_WITH_AGENT ? c->rec.agent_id : 0;
        int64_t db_agent = rec.state == STORE_STATE_WITH_AGENT ? rec.agent_id : 0;
        if (mem_agent != db_agent) {
            if (mem_agent)
                queue_agent_release(chat->queue, mem_agent);
            if (db_agent) {
                agent_name_of(chat, db_agent, c->agent_name, sizeof c->agent_name);
                queue_agent_add_chat(chat->queue, db_agent, c->agent_name);
            }
        }
        if (rec.state == STORE_STATE_QUEUED && !in_queue) {
            store_conversation_clear(&c->rec);
            c->rec = rec;
            struct queue_item it;
            queue_item_of(c, &it);
            queue_push(chat->queue, &it);
        } else {
            if (rec.state != STORE_STATE_QUEUED && in_queue)
                queue_remove(chat->queue, c->rec.id);
            store_conversation_clear(&c->rec);
            c->rec = rec;
        }
    }
}

int chat_flush(struct chat *chat)
{
    /* Paced replays continue as far as the transport has room. */
    for (size_t i = 0; chat->n_replaying > 0 && chat->room && i < chat->conns.n_buckets; i++)
        for (struct hnode *n = chat->conns.buckets[i]; n; n = n->next) {
            struct conn *k = (struct conn *)n;
            if (k->is_replaying && k->conv)
                replay_step(chat, k);
        }
    settle(chat);
    int64_t t0 = cd_now_us();
    int was_open = store_in_transaction(chat->store);
    int rc = store_commit(chat->store);
    if (was_open) {
        double us = (double)(cd_now_us() - t0);
        int b = 0;
        while (b < CHAT_COMMIT_BUCKETS - 1 && us > chat_commit_bounds_us[b])
            b++;
        chat->m.commit_buckets[b]++;
        chat->m.commit_sum_us += us;
    }
    if (rc) {
        chat->m.n_store_errors++;
        /* Nothing of this turn was stored: no frame may claim it was. Each
         * connection that was to hear something gets one error instead. */
        for (int i = 0; i < chat->n_frames; i++) {
            struct conn *k = conn_get(chat, chat->frames[i].conn);
            if (k && !chat->frames[i].text) { /* a policy close stands */
                chat->io.close(chat->io.ctx, chat->frames[i].conn, chat->frames[i].close_code,
                               chat->frames[i].close_reason);
            } else if (k && k->has_pending) {
                k->has_pending = 0;
                k->n_pending = 0;
                /* Its welcome or replay was lost with the turn: it starts
                 * over with a new hello (which stores nothing). */
                if (k->is_resyncing && k->kind == CONN_CUSTOMER) {
                    k->is_resyncing = 0;
                    detach(chat, k);
                }
                static const char err[] =
                    "{\"type\":\"error\",\"code\":\"store_failed\",\"message\":\"the server "
                    "could not store this; nothing was saved, please retry\"}";
                chat->io.send(chat->io.ctx, chat->frames[i].conn, err, sizeof err - 1);
            }
            free(chat->frames[i].text);
        }
        chat->n_frames = 0;
        reload_touched(chat);
        for (int i = 0; i < chat->n_learns; i++)
            free(chat->learns[i].question);
        chat->n_learns = 0;
        chat->is_queue_dirty = 1;
    } else {
        for (int i = 0; i < chat->n_frames; i++) {
            struct pending_frame *f = &chat->frames[i];
            struct conn *k = conn_get(chat, f->conn);
            if (k && !f->text) {
                chat->io.close(chat->io.ctx, f->conn, f->close_code, f->close_reason);
            } else if (k) {
                k->has_pending = 0;
                k->n_pending = 0;
                k->is_resyncing = 0;
                chat->io.send(chat->io.ctx, f->conn, f->text, f->len);
            }
            free(f->text);
        }
        chat->n_frames = 0;
        /* KB learning writes through the KB's own connection: only now
         * that the store's write lock is released. */
        for (int i = 0; i < chat->n_learns; i++) {
            kb_learn(chat->kb, chat->learns[i].question, chat->learns[i].article);
            free(chat->learns[i].question);
        }
        chat->n_learns = 0;
    }
    /* Forget conversations nobody is connected to and no agent works on. */
    struct conv *c = chat->touched;
    chat->touched = NULL;
    while (c) {
        struct conv *next = c->next_touched;
        c->is_touched = 0;
        c->next_touched = NULL;
        struct store_conversation probe;
        int exists = 1;
        if (rc) {
            exists = store_conversation_get(chat->store, c->rec.id, &probe) == 0;
            if (exists)
                store_conversation_clear(&probe);
        }
        if (!exists) {
            for (struct conn *k = c->conns; k; k = k->next_in_conv)
                k->conv = NULL;
            conv_evict(chat, c);
        } else if (c->n_conns == 0 && !conv_is_open(c)) {
            conv_evict(chat, c);
        }
        c = next;
    }
    return rc;
}

int chat_end_for_erasure(struct chat *chat, int64_t conversation)
{
    struct conv *c = chat ? conv_cached(chat, conversation) : NULL;
    if (!c)
        return 0;
    if (conv_is_open(c)) {
        int rc = unit_begin(chat);
        if (!rc)
            rc = close_conversation(chat, c, "system", NULL, NULL);
        if (rc) {
            unit_undo(chat);
            return rc;
        }
        unit_end(chat);
    }
    for (struct conn *k = c->conns; k; k = k->next_in_conv)
        emit_close(chat, k->node.key, 1000, "erased");
    return 0;
}

void chat_metrics_get(const struct chat *chat, struct chat_metrics *out)
{
    *out = chat->m;
    int64_t now = cd_wall_s();
    out->queue_length = queue_length(chat->queue);
    out->longest_wait_s = queue_longest_wait_s(chat->queue, now);
    int n_room = 0;
    out->n_agents_available = queue_agents_available(chat->queue, NULL, &n_room);
    int64_t online = 0;
    for (const struct conn *k = chat->agents; k; k = k->next_agent)
        online++; /* connections; several per agent are rare */
    out->n_agents_online = online;
    out->n_kb_index_reads = chat->kb ? (uint64_t)kb_index_reads(chat->kb) : 0;
}
