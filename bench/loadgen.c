/* loadgen: a websocket load generator (one thread, epoll, thousands of
 * connections) for caredesk's /chat and for a bare echo server.
 *
 * Modes:
 *   chat  each connection sends a customer "message" and waits for the
 *         "reply" (or "ack") that answers it before sending the next
 *         (closed loop); questions rotate so the bot sees no repeats.
 *   echo  the same loop against an echo server: any text frame answers.
 *   With --think-ms T each connection waits T ms after an answer before it
 *   sends again (a paced closed loop: N connections offer about N*1000/T
 *   messages/s, so latency is the server's, not the queue's: without think
 *   time, Little's law makes mean latency = N / throughput).
 *   With --rate R (total messages/s) each of the N connections instead
 *   sends one message per N/R seconds on average (0.5-1.5 of it, counted
 *   from its previous send), still only once the previous one is answered:
 *   a closed loop that offers R messages/s as long as the server answers
 *   within the period, and less (counted in "late") when it does not.
 *   idle  open the connections, then hold them (answering pings) until
 *         --duration ends; prints "ready N" once all are open, so a script
 *         can measure the server's memory per idle connection.
 * Prints one JSON line: connections, msgs_per_s, latency p50/p99 in ms,
 * errors. Frames are masked with a zero key (legal, and free). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_CHAT, MODE_ECHO, MODE_IDLE };
enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED };

struct conn {
    int fd;
    int state;
    char *rbuf;
    size_t rlen, rcap;
    char *wbuf; /* unsent bytes, if a write was partial */
    size_t wlen;
    int64_t sent_at_us;
    uint32_t n_sent;
    int is_waiting;
};

static const char *const questions[] = {
    "how do I reset my password", "where is my order",
    "how do I return an item",    "what shipping options do you have",
    "when will I get my refund",  "what is your return policy",
    "I forgot my password",       "how long does delivery take",
};
#define N_QUESTIONS (sizeof questions / sizeof questions[0])

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static volatile sig_atomic_t stop;

/* Connections waiting out their think time (0.5-1.5 T, so they drift
 * apart), on a wheel of 1 ms slots longer than the longest wait. */
struct think_wheel {
    int32_t *slot_head; /* first connection due in this ms slot, -1 if none */
    int32_t *next;      /* next connection in the same slot */
    size_t n_slots;
    int64_t done_ms; /* every slot up to this ms has been run */
};

static int64_t think_us;
static int64_t period_us; /* --rate: each connection's mean send period */
static int64_t pace_us;   /* think_us or period_us: 0 = flat out */
static uint64_t n_late;   /* --rate: sends that waited for a reply past their time */
static struct think_wheel wheel;

static void think_push(uint32_t conn, int64_t due_us)
{
    int64_t ms = due_us / 1000;
    if (ms <= wheel.done_ms)
        ms = wheel.done_ms + 1;
    size_t slot = (size_t)(ms % (int64_t)wheel.n_slots);
    wheel.next[conn] = wheel.slot_head[slot];
    wheel.slot_head[slot] = (int32_t)conn;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

struct stats {
    uint64_t n_responses, n_replies, n_acks, n_errors, n_closed, n_failed_connect;
    uint32_t *lat_us;
    size_t n_lat, cap_lat;
};

static void record(struct stats *st, int64_t us)
{
    if (st->n_lat == st->cap_lat) {
        size_t cap = st->cap_lat ? st->cap_lat * 2 : 65536;
        uint32_t *p = realloc(st->lat_us, cap * sizeof *p);
        if (!p)
            return;
        st->lat_us = p;
        st->cap_lat = cap;
    }
    st->lat_us[st->n_lat++] = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int write_all(struct conn *c, const char *data, size_t n)
{
    if (c->wlen) { /* keep order: append */
        char *p = realloc(c->wbuf, c->wlen + n);
        if (!p)
            return -1;
        memcpy(p + c->wlen, data, n);
        c->wbuf = p;
        c->wlen += n;
        return 0;
    }
    ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        w = 0;
    }
    if ((size_t)w < n) {
        c->wbuf = malloc(n - (size_t)w);
        if (!c->wbuf)
            return -1;
        memcpy(c->wbuf, data + w, n - (size_t)w);
        c->wlen = n - (size_t)w;
    }
    return 0;
}

/* Sends one masked (zero key) frame. */
static int send_frame(struct conn *c, int opcode, const char *payload, size_t n)
{
    char buf[16 + 4096];
    size_t h = 0;
    if (n > 4096)
        return -1;
    buf[h++] = (char)(0x80 | opcode);
    if (n < 126) {
        buf[h++] = (char)(0x80 | n);
    } else {
        buf[h++] = (char)(0x80 | 126);
        buf[h++] = (char)(n >> 8);
        buf[h++] = (char)(n & 0xff);
    }
    memset(buf + h, 0, 4);
    h += 4;
    memcpy(buf + h, payload, n);
    return write_all(c, buf, h + n);
}

static int send_message(struct conn *c, enum mode mode)
{
    /* The echo server gets the same frames, so both runs move the same bytes. */
    (void)mode;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "{\"type\":\"message\",\"id\":\"m%u\",\"text\":\"%s\"}",
                     c->n_sent, questions[c->n_sent % N_QUESTIONS]);
    c->n_sent++;
    c->sent_at_us = now_us();
    c->is_waiting = 1;
    return send_frame(c, 1, msg, (size_t)n);
}

