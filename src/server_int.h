/* server_int: what server.c and server_http.c share and nothing else sees: limits, a session
 * (websocket or HTTP), an HTTP transaction, struct server, and the HTTP entry points the
 * protocol callback calls. Include only from src/server*.c. */
#ifndef CD_SERVER_INT_H
#define CD_SERVER_INT_H

#include "server.h"

#include "cd.h"
#include "chat.h"

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

/* Largest websocket fragment lws hands over in one callback; longer
 * messages are reassembled here (up to max-frame-bytes). Small on purpose:
 * lws keeps one such buffer per connection. */
#define RX_BUFFER_BYTES 2048
/* Largest chunk of an HTTP response body written per callback. */
#define HTTP_CHUNK 16384
/* Longest URL path accepted. */
#define PATH_MAX_BYTES 1024
/* Frames handed to chat.c in one loop turn before the group commit is run
 * at once instead of at the end of the turn: under load one poll() can
 * return hundreds of ready connections, and the first of them should not
 * wait for the last to be decided. */
#define FLUSH_BATCH 64
/* A client whose out queue reaches max-queued-frames is disconnected; a resume's replay is
 * paced to fit under it (chat_set_room(): the replay goes on as the queue drains). A queue at
 * the limit that has not moved for SLOW_READER_SECONDS is a client that does not read. */
#define SLOW_READER_SECONDS 5
/* A client whose socket stays full (lws holds unsent bytes, so nothing of
 * ours moves and it may not even send more) for this long is disconnected. */
#define CHOKED_SECONDS          5
/* Seconds a drain waits for websockets to close. */
#define DRAIN_SECONDS 3

enum session_kind { KIND_HTTP = 0, KIND_CUSTOMER = 1, KIND_AGENT = 2 };

/* One queued outgoing websocket frame, with LWS_PRE bytes of headroom. */
struct out_frame {
    struct out_frame *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
};

/* An HTTP request being read or answered. */
struct http_txn {
    char method[8];
    char path[PATH_MAX_BYTES];
    char **args;
    int n_args;
    char *authorization;
    char address[64];
    struct cd_buf body;
    int is_body_too_big;
    int64_t started_us;
    /* The response, once known. */
    struct cd_buf response;
    size_t n_sent;
    int is_head;
    int is_close_after; /* the request was malformed: close once answered */
    int is_responded;   /* answered before its body arrived (413, 400): ignore the body */
};

/* Per-connection state (lws per_session_data: zeroed by lws). */
struct session {
    struct lws *wsi;
    uint64_t id;
    uint8_t kind;
    uint8_t is_closing;    /* close after the queue drains */
    uint8_t rx_is_binary;  /* the message being reassembled is binary */
    uint8_t rx_is_too_big; /* ... or went over max-frame-bytes */
    uint8_t is_written;    /* on the server's written list: got frames in this flush */
    uint16_t close_code;
    uint16_t n_out;        /* capped at UINT16_MAX by session_enqueue() */
    struct out_frame *out_head, *out_tail;
    char *rx; /* reassembly of a fragmented message */
    size_t n_rx;
    double tokens; /* rate limit bucket */
    int64_t tokens_at_us;
    int64_t progress_at_us;  /* last time the out queue moved (or became non-empty) */
    int64_t choked_since_us; /* first tick that saw the socket full, 0 = not full */
    struct http_txn *http;
};

struct slot {
    struct session *session;
    uint32_t generation;
};

struct server {
    const struct config *cfg;
    void (*on_wake)(void *ctx); /* server_set_wake() */
    void *wake_ctx;
    void (*on_reload)(void *ctx); /* server_set_reload() */
    void *reload_ctx;
    struct metrics *metrics;
    struct chat *chat;
    const struct server_chat_ops *ops;
    struct api *api;
    struct chat_io io;
    struct lws_context *context;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[2];
    lws_retry_bo_t retry;
    char *web_root_real; /* realpath of the web root, or NULL if missing */
    char **origins;      /* allowed origins, lower case */
    int n_origins;
    int is_any_origin;
    struct slot *slots;
    uint32_t n_slots;
    uint32_t *free_slots;
    uint32_t n_free;
    int n_customers, n_agents;
    int is_draining;
    int is_flush_scheduled;
    int n_unflushed; /* frames handed to chat.c since the last flush */
    /* Closes chat.c asked for while frames for the connection may still be
     * waiting in chat.c for the group commit: done right after the flush,
     * so the "error" goes out before the close. */
    struct pending_close {
        uint64_t conn;
        int code;
    } * pending_closes;
    int n_pending_closes, cap_pending_closes;
    uint64_t *written; /* connections chat.c sent frames to in this flush */
    int n_written, cap_written;
    lws_sorted_usec_list_t flush_sul;
    lws_sorted_usec_list_t tick_sul;
    int64_t started_s;
    int port;
};

/* ---- server_http.c ---- */

void server_http_txn_free(struct http_txn *t);
int server_http_writeable(struct lws *wsi, struct http_txn *t);
int server_http_dispatch(struct server *s, struct lws *wsi, struct http_txn *t);
int server_http_start(struct server *s, struct lws *wsi, struct session *pss, const char *uri);
int server_http_body(struct server *s, struct http_txn *t, const char *in, size_t len);

#endif
