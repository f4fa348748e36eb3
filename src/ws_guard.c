/* ws_guard: unmasked client frames on the websocket connections; see ws_guard.h for the
 * DESIGN (why recv() and SSL_read() are defined here).
 *
 * Must never happen: a byte of a watched connection lost or reordered before the first
 * unmasked frame, a connection that is not a websocket changed at all, or a call on a
 * descriptor that is not watched doing anything but the real call. */
#undef _FORTIFY_SOURCE /* recv() is defined below: glibc's inline wrapper must not exist */

#include "ws_guard.h"

#include "cd.h"

#include <libwebsockets.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Longest HTTP head kept while looking for the websocket handshake; lws refuses longer. */
#define HEAD_MAX_BYTES 16384

enum guard_state {
    GUARD_OFF = 0,  /* not watched, not a websocket, or closed */
    GUARD_HEAD,     /* reading the HTTP head */
    GUARD_FRAMES,   /* a websocket: following the frame headers */
    GUARD_UNMASKED, /* an unmasked frame came: nothing more is handed on */
};

struct guard_conn {
    enum guard_state state;
    char *head; /* the HTTP head so far (GUARD_HEAD) */
    size_t n_head;
    unsigned char hdr[14]; /* the current frame's header so far */
    size_t n_hdr;
    uint64_t payload_left; /* bytes of the current frame's payload still to come */
    struct lws *wsi;       /* once established */
};

/* Indexed by descriptor. A global because recv() has no context argument; only the lws
 * service thread touches it. */
static struct guard_conn *conns;
static int n_conns;

static struct guard_conn *conn_of(int fd)
{
    return fd >= 0 && fd < n_conns && conns[fd].state != GUARD_OFF ? &conns[fd] : NULL;
}

int ws_guard_watch(int fd)
{
    if (fd < 0)
        return CD_EINVAL;
    if (fd >= n_conns) {
        int cap = n_conns ? n_conns : 256;
        while (cap <= fd)
            cap *= 2;
        if (cd_resize_zeroed(&conns, (size_t)n_conns, (size_t)cap, sizeof *conns))
            return CD_ENOMEM;
        n_conns = cap;
    }
    ws_guard_forget(fd);
    conns[fd].state = GUARD_HEAD;
    return 0;
}

void ws_guard_forget(int fd)
{
    if (fd < 0 || fd >= n_conns)
        return;
    free(conns[fd].head);
    memset(&conns[fd], 0, sizeof conns[fd]);
}

void ws_guard_established(int fd, struct lws *wsi)
{
    struct guard_conn *g = conn_of(fd);
    if (!g) {
        /* A handshake after other requests on the same connection (the head of the first
         * one was not a handshake, and the guard let go of it): the frames are followed
         * from here on. A client sends none before the handshake's answer. */
        if (ws_guard_watch(fd))
            return;
        g = &conns[fd];
        g->state = GUARD_FRAMES;
    }
    g->wsi = wsi;
    if (g->state == GUARD_UNMASKED)
        lws_callback_on_writable(wsi);
}

int ws_guard_is_unmasked(int fd)
{
    struct guard_conn *g = conn_of(fd);
    return g && g->state == GUARD_UNMASKED;
}

/* Case-insensitive search for the NUL-terminated needle in the n bytes at s. */
static int has_token(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!strncasecmp(s + i, needle, k))
            return 1;
    return 0;
}

/* Follows the frame headers in the n bytes at p; returns how many of them come before the
 * first unmasked frame (n when there is none, and then the state stays GUARD_FRAMES). */
static size_t follow_frames(struct guard_conn *g, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (g->payload_left > 0) {
            uint64_t skip = g->payload_left < n - i ? g->payload_left : n - i;
            g->payload_left -= skip;
            i += (size_t)skip;
            continue;
        }
        size_t frame_start = i >= g->n_hdr ? i - g->n_hdr : 0;
        g->hdr[g->n_hdr++] = p[i++];
        if (g->n_hdr < 2)
            continue;
        if (!(g->hdr[1] & 0x80)) {
            g->state = GUARD_UNMASKED;
            return frame_start;
        }
        size_t len7 = g->hdr[1] & 0x7f;
        size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
        if (g->n_hdr < need)
            continue;
        uint64_t len = len7;
        if (len7 == 126)
            len = (uint64_t)g->hdr[2] << 8 | g->hdr[3];
        else if (len7 == 127)
            for (int k = 0; k < 8; k++)
                len = len << 8 | g->hdr[2 + k];
        g->payload_left = len;
        g->n_hdr = 0;
    }
    return n;
}

