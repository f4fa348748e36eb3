/* Tests for report.c: seeded conversations with known timings give exact
 * FCR, handle time, SLA, NPS and driver figures; business-hours arithmetic;
 * the per-queue SLA targets setting; the live SLA gauges for /metrics. The
 * tests on a store run on SQLite and again on PostgreSQL (testlib.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "report.h"
#include "store.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monday 1 December 2025, 00:00 UTC (the tests run with TZ=UTC). */
#define T0   1764547200LL
#define HOUR 3600LL
#define DAY  86400LL

static int64_t message(struct store *s, int64_t conv, int sender, int64_t at)
{
    struct store_message m = testlib_message_of(conv, sender, NULL, NULL, "text");
    m.created_s = at;
    assert_int_equal(store_message_append(s, &m), 0);
    return m.seq;
}

/* A conversation created at created_s with one customer message then. */
static int64_t conversation(struct store *s, const char *email, int64_t created_s)
{
    struct store_conversation c;
    memset(&c, 0, sizeof c);
    c.customer_email = (char *)email;
    c.created_s = created_s;
    testlib_conversation(s, &c);
    message(s, c.id, STORE_SENDER_CUSTOMER, created_s);
    return c.id;
}

/* Kept by the bot, about intent. */
static int64_t bot_chat(struct store *s, const char *email, int64_t created_s, const char *intent)
{
    int64_t id = conversation(s, email, created_s);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    snprintf(c.intent, sizeof c.intent, "%s", intent);
    assert_int_equal(store_conversation_update(s, &c), 0);
    store_conversation_clear(&c);
    return id;
}

/* Handed off to queue at queued_s; picked by agent at picked_s (0 = not);
 * closed with disposition at closed_s (0 = still open). */
static int64_t agent_chat(struct store *s, const char *email, int64_t created_s, const char *queue,
                          int64_t agent, int64_t queued_s, int64_t picked_s, int64_t closed_s,
                          const char *disposition)
{
    int64_t id = conversation(s, email, created_s);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, id, &c), 0);
    snprintf(c.queue, sizeof c.queue, "%s", queue);
    snprintf(c.disposition, sizeof c.disposition, "%s", disposition ? disposition : "");
    c.queued_s = queued_s;
    c.picked_s = picked_s;
    c.agent_id = picked_s ? agent : 0;
    c.closed_s = closed_s;
    c.state =
        closed_s ? STORE_STATE_CLOSED : (picked_s ? STORE_STATE_WITH_AGENT : STORE_STATE_QUEUED);
    if (closed_s)
        snprintf(c.closed_by, sizeof c.closed_by, "agent");
    assert_int_equal(store_conversation_update(s, &c), 0);
    store_conversation_clear(&c);
    return id;
}

static int64_t user(struct store *s, const char *name)
{
    struct store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "agent");
    memset(u.token_hash, name[0], sizeof u.token_hash);
    assert_int_equal(store_user_add(s, &u), 0);
    return u.id;
}

static const struct report_rate *rate_named(const struct report_rate *r, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(r[i].name, name))
            return &r[i];
    fail_msg("no row %s", name);
    return NULL;
}

static void compute(struct store *s, const struct report_settings *rs, int64_t now,
                    struct report *r)
{
    assert_int_equal(report_compute(s, rs, T0, T0 + 7 * DAY, now, r), 0);
}

