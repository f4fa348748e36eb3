/* metrics: the metric table, updates and Prometheus text rendering; see
 * metrics.h. */
#include "metrics.h"

#include "cd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct metric_desc {
    const char *name;   /* family name */
    const char *labels; /* "{...}" or "" */
    const char *help;
};

static const struct metric_desc counter_desc[METRICS_N_COUNTERS] = {
    [METRICS_CUSTOMER_CONNECTIONS_TOTAL] = {"caredesk_connections_total", "{kind=\"customer\"}",
                                            "Websocket connections accepted."},
    [METRICS_AGENT_CONNECTIONS_TOTAL] = {"caredesk_connections_total", "{kind=\"agent\"}", ""},
    [METRICS_REJECTED_MAX_CONNECTIONS] = {"caredesk_connections_rejected_total",
                                          "{reason=\"max_connections\"}",
                                          "Websocket connections refused."},
    [METRICS_REJECTED_ORIGIN] = {"caredesk_connections_rejected_total", "{reason=\"origin\"}", ""},
    [METRICS_CUSTOMER_FRAMES_IN] = {"caredesk_messages_received_total", "{kind=\"customer\"}",
                                    "Websocket text messages received."},
    [METRICS_AGENT_FRAMES_IN] = {"caredesk_messages_received_total", "{kind=\"agent\"}", ""},
    [METRICS_FRAMES_OUT] = {"caredesk_messages_sent_total", "", "Websocket messages sent."},
    [METRICS_BAD_BINARY] = {"caredesk_bad_input_total", "{reason=\"binary\"}",
                            "Websocket input refused, by reason."},
    [METRICS_BAD_UTF8] = {"caredesk_bad_input_total", "{reason=\"invalid_utf8\"}", ""},
    [METRICS_BAD_TOO_BIG] = {"caredesk_bad_input_total", "{reason=\"too_big\"}", ""},
    [METRICS_BAD_RATE_LIMITED] = {"caredesk_bad_input_total", "{reason=\"rate_limited\"}", ""},
    [METRICS_SLOW_READER_CLOSED] = {"caredesk_connections_dropped_total",
                                    "{reason=\"slow_reader\"}",
                                    "Connections closed by the server, by reason."},
    [METRICS_DECISIONS_ANSWER] = {"caredesk_decisions_total", "{action=\"answer\"}",
                                  "Bot decisions on customer messages, by action."},
    [METRICS_DECISIONS_CLARIFY] = {"caredesk_decisions_total", "{action=\"clarify\"}", ""},
    [METRICS_DECISIONS_HANDOFF] = {"caredesk_decisions_total", "{action=\"handoff\"}", ""},
    [METRICS_AGENT_MESSAGES] = {"caredesk_agent_messages_total", "",
                                "Agent messages delivered to customers."},
    [METRICS_CONVERSATIONS_ENGAGED] = {"caredesk_conversations_engaged_total", "",
                                       "Conversations with at least one customer message."},
    [METRICS_CONVERSATIONS_ESCALATED] = {"caredesk_conversations_escalated_total", "",
                                         "Of those, the conversations handed off to a person."},
    [METRICS_HTTP_2XX] = {"caredesk_http_responses_total", "{code=\"2xx\"}",
                          "HTTP responses, by status class."},
    [METRICS_HTTP_3XX] = {"caredesk_http_responses_total", "{code=\"3xx\"}", ""},
    [METRICS_HTTP_4XX] = {"caredesk_http_responses_total", "{code=\"4xx\"}", ""},
    [METRICS_HTTP_5XX] = {"caredesk_http_responses_total", "{code=\"5xx\"}", ""},
    [METRICS_STORE_ERRORS] = {"caredesk_store_errors_total", "", "Group commits that failed."},
    [METRICS_CONVERSATIONS_STARTED] = {"caredesk_conversations_total", "",
                                       "Conversations started."},
    [METRICS_MESSAGES_STORED] = {"caredesk_messages_stored_total", "{sender=\"customer\"}",
                                 "Messages stored, by sender."},
    [METRICS_AGENT_MESSAGES_STORED] = {"caredesk_messages_stored_total", "{sender=\"agent\"}", ""},
    [METRICS_PICKUPS] = {"caredesk_pickups_total", "{within_target=\"any\"}",
                         "Queued conversations taken by an agent; within_target=\"yes\" "
                         "counts those taken within the pickup target."},
    [METRICS_PICKUPS_WITHIN_TARGET] = {"caredesk_pickups_total", "{within_target=\"yes\"}", ""},
    [METRICS_KB_INDEX_READS] = {"caredesk_kb_index_reads_total", "",
                                "Times a language's in-memory KB index was read from the "
                                "database: once at start, then after another process changed "
                                "the KB."},
};

