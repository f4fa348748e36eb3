/* intents: loads intent definitions, matches their rules and runs the model.
 *
 * DESIGN. Definitions are validated field by field as they load; a bad one is
 * reported (file and field) and skipped without touching the set, so one typo
 * never takes the shipped intents down. intents_train() compiles the rules
 * and fits the model (model.h); from then on nothing in the set changes, so
 * classification needs no lock: all mutable state lives in the caller's
 * struct intents_scratch. */
#include "intents.h"

#include "cd.h"
#include "model.h"
#include "scope.h"
#include "text.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A phrase rule: stemmed tokens (hashed) that must appear in order, contiguous. */
struct rule_pattern {
    uint64_t *tokens;
    int n_tokens;
    int intent;
    int rank;         /* n_tokens, + 1000 for a person request: the longest wins */
    const char *text; /* borrowed from the intent */
};

/* Patterns are looked up by their first token's low 6 bits (the bit of the
 * message's token mask): a message only tries the patterns whose first
 * token it may contain. */
#define PATTERN_BUCKETS 64

struct rule_regex {
    regex_t re;
    int intent;
    const char *text;
};

struct intents {
    struct intent *items;
    int n_items;
    int cap_items;
    int *cap_examples; /* per intent */
    struct rule_pattern *patterns;
    int n_patterns;
    int *pattern_order;                     /* pattern indexes by bucket, ascending in each */
    int pattern_start[PATTERN_BUCKETS + 1]; /* bucket b: pattern_order[start[b]..start[b+1]) */
    struct rule_regex *regexes;
    int n_regexes;
    struct model *model;
    int *class_intent; /* model class -> intent index */
    int n_classes;
    int n_langs;                 /* distinct languages among the model's classes */
    unsigned char *class_is_oos; /* per class: the out-of-scope class */
    double temperature;
    struct scope_model scope;   /* P(in scope), learned by cross-fitting */
    double oos_prior;           /* share of traffic assumed out of scope */
    struct intents_crossfit cf; /* what the cross-fitting saw, for the author's report */
    double train_ms;
    double train_cpu_ms;
    int is_trained;
};

struct intents_scratch {
    struct text_tokenizers toks;   /* by language, for intents_classify() */
    struct text_analysis analysis; /* intents_classify()'s message */
    struct model_feats feats;
    struct model_scratch model;
    uint64_t *tokens; /* the message's tokens, hashed */
    int cap_tokens;
    double *p;
    double *raw;
    unsigned char *off;
    int cap_p;
};

static const char *const person_request_names[] = {
    "human",         "agent",          "person",         "human_agent",        "talk_to_human",
    "talk_to_agent", "speak_to_human", "speak_to_agent", "live_agent",         "representative",
    "ask_for_human", "request_human",  "request_agent",  "human_handoff",      "hablar_con_persona",
    "persona",       "humano",         "agente",         "parler_a_un_humain", NULL,
};

static int is_person_request_name(const char *name)
{
    for (int i = 0; person_request_names[i]; i++)
        if (!strcmp(name, person_request_names[i]))
            return 1;
    return 0;
}

/* ---- loading ----------------------------------------------------------- */

static void report_error(struct intents_load_report *report, const char *file, const char *field,
                         const char *message)
{
    if (report) {
        report->n_skipped++;
        if (report->on_error) {
            report->on_error(report->ctx, file, field, message);
            return;
        }
        /* Without a handler, the first 20 go to stderr; the count tells the rest. */
        if (report->n_skipped > 20)
            return;
    }
    fprintf(stderr, "%s: %s: %s\n", file, field, message);
}

struct intents *intents_new(void)
{
    struct intents *set = calloc(1, sizeof *set);
    if (set)
        set->temperature = 1.0;
    return set;
}

static void free_strings(char **v, int n)
{
    if (!v)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void intent_clear(struct intent *it)
{
    free(it->name);
    free(it->description);
    free(it->lang);
    free_strings(it->examples, it->n_examples);
    free_strings(it->patterns, it->n_patterns);
    free_strings(it->regex, it->n_regex);
    free(it->response);
    free(it->article);
    free(it->collect.field);
    free(it->collect.prompt);
    free(it->collect.regex);
    free(it->queue);
    memset(it, 0, sizeof *it);
}

void intents_free(struct intents *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n_items; i++)
        intent_clear(&set->items[i]);
    free(set->items);
    free(set->cap_examples);
    for (int i = 0; i < set->n_patterns; i++)
        free(set->patterns[i].tokens);
    free(set->patterns);
    free(set->pattern_order);
    for (int i = 0; i < set->n_regexes; i++)
        regfree(&set->regexes[i].re);
    free(set->regexes);
    model_free(set->model);
    free(set->class_intent);
    free(set->class_is_oos);
    intents_crossfit_clear(&set->cf);
    free(set);
}

int intents_find(const struct intents *set, const char *name)
{
    for (int i = 0; i < set->n_items; i++)
        if (!strcmp(set->items[i].name, name))
            return i;
    return -1;
}

int intents_count(const struct intents *set)
{
    return set->n_items;
}

const struct intent *intents_get(const struct intents *set, int i)
{
    return i >= 0 && i < set->n_items ? &set->items[i] : NULL;
}

int intents_is_trained(const struct intents *set)
{
    return set->is_trained;
}

double intents_train_ms(const struct intents *set)
{
    return set->train_ms;
}

double intents_train_cpu_ms(const struct intents *set)
{
    return set->train_cpu_ms;
}

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

double intents_temperature(const struct intents *set)
{
    return set->temperature;
}

void intents_set_temperature(struct intents *set, double temperature)
{
    if (temperature > 0)
        set->temperature = temperature;
}

