/* text: the one tokenizer every part of caredesk sees text through.
 *
 * Unicode case and diacritic folding ("Réembolsé" -> "reembolse"), word split,
 * per-language stop words and Snowball stemming (libstemmer). The KB's FTS5
 * index, the intent rules and the intent model all call this, so "refunds",
 * "Refunded" and "refund" are one token everywhere. A customer's message is
 * analysed once (text_analyse(): its words, folded forms and stems, and the
 * folded text) and that one value is handed to the rules, the model and the KB.
 *
 * A struct text_tokenizer holds one libstemmer stemmer, whose result buffer is
 * overwritten by each call: an instance is not thread-safe; make one per
 * thread (or per FTS5 tokenizer instance). */
#ifndef CD_TEXT_H
#define CD_TEXT_H

#include <stddef.h>

/* Flags for text_tokenize(). */
#define TEXT_KEEP_STOPWORDS 0x01 /* emit stop words too (the intent model wants "why"/"how") */
#define TEXT_NO_STEM        0x02 /* fold only, do not stem */

/* Longest token emitted, in bytes; longer words are truncated at a UTF-8
 * boundary. */
#define TEXT_MAX_TOKEN 64

struct text_tokenizer;

/* Called once per token with the folded (and stemmed) token, not
 * NUL-terminated and valid only during the call, and the byte range
 * [start, end) of the original word in the input. A non-zero return stops
 * tokenizing and is returned by text_tokenize(). */
typedef int (*text_token_cb)(void *ctx, const char *token, int n_token, int start, int end);

/* Creates a tokenizer for a language code ("en", "es", "fr", "de", "pt",
 * "it", "nl", and any other language libstemmer knows by ISO 639-1 code).
 * NULL or "" means "en". An unknown language gets folding and no stemming or
 * stop words. Returns NULL only when out of memory. */
struct text_tokenizer *text_tokenizer_new(const char *lang);
void text_tokenizer_free(struct text_tokenizer *t);

/* The language this tokenizer stems for ("en", ...). */
const char *text_tokenizer_lang(const struct text_tokenizer *t);

/* A few tokenizers kept by language tag, for a caller that sees messages in several languages
 * interleaved (triage, intent classification). Starts zeroed ({0}); not thread-safe. */
#define TEXT_TOKENIZERS_MAX 4
struct text_tokenizers {
    struct text_tokenizer *tok[TEXT_TOKENIZERS_MAX];
    char lang[TEXT_TOKENIZERS_MAX][16];
    int n;
};

/* Returns the tokenizer for lang (NULL or "": "en"), made on first use; when all slots are
 * taken the last one is replaced (a tokenizer it returned earlier is then freed). Returns NULL
 * only when out of memory (the cache is unchanged). */
struct text_tokenizer *text_tokenizers_get(struct text_tokenizers *c, const char *lang);

/* Frees every tokenizer in c and zeroes it. Accepts NULL. */
void text_tokenizers_free(struct text_tokenizers *c);

/* Splits n bytes of UTF-8 at s into words (letters and digits; an apostrophe
 * inside a word is dropped: "don't" -> "dont"), folds, drops stop words unless
 * TEXT_KEEP_STOPWORDS, stems unless TEXT_NO_STEM, and calls cb for each.
 * Invalid UTF-8 bytes act as separators; never fails on any input.
 * Returns 0, or the first non-zero value cb returned. */
int text_tokenize(struct text_tokenizer *t, const char *s, size_t n, int flags, text_token_cb cb,
                  void *ctx);

/* One message analysed once (text_analyse()): every word with its place, folded form, stem
 * and stop-word flag, and the folded message. Triage computes it once per message and hands it
 * to the intent rules, the model's features and the KB's query, so none of them splits, folds
 * or stems the message again; each replays the token stream it needs with
 * text_analysis_tokens(), which gives exactly what text_tokenize() would. */
struct text_word {
    int start, end;      /* byte range [start, end) of the word in the message */
    int fold_at, n_fold; /* folded form (TEXT_NO_STEM): chars + fold_at, n_fold bytes */
    int stem_at, n_stem; /* stemmed token (the default): chars + stem_at, n_stem bytes */
    int is_stopword;     /* dropped unless TEXT_KEEP_STOPWORDS */
};

struct text_analysis {
    const char *text; /* the message, borrowed: it must outlive the analysis's use */
    size_t n;
    char lang[16]; /* the tokenizer's language, "" for none (fold only) */
    struct text_word *words;
    int n_words;
    char *chars; /* the bytes of every word's folded form and stem, not NUL-terminated */
    size_t n_chars;
    char *folded;  /* text_fold() of the whole message; see text_analysis_folded() */
    int n_folded;  /* its length, -1 if it did not fit */
    int cap_words; /* allocated sizes, kept from one message to the next */
    size_t cap_chars;
    size_t cap_folded;
};

/* Analyses n bytes of UTF-8 at s with tokenizer t (NULL: fold only, no stems or stop words)
 * into a, which starts zeroed ({0}) and may be reused for message after message: its buffers
 * grow and are kept. s is borrowed and must stay valid while a is used. Returns 0, or
 * CD_ENOMEM (a then holds no words). Free with text_analysis_free(). */
int text_analyse(struct text_tokenizer *t, const char *s, size_t n, struct text_analysis *a);

/* Frees a's buffers (not a itself) and zeroes it. Accepts NULL. */
void text_analysis_free(struct text_analysis *a);

/* Calls cb for each token text_tokenize(t, text, n, flags, ...) would emit, in the same order
 * with the same bytes and ranges, without tokenizing again. Returns 0, or the first non-zero
 * value cb returned (which stops the replay). */
int text_analysis_tokens(const struct text_analysis *a, int flags, text_token_cb cb, void *ctx);

/* The whole message folded by text_fold() (NUL-terminated, valid while a is unchanged), or
 * NULL if it did not fit. */
const char *text_analysis_folded(const struct text_analysis *a);

/* Returns 1 if a tokenizer made for lang gives the tokens a holds (same language after
 * normalising: "pt-BR" is "pt"), else 0: then lang's tokenizer must see the text itself. */
int text_analysis_is_for(const struct text_analysis *a, const char *lang);

/* Folds n bytes of UTF-8 to lower case without diacritics into out (at most
 * cap bytes including the NUL). Returns the folded length, or -1 if it did not
 * fit. Invalid bytes are copied as '?'. */
int text_fold(const char *s, size_t n, char *out, size_t cap);

/* The one language-tag check, for chat frames, KB articles and intents: a tag is an ISO 639
 * code of 2 or 3 ASCII letters (any case), optionally followed by subtags of 1 to 8 letters or
 * digits, each after a '-' or '_' ("es", "EN", "es-ES", "pt_BR", "es-419"), at most 15 bytes.
 * Returns 1 and the lower-case ISO 639 code in code (at least 4 bytes: "es"), or 0 (code is
 * then ""). */
int text_lang_code(const char *tag, char *code);

/* Returns 1 if tag passes text_lang_code() and its language has stemming or stop words (or
 * tag is NULL or "": English), else 0. */
int text_lang_supported(const char *tag);

/* Returns 1 if the folded word (n bytes) is a stop word in lang, else 0. */
int text_is_stopword(const char *lang, const char *word, size_t n);

#endif
