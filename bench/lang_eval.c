/* lang_eval: accuracy of language detection on short customer messages, by
 * method and by length in words.
 *
 *   lang_eval [--intents DIR] [--kb DIR] [--cases DIR] [--folds K] [--errors]
 *
 * --errors lists, on stderr, the messages detected wrongly or with low confidence.
 *
 * The test messages are every example of the intents (in its intent's
 * language) and every row of the case files (CASES/NAME.jsonl: "lang", else
 * "detected", else "en"). Methods:
 *   default   always the deployment's default language ("en")
 *   langid    caredesk's detector (langid.h), restricted to the candidate
 *             languages. Intent examples are cross-validated: an example in
 *             fold f is scored by a profile built from the other folds and the
 *             KB, never from itself; KB questions identical to a test example
 *             are left out of that profile. Cases are scored by the profile of
 *             every example and the KB (cases that equal an example are
 *             skipped).
 *   +fallback langid, with detections under LANGID_MIN_CONFIDENCE replaced
 *             by the default language (what the server does)
 *   textcat   libexttextcat (Debian libexttextcat-dev) with only the
 *             candidate languages' fingerprints loaded and no minimum size,
 *             its best-scoring candidate (built only when the library is
 *             installed: make adds it when pkg-config finds it).
 * Prints one table: accuracy per method and length bucket, then per language. */
#include "cd.h"
#include "intents.h"
#include "kb.h"
#include "langid.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_TEXTCAT
#include <textcat.h>
#endif

#define N_BUCKETS 5
static const char *const bucket_name[N_BUCKETS] = {"1-2", "3-4", "5-6", "7-12", "13+"};

enum { M_DEFAULT, M_LANGID, M_FALLBACK, M_TEXTCAT, N_METHODS };
static const char *const method_name[N_METHODS] = {"default (en)", "langid", "langid+fallback",
                                                   "textcat"};

struct row {
    char *text;
    char lang[8];
    int fold; /* -1: a case row */
};

struct tally {
    int n[N_BUCKETS + 1], right[N_BUCKETS + 1];
};

static struct row *rows;
static int n_rows, cap_rows;
static char langs[LANGID_MAX_LANGS][8];
static int n_langs;
static struct tally by_method[N_METHODS], by_lang[N_METHODS][LANGID_MAX_LANGS];
static int n_confident, n_confident_right, show_errors;
static int64_t build_us, detect_us;

static int bucket_of(const char *s)
{
    int words = 0, in_word = 0;
    for (; *s; s++) {
        int is_space = *s == ' ' || *s == '\t' || *s == '\n';
        words += !is_space && !in_word;
        in_word = !is_space;
    }
    return words <= 2 ? 0 : words <= 4 ? 1 : words <= 6 ? 2 : words <= 12 ? 3 : 4;
}

static int lang_index(const char *lang)
{
    for (int i = 0; i < n_langs; i++)
        if (!strcmp(langs[i], lang))
            return i;
    if (n_langs == LANGID_MAX_LANGS)
        return -1;
    cd_strlcpy(langs[n_langs], sizeof langs[0], lang);
    return n_langs++;
}

static void add_row(const char *text, const char *lang, int fold)
{
    if (n_rows == cap_rows) {
        cap_rows = cap_rows ? cap_rows * 2 : 1024;
        rows = realloc(rows, (size_t)cap_rows * sizeof *rows);
        if (!rows)
            exit(1);
    }
    rows[n_rows].text = strdup(text);
    cd_strlcpy(rows[n_rows].lang, sizeof rows[0].lang, lang);
    rows[n_rows].fold = fold;
    n_rows++;
}

static void record(int method, const struct row *r, const char *guess)
{
    int b = bucket_of(r->text), right = !strcmp(guess, r->lang), l = lang_index(r->lang);
    by_method[method].n[b]++;
    by_method[method].right[b] += right;
    by_method[method].n[N_BUCKETS]++;
    by_method[method].right[N_BUCKETS] += right;
    if (l >= 0) {
        by_lang[method][l].n[N_BUCKETS]++;
        by_lang[method][l].right[N_BUCKETS] += right;
    }
}

static int is_example(const struct intents *set, const char *text)
{
    for (int i = 0; i < intents_count(set); i++) {
        const struct intent *in = intents_get(set, i);
        for (int e = 0; e < in->n_examples; e++)
            if (!strcmp(in->examples[e], text))
                return 1;
    }
    return 0;
}

/* A profile from the examples outside fold (all with fold -1) and the KB,
 * without the KB questions that are test examples of that fold. */
