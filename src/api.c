/* api: REST routes (/api/...) and article pages (/kb/ID); see api.h.
 *
 * The routes, the methods each takes and who may call it are one table, routes[] at the end
 * of this file: api_handle() answers 404, 405 (with Allow) and 401/403 from it before a
 * handler runs. What each route reads and answers is said above its handler; docs/web.md has
 * the shapes the pages read. Every author and admin change is written to the audit log.
 * GET /api/openapi.json (api_openapi.c) and /api/webhooks/... (api_webhooks.c) are handled
 * by their own modules. */
#include "api.h"
#include "api_route.h"
#include "api_openapi.h"
#include "api_webhooks.h"
#include "webhook.h"

#include "auth.h"
#include "chat.h"
#include "intents_check.h"
#include "kb.h"
#include "triage.h"
#include "log.h"
#include "markdown.h"
#include "metrics.h"
#include "queue.h"
#include "store.h"
#include "text.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEARCH_MAX_HITS 10
#define QUERY_MAX_BYTES 1024

struct api {
    struct api_deps deps;
    struct auth_throttle *throttle;
};

struct api *api_new(const struct api_deps *deps)
{
    struct api *api = calloc(1, sizeof *api);
    if (!api)
        return NULL;
    if (deps)
        api->deps = *deps;
    if (api->deps.pickup_target_s <= 0)
        api->deps.pickup_target_s = QUEUE_DEFAULT_PICKUP_TARGET_S;
    api->throttle = auth_throttle_new(0, 0);
    if (!api->throttle) {
        free(api);
        return NULL;
    }
    return api;
}

void api_free(struct api *api)
{
    if (!api)
        return;
    auth_throttle_free(api->throttle);
    free(api);
}

int api_store_ok(const struct api *api)
{
    return api && api->deps.store && store_ping(api->deps.store) == 0;
}

int api_has_kb(const struct api *api)
{
    return api && api->deps.kb;
}

int api_owns_path(const char *path)
{
    return !strncmp(path, "/api/", 5) || !strcmp(path, "/api") || !strncmp(path, "/kb/", 4);
}

void api_response_clear(struct api_response *resp)
{
    if (!resp)
        return;
    cd_buf_free(&resp->body);
}

/* ---- responses ---------------------------------------------------------- */

static int respond_error(struct api_response *resp, int status, const char *code,
                         const char *message)
{
    resp->status = status;
    resp->content_type = "application/json";
    cd_buf_reset(&resp->body);
    int rc = cd_buf_printf(&resp->body, "{\"error\":\"%s\",\"message\":", code);
    if (!rc)
        rc = cd_json_string(&resp->body, message, strlen(message), CD_JSON_REPLACE_INVALID);
    if (!rc)
        rc = cd_buf_puts(&resp->body, "}\n");
    return rc;
}

/* Sends a jansson value (taking the reference). */
static int respond_json(struct api_response *resp, int status, json_t *value)
{
    if (!value)
        return respond_error(resp, 500, "internal", "out of memory");
    char *text = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    if (!text)
        return respond_error(resp, 500, "internal", "out of memory");
    resp->status = status;
    resp->content_type = "application/json";
    cd_buf_reset(&resp->body);
    int rc = cd_buf_puts(&resp->body, text);
    if (!rc)
        rc = cd_buf_puts(&resp->body, "\n");
    free(text);
    return rc;
}

/* ---- request helpers ----------------------------------------------------- */

/* The value of query argument name, or NULL. */
static const char *arg(const struct api_request *req, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < req->n_args; i++)
        if (!strncmp(req->args[i], name, n) && req->args[i][n] == '=')
            return req->args[i] + n + 1;
    return NULL;
}

/* Checks the Bearer token and that the account has one of roles. Returns 0
 * with *user filled, or fills resp (401, 403, 429, 503) and returns 1. */
