/* server: libwebsockets glue: the context and its lifecycle, the /chat and /agent websockets
 * (limits, reassembly, bounded out queues, slow readers), the group commit and ticks, and the
 * protocol callback that hands HTTP to server_http.c; see server.h. */
#include "server_int.h"

#include "api.h"
#include "cd.h"
#include "chat.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "ws_guard.h"

#include <libwebsockets.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested, reload_requested;

void server_request_stop(void)
{
    stop_requested = 1;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

/* ---- connection ids ---------------------------------------------------- */

static int slot_take(struct server *s, struct session *pss)
{
    if (!s->n_free) {
        uint32_t n = s->n_slots ? s->n_slots * 2 : 1024;
        if (cd_resize(&s->slots, n, sizeof *s->slots) ||
            cd_resize(&s->free_slots, n, sizeof *s->free_slots))
            return CD_ENOMEM;
        for (uint32_t i = n; i > s->n_slots; i--) {
            s->slots[i - 1].session = NULL;
            s->slots[i - 1].generation = 1;
            s->free_slots[s->n_free++] = i - 1;
        }
        s->n_slots = n;
    }
    uint32_t i = s->free_slots[--s->n_free];
    s->slots[i].session = pss;
    pss->id = ((uint64_t)s->slots[i].generation << 32) | i;
    return 0;
}

static void slot_release(struct server *s, struct session *pss)
{
    uint32_t i = (uint32_t)pss->id;
    if (!pss->id || i >= s->n_slots || s->slots[i].session != pss)
        return;
    s->slots[i].session = NULL;
    s->slots[i].generation++;
    if (!s->slots[i].generation)
        s->slots[i].generation = 1;
    s->free_slots[s->n_free++] = i;
}

static struct session *slot_find(struct server *s, uint64_t id)
{
    uint32_t i = (uint32_t)id;
    if (i >= s->n_slots || s->slots[i].generation != (uint32_t)(id >> 32))
        return NULL;
    return s->slots[i].session;
}

/* ---- outgoing frames --------------------------------------------------- */

static void out_clear(struct session *pss)
{
    struct out_frame *f = pss->out_head;
    while (f) {
        struct out_frame *next = f->next;
        free(f);
        f = next;
    }
    pss->out_head = pss->out_tail = NULL;
    pss->n_out = 0;
}

/* Closes a connection from outside its own callback. */
static void session_kill(struct session *pss)
{
    out_clear(pss);
    pss->is_closing = 1;
    lws_set_timeout(pss->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

static void session_enqueue(struct server *s, struct session *pss, const char *frame, size_t len)
{
    if (pss->is_closing && !pss->close_code)
        return;
    int64_t now = cd_now_us();
    if (!pss->out_head)
        pss->progress_at_us = now;
    unsigned limit = (unsigned)s->cfg->max_queued_frames;
    if (pss->n_out >= limit || pss->n_out == UINT16_MAX) {
        log_event(LOG_WARN, "slow_reader_closed", "conn:u", (unsigned long long)pss->id, "queued:i",
                  (int)pss->n_out, LOG_END);
        metrics_add(s->metrics, METRICS_SLOW_READER_CLOSED, 1);
        session_kill(pss);
        return;
    }
    struct out_frame *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) {
        log_event(LOG_ERROR, "out_of_memory", "conn:u", (unsigned long long)pss->id, LOG_END);
        return;
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->buf + LWS_PRE, frame, len);
    if (pss->out_tail)
        pss->out_tail->next = f;
    else
        pss->out_head = f;
    pss->out_tail = f;
    pss->n_out++;
    lws_callback_on_writable(pss->wsi);
}

/* Queues an error frame made by the server itself (bad frame, rate limit). */
static void send_error(struct server *s, struct session *pss, const char *code, const char *message)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}",
                     code, message);
    if (n > 0 && (size_t)n < sizeof buf)
        session_enqueue(s, pss, buf, (size_t)n);
}

static void close_after_queue(struct session *pss, int code)
{
    pss->is_closing = 1;
    pss->close_code = (uint16_t)code;
    lws_callback_on_writable(pss->wsi);
}

