/* Tests for qa.c: the rubric file and its errors, scoring with weights, a
 * pass mark and critical criteria, the stratified sample reproducible from
 * a seed, who may score what, the calibration spread, scores per week, and
 * the QA score in report.c's figures. The tests on a store run on SQLite and
 * again on PostgreSQL (testlib.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "qa.h"
#include "report.h"
#include "store.h"
#include "testlib.h"

#include "../../src/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Monday 1 December 2025, 00:00 UTC (the tests run with TZ=UTC). */
#define T0  1764547200LL
#define DAY 86400LL

static const char rubric_text[] =
    "{\"name\": \"chat-test\", \"pass_mark\": 80, \"scale\": 4, \"criteria\": ["
    " {\"id\": \"greeting\", \"label\": \"Greets\", \"weight\": 10},"
    " {\"id\": \"correct_answer\", \"label\": \"Correct\", \"weight\": 50},"
    " {\"id\": \"no_sensitive_data\", \"label\": \"No card or password\", \"weight\": 20,"
    "  \"critical\": true},"
    " {\"id\": \"next_step\", \"label\": \"Next step\", \"weight\": 20}]}";

static struct qa_rubric rubric;

static int64_t user(struct store *s, const char *name, const char *role, const char *skills,
                    struct auth_user *out)
{
    struct store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", role);
    snprintf(u.skills, sizeof u.skills, "%s", skills);
    memset(u.token_hash, name[0] + name[1], sizeof u.token_hash);
    assert_int_equal(store_user_add(s, &u), 0);
    if (out) {
        memset(out, 0, sizeof *out);
        out->id = u.id;
        snprintf(out->name, sizeof out->name, "%s", name);
        out->role = auth_role_parse(role);
        snprintf(out->skills, sizeof out->skills, "%s", skills);
    }
    return u.id;
}

/* A chat agent closed in queue at closed_s (still open with agent when closed_s is 0). */
static int64_t chat(struct store *s, int64_t agent, const char *queue, int64_t closed_s)
{
    struct store_conversation c;
    memset(&c, 0, sizeof c);
    c.created_s = (closed_s ? closed_s : T0) - 600;
    testlib_conversation(s, &c);
    struct store_message m = testlib_message_of(c.id, STORE_SENDER_CUSTOMER, NULL, NULL, "help");
    m.created_s = c.created_s;
    assert_int_equal(store_message_append(s, &m), 0);
    snprintf(c.queue, sizeof c.queue, "%s", queue);
    c.queued_s = c.created_s + 10;
    c.picked_s = c.created_s + 20;
    c.agent_id = agent;
    c.state = closed_s ? STORE_STATE_CLOSED : STORE_STATE_WITH_AGENT;
    c.closed_s = closed_s;
    assert_int_equal(store_conversation_update(s, &c), 0);
    return c.id;
}

static json_t *scores(int greeting, int correct, int sensitive, int next)
{
    return json_pack("{s:i, s:i, s:i, s:i}", "greeting", greeting, "correct_answer", correct,
                     "no_sensitive_data", sensitive, "next_step", next);
}

static int setup(void **state)
{
    (void)state;
    char *err = NULL;
    int rc = qa_rubric_parse(rubric_text, sizeof rubric_text - 1, &rubric, &err);
    if (rc)
        fprintf(stderr, "rubric: %s\n", err);
    free(err);
    return rc;
}

