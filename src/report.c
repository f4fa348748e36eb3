/* report: FCR, handle time, SLAs per queue, NPS and the drivers' figures,
 * computed from the store's tables (see report.h for every definition).
 *
 * DESIGN. The queries run on the store's connection (store_db.h), SQLite or
 * PostgreSQL, and are prepared per call: a report is asked for a few times a
 * minute at most, and a statement kept for the life of the connection would
 * tie this module's schema knowledge into store.c. Where the dialects differ
 * (a boolean sum, a case-insensitive match, an alias in WHERE) a query has a
 * PostgreSQL text of its own beside SQLite's. Each query has a LIMIT. Figures
 * that need arithmetic SQL does badly (business hours, concurrency, the
 * message timeline of a chat) are computed here from bounded row sets. */
#include "report.h"

#include "config.h"
#include "store_db.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_FCR_WINDOW_S     (7 * 86400)
#define DEFAULT_FIRST_RESPONSE_S 60
#define MAX_ROWS                 100000
#define MAX_MESSAGES_PER_CHAT    5000
#define MAX_VERBATIMS            200
#define AT_RISK_SHARE            0.8

/* The population every window figure starts from: created in [?1, ?2) with
 * at least one customer message (as store_stats() counts conversations). */
#define WINDOW                                                                                     \
    " c.created_s >= ?1 AND c.created_s < ?2 AND EXISTS (SELECT 1 FROM messages m"                 \
    " WHERE m.conversation = c.id AND m.sender = 'customer')"
#define DRIVER_OF(t)                                                                               \
    "(CASE WHEN " t ".disposition <> '' THEN " t ".disposition ELSE " t ".intent END)"

/* ---- business hours ---- */

static int always_open(const struct report_hours *h)
{
    return h->open_min == h->close_min && (h->days_mask == 0 || h->days_mask == 0x7f);
}

int64_t report_business_day_s(const struct report_hours *h)
{
    if (h->open_min == h->close_min)
        return 86400;
    if (h->open_min < h->close_min)
        return (int64_t)(h->close_min - h->open_min) * 60;
    return (int64_t)(1440 - h->open_min + h->close_min) * 60;
}

static int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
    int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* Local midnight of the day that contains t, and of the day after it. */
static int64_t local_midnight(int64_t t, int day_offset, int *wday)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday += day_offset;
    tm.tm_isdst = -1;
    time_t m = mktime(&tm);
    if (wday)
        *wday = tm.tm_wday;
    return (int64_t)m;
}

int64_t report_business_seconds(const struct report_hours *h, int64_t from_s, int64_t to_s)
{
    if (to_s <= from_s)
        return 0;
    if (always_open(h))
        return to_s - from_s;
    int mask = h->days_mask ? h->days_mask : 0x7f;
    int64_t total = 0;
    int wday;
    int64_t day = local_midnight(from_s, 0, &wday);
    /* At most ten years of days: a bound, not a limit anyone meets. */
    for (int i = 0; i < 3660 && day < to_s; i++) {
        int next_wday;
        int64_t next = local_midnight(day, 1, &next_wday);
        if (next <= day)
            break;
        if (mask & (1 << wday)) {
            int64_t open = day + (int64_t)h->open_min * 60,
                    close = day + (int64_t)h->close_min * 60;
            if (h->open_min == h->close_min)
                total += overlap(day, next, from_s, to_s);
            else if (h->open_min < h->close_min)
                total += overlap(open, close, from_s, to_s);
            else /* past midnight: the early hours and the evening of the same day */
                total += overlap(day, close, from_s, to_s) + overlap(open, next, from_s, to_s);
        }
        day = next;
        wday = next_wday;
    }
    return total;
}

void report_settings_from_config(struct report_settings *rs, const struct config *cfg)
{
    memset(rs, 0, sizeof *rs);
    rs->fcr_window_s = cfg->fcr_window_days * 86400;
    rs->first_response_s = cfg->pickup_target_s;
    rs->sla_targets = cfg->sla_targets;
    rs->queues = cfg->queues;
    rs->hours.open_min = cfg->business_open_min;
    rs->hours.close_min = cfg->business_close_min;
    rs->hours.days_mask = cfg->business_days_mask;
}

/* ---- SLA targets ---- */

