/* triage: turns one customer message, its conversation so far, the intent
 * evidence (rules and model, intents.h) and the KB's best article (kb.h) into
 * one decision: answer, clarify or hand off, with a calibrated confidence and
 * the evidence behind it.
 *
 * DESIGN. A wrong confident answer costs more than a handoff, so the policy
 * is ordered from the safest rule down: a request for a person, a sensitive
 * intent, or a conversation that is going badly (second failed clarification,
 * "that didn't help", repeated messages, rising anger) hands off before any
 * score is looked at; then a rule hit (unless P(in scope) puts the message
 * clearly out of scope) or a model probability >= t_answer answers; a
 * probability in [t_clarify, t_answer) offers the top candidates; a how-to
 * question whose best KB passage scores >= t_kb is answered from the KB;
 * anything else hands off to the queue of the best guess, or "general".
 *
 * A struct triage is used from one thread at a time (the server's service
 * thread): it owns a tokenizer scratch and borrows the KB, whose connection
 * is single-threaded. The intent set inside it is immutable; a retrained set
 * is built elsewhere and put in with triage_swap_intents(). */
#ifndef CD_TRIAGE_H
#define CD_TRIAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "scope.h"

enum triage_action {
    TRIAGE_ANSWER = 0,
    TRIAGE_CLARIFY = 1,
    TRIAGE_HANDOFF = 2,
};

/* Thresholds and policy; a zero field means the default shown. */
struct triage_settings {
    double t_answer;           /* answer at confidence >= this, default 0.55 */
    double t_clarify;          /* clarify in [t_clarify, t_answer), default 0.25 */
    double t_kb;               /* KB passage answers at score >= this, default 0.5 */
    double t_oos;              /* p(out-of-scope class) >= this hands off, default 0.5 */
    double t_in_scope;         /* P(in scope) below this hands off, default 0.5 (0: off) */
    int is_fixed_prior;        /* 1: P(in scope) stays at the assumed out-of-scope share
                                * instead of the share measured on the traffic (scope.h) */
    double t_known;            /* out of scope if fewer than this share of the message's
                                * words and word pairs occur in the examples; default 0
                                * (off); eval intents --val picks it */
    double t_clarify_mass;     /* clarify only if the choices together hold this much
                                * probability (narrowed down to a few), default 0.5 */
    int max_clarify;           /* failed clarifications before handoff, default 1 */
    int max_not_helped;        /* "that didn't help" before handoff, default 1 */
    int max_repeats;           /* repeated messages before handoff, default 1 */
    int anger_handoff;         /* anger level (0-3) that hands off, default 2 */
    int n_candidates;          /* clarify choices, 2..3, default 3 */
    const char *default_queue; /* default "general" */
};

/* Fills s with the defaults. */
void triage_settings_default(struct triage_settings *s);

/* What the conversation has been like so far; kept by chat.c per
 * conversation and passed in with each message. All zero for a new one. */
struct triage_context {
    int n_clarify;           /* clarifications asked and not resolved */
    int n_not_helped;        /* consecutive "didn't help" (messages or feedback) */
    int n_repeats;           /* consecutive repeats of the same message (see text_key) */
    int anger;               /* highest anger level (0-3) seen so far */
    const char *last_intent; /* intent of the previous decision, or NULL */
    int is_again;            /* the question is decided again ("that didn't help"): it was
                              * counted in the out-of-scope share the first time */
};

/* What this one message says about the conversation, for chat.c to fold into
 * the next struct triage_context. */
struct triage_signals {
    int is_person_request; /* asks for a human agent */
    int is_not_helped;     /* "that didn't help", "wrong answer" ... */
    int anger;             /* 0 calm .. 3 abusive / shouting */
    int is_howto;          /* a how/where/can-I question */
    uint64_t text_key;     /* hash of the folded, stemmed words: equal keys = a repeat */
};

#define TRIAGE_MAX_ARTICLES   3
#define TRIAGE_MAX_CANDIDATES 3

struct triage_article {
    char id[KB_ID_MAX];
    char *title;             /* owned by the decision */
    char url[KB_ID_MAX + 8]; /* "/kb/ID" */
    double score;
};

struct triage_candidate {
    char intent[INTENT_NAME_MAX];
    char *label; /* the intent's description (or name), owned by the decision */
    double probability;
};

/* Why the decision is what it is. */
struct triage_evidence {
    char rule_intent[INTENT_NAME_MAX];                    /* "" if no rule matched */
    char rule[96];                                        /* the pattern or regex that matched */
    struct triage_candidate model[TRIAGE_MAX_CANDIDATES]; /* model's top scores */
    int n_model;
    double p_oos;
    double p_in;                /* P(in scope), learned from the examples by cross-fitting,
                                 * at the traffic's measured out-of-scope share */
    double oos_share;           /* that share */
    double known_share;         /* share of the message's words and word pairs seen in training */
    char kb_article[KB_ID_MAX]; /* best article; "" if none, or if an intent
                                 * settled the message and the KB was not searched */
    double kb_score;            /* the share of the question's words its passage covers, each
                                 * weighed by its rarity among the articles */
    double kb_match;            /* how closely the question matches its closest phrasing */
    const char *reason;         /* static: "person_request", "sensitive", "rule", "model",
                                 * "kb", "clarify", "empty", "low_confidence", "out_of_scope",
                                 * "clarify_limit", "not_helped", "repeated", "anger" */
};

