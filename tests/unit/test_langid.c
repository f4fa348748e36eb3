/* Tests for langid: detection among candidate languages, confidence, the
 * shipped demo's profiles, and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "langid.h"
#include "testlib.h"

static const char *const en_text[] = {
    "where is my order",       "I want to return an item",        "how much is shipping",
    "my payment was declined", "can I talk to a person",          "the package arrived damaged",
    "thanks for your help",    "what is the status of my refund",
};
static const char *const es_text[] = {
    "dónde está mi pedido",  "quiero devolver un artículo",       "cuánto cuesta el envío",
    "mi pago fue rechazado", "quiero hablar con una persona",     "el paquete llegó dañado",
    "gracias por tu ayuda",  "cuál es el estado de mi reembolso",
};

static struct langid *small_profile(void)
{
    struct langid *id = langid_new();
    assert_non_null(id);
    for (size_t i = 0; i < sizeof en_text / sizeof en_text[0]; i++)
        assert_int_equal(langid_add(id, "en", en_text[i], strlen(en_text[i])), 0);
    for (size_t i = 0; i < sizeof es_text / sizeof es_text[0]; i++)
        assert_int_equal(langid_add(id, "ES", es_text[i], strlen(es_text[i])), 0);
    assert_int_equal(langid_train(id), 0);
    return id;
}

static void detect(const struct langid *id, const char *text, struct langid_result *r)
{
    langid_detect(id, text, strlen(text), r);
    assert_true(r->confidence >= 0 && r->confidence <= 1);
}

static void test_two_candidates(void **state)
{
    (void)state;
    struct langid *id = small_profile();
    assert_int_equal(langid_count(id), 2);
    assert_string_equal(langid_lang(id, 0), "en");
    assert_string_equal(langid_lang(id, 1), "es"); /* codes are lower-cased */
    assert_null(langid_lang(id, 2));
    struct langid_result r;
    detect(id, "¿dónde está el reembolso de mi pedido?", &r);
    assert_string_equal(r.lang, "es");
    assert_true(r.confidence >= LANGID_MIN_CONFIDENCE);
    detect(id, "where is the refund for my order?", &r);
    assert_string_equal(r.lang, "en");
    assert_true(r.confidence >= LANGID_MIN_CONFIDENCE);
    assert_true(r.n_features > 0);
    /* Upper case and Latin-1 capitals read as their lower case. */
    detect(id, "QUIERO HABLAR CON UNA PERSONA, ESTÁ DAÑADO", &r);
    assert_string_equal(r.lang, "es");
    /* Stop words count: unseen content words, but Spanish function words. */
    detect(id, "el xyzzy de la qwert", &r);
    assert_string_equal(r.lang, "es");
    detect(id, "the xyzzy of the qwert", &r);
    assert_string_equal(r.lang, "en");
    langid_free(id);
}

static void test_no_letters_is_not_confident(void **state)
{
    (void)state;
    struct langid *id = small_profile();
    struct langid_result r;
    const char *const inputs[] = {"", "12345 678", "?!... ---", "🙂🙂🙂"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        detect(id, inputs[i], &r);
        assert_int_equal(r.n_features, 0);
        assert_true(r.confidence < LANGID_MIN_CONFIDENCE);
        assert_true(r.lang[0] != '\0'); /* still names a candidate */
    }
    langid_detect(id, NULL, 5, &r);
    assert_int_equal(r.n_features, 0);
    langid_free(id);
}

static void test_one_and_zero_candidates(void **state)
{
    (void)state;
    struct langid_result r;
    struct langid *none = langid_new();
    assert_int_equal(langid_train(none), 0);
    detect(none, "hola", &r);
    assert_string_equal(r.lang, "");
    assert_true(r.confidence == 0);
    langid_free(none);

    struct langid *one = langid_new();
    assert_int_equal(langid_add(one, "pt-BR", "onde está o meu pedido", 23), 0);
    assert_int_equal(langid_train(one), 0);
    assert_string_equal(langid_lang(one, 0), "pt");
    detect(one, "where is my order", &r);
    assert_string_equal(r.lang, "pt");
    assert_true(r.confidence == 1);
    langid_free(one);
    langid_detect(NULL, "x", 1, &r);
    assert_string_equal(r.lang, "");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct langid *id = langid_new();
    assert_int_equal(langid_add(id, NULL, "x", 1), CD_EINVAL);
    assert_int_equal(langid_add(id, "e", "x", 1), CD_EINVAL);
    assert_int_equal(langid_add(id, "english", "x", 1), CD_EINVAL);
    assert_int_equal(langid_add(id, "e1", "x", 1), CD_EINVAL);
    assert_int_equal(langid_count(id), 0);
    /* A language with no text is still a candidate. */
    assert_int_equal(langid_add(id, "fr", NULL, 0), 0);
    char code[4] = "aa";
    for (int i = 1; i < LANGID_MAX_LANGS; i++) {
        code[1] = (char)('a' + i);
        assert_int_equal(langid_add(id, code, "texte", 5), 0);
    }
    assert_int_equal(langid_count(id), LANGID_MAX_LANGS);
    assert_int_equal(langid_add(id, "zz", "x", 1), CD_EINVAL);
    assert_int_equal(langid_train(id), 0);
    assert_int_equal(langid_add(id, "fr", "encore", 6), CD_EINVAL); /* trained: immutable */
    assert_int_equal(langid_train(NULL), CD_EINVAL);
    langid_free(id);
    langid_free(NULL);
}

