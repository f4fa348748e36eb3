/* webhook: endpoints from the settings, events from store changes into the outbox, and the
 * delivery thread that posts them (see webhook.h).
 *
 * DESIGN. The event loop only writes rows: the observer runs inside the store write it
 * reports, so the row commits or rolls back with the change (a crash loses no event and
 * sends none for a change that did not commit). The delivery thread owns a store connection
 * of its own and one libcurl handle; it never touches the loop's store. It polls the outbox
 * for due rows (an indexed query, four times a second when idle), posts each, and records the
 * outcome. Ordering per conversation comes from the outbox query (only the oldest pending row
 * of a conversation and endpoint is due). On PostgreSQL every node runs this thread on the
 * one outbox: store_outbox_claim() holds the rows a node took from the others while it posts
 * them, so an event goes out once, and a node that dies mid-batch delays its rows by the hold. What
 * must never happen: a request made from the event loop, or a secret written to a log. */
#include "webhook.h"

#include "auth.h"
#include "cd.h"
#include "config.h"
#include "db.h"
#include "kb.h"
#include "kb_import.h"
#include "log.h"
#include "store.h"
#include "store_db.h"
#include "store_outbox.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define WEBHOOK_MAX_ENDPOINTS 16
#define WEBHOOK_BATCH         32
#define WEBHOOK_IDLE_MS       250
#define WEBHOOK_MAX_DELAY_MS  (3600 * 1000LL)

const char *const webhook_events[] = {
    "conversation.created", "conversation.handoff", "conversation.assigned", "message.created",
    "conversation.closed",  "conversation.rated",   "article.published",     NULL,
};

struct endpoint {
    char *url;
    char *secret;
    char *events; /* comma-separated names or prefixes ("conversation.*"), "*" = all */
};

struct webhook {
    struct endpoint endpoints[WEBHOOK_MAX_ENDPOINTS];
    int n_endpoints;
    int64_t timeout_ms;
    int64_t retry_base_ms;
    int64_t max_age_ms;
    /* The delivery thread. */
    pthread_t thread;
    int has_thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int is_stop;         /* under mutex */
    struct store *store; /* the thread's own */
    CURL *curl;
    struct webhook_counts counts; /* under mutex */
};

/* ---- settings ---- */

static int is_known_event(const char *name, size_t n)
{
    if (n == 1 && name[0] == '*')
        return 1;
    for (int i = 0; webhook_events[i]; i++) {
        const char *e = webhook_events[i];
        if (strlen(e) == n && !strncmp(e, name, n))
            return 1;
        /* "conversation.*": every event of that kind */
        if (n >= 2 && name[n - 1] == '*' && name[n - 2] == '.' && !strncmp(e, name, n - 1))
            return 1;
    }
    return 0;
}

static int matches(const char *filter, const char *event)
{
    for (const char *p = filter; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if ((n == 1 && *p == '*') || (n == strlen(event) && !strncmp(p, event, n)) ||
            (n >= 2 && p[n - 1] == '*' && !strncmp(p, event, n - 1)))
            return 1;
        p += n + (end ? 1 : 0);
    }
    return 0;
}

static char *fmt_err(const char *fmt, const char *a, const char *b)
{
    char msg[1200];
    snprintf(msg, sizeof msg, fmt, a, b ? b : "");
    return strdup(msg);
}

/* Adds an endpoint; on a bad value sets *err and returns -1. */
static int add_endpoint(struct webhook *wh, const char *url, size_t n_url, const char *secret,
                        const char *events, size_t n_events, const char *where, char **err)
{
    char *u = cd_strndup(url, n_url);
    if (!u)
        return -1;
    if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) {
        *err = fmt_err("setting '%s': '%s' is not an http:// or https:// URL", where, u);
        free(u);
        return -1;
    }
    if (strlen(u) >= sizeof((struct store_outbox_item *)0)->endpoint) {
        *err = fmt_err("setting '%s': the URL is longer than 511 bytes%s", where, NULL);
        free(u);
        return -1;
    }
    if (!secret || !*secret) {
        *err = fmt_err("setting '%s': %s needs a secret (webhook-secret, or secret= for it)", where,
                       u);
        free(u);
        return -1;
    }
    if (wh->n_endpoints == WEBHOOK_MAX_ENDPOINTS) {
        *err = fmt_err("setting '%s': more than 16 endpoints%s", where, NULL);
        free(u);
        return -1;
    }
    char *ev = n_events ? cd_strndup(events, n_events) : strdup("*");
    if (!ev) {
        free(u);
        return -1;
    }
    for (const char *p = ev; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (!is_known_event(p, n)) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(n < 60 ? n : 60), p);
            *err =
                fmt_err("setting '%s': unknown event '%s' (see docs/integrations.md)", where, name);
            free(u);
            free(ev);
            return -1;
        }
        p += n + (end ? 1 : 0);
    }
    struct endpoint *e = &wh->endpoints[wh->n_endpoints];
    e->url = u;
    e->secret = strdup(secret);
    e->events = ev;
    wh->n_endpoints++;
    return e->secret ? 0 : -1;
}

