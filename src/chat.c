/* chat: the conversation state machine with no network (frames in, frames out): its state,
 * units of work, frames queued to connections, conversations in memory, storing messages, the
 * queue status sent to customers and agents, handoff, and settling and flushing at the end of
 * each loop turn. The customer protocol is in chat_customer.c, the agent protocol in
 * chat_agent.c (docs/protocol.md); all three share chat_int.h.
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
#include "chat_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double chat_wait_bounds_s[CHAT_WAIT_BUCKETS - 1] = {1,   5,   10,  30,   60,
                                                          120, 300, 600, 1800, 3600};
const double chat_commit_bounds_us[CHAT_COMMIT_BUCKETS - 1] = {100,  250,  500,  1000,
                                                               2500, 5000, 10000};

/* ---- frames out ---- */

void chat_touch(struct chat *chat, struct conv *c)
{
    if (c && !c->is_touched) {
        c->is_touched = 1;
        c->next_touched = chat->touched;
        chat->touched = c;
    }
}

struct conn *chat_conn_get(struct chat *chat, uint64_t id)
{
    return (struct conn *)htable_get(&chat->conns, id);
}

/* Appends f to the frames chat_flush() sends. Returns 0, or CD_ENOMEM with nothing appended. */
static int push_frame(struct chat *chat, struct pending_frame f)
{
    if (cd_grow(&chat->frames, &chat->cap_frames, chat->n_frames, sizeof *chat->frames, 64))
        return CD_ENOMEM;
    chat->frames[chat->n_frames++] = f;
    return 0;
}

/* Queues text (taken over, NUL-terminated) as a frame for connection id.
 * Out of memory drops the frame (the client can resume to get what it
 * missed). */
static void emit_text(struct chat *chat, uint64_t conn_id, char *text)
{
    if (!text)
        return;
    if (push_frame(chat, (struct pending_frame){conn_id, text, strlen(text), 0, NULL})) {
        free(text);
        return;
    }
    struct conn *c = chat_conn_get(chat, conn_id);
    if (c) {
        c->has_pending = 1;
        c->n_pending++;
    }
}

/* Closes connection id with code once the frames queued before are sent
 * (in chat_flush()). reason must be a static string. */
void chat_emit_close(struct chat *chat, uint64_t conn_id, int code, const char *reason)
{
    struct conn *k = chat_conn_get(chat, conn_id);
    if (k)
        k->is_closing = 1;
    if (push_frame(chat, (struct pending_frame){conn_id, NULL, 0, code, reason}))
        chat->io.close(chat->io.ctx, conn_id, code, reason); /* at once, then */
}

/* Queues obj (consumed) as a frame for connection id. */
void chat_emit(struct chat *chat, uint64_t conn_id, json_t *obj)
{
    if (!obj)
        return;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    emit_text(chat, conn_id, text);
}

/* Sends obj (consumed) to every customer connection of conversation c. */
void chat_emit_customer(struct chat *chat, struct conv *c, json_t *obj)
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

/* Like chat_emit_customer(), for a frame that reports a stored message (it has a
 * seq) or must follow one: connections still catching up with a paced
 * replay skip it, because the replay will bring it, in order. */
void chat_emit_customer_stored_text(struct chat *chat, struct conv *c, const char *text)
{
    for (struct conn *k = c->conns; k; k = k->next_in_conv)
        if (!k->is_replaying)
            emit_text(chat, k->node.key, strdup(text));
}

void chat_emit_customer_stored(struct chat *chat, struct conv *c, json_t *obj)
{
    if (!obj)
        return;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return;
    chat_emit_customer_stored_text(chat, c, text);
    free(text);
}

/* Sends obj (consumed) to every connection of agent agent_id. */
void chat_emit_agent(struct chat *chat, int64_t agent_id, json_t *obj)
{
    if (!obj)
        return;
    for (struct conn *k = chat->agents; k; k = k->next_agent)
        if (k->agent.id == agent_id)
            chat_emit(chat, k->node.key, json_deep_copy(obj));
    json_decref(obj);
}

void chat_emit_error(struct chat *chat, uint64_t conn_id, const char *code, const char *message,
                     const char *reply_to, int64_t conversation)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);
    if (o && reply_to)
        json_object_set_new(o, "reply_to", json_string(reply_to));
    if (o && conversation > 0)
        json_object_set_new(o, "conversation", json_integer(conversation));
    chat->m.n_bad_frames++;
    chat_emit(chat, conn_id, o);
}

void chat_emit_unknown_type(struct chat *chat, uint64_t conn_id, const char *type)
{
    char msg[128];
    snprintf(msg, sizeof msg, "unknown frame type '%.60s'", type);
    chat_emit_error(chat, conn_id, "unknown_type", msg, NULL, 0);
}

/* One unit of work (one client frame, one assignment): its store writes and
 * the frames it queues happen together or not at all. */
int chat_unit_begin(struct chat *chat)
{
    chat->unit_frames = chat->n_frames;
    chat->n_unit_convs = 0;
    return store_mark(chat->store);
}

