/* test_triage: what the policy cases (tests/cases/policy.jsonl, run by test_cases) cannot
 * say: clarify choices, out of scope and P(in scope), the author's report, signals, the
 * decision's JSON form, bad input, swapping and retraining the intents, and the turns decided
 * outside triage_decide(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cd.h"
#include "cli.h"
#include "intents.h"
#include "intents_check.h"
#include "scope.h"
#include "kb.h"
#include "testlib.h"
#include "triage.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The small store's intents, shared with the policy cases in tests/cases/policy.jsonl. */
#define STORE_FIXTURE "tests/cases/fixtures/store.json"
static char *store_json;

static int load_store(void **state)
{
    (void)state;
    store_json = cd_read_file(STORE_FIXTURE, NULL);
    if (!store_json)
        fprintf(stderr, "test_triage: cannot read %s\n", STORE_FIXTURE);
    return store_json ? 0 : -1;
}

static int free_store(void **state)
{
    (void)state;
    free(store_json);
    return 0;
}

static struct triage *make_triage(const char *json, const struct triage_settings *s)
{
    struct triage *t = triage_new(s, testlib_intents(&json, 1, "store.json"), NULL);
    assert_non_null(t);
    return t;
}

static void decide_lang(struct triage *t, const char *text, const char *lang,
                        struct triage_decision *d)
{
    assert_int_equal(triage_decide(t, text, strlen(text), lang, NULL, d), 0);
    assert_non_null(d->answer);
}

static void decide(struct triage *t, const char *text, const struct triage_context *ctx,
                   struct triage_decision *d)
{
    assert_int_equal(triage_decide(t, text, strlen(text), "en", ctx, d), 0);
    assert_non_null(d->answer);
    assert_true(d->confidence >= 0 && d->confidence <= 1);
    assert_non_null(d->evidence.reason);
}

/* The model's evidence: its best intents, most probable first. (The rule's answer with its
 * article link is a case in tests/cases/policy.jsonl.) */
static void test_model_evidence(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct triage_decision d;
    decide(t, "my money back has not arrived yet", NULL, &d);
    assert_string_equal(d.evidence.model[0].intent, "refund_status");
    assert_true(d.evidence.n_model >= 2);
    assert_true(d.evidence.model[0].probability >= d.evidence.model[1].probability);
    triage_decision_clear(&d);
    triage_free(t);
}

/* An intent answered from its article's best paragraph: the paragraphs are
 * tokenized once and reused, and a revised article is read afresh. */
static void test_answer_from_article_paragraph(void **state)
{
    (void)state;
    static const char json[] =
        "[{\"name\":\"gift_cards\",\"examples\":[\"gift card balance\",\"how do gift cards "
        "work\",\"buy a gift card\"],\"patterns\":[\"gift card\"],\"article\":\"gift-cards\"},"
        "{\"name\":\"greeting\",\"examples\":[\"hi\",\"hello\",\"good morning\"],"
        "\"response\":\"Hi!\"}]";
    const char *docs[] = {json};
    struct intents *set = testlib_intents(docs, 1, "gift.json");
    struct kb *kb = kb_open(":memory:", NULL);
    assert_non_null(kb);
    struct kb_article a = {0};
    a.id = "gift-cards";
    a.title = "Gift cards";
    a.lang = "en";
    a.is_published = 1;
    a.body = "# Gift cards\n\nWe ship worldwide.\n\nYour gift card balance is on the "
             "receipt.\n\n- [Terms](/terms)";
    assert_int_equal(kb_put(kb, &a, NULL, 0), 0);
    struct triage *t = triage_new(NULL, set, kb);
    assert_non_null(t);
    struct triage_decision d;
    for (int i = 0; i < 2; i++) { /* the second time from the cache */
        decide(t, "what is my gift card balance", NULL, &d);
        assert_int_equal(d.action, TRIAGE_ANSWER);
        assert_string_equal(d.answer, "Your gift card balance is on the receipt.");
        triage_decision_clear(&d);
    }
    decide(t, "do you ship gift cards worldwide", NULL, &d);
    assert_string_equal(d.answer, "We ship worldwide.");
    triage_decision_clear(&d);
    a.body = "# Gift cards\n\nCheck the gift card balance in your account.";
    assert_int_equal(kb_put(kb, &a, NULL, 0), 0);
    decide(t, "what is my gift card balance", NULL, &d);
    assert_string_equal(d.answer, "Check the gift card balance in your account.");
    triage_decision_clear(&d);
    triage_free(t);
    kb_close(kb);
}

/* The KB answers a question by how much of it its best passage covers, each word weighed by
 * how rare it is among the articles: a question about something no article has ever mentioned
 * ("napa") is not covered by a passage that has its common words ("when", "close"), while the
 * same question in words the KB knows is answered, and so is one with a typo of them. */