/* Parses one "QUEUE=FIRST/RESOLUTION" item of n bytes. Returns 0 or CD_EINVAL. */
static int parse_target(const char *item, size_t n, const struct report_hours *h, char *queue,
                        size_t queue_cap, int *first_s, int64_t *resolution_s)
{
    char buf[REPORT_NAME_MAX + 48];
    if (n == 0 || n >= sizeof buf)
        return CD_EINVAL;
    memcpy(buf, item, n);
    buf[n] = '\0';
    char *eq = strchr(buf, '='), *slash = eq ? strchr(eq, '/') : NULL;
    if (!eq || !slash || eq == buf || (size_t)(eq - buf) >= queue_cap)
        return CD_EINVAL;
    *eq = '\0';
    *slash = '\0';
    for (const char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return CD_EINVAL;
    char *end;
    long first = strtol(eq + 1, &end, 10);
    if (end == eq + 1 || *end || first < 1 || first > 30 * 86400)
        return CD_EINVAL;
    double res = strtod(slash + 1, &end);
    if (end == slash + 1 || res <= 0)
        return CD_EINVAL;
    int64_t res_s;
    if (!strcmp(end, "bd")) {
        if (res > 365)
            return CD_EINVAL;
        res_s = (int64_t)(res * (double)report_business_day_s(h) + 0.5);
    } else if (!*end && res == (double)(int64_t)res && res <= 365.0 * 86400) {
        res_s = (int64_t)res;
    } else {
        return CD_EINVAL;
    }
    memcpy(queue, buf, (size_t)(eq - buf) + 1);
    *first_s = (int)first;
    *resolution_s = res_s;
    return 0;
}

/* The next item of the comma-separated targets list at *p, parsed into queue, first_s and
 * resolution_s; *p moves past it. Returns 1 for an item, 0 at the end of the list, or
 * CD_EINVAL for an item that does not parse. */
static int next_target(const char **p, const struct report_hours *h, char *queue, size_t queue_cap,
                       int *first_s, int64_t *resolution_s)
{
    const char *item = *p;
    while (*item == ' ' || *item == ',')
        item++;
    size_t n = strcspn(item, ",");
    *p = item + n;
    if (!*item)
        return 0;
    while (n > 0 && item[n - 1] == ' ')
        n--;
    return parse_target(item, n, h, queue, queue_cap, first_s, resolution_s) ? CD_EINVAL : 1;
}

int report_sla_targets_valid(const char *spec)
{
    static const struct report_hours always = {0, 0, 0};
    const char *p = spec ? spec : "";
    char queue[REPORT_NAME_MAX];
    int first, rc;
    int64_t res;
    while ((rc = next_target(&p, &always, queue, sizeof queue, &first, &res)) == 1)
        continue;
    return rc;
}

/* The targets of queue: its item in settings->sla_targets, else the defaults. */
static void targets_for(const struct report_settings *rs, const char *queue, int *first_s,
                        int64_t *resolution_s)
{
    *first_s = rs->first_response_s > 0 ? rs->first_response_s : DEFAULT_FIRST_RESPONSE_S;
    *resolution_s = rs->resolution_s > 0 ? rs->resolution_s : report_business_day_s(&rs->hours);
    const char *p = rs->sla_targets ? rs->sla_targets : "";
    char name[REPORT_NAME_MAX];
    int f, rc;
    int64_t r;
    while ((rc = next_target(&p, &rs->hours, name, sizeof name, &f, &r)) != 0) {
        if (rc == 1 && !strcmp(name, queue)) {
            *first_s = f;
            *resolution_s = r;
            return;
        }
    }
}

/* ---- small growable arrays ---- */

/* Appends a zeroed row of size bytes to *items (n rows, room for *cap), with name copied into
 * the char[name_cap] at name_offset. Returns the row, or NULL when out of memory (nothing
 * added). */
static void *row_append(void **items, int *n, int *cap, size_t size, size_t name_offset,
                        size_t name_cap, const char *name)
{
    if (cd_grow(items, cap, *n, size, 8))
        return NULL;
    char *row = (char *)*items + (size_t)(*n)++ * size;
    memset(row, 0, size);
    snprintf(row + name_offset, name_cap, "%s", name);
    return row;
}

/* row_append() for an array of type whose name is in its char[] field. */
#define ROW_APPEND(items, n, cap, type, field, name)                                               \
    ((type *)row_append((void **)(items), (n), (cap), sizeof(type), offsetof(type, field),         \
                        sizeof(((type *)0)->field), (name)))

/* The rate named name in *items (added, zeroed, if missing), or NULL when out of memory. */
static struct report_rate *rate_row(struct report_rate **items, int *n, int *cap, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*items)[i].name, name))
            return &(*items)[i];
    return ROW_APPEND(items, n, cap, struct report_rate, name, name);
}

static void rate_add(struct report_rate *r, int is_met)
{
    r->n++;
    r->n_met += is_met != 0;
}

static void rate_finish(struct report_rate *r)
{
    r->rate = r->n > 0 ? (double)r->n_met / (double)r->n : 0;
}

