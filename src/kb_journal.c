/* kb_journal: a KB's changes as JSON operations, for the other nodes sharing one PostgreSQL
 * database (kb.h: kb_set_journal(), kb_apply()). The operations are
 *   {"op":"put","updated_s":N,"article":{id,title,body,lang,tags,questions,status}}
 *   {"op":"delete","id":ID}
 *   {"op":"learn","question":Q,"article":ID}
 * and an article is written in JSON Lines' own keys, so kb_apply() reads it with the loader's
 * parser. */
#include "kb_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void kb_set_journal(struct kb *kb, int (*journal)(void *ctx, const char *op), void *ctx)
{
    kb->journal = journal;
    kb->journal_ctx = ctx;
}

static int wanted(const struct kb *kb)
{
    return kb->journal && !kb->is_applying && !kb->is_bulk;
}

/* Journals o (consumed). */
static int journal(struct kb *kb, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return CD_ENOMEM;
    int rc = kb->journal(kb->journal_ctx, text);
    free(text);
    return rc ? (rc < 0 ? rc : CD_EIO) : 0;
}

static json_t *string_array(char *const *items, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

int kb_journal_put(struct kb *kb, const struct kb_article *a, int64_t updated_s)
{
    if (!wanted(kb))
        return 0;
    return journal(kb, json_pack("{s:s, s:I, s:{s:s, s:s, s:s, s:s, s:o, s:o, s:s}}", "op", "put",
                                 "updated_s", (json_int_t)updated_s, "article", "id", a->id,
                                 "title", a->title, "body", a->body, "lang",
                                 a->lang && *a->lang ? a->lang : "en", "tags",
                                 string_array(a->tags, a->n_tags), "questions",
                                 string_array(a->questions, a->n_questions), "status",
                                 a->is_published ? "published" : "draft"));
}

int kb_journal_delete(struct kb *kb, const char *id)
{
    if (!wanted(kb))
        return 0;
    return journal(kb, json_pack("{s:s, s:s}", "op", "delete", "id", id));
}

int kb_journal_learn(struct kb *kb, const char *question, const char *article_id)
{
    if (!wanted(kb))
        return 0;
    return journal(kb, json_pack("{s:s, s:s, s:s}", "op", "learn", "question", question, "article",
                                 article_id));
}

int kb_apply(struct kb *kb, const char *op, size_t n)
{
    json_t *o = json_loadb(op, n, 0, NULL);
    const char *kind = json_string_value(json_object_get(o, "op"));
    int rc = CD_EPARSE;
    kb->is_applying = 1;
    if (kind && !strcmp(kind, "put")) {
        json_t *art = json_object_get(o, "article");
        char *text = json_is_object(art) ? json_dumps(art, JSON_COMPACT) : NULL;
        struct kb_article a;
        char msg[200];
        if (text && !kb_article_parse_json(text, strlen(text), &a, msg, sizeof msg)) {
            a.updated_s = json_integer_value(json_object_get(o, "updated_s"));
            rc = kb_put(kb, &a, msg, sizeof msg);
            kb_article_clear(&a);
        }
        free(text);
    } else if (kind && !strcmp(kind, "delete")) {
        const char *id = json_string_value(json_object_get(o, "id"));
        rc = id ? kb_delete(kb, id) : CD_EPARSE;
    } else if (kind && !strcmp(kind, "learn")) {
        const char *q = json_string_value(json_object_get(o, "question"));
        const char *id = json_string_value(json_object_get(o, "article"));
        rc = q && id ? kb_learn(kb, q, id) : CD_EPARSE;
    }
    kb->is_applying = 0;
    json_decref(o);
    return rc;
}

int kb_journal_all(struct kb *kb)
{
    if (!kb->journal)
        return CD_EINVAL;
    struct kb_list_item *items = NULL;
    int n = 0, rc = 0;
    for (int cap = 1024;; cap *= 2) {
        kb_list_clear(items, n);
        free(items);
        items = calloc((size_t)cap, sizeof *items);
        if (!items)
            return CD_ENOMEM;
        rc = kb_list(kb, NULL, -1, items, cap, &n);
        if (rc || n < cap)
            break;
    }
    for (int i = 0; !rc && i < n; i++) {
        struct kb_article a;
        rc = kb_get(kb, items[i].id, &a);
        if (rc)
            break;
        int was_bulk = kb->is_bulk;
        kb->is_bulk = 0;
        rc = kb_journal_put(kb, &a, a.updated_s);
        kb->is_bulk = was_bulk;
        kb_article_clear(&a);
    }
    kb_list_clear(items, n);
    free(items);
    return rc;
}
