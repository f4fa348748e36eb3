/* report: what a support team is measured on, computed from the store:
 * first-contact resolution (FCR), handle time (AHT), service levels per
 * queue (SLA), NPS, and the contact drivers with their escalation rate and
 * CSAT. The definitions are stated here once and in docs/metrics.md.
 *
 * DESIGN. report.c reads the store's tables on the store's connection, SQLite
 * or PostgreSQL alike, so a figure is computed where the rows are instead of
 * copying conversations into memory. Every query is
 * bounded (LIMIT); the figures over a window are meant for the dashboard's
 * few requests a minute and the weekly report, not for every message.
 * Business-hours arithmetic follows queue.c's business hours exactly (local
 * time, the same days mask and open/close minutes). */
#ifndef CD_REPORT_H
#define CD_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cd.h"

struct config;
struct store;

#define REPORT_NAME_MAX 64
#define REPORT_TOP      10

/* Business hours, as struct queue_settings has them: minutes after local
 * midnight (open == close: all day), days bit 0 = Sunday (0 = every day). */
struct report_hours {
    int open_min;
    int close_min;
    int days_mask;
};

struct report_settings {
    int fcr_window_s;        /* a return within this long counts against FCR; 0 = 7 days */
    int first_response_s;    /* default first-response (pickup) target; 0 = 60 s */
    int64_t resolution_s;    /* default resolution target, business seconds; 0 = 1 business day */
    const char *sla_targets; /* per-queue targets "billing=120/2bd,orders=60/28800"; NULL = none */
    const char *queues;      /* comma-separated queue names for the SLA rows; NULL = those seen */
    struct report_hours hours;
};

/* The settings of `caredesk serve` (config.h) that reports follow:
 * fcr-window-days, pickup-target, sla-targets, queues, business-hours.
 * The strings stay cfg's. */
void report_settings_from_config(struct report_settings *rs, const struct config *cfg);

/* Checks a per-queue SLA targets setting: "" or comma-separated
 * QUEUE=FIRST_RESPONSE_S/RESOLUTION, RESOLUTION being seconds or Nbd
 * (business days). Returns 0 or CD_EINVAL. */
int report_sla_targets_valid(const char *spec);

/* Seconds of business hours in [from_s, to_s) (0 if to_s <= from_s). */
int64_t report_business_seconds(const struct report_hours *h, int64_t from_s, int64_t to_s);

/* The length of one business day in seconds (86400 when always open). */
int64_t report_business_day_s(const struct report_hours *h);

/* A share: n_met of n, rate = n_met / n (0 when n is 0). */
struct report_rate {
    char name[REPORT_NAME_MAX];
    int64_t n;
    int64_t n_met;
    double rate;
};

/* First-contact resolution. A contact is a conversation created in the
 * window with a customer message that the bot kept (never handed off) or
 * that an agent closed. It is resolved on first contact unless the same
 * customer (same email, any case) starts another conversation with a
 * customer message about the same driver (disposition, else intent) within
 * fcr_window_s after it ended (closed, else created). */
struct report_fcr {
    int window_s;
    struct report_rate bot;   /* kept by the bot */
    struct report_rate agent; /* closed by an agent */
    struct report_rate all;
    struct report_rate *by_queue; /* agent contacts by queue, most first */
    int n_by_queue;
    struct report_rate *by_driver; /* all contacts by driver, most first */
    int n_by_driver;
};

/* Handle time of conversations an agent closed, from pickup (picked_s) to
 * close. Between pickup and the last customer or agent message, time after
 * the pickup or a customer message is active (the agent owes a reply), time
 * after an agent message is waiting on the customer; from that last message
 * to the close is wrap-up. handle_s = active + waiting + wrap. agent_time_s
 * divides every moment of the handle time among the chats the agent held at
 * that moment (two chats at once: half each), so the agent times of one
 * agent add up to the time the agent was busy. Figures are means per
 * conversation; concurrency = handle_s / agent_time_s. */
struct report_handle {
    char name[REPORT_NAME_MAX]; /* agent name, queue name, or "" for all */
    int64_t agent_id;
    int64_t n;
    double handle_s;
    double active_s;
    double waiting_s;
    double wrap_s;
    double agent_time_s;
    double concurrency;
};

struct report_aht {
    struct report_handle all;
    struct report_handle *by_agent; /* by name */
    int n_by_agent;
    struct report_handle *by_queue; /* by name */
    int n_by_queue;
};

/* Service levels of one queue. First response: handoff to pickup, in
 * business seconds; a chat not picked up counts once it is past the target
 * (breached). Resolution: handoff to close of chats an agent picked up, in
 * business seconds; an open chat counts once it is past the target. The
 * live_* figures are the chats open now (any creation time): past the
 * target (breached) or at 80% of it or more (at risk). */
struct report_sla {
    char queue[REPORT_NAME_MAX];
    int first_response_target_s;
    int64_t resolution_target_s;
    struct report_rate first_response; /* name unused */
    struct report_rate resolution;
    int64_t live_first_response_breached;
    int64_t live_first_response_at_risk;
    int64_t live_resolution_breached;
    int64_t live_resolution_at_risk;
};