/* webhook-endpoints: "URL [events=a,b] [secret=S]; URL ..." */
static int parse_endpoints(struct webhook *wh, const char *list, const char *default_secret,
                           char **err)
{
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *url = NULL, *events = NULL;
        size_t n_url = 0, n_events = 0;
        char *secret = NULL;
        for (size_t i = 0; i < n;) {
            while (i < n && (p[i] == ' ' || p[i] == '\t'))
                i++;
            size_t j = i;
            while (j < n && p[j] != ' ' && p[j] != '\t')
                j++;
            if (j == i)
                break;
            if (!strncmp(p + i, "events=", 7)) {
                events = p + i + 7;
                n_events = j - i - 7;
            } else if (!strncmp(p + i, "secret=", 7)) {
                free(secret);
                secret = cd_strndup(p + i + 7, j - i - 7);
            } else if (!url) {
                url = p + i;
                n_url = j - i;
            } else {
                char word[64];
                snprintf(word, sizeof word, "%.*s", (int)(j - i < 60 ? j - i : 60), p + i);
                *err = fmt_err("setting 'webhook-endpoints': unexpected '%s' (URL [events=a,b] "
                               "[secret=S]; ...)%s",
                               word, NULL);
                free(secret);
                return -1;
            }
            i = j;
        }
        if (url) {
            int rc = add_endpoint(wh, url, n_url, secret ? secret : default_secret, events,
                                  n_events, "webhook-endpoints", err);
            free(secret);
            if (rc)
                return -1;
        } else
            free(secret);
        p += n + (end ? 1 : 0);
    }
    return 0;
}

struct webhook *webhook_new(const struct config *cfg, char **err)
{
    *err = NULL;
    struct webhook *wh = calloc(1, sizeof *wh);
    if (!wh)
        return NULL;
    wh->timeout_ms = cfg->webhook_timeout_ms;
    wh->retry_base_ms = cfg->webhook_retry_base_ms;
    wh->max_age_ms = (int64_t)cfg->webhook_max_age_s * 1000;
    pthread_mutex_init(&wh->mutex, NULL);
    pthread_cond_init(&wh->cond, NULL);
    int rc = 0;
    if (cfg->webhook_url && *cfg->webhook_url)
        rc = add_endpoint(wh, cfg->webhook_url, strlen(cfg->webhook_url), cfg->webhook_secret,
                          cfg->webhook_events,
                          strlen(cfg->webhook_events ? cfg->webhook_events : ""), "webhook-url",
                          err);
    if (!rc && cfg->webhook_endpoints && *cfg->webhook_endpoints)
        rc = parse_endpoints(wh, cfg->webhook_endpoints, cfg->webhook_secret, err);
    if (rc) {
        if (!*err)
            *err = strdup("out of memory");
        webhook_free(wh);
        return NULL;
    }
    return wh;
}

void webhook_free(struct webhook *wh)
{
    if (!wh)
        return;
    webhook_stop(wh);
    for (int i = 0; i < wh->n_endpoints; i++) {
        free(wh->endpoints[i].url);
        free(wh->endpoints[i].secret);
        free(wh->endpoints[i].events);
    }
    pthread_mutex_destroy(&wh->mutex);
    pthread_cond_destroy(&wh->cond);
    free(wh);
}

int webhook_count(const struct webhook *wh)
{
    return wh ? wh->n_endpoints : 0;
}

int64_t webhook_max_age_ms(const struct webhook *wh)
{
    return wh ? wh->max_age_ms : 86400 * 1000LL;
}

/* ---- events ---- */

