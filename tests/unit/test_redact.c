/* Tests for redact: card numbers, configured patterns, overlaps, bad patterns, hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "redact.h"
#include "testlib.h"

/* Redacts s with r and checks the result and the number of masked spans. */
static void assert_redacted(const struct redactor *r, const char *s, const char *expected,
                            int expected_masked)
{
    int n_masked = -1;
    char *out = redact_text(r, s, strlen(s), &n_masked);
    assert_non_null(out);
    if (strcmp(out, expected) != 0)
        fail_msg("\"%s\" gave \"%s\", expected \"%s\"", s, out, expected);
    assert_int_equal(n_masked, expected_masked);
    free(out);
}

static void assert_unchanged(const struct redactor *r, const char *s)
{
    assert_redacted(r, s, s, 0);
}

/* A redactor with the n patterns given (besides cards); fails the test when it cannot be
 * made. */
static struct redactor *redactor(const char *const *patterns, int n)
{
    struct redactor *r = redact_new(patterns, n, NULL);
    assert_non_null(r);
    return r;
}

static void test_luhn(void **state)
{
    (void)state;
    assert_true(redact_luhn_ok("79927398713", 11));
    assert_false(redact_luhn_ok("79927398710", 11));
    assert_true(redact_luhn_ok("4242424242424242", 16));
    assert_false(redact_luhn_ok("4242424242424241", 16));
    assert_false(redact_luhn_ok("", 0));
    assert_false(redact_luhn_ok(NULL, 3));
    assert_false(redact_luhn_ok("42a2", 4));
}

static void test_cards_masked(void **state)
{
    (void)state;
    struct redactor *r = redactor(NULL, 0);
    assert_redacted(r, "4242 4242 4242 4242", "**** **** **** 4242", 1);
    assert_redacted(r, "card: 4111-1111-1111-1111.", "card: ****-****-****-1111.", 1);
    assert_redacted(r, "amex 378282246310005 ok", "amex ***********0005 ok", 1);
    assert_redacted(r, "3782 822463 10005", "**** ****** *0005", 1);
    assert_redacted(r, "mc:5555555555554444", "mc:************4444", 1);
    assert_redacted(r, "card 4242 4242 4242 4242 cvv 123", "card **** **** **** 4242 cvv 123", 1);
    /* Two cards, and a card after a short group that is not part of it. */
    assert_redacted(r, "4242424242424242 and 4000056655665556",
                    "************4242 and ************5556", 2);
    assert_redacted(r, "qty 12 4242 4242 4242 4242", "qty 12 **** **** **** 4242", 1);
    /* 19 digits in 4-4-4-4-3 groups. */
    assert_redacted(r, "4242 4242 4242 4242 121", "**** **** **** ***2 121", 1);
    redact_free(r);
}

static void test_non_cards_kept(void **state)
{
    (void)state;
    struct redactor *r = redactor(NULL, 0);
    assert_unchanged(r, "4242 4242 4242 4241"); /* Luhn-invalid */
    assert_unchanged(r, "4242-4242-4242-4243");
    assert_unchanged(r, "order 1000000001007");  /* Luhn-valid, but no card starts with 1 */
    assert_unchanged(r, "ref 8000000000001001"); /* Luhn-valid, starts with 8 */
    assert_unchanged(r, "order #98765432109876");
    assert_unchanged(r, "call +1 555-123-4567 or +44 20 7946 0958");
    assert_unchanged(r, "from 2024-01-15 2024-02-06"); /* Luhn-valid as 16 digits */
    assert_unchanged(r, "4242 4242  4242 4242");       /* two spaces split it */
    assert_unchanged(r, "4242-4242 4242-4242");        /* mixed separators */
    assert_unchanged(r, "42424242424242424242424242"); /* 26 digits: an id, not a card */
    assert_unchanged(r, "424242424242");               /* 12 digits */
    assert_unchanged(r, "");
    redact_free(r);
}

