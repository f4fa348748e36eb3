/* Tests for util.c's string helpers and JSON text writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "cd.h"
#include "redact.h"
#include "testlib.h"

#include <jansson.h>
#include <stdlib.h>

static void test_strlcpy_fits_cuts_terminates(void **state)
{
    (void)state;
    char buf[6];
    memset(buf, 'x', sizeof buf);
    assert_ptr_equal(cd_strlcpy(buf, sizeof buf, "abc"), buf);
    assert_string_equal(buf, "abc");
    assert_string_equal(cd_strlcpy(buf, sizeof buf, "abcde"), "abcde"); /* exactly fits */
    assert_string_equal(cd_strlcpy(buf, sizeof buf, "abcdefgh"), "abcde");
    assert_string_equal(cd_strlcpy(buf, sizeof buf, ""), "");
    char one[1] = {'x'};
    assert_string_equal(cd_strlcpy(one, sizeof one, "abc"), "");
}

/* Checks that ours (a buffer cd_json_* wrote) holds what json_dumps() writes for v (stolen),
 * then frees both. */
static void assert_as_jansson(struct cd_buf *ours, json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(want);
    assert_string_equal(ours->data, want);
    free(want);
    json_decref(v);
    cd_buf_free(ours);
}

/* cd_json_string() writes what jansson writes; with CD_JSON_REPLACE_INVALID it never fails. */
static void test_json_string_matches_jansson(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",           "plain",        "q\"b\\s/",
        "\b\f\n\r\t", "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cd_buf b = {0};
        assert_int_equal(cd_json_string(&b, cases[i], strlen(cases[i]), 0), 0);
        assert_as_jansson(&b, json_string(cases[i]));
    }
    struct cd_buf b = {0};
    assert_int_equal(cd_json_string(&b, "a\xff", 2, 0), CD_EINVAL);
    assert_int_equal(cd_json_string(&b,
                                    "a\xff"
                                    "b\x7f",
                                    4, CD_JSON_REPLACE_INVALID),
                     0);
    assert_string_equal(b.data, "\"a\\ufffdb\\u007F\"");
    cd_buf_free(&b);
}

static void test_json_numbers_match_jansson(void **state)
{
    (void)state;
    static const double reals[] = {0, 1, -2.5, 1e300, 1.5e-7, 0.1, 123456789012345678.0};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        struct cd_buf b = {0};
        assert_int_equal(cd_json_real(&b, reals[i]), 0);
        assert_as_jansson(&b, json_real(reals[i]));
    }
    static const long long ints[] = {0, 7, -7, 9223372036854775807LL, -9223372036854775807LL - 1};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        struct cd_buf b = {0};
        assert_int_equal(cd_json_int(&b, ints[i]), 0);
        assert_as_jansson(&b, json_integer(ints[i]));
    }
}