struct triage_decision {
    enum triage_action action;
    char intent[INTENT_NAME_MAX]; /* "" when none */
    double confidence;            /* calibrated probability in [0, 1] */
    char queue[32];               /* for a handoff: the intent's queue or the default */
    int priority;                 /* 1..5, for a handoff */
    int is_sensitive;
    char *answer; /* text to send: response, KB passage, clarify question, or handoff
                   * message; owned by the decision, never NULL after success */
    struct triage_article articles[TRIAGE_MAX_ARTICLES];
    int n_articles;
    struct triage_candidate candidates[TRIAGE_MAX_CANDIDATES]; /* for clarify */
    int n_candidates;
    char *collect_field; /* for an INTENT_COLLECT handoff: what to ask; else NULL */
    char *collect_prompt;
    struct triage_signals signals;
    struct triage_evidence evidence;
    int is_scored; /* the message's P(in scope) was counted in the measured out-of-scope
                    * share (triage_decide(), triage_oos_share()); chat marks the stored reply
                    * so that a restart counts the same questions (store_recent_questions()) */
};

/* A KB hit whose best phrasing matches the question this closely (the same
 * content words as its title, one of its questions or a learned phrasing)
 * answers it: that is how an author or an agent teaches the bot. */
#define TRIAGE_KB_MATCH 0.9

/* The KB's answer threshold, measured on the KB itself
 * (triage_calibrate_kb()). */
struct triage_kb_calibration {
    int is_fitted;
    double t_coverage; /* how-to questions are answered at coverage >= this (and
                        * never below the settings' t_kb) */
    double max_false;  /* the share of unanswerable questions allowed through */
    double false_rate; /* the share of them measured at t_coverage */
    int n_background;  /* background how-to questions searched */
};

struct triage;

/* Creates a triage engine over a trained intent set (ownership passes to the
 * triage, even on failure; NULL: a KB-only triage, no rules and no model)
 * and a KB it borrows (may be NULL: no KB evidence; must outlive the
 * triage). settings may be NULL (defaults); it is copied, default_queue
 * included. Returns NULL when out of memory or intents is not trained. */
struct triage *triage_new(const struct triage_settings *settings, struct intents *intents,
                          struct kb *kb);
void triage_free(struct triage *t);

/* Replaces the intent set with a freshly trained one (ownership passes in)
 * and returns the previous one, for the caller to free. Returns NULL and
 * changes nothing if fresh is not trained. */
struct intents *triage_swap_intents(struct triage *t, struct intents *fresh);

/* How many times intents were swapped in (triage_swap_intents()): what was built from the
 * intents in service (chat.c's language detector) is rebuilt when it changes. An address
 * cannot say it, as a new set may be allocated where a freed one was. */
unsigned triage_intents_generation(const struct triage *t);

/* The settings in use (and a way to change thresholds between messages). */
const struct triage_settings *triage_get_settings(const struct triage *t);
void triage_set_settings(struct triage *t, const struct triage_settings *settings);

/* The intent set in use (valid until the next triage_swap_intents()). */
const struct intents *triage_intents(const struct triage *t);

/* Decides one message of n bytes of UTF-8 in lang (NULL: "en"). ctx may be
 * NULL (a new conversation). Fills *out, which the caller clears with
 * triage_decision_clear() (also after a failure). Returns 0, CD_EINVAL for
 * invalid UTF-8, CD_ENOMEM. */
int triage_decide(struct triage *t, const char *text, size_t n, const char *lang,
                  const struct triage_context *ctx, struct triage_decision *out);
void triage_decision_clear(struct triage_decision *d);

/* Analyses a message without deciding (person request, "didn't help", anger,
 * how-to, repeat key). Never fails. */
void triage_signals(struct triage *t, const char *text, size_t n, const char *lang,
                    struct triage_signals *out);

/* Appends the decision as one JSON object: {"action","intent","confidence",
 * "queue","priority","sensitive","answer","articles":[{"id","title","url"}],
 * "candidates":[{"intent","label","probability"}],"collect"?,"signals",
 * "evidence":{"reason","rule_intent","rule","model":[...],"p_oos",
 * "kb_article","kb_score"}}. Returns 0 or CD_ENOMEM. */
int triage_decision_to_json(const struct triage_decision *d, struct cd_buf *out);

/* Measures the KB's answer threshold on the KB itself: the how-to questions
 * of the shipped background (scope.h), searched in this KB, stand for the
 * questions no article answers. The threshold is the lowest coverage that
 * answers at most max_false (default 0.05) of them. Call after loading the
 * KB, and again after large changes. Returns 0, CD_ESTATE without a KB,
 * CD_ENOMEM. */