static void test_rubric(void **state)
{
    (void)state;
    assert_string_equal(rubric.name, "chat-test");
    assert_int_equal(rubric.n_criteria, 4);
    assert_int_equal(rubric.scale, 4);
    assert_true(rubric.criteria[2].is_critical);
    assert_false(rubric.criteria[0].is_critical);

    /* The shipped rubric parses. */
    struct qa_rubric shipped;
    char *err = NULL;
    assert_int_equal(qa_rubric_load("qa/rubric.json", &shipped, &err), 0);
    assert_int_equal(shipped.n_criteria, 5);
    assert_int_equal(qa_rubric_load("qa/none.json", &shipped, &err), CD_ENOTFOUND);
    assert_non_null(strstr(err, "qa/none.json"));
    free(err);

    static const struct {
        const char *text, *says;
    } bad[] = {
        {"{", "not JSON"},
        {"{\"pass_mark\": 80, \"criteria\": []}", "'name'"},
        {"{\"name\": \"x\", \"pass_mark\": 120, \"criteria\": []}", "'pass_mark'"},
        {"{\"name\": \"x\", \"pass_mark\": 80, \"criteria\": []}", "'criteria'"},
        {"{\"name\": \"x\", \"pass_mark\": 80, \"scale\": 0, \"criteria\": []}", "'scale'"},
        {"{\"name\": \"x\", \"pass_mark\": 80, \"criteria\": [{\"id\": \"A b\", \"label\": \"l\","
         " \"weight\": 1}]}",
         "criterion 1: 'id'"},
        {"{\"name\": \"x\", \"pass_mark\": 80, \"criteria\": [{\"id\": \"a\", \"label\": \"l\","
         " \"weight\": 0}]}",
         "'weight'"},
        {"{\"name\": \"x\", \"pass_mark\": 80, \"criteria\": [{\"id\": \"a\", \"label\": \"l\","
         " \"weight\": 1}, {\"id\": \"a\", \"label\": \"l\", \"weight\": 1}]}",
         "twice"},
        {"{\"name\": \"x\", \"pass_mark\": 80, \"criteria\": [{\"id\": \"a\", \"weight\": 1}]}",
         "'label'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct qa_rubric r;
        err = NULL;
        assert_true(qa_rubric_parse(bad[i].text, strlen(bad[i].text), &r, &err) < 0);
        assert_non_null(err);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: got '%s', expected '%s'", bad[i].text, err, bad[i].says);
        free(err);
    }
}

static void test_score(void **state)
{
    (void)state;
    double score;
    int passed;
    const char *why;
    json_t *sc = scores(4, 4, 4, 4);
    assert_int_equal(qa_score(&rubric, sc, &score, &passed, &why), 0);
    assert_true(score == 100.0 && passed);
    json_decref(sc);
    /* (10*2 + 50*4 + 20*4 + 20*2) / 4 / 100 = 85%: passes the 80 mark. */
    sc = scores(2, 4, 4, 2);
    assert_int_equal(qa_score(&rubric, sc, &score, &passed, &why), 0);
    assert_true(score == 85.0 && passed);
    json_decref(sc);
    /* 77.5%: below the mark. */
    sc = scores(4, 3, 4, 2);
    assert_int_equal(qa_score(&rubric, sc, &score, &passed, &why), 0);
    assert_true(score == 77.5 && !passed);
    json_decref(sc);
    /* Asking for a password fails the audit whatever the rest: 80% but failed. */
    sc = scores(4, 4, 0, 4);
    assert_int_equal(qa_score(&rubric, sc, &score, &passed, &why), 0);
    assert_true(score == 80.0 && !passed);
    json_decref(sc);
    /* Bad scores: missing, extra, out of range, not whole. */
    json_t *bad[] = {
        json_pack("{s:i, s:i, s:i}", "greeting", 1, "correct_answer", 1, "next_step", 1),
        json_pack("{s:i, s:i, s:i, s:i, s:i}", "greeting", 1, "correct_answer", 1,
                  "no_sensitive_data", 1, "next_step", 1, "extra", 1),
        scores(5, 1, 1, 1),
        scores(-1, 1, 1, 1),
        json_pack("{s:f, s:i, s:i, s:i}", "greeting", 1.5, "correct_answer", 1, "no_sensitive_data",
                  1, "next_step", 1),
        json_pack("{s:i, s:i, s:i, s:i}", "greeting", 1, "correct_answr", 1, "no_sensitive_data", 1,
                  "next_step", 1),
        json_pack("[i]", 1),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(qa_score(&rubric, bad[i], &score, &passed, &why), CD_EINVAL);
        assert_non_null(why);
        json_decref(bad[i]);
    }
}

static int same_picks(const struct qa_pick *a, int na, const struct qa_pick *b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (a[i].conversation != b[i].conversation)
            return 0;
    return 1;
}

static void test_sample(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ana = user(s, "Ana", "agent", "", NULL), ben = user(s, "Ben", "agent", "", NULL);
    /* Ana: 6 billing and 2 orders chats this week, one last week, one still
     * open; Ben: 3 orders chats. */
    for (int i = 0; i < 6; i++)
        chat(s, ana, "billing", T0 + DAY + i * 100);
    chat(s, ana, "orders", T0 + 2 * DAY);
    chat(s, ana, "orders", T0 + 3 * DAY);
    chat(s, ana, "orders", T0 - DAY);
    chat(s, ana, "orders", 0);
    for (int i = 0; i < 3; i++)
        chat(s, ben, "orders", T0 + 4 * DAY + i);

    struct qa_pick *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    assert_int_equal(qa_sample_draw(s, T0, T0 + 7 * DAY, 4, 42, &a, &na), 0);
    /* Ana: 4 of 8, by queue in proportion: 3 billing, 1 orders. Ben: all 3. */
    assert_int_equal(na, 7);
    int ana_billing = 0, ana_orders = 0, ben_orders = 0;
    for (int i = 0; i < na; i++) {
        assert_true(a[i].conversation > 0);
        if (a[i].agent_id == ana && !strcmp(a[i].queue, "billing"))
            ana_billing++;
        else if (a[i].agent_id == ana && !strcmp(a[i].queue, "orders"))
            ana_orders++;
        else if (a[i].agent_id == ben)
            ben_orders++;
    }
    assert_int_equal(ana_billing, 3);
    assert_int_equal(ana_orders, 1);
    assert_int_equal(ben_orders, 3);
    /* The same seed draws the same conversations. */
    assert_int_equal(qa_sample_draw(s, T0, T0 + 7 * DAY, 4, 42, &b, &nb), 0);
    assert_true(same_picks(a, na, b, nb));
    free(b);
    /* Other seeds draw others (some of 20 ways to take 3 of Ana's 6 billing chats). */
    int n_different = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        assert_int_equal(qa_sample_draw(s, T0, T0 + 7 * DAY, 4, seed, &b, &nb), 0);
        n_different += !same_picks(a, na, b, nb);
        free(b);
    }
    assert_true(n_different >= 4);
    /* One per agent: Ana's from billing, the bigger queue. */
    assert_int_equal(qa_sample_draw(s, T0, T0 + 7 * DAY, 1, 42, &b, &nb), 0);
    assert_int_equal(nb, 2);
    assert_string_equal(b[0].queue, "billing");
    free(b);
    assert_int_equal(qa_sample_draw(s, T0, T0 + 7 * DAY, 0, 42, &b, &nb), CD_EINVAL);

    /* Stored, listed, and replaced by a new draw. */
    assert_int_equal(qa_sample_save(s, "2025-W49", 42, 0, a, na), 0);
    json_t *list = NULL;
    assert_int_equal(qa_sample_list(s, "2025-W49", 0, &list), 0);
    assert_int_equal(json_integer_value(json_object_get(list, "seed")), 42);
    assert_int_equal(json_array_size(json_object_get(list, "samples")), 7);
    json_decref(list);
    assert_int_equal(qa_sample_save(s, "2025-W49", 7, 0, a, 2), 0);
    assert_int_equal(qa_sample_list(s, "2025-W49", 0, &list), 0);
    assert_int_equal(json_array_size(json_object_get(list, "samples")), 2);
    json_decref(list);
    assert_int_equal(qa_sample_list(s, "2025-W40", 0, &list), 0);
    assert_true(json_is_null(json_object_get(list, "seed")));
    json_decref(list);
    free(a);
    store_close(s);
}

