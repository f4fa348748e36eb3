/* report_week: the weekly report (`caredesk report --week`, GET /api/report
 * and the printable dashboard page): service levels and backlog, the team's
 * figures against the previous week, the top 10 drivers and the top
 * unanswered questions.
 *
 * DESIGN. The report is built once, as JSON (the form a BI tool reads), and
 * the Markdown and CSV forms are rendered from that object, so the three can
 * never disagree. Weeks are ISO 8601 weeks in local time, the time zone the
 * business hours are written in. */
#include "report.h"

#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- ISO weeks ---- */

/* Local Monday 00:00 of ISO week 1 of year. */
static int64_t week_one_monday(int year)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = 0;
    tm.tm_mday = 4; /* 4 January is always in week 1 */
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    mktime(&tm);
    int back = (tm.tm_wday + 6) % 7; /* days since Monday */
    tm.tm_mday -= back;
    tm.tm_hour = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* Local midnight days after the local midnight t. */
static int64_t add_days(int64_t t, int days)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    tm.tm_mday += days;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

static int weeks_in_year(int year)
{
    int64_t a = week_one_monday(year), b = week_one_monday(year + 1);
    return (int)((b - a + 3 * 86400) / (7 * 86400));
}

int report_week_parse(const char *week, int64_t *since_s, int64_t *until_s)
{
    if (!week || strlen(week) != 8 || week[4] != '-' || week[5] != 'W')
        return CD_EINVAL;
    for (int i = 0; i < 8; i++)
        if (i != 4 && i != 5 && (week[i] < '0' || week[i] > '9'))
            return CD_EINVAL;
    int year = atoi(week), w = atoi(week + 6);
    if (year < 1970 || year > 9998 || w < 1 || w > weeks_in_year(year))
        return CD_EINVAL;
    int64_t monday = add_days(week_one_monday(year), 7 * (w - 1));
    *since_s = monday;
    *until_s = add_days(monday, 7);
    return 0;
}

void report_week_name(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    char buf[16];
    strftime(buf, sizeof buf, "%G-W%V", &tm);
    snprintf(out, cap, "%s", buf);
}

/* ---- building ---- */

static json_t *num_or_null(int has, double v)
{
    return has ? json_real(v) : json_null();
}

/* One row of "kpis": a value, last week's, and the change (null unless both exist). */
static void add_kpi(json_t *kpis, const char *key, const char *label, const char *unit, int has_now,
                    double now, int has_prev, double prev)
{
    json_t *k = json_pack("{s:s, s:s, s:s}", "key", key, "label", label, "unit", unit);
    if (!k)
        return;
    json_object_set_new(k, "value", num_or_null(has_now, now));
    json_object_set_new(k, "previous", num_or_null(has_prev, prev));
    json_object_set_new(k, "change", num_or_null(has_now && has_prev, now - prev));
    json_array_append_new(kpis, k);
}

static json_t *kpis_json(const struct report *r, const struct report *p,
                         const struct store_stats *sr, const struct store_stats *sp)
{
    json_t *k = json_array();
    if (!k)
        return NULL;
    add_kpi(k, "conversations", "Conversations", "count", 1, (double)sr->n_conversations, 1,
            (double)sp->n_conversations);
    add_kpi(k, "deflection_rate", "Resolved by the bot", "share", sr->n_conversations > 0,
            sr->deflection_rate, sp->n_conversations > 0, sp->deflection_rate);
    add_kpi(k, "escalation_rate", "Handed to a person", "share", sr->n_conversations > 0,
            sr->escalation_rate, sp->n_conversations > 0, sp->escalation_rate);
    add_kpi(k, "fcr", "First-contact resolution", "share", r->fcr.all.n > 0, r->fcr.all.rate,
            p->fcr.all.n > 0, p->fcr.all.rate);
    add_kpi(k, "aht_s", "Average handle time", "seconds", r->aht.all.n > 0, r->aht.all.handle_s,
            p->aht.all.n > 0, p->aht.all.handle_s);
    add_kpi(k, "qa_score", "QA score", "percent", r->qa_score >= 0, r->qa_score, p->qa_score >= 0,
            p->qa_score);
    add_kpi(k, "csat", "CSAT", "rating", sr->n_ratings > 0, sr->csat, sp->n_ratings > 0, sp->csat);
    add_kpi(k, "nps", "NPS", "score", r->nps.all.n > 0, r->nps.all.score, p->nps.all.n > 0,
            p->nps.all.score);
    return k;
}

