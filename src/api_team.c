/* api_team: the REST routes a support team's leads use: the weekly report
 * (GET /api/report), QA audits (/api/qa/...) and the escalation status
 * updates by tracking id (GET /api/status-updates). Registered through
 * api_route.h; who may score what is qa.c's decision. */
#include "api_route.h"

#include "auth.h"
#include "incident.h"
#include "qa.h"
#include "report.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

int api_team_owns_path(const char *path)
{
    return !strcmp(path, "/api/report") || !strncmp(path, "/api/qa/", 8) ||
           !strcmp(path, "/api/status-updates");
}

/* The week given, else the request's "week" argument, else the ISO week of the time
 * default_s, into week, and its bounds. Returns 0, or 1 with the 400 answer in resp. */
static int week_arg(const struct api_request *req, const char *given, int64_t default_s, char *week,
                    size_t cap, int64_t *since, int64_t *until, struct api_response *resp)
{
    const char *w = given ? given : api_arg(req, "week");
    if (w)
        snprintf(week, cap, "%s", w);
    else
        report_week_name(default_s, week, cap);
    if (report_week_parse(week, since, until)) {
        api_respond_error(resp, 400, "bad_week", "'week' is an ISO week such as 2026-W49");
        return 1;
    }
    return 0;
}

/* GET /api/report?week=YYYY-Www&format=json|md|csv */
static int route_report(struct api *api, const struct api_request *req,
                        const struct auth_user *user, struct api_response *resp)
{
    const char *format = api_arg(req, "format");
    if (!format)
        format = "json";
    if (strcmp(format, "json") && strcmp(format, "md") && strcmp(format, "csv"))
        return api_respond_error(resp, 400, "bad_format", "'format' is json, md or csv");
    int64_t now = cd_wall_s();
    char week[16];
    int64_t since, until;
    if (week_arg(req, NULL, now - 7 * 86400, week, sizeof week, &since, &until, resp))
        return 0;
    const struct api_deps *deps = api_deps_of(api);
    json_t *report = NULL;
    int rc = report_week_build(deps->store, &deps->report, week, now, &report);
    if (rc)
        return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    if (!strcmp(format, "json"))
        return api_respond_json(resp, 200, report);
    cd_buf_reset(&resp->body);
    if (!strcmp(format, "csv")) {
        rc = report_week_csv(report, &resp->body);
        resp->content_type = "text/csv; charset=utf-8";
    } else {
        rc = report_week_markdown(report, &resp->body);
        resp->content_type = "text/markdown; charset=utf-8";
    }
    json_decref(report);
    if (rc)
        return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    resp->status = 200;
    return 0;
}

/* ---- QA ---- */

#define REVIEWERS (AUTH_ROLE_SUPERVISOR | AUTH_ROLE_ADMIN)

static int respond_result(struct api_response *resp, int rc, json_t *value)
{
    if (rc) {
        json_decref(value);
        return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    }
    return api_respond_json(resp, 200, value);
}

/* GET: the stored sample of a week. POST {"week","seed"?}: draws it. */
static int route_qa_samples(struct api *api, const struct api_request *req,
                            const struct auth_user *user, struct api_response *resp)
{
    const struct api_deps *deps = api_deps_of(api);
    char week[16];
    int64_t since, until;
    if (strcmp(req->method, "POST")) {
        if (week_arg(req, NULL, cd_wall_s(), week, sizeof week, &since, &until, resp))
            return 0;
        json_t *out = NULL;
        int rc = qa_sample_list(deps->store, week, user->id, &out);
        return respond_result(resp, rc, out);
    }
    json_t *body;
    if (api_body_object(req, "{\"week\", \"seed\"?}", &body, resp))
        return 0;
    json_t *w = json_object_get(body, "week"), *seed_v = json_object_get(body, "seed");
    if (!json_is_string(w) ||
        week_arg(req, json_string_value(w), cd_wall_s(), week, sizeof week, &since, &until, resp)) {
        json_decref(body);
        if (!resp->body.len)
            api_respond_error(resp, 400, "bad_week", "'week' is an ISO week such as 2026-W49");
        return 0;
    }
    /* Without a seed, the week's own: the same week draws the same sample. */
    uint64_t seed = cd_fnv1a64(CD_FNV64_INIT, week, strlen(week)) & 0x7fffffffffffULL;
    if (seed_v && (!json_is_integer(seed_v) || json_integer_value(seed_v) < 0)) {
        json_decref(body);
        return api_respond_error(resp, 400, "bad_seed", "'seed' is a whole number, 0 or more");
    }
    if (seed_v)
        seed = (uint64_t)json_integer_value(seed_v);
    json_decref(body);
    struct qa_pick *picks = NULL;
    int n = 0;
    int per_agent = deps->qa_sample > 0 ? deps->qa_sample : 4;
    int rc = qa_sample_draw(deps->store, since, until, per_agent, seed, &picks, &n);
    if (!rc)
        rc = qa_sample_save(deps->store, week, seed, user->id, picks, n);
    free(picks);
    if (rc)
        return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    api_audit(api, "qa_sample", 0, user, NULL);
    json_t *out = NULL;
    rc = qa_sample_list(deps->store, week, user->id, &out);
    if (!rc)
        json_object_set_new(out, "per_agent", json_integer(per_agent));
    return respond_result(resp, rc, out);
}

