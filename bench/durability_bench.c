/* durability_bench: what each durability setting costs the store, without the network:
 * group commits of B messages (B = 1, 10, 100) appended to a database file with
 * --durability normal and full, for a fixed time each. Prints one line per setting and
 * batch size: commits/s, messages/s and the mean and p99 commit time.
 *
 *   build/bench/durability_bench [--dir DIR] [--seconds S]
 *
 * DIR (default build/) must be on the disk the server would use: on a tmpfs fsync is
 * free and "full" measures nothing. */
#include "backup.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Runs group commits of batch messages for seconds; prints the figures. */
static int run(const char *path, int durability, int batch, double seconds)
{
    backup_remove_database(path);
    struct store_options o = {.durability = durability,
                              .housekeeping_thread = 1}; /* as the server */
    char *err = NULL;
    struct store *s = store_open(path, &o, &err);
    if (!s) {
        fprintf(stderr, "durability_bench: %s\n", err ? err : "cannot open the store");
        free(err);
        return 1;
    }
    struct store_conversation c;
    memset(&c, 0, sizeof c);
    memset(c.token_hash, 7, sizeof c.token_hash);
    if (store_conversation_create(s, &c)) {
        store_close(s);
        return 1;
    }
    size_t cap = 1 << 16, n_commits = 0;
    int64_t *lat = malloc(cap * sizeof *lat);
    if (!lat) {
        store_close(s);
        return 1;
    }
    long n_msgs = 0;
    int64_t t0 = cd_now_us(), end = t0 + (int64_t)(seconds * 1e6);
    char text[200];
    while (cd_now_us() < end) {
        if (store_begin(s))
            break;
        for (int i = 0; i < batch; i++) {
            struct store_message m;
            memset(&m, 0, sizeof m);
            m.conversation = c.id;
            m.sender = STORE_SENDER_CUSTOMER;
            snprintf(m.client_id, sizeof m.client_id, "m%ld", n_msgs + i);
            snprintf(text, sizeof text, "message %ld: where is my order? it has not arrived yet",
                     n_msgs + i);
            m.text = text;
            if (store_message_append(s, &m))
                break;
        }
        int64_t c0 = cd_now_us();
        if (store_commit(s))
            break;
        if (n_commits == cap) {
            int64_t *more = realloc(lat, 2 * cap * sizeof *lat);
            if (!more)
                break;
            lat = more;
            cap *= 2;
        }
        lat[n_commits++] = cd_now_us() - c0;
        n_msgs += batch;
    }
    double secs = (double)(cd_now_us() - t0) / 1e6;
    double mean = 0;
    for (size_t i = 0; i < n_commits; i++)
        mean += (double)lat[i];
    mean = n_commits ? mean / (double)n_commits / 1000.0 : 0;
    qsort(lat, n_commits, sizeof *lat, cmp_i64);
    double p99 = n_commits ? (double)lat[(size_t)((double)n_commits * 0.99)] / 1000.0 : 0;
    printf("  %-6s batch %3d: %8.0f commits/s %9.0f msgs/s   commit mean %7.3f ms  p99 %7.3f ms\n",
           durability == STORE_DURABILITY_FULL ? "full" : "normal", batch, (double)n_commits / secs,
           (double)n_msgs / secs, mean, p99);
    free(lat);
    store_close(s);
    backup_remove_database(path);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = "build";
    double seconds = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: durability_bench [--dir DIR] [--seconds S]\n");
            return 2;
        }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/durability-bench-%d.db", dir, (int)getpid());
    static const int batches[] = {1, 10, 100};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
        for (int d = 0; d < 2; d++)
            if (run(path, d ? STORE_DURABILITY_FULL : STORE_DURABILITY_NORMAL, batches[b], seconds))
                return 1;
    return 0;
}
