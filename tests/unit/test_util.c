/* Tests for util.c's string helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cd.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strlcpy_fits_cuts_terminates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
