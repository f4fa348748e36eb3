/* Tests for metrics.c: counters, gauges, histograms, Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cd.h"
#include "chat.h"
#include "metrics.h"
#include "testlib.h"

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
    testlib_assert_has_all(out.data, (const char *const[]){
                                         "caredesk_decisions_total{action=\"answer\"} 3\n",
                                         "caredesk_decisions_total{action=\"handoff\"} 1\n",
                                         "caredesk_decisions_total{action=\"clarify\"} 0\n",
                                         "caredesk_queue_length 3\n",
                                         "# TYPE caredesk_decisions_total counter\n",
                                         NULL,
                                     });
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
    static const struct {
        const char *le;
        int n;
    } buckets[] = {{"0.0001", 0}, {"0.00025", 1}, {"0.005", 2}, {"1", 2}, {"+Inf", 3}};
    for (size_t i = 0; i < sizeof buckets / sizeof buckets[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "caredesk_store_commit_seconds_bucket{le=\"%s\"} %d\n",
                 buckets[i].le, buckets[i].n);
        assert_non_null(strstr(out.data, line));
    }
    assert_non_null(strstr(out.data, "caredesk_store_commit_seconds_count 3\n"));
    assert_non_null(strstr(out.data, "# TYPE caredesk_wait_seconds histogram\n"));
    cd_buf_free(&out);
    metrics_free(m);
}

/* A histogram kept by chat.c is set whole, and only with the bounds /metrics declares. */
static void test_histogram_set_from_chat(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    uint64_t buckets[CHAT_WAIT_BUCKETS] = {0};
    buckets[0] = 2;
    buckets[CHAT_WAIT_BUCKETS - 1] = 1;
    assert_int_equal(metrics_histogram_set(m, METRICS_WAIT_SECONDS, chat_wait_bounds_s,
                                           CHAT_WAIT_BUCKETS - 1, buckets, 4000.5),
                     0);
    assert_int_equal(metrics_histogram_count(m, METRICS_WAIT_SECONDS), 3);
    assert_true(metrics_histogram_sum(m, METRICS_WAIT_SECONDS) == 4000.5);
    assert_int_equal(metrics_histogram_set(m, METRICS_PICKUP_SECONDS, chat_wait_bounds_s,
                                           CHAT_WAIT_BUCKETS - 1, buckets, 1),
                     0);
    static const double other[] = {5, 15};
    assert_int_equal(metrics_histogram_set(m, METRICS_WAIT_SECONDS, other, 2, buckets, 0),
                     CD_EINVAL);
    assert_int_equal(metrics_histogram_count(m, METRICS_WAIT_SECONDS), 3);
    metrics_free(m);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_counters_and_gauges),
                    cmocka_unit_test(test_histogram),
                    cmocka_unit_test(test_histogram_set_from_chat),
                });
}
