/* chat_customer: the customer protocol (docs/protocol.md): hello and resume with paced replay,
 * messages and the bot's reply to each, feedback, contact details, handoff on request, close,
 * rating and typing. Each frame is one unit of work (chat.c): validated whole before anything
 * changes, its writes undone together if any fails. */
#include "chat_int.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON text for the hot frames ----
 * The reply and its stored meta are built as text, as json_dumps() with
 * JSON_COMPACT would write them (same key order, escapes and numbers), with
 * no json_t tree: they are most of the JSON a message costs (cd_json_*). */

/* Appends s as a JSON string, or null for NULL (CD_EINVAL for invalid UTF-8, CD_ENOMEM). */
static int jb_str_or_null(struct cd_buf *b, const char *s)
{
    return s ? cd_json_string(b, s, strlen(s), 0) : cd_buf_append(b, "null", 4);
}

/* Appends key (the text before a value, such as ,"title":) and s as a JSON string, or null
 * for NULL. */
static int jb_field(struct cd_buf *b, const char *key, const char *s)
{
    int rc = cd_buf_puts(b, key);
    return rc ? rc : jb_str_or_null(b, s);
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
        rc = jb_field(b, i ? ",{\"id\":" : "{\"id\":", d->articles[i].id);
        if (!rc)
            rc = jb_field(b, ",\"title\":", d->articles[i].title ? d->articles[i].title : "");
        if (!rc)
            rc = jb_field(b, ",\"url\":", url);
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
        rc = jb_field(b, i ? ",{\"id\":" : "{\"id\":", d->candidates[i].intent);
        if (!rc)
            rc =
                jb_field(b, ",\"label\":",
                         d->candidates[i].label ? d->candidates[i].label : d->candidates[i].intent);
        if (!rc)
            rc = cd_buf_append(b, "}", 1);
    }
    return rc ? rc : cd_buf_append(b, "]", 1);
}

/* ---- the bot's reply ---- */

/* Appends the optional tail of a reply, in this order: ,"choices":[...] (choices not NULL),
 * ,"collect":field and ,"queue":queue (each when not NULL). */
