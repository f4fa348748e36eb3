/* store_outbox: the webhook outbox table of the store (see store_outbox.h), on either backend
 * (db.h: the same SQL runs on SQLite and PostgreSQL). Its statements are prepared on first use
 * and kept with the store. */
#include "store_outbox.h"

#include "cd.h"
#include "store_db.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define OUTBOX_COLUMNS                                                                             \
    "id, delivery, event, endpoint, coalesce(conversation, 0), payload, status, attempts, "        \
    "created_ms, next_attempt_ms, deadline_ms, last_http, coalesce(last_error, ''), delivered_ms"

enum {
    OB_ADD,
    OB_DUE,
    OB_CLAIM,
    OB_RECORD,
    OB_LIST_ANY,
    OB_LIST_STATUS,
    OB_GET,
    OB_REDELIVER,
    OB_COUNTS,
    OB_COUNT,
};

static const char *const outbox_sql[OB_COUNT] = {
    [OB_ADD] = "INSERT INTO webhook_outbox (delivery, event, endpoint, conversation, payload, "
               "created_ms, next_attempt_ms, deadline_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) "
               "RETURNING id",
    /* For each endpoint and conversation only the oldest pending row may go: order. */
    [OB_DUE] = "SELECT " OUTBOX_COLUMNS " FROM webhook_outbox o WHERE status = 0 AND "
               "next_attempt_ms <= ?1 AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE "
               "p.status = 0 AND p.endpoint = o.endpoint AND p.conversation = o.conversation AND "
               "p.id < o.id) ORDER BY id LIMIT ?2",
    /* SQLite: one node delivers, and takes what is due. PostgreSQL: several nodes do, and each
     * holds what it takes until ?3 (the rows another node holds are skipped, not waited for). */
    [OB_CLAIM] = "SELECT " OUTBOX_COLUMNS " FROM webhook_outbox o WHERE status = 0 AND "
                 "next_attempt_ms <= ?1 AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE "
                 "p.status = 0 AND p.endpoint = o.endpoint AND p.conversation = o.conversation AND "
                 "p.id < o.id) ORDER BY id LIMIT ?2",
    [OB_RECORD] = "UPDATE webhook_outbox SET status = ?2, attempts = ?3, next_attempt_ms = ?4, "
                  "last_http = ?5, last_error = ?6, delivered_ms = CASE WHEN ?2 = 1 THEN ?7 "
                  "ELSE delivered_ms END WHERE id = ?1",
    [OB_LIST_ANY] = "SELECT " OUTBOX_COLUMNS " FROM webhook_outbox ORDER BY id DESC LIMIT ?1",
    [OB_LIST_STATUS] = "SELECT " OUTBOX_COLUMNS " FROM webhook_outbox WHERE status = ?2 "
                       "ORDER BY id DESC LIMIT ?1",
    [OB_GET] = "SELECT " OUTBOX_COLUMNS " FROM webhook_outbox WHERE id = ?1",
    [OB_REDELIVER] = ("UPDATE webhook_outbox SET status = 0, next_attempt_ms = ?2, "
                      "deadline_ms = ?3, attempts = 0 WHERE id = ?1"),
    [OB_COUNTS] = "SELECT status, count(*) FROM webhook_outbox GROUP BY status LIMIT 3",
};

/* PostgreSQL's texts of the statements whose SQLite text it does not take. */
static const char *const outbox_pg[OB_COUNT] = {
    [OB_CLAIM] = "UPDATE webhook_outbox SET next_attempt_ms = ?3 WHERE id IN (SELECT o.id FROM "
                 "webhook_outbox o WHERE o.status = 0 AND o.next_attempt_ms <= ?1 AND NOT EXISTS "
                 "(SELECT 1 FROM webhook_outbox p WHERE p.status = 0 AND p.endpoint = o.endpoint "
                 "AND p.conversation = o.conversation AND p.id < o.id) ORDER BY o.id LIMIT ?2 "
                 "FOR UPDATE SKIP LOCKED) RETURNING " OUTBOX_COLUMNS,
};