/* GET ?agent=&week=: audits (an agent: only their own). POST: score one. */
static int route_qa_audits(struct api *api, const struct api_request *req,
                           const struct auth_user *user, struct api_response *resp)
{
    const struct api_deps *deps = api_deps_of(api);
    if (strcmp(req->method, "POST")) {
        int64_t agent = 0, since = 0, until = INT64_MAX;
        const char *a = api_arg(req, "agent");
        if (a && api_parse_id(a, &agent))
            return api_respond_error(resp, 400, "bad_agent", "'agent' is an account id");
        if (user->role == AUTH_ROLE_AGENT) {
            if (a && agent != user->id)
                return api_respond_error(resp, 403, "forbidden",
                                         "agents see their own audits only");
            agent = user->id;
        }
        char week[16];
        if (api_arg(req, "week") &&
            week_arg(req, NULL, cd_wall_s(), week, sizeof week, &since, &until, resp))
            return 0;
        json_t *out = NULL;
        int rc = qa_audits_list(deps->store, agent, since, until, &out);
        return respond_result(resp, rc, out);
    }
    if (user->role == AUTH_ROLE_AGENT)
        return api_respond_error(resp, 403, "forbidden",
                                 "only supervisors and admins score conversations");
    json_t *body;
    if (api_body_object(req, "{\"conversation\": ID, \"scores\": {criterion: points}}", &body,
                        resp))
        return 0;
    json_t *conv = json_object_get(body, "conversation");
    json_t *comment = json_object_get(body, "comment");
    if (!json_is_integer(conv) || json_integer_value(conv) <= 0 ||
        (comment && !json_is_string(comment) && !json_is_null(comment))) {
        json_decref(body);
        return api_respond_error(resp, 400, "bad_audit",
                                 "send {\"conversation\": ID, \"scores\": {criterion: points},"
                                 " \"comment\": TEXT}");
    }
    const char *why = NULL;
    json_t *out = NULL;
    int64_t id = json_integer_value(conv);
    int rc = qa_audit_save(deps->store, deps->qa_rubric, id, user, json_object_get(body, "scores"),
                           json_string_value(comment), &out, &why);
    json_decref(body);
    switch (rc) {
    case 0:
        api_audit(api, "qa_audit", id, user, NULL);
        return api_respond_json(resp, 201, out);
    case CD_EPERM:
        return api_respond_error(resp, 403, "forbidden", why);
    case CD_ENOTFOUND:
        return api_respond_error(resp, 404, "not_found", "no such conversation");
    case CD_ESTATE:
        return api_respond_error(resp, 409, "not_auditable", why);
    case CD_EINVAL:
        return api_respond_error(resp, 400, "bad_scores", why);
    case CD_ETOOBIG:
        return api_respond_error(resp, 400, "bad_comment", why);
    default:
        return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    }
}

/* GET ?week=: the reviewers' spread on conversations several scored. */
static int route_qa_calibration(struct api *api, const struct api_request *req,
                                const struct auth_user *user, struct api_response *resp)
{
    char week[16];
    int64_t since, until;
    if (week_arg(req, NULL, cd_wall_s(), week, sizeof week, &since, &until, resp))
        return 0;
    json_t *out = NULL;
    int rc =
        qa_calibration(api_deps_of(api)->store, api_deps_of(api)->qa_rubric, since, until, &out);
    if (!rc)
        json_object_set_new(out, "week", json_string(week));
    return respond_result(resp, rc, out);
}

