/* api_team: the REST routes a support team's leads use: the weekly report
 * (GET /api/report). Registered through api_route.h. */
#include "api_route.h"

#include "auth.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>

int api_team_owns_path(const char *path)
{
    return !strcmp(path, "/api/report");
}

/* GET /api/report?week=YYYY-Www&format=json|md|csv */
static int route_report(struct api *api, const struct api_request *req, struct api_response *resp)
{
    if (strcmp(req->method, "GET")) {
        resp->allow = "GET";
        return api_respond_error(resp, 405, "method_not_allowed", "use GET");
    }
    struct auth_user user;
    if (api_require_role(api, req, AUTH_ROLE_ADMIN, &user, resp))
        return 0;
    const char *format = api_arg(req, "format");
    if (!format)
        format = "json";
    if (strcmp(format, "json") && strcmp(format, "md") && strcmp(format, "csv"))
        return api_respond_error(resp, 400, "bad_format", "'format' is json, md or csv");
    int64_t now = cd_wall_s();
    char last_week[16];
    report_week_name(now - 7 * 86400, last_week, sizeof last_week);
    const char *week = api_arg(req, "week");
    if (!week)
        week = last_week;
    int64_t since, until;
    if (report_week_parse(week, &since, &until))
        return api_respond_error(resp, 400, "bad_week", "'week' is an ISO week such as 2026-W49");
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

int api_team_handle(struct api *api, const struct api_request *req, struct api_response *resp)
{
    if (!strcmp(req->path, "/api/report"))
        return route_report(api, req, resp);
    return api_respond_error(resp, 404, "not_found", "no such route");
}
