/* kb_load: reading articles from files: Markdown with front matter, JSON Lines (read with
 * jansson), or a directory of either; every bad file or line is reported and skipped. */
#include "kb_int.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- loading: Markdown with front matter, JSON Lines ------------------------------------ */

/* Counts a problem at file:line in r (a skipped article, or a warning when is_warning) and
 * hands msg to r's callback for it, or prints it on stderr when there is none. */
static void report(struct kb_load_report *r, int is_warning, const char *file, int line,
                   const char *msg)
{
    if (r) {
        if (is_warning)
            r->n_warnings++;
        else
            r->n_skipped++;
        void (*on)(void *, const char *, int, const char *) =
            is_warning ? r->on_warning : r->on_error;
        if (on) {
            on(r->ctx, file, line, msg);
            return;
        }
    }
    fprintf(stderr, "%s:%d: %s%s\n", file, line, is_warning ? "warning: " : "", msg);
}

static void report_error(struct kb_load_report *r, const char *file, int line, const char *msg)
{
    report(r, 0, file, line, msg);
}

static void report_warning(struct kb_load_report *r, const char *file, int line, const char *msg)
{
    report(r, 1, file, line, msg);
}

/* Appends s (taken over: freed when it cannot be appended) to the n strings at *items.
 * Returns 0 or CD_ENOMEM. */
static int take_str(char ***items, int *n, char *s)
{
    if (!s || cd_resize(items, (size_t)*n + 1, sizeof **items)) {
        free(s);
        return CD_ENOMEM;
    }
    (*items)[(*n)++] = s;
    return 0;
}

/* Appends a copy of the len bytes at s to the n strings at *items. Returns 0 or CD_ENOMEM. */
static int push_str(char ***items, int *n, const char *s, size_t len)
{
    return take_str(items, n, cd_strndup(s, len));
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
            return cd_strdup("");
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
        if (*v)
            rc = take_str(items, n_items, v);
        else
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
            if (!*v) {
                free(v);
            } else if (take_str(list, n_list, v)) {
                rc = CD_ENOMEM;
                snprintf(msg, cap, "out of memory");
                goto fail;
            }
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
    if (!a->lang && !(a->lang = cd_strdup("en"))) {
        rc = CD_ENOMEM;
        goto fail;
    }
    /* Report what kb_put() would refuse at the line of the field at fault. */
    const char *field;
    if ((rc = kb_article_check(a, msg, cap, &field))) {
        *err_line = !strcmp(field, "id")          ? line_id
                    : !strcmp(field, "title")     ? line_title
                    : !strcmp(field, "lang")      ? line_lang
                    : !strcmp(field, "tags")      ? line_tags
                    : !strcmp(field, "questions") ? line_questions
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
        *out = cd_strdup(num);
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
    if (!a->lang && !(a->lang = cd_strdup("en"))) {
        rc = CD_ENOMEM;
        goto done;
    }
    if (kb_article_check(a, msg, cap, NULL))
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

int kb_article_parse_json(const char *text, size_t n, struct kb_article *a, char *msg, size_t cap)
{
    char unknown[8];
    return parse_json_article(text, n, a, msg, cap, unknown, sizeof unknown);
}

static int load_article(struct kb *kb, struct kb_article *a, const char *file, int line,
                        struct kb_load_report *r)
{
    char why[200];
    int rc = kb_put(kb, a, why, sizeof why);
    if (rc) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot store article '%.60s': %s", a->id,
                 rc == CD_EINVAL && why[0] ? why : cd_strerror(rc));
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
        if (kb_is_blank(line, n))
            continue;
        char msg[400];
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
    if (cd_has_suffix(path, ".jsonl")) {
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
                !(cd_has_suffix(de->d_name, ".md") || cd_has_suffix(de->d_name, ".jsonl")))
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
        kb_strings_free(names, (size_t)n_names);
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
            kb_invalidate_counts(kb);
        } else if (sqlite3_exec(kb->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            rc = CD_EIO;
    }
    return rc;
}
