/* cluster: the listening thread that brings other nodes' events to this one (cluster.h). */
#include "cluster.h"

#include "cd.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BATCH  1000
#define MISSING_MAX 4096 /* ids a stream waits for at once */
#define QUEUE_MAX   65536

/* One commit-ordered id sequence read past the highest id seen: the messages table (kind 'm') or
 * node_events (kinds 'c' and 'k'). */
struct stream {
    const char *sql;              /* SELECT id, conversation, seq, kind, node, payload ... */
    int64_t top;                  /* the highest id seen */
    int64_t missing[MISSING_MAX]; /* ids below top not seen yet (a transaction committing) */
    int64_t missing_since_ms[MISSING_MAX];
    int n_missing;
};

struct cluster {
    char *uri;
    char node[CLUSTER_NODE_ID];
    void (*wake)(void *ctx);
    void *wake_ctx;
    pthread_t thread;
    int stop_pipe[2];
    PGconn *pg;
    /* the thread's own */
    int64_t start_id; /* node_events' last id when the thread started */
    struct stream streams[2];
    int64_t last_prune_ms;
    /* shared, under mutex */
    pthread_mutex_t mutex;
    struct cluster_event *queue;
    int n_queue, cap_queue;
    int is_connected; /* the listening connection is up (the thread's own) */
};

void cluster_new_node_id(char out[CLUSTER_NODE_ID])
{
    unsigned char b[8] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
        uint64_t x = (uint64_t)cd_wall_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(b, &x, sizeof b);
    }
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int exec_ok(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType es = PQresultStatus(r);
    PQclear(r);
    return es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
}

/* (Re)connects and LISTENs. 0 or -1. */
static int connect_listen(struct cluster *cl)
{
    if (cl->pg && PQstatus(cl->pg) == CONNECTION_OK)
        return 0;
    if (cl->pg) {
        PQreset(cl->pg);
    } else {
        const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
        const char *const vals[] = {"3", "caredesk-events", cl->uri, NULL};
        cl->pg = PQconnectdbParams(keys, vals, 1);
    }
    if (!cl->pg || PQstatus(cl->pg) != CONNECTION_OK || !exec_ok(cl->pg, "LISTEN caredesk_events"))
        return -1;
    PQsetnonblocking(cl->pg, 0);
    return 0;
}

static void push(struct cluster *cl, const struct cluster_event *ev)
{
    pthread_mutex_lock(&cl->mutex);
    if (cl->n_queue == cl->cap_queue && cl->cap_queue < QUEUE_MAX) {
        int cap = cl->cap_queue ? cl->cap_queue * 2 : 256;
        struct cluster_event *q = realloc(cl->queue, (size_t)cap * sizeof *q);
        if (q) {
            cl->queue = q;
            cl->cap_queue = cap;
        }
    }
    int is_dropped = cl->n_queue == cl->cap_queue;
    if (!is_dropped)
        cl->queue[cl->n_queue++] = *ev;
    else
        free(ev->payload);
    pthread_mutex_unlock(&cl->mutex);
    /* The loop has not taken events for a long while (QUEUE_MAX of them): its clients catch up
     * when they resume; say so rather than grow without bound. */
    if (is_dropped)
        log_event(LOG_ERROR, "cluster_event_dropped", "conversation:l", (long long)ev->conversation,
                  "kind:i", ev->kind, LOG_END);
}

/* Forgets st's k-th missing id: it came, or it is not waited for any more. */
static void drop_missing(struct stream *st, int k)
{
    size_t n = (size_t)(--st->n_missing - k);
    memmove(st->missing + k, st->missing + k + 1, n * sizeof *st->missing);
    memmove(st->missing_since_ms + k, st->missing_since_ms + k + 1,
            n * sizeof *st->missing_since_ms);
}

/* Takes the rows of r (columns as stream.sql) that are new: queues the other nodes' events,
 * notes the ids skipped over as missing. Returns how many events were queued. */