static void test_audit_rights_calibration_scores(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    struct auth_user ana, sue, sam, root, bo;
    user(s, "Ana", "agent", "", &ana);
    user(s, "Sue", "supervisor", "", &sue);
    user(s, "Sam", "supervisor", "orders", &sam);
    user(s, "Root", "admin", "", &root);
    user(s, "Bo", "agent", "", &bo);
    int64_t billing = chat(s, ana.id, "billing", T0 + DAY);
    int64_t orders = chat(s, ana.id, "orders", T0 + DAY);
    int64_t open = chat(s, ana.id, "billing", 0);
    int64_t roots = chat(s, root.id, "billing", T0 + DAY);
    const char *why;
    json_t *sc = scores(4, 4, 4, 4), *out = NULL;

    /* Outside their rights: nothing is stored. */
    assert_int_equal(qa_audit_save(s, &rubric, billing, &bo, sc, NULL, NULL, &why), CD_EPERM);
    assert_int_equal(qa_audit_save(s, &rubric, billing, &sam, sc, NULL, NULL, &why), CD_EPERM);
    assert_non_null(strstr(why, "queue"));
    assert_int_equal(qa_audit_save(s, &rubric, roots, &root, sc, NULL, NULL, &why), CD_EPERM);
    assert_int_equal(qa_audit_save(s, &rubric, open, &sue, sc, NULL, NULL, &why), CD_ESTATE);
    assert_int_equal(qa_audit_save(s, &rubric, 999, &sue, sc, NULL, NULL, &why), CD_ENOTFOUND);
    json_t *bad = scores(9, 4, 4, 4);
    assert_int_equal(qa_audit_save(s, &rubric, billing, &sue, bad, NULL, NULL, &why), CD_EINVAL);
    json_decref(bad);
    char long_comment[2100];
    memset(long_comment, 'x', sizeof long_comment - 1);
    long_comment[sizeof long_comment - 1] = '\0';
    assert_int_equal(qa_audit_save(s, &rubric, billing, &sue, sc, long_comment, NULL, &why),
                     CD_ETOOBIG);
    json_t *list = NULL;
    assert_int_equal(qa_audits_list(s, 0, 0, INT64_MAX, &list), 0);
    assert_int_equal(json_array_size(json_object_get(list, "audits")), 0);
    json_decref(list);

    /* Sam may score orders; Sue and Root score billing differently. */
    assert_int_equal(qa_audit_save(s, &rubric, orders, &sam, sc, "Good", &out, &why), 0);
    assert_true(json_real_value(json_object_get(out, "score")) == 100.0);
    json_decref(out);
    json_t *sue_scores = scores(2, 4, 4, 2), *root_scores = scores(4, 2, 4, 4);
    assert_int_equal(qa_audit_save(s, &rubric, billing, &sue, sc, NULL, NULL, &why), 0);
    /* Scoring again replaces the reviewer's earlier audit. */
    assert_int_equal(
        qa_audit_save(s, &rubric, billing, &sue, sue_scores, "Greeting was curt", NULL, &why), 0);
    assert_int_equal(qa_audit_save(s, &rubric, billing, &root, root_scores, NULL, NULL, &why), 0);

    assert_int_equal(qa_audits_list(s, ana.id, 0, INT64_MAX, &list), 0);
    json_t *audits = json_object_get(list, "audits");
    assert_int_equal(json_array_size(audits), 3);
    json_t *first = json_array_get(audits, 0);
    assert_string_equal(json_string_value(json_object_get(first, "agent")), "Ana");
    json_decref(list);
    assert_int_equal(qa_audits_list(s, bo.id, 0, INT64_MAX, &list), 0);
    assert_int_equal(json_array_size(json_object_get(list, "audits")), 0);
    json_decref(list);

    /* Calibration: only the billing chat has two reviewers. Sue 85%, Root
     * (40 + 100 + 80 + 80) / 4 = 75%: a spread of 10; greeting 2 vs 4. */
    json_t *cal = NULL;
    assert_int_equal(qa_calibration(s, &rubric, T0, T0 + 7 * DAY, &cal), 0);
    json_t *convs = json_object_get(cal, "conversations");
    assert_int_equal(json_array_size(convs), 1);
    json_t *c0 = json_array_get(convs, 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "conversation")), billing);
    assert_true(json_real_value(json_object_get(c0, "score_spread")) == 10.0);
    json_t *greeting = json_array_get(json_object_get(c0, "criteria"), 0);
    assert_string_equal(json_string_value(json_object_get(greeting, "id")), "greeting");
    assert_true(json_real_value(json_object_get(greeting, "spread")) == 2.0);
    assert_true(json_real_value(json_object_get(greeting, "stddev")) == 1.0);
    json_t *sensitive = json_array_get(json_object_get(c0, "criteria"), 2);
    assert_true(json_real_value(json_object_get(sensitive, "spread")) == 0.0);
    json_t *summary = json_array_get(json_object_get(cal, "criteria"), 1);
    assert_string_equal(json_string_value(json_object_get(summary, "id")), "correct_answer");
    assert_true(json_real_value(json_object_get(summary, "mean_spread")) == 2.0);
    json_decref(cal);

    /* Scores per agent and week: Ana's three audits, (100 + 85 + 75) / 3. */
    json_t *sco = NULL;
    assert_int_equal(qa_scores(s, 0, T0, T0 + 14 * DAY, &sco), 0);
    json_t *a0 = json_array_get(json_object_get(sco, "agents"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "agent")), "Ana");
    json_t *w0 = json_array_get(json_object_get(a0, "weeks"), 0);
    assert_string_equal(json_string_value(json_object_get(w0, "week")), "2025-W49");
    assert_int_equal(json_integer_value(json_object_get(w0, "n")), 3);
    assert_true(json_real_value(json_object_get(w0, "score")) == 86.67);
    assert_int_equal(json_integer_value(json_object_get(w0, "passed")), 2);
    json_decref(sco);

    /* report.c's QA score: the mean over audits of the window's conversations. */
    struct report r;
    assert_int_equal(report_compute(s, NULL, T0, T0 + 7 * DAY, T0 + 7 * DAY, &r), 0);
    assert_int_equal(r.n_qa, 3);
    assert_true(r.qa_score > 86.66 && r.qa_score < 86.67);
    report_clear(&r);

    json_decref(sc);
    json_decref(sue_scores);
    json_decref(root_scores);
    store_close(s);
}

