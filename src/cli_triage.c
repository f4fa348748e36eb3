/* cli_triage: `caredesk ask` (decide one message) and `caredesk eval intents`
 * (measure the triage engine on a labelled set and pick its thresholds). */
#include "cli.h"

#include "cd.h"
#include "intents.h"
#include "intents_check.h"
#include "scope.h"
#include "kb.h"
#include "langid.h"
#include "svg.h"
#include "triage.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char ask_usage[] =
    "usage: caredesk ask [--intents DIR|FILE] [--kb DIR|FILE] [--lang xx] [--clarified N]\n"
    "                    [--not-helped N] [--repeats N] [--anger N] \"message\"\n"
    "Decides one customer message and prints the decision as JSON: action, intent,\n"
    "confidence, answer, articles, candidates, evidence. --intents defaults to ./intents,\n"
    "--kb to ./kb (skipped if absent). The counters describe the conversation so far.\n"
    "Without --lang, the message's language is detected among the languages of the\n"
    "intents and KB (English when unsure).\n";

static const char eval_usage[] =
    "usage: caredesk eval intents --train T.jsonl --test S.jsonl [--val V.jsonl]\n"
    "                             [--oos-label oos] [--kb DIR|FILE] [--intents DIR|FILE]\n"
    "                             [--epochs N] [--hash-bits N] [--t-answer X]\n"
    "                             [--t-clarify X] [--t-oos X] [--t-known X]\n"
    "                             [--min-oos-recall X]\n"
    "                             [--reliability] [--plot FILE.svg] [--quiet]\n"
    "Trains on T (rows labelled oos are out-of-scope examples), decides every row of S\n"
    "and prints one JSON object as the last line: n, accuracy, in_scope_accuracy,\n"
    "oos_recall, oos_precision, macro_f1, ece, clarify_rate, train_ms, decide_us_p50,\n"
    "decide_us_p99 and the thresholds. With --val, the temperature and thresholds are\n"
    "fitted on V (the best in-scope accuracy that still hands off --min-oos-recall,\n"
    "default 0.7, of V's out-of-scope rows); otherwise the defaults are used.\n"
    "ece is over the answers given (action answer); ece_model over every row's top\n"
    "intent. --reliability prints the answers' reliability table on stderr; --plot\n"
    "draws it as an SVG reliability diagram (confidence bins against share right).\n";

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 1))
        return -1;
    *out = v;
    return 0;
}

/* An option of the subcommands here: a flag, or one that takes a path or name, a number in
 * [0, 1], or a count in [lo, hi]. */
struct triage_option {
    const char *name;
    int *flag;
    const char **text;
    double *number;
    int *count, lo, hi;
};

/* What the subcommand cmd (its usage text usage) was asked by argv: every "--name" in the n
 * options is stored where its entry says; other arguments fill positional[0..n_positional)
 * in turn, and one more is refused with too_many. Returns -1 to go on, CLI_OK after printing
 * the usage for --help or -h, or CLI_USAGE after saying on stderr what was wrong. */
static int parse_options(const char *cmd, const char *usage, const struct triage_option *options,
                         size_t n, const char **positional, int n_positional, const char *too_many,
                         int argc, char **argv)
{
    int n_seen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (a[0] != '-' || a[1] != '-') {
            if (n_seen == n_positional) {
                fprintf(stderr, "caredesk %s: %s\n%s", cmd, too_many, usage);
                return CLI_USAGE;
            }
            positional[n_seen++] = a;
            continue;
        }
        size_t k = 0;
        while (k < n && strcmp(a, options[k].name))
            k++;
        if (k == n) {
            fprintf(stderr, "caredesk %s: unknown option %s\n%s", cmd, a, usage);
            return CLI_USAGE;
        }
        if (options[k].flag) {
            *options[k].flag = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "caredesk %s: %s needs a value\n%s", cmd, a, usage);
            return CLI_USAGE;
        }
        int bad = 0;
        if (options[k].text)
            *options[k].text = v;
        else if (options[k].number)
            bad = parse_double(v, options[k].number);
        else
            bad = cd_parse_int(v, options[k].lo, options[k].hi, options[k].count);
        if (bad) {
            fprintf(stderr, "caredesk %s: bad value for %s: %s\n", cmd, a, v);
            return CLI_USAGE;
        }
        i++;
    }
    return -1;
}

static int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Loads and trains intents from path (a directory, .json or .jsonl).
 * Returns NULL after printing why. */