static int take_rows(struct cluster *cl, struct stream *st, PGresult *r, int64_t t)
{
    int n_new = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (id > st->top) {
            /* Ids between the last seen and this one are still committing (or rolled back). */
            int64_t from = st->top + 1 > id - MISSING_MAX ? st->top + 1 : id - MISSING_MAX;
            for (int64_t m = from; m < id; m++) {
                if (st->n_missing == MISSING_MAX) /* too many at once: give the oldest up */
                    drop_missing(st, 0);
                st->missing[st->n_missing] = m;
                st->missing_since_ms[st->n_missing++] = t;
            }
            st->top = id;
        } else {
            int k = 0;
            while (k < st->n_missing && st->missing[k] != id)
                k++;
            if (k == st->n_missing)
                continue; /* seen already */
            drop_missing(st, k);
        }
        if (!strcmp(PQgetvalue(r, i, 4), cl->node))
            continue; /* this node's own */
        struct cluster_event ev;
        ev.id = id;
        ev.conversation = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        ev.seq = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        ev.kind = PQgetvalue(r, i, 3)[0];
        ev.payload = NULL;
        if (ev.kind == CLUSTER_KB && !(ev.payload = strdup(PQgetvalue(r, i, 5))))
            continue;
        push(cl, &ev);
        n_new++;
    }
    return n_new;
}

/* Reads one stream: the rows past its top, then the ids it still waits for. Returns how many
 * events were queued, or -1 when the connection failed. *is_more is set when a whole batch
 * came (read again). */
