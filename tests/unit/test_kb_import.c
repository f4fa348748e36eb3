/* Tests for kb_import: HTML to Markdown, the three export formats and their sniffing, problems
 * reported as FILE:ITEM, stable ids and idempotent re-import, nothing half-written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cd.h"
#include "kb.h"
#include "kb_import.h"

static void expect_md(const char *html, const char *want)
{
    char *md = kb_html_to_markdown(html, strlen(html));
    assert_non_null(md);
    if (strcmp(md, want))
        fprintf(stderr, "html: %s\nwant:\n%s\ngot:\n%s\n", html, want, md);
    assert_string_equal(md, want);
    free(md);
}

static void test_html_blocks(void **state)
{
    (void)state;
    expect_md("<h2>Send it back</h2><p>Within <b>30</b> <em>days</em>.</p>",
              "## Send it back\n\nWithin **30** *days*.");
    expect_md("<p>See <a href=\"https://example.com/a b\">the policy</a></p>",
              "See [the policy](https://example.com/a%20b)");
    expect_md("<ol><li>One<ul><li>nested</li></ul></li><li>Two</li></ol><p>after</p>",
              "1.  One\n    - nested\n2.  Two\n\nafter");
    expect_md("<ol start=\"3\"><li>three</li></ol>", "3.  three");
    expect_md("<table><tr><th>Plan</th><th>Days</th></tr><tr><td>A|B</td><td>30</td></tr>"
              "</table>",
              "| Plan | Days |\n| --- | --- |\n| A\\|B | 30 |");
    expect_md("<p><img src=\"https://example.com/l.png\" alt=\"Return label\"></p>",
              "![Return label](https://example.com/l.png)");
    expect_md("<pre>a\n  b</pre>", "```\na\n  b\n```");
    expect_md("<blockquote><p>one</p><p>two</p></blockquote>", "> one\n>\n> two");
}

static void test_html_removed_and_escaped(void **state)
{
    (void)state;
    expect_md("<p>a</p><script>alert(1)</script><style>p{}</style><iframe src=x></iframe>"
              "<p>b</p>",
              "a\n\nb");
    expect_md("<p><blink>kept text</blink> <font color=red>too</font></p>", "kept text too");
    expect_md("<p>&lt;script&gt; &amp; &copy; x&nbsp;y</p>", "\\<script> & \xc2\xa9 x y");
    expect_md("<p>*not* _emphasis_ [nor] `code`</p>",
              "\\*not\\* \\_emphasis\\_ \\[nor\\] \\`code\\`");
    expect_md("<p>1. not a list</p><p># nor a heading</p>", "1\\. not a list\n\n\\# nor a heading");
    expect_md("<a href=\"javascript:alert(1)\">click</a>", "click");
    expect_md("<img src=\"javascript:x\" alt=\"no\">", "");
    expect_md("", "");
    expect_md("<p><b> </b></p>", "");
}

struct seen {
    int n_items, n_problems;
    char ids[16][64];
    char problems[16][160];
    int published[16];
    char langs[16][8];
    char original[16][64];
    char tags[16][160];
};

static int on_item(void *ctx, const struct kb_import_item *it, const char *where)
{
    struct seen *s = ctx;
    if (s->n_items < 16) {
        snprintf(s->ids[s->n_items], 64, "%s", it->id);
        s->published[s->n_items] = it->is_published;
        snprintf(s->langs[s->n_items], 8, "%s", it->lang);
        snprintf(s->original[s->n_items], 64, "%s", it->original_id ? it->original_id : "");
        for (int i = 0; i < it->n_tags; i++) {
            size_t len = strlen(s->tags[s->n_items]);
            snprintf(s->tags[s->n_items] + len, 160 - len, "%s%s", i ? "," : "", it->tags[i]);
        }
    }
    s->n_items++;
    return 0;
}

static void on_problem(void *ctx, const char *where, const char *message)
{
    struct seen *s = ctx;
    if (s->n_problems < 16)
        snprintf(s->problems[s->n_problems], 160, "%s: %s", where, message);
    s->n_problems++;
}

static int parse(const char *json, int format, struct seen *s)
{
    memset(s, 0, sizeof *s);
    return kb_import_parse(json, strlen(json), "x.json", format, on_item, on_problem, s);
}

/* Checks item i of s: its id, language (NULL: not checked) and whether it is published. */
static void assert_item(const struct seen *s, int i, const char *id, const char *lang,
                        int is_published)
{
    assert_true(i < s->n_items);
    assert_string_equal(s->ids[i], id);
    if (lang)
        assert_string_equal(s->langs[i], lang);
    assert_int_equal(s->published[i], is_published);
}