static int require_role(struct api *api, const struct api_request *req, int roles,
                        struct auth_user *user, struct api_response *resp)
{
    if (!api->deps.store) {
        respond_error(resp, 503, "unavailable", "accounts are not available");
        return 1;
    }
    const char *h = req->authorization;
    if (!h || strncasecmp(h, "Bearer ", 7)) {
        respond_error(resp, 401, "missing_token", "send Authorization: Bearer TOKEN");
        return 1;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    size_t n = strlen(token);
    while (n && token[n - 1] == ' ')
        n--;
    int rc =
        auth_check_user(api->deps.store, api->throttle, req->address, token, n, cd_wall_s(), user);
    if (rc == CD_EBUSY) {
        respond_error(resp, 429, "throttled", "too many bad tokens; try again later");
        return 1;
    }
    if (rc == CD_EPERM || rc == CD_EINVAL || rc == CD_ENOTFOUND) {
        respond_error(resp, 401, "bad_token", "the token is not valid");
        return 1;
    }
    if (rc) {
        respond_error(resp, 500, "internal", cd_strerror(rc));
        return 1;
    }
    if (!(user->role & roles)) {
        char msg[128];
        snprintf(msg, sizeof msg, "the %s role may not do this", auth_role_name(user->role));
        respond_error(resp, 403, "forbidden", msg);
        return 1;
    }
    return 0;
}

void api_audit(struct api *api, const char *kind, int64_t conversation,
               const struct auth_user *user, const char *detail)
{
    int rc = store_event_add(api->deps.store, kind, conversation, user->id, detail);
    if (rc)
        log_event(LOG_ERROR, "audit_failed", "kind:s", kind, "error:s", cd_strerror(rc), LOG_END);
}

/* An audit event of kind about one article. */
static void audit(struct api *api, const char *kind, const struct auth_user *user,
                  const char *article_id)
{
    json_t *detail = json_pack("{s:s}", "article", article_id);
    char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    api_audit(api, kind, 0, user, text);
    free(text);
    json_decref(detail);
}

int api_limit_arg(const struct api_request *req, int max, int *limit, struct api_response *resp)
{
    const char *s = arg(req, "limit");
    if (!s)
        return 0;
    if (cd_parse_int(s, 1, max, limit)) {
        char msg[64];
        snprintf(msg, sizeof msg, "'limit' must be from 1 to %d", max);
        respond_error(resp, 400, "bad_limit", msg);
        return 1;
    }
    return 0;
}

int api_choice_arg(const struct api_request *req, const char *name, const char *const *names,
                   int n_names, const char *why, int *out, struct api_response *resp)
{
    const char *s = arg(req, name);
    if (!s || !*s)
        return 0;
    for (int i = 0; i < n_names; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    char code[64];
    snprintf(code, sizeof code, "bad_%s", name);
    respond_error(resp, 400, code, why);
    return 1;
}

void *api_list_alloc(const struct api_request *req, int max, size_t size, int *limit,
                     struct api_response *resp)
{
    if (api_limit_arg(req, max, limit, resp))
        return NULL;
    void *items = calloc((size_t)*limit, size);
    if (!items)
        respond_error(resp, 500, "internal", "out of memory");
    return items;
}

int api_parse_id(const char *s, int64_t *out)
{
    char *end;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

/* ---- search -------------------------------------------------------------- */

static void article_url(const struct api *api, const char *id, char *out, size_t cap)
{
    int n =
        snprintf(out, cap, "%.*s/kb/%s", 400, api->deps.public_url ? api->deps.public_url : "", id);
    if (n < 0 || (size_t)n >= cap)
        snprintf(out, cap, "/kb/%s", id);
}

/* 1, with the 400 answer in resp, when the query text q is not UTF-8 or is longer than
 * QUERY_MAX_BYTES; else 0. */
static int bad_q(const char *q, struct api_response *resp)
{
    if (strlen(q) <= QUERY_MAX_BYTES && cd_utf8_valid(q, strlen(q)))
        return 0;
    respond_error(resp, 400, "bad_q", "'q' must be UTF-8 text of at most 1024 bytes");
    return 1;
}

/* The query argument "q", or NULL with the 400 answer in resp when it is missing, empty, not
 * UTF-8 or longer than QUERY_MAX_BYTES, or when "lang" is there and not a language tag
 * (text_lang_code()). *lang gets "lang", or NULL when it is absent or empty. */
static const char *query_args(const struct api_request *req, struct api_response *resp,
                              const char **lang)
{
    const char *q = arg(req, "q");
    char code[4];
    *lang = arg(req, "lang");
    if (*lang && !**lang)
        *lang = NULL;
    if (!q || !*q)
        respond_error(resp, 400, "missing_q", "the query parameter 'q' is required");
    else if (bad_q(q, resp))
        return NULL;
    else if (*lang && !text_lang_code(*lang, code))
        respond_error(resp, 400, "bad_lang", "'lang' must be a language tag like en or pt-BR");
    else
        return q;
    return NULL;
}

int api_body_object(const struct api_request *req, const char *hint, json_t **out,
                    struct api_response *resp)
{
    json_error_t jerr;
    char msg[300];
    *out = NULL;
    if (!req->body || !req->n_body) {
        snprintf(msg, sizeof msg, "send %s", hint);
        respond_error(resp, 400, "missing_body", msg);
        return 1;
    }
    json_t *root =
        json_loadb(req->body, req->n_body, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (json_is_object(root)) {
        *out = root;
        return 0;
    }
    if (root)
        snprintf(msg, sizeof msg, "the body must be a JSON object (got %s)", cd_json_kind(root));
    else
        snprintf(msg, sizeof msg, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
    json_decref(root);
    respond_error(resp, 400, "bad_json", msg);
    return 1;
}

static int route_search(struct api *api, const struct api_request *req, const char *rest,
                        const struct auth_user *user, struct api_response *resp)
{
    const char *lang;
    const char *q = query_args(req, resp, &lang);
    if (!q)
        return 0;
    int limit = 5;
    if (api_limit_arg(req, SEARCH_MAX_HITS, &limit, resp))
        return 0;
    if (!api->deps.kb)
        return respond_error(resp, 503, "unavailable", "the knowledge base is not open");
    struct kb_hit hits[SEARCH_MAX_HITS];
    int n_hits = 0;
    int rc = kb_search(api->deps.kb, q, lang, hits, limit, &n_hits);
    if (rc)
        return respond_error(resp, 500, "internal", cd_strerror(rc));
    json_t *list = json_array();
    for (int i = 0; i < n_hits && list; i++) {
        char url[KB_ID_MAX + 512];
        article_url(api, hits[i].id, url, sizeof url);
        json_array_append_new(list,
                              json_pack("{s:s,s:s?,s:s?,s:s,s:f,s:s}", "id", hits[i].id, "title",
                                        hits[i].title, "passage", hits[i].passage, "lang",
                                        hits[i].lang, "score", hits[i].score, "url", url));
    }
    kb_hits_clear(hits, n_hits);
    return respond_json(resp, 200, json_pack("{s:s,s:o?}", "query", q, "hits", list));
}

/* ---- articles ------------------------------------------------------------ */

static json_t *article_json(const struct api *api, const struct kb_article *a)
{
    json_t *tags = json_array(), *questions = json_array();
    for (int i = 0; i < a->n_tags && tags; i++)
        json_array_append_new(tags, json_string(a->tags[i]));
    for (int i = 0; i < a->n_questions && questions; i++)
        json_array_append_new(questions, json_string(a->questions[i]));
    char url[KB_ID_MAX + 512];
    article_url(api, a->id, url, sizeof url);
    return json_pack("{s:s,s:s?,s:s?,s:s?,s:o?,s:o?,s:b,s:i,s:I,s:s}", "id", a->id, "title",
                     a->title, "lang", a->lang, "body", a->body, "tags", tags, "questions",
                     questions, "published", a->is_published, "revision", a->revision, "updated_s",
                     (json_int_t)a->updated_s, "url", url);
}

/* Reads a JSON array of strings into a malloc'd vector of borrowed
 * pointers. Returns 0, or -1 when it is not an array of strings. */
static int string_list(json_t *v, const char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > 256)
        return -1;
    size_t count = json_array_size(v);
    if (!count)
        return 0;
    const char **list = calloc(count, sizeof *list);
    if (!list)
        return -1;
    for (size_t i = 0; i < count; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s)) {
            free(list);
            return -1;
        }
        list[i] = json_string_value(s);
    }
    *out = list;
    *n = (int)count;
    return 0;
}

/* Parses an article body. On a problem fills resp with 400 and returns 1. */
static int parse_article(const struct api_request *req, const char *path_id, json_t **root_out,
                         struct kb_article *a, struct api_response *resp)
{
    *root_out = NULL;
    json_t *root;
    if (api_body_object(req, "the article as a JSON object", &root, resp))
        return 1;
    *root_out = root;
    static const char *const string_fields[] = {"id", "title", "body", "lang"};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(root, string_fields[i]);
        if (v && !json_is_string(v)) {
            char msg[96];
            snprintf(msg, sizeof msg, "'%s' must be a string (got %s)", string_fields[i],
                     cd_json_kind(v));
            respond_error(resp, 400, "bad_field", msg);
            return 1;
        }
    }
    const char *id = json_string_value(json_object_get(root, "id"));
    if (path_id && id && strcmp(id, path_id)) {
        respond_error(resp, 400, "bad_field", "'id' in the body differs from the id in the path");
        return 1;
    }
    if (!id)
        id = path_id;
    if (!id) {
        respond_error(resp, 400, "missing_field", "'id' is required");
        return 1;
    }
    if (!kb_id_valid(id)) {
        respond_error(
            resp, 400, "bad_field",
            "'id' must be 1-127 characters of a-z, 0-9, '-', '_' or '.', not starting with '.'");
        return 1;
    }
    const char *title = json_string_value(json_object_get(root, "title"));
    const char *body = json_string_value(json_object_get(root, "body"));
    if (!title || !*title) {
        respond_error(resp, 400, "missing_field", "'title' is required");
        return 1;
    }
    if (!body || !*body) {
        respond_error(resp, 400, "missing_field", "'body' is required");
        return 1;
    }
    if (!cd_utf8_valid(title, strlen(title)) || !cd_utf8_valid(body, strlen(body))) {
        respond_error(resp, 400, "bad_field", "text must be valid UTF-8");
        return 1;
    }
    json_t *published = json_object_get(root, "published");
    if (published && !json_is_boolean(published)) {
        respond_error(resp, 400, "bad_field", "'published' must be true or false");
        return 1;
    }
    json_t *status = json_object_get(root, "status");
    const char *status_s = json_string_value(status);
    if (status && (!status_s || (strcmp(status_s, "published") && strcmp(status_s, "draft")))) {
        respond_error(resp, 400, "bad_field", "'status' must be \"published\" or \"draft\"");
        return 1;
    }
    const char **tags, **questions;
    int n_tags, n_questions;
    if (string_list(json_object_get(root, "tags"), &tags, &n_tags)) {
        respond_error(resp, 400, "bad_field", "'tags' must be an array of strings");
        return 1;
    }
    if (string_list(json_object_get(root, "questions"), &questions, &n_questions)) {
        free(tags);
        respond_error(resp, 400, "bad_field", "'questions' must be an array of strings");
        return 1;
    }
    memset(a, 0, sizeof *a);
    a->id = (char *)id;
    a->title = (char *)title;
    a->body = (char *)body;
    a->lang = (char *)json_string_value(json_object_get(root, "lang"));
    a->tags = (char **)tags;
    a->n_tags = n_tags;
    a->questions = (char **)questions;
    a->n_questions = n_questions;
    a->is_published = status_s    ? !strcmp(status_s, "published")
                      : published ? json_is_true(published)
                                  : 1;
    return 0;
}

static int route_article_write(struct api *api, const struct api_request *req, const char *path_id,
                               const struct auth_user *user, struct api_response *resp)
{
    json_t *root;
    struct kb_article a;
    if (parse_article(req, path_id, &root, &a, resp)) {
        json_decref(root);
        return 0;
    }
    int is_create = !strcmp(req->method, "POST");
    struct kb_article existing = {0};
    int rc = kb_get(api->deps.kb, a.id, &existing);
    int was_published = rc == 0 && existing.is_published;
    kb_article_clear(&existing);
    int existed = rc == 0;
    if (is_create && existed) {
        rc = respond_error(resp, 409, "exists", "an article with this id exists; use PUT");
        goto done;
    }
    char why[200] = "";
    rc = webhook_kb_put(api->deps.webhook, api->deps.kb, api->deps.store, &a, was_published, why,
                        sizeof why);
    if (rc == CD_EINVAL) {
        rc = respond_error(resp, 400, "bad_article", why[0] ? why : "the article was refused");
        goto done;
    }
    if (rc) {
        rc = respond_error(resp, 500, "internal", cd_strerror(rc));
        goto done;
    }
    audit(api, existed ? "article_update" : "article_create", user, a.id);
    struct kb_article saved = {0};
    rc = kb_get(api->deps.kb, a.id, &saved);
    if (rc)
        rc = respond_error(resp, 500, "internal", cd_strerror(rc));
    else
        rc = respond_json(resp, existed ? 200 : 201, article_json(api, &saved));
    kb_article_clear(&saved);
done:
    free(a.tags);
    free(a.questions);
    json_decref(root);
    return rc;
}

#define LIST_MAX_ITEMS 1000

/* GET /api/articles?q=&status=&limit=: every article, drafts included (kb_list()). */
static int list_articles(struct api *api, const struct api_request *req, struct api_response *resp)
{
    const char *q = arg(req, "q");
    if (q && bad_q(q, resp))
        return 0;
    static const char *const status_names[] = {"draft", "published"}; /* is_published */
    int status = -1, limit = LIST_MAX_ITEMS;
    if (api_choice_arg(req, "status", status_names,
                       (int)(sizeof status_names / sizeof *status_names),
                       "'status' must be published or draft", &status, resp))
        return 0;
    struct kb_list_item *items = api_list_alloc(req, LIST_MAX_ITEMS, sizeof *items, &limit, resp);
    if (!items)
        return 0;
    int n = 0;
    int rc = kb_list(api->deps.kb, q, status, items, limit, &n);
    if (rc) {
        free(items);
        return respond_error(resp, rc == CD_EINVAL ? 400 : 500,
                             rc == CD_EINVAL ? "bad_q" : "internal", cd_strerror(rc));
    }
    json_t *list = json_array();
    for (int i = 0; i < n && list; i++) {
        const struct kb_list_item *it = &items[i];
        json_t *tags = json_array();
        for (int t = 0; t < it->n_tags && tags; t++)
            json_array_append_new(tags, json_string(it->tags[t]));
        char url[KB_ID_MAX + 512];
        article_url(api, it->id, url, sizeof url);
        json_array_append_new(list,
                              json_pack("{s:s,s:s?,s:s,s:o?,s:s,s:b,s:i,s:I,s:s}", "id", it->id,
                                        "title", it->title, "lang", it->lang, "tags", tags,
                                        "status", it->is_published ? "published" : "draft",
                                        "published", it->is_published, "revision", it->revision,
                                        "updated_s", (json_int_t)it->updated_s, "url", url));
    }
    kb_list_clear(items, n);
    free(items);
    return respond_json(resp, 200,
                        json_pack("{s:o?,s:b}", "articles", list, "truncated", n == limit));
}

#define REVISIONS_MAX 50

static json_t *revision_json(const struct kb_article *a, int revision, int is_current)
{
    return json_pack("{s:i,s:s?,s:s?,s:s?,s:s,s:b,s:I,s:b}", "revision", revision, "title",
                     a->title, "lang", a->lang, "body", a->body, "status",
                     a->is_published ? "published" : "draft", "published", a->is_published,
                     "updated_s", (json_int_t)a->updated_s, "current", is_current);
}

static int revision_error(struct api_response *resp, int rc, const char *what)
{
    if (rc == CD_ENOTFOUND)
        return respond_error(resp, 404, "not_found", what);
    return respond_error(resp, 500, "internal", cd_strerror(rc));
}

/* GET /api/articles/{id}/revisions: the current version (if the article exists) and up to
 * REVISIONS_MAX earlier ones, newest first. */
static int list_revisions(struct api *api, const char *id, struct api_response *resp)
{
    if (!kb_id_valid(id))
        return respond_error(resp, 400, "bad_id", "not an article id");
    int n = kb_revision_count(api->deps.kb, id);
    if (n < 0)
        return revision_error(resp, n, "no such article");
    struct kb_article cur = {0};
    int rc = kb_get(api->deps.kb, id, &cur);
    if (rc && rc != CD_ENOTFOUND)
        return revision_error(resp, rc, "no such article");
    int has_current = rc == 0;
    if (!has_current && n == 0)
        return respond_error(resp, 404, "not_found", "no such article");
    json_t *list = json_array();
    if (has_current && list)
        json_array_append_new(list, revision_json(&cur, cur.revision, 1));
    int newest = has_current ? cur.revision - 1 : n;
    int shown = 0;
    for (int r = newest; r >= 1 && shown < REVISIONS_MAX && list; r--) {
        struct kb_article a = {0};
        rc = kb_get_revision(api->deps.kb, id, r, &a);
        if (rc == 0) {
            json_array_append_new(list, revision_json(&a, r, 0));
            shown++;
        }
        kb_article_clear(&a);
        if (rc && rc != CD_ENOTFOUND) {
            kb_article_clear(&cur);
            json_decref(list);
            return revision_error(resp, rc, "no such revision");
        }
    }
    kb_article_clear(&cur);
    return respond_json(resp, 200, json_pack("{s:s,s:o?}", "id", id, "revisions", list));
}

/* GET /api/articles/{id}/revisions/{n}: one version (the current one too). */
static int get_revision(struct api *api, const char *id, const char *n_s, struct api_response *resp)
{
    if (!kb_id_valid(id))
        return respond_error(resp, 400, "bad_id", "not an article id");
    char *end;
    long r = strtol(n_s, &end, 10);
    if (!*n_s || *end || r < 1 || r > 1000000000)
        return respond_error(resp, 400, "bad_revision", "revisions are positive integers");
    struct kb_article a = {0};
    int rc = kb_get(api->deps.kb, id, &a);
    if (rc && rc != CD_ENOTFOUND)
        return revision_error(resp, rc, "no such article");
    int is_current = rc == 0 && a.revision == (int)r;
    if (!is_current) {
        kb_article_clear(&a);
        rc = kb_get_revision(api->deps.kb, id, (int)r, &a);
        if (rc) {
            kb_article_clear(&a);
            return revision_error(resp, rc, "no such revision");
        }
    }
    json_t *o = revision_json(&a, (int)r, is_current);
    if (o)
        json_object_set_new(o, "id", json_string(id));
    kb_article_clear(&a);
    return respond_json(resp, 200, o);
}

static int route_articles(struct api *api, const struct api_request *req, const char *id,
                          const struct auth_user *user, struct api_response *resp)
{
    int is_get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    int is_delete = !strcmp(req->method, "DELETE");
    if (!api->deps.kb)
        return respond_error(resp, 503, "unavailable", "the knowledge base is not open");
    if (!id && is_get)
        return list_articles(api, req, resp);
    if (id && strchr(id, '/')) {
        const char *slash = strchr(id, '/');
        size_t n_base = (size_t)(slash - id);
        if (n_base < KB_ID_MAX && !strncmp(slash, "/revisions", 10) &&
            (slash[10] == '\0' || slash[10] == '/')) {
            if (!is_get) {
                resp->allow = "GET";
                return respond_error(resp, 405, "method_not_allowed", "use GET");
            }
            char base[KB_ID_MAX];
            snprintf(base, sizeof base, "%.*s", (int)n_base, id);
            if (slash[10] == '\0')
                return list_revisions(api, base, resp);
            if (!strchr(slash + 11, '/'))
                return get_revision(api, base, slash + 11, resp);
        }
        return respond_error(resp, 404, "not_found", "no such route");
    }
    if (id && !kb_id_valid(id))
        return respond_error(resp, 400, "bad_id",
                             "article ids are 1-127 characters of a-z, 0-9, '-', '_' or '.'");
    if (is_get) {
        struct kb_article a = {0};
        int rc = kb_get(api->deps.kb, id, &a);
        if (rc == CD_ENOTFOUND)
            rc = respond_error(resp, 404, "not_found", "no such article");
        else if (rc)
            rc = respond_error(resp, 500, "internal", cd_strerror(rc));
        else
            rc = respond_json(resp, 200, article_json(api, &a));
        kb_article_clear(&a);
        return rc;
    }
    if (is_delete) {
        int rc = kb_delete(api->deps.kb, id);
        if (rc == CD_ENOTFOUND)
            return respond_error(resp, 404, "not_found", "no such article");
        if (rc)
            return respond_error(resp, 500, "internal", cd_strerror(rc));
        audit(api, "article_delete", user, id);
        return respond_json(resp, 200, json_pack("{s:s}", "deleted", id));
    }
    return route_article_write(api, req, id, user, resp);
}

/* ---- conversations and stats --------------------------------------------- */

/* The JSON value a module wrote into out, for a route to add fields to; out is freed either
 * way. When rc (the writer's result) is not 0, or out does not parse, returns NULL with the
 * 500 answer in resp (saying cd_strerror(rc), or what could not be read). */
static json_t *take_json(struct cd_buf *out, int rc, const char *what, struct api_response *resp)
{
    json_t *o = rc ? NULL : json_loadb(out->data, out->len, 0, NULL);
    cd_buf_free(out);
    if (!o)
        respond_error(resp, 500, "internal", rc ? cd_strerror(rc) : what);
    return o;
}

static int route_conversation(struct api *api, const struct api_request *req, const char *id_s,
                              const struct auth_user *user, struct api_response *resp)
{
    int64_t id;
    if (api_parse_id(id_s, &id))
        return respond_error(resp, 400, "bad_id", "conversation ids are positive integers");
    struct cd_buf out = {0};
    int rc = store_export_conversation(api->deps.store, id, &out);
    if (rc == 0) {
        /* Reading a customer's transcript is an audited action. */
        api_audit(api, "conversation_read", id, user, NULL);
    }
    if (rc == CD_ENOTFOUND) {
        cd_buf_free(&out);
        return respond_error(resp, 404, "not_found", "no such conversation");
    }
    /* The pages read "id" beside the store's "conversation". */
    json_t *o = take_json(&out, rc, "the transcript could not be read", resp);
    if (!o)
        return 0;
    json_object_set_new(o, "id", json_integer(id));
    return respond_json(resp, 200, o);
}

static json_t *counts_json(const struct store_count *c, int n)
{
    json_t *list = json_array();
    for (int i = 0; i < n && list; i++)
        json_array_append_new(
            list, json_pack("{s:s,s:I}", "name", c[i].name, "count", (json_int_t)c[i].n));
    return list;
}

/* Adds report.h's figures (fcr, aht_s, aht, sla, nps, qa_score ...) to a
 * /api/stats object; on a failure they are left out and it is logged. */
static void report_stats_add(struct api *api, int64_t since, int64_t until, json_t *o)
{
    struct report r;
    int rc = report_compute(api->deps.store, &api->deps.report, since, until, cd_wall_s(), &r);
    json_t *figures = rc ? NULL : report_json(&r);
    report_clear(&r);
    if (!figures) {
        log_event(LOG_ERROR, "report_failed", "error:s", cd_strerror(rc ? rc : CD_ENOMEM), LOG_END);
        return;
    }
    json_object_update(o, figures);
    json_decref(figures);
}

/* This process's webhook deliveries (webhook_counts_get()), when webhooks are set. */
static int render_webhook_metrics(struct webhook *wh, struct cd_buf *out)
{
    if (!wh)
        return 0;
    struct webhook_counts n;
    webhook_counts_get(wh, &n);
    return cd_buf_printf(
        out,
        "# HELP caredesk_webhook_attempts_total Webhook delivery attempts (HTTP requests) by "
        "this process.\n"
        "# TYPE caredesk_webhook_attempts_total counter\n"
        "caredesk_webhook_attempts_total %lld\n"
        "# HELP caredesk_webhook_deliveries_total What became of this process's webhook "
        "deliveries: delivered, retried (an attempt failed, sent again later), failed (given "
        "up: past webhook-max-age, or the endpoint is gone).\n"
        "# TYPE caredesk_webhook_deliveries_total counter\n"
        "caredesk_webhook_deliveries_total{result=\"delivered\"} %lld\n"
        "caredesk_webhook_deliveries_total{result=\"retried\"} %lld\n"
        "caredesk_webhook_deliveries_total{result=\"failed\"} %lld\n",
        (long long)n.attempts, (long long)n.delivered, (long long)n.retries, (long long)n.failed);
}

int api_render_metrics(struct api *api, struct cd_buf *out)
{
    if (!api)
        return 0;
    int rc = render_webhook_metrics(api->deps.webhook, out);
    if (rc || !api->deps.store)
        return rc;
    return report_render_metrics(api->deps.store, &api->deps.report, cd_wall_s(), out);
}

static int route_stats(struct api *api, const struct api_request *req, const char *rest,
                       const struct auth_user *user, struct api_response *resp)
{
    int64_t now = cd_wall_s();
    /* Default window: since local midnight. */
    time_t t = (time_t)now;
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    int64_t since = (int64_t)mktime(&tm), until = now + 1;
    const char *since_s = arg(req, "since"), *until_s = arg(req, "until");
    if ((since_s && api_parse_id(since_s, &since)) || (until_s && api_parse_id(until_s, &until)) ||
        since >= until)
        return respond_error(resp, 400, "bad_range",
                             "'since' and 'until' are epoch seconds with since < until");
    struct store_stats st;
    memset(&st, 0, sizeof st);
    int rc = store_stats(api->deps.store, since, until, api->deps.pickup_target_s, &st);
    if (rc)
        return respond_error(resp, 500, "internal", cd_strerror(rc));
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "since", json_integer(st.since_s));
        json_object_set_new(o, "until", json_integer(st.until_s));
        json_object_set_new(o, "conversations", json_integer(st.n_conversations));
        json_object_set_new(o, "bot_resolved", json_integer(st.n_bot_resolved));
        json_object_set_new(o, "handoffs", json_integer(st.n_handoffs));
        json_object_set_new(o, "picked_up", json_integer(st.n_picked));
        json_object_set_new(o, "picked_within_target", json_integer(st.n_within_target));
        json_object_set_new(o, "ratings", json_integer(st.n_ratings));
        json_object_set_new(o, "deflection_rate", json_real(st.deflection_rate));
        json_object_set_new(o, "escalation_rate", json_real(st.escalation_rate));
        json_object_set_new(o, "pickup_within_target", json_real(st.pickup_within_target));
        json_object_set_new(o, "pickup_target_s", json_integer(api->deps.pickup_target_s));
        json_object_set_new(o, "median_wait_s", json_real(st.median_wait_s));
        json_object_set_new(o, "csat", json_real(st.csat));
        json_object_set_new(o, "csat_satisfied", json_real(st.csat_satisfied));
        json_object_set_new(o, "handoffs_by_queue", counts_json(st.by_queue, st.n_by_queue));
        json_object_set_new(o, "top_drivers", counts_json(st.drivers, st.n_drivers));
        json_object_set_new(o, "unanswered", counts_json(st.unanswered, st.n_unanswered));
        report_stats_add(api, st.since_s, st.until_s, o);
        /* The names are docs/web.md's table (tests/integration/api.test.mjs reads it). */
        struct chat_metrics cm;
        memset(&cm, 0, sizeof cm);
        if (api->deps.chat)
            chat_metrics_get(api->deps.chat, &cm);
        json_object_set_new(o, "queue_length", json_integer(cm.queue_length));
        if (api->deps.chat) {
            json_object_set_new(
                o, "live",
                json_pack(
                    "{s:I,s:I,s:i,s:I,s:I,s:o,s:b,s:i}", "waiting", (json_int_t)cm.queue_length,
                    "longest_wait_s", (json_int_t)cm.longest_wait_s, "pickup_target_s",
                    api->deps.pickup_target_s, "agents_available",
                    (json_int_t)cm.n_agents_available, "agents_busy",
                    (json_int_t)(cm.n_agents_online - cm.n_agents_available), "out_of_scope_share",
                    cm.is_oos_share_kept ? json_real(cm.oos_share) : json_null(),
                    "out_of_scope_measured", cm.is_oos_share_measured, "out_of_scope_questions",
                    cm.n_oos_share_questions));
        }
    }
    return respond_json(resp, 200, o);
}

