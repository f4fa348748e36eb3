/* ask_rate: what `caredesk ask` does for one message (triage_decide over the
 * KB and the trained intents), in a loop in one process, to give the
 * in-process decision rate that bench/40-server.sh compares the server with.
 * usage: ask_rate [--intents DIR] [--kb DIR] [--seconds S] */
#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "triage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const questions[] = {
    "how do I reset my password", "where is my order",
    "how do I return an item",    "what shipping options do you have",
    "when will I get my refund",  "what is your return policy",
    "I forgot my password",       "how long does delivery take",
};

int main(int argc, char **argv)
{
    const char *intents_path = "intents", *kb_path = "kb";
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--intents"))
            intents_path = argv[i + 1];
        else if (!strcmp(argv[i], "--kb"))
            kb_path = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
    }
    struct intents *set = intents_new();
    struct intents_train_options opt = {0};
    opt.is_quiet = 1;
    if (!set || intents_load_path(set, intents_path, NULL, NULL) || intents_train(set, &opt)) {
        fprintf(stderr, "ask_rate: cannot load and train %s\n", intents_path);
        intents_free(set);
        return 1;
    }
    struct kb *kb = NULL;
    {
        kb = kb_open(":memory:", NULL);
        struct kb_load_report report = {0};
        if (kb && kb_load_path(kb, kb_path, &report)) {
            kb_close(kb);
            kb = NULL;
        }
    }
    struct triage *t = triage_new(NULL, set, kb);
    if (!t) {
        fputs("ask_rate: cannot build the triage engine\n", stderr);
        return 1;
    }
    size_t n_q = sizeof questions / sizeof questions[0];
    long n = 0;
    int64_t start = cd_now_us(), end = start + (int64_t)(seconds * 1e6), now = start;
    while (now < end) {
        for (int k = 0; k < 64; k++, n++) {
            struct triage_decision d;
            memset(&d, 0, sizeof d);
            const char *q = questions[n % n_q];
            triage_decide(t, q, strlen(q), "en", NULL, &d);
            triage_decision_clear(&d);
        }
        now = cd_now_us();
    }
    double s = (double)(now - start) / 1e6;
    printf("{\"decisions\":%ld,\"seconds\":%.2f,\"decisions_per_s\":%.0f,\"kb\":%s}\n", n, s,
           (double)n / s, kb ? "true" : "false");
    triage_free(t);
    if (kb)
        kb_close(kb);
    return 0;
}