static json_t *service_json(const struct report *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->n_sla && a; i++) {
        const struct report_sla *q = &r->sla[i];
        json_array_append_new(
            a,
            json_pack("{s:s, s:i, s:I, s:o, s:I, s:I, s:o, s:I}", "queue", q->queue,
                      "first_response_target_s", q->first_response_target_s, "first_response_n",
                      (json_int_t)q->first_response.n, "first_response_met_share",
                      num_or_null(q->first_response.n > 0, q->first_response.rate),
                      "resolution_target_s", (json_int_t)q->resolution_target_s, "resolution_n",
                      (json_int_t)q->resolution.n, "resolution_met_share",
                      num_or_null(q->resolution.n > 0, q->resolution.rate), "breached_now",
                      (json_int_t)(q->live_first_response_breached + q->live_resolution_breached)));
    }
    return a;
}

static int drivers_json(struct store *s, const struct report *r, int64_t prev_since,
                        int64_t prev_until, json_t **out)
{
    json_t *a = json_array();
    if (!a)
        return CD_ENOMEM;
    for (int i = 0; i < r->n_drivers; i++) {
        const struct report_driver *d = &r->drivers[i];
        int64_t prev = 0;
        int rc = report_driver_count(s, prev_since, prev_until, d->name, &prev);
        if (rc) {
            json_decref(a);
            return rc;
        }
        json_t *o =
            json_pack("{s:s, s:I, s:I, s:I, s:f, s:I}", "name", d->name, "count", (json_int_t)d->n,
                      "previous", (json_int_t)prev, "change", (json_int_t)(d->n - prev),
                      "escalation_rate", d->escalation_rate, "ratings", (json_int_t)d->n_ratings);
        if (o)
            json_object_set_new(o, "csat", num_or_null(d->n_ratings > 0, d->csat));
        json_array_append_new(a, o);
    }
    *out = a;
    return 0;
}

int report_week_build(struct store *s, const struct report_settings *settings, const char *week,
                      int64_t now_s, json_t **out)
{
    *out = NULL;
    int64_t since, until;
    if (report_week_parse(week, &since, &until))
        return CD_EINVAL;
    int64_t prev_since = add_days(since, -7);
    struct report r, p;
    struct store_stats sr, sp;
    int pickup = settings && settings->first_response_s > 0 ? settings->first_response_s : 60;
    int rc = report_compute(s, settings, since, until, now_s, &r);
    int prc = rc ? 0 : report_compute(s, settings, prev_since, since, now_s, &p);
    if (!rc && prc) {
        report_clear(&p);
        memset(&p, 0, sizeof p);
        rc = prc;
    } else if (rc) {
        memset(&p, 0, sizeof p);
    }
    if (!rc)
        rc = store_stats(s, since, until, pickup, &sr);
    if (!rc)
        rc = store_stats(s, prev_since, since, pickup, &sp);
    int64_t backlog = 0, prev_backlog = 0;
    if (!rc)
        rc = report_backlog(s, until < now_s ? until : now_s, &backlog);
    if (!rc)
        rc = report_backlog(s, since < now_s ? since : now_s, &prev_backlog);
    json_t *drivers = NULL;
    if (!rc)
        rc = drivers_json(s, &r, prev_since, since, &drivers);
    json_t *o = NULL;
    if (!rc) {
        char prev_name[16];
        report_week_name(prev_since, prev_name, sizeof prev_name);
        json_t *unanswered = json_array();
        for (int i = 0; i < sr.n_unanswered && unanswered; i++)
            json_array_append_new(unanswered,
                                  json_pack("{s:s, s:I}", "question", sr.unanswered[i].name,
                                            "count", (json_int_t)sr.unanswered[i].n));
        json_t *full = report_json(&r);
        json_t *nps = full ? json_incref(json_object_get(full, "nps")) : NULL;
        json_decref(full);
        o = json_pack("{s:s, s:I, s:I, s:s, s:I, s:o, s:o, s:{s:I, s:I}, s:o, s:o, s:o}", "week",
                      week, "since", (json_int_t)since, "until", (json_int_t)until, "previous_week",
                      prev_name, "generated_s", (json_int_t)now_s, "kpis",
                      kpis_json(&r, &p, &sr, &sp), "service_levels", service_json(&r), "backlog",
                      "open_handoffs", (json_int_t)backlog, "previous", (json_int_t)prev_backlog,
                      "drivers", drivers, "unanswered", unanswered, "nps", nps ? nps : json_null());
        drivers = NULL; /* "o" owns it now, or it was freed with the failed pack */
        if (!o)
            rc = CD_ENOMEM;
    }
    json_decref(drivers);
    report_clear(&r);
    report_clear(&p);
    *out = o;
    return rc;
}

