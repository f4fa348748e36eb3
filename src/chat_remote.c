/* chat_remote: what other nodes sharing the store did to conversations this node holds
 * (chat.h's chat_remote_*(), fed by cluster.h's events).
 *
 * DESIGN. The store is the record; each node's memory (its conversations, queue and agents'
 * chat counts) is a cache of it for the connections it holds. Another node's write reaches
 * this node as an event: a stored message is sent, from the store, to the customers and the
 * agent of that conversation connected here, in the frames this node would have sent for it
 * (chat_message_frame(), and the agent's customer_message); a changed conversation is read
 * again and the queue follows it: a chat queued on another node is in every node's queue, a
 * chat claimed anywhere leaves every queue. Every queued conversation is therefore in memory
 * on every node, and a conversation with an agent on the node that agent is signed in to. */
#include "chat_int.h"

#include <stdlib.h>
#include <string.h>

struct remote_ctx {
    struct chat *chat;
    struct conv *conv;
};

static int deliver_one(void *ctx, const struct store_message *m)
{
    struct remote_ctx *r = ctx;
    struct chat *chat = r->chat;
    struct conv *c = r->conv;
    if (m->seq > c->rec.last_seq)
        c->rec.last_seq = m->seq;
    /* A connection still replaying gets this message from its replay, in order. */
    for (struct conn *k = c->conns; k; k = k->next_in_conv)
        if (!k->is_replaying && !k->is_closing && m->seq > k->delivered_floor)
            chat_emit(chat, k->node.key, chat_message_frame(chat, c, m));
    if (m->sender != STORE_SENDER_CUSTOMER)
        return 0;
    if (c->rec.state == STORE_STATE_WITH_AGENT && chat_agent_here(chat, c->rec.agent_id)) {
        chat_emit_agent(chat, c->rec.agent_id,
                        json_pack("{s:s, s:I, s:I, s:s}", "type", "customer_message",
                                  "conversation", (json_int_t)c->rec.id, "seq", (json_int_t)m->seq,
                                  "text", m->text));
    } else if (c->rec.state == STORE_STATE_QUEUED) {
        queue_set_preview(chat->queue, c->rec.id, m->text);
        chat->is_queue_dirty = 1;
    }
    return 0;
}

void chat_remote_message(struct chat *chat, int64_t conversation, int64_t seq)
{
    chat_answers_settle(chat);
    struct conv *c = chat_conv_cached(chat, conversation);
    if (!c || seq < 1)
        return; /* nobody here follows it */
    struct remote_ctx r = {chat, c};
    store_messages_after(chat->store, conversation, seq - 1, 1, deliver_one, &r);
}

void chat_remote_conversation(struct chat *chat, int64_t conversation)
{
    chat_answers_settle(chat);
    struct store_conversation rec;
    if (store_conversation_get(chat->store, conversation, &rec))
        return;
    struct conv *c = chat_conv_cached(chat, conversation);
    if (!c) {
        /* A chat queued elsewhere joins this node's queue, so every agent sees all of it. */
        if (rec.state == STORE_STATE_QUEUED && (c = chat_conv_adopt(chat, &rec)) != NULL)
            chat_conv_enqueue(chat, c);
        store_conversation_clear(&rec);
        return;
    }
    int64_t mem_agent = c->rec.state == STORE_STATE_WITH_AGENT ? c->rec.agent_id : 0;
    if (mem_agent && chat_agent_here(chat, mem_agent) &&
        (rec.state == STORE_STATE_CLOSED || rec.state == STORE_STATE_RATED)) {
        /* Closed on another node: this node's agent is told, as a close here tells it. */
        chat_tell_agent_closed(chat, mem_agent, c->rec.id, rec.closed_by);
    }
    chat_conv_refresh(chat, c, &rec);
    int is_agents_here =
        c->rec.state == STORE_STATE_WITH_AGENT && chat_agent_here(chat, c->rec.agent_id);
    if (c->n_conns == 0 && !is_agents_here && c->rec.state != STORE_STATE_QUEUED && !c->is_touched)
        chat_conv_evict(chat, c);
}

struct adopt_ctx {
    struct chat *chat;
    int64_t agent_id;
};

static int adopt_agents_chat(void *ctx, const struct store_conversation *rec)
{
    struct adopt_ctx *a = ctx;
    struct chat *chat = a->chat;
    if (rec->state != STORE_STATE_WITH_AGENT || rec->agent_id != a->agent_id)
        return 0;
    struct conv *c = chat_conv_cached(chat, rec->id);
    if (!c && !(c = chat_conv_adopt_copy(chat, rec)))
        return 0;
    chat_agent_name_of(chat, a->agent_id, c->agent_name, sizeof c->agent_name);
    queue_agent_add_chat(chat->queue, a->agent_id, c->agent_name);
    return 0;
}

void chat_remote_adopt_agent(struct chat *chat, int64_t agent_id)
{
    struct adopt_ctx a = {chat, agent_id};
    store_conversations_open(chat->store, 100000, adopt_agents_chat, &a);
}

/* Several nodes, about every third of the grace period: this node's heartbeat for the agents
 * signed in to it, then the chats of agents no node has seen for the grace period (their node
 * died and they did not sign in elsewhere) go back to the queue. Any node may do it: the save
 * expects the agent still there, so one node requeues a chat and the others are refused. */
void chat_remote_tick(struct chat *chat, int64_t now_s)
{
    int period = chat->settings.agent_grace_s / 3 > 0 ? chat->settings.agent_grace_s / 3 : 1;
    if (now_s - chat->last_heartbeat_s < period)
        return;
    chat->last_heartbeat_s = now_s;
    for (struct conn *k = chat->agents; k; k = k->next_agent) {
        if (chat_unit_begin(chat) == 0 && store_agent_here(chat->store, k->agent.id) == 0)
            chat_unit_end(chat);
        else
            chat_unit_undo(chat);
    }
    int64_t ids[64];
    int n = 0;
    if (store_orphaned_chats(chat->store, (now_s - chat->settings.agent_grace_s) * 1000, ids, 64,
                             &n))
        return;
    for (int i = 0; i < n; i++) {
        struct conv *c = chat_conv_load(chat, ids[i]);
        if (!c || c->rec.state != STORE_STATE_WITH_AGENT || chat_agent_here(chat, c->rec.agent_id))
            continue;
        if (chat_unit_begin(chat) == 0 &&
            chat_requeue(chat, c, c->rec.queue[0] ? c->rec.queue : "general", "agent_left") == 0)
            chat_unit_end(chat);
        else
            chat_unit_undo(chat);
        chat_touch(chat, c); /* forgotten at the flush if nobody here follows it */
    }
}
