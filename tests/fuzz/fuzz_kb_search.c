/* libFuzzer target for the query builder that turns customer text into an FTS5 query:
 * kb_search() with arbitrary bytes as the question, in a language picked by the first
 * byte, over an in-memory KB of the test fixture articles, and kb_learn() of the question
 * now and then. Customer text must never be query syntax. Invariants (abort() on failure):
 * search returns 0 for any valid UTF-8 question (never an SQL or FTS5 syntax error) and
 * CD_EINVAL or 0 for invalid UTF-8; at most max hits, each with an id, a title and a
 * passage, scores finite and best first; and a second connection to the same database file
 * that ranks stage one through FTS5 instead of the in-memory postings
 * (CAREDESK_KB_TUNE=mem_index=0) returns the same hits with the same scores, however the
 * learned phrasings have changed the index. */
#include "cd.h"
#include "kb.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kb *kb, *fts;
static long n_inputs;
static char path[64];

static void remove_db(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        unlink(name);
    }
}

static void init(void)
{
    char *err = NULL;
    kb_close(kb);
    kb_close(fts);
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/caredesk-fuzz-kb-%d.db", (int)getpid());
        atexit(remove_db);
    }
    remove_db();
    kb = kb_open(path, &err);
    if (!kb)
        abort();
    /* The fixture KB of the integration tests: small, fixed, English and Spanish. */
    const char *dir = getenv("CD_FUZZ_KB");
    struct kb_load_report report = {0, 0, NULL, NULL, 0, NULL};
    if (kb_load_path(kb, dir ? dir : "tests/integration/fixtures/kb", &report) != 0 ||
        kb_count(kb) < 1) {
        fprintf(stderr, "fuzz_kb_search: run from the repository root (or set CD_FUZZ_KB)\n");
        abort();
    }
    setenv("CAREDESK_KB_TUNE", "mem_index=0", 1);
    fts = kb_open(path, &err);
    unsetenv("CAREDESK_KB_TUNE");
    if (!fts)
        abort();
}

/* Says what the two connections found, then aborts. */
static void differ(const char *q, const char *lang, const struct kb_hit *hits, int n,
                   const struct kb_hit *other, int n_other)
{
    fprintf(stderr, "fuzz_kb_search: the postings and FTS5 differ on '%s' (lang %s)\n", q,
            lang ? lang : "NULL");
    for (int i = 0; i < n || i < n_other; i++)
        fprintf(stderr, "  %d: %s %.17g | %s %.17g\n", i + 1, i < n ? hits[i].id : "-",
                i < n ? hits[i].score : 0.0, i < n_other ? other[i].id : "-",
                i < n_other ? other[i].score : 0.0);
    for (int mode = 0; mode < 2; mode++) {
        char *err = NULL;
        if (mode)
            setenv("CAREDESK_KB_TUNE", "mem_index=0", 1);
        struct kb *fresh = kb_open(path, &err);
        unsetenv("CAREDESK_KB_TUNE");
        struct kb_hit h[8];
        int m = 0;
        if (fresh && !kb_search(fresh, q, lang, h, 8, &m))
            for (int i = 0; i < m; i++)
                fprintf(stderr, "  fresh %s: %d: %s %.17g\n", mode ? "fts5" : "postings", i + 1,
                        h[i].id, h[i].score);
        kb_close(fresh);
    }
    abort();
}

/* The FTS5-ranked connection must find what the postings found. */
static void compare(const char *q, const char *lang, const struct kb_hit *hits, int n)
{
    struct kb_hit other[8];
    int n_other = -1;
    if (kb_search(fts, q, lang, other, 8, &n_other) != 0)
        abort();
    if (n_other != n)
        differ(q, lang, hits, n, other, n_other);
    for (int i = 0; i < n; i++) {
        int is_tied = (i > 0 && hits[i - 1].score == hits[i].score) ||
                      (i + 1 < n && hits[i + 1].score == hits[i].score);
        if (other[i].score != hits[i].score || (strcmp(other[i].id, hits[i].id) && !is_tied))
            differ(q, lang, hits, n, other, n_other);
    }
    kb_hits_clear(other, n_other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Learned phrasings pile up: start again from the articles now and then. */
    if (!kb || ++n_inputs % 5000 == 0)
        init();
    if (size == 0)
        return 0;
    static const char *const langs[] = {NULL, "en", "es", "de", "fr", "xx", ""};
    const char *lang = langs[data[0] % (sizeof langs / sizeof langs[0])];
    char *q = malloc(size);
    if (!q)
        return 0;
    memcpy(q, data + 1, size - 1);
    q[size - 1] = '\0';
    size_t len = strlen(q);
    struct kb_hit hits[8];
    int n = -1;
    int rc = kb_search(kb, q, lang, hits, 8, &n);
    if (rc != 0 && !(rc == CD_EINVAL && !cd_utf8_valid(q, len)))
        abort();
    if (rc == 0) {
        if (n < 0 || n > 8)
            abort();
        for (int i = 0; i < n; i++) {
            if (!hits[i].id[0] || !hits[i].title || !hits[i].passage || !isfinite(hits[i].score))
                abort();
            if (i > 0 && hits[i].score > hits[i - 1].score)
                abort();
        }
        compare(q, lang, hits, n);
        /* Learning the question for the best hit now and then (it changes the ranking of
         * later inputs, as "yes, this helped" does in service). */
        if (n > 0 && data[0] % 16 == 15 && cd_utf8_valid(q, len))
            kb_learn(kb, q, hits[0].id);
        kb_hits_clear(hits, n);
    }
    free(q);
    return 0;
}
