/* store_outbox: the webhook outbox table of the store (see store_outbox.h), on SQLite. Its
 * statements are prepared on first use and kept with the store. */
#include "store_outbox.h"

#include "cd.h"
#include "store_int.h"
#include "store_sqlite.h"

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
               "created_ms, next_attempt_ms, deadline_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
    /* For each endpoint and conversation only the oldest pending row may go: order. */
    [OB_DUE] = "SELECT " OUTBOX_COLUMNS " FROM webhook_outbox o WHERE status = 0 AND "
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
    [OB_REDELIVER] = "UPDATE webhook_outbox SET status = 0, next_attempt_ms = ?2, "
                     "deadline_ms = ?3, attempts = 0 WHERE id = ?1",
    [OB_COUNTS] = "SELECT status, count(*) FROM webhook_outbox GROUP BY status LIMIT 3",
};

struct outbox_stmts {
    sqlite3_stmt *stmt[OB_COUNT];
};

void store_outbox_free(struct store *s)
{
    void **slot = store_outbox_slot(s);
    struct outbox_stmts *o = *slot;
    if (!o)
        return;
    for (int i = 0; i < OB_COUNT; i++)
        sqlite3_finalize(o->stmt[i]);
    free(o);
    *slot = NULL;
}

/* The statement i of s, prepared on first use; NULL when it cannot be. */
static sqlite3_stmt *ob(struct store *s, int i)
{
    void **slot = store_outbox_slot(s);
    struct outbox_stmts *o = *slot;
    if (!o && !(o = *slot = calloc(1, sizeof *o)))
        return NULL;
    if (!o->stmt[i] &&
        sqlite3_prepare_v3(store_sqlite_db(s), outbox_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &o->stmt[i], NULL) != SQLITE_OK)
        return NULL;
    return o->stmt[i];
}

static int map_step(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return CD_EBUSY;
    case SQLITE_FULL:
        return CD_EFULL;
    case SQLITE_NOMEM:
        return CD_ENOMEM;
    default:
        return CD_EIO;
    }
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
    sqlite3_stmt *st = ob(s, OB_ADD);
    if (!st)
        return CD_EIO;
    sqlite3_bind_text(st, 1, item->delivery, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, item->event, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, item->endpoint, -1, SQLITE_STATIC);
    if (item->conversation > 0)
        sqlite3_bind_int64(st, 4, item->conversation);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_text(st, 5, item->payload ? item->payload : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, item->created_ms);
    sqlite3_bind_int64(st, 7, item->deadline_ms);
    int rc = map_step(sqlite3_step(st));
    sqlite3_reset(st);
    if (!rc)
        item->id = sqlite3_last_insert_rowid(store_sqlite_db(s));
    return rc;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static int read_item(sqlite3_stmt *st, struct store_outbox_item *it)
{
    memset(it, 0, sizeof *it);
    it->id = sqlite3_column_int64(st, 0);
    cd_strlcpy(it->delivery, sizeof it->delivery, col(st, 1));
    cd_strlcpy(it->event, sizeof it->event, col(st, 2));
    cd_strlcpy(it->endpoint, sizeof it->endpoint, col(st, 3));
    it->conversation = sqlite3_column_int64(st, 4);
    it->payload = strdup(col(st, 5));
    it->status = sqlite3_column_int(st, 6);
    it->attempts = sqlite3_column_int(st, 7);
    it->created_ms = sqlite3_column_int64(st, 8);
    it->next_attempt_ms = sqlite3_column_int64(st, 9);
    it->deadline_ms = sqlite3_column_int64(st, 10);
    it->last_http = sqlite3_column_int(st, 11);
    cd_strlcpy(it->last_error, sizeof it->last_error, col(st, 12));
    it->delivered_ms = sqlite3_column_int64(st, 13);
    return it->payload ? 0 : CD_ENOMEM;
}

static int read_items(sqlite3_stmt *st, struct store_outbox_item *items, int max, int *n_out)
{
    int n = 0, rc = 0, step;
    while (n < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = read_item(st, &items[n])) != 0) {
            store_outbox_clear(&items[n], 1);
            break;
        }
        n++;
    }
    if (!rc && n < max)
        rc = map_step(step);
    sqlite3_reset(st);
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
    sqlite3_stmt *st = ob(s, OB_DUE);
    if (!st)
        return CD_EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, max);
    return read_items(st, items, max, n_out);
}

int store_outbox_record(struct store *s, int64_t id, int status, int attempts,
                        int64_t next_attempt_ms, int last_http, const char *error, int64_t now_ms)
{
    sqlite3_stmt *st = ob(s, OB_RECORD);
    if (!st)
        return CD_EIO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, status);
    sqlite3_bind_int(st, 3, attempts);
    sqlite3_bind_int64(st, 4, next_attempt_ms);
    sqlite3_bind_int(st, 5, last_http);
    if (error)
        sqlite3_bind_text(st, 6, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, now_ms);
    int rc = map_step(sqlite3_step(st));
    sqlite3_reset(st);
    return rc;
}

int store_outbox_list(struct store *s, int status, struct store_outbox_item *items, int max,
                      int *n_out)
{
    *n_out = 0;
    sqlite3_stmt *st = ob(s, status < 0 ? OB_LIST_ANY : OB_LIST_STATUS);
    if (!st)
        return CD_EIO;
    sqlite3_bind_int(st, 1, max);
    if (status >= 0)
        sqlite3_bind_int(st, 2, status);
    return read_items(st, items, max, n_out);
}

int store_outbox_get(struct store *s, int64_t id, struct store_outbox_item *out)
{
    sqlite3_stmt *st = ob(s, OB_GET);
    if (!st)
        return CD_EIO;
    sqlite3_bind_int64(st, 1, id);
    int n = 0;
    int rc = read_items(st, out, 1, &n);
    return rc ? rc : n ? 0 : CD_ENOTFOUND;
}

int store_outbox_redeliver(struct store *s, int64_t id, int64_t now_ms, int64_t deadline_ms)
{
    sqlite3_stmt *st = ob(s, OB_REDELIVER);
    if (!st)
        return CD_EIO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, deadline_ms);
    int rc = map_step(sqlite3_step(st));
    sqlite3_reset(st);
    if (!rc && sqlite3_changes(store_sqlite_db(s)) == 0)
        rc = CD_ENOTFOUND;
    return rc;
}

int store_outbox_counts(struct store *s, int64_t *pending, int64_t *delivered, int64_t *failed)
{
    *pending = *delivered = *failed = 0;
    sqlite3_stmt *st = ob(s, OB_COUNTS);
    if (!st)
        return CD_EIO;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int status = sqlite3_column_int(st, 0);
        int64_t n = sqlite3_column_int64(st, 1);
        if (status == STORE_OUTBOX_PENDING)
            *pending = n;
        else if (status == STORE_OUTBOX_DELIVERED)
            *delivered = n;
        else if (status == STORE_OUTBOX_FAILED)
            *failed = n;
    }
    sqlite3_reset(st);
    return map_step(step);
}

void store_outbox_clear(struct store_outbox_item *items, int n)
{
    for (int i = 0; items && i < n; i++) {
        free(items[i].payload);
        items[i].payload = NULL;
    }
}