static int rate_cmp(const void *a, const void *b)
{
    const struct report_rate *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void rates_finish(struct report_rate *items, int n)
{
    for (int i = 0; i < n; i++)
        rate_finish(&items[i]);
    if (n > 1)
        qsort(items, (size_t)n, sizeof *items, rate_cmp);
}

/* ---- statements ---- */

static void col_name(char *dst, size_t cap, struct db_stmt *stmt, int col)
{
    snprintf(dst, cap, "%s", db_col_str(stmt, col));
}

/* ---- FCR ---- */

/* One row per contact of the window: its queue, driver, whether an agent had it, and whether
 * the customer came back about the same driver within ?3 seconds of its close. same_email
 * matches the return's email (r) to the contact's (c) in any case; latest is the later of the
 * contact's close and creation. */
#define FCR_SQL(same_email, latest)                                                                \
    "SELECT c.queue, " DRIVER_OF(                                                                  \
        "c") " AS d, c.queued_s > 0,"                                                              \
             " c.customer_email IS NOT NULL AND c.customer_email <> '' AND EXISTS (SELECT 1"       \
             " FROM conversations r WHERE " same_email                                             \
             " AND r.id <> c.id AND (r.created_s > c.created_s"                                    \
             " OR (r.created_s = c.created_s AND r.id > c.id)) AND r.created_s <= " latest " + ?3" \
             " AND " DRIVER_OF("r") " = " DRIVER_OF(                                               \
                 "c") " AND EXISTS (SELECT 1 FROM messages m"                                      \
                      " WHERE m.conversation = r.id AND m.sender = 'customer'))"                   \
                      " FROM conversations c WHERE" WINDOW                                         \
                      " AND (c.queued_s = 0 OR (c.picked_s > 0"                                    \
                      " AND c.agent_id > 0 AND c.state IN ('closed', 'rated'))) LIMIT ?4"

static int compute_fcr(struct store *s, const struct report_settings *rs, int64_t since_s,
                       int64_t until_s, struct report_fcr *out)
{
    static const char sql[] = FCR_SQL("r.customer_email = c.customer_email COLLATE NOCASE",
                                      "max(c.closed_s, c.created_s)");
    static const char pg_sql[] = FCR_SQL("lower(r.customer_email) = lower(c.customer_email)",
                                         "greatest(c.closed_s, c.created_s)");
    out->window_s = rs->fcr_window_s > 0 ? rs->fcr_window_s : DEFAULT_FCR_WINDOW_S;
    snprintf(out->bot.name, sizeof out->bot.name, "bot");
    snprintf(out->agent.name, sizeof out->agent.name, "agent");
    snprintf(out->all.name, sizeof out->all.name, "all");
    struct db_stmt *stmt = store_db_prepare_window(s, sql, pg_sql, since_s, until_s);
    if (!stmt)
        return CD_EIO;
    int rc;
    db_bind_int64(stmt, 3, out->window_s);
    db_bind_int64(stmt, 4, MAX_ROWS);
    int cap_q = 0, cap_d = 0;
    while ((rc = db_step(stmt)) == DB_ROW) {
        char queue[REPORT_NAME_MAX], driver[REPORT_NAME_MAX];
        col_name(queue, sizeof queue, stmt, 0);
        col_name(driver, sizeof driver, stmt, 1);
        int is_agent = db_col_int(stmt, 2);
        int is_resolved = !db_col_int(stmt, 3);
        rate_add(is_agent ? &out->agent : &out->bot, is_resolved);
        rate_add(&out->all, is_resolved);
        struct report_rate *r = NULL;
        if (is_agent && !(r = rate_row(&out->by_queue, &out->n_by_queue, &cap_q, queue)))
            break;
        if (r)
            rate_add(r, is_resolved);
        if (!(r = rate_row(&out->by_driver, &out->n_by_driver, &cap_d, driver)))
            break;
        rate_add(r, is_resolved);
    }
    rc = rc == DB_ROW ? CD_ENOMEM : store_db_step_status(rc);
    db_finalize(stmt);
    rate_finish(&out->bot);
    rate_finish(&out->agent);
    rate_finish(&out->all);
    rates_finish(out->by_queue, out->n_by_queue);
    rates_finish(out->by_driver, out->n_by_driver);
    return rc;
}

/* ---- handle time ---- */

struct handled {
    int64_t agent_id;
    char agent[REPORT_NAME_MAX];
    char queue[REPORT_NAME_MAX];
    int64_t picked_s, closed_s;
    double active_s, waiting_s, wrap_s, agent_time_s;
};

struct interval {
    int64_t agent_id;
    int64_t from_s, to_s;
};

static int interval_cmp(const void *a, const void *b)
{
    const struct interval *x = a, *y = b;
    if (x->agent_id != y->agent_id)
        return x->agent_id < y->agent_id ? -1 : 1;
    if (x->from_s != y->from_s)
        return x->from_s < y->from_s ? -1 : 1;
    return 0;
}

/* Splits one chat's handle time into active, waiting and wrap-up from its
 * customer and agent messages between pickup and close. */
static int timeline(struct db_stmt *msgs, int64_t conversation, struct handled *h)
{
    db_bind_int64(msgs, 1, conversation);
    db_bind_int64(msgs, 2, h->picked_s);
    db_bind_int64(msgs, 3, h->closed_s);
    db_bind_int64(msgs, 4, MAX_MESSAGES_PER_CHAT);
    int64_t t = h->picked_s;
    int is_agent_turn = 1;
    int rc;
    while ((rc = db_step(msgs)) == DB_ROW) {
        int is_agent = db_col_int(msgs, 0);
        int64_t at = db_col_int64(msgs, 1);
        if (at < t)
            at = t;
        if (is_agent_turn)
            h->active_s += (double)(at - t);
        else
            h->waiting_s += (double)(at - t);
        t = at;
        is_agent_turn = !is_agent;
    }
    db_reset(msgs);
    h->wrap_s = (double)(h->closed_s - t);
    return store_db_step_status(rc);
}

/* Every chat an agent held that overlaps [from_s, to_s): closed ones, and
 * those still with an agent (until now_s). *out is malloc'd. */
static int load_intervals(struct store *s, int64_t from_s, int64_t to_s, int64_t now_s,
                          struct interval **out, int *n_out)
{
    static const char sql[] =
        "SELECT agent_id, picked_s, closed_s FROM conversations"
        " WHERE closed_s > ?1 AND picked_s > 0 AND picked_s < ?2 AND agent_id > 0"
        " UNION ALL SELECT agent_id, picked_s, CAST(?3 AS BIGINT) FROM conversations"
        " WHERE state = 'with_agent' AND picked_s > 0 AND picked_s < ?2 AND agent_id > 0"
        " LIMIT ?4";
    *out = NULL;
    *n_out = 0;
    int cap = 0;
    struct db_stmt *stmt = store_db_prepare_window(s, sql, NULL, from_s, to_s);
    if (!stmt)
        return CD_EIO;
    int rc;
    db_bind_int64(stmt, 3, now_s);
    db_bind_int64(stmt, 4, 2 * MAX_ROWS);
    while ((rc = db_step(stmt)) == DB_ROW) {
        if (cd_grow(out, &cap, *n_out, sizeof **out, 8))
            break;
        struct interval *iv = &(*out)[(*n_out)++];
        iv->agent_id = db_col_int64(stmt, 0);
        iv->from_s = db_col_int64(stmt, 1);
        iv->to_s = db_col_int64(stmt, 2);
        if (iv->to_s < iv->from_s)
            iv->to_s = iv->from_s;
    }
    rc = rc == DB_ROW ? CD_ENOMEM : store_db_step_status(rc);
    db_finalize(stmt);
    if (*n_out > 1)
        qsort(*out, (size_t)*n_out, sizeof **out, interval_cmp);
    return rc;
}

/* The agent time of h: each second of its handle time divided by the number
 * of the agent's chats open at that second. iv is sorted by agent, then
 * start; [lo, hi) are the agent's intervals. */
static double agent_time(const struct handled *h, const struct interval *iv, int lo, int hi)
{
    if (h->closed_s <= h->picked_s)
        return 0;
    /* The points where the number of open chats changes, within h. */
    int64_t pts[2 * 64 + 2];
    int n_pts = 0;
    pts[n_pts++] = h->picked_s;
    pts[n_pts++] = h->closed_s;
    double total = 0;
    int is_exact = 1;
    for (int i = lo; i < hi && iv[i].from_s < h->closed_s; i++) {
        if (iv[i].to_s <= h->picked_s)
            continue;
        if (n_pts + 2 > (int)(sizeof pts / sizeof pts[0])) {
            is_exact = 0;
            break;
        }
        if (iv[i].from_s > h->picked_s)
            pts[n_pts++] = iv[i].from_s;
        if (iv[i].to_s < h->closed_s)
            pts[n_pts++] = iv[i].to_s;
    }
    if (!is_exact) /* more overlapping chats than anyone holds: count it alone */
        return (double)(h->closed_s - h->picked_s);
    /* Insertion sort: a handful of points. */
    for (int i = 1; i < n_pts; i++)
        for (int j = i; j > 0 && pts[j - 1] > pts[j]; j--) {
            int64_t t = pts[j];
            pts[j] = pts[j - 1];
            pts[j - 1] = t;
        }
    for (int k = 0; k + 1 < n_pts; k++) {
        int64_t a = pts[k], b = pts[k + 1];
        if (b <= a)
            continue;
        int n_open = 0;
        for (int i = lo; i < hi && iv[i].from_s < b; i++)
            if (iv[i].from_s <= a && iv[i].to_s >= b)
                n_open++;
        total += (double)(b - a) / (double)(n_open > 0 ? n_open : 1);
    }
    return total;
}

static struct report_handle *handle_row(struct report_handle **items, int *n, int *cap,
                                        const char *name, int64_t agent_id)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*items)[i].name, name) && (*items)[i].agent_id == agent_id)
            return &(*items)[i];
    struct report_handle *r = ROW_APPEND(items, n, cap, struct report_handle, name, name);
    if (r)
        r->agent_id = agent_id;
    return r;
}

