/* kb_gen: writes a synthetic help centre (JSON Lines articles) and queries for it, to measure
 * KB indexing speed and query latency at a size no shipped data set has.
 *
 * usage: kb_gen N_ARTICLES ARTICLES.jsonl QUERIES.jsonl [N_QUERIES] [SEED]
 *
 * Words follow a Zipf law over a vocabulary of made-up content words, mixed with real English
 * function words at the rate prose has them, so term frequencies (and so posting-list
 * lengths) look like a real KB's: a few words are in most articles, most are rare. An
 * article has a 4-9 word title, 2-4 questions, 1-4 tags and a 120-420 word body in 3-7
 * paragraphs (about 1.5 KB, a typical help-centre article). A query is 3-8 words, mostly from
 * its article's title, questions and body, some from anywhere. Deterministic for one SEED. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cd.h"

#define N_VOCAB 20000

static uint64_t rng_state;

static uint32_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static int rnd(int lo, int hi)
{
    return lo + (int)(rng() % (uint32_t)(hi - lo + 1));
}

static char vocab[N_VOCAB][16];
static double zipf_cdf[N_VOCAB];

static const char *const function_words[] = {
    "the",  "to",   "and", "a",  "of",   "in",   "is", "you", "your", "for",  "it",
    "on",   "with", "can", "if", "that", "this", "be", "or",  "are",  "from", "at",
    "will", "my",   "i",   "we", "our",  "by",   "an", "as",  "do",   "have", "not"};
#define N_FUNCTION (sizeof function_words / sizeof function_words[0])

static void make_vocab(void)
{
    static const char *const onset[] = {"b",  "c",  "d",  "f",  "g",  "h",  "k",  "l",
                                        "m",  "n",  "p",  "r",  "s",  "t",  "v",  "z",
                                        "br", "cr", "dr", "pl", "st", "tr", "sh", "ch"};
    static const char *const vowel[] = {"a", "e", "i", "o", "u", "ai", "ou", "ea"};
    static const char *const coda[] = {"", "n", "r", "l", "m", "st", "nd", "x"};
    for (int i = 0; i < N_VOCAB; i++) {
        /* Distinct by construction: the index is spelled in syllables. */
        int v = i, n = 0;
        char *w = vocab[i];
        w[0] = '\0';
        do {
            int o = v % 24, vw = (v / 24) % 8;
            v /= 192;
            n += snprintf(w + n, sizeof vocab[i] - (size_t)n, "%s%s", onset[o], vowel[vw]);
        } while (v > 0);
        snprintf(w + n, sizeof vocab[i] - (size_t)n, "%s", coda[i % 8]);
    }
    double sum = 0;
    for (int i = 0; i < N_VOCAB; i++)
        sum += 1.0 / pow(i + 10, 1.0);
    double acc = 0;
    for (int i = 0; i < N_VOCAB; i++) {
        acc += 1.0 / pow(i + 10, 1.0) / sum;
        zipf_cdf[i] = acc;
    }
}

static const char *content_word(void)
{
    double u = (double)rng() / 4294967296.0;
    /* The last entry's cumulative share is 1 up to rounding: u < 1 lands on it at worst. */
    int i = cd_lower_bound(zipf_cdf, N_VOCAB, u);
    return vocab[i < N_VOCAB ? i : N_VOCAB - 1];
}

static const char *prose_word(void)
{
    return rng() % 100 < 40 ? function_words[rng() % N_FUNCTION] : content_word();
}

/* An article's topic: a handful of words its title, questions and body keep coming back to. */
struct topic {
    const char *words[6];
};

static const char *topic_or_prose(const struct topic *t, int topic_pct)
{
    return (int)(rng() % 100) < topic_pct ? t->words[rng() % 6] : prose_word();
}

static void words(FILE *f, const struct topic *t, int n, int topic_pct)
{
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? " " : "", topic_or_prose(t, topic_pct));
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fputs("usage: kb_gen N_ARTICLES ARTICLES.jsonl QUERIES.jsonl [N_QUERIES] [SEED]\n", stderr);
        return 2;
    }
    int n_articles = atoi(argv[1]);
    int n_queries = argc > 4 ? atoi(argv[4]) : 1000;
    rng_state = argc > 5 ? strtoull(argv[5], NULL, 10) : 42;
    if (rng_state == 0)
        rng_state = 42;
    if (n_articles < 1 || n_queries < 0) {
        fputs("kb_gen: N_ARTICLES must be >= 1\n", stderr);
        return 2;
    }
    FILE *fa = fopen(argv[2], "w"), *fq = fopen(argv[3], "w");
    if (!fa || !fq) {
        perror("kb_gen");
        return 1;
    }
    make_vocab();
    struct topic *topics = calloc((size_t)n_articles, sizeof *topics);
    if (!topics)
        return 1;
    for (int a = 0; a < n_articles; a++) {
        struct topic *t = &topics[a];
        for (int i = 0; i < 6; i++)
            t->words[i] = vocab[rnd(100, N_VOCAB - 1)];
        fprintf(fa, "{\"id\":\"art-%05d\",\"title\":\"", a);
        words(fa, t, rnd(4, 9), 50);
        fputs("\",\"questions\":[", fa);
        int nq = rnd(2, 4);
        for (int q = 0; q < nq; q++) {
            fputs(q ? ",\"" : "\"", fa);
            words(fa, t, rnd(5, 10), 40);
            fputc('"', fa);
        }
        fputs("],\"tags\":[", fa);
        int nt = rnd(1, 4);
        for (int i = 0; i < nt; i++)
            fprintf(fa, "%s\"%s\"", i ? "," : "", content_word());
        fputs("],\"body\":\"", fa);
        int np = rnd(3, 7), total = rnd(120, 420);
        for (int p = 0; p < np; p++) {
            if (p)
                fputs("\\n\\n", fa);
            if (p && rng() % 3 == 0) {
                fputs("## ", fa);
                words(fa, t, rnd(2, 4), 50);
                fputs("\\n\\n", fa);
            }
            words(fa, t, total / np, 8);
            fputc('.', fa);
        }
        fputs("\"}\n", fa);
    }
    for (int i = 0; i < n_queries; i++) {
        int a = (int)(rng() % (uint32_t)n_articles);
        fputs("{\"text\":\"", fq);
        words(fq, &topics[a], rnd(3, 8), 45);
        fprintf(fq, "?\",\"article\":\"art-%05d\"}\n", a);
    }
    free(topics);
    int rc = ferror(fa) || ferror(fq);
    rc |= fclose(fa) != 0;
    rc |= fclose(fq) != 0;
    if (rc) {
        perror("kb_gen: write");
        return 1;
    }
    return 0;
}
