/* server: the network side of `caredesk serve`, on libwebsockets: static
 * files from the web root, /healthz, /metrics, REST (api.h), and the /chat
 * and /agent websockets that feed chat.h, with timers, limits and signals.
 * Built from server.c (the context, websockets, group commit) and server_http.c (the
 * HTTP half), sharing the private src/server_int.h. The /metrics figures about
 * conversations are read from chat_metrics (chat.h), never from the frames sent.
 *
 * DESIGN. One lws context, one service thread, one protocol that takes both
 * HTTP and websocket callbacks (browsers open /chat and /agent without a
 * subprotocol, so the path decides the kind). Each websocket gets a 64-bit
 * connection id (slot index and generation, so a stale id never reaches a
 * newer connection in the same slot) and a bounded queue of outgoing frames;
 * lws_write() is called only from SERVER_WRITEABLE, one frame per callback.
 * Frames handed to chat.c during a loop turn are followed by one chat_flush()
 * scheduled with lws_sul at the end of that turn (group commit), which
 * commits the store and only then queues the frames that report it. A client
 * whose queue overflows is disconnected rather than buffered without bound. */
#ifndef CD_SERVER_H
#define CD_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct metrics;
struct chat;
struct chat_io;
struct api;
struct server;

/* Creates the context and listens (port 0: an ephemeral port). cfg, metrics
 * and (later) chat and api are borrowed and must outlive the server.
 * Returns NULL with a malloc'd message in *err on failure (port in use,
 * TLS files unusable, out of memory). */
struct server *server_new(const struct config *cfg, struct metrics *metrics, char **err);

/* Frees everything; open connections are dropped. Accepts NULL. */
void server_free(struct server *s);

/* The struct chat_io that chat_new() must be given: send and close by
 * connection id. Valid for the life of the server. */
const struct chat_io *server_chat_io(struct server *s);

/* The chat.h entry points the server calls, as a table so that the network
 * layer links and runs without chat.c (tests, benches). cli_server.c fills
 * it with chat.h's functions: SERVER_CHAT_OPS_INIT. */
struct chat_peer;
struct chat_metrics;
struct server_chat_ops {
    void (*customer_open)(struct chat *chat, uint64_t conn, const struct chat_peer *peer);
    void (*customer_frame)(struct chat *chat, uint64_t conn, const char *text, size_t len);
    void (*customer_closed)(struct chat *chat, uint64_t conn);
    void (*agent_open)(struct chat *chat, uint64_t conn, const struct chat_peer *peer);
    void (*agent_frame)(struct chat *chat, uint64_t conn, const char *text, size_t len);
    void (*agent_closed)(struct chat *chat, uint64_t conn);
    void (*tick)(struct chat *chat, int64_t now_s);
    int (*flush)(struct chat *chat);
    /* Optional (may be NULL): chat.c's own counts, for /metrics. */
    void (*metrics_get)(const struct chat *chat, struct chat_metrics *out);
};

#define SERVER_CHAT_OPS_INIT                                                                       \
    {                                                                                              \
        chat_customer_open, chat_customer_frame, chat_customer_closed, chat_agent_open,            \
            chat_agent_frame, chat_agent_closed, chat_tick, chat_flush, chat_metrics_get           \
    }

/* Attaches the conversation engine (with its entry points) and the REST
 * handlers. chat or api may be NULL: websocket messages then get an
 * "unavailable" error, /api/ 503. ops is borrowed. */
void server_attach(struct server *s, struct chat *chat, const struct server_chat_ops *ops,
                   struct api *api);

/* on_wake(ctx) runs on the event loop's thread, after server_wake() was called from any
 * thread (cluster.h's listener: other nodes' events wait); a flush follows when it queued
 * frames. */
void server_set_wake(struct server *s, void (*on_wake)(void *ctx), void *ctx);
void server_wake(struct server *s);

/* on_reload(ctx) runs on the event loop's thread when the process gets SIGHUP (systemctl
 * reload): what a deployment reloads without dropping a connection. Without it SIGHUP is
 * logged and ignored. */
void server_set_reload(struct server *s, void (*on_reload)(void *ctx), void *ctx);

/* The port actually listened on. */
int server_port(const struct server *s);

/* Serves until SIGTERM or SIGINT (or server_request_stop()), then drains:
 * refuses new connections, flushes, closes websockets with 1001 and waits
 * (at most a few seconds) for them to go. Returns 0, or CD_E* when the loop
 * failed. */
int server_run(struct server *s);

/* Asks server_run() to drain and return; safe from a signal handler. */
void server_request_stop(void);

/* Number of open websocket connections. */
int server_n_connections(const struct server *s);

#endif