static void io_send(void *ctx, uint64_t conn, const char *frame, size_t len)
{
    struct server *s = ctx;
    struct session *pss = slot_find(s, conn);
    if (!pss)
        return; /* the connection is gone; the store has the message */
    session_enqueue(s, pss, frame, len);
    if (pss->is_written || !pss->out_head)
        return;
    if (cd_grow(&s->written, &s->cap_written, s->n_written, sizeof *s->written, 256))
        return; /* its writable callback sends it */
    s->written[s->n_written++] = conn;
    pss->is_written = 1;
}

/* chat_set_room(): how many more frames a replay may queue for conn. It stays under
 * max-queued-frames (a slow reader's limit, session_enqueue()) by a reserve for the live
 * frames that follow a replay step in the same turn (the state after it): 16, or half a small
 * queue. */
static int io_room(void *ctx, uint64_t conn)
{
    struct server *s = ctx;
    const struct session *pss = slot_find(s, conn);
    int max = s->cfg->max_queued_frames, reserve = max / 2 < 16 ? max / 2 : 16;
    return pss ? max - reserve - pss->n_out : 0;
}

static int is_flush_pending(const struct server *s)
{
    return s->is_flush_scheduled || s->n_unflushed > 0;
}

static void io_close(void *ctx, uint64_t conn, int code, const char *reason)
{
    struct server *s = ctx;
    struct session *pss = slot_find(s, conn);
    if (!pss)
        return;
    log_event(LOG_DEBUG, "ws_close_requested", "conn:u", (unsigned long long)conn, "code:i", code,
              "reason:s", reason, LOG_END);
    if (is_flush_pending(s)) {
        if (cd_grow(&s->pending_closes, &s->cap_pending_closes, s->n_pending_closes,
                    sizeof *s->pending_closes, 16)) {
            close_after_queue(pss, code ? code : 1000);
            return;
        }
        s->pending_closes[s->n_pending_closes].conn = conn;
        s->pending_closes[s->n_pending_closes].code = code ? code : 1000;
        s->n_pending_closes++;
        return;
    }
    close_after_queue(pss, code ? code : 1000);
}

static void run_pending_closes(struct server *s)
{
    for (int i = 0; i < s->n_pending_closes; i++) {
        struct session *pss = slot_find(s, s->pending_closes[i].conn);
        if (pss)
            close_after_queue(pss, s->pending_closes[i].code);
    }
    s->n_pending_closes = 0;
}

/* ---- group commit and ticks ------------------------------------------- */

/* Sends one queued frame of pss (its writable callback, or write_flushed());
 * returns -1 if the connection failed. */