static void test_kb_unknown_word(void **state)
{
    (void)state;
    static const char *const arts[][3] = {
        {"opening-hours", "Opening hours",
         "When does the shop open? The shop opens at 9 am and closes at 6 pm, Monday to "
         "Saturday."},
        {"returns", "Returns", "Return any item to the shop within 30 days for a refund."},
        {"shipping", "Shipping", "The shop ships every order within two working days."},
        {"gift-cards", "Gift cards", "Buy a gift card in the shop or online."},
        {"payment", "Payment", "The shop takes cards, PayPal and bank transfers."},
        {"tracking", "Track an order", "Follow your parcel from the shop's Orders page."},
        {"warranty", "Warranty", "Everything the shop sells has a two-year warranty."},
        {"account", "Your account", "Change your shop account's email or password here."},
    };
    struct kb *kb = kb_open(":memory:", NULL);
    assert_non_null(kb);
    for (size_t i = 0; i < sizeof arts / sizeof arts[0]; i++) {
        struct kb_article a = {0};
        a.id = (char *)arts[i][0];
        a.title = (char *)arts[i][1];
        a.body = (char *)arts[i][2];
        a.lang = "en";
        a.is_published = 1;
        assert_int_equal(kb_put(kb, &a, NULL, 0), 0);
    }
    struct triage *t = triage_new(NULL, NULL, kb);
    assert_non_null(t);
    static const struct {
        const char *text;
        enum triage_action action;
    } cases[] = {
        {"when does napa close", TRIAGE_HANDOFF},
        {"when does the shop close", TRIAGE_ANSWER},
        {"when does the shop clsoe", TRIAGE_ANSWER}, /* a typo of a word the KB has */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct triage_decision d;
        decide(t, cases[i].text, NULL, &d);
        assert_string_equal(d.evidence.kb_article, "opening-hours");
        if (d.action != cases[i].action)
            fail_msg("\"%s\": %s at coverage %.2f", cases[i].text, triage_action_name(d.action),
                     d.evidence.kb_score);
        if (d.action == TRIAGE_ANSWER)
            assert_string_equal(d.articles[0].id, "opening-hours");
        triage_decision_clear(&d);
    }
    triage_free(t);
    /* With no intents at all: the best article's passage, the others listed. */
    struct triage_decision d;
    assert_int_equal(triage_decide_kb_only(kb, "return an item to the shop", "en", &d), 0);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.articles[0].id, "returns");
    assert_string_equal(d.answer, "Return any item to the shop within 30 days for a refund.");
    assert_int_equal(d.n_articles, 3);
    triage_decision_clear(&d);
    kb_close(kb);
}

static void test_clarify_then_limit(void **state)
{
    (void)state;
    struct triage_settings s;
    triage_settings_default(&s);
    s.t_answer = 0.999;
    s.t_clarify = 0.01;
    s.t_in_scope = 0; /* the clarify mechanics alone: "where is it" is vague enough to be out */
    struct triage *t = make_triage(store_json, &s);
    struct triage_decision d;
    decide(t, "where is it", NULL, &d);
    assert_int_equal(d.action, TRIAGE_CLARIFY);
    assert_true(d.n_candidates >= 2 && d.n_candidates <= 3);
    for (int i = 1; i < d.n_candidates; i++)
        assert_true(d.candidates[i].probability <= d.candidates[i - 1].probability);
    assert_string_equal(d.intent, d.candidates[0].intent);
    assert_non_null(strstr(d.answer, d.candidates[0].label));
    assert_non_null(strstr(d.answer, d.candidates[1].label));
    triage_decision_clear(&d);

    /* The second failed clarification hands off. */
    struct triage_context ctx = {.n_clarify = 1};
    decide(t, "where is it", &ctx, &d);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.evidence.reason, "clarify_limit");
    triage_decision_clear(&d);
    triage_free(t);
}

static void test_out_of_scope(void **state)
{
    (void)state;
    struct triage *t = make_triage(
        "[{\"name\":\"track_order\",\"response\":\"r\",\"examples\":[\"where is my order\",\"track "
        "my package\","
        "\"my parcel has not arrived\",\"order status\",\"delivery of my order\"],"
        "\"response\":\"r\"},"
        "{\"name\":\"refund_status\",\"examples\":[\"where is my refund\",\"refund not received\","
        "\"money back\",\"refund status\",\"when do i get my refund\"],\"response\":\"r\"},"
        "{\"name\":\"oos\",\"examples\":[\"what is the weather\",\"tell me a joke\","
        "\"who won the game\",\"play some music\",\"what time is it in tokyo\","
        "\"weather tomorrow\",\"sing a song\"]}]",
        NULL);
    struct triage_decision d;
    decide(t, "what is the weather like tomorrow", NULL, &d);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_true(d.evidence.p_oos > 0.5);
    assert_string_equal(d.intent, "");
    triage_decision_clear(&d);
    decide(t, "where is my order", NULL, &d);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.intent, "track_order");
    assert_true(d.evidence.known_share > 0.99);
    triage_decision_clear(&d);

    /* Words no example uses: a low known share, out of scope once t_known is set. */
    decide(t, "xylophone quartet rehearsal schedule", NULL, &d);
    assert_true(d.evidence.known_share < 0.2);
    triage_decision_clear(&d);
    struct triage_settings s = *triage_get_settings(t);
    s.t_known = 0.5;
    s.t_clarify = 0.01;
    triage_set_settings(t, &s);
    decide(t, "refund for my xylophone quartet rehearsal", NULL, &d);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.evidence.reason, "out_of_scope");
    triage_decision_clear(&d);
    triage_free(t);
}

/* P(in scope), learned from the examples alone (whole intents held out,
 * and the shipped background): a message about something no intent covers
 * is handed off, not answered and not offered choices. */
