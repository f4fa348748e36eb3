/* kb_import: loads help-centre exports (Zendesk Help Center, Intercom, Freshdesk solutions)
 * into the KB: each tool's own JSON, its HTML bodies turned into the KB's Markdown with
 * libxml2's HTML parser, its fields mapped onto the KB's (language, draft, tags, source URL),
 * with stable ids so that importing the same export again changes nothing.
 *
 * Where each imported article came from (tool, id there, URL, the article it translates, the
 * import that last saw it) is kept in the table kb_import_source beside the KB's own tables,
 * written in the same transaction as the article. */
#ifndef CD_KB_IMPORT_H
#define CD_KB_IMPORT_H

#include <stddef.h>

struct kb;
struct sqlite3;

enum kb_import_format {
    KB_IMPORT_SNIFF = 0, /* tell the format from the file's shape */
    KB_IMPORT_ZENDESK,
    KB_IMPORT_INTERCOM,
    KB_IMPORT_FRESHDESK,
};

/* The format named "zendesk", "intercom" or "freshdesk"; -1 for any other name. */
int kb_import_format_from_name(const char *name);

/* "zendesk", "intercom", "freshdesk", or "unknown". */
const char *kb_import_format_name(int format);

/* One article read from an export, before it is stored. Strings are owned by the item. */
struct kb_import_item {
    char *id;          /* stable KB id, e.g. "zendesk-360001234501" */
    char *source_id;   /* the id in the tool, e.g. "360001234501" */
    char *source_url;  /* the article's page in the tool, or NULL */
    char *original_id; /* for a translation, the KB id of the article it translates */
    char *title;
    char *lang; /* the KB's language code, e.g. "en" */
    char *body; /* Markdown */
    char **tags;
    int n_tags;
    int is_published;
    long long updated_s; /* 0 if the export does not say */
};

/* Called for each article read, valid only during the call. Returns 0 to go on, or a
 * negative CD_E* code to stop the parse with it. */
typedef int (*kb_import_item_fn)(void *ctx, const struct kb_import_item *item, const char *where);

/* Called for each problem: where is "FILE" for the whole file, or "FILE:ITEM" with ITEM
 * the item's place in the export, e.g. "articles[3]" (counted from 0, as JSON paths are). */
typedef void (*kb_import_problem_fn)(void *ctx, const char *where, const char *message);

/* Parses one export (len bytes at data, which need not be NUL-terminated), named file in
 * messages, in format (KB_IMPORT_SNIFF: tell it from the shape, and report the file when that
 * is ambiguous). Calls on_item for each valid article and on_problem for each file or item
 * that is not. Returns the number of items reported as problems, 0 when everything parsed, or
 * a negative CD_E* code: CD_EPARSE when the file as a whole is unusable (not JSON, truncated,
 * not this format: reported, and no item given), CD_ENOMEM, or what on_item returned. */
int kb_import_parse(const char *data, size_t len, const char *file, int format,
                    kb_import_item_fn on_item, kb_import_problem_fn on_problem, void *ctx);

/* Converts an HTML fragment or page to the KB's Markdown: paragraphs, headings, lists (nested,
 * ordered), links, emphasis, code, quotes, tables and images (alt text and URL kept); script,
 * style and similar elements removed with their content, unknown tags removed and their text
 * kept, entities decoded. Returns a malloc'd NUL-terminated string ("" for no text), or NULL
 * when out of memory. */
char *kb_html_to_markdown(const char *html, size_t len);

/* What one import did. */
struct kb_import_report {
    int n_new;       /* articles created */
    int n_updated;   /* articles changed: a new revision each */
    int n_unchanged; /* articles already as in the export */
    int n_problems;  /* files and items reported and skipped */
    int n_missing;   /* imported from the same tool before, absent from these files: kept */
    /* Problems and notes go here (NULL: stderr, as "WHERE: MESSAGE"). */
    kb_import_problem_fn on_problem;
    void *ctx;
};

/* Imports n_files export files into kb, one transaction per file, one savepoint per article:
 * an article is written whole with its source row or not at all, and a file that is not
 * usable as a whole writes nothing. An existing article keeps the questions added to it in
 * caredesk and becomes a new revision only when the export changed it. Articles imported from
 * the same tool earlier that none of the files holds any longer are reported, not deleted.
 * Returns 0 when every file could be read (problems are counted in report), or a negative
 * CD_E* code on a database error. */
int kb_import_files(struct kb *kb, int format, char *const *files, int n_files,
                    struct kb_import_report *report);

/* The source URL recorded for an imported article, malloc'd, or NULL (none, or not imported).
 * The article it translates goes into *original_id when that is not NULL (malloc'd or NULL). */
char *kb_import_source_url(struct kb *kb, const char *id, char **original_id);

/* The SQLite connection of kb (kb.c), for the tables kept beside the KB's that must be written
 * in the same transactions. Valid until kb_close(). */
struct sqlite3 *kb_connection(struct kb *kb);

#endif