void chat_unit_end(struct chat *chat)
{
    store_mark_release(chat->store);
    chat->n_unit_convs = 0;
    chat->ahead = NULL;
}

void chat_unit_undo(struct chat *chat)
{
    chat->ahead = NULL;
    store_mark_undo(chat->store);
    while (chat->n_frames > chat->unit_frames)
        free(chat->frames[--chat->n_frames].text);
    while (chat->n_unit_convs > 0) {
        int i = --chat->n_unit_convs;
        chat->unit_convs[i]->rec.last_seq = chat->unit_last_seq[i];
    }
}

int chat_unit_finish(struct chat *chat, int rc, uint64_t conn, const char *reply_to,
                     int64_t conversation)
{
    if (!rc) {
        chat_unit_end(chat);
        return 0;
    }
    chat_unit_undo(chat);
    chat->m.n_store_errors++;
    chat_emit_error(chat, conn, "store_failed", cd_strerror(rc), reply_to, conversation);
    return rc;
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
    queue_settings_defaults(&s->queue);
    if (s->max_message_bytes <= 0)
        s->max_message_bytes = 4096;
    if (s->agent_grace_s <= 0)
        s->agent_grace_s = 30;
    snprintf(chat->public_url, sizeof chat->public_url, "%s", s->public_url ? s->public_url : "");
    size_t n_url = strlen(chat->public_url);
    if (n_url && chat->public_url[n_url - 1] == '/')
        chat->public_url[n_url - 1] = '\0';
    s->public_url = chat->public_url;
    cd_strlcpy(chat->default_lang, sizeof chat->default_lang,
               s->default_lang && s->default_lang[0] ? s->default_lang : "en");
    chat->store = store;
    chat->kb = kb;
    chat->triage = triage;
    chat->io = *io;
    chat->queue = queue_new(&s->queue);
    s->queue.names = NULL; /* not kept: the caller's string may go away */
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
    langid_probe_free(c->lang_probe);
    free(c);
}

void chat_free(struct chat *chat)
{
    if (!chat)
        return;
    chat_answers_settle(chat);
    if (chat->store && store_in_transaction(chat->store))
        store_commit(chat->store);
    struct htable_iter it;
    struct htable_node *n;
    htable_iter_init(&it, &chat->conns);
    while ((n = htable_iter_next(&it)))
        free(n);
    htable_iter_init(&it, &chat->convs);
    while ((n = htable_iter_next(&it)))
        conv_free((struct conv *)n);
    htable_free(&chat->conns);
    htable_free(&chat->convs);
    for (int i = 0; i < chat->n_frames; i++)
        free(chat->frames[i].text);
    free(chat->frames);
    for (int i = 0; i < chat->n_learns; i++)
        free(chat->learns[i].question);
    free(chat->learns);
    queue_free(chat->queue);
    auth_throttle_free(chat->throttle);
    langid_free(chat->langid);
    if (chat->owns_redactor)
        redact_free(chat->redactor);
    free(chat);
}

/* ---- conversations in memory ---- */

struct conv *chat_conv_cached(struct chat *chat, int64_t id)
{
    return (struct conv *)htable_get(&chat->convs, (uint64_t)id);
}

/* Wraps a loaded record (taken over) in a cached conversation. */
struct conv *chat_conv_adopt(struct chat *chat, struct store_conversation *rec)
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
    chat_conv_synced(c);
    snprintf(c->last_intent, sizeof c->last_intent, "%s", c->rec.intent);
    if (htable_put(&chat->convs, &c->node)) {
        conv_free(c);
        return NULL;
    }
    return c;
}

int chat_conv_is_open(const struct conv *c)
{
    return c->rec.state == STORE_STATE_QUEUED || c->rec.state == STORE_STATE_WITH_AGENT;
}

void chat_conv_evict(struct chat *chat, struct conv *c)
{
    htable_del(&chat->convs, &c->node);
    conv_free(c);
}

void chat_agent_name_of(struct chat *chat, int64_t agent_id, char *out, size_t cap)
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

void chat_queue_item_of(struct conv *c, struct queue_item *it)
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

/* Puts cached c, queued in the store, in this node's queue with its preview. */
void chat_conv_enqueue(struct chat *chat, struct conv *c)
{
    struct queue_item it;
    chat_queue_item_of(c, &it);
    queue_push(chat->queue, &it);
    chat_preview_from_store(chat, c);
    chat->is_queue_dirty = 1;
}

int chat_agent_here(const struct chat *chat, int64_t agent_id)
{
    for (const struct conn *k = chat->agents; k; k = k->next_agent)
        if (k->agent.id == agent_id)
            return 1;
    return 0;
}

/* Whether this node counts agent_id's chats: all of them on one node (the agent has the grace
 * period to come back here), only those of its own agents when nodes share the store. */
static int counts_agent(const struct chat *chat, int64_t agent_id)
{
    return agent_id && (!chat->settings.is_shared_store || chat_agent_here(chat, agent_id));
}