struct outbox_stmts {
    struct db_stmt *stmt[OB_COUNT];
};

void store_outbox_free(struct store *s)
{
    void **slot = store_outbox_slot(s);
    struct outbox_stmts *o = *slot;
    if (!o)
        return;
    for (int i = 0; i < OB_COUNT; i++)
        db_finalize(o->stmt[i]);
    free(o);
    *slot = NULL;
}

/* The statement i of s, prepared on first use and cleared of earlier bindings; NULL when it
 * cannot be prepared. */
static struct db_stmt *ob(struct store *s, int i)
{
    void **slot = store_outbox_slot(s);
    struct outbox_stmts *o = *slot;
    if (!o && !(o = *slot = calloc(1, sizeof *o)))
        return NULL;
    if (!o->stmt[i]) {
        char *err = NULL;
        o->stmt[i] = db_prepare2(store_db(s), outbox_sql[i], outbox_pg[i], &err);
        free(err);
        if (!o->stmt[i])
            return NULL;
    }
    db_clear(o->stmt[i]);
    return o->stmt[i];
}

int store_outbox_new_delivery_id(char out[STORE_DELIVERY_ID_LEN + 1])
{
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n <= 0)
            return CD_EIO;
        got += (size_t)n;
    }
    memcpy(out, "dlv_", 4);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int store_outbox_add(struct store *s, struct store_outbox_item *item)
{
    struct db_stmt *st = ob(s, OB_ADD);
    if (!st)
        return CD_EIO;
    db_bind_text(st, 1, item->delivery);
    db_bind_text(st, 2, item->event);
    db_bind_text(st, 3, item->endpoint);
    if (item->conversation > 0)
        db_bind_int64(st, 4, item->conversation);
    db_bind_text(st, 5, item->payload ? item->payload : "{}");
    db_bind_int64(st, 6, item->created_ms);
    db_bind_int64(st, 7, item->deadline_ms);
    int rc = db_step(st);
    if (rc == DB_ROW) {
        item->id = db_col_int64(st, 0);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = CD_EIO; /* RETURNING gives the row it inserted */
    }
    db_reset(st);
    return rc;
}

static int read_item(struct db_stmt *st, struct store_outbox_item *it)
{
    memset(it, 0, sizeof *it);
    it->id = db_col_int64(st, 0);
    cd_strlcpy(it->delivery, sizeof it->delivery, db_col_str(st, 1));
    cd_strlcpy(it->event, sizeof it->event, db_col_str(st, 2));
    cd_strlcpy(it->endpoint, sizeof it->endpoint, db_col_str(st, 3));
    it->conversation = db_col_int64(st, 4);
    it->payload = strdup(db_col_str(st, 5));
    it->status = db_col_int(st, 6);
    it->attempts = db_col_int(st, 7);
    it->created_ms = db_col_int64(st, 8);
    it->next_attempt_ms = db_col_int64(st, 9);
    it->deadline_ms = db_col_int64(st, 10);
    it->last_http = db_col_int(st, 11);
    cd_strlcpy(it->last_error, sizeof it->last_error, db_col_str(st, 12));
    it->delivered_ms = db_col_int64(st, 13);
    return it->payload ? 0 : CD_ENOMEM;
}

static int read_items(struct db_stmt *st, struct store_outbox_item *items, int max, int *n_out)
{
    int n = 0, rc = 0, step = DB_DONE;
    while (n < max && (step = db_step(st)) == DB_ROW) {
        if ((rc = read_item(st, &items[n])) != 0) {
            store_outbox_clear(&items[n], 1);
            break;
        }
        n++;
    }
    if (!rc && step < 0)
        rc = step;
    db_reset(st);
    if (rc) {
        store_outbox_clear(items, n);
        n = 0;
    }
    *n_out = n;
    return rc;
}

