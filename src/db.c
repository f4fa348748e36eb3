/* db: the SQLite and PostgreSQL statement drivers behind db.h.
 *
 * SQLite: a db_stmt holds a sqlite3_stmt and every call forwards to it.
 *
 * PostgreSQL: a db_stmt holds its SQL rewritten to $N parameters, prepared on the server
 * under a name of its own the first time it runs on a connection (and again after
 * db_reconnect(), which starts a new connection generation). Parameters go as text, blobs as
 * binary bytea; results come back as text and are read row by row from the PGresult that
 * PQexecPrepared() returned on the first db_step(). */
#include "db.h"

#include "cd.h"
#include "sql.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statements deferred or sent and not read yet, at most (STORE_TICKETS in flight and more). */
#define DEFER_MAX 64

struct db {
    enum db_kind kind;
    sqlite3 *sq;
    PGconn *pg;
    int gen;         /* PostgreSQL: connection generation, one more per reconnect */
    int next_name;   /* PostgreSQL: statement names s1, s2 ... */
    int64_t changes; /* PostgreSQL: rows changed by the last statement */
    /* PostgreSQL: db_defer()'s statements, sent with the next one in one round trip. */
    struct db_stmt *deferred[DEFER_MAX];
    int n_deferred;
    /* PostgreSQL: db_send()'s statements, sent in pipeline mode and not read yet, in order;
     * the next round trip reads their results into them. */
    struct db_stmt *sent[DEFER_MAX];
    int n_sent;
    struct db_stmt *stmts;
    char errmsg[256];
};

struct db_stmt {
    struct db *db;
    struct db_stmt *prev, *next;
    sqlite3_stmt *sq;
    /* PostgreSQL */
    char name[16];
    char *sql;
    int n_params;
    int gen; /* connection generation it was prepared on; 0 = not yet */
    const char **values;
    int *lengths;
    int *formats;
    char (*num)[32]; /* text of the numeric parameters */
    PGresult *res;
    int row; /* current row, -1 before the first */
    int n_rows;
    unsigned char **blob; /* decoded bytea per column of the current row */
    size_t *blob_len;
    int n_cols;
    /* db_send(): is_sent until its result is read; then is_read with read_rc (and res and
     * read_changes when it is 0) until its db_step() takes them. */
    int is_sent, is_read, read_rc;
    int64_t read_changes;
};

int db_target_is_postgres(const char *t)
{
    return t && (!strncmp(t, "postgresql://", 13) || !strncmp(t, "postgres://", 11) ||
                 !strncmp(t, "host=", 5) || !strncmp(t, "dbname=", 7));
}

static char *err_dup(const char *prefix, const char *msg)
{
    size_t n = strlen(prefix) + strlen(msg ? msg : "") + 3;
    char *e = malloc(n);
    if (e)
        snprintf(e, n, "%s%s", prefix, msg ? msg : "");
    /* libpq messages end in a newline */
    while (e && *e && e[strlen(e) - 1] == '\n')
        e[strlen(e) - 1] = 0;
    return e;
}

static void set_err(struct db *db, const char *msg)
{
    snprintf(db->errmsg, sizeof db->errmsg, "%s", msg ? msg : "");
    size_t n = strlen(db->errmsg);
    while (n && db->errmsg[n - 1] == '\n')
        db->errmsg[--n] = 0;
}

static PGconn *pg_connect(const char *uri)
{
    /* The URI's own settings come after these defaults and win over them. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"3", "caredesk", uri, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

struct db *db_open_postgres(const char *uri, char **err)
{
    if (err)
        *err = NULL;
    struct db *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    db->kind = DB_POSTGRES;
    db->gen = 1;
    db->pg = pg_connect(uri);
    if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
        if (err)
            *err = err_dup("cannot connect to PostgreSQL: ",
                           db->pg ? PQerrorMessage(db->pg) : "out of memory");
        PQfinish(db->pg);
        free(db);
        return NULL;
    }
    /* Notices (a table that already exists ...) are not the user's business. */
    PQclear(PQexec(db->pg, "SET client_min_messages = warning"));
    return db;
}

