/* markdown: the Markdown an article body is written in (CommonMark, parsed by libcmark),
 * rendered as HTML for the /kb/{id} pages and as plain text for passages. Raw HTML in an
 * article is escaped on the page and left out of passages; a link target that is not http(s),
 * mailto, a site-relative path or a fragment is dropped (its text stays). */
#ifndef CD_MARKDOWN_H
#define CD_MARKDOWN_H

#include "cd.h"

#include <stddef.h>

/* Appends the HTML for Markdown text md (NUL-terminated) to b. Returns 0 or CD_ENOMEM. */
int markdown_to_html(struct cd_buf *b, const char *md);

/* Appends the plain text of the n bytes of Markdown at md to b: the text of its blocks
 * separated by single spaces, without marks, link targets, raw HTML or tag-like text. Stops
 * once b holds more than limit bytes ending in a word (what follows cannot change the first
 * limit bytes). Returns 0 or CD_ENOMEM. */
int markdown_to_text(struct cd_buf *b, const char *md, size_t n, size_t limit);

#endif