int triage_calibrate_kb(struct triage *t, double max_false);
const struct triage_kb_calibration *triage_kb_calibration(const struct triage *t);

/* The traffic's out-of-scope share as measured so far (scope.h). */
const struct scope_prior *triage_oos_share(const struct triage *t);

/* 1 when t measures that share: its intents have a fitted P(in scope) and the settings do
 * not fix the share. */
int triage_measures_share(const struct triage *t);

/* Counts a message the bot decided before (read back from the store at
 * start-up, oldest first) in the out-of-scope share, as triage_decide()
 * counts each message it decides; nothing else changes, and nothing when
 * P(in scope) is not fitted or the share is fixed. Returns 0, CD_EINVAL (not
 * UTF-8) or CD_ENOMEM. */
int triage_add_traffic(struct triage *t, const char *text, size_t n, const char *lang);

/* "answer", "clarify", "handoff". */
const char *triage_action_name(enum triage_action a);

/* ---- Turns decided outside triage_decide(), and the bot's wording ----
 * Every sentence the bot says in a handoff or a follow-up is here, and every decision the
 * conversation protocol makes without triage_decide(). Each fills *d, which the caller clears
 * with triage_decision_clear() (also after a failure). */

enum triage_phrase {
    TRIAGE_SAY_HANDOFF,            /* triage_decide()'s handoff */
    TRIAGE_SAY_CHOICE_HANDOFF,     /* a clicked choice that a person handles */
    TRIAGE_SAY_NO_ANSWER_HANDOFF,  /* a KB-only deployment found nothing */
    TRIAGE_SAY_COLLECTED,          /* the detail a collect intent asked for was given */
    TRIAGE_SAY_COLLECT_AGAIN,      /* ... and could not be read: put before the prompt */
    TRIAGE_SAY_NOT_HELPED_CLARIFY, /* "that didn't help", with candidates to offer */
    TRIAGE_SAY_NOT_HELPED_HANDOFF, /* "that didn't help", nothing else to offer */
    TRIAGE_SAY_CLARIFY,            /* triage_decide()'s question before its choices */
    TRIAGE_SAY_PERSON,             /* the customer pressed "talk to a person" */
};

/* The bot's built-in sentence for p in lang, a conversation's language tag (NULL: English):
 * a static string. The wording is English and Spanish, the languages of the shipped intents
 * and articles; any other language gets the English. */
const char *triage_say(enum triage_phrase p, const char *lang);

/* The name of p in a phrases file ("handoff", "clarify", ...), NULL past the last. */
const char *triage_phrase_name(enum triage_phrase p);

/* Installs a deployment's own wording (setting 'phrases'): a JSON object whose keys are
 * language tags, each an object of phrase names (triage_phrase_name()) to sentences of 1 to
 * 1,000 bytes. It replaces the built-in sentences it names; a sentence a language lacks
 * comes from that language's built-in wording (Spanish), else the file's English, else the
 * built-in English. There is no "no_answer_handoff" in a file: only
 * triage_decide_kb_only(), which has no triage, says it. Returns 0; CD_EINVAL
 * with *err (malloc'd, for the operator) naming the first problem, the wording unchanged;
 * or CD_ENOMEM. */
int triage_set_phrases(struct triage *t, const char *json, size_t n, char **err);

/* The sentence for p in lang: t's own wording, else the built-in (t may be NULL). */
const char *triage_phrase(const struct triage *t, enum triage_phrase p, const char *lang);

/* The decision for a clarify choice the customer clicked: intent_name's own answer (its
 * response, else the first paragraph of its article from kb, else its description), or a
 * handoff for intents a person handles (said in the intent's language); without asking the
 * model again. Returns 0,
 * CD_ENOTFOUND (no triage or no such intent) or CD_ENOMEM. */
int triage_decide_choice(const struct triage *t, struct kb *kb, const char *intent_name,
                         struct triage_decision *d);

/* Without a triage engine (a KB-only deployment): answer with the best article's passage
 * from kb_search(), else hand off. Returns 0 or CD_ENOMEM. */
int triage_decide_kb_only(struct kb *kb, const char *text, const char *lang,
                          struct triage_decision *d);

/* The customer said an answer did not help and d is the answer the same question gets
 * again: turns it into a clarify when it has two or more candidates, else a handoff, said in
 * lang (t's wording; t may be NULL). Other decisions are left as they are. Returns 0 or CD_ENOMEM.
 */
int triage_not_helped(const struct triage *t, struct triage_decision *d, const char *lang);

/* The customer asked for a person: a handoff routed by the last intent of the conversation
 * (its queue), else to fallback_queue (NULL or "": "general"), with the priority of the
 * person-request intent (of lang, if there are several), as a typed request gets. Returns 0
 * or CD_ENOMEM. */
int triage_person_request(const struct triage *t, const char *last_intent, const char *lang,
                          const char *fallback_queue, struct triage_decision *d);

#endif
