/* kb_html: turns the HTML bodies of help-centre exports into the KB's Markdown, walking the
 * tree libxml2's HTML parser builds (the parser, not patterns, decides what is a tag).
 *
 * DESIGN: inline content collects in a paragraph buffer with whitespace collapsed; a block
 * element flushes it as one block, prefixed for the headings, list items and quotes it sits
 * in. Text is escaped so that no character of it becomes Markdown or HTML syntax: a "<b>" the
 * article shows as text stays text. Elements that carry no article text (script, style,
 * forms, embedded objects) are dropped with their content; any other unknown tag is dropped
 * and its text kept. */
#include "kb_import.h"

#include "cd.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MD_MAX_DEPTH 64 /* nesting followed; deeper elements keep only their text */
#define MD_MAX_LISTS 16

struct md {
    struct cd_buf out;  /* the Markdown so far */
    struct cd_buf para; /* inline text of the block being collected */
    int rc;
    int is_space_pending; /* collapsed whitespace not written yet */
    int n_lists;
    int list_num[MD_MAX_LISTS]; /* 0: bullet list; else the next item's number */
    int list_indent[MD_MAX_LISTS];
    int is_item_start; /* the next block is the first of a list item: gets its marker */
    int n_quotes;
    int in_pre;
    int heading;       /* 1..6 while in a heading */
    int is_list_open;  /* a list starts: a blank line before its first item */
    int is_quote_open; /* a quote starts: its blocks after the first are joined by ">" */
};

static void put(struct md *m, const char *s, size_t n)
{
    if (!m->rc && cd_buf_append(&m->para, s, n))
        m->rc = CD_ENOMEM;
}

static void put_str(struct md *m, const char *s)
{
    put(m, s, strlen(s));
}

static void put_out(struct md *m, const char *s, size_t n)
{
    if (!m->rc && cd_buf_append(&m->out, s, n))
        m->rc = CD_ENOMEM;
}

/* Writes the pending space, if any, unless the paragraph is still empty. */
static void flush_space(struct md *m)
{
    if (m->is_space_pending && m->para.len && m->para.data[m->para.len - 1] != '\n')
        put(m, " ", 1);
    m->is_space_pending = 0;
}

static int is_ws(const unsigned char *s, size_t n, size_t i, size_t *width)
{
    *width = 1;
    if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f')
        return 1;
    if (s[i] == 0xC2 && i + 1 < n && s[i + 1] == 0xA0) { /* no-break space */
        *width = 2;
        return 1;
    }
    return 0;
}

/* Appends text with whitespace collapsed (kept as is inside <pre>) and every character that
 * Markdown or HTML would read as syntax escaped. */
static void put_text(struct md *m, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    if (m->in_pre) {
        for (size_t i = 0; i < n; i++)
            if (s[i] != '\r')
                put(m, (const char *)s + i, 1);
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t w;
        if (is_ws(s, n, i, &w)) {
            m->is_space_pending = 1;
            i += w;
            continue;
        }
        flush_space(m);
        char c = (char)s[i];
        if (c && strchr("\\`*_[]<", c))
            put(m, "\\", 1);
        put(m, (const char *)s + i, 1);
        i++;
    }
}

static int is_named(const xmlNode *n, const char *name)
{
    return n->name && !strcasecmp((const char *)n->name, name);
}

static int is_any(const xmlNode *n, const char *const *names)
{
    for (; *names; names++)
        if (is_named(n, *names))
            return 1;
    return 0;
}

static const char *const dropped[] = {
    "script", "style", "noscript", "template", "iframe", "object",   "embed", "svg",
    "math",   "head",  "title",    "form",     "button", "select",   "input", "textarea",
    "canvas", "audio", "video",    "applet",   "frame",  "frameset", "meta",  "link",
    "map",    "param", "source",   "track",    NULL,
};

