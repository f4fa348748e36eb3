/* kb: the knowledge base: articles, their revisions and learned phrasings in SQLite, the FTS5
 * index with caredesk's own `snowball` tokenizer, ranking, and the passage that answers.
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
#include "kb.h"

#include "cd.h"
#include "text.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KB_MAX_LANGS        32
#define KB_MAX_QUERY_TERMS  24
#define KB_CANDIDATES       20
#define KB_ROW_BUDGET       300  /* about how many FTS rows one query may score (choose_phrases) */
#define KB_WALK_BUDGET      2000 /* ... and how many doclist entries it may read */
#define KB_MAX_LEARNED      256 /* learned phrasings indexed per article (newest first): ST_LEARNED */
#define KB_MAX_PASSAGES     64  /* paragraphs kept per article for passage selection */
#define KB_PASSAGE_CHARS    360 /* longest passage shown, in bytes */
#define KB_MAX_TITLE        512
#define KB_MAX_BODY         (1024 * 1024)
#define KB_MAX_TAGS         64
#define KB_MAX_TAG_LEN      64
#define KB_MAX_QUESTIONS    256
#define KB_MAX_QUESTION_LEN 1000
#define KB_MAX_DIR_FILES    10000
#define KB_N_COLS           5 /* title, questions, learned, tags, body */
/* A query string starting with this byte is one stem, passed through as it is. Customer text
 * never produces it: text.h treats control characters as separators, and a MATCH expression
 * is built from text.h's tokens only. */
#define KB_RAW_STEM  '\x01'
#define KB_MAX_FIXES 2 /* unknown words per question tried as typos of known ones */
/* A load storing this many articles merges each FTS5 index into one segment afterwards. */
#define KB_OPTIMIZE_MIN 256

/* Ranking parameters; defaults measured with `caredesk eval kb` (docs/kb.md). They can be
 * overridden for experiments with CAREDESK_KB_TUNE="name=value,...". */
struct kb_tune {
    double w_col[KB_N_COLS]; /* BM25F column weights */
    double b_col[KB_N_COLS]; /* BM25F length normalisation per column */
    double k1;
    double coverage_pow;    /* stage 1 score *= coverage^coverage_pow */
    double proximity;       /* bonus per adjacent query-term pair, times the smaller idf */
    double w_phrasing;      /* stage 2: weight of the best phrasing similarity */
    double w_stage1;        /* stage 2: weight of the normalised stage 1 score */
    double phrasing_cos;    /* 1: phrasing similarity is an idf-weighted cosine */
    double phrasing_second; /* weight of the second-best phrasing */
    double fix_typos;       /* 1: an unknown word may match a known one an edit away */
    double join_words;      /* 1: two neighbouring words may be one split word */
    double mem_index;       /* 1: stage one scores from the in-memory postings, 0: from FTS5 */
};

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

/* One query term: its stem, where it is in the question, and its weight. */
struct kb_term {
    char stem[TEXT_MAX_TOKEN + 1];
    int n_stem;
    int start, end;    /* the original word in the question */
    int64_t df;        /* articles with the term */
    int64_t cost_head; /* rows it matches in title, questions and learned */
    double idf;
};

/* What kb_rank() needs for one query; bound as a pointer to the statement. */
struct kb_query {
    struct kb_term terms[KB_MAX_QUERY_TERMS];
    int n_terms;
    int phrase_term[KB_MAX_QUERY_TERMS];  /* FTS5 phrase i is terms[phrase_term[i]] */
    int is_head_only[KB_MAX_QUERY_TERMS]; /* phrase i matches only title/questions/learned */
    int n_phrases;
    int is_truncated; /* more distinct terms than KB_MAX_QUERY_TERMS */
    int has_idf;      /* idf filled by the first kb_rank() call */
    double idf_sum;
    double idf2_sum; /* sum of squared idf: the question's norm, squared */
    int64_t n_rows;
    double avg_len[KB_N_COLS];
    double norm_a[KB_N_COLS], norm_k[KB_N_COLS]; /* BM25 length norm: a + k * length */
    const struct kb_tune *tune;
    const struct df_map *stats; /* column lengths by rowid, if current */
    uint64_t stem_mask;         /* stem_bit() of every term, once has_mask is set */
    int has_mask;
};

/* One language's FTS5 table and its statements. */
struct kb_lang_index {
    char lang[8];
    struct kb *owner;
    struct kb_tok *tok;    /* for questions and stored stems; FTS5 has its own instances */
    sqlite3_stmt *vocab;   /* every term instance (fts5vocab 'instance') */
    sqlite3_stmt *n_rows;  /* the number of rows (from FTS5's docsize table) */
    sqlite3_stmt *qterms;  /* every published article's phrasing stems, with its rowid */
    struct df_map *df_map; /* the same, in memory, kept current by the tokenizer */
    sqlite3_stmt *ins;
    sqlite3_stmt *del;
    sqlite3_stmt *search;
};

enum kb_stmt {
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK,
    ST_GET,
    ST_INSERT,
    ST_UPDATE,
    ST_SAVE_REVISION,
    ST_DELETE,
    ST_GET_REVISION,
    ST_N_REVISIONS,
    ST_LEARN,
    ST_LEARNED,
    ST_COUNT,
    ST_HIT_BODY,
    ST_HIT_INFO,
    ST_LANG_ADD,
    ST_SET_STEMS,
    ST_READ_BEGIN,
    ST_READ_END,
    ST_GENERATION,
    ST_GENERATION_BUMP,
    ST_N_LEARNED,
    ST_LIST,
    ST_COUNT_STMTS
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
};

/* The distinct stems of the line being built in a buffer, to skip repeats in constant time. */
#define STEM_SET_SLOTS 1024 /* power of two; at most half are used */

struct stem_set {
    uint32_t gen; /* slots of an older generation are empty */
    uint32_t n;
    struct {
        uint32_t gen, hash, at, len;
    } slot[STEM_SET_SLOTS];
};

/* The stems FTS5 made of one column while indexing, with their byte offsets. */
struct capture_col {
    struct cd_buf stems; /* each stem followed by '\0' */
    int *start;          /* byte offset of each token in the column's text */
    int *stem_at;        /* offset of each stem in stems */
    int n, cap;
};

/* What the snowball tokenizer records for kb while one article's FTS5 row is written. */
struct capture {
    int n_calls; /* xTokenize calls seen: one per column */
    int is_failed;
    int n_tokens[KB_N_COLS];
    struct capture_col col[KB_N_COLS];
};

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

static void capture_free(struct capture *cap)
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
    if (col->n == col->cap) {
        int cap = col->cap ? col->cap * 2 : 256;
        int *s = realloc(col->start, (size_t)cap * sizeof *s);
        if (!s)
            return CD_ENOMEM;
        col->start = s;
        int *a = realloc(col->stem_at, (size_t)cap * sizeof *a);
        if (!a)
            return CD_ENOMEM;
        col->stem_at = a;
        col->cap = cap;
    }
    col->start[col->n] = start;
    col->stem_at[col->n] = (int)col->stems.len;
    if (cd_buf_append(&col->stems, token, (size_t)n_token) || cd_buf_append(&col->stems, "", 1))
        return CD_ENOMEM;
    col->n++;
    return 0;
}

struct kb {
    sqlite3 *db;
    struct capture capture; /* tokens of the article being indexed */
    int is_capturing;       /* an FTS5 row of lang_ix is being written (delta 1) or deleted */
    int is_op_indexed;      /* the current write (op_begin) has changed an FTS5 row */
    int capture_delta;
    uint32_t capture_rid;
    struct kb_lang_index *capture_lang;
    uint32_t df_op;        /* one per FTS5 row written or deleted, to count a term once per row */
    int64_t generation;    /* kb_generation.n as of this connection's last read or write */
    int64_t n_index_reads; /* df_map_build() calls (kb_index_reads()) */
    int is_bulk;           /* inside kb_load_path()'s transaction: no savepoint per article */
    int n_bulk_stored;     /* articles stored in that transaction */
    struct stem_set stem_set;
    fts5_api *fts;
    sqlite3_stmt *st[ST_COUNT_STMTS];
    struct kb_lang_index langs[KB_MAX_LANGS];
    int n_langs;
    struct kb_tune tune;
};

#define CAPTURED_COL(c) ((c) == 0 || (c) == 1 || (c) == 4) /* title, questions, body */

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

static char *xstrdup(const char *s)
{
    return s ? cd_strndup(s, strlen(s)) : NULL;
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

static int sql_rc(int rc)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return CD_ENOMEM;
    case SQLITE_FULL:
        return CD_EFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return CD_EBUSY;
    case SQLITE_TOOBIG:
        return CD_ETOOBIG;
    default:
        return CD_EIO;
    }
}

/* Steps a statement that returns no rows and resets it. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_rc(rc);
}

static sqlite3_stmt *stmt(struct kb *kb, enum kb_stmt which)
{
    sqlite3_stmt *st = kb->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : "";
}

/* Reduces a language tag ("es", "es-ES", "pt_BR", "EN") to its lower-case ISO 639 code in
 * code (at least 4 bytes). Returns 1, or 0 if lang does not start with one. */
static int lang_code(const char *lang, char *code)
{
    size_t n = 0;
    while (n < 4 && ((lang[n] >= 'a' && lang[n] <= 'z') || (lang[n] >= 'A' && lang[n] <= 'Z'))) {
        code[n] = (char)(lang[n] | 0x20);
        n++;
    }
    code[n] = '\0';
    return n >= 2 && n <= 3 && (lang[n] == '\0' || lang[n] == '-' || lang[n] == '_');
}

static int is_lang_code(const char *lang)
{
    size_t n = lang ? strlen(lang) : 0;
    if (n < 2 || n > 3)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lang[i] < 'a' || lang[i] > 'z')
            return 0;
    return 1;
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
static int kb_tok_tokenize(struct kb_tok *kt, const char *s, size_t n, text_token_cb cb, void *ctx)
{
    return text_tokenize(kt->text, s, n, 0, cb, ctx);
}

/* ---- document frequencies ------------------------------------------------------------- */

/* How many articles of one language have each term, per column, in memory: a query needs it
 * for every term (idf, and to bound the rows it scores), and fts5vocab counts by reading the
 * term's whole doclist. Built from fts5vocab when a language's index is opened, then kept
 * exact by the snowball tokenizer itself, which sees every FTS5 row written or deleted (FTS5
 * re-tokenizes a row's stored text to delete it). Rebuilt when another connection changed
 * the database. */
/* Tokens in each column of one article, so scoring a row needs no docsize lookup. */
struct doc_len {
    int32_t len[KB_N_COLS];
};

struct df_entry {
    uint32_t hash;
    uint32_t stem_at; /* offset in pool; UINT32_MAX marks an empty slot */
    uint32_t op;      /* last row operation that counted this term ... */
    uint8_t op_cols;  /* ... and in which columns */
    uint8_t n_stem;
    uint32_t term_id; /* its postings: df_map.posts[term_id] */
    int32_t col_df[KB_N_COLS];
};

/* Where one term occurs: for each article that has it, in rowid order, the words
 * [rowid, n, instance 1, ..., instance n], each instance (column << 24 | token offset) in
 * column, then offset order, exactly as FTS5 reports them (xInst). Stage one of a search
 * scores from these instead of reading FTS5 doclists. */
struct postings {
    uint32_t *w;
    uint32_t n, cap;  /* words used, allocated */
    uint32_t op;      /* the row operation that last touched the list ... */
    uint32_t cur;     /* ... and where the entry it appended starts */
    uint32_t max_rid; /* at least the largest rowid in the list */
};

#define POST_COL_SHIFT 24
#define POST_MAX_OFF   ((1u << POST_COL_SHIFT) - 1)