static void test_in_scope_learned(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    const struct scope_model *sc = intents_scope(triage_intents(t));
    assert_true(sc->is_fitted);
    assert_true(sc->n_in > 0 && sc->n_out > 0);
    assert_true(sc->auroc > 0.8);
    struct triage_decision d;
    const char *const unrelated[] = {
        "who won the football match last night",
        "what is the capital of australia",
        "recommend a good horror film",
    };
    for (size_t i = 0; i < sizeof unrelated / sizeof unrelated[0]; i++) {
        decide(t, unrelated[i], NULL, &d);
        assert_int_equal(d.action, TRIAGE_HANDOFF);
        assert_true(d.evidence.p_in < 0.5);
        assert_string_equal(d.evidence.reason, "out_of_scope");
        triage_decision_clear(&d);
    }
    /* The bot's own subject stays in scope, and the answer's confidence is
     * P(in scope) x P(intent). */
    decide(t, "when will my order be delivered to me", NULL, &d);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.intent, "track_order");
    assert_true(d.evidence.p_in >= 0.5);
    assert_true(fabs(d.confidence - d.evidence.p_in * d.evidence.model[0].probability) < 1e-6);
    triage_decision_clear(&d);
    /* Off, the same unrelated message is no longer out of scope by P(in scope). */
    struct triage_settings s = *triage_get_settings(t);
    s.t_in_scope = 0;
    triage_set_settings(t, &s);
    decide(t, unrelated[0], NULL, &d);
    assert_string_not_equal(d.evidence.reason, "out_of_scope");
    triage_decision_clear(&d);
    triage_free(t);
}

/* A rule's words in a message that is about something else: the author's
 * keyword rule on "coupon" answers a coupon that will not apply, but a
 * message the model finds clearly out of scope goes to a person, routed by
 * the rule's intent. With P(in scope) off, the rule answers it as before. */
static void test_rule_out_of_scope(void **state)
{
    (void)state;
    const char *sets[] = {
        store_json,
        "[{\"name\":\"promo_code\",\"description\":\"Promo code not working\","
        "\"examples\":[\"my promo code does not work\",\"discount code not valid\","
        "\"the code is rejected at checkout\",\"where do i enter my promo code\","
        "\"i forgot to use my discount code\"],\"patterns\":[\"coupon\"],"
        "\"response\":\"Enter the code at checkout.\",\"queue\":\"billing\"}]",
    };
    struct triage *t = triage_new(NULL, testlib_intents(sets, 2, "store.json"), NULL);
    assert_non_null(t);
    struct triage_decision d;
    decide(t, "my coupon will not apply at checkout", NULL, &d);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.intent, "promo_code");
    assert_string_equal(d.evidence.reason, "rule");
    triage_decision_clear(&d);
    const char *text = "which museum in paris has free entry coupons for students";
    decide(t, text, NULL, &d);
    assert_string_equal(d.evidence.rule_intent, "promo_code");
    assert_true(d.evidence.p_in < 0.25);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.evidence.reason, "out_of_scope");
    assert_string_equal(d.intent, "promo_code");
    assert_string_equal(d.queue, "billing");
    triage_decision_clear(&d);
    /* The same message from an angry customer: a person at once, routed the same way. */
    struct triage_context angry = {0};
    angry.anger = 3;
    decide(t, text, &angry, &d);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.evidence.reason, "anger");
    assert_string_equal(d.intent, "promo_code");
    assert_string_equal(d.queue, "billing");
    triage_decision_clear(&d);
    struct triage_settings s = *triage_get_settings(t);
    s.t_in_scope = 0;
    triage_set_settings(t, &s);
    decide(t, text, NULL, &d);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.evidence.reason, "rule");
    triage_decision_clear(&d);
    triage_free(t);
}

/* The traffic's out-of-scope share, measured from P(in scope) alone: a
 * model calibrated at 50% out of scope, shown traffic with 20%. */
static void test_oos_share_measured(void **state)
{
    (void)state;
    static struct scope_prior sp;
    scope_prior_reset(&sp, 0.5);
    assert_true(fabs(sp.estimate - 0.5) < 1e-9);
    /* Calibrated at 0.5: in-scope messages score 0.8 four times in five and
     * 0.2 otherwise, out-of-scope ones the other way round. */
    int n = 0;
    for (int round = 0; round < 40; round++) {
        for (int k = 0; k < 25; k++) {
            int is_out = k < 5; /* 5 of 25: 20% */
            int is_high = is_out ? (round + k) % 5 == 0 : (round + k) % 5 != 0;
            scope_prior_add(&sp, is_high ? 0.8 : 0.2);
            n++;
            if (n < SCOPE_PRIOR_MIN)
                assert_int_equal(sp.n_estimates, 0);
        }
    }
    assert_true(sp.n_estimates > 0);
    assert_true(fabs(sp.estimate - 0.2) < 0.03);
    /* A message at 0.5 under the assumed share is 0.8 in scope at the measured one. */
    assert_true(fabs(scope_prior_adjust(&sp, 0.5) - (1 - sp.estimate)) < 1e-9);
    assert_true(scope_prior_adjust(&sp, 1.0) == 1.0 && scope_prior_adjust(&sp, 0.0) == 0.0);
    /* Only out-of-scope traffic: the share rises, within its bounds. */
    for (int i = 0; i < SCOPE_PRIOR_WINDOW; i++)
        scope_prior_add(&sp, 0.05);
    assert_true(sp.estimate > 0.9 && sp.estimate <= SCOPE_PRIOR_HIGH);

    /* A share carried from before is used from the first message, until the
     * first measurement of its own; a share out of bounds is not taken. */
    scope_prior_reset(&sp, 0.5);
    scope_prior_carry(&sp, 1.5, 300);
    assert_true(scope_prior_adjust(&sp, 0.5) == 0.5);
    scope_prior_carry(&sp, 0.2, 300);
    assert_int_equal(sp.n_estimates, 0);
    assert_true(fabs(scope_prior_adjust(&sp, 0.5) - 0.8) < 1e-9);
    for (int i = 0; i < SCOPE_PRIOR_MIN; i++)
        scope_prior_add(&sp, 0.05);
    assert_int_equal(sp.n_estimates, 1);
    assert_true(sp.estimate > 0.9);
}