/* ---- rendering ---- */

static double real_of(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* Writes value v in unit u ("share", "seconds", "percent", "rating", "score",
 * "count"); "–" for null. is_change: a signed difference. */
static void fmt_value(char *buf, size_t cap, const char *u, const json_t *v, int is_change)
{
    if (!v || json_is_null(v)) {
        snprintf(buf, cap, "–");
        return;
    }
    double x = real_of(v);
    const char *sign = is_change && x > 0 ? "+" : "";
    if (!strcmp(u, "share"))
        snprintf(buf, cap, is_change ? "%s%.1f pts" : "%s%.1f%%", sign, 100 * x);
    else if (!strcmp(u, "seconds"))
        snprintf(buf, cap, "%s%.0f s", sign, x);
    else if (!strcmp(u, "percent"))
        snprintf(buf, cap, is_change ? "%s%.1f pts" : "%s%.1f%%", sign, x);
    else if (!strcmp(u, "rating"))
        snprintf(buf, cap, is_change ? "%s%.2f" : "%s%.2f / 5", sign, x);
    else
        snprintf(buf, cap, "%s%.0f", sign, x);
}

/* Customer text inside a Markdown table cell: no pipe, no line break. */
static int md_cell(struct cd_buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s ? s : ""; *p && !rc; p++) {
        if (*p == '|')
            rc = cd_buf_puts(b, "\\|");
        else if (*p == '\n' || *p == '\r' || *p == '\t')
            rc = cd_buf_puts(b, " ");
        else
            rc = cd_buf_append(b, p, 1);
    }
    return rc;
}

static void day_name(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, cap, "%a %-d %b %Y", &tm);
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int64_t int_of(const json_t *o, const char *key)
{
    return (int64_t)real_of(json_object_get(o, key));
}

