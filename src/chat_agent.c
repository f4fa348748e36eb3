/* chat_agent: the agent protocol (docs/protocol.md): authentication, the queue view, claiming
 * and assignment (with the transcript and the bot's guess), replies, transfer and close. Each
 * frame is one unit of work (chat.c). */
#include "chat_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
                     "capacity", a ? a->capacity : chat->settings.queue.agent_capacity, "available",
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
        const char *keys[] = {"action", "intent", "confidence",   "articles",
                              "event",  "agent",  "status_update"};
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
    chat_emit(chat, conn, o);
}

/* The most chats agent_id may have at once: with several nodes the store counts them (the
 * agent may be signed in on more than one); on one node the queue already did. */
static int agent_capacity(struct chat *chat, int64_t agent_id)
{
    if (!chat->settings.is_shared_store)
        return 0;
    const struct queue_agent *a = queue_agent_get(chat->queue, agent_id);
    return a ? a->capacity : chat->settings.queue.agent_capacity;
}

/* Hands conversation c to agent agent_id (who claimed it, or was chosen by
 * auto-assignment). Returns 0, CD_ENOTFOUND (not waiting), CD_EBUSY (at
 * capacity) or CD_E*. */
int chat_assign(struct chat *chat, struct conv *c, int64_t agent_id)
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
    rc = chat_unit_begin(chat);
    if (!rc)
        rc = store_conversation_claim_within(chat->store, c->rec.id, agent_id, now,
                                             agent_capacity(chat, agent_id));
    int64_t seq = 0;
    char name[64];
    chat_agent_name_of(chat, agent_id, name, sizeof name);
    if (!rc) {
        char text[128];
        snprintf(text, sizeof text, "%s joined", name);
        rc = chat_append_event(chat, c, "agent_joined", text, json_pack("{s:s}", "agent", name),
                               &seq);
    }
    if (rc) {
        chat_unit_undo(chat);
        queue_agent_release(chat->queue, agent_id);
        queue_push(chat->queue, &saved);
        return rc == CD_EBUSY ? CD_ENOTFOUND : rc == CD_EPERM ? CD_EBUSY : rc;
    }
    chat_unit_end(chat);
    c->rec.state = STORE_STATE_WITH_AGENT;
    c->rec.agent_id = agent_id;
    c->rec.is_offline = 0;
    chat_conv_synced(c);
    if (!c->rec.picked_s)
        c->rec.picked_s = now;
    snprintf(c->agent_name, sizeof c->agent_name, "%s", name);
    chat_touch(chat, c);
    chat->is_queue_dirty = 1;
    chat->m.n_picked++;
    if (waited <= chat->settings.queue.pickup_target_s)
        chat->m.n_picked_within_target++;
    chat_wait_observe(chat->m.wait_buckets, &chat->m.wait_sum_s, waited);
    c->has_agent_message = 0;
    store_event_add(chat->store, "pickup", c->rec.id, agent_id, NULL);
    for (struct conn *k = chat->agents; k; k = k->next_agent)
        if (k->agent.id == agent_id)
            emit_assigned(chat, c, k->node.key);
    chat_emit_customer_stored(chat, c,
                              json_pack("{s:s, s:I, s:s}", "type", "agent_joined", "seq",
                                        (json_int_t)seq, "agent", name));
    return 0;
}

/* The conversation named by an agent frame's "conversation" field, which
 * this agent must have. Returns NULL (error emitted) otherwise. */
static struct conv *agent_conv(struct chat *chat, struct conn *k, json_t *o)
{
    int64_t id;
    if (chat_need_int(chat, k->node.key, o, "conversation", 1, INT64_MAX, &id) < 0)
        return NULL;
    struct conv *c = chat_conv_cached(chat, id);
    if (!c || c->rec.state != STORE_STATE_WITH_AGENT ||
        (c->rec.agent_id != k->agent.id && k->agent.role != AUTH_ROLE_ADMIN)) {
        chat_emit_error(chat, k->node.key, c ? "not_assigned" : "not_found",
                        c ? "you do not have this conversation" : "no such open conversation", NULL,
                        id);
        return NULL;
    }
    return c;
}