/* Questions decided before (read back from the store at start-up) count in
 * the share as decided ones do: after SCOPE_PRIOR_MIN it is measured. Text
 * that is not UTF-8 is refused and not counted; a fixed share counts none. */
static void test_traffic_counted(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    assert_int_equal(triage_add_traffic(t, "\xff\xfe", 2, "en"), CD_EINVAL);
    assert_int_equal(triage_oos_share(t)->n, 0);
    const char *text = "what is the capital of australia";
    for (int i = 0; i < SCOPE_PRIOR_MIN; i++)
        assert_int_equal(triage_add_traffic(t, text, strlen(text), "en"), 0);
    assert_int_equal(triage_oos_share(t)->n, SCOPE_PRIOR_MIN);
    assert_int_equal(triage_oos_share(t)->n_estimates, 1);
    assert_true(triage_oos_share(t)->estimate > 0.9);
    struct triage_settings s = *triage_get_settings(t);
    s.is_fixed_prior = 1;
    triage_set_settings(t, &s);
    assert_int_equal(triage_add_traffic(t, text, strlen(text), "en"), 0);
    assert_int_equal(triage_oos_share(t)->n, SCOPE_PRIOR_MIN);
    triage_free(t);
}

/* A question decided again ("that didn't help") is not counted in the share twice. */
static void test_again_not_counted(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct triage_decision d;
    struct triage_context again = {0};
    decide(t, "where is my order", NULL, &d);
    assert_true(d.is_scored);
    triage_decision_clear(&d);
    assert_int_equal(triage_oos_share(t)->n, 1);
    again.is_again = 1;
    decide(t, "where is my order", &again, &d);
    assert_false(d.is_scored);
    triage_decision_clear(&d);
    assert_int_equal(triage_oos_share(t)->n, 1);
    triage_free(t);
}

/* Retrained intents put in while the server runs keep the out-of-scope
 * share measured on the traffic so far: P(in scope) is re-weighted to it
 * from the new model's first message, not to the assumed share again. */
static void test_oos_share_kept_on_swap(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct triage_decision d;
    const char *const unrelated[] = {"who won the football match last night",
                                     "what is the capital of australia",
                                     "recommend a good horror film", "where is my order"};
    for (int i = 0; i < SCOPE_PRIOR_MIN + SCOPE_PRIOR_EVERY; i++) {
        decide(t, unrelated[i % 4], NULL, &d);
        triage_decision_clear(&d);
    }
    const struct scope_prior *sp = triage_oos_share(t);
    assert_true(sp->n_estimates > 0);
    double share = sp->estimate;
    assert_true(share > 0.6); /* three messages in four are about something else */

    const char *text = "when will my order be delivered to me";
    struct triage *plain = make_triage(store_json, NULL);
    decide(plain, text, NULL, &d);
    double p_assumed = d.evidence.p_in;
    triage_decision_clear(&d);
    triage_free(plain);

    const char *json = store_json;
    intents_free(triage_swap_intents(t, testlib_intents(&json, 1, "store.json")));
    sp = triage_oos_share(t);
    assert_int_equal(sp->n_estimates, 0);
    assert_true(fabs(sp->estimate - share) < 1e-12);
    assert_int_equal(sp->n_carried, SCOPE_PRIOR_MIN + SCOPE_PRIOR_EVERY); /* measured on */
    decide(t, text, NULL, &d);
    assert_true(fabs(d.evidence.oos_share - share) < 1e-12);
    /* The same model (trained again the same way) at the measured share: less sure. */
    assert_true(d.evidence.p_in < p_assumed - 0.01);
    triage_decision_clear(&d);
    triage_free(t);
}

/* The report an author reads: it names the pair of intents that share
 * their examples' words, and an example filed under the wrong intent. */
static void test_check_report(void **state)
{
    (void)state;
    struct intents *set = intents_new();
    static const char json[] =
        "[{\"name\":\"track_order\",\"response\":\"r\",\"examples\":[\"where is my order\",\"track "
        "my package\","
        "\"my parcel has not arrived\",\"order status please\",\"has my order shipped\","
        "\"where is my parcel\",\"when will my order arrive\",\"tracking number for my order\","
        "\"how do i cancel my order\"]},"
        "{\"name\":\"cancel_order\",\"response\":\"r\",\"examples\":[\"cancel my order\",\"stop my "
        "order\","
        "\"i want to cancel the order\",\"please cancel my purchase\",\"cancel the parcel\","
        "\"undo my order\",\"i changed my mind cancel it\",\"cancel order now\"]},"
        "{\"name\":\"refund\",\"response\":\"r\",\"examples\":[\"where is my refund\",\"refund not "
        "received\","
        "\"money back please\",\"refund status\",\"when do i get my refund\",\"i want a refund\","
        "\"refund to my card\",\"how long do refunds take\"]},"
        "{\"name\":\"password\",\"response\":\"r\",\"examples\":[\"reset my password\",\"forgot my "
        "password\","
        "\"cannot log in\",\"password does not work\",\"change my password\","
        "\"locked out of my account\",\"new password please\",\"password reset link\"]}]";
    assert_int_equal(intents_load_json(set, json, strlen(json), "t.json", NULL), 0);
    struct intents_train_options o = {.is_quiet = 1};
    assert_int_equal(intents_train(set, &o), 0);
    const struct intents_crossfit *cf = intents_crossfit(set);
    assert_true(cf->n_rows > 20 && cf->folds == 5);
    struct intents_check_options co = {.min_examples = 9};
    json_t *r = intents_check(set, &co);
    assert_non_null(r);
    /* Three intents have 8 examples, fewer than 9. */
    assert_int_equal(json_array_size(json_object_get(r, "too_few_examples")), 3);
    /* "how do i cancel my order", filed under track_order, reads as cancel_order. */
    int found = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "misread_examples"), i, v) found |=
        !strcmp(json_string_value(json_object_get(v, "example")), "how do i cancel my order") &&
        !strcmp(json_string_value(json_object_get(v, "read_as")), "cancel_order");
    assert_true(found);
    const json_t *sc = json_object_get(r, "out_of_scope");
    assert_true(json_is_true(json_object_get(sc, "fitted")));
    assert_non_null(strstr(json_string_value(json_object_get(sc, "why")), "P(in scope)"));
    json_decref(r);
    intents_free(set);
}