struct db *db_wrap_sqlite(void *sqlite3_db)
{
    struct db *db = calloc(1, sizeof *db);
    if (!db)
        return NULL;
    db->kind = DB_SQLITE;
    db->sq = sqlite3_db;
    return db;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    while (db->stmts)
        db_finalize(db->stmts);
    if (db->pg)
        PQfinish(db->pg);
    free(db);
}

enum db_kind db_kind(const struct db *db)
{
    return db->kind;
}

const char *db_filename(struct db *db)
{
    if (db->kind != DB_SQLITE)
        return NULL;
    const char *name = sqlite3_db_filename(db->sq, "main");
    return name ? name : "";
}

void *db_handle(struct db *db)
{
    return db->kind == DB_SQLITE ? (void *)db->sq : (void *)db->pg;
}

/* ---- PostgreSQL statements ---- */

/* sql with ?N (and bare ?) turned into $N, outside quotes; *n_params gets the highest N. */
static char *pg_rewrite(const char *sql, int *n_params)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 2 + 1);
    if (!out)
        return NULL;
    char *o = out;
    int max = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            *o++ = *p;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
            continue;
        }
        if (*p != '?') {
            *o++ = *p;
            continue;
        }
        int n = 0;
        while (p[1] >= '0' && p[1] <= '9')
            n = n * 10 + (*++p - '0');
        if (!n)
            n = max + 1;
        if (n > max)
            max = n;
        o += sprintf(o, "$%d", n);
    }
    *o = 0;
    *n_params = max;
    return out;
}

static int pg_pipeline(struct db *db, struct db_stmt *cur, PGresult **cur_res);

static void pg_clear_result(struct db_stmt *st)
{
    if (st->is_sent) /* its result is on the way: read it (into st) before it is dropped */
        pg_pipeline(st->db, NULL, NULL);
    st->is_read = 0;
    for (int i = 0; st->blob && i < st->n_cols; i++) {
        PQfreemem(st->blob[i]);
        st->blob[i] = NULL;
    }
    free(st->blob);
    free(st->blob_len);
    st->blob = NULL;
    st->blob_len = NULL;
    st->n_cols = 0;
    PQclear(st->res);
    st->res = NULL;
    st->row = -1;
    st->n_rows = 0;
}

/* The CD_E* code of a failed result res (NULL: none) on pg. */
static int pg_code(const PGresult *res, PGconn *pg)
{
    if (PQstatus(pg) != CONNECTION_OK)
        return CD_EIO;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return CD_EIO;
    if (!strcmp(state, "23503"))
        return CD_ENOTFOUND;
    if (!strncmp(state, "23", 2))
        return CD_EEXIST;
    if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
        return CD_EBUSY;
    if (!strcmp(state, "53100"))
        return CD_EFULL;
    if (!strcmp(state, "53200"))
        return CD_ENOMEM;
    if (!strncmp(state, "54", 2))
        return CD_ETOOBIG;
    return CD_EIO;
}

/* A statement failed with result res (NULL: none): keeps its message (the connection's when
 * the result has none) and returns its CD_E* code. */
static int pg_fail(struct db *db, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    set_err(db, msg && *msg ? msg : PQerrorMessage(db->pg));
    return pg_code(res, db->pg);
}

static int pg_prepare(struct db_stmt *st)
{
    struct db *db = st->db;
    PGresult *r = PQprepare(db->pg, st->name, st->sql, st->n_params, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_fail(db, r);
    if (!rc)
        st->gen = db->gen;
    PQclear(r);
    return rc;
}

/* Takes r, the result of st's run, as what its rows are read from (row -1: before the
 * first). Returns 0, or CD_E* when the run failed (r is freed). */
static int pg_take_result(struct db_stmt *st, PGresult *r)
{
    struct db *db = st->db;
    ExecStatusType es = PQresultStatus(r);
    if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
        int rc = r ? pg_fail(db, r) : CD_EIO;
        if (!r)
            set_err(db, PQerrorMessage(db->pg));
        if (es == PGRES_PIPELINE_ABORTED)
            rc = CD_EIO; /* an earlier statement of the round trip failed */
        /* A statement prepared on a connection that was since reset (by the server). */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && !strcmp(state, "26000"))
            st->gen = 0;
        PQclear(r);
        return rc;
    }
    const char *ct = PQcmdTuples(r);
    db->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
    st->res = r;
    st->n_rows = PQntuples(r);
    st->n_cols = PQnfields(r);
    st->blob = calloc((size_t)st->n_cols + 1, sizeof *st->blob);
    st->blob_len = calloc((size_t)st->n_cols + 1, sizeof *st->blob_len);
    if (!st->blob || !st->blob_len) {
        pg_clear_result(st);
        return CD_ENOMEM;
    }
    st->row = -1;
    return 0;
}

