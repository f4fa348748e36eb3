/* markdown: the article pages' Markdown to HTML, behind markdown_to_html() alone so that the
 * renderer can be swapped (for libcmark, say) without touching its callers. Everything from the
 * article is escaped; only safe link targets become links. */
#include "markdown.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int markdown_escape_html(struct cd_buf *b, const char *s, size_t n)
{
    int rc = 0;
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            break;
        }
        if (e) {
            rc = cd_buf_append(b, s + run, i - run);
            if (!rc)
                rc = cd_buf_puts(b, e);
            run = i + 1;
        }
    }
    if (!rc)
        rc = cd_buf_append(b, s + run, n - run);
    return rc;
}

/* Returns 1 for link targets that are safe in an href: http(s), mailto,
 * site-relative paths and fragments. */
static int safe_href(const char *s, size_t n)
{
    return (n >= 7 && !strncasecmp(s, "http://", 7)) ||
           (n >= 8 && !strncasecmp(s, "https://", 8)) ||
           (n >= 7 && !strncasecmp(s, "mailto:", 7)) || (n >= 1 && (s[0] == '/' || s[0] == '#'));
}

/* Inline Markdown: `code`, **bold**, *em*, [text](url); everything escaped. */
static int render_inline(struct cd_buf *b, const char *s, size_t n)
{
    int rc = 0;
    size_t i = 0;
    while (i < n && !rc) {
        if (s[i] == '`') {
            const char *e = memchr(s + i + 1, '`', n - i - 1);
            if (e) {
                size_t len = (size_t)(e - (s + i + 1));
                rc = cd_buf_puts(b, "<code>");
                if (!rc)
                    rc = markdown_escape_html(b, s + i + 1, len);
                if (!rc)
                    rc = cd_buf_puts(b, "</code>");
                i += len + 2;
                continue;
            }
        }
        if (s[i] == '*' && i + 1 < n && s[i + 1] == '*') {
            const char *e = i + 2 < n ? memmem(s + i + 2, n - i - 2, "**", 2) : NULL;
            if (e && e > s + i + 2) {
                size_t len = (size_t)(e - (s + i + 2));
                rc = cd_buf_puts(b, "<strong>");
                if (!rc)
                    rc = render_inline(b, s + i + 2, len);
                if (!rc)
                    rc = cd_buf_puts(b, "</strong>");
                i += len + 4;
                continue;
            }
        }
        if (s[i] == '[') {
            const char *close = memchr(s + i, ']', n - i);
            if (close && close + 1 < s + n && close[1] == '(') {
                const char *paren = memchr(close, ')', (size_t)(s + n - close));
                size_t text_len = (size_t)(close - (s + i + 1));
                const char *href = close + 2;
                size_t href_len = paren ? (size_t)(paren - href) : 0;
                if (paren && safe_href(href, href_len)) {
                    rc = cd_buf_puts(b, "<a href=\"");
                    if (!rc)
                        rc = markdown_escape_html(b, href, href_len);
                    if (!rc)
                        rc = cd_buf_puts(b, "\">");
                    if (!rc)
                        rc = markdown_escape_html(b, s + i + 1, text_len);
                    if (!rc)
                        rc = cd_buf_puts(b, "</a>");
                    i = (size_t)(paren - s) + 1;
                    continue;
                }
            }
        }
        size_t j = i + 1;
        while (j < n && s[j] != '`' && s[j] != '*' && s[j] != '[')
            j++;
        rc = markdown_escape_html(b, s + i, j - i);
        i = j;
    }
    return rc;
}

enum block { NONE, PARA, UL, OL };
static const char *const closers[] = {"", "</p>\n", "</ul>\n", "</ol>\n"};

/* Closes the open block and opens kind, unless kind is the open one. */
static int switch_block(struct cd_buf *b, enum block *open, enum block kind)
{
    static const char *const openers[] = {"", "<p>", "<ul>\n", "<ol>\n"};
    if (*open == kind)
        return 0;
    int rc = cd_buf_puts(b, closers[*open]);
    if (!rc)
        rc = cd_buf_puts(b, openers[kind]);
    *open = kind;
    return rc;
}

/* One list item of n bytes of inline Markdown. */
static int list_item(struct cd_buf *b, const char *text, size_t n)
{
    int rc = cd_buf_puts(b, "<li>");
    if (!rc)
        rc = render_inline(b, text, n);
    if (!rc)
        rc = cd_buf_puts(b, "</li>\n");
    return rc;
}

/* Block Markdown: headings, bullet and numbered lists, paragraphs. */
int markdown_to_html(struct cd_buf *b, const char *md)
{
    int rc = 0;
    enum block open = NONE;
    const char *line = md;
    while (*line && !rc) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        const char *next = end ? end + 1 : line + n;
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
            n--;
        size_t indent = 0;
        while (indent < n && line[indent] == ' ')
            indent++;
        const char *t = line + indent;
        size_t tn = n - indent;
        int level = 0;
        while (level < (int)tn && t[level] == '#')
            level++;
        size_t digits = 0;
        while (digits < tn && isdigit((unsigned char)t[digits]))
            digits++;
        if (!tn) {
            rc = switch_block(b, &open, NONE);
        } else if (level >= 1 && level <= 6 && (int)tn > level && t[level] == ' ') {
            rc = switch_block(b, &open, NONE);
            /* The page title is the h1; headings in the body start at h2. */
            int h = level + 1 > 6 ? 6 : level + 1;
            if (!rc)
                rc = cd_buf_printf(b, "<h%d>", h);
            if (!rc)
                rc = render_inline(b, t + level + 1, tn - (size_t)level - 1);
            if (!rc)
                rc = cd_buf_printf(b, "</h%d>\n", h);
        } else if (tn >= 2 && (t[0] == '-' || t[0] == '*') && t[1] == ' ') {
            rc = switch_block(b, &open, UL);
            if (!rc)
                rc = list_item(b, t + 2, tn - 2);
        } else if (digits && digits + 1 < tn && t[digits] == '.' && t[digits + 1] == ' ') {
            rc = switch_block(b, &open, OL);
            if (!rc)
                rc = list_item(b, t + digits + 2, tn - digits - 2);
        } else {
            rc = open == PARA ? cd_buf_puts(b, "\n") : switch_block(b, &open, PARA);
            if (!rc)
                rc = render_inline(b, t, tn);
        }
        line = next;
    }
    if (!rc)
        rc = cd_buf_puts(b, closers[open]);
    return rc;
}