/* The one FNV-1a (published test vectors) and the one file-suffix check. */
static void test_fnv1a_and_suffix(void **state)
{
    (void)state;
    assert_int_equal(cd_fnv1a32(CD_FNV32_INIT, "", 0), 0x811c9dc5u);
    assert_int_equal(cd_fnv1a32(CD_FNV32_INIT, "a", 1), 0xe40c292cu);
    assert_int_equal(cd_fnv1a32(CD_FNV32_INIT, "foobar", 6), 0xbf9cf968u);
    assert_true(cd_fnv1a64(CD_FNV64_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(cd_fnv1a64(CD_FNV64_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
    /* Hashing in pieces is hashing the whole. */
    assert_true(cd_fnv1a64(cd_fnv1a64(CD_FNV64_INIT, "foo", 3), "bar", 3) ==
                cd_fnv1a64(CD_FNV64_INIT, "foobar", 6));
    static const struct testlib_case2 suffixes[] = {
        {"intents.jsonl", ".jsonl", 1},
        {"intents.json", ".jsonl", 0},
        {".md", ".md", 1},
        {"md", ".md", 0},
        {"x", "", 1},
    };
    TESTLIB_CHECK_CASES2(cd_has_suffix, suffixes);
}

/* The one reading of a whole number: settings, command options and query arguments. */
static void test_parse_int(void **state)
{
    (void)state;
    int v = -7;
    assert_int_equal(cd_parse_int("42", 1, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cd_parse_int(" 7 \t", 1, 100, &v), 0); /* a value from a settings file */
    assert_int_equal(v, 7);
    assert_int_equal(cd_parse_int("-3", -5, 5, &v), 0);
    assert_int_equal(v, -3);
    static const char *const bad[] = {
        "", " ", "4x", "x4", "4.0", "101", "0", "1e3", "99999999999999999999", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -7;
        assert_int_equal(cd_parse_int(bad[i], 1, 100, &v), -1);
        assert_int_equal(v, -7); /* unchanged */
    }
}

/* The one email rule: an '@' with text on each side, at most 254 bytes. */
static void test_is_email(void **state)
{
    (void)state;
    char longest[CD_EMAIL_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[1] = '@';
    longest[CD_EMAIL_MAX] = '\0';
    static const struct testlib_case emails[] = {
        {"sam@example.com", 1}, {"a@b", 1}, {"@example.com", 0}, {"sam@", 0},
        {"sam.example.com", 0}, {"", 0},    {NULL, 0},
    };
    TESTLIB_CHECK_CASES(cd_is_email, emails);
    assert_int_equal(cd_is_email(longest), 1);
    longest[CD_EMAIL_MAX] = 'a';
    longest[CD_EMAIL_MAX + 1] = '\0';
    assert_int_equal(cd_is_email(longest), 0);
}

/* Regular expressions from outside: what would make regcomp() take gigabytes is refused with
 * what to change; everything else is left to regcomp(). */
static void test_regex_check(void **state)
{
    (void)state;
    char why[128];
    static const char *const fine[] = {
        "^re(tu|fu)nd",
        "[0-9]{13,19}",
        "(\\d{4}[- ]?){3}\\d{4}",
        "[]a+*]+x", /* '+' and '*' inside a bracket are characters */
        "[[:alpha:]]{2,}",
        "[[...]]x[[=e=]]+", /* a collating symbol and an equivalence class */
        "a{2}b{1,}c?d{,5}",
        "\\++",        /* an escaped '+' repeated once */
        "a*?(ab)+{3}", /* a repetition of a repetition, small */
        "(a{15}){15}", /* 225 written out */
        "a{",          /* no interval: left to regcomp() */
        REDACT_EMAIL_PATTERN,
    };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        why[0] = '\0';
        assert_int_equal(cd_regex_check(fine[i], why, sizeof why), 0);
        assert_string_equal(why, "");
    }
    static const struct {
        const char *re, *says;
    } refused[] = {
        {"re(tu++++++++++++++++++++++++++++++++++++++++++++ea", "written out"},
        {"a{256}", "more than 255"},
        {"a{1,300}", "more than 255"},
        {"a{,300}", "more than 255"},
        {"(a*)*b\\1", "back-reference (\\1)"},
        {"((a{100}){100})", "written out"},
        {"((a{,250}){,250})", "written out"},
        {"[[...]]((a{250}){250})", "written out"}, /* the symbol does not end the bracket */
        {"[[=a=]((a{250}){250})", "not closed"},
        {"[abc", "not closed"},
        {"(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))",
         "nested more than 32"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(cd_regex_check(refused[i].re, why, sizeof why), -1);
        if (!strstr(why, refused[i].says))
            fail_msg("'%s': '%s' does not say '%s'", refused[i].re, why, refused[i].says);
    }
    /* Long but flat is fine; long and repeated twice over is not. */
    char flat[CD_REGEX_SIZE + 1];
    memset(flat, 'a', CD_REGEX_SIZE);
    flat[CD_REGEX_SIZE] = '\0';
    assert_int_equal(cd_regex_check(flat, why, sizeof why), 0);
    assert_int_equal(cd_regex_check("(a{100}b{100}){20}", why, sizeof why), 0); /* 4,000 */
    assert_int_equal(cd_regex_check("(a{100}b{100}){21}", why, sizeof why), -1);
}

/* The one ISO 8601 time with milliseconds (log lines, webhook deliveries). */
/* Every error code has its own message; anything else is "unknown error". */
static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(cd_strerror(CD_OK), "success");
    assert_string_equal(cd_strerror(CD_EIO), "I/O error");
    for (int rc = CD_ENOMEM; rc >= CD_ESTATE; rc--) {
        assert_string_not_equal(cd_strerror(rc), "unknown error");
        assert_string_not_equal(cd_strerror(rc), cd_strerror(rc + 1));
    }
    assert_string_equal(cd_strerror(CD_ESTATE - 1), "unknown error");
    assert_string_equal(cd_strerror(1), "unknown error");
    assert_string_equal(cd_strerror(INT_MIN), "unknown error");
}

static void test_iso_time(void **state)
{
    (void)state;
    char buf[CD_ISO_TIME_MAX];
    assert_string_equal(cd_iso_time_ms(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    assert_string_equal(cd_iso_time_ms(1796545646123LL, buf, sizeof buf),
                        "2026-12-06T08:27:26.123Z");
}

/* The one HTML escaper: pages and SVG. */
static void test_html_escape(void **state)
{
    (void)state;
    struct cd_buf b = {0};
    assert_int_equal(cd_html_escape(&b, "a\"b'c<d>&", 9), 0);
    assert_string_equal(b.data, "a&quot;b&#39;c&lt;d&gt;&amp;");
    cd_buf_free(&b);
}

/* The one array resize: grows and shrinks, keeps the elements, refuses an overflowing size
 * and leaves the array as it was. */
static void test_resize(void **state)
{
    (void)state;
    int *a = NULL;
    assert_int_equal(cd_resize(&a, 4, sizeof *a), 0);
    assert_non_null(a);
    for (int i = 0; i < 4; i++)
        a[i] = i * 10;
    assert_int_equal(cd_resize(&a, 1000, sizeof *a), 0);
    assert_int_equal(a[3], 30);
    int *before = a;
    assert_int_equal(cd_resize(&a, SIZE_MAX / 2, sizeof *a), CD_ENOMEM);
    assert_ptr_equal(a, before);
    assert_int_equal(cd_resize(&a, 2, sizeof *a), 0);
    assert_int_equal(a[1], 10);
    /* Grown with zeroes after what was there. */
    assert_int_equal(cd_resize_zeroed(&a, 2, 64, sizeof *a), 0);
    assert_int_equal(a[1], 10);
    for (int i = 2; i < 64; i++)
        assert_int_equal(a[i], 0);
    free(a);

    /* cd_grow: room for one more, the capacity doubling from first. */
    int64_t *v = NULL;
    int n = 0, cap = 0;
    for (; n < 5; n++) {
        assert_int_equal(cd_grow(&v, &cap, n, sizeof *v, 2), 0);
        v[n] = n;
    }
    assert_int_equal(cap, 8);
    assert_int_equal(v[4], 4);
    assert_int_equal(cd_grow(&v, &cap, n, sizeof *v, 2), 0);
    assert_int_equal(cap, 8); /* not full: unchanged */
    int64_t *was = v;
    cap = n = INT_MAX / 2 + 1;
    assert_int_equal(cd_grow(&v, &cap, n, sizeof *v, 2), CD_ENOMEM);
    assert_ptr_equal(v, was);
    assert_int_equal(cap, INT_MAX / 2 + 1);
    free(v);

    /* cd_grow_each: parallel arrays of one table grow together, to one capacity. */
    int *ids = NULL;
    double *at = NULL;
    n = cap = 0;
    for (; n < 9; n++) {
        assert_int_equal(cd_grow_each(&cap, n, 4, &ids, sizeof *ids, &at, sizeof *at, (void *)NULL),
                         0);
        ids[n] = n;
        at[n] = n / 2.0;
    }
    assert_int_equal(cap, 16);
    assert_int_equal(ids[8], 8);
    assert_true(at[8] == 4.0);
    assert_int_equal(
        cd_grow_each(&cap, 16, 4, &ids, sizeof *ids, &at, (size_t)SIZE_MAX / 8, (void *)NULL),
        CD_ENOMEM); /* the second array cannot grow: the capacity stays */
    assert_int_equal(cap, 16);
    assert_int_equal(ids[8], 8);
    assert_true(at[8] == 4.0);
    free(ids);
    free(at);
}

/* Log lines: valid UTF-8 kept, invalid bytes replaced. */
/* The lower bound: the first entry >= x, n past the end, the first of equal entries. */
static void test_lower_bound(void **state)
{
    (void)state;
    const double v[] = {0.1, 0.2, 0.2, 0.5, 0.9};
    assert_int_equal(cd_lower_bound(v, 5, 0.0), 0);
    assert_int_equal(cd_lower_bound(v, 5, 0.1), 0);
    assert_int_equal(cd_lower_bound(v, 5, 0.15), 1);
    assert_int_equal(cd_lower_bound(v, 5, 0.2), 1);
    assert_int_equal(cd_lower_bound(v, 5, 0.3), 3);
    assert_int_equal(cd_lower_bound(v, 5, 0.9), 4);
    assert_int_equal(cd_lower_bound(v, 5, 1.0), 5);
    assert_int_equal(cd_lower_bound(v, 0, 0.5), 0);
}

static void test_json_string_utf8(void **state)
{
    (void)state;
    struct cd_buf b = {0};
    const char *s = "caf\xc3\xa9 \xe2\x82\xac";
    assert_int_equal(cd_json_string(&b, s, strlen(s), CD_JSON_REPLACE_INVALID), 0);
    assert_string_equal(b.data, "\"caf\xc3\xa9 \xe2\x82\xac\"");
    cd_buf_reset(&b);
    /* A truncated sequence at the end is replaced, not copied. */
    assert_int_equal(cd_json_string(&b, "ab\xe2\x82", 4, CD_JSON_REPLACE_INVALID), 0);
    assert_string_equal(b.data, "\"ab\\ufffd\\ufffd\"");
    cd_buf_free(&b);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_strlcpy_fits_cuts_terminates),
                    cmocka_unit_test(test_json_string_matches_jansson),
                    cmocka_unit_test(test_json_numbers_match_jansson),
                    cmocka_unit_test(test_fnv1a_and_suffix),
                    cmocka_unit_test(test_resize),
                    cmocka_unit_test(test_lower_bound),
                    cmocka_unit_test(test_html_escape),
                    cmocka_unit_test(test_iso_time),
                    cmocka_unit_test(test_strerror),
                    cmocka_unit_test(test_is_email),
                    cmocka_unit_test(test_parse_int),
                    cmocka_unit_test(test_regex_check),
                    cmocka_unit_test(test_json_string_utf8),
                });
}