int store_outbox_due(struct store *s, int64_t now_ms, struct store_outbox_item *items, int max,
                     int *n_out)
{
    *n_out = 0;
    struct db_stmt *st = ob(s, OB_DUE);
    if (!st)
        return CD_EIO;
    db_bind_int64(st, 1, now_ms);
    db_bind_int64(st, 2, max);
    return read_items(st, items, max, n_out);
}

static int by_id(const void *a, const void *b)
{
    const struct store_outbox_item *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int store_outbox_claim(struct store *s, int64_t now_ms, int64_t hold_ms,
                       struct store_outbox_item *items, int max, int *n_out)
{
    *n_out = 0;
    struct db_stmt *st = ob(s, OB_CLAIM);
    if (!st)
        return CD_EIO;
    db_bind_int64(st, 1, now_ms);
    db_bind_int64(st, 2, max);
    if (db_kind(store_db(s)) == DB_POSTGRES)
        db_bind_int64(st, 3, now_ms + hold_ms); /* SQLite's text has no ?3 */
    int rc = read_items(st, items, max, n_out);
    if (!rc && *n_out > 1)
        qsort(items, (size_t)*n_out, sizeof *items, by_id); /* RETURNING keeps no order */
    return rc;
}

int store_outbox_record(struct store *s, int64_t id, int status, int attempts,
                        int64_t next_attempt_ms, int last_http, const char *error, int64_t now_ms)
{
    struct db_stmt *st = ob(s, OB_RECORD);
    if (!st)
        return CD_EIO;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, status);
    db_bind_int64(st, 3, attempts);
    db_bind_int64(st, 4, next_attempt_ms);
    db_bind_int64(st, 5, last_http);
    db_bind_text(st, 6, error);
    db_bind_int64(st, 7, now_ms);
    return db_run(st);
}

int store_outbox_list(struct store *s, int status, struct store_outbox_item *items, int max,
                      int *n_out)
{
    *n_out = 0;
    struct db_stmt *st = ob(s, status < 0 ? OB_LIST_ANY : OB_LIST_STATUS);
    if (!st)
        return CD_EIO;
    db_bind_int64(st, 1, max);
    if (status >= 0)
        db_bind_int64(st, 2, status);
    return read_items(st, items, max, n_out);
}

int store_outbox_get(struct store *s, int64_t id, struct store_outbox_item *out)
{
    struct db_stmt *st = ob(s, OB_GET);
    if (!st)
        return CD_EIO;
    db_bind_int64(st, 1, id);
    int n = 0;
    int rc = read_items(st, out, 1, &n);
    return rc ? rc : n ? 0 : CD_ENOTFOUND;
}

int store_outbox_redeliver(struct store *s, int64_t id, int64_t now_ms, int64_t deadline_ms)
{
    struct db_stmt *st = ob(s, OB_REDELIVER);
    if (!st)
        return CD_EIO;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, now_ms);
    db_bind_int64(st, 3, deadline_ms);
    int rc = db_run(st);
    if (!rc && db_changes(store_db(s)) == 0)
        rc = CD_ENOTFOUND;
    return rc;
}

int store_outbox_counts(struct store *s, int64_t *pending, int64_t *delivered, int64_t *failed)
{
    *pending = *delivered = *failed = 0;
    struct db_stmt *st = ob(s, OB_COUNTS);
    if (!st)
        return CD_EIO;
    int step;
    while ((step = db_step(st)) == DB_ROW) {
        int status = db_col_int(st, 0);
        int64_t n = db_col_int64(st, 1);
        if (status == STORE_OUTBOX_PENDING)
            *pending = n;
        else if (status == STORE_OUTBOX_DELIVERED)
            *delivered = n;
        else if (status == STORE_OUTBOX_FAILED)
            *failed = n;
    }
    db_reset(st);
    return step < 0 ? step : 0;
}

void store_outbox_clear(struct store_outbox_item *items, int n)
{
    for (int i = 0; items && i < n; i++) {
        free(items[i].payload);
        items[i].payload = NULL;
    }
}
