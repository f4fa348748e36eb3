/* triage_kb: how often the triage engine answers from the KB when no intent
 * covers a question, and how often that answer is the right article.
 *
 *   triage_kb INTENTS KB QUERIES.jsonl [T_KB]
 *
 * QUERIES rows are {"text","article"}. Prints one JSON line: n, kb_answer_rate
 * (share answered from the KB), kb_answer_precision (of those, the share whose
 * first article is the expected one), kb_top1 (the best article is the
 * expected one, over the questions for which the KB was searched), t_kb. */
#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "triage.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fputs("usage: triage_kb INTENTS KB QUERIES.jsonl [T_KB]\n", stderr);
        return 2;
    }
    struct intents *set = intents_new();
    struct intents_train_options o = {.is_quiet = 1};
    if (!set || intents_load_path(set, argv[1], NULL, NULL) || intents_train(set, &o)) {
        fprintf(stderr, "triage_kb: cannot load intents from %s\n", argv[1]);
        intents_free(set);
        return 1;
    }
    char *err = NULL;
    struct kb *kb = kb_open(":memory:", &err);
    struct kb_load_report report = {0};
    if (!kb || kb_load_path(kb, argv[2], &report)) {
        fprintf(stderr, "triage_kb: cannot load the KB from %s: %s\n", argv[2], err ? err : "");
        free(err);
        intents_free(set);
        kb_close(kb);
        return 1;
    }
    struct triage_settings s;
    triage_settings_default(&s);
    if (argc > 4)
        s.t_kb = atof(argv[4]);
    struct triage *t = triage_new(&s, set, kb);
    if (t && argc < 5)
        triage_calibrate_kb(t, 0); /* as the server does; an explicit t_kb replaces it */
    FILE *f = fopen(argv[3], "r");
    if (!t || !f) {
        fprintf(stderr, "triage_kb: cannot read %s\n", argv[3]);
        triage_free(t);
        kb_close(kb);
        if (f)
            fclose(f);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    int n = 0, n_searched = 0, n_top1 = 0, n_kb = 0, n_kb_right = 0;
    while (getline(&line, &cap, f) >= 0) {
        json_t *row = json_loads(line, 0, NULL);
        const char *text = json_string_value(json_object_get(row, "text"));
        const char *article = json_string_value(json_object_get(row, "article"));
        if (!text || !article) {
            json_decref(row);
            continue;
        }
        struct triage_decision d;
        if (triage_decide(t, text, strlen(text), "en", NULL, &d) == 0) {
            n++;
            if (d.evidence.kb_article[0]) {
                n_searched++;
                n_top1 += !strcmp(d.evidence.kb_article, article);
            }
            if (d.action == TRIAGE_ANSWER && !strcmp(d.evidence.reason, "kb")) {
                n_kb++;
                n_kb_right += d.n_articles > 0 && !strcmp(d.articles[0].id, article);
            }
        }
        triage_decision_clear(&d);
        json_decref(row);
    }
    free(line);
    fclose(f);
    printf("{\"n\":%d,\"kb_answer_rate\":%.4f,\"kb_answer_precision\":%.4f,\"kb_top1\":%.4f,"
           "\"t_kb\":%.2f}\n",
           n, n ? (double)n_kb / n : 0.0, n_kb ? (double)n_kb_right / n_kb : 0.0,
           n_searched ? (double)n_top1 / n_searched : 0.0,
           triage_kb_calibration(t)->is_fitted &&
                   triage_kb_calibration(t)->t_coverage > triage_get_settings(t)->t_kb
               ? triage_kb_calibration(t)->t_coverage
               : triage_get_settings(t)->t_kb);
    triage_free(t);
    kb_close(kb);
    return 0;
}
