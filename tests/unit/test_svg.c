/* Tests for svg: the reliability diagram is well-formed XML (checked here, and by xmllint
 * when it is installed) and its bars follow the bins it is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cd.h"
#include "svg.h"
#include "testlib.h"

/* A small XML well-formedness check: tags nest and close, attribute values are quoted,
 * and every '&' starts an entity. Returns 1 if s is well-formed with one root element. */
static int xml_well_formed(const char *s)
{
    char stack[64][32];
    int depth = 0, n_roots = 0;
    while (*s) {
        if (*s == '&') {
            const char *e = strchr(s, ';');
            if (!e || e - s > 8 || e == s + 1)
                return 0;
            s = e + 1;
            continue;
        }
        if (*s == '>')
            return 0;
        if (*s != '<') {
            s++;
            continue;
        }
        if (s[1] == '?') { /* the XML declaration */
            const char *e = strstr(s, "?>");
            if (!e)
                return 0;
            s = e + 2;
            continue;
        }
        if (s[1] == '/') {
            size_t n = strcspn(s + 2, ">");
            if (!s[2 + n] || depth == 0 || n != strlen(stack[depth - 1]) ||
                strncmp(s + 2, stack[depth - 1], n))
                return 0;
            depth--;
            s += 3 + n;
            continue;
        }
        size_t n = strcspn(s + 1, " />\n");
        if (n == 0 || n >= sizeof stack[0])
            return 0;
        char name[32];
        memcpy(name, s + 1, n);
        name[n] = '\0';
        s += 1 + n;
        /* Attributes: name="value" ... */
        for (;;) {
            while (*s == ' ' || *s == '\n')
                s++;
            if (*s == '/' && s[1] == '>') {
                s += 2;
                n_roots += depth == 0;
                break;
            }
            if (*s == '>') {
                s++;
                if (depth == 64)
                    return 0;
                n_roots += depth == 0;
                snprintf(stack[depth++], sizeof stack[0], "%s", name);
                break;
            }
            size_t a = strcspn(s, "= />");
            if (a == 0 || s[a] != '=' || s[a + 1] != '"')
                return 0;
            const char *end = strchr(s + a + 2, '"');
            if (!end || memchr(s + a + 2, '<', (size_t)(end - (s + a + 2))))
                return 0;
            s = end + 1;
        }
    }
    return depth == 0 && n_roots == 1;
}

