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
    cd_buf_free(&b);
}

/* CommonMark through libcmark: raw HTML blocks and inline tags are shown as text, unsafe
 * images keep their alt text, tables of imported articles stay text, escapes are honoured. */
static void test_commonmark_page(void **state)
{
    (void)state;
    struct cd_buf b = {0};
    assert_int_equal(markdown_to_html(&b,
                                      "<div onclick=\"x()\">hi</div>\n\n"
                                      "Write \\<RMA> and <b>bold</b> \\*not em\\*.\n\n"
                                      "![logo](javascript:x) ![ok](https://shop.example/l.png)\n\n"
                                      "###### deep\n"),
                     0);
    assert_null(strstr(b.data, "<div"));
    assert_null(strstr(b.data, "<b>"));
    assert_non_null(strstr(b.data, "&lt;div onclick=&quot;x()&quot;&gt;hi&lt;/div&gt;"));
    assert_non_null(strstr(b.data, "Write &lt;RMA&gt; and &lt;b&gt;bold&lt;/b&gt; *not em*."));
    assert_null(strstr(b.data, "javascript"));
    assert_non_null(strstr(b.data, "logo"));
    assert_non_null(strstr(b.data, "<img src=\"https://shop.example/l.png\" alt=\"ok\""));
    assert_non_null(strstr(b.data, "<h6>deep</h6>"));
    cd_buf_free(&b);
}

static void test_passage_text(void **state)
{
    (void)state;
    struct cd_buf b = {0};
    const char *md =
        "## Send it **back**\n\n- Print the [label](https://x.example/l)\n"
        "- Write \\<RMA> on the <b>box</b> &amp; `seal` it\n\n<script>alert(1)</script>\n";
    assert_int_equal(markdown_to_text(&b, md, strlen(md), 1000), 0);
    assert_string_equal(b.data, "Send it back Print the label Write on the box & seal it ");
    cd_buf_reset(&b);
    /* Stops once past the limit, at the end of a word. */
    const char *long_md = "one two three four five six seven eight nine ten\n";
    assert_int_equal(markdown_to_text(&b, long_md, strlen(long_md), 10), 0);
    assert_true(b.len >= 10 && b.len < strlen(long_md));
    cd_buf_free(&b);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_commonmark_page),
                    cmocka_unit_test(test_passage_text),
                    cmocka_unit_test(test_blocks_and_inline),
                    cmocka_unit_test(test_nothing_unescaped),
                });
}