static void agent_auth(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *token;
    if (chat_need_str(chat, id, o, "token", 1, 256, &token, NULL) < 0) {
        chat_emit_close(chat, id, 1008, "bad token");
        return;
    }
    int rc = auth_check_user(chat->store, chat->throttle, k->address, token, strlen(token),
                             cd_wall_s(), &k->agent);
    if (rc == CD_EBUSY) {
        chat_emit_error(chat, id, "throttled", "too many bad tokens; try again later", NULL, 0);
        chat_emit_close(chat, id, 1008, "throttled");
        return;
    }
    if (rc) {
        chat_emit_error(chat, id, rc == CD_EPERM ? "bad_token" : "store_failed",
                        rc == CD_EPERM ? "unknown or revoked token" : cd_strerror(rc), NULL, 0);
        chat_emit_close(chat, id, 1008, "bad token");
        return;
    }
    if (k->agent.role != AUTH_ROLE_AGENT && k->agent.role != AUTH_ROLE_ADMIN) {
        chat_emit_error(chat, id, "forbidden", "this account's role cannot take chats", NULL, 0);
        chat_emit_close(chat, id, 1008, "forbidden");
        return;
    }
    /* Several nodes: the first connection here of an agent who has no chats counted here
     * brings the agent's chats (signed in elsewhere before, or that node died). */
    const struct queue_agent *qa = queue_agent_get(chat->queue, k->agent.id);
    int is_new_here = !qa || (qa->n_connections == 0 && qa->n_active == 0);
    if (queue_agent_online(chat->queue, k->agent.id, k->agent.name, k->agent.skills,
                           chat->settings.queue.agent_capacity)) {
        chat_emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
        return;
    }
    if (chat->settings.is_shared_store) {
        if (chat_unit_begin(chat) == 0 && store_agent_here(chat->store, k->agent.id) == 0)
            chat_unit_end(chat);
        else
            chat_unit_undo(chat);
        if (is_new_here)
            chat_remote_adopt_agent(chat, k->agent.id);
    }
    k->is_authed = 1;
    CD_LIST_PUSH(chat->agents, k, prev_agent, next_agent);
    chat->m.n_agent_connections++;
    json_t *queues = json_array();
    const char *p = queue_names(chat->queue);
    while (queues && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(queues, json_stringn(p, n));
        p = end ? end + 1 : p + n;
    }
    chat_emit(chat, id,
              json_pack("{s:s, s:o, s:o, s:o}", "type", "ready", "agent", agent_json(chat, k),
                        "queue", chat_queue_items_json(chat), "queues", queues));
    /* The chats this agent already has (console reload, server restart). */
    struct htable_iter it;
    struct htable_node *n;
    htable_iter_init(&it, &chat->convs);
    while ((n = htable_iter_next(&it))) {
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
    if (chat_need_int(chat, id, o, "conversation", 1, INT64_MAX, &conv_id) < 0)
        return;
    struct conv *c = chat_conv_cached(chat, conv_id);
    if (!c && chat->settings.is_shared_store) {
        /* Several nodes: another node's claim may have taken it out of this node's memory
         * just before this one came: the store says which. */
        struct store_conversation rec;
        if (store_conversation_get(chat->store, conv_id, &rec) == 0) {
            int is_taken = rec.state == STORE_STATE_WITH_AGENT;
            store_conversation_clear(&rec);
            if (is_taken) {
                chat_emit_error(chat, id, "already_claimed", "another agent took it first", NULL,
                                conv_id);
                return;
            }
        }
    }
    if (!c || (c->rec.state != STORE_STATE_QUEUED && c->rec.state != STORE_STATE_WITH_AGENT)) {
        chat_emit_error(chat, id, "not_found", "no such waiting conversation", NULL, conv_id);
        return;
    }
    if (c->rec.state == STORE_STATE_WITH_AGENT) {
        char msg[128];
        snprintf(msg, sizeof msg, "conversation %lld was taken by %s", (long long)conv_id,
                 c->rec.agent_id == k->agent.id ? "you already" : "another agent");
        chat_emit_error(chat, id, "already_claimed", msg, NULL, conv_id);
        return;
    }
    int rc = chat_assign(chat, c, k->agent.id);
    if (rc == CD_EBUSY)
        chat_emit_error(chat, id, "at_capacity", "you already have as many chats as you can take",
                        NULL, conv_id);
    else if (rc == CD_ENOTFOUND)
        chat_emit_error(chat, id, "already_claimed", "another agent took it first", NULL, conv_id);
    else if (rc) {
        chat->m.n_store_errors++;
        chat_emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, conv_id);
    }
}