static struct intents *load_intents(const char *path, const char *oos_label,
                                    const struct intents_train_options *options,
                                    const char *extra_path)
{
    struct intents *set = intents_new();
    if (!set) {
        fputs("caredesk: out of memory\n", stderr);
        return NULL;
    }
    struct intents_load_report report = {0};
    const char *paths[2] = {path, extra_path};
    for (int i = 0; i < 2; i++) {
        if (!paths[i])
            continue;
        int rc = intents_load_path(set, paths[i], oos_label, &report);
        if (rc) {
            fprintf(stderr, "caredesk: cannot load intents from %s: %s\n", paths[i],
                    cd_strerror(rc));
            intents_free(set);
            return NULL;
        }
    }
    if (report.n_skipped)
        fprintf(stderr, "caredesk: %d intent definition(s) or example(s) skipped\n",
                report.n_skipped);
    int rc = intents_train(set, options);
    if (rc) {
        fprintf(stderr, "caredesk: cannot train intents from %s: %s\n", path,
                rc == CD_EINVAL ? "no usable intents (examples or rules)" : cd_strerror(rc));
        intents_free(set);
        return NULL;
    }
    return set;
}

/* The intents command cmd is given at path, loaded and trained quietly. Says "caredesk CMD: no
 * intents at PATH" (and hint) when nothing is there; returns NULL after printing why. */
static struct intents *load_command_intents(const char *cmd, const char *path, const char *hint)
{
    if (!path_exists(path)) {
        fprintf(stderr, "caredesk %s: no intents at %s%s\n", cmd, path, hint);
        return NULL;
    }
    struct intents_train_options topt = {.is_quiet = 1};
    return load_intents(path, NULL, &topt, NULL);
}

static struct kb *load_kb(const char *path, int is_required)
{
    if (!path || (!is_required && !path_exists(path)))
        return NULL;
    char *err = NULL;
    struct kb *kb = kb_open(":memory:", &err);
    if (!kb) {
        fprintf(stderr, "caredesk: cannot open a KB: %s\n", err ? err : "unknown error");
        free(err);
        return NULL;
    }
    struct kb_load_report report = {0};
    int rc = kb_load_path(kb, path, &report);
    if (rc) {
        fprintf(stderr, "caredesk: cannot load the KB from %s: %s\n", path, cd_strerror(rc));
        kb_close(kb);
        return NULL;
    }
    return kb;
}

int cli_ask(int argc, char **argv)
{
    const char *intents_path = "intents", *kb_path = NULL, *lang = NULL, *message = NULL;
    char detected[8];
    struct triage_context ctx = {0};
    const struct triage_option options[] = {
        {.name = "--intents", .text = &intents_path},
        {.name = "--kb", .text = &kb_path},
        {.name = "--lang", .text = &lang},
        {.name = "--clarified", .count = &ctx.n_clarify, .lo = 0, .hi = 1000},
        {.name = "--not-helped", .count = &ctx.n_not_helped, .lo = 0, .hi = 1000},
        {.name = "--repeats", .count = &ctx.n_repeats, .lo = 0, .hi = 1000},
        {.name = "--anger", .count = &ctx.anger, .lo = 0, .hi = 1000},
    };
    int rc = parse_options("ask", ask_usage, options, sizeof options / sizeof options[0], &message,
                           1, "one message only (quote it)", argc, argv);
    if (rc >= 0)
        return rc;
    int is_kb_explicit = kb_path != NULL;
    if (!kb_path)
        kb_path = "kb";
    if (!message) {
        fputs(ask_usage, stderr);
        return CLI_USAGE;
    }
    struct intents *set = load_command_intents("ask", intents_path, " (use --intents DIR|FILE)");
    if (!set)
        return CLI_FAIL;
    struct kb *kb = load_kb(kb_path, is_kb_explicit);
    if (is_kb_explicit && !kb) {
        intents_free(set);
        return CLI_FAIL;
    }
    struct triage *t = triage_new(NULL, set, kb);
    if (!t) {
        if (kb)
            kb_close(kb);
        fputs("caredesk: out of memory\n", stderr);
        return CLI_FAIL;
    }
    if (kb)
        triage_calibrate_kb(t, 0);
    struct triage_decision d;
    struct cd_buf out = {0};
    if (!lang) /* without --lang: detected among the intents' and KB's languages (langid.h) */
        lang = langid_guess(triage_intents(t), kb, message, strlen(message), "en", detected);
    rc = triage_decide(t, message, strlen(message), lang, &ctx, &d);
    if (rc == 0)
        rc = triage_decision_to_json(&d, &out);
    if (rc == 0)
        printf("%s\n", out.data);
    else
        fprintf(stderr, "caredesk ask: %s\n",
                rc == CD_EINVAL ? "the message is not valid UTF-8" : cd_strerror(rc));
    triage_decision_clear(&d);
    cd_buf_free(&out);
    triage_free(t);
    if (kb)
        kb_close(kb);
    return rc ? CLI_FAIL : CLI_OK;
}

