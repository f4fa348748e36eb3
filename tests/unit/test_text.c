/* Tests for text: folding, word split, offsets, stop words, stemming and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cd.h"
#include "text.h"
#include "testlib.h"

#define MAX_TOKENS 4096

/* Every token the tokenizer produced, joined by spaces, with its offsets. */
struct collected {
    char joined[65536];
    size_t len;
    int n;
    int start[MAX_TOKENS];
    int end[MAX_TOKENS];
    int stop_after; /* return 7 from the callback after this many tokens (0: never) */
};

static int collect_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    struct collected *c = ctx;
    assert_true(n_token > 0);
    assert_true(n_token <= TEXT_MAX_TOKEN);
    assert_true(start >= 0 && start < end);
    if (c->len + (size_t)n_token + 2 < sizeof c->joined) {
        if (c->len)
            c->joined[c->len++] = ' ';
        memcpy(c->joined + c->len, token, (size_t)n_token);
        c->len += (size_t)n_token;
        c->joined[c->len] = '\0';
    }
    if (c->n < MAX_TOKENS) {
        c->start[c->n] = start;
        c->end[c->n] = end;
    }
    c->n++;
    if (c->stop_after && c->n >= c->stop_after)
        return 7;
    return 0;
}

/* Tokenizes s in lang with flags and returns the tokens joined by spaces (static buffer). */
static struct collected *tokens(const char *lang, const char *s, int flags)
{
    static struct collected c;
    memset(&c, 0, sizeof c);
    struct text_tokenizer *t = text_tokenizer_new(lang);
    assert_non_null(t);
    assert_int_equal(text_tokenize(t, s, strlen(s), flags, collect_cb, &c), 0);
    text_tokenizer_free(t);
    return &c;
}

static void assert_tokens(const char *lang, const char *s, int flags, const char *expected)
{
    struct collected *c = tokens(lang, s, flags);
    if (strcmp(c->joined, expected) != 0)
        fail_msg("%s: \"%s\" gave \"%s\", expected \"%s\"", lang, s, c->joined, expected);
}

static void assert_fold(const char *s, const char *expected)
{
    char out[256];
    int n = text_fold(s, strlen(s), out, sizeof out);
    assert_int_equal(n, (int)strlen(expected));
    assert_string_equal(out, expected);
}

static void test_fold_case_and_diacritics(void **state)
{
    (void)state;
    assert_fold("Réembolsé", "reembolse");
    assert_fold("Straße ÆON Œuvre Ørsted", "strasse aeon oeuvre orsted");
    assert_fold("Łódź Señor Ça", "lodz senor ca");
    assert_fold("ÀÁÂÃÄÅ àáâãäå ÿŸ", "aaaaaa aaaaaa yy");
    assert_fold("Crème brûlée, s'il vous plaît!", "creme brulee, s'il vous plait!");
    assert_fold("Ἀθῆναι ΚΑΛΗΜΈΡΑ Άδεια ὁδός", "αθηναι καλημερα αδεια οδοσ");
    assert_fold("ПРИВЕТ Ёлка Й", "привет елка й");
    assert_fold("ẞ ĳ ǅ ŀ", "ss ij dz l");
    assert_fold("cafe\xcc\x81", "cafe"); /* combining acute accent */
    assert_fold("日本語 123 ABC", "日本語 123 abc");
    assert_fold("a\xff"
                "b\xc3",
                "a?b?");
    assert_fold("", "");
}

static void test_fold_capacity(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(text_fold("abcdefg", 7, out, sizeof out), 7);
    assert_int_equal(text_fold("abcdefgh", 8, out, sizeof out), -1);
    /* "ß" grows to "ss": 4 characters become 8 bytes, which with the NUL do not fit. */
    assert_int_equal(text_fold("ßßßß", strlen("ßßßß"), out, sizeof out), -1);
    assert_int_equal(text_fold("ßßß", strlen("ßßß"), out, sizeof out), 6);
    assert_string_equal(out, "ssssss");
    assert_int_equal(text_fold("a", 1, out, 0), -1);
}

