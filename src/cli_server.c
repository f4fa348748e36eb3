/* cli_server: `caredesk serve`: reads the settings, opens the store and the
 * knowledge base (loading ./kb into it), loads and trains the intents, builds
 * the conversation engine and the REST routes, then listens and serves until
 * SIGTERM or SIGINT. SIGHUP loads and trains the intents again on a worker thread and swaps
 * them in, without dropping a connection. */
#include "cli.h"

#include "api.h"
#include "cd.h"
#include "chat.h"
#include "cluster.h"
#include "config.h"
#include "qa.h"
#include "intents.h"
#include "scope.h"
#include "kb.h"
#include "log.h"
#include "metrics.h"
#include "redact.h"
#include "server.h"
#include "store.h"
#include "triage.h"
#include "webhook.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

static void on_kb_error(void *ctx, const char *file, int line, const char *message)
{
    (void)ctx;
    log_event(LOG_WARN, "kb_article_skipped", "file:s", file, "line:i", line, "problem:s", message,
              LOG_END);
}

static void on_intent_error(void *ctx, const char *file, const char *field, const char *message)
{
    (void)ctx;
    log_event(LOG_WARN, "intent_skipped", "file:s", file, "field:s", field, "problem:s", message,
              LOG_END);
}

/* 1, after saying so, when nothing is at path, the value of the setting name. */
static int setting_path_missing(const char *name, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    fprintf(stderr, "caredesk serve: setting '%s': no such file or directory: %s\n", name, path);
    return 1;
}

/* Splits the redact-patterns setting ("a;;b") into a vector of strings. */
static char **split_patterns(const char *spec, int *n_out)
{
    *n_out = 0;
    int cap = 1;
    for (const char *p = spec; (p = strstr(p, ";;")) != NULL; p += 2)
        cap++;
    char **list = calloc((size_t)cap, sizeof *list);
    if (!list)
        return NULL;
    const char *p = spec;
    while (*p) {
        const char *e = strstr(p, ";;");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            list[*n_out] = cd_strndup(p, n);
            if (!list[*n_out])
                break;
            (*n_out)++;
        }
        p += n + (e ? 2 : 0);
    }
    return list;
}

