/* Tests for model.c: hashed features, training, logits, softmax with temperature, the share
 * of known words, and temperature fitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "model.h"
#include "text.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const texts[] = {
    "where is my refund",        "refund not received",   "money back for my return",
    "how long do refunds take",  "track my order",        "where is my package",
    "my parcel has not arrived", "order tracking number",
};
static const int labels[] = {0, 0, 0, 0, 1, 1, 1, 1};
#define N_TEXTS ((int)(sizeof texts / sizeof texts[0]))

static void featurize_all(struct text_tokenizer *tok, struct model_feats *f, int bits)
{
    for (int i = 0; i < N_TEXTS; i++)
        assert_int_equal(model_featurize(tok, texts[i], strlen(texts[i]), bits, &f[i]), 0);
}

static void test_features_are_deterministic(void **state)
{
    (void)state;
    struct text_tokenizer *tok = text_tokenizer_new("en");
    assert_non_null(tok);
    struct model_feats a = {0}, b = {0};
    assert_int_equal(model_featurize(tok, "Where is my refund?", 19, 18, &a), 0);
    assert_int_equal(model_featurize(tok, "Where is my refund?", 19, 18, &b), 0);
    assert_true(a.n > 0);
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        assert_int_equal(a.bucket[i], b.bucket[i]);
        assert_true(a.bucket[i] < (1u << 18));
    }
    model_feats_free(&a);
    model_feats_free(&b);
    text_tokenizer_free(tok);
}

static void test_train_and_score(void **state)
{
    (void)state;
    struct text_tokenizer *tok = text_tokenizer_new("en");
    struct model_feats f[N_TEXTS];
    memset(f, 0, sizeof f);
    featurize_all(tok, f, 16);
    struct model_options o = {.is_quiet = 1, .hash_bits = 16, .seed = 7};
    struct model *m = model_train(f, labels, N_TEXTS, 2, &o);
    assert_non_null(m);
    assert_int_equal(model_n_classes(m), 2);
    assert_int_equal(model_hash_bits(m), 16);
    assert_true(model_n_features(m) > 0);
    struct model_scratch s;
    memset(&s, 0, sizeof s);
    static const struct {
        const char *text;
        int label;
    } probes[] = {{"is my refund coming", 0}, {"track my parcel please", 1}};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        struct model_feats q = {0};
        assert_int_equal(model_featurize(tok, probes[i].text, strlen(probes[i].text), 16, &q), 0);
        double logits[2], p[2];
        assert_true(model_logits(m, &q, &s, logits) > 0);
        model_softmax(logits, 2, 1.0, p);
        assert_true(fabs(p[0] + p[1] - 1.0) < 1e-9);
        assert_true(p[probes[i].label] > 0.5);
        /* A higher temperature flattens, never flips. */
        double flat[2];
        model_softmax(logits, 2, 4.0, flat);
        assert_true(flat[probes[i].label] > 0.5 && flat[probes[i].label] < p[probes[i].label]);
        assert_true(model_known_share(m, &q) > 0);
        model_feats_free(&q);
    }
    struct model_feats unknown = {0};
    assert_int_equal(model_featurize(tok, "zebra quantum", 13, 16, &unknown), 0);
    assert_true(model_known_share(m, &unknown) < 0.5);
    model_feats_free(&unknown);
    model_scratch_free(&s);
    model_free(m);
    for (int i = 0; i < N_TEXTS; i++)
        model_feats_free(&f[i]);
    text_tokenizer_free(tok);
}

static void test_fit_temperature(void **state)
{
    (void)state;
    /* Over-confident logits that are often wrong want a temperature above 1. */
    double logits[8 * 2];
    int y[8];
    for (int i = 0; i < 8; i++) {
        logits[2 * i] = 8.0;
        logits[2 * i + 1] = 0.0;
        y[i] = i % 2;
    }
    assert_true(model_fit_temperature(logits, y, 8, 2) > 1.0);
    assert_true(model_fit_temperature(logits, y, 0, 2) == 1.0);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_features_are_deterministic),
                    cmocka_unit_test(test_train_and_score),
                    cmocka_unit_test(test_fit_temperature),
                });
}
