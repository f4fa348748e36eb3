/* cli_kb: the knowledge-base subcommands: `search`, `import` and `eval kb`. */
#include "cd.h"
#include "cli.h"
#include "db.h"
#include "store.h"
#include "kb.h"
#include "triage.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CLI_DEFAULT_DB "caredesk.db"
#define CLI_MAX_LIMIT  50

static const char search_usage[] =
    "usage: caredesk search [--kb DIR|FILE] [--db PATH] [--lang xx] [--limit N] [--json]\n"
    "                       \"question\"\n"
    "\n"
    "Searches the knowledge base for a customer's question and prints the ranked articles,\n"
    "their scores and the passage of each that answers the question.\n"
    "\n"
    "  --kb DIR|FILE  index these articles (Markdown or .jsonl) first; without --db the\n"
    "                 index is built in memory and forgotten afterwards\n"
    "  --db PATH      the database to search (default ./caredesk.db, made by 'import')\n"
    "  --lang xx      the question's language (default: English first, then the others)\n"
    "  --limit N      at most N hits, 1 to 30 (default 5)\n"
    "  --json         print {\"question\", \"hits\": [{id, title, lang, score, passage}]}\n"
    "\n"
    "Exit status: 0 (also when nothing matches), 1 failure, 2 usage error.\n";

static const char import_usage[] =
    "usage: caredesk import [--db PATH|URI] FILE_OR_DIR...\n"
    "\n"
    "Loads articles into the database (default ./caredesk.db): Markdown files with front\n"
    "matter (*.md) and JSON Lines files (*.jsonl), or every such file in a directory.\n"
    "An article that already exists becomes a new revision when it changed. Invalid files\n"
    "and lines are reported as FILE:LINE: message and skipped; the rest still loads.\n"
    "With --db postgresql://... (several nodes) the articles go, all or none, to the\n"
    "database's journal of KB changes: every running node applies them within a second,\n"
    "and a node that starts later replays them.\n"
    "\n"
    "Help-centre exports (Zendesk, Intercom, Freshdesk): caredesk import --from NAME FILE.json\n"
    "(see 'caredesk import --from zendesk --help').\n"
    "\n"
    "Exit status: 0 everything loaded, 1 something was skipped or failed, 2 usage error.\n";

static const char eval_usage[] =
    "usage: caredesk eval kb --articles A.jsonl --queries Q.jsonl [--learn L.jsonl]\n"
    "                        [--oos O.jsonl] [--t-kb X] [--lang xx] [--misses]\n"
    "\n"
    "Indexes the articles in memory, learns the --learn queries first if given (each line\n"
    "{\"text\", \"article\"} becomes a learned phrasing of that article), runs every query\n"
    "and prints one JSON object as the last line:\n"
    "  {\"n\", \"hit@1\", \"hit@5\", \"mrr@10\", \"query_us_p50\", \"query_us_p99\",\n"
    "   \"index_articles_per_s\", \"answer_rate\", \"answered_precision\", \"n_oos\",\n"
    "   \"oos_answer_rate\", \"t_coverage\"}\n"
    "The answer figures apply the server's rule (the KB alone, its threshold measured on\n"
    "the KB): answer_rate is the share of --queries answered, answered_precision the share\n"
    "of all answers that give the right article, oos_answer_rate the share of --oos\n"
    "questions (no article answers them; {\"text\"} lines) answered all the same.\n"
    "--t-kb X answers how-to questions at coverage >= X instead of the measured threshold.\n"
    "--misses also prints each query whose article was not ranked first.\n"
    "\n"
    "Exit status: 0, 1 failure (unreadable or empty file), 2 usage error.\n";

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fputs("caredesk: ", stderr);
    fprintf(stderr, fmt, arg ? arg : "");
    fputs("\n\n", stderr);
    fputs(usage, stderr);
    return CLI_USAGE;
}