static void test_fcr(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ana = user(s, "Ana");
    struct report r;

    /* Bob asks about an order; he comes back two days later about a password:
     * a different driver, so the first contact still resolved it. */
    bot_chat(s, "bob@example.com", T0 + 1000, "order_status");
    compute(s, NULL, T0 + 7 * DAY, &r);
    assert_int_equal(r.fcr.window_s, 7 * DAY);
    assert_int_equal(r.fcr.bot.n, 1);
    assert_int_equal(r.fcr.bot.n_met, 1);
    report_clear(&r);
    bot_chat(s, "bob@example.com", T0 + 3 * DAY, "password_reset");
    compute(s, NULL, T0 + 7 * DAY, &r);
    assert_int_equal(r.fcr.bot.n, 2);
    assert_int_equal(r.fcr.bot.n_met, 2);
    assert_true(r.fcr.bot.rate == 1.0);
    report_clear(&r);

    /* Ann comes back (another case of her email) about the same refund: her
     * first contact did not resolve it, the second did. */
    bot_chat(s, "ann@example.com", T0 + 1000, "refund_status");
    bot_chat(s, "ANN@example.com", T0 + 2 * DAY, "refund_status");
    compute(s, NULL, T0 + 7 * DAY, &r);
    assert_int_equal(r.fcr.bot.n, 4);
    assert_int_equal(r.fcr.bot.n_met, 3);
    report_clear(&r);

    /* Agents: Cy's dispute closed by an agent; she is back ten days after
     * the close (outside the 7-day window): resolved. Dee is back the next
     * day about the same dispute (kept by the bot this time): not resolved. */
    agent_chat(s, "cy@example.com", T0 + 100, "billing", ana, T0 + 200, T0 + 300, T0 + 900,
               "billing_dispute");
    bot_chat(s, "cy@example.com", T0 + 900 + 10 * DAY, "billing_dispute");
    agent_chat(s, "dee@example.com", T0 + 100, "billing", ana, T0 + 200, T0 + 300, T0 + 900,
               "billing_dispute");
    bot_chat(s, "dee@example.com", T0 + DAY, "billing_dispute");
    /* A chat handed off but never picked up is no contact of anyone's. */
    agent_chat(s, "eve@example.com", T0 + 100, "orders", ana, T0 + 200, 0, 0, NULL);
    /* No email: nobody can come back, resolved. */
    bot_chat(s, NULL, T0 + 5000, "order_status");

    compute(s, NULL, T0 + 7 * DAY, &r);
    assert_int_equal(r.fcr.bot.n, 6); /* bob x2, ann x2, dee's return, the anonymous one */
    assert_int_equal(r.fcr.bot.n_met, 5);
    assert_int_equal(r.fcr.agent.n, 2);
    assert_int_equal(r.fcr.agent.n_met, 1);
    assert_true(r.fcr.agent.rate == 0.5);
    assert_int_equal(r.fcr.all.n, 8);
    assert_int_equal(r.fcr.all.n_met, 6);
    assert_true(r.fcr.all.rate == 0.75);
    assert_int_equal(r.fcr.n_by_queue, 1);
    assert_string_equal(r.fcr.by_queue[0].name, "billing");
    assert_int_equal(r.fcr.by_queue[0].n, 2);
    assert_int_equal(r.fcr.by_queue[0].n_met, 1);
    const struct report_rate *d = rate_named(r.fcr.by_driver, r.fcr.n_by_driver, "billing_dispute");
    assert_int_equal(d->n, 3);
    assert_int_equal(d->n_met, 2);
    d = rate_named(r.fcr.by_driver, r.fcr.n_by_driver, "refund_status");
    assert_int_equal(d->n, 2);
    assert_int_equal(d->n_met, 1);
    d = rate_named(r.fcr.by_driver, r.fcr.n_by_driver, "order_status");
    assert_int_equal(d->n, 2);
    assert_int_equal(d->n_met, 2);
    assert_string_equal(r.fcr.by_driver[0].name, "billing_dispute"); /* most contacts first */
    report_clear(&r);

    /* A shorter window: Ann's return two days later no longer counts. */
    struct report_settings rs;
    memset(&rs, 0, sizeof rs);
    rs.fcr_window_s = (int)DAY;
    compute(s, &rs, T0 + 7 * DAY, &r);
    assert_int_equal(r.fcr.bot.n_met, 6);
    assert_int_equal(r.fcr.agent.n_met, 1); /* Dee came back within a day of the close */
    json_t *j = report_json(&r);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "fcr"), "window_s")),
                     DAY);
    json_decref(j);
    report_clear(&r);
    store_close(s);
}

