/* text: owns caredesk's tokenizer: UTF-8 word split, case and diacritic folding, stop words
 * and Snowball stemming, shared by the KB index, KB queries and intent classification.
 *
 * DESIGN: this is the hot path of indexing and of every customer message, so a call never
 * allocates: a word is built in two fixed buffers on the stack (its lower-case form, which
 * keeps diacritics, and its fully folded form), and the one libstemmer stemmer is created
 * with the tokenizer. Folding is driven by compact tables generated from the Unicode
 * database by scripts/gen_text_tables.py (src/text_tables.h): Latin-1, Latin Extended-A/B,
 * Greek, Cyrillic and Latin Extended Additional / Greek Extended have a lower-case and a
 * fold entry per code point; letters, digits and marks of every other script are word
 * characters kept as they are (found by binary search in a range table). Snowball's Spanish,
 * French, German and Portuguese stemmers expect accented input, so a word is lower-cased,
 * stemmed, and only then stripped of diacritics ("Canciones" -> "cancion" -> "cancion").
 *
 * Stop words are the Snowball lists cut down to true function words: words that carry a
 * customer's intent stay tokens, so negations ("not", "no", "don't" -> "dont", "nicht",
 * "pas"), question words ("how", "why", "where", "when", "what", "como", "wie") and the
 * particles of phrasal verbs ("sign up", "log out", "turn off", "site down") are never
 * dropped. The lists are stored folded and sorted, and searched by binary search.
 *
 * Must never happen: a read outside [s, s + n), a failure or crash on any byte sequence
 * (invalid UTF-8 bytes are separators), a token longer than TEXT_MAX_TOKEN bytes or cut in
 * the middle of a UTF-8 sequence. */
#include "text.h"

#include "cd.h"

#include <libstemmer.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct stop_list {
    const char *lang;
    const char *const *words;
    size_t n_words;
};

#include "text_tables.h"

/* Table values: a combining mark that is dropped, and the first multi-character fold. */
#define FOLD_DROP    0xFFFEu
#define FOLD_MULTI   0xE000u
#define N_FOLD_MULTI (sizeof fold_multi / sizeof fold_multi[0])

/* Character classes. A mark continues a word but cannot start one (so an emoji's variation
 * selector never becomes a token). */
enum char_class { CH_SEP, CH_WORD, CH_MARK, CH_APOS };

/* A direct-mapped cache of recent stems: word text follows Zipf's law, so most words were
 * stemmed a moment ago, and the cache makes stemming several times faster than calling
 * libstemmer for every token (bench/20-text.sh). Keyed by the lower-case word (up to 15
 * bytes; longer words always go to the stemmer), holding the folded stem: 256 KB per
 * tokenizer, allocated once in text_tokenizer_new(). */
#define STEM_CACHE_SLOTS 8192 /* a power of two */
#define STEM_CACHE_WORD  15

struct stem_cache_slot {
    unsigned char n_word; /* 0: empty */
    unsigned char n_stem;
    char word[STEM_CACHE_WORD];
    char stem[STEM_CACHE_WORD];
};

struct text_tokenizer {
    struct sb_stemmer *stemmer;       /* NULL: unknown language, fold only */
    const struct stop_list *stopword; /* NULL: no stop words */
    struct stem_cache_slot *cache;    /* STEM_CACHE_SLOTS slots when stemmer is set */
    char lang[16];
};

/* One word being built: its lower-case form (for the stemmer) and its folded form, each cut
 * at a code point boundary once TEXT_MAX_TOKEN bytes are reached. */
struct word {
    char lower[TEXT_MAX_TOKEN];
    char fold[TEXT_MAX_TOKEN];
    int n_lower;
    int n_fold;
    int is_lower_full;
    int is_fold_full;
    int has_letter; /* any character that is not an ASCII digit */
    int is_ascii;   /* the lower-case form is plain ASCII */
    int start;
    int end;
};

static const struct {
    const char *name;
    const char *code;
} lang_alias[] = {
    {"english", "en"}, {"spanish", "es"},    {"french", "fr"},  {"german", "de"},
    {"dutch", "nl"},   {"portuguese", "pt"}, {"italian", "it"},
};

/* Returns the ASCII word character c folded (lower case), or 0 if c separates words. */
static inline unsigned ascii_word(unsigned c)
{
    if (c >= 'A' && c <= 'Z')
        return c + ('a' - 'A');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return c;
    return 0;
}