static int session_write_one(struct server *s, struct session *pss)
{
    struct out_frame *f = pss->out_head;
    pss->out_head = f->next;
    if (!pss->out_head)
        pss->out_tail = NULL;
    pss->n_out--;
    int n = lws_write(pss->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
    size_t flen = f->len;
    free(f);
    if (n < (int)flen) {
        log_event(LOG_INFO, "ws_write_failed", "conn:u", (unsigned long long)pss->id, LOG_END);
        return -1;
    }
    metrics_add(s->metrics, METRICS_FRAMES_OUT, 1);
    pss->progress_at_us = cd_now_us();
    return 0;
}

/* After a group commit: the first frame chat.c queued for each connection
 * goes out now if the socket has room, rather than after the next poll()
 * finds it writable (the reply would wait for all the work of the next loop
 * turn). Order is kept (the queue is written from its head); the rest, and
 * a closing connection, are left to the writable callback, one frame per
 * loop turn as before, so a client that floods messages and reads nothing
 * still fills its queue up to max-queued-frames and is dropped. */
static void write_flushed(struct server *s)
{
    for (int i = 0; i < s->n_written; i++) {
        struct session *pss = slot_find(s, s->written[i]);
        if (!pss)
            continue;
        pss->is_written = 0;
        if (pss->out_head && !pss->is_closing && !lws_send_pipe_choked(pss->wsi) &&
            session_write_one(s, pss))
            session_kill(pss);
    }
    s->n_written = 0;
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
    struct server *s = lws_container_of(sul, struct server, flush_sul);
    s->is_flush_scheduled = 0;
    s->n_unflushed = 0;
    if (!s->chat)
        return;
    int64_t t0 = cd_now_us();
    int rc = s->ops->flush(s->chat);
    metrics_observe(s->metrics, METRICS_STORE_COMMIT_SECONDS, (double)(cd_now_us() - t0) / 1e6);
    write_flushed(s);
    run_pending_closes(s);
    if (rc) {
        metrics_add(s->metrics, METRICS_STORE_ERRORS, 1);
        log_event(LOG_ERROR, "store_commit_failed", "error:s", cd_strerror(rc), LOG_END);
    }
}

/* Schedules chat_flush() for the end of this loop turn. */
/* A flush at the end of this loop turn (once, however often asked). */
static void flush_later(struct server *s)
{
    if (s->is_flush_scheduled)
        return;
    s->is_flush_scheduled = 1;
    lws_sul_schedule(s->context, 0, &s->flush_sul, flush_cb, 1);
}

static void schedule_flush(struct server *s)
{
    if (!s->chat)
        return;
    if (++s->n_unflushed >= FLUSH_BATCH) {
        lws_sul_cancel(&s->flush_sul);
        flush_cb(&s->flush_sul);
        return;
    }
    flush_later(s);
}

/* Disconnects clients whose queue is over the limit and has not moved for
 * SLOW_READER_SECONDS (session_enqueue() checks only when a frame comes). */
static void drop_stalled_readers(struct server *s)
{
    int64_t now = cd_now_us();
    unsigned limit = (unsigned)s->cfg->max_queued_frames;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        struct session *pss = s->slots[i].session;
        if (!pss || pss->is_closing)
            continue;
        int is_stalled =
            pss->n_out >= limit && now - pss->progress_at_us >= SLOW_READER_SECONDS * 1000000LL;
        /* Only connections written to lately can be choked: no syscall for
         * the thousands that sit idle. */
        if (!is_stalled && (pss->n_out || now - pss->progress_at_us < 60 * 1000000LL)) {
            if (!lws_send_pipe_choked(pss->wsi))
                pss->choked_since_us = 0;
            else if (!pss->choked_since_us)
                pss->choked_since_us = now;
            else if (now - pss->choked_since_us >= CHOKED_SECONDS * 1000000LL)
                is_stalled = 1;
        }
        if (is_stalled) {
            log_event(LOG_WARN, "slow_reader_closed", "conn:u", (unsigned long long)pss->id,
                      "queued:i", (int)pss->n_out, LOG_END);
            metrics_add(s->metrics, METRICS_SLOW_READER_CLOSED, 1);
            session_kill(pss);
        }
    }
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct server *s = lws_container_of(sul, struct server, tick_sul);
    drop_stalled_readers(s);
    if (s->chat) {
        s->ops->tick(s->chat, cd_wall_s());
        schedule_flush(s);
    }
    lws_sul_schedule(s->context, 0, &s->tick_sul, tick_cb, LWS_US_PER_SEC);
}

/* ---- websocket callbacks ----------------------------------------------- */

static int origin_allowed(struct server *s, struct lws *wsi)
{
    char origin[256], host[256];
    int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0; /* none, or too long */
    if (s->is_any_origin)
        return 1;
    for (char *p = origin; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    while (n > 0 && origin[n - 1] == '/')
        origin[--n] = '\0';
    for (int i = 0; i < s->n_origins; i++)
        if (!strcmp(origin, s->origins[i]))
            return 1;
    /* Same origin: the Origin's host[:port] is the Host header. */
    const char *o = strstr(origin, "://");
    if (!o || lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0)
        return 0;
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return !strcmp(o + 3, host);
}

static int ws_kind_of_uri(struct lws *wsi)
{
    char uri[32];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0)
        return -1;
    if (!strcmp(uri, "/chat") || !strcmp(uri, "/chat/"))
        return KIND_CUSTOMER;
    if (!strcmp(uri, "/agent") || !strcmp(uri, "/agent/"))
        return KIND_AGENT;
    return -1;
}

static int ws_filter(struct server *s, struct lws *wsi)
{
    int kind = ws_kind_of_uri(wsi);
    if (kind < 0 || s->is_draining)
        return 1;
    if (!origin_allowed(s, wsi)) {
        metrics_add(s->metrics, METRICS_REJECTED_ORIGIN, 1);
        log_event(LOG_INFO, "ws_refused", "reason:s", "origin", LOG_END);
        return 1;
    }
    if (s->n_customers + s->n_agents >= s->cfg->max_connections) {
        metrics_add(s->metrics, METRICS_REJECTED_MAX_CONNECTIONS, 1);
        log_event(LOG_WARN, "ws_refused", "reason:s", "max_connections", "limit:i",
                  s->cfg->max_connections, LOG_END);
        return 1;
    }
    return 0;
}