static const char *const blocks[] = {
    "p",   "div",    "section",    "article", "header",  "footer",  "main",    "aside",
    "nav", "figure", "figcaption", "address", "details", "summary", "dl",      "dt",
    "dd",  "center", "fieldset",   "legend",  "body",    "html",    "caption", NULL,
};

/* Writes the collected paragraph as one block, with the prefixes of the headings, list items
 * and quotes around it; nothing when it holds no text. */
static void flush(struct md *m)
{
    m->is_space_pending = 0;
    while (m->para.len &&
           (m->para.data[m->para.len - 1] == ' ' || m->para.data[m->para.len - 1] == '\n'))
        m->para.data[--m->para.len] = '\0';
    if (m->rc || !m->para.len)
        return;
    int is_tight = m->n_lists && !m->in_pre && !m->is_list_open;
    m->is_list_open = 0;
    if (m->out.len && m->n_quotes && !m->is_quote_open) {
        put_out(m, "\n", 1);
        for (int q = 0; q < m->n_quotes; q++)
            put_out(m, ">", 1);
        put_out(m, "\n", 1);
    } else if (m->out.len)
        put_out(m, "\n\n", is_tight ? 1 : 2);
    m->is_quote_open = 0;
    struct cd_buf first = {0}, rest = {0};
    for (int q = 0; q < m->n_quotes && !m->rc; q++)
        if (cd_buf_puts(&first, "> ") || cd_buf_puts(&rest, "> "))
            m->rc = CD_ENOMEM;
    for (int l = 0; l < m->n_lists && !m->rc; l++) {
        int rc = 0;
        if (l == m->n_lists - 1 && m->is_item_start)
            rc = m->list_num[l] ? cd_buf_printf(&first, "%-*d", m->list_indent[l],
                                                m->list_num[l]) /* "1.  " below */
                                : cd_buf_puts(&first, "- ");
        else
            rc = cd_buf_printf(&first, "%*s", m->list_indent[l], "");
        if (!rc && l == m->n_lists - 1 && m->is_item_start && m->list_num[l]) {
            /* "12  " becomes "12. ": the number, a dot, then spaces to the indent */
            size_t at = first.len - (size_t)m->list_indent[l];
            size_t digits = strspn(first.data + at, "0123456789");
            first.data[at + digits] = '.';
            if (digits + 1 >= (size_t)m->list_indent[l])
                rc = cd_buf_puts(&first, " ");
            m->list_num[l]++;
        }
        if (rc || cd_buf_printf(&rest, "%*s", m->list_indent[l], ""))
            m->rc = CD_ENOMEM;
    }
    m->is_item_start = 0;
    if (m->heading && !m->rc) {
        char marks[8];
        memset(marks, '#', (size_t)m->heading);
        marks[m->heading] = ' ';
        if (cd_buf_append(&first, marks, (size_t)m->heading + 1))
            m->rc = CD_ENOMEM;
    }
    const char *p = m->para.data, *end = p + m->para.len;
    int is_first = 1;
    while (p < end && !m->rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const struct cd_buf *prefix = is_first ? &first : &rest;
        if (prefix->len)
            put_out(m, prefix->data, prefix->len);
        if (!m->in_pre && n) {
            /* A line starting with what reads as a heading, quote, list marker or rule
             * stays text. */
            size_t d = strspn(p, "0123456789");
            if (d && d < n && (p[d] == '.' || p[d] == ')')) {
                put_out(m, p, d);
                put_out(m, "\\", 1);
                p += d;
                n -= d;
            } else if (strchr("#>-+=", *p))
                put_out(m, "\\", 1);
        }
        is_first = 0;
        put_out(m, p, n);
        if (nl)
            put_out(m, "\n", 1);
        p += n + (nl ? 1 : 0);
    }
    cd_buf_free(&first);
    cd_buf_free(&rest);
    cd_buf_reset(&m->para);
}

static void walk(struct md *m, const xmlNode *node, int depth);

static void walk_children(struct md *m, const xmlNode *node, int depth)
{
    for (const xmlNode *c = node->children; c && !m->rc; c = c->next)
        walk(m, c, depth + 1);
}