/* Appends a moved-in intent; returns its index or CD_ENOMEM (it is cleared then). */
static int push_intent(struct intents *set, struct intent *it)
{
    if (cd_grow_each(&set->cap_items, set->n_items, 16, &set->items, sizeof *set->items,
                     &set->cap_examples, sizeof *set->cap_examples, (void *)NULL))
        goto fail;
    set->items[set->n_items] = *it;
    set->cap_examples[set->n_items] = it->n_examples;
    memset(it, 0, sizeof *it);
    return set->n_items++;
fail:
    intent_clear(it);
    return CD_ENOMEM;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= INTENT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* Labels from example files (public data, chat exports) may hold any
 * printable characters ("reverted_card_payment?"). */
static int valid_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= INTENT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

struct token_list {
    uint64_t *v;
    int n;
    int cap;
    int rc;
};

static uint64_t hash_token(const char *s, int n)
{
    return cd_fnv1a64(CD_FNV64_INIT, s, (size_t)n);
}

static int on_token(void *ctx, const char *token, int n_token, int start, int end)
{
    struct token_list *l = ctx;
    (void)start;
    (void)end;
    if (cd_grow(&l->v, &l->cap, l->n, sizeof *l->v, 32)) {
        l->rc = CD_ENOMEM;
        return 1;
    }
    l->v[l->n++] = hash_token(token, n_token);
    return 0;
}

/* Reads an optional array of strings at key into *out / *n_out. Returns 0, or
 * CD_EINVAL with a message in msg. */
static int get_strings(json_t *obj, const char *key, char ***out, int *n_out, char *msg,
                       size_t msg_cap)
{
    json_t *a = json_object_get(obj, key);
    *out = NULL;
    *n_out = 0;
    if (!a || json_is_null(a))
        return 0;
    if (json_is_string(a)) {
        /* A single string is accepted as a one-element list. */
        *out = malloc(sizeof **out);
        if (!*out || !(**out = strdup(json_string_value(a)))) {
            free(*out);
            *out = NULL;
            return CD_ENOMEM;
        }
        *n_out = 1;
        return 0;
    }
    if (!json_is_array(a)) {
        snprintf(msg, msg_cap, "must be an array of strings");
        return CD_EINVAL;
    }
    size_t n = json_array_size(a);
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return CD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s) || json_string_length(s) == 0) {
            snprintf(msg, msg_cap, "item %zu must be a non-empty string", i);
            free_strings(v, (int)i);
            return CD_EINVAL;
        }
        if (!(v[i] = strdup(json_string_value(s)))) {
            free_strings(v, (int)i);
            return CD_ENOMEM;
        }
    }
    *out = v;
    *n_out = (int)n;
    return 0;
}

/* Reads an optional string at key into *out. Returns 0 or CD_EINVAL. */
static int get_string(json_t *obj, const char *key, char **out, char *msg, size_t msg_cap)
{
    json_t *s = json_object_get(obj, key);
    *out = NULL;
    if (!s || json_is_null(s))
        return 0;
    if (!json_is_string(s)) {
        snprintf(msg, msg_cap, "must be a string");
        return CD_EINVAL;
    }
    *out = strdup(json_string_value(s));
    return *out ? 0 : CD_ENOMEM;
}

static int check_regex(const char *pattern, char *msg, size_t msg_cap)
{
    char why[128];
    if (cd_regex_check(pattern, why, sizeof why)) {
        snprintf(msg, msg_cap, "regular expression \"%.60s\": %s", pattern, why);
        return CD_EINVAL;
    }
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_ICASE);
    if (rc) {
        char err[128];
        regerror(rc, &re, err, sizeof err);
        snprintf(msg, msg_cap, "invalid regular expression \"%.60s\": %s", pattern, err);
        return CD_EINVAL;
    }
    regfree(&re);
    return 0;
}

static int pattern_has_tokens(const char *lang, const char *pattern)
{
    struct text_tokenizer *tok = text_tokenizer_new(lang);
    struct token_list l = {0};
    if (!tok)
        return 0;
    text_tokenize(tok, pattern, strlen(pattern), TEXT_KEEP_STOPWORDS, on_token, &l);
    int n = l.n;
    free(l.v);
    text_tokenizer_free(tok);
    return n > 0;
}

/* Validates and adds one definition object. Reports and returns CD_EINVAL
 * for an invalid one (the set is unchanged). */