/* One export of each help centre, read with the format sniffed: the problems parse() counts,
 * the items (a NULL lang or tags: not checked) and what the problems say. */
static const struct {
    const char *json;
    int n_problems, n_items;
    struct {
        const char *id, *lang, *tags, *original;
        int is_published;
    } items[2];
    const char *problems[3];
} exports[] = {
    {"{\"articles\":[{\"id\":360001234501,\"title\":\"A\",\"locale\":\"en-us\","
     "\"draft\":true,\"section_id\":7,\"label_names\":[\"x\"],\"body\":\"<p>b</p>\"},"
     "{\"id\":2,\"title\":\"  \",\"body\":\"<p>b</p>\"},"
     "{\"id\":3,\"title\":\"C\",\"locale\":\"xx-yy\",\"body\":\"<p>b</p>\"}],"
     "\"sections\":[{\"id\":7,\"name\":\"Returns\"}]}",
     2,
     1,
     {{"zendesk-360001234501", "en", "x,Returns", "", 0}},
     {"x.json:articles[1]: article 2 has no title",
      "x.json:articles[2]: article 3: language 'xx-yy'"}},
    {"{\"type\":\"list\",\"data\":[{\"id\":\"9\",\"title\":\"T\",\"body\":\"<p>b</p>\","
     "\"state\":\"published\",\"default_locale\":\"en\",\"parent_ids\":[5],"
     "\"translated_content\":{\"type\":\"article_translated_content\","
     "\"pt-BR\":{\"title\":\"T pt\",\"body\":\"<p>c</p>\",\"state\":\"draft\"}}}]}",
     0,
     2,
     {{"intercom-9", NULL, NULL, "", 1},
      {"intercom-9-pt-br", "pt", "collection-5", "intercom-9", 0}},
     {NULL}},
    {"[{\"id\":11,\"title\":\"F\",\"description\":\"<p>d</p>\",\"status\":2,"
     "\"tags\":[\"t\"],\"hierarchy\":[{\"level\":0,\"type\":\"category\","
     "\"data\":{\"name\":\"Billing\",\"language\":\"de\"}}]},"
     "{\"id\":12,\"title\":\"G\",\"description\":\"<p>d</p>\",\"status\":1}]",
     0,
     2,
     {{"freshdesk-11", "de", "t,Billing", "", 1}, {"freshdesk-12", NULL, NULL, "", 0}},
     {NULL}},
};

static void test_formats(void **state)
{
    (void)state;
    struct seen s;
    for (size_t e = 0; e < sizeof exports / sizeof exports[0]; e++) {
        assert_int_equal(parse(exports[e].json, KB_IMPORT_SNIFF, &s), exports[e].n_problems);
        assert_int_equal(s.n_items, exports[e].n_items);
        for (int i = 0; i < exports[e].n_items; i++) {
            assert_item(&s, i, exports[e].items[i].id, exports[e].items[i].lang,
                        exports[e].items[i].is_published);
            if (exports[e].items[i].tags)
                assert_string_equal(s.tags[i], exports[e].items[i].tags);
            assert_string_equal(s.original[i], exports[e].items[i].original);
        }
        for (int k = 0; exports[e].problems[k]; k++)
            assert_non_null(strstr(s.problems[k], exports[e].problems[k]));
    }

    /* Named formats must match; unknown shapes and bad JSON are whole-file problems. */
    assert_int_equal(parse(exports[1].json, KB_IMPORT_ZENDESK, &s), CD_EPARSE); /* Intercom's */
    assert_int_equal(s.n_items, 0);
    assert_non_null(strstr(s.problems[0], "x.json: not a Zendesk Help Center export"));
    assert_int_equal(parse("{\"items\":[]}", KB_IMPORT_SNIFF, &s), CD_EPARSE);
    assert_non_null(strstr(s.problems[0], "--from"));
    assert_int_equal(parse("{\"articles\":[{\"id\":1,", KB_IMPORT_SNIFF, &s), CD_EPARSE);
    assert_int_equal(s.n_items, 0);
    assert_non_null(strstr(s.problems[0], "truncated"));
}

static char tmp_dir[64];

