/* Tests for metrics.c (counters, gauges, histograms, Prometheus text) and
 * log.c (one JSON object per line, level filter, escaping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cd.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_counters_and_gauges(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    metrics_add(m, METRICS_DECISIONS_ANSWER, 2);
    metrics_add(m, METRICS_DECISIONS_ANSWER, 1);
    metrics_add(m, METRICS_DECISIONS_HANDOFF, 1);
    metrics_set(m, METRICS_QUEUE_LENGTH, 4);
    metrics_gauge_add(m, METRICS_QUEUE_LENGTH, -1);
    assert_int_equal(metrics_counter(m, METRICS_DECISIONS_ANSWER), 3);
    assert_true(metrics_gauge(m, METRICS_QUEUE_LENGTH) == 3.0);
    /* NULL is accepted and ignored. */
    metrics_add(NULL, METRICS_DECISIONS_ANSWER, 1);
    assert_int_equal(metrics_counter(NULL, METRICS_DECISIONS_ANSWER), 0);

    struct cd_buf out = {0};
    assert_int_equal(metrics_render(m, &out), 0);
    assert_non_null(strstr(out.data, "caredesk_decisions_total{action=\"answer\"} 3\n"));
    assert_non_null(strstr(out.data, "caredesk_decisions_total{action=\"handoff\"} 1\n"));
    assert_non_null(strstr(out.data, "caredesk_decisions_total{action=\"clarify\"} 0\n"));
    assert_non_null(strstr(out.data, "caredesk_queue_length 3\n"));
    assert_non_null(strstr(out.data, "# TYPE caredesk_decisions_total counter\n"));
    /* One HELP/TYPE per family, not per series. */
    const char *first = strstr(out.data, "# TYPE caredesk_decisions_total");
    assert_null(strstr(first + 1, "# TYPE caredesk_decisions_total"));
    assert_non_null(strstr(out.data, "process_resident_memory_bytes "));
    cd_buf_free(&out);
    metrics_free(m);
    metrics_free(NULL);
}

static void test_histogram(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    metrics_observe(m, METRICS_STORE_COMMIT_SECONDS, 0.0002);
    metrics_observe(m, METRICS_STORE_COMMIT_SECONDS, 0.003);
    metrics_observe(m, METRICS_STORE_COMMIT_SECONDS, 5.0);
    metrics_observe(m, METRICS_STORE_COMMIT_SECONDS, 0.0 / 0.0); /* NaN: ignored */
    assert_int_equal(metrics_histogram_count(m, METRICS_STORE_COMMIT_SECONDS), 3);
    assert_true(metrics_histogram_sum(m, METRICS_STORE_COMMIT_SECONDS) > 5.003);
    struct cd_buf out = {0};
    assert_int_equal(metrics_render(m, &out), 0);
    /* Buckets are cumulative: le=0.00025 has 1, le=0.005 has 2, +Inf has 3. */
    assert_non_null(strstr(out.data, "caredesk_store_commit_seconds_bucket{le=\"0.0001\"} 0\n"));
    assert_non_null(strstr(out.data, "caredesk_store_commit_seconds_bucket{le=\"0.00025\"} 1\n"));
    assert_non_null(strstr(out.data, "caredesk_store_commit_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(out.data, "caredesk_store_commit_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(out.data, "caredesk_store_commit_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.data, "caredesk_store_commit_seconds_count 3\n"));
    assert_non_null(strstr(out.data, "# TYPE caredesk_wait_seconds histogram\n"));
    cd_buf_free(&out);
    metrics_free(m);
}

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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_json_string_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