int report_week_markdown(const json_t *w, struct cd_buf *b)
{
    char from[32], to[32], v1[48], v2[48], v3[48];
    day_name(int_of(w, "since"), from, sizeof from);
    day_name(int_of(w, "until") - 86400 / 2, to, sizeof to);
    int rc = cd_buf_printf(b, "# Weekly report %s\n\n%s to %s, compared with %s.\n\n",
                           str_of(w, "week"), from, to, str_of(w, "previous_week"));

    rc = rc ? rc
            : cd_buf_puts(b, "## Service levels and backlog\n\n"
                             "| Queue | First response target | Met | Resolution target | Met |\n"
                             "| --- | ---: | ---: | ---: | ---: |\n");
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(w, "service_levels"), i, q)
    {
        fmt_value(v1, sizeof v1, "share", json_object_get(q, "first_response_met_share"), 0);
        fmt_value(v2, sizeof v2, "share", json_object_get(q, "resolution_met_share"), 0);
        if (!rc)
            rc = cd_buf_printf(b, "| %s | %lld s | %s of %lld | %.1f h | %s of %lld |\n",
                               str_of(q, "queue"), (long long)int_of(q, "first_response_target_s"),
                               v1, (long long)int_of(q, "first_response_n"),
                               (double)int_of(q, "resolution_target_s") / 3600, v2,
                               (long long)int_of(q, "resolution_n"));
    }
    const json_t *bl = json_object_get(w, "backlog");
    if (!rc)
        rc = cd_buf_printf(b,
                           "\nBacklog: %lld open handoffs at the end of the week (%lld at its "
                           "start).\n\n",
                           (long long)int_of(bl, "open_handoffs"),
                           (long long)int_of(bl, "previous"));

    rc = rc ? rc
            : cd_buf_puts(b, "## The team's figures\n\n"
                             "| Figure | This week | Previous week | Change |\n"
                             "| --- | ---: | ---: | ---: |\n");
    json_t *k;
    json_array_foreach(json_object_get(w, "kpis"), i, k)
    {
        const char *u = str_of(k, "unit");
        fmt_value(v1, sizeof v1, u, json_object_get(k, "value"), 0);
        fmt_value(v2, sizeof v2, u, json_object_get(k, "previous"), 0);
        fmt_value(v3, sizeof v3, u, json_object_get(k, "change"), 1);
        if (!rc)
            rc = cd_buf_printf(b, "| %s | %s | %s | %s |\n", str_of(k, "label"), v1, v2, v3);
    }

    rc = rc ? rc
            : cd_buf_puts(b, "\n## Top 10 contact drivers\n\n"
                             "| # | Driver | Contacts | Change | Escalation rate | CSAT |\n"
                             "| ---: | --- | ---: | ---: | ---: | ---: |\n");
    json_t *d;
    json_array_foreach(json_object_get(w, "drivers"), i, d)
    {
        fmt_value(v1, sizeof v1, "share", json_object_get(d, "escalation_rate"), 0);
        fmt_value(v2, sizeof v2, "rating", json_object_get(d, "csat"), 0);
        if (!rc)
            rc = cd_buf_printf(b, "| %zu | ", i + 1);
        rc = rc ? rc : md_cell(b, str_of(d, "name"));
        if (!rc)
            rc = cd_buf_printf(b, " | %lld | %+lld | %s | %s |\n", (long long)int_of(d, "count"),
                               (long long)int_of(d, "change"), v1, v2);
    }
    if (!rc && json_array_size(json_object_get(w, "drivers")) == 0)
        rc = cd_buf_puts(b, "| | (none this week) | | | | |\n");

    rc = rc ? rc
            : cd_buf_puts(b, "\n## Top unanswered questions\n\n| Question | Asked |\n"
                             "| --- | ---: |\n");
    json_t *u;
    json_array_foreach(json_object_get(w, "unanswered"), i, u)
    {
        rc = rc ? rc : cd_buf_puts(b, "| ");
        rc = rc ? rc : md_cell(b, str_of(u, "question"));
        if (!rc)
            rc = cd_buf_printf(b, " | %lld |\n", (long long)int_of(u, "count"));
    }
    if (!rc && json_array_size(json_object_get(w, "unanswered")) == 0)
        rc = cd_buf_puts(b, "| (none this week) | |\n");

    /* What customers said with their NPS answer, by driver. */
    const json_t *nps = json_object_get(w, "nps");
    json_t *g;
    if (!rc && json_is_object(nps))
        rc = cd_buf_printf(b, "\n## NPS verbatims by driver\n\nNPS %.0f from %lld answers.\n",
                           real_of(json_object_get(nps, "score")), (long long)int_of(nps, "n"));
    json_array_foreach(json_is_object(nps) ? json_object_get(nps, "by_driver") : NULL, i, g)
    {
        json_t *verbatims = json_object_get(g, "verbatims");
        if (rc || json_array_size(verbatims) == 0)
            continue;
        rc = cd_buf_puts(b, "\n### ");
        rc = rc ? rc : md_cell(b, str_of(g, "name"));
        if (!rc)
            rc = cd_buf_printf(b, " (NPS %.0f, %lld answers)\n\n",
                               real_of(json_object_get(g, "score")), (long long)int_of(g, "n"));
        size_t vi;
        json_t *v;
        json_array_foreach(verbatims, vi, v)
        {
            if (!rc)
                rc = cd_buf_printf(b, "- %lld: ", (long long)int_of(v, "score"));
            rc = rc ? rc : md_cell(b, str_of(v, "comment"));
            rc = rc ? rc : cd_buf_puts(b, "\n");
        }
    }
    return rc;
}

