/* kb_index: each language's FTS5 table and its statements, the in-memory postings and document
 * counts (struct df_map) that the snowball tokenizer keeps current while FTS5 writes or deletes
 * a row, the tokenizer itself, and the phrasing and paragraph stems stored with an article.
 *
 * DESIGN
 * An article is tokenized once, by FTS5 calling the snowball tokenizer; the tokenizer reports
 * each token to the kb (struct capture), which updates the postings and builds the stems kept
 * in `article.qterms` and `article.pstems`. The map is read again from fts5vocab 'instance'
 * when another connection wrote to the KB or a write that changed the index was rolled back
 * (kb_df_map_build()). Must never happen: postings that disagree with FTS5 while is_valid. */
#include "kb_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void capture_reset(struct capture *cap)
{
    cap->n_calls = 0;
    cap->is_failed = 0;
    memset(cap->n_tokens, 0, sizeof cap->n_tokens);
    for (int c = 0; c < KB_N_COLS; c++) {
        cd_buf_reset(&cap->col[c].stems);
        cap->col[c].n = 0;
    }
}

void kb_capture_free(struct capture *cap)
{
    for (int c = 0; c < KB_N_COLS; c++) {
        cd_buf_free(&cap->col[c].stems);
        free(cap->col[c].start);
        free(cap->col[c].stem_at);
    }
    memset(cap, 0, sizeof *cap);
}

static int capture_token(struct capture_col *col, const char *token, int n_token, int start)
{
    if (cd_grow_each(&col->cap, col->n, 256, &col->start, sizeof *col->start, &col->stem_at,
                     sizeof *col->stem_at, (void *)NULL))
        return CD_ENOMEM;
    col->start[col->n] = start;
    col->stem_at[col->n] = (int)col->stems.len;
    if (cd_buf_append(&col->stems, token, (size_t)n_token) || cd_buf_append(&col->stems, "", 1))
        return CD_ENOMEM;
    col->n++;
    return 0;
}

/* ---- tokenizers ------------------------------------------------------------------------ */

/* A text.h tokenizer, and for the instances FTS5 makes, the kb they report indexing to. */
struct kb_tok {
    struct text_tokenizer *text;
    struct kb *owner;
};

static void kb_tok_free(struct kb_tok *kt)
{
    if (!kt)
        return;
    text_tokenizer_free(kt->text);
    free(kt);
}

static struct kb_tok *kb_tok_new(const char *lang)
{
    struct kb_tok *kt = calloc(1, sizeof *kt);
    if (!kt)
        return NULL;
    kt->text = text_tokenizer_new(lang);
    if (!kt->text) {
        kb_tok_free(kt);
        return NULL;
    }
    return kt;
}

/* text_tokenize(kt->text, s, n, 0, cb, ctx), memoizing stems. */
int kb_tok_tokenize(struct kb_tok *kt, const char *s, size_t n, text_token_cb cb, void *ctx)
{
    return text_tokenize(kt->text, s, n, 0, cb, ctx);
}

/* Frees what m holds and empties it; the stem pool keeps its memory for the next build. */
static void df_map_clear(struct df_map *m)
{
    free(m->slots);
    free(m->lens);
    kb_strings_free(m->qterms, (size_t)m->n_qterms);
    for (uint32_t i = 0; i < m->n_posts; i++)
        free(m->posts[i].w);
    free(m->posts);
    free(m->moved);
    for (int i = 0; i <= TEXT_MAX_TOKEN; i++) {
        free(m->by_len[i].at);
        free(m->by_len[i].sig);
    }
    struct cd_buf pool = m->pool;
    cd_buf_reset(&pool);
    memset(m, 0, sizeof *m);
    m->pool = pool;
}

static void df_map_free(struct df_map *m)
{
    if (!m)
        return;
    df_map_clear(m);
    cd_buf_free(&m->pool);
    free(m);
}

static int df_map_grow(struct df_map *m)
{
    uint32_t cap = m->cap ? m->cap * 2 : 1024;
    struct df_entry *slots = malloc((size_t)cap * sizeof *slots);
    if (!slots)
        return CD_ENOMEM;
    for (uint32_t i = 0; i < cap; i++)
        slots[i].stem_at = UINT32_MAX;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slots[i].stem_at == UINT32_MAX)
            continue;
        uint32_t k = m->slots[i].hash & (cap - 1);
        while (slots[k].stem_at != UINT32_MAX)
            k = (k + 1) & (cap - 1);
        slots[k] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Which byte values (mod 32) a stem has. One insertion, deletion, substitution or swap
 * changes at most two bits, so most stems are ruled out as typos by one popcount. */
