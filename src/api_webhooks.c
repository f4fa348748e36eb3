/* api_webhooks: the webhook deliveries routes (see api_webhooks.h). They read the outbox
 * through the event loop's store: bounded queries on indexed columns. */
#include "api_webhooks.h"
#include "api_route.h"

#include "auth.h"
#include "cd.h"
#include "store_outbox.h"
#include "webhook.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELIVERIES_MAX 200

static json_t *time_or_null(int64_t ms)
{
    char buf[CD_ISO_TIME_MAX];
    return ms > 0 ? json_string(cd_iso_time_ms(ms, buf, sizeof buf)) : json_null();
}

static const char *const status_names[] = {"pending", "delivered", "failed"};

static json_t *item_json(const struct store_outbox_item *it, int with_payload)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int st = it->status >= 0 && it->status <= 2 ? it->status : 2;
    json_object_set_new(o, "id", json_integer(it->id));
    json_object_set_new(o, "delivery", json_string(it->delivery));
    json_object_set_new(o, "event", json_string(it->event));
    json_object_set_new(o, "endpoint", json_string(it->endpoint));
    json_object_set_new(o, "conversation",
                        it->conversation ? json_integer(it->conversation) : json_null());
    json_object_set_new(o, "status", json_string(status_names[st]));
    json_object_set_new(o, "attempts", json_integer(it->attempts));
    json_object_set_new(o, "created_at", time_or_null(it->created_ms));
    json_object_set_new(o, "next_attempt_at",
                        st == STORE_OUTBOX_PENDING ? time_or_null(it->next_attempt_ms)
                                                   : json_null());
    json_object_set_new(o, "last_http", it->last_http ? json_integer(it->last_http) : json_null());
    json_object_set_new(o, "last_error",
                        it->last_error[0] ? json_string(it->last_error) : json_null());
    json_object_set_new(o, "delivered_at", time_or_null(it->delivered_ms));
    if (with_payload) {
        json_t *payload = json_loads(it->payload ? it->payload : "null", JSON_DECODE_ANY, NULL);
        json_object_set_new(o, "payload", payload ? payload : json_null());
    }
    return o;
}

static int list(const struct api_deps *deps, const struct api_request *req,
                struct api_response *resp)
{
    int status = -1, limit = 50;
    if (api_choice_arg(req, "status", status_names,
                       (int)(sizeof status_names / sizeof *status_names),
                       "'status' must be pending, delivered or failed", &status, resp))
        return 0;
    struct store_outbox_item *items =
        api_list_alloc(req, DELIVERIES_MAX, sizeof *items, &limit, resp);
    if (!items)
        return 0;
    int n = 0;
    int64_t pending, delivered, failed;
    int rc = store_outbox_list(deps->store, status, items, limit, &n);
    if (!rc)
        rc = store_outbox_counts(deps->store, &pending, &delivered, &failed);
    if (rc) {
        store_outbox_clear(items, n);
        free(items);
        return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    }
    json_t *arr = json_array();
    for (int i = 0; i < n && arr; i++)
        json_array_append_new(arr, item_json(&items[i], 0));
    store_outbox_clear(items, n);
    free(items);
    return api_respond_json(resp, 200,
                            json_pack("{s:i,s:{s:I,s:I,s:I},s:o?}", "endpoints",
                                      webhook_count(deps->webhook), "counts", "pending",
                                      (json_int_t)pending, "delivered", (json_int_t)delivered,
                                      "failed", (json_int_t)failed, "deliveries", arr));
}

int api_webhooks(struct api *api, const struct api_deps *deps, const struct api_request *req,
                 const char *rest, struct api_response *resp)
{
    resp->allow = NULL;
    int is_list = !strcmp(rest, "deliveries") || !strcmp(rest, "deliveries/");
    int is_item = !strncmp(rest, "deliveries/", 11) && rest[11];
    if (!is_list && !is_item)
        return api_respond_error(resp, 404, "not_found", "no such route");
    const char *id_s = rest + 11;
    const char *slash = is_item ? strchr(id_s, '/') : NULL;
    int is_redeliver = slash && !strcmp(slash, "/redeliver");
    if (slash && !is_redeliver)
        return api_respond_error(resp, 404, "not_found", "no such route");
    const char *want = is_redeliver ? "POST" : "GET";
    if (strcmp(req->method, want) && !(!is_redeliver && !strcmp(req->method, "HEAD"))) {
        resp->allow = is_redeliver ? "POST" : "GET";
        return api_respond_error(resp, 405, "method_not_allowed",
                                 is_redeliver ? "use POST" : "use GET");
    }
    struct auth_user user;
    if (api_require_role(api, req, AUTH_ROLE_ADMIN, &user, resp))
        return 0;
    if (!deps->store)
        return api_respond_error(resp, 503, "unavailable", "the conversation store is not open");
    if (is_list)
        return list(deps, req, resp);
    char *end;
    long long id = strtoll(id_s, &end, 10);
    if (id <= 0 || (end != slash && *end))
        return api_respond_error(resp, 400, "bad_id", "delivery ids are positive integers");
    struct store_outbox_item it;
    int rc = store_outbox_get(deps->store, id, &it);
    if (rc == CD_ENOTFOUND)
        return api_respond_error(resp, 404, "not_found", "no such delivery");
    if (rc)
        return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    if (is_redeliver) {
        if (it.status == STORE_OUTBOX_PENDING) {
            store_outbox_clear(&it, 1);
            return api_respond_error(resp, 409, "pending",
                                     "the delivery is pending: it will be sent");
        }
        int64_t now = cd_wall_ms();
        rc = store_outbox_redeliver(deps->store, id, now, now + webhook_max_age_ms(deps->webhook));
        store_outbox_clear(&it, 1);
        if (rc)
            return api_respond_error(resp, 500, "internal", cd_strerror(rc));
        char detail[64];
        snprintf(detail, sizeof detail, "{\"delivery\":%lld}", id);
        api_audit(api, "webhook_redeliver", 0, &user, detail);
        rc = store_outbox_get(deps->store, id, &it);
        if (rc)
            return api_respond_error(resp, 500, "internal", cd_strerror(rc));
    }
    json_t *o = item_json(&it, 1);
    store_outbox_clear(&it, 1);
    return api_respond_json(resp, 200, o);
}
