/* metrics: the server's counters, gauges and histograms, and their
 * Prometheus text rendering for GET /metrics.
 *
 * Every metric is declared once in the table in metrics.c (name, labels,
 * help); callers name them by enum. A struct metrics belongs to the service
 * thread: updates are plain stores, not atomics. */
#ifndef CD_METRICS_H
#define CD_METRICS_H

#include <stdint.h>

struct cd_buf;

enum metrics_counter {
    METRICS_CUSTOMER_CONNECTIONS_TOTAL,
    METRICS_AGENT_CONNECTIONS_TOTAL,
    METRICS_REJECTED_MAX_CONNECTIONS,
    METRICS_REJECTED_ORIGIN,
    METRICS_CUSTOMER_FRAMES_IN,
    METRICS_AGENT_FRAMES_IN,
    METRICS_FRAMES_OUT,
    METRICS_BAD_BINARY,
    METRICS_BAD_UTF8,
    METRICS_BAD_TOO_BIG,
    METRICS_BAD_RATE_LIMITED,
    METRICS_SLOW_READER_CLOSED,
    METRICS_DECISIONS_ANSWER,
    METRICS_DECISIONS_CLARIFY,
    METRICS_DECISIONS_HANDOFF,
    METRICS_AGENT_MESSAGES,
    METRICS_CONVERSATIONS_ENGAGED,
    METRICS_CONVERSATIONS_ESCALATED,
    METRICS_HTTP_2XX,
    METRICS_HTTP_3XX,
    METRICS_HTTP_4XX,
    METRICS_HTTP_5XX,
    METRICS_STORE_ERRORS,
    METRICS_CONVERSATIONS_STARTED,
    METRICS_MESSAGES_STORED,
    METRICS_AGENT_MESSAGES_STORED,
    METRICS_PICKUPS,
    METRICS_PICKUPS_WITHIN_TARGET,
    METRICS_KB_INDEX_READS,
    METRICS_N_COUNTERS
};

enum metrics_gauge {
    METRICS_CUSTOMER_CONNECTIONS,
    METRICS_AGENT_CONNECTIONS,
    METRICS_QUEUE_LENGTH,
    METRICS_DEFLECTION_RATIO,
    METRICS_KB_ARTICLES,
    METRICS_START_TIME,
    METRICS_LONGEST_WAIT,
    METRICS_AGENTS_ONLINE,
    METRICS_AGENTS_AVAILABLE,
    METRICS_OOS_SHARE,
    METRICS_N_GAUGES
};

enum metrics_histogram {
    METRICS_WAIT_SECONDS,         /* handoff to an agent joining */
    METRICS_PICKUP_SECONDS,       /* handoff to the agent's first message */
    METRICS_STORE_COMMIT_SECONDS, /* one group commit (chat_flush) */
    METRICS_HTTP_SECONDS,         /* REST request handling */
    METRICS_N_HISTOGRAMS
};

struct metrics;

/* Returns a zeroed set, or NULL when out of memory. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Each accepts m == NULL and does nothing then. */
void metrics_add(struct metrics *m, enum metrics_counter c, uint64_t n);
/* Sets a counter to a total kept elsewhere (chat.c's own counts). */
void metrics_counter_set(struct metrics *m, enum metrics_counter c, uint64_t total);
void metrics_set(struct metrics *m, enum metrics_gauge g, double v);
void metrics_gauge_add(struct metrics *m, enum metrics_gauge g, double delta);
void metrics_observe(struct metrics *m, enum metrics_histogram h, double value);
/* Sets histogram h to totals kept elsewhere (chat.c's waits): buckets[n_bounds + 1] plain
 * (not cumulative) counts, the last one +Inf, and their sum. Returns 0, or CD_EINVAL (and
 * changes nothing) unless bounds[n_bounds] are h's own bounds. */
int metrics_histogram_set(struct metrics *m, enum metrics_histogram h, const double *bounds,
                          int n_bounds, const uint64_t *buckets, double sum);

uint64_t metrics_counter(const struct metrics *m, enum metrics_counter c);
double metrics_gauge(const struct metrics *m, enum metrics_gauge g);
/* Observations so far in histogram h, and their sum. */
uint64_t metrics_histogram_count(const struct metrics *m, enum metrics_histogram h);
double metrics_histogram_sum(const struct metrics *m, enum metrics_histogram h);

/* Appends the Prometheus text exposition (version 0.0.4) of every metric,
 * plus process_resident_memory_bytes, to out. Returns 0 or CD_ENOMEM. */
int metrics_render(const struct metrics *m, struct cd_buf *out);

#endif