static int is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/* Counts and prints load problems as FILE:LINE: message. */
static void print_load_error(void *ctx, const char *file, int line, const char *message)
{
    (void)ctx;
    fprintf(stderr, "%s:%d: %s\n", file, line, message);
}

struct kb *cli_open_kb(const char *path)
{
    char *err = NULL;
    struct kb *kb = kb_open(path, &err);
    if (!kb) {
        /* A PostgreSQL URI may hold a password: it is not repeated. */
        fprintf(stderr, "caredesk: %s: %s\n", db_target_is_postgres(path) ? "--db" : path,
                err ? err : "cannot open");
        free(err);
    }
    return kb;
}

static int load(struct kb *kb, const char *path, struct kb_load_report *report)
{
    int rc = kb_load_path(kb, path, report);
    if (rc == CD_ENOTFOUND) {
        fprintf(stderr, "caredesk: %s: no such file or directory\n", path);
        return CLI_FAIL;
    }
    if (rc) {
        fprintf(stderr, "caredesk: %s: %s\n", path, cd_strerror(rc));
        return CLI_FAIL;
    }
    return CLI_OK;
}

static void print_hits_text(const struct kb_hit *hits, int n)
{
    if (n == 0) {
        puts("no matching article");
        return;
    }
    for (int i = 0; i < n; i++) {
        printf("%d. %s  [%s, score %.3f]\n", i + 1, hits[i].id, hits[i].lang, hits[i].score);
        printf("   %s\n", hits[i].title);
        if (hits[i].passage && *hits[i].passage)
            printf("   > %s\n", hits[i].passage);
        if (i + 1 < n)
            putchar('\n');
    }
}

/* A JSON string of s, with each byte that is not part of valid UTF-8 replaced by '?'. */
static json_t *json_text(const char *s)
{
    size_t n = strlen(s);
    char *copy = cd_strndup(s, n);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)copy[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (i + len > n || !cd_utf8_valid(copy + i, len)) {
            copy[i] = '?';
            len = 1;
        }
        i += len;
    }
    json_t *j = json_string(copy);
    free(copy);
    return j;
}

static int print_hits_json(const char *question, const struct kb_hit *hits, int n)
{
    json_t *root = json_object(), *arr = json_array();
    int rc = root && arr ? 0 : -1;
    for (int i = 0; i < n && !rc; i++) {
        json_t *h = json_pack("{s:s, s:s, s:s, s:f, s:s}", "id", hits[i].id, "title", hits[i].title,
                              "lang", hits[i].lang, "score", hits[i].score, "passage",
                              hits[i].passage ? hits[i].passage : "");
        rc = h ? json_array_append_new(arr, h) : -1;
    }
    if (!rc)
        rc = json_object_set_new(root, "question", json_text(question));
    if (!rc) {
        rc = json_object_set_new(root, "hits", arr);
        arr = NULL;
    }
    char *s = rc ? NULL : json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s)
        puts(s);
    free(s);
    json_decref(arr);
    json_decref(root);
    return s ? 0 : -1;
}

