/* api_route: what api.c lends the modules that add REST routes of their own
 * (api_team.c: the weekly report, QA audits), so each keeps its routes in
 * its own file: the request's account and role check, the JSON and error
 * responses, the query arguments, the shared dependencies. */
#ifndef CD_API_ROUTE_H
#define CD_API_ROUTE_H

#include <jansson.h>

#include "api.h"

struct auth_user;

/* The dependencies api_new() was given; valid for the life of api. */
const struct api_deps *api_deps_of(const struct api *api);

/* Checks the Bearer token of req against roles (auth_role bits) and fills
 * *user. Returns 0, or 1 when resp already holds the 401/403/503 answer. */
int api_require_role(struct api *api, const struct api_request *req, int roles,
                     struct auth_user *user, struct api_response *resp);

/* {"error": code, "message": message} with status. Returns 0 or CD_ENOMEM. */
int api_respond_error(struct api_response *resp, int status, const char *code, const char *message);

/* value (stolen; NULL = 500) as the JSON body with status. Returns 0 or CD_ENOMEM. */
int api_respond_json(struct api_response *resp, int status, json_t *value);

/* The decoded value of query argument name, or NULL. */
const char *api_arg(const struct api_request *req, const char *name);

/* ---- api_team.c ---- */

/* 1 if path is one of api_team.c's routes (/api/report, /api/qa/...). */
int api_team_owns_path(const char *path);

/* Handles a request for one of those paths (api_handle() calls it). */
int api_team_handle(struct api *api, const struct api_request *req, struct api_response *resp);

#endif