static int read_stream(struct cluster *cl, struct stream *st, int *is_more)
{
    *is_more = 0;
    int64_t t = cd_wall_ms();
    char sql[512];
    snprintf(sql, sizeof sql, "%s WHERE id > %lld ORDER BY id LIMIT %d", st->sql,
             (long long)st->top, READ_BATCH);
    PGresult *r = PQexec(cl->pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    *is_more = PQntuples(r) == READ_BATCH;
    int n_new = take_rows(cl, st, r, t);
    PQclear(r);
    /* Missing ids given up: the transaction rolled back (or the row was deleted). */
    while (st->n_missing && t - st->missing_since_ms[0] > CLUSTER_GAP_MS)
        drop_missing(st, 0);
    if (!st->n_missing)
        return n_new;
    struct cd_buf q = {0};
    int rc = cd_buf_printf(&q, "%s WHERE id IN (", st->sql);
    for (int i = 0; !rc && i < st->n_missing && i < 512; i++)
        rc = cd_buf_printf(&q, "%s%lld", i ? "," : "", (long long)st->missing[i]);
    if (!rc)
        rc = cd_buf_puts(&q, ") ORDER BY id");
    if (rc) {
        cd_buf_free(&q);
        return n_new;
    }
    r = PQexec(cl->pg, q.data);
    cd_buf_free(&q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    n_new += take_rows(cl, st, r, t);
    PQclear(r);
    return n_new;
}

static int read_events(struct cluster *cl)
{
    int n = 0;
    for (int i = 0; i < 2; i++) {
        int is_more = 1, rc = 0;
        while (rc >= 0 && is_more) {
            rc = read_stream(cl, &cl->streams[i], &is_more);
            if (rc < 0)
                return -1;
            n += rc;
        }
    }
    return n;
}

static void prune(struct cluster *cl)
{
    int64_t t = cd_wall_ms();
    if (t - cl->last_prune_ms < 60000)
        return;
    cl->last_prune_ms = t;
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM node_events WHERE kind = 'c' AND created_ms < %lld",
             (long long)(t - (int64_t)CLUSTER_KEEP_S * 1000));
    exec_ok(cl->pg, sql);
}

static void set_connected(struct cluster *cl, int up)
{
    if (cl->is_connected != up)
        log_event(up ? LOG_INFO : LOG_WARN, up ? "cluster_connected" : "cluster_disconnected",
                  LOG_END);
    cl->is_connected = up;
}

static void *cluster_main(void *arg)
{
    struct cluster *cl = arg;
    for (;;) {
        if (connect_listen(cl)) {
            set_connected(cl, 0);
            struct pollfd p = {cl->stop_pipe[0], POLLIN, 0};
            if (poll(&p, 1, 1000) > 0)
                break;
            continue;
        }
        set_connected(cl, 1);
        int rc = read_events(cl);
        pthread_mutex_lock(&cl->mutex);
        int has = cl->n_queue > 0;
        pthread_mutex_unlock(&cl->mutex);
        if (rc < 0) {
            set_connected(cl, 0);
            continue;
        }
        if (has && cl->wake)
            cl->wake(cl->wake_ctx);
        prune(cl);
        struct pollfd p[2] = {{PQsocket(cl->pg), POLLIN, 0}, {cl->stop_pipe[0], POLLIN, 0}};
        /* While an id is missing, look again soon. */
        int timeout = cl->streams[0].n_missing || cl->streams[1].n_missing ? 20 : CLUSTER_POLL_MS;
        int n = poll(p, 2, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (p[0].revents) {
            if (!PQconsumeInput(cl->pg)) {
                set_connected(cl, 0);
                continue;
            }
            PGnotify *note;
            while ((note = PQnotifies(cl->pg)))
                PQfreemem(note); /* a doorbell: the events are read at the top of the loop */
        }
    }
    return NULL;
}

struct cluster *cluster_start(const char *uri, const char *node_id, void (*wake)(void *ctx),
                              void *wake_ctx, char **err)
{
    if (err)
        *err = NULL;
    struct cluster *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->uri = strdup(uri);
    snprintf(cl->node, sizeof cl->node, "%s", node_id);
    cl->wake = wake;
    cl->wake_ctx = wake_ctx;
    cl->stop_pipe[0] = cl->stop_pipe[1] = -1;
    pthread_mutex_init(&cl->mutex, NULL);
    if (!cl->uri || pipe(cl->stop_pipe))
        goto fail;
    if (connect_listen(cl)) {
        if (err) {
            const char *m = cl->pg ? PQerrorMessage(cl->pg) : "out of memory";
            size_t n = strlen(m) + 64;
            *err = malloc(n);
            if (*err)
                snprintf(*err, n, "cannot listen for other nodes' events: %s", m);
        }
        goto fail;
    }
    /* Start from now: what happened before, this node loads from the store. */
    cl->streams[0].sql = "SELECT id, conversation, seq, 'm', node, NULL FROM messages";
    cl->streams[1].sql = "SELECT id, conversation, seq, kind, node, payload FROM node_events";
    PGresult *r = PQexec(cl->pg, "SELECT (SELECT coalesce(max(id), 0) FROM messages),"
                                 " (SELECT coalesce(max(id), 0) FROM node_events)");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        cl->streams[0].top = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        cl->streams[1].top = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    cl->start_id = cl->streams[1].top;
    cl->is_connected = 1;
    if (pthread_create(&cl->thread, NULL, cluster_main, cl))
        goto fail;
    return cl;
fail:
    if (cl->stop_pipe[0] >= 0) {
        close(cl->stop_pipe[0]);
        close(cl->stop_pipe[1]);
    }
    PQfinish(cl->pg);
    pthread_mutex_destroy(&cl->mutex);
    free(cl->uri);
    free(cl);
    return NULL;
}

int64_t cluster_start_id(const struct cluster *cl)
{
    return cl->start_id;
}

int cluster_take(struct cluster *cl, struct cluster_event *out, int max)
{
    pthread_mutex_lock(&cl->mutex);
    int n = cl->n_queue < max ? cl->n_queue : max;
    if (n > 0) {
        memcpy(out, cl->queue, (size_t)n * sizeof *out);
        memmove(cl->queue, cl->queue + n, (size_t)(cl->n_queue - n) * sizeof *out);
        cl->n_queue -= n;
    }
    pthread_mutex_unlock(&cl->mutex);
    return n;
}

void cluster_stop(struct cluster *cl)
{
    if (!cl)
        return;
    if (write(cl->stop_pipe[1], "x", 1) != 1)
        pthread_cancel(cl->thread);
    pthread_join(cl->thread, NULL);
    close(cl->stop_pipe[0]);
    close(cl->stop_pipe[1]);
    PQfinish(cl->pg);
    pthread_mutex_destroy(&cl->mutex);
    for (int i = 0; i < cl->n_queue; i++)
        free(cl->queue[i].payload);
    free(cl->queue);
    free(cl->uri);
    free(cl);
}