struct df_map {
    struct df_entry *slots;
    uint32_t cap; /* power of two */
    uint32_t n;
    struct cd_buf pool; /* the stems */
    int is_valid;
    int64_t n_rows;             /* articles in the index */
    struct doc_len *lens;       /* token count per column of each row, by rowid */
    int64_t n_lens;             /* rowids below this have an entry */
    int64_t tot_len[KB_N_COLS]; /* tokens per column over all rows (FTS5's totals) */
    struct postings *posts;     /* by term_id */
    char **qterms;              /* by rowid: the article's phrasing stems (ST_HIT_INFO) */
    int64_t n_qterms;           /* rowids below this have a slot */
    uint32_t n_posts, cap_posts;
    uint32_t *moved; /* term_ids whose list got an entry out of rowid order this row */
    uint32_t n_moved, cap_moved;
    struct {
        uint32_t *at;  /* pool offsets of the stems of this length, for typo repair ... */
        uint32_t *sig; /* ... and their byte_sig() */
        uint32_t n, cap;
    } by_len[TEXT_MAX_TOKEN + 1];
};

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void df_map_clear(struct df_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
    free(m->lens);
    m->lens = NULL;
    m->n_lens = m->n_rows = 0;
    for (int64_t i = 0; i < m->n_qterms; i++)
        free(m->qterms[i]);
    free(m->qterms);
    m->qterms = NULL;
    m->n_qterms = 0;
    memset(m->tot_len, 0, sizeof m->tot_len);
    for (uint32_t i = 0; i < m->n_posts; i++)
        free(m->posts[i].w);
    free(m->posts);
    m->posts = NULL;
    m->n_posts = m->cap_posts = 0;
    free(m->moved);
    m->moved = NULL;
    m->n_moved = m->cap_moved = 0;
    for (int i = 0; i <= TEXT_MAX_TOKEN; i++) {
        free(m->by_len[i].at);
        free(m->by_len[i].sig);
        m->by_len[i].at = m->by_len[i].sig = NULL;
        m->by_len[i].n = m->by_len[i].cap = 0;
    }
    cd_buf_reset(&m->pool);
    m->is_valid = 0;
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
static uint32_t byte_sig(const char *s, size_t n)
{
    uint32_t sig = 0;
    for (size_t i = 0; i < n; i++)
        sig |= 1u << ((unsigned char)s[i] & 31);
    return sig;
}

/* Returns the entry of a stem, adding a zeroed one if create is set; NULL if absent (or out
 * of memory while creating). */
static struct df_entry *df_find(struct df_map *m, const char *stem, size_t n, int create)
{
    if (n == 0 || n > 255)
        return NULL;
    uint32_t h = hash_bytes(stem, n);
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
        struct postings *posts = realloc(m->posts, (size_t)cap * sizeof *posts);
        if (!posts)
            return NULL;
        memset(posts + m->cap_posts, 0, (size_t)(cap - m->cap_posts) * sizeof *posts);
        m->posts = posts;
        m->cap_posts = cap;
    }
    uint32_t at = (uint32_t)m->pool.len;
    if (n <= TEXT_MAX_TOKEN && m->by_len[n].n == m->by_len[n].cap) {
        uint32_t cap = m->by_len[n].cap ? m->by_len[n].cap * 2 : 64;
        uint32_t *grown = realloc(m->by_len[n].at, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        m->by_len[n].at = grown;
        grown = realloc(m->by_len[n].sig, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        m->by_len[n].sig = grown;
        m->by_len[n].cap = cap;
    }
    if (cd_buf_append(&m->pool, stem, n))
        return NULL;
    if (n <= TEXT_MAX_TOKEN) {
        m->by_len[n].at[m->by_len[n].n] = at;
        m->by_len[n].sig[m->by_len[n].n++] = byte_sig(stem, n);
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

/* Records the column lengths of row rid (all zero: the row is gone). */
static int df_set_lens(struct df_map *m, int64_t rid, const int *lens)
{
    if (rid < 0 || rid > INT32_MAX)
        return CD_EINVAL;
    if (rid >= m->n_lens) {
        int64_t n = m->n_lens ? m->n_lens : 1024;
        while (n <= rid)
            n *= 2;
        struct doc_len *grown = realloc(m->lens, (size_t)n * sizeof *grown);
        if (!grown)
            return CD_ENOMEM;
        memset(grown + m->n_lens, 0, (size_t)(n - m->n_lens) * sizeof *grown);
        m->lens = grown;
        m->n_lens = n;
    }
    for (int c = 0; c < KB_N_COLS; c++)
        m->lens[rid].len[c] = lens[c] < 0 ? 0 : lens[c];
    return 0;
}

/* Keeps a copy of row rid's phrasing stems (NULL: the row is gone). */
static int df_set_qterms(struct df_map *m, int64_t rid, const char *qterms, size_t n)
{
    if (rid < 0 || rid > INT32_MAX)
        return CD_EINVAL;
    if (rid >= m->n_qterms) {
        if (!qterms)
            return 0;
        int64_t cap = m->n_qterms ? m->n_qterms : 1024;
        while (cap <= rid)
            cap *= 2;
        char **grown = realloc(m->qterms, (size_t)cap * sizeof *grown);
        if (!grown)
            return CD_ENOMEM;
        memset(grown + m->n_qterms, 0, (size_t)(cap - m->n_qterms) * sizeof *grown);
        m->qterms = grown;
        m->n_qterms = cap;
    }
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
    struct df_entry *e = df_find(m, stem, n, delta > 0);
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
    uint32_t *w = realloc(p->w, (size_t)cap * sizeof *w);
    if (!w)
        return CD_ENOMEM;
    p->w = w;
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
                uint32_t *moved = realloc(m->moved, (size_t)cap * sizeof *moved);
                if (!moved)
                    return CD_ENOMEM;
                m->moved = moved;
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

/* ---- kb_rank(): the stage-one FTS5 auxiliary ranking function --------------------------- */

/* Fills the query's idf (from each term's df), its norms, and each column's average length
 * and BM25 length norm, for an index of n_rows rows with totals[c] tokens in column c. Both
 * stage-one paths (kb_rank() and search_memory()) weigh a query here. */
static void query_set_weights(struct kb_query *q, int64_t n_rows, const int64_t *totals)
{
    if (n_rows < 1)
        n_rows = 1;
    q->idf_sum = q->idf2_sum = 0;
    q->n_rows = n_rows;
    for (int i = 0; i < q->n_terms; i++) {
        double df = (double)q->terms[i].df;
        if (df > (double)n_rows)
            df = (double)n_rows;
        double idf = log(1.0 + ((double)n_rows - df + 0.5) / (df + 0.5));
        q->terms[i].idf = idf > 1e-6 ? idf : 1e-6;
        q->idf_sum += q->terms[i].idf;
        q->idf2_sum += q->terms[i].idf * q->terms[i].idf;
    }
    for (int c = 0; c < KB_N_COLS; c++) {
        q->avg_len[c] = (double)totals[c] / (double)n_rows;
        if (q->avg_len[c] < 1)
            q->avg_len[c] = 1;
        q->norm_a[c] = 1.0 - q->tune->b_col[c];
        q->norm_k[c] = q->tune->b_col[c] / q->avg_len[c];
    }
    q->has_idf = 1;
}

/* query_set_weights() from FTS5's row count and column totals. */
static int query_prepare_idf(const Fts5ExtensionApi *api, Fts5Context *fts, struct kb_query *q)
{
    sqlite3_int64 n_rows = 0;
    int64_t totals[KB_N_COLS];
    int rc = api->xRowCount(fts, &n_rows);
    for (int c = 0; c < KB_N_COLS && rc == SQLITE_OK; c++) {
        sqlite3_int64 total = 0;
        rc = api->xColumnTotalSize(fts, c, &total);
        totals[c] = total;
    }
    if (rc != SQLITE_OK)
        return rc;
    query_set_weights(q, n_rows, totals);
    return SQLITE_OK;
}

/* One row's score, summed over its instances of the query's terms as they come in column,
 * then offset order: BM25F term frequencies and the proximity bonus. */
struct row_score {
    double norm[KB_N_COLS];
    double tf[KB_MAX_QUERY_TERMS];
    double proximity;
    int prev_term, prev_col, prev_off;
};

static void row_score_begin(const struct kb_query *q, struct row_score *r, const int *lens)
{
    for (int c = 0; c < KB_N_COLS; c++)
        r->norm[c] = q->norm_a[c] + q->norm_k[c] * (double)lens[c];
    for (int t = 0; t < q->n_terms; t++)
        r->tf[t] = 0;
    r->proximity = 0;
    r->prev_term = r->prev_col = -1;
    r->prev_off = -10;
}

static void row_score_add(const struct kb_query *q, struct row_score *r, int term, int col, int off)
{
    r->tf[term] += q->tune->w_col[col] / r->norm[col];
    /* Reward two different query terms within two positions of each other (stop words are
     * not counted). */
    if (col == r->prev_col && term != r->prev_term && off - r->prev_off <= 2) {
        double a = q->terms[term].idf, b = q->terms[r->prev_term].idf;
        r->proximity += a < b ? a : b;
    }
    r->prev_term = term;
    r->prev_col = col;
    r->prev_off = off;
}

/* BM25F times coverage, plus proximity, normalised by the best any article could score for
 * this question, so scores compare across questions: each part is in [0, 1]. */
static double row_score_end(const struct kb_query *q, const struct row_score *r)
{
    const struct kb_tune *tn = q->tune;
    double bm25 = 0, covered = 0;
    for (int t = 0; t < q->n_terms; t++) {
        if (r->tf[t] <= 0)
            continue;
        bm25 += q->terms[t].idf * r->tf[t] * (tn->k1 + 1) / (tn->k1 + r->tf[t]);
        covered += q->terms[t].idf;
    }
    double coverage = q->idf_sum > 0 ? covered / q->idf_sum : 0;
    double best = q->idf_sum * (tn->k1 + 1);
    double score = best > 0 ? bm25 / best : 0;
    if (tn->coverage_pow != 0)
        score *= pow(coverage, tn->coverage_pow);
    double prox = q->idf_sum > 0 ? r->proximity / q->idf_sum : 0;
    score += tn->proximity * (prox < 1 ? prox : 1);
    return score;
}

/* kb_rank(fts_table, query_pointer): BM25F times coverage, plus proximity. Higher is better. */
static void kb_rank_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                       int n_args, sqlite3_value **args)
{
    struct kb_query *q = n_args == 1 ? sqlite3_value_pointer(args[0], "kb_query") : NULL;
    if (!q || q->n_terms == 0) {
        sqlite3_result_double(ctx, 0);
        return;
    }
    int rc = SQLITE_OK;
    if (!q->has_idf && (rc = query_prepare_idf(api, fts, q)) != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    sqlite3_int64 rid = api->xRowid(fts);
    const struct df_map *m = q->stats;
    int lens[KB_N_COLS];
    for (int c = 0; c < KB_N_COLS; c++) {
        lens[c] = 0;
        if (m && m->is_valid && rid >= 0 && rid < m->n_lens)
            lens[c] = m->lens[rid].len[c];
        else if ((rc = api->xColumnSize(fts, c, &lens[c])) != SQLITE_OK) {
            sqlite3_result_error_code(ctx, rc);
            return;
        }
    }
    struct row_score r;
    row_score_begin(q, &r, lens);
    int n_inst = 0;
    if ((rc = api->xInstCount(fts, &n_inst)) != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    for (int i = 0; i < n_inst; i++) {
        int phrase, col, off;
        if (api->xInst(fts, i, &phrase, &col, &off) != SQLITE_OK)
            break;
        if (phrase < 0 || phrase >= q->n_phrases || col < 0 || col >= KB_N_COLS)
            continue;
        row_score_add(q, &r, q->phrase_term[phrase], col, off);
    }
    double score = row_score_end(q, &r);
    sqlite3_result_double(ctx, score);
}

/* ---- languages -------------------------------------------------------------------------- */

static void lang_index_clear(struct kb_lang_index *li)
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
static int df_map_build(struct kb_lang_index *li)
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
        struct df_entry *e = df_find(m, term, (size_t)sqlite3_column_bytes(st, 0), 1);
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
        rc = df_set_qterms(m, sqlite3_column_int64(st, 0), col_text(st, 1),
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

/* Returns the index for lang, creating its FTS5 table if create is set, or NULL. */
static struct kb_lang_index *lang_index(struct kb *kb, const char *lang, int create, int *rc_out)
{
    *rc_out = 0;
    for (int i = 0; i < kb->n_langs; i++)
        if (!strcmp(kb->langs[i].lang, lang))
            return &kb->langs[i];
    if (!is_lang_code(lang)) {
        *rc_out = CD_EINVAL;
        return NULL;
    }
    if (kb->n_langs >= KB_MAX_LANGS) {
        *rc_out = create ? CD_EFULL : 0;
        return NULL;
    }
    char sql[512];
    if (!create) {
        /* Only languages listed in kb_lang have a table; kb_open() loaded all of them. */
        return NULL;
    }
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE IF NOT EXISTS fts_%s USING fts5(title, questions, learned, "
             "tags, body, tokenize = 'snowball %s')",
             lang, lang);
    int rc = sqlite3_exec(kb->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *st = stmt(kb, ST_LANG_ADD);
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
    snprintf(sql, sizeof sql,
             "INSERT INTO fts_%s(rowid, title, questions, learned, tags, body) "
             "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
             lang);
    rc = sqlite3_prepare_v3(kb->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &li->ins, NULL);
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql, "DELETE FROM fts_%s WHERE rowid = ?1", lang);
        rc = sqlite3_prepare_v3(kb->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &li->del, NULL);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql,
                 "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_%s_inst USING fts5vocab(main, "
                 "fts_%s, instance)",
                 lang, lang);
        rc = sqlite3_exec(kb->db, sql, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql,
                 "SELECT term, doc, col, offset FROM temp.fts_%s_inst LIMIT 1000000000", lang);
        rc = sqlite3_prepare_v3(kb->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &li->vocab, NULL);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM fts_%s_docsize", lang);
        rc = sqlite3_prepare_v3(kb->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &li->n_rows, NULL);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql,
                 "SELECT rid, qterms FROM article WHERE is_published = 1 AND lang = '%s' "
                 "LIMIT 100000000",
                 lang);
        rc = sqlite3_prepare_v3(kb->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &li->qterms, NULL);
    }
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql,
                 "SELECT rowid, kb_rank(fts_%s, ?2) AS score FROM fts_%s WHERE fts_%s MATCH ?1 "
                 "ORDER BY score DESC LIMIT %d",
                 lang, lang, lang, KB_CANDIDATES);
        rc = sqlite3_prepare_v3(kb->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &li->search, NULL);
    }
    li->df_map = calloc(1, sizeof *li->df_map);
    if (rc != SQLITE_OK || !li->tok || !li->df_map) {
        lang_index_clear(li);
        *rc_out = rc == SQLITE_OK ? CD_ENOMEM : CD_EIO;
        return NULL;
    }
    kb->n_langs++;
    if ((rc = df_map_build(li)) != 0) {
        kb->n_langs--;
        lang_index_clear(li);
        *rc_out = rc;
        return NULL;
    }
    return li;
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
    char buf[512];
    snprintf(buf, sizeof buf, "%s", env);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        double v = strtod(eq + 1, NULL);
        if (!strcmp(kv, "k1"))
            t->k1 = v;
        else if (!strcmp(kv, "coverage_pow"))
            t->coverage_pow = v;
        else if (!strcmp(kv, "proximity"))
            t->proximity = v;
        else if (!strcmp(kv, "w_phrasing"))
            t->w_phrasing = v;
        else if (!strcmp(kv, "w_stage1"))
            t->w_stage1 = v;
        else if (!strcmp(kv, "phrasing_cos"))
            t->phrasing_cos = v;
        else if (!strcmp(kv, "phrasing_second"))
            t->phrasing_second = v;
        else if (!strcmp(kv, "fix_typos"))
            t->fix_typos = v;
        else if (!strcmp(kv, "join_words"))
            t->join_words = v;
        else if (!strcmp(kv, "mem_index"))
            t->mem_index = v;
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
    fts5_tokenizer tokenizer = {snowball_create, snowball_delete, snowball_tokenize};
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
        if (!lang_index(kb, col_text(st, 0), 1, &lrc) && lrc) {
            set_err(err, "cannot open the index of language '%s'", col_text(st, 0));
            sqlite3_finalize(st);
            goto fail;
        }
    }
    sqlite3_finalize(st);
    st = stmt(kb, ST_GENERATION);
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
        lang_index_clear(&kb->langs[i]);
    for (int i = 0; i < ST_COUNT_STMTS; i++)
        sqlite3_finalize(kb->st[i]);
    sqlite3_close(kb->db);
    capture_free(&kb->capture);
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
    for (int i = 0; i < a->n_tags; i++)
        free(a->tags[i]);
    free(a->tags);
    for (int i = 0; i < a->n_questions; i++)
        free(a->questions[i]);
    free(a->questions);
    memset(a, 0, sizeof *a);
}

static int is_valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= KB_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        if (!ok)
            return 0;
    }
    return 1;
}

