/* Fault-injection tests for store.c: writes and syncs failing with
 * SQLITE_FULL or SQLITE_IOERR at every position of a group commit, of a
 * checkpoint and of closing, through the test VFS in fault_vfs.h.
 *
 * For every position k, the k-th write/sync/truncate of a group-commit
 * transaction (a new conversation, customer and bot messages, agent messages
 * on older conversations, an audit event) fails, once or for good (a disk
 * that stays full). Each time: the failing call returns CD_EFULL or CD_EIO,
 * a failed commit stored none of its writes, every message committed before
 * is there exactly once, in order, with its text; PRAGMA integrity_check is
 * ok; and once the fault clears the next group commits. The same holds after
 * closing and reopening, with both durability settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include "store.h"
#include "fault_vfs.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONV  512
#define MAX_MSG   64
#define TEXT_FILL 1200 /* bytes per message: a group spans several pages */

static char db_path[256];

/* What the test knows is committed: conversations and their messages. */
struct model_msg {
    int sender;
    char tag[32];
};

struct model_conv {
    int64_t id;
    int n;
    struct model_msg msgs[MAX_MSG];
};

struct model {
    int n;
    struct model_conv convs[MAX_CONV];
    int n_batches; /* batch numbers, committed or not, never reused */
};

static void remove_db(void)
{
    testlib_remove_db(db_path);
}

static int setup(void **state)
{
    assert_int_equal(fault_vfs_install(), SQLITE_OK);
    fault_vfs_disarm();
    snprintf(db_path, sizeof db_path, "/tmp/cd-test-faults-%d.db", (int)getpid());
    remove_db();
    struct model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    fault_vfs_disarm();
    free(*state);
    remove_db();
    return 0;
}

/* The full text of the message with this tag: the tag and filler. */
static void message_text(const char *tag, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s:", tag);
    unsigned h = 0;
    for (const char *p = tag; *p; p++)
        h = h * 31 + (unsigned char)*p;
    for (size_t i = (size_t)n; i + 1 < cap && i < TEXT_FILL; i++)
        out[i] = (char)('a' + (h + i) % 26);
    out[cap - 1 < TEXT_FILL ? cap - 1 : TEXT_FILL] = '\0';
}

static struct store *open_store(int durability)
{
    struct store_options o = {.durability = durability, .busy_timeout_ms = 1000};
    char *err = NULL;
    struct store *s = store_open(db_path, &o, &err);
    if (!s)
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
    free(err);
    return s;
}

/* Planned writes of one batch, applied to the model only once committed. */
struct pending {
    int n;
    int conv_index[8]; /* index into model->convs, or -1 for the new one */
    struct model_msg msgs[8];
    int64_t new_id;
};

static int append_tagged(struct store *s, int64_t conv, int sender, const char *tag,
                         const char *client_id, const char *reply_to)
{
    char text[TEXT_FILL + 1];
    message_text(tag, text, sizeof text);
    struct store_message m = testlib_message_of(conv, sender, client_id, reply_to, text);
    if (sender == STORE_SENDER_BOT)
        m.meta = "{\"action\":\"answer\",\"intent\":\"order_status\",\"confidence\":0.9}";
    return store_message_append(s, &m);
}

static void pend(struct pending *p, int conv_index, int sender, const char *tag)
{
    assert_true(p->n < 8);
    p->conv_index[p->n] = conv_index;
    p->msgs[p->n].sender = sender;
    snprintf(p->msgs[p->n].tag, sizeof p->msgs[p->n].tag, "%s", tag);
    p->n++;
}

/* Runs one group commit the way the server does: begin, a new conversation
 * with a question and the bot's answer, an agent message on the newest and
 * on an older conversation, an audit event, commit. A careful caller: the
 * first failing call rolls the group back. Returns 0 or the first error; the
 * model gains the batch only when it returns 0. */
