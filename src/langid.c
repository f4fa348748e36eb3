/* langid: language identification among a deployment's candidate languages
 * (see langid.h for the design). */
#include "langid.h"

#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "text.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKET_BITS 16
#define N_BUCKETS   (1u << BUCKET_BITS)
#define MAX_GRAM    4
/* Smoothing of the n-gram counts (add-alpha). */
#define ALPHA 0.05
/* Log-odds added per word that is a stop word of some candidates only. */
#define STOP_BONUS 1.5
/* The n-gram likelihoods are far from independent: the posterior divides
 * the log-likelihood differences by this many features per unit. */
#define FEATURES_PER_UNIT 12.0
/* Only the start of a message is scored. */
#define DETECT_MAX_BYTES 1024
/* KB text read per language when building profiles. */
#define KB_MAX_BYTES_PER_LANG (256 * 1024)
#define KB_MAX_ARTICLES       5000

struct langid_lang {
    char code[8];
    uint32_t *count; /* N_BUCKETS, freed by langid_train() */
    float *logp;     /* N_BUCKETS, from langid_train() */
    double total;
    double log_unseen;
    size_t kb_bytes;
};

struct langid {
    struct langid_lang langs[LANGID_MAX_LANGS];
    int n_langs;
    int is_trained;
};

struct langid *langid_new(void)
{
    return calloc(1, sizeof(struct langid));
}

void langid_free(struct langid *id)
{
    if (!id)
        return;
    for (int i = 0; i < id->n_langs; i++) {
        free(id->langs[i].count);
        free(id->langs[i].logp);
    }
    free(id);
}

/* "pt-BR" -> "pt", lower case (text_lang_code(), the one tag rule); returns -1 for a string
 * that is not a language tag. */
static int normalize_code(const char *lang, char out[8])
{
    return text_lang_code(lang, out) ? 0 : -1;
}

static int find_lang(const struct langid *id, const char *code)
{
    for (int i = 0; i < id->n_langs; i++)
        if (!strcmp(id->langs[i].code, code))
            return i;
    return -1;
}

/* Decodes one UTF-8 sequence at s (n > 0 bytes left); returns its length and
 * the code point in *cp, or length 1 and cp -1 for an invalid byte. */
static size_t utf8_next(const unsigned char *s, size_t n, long *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len == 0 || len > n || (len == 2 && c < 0xC2)) {
        *cp = -1;
        return 1;
    }
    long v = len == 1   ? (long)c
             : len == 2 ? (long)(c & 0x1F)
             : len == 3 ? (long)(c & 0x0F)
                        : (long)(c & 0x07);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (s[k] & 0x3F);
    }
    *cp = v;
    return len;
}

/* Letters of any script, roughly: ASCII and Latin-1 letters, "¿" and "¡", and every code
 * point from U+0100 except punctuation, symbols, variation selectors and emoji. */
static int is_letter(long cp)
{
    if (cp < 0xC0)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == 0xBF || cp == 0xA1;
    if (cp == 0xD7 || cp == 0xF7)
        return 0; /* multiplication and division signs */
    return !(cp >= 0x2000 && cp <= 0x2BFF) && !(cp >= 0x3000 && cp <= 0x303F) &&
           !(cp >= 0xFE00 && cp <= 0xFE0F) && cp < 0x1F000;
}

/* Normalises text into out (capacity >= 2 * n + 3): lower case, one space
 * between words, a space at both ends. Letters (and the Spanish marks "¿",
 * "¡") are kept as UTF-8; digits, punctuation and invalid bytes separate
 * words; apostrophes vanish ("don't" -> "dont"). Returns the length. */
static size_t normalize(const char *text, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0, i = 0;
    out[o++] = ' ';
    while (i < n) {
        long cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        int is_apostrophe = cp == '\'' || cp == 0x2019;
        if (cp >= 'A' && cp <= 'Z')
            cp += 'a' - 'A';
        if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
            cp += 0x20; /* Latin-1 upper case */
        if (is_letter(cp)) {
            if (cp < 0x80)
                out[o++] = (char)cp;
            else if (cp < 0x800) {
                out[o++] = (char)(0xC0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                memcpy(out + o, s + i, len); /* case left as is */
                o += len;
            }
        } else if (!is_apostrophe && out[o - 1] != ' ') {
            out[o++] = ' ';
        }
        i += len;
    }
    if (out[o - 1] != ' ')
        out[o++] = ' ';
    out[o] = '\0';
    return o;
}

static uint32_t gram_hash(const char *s, size_t n, uint32_t salt)
{
    uint32_t h = cd_fnv1a32(CD_FNV32_INIT ^ salt, s, n);
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h & (N_BUCKETS - 1);
}

typedef void (*gram_cb)(void *ctx, uint32_t bucket);

/* Calls cb for every feature of the normalised text s: each byte 1..4-gram
 * that is not a lone space, and each whole word. Returns how many. */
static int for_each_feature(const char *s, size_t n, gram_cb cb, void *ctx)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t g = 1; g <= MAX_GRAM && i + g <= n; g++) {
            if (g == 1 && s[i] == ' ')
                continue;
            if (g > 1 && s[i + g - 1] == ' ' && s[i] == ' ')
                continue;
            cb(ctx, gram_hash(s + i, g, 0));
            count++;
        }
        if (s[i] == ' ' && i + 1 < n) {
            const char *end = memchr(s + i + 1, ' ', n - i - 1);
            if (end) {
                cb(ctx, gram_hash(s + i, (size_t)(end - (s + i)) + 1, 0x9e3779b9u));
                count++;
            }
        }
    }
    return count;
}