static int load_definition(struct intents *set, json_t *obj, const char *file, int index,
                           struct intents_load_report *report)
{
    struct intent it = {0};
    char field[128], msg[256], detail[256];
    int rc = CD_EINVAL;
    msg[0] = '\0';
    detail[0] = '\0';
    if (index >= 0)
        snprintf(field, sizeof field, "[%d]", index);
    else
        field[0] = '\0';
    char where[96];
    snprintf(where, sizeof where, "%s", field);
#define FAIL(f, ...)                                                                               \
    do {                                                                                           \
        snprintf(field, sizeof field, "%s%s%s", where, where[0] ? "." : "", (f));                  \
        snprintf(msg, sizeof msg, __VA_ARGS__);                                                    \
        goto fail;                                                                                 \
    } while (0)
#define CHECK(call, f)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ == CD_ENOMEM) {                                                                    \
            rc = CD_ENOMEM;                                                                        \
            FAIL(f, "out of memory");                                                              \
        }                                                                                          \
        if (rc_)                                                                                   \
            FAIL(f, "%s", detail);                                                                 \
    } while (0)

    if (!json_is_object(obj))
        FAIL("", "an intent definition must be a JSON object");
    json_t *name = json_object_get(obj, "name");
    if (!json_is_string(name))
        FAIL("name", "missing or not a string");
    if (!valid_name(json_string_value(name)))
        FAIL("name", "\"%.80s\" must be 1-63 characters of letters, digits, _ - .",
             json_string_value(name));
    if (intents_find(set, json_string_value(name)) >= 0)
        FAIL("name", "duplicate intent \"%s\"", json_string_value(name));
    it.name = strdup(json_string_value(name));
    if (!it.name) {
        rc = CD_ENOMEM;
        FAIL("name", "out of memory");
    }
    snprintf(where, sizeof where, "%s", it.name);
    CHECK(get_string(obj, "description", &it.description, detail, sizeof detail), "description");
    CHECK(get_string(obj, "lang", &it.lang, detail, sizeof detail), "lang");
    char lang_code[4];
    if (it.lang && !text_lang_code(it.lang, lang_code))
        FAIL("lang", "\"%.20s\" is not a language code", it.lang);
    if (!it.lang && !(it.lang = strdup("en"))) {
        rc = CD_ENOMEM;
        FAIL("lang", "out of memory");
    }
    CHECK(get_strings(obj, "examples", &it.examples, &it.n_examples, detail, sizeof detail),
          "examples");
    CHECK(get_strings(obj, "patterns", &it.patterns, &it.n_patterns, detail, sizeof detail),
          "patterns");
    for (int i = 0; i < it.n_patterns; i++)
        if (!pattern_has_tokens(it.lang, it.patterns[i])) {
            char f[32];
            snprintf(f, sizeof f, "patterns[%d]", i);
            FAIL(f, "\"%.60s\" has no words", it.patterns[i]);
        }
    CHECK(get_strings(obj, "regex", &it.regex, &it.n_regex, detail, sizeof detail), "regex");
    for (int i = 0; i < it.n_regex; i++)
        if (check_regex(it.regex[i], detail, sizeof detail)) {
            char f[32];
            snprintf(f, sizeof f, "regex[%d]", i);
            FAIL(f, "%s", detail);
        }
    CHECK(get_string(obj, "response", &it.response, detail, sizeof detail), "response");
    CHECK(get_string(obj, "article", &it.article, detail, sizeof detail), "article");
    if (it.article && (!it.article[0] || strlen(it.article) >= 128))
        FAIL("article", "must be a KB article id of 1-127 characters");

    char *action = NULL;
    CHECK(get_string(obj, "action", &action, detail, sizeof detail), "action");
    if (!action || !strcmp(action, "answer"))
        it.action = INTENT_ANSWER;
    else if (!strcmp(action, "handoff"))
        it.action = INTENT_HANDOFF;
    else if (!strcmp(action, "collect"))
        it.action = INTENT_COLLECT;
    else {
        snprintf(detail, sizeof detail, "\"%.40s\" is not one of answer, handoff, collect", action);
        free(action);
        FAIL("action", "%s", detail);
    }
    free(action);

    json_t *collect = json_object_get(obj, "collect");
    if (it.action == INTENT_COLLECT && !json_is_object(collect))
        FAIL("collect", "action \"collect\" needs a collect object {field, prompt, regex?}");
    if (collect && !json_is_null(collect)) {
        if (!json_is_object(collect))
            FAIL("collect", "must be an object {field, prompt, regex?}");
        CHECK(get_string(collect, "field", &it.collect.field, detail, sizeof detail),
              "collect.field");
        CHECK(get_string(collect, "prompt", &it.collect.prompt, detail, sizeof detail),
              "collect.prompt");
        CHECK(get_string(collect, "regex", &it.collect.regex, detail, sizeof detail),
              "collect.regex");
        if (!it.collect.field || !it.collect.field[0])
            FAIL("collect.field", "missing");
        if (!it.collect.prompt || !it.collect.prompt[0])
            FAIL("collect.prompt", "missing");
        if (it.collect.regex && check_regex(it.collect.regex, detail, sizeof detail))
            FAIL("collect.regex", "%s", detail);
    }

    CHECK(get_string(obj, "queue", &it.queue, detail, sizeof detail), "queue");
    if (it.queue && !valid_name(it.queue))
        FAIL("queue", "\"%.40s\" is not a queue name (letters, digits, _ - .)", it.queue);
    if (!it.queue && !(it.queue = strdup("general"))) {
        rc = CD_ENOMEM;
        FAIL("queue", "out of memory");
    }
    json_t *priority = json_object_get(obj, "priority");
    it.priority = 3;
    if (priority && !json_is_null(priority)) {
        if (!json_is_integer(priority) || json_integer_value(priority) < 1 ||
            json_integer_value(priority) > 5)
            FAIL("priority", "must be an integer from 1 to 5");
        it.priority = (int)json_integer_value(priority);
    }
    json_t *sensitive = json_object_get(obj, "sensitive");
    if (sensitive && !json_is_null(sensitive)) {
        if (!json_is_boolean(sensitive))
            FAIL("sensitive", "must be true or false");
        it.is_sensitive = json_is_true(sensitive);
    }
    if (!it.response && !it.article && it.action == INTENT_ANSWER && strcmp(it.name, "oos") != 0)
        FAIL("response", "an \"answer\" intent needs a response or an article");
    if (it.n_examples == 0 && it.n_patterns == 0 && it.n_regex == 0)
        FAIL("examples", "needs examples, patterns or regex to be recognised");
    it.is_person_request = is_person_request_name(it.name);
    it.is_oos = !strcmp(it.name, "oos");
    if (push_intent(set, &it) < 0)
        return CD_ENOMEM;
    if (report)
        report->n_loaded++;
    return 0;
#undef CHECK
#undef FAIL
fail:
    report_error(report, file, field, msg);
    intent_clear(&it);
    return rc;
}

int intents_load_json(struct intents *set, const char *json, size_t len, const char *file,
                      struct intents_load_report *report)
{
    if (set->is_trained)
        return CD_ESTATE;
    json_error_t err;
    json_t *root = json_loadb(json, len, 0, &err);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof msg, "invalid JSON at line %d: %s", err.line, err.text);
        report_error(report, file, "(file)", msg);
        return CD_EPARSE;
    }
    int rc = 0;
    if (json_is_array(root)) {
        for (size_t i = 0; i < json_array_size(root); i++) {
            int r = load_definition(set, json_array_get(root, i), file, (int)i, report);
            if (r == CD_ENOMEM) {
                rc = r;
                break;
            }
        }
    } else {
        rc = load_definition(set, root, file, -1, report);
        if (rc == CD_EINVAL)
            rc = 0; /* reported and skipped */
    }
    json_decref(root);
    return rc;
}

static int add_example_to(struct intents *set, int i, const char *text)
{
    struct intent *it = &set->items[i];
    if (cd_grow(&it->examples, &set->cap_examples[i], it->n_examples, sizeof *it->examples, 16))
        return CD_ENOMEM;
    if (!(it->examples[it->n_examples] = strdup(text)))
        return CD_ENOMEM;
    it->n_examples++;
    return 0;
}

int intents_add_example(struct intents *set, const char *text, const char *intent,
                        const char *oos_label)
{
    if (set->is_trained)
        return CD_ESTATE;
    if (!text || !intent || !valid_label(intent))
        return CD_EINVAL;
    int i = intents_find(set, intent);
    if (i < 0) {
        struct intent it = {0};
        int is_oos = !strcmp(intent, oos_label ? oos_label : "oos");
        it.name = strdup(intent);
        it.lang = strdup("en");
        it.queue = strdup("general");
        /* The clarify label: the name with spaces, "card_arrival" -> "card arrival". */
        it.description = strdup(intent);
        if (!it.name || !it.lang || !it.queue || !it.description) {
            intent_clear(&it);
            return CD_ENOMEM;
        }
        for (char *p = it.description; *p; p++)
            if (*p == '_' || *p == '-' || *p == '.')
                *p = ' ';
        it.priority = 3;
        it.action = is_oos ? INTENT_HANDOFF : INTENT_ANSWER;
        it.is_oos = is_oos;
        it.is_person_request = is_person_request_name(intent);
        if ((i = push_intent(set, &it)) < 0)
            return i;
    }
    return add_example_to(set, i, text);
}

