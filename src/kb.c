/* kb: the knowledge base: opening the database (schema, statements, the snowball tokenizer and
 * kb_rank() registered), articles and their revisions (checks, put, get, list, delete), and
 * learned phrasings. The rest of the KB lives beside it, sharing kb_int.h: kb_index.c (FTS5
 * tables, tokenizer, in-memory postings), kb_search.c (ranking), kb_passage.c (the passage
 * that answers) and kb_load.c (files).
 *
 * DESIGN
 * One SQLite connection (WAL) per struct kb, every statement prepared once at open (or when a
 * language first appears) and kept until kb_close(); every query has a LIMIT. Articles live in
 * `article` (current version) and `article_revision` (every earlier version); phrasings that
 * resolved a customer's question live in `learned_question`. Each language gets its own FTS5
 * table, `fts_<lang>`, created the first time an article in that language is stored and
 * tokenized with `snowball <lang>` (text.h), so an article is stemmed in its own language and a
 * question is tokenized in the language asked for. Drafts are stored but never indexed. The
 * schema version lives in `kb_schema`: the database file is shared with store.c, which owns
 * PRAGMA user_version.
 *
 * Indexing tokenizes an article once: while FTS5 writes (or deletes) a row, the snowball
 * tokenizer reports its tokens to the kb (struct capture), which keeps per language in memory
 * (struct df_map) each term's postings (struct postings: the articles that have it, with
 * every instance), its count of articles per column, each article's column lengths and
 * phrasing stems, and builds the stems of the article's phrasings and paragraphs. The map is
 * read again from fts5vocab 'instance' when another connection wrote to the KB (the
 * kb_generation counter) or a write that changed the index was rolled back.
 *
 * Search is two stages. Stage one matches the terms of text.h's tokens of the question,
 * chosen from the df_map so that a query scores about KB_ROW_BUDGET rows however large the
 * KB, and scores each matched row from the postings (search_memory()): BM25F over the title,
 * questions, learned, tags and body columns plus a small proximity bonus. The same query
 * also runs through FTS5 (each stem quoted behind KB_RAW_STEM, OR-joined, ranked by
 * kb_rank(), our auxiliary function) when the postings are turned off (mem_index=0): both
 * give the same hits and scores (test_kb). Stage two rescores the best KB_CANDIDATES by
 * how closely the question matches the article's phrasings (title, questions, learned questions)
 * and picks the paragraph with the most query weight as the passage; neither stems article
 * text at query time. Must never happen: customer text reaching FTS5 as syntax (a malformed
 * question yields no hits, never an SQL error), or a query scoring every article that shares
 * a common word with it. */
#include "kb_int.h"

#include "db.h"
#include "kb_import.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct kb_tune tune_default = {
    .w_col = {16.0, 4.0, 4.0, 1.5, 1.0},
    .b_col = {0.3, 0.5, 0.5, 0.3, 0.9},
    .k1 = 3.0,
    .coverage_pow = 0.0,
    .proximity = 0.1,
    .w_phrasing = 0.5,
    .w_stage1 = 1.0,
    .phrasing_cos = 0.0,
    .phrasing_second = 0.5,
    .fix_typos = 1.0,
    .join_words = 1.0,
    .mem_index = 1.0,
};