static int ws_established(struct server *s, struct lws *wsi, struct session *pss)
{
    int kind = ws_kind_of_uri(wsi);
    pss->wsi = wsi;
    pss->kind = (uint8_t)(kind < 0 ? KIND_CUSTOMER : kind);
    if (slot_take(s, pss)) {
        log_event(LOG_ERROR, "out_of_memory", "where:s", "ws_established", LOG_END);
        return -1;
    }
    pss->tokens = s->cfg->rate_limit;
    pss->tokens_at_us = cd_now_us();
    char address[64] = "", origin[256] = "", agent[256] = "";
    lws_get_peer_simple(wsi, address, sizeof address);
    int has_origin = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) > 0;
    lws_hdr_copy(wsi, agent, sizeof agent, WSI_TOKEN_HTTP_USER_AGENT);
    struct chat_peer peer = {address, has_origin ? origin : NULL, agent};
    if (pss->kind == KIND_CUSTOMER) {
        s->n_customers++;
        metrics_add(s->metrics, METRICS_CUSTOMER_CONNECTIONS_TOTAL, 1);
        metrics_set(s->metrics, METRICS_CUSTOMER_CONNECTIONS, s->n_customers);
    } else {
        s->n_agents++;
        metrics_add(s->metrics, METRICS_AGENT_CONNECTIONS_TOTAL, 1);
        metrics_set(s->metrics, METRICS_AGENT_CONNECTIONS, s->n_agents);
    }
    log_event(LOG_DEBUG, "ws_open", "conn:u", (unsigned long long)pss->id, "kind:s",
              pss->kind == KIND_AGENT ? "agent" : "customer", "peer:s", address, LOG_END);
    if (!s->chat) {
        send_error(s, pss, "unavailable", "the conversation service is not running");
        return 0;
    }
    if (pss->kind == KIND_CUSTOMER)
        s->ops->customer_open(s->chat, pss->id, &peer);
    else
        s->ops->agent_open(s->chat, pss->id, &peer);
    schedule_flush(s);
    return 0;
}

static void ws_closed(struct server *s, struct session *pss)
{
    if (!pss->id)
        return;
    uint64_t id = pss->id;
    slot_release(s, pss);
    pss->id = 0;
    out_clear(pss);
    free(pss->rx);
    pss->rx = NULL;
    if (pss->kind == KIND_CUSTOMER) {
        s->n_customers--;
        metrics_set(s->metrics, METRICS_CUSTOMER_CONNECTIONS, s->n_customers);
        if (s->chat)
            s->ops->customer_closed(s->chat, id);
    } else {
        s->n_agents--;
        metrics_set(s->metrics, METRICS_AGENT_CONNECTIONS, s->n_agents);
        if (s->chat)
            s->ops->agent_closed(s->chat, id);
    }
    log_event(LOG_DEBUG, "ws_closed", "conn:u", (unsigned long long)id, LOG_END);
    schedule_flush(s);
}

/* Returns 1 if this message is within the connection's rate limit. */
static int rate_ok(struct server *s, struct session *pss)
{
    int limit = s->cfg->rate_limit;
    if (!limit)
        return 1;
    int64_t now = cd_now_us();
    pss->tokens += (double)(now - pss->tokens_at_us) * limit / 1e6;
    if (pss->tokens > limit)
        pss->tokens = limit;
    pss->tokens_at_us = now;
    if (pss->tokens < 1)
        return 0;
    pss->tokens -= 1;
    return 1;
}

/* One complete text message from the client. */
static void ws_message(struct server *s, struct session *pss, const char *text, size_t len)
{
    metrics_add(s->metrics,
                pss->kind == KIND_AGENT ? METRICS_AGENT_FRAMES_IN : METRICS_CUSTOMER_FRAMES_IN, 1);
    if (!rate_ok(s, pss)) {
        metrics_add(s->metrics, METRICS_BAD_RATE_LIMITED, 1);
        send_error(s, pss, "rate_limited", "too many messages per second; slow down");
        return;
    }
    if (!cd_utf8_valid(text, len)) {
        metrics_add(s->metrics, METRICS_BAD_UTF8, 1);
        send_error(s, pss, "bad_utf8", "messages must be valid UTF-8 text");
        return;
    }
    if (!s->chat) {
        send_error(s, pss, "unavailable", "the conversation service is not running");
        return;
    }
    if (pss->kind == KIND_AGENT) {
        s->ops->agent_frame(s->chat, pss->id, text, len);
    } else {
        s->ops->customer_frame(s->chat, pss->id, text, len);
    }
    schedule_flush(s);
}