/* The height and y of the i-th element of class cls ("bar", "gap"), or -1 if none. */
static int rect_of_class(const char *svg, const char *cls, int i, double *y, double *h)
{
    char needle[64];
    snprintf(needle, sizeof needle, "class=\"%s\"", cls);
    const char *p = svg;
    for (int k = 0; (p = strstr(p, needle)); k++, p++) {
        if (k < i)
            continue;
        const char *start = p;
        while (start > svg && strncmp(start, "<rect", 5))
            start--;
        const char *ya = strstr(start, " y=\""), *ha = strstr(start, " height=\"");
        assert_true(ya && ha && ya < p && ha < p);
        *y = atof(ya + 4);
        *h = atof(ha + 9);
        return 0;
    }
    return -1;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_checker(void **state)
{
    (void)state;
    static const struct testlib_case docs[] = {
        {"<a><b x=\"1\"/>t &amp; u</a>", 1},
        {"<a><b></a></b>", 0},
        {"<a>x & y</a>", 0},
        {"<a x=1></a>", 0},
        {"<a></a><b/>", 0},
        {"<a>", 0},
    };
    TESTLIB_CHECK_CASES(xml_well_formed, docs);
}

static void test_reliability_bars_follow_bins(void **state)
{
    (void)state;
    struct svg_bin bins[15];
    memset(bins, 0, sizeof bins);
    for (int b = 0; b < 15; b++) {
        bins[b].lo = b / 15.0;
        bins[b].hi = (b + 1) / 15.0;
    }
    /* Non-empty bins 3, 8, 13 and 14; 14 has accuracy above 1 (clamped). */
    const int used[] = {3, 8, 13, 14};
    const double acc[] = {0.25, 0.5, 0.9, 1.5}, conf[] = {0.22, 0.55, 0.9, 0.97};
    for (int i = 0; i < 4; i++) {
        bins[used[i]].n = 10 * (i + 1);
        bins[used[i]].accuracy = acc[i];
        bins[used[i]].confidence = conf[i];
    }
    struct cd_buf b = {0};
    assert_int_equal(svg_reliability(&b, bins, 15, "Reliability: ECE 0.0123 <test> & \"more\""), 0);
    assert_true(xml_well_formed(b.data));
    /* The title (escaped) names the ECE. */
    assert_non_null(strstr(b.data, "<title>Reliability: ECE 0.0123 &lt;test&gt; &amp; "
                                   "&quot;more&quot;</title>"));
    /* One bar per non-empty bin, in bin order, as tall as its accuracy, on the x axis. */
    assert_int_equal(count(b.data, "class=\"bar\""), 4);
    for (int i = 0; i < 4; i++) {
        double y, h, want = (acc[i] > 1 ? 1 : acc[i]) * SVG_REL_PLOT_H;
        assert_int_equal(rect_of_class(b.data, "bar", i, &y, &h), 0);
        assert_true(fabs(h - want) < 0.01);
        assert_true(fabs(y + h - (SVG_REL_TOP + SVG_REL_PLOT_H)) < 0.01);
    }
    /* The gaps: |confidence - accuracy| of the bins where they differ (not bin 13). */
    assert_int_equal(count(b.data, "class=\"gap\""), 3);
    double y, h;
    assert_int_equal(rect_of_class(b.data, "gap", 0, &y, &h), 0);
    assert_true(fabs(h - 0.03 * SVG_REL_PLOT_H) < 0.01);
    /* Counts above the bars, and the diagonal. */
    assert_non_null(strstr(b.data, ">40</text>"));
    assert_non_null(strstr(b.data, "stroke-dasharray"));
    cd_buf_free(&b);
}

static void test_reliability_file(void **state)
{
    (void)state;
    struct svg_bin bins[2] = {{0, 0.5, 3, 0.4, 1.0 / 3}, {0.5, 1, 0, 0, 0}};
    char path[64];
    snprintf(path, sizeof path, "/tmp/cd-test-svg-%d.svg", (int)getpid());
    assert_int_equal(svg_reliability_file(path, bins, 2, "ECE 0.1"), 0);
    size_t len = 0;
    char *text = cd_read_file(path, &len);
    assert_non_null(text);
    assert_true(xml_well_formed(text));
    assert_int_equal(count(text, "class=\"bar\""), 1);
    free(text);
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "xmllint --noout %s", path);
        assert_int_equal(system(cmd), 0);
    }
    unlink(path);
    assert_int_equal(svg_reliability_file("/nonexistent-dir/x.svg", bins, 2, "t"), CD_EIO);
    /* No bins, no title: an empty diagram, still well-formed. */
    struct cd_buf b = {0};
    assert_int_equal(svg_reliability(&b, NULL, 0, NULL), 0);
    assert_true(xml_well_formed(b.data));
    assert_int_equal(count(b.data, "class=\"bar\""), 0);
    cd_buf_free(&b);
}

static void test_shapes_escape(void **state)
{
    (void)state;
    struct cd_buf b = {0};
    assert_int_equal(svg_begin(&b, 100, 50, NULL), 0);
    assert_int_equal(svg_rect(&b, 1, 2, 3, 4, "red\"x", "c<", "tip & \x01 more"), 0);
    assert_int_equal(svg_line(&b, 0, 0, 10, 10, NULL, 1, 0), 0);
    assert_int_equal(svg_text(&b, 5, 5, NULL, 10, "a<b>&c"), 0);
    assert_int_equal(svg_end(&b), 0);
    assert_true(xml_well_formed(b.data));
    assert_non_null(strstr(b.data, "a&lt;b&gt;&amp;c"));
    assert_null(strchr(b.data, '\x01')); /* not allowed in XML */
    cd_buf_free(&b);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_checker),
                    cmocka_unit_test(test_reliability_bars_follow_bins),
                    cmocka_unit_test(test_reliability_file),
                    cmocka_unit_test(test_shapes_escape),
                });
}