/* Sends the deferred statements (as sent ones whose results are not kept). */
static int pg_send_deferred(struct db *db)
{
    int n = db->n_deferred;
    db->n_deferred = 0;
    for (int i = 0; i < n; i++) {
        if (db->n_sent == DEFER_MAX ||
            !PQsendQueryPrepared(db->pg, db->deferred[i]->name, 0, NULL, NULL, NULL, 0)) {
            set_err(db, PQerrorMessage(db->pg));
            return CD_EIO;
        }
        db->sent[db->n_sent++] = NULL; /* result checked, not kept */
    }
    return 0;
}

static int pg_enter_pipeline(struct db *db)
{
    if (PQpipelineStatus(db->pg) != PQ_PIPELINE_OFF)
        return 0;
    for (int i = 0; i < db->n_deferred; i++)
        if (db->deferred[i]->gen != db->gen && pg_prepare(db->deferred[i]))
            return CD_EIO;
    if (!PQenterPipelineMode(db->pg)) {
        set_err(db, PQerrorMessage(db->pg));
        return CD_EIO;
    }
    return 0;
}

/* Sends the deferred statements and then cur (NULL: none), ends the round trip with a sync,
 * and reads every result in order: those of db_send()'s statements into them, *cur_res gets
 * cur's. Returns 0, or the CD_E* code of the first statement that failed (those after it
 * were not run). */
static int pg_pipeline(struct db *db, struct db_stmt *cur, PGresult **cur_res)
{
    if (cur_res)
        *cur_res = NULL;
    int rc = pg_enter_pipeline(db);
    if (rc) {
        db->n_deferred = 0;
        goto lost;
    }
    rc = pg_send_deferred(db);
    if (!rc && cur &&
        !PQsendQueryPrepared(db->pg, cur->name, cur->n_params, cur->values, cur->lengths,
                             cur->formats, 0))
        rc = CD_EIO;
    if (!rc && !PQpipelineSync(db->pg))
        rc = CD_EIO;
    if (rc) {
        set_err(db, PQerrorMessage(db->pg));
        goto lost;
    }
    /* Each statement's results end with a NULL; the sync's result ends the round trip. */
    int n = db->n_sent;
    db->n_sent = 0;
    for (int i = 0; i <= n; i++) {
        struct db_stmt *st = i < n ? db->sent[i] : cur;
        if (i == n && !cur)
            break;
        PGresult *res = NULL, *r;
        while ((r = PQgetResult(db->pg)) != NULL) {
            if (!res)
                res = r;
            else
                PQclear(r);
        }
        ExecStatusType es = PQresultStatus(res);
        int src = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK ? 0
                  : es == PGRES_PIPELINE_ABORTED                  ? CD_EIO
                  : res                                           ? pg_fail(db, res)
                                                                  : CD_EIO;
        if (i < n && st) { /* db_send()'s: kept for its db_step() */
            st->is_sent = 0;
            st->read_rc = pg_take_result(st, res);
            st->read_changes = db->changes;
            st->is_read = 1;
        } else if (i == n && cur_res && !src) {
            *cur_res = res;
        } else {
            /* cur prepared on a connection that was since reset (by the server) */
            const char *state = i == n ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
            if (state && !strcmp(state, "26000"))
                cur->gen = 0;
            PQclear(res);
        }
        if (src && !rc)
            rc = src;
        if (PQstatus(db->pg) != CONNECTION_OK) { /* the connection went: nothing more comes */
            for (int j = i + 1; j < n; j++)
                if (db->sent[j]) {
                    db->sent[j]->is_sent = 0;
                    db->sent[j]->is_read = 1;
                    db->sent[j]->read_rc = CD_EIO;
                }
            if (!rc)
                rc = CD_EIO;
            break;
        }
    }
    PGresult *r;
    while ((r = PQgetResult(db->pg)) != NULL) { /* the sync's */
        int is_sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (is_sync)
            break;
    }
    if (!PQexitPipelineMode(db->pg) && !rc)
        rc = CD_EIO;
    if (rc && cur_res && *cur_res) {
        PQclear(*cur_res);
        *cur_res = NULL;
    }
    return rc;
lost:
    for (int i = 0; i < db->n_sent; i++)
        if (db->sent[i]) {
            db->sent[i]->is_sent = 0;
            db->sent[i]->is_read = 1;
            db->sent[i]->read_rc = CD_EIO;
        }
    db->n_sent = 0;
    return rc;
}

