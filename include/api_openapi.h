/* api_openapi: GET /api/openapi.json, the OpenAPI 3.1 document of every REST route
 * (docs/openapi.json, built into the binary by make). */
#ifndef CD_API_OPENAPI_H
#define CD_API_OPENAPI_H

#include "api.h"

/* The document's bytes (docs/openapi.json as it was at build time), len bytes, also
 * NUL-terminated. */
extern const char api_openapi_json[];
extern const unsigned long api_openapi_json_len;

/* Answers GET (and HEAD) /api/openapi.json with the document; 405 for other methods.
 * Returns 0, or CD_ENOMEM when the response could not be built. */
int api_openapi(const struct api_request *req, struct api_response *resp);

#endif