static void test_json_shape(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct triage_decision d;
    decide(t, "what is my refund status?", NULL, &d);
    struct cd_buf b = {0};
    assert_int_equal(triage_decision_to_json(&d, &b), 0);
    json_error_t err;
    json_t *j = json_loads(b.data, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "action")), "answer");
    assert_string_equal(json_string_value(json_object_get(j, "intent")), "refund_status");
    assert_true(json_is_number(json_object_get(j, "confidence")));
    assert_true(json_is_string(json_object_get(j, "answer")));
    json_t *articles = json_object_get(j, "articles");
    assert_true(json_is_array(articles));
    json_t *a0 = json_array_get(articles, 0);
    assert_string_equal(json_string_value(json_object_get(a0, "id")), "refund-timing");
    assert_string_equal(json_string_value(json_object_get(a0, "url")), "/kb/refund-timing");
    assert_true(json_is_string(json_object_get(a0, "title")));
    assert_true(json_is_array(json_object_get(j, "candidates")));
    json_t *ev = json_object_get(j, "evidence");
    assert_true(json_is_object(ev));
    assert_string_equal(json_string_value(json_object_get(ev, "reason")), "rule");
    assert_string_equal(json_string_value(json_object_get(ev, "rule_intent")), "refund_status");
    json_t *model = json_object_get(ev, "model");
    assert_true(json_is_array(model) && json_array_size(model) >= 2);
    assert_true(json_is_number(json_object_get(json_array_get(model, 0), "probability")));
    assert_true(json_is_number(json_object_get(ev, "kb_score")));
    assert_true(json_is_object(json_object_get(j, "signals")));
    json_decref(j);
    cd_buf_free(&b);
    triage_decision_clear(&d);

    /* A collect handoff carries its prompt; quotes and newlines stay valid JSON. */
    decide(t, "cancel my order \"123\"\nnow", NULL, &d);
    assert_int_equal(triage_decision_to_json(&d, &b), 0);
    j = json_loads(b.data, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "action")), "handoff");
    json_t *collect = json_object_get(j, "collect");
    assert_string_equal(json_string_value(json_object_get(collect, "field")), "order_number");
    json_decref(j);
    cd_buf_free(&b);
    triage_decision_clear(&d);
    triage_free(t);
}

static void test_bad_input_and_swap(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct triage_decision d;
    assert_int_equal(triage_decide(t, "bad \xc3\x28 utf8", 12, "en", NULL, &d), CD_EINVAL);
    triage_decision_clear(&d);
    /* Empty, symbols-only and unknown languages still decide: a person looks. */
    assert_int_equal(triage_decide(t, "", 0, "en", NULL, &d), 0);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.evidence.reason, "empty");
    triage_decision_clear(&d);
    assert_int_equal(triage_decide(t, "?!", 2, "en", NULL, &d), 0);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    triage_decision_clear(&d);
    assert_int_equal(triage_decide(t, "   ", 3, "zz", NULL, &d), 0);
    triage_decision_clear(&d);

    unsigned generation = triage_intents_generation(t);
    struct intents *untrained = intents_new();
    assert_null(triage_swap_intents(t, untrained));
    intents_free(untrained);
    assert_int_equal(triage_intents_generation(t), generation); /* nothing swapped */
    struct intents *fresh = intents_new();
    const char *one = "{\"name\":\"only\",\"patterns\":[\"magic word\"],\"response\":\"yes\"}";
    assert_int_equal(intents_load_json(fresh, one, strlen(one), "x.json", NULL), 0);
    assert_int_equal(intents_train(fresh, NULL), 0);
    struct intents *old = triage_swap_intents(t, fresh);
    assert_non_null(old);
    assert_int_equal(triage_intents_generation(t), generation + 1);
    assert_true(intents_find(old, "refund_status") >= 0);
    intents_free(old);
    assert_ptr_equal(triage_intents(t), fresh);
    decide(t, "say the magic word", NULL, &d);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.intent, "only");
    triage_decision_clear(&d);
    triage_free(t);
    assert_null(triage_new(NULL, intents_new(), NULL));
}