static const char *const stmt_sql[ST_COUNT_STMTS] = {
    [ST_SAVEPOINT] = "SAVEPOINT kb_op",
    [ST_RELEASE] = "RELEASE kb_op",
    [ST_ROLLBACK] = "ROLLBACK TO kb_op",
    [ST_GET] = "SELECT rid, title, lang, body, tags, questions, is_published, revision, "
               "updated_s FROM article WHERE id = ?1 LIMIT 1",
    [ST_INSERT] = "INSERT INTO article(id, title, lang, body, tags, questions, is_published, "
                  "revision, updated_s, qterms, pstems) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 1 + coalesce((SELECT max(revision) "
                  "FROM article_revision WHERE id = ?1), 0), ?8, '', '')",
    [ST_UPDATE] = "UPDATE article SET title = ?2, lang = ?3, body = ?4, tags = ?5, "
                  "questions = ?6, is_published = ?7, revision = 1 + max(revision, "
                  "coalesce((SELECT max(r.revision) FROM article_revision r "
                  "WHERE r.id = article.id), 0)), updated_s = ?8 WHERE rid = ?1",
    /* Never OR REPLACE: a revision, once saved, is never overwritten. */
    [ST_SAVE_REVISION] = "INSERT INTO article_revision(id, revision, title, lang, "
                         "body, tags, questions, is_published, updated_s) SELECT id, revision, "
                         "title, lang, body, tags, questions, is_published, updated_s "
                         "FROM article WHERE rid = ?1",
    [ST_DELETE] = "DELETE FROM article WHERE rid = ?1",
    [ST_GET_REVISION] = "SELECT title, lang, body, tags, questions, is_published, revision, "
                        "updated_s FROM article_revision WHERE id = ?1 AND revision = ?2 "
                        "LIMIT 1",
    [ST_N_REVISIONS] = "SELECT count(*) FROM (SELECT 1 FROM article_revision WHERE id = ?1 "
                       "LIMIT 1000000)",
    [ST_LEARN] = "INSERT OR IGNORE INTO learned_question(article_id, question, stems, "
                 "created_s) VALUES(?1, ?2, ?3, ?4)",
    [ST_LEARNED] = "SELECT question, stems FROM learned_question WHERE article_id = ?1 "
                   "ORDER BY rid DESC LIMIT 256",
    [ST_COUNT] = "SELECT count(*) FROM (SELECT 1 FROM article WHERE is_published = 1 "
                 "LIMIT 100000000)",
    [ST_HIT_BODY] = "SELECT id, title, lang, body, pstems FROM article WHERE rid = ?1 AND "
                    "is_published = 1 LIMIT 1",
    [ST_HIT_INFO] = "SELECT qterms FROM article WHERE rid = ?1 AND is_published = 1 LIMIT 1",
    [ST_LANG_ADD] = "INSERT OR IGNORE INTO kb_lang(lang) VALUES(?1)",
    [ST_SET_STEMS] = "UPDATE article SET qterms = ?2, pstems = ?3 WHERE rid = ?1",
    [ST_READ_BEGIN] = "BEGIN",
    [ST_READ_END] = "COMMIT",
    [ST_GENERATION] = "SELECT n FROM kb_generation LIMIT 1",
    [ST_GENERATION_BUMP] = "UPDATE kb_generation SET n = n + 1 RETURNING n",
    [ST_N_LEARNED] = "SELECT count(*) FROM (SELECT 1 FROM learned_question WHERE "
                     "article_id = ?1 LIMIT 1000000)",
    /* ?1: lower-case LIKE pattern or NULL, ?2: is_published or NULL, ?3: limit */
    [ST_LIST] = "SELECT id, title, lang, tags, is_published, revision, updated_s FROM article "
                "WHERE (?1 IS NULL OR lower(id) LIKE ?1 ESCAPE '\\' OR lower(title) LIKE ?1 "
                "ESCAPE '\\' OR lower(tags) LIKE ?1 ESCAPE '\\') AND (?2 IS NULL OR "
                "is_published = ?2) ORDER BY lower(title), id LIMIT ?3",
    [ST_PASSAGE] = "SELECT lang, body, pstems FROM article WHERE id = ?1 LIMIT 1",
};

/* Numbered schema migrations; the kb_schema table holds the number applied (migrate()). */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE article ("
    "  rid INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  title TEXT NOT NULL,"
    "  lang TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  tags TEXT NOT NULL,"      /* newline-separated */
    "  questions TEXT NOT NULL," /* newline-separated */
    "  is_published INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  updated_s INTEGER NOT NULL,"
    "  qterms TEXT NOT NULL," /* stems of title, questions, learned: one phrasing a line */
    "  pstems TEXT NOT NULL"  /* paragraphs: 'START END stem stem...' a line */
    ");"
    "CREATE TABLE article_revision ("
    "  id TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  title TEXT NOT NULL, lang TEXT NOT NULL, body TEXT NOT NULL, tags TEXT NOT NULL,"
    "  questions TEXT NOT NULL, is_published INTEGER NOT NULL, updated_s INTEGER NOT NULL,"
    "  PRIMARY KEY (id, revision)"
    ") WITHOUT ROWID;"
    "CREATE TABLE learned_question ("
    "  rid INTEGER PRIMARY KEY,"
    "  article_id TEXT NOT NULL,"
    "  question TEXT NOT NULL,"
    "  stems TEXT NOT NULL,"
    "  created_s INTEGER NOT NULL,"
    "  UNIQUE (article_id, stems)"
    ");"
    "CREATE TABLE kb_lang (lang TEXT PRIMARY KEY) WITHOUT ROWID;",
    /* 2: bumped by every write that changes an FTS5 index, so a connection sees another's
     * KB writes (and not the conversation store's commits, as PRAGMA data_version would) */
    "CREATE TABLE kb_generation (n INTEGER NOT NULL);"
    "INSERT INTO kb_generation(n) VALUES (0);",
};

/* ---- small helpers ---------------------------------------------------------------------- */