uint32_t kb_byte_sig(const char *s, size_t n)
{
    uint32_t sig = 0;
    for (size_t i = 0; i < n; i++)
        sig |= 1u << ((unsigned char)s[i] & 31);
    return sig;
}

/* Returns the entry of a stem, adding a zeroed one if create is set; NULL if absent (or out
 * of memory while creating). */
struct df_entry *kb_df_find(struct df_map *m, const char *stem, size_t n, int create)
{
    if (n == 0 || n > 255)
        return NULL;
    uint32_t h = cd_fnv1a32(CD_FNV32_INIT, stem, n);
    if (m->cap) {
        for (uint32_t k = h & (m->cap - 1);; k = (k + 1) & (m->cap - 1)) {
            struct df_entry *e = &m->slots[k];
            if (e->stem_at == UINT32_MAX)
                break;
            if (e->hash == h && e->n_stem == n && !memcmp(m->pool.data + e->stem_at, stem, n))
                return e;
        }
    }
    if (!create)
        return NULL;
    if (((uint64_t)m->n + 1) * 2 > m->cap && df_map_grow(m))
        return NULL;
    if (m->pool.len + n >= UINT32_MAX)
        return NULL;
    if (m->n_posts == m->cap_posts) {
        uint32_t cap = m->cap_posts ? m->cap_posts * 2 : 1024;
        if (cd_resize_zeroed(&m->posts, m->cap_posts, cap, sizeof *m->posts))
            return NULL;
        m->cap_posts = cap;
    }
    uint32_t at = (uint32_t)m->pool.len;
    if (n <= TEXT_MAX_TOKEN && m->by_len[n].n == m->by_len[n].cap) {
        uint32_t cap = m->by_len[n].cap ? m->by_len[n].cap * 2 : 64;
        if (cd_resize(&m->by_len[n].at, cap, sizeof *m->by_len[n].at) ||
            cd_resize(&m->by_len[n].sig, cap, sizeof *m->by_len[n].sig))
            return NULL;
        m->by_len[n].cap = cap;
    }
    if (cd_buf_append(&m->pool, stem, n))
        return NULL;
    if (n <= TEXT_MAX_TOKEN) {
        m->by_len[n].at[m->by_len[n].n] = at;
        m->by_len[n].sig[m->by_len[n].n++] = kb_byte_sig(stem, n);
    }
    uint32_t k = h & (m->cap - 1);
    while (m->slots[k].stem_at != UINT32_MAX)
        k = (k + 1) & (m->cap - 1);
    struct df_entry *e = &m->slots[k];
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->stem_at = at;
    e->n_stem = (uint8_t)n;
    e->term_id = m->n_posts++;
    m->n++;
    return e;
}

/* Grows the per-row table at rows (a T **, *n_rows elements of size bytes) to cover row rid,
 * doubling from 1024, with the new rows zeroed. Returns 0 or CD_ENOMEM (table unchanged). */
static int rows_cover(void *rows, int64_t *n_rows, int64_t rid, size_t size)
{
    if (rid < *n_rows)
        return 0;
    int64_t n = *n_rows ? *n_rows : 1024;
    while (n <= rid)
        n *= 2;
    if (cd_resize_zeroed(rows, (size_t)*n_rows, (size_t)n, size))
        return CD_ENOMEM;
    *n_rows = n;
    return 0;
}

/* Records the column lengths of row rid (all zero: the row is gone). */
static int df_set_lens(struct df_map *m, int64_t rid, const int *lens)
{
    if (rid < 0 || rid > INT32_MAX)
        return CD_EINVAL;
    if (rows_cover(&m->lens, &m->n_lens, rid, sizeof *m->lens))
        return CD_ENOMEM;
    for (int c = 0; c < KB_N_COLS; c++)
        m->lens[rid].len[c] = lens[c] < 0 ? 0 : lens[c];
    return 0;
}

/* Keeps a copy of row rid's phrasing stems (NULL: the row is gone). */
static int df_set_qterms(struct df_map *m, int64_t rid, const char *qterms, size_t n)
{
    if (rid < 0 || rid > INT32_MAX)
        return CD_EINVAL;
    if (rid >= m->n_qterms && !qterms)
        return 0;
    if (rows_cover(&m->qterms, &m->n_qterms, rid, sizeof *m->qterms))
        return CD_ENOMEM;
    char *copy = qterms ? cd_strndup(qterms, n) : NULL;
    if (qterms && !copy)
        return CD_ENOMEM;
    free(m->qterms[rid]);
    m->qterms[rid] = copy;
    return 0;
}