static int load_jsonl(struct intents *set, const char *path, const char *oos_label,
                      struct intents_load_report *report)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? CD_ENOTFOUND : CD_EIO;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    char where[512];
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        json_error_t err;
        json_t *row = json_loadb(line, (size_t)len, 0, &err);
        if (!row || !json_is_object(row)) {
            report_error(report, where, "(line)", "not a JSON object");
            json_decref(row);
            continue;
        }
        json_t *text = json_object_get(row, "text");
        json_t *intent = json_object_get(row, "intent");
        if (!json_is_string(text) || json_string_length(text) == 0)
            report_error(report, where, "text", "missing or not a non-empty string");
        else if (!json_is_string(intent) || !valid_label(json_string_value(intent)))
            report_error(report, where, "intent", "missing, empty, or longer than 63 bytes");
        else if ((rc = intents_add_example(set, json_string_value(text), json_string_value(intent),
                                           oos_label)) == 0) {
            if (report)
                report->n_loaded++;
        }
        json_decref(row);
        if (rc == CD_ENOMEM)
            break;
        rc = 0;
    }
    free(line);
    fclose(f);
    return rc;
}

static int load_file(struct intents *set, const char *path, const char *oos_label,
                     struct intents_load_report *report)
{
    if (cd_has_suffix(path, ".jsonl"))
        return load_jsonl(set, path, oos_label, report);
    size_t len;
    char *text = cd_read_file(path, &len);
    if (!text)
        return errno == ENOENT ? CD_ENOTFOUND : CD_EIO;
    int rc = intents_load_json(set, text, len, path, report);
    free(text);
    return rc == CD_EPARSE ? 0 : rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int intents_load_path(struct intents *set, const char *path, const char *oos_label,
                      struct intents_load_report *report)
{
    if (set->is_trained)
        return CD_ESTATE;
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? CD_ENOTFOUND : CD_EIO;
    if (!S_ISDIR(st.st_mode))
        return load_file(set, path, oos_label, report);
    DIR *dir = opendir(path);
    if (!dir)
        return CD_EIO;
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' ||
            !(cd_has_suffix(e->d_name, ".json") || cd_has_suffix(e->d_name, ".jsonl")))
            continue;
        if ((rc = cd_grow(&names, &cap, n, sizeof *names, 32)))
            goto done;
        size_t need = strlen(path) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(need))) {
            rc = CD_ENOMEM;
            goto done;
        }
        snprintf(names[n], need, "%s/%s", path, e->d_name);
        n++;
    }
    if (n) /* names is NULL in a directory with no intent files */
        qsort(names, (size_t)n, sizeof *names, compare_names);
    for (int i = 0; i < n && rc == 0; i++) {
        rc = load_file(set, names[i], oos_label, report);
        if (rc == CD_ENOTFOUND || rc == CD_EIO) {
            report_error(report, names[i], "(file)", cd_strerror(rc));
            rc = 0;
        }
    }
done:
    closedir(dir);
    free_strings(names, n);
    return rc;
}

/* ---- training ---------------------------------------------------------- */

static int compile_rules(struct intents *set)
{
    int n_pat = 0, n_re = 0;
    for (int i = 0; i < set->n_items; i++) {
        n_pat += set->items[i].n_patterns;
        n_re += set->items[i].n_regex;
    }
    set->patterns = calloc((size_t)(n_pat ? n_pat : 1), sizeof *set->patterns);
    set->regexes = calloc((size_t)(n_re ? n_re : 1), sizeof *set->regexes);
    if (!set->patterns || !set->regexes)
        return CD_ENOMEM;
    for (int i = 0; i < set->n_items; i++) {
        const struct intent *it = &set->items[i];
        struct text_tokenizer *tok = NULL;
        if (it->n_patterns && !(tok = text_tokenizer_new(it->lang)))
            return CD_ENOMEM;
        for (int j = 0; j < it->n_patterns; j++) {
            struct token_list l = {0};
            text_tokenize(tok, it->patterns[j], strlen(it->patterns[j]), TEXT_KEEP_STOPWORDS,
                          on_token, &l);
            if (l.rc || l.n == 0) {
                free(l.v);
                continue;
            }
            struct rule_pattern *p = &set->patterns[set->n_patterns++];
            p->tokens = l.v;
            p->n_tokens = l.n;
            p->intent = i;
            p->rank = l.n + (it->is_person_request ? 1000 : 0);
            p->text = it->patterns[j];
        }
        text_tokenizer_free(tok);
        for (int j = 0; j < it->n_regex; j++) {
            struct rule_regex *r = &set->regexes[set->n_regexes];
            if (regcomp(&r->re, it->regex[j], REG_EXTENDED | REG_NOSUB | REG_ICASE))
                continue;
            r->intent = i;
            r->text = it->regex[j];
            set->n_regexes++;
        }
    }
    /* The bucket index (a counting sort keeps each bucket ascending). */
    set->pattern_order = malloc((size_t)(set->n_patterns ? set->n_patterns : 1) * sizeof(int));
    if (!set->pattern_order)
        return CD_ENOMEM;
    int count[PATTERN_BUCKETS] = {0};
    for (int i = 0; i < set->n_patterns; i++)
        count[set->patterns[i].tokens[0] & (PATTERN_BUCKETS - 1)]++;
    set->pattern_start[0] = 0;
    for (int b = 0; b < PATTERN_BUCKETS; b++)
        set->pattern_start[b + 1] = set->pattern_start[b] + count[b];
    int fill[PATTERN_BUCKETS];
    memcpy(fill, set->pattern_start, sizeof fill);
    for (int i = 0; i < set->n_patterns; i++)
        set->pattern_order[fill[set->patterns[i].tokens[0] & (PATTERN_BUCKETS - 1)]++] = i;
    return 0;
}

/* Tokenizers by language for training, a handful at most. */
struct tokenizer_cache {
    struct text_tokenizer *tok[8];
    int n;
};

static struct text_tokenizer *cache_get(struct tokenizer_cache *c, const char *lang)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(text_tokenizer_lang(c->tok[i]), lang ? lang : "en"))
            return c->tok[i];
    if (c->n == 8)
        return c->tok[0];
    struct text_tokenizer *t = text_tokenizer_new(lang);
    if (t)
        c->tok[c->n++] = t;
    return t;
}