static int has_newline(const char *s)
{
    return strchr(s, '\n') || strchr(s, '\r');
}

/* Checks an article before it is stored; on failure writes why into msg. */
static int article_check(const struct kb_article *a, char *msg, size_t cap)
{
    const char *lang = a->lang && *a->lang ? a->lang : "en";
    char code[8];
    if (!a->id || !*a->id)
        snprintf(msg, cap, "missing id");
    else if (!is_valid_id(a->id))
        snprintf(msg, cap, "invalid id '%.60s' (letters, digits, '-', '_', '.'; < %d bytes)", a->id,
                 KB_ID_MAX);
    else if (!a->title || !*a->title)
        snprintf(msg, cap, "missing title");
    else if (strlen(a->title) > KB_MAX_TITLE || has_newline(a->title))
        snprintf(msg, cap, "title must be one line of at most %d bytes", KB_MAX_TITLE);
    else if (!lang_code(lang, code))
        snprintf(msg, cap, "invalid lang '%.16s' (a two-letter ISO 639-1 code, e.g. en)", lang);
    else if (!a->body || !*a->body)
        snprintf(msg, cap, "empty body");
    else if (strlen(a->body) > KB_MAX_BODY)
        snprintf(msg, cap, "body is larger than %d bytes", KB_MAX_BODY);
    else if (!cd_utf8_valid(a->title, strlen(a->title)) || !cd_utf8_valid(a->body, strlen(a->body)))
        snprintf(msg, cap, "text is not valid UTF-8");
    else if (a->n_tags < 0 || a->n_tags > KB_MAX_TAGS)
        snprintf(msg, cap, "more than %d tags", KB_MAX_TAGS);
    else if (a->n_questions < 0 || a->n_questions > KB_MAX_QUESTIONS)
        snprintf(msg, cap, "more than %d questions", KB_MAX_QUESTIONS);
    else {
        for (int i = 0; i < a->n_tags; i++) {
            const char *t = a->tags[i];
            if (!t || !*t || strlen(t) > KB_MAX_TAG_LEN || has_newline(t) ||
                !cd_utf8_valid(t, strlen(t))) {
                snprintf(msg, cap, "tag %d must be one line of 1 to %d bytes of UTF-8", i + 1,
                         KB_MAX_TAG_LEN);
                return CD_EINVAL;
            }
        }
        for (int i = 0; i < a->n_questions; i++) {
            const char *q = a->questions[i];
            if (!q || !*q || strlen(q) > KB_MAX_QUESTION_LEN || has_newline(q) ||
                !cd_utf8_valid(q, strlen(q))) {
                snprintf(msg, cap, "question %d must be one line of 1 to %d bytes of UTF-8", i + 1,
                         KB_MAX_QUESTION_LEN);
                return CD_EINVAL;
            }
        }
        return 0;
    }
    return CD_EINVAL;
}

static int join_lines(struct cd_buf *b, char *const *items, int n)
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
            for (int i = 0; i < k; i++)
                free(items[i]);
            free(items);
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

/* ---- passages: Markdown paragraphs, cleaned for display, stemmed for matching ----------- */

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Appends one byte; the caller has reserved room for it. */
static void buf_putc(struct cd_buf *b, char c)
{
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

/* Appends a Markdown line as plain text: no heading marks, list bullets, emphasis, code
 * ticks, link targets or HTML tags; out has room for n + 1 more bytes and its NUL. Stops once out
 * holds more than limit bytes ending in a word: what follows cannot change the first limit bytes,
 * all a passage shows. */
static int clean_markdown_line(struct cd_buf *out, const char *s, size_t n, size_t limit)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    while (i < n && (s[i] == '#' || s[i] == '>'))
        i++;
    if (i + 1 < n && (s[i] == '-' || s[i] == '*' || s[i] == '+') && s[i + 1] == ' ')
        i += 2;
    else {
        size_t j = i;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j > i && j + 1 < n && (s[j] == '.' || s[j] == ')') && s[j + 1] == ' ')
            i = j + 2;
    }
    if (n - i >= 3 && (!strncmp(s + i, "```", 3) || !strncmp(s + i, "~~~", 3)))
        return 0;
    int need_space = out->len > 0 && out->data[out->len - 1] != ' ';
    for (; i < n; i++) {
        if (out->len > limit && out->data[out->len - 1] != ' ')
            break;
        char c = s[i];
        if (c == '*' || c == '_' || c == '`' || c == '\r')
            continue;
        if (c == '!' && i + 1 < n && s[i + 1] == '[')
            continue;
        if (c == '[' || c == ']')
            continue;
        if (c == '(' && i > 0 && s[i - 1] == ']') { /* link target: skip to ')' */
            while (i < n && s[i] != ')')
                i++;
            continue;
        }
        if (c == '<') { /* HTML tag or autolink: drop up to '>' if it closes on this line */
            const char *gt = memchr(s + i, '>', n - i);
            if (gt) {
                i = (size_t)(gt - s);
                continue;
            }
        }
        if (c == '\t' || c == ' ') {
            if (out->len > 0 && out->data[out->len - 1] != ' ')
                buf_putc(out, ' ');
            continue;
        }
        if (need_space) {
            buf_putc(out, ' ');
            need_space = 0;
        }
        buf_putc(out, c);
    }
    return 0;
}

/* Cuts s to at most max bytes at a word boundary (and a UTF-8 boundary), adding "...". */
static void shorten(struct cd_buf *b, size_t max)
{
    while (b->len > 0 && b->data[b->len - 1] == ' ')
        b->data[--b->len] = '\0';
    if (b->len <= max)
        return;
    size_t cut = max;
    while (cut > max / 2 && b->data[cut] != ' ')
        cut--;
    if (b->data[cut] != ' ') {
        cut = max;
        while (cut > 0 && ((unsigned char)b->data[cut] & 0xC0) == 0x80)
            cut--;
    }
    while (cut > 0 && (b->data[cut - 1] == ' ' || b->data[cut - 1] == ',' ||
                       b->data[cut - 1] == ';' || b->data[cut - 1] == ':'))
        cut--;
    b->len = cut;
    b->data[cut] = '\0';
    cd_buf_puts(b, "...");
}

/* A block of the body: a paragraph (lines up to a blank line or heading), or a heading. */
struct block {
    size_t start, end; /* byte range in the body */
    int is_heading;
};

/* Finds the next block at or after *pos; returns 0 at the end of the body. Fenced code
 * blocks stay inside one block. */