static int run_batch(struct store *s, struct model *model)
{
    int b = model->n_batches++;
    struct pending p;
    memset(&p, 0, sizeof p);
    char tag[32], cid[32];
    int rc = store_begin(s);
    if (rc)
        return rc;

    struct store_conversation c;
    memset(&c, 0, sizeof c);
    memcpy(c.token_hash, &b, sizeof b);
    memset(c.token_hash + sizeof b, 0xa5, sizeof c.token_hash - sizeof b);
    snprintf(c.lang, sizeof c.lang, "en");
    c.customer_email = "sam@example.com";
    rc = store_conversation_create(s, &c);
    if (rc)
        goto fail;
    p.new_id = c.id;

    snprintf(tag, sizeof tag, "b%d-q", b);
    snprintf(cid, sizeof cid, "q%d", b);
    rc = append_tagged(s, c.id, STORE_SENDER_CUSTOMER, tag, cid, NULL);
    if (rc)
        goto fail;
    pend(&p, -1, STORE_SENDER_CUSTOMER, tag);
    snprintf(tag, sizeof tag, "b%d-a", b);
    rc = append_tagged(s, c.id, STORE_SENDER_BOT, tag, NULL, cid);
    if (rc)
        goto fail;
    pend(&p, -1, STORE_SENDER_BOT, tag);

    int targets[2] = {model->n - 1, model->n > 0 ? (b * 7919) % model->n : -1};
    for (int i = 0; i < 2; i++) {
        int t = targets[i];
        if (t < 0 || (i == 1 && t == targets[0]) || model->convs[t].n + 2 > MAX_MSG)
            continue;
        snprintf(tag, sizeof tag, "b%d-x%d", b, i);
        snprintf(cid, sizeof cid, "x%d-%d", b, i);
        rc = append_tagged(s, model->convs[t].id, STORE_SENDER_AGENT, tag, cid, NULL);
        if (rc)
            goto fail;
        pend(&p, t, STORE_SENDER_AGENT, tag);
    }
    rc = store_event_add(s, "claim", c.id, 1, "{\"test\":true}");
    if (rc)
        goto fail;

    rc = store_commit(s);
    if (rc)
        return rc;
    assert_false(store_in_transaction(s));
    assert_true(model->n < MAX_CONV);
    struct model_conv *nc = &model->convs[model->n++];
    memset(nc, 0, sizeof *nc);
    nc->id = p.new_id;
    for (int i = 0; i < p.n; i++) {
        struct model_conv *mc = p.conv_index[i] < 0 ? nc : &model->convs[p.conv_index[i]];
        mc->msgs[mc->n++] = p.msgs[i];
    }
    return 0;
fail:
    store_rollback(s);
    assert_false(store_in_transaction(s));
    return rc;
}

struct seen {
    const struct model_conv *expect;
    int n;
    int is_bad;
};

