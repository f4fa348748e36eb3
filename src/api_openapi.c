/* api_openapi: serves the OpenAPI document (see api_openapi.h). The document is written by
 * hand in docs/openapi.json, next to the prose docs, and tests/integration/openapi.test.mjs
 * validates real responses of every route against it, so that it cannot drift from api.c. */
#include "api_openapi.h"

#include "cd.h"

#include <string.h>

int api_openapi(const struct api_request *req, struct api_response *resp)
{
    cd_buf_reset(&resp->body);
    resp->content_type = "application/json";
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
        resp->status = 405;
        resp->allow = "GET";
        return cd_buf_puts(&resp->body,
                           "{\"error\":\"method_not_allowed\",\"message\":\"use GET\"}\n");
    }
    resp->status = 200;
    return cd_buf_append(&resp->body, api_openapi_json, api_openapi_json_len);
}