static void cache_free(struct tokenizer_cache *c)
{
    for (int i = 0; i < c->n; i++)
        text_tokenizer_free(c->tok[i]);
}

/* Marks in off[] the classes a message in lang does not take part in:
 * another language's intents, when lang has intents of its own (the
 * out-of-scope class always takes part). */
static void mark_off(const struct intents *set, const char *lang, unsigned char *off)
{
    int K = set->n_classes;
    memset(off, 0, (size_t)K);
    if (set->n_langs <= 1)
        return;
    int has_lang = 0;
    for (int c = 0; c < K && !has_lang; c++)
        has_lang = !strcmp(set->items[set->class_intent[c]].lang, lang);
    for (int c = 0; c < K && has_lang; c++)
        off[c] = !set->class_is_oos[c] && strcmp(set->items[set->class_intent[c]].lang, lang);
}

void intents_crossfit_clear(struct intents_crossfit *cf)
{
    free(cf->gold);
    free(cf->example);
    free(cf->pred);
    free(cf->p_pred);
    free(cf->p_in);
    memset(cf, 0, sizeof *cf);
}

const struct scope_model *intents_scope(const struct intents *set)
{
    return &set->scope;
}

const struct intents_crossfit *intents_crossfit(const struct intents *set)
{
    return &set->cf;
}

/* A background message this close (cosine over the model's features) to one
 * of the bot's own examples is taken to be in scope for this bot (0.5: most
 * of its weighted words and character n-grams shared). */
#define BACKGROUND_MAX_SIMILARITY 0.5

/* Cross-fitting. The examples of each intent are dealt into `folds` folds,
 * and the in-scope intents themselves into `folds` groups. Fold f's model is
 * fitted on everything but fold f's examples and group f's intents; it then
 * classifies fold f's examples of the other intents (questions the bot was
 * taught, in words it has not seen: in-scope rows) and every example of
 * group f's intents (questions about something it was never taught:
 * out-of-scope rows, as are held-out examples of an "oos" intent). From
 * those rows: the softmax temperature (in-scope rows), and P(in scope)
 * (scope.h). The served model is fitted afterwards on every example. */