int db_send(struct db_stmt *st)
{
    struct db *db = st->db;
    if (db->kind == DB_SQLITE)
        return 0; /* db_step() runs it */
    if (st->is_sent || (db->n_sent + db->n_deferred + 1 >= DEFER_MAX) ||
        (st->gen != db->gen && PQpipelineStatus(db->pg) != PQ_PIPELINE_OFF)) {
        /* Read what is in flight first (also before preparing, which cannot be pipelined). */
        pg_pipeline(db, NULL, NULL);
    }
    if (st->gen != db->gen && pg_prepare(st))
        return CD_EIO;
    pg_clear_result(st);
    int rc = pg_enter_pipeline(db);
    if (!rc)
        rc = pg_send_deferred(db);
    if (!rc && (!PQsendQueryPrepared(db->pg, st->name, st->n_params, st->values, st->lengths,
                                     st->formats, 0) ||
                !PQsendFlushRequest(db->pg) || PQflush(db->pg) < 0)) {
        set_err(db, PQerrorMessage(db->pg));
        rc = CD_EIO;
    }
    if (rc)
        return rc;
    st->is_sent = 1;
    db->sent[db->n_sent++] = st;
    return 0;
}

int db_defer(struct db_stmt *st)
{
    struct db *db = st->db;
    if (db->kind == DB_SQLITE)
        return db_run(st);
    if (db->n_deferred + db->n_sent + 1 >= DEFER_MAX) {
        int rc = pg_pipeline(db, NULL, NULL);
        if (rc)
            return rc;
    }
    db->deferred[db->n_deferred++] = st;
    return 0;
}

static int pg_step(struct db_stmt *st)
{
    struct db *db = st->db;
    if (st->is_sent) /* db_send()'s, not read yet: read it now */
        pg_pipeline(db, NULL, NULL);
    if (st->is_read) { /* db_send()'s result, read with another statement's round trip */
        st->is_read = 0;
        if (st->read_rc)
            return st->read_rc;
        db->changes = st->read_changes;
    }
    if (st->res) {
        if (st->row + 1 < st->n_rows) {
            st->row++;
            for (int i = 0; i < st->n_cols; i++) {
                PQfreemem(st->blob[i]);
                st->blob[i] = NULL;
            }
            return DB_ROW;
        }
        return DB_DONE;
    }
    if (st->gen != db->gen) {
        if (PQpipelineStatus(db->pg) != PQ_PIPELINE_OFF)
            pg_pipeline(db, NULL, NULL);
        int rc = pg_prepare(st);
        if (rc)
            return rc;
    }
    PGresult *r = NULL;
    if (db->n_deferred || db->n_sent) {
        int rc = pg_pipeline(db, st, &r);
        if (rc)
            return rc;
    } else {
        r = PQexecPrepared(db->pg, st->name, st->n_params, st->values, st->lengths, st->formats, 0);
    }
    int rc = pg_take_result(st, r);
    if (rc)
        return rc;
    st->row = 0;
    return st->n_rows > 0 ? DB_ROW : DB_DONE;
}

