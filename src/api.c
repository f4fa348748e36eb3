/* api: REST routes (/api/...) and article pages (/kb/ID); see api.h. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

struct api {
    struct api_deps deps;
};

struct api *api_new(const struct api_deps *deps)
{
    struct api *api = calloc(1, sizeof *api);
    if (api && deps)
        api->deps = *deps;
    return api;
}

void api_free(struct api *api)
{
    free(api);
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

int api_handle(struct api *api, const struct api_request *req, struct api_response *resp)
{
    (void)api;
    (void)req;
    resp->status = 503;
    resp->content_type = "application/json";
    return cd_buf_puts(&resp->body, "{\"error\":\"unavailable\",\"message\":\"not built yet\"}\n");
}