/* RFC 6455 section 5.1: a client frame without a mask closes the connection (1002).
 * libwebsockets 4.1.6 takes such frames; ws_guard.c finds them. Returns -1 (close) or 0. */
static int ws_check_masked(struct session *pss, struct lws *wsi)
{
    if (!ws_guard_is_unmasked(lws_get_socket_fd(wsi)))
        return 0;
    log_event(LOG_INFO, "ws_unmasked_frame", "conn:u", (unsigned long long)pss->id, LOG_END);
    out_clear(pss);
    lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)"unmasked frame", 14);
    return -1;
}

static int ws_receive(struct server *s, struct lws *wsi, struct session *pss, const char *in,
                      size_t len)
{
    if (ws_check_masked(pss, wsi))
        return -1;
    if (pss->is_closing)
        return 0;
    int first = lws_is_first_fragment(wsi);
    int final = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (first) {
        pss->rx_is_binary = (uint8_t)lws_frame_is_binary(wsi);
        pss->rx_is_too_big = 0;
        pss->n_rx = 0;
    }
    if (pss->rx_is_binary) {
        if (final) {
            metrics_add(s->metrics, METRICS_BAD_BINARY, 1);
            send_error(s, pss, "binary", "binary frames are not accepted; send JSON text");
            close_after_queue(pss, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
        }
        return 0;
    }
    if (first && final) {
        if (len > (size_t)s->cfg->max_frame_bytes)
            goto too_big;
        ws_message(s, pss, in, len);
        return 0;
    }
    if (pss->rx_is_too_big)
        return 0;
    if (pss->n_rx + len > (size_t)s->cfg->max_frame_bytes)
        goto too_big;
    if (!pss->rx) {
        pss->rx = malloc((size_t)s->cfg->max_frame_bytes);
        if (!pss->rx) {
            log_event(LOG_ERROR, "out_of_memory", "conn:u", (unsigned long long)pss->id, LOG_END);
            return -1;
        }
    }
    memcpy(pss->rx + pss->n_rx, in, len);
    pss->n_rx += len;
    if (final) {
        ws_message(s, pss, pss->rx, pss->n_rx);
        free(pss->rx);
        pss->rx = NULL;
        pss->n_rx = 0;
    }
    return 0;
too_big:
    pss->rx_is_too_big = 1;
    free(pss->rx);
    pss->rx = NULL;
    pss->n_rx = 0;
    metrics_add(s->metrics, METRICS_BAD_TOO_BIG, 1);
    log_event(LOG_INFO, "ws_frame_too_big", "conn:u", (unsigned long long)pss->id, "limit:i",
              s->cfg->max_frame_bytes, LOG_END);
    out_clear(pss);
    lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"message too big",
                     15);
    return -1;
}