static int wants(const struct webhook *wh, const char *event)
{
    for (int i = 0; i < wh->n_endpoints; i++)
        if (matches(wh->endpoints[i].events, event))
            return 1;
    return 0;
}

static json_t *iso_time(int64_t ms)
{
    char buf[64];
    return json_string(cd_iso_time_ms(ms, buf, sizeof buf));
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *seconds_or_null(int64_t s)
{
    return s > 0 ? iso_time(s * 1000) : json_null();
}

static json_t *conversation_json(const struct store_conversation *c)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_integer(c->id));
    json_object_set_new(o, "state", json_string(store_state_name(c->state)));
    json_object_set_new(o, "lang", json_string(c->lang[0] ? c->lang : "en"));
    json_object_set_new(o, "customer",
                        json_pack("{s:o,s:o,s:o}", "name", str_or_null(c->customer_name), "email",
                                  str_or_null(c->customer_email), "page",
                                  str_or_null(c->customer_page)));
    json_object_set_new(o, "queue", str_or_null(c->queue));
    json_object_set_new(o, "intent", str_or_null(c->intent));
    json_object_set_new(o, "confidence", json_real(c->confidence));
    json_object_set_new(o, "priority", json_integer(c->priority));
    json_object_set_new(o, "agent_id", c->agent_id ? json_integer(c->agent_id) : json_null());
    json_object_set_new(o, "created_at", seconds_or_null(c->created_s));
    json_object_set_new(o, "queued_at", seconds_or_null(c->queued_s));
    json_object_set_new(o, "picked_at", seconds_or_null(c->picked_s));
    json_object_set_new(o, "closed_at", seconds_or_null(c->closed_s));
    return o;
}

/* Writes one outbox row per endpoint that wants event: payload is the event's own part
 * (taken), to which each row adds event, id and created_at. conversation 0: unordered. */
static int enqueue(struct webhook *wh, struct store *s, struct db *db, const char *event,
                   int64_t conversation, json_t *payload)
{
    if (!payload)
        return CD_ENOMEM;
    int rc = 0;
    int64_t now = cd_wall_ms();
    for (int i = 0; i < wh->n_endpoints && !rc; i++) {
        const struct endpoint *e = &wh->endpoints[i];
        if (!matches(e->events, event))
            continue;
        struct store_outbox_item it;
        memset(&it, 0, sizeof it);
        if ((rc = store_outbox_new_delivery_id(it.delivery)))
            break;
        cd_strlcpy(it.event, sizeof it.event, event);
        cd_strlcpy(it.endpoint, sizeof it.endpoint, e->url);
        it.conversation = conversation;
        it.created_ms = now;
        it.deadline_ms = now + wh->max_age_ms;
        json_t *body = json_pack("{s:s,s:s,s:o}", "event", event, "id", it.delivery, "created_at",
                                 iso_time(now));
        if (!body || json_object_update(body, payload)) {
            json_decref(body);
            rc = CD_ENOMEM;
            break;
        }
        it.payload = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!it.payload) {
            rc = CD_ENOMEM;
            break;
        }
        if (s)
            rc = store_outbox_add(s, &it);
        else {
            /* On the KB's connection, in its transaction (webhook_kb_put()). */
            struct db_stmt *st =
                db_prepare(db,
                           "INSERT INTO webhook_outbox (delivery, event, endpoint, conversation,"
                           " payload, created_ms, next_attempt_ms, deadline_ms)"
                           " VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?5, ?6)",
                           NULL);
            if (!st) {
                rc = CD_EIO;
            } else {
                db_bind_text(st, 1, it.delivery);
                db_bind_text(st, 2, it.event);
                db_bind_text(st, 3, it.endpoint);
                db_bind_text(st, 4, it.payload);
                db_bind_int64(st, 5, it.created_ms);
                db_bind_int64(st, 6, it.deadline_ms);
                rc = db_run(st);
            }
            db_finalize(st);
        }
        free(it.payload);
    }
    json_decref(payload);
    return rc;
}

