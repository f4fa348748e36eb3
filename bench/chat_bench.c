/* chat_bench: the cost of the conversation core alone (chat.c + triage +
 * store with group commit), with no network: N customer connections each
 * send messages in a closed loop; each loop turn hands every connection's
 * next message to chat.c and then calls chat_flush() once, as the server
 * does. Prints answered messages per second and the per-turn latency.
 *
 *   chat_bench [--connections N] [--seconds S] [--db PATH] [--durability normal|full]
 *              [--intents PATH] [--kb PATH] [--turns T]
 *
 * --turns stops after T loop turns (T * N messages) whatever the time, for
 * deterministic instruction counts: `valgrind --tool=callgrind` with two
 * values of T, the difference of the totals divided by the difference of the
 * messages is the instructions per message.
 *
 * Without --intents a small built-in intent set is used; --db defaults to a
 * temporary file (removed afterwards). */
#include "backup.h"
#include "cd.h"
#include "chat.h"
#include "intents.h"
#include "kb.h"
#include "store.h"
#include "triage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CPU time of this process in microseconds: on a shared machine the wall
 * clock says as much about the neighbours as about this code. */
static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *const builtin_intents[] = {
    "{\"name\":\"greeting\",\"examples\":[\"hello\",\"hi there\",\"good morning\"],"
    "\"patterns\":[\"hello\"],\"response\":\"Hello! How can I help?\"}",
    "{\"name\":\"returns\",\"examples\":[\"how do I return shoes\",\"return an item\","
    "\"send back my purchase\"],\"patterns\":[\"return\"],\"response\":\"You can return any "
    "item within 30 days.\"}",
    "{\"name\":\"order_status\",\"examples\":[\"where is my order\",\"track my package\","
    "\"order status\"],\"response\":\"Track your order from the Orders page.\"}",
    "{\"name\":\"shipping\",\"examples\":[\"how long does shipping take\",\"delivery time\","
    "\"when will it arrive\"],\"response\":\"Standard shipping takes 3-5 days.\"}",
};

static const char *const questions[] = {
    "how do I return my shoes?",   "where is my order",        "hello",
    "how long does shipping take", "can I send back a jacket", "track my package please",
};

struct counts {
    long n_frames;
    long n_replies;
};

static void on_send(void *ctx, uint64_t conn, const char *frame, size_t len)
{
    (void)conn;
    (void)len;
    struct counts *c = ctx;
    c->n_frames++;
    if (!strncmp(frame, "{\"type\":\"reply\"", 15))
        c->n_replies++;
}

