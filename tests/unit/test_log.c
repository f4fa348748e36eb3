/* Tests for log.c: one JSON object per line, levels, field types and escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *capture_buf;
static size_t capture_len;

static char *capture_log(enum log_level min, void (*fn)(void))
{
    FILE *f = open_memstream(&capture_buf, &capture_len);
    log_init(min, f);
    fn();
    fclose(f);
    log_init(LOG_INFO, NULL);
    char *out = capture_buf;
    capture_buf = NULL;
    return out;
}

static void emit_some(void)
{
    log_event(LOG_DEBUG, "hidden", "n:i", 1, LOG_END);
    log_event(LOG_INFO, "listening", "port:i", 8080, "bind:s", "::", "tls:b", 0, "ratio:f", 0.5,
              "big:l", 1234567890123LL, "none:s", (const char *)NULL, LOG_END);
    log_event(LOG_ERROR, "odd", "text:s", "quote\" back\\ nl\n tab\t \x01 bad\xff end", LOG_END);
}

static void test_log_lines(void **state)
{
    (void)state;
    char *out = capture_log(LOG_INFO, emit_some);
    assert_null(strstr(out, "hidden"));
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_true(out[0] == '{');
    assert_non_null(strstr(out, "\"level\":\"info\""));
    assert_non_null(strstr(out, "\"event\":\"listening\""));
    assert_non_null(strstr(out, "\"port\":8080"));
    assert_non_null(strstr(out, "\"bind\":\"::\""));
    assert_non_null(strstr(out, "\"tls\":false"));
    assert_non_null(strstr(out, "\"ratio\":0.5"));
    assert_non_null(strstr(out, "\"big\":1234567890123"));
    assert_non_null(strstr(out, "\"none\":null"));
    assert_non_null(strstr(out, "\"ts\":\"20"));
    char *second = nl + 1;
    assert_non_null(strstr(second, "\"level\":\"error\""));
    assert_non_null(strstr(second, "quote\\\" back\\\\ nl\\n tab\\t \\u0001 bad\\ufffd end"));
    /* Exactly two lines. */
    assert_int_equal(strchr(second, '\n')[1], '\0');
    free(out);

    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("warning"), LOG_WARN);
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("verbose"), -1);
    assert_int_equal(log_level_parse(NULL), -1);
}

static void test_levels(void **state)
{
    (void)state;
    log_init(LOG_WARN, NULL);
    assert_int_equal(log_get_level(), LOG_WARN);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERROR));
    assert_false(log_enabled(LOG_OFF));
    log_init(LOG_OFF, NULL);
    assert_false(log_enabled(LOG_ERROR));
    log_init(LOG_INFO, NULL);
    assert_int_equal(log_level_parse("info"), LOG_INFO);
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse("off"), LOG_OFF);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_log_lines),
                    cmocka_unit_test(test_levels),
                });
}
