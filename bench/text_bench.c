/* text_bench: measures tokenizer throughput on the titles and bodies of a JSON Lines KB
 * ({"title", "body"} per line) and per-message latency on a JSON Lines query file
 * ({"text"} per line).
 *
 *   text_bench [--lang CODE] [--seconds S] ARTICLES.jsonl [QUERIES.jsonl] */
#include "cd.h"
#include "text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct corpus {
    char **texts;
    size_t *lens;
    size_t n;
    size_t n_bytes;
};

static int count_token(void *ctx, const char *token, int n_token, int start, int end)
{
    (void)token;
    (void)n_token;
    (void)start;
    (void)end;
    (*(long *)ctx)++;
    return 0;
}

/* Loads every line's fields (joined by a newline) from a JSON Lines file; returns 0 or -1. */
static int corpus_load(const char *path, const char *field1, const char *field2, struct corpus *c)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;

    if (!f) {
        fprintf(stderr, "text_bench: cannot open %s\n", path);
        return -1;
    }
    memset(c, 0, sizeof *c);
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *row = json_loadb(line, (size_t)got, 0, &jerr);
        if (!row)
            continue;
        struct cd_buf b = {0};
        const char *a = json_string_value(json_object_get(row, field1));
        const char *z = field2 ? json_string_value(json_object_get(row, field2)) : NULL;
        if (a)
            cd_buf_puts(&b, a);
        if (z) {
            cd_buf_puts(&b, "\n");
            cd_buf_puts(&b, z);
        }
        json_decref(row);
        if (!b.data)
            continue;
        char **texts = realloc(c->texts, (c->n + 1) * sizeof *texts);
        size_t *lens = realloc(c->lens, (c->n + 1) * sizeof *lens);
        if (texts)
            c->texts = texts;
        if (lens)
            c->lens = lens;
        if (!texts || !lens) {
            cd_buf_free(&b);
            break;
        }
        c->texts[c->n] = b.data;
        c->lens[c->n] = b.len;
        c->n_bytes += b.len;
        c->n++;
    }
    free(line);
    fclose(f);
    return c->n ? 0 : -1;
}

static void corpus_free(struct corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->texts[i]);
    free(c->texts);
    free(c->lens);
}

/* Tokenizes the whole corpus repeatedly for at least `seconds` and prints the rates. */
static void bench_throughput(struct text_tokenizer *t, const struct corpus *c, int flags,
                             const char *what, double seconds)
{
    long tokens = 0;
    long passes = 0;
    int64_t t0 = cd_now_us();
    int64_t elapsed;
    do {
        for (size_t i = 0; i < c->n; i++)
            text_tokenize(t, c->texts[i], c->lens[i], flags, count_token, &tokens);
        passes++;
        elapsed = cd_now_us() - t0;
    } while (elapsed < (int64_t)(seconds * 1e6));
    double s = (double)elapsed / 1e6;
    printf("  %-24s %7.1f MB/s  %6.2f M tokens/s  %8.0f articles/s\n", what,
           (double)c->n_bytes * (double)passes / s / 1e6, (double)tokens / s / 1e6,
           (double)c->n * (double)passes / s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Times each query tokenized on its own (100 repetitions per sample) and prints percentiles. */
static void bench_latency(struct text_tokenizer *t, const struct corpus *q)
{
    enum { REPS = 100 };
    int64_t *ns = malloc(q->n * sizeof *ns);
    long tokens = 0;
    if (!ns)
        return;
    for (size_t i = 0; i < q->n; i++) {
        int64_t t0 = cd_now_us();
        for (int r = 0; r < REPS; r++)
            text_tokenize(t, q->texts[i], q->lens[i], 0, count_token, &tokens);
        ns[i] = (cd_now_us() - t0) * 1000 / REPS;
    }
    qsort(ns, q->n, sizeof *ns, cmp_i64);
    printf("  per query (%zu queries, avg %.0f bytes): p50 %lld ns  p99 %lld ns  max %lld ns\n",
           q->n, (double)q->n_bytes / (double)q->n, (long long)ns[q->n / 2],
           (long long)ns[q->n * 99 / 100], (long long)ns[q->n - 1]);
    free(ns);
}

int main(int argc, char **argv)
{
    const char *lang = "en";
    double seconds = 1.0;
    const char *paths[2] = {NULL, NULL};
    int n_paths = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lang") == 0 && i + 1 < argc)
            lang = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (argv[i][0] != '-' && n_paths < 2)
            paths[n_paths++] = argv[i];
        else {
            fprintf(stderr, "usage: text_bench [--lang CODE] [--seconds S] ARTICLES.jsonl "
                            "[QUERIES.jsonl]\n");
            return 2;
        }
    }
    if (!paths[0] || seconds <= 0 || seconds > 60) {
        fprintf(stderr, "usage: text_bench [--lang CODE] [--seconds S] ARTICLES.jsonl "
                        "[QUERIES.jsonl]\n");
        return 2;
    }
    struct corpus articles;
    if (corpus_load(paths[0], "title", "body", &articles)) {
        fprintf(stderr, "text_bench: no articles in %s\n", paths[0]);
        return 1;
    }
    struct text_tokenizer *t = text_tokenizer_new(lang);
    if (!t) {
        fputs("text_bench: out of memory\n", stderr);
        return 1;
    }
    printf("text_bench: lang %s, %zu articles, %.2f MB (title + body)\n", lang, articles.n,
           (double)articles.n_bytes / 1e6);
    bench_throughput(t, &articles, 0, "stem + stop words", seconds);
    bench_throughput(t, &articles, TEXT_NO_STEM | TEXT_KEEP_STOPWORDS, "fold only", seconds);
    if (paths[1]) {
        struct corpus queries;
        if (corpus_load(paths[1], "text", NULL, &queries) == 0) {
            bench_latency(t, &queries);
            corpus_free(&queries);
        }
    }
    text_tokenizer_free(t);
    corpus_free(&articles);
    return 0;
}