static void test_handle_time(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ana = user(s, "Ana"), ben = user(s, "Ben");
    int64_t b = T0 + 10 * HOUR;
    /* P: picked at +0; agent +30, customer +100, agent +120, closed +180:
     * active 30 + 20, waiting 70, wrap-up 60. */
    int64_t p = agent_chat(s, "p@example.com", b - 20, "billing", ana, b - 10, b, b + 180, "x");
    message(s, p, STORE_SENDER_AGENT, b + 30);
    message(s, p, STORE_SENDER_CUSTOMER, b + 100);
    message(s, p, STORE_SENDER_SYSTEM, b + 110); /* system lines are no one's turn */
    message(s, p, STORE_SENDER_AGENT, b + 120);
    /* Q: Ana holds it alongside P from +90 to +150: agent +100, closed +150:
     * active 10, wrap-up 50; the 60 s they overlap count half for each. */
    int64_t q = agent_chat(s, "q@example.com", b + 80, "orders", ana, b + 85, b + 90, b + 150, "y");
    message(s, q, STORE_SENDER_AGENT, b + 100);
    /* R: Ben alone, no message: all 100 s are wrap-up. */
    agent_chat(s, "r@example.com", b + 1000, "billing", ben, b + 1000, b + 2000, b + 2100, "x");
    /* Still open: no handle time yet, but it does not change Ana's figures
     * either (it starts after her chats end). */
    agent_chat(s, "o@example.com", b + 3000, "billing", ana, b + 3000, b + 3100, 0, NULL);

    struct report r;
    compute(s, NULL, b + 4000, &r);
    assert_int_equal(r.aht.all.n, 3);
    assert_true(r.aht.all.handle_s == (180.0 + 60 + 100) / 3);
    assert_int_equal(r.aht.n_by_agent, 2);
    const struct report_handle *a = &r.aht.by_agent[0];
    assert_string_equal(a->name, "Ana");
    assert_int_equal(a->agent_id, ana);
    assert_int_equal(a->n, 2);
    assert_true(a->handle_s == 120.0);
    assert_true(a->active_s == 30.0);     /* (50 + 10) / 2 */
    assert_true(a->waiting_s == 35.0);    /* (70 + 0) / 2 */
    assert_true(a->wrap_s == 55.0);       /* (60 + 50) / 2 */
    assert_true(a->agent_time_s == 90.0); /* (150 + 30) / 2 */
    assert_true(a->concurrency > 1.3333 && a->concurrency < 1.3334);
    const struct report_handle *bn = &r.aht.by_agent[1];
    assert_string_equal(bn->name, "Ben");
    assert_true(bn->wrap_s == 100.0 && bn->active_s == 0 && bn->agent_time_s == 100.0);
    assert_true(bn->concurrency == 1.0);
    assert_int_equal(r.aht.n_by_queue, 2);
    assert_string_equal(r.aht.by_queue[0].name, "billing");
    assert_int_equal(r.aht.by_queue[0].n, 2);
    assert_true(r.aht.by_queue[0].handle_s == 140.0);
    assert_string_equal(r.aht.by_queue[1].name, "orders");
    assert_true(r.aht.by_queue[1].agent_time_s == 30.0);
    json_t *j = report_json(&r);
    assert_true(json_real_value(json_object_get(j, "aht_s")) == (180.0 + 60 + 100) / 3);
    json_decref(j);
    report_clear(&r);
    store_close(s);
}

