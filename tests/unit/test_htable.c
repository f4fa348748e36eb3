/* Tests for htable.c: put, get, delete, growth, and walking with removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "htable.h"
#include "testlib.h"

struct item {
    struct htable_node node;
    int seen;
};

static void test_put_get_del_grow(void **state)
{
    (void)state;
    struct htable t = {0};
    enum { N = 1000 };
    struct item *items = calloc(N, sizeof *items);
    assert_non_null(items);
    assert_null(htable_get(&t, 1));
    for (int i = 0; i < N; i++) {
        items[i].node.key = (uint64_t)i * 7919 + 1;
        assert_int_equal(htable_put(&t, &items[i].node), 0);
    }
    assert_int_equal(t.n, N);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(htable_get(&t, (uint64_t)i * 7919 + 1), &items[i].node);
    assert_null(htable_get(&t, 2));
    htable_del(&t, &items[10].node);
    htable_del(&t, &items[10].node); /* not there any more: nothing happens */
    assert_null(htable_get(&t, 10 * 7919 + 1));
    assert_int_equal(t.n, N - 1);
    htable_free(&t);
    assert_int_equal(t.n, 0);
    assert_null(htable_get(&t, 1));
    free(items);
}

static void test_iterate_and_remove(void **state)
{
    (void)state;
    struct htable t = {0};
    struct item items[100];
    memset(items, 0, sizeof items);
    for (int i = 0; i < 100; i++) {
        items[i].node.key = (uint64_t)i;
        assert_int_equal(htable_put(&t, &items[i].node), 0);
    }
    struct htable_iter it;
    struct htable_node *n;
    int count = 0;
    htable_iter_init(&it, &t);
    while ((n = htable_iter_next(&it))) {
        struct item *x = (struct item *)n;
        x->seen++;
        count++;
        if (n->key % 2 == 0)
            htable_del(&t, n); /* removing the node just returned is allowed */
    }
    assert_int_equal(count, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(items[i].seen, 1);
    assert_int_equal(t.n, 50);
    count = 0;
    htable_iter_init(&it, &t);
    while ((n = htable_iter_next(&it)))
        count += n->key % 2 == 1;
    assert_int_equal(count, 50);
    htable_free(&t);
    /* An empty table walks nothing. */
    htable_iter_init(&it, &t);
    assert_null(htable_iter_next(&it));
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_put_get_del_grow),
                    cmocka_unit_test(test_iterate_and_remove),
                });
}