/* What a read of n bytes at buf on fd hands on: n, or fewer when an unmasked frame starts
 * in it (then -1 with EAGAIN when none are left). */
static ssize_t guard(int fd, void *buf, ssize_t n)
{
    struct guard_conn *g = conn_of(fd);
    if (!g || n <= 0 || g->state == GUARD_OFF)
        return n;
    if (g->state == GUARD_UNMASKED) {
        errno = EAGAIN;
        return -1;
    }
    const unsigned char *p = buf;
    size_t from = 0;
    if (g->state == GUARD_HEAD) {
        /* Keep the head until its blank line; a websocket handshake carries
         * Sec-WebSocket-Key, and only then do frames follow it. */
        size_t keep = (size_t)n;
        if (g->n_head + keep > HEAD_MAX_BYTES) {
            ws_guard_forget(fd);
            return n;
        }
        char *grown = realloc(g->head, g->n_head + keep + 1);
        if (!grown) {
            ws_guard_forget(fd);
            return n;
        }
        g->head = grown;
        memcpy(g->head + g->n_head, p, keep);
        size_t old = g->n_head;
        g->n_head += keep;
        g->head[g->n_head] = '\0';
        char *end = NULL;
        for (size_t i = old >= 3 ? old - 3 : 0; i + 4 <= g->n_head && !end; i++)
            if (!memcmp(g->head + i, "\r\n\r\n", 4))
                end = g->head + i + 4;
        if (!end)
            return n;
        int is_ws = has_token(g->head, (size_t)(end - g->head), "\r\nsec-websocket-key:");
        from = (size_t)(end - g->head) - old;
        free(g->head);
        g->head = NULL;
        g->n_head = 0;
        if (!is_ws) {
            ws_guard_forget(fd);
            return n;
        }
        g->state = GUARD_FRAMES;
    }
    size_t ok = from + follow_frames(g, p + from, (size_t)n - from);
    if (g->state != GUARD_UNMASKED)
        return n;
    if (g->wsi)
        lws_callback_on_writable(g->wsi);
    if (ok == 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)ok;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    static ssize_t (*real_recv)(int, void *, size_t, int);
    if (!real_recv) {
        *(void **)&real_recv = dlsym(RTLD_NEXT, "recv");
        if (!real_recv) {
            errno = ENOSYS;
            return -1;
        }
    }
    if (!(flags & MSG_PEEK) && ws_guard_is_unmasked(fd)) {
        errno = EAGAIN;
        return -1;
    }
    ssize_t n = real_recv(fd, buf, len, flags);
    return flags & MSG_PEEK ? n : guard(fd, buf, n);
}

/* OpenSSL's SSL_read(), for wss:// connections (libwebsockets.h brings OpenSSL's types).
 * SSL_get_fd() is looked up too: the executable does not link libssl itself. */
int SSL_read(SSL *ssl, void *buf, int num)
{
    static int (*real_read)(SSL *, void *, int);
    static int (*get_fd)(const SSL *);
    if (!real_read) {
        *(void **)&real_read = dlsym(RTLD_NEXT, "SSL_read");
        *(void **)&get_fd = dlsym(RTLD_DEFAULT, "SSL_get_fd");
        if (!real_read)
            return -1;
    }
    int fd = get_fd ? get_fd(ssl) : -1;
    if (ws_guard_is_unmasked(fd)) {
        errno = EAGAIN;
        return -1;
    }
    int n = real_read(ssl, buf, num);
    if (n <= 0)
        return n;
    ssize_t kept = guard(fd, buf, n);
    return kept < 0 ? -1 : (int)kept;
}