static int on_change(void *ctx, struct store *s, const struct store_change *ch)
{
    struct webhook *wh = ctx;
    const struct store_conversation *a = ch->after, *b = ch->before;
    int rc = 0;
    switch (ch->kind) {
    case STORE_CHANGE_CONVERSATION_CREATED:
        if (wants(wh, "conversation.created"))
            rc = enqueue(wh, s, NULL, "conversation.created", a->id,
                         json_pack("{s:o}", "conversation", conversation_json(a)));
        break;
    case STORE_CHANGE_CONVERSATION_CLAIMED:
        if (wants(wh, "conversation.assigned"))
            rc = enqueue(wh, s, NULL, "conversation.assigned", a->id,
                         json_pack("{s:o,s:{s:I}}", "conversation", conversation_json(a), "agent",
                                   "id", (json_int_t)a->agent_id));
        break;
    case STORE_CHANGE_MESSAGE_APPENDED:
        if (wants(wh, "message.created")) {
            const struct store_message *m = ch->message;
            json_t *msg = json_pack("{s:I,s:s,s:s,s:o}", "seq", (json_int_t)m->seq, "sender",
                                    store_sender_name(m->sender), "text", m->text ? m->text : "",
                                    "created_at", iso_time(cd_wall_ms()));
            if (msg && m->agent_id)
                json_object_set_new(msg, "agent_id", json_integer(m->agent_id));
            rc = enqueue(
                wh, s, NULL, "message.created", a->id,
                json_pack("{s:o,s:o?}", "conversation", conversation_json(a), "message", msg));
        }
        break;
    case STORE_CHANGE_CONVERSATION_UPDATED: {
        int was_queued = b->state == STORE_STATE_QUEUED, is_queued = a->state == STORE_STATE_QUEUED;
        int was_closed = b->state == STORE_STATE_CLOSED || b->state == STORE_STATE_RATED;
        int is_closed = a->state == STORE_STATE_CLOSED || a->state == STORE_STATE_RATED;
        if (!rc && is_queued && !was_queued && wants(wh, "conversation.handoff"))
            rc =
                enqueue(wh, s, NULL, "conversation.handoff", a->id,
                        json_pack("{s:o,s:{s:o,s:f,s:o,s:i,s:b}}", "conversation",
                                  conversation_json(a), "handoff", "intent", str_or_null(a->intent),
                                  "confidence", a->confidence, "queue", str_or_null(a->queue),
                                  "priority", a->priority, "offline", a->is_offline));
        if (!rc && a->agent_id && a->agent_id != b->agent_id && wants(wh, "conversation.assigned"))
            rc = enqueue(wh, s, NULL, "conversation.assigned", a->id,
                         json_pack("{s:o,s:{s:I}}", "conversation", conversation_json(a), "agent",
                                   "id", (json_int_t)a->agent_id));
        if (!rc && is_closed && !was_closed && wants(wh, "conversation.closed"))
            rc = enqueue(wh, s, NULL, "conversation.closed", a->id,
                         json_pack("{s:o,s:{s:o,s:o}}", "conversation", conversation_json(a),
                                   "close", "disposition", str_or_null(a->disposition), "closed_by",
                                   str_or_null(a->closed_by)));
        if (!rc && a->rating && !b->rating && wants(wh, "conversation.rated"))
            rc = enqueue(wh, s, NULL, "conversation.rated", a->id,
                         json_pack("{s:o,s:{s:i,s:o}}", "conversation", conversation_json(a),
                                   "rating", "score", a->rating, "comment",
                                   str_or_null(a->comment)));
        break;
    }
    default:
        break;
    }
    if (rc)
        log_event(LOG_ERROR, "webhook_enqueue_failed", "error:s", cd_strerror(rc), LOG_END);
    return rc;
}

void webhook_observe(struct webhook *wh, struct store *s)
{
    if (wh && wh->n_endpoints && s)
        store_set_observer(s, on_change, wh);
}

/* The article.published event's own part for article a. */
static json_t *article_event(const struct kb_article *a)
{
    json_t *tags = json_array();
    for (int i = 0; i < a->n_tags && tags; i++)
        json_array_append_new(tags, json_string(a->tags[i]));
    char url[KB_ID_MAX + 8];
    snprintf(url, sizeof url, "/kb/%s", a->id);
    return json_pack("{s:{s:s,s:s,s:s,s:o?,s:s}}", "article", "id", a->id, "title", a->title,
                     "lang", a->lang && *a->lang ? a->lang : "en", "tags", tags, "url", url);
}

/* The KB in the store's SQLite file: the event's row on the KB's connection, in the article's
 * transaction (a second connection's transaction on that file would wait for this one). */