static char *write_tmp(const char *name, const char *text)
{
    static char path[8][256];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void quiet(void *ctx, const char *where, const char *message)
{
    (void)where;
    (void)message;
    ++*(int *)ctx;
}

static void test_import_idempotent(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/caredesk-import-XXXXXX");
    assert_non_null(mkdtemp(tmp_dir));
    char db[128];
    snprintf(db, sizeof db, "%s/kb.db", tmp_dir);
    char *err = NULL;
    struct kb *kb = kb_open(db, &err);
    assert_non_null(kb);

    char *first = write_tmp(
        "a.json",
        "{\"articles\":[{\"id\":1,\"title\":\"Zebra returns\",\"html_url\":\"https://h/1\","
        "\"body\":\"<p>Return the <b>zebra</b> <script>x()</script>kit.</p>\"},"
        "{\"id\":2,\"title\":\"Quokka care\",\"body\":\"<p>Feed it.</p>\"}]}");
    int n_notes = 0;
    struct kb_import_report r = {0};
    r.on_problem = quiet;
    r.ctx = &n_notes;
    assert_int_equal(kb_import_files(kb, KB_IMPORT_SNIFF, &first, 1, &r), 0);
    assert_int_equal(r.n_new, 2);
    assert_int_equal(r.n_problems, 0);
    struct kb_article a;
    assert_int_equal(kb_get(kb, "zendesk-1", &a), 0);
    assert_string_equal(a.body, "Return the **zebra** kit.");
    int rev = a.revision;
    kb_article_clear(&a);
    char *orig = NULL, *url = kb_import_source_url(kb, "zendesk-1", &orig);
    assert_string_equal(url, "https://h/1");
    assert_null(orig);
    free(url);

    /* Passages never hold a tag. */
    struct kb_hit hits[3];
    int n = 0;
    assert_int_equal(kb_search(kb, "zebra kit", "en", hits, 3, &n), 0);
    assert_true(n >= 1);
    assert_null(strchr(hits[0].passage, '<'));
    kb_hits_clear(hits, n);

    /* A learned phrasing added in caredesk survives an import that does not change the
     * article, and the same export again makes no revision. */
    struct kb_article with_q;
    assert_int_equal(kb_get(kb, "zendesk-1", &with_q), 0);
    char *qs[] = {"can I send the zebra back"};
    with_q.questions = qs;
    with_q.n_questions = 1;
    assert_int_equal(kb_put(kb, &with_q, NULL, 0), 0);
    with_q.questions = NULL;
    with_q.n_questions = 0;
    kb_article_clear(&with_q);
    assert_int_equal(kb_get(kb, "zendesk-1", &a), 0);
    rev = a.revision;
    kb_article_clear(&a);
    memset(&r, 0, sizeof r);
    r.on_problem = quiet;
    r.ctx = &n_notes;
    assert_int_equal(kb_import_files(kb, KB_IMPORT_ZENDESK, &first, 1, &r), 0);
    assert_int_equal(r.n_new, 0);
    assert_int_equal(r.n_unchanged, 2);
    assert_int_equal(kb_get(kb, "zendesk-1", &a), 0);
    assert_int_equal(a.revision, rev);
    assert_int_equal(a.n_questions, 1);
    kb_article_clear(&a);

    /* Changed at the source: a new revision; gone at the source: reported, kept. A bad item
     * is skipped, a truncated file writes nothing. */
    char *later[] = {
        write_tmp("b.json", "{\"articles\":[{\"id\":1,\"title\":\"Zebra returns\","
                            "\"body\":\"<p>Return the zebra kit within 60 days.</p>\"},"
                            "{\"id\":3,\"body\":\"<p>untitled</p>\"}]}"),
        write_tmp("c.json", "{\"articles\":[{\"id\":4,\"title\":\"Never stored\",\"body\":\"<p>x"),
    };
    memset(&r, 0, sizeof r);
    n_notes = 0;
    r.on_problem = quiet;
    r.ctx = &n_notes;
    assert_int_equal(kb_import_files(kb, KB_IMPORT_SNIFF, later, 2, &r), 0);
    assert_int_equal(r.n_updated, 1);
    assert_int_equal(r.n_problems, 2);
    assert_int_equal(r.n_missing, 1);
    assert_int_equal(n_notes, 3);
    assert_int_equal(kb_get(kb, "zendesk-1", &a), 0);
    assert_int_equal(a.revision, rev + 1);
    kb_article_clear(&a);
    assert_int_equal(kb_get(kb, "zendesk-2", &a), 0); /* kept */
    kb_article_clear(&a);
    assert_int_equal(kb_get(kb, "zendesk-3", &a), CD_ENOTFOUND);
    assert_int_equal(kb_get(kb, "zendesk-4", &a), CD_ENOTFOUND);
    kb_close(kb);
    char path[160];
    const char *names[] = {"kb.db", "kb.db-wal", "kb.db-shm", "a.json", "b.json", "c.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, names[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_blocks),
        cmocka_unit_test(test_html_removed_and_escaped),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_import_idempotent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