int cli_search(int argc, char **argv)
{
    const char *kb_path = NULL, *db_path = NULL, *lang = NULL;
    int limit = 5, as_json = 0, rc = CLI_FAIL;
    struct cd_buf question = {0};
    const struct cli_str_opt strs[] = {{"--kb", &kb_path}, {"--db", &db_path}, {"--lang", &lang}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(search_usage, stdout);
            cd_buf_free(&question);
            return CLI_OK;
        }
        int has_value = i + 1 < argc;
        const char **str = cli_str_opt_find(strs, sizeof strs / sizeof strs[0], a);
        if (str && has_value)
            *str = argv[++i];
        else if (!strcmp(a, "--limit") && has_value) {
            if (cd_parse_int(argv[++i], 1, CLI_MAX_LIMIT, &limit)) {
                cd_buf_free(&question);
                return usage_error(search_usage, "--limit must be 1 to 30, not '%s'", argv[i]);
            }
        } else if (!strcmp(a, "--json"))
            as_json = 1;
        else if (a[0] == '-' && a[1] == '-' && strcmp(a, "--")) {
            cd_buf_free(&question);
            return usage_error(search_usage,
                               has_value || strncmp(a, "--", 2) ? "unknown option '%s'"
                                                                : "option '%s' needs a value",
                               a);
        } else {
            if (!strcmp(a, "--") && i + 1 < argc)
                a = argv[++i];
            if ((question.len && cd_buf_append(&question, " ", 1)) || cd_buf_puts(&question, a)) {
                fputs("caredesk: out of memory\n", stderr);
                cd_buf_free(&question);
                return CLI_FAIL;
            }
        }
    }
    if (!question.len) {
        cd_buf_free(&question);
        return usage_error(search_usage, "no question given%s", NULL);
    }
    if (lang && (strlen(lang) < 2 || strlen(lang) > 15 ||
                 strspn(lang, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != strlen(lang))) {
        cd_buf_free(&question);
        return usage_error(search_usage, "--lang takes a language code like en, not '%s'", lang);
    }
    struct stat sb;
    if (!kb_path && !db_path)
        db_path = CLI_DEFAULT_DB;
    if (!kb_path && !db_target_is_postgres(db_path) && stat(db_path, &sb) != 0) {
        fprintf(stderr,
                "caredesk: %s does not exist: run 'caredesk import kb' first, or search with "
                "--kb DIR\n",
                db_path);
        cd_buf_free(&question);
        return CLI_FAIL;
    }
    struct kb *kb = cli_open_kb(db_path ? db_path : ":memory:");
    struct kb_hit hits[CLI_MAX_LIMIT];
    int n_hits = 0;
    if (!kb)
        goto done;
    if (kb_path) {
        struct kb_load_report report = {0};
        report.on_error = print_load_error;
        if (load(kb, kb_path, &report) != CLI_OK)
            goto done;
    }
    int src = kb_search(kb, question.data, lang, hits, limit, &n_hits);
    if (src) {
        fprintf(stderr, "caredesk: search failed: %s\n", cd_strerror(src));
        goto done;
    }
    if (as_json) {
        if (print_hits_json(question.data, hits, n_hits)) {
            fputs("caredesk: out of memory\n", stderr);
            goto done;
        }
    } else
        print_hits_text(hits, n_hits);
    rc = CLI_OK;
done:
    kb_hits_clear(hits, n_hits);
    kb_close(kb);
    cd_buf_free(&question);
    return rc;
}

static int journal_op(void *ctx, const char *op)
{
    return store_kb_journal(ctx, op);
}

/* Several nodes: the articles loaded into a scratch KB go to the database's journal of KB
 * changes, in one transaction; every running node applies them within a second, and a node
 * that starts later replays them. */
static int journal_to_nodes(struct kb *kb, const char *uri)
{
    char *err = NULL;
    struct store *s = store_open(uri, NULL, &err);
    if (!s) {
        fprintf(stderr, "caredesk: --db: %s\n", err ? err : "cannot open");
        free(err);
        return CLI_FAIL;
    }
    kb_set_journal(kb, journal_op, s);
    int rc = store_set_node(s, "import");
    if (!rc)
        rc = store_begin(s);
    if (!rc)
        rc = kb_journal_all(kb);
    if (!rc)
        rc = store_commit(s);
    else
        store_rollback(s);
    kb_set_journal(kb, NULL, NULL);
    store_close(s);
    if (rc)
        fprintf(stderr, "caredesk: --db: cannot store the articles: %s\n", cd_strerror(rc));
    return rc ? CLI_FAIL : CLI_OK;
}