static void agent_message(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    /* The fields first: a frame of the wrong shape is bad_frame whatever the state. */
    const char *client_id, *text;
    if (chat_need_str(chat, id, o, "id", 1, AGENT_ID_MAX, &client_id, NULL) < 0 ||
        chat_need_str(chat, id, o, "text", 1, (size_t)chat->settings.max_message_bytes, &text,
                      NULL) < 0)
        return;
    struct conv *c = agent_conv(chat, k, o);
    if (!c)
        return;
    char *masked = redact_text(chat->redactor, text, strlen(text), NULL);
    if (!masked) {
        chat_emit_error(chat, id, "store_failed", "out of memory", NULL, c->rec.id);
        return;
    }
    char *meta = NULL;
    json_t *mj = json_pack("{s:s}", "agent", k->agent.name);
    meta = mj ? json_dumps(mj, JSON_COMPACT) : NULL;
    json_decref(mj);
    char scoped[CLIENT_ID_MAX + 1];
    chat_agent_scoped_id(k, client_id, scoped, sizeof scoped);
    int64_t seq = 0;
    int rc = meta ? chat_unit_begin(chat) : CD_ENOMEM;
    if (!rc)
        rc = chat_append_message(chat, c, STORE_SENDER_AGENT, scoped, NULL, masked, meta,
                                 k->agent.id, &seq);
    free(meta);
    if (rc == CD_EEXIST) {
        chat_unit_end(chat);
        json_t *ack = chat_agent_ack(c, client_id, seq);
        json_object_set_new(ack, "duplicate", json_true());
        chat_emit(chat, id, ack);
        free(masked);
        return;
    }
    if (chat_unit_finish(chat, rc, id, NULL, c->rec.id)) {
        free(masked);
        return;
    }
    chat->m.n_agent_messages++;
    chat->m.n_agent_messages_delivered += (uint64_t)c->n_conns;
    if (!c->has_agent_message && c->rec.queued_s > 0) {
        c->has_agent_message = 1;
        chat_wait_observe(chat->m.pickup_buckets, &chat->m.pickup_sum_s,
                          cd_wall_s() - c->rec.queued_s);
    }
    chat_emit_customer_stored(chat, c,
                              json_pack("{s:s, s:I, s:s, s:s}", "type", "agent_message", "seq",
                                        (json_int_t)seq, "text", masked, "agent", k->agent.name));
    chat_emit(chat, id, chat_agent_ack(c, client_id, seq));
    free(masked);
}

void chat_agent_scoped_id(const struct conn *k, const char *client_id, char *out, size_t cap)
{
    snprintf(out, cap, "agent:%lld:%s", (long long)k->agent.id, client_id);
}

json_t *chat_agent_ack(const struct conv *c, const char *client_id, int64_t seq)
{
    return json_pack("{s:s, s:I, s:s, s:I}", "type", "ack", "conversation", (json_int_t)c->rec.id,
                     "reply_to", client_id, "seq", (json_int_t)seq);
}

static void agent_close(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *disposition, *note;
    if (chat_need_str(chat, id, o, "disposition", 1, STORE_NAME_MAX - 1, &disposition, NULL) < 0 ||
        chat_field_str(chat, id, o, "note", 0, NOTE_MAX_BYTES, &note, NULL) < 0)
        return;
    struct conv *c = agent_conv(chat, k, o);
    if (!c)
        return;
    char *masked = note ? redact_text(chat->redactor, note, strlen(note), NULL) : NULL;
    int rc = note && !masked ? CD_ENOMEM : chat_unit_begin(chat);
    if (!rc)
        rc = chat_close_conversation(chat, c, "agent", disposition, masked);
    free(masked);
    chat_unit_finish(chat, rc, id, NULL, c->rec.id);
}

/* Puts a chat that an agent had back into a queue (transfer, or the agent
 * went away). Returns 0 or CD_E*. */
int chat_requeue(struct chat *chat, struct conv *c, const char *queue_arg, const char *why)
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
    int rc = chat_store_queue_move(chat, c, &old, why, text,
                                   json_pack("{s:s}", "queue", queue_name), &seq);
    if (rc)
        return rc;
    queue_agent_release(chat->queue, agent);
    struct queue_item it;
    chat_queue_item_of(c, &it);
    it.priority = 1; /* already waited once: to the front */
    queue_push(chat->queue, &it);
    chat->is_queue_dirty = 1;
    chat_emit_customer_stored(chat, c, chat_queued_frame(chat, c, seq));
    return 0;
}