/* ---- article pages ------------------------------------------------------- */

static int route_kb_page(struct api *api, const struct api_request *req, const char *id,
                         const struct auth_user *user, struct api_response *resp)
{
    if (!api->deps.kb)
        return respond_error(resp, 503, "unavailable", "the knowledge base is not open");
    struct kb_article a = {0};
    int rc = kb_id_valid(id) ? kb_get(api->deps.kb, id, &a) : CD_ENOTFOUND;
    if (rc == 0 && !a.is_published)
        rc = CD_ENOTFOUND;
    if (rc) {
        kb_article_clear(&a);
        resp->status = rc == CD_ENOTFOUND ? 404 : 500;
        resp->content_type = "text/html; charset=utf-8";
        cd_buf_reset(&resp->body);
        return cd_buf_puts(&resp->body, rc == CD_ENOTFOUND
                                            ? "<!doctype html><title>Not found</title>"
                                              "<h1>No such article</h1>\n"
                                            : "<!doctype html><title>Error</title>"
                                              "<h1>Something went wrong</h1>\n");
    }
    struct cd_buf *b = &resp->body;
    cd_buf_reset(b);
    rc = cd_buf_puts(b, "<!doctype html>\n<html lang=\"");
    if (!rc)
        rc = cd_html_escape(b, a.lang ? a.lang : "en", strlen(a.lang ? a.lang : "en"));
    if (!rc)
        rc = cd_buf_puts(b, "\">\n<head>\n<meta charset=\"utf-8\">\n"
                            "<meta name=\"viewport\" content=\"width=device-width, "
                            "initial-scale=1\">\n<title>");
    if (!rc)
        rc = cd_html_escape(b, a.title ? a.title : "", strlen(a.title ? a.title : ""));
    if (!rc)
        rc = cd_buf_puts(b, "</title>\n<style>body{font-family:system-ui,sans-serif;"
                            "max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5;"
                            "color:#1a1a1a}code{background:#f2f2f2;padding:0 .2em}</style>\n"
                            "</head>\n<body>\n<main>\n<article>\n<h1>");
    if (!rc)
        rc = cd_html_escape(b, a.title ? a.title : "", strlen(a.title ? a.title : ""));
    if (!rc)
        rc = cd_buf_puts(b, "</h1>\n");
    if (!rc)
        rc = markdown_to_html(b, a.body ? a.body : "");
    if (!rc)
        rc = cd_buf_puts(b, "</article>\n</main>\n</body>\n</html>\n");
    kb_article_clear(&a);
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    return rc;
}

