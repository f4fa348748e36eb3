/* libFuzzer target for article Markdown (markdown.c, libcmark): what authors, the REST API and
 * the help-centre import put in an article body, rendered for the /kb/{id} page and cleaned
 * for a passage. Invariants (abort() on failure): both succeed; every tag of the page is one
 * cmark writes itself, and no target is javascript: or data:; the passage holds no tag-like
 * text and is
 * valid UTF-8 when the input is; the passage stops near the limit. */
#include "cd.h"
#include "markdown.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 360

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *md = malloc(size + 1);
    if (!md)
        return 0;
    memcpy(md, data, size);
    md[size] = '\0';
    size_t n = strlen(md); /* article bodies are C strings */
    struct cd_buf html = {0}, text = {0};
    if (markdown_to_html(&html, md) || !html.data)
        abort();
    /* Every tag is one of cmark's own; no target is javascript: or data:. */
    static const char *const tags[] = {"p",   "h2",         "h3", "h4",  "h5", "h6",     "ul",
                                       "ol",  "li",         "a",  "img", "em", "strong", "code",
                                       "pre", "blockquote", "hr", "br",  NULL};
    for (const char *p = html.data; *p; p++) {
        if (*p != '<')
            continue;
        const char *name = p + 1 + (p[1] == '/');
        size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789");
        int known = 0;
        for (int i = 0; tags[i] && !known; i++)
            known = strlen(tags[i]) == len && !strncmp(tags[i], name, len);
        if (!known || (name[len] != '>' && name[len] != ' ' && name[len] != '/'))
            abort();
    }
    static const char *const bad[] = {
        "href=\"javascript:", "src=\"javascript:", "href=\"data:", "src=\"data:", NULL};
    for (int i = 0; bad[i]; i++)
        if (strcasestr(html.data, bad[i]))
            abort();
    if (markdown_to_text(&text, md, n, LIMIT) || !text.data)
        abort();
    for (const char *p = text.data; *p; p++)
        if (*p == '<' &&
            (isalpha((unsigned char)p[1]) || p[1] == '/' || p[1] == '!' || p[1] == '?') &&
            strchr(p, '>'))
            abort();
    if (cd_utf8_valid(md, n) && !cd_utf8_valid(text.data, text.len))
        abort();
    if (text.len > LIMIT + 4 * n + 8)
        abort();
    cd_buf_free(&html);
    cd_buf_free(&text);
    free(md);
    return 0;
}