/* A CSV field: quoted when it holds a comma, quote or line break; text that
 * a spreadsheet would run as a formula (= + - @ first) gets a leading '. */
static int csv_field(struct cd_buf *b, const char *s, int is_text)
{
    s = s ? s : "";
    int is_formula = is_text && (*s == '=' || *s == '+' || *s == '-' || *s == '@');
    int needs_quotes = is_formula || strpbrk(s, ",\"\r\n") != NULL;
    int rc = needs_quotes ? cd_buf_puts(b, "\"") : 0;
    if (!rc && is_formula)
        rc = cd_buf_puts(b, "'");
    for (const char *p = s; *p && !rc; p++)
        rc = *p == '"' ? cd_buf_puts(b, "\"\"") : cd_buf_append(b, p, 1);
    if (!rc && needs_quotes)
        rc = cd_buf_puts(b, "\"");
    return rc;
}

static void csv_num(char *buf, size_t cap, const json_t *v)
{
    if (!v || json_is_null(v))
        buf[0] = '\0';
    else if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, cap, "%.6g", json_real_value(v));
}

static int csv_row(struct cd_buf *b, const char *section, const char *name, const char *metric,
                   const json_t *value, const json_t *previous, const json_t *change)
{
    char v[40], p[40], c[40];
    csv_num(v, sizeof v, value);
    csv_num(p, sizeof p, previous);
    csv_num(c, sizeof c, change);
    int rc = cd_buf_printf(b, "%s,", section);
    rc = rc ? rc : csv_field(b, name, 1);
    return rc ? rc : cd_buf_printf(b, ",%s,%s,%s,%s\r\n", metric, v, p, c);
}

int report_week_csv(const json_t *w, struct cd_buf *b)
{
    int rc = cd_buf_puts(b, "section,name,metric,value,previous,change\r\n");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(w, "kpis"), i, k)
    {
        if (!rc)
            rc = csv_row(b, "kpi", str_of(k, "key"), str_of(k, "unit"), json_object_get(k, "value"),
                         json_object_get(k, "previous"), json_object_get(k, "change"));
    }
    json_t *q;
    static const char *const sla_fields[] = {
        "first_response_target_s",
        "first_response_n",
        "first_response_met_share",
        "resolution_target_s",
        "resolution_n",
        "resolution_met_share",
        "breached_now",
    };
    json_array_foreach(json_object_get(w, "service_levels"), i, q)
    {
        for (size_t f = 0; f < sizeof sla_fields / sizeof sla_fields[0] && !rc; f++)
            rc = csv_row(b, "sla", str_of(q, "queue"), sla_fields[f],
                         json_object_get(q, sla_fields[f]), NULL, NULL);
    }
    const json_t *bl = json_object_get(w, "backlog");
    if (!rc)
        rc = csv_row(b, "backlog", "", "open_handoffs", json_object_get(bl, "open_handoffs"),
                     json_object_get(bl, "previous"), NULL);
    json_t *d;
    json_array_foreach(json_object_get(w, "drivers"), i, d)
    {
        const char *name = str_of(d, "name");
        if (!rc)
            rc = csv_row(b, "driver", name, "count", json_object_get(d, "count"),
                         json_object_get(d, "previous"), json_object_get(d, "change"));
        if (!rc)
            rc = csv_row(b, "driver", name, "escalation_rate",
                         json_object_get(d, "escalation_rate"), NULL, NULL);
        if (!rc)
            rc = csv_row(b, "driver", name, "csat", json_object_get(d, "csat"), NULL, NULL);
    }
    json_t *u;
    json_array_foreach(json_object_get(w, "unanswered"), i, u)
    {
        if (!rc)
            rc = csv_row(b, "unanswered", str_of(u, "question"), "count",
                         json_object_get(u, "count"), NULL, NULL);
    }
    return rc;
}