static int crossfit(struct intents *set, struct model_feats *feats, const int *labels,
                    const int *ex_index, int n, int folds, int epochs, double lr,
                    const struct model_options *o, struct tokenizer_cache *cache)
{
    int K = set->n_classes, rc = CD_ENOMEM;
    int *group = NULL, *order = NULL, *sub_labels = NULL, *row_ex = NULL, *lb = NULL;
    struct model_feats *sub = NULL;
    float *raw = NULL, *row_known = NULL;
    short *row_unknown = NULL, *row_words = NULL;
    unsigned char *row_kind = NULL, *off = NULL;
    double *z = NULL, *pz = NULL, *lg = NULL;
    struct scope_row *rows = NULL;
    struct model_scratch ms = {0};
    /* The background (scope.h) in the languages of the intents. */
    int n_bg = 0, cap_bg = 0;
    struct model_feats *bg = NULL;
    const char **bg_lang = NULL;
    for (int b = 0; scope_background[b].text; b++) {
        int is_used = 0;
        for (int c = 0; c < K && !is_used; c++)
            is_used = !set->class_is_oos[c] &&
                      !strcmp(set->items[set->class_intent[c]].lang, scope_background[b].lang);
        if (!is_used)
            continue;
        if (cd_grow_each(&cap_bg, n_bg, 256, &bg, sizeof *bg, &bg_lang, sizeof *bg_lang,
                         (void *)NULL))
            goto done;
        struct text_tokenizer *tok = cache_get(cache, scope_background[b].lang);
        memset(&bg[n_bg], 0, sizeof bg[n_bg]);
        bg_lang[n_bg] = scope_background[b].lang;
        if (!tok || model_featurize(tok, scope_background[b].text, strlen(scope_background[b].text),
                                    o->hash_bits, &bg[n_bg++]))
            goto done;
    }
    group = malloc((size_t)K * sizeof *group);
    order = malloc((size_t)K * sizeof *order);
    sub = malloc((size_t)n * sizeof *sub);
    sub_labels = malloc((size_t)n * sizeof *sub_labels);
    /* Each example is scored at most twice: as an in-scope row in its fold,
     * and as an out-of-scope row when its intent's group is held out. */
    int cap = 2 * n + folds * n_bg;
    raw = malloc((size_t)cap * K * sizeof *raw);
    row_ex = malloc((size_t)cap * sizeof *row_ex);
    row_kind = malloc((size_t)cap);
    row_known = malloc((size_t)cap * sizeof *row_known);
    row_unknown = malloc((size_t)cap * sizeof *row_unknown);
    row_words = malloc((size_t)cap * sizeof *row_words);
    z = malloc((size_t)K * sizeof *z);
    pz = malloc((size_t)K * sizeof *pz);
    off = malloc((size_t)K);
    if (!group || !order || !sub || !sub_labels || !raw || !row_ex || !row_kind || !row_known ||
        !row_unknown || !row_words || !z || !pz || !off)
        goto done;
    int n_in_classes = 0;
    for (int c = 0; c < K; c++) {
        group[c] = -1;
        if (!set->class_is_oos[c])
            order[n_in_classes++] = c;
    }
    uint64_t rng = o->seed ? o->seed : 1;
    for (int i = n_in_classes - 1; i > 0; i--) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((rng >> 33) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    /* Holding out intents needs at least two left to choose between. */
    if (n_in_classes >= 3)
        for (int r = 0; r < n_in_classes; r++)
            group[order[r]] = r % folds;

    int n_rows = 0;
    for (int f = 0; f < folds; f++) {
        int n_sub = 0;
        for (int i = 0; i < n; i++)
            if (group[labels[i]] != f && (ex_index[i] + labels[i]) % folds != f) {
                sub[n_sub] = feats[i];
                sub_labels[n_sub++] = labels[i];
            }
        if (n_sub == 0)
            continue;
        struct model *m = model_new(sub, n_sub, K, o);
        if (!m)
            goto done;
        if ((rc = model_fit(m, sub, sub_labels, n_sub, epochs, lr, o))) {
            model_free(m);
            goto done;
        }
        rc = CD_ENOMEM;
        struct model_index *ix = n_bg ? model_index_new(m, sub, n_sub) : NULL;
        if (n_bg && !ix) {
            model_free(m);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            int c = labels[i];
            int is_out = group[c] == f;
            if (!is_out && (ex_index[i] + c) % folds != f)
                continue;
            mark_off(set, set->items[set->class_intent[c]].lang, off);
            model_logits(m, &feats[i], &ms, z);
            float *row = raw + (size_t)n_rows * K;
            for (int k = 0; k < K; k++)
                row[k] = off[k] || group[k] == f ? -1e30f : (float)z[k];
            row_ex[n_rows] = i;
            row_kind[n_rows] = set->class_is_oos[c] ? SCOPE_BACKGROUND
                               : is_out             ? SCOPE_HELD_OUT
                                                    : SCOPE_IN;
            row_known[n_rows] = (float)model_known_share(m, &feats[i]);
            int nw = 0;
            row_unknown[n_rows] = (short)model_unknown_words(m, &feats[i], &nw);
            row_words[n_rows] = (short)nw;
            n_rows++;
        }
        /* The background, but for messages close to one of the examples
         * this fold was given: a bot that covers the weather keeps the
         * weather in scope. */
        for (int b = 0; b < n_bg; b++) {
            if (model_index_nearest(ix, m, &bg[b], &ms) >= BACKGROUND_MAX_SIMILARITY)
                continue;
            mark_off(set, bg_lang[b], off);
            model_logits(m, &bg[b], &ms, z);
            float *row = raw + (size_t)n_rows * K;
            for (int k = 0; k < K; k++)
                row[k] = off[k] || group[k] == f ? -1e30f : (float)z[k];
            row_ex[n_rows] = -1;
            row_kind[n_rows] = SCOPE_BACKGROUND;
            row_known[n_rows] = (float)model_known_share(m, &bg[b]);
            int nw = 0;
            row_unknown[n_rows] = (short)model_unknown_words(m, &bg[b], &nw);
            row_words[n_rows] = (short)nw;
            n_rows++;
        }
        model_index_free(ix);
        model_free(m);
    }

    /* The temperature, from the in-scope rows. */
    int n_in = 0;
    for (int r = 0; r < n_rows; r++)
        n_in += row_kind[r] == SCOPE_IN;
    lg = malloc((size_t)(n_in ? n_in : 1) * K * sizeof *lg);
    lb = malloc((size_t)(n_in ? n_in : 1) * sizeof *lb);
    rows = malloc((size_t)(n_rows ? n_rows : 1) * sizeof *rows);
    if (!lg || !lb || !rows)
        goto done;
    int h = 0;
    for (int r = 0; r < n_rows; r++)
        if (row_kind[r] == SCOPE_IN) {
            for (int k = 0; k < K; k++)
                lg[(size_t)h * K + k] = raw[(size_t)r * K + k];
            lb[h++] = labels[row_ex[r]];
        }
    if (h >= 20) {
        /* A few dozen held-out examples say little: shrink log(T) towards 0
         * (T = 1) as if 100 more examples had agreed with the raw model. */
        double t_fit = model_fit_temperature(lg, lb, h, K);
        set->temperature = exp(log(t_fit) * h / (h + 100.0));
    }

    /* P(in scope) from every row, at that temperature. */
    struct intents_crossfit *cf = &set->cf;
    intents_crossfit_clear(cf);
    cf->folds = folds;
    cf->gold = malloc((size_t)(n_in ? n_in : 1) * sizeof *cf->gold);
    cf->example = malloc((size_t)(n_in ? n_in : 1) * sizeof *cf->example);
    cf->pred = malloc((size_t)(n_in ? n_in : 1) * sizeof *cf->pred);
    cf->p_pred = malloc((size_t)(n_in ? n_in : 1) * sizeof *cf->p_pred);
    cf->p_in = malloc((size_t)(n_in ? n_in : 1) * sizeof *cf->p_in);
    if (!cf->gold || !cf->example || !cf->pred || !cf->p_pred || !cf->p_in)
        goto done;
    for (int r = 0; r < n_rows; r++) {
        for (int k = 0; k < K; k++) {
            z[k] = raw[(size_t)r * K + k];
            off[k] = z[k] <= -1e29;
        }
        model_softmax(z, K, set->temperature, pz);
        scope_features(z, pz, set->class_is_oos, off, K, row_known[r], row_unknown[r], row_words[r],
                       rows[r].f);
        int best = -1;
        for (int k = 0; k < K; k++)
            if (!off[k] && !set->class_is_oos[k] && (best < 0 || pz[k] > pz[best]))
                best = k;
        int is_in = row_kind[r] == SCOPE_IN;
        rows[r].kind = row_kind[r];
        rows[r].is_right = is_in && best == labels[row_ex[r]];
        if (is_in) {
            int q = cf->n_rows++;
            cf->gold[q] = set->class_intent[labels[row_ex[r]]];
            cf->example[q] = ex_index[row_ex[r]];
            cf->pred[q] = best >= 0 ? set->class_intent[best] : -1;
            cf->p_pred[q] = best >= 0 ? (float)pz[best] : 0;
            cf->n_right += rows[r].is_right;
        } else {
            cf->n_pseudo++;
        }
    }
    if ((rc = scope_fit(&set->scope, rows, n_rows, set->oos_prior)))
        goto done;
    for (int r = 0, q = 0; r < n_rows; r++)
        if (row_kind[r] == SCOPE_IN)
            cf->p_in[q++] = (float)scope_p_in(&set->scope, rows[r].f);
    rc = 0;
done:
    model_scratch_free(&ms);
    free(group);
    free(order);
    free(sub);
    free(sub_labels);
    free(raw);
    free(row_ex);
    free(row_kind);
    for (int b = 0; b < n_bg; b++)
        model_feats_free(&bg[b]);
    free(bg);
    free(bg_lang);
    free(row_known);
    free(row_unknown);
    free(row_words);
    free(z);
    free(pz);
    free(off);
    free(rows);
    free(lg);
    free(lb);
    return rc;
}

int intents_train(struct intents *set, const struct intents_train_options *options)
{
    if (set->is_trained)
        return CD_ESTATE;
    set->oos_prior =
        options && options->oos_prior > 0 && options->oos_prior < 1 ? options->oos_prior : 0.5;
    int64_t t0 = cd_now_us();
    double cpu0 = thread_cpu_ms();
    int rc = compile_rules(set);
    if (rc)
        return rc;

    struct tokenizer_cache cache = {0};
    struct model_feats *feats = NULL;
    int *labels = NULL, *ex_index = NULL;

    /* Classes: every intent with examples. */
    set->class_intent = malloc((size_t)(set->n_items ? set->n_items : 1) * sizeof(int));
    if (!set->class_intent)
        return CD_ENOMEM;
    int n = 0;
    set->n_classes = 0;
    for (int i = 0; i < set->n_items; i++)
        if (set->items[i].n_examples > 0) {
            set->class_intent[set->n_classes++] = i;
            n += set->items[i].n_examples;
        }
    int n_in_scope = 0;
    set->n_langs = 0;
    for (int c = 0; c < set->n_classes; c++) {
        n_in_scope += !set->items[set->class_intent[c]].is_oos;
        int is_new = 1;
        for (int d = 0; d < c && is_new; d++)
            is_new = strcmp(set->items[set->class_intent[d]].lang,
                            set->items[set->class_intent[c]].lang) != 0;
        set->n_langs += is_new;
    }
    if (n_in_scope < 1 && set->n_patterns == 0 && set->n_regexes == 0)
        return CD_EINVAL;
    if (set->n_classes < 2 || n == 0) {
        /* Rules only (or a single class): nothing to learn. */
        set->train_ms = (double)(cd_now_us() - t0) / 1000.0;
        set->train_cpu_ms = thread_cpu_ms() - cpu0;
        set->is_trained = 1;
        return 0;
    }

    struct model_options mo = {0};
    if (options) {
        mo.epochs = options->epochs;
        mo.hash_bits = options->hash_bits;
        mo.l2 = options->l2;
        mo.seed = options->seed;
    }
    int bits = mo.hash_bits >= 10 && mo.hash_bits <= 24 ? mo.hash_bits : 18;
    mo.hash_bits = bits;
    feats = calloc((size_t)n, sizeof *feats);
    labels = malloc((size_t)n * sizeof *labels);
    ex_index = calloc((size_t)n, sizeof *ex_index);
    set->class_is_oos = calloc((size_t)set->n_classes, 1);
    if (!feats || !labels || !ex_index || !set->class_is_oos) {
        rc = CD_ENOMEM;
        goto done;
    }
    int k = 0;
    for (int c = 0; c < set->n_classes; c++) {
        const struct intent *it = &set->items[set->class_intent[c]];
        set->class_is_oos[c] = (unsigned char)it->is_oos;
        struct text_tokenizer *tok = cache_get(&cache, it->lang);
        if (!tok) {
            rc = CD_ENOMEM;
            goto done;
        }
        for (int j = 0; j < it->n_examples; j++, k++) {
            if ((rc = model_featurize(tok, it->examples[j], strlen(it->examples[j]), bits,
                                      &feats[k])))
                goto done;
            labels[k] = c;
            ex_index[k] = j;
        }
    }

    /* Calibration and the in-scope model, by cross-fitting (crossfit()):
     * then the served model is fitted on everything. */
    struct model_options o = mo;
    int epochs = mo.epochs > 0 ? mo.epochs : 12;
    const double lr = 0.5;
    set->temperature = 1.0;
    if (!(options && options->is_no_holdout)) {
        int folds = options && options->folds >= 2 && options->folds <= 10 ? options->folds
                    : n >= 5000                                            ? 3
                                                                           : 5;
        if ((rc = crossfit(set, feats, labels, ex_index, n, folds, epochs, lr, &o, &cache)))
            goto done;
    }
    set->model = model_new(feats, n, set->n_classes, &o);
    if (!set->model) {
        rc = CD_ENOMEM;
        goto done;
    }
    if ((rc = model_fit(set->model, feats, labels, n, epochs, lr, &o)))
        goto done;
    set->train_ms = (double)(cd_now_us() - t0) / 1000.0;
    set->train_cpu_ms = thread_cpu_ms() - cpu0;
    set->is_trained = 1;
    if (!(options && options->is_quiet))
        fprintf(stderr,
                "intents: trained %d examples, %d classes, %d features in %.0f ms"
                " (%.0f ms CPU, temperature %.2f)\n",
                n, set->n_classes, model_n_features(set->model), set->train_ms, set->train_cpu_ms,
                set->temperature);
done:
    if (feats)
        for (int i = 0; i < n; i++)
            model_feats_free(&feats[i]);
    free(feats);
    free(labels);
    free(ex_index);
    cache_free(&cache);
    return rc;
}

/* ---- classifying ------------------------------------------------------- */

struct intents_scratch *intents_scratch_new(void)
{
    return calloc(1, sizeof(struct intents_scratch));
}

void intents_scratch_free(struct intents_scratch *s)
{
    if (!s)
        return;
    text_tokenizers_free(&s->toks);
    model_feats_free(&s->feats);
    model_scratch_free(&s->model);
    free(s->tokens);
    text_analysis_free(&s->analysis);
    free(s->p);
    free(s->raw);
    free(s->off);
    free(s);
}

/* mask has bit (token & 63) set for each of the n tokens: a pattern whose
 * first token is not among them is skipped without a scan. */
static int match_pattern(const struct rule_pattern *p, const uint64_t *tokens, int n, uint64_t mask)
{
    if (p->n_tokens > 0 && !((mask >> (p->tokens[0] & 63)) & 1))
        return 0;
    for (int i = 0; i + p->n_tokens <= n; i++) {
        int j = 0;
        while (j < p->n_tokens && tokens[i + j] == p->tokens[j])
            j++;
        if (j == p->n_tokens)
            return 1;
    }
    return 0;
}

static void result_reset(struct intents_result *out)
{
    memset(out, 0, sizeof *out);
    out->rule_intent = -1;
    out->known_share = 1.0;
    out->p_in = 1.0;
}

int intents_classify(const struct intents *set, struct intents_scratch *s, const char *text,
                     size_t n, const char *lang, struct intents_result *out)
{
    int rc = 0;
    if (set->is_trained) {
        struct text_tokenizer *tok = text_tokenizers_get(&s->toks, lang);
        rc = tok ? text_analyse(tok, text, n, &s->analysis) : CD_ENOMEM;
    }
    if (rc) {
        result_reset(out);
        return rc;
    }
    return intents_classify_analysed(set, s, &s->analysis, lang, out);
}

int intents_classify_analysed(const struct intents *set, struct intents_scratch *s,
                              const struct text_analysis *a, const char *lang,
                              struct intents_result *out)
{
    result_reset(out);
    if (!set->is_trained)
        return CD_ESTATE;
    char code[16];
    snprintf(code, sizeof code, "%s", lang && lang[0] ? lang : "en");
    int rc;

    /* Rules: the longest matching phrase wins; a person request beats all. */
    if (s->cap_tokens < a->n_words) {
        if (cd_resize(&s->tokens, (size_t)a->n_words, sizeof *s->tokens))
            return CD_ENOMEM;
        s->cap_tokens = a->n_words;
    }
    uint64_t *tokens = s->tokens;
    int n_tokens = a->n_words;
    uint64_t mask = 0;
    for (int i = 0; i < n_tokens; i++) {
        const struct text_word *w = &a->words[i];
        tokens[i] = hash_token(a->chars + w->stem_at, w->n_stem);
        mask |= (uint64_t)1 << (tokens[i] & 63);
    }
    out->n_tokens = n_tokens;
    /* The highest rank wins, the first pattern among equals: only the
     * buckets of the message's tokens can match. */
    int best = -1, best_len = 0;
    for (uint64_t bits = mask; bits; bits &= bits - 1) {
        int b = __builtin_ctzll(bits);
        for (int k = set->pattern_start[b]; k < set->pattern_start[b + 1]; k++) {
            int i = set->pattern_order[k];
            const struct rule_pattern *p = &set->patterns[i];
            if ((p->rank > best_len || (p->rank == best_len && i < best)) &&
                match_pattern(p, tokens, n_tokens, mask)) {
                best = i;
                best_len = p->rank;
            }
        }
    }
    if (best >= 0) {
        out->rule_intent = set->patterns[best].intent;
        snprintf(out->rule_what, sizeof out->rule_what, "pattern: %s", set->patterns[best].text);
    }
    int have_rule = best >= 0;
    const char *folded = text_analysis_folded(a);
    if (set->n_regexes && (!have_rule || !set->items[out->rule_intent].is_person_request)) {
        if (folded) {
            for (int i = 0; i < set->n_regexes; i++) {
                const struct rule_regex *r = &set->regexes[i];
                int is_person = set->items[r->intent].is_person_request;
                if (have_rule && !is_person)
                    continue; /* a rule already decided; only a person request wins */
                if (regexec(&r->re, folded, 0, NULL, 0) == 0) {
                    out->rule_intent = r->intent;
                    snprintf(out->rule_what, sizeof out->rule_what, "regex: %s", r->text);
                    have_rule = 1;
                    if (is_person)
                        break;
                }
            }
        }
    }

    /* Model. */
    if (!set->model) {
        /* Rules only; a lone class with examples gets all the mass. */
        if (set->n_classes == 1) {
            out->top[0] = set->class_intent[0];
            out->top_p[0] = 1.0;
            out->n_top = 1;
            out->margin = 1.0;
        }
        return 0;
    }
    int K = set->n_classes;
    if (s->cap_p < K) {
        if (cd_resize(&s->p, (size_t)K, sizeof *s->p) ||
            cd_resize(&s->raw, (size_t)K, sizeof *s->raw) ||
            cd_resize(&s->off, (size_t)K, sizeof *s->off))
            return CD_ENOMEM;
        s->cap_p = K;
    }
    if ((rc = model_featurize_analysed(a, model_hash_bits(set->model), &s->feats)))
        return rc;
    out->n_known = model_logits(set->model, &s->feats, &s->model, s->raw);
    out->known_share = model_known_share(set->model, &s->feats);
    /* A message in one language is about that language's intents (and the
     * out-of-scope class); if there are none, about all of them. */
    mark_off(set, code, s->off);
    for (int c = 0; c < K; c++)
        if (s->off[c])
            s->raw[c] = -1e30;
    model_softmax(s->raw, K, set->temperature, s->p);
    double feat[SCOPE_N_FEATS];
    int n_words = 0, unknown = model_unknown_words(set->model, &s->feats, &n_words);
    scope_features(s->raw, s->p, set->class_is_oos, s->off, K, out->known_share, unknown, n_words,
                   feat);
    out->p_in = scope_p_in(&set->scope, feat);
    for (int c = 0; c < K; c++) {
        int i = set->class_intent[c];
        double p = s->p[c];
        if (set->items[i].is_oos) {
            out->p_oos += p;
            continue;
        }
        if (p <= 0)
            continue; /* another language's intent (or beyond float range) */
        int pos = out->n_top < INTENTS_TOP ? out->n_top : INTENTS_TOP;
        while (pos > 0 && out->top_p[pos - 1] < p) {
            if (pos < INTENTS_TOP) {
                out->top[pos] = out->top[pos - 1];
                out->top_p[pos] = out->top_p[pos - 1];
            }
            pos--;
        }
        if (pos < INTENTS_TOP) {
            out->top[pos] = i;
            out->top_p[pos] = p;
            if (out->n_top < INTENTS_TOP)
                out->n_top++;
        }
    }
    out->margin = out->n_top > 1 ? out->top_p[0] - out->top_p[1] : out->top_p[0];
    return 0;
}

int intents_calibrate(struct intents *set, const char *const *texts, const int *intent, int n)
{
    if (!set->is_trained || !set->model)
        return CD_ESTATE;
    int K = set->n_classes;
    int *class_of = malloc((size_t)(set->n_items ? set->n_items : 1) * sizeof *class_of);
    double *logits = malloc((size_t)(n ? n : 1) * K * sizeof *logits);
    int *labels = malloc((size_t)(n ? n : 1) * sizeof *labels);
    struct intents_scratch *s = intents_scratch_new();
    int rc = 0, m = 0;
    struct text_tokenizer *tok = s ? text_tokenizers_get(&s->toks, "en") : NULL;
    if (!class_of || !logits || !labels || !tok) {
        rc = CD_ENOMEM;
        goto done;
    }
    for (int i = 0; i < set->n_items; i++)
        class_of[i] = -1;
    for (int c = 0; c < K; c++)
        class_of[set->class_intent[c]] = c;
    for (int i = 0; i < n; i++) {
        if (intent[i] < 0 || intent[i] >= set->n_items || class_of[intent[i]] < 0)
            continue;
        if ((rc = model_featurize(tok, texts[i], strlen(texts[i]), model_hash_bits(set->model),
                                  &s->feats)))
            goto done;
        model_logits(set->model, &s->feats, &s->model, logits + (size_t)m * K);
        labels[m++] = class_of[intent[i]];
    }
    if (m >= 20)
        set->temperature = model_fit_temperature(logits, labels, m, K);
done:
    free(class_of);
    free(logits);
    free(labels);
    intents_scratch_free(s);
    return rc;
}
