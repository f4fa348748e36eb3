/* kb_import: reads Zendesk Help Center, Intercom and Freshdesk exports and stores their
 * articles in the KB with stable ids, recording where each came from.
 *
 * DESIGN: parsing (kb_import_parse) is separate from storing (kb_import_files) so the parser
 * can be fuzzed and tested without a database. A file is parsed whole before anything of it
 * is written: a truncated or foreign file writes nothing. Each article is then written in a
 * savepoint with its row in kb_import_source, so it is stored whole or not at all, and the
 * KB's own kb_put() decides whether it changed (no new revision when it did not). Nothing is
 * ever deleted because an export no longer holds it: that is reported. */
#include "kb_import.h"

#include "cd.h"
#include "kb.h"
#include "text.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IMPORT_MAX_TAGS     64
#define IMPORT_MAX_TAG_LEN  64
#define IMPORT_MAX_TITLE    512
#define IMPORT_MAX_SOURCE   64 /* bytes of a source id */
#define IMPORT_MAX_MISSING  1000
#define IMPORT_MAX_SECTIONS 10000

static const char *const format_names[] = {"unknown", "zendesk", "intercom", "freshdesk"};

int kb_import_format_from_name(const char *name)
{
    for (int i = KB_IMPORT_ZENDESK; name && i <= KB_IMPORT_FRESHDESK; i++)
        if (!strcmp(name, format_names[i]))
            return i;
    return -1;
}

const char *kb_import_format_name(int format)
{
    return format >= KB_IMPORT_ZENDESK && format <= KB_IMPORT_FRESHDESK ? format_names[format]
                                                                        : format_names[0];
}

/* ---- parsing --------------------------------------------------------------------------- */

struct parser {
    const char *file;
    kb_import_item_fn on_item;
    kb_import_problem_fn on_problem;
    void *ctx;
    int n_problems;
    int rc;
    json_t *sections; /* Zendesk: "sections" beside "articles", for section names */
    char where[320];
};

static void problem(struct parser *p, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct parser *p, const char *item, const char *fmt, ...)
{
    char msg[512], where[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (item)
        snprintf(where, sizeof where, "%s:%s", p->file, item);
    else
        snprintf(where, sizeof where, "%s", p->file);
    p->n_problems++;
    if (p->on_problem)
        p->on_problem(p->ctx, where, msg);
    else
        fprintf(stderr, "%s: %s\n", where, msg);
}

static void item_clear(struct kb_import_item *it)
{
    free(it->id);
    free(it->source_id);
    free(it->source_url);
    free(it->original_id);
    free(it->title);
    free(it->lang);
    free(it->body);
    for (int i = 0; i < it->n_tags; i++)
        free(it->tags[i]);
    free(it->tags);
    memset(it, 0, sizeof *it);
}

/* An id from the export (a JSON integer or a string of letters, digits, '-', '_', '.') into
 * out. Returns 0, or -1 when there is none usable. */
static int source_id_of(const json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v)) {
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
        return json_integer_value(v) >= 0 ? 0 : -1;
    }
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (!n || n >= cap || n >= IMPORT_MAX_SOURCE)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return -1;
    memcpy(out, s, n + 1);
    return 0;
}

/* The KB language of a locale ("en-us", "pt_BR", "de") into code (8 bytes): its lower-case
 * ISO 639 code. Returns 0, or -1 when it is not one the KB stems (then code holds the locale
 * as given, cut, for the message). */
static int lang_of(const char *locale, char code[8])
{
    size_t n = 0;
    while (n < 3 &&
           ((locale[n] >= 'a' && locale[n] <= 'z') || (locale[n] >= 'A' && locale[n] <= 'Z'))) {
        code[n] = (char)(locale[n] | 0x20);
        n++;
    }
    code[n] = '\0';
    int ok = n >= 2 && (locale[n] == '\0' || locale[n] == '-' || locale[n] == '_') &&
             text_lang_supported(code);
    if (!ok) {
        size_t k = 0;
        for (; k < 7 && locale[k]; k++)
            code[k] = (unsigned char)locale[k] >= 0x20 && (unsigned char)locale[k] < 0x7f
                          ? locale[k]
                          : '?';
        code[k] = '\0';
    }
    return ok ? 0 : -1;
}