int cli_import(int argc, char **argv)
{
    const char *db_path = CLI_DEFAULT_DB;
    if (cli_import_is_export(argc, argv))
        return cli_import_export(argc, argv);
    /* Options may come before or after the paths (all of them before a "--"). */
    int n_paths = 0, is_end = 0;
    for (int i = 1; i < argc; i++) {
        if (!is_end && is_help(argv[i])) {
            fputs(import_usage, stdout);
            return CLI_OK;
        }
        if (!is_end && !strcmp(argv[i], "--db")) {
            if (i + 1 >= argc)
                return usage_error(import_usage, "option '%s' needs a value", argv[i]);
            db_path = argv[++i];
        } else if (!is_end && !strcmp(argv[i], "--")) {
            is_end = 1;
        } else if (!is_end && argv[i][0] == '-' && argv[i][1] == '-') {
            return usage_error(import_usage, "unknown option '%s'", argv[i]);
        } else {
            argv[1 + n_paths++] = argv[i]; /* the paths, in order, from argv[1] */
        }
    }
    if (!n_paths)
        return usage_error(import_usage, "no file or directory given%s", NULL);
    int first_path = 1;
    argc = 1 + n_paths;
    int is_pg = db_target_is_postgres(db_path);
    struct kb *kb = cli_open_kb(is_pg ? ":memory:" : db_path);
    if (!kb)
        return CLI_FAIL;
    struct kb_load_report report = {0};
    report.on_error = print_load_error;
    int rc = CLI_OK;
    for (int i = first_path; i < argc; i++)
        if (load(kb, argv[i], &report) != CLI_OK)
            rc = CLI_FAIL;
    if (is_pg && rc == CLI_OK && report.n_loaded > 0)
        rc = journal_to_nodes(kb, db_path);
    printf("loaded %d, skipped %d; %d published articles in %s\n", report.n_loaded,
           report.n_skipped, kb_count(kb),
           is_pg ? "the PostgreSQL database's KB journal (every node applies them)" : db_path);
    kb_close(kb);
    return rc != CLI_OK || report.n_skipped ? CLI_FAIL : CLI_OK;
}

/* ---- eval kb ---------------------------------------------------------------------------- */

struct labelled_query {
    char *text;
    char *article;
};

/* Reads {"text", "article"} lines; bad lines are reported and skipped. */
static int read_queries(const char *path, int is_oos, struct labelled_query **out, int *n_out)
{
    size_t len = 0;
    char *data = cd_read_file(path, &len);
    *out = NULL;
    *n_out = 0;
    if (!data) {
        fprintf(stderr, "caredesk: %s: cannot read\n", path);
        return CLI_FAIL;
    }
    int n = 0, cap = 0, line_no = 0, rc = CLI_OK;
    struct labelled_query *qs = NULL;
    for (char *p = data; p < data + len && rc == CLI_OK;) {
        line_no++;
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        size_t n_line = nl ? (size_t)(nl - p) : (size_t)(data + len - p);
        char *line = p;
        p = nl ? nl + 1 : data + len;
        if (n_line == 0)
            continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, n_line, 0, &jerr);
        const char *text = obj ? json_string_value(json_object_get(obj, "text")) : NULL;
        const char *article = obj ? json_string_value(json_object_get(obj, "article")) : NULL;
        if (is_oos && text)
            article = "";
        if (!text || !article) {
            fprintf(stderr, "%s:%d: %s\n", path, line_no,
                    obj ? "expected {\"text\": \"...\", \"article\": \"...\"}" : jerr.text);
        } else {
            if (cd_grow(&qs, &cap, n, sizeof *qs, 256))
                rc = CLI_FAIL;
            if (rc == CLI_OK) {
                qs[n].text = cd_strndup(text, strlen(text));
                qs[n].article = cd_strndup(article, strlen(article));
                if (!qs[n].text || !qs[n].article) {
                    free(qs[n].text);
                    free(qs[n].article);
                    rc = CLI_FAIL;
                } else
                    n++;
            }
        }
        json_decref(obj);
    }
    free(data);
    *out = qs;
    *n_out = n;
    if (rc != CLI_OK)
        fputs("caredesk: out of memory\n", stderr);
    return rc;
}