static const char *attr(const xmlNode *n, const char *name)
{
    for (const xmlAttr *a = n->properties; a; a = a->next)
        if (a->name && !strcasecmp((const char *)a->name, name) && a->children &&
            a->children->type == XML_TEXT_NODE && a->children->content)
            return (const char *)a->children->content;
    return NULL;
}

/* A URL usable in Markdown: http(s), mailto, or site-relative; spaces and parentheses
 * percent-encoded. Returns 0, or -1 when the URL is not one to keep (javascript:, data:). */
static int put_url(struct md *m, const char *url)
{
    while (*url == ' ' || *url == '\t' || *url == '\n')
        url++;
    if (!*url)
        return -1;
    if (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8) ||
        !strncasecmp(url, "mailto:", 7) || url[0] == '/' || url[0] == '#' || url[0] == '?' ||
        !strpbrk(url, ":")) {
        for (const char *p = url; *p; p++) {
            if (*p == ' ' || *p == '(' || *p == ')' || *p == '<' || *p == '>' || *p == '\n' ||
                *p == '\t' || *p == '\\') {
                char hex[4];
                snprintf(hex, sizeof hex, "%%%02X", (unsigned char)*p);
                put_str(m, hex);
            } else
                put(m, p, 1);
        }
        return 0;
    }
    return -1;
}

static int is_safe_url(const char *url)
{
    if (!url)
        return 0;
    while (*url == ' ' || *url == '\t' || *url == '\n')
        url++;
    return *url && (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8) ||
                    !strncasecmp(url, "mailto:", 7) || url[0] == '/' || url[0] == '#' ||
                    url[0] == '?' || !strchr(url, ':'));
}

/* Inline content of a node as one line of Markdown (for table cells): the node's children
 * walked into a fresh paragraph, newlines made spaces. Returns a malloc'd string or NULL. */
static char *inline_text(struct md *m, const xmlNode *node, int depth)
{
    struct md sub = {0};
    walk_children(&sub, node, depth);
    m->rc = m->rc ? m->rc : sub.rc;
    /* Blocks inside a cell were flushed into sub.out; the rest is in sub.para. */
    struct cd_buf all = {0};
    if ((sub.out.len && cd_buf_append(&all, sub.out.data, sub.out.len)) ||
        (sub.out.len && sub.para.len && cd_buf_append(&all, " ", 1)) ||
        (sub.para.len && cd_buf_append(&all, sub.para.data, sub.para.len)) ||
        cd_buf_append(&all, "", 0))
        m->rc = CD_ENOMEM;
    cd_buf_free(&sub.out);
    cd_buf_free(&sub.para);
    if (m->rc) {
        cd_buf_free(&all);
        return NULL;
    }
    for (size_t i = 0; i < all.len; i++)
        if (all.data[i] == '\n')
            all.data[i] = ' ';
    return all.data ? all.data : strdup("");
}

static void collect_rows(const xmlNode *node, const xmlNode **rows, int *n_rows, int max)
{
    for (const xmlNode *c = node->children; c && *n_rows < max; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_named(c, "tr"))
            rows[(*n_rows)++] = c;
        else if (is_named(c, "thead") || is_named(c, "tbody") || is_named(c, "tfoot"))
            collect_rows(c, rows, n_rows, max);
    }
}

#define MD_MAX_ROWS 500
#define MD_MAX_COLS 32