static int next_block(const char *body, size_t n, size_t *pos, struct block *out)
{
    size_t p = *pos;
    int in_fence = 0, started = 0;
    out->is_heading = 0;
    while (p < n) {
        const char *nl = memchr(body + p, '\n', n - p);
        size_t len = nl ? (size_t)(nl - (body + p)) : n - p;
        size_t next = nl ? p + len + 1 : n;
        size_t lead = 0;
        while (lead < len && body[p + lead] == ' ')
            lead++;
        int fence = len - lead >= 3 &&
                    (!strncmp(body + p + lead, "```", 3) || !strncmp(body + p + lead, "~~~", 3));
        if (fence)
            in_fence = !in_fence;
        if (!in_fence && !fence && is_blank(body + p, len)) {
            p = next;
            if (started)
                break;
            continue;
        }
        if (!in_fence && lead < len && body[p + lead] == '#') {
            if (started)
                break; /* the heading starts the next block */
            out->start = p;
            out->end = p + len;
            out->is_heading = 1;
            *pos = next;
            return 1;
        }
        if (!started) {
            out->start = p;
            started = 1;
        }
        out->end = p + len;
        p = next;
    }
    *pos = p;
    return started;
}

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
    uint32_t h = hash_bytes(stem, n), k = h & (STEM_SET_SLOTS - 1);
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
    struct block blk = {0, 0, 0};
    int heading_first = 0, heading_end = 0; /* the current heading's tokens */
    int n_paragraphs = 0, k = 0, rc = 0;
    cd_buf_reset(out);
    rc = cd_buf_append(out, "", 0);
    while (!rc && n_paragraphs < KB_MAX_PASSAGES && next_block(body, n, &pos, &blk)) {
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
static int index_article(struct kb *kb, sqlite3_int64 rid, const struct kb_article *a)
{
    int rc = 0;
    struct kb_lang_index *li = lang_index(kb, a->lang && *a->lang ? a->lang : "en", 1, &rc);
    if (!li)
        return rc ? rc : CD_EIO;
    struct cd_buf questions = {0}, learned = {0}, learned_stems = {0}, tags = {0};
    struct cd_buf qterms = {0}, pstems = {0};
    if ((rc = join_lines(&questions, a->questions, a->n_questions)) ||
        (rc = join_lines(&tags, a->tags, a->n_tags)) || (rc = cd_buf_append(&learned, "", 0)) ||
        (rc = cd_buf_append(&learned_stems, "", 0)))
        goto done;
    sqlite3_stmt *st = stmt(kb, ST_LEARNED);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        int first = learned.len == 0;
        if ((!first &&
             (cd_buf_append(&learned, "\n", 1) || cd_buf_append(&learned_stems, "\n", 1))) ||
            cd_buf_puts(&learned, col_text(st, 0)) || cd_buf_puts(&learned_stems, col_text(st, 1)))
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
    rc = step_done(st);
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
    st = stmt(kb, ST_SET_STEMS);
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_text(st, 2, qterms.data, (int)qterms.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, pstems.data, (int)pstems.len, SQLITE_STATIC);
    rc = step_done(st);
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
static int unindex_article(struct kb *kb, sqlite3_int64 rid, const char *lang)
{
    int rc = 0;
    struct kb_lang_index *li = lang_index(kb, lang, 0, &rc);
    if (!li)
        return 0;
    sqlite3_reset(li->del);
    sqlite3_bind_int64(li->del, 1, rid);
    capture_begin(kb, li, rid, -1);
    rc = step_done(li->del);
    capture_end(kb, li, rid, rc);
    return rc;
}

/* Each write is atomic: a savepoint around it, except inside a bulk load, whose one
 * transaction is rolled back whole on a write error (FTS5 flushes its pending index at every
 * savepoint, which would make a bulk load several times slower). */
static int op_begin(struct kb *kb)
{
    kb->is_op_indexed = 0;
    return kb->is_bulk ? 0 : step_done(stmt(kb, ST_SAVEPOINT));
}

/* What the tokenizer counted for rows a rollback undoes is wrong: rebuilt at next search. */
static void invalidate_counts(struct kb *kb)
{
    for (int i = 0; i < kb->n_langs; i++)
        kb->langs[i].df_map->is_valid = 0;
}

/* Marks a write that changed an index for the other connections (kb_generation). */
static int bump_generation(struct kb *kb)
{
    sqlite3_stmt *st = stmt(kb, ST_GENERATION_BUMP);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 0);
        if (n != kb->generation + 1)
            invalidate_counts(kb); /* another connection wrote since this one last looked */
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
        invalidate_counts(kb);
    if (kb->is_bulk)
        return rc;
    if (rc)
        step_done(stmt(kb, ST_ROLLBACK));
    int rc2 = step_done(stmt(kb, ST_RELEASE));
    return rc ? rc : rc2;
}

static int same_text(sqlite3_stmt *st, int col, const char *s)
{
    return !strcmp(col_text(st, col), s ? s : "");
}

int kb_put(struct kb *kb, const struct kb_article *article)
{
    char msg[160];
    if (!kb || !article || article_check(article, msg, sizeof msg))
        return CD_EINVAL;
    struct kb_article a = *article;
    char code[8] = "en";
    if (a.lang && *a.lang)
        lang_code(a.lang, code); /* "es-ES" is stored as "es" */
    a.lang = code;
    struct cd_buf tags = {0}, questions = {0};
    int rc;
    if ((rc = join_lines(&tags, a.tags, a.n_tags)) ||
        (rc = join_lines(&questions, a.questions, a.n_questions))) {
        cd_buf_free(&tags);
        cd_buf_free(&questions);
        return rc;
    }
    if ((rc = op_begin(kb))) {
        cd_buf_free(&tags);
        cd_buf_free(&questions);
        return rc;
    }
    int is_published = a.is_published ? 1 : 0;
    int64_t now = a.updated_s ? a.updated_s : cd_wall_s();
    sqlite3_stmt *st = stmt(kb, ST_GET);
    sqlite3_bind_text(st, 1, a.id, -1, SQLITE_STATIC);
    sqlite3_int64 rid = 0;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rid = sqlite3_column_int64(st, 0);
        int same = same_text(st, 1, a.title) && same_text(st, 2, a.lang) &&
                   same_text(st, 3, a.body) && same_text(st, 4, tags.data) &&
                   same_text(st, 5, questions.data) && sqlite3_column_int(st, 6) == is_published;
        char old_lang[8];
        snprintf(old_lang, sizeof old_lang, "%s", col_text(st, 2));
        int was_published = sqlite3_column_int(st, 6);
        sqlite3_reset(st);
        if (same)
            goto done; /* re-importing an unchanged article makes no revision */
        st = stmt(kb, ST_SAVE_REVISION);
        sqlite3_bind_int64(st, 1, rid);
        if ((rc = step_done(st)))
            goto done;
        if (was_published && (rc = unindex_article(kb, rid, old_lang)))
            goto done;
        st = stmt(kb, ST_UPDATE);
        sqlite3_bind_int64(st, 1, rid);
    } else if (step == SQLITE_DONE) {
        sqlite3_reset(st);
        st = stmt(kb, ST_INSERT);
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
    if ((rc = step_done(st)))
        goto done;
    if (!rid)
        rid = sqlite3_last_insert_rowid(kb->db);
    if (is_published)
        rc = index_article(kb, rid, &a);
done:
    rc = op_end(kb, rc);
    cd_buf_free(&tags);
    cd_buf_free(&questions);
    return rc;
}

static int article_from_row(sqlite3_stmt *st, int first_col, const char *id, struct kb_article *out)
{
    memset(out, 0, sizeof *out);
    out->id = xstrdup(id);
    out->title = xstrdup(col_text(st, first_col));
    out->lang = xstrdup(col_text(st, first_col + 1));
    out->body = xstrdup(col_text(st, first_col + 2));
    int rc = split_lines(col_text(st, first_col + 3), &out->tags, &out->n_tags);
    if (!rc)
        rc = split_lines(col_text(st, first_col + 4), &out->questions, &out->n_questions);
    out->is_published = sqlite3_column_int(st, first_col + 5);
    out->revision = sqlite3_column_int(st, first_col + 6);
    out->updated_s = sqlite3_column_int64(st, first_col + 7);
    if (rc || !out->id || !out->title || !out->lang || !out->body) {
        kb_article_clear(out);
        return CD_ENOMEM;
    }
    return 0;
}

int kb_get(struct kb *kb, const char *id, struct kb_article *out)
{
    if (!kb || !id || !out)
        return CD_EINVAL;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = stmt(kb, ST_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW    ? article_from_row(st, 1, id, out)
             : step == SQLITE_DONE ? CD_ENOTFOUND
                                   : sql_rc(step);
    sqlite3_reset(st);
    return rc;
}

int kb_get_revision(struct kb *kb, const char *id, int revision, struct kb_article *out)
{
    if (!kb || !id || !out)
        return CD_EINVAL;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = stmt(kb, ST_GET_REVISION);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, revision);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW    ? article_from_row(st, 0, id, out)
             : step == SQLITE_DONE ? CD_ENOTFOUND
                                   : sql_rc(step);
    sqlite3_reset(st);
    return rc;
}

int kb_revision_count(struct kb *kb, const char *id)
{
    if (!kb || !id)
        return CD_EINVAL;
    sqlite3_stmt *st = stmt(kb, ST_N_REVISIONS);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : CD_EIO;
    sqlite3_reset(st);
    return n;
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
    sqlite3_stmt *st = stmt(kb, ST_LIST);
    if (pattern)
        sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
    if (status >= 0)
        sqlite3_bind_int(st, 2, status);
    sqlite3_bind_int(st, 3, max_items);
    int rc = 0, step = SQLITE_DONE, n = 0;
    while (n < max_items && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct kb_list_item *it = &items[n];
        memset(it, 0, sizeof *it);
        snprintf(it->id, sizeof it->id, "%s", col_text(st, 0));
        snprintf(it->lang, sizeof it->lang, "%s", col_text(st, 2));
        it->title = xstrdup(col_text(st, 1));
        rc = it->title ? split_lines(col_text(st, 3), &it->tags, &it->n_tags) : CD_ENOMEM;
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
    if (!kb || !id)
        return CD_EINVAL;
    sqlite3_stmt *st = stmt(kb, ST_N_LEARNED);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : CD_EIO;
    sqlite3_reset(st);
    return n;
}

int kb_delete(struct kb *kb, const char *id)
{
    if (!kb || !id)
        return CD_EINVAL;
    int rc = op_begin(kb);
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(kb, ST_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? CD_ENOTFOUND : sql_rc(step);
        sqlite3_reset(st);
        return op_end(kb, rc);
    }
    sqlite3_int64 rid = sqlite3_column_int64(st, 0);
    char lang[8];
    snprintf(lang, sizeof lang, "%s", col_text(st, 2));
    int was_published = sqlite3_column_int(st, 6);
    sqlite3_reset(st);
    st = stmt(kb, ST_SAVE_REVISION); /* the deleted version stays as a revision */
    sqlite3_bind_int64(st, 1, rid);
    if (!(rc = step_done(st)) && was_published)
        rc = unindex_article(kb, rid, lang);
    if (!rc) {
        st = stmt(kb, ST_DELETE);
        sqlite3_bind_int64(st, 1, rid);
        rc = step_done(st);
    }
    return op_end(kb, rc);
}

int kb_count(struct kb *kb)
{
    if (!kb)
        return 0;
    sqlite3_stmt *st = stmt(kb, ST_COUNT);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_reset(st);
    return n;
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
    struct kb_lang_index *li = lang_index(kb, a.lang, 1, &rc);
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
        rc = op_begin(kb);
    if (rc)
        goto done;
    sqlite3_stmt *st = stmt(kb, ST_LEARN);
    sqlite3_bind_text(st, 1, article_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, line.data, (int)line.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, stems.data, (int)stems.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, cd_wall_s());
    rc = step_done(st);
    if (!rc && sqlite3_changes(kb->db) > 0 && a.is_published) {
        st = stmt(kb, ST_GET);
        sqlite3_bind_text(st, 1, article_id, -1, SQLITE_STATIC);
        sqlite3_int64 rid = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        rc = rid ? unindex_article(kb, rid, a.lang) : CD_EIO;
        if (!rc)
            rc = index_article(kb, rid, &a);
    }
    rc = op_end(kb, rc);
done:
    cd_buf_free(&line);
    cd_buf_free(&stems);
    kb_article_clear(&a);
    return rc;
}

/* ---- search ----------------------------------------------------------------------------- */

#define KB_MAX_JOINS 4 /* pairs of neighbouring words tried as one ("git hub") */

static uint64_t stem_bit(const char *s, size_t n)
{
    return 1ull << (((unsigned char)s[0] * 31u + (unsigned)n) & 63);
}

/* Sets the query's stem mask: its terms are final (choose_phrases() has run). */
static void query_seal(struct kb_query *q)
{
    q->stem_mask = 0;
    for (int i = 0; i < q->n_terms; i++)
        q->stem_mask |= stem_bit(q->terms[i].stem, (size_t)q->terms[i].n_stem);
    q->has_mask = 1;
}

/* Returns the index of the term with stem s, or -1. Passages and phrasings ask for every stem
 * they have, mostly absent ones: the mask turns most of those away at once. */
static int find_stem(const struct kb_query *q, const char *s, size_t n)
{
    if (n == 0 || (q->has_mask && !(q->stem_mask & stem_bit(s, n))))
        return -1;
    for (int i = 0; i < q->n_terms; i++)
        if ((size_t)q->terms[i].n_stem == n && q->terms[i].stem[0] == s[0] &&
            !memcmp(q->terms[i].stem, s, n))
            return i;
    return -1;
}

static int64_t entry_df(const struct df_entry *e)
{
    int64_t df = 0;
    for (int c = 0; c < KB_N_COLS; c++)
        if (e->col_df[c] > df)
            df = e->col_df[c];
    return df;
}

struct first_stem {
    char stem[TEXT_MAX_TOKEN + 1];
    int n;
};

static int first_stem_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    (void)start;
    (void)end;
    struct first_stem *f = ctx;
    if (f->n || n_token > TEXT_MAX_TOKEN)
        return 1;
    memcpy(f->stem, token, (size_t)n_token);
    f->stem[n_token] = '\0';
    f->n = n_token;
    return 1;
}

struct query_build {
    struct kb_query *q;
    const char *text;
    int prev_start, prev_end; /* the previous word, -1 before the first */
    int n_joins;
    int join[KB_MAX_JOINS][3]; /* start of the first word, end of the first, end of second */
};

static int query_term_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    struct query_build *b = ctx;
    struct kb_query *q = b->q;
    if (n_token <= 0 || n_token > TEXT_MAX_TOKEN)
        return 0;
    /* Two words with only a space or a hyphen between them may be one split word. */
    if (b->prev_start >= 0 && b->n_joins < KB_MAX_JOINS && start - b->prev_end == 1 &&
        (b->text[b->prev_end] == ' ' || b->text[b->prev_end] == '-')) {
        int *j = b->join[b->n_joins++];
        j[0] = b->prev_start;
        j[1] = b->prev_end;
        j[2] = end;
    }
    b->prev_start = start;
    b->prev_end = end;
    for (int i = 0; i < q->n_terms; i++)
        if (q->terms[i].n_stem == n_token && !memcmp(q->terms[i].stem, token, (size_t)n_token))
            return 0;
    if (q->n_terms == KB_MAX_QUERY_TERMS) {
        q->is_truncated = 1;
        return 1; /* stop: enough terms */
    }
    struct kb_term *t = &q->terms[q->n_terms++];
    memcpy(t->stem, token, (size_t)n_token);
    t->stem[n_token] = '\0';
    t->n_stem = n_token;
    t->start = start;
    t->end = end;
    t->idf = 1;
    return 0;
}

/* Adds the stem of each pair of neighbouring words written as one ("git hub" -> "github",
 * "e-mail" -> "email") when the KB has that word and the question does not. */
static void add_joined_words(struct kb_lang_index *li, struct query_build *b)
{
    struct kb_query *q = b->q;
    if (!li->df_map->is_valid && df_map_build(li) != 0)
        return;
    for (int i = 0; i < b->n_joins && q->n_terms < KB_MAX_QUERY_TERMS; i++) {
        char word[2 * TEXT_MAX_TOKEN + 8];
        int *j = b->join[i];
        int n1 = j[1] - j[0], n2 = j[2] - (j[1] + 1);
        if (n1 + n2 >= (int)sizeof word || n1 <= 0 || n2 <= 0)
            continue;
        memcpy(word, b->text + j[0], (size_t)n1);
        memcpy(word + n1, b->text + j[1] + 1, (size_t)n2);
        struct first_stem f = {.n = 0};
        kb_tok_tokenize(li->tok, word, (size_t)(n1 + n2), first_stem_cb, &f);
        if (f.n == 0 || find_stem(q, f.stem, (size_t)f.n) >= 0)
            continue;
        const struct df_entry *e = df_find(li->df_map, f.stem, (size_t)f.n, 0);
        if (!e || entry_df(e) == 0)
            continue;
        struct kb_term *t = &q->terms[q->n_terms++];
        memset(t, 0, sizeof *t);
        memcpy(t->stem, f.stem, (size_t)f.n);
        t->n_stem = f.n;
        t->idf = 1;
    }
}

