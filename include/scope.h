/* scope: how likely a message is about one of the bot's intents at all, learned
 * from the in-scope examples alone.
 *
 * DESIGN. A bot's author writes 10-50 examples per intent and never a labelled
 * set of what customers ask that the bot does not cover. So the out-of-scope
 * side is simulated: intents_train() cross-fits the classifier with whole
 * intents held out (their examples then play the questions the bot was never
 * taught), and with a share of every other intent's examples held out (the
 * questions it was taught, phrased in words it has not seen). This module
 * holds what is learned from those rows:
 *
 *   - a handful of features of one classification (scope_features()): the
 *     calibrated top probability, the margin to the second, the largest raw
 *     class score and the log-sum-exp of all of them (how much evidence any
 *     class found), the share of the message's words seen in training, and
 *     the out-of-scope class's probability when the set has one, and the
 *     share of its words training never saw;
 *   - a logistic regression on them, P(in scope | features), fitted on the
 *     cross-fitted rows with the out-of-scope rows weighted to a prior share
 *     of traffic (default 0.5: half of what customers type is something no
 *     intent covers, as seen in real bot logs).
 *
 * The answer's confidence is then P(in scope) x P(intent | in scope), the
 * second being the temperature-calibrated model probability. Nothing here
 * depends on the data set beyond its own rows; there is no constant fitted to
 * a test file. A fitted struct scope_model is never written again. */
#ifndef CD_SCOPE_H
#define CD_SCOPE_H

#define SCOPE_N_FEATS 7

enum scope_kind {
    SCOPE_IN = 0,         /* a held-out example of a trained intent */
    SCOPE_HELD_OUT = 1,   /* an example of an intent held out whole, or of "oos" */
    SCOPE_BACKGROUND = 2, /* a general message from the shipped background */
};

/* One cross-fitted row: its features, what it was and, for an in-scope row,
 * whether the fold's model got its intent right. */
struct scope_row {
    double f[SCOPE_N_FEATS];
    int kind;
    int is_right;
};

struct scope_model {
    int is_fitted;
    double mean[SCOPE_N_FEATS];
    double sd[SCOPE_N_FEATS];
    double w[SCOPE_N_FEATS + 1]; /* on standardised features; w[SCOPE_N_FEATS] is the bias */
    double prior_oos;            /* the out-of-scope share the rows were weighted to */
    /* On the rows it was fitted on, at P(in scope) >= 0.5: */
    int n_in, n_out;      /* in-scope and out-of-scope rows */
    double in_kept;       /* share of in-scope rows kept */
    double out_caught;    /* share of out-of-scope rows caught */
    double auroc;         /* ranking quality of P(in scope) over the rows */
    double p_top_at_half; /* top probability at which P(in scope) crosses 0.5, all
                           * else at the in-scope rows' mean (for the author's report) */
};

/* Features of one classification. raw: the K class scores before the
 * temperature; p: the calibrated probabilities; is_oos[k]: class k is the
 * out-of-scope class; is_off[k]: class k does not take part (another
 * language's); known_share: model_known_share(); unknown, n_words:
 * model_unknown_words(). */
void scope_features(const double *raw, const double *p, const unsigned char *is_oos,
                    const unsigned char *is_off, int K, double known_share, int unknown,
                    int n_words, double f[SCOPE_N_FEATS]);

/* Fits P(in scope) on n rows. Out-of-scope rows weigh prior_oos of the
 * total, split evenly between held-out intents (questions close to the
 * bot's subject) and the background (questions about anything else) when
 * both are there. Needs at least 10 rows of each side; otherwise the model
 * stays unfitted (scope_p_in() then returns 1). Returns 0 or CD_ENOMEM. */
int scope_fit(struct scope_model *m, const struct scope_row *rows, int n, double prior_oos);

/* P(in scope) for one feature vector; 1 when the model is not fitted. */
double scope_p_in(const struct scope_model *m, const double f[SCOPE_N_FEATS]);

/* The out-of-scope share of the traffic actually seen. P(in scope) is
 * learned at an assumed share (oos-prior); real traffic has its own, and
 * unlike the share itself it can be measured without labels: the share that
 * makes the recent messages' P(in scope) agree with itself (expectation-
 * maximisation over the outputs, Saerens et al. 2002, "Adjusting the outputs
 * of a classifier to new a priori probabilities"). Each message's P(in scope)
 * is then re-weighted from the assumed share to the measured one. */
#define SCOPE_PRIOR_WINDOW 2000 /* recent messages the share is measured on */
#define SCOPE_PRIOR_MIN    100  /* messages before the first measurement */
#define SCOPE_PRIOR_EVERY  50   /* messages between measurements */
#define SCOPE_PRIOR_LOW    0.02 /* the measured share is kept within [LOW, HIGH] */
#define SCOPE_PRIOR_HIGH   0.98

struct scope_prior {
    float p[SCOPE_PRIOR_WINDOW]; /* P(in scope) at the assumed share, newest at next - 1 */
    int n, next;
    int since;       /* messages since the last measurement */
    double assumed;  /* the out-of-scope share P(in scope) was learned at */
    double estimate; /* the measured share (the assumed one until measured) */
    int n_estimates; /* measurements made */
    int is_carried;  /* estimate is a share measured before (scope_prior_carry()) */
    int n_carried;   /* ... on this many messages */
};

/* Starts measuring for P(in scope) learned at out-of-scope share assumed. */
void scope_prior_reset(struct scope_prior *sp, double assumed);

/* Starts from a share measured on the same traffic before (by the model a
 * retrained one replaces, on n_messages messages): P(in scope) is re-weighted to it from the first
 * message, until this model's own first measurement. The share is the
 * traffic's, not the model's, so it need not be learned again at the
 * assumed share after every retraining. */
void scope_prior_carry(struct scope_prior *sp, double share, int n_messages);

/* 1 when the share is measured (here, or carried from before), 0 while it is the
 * assumed one. */
int scope_prior_is_measured(const struct scope_prior *sp);

/* The messages the share rests on: those it was last measured on (carried ones before a
 * measurement of its own), else those counted so far. */
int scope_prior_measured_on(const struct scope_prior *sp);

/* Counts one message's P(in scope) (at the assumed share); measures again
 * every SCOPE_PRIOR_EVERY messages once SCOPE_PRIOR_MIN were seen. */
void scope_prior_add(struct scope_prior *sp, double p_in);

/* p_in (at the assumed share) re-weighted to the measured share. */
double scope_prior_adjust(const struct scope_prior *sp, double p_in);

/* The shipped background: general messages no support bot covers, by
 * language ({NULL, NULL} ends it). */
struct scope_background {
    const char *lang;
    const char *text;
};
extern const struct scope_background scope_background[];

#endif