/* A table as a pipe table: the first row is the header; short rows are padded. */
static void table(struct md *m, const xmlNode *node, int depth)
{
    flush(m);
    const xmlNode **rows = calloc(MD_MAX_ROWS, sizeof *rows);
    if (!rows) {
        m->rc = CD_ENOMEM;
        return;
    }
    int n_rows = 0, n_cols = 0;
    collect_rows(node, rows, &n_rows, MD_MAX_ROWS);
    for (int r = 0; r < n_rows; r++) {
        int n = 0;
        for (const xmlNode *c = rows[r]->children; c; c = c->next)
            n += c->type == XML_ELEMENT_NODE && (is_named(c, "td") || is_named(c, "th"));
        n_cols = n > n_cols ? n : n_cols;
    }
    n_cols = n_cols > MD_MAX_COLS ? MD_MAX_COLS : n_cols;
    int saved_lists = m->n_lists;
    for (int r = 0; r < n_rows && n_cols && !m->rc; r++) {
        put(m, "|", 1);
        int n = 0;
        for (const xmlNode *c = rows[r]->children; c && n < n_cols && !m->rc; c = c->next) {
            if (c->type != XML_ELEMENT_NODE || !(is_named(c, "td") || is_named(c, "th")))
                continue;
            char *cell = inline_text(m, c, depth);
            put(m, " ", 1);
            for (const char *q = cell; q && *q; q++)
                put(m, *q == '|' ? "\\|" : q, *q == '|' ? 2 : 1);
            put(m, " |", 2);
            free(cell);
            n++;
        }
        for (; n < n_cols; n++)
            put(m, "  |", 3);
        put(m, "\n", 1);
        if (r == 0) {
            put(m, "|", 1);
            for (int k = 0; k < n_cols; k++)
                put(m, " --- |", 6);
            put(m, "\n", 1);
        }
    }
    free(rows);
    /* The rows are lines of their own: flushed as they are, with no collapsing. */
    m->in_pre++;
    m->n_lists = saved_lists;
    flush(m);
    m->in_pre--;
}