/* Counts (delta 1) or uncounts (delta -1) a term of column col of row operation op; returns
 * the term's entry, or NULL (the map is then marked for a rebuild, if it must be). */
static struct df_entry *df_count(struct df_map *m, const char *stem, size_t n, int col, int delta,
                                 uint32_t op)
{
    struct df_entry *e = kb_df_find(m, stem, n, delta > 0);
    if (!e) {
        if (delta > 0)
            m->is_valid = 0; /* out of memory: rebuild before the next search */
        return NULL;
    }
    if (e->op != op) {
        e->op = op;
        e->op_cols = 0;
    }
    if (e->op_cols & (1u << col))
        return e;
    e->op_cols |= (uint8_t)(1u << col);
    e->col_df[col] += delta;
    if (e->col_df[col] < 0)
        e->col_df[col] = 0;
    return e;
}

static int postings_reserve(struct postings *p, uint32_t extra)
{
    if (p->n + extra <= p->cap)
        return 0;
    if (p->n > UINT32_MAX / 4 - extra)
        return CD_EFULL;
    uint32_t cap = p->cap ? p->cap : 8;
    while (cap < p->n + extra)
        cap *= 2;
    if (cd_resize(&p->w, cap, sizeof *p->w))
        return CD_ENOMEM;
    p->cap = cap;
    return 0;
}

/* Records one instance of a term in row rid. The first instance of row operation op starts
 * the row's entry at the end of the list; one that belongs earlier (an article rewritten in
 * place keeps its rowid) is noted in m->moved for postings_settle(). */
static int postings_add(struct df_map *m, const struct df_entry *e, uint32_t rid, int col, int off,
                        uint32_t op)
{
    struct postings *p = &m->posts[e->term_id];
    if (p->op != op) {
        if (postings_reserve(p, 3))
            return CD_ENOMEM;
        if (p->n > 0 && rid <= p->max_rid) {
            if (m->n_moved == m->cap_moved) {
                uint32_t cap = m->cap_moved ? m->cap_moved * 2 : 64;
                if (cd_resize(&m->moved, cap, sizeof *m->moved))
                    return CD_ENOMEM;
                m->cap_moved = cap;
            }
            m->moved[m->n_moved++] = e->term_id;
        }
        if (rid > p->max_rid)
            p->max_rid = rid;
        p->op = op;
        p->cur = p->n;
        p->w[p->n++] = rid;
        p->w[p->n++] = 0;
    } else if (postings_reserve(p, 1)) {
        return CD_ENOMEM;
    }
    uint32_t o = off < 0 ? 0 : (uint32_t)off > POST_MAX_OFF ? POST_MAX_OFF : (uint32_t)off;
    p->w[p->n++] = (uint32_t)col << POST_COL_SHIFT | o;
    p->w[p->cur + 1]++;
    return 0;
}

/* Moves each entry noted by postings_add() to its place in rowid order. */
static int postings_settle(struct df_map *m)
{
    int rc = 0;
    for (uint32_t i = 0; i < m->n_moved && !rc; i++) {
        struct postings *p = &m->posts[m->moved[i]];
        uint32_t cur = p->cur, len = p->n - cur, rid = p->w[cur], at = 0;
        while (at < cur && p->w[at] < rid)
            at += 2 + p->w[at + 1];
        if (at < cur && p->w[at] == rid) {
            rc = CD_ESTATE; /* the row is listed twice: rebuild */
            break;
        }
        if (at == cur)
            continue;
        uint32_t *entry = malloc((size_t)len * sizeof *entry);
        if (!entry) {
            rc = CD_ENOMEM;
            break;
        }
        memcpy(entry, p->w + cur, (size_t)len * sizeof *entry);
        memmove(p->w + at + len, p->w + at, (size_t)(cur - at) * sizeof *entry);
        memcpy(p->w + at, entry, (size_t)len * sizeof *entry);
        free(entry);
    }
    m->n_moved = 0;
    return rc;
}

/* Removes row rid from a term's list (once per row operation op). */
static int postings_remove(struct df_map *m, const struct df_entry *e, uint32_t rid, uint32_t op)
{
    struct postings *p = &m->posts[e->term_id];
    if (p->op == op)
        return 0;
    p->op = op;
    for (uint32_t at = 0; at < p->n && p->w[at] <= rid; at += 2 + p->w[at + 1]) {
        if (p->w[at] != rid)
            continue;
        uint32_t len = 2 + p->w[at + 1];
        memmove(p->w + at, p->w + at + len, (size_t)(p->n - at - len) * sizeof *p->w);
        p->n -= len;
        return 0;
    }
    return CD_ENOTFOUND;
}

/* ---- the snowball FTS5 tokenizer -------------------------------------------------------- */