/* ---- me, ask, learn, queues --------------------------------------------- */

static int route_me(struct api *api, const struct api_request *req, const char *rest,
                    const struct auth_user *user, struct api_response *resp)
{
    return respond_json(resp, 200,
                        json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)user->id, "name",
                                  user->name, "role", auth_role_name(user->role), "skills",
                                  user->skills));
}

static int route_ask(struct api *api, const struct api_request *req, const char *rest,
                     const struct auth_user *user, struct api_response *resp)
{
    const char *lang;
    const char *q = query_args(req, resp, &lang);
    if (!q)
        return 0;
    if (!api->deps.triage)
        return respond_error(resp, 503, "unavailable", "the triage engine is not running");
    struct triage_decision d;
    memset(&d, 0, sizeof d);
    int rc = triage_decide(api->deps.triage, q, strlen(q), lang, NULL, &d);
    struct cd_buf out = {0};
    if (!rc)
        rc = triage_decision_to_json(&d, &out);
    triage_decision_clear(&d);
    /* The pages read "text" and "reason" beside triage's own fields. */
    json_t *o = take_json(&out, rc, "the decision could not be encoded", resp);
    if (!o)
        return 0;
    json_t *answer = json_object_get(o, "answer");
    if (answer)
        json_object_set(o, "text", answer);
    json_t *reason = json_object_get(json_object_get(o, "evidence"), "reason");
    if (reason)
        json_object_set(o, "reason", reason);
    return respond_json(resp, 200, o);
}

