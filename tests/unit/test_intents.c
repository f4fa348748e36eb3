/* test_intents: loading and validating intent definitions, rules, the model,
 * its calibration and sharing a trained set between threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cd.h"
#include "intents.h"
#include "testlib.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct errors {
    char lines[32][256];
    int n;
};

static void on_error(void *ctx, const char *file, const char *field, const char *message)
{
    struct errors *e = ctx;
    if (e->n < 32)
        snprintf(e->lines[e->n++], sizeof e->lines[0], "%s|%s|%s", file, field, message);
}

static int has_error(const struct errors *e, const char *file_part, const char *field)
{
    for (int i = 0; i < e->n; i++) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", e->lines[i]);
        char *bar = strchr(copy, '|');
        if (!bar)
            continue;
        *bar = '\0';
        char *f = bar + 1;
        char *bar2 = strchr(f, '|');
        if (bar2)
            *bar2 = '\0';
        if (strstr(copy, file_part) && !strcmp(f, field))
            return 1;
    }
    return 0;
}

static char tmpdir[64];

/* Writes text to the file name in tmpdir. */
static void write_file(const char *name, const char *text)
{
    testlib_write_file(tmpdir, name, text);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cd-intents-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_load_good_and_bad(void **state)
{
    (void)state;
    write_file("a_good.json",
               "[{\"name\":\"refund_status\",\"description\":\"Where is my refund\","
               "\"examples\":[\"where is my refund\",\"refund not received\"],"
               "\"patterns\":[\"refund status\"],\"response\":\"Refunds take 5 days.\","
               "\"queue\":\"billing\",\"priority\":2},"
               "{\"name\":\"cancel_order\",\"examples\":[\"cancel my order\"],"
               "\"action\":\"collect\",\"collect\":{\"field\":\"order_number\","
               "\"prompt\":\"What is your order number?\",\"regex\":\"[0-9]{5,}\"},"
               "\"queue\":\"orders\",\"sensitive\":true}]");
    write_file("bad.json",
               "[{\"name\":\"bad_regex\",\"examples\":[\"x\"],\"regex\":[\"(unclosed\"],"
               "\"response\":\"r\"},"
               "{\"examples\":[\"no name\"],\"response\":\"r\"},"
               "{\"name\":\"bad_action\",\"examples\":[\"x\"],\"action\":\"dance\"},"
               "{\"name\":\"bad_priority\",\"examples\":[\"x\"],\"response\":\"r\",\"priority\":9},"
               "{\"name\":\"bad_collect\",\"examples\":[\"x\"],\"action\":\"collect\"},"
               "{\"name\":\"no_response\",\"examples\":[\"x\"]},"
               "{\"name\":\"Bad Name\",\"examples\":[\"x\"],\"response\":\"r\"},"
               "{\"name\":\"refund_status\",\"examples\":[\"dup\"],\"response\":\"r\"},"
               "{\"name\":\"bad_examples\",\"examples\":[1,2],\"response\":\"r\"},"
               "{\"name\":\"huge_regex\",\"examples\":[\"x\"],\"regex\":[\"re(tu++++++++++++++)\"],"
               "\"response\":\"r\"},"
               "{\"name\":\"huge_collect\",\"examples\":[\"x\"],\"action\":\"collect\","
               "\"collect\":{\"field\":\"f\",\"prompt\":\"p\",\"regex\":\"((a{100}){100})\"}},"
               "{\"name\":\"ok_after_bad\",\"examples\":[\"hello there\"],\"response\":\"Hi!\"}]");
    write_file("broken.json", "{\"name\": \"broken\", ");
    write_file("notes.txt", "not an intent file, ignored");

    struct intents *set = intents_new();
    assert_non_null(set);
    struct errors e = {0};
    struct intents_load_report report = {.on_error = on_error, .ctx = &e};
    assert_int_equal(intents_load_path(set, tmpdir, NULL, &report), 0);
    assert_int_equal(intents_count(set), 3);
    assert_int_equal(report.n_loaded, 3);
    assert_int_equal(report.n_skipped, 12);
    static const char *const at_fault[][2] = {
        {"bad.json", "bad_regex.regex[0]"},
        {"bad.json", "[1].name"},
        {"bad.json", "bad_action.action"},
        {"bad.json", "bad_priority.priority"},
        {"bad.json", "bad_collect.collect"},
        {"bad.json", "no_response.response"},
        {"bad.json", "[6].name"},
        {"bad.json", "[7].name"},
        {"bad.json", "bad_examples.examples"},
        {"broken.json", "(file)"},
        /* A regex that would make the compiler take gigabytes is refused, saying what to
         * change. */
        {"bad.json", "huge_regex.regex[0]"},
        {"bad.json", "huge_collect.collect.regex"},
    };
    for (size_t k = 0; k < sizeof at_fault / sizeof at_fault[0]; k++)
        if (!has_error(&e, at_fault[k][0], at_fault[k][1]))
            fail_msg("no error reported for %s %s", at_fault[k][0], at_fault[k][1]);
    int n_said = 0;
    for (int k = 0; k < e.n; k++)
        n_said += strstr(e.lines[k], "once its repetitions are written out") != NULL;
    assert_int_equal(n_said, 2);

    int i = intents_find(set, "cancel_order");
    assert_true(i >= 0);
    const struct intent *it = intents_get(set, i);
    assert_int_equal(it->action, INTENT_COLLECT);
    assert_string_equal(it->collect.field, "order_number");
    assert_string_equal(it->queue, "orders");
    assert_true(it->is_sensitive);
    assert_int_equal(it->priority, 3);
    it = intents_get(set, intents_find(set, "refund_status"));
    assert_int_equal(it->priority, 2);
    assert_string_equal(it->lang, "en");
    assert_int_equal(it->n_examples, 2);
    assert_true(intents_find(set, "ok_after_bad") >= 0);
    assert_int_equal(intents_find(set, "bad_regex"), -1);
    intents_free(set);
}

static void test_load_missing_path(void **state)
{
    (void)state;
    struct intents *set = intents_new();
    assert_int_equal(intents_load_path(set, "/nonexistent/intents", NULL, NULL), CD_ENOTFOUND);
    assert_int_equal(intents_count(set), 0);
    intents_free(set);
}

static void test_load_jsonl(void **state)
{
    (void)state;
    write_file("examples.jsonl", "{\"text\":\"where is my card\",\"intent\":\"card_arrival\"}\n"
                                 "{\"text\":\"my card never came\",\"intent\":\"card_arrival\"}\n"
                                 "not json\n"
                                 "{\"text\":\"\",\"intent\":\"card_arrival\"}\n"
                                 "{\"text\":\"what is the weather\",\"intent\":\"oos\"}\n"
                                 "{\"text\":\"change my pin\",\"intent\":\"change_pin\"}\n"
                                 "{\"text\":\"no intent here\"}\n");
    struct intents *set = intents_new();
    struct errors e = {0};
    struct intents_load_report report = {.on_error = on_error, .ctx = &e};
    char path[128];
    snprintf(path, sizeof path, "%s/examples.jsonl", tmpdir);
    assert_int_equal(intents_load_path(set, path, NULL, &report), 0);
    assert_int_equal(report.n_loaded, 4);
    assert_int_equal(report.n_skipped, 3);
    assert_true(has_error(&e, "examples.jsonl:3", "(line)"));
    assert_true(has_error(&e, "examples.jsonl:4", "text"));
    assert_true(has_error(&e, "examples.jsonl:7", "intent"));
    assert_int_equal(intents_count(set), 3);
    const struct intent *oos = intents_get(set, intents_find(set, "oos"));
    assert_true(oos->is_oos);
    const struct intent *card = intents_get(set, intents_find(set, "card_arrival"));
    assert_int_equal(card->action, INTENT_ANSWER);
    assert_int_equal(card->n_examples, 2);
    assert_string_equal(card->description, "card arrival");
    intents_free(set);
}

static struct intents *load_string(const char *json)
{
    return testlib_intents(&json, 1, "test.json");
}

static const char rules_json[] =
    "[{\"name\":\"refund_status\",\"patterns\":[\"refund status\",\"where is my refund\"],"
    "\"response\":\"r\"},"
    "{\"name\":\"track_order\",\"regex\":[\"track(ing)? (my )?(order|package)\"],"
    "\"response\":\"r\"},"
    "{\"name\":\"human\",\"action\":\"handoff\",\"patterns\":[\"real person\"],"
    "\"regex\":[\"^agent$\"]}]";

static void test_rules(void **state)
{
    (void)state;
    struct intents *set = load_string(rules_json);
    struct intents_scratch *s = intents_scratch_new();
    struct intents_result r;
    /* Each message and the rule it matches (NULL: none). */
    static const struct {
        const char *text, *intent;
    } cases[] = {
        /* Stemmed: "refunds" and "Status" still match "refund status". */
        {"What's the REFUNDS Status please", "refund_status"},
        /* In order and contiguous only. */
        {"status of the refund", NULL},
        /* Stop words are kept in patterns: "where is my refund" needs "is my". */
        {"where is my refund?", "refund_status"},
        {"where refund", NULL},
        /* Regex on folded text. */
        {"Tracking my PACKAGE", "track_order"},
        /* A person request beats any other rule in the same message. */
        {"refund status? no, a real person", "human"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *m = cases[i].text;
        assert_int_equal(intents_classify(set, s, m, strlen(m), "en", &r), 0);
        if (r.rule_intent != (cases[i].intent ? intents_find(set, cases[i].intent) : -1))
            fail_msg("'%s': rule %d, expected %s", m, r.rule_intent,
                     cases[i].intent ? cases[i].intent : "none");
        if (i == 0)
            assert_non_null(strstr(r.rule_what, "refund status"));
    }
    assert_true(intents_get(set, intents_find(set, "human"))->is_person_request);
    /* Empty and odd input never fails. */
    assert_int_equal(intents_classify(set, s, "", 0, "en", &r), 0);
    assert_int_equal(r.rule_intent, -1);
    assert_int_equal(intents_classify(set, s, "\xff\xfe", 2, "xx", &r), 0);
    intents_scratch_free(s);
    intents_free(set);
}

static void test_trained_is_immutable(void **state)
{
    (void)state;
    struct intents *set = load_string(rules_json);
    assert_true(intents_is_trained(set));
    assert_int_equal(intents_add_example(set, "x", "y", NULL), CD_ESTATE);
    assert_int_equal(intents_load_json(set, "{}", 2, "x.json", NULL), CD_ESTATE);
    assert_int_equal(intents_train(set, NULL), CD_ESTATE);
    intents_free(set);

    struct intents *empty = intents_new();
    struct intents_scratch *s = intents_scratch_new();
    struct intents_result r;
    assert_int_equal(intents_classify(empty, s, "hi", 2, "en", &r), CD_ESTATE);
    assert_int_equal(intents_train(empty, NULL), CD_EINVAL);
    intents_scratch_free(s);
    intents_free(empty);
}

/* A synthetic task: each class has its own keywords, messages mix one or two
 * of them with shared filler and, sometimes, another class's keyword, so the
 * right answer is uncertain in a way the model must express. */
static const char *const class_words[8][3] = {
    {"refund", "money back", "reimburse"}, {"deliver", "shipping", "courier"},
    {"password", "login", "sign in"},      {"invoice", "receipt", "bill"},
    {"cancel", "stop order", "abort"},     {"address", "move house", "postcode"},
    {"discount", "coupon", "promo code"},  {"broken", "damaged", "cracked"},
};
static const char *const filler[] = {"please", "i need help with",     "my",     "the",
                                     "hello",  "quick question about", "urgent", "thanks",
                                     "today"};

static unsigned int rng_state = 12345;
static unsigned int rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) & 0x7fff;
}