struct fts_token_ctx {
    void *fts_ctx;
    int (*x_token)(void *, int, const char *, int, int, int);
};

static int fts_token_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    struct fts_token_ctx *c = ctx;
    return c->x_token(c->fts_ctx, 0, token, n_token, start, end);
}

struct fts_capture_ctx {
    struct fts_token_ctx fts;
    struct capture *cap;
    struct capture_col *col; /* NULL: the column's tokens are not kept */
    struct df_map *df_map;   /* NULL: not counted */
    int n_col;
    int delta;
    uint32_t op;
    uint32_t rid;
};

static int fts_capture_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    struct fts_capture_ctx *c = ctx;
    int off = c->cap->n_tokens[c->n_col]++; /* FTS5's position of the token in its column */
    if (c->col && !c->cap->is_failed && capture_token(c->col, token, n_token, start))
        c->cap->is_failed = 1;
    struct df_map *m = c->df_map;
    if (m && m->is_valid) {
        struct df_entry *e = df_count(m, token, (size_t)n_token, c->n_col, c->delta, c->op);
        if (e && (c->delta > 0 ? postings_add(m, e, c->rid, c->n_col, off, c->op)
                               : postings_remove(m, e, c->rid, c->op)))
            m->is_valid = 0; /* rebuilt before the next search */
    }
    return c->fts.x_token(c->fts.fts_ctx, 0, token, n_token, start, end);
}

/* xCreate: `tokenize='snowball LANG'`; one text.h tokenizer (one stemmer) per instance. */
static int snowball_create(void *ctx, const char **args, int n_args, Fts5Tokenizer **out)
{
    const char *lang = n_args > 0 ? args[0] : "en";
    struct kb_tok *t = kb_tok_new(lang);
    if (!t)
        return SQLITE_NOMEM;
    t->owner = ctx;
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void snowball_delete(Fts5Tokenizer *t)
{
    kb_tok_free((struct kb_tok *)t);
}

static int snowball_tokenize(Fts5Tokenizer *t, void *fts_ctx, int flags, const char *text,
                             int n_text, int (*x_token)(void *, int, const char *, int, int, int))
{
    struct kb_tok *kt = (struct kb_tok *)t;
    struct fts_token_ctx c = {fts_ctx, x_token};
    struct kb *kb = kt->owner;
    if ((flags & FTS5_TOKENIZE_QUERY) && n_text > 1 && text[0] == KB_RAW_STEM)
        return x_token(fts_ctx, 0, text + 1, n_text - 1, 0, n_text);
    if (kb && kb->is_capturing && (flags & FTS5_TOKENIZE_DOCUMENT)) {
        /* kb is writing or deleting one article's row: one call per column, in order. */
        int col = kb->capture.n_calls++;
        if (col < KB_N_COLS) {
            struct df_map *m = kb->capture_lang ? kb->capture_lang->df_map : NULL;
            struct fts_capture_ctx cc = {
                c,
                &kb->capture,
                kb->capture_delta > 0 && CAPTURED_COL(col) ? &kb->capture.col[col] : NULL,
                m && m->is_valid ? m : NULL,
                col,
                kb->capture_delta,
                kb->df_op,
                kb->capture_rid,
            };
            if (!text || n_text <= 0)
                return SQLITE_OK;
            return kb_tok_tokenize(kt, text, (size_t)n_text, fts_capture_cb, &cc);
        }
    }
    if (!text || n_text <= 0)
        return SQLITE_OK;
    return kb_tok_tokenize(kt, text, (size_t)n_text, fts_token_cb, &c);
}

const fts5_tokenizer kb_snowball_tokenizer = {snowball_create, snowball_delete, snowball_tokenize};

/* ---- languages -------------------------------------------------------------------------- */

void kb_lang_index_clear(struct kb_lang_index *li)
{
    sqlite3_finalize(li->ins);
    sqlite3_finalize(li->del);
    sqlite3_finalize(li->search);
    sqlite3_finalize(li->vocab);
    sqlite3_finalize(li->n_rows);
    sqlite3_finalize(li->qterms);
    df_map_free(li->df_map);
    kb_tok_free(li->tok);
    memset(li, 0, sizeof *li);
}

/* (Re)reads one language's postings, document counts and column lengths from its FTS5 index:
 * every term instance (fts5vocab 'instance': by term, then rowid, column and offset). Every
 * token is an instance of its term, so a column's length is its last offset plus one. */
int kb_df_map_build(struct kb_lang_index *li)
{
    li->owner->n_index_reads++;
    static const char *const col_names[KB_N_COLS] = {"title", "questions", "learned", "tags",
                                                     "body"};
    struct df_map *m = li->df_map;
    df_map_clear(m);
    sqlite3_stmt *st = li->vocab;
    sqlite3_reset(st);
    int step, rc = 0;
    uint32_t op = 0, prev_term = UINT32_MAX;
    int64_t prev_doc = -1;
    uint8_t cols = 0; /* columns of the current (term, row) counted in col_df */
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *term = (const char *)sqlite3_column_text(st, 0);
        int64_t doc = sqlite3_column_int64(st, 1);
        const char *col = (const char *)sqlite3_column_text(st, 2);
        int off = sqlite3_column_int(st, 3);
        int c = 0;
        while (c < KB_N_COLS && col && strcmp(col, col_names[c]))
            c++;
        if (!term || c == KB_N_COLS)
            continue;
        if (doc <= 0 || doc > INT32_MAX) {
            rc = CD_EFULL;
            break;
        }
        struct df_entry *e = kb_df_find(m, term, (size_t)sqlite3_column_bytes(st, 0), 1);
        if (!e) {
            rc = CD_ENOMEM;
            break;
        }
        if (e->term_id != prev_term || doc != prev_doc) {
            op++; /* a new (term, row) entry */
            cols = 0;
            prev_term = e->term_id;
            prev_doc = doc;
        }
        if (!(cols & (1u << c))) {
            cols |= (uint8_t)(1u << c);
            e->col_df[c]++;
        }
        if ((rc = postings_add(m, e, (uint32_t)doc, c, off, op)) != 0 ||
            (m->n_moved && (rc = postings_settle(m)) != 0))
            break;
        if (doc >= m->n_lens || m->lens[doc].len[c] <= off) {
            int lens[KB_N_COLS] = {0};
            if (doc < m->n_lens)
                memcpy(lens, m->lens[doc].len, sizeof lens);
            lens[c] = off + 1;
            if ((rc = df_set_lens(m, doc, lens)) != 0)
                break;
        }
    }
    sqlite3_reset(st);
    if (!rc && step != SQLITE_DONE)
        rc = sql_rc(step);
    /* Later row operations are numbered by kb->df_op: forget the numbers used here. */
    for (uint32_t i = 0; i < m->n_posts; i++)
        m->posts[i].op = 0;
    for (int64_t r = 0; r < m->n_lens; r++)
        for (int c = 0; c < KB_N_COLS; c++)
            m->tot_len[c] += m->lens[r].len[c];
    st = li->qterms;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = df_set_qterms(m, sqlite3_column_int64(st, 0), sql_text(st, 1),
                           (size_t)sqlite3_column_bytes(st, 1));
    sqlite3_reset(st);
    if (!rc && step != SQLITE_DONE)
        rc = sql_rc(step);
    st = li->n_rows; /* rows with no token at all have no instance */
    if (!rc && (step = sqlite3_step(st)) == SQLITE_ROW)
        m->n_rows = sqlite3_column_int64(st, 0);
    else if (!rc)
        rc = sql_rc(step);
    sqlite3_reset(st);
    m->is_valid = rc == 0;
    return rc;
}