/* One NPS answer with a comment, for the verbatims. */
struct report_verbatim {
    char driver[REPORT_NAME_MAX];
    int64_t conversation;
    int score;
    char *comment; /* owned */
};

/* One NPS group: promoters answered 9-10, passives 7-8, detractors 0-6;
 * score = 100 * (promoters - detractors) / answers. */
struct report_nps_group {
    char name[REPORT_NAME_MAX];
    int64_t n;
    int64_t n_promoters;
    int64_t n_passives;
    int64_t n_detractors;
    double score;
};

/* NPS over conversations created in the window with an answer. */
struct report_nps {
    struct report_nps_group all;
    struct report_nps_group *by_driver; /* most answers first */
    int n_by_driver;
    struct report_verbatim *verbatims; /* with a comment, by driver then time; at most 200 */
    int n_verbatims;
};

/* A contact driver (disposition, else intent) of conversations created in
 * the window: how many, the share handed off, and the CSAT of those rated. */
struct report_driver {
    char name[REPORT_NAME_MAX];
    int64_t n;
    double escalation_rate;
    int64_t n_ratings;
    double csat; /* mean rating 1-5, 0 if none */
};

struct report {
    int64_t since_s, until_s;
    struct report_fcr fcr;
    struct report_aht aht;
    struct report_sla *sla; /* one per queue, in the settings' order, then the others */
    int n_sla;
    struct report_nps nps;
    struct report_driver drivers[REPORT_TOP]; /* most contacts first */
    int n_drivers;
    int64_t n_qa;    /* QA audits of conversations in the window */
    double qa_score; /* their mean score in percent; -1 when there is none */
};

/* Computes every figure for conversations created in [since_s, until_s);
 * now_s is "now" for the live SLA figures and still-open chats. settings
 * may be NULL (defaults). *out is filled (clear it with report_clear(), also
 * after a failure). Returns 0 or CD_E*. */
int report_compute(struct store *s, const struct report_settings *settings, int64_t since_s,
                   int64_t until_s, int64_t now_s, struct report *out);

/* Only the live SLA rows (report.sla with just the targets and live_*
 * fields), for /metrics. *rows is malloc'd (free() it). Returns 0 or CD_E*. */
int report_live_sla(struct store *s, const struct report_settings *settings, int64_t now_s,
                    struct report_sla **rows, int *n_rows);

/* Appends the live SLA gauges in the Prometheus text format to out:
 * caredesk_sla_breached and caredesk_sla_at_risk {queue, sla}. Returns 0 or CD_E*. */
int report_render_metrics(struct store *s, const struct report_settings *settings, int64_t now_s,
                          struct cd_buf *out);

/* Stores a customer's NPS answer (score 0-10) and optional comment (already
 * redacted; NULL or "" = none) on a conversation; a second answer replaces
 * the first. Returns 0, CD_EINVAL (score out of range), CD_ENOTFOUND or CD_E*. */
int report_nps_save(struct store *s, int64_t conversation, int score, const char *comment);

/* Frees what report_compute() allocated and zeroes *r. NULL is fine. */
void report_clear(struct report *r);

/* The figures as JSON, the way GET /api/stats and `caredesk report` show
 * them: {"fcr","aht_s","aht","sla","nps","qa_score","qa_audits","driver_details"}. New
 * reference (NULL when out of memory). */
json_t *report_json(const struct report *r);

/* ---- the weekly report (report_week.c) ---- */

/* Parses an ISO 8601 week "YYYY-Www" (e.g. "2026-W49"; W01 holds the year's
 * first Thursday) into its local-time bounds: Monday 00:00 and the next
 * Monday 00:00. Returns 0, or CD_EINVAL for anything else (a week 53 the
 * year does not have included). */
int report_week_parse(const char *week, int64_t *since_s, int64_t *until_s);

/* Writes the "YYYY-Www" of the ISO week holding local time t (cap >= 9). */
void report_week_name(int64_t t, char *out, size_t cap);

/* Open handoffs at time at_s: handed off before it and not closed by then. */
int report_backlog(struct store *s, int64_t at_s, int64_t *n_out);

/* Conversations about driver (disposition, else intent) created in
 * [since_s, until_s). */
int report_driver_count(struct store *s, int64_t since_s, int64_t until_s, const char *driver,
                        int64_t *n_out);

/* Builds the weekly report of week ("YYYY-Www") as JSON, the form BI tools
 * read and the other formats are rendered from: {"week","since","until",
 * "previous_week","generated_s","kpis":[{"key","label","unit","value",
 * "previous","change"}],"service_levels":[...],"backlog":{...},"drivers":[...],
 * "unanswered":[...],"nps":{...}|null} (docs/metrics.md). *out is a new
 * reference. Returns 0, CD_EINVAL (bad week) or CD_E*. */
int report_week_build(struct store *s, const struct report_settings *settings, const char *week,
                      int64_t now_s, json_t **out);

/* Render a report_week_build() object as Markdown or as CSV (one row per
 * figure: section,name,metric,value,previous,change). Append to out.
 * Return 0 or CD_ENOMEM. */
int report_week_markdown(const json_t *week, struct cd_buf *out);
int report_week_csv(const json_t *week, struct cd_buf *out);

#endif