/* ---- statements ---- */

/* Frees what a PostgreSQL statement owns besides the struct itself: its rewritten SQL and
 * its parameter arrays. Any of them may be NULL. */
static void pg_stmt_free_parts(struct db_stmt *st)
{
    free(st->sql);
    free(st->values);
    free(st->lengths);
    free(st->formats);
    free(st->num);
}

struct db_stmt *db_prepare2(struct db *db, const char *sql, const char *pg_sql, char **err)
{
    if (err)
        *err = NULL;
    struct db_stmt *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->db = db;
    st->row = -1;
    if (db->kind == DB_SQLITE) {
        if (sqlite3_prepare_v3(db->sq, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->sq, NULL) !=
            SQLITE_OK) {
            if (err)
                *err = err_dup("database: ", sqlite3_errmsg(db->sq));
            goto fail;
        }
    } else {
        st->sql = pg_rewrite(pg_sql ? pg_sql : sql, &st->n_params);
        int n = st->n_params ? st->n_params : 1;
        st->values = calloc((size_t)n, sizeof *st->values);
        st->lengths = calloc((size_t)n, sizeof *st->lengths);
        st->formats = calloc((size_t)n, sizeof *st->formats);
        st->num = calloc((size_t)n, sizeof *st->num);
        if (!st->sql || !st->values || !st->lengths || !st->formats || !st->num)
            goto fail;
        snprintf(st->name, sizeof st->name, "s%d", ++db->next_name);
        /* Prepared now, so a mistake in the SQL shows at open, not at first use. */
        if (pg_prepare(st)) {
            if (err)
                *err = err_dup("database: ", db->errmsg);
            goto fail;
        }
    }
    CD_LIST_PUSH(db->stmts, st, prev, next);
    return st;

fail:
    pg_stmt_free_parts(st);
    free(st);
    return NULL;
}

struct db_stmt *db_prepare(struct db *db, const char *sql, char **err)
{
    return db_prepare2(db, sql, NULL, err);
}

void db_finalize(struct db_stmt *st)
{
    if (!st)
        return;
    struct db *db = st->db;
    CD_LIST_UNLINK(db->stmts, st, prev, next);
    if (db->kind == DB_SQLITE) {
        sqlite3_finalize(st->sq);
    } else {
        for (int i = 0; i < db->n_deferred; i++)
            if (db->deferred[i] == st)
                db->deferred[i--] = db->deferred[--db->n_deferred];
        pg_clear_result(st);
        if (db->n_deferred)
            pg_pipeline(db, NULL, NULL);
        if (st->gen == db->gen && PQstatus(db->pg) == CONNECTION_OK &&
            PQtransactionStatus(db->pg) != PQTRANS_INERROR) {
            char sql[48];
            snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
            PQclear(PQexec(db->pg, sql));
        }
        pg_stmt_free_parts(st);
    }
    free(st);
}

static int pg_param(struct db_stmt *st, int i)
{
    if (i < 1 || i > st->n_params)
        return -1;
    if (st->res)
        pg_clear_result(st);
    return i - 1;
}

/* PostgreSQL: the text buffer of number parameter i, now its value (NULL: no such one). */
static char *pg_number(struct db_stmt *st, int i)
{
    int k = pg_param(st, i);
    if (k < 0)
        return NULL;
    st->values[k] = st->num[k];
    st->formats[k] = 0;
    return st->num[k];
}

void db_bind_int64(struct db_stmt *st, int i, int64_t v)
{
    char *b = st->sq ? NULL : pg_number(st, i);
    if (st->sq)
        sqlite3_bind_int64(st->sq, i, v);
    else if (b)
        snprintf(b, sizeof st->num[0], "%lld", (long long)v);
}

void db_bind_double(struct db_stmt *st, int i, double v)
{
    char *b = st->sq ? NULL : pg_number(st, i);
    if (st->sq)
        sqlite3_bind_double(st->sq, i, v);
    else if (b)
        snprintf(b, sizeof st->num[0], "%.17g", v);
}