/* Builds the FTS5 MATCH expression: each chosen term's stem as a quoted raw-stem string,
 * OR-joined, some limited to the title and question columns. Nothing else gets in. */
static int build_match(const struct kb_query *q, struct cd_buf *m)
{
    cd_buf_reset(m);
    for (int i = 0; i < q->n_phrases; i++) {
        const struct kb_term *t = &q->terms[q->phrase_term[i]];
        if (i && cd_buf_puts(m, " OR "))
            return CD_ENOMEM;
        if (q->is_head_only[i] && cd_buf_puts(m, "{title questions learned} : "))
            return CD_ENOMEM;
        char raw = KB_RAW_STEM;
        if (cd_buf_append(m, "\"", 1) || cd_buf_append(m, &raw, 1))
            return CD_ENOMEM;
        for (int k = 0; k < t->n_stem; k++) {
            if (t->stem[k] == '"' && cd_buf_append(m, "\"", 1))
                return CD_ENOMEM;
            if (cd_buf_append(m, &t->stem[k], 1))
                return CD_ENOMEM;
        }
        if (cd_buf_append(m, "\"", 1))
            return CD_ENOMEM;
    }
    return 0;
}

struct kb_candidate {
    sqlite3_int64 rid;
    double stage1;
    double phrasing;
    double score;
    int lang_rank; /* 0 for the requested language's table */
};

/* How well the question matches one phrasing (a line of stems): the harmonic mean of the
 * question weight it covers and the share of its own stems the question has. */
static double phrasing_similarity(const struct kb_query *q, const char *line, size_t n)
{
    double covered = 0;
    int n_stems = 0, n_matched = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && line[j] != ' ')
            j++;
        if (j > i) {
            n_stems++;
            int t = find_stem(q, line + i, j - i);
            if (t >= 0) {
                covered += q->terms[t].idf;
                n_matched++;
            }
        }
        i = j + 1;
    }
    if (n_matched == 0 || q->idf_sum <= 0)
        return 0;
    double a = covered / q->idf_sum, b = (double)n_matched / n_stems;
    return 2 * a * b / (a + b);
}

/* The cosine of the question and one phrasing (a line of stems), both weighted by idf. */
static double phrasing_cosine(const struct kb_query *q, const char *line, size_t n)
{
    double dot = 0, norm = 0, n_rows = (double)(q->n_rows > 0 ? q->n_rows : 1);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && line[j] != ' ')
            j++;
        if (j > i) {
            int t = find_stem(q, line + i, j - i);
            double idf;
            if (t >= 0) {
                idf = q->terms[t].idf;
                dot += idf * idf;
            } else {
                const struct df_entry *e =
                    q->stats ? df_find((struct df_map *)q->stats, line + i, j - i, 0) : NULL;
                double df = 0;
                for (int c = 0; e && c < KB_N_COLS; c++)
                    if (e->col_df[c] > df)
                        df = e->col_df[c];
                idf = log(1.0 + (n_rows - df + 0.5) / (df + 0.5));
            }
            norm += idf * idf;
        }
        i = j + 1;
    }
    if (dot <= 0 || norm <= 0 || q->idf2_sum <= 0)
        return 0;
    return dot / sqrt(norm * q->idf2_sum);
}

static double best_phrasing(const struct kb_query *q, const char *qterms)
{
    double best = 0, second = 0;
    for (const char *p = qterms; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        double s =
            q->tune->phrasing_cos > 0 ? phrasing_cosine(q, p, len) : phrasing_similarity(q, p, len);
        if (s > best) {
            second = best;
            best = s;
        } else if (s > second)
            second = s;
        if (!nl)
            break;
        p = nl + 1;
    }
    return best + q->tune->phrasing_second * second;
}

static int cmp_candidates(const void *x, const void *y)
{
    const struct kb_candidate *a = x, *b = y;
    if (a->lang_rank != b->lang_rank)
        return a->lang_rank - b->lang_rank;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return a->rid < b->rid ? -1 : a->rid > b->rid;
}

/* Picks the paragraph of an article that shares the most query weight (the first one on a
 * tie, or when nothing matches), and returns it cleaned of Markdown and shortened. */
static int best_passage(const struct kb_query *q, const char *body, const char *pstems, char **out)
{
    *out = NULL;
    size_t n_body = strlen(body);
    double best = -1;
    size_t best_start = 0, best_end = 0;
    for (const char *line = pstems; *line;) {
        char *rest = NULL;
        unsigned long long start = strtoull(line, &rest, 10);
        unsigned long long end = strtoull(rest, &rest, 10);
        const char *nl = strchr(rest, '\n');
        const char *stop = nl ? nl : rest + strlen(rest);
        double s = 0;
        for (const char *p = rest; p < stop;) {
            while (p < stop && *p == ' ')
                p++;
            const char *w = p;
            while (p < stop && *p != ' ')
                p++;
            int t = p > w ? find_stem(q, w, (size_t)(p - w)) : -1;
            if (t >= 0)
                s += q->terms[t].idf;
        }
        if (s > best && start < end && end <= n_body) {
            best = s;
            best_start = (size_t)start;
            best_end = (size_t)end;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    /* A line of n bytes cleans to at most n + 1 (a space before it): one allocation. */
    size_t cap = 2 * (best_end - best_start) + 2;
    struct cd_buf text = {malloc(cap), 0, cap};
    if (!text.data)
        return CD_ENOMEM;
    text.data[0] = '\0';
    int rc = 0;
    for (size_t p = best_start; p < best_end && !rc;) {
        const char *nl = memchr(body + p, '\n', best_end - p);
        size_t len = nl ? (size_t)(nl - (body + p)) : best_end - p;
        if (text.len > KB_PASSAGE_CHARS && text.data[text.len - 1] != ' ')
            break; /* enough for shorten() */
        rc = clean_markdown_line(&text, body + p, len, KB_PASSAGE_CHARS);
        p += len + 1;
    }
    if (rc) {
        cd_buf_free(&text);
        return rc;
    }
    shorten(&text, KB_PASSAGE_CHARS);
    *out = text.data;
    return 0;
}

/* Returns 1 if a and b differ by at most one insertion, deletion, substitution or swap of
 * two neighbouring bytes. */
static int within_one_edit(const char *a, size_t na, const char *b, size_t nb)
{
    if (na > nb + 1 || nb > na + 1)
        return 0;
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    if (na == nb)
        return i == na || !memcmp(a + i + 1, b + i + 1, na - i - 1) ||
               (i + 1 < na && a[i] == b[i + 1] && a[i + 1] == b[i] &&
                !memcmp(a + i + 2, b + i + 2, na - i - 2));
    if (na > nb)
        return !memcmp(a + i + 1, b + i, nb - i);
    return !memcmp(a + i, b + i + 1, na - i);
}

static int stem_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int cmp = memcmp(a, b, na < nb ? na : nb);
    return cmp ? cmp : (na > nb) - (na < nb);
}

/* A term no article has may be a typo: replaces it with the most frequent known term one
 * edit away, if there is one (words of five bytes or more, a few per question). */
static void fix_typos(const struct df_map *m, struct kb_query *q)
{
    int n_fixes = 0;
    for (int i = 0; i < q->n_terms && n_fixes < KB_MAX_FIXES; i++) {
        struct kb_term *t = &q->terms[i];
        if (df_find((struct df_map *)m, t->stem, (size_t)t->n_stem, 0) || t->n_stem < 5)
            continue;
        n_fixes++;
        const struct df_entry *best = NULL;
        int64_t best_df = 0;
        /* Known stems one byte shorter, as long, or one longer; the most frequent wins, then
         * the first in byte order. */
        uint32_t sig = byte_sig(t->stem, (size_t)t->n_stem);
        for (int len = t->n_stem - 1; len <= t->n_stem + 1 && len <= TEXT_MAX_TOKEN; len++) {
            for (uint32_t k = 0; k < m->by_len[len].n; k++) {
                uint32_t diff = sig ^ m->by_len[len].sig[k];
                diff &= diff - 1;
                if (diff & (diff - 1))
                    continue; /* three bits or more differ */
                const char *stem = m->pool.data + m->by_len[len].at[k];
                if (!within_one_edit(t->stem, (size_t)t->n_stem, stem, (size_t)len))
                    continue;
                const struct df_entry *e = df_find((struct df_map *)m, stem, (size_t)len, 0);
                int64_t df = e ? entry_df(e) : 0;
                if (df > best_df ||
                    (df == best_df && df > 0 &&
                     stem_cmp(stem, (size_t)len, m->pool.data + best->stem_at, best->n_stem) < 0))
                    best = e, best_df = df;
            }
        }
        if (best && find_stem(q, m->pool.data + best->stem_at, best->n_stem) < 0) {
            memcpy(t->stem, m->pool.data + best->stem_at, best->n_stem);
            t->stem[best->n_stem] = '\0';
            t->n_stem = best->n_stem;
        }
    }
}

/* Looks up how many articles have each term (fts5vocab, per column), then picks the terms the
 * FTS5 query matches on so that it scores about KB_ROW_BUDGET rows at most, however large the
 * KB: rare terms first, in every column; a term too common for the budget matches only in
 * the title, questions and learned questions; one still too common is left out of the match
 * (it still counts in the question's weight and in stage two). A term matched only in those
 * columns still makes FTS5 read its whole doclist (the column filter is applied entry by
 * entry), which costs more than scoring the rows it finds: the terms matched may read about
 * KB_WALK_BUDGET doclist entries in all. The rarest term is always matched, so a question
 * with any known word finds something. */
static int choose_phrases(struct kb_lang_index *li, struct kb_query *q)
{
    int order[KB_MAX_QUERY_TERMS] = {0};
    if (!li->df_map->is_valid) {
        int rc = df_map_build(li);
        if (rc)
            return rc;
    }
    if (q->tune->fix_typos > 0)
        fix_typos(li->df_map, q);
    for (int i = 0; i < q->n_terms; i++) {
        struct kb_term *t = &q->terms[i];
        const struct df_entry *e = df_find(li->df_map, t->stem, (size_t)t->n_stem, 0);
        t->df = t->cost_head = 0;
        for (int c = 0; e && c < KB_N_COLS; c++) {
            if (e->col_df[c] > t->df)
                t->df = e->col_df[c]; /* at least this many articles have it */
            if (c < 3)
                t->cost_head += e->col_df[c];
        }
        /* Insertion sort by document frequency, rarest first. */
        int k = i;
        while (k > 0 && q->terms[order[k - 1]].df > t->df) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    int64_t used = 0, walked = 0;
    q->n_phrases = 0;
    q->stats = li->df_map;
    int is_small = li->df_map->n_rows <= KB_ROW_BUDGET; /* all of it is within budget */
    for (int k = 0; k < q->n_terms; k++) {
        const struct kb_term *t = &q->terms[order[k]];
        int is_first = q->n_phrases == 0, head_only;
        if (t->df == 0)
            continue; /* in no article: nothing to match */
        if (is_small || used + t->df <= KB_ROW_BUDGET || (is_first && t->cost_head == 0))
            head_only = 0;
        else if ((used + t->cost_head <= KB_ROW_BUDGET && walked + t->df <= KB_WALK_BUDGET) ||
                 is_first)
            head_only = 1;
        else
            continue;
        walked += t->df;
        used += head_only ? t->cost_head : t->df;
        q->is_head_only[q->n_phrases] = head_only;
        q->phrase_term[q->n_phrases++] = order[k];
    }
    query_seal(q);
    return 0;
}

/* One matched phrase's walk through its term's postings. */
struct post_cursor {
    const uint32_t *at, *end;        /* the current entry; the list's end */
    const uint32_t *inst, *inst_end; /* the instances of the row being scored */
    int term;
    int is_head_only;
};

/* Scores one row from the instances of the phrases it has (cursors with inst set), exactly as
 * kb_rank_fn() scores it from FTS5's; returns -1 if no instance counts (a head-only term
 * found only in the tags or body). */
static double score_row(const struct kb_query *q, const struct df_map *m, uint32_t rid,
                        struct post_cursor *cur, int n_cur)
{
    /* Most rows a head-only phrase walks have the term only in the tags or body. */
    int is_counted = 0;
    for (int i = 0; i < n_cur && !is_counted; i++)
        is_counted = cur[i].inst && (!cur[i].is_head_only || (*cur[i].inst >> POST_COL_SHIFT) < 3);
    if (!is_counted)
        return -1;
    int lens[KB_N_COLS];
    for (int c = 0; c < KB_N_COLS; c++)
        lens[c] = rid < m->n_lens ? m->lens[rid].len[c] : 0;
    struct row_score r;
    row_score_begin(q, &r, lens);
    int n_inst = 0;
    for (;;) {
        /* The next instance in column, then offset order over every phrase. */
        int best = -1;
        uint32_t best_v = UINT32_MAX;
        for (int i = 0; i < n_cur; i++) {
            struct post_cursor *p = &cur[i];
            if (!p->inst || p->inst == p->inst_end)
                continue;
            if (p->is_head_only && (*p->inst >> POST_COL_SHIFT) >= 3) {
                p->inst = p->inst_end; /* instances are in column order: no more */
                continue;
            }
            if (*p->inst < best_v) {
                best_v = *p->inst;
                best = i;
            }
        }
        if (best < 0)
            break;
        cur[best].inst++;
        n_inst++;
        int col = (int)(best_v >> POST_COL_SHIFT);
        if (col < KB_N_COLS)
            row_score_add(q, &r, cur[best].term, col, (int)(best_v & POST_MAX_OFF));
    }
    return n_inst ? row_score_end(q, &r) : -1;
}

/* Stage one from the in-memory postings: the rows any chosen phrase matches, each scored by
 * score_row(), the best KB_CANDIDATES kept (higher score first, then lower rowid). Gives the
 * same candidates and scores as the FTS5 query (test_kb checks), without reading doclists. */
static void search_memory(const struct df_map *m, struct kb_query *q, int lang_rank,
                          struct kb_candidate *cands, int *n_cands, int max_cands)
{
    struct post_cursor cur[KB_MAX_QUERY_TERMS];
    int n_cur = 0;
    query_set_weights(q, m->n_rows, m->tot_len);
    for (int i = 0; i < q->n_phrases; i++) {
        const struct kb_term *t = &q->terms[q->phrase_term[i]];
        const struct df_entry *e = df_find((struct df_map *)m, t->stem, (size_t)t->n_stem, 0);
        if (!e || m->posts[e->term_id].n == 0)
            continue;
        const struct postings *p = &m->posts[e->term_id];
        cur[n_cur] = (struct post_cursor){p->w, p->w + p->n,       NULL,
                                          NULL, q->phrase_term[i], q->is_head_only[i]};
        n_cur++;
    }
    struct kb_candidate top[KB_CANDIDATES];
    int n_top = 0, room = max_cands - *n_cands;
    if (room > KB_CANDIDATES)
        room = KB_CANDIDATES;
    for (;;) {
        uint32_t rid = UINT32_MAX;
        for (int i = 0; i < n_cur; i++)
            if (cur[i].at < cur[i].end && cur[i].at[0] < rid)
                rid = cur[i].at[0];
        if (rid == UINT32_MAX)
            break;
        for (int i = 0; i < n_cur; i++) {
            struct post_cursor *p = &cur[i];
            p->inst = p->inst_end = NULL;
            if (p->at < p->end && p->at[0] == rid) {
                p->inst = p->at + 2;
                p->inst_end = p->inst + p->at[1];
                p->at = p->inst_end;
            }
        }
        double score = score_row(q, m, rid, cur, n_cur);
        if (score < 0 || room <= 0)
            continue;
        /* Rows come in rowid order: a tie keeps the earlier row ahead. */
        if (n_top == room && score <= top[n_top - 1].stage1)
            continue;
        int k = n_top < room ? n_top++ : n_top - 1;
        while (k > 0 && top[k - 1].stage1 < score) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = (struct kb_candidate){.rid = rid, .stage1 = score, .lang_rank = lang_rank};
    }
    for (int i = 0; i < n_top; i++)
        cands[(*n_cands)++] = top[i];
}

/* Runs stage one on one language's table, appending candidates. */
static int search_lang(struct kb *kb, struct kb_lang_index *li, const char *question, int lang_rank,
                       struct kb_query *q, struct kb_candidate *cands, int *n_cands, int max_cands)
{
    memset(q, 0, sizeof *q);
    q->tune = &kb->tune;
    struct query_build b = {.q = q, .text = question};
    b.prev_start = b.prev_end = -1;
    kb_tok_tokenize(li->tok, question, strlen(question), query_term_cb, &b);
    if (q->n_terms == 0)
        return 0;
    if (q->tune->join_words > 0)
        add_joined_words(li, &b);
    int rc = choose_phrases(li, q);
    if (rc || q->n_phrases == 0)
        return rc;
    if (q->tune->mem_index > 0 && li->df_map->is_valid) {
        search_memory(li->df_map, q, lang_rank, cands, n_cands, max_cands);
        return 0;
    }
    struct cd_buf match = {0};
    rc = build_match(q, &match);
    if (rc) {
        cd_buf_free(&match);
        return rc;
    }
    sqlite3_stmt *st = li->search;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, match.data, (int)match.len, SQLITE_STATIC);
    sqlite3_bind_pointer(st, 2, q, "kb_query", NULL);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && *n_cands < max_cands) {
        struct kb_candidate *c = &cands[(*n_cands)++];
        c->rid = sqlite3_column_int64(st, 0);
        c->stage1 = sqlite3_column_double(st, 1);
        c->lang_rank = lang_rank;
    }
    /* A query FTS5 cannot parse is a question with no answer, never an error. */
    rc = step == SQLITE_ROW || step == SQLITE_DONE || step == SQLITE_ERROR ? 0 : sql_rc(step);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    cd_buf_free(&match);
    return rc;
}