struct conv *chat_conv_adopt_copy(struct chat *chat, const struct store_conversation *rec)
{
    struct store_conversation copy = *rec;
    copy.customer_name = cd_strdup(rec->customer_name);
    copy.customer_email = cd_strdup(rec->customer_email);
    copy.customer_page = cd_strdup(rec->customer_page);
    copy.note = cd_strdup(rec->note);
    copy.comment = cd_strdup(rec->comment);
    struct conv *c = chat_conv_adopt(chat, &copy);
    if (!c)
        store_conversation_clear(&copy);
    return c;
}

struct conv *chat_conv_load(struct chat *chat, int64_t id)
{
    struct conv *c = chat_conv_cached(chat, id);
    struct store_conversation rec;
    if (c || store_conversation_get(chat->store, id, &rec))
        return c;
    if (!(c = chat_conv_adopt(chat, &rec)))
        store_conversation_clear(&rec);
    return c;
}

void chat_conv_refresh(struct chat *chat, struct conv *c, struct store_conversation *rec)
{
    int in_queue = queue_find(chat->queue, c->rec.id) != NULL;
    int64_t mem_agent = c->rec.state == STORE_STATE_WITH_AGENT ? c->rec.agent_id : 0;
    int64_t db_agent = rec->state == STORE_STATE_WITH_AGENT ? rec->agent_id : 0;
    if (mem_agent != db_agent) {
        if (counts_agent(chat, mem_agent))
            queue_agent_release(chat->queue, mem_agent);
        if (counts_agent(chat, db_agent)) {
            chat_agent_name_of(chat, db_agent, c->agent_name, sizeof c->agent_name);
            queue_agent_add_chat(chat->queue, db_agent, c->agent_name);
        }
        chat->is_queue_dirty = 1;
    }
    store_conversation_clear(&c->rec);
    c->rec = *rec;
    memset(rec, 0, sizeof *rec);
    chat_conv_synced(c);
    if (c->rec.state == STORE_STATE_QUEUED && !in_queue) {
        chat_conv_enqueue(chat, c);
    } else if (c->rec.state != STORE_STATE_QUEUED && in_queue) {
        queue_remove(chat->queue, c->rec.id);
        chat->is_queue_dirty = 1;
    }
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
void chat_preview_from_store(struct chat *chat, const struct conv *c)
{
    struct preview_ctx p = {""};
    int64_t after = c->rec.last_seq > 20 ? c->rec.last_seq - 20 : 0;
    store_messages_after(chat->store, c->rec.id, after, 20, last_customer_text, &p);
    queue_set_preview(chat->queue, c->rec.id, p.text);
}

static int rebuild_one(void *ctx, const struct store_conversation *rec)
{
    struct chat *chat = ctx;
    /* The callback's strings are freed by the store after the call: a copy is adopted. */
    struct conv *c = chat_conv_adopt_copy(chat, rec);
    if (!c)
        return 0;
    if (c->rec.state == STORE_STATE_QUEUED) {
        chat_conv_enqueue(chat, c);
    } else if (counts_agent(chat, c->rec.agent_id)) {
        /* One node: the agent has the grace period to come back here. With several nodes
         * the agent's chats are counted by the node the agent signs in to. */
        chat_agent_name_of(chat, c->rec.agent_id, c->agent_name, sizeof c->agent_name);
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
int chat_field_str(struct chat *chat, uint64_t conn, json_t *o, const char *key, size_t min,
                   size_t max, const char **out, const char *reply_to)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        char msg[160];
        snprintf(msg, sizeof msg, "field '%s' must be a string (got %s)", key, cd_json_kind(v));
        chat_emit_error(chat, conn, "bad_frame", msg, reply_to, 0);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n < min || n > max || memchr(json_string_value(v), '\0', n)) {
        char msg[160];
        snprintf(msg, sizeof msg, "field '%s' must be %zu to %zu bytes of text", key, min, max);
        chat_emit_error(chat, conn, n > max ? "too_big" : "bad_frame", msg, reply_to, 0);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

/* A required string field; returns 0 and *out, or -1 (error emitted). */
int chat_need_str(struct chat *chat, uint64_t conn, json_t *o, const char *key, size_t min,
                  size_t max, const char **out, const char *reply_to)
{
    int r = chat_field_str(chat, conn, o, key, min, max, out, reply_to);
    if (r == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "missing field '%s'", key);
        chat_emit_error(chat, conn, "bad_frame", msg, reply_to, 0);
        return -1;
    }
    return r < 0 ? -1 : 0;
}

/* A required integer field in [min, max] (a JSON integer: "3" is a string, not an id);
 * returns 0 and *out, or -1 (error emitted, naming the field and the type it got). */
int chat_need_int(struct chat *chat, uint64_t conn, json_t *o, const char *key, int64_t min,
                  int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    char msg[192];
    if (!v) {
        snprintf(msg, sizeof msg, "missing field '%s'", key);
        chat_emit_error(chat, conn, "bad_frame", msg, NULL, 0);
        return -1;
    }
    int64_t x = json_is_integer(v) ? json_integer_value(v) : 0;
    if (!json_is_integer(v) || x < min || x > max) {
        int n = snprintf(msg, sizeof msg, "field '%s' must be an integer from %lld to %lld", key,
                         (long long)min, (long long)max);
        if (!json_is_integer(v) && n > 0 && (size_t)n < sizeof msg)
            snprintf(msg + n, sizeof msg - (size_t)n, " (got %s)", cd_json_kind(v));
        chat_emit_error(chat, conn, "bad_frame", msg, NULL, 0);
        return -1;
    }
    *out = x;
    return 0;
}

/* ---- storing messages ---- */

/* c's last seq is now seq (when that is later), put back if the unit is undone. */
static void unit_moved_seq(struct chat *chat, struct conv *c, int64_t seq)
{
    if (seq <= c->rec.last_seq)
        return;
    int known = 0;
    for (int i = 0; i < chat->n_unit_convs; i++)
        known |= chat->unit_convs[i] == c;
    if (!known && chat->n_unit_convs < 4) {
        chat->unit_convs[chat->n_unit_convs] = c;
        chat->unit_last_seq[chat->n_unit_convs++] = c->rec.last_seq;
    }
    c->rec.last_seq = seq;
}

void chat_ahead_copy(struct chat_ahead *a, struct conv *c, int is_back)
{
#define FIELD(af, cf)                                                                              \
    do {                                                                                           \
        _Static_assert(sizeof a->af == sizeof c->cf, "chat_ahead." #af " is conv." #cf);           \
        if (is_back)                                                                               \
            memcpy(&c->cf, &a->af, sizeof a->af);                                                  \
        else                                                                                       \
            memcpy(&a->af, &c->cf, sizeof a->af);                                                  \
    } while (0)
    FIELD(state, rec.state);
    FIELD(intent, rec.intent);
    FIELD(confidence, rec.confidence);
    FIELD(last_seq, rec.last_seq);
    FIELD(tctx, tctx);
    FIELD(last_text_key, last_text_key);
    FIELD(last_intent, last_intent);
    FIELD(choices, choices);
    FIELD(n_choices, n_choices);
    FIELD(has_customer_message, has_customer_message);
    FIELD(synced_state, synced_state);
    FIELD(synced_agent, synced_agent);
#undef FIELD
}

/* Puts a's conversation and the counters back as they were before its message and drops
 * the frames it queued. */
static void put_back(struct chat *chat, struct chat_ahead *a)
{
    chat_ahead_copy(a, a->c, 1);
    chat->m.n_messages_in -= a->n_messages_in;
    chat->m.n_answer -= a->n_answer;
    chat->m.n_conversations_engaged -= a->n_engaged;
    chat->m.n_conversations_escalated -= a->n_escalated;
    for (int i = a->frame_start; i < a->frame_end; i++) {
        struct conn *k = chat_conn_get(chat, chat->frames[i].conn);
        if (k && k->n_pending > 0 && --k->n_pending == 0)
            k->has_pending = 0;
        free(chat->frames[i].text);
    }
    memmove(chat->frames + a->frame_start, chat->frames + a->frame_end,
            (size_t)(chat->n_frames - a->frame_end) * sizeof *chat->frames);
    chat->n_frames -= a->frame_end - a->frame_start;
}

void chat_answers_settle(struct chat *chat)
{
    int n = chat->n_aheads;
    if (n <= 0)
        return;
    if (n > CHAT_AHEAD_MAX)
        n = CHAT_AHEAD_MAX; /* never more are added */
    chat->n_aheads = 0;
    int rcs[CHAT_AHEAD_MAX];
    for (int i = 0; i < n; i++) {
        rcs[i] = store_message_pair_result(chat->store, chat->aheads[i].ticket);
        chat->aheads[i].c->is_ahead = 0;
    }
    /* Last first, so that the frames of the earlier ones stay where they were. (Any other
     * failure fails the group, and the commit tells every connection.) */
    for (int i = n - 1; i >= 0; i--)
        if (rcs[i] == CD_EBUSY)
            put_back(chat, &chat->aheads[i]);
    /* Taken again with may_batch 0, a message joins no answers in flight: chat->aheads
     * stays as it is while this reads it. */
    for (int i = 0; i < n; i++) {
        struct chat_ahead *a = &chat->aheads[i];
        if (rcs[i] == CD_EBUSY && chat_conn_get(chat, a->conn))
            chat_take_message(chat, a->conn, a->c, a->client_id, a->text,
                              a->has_choice ? a->choice : NULL, 0);
        else
            free(a->text);
    }
}

int chat_sent_message(struct chat *chat)
{
    struct store_message *m = chat->ahead;
    chat->ahead = NULL;
    return m ? store_message_sent(chat->store, m) : 0;
}

/* Stores m (with next: and next's triage columns) as c's next message; sets *seq. */
static int append_message(struct chat *chat, struct conv *c, struct store_message *m,
                          const struct store_conversation *next, int64_t *seq)
{
    m->seq = c->rec.last_seq + 1;         /* the next seq as this node knows it: the store checks */
    if (chat->ahead && chat->may_batch) { /* the question and this answer, without waiting */
        int ticket;
        int rc = store_message_pair_send(chat->store, m, next, &ticket);
        if (rc <= 0) {
            if (!rc) {
                chat->ahead = NULL;
                chat->batch_ticket = ticket;
                *seq = m->seq;
                unit_moved_seq(chat, c, m->seq);
            }
            chat_touch(chat, c);
            return rc;
        }
    }
    int rc = next ? store_message_append_triage(chat->store, m, next)
                  : store_message_append(chat->store, m);
    if (!rc && chat->ahead) /* its round trip carried the message sent ahead */
        rc = chat_sent_message(chat);
    *seq = m->seq;
    if (!rc)
        unit_moved_seq(chat, c, m->seq);
    chat_touch(chat, c);
    return rc;
}

static void message_of(struct store_message *m, struct conv *c, int sender, const char *client_id,
                       const char *reply_to, const char *text, const char *meta, int64_t agent_id)
{
    memset(m, 0, sizeof *m);
    m->conversation = c->rec.id;
    m->sender = sender;
    if (client_id)
        snprintf(m->client_id, sizeof m->client_id, "%s", client_id);
    if (reply_to)
        snprintf(m->reply_to, sizeof m->reply_to, "%s", reply_to);
    m->text = text;
    m->meta = meta;
    m->agent_id = agent_id;
}

/* Appends a message; sets *seq. Returns 0, CD_EEXIST (client id seen: *seq is
 * the stored one) or CD_E*. */
int chat_append_message(struct chat *chat, struct conv *c, int sender, const char *client_id,
                        const char *reply_to, const char *text, const char *meta, int64_t agent_id,
                        int64_t *seq)
{
    struct store_message m;
    message_of(&m, c, sender, client_id, reply_to, text, meta, agent_id);
    return append_message(chat, c, &m, NULL, seq);
}

int chat_send_message(struct chat *chat, struct conv *c, const char *client_id, const char *text,
                      struct store_message *m)
{
    message_of(m, c, STORE_SENDER_CUSTOMER, client_id, NULL, text, NULL, 0);
    m->seq = c->rec.last_seq + 1;
    int rc = store_message_send(chat->store, m);
    if (rc)
        return rc;
    chat->ahead = m;
    unit_moved_seq(chat, c, m->seq);
    chat_touch(chat, c);
    return 0;
}

int chat_append_reply(struct chat *chat, struct conv *c, const char *reply_to, const char *text,
                      const char *meta, const struct store_conversation *next, int64_t *seq)
{
    struct store_message m;
    message_of(&m, c, STORE_SENDER_BOT, NULL, reply_to, text, meta, 0);
    return append_message(chat, c, &m, next, seq);
}

/* Appends a system event (meta {"event": event, ...extra}); consumes extra. */
int chat_append_event(struct chat *chat, struct conv *c, const char *event, const char *text,
                      json_t *extra, int64_t *seq)
{
    json_t *meta = extra ? extra : json_object();
    json_object_set_new(meta, "event", json_string(event));
    char *meta_text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    if (!meta_text)
        return CD_ENOMEM;
    int rc = chat_append_message(chat, c, STORE_SENDER_SYSTEM, NULL, NULL, text, meta_text, 0, seq);
    free(meta_text);
    return rc;
}

void chat_conv_synced(struct conv *c)
{
    c->synced_state = c->rec.state;
    c->synced_agent = c->rec.agent_id;
}

int chat_save_conv(struct chat *chat, struct conv *c)
{
    chat_touch(chat, c);
    /* Several nodes: only over the state this node knows of; CD_EBUSY when another node
     * claimed or closed it meanwhile (its event brings the news). */
    int rc =
        chat->settings.is_shared_store
            ? store_conversation_update_if(chat->store, &c->rec, c->synced_state, c->synced_agent)
            : store_conversation_update(chat->store, &c->rec);
    if (!rc)
        chat_conv_synced(c);
    return rc;
}

/* ---- queue status to customers and agents ---- */

json_t *chat_queued_frame(struct chat *chat, struct conv *c, int64_t seq)
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
        int64_t when = queue_is_open(chat->queue, now) ? now + chat->settings.queue.pickup_target_s
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

json_t *chat_queue_items_json(struct chat *chat)
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

/* ---- bot decisions (the policy and the wording are triage.c's) ---- */

/* A conversation started without a lang: its language from its first messages, among the
 * languages of the intents and KB; stored once decided. Until then the default language. */
static void detect_lang(struct chat *chat, struct conv *c, const char *text, size_t n)
{
    const struct intents *set = chat->triage ? triage_intents(chat->triage) : NULL;
    unsigned generation = chat->triage ? triage_intents_generation(chat->triage) : 0;
    if (!chat->langid || chat->langid_generation != generation) {
        langid_free(chat->langid);
        chat->langid = langid_build(set, chat->kb);
        chat->langid_generation = generation;
    }
    char lang[8];
    int is_decided =
        langid_probe_add(c->lang_probe, chat->langid, text, n, chat->default_lang, lang);
    if (strcmp(lang, c->rec.lang)) {
        cd_strlcpy(c->rec.lang, sizeof c->rec.lang, lang);
        if (is_decided)
            chat_save_conv(chat, c);
    }
    if (is_decided) {
        langid_probe_free(c->lang_probe);
        c->lang_probe = NULL;
    }
}

int chat_decide(struct chat *chat, struct conv *c, const char *text, size_t n,
                struct triage_decision *d)
{
    if (c->lang_probe)
        detect_lang(chat, c, text, n);
    const char *lang = c->rec.lang[0] ? c->rec.lang : NULL;
    if (!chat->triage)
        return triage_decide_kb_only(chat->kb, text, lang, d);
    c->tctx.last_intent = c->last_intent[0] ? c->last_intent : NULL;
    return triage_decide(chat->triage, text, n, lang, &c->tctx, d);
}

/* Folds one decision into the conversation's triage context. */
void chat_update_context(struct conv *c, const struct triage_decision *d)
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

int chat_conv_has_customer_message(struct chat *chat, struct conv *c)
{
    if (c->has_customer_message < 0) {
        int has = store_has_customer_message(chat->store, c->rec.id);
        c->has_customer_message = has > 0;
    }
    return c->has_customer_message;
}

void chat_count_outcome(struct chat *chat, struct conv *c, int is_first_message)
{
    if (c->rec.created_s < chat->started_s)
        return;
    if (is_first_message)
        chat->m.n_conversations_engaged++;
    if (c->rec.queued_s > 0 && (is_first_message || chat_conv_has_customer_message(chat, c)))
        chat->m.n_conversations_escalated++;
}

int chat_save_conv_change(struct chat *chat, struct conv *c, const struct store_conversation *old,
                          uint64_t conn)
{
    int rc = chat_unit_begin(chat);
    if (!rc)
        rc = chat_save_conv(chat, c);
    if (rc) {
        chat_unit_undo(chat);
        c->rec = *old;
        chat_emit_error(chat, conn, "store_failed", cd_strerror(rc), NULL, 0);
        return rc;
    }
    chat_unit_end(chat);
    return 0;
}

int chat_store_queue_move(struct chat *chat, struct conv *c, const struct store_conversation *old,
                          const char *event, const char *text, json_t *data, int64_t *seq)
{
    int rc = chat_append_event(chat, c, event, text, data, seq);
    if (!rc)
        rc = chat_save_conv(chat, c);
    if (rc) {
        /* Only these fields move with the queue; the record's strings were not touched. */
        c->rec.state = old->state;
        memcpy(c->rec.queue, old->queue, sizeof c->rec.queue);
        c->rec.priority = old->priority;
        c->rec.queued_s = old->queued_s;
        c->rec.agent_id = old->agent_id;
        c->rec.is_offline = old->is_offline;
    }
    return rc;
}

/* Puts c in the queue (state queued), stores the "queued" event and queues
 * the customer's queued frame. Returns 0 or CD_E*. */
int chat_enqueue(struct chat *chat, struct conv *c, const char *queue_name, int priority)
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
    int rc = chat_store_queue_move(
        chat, c, &old, "queued", text,
        json_pack("{s:s, s:b}", "queue", c->rec.queue, "offline", c->rec.is_offline), &seq);
    if (rc)
        return rc;
    struct queue_item it;
    chat_queue_item_of(c, &it);
    it.enqueued_s = c->rec.queued_s;
    queue_push(chat->queue, &it);
    /* Whatever started the handoff (a message, the button), agents see the customer's latest
     * message, not "No preview". */
    chat_preview_from_store(chat, c);
    chat->is_queue_dirty = 1;
    store_event_add(chat->store, "handoff", c->rec.id, 0, NULL);
    if (!old.queued_s)
        chat_count_outcome(chat, c, 0);
    chat_emit_customer_stored(chat, c, chat_queued_frame(chat, c, seq));
    return 0;
}

void chat_tell_agent_closed(struct chat *chat, int64_t agent, int64_t conversation, const char *by)
{
    if (strcmp(by, "agent"))
        chat_emit_agent(chat, agent,
                        json_pack("{s:s, s:I, s:s}", "type", "customer_left", "conversation",
                                  (json_int_t)conversation, "reason", "closed"));
    chat_emit_agent(
        chat, agent,
        json_pack("{s:s, s:I}", "type", "closed", "conversation", (json_int_t)conversation));
}

/* Ends a conversation (by "customer", "agent" or "system"). The agent who
 * had it is told and released. Returns 0 or CD_E*; nothing changes on error. */
int chat_close_conversation(struct chat *chat, struct conv *c, const char *by,
                            const char *disposition, const char *note)
{
    struct store_conversation old = c->rec;
    char *new_note = cd_strdup(note);
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
    int rc = chat_append_event(chat, c, "closed", "Conversation closed",
                               json_pack("{s:s}", "by", by), &seq);
    if (!rc)
        rc = chat_save_conv(chat, c);
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
        chat_tell_agent_closed(chat, agent, c->rec.id, by);
    }
    if (disposition)
        store_event_add(chat->store, "wrap_up", c->rec.id, agent, NULL);
    chat_emit_customer_stored(
        chat, c, json_pack("{s:s, s:I, s:s}", "type", "closed", "seq", (json_int_t)seq, "by", by));
    chat_emit_customer_stored(chat, c,
                              json_pack("{s:s, s:i}", "type", "rating_request", "scale", 5));
    return 0;
}

/* Parses a frame: size cap, UTF-8, JSON object with a string "type".
 * Returns the object (caller decrefs) and *type, or NULL (error emitted). */
static json_t *parse_frame(struct chat *chat, uint64_t conn, const char *text, size_t len,
                           const char **type)
{
    size_t cap = (size_t)chat->settings.max_message_bytes * 2 + 4096;
    if (len > cap) {
        chat_emit_error(chat, conn, "too_big", "frame is over the size limit", NULL, 0);
        return NULL;
    }
    if (!cd_utf8_valid(text, len)) {
        chat_emit_error(chat, conn, "bad_utf8", "frame is not valid UTF-8", NULL, 0);
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
        chat_emit_error(chat, conn, "bad_json", msg, NULL, 0);
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
        chat_emit_error(chat, conn, "bad_frame", msg, NULL, 0);
        return NULL;
    }
    *type = json_string_value(t);
    return o;
}

json_t *chat_conn_frame(struct chat *chat, uint64_t conn, enum conn_kind kind, const char *text,
                        size_t len, struct conn **k, const char **type)
{
    *k = chat_conn_get(chat, conn);
    if (!*k || (*k)->kind != kind || (*k)->is_closing)
        return NULL;
    return parse_frame(chat, conn, text, len, type);
}

struct conn *chat_conn_closed(struct chat *chat, uint64_t conn, enum conn_kind kind)
{
    chat_answers_settle(chat);
    struct conn *k = chat_conn_get(chat, conn);
    return k && k->kind == kind ? k : NULL;
}

const struct chat_frame_handler *chat_frame_handler_find(const struct chat_frame_handler *handlers,
                                                         size_t n, const char *type)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(type, handlers[i].type))
            return &handlers[i];
    return NULL;
}