static void count_gram(void *ctx, uint32_t bucket)
{
    struct langid_lang *l = ctx;
    l->count[bucket]++;
    l->total++;
}

int langid_add(struct langid *id, const char *lang, const char *text, size_t n)
{
    char code[8];
    if (!id || id->is_trained || normalize_code(lang, code))
        return CD_EINVAL;
    int k = find_lang(id, code);
    if (k < 0) {
        if (id->n_langs == LANGID_MAX_LANGS)
            return CD_EINVAL;
        struct langid_lang *l = &id->langs[id->n_langs];
        memset(l, 0, sizeof *l);
        l->count = calloc(N_BUCKETS, sizeof *l->count);
        if (!l->count)
            return CD_ENOMEM;
        memcpy(l->code, code, sizeof l->code);
        k = id->n_langs++;
    }
    if (!text || !n)
        return 0;
    char *buf = malloc(2 * n + 3);
    if (!buf)
        return CD_ENOMEM;
    size_t len = normalize(text, n, buf);
    for_each_feature(buf, len, count_gram, &id->langs[k]);
    free(buf);
    return 0;
}

int langid_add_intents(struct langid *id, const struct intents *set)
{
    int n = set ? intents_count(set) : 0;
    for (int i = 0; i < n; i++) {
        const struct intent *in = intents_get(set, i);
        if (in->is_oos)
            continue; /* out-of-scope examples may be in any language */
        const char *lang = in->lang ? in->lang : "en";
        for (int e = 0; e < in->n_examples; e++) {
            int rc = langid_add(id, lang, in->examples[e], strlen(in->examples[e]));
            if (rc == CD_ENOMEM)
                return rc;
        }
    }
    return 0;
}

static int add_kb_text(struct langid *id, const char *lang, const char *text)
{
    char code[8];
    if (!text || normalize_code(lang, code))
        return 0;
    int k = find_lang(id, code);
    size_t n = strlen(text);
    if (k >= 0 && id->langs[k].kb_bytes >= KB_MAX_BYTES_PER_LANG)
        return 0;
    int rc = langid_add(id, code, text, n);
    if (rc)
        return rc == CD_ENOMEM ? rc : 0;
    id->langs[find_lang(id, code)].kb_bytes += n;
    return 0;
}

int langid_add_kb(struct langid *id, struct kb *kb)
{
    if (!kb)
        return 0;
    struct kb_list_item *items = calloc(KB_MAX_ARTICLES, sizeof *items);
    if (!items)
        return CD_ENOMEM;
    int n = 0, rc = kb_list(kb, NULL, 1, items, KB_MAX_ARTICLES, &n);
    for (int i = 0; rc == 0 && i < n; i++) {
        char code[8];
        int k = normalize_code(items[i].lang, code) ? -1 : find_lang(id, code);
        if (k >= 0 && id->langs[k].kb_bytes >= KB_MAX_BYTES_PER_LANG)
            continue;
        struct kb_article a;
        if (kb_get(kb, items[i].id, &a))
            continue;
        const char *lang = a.lang ? a.lang : "en";
        rc = add_kb_text(id, lang, a.title);
        if (!rc)
            rc = add_kb_text(id, lang, a.body);
        for (int q = 0; !rc && q < a.n_questions; q++)
            rc = add_kb_text(id, lang, a.questions[q]);
        kb_article_clear(&a);
    }
    kb_list_clear(items, n);
    free(items);
    return rc == CD_ENOMEM ? rc : 0;
}

int langid_train(struct langid *id)
{
    if (!id)
        return CD_EINVAL;
    for (int k = 0; k < id->n_langs; k++) {
        struct langid_lang *l = &id->langs[k];
        if (!l->logp && !(l->logp = malloc(N_BUCKETS * sizeof *l->logp)))
            return CD_ENOMEM;
        double denom = log(l->total + ALPHA * N_BUCKETS);
        for (uint32_t b = 0; b < N_BUCKETS; b++)
            l->logp[b] = (float)(log(l->count[b] + ALPHA) - denom);
        l->log_unseen = log(ALPHA) - denom;
        free(l->count);
        l->count = NULL;
    }
    id->is_trained = 1;
    return 0;
}

int langid_count(const struct langid *id)
{
    return id ? id->n_langs : 0;
}

const char *langid_lang(const struct langid *id, int i)
{
    return id && i >= 0 && i < id->n_langs ? id->langs[i].code : NULL;
}