static void test_english_stemming(void **state)
{
    (void)state;
    assert_tokens("en", "refunds refunded refund Refund REFUNDING", 0,
                  "refund refund refund refund refund");
    assert_tokens("en", "Cancelling cancelled cancellation", 0, "cancel cancel cancel");
    assert_tokens("en", "passwords Password", 0, "password password");
    assert_tokens("en", "refunds", TEXT_NO_STEM, "refunds");
    assert_tokens(NULL, "Refunds", 0, "refund");
}

static void test_other_language_stemming(void **state)
{
    (void)state;
    assert_tokens("es", "canción canciones Canción CANCIONES", 0,
                  "cancion cancion cancion cancion");
    assert_tokens("es", "reembolso reembolsar reembolsé", 0, "reembols reembols reembols");
    assert_tokens("fr", "remboursement rembourser remboursé Remboursements", 0,
                  "rembours rembours rembours rembours");
    assert_tokens("fr", "Réembolser", 0, "reembols");
    assert_tokens("de", "Rückerstattung Rückerstattungen RUCKERSTATTUNG", 0,
                  "ruckerstatt ruckerstatt ruckerstatt");
    assert_tokens("de", "Bestellung Bestellungen Häuser Haus", 0, "bestell bestell haus haus");
    assert_tokens("pt", "reembolsos reembolso", 0, "reembols reembols");
    assert_tokens("pt-BR", "reembolsos", 0, "reembols");
    assert_tokens("el", "Καλημέρα ΚΑΛΗΜΕΡΑ", 0, "καλημερ καλημερ");
}

static void test_stopwords(void **state)
{
    (void)state;
    assert_tokens("en", "How do I cancel the order and not get charged?", 0,
                  "how cancel order not get charg");
    assert_tokens("en", "why where when what no", 0, "whi where when what no");
    assert_tokens("en", "I can't log out, it's down", 0, "cant log out down");
    assert_tokens("en", "the and of", TEXT_KEEP_STOPWORDS | TEXT_NO_STEM, "the and of");
    assert_tokens("es", "no puedo cancelar el pedido", 0, "no pued cancel ped");
    assert_tokens("de", "ich kann die Bestellung nicht stornieren", 0, "kann bestell nicht storni");
    assert_true(text_is_stopword("en", "the", 3));
    assert_true(text_is_stopword("en", "thereof", 5)); /* "there" */
    assert_false(text_is_stopword("en", "thereof", 7));
    assert_false(text_is_stopword("en", "not", 3));
    assert_false(text_is_stopword("en", "how", 3));
    assert_false(text_is_stopword("en", "cancel", 6));
    assert_false(text_is_stopword("en", "id", 2));
    assert_true(text_is_stopword("es", "de", 2));
    assert_false(text_is_stopword("es", "no", 2));
    assert_true(text_is_stopword("es", "mas", 3)); /* "más", folded */
    assert_true(text_is_stopword("fr", "etaient", 7));
    assert_false(text_is_stopword("fr", "pas", 3));
    assert_true(text_is_stopword("de", "fur", 3));
    assert_false(text_is_stopword("de", "nicht", 5));
    assert_true(text_is_stopword("pt", "nao", 3) == 0);
    assert_true(text_is_stopword("it", "della", 5));
    assert_true(text_is_stopword("nl", "het", 3));
    assert_false(text_is_stopword("xx", "the", 3));
    assert_true(text_is_stopword(NULL, "the", 3));
    assert_false(text_is_stopword("en", NULL, 0));
}

static void test_offsets_point_at_input(void **state)
{
    (void)state;
    const char *s = "Héllo wörld, ÉTÉ!";
    struct collected *c = tokens("en", s, TEXT_NO_STEM);
    assert_string_equal(c->joined, "hello world ete");
    assert_int_equal(c->n, 3);
    assert_int_equal(c->start[0], 0);
    assert_int_equal(c->end[0], 6);
    assert_memory_equal(s + c->start[0], "Héllo", 6);
    assert_int_equal(c->start[1], 7);
    assert_int_equal(c->end[1], 13);
    assert_memory_equal(s + c->start[1], "wörld", 6);
    assert_memory_equal(s + c->start[2], "ÉTÉ", (size_t)(c->end[2] - c->start[2]));
    assert_int_equal(c->end[2], (int)strlen(s) - 1);
}