/* ---- eval intents ------------------------------------------------------- */

struct labelled {
    char **text;
    char **intent;
    int n;
    int cap;
};

static void labelled_free(struct labelled *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->text[i]);
        free(l->intent[i]);
    }
    free(l->text);
    free(l->intent);
    memset(l, 0, sizeof *l);
}

/* Reads {"text","intent"} rows; bad rows are reported and skipped.
 * Returns 0 or CD_E*. */
static int read_labelled(const char *path, struct labelled *l)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "caredesk eval: cannot open %s: %s\n", path, strerror(errno));
        return CD_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        json_t *row = json_loadb(line, (size_t)len, 0, NULL);
        json_t *text = row ? json_object_get(row, "text") : NULL;
        json_t *intent = row ? json_object_get(row, "intent") : NULL;
        if (!json_is_string(text) || !json_is_string(intent)) {
            if (len > 1)
                fprintf(stderr, "%s:%d: not a {\"text\",\"intent\"} row, skipped\n", path, lineno);
            json_decref(row);
            continue;
        }
        if (cd_grow_each(&l->cap, l->n, 1024, &l->text, sizeof *l->text, &l->intent,
                         sizeof *l->intent, (void *)NULL)) {
            json_decref(row);
            rc = CD_ENOMEM;
            break;
        }
        l->text[l->n] = strdup(json_string_value(text));
        l->intent[l->n] = strdup(json_string_value(intent));
        json_decref(row);
        if (!l->text[l->n] || !l->intent[l->n]) {
            free(l->text[l->n]);
            free(l->intent[l->n]);
            rc = CD_ENOMEM;
            break;
        }
        l->n++;
    }
    free(line);
    fclose(f);
    return rc;
}

struct val_row {
    int gold; /* intent index, -1 for out of scope or unknown */
    int is_oos;
    int top;
    double p_top;
    double p_oos;
    double mass;  /* probability of the top 3 together */
    double known; /* share of its word features seen in training */
};

/* Picks t_clarify (below it: handoff), t_oos and t_answer on validation rows.
 * Without out-of-scope rows: the thresholds that keep the most right answers.
 * With them: the most in-scope accuracy among the thresholds that hand off
 * at least min_recall of the out-of-scope messages (or, if none does, the
 * most recall). t_answer is then the lowest threshold at which the answers
 * given are right at least 95% of the time; below it the bot clarifies. */