static void test_business_seconds(void **state)
{
    (void)state;
    struct report_hours always = {0, 0, 0};
    assert_int_equal(report_business_seconds(&always, T0, T0 + 90), 90);
    assert_int_equal(report_business_seconds(&always, T0 + 5, T0), 0);
    assert_int_equal(report_business_day_s(&always), 86400);
    struct report_hours office = {9 * 60, 17 * 60, 0x3e}; /* mon-fri 09:00-17:00 */
    assert_int_equal(report_business_day_s(&office), 8 * HOUR);
    /* Friday 16:00 to Monday 10:00: an hour on each side of the weekend. */
    int64_t fri = T0 + 4 * DAY;
    assert_int_equal(report_business_seconds(&office, fri + 16 * HOUR, fri + 3 * DAY + 10 * HOUR),
                     2 * HOUR);
    /* Entirely outside business hours. */
    assert_int_equal(report_business_seconds(&office, T0 + 18 * HOUR, T0 + DAY + 8 * HOUR), 0);
    /* A whole week: five days of eight hours. */
    assert_int_equal(report_business_seconds(&office, T0, T0 + 7 * DAY), 40 * HOUR);
    /* Hours past midnight (22:00-06:00 every day): Monday 21:00 to Tuesday 07:00. */
    struct report_hours night = {22 * 60, 6 * 60, 0};
    assert_int_equal(report_business_day_s(&night), 8 * HOUR);
    assert_int_equal(report_business_seconds(&night, T0 + 21 * HOUR, T0 + DAY + 7 * HOUR),
                     8 * HOUR);
}

static void test_sla_targets_setting(void **state)
{
    (void)state;
    assert_int_equal(report_sla_targets_valid(""), 0);
    assert_int_equal(report_sla_targets_valid(NULL), 0);
    assert_int_equal(report_sla_targets_valid("billing=120/2bd, orders=30/28800"), 0);
    assert_int_equal(report_sla_targets_valid("billing=120"), CD_EINVAL);
    assert_int_equal(report_sla_targets_valid("billing=0/1bd"), CD_EINVAL);
    assert_int_equal(report_sla_targets_valid("billing=60/-1"), CD_EINVAL);
    assert_int_equal(report_sla_targets_valid("billing=60/1week"), CD_EINVAL);
    assert_int_equal(report_sla_targets_valid("Bill ing=60/1bd"), CD_EINVAL);
    assert_int_equal(report_sla_targets_valid("=60/1bd"), CD_EINVAL);
}

