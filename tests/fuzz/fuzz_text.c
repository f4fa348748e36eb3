/* libFuzzer target for text: tokenizes and folds arbitrary bytes in several languages and
 * checks every token and offset, and that text_analyse() replays exactly the same tokens.
 * The first input byte picks the language and flags. */
#include "cd.h"
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const langs[] = {"en", "es", "fr", "de", "pt", "it", "nl", "ru", "el", "xx"};
#define N_LANGS (sizeof langs / sizeof langs[0])

struct check {
    size_t n;
    int prev_end;
    int n_tokens;
    int stop_after;
};

static int check_token(void *ctx, const char *token, int n_token, int start, int end)
{
    struct check *c = ctx;
    if (n_token <= 0 || n_token > TEXT_MAX_TOKEN || !cd_utf8_valid(token, (size_t)n_token))
        abort();
    if (start < c->prev_end || start >= end || (size_t)end > c->n)
        abort();
    c->prev_end = end;
    c->n_tokens++;
    return c->stop_after && c->n_tokens >= c->stop_after ? 99 : 0;
}

/* A digest of every token and its offsets. */
struct digest {
    uint64_t h;
    int n_tokens;
    int stop_after;
};

static int digest_token(void *ctx, const char *token, int n_token, int start, int end)
{
    struct digest *d = ctx;
    int range[2] = {start, end};
    d->h = cd_fnv1a64(cd_fnv1a64(d->h, token, (size_t)n_token), (const char *)range, sizeof range);
    d->n_tokens++;
    return d->stop_after && d->n_tokens >= d->stop_after ? 99 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct text_tokenizer *tokenizers[N_LANGS];
    if (size == 0)
        return 0;
    unsigned sel = data[0];
    size_t lang = sel % N_LANGS;
    if (!tokenizers[lang]) {
        tokenizers[lang] = text_tokenizer_new(langs[lang]);
        if (!tokenizers[lang])
            abort();
    }
    /* A copy of exactly the text bytes, so ASan catches any read past the end. */
    size_t n = size - 1;
    char *s = malloc(n ? n : 1);
    if (!s)
        return 0;
    memcpy(s, data + 1, n);

    struct check c = {n, 0, 0, (sel & 0x80) ? 3 : 0};
    int rc = text_tokenize(tokenizers[lang], s, n, (int)((sel / N_LANGS) & 3), check_token, &c);
    if (rc != 0 && rc != 99)
        abort();

    static struct text_analysis analysis; /* reused, as triage reuses its own */
    int flags = (int)((sel / N_LANGS) & 3);
    struct digest want = {CD_FNV64_INIT, 0, c.stop_after}, got = want;
    int rc_want = text_tokenize(tokenizers[lang], s, n, flags, digest_token, &want);
    if (text_analyse(tokenizers[lang], s, n, &analysis) == 0) {
        int rc_got = text_analysis_tokens(&analysis, flags, digest_token, &got);
        if (rc_got != rc_want || got.h != want.h || got.n_tokens != want.n_tokens)
            abort();
    }

    size_t cap = n * 3 + 1;
    char *folded = malloc(cap);
    if (folded) {
        int f = text_fold(s, n, folded, cap);
        if (f < 0 || (size_t)f >= cap || folded[f] != '\0')
            abort();
        free(folded);
    }
    (void)text_is_stopword(langs[lang], s, n < 40 ? n : 40);
    free(s);
    return 0;
}