static void test_apostrophes(void **state)
{
    (void)state;
    assert_tokens("en", "don't", TEXT_NO_STEM, "dont");
    assert_tokens("en", "don\xe2\x80\x99t", TEXT_NO_STEM, "dont");
    assert_tokens("en", "'quoted' users' ''", TEXT_NO_STEM, "quoted users");
    struct collected *c = tokens("en", "'don't'", TEXT_NO_STEM);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->start[0], 1);
    assert_int_equal(c->end[0], 6);
    assert_tokens("fr", "l'adresse d'expédition", TEXT_NO_STEM | TEXT_KEEP_STOPWORDS,
                  "ladresse dexpedition");
}

static void test_separators(void **state)
{
    (void)state;
    assert_tokens("en", "hello\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbdworld!!!foo...bar", TEXT_NO_STEM,
                  "hello world foo bar");
    assert_tokens("en", "\xf0\x9f\x91\x8d\xef\xb8\x8f \xe2\x9d\xa4\xef\xb8\x8f", 0, "");
    assert_tokens("en", "a-b_c/d@e.com #42 $5,00 100%", TEXT_NO_STEM | TEXT_KEEP_STOPWORDS,
                  "a b c d e com 42 5 00 100");
    assert_tokens("en", "order 12345 café\xcc\x81", TEXT_NO_STEM, "order 12345 cafe");
    assert_tokens("en", "\xcc\x81\xcc\x81 x", TEXT_NO_STEM, "x");
    assert_tokens("xx", "日本語のテキスト Hello", 0, "日本語のテキスト hello");
    assert_tokens("en", "", 0, "");
    assert_tokens("en", " \t\n,.;", 0, "");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    assert_tokens("en",
                  "abc\xff"
                  "def\xc3",
                  TEXT_NO_STEM, "abc def");
    assert_tokens("en", "x\xc0\xafy", TEXT_NO_STEM, "x y");         /* overlong '/' */
    assert_tokens("en", "x\xed\xa0\x80y", TEXT_NO_STEM, "x y");     /* surrogate */
    assert_tokens("en", "x\xf4\x90\x80\x80y", TEXT_NO_STEM, "x y"); /* > U+10FFFF */
    assert_tokens("en", "caf\xc3", TEXT_NO_STEM, "caf");            /* truncated é */
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    struct text_tokenizer *t = text_tokenizer_new("de");
    assert_non_null(t);
    static struct collected c;
    unsigned seed = 12345;
    char buf[512];
    char folded[4096];
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(round % 300);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            /* Mix of ASCII, UTF-8 lead bytes and continuation bytes. */
            buf[i] = (char)((r & 3) == 0 ? 'a' + (r >> 2) % 26 : (r >> 3) & 0xFF);
        }
        /* Tokenize a malloc'd copy so ASan sees any read past the end. */
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        memset(&c, 0, sizeof c);
        int flags = round % 4;
        assert_int_equal(text_tokenize(t, copy, n, flags, collect_cb, &c), 0);
        int prev_end = 0;
        for (int k = 0; k < c.n && k < MAX_TOKENS; k++) {
            assert_true(c.start[k] >= prev_end);
            assert_true(c.end[k] <= (int)n);
            prev_end = c.end[k];
        }
        assert_true(cd_utf8_valid(c.joined, c.len));
        int f = text_fold(copy, n, folded, sizeof folded);
        assert_true(f >= 0);
        assert_true(cd_utf8_valid(folded, (size_t)f));
        free(copy);
    }
    text_tokenizer_free(t);
}

/* Long words, each a letter repeated: cut at TEXT_MAX_TOKEN bytes, never inside a letter. */
static const struct {
    const char *lang, *letter;
    int n_letters, flags, len, end;
} long_words[] = {
    {"en", "a", 100, TEXT_NO_STEM, TEXT_MAX_TOKEN, 100},
    {"xx", "ж", 50, 0, 64, 100}, /* 100 bytes of Cyrillic: 32 letters fit */
    {"en", "語", 30, 0, 63, 90}, /* 90 bytes of CJK, 3 each: 21 fit */
};

static void test_long_words_truncated(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof long_words / sizeof long_words[0]; i++) {
        char s[512] = "";
        for (int k = 0; k < long_words[i].n_letters; k++)
            strcat(s, long_words[i].letter);
        struct collected *c = tokens(long_words[i].lang, s, long_words[i].flags);
        assert_int_equal(c->n, 1);
        assert_int_equal((int)c->len, long_words[i].len);
        assert_true(cd_utf8_valid(c->joined, c->len));
        assert_int_equal(c->end[0], long_words[i].end);
    }
}