static struct langid *build(const struct intents *set, struct kb *kb, int fold)
{
    struct langid *id = langid_new();
    for (int r = 0; r < n_rows; r++)
        if (rows[r].fold >= 0 && rows[r].fold != fold)
            langid_add(id, rows[r].lang, rows[r].text, strlen(rows[r].text));
    struct kb_list_item items[512];
    int n = 0;
    if (kb && kb_list(kb, NULL, 1, items, 512, &n) == 0) {
        for (int i = 0; i < n; i++) {
            struct kb_article a;
            if (kb_get(kb, items[i].id, &a))
                continue;
            const char *lang = a.lang ? a.lang : "en";
            langid_add(id, lang, a.title, strlen(a.title));
            if (a.body)
                langid_add(id, lang, a.body, strlen(a.body));
            for (int q = 0; q < a.n_questions; q++) {
                int is_test = 0;
                for (int r = 0; r < n_rows && !is_test; r++)
                    is_test =
                        rows[r].fold == fold && fold >= 0 && !strcmp(rows[r].text, a.questions[q]);
                if (!is_test)
                    langid_add(id, lang, a.questions[q], strlen(a.questions[q]));
            }
            kb_article_clear(&a);
        }
        kb_list_clear(items, n);
    }
    (void)set;
    langid_train(id);
    return id;
}

static void read_cases(const char *dir, const struct intents *set)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".jsonl"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while (f && (len = getline(&line, &cap, f)) > 0) {
            json_t *o = json_loadb(line, (size_t)len, 0, NULL);
            if (json_object_get(o, "fixture")) { /* the rest is policy on other intents */
                json_decref(o);
                break;
            }
            const char *text = json_string_value(json_object_get(o, "text"));
            const char *lang = json_string_value(json_object_get(o, "lang"));
            if (!lang)
                lang = json_string_value(json_object_get(o, "detected"));
            if (text && !is_example(set, text))
                add_row(text, lang ? lang : "en", -1);
            json_decref(o);
        }
        free(line);
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
}

#ifdef HAVE_TEXTCAT
/* A textcat handle that knows only the candidate languages. */
static void *textcat_for_candidates(void)
{
    char conf[] = "/tmp/caredesk-textcat-XXXXXX";
    int fd = mkstemp(conf);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    for (int i = 0; f && i < n_langs; i++)
        fprintf(f, "%s.lm %s\n", langs[i], langs[i]);
    if (f)
        fclose(f);
    void *h = special_textcat_Init(conf, "/usr/share/libexttextcat/");
    unlink(conf);
    if (h)
        textcat_SetProperty(h, TCPROP_MINIMUM_DOCUMENT_SIZE, 1);
    return h;
}
#endif

static void print_tally(const char *name, const struct tally *t)
{
    printf("| %-16s |", name);
    for (int b = 0; b <= N_BUCKETS; b++)
        if (t->n[b])
            printf(" %.3f |", (double)t->right[b] / t->n[b]);
        else
            printf("   -   |");
    printf("\n");
}

static int usage(void)
{
    fputs("usage: lang_eval [--intents DIR] [--kb DIR] [--cases DIR] [--folds K] [--errors]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *intents_dir = "intents", *kb_dir = "kb", *cases_dir = "tests/cases";
    int k = 5;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--errors")) {
            show_errors = 1;
            i--;
        } else if (i + 1 == argc)
            return usage();
        else if (!strcmp(argv[i], "--intents"))
            intents_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--kb"))
            kb_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--cases"))
            cases_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--folds"))
            k = atoi(argv[i + 1]) > 1 ? atoi(argv[i + 1]) : 5;
        else
            return usage();
    }
    struct intents *set = intents_new();
    struct intents_load_report ir = {0};
    if (!set || intents_load_path(set, intents_dir, NULL, &ir)) {
        fprintf(stderr, "lang_eval: cannot load intents from %s\n", intents_dir);
        return 1;
    }
    char *err = NULL;
    struct kb *kb = kb_open(":memory:", &err);
    free(err);
    struct kb_load_report kr = {0};
    if (kb && kb_load_path(kb, kb_dir, &kr)) {
        kb_close(kb);
        kb = NULL;
    }
    int n_examples = 0;
    for (int i = 0; i < intents_count(set); i++) {
        const struct intent *in = intents_get(set, i);
        if (in->is_oos)
            continue;
        for (int e = 0; e < in->n_examples; e++, n_examples++)
            add_row(in->examples[e], in->lang ? in->lang : "en", n_examples % k);
    }
    for (int r = 0; r < n_rows; r++)
        lang_index(rows[r].lang);
    int n_before = n_rows;
    read_cases(cases_dir, set);
    for (int r = 0; r < n_rows; r++)
        lang_index(rows[r].lang);

