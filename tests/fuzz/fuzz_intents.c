/* libFuzzer target for the intents loader: arbitrary bytes as an intents JSON file (one
 * object or an array), then, when something loaded and the input is small, a quick
 * training and a classification of fixed messages and of the input itself as a customer
 * message. Invariants (abort() on failure): the loader never reports more intents than the
 * set holds; every loaded intent has a valid name, an action in range and a priority 1-5;
 * a trained set classifies any text into valid indexes with probabilities in [0, 1] that
 * sum to at most 1. */
#include "intents.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *ctx, const char *file, const char *field, const char *message)
{
    (void)ctx;
    if (!file || !field || !message)
        abort();
}

static void check_result(const struct intents *set, const struct intents_result *r)
{
    int n = intents_count(set);
    if (r->n_top < 0 || r->n_top > INTENTS_TOP || r->rule_intent < -1 || r->rule_intent >= n)
        abort();
    double sum = 0;
    for (int i = 0; i < r->n_top; i++) {
        if (r->top[i] < 0 || r->top[i] >= n || !(r->top_p[i] >= 0 && r->top_p[i] <= 1.0 + 1e-9))
            abort();
        sum += r->top_p[i];
    }
    if (sum > 1.0 + 1e-6 || !(r->p_oos >= 0 && r->p_oos <= 1.0 + 1e-9))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct intents *set = intents_new();
    if (!set)
        return 0;
    struct intents_load_report report = {0, 0, quiet, NULL};
    int rc = intents_load_json(set, (const char *)data, size, "fuzz.json", &report);
    int n = intents_count(set);
    if (report.n_loaded < 0 || report.n_skipped < 0 || n < 0)
        abort();
    for (int i = 0; i < n; i++) {
        const struct intent *it = intents_get(set, i);
        if (!it || !it->name || !*it->name || strlen(it->name) >= INTENT_NAME_MAX)
            abort();
        if (it->action < INTENT_ANSWER || it->action > INTENT_COLLECT)
            abort();
        if (it->priority < 1 || it->priority > 5)
            abort();
        if (intents_find(set, it->name) < 0)
            abort();
    }
    /* Training costs milliseconds per example: only small inputs. */
    if (rc == 0 && n > 0 && size < 2048) {
        struct intents_train_options o = {0};
        o.epochs = 2;
        o.hash_bits = 12;
        o.is_quiet = 1;
        if (intents_train(set, &o) == 0) {
            if (!intents_is_trained(set))
                abort();
            struct intents_scratch *scratch = intents_scratch_new();
            if (scratch) {
                static const char *const msgs[] = {"where is my order", "", "¿dónde está?",
                                                   "x x x x x x x x x x x x x x x x x x x x"};
                struct intents_result r;
                for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
                    if (intents_classify(set, scratch, msgs[i], strlen(msgs[i]), NULL, &r))
                        abort();
                    check_result(set, &r);
                }
                if (intents_classify(set, scratch, (const char *)data, size, "es", &r))
                    abort();
                check_result(set, &r);
                intents_scratch_free(scratch);
            }
        }
    }
    intents_free(set);
    return 0;
}