static void synth(char *out, size_t cap, int *label)
{
    int c = (int)(rnd() % 8);
    *label = c;
    int noise = (int)(rnd() % 100) < 30 ? (int)(rnd() % 8) : -1;
    snprintf(out, cap, "%s %s %s %s", filler[rnd() % 9], class_words[c][rnd() % 3],
             noise >= 0 ? class_words[noise][rnd() % 3] : filler[rnd() % 9], filler[rnd() % 9]);
}

static void test_calibration_synthetic(void **state)
{
    (void)state;
    struct intents *set = intents_new();
    char name[16], text[256];
    for (int i = 0; i < 1600; i++) {
        int c;
        synth(text, sizeof text, &c);
        snprintf(name, sizeof name, "class_%d", c);
        assert_int_equal(intents_add_example(set, text, name, NULL), 0);
    }
    struct intents_train_options o = {.is_quiet = 1};
    assert_int_equal(intents_train(set, &o), 0);
    double t = intents_temperature(set);
    assert_true(t > 0.05 && t < 20);

    struct intents_scratch *s = intents_scratch_new();
    double bin_n[10] = {0}, bin_c[10] = {0}, bin_r[10] = {0};
    int n = 2000, n_right = 0;
    for (int i = 0; i < n; i++) {
        int c;
        synth(text, sizeof text, &c);
        struct intents_result r;
        assert_int_equal(intents_classify(set, s, text, strlen(text), "en", &r), 0);
        assert_true(r.n_top >= 2);
        double sum = 0;
        for (int k = 0; k < r.n_top; k++) {
            assert_true(r.top_p[k] >= 0 && r.top_p[k] <= 1);
            if (k)
                assert_true(r.top_p[k] <= r.top_p[k - 1]);
            sum += r.top_p[k];
        }
        assert_true(sum <= 1.0 + 1e-9);
        snprintf(name, sizeof name, "class_%d", c);
        int right = r.top[0] == intents_find(set, name);
        n_right += right;
        int b = (int)(r.top_p[0] * 10);
        b = b > 9 ? 9 : b;
        bin_n[b]++;
        bin_c[b] += r.top_p[0];
        bin_r[b] += right;
    }
    double ece = 0;
    for (int b = 0; b < 10; b++)
        ece += fabs(bin_c[b] - bin_r[b]) / n;
    /* About 30% of messages carry a second class's keyword, so the best
     * possible accuracy is about 85%; confidence must say so. */
    assert_true((double)n_right / n > 0.75);
    assert_true((double)n_right / n < 0.97);
    assert_true(ece < 0.06);

    /* Refitting on held-out rows keeps a sane temperature. */
    const char *texts[200];
    char buf[200][128];
    int labels[200];
    for (int i = 0; i < 200; i++) {
        int c;
        synth(buf[i], sizeof buf[i], &c);
        texts[i] = buf[i];
        snprintf(name, sizeof name, "class_%d", c);
        labels[i] = intents_find(set, name);
    }
    assert_int_equal(intents_calibrate(set, texts, labels, 200), 0);
    assert_true(intents_temperature(set) > 0.05 && intents_temperature(set) < 20);
    intents_scratch_free(s);
    intents_free(set);
}