static void pick_thresholds(const struct val_row *v, int n, double min_recall,
                            struct triage_settings *s)
{
    const double mass = s->t_clarify_mass;
    int n_oos = 0;
    for (int i = 0; i < n; i++)
        n_oos += v[i].is_oos;
    int n_in = n - n_oos ? n - n_oos : 1;
    enum { N_TC = 90, N_TO = 20, N_TK = 10 };
    static double in_acc[N_TC][N_TO][N_TK], oos_rec[N_TC][N_TO][N_TK];
    double best_recall = 0;
    /* t_known: 0 (off), then 0.45 .. 0.85. */
    for (int c = 0; c < N_TK; c++) {
        double tk = c == 0 ? 0 : 0.40 + 0.05 * c;
        for (int a = 0; a < N_TC; a++)
            for (int b = 0; b < N_TO; b++) {
                double tc = (a + 1) / 100.0, to = (b + 1) / 20.0;
                int in_ok = 0, oos_ok = 0;
                for (int i = 0; i < n; i++) {
                    int is_handoff =
                        v[i].p_top < tc || v[i].p_oos >= to || v[i].mass < mass || v[i].known < tk;
                    if (v[i].is_oos)
                        oos_ok += is_handoff;
                    else
                        in_ok += !is_handoff && v[i].top == v[i].gold;
                }
                in_acc[a][b][c] = (double)in_ok / n_in;
                oos_rec[a][b][c] = n_oos ? (double)oos_ok / n_oos : 0;
                if (oos_rec[a][b][c] > best_recall)
                    best_recall = oos_rec[a][b][c];
            }
        if (!n_oos)
            break; /* nothing to detect: keep it off */
    }
    double floor = best_recall < min_recall ? best_recall : min_recall;
    int best_a = -1, best_b = -1, best_c = 0;
    for (int c = 0; c < (n_oos ? N_TK : 1); c++)
        for (int a = 0; a < N_TC; a++)
            for (int b = 0; b < N_TO; b++) {
                if (n_oos && oos_rec[a][b][c] < floor - 1e-9)
                    continue;
                /* More in-scope accuracy wins; ties go to the lower thresholds
                 * (scanned first). */
                if (best_a < 0 || in_acc[a][b][c] > in_acc[best_a][best_b][best_c] + 1e-9)
                    best_a = a, best_b = b, best_c = c;
            }
    s->t_known = best_c == 0 ? 0 : 0.40 + 0.05 * best_c;
    s->t_clarify = (best_a + 1) / 100.0;
    s->t_oos = (best_b + 1) / 20.0;
    s->t_answer = 1.0;
    for (int a = best_a + 1; a <= 99; a++) {
        double ta = a / 100.0;
        int n_answer = 0, n_right = 0;
        for (int i = 0; i < n; i++)
            if (v[i].p_top >= ta && v[i].p_oos < s->t_oos && v[i].known >= s->t_known) {
                n_answer++;
                n_right += !v[i].is_oos && v[i].top == v[i].gold;
            }
        if (n_answer && n_right >= 0.95 * n_answer) {
            s->t_answer = ta;
            break;
        }
    }
}

/* Expected calibration error over 15 equal-width confidence bins. */
#define ECE_BINS 15
struct ece_bins {
    double n[ECE_BINS], confidence[ECE_BINS], right[ECE_BINS];
};

static void ece_add(struct ece_bins *e, double confidence, int is_right)
{
    int b = (int)(confidence * ECE_BINS);
    b = b < 0 ? 0 : b >= ECE_BINS ? ECE_BINS - 1 : b;
    e->n[b]++;
    e->confidence[b] += confidence;
    e->right[b] += is_right;
}

static double ece_value(const struct ece_bins *e)
{
    double total = 0, ece = 0;
    for (int b = 0; b < ECE_BINS; b++)
        total += e->n[b];
    for (int b = 0; b < ECE_BINS; b++)
        ece += total > 0 ? fabs(e->confidence[b] - e->right[b]) / total : 0;
    return ece;
}

static double thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1000.0;
}