static int route_learn(struct api *api, const struct api_request *req, const char *rest,
                       const struct auth_user *user, struct api_response *resp)
{
    json_t *root;
    if (api_body_object(req, "{\"question\", \"article\"}", &root, resp))
        return 0;
    json_t *qv = json_object_get(root, "question"), *av = json_object_get(root, "article");
    const char *question = json_string_value(qv);
    const char *article = json_string_value(av);
    char msg[96];
    int rc;
    if ((qv && !json_is_string(qv)) || (av && !json_is_string(av))) {
        const char *key = qv && !json_is_string(qv) ? "question" : "article";
        snprintf(msg, sizeof msg, "'%s' must be a string (got %s)", key,
                 cd_json_kind(qv && !json_is_string(qv) ? qv : av));
        rc = respond_error(resp, 400, "bad_field", msg);
    } else if (!question || !*question)
        rc = respond_error(resp, 400, "missing_field", "'question' is required (a string)");
    else if (!article || !kb_id_valid(article))
        rc = respond_error(resp, 400, "missing_field", "'article' is required (an article id)");
    else if (!api->deps.kb)
        rc = respond_error(resp, 503, "unavailable", "the knowledge base is not open");
    else {
        rc = kb_learn(api->deps.kb, question, article);
        if (rc == CD_ENOTFOUND)
            rc = respond_error(resp, 404, "not_found", "no such article");
        else if (rc)
            rc = respond_error(resp, rc == CD_EINVAL ? 400 : 500,
                               rc == CD_EINVAL ? "bad_field" : "internal", cd_strerror(rc));
        else {
            /* Taught: the question leaves the unanswered list. */
            int n = store_unanswered_resolve(api->deps.store, question);
            if (n < 0)
                log_event(LOG_ERROR, "unanswered_resolve_failed", "error:s", cd_strerror(n),
                          LOG_END);
            audit(api, "kb_learn", user, article);
            rc = respond_json(resp, 200,
                              json_pack("{s:s,s:s}", "learned", question, "article", article));
        }
    }
    json_decref(root);
    return rc;
}