static void conn_close(struct conn *c, int epfd, struct stats *st)
{
    if (c->state == ST_CLOSED)
        return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = ST_CLOSED;
    st->n_closed++;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
}

static int frame_has_type(const char *p, size_t n, const char *type)
{
    char key[48];
    int k = snprintf(key, sizeof key, "\"type\":\"%s\"", type);
    return memmem(p, n, key, (size_t)k) != NULL;
}

static struct conn *conns_base;

/* Handles the complete frames in c->rbuf; returns -1 to close. */
static int process_frames(struct conn *c, enum mode mode, int is_measuring, struct stats *st,
                          int *is_open_event)
{
    size_t off = 0;
    if (c->state == ST_HANDSHAKE) {
        char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!end)
            return c->rlen > 8192 ? -1 : 0;
        if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.1 101", 12))
            return -1;
        off = (size_t)(end - c->rbuf) + 4;
        c->state = ST_OPEN;
        *is_open_event = 1;
    }
    while (c->rlen - off >= 2) {
        unsigned char *p = (unsigned char *)c->rbuf + off;
        int opcode = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (c->rlen - off < 4)
                break;
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (c->rlen - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (p[1] & 0x80)
            h += 4; /* servers do not mask, but tolerate it */
        if (c->rlen - off < h + len)
            break;
        const char *payload = (const char *)p + h;
        if (opcode == 9) {
            if (send_frame(c, 10, payload, (size_t)len))
                return -1;
        } else if (opcode == 8) {
            return -1;
        } else if (opcode == 1 || opcode == 2 || opcode == 0) {
            int is_answer = 0;
            if (mode == MODE_ECHO) {
                is_answer = 1;
            } else if (mode == MODE_CHAT) {
                if (frame_has_type(payload, (size_t)len, "reply")) {
                    is_answer = 1;
                    if (is_measuring)
                        st->n_replies++;
                } else if (frame_has_type(payload, (size_t)len, "ack")) {
                    is_answer = 1;
                    if (is_measuring)
                        st->n_acks++;
                } else if (frame_has_type(payload, (size_t)len, "error")) {
                    is_answer = 1;
                    if (is_measuring)
                        st->n_errors++;
                }
            }
            if (is_answer && c->is_waiting) {
                c->is_waiting = 0;
                if (is_measuring) {
                    st->n_responses++;
                    record(st, now_us() - c->sent_at_us);
                }
                int64_t now = now_us();
                int64_t due = 0;
                if (think_us)
                    due = now + think_us / 2 + rand() % think_us;
                else if (period_us)
                    due = c->sent_at_us + period_us / 2 + rand() % period_us;
                if (due > now) {
                    think_push((uint32_t)(c - conns_base), due);
                } else {
                    if (period_us && is_measuring)
                        n_late++;
                    if (!stop && send_message(c, mode))
                        return -1;
                }
            }
        }
        off += h + (size_t)len;
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

static void usage(void)
{
    fputs("usage: loadgen [--host 127.0.0.1] --port N [--path /chat] [--mode chat|echo|idle]\n"
          "               [--connections N] [--duration S] [--warmup S] [--ramp N]\n"
          "               [--think-ms T | --rate MSGS_PER_S]\n",
          stderr);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = "/chat";
    int port = 0, n_conns = 100, ramp = 256;
    double rate_target = 0;
    double duration = 5, warmup = 1;
    enum mode mode = MODE_CHAT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--path"))
            path = v;
        else if (!strcmp(a, "--connections"))
            n_conns = atoi(v);
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atof(v);
        else if (!strcmp(a, "--think-ms"))
            think_us = (int64_t)(atof(v) * 1000);
        else if (!strcmp(a, "--rate"))
            rate_target = atof(v);
        else if (!strcmp(a, "--ramp"))
            ramp = atoi(v);
        else if (!strcmp(a, "--mode"))
            mode = !strcmp(v, "echo") ? MODE_ECHO : !strcmp(v, "idle") ? MODE_IDLE : MODE_CHAT;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (port <= 0 || n_conns <= 0 || ramp <= 0 || rate_target < 0 || think_us < 0 ||
        (rate_target > 0 && think_us > 0)) {
        usage();
        return 2;
    }
    if (rate_target > 0)
        period_us = (int64_t)((double)n_conns * 1e6 / rate_target);
    if (rate_target > 0 && period_us < 2) {
        fputs("loadgen: --rate above 500,000 per connection per second\n", stderr);
        return 2;
    }
    pace_us = think_us ? think_us : period_us;
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)n_conns + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n_conns + 64 ? rl.rlim_max : (rlim_t)n_conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad host %s (IPv4 address)\n", host);
        return 2;
    }
    char request[512];
    int n_request =
        snprintf(request, sizeof request,
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 path, host, port);

    struct conn *conns = calloc((size_t)n_conns, sizeof *conns);
    struct epoll_event *events = calloc(1024, sizeof *events);
    int epfd = epoll_create1(0);
    conns_base = conns;
    wheel.n_slots = (size_t)(pace_us * 3 / 2000) + 4;
    wheel.slot_head = malloc(wheel.n_slots * sizeof *wheel.slot_head);
    wheel.next = calloc((size_t)n_conns, sizeof *wheel.next);
    wheel.done_ms = now_us() / 1000;
    if (!conns || !events || epfd < 0 || !wheel.slot_head || !wheel.next) {
        perror("loadgen");
        return 1;
    }
    for (size_t i = 0; i < wheel.n_slots; i++)
        wheel.slot_head[i] = -1;
    struct stats st;
    memset(&st, 0, sizeof st);
    int n_started = 0, n_open = 0, n_pending = 0;
    int64_t t_start = now_us(), t_all_open = 0, t_measure = 0, t_end = 0;
    int is_measuring = 0, is_ready_printed = 0;
    char chunk[65536];

    while (!stop) {
        /* Start connections, at most ramp in the handshake at once. */
        while (n_started < n_conns && n_pending < ramp) {
            struct conn *c = &conns[n_started];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (c->fd < 0) {
                perror("loadgen: socket");
                stop = 1;
                break;
            }
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) && errno != EINPROGRESS) {
                close(c->fd);
                c->state = ST_CLOSED;
                st.n_failed_connect++;
                n_started++;
                continue;
            }
            c->state = ST_CONNECTING;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)n_started};
            epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
            n_started++;
            n_pending++;
        }
        int64_t now = now_us();
        if (!t_all_open && n_started == n_conns && n_pending == 0) {
            t_all_open = now;
            if (mode == MODE_IDLE && !is_ready_printed) {
                printf("ready %d\n", n_open);
                fflush(stdout);
                is_ready_printed = 1;
                t_end = now + (int64_t)(duration * 1e6);
            } else {
                t_measure = now + (int64_t)(warmup * 1e6);
                t_end = t_measure + (int64_t)(duration * 1e6);
            }
        }
        if (t_measure && !is_measuring && now >= t_measure)
            is_measuring = 1;
        if (t_end && now >= t_end)
            break;
        if (now - t_start > 120 * 1000000LL) {
            fputs("loadgen: gave up after 120 s\n", stderr);
            break;
        }
        for (int64_t ms = wheel.done_ms + 1; pace_us && ms <= now / 1000; ms++) {
            size_t slot = (size_t)(ms % (int64_t)wheel.n_slots);
            int32_t i = wheel.slot_head[slot];
            wheel.slot_head[slot] = -1;
            while (i >= 0) {
                struct conn *c = &conns[i];
                int32_t next = wheel.next[i];
                if (c->state == ST_OPEN && send_message(c, mode)) {
                    conn_close(c, epfd, &st);
                } else if (c->state == ST_OPEN && c->wlen) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                }
                i = next;
            }
            wheel.done_ms = ms;
        }
        int timeout_ms = pace_us ? 1 : 50;
        int n = epoll_wait(epfd, events, 1024, timeout_ms);
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[events[i].data.u32];
            if (c->state == ST_CLOSED)
                continue;
            uint32_t e = events[i].events;
            if (c->state == ST_CONNECTING && (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err || (e & EPOLLERR)) {
                    st.n_failed_connect++;
                    n_pending--;
                    conn_close(c, epfd, &st);
                    st.n_closed--;
                    continue;
                }
                c->state = ST_HANDSHAKE;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = events[i].data.u32};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                if (write_all(c, request, (size_t)n_request)) {
                    n_pending--;
                    conn_close(c, epfd, &st);
                    continue;
                }
            }
            if ((e & EPOLLOUT) && c->wlen && c->state != ST_CONNECTING) {
                ssize_t w = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
                if (w > 0) {
                    memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
                    c->wlen -= (size_t)w;
                }
            }
            if (e & (EPOLLIN | EPOLLHUP)) {
                ssize_t r = recv(c->fd, chunk, sizeof chunk, 0);
                if (r <= 0) {
                    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        continue;
                    if (c->state == ST_HANDSHAKE) {
                        n_pending--;
                        st.n_failed_connect++;
                    }
                    conn_close(c, epfd, &st);
                    continue;
                }
                if (c->rlen + (size_t)r > c->rcap) {
                    size_t cap = c->rcap ? c->rcap : 1024;
                    while (cap < c->rlen + (size_t)r)
                        cap *= 2;
                    char *p = realloc(c->rbuf, cap);
                    if (!p) {
                        conn_close(c, epfd, &st);
                        continue;
                    }
                    c->rbuf = p;
                    c->rcap = cap;
                }
                memcpy(c->rbuf + c->rlen, chunk, (size_t)r);
                c->rlen += (size_t)r;
                int was_handshake = c->state == ST_HANDSHAKE;
                int opened = 0;
                int rc = process_frames(c, mode, is_measuring, &st, &opened);
                if (opened) {
                    n_pending--;
                    n_open++;
                    /* Paced connections start at random points of the think
                     * time, so they do not send in lockstep. */
                    if (mode != MODE_IDLE && pace_us)
                        think_push((uint32_t)(c - conns), now_us() + rand() % pace_us);
                    else if (mode != MODE_IDLE && send_message(c, mode))
                        rc = -1;
                    /* Idle connections keep only a small buffer. */
                    if (mode == MODE_IDLE && c->rlen == 0) {
                        free(c->rbuf);
                        c->rbuf = NULL;
                        c->rcap = 0;
                    }
                }
                if (rc) {
                    if (was_handshake && !opened) {
                        n_pending--;
                        st.n_failed_connect++;
                    }
                    conn_close(c, epfd, &st);
                }
            }
            if (c->state != ST_CLOSED) {
                uint32_t want = EPOLLIN | (c->wlen ? EPOLLOUT : 0);
                if (want != (e & (EPOLLIN | EPOLLOUT)) && c->state != ST_CONNECTING) {
                    struct epoll_event ev = {.events = want, .data.u32 = events[i].data.u32};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
    int64_t measured_us = t_measure && now_us() > t_measure ? now_us() - t_measure : 0;
    if (t_end && measured_us > (int64_t)(duration * 1e6))
        measured_us = (int64_t)(duration * 1e6);
    double p50 = 0, p99 = 0;
    if (st.n_lat) {
        qsort(st.lat_us, st.n_lat, sizeof *st.lat_us, cmp_u32);
        p50 = st.lat_us[st.n_lat / 2] / 1000.0;
        p99 = st.lat_us[(size_t)((double)st.n_lat * 0.99)] / 1000.0;
    }
    double rate = measured_us ? (double)st.n_responses * 1e6 / (double)measured_us : 0;
    printf("{\"mode\":\"%s\",\"think_ms\":%.0f,\"rate_target\":%.0f,\"late\":%llu,"
           "\"connections\":%d,\"open\":%d,\"failed_connect\":%llu,"
           "\"closed_by_server\":%llu,\"seconds\":%.2f,\"responses\":%llu,\"replies\":%llu,"
           "\"acks\":%llu,\"errors\":%llu,\"msgs_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           mode == MODE_CHAT   ? "chat"
           : mode == MODE_ECHO ? "echo"
                               : "idle",
           think_us / 1000.0, rate_target, (unsigned long long)n_late, n_conns, n_open,
           (unsigned long long)st.n_failed_connect, (unsigned long long)st.n_closed,
           measured_us / 1e6, (unsigned long long)st.n_responses, (unsigned long long)st.n_replies,
           (unsigned long long)st.n_acks, (unsigned long long)st.n_errors, rate, p50, p99);
    for (int i = 0; i < n_conns; i++)
        if (conns[i].state != ST_CLOSED && n_started > i)
            conn_close(&conns[i], epfd, &st);
    free(conns);
    free(events);
    free(wheel.slot_head);
    free(wheel.next);
    free(st.lat_us);
    close(epfd);
    return n_open == n_conns ? 0 : 1;
}