int cli_eval_intents(int argc, char **argv)
{
    const char *train = NULL, *test = NULL, *val = NULL, *oos_label = "oos", *kb_path = NULL;
    const char *extra_intents = NULL, *plot = NULL;
    int is_quiet = 0, is_reliability = 0, is_fixed_prior = 0;
    double t_answer = -1, t_clarify = -1, t_oos = -1, t_known = -1, min_recall = 0.7;
    double t_in_scope = -1;
    struct intents_train_options topt = {0};
    const struct triage_option options[] = {
        {.name = "--quiet", .flag = &is_quiet},
        {.name = "--reliability", .flag = &is_reliability},
        {.name = "--fixed-prior", .flag = &is_fixed_prior},
        {.name = "--train", .text = &train},
        {.name = "--test", .text = &test},
        {.name = "--val", .text = &val},
        {.name = "--oos-label", .text = &oos_label},
        {.name = "--kb", .text = &kb_path},
        {.name = "--intents", .text = &extra_intents},
        {.name = "--plot", .text = &plot},
        {.name = "--epochs", .count = &topt.epochs, .lo = 1, .hi = 200},
        {.name = "--hash-bits", .count = &topt.hash_bits, .lo = 10, .hi = 24},
        {.name = "--folds", .count = &topt.folds, .lo = 2, .hi = 10},
        {.name = "--t-answer", .number = &t_answer},
        {.name = "--t-clarify", .number = &t_clarify},
        {.name = "--t-oos", .number = &t_oos},
        {.name = "--t-known", .number = &t_known},
        {.name = "--min-oos-recall", .number = &min_recall},
        {.name = "--t-in-scope", .number = &t_in_scope},
        {.name = "--oos-prior", .number = &topt.oos_prior},
    };
    int parsed =
        parse_options("eval intents", eval_usage, options, sizeof options / sizeof options[0], NULL,
                      0, "takes no arguments besides its options", argc, argv);
    if (parsed >= 0)
        return parsed;
    if (!train || !test) {
        fputs(eval_usage, stderr);
        return CLI_USAGE;
    }
    topt.is_quiet = is_quiet;
    /* With a validation set, calibration happens on it (intents_calibrate). */
    topt.is_no_holdout = val != NULL;

    int rc = CLI_FAIL;
    struct labelled ltest = {0}, lval = {0};
    struct intents *set = NULL;
    struct kb *kb = NULL;
    struct triage *t = NULL;
    struct val_row *vrows = NULL;
    double *lat = NULL, *cpu_lat = NULL;
    int *gold = NULL, *pred = NULL;
    struct intents_scratch *scratch = NULL;

    if (read_labelled(test, &ltest) || (val && read_labelled(val, &lval)))
        goto done;
    if (ltest.n == 0) {
        fprintf(stderr, "caredesk eval intents: no rows in %s\n", test);
        goto done;
    }
    /* Decided in a shuffled order (seed 1), as traffic interleaves: the
     * out-of-scope share the bot measures as it goes (scope.h) would
     * otherwise see a file's rows grouped by intent. */
    uint64_t rng = 1;
    for (int i = ltest.n - 1; i > 0; i--) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((rng >> 33) % (uint64_t)(i + 1));
        char *tt = ltest.text[i], *ti = ltest.intent[i];
        ltest.text[i] = ltest.text[j];
        ltest.intent[i] = ltest.intent[j];
        ltest.text[j] = tt;
        ltest.intent[j] = ti;
    }
    if (!(set = load_intents(train, oos_label, &topt, extra_intents)))
        goto done;
    if (kb_path && !(kb = load_kb(kb_path, 1)))
        goto done;

    struct triage_settings s;
    double calibrate_ms = 0;
    triage_settings_default(&s);
    if (val && lval.n) {
        /* Calibrate on the validation set, then pick thresholds on it. */
        int *vi = malloc((size_t)lval.n * sizeof *vi);
        if (!vi)
            goto done;
        for (int i = 0; i < lval.n; i++)
            vi[i] = intents_find(set, lval.intent[i]);
        int64_t c0 = cd_now_us();
        intents_calibrate(set, (const char *const *)lval.text, vi, lval.n);
        calibrate_ms = (double)(cd_now_us() - c0) / 1000.0;
        vrows = calloc((size_t)lval.n, sizeof *vrows);
        scratch = intents_scratch_new();
        if (!vrows || !scratch) {
            free(vi);
            goto done;
        }
        for (int i = 0; i < lval.n; i++) {
            struct intents_result r;
            intents_classify(set, scratch, lval.text[i], strlen(lval.text[i]), "en", &r);
            vrows[i].gold = vi[i];
            vrows[i].is_oos = !strcmp(lval.intent[i], oos_label);
            vrows[i].top = r.n_top ? r.top[0] : -1;
            vrows[i].p_top = r.n_top ? r.top_p[0] : 0;
            vrows[i].p_oos = r.p_oos;
            vrows[i].known = r.known_share;
            for (int k = 0; k < r.n_top && k < TRIAGE_MAX_CANDIDATES; k++)
                vrows[i].mass += r.top_p[k];
        }
        free(vi);
        pick_thresholds(vrows, lval.n, min_recall, &s);
    }
    if (t_answer >= 0)
        s.t_answer = t_answer;
    if (t_clarify >= 0)
        s.t_clarify = t_clarify;
    if (t_oos >= 0)
        s.t_oos = t_oos;
    if (t_known >= 0)
        s.t_known = t_known;
    if (t_in_scope >= 0)
        s.t_in_scope = t_in_scope;
    s.is_fixed_prior = is_fixed_prior;
    double train_cpu_ms = intents_train_cpu_ms(set) + calibrate_ms;
    double train_ms = intents_train_ms(set) + calibrate_ms, temperature = intents_temperature(set);
    if (!(t = triage_new(&s, set, kb))) {
        set = NULL;
        fputs("caredesk: out of memory\n", stderr);
        goto done;
    }
    set = NULL;
    if (kb) {
        triage_calibrate_kb(t, 0);
        const struct triage_kb_calibration *kc = triage_kb_calibration(t);
        if (!is_quiet)
            fprintf(stderr,
                    "kb: answers how-to questions at coverage >= %.2f (%.1f%% of %d background "
                    "how-to questions would pass)\n",
                    kc->t_coverage, 100 * kc->false_rate, kc->n_background);
    }
    s = *triage_get_settings(t);
    const struct intents *tset = triage_intents(t);

    /* Classes: the intents, then "handed off", then "answered with no intent"
     * (a KB answer), which is right for no row. */
    int n = ltest.n, n_classes = intents_count(tset) + 2;
    lat = malloc((size_t)n * sizeof *lat);
    cpu_lat = malloc((size_t)n * sizeof *cpu_lat);
    gold = malloc((size_t)n * sizeof *gold);
    pred = malloc((size_t)n * sizeof *pred);
    if (!lat || !cpu_lat || !gold || !pred)
        goto done;
    int oos_class = n_classes - 2, no_intent_class = n_classes - 1;
    int n_right = 0, n_in = 0, n_in_right = 0, n_oos = 0, n_oos_right = 0, n_handoff = 0;
    int n_clarify = 0, n_by_rule = 0, n_by_model = 0, n_by_kb = 0;
    const struct scope_model *sc = intents_scope(tset);
    const char *reasons[16];
    int reason_count[16] = {0}, n_reasons = 0;
    struct ece_bins ece_answers = {0}, ece_model = {0};
    for (int i = 0; i < n; i++) {
        const char *text = ltest.text[i];
        int is_oos = !strcmp(ltest.intent[i], oos_label);
        int g = is_oos ? oos_class : intents_find(tset, ltest.intent[i]);
        if (g < 0)
            g = oos_class; /* an intent never seen in training cannot be answered */
        struct triage_decision d;
        double c0 = thread_cpu_us();
        int64_t t0 = cd_now_us();
        int drc = triage_decide(t, text, strlen(text), "en", NULL, &d);
        lat[i] = (double)(cd_now_us() - t0);
        cpu_lat[i] = thread_cpu_us() - c0;
        int p = oos_class;
        if (drc == 0 && d.action != TRIAGE_HANDOFF) {
            p = d.intent[0] ? intents_find(tset, d.intent) : -1;
            if (p < 0)
                p = no_intent_class;
        }
        n_clarify += drc == 0 && d.action == TRIAGE_CLARIFY;
        if (drc == 0 && d.action == TRIAGE_ANSWER && d.evidence.reason) {
            n_by_rule += !strcmp(d.evidence.reason, "rule");
            n_by_model += !strcmp(d.evidence.reason, "model");
            n_by_kb += !strcmp(d.evidence.reason, "kb");
        }
        if (drc == 0 && d.action == TRIAGE_HANDOFF && d.evidence.reason) {
            int k = 0;
            while (k < n_reasons && strcmp(reasons[k], d.evidence.reason))
                k++;
            if (k == n_reasons && n_reasons < 16)
                reasons[n_reasons++] = d.evidence.reason;
            if (k < 16)
                reason_count[k] += !is_oos;
        }
        n_handoff += p == oos_class;
        gold[i] = g;
        pred[i] = p;
        int right = is_oos ? p == oos_class : p == g;
        n_right += right;
        if (is_oos) {
            n_oos++;
            n_oos_right += right;
        } else {
            n_in++;
            n_in_right += right;
        }
        /* Calibration of what the bot says: of the answers given at
         * confidence c, a share c should be right (a clarify question is not
         * an answer: it offers choices because confidence is low). */
        if (drc == 0 && d.action == TRIAGE_ANSWER)
            ece_add(&ece_answers, d.confidence, right);
        /* And of the model alone: of the messages whose top intent has
         * probability c, a share c should be that intent (every row). */
        if (drc == 0 && d.evidence.n_model > 0)
            ece_add(&ece_model, d.evidence.model[0].probability,
                    !is_oos && !strcmp(d.evidence.model[0].intent, ltest.intent[i]));
        triage_decision_clear(&d);
    }
    if (!is_quiet) {
        fputs("in-scope messages handed off, by reason:", stderr);
        for (int k = 0; k < n_reasons; k++)
            fprintf(stderr, " %s %d", reasons[k], reason_count[k]);
        fputc('\n', stderr);
    }
    double ece = ece_value(&ece_answers);
    if (is_reliability) {
        fputs("reliability of answers: confidence bin, answers, mean confidence, share right\n",
              stderr);
        for (int b = 0; b < ECE_BINS; b++)
            if (ece_answers.n[b] > 0)
                fprintf(stderr, "  [%.2f, %.2f) %5.0f %.3f %.3f\n", (double)b / ECE_BINS,
                        (double)(b + 1) / ECE_BINS, ece_answers.n[b],
                        ece_answers.confidence[b] / ece_answers.n[b],
                        ece_answers.right[b] / ece_answers.n[b]);
    }

    /* Macro F1 over the gold classes (out of scope is one class). */
    double f1_sum = 0;
    int n_f1 = 0;
    int *tp = calloc((size_t)n_classes, sizeof *tp), *fp = calloc((size_t)n_classes, sizeof *fp);
    int *fn = calloc((size_t)n_classes, sizeof *fn);
    if (!tp || !fp || !fn) {
        free(tp);
        free(fp);
        free(fn);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (gold[i] == pred[i])
            tp[gold[i]]++;
        else {
            fp[pred[i]]++;
            fn[gold[i]]++;
        }
    }
    for (int c = 0; c < n_classes; c++)
        if (tp[c] + fn[c] > 0) {
            double f1 = 2.0 * tp[c] / (2.0 * tp[c] + fp[c] + fn[c]);
            f1_sum += f1;
            n_f1++;
        }
    free(tp);
    free(fp);
    free(fn);
    qsort(lat, (size_t)n, sizeof *lat, cd_compare_doubles);
    qsort(cpu_lat, (size_t)n, sizeof *cpu_lat, cd_compare_doubles);
    double p50 = lat[n / 2], p99 = lat[(int)((n - 1) * 0.99)];
    double cpu_p50 = cpu_lat[n / 2], cpu_p99 = cpu_lat[(int)((n - 1) * 0.99)];
    int n_oos_pred_right = n_oos_right;
    printf("{\"n\":%d,\"accuracy\":%.4f,\"in_scope_accuracy\":%.4f,\"oos_recall\":%.4f,"
           "\"oos_precision\":%.4f,\"macro_f1\":%.4f,\"ece\":%.4f,\"clarify_rate\":%.4f,"
           "\"train_ms\":%.0f,\"decide_us_p50\":%.1f,\"decide_us_p99\":%.1f,"
           "\"thresholds\":{\"t_answer\":%.2f,\"t_clarify\":%.2f,\"t_oos\":%.2f,\"t_known\":%.2f},"
           "\"temperature\":%.3f,\"handoff_rate\":%.4f,\"ece_model\":%.4f,\"kb\":%s,"
           "\"train_cpu_ms\":%.0f,\"decide_cpu_us_p50\":%.1f,\"decide_cpu_us_p99\":%.1f,"
           "\"scope\":{\"fitted\":%s,\"prior_oos\":%.2f,\"in_kept\":%.4f,\"out_caught\":%.4f,"
           "\"auroc\":%.4f,\"rows_in\":%d,\"rows_out\":%d},\"answered\":%.4f,"
           "\"answered_by\":{\"rule\":%d,\"model\":%d,\"kb\":%d},\"oos_share\":%.4f}\n",
           n, (double)n_right / n, n_in ? (double)n_in_right / n_in : 0.0,
           n_oos ? (double)n_oos_right / n_oos : 0.0,
           n_handoff ? (double)n_oos_pred_right / n_handoff : 0.0, n_f1 ? f1_sum / n_f1 : 0.0, ece,
           (double)n_clarify / n, train_ms, p50, p99, s.t_answer, s.t_clarify, s.t_oos, s.t_known,
           temperature, (double)n_handoff / n, ece_value(&ece_model), kb ? "true" : "false",
           train_cpu_ms, cpu_p50, cpu_p99, sc->is_fitted ? "true" : "false", sc->prior_oos,
           sc->in_kept, sc->out_caught, sc->auroc, sc->n_in, sc->n_out,
           (double)(n_by_rule + n_by_model + n_by_kb) / n, n_by_rule, n_by_model, n_by_kb,
           triage_oos_share(t)->estimate);
    rc = CLI_OK;
    if (plot) { /* the answers' reliability diagram, the bins of ece */
        struct svg_bin bins[ECE_BINS];
        int n_answers = 0;
        for (int b = 0; b < ECE_BINS; b++) {
            double m = ece_answers.n[b] > 0 ? ece_answers.n[b] : 1;
            bins[b] =
                (struct svg_bin){(double)b / ECE_BINS, (double)(b + 1) / ECE_BINS, ece_answers.n[b],
                                 ece_answers.confidence[b] / m, ece_answers.right[b] / m};
            n_answers += (int)ece_answers.n[b];
        }
        char title[160];
        snprintf(title, sizeof title, "Reliability of answers: ECE %.4f, %d answers of %d", ece,
                 n_answers, n);
        if (svg_reliability_file(plot, bins, ECE_BINS, title)) {
            fprintf(stderr, "caredesk eval intents: cannot write %s\n", plot);
            rc = CLI_FAIL;
        }
    }