/* A new PostgreSQL database whose locale sorts text as people do (ICU, en-US: "ana" before
 * "Bob"), not by bytes as SQLite and the test cluster's C locale do. */
static int setup_pg_icu(void **state)
{
    (void)state;
    char admin[256], sql[256];
    testlib_pg_database(admin, sizeof admin, "qa_admin");
    struct db *db = db_open_postgres(admin, NULL);
    if (!db)
        fail_msg("cannot connect to %s", admin);
    char *slash = strrchr(admin, '/');
    snprintf(testlib_db, sizeof testlib_db, "%.*st_qa_icu_%d", (int)(slash + 1 - admin), admin,
             (int)getpid());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS t_qa_icu_%d WITH (FORCE)", (int)getpid());
    int rc = db_exec(db, sql, NULL);
    snprintf(sql, sizeof sql,
             "CREATE DATABASE t_qa_icu_%d LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
             " TEMPLATE template0",
             (int)getpid());
    if (!rc)
        rc = db_exec(db, sql, NULL);
    if (rc)
        fail_msg("%s: %s", sql, db_errmsg(db));
    db_close(db);
    return 0;
}

/* Names, queues and drivers sort by their bytes on both backends, whatever the database's
 * locale: "Bob" before "ana" (as SQLite's BINARY has it), in the sample, the scores and the
 * report's drivers. */