/* PostgreSQL: parameter i is value (NULL: SQL NULL), n bytes in binary when is_binary. */
static void pg_set(struct db_stmt *st, int i, const char *value, size_t n, int is_binary)
{
    int k = pg_param(st, i);
    if (k < 0)
        return;
    st->values[k] = value;
    st->lengths[k] = (int)n;
    st->formats[k] = is_binary;
}

void db_bind_text(struct db_stmt *st, int i, const char *text)
{
    if (!st->sq)
        pg_set(st, i, text, 0, 0);
    else if (text)
        sqlite3_bind_text(st->sq, i, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st->sq, i);
}

void db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
    if (!st->sq)
        pg_set(st, i, p ? (const char *)p : "", n, 1);
    else
        sqlite3_bind_blob(st->sq, i, p, (int)n, SQLITE_STATIC);
}

void db_bind_null(struct db_stmt *st, int i)
{
    if (!st->sq)
        pg_set(st, i, NULL, 0, 0);
    else
        sqlite3_bind_null(st->sq, i);
}

int db_step(struct db_stmt *st)
{
    if (!st->sq)
        return pg_step(st);
    int rc = sqlite3_step(st->sq);
    if (rc == SQLITE_ROW)
        return DB_ROW;
    if (rc == SQLITE_DONE)
        return DB_DONE;
    set_err(st->db, sqlite3_errmsg(st->db->sq));
    return rc == SQLITE_CONSTRAINT_FOREIGNKEY ? CD_ENOTFOUND : sql_rc(rc);
}

void db_reset(struct db_stmt *st)
{
    if (st->sq)
        sqlite3_reset(st->sq);
    else
        pg_clear_result(st);
}

void db_clear(struct db_stmt *st)
{
    if (st->sq) {
        sqlite3_reset(st->sq);
        sqlite3_clear_bindings(st->sq);
        return;
    }
    pg_clear_result(st);
    for (int k = 0; k < st->n_params; k++) {
        st->values[k] = NULL;
        st->lengths[k] = 0;
        st->formats[k] = 0;
    }
}

int db_run(struct db_stmt *st)
{
    int rc = db_step(st);
    db_reset(st);
    return rc < 0 ? rc : 0;
}

/* ---- columns ---- */

static const char *pg_value(struct db_stmt *st, int col)
{
    if (!st->res || st->row < 0 || st->row >= st->n_rows || col < 0 || col >= st->n_cols ||
        PQgetisnull(st->res, st->row, col))
        return NULL;
    return PQgetvalue(st->res, st->row, col);
}

int db_col_is_null(struct db_stmt *st, int col)
{
    if (st->sq)
        return sqlite3_column_type(st->sq, col) == SQLITE_NULL;
    return pg_value(st, col) == NULL;
}

int64_t db_col_int64(struct db_stmt *st, int col)
{
    if (st->sq)
        return sqlite3_column_int64(st->sq, col);
    const char *v = pg_value(st, col);
    if (!v)
        return 0;
    if (v[0] == 't' && !v[1])
        return 1;
    if (v[0] == 'f' && !v[1])
        return 0;
    if (strpbrk(v, ".eE"))
        return (int64_t)strtod(v, NULL);
    return strtoll(v, NULL, 10);
}

int db_col_int(struct db_stmt *st, int col)
{
    return (int)db_col_int64(st, col);
}

double db_col_double(struct db_stmt *st, int col)
{
    if (st->sq)
        return sqlite3_column_double(st->sq, col);
    const char *v = pg_value(st, col);
    return v ? strtod(v, NULL) : 0;
}

const char *db_col_text(struct db_stmt *st, int col)
{
    if (st->sq)
        return (const char *)sqlite3_column_text(st->sq, col);
    return pg_value(st, col);
}

const char *db_col_str(struct db_stmt *st, int col)
{
    const char *t = db_col_text(st, col);
    return t ? t : "";
}