/* Sums (means are taken in handle_finish()). */
static void handle_add(struct report_handle *r, const struct handled *h)
{
    r->n++;
    r->handle_s += (double)(h->closed_s - h->picked_s);
    r->active_s += h->active_s;
    r->waiting_s += h->waiting_s;
    r->wrap_s += h->wrap_s;
    r->agent_time_s += h->agent_time_s;
}

static void handle_finish(struct report_handle *r)
{
    r->concurrency = r->agent_time_s > 0 ? r->handle_s / r->agent_time_s : (r->n ? 1 : 0);
    if (r->n > 0) {
        double n = (double)r->n;
        r->handle_s /= n;
        r->active_s /= n;
        r->waiting_s /= n;
        r->wrap_s /= n;
        r->agent_time_s /= n;
    }
}

static int handle_name_cmp(const void *a, const void *b)
{
    const struct report_handle *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->agent_id > y->agent_id) - (x->agent_id < y->agent_id);
}

static int compute_aht(struct store *s, int64_t since_s, int64_t until_s, int64_t now_s,
                       struct report_aht *out)
{
    static const char sql[] =
        "SELECT c.id, c.agent_id, coalesce(u.name, '#' || c.agent_id), c.queue, c.picked_s,"
        " c.closed_s FROM conversations c LEFT JOIN users u ON u.id = c.agent_id"
        " WHERE" WINDOW " AND c.agent_id > 0 AND c.picked_s > 0 AND c.closed_s >= c.picked_s"
        " AND c.state IN ('closed', 'rated') ORDER BY c.id LIMIT ?3";
    static const char msg_sql[] =
        "SELECT sender = 'agent', created_s FROM messages WHERE conversation = ?1"
        " AND seq > 0 AND sender IN ('customer', 'agent') AND created_s >= ?2"
        " AND created_s <= ?3 ORDER BY seq LIMIT ?4";
    struct handled *hs = NULL;
    struct interval *iv = NULL;
    int n_hs = 0, cap_hs = 0, n_iv = 0;
    struct db_stmt *stmt = store_db_prepare_window(s, sql, NULL, since_s, until_s),
                   *msgs = store_db_prepare(s, msg_sql, NULL);
    int rc = stmt && msgs ? 0 : CD_EIO;
    if (rc)
        goto done;
    db_bind_int64(stmt, 3, MAX_ROWS);
    int64_t min_picked = INT64_MAX, max_closed = 0;
    while ((rc = db_step(stmt)) == DB_ROW) {
        if (cd_grow(&hs, &cap_hs, n_hs, sizeof *hs, 8))
            break;
        struct handled *h = &hs[n_hs++];
        memset(h, 0, sizeof *h);
        int64_t id = db_col_int64(stmt, 0);
        h->agent_id = db_col_int64(stmt, 1);
        col_name(h->agent, sizeof h->agent, stmt, 2);
        col_name(h->queue, sizeof h->queue, stmt, 3);
        h->picked_s = db_col_int64(stmt, 4);
        h->closed_s = db_col_int64(stmt, 5);
        if (h->picked_s < min_picked)
            min_picked = h->picked_s;
        if (h->closed_s > max_closed)
            max_closed = h->closed_s;
        int trc = timeline(msgs, id, h);
        if (trc) {
            rc = trc;
            break;
        }
    }
    rc = rc == DB_ROW ? CD_ENOMEM : store_db_step_status(rc);
    if (rc || n_hs == 0)
        goto done;
    rc = load_intervals(s, min_picked, max_closed, now_s, &iv, &n_iv);
    if (rc)
        goto done;
    int cap_a = 0, cap_q = 0;
    for (int i = 0; i < n_hs; i++) {
        struct handled *h = &hs[i];
        int lo = 0, hi;
        while (lo < n_iv && iv[lo].agent_id < h->agent_id)
            lo++;
        for (hi = lo; hi < n_iv && iv[hi].agent_id == h->agent_id;)
            hi++;
        h->agent_time_s = agent_time(h, iv, lo, hi);
        struct report_handle *a =
            handle_row(&out->by_agent, &out->n_by_agent, &cap_a, h->agent, h->agent_id);
        struct report_handle *q = handle_row(&out->by_queue, &out->n_by_queue, &cap_q, h->queue, 0);
        if (!a || !q) {
            rc = CD_ENOMEM;
            goto done;
        }
        handle_add(a, h);
        handle_add(q, h);
        handle_add(&out->all, h);
    }
    handle_finish(&out->all);
    for (int i = 0; i < out->n_by_agent; i++)
        handle_finish(&out->by_agent[i]);
    for (int i = 0; i < out->n_by_queue; i++)
        handle_finish(&out->by_queue[i]);
    if (out->n_by_agent > 1)
        qsort(out->by_agent, (size_t)out->n_by_agent, sizeof *out->by_agent, handle_name_cmp);
    if (out->n_by_queue > 1)
        qsort(out->by_queue, (size_t)out->n_by_queue, sizeof *out->by_queue, handle_name_cmp);
done:
    db_finalize(stmt);
    db_finalize(msgs);
    free(hs);
    free(iv);
    return rc;
}

