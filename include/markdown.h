/* markdown: the Markdown an article body is written in, rendered as HTML for the /kb/{id}
 * pages. It owns the subset caredesk renders (headings, bullet and numbered lists,
 * paragraphs, `code`, **bold**, *em*, [text](url)) and the HTML escaping: no byte of the
 * article reaches the page unescaped, and a link target that is not http(s), mailto, a
 * site-relative path or a fragment is dropped. One entry point, so a full CommonMark
 * renderer can replace this one behind it. */
#ifndef CD_MARKDOWN_H
#define CD_MARKDOWN_H

#include "cd.h"

#include <stddef.h>

/* Appends the HTML for Markdown text md (NUL-terminated) to b. Returns 0 or CD_ENOMEM. */
int markdown_to_html(struct cd_buf *b, const char *md);

/* Appends the n bytes at s to b with & < > " ' escaped as HTML entities. Returns 0 or
 * CD_ENOMEM. */
int markdown_escape_html(struct cd_buf *b, const char *s, size_t n);

#endif
