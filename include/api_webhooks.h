/* api_webhooks: the admin's REST routes over webhook deliveries (docs/integrations.md):
 *   GET  /api/webhooks/deliveries?status=&limit=   admin: recent deliveries and counts
 *   GET  /api/webhooks/deliveries/{id}             admin: one, with its payload
 *   POST /api/webhooks/deliveries/{id}/redeliver   admin: send it again (same delivery id) */
#ifndef CD_API_WEBHOOKS_H
#define CD_API_WEBHOOKS_H

#include "api.h"

/* Handles /api/webhooks/REST (rest is the path after "/api/webhooks/"). Returns 0 or
 * CD_ENOMEM. */
int api_webhooks(struct api *api, const struct api_deps *deps, const struct api_request *req,
                 const char *rest, struct api_response *resp);

#endif