static int ws_writeable(struct server *s, struct lws *wsi, struct session *pss)
{
    if (ws_check_masked(pss, wsi))
        return -1;
    if (pss->out_head) {
        if (session_write_one(s, pss))
            return -1;
        /* This connection's paced replay goes on once its queue is down to half: in a flush
         * of its own (never inside this callback, which has written once already). */
        if (s->chat && pss->n_out <= s->cfg->max_queued_frames / 2 &&
            chat_is_replaying(s->chat, pss->id))
            flush_later(s);
        if (pss->out_head || pss->close_code) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (!pss->out_head && pss->close_code) {
        static const char *const reasons[] = {"closing", "going away"};
        const char *r = pss->close_code == 1001 ? reasons[1] : reasons[0];
        lws_close_reason(wsi, (enum lws_close_status)pss->close_code, (unsigned char *)r,
                         strlen(r));
        return -1;
    }
    return 0;
}

/* ---- the protocol callback --------------------------------------------- */

static int s_chat_has_pending(struct server *s)
{
    return s->chat && chat_has_pending(s->chat);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *pss = user;
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        /* server_wake() from another thread: its work runs here, on the loop's thread. */
        struct server *ws = lws_context_user(lws_get_context(wsi));
        if (ws && ws->on_wake && ws->chat) {
            ws->on_wake(ws->wake_ctx);
            if (s_chat_has_pending(ws))
                schedule_flush(ws);
        }
        return 0;
    }
    struct lws_vhost *vh = lws_get_vhost(wsi);
    struct server *s = vh ? lws_vhost_user(vh) : NULL;
    if (!s)
        return lws_callback_http_dummy(wsi, reason, user, in, len);

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return server_http_start(s, wsi, pss, in);
    case LWS_CALLBACK_HTTP_BODY:
        return pss ? server_http_body(s, pss->http, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!pss || !pss->http)
            return -1;
        if (pss->http->is_responded)
            return 0; /* answered already (413, 400); the writeable ends it */
        return server_http_dispatch(s, wsi, pss->http);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return pss ? server_http_writeable(wsi, pss->http) : 0;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss) {
            server_http_txn_free(pss->http);
            pss->http = NULL;
        }
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(s, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        if (!pss)
            return -1;
        server_http_txn_free(pss->http);
        pss->http = NULL;
        ws_guard_established(lws_get_socket_fd(wsi), wsi);
        return ws_established(s, wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(s, wsi, pss, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_writeable(s, wsi, pss);
    case LWS_CALLBACK_CLOSED:
        ws_guard_forget(lws_get_socket_fd(wsi));
        ws_closed(s, pss);
        break;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* A new connection: its bytes are followed for unmasked frames (ws_guard.h). */
        if (ws_guard_watch((int)(lws_intptr_t)in))
            return -1;
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- lifecycle --------------------------------------------------------- */

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)(n < sizeof msg ? n : sizeof msg - 1), line);
    log_event(level & LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "message:s", msg, LOG_END);
}

static int parse_origins(struct server *s, const char *list)
{
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t n = (size_t)(e - p);
        while (n && (isspace((unsigned char)p[n - 1]) || p[n - 1] == '/'))
            n--;
        if (n == 1 && *p == '*') {
            s->is_any_origin = 1;
        } else if (n) {
            char **o = realloc(s->origins, (size_t)(s->n_origins + 1) * sizeof *o);
            if (!o)
                return CD_ENOMEM;
            s->origins = o;
            if (!(o[s->n_origins] = cd_strndup(p, n)))
                return CD_ENOMEM;
            for (char *c = o[s->n_origins]; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            s->n_origins++;
        }
        p = e;
    }
    return 0;
}

