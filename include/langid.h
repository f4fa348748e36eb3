/* langid: which language a short customer message is in, among the languages a
 * deployment has content for (its intents and KB articles).
 *
 * DESIGN. A profile per candidate language is learned from that deployment's
 * own text (intent examples, article titles, bodies and questions): counts of
 * byte 1- to 4-grams of the lower-cased text, with word boundaries, hashed
 * into a fixed table. A message is scored by multinomial naive Bayes over its
 * n-grams, plus a bonus for each word that is a stop word (text.h) of one
 * candidate language and not of the others. Restricting the choice to the
 * candidates is what makes one- to five-word messages work: "hola, mi pedido"
 * has to be told from English, not from Catalan or Galician. Measured against
 * libexttextcat on short messages in docs/triage.md (bench/lang_eval.c).
 *
 * Build a profile with langid_add() (any number of times per language) then
 * langid_train(); after that the profile is immutable and langid_detect() may
 * be called from any number of threads. */
#ifndef CD_LANGID_H
#define CD_LANGID_H

#include <stddef.h>

struct intents;
struct kb;

#define LANGID_MAX_LANGS 16

/* Default confidence below which a detection is not trusted (the caller
 * then uses its default language): on the shipped demo's cross-validated
 * examples, detections at or above it are right >= 99% of the time. */
#define LANGID_MIN_CONFIDENCE 0.9

struct langid;

struct langid_result {
    char lang[8];      /* the most likely candidate ("" when there is none) */
    double confidence; /* its posterior probability among the candidates, 0..1 */
    int n_features;    /* n-grams the message gave (0: no letters at all) */
};

struct langid *langid_new(void);
void langid_free(struct langid *id);

/* Adds n bytes of UTF-8 text in lang (an ISO 639-1 code, "pt-BR" counts as
 * "pt") to that language's profile; the language becomes a candidate.
 * Returns 0, CD_EINVAL (bad code, too many languages, or already trained)
 * or CD_ENOMEM. */
int langid_add(struct langid *id, const char *lang, const char *text, size_t n);

/* Adds every example of every intent in set (each in its intent's language). */
int langid_add_intents(struct langid *id, const struct intents *set);

/* Adds the title, body and questions of the KB's published articles, up to
 * about 256 KB of text per language. */
int langid_add_kb(struct langid *id, struct kb *kb);

/* Finishes the profiles. Returns 0 or CD_ENOMEM. */
int langid_train(struct langid *id);

int langid_count(const struct langid *id);
const char *langid_lang(const struct langid *id, int i);

/* Scores n bytes of UTF-8 against the trained candidates. With one
 * candidate, that one with confidence 1; with none, lang "" and confidence 0.
 * Never fails on any input. */
void langid_detect(const struct langid *id, const char *text, size_t n, struct langid_result *out);

/* langid_new(), the intents' examples, the KB's articles, langid_train():
 * the profile of a deployment. Returns NULL when out of memory. */
struct langid *langid_build(const struct intents *set, struct kb *kb);

/* One message's language among those of set and kb (langid_build()), or fallback when not
 * detected with LANGID_MIN_CONFIDENCE; written to lang, which is returned. */
const char *langid_guess(const struct intents *set, struct kb *kb, const char *text, size_t n,
                         const char *fallback, char lang[8]);

/* ---- a conversation's language, decided over its first messages ---- */

/* Messages after which an undecided conversation keeps the fallback. */
#define LANGID_PROBE_MESSAGES 3

struct langid_probe;

struct langid_probe *langid_probe_new(void);
void langid_probe_free(struct langid_probe *p);

/* Adds one customer message and detects over the messages so far. Returns 1
 * when the language is decided: confidently detected (lang), or still not
 * after LANGID_PROBE_MESSAGES messages (lang = fallback); the probe is then
 * no longer needed. Returns 0 while undecided, with lang = fallback, the
 * language to use for this message. id NULL or with at most one candidate
 * decides at once. */
int langid_probe_add(struct langid_probe *p, const struct langid *id, const char *text, size_t n,
                     const char *fallback, char lang[8]);

#endif