/* ---- SLAs ---- */

static struct report_sla *sla_row(const struct report_settings *rs, struct report_sla **items,
                                  int *n, int *cap, const char *queue)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*items)[i].queue, queue))
            return &(*items)[i];
    struct report_sla *r = ROW_APPEND(items, n, cap, struct report_sla, queue, queue);
    if (r)
        targets_for(rs, queue, &r->first_response_target_s, &r->resolution_target_s);
    return r;
}

/* One row per configured queue, in order. */
static int sla_rows_init(const struct report_settings *rs, struct report_sla **items, int *n,
                         int *cap)
{
    const char *p = rs->queues ? rs->queues : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        char name[REPORT_NAME_MAX];
        if (len > 0 && len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            if (!sla_row(rs, items, n, cap, name))
                return CD_ENOMEM;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int live_sla(struct store *s, const struct report_settings *rs, int64_t now_s,
                    struct report_sla **items, int *n, int *cap)
{
    static const char sql[] = "SELECT queue, queued_s, picked_s, state = 'queued'"
                              " FROM conversations WHERE state IN ('queued', 'with_agent')"
                              " AND queued_s > 0 LIMIT ?1";
    struct db_stmt *stmt = store_db_prepare(s, sql, NULL);
    if (!stmt)
        return CD_EIO;
    int rc;
    db_bind_int64(stmt, 1, MAX_ROWS);
    while ((rc = db_step(stmt)) == DB_ROW) {
        char queue[REPORT_NAME_MAX];
        col_name(queue, sizeof queue, stmt, 0);
        int64_t queued = db_col_int64(stmt, 1), picked = db_col_int64(stmt, 2);
        struct report_sla *r = sla_row(rs, items, n, cap, queue);
        if (!r)
            break;
        int64_t open_s = report_business_seconds(&rs->hours, queued, now_s);
        if (db_col_int(stmt, 3) && picked == 0) {
            if (open_s > r->first_response_target_s)
                r->live_first_response_breached++;
            else if ((double)open_s >= AT_RISK_SHARE * r->first_response_target_s)
                r->live_first_response_at_risk++;
        }
        if (open_s > r->resolution_target_s)
            r->live_resolution_breached++;
        else if ((double)open_s >= AT_RISK_SHARE * (double)r->resolution_target_s)
            r->live_resolution_at_risk++;
    }
    rc = rc == DB_ROW ? CD_ENOMEM : store_db_step_status(rc);
    db_finalize(stmt);
    return rc;
}

static int compute_sla(struct store *s, const struct report_settings *rs, int64_t since_s,
                       int64_t until_s, int64_t now_s, struct report *out)
{
    static const char sql[] =
        "SELECT c.queue, c.queued_s, c.picked_s, c.closed_s, c.state IN ('closed', 'rated')"
        " FROM conversations c WHERE" WINDOW " AND c.queued_s > 0 LIMIT ?3";
    int cap = 0;
    int rc = sla_rows_init(rs, &out->sla, &out->n_sla, &cap);
    if (rc)
        return rc;
    struct db_stmt *stmt = store_db_prepare_window(s, sql, NULL, since_s, until_s);
    if (!stmt)
        return CD_EIO;
    db_bind_int64(stmt, 3, MAX_ROWS);
    while ((rc = db_step(stmt)) == DB_ROW) {
        char queue[REPORT_NAME_MAX];
        col_name(queue, sizeof queue, stmt, 0);
        int64_t queued = db_col_int64(stmt, 1), picked = db_col_int64(stmt, 2);
        int64_t closed = db_col_int64(stmt, 3);
        int is_closed = db_col_int(stmt, 4);
        struct report_sla *r = sla_row(rs, &out->sla, &out->n_sla, &cap, queue);
        if (!r)
            break;
        if (picked > 0) {
            int64_t w = report_business_seconds(&rs->hours, queued, picked);
            rate_add(&r->first_response, w <= r->first_response_target_s);
        } else {
            int64_t end = is_closed && closed > 0 ? closed : now_s;
            if (report_business_seconds(&rs->hours, queued, end) > r->first_response_target_s)
                rate_add(&r->first_response, 0);
        }
        if (picked > 0 && is_closed && closed > 0) {
            int64_t w = report_business_seconds(&rs->hours, queued, closed);
            rate_add(&r->resolution, w <= r->resolution_target_s);
        } else if (!is_closed &&
                   report_business_seconds(&rs->hours, queued, now_s) > r->resolution_target_s) {
            rate_add(&r->resolution, 0);
        }
    }
    rc = rc == DB_ROW ? CD_ENOMEM : store_db_step_status(rc);
    db_finalize(stmt);
    if (!rc)
        rc = live_sla(s, rs, now_s, &out->sla, &out->n_sla, &cap);
    for (int i = 0; i < out->n_sla; i++) {
        rate_finish(&out->sla[i].first_response);
        rate_finish(&out->sla[i].resolution);
    }
    return rc;
}

int report_live_sla(struct store *s, const struct report_settings *settings, int64_t now_s,
                    struct report_sla **rows, int *n_rows)
{
    struct report_settings defaults;
    memset(&defaults, 0, sizeof defaults);
    const struct report_settings *rs = settings ? settings : &defaults;
    *rows = NULL;
    *n_rows = 0;
    int cap = 0;
    int rc = sla_rows_init(rs, rows, n_rows, &cap);
    if (!rc)
        rc = live_sla(s, rs, now_s, rows, n_rows, &cap);
    return rc;
}

int report_render_metrics(struct store *s, const struct report_settings *settings, int64_t now_s,
                          struct cd_buf *out)
{
    struct report_sla *rows;
    int n;
    int rc = report_live_sla(s, settings, now_s, &rows, &n);
    if (rc) {
        free(rows);
        return rc;
    }
    static const char *const names[2] = {"caredesk_sla_breached", "caredesk_sla_at_risk"};
    static const char *const help[2] = {
        "Open chats past their queue's SLA target now (first response: waiting for pickup).",
        "Open chats at 80% or more of their queue's SLA target, not yet past it."};
    for (int g = 0; g < 2 && !rc; g++) {
        rc = cd_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", names[g], help[g], names[g]);
        for (int i = 0; i < n && !rc; i++) {
            int64_t fr =
                g ? rows[i].live_first_response_at_risk : rows[i].live_first_response_breached;
            int64_t res = g ? rows[i].live_resolution_at_risk : rows[i].live_resolution_breached;
            rc = cd_buf_printf(out,
                               "%s{queue=\"%s\",sla=\"first_response\"} %lld\n"
                               "%s{queue=\"%s\",sla=\"resolution\"} %lld\n",
                               names[g], rows[i].queue, (long long)fr, names[g], rows[i].queue,
                               (long long)res);
        }
    }
    free(rows);
    return rc;
}

/* ---- NPS ---- */

static void nps_add(struct report_nps_group *g, int score)
{
    g->n++;
    if (score >= 9)
        g->n_promoters++;
    else if (score >= 7)
        g->n_passives++;
    else
        g->n_detractors++;
}

static void nps_finish(struct report_nps_group *g)
{
    g->score = g->n > 0 ? 100.0 * (double)(g->n_promoters - g->n_detractors) / (double)g->n : 0;
}

static int nps_group_cmp(const void *a, const void *b)
{
    const struct report_nps_group *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compute_nps(struct store *s, int64_t since_s, int64_t until_s, struct report_nps *out)
{
#define NPS_SQL(driver_key)                                                                        \
    "SELECT " DRIVER_OF("c") " AS d, c.nps, c.nps_comment, c.id"                                   \
                             " FROM conversations c WHERE c.created_s >= ?1 AND c.created_s < ?2"  \
                             " AND c.nps >= 0 ORDER BY " driver_key ", c.created_s, c.id LIMIT ?3"
    /* PostgreSQL sorts by an output name only as it stands, not in an expression. */
    static const char sql[] = NPS_SQL("d"), pg_sql[] = NPS_SQL(DRIVER_OF("c") BY_BYTES_PG);
#undef NPS_SQL
    snprintf(out->all.name, sizeof out->all.name, "all");
    struct db_stmt *stmt = store_db_prepare_window(s, sql, pg_sql, since_s, until_s);
    if (!stmt)
        return CD_EIO;
    int rc;
    db_bind_int64(stmt, 3, MAX_ROWS);
    int cap_d = 0, cap_v = 0;
    while ((rc = db_step(stmt)) == DB_ROW) {
        char driver[REPORT_NAME_MAX];
        col_name(driver, sizeof driver, stmt, 0);
        int score = db_col_int(stmt, 1);
        nps_add(&out->all, score);
        struct report_nps_group *g = NULL;
        for (int i = 0; i < out->n_by_driver && !g; i++)
            if (!strcmp(out->by_driver[i].name, driver))
                g = &out->by_driver[i];
        if (!g && !(g = ROW_APPEND(&out->by_driver, &out->n_by_driver, &cap_d,
                                   struct report_nps_group, name, driver)))
            break;
        nps_add(g, score);
        const char *comment = db_col_text(stmt, 2);
        if (comment && *comment && out->n_verbatims < MAX_VERBATIMS) {
            if (cd_grow(&out->verbatims, &cap_v, out->n_verbatims, sizeof *out->verbatims, 8))
                break;
            struct report_verbatim *v = &out->verbatims[out->n_verbatims];
            memset(v, 0, sizeof *v);
            snprintf(v->driver, sizeof v->driver, "%s", driver);
            v->conversation = db_col_int64(stmt, 3);
            v->score = score;
            if (!(v->comment = strdup(comment)))
                break;
            out->n_verbatims++;
        }
    }
    rc = rc == DB_ROW ? CD_ENOMEM : store_db_step_status(rc);
    db_finalize(stmt);
    nps_finish(&out->all);
    for (int i = 0; i < out->n_by_driver; i++)
        nps_finish(&out->by_driver[i]);
    if (out->n_by_driver > 1)
        qsort(out->by_driver, (size_t)out->n_by_driver, sizeof *out->by_driver, nps_group_cmp);
    return rc;
}

int report_nps_save(struct store *s, int64_t conversation, int score, const char *comment)
{
    if (score < 0 || score > 10)
        return CD_EINVAL;
    struct db_stmt *stmt = store_db_prepare(
        s, "UPDATE conversations SET nps = ?2, nps_comment = ?3 WHERE id = ?1", NULL);
    if (!stmt)
        return CD_EIO;
    db_bind_int64(stmt, 1, conversation);
    db_bind_int64(stmt, 2, score);
    if (comment && *comment)
        db_bind_text(stmt, 3, comment);
    int rc = store_db_step_status(db_step(stmt));
    db_finalize(stmt);
    if (!rc && db_changes(store_db(s)) == 0)
        rc = CD_ENOTFOUND;
    return rc;
}

/* ---- drivers ---- */

static int compute_drivers(struct store *s, int64_t since_s, int64_t until_s, struct report *out)
{
    /* The same population and order as store_stats()'s top drivers. */
    static const char sql[] = "SELECT " DRIVER_OF(
        "c") " AS d, count(*), coalesce(sum(c.queued_s > 0), 0),"
             " coalesce(sum(c.rating > 0), 0), coalesce(avg(nullif(c.rating, 0)), 0)"
             " FROM conversations c WHERE c.created_s >= ?1 AND c.created_s < ?2 AND d <> ''"
             " GROUP BY d ORDER BY 2 DESC, 1 LIMIT ?3";
    /* PostgreSQL sums no booleans and sees no output alias in WHERE. */
    static const char pg_sql[] =
        "SELECT d, count(*), count(*) FILTER (WHERE queued_s > 0),"
        " count(*) FILTER (WHERE rating > 0), coalesce(avg(nullif(rating, 0)), 0)"
        " FROM (SELECT " DRIVER_OF(
            "c") " AS d, c.queued_s, c.rating FROM conversations c"
                 " WHERE c.created_s >= ?1 AND c.created_s < ?2) AS x WHERE d <> ''"
                 " GROUP BY d ORDER BY 2 DESC, d" BY_BYTES_PG " LIMIT ?3";
    struct db_stmt *stmt = store_db_prepare_window(s, sql, pg_sql, since_s, until_s);
    if (!stmt)
        return CD_EIO;
    int rc;
    db_bind_int64(stmt, 3, REPORT_TOP);
    while ((rc = db_step(stmt)) == DB_ROW && out->n_drivers < REPORT_TOP) {
        struct report_driver *d = &out->drivers[out->n_drivers++];
        col_name(d->name, sizeof d->name, stmt, 0);
        d->n = db_col_int64(stmt, 1);
        d->escalation_rate = d->n ? (double)db_col_int64(stmt, 2) / (double)d->n : 0;
        d->n_ratings = db_col_int64(stmt, 3);
        d->csat = db_col_double(stmt, 4);
    }
    rc = store_db_step_status(rc);
    db_finalize(stmt);
    return rc;
}

/* Steps stmt, a bound SELECT count(*), sets *n_out to its count and finalizes it. Returns 0
 * or CD_E*. */
static int count_and_finalize(struct db_stmt *stmt, int64_t *n_out)
{
    int rc = db_step(stmt);
    if (rc == DB_ROW) {
        *n_out = db_col_int64(stmt, 0);
        rc = DB_DONE;
    }
    db_finalize(stmt);
    return store_db_step_status(rc);
}

int report_backlog(struct store *s, int64_t at_s, int64_t *n_out)
{
    static const char sql[] = "SELECT count(*) FROM conversations WHERE created_s < ?1"
                              " AND queued_s > 0 AND queued_s < ?1"
                              " AND (closed_s = 0 OR closed_s > ?1)";
    *n_out = 0;
    struct db_stmt *stmt = store_db_prepare(s, sql, NULL);
    if (!stmt)
        return CD_EIO;
    db_bind_int64(stmt, 1, at_s);
    return count_and_finalize(stmt, n_out);
}

/* Conversations about driver created in [since_s, until_s), counted as
 * compute_drivers() counts them. */
int report_driver_count(struct store *s, int64_t since_s, int64_t until_s, const char *driver,
                        int64_t *n_out)
{
    static const char sql[] = "SELECT count(*) FROM conversations c WHERE c.created_s >= ?1"
                              " AND c.created_s < ?2 AND " DRIVER_OF("c") " = ?3";
    *n_out = 0;
    struct db_stmt *stmt = store_db_prepare_window(s, sql, NULL, since_s, until_s);
    if (!stmt)
        return CD_EIO;
    db_bind_text(stmt, 3, driver);
    return count_and_finalize(stmt, n_out);
}

/* ---- QA ---- */

/* The mean QA score of conversations created in the window (-1 without
 * audits). */
static int compute_qa(struct store *s, int64_t since_s, int64_t until_s, struct report *out)
{
    static const char sql[] = "SELECT count(*), avg(a.score) FROM qa_audits a"
                              " JOIN conversations c ON c.id = a.conversation"
                              " WHERE c.created_s >= ?1 AND c.created_s < ?2"
                              " AND a.score IS NOT NULL";
    out->qa_score = -1;
    struct db_stmt *stmt = store_db_prepare_window(s, sql, NULL, since_s, until_s);
    if (!stmt)
        return CD_EIO;
    int rc = db_step(stmt);
    if (rc == DB_ROW) {
        out->n_qa = db_col_int64(stmt, 0);
        if (out->n_qa > 0)
            out->qa_score = db_col_double(stmt, 1);
        rc = DB_DONE;
    }
    db_finalize(stmt);
    return store_db_step_status(rc);
}

/* ---- the whole report ---- */

int report_compute(struct store *s, const struct report_settings *settings, int64_t since_s,
                   int64_t until_s, int64_t now_s, struct report *out)
{
    struct report_settings defaults;
    memset(&defaults, 0, sizeof defaults);
    const struct report_settings *rs = settings ? settings : &defaults;
    memset(out, 0, sizeof *out);
    out->since_s = since_s;
    out->until_s = until_s;
    out->qa_score = -1;
    int rc = compute_fcr(s, rs, since_s, until_s, &out->fcr);
    if (!rc)
        rc = compute_aht(s, since_s, until_s, now_s, &out->aht);
    if (!rc)
        rc = compute_sla(s, rs, since_s, until_s, now_s, out);
    if (!rc)
        rc = compute_nps(s, since_s, until_s, &out->nps);
    if (!rc)
        rc = compute_drivers(s, since_s, until_s, out);
    if (!rc)
        rc = compute_qa(s, since_s, until_s, out);
    return rc;
}

void report_clear(struct report *r)
{
    if (!r)
        return;
    free(r->fcr.by_queue);
    free(r->fcr.by_driver);
    free(r->aht.by_agent);
    free(r->aht.by_queue);
    free(r->sla);
    free(r->nps.by_driver);
    for (int i = 0; i < r->nps.n_verbatims; i++)
        free(r->nps.verbatims[i].comment);
    free(r->nps.verbatims);
    memset(r, 0, sizeof *r);
}

/* ---- JSON ---- */

static json_t *rate_json(const struct report_rate *r, const char *met_name)
{
    return json_pack("{s:s, s:I, s:I, s:f}", "name", r->name, "n", (json_int_t)r->n, met_name,
                     (json_int_t)r->n_met, "rate", r->rate);
}

static json_t *rates_json(const struct report_rate *r, int n, const char *met_name)
{
    json_t *a = json_array();
    for (int i = 0; i < n && a; i++)
        json_array_append_new(a, rate_json(&r[i], met_name));
    return a;
}

static json_t *handle_json(const struct report_handle *h)
{
    json_t *o =
        json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)h->n, "handle_s",
                  h->handle_s, "active_s", h->active_s, "waiting_s", h->waiting_s, "wrap_s",
                  h->wrap_s, "agent_time_s", h->agent_time_s, "concurrency", h->concurrency);
    if (o && h->name[0])
        json_object_set_new(o, "name", json_string(h->name));
    if (o && h->agent_id)
        json_object_set_new(o, "agent_id", json_integer(h->agent_id));
    return o;
}

static json_t *handles_json(const struct report_handle *h, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n && a; i++)
        json_array_append_new(a, handle_json(&h[i]));
    return a;
}

