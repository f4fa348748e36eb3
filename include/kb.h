/* kb: the knowledge base: articles (Markdown with front matter, or JSON
 * Lines), their revisions, and the SQLite FTS5 index (snowball tokenizer,
 * built on text.h) that finds the right article and the passage in it that
 * answers a customer's question.
 *
 * A struct kb owns one SQLite connection (WAL) to a database file, or to
 * ":memory:". It is used from one thread at a time. Functions return 0 or a
 * negative CD_E* code; strings they hand out are malloc'd and freed by the
 * caller (kb_article_clear(), kb_hits_clear(), free() for kb_passage()).
 * One rule per concept: kb_id_valid() for ids, kb_passage() (and the same
 * choice inside kb_search()) for the passage that answers. Built from kb.c,
 * kb_index.c, kb_search.c, kb_passage.c and kb_load.c (docs/architecture.md). */
#ifndef CD_KB_H
#define CD_KB_H

#include <stddef.h>
#include <stdint.h>

struct kb;
struct text_analysis;

#define KB_ID_MAX 128

struct kb_article {
    char *id; /* stable slug, e.g. "returns-how-to" */
    char *title;
    char *lang; /* ISO 639-1, default "en" */
    char *body; /* Markdown */
    char **tags;
    int n_tags;
    char **questions; /* alternate phrasings customers use */
    int n_questions;
    int is_published; /* 0 = draft */
    int revision;     /* filled in by kb_get() */
    int64_t updated_s;
};

struct kb_hit {
    char id[KB_ID_MAX];
    char *title;   /* owned by the hit */
    char *passage; /* the paragraph or section that best answers the question */
    char lang[8];
    double score; /* higher is better; comparable within one result list */
    double match; /* in [0, 1]: how closely the question matches the article's closest
                   * phrasing (its title, a question, a learned question); 1 for the same
                   * words, whatever their order */
    /* Where the hit came from, for kb_hit_passage(): the search and the row (the KB's own;
     * callers leave them alone). */
    uint64_t search;
    int64_t rid;
    int lang_rank;
};

/* A problem met while loading articles: file, line and what is wrong. */
struct kb_load_report {
    int n_loaded;
    int n_skipped;
    /* Called once per skipped article or line, may be NULL (then printed to
     * stderr as "FILE:LINE: MESSAGE"). */
    void (*on_error)(void *ctx, const char *file, int line, const char *message);
    void *ctx;
    /* Loaded, but with something ignored (a JSON Lines key the loader does not know): called
     * once per line, may be NULL (then printed to stderr as "FILE:LINE: warning: MESSAGE"). */
    int n_warnings;
    void (*on_warning)(void *ctx, const char *file, int line, const char *message);
};

/* Opens (creating and migrating if needed) the KB in the SQLite database at
 * path (":memory:" for a private in-memory one). Returns NULL and, if err is
 * not NULL, a malloc'd message in *err on failure. */
struct kb *kb_open(const char *path, char **err);
void kb_close(struct kb *kb);

/* Sets after how many WAL pages a commit on the KB's connection checkpoints (SQLite's
 * default: 1,000; 0: never). The server sets 0: its store checkpoints the shared file on a
 * thread of its own, and a checkpoint on the KB's connection would stall the event loop. */
void kb_set_autocheckpoint(struct kb *kb, int pages);

/* How many times this handle has read a language's in-memory index (postings, counts) from
 * the database: once per language at open, then after another connection's KB write or a
 * rolled-back write. Writes to other tables of the file never cause one. */
int64_t kb_index_reads(const struct kb *kb);

/* Loads a Markdown file, a JSON Lines file (.jsonl) or every such file in a
 * directory. Invalid files or lines are reported through report and skipped;
 * the rest still loads. Returns 0, or a negative CD_E* code if nothing could
 * be read at all (no such path). */
int kb_load_path(struct kb *kb, const char *path, struct kb_load_report *report);

/* The one article-id rule, used by the KB, its loaders and the REST API (ids are URL path
 * segments, /kb/{id}): 1 to KB_ID_MAX - 1 bytes of lower-case a-z, digits, '-', '_' and '.',
 * not starting with '.'. Returns 1 for a valid id, else 0. */
int kb_id_valid(const char *id);

/* Inserts or updates an article; an update keeps the previous version as a
 * revision. Searchable as soon as this returns. Returns 0 or CD_E*; CD_EINVAL
 * for an article the KB refuses, with the reason in msg (msg_cap bytes; msg
 * may be NULL). */
int kb_put(struct kb *kb, const struct kb_article *article, char *msg, size_t msg_cap);

/* Fetches the current version of an article into *out (free with
 * kb_article_clear()). Returns 0, CD_ENOTFOUND or CD_E*. */
int kb_get(struct kb *kb, const char *id, struct kb_article *out);

/* Deletes an article (its revisions stay). Returns 0, CD_ENOTFOUND or CD_E*. */
int kb_delete(struct kb *kb, const char *id);

void kb_article_clear(struct kb_article *a);

/* Searches published articles for a customer's question in lang (NULL: any
 * language, preferring "en"). Customer text is never query syntax. Fills up
 * to max_hits hits, best first, into hits (caller's array); *n_hits gets the
 * count. Free each hit's strings with kb_hits_clear(). Returns 0 or CD_E*. */
int kb_search(struct kb *kb, const char *question, const char *lang, struct kb_hit *hits,
              int max_hits, int *n_hits);
/* kb_search() of a question already analysed by text_analyse() (triage analyses each message
 * once): the language whose tokenizer made the analysis takes its stems as they are, any
 * other language's table splits question->text itself. */
int kb_search_analysed(struct kb *kb, const struct text_analysis *question, const char *lang,
                       struct kb_hit *hits, int max_hits, int *n_hits);