#ifdef HAVE_TEXTCAT
    void *tc = textcat_for_candidates();
    if (!tc)
        fprintf(stderr, "lang_eval: libexttextcat has no fingerprints for the candidates\n");
    candidate_t *tc_out = tc ? textcat_GetClassifyFullOutput(tc) : NULL;
#endif
    for (int fold = -1; fold < k; fold++) {
        int64_t t0 = cd_now_us();
        struct langid *id = build(set, kb, fold);
        if (fold == -1)
            build_us = cd_now_us() - t0;
        for (int r = 0; r < n_rows; r++) {
            if (rows[r].fold != fold)
                continue;
            struct langid_result res;
            int64_t d0 = cd_now_us();
            langid_detect(id, rows[r].text, strlen(rows[r].text), &res);
            detect_us += cd_now_us() - d0;
            record(M_DEFAULT, &rows[r], "en");
            record(M_LANGID, &rows[r], res.lang);
            if (show_errors &&
                (strcmp(res.lang, rows[r].lang) || res.confidence < LANGID_MIN_CONFIDENCE))
                fprintf(stderr, "%s detected %s %.3f: %s\n", rows[r].lang, res.lang, res.confidence,
                        rows[r].text);
            int is_sure = res.confidence >= LANGID_MIN_CONFIDENCE;
            record(M_FALLBACK, &rows[r], is_sure ? res.lang : "en");
            n_confident += is_sure;
            n_confident_right += is_sure && !strcmp(res.lang, rows[r].lang);
#ifdef HAVE_TEXTCAT
            if (tc) {
                int nc = textcat_ClassifyFull(tc, rows[r].text, strlen(rows[r].text), tc_out);
                const char *guess = nc > 0 ? tc_out[0].name : "?";
                record(M_TEXTCAT, &rows[r], guess);
                if (show_errors && strcmp(guess, rows[r].lang))
                    fprintf(stderr, "%s textcat %s: %s\n", rows[r].lang, guess, rows[r].text);
            }
#endif
        }
        langid_free(id);
    }
    printf("%d messages: %d intent examples (%d-fold cross-validated), %d case rows; "
           "candidates:",
           n_rows, n_before, k, n_rows - n_before);
    for (int i = 0; i < n_langs; i++)
        printf(" %s", langs[i]);
    printf("\n\naccuracy by length in words\n\n| method           |");
    for (int b = 0; b < N_BUCKETS; b++)
        printf(" %-5s |", bucket_name[b]);
    printf(" all   |\n| ---------------- |");
    for (int b = 0; b <= N_BUCKETS; b++)
        printf(" ----- |");
    printf("\n| messages         |");
    for (int b = 0; b <= N_BUCKETS; b++)
        printf(" %5d |", by_method[M_DEFAULT].n[b]);
    printf("\n");
    for (int m = 0; m < N_METHODS; m++)
        if (by_method[m].n[N_BUCKETS])
            print_tally(method_name[m], &by_method[m]);
    printf("\naccuracy by language\n\n| method           |");
    for (int i = 0; i < n_langs; i++)
        printf(" %-5s |", langs[i]);
    printf("\n| ---------------- |");
    for (int i = 0; i < n_langs; i++)
        printf(" ----- |");
    printf("\n");
    for (int m = 0; m < N_METHODS; m++) {
        if (!by_method[m].n[N_BUCKETS])
            continue;
        printf("| %-16s |", method_name[m]);
        for (int i = 0; i < n_langs; i++)
            printf(" %.3f |", by_lang[m][i].n[N_BUCKETS] ? (double)by_lang[m][i].right[N_BUCKETS] /
                                                               by_lang[m][i].n[N_BUCKETS]
                                                         : 0.0);
        printf("\n");
    }
    printf("\nlangid at confidence >= %.2f: %d of %d messages (%.3f), %.4f of them right\n",
           LANGID_MIN_CONFIDENCE, n_confident, n_rows, (double)n_confident / n_rows,
           n_confident ? (double)n_confident_right / n_confident : 0.0);
    printf("langid: profile of every example and the KB built in %.1f ms; %.1f us per message\n",
           (double)build_us / 1000, (double)detect_us / n_rows);
#ifdef HAVE_TEXTCAT
    if (tc) {
        textcat_ReleaseClassifyFullOutput(tc, tc_out);
        textcat_Done(tc);
    }
#else
    printf("textcat: not measured (libexttextcat-dev is not installed)\n");
#endif
    for (int r = 0; r < n_rows; r++)
        free(rows[r].text);
    free(rows);
    intents_free(set);
    if (kb)
        kb_close(kb);
    return 0;
}
