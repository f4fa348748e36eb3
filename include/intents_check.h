/* intents_check: the author's report on a trained intent set (`caredesk
 * check intents`, GET /api/intents/check): intents the model confuses,
 * intents with too few examples, examples that cross-validate to another
 * intent, and where the out-of-scope threshold landed and why. Everything
 * comes from the cross-fitting intents_train() already did; nothing is
 * trained again. */
#ifndef CD_INTENTS_CHECK_H
#define CD_INTENTS_CHECK_H

#include <jansson.h>

struct intents;

struct intents_check_options {
    int min_examples; /* fewer is "too few", default 10 */
    int max_items;    /* per list, default 20 */
};

/* The report as a new JSON object:
 *   {"intents", "cross_validated_accuracy",
 *    "out_of_scope": {"fitted", "prior_oos", "in_scope_rows", "out_of_scope_rows",
 *                     "in_scope_kept", "out_of_scope_caught", "auroc",
 *                     "top_probability_at_half", "temperature", "folds", "why"},
 *    "too_few_examples": [{"intent", "examples", "suggested"}],
 *    "confused_pairs": [{"intent", "read_as", "examples", "share"}],
 *    "misread_examples": [{"intent", "example", "read_as", "probability"}],
 *    "per_intent": [{"intent", "examples", "cross_validated_accuracy"}]}
 * options may be NULL. Returns NULL when out of memory. */
json_t *intents_check(const struct intents *set, const struct intents_check_options *options);

#endif