static void test_sla(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ana = user(s, "Ana");
    int64_t mon = T0, tue = T0 + DAY, wed = T0 + 2 * DAY, fri = T0 + 4 * DAY;
    /* S1: picked 30 s after a Monday 09:00 handoff, closed at 12:00: both met. */
    agent_chat(s, "a@x.org", mon + 9 * HOUR - 60, "billing", ana, mon + 9 * HOUR,
               mon + 9 * HOUR + 30, mon + 12 * HOUR, "x");
    /* S2: handed off at 16:59 Monday, picked 09:00:30 Tuesday: 90 business
     * seconds (breached); closed 16:00 Tuesday: 7 h 1 min (met). */
    agent_chat(s, "b@x.org", mon + 16 * HOUR + 58 * 60, "billing", ana, mon + 16 * HOUR + 59 * 60,
               tue + 9 * HOUR + 30, tue + 16 * HOUR, "x");
    /* S3: Friday 16:00, picked in 20 s, closed Monday 16:30: 8.5 business
     * hours, past one business day (breached). */
    agent_chat(s, "c@x.org", fri + 16 * HOUR - 10, "billing", ana, fri + 16 * HOUR,
               fri + 16 * HOUR + 20, fri + 3 * DAY + 16 * HOUR + 30 * 60, "x");
    /* S4: orders' own targets (30 s, 2 business days): picked in 45 s. */
    agent_chat(s, "d@x.org", tue + 10 * HOUR - 5, "orders", ana, tue + 10 * HOUR,
               tue + 10 * HOUR + 45, tue + 11 * HOUR, "x");
    /* Now: Wednesday 10:05. S5 has waited 5 minutes (breached, counted);
     * S6 50 s (at risk of its 60 s, not counted over the window yet). */
    int64_t now = wed + 10 * HOUR + 5 * 60;
    agent_chat(s, "e@x.org", wed + 10 * HOUR - 1, "billing", ana, wed + 10 * HOUR, 0, 0, NULL);
    agent_chat(s, "f@x.org", now - 60, "billing", ana, now - 50, 0, 0, NULL);

    struct report_settings rs;
    memset(&rs, 0, sizeof rs);
    rs.hours = (struct report_hours){9 * 60, 17 * 60, 0x3e};
    rs.sla_targets = "orders=30/2bd";
    rs.queues = "general,billing,orders";
    struct report r;
    compute(s, &rs, now, &r);
    assert_int_equal(r.n_sla, 3);
    assert_string_equal(r.sla[0].queue, "general");
    assert_int_equal(r.sla[0].first_response.n, 0);
    assert_int_equal(r.sla[0].first_response_target_s, 60);
    assert_int_equal(r.sla[0].resolution_target_s, 8 * HOUR);
    const struct report_sla *b = &r.sla[1];
    assert_string_equal(b->queue, "billing");
    assert_int_equal(b->first_response.n, 4); /* S1, S2, S3, S5 */
    assert_int_equal(b->first_response.n_met, 2);
    assert_true(b->first_response.rate == 0.5);
    assert_int_equal(b->resolution.n, 3); /* S1, S2, S3 */
    assert_int_equal(b->resolution.n_met, 2);
    assert_int_equal(b->live_first_response_breached, 1);
    assert_int_equal(b->live_first_response_at_risk, 1);
    assert_int_equal(b->live_resolution_breached, 0);
    const struct report_sla *o = &r.sla[2];
    assert_string_equal(o->queue, "orders");
    assert_int_equal(o->first_response_target_s, 30);
    assert_int_equal(o->resolution_target_s, 16 * HOUR);
    assert_int_equal(o->first_response.n, 1);
    assert_int_equal(o->first_response.n_met, 0);
    assert_int_equal(o->resolution.n, 1);
    assert_int_equal(o->resolution.n_met, 1);
    report_clear(&r);

    /* A day later S5 and S6 are past one business day as well. */
    struct report_sla *rows;
    int n;
    assert_int_equal(report_live_sla(s, &rs, now + DAY, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[1].live_first_response_breached, 2);
    assert_int_equal(rows[1].live_resolution_breached, 2);
    free(rows);

    struct cd_buf out = {0};
    assert_int_equal(report_render_metrics(s, &rs, now, &out), 0);
    assert_non_null(strstr(out.data, "# TYPE caredesk_sla_breached gauge\n"));
    assert_non_null(
        strstr(out.data, "caredesk_sla_breached{queue=\"billing\",sla=\"first_response\"} 1\n"));
    assert_non_null(
        strstr(out.data, "caredesk_sla_at_risk{queue=\"billing\",sla=\"first_response\"} 1\n"));
    assert_non_null(
        strstr(out.data, "caredesk_sla_breached{queue=\"orders\",sla=\"resolution\"} 0\n"));
    cd_buf_free(&out);
    store_close(s);
}

static void test_nps_and_drivers(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ana = user(s, "Ana");
    int64_t c[6];
    c[0] = bot_chat(s, "a@x.org", T0 + 10, "refund_status");
    c[1] = bot_chat(s, "b@x.org", T0 + 20, "refund_status");
    c[2] = agent_chat(s, "c@x.org", T0 + 30, "billing", ana, T0 + 40, T0 + 50, T0 + 90,
                      "refund_status");
    c[3] = bot_chat(s, "d@x.org", T0 + 40, "order_status");
    c[4] =
        agent_chat(s, "e@x.org", T0 + 50, "orders", ana, T0 + 60, T0 + 70, T0 + 99, "order_status");
    c[5] = bot_chat(s, "f@x.org", T0 + 8 * DAY, "order_status"); /* outside the week */
    assert_int_equal(report_nps_save(s, c[0], 10, "Fast and clear"), 0);
    assert_int_equal(report_nps_save(s, c[1], 9, NULL), 0);
    assert_int_equal(report_nps_save(s, c[2], 3, "Took two days"), 0);
    assert_int_equal(report_nps_save(s, c[3], 7, ""), 0);
    assert_int_equal(report_nps_save(s, c[4], 5, "Still no parcel"), 0);
    assert_int_equal(report_nps_save(s, c[4], 9, "Parcel came"), 0); /* replaces the first */
    assert_int_equal(report_nps_save(s, c[5], 0, "late"), 0);
    assert_int_equal(report_nps_save(s, c[0], 11, NULL), CD_EINVAL);
    assert_int_equal(report_nps_save(s, c[0], -1, NULL), CD_EINVAL);
    assert_int_equal(report_nps_save(s, 999, 5, NULL), CD_ENOTFOUND);

    /* Ratings for the drivers' CSAT. */
    struct store_conversation cv;
    assert_int_equal(store_conversation_get(s, c[2], &cv), 0);
    cv.rating = 2;
    assert_int_equal(store_conversation_update(s, &cv), 0);
    store_conversation_clear(&cv);

    struct report r;
    compute(s, NULL, T0 + 7 * DAY, &r);
    /* 10, 9, 3, 7, 9: three promoters, one passive, one detractor: NPS 40. */
    assert_int_equal(r.nps.all.n, 5);
    assert_int_equal(r.nps.all.n_promoters, 3);
    assert_int_equal(r.nps.all.n_passives, 1);
    assert_int_equal(r.nps.all.n_detractors, 1);
    assert_true(r.nps.all.score == 40.0);
    assert_int_equal(r.nps.n_by_driver, 2);
    assert_string_equal(r.nps.by_driver[0].name, "refund_status");
    assert_true(r.nps.by_driver[0].score > 33.333 && r.nps.by_driver[0].score < 33.334);
    assert_string_equal(r.nps.by_driver[1].name, "order_status");
    assert_true(r.nps.by_driver[1].score == 50.0);
    assert_int_equal(r.nps.n_verbatims, 3);
    assert_string_equal(r.nps.verbatims[0].driver, "order_status");
    assert_string_equal(r.nps.verbatims[0].comment, "Parcel came");
    assert_string_equal(r.nps.verbatims[1].comment, "Fast and clear");
    assert_string_equal(r.nps.verbatims[2].comment, "Took two days");
    assert_int_equal(r.nps.verbatims[2].score, 3);

    assert_int_equal(r.n_drivers, 2);
    assert_string_equal(r.drivers[0].name, "refund_status");
    assert_int_equal(r.drivers[0].n, 3);
    assert_true(r.drivers[0].escalation_rate > 0.3333 && r.drivers[0].escalation_rate < 0.3334);
    assert_int_equal(r.drivers[0].n_ratings, 1);
    assert_true(r.drivers[0].csat == 2.0);
    assert_int_equal(r.drivers[1].n, 2);
    assert_true(r.qa_score < 0);

    json_t *j = report_json(&r);
    json_t *nps = json_object_get(j, "nps");
    assert_true(json_real_value(json_object_get(nps, "score")) == 40.0);
    json_t *g = json_array_get(json_object_get(nps, "by_driver"), 0);
    assert_string_equal(json_string_value(json_object_get(g, "name")), "refund_status");
    assert_int_equal(json_array_size(json_object_get(g, "verbatims")), 2);
    assert_true(json_is_null(json_object_get(j, "qa_score")));
    json_decref(j);
    report_clear(&r);

    /* No answers: "nps" is null, not a score of 0. */
    assert_int_equal(report_compute(s, NULL, T0 - 7 * DAY, T0, T0, &r), 0);
    j = report_json(&r);
    assert_true(json_is_null(json_object_get(j, "nps")));
    json_decref(j);
    report_clear(&r);
    report_clear(NULL);
    store_close(s);
}

static void test_week_parse(void **state)
{
    (void)state;
    int64_t since, until;
    assert_int_equal(report_week_parse("2025-W49", &since, &until), 0);
    assert_int_equal(since, T0);
    assert_int_equal(until, T0 + 7 * DAY);
    assert_int_equal(report_week_parse("2026-W01", &since, &until), 0);
    assert_int_equal(since, 1766966400LL); /* Monday 29 December 2025 */
    assert_int_equal(report_week_parse("2026-W53", &since, &until), 0); /* 2026 has 53 */
    assert_int_equal(report_week_parse("2020-W53", &since, &until), 0);
    static const char *const bad[] = {"2025-W53", "2025-W00", "2025W49",  "2025-w49",
                                      "2025-W4x", "",         "25-W49",   "2025-W490",
                                      "1969-W10", "2025-W-1", "2025-W49 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(report_week_parse(bad[i], &since, &until), CD_EINVAL);
    assert_int_equal(report_week_parse(NULL, &since, &until), CD_EINVAL);
    char name[16];
    report_week_name(T0 + 3 * DAY, name, sizeof name);
    assert_string_equal(name, "2025-W49");
    report_week_name(1766966400LL + 3600, name, sizeof name);
    assert_string_equal(name, "2026-W01");
}

static void test_week_report(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ana = user(s, "Ana");
    int64_t prev = T0 - 7 * DAY;
    /* The previous week: one refund question kept by the bot, one order
     * handled in 100 s. */
    bot_chat(s, "a@x.org", prev + HOUR, "refund_status");
    agent_chat(s, "b@x.org", prev + HOUR, "orders", ana, prev + HOUR, prev + HOUR + 10,
               prev + HOUR + 100, "order_status");
    /* This week: three refund questions (one handed off and handled in 200 s,
     * still open at the end of the week: a backlog of one), an order. */
    bot_chat(s, "c@x.org", T0 + HOUR, "refund_status");
    bot_chat(s, "d@x.org", T0 + HOUR, "refund_status");
    agent_chat(s, "e@x.org", T0 + HOUR, "billing", ana, T0 + HOUR, T0 + HOUR + 10, T0 + HOUR + 200,
               "refund_status");
    agent_chat(s, "f@x.org", T0 + 2 * HOUR, "orders", ana, T0 + 2 * HOUR, 0, 0, NULL);
    int64_t q = conversation(s, "g@x.org", T0 + 3 * HOUR);
    assert_int_equal(store_unanswered_add(s, q, "can I pay | in \"crypto\"?", "en", "", 0.1), 0);
    assert_int_equal(store_unanswered_add(s, q, "=cmd()", "en", "", 0.1), 0);
    /* Recorded in that week (the store stamps them with the wall clock). */
    char out[32];
    testlib_sql_text(testlib_db, "UPDATE unanswered SET created_s = 1764558000", out, sizeof out);

    struct report_settings rs;
    memset(&rs, 0, sizeof rs);
    rs.queues = "billing,orders";
    json_t *w = NULL;
    assert_int_equal(report_week_build(s, &rs, "2025-W4", T0 + 10 * DAY, &w), CD_EINVAL);
    assert_null(w);
    assert_int_equal(report_week_build(s, &rs, "2025-W49", T0 + 10 * DAY, &w), 0);
    assert_string_equal(json_string_value(json_object_get(w, "week")), "2025-W49");
    assert_string_equal(json_string_value(json_object_get(w, "previous_week")), "2025-W48");
    json_t *kpis = json_object_get(w, "kpis"), *aht = NULL, *conv = NULL, *nps = NULL;
    size_t i;
    json_t *k;
    json_array_foreach(kpis, i, k)
    {
        const char *key = json_string_value(json_object_get(k, "key"));
        if (!strcmp(key, "aht_s"))
            aht = k;
        else if (!strcmp(key, "conversations"))
            conv = k;
        else if (!strcmp(key, "nps"))
            nps = k;
    }
    assert_true(json_real_value(json_object_get(aht, "value")) == 190.0);
    assert_true(json_real_value(json_object_get(aht, "previous")) == 90.0);
    assert_true(json_real_value(json_object_get(aht, "change")) == 100.0);
    assert_true(json_real_value(json_object_get(conv, "value")) == 5.0);
    assert_true(json_real_value(json_object_get(conv, "previous")) == 2.0);
    assert_true(json_is_null(json_object_get(nps, "value")));
    assert_true(json_is_null(json_object_get(nps, "change")));
    json_t *bl = json_object_get(w, "backlog");
    assert_int_equal(json_integer_value(json_object_get(bl, "open_handoffs")), 1);
    assert_int_equal(json_integer_value(json_object_get(bl, "previous")), 0);
    json_t *d0 = json_array_get(json_object_get(w, "drivers"), 0);
    assert_string_equal(json_string_value(json_object_get(d0, "name")), "refund_status");
    assert_int_equal(json_integer_value(json_object_get(d0, "count")), 3);
    assert_int_equal(json_integer_value(json_object_get(d0, "previous")), 1);
    assert_int_equal(json_integer_value(json_object_get(d0, "change")), 2);
    assert_true(json_real_value(json_object_get(d0, "escalation_rate")) > 0.3333);
    assert_true(json_is_null(json_object_get(d0, "csat")));
    assert_int_equal(json_array_size(json_object_get(w, "service_levels")), 2);
    assert_int_equal(json_array_size(json_object_get(w, "unanswered")), 2);

    struct cd_buf md = {0};
    assert_int_equal(report_week_markdown(w, &md), 0);
    assert_non_null(strstr(md.data, "# Weekly report 2025-W49\n\nMon 1 Dec 2025 to Sun 7 Dec 2025, "
                                    "compared with 2025-W48."));
    assert_non_null(strstr(md.data, "| Average handle time | 190 s | 90 s | +100 s |\n"));
    assert_non_null(strstr(md.data, "| 1 | refund_status | 3 | +2 | 33.3% | – |\n"));
    assert_non_null(strstr(md.data, "| can I pay \\| in \"crypto\"? | 1 |\n"));
    assert_non_null(strstr(md.data, "Backlog: 1 open handoffs at the end of the week"));
    assert_null(strstr(md.data, "## NPS verbatims")); /* no answers this week */
    cd_buf_free(&md);

    struct cd_buf csv = {0};
    assert_int_equal(report_week_csv(w, &csv), 0);
    assert_true(!strncmp(csv.data, "section,name,metric,value,previous,change\r\n", 43));
    assert_non_null(strstr(csv.data, "kpi,aht_s,seconds,190,90,100\r\n"));
    assert_non_null(strstr(csv.data, "driver,refund_status,count,3,1,2\r\n"));
    assert_non_null(
        strstr(csv.data, "unanswered,\"can I pay | in \"\"crypto\"\"?\",count,1,,\r\n"));
    assert_non_null(strstr(csv.data, "unanswered,\"'=cmd()\",count,1,,\r\n"));
    assert_non_null(strstr(csv.data, "backlog,,open_handoffs,1,0,\r\n"));
    cd_buf_free(&csv);
    json_decref(w);

    /* With NPS answers: the verbatims by driver close the Markdown report. */
    int64_t c = bot_chat(s, "h@x.org", T0 + 5 * HOUR, "refund_status");
    assert_int_equal(report_nps_save(s, c, 4, "Slow | late"), 0);
    c = bot_chat(s, "i@x.org", T0 + 5 * HOUR, "refund_status");
    assert_int_equal(report_nps_save(s, c, 10, NULL), 0);
    assert_int_equal(report_week_build(s, &rs, "2025-W49", T0 + 10 * DAY, &w), 0);
    md = (struct cd_buf){0};
    assert_int_equal(report_week_markdown(w, &md), 0);
    assert_non_null(strstr(md.data,
                           "## NPS verbatims by driver\n\nNPS 0 from 2 answers.\n\n"
                           "### refund_status (NPS 0, 2 answers)\n\n- 4: Slow \\| late\n"));
    cd_buf_free(&md);
    json_decref(w);
    store_close(s);
}

#define T(f) TESTLIB_ON_SQLITE(f)

#define P(f) TESTLIB_ON_PG(f)

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest on_sqlite[] = {
        T(test_fcr),
        T(test_handle_time),
        cmocka_unit_test(test_business_seconds),
        cmocka_unit_test(test_sla_targets_setting),
        T(test_sla),
        T(test_nps_and_drivers),
        cmocka_unit_test(test_week_parse),
        T(test_week_report),
    };
    const struct CMUnitTest on_postgres[] = {
        P(test_fcr), P(test_handle_time), P(test_sla), P(test_nps_and_drivers), P(test_week_report),
    };
    TESTLIB_RUN_BOTH("report", on_sqlite, on_postgres, NULL);
}