static void test_hostile_input(void **state)
{
    (void)state;
    struct langid *id = small_profile();
    struct langid_result r;
    /* Invalid UTF-8, truncated sequences, overlongs, NULs, a long message. */
    const char bad[] = "\xff\xfe\xc3\x28\xe2\x82\x80\xc0\xaf\xed\xa0\x80 hola \x00 mi \xf0\x9f";
    langid_detect(id, bad, sizeof bad - 1, &r);
    assert_true(r.confidence >= 0 && r.confidence <= 1);
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = "el pedido \xc3\xb1 "[i % 13];
    langid_detect(id, big, n, &r);
    assert_string_equal(r.lang, "es");
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7919 % 256);
    langid_detect(id, big, n, &r);
    assert_true(r.confidence >= 0 && r.confidence <= 1);
    free(big);
    langid_free(id);
}

/* A conversation's language over its first messages. */
static void test_probe(void **state)
{
    (void)state;
    struct langid *id = small_profile();
    char lang[8];
    struct langid_probe *p = langid_probe_new();
    assert_non_null(p);
    /* Nothing to tell from: the fallback, undecided. */
    assert_int_equal(langid_probe_add(p, id, "12345", 5, "es", lang), 0);
    assert_string_equal(lang, "es");
    /* The messages so far are read together. */
    const char *m = "quiero hablar con una persona";
    assert_int_equal(langid_probe_add(p, id, m, strlen(m), "en", lang), 1);
    assert_string_equal(lang, "es");
    langid_probe_free(p);
    /* Still unsure after LANGID_PROBE_MESSAGES messages: decided, the fallback. */
    p = langid_probe_new();
    for (int i = 1; i <= LANGID_PROBE_MESSAGES; i++)
        assert_int_equal(langid_probe_add(p, id, "?", 1, "en", lang), i == LANGID_PROBE_MESSAGES);
    assert_string_equal(lang, "en");
    langid_probe_free(p);
    /* Long messages fill the probe without overflowing it. */
    p = langid_probe_new();
    char big[2000];
    memset(big, 'a', sizeof big);
    assert_int_equal(langid_probe_add(p, id, big, sizeof big, NULL, lang), 0);
    assert_string_equal(lang, "en"); /* NULL fallback: "en" */
    langid_probe_add(p, id, big, sizeof big, "en", lang);
    langid_probe_free(p);
    /* One candidate (or no profile): decided at once. */
    assert_int_equal(langid_probe_add(NULL, id, "hola", 4, "en", lang), 1);
    assert_int_equal(langid_probe_add(p = langid_probe_new(), NULL, "hola", 4, "fr", lang), 1);
    assert_string_equal(lang, "fr");
    langid_probe_free(p);
    langid_free(id);
}

/* The shipped demo: profiles from intents/ and kb/ decide its short messages. */
static void test_shipped_demo(void **state)
{
    (void)state;
    struct intents *set = intents_new();
    struct intents_load_report ir = {0};
    assert_int_equal(intents_load_path(set, "intents", NULL, &ir), 0);
    char *err = NULL;
    struct kb *kb = kb_open(":memory:", &err);
    assert_non_null(kb);
    struct kb_load_report kr = {0};
    assert_int_equal(kb_load_path(kb, "kb", &kr), 0);
    struct langid *id = langid_new();
    assert_int_equal(langid_add_intents(id, set), 0);
    assert_int_equal(langid_add_kb(id, kb), 0);
    assert_int_equal(langid_train(id), 0);
    assert_int_equal(langid_count(id), 2);
    static const struct {
        const char *text, *lang;
    } cases[] = {
        {"¿cuánto cobran por el envío a Texas?", "es"},
        {"mi tarjeta fue rechazada", "es"},
        {"no me llegó el paquete", "es"},
        {"quiero cancelar mi suscripción", "es"},
        {"how do I reset my password", "en"},
        {"my package never arrived", "en"},
        {"can I pay with paypal", "en"},
        {"I want a refund", "en"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct langid_result r;
        detect(id, cases[i].text, &r);
        assert_string_equal(r.lang, cases[i].lang);
        assert_true(r.confidence >= LANGID_MIN_CONFIDENCE);
    }
    langid_free(id);
    intents_free(set);
    kb_close(kb);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_two_candidates),
                    cmocka_unit_test(test_no_letters_is_not_confident),
                    cmocka_unit_test(test_one_and_zero_candidates),
                    cmocka_unit_test(test_bad_arguments),
                    cmocka_unit_test(test_hostile_input),
                    cmocka_unit_test(test_probe),
                    cmocka_unit_test(test_shipped_demo),
                });
}