void kb_strings_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void set_err(char **err, const char *fmt, const char *detail)
{
    if (!err)
        return;
    struct cd_buf b = {0};
    if (cd_buf_printf(&b, fmt, detail ? detail : "") == 0)
        *err = b.data;
    else
        cd_buf_free(&b);
}

sqlite3_stmt *kb_stmt(struct kb *kb, enum kb_stmt which)
{
    sqlite3_stmt *st = kb->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* ---- open / close ----------------------------------------------------------------------- */

/* Reads the KB's schema version into *version (0 for a database without the KB). */
static int kb_schema_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *st = NULL;
    *version = 0;
    if (sqlite3_prepare_v2(db, "SELECT version FROM kb_schema LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return 0; /* no kb_schema table yet */
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Applies the numbered migrations the database lacks, each in its own transaction with the
 * version it reaches, so a crash leaves a whole version. The version is kept in the kb_schema
 * table, not PRAGMA user_version: the KB shares its database file with store.c, whose
 * migrations own user_version. */
static int migrate(struct kb *kb)
{
    int version = 0;
    if (sqlite3_exec(kb->db, "CREATE TABLE IF NOT EXISTS kb_schema (version INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK ||
        kb_schema_version(kb->db, &version))
        return CD_EIO;
    int n = (int)(sizeof migrations / sizeof migrations[0]);
    if (version > n)
        return CD_ESTATE; /* a newer caredesk made this database */
    for (int v = version; v < n; v++) {
        char set_version[96];
        snprintf(set_version, sizeof set_version,
                 "DELETE FROM kb_schema; INSERT INTO kb_schema(version) VALUES(%d)", v + 1);
        if (sqlite3_exec(kb->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return CD_EIO;
        int check = 0;
        /* Another connection may have migrated while this one waited for the lock. */
        if (kb_schema_version(kb->db, &check) || check > v) {
            sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
            continue;
        }
        if (sqlite3_exec(kb->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(kb->db, set_version, NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
            return CD_EIO;
        }
        if (sqlite3_exec(kb->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return CD_EIO;
    }
    return 0;
}

static fts5_api *fts5_api_of(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    return api;
}

static void tune_from_env(struct kb_tune *t)
{
    const char *env = getenv("CAREDESK_KB_TUNE");
    if (!env)
        return;
    static const char *const col_names[KB_N_COLS] = {"title", "questions", "learned", "tags",
                                                     "body"};
    /* The scalar knobs, named as their fields; the column weights are w_COLUMN and b_COLUMN. */
    const struct {
        const char *name;
        double *value;
    } knobs[] = {
        {"k1", &t->k1},
        {"coverage_pow", &t->coverage_pow},
        {"proximity", &t->proximity},
        {"w_phrasing", &t->w_phrasing},
        {"w_stage1", &t->w_stage1},
        {"phrasing_cos", &t->phrasing_cos},
        {"phrasing_second", &t->phrasing_second},
        {"fix_typos", &t->fix_typos},
        {"join_words", &t->join_words},
        {"mem_index", &t->mem_index},
    };
    char buf[512];
    snprintf(buf, sizeof buf, "%s", env);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        double v = strtod(eq + 1, NULL);
        for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
            if (!strcmp(kv, knobs[i].name))
                *knobs[i].value = v;
        for (int c = 0; c < KB_N_COLS; c++) {
            char name[32];
            snprintf(name, sizeof name, "w_%s", col_names[c]);
            if (!strcmp(kv, name))
                t->w_col[c] = v;
            snprintf(name, sizeof name, "b_%s", col_names[c]);
            if (!strcmp(kv, name))
                t->b_col[c] = v;
        }
    }
}

struct kb *kb_open(const char *path, char **err)
{
    if (err)
        *err = NULL;
    if (!path) {
        set_err(err, "no database path%s", NULL);
        return NULL;
    }
    if (db_target_is_postgres(path)) {
        /* Several nodes: each builds its KB index from the article files and the database's
         * journal of changes; the KB commands work on a SQLite file (docs/scaling.md). */
        set_err(err,
                "the KB commands need a SQLite file; with PostgreSQL, change articles through "
                "the REST API or the article files%s",
                NULL);
        return NULL;
    }
    struct kb *kb = calloc(1, sizeof *kb);
    if (!kb) {
        set_err(err, "out of memory%s", NULL);
        return NULL;
    }
    kb->tune = tune_default;
    tune_from_env(&kb->tune);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &kb->db, flags, NULL) != SQLITE_OK) {
        set_err(err, "cannot open database: %s", kb->db ? sqlite3_errmsg(kb->db) : "no memory");
        goto fail;
    }
    sqlite3_busy_timeout(kb->db, 5000);
    sqlite3_exec(kb->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    sqlite3_exec(kb->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    kb->fts = fts5_api_of(kb->db);
    if (!kb->fts || kb->fts->iVersion < 2) {
        set_err(err, "SQLite was built without FTS5%s", NULL);
        goto fail;
    }
    fts5_tokenizer tokenizer = kb_snowball_tokenizer;
    if (kb->fts->xCreateTokenizer(kb->fts, "snowball", kb, &tokenizer, NULL) != SQLITE_OK ||
        kb->fts->xCreateFunction(kb->fts, "kb_rank", NULL, kb_rank_fn, NULL) != SQLITE_OK) {
        set_err(err, "cannot register the snowball tokenizer%s", NULL);
        goto fail;
    }
    int rc = migrate(kb);
    if (rc) {
        set_err(err,
                rc == CD_ESTATE ? "%sdatabase schema is newer than this caredesk"
                                : "cannot create the knowledge base schema: %s",
                rc == CD_ESTATE ? "" : sqlite3_errmsg(kb->db));
        goto fail;
    }
    for (int i = 0; i < ST_COUNT_STMTS; i++) {
        if (sqlite3_prepare_v3(kb->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &kb->st[i],
                               NULL) != SQLITE_OK) {
            set_err(err, "cannot prepare statement: %s", sqlite3_errmsg(kb->db));
            goto fail;
        }
    }
    /* Every language that already has a table. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "SELECT lang FROM kb_lang ORDER BY lang LIMIT 32", -1, &st,
                           NULL) != SQLITE_OK) {
        set_err(err, "cannot read languages: %s", sqlite3_errmsg(kb->db));
        goto fail;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        int lrc = 0;
        if (!kb_lang_index_get(kb, sql_text(st, 0), 1, &lrc) && lrc) {
            set_err(err, "cannot open the index of language '%s'", sql_text(st, 0));
            sqlite3_finalize(st);
            goto fail;
        }
    }
    sqlite3_finalize(st);
    st = kb_stmt(kb, ST_GENERATION);
    if (sqlite3_step(st) == SQLITE_ROW)
        kb->generation = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return kb;
fail:
    kb_close(kb);
    return NULL;
}

int64_t kb_index_reads(const struct kb *kb)
{
    return kb ? kb->n_index_reads : 0;
}

void kb_set_autocheckpoint(struct kb *kb, int pages)
{
    if (kb)
        sqlite3_wal_autocheckpoint(kb->db, pages < 0 ? 0 : pages);
}

void kb_close(struct kb *kb)
{
    if (!kb)
        return;
    for (int i = 0; i < kb->n_langs; i++)
        kb_lang_index_clear(&kb->langs[i]);
    for (int i = 0; i < ST_COUNT_STMTS; i++)
        sqlite3_finalize(kb->st[i]);
    sqlite3_close(kb->db);
    kb_capture_free(&kb->capture);
    free(kb->last_queries);
    free(kb);
}

/* ---- articles --------------------------------------------------------------------------- */

void kb_article_clear(struct kb_article *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->title);
    free(a->lang);
    free(a->body);
    kb_strings_free(a->tags, (size_t)a->n_tags);
    kb_strings_free(a->questions, (size_t)a->n_questions);
    memset(a, 0, sizeof *a);
}

int kb_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= KB_ID_MAX || id[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int has_newline(const char *s)
{
    return strchr(s, '\n') || strchr(s, '\r');
}

/* Checks an article before it is stored; on failure writes why into msg. */
/* kb_article_check()'s refusal: msg from fmt, *field (when not NULL) the field at fault. */
static int refuse(const char **field, const char *at, char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse(const char **field, const char *at, char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    if (field)
        *field = at;
    return CD_EINVAL;
}

/* One line of 1 to max bytes of UTF-8. */
static int is_line(const char *s, size_t max)
{
    return s && *s && strlen(s) <= max && !has_newline(s) && cd_utf8_valid(s, strlen(s));
}

int kb_article_check(const struct kb_article *a, char *msg, size_t cap, const char **field)
{
    const char *lang = a->lang && *a->lang ? a->lang : "en";
    char code[8];
    if (!a->id || !*a->id)
        return refuse(field, "id", msg, cap, "missing id");
    if (!kb_id_valid(a->id))
        return refuse(field, "id", msg, cap,
                      "invalid id '%.60s': ids are lower-case letters, digits, '-', '_' and '.', "
                      "not starting with '.', under %d bytes",
                      a->id, KB_ID_MAX);
    if (!a->title || !*a->title)
        return refuse(field, "title", msg, cap, "missing title");
    if (!is_line(a->title, KB_MAX_TITLE))
        return refuse(field, "title", msg, cap,
                      "title must be one line of at most %d bytes of UTF-8", KB_MAX_TITLE);
    if (!text_lang_code(lang, code))
        return refuse(field, "lang", msg, cap,
                      "invalid lang '%.16s' (a two-letter ISO 639-1 code, e.g. en)", lang);
    if (!a->body || !*a->body)
        return refuse(field, "body", msg, cap, "empty body");
    if (strlen(a->body) > KB_MAX_BODY)
        return refuse(field, "body", msg, cap, "body is larger than %d bytes", KB_MAX_BODY);
    if (!cd_utf8_valid(a->body, strlen(a->body)))
        return refuse(field, "body", msg, cap, "body is not valid UTF-8");
    if (a->n_tags < 0 || a->n_tags > KB_MAX_TAGS)
        return refuse(field, "tags", msg, cap, "more than %d tags", KB_MAX_TAGS);
    if (a->n_questions < 0 || a->n_questions > KB_MAX_QUESTIONS)
        return refuse(field, "questions", msg, cap, "more than %d questions", KB_MAX_QUESTIONS);
    for (int i = 0; i < a->n_tags; i++)
        if (!is_line(a->tags[i], KB_MAX_TAG_LEN))
            return refuse(field, "tags", msg, cap,
                          "tag %d must be one line of 1 to %d bytes of UTF-8", i + 1,
                          KB_MAX_TAG_LEN);
    for (int i = 0; i < a->n_questions; i++)
        if (!is_line(a->questions[i], KB_MAX_QUESTION_LEN))
            return refuse(field, "questions", msg, cap,
                          "question %d must be one line of 1 to %d bytes of UTF-8", i + 1,
                          KB_MAX_QUESTION_LEN);
    if (field)
        *field = NULL;
    return 0;
}

int kb_join_lines(struct cd_buf *b, char *const *items, int n)
{
    cd_buf_reset(b);
    if (cd_buf_append(b, "", 0))
        return CD_ENOMEM;
    for (int i = 0; i < n; i++)
        if ((i && cd_buf_append(b, "\n", 1)) || cd_buf_puts(b, items[i]))
            return CD_ENOMEM;
    return 0;
}

/* Splits newline-separated text into a new array of strings. */
static int split_lines(const char *s, char ***out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!s || !*s)
        return 0;
    int n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '\n';
    char **items = calloc((size_t)n, sizeof *items);
    if (!items)
        return CD_ENOMEM;
    int k = 0;
    for (const char *p = s;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!(items[k] = cd_strndup(p, len))) {
            kb_strings_free(items, (size_t)k);
            return CD_ENOMEM;
        }
        k++;
        if (!nl)
            break;
        p = nl + 1;
    }
    *out = items;
    *n_out = k;
    return 0;
}

/* Appends the distinct stems of text to b, space-separated. */
struct stems_ctx {
    struct cd_buf *b;
    size_t line_start;
    int n;
};

static int stems_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    (void)start;
    (void)end;
    struct stems_ctx *c = ctx;
    /* Skip a stem already on this line (lines are short: a phrasing or a paragraph). */
    const char *line = c->b->data ? c->b->data + c->line_start : "";
    size_t line_len = c->b->len - c->line_start;
    for (size_t i = 0; i < line_len;) {
        size_t j = i;
        while (j < line_len && line[j] != ' ')
            j++;
        if (j - i == (size_t)n_token && !memcmp(line + i, token, (size_t)n_token))
            return 0;
        i = j + 1;
    }
    if (c->n > 0 && cd_buf_append(c->b, " ", 1))
        return CD_ENOMEM;
    if (cd_buf_append(c->b, token, (size_t)n_token))
        return CD_ENOMEM;
    c->n++;
    return 0;
}

static int append_stems(struct kb_tok *tok, struct cd_buf *b, const char *text, size_t n,
                        int *n_stems)
{
    if (cd_buf_append(b, "", 0))
        return CD_ENOMEM;
    struct stems_ctx c = {b, b->len, 0};
    int rc = kb_tok_tokenize(tok, text, n, stems_cb, &c);
    if (n_stems)
        *n_stems = c.n;
    return rc;
}

/* ---- writes --------------------------------------------------------------------------- */

/* Each write is atomic: a savepoint around it, except inside a bulk load, whose one
 * transaction is rolled back whole on a write error (FTS5 flushes its pending index at every
 * savepoint, which would make a bulk load several times slower). */
static int op_begin(struct kb *kb)
{
    kb->is_op_indexed = 0;
    return kb->is_bulk ? 0 : sql_run(kb_stmt(kb, ST_SAVEPOINT));
}

/* What the tokenizer counted for rows a rollback undoes is wrong: rebuilt at next search. */
void kb_invalidate_counts(struct kb *kb)
{
    for (int i = 0; i < kb->n_langs; i++)
        kb->langs[i].df_map->is_valid = 0;
}

/* Marks a write that changed an index for the other connections (kb_generation). */
static int bump_generation(struct kb *kb)
{
    sqlite3_stmt *st = kb_stmt(kb, ST_GENERATION_BUMP);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 0);
        if (n != kb->generation + 1)
            kb_invalidate_counts(kb); /* another connection wrote since this one last looked */
        kb->generation = n;
        step = sqlite3_step(st);
    }
    sqlite3_reset(st);
    return step == SQLITE_DONE ? 0 : sql_rc(step);
}

static int op_end(struct kb *kb, int rc)
{
    if (!rc && kb->is_op_indexed)
        rc = bump_generation(kb);
    if (rc && kb->is_op_indexed)
        kb_invalidate_counts(kb);
    if (kb->is_bulk)
        return rc;
    if (rc)
        sql_run(kb_stmt(kb, ST_ROLLBACK));
    int rc2 = sql_run(kb_stmt(kb, ST_RELEASE));
    return rc ? rc : rc2;
}

static int same_text(sqlite3_stmt *st, int col, const char *s)
{
    return !strcmp(sql_text(st, col), s ? s : "");
}

int kb_put(struct kb *kb, const struct kb_article *article, char *msg, size_t msg_cap)
{
    char why[200];
    if (msg && msg_cap)
        msg[0] = '\0';
    if (!kb || !article || kb_article_check(article, why, sizeof why, NULL)) {
        if (msg && msg_cap)
            cd_strlcpy(msg, msg_cap, kb && article ? why : "no KB or no article");
        return CD_EINVAL;
    }
    struct kb_article a = *article;
    char code[8] = "en";
    if (a.lang && *a.lang)
        text_lang_code(a.lang, code); /* "es-ES" is stored as "es" */
    a.lang = code;
    struct cd_buf tags = {0}, questions = {0};
    int rc;
    if ((rc = kb_join_lines(&tags, a.tags, a.n_tags)) ||
        (rc = kb_join_lines(&questions, a.questions, a.n_questions))) {
        cd_buf_free(&tags);
        cd_buf_free(&questions);
        return rc;
    }
    int64_t now = a.updated_s ? a.updated_s : cd_wall_s();
    if ((rc = kb_journal_put(kb, &a, now)) || (rc = op_begin(kb))) {
        cd_buf_free(&tags);
        cd_buf_free(&questions);
        return rc;
    }
    int is_published = a.is_published ? 1 : 0;
    sqlite3_stmt *st = kb_stmt(kb, ST_GET);
    sqlite3_bind_text(st, 1, a.id, -1, SQLITE_STATIC);
    sqlite3_int64 rid = 0;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rid = sqlite3_column_int64(st, 0);
        int same = same_text(st, 1, a.title) && same_text(st, 2, a.lang) &&
                   same_text(st, 3, a.body) && same_text(st, 4, tags.data) &&
                   same_text(st, 5, questions.data) && sqlite3_column_int(st, 6) == is_published;
        char old_lang[8];
        snprintf(old_lang, sizeof old_lang, "%s", sql_text(st, 2));
        int was_published = sqlite3_column_int(st, 6);
        sqlite3_reset(st);
        if (same)
            goto done; /* re-importing an unchanged article makes no revision */
        st = kb_stmt(kb, ST_SAVE_REVISION);
        sqlite3_bind_int64(st, 1, rid);
        if ((rc = sql_run(st)))
            goto done;
        if (was_published && (rc = kb_unindex_article(kb, rid, old_lang)))
            goto done;
        st = kb_stmt(kb, ST_UPDATE);
        sqlite3_bind_int64(st, 1, rid);
    } else if (step == SQLITE_DONE) {
        sqlite3_reset(st);
        st = kb_stmt(kb, ST_INSERT);
        sqlite3_bind_text(st, 1, a.id, -1, SQLITE_STATIC);
    } else {
        rc = sql_rc(step);
        sqlite3_reset(st);
        goto done;
    }
    sqlite3_bind_text(st, 2, a.title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a.lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a.body, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, tags.data, (int)tags.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, questions.data, (int)questions.len, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, is_published);
    sqlite3_bind_int64(st, 8, now);
    if ((rc = sql_run(st)))
        goto done;
    if (!rid)
        rid = sqlite3_last_insert_rowid(kb->db);
    if (is_published)
        rc = kb_index_article(kb, rid, &a);
done:
    rc = op_end(kb, rc);
    cd_buf_free(&tags);
    cd_buf_free(&questions);
    return rc;
}

static int article_from_row(sqlite3_stmt *st, int first_col, const char *id, struct kb_article *out)
{
    memset(out, 0, sizeof *out);
    out->id = cd_strdup(id);
    out->title = cd_strdup(sql_text(st, first_col));
    out->lang = cd_strdup(sql_text(st, first_col + 1));
    out->body = cd_strdup(sql_text(st, first_col + 2));
    int rc = split_lines(sql_text(st, first_col + 3), &out->tags, &out->n_tags);
    if (!rc)
        rc = split_lines(sql_text(st, first_col + 4), &out->questions, &out->n_questions);
    out->is_published = sqlite3_column_int(st, first_col + 5);
    out->revision = sqlite3_column_int(st, first_col + 6);
    out->updated_s = sqlite3_column_int64(st, first_col + 7);
    if (rc || !out->id || !out->title || !out->lang || !out->body) {
        kb_article_clear(out);
        return CD_ENOMEM;
    }
    return 0;
}

/* Runs st (bound by the caller) and reads its one row, from column first_col, into out;
 * CD_ENOTFOUND when there is none. Resets st. */
static int read_article(sqlite3_stmt *st, int first_col, const char *id, struct kb_article *out)
{
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW    ? article_from_row(st, first_col, id, out)
             : step == SQLITE_DONE ? CD_ENOTFOUND
                                   : sql_rc(step);
    sqlite3_reset(st);
    return rc;
}

/* The count statement which (ST_N_*) answers for article id, or CD_EIO. */
static int count_for(struct kb *kb, enum kb_stmt which, const char *id)
{
    sqlite3_stmt *st = kb_stmt(kb, which);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : CD_EIO;
    sqlite3_reset(st);
    return n;
}

int kb_get(struct kb *kb, const char *id, struct kb_article *out)
{
    if (!kb || !id || !out)
        return CD_EINVAL;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = kb_stmt(kb, ST_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return read_article(st, 1, id, out);
}

int kb_get_revision(struct kb *kb, const char *id, int revision, struct kb_article *out)
{
    if (!kb || !id || !out)
        return CD_EINVAL;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = kb_stmt(kb, ST_GET_REVISION);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, revision);
    return read_article(st, 0, id, out);
}

int kb_revision_count(struct kb *kb, const char *id)
{
    return kb && id ? count_for(kb, ST_N_REVISIONS, id) : CD_EINVAL;
}

/* Makes "%text%" in lower case (ASCII) with LIKE's wildcards escaped by '\\'. */
static char *like_pattern(const char *text)
{
    size_t n = strlen(text);
    char *p = malloc(2 * n + 3);
    if (!p)
        return NULL;
    size_t k = 0;
    p[k++] = '%';
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '%' || c == '_' || c == '\\')
            p[k++] = '\\';
        p[k++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    p[k++] = '%';
    p[k] = '\0';
    return p;
}

int kb_list(struct kb *kb, const char *search, int status, struct kb_list_item *items,
            int max_items, int *n_items)
{
    if (n_items)
        *n_items = 0;
    if (!kb || !items || !n_items || max_items < 0 || status < -1 || status > 1)
        return CD_EINVAL;
    if (search && strlen(search) > KB_MAX_QUESTION_LEN)
        return CD_EINVAL;
    char *pattern = NULL;
    if (search && *search && !(pattern = like_pattern(search)))
        return CD_ENOMEM;
    sqlite3_stmt *st = kb_stmt(kb, ST_LIST);
    if (pattern)
        sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
    if (status >= 0)
        sqlite3_bind_int(st, 2, status);
    sqlite3_bind_int(st, 3, max_items);
    int rc = 0, step = SQLITE_DONE, n = 0;
    while (n < max_items && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct kb_list_item *it = &items[n];
        memset(it, 0, sizeof *it);
        snprintf(it->id, sizeof it->id, "%s", sql_text(st, 0));
        snprintf(it->lang, sizeof it->lang, "%s", sql_text(st, 2));
        it->title = cd_strdup(sql_text(st, 1));
        rc = it->title ? split_lines(sql_text(st, 3), &it->tags, &it->n_tags) : CD_ENOMEM;
        it->is_published = sqlite3_column_int(st, 4);
        it->revision = sqlite3_column_int(st, 5);
        it->updated_s = sqlite3_column_int64(st, 6);
        n++;
        if (rc)
            break;
    }
    if (!rc && n < max_items && step != SQLITE_DONE)
        rc = sql_rc(step);
    sqlite3_reset(st);
    free(pattern);
    if (rc) {
        kb_list_clear(items, n);
        return rc;
    }
    *n_items = n;
    return 0;
}

void kb_list_clear(struct kb_list_item *items, int n_items)
{
    for (int i = 0; items && i < n_items; i++) {
        free(items[i].title);
        for (int t = 0; t < items[i].n_tags; t++)
            free(items[i].tags[t]);
        free(items[i].tags);
        items[i].title = NULL;
        items[i].tags = NULL;
        items[i].n_tags = 0;
    }
}

int kb_learned_count(struct kb *kb, const char *id)
{
    return kb && id ? count_for(kb, ST_N_LEARNED, id) : CD_EINVAL;
}

int kb_delete(struct kb *kb, const char *id)
{
    if (!kb || !id)
        return CD_EINVAL;
    int rc = op_begin(kb);
    if (rc)
        return rc;
    sqlite3_stmt *st = kb_stmt(kb, ST_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? CD_ENOTFOUND : sql_rc(step);
        sqlite3_reset(st);
        return op_end(kb, rc);
    }
    sqlite3_int64 rid = sqlite3_column_int64(st, 0);
    char lang[8];
    snprintf(lang, sizeof lang, "%s", sql_text(st, 2));
    int was_published = sqlite3_column_int(st, 6);
    sqlite3_reset(st);
    if ((rc = kb_journal_delete(kb, id)))
        return op_end(kb, rc);
    st = kb_stmt(kb, ST_SAVE_REVISION); /* the deleted version stays as a revision */
    sqlite3_bind_int64(st, 1, rid);
    if (!(rc = sql_run(st)) && was_published)
        rc = kb_unindex_article(kb, rid, lang);
    if (!rc) {
        st = kb_stmt(kb, ST_DELETE);
        sqlite3_bind_int64(st, 1, rid);
        rc = sql_run(st);
    }
    return op_end(kb, rc);
}

int kb_count(struct kb *kb)
{
    if (!kb)
        return 0;
    sqlite3_stmt *st = kb_stmt(kb, ST_COUNT);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return n;
}

int kb_has_lang(const struct kb *kb, const char *lang)
{
    for (int i = 0; kb && lang && i < kb->n_langs; i++)
        if (!strcmp(kb->langs[i].lang, lang))
            return 1;
    return 0;
}

/* ---- learning --------------------------------------------------------------------------- */

int kb_learn(struct kb *kb, const char *question, const char *article_id)
{
    if (!kb || !question || !article_id)
        return CD_EINVAL;
    size_t n = strlen(question);
    if (n == 0 || n > KB_MAX_QUESTION_LEN || !cd_utf8_valid(question, n))
        return CD_EINVAL;
    struct kb_article a;
    int rc = kb_get(kb, article_id, &a);
    if (rc)
        return rc;
    struct kb_lang_index *li = kb_lang_index_get(kb, a.lang, 1, &rc);
    if (!li) {
        kb_article_clear(&a);
        return rc ? rc : CD_EIO;
    }
    /* One line, single spaces: the stored phrasing is indexed in the `learned` column. */
    struct cd_buf line = {0}, stems = {0};
    for (size_t i = 0; i < n && !rc; i++) {
        char c =
            question[i] == '\n' || question[i] == '\r' || question[i] == '\t' ? ' ' : question[i];
        if (c == ' ' && (line.len == 0 || line.data[line.len - 1] == ' '))
            continue;
        rc = cd_buf_append(&line, &c, 1);
    }
    int n_stems = 0;
    if (!rc && line.len)
        rc = append_stems(li->tok, &stems, line.data, line.len, &n_stems);
    if (!rc && n_stems == 0)
        rc = CD_EINVAL; /* nothing searchable in it */
    if (!rc)
        rc = kb_journal_learn(kb, question, article_id);
    if (!rc)
        rc = op_begin(kb);
    if (rc)
        goto done;
    sqlite3_stmt *st = kb_stmt(kb, ST_LEARN);
    sqlite3_bind_text(st, 1, article_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, line.data, (int)line.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, stems.data, (int)stems.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, cd_wall_s());
    rc = sql_run(st);
    if (!rc && sqlite3_changes(kb->db) > 0 && a.is_published) {
        st = kb_stmt(kb, ST_GET);
        sqlite3_bind_text(st, 1, article_id, -1, SQLITE_STATIC);
        sqlite3_int64 rid = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        rc = rid ? kb_unindex_article(kb, rid, a.lang) : CD_EIO;
        if (!rc)
            rc = kb_index_article(kb, rid, &a);
    }
    rc = op_end(kb, rc);
done:
    cd_buf_free(&line);
    cd_buf_free(&stems);
    kb_article_clear(&a);
    return rc;
}

struct sqlite3 *kb_connection(struct kb *kb)
{
    return kb ? kb->db : NULL;
}
