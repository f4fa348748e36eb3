/* test_cases: runs the data-driven triage cases in tests/cases/NAME.jsonl
 * against the shipped intents/ and kb/. Each line is one case:
 *   {"text", "lang"?, "detected"?, "context"?, "action", "intent"?, "article"?,
 *    "reason"?, "queue"?, "priority"?, "sensitive"?, "answer"?, "collect"?, "signals"?,
 *    "note"?}
 * Without "lang", the language is detected among the intents' and KB's languages (langid.h),
 * English when unsure: what the server does for a chat whose hello has no lang; "detected"
 * is then the language the detection must find. "context" is the conversation so far
 * ({"n_clarify", "n_not_helped", "n_repeats", "anger"}, struct triage_context); "collect" is
 * the field a collect handoff asks for; "signals" holds the message's signals that must be
 * as given ({"person_request", "not_helped", "anger", "howto"}).
 * A line {"fixture": FILE, "settings"?: {...}} makes the cases after it in its file run
 * against the intents in tests/cases/fixtures/FILE alone (no KB), with the named triage
 * settings ("t_answer", "t_clarify", "t_in_scope", "t_known") changed from the defaults.
 * A failing case is reported with its file:line, what was expected and
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

#define CASES_DIR    "tests/cases"
#define FIXTURES_DIR CASES_DIR "/fixtures"
#define MAX_FILES    64

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

/* The engine a {"fixture"} line names: its intents alone, trained, with its settings. Returns
 * NULL (and says why) when the fixture cannot be loaded. */
static struct triage *fixture_engine(const char *path, int lineno, const json_t *line)
{
    const char *name = json_string_value(json_object_get(line, "fixture"));
    char file[512];
    snprintf(file, sizeof file, "%s/%s", FIXTURES_DIR, name ? name : "");
    struct intents *set = intents_new();
    struct intents_load_report report = {0};
    struct intents_train_options o = {.is_quiet = 1};
    if (!name || !set || intents_load_path(set, file, NULL, &report) || report.n_skipped ||
        intents_train(set, &o)) {
        fprintf(stderr, "%s:%d: cannot load the fixture %s\n", path, lineno, file);
        intents_free(set);
        return NULL;
    }
    struct triage_settings s;
    triage_settings_default(&s);
    const json_t *settings = json_object_get(line, "settings");
    static const struct {
        const char *name;
        size_t offset;
    } knobs[] = {
        {"t_answer", offsetof(struct triage_settings, t_answer)},
        {"t_clarify", offsetof(struct triage_settings, t_clarify)},
        {"t_in_scope", offsetof(struct triage_settings, t_in_scope)},
        {"t_known", offsetof(struct triage_settings, t_known)},
    };
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const json_t *v = json_object_get(settings, knobs[i].name);
        if (v)
            *(double *)((char *)&s + knobs[i].offset) = json_number_value(v);
    }
    return triage_new(&s, set, NULL);
}

/* The conversation so far, from a case's "context". */
static void case_context(const json_t *c, struct triage_context *ctx)
{
    const json_t *o = json_object_get(c, "context");
    memset(ctx, 0, sizeof *ctx);
    ctx->n_clarify = (int)json_integer_value(json_object_get(o, "n_clarify"));
    ctx->n_not_helped = (int)json_integer_value(json_object_get(o, "n_not_helped"));
    ctx->n_repeats = (int)json_integer_value(json_object_get(o, "n_repeats"));
    ctx->anger = (int)json_integer_value(json_object_get(o, "anger"));
}

/* Returns 1 when a string expectation is absent or met. */
static int want_string(const json_t *c, const char *key, const char *got)
{
    const char *want = json_string_value(json_object_get(c, key));
    return !want || (got && !strcmp(want, got));
}

/* Returns 1 when an integer (or boolean) expectation is absent or met. */
static int want_int(const json_t *c, const char *key, int got)
{
    const json_t *v = json_object_get(c, key);
    if (!v)
        return 1;
    return json_is_boolean(v) ? json_is_true(v) == (got != 0) : json_integer_value(v) == got;
}

/* Returns 1 when every expectation beyond action, intent and article is met. */
static int case_details_hold(const json_t *c, const struct triage_decision *d)
{
    const json_t *sig = json_object_get(c, "signals");
    return want_string(c, "reason", d->evidence.reason) && want_string(c, "queue", d->queue) &&
           want_int(c, "priority", d->priority) && want_int(c, "sensitive", d->is_sensitive) &&
           want_string(c, "answer", d->answer) && want_string(c, "collect", d->collect_field) &&
           want_int(sig, "person_request", d->signals.is_person_request) &&
           want_int(sig, "not_helped", d->signals.is_not_helped) &&
           want_int(sig, "anger", d->signals.anger) && want_int(sig, "howto", d->signals.is_howto);
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
    struct triage *t = engine, *fixture = NULL;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len <= 1)
            continue;
        json_error_t err;
        json_t *c = json_loadb(line, (size_t)len, 0, &err);
        if (json_object_get(c, "fixture")) {
            triage_free(fixture);
            t = fixture = fixture_engine(path, lineno, c);
            json_decref(c);
            if (!t)
                break; /* the rest of the file would be decided by the wrong intents */
            continue;
        }
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
        struct triage_context ctx;
        case_context(c, &ctx);
        int rc = triage_decide(t, text, strlen(text), lang, &ctx, &d);
        int ok = rc == 0 && !strcmp(triage_action_name(d.action), action) &&
                 (!intent || !strcmp(d.intent, intent)) && (!article || has_article(&d, article)) &&
                 case_details_hold(c, &d);
        if (!ok) {
            n_failed++;
            /* The case as written: every expectation it holds. */
            fprintf(stderr, "%s:%d: \"%s\"\n    expected %s", path, lineno, text, line);
            if (rc)
                fprintf(stderr, "    got error %s\n", cd_strerror(rc));
            else
                fprintf(
                    stderr,
                    "    got      %s %s (confidence %.2f, reason %s, top %s %.2f%s%s; queue %s, "
                    "priority %d, sensitive %d, signals %d/%d/%d/%d; answer \"%s\")\n",
                    triage_action_name(d.action), d.intent[0] ? d.intent : "-", d.confidence,
                    d.evidence.reason, d.evidence.n_model ? d.evidence.model[0].intent : "-",
                    d.evidence.n_model ? d.evidence.model[0].probability : 0.0,
                    d.n_articles ? ", article " : "", d.n_articles ? d.articles[0].id : "",
                    d.queue[0] ? d.queue : "-", d.priority, d.is_sensitive,
                    d.signals.is_person_request, d.signals.is_not_helped, d.signals.anger,
                    d.signals.is_howto, d.answer ? d.answer : "");
        }
        triage_decision_clear(&d);
        json_decref(c);
    }
    if (!t)
        n_failed++;
    triage_free(fixture);
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