/* Stage two for the candidates of one language: phrasing similarity, then the final score,
 * scaled to about [0, 1]. */
static int rescore(struct kb *kb, const struct kb_query *q, struct kb_candidate *cands, int n)
{
    const struct kb_tune *tn = &kb->tune;
    double scale = tn->w_stage1 * (1 + tn->proximity) + tn->w_phrasing * (1 + tn->phrasing_second);
    const struct df_map *m = q->stats && q->stats->is_valid ? q->stats : NULL;
    for (int i = 0; i < n; i++) {
        int64_t rid = cands[i].rid;
        if (m && rid >= 0 && rid < m->n_qterms && m->qterms[rid]) {
            cands[i].phrasing = best_phrasing(q, m->qterms[rid]);
        } else {
            sqlite3_stmt *st = stmt(kb, ST_HIT_INFO);
            sqlite3_bind_int64(st, 1, rid);
            if (sqlite3_step(st) == SQLITE_ROW)
                cands[i].phrasing = best_phrasing(q, col_text(st, 0));
            sqlite3_reset(st);
        }
        cands[i].score = tn->w_stage1 * cands[i].stage1 + tn->w_phrasing * cands[i].phrasing;
        if (scale > 0)
            cands[i].score /= scale;
    }
    return 0;
}

static int fill_hit(struct kb *kb, const struct kb_query *q, const struct kb_candidate *c,
                    struct kb_hit *hit)
{
    memset(hit, 0, sizeof *hit);
    sqlite3_stmt *st = stmt(kb, ST_HIT_BODY);
    sqlite3_bind_int64(st, 1, c->rid);
    int rc = CD_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(hit->id, sizeof hit->id, "%s", col_text(st, 0));
        snprintf(hit->lang, sizeof hit->lang, "%s", col_text(st, 2));
        hit->title = xstrdup(col_text(st, 1));
        hit->score = c->score;
        rc = hit->title ? best_passage(q, col_text(st, 3), col_text(st, 4), &hit->passage)
                        : CD_ENOMEM;
    }
    sqlite3_reset(st);
    if (rc) {
        free(hit->title);
        free(hit->passage);
        memset(hit, 0, sizeof *hit);
    }
    return rc;
}

int kb_search(struct kb *kb, const char *question, const char *lang, struct kb_hit *hits,
              int max_hits, int *n_hits)
{
    if (n_hits)
        *n_hits = 0;
    if (!kb || !question || !hits || !n_hits || max_hits < 0)
        return CD_EINVAL;
    if (max_hits == 0 || kb->n_langs == 0)
        return 0;
    if (max_hits > KB_CANDIDATES)
        max_hits = KB_CANDIDATES;
    /* The requested language first (English when none was asked for or it has no articles);
     * with no language asked for, the other languages' tables follow. */
    int rc = 0;
    struct kb_lang_index *first = NULL;
    char code[8];
    if (lang && *lang && lang_code(lang, code))
        first = lang_index(kb, code, 0, &rc);
    if (!first)
        first = lang_index(kb, "en", 0, &rc);
    struct kb_lang_index *order[KB_MAX_LANGS];
    int n_order = 0;
    if (first)
        order[n_order++] = first;
    if (!lang || !*lang || !first)
        for (int i = 0; i < kb->n_langs; i++)
            if (&kb->langs[i] != first)
                order[n_order++] = &kb->langs[i];
    struct kb_candidate cands[KB_CANDIDATES * 2];
    struct kb_query *queries = calloc((size_t)n_order, sizeof *queries);
    if (!queries)
        return CD_ENOMEM;
    int n_cands = 0, n = 0;
    /* One read transaction for the whole search: one snapshot, one lock. */
    int own_txn = sqlite3_get_autocommit(kb->db) && step_done(stmt(kb, ST_READ_BEGIN)) == 0;
    /* Another connection changed an index: the postings and counts must be read again. */
    sqlite3_stmt *gen = stmt(kb, ST_GENERATION);
    if (sqlite3_step(gen) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(gen, 0);
        if (v != kb->generation)
            invalidate_counts(kb);
        kb->generation = v;
    }
    sqlite3_reset(gen);
    for (int l = 0; l < n_order && n_cands < max_hits; l++) {
        int before = n_cands;
        rc = search_lang(kb, order[l], question, l, &queries[l], cands, &n_cands,
                         before + KB_CANDIDATES);
        if (rc)
            goto done;
        rescore(kb, &queries[l], cands + before, n_cands - before);
    }
    qsort(cands, (size_t)n_cands, sizeof cands[0], cmp_candidates);
    for (int i = 0; i < n_cands && n < max_hits; i++) {
        rc = fill_hit(kb, &queries[cands[i].lang_rank], &cands[i], &hits[n]);
        if (rc == CD_ENOTFOUND)
            continue;
        if (rc)
            goto done;
        n++;
    }
    rc = 0;
done:
    if (own_txn)
        step_done(stmt(kb, ST_READ_END));
    if (rc) {
        kb_hits_clear(hits, n);
        n = 0;
    }
    *n_hits = n;
    free(queries);
    return rc;
}

void kb_hits_clear(struct kb_hit *hits, int n_hits)
{
    if (!hits)
        return;
    for (int i = 0; i < n_hits; i++) {
        free(hits[i].title);
        free(hits[i].passage);
        hits[i].title = NULL;
        hits[i].passage = NULL;
    }
}

/* ---- loading: Markdown with front matter, JSON Lines ------------------------------------ */

static void report_error(struct kb_load_report *r, const char *file, int line, const char *msg)
{
    if (r) {
        r->n_skipped++;
        if (r->on_error) {
            r->on_error(r->ctx, file, line, msg);
            return;
        }
    }
    fprintf(stderr, "%s:%d: %s\n", file, line, msg);
}

static void report_warning(struct kb_load_report *r, const char *file, int line, const char *msg)
{
    if (r) {
        r->n_warnings++;
        if (r->on_warning) {
            r->on_warning(r->ctx, file, line, msg);
            return;
        }
    }
    fprintf(stderr, "%s:%d: warning: %s\n", file, line, msg);
}

static int push_str(char ***items, int *n, const char *s, size_t len)
{
    char **grown = realloc(*items, (size_t)(*n + 1) * sizeof **items);
    if (!grown)
        return CD_ENOMEM;
    *items = grown;
    if (!(grown[*n] = cd_strndup(s, len)))
        return CD_ENOMEM;
    (*n)++;
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

/* Unquotes a scalar: "..." (with \" and \\ escapes) or '...' ('' is a quote), or as is.
 * Returns a new string, or NULL with msg set. */
static char *scalar_value(const char *s, size_t n, char *msg, size_t cap)
{
    trim(&s, &n);
    if (n && (s[0] == '"' || s[0] == '\'')) {
        char q = s[0];
        struct cd_buf b = {0};
        size_t i = 1;
        int closed = 0;
        for (; i < n; i++) {
            char c = s[i];
            if (q == '"' && c == '\\' && i + 1 < n) {
                c = s[++i];
                c = c == 'n' ? ' ' : c == 't' ? ' ' : c;
            } else if (c == q) {
                if (q == '\'' && i + 1 < n && s[i + 1] == '\'') {
                    i++;
                } else {
                    closed = 1;
                    i++;
                    break;
                }
            }
            if (cd_buf_append(&b, &c, 1)) {
                cd_buf_free(&b);
                snprintf(msg, cap, "out of memory");
                return NULL;
            }
        }
        const char *rest = s + i;
        size_t n_rest = n - i;
        trim(&rest, &n_rest);
        if (!closed || n_rest) {
            cd_buf_free(&b);
            snprintf(msg, cap, closed ? "text after the closing quote" : "unterminated quote");
            return NULL;
        }
        if (!b.data)
            return xstrdup("");
        return b.data;
    }
    return cd_strndup(s, n);
}

/* Parses an inline list "[a, "b, c", d]" into items. */
static int inline_list(const char *s, size_t n, char ***items, int *n_items, char *msg, size_t cap)
{
    trim(&s, &n);
    if (n < 2 || s[0] != '[' || s[n - 1] != ']') {
        snprintf(msg, cap, "expected a list like [a, b]");
        return CD_EPARSE;
    }
    s++;
    n -= 2;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        char q = 0;
        while (j < n && s[j] == ' ')
            j++;
        if (j < n && (s[j] == '"' || s[j] == '\''))
            q = s[j];
        size_t k = j + (q ? 1 : 0);
        while (k < n && (q ? s[k] != q : s[k] != ','))
            k++;
        if (q) {
            if (k >= n) {
                snprintf(msg, cap, "unterminated quote in list");
                return CD_EPARSE;
            }
            k++;
            while (k < n && s[k] != ',')
                k++;
        }
        char *v = scalar_value(s + i, k - i, msg, cap);
        if (!v)
            return CD_EPARSE;
        int rc = 0;
        if (*v) {
            char **grown = realloc(*items, (size_t)(*n_items + 1) * sizeof **items);
            if (!grown)
                rc = CD_ENOMEM;
            else {
                *items = grown;
                grown[(*n_items)++] = v;
                v = NULL;
            }
        }
        free(v);
        if (rc)
            return rc;
        i = k + 1;
    }
    return 0;
}

