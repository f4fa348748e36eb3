/* webhook: signed webhooks from the store's durable outbox (store_outbox.h).
 *
 * Endpoints come from the settings (webhook-url, webhook-secret, webhook-events, and more in
 * webhook-endpoints), each with its own secret and event filter. The store's observer turns
 * conversation and message writes into events (conversation.created, conversation.handoff,
 * conversation.assigned, message.created, conversation.closed, conversation.rated) and writes
 * one outbox row per matching endpoint in the same transaction; article.published is written
 * with the article (webhook_kb_put()). A delivery thread, never the event loop, posts the rows
 * with libcurl: X-Caredesk-Event, X-Caredesk-Delivery (the same on every attempt),
 * X-Caredesk-Timestamp and X-Caredesk-Signature: sha256=HMAC-SHA256(secret, timestamp "."
 * body). Non-2xx answers and timeouts are retried with exponential backoff and jitter until
 * the delivery's deadline (24 hours by default), then it is marked failed. Delivery is at
 * least once, in order per conversation and endpoint. */
#ifndef CD_WEBHOOK_H
#define CD_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct store;
struct kb;
struct kb_article;
struct webhook;

#define WEBHOOK_SIGNATURE_LEN 71 /* "sha256=" and 64 hex digits */

/* The events, in the order docs/integrations.md lists them; NULL-terminated. */
extern const char *const webhook_events[];

/* Builds the endpoints from the settings. Returns the webhook set (with no endpoint when
 * none is configured: everything is then a no-op), or NULL with a malloc'd message in *err
 * for an invalid setting (a URL that is not http(s), a missing secret, an unknown event). */
struct webhook *webhook_new(const struct config *cfg, char **err);
void webhook_free(struct webhook *wh);

/* Number of configured endpoints (0 for NULL). */
int webhook_count(const struct webhook *wh);

/* How long a delivery is retried (webhook-max-age), in ms; a day for NULL. */
int64_t webhook_max_age_ms(const struct webhook *wh);

/* Makes s write outbox rows for its conversation and message changes (no-op without
 * endpoints). */
void webhook_observe(struct webhook *wh, struct store *s);

/* kb_put(kb, a, msg, msg_cap) of article a, with its article.published event (when it is
 * published and was not before: was_published 0) in the outbox of the store s. Without
 * endpoints it is kb_put(). When the KB is in the store's SQLite file, the event is written in
 * the article's own transaction, on the KB's connection. Otherwise (PostgreSQL, whose nodes keep
 * the KB in a file of their own, or a KB file apart) it is written in a unit of work of the
 * store around kb_put(), undone when kb_put() fails and committed after it (with the caller's
 * open group, if one is open): an event never goes out for an article that was not saved, and
 * only a crash between the two commits loses one. Returns what kb_put() returns, or CD_E* when
 * the event could not be written (then neither is). */
int webhook_kb_put(struct webhook *wh, struct kb *kb, struct store *s, const struct kb_article *a,
                   int was_published, char *msg, size_t msg_cap);

/* Starts the delivery thread, with a store connection of its own to db_path. No-op without
 * endpoints. Returns 0, or CD_E* with a malloc'd message in *err. */
int webhook_start(struct webhook *wh, const char *db_path, char **err);

/* Stops the delivery thread (an attempt under way is finished or times out first). */
void webhook_stop(struct webhook *wh);

/* Deliveries attempted, succeeded, retried and failed by this process (for /metrics). */
struct webhook_counts {
    int64_t attempts, delivered, retries, failed;
};
void webhook_counts_get(struct webhook *wh, struct webhook_counts *out);

/* The signature header value for body (n bytes) sent at timestamp (decimal seconds), with
 * secret: "sha256=" and the lower-case hex HMAC-SHA256 of "TIMESTAMP.BODY", into out. */
void webhook_sign(const char *secret, const char *timestamp, const char *body, size_t n,
                  char out[WEBHOOK_SIGNATURE_LEN + 1]);

/* The delay before attempt number attempts + 1, after attempts failed ones: base_ms doubled
 * per attempt, capped at an hour, times a jitter factor in [0.5, 1.5) from jitter (0..1). */
int64_t webhook_backoff_ms(int attempts, int64_t base_ms, double jitter);

#endif