static json_t *nps_group_json(const struct report_nps_group *g)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:f}", "name", g->name, "n", (json_int_t)g->n,
                     "promoters", (json_int_t)g->n_promoters, "passives", (json_int_t)g->n_passives,
                     "detractors", (json_int_t)g->n_detractors, "score", g->score);
}

static json_t *nps_json(const struct report_nps *nps)
{
    json_t *o = nps_group_json(&nps->all);
    json_t *by = json_array();
    for (int i = 0; i < nps->n_by_driver && by; i++) {
        json_t *g = nps_group_json(&nps->by_driver[i]);
        json_t *v = json_array();
        for (int k = 0; k < nps->n_verbatims && v; k++)
            if (!strcmp(nps->verbatims[k].driver, nps->by_driver[i].name))
                json_array_append_new(v, json_pack("{s:I, s:i, s:s}", "conversation",
                                                   (json_int_t)nps->verbatims[k].conversation,
                                                   "score", nps->verbatims[k].score, "comment",
                                                   nps->verbatims[k].comment));
        if (g)
            json_object_set_new(g, "verbatims", v);
        else
            json_decref(v);
        json_array_append_new(by, g);
    }
    if (o) {
        json_object_del(o, "name");
        json_object_set_new(o, "by_driver", by);
    } else {
        json_decref(by);
    }
    return o;
}

