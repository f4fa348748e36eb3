/* Tests for markdown.c: the article page renderer and its escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "markdown.h"
#include "testlib.h"

/* An article body, what its page must show and what it must not. */
static const struct {
    const char *md;
    const char *const has[6], *const has_not[4];
} pages[] = {
    /* Blocks and inline markup. */
    {"# Returns\n\nSend it **back** with `code`.\n\n- one\n- [two](https://shop.example/2)\n\n"
     "1. first\n",
     {"<h2>Returns</h2>", "<p>Send it <strong>back</strong> with <code>code</code>.",
      "<ul>\n<li>one</li>\n<li><a href=\"https://shop.example/2\">two",
      "<ol>\n<li>first</li>\n</ol>", NULL},
     {NULL}},
    /* Nothing unescaped. */
    {"<script>alert('x')</script> & [bad](javascript:alert(1))",
     {"&lt;script&gt;", "&amp;", NULL},
     {"<script", "href", NULL}},
    /* CommonMark through libcmark: raw HTML blocks and inline tags are shown as text, unsafe
     * images keep their alt text, tables of imported articles stay text, escapes are
     * honoured. */
    {"<div onclick=\"x()\">hi</div>\n\n"
     "Write \\<RMA> and <b>bold</b> \\*not em\\*.\n\n"
     "![logo](javascript:x) ![ok](https://shop.example/l.png)\n\n"
     "###### deep\n",
     {"&lt;div onclick=&quot;x()&quot;&gt;hi&lt;/div&gt;",
      "Write &lt;RMA&gt; and &lt;b&gt;bold&lt;/b&gt; *not em*.", "logo",
      "<img src=\"https://shop.example/l.png\" alt=\"ok\"", "<h6>deep</h6>", NULL},
     {"<div", "<b>", "javascript", NULL}},
};

static void test_pages(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        struct cd_buf b = {0};
        assert_int_equal(markdown_to_html(&b, pages[i].md), 0);
        testlib_assert_has_all(b.data, pages[i].has);
        testlib_assert_has_none(b.data, pages[i].has_not);
        cd_buf_free(&b);
    }
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
                    cmocka_unit_test(test_pages),
                    cmocka_unit_test(test_passage_text),
                });
}
