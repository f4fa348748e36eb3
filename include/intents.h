/* intents: intent definitions (intents/NAME.json or JSON Lines examples), their
 * rules (phrase patterns on stemmed tokens, POSIX regular expressions on
 * folded text) and the statistical model trained from their examples.
 *
 * DESIGN. A struct intents is built in two steps: load definitions
 * (intents_load_path(), intents_add()), then intents_train() fits the model.
 * After intents_train() returns, the set is immutable: any number of threads
 * may call intents_classify() on it at once, each with its own struct
 * intents_scratch (which holds the tokenizers and feature buffers, and is not
 * shareable). That is what lets a server retrain on a worker thread and then
 * swap the new set in (triage_swap_intents()) without ever blocking a reply.
 * Loading and training are never done on a set that is being classified. */
#ifndef CD_INTENTS_H
#define CD_INTENTS_H

#include <stddef.h>

#include "scope.h"

#define INTENT_NAME_MAX 64

/* What the bot does when an intent is recognised with confidence. */
enum intent_action {
    INTENT_ANSWER = 0,  /* reply with the response (or the article's passage) */
    INTENT_HANDOFF = 1, /* hand the chat to a person in the intent's queue */
    INTENT_COLLECT = 2, /* ask for one detail (collect.prompt), then hand off with it */
};

/* One detail to ask for before a handoff (action "collect"). */
struct intent_collect {
    char *field;  /* e.g. "order_number" */
    char *prompt; /* what the bot asks, e.g. "What is your order number?" */
    char *regex;  /* POSIX ERE a valid answer matches, or NULL */
};

/* One intent definition, as in an intents/NAME.json object. All strings are
 * owned by the set they belong to. */
struct intent {
    char *name;        /* unique within a set, [A-Za-z0-9_.-], < INTENT_NAME_MAX bytes */
    char *description; /* short customer-facing label, used for clarify choices */
    char *lang;        /* "en" by default */
    char **examples;
    int n_examples;
    char **patterns; /* phrases matched on stemmed tokens, in order, contiguous */
    int n_patterns;
    char **regex; /* POSIX ERE matched on folded text */
    int n_regex;
    char *response; /* reply text, may be NULL (then the article's passage is used) */
    char *article;  /* KB article id, or NULL */
    enum intent_action action;
    struct intent_collect collect; /* for INTENT_COLLECT */
    char *queue;                   /* billing|orders|technical|accounts|general */
    int priority;                  /* 1 (highest) .. 5, default 3 */
    int is_sensitive;              /* needs a person who verifies identity: hand off at once */
    int is_person_request;         /* "talk to a human": always hands off (name "human"/"agent") */
    int is_oos;                    /* out-of-scope examples, never an answer */
};

struct intents;
struct text_analysis;

/* Per-thread working memory for intents_classify(). */
struct intents_scratch;

/* A problem met while loading definitions: which file, which field, what. */
struct intents_load_report {
    int n_loaded;  /* intents added (or, for JSON Lines, examples added) */
    int n_skipped; /* definitions or lines skipped */
    /* Called once per skipped definition, may be NULL (then the first 20 are
     * printed to stderr as "FILE: FIELD: MESSAGE"). */
    void (*on_error)(void *ctx, const char *file, const char *field, const char *message);
    void *ctx;
};

/* Model settings; zero values mean the documented defaults. */
struct intents_train_options {
    int epochs;        /* passes over the examples, default 12 */
    int hash_bits;     /* feature hash space 2^bits, default 18 */
    double l2;         /* L2 regularisation per step, default 1e-6 */
    unsigned int seed; /* shuffling seed, default 1 */
    int is_quiet;      /* no progress on stderr */
    int is_no_holdout; /* skip the cross-fitting (the caller will call
                        * intents_calibrate() on its own held-out set) */
    double oos_prior;  /* share of traffic assumed out of scope, default 0.5 */
    int folds;         /* cross-fitting folds, default 5 (3 from 5,000 examples) */
};

/* What cross-fitting saw (intents_train()): each in-scope example held out
 * once and classified by a model that never saw it, and whole intents held
 * out to play the out-of-scope questions. For the author's report. */
struct intents_crossfit {
    int folds;
    int n_rows;    /* in-scope held-out examples */
    int *gold;     /* per row: its intent index */
    int *example;  /* per row: the example's index in that intent's examples */
    int *pred;     /* per row: the fold model's top intent */
    float *p_pred; /* its calibrated probability */
    float *p_in;   /* P(in scope) of the row */
    int n_pseudo;  /* held-out-intent rows (pseudo out of scope) */
    int n_right;   /* rows whose top intent was right */
};