static const struct metric_desc gauge_desc[METRICS_N_GAUGES] = {
    [METRICS_CUSTOMER_CONNECTIONS] = {"caredesk_connections", "{kind=\"customer\"}",
                                      "Open websocket connections."},
    [METRICS_AGENT_CONNECTIONS] = {"caredesk_connections", "{kind=\"agent\"}", ""},
    [METRICS_QUEUE_LENGTH] = {"caredesk_queue_length", "",
                              "Conversations waiting for an agent (as last sent to agents)."},
    [METRICS_DEFLECTION_RATIO] =
        {"caredesk_deflection_ratio", "",
         "Share of engaged conversations never handed off (as GET /api/stats)."},
    [METRICS_KB_ARTICLES] = {"caredesk_kb_articles", "", "Published knowledge base articles."},
    [METRICS_START_TIME] = {"caredesk_start_time_seconds", "",
                            "Start time of the process since the epoch."},
    [METRICS_LONGEST_WAIT] = {"caredesk_queue_longest_wait_seconds", "",
                              "Longest wait of a conversation now in the queue."},
    [METRICS_AGENTS_ONLINE] = {"caredesk_agents", "{status=\"online\"}",
                               "Agents connected, and of those available for chats."},
    [METRICS_AGENTS_AVAILABLE] = {"caredesk_agents", "{status=\"available\"}", ""},
    [METRICS_OOS_SHARE] = {"caredesk_out_of_scope_share", "",
                           "Share of messages about something no intent covers, as the bot "
                           "measures it on recent traffic (starts at the oos-prior setting)."},
};

#define MAX_BUCKETS 14

struct histogram_desc {
    struct metric_desc d;
    double bounds[MAX_BUCKETS];
    int n_bounds;
};

static const struct histogram_desc histogram_desc[METRICS_N_HISTOGRAMS] = {
    [METRICS_WAIT_SECONDS] = {{"caredesk_wait_seconds", "",
                               "Time from handoff to an agent joining the conversation."},
                              {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
                              10},
    [METRICS_PICKUP_SECONDS] = {{"caredesk_pickup_seconds", "",
                                 "Time from handoff to the agent's first message."},
                                {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
                                10},
    [METRICS_STORE_COMMIT_SECONDS] = {{"caredesk_store_commit_seconds", "",
                                       "Duration of one group commit of the store."},
                                      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05, 0.1, 0.25, 1},
                                      12},
    [METRICS_HTTP_SECONDS] = {{"caredesk_http_request_seconds", "",
                               "Time to handle one REST request."},
                              {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                               0.1, 0.25, 1},
                              12},
};

struct histogram {
    uint64_t buckets[MAX_BUCKETS + 1]; /* last: above every bound */
    uint64_t count;
    double sum;
};

struct metrics {
    uint64_t counters[METRICS_N_COUNTERS];
    double gauges[METRICS_N_GAUGES];
    struct histogram histograms[METRICS_N_HISTOGRAMS];
};

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
    free(m);
}

void metrics_add(struct metrics *m, enum metrics_counter c, uint64_t n)
{
    if (m && c < METRICS_N_COUNTERS)
        m->counters[c] += n;
}

void metrics_counter_set(struct metrics *m, enum metrics_counter c, uint64_t total)
{
    if (m && c < METRICS_N_COUNTERS)
        m->counters[c] = total;
}

void metrics_set(struct metrics *m, enum metrics_gauge g, double v)
{
    if (m && g < METRICS_N_GAUGES)
        m->gauges[g] = v;
}

void metrics_gauge_add(struct metrics *m, enum metrics_gauge g, double delta)
{
    if (m && g < METRICS_N_GAUGES)
        m->gauges[g] += delta;
}

void metrics_observe(struct metrics *m, enum metrics_histogram h, double value)
{
    if (!m || h >= METRICS_N_HISTOGRAMS || value != value)
        return;
    const struct histogram_desc *d = &histogram_desc[h];
    struct histogram *hist = &m->histograms[h];
    int i = 0;
    while (i < d->n_bounds && value > d->bounds[i])
        i++;
    hist->buckets[i]++;
    hist->count++;
    hist->sum += value;
}