static void walk(struct md *m, const xmlNode *node, int depth)
{
    if (m->rc)
        return;
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
        if (node->content)
            put_text(m, (const char *)node->content);
        return;
    }
    if (node->type != XML_ELEMENT_NODE && node->type != XML_DOCUMENT_NODE &&
        node->type != XML_HTML_DOCUMENT_NODE)
        return;
    if (depth > MD_MAX_DEPTH) {
        walk_children(m, node, depth); /* text only: no more structure */
        return;
    }
    if (node->type != XML_ELEMENT_NODE) {
        walk_children(m, node, depth);
        return;
    }
    if (is_any(node, dropped))
        return;
    if (node->name && strlen((const char *)node->name) == 2 &&
        (node->name[0] == 'h' || node->name[0] == 'H') && node->name[1] >= '1' &&
        node->name[1] <= '6' && !m->heading && !m->in_pre) {
        flush(m);
        m->heading = node->name[1] - '0';
        walk_children(m, node, depth);
        flush(m);
        m->heading = 0;
        return;
    }
    if ((is_named(node, "ul") || is_named(node, "ol")) && m->n_lists < MD_MAX_LISTS && !m->in_pre) {
        flush(m);
        int start = 1;
        const char *s = attr(node, "start");
        if (s && atoi(s) > 0 && atoi(s) < 1000000)
            start = atoi(s);
        m->list_num[m->n_lists] = is_named(node, "ol") ? start : 0;
        m->list_indent[m->n_lists] = is_named(node, "ol") ? 4 : 2;
        m->is_list_open = !m->n_lists;
        m->n_lists++;
        walk_children(m, node, depth);
        flush(m);
        m->n_lists--;
        m->is_item_start = 0;
        return;
    }
    if (is_named(node, "li") && m->n_lists && !m->in_pre) {
        flush(m);
        m->is_item_start = 1;
        walk_children(m, node, depth);
        flush(m);
        if (m->is_item_start) { /* an empty item keeps its number */
            m->is_item_start = 0;
            if (m->list_num[m->n_lists - 1])
                m->list_num[m->n_lists - 1]++;
        }
        return;
    }
    if (is_named(node, "blockquote") && !m->in_pre) {
        flush(m);
        m->n_quotes++;
        m->is_quote_open = 1;
        walk_children(m, node, depth);
        flush(m);
        m->n_quotes--;
        return;
    }
    if (is_named(node, "pre") && !m->in_pre) {
        flush(m);
        m->in_pre = 1;
        put(m, "```\n", 4);
        walk_children(m, node, depth);
        while (m->para.len && m->para.data[m->para.len - 1] == '\n')
            m->para.data[--m->para.len] = '\0';
        put(m, "\n```", 4);
        flush(m);
        m->in_pre = 0;
        return;
    }
    if (is_named(node, "table") && !m->in_pre) {
        table(m, node, depth);
        return;
    }
    if (is_named(node, "hr") && !m->in_pre) {
        flush(m);
        put(m, "---", 3);
        m->in_pre++;
        flush(m);
        m->in_pre--;
        return;
    }
    if (is_named(node, "br")) {
        if (m->in_pre)
            put(m, "\n", 1);
        else
            m->is_space_pending = 1;
        return;
    }
    if (is_named(node, "img")) {
        const char *src = attr(node, "src"), *alt = attr(node, "alt");
        if (!is_safe_url(src))
            return;
        flush_space(m);
        put(m, "![", 2);
        if (alt) {
            int pre = m->in_pre;
            m->in_pre = 0;
            put_text(m, alt);
            m->is_space_pending = 0;
            m->in_pre = pre;
        }
        put(m, "](", 2);
        put_url(m, src);
        put(m, ")", 1);
        return;
    }
    if (is_named(node, "a") && !m->in_pre) {
        const char *href = attr(node, "href");
        if (!is_safe_url(href)) {
            walk_children(m, node, depth);
            return;
        }
        flush_space(m);
        size_t open = m->para.len;
        put(m, "[", 1);
        walk_children(m, node, depth);
        if (m->para.len == open + 1) /* no text: the URL is the text */
            put_text(m, href);
        put(m, "](", 2);
        put_url(m, href);
        put(m, ")", 1);
        (void)open;
        return;
    }
    const char *mark = NULL;
    if (is_named(node, "strong") || is_named(node, "b"))
        mark = "**";
    else if (is_named(node, "em") || is_named(node, "i"))
        mark = "*";
    else if (is_named(node, "code") || is_named(node, "kbd") || is_named(node, "samp"))
        mark = "`";
    if (mark && !m->in_pre) {
        flush_space(m);
        size_t open = m->para.len;
        put_str(m, mark);
        if (mark[0] == '`') {
            m->in_pre = 1; /* code text is kept as it is, on one line */
            size_t from = m->para.len;
            walk_children(m, node, depth);
            m->in_pre = 0;
            for (size_t i = from; i < m->para.len; i++)
                if (m->para.data[i] == '\n' || m->para.data[i] == '`')
                    m->para.data[i] = m->para.data[i] == '`' ? '\'' : ' ';
        } else
            walk_children(m, node, depth);
        if (m->para.len == open + strlen(mark)) { /* nothing inside: no marks */
            m->para.len = open;
            if (m->para.data)
                m->para.data[open] = '\0';
        } else
            put_str(m, mark);
        return;
    }
    int is_block = is_any(node, blocks) && !m->in_pre;
    if (is_block)
        flush(m);
    walk_children(m, node, depth);
    if (is_block)
        flush(m);
}

char *kb_html_to_markdown(const char *html, size_t len)
{
    if (!html || len > INT_MAX)
        return NULL;
    struct md m = {0};
    if (len) {
        htmlDocPtr doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
                                        HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                            HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
        if (doc) {
            walk(&m, (const xmlNode *)doc, 0);
            flush(&m);
            xmlFreeDoc(doc);
        }
    }
    cd_buf_free(&m.para);
    if (m.rc) {
        cd_buf_free(&m.out);
        return NULL;
    }
    while (m.out.len && (m.out.data[m.out.len - 1] == '\n' || m.out.data[m.out.len - 1] == ' '))
        m.out.data[--m.out.len] = '\0';
    return m.out.data ? m.out.data : strdup("");
}