static void free_queries(struct labelled_query *qs, int n)
{
    for (int i = 0; i < n; i++) {
        free(qs[i].text);
        free(qs[i].article);
    }
    free(qs);
}

/* CPU time of this thread in microseconds: unlike the wall clock, not inflated when other
 * processes share the CPU. */
static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

int cli_eval_kb(int argc, char **argv)
{
    const char *articles = NULL, *queries = NULL, *learn = NULL, *lang = NULL, *oos = NULL;
    double t_kb = 0;
    int show_misses = 0;
    const struct cli_str_opt strs[] = {{"--articles", &articles},
                                       {"--queries", &queries},
                                       {"--learn", &learn},
                                       {"--lang", &lang},
                                       {"--oos", &oos}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(eval_usage, stdout);
            return CLI_OK;
        }
        int has_value = i + 1 < argc;
        const char **str = cli_str_opt_find(strs, sizeof strs / sizeof strs[0], a);
        if (str && has_value)
            *str = argv[++i];
        else if (!strcmp(a, "--t-kb") && has_value) {
            char *end;
            t_kb = strtod(argv[++i], &end);
            if (*end || !(t_kb > 0 && t_kb <= 1))
                return usage_error(eval_usage, "--t-kb must be in (0, 1], not '%s'", argv[i]);
        } else if (!strcmp(a, "--misses"))
            show_misses = 1;
        else if (str || !strcmp(a, "--t-kb"))
            return usage_error(eval_usage, "option '%s' needs a value", a);
        else
            return usage_error(eval_usage, "unexpected argument '%s'", a);
    }
    if (!articles || !queries)
        return usage_error(eval_usage, "--articles and --queries are required%s", NULL);

    struct labelled_query *qs = NULL, *ls = NULL, *os = NULL;
    int n_qs = 0, n_ls = 0, n_os = 0, rc = CLI_FAIL;
    struct triage *t = NULL;
    int64_t *times = NULL;
    struct kb *kb = cli_open_kb(":memory:");
    if (!kb)
        return CLI_FAIL;
    if (read_queries(queries, 0, &qs, &n_qs) != CLI_OK)
        goto done;
    if (n_qs == 0) {
        fprintf(stderr, "caredesk: %s: no queries\n", queries);
        goto done;
    }
    if (learn && read_queries(learn, 0, &ls, &n_ls) != CLI_OK)
        goto done;
    if (oos && read_queries(oos, 1, &os, &n_os) != CLI_OK)
        goto done;

    struct kb_load_report report = {0};
    report.on_error = print_load_error;
    int64_t t0 = cd_now_us(), c0 = thread_cpu_us();
    if (load(kb, articles, &report) != CLI_OK)
        goto done;
    int64_t index_us = cd_now_us() - t0, index_cpu_us = thread_cpu_us() - c0;
    if (report.n_loaded == 0) {
        fprintf(stderr, "caredesk: %s: no articles loaded\n", articles);
        goto done;
    }
    int n_learned = 0;
    for (int i = 0; i < n_ls; i++)
        if (kb_learn(kb, ls[i].text, ls[i].article) == 0)
            n_learned++;

    times = calloc((size_t)n_qs * 2, sizeof *times);
    if (!times)
        goto done;
    int64_t *cpu = times + n_qs;
    int hit1 = 0, hit5 = 0;
    double mrr = 0;
    for (int i = 0; i < n_qs; i++) {
        struct kb_hit hits[10];
        int n_hits = 0;
        int64_t q0 = cd_now_us(), qc0 = thread_cpu_us();
        int src = kb_search(kb, qs[i].text, lang, hits, 10, &n_hits);
        times[i] = cd_now_us() - q0;
        cpu[i] = thread_cpu_us() - qc0;
        if (src) {
            fprintf(stderr, "caredesk: query %d: %s\n", i + 1, cd_strerror(src));
            goto done;
        }
        int rank = 0;
        for (int k = 0; k < n_hits && !rank; k++)
            if (!strcmp(hits[k].id, qs[i].article))
                rank = k + 1;
        hit1 += rank == 1;
        hit5 += rank >= 1 && rank <= 5;
        mrr += rank ? 1.0 / rank : 0;
        if (show_misses && rank != 1)
            printf("miss rank=%d want=%s got=%s q=%s\n", rank, qs[i].article,
                   n_hits ? hits[0].id : "-", qs[i].text);
        kb_hits_clear(hits, n_hits);
    }
    /* The server's answer rule (a KB-only triage, its threshold measured on
     * the KB): how often it answers, how often rightly, and how often it
     * answers a question no article answers. */
    struct triage_settings ts;
    triage_settings_default(&ts);
    if (t_kb > 0)
        ts.t_kb = t_kb;
    if (!(t = triage_new(&ts, NULL, kb)) || (t_kb <= 0 && triage_calibrate_kb(t, 0))) {
        fputs("caredesk: out of memory\n", stderr);
        goto done;
    }
    int n_answered = 0, n_answered_right = 0, n_oos_answered = 0;
    for (int i = 0; i < n_qs + n_os; i++) {
        const struct labelled_query *q = i < n_qs ? &qs[i] : &os[i - n_qs];
        struct triage_decision d;
        if (triage_decide(t, q->text, strlen(q->text), lang, NULL, &d) == 0 &&
            d.action == TRIAGE_ANSWER) {
            n_answered++;
            n_answered_right +=
                i < n_qs && d.n_articles > 0 && !strcmp(d.articles[0].id, q->article);
            n_oos_answered += i >= n_qs;
        }
        triage_decision_clear(&d);
    }
    const struct triage_kb_calibration *kc = triage_kb_calibration(t);
    qsort(times, (size_t)n_qs, sizeof *times, cmp_i64);
    qsort(cpu, (size_t)n_qs, sizeof *cpu, cmp_i64);
    int i99 = (int)((n_qs * 99 + 99) / 100) - 1;
    double per_s = index_us > 0 ? report.n_loaded * 1e6 / (double)index_us : 0;
    printf("articles %d (skipped %d), learned %d of %d, queries %d\n", report.n_loaded,
           report.n_skipped, n_learned, n_ls, n_qs);
    printf("query CPU time: p50 %lld us, p99 %lld us; index CPU time: %.0f articles/s\n",
           (long long)cpu[(n_qs - 1) / 2], (long long)cpu[i99 < 0 ? 0 : i99],
           index_cpu_us > 0 ? report.n_loaded * 1e6 / (double)index_cpu_us : 0);
    printf("{\"n\":%d,\"hit@1\":%.4f,\"hit@5\":%.4f,\"mrr@10\":%.4f,\"query_us_p50\":%lld,"
           "\"query_us_p99\":%lld,\"index_articles_per_s\":%.0f,\"answer_rate\":%.4f,"
           "\"answered_precision\":%.4f,\"n_oos\":%d,\"oos_answer_rate\":%.4f,"
           "\"t_coverage\":%.2f}\n",
           n_qs, (double)hit1 / n_qs, (double)hit5 / n_qs, mrr / n_qs,
           (long long)times[(n_qs - 1) / 2], (long long)times[i99 < 0 ? 0 : i99], per_s,
           (double)(n_answered - n_oos_answered) / n_qs,
           n_answered ? (double)n_answered_right / n_answered : 0.0, n_os,
           n_os ? (double)n_oos_answered / n_os : 0.0,
           kc->is_fitted && kc->t_coverage > ts.t_kb ? kc->t_coverage : ts.t_kb);
    rc = CLI_OK;
done:
    free(times);
    free_queries(qs, n_qs);
    free_queries(ls, n_ls);
    free_queries(os, n_os);
    triage_free(t);
    kb_close(kb);
    return rc;
}
