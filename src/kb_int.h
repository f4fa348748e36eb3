/* kb_int: what the files of the knowledge base share and nothing else sees: limits, the
 * ranking parameters, the query, the per-language index, the in-memory postings, the state of
 * an indexing write (struct capture) and struct kb itself. kb.c opens the KB and stores
 * articles; kb_index.c keeps the FTS5 tables and postings; kb_search.c ranks; kb_passage.c
 * chooses the passage; kb_load.c reads files. Include only from src/kb*.c. */
#ifndef CD_KB_INT_H
#define CD_KB_INT_H

#include "kb.h"

#include "cd.h"
#include "text.h"

#include "sql.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

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
#define KB_MAX_FIXES KB_TYPO_TRIES /* unknown words per question tried as typos (kb.h) */
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
    ST_PASSAGE,
    ST_COUNT_STMTS
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
    int64_t n_index_reads; /* kb_df_map_build() calls (kb_index_reads()) */
    int is_bulk;           /* inside kb_load_path()'s transaction: no savepoint per article */
    /* kb_set_journal(): told of each change before it is made here; not while kb_apply()
     * makes another node's change (is_applying) or kb_load_path() loads files (is_bulk). */
    int (*journal)(void *ctx, const char *op);
    void *journal_ctx;
    int is_applying;
    int n_bulk_stored; /* articles stored in that transaction */
    struct stem_set stem_set;
    fts5_api *fts;
    sqlite3_stmt *st[ST_COUNT_STMTS];
    struct kb_lang_index langs[KB_MAX_LANGS];
    int n_langs;
    struct kb_tune tune;
    /* The last search's queries, one per language searched, for kb_hit_passage(). */
    struct kb_query *last_queries;
    int n_last_queries;
    uint64_t n_searches;
};

#define CAPTURED_COL(c) ((c) == 0 || (c) == 1 || (c) == 4) /* title, questions, body */

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
        uint32_t *sig; /* ... and their kb_byte_sig() */
        uint32_t n, cap;
    } by_len[TEXT_MAX_TOKEN + 1];
};

/* A block of the body: a paragraph (lines up to a blank line or heading), or a heading. */
struct kb_block {
    size_t start, end; /* byte range in the body */
    int is_heading;
};

/* kb_tok: a text.h tokenizer for one language, and the kb an FTS5 instance reports to. */
struct kb_tok;

/* ---- kb.c: SQLite helpers, article checks, writes ---- */

/* Frees the n strings of v and v itself; v may be NULL. */
void kb_strings_free(char **v, size_t n);
sqlite3_stmt *kb_stmt(struct kb *kb, enum kb_stmt which);
/* What kb_put() refuses in an article: 0, or CD_EINVAL with msg (cap bytes) saying why and
 * *field (when field is not NULL) naming the field at fault: "id", "title", "lang", "body",
 * "tags" or "questions". */
int kb_article_check(const struct kb_article *a, char *msg, size_t cap, const char **field);

/* kb_load.c: an article from one JSON object (JSON Lines' keys). 0, or CD_EPARSE / CD_ENOMEM
 * with msg set. */
int kb_article_parse_json(const char *text, size_t n, struct kb_article *a, char *msg, size_t cap);

/* kb_journal.c: journals a change (kb->journal) unless none is wanted now. 0 or CD_E*. */
int kb_journal_put(struct kb *kb, const struct kb_article *a, int64_t updated_s);
int kb_journal_delete(struct kb *kb, const char *id);
int kb_journal_learn(struct kb *kb, const char *question, const char *article_id);
int kb_join_lines(struct cd_buf *b, char *const *items, int n);
void kb_invalidate_counts(struct kb *kb);

/* ---- kb_index.c: tokenizer, postings, per-language tables, indexing ---- */

void kb_capture_free(struct capture *cap);
int kb_tok_tokenize(struct kb_tok *kt, const char *s, size_t n, text_token_cb cb, void *ctx);
uint32_t kb_byte_sig(const char *s, size_t n);
struct df_entry *kb_df_find(struct df_map *m, const char *stem, size_t n, int create);
void kb_lang_index_clear(struct kb_lang_index *li);
int kb_df_map_build(struct kb_lang_index *li);
struct kb_lang_index *kb_lang_index_get(struct kb *kb, const char *lang, int create, int *rc_out);
int kb_index_article(struct kb *kb, sqlite3_int64 rid, const struct kb_article *a);
int kb_unindex_article(struct kb *kb, sqlite3_int64 rid, const char *lang);
extern const fts5_tokenizer kb_snowball_tokenizer;

/* ---- kb_search.c: ranking ---- */

void kb_rank_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int n_args,
                sqlite3_value **args);
int kb_find_stem(const struct kb_query *q, const char *s, size_t n);
/* Builds the query for the question in li's language: its terms (with joined words and typo
 * repair as tuned) and the phrases stage one matches, with each term's document frequency.
 * The terms are the stems the question's analysis holds when it was made for li's language,
 * else li's tokenizer splits question->text itself (an analysis with no language holds only
 * the text). q->n_terms is 0 for a question with no searchable word. Returns 0 or CD_E*. */
int kb_query_build(struct kb *kb, struct kb_lang_index *li, const struct text_analysis *question,
                   struct kb_query *q);
/* Fills the idf of a built query's terms from its language's in-memory counts. */
void kb_query_weigh(struct kb_query *q);

/* ---- kb_passage.c: passages ---- */

int kb_is_blank(const char *s, size_t n);
int kb_next_block(const char *body, size_t n, size_t *pos, struct kb_block *out);
int kb_best_passage(const struct kb_query *q, const char *body, const char *pstems, char **out);

#endif