/* Seconds since the epoch of an ISO 8601 time ("2024-03-01T10:00:00Z") or a Unix time in
 * seconds (Intercom); 0 when there is none. */
static long long time_of(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (long long)json_integer_value(v) : 0;
    const char *s = json_string_value(v);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    time_t t = timegm(&tm);
    return t > 0 ? (long long)t : 0;
}

/* Adds a tag: one line, cut to IMPORT_MAX_TAG_LEN bytes at a UTF-8 boundary; duplicates and
 * tags past IMPORT_MAX_TAGS are dropped. Returns 0 or CD_ENOMEM. */
static int add_tag(struct kb_import_item *it, const char *tag)
{
    if (!tag)
        return 0;
    while (*tag == ' ')
        tag++;
    size_t n = strlen(tag);
    if (n > IMPORT_MAX_TAG_LEN) {
        n = IMPORT_MAX_TAG_LEN;
        while (n > 0 && ((unsigned char)tag[n] & 0xC0) == 0x80)
            n--;
    }
    while (n > 0 && tag[n - 1] == ' ')
        n--;
    if (!n || it->n_tags >= IMPORT_MAX_TAGS || !cd_utf8_valid(tag, n))
        return 0;
    char *t = cd_strndup(tag, n);
    if (!t)
        return CD_ENOMEM;
    for (char *c = t; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    for (int i = 0; i < it->n_tags; i++)
        if (!strcmp(it->tags[i], t)) {
            free(t);
            return 0;
        }
    char **grown = realloc(it->tags, (size_t)(it->n_tags + 1) * sizeof *grown);
    if (!grown) {
        free(t);
        return CD_ENOMEM;
    }
    it->tags = grown;
    it->tags[it->n_tags++] = t;
    return 0;
}

/* add_tag() for each string of the array tags. Returns 0 or CD_ENOMEM. */
static int add_tags(struct kb_import_item *it, const json_t *tags)
{
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v)
    {
        if (!rc)
            rc = add_tag(it, json_string_value(v));
    }
    return rc;
}

/* Adds the tag "KIND-ID" for the source id in v (source_id_of()); none when v holds no id.
 * Returns 0 or CD_ENOMEM. */
static int add_id_tag(struct kb_import_item *it, const char *kind, const json_t *v)
{
    char id[IMPORT_MAX_SOURCE], tag[96];
    if (source_id_of(v, id, sizeof id))
        return 0;
    snprintf(tag, sizeof tag, "%s-%s", kind, id);
    return add_tag(it, tag);
}

/* The string at key in o, else the one at fallback; NULL when neither is a string. */
static const char *str_or(const json_t *o, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : json_string_value(json_object_get(o, fallback));
}

/* Fills the parts every format shares, checks them, and hands the item on; a problem is
 * reported at item instead. Takes the HTML body and the title as the export has them. */