static int put_on_kb_connection(struct webhook *wh, struct kb *kb, struct db *db,
                                const struct kb_article *a, char *msg, size_t msg_cap)
{
    if (db_exec(db, "BEGIN IMMEDIATE", NULL))
        return CD_EBUSY;
    /* The event's row first: kb_put() undoes its own writes when it fails. */
    int rc = enqueue(wh, NULL, db, "article.published", 0, article_event(a));
    if (!rc)
        rc = kb_put(kb, a, msg, msg_cap);
    if (rc)
        db_exec(db, "ROLLBACK", NULL);
    else if (db_exec(db, "COMMIT", NULL)) {
        db_exec(db, "ROLLBACK", NULL);
        rc = CD_EIO;
    }
    return rc;
}

/* The KB in another database than the store's: the event's row in a unit of work of the
 * store (a transaction of its own, or a savepoint in the caller's open one) around kb_put(). */
static int put_around_store_unit(struct webhook *wh, struct kb *kb, struct store *s,
                                 const struct kb_article *a, char *msg, size_t msg_cap)
{
    struct db *db = store_db(s);
    int is_own_tx = !db_in_tx(db);
    int rc = db_exec(db, is_own_tx ? "BEGIN" : "SAVEPOINT article_event", NULL);
    if (rc)
        return rc;
    rc = enqueue(wh, s, NULL, "article.published", 0, article_event(a));
    if (!rc)
        rc = kb_put(kb, a, msg, msg_cap);
    if (is_own_tx) {
        if (rc) {
            db_exec(db, "ROLLBACK", NULL);
        } else if (db_exec(db, "COMMIT", NULL)) {
            /* The article is saved; only its event is lost. */
            db_exec(db, "ROLLBACK", NULL);
            log_event(LOG_ERROR, "webhook_enqueue_failed", "event:s", "article.published",
                      "error:s", db_errmsg(db), LOG_END);
        }
    } else {
        if (rc)
            db_exec(db, "ROLLBACK TO article_event", NULL);
        db_exec(db, "RELEASE article_event", NULL);
    }
    return rc;
}

int webhook_kb_put(struct webhook *wh, struct kb *kb, struct store *s, const struct kb_article *a,
                   int was_published, char *msg, size_t msg_cap)
{
    if (!wh || !wh->n_endpoints || !a->is_published || was_published ||
        !wants(wh, "article.published"))
        return kb_put(kb, a, msg, msg_cap);
    if (!kb_connection(kb))
        return CD_EINVAL;
    struct db *kb_db = db_wrap_sqlite(kb_connection(kb));
    if (!kb_db)
        return CD_ENOMEM;
    const char *kb_file = db_filename(kb_db);
    const char *store_file = s ? db_filename(store_db(s)) : NULL;
    int rc;
    if (store_file && *kb_file && !strcmp(kb_file, store_file))
        rc = put_on_kb_connection(wh, kb, kb_db, a, msg, msg_cap);
    else if (s)
        rc = put_around_store_unit(wh, kb, s, a, msg, msg_cap);
    else /* no store: the KB's own file holds the outbox (as a store opened on it would) */
        rc = put_on_kb_connection(wh, kb, kb_db, a, msg, msg_cap);
    db_close(kb_db);
    return rc;
}

/* ---- signing ---- */

void webhook_sign(const char *secret, const char *timestamp, const char *body, size_t n,
                  char out[WEBHOOK_SIGNATURE_LEN + 1])
{
    unsigned char key[64] = {0}, inner_hash[AUTH_HASH_LEN], mac[AUTH_HASH_LEN];
    size_t n_secret = strlen(secret), n_ts = strlen(timestamp);
    if (n_secret > 64)
        auth_sha256(secret, n_secret, key);
    else
        memcpy(key, secret, n_secret);
    size_t n_inner = 64 + n_ts + 1 + n;
    unsigned char *inner = malloc(n_inner);
    unsigned char outer[64 + AUTH_HASH_LEN];
    if (!inner) {
        out[0] = '\0';
        return;
    }
    for (int i = 0; i < 64; i++) {
        inner[i] = key[i] ^ 0x36;
        outer[i] = key[i] ^ 0x5c;
    }
    memcpy(inner + 64, timestamp, n_ts);
    inner[64 + n_ts] = '.';
    memcpy(inner + 64 + n_ts + 1, body, n);
    auth_sha256(inner, n_inner, inner_hash);
    free(inner);
    memcpy(outer + 64, inner_hash, AUTH_HASH_LEN);
    auth_sha256(outer, sizeof outer, mac);
    memcpy(out, "sha256=", 7);
    for (int i = 0; i < AUTH_HASH_LEN; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
}

int64_t webhook_backoff_ms(int attempts, int64_t base_ms, double jitter)
{
    int64_t d = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempts && d < WEBHOOK_MAX_DELAY_MS; i++)
        d *= 2;
    if (d > WEBHOOK_MAX_DELAY_MS)
        d = WEBHOOK_MAX_DELAY_MS;
    if (jitter < 0)
        jitter = 0;
    if (jitter > 1)
        jitter = 1;
    return (int64_t)((double)d * (0.5 + jitter));
}