static int jb_reply_extras(struct cd_buf *b, const struct cd_buf *choices, const char *collect,
                           const char *queue)
{
    int rc = 0;
    if (choices) {
        rc = cd_buf_puts(b, ",\"choices\":");
        if (!rc)
            rc = cd_buf_append(b, choices->data, choices->len);
    }
    if (!rc && collect)
        rc = jb_field(b, ",\"collect\":", collect);
    if (!rc && queue)
        rc = jb_field(b, ",\"queue\":", queue);
    return rc;
}

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
    if (d->action != TRIAGE_ANSWER)
        chat->may_batch = 0; /* what else it does (a handoff, an unanswered question) waits */
    int is_collect = d->action == TRIAGE_HANDOFF && d->collect_prompt && d->collect_prompt[0];
    const char *text = is_collect ? d->collect_prompt : (d->answer ? d->answer : "");
    if (is_collect)
        action = "clarify";
    /* The articles and choices are the same in the stored meta and the
     * frame: built once. */
    struct cd_buf common = {0}, choices = {0}, meta = {0};
    int has_choices = d->action == TRIAGE_CLARIFY && d->n_candidates > 0;
    const char *queue_name = d->queue[0] ? d->queue : "general";
    int is_handoff = d->action == TRIAGE_HANDOFF && !is_collect;
    const char *intent = d->intent[0] ? d->intent : NULL;
    /* "action", "intent", "confidence" and "articles", in that order in both. */
    int rc = jb_field(&common, "\"action\":", action);
    if (!rc)
        rc = jb_field(&common, ",\"intent\":", intent);
    if (!rc)
        rc = cd_buf_puts(&common, ",\"confidence\":");
    if (!rc)
        rc = cd_json_real(&common, d->confidence);
    if (!rc)
        rc = cd_buf_puts(&common, ",\"articles\":");
    if (!rc)
        rc = jb_articles(&common, d, chat->public_url);
    if (!rc && has_choices)
        rc = jb_choices(&choices, d);
    if (!rc)
        rc = cd_buf_append(&meta, "{", 1);
    if (!rc)
        rc = cd_buf_append(&meta, common.data, common.len);
    if (!rc)
        rc = cd_buf_puts(&meta, ",\"question_seq\":");
    if (!rc)
        rc = cd_json_int(&meta, (long long)question_seq);
    if (!rc)
        rc = jb_reply_extras(&meta, has_choices ? &choices : NULL,
                             is_collect ? (d->collect_field ? d->collect_field : "detail") : NULL,
                             is_handoff ? queue_name : NULL);
    if (!rc && reply_to)
        rc = jb_field(&meta, ",\"reply_to\":", reply_to);
    if (!rc && d->is_scored)
        rc = cd_buf_puts(&meta, ",\"scored\":true");
    if (!rc)
        rc = cd_buf_append(&meta, "}", 1);
    /* The state the reply leaves, written with it when the state or the intent changes (a
     * question answered like the one before costs no UPDATE), and then only the three
     * columns a reply sets; a handoff is saved whole by chat_enqueue() below. */
    struct store_conversation next;
    memset(&next, 0, sizeof next);
    next.id = c->rec.id;
    next.state = d->action == TRIAGE_CLARIFY  ? STORE_STATE_CLARIFYING
                 : is_collect                 ? STORE_STATE_COLLECTING
                 : d->action == TRIAGE_ANSWER ? STORE_STATE_BOT
                                              : c->rec.state;
    snprintf(next.intent, sizeof next.intent, "%s", d->intent);
    next.confidence = d->confidence;
    int is_changed =
        !is_handoff && (next.state != c->rec.state || strcmp(next.intent, c->rec.intent));
    int64_t seq = 0;
    if (!rc)
        rc = chat_append_reply(chat, c, reply_to, text, meta.data, is_changed ? &next : NULL, &seq);
    else
        rc = CD_ENOMEM; /* as when json_pack() failed */
    cd_buf_free(&meta);
    if (rc) {
        cd_buf_free(&common);
        cd_buf_free(&choices);
        return rc;
    }

    /* The conversation's new state. */
    int old_state = c->rec.state;
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
    int frc = jb_field(&frame, "{\"type\":\"reply\",\"reply_to\":", reply_to);
    if (!frc)
        frc = cd_buf_puts(&frame, ",\"seq\":");
    if (!frc)
        frc = cd_json_int(&frame, (long long)seq);
    if (!frc)
        frc = jb_field(&frame, ",\"text\":", text);
    if (!frc)
        frc = cd_buf_append(&frame, ",", 1);
    if (!frc)
        frc = cd_buf_append(&frame, common.data, common.len);
    if (!frc)
        frc = jb_reply_extras(&frame, has_choices ? &choices : NULL,
                              is_collect ? c->collect_field : NULL, is_handoff ? queue_name : NULL);
    if (!frc)
        frc = cd_buf_append(&frame, "}", 1);
    if (!frc) /* as before: a frame that cannot be built is not sent */
        chat_emit_customer_stored_text(chat, c, frame.data);
    cd_buf_free(&frame);
    cd_buf_free(&common);
    cd_buf_free(&choices);
    if (is_handoff)
        return chat_enqueue(chat, c, d->queue[0] ? d->queue : "general", d->priority);
    if (is_changed)
        chat_conv_synced(c);
    return 0;
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
    chat_touch(chat, c);
}

/* Valid language tag: 2-7 of [a-zA-Z-]. */
/* Starts a new conversation for connection k (fields from hello, or none). */
static struct conv *start_conversation(struct chat *chat, struct conn *k, const char *lang,
                                       const char *name, const char *email, const char *page)
{
    char token[AUTH_TOKEN_HEX + 1];
    struct store_conversation rec;
    memset(&rec, 0, sizeof rec);
    if (auth_token_new(token, rec.token_hash)) {
        chat_emit_error(chat, k->node.key, "store_failed", "no randomness for a token", NULL, 0);
        return NULL;
    }
    snprintf(rec.lang, sizeof rec.lang, "%s", lang ? lang : chat->default_lang);
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
        chat_emit_error(chat, k->node.key, "store_failed", "out of memory", NULL, 0);
        return NULL;
    }
    int rc = chat_unit_begin(chat);
    if (!rc)
        rc = store_conversation_create(chat->store, &rec);
    if (rc) {
        chat_unit_undo(chat);
        store_conversation_clear(&rec);
        chat_emit_error(chat, k->node.key, "store_failed", cd_strerror(rc), NULL, 0);
        chat->m.n_store_errors++;
        return NULL;
    }
    chat_unit_end(chat);
    struct conv *c = chat_conv_adopt(chat, &rec);
    if (!c) {
        store_conversation_clear(&rec);
        chat_emit_error(chat, k->node.key, "store_failed", "out of memory", NULL, 0);
        return NULL;
    }
    if (!lang)
        c->lang_probe = langid_probe_new(); /* NULL: the default language, as before */
    c->has_customer_message = 0;
    attach(chat, k, c);
    chat->m.n_conversations++;
    k->is_resyncing = 1;
    chat_emit(chat, k->node.key, welcome_frame(c, token, 0));
    return c;
}