#define UNANSWERED_MAX 100

/* GET /api/unanswered?since=&limit=: the questions the bot could not answer, most asked first,
 * each with the article that best answers it today (the first search hit), if any. */
static int route_unanswered(struct api *api, const struct api_request *req, const char *rest,
                            const struct auth_user *user, struct api_response *resp)
{
    const char *since_s = arg(req, "since");
    int64_t since = 0;
    int limit = 50;
    char *end;
    if (since_s) {
        long long v = strtoll(since_s, &end, 10);
        if (!*since_s || *end || v < 0)
            return respond_error(resp, 400, "bad_since", "'since' must be epoch seconds");
        since = v;
    }
    if (api_limit_arg(req, UNANSWERED_MAX, &limit, resp))
        return 0;
    if (!api->deps.store)
        return respond_error(resp, 503, "unavailable", "the conversation store is not open");
    struct store_unanswered items[UNANSWERED_MAX];
    int n = 0;
    int rc = store_unanswered_list(api->deps.store, since, items, limit, &n);
    if (rc)
        return respond_error(resp, 500, "internal", cd_strerror(rc));
    json_t *list = json_array();
    for (int i = 0; i < n && list; i++) {
        const struct store_unanswered *u = &items[i];
        json_t *suggested = NULL;
        struct kb_hit hit;
        int n_hits = 0;
        if (api->deps.kb && kb_search(api->deps.kb, u->question, u->lang, &hit, 1, &n_hits) == 0 &&
            n_hits == 1) {
            char url[KB_ID_MAX + 512];
            article_url(api, hit.id, url, sizeof url);
            suggested = json_pack("{s:s,s:s?,s:f,s:s}", "id", hit.id, "title", hit.title, "score",
                                  hit.score, "url", url);
            kb_hits_clear(&hit, n_hits);
        }
        json_array_append_new(list, json_pack("{s:s,s:s,s:I,s:I,s:o?}", "text", u->question, "lang",
                                              u->lang, "count", (json_int_t)u->n, "last_s",
                                              (json_int_t)u->last_s, "suggested", suggested));
    }
    store_unanswered_clear(items, n);
    return respond_json(resp, 200, json_pack("{s:o?}", "questions", list));
}

