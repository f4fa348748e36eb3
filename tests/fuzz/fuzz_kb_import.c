/* libFuzzer target for the help-centre importers: kb_import_parse() on the input as a
 * Zendesk, Intercom or Freshdesk export (the first input byte picks one, or sniffing), and
 * kb_html_to_markdown() on the rest as HTML. Invariants (abort() on failure): a parse returns
 * a problem count or CD_EPARSE, never another error; every article handed on has a stable id
 * with its tool's prefix, a one-line title, a non-empty body, a language, and valid UTF-8;
 * the Markdown of any HTML is a string, valid UTF-8 when the HTML was. */
#include "cd.h"
#include "kb_import.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_item(void *ctx, const struct kb_import_item *it, const char *where)
{
    const char *prefix = ctx; /* NULL: sniffed, any tool's */
    if (!it->id || !where)
        abort();
    if (prefix ? strncmp(it->id, prefix, strlen(prefix))
               : strncmp(it->id, "zendesk-", 8) && strncmp(it->id, "intercom-", 9) &&
                     strncmp(it->id, "freshdesk-", 10))
        abort();
    if (!it->title || !*it->title || strchr(it->title, '\n') || !it->body || !*it->body ||
        !it->lang || strlen(it->lang) < 2)
        abort();
    if (!cd_utf8_valid(it->title, strlen(it->title)) || !cd_utf8_valid(it->body, strlen(it->body)))
        abort();
    for (int i = 0; i < it->n_tags; i++)
        if (!it->tags[i] || !*it->tags[i] || strchr(it->tags[i], '\n'))
            abort();
    return 0;
}

static void on_problem(void *ctx, const char *where, const char *message)
{
    if (!where || !message || !*message)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const prefixes[] = {NULL, "zendesk-", "intercom-", "freshdesk-"};
    int format = data[0] % 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int rc = kb_import_parse(text, len, "fuzz.json", format, on_item, on_problem,
                             (void *)prefixes[format]);
    if (rc < 0 && rc != CD_EPARSE)
        abort();
    char *md = kb_html_to_markdown(text, len);
    if (!md)
        abort();
    if (cd_utf8_valid(text, len) && memchr(text, 0, len) == NULL && !cd_utf8_valid(md, strlen(md)))
        abort();
    free(md);
    return 0;
}