done:
    labelled_free(&ltest);
    labelled_free(&lval);
    intents_free(set);
    triage_free(t);
    if (kb)
        kb_close(kb);
    intents_scratch_free(scratch);
    free(vrows);
    free(lat);
    free(cpu_lat);
    free(gold);
    free(pred);
    return rc;
}

/* ---- check intents ------------------------------------------------------ */

static const char check_usage[] =
    "usage: caredesk check intents [DIR|FILE] [--json] [--min-examples N]\n"
    "Trains the intents (default ./intents) as the server does and prints the author's\n"
    "report: intents the model confuses, intents with too few examples, examples that\n"
    "cross-validate to another intent, and where the out-of-scope threshold landed and\n"
    "why. --json prints the report as one JSON object (as GET /api/intents/check).\n";

static void print_report(const json_t *r)
{
    const json_t *sc = json_object_get(r, "out_of_scope");
    printf("intents: %d; cross-validated accuracy %.3f\n",
           (int)json_integer_value(json_object_get(r, "intents")),
           json_number_value(json_object_get(r, "cross_validated_accuracy")));
    printf("\nout of scope:\n  %s\n", json_string_value(json_object_get(sc, "why")));
    const json_t *few = json_object_get(r, "too_few_examples");
    printf("\nintents with too few examples: %zu\n", json_array_size(few));
    for (size_t i = 0; i < json_array_size(few); i++) {
        const json_t *v = json_array_get(few, i);
        printf("  %-32s %3d examples (write %d or more)\n",
               json_string_value(json_object_get(v, "intent")),
               (int)json_integer_value(json_object_get(v, "examples")),
               (int)json_integer_value(json_object_get(v, "suggested")));
    }
    const json_t *pairs = json_object_get(r, "confused_pairs");
    printf("\nintents the model confuses (held-out examples read as another): %zu\n",
           json_array_size(pairs));
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        const json_t *v = json_array_get(pairs, i);
        printf("  %-32s -> %-32s %3d (%.0f%%)\n", json_string_value(json_object_get(v, "intent")),
               json_string_value(json_object_get(v, "read_as")),
               (int)json_integer_value(json_object_get(v, "examples")),
               100 * json_number_value(json_object_get(v, "share")));
    }
    const json_t *mis = json_object_get(r, "misread_examples");
    printf("\nexamples that cross-validate to another intent: %zu\n", json_array_size(mis));
    for (size_t i = 0; i < json_array_size(mis); i++) {
        const json_t *v = json_array_get(mis, i);
        printf("  %s: \"%s\" -> %s (%.2f)\n", json_string_value(json_object_get(v, "intent")),
               json_string_value(json_object_get(v, "example")),
               json_string_value(json_object_get(v, "read_as")),
               json_number_value(json_object_get(v, "probability")));
    }
}

int cli_check_intents(int argc, char **argv)
{
    const char *path = "intents";
    int is_json = 0;
    struct intents_check_options copt = {0};
    const struct triage_option options[] = {
        {.name = "--json", .flag = &is_json},
        {.name = "--min-examples", .count = &copt.min_examples, .lo = 1, .hi = 10000},
    };
    int parsed =
        parse_options("check intents", check_usage, options, sizeof options / sizeof options[0],
                      &path, 1, "one path only", argc, argv);
    if (parsed >= 0)
        return parsed;
    struct intents *set = load_command_intents("check intents", path, "");
    if (!set)
        return CLI_FAIL;
    json_t *r = intents_check(set, &copt);
    int rc = CLI_FAIL;
    if (r) {
        if (is_json) {
            char *s = json_dumps(r, JSON_COMPACT);
            if (s)
                printf("%s\n", s);
            free(s);
        } else {
            print_report(r);
        }
        rc = CLI_OK;
    } else {
        fputs("caredesk: out of memory\n", stderr);
    }
    json_decref(r);
    intents_free(set);
    return rc;
}