json_t *report_json(const struct report *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *fcr =
        json_pack("{s:i, s:f, s:o, s:o, s:o, s:o, s:o}", "window_s", r->fcr.window_s, "rate",
                  r->fcr.all.rate, "all", rate_json(&r->fcr.all, "resolved"), "bot",
                  rate_json(&r->fcr.bot, "resolved"), "agent", rate_json(&r->fcr.agent, "resolved"),
                  "by_queue", rates_json(r->fcr.by_queue, r->fcr.n_by_queue, "resolved"),
                  "by_driver", rates_json(r->fcr.by_driver, r->fcr.n_by_driver, "resolved"));
    json_object_set_new(o, "fcr", fcr);
    json_object_set_new(o, "aht_s", json_real(r->aht.all.handle_s));
    json_t *aht = handle_json(&r->aht.all);
    if (aht) {
        json_object_set_new(aht, "by_agent", handles_json(r->aht.by_agent, r->aht.n_by_agent));
        json_object_set_new(aht, "by_queue", handles_json(r->aht.by_queue, r->aht.n_by_queue));
    }
    json_object_set_new(o, "aht", aht);
    json_t *sla = json_array();
    for (int i = 0; i < r->n_sla && sla; i++) {
        const struct report_sla *q = &r->sla[i];
        json_array_append_new(
            sla, json_pack("{s:s, s:{s:i, s:I, s:I, s:f, s:I, s:I}, s:{s:I, s:I, s:I, s:f, s:I,"
                           " s:I}}",
                           "queue", q->queue, "first_response", "target_s",
                           q->first_response_target_s, "n", (json_int_t)q->first_response.n, "met",
                           (json_int_t)q->first_response.n_met, "met_share", q->first_response.rate,
                           "breached", (json_int_t)q->live_first_response_breached, "at_risk",
                           (json_int_t)q->live_first_response_at_risk, "resolution", "target_s",
                           (json_int_t)q->resolution_target_s, "n", (json_int_t)q->resolution.n,
                           "met", (json_int_t)q->resolution.n_met, "met_share", q->resolution.rate,
                           "breached", (json_int_t)q->live_resolution_breached, "at_risk",
                           (json_int_t)q->live_resolution_at_risk));
    }
    json_object_set_new(o, "sla", sla);
    json_object_set_new(o, "nps", r->nps.all.n > 0 ? nps_json(&r->nps) : json_null());
    json_object_set_new(o, "qa_score", r->qa_score >= 0 ? json_real(r->qa_score) : json_null());
    json_object_set_new(o, "qa_audits", json_integer(r->n_qa));
    json_t *drivers = json_array();
    for (int i = 0; i < r->n_drivers && drivers; i++)
        json_array_append_new(
            drivers,
            json_pack("{s:s, s:I, s:f, s:I, s:f}", "name", r->drivers[i].name, "count",
                      (json_int_t)r->drivers[i].n, "escalation_rate", r->drivers[i].escalation_rate,
                      "ratings", (json_int_t)r->drivers[i].n_ratings, "csat", r->drivers[i].csat));
    json_object_set_new(o, "driver_details", drivers);
    return o;
}