static void on_close(void *ctx, uint64_t conn, int code, const char *reason)
{
    (void)ctx;
    (void)conn;
    (void)code;
    (void)reason;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n_conn = 1000;
    double seconds = 3;
    const char *db = NULL, *intents_path = NULL, *kb_path = NULL;
    int durability = STORE_DURABILITY_NORMAL;
    long max_turns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--connections") && i + 1 < argc)
            n_conn = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strcmp(argv[i], "--intents") && i + 1 < argc)
            intents_path = argv[++i];
        else if (!strcmp(argv[i], "--kb") && i + 1 < argc)
            kb_path = argv[++i];
        else if (!strcmp(argv[i], "--turns") && i + 1 < argc)
            max_turns = atol(argv[++i]);
        else if (!strcmp(argv[i], "--durability") && i + 1 < argc)
            durability =
                !strcmp(argv[++i], "full") ? STORE_DURABILITY_FULL : STORE_DURABILITY_NORMAL;
        else {
            fprintf(stderr,
                    "usage: chat_bench [--connections N] [--seconds S] [--db PATH] "
                    "[--durability normal|full] [--intents PATH] [--kb PATH] [--turns T]\n");
            return 2;
        }
    }
    if (max_turns > 0)
        seconds = 1e9;
    if (n_conn < 1 || seconds <= 0) {
        fprintf(stderr, "chat_bench: --connections and --seconds must be positive\n");
        return 2;
    }
    char tmp[64];
    if (!db) {
        snprintf(tmp, sizeof tmp, "/tmp/chat-bench-%d.db", (int)getpid());
        db = tmp;
    }
    struct intents *set = intents_new();
    if (intents_path) {
        if (intents_load_path(set, intents_path, NULL, NULL)) {
            fprintf(stderr, "chat_bench: cannot load intents from %s\n", intents_path);
            return 1;
        }
    } else {
        for (size_t i = 0; i < sizeof builtin_intents / sizeof builtin_intents[0]; i++)
            intents_load_json(set, builtin_intents[i], strlen(builtin_intents[i]), "builtin", NULL);
    }
    struct intents_train_options to = {0};
    to.is_quiet = 1;
    if (intents_train(set, &to)) {
        fprintf(stderr, "chat_bench: training failed\n");
        return 1;
    }
    struct store_options so = {.durability = durability,
                               .housekeeping_thread = 1}; /* as the server */
    char *err = NULL;
    struct store *store = store_open(db, &so, &err);
    struct kb *kb = NULL;
    if (kb_path) {
        kb = kb_open(db, &err);
        struct kb_load_report report = {0};
        if (!kb || kb_load_path(kb, kb_path, &report)) {
            fprintf(stderr, "chat_bench: cannot load the KB from %s\n", kb_path);
            return 1;
        }
    }
    struct triage *triage = triage_new(NULL, set, kb);
    if (!store || !triage) {
        fprintf(stderr, "chat_bench: %s\n", err ? err : "setup failed");
        return 1;
    }
    struct counts counts = {0, 0};
    struct chat_io io = {on_send, on_close, &counts};
    struct chat_settings cs;
    memset(&cs, 0, sizeof cs);
    struct chat *chat = chat_new(&cs, store, kb, triage, &io);
    struct chat_peer peer = {"127.0.0.1", NULL, "bench"};
    for (int i = 0; i < n_conn; i++) {
        chat_customer_open(chat, (uint64_t)i + 1, &peer);
        const char hello[] = "{\"type\":\"hello\",\"lang\":\"en\"}";
        chat_customer_frame(chat, (uint64_t)i + 1, hello, sizeof hello - 1);
    }
    chat_flush(chat);

    size_t cap_turns = 1 << 16;
    int64_t *turn_us = malloc(cap_turns * sizeof *turn_us);
    size_t n_turns = 0;
    long n_sent = 0;
    counts.n_replies = 0;
    int64_t start = cd_now_us(), end = start + (int64_t)(seconds * 1e6), cpu0 = cpu_us();
    char frame[256];
    long turns_done = 0;
    while (max_turns > 0 ? turns_done < max_turns : cd_now_us() < end) {
        turns_done++;
        int64_t t0 = cd_now_us();
        for (int i = 0; i < n_conn; i++) {
            int len = snprintf(frame, sizeof frame,
                               "{\"type\":\"message\",\"id\":\"m%ld\",\"text\":\"%s\"}", n_sent,
                               questions[n_sent % (long)(sizeof questions / sizeof questions[0])]);
            chat_customer_frame(chat, (uint64_t)i + 1, frame, (size_t)len);
            n_sent++;
        }
        chat_flush(chat);
        if (n_turns < cap_turns)
            turn_us[n_turns++] = cd_now_us() - t0;
    }
    double elapsed = (double)(cd_now_us() - start) / 1e6;
    double cpu_s = (double)(cpu_us() - cpu0) / 1e6;
    qsort(turn_us, n_turns, sizeof *turn_us, cmp_i64);
    printf("{\"connections\":%d,\"kb\":%s,\"durability\":\"%s\",\"messages\":%ld,\"replies\":%ld,"
           "\"seconds\":%.2f,\"answered_per_s\":%.0f,\"turn_ms_p50\":%.2f,\"turn_ms_p99\":%.2f,"
           "\"turns\":%zu,\"cpu_s\":%.2f,\"answered_per_cpu_s\":%.0f,\"cpu_us_per_msg\":%.1f}\n",
           n_conn, kb ? "true" : "false", durability == STORE_DURABILITY_FULL ? "full" : "normal",
           n_sent, counts.n_replies, elapsed, (double)counts.n_replies / elapsed,
           n_turns ? (double)turn_us[n_turns / 2] / 1000 : 0,
           n_turns ? (double)turn_us[(n_turns * 99) / 100] / 1000 : 0, n_turns, cpu_s,
           cpu_s > 0 ? (double)counts.n_replies / cpu_s : 0,
           n_sent ? cpu_s * 1e6 / (double)n_sent : 0);
    free(turn_us);
    chat_free(chat);
    triage_free(triage);
    kb_close(kb);
    store_close(store);
    if (db == tmp)
        backup_remove_database(tmp);
    return 0;
}
