/* test_cases: runs the data-driven triage cases in tests/cases/NAME.jsonl
 * against the shipped intents/ and kb/. Each line is one case:
 *   {"text", "lang"?, "detected"?, "action", "intent"?, "article"?, "note"?}
 * Without "lang", the language is detected among the intents' and KB's languages (langid.h),
 * English when unsure: what the server does for a chat whose hello has no lang; "detected"
 * is then the language the detection must find.
 * and a failing case is reported with its file:line, what was expected and
 * what the engine decided (and why). Adding a case adds no code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "langid.h"
#include "triage.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CASES_DIR "tests/cases"
#define MAX_FILES 64

static struct triage *engine;
static struct kb *kb;
static struct langid *langid;
static char files[MAX_FILES][256];
static int n_files;

static int setup_engine(void **state)
{
    (void)state;
    struct intents *set = intents_new();
    if (!set)
        return -1;
    struct intents_load_report report = {0};
    if (intents_load_path(set, "intents", NULL, &report) != 0) {
        fprintf(stderr, "test_cases: cannot load ./intents\n");
        intents_free(set);
        return -1;
    }
    if (report.n_skipped)
        fprintf(stderr, "test_cases: %d shipped intent definitions are invalid\n",
                report.n_skipped);
    struct intents_train_options o = {.is_quiet = 1};
    if (intents_train(set, &o) != 0) {
        intents_free(set);
        return -1;
    }
    char *err = NULL;
    kb = kb_open(":memory:", &err);
    free(err);
    struct kb_load_report kr = {0};
    if (!kb || kb_load_path(kb, "kb", &kr) != 0) {
        fprintf(stderr, "test_cases: cannot load ./kb\n");
        return -1;
    }
    langid = langid_build(set, kb);
    engine = triage_new(NULL, set, kb);
    return engine && langid ? 0 : -1;
}

static int teardown_engine(void **state)
{
    (void)state;
    triage_free(engine);
    langid_free(langid);
    if (kb)
        kb_close(kb);
    return 0;
}

static int has_article(const struct triage_decision *d, const char *id)
{
    for (int i = 0; i < d->n_articles; i++)
        if (!strcmp(d->articles[i].id, id))
            return 1;
    return 0;
}

/* Runs one case file; returns the number of failing cases (and bad lines). */
static int run_file(const char *path, int *n_cases)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, n_failed = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len <= 1)
            continue;
        json_error_t err;
        json_t *c = json_loadb(line, (size_t)len, 0, &err);
        const char *text = json_string_value(json_object_get(c, "text"));
        const char *action = json_string_value(json_object_get(c, "action"));
        const char *lang = json_string_value(json_object_get(c, "lang"));
        const char *intent = json_string_value(json_object_get(c, "intent"));
        const char *article = json_string_value(json_object_get(c, "article"));
        const char *want_lang = json_string_value(json_object_get(c, "detected"));
        if (!c || !text || !action) {
            fprintf(stderr, "%s:%d: not a case: needs \"text\" and \"action\"\n", path, lineno);
            n_failed++;
            json_decref(c);
            continue;
        }
        (*n_cases)++;
        struct langid_result detected;
        if (!lang) {
            langid_detect(langid, text, strlen(text), &detected);
            lang = detected.confidence >= LANGID_MIN_CONFIDENCE ? detected.lang : "en";
        }
        if (want_lang && strcmp(want_lang, lang)) {
            fprintf(stderr, "%s:%d: \"%s\"\n    expected language %s, got %s\n", path, lineno, text,
                    want_lang, lang);
            n_failed++;
            json_decref(c);
            continue;
        }
        struct triage_decision d;
        int rc = triage_decide(engine, text, strlen(text), lang, NULL, &d);
        int ok = rc == 0 && !strcmp(triage_action_name(d.action), action) &&
                 (!intent || !strcmp(d.intent, intent)) && (!article || has_article(&d, article));
        if (!ok) {
            n_failed++;
            fprintf(stderr, "%s:%d: \"%s\"\n    expected %s%s%s%s%s\n", path, lineno, text, action,
                    intent ? " " : "", intent ? intent : "", article ? " article " : "",
                    article ? article : "");
            if (rc)
                fprintf(stderr, "    got error %s\n", cd_strerror(rc));
            else
                fprintf(stderr,
                        "    got      %s %s (confidence %.2f, reason %s, top %s %.2f%s%s)\n",
                        triage_action_name(d.action), d.intent[0] ? d.intent : "-", d.confidence,
                        d.evidence.reason, d.evidence.n_model ? d.evidence.model[0].intent : "-",
                        d.evidence.n_model ? d.evidence.model[0].probability : 0.0,
                        d.n_articles ? ", article " : "", d.n_articles ? d.articles[0].id : "");
        }
        triage_decision_clear(&d);
        json_decref(c);
    }
    free(line);
    fclose(f);
    return n_failed;
}

static void test_case_file(void **state)
{
    const char *path = *state;
    int n_cases = 0;
    int n_failed = run_file(path, &n_cases);
    fprintf(stderr, "%s: %d of %d cases pass\n", path, n_cases - n_failed, n_cases);
    assert_true(n_cases > 0);
    assert_int_equal(n_failed, 0);
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(a, b);
}

int main(void)
{
    DIR *dir = opendir(CASES_DIR);
    struct dirent *e;
    while (dir && (e = readdir(dir)) && n_files < MAX_FILES) {
        size_t n = strlen(e->d_name);
        if (n > 6 && !strcmp(e->d_name + n - 6, ".jsonl"))
            snprintf(files[n_files++], sizeof files[0], "%s/%s", CASES_DIR, e->d_name);
    }
    if (dir)
        closedir(dir);
    qsort(files, (size_t)n_files, sizeof files[0], compare_paths);
    if (n_files == 0) {
        fprintf(stderr, "test_cases: no %s/*.jsonl files\n", CASES_DIR);
        return 1;
    }
    struct CMUnitTest tests[MAX_FILES];
    for (int i = 0; i < n_files; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test(test_case_file);
        tests[i].name = files[i];
        tests[i].initial_state = files[i];
    }
    return _cmocka_run_group_tests("tests/cases", tests, (size_t)n_files, setup_engine,
                                   teardown_engine);
}
