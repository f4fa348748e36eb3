/* markdown: article Markdown through libcmark (CommonMark), for the /kb/{id} pages
 * (markdown_to_html()) and for passages (markdown_to_text()): one parser for both, so what a
 * page shows and what a passage quotes read the same text.
 *
 * DESIGN: the document is parsed once, then its tree is adjusted before it is rendered. Raw
 * HTML in an article becomes text (shown escaped on the page, dropped from passages); a link or
 * image whose target is not http(s), mailto, a site-relative path or a fragment loses its
 * target and keeps its text; headings move one level down under the page's own <h1>. cmark's
 * safe mode stays on behind that. Must never happen: a byte of an article reaching the page
 * as markup it did not mean, or a tag in a passage. */
#include "markdown.h"

#include <cmark.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Returns 1 for link targets that are safe in an href: http(s), mailto, site-relative paths
 * and fragments. */
static int safe_href(const char *s)
{
    return s && (!strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8) ||
                 !strncasecmp(s, "mailto:", 7) || s[0] == '/' || s[0] == '#');
}

/* Calls visit(node, ctx) for root and every node under it, in document order, until one
 * returns non-zero. Returns that, or 0, or CD_ENOMEM. */
static int visit_nodes(cmark_node *root, int (*visit)(cmark_node *node, void *ctx), void *ctx)
{
    cmark_iter *it = cmark_iter_new(root);
    if (!it)
        return CD_ENOMEM;
    int rc = 0;
    cmark_event_type ev;
    while (!rc && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE)
        if (ev == CMARK_EVENT_ENTER)
            rc = visit(cmark_iter_get_node(it), ctx);
    cmark_iter_free(it);
    return rc;
}

/* visit_nodes() step of subtree_text(): text and code as they are, line breaks as spaces. */
static int put_node_text(cmark_node *n, void *ctx)
{
    struct cd_buf *b = ctx;
    cmark_node_type t = cmark_node_get_type(n);
    const char *lit = cmark_node_get_literal(n);
    if ((t == CMARK_NODE_TEXT || t == CMARK_NODE_CODE) && lit)
        return cd_buf_puts(b, lit);
    if (t == CMARK_NODE_SOFTBREAK || t == CMARK_NODE_LINEBREAK)
        return cd_buf_puts(b, " ");
    return 0;
}

/* Appends the text of node's subtree (text, code, line breaks as spaces) to b. */
static int subtree_text(cmark_node *node, struct cd_buf *b)
{
    return visit_nodes(node, put_node_text, b);
}

/* A text node holding s. */
static cmark_node *text_node(const char *s)
{
    cmark_node *t = cmark_node_new(CMARK_NODE_TEXT);
    if (t && !cmark_node_set_literal(t, s)) {
        cmark_node_free(t);
        return NULL;
    }
    return t;
}

/* Makes node (raw HTML, or a link or image with an unsafe target) harmless in place. Returns
 * 0 or CD_ENOMEM. */
static int defuse(cmark_node *node)
{
    cmark_node_type t = cmark_node_get_type(node);
    cmark_node *repl = NULL;
    if (t == CMARK_NODE_HTML_INLINE) {
        repl = text_node(cmark_node_get_literal(node) ? cmark_node_get_literal(node) : "");
    } else if (t == CMARK_NODE_HTML_BLOCK) {
        const char *lit = cmark_node_get_literal(node);
        size_t n = lit ? strlen(lit) : 0;
        while (n && (lit[n - 1] == '\n' || lit[n - 1] == '\r'))
            n--;
        char *s = malloc(n + 1);
        cmark_node *text = NULL;
        if (s) {
            memcpy(s, lit ? lit : "", n);
            s[n] = '\0';
            text = text_node(s);
            free(s);
        }
        repl = text ? cmark_node_new(CMARK_NODE_PARAGRAPH) : NULL;
        if (repl && !cmark_node_append_child(repl, text)) {
            cmark_node_free(repl);
            repl = NULL;
        }
        if (!repl)
            cmark_node_free(text);
    } else if (t == CMARK_NODE_LINK) {
        /* The text stays, without the link. */
        cmark_node *child;
        while ((child = cmark_node_first_child(node)) != NULL)
            if (!cmark_node_insert_before(node, child))
                return CD_ENOMEM;
        cmark_node_free(node);
        return 0;
    } else if (t == CMARK_NODE_IMAGE) {
        struct cd_buf alt = {0};
        int rc = subtree_text(node, &alt);
        repl = rc ? NULL : text_node(alt.data ? alt.data : "");
        cd_buf_free(&alt);
    } else
        return 0;
    if (!repl || !cmark_node_replace(node, repl)) {
        cmark_node_free(repl);
        return CD_ENOMEM;
    }
    cmark_node_free(node);
    return 0;
}

