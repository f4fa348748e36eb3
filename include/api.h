/* api: the REST routes under /api/ and the article pages under /kb/, as
 * plain functions from a parsed request to a response, with no network.
 *
 * server.c parses HTTP and hands api_handle() the method, path, decoded
 * query arguments, Authorization header and body; api.c checks the Bearer
 * token and role, runs the request against the KB and the store, and fills
 * a response. Bad input gets 400 with {"error": CODE, "message": TEXT}
 * naming the problem; a missing or wrong token 401; a wrong role 403. */
#ifndef CD_API_H
#define CD_API_H

#include <stddef.h>

#include "cd.h"
#include "report.h"

struct kb;
struct store;
struct metrics;
struct triage;
struct chat;
struct qa_rubric;
struct webhook;

/* What the routes work on; all borrowed, any may be NULL (the routes that
 * need a missing one answer 503). */
struct api_deps {
    struct kb *kb;
    struct store *store;
    struct metrics *metrics;
    struct triage *triage;  /* for GET /api/ask */
    struct chat *chat;      /* for the live part of GET /api/stats */
    const char *queues;     /* comma-separated queue names, for GET /api/queues */
    const char *public_url; /* base of article links, "" = relative */
    int max_body_bytes;     /* larger bodies get 413 (server.c enforces it too) */
    int pickup_target_s;    /* for "picked up within target" in /api/stats; 0 = queue default */
    /* FCR window, SLA targets, business hours (report.h). */
    struct report_settings report;
    const struct qa_rubric *qa_rubric; /* NULL: QA audits are off (503) */
    int qa_sample;                     /* conversations per agent and week; 0 = 4 */
    /* article.published events, the webhook deliveries routes; may be NULL */
    struct webhook *webhook;
};

struct api_request {
    const char *method;      /* "GET", "POST", "PUT", "DELETE", ... */
    const char *path;        /* decoded, starting with "/" */
    const char *const *args; /* decoded query arguments "name=value" */
    int n_args;
    const char *authorization; /* Authorization header or NULL */
    const char *address;       /* client address, for throttling bad tokens; may be NULL */
    const char *body;          /* may be NULL when n_body is 0 */
    size_t n_body;
};

struct api_response {
    int status;
    const char *content_type; /* static string */
    struct cd_buf body;       /* owned; free with api_response_clear() */
    const char *allow;        /* for 405: the methods allowed, static */
};

struct api;

/* Returns NULL when out of memory. deps is copied (its pointers borrowed). */
struct api *api_new(const struct api_deps *deps);
void api_free(struct api *api);

/* Returns 1 if path is one api_handle() serves (/api/... or /kb/...). */
int api_owns_path(const char *path);

/* Handles one request and fills *resp (always, even for errors: status and
 * a JSON or HTML body). Returns 0, or CD_ENOMEM when not even the error
 * response could be built. */
int api_handle(struct api *api, const struct api_request *req, struct api_response *resp);

void api_response_clear(struct api_response *resp);

/* Appends the live SLA gauges (report_render_metrics()) to a /metrics
 * response. Returns 0 or CD_E*. */
int api_render_metrics(struct api *api, struct cd_buf *out);

/* 1 if the routes have a knowledge base (for /healthz). */
int api_has_kb(const struct api *api);
/* 1 if the store's database answers now (for /healthz). */
int api_store_ok(const struct api *api);

#endif