struct score_ctx {
    const struct langid *id;
    double score[LANGID_MAX_LANGS];
};

static void score_gram(void *ctx, uint32_t bucket)
{
    struct score_ctx *c = ctx;
    for (int k = 0; k < c->id->n_langs; k++)
        c->score[k] += c->id->langs[k].logp[bucket];
}

/* Adds STOP_BONUS to the languages a word is a stop word of, for each word
 * that is a stop word of some candidates but not all. */
static void score_stopwords(const struct langid *id, const char *s, size_t n, double *score)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < n && s[i] != ' ')
            i++;
        if (i == start)
            break;
        char folded[TEXT_MAX_TOKEN * 2];
        int len = text_fold(s + start, i - start, folded, sizeof folded);
        if (len <= 0)
            continue;
        int is_stop[LANGID_MAX_LANGS], n_stop = 0;
        for (int k = 0; k < id->n_langs; k++)
            n_stop += is_stop[k] = text_is_stopword(id->langs[k].code, folded, (size_t)len);
        if (n_stop == 0 || n_stop == id->n_langs)
            continue;
        for (int k = 0; k < id->n_langs; k++)
            score[k] += is_stop[k] ? STOP_BONUS : 0;
    }
}

void langid_detect(const struct langid *id, const char *text, size_t n, struct langid_result *out)
{
    memset(out, 0, sizeof *out);
    if (!id || !id->n_langs || !id->is_trained)
        return;
    cd_strlcpy(out->lang, sizeof out->lang, id->langs[0].code);
    if (!text)
        n = 0;
    if (n > DETECT_MAX_BYTES)
        n = DETECT_MAX_BYTES; /* a cut UTF-8 sequence only separates words */
    char buf[2 * DETECT_MAX_BYTES + 3];
    size_t len = normalize(text ? text : "", n, buf);
    struct score_ctx c = {.id = id};
    out->n_features = for_each_feature(buf, len, score_gram, &c);
    if (id->n_langs == 1) {
        out->confidence = 1;
        return;
    }
    if (out->n_features == 0)
        return;
    /* Scale: log-likelihoods per feature, times an effective number of
     * independent features that grows with the message. */
    double scale = 1.0 / FEATURES_PER_UNIT;
    for (int k = 0; k < id->n_langs; k++)
        c.score[k] *= scale;
    score_stopwords(id, buf, len, c.score);
    int best = 0;
    for (int k = 1; k < id->n_langs; k++)
        if (c.score[k] > c.score[best])
            best = k;
    double z = 0;
    for (int k = 0; k < id->n_langs; k++)
        z += exp(c.score[k] - c.score[best]);
    cd_strlcpy(out->lang, sizeof out->lang, id->langs[best].code);
    out->confidence = 1.0 / z;
}

struct langid *langid_build(const struct intents *set, struct kb *kb)
{
    struct langid *id = langid_new();
    if (!id || langid_add_intents(id, set) || langid_add_kb(id, kb) || langid_train(id)) {
        langid_free(id);
        return NULL;
    }
    return id;
}

/* The first messages of a conversation, joined by spaces. */
#define PROBE_MAX_BYTES 512

struct langid_probe {
    char text[PROBE_MAX_BYTES];
    size_t n;
    int n_messages;
};

struct langid_probe *langid_probe_new(void)
{
    return calloc(1, sizeof(struct langid_probe));
}

void langid_probe_free(struct langid_probe *p)
{
    free(p);
}

int langid_probe_add(struct langid_probe *p, const struct langid *id, const char *text, size_t n,
                     const char *fallback, char lang[8])
{
    cd_strlcpy(lang, 8, fallback && fallback[0] ? fallback : "en");
    if (!p || !id || id->n_langs == 0)
        return 1;
    if (id->n_langs == 1) {
        cd_strlcpy(lang, 8, id->langs[0].code);
        return 1;
    }
    if (!text)
        n = 0;
    size_t room = sizeof p->text - p->n - 1;
    if (p->n && room) {
        p->text[p->n++] = ' ';
        room--;
    }
    if (n > room)
        n = room; /* a cut UTF-8 sequence only separates words */
    memcpy(p->text + p->n, text ? text : "", n);
    p->n += n;
    p->n_messages++;
    struct langid_result r;
    langid_detect(id, p->text, p->n, &r);
    if (r.confidence >= LANGID_MIN_CONFIDENCE) {
        cd_strlcpy(lang, 8, r.lang);
        return 1;
    }
    return p->n_messages >= LANGID_PROBE_MESSAGES;
}

const char *langid_guess(const struct intents *set, struct kb *kb, const char *text, size_t n,
                         const char *fallback, char lang[8])
{
    struct langid *id = langid_build(set, kb);
    struct langid_probe p = {.n_messages = LANGID_PROBE_MESSAGES - 1};
    langid_probe_add(&p, id, text, n, fallback, lang);
    langid_free(id);
    return lang;
}