static void test_signals(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct triage_signals a, b, c;
    triage_signals(t, "Refund please!", 14, "en", &a);
    triage_signals(t, "refund   PLEASE", 15, "en", &b);
    triage_signals(t, "refund later", 12, "en", &c);
    assert_true(a.text_key != 0);
    assert_true(a.text_key == b.text_key);
    assert_true(a.text_key != c.text_key);
    triage_signals(t, "How do I return a jacket?", 25, "en", &a);
    assert_true(a.is_howto);
    assert_int_equal(a.anger, 0);
    triage_signals(t, "This is fucking ridiculous", 26, "en", &a);
    assert_true(a.anger >= 2);
    triage_free(t);
}

static void test_languages_interleave(void **state)
{
    (void)state;
    struct triage *t = make_triage(
        "[{\"name\":\"refund_status\",\"examples\":[\"where is my refund\","
        "\"refund not received\",\"money back please\"],\"response\":\"en\"},"
        "{\"name\":\"reembolso\",\"lang\":\"es\",\"examples\":[\"donde esta mi reembolso\","
        "\"no recibi el reembolso\",\"quiero mi dinero\"],\"response\":\"es\"}]",
        NULL);
    for (int round = 0; round < 3; round++) {
        struct triage_decision d;
        assert_int_equal(triage_decide(t, "where is my refund", 18, "en", NULL, &d), 0);
        assert_string_equal(d.evidence.model[0].intent, "refund_status");
        triage_decision_clear(&d);
        /* A Spanish message is matched against the Spanish intents only. */
        assert_int_equal(triage_decide(t, "mi reembolso", 12, "es", NULL, &d), 0);
        assert_string_equal(d.evidence.model[0].intent, "reembolso");
        assert_int_equal(d.evidence.n_model, 1);
        triage_decision_clear(&d);
    }
    triage_free(t);
}

struct retrain_job {
    struct intents *fresh;
    int rc;
};

/* What a server's worker thread does: load and train a new set, touching
 * nothing the serving thread uses. */
static void *retrain(void *arg)
{
    struct retrain_job *job = arg;
    job->fresh = intents_new();
    job->rc = intents_load_json(job->fresh, store_json, strlen(store_json), "store.json", NULL);
    const char *extra = "{\"name\":\"gift_card\",\"examples\":[\"buy a gift card\","
                        "\"gift card balance\",\"gift voucher\"],\"response\":\"Gift cards!\"}";
    if (job->rc == 0)
        job->rc = intents_load_json(job->fresh, extra, strlen(extra), "extra.json", NULL);
    struct intents_train_options o = {.is_quiet = 1};
    if (job->rc == 0)
        job->rc = intents_train(job->fresh, &o);
    return NULL;
}

static void test_retrain_on_worker_then_swap(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct retrain_job job = {0};
    pthread_t worker;
    assert_int_equal(pthread_create(&worker, NULL, retrain, &job), 0);
    /* Serving goes on meanwhile with the old set. */
    for (int i = 0; i < 200; i++) {
        struct triage_decision d;
        decide(t, "what is my refund status", NULL, &d);
        assert_string_equal(d.intent, "refund_status");
        triage_decision_clear(&d);
    }
    pthread_join(worker, NULL);
    assert_int_equal(job.rc, 0);
    struct intents *old = triage_swap_intents(t, job.fresh);
    assert_non_null(old);
    intents_free(old);
    struct triage_decision d;
    decide(t, "buy a gift card please", NULL, &d);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.intent, "gift_card");
    triage_decision_clear(&d);
    triage_free(t);
}

/* Writes labelled rows: each in-scope intent has its own words; "oos" rows
 * are about other things entirely. */
static void write_rows(const char *path, int n_per_intent, int n_oos, int offset)
{
    static const char *const words[4][4] = {
        {"refund", "money back", "reimbursement", "repaid"},
        {"parcel", "delivery", "courier", "shipment"},
        {"password", "login", "sign in", "locked out"},
        {"invoice", "receipt", "bill", "vat"},
    };
    static const char *const oos[] = {"weather", "football", "recipe", "poem",     "movie",
                                      "holiday", "guitar",   "planet", "dinosaur", "chess"};
    static const char *const frames[] = {"where is my %s",        "help with %s please",
                                         "question about the %s", "%s not working",
                                         "i need my %s",          "what about %s today"};
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    char text[128];
    for (int i = 0; i < n_per_intent; i++)
        for (int k = 0; k < 4; k++) {
            snprintf(text, sizeof text, frames[(i + offset) % 6], words[k][(i + offset) % 4]);
            fprintf(f, "{\"text\":\"%s\",\"intent\":\"intent_%d\"}\n", text, k);
        }
    for (int i = 0; i < n_oos; i++) {
        snprintf(text, sizeof text, frames[(i + offset) % 6], oos[(i + offset) % 10]);
        fprintf(f, "{\"text\":\"%s\",\"intent\":\"oos\"}\n", text);
    }
    fclose(f);
}

/* Runs `caredesk eval intents` in-process with stdout captured; returns the
 * exit code and the last line of output in out. */
static int run_eval(char **argv, int argc, char *out, size_t cap)
{
    char path[] = "/tmp/cd-eval-out-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc = cli_eval_intents(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    char line[4096];
    while (f && fgets(line, sizeof line, f))
        snprintf(out, cap, "%s", line);
    if (f)
        fclose(f);
    unlink(path);
    return rc;
}