/* Creates an empty set. Returns NULL when out of memory. */
struct intents *intents_new(void);
void intents_free(struct intents *set);

/* Loads a .json file (one intent object or an array of them), a .jsonl file
 * of {"text","intent"} examples (each intent becomes an "answer" intent;
 * rows labelled oos_label, default "oos", become out-of-scope examples), or
 * every .json/.jsonl file in a directory. Invalid definitions are reported
 * through report (file and field) and skipped; the rest loads. Returns 0, or
 * CD_ENOTFOUND / CD_EIO when the path cannot be read at all, CD_ESTATE after
 * intents_train(). */
int intents_load_path(struct intents *set, const char *path, const char *oos_label,
                      struct intents_load_report *report);

/* Parses one intent definition from a JSON text (an object). file names the
 * source in error messages. Returns 0, or CD_EINVAL / CD_EPARSE (reported). */
int intents_load_json(struct intents *set, const char *json, size_t len, const char *file,
                      struct intents_load_report *report);

/* Adds one labelled example; creates an "answer" intent named intent if
 * there is none yet (oos_label: an out-of-scope example). Returns 0 or CD_E*. */
int intents_add_example(struct intents *set, const char *text, const char *intent,
                        const char *oos_label);

/* Fits the model on every example and compiles the rules. Takes about a
 * second per 10,000 examples. After this the set is immutable and shareable.
 * Returns 0, CD_EINVAL when there are no examples of at least one in-scope
 * intent and no rules either, CD_ENOMEM. */
int intents_train(struct intents *set, const struct intents_train_options *options);

/* 1 once intents_train() has succeeded. */
int intents_is_trained(const struct intents *set);

/* Number of intents (including an oos pseudo-intent if any), and intent i. */
int intents_count(const struct intents *set);
const struct intent *intents_get(const struct intents *set, int i);

/* Index of the intent named name, or -1. */
int intents_find(const struct intents *set, const char *name);

/* Milliseconds intents_train() took: wall clock, and CPU time of the
 * training thread (the fair figure on a busy machine). */
double intents_train_ms(const struct intents *set);
double intents_train_cpu_ms(const struct intents *set);

struct intents_scratch *intents_scratch_new(void);
void intents_scratch_free(struct intents_scratch *scratch);

#define INTENTS_TOP 5

/* What intents_classify() found for one message. */
struct intents_result {
    int rule_intent;           /* intent a rule matched, or -1 */
    char rule_what[96];        /* the pattern or regex that matched */
    int top[INTENTS_TOP];      /* intent indexes, most probable first */
    double top_p[INTENTS_TOP]; /* calibrated probabilities, summing to <= 1 */
    int n_top;
    double p_oos;       /* probability mass of the out-of-scope class (0 without one) */
    double margin;      /* top_p[0] - top_p[1] */
    double known_share; /* share of its words and word pairs seen in training (1 if no model) */
    double p_in;        /* P(in scope) learned by cross-fitting (1 without it) */
    int n_tokens;       /* word tokens in the message */
    int n_known;        /* of which seen in training examples */
};

/* Classifies n bytes of UTF-8 text in lang (NULL: "en"). The set must be
 * trained. scratch is the calling thread's own. Never fails on any text;
 * returns 0, or CD_ESTATE when the set is not trained. */
int intents_classify(const struct intents *set, struct intents_scratch *scratch, const char *text,
                     size_t n, const char *lang, struct intents_result *out);

/* intents_classify() of a message analysed by text_analyse() with lang's
 * tokenizer (triage analyses each message once for the rules, the model and
 * the KB). a must stay unchanged during the call. */
int intents_classify_analysed(const struct intents *set, struct intents_scratch *scratch,
                              const struct text_analysis *a, const char *lang,
                              struct intents_result *out);

/* Calibration: the softmax temperature in use (1 = raw). intents_train()
 * fits it on a held-out split of the examples; intents_set_temperature()
 * overrides it (only before sharing the set). */
double intents_temperature(const struct intents *set);

/* Refits the temperature on n labelled held-out messages (intent[i] is an
 * intent index; rows of intents without a model class are ignored), e.g. a
 * validation set. Only before sharing the set. Returns 0 or CD_E*. */
int intents_calibrate(struct intents *set, const char *const *texts, const int *intent, int n);
void intents_set_temperature(struct intents *set, double temperature);

/* The in-scope model learned by cross-fitting (scope.h), and the rows it was
 * learned from; both empty for a set trained without cross-fitting. */
const struct scope_model *intents_scope(const struct intents *set);
const struct intents_crossfit *intents_crossfit(const struct intents *set);
void intents_crossfit_clear(struct intents_crossfit *cf);

#endif