struct thread_job {
    const struct intents *set;
    int top[64];
    double p[64];
};

static const char *const thread_texts[] = {"please refund me",   "courier lost my parcel",
                                           "cannot sign in",     "send me the receipt",
                                           "coupon not working", "my screen is cracked"};

static void *classify_many(void *arg)
{
    struct thread_job *job = arg;
    struct intents_scratch *s = intents_scratch_new();
    for (int rep = 0; rep < 200; rep++)
        for (int i = 0; i < 6; i++) {
            struct intents_result r;
            intents_classify(job->set, s, thread_texts[i], strlen(thread_texts[i]), "en", &r);
            job->top[i] = r.top[0];
            job->p[i] = r.top_p[0];
        }
    intents_scratch_free(s);
    return NULL;
}

static void test_shared_between_threads(void **state)
{
    (void)state;
    struct intents *set = intents_new();
    char name[16], text[256];
    rng_state = 777;
    for (int i = 0; i < 800; i++) {
        int c;
        synth(text, sizeof text, &c);
        snprintf(name, sizeof name, "class_%d", c);
        intents_add_example(set, text, name, NULL);
    }
    struct intents_train_options o = {.is_quiet = 1};
    assert_int_equal(intents_train(set, &o), 0);
    struct thread_job a = {.set = set}, b = {.set = set};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, classify_many, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, classify_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(a.top[i], b.top[i]);
        assert_true(a.p[i] == b.p[i]);
    }
    /* And the model learned the keywords. */
    assert_string_equal(intents_get(set, a.top[0])->name, "class_0");
    assert_string_equal(intents_get(set, a.top[5])->name, "class_7");
    intents_free(set);
}

int main(void)
{
    TESTLIB_RUN(
        NULL, NULL,
        {
            cmocka_unit_test_setup_teardown(test_load_good_and_bad, setup_dir, teardown_dir),
            cmocka_unit_test(test_load_missing_path),
            cmocka_unit_test_setup_teardown(test_load_jsonl, setup_dir, teardown_dir),
            cmocka_unit_test(test_rules),
            cmocka_unit_test(test_trained_is_immutable),
            cmocka_unit_test(test_calibration_synthetic),
            cmocka_unit_test(test_shared_between_threads),
        });
}