/* kb_search_analysed() that chooses the passage of the first n_passages hits only; the
 * others' passage stays NULL until kb_hit_passage(). A caller that may need no more than
 * the best hit's passage (triage: most searches end in a handoff) saves choosing and
 * cleaning the others. */
int kb_search_hits(struct kb *kb, const struct text_analysis *question, const char *lang,
                   struct kb_hit *hits, int max_hits, int n_passages, int *n_hits);
/* Chooses the passage of a hit of kb's last search (nothing if it has one). Returns 0,
 * CD_ESTATE if kb searched again since, CD_ENOTFOUND if the article is no longer
 * published, CD_EIO if it cannot be read, CD_ENOMEM. */
int kb_hit_passage(struct kb *kb, struct kb_hit *hit);
void kb_hits_clear(struct kb_hit *hits, int n_hits);

/* What the published articles in lang know of a word (stem: n bytes, as text.h's tokenizer for
 * lang stems it), read from the index kb_search() reads: how rare it is among them, for
 * weighing a question's words. */
struct kb_word {
    int64_t df;         /* articles that have the word (any field); 0: none */
    int64_t n_articles; /* published articles in lang; 0 when lang has none */
    int is_typo;        /* no article has it, but kb_search() reads it as stem, a word one edit
                         * away that articles have; df is then that word's */
    char stem[65];      /* the word as kb_search() reads it (itself, or the typo's repair) */
    int n_stem;
};

/* Unknown words per question that kb_search() tries as typos (each try scans the stems of
 * about the same length). */
#define KB_TYPO_TRIES 2

/* Fills *out for the word, from the counts the last kb_search() read (triage asks right after
 * one); a word no article has is tried as a typo only if try_typo is set (a caller weighing a
 * question's words tries at most KB_TYPO_TRIES, as the search does). Returns 0
 * (out->n_articles is 0 for a language without articles) or a negative CD_E* code. */
int kb_word_df(struct kb *kb, const char *lang, const char *stem, size_t n, int try_typo,
               struct kb_word *out);

/* The passage of article id that best answers question: the paragraph whose stems share the
 * most query weight with it (the first paragraph when question is NULL or empty, or nothing
 * matches), cleaned of Markdown and shortened at a word, exactly as kb_search() fills
 * kb_hit.passage. Drafts, which are not indexed, give their first paragraph. Returns 0 with a
 * malloc'd string in *out (the caller frees it), CD_ENOTFOUND, or CD_E*. */
int kb_passage(struct kb *kb, const char *id, const char *question, char **out);
/* kb_passage() of a question analysed by text_analyse() (NULL: none). */
int kb_passage_analysed(struct kb *kb, const char *id, const struct text_analysis *question,
                        char **out);

/* Learns that question is answered by article_id (from "yes, this helped" or
 * an agent): adds it as a learned phrasing so later searches rank that
 * article higher. Returns 0, CD_ENOTFOUND or CD_E*. */
int kb_learn(struct kb *kb, const char *question, const char *article_id);

/* Number of published articles. */
int kb_count(struct kb *kb);

/* 1 if articles in lang have been indexed (the language has a search table), else 0. */
int kb_has_lang(const struct kb *kb, const char *lang);

/* Fetches an earlier version of an article (revisions count from 1; kb_get() gives the
 * current one and its number) into *out (free with kb_article_clear()). Returns 0,
 * CD_ENOTFOUND or CD_E*. */
int kb_get_revision(struct kb *kb, const char *id, int revision, struct kb_article *out);

/* Number of earlier versions kept for an article, or a negative CD_E* code. */
int kb_revision_count(struct kb *kb, const char *id);

/* One line of the article list (kb_list()). */
struct kb_list_item {
    char id[KB_ID_MAX];
    char *title; /* owned by the item */
    char lang[8];
    char **tags; /* owned by the item */
    int n_tags;
    int is_published;
    int revision; /* the current revision's number */
    int64_t updated_s;
};

/* Lists articles, drafts included, ordered by title: at most max_items into items (caller's
 * array); *n_items gets the count. search (NULL or "": all) keeps the articles whose id, title
 * or tags contain it (ASCII case-insensitive; a plain substring, no wildcards); status is -1
 * (any), 0 (drafts) or 1 (published). Free with kb_list_clear(). Returns 0 or CD_E*. */
int kb_list(struct kb *kb, const char *search, int status, struct kb_list_item *items,
            int max_items, int *n_items);
void kb_list_clear(struct kb_list_item *items, int n_items);

/* Number of learned phrasings stored for an article, or a negative CD_E* code. */
int kb_learned_count(struct kb *kb, const char *id);

/* Several nodes (one PostgreSQL): journal(ctx, op) is called with each change made through
 * kb_put(), kb_delete() and kb_learn() (not kb_load_path()'s files), as one JSON object,
 * after its checks and before it is made here; a non-zero return refuses the change, and
 * nothing is written. kb_apply() makes a journaled change (another node's, or one replayed at
 * start-up) through the same functions, without journaling it again, so every node's index
 * ends up the same: ranks, learned phrasings, passages and revisions. */
void kb_set_journal(struct kb *kb, int (*journal)(void *ctx, const char *op), void *ctx);

/* Journals a put of every article (drafts too), in title order: how articles loaded into a
 * scratch KB reach the nodes sharing a database (caredesk import --db postgresql://...).
 * CD_EINVAL without a journal. Returns 0 or the first error. */
int kb_journal_all(struct kb *kb);

/* Makes the journaled change op (n bytes of JSON). 0, CD_EPARSE for an op it cannot read,
 * or what kb_put(), kb_delete() or kb_learn() returned. */
int kb_apply(struct kb *kb, const char *op, size_t n);

#endif
