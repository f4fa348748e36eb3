/* echo_server: a bare libwebsockets echo server, the yardstick for
 * caredesk's /chat in bench/40-server.sh: same library, same one-thread
 * event loop, same one-write-per-WRITEABLE rule, no application work. It
 * prints "listening PORT" on stdout and serves until SIGINT or SIGTERM. */
#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define ECHO_MAX 4096

struct echo_session {
    unsigned char buf[LWS_PRE + ECHO_MAX];
    size_t len;
    int is_pending;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int echo_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct echo_session *pss = user;
    switch (reason) {
    case LWS_CALLBACK_RECEIVE:
        if (!pss || len > ECHO_MAX || pss->is_pending)
            return 0; /* closed loop clients send one at a time */
        memcpy(pss->buf + LWS_PRE, in, len);
        pss->len = len;
        pss->is_pending = 1;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!pss || !pss->is_pending)
            return 0;
        pss->is_pending = 0;
        if (lws_write(wsi, pss->buf + LWS_PRE, pss->len, LWS_WRITE_TEXT) < (int)pss->len)
            return -1;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int max_fds = argc > 2 ? atoi(argv[2]) : 20000;
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)max_fds) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)max_fds ? rl.rlim_max : (rlim_t)max_fds;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static struct lws_protocols protocols[] = {
        {"echo", echo_callback, sizeof(struct echo_session), 2048, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.fd_limit_per_thread = (unsigned)max_fds + 64;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context *context = lws_create_context(&info);
    if (!context) {
        fputs("echo_server: cannot create the context\n", stderr);
        return 1;
    }
    struct lws_vhost *vh = lws_create_vhost(context, &info);
    if (!vh) {
        fputs("echo_server: cannot listen\n", stderr);
        lws_context_destroy(context);
        return 1;
    }
    printf("listening %d\n", lws_get_vhost_listen_port(vh));
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop && lws_service(context, 0) >= 0)
        ;
    lws_context_destroy(context);
    return 0;
}