static void test_large_input(void **state)
{
    (void)state;
    const char *sentence = "Customers asked how refunds work when orders arrive damaged. ";
    size_t n_sentence = strlen(sentence);
    size_t reps = 10240 / n_sentence + 1;
    char *s = malloc(reps * n_sentence + 1);
    assert_non_null(s);
    for (size_t i = 0; i < reps; i++)
        memcpy(s + i * n_sentence, sentence, n_sentence);
    s[reps * n_sentence] = '\0';
    assert_true(strlen(s) >= 10240);
    struct collected *c = tokens("en", s, 0);
    /* "when" stays; no word in the sentence is a stop word. */
    assert_int_equal(c->n, (int)reps * 9);
    assert_int_equal(c->end[c->n - 1], (int)(reps * n_sentence) - 2);
    free(s);
}

static void test_callback_stops_early(void **state)
{
    (void)state;
    static struct collected c;
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    struct text_tokenizer *t = text_tokenizer_new("en");
    const char *s = "one two three four";
    assert_int_equal(text_tokenize(t, s, strlen(s), TEXT_NO_STEM, collect_cb, &c), 7);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.joined, "one two");
    text_tokenizer_free(t);
}

/* The stem cache must give what the stemmer gives, for hits, misses and evictions. */
static void test_stem_cache_consistent(void **state)
{
    (void)state;
    static const char *const suffixes[] = {"s", "ing", "ed", "ation", "ly", "", "ness", "és"};
    static char text[65536];
    static char expected[65536];
    size_t len = 0;
    size_t n_expected = 0;
    struct text_tokenizer *fresh;
    for (int i = 0; i < 1500; i++) {
        char word[32];
        int k = snprintf(word, sizeof word, "%c%c%c%s", 'a' + i % 26, 'b' + (i / 26) % 25,
                         'c' + (i / 650) % 24, suffixes[i % 8]);
        memcpy(text + len, word, (size_t)k);
        len += (size_t)k;
        text[len++] = ' ';
        /* Each word alone, through a new tokenizer (an empty cache). */
        fresh = text_tokenizer_new("fr");
        static struct collected one;
        memset(&one, 0, sizeof one);
        assert_int_equal(text_tokenize(fresh, word, (size_t)k, 0, collect_cb, &one), 0);
        text_tokenizer_free(fresh);
        if (one.len) {
            if (n_expected)
                expected[n_expected++] = ' ';
            memcpy(expected + n_expected, one.joined, one.len);
            n_expected += one.len;
        }
    }
    text[len] = '\0';
    expected[n_expected] = '\0';
    struct text_tokenizer *t = text_tokenizer_new("fr");
    for (int pass = 0; pass < 3; pass++) {
        static struct collected c;
        memset(&c, 0, sizeof c);
        assert_int_equal(text_tokenize(t, text, len, 0, collect_cb, &c), 0);
        assert_string_equal(c.joined, expected);
    }
    text_tokenizer_free(t);
}