/* Parses one Markdown article with front matter (see docs/kb.md). On failure returns
 * CD_EPARSE with the message and the 1-based line in *err_line. */
static int parse_markdown(const char *text, size_t len, struct kb_article *a, char *msg, size_t cap,
                          int *err_line)
{
    memset(a, 0, sizeof *a);
    a->is_published = 1;
    *err_line = 1;
    const char *p = text, *end = text + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
        p += 3; /* byte order mark */
    int line_no = 1;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t first_len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    const char *first = p;
    trim(&first, &first_len);
    if (first_len != 3 || memcmp(first, "---", 3)) {
        snprintf(msg, cap, "expected front matter starting with '---'");
        return CD_EPARSE;
    }
    p = nl ? nl + 1 : end;
    char ***list = NULL; /* the list "- item" lines belong to */
    int *n_list = NULL;
    int closed = 0, rc = 0;
    char *status = NULL;
    int line_id = 1, line_title = 1, line_lang = 1, line_tags = 1, line_questions = 1;
    int line_status = 1;
    while (p < end) {
        line_no++;
        *err_line = line_no;
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p;
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p = nl ? nl + 1 : end;
        trim(&s, &n);
        if (n == 3 && !memcmp(s, "---", 3)) {
            closed = 1;
            break;
        }
        if (n == 0 || s[0] == '#')
            continue;
        if (s[0] == '-' && (n == 1 || s[1] == ' ')) {
            if (!list) {
                snprintf(msg, cap, "list item outside 'tags:' or 'questions:'");
                rc = CD_EPARSE;
                goto fail;
            }
            char *v = scalar_value(s + 1, n - 1, msg, cap);
            if (!v) {
                rc = CD_EPARSE;
                goto fail;
            }
            if (*v) {
                char **grown = realloc(*list, (size_t)(*n_list + 1) * sizeof **list);
                if (!grown) {
                    free(v);
                    rc = CD_ENOMEM;
                    snprintf(msg, cap, "out of memory");
                    goto fail;
                }
                *list = grown;
                grown[(*n_list)++] = v;
            } else
                free(v);
            continue;
        }
        const char *colon = memchr(s, ':', n);
        if (!colon) {
            snprintf(msg, cap, "expected 'key: value'");
            rc = CD_EPARSE;
            goto fail;
        }
        size_t key_len = (size_t)(colon - s);
        const char *key = s;
        trim(&key, &key_len);
        const char *val = colon + 1;
        size_t val_len = n - (size_t)(val - s);
        trim(&val, &val_len);
        list = NULL;
        n_list = NULL;
#define KEY_IS(k) (key_len == strlen(k) && !memcmp(key, k, key_len))
        if (KEY_IS("tags") || KEY_IS("questions")) {
            *(KEY_IS("tags") ? &line_tags : &line_questions) = line_no;
            char ***items = KEY_IS("tags") ? &a->tags : &a->questions;
            int *n_items = KEY_IS("tags") ? &a->n_tags : &a->n_questions;
            if (*items) {
                snprintf(msg, cap, "duplicate key '%.*s'", (int)key_len, key);
                rc = CD_EPARSE;
                goto fail;
            }
            if (val_len == 0) {
                list = items;
                n_list = n_items;
                if (!(*items = calloc(1, sizeof **items))) {
                    rc = CD_ENOMEM;
                    goto fail;
                }
            } else if ((rc = inline_list(val, val_len, items, n_items, msg, cap)))
                goto fail;
            continue;
        }
        char **field = KEY_IS("id")       ? &a->id
                       : KEY_IS("title")  ? &a->title
                       : KEY_IS("lang")   ? &a->lang
                       : KEY_IS("status") ? &status
                                          : NULL;
#undef KEY_IS
        if (field == &a->id)
            line_id = line_no;
        else if (field == &a->title)
            line_title = line_no;
        else if (field == &a->lang)
            line_lang = line_no;
        else if (field == &status)
            line_status = line_no;
        if (!field) {
            snprintf(msg, cap, "unknown key '%.*s' (id, title, lang, tags, questions, status)",
                     (int)(key_len > 40 ? 40 : key_len), key);
            rc = CD_EPARSE;
            goto fail;
        }
        if (*field) {
            snprintf(msg, cap, "duplicate key '%.*s'", (int)key_len, key);
            rc = CD_EPARSE;
            goto fail;
        }
        if (!(*field = scalar_value(val, val_len, msg, cap))) {
            rc = CD_EPARSE;
            goto fail;
        }
    }
    if (!closed) {
        *err_line = 1;
        snprintf(msg, cap, "front matter is not closed with '---'");
        rc = CD_EPARSE;
        goto fail;
    }
    if (status) {
        if (!strcmp(status, "published"))
            a->is_published = 1;
        else if (!strcmp(status, "draft"))
            a->is_published = 0;
        else {
            *err_line = line_status;
            snprintf(msg, cap, "status must be 'draft' or 'published', not '%.40s'", status);
            rc = CD_EPARSE;
            goto fail;
        }
    }
    *err_line = line_no + 1;
    while (p < end && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t'))
        p++;
    size_t body_len = (size_t)(end - p);
    while (body_len && (p[body_len - 1] == '\n' || p[body_len - 1] == '\r' ||
                        p[body_len - 1] == ' ' || p[body_len - 1] == '\t'))
        body_len--;
    if (!(a->body = cd_strndup(p, body_len))) {
        rc = CD_ENOMEM;
        goto fail;
    }
    if (!a->lang && !(a->lang = xstrdup("en"))) {
        rc = CD_ENOMEM;
        goto fail;
    }
    /* Report what kb_put() would refuse at the line of the field at fault. */
    if ((rc = article_check(a, msg, cap))) {
        *err_line = strstr(msg, " id") || !strncmp(msg, "invalid id", 10) ? line_id
                    : strstr(msg, "title")                                ? line_title
                    : strstr(msg, "lang")                                 ? line_lang
                    : strstr(msg, "tag")                                  ? line_tags
                    : strstr(msg, "question")                             ? line_questions
                                                                          : *err_line;
        rc = CD_EPARSE;
        goto fail;
    }
    free(status);
    return 0;
fail:
    free(status);
    kb_article_clear(a);
    if (rc == CD_ENOMEM)
        snprintf(msg, cap, "out of memory");
    return rc;
}

static int json_string_list(json_t *v, char ***items, int *n_items, const char *what, char *msg,
                            size_t cap)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) /* "tags": "orders" is a list of one */
        return push_str(items, n_items, json_string_value(v), json_string_length(v));
    if (!json_is_array(v)) {
        snprintf(msg, cap, "\"%s\" must be a list of strings", what);
        return CD_EPARSE;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            snprintf(msg, cap, "\"%s\" must be a list of strings", what);
            return CD_EPARSE;
        }
        int rc = push_str(items, n_items, json_string_value(item), json_string_length(item));
        if (rc)
            return rc;
    }
    return 0;
}

static int json_field(json_t *obj, const char *key, char **out, int required, char *msg, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(msg, cap, "missing \"%s\"", key);
            return CD_EPARSE;
        }
        return 0;
    }
    if (json_is_integer(v) && !strcmp(key, "id")) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        *out = xstrdup(num);
    } else if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            snprintf(msg, cap, "\"%s\" contains a NUL character", key);
            return CD_EPARSE;
        }
        *out = cd_strndup(json_string_value(v), json_string_length(v));
    } else {
        snprintf(msg, cap, "\"%s\" must be a string", key);
        return CD_EPARSE;
    }
    return *out ? 0 : CD_ENOMEM;
}

/* A strict reader for the common shape of an article line: one object whose values are
 * strings, lists of strings, integers (an id) or null, with any other value skipped. It
 * accepts only valid JSON and gives up (returns 1) on anything it does not handle, so
 * jansson then reads the line and reports what is wrong with it. */
struct fast_json {
    const char *p, *end;
};

static void fj_ws(struct fast_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int fj_hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 1;
    }
    *out = v;
    return 0;
}

/* Reads a string at j->p (the opening quote) into a new NUL-terminated buffer (NULL: only
 * skip it). Returns 0, or 1 to give up. */
static int fj_string(struct fast_json *j, char **out)
{
    if (j->p >= j->end || *j->p != '"')
        return 1;
    const char *s = ++j->p;
    const char *q = s;
    while (q < j->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    if (q < j->end && *q == '"') { /* no escapes: the common case */
        j->p = q + 1;
        if (out && !(*out = cd_strndup(s, (size_t)(q - s))))
            return 1;
        return 0;
    }
    char *buf = out ? malloc((size_t)(j->end - s) + 1) : NULL;
    size_t n = 0;
    if (out && !buf)
        return 1;
    for (q = s; q < j->end && *q != '"';) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20)
            goto fail;
        if (c != '\\') {
            if (buf)
                buf[n++] = (char)c;
            q++;
            continue;
        }
        if (q + 1 >= j->end)
            goto fail;
        char e = q[1];
        q += 2;
        char plain = e == '"'    ? '"'
                     : e == '\\' ? '\\'
                     : e == '/'  ? '/'
                     : e == 'b'  ? '\b'
                     : e == 'f'  ? '\f'
                     : e == 'n'  ? '\n'
                     : e == 'r'  ? '\r'
                     : e == 't'  ? '\t'
                                 : 0;
        if (plain) {
            if (buf)
                buf[n++] = plain;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || j->end - q < 4 || fj_hex4(q, &cp))
            goto fail;
        q += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (j->end - q < 6 || q[0] != '\\' || q[1] != 'u' || fj_hex4(q + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                goto fail;
            q += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0)
            goto fail; /* a lone surrogate or a NUL: let jansson say so */
        if (!buf)
            continue;
        if (cp < 0x80)
            buf[n++] = (char)cp;
        else if (cp < 0x800) {
            buf[n++] = (char)(0xC0 | (cp >> 6));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[n++] = (char)(0xE0 | (cp >> 12));
            buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            buf[n++] = (char)(0xF0 | (cp >> 18));
            buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    if (q >= j->end)
        goto fail;
    j->p = q + 1;
    if (buf) {
        buf[n] = '\0';
        *out = buf;
    }
    return 0;
fail:
    free(buf);
    return 1;
}

/* Reads an integer (an id) into a new string, or skips a number if out is NULL. */
static int fj_number(struct fast_json *j, char **out)
{
    const char *s = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    const char *digits = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    if (j->p == digits || (*digits == '0' && j->p - digits > 1))
        return 1;
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return 1; /* fractions and exponents: jansson */
    if (out && !(*out = cd_strndup(s, (size_t)(j->p - s))))
        return 1;
    return 0;
}

static int fj_literal(struct fast_json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
        return 1;
    j->p += n;
    return 0;
}

/* Reads a list of strings (or one string, or null) into items. */
static int fj_string_list(struct fast_json *j, char ***items, int *n_items)
{
    if (j->p < j->end && *j->p == 'n')
        return fj_literal(j, "null");
    if (j->p < j->end && *j->p == '"') {
        char *v = NULL;
        if (fj_string(j, &v))
            return 1;
        int rc = push_str(items, n_items, v, strlen(v));
        free(v);
        return rc ? 1 : 0;
    }
    if (j->p >= j->end || *j->p != '[')
        return 1;
    j->p++;
    fj_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        char *v = NULL;
        fj_ws(j);
        if (fj_string(j, &v))
            return 1;
        char **grown = realloc(*items, (size_t)(*n_items + 1) * sizeof **items);
        if (!grown) {
            free(v);
            return 1;
        }
        *items = grown;
        grown[(*n_items)++] = v;
        fj_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 0;
        }
        return 1;
    }
}

