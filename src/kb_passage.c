/* kb_passage: the paragraph of an article that answers a question: Markdown split into
 * blocks, cleaned for display and shortened at a word; chosen by the query weight each
 * paragraph's stored stems share with the question (kb_passage(), kb_best_passage()). */
#include "kb_int.h"

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

/* Appends one byte; the caller has reserved room for it. */
static void buf_putc(struct cd_buf *b, char c)
{
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

/* Appends a Markdown line as plain text: no heading marks, list bullets, emphasis, code
 * ticks, link targets or HTML tags; out has room for n + 1 more bytes and its NUL. Stops once out
 * holds more than limit bytes ending in a word: what follows cannot change the first limit bytes,
 * all a passage shows. */
static int clean_markdown_line(struct cd_buf *out, const char *s, size_t n, size_t limit)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    while (i < n && (s[i] == '#' || s[i] == '>'))
        i++;
    if (i + 1 < n && (s[i] == '-' || s[i] == '*' || s[i] == '+') && s[i + 1] == ' ')
        i += 2;
    else {
        size_t j = i;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j > i && j + 1 < n && (s[j] == '.' || s[j] == ')') && s[j + 1] == ' ')
            i = j + 2;
    }
    if (n - i >= 3 && (!strncmp(s + i, "```", 3) || !strncmp(s + i, "~~~", 3)))
        return 0;
    int need_space = out->len > 0 && out->data[out->len - 1] != ' ';
    for (; i < n; i++) {
        if (out->len > limit && out->data[out->len - 1] != ' ')
            break;
        char c = s[i];
        if (c == '*' || c == '_' || c == '`' || c == '\r')
            continue;
        if (c == '!' && i + 1 < n && s[i + 1] == '[')
            continue;
        if (c == '[' || c == ']')
            continue;
        if (c == '(' && i > 0 && s[i - 1] == ']') { /* link target: skip to ')' */
            while (i < n && s[i] != ')')
                i++;
            continue;
        }
        if (c == '<') { /* HTML tag or autolink: drop up to '>' if it closes on this line */
            const char *gt = memchr(s + i, '>', n - i);
            if (gt) {
                i = (size_t)(gt - s);
                continue;
            }
        }
        if (c == '\t' || c == ' ') {
            if (out->len > 0 && out->data[out->len - 1] != ' ')
                buf_putc(out, ' ');
            continue;
        }
        if (need_space) {
            buf_putc(out, ' ');
            need_space = 0;
        }
        buf_putc(out, c);
    }
    return 0;
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
    /* A line of n bytes cleans to at most n + 1 (a space before it): one allocation. */
    size_t cap = 2 * (best_end - best_start) + 2;
    struct cd_buf text = {malloc(cap), 0, cap};
    if (!text.data)
        return CD_ENOMEM;
    text.data[0] = '\0';
    int rc = 0;
    for (size_t p = best_start; p < best_end && !rc;) {
        const char *nl = memchr(body + p, '\n', best_end - p);
        size_t len = nl ? (size_t)(nl - (body + p)) : best_end - p;
        if (text.len > KB_PASSAGE_CHARS && text.data[text.len - 1] != ' ')
            break; /* enough for shorten() */
        rc = clean_markdown_line(&text, body + p, len, KB_PASSAGE_CHARS);
        p += len + 1;
    }
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
        if (*pstems && question && *question) {
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