/* The nodes parse_for_page() defuses once the walk is over, in document order. */
struct unsafe_nodes {
    cmark_node **nodes;
    size_t n, cap;
};

/* visit_nodes() step of parse_for_page(): moves a heading one level down; notes raw HTML and
 * links or images with an unsafe target. */
static int note_node(cmark_node *node, void *ctx)
{
    struct unsafe_nodes *u = ctx;
    cmark_node_type t = cmark_node_get_type(node);
    if (t == CMARK_NODE_HEADING) {
        int level = cmark_node_get_heading_level(node);
        cmark_node_set_heading_level(node, level < 6 ? level + 1 : 6);
    }
    int is_unsafe =
        t == CMARK_NODE_HTML_INLINE || t == CMARK_NODE_HTML_BLOCK ||
        ((t == CMARK_NODE_LINK || t == CMARK_NODE_IMAGE) && !safe_href(cmark_node_get_url(node)));
    if (!is_unsafe)
        return 0;
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        if (cd_resize(&u->nodes, cap, sizeof *u->nodes))
            return CD_ENOMEM;
        u->cap = cap;
    }
    u->nodes[u->n++] = node;
    return 0;
}

/* Parses md (n bytes) for a page: defused (see the DESIGN note), headings one level down.
 * Returns the document, or NULL when out of memory. */
static cmark_node *parse_for_page(const char *md, size_t n)
{
    cmark_node *doc = cmark_parse_document(md, n, CMARK_OPT_DEFAULT);
    if (!doc)
        return NULL;
    struct unsafe_nodes u = {0};
    int rc = visit_nodes(doc, note_node, &u);
    /* Innermost first: a node is changed before the node around it is replaced. */
    while (!rc && u.n > 0)
        rc = defuse(u.nodes[--u.n]);
    free(u.nodes);
    if (rc) {
        cmark_node_free(doc);
        return NULL;
    }
    return doc;
}

int markdown_to_html(struct cd_buf *b, const char *md)
{
    cmark_node *doc = parse_for_page(md ? md : "", md ? strlen(md) : 0);
    char *html = doc ? cmark_render_html(doc, CMARK_OPT_DEFAULT) : NULL;
    cmark_node_free(doc);
    if (!html)
        return CD_ENOMEM;
    int rc = cd_buf_puts(b, html);
    cmark_get_default_mem_allocator()->free(html);
    return rc;
}

/* 1 if c, after a '<', starts something tag-like: a letter, '/', '!' or '?'. */
static int starts_tag(char c)
{
    return isalpha((unsigned char)c) || c == '/' || c == '!' || c == '?';
}

/* Returns the length of the tag-like text at s, n bytes ("<b>", "</p>", "<!-- x -->": '<', a
 * letter, '/', '!' or '?', then up to the next '>' within 256 bytes), or 0. */
static size_t tag_len(const char *s, size_t n)
{
    if (n < 3 || s[0] != '<' || !starts_tag(s[1]))
        return 0;
    const char *gt = memchr(s + 1, '>', n - 1 < 256 ? n - 1 : 256);
    return gt ? (size_t)(gt - s) + 1 : 0;
}

/* Leaves tag-like text out of b from byte from on, in place: a passage never holds a tag, even
 * one an article spelled out as text or one that only forms across the text of two nodes. A
 * tag ('<', a letter, '/', '!' or '?', up to '>') goes whole; a '<' that would start one goes
 * alone; the spaces either side of what went become one. */