/* GET ?weeks=N: mean score per agent per week, the last N weeks (default 8). */
static int route_qa_scores(struct api *api, const struct api_request *req,
                           const struct auth_user *user, struct api_response *resp)
{
    const char *w = api_arg(req, "weeks");
    int64_t weeks = 8;
    if (w && (api_parse_id(w, &weeks) || weeks > 104))
        return api_respond_error(resp, 400, "bad_weeks", "'weeks' is 1 to 104");
    char this_week[16];
    int64_t since, until;
    report_week_name(cd_wall_s(), this_week, sizeof this_week);
    report_week_parse(this_week, &since, &until);
    since -= (weeks - 1) * 7 * 86400;
    json_t *out = NULL;
    int rc = qa_scores(api_deps_of(api)->store, user->role == AUTH_ROLE_AGENT ? user->id : 0, since,
                       until, &out);
    return respond_result(resp, rc, out);
}

/* GET: the rubric audits score against. */
static int route_qa_rubric(struct api *api, const struct api_request *req,
                           const struct auth_user *user, struct api_response *resp)
{
    return api_respond_json(resp, 200, qa_rubric_json(api_deps_of(api)->qa_rubric));
}

/* GET ?tracking_id=INC-2026-1206-0042: the escalation status updates with
 * that tracking id, with their conversations. */
static int route_status_updates(struct api *api, const struct api_request *req,
                                const struct auth_user *user, struct api_response *resp)
{
    const char *id = api_arg(req, "tracking_id");
    char upper[INCIDENT_ID_MAX];
    snprintf(upper, sizeof upper, "%s", id ? id : "");
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    if (!id || strlen(id) >= INCIDENT_ID_MAX || !incident_id_valid(upper))
        return api_respond_error(resp, 400, "bad_tracking_id",
                                 "'tracking_id' looks like INC-2026-1206-0042");
    json_t *out = NULL;
    int rc = incident_search(api_deps_of(api)->store, upper, &out);
    return respond_result(resp, rc, out);
}

/* The routes of this file, the methods each takes and who may call it: api_team_handle()
 * answers 401/403, 405 (with Allow) and 404 from here before a handler runs. */
typedef int (*team_route_fn)(struct api *api, const struct api_request *req,
                             const struct auth_user *user, struct api_response *resp);
static const struct team_route {
    const char *path;
    const char *allow;
    int roles; /* AUTH_ROLE_* bits */
    team_route_fn fn;
} team_routes[] = {
    {"/api/report", "GET", AUTH_ROLE_ADMIN | AUTH_ROLE_SUPERVISOR, route_report},
    {"/api/qa/rubric", "GET", REVIEWERS | AUTH_ROLE_AGENT, route_qa_rubric},
    {"/api/qa/samples", "GET, POST", REVIEWERS, route_qa_samples},
    {"/api/qa/audits", "GET, POST", REVIEWERS | AUTH_ROLE_AGENT, route_qa_audits},
    {"/api/qa/calibration", "GET", REVIEWERS, route_qa_calibration},
    {"/api/qa/scores", "GET", REVIEWERS | AUTH_ROLE_AGENT, route_qa_scores},
    {"/api/status-updates", "GET", AUTH_ROLE_AGENT | REVIEWERS, route_status_updates},
};

int api_team_handle(struct api *api, const struct api_request *req, struct api_response *resp)
{
    struct auth_user user;
    if (!strncmp(req->path, "/api/qa/", 8) && !api_deps_of(api)->qa_rubric) {
        if (api_require_role(api, req, REVIEWERS | AUTH_ROLE_AGENT, &user, resp))
            return 0;
        return api_respond_error(resp, 503, "qa_off",
                                 "QA audits are off: no rubric file (setting 'qa-rubric')");
    }
    for (size_t i = 0; i < sizeof team_routes / sizeof team_routes[0]; i++) {
        const struct team_route *r = &team_routes[i];
        if (strcmp(req->path, r->path))
            continue;
        if (api_require_role(api, req, r->roles, &user, resp) ||
            !api_method_check(req, r->allow, resp))
            return 0;
        return r->fn(api, req, &user, resp);
    }
    return api_respond_error(resp, 404, "not_found", "no such route");
}