/* ---- delivery ---- */

static const struct endpoint *endpoint_of(const struct webhook *wh, const char *url)
{
    for (int i = 0; i < wh->n_endpoints; i++)
        if (!strcmp(wh->endpoints[i].url, url))
            return &wh->endpoints[i];
    return NULL;
}

static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * n;
}

static double random_unit(void)
{
    unsigned int r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned int)cd_wall_ms();
    return (double)r / 4294967296.0;
}

/* Posts one delivery. Returns the HTTP status, or 0 with a message in error when there was
 * no response. */
static long post(struct webhook *wh, const struct endpoint *e, const struct store_outbox_item *it,
                 char *error, size_t cap)
{
    char ts[24], sig[WEBHOOK_SIGNATURE_LEN + 1], h[640];
    snprintf(ts, sizeof ts, "%lld", (long long)(cd_wall_ms() / 1000));
    size_t n = strlen(it->payload);
    webhook_sign(e->secret, ts, it->payload, n, sig);
    struct curl_slist *headers = NULL;
    const char *fixed[] = {"Content-Type: application/json", "User-Agent: caredesk-webhook/1",
                           "Expect:"};
    for (size_t i = 0; i < 3; i++)
        headers = curl_slist_append(headers, fixed[i]);
    snprintf(h, sizeof h, "X-Caredesk-Event: %s", it->event);
    headers = curl_slist_append(headers, h);
    snprintf(h, sizeof h, "X-Caredesk-Delivery: %s", it->delivery);
    headers = curl_slist_append(headers, h);
    snprintf(h, sizeof h, "X-Caredesk-Timestamp: %s", ts);
    headers = curl_slist_append(headers, h);
    snprintf(h, sizeof h, "X-Caredesk-Signature: %s", sig);
    headers = curl_slist_append(headers, h);
    CURL *c = wh->curl;
    curl_easy_setopt(c, CURLOPT_URL, it->endpoint);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    long status = 0;
    CURLcode cc = headers ? curl_easy_perform(c) : CURLE_OUT_OF_MEMORY;
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(error, cap, "%s", curl_easy_strerror(cc));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    return status;
}

static void count(struct webhook *wh, int64_t *field)
{
    pthread_mutex_lock(&wh->mutex);
    (*field)++;
    pthread_mutex_unlock(&wh->mutex);
}

static void deliver(struct webhook *wh, struct store_outbox_item *it)
{
    const struct endpoint *e = endpoint_of(wh, it->endpoint);
    int64_t now = cd_wall_ms();
    if (!e) {
        store_outbox_record(wh->store, it->id, STORE_OUTBOX_FAILED, it->attempts, 0, 0,
                            "the endpoint is no longer configured", now);
        count(wh, &wh->counts.failed);
        return;
    }
    char error[160] = "";
    count(wh, &wh->counts.attempts);
    long status = post(wh, e, it, error, sizeof error);
    now = cd_wall_ms();
    int attempts = it->attempts + 1;
    if (status >= 200 && status < 300) {
        store_outbox_record(wh->store, it->id, STORE_OUTBOX_DELIVERED, attempts, 0, (int)status,
                            NULL, now);
        count(wh, &wh->counts.delivered);
        log_event(LOG_INFO, "webhook_delivered", "delivery:s", it->delivery, "event:s", it->event,
                  "status:i", (int)status, "attempts:i", attempts, LOG_END);
        return;
    }
    if (status)
        snprintf(error, sizeof error, "HTTP %ld", status);
    int64_t next = now + webhook_backoff_ms(attempts, wh->retry_base_ms, random_unit());
    int is_failed = next > it->deadline_ms;
    store_outbox_record(wh->store, it->id, is_failed ? STORE_OUTBOX_FAILED : STORE_OUTBOX_PENDING,
                        attempts, is_failed ? 0 : next, (int)status, error, now);
    count(wh, is_failed ? &wh->counts.failed : &wh->counts.retries);
    log_event(is_failed ? LOG_ERROR : LOG_WARN, is_failed ? "webhook_failed" : "webhook_retry",
              "delivery:s", it->delivery, "event:s", it->event, "error:s", error, "attempts:i",
              attempts, "next_in_ms:l", (long long)(is_failed ? 0 : next - now), LOG_END);
}