static void emit(struct parser *p, struct kb_import_item *it, const char *item, const char *title,
                 const char *html, const char *locale)
{
    char code[8];
    if (!title || !*title || strspn(title, " \t\r\n") == strlen(title)) {
        problem(p, item, "article %s has no title", it->source_id);
        return;
    }
    if (!cd_utf8_valid(title, strlen(title)) || (html && !cd_utf8_valid(html, strlen(html)))) {
        problem(p, item, "article %s: text is not valid UTF-8", it->source_id);
        return;
    }
    if (lang_of(locale && *locale ? locale : "en", code)) {
        problem(p, item, "article %s: language '%s' is not supported by the KB (skipped)",
                it->source_id, code);
        return;
    }
    if (!(it->lang = strdup(code)) || !(it->title = strdup(title + strspn(title, " \t\r\n")))) {
        p->rc = CD_ENOMEM;
        return;
    }
    for (char *c = it->title; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    size_t tn = strlen(it->title);
    while (tn > 0 && it->title[tn - 1] == ' ')
        it->title[--tn] = '\0';
    if (tn > IMPORT_MAX_TITLE) {
        problem(p, item, "article %s: title is longer than %d bytes", it->source_id,
                IMPORT_MAX_TITLE);
        return;
    }
    it->body = kb_html_to_markdown(html ? html : "", html ? strlen(html) : 0);
    if (!it->body) {
        p->rc = CD_ENOMEM;
        return;
    }
    if (!*it->body) {
        problem(p, item, "article %s has an empty body", it->source_id);
        return;
    }
    int rc = p->on_item(p->ctx, it, item);
    if (rc)
        p->rc = rc;
}

/* The KB id "PREFIX-SOURCEID[-LOCALE]" into it->id, with it->source_id. */
static int set_ids(struct kb_import_item *it, const char *prefix, const char *source_id,
                   const char *locale)
{
    struct cd_buf b = {0};
    int rc = cd_buf_printf(&b, "%s-%s", prefix, source_id);
    if (!rc && locale) {
        rc = cd_buf_puts(&b, "-");
        for (const char *c = locale; !rc && *c; c++) {
            char ch = (char)((*c >= 'A' && *c <= 'Z') ? *c | 0x20 : *c == '_' ? '-' : *c);
            if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')
                rc = cd_buf_append(&b, &ch, 1);
        }
    }
    it->id = b.data; /* the item owns it from here, and frees it */
    it->source_id = strdup(source_id);
    return rc || !it->id || !it->source_id ? CD_ENOMEM : 0;
}

/* Starts it (zeroed) as the item of article a of the help centre prefix ("zendesk", ...):
 * its ids, with the source id also in sid (IMPORT_MAX_SOURCE bytes). Returns 0, or -1 with it
 * cleared when a is not an object with an id (a problem of item) or memory ran out (p->rc). */
static int begin_article(struct parser *p, const json_t *a, const char *item, const char *prefix,
                         struct kb_import_item *it, char *sid)
{
    if (!json_is_object(a) || source_id_of(json_object_get(a, "id"), sid, IMPORT_MAX_SOURCE)) {
        problem(p, item, "not an article: expected an object with an id");
        return -1;
    }
    if (set_ids(it, prefix, sid, NULL)) {
        p->rc = CD_ENOMEM;
        item_clear(it);
        return -1;
    }
    return 0;
}

static void zendesk_article(struct parser *p, const json_t *a, const char *item)
{
    struct kb_import_item it = {0};
    char sid[IMPORT_MAX_SOURCE];
    if (begin_article(p, a, item, "zendesk", &it, sid))
        return;
    const char *title = str_or(a, "title", "name");
    const char *locale = str_or(a, "locale", "source_locale");
    json_t *draft = json_object_get(a, "draft");
    it.is_published = !json_is_true(draft);
    it.source_url = cd_strdup(json_string_value(json_object_get(a, "html_url")));
    it.updated_s = time_of(json_object_get(a, "updated_at"));
    int rc = add_tags(&it, json_object_get(a, "label_names"));
    char sec[IMPORT_MAX_SOURCE];
    if (!rc && !source_id_of(json_object_get(a, "section_id"), sec, sizeof sec)) {
        const char *name = NULL;
        size_t i;
        json_t *v;
        json_array_foreach(p->sections, i, v)
        {
            char id[IMPORT_MAX_SOURCE];
            if (!name && i < IMPORT_MAX_SECTIONS &&
                !source_id_of(json_object_get(v, "id"), id, sizeof id) && !strcmp(id, sec))
                name = json_string_value(json_object_get(v, "name"));
        }
        char tag[96];
        snprintf(tag, sizeof tag, "section-%s", sec);
        rc = add_tag(&it, name ? name : tag);
    }
    if (rc)
        p->rc = rc;
    else
        emit(p, &it, item, title, json_string_value(json_object_get(a, "body")), locale);
    item_clear(&it);
}

/* One Intercom article: the default locale's content at the top, each other locale's in
 * translated_content, stored as its own article linked to the original. */
static void intercom_article(struct parser *p, const json_t *a, const char *item)
{
    struct kb_import_item it = {0};
    char sid[IMPORT_MAX_SOURCE];
    if (begin_article(p, a, item, "intercom", &it, sid))
        return;
    const char *def = json_string_value(json_object_get(a, "default_locale"));
    if (!def || !*def)
        def = "en";
    int rc = 0;
    size_t i;
    json_t *v;
    json_t *parents = json_object_get(a, "parent_ids");
    if (!json_is_array(parents) || !json_array_size(parents))
        parents = NULL;
    json_array_foreach(parents, i, v)
    {
        if (!rc)
            rc = add_id_tag(&it, "collection", v);
    }
    if (!rc && !parents)
        rc = add_id_tag(&it, "collection", json_object_get(a, "parent_id"));
    if (rc) {
        p->rc = rc;
        item_clear(&it);
        return;
    }
    const char *state = json_string_value(json_object_get(a, "state"));
    it.is_published = state && !strcmp(state, "published");
    it.source_url = cd_strdup(json_string_value(json_object_get(a, "url")));
    it.updated_s = time_of(json_object_get(a, "updated_at"));
    emit(p, &it, item, json_string_value(json_object_get(a, "title")),
         json_string_value(json_object_get(a, "body")), def);
    /* The translations share the original's tags. */
    char **tags = it.tags;
    int n_tags = it.n_tags;
    it.tags = NULL;
    it.n_tags = 0;
    item_clear(&it);
    const char *locale;
    json_object_foreach(json_object_get(a, "translated_content"), locale, v)
    {
        if (p->rc || !json_is_object(v) || !strcmp(locale, "type") || !strcasecmp(locale, def))
            continue;
        char where[160];
        snprintf(where, sizeof where, "%s.translated_content.%.16s", item, locale);
        struct kb_import_item tr = {0};
        char original[128];
        snprintf(original, sizeof original, "intercom-%s", sid);
        if (set_ids(&tr, "intercom", sid, locale) || !(tr.original_id = strdup(original))) {
            p->rc = CD_ENOMEM;
            item_clear(&tr);
            break;
        }
        for (int k = 0; k < n_tags && !p->rc; k++)
            p->rc = add_tag(&tr, tags[k]);
        state = json_string_value(json_object_get(v, "state"));
        tr.is_published = state && !strcmp(state, "published");
        tr.source_url = cd_strdup(json_string_value(json_object_get(v, "url")));
        tr.updated_s = time_of(json_object_get(v, "updated_at"));
        if (!p->rc)
            emit(p, &tr, where, json_string_value(json_object_get(v, "title")),
                 json_string_value(json_object_get(v, "body")), locale);
        item_clear(&tr);
    }
    for (int k = 0; k < n_tags; k++)
        free(tags[k]);
    free(tags);
}

static void freshdesk_article(struct parser *p, const json_t *a, const char *item)
{
    struct kb_import_item it = {0};
    char sid[IMPORT_MAX_SOURCE];
    if (begin_article(p, a, item, "freshdesk", &it, sid))
        return;
    json_t *status = json_object_get(a, "status");
    it.is_published = json_is_integer(status) && json_integer_value(status) == 2;
    it.source_url = cd_strdup(json_string_value(json_object_get(a, "url")));
    it.updated_s = time_of(json_object_get(a, "updated_at"));
    const char *locale = json_string_value(json_object_get(a, "language"));
    int rc = add_tags(&it, json_object_get(a, "tags"));
    size_t i;
    json_t *v;
    /* hierarchy: [{"level": 0, "type": "category", "data": {"id", "name", "language"}}, ...] */
    json_array_foreach(json_object_get(a, "hierarchy"), i, v)
    {
        json_t *data = json_object_get(v, "data");
        if (!rc)
            rc = add_tag(&it, json_string_value(json_object_get(data, "name")));
        if (!locale)
            locale = json_string_value(json_object_get(data, "language"));
    }
    const char *html = str_or(a, "description", "description_text");
    if (rc)
        p->rc = rc;
    else
        emit(p, &it, item, json_string_value(json_object_get(a, "title")), html, locale);
    item_clear(&it);
}

/* The format a parsed export has: KB_IMPORT_* or KB_IMPORT_SNIFF when it has none of them. */
static int shape_of(const json_t *root)
{
    if (json_is_object(root) && json_is_array(json_object_get(root, "articles")))
        return KB_IMPORT_ZENDESK;
    const char *type = json_string_value(json_object_get(root, "type"));
    if (json_is_object(root) && type && !strcmp(type, "list") &&
        json_is_array(json_object_get(root, "data")))
        return KB_IMPORT_INTERCOM;
    if (json_is_array(root)) {
        const json_t *first = json_array_get(root, 0);
        if (!first || json_object_get(first, "description") || json_object_get(first, "status") ||
            json_object_get(first, "hierarchy") || json_object_get(first, "folder_id"))
            return KB_IMPORT_FRESHDESK;
    }
    return KB_IMPORT_SNIFF;
}

static const char *const shape_expected[] = {
    "",
    "a Zendesk Help Center export ({\"articles\": [...]})",
    "an Intercom export ({\"type\": \"list\", \"data\": [...]})",
    "a Freshdesk solutions export ([{\"title\", \"description\", \"status\", ...}])",
};

int kb_import_parse(const char *data, size_t len, const char *file, int format,
                    kb_import_item_fn on_item, kb_import_problem_fn on_problem, void *ctx)
{
    struct parser p = {
        .file = file ? file : "-", .on_item = on_item, .on_problem = on_problem, .ctx = ctx};
    if (!data || !on_item || format < KB_IMPORT_SNIFF || format > KB_IMPORT_FRESHDESK)
        return CD_EINVAL;
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        problem(&p, NULL, "not valid JSON (%s at line %d, column %d)%s; nothing imported",
                jerr.text, jerr.line, jerr.column,
                jerr.position >= (int)len ? ", the file looks truncated" : "");
        return CD_EPARSE;
    }
    int shape = shape_of(root);
    if (format == KB_IMPORT_SNIFF && shape == KB_IMPORT_SNIFF) {
        problem(&p, NULL,
                "not a help-centre export this version reads (Zendesk, Intercom or Freshdesk); "
                "name the format with --from zendesk|intercom|freshdesk if it is one");
        json_decref(root);
        return CD_EPARSE;
    }
    if (format != KB_IMPORT_SNIFF && shape != format) {
        problem(&p, NULL, "not %s; nothing imported", shape_expected[format]);
        json_decref(root);
        return CD_EPARSE;
    }
    const char *key = shape == KB_IMPORT_ZENDESK ? "articles" : "data";
    json_t *list = shape == KB_IMPORT_FRESHDESK ? root : json_object_get(root, key);
    if (shape == KB_IMPORT_ZENDESK)
        p.sections = json_object_get(root, "sections");
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        char item[64];
        if (shape == KB_IMPORT_FRESHDESK)
            snprintf(item, sizeof item, "[%zu]", i);
        else
            snprintf(item, sizeof item, "%s[%zu]", key, i);
        if (shape == KB_IMPORT_ZENDESK)
            zendesk_article(&p, a, item);
        else if (shape == KB_IMPORT_INTERCOM)
            intercom_article(&p, a, item);
        else
            freshdesk_article(&p, a, item);
        if (p.rc)
            break;
    }
    json_decref(root);
    return p.rc ? p.rc : p.n_problems;
}