static void test_languages(void **state)
{
    (void)state;
    struct text_tokenizer *t = text_tokenizer_new(NULL);
    assert_string_equal(text_tokenizer_lang(t), "en");
    text_tokenizer_free(t);
    t = text_tokenizer_new("pt_BR");
    assert_string_equal(text_tokenizer_lang(t), "pt");
    text_tokenizer_free(t);
    t = text_tokenizer_new("German");
    assert_string_equal(text_tokenizer_lang(t), "de");
    text_tokenizer_free(t);
    text_tokenizer_free(NULL);
    assert_true(text_lang_supported("en"));
    assert_true(text_lang_supported("es"));
    assert_true(text_lang_supported("ru"));
    assert_true(text_lang_supported(""));
    assert_false(text_lang_supported("xx"));
    assert_false(text_lang_supported("a-very-long-language-name-that-is-not-one"));
    assert_true(text_lang_supported("es-ES"));
    assert_false(text_lang_supported("english")); /* a tokenizer alias, not a tag */
    /* The one language-tag check (chat hello, KB articles, intents). */
    static const struct {
        const char *tag, *code;
    } tags[] = {{"es", "es"},         {"EN", "en"},        {"es-ES", "es"}, {"pt_BR", "pt"},
                {"es-419", "es"},     {"fil", "fil"},      {"e", NULL},     {"english", NULL},
                {"es-", NULL},        {"es ES", NULL},     {"", NULL},      {"es-abcdefghi", NULL},
                {"zh-Hant-TW", "zh"}, {"de-DE-1996", "de"}};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        char code[4] = "x";
        int ok = text_lang_code(tags[i].tag, code);
        if (ok != (tags[i].code != NULL) || (ok && strcmp(code, tags[i].code)))
            fail_msg("text_lang_code(\"%s\") = %d \"%s\"", tags[i].tag, ok, code);
    }
    /* Unknown language: folding, no stemming, no stop words. */
    assert_tokens("xx", "The Refunds", 0, "the refunds");
    /* A NULL tokenizer folds only. */
    static struct collected c;
    memset(&c, 0, sizeof c);
    assert_int_equal(text_tokenize(NULL, "Ünïcode", strlen("Ünïcode"), 0, collect_cb, &c), 0);
    assert_string_equal(c.joined, "unicode");
}

/* Checks that the analysis of s by t replays, for every flag combination, exactly the tokens
 * (bytes and offsets) text_tokenize() gives, and holds text_fold()'s folded message. a is
 * reused from call to call, as triage does. */
static void assert_analysis_matches(struct text_tokenizer *t, const char *s, size_t n,
                                    struct text_analysis *a)
{
    static struct collected want, got;
    static char folded[4096];
    assert_int_equal(text_analyse(t, s, n, a), 0);
    for (int flags = 0; flags < 4; flags++) {
        memset(&want, 0, sizeof want);
        memset(&got, 0, sizeof got);
        assert_int_equal(text_tokenize(t, s, n, flags, collect_cb, &want), 0);
        assert_int_equal(text_analysis_tokens(a, flags, collect_cb, &got), 0);
        assert_int_equal(got.n, want.n);
        assert_int_equal((int)got.len, (int)want.len);
        assert_memory_equal(got.joined, want.joined, want.len);
        for (int k = 0; k < want.n && k < MAX_TOKENS; k++) {
            assert_int_equal(got.start[k], want.start[k]);
            assert_int_equal(got.end[k], want.end[k]);
        }
    }
    int f = text_fold(s, n, folded, sizeof folded);
    if (f >= 0 && n * 4 + 16 <= sizeof folded) {
        assert_non_null(text_analysis_folded(a));
        assert_int_equal(a->n_folded, f);
        assert_string_equal(text_analysis_folded(a), folded);
    }
}

/* Messages in several languages, with apostrophes, stop words, emoji and a cut UTF-8 letter,
 * and how many words (and of them stop words) each has. */
static const struct {
    const char *lang, *text;
    int n_words, n_stopwords;
} analysis_cases[] = {
    {"en", "I don't want the refunds, I WANT a person!!", 9, 4},
    {"en", "How do I sign up? The site's down and my e-mail won't log out", 15, 5},
    {"es", "¿Cómo cancelo mis pedidos? No quiero las canciones", 8, 2},
    {"de", "Warum ist die Rückerstattung nicht da? Straße", 7, 3},
    {"fr", "Je n'ai pas reçu mon colis, pourquoi ?", 7, 2},
    {"xx", "The Refunds of Ünïcode", 4, 0},
    {"en", "   ", 0, 0},
    {"en", "", 0, 0},
    {"en", "\xf0\x9f\x98\x80 emoji\xe2\x80\x99s and caf\xc3", 3, 1},
};