static void *delivery_main(void *arg)
{
    struct webhook *wh = arg;
    struct store_outbox_item items[WEBHOOK_BATCH];
    for (;;) {
        pthread_mutex_lock(&wh->mutex);
        int is_stop = wh->is_stop;
        pthread_mutex_unlock(&wh->mutex);
        if (is_stop)
            break;
        int n = 0;
        /* Held for as long as the batch may take (each attempt up to the timeout), so that
         * another node does not post them too. */
        int64_t hold_ms = WEBHOOK_BATCH * wh->timeout_ms + 30000;
        int rc = store_outbox_claim(wh->store, cd_wall_ms(), hold_ms, items, WEBHOOK_BATCH, &n);
        if (rc && rc != CD_EBUSY)
            log_event(LOG_ERROR, "webhook_outbox_read_failed", "error:s", cd_strerror(rc), LOG_END);
        for (int i = 0; i < n; i++) {
            pthread_mutex_lock(&wh->mutex);
            is_stop = wh->is_stop;
            pthread_mutex_unlock(&wh->mutex);
            if (!is_stop)
                deliver(wh, &items[i]);
        }
        store_outbox_clear(items, n);
        if (n == WEBHOOK_BATCH)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += WEBHOOK_IDLE_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&wh->mutex);
        if (!wh->is_stop)
            pthread_cond_timedwait(&wh->cond, &wh->mutex, &until);
        pthread_mutex_unlock(&wh->mutex);
    }
    return NULL;
}

int webhook_start(struct webhook *wh, const char *db_path, char **err)
{
    *err = NULL;
    if (!wh || !wh->n_endpoints || wh->has_thread)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        *err = strdup("libcurl could not start");
        return CD_EIO;
    }
    struct store_options so = {0};
    so.busy_timeout_ms = 2000;
    wh->store = store_open(db_path, &so, err);
    wh->curl = wh->store ? curl_easy_init() : NULL;
    if (!wh->curl) {
        if (!*err)
            *err = strdup("libcurl could not make a handle");
        store_close(wh->store);
        wh->store = NULL;
        return CD_EIO;
    }
    CURL *c = wh->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)wh->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)wh->timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    wh->is_stop = 0;
    if (pthread_create(&wh->thread, NULL, delivery_main, wh)) {
        *err = strdup("cannot start the webhook delivery thread");
        curl_easy_cleanup(wh->curl);
        wh->curl = NULL;
        store_close(wh->store);
        wh->store = NULL;
        return CD_EIO;
    }
    wh->has_thread = 1;
    log_event(LOG_INFO, "webhooks_started", "endpoints:i", wh->n_endpoints, LOG_END);
    return 0;
}

void webhook_stop(struct webhook *wh)
{
    if (!wh || !wh->has_thread)
        return;
    pthread_mutex_lock(&wh->mutex);
    wh->is_stop = 1;
    pthread_cond_signal(&wh->cond);
    pthread_mutex_unlock(&wh->mutex);
    pthread_join(wh->thread, NULL);
    wh->has_thread = 0;
    curl_easy_cleanup(wh->curl);
    wh->curl = NULL;
    store_close(wh->store);
    wh->store = NULL;
    curl_global_cleanup();
}

void webhook_counts_get(struct webhook *wh, struct webhook_counts *out)
{
    memset(out, 0, sizeof *out);
    if (!wh)
        return;
    pthread_mutex_lock(&wh->mutex);
    *out = wh->counts;
    pthread_mutex_unlock(&wh->mutex);
}