/* GET /api/intents/check: the author's report on the intents in use (intents_check.h). */
static int route_intents_check(struct api *api, const struct api_request *req, const char *rest,
                               const struct auth_user *user, struct api_response *resp)
{
    const struct intents *set = api->deps.triage ? triage_intents(api->deps.triage) : NULL;
    if (!set)
        return respond_error(resp, 503, "unavailable", "the triage engine has no intents");
    json_t *r = intents_check(set, NULL);
    if (!r)
        return respond_error(resp, 500, "internal", "out of memory");
    return respond_json(resp, 200, r);
}

static int route_queues(struct api *api, const struct api_request *req, const char *rest,
                        const struct auth_user *user, struct api_response *resp)
{
    json_t *list = json_array();
    const char *p = api->deps.queues ? api->deps.queues : "general";
    while (*p && list) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n)
            json_array_append_new(list, json_stringn(p, n));
        p += n + (e ? 1 : 0);
    }
    return respond_json(resp, 200, json_pack("{s:o?}", "queues", list));
}

/* ---- data-subject requests (admin) --------------------------------------- */

/* GET /api/export?conversation=ID or ?email=ADDR: one conversation, or every conversation of
 * a customer ({"email","conversations":[...]}), as `caredesk export` prints them. */
static int route_export(struct api *api, const struct api_request *req, const char *rest,
                        const struct auth_user *user, struct api_response *resp)
{
    const char *id_s = arg(req, "conversation"), *email = arg(req, "email");
    int64_t id = 0;
    if (!id_s == !email)
        return respond_error(resp, 400, "bad_request", "send ?conversation=ID or ?email=ADDR");
    if (id_s && api_parse_id(id_s, &id))
        return respond_error(resp, 400, "bad_id", "conversation ids are positive integers");
    if (email && !cd_is_email(email))
        return respond_error(resp, 400, "bad_email", "'email' must be an email address");
    struct cd_buf out = {0};
    char detail[96];
    int n = 0;
    int rc = id ? store_export_conversation(api->deps.store, id, &out)
                : store_export_email(api->deps.store, email, &out, &n);
    snprintf(detail, sizeof detail, "{\"by\":\"%s\",\"conversations\":%d}",
             id ? "conversation" : "email", id ? 1 : n);
    if (!rc) {
        /* Who exported what is audited; the email itself is not written there. */
        api_audit(api, "export", id, user, detail);
    }
    if (!rc)
        rc = cd_buf_puts(&out, "\n");
    if (rc) {
        cd_buf_free(&out);
        return rc == CD_ENOTFOUND ? respond_error(resp, 404, "not_found", "no such conversation")
                                  : respond_error(resp, 500, "internal", cd_strerror(rc));
    }
    cd_buf_free(&resp->body);
    resp->body = out;
    resp->status = 200;
    resp->content_type = "application/json";
    return 0;
}

/* POST /api/erase {"email"}: deletes every conversation of that customer, ends the live ones
 * first, and truncates the -wal file, as `caredesk erase` does; {"erased": N}. */
static int route_erase(struct api *api, const struct api_request *req, const char *rest,
                       const struct auth_user *user, struct api_response *resp)
{
    json_t *root;
    if (api_body_object(req, "{\"email\": ADDR}", &root, resp))
        return 0;
    char msg[300];
    json_t *ev = json_object_get(root, "email");
    if (!ev || !json_is_string(ev) || !cd_is_email(json_string_value(ev))) {
        if (ev && !json_is_string(ev))
            snprintf(msg, sizeof msg, "'email' must be a string (got %s)", cd_json_kind(ev));
        else
            snprintf(msg, sizeof msg, "'email' is required (an email address)");
        json_decref(root);
        return respond_error(resp, 400, ev ? "bad_field" : "missing_field", msg);
    }
    char email[256];
    cd_strlcpy(email, sizeof email, json_string_value(ev));
    json_decref(root);
    /* The live conversations end first (committed with chat_flush()), so that nothing is
     * written for them after the erasure. */
    int64_t ids[200], after = 0;
    int n = 0, rc = 0;
    while (api->deps.chat &&
           !(rc = store_email_conversation_ids(api->deps.store, email, after, ids, 200, &n)) &&
           n > 0) {
        for (int i = 0; i < n && !rc; i++)
            rc = chat_end_for_erasure(api->deps.chat, ids[i]);
        after = ids[n - 1];
        if (rc || n < 200)
            break;
    }
    if (!rc && api->deps.chat)
        rc = chat_flush(api->deps.chat);
    int n_erased = 0;
    if (!rc)
        rc = store_erase_email(api->deps.store, email, user->id, &n_erased);
    if (rc)
        return respond_error(resp, 500, "store_failed", cd_strerror(rc));
    int wrc = store_purge_erased(api->deps.store);
    if (wrc)
        log_event(LOG_ERROR, "wal_not_truncated", "error:s", cd_strerror(wrc), LOG_END);
    return respond_json(resp, 200,
                        json_pack("{s:i, s:b}", "erased", n_erased, "wal_truncated", wrc == 0));
}