static int check_message(void *ctx, const struct store_message *m)
{
    struct seen *seen = ctx;
    char text[TEXT_FILL + 1];
    if (seen->n >= seen->expect->n) {
        fprintf(stderr, "conversation %lld: extra message seq %lld: %.20s\n",
                (long long)seen->expect->id, (long long)m->seq, m->text);
        seen->is_bad = 1;
        return 1;
    }
    const struct model_msg *want = &seen->expect->msgs[seen->n];
    message_text(want->tag, text, sizeof text);
    if (m->seq != seen->n + 1 || m->sender != want->sender || strcmp(m->text, text)) {
        fprintf(stderr, "conversation %lld: message %d is seq %lld %.20s, want %s\n",
                (long long)seen->expect->id, seen->n, (long long)m->seq, m->text, want->tag);
        seen->is_bad = 1;
        return 1;
    }
    seen->n++;
    return 0;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* Checks the database against the model through the store and through a
 * second connection: integrity, no extra rows, every message once in order. */
static void verify(struct store *s, const struct model *model)
{
    int64_t n_messages = 0;
    for (int i = 0; i < model->n; i++) {
        struct seen seen = {&model->convs[i], 0, 0};
        assert_int_equal(store_messages_after(s, model->convs[i].id, 0, 1000, check_message, &seen),
                         0);
        assert_false(seen.is_bad);
        assert_int_equal(seen.n, model->convs[i].n);
        n_messages += model->convs[i].n;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
    sqlite3_finalize(stmt);
    assert_int_equal(query_int(db, "SELECT count(*) FROM conversations"), model->n);
    assert_int_equal(query_int(db, "SELECT count(*) FROM messages"), n_messages);
    assert_int_equal(query_int(db, "SELECT count(*) FROM events"), model->n);
    assert_int_equal(query_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    sqlite3_close(db);
}

/* One scenario: durability, error, transient or persistent. For k = 0, 1,
 * ... until a batch runs without reaching the k-th operation, fail the
 * k-th operation of a batch and check everything; then clear the fault and
 * check that the store works again. Returns the number of positions tried. */
static int fault_every_position(struct model *model, int durability, int err, int is_persistent)
{
    remove_db();
    memset(model, 0, sizeof *model);
    struct store *s = open_store(durability);
    assert_non_null(s);
    for (int i = 0; i < 3; i++)
        assert_int_equal(run_batch(s, model), 0);
    int k;
    for (k = 0;; k++) {
        fault_vfs_arm(k, err, is_persistent);
        int rc = run_batch(s, model);
        long n_faults = fault_vfs.n_faults;
        if (is_persistent && n_faults > 0) {
            /* The disk stays full: the next group fails as cleanly. */
            int rc2 = run_batch(s, model);
            assert_true(rc2 == CD_EFULL || rc2 == CD_EIO);
        }
        fault_vfs_disarm();
        if (n_faults == 0) {
            assert_int_equal(rc, 0);
            verify(s, model);
            break;
        }
        if (rc != 0) {
            if (err == SQLITE_FULL)
                assert_int_equal(rc, CD_EFULL);
            else
                assert_int_equal(rc, CD_EIO);
        }
        verify(s, model);
        /* Space is back: the store works again at once. */
        assert_int_equal(run_batch(s, model), 0);
        verify(s, model);
    }
    store_close(s);
    s = open_store(durability);
    assert_non_null(s);
    verify(s, model);
    assert_int_equal(run_batch(s, model), 0);
    verify(s, model);
    store_close(s);
    print_message("%s, %s, %s: %d write/sync positions failed in turn, %d groups committed\n",
                  durability == STORE_DURABILITY_FULL ? "full" : "normal",
                  err == SQLITE_FULL ? "SQLITE_FULL" : "SQLITE_IOERR",
                  is_persistent ? "until space returns" : "once", k, model->n);
    return k;
}

static void test_commit_faults_normal_full(void **state)
{
    int n1 = fault_every_position(*state, STORE_DURABILITY_NORMAL, SQLITE_FULL, 0);
    int n2 = fault_every_position(*state, STORE_DURABILITY_NORMAL, SQLITE_FULL, 1);
    /* A group writes its pages (two writes a WAL frame) and more. */
    assert_true(n1 >= 4);
    assert_true(n2 >= 4);
}

static void test_commit_faults_normal_ioerr(void **state)
{
    fault_every_position(*state, STORE_DURABILITY_NORMAL, SQLITE_IOERR, 0);
    fault_every_position(*state, STORE_DURABILITY_NORMAL, SQLITE_IOERR, 1);
}

static void test_commit_faults_durable_full(void **state)
{
    int n = fault_every_position(*state, STORE_DURABILITY_FULL, SQLITE_FULL, 0);
    fault_every_position(*state, STORE_DURABILITY_FULL, SQLITE_FULL, 1);
    assert_true(n >= 5); /* the WAL sync at commit is one more position */
}

static void test_commit_faults_durable_ioerr(void **state)
{
    fault_every_position(*state, STORE_DURABILITY_FULL, SQLITE_IOERR, 0);
    fault_every_position(*state, STORE_DURABILITY_FULL, SQLITE_IOERR, 1);
}

/* Closing checkpoints the WAL into the database file and removes it: fail
 * each of those writes in turn; reopening must find everything. */
static void test_close_checkpoint_faults(void **state)
{
    struct model *model = *state;
    for (int persistent = 0; persistent < 2; persistent++) {
        remove_db();
        memset(model, 0, sizeof *model);
        int k;
        for (k = 0;; k++) {
            struct store *s = open_store(STORE_DURABILITY_NORMAL);
            assert_non_null(s);
            verify(s, model);
            assert_int_equal(run_batch(s, model), 0);
            assert_int_equal(run_batch(s, model), 0);
            fault_vfs_arm(k, k % 2 ? SQLITE_IOERR : SQLITE_FULL, persistent);
            store_close(s);
            long n_faults = fault_vfs.n_faults;
            fault_vfs_disarm();
            if (n_faults == 0)
                break;
        }
        assert_true(k >= 2);
        struct store *s = open_store(STORE_DURABILITY_NORMAL);
        assert_non_null(s);
        verify(s, model);
        store_close(s);
    }
}

/* A checkpoint run by another connection (as the KB's connection or an
 * operator's sqlite3 shell can) failing at every position while the store
 * keeps committing. */
static void test_checkpoint_faults_while_serving(void **state)
{
    struct model *model = *state;
    remove_db();
    memset(model, 0, sizeof *model);
    struct store *s = open_store(STORE_DURABILITY_NORMAL);
    assert_non_null(s);
    int k;
    for (k = 0;; k++) {
        assert_int_equal(run_batch(s, model), 0);
        assert_int_equal(run_batch(s, model), 0);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
        fault_vfs_arm(k, k % 2 ? SQLITE_FULL : SQLITE_IOERR, 0);
        int rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        long n_faults = fault_vfs.n_faults;
        fault_vfs_disarm();
        sqlite3_close(db);
        verify(s, model);
        if (n_faults == 0) {
            assert_int_equal(rc, SQLITE_OK);
            break;
        }
    }
    assert_true(k >= 2);
    store_close(s);
    s = open_store(STORE_DURABILITY_NORMAL);
    assert_non_null(s);
    verify(s, model);
    store_close(s);
}

/* A group too big for the page cache spills pages to the WAL before its commit; a write
 * failing then makes SQLite roll the whole transaction back by itself. The store must
 * not let the rest of the group commit one by one: every later write fails, the commit
 * fails, none of the group is stored, and the next group works. */
static void test_fault_inside_a_large_group(void **state)
{
    struct model *model = *state;
    for (int k = 0; k < 4; k += 3) {
        remove_db();
        memset(model, 0, sizeof *model);
        struct store *s = open_store(STORE_DURABILITY_NORMAL);
        assert_non_null(s);
        assert_int_equal(run_batch(s, model), 0);
        int64_t conv = model->convs[0].id;
        assert_int_equal(store_begin(s), 0);
        fault_vfs_arm(k, k ? SQLITE_IOERR : SQLITE_FULL, 0);
        int first_failed = -1, n_ok_after = 0;
        char tag[32];
        for (int i = 0; i < 10000; i++) { /* 12 MB: more than the 8 MB page cache */
            snprintf(tag, sizeof tag, "big%d", i);
            int rc = append_tagged(s, conv, STORE_SENDER_CUSTOMER, tag, tag, NULL);
            if (rc && first_failed < 0)
                first_failed = i;
            else if (!rc && first_failed >= 0)
                n_ok_after++;
        }
        long n_faults = fault_vfs.n_faults;
        fault_vfs_disarm();
        assert_int_equal(n_faults, 1);
        assert_true(first_failed > 0);
        assert_int_equal(n_ok_after, 0); /* nothing after the lost group went in alone */
        assert_int_not_equal(store_commit(s), 0);
        assert_false(store_in_transaction(s));
        verify(s, model); /* none of the group is stored */
        assert_int_equal(run_batch(s, model), 0);
        verify(s, model);
        store_close(s);
        print_message("a group spilling to the WAL failed at append %d (position %d)\n",
                      first_failed, k);
    }
}

/* A test that runs with setup() before it and teardown() after it. */
#define WITH_FIXTURE(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    WITH_FIXTURE(test_commit_faults_normal_full),
                    WITH_FIXTURE(test_commit_faults_normal_ioerr),
                    WITH_FIXTURE(test_commit_faults_durable_full),
                    WITH_FIXTURE(test_commit_faults_durable_ioerr),
                    WITH_FIXTURE(test_close_checkpoint_faults),
                    WITH_FIXTURE(test_checkpoint_faults_while_serving),
                    WITH_FIXTURE(test_fault_inside_a_large_group),
                });
}