/* ---- storing --------------------------------------------------------------------------- */

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS kb_import_source ("
                                 " article_id TEXT PRIMARY KEY,"
                                 " source TEXT NOT NULL,"    /* zendesk, intercom, freshdesk */
                                 " source_id TEXT NOT NULL," /* the article's id in that tool */
                                 " source_url TEXT,"         /* its page there */
                                 " original_id TEXT,"     /* the KB article this one translates */
                                 " run INTEGER NOT NULL," /* the import that last saw it */
                                 " imported_s INTEGER NOT NULL)";

struct store {
    struct kb *kb;
    sqlite3 *db;
    sqlite3_stmt *upsert;
    int format; /* of the file being stored */
    int64_t run;
    struct kb_import_report *report;
    int formats_seen; /* bit per format */
};

static void note(struct kb_import_report *r, const char *where, const char *message)
{
    if (r->on_problem)
        r->on_problem(r->ctx, where, message);
    else
        fprintf(stderr, "%s: %s\n", where, message);
}

static void store_problem(void *ctx, const char *where, const char *message)
{
    struct store *s = ctx;
    s->report->n_problems++;
    note(s->report, where, message);
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : CD_EIO;
}

static int store_item(void *ctx, const struct kb_import_item *it, const char *where)
{
    struct store *s = ctx;
    struct kb_article old, a;
    memset(&a, 0, sizeof a);
    int found = kb_get(s->kb, it->id, &old);
    if (found && found != CD_ENOTFOUND)
        return found;
    a.id = it->id;
    a.title = it->title;
    a.lang = it->lang;
    a.body = it->body;
    a.tags = it->tags;
    a.n_tags = it->n_tags;
    a.is_published = it->is_published;
    a.updated_s = it->updated_s;
    if (!found) { /* the phrasings added in caredesk stay */
        a.questions = old.questions;
        a.n_questions = old.n_questions;
    }
    int rc = exec(s->db, "SAVEPOINT kb_import");
    if (rc)
        goto done;
    sqlite3_stmt *st = s->upsert;
    sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kb_import_format_name(s->format), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, it->source_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, it->source_url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, it->original_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, s->run);
    sqlite3_bind_int64(st, 7, cd_wall_s());
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    rc = step == SQLITE_DONE ? 0 : CD_EIO;
    char why[160] = "";
    if (!rc)
        rc = kb_put(s->kb, &a, why, sizeof why); /* last: it undoes its own writes on failure */
    if (rc) {
        exec(s->db, "ROLLBACK TO kb_import");
        exec(s->db, "RELEASE kb_import");
        if (rc == CD_EINVAL) { /* refused: reported, the rest goes on */
            char msg[400];
            snprintf(msg, sizeof msg, "article %s was refused by the KB: %s", it->source_id,
                     why[0] ? why : cd_strerror(rc));
            store_problem(s, where, msg);
            rc = 0;
        }
        goto done;
    }
    rc = exec(s->db, "RELEASE kb_import");
    if (rc)
        goto done;
    if (found == CD_ENOTFOUND)
        s->report->n_new++;
    else {
        struct kb_article now;
        if (kb_get(s->kb, it->id, &now) == 0) {
            if (now.revision != old.revision)
                s->report->n_updated++;
            else
                s->report->n_unchanged++;
            kb_article_clear(&now);
        }
    }
done:
    if (!found)
        kb_article_clear(&old);
    return rc;
}