struct conn *chat_conn_new(struct chat *chat, uint64_t id, enum conn_kind kind,
                           const struct chat_peer *peer)
{
    struct conn *old = chat_conn_get(chat, id);
    if (old) /* the transport reused an id without closing: start over */
        return NULL;
    struct conn *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->node.key = id;
    k->kind = kind;
    snprintf(k->address, sizeof k->address, "%s", peer && peer->address ? peer->address : "");
    if (htable_put(&chat->conns, &k->node)) {
        free(k);
        return NULL;
    }
    return k;
}

void chat_replay_begin(struct chat *chat, struct conn *k, int64_t replay_after)
{
    k->replay_after = replay_after;
    if (!k->is_replaying) {
        k->is_replaying = 1;
        CD_LIST_PUSH(chat->replaying, k, prev_replaying, next_replaying);
    }
}

void chat_replay_end(struct chat *chat, struct conn *k)
{
    if (k->is_replaying) {
        k->is_replaying = 0;
        CD_LIST_UNLINK(chat->replaying, k, prev_replaying, next_replaying);
    }
}

void chat_detach(struct chat *chat, struct conn *k)
{
    chat_replay_end(chat, k);
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

void chat_drop_conn(struct chat *chat, struct conn *k)
{
    chat_replay_end(chat, k);
    htable_del(&chat->conns, &k->node);
    free(k);
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
            struct conv *c = chat_conv_cached(chat, conv_id);
            if (!c || chat_assign(chat, c, agent_id)) {
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
        struct conv *c = chat_conv_cached(chat, it->conversation);
        if (!c)
            continue;
        /* Several nodes: the agents signed in here are not all the agents there are, so only
         * business hours make a ticket offline. */
        int is_offline = !is_open || (!chat->settings.is_shared_store &&
                                      queue_agents_available(chat->queue, it->queue, NULL) == 0);
        if (is_offline == c->rec.is_offline)
            continue;
        c->rec.is_offline = is_offline;
        if (chat_unit_begin(chat) == 0 && chat_save_conv(chat, c) == 0) {
            chat_unit_end(chat);
            queue_set_offline(chat->queue, c->rec.id, is_offline);
            c->last_position = -2; /* tell the customer */
            is_agent_view = 1;
        } else {
            chat_unit_undo(chat);
            c->rec.is_offline = !is_offline;
        }
    }
    if (is_agent_view) {
        json_t *frame = json_pack("{s:s, s:o, s:i}", "type", "queue", "items",
                                  chat_queue_items_json(chat), "total", queue_length(chat->queue));
        for (struct conn *k = chat->agents; frame && k; k = k->next_agent)
            chat_emit(chat, k->node.key, json_deep_copy(frame));
        json_decref(frame);
    }
    for (int i = 0;; i++) {
        const struct queue_item *it = queue_at(chat->queue, i);
        if (!it)
            break;
        struct conv *c = chat_conv_cached(chat, it->conversation);
        if (!c || !c->conns)
            continue;
        int pos = queue_position(chat->queue, c->rec.id);
        int eta = queue_estimate_wait_s(chat->queue, c->rec.id, now);
        int d_eta = eta - c->last_eta;
        if (pos != c->last_position || (eta < 0) != (c->last_eta < 0) || d_eta > 10 || d_eta < -10)
            chat_emit_customer(chat, c, chat_queued_frame(chat, c, 0));
    }
}

void chat_tick(struct chat *chat, int64_t now_s)
{
    chat_answers_settle(chat);
    /* Agents who left and did not come back: their chats go back to the
     * front of their queues. */
    int64_t gone;
    while ((gone = queue_agents_gone(chat->queue, now_s, chat->settings.agent_grace_s)) != 0) {
        /* Several nodes: an agent who signed in on another node since has the chats there. */
        char node[32];
        if (chat->settings.is_shared_store &&
            store_agent_node(chat->store, gone, node, sizeof node) == 0 &&
            strcmp(node, chat->settings.node_id ? chat->settings.node_id : "") != 0)
            continue;
        struct htable_iter it;
        struct htable_node *n;
        htable_iter_init(&it, &chat->convs);
        while ((n = htable_iter_next(&it))) {
            struct conv *c = (struct conv *)n;
            if (c->rec.state == STORE_STATE_WITH_AGENT && c->rec.agent_id == gone) {
                if (chat_unit_begin(chat) == 0 &&
                    chat_requeue(chat, c, c->rec.queue[0] ? c->rec.queue : "general",
                                 "agent_left") == 0)
                    chat_unit_end(chat);
                else
                    chat_unit_undo(chat);
            }
        }
    }
    if (chat->settings.is_shared_store)
        chat_remote_tick(chat, now_s);
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

int chat_is_replaying(struct chat *chat, uint64_t conn)
{
    if (!chat->replaying || !chat->room)
        return 0;
    const struct conn *k = chat_conn_get(chat, conn);
    return k && k->is_replaying;
}

int chat_has_pending(const struct chat *chat)
{
    return chat->n_frames > 0 || chat->is_queue_dirty || chat->is_eta_dirty ||
           store_in_transaction(chat->store) || chat->touched != NULL;
}

/* After a failed commit: memory goes back to what the store holds. */
static void reload_touched(struct chat *chat)
{
    /* The queue and the agents' chat counts follow the store too: a claim that was not stored
     * gives its slot back, a close or transfer that was not stored keeps the chat with its
     * agent. */
    for (struct conv *c = chat->touched; c; c = c->next_touched) {
        struct store_conversation rec;
        if (store_conversation_get(chat->store, c->rec.id, &rec) == 0)
            chat_conv_refresh(chat, c, &rec);
        /* else created in the failed group: evicted below */
    }
}

int chat_flush(struct chat *chat)
{
    chat_answers_settle(chat); /* before the commit: every answer in flight known */
    /* Paced replays continue as far as the transport has room. */
    for (struct conn *k = chat->room ? chat->replaying : NULL, *next; k; k = next) {
        next = k->next_replaying; /* a step that ends the replay takes k off the list */
        if (k->conv)
            chat_replay_step(chat, k);
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
            struct conn *k = chat_conn_get(chat, chat->frames[i].conn);
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
                    chat_detach(chat, k);
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
            struct conn *k = chat_conn_get(chat, f->conn);
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
            for (struct conn *k = c->conns; k; k = k->next_in_conv) {
                chat_replay_end(chat, k); /* nothing left to replay from here */
                k->conv = NULL;
            }
            chat_conv_evict(chat, c);
        } else if (c->n_conns == 0 && !chat_conv_is_open(c)) {
            chat_conv_evict(chat, c);
        }
        c = next;
    }
    return rc;
}

int chat_end_for_erasure(struct chat *chat, int64_t conversation)
{
    if (chat)
        chat_answers_settle(chat);
    struct conv *c = chat ? chat_conv_cached(chat, conversation) : NULL;
    if (!c)
        return 0;
    if (chat_conv_is_open(c)) {
        int rc = chat_unit_begin(chat);
        if (!rc)
            rc = chat_close_conversation(chat, c, "system", NULL, NULL);
        if (rc) {
            chat_unit_undo(chat);
            return rc;
        }
        chat_unit_end(chat);
    }
    for (struct conn *k = c->conns; k; k = k->next_in_conv)
        chat_emit_close(chat, k->node.key, 1000, "erased");
    return 0;
}

void chat_wait_observe(uint64_t *buckets, double *sum_s, int64_t waited_s)
{
    int b = 0;
    while (b < CHAT_WAIT_BUCKETS - 1 && (double)waited_s > chat_wait_bounds_s[b])
        b++;
    buckets[b]++;
    *sum_s += (double)waited_s;
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
    const struct scope_prior *sp = chat->triage ? triage_oos_share(chat->triage) : NULL;
    out->oos_share = sp ? sp->estimate : 0;
    out->is_oos_share_kept = chat->triage && triage_measures_share(chat->triage);
    out->is_oos_share_measured = sp && scope_prior_is_measured(sp);
    /* A share carried over a retraining was measured on the questions before it. */
    out->n_oos_share_questions = sp ? scope_prior_measured_on(sp) : 0;
}