static void agent_transfer(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *q;
    if (chat_need_str(chat, id, o, "queue", 1, QUEUE_NAME_MAX - 1, &q, NULL) < 0)
        return;
    struct conv *c = agent_conv(chat, k, o);
    if (!c)
        return;
    if (!queue_exists(chat->queue, q)) {
        char msg[192];
        snprintf(msg, sizeof msg, "no queue named '%.40s' (queues: %.60s)", q,
                 queue_names(chat->queue));
        chat_emit_error(chat, id, "not_found", msg, NULL, c->rec.id);
        return;
    }
    int64_t agent = c->rec.agent_id;
    int rc = chat_unit_begin(chat);
    if (!rc)
        rc = chat_requeue(chat, c, q, "transferred");
    if (rc) {
        chat_unit_undo(chat);
        chat_emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, c->rec.id);
        return;
    }
    chat_unit_end(chat);
    chat_emit_agent(chat, agent,
                    json_pack("{s:s, s:I, s:s}", "type", "transferred", "conversation",
                              (json_int_t)c->rec.id, "queue", q));
}

void chat_agent_open(struct chat *chat, uint64_t conn, const struct chat_peer *peer)
{
    chat_conn_new(chat, conn, CONN_AGENT, peer);
}

/* status_update {conversation, ...}: see chat_team.c. */
static void agent_status_update(struct chat *chat, struct conn *k, json_t *o)
{
    struct conv *c = agent_conv(chat, k, o);
    if (c)
        chat_agent_status_update(chat, k, c, o);
}

/* typing {conversation} */
static void agent_typing(struct chat *chat, struct conn *k, json_t *o)
{
    struct conv *c = agent_conv(chat, k, o);
    if (c)
        chat_emit_customer(chat, c, json_pack("{s:s, s:s}", "type", "typing", "from", "agent"));
}

/* status {available} */
static void agent_status(struct chat *chat, struct conn *k, json_t *o)
{
    json_t *a = json_object_get(o, "available");
    if (!json_is_boolean(a)) {
        chat_emit_error(chat, k->node.key, "bad_frame", "field 'available' must be true or false",
                        NULL, 0);
        return;
    }
    queue_agent_set_available(chat->queue, k->agent.id, json_is_true(a));
    chat->is_queue_dirty = 1;
    chat_emit_agent(chat, k->agent.id,
                    json_pack("{s:s, s:b}", "type", "status", "available", json_is_true(a)));
}

/* The frames a signed-in agent sends (before: auth only). */
static const struct chat_frame_handler agent_frames[] = {
    {.type = "claim", .handle = agent_claim},
    {.type = "message", .handle = agent_message},
    {.type = "status_update", .handle = agent_status_update},
    {.type = "typing", .handle = agent_typing},
    {.type = "close", .handle = agent_close},
    {.type = "transfer", .handle = agent_transfer},
    {.type = "status", .handle = agent_status},
};

void chat_agent_frame(struct chat *chat, uint64_t conn, const char *text, size_t len)
{
    chat_answers_settle(chat);
    struct conn *k;
    const char *type;
    json_t *o = chat_conn_frame(chat, conn, CONN_AGENT, text, len, &k, &type);
    if (!o)
        return;
    const struct chat_frame_handler *f =
        chat_frame_handler_find(agent_frames, sizeof agent_frames / sizeof agent_frames[0], type);
    if (!strcmp(type, "auth")) {
        if (k->is_authed)
            chat_emit_error(chat, conn, "bad_state", "already signed in", NULL, 0);
        else
            agent_auth(chat, k, o);
    } else if (!k->is_authed) {
        chat_emit_error(chat, conn, "not_authenticated", "send 'auth' with your token first", NULL,
                        0);
        chat_emit_close(chat, conn, 1008, "not authenticated");
    } else if (!f) {
        chat_emit_unknown_type(chat, conn, type);
    } else {
        f->handle(chat, k, o);
    }
    json_decref(o);
}

void chat_agent_closed(struct chat *chat, uint64_t conn)
{
    struct conn *k = chat_conn_closed(chat, conn, CONN_AGENT);
    if (!k)
        return;
    if (k->is_authed) {
        CD_LIST_UNLINK(chat->agents, k, prev_agent, next_agent);
        queue_agent_offline(chat->queue, k->agent.id, cd_wall_s());
        chat->m.n_agent_connections--;
        chat->is_queue_dirty = 1;
    }
    chat_drop_conn(chat, k);
}