static void free_patterns(char **list, int n)
{
    for (int i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

/* Everything serve builds, torn down in reverse. */
struct serve_parts {
    struct config cfg;
    struct metrics *metrics;
    struct store *store;
    struct kb *kb;
    struct triage *triage;
    struct redactor *redactor;
    struct chat *chat;
    struct api *api;
    struct server *server;
    struct qa_rubric rubric; /* the QA rubric, when has_rubric */
    int has_rubric;
    struct webhook *webhook;
    struct cluster *cluster; /* several nodes on PostgreSQL */
    char node_id[CLUSTER_NODE_ID];
    /* SIGHUP: the intents loaded and trained again on a worker thread, then swapped in on
     * the event loop (reload_apply()). */
    struct {
        pthread_mutex_t mutex;
        pthread_t thread;
        int is_running; /* a worker is loading and training (the loop's view) */
        int is_again;   /* another SIGHUP came meanwhile: once more when it ends */
        int is_done;    /* the worker has posted its result (under mutex) */
        struct intents *fresh;
        char why[256];
        int n_intents, n_skipped;
        double train_ms;
    } reload;
};

/* Another node's KB change (or one replayed at start-up), made here the same way. */
static int apply_kb_change(void *ctx, const char *op)
{
    struct serve_parts *p = ctx;
    int rc = kb_apply(p->kb, op, strlen(op));
    if (rc)
        log_event(LOG_WARN, "kb_change_not_applied", "error:s", cd_strerror(rc), LOG_END);
    return 0;
}

/* kb.h's journal: this node's KB change, for the other nodes. */
static int journal_kb_change(void *ctx, const char *op)
{
    struct serve_parts *p = ctx;
    return store_kb_journal(p->store, op);
}

/* On the event loop: other nodes' events, into the conversation engine. */
static void take_remote_events(void *ctx)
{
    struct serve_parts *p = ctx;
    struct cluster_event ev[256];
    int n, is_kb_changed = 0;
    while ((n = cluster_take(p->cluster, ev, 256)) > 0)
        for (int i = 0; i < n; i++) {
            if (ev[i].kind == CLUSTER_MESSAGE) {
                chat_remote_message(p->chat, ev[i].conversation, ev[i].seq);
            } else if (ev[i].kind == CLUSTER_KB) {
                apply_kb_change(p, ev[i].payload);
                free(ev[i].payload);
                is_kb_changed = 1;
            } else {
                chat_remote_conversation(p->chat, ev[i].conversation);
            }
        }
    if (is_kb_changed)
        metrics_set(p->metrics, METRICS_KB_ARTICLES, kb_count(p->kb));
}

/* On the listening thread: wakes the event loop. */
static void wake_server(void *ctx)
{
    server_wake(ctx);
}

/* Loads and trains the intents at path (the setting 'intents') with the server's options:
 * the trained set in *out, or NULL with why (cap bytes) filled. Every skipped intent is
 * logged (intent_skipped) and counted in *n_skipped. Start-up and SIGHUP both load this way;
 * it may run on any thread. */
static struct intents *load_intents(const struct config *cfg, int *n_skipped, char *why, size_t cap)
{
    struct intents *set = intents_new();
    struct intents_load_report report = {0};
    report.on_error = on_intent_error;
    *n_skipped = 0;
    if (!set) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    int rc = intents_load_path(set, cfg->intents_path, NULL, &report);
    *n_skipped = report.n_skipped;
    if (rc) {
        snprintf(why, cap, "cannot load %s: %s", cfg->intents_path, cd_strerror(rc));
        intents_free(set);
        return NULL;
    }
    struct intents_train_options options = {0};
    options.is_quiet = 1;
    options.oos_prior = cfg->oos_prior;
    rc = intents_train(set, &options);
    if (rc) {
        snprintf(why, cap, "cannot train on %s: %s", cfg->intents_path,
                 rc == CD_EINVAL ? "no usable intents (examples or rules)" : cd_strerror(rc));
        intents_free(set);
        return NULL;
    }
    return set;
}

/* The setting 'phrases' (the bot's own sentences) read into the triage, which keeps its
 * wording when the file is bad. Returns 1 when loaded, 0 when the setting is empty, or -1
 * with why (cap bytes) naming the file and the problem. Start-up and SIGHUP read it so. */
static int load_phrases(struct serve_parts *p, char *why, size_t cap)
{
    const char *path = p->cfg.phrases_path;
    if (!path || !*path)
        return 0;
    size_t n = 0;
    char *json = cd_read_file(path, &n), *err = NULL;
    int read_errno = errno;
    int rc = json ? triage_set_phrases(p->triage, json, n, &err) : CD_ENOTFOUND;
    free(json);
    if (rc)
        snprintf(why, cap, "%s: %s", path,
                 rc == CD_ENOTFOUND ? strerror(read_errno)
                 : err              ? err
                                    : cd_strerror(rc));
    free(err);
    return rc ? -1 : 1;
}

/* ---- SIGHUP: the intents again ---- */

static void *reload_worker(void *ctx)
{
    struct serve_parts *p = ctx;
    int n_skipped;
    char why[256] = "";
    struct intents *set = load_intents(&p->cfg, &n_skipped, why, sizeof why);
    pthread_mutex_lock(&p->reload.mutex);
    p->reload.fresh = set;
    p->reload.n_skipped = n_skipped;
    p->reload.n_intents = set ? intents_count(set) : 0;
    p->reload.train_ms = set ? intents_train_ms(set) : 0;
    cd_strlcpy(p->reload.why, sizeof p->reload.why, why);
    p->reload.is_done = 1;
    pthread_mutex_unlock(&p->reload.mutex);
    server_wake(p->server);
    return NULL;
}

/* A worker loads and trains the intents, unless one is at it already (then it runs once
 * more after, reload_apply()). */
static void reload_intents(struct serve_parts *p)
{
    if (p->reload.is_running) {
        p->reload.is_again = 1;
        return;
    }
    log_event(LOG_INFO, "intents_reloading", "path:s", p->cfg.intents_path, LOG_END);
    if (pthread_create(&p->reload.thread, NULL, reload_worker, p)) {
        log_event(LOG_ERROR, "intents_reload_failed", "error:s", "cannot start a thread", LOG_END);
        return;
    }
    p->reload.is_running = 1;
}

/* SIGHUP, on the loop: the phrases file is read again now (a small file; a bad one keeps
 * the wording in service), and the intents on a worker. */
static void reload_start(void *ctx)
{
    struct serve_parts *p = ctx;
    char why[300];
    int rc = load_phrases(p, why, sizeof why);
    if (rc > 0)
        log_event(LOG_INFO, "phrases_reloaded", "path:s", p->cfg.phrases_path, LOG_END);
    else if (rc < 0)
        log_event(LOG_ERROR, "phrases_reload_failed", "error:s", why, "kept:s",
                  "the phrases in service", LOG_END);
    reload_intents(p);
}

/* On the loop, after a wake: a finished worker's intents go in (the old ones kept on an
 * error); the decisions from now on use them. */
static void reload_apply(struct serve_parts *p)
{
    if (!p->reload.is_running)
        return;
    pthread_mutex_lock(&p->reload.mutex);
    int is_done = p->reload.is_done;
    struct intents *fresh = p->reload.fresh;
    p->reload.fresh = NULL;
    p->reload.is_done = 0;
    pthread_mutex_unlock(&p->reload.mutex);
    if (!is_done)
        return;
    pthread_join(p->reload.thread, NULL);
    p->reload.is_running = 0;
    if (fresh) {
        intents_free(triage_swap_intents(p->triage, fresh));
        log_event(LOG_INFO, "intents_reloaded", "path:s", p->cfg.intents_path, "intents:i",
                  p->reload.n_intents, "skipped:i", p->reload.n_skipped, "train_ms:f",
                  p->reload.train_ms, LOG_END);
    } else {
        log_event(LOG_ERROR, "intents_reload_failed", "error:s", p->reload.why, "kept:s",
                  "the intents in service", LOG_END);
    }
    if (p->reload.is_again) {
        p->reload.is_again = 0;
        reload_intents(p);
    }
}

/* server_wake(): other nodes' events, and a reload's result. */
static void on_wake(void *ctx)
{
    struct serve_parts *p = ctx;
    if (p->cluster)
        take_remote_events(p);
    reload_apply(p);
}

static void parts_free(struct serve_parts *p)
{
    if (p->reload.is_running) { /* the worker uses the settings and wakes the server */
        pthread_join(p->reload.thread, NULL);
        intents_free(p->reload.fresh);
    }
    pthread_mutex_destroy(&p->reload.mutex);
    cluster_stop(p->cluster); /* its thread wakes the server: it stops first */
    server_free(p->server);
    webhook_free(p->webhook); /* its delivery thread stops first */
    api_free(p->api);
    chat_free(p->chat);
    redact_free(p->redactor);
    triage_free(p->triage);
    kb_close(p->kb);
    store_close(p->store);
    metrics_free(p->metrics);
    config_clear(&p->cfg);
}

static int open_kb(struct serve_parts *p)
{
    const struct config *cfg = &p->cfg;
    if (setting_path_missing("kb", cfg->kb_path))
        return CLI_USAGE;
    char *err = NULL;
    /* On SQLite the KB shares the store's file (and its checkpoints). On PostgreSQL each node
     * builds its search index in memory at start-up, from the articles' files and then the
     * database's journal of the changes made since (kb.h: kb_apply()). */
    const char *kb_db = *cfg->kb_db_path                         ? cfg->kb_db_path
                        : store_target_is_postgres(cfg->db_path) ? ":memory:"
                                                                 : cfg->db_path;
    p->kb = kb_open(kb_db, &err);
    if (!p->kb) {
        fprintf(stderr,
                "caredesk serve: setting 'kb-db': cannot open the knowledge base in %s: %s\n",
                kb_db, err ? err : "unknown error");
        free(err);
        return CLI_FAIL;
    }
    if (!strcmp(kb_db, cfg->db_path))
        kb_set_autocheckpoint(p->kb, 0); /* the store checkpoints the shared file on its thread */
    int64_t t0 = cd_now_us();
    struct kb_load_report report = {0};
    report.on_error = on_kb_error;
    int rc = kb_load_path(p->kb, cfg->kb_path, &report);
    if (rc) {
        fprintf(stderr, "caredesk serve: setting 'kb': cannot load %s: %s\n", cfg->kb_path,
                cd_strerror(rc));
        return CLI_USAGE;
    }
    int n_published = kb_count(p->kb);
    metrics_set(p->metrics, METRICS_KB_ARTICLES, n_published);
    log_event(LOG_INFO, "kb_loaded", "path:s", cfg->kb_path, "loaded:i", report.n_loaded,
              "skipped:i", report.n_skipped, "published:i", n_published, "ms:f",
              (double)(cd_now_us() - t0) / 1000, LOG_END);
    return CLI_OK;
}

static int build_triage(struct serve_parts *p)
{
    const struct config *cfg = &p->cfg;
    if (setting_path_missing("intents", cfg->intents_path))
        return CLI_USAGE;
    int64_t t0 = cd_now_us();
    int n_skipped;
    char why[300];
    struct intents *set = load_intents(cfg, &n_skipped, why, sizeof why);
    if (!set) {
        fprintf(stderr, "caredesk serve: setting 'intents': %s\n", why);
        return CLI_USAGE;
    }
    int n_intents = intents_count(set);
    double train_ms = intents_train_ms(set);
    struct triage_settings ts;
    triage_settings_default(&ts);
    ts.t_answer = cfg->answer_threshold;
    ts.t_clarify = cfg->clarify_threshold;
    ts.t_kb = cfg->kb_threshold;
    ts.default_queue = cfg->default_queue;
    p->triage = triage_new(&ts, set, p->kb);
    if (!p->triage) {
        fputs("caredesk serve: cannot build the triage engine (out of memory)\n", stderr);
        return CLI_FAIL;
    }
    int prc = load_phrases(p, why, sizeof why);
    if (prc < 0) {
        fprintf(stderr, "caredesk serve: setting 'phrases': %s\n", why);
        return CLI_USAGE;
    }
    if (prc > 0)
        log_event(LOG_INFO, "phrases_loaded", "path:s", cfg->phrases_path, LOG_END);
    if (p->kb && triage_calibrate_kb(p->triage, 0) == 0) {
        const struct triage_kb_calibration *kc = triage_kb_calibration(p->triage);
        log_event(LOG_INFO, "kb_calibrated", "t_coverage:f", kc->t_coverage, "false_rate:f",
                  kc->false_rate, "background:i", kc->n_background, LOG_END);
    }
    const struct scope_model *sc = intents_scope(triage_intents(p->triage));
    log_event(LOG_INFO, "in_scope_learned", "fitted:b", sc->is_fitted, "prior_oos:f", sc->prior_oos,
              "in_scope_kept:f", sc->in_kept, "out_of_scope_caught:f", sc->out_caught, "auroc:f",
              sc->auroc, "temperature:f", intents_temperature(triage_intents(p->triage)), LOG_END);
    log_event(LOG_INFO, "intents_trained", "path:s", cfg->intents_path, "intents:i", n_intents,
              "skipped:i", n_skipped, "train_ms:f", train_ms, "ms:f",
              (double)(cd_now_us() - t0) / 1000, LOG_END);
    return CLI_OK;
}

/* The questions read back for the out-of-scope share, newest first. */
struct recent {
    char **text, **lang;
    int n;
};

static int keep_question(void *ctx, const char *text, const char *lang)
{
    struct recent *r = ctx;
    if (r->n == SCOPE_PRIOR_WINDOW)
        return 0;
    if (!(r->text[r->n] = strdup(text)) || !(r->lang[r->n] = strdup(lang))) {
        free(r->text[r->n]);
        return CD_ENOMEM;
    }
    r->n++;
    return 0;
}

/* The traffic's out-of-scope share is measured on the questions the bot decided before
 * this start (the last SCOPE_PRIOR_WINDOW in the store), so that a restart does not decide
 * the next ones at the assumed share again. A failure only leaves the share to be measured
 * on new traffic. */
static void measure_stored_traffic(struct serve_parts *p)
{
    int64_t t0 = cd_now_us();
    struct recent r = {0};
    r.text = calloc(SCOPE_PRIOR_WINDOW, sizeof *r.text);
    r.lang = calloc(SCOPE_PRIOR_WINDOW, sizeof *r.lang);
    int rc = r.text && r.lang
                 ? store_recent_questions(p->store, SCOPE_PRIOR_WINDOW, keep_question, &r)
                 : CD_ENOMEM;
    for (int i = r.n - 1; i >= 0 && !rc; i--)
        if ((rc = triage_add_traffic(p->triage, r.text[i], strlen(r.text[i]), r.lang[i])) ==
            CD_EINVAL)
            rc = 0; /* stored text is UTF-8; none is skipped but for that */
    const struct scope_prior *sp = triage_oos_share(p->triage);
    if (rc)
        log_event(LOG_WARN, "oos_share_not_measured", "error:s", cd_strerror(rc), LOG_END);
    else
        log_event(LOG_INFO, "oos_share_measured", "questions:i", r.n, "measured:b",
                  scope_prior_is_measured(sp), "share:f", sp->estimate, "ms:f",
                  (double)(cd_now_us() - t0) / 1000, LOG_END);
    for (int i = 0; i < r.n; i++) {
        free(r.text[i]);
        free(r.lang[i]);
    }
    free(r.text);
    free(r.lang);
}

static int build_redactor(struct serve_parts *p)
{
    int n = 0;
    char **patterns = split_patterns(p->cfg.redact_patterns, &n);
    if (!patterns) {
        fputs("caredesk serve: out of memory\n", stderr);
        return CLI_FAIL;
    }
    char *err = NULL;
    p->redactor = redact_new((const char *const *)patterns, n, &err);
    free_patterns(patterns, n);
    if (!p->redactor) {
        fprintf(stderr, "caredesk serve: setting 'redact-patterns': %s\n",
                err ? err : "cannot compile");
        free(err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* The QA rubric: a missing file turns QA audits off (logged); a bad one
 * stops the start with the file and the problem named. */
static int load_rubric(struct serve_parts *p)
{
    char *err = NULL;
    int rc = qa_rubric_load(p->cfg.qa_rubric, &p->rubric, &err);
    if (rc == CD_ENOTFOUND) {
        log_event(LOG_WARN, "qa_off", "rubric:s", p->cfg.qa_rubric, LOG_END);
    } else if (rc) {
        fprintf(stderr, "caredesk serve: setting 'qa-rubric': %s\n", err ? err : "invalid");
        free(err);
        return CLI_USAGE;
    } else {
        p->has_rubric = 1;
    }
    free(err);
    return CLI_OK;
}

static const struct server_chat_ops chat_ops = SERVER_CHAT_OPS_INIT;

int cli_serve(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            config_print_help(stdout);
            return CLI_OK;
        }
    }
    struct serve_parts p;
    memset(&p, 0, sizeof p);
    pthread_mutex_init(&p.reload.mutex, NULL);
    /* SIGHUP reloads the intents once the server runs (server_run()); while it starts, the
     * intents are being read anyway, and SIGHUP must not end the process. */
    signal(SIGHUP, SIG_IGN);
    if (config_init(&p.cfg)) {
        fputs("caredesk serve: out of memory\n", stderr);
        return CLI_FAIL;
    }
    int code = CLI_FAIL;
    char *err = NULL;
    if (config_load(&p.cfg, argc, argv, 1, environ, &err)) {
        fprintf(stderr, "caredesk serve: %s\n", err ? err : "invalid settings");
        code = CLI_USAGE;
        goto done;
    }
    const struct config *cfg = &p.cfg;
    log_init((enum log_level)log_level_parse(cfg->log_level), stderr);
    p.webhook = webhook_new(cfg, &err);
    if (!p.webhook) {
        fprintf(stderr, "caredesk serve: %s\n", err ? err : "out of memory");
        code = CLI_USAGE;
        goto done;
    }
    p.metrics = metrics_new();
    if (!p.metrics) {
        fputs("caredesk serve: out of memory\n", stderr);
        goto done;
    }
    struct store_options so = {0};
    so.housekeeping_thread = 1; /* no checkpoint stalls on the event loop */
    so.durability =
        cfg->durability == CONFIG_DURABILITY_FULL ? STORE_DURABILITY_FULL : STORE_DURABILITY_NORMAL;
    p.store = store_open(cfg->db_path, &so, &err);
    if (!p.store) {
        /* A PostgreSQL URI may hold a password: it is never printed. */
        fprintf(stderr, "caredesk serve: setting 'db': cannot open %s: %s\n",
                store_target_is_postgres(cfg->db_path) ? "the PostgreSQL database" : cfg->db_path,
                err ? err : "unknown error");
        code = CLI_USAGE;
        goto done;
    }
    if (store_target_is_postgres(cfg->db_path)) {
        cluster_new_node_id(p.node_id);
        if (store_set_node(p.store, p.node_id)) {
            fputs("caredesk serve: setting 'db': cannot name this node in the database\n", stderr);
            goto done;
        }
    }
    log_event(LOG_INFO, "store_opened", "db:s",
              store_target_is_postgres(cfg->db_path) ? "postgresql" : cfg->db_path, "schema:i",
              store_schema_version(p.store), "durability:s",
              cfg->durability == CONFIG_DURABILITY_FULL ? "full" : "normal", LOG_END);
    webhook_observe(p.webhook, p.store);
    if (webhook_start(p.webhook, cfg->db_path, &err)) {
        fprintf(stderr, "caredesk serve: webhooks: %s\n", err ? err : "cannot start");
        goto done;
    }
    if ((code = open_kb(&p)) != CLI_OK || (code = build_triage(&p)) != CLI_OK ||
        (code = build_redactor(&p)) != CLI_OK || (code = load_rubric(&p)) != CLI_OK)
        goto done;
    measure_stored_traffic(&p);
    code = CLI_FAIL;

    p.server = server_new(cfg, p.metrics, &err);
    if (!p.server) {
        log_event(LOG_ERROR, "start_failed", "error:s", err, LOG_END);
        fprintf(stderr, "caredesk serve: %s\n", err ? err : "cannot start");
        goto done;
    }
    {
        struct chat_settings cs;
        memset(&cs, 0, sizeof cs);
        cs.queue.names = cfg->queues;
        cs.queue.pickup_target_s = cfg->pickup_target_s;
        cs.queue.agent_capacity = cfg->agent_capacity;
        cs.queue.business_open_min = cfg->business_open_min;
        cs.queue.business_close_min = cfg->business_close_min;
        cs.queue.business_days_mask = cfg->business_days_mask;
        cs.max_message_bytes = cfg->max_message_bytes;
        cs.is_auto_assign = cfg->is_auto_assign;
        cs.public_url = cfg->public_url;
        cs.redactor = p.redactor;
        cs.retention_days = cfg->retention_days;
        cs.default_lang = cfg->default_lang;
        cs.is_nps = cfg->is_nps;
        cs.agent_grace_s = cfg->agent_grace_s;
        cs.is_shared_store = p.node_id[0] != 0;
        cs.node_id = p.node_id;
        p.chat = chat_new(&cs, p.store, p.kb, p.triage, server_chat_io(p.server));
        if (!p.chat) {
            fputs("caredesk serve: cannot start the conversation engine\n", stderr);
            goto done;
        }
        server_set_wake(p.server, on_wake, &p);
        if (p.node_id[0]) {
            p.cluster = cluster_start(cfg->db_path, p.node_id, wake_server, p.server, &err);
            if (!p.cluster) {
                fprintf(stderr, "caredesk serve: %s\n", err ? err : "cannot start");
                goto done;
            }
            /* The KB changes made before this node started, then its own go to the journal. */
            int64_t t0 = cd_now_us();
            if (store_kb_journal_each(p.store, cluster_start_id(p.cluster), apply_kb_change, &p)) {
                fputs("caredesk serve: cannot read the KB's changes from the database\n", stderr);
                goto done;
            }
            kb_set_journal(p.kb, journal_kb_change, &p);
            metrics_set(p.metrics, METRICS_KB_ARTICLES, kb_count(p.kb));
            log_event(LOG_INFO, "node_joined", "node:s", p.node_id, "kb_articles:i", kb_count(p.kb),
                      "kb_catch_up_ms:f", (double)(cd_now_us() - t0) / 1000.0, LOG_END);
        }
    }
    struct api_deps deps = {0};
    deps.kb = p.kb;
    deps.store = p.store;
    deps.metrics = p.metrics;
    deps.triage = p.triage;
    deps.chat = p.chat;
    deps.queues = cfg->queues;
    deps.public_url = cfg->public_url;
    deps.max_body_bytes = cfg->max_body_bytes;
    deps.pickup_target_s = cfg->pickup_target_s;
    report_settings_from_config(&deps.report, cfg);
    deps.qa_rubric = p.has_rubric ? &p.rubric : NULL;
    deps.qa_sample = cfg->qa_sample;
    deps.webhook = p.webhook;
    p.api = api_new(&deps);
    if (!p.api) {
        fputs("caredesk serve: out of memory\n", stderr);
        goto done;
    }
    server_attach(p.server, p.chat, p.chat ? &chat_ops : NULL, p.api);
    server_set_reload(p.server, reload_start, &p);
    code = server_run(p.server) ? CLI_FAIL : CLI_OK;
done:
    parts_free(&p);
    free(err);
    return code;
}
