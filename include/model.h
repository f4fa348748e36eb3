/* model: the intent classifier: multinomial logistic regression over hashed
 * word and character n-grams, trained by SGD, with a softmax temperature for
 * calibrated probabilities.
 *
 * DESIGN. Features come from text.h tokens: stemmed word unigrams and bigrams
 * (stop words kept: "why" and "how" carry intent) and character 3-4 grams of
 * each folded word with boundary marks ("<refund>"), so misspellings and
 * unseen inflections still share evidence. Each group is weighted by
 * log-count times IDF and L2-normalised to norm 2. Feature strings are hashed
 * into 2^hash_bits buckets, and only buckets seen in training get a weight
 * row, so the weight matrix is (features seen) x (classes), not 2^bits x
 * classes. Once fitted, a struct model is never written again: any number of
 * threads may call model_logits() at once, each with its own struct
 * model_scratch. */
#ifndef CD_MODEL_H
#define CD_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct text_analysis;
struct text_tokenizer;

struct model_options {
    int epochs;        /* default 12 */
    int hash_bits;     /* default 18 */
    double l2;         /* default 1e-6 per example step */
    double lr;         /* initial learning rate, default 0.5, decays linearly to 0 */
    unsigned int seed; /* default 1 */
    int min_df;        /* features in fewer examples are dropped, default 1 */
    int is_quiet;
};

/* Raw hashed features of one message: bucket and count, unique buckets. */
struct model_feats {
    uint32_t *bucket;
    float *count;
    uint8_t *group; /* 0 word, 1 char, 2 word pair */
    int n;
    int cap;
    int32_t *slot; /* open-addressing index of the above, 2 * cap entries */
};

struct model;

/* Per-thread working memory for model_predict(). */
struct model_scratch {
    struct model_feats feats;
    int *feat;    /* mapped feature index per raw feature */
    float *value; /* weighted, normalised value */
    int cap;
    float *sums; /* per class */
    int n_sums;
    float *acc; /* per indexed example, for model_index_nearest() */
    int *touched;
    int n_acc;
};

void model_feats_free(struct model_feats *f);
void model_scratch_free(struct model_scratch *s);

/* Extracts the hashed features of an analysed message (text.h) into f (reset
 * first): its stemmed words and word pairs, stop words kept, and the character
 * n-grams of its folded words. Returns 0 or CD_ENOMEM. */
int model_featurize_analysed(const struct text_analysis *a, int hash_bits, struct model_feats *f);

/* model_featurize_analysed() of n bytes of text analysed with tok (stemming).
 * Returns 0 or CD_ENOMEM. */
int model_featurize(struct text_tokenizer *tok, const char *text, size_t n, int hash_bits,
                    struct model_feats *f);

/* Creates an untrained model whose features (and IDF) come from the n
 * examples in feats. Returns NULL when out of memory or on empty input. */
struct model *model_new(const struct model_feats *feats, int n, int n_classes,
                        const struct model_options *options);

/* Runs epochs of SGD over n examples, the rate decaying linearly from lr0
 * to 0, starting from the model's current weights (so a model can be fitted
 * on part of the data, probed, then fitted a little more on all of it).
 * Returns 0 or CD_ENOMEM (the weights may then be partly updated). */
int model_fit(struct model *m, const struct model_feats *feats, const int *labels, int n,
              int epochs, double lr0, const struct model_options *options);

/* model_new() and model_fit() with options->epochs and options->lr.
 * Returns NULL when out of memory or on empty input. */
struct model *model_train(const struct model_feats *feats, const int *labels, int n, int n_classes,
                          const struct model_options *options);
void model_free(struct model *m);

int model_n_classes(const struct model *m);
int model_hash_bits(const struct model *m);
int model_n_features(const struct model *m);

/* Class log-scores (logits before temperature) for raw features f, into
 * logits[n_classes]. Returns the number of features the model knew. */
int model_logits(const struct model *m, const struct model_feats *f, struct model_scratch *s,
                 double *logits);

/* The share of the message's word features (words and word pairs) that
 * occurred in training, 1 for a message without words. Low for messages about
 * something the examples never mention: an out-of-scope signal. */
double model_known_share(const struct model *m, const struct model_feats *f);

/* Nearest training example: an inverted index over the model's features of
 * the examples it was fitted on. Immutable once built, like the model. */
struct model_index;

/* Builds the index of n examples' features under m's vocabulary and
 * weighting. Returns NULL when out of memory. */
struct model_index *model_index_new(const struct model *m, const struct model_feats *feats, int n);
void model_index_free(struct model_index *ix);

/* The largest cosine similarity between message f and any indexed example,
 * in [0, 1] (0 when they share no feature). s is the calling thread's. */
double model_index_nearest(const struct model_index *ix, const struct model *m,
                           const struct model_feats *f, struct model_scratch *s);

/* How many of the message's distinct words (not word pairs) never occurred
 * in training; *n_words (may be NULL) gets how many distinct words it has. */
int model_unknown_words(const struct model *m, const struct model_feats *f, int *n_words);

/* Softmax of logits / temperature into p (may alias logits). */
void model_softmax(const double *logits, int n, double temperature, double *p);

/* Fits the temperature minimising the negative log-likelihood of labels
 * given logits (n rows of n_classes). Returns it (1 when n is 0). */
double model_fit_temperature(const double *logits, const int *labels, int n, int n_classes);

#endif
