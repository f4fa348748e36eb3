/* api_route: what api.c lends the modules that add REST routes of their own
 * (api_team.c: the weekly report, QA audits), so each keeps its routes in
 * its own file: the request's account and role check, the JSON and error
 * responses, the query arguments, the shared dependencies. */
#ifndef CD_API_ROUTE_H
#define CD_API_ROUTE_H

#include <jansson.h>
#include <stdint.h>

#include "api.h"

struct auth_user;

/* The dependencies api_new() was given; valid for the life of api. */
const struct api_deps *api_deps_of(const struct api *api);

/* Checks the Bearer token of req against roles (auth_role bits) and fills
 * *user. Returns 0, or 1 when resp already holds the 401/403/503 answer. */
int api_require_role(struct api *api, const struct api_request *req, int roles,
                     struct auth_user *user, struct api_response *resp);

/* 1 if req's method is one of allow ("GET, POST"; HEAD counts as GET); otherwise 0 with the
 * 405 answer, naming allow in its Allow header, in resp. */
int api_method_check(const struct api_request *req, const char *allow, struct api_response *resp);

/* {"error": code, "message": message} with status. Returns 0 or CD_ENOMEM. */
int api_respond_error(struct api_response *resp, int status, const char *code, const char *message);

/* value (stolen; NULL = 500) as the JSON body with status. Returns 0 or CD_ENOMEM. */
int api_respond_json(struct api_response *resp, int status, json_t *value);

/* The request body as a JSON object, read the one way every route reads one (duplicate keys
 * refused), into *out (the caller decrefs it). Returns 0, or 1 with *out NULL and the 400
 * answer in resp: missing_body "send " followed by hint when there is no body, bad_json
 * naming the line and column of invalid JSON or the type of a body that is not an object. */
int api_body_object(const struct api_request *req, const char *hint, json_t **out,
                    struct api_response *resp);

/* The decoded value of query argument name, or NULL. */
const char *api_arg(const struct api_request *req, const char *name);

/* The query argument "limit" of req, when there is one, into *limit (left as the route's
 * default otherwise). Returns 0, or 1 when it is not a whole number from 1 to max and resp
 * already holds the 400 answer (bad_limit, naming the range). */
int api_limit_arg(const struct api_request *req, int max, int *limit, struct api_response *resp);

/* The query argument name of req as its index in names (n_names of them) into *out, left as
 * it is when the argument is missing or empty. Returns 0, or 1 when it is none of names and
 * resp already holds the 400 answer: code "bad_" followed by name, message why. */
int api_choice_arg(const struct api_request *req, const char *name, const char *const *names,
                   int n_names, const char *why, int *out, struct api_response *resp);

/* Room for a list route's items, size bytes each: *limit of them, zeroed, where *limit is the
 * route's default or the request's "limit" as api_limit_arg() reads it. The caller frees it.
 * NULL when resp already holds the answer (400 bad_limit, or 500 out of memory). */
void *api_list_alloc(const struct api_request *req, int max, size_t size, int *limit,
                     struct api_response *resp);

/* A positive integer id written in s (all of s; NULL is none): 0 with *out set, or -1. */
int api_parse_id(const char *s, int64_t *out);

/* Records an audit event (store_event_add()) of kind by user, about conversation (0: none),
 * with detail (a JSON text, or NULL); a failure to record it is logged, and the request
 * goes on. */
void api_audit(struct api *api, const char *kind, int64_t conversation,
               const struct auth_user *user, const char *detail);

/* ---- api_team.c ---- */

/* 1 if path is one of api_team.c's routes (/api/report, /api/qa/...). */
int api_team_owns_path(const char *path);

/* Handles a request for one of those paths (api_handle() calls it). */
int api_team_handle(struct api *api, const struct api_request *req, struct api_response *resp);

#endif