static void test_analysis_is_the_tokenizer(void **state)
{
    (void)state;
    struct text_analysis a = {0};
    for (size_t i = 0; i < sizeof analysis_cases / sizeof analysis_cases[0]; i++) {
        const char *lang = analysis_cases[i].lang, *text = analysis_cases[i].text;
        struct text_tokenizer *t = text_tokenizer_new(lang);
        assert_non_null(t);
        assert_analysis_matches(t, text, strlen(text), &a);
        assert_true(text_analysis_is_for(&a, lang));
        int n_stopwords = 0;
        for (int k = 0; k < a.n_words; k++)
            n_stopwords += a.words[k].is_stopword;
        assert_int_equal(a.n_words, analysis_cases[i].n_words);
        assert_int_equal(n_stopwords, analysis_cases[i].n_stopwords);
        text_tokenizer_free(t);
    }
    /* Hostile bytes, with a German tokenizer (stemming that needs accents). */
    struct text_tokenizer *t = text_tokenizer_new("de");
    char buf[300];
    unsigned seed = 777;
    for (int round = 0; round < 500; round++) {
        size_t n = (size_t)(round % 300);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            buf[i] = (char)((r & 3) == 0 ? 'a' + (r >> 2) % 26 : (r >> 3) & 0xFF);
        }
        assert_analysis_matches(t, buf, n, &a);
    }
    text_tokenizer_free(t);
    text_analysis_free(&a);
    text_analysis_free(NULL);
}

static void test_analysis_language_and_stop(void **state)
{
    (void)state;
    struct text_analysis a = {0};
    struct text_tokenizer *t = text_tokenizer_new("pt_BR");
    const char *s = "the refunds of my orders";
    assert_int_equal(text_analyse(t, s, strlen(s), &a), 0);
    /* A tokenizer made for any tag of the same language gives the same tokens. */
    assert_true(text_analysis_is_for(&a, "pt"));
    assert_true(text_analysis_is_for(&a, "pt-PT"));
    assert_false(text_analysis_is_for(&a, "en"));
    text_tokenizer_free(t);
    /* Without a tokenizer: folded words, fit for no language's stems. */
    assert_int_equal(text_analyse(NULL, s, strlen(s), &a), 0);
    assert_int_equal(a.n_words, 5);
    assert_false(text_analysis_is_for(&a, "en"));
    /* The callback's non-zero value stops the replay and is returned. */
    static struct collected c;
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(text_analysis_tokens(&a, 0, collect_cb, &c), 7);
    assert_int_equal(c.n, 2);
    text_analysis_free(&a);
}

static void test_tokenizers_by_language(void **state)
{
    (void)state;
    struct text_tokenizers c = {0};
    struct text_tokenizer *en = text_tokenizers_get(&c, "en");
    assert_non_null(en);
    assert_ptr_equal(text_tokenizers_get(&c, NULL), en);
    assert_ptr_equal(text_tokenizers_get(&c, ""), en);
    struct text_tokenizer *es = text_tokenizers_get(&c, "es");
    assert_ptr_not_equal(es, en);
    assert_string_equal(text_tokenizer_lang(es), "es");
    assert_non_null(text_tokenizers_get(&c, "de"));
    assert_non_null(text_tokenizers_get(&c, "fr"));
    /* Full: the last slot is replaced, the others stay. */
    struct text_tokenizer *nl = text_tokenizers_get(&c, "nl");
    assert_string_equal(text_tokenizer_lang(nl), "nl");
    assert_int_equal(c.n, TEXT_TOKENIZERS_MAX);
    assert_ptr_equal(text_tokenizers_get(&c, "en"), en);
    assert_ptr_equal(text_tokenizers_get(&c, "es"), es);
    text_tokenizers_free(&c);
    assert_int_equal(c.n, 0);
    text_tokenizers_free(NULL);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_fold_case_and_diacritics),
                    cmocka_unit_test(test_fold_capacity),
                    cmocka_unit_test(test_english_stemming),
                    cmocka_unit_test(test_other_language_stemming),
                    cmocka_unit_test(test_stopwords),
                    cmocka_unit_test(test_offsets_point_at_input),
                    cmocka_unit_test(test_apostrophes),
                    cmocka_unit_test(test_separators),
                    cmocka_unit_test(test_invalid_utf8),
                    cmocka_unit_test(test_random_bytes_never_crash),
                    cmocka_unit_test(test_long_words_truncated),
                    cmocka_unit_test(test_large_input),
                    cmocka_unit_test(test_callback_stops_early),
                    cmocka_unit_test(test_stem_cache_consistent),
                    cmocka_unit_test(test_languages),
                    cmocka_unit_test(test_analysis_is_the_tokenizer),
                    cmocka_unit_test(test_analysis_language_and_stop),
                    cmocka_unit_test(test_tokenizers_by_language),
                });
}