/* Decodes the code point at s (n >= 1 bytes available) into *cp and returns its length. An
 * invalid, overlong, surrogate or truncated sequence gives *cp = -1 and length 1, so the
 * caller skips exactly one byte and resynchronises on the next. */
static int utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned c = s[0];
    int len;
    uint32_t v;
    uint32_t min;

    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        *cp = -1;
        return 1;
    }
    if ((size_t)len > n) {
        *cp = -1;
        return 1;
    }
    for (int i = 1; i < len; i++) {
        unsigned b = s[i];
        if ((b & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (b & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = (int32_t)v;
    return len;
}

/* Writes cp as UTF-8 to out (4 bytes available) and returns its length. */
static int utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int in_ranges(const uint32_t (*ranges)[2], size_t n_ranges, uint32_t cp)
{
    size_t lo = 0;
    size_t hi = n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < ranges[mid][0])
            hi = mid;
        else if (cp > ranges[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* Classifies the non-ASCII code point cp; for a word character or mark sets *lower (its
 * lower-case form) and *fold (lower case without diacritics, FOLD_DROP for nothing, or
 * FOLD_MULTI + i for fold_multi[i]). */
static enum char_class classify(uint32_t cp, uint32_t *lower, uint32_t *fold)
{
    const uint16_t *lower_tab = NULL;
    const uint16_t *fold_tab = NULL;
    uint32_t base = 0;

    if (cp >= 0x80 && cp < FOLD_BLOCK_0080_END) {
        lower_tab = lower_0080;
        fold_tab = fold_0080;
        base = 0x80;
    } else if (cp >= 0x1E00 && cp < FOLD_BLOCK_1e00_END) {
        lower_tab = lower_1e00;
        fold_tab = fold_1e00;
        base = 0x1E00;
    }
    if (lower_tab) {
        uint32_t lo = lower_tab[cp - base];
        if (lo == 0)
            return CH_SEP;
        *lower = lo;
        *fold = fold_tab[cp - base];
        return lo == FOLD_DROP ? CH_MARK : CH_WORD;
    }
    *lower = cp;
    *fold = cp;
    if (in_ranges(word_ranges, sizeof word_ranges / sizeof word_ranges[0], cp))
        return CH_WORD;
    if (in_ranges(mark_ranges, sizeof mark_ranges / sizeof mark_ranges[0], cp))
        return CH_MARK;
    return CH_SEP;
}

/* Returns 1 if the bytes at s (n available) start with a word character. */
static int starts_word(const unsigned char *s, size_t n)
{
    int32_t cp;
    uint32_t lower;
    uint32_t fold;

    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return ascii_word(s[0]) != 0;
    utf8_decode(s, n, &cp);
    return cp >= 0 && classify((uint32_t)cp, &lower, &fold) == CH_WORD;
}

/* Appends n bytes to a word buffer unless they do not fit whole; once something did not fit,
 * nothing more is appended (the word is cut at a code point boundary). */
static inline void buf_add(char *buf, int *len, int *is_full, const char *bytes, int n)
{
    if (*is_full)
        return;
    if (*len + n > TEXT_MAX_TOKEN) {
        *is_full = 1;
        return;
    }
    memcpy(buf + *len, bytes, (size_t)n);
    *len += n;
}

/* Appends the fold table value v (a code point, FOLD_DROP or FOLD_MULTI + i). */
static void fold_add(char *buf, int *len, int *is_full, uint32_t v)
{
    char tmp[4];

    if (v == FOLD_DROP)
        return;
    if (v >= FOLD_MULTI && v < FOLD_MULTI + N_FOLD_MULTI) {
        const char *m = fold_multi[v - FOLD_MULTI];
        buf_add(buf, len, is_full, m, (int)strlen(m));
        return;
    }
    buf_add(buf, len, is_full, tmp, utf8_encode(v, tmp));
}

static void word_start(struct word *w, int start)
{
    w->n_lower = 0;
    w->n_fold = 0;
    w->is_lower_full = 0;
    w->is_fold_full = 0;
    w->has_letter = 0;
    w->is_ascii = 1;
    w->start = start;
    w->end = start;
}

/* Folds the n bytes of a stem (lower case, may have diacritics) into out (TEXT_MAX_TOKEN
 * bytes); returns the length. */
static int fold_stem(const unsigned char *stem, int n, char *out)
{
    int len = 0;
    int is_full = 0;
    int i = 0;

    while (i < n && !is_full) {
        int32_t cp;
        uint32_t lower;
        uint32_t fold;
        int step = utf8_decode(stem + i, (size_t)(n - i), &cp);

        if (cp < 0x80) {
            if (cp >= 0) {
                char c = (char)cp;
                unsigned a = ascii_word((unsigned)cp);
                if (a)
                    c = (char)a;
                buf_add(out, &len, &is_full, &c, 1);
            }
        } else if (classify((uint32_t)cp, &lower, &fold) != CH_SEP) {
            fold_add(out, &len, &is_full, fold);
        }
        i += step;
    }
    return len;
}

/* Compares the n-byte word with a NUL-terminated stop word, like strcmp. */
static inline int stop_cmp(const char *word, size_t n, const char *entry)
{
    size_t i = 0;
    for (; i < n && entry[i]; i++) {
        if (word[i] != entry[i])
            return (unsigned char)word[i] - (unsigned char)entry[i];
    }
    if (i < n)
        return 1;
    return entry[i] ? -1 : 0;
}

static int stop_find(const struct stop_list *list, const char *word, size_t n)
{
    size_t lo = 0;
    size_t hi = list->n_words;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = stop_cmp(word, n, list->words[mid]);
        if (c == 0)
            return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

/* Normalises a language code into out (16 bytes): NULL or "" is "en", "pt-BR" is "pt",
 * "English" is "en". */
static void lang_normalize(const char *lang, char *out)
{
    size_t i = 0;

    if (!lang || !*lang)
        lang = "en";
    for (; lang[i] && lang[i] != '-' && lang[i] != '_' && i < 15; i++) {
        char c = lang[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    out[i] = '\0';
    for (size_t k = 0; k < sizeof lang_alias / sizeof lang_alias[0]; k++) {
        if (strcmp(out, lang_alias[k].name) == 0) {
            strcpy(out, lang_alias[k].code);
            break;
        }
    }
}

static const struct stop_list *stop_list_for(const char *code)
{
    for (size_t k = 0; k < sizeof stop_lists / sizeof stop_lists[0]; k++) {
        if (strcmp(code, stop_lists[k].lang) == 0)
            return &stop_lists[k];
    }
    return NULL;
}

struct text_tokenizer *text_tokenizer_new(const char *lang)
{
    struct text_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    lang_normalize(lang, t->lang);
    t->stemmer = sb_stemmer_new(t->lang, "UTF_8");
    if (t->stemmer) {
        t->stopword = stop_list_for(t->lang);
        t->cache = calloc(STEM_CACHE_SLOTS, sizeof *t->cache);
        if (!t->cache) {
            text_tokenizer_free(t);
            return NULL;
        }
    } else if (stop_list_for(t->lang)) {
        /* A language libstemmer always has: the stemmer failed for lack of memory. */
        free(t);
        return NULL;
    }
    return t;
}

void text_tokenizer_free(struct text_tokenizer *t)
{
    if (!t)
        return;
    sb_stemmer_delete(t->stemmer);
    free(t->cache);
    free(t);
}

const char *text_tokenizer_lang(const struct text_tokenizer *t)
{
    return t ? t->lang : "en";
}

struct text_tokenizer *text_tokenizers_get(struct text_tokenizers *c, const char *lang)
{
    if (!lang || !lang[0])
        lang = "en";
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->lang[i], lang))
            return c->tok[i];
    struct text_tokenizer *t = text_tokenizer_new(lang);
    if (!t)
        return NULL;
    int slot = c->n < TEXT_TOKENIZERS_MAX ? c->n++ : TEXT_TOKENIZERS_MAX - 1;
    text_tokenizer_free(c->tok[slot]);
    c->tok[slot] = t;
    cd_strlcpy(c->lang[slot], sizeof c->lang[slot], lang);
    return t;
}

void text_tokenizers_free(struct text_tokenizers *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        text_tokenizer_free(c->tok[i]);
    memset(c, 0, sizeof *c);
}

/* Returns 1 if the finished word w is one of t's stop words. */
static int word_is_stopword(const struct text_tokenizer *t, const struct word *w)
{
    return t && t->stopword && stop_find(t->stopword, w->fold, (size_t)w->n_fold);
}

/* The token of a finished word (n_fold > 0) when stemming: its stem with the diacritics the
 * stemmer needed stripped, or its folded form for a word of digits, a language without a
 * stemmer or an empty stem. Sets *token (into out, w, t's stem cache or libstemmer's buffer:
 * valid until the next call) and returns its length. */
static int word_stem(struct text_tokenizer *t, struct word *w, char out[TEXT_MAX_TOKEN],
                     const char **token)
{
    if (t && t->stemmer && w->has_letter && w->n_lower > 0) {
        struct stem_cache_slot *slot = NULL;
        if (w->n_lower <= STEM_CACHE_WORD) {
            uint32_t h = cd_fnv1a32(CD_FNV32_INIT, w->lower, (size_t)w->n_lower);
            slot = &t->cache[h & (STEM_CACHE_SLOTS - 1)];
            if (slot->n_word == w->n_lower && memcmp(slot->word, w->lower, slot->n_word) == 0) {
                *token = slot->stem;
                return slot->n_stem;
            }
        }
        const sb_symbol *stem =
            sb_stemmer_stem(t->stemmer, (const sb_symbol *)w->lower, w->n_lower);
        if (stem) {
            int n_token;
            int n_stem = sb_stemmer_length(t->stemmer);
            *token = out;
            if (w->is_ascii && n_stem > 0 && n_stem <= TEXT_MAX_TOKEN) {
                *token = (const char *)stem;
                n_token = n_stem;
            } else {
                n_token = fold_stem(stem, n_stem, out);
            }
            if (n_token > 0) {
                if (slot && n_token <= STEM_CACHE_WORD) {
                    slot->n_word = (unsigned char)w->n_lower;
                    memcpy(slot->word, w->lower, (size_t)w->n_lower);
                    slot->n_stem = (unsigned char)n_token;
                    memcpy(slot->stem, *token, (size_t)n_token);
                }
                return n_token;
            }
        }
    }
    *token = w->fold;
    return w->n_fold;
}

/* Called by split_words() for each finished word; a non-zero return stops the split. */
typedef int (*word_fn)(void *ctx, struct word *w);

/* Splits n bytes of UTF-8 at s into words, each built lower-cased and folded in w, and calls
 * fn for each. Returns 0, or the first non-zero value fn returned. */
static inline int split_words(const char *s, size_t n, word_fn fn, void *ctx)
{
    const unsigned char *p = (const unsigned char *)s;
    struct word w;
    int in_word = 0;
    size_t i = 0;
    int rc;

    if (n > INT_MAX)
        n = INT_MAX; /* offsets are ints */
    while (i < n) {
        unsigned c = p[i];
        enum char_class cls;
        uint32_t lower = 0;
        uint32_t fold = 0;
        int len = 1;

        if (c < 0x80) {
            lower = ascii_word(c);
            fold = lower;
            cls = lower ? CH_WORD : (c == '\'' ? CH_APOS : CH_SEP);
        } else {
            int32_t cp;
            len = utf8_decode(p + i, n - i, &cp);
            if (cp < 0)
                cls = CH_SEP;
            else if (cp == 0x2019)
                cls = CH_APOS;
            else
                cls = classify((uint32_t)cp, &lower, &fold);
        }
        if (cls == CH_APOS) {
            /* Dropped inside a word ("don't"), a separator anywhere else. */
            if (in_word && starts_word(p + i + len, n - i - (size_t)len)) {
                i += (size_t)len;
                continue;
            }
            cls = CH_SEP;
        }
        if (cls == CH_SEP || (cls == CH_MARK && !in_word)) {
            if (in_word) {
                in_word = 0;
                rc = fn(ctx, &w);
                if (rc)
                    return rc;
            }
            i += (size_t)len;
            continue;
        }
        if (!in_word) {
            word_start(&w, (int)i);
            in_word = 1;
        }
        if (c < 0x80) {
            char a = (char)lower;
            buf_add(w.lower, &w.n_lower, &w.is_lower_full, &a, 1);
            buf_add(w.fold, &w.n_fold, &w.is_fold_full, &a, 1);
            if (a > '9')
                w.has_letter = 1;
        } else {
            if (lower != FOLD_DROP) {
                char tmp[4];
                buf_add(w.lower, &w.n_lower, &w.is_lower_full, tmp, utf8_encode(lower, tmp));
                w.is_ascii = w.is_ascii && lower < 0x80;
            }
            fold_add(w.fold, &w.n_fold, &w.is_fold_full, fold);
            w.has_letter = 1;
        }
        i += (size_t)len;
        w.end = (int)i;
    }
    if (in_word)
        return fn(ctx, &w);
    return 0;
}

struct emit_ctx {
    struct text_tokenizer *t;
    int flags;
    text_token_cb cb;
    void *ctx;
};

/* Emits one finished word for text_tokenize(): drops it if it is a stop word, stems it, and
 * calls cb. Returns cb's value (0 for a dropped word). */
static int word_emit(void *ctx, struct word *w)
{
    struct emit_ctx *e = ctx;
    char out[TEXT_MAX_TOKEN];
    const char *token = w->fold;
    int n_token = w->n_fold;

    if (w->n_fold == 0)
        return 0;
    if (!(e->flags & TEXT_KEEP_STOPWORDS) && word_is_stopword(e->t, w))
        return 0;
    if (!(e->flags & TEXT_NO_STEM))
        n_token = word_stem(e->t, w, out, &token);
    return e->cb(e->ctx, token, n_token, w->start, w->end);
}

int text_tokenize(struct text_tokenizer *t, const char *s, size_t n, int flags, text_token_cb cb,
                  void *ctx)
{
    struct emit_ctx e = {.t = t, .flags = flags, .cb = cb, .ctx = ctx};

    if (!s || !cb)
        return 0;
    return split_words(s, n, word_emit, &e);
}

/* ---- one message, analysed once ---------------------------------------------------------- */

struct analyse_ctx {
    struct text_tokenizer *t;
    struct text_analysis *a;
};

/* Appends n bytes to the analysis's character store; returns their offset, or -1 when out of
 * memory (or past the int offsets' range). */
static int chars_add(struct text_analysis *a, const char *bytes, int n)
{
    if (a->n_chars + (size_t)n > INT_MAX)
        return -1;
    if (a->n_chars + (size_t)n > a->cap_chars) {
        size_t cap = a->cap_chars ? a->cap_chars * 2 : 256;
        while (cap < a->n_chars + (size_t)n)
            cap *= 2;
        if (cd_resize(&a->chars, cap, 1))
            return -1;
        a->cap_chars = cap;
    }
    memcpy(a->chars + a->n_chars, bytes, (size_t)n);
    a->n_chars += (size_t)n;
    return (int)(a->n_chars - (size_t)n);
}

/* Records one finished word: its place, folded form, stop-word flag and stemmed token. */
static int word_record(void *ctx, struct word *w)
{
    struct analyse_ctx *c = ctx;
    struct text_analysis *a = c->a;
    char out[TEXT_MAX_TOKEN];
    const char *stem;

    if (w->n_fold == 0)
        return 0;
    if (cd_grow(&a->words, &a->cap_words, a->n_words, sizeof *a->words, 32))
        return CD_ENOMEM;
    struct text_word *tw = &a->words[a->n_words];
    tw->start = w->start;
    tw->end = w->end;
    tw->is_stopword = word_is_stopword(c->t, w);
    tw->n_fold = w->n_fold;
    tw->n_stem = word_stem(c->t, w, out, &stem);
    if ((tw->fold_at = chars_add(a, w->fold, w->n_fold)) < 0 ||
        (tw->stem_at = chars_add(a, stem, tw->n_stem)) < 0)
        return CD_ENOMEM;
    a->n_words++;
    return 0;
}

int text_analyse(struct text_tokenizer *t, const char *s, size_t n, struct text_analysis *a)
{
    struct analyse_ctx c = {.t = t, .a = a};

    a->text = s ? s : "";
    a->n = s ? n : 0;
    cd_strlcpy(a->lang, sizeof a->lang, t ? t->lang : "");
    a->n_words = 0;
    a->n_chars = 0;
    a->n_folded = -1;
    size_t cap = a->n <= INT_MAX ? a->n * 4 + 16 : 0; /* text_fold() takes no more */
    if (cap && a->cap_folded < cap) {
        if (cd_resize(&a->folded, cap, 1))
            return CD_ENOMEM;
        a->cap_folded = cap;
    }
    if (cap)
        a->n_folded = text_fold(a->text, a->n, a->folded, a->cap_folded);
    int rc = split_words(a->text, a->n, word_record, &c);
    if (rc)
        a->n_words = 0;
    return rc;
}

void text_analysis_free(struct text_analysis *a)
{
    if (!a)
        return;
    free(a->words);
    free(a->chars);
    free(a->folded);
    memset(a, 0, sizeof *a);
}

const char *text_analysis_folded(const struct text_analysis *a)
{
    return a->n_folded >= 0 ? a->folded : NULL;
}

int text_analysis_tokens(const struct text_analysis *a, int flags, text_token_cb cb, void *ctx)
{
    for (int i = 0; i < a->n_words; i++) {
        const struct text_word *w = &a->words[i];
        if (!(flags & TEXT_KEEP_STOPWORDS) && w->is_stopword)
            continue;
        int rc = flags & TEXT_NO_STEM ? cb(ctx, a->chars + w->fold_at, w->n_fold, w->start, w->end)
                                      : cb(ctx, a->chars + w->stem_at, w->n_stem, w->start, w->end);
        if (rc)
            return rc;
    }
    return 0;
}

int text_analysis_is_for(const struct text_analysis *a, const char *lang)
{
    char code[16];

    if (!a->lang[0])
        return 0;
    lang_normalize(lang, code);
    return strcmp(code, a->lang) == 0;
}

int text_fold(const char *s, size_t n, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0;
    size_t i = 0;

    if (!out || cap == 0 || n > INT_MAX || (!s && n))
        return -1;
    while (i < n) {
        char tmp[8];
        const char *bytes = tmp;
        size_t k = 0;
        int32_t cp;
        int step = utf8_decode(p + i, n - i, &cp);

        if (cp < 0) {
            tmp[0] = '?';
            k = 1;
        } else if (cp < 0x80) {
            unsigned a = ascii_word((unsigned)cp);
            tmp[0] = (char)(a ? a : (unsigned)cp);
            k = 1;
        } else {
            uint32_t lower;
            uint32_t fold;
            if (classify((uint32_t)cp, &lower, &fold) == CH_SEP) {
                bytes = s + i;
                k = (size_t)step;
            } else if (fold == FOLD_DROP) {
                k = 0;
            } else if (fold >= FOLD_MULTI && fold < FOLD_MULTI + N_FOLD_MULTI) {
                bytes = fold_multi[fold - FOLD_MULTI];
                k = strlen(bytes);
            } else {
                k = (size_t)utf8_encode(fold, tmp);
            }
        }
        if (len + k + 1 > cap || len + k > INT_MAX)
            return -1;
        memcpy(out + len, bytes, k);
        len += k;
        i += (size_t)step;
    }
    out[len] = '\0';
    return (int)len;
}

int text_lang_code(const char *tag, char *code)
{
    size_t n = 0, len = tag ? strlen(tag) : 0;
    code[0] = '\0';
    if (len < 2 || len > 15)
        return 0;
    while (n < 4 && ((tag[n] >= 'a' && tag[n] <= 'z') || (tag[n] >= 'A' && tag[n] <= 'Z')))
        n++;
    if (n < 2 || n > 3)
        return 0;
    for (size_t i = n; i < len;) {
        if (tag[i] != '-' && tag[i] != '_')
            return 0;
        size_t k = ++i;
        while (i < len && ((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= 'A' && tag[i] <= 'Z') ||
                           (tag[i] >= '0' && tag[i] <= '9')))
            i++;
        if (i - k < 1 || i - k > 8)
            return 0;
    }
    for (size_t i = 0; i < n; i++)
        code[i] = (char)(tag[i] | 0x20);
    code[n] = '\0';
    return 1;
}

int text_lang_supported(const char *tag)
{
    char code[4];
    struct sb_stemmer *stemmer;

    if (!tag || !*tag)
        return 1;
    if (!text_lang_code(tag, code))
        return 0;
    if (stop_list_for(code))
        return 1;
    stemmer = sb_stemmer_new(code, "UTF_8");
    if (!stemmer)
        return 0;
    sb_stemmer_delete(stemmer);
    return 1;
}

int text_is_stopword(const char *lang, const char *word, size_t n)
{
    char code[16];
    const struct stop_list *list;

    if (!word)
        return 0;
    lang_normalize(lang, code);
    list = stop_list_for(code);
    return list ? stop_find(list, word, n) : 0;
}