int metrics_histogram_set(struct metrics *m, enum metrics_histogram h, const double *bounds,
                          int n_bounds, const uint64_t *buckets, double sum)
{
    if (!m || h >= METRICS_N_HISTOGRAMS)
        return CD_EINVAL;
    const struct histogram_desc *d = &histogram_desc[h];
    if (n_bounds != d->n_bounds)
        return CD_EINVAL;
    for (int i = 0; i < n_bounds; i++)
        if (bounds[i] != d->bounds[i])
            return CD_EINVAL;
    struct histogram *hist = &m->histograms[h];
    hist->count = 0;
    for (int i = 0; i <= n_bounds; i++) {
        hist->buckets[i] = buckets[i];
        hist->count += buckets[i];
    }
    hist->sum = sum;
    return 0;
}

uint64_t metrics_counter(const struct metrics *m, enum metrics_counter c)
{
    return m && c < METRICS_N_COUNTERS ? m->counters[c] : 0;
}

double metrics_gauge(const struct metrics *m, enum metrics_gauge g)
{
    return m && g < METRICS_N_GAUGES ? m->gauges[g] : 0;
}

uint64_t metrics_histogram_count(const struct metrics *m, enum metrics_histogram h)
{
    return m && h < METRICS_N_HISTOGRAMS ? m->histograms[h].count : 0;
}

double metrics_histogram_sum(const struct metrics *m, enum metrics_histogram h)
{
    return m && h < METRICS_N_HISTOGRAMS ? m->histograms[h].sum : 0;
}

static int family_header(struct cd_buf *out, const struct metric_desc *d, const char *type)
{
    if (!*d->help)
        return 0; /* a further series of the family above */
    return cd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name, type);
}

/* Adds le="..." to a label set. */
static int bucket_line(struct cd_buf *out, const char *name, const char *labels, const char *le,
                       uint64_t v)
{
    if (*labels)
        return cd_buf_printf(out, "%s_bucket{%.*s,le=\"%s\"} %llu\n", name, (int)strlen(labels) - 2,
                             labels + 1, le, (unsigned long long)v);
    return cd_buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, le, (unsigned long long)v);
}

static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

int metrics_render(const struct metrics *m, struct cd_buf *out)
{
    int rc = 0;
    for (int i = 0; i < METRICS_N_COUNTERS && !rc; i++) {
        const struct metric_desc *d = &counter_desc[i];
        rc = family_header(out, d, "counter");
        if (!rc)
            rc = cd_buf_printf(out, "%s%s %llu\n", d->name, d->labels,
                               (unsigned long long)m->counters[i]);
    }
    for (int i = 0; i < METRICS_N_GAUGES && !rc; i++) {
        const struct metric_desc *d = &gauge_desc[i];
        rc = family_header(out, d, "gauge");
        if (!rc)
            rc = cd_buf_printf(out, "%s%s %.17g\n", d->name, d->labels, m->gauges[i]);
    }
    for (int i = 0; i < METRICS_N_HISTOGRAMS && !rc; i++) {
        const struct histogram_desc *hd = &histogram_desc[i];
        const struct histogram *h = &m->histograms[i];
        rc = family_header(out, &hd->d, "histogram");
        uint64_t cumulative = 0;
        for (int b = 0; b < hd->n_bounds && !rc; b++) {
            char le[32];
            snprintf(le, sizeof le, "%g", hd->bounds[b]);
            cumulative += h->buckets[b];
            rc = bucket_line(out, hd->d.name, hd->d.labels, le, cumulative);
        }
        cumulative += h->buckets[hd->n_bounds];
        if (!rc)
            rc = bucket_line(out, hd->d.name, hd->d.labels, "+Inf", cumulative);
        if (!rc)
            rc = cd_buf_printf(out, "%s_sum%s %.9g\n%s_count%s %llu\n", hd->d.name, hd->d.labels,
                               h->sum, hd->d.name, hd->d.labels, (unsigned long long)h->count);
    }
    if (!rc)
        rc = cd_buf_printf(out,
                           "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                           "# TYPE process_resident_memory_bytes gauge\n"
                           "process_resident_memory_bytes %.0f\n",
                           resident_bytes());
    return rc;
}