/* The bytea of col decoded (text results carry it as \x hex). */
static const unsigned char *pg_blob(struct db_stmt *st, int col, size_t *len)
{
    *len = 0;
    const char *v = pg_value(st, col);
    if (!v)
        return NULL;
    if (!st->blob[col]) {
        size_t n = 0;
        st->blob[col] = PQunescapeBytea((const unsigned char *)v, &n);
        st->blob_len[col] = n;
    }
    *len = st->blob_len[col];
    return st->blob[col];
}

size_t db_col_bytes(struct db_stmt *st, int col)
{
    if (st->sq)
        return (size_t)sqlite3_column_bytes(st->sq, col);
    if (!st->res || col < 0 || col >= st->n_cols)
        return 0;
    if (PQftype(st->res, col) == 17 /* bytea */) {
        size_t n;
        pg_blob(st, col, &n);
        return n;
    }
    const char *v = pg_value(st, col);
    return v ? strlen(v) : 0;
}

const void *db_col_blob(struct db_stmt *st, int col)
{
    if (st->sq)
        return sqlite3_column_blob(st->sq, col);
    if (!st->res || col < 0 || col >= st->n_cols)
        return NULL;
    if (PQftype(st->res, col) != 17)
        return pg_value(st, col);
    size_t n;
    return pg_blob(st, col, &n);
}

/* ---- connection ---- */

int64_t db_changes(struct db *db)
{
    return db->kind == DB_SQLITE ? sqlite3_changes64(db->sq) : db->changes;
}

int db_exec(struct db *db, const char *script, char **err)
{
    if (err)
        *err = NULL;
    if (db->kind == DB_SQLITE) {
        char *msg = NULL;
        int rc = sqlite3_exec(db->sq, script, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            return 0;
        set_err(db, msg ? msg : sqlite3_errstr(rc));
        if (err)
            *err = err_dup("database: ", db->errmsg);
        sqlite3_free(msg);
        return sql_rc(rc);
    }
    if (db->n_deferred || db->n_sent) {
        int drc = pg_pipeline(db, NULL, NULL);
        if (drc) {
            if (err)
                *err = err_dup("database: ", db->errmsg);
            return drc;
        }
    }
    PGresult *r = PQexec(db->pg, script);
    ExecStatusType es = PQresultStatus(r);
    int rc = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK ? 0 : pg_fail(db, r);
    if (rc) {
        if (err)
            *err = err_dup("database: ", db->errmsg);
    } else {
        const char *ct = PQcmdTuples(r);
        db->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
    }
    PQclear(r);
    return rc;
}

int db_tx_failed(struct db *db)
{
    if (db->kind == DB_SQLITE)
        return sqlite3_get_autocommit(db->sq);
    /* As of the last statement read: deferred ones (savepoints) and sent ones change nothing
     * here but by failing, which the next round trip reports. */
    if (PQstatus(db->pg) == CONNECTION_OK && db->n_sent)
        return 0;
    return PQstatus(db->pg) != CONNECTION_OK || PQtransactionStatus(db->pg) != PQTRANS_INTRANS;
}

int db_in_tx(struct db *db)
{
    if (db->kind == DB_SQLITE)
        return !sqlite3_get_autocommit(db->sq);
    PGTransactionStatusType t = PQtransactionStatus(db->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || (t == PQTRANS_ACTIVE && db->n_sent);
}

const char *db_errmsg(struct db *db)
{
    return db->errmsg;
}

int db_is_up(struct db *db)
{
    return db->kind == DB_SQLITE || PQstatus(db->pg) == CONNECTION_OK;
}

int db_reconnect(struct db *db)
{
    if (db->kind == DB_SQLITE)
        return 0;
    db->n_sent = 0; /* lost with the old connection's transaction */
    for (struct db_stmt *st = db->stmts; st; st = st->next) {
        st->is_sent = 0;
        pg_clear_result(st);
    }
    db->n_deferred = 0;
    PQreset(db->pg);
    if (PQstatus(db->pg) != CONNECTION_OK) {
        set_err(db, PQerrorMessage(db->pg));
        return CD_EIO;
    }
    db->gen++;
    PQclear(PQexec(db->pg, "SET client_min_messages = warning"));
    return 0;
}
