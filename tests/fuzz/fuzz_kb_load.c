/* libFuzzer target for the KB importers: the front-matter/Markdown article parser and the
 * JSON Lines importer, through kb_load_path() on a temporary file (the first input byte
 * picks the format: even = Markdown .md, odd = JSON Lines .jsonl), into an in-memory KB
 * that is emptied between inputs. Then every loaded article is fetched and searched for
 * by its own title, which indexes and splits into passages whatever body the parser kept.
 * Invariants (abort() on failure): loading never fails on a readable file (bad articles
 * are reported and skipped); the report's counts add up; a loaded article has an id, a
 * title and a body, valid UTF-8; search never fails on a loaded title. */
#include "kb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IDS 64

struct loaded {
    int n_errors;
};

static void on_error(void *ctx, const char *file, int line, const char *message)
{
    struct loaded *l = ctx;
    if (!file || !message || line < 0)
        abort();
    l->n_errors++;
}

static struct kb *kb;
static char path_md[64], path_jsonl[64];

/* The KB keeps what earlier inputs loaded (as a server keeps articles across imports) and is
 * recreated once it holds more than MAX_IDS articles. */
static void reset_kb(void)
{
    kb_close(kb);
    char *err = NULL;
    kb = kb_open(":memory:", &err);
    if (!kb)
        abort();
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!kb) {
        snprintf(path_md, sizeof path_md, "/tmp/cd-fuzz-kb-%d.md", (int)getpid());
        snprintf(path_jsonl, sizeof path_jsonl, "/tmp/cd-fuzz-kb-%d.jsonl", (int)getpid());
        reset_kb();
    }
    if (size == 0)
        return 0;
    const char *path = data[0] % 2 ? path_jsonl : path_md;
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1)
        abort();
    fclose(f);

    struct loaded l = {0};
    struct kb_load_report report = {0, 0, on_error, &l, 0, on_error};
    int before = kb_count(kb);
    if (kb_load_path(kb, path, &report) != 0)
        abort();
    if (report.n_loaded < 0 || report.n_skipped < 0 ||
        report.n_skipped + report.n_warnings != l.n_errors)
        abort();
    int after = kb_count(kb);
    if (after < 0 || before < 0)
        abort();

    /* Search, then fetch each hit and search again by its title. */
    struct kb_hit hits[5];
    int n = 0;
    static const char *const questions[] = {"how do I return", "¿dónde está mi pedido?", "a"};
    for (size_t q = 0; q < sizeof questions / sizeof questions[0]; q++) {
        if (kb_search(kb, questions[q], q == 1 ? "es" : NULL, hits, 5, &n) != 0)
            abort();
        for (int i = 0; i < n && i < 2; i++) {
            struct kb_article a;
            if (!hits[i].title || !hits[i].passage)
                abort();
            if (kb_get(kb, hits[i].id, &a) != 0)
                abort();
            if (!a.id || !a.title || !a.body)
                abort();
            int m = 0;
            struct kb_hit again[3];
            if (kb_search(kb, a.title, a.lang, again, 3, &m) != 0)
                abort();
            kb_hits_clear(again, m);
            kb_article_clear(&a);
        }
        kb_hits_clear(hits, n);
    }
    if (after > MAX_IDS)
        reset_kb();
    return 0;
}
