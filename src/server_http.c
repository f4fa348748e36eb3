/* server_http: the HTTP half of the server: reading a request (method, path, query, headers,
 * a bounded body), static files from the web root (no path outside it, MIME types,
 * security headers), /healthz, /metrics (chat.c's counts pulled in first) and handing /api/
 * and /kb/ to api.c; responses are written in chunks from the WRITEABLE callback. */
#include "server_int.h"

#include "api.h"
#include "cd.h"
#include "chat.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "web_static.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- HTTP -------------------------------------------------------------- */

static const char security_headers[] =
    "x-content-type-options: nosniff\r\n"
    "referrer-policy: no-referrer\r\n"
    "x-frame-options: SAMEORIGIN\r\n"
    "content-security-policy: default-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'self'\r\n";

void server_http_txn_free(struct http_txn *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_args; i++)
        free(t->args[i]);
    free(t->args);
    free(t->authorization);
    cd_buf_free(&t->body);
    cd_buf_free(&t->response);
    free(t);
}

static void count_status(struct server *s, int status)
{
    enum metrics_counter c = status >= 500   ? METRICS_HTTP_5XX
                             : status >= 400 ? METRICS_HTTP_4XX
                             : status >= 300 ? METRICS_HTTP_3XX
                                             : METRICS_HTTP_2XX;
    metrics_add(s->metrics, c, 1);
}

/* Writes the status line and headers of a response whose body is in
 * t->response, and asks for writeable to send the body. */