static char *errf(const char *what, const char *detail)
{
    struct cd_buf b = {0};
    cd_buf_printf(&b, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    return b.data;
}

/* Raises the open-file limit to what max-connections needs, if allowed. */
static void raise_fd_limit(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return;
    rlim_t need = (rlim_t)want;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
        log_event(LOG_WARN, "fd_limit_low", "limit:l", (long long)rl.rlim_cur, "wanted:i", want,
                  LOG_END);
}

struct server *server_new(const struct config *cfg, struct metrics *metrics, char **err)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        if (err)
            *err = errf("out of memory", NULL);
        return NULL;
    }
    s->cfg = cfg;
    s->metrics = metrics;
    s->io.send = io_send;
    s->io.close = io_close;
    s->io.ctx = s;
    s->started_s = cd_wall_s();
    metrics_set(metrics, METRICS_START_TIME, (double)s->started_s);
    if (parse_origins(s, cfg->allowed_origins)) {
        if (err)
            *err = errf("out of memory", NULL);
        goto fail;
    }
    char real[PATH_MAX];
    if (realpath(cfg->web_root, real)) {
        s->web_root_real = strdup(real);
    } else {
        log_event(LOG_WARN, "web_root_missing", "web:s", cfg->web_root, "error:s", strerror(errno),
                  LOG_END);
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    s->protocols[0] = (struct lws_protocols){
        "caredesk", callback, sizeof(struct session), RX_BUFFER_BYTES, 0, NULL, 0};
    /* protocols[1] stays zero: the list terminator. */

    int want_fds = cfg->max_connections + 256;
    raise_fd_limit(want_fds);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->bind[0] ? cfg->bind : NULL;
    info.protocols = s->protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.user = s;
    info.vhost_name = "caredesk";
    info.fd_limit_per_thread = (unsigned)want_fds;
    info.timeout_secs = 10;
    info.keepalive_timeout = 5;
    info.alpn = "http/1.1";
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (cfg->bind[0] && strchr(cfg->bind, '.') && !strchr(cfg->bind, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cfg->idle_timeout_s) {
        s->retry.secs_since_valid_ping = (uint16_t)cfg->idle_timeout_s;
        s->retry.secs_since_valid_hangup =
            (uint16_t)(cfg->idle_timeout_s * 2 > 65535 ? 65535 : cfg->idle_timeout_s * 2);
        info.retry_and_idle_policy = &s->retry;
    }
    if (cfg->tls_cert[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    s->context = lws_create_context(&info);
    if (!s->context) {
        if (err)
            *err = errf("cannot start the network layer", NULL);
        goto fail;
    }
    s->vhost = lws_create_vhost(s->context, &info);
    if (!s->vhost) {
        if (err) {
            char what[160];
            snprintf(what, sizeof what, "cannot listen on %s port %d",
                     cfg->bind[0] ? cfg->bind : "all interfaces", cfg->port);
            *err = errf(what, cfg->tls_cert[0] ? "address in use, or the TLS certificate or "
                                                 "key is unusable"
                                               : "address in use or not available");
        }
        goto fail;
    }
    s->port = lws_get_vhost_listen_port(s->vhost);
    lws_sul_schedule(s->context, 0, &s->tick_sul, tick_cb, LWS_US_PER_SEC);
    return s;
fail:
    server_free(s);
    return NULL;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->context)
        lws_context_destroy(s->context);
    for (int i = 0; i < s->n_origins; i++)
        free(s->origins[i]);
    free(s->origins);
    free(s->web_root_real);
    free(s->slots);
    free(s->free_slots);
    free(s->pending_closes);
    free(s->written);
    free(s);
}

const struct chat_io *server_chat_io(struct server *s)
{
    return &s->io;
}

void server_attach(struct server *s, struct chat *chat, const struct server_chat_ops *ops,
                   struct api *api)
{
    s->chat = ops ? chat : NULL;
    s->ops = ops;
    if (s->chat)
        chat_set_room(s->chat, io_room);
    s->api = api;
}

void server_set_wake(struct server *s, void (*on_wake)(void *ctx), void *ctx)
{
    s->on_wake = on_wake;
    s->wake_ctx = ctx;
}

void server_set_reload(struct server *s, void (*on_reload)(void *ctx), void *ctx)
{
    s->on_reload = on_reload;
    s->reload_ctx = ctx;
}

void server_wake(struct server *s)
{
    lws_cancel_service(s->context);
}

int server_port(const struct server *s)
{
    return s->port;
}

int server_n_connections(const struct server *s)
{
    return s->n_customers + s->n_agents;
}

static void drain(struct server *s)
{
    s->is_draining = 1;
    log_event(LOG_INFO, "draining", "connections:i", s->n_customers + s->n_agents, LOG_END);
    if (s->chat) {
        int rc = s->ops->flush(s->chat);
        if (rc)
            log_event(LOG_ERROR, "store_commit_failed", "error:s", cd_strerror(rc), LOG_END);
    }
    run_pending_closes(s);
    for (uint32_t i = 0; i < s->n_slots; i++) {
        struct session *pss = s->slots[i].session;
        if (pss)
            close_after_queue(pss, LWS_CLOSE_STATUS_GOINGAWAY);
    }
    int64_t deadline = cd_now_us() + DRAIN_SECONDS * 1000000LL;
    while (s->n_customers + s->n_agents > 0 && cd_now_us() < deadline)
        if (lws_service(s->context, 0) < 0)
            break;
    if (s->chat)
        s->ops->flush(s->chat);
}

int server_run(struct server *s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    stop_requested = reload_requested = 0;
    log_event(LOG_INFO, "listening", "port:i", s->port, "bind:s",
              s->cfg->bind[0] ? s->cfg->bind : "*", "tls:b", s->cfg->tls_cert[0] != 0, "web:s",
              s->cfg->web_root, LOG_END);
    int rc = 0;
    while (!stop_requested) {
        if (lws_service(s->context, 0) < 0) {
            rc = CD_EIO;
            break;
        }
        if (reload_requested) {
            reload_requested = 0;
            if (s->on_reload)
                s->on_reload(s->reload_ctx);
            else
                log_event(LOG_INFO, "reload_ignored", "reason:s", "nothing to reload", LOG_END);
        }
    }
    drain(s);
    log_event(LOG_INFO, "stopped", LOG_END);
    return rc;
}