/* Reports the articles imported from a tool before that this run did not see. */
static int report_missing(struct store *s, int format)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT article_id FROM kb_import_source WHERE source = ?1 AND run < ?2 "
                           "ORDER BY article_id LIMIT ?3",
                           -1, &st, NULL) != SQLITE_OK)
        return CD_EIO;
    sqlite3_bind_text(st, 1, kb_import_format_name(format), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->run);
    sqlite3_bind_int(st, 3, IMPORT_MAX_MISSING);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        struct kb_article a;
        if (!id || kb_get(s->kb, id, &a) != 0)
            continue; /* deleted in caredesk since */
        kb_article_clear(&a);
        char msg[200];
        snprintf(msg, sizeof msg,
                 "imported from %s before but not in these files (deleted there?); kept in the "
                 "KB: delete it there by hand if it should go",
                 kb_import_format_name(format));
        s->report->n_missing++;
        note(s->report, id, msg);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : CD_EIO;
}

int kb_import_files(struct kb *kb, int format, char *const *files, int n_files,
                    struct kb_import_report *report)
{
    struct store s = {.kb = kb, .db = kb_connection(kb), .report = report};
    if (!kb || !s.db || !report || format < KB_IMPORT_SNIFF || format > KB_IMPORT_FRESHDESK)
        return CD_EINVAL;
    int rc = exec(s.db, schema_sql);
    sqlite3_stmt *st = NULL;
    if (!rc &&
        sqlite3_prepare_v2(s.db, "SELECT coalesce(max(run), 0) + 1 FROM kb_import_source", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        s.run = sqlite3_column_int64(st, 0);
    else
        rc = CD_EIO;
    sqlite3_finalize(st);
    if (!rc && sqlite3_prepare_v2(
                   s.db,
                   "INSERT INTO kb_import_source(article_id, source, source_id, source_url, "
                   "original_id, run, imported_s) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                   "ON CONFLICT(article_id) DO UPDATE SET source = ?2, source_id = ?3, "
                   "source_url = ?4, original_id = ?5, run = ?6, imported_s = ?7",
                   -1, &s.upsert, NULL) != SQLITE_OK)
        rc = CD_EIO;
    for (int f = 0; f < n_files && !rc; f++) {
        size_t len = 0;
        char *data = cd_read_file(files[f], &len);
        if (!data) {
            char msg[160];
            snprintf(msg, sizeof msg, "cannot read: %s", strerror(errno));
            store_problem(&s, files[f], msg);
            continue;
        }
        s.format = format;
        if (format == KB_IMPORT_SNIFF) {
            /* The store needs the file's format before its first item: parse the shape. */
            json_t *root = json_loadb(data, len, 0, NULL);
            s.format = root ? shape_of(root) : KB_IMPORT_SNIFF;
            json_decref(root);
        }
        rc = exec(s.db, "BEGIN IMMEDIATE");
        if (rc) {
            free(data);
            break;
        }
        int prc = kb_import_parse(data, len, files[f], s.format, store_item, store_problem, &s);
        free(data);
        if (prc >= 0 || prc == CD_EPARSE) {
            rc = exec(s.db, "COMMIT");
            if (prc >= 0)
                s.formats_seen |= 1 << s.format;
        } else {
            exec(s.db, "ROLLBACK");
            rc = prc;
        }
    }
    sqlite3_finalize(s.upsert);
    for (int fmt = KB_IMPORT_ZENDESK; fmt <= KB_IMPORT_FRESHDESK && !rc; fmt++)
        if (s.formats_seen & (1 << fmt))
            rc = report_missing(&s, fmt);
    return rc;
}

char *kb_import_source_url(struct kb *kb, const char *id, char **original_id)
{
    sqlite3 *db = kb_connection(kb);
    sqlite3_stmt *st = NULL;
    char *url = NULL;
    if (original_id)
        *original_id = NULL;
    if (!db || !id ||
        sqlite3_prepare_v2(db,
                           "SELECT source_url, original_id FROM kb_import_source "
                           "WHERE article_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        url = cd_strdup((const char *)sqlite3_column_text(st, 0));
        if (original_id)
            *original_id = cd_strdup((const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    return url;
}