static double num(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_eval_intents_output(void **state)
{
    (void)state;
    write_rows("/tmp/cd-eval-train.jsonl", 30, 20, 0);
    write_rows("/tmp/cd-eval-val.jsonl", 6, 6, 1);
    write_rows("/tmp/cd-eval-test.jsonl", 10, 10, 2);
    char *argv[] = {"intents",
                    "--train",
                    "/tmp/cd-eval-train.jsonl",
                    "--test",
                    "/tmp/cd-eval-test.jsonl",
                    "--val",
                    "/tmp/cd-eval-val.jsonl",
                    "--quiet"};
    char out[4096];
    assert_int_equal(run_eval(argv, 8, out, sizeof out), CLI_OK);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    assert_non_null(j);
    assert_int_equal((int)num(j, "n"), 50);
    const char *keys[] = {"accuracy",      "in_scope_accuracy", "oos_recall",
                          "oos_precision", "macro_f1",          "ece",
                          "clarify_rate"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        double v = num(j, keys[i]);
        assert_true(v >= 0 && v <= 1);
    }
    assert_true(num(j, "train_ms") >= 0);
    assert_true(num(j, "decide_us_p99") >= num(j, "decide_us_p50"));
    /* accuracy is the row-weighted mix of in-scope accuracy and oos recall. */
    double mix = (40 * num(j, "in_scope_accuracy") + 10 * num(j, "oos_recall")) / 50;
    assert_true(fabs(num(j, "accuracy") - mix) < 0.001);
    /* The task is easy: most rows right. */
    assert_true(num(j, "in_scope_accuracy") >= 0.8);
    json_t *th = json_object_get(j, "thresholds");
    assert_true(json_is_object(th));
    assert_true(num(th, "t_clarify") <= num(th, "t_answer"));
    json_decref(j);

    char *missing[] = {"intents", "--train", "/tmp/cd-eval-train.jsonl"};
    assert_int_equal(run_eval(missing, 3, out, sizeof out), CLI_USAGE);
    char *bad[] = {"intents", "--train", "/tmp/cd-eval-train.jsonl", "--test", "/nonexistent"};
    assert_int_equal(run_eval(bad, 5, out, sizeof out), CLI_FAIL);
    char *badval[] = {"intents", "--train", "x", "--test", "y", "--t-answer", "2"};
    assert_int_equal(run_eval(badval, 7, out, sizeof out), CLI_USAGE);
    unlink("/tmp/cd-eval-train.jsonl");
    unlink("/tmp/cd-eval-val.jsonl");
    unlink("/tmp/cd-eval-test.jsonl");
}

/* The turns chat.c decides outside triage_decide(): a clicked choice, no triage engine,
 * "that didn't help", a request for a person; and the one table of the bot's sentences. */
static void test_turns_outside_decide(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    struct triage_decision d;
    assert_int_equal(triage_decide_choice(t, NULL, "track_order", &d), 0);
    assert_int_equal(d.action, TRIAGE_ANSWER);
    assert_string_equal(d.answer, "Track it under Orders.");
    assert_string_equal(d.evidence.reason, "choice");
    triage_decision_clear(&d);
    assert_int_equal(triage_decide_choice(t, NULL, "close_account", &d), 0); /* sensitive */
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_CHOICE_HANDOFF, "en"));
    assert_string_equal(d.queue, "accounts");
    triage_decision_clear(&d);
    assert_int_equal(triage_decide_choice(t, NULL, "no_such_intent", &d), CD_ENOTFOUND);
    assert_int_equal(triage_decide_kb_only(NULL, "where is my order", "en", &d), 0);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_NO_ANSWER_HANDOFF, "en"));
    triage_decision_clear(&d);
    /* "That didn't help": a clarify with two candidates, else a person. */
    memset(&d, 0, sizeof d);
    d.action = TRIAGE_ANSWER;
    d.n_candidates = 2;
    d.n_articles = 1;
    assert_int_equal(triage_not_helped(t, &d, "en"), 0);
    assert_int_equal(d.action, TRIAGE_CLARIFY);
    assert_int_equal(d.n_articles, 0);
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_NOT_HELPED_CLARIFY, "en"));
    triage_decision_clear(&d);
    memset(&d, 0, sizeof d);
    d.action = TRIAGE_ANSWER;
    assert_int_equal(triage_not_helped(t, &d, "en"), 0);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_NOT_HELPED_HANDOFF, "en"));
    triage_decision_clear(&d);
    /* A person: routed by the last intent, else the fallback queue. */
    assert_int_equal(triage_person_request(t, "refund_status", "en", NULL, &d), 0);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.queue, "billing");
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_PERSON, "en"));
    triage_decision_clear(&d);
    assert_int_equal(triage_person_request(NULL, NULL, NULL, "orders", &d), 0);
    assert_string_equal(d.queue, "orders");
    triage_decision_clear(&d);
    /* Every sentence in English and Spanish; a regional tag is its language, and a language
     * without wording of its own gets the English. */
    for (int p = TRIAGE_SAY_HANDOFF; p <= TRIAGE_SAY_PERSON; p++) {
        const char *en = triage_say((enum triage_phrase)p, "en");
        const char *es = triage_say((enum triage_phrase)p, "es");
        assert_true(strlen(en) > 10 && strlen(es) > 10);
        assert_string_not_equal(en, es);
        assert_string_equal(triage_say((enum triage_phrase)p, "es-MX"), es);
        assert_string_equal(triage_say((enum triage_phrase)p, "fr"), en);
        assert_string_equal(triage_say((enum triage_phrase)p, NULL), en);
    }
    /* A Spanish conversation hears the bot in Spanish: a handoff, a clarify, a person. */
    decide_lang(t, "¿cuál es la capital de Australia?", "es", &d);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_HANDOFF, "es"));
    triage_decision_clear(&d);
    assert_int_equal(triage_person_request(t, NULL, "es", NULL, &d), 0);
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_PERSON, "es"));
    triage_decision_clear(&d);
    memset(&d, 0, sizeof d);
    d.action = TRIAGE_ANSWER;
    assert_int_equal(triage_not_helped(t, &d, "es"), 0);
    assert_string_equal(d.answer, triage_say(TRIAGE_SAY_NOT_HELPED_HANDOFF, "es"));
    triage_decision_clear(&d);
    triage_free(t);
}