static int http_respond(struct server *s, struct lws *wsi, struct http_txn *t, int status,
                        const char *content_type, const char *extra_name, const char *extra_value)
{
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = &buf[LWS_PRE], *p = start, *end = &buf[sizeof buf - 1];
    count_status(s, status);
    log_event(LOG_DEBUG, "http", "method:s", t->method, "path:s", t->path, "status:i", status,
              LOG_END);
    if (lws_add_http_common_headers(wsi, (unsigned)status, content_type, t->response.len, &p, end))
        return -1;
    static const char *const sec[][2] = {
        {"x-content-type-options:", "nosniff"},
        {"referrer-policy:", "no-referrer"},
        {"x-frame-options:", "SAMEORIGIN"},
        {"cache-control:", "no-store"},
        {"content-security-policy:", "default-src 'none'; frame-ancestors 'none'"},
    };
    for (size_t i = 0; i < sizeof sec / sizeof sec[0]; i++) {
        /* HTML pages rendered here (/kb/ID) may load the site's stylesheet. */
        const char *v = sec[i][1];
        if (i == 4 && !strncmp(content_type, "text/html", 9))
            v = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'";
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)sec[i][0],
                                        (const unsigned char *)v, (int)strlen(v), &p, end))
            return -1;
    }
    if (extra_name && lws_add_http_header_by_name(wsi, (const unsigned char *)extra_name,
                                                  (const unsigned char *)extra_value,
                                                  (int)strlen(extra_value), &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    t->is_responded = 1;
    t->n_sent = 0;
    if (t->is_head || !t->response.len) {
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_simple(struct server *s, struct lws *wsi, struct http_txn *t, int status,
                       const char *code, const char *message)
{
    cd_buf_reset(&t->response);
    if (cd_buf_printf(&t->response, "{\"error\":\"%s\",\"message\":", code) ||
        cd_json_string(&t->response, message, strlen(message), CD_JSON_REPLACE_INVALID) ||
        cd_buf_puts(&t->response, "}\n"))
        return -1;
    return http_respond(s, wsi, t, status, "application/json", NULL, NULL);
}

int server_http_writeable(struct lws *wsi, struct http_txn *t)
{
    if (!t || !t->response.len || t->n_sent >= t->response.len)
        return 0;
    unsigned char buf[LWS_PRE + HTTP_CHUNK];
    size_t n = t->response.len - t->n_sent;
    if (n > HTTP_CHUNK)
        n = HTTP_CHUNK;
    memcpy(buf + LWS_PRE, t->response.data + t->n_sent, n);
    int is_last = t->n_sent + n == t->response.len;
    if (lws_write(wsi, buf + LWS_PRE, n, is_last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
        return -1;
    t->n_sent += n;
    if (!is_last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (t->is_close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static const struct {
    const char *ext;
    const char *mime;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".md", "text/markdown; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
    {".wasm", "application/wasm"},
};

static const char *mime_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
            if (!strcasecmp(dot, mime_types[i].ext))
                return mime_types[i].mime;
    return "application/octet-stream";
}

/* Returns 1 if a decoded URL path is safe to map under the web root: starts
 * with '/', no "..", no backslash, no '%' left after decoding, no control
 * characters. */
static int path_is_clean(const char *path)
{
    if (path[0] != '/')
        return 0;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '%')
            return 0;
        if (c == '.' && p[1] == '.')
            return 0;
    }
    return 1;
}

/* Resolves a URL path to a regular file inside the web root (following the
 * site's conventions: "/" -> index.html, "/agent" -> agent.html or
 * agent/index.html). Returns 0 with the real path in out, CD_ENOTFOUND, or
 * CD_EPERM when the file resolves outside the web root (a symlink escape). */
static int static_resolve(struct server *s, const char *path, char *out, size_t cap)
{
    if (!s->web_root_real)
        return CD_ENOTFOUND;
    static const char *const suffixes[] = {"", ".html", "/index.html"};
    for (size_t i = 0; i < 3; i++) {
        char candidate[PATH_MAX + PATH_MAX_BYTES];
        const char *p = path;
        const char *suffix = suffixes[i];
        if (!strcmp(p, "/")) {
            if (i)
                break;
            suffix = "index.html";
        }
        snprintf(candidate, sizeof candidate, "%s%s%s", s->web_root_real, p, suffix);
        char real[PATH_MAX];
        if (!realpath(candidate, real))
            continue;
        size_t n_root = strlen(s->web_root_real);
        if (strncmp(real, s->web_root_real, n_root) || real[n_root] != '/')
            return CD_EPERM;
        struct stat st;
        if (stat(real, &st) || !S_ISREG(st.st_mode))
            continue;
        if (strlen(real) >= cap)
            return CD_ENOTFOUND;
        memcpy(out, real, strlen(real) + 1);
        return 0;
    }
    return CD_ENOTFOUND;
}

static int serve_static(struct server *s, struct lws *wsi, struct http_txn *t)
{
    if (strcmp(t->method, "GET") && strcmp(t->method, "HEAD"))
        return http_simple(s, wsi, t, 405, "method_not_allowed", "static files are read-only");
    if (!path_is_clean(t->path))
        return http_simple(s, wsi, t, 400, "bad_path", "the path is not allowed");
    char file[PATH_MAX];
    int rc = static_resolve(s, t->path, file, sizeof file);
    if (rc == CD_EPERM) {
        log_event(LOG_WARN, "static_escape_refused", "path:s", t->path, LOG_END);
        return http_simple(s, wsi, t, 404, "not_found", "no such file");
    }
    if (rc)
        return http_simple(s, wsi, t, 404, "not_found", "no such file");
    int status = 200;
    int n = web_static_serve(wsi, file, mime_for(file), security_headers, &status);
    count_status(s, status);
    if (n < 0)
        return -1;
    if (n > 0 && lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static int serve_healthz(struct server *s, struct lws *wsi, struct http_txn *t)
{
    cd_buf_reset(&t->response);
    /* A node whose database does not answer is unhealthy: the load balancer sends its
     * customers elsewhere (it keeps serving what it can, and recovers by itself). */
    int is_db_ok = !s->api || api_store_ok(s->api);
    const char *status = s->is_draining ? "draining" : is_db_ok ? "ok" : "database_unreachable";
    if (cd_buf_printf(&t->response,
                      "{\"status\":\"%s\",\"uptime_s\":%lld,\"connections\":%d,\"chat\":%s,"
                      "\"kb\":%s,\"database\":%s}\n",
                      status, (long long)(cd_wall_s() - s->started_s), s->n_customers + s->n_agents,
                      s->chat ? "true" : "false", api_has_kb(s->api) ? "true" : "false",
                      is_db_ok ? "true" : "false"))
        return -1;
    return http_respond(s, wsi, t, s->is_draining || !is_db_ok ? 503 : 200, "application/json",
                        NULL, NULL);
}

/* Copies chat.c's own counts into the metrics: decisions, conversations, messages, the
 * queue, waits and pickups are read from chat_metrics, never from the frames sent. */
static void pull_chat_metrics(struct server *s)
{
    if (!s->chat || !s->ops->metrics_get)
        return;
    struct chat_metrics cm;
    memset(&cm, 0, sizeof cm);
    s->ops->metrics_get(s->chat, &cm);
    struct metrics *m = s->metrics;
    metrics_counter_set(m, METRICS_DECISIONS_ANSWER, cm.n_answer);
    metrics_counter_set(m, METRICS_DECISIONS_CLARIFY, cm.n_clarify);
    metrics_counter_set(m, METRICS_DECISIONS_HANDOFF, cm.n_handoff);
    metrics_counter_set(m, METRICS_CONVERSATIONS_STARTED, cm.n_conversations);
    metrics_counter_set(m, METRICS_MESSAGES_STORED, cm.n_messages_in);
    metrics_counter_set(m, METRICS_AGENT_MESSAGES_STORED, cm.n_agent_messages);
    metrics_counter_set(m, METRICS_PICKUPS, cm.n_picked);
    metrics_counter_set(m, METRICS_PICKUPS_WITHIN_TARGET, cm.n_picked_within_target);
    metrics_counter_set(m, METRICS_KB_INDEX_READS, cm.n_kb_index_reads);
    /* Per conversation, as GET /api/stats counts: a customer who reconnects is one. */
    metrics_counter_set(m, METRICS_CONVERSATIONS_ENGAGED, cm.n_conversations_engaged);
    metrics_counter_set(m, METRICS_CONVERSATIONS_ESCALATED, cm.n_conversations_escalated);
    if (cm.n_conversations_engaged > 0)
        metrics_set(m, METRICS_DEFLECTION_RATIO,
                    1.0 -
                        (double)cm.n_conversations_escalated / (double)cm.n_conversations_engaged);
    metrics_counter_set(m, METRICS_AGENT_MESSAGES, cm.n_agent_messages_delivered);
    metrics_histogram_set(m, METRICS_WAIT_SECONDS, chat_wait_bounds_s, CHAT_WAIT_BUCKETS - 1,
                          cm.wait_buckets, cm.wait_sum_s);
    metrics_histogram_set(m, METRICS_PICKUP_SECONDS, chat_wait_bounds_s, CHAT_WAIT_BUCKETS - 1,
                          cm.pickup_buckets, cm.pickup_sum_s);
    metrics_set(m, METRICS_QUEUE_LENGTH, (double)cm.queue_length);
    metrics_set(m, METRICS_LONGEST_WAIT, (double)cm.longest_wait_s);
    metrics_set(m, METRICS_AGENTS_ONLINE, (double)cm.n_agents_online);
    metrics_set(m, METRICS_AGENTS_AVAILABLE, (double)cm.n_agents_available);
    metrics_set(m, METRICS_OOS_SHARE, cm.oos_share);
}

static int serve_metrics(struct server *s, struct lws *wsi, struct http_txn *t)
{
    pull_chat_metrics(s);
    cd_buf_reset(&t->response);
    if (metrics_render(s->metrics, &t->response) || api_render_metrics(s->api, &t->response))
        return -1;
    return http_respond(s, wsi, t, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
}

static int serve_api(struct server *s, struct lws *wsi, struct http_txn *t)
{
    if (!s->api)
        return http_simple(s, wsi, t, 503, "unavailable", "the REST service is not running");
    if (t->is_body_too_big)
        return http_simple(s, wsi, t, 413, "body_too_large", "the request body is too large");
    struct api_request req = {0};
    req.method = t->method;
    req.path = t->path;
    req.args = (const char *const *)t->args;
    req.n_args = t->n_args;
    req.authorization = t->authorization;
    req.address = t->address;
    req.body = t->body.data;
    req.n_body = t->body.len;
    /* The KB writes through its own connection to the database file: commit
     * the store's open group transaction first, or the write would wait on
     * this very thread (see store.h). */
    if (s->chat && strcmp(t->method, "GET") && strcmp(t->method, "HEAD"))
        s->ops->flush(s->chat);
    struct api_response resp = {0};
    int64_t t0 = cd_now_us();
    int rc = api_handle(s->api, &req, &resp);
    metrics_observe(s->metrics, METRICS_HTTP_SECONDS, (double)(cd_now_us() - t0) / 1e6);
    if (rc) {
        api_response_clear(&resp);
        return http_simple(s, wsi, t, 500, "internal", "the request could not be handled");
    }
    cd_buf_free(&t->response);
    t->response = resp.body;
    resp.body = (struct cd_buf){0};
    const char *extra_name = NULL, *extra_value = NULL;
    if (resp.status == 401) {
        extra_name = "www-authenticate:";
        extra_value = "Bearer realm=\"caredesk\"";
    } else if (resp.status == 405 && resp.allow) {
        extra_name = "allow:";
        extra_value = resp.allow;
    }
    rc = http_respond(s, wsi, t, resp.status,
                      resp.content_type ? resp.content_type : "application/json", extra_name,
                      extra_value);
    api_response_clear(&resp);
    return rc;
}

/* Dispatches a request whose headers (and body, if any) are complete. */
int server_http_dispatch(struct server *s, struct lws *wsi, struct http_txn *t)
{
    if (s->is_draining)
        return http_simple(s, wsi, t, 503, "draining", "the server is shutting down");
    if (!strcmp(t->path, "/healthz"))
        return serve_healthz(s, wsi, t);
    if (!strcmp(t->path, "/metrics"))
        return serve_metrics(s, wsi, t);
    if (api_owns_path(t->path))
        return serve_api(s, wsi, t);
    return serve_static(s, wsi, t);
}

static const struct {
    enum lws_token_indexes token;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},     {WSI_TOKEN_DELETE_URI, "DELETE"},
    {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

/* LWS_CALLBACK_HTTP: headers are in. Reads method, path, query and the
 * Authorization header; answers at once or waits for the body. */
int server_http_start(struct server *s, struct lws *wsi, struct session *pss, const char *uri)
{
    server_http_txn_free(pss->http);
    pss->http = calloc(1, sizeof *pss->http);
    struct http_txn *t = pss->http;
    if (!t)
        return -1;
    t->started_us = cd_now_us();
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].token) > 0) {
            snprintf(t->method, sizeof t->method, "%s", methods[i].name);
            break;
        }
    t->is_head = !strcmp(t->method, "HEAD");
    if (!uri || strlen(uri) >= sizeof t->path)
        return http_simple(s, wsi, t, 414, "uri_too_long", "the path is too long");
    snprintf(t->path, sizeof t->path, "%s", uri);
    if (!t->method[0])
        return http_simple(s, wsi, t, 405, "method_not_allowed", "unsupported method");
    char arg[2048];
    for (int i = 0; i < 32; i++) {
        int n = lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        char **args = realloc(t->args, (size_t)(t->n_args + 1) * sizeof *args);
        if (!args)
            return -1;
        t->args = args;
        if (!(t->args[t->n_args] = strdup(arg)))
            return -1;
        t->n_args++;
    }
    lws_get_peer_simple(wsi, t->address, sizeof t->address);
    int n_auth = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n_auth > 0 && n_auth < 4096) {
        t->authorization = malloc((size_t)n_auth + 1);
        if (!t->authorization ||
            lws_hdr_copy(wsi, t->authorization, n_auth + 1, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
            return -1;
    }
    int has_body =
        !strcmp(t->method, "POST") || !strcmp(t->method, "PUT") || !strcmp(t->method, "PATCH");
    /* One Content-Length, digits only: two of them (or a list) is how
     * requests get smuggled past a proxy; refuse and close. */
    int n_cl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n_cl > 0) {
        char cl[32];
        int n_first = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 0);
        int ok = n_cl == n_first && n_cl < (int)sizeof cl &&
                 lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
        for (const char *p = cl; ok && *p; p++)
            ok = *p >= '0' && *p <= '9';
        if (!ok) {
            t->is_close_after = 1;
            return http_simple(s, wsi, t, 400, "bad_content_length",
                               "exactly one Content-Length of digits is allowed");
        }
    }
    if (has_body) {
        char cl[32];
        long long n_body = -1;
        if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
            n_body = strtoll(cl, NULL, 10);
        if (n_body > s->cfg->max_body_bytes) {
            t->is_body_too_big = 1;
            /* A body up to 16 times the cap is read and dropped, so the
             * client, still sending, gets its 413; a larger one is answered
             * at once and the connection closed. */
            if (n_body / 16 > s->cfg->max_body_bytes) {
                t->is_close_after = 1;
                return http_simple(s, wsi, t, 413, "body_too_large",
                                   "the request body is too large");
            }
        }
        if (n_body > 0 || lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
            return 0; /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
    }
    return server_http_dispatch(s, wsi, t);
}

int server_http_body(struct server *s, struct http_txn *t, const char *in, size_t len)
{
    if (!t || t->is_body_too_big || t->is_responded)
        return 0;
    if (t->body.len + len > (size_t)s->cfg->max_body_bytes) {
        t->is_body_too_big = 1;
        cd_buf_free(&t->body);
        return 0;
    }
    return cd_buf_append(&t->body, in, len) ? -1 : 0;
}