/* ---- dispatch: the route table -------------------------------------------- */

typedef int (*route_fn)(struct api *api, const struct api_request *req, const char *rest,
                        const struct auth_user *user, struct api_response *resp);

/* Every route once: its path, the methods it takes (HEAD counts as GET) and who may call it.
 * api_handle() answers 405 (with Allow) for another method and 401/403 for a caller without
 * one of the roles before a handler runs, so no handler checks either. */
static const struct route {
    const char *path; /* exact, or a prefix when it ends in '/' (the rest, not empty, follows) */
    const char *allow;
    int roles; /* AUTH_ROLE_* bits; 0: anyone, no token */
    route_fn fn;
} routes[] = {
    /* Published articles as HTML pages. */
    {"/kb/", "GET", 0, route_kb_page},
    /* ?q=&lang=&limit=: published articles only. */
    {"/api/search", "GET", 0, route_search},
    /* ?q=&status=&limit=: every article, drafts too; POST creates (409 if the id exists). */
    {"/api/articles", "GET, POST", AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN, route_articles},
    /* {id} (drafts too), {id}/revisions (current first), {id}/revisions/{n}; PUT creates or
     * updates, keeping the previous version as a revision. */
    {"/api/articles/", "GET, PUT, DELETE", AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN, route_articles},
    /* {id}: the transcript. */
    {"/api/conversations/", "GET", AUTH_ROLE_AGENT | AUTH_ROLE_ADMIN | AUTH_ROLE_SUPERVISOR,
     route_conversation},
    /* ?since=&until=: aggregates only. */
    {"/api/stats", "GET",
     AUTH_ROLE_AGENT | AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN | AUTH_ROLE_SUPERVISOR, route_stats},
    /* The caller's account: {"id","name","role","skills"}. */
    {"/api/me", "GET", AUTH_ROLE_AGENT | AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN | AUTH_ROLE_SUPERVISOR,
     route_me},
    /* ?q=&lang=: the bot's decision, stored nowhere. */
    {"/api/ask", "GET", AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN, route_ask},
    /* {"question","article"}: kb_learn(); the question leaves the unanswered list. */
    {"/api/learn", "POST", AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN, route_learn},
    {"/api/queues", "GET", AUTH_ROLE_AGENT | AUTH_ROLE_ADMIN, route_queues},
    /* ?since=&limit=: most asked first, with the best article. */
    {"/api/unanswered", "GET", AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN, route_unanswered},
    /* ?conversation=|email=: a data-subject access request. */
    {"/api/export", "GET", AUTH_ROLE_ADMIN, route_export},
    /* {"email"}: erasure, the -wal file included. */
    {"/api/erase", "POST", AUTH_ROLE_ADMIN, route_erase},
    /* The intents report (intents_check.h). */
    {"/api/intents/check", "GET", AUTH_ROLE_AUTHOR | AUTH_ROLE_ADMIN, route_intents_check},
};

/* 1 if method is one of allow ("GET, PUT, DELETE"); HEAD is allowed wherever GET is. */
static int method_allowed(const char *allow, const char *method)
{
    if (!strcmp(method, "HEAD"))
        method = "GET";
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

int api_method_check(const struct api_request *req, const char *allow, struct api_response *resp)
{
    if (method_allowed(allow, req->method))
        return 1;
    char msg[64];
    snprintf(msg, sizeof msg, "use %s", allow);
    resp->allow = allow;
    respond_error(resp, 405, "method_not_allowed", msg);
    return 0;
}

int api_handle(struct api *api, const struct api_request *req, struct api_response *resp)
{
    resp->status = 500;
    resp->content_type = "application/json";
    resp->allow = NULL;
    const char *p = req->path;
    /* "/api/articles/" with nothing after it is the collection. */
    int is_collection_slash = !strcmp(p, "/api/articles/");
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        int is_prefix = r->path[n - 1] == '/';
        const char *rest = NULL;
        if (is_prefix && !is_collection_slash && !strncmp(p, r->path, n) && p[n])
            rest = p + n;
        else if (!is_prefix && (!strcmp(p, r->path) ||
                                (is_collection_slash && !strcmp(r->path, "/api/articles"))))
            rest = "";
        if (!rest)
            continue;
        if (!api_method_check(req, r->allow, resp))
            return 0;
        struct auth_user user;
        memset(&user, 0, sizeof user);
        if (r->roles && require_role(api, req, r->roles, &user, resp))
            return 0;
        return r->fn(api, req, is_prefix ? rest : NULL, r->roles ? &user : NULL, resp);
    }
    /* Route modules keep their own table (api_route.h). */
    if (api_team_owns_path(p))
        return api_team_handle(api, req, resp);
    if (!strcmp(p, "/api/openapi.json"))
        return api_openapi(req, resp);
    if (!strncmp(p, "/api/webhooks/", 14))
        return api_webhooks(api, &api->deps, req, p + 14, resp);
    return respond_error(resp, 404, "not_found", "no such route");
}

/* ---- for the route modules (api_route.h) ---------------------------------- */

const struct api_deps *api_deps_of(const struct api *api)
{
    return &api->deps;
}

int api_require_role(struct api *api, const struct api_request *req, int roles,
                     struct auth_user *user, struct api_response *resp)
{
    return require_role(api, req, roles, user, resp);
}

int api_respond_error(struct api_response *resp, int status, const char *code, const char *message)
{
    return respond_error(resp, status, code, message);
}

int api_respond_json(struct api_response *resp, int status, json_t *value)
{
    return respond_json(resp, status, value);
}

const char *api_arg(const struct api_request *req, const char *name)
{
    return arg(req, name);
}