static int parse_json_fast(const char *line, size_t n, struct kb_article *a, char **status)
{
    struct fast_json j = {line, line + n};
    char **fields[] = {&a->id, &a->title, &a->body, &a->lang, status};
    static const char *const names[] = {"id", "title", "body", "lang", "status"};
    int seen_tags = 0, seen_questions = 0;
    fj_ws(&j);
    if (j.p >= j.end || *j.p++ != '{')
        return 1;
    fj_ws(&j);
    if (j.p < j.end && *j.p == '}')
        j.p++;
    else
        for (;;) {
            char *key = NULL;
            fj_ws(&j);
            if (fj_string(&j, &key))
                return 1;
            fj_ws(&j);
            int rc = j.p < j.end && *j.p == ':' ? 0 : 1;
            j.p++;
            fj_ws(&j);
            int k = 0;
            while (!rc && k < 5 && strcmp(key, names[k]))
                k++;
            if (rc) {
            } else if (k < 5) {
                if (*fields[k])
                    rc = 1; /* a duplicate key */
                else if (j.p < j.end && *j.p == 'n')
                    rc = fj_literal(&j, "null");
                else if (j.p < j.end && *j.p == '"')
                    rc = fj_string(&j, fields[k]);
                else
                    rc = k == 0 ? fj_number(&j, fields[k]) : 1;
            } else if (!strcmp(key, "tags")) {
                rc = seen_tags++ ? 1 : fj_string_list(&j, &a->tags, &a->n_tags);
            } else if (!strcmp(key, "questions")) {
                rc = seen_questions++ ? 1 : fj_string_list(&j, &a->questions, &a->n_questions);
            } else
                rc = 1; /* draft, published, locale, unknown keys: jansson's path */
            free(key);
            if (rc)
                return 1;
            fj_ws(&j);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                continue;
            }
            if (j.p < j.end && *j.p == '}') {
                j.p++;
                break;
            }
            return 1;
        }
    fj_ws(&j);
    return j.p == j.end ? 0 : 1;
}

/* The keys of a JSON Lines article, for warnings about the others. */
#define JSONL_KEYS "id, title, body, lang (or locale), tags, questions, status, draft, published"

/* Reads the optional boolean key of obj into *out (-1 when absent or null). */
static int json_bool(json_t *obj, const char *key, int *out, char *msg, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    *out = -1;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(msg, cap, "\"%s\" must be true or false", key);
        return CD_EPARSE;
    }
    *out = json_is_true(v);
    return 0;
}

/* Parses one JSON Lines record into an article. The keys it does not know are listed in
 * unknown (cap_unknown bytes, "" when none) for the caller to warn about. */
static int parse_json_article(const char *line, size_t n, struct kb_article *a, char *msg,
                              size_t cap, char *unknown, size_t cap_unknown)
{
    unknown[0] = '\0';
    memset(a, 0, sizeof *a);
    char *status = NULL;
    if (parse_json_fast(line, n, a, &status) == 0) {
        int rc = 0;
        if (status && strcmp(status, "published") && strcmp(status, "draft")) {
            snprintf(msg, cap, "\"status\" must be \"draft\" or \"published\"");
            rc = CD_EPARSE;
        }
        a->is_published = !status || !strcmp(status, "published");
        free(status);
        if (!rc && !a->lang && !(a->lang = xstrdup("en")))
            rc = CD_ENOMEM;
        if (!rc && (!a->id || !a->title || !a->body)) {
            snprintf(msg, cap, "missing \"%s\"", !a->id ? "id" : !a->title ? "title" : "body");
            rc = CD_EPARSE;
        }
        if (!rc && article_check(a, msg, cap))
            rc = CD_EPARSE;
        if (rc == CD_ENOMEM)
            snprintf(msg, cap, "out of memory");
        if (rc)
            kb_article_clear(a);
        return rc;
    }
    /* Anything the fast reader did not take: jansson reads it and says what is wrong. */
    kb_article_clear(a);
    free(status);
    status = NULL;
    a->is_published = 1;
    json_error_t jerr;
    json_t *obj = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        snprintf(msg, cap, "invalid JSON: %s", jerr.text);
        return CD_EPARSE;
    }
    int rc = 0;
    if (!json_is_object(obj)) {
        snprintf(msg, cap, "expected a JSON object");
        rc = CD_EPARSE;
        goto done;
    }
    if ((rc = json_field(obj, "id", &a->id, 1, msg, cap)) ||
        (rc = json_field(obj, "title", &a->title, 1, msg, cap)) ||
        (rc = json_field(obj, "body", &a->body, 1, msg, cap)) ||
        (rc = json_field(obj, "lang", &a->lang, 0, msg, cap)) ||
        (rc = json_field(obj, "status", &status, 0, msg, cap)))
        goto done;
    if ((rc = json_string_list(json_object_get(obj, "tags"), &a->tags, &a->n_tags, "tags", msg,
                               cap)) ||
        (rc = json_string_list(json_object_get(obj, "questions"), &a->questions, &a->n_questions,
                               "questions", msg, cap)))
        goto done;
    if (status && strcmp(status, "published") && strcmp(status, "draft")) {
        snprintf(msg, cap, "\"status\" must be \"draft\" or \"published\"");
        rc = CD_EPARSE;
        goto done;
    }
    /* "locale" means "lang"; "draft" and "published" mean "status", and must agree with it. */
    char *locale = NULL;
    if ((rc = json_field(obj, "locale", &locale, 0, msg, cap)))
        goto done;
    if (locale && a->lang && strcmp(locale, a->lang)) {
        snprintf(msg, cap, "\"lang\" and \"locale\" differ");
        free(locale);
        rc = CD_EPARSE;
        goto done;
    }
    if (locale && !a->lang)
        a->lang = locale;
    else
        free(locale);
    int is_draft, is_published;
    if ((rc = json_bool(obj, "draft", &is_draft, msg, cap)) ||
        (rc = json_bool(obj, "published", &is_published, msg, cap)))
        goto done;
    int wants = status ? !strcmp(status, "published") : -1;
    if ((is_draft >= 0 && is_published >= 0 && is_draft == is_published) ||
        (wants >= 0 &&
         ((is_draft >= 0 && is_draft == wants) || (is_published >= 0 && is_published != wants)))) {
        snprintf(msg, cap, "\"status\", \"draft\" and \"published\" disagree");
        rc = CD_EPARSE;
        goto done;
    }
    if (wants < 0)
        wants = is_published >= 0 ? is_published : is_draft >= 0 ? !is_draft : 1;
    a->is_published = wants;
    static const char *const known[] = {"id",   "title",     "body",   "lang",  "locale",
                                        "tags", "questions", "status", "draft", "published"};
    const char *key;
    json_t *value;
    size_t used = 0;
    json_object_foreach(obj, key, value)
    {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(key, known[k]))
            k++;
        if (k < sizeof known / sizeof known[0] || used + 8 >= cap_unknown)
            continue;
        int w = snprintf(unknown + used, cap_unknown - used, "%s'%.40s'", used ? ", " : "", key);
        used = w > 0 && (size_t)w < cap_unknown - used ? used + (size_t)w : cap_unknown - 1;
    }
    (void)value;
    if (!a->lang && !(a->lang = xstrdup("en"))) {
        rc = CD_ENOMEM;
        goto done;
    }
    if (article_check(a, msg, cap))
        rc = CD_EPARSE;
done:
    if (rc == CD_ENOMEM)
        snprintf(msg, cap, "out of memory");
    if (rc)
        kb_article_clear(a);
    free(status);
    json_decref(obj);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int load_article(struct kb *kb, struct kb_article *a, const char *file, int line,
                        struct kb_load_report *r)
{
    int rc = kb_put(kb, a);
    if (rc) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot store article '%.60s': %s", a->id, cd_strerror(rc));
        report_error(r, file, line, msg);
    } else {
        kb->n_bulk_stored++;
        if (r)
            r->n_loaded++;
    }
    /* kb_put() checks before it writes: anything but a refused article is a failed write,
     * and the load's transaction must be rolled back. */
    return rc == CD_EINVAL ? 0 : rc;
}

static int load_jsonl(struct kb *kb, const char *file, const char *text, size_t len,
                      struct kb_load_report *r)
{
    int line_no = 0, rc = 0;
    for (const char *p = text; p < text + len && !rc;) {
        line_no++;
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        const char *line = p;
        p = nl ? nl + 1 : text + len;
        if (is_blank(line, n))
            continue;
        char msg[200];
        struct kb_article a;
        if (!cd_utf8_valid(line, n)) {
            report_error(r, file, line_no, "line is not valid UTF-8");
            continue;
        }
        char unknown[200];
        int prc = parse_json_article(line, n, &a, msg, sizeof msg, unknown, sizeof unknown);
        if (prc == CD_ENOMEM)
            return prc;
        if (prc) {
            report_error(r, file, line_no, msg);
            continue;
        }
        if (unknown[0]) {
            snprintf(msg, sizeof msg, "ignored unknown key%s %s (known: " JSONL_KEYS ")",
                     strchr(unknown, ',') ? "s" : "", unknown);
            report_warning(r, file, line_no, msg);
        }
        rc = load_article(kb, &a, file, line_no, r);
        kb_article_clear(&a);
    }
    return rc;
}

static int load_file(struct kb *kb, const char *path, struct kb_load_report *r)
{
    size_t len = 0;
    char *text = cd_read_file(path, &len);
    if (!text) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot read: %s", strerror(errno));
        report_error(r, path, 0, msg);
        return 0;
    }
    int rc = 0;
    if (ends_with(path, ".jsonl")) {
        rc = load_jsonl(kb, path, text, len, r);
    } else {
        char msg[200];
        int line = 1;
        struct kb_article a;
        if (!cd_utf8_valid(text, len) || strlen(text) != len) {
            int bad = 1;
            for (const char *p = text; p < text + len; bad++) {
                const char *nl = memchr(p, '\n', (size_t)(text + len - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
                if (!cd_utf8_valid(p, n) || memchr(p, '\0', n))
                    break;
                p = nl ? nl + 1 : text + len;
            }
            report_error(r, path, bad, "not valid UTF-8 text");
        } else if ((rc = parse_markdown(text, len, &a, msg, sizeof msg, &line)) == CD_ENOMEM) {
            /* reported by the caller */
        } else if (rc) {
            report_error(r, path, line, msg);
            rc = 0;
        } else {
            rc = load_article(kb, &a, path, 1, r);
            kb_article_clear(&a);
        }
    }
    free(text);
    return rc;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int kb_load_path(struct kb *kb, const char *path, struct kb_load_report *report)
{
    if (!kb || !path)
        return CD_EINVAL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return CD_ENOTFOUND;
    /* One transaction for the whole load: fast, and a crash loads nothing half-way. */
    int rc = sqlite3_get_autocommit(kb->db)
                 ? (sqlite3_exec(kb->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : CD_EIO)
                 : 1;
    if (rc < 0)
        return rc;
    int own_txn = rc == 0;
    rc = 0;
    kb->is_bulk = own_txn;
    kb->n_bulk_stored = 0;
    if (!S_ISDIR(sb.st_mode)) {
        rc = load_file(kb, path, report);
    } else {
        DIR *dir = opendir(path);
        if (!dir)
            rc = CD_EIO;
        char **names = NULL;
        int n_names = 0;
        struct dirent *de;
        while (!rc && (de = readdir(dir)) != NULL && n_names < KB_MAX_DIR_FILES) {
            if (de->d_name[0] == '.' ||
                !(ends_with(de->d_name, ".md") || ends_with(de->d_name, ".jsonl")))
                continue;
            rc = push_str(&names, &n_names, de->d_name, strlen(de->d_name));
        }
        if (dir)
            closedir(dir);
        if (names)
            qsort(names, (size_t)n_names, sizeof *names, cmp_names);
        struct cd_buf full = {0};
        for (int i = 0; i < n_names && !rc; i++) {
            cd_buf_reset(&full);
            if (cd_buf_printf(&full, "%s/%s", path, names[i]))
                rc = CD_ENOMEM;
            else if (!stat(full.data, &sb) && S_ISREG(sb.st_mode))
                rc = load_file(kb, full.data, report);
        }
        cd_buf_free(&full);
        for (int i = 0; i < n_names; i++)
            free(names[i]);
        free(names);
    }
    kb->is_bulk = 0;
    /* A large load leaves each FTS5 index in many segments, and every query term then merges
     * one doclist per segment: merged into one, queries cost about a fifth less. */
    for (int i = 0; own_txn && !rc && kb->n_bulk_stored >= KB_OPTIMIZE_MIN && i < kb->n_langs;
         i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO fts_%s(fts_%s) VALUES('optimize')",
                 kb->langs[i].lang, kb->langs[i].lang);
        if (sqlite3_exec(kb->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = CD_EIO;
    }
    if (own_txn) {
        if (rc) {
            sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
            invalidate_counts(kb);
        } else if (sqlite3_exec(kb->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            rc = CD_EIO;
    }
    return rc;
}