static void test_text_order(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    struct auth_user sue;
    int64_t ana = user(s, "ana", "agent", "", NULL), bob = user(s, "Bob", "agent", "", NULL);
    user(s, "Sue", "supervisor", "", &sue);
    const char *queues[2] = {"billing", "Orders"}, *drivers[2] = {"refund", "Refund_late"};
    int64_t conv[4];
    for (int i = 0; i < 4; i++) {
        conv[i] = chat(s, i < 2 ? ana : bob, queues[i % 2], T0 + DAY + i);
        struct store_conversation c;
        assert_int_equal(store_conversation_get(s, conv[i], &c), 0);
        snprintf(c.disposition, sizeof c.disposition, "%s", drivers[i % 2]);
        assert_int_equal(store_conversation_update(s, &c), 0);
        store_conversation_clear(&c);
    }
    struct qa_pick *picks = NULL;
    int n = 0;
    assert_int_equal(qa_sample_draw(s, T0, T0 + 7 * DAY, 2, 42, &picks, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(qa_sample_save(s, "2025-W49", 42, 0, picks, n), 0);
    free(picks);
    json_t *list = NULL;
    assert_int_equal(qa_sample_list(s, "2025-W49", 0, &list), 0);
    json_t *samples = json_object_get(list, "samples");
    static const char *const want[4][2] = {
        {"Bob", "Orders"}, {"Bob", "billing"}, {"ana", "Orders"}, {"ana", "billing"}};
    for (size_t i = 0; i < 4; i++) {
        json_t *row = json_array_get(samples, i);
        assert_string_equal(json_string_value(json_object_get(row, "agent")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(row, "queue")), want[i][1]);
    }
    json_decref(list);

    const char *why;
    json_t *sc = scores(4, 4, 4, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(qa_audit_save(s, &rubric, conv[i], &sue, sc, NULL, NULL, &why), 0);
    json_decref(sc);
    json_t *sco = NULL;
    assert_int_equal(qa_scores(s, 0, T0, T0 + 7 * DAY, &sco), 0);
    json_t *agents = json_object_get(sco, "agents");
    assert_string_equal(json_string_value(json_object_get(json_array_get(agents, 0), "agent")),
                        "Bob");
    assert_string_equal(json_string_value(json_object_get(json_array_get(agents, 1), "agent")),
                        "ana");
    json_decref(sco);

    /* Two drivers of two conversations each: the tie goes to the first by bytes. */
    struct report r;
    assert_int_equal(report_compute(s, NULL, T0, T0 + 7 * DAY, T0 + 7 * DAY, &r), 0);
    assert_int_equal(r.n_drivers, 2);
    assert_string_equal(r.drivers[0].name, "Refund_late");
    assert_string_equal(r.drivers[1].name, "refund");
    report_clear(&r);
    store_close(s);
}

/* Inside the store's open group: a sample that cannot be saved (a conversation that does not
 * exist) leaves the week's earlier sample as it was, and the group goes on and commits. */
static void test_sample_in_a_transaction(void **state)
{
    (void)state;
    struct store *s = testlib_store(testlib_db);
    int64_t ana = user(s, "Ana", "agent", "", NULL);
    struct qa_pick picks[2];
    memset(picks, 0, sizeof picks);
    picks[0].conversation = chat(s, ana, "billing", T0 + DAY);
    picks[0].agent_id = ana;
    snprintf(picks[0].queue, sizeof picks[0].queue, "billing");
    assert_int_equal(qa_sample_save(s, "2025-W49", 42, 0, picks, 1), 0);

    assert_int_equal(store_begin(s), 0);
    picks[1] = picks[0];
    picks[1].conversation = 999; /* no such conversation */
    assert_int_not_equal(qa_sample_save(s, "2025-W49", 7, 0, picks, 2), 0);
    int64_t later = chat(s, ana, "orders", T0 + 2 * DAY); /* the group goes on */
    assert_int_equal(store_commit(s), 0);

    json_t *list = NULL;
    assert_int_equal(qa_sample_list(s, "2025-W49", 0, &list), 0);
    assert_int_equal(json_integer_value(json_object_get(list, "seed")), 42);
    assert_int_equal(json_array_size(json_object_get(list, "samples")), 1);
    json_decref(list);
    struct store_conversation c;
    assert_int_equal(store_conversation_get(s, later, &c), 0);
    store_conversation_clear(&c);
    store_close(s);
}

#define T(f) TESTLIB_ON_SQLITE(f)

#define P(f) TESTLIB_ON_PG(f)

int main(void)
{
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest on_sqlite[] = {
        cmocka_unit_test(test_rubric),
        cmocka_unit_test(test_score),
        T(test_sample),
        T(test_audit_rights_calibration_scores),
        T(test_sample_in_a_transaction),
        T(test_text_order),
    };
    const struct CMUnitTest on_postgres[] = {
        P(test_sample),
        P(test_audit_rights_calibration_scores),
        P(test_sample_in_a_transaction),
        cmocka_unit_test_setup_teardown(test_text_order, setup_pg_icu, NULL),
    };
    TESTLIB_RUN_BOTH("qa", on_sqlite, on_postgres, setup);
}