/* Runs the SQL that fmt and its arguments (a language's table names) make or, when st is not
 * NULL, prepares it into *st for the life of the connection. Returns an SQLite result code. */
static int lang_sql(struct kb *kb, sqlite3_stmt **st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lang_sql(struct kb *kb, sqlite3_stmt **st, const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof sql)
        return SQLITE_TOOBIG;
    if (!st)
        return sqlite3_exec(kb->db, sql, NULL, NULL, NULL);
    return sqlite3_prepare_v3(kb->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* Returns the index for lang, creating its FTS5 table if create is set, or NULL. */
struct kb_lang_index *kb_lang_index_get(struct kb *kb, const char *lang, int create, int *rc_out)
{
    *rc_out = 0;
    for (int i = 0; i < kb->n_langs; i++)
        if (!strcmp(kb->langs[i].lang, lang))
            return &kb->langs[i];
    char code[4]; /* a table name is fts_<code>: only a bare lower-case ISO 639 code */
    if (!text_lang_code(lang, code) || strcmp(code, lang)) {
        *rc_out = CD_EINVAL;
        return NULL;
    }
    if (kb->n_langs >= KB_MAX_LANGS) {
        *rc_out = create ? CD_EFULL : 0;
        return NULL;
    }
    if (!create) {
        /* Only languages listed in kb_lang have a table; kb_open() loaded all of them. */
        return NULL;
    }
    int rc = lang_sql(kb, NULL,
                      "CREATE VIRTUAL TABLE IF NOT EXISTS fts_%s USING fts5(title, questions, "
                      "learned, tags, body, tokenize = 'snowball %s')",
                      lang, lang);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st = kb_stmt(kb, ST_LANG_ADD);
        sqlite3_bind_text(st, 1, lang, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(st);
    }
    if (rc != SQLITE_OK) {
        *rc_out = CD_EIO;
        return NULL;
    }
    struct kb_lang_index *li = &kb->langs[kb->n_langs];
    memset(li, 0, sizeof *li);
    snprintf(li->lang, sizeof li->lang, "%s", lang);
    li->owner = kb;
    li->tok = kb_tok_new(lang);
    rc = lang_sql(kb, &li->ins,
                  "INSERT INTO fts_%s(rowid, title, questions, learned, tags, body) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                  lang);
    if (rc == SQLITE_OK)
        rc = lang_sql(kb, &li->del, "DELETE FROM fts_%s WHERE rowid = ?1", lang);
    if (rc == SQLITE_OK)
        rc = lang_sql(kb, NULL,
                      "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_%s_inst USING fts5vocab(main, "
                      "fts_%s, instance)",
                      lang, lang);
    if (rc == SQLITE_OK)
        rc = lang_sql(kb, &li->vocab,
                      "SELECT term, doc, col, offset FROM temp.fts_%s_inst LIMIT 1000000000", lang);
    if (rc == SQLITE_OK)
        rc = lang_sql(kb, &li->n_rows, "SELECT count(*) FROM fts_%s_docsize", lang);
    if (rc == SQLITE_OK)
        rc = lang_sql(kb, &li->qterms,
                      "SELECT rid, qterms FROM article WHERE is_published = 1 AND lang = '%s' "
                      "LIMIT 100000000",
                      lang);
    if (rc == SQLITE_OK)
        rc = lang_sql(kb, &li->search,
                      "SELECT rowid, kb_rank(fts_%s, ?2) AS score FROM fts_%s WHERE fts_%s MATCH "
                      "?1 ORDER BY score DESC LIMIT %d",
                      lang, lang, lang, KB_CANDIDATES);
    li->df_map = calloc(1, sizeof *li->df_map);
    if (rc != SQLITE_OK || !li->tok || !li->df_map) {
        kb_lang_index_clear(li);
        *rc_out = rc == SQLITE_OK ? CD_ENOMEM : CD_EIO;
        return NULL;
    }
    kb->n_langs++;
    if ((rc = kb_df_map_build(li)) != 0) {
        kb->n_langs--;
        kb_lang_index_clear(li);
        *rc_out = rc;
        return NULL;
    }
    return li;
}

/* ---- indexing an article: the FTS5 row, phrasing stems and paragraph stems ----------- */

static int capture_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    (void)end;
    return capture_token(ctx, token, n_token, start);
}

/* Fills one column of the capture by tokenizing text here (when FTS5 did not pass it by). */
static int capture_text(struct kb_tok *tok, struct capture_col *col, const char *text)
{
    cd_buf_reset(&col->stems);
    col->n = 0;
    return kb_tok_tokenize(tok, text, strlen(text), capture_cb, col);
}

/* Appends stem to b unless the current line (from line_start) has it already. */
static int append_unique(struct cd_buf *b, size_t line_start, const char *stem)
{
    size_t n = strlen(stem);
    const char *line = b->data + line_start;
    size_t line_len = b->len - line_start;
    for (size_t i = 0; i < line_len;) {
        size_t j = i;
        while (j < line_len && line[j] != ' ')
            j++;
        if (j - i == n && !memcmp(line + i, stem, n))
            return 0;
        i = j + 1;
    }
    if (line_len && cd_buf_append(b, " ", 1))
        return CD_ENOMEM;
    return cd_buf_append(b, stem, n);
}

/* Phrasings: the title, each question (lines of the questions column), each learned question;
 * one line of distinct stems each. */
static int build_qterms(const struct capture *cap, const char *questions, const char *learned,
                        struct cd_buf *out)
{
    cd_buf_reset(out);
    int rc = cd_buf_append(out, "", 0);
    const struct capture_col *t = &cap->col[0], *q = &cap->col[1];
    for (int i = 0; i < t->n && !rc; i++)
        rc = append_unique(out, 0, t->stems.data + t->stem_at[i]);
    /* Questions are joined by '\n': a token's offset says which question it is in. */
    const char *line = questions;
    size_t line_start = out->len;
    int k = 0;
    while (!rc && line && *line) {
        const char *nl = strchr(line, '\n');
        int line_end = nl ? (int)(nl - questions) : (int)strlen(questions);
        if ((rc = cd_buf_append(out, "\n", 1)))
            break;
        line_start = out->len;
        for (; k < q->n && q->start[k] < line_end && !rc; k++)
            rc = append_unique(out, line_start, q->stems.data + q->stem_at[k]);
        line = nl ? nl + 1 : NULL;
    }
    if (!rc && learned && *learned) {
        if (!(rc = cd_buf_append(out, "\n", 1)))
            rc = cd_buf_puts(out, learned);
    }
    return rc;
}

static void stem_set_clear(struct stem_set *set)
{
    if (++set->gen == 0) {
        memset(set->slot, 0, sizeof set->slot);
        set->gen = 1;
    }
    set->n = 0;
}

/* Appends stem to the line of b that starts at line_start unless it is there already. */
static int append_distinct(struct cd_buf *b, size_t line_start, struct stem_set *set,
                           const char *stem)
{
    if (set->n >= STEM_SET_SLOTS / 2)
        return append_unique(b, line_start, stem);
    size_t n = strlen(stem);
    uint32_t h = cd_fnv1a32(CD_FNV32_INIT, stem, n), k = h & (STEM_SET_SLOTS - 1);
    for (; set->slot[k].gen == set->gen; k = (k + 1) & (STEM_SET_SLOTS - 1))
        if (set->slot[k].hash == h && set->slot[k].len == n &&
            !memcmp(b->data + set->slot[k].at, stem, n))
            return 0;
    if (b->len > line_start && cd_buf_append(b, " ", 1))
        return CD_ENOMEM;
    set->slot[k].gen = set->gen;
    set->slot[k].hash = h;
    set->slot[k].at = (uint32_t)b->len;
    set->slot[k].len = (uint32_t)n;
    set->n++;
    return cd_buf_append(b, stem, n);
}

/* Paragraph stems for passage selection: one line per paragraph, "START END stem stem...",
 * byte offsets into the body; a heading's stems count for the paragraphs under it. */
static int build_pstems(const struct capture *cap, const char *body, struct stem_set *set,
                        struct cd_buf *out)
{
    const struct capture_col *b = &cap->col[4];
    size_t n = strlen(body), pos = 0;
    struct kb_block blk = {0, 0, 0};
    int heading_first = 0, heading_end = 0; /* the current heading's tokens */
    int n_paragraphs = 0, k = 0, rc = 0;
    cd_buf_reset(out);
    rc = cd_buf_append(out, "", 0);
    while (!rc && n_paragraphs < KB_MAX_PASSAGES && kb_next_block(body, n, &pos, &blk)) {
        if (blk.is_heading) {
            while (k < b->n && (size_t)b->start[k] < blk.start)
                k++;
            heading_first = k;
            while (k < b->n && (size_t)b->start[k] < blk.end)
                k++;
            heading_end = k;
            continue;
        }
        while (k < b->n && (size_t)b->start[k] < blk.start)
            k++;
        int first = k;
        while (k < b->n && (size_t)b->start[k] < blk.end)
            k++;
        if (k == first)
            continue; /* nothing searchable: a rule, an image, a code fence marker */
        if (n_paragraphs && (rc = cd_buf_append(out, "\n", 1)))
            break;
        rc = cd_buf_printf(out, "%zu %zu ", blk.start, blk.end);
        size_t stems_start = out->len;
        stem_set_clear(set);
        for (int i = first; i < k && !rc; i++)
            rc = append_distinct(out, stems_start, set, b->stems.data + b->stem_at[i]);
        for (int i = heading_first; i < heading_end && !rc; i++)
            rc = append_distinct(out, stems_start, set, b->stems.data + b->stem_at[i]);
        n_paragraphs++;
    }
    return rc;
}

/* Brackets one FTS5 row write (delta 1) or delete (-1): the snowball tokenizer counts the
 * row's terms in the language's df_map and, on a write, keeps the tokens in kb->capture. */
static void capture_begin(struct kb *kb, struct kb_lang_index *li, sqlite3_int64 rid, int delta)
{
    capture_reset(&kb->capture);
    kb->capture_lang = li;
    kb->capture_delta = delta;
    kb->capture_rid = rid > 0 && rid <= INT32_MAX ? (uint32_t)rid : 0;
    if (!kb->capture_rid)
        li->df_map->is_valid = 0; /* a rowid the postings cannot hold: rebuild (and fail) */
    kb->df_op++;
    kb->is_capturing = 1;
    kb->is_op_indexed = 1;
}

static void capture_end(struct kb *kb, struct kb_lang_index *li, sqlite3_int64 rid, int rc)
{
    struct df_map *m = li->df_map;
    kb->is_capturing = 0;
    kb->capture_lang = NULL;
    /* FTS5 tokenizes each column once per row; anything else and the counts are unsure. */
    if (rc || kb->capture.n_calls != KB_N_COLS) {
        m->is_valid = 0;
        return;
    }
    static const int zero[KB_N_COLS] = {0};
    if (m->is_valid &&
        (df_set_lens(m, rid, kb->capture_delta > 0 ? kb->capture.n_tokens : zero) != 0 ||
         postings_settle(m) != 0 || (kb->capture_delta < 0 && df_set_qterms(m, rid, NULL, 0) != 0)))
        m->is_valid = 0;
    m->n_rows += kb->capture_delta;
    for (int c = 0; c < KB_N_COLS; c++)
        m->tot_len[c] += kb->capture_delta * (int64_t)kb->capture.n_tokens[c];
}

/* (Re)builds the FTS row, phrasing stems and paragraph stems of a published article. FTS5
 * tokenizes the article once; the snowball tokenizer hands its tokens to kb->capture. */
int kb_index_article(struct kb *kb, sqlite3_int64 rid, const struct kb_article *a)
{
    int rc = 0;
    struct kb_lang_index *li = kb_lang_index_get(kb, a->lang && *a->lang ? a->lang : "en", 1, &rc);
    if (!li)
        return rc ? rc : CD_EIO;
    struct cd_buf questions = {0}, learned = {0}, learned_stems = {0}, tags = {0};
    struct cd_buf qterms = {0}, pstems = {0};
    if ((rc = kb_join_lines(&questions, a->questions, a->n_questions)) ||
        (rc = kb_join_lines(&tags, a->tags, a->n_tags)) || (rc = cd_buf_append(&learned, "", 0)) ||
        (rc = cd_buf_append(&learned_stems, "", 0)))
        goto done;
    sqlite3_stmt *st = kb_stmt(kb, ST_LEARNED);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        int first = learned.len == 0;
        if ((!first &&
             (cd_buf_append(&learned, "\n", 1) || cd_buf_append(&learned_stems, "\n", 1))) ||
            cd_buf_puts(&learned, sql_text(st, 0)) || cd_buf_puts(&learned_stems, sql_text(st, 1)))
            rc = CD_ENOMEM;
    }
    sqlite3_reset(st);
    if (rc)
        goto done;
    capture_begin(kb, li, rid, 1);
    st = li->ins;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_text(st, 2, a->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, questions.data, (int)questions.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, learned.data, (int)learned.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, tags.data, (int)tags.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->body, -1, SQLITE_STATIC);
    rc = sql_run(st);
    capture_end(kb, li, rid, rc);
    if (rc)
        goto done;
    if (kb->capture.is_failed)
        rc = CD_ENOMEM;
    else if (kb->capture.n_calls != KB_N_COLS) {
        /* FTS5 did not tokenize each column once: tokenize what we need here. */
        if ((rc = capture_text(li->tok, &kb->capture.col[0], a->title)) ||
            (rc = capture_text(li->tok, &kb->capture.col[1], questions.data)) ||
            (rc = capture_text(li->tok, &kb->capture.col[4], a->body)))
            goto done;
    }
    if (!rc)
        rc = build_qterms(&kb->capture, questions.data, learned_stems.data, &qterms);
    if (!rc)
        rc = build_pstems(&kb->capture, a->body, &kb->stem_set, &pstems);
    if (rc)
        goto done;
    st = kb_stmt(kb, ST_SET_STEMS);
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_text(st, 2, qterms.data, (int)qterms.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, pstems.data, (int)pstems.len, SQLITE_STATIC);
    rc = sql_run(st);
    if (!rc && li->df_map->is_valid &&
        df_set_qterms(li->df_map, rid, qterms.data ? qterms.data : "", qterms.len) != 0)
        li->df_map->is_valid = 0;
done:
    cd_buf_free(&questions);
    cd_buf_free(&learned);
    cd_buf_free(&learned_stems);
    cd_buf_free(&tags);
    cd_buf_free(&qterms);
    cd_buf_free(&pstems);
    return rc;
}

/* Removes an article's row from the FTS table of lang, if any. */
int kb_unindex_article(struct kb *kb, sqlite3_int64 rid, const char *lang)
{
    int rc = 0;
    struct kb_lang_index *li = kb_lang_index_get(kb, lang, 0, &rc);
    if (!li)
        return 0;
    sqlite3_reset(li->del);
    sqlite3_bind_int64(li->del, 1, rid);
    capture_begin(kb, li, rid, -1);
    rc = sql_run(li->del);
    capture_end(kb, li, rid, rc);
    return rc;
}
