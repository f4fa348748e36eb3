/* kb_passage: the paragraph of an article that answers a question: Markdown split into
 * blocks, cleaned for display by libcmark (markdown_to_text()) and shortened at a word; chosen by
 * the query weight each paragraph's stored stems share with the question (kb_passage(),
 * kb_best_passage()). */
#include "kb_int.h"
#include "markdown.h"

#include <stdlib.h>
#include <string.h>

/* ---- passages: Markdown paragraphs, cleaned for display, stemmed for matching ----------- */

int kb_is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Cuts s to at most max bytes at a word boundary (and a UTF-8 boundary), adding "...". */
static void shorten(struct cd_buf *b, size_t max)
{
    while (b->len > 0 && b->data[b->len - 1] == ' ')
        b->data[--b->len] = '\0';
    if (b->len <= max)
        return;
    size_t cut = max;
    while (cut > max / 2 && b->data[cut] != ' ')
        cut--;
    if (b->data[cut] != ' ') {
        cut = max;
        while (cut > 0 && ((unsigned char)b->data[cut] & 0xC0) == 0x80)
            cut--;
    }
    while (cut > 0 && (b->data[cut - 1] == ' ' || b->data[cut - 1] == ',' ||
                       b->data[cut - 1] == ';' || b->data[cut - 1] == ':'))
        cut--;
    b->len = cut;
    b->data[cut] = '\0';
    cd_buf_puts(b, "...");
}

/* Finds the next block at or after *pos; returns 0 at the end of the body. Fenced code
 * blocks stay inside one block. */
int kb_next_block(const char *body, size_t n, size_t *pos, struct kb_block *out)
{
    size_t p = *pos;
    int in_fence = 0, started = 0;
    out->is_heading = 0;
    while (p < n) {
        const char *nl = memchr(body + p, '\n', n - p);
        size_t len = nl ? (size_t)(nl - (body + p)) : n - p;
        size_t next = nl ? p + len + 1 : n;
        size_t lead = 0;
        while (lead < len && body[p + lead] == ' ')
            lead++;
        int fence = len - lead >= 3 &&
                    (!strncmp(body + p + lead, "```", 3) || !strncmp(body + p + lead, "~~~", 3));
        if (fence)
            in_fence = !in_fence;
        if (!in_fence && !fence && kb_is_blank(body + p, len)) {
            p = next;
            if (started)
                break;
            continue;
        }
        if (!in_fence && lead < len && body[p + lead] == '#') {
            if (started)
                break; /* the heading starts the next block */
            out->start = p;
            out->end = p + len;
            out->is_heading = 1;
            *pos = next;
            return 1;
        }
        if (!started) {
            out->start = p;
            started = 1;
        }
        out->end = p + len;
        p = next;
    }
    *pos = p;
    return started;
}

/* Picks the paragraph of an article that shares the most query weight (the first one on a
 * tie, or when nothing matches), and returns it cleaned of Markdown and shortened. */
static int passage_text(const char *body, size_t best_start, size_t best_end, char **out);

int kb_best_passage(const struct kb_query *q, const char *body, const char *pstems, char **out)
{
    *out = NULL;
    size_t n_body = strlen(body);
    double best = -1;
    size_t best_start = 0, best_end = 0;
    for (const char *line = pstems; *line;) {
        char *rest = NULL;
        unsigned long long start = strtoull(line, &rest, 10);
        unsigned long long end = strtoull(rest, &rest, 10);
        const char *nl = strchr(rest, '\n');
        const char *stop = nl ? nl : rest + strlen(rest);
        double s = 0;
        for (const char *p = rest; p < stop;) {
            while (p < stop && *p == ' ')
                p++;
            const char *w = p;
            while (p < stop && *p != ' ')
                p++;
            int t = p > w ? kb_find_stem(q, w, (size_t)(p - w)) : -1;
            if (t >= 0)
                s += q->terms[t].idf;
        }
        if (s > best && start < end && end <= n_body) {
            best = s;
            best_start = (size_t)start;
            best_end = (size_t)end;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return passage_text(body, best_start, best_end, out);
}

/* The bytes [start, end) of body as a passage: cleaned of Markdown and shortened to
 * KB_PASSAGE_CHARS. Returns 0 with a malloc'd string in *out, or CD_ENOMEM. */
static int passage_text(const char *body, size_t best_start, size_t best_end, char **out)
{
    struct cd_buf text = {0};
    int rc = cd_buf_append(&text, "", 0);
    if (!rc && best_end > best_start)
        rc = markdown_to_text(&text, body + best_start, best_end - best_start, KB_PASSAGE_CHARS);
    if (rc) {
        cd_buf_free(&text);
        return rc;
    }
    shorten(&text, KB_PASSAGE_CHARS);
    *out = text.data;
    return 0;
}

int kb_passage(struct kb *kb, const char *id, const char *question, char **out)
{
    /* No analysis: the article's language's tokenizer splits the text (text.h). */
    struct text_analysis text = {.text = question, .n = question ? strlen(question) : 0};
    return kb_passage_analysed(kb, id, question ? &text : NULL, out);
}

int kb_passage_analysed(struct kb *kb, const char *id, const struct text_analysis *question,
                        char **out)
{
    if (out)
        *out = NULL;
    if (!kb || !id || !out)
        return CD_EINVAL;
    struct kb_query *q = calloc(1, sizeof *q);
    if (!q)
        return CD_ENOMEM;
    q->tune = &kb->tune;
    int rc = CD_ENOTFOUND;
    sqlite3_stmt *st = kb_stmt(kb, ST_PASSAGE);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *body = sql_text(st, 1), *pstems = sql_text(st, 2);
        rc = 0;
        if (*pstems && question && question->n) {
            struct kb_lang_index *li = kb_lang_index_get(kb, sql_text(st, 0), 0, &rc);
            if (!li)
                rc = 0;
            if (li && (rc = kb_query_build(kb, li, question, q)) == 0)
                kb_query_weigh(q);
        }
        if (!rc && *pstems) {
            rc = kb_best_passage(q, body, pstems, out);
        } else if (!rc) {
            /* Not indexed (a draft): the first paragraph. */
            size_t n = strlen(body), pos = 0;
            struct kb_block blk = {0, 0, 0};
            int found = 0;
            while (!found && kb_next_block(body, n, &pos, &blk))
                found = !blk.is_heading;
            rc = passage_text(body, found ? blk.start : 0, found ? blk.end : 0, out);
        }
    }
    sqlite3_reset(st);
    free(q);
    return rc;
}
