/* Tests for markdown.c: the article page renderer and its escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "markdown.h"
#include "testlib.h"

static void test_blocks_and_inline(void **state)
{
    (void)state;
    struct cd_buf b = {0};
    assert_int_equal(markdown_to_html(&b, "# Returns\n\nSend it **back** with `code`.\n\n"
                                          "- one\n- [two](https://shop.example/2)\n\n1. first\n"),
                     0);
    assert_non_null(strstr(b.data, "<h2>Returns</h2>"));
    assert_non_null(strstr(b.data, "<p>Send it <strong>back</strong> with <code>code</code>."));
    assert_non_null(
        strstr(b.data, "<ul>\n<li>one</li>\n<li><a href=\"https://shop.example/2\">two"));
    assert_non_null(strstr(b.data, "<ol>\n<li>first</li>\n</ol>"));
    cd_buf_free(&b);
}

static void test_nothing_unescaped(void **state)
{
    (void)state;
    struct cd_buf b = {0};
    assert_int_equal(
        markdown_to_html(&b, "<script>alert('x')</script> & [bad](javascript:alert(1))"), 0);
    assert_null(strstr(b.data, "<script"));
    assert_null(strstr(b.data, "href"));
    assert_non_null(strstr(b.data, "&lt;script&gt;"));
    assert_non_null(strstr(b.data, "&amp;"));
    cd_buf_reset(&b);
    assert_int_equal(markdown_escape_html(&b, "a\"b'c<d>&", 9), 0);
    assert_string_equal(b.data, "a&quot;b&#39;c&lt;d&gt;&amp;");
    cd_buf_free(&b);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_blocks_and_inline),
                    cmocka_unit_test(test_nothing_unescaped),
                });
}