/* A deployment's own wording: its sentences where it has them, the built-in Spanish for
 * Spanish, its English for a language it gives no sentence in, else the built-in English; a
 * bad file changes nothing and says what is wrong. */
static void test_phrases(void **state)
{
    (void)state;
    struct triage *t = make_triage(store_json, NULL);
    static const char json[] =
        "{\"fr\": {\"handoff\": \"Je vous passe une personne de notre équipe.\"},"
        " \"en-GB\": {\"person\": \"One moment: a Northwind teammate is on the way.\"}}";
    char *err = NULL;
    assert_int_equal(triage_set_phrases(t, json, strlen(json), &err), 0);
    assert_null(err);
    assert_string_equal(triage_phrase(t, TRIAGE_SAY_HANDOFF, "fr-CA"),
                        "Je vous passe une personne de notre équipe.");
    assert_string_equal(triage_phrase(t, TRIAGE_SAY_PERSON, "en"),
                        "One moment: a Northwind teammate is on the way.");
    assert_string_equal(triage_phrase(t, TRIAGE_SAY_PERSON, "fr"),
                        "One moment: a Northwind teammate is on the way.");
    assert_string_equal(triage_phrase(t, TRIAGE_SAY_PERSON, "es"),
                        triage_say(TRIAGE_SAY_PERSON, "es"));
    assert_string_equal(triage_phrase(t, TRIAGE_SAY_CLARIFY, "fr"),
                        triage_say(TRIAGE_SAY_CLARIFY, "en"));
    assert_string_equal(triage_phrase(NULL, TRIAGE_SAY_HANDOFF, "fr"),
                        triage_say(TRIAGE_SAY_HANDOFF, "en"));
    struct triage_decision d;
    decide_lang(t, "who won the football match last night", "fr", &d);
    assert_int_equal(d.action, TRIAGE_HANDOFF);
    assert_string_equal(d.answer, "Je vous passe une personne de notre équipe.");
    triage_decision_clear(&d);
    assert_int_equal(triage_person_request(t, NULL, "en", NULL, &d), 0);
    assert_string_equal(d.answer, "One moment: a Northwind teammate is on the way.");
    triage_decision_clear(&d);

    static const char *const bad[] = {
        "[\"handoff\"]",
        "{\"fr\": \"Bonjour\"}",
        "{\"fr\": {\"hand_off\": \"Bonjour\"}}",
        "{\"fr\": {\"no_answer_handoff\": \"Bonjour\"}}",
        "{\"fr\": {\"handoff\": \"\"}}",
        "{\"fr\": {\"handoff\": 3}}",
        "{\"f r\": {}}",
        "{\"fr\": {}, \"FR\": {}}",
        "{\"fr\": {\"handoff\": \"a\", \"handoff\": \"b\"}}",
        "{\"fr\": ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(triage_set_phrases(t, bad[i], strlen(bad[i]), &err), CD_EINVAL);
        assert_non_null(err);
        free(err);
        err = NULL;
    }
    assert_string_equal(triage_phrase(t, TRIAGE_SAY_HANDOFF, "fr"),
                        "Je vous passe une personne de notre équipe.");
    char long_text[1100];
    memset(long_text, 'a', sizeof long_text);
    char too_long[1200];
    snprintf(too_long, sizeof too_long, "{\"fr\": {\"handoff\": \"%.*s\"}}", 1001, long_text);
    assert_int_equal(triage_set_phrases(t, too_long, strlen(too_long), &err), CD_EINVAL);
    free(err);
    assert_int_equal(triage_set_phrases(t, "{}", 2, &err), 0); /* back to the built-in */
    assert_string_equal(triage_phrase(t, TRIAGE_SAY_HANDOFF, "fr"),
                        triage_say(TRIAGE_SAY_HANDOFF, "en"));
    triage_free(t);
}

int main(void)
{
    TESTLIB_RUN(load_store, free_store,
                {
                    cmocka_unit_test(test_model_evidence),
                    cmocka_unit_test(test_answer_from_article_paragraph),
                    cmocka_unit_test(test_kb_unknown_word),
                    cmocka_unit_test(test_clarify_then_limit),
                    cmocka_unit_test(test_out_of_scope),
                    cmocka_unit_test(test_in_scope_learned),
                    cmocka_unit_test(test_rule_out_of_scope),
                    cmocka_unit_test(test_check_report),
                    cmocka_unit_test(test_oos_share_measured),
                    cmocka_unit_test(test_oos_share_kept_on_swap),
                    cmocka_unit_test(test_traffic_counted),
                    cmocka_unit_test(test_again_not_counted),
                    cmocka_unit_test(test_phrases),
                    cmocka_unit_test(test_json_shape),
                    cmocka_unit_test(test_bad_input_and_swap),
                    cmocka_unit_test(test_signals),
                    cmocka_unit_test(test_languages_interleave),
                    cmocka_unit_test(test_retrain_on_worker_then_swap),
                    cmocka_unit_test(test_eval_intents_output),
                    cmocka_unit_test(test_turns_outside_decide),
                });
}