struct replay_ctx {
    struct chat *chat;
    struct conv *conv;
    uint64_t conn;
    int64_t last;
    int n;
};

/* One stored message as the frame it was sent as live. */
json_t *chat_message_frame(struct chat *chat, struct conv *c, const struct store_message *m)
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
        json_t *su = meta ? json_object_get(meta, "status_update") : NULL;
        if (o && json_is_object(su))
            json_object_set(o, "status_update", su);
    } else {
        const char *event = meta ? json_string_value(json_object_get(meta, "event")) : NULL;
        event = event ? event : "note";
        if (!strcmp(event, "queued")) {
            o = chat_queued_frame(chat, c, m->seq);
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
    chat_emit(r->chat, r->conn, chat_message_frame(r->chat, r->conv, m));
    r->last = m->seq;
    r->n++;
    return 0;
}

/* The frames that tell a resumed connection where its conversation stands,
 * once the replay has caught up. */
static void replay_done(struct chat *chat, struct conn *k)
{
    struct conv *c = k->conv;
    chat_replay_end(chat, k);
    if (c->rec.state == STORE_STATE_QUEUED)
        chat_emit(chat, k->node.key, chat_queued_frame(chat, c, 0));
    else if (c->rec.state == STORE_STATE_CLOSED)
        chat_emit(chat, k->node.key, json_pack("{s:s, s:i}", "type", "rating_request", "scale", 5));
}

/* Sends one resumed connection the stored messages after k->replay_after,
 * as many as the transport has room for (all of them when the transport
 * does not say), in bounded pages, then the current state. New messages
 * stored meanwhile are part of the replay: live frames skip a connection
 * while it replays (emit_customer_stored), so everything arrives in order
 * and once. */
void chat_replay_step(struct chat *chat, struct conn *k)
{
    struct conv *c = k->conv;
    int budget = INT32_MAX;
    if (chat->room) {
        budget = chat->room(chat->io.ctx, k->node.key) - k->n_pending;
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
        chat_emit_error(chat, id, "already_started", "this connection already has a conversation",
                        NULL, 0);
        return;
    }
    const char *token, *lang, *name, *email, *page;
    if (chat_field_str(chat, id, o, "token", 1, 256, &token, NULL) < 0 ||
        chat_field_str(chat, id, o, "lang", 1, 64, &lang, NULL) < 0 ||
        chat_field_str(chat, id, o, "name", 1, NAME_MAX_BYTES, &name, NULL) < 0 ||
        chat_field_str(chat, id, o, "email", 3, CD_EMAIL_MAX, &email, NULL) < 0 ||
        chat_field_str(chat, id, o, "page", 1, PAGE_MAX_BYTES, &page, NULL) < 0)
        return;
    char lang_code[4];
    if (lang && !text_lang_code(lang, lang_code)) {
        chat_emit_error(chat, id, "bad_frame",
                        "field 'lang' must be a language code such as \"en\"", NULL, 0);
        return;
    }
    if (email && !cd_is_email(email)) {
        chat_emit_error(chat, id, "bad_frame", "field 'email' must be an email address", NULL, 0);
        return;
    }
    json_t *ls = json_object_get(o, "last_seq");
    int64_t last_seq = -1;
    if (ls && !json_is_null(ls)) {
        if (!json_is_integer(ls) || json_integer_value(ls) < 0) {
            chat_emit_error(chat, id, "bad_frame", "field 'last_seq' must be an integer >= 0", NULL,
                            0);
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
        chat_emit_error(chat, id, "throttled", "too many bad tokens; try again later", NULL, 0);
        chat_emit_close(chat, id, 1008, "throttled");
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
        chat_emit_error(chat, id,
                        rc == CD_EINVAL || rc == CD_ENOTFOUND ? "bad_token" : "store_failed",
                        rc == CD_EINVAL || rc == CD_ENOTFOUND
                            ? "unknown conversation token; start a new conversation without one"
                            : cd_strerror(rc),
                        NULL, 0);
        return;
    }
    struct conv *c = chat_conv_cached(chat, rec.id);
    if (c) {
        /* Another node may have stored messages this node has not heard of yet. */
        if (rec.last_seq > c->rec.last_seq)
            c->rec.last_seq = rec.last_seq;
        store_conversation_clear(&rec);
    } else {
        c = chat_conv_adopt(chat, &rec);
        if (!c) {
            store_conversation_clear(&rec);
            chat_emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
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
    chat_emit(chat, id, welcome_frame(c, hex, 1));
    /* What this connection has, or gets from the replay: another node's event for one of
     * these messages (it may come late) is not sent again (chat_remote.c). */
    k->delivered_floor = last_seq > c->rec.last_seq ? last_seq : c->rec.last_seq;
    if (last_seq >= 0 && last_seq < c->rec.last_seq) {
        chat_replay_begin(chat, k, last_seq);
        chat_replay_step(chat, k);
    } else {
        replay_done(chat, k);
    }
    if (was_alone && c->rec.state == STORE_STATE_WITH_AGENT)
        chat_emit_agent(chat, c->rec.agent_id,
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
    chat_emit(d->chat, d->conn, chat_message_frame(d->chat, d->conv, m));
    return 0;
}

/* A message id that is already stored: answer as the first time (the same
 * reply, or an ack), storing nothing. */
static void resend_answer(struct chat *chat, struct conv *c, uint64_t conn, const char *client_id)
{
    struct dup_ctx d = {chat, c, conn, 0, 0, 0};
    store_message_by_client_id(chat->store, c->rec.id, client_id, dup_one, &d);
    if (!d.has_reply)
        chat_emit(chat, conn,
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

/* The bot's decision on a customer's message in the bot's hands (a clarify choice it
 * offered, else triage) and its reply, stored as the reply to client_id (at question_seq).
 * Returns 0, CD_EINVAL (the text is not UTF-8; nothing said) or CD_E*. */
static int decide_and_reply(struct chat *chat, struct conv *c, const char *client_id,
                            int64_t question_seq, const char *masked, const char *choice)
{
    struct triage_decision d;
    memset(&d, 0, sizeof d);
    int is_choice = 0;
    for (int i = 0; choice && i < c->n_choices; i++)
        if (!strcmp(choice, c->choices[i]))
            is_choice = 1;
    int rc = is_choice ? triage_decide_choice(chat->triage, chat->kb, choice, &d) : CD_ENOTFOUND;
    if (rc) {
        triage_decision_clear(&d);
        memset(&d, 0, sizeof d);
        rc = chat_decide(chat, c, masked, strlen(masked), &d);
    }
    if (!rc) {
        chat_update_context(c, &d);
        rc = bot_reply(chat, c, client_id, question_seq, masked, &d);
    }
    triage_decision_clear(&d);
    return rc;
}

static void count_message_in(struct chat *chat, struct conv *c, int is_first_message);

/* What a's message may change of its conversation and the counters, as they are before it
 * (chat_answers_settle() puts them back if its answer was not stored). */
static void ahead_snapshot(struct chat *chat, struct chat_ahead *a, struct conv *c)
{
    a->c = c;
    a->frame_start = chat->n_frames;
    chat_ahead_copy(a, c, 0);
    a->n_messages_in = chat->m.n_messages_in;
    a->n_answer = chat->m.n_answer;
    a->n_engaged = chat->m.n_conversations_engaged;
    a->n_escalated = chat->m.n_conversations_escalated;
}

/* The customer's question sent ahead (store_message_send(): PostgreSQL) at the seq this
 * node expects, while the bot decides; it goes with the reply in one statement. When the
 * reply is an answer (and may_batch) that statement goes without waiting and joins the
 * answers in flight (chat_answers_settle()); else its result is read at once. Returns 1 when the
 * store does not send ahead (nothing done); CD_EBUSY when the question was not stored that
 * way (its client id is stored already, or another node wrote to the conversation), with
 * the unit undone and the conversation as it was; else as decide_and_reply(), the unit
 * open and, on 0, the message counted. */
static int answer_ahead(struct chat *chat, uint64_t conn, struct conv *c, const char *client_id,
                        const char *masked, const char *choice, int is_first_message, int may_batch)
{
    if (!store_sends_ahead(chat->store))
        return 1;
    struct store_message q;
    struct chat_ahead a;
    ahead_snapshot(chat, &a, c);
    char *copy = may_batch ? strdup(masked) : NULL; /* to take it again (chat_answers_settle()) */
    int rc = chat_send_message(chat, c, client_id, masked, &q);
    if (rc) {
        free(copy);
        return rc;
    }
    chat->may_batch = copy != NULL;
    chat->batch_ticket = -1;
    rc = decide_and_reply(chat, c, client_id, q.seq, masked, choice);
    chat->may_batch = 0;
    if (!rc && chat->batch_ticket >= 0) { /* in flight */
        count_message_in(chat, c, is_first_message);
        a.ticket = chat->batch_ticket;
        a.conn = conn;
        snprintf(a.client_id, sizeof a.client_id, "%s", client_id);
        a.has_choice = choice != NULL;
        snprintf(a.choice, sizeof a.choice, "%s", choice ? choice : "");
        a.text = copy;
        a.frame_end = chat->n_frames;
        a.n_messages_in = chat->m.n_messages_in - a.n_messages_in;
        a.n_answer = chat->m.n_answer - a.n_answer;
        a.n_engaged = chat->m.n_conversations_engaged - a.n_engaged;
        a.n_escalated = chat->m.n_conversations_escalated - a.n_escalated;
        chat->aheads[chat->n_aheads++] = a;
        c->is_ahead = 1;
        return 0;
    }
    if (chat->batch_ticket >= 0) /* sent, then the reply failed: the unit is undone */
        store_message_pair_result(chat->store, chat->batch_ticket);
    free(copy);
    if (!rc && chat->ahead) /* no write carried it: read it now */
        rc = chat_sent_message(chat);
    if (rc == CD_EBUSY) {
        chat_unit_undo(chat);
        chat_ahead_copy(&a, c, 1); /* the triage context the decision moved */
    }
    if (!rc)
        count_message_in(chat, c, is_first_message);
    return rc;
}

static void count_message_in(struct chat *chat, struct conv *c, int is_first_message)
{
    chat->m.n_messages_in++;
    if (is_first_message) {
        c->has_customer_message = 1;
        chat_count_outcome(chat, c, 1);
    }
}

/* Ends a customer message's unit: rc 0 keeps it, CD_EINVAL says the text is not UTF-8,
 * anything else is store_failed. */
static void finish_message(struct chat *chat, uint64_t id, const char *client_id, char *masked,
                           int rc)
{
    free(masked);
    if (rc == CD_EINVAL) {
        chat_unit_undo(chat);
        chat_emit_error(chat, id, "bad_utf8", "text is not valid UTF-8", client_id, 0);
        return;
    }
    chat_unit_finish(chat, rc, id, client_id, 0);
}

/* message {id, text, choice?} */
static void customer_message(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    const char *client_id, *text, *choice;
    /* The id is a string (protocol.md): a number is a wrong type, not an id. */
    if (chat_need_str(chat, id, o, "id", 1, CLIENT_ID_MAX, &client_id, NULL) < 0)
        return;
    if (!strncmp(client_id, "agent:", 6)) {
        chat_emit_error(chat, id, "bad_frame", "field 'id' may not start with \"agent:\"", NULL, 0);
        return;
    }
    if (chat_need_str(chat, id, o, "text", 1, (size_t)chat->settings.max_message_bytes, &text,
                      client_id) < 0 ||
        chat_field_str(chat, id, o, "choice", 1, INTENT_NAME_MAX - 1, &choice, client_id) < 0)
        return;
    size_t n_text = strlen(text);
    int is_blank = 1;
    for (size_t i = 0; i < n_text && is_blank; i++)
        if (text[i] != ' ' && text[i] != '\n' && text[i] != '\t' && text[i] != '\r')
            is_blank = 0;
    if (is_blank) {
        chat_emit_error(chat, id, "bad_frame", "field 'text' is empty", client_id, 0);
        return;
    }
    struct conv *c = k->conv;
    if (!c) {
        c = start_conversation(chat, k, NULL, NULL, NULL, NULL);
        if (!c)
            return;
    }
    if (c->rec.state == STORE_STATE_CLOSED || c->rec.state == STORE_STATE_RATED) {
        chat_emit_error(chat, id, "bad_state", "this conversation is closed; start a new one",
                        client_id, 0);
        return;
    }
    char *masked = redact_text(chat->redactor, text, n_text, NULL);
    if (!masked) {
        chat_emit_error(chat, id, "store_failed", "out of memory", client_id, 0);
        return;
    }
    chat_take_message(chat, id, c, client_id, masked, choice, 1);
}

void chat_take_message(struct chat *chat, uint64_t id, struct conv *c, const char *client_id,
                       char *masked, const char *choice, int may_batch)
{
    /* Its conversation's answer in flight, or no room for another: known first. */
    if (may_batch && (c->is_ahead || chat->n_aheads == CHAT_AHEAD_MAX))
        chat_answers_settle(chat);
    int is_first_message = !chat_conv_has_customer_message(chat, c);
    int rc = chat_unit_begin(chat);
    if (!rc && (c->rec.state == STORE_STATE_BOT || c->rec.state == STORE_STATE_CLARIFYING)) {
        rc = answer_ahead(chat, id, c, client_id, masked, choice, is_first_message, may_batch);
        if (rc == CD_EBUSY) /* not stored ahead, and undone: the ordinary way below */
            rc = chat_unit_begin(chat);
        else if (rc != 1) {
            finish_message(chat, id, client_id, masked, rc);
            return;
        } else
            rc = 0;
    }
    int64_t seq = 0;
    if (!rc)
        rc = chat_append_message(chat, c, STORE_SENDER_CUSTOMER, client_id, NULL, masked, NULL, 0,
                                 &seq);
    if (rc == CD_EEXIST) {
        chat_unit_end(chat);
        resend_answer(chat, c, id, client_id);
        free(masked);
        return;
    }
    if (!rc) {
        count_message_in(chat, c, is_first_message);
        if (c->rec.state == STORE_STATE_QUEUED || c->rec.state == STORE_STATE_WITH_AGENT) {
            chat_emit_customer_stored(chat, c,
                                      json_pack("{s:s, s:s, s:I}", "type", "ack", "reply_to",
                                                client_id, "seq", (json_int_t)seq));
            if (c->rec.state == STORE_STATE_WITH_AGENT) {
                chat_emit_agent(chat, c->rec.agent_id,
                                json_pack("{s:s, s:I, s:I, s:s}", "type", "customer_message",
                                          "conversation", (json_int_t)c->rec.id, "seq",
                                          (json_int_t)seq, "text", masked));
            } else {
                queue_set_preview(chat->queue, c->rec.id, masked);
                chat->is_queue_dirty = 1;
            }
        } else {
            if (c->rec.state == STORE_STATE_COLLECTING) {
                struct triage_decision d;
                memset(&d, 0, sizeof d);
                /* The detail the bot asked for: hand off with it, unless it
                 * does not look like one (asked again once). */
                snprintf(d.intent, sizeof d.intent, "%s", c->collect_intent);
                snprintf(d.queue, sizeof d.queue, "%s", c->collect_queue);
                d.priority = c->collect_priority;
                d.confidence = c->rec.confidence;
                d.action = TRIAGE_HANDOFF;
                const char *prompt = NULL;
                if (!c->n_collect_tries++ && !collect_matches(chat, c, masked, &prompt) && prompt) {
                    /* Whole, however long the phrase and the prompt (a cut could split a
                     * character, and the reply could not be sent). */
                    struct cd_buf again = {0};
                    rc = cd_buf_printf(
                        &again, "%s %s",
                        triage_phrase(chat->triage, TRIAGE_SAY_COLLECT_AGAIN, c->rec.lang), prompt);
                    d.collect_field = strdup(c->collect_field);
                    d.collect_prompt = rc ? NULL : strdup(again.data);
                    d.answer = rc ? NULL : again.data;
                    if (rc)
                        cd_buf_free(&again);
                    rc = d.answer && d.collect_field && d.collect_prompt ? 0 : CD_ENOMEM;
                } else {
                    d.answer =
                        strdup(triage_phrase(chat->triage, TRIAGE_SAY_COLLECTED, c->rec.lang));
                    rc = d.answer ? 0 : CD_ENOMEM;
                }
                if (!rc) {
                    chat_update_context(c, &d);
                    rc = bot_reply(chat, c, client_id, seq, masked, &d);
                }
                triage_decision_clear(&d);
            } else {
                rc = decide_and_reply(chat, c, client_id, seq, masked, choice);
            }
        }
    }
    finish_message(chat, id, client_id, masked, rc);
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
    if (cd_grow(&chat->learns, &chat->cap_learns, chat->n_learns, sizeof *chat->learns, 8))
        return;
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
    if (chat_need_int(chat, id, o, "seq", 1, INT64_MAX, &seq) < 0)
        return;
    json_t *h = json_object_get(o, "helpful");
    if (!json_is_boolean(h)) {
        chat_emit_error(chat, id, "bad_frame", "field 'helpful' must be true or false", NULL, 0);
        return;
    }
    int is_helpful = json_is_true(h);
    struct bot_msg_ctx b;
    memset(&b, 0, sizeof b);
    if (seq <= c->rec.last_seq)
        store_messages_after(chat->store, c->rec.id, seq - 1, 1, read_bot_msg, &b);
    if (!b.is_bot) {
        chat_emit_error(chat, id, "bad_frame",
                        "field 'seq' is not a bot reply in this conversation", NULL, 0);
        return;
    }
    if (b.question_seq > 0)
        store_messages_after(chat->store, c->rec.id, b.question_seq - 1, 1, read_question, &b);
    int rc = chat_unit_begin(chat);
    if (!rc)
        rc = store_feedback_add(chat->store, c->rec.id, seq, is_helpful,
                                b.article[0] ? b.article : NULL, b.question);
    if (!rc && !is_helpful && b.question && is_unanswered(chat, NULL, c->rec.intent))
        rc = store_unanswered_add(chat->store, c->rec.id, b.question, c->rec.lang, c->rec.intent,
                                  c->rec.confidence);
    if (rc)
        goto fail;
    chat_emit_customer(chat, c,
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
        c->tctx.is_again = 1;
        rc = chat_decide(chat, c, q, strlen(q), &d);
        c->tctx.is_again = 0;
        if (!rc) /* the same kind of answer did not help: a choice, else a person */
            rc = triage_not_helped(chat->triage, &d, c->rec.lang);
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
    chat_unit_end(chat);
    return;
fail:
    free(b.question);
    chat_unit_undo(chat);
    chat->m.n_store_errors++;
    chat_emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, 0);
}

/* handoff {} */
static void customer_handoff(struct chat *chat, struct conn *k, json_t *o)
{
    (void)o;
    struct conv *c = k->conv;
    if (c->rec.state == STORE_STATE_QUEUED) {
        chat_emit(chat, k->node.key, chat_queued_frame(chat, c, 0));
        return;
    }
    if (c->rec.state != STORE_STATE_BOT && c->rec.state != STORE_STATE_CLARIFYING &&
        c->rec.state != STORE_STATE_COLLECTING) {
        chat_emit_error(chat, k->node.key, "bad_state",
                        c->rec.state == STORE_STATE_WITH_AGENT ? "an agent already has this chat"
                                                               : "this conversation is closed",
                        NULL, 0);
        return;
    }
    struct triage_decision d;
    int rc = triage_person_request(chat->triage, c->last_intent, c->rec.lang, c->collect_queue, &d);
    if (!rc)
        rc = chat_unit_begin(chat);
    if (!rc)
        rc = bot_reply(chat, c, NULL, 0, NULL, &d);
    triage_decision_clear(&d);
    chat_unit_finish(chat, rc, k->node.key, NULL, 0);
}

/* contact {email?, name?} */
static void customer_contact(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    struct conv *c = k->conv;
    const char *email, *name;
    if (chat_field_str(chat, id, o, "email", 3, CD_EMAIL_MAX, &email, NULL) < 0 ||
        chat_field_str(chat, id, o, "name", 1, NAME_MAX_BYTES, &name, NULL) < 0)
        return;
    if (!email && !name) {
        chat_emit_error(chat, id, "bad_frame", "send 'email' or 'name'", NULL, 0);
        return;
    }
    if (email && !cd_is_email(email)) {
        chat_emit_error(chat, id, "bad_frame", "field 'email' must be an email address", NULL, 0);
        return;
    }
    char *new_email = email ? redact_email_field(chat->redactor, email) : NULL;
    char *new_name = name ? redact_text(chat->redactor, name, strlen(name), NULL) : NULL;
    if ((email && !new_email) || (name && !new_name)) {
        free(new_email);
        free(new_name);
        chat_emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
        return;
    }
    struct store_conversation old = c->rec;
    if (new_email)
        c->rec.customer_email = new_email;
    if (new_name)
        c->rec.customer_name = new_name;
    if (chat_save_conv_change(chat, c, &old, id)) {
        free(new_email);
        free(new_name);
        return;
    }
    if (new_email)
        free(old.customer_email);
    if (new_name)
        free(old.customer_name);
    json_t *ok = json_pack("{s:s}", "type", "contact_ok");
    if (ok && email)
        json_object_set_new(ok, "email", json_string(c->rec.customer_email));
    if (ok && name)
        json_object_set_new(ok, "name", json_string(c->rec.customer_name));
    chat_emit_customer(chat, c, ok);
}

/* close {} */
static void customer_close(struct chat *chat, struct conn *k, json_t *o)
{
    (void)o;
    struct conv *c = k->conv;
    if (c->rec.state == STORE_STATE_CLOSED || c->rec.state == STORE_STATE_RATED) {
        chat_emit_error(chat, k->node.key, "bad_state", "this conversation is already closed", NULL,
                        0);
        return;
    }
    int rc = chat_unit_begin(chat);
    if (!rc)
        rc = chat_close_conversation(chat, c, "customer", NULL, NULL);
    chat_unit_finish(chat, rc, k->node.key, NULL, 0);
}

/* rating {score, comment?} */
static void customer_rating(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    struct conv *c = k->conv;
    json_t *sv = json_object_get(o, "score");
    const char *comment;
    if (!json_is_integer(sv) || json_integer_value(sv) < 1 || json_integer_value(sv) > 5) {
        chat_emit_error(chat, id, "bad_frame", "field 'score' must be an integer from 1 to 5", NULL,
                        0);
        return;
    }
    if (chat_field_str(chat, id, o, "comment", 0, NOTE_MAX_BYTES, &comment, NULL) < 0)
        return;
    if (c->rec.state != STORE_STATE_CLOSED) {
        chat_emit_error(chat, id, "bad_state",
                        c->rec.state == STORE_STATE_RATED
                            ? "this conversation is already rated"
                            : "rate the conversation after it is closed",
                        NULL, 0);
        return;
    }
    char *masked = comment ? redact_text(chat->redactor, comment, strlen(comment), NULL) : NULL;
    if (comment && !masked) {
        chat_emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
        return;
    }
    struct store_conversation old = c->rec;
    int score = (int)json_integer_value(sv);
    c->rec.rating = score;
    c->rec.state = STORE_STATE_RATED;
    if (masked)
        c->rec.comment = masked;
    if (chat_save_conv_change(chat, c, &old, id)) {
        free(masked);
        return;
    }
    if (masked)
        free(old.comment);
    chat_emit_customer(chat, c, json_pack("{s:s, s:i}", "type", "rating_ok", "score", score));
    if (chat->settings.is_nps)
        chat_emit_customer(chat, c, chat_nps_request());
    if (c->rec.agent_id) {
        json_t *r = json_pack("{s:s, s:I, s:i}", "type", "rating", "conversation",
                              (json_int_t)c->rec.id, "score", score);
        if (r && c->rec.comment)
            json_object_set_new(r, "comment", json_string(c->rec.comment));
        chat_emit_agent(chat, c->rec.agent_id, r);
    }
}

/* typing {} */
static void customer_typing(struct chat *chat, struct conn *k, json_t *o)
{
    (void)o;
    struct conv *c = k->conv;
    if (c->rec.state == STORE_STATE_WITH_AGENT)
        chat_emit_agent(chat, c->rec.agent_id,
                        json_pack("{s:s, s:I, s:s}", "type", "typing", "conversation",
                                  (json_int_t)c->rec.id, "from", "customer"));
}

void chat_customer_open(struct chat *chat, uint64_t conn, const struct chat_peer *peer)
{
    if (chat_conn_new(chat, conn, CONN_CUSTOMER, peer))
        chat->m.n_customer_connections++;
}

/* The frames a customer sends, and whether each needs the conversation hello or a first
 * message started. */
static const struct chat_frame_handler customer_frames[] = {
    {"hello", customer_hello, 0},       {"message", customer_message, 0},
    {"feedback", customer_feedback, 1}, {"handoff", customer_handoff, 1},
    {"typing", customer_typing, 1},     {"rating", customer_rating, 1},
    {"close", customer_close, 1},       {"contact", customer_contact, 1},
    {"nps", chat_customer_nps, 1},
};

void chat_customer_frame(struct chat *chat, uint64_t conn, const char *text, size_t len)
{
    struct conn *k;
    const char *type;
    json_t *o = chat_conn_frame(chat, conn, CONN_CUSTOMER, text, len, &k, &type);
    if (!o)
        return;
    const struct chat_frame_handler *f = chat_frame_handler_find(
        customer_frames, sizeof customer_frames / sizeof customer_frames[0], type);
    if (!f || f->handle != customer_message)
        chat_answers_settle(chat); /* a message settles only its own conversation's answer */
    if (!f)
        chat_emit_unknown_type(chat, conn, type);
    else if (f->needs_conversation && !k->conv)
        chat_emit_error(chat, conn, "no_conversation",
                        "send 'hello' or a 'message' to start a conversation first", NULL, 0);
    else
        f->handle(chat, k, o);
    json_decref(o);
}

void chat_customer_closed(struct chat *chat, uint64_t conn)
{
    struct conn *k = chat_conn_closed(chat, conn, CONN_CUSTOMER);
    if (!k)
        return;
    struct conv *c = k->conv;
    chat_detach(chat, k);
    if (c) {
        chat_touch(chat, c);
        if (c->n_conns == 0 && c->rec.state == STORE_STATE_WITH_AGENT)
            chat_emit_agent(chat, c->rec.agent_id,
                            json_pack("{s:s, s:I, s:s}", "type", "customer_left", "conversation",
                                      (json_int_t)c->rec.id, "reason", "disconnected"));
    }
    chat->m.n_customer_connections--;
    chat_drop_conn(chat, k);
}