static void strip_tags(struct cd_buf *b, size_t from)
{
    char *s = b->data;
    size_t n = b->len, k = from;
    for (size_t i = from; i < n;) {
        if (s[i] == '<' && i + 1 < n && starts_tag(s[i + 1])) {
            size_t tag = tag_len(s + i, n - i);
            i += tag ? tag : 1;
            continue;
        }
        if (s[i] == ' ' && k > 0 && s[k - 1] == ' ') {
            i++;
            continue;
        }
        while (k > from && s[k - 1] == '<' && starts_tag(s[i]))
            k--; /* a '<' before it would start a tag now */
        s[k++] = s[i++];
    }
    b->len = k;
    if (s)
        s[k] = '\0';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Appends the n bytes at s to b with whitespace runs as one space (none at the start of b).
 * Stops once b would hold more than limit bytes ending in a character. */
static int put_collapsed(struct cd_buf *b, const char *s, size_t n, size_t limit)
{
    char *out = malloc(n + 1);
    if (!out)
        return CD_ENOMEM;
    size_t k = 0;
    int is_space_pending = 0;
    for (size_t i = 0; i < n;) {
        if (k && b->len + k > limit && out[k - 1] != ' ' && ((unsigned char)s[i] & 0xC0) != 0x80)
            break; /* past the limit, at the end of a character */
        if (is_space(s[i])) {
            is_space_pending = 1;
            i++;
            continue;
        }
        if (is_space_pending && (k ? out[k - 1] != ' ' : b->len && b->data[b->len - 1] != ' '))
            out[k++] = ' ';
        is_space_pending = 0;
        out[k++] = s[i++];
    }
    if (is_space_pending && (k ? out[k - 1] != ' ' : b->len && b->data[b->len - 1] != ' '))
        out[k++] = ' ';
    int rc = cd_buf_append(b, out, k);
    free(out);
    return rc;
}

/* Returns 1 when the n bytes at s hold no Markdown at all (no mark, no block syntax at a line
 * start, no entity or escape): their text is the bytes themselves. */
static int is_plain(const char *s, size_t n)
{
    static unsigned char special[256];
    if (!special['*'])
        for (const char *c = "*_`[]<>!&\\~|"; *c; c++)
            special[(unsigned char)*c] = 1;
    int is_line_start = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_line_start) {
            size_t sp = 0;
            while (i + sp < n && s[i + sp] == ' ')
                sp++;
            if (sp >= 4)
                return 0; /* indented code */
            i += sp;
            if (i >= n)
                break;
            c = (unsigned char)s[i];
            if (c == '-' || c == '+' || c == '*' || c == '>' || c == '#' || c == '=' ||
                (isdigit(c) && i + 1 < n &&
                 (isdigit((unsigned char)s[i + 1]) || s[i + 1] == '.' || s[i + 1] == ')')))
                return 0;
            is_line_start = 0;
        }
        if (c == '\n')
            is_line_start = 1;
        else if (special[c])
            return 0;
    }
    return 1;
}

int markdown_to_text(struct cd_buf *b, const char *md, size_t n, size_t limit)
{
    /* Only the start of a long block can be shown: parse up to a line end past twice the limit
     * (Markdown's inline syntax does not cross lines often enough to matter there). */
    if (limit < n / 2) {
        const char *nl = memchr(md + 2 * limit, '\n', n - 2 * limit);
        if (nl)
            n = (size_t)(nl - md);
    }
    size_t from = b->len;
    if (is_plain(md, n)) {
        int rc = put_collapsed(b, md, n, limit);
        if (!rc)
            strip_tags(b, from);
        return rc;
    }
    /* Raw HTML nodes and link targets are not text: the walk below leaves them out. */
    cmark_node *doc = cmark_parse_document(md, n, CMARK_OPT_DEFAULT);
    cmark_iter *it = doc ? cmark_iter_new(doc) : NULL;
    if (!it) {
        cmark_node_free(doc);
        return CD_ENOMEM;
    }
    int rc = 0;
    cmark_event_type ev;
    while (!rc && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        if (b->len > limit && b->data[b->len - 1] != ' ')
            break; /* what follows cannot change the first limit bytes */
        cmark_node *node = cmark_iter_get_node(it);
        cmark_node_type t = cmark_node_get_type(node);
        const char *lit = cmark_node_get_literal(node);
        if (ev == CMARK_EVENT_ENTER &&
            (t == CMARK_NODE_TEXT || t == CMARK_NODE_CODE || t == CMARK_NODE_CODE_BLOCK) && lit)
            rc = put_collapsed(b, lit, strlen(lit), limit);
        else if ((ev == CMARK_EVENT_ENTER &&
                  (t == CMARK_NODE_SOFTBREAK || t == CMARK_NODE_LINEBREAK)) ||
                 (ev == CMARK_EVENT_EXIT && t >= CMARK_NODE_FIRST_BLOCK &&
                  t <= CMARK_NODE_LAST_BLOCK))
            rc = put_collapsed(b, " ", 1, limit);
    }
    cmark_iter_free(it);
    cmark_node_free(doc);
    if (!rc)
        strip_tags(b, from);
    return rc;
}