static void test_patterns(void **state)
{
    (void)state;
    struct redactor *r = redactor(redact_default_patterns, redact_n_default_patterns);
    assert_true(redact_n_default_patterns >= 1);
    assert_redacted(r, "write to Jane.Doe+help@Example.CO.uk please", "write to [redacted] please",
                    1);
    assert_redacted(r, "a@b.com, c@d.org", "[redacted], [redacted]", 2);
    assert_unchanged(r, "user at example dot com, @handle, x@y");
    assert_redacted(r, "mail a@b.com card 4242424242424242",
                    "mail [redacted] card ************4242", 2);
    redact_free(r);

    const char *ids[] = {"[0-9]{3}-[0-9]{2}-[0-9]{4}", "passport [a-z][0-9]{8}"};
    r = redactor(ids, 2);
    assert_redacted(r, "SSN 078-05-1120, PASSPORT X12345678.", "SSN [redacted], [redacted].", 2);
    redact_free(r);
}

static void test_overlaps(void **state)
{
    (void)state;
    const char *pats[] = {"abc", "bcd", "card [0-9]{4}"};
    struct redactor *r = redactor(pats, 3);
    assert_redacted(r, "xabcdx", "x[redacted]x", 1);
    assert_redacted(r, "abcabc", "[redacted][redacted]", 2);
    /* A pattern overlapping a card masks the union: no card digit stays visible. */
    assert_redacted(r, "card 4242 4242 4242 4242!", "[redacted]!", 1);
    redact_free(r);

    const char *all[] = {"x*", "^"}; /* empty matches are skipped */
    r = redactor(all, 2);
    assert_redacted(r, "abxxc", "ab[redacted]c", 1);
    redact_free(r);
}

static void test_bad_patterns(void **state)
{
    (void)state;
    char *err = NULL;
    const char *bad[] = {"[0-9]+", "a(b"};
    assert_null(redact_new(bad, 2, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "a(b"));
    free(err);

    /* A pattern that would make the compiler take gigabytes: refused, saying why. */
    const char *huge[] = {"ORD-[0-9]{6}", "((x{100}){100})"};
    err = NULL;
    assert_null(redact_new(huge, 2, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "redact pattern 2"));
    assert_non_null(strstr(err, "written out"));
    free(err);

    const char *empty[] = {""};
    err = NULL;
    assert_null(redact_new(empty, 1, &err));
    assert_non_null(err);
    free(err);

    assert_null(redact_new(NULL, 2, NULL));
    redact_free(NULL);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    struct redactor *r = redact_new(redact_default_patterns, redact_n_default_patterns, NULL);
    const char in[] = "a@b.com\0c@d.org 4242424242424242";
    size_t n = sizeof in - 1;
    int n_masked = 0;
    char *out = redact_text(r, in, n, &n_masked);
    const char expected[] = "[redacted]\0[redacted] ************4242";
    assert_non_null(out);
    assert_int_equal(n_masked, 3);
    assert_memory_equal(out, expected, sizeof expected);
    free(out);
    out = redact_text(r, NULL, 0, NULL);
    assert_string_equal(out, "");
    free(out);
    redact_free(r);
}

static void test_random_input(void **state)
{
    (void)state;
    struct redactor *r = redact_new(redact_default_patterns, redact_n_default_patterns, NULL);
    struct redactor *cards = redact_new(NULL, 0, NULL);
    const char alphabet[] = "0123456789 -4242@a.b";
    unsigned seed = 42;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 200);
        char *s = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        int n_masked = 0;
        char *out = redact_text(cards, s, n, &n_masked);
        assert_non_null(out);
        /* Card masking keeps length and every non-digit byte. */
        assert_int_equal(strlen(out), n);
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                assert_int_equal(out[i], s[i]);
        }
        free(out);
        out = redact_text(r, s, n, NULL);
        assert_non_null(out);
        free(out);
        free(s);
    }
    redact_free(cards);
    redact_free(r);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_luhn),
                    cmocka_unit_test(test_cards_masked),
                    cmocka_unit_test(test_non_cards_kept),
                    cmocka_unit_test(test_patterns),
                    cmocka_unit_test(test_overlaps),
                    cmocka_unit_test(test_bad_patterns),
                    cmocka_unit_test(test_embedded_nul),
                    cmocka_unit_test(test_random_input),
                });
}
