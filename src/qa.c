/* qa: the QA rubric, the weekly stratified sample, reviewers' audits, the
 * calibration view and scores over time (see qa.h for the rules). */
#include "qa.h"

#include "auth.h"
#include "report.h"
#include "store.h"
#include "store_db.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CANDIDATES 100000
#define MAX_LISTED     500
#define COMMENT_MAX    2000

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* *err (when err is not NULL) gets a malloc'd message. */
static void set_err(char **err, const char *fmt, ...)
{
    if (!err)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    *err = strdup(buf);
}

/* ---- rubric ---- */

static int id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= QA_ID_MAX)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

int qa_rubric_parse(const char *text, size_t n, struct qa_rubric *out, char **err)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *o = json_loadb(text, n, 0, &je);
    if (!o) {
        set_err(err, "not JSON: %s (line %d)", je.text, je.line);
        return CD_EPARSE;
    }
    int rc = CD_EINVAL;
    json_t *criteria = json_object_get(o, "criteria");
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *pass = json_object_get(o, "pass_mark"), *scale = json_object_get(o, "scale");
    if (!json_is_object(o) || !name || !*name || strlen(name) >= sizeof out->name) {
        set_err(err, "'name' must be a string of 1-63 characters");
        goto done;
    }
    if (!json_is_number(pass) || json_number_value(pass) < 0 || json_number_value(pass) > 100) {
        set_err(err, "'pass_mark' must be a number from 0 to 100");
        goto done;
    }
    if (scale && (!json_is_integer(scale) || json_integer_value(scale) < 1 ||
                  json_integer_value(scale) > 10)) {
        set_err(err, "'scale' must be an integer from 1 to 10");
        goto done;
    }
    if (!json_is_array(criteria) || json_array_size(criteria) == 0 ||
        json_array_size(criteria) > QA_CRITERIA_MAX) {
        set_err(err, "'criteria' must be a list of 1 to %d criteria", QA_CRITERIA_MAX);
        goto done;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    out->pass_mark = json_number_value(pass);
    out->scale = scale ? (int)json_integer_value(scale) : 4;
    size_t i;
    json_t *c;
    json_array_foreach(criteria, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *label = json_string_value(json_object_get(c, "label"));
        json_t *weight = json_object_get(c, "weight"), *critical = json_object_get(c, "critical");
        if (!id || !id_valid(id)) {
            set_err(err, "criterion %zu: 'id' must be 1-31 characters [a-z0-9_-]", i + 1);
            goto done;
        }
        for (int k = 0; k < out->n_criteria; k++)
            if (!strcmp(out->criteria[k].id, id)) {
                set_err(err, "criterion '%s' appears twice", id);
                goto done;
            }
        if (!label || !*label || strlen(label) >= sizeof out->criteria[0].label) {
            set_err(err, "criterion '%s': 'label' must be 1-159 characters", id);
            goto done;
        }
        if (!json_is_number(weight) || json_number_value(weight) <= 0) {
            set_err(err, "criterion '%s': 'weight' must be a number above 0", id);
            goto done;
        }
        if (critical && !json_is_boolean(critical)) {
            set_err(err, "criterion '%s': 'critical' must be true or false", id);
            goto done;
        }
        struct qa_criterion *q = &out->criteria[out->n_criteria++];
        snprintf(q->id, sizeof q->id, "%s", id);
        snprintf(q->label, sizeof q->label, "%s", label);
        q->weight = json_number_value(weight);
        q->is_critical = json_is_true(critical);
    }
    rc = 0;
done:
    json_decref(o);
    return rc;
}

int qa_rubric_load(const char *path, struct qa_rubric *out, char **err)
{
    size_t n = 0;
    char *text = cd_read_file(path, &n);
    if (!text) {
        int is_missing = errno == ENOENT;
        set_err(err, "cannot read %s: %s", path, strerror(errno));
        return is_missing ? CD_ENOTFOUND : CD_EIO;
    }
    char *why = NULL;
    int rc = qa_rubric_parse(text, n, out, &why);
    free(text);
    if (rc)
        set_err(err, "%s: %s", path, why ? why : "invalid rubric");
    free(why);
    return rc;
}

json_t *qa_rubric_json(const struct qa_rubric *r)
{
    json_t *criteria = json_array();
    for (int i = 0; i < r->n_criteria && criteria; i++)
        json_array_append_new(criteria,
                              json_pack("{s:s, s:s, s:f, s:b}", "id", r->criteria[i].id, "label",
                                        r->criteria[i].label, "weight", r->criteria[i].weight,
                                        "critical", r->criteria[i].is_critical));
    return json_pack("{s:s, s:f, s:i, s:o}", "name", r->name, "pass_mark", r->pass_mark, "scale",
                     r->scale, "criteria", criteria);
}

int qa_score(const struct qa_rubric *r, const json_t *scores, double *score_out, int *passed_out,
             const char **why)
{
    *why = NULL;
    if (!json_is_object(scores)) {
        *why = "'scores' must be an object {criterion: points}";
        return CD_EINVAL;
    }
    if ((int)json_object_size(scores) != r->n_criteria) {
        *why = "'scores' must give points for every criterion of the rubric, and nothing else";
        return CD_EINVAL;
    }
    double sum = 0, total = 0;
    int passed = 1;
    for (int i = 0; i < r->n_criteria; i++) {
        const json_t *v = json_object_get(scores, r->criteria[i].id);
        if (!v) {
            *why = "'scores' must give points for every criterion of the rubric, and nothing else";
            return CD_EINVAL;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > r->scale) {
            *why = "points must be whole numbers from 0 to the rubric's scale";
            return CD_EINVAL;
        }
        int points = (int)json_integer_value(v);
        sum += r->criteria[i].weight * points / r->scale;
        total += r->criteria[i].weight;
        if (points == 0 && r->criteria[i].is_critical)
            passed = 0;
    }
    double score = total > 0 ? 100.0 * sum / total : 0;
    /* Rounded to 0.01 so that stored and recomputed scores compare equal. */
    score = round(score * 100) / 100;
    *score_out = score;
    *passed_out = passed && score >= r->pass_mark;
    return 0;
}

/* Ends a query whose rows went into the JSON value rows: finalizes st and returns
 * store_db_step_status(step), its last db_step()'s result. On failure rows is released. */
static int end_rows(struct db_stmt *st, int step, json_t *rows)
{
    int rc = store_db_step_status(step);
    db_finalize(st);
    if (rc)
        json_decref(rows);
    return rc;
}

/* ---- sampling ---- */

/* splitmix64: the sampling key of a conversation under a seed. */
static uint64_t mix(uint64_t seed, uint64_t id)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (id + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct candidate {
    int64_t conversation, agent_id;
    char queue[64];
    uint64_t key;
};

static int by_key(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->conversation > y->conversation) - (x->conversation < y->conversation);
}

static int by_agent_queue_id(const void *a, const void *b)
{
    const struct qa_pick *x = a, *y = b;
    if (x->agent_id != y->agent_id)
        return x->agent_id < y->agent_id ? -1 : 1;
    int c = strcmp(x->queue, y->queue);
    if (c)
        return c;
    return (x->conversation > y->conversation) - (x->conversation < y->conversation);
}

/* One agent's candidates c[0..n) (sorted by queue): appends its picks. */
static void draw_agent(struct candidate *c, int n, int per_agent, struct qa_pick *out, int *n_out)
{
    int want = per_agent < n ? per_agent : n;
    /* Strata: runs of one queue. */
    int starts[256], sizes[256], alloc[256];
    double rema[256];
    int n_strata = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && !strcmp(c[j].queue, c[i].queue))
            j++;
        if (n_strata < 256) {
            starts[n_strata] = i;
            sizes[n_strata] = j - i;
            n_strata++;
        }
        i = j;
    }
    int given = 0;
    for (int k = 0; k < n_strata; k++) {
        double share = (double)want * sizes[k] / n;
        alloc[k] = (int)share;
        rema[k] = share - alloc[k];
        given += alloc[k];
    }
    /* Largest remainders first; ties to the bigger stratum, then the first queue. */
    while (given < want) {
        int best = -1;
        for (int k = 0; k < n_strata; k++) {
            if (alloc[k] >= sizes[k])
                continue;
            if (best < 0 || rema[k] > rema[best] + 1e-12 ||
                (fabs(rema[k] - rema[best]) <= 1e-12 && sizes[k] > sizes[best]))
                best = k;
        }
        if (best < 0)
            break;
        alloc[best]++;
        rema[best] = -1;
        given++;
    }
    for (int k = 0; k < n_strata; k++) {
        struct candidate *st = c + starts[k];
        qsort(st, (size_t)sizes[k], sizeof *st, by_key);
        for (int i = 0; i < alloc[k]; i++) {
            struct qa_pick *p = &out[(*n_out)++];
            p->conversation = st[i].conversation;
            p->agent_id = st[i].agent_id;
            snprintf(p->queue, sizeof p->queue, "%s", st[i].queue);
        }
    }
}

int qa_sample_draw(struct store *s, int64_t since_s, int64_t until_s, int per_agent, uint64_t seed,
                   struct qa_pick **out, int *n_out)
{
#define DRAW_SQL(by_bytes)                                                                         \
    "SELECT id, agent_id, queue FROM conversations WHERE closed_s >= ?1 AND closed_s < ?2"         \
    " AND closed_s > 0 AND agent_id > 0 AND picked_s > 0 AND state IN ('closed', 'rated')"         \
    " ORDER BY agent_id, queue" by_bytes ", id LIMIT ?3"
    static const char sql[] = DRAW_SQL(""), pg_sql[] = DRAW_SQL(BY_BYTES_PG);
#undef DRAW_SQL
    *out = NULL;
    *n_out = 0;
    if (per_agent < 1)
        return CD_EINVAL;
    struct db_stmt *st = store_db_prepare_window(s, sql, pg_sql, since_s, until_s);
    if (!st)
        return CD_EIO;
    int rc;
    db_bind_int64(st, 3, MAX_CANDIDATES);
    struct candidate *c = NULL;
    int n = 0, cap = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (cd_grow(&c, &cap, n, sizeof *c, 64))
            break;
        c[n].conversation = db_col_int64(st, 0);
        c[n].agent_id = db_col_int64(st, 1);
        snprintf(c[n].queue, sizeof c[n].queue, "%s", db_col_str(st, 2));
        c[n].key = mix(seed, (uint64_t)c[n].conversation);
        n++;
    }
    rc = rc == DB_ROW ? CD_ENOMEM : store_db_step_status(rc);
    db_finalize(st);
    struct qa_pick *picks = NULL;
    if (!rc && n > 0 && !(picks = calloc((size_t)n, sizeof *picks)))
        rc = CD_ENOMEM;
    if (!rc) {
        for (int i = 0; i < n;) {
            int j = i;
            while (j < n && c[j].agent_id == c[i].agent_id)
                j++;
            draw_agent(c + i, j - i, per_agent, picks, n_out);
            i = j;
        }
        if (*n_out > 1)
            qsort(picks, (size_t)*n_out, sizeof *picks, by_agent_queue_id);
        *out = picks;
    } else {
        free(picks);
        *n_out = 0;
    }
    free(c);
    return rc;
}

int qa_sample_save(struct store *s, const char *week, uint64_t seed, int64_t drawn_by,
                   const struct qa_pick *picks, int n)
{
    /* All or nothing: a transaction of its own, or a savepoint in the caller's (which a
     * failure here then rolls back to, so the caller's transaction goes on, on PostgreSQL
     * too). */
    struct db *db = store_db(s);
    int is_own_tx = !db_in_tx(db);
    int rc = db_exec(db, is_own_tx ? "BEGIN" : "SAVEPOINT qa_sample", NULL);
    if (rc)
        return rc;
    struct db_stmt *del = store_db_prepare(s, "DELETE FROM qa_samples WHERE week = ?1", NULL);
    struct db_stmt *ins =
        store_db_prepare(s,
                         "INSERT INTO qa_samples (week, conversation, agent_id, queue,"
                         " seed, drawn_by, created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                         NULL);
    if (!del || !ins)
        rc = CD_EIO;
    if (!rc) {
        db_bind_text(del, 1, week);
        rc = db_run(del);
    }
    for (int i = 0; i < n && !rc; i++) {
        db_bind_text(ins, 1, week);
        db_bind_int64(ins, 2, picks[i].conversation);
        db_bind_int64(ins, 3, picks[i].agent_id);
        db_bind_text(ins, 4, picks[i].queue);
        db_bind_int64(ins, 5, (int64_t)seed);
        db_bind_int64(ins, 6, drawn_by);
        db_bind_int64(ins, 7, cd_wall_s());
        rc = db_run(ins);
    }
    db_finalize(del);
    db_finalize(ins);
    if (is_own_tx) {
        if (rc || db_exec(db, "COMMIT", NULL)) {
            db_exec(db, "ROLLBACK", NULL);
            rc = rc ? rc : CD_EIO;
        }
    } else {
        if (rc)
            db_exec(db, "ROLLBACK TO qa_sample", NULL);
        db_exec(db, "RELEASE qa_sample", NULL);
    }
    return rc;
}

int qa_sample_list(struct store *s, const char *week, int64_t reviewer_id, json_t **out)
{
#define LIST_SQL(by_bytes)                                                                         \
    "SELECT q.conversation, q.agent_id, coalesce(u.name, '#' || q.agent_id), q.queue, q.seed,"     \
    " (SELECT count(*) FROM qa_audits a WHERE a.conversation = q.conversation),"                   \
    " EXISTS (SELECT 1 FROM qa_audits a WHERE a.conversation = q.conversation"                     \
    " AND a.reviewer_id = ?2)"                                                                     \
    " FROM qa_samples q LEFT JOIN users u ON u.id = q.agent_id WHERE q.week = ?1"                  \
    " ORDER BY coalesce(u.name, '#' || q.agent_id)" by_bytes ", q.queue" by_bytes ","              \
    " q.conversation LIMIT ?3"
    static const char sql[] = LIST_SQL(""), pg_sql[] = LIST_SQL(BY_BYTES_PG);
#undef LIST_SQL
    *out = NULL;
    struct db_stmt *st = store_db_prepare(s, sql, pg_sql);
    if (!st)
        return CD_EIO;
    int rc;
    db_bind_text(st, 1, week);
    db_bind_int64(st, 2, reviewer_id);
    db_bind_int64(st, 3, MAX_LISTED);
    json_t *list = json_array(), *seed = json_null();
    while ((rc = db_step(st)) == DB_ROW) {
        if (json_is_null(seed)) {
            json_decref(seed);
            seed = json_integer(db_col_int64(st, 4));
        }
        json_array_append_new(list, json_pack("{s:I, s:I, s:s, s:s, s:I, s:b}", "conversation",
                                              (json_int_t)db_col_int64(st, 0), "agent_id",
                                              (json_int_t)db_col_int64(st, 1), "agent",
                                              db_col_str(st, 2), "queue", db_col_str(st, 3),
                                              "audits", (json_int_t)db_col_int64(st, 5),
                                              "reviewed_by_me", db_col_int(st, 6)));
    }
    if ((rc = end_rows(st, rc, list)) != 0) {
        json_decref(seed);
        return rc;
    }
    *out = json_pack("{s:s, s:o, s:o}", "week", week, "seed", seed, "samples", list);
    return *out ? 0 : CD_ENOMEM;
}

/* ---- audits ---- */

int qa_audit_save(struct store *s, const struct qa_rubric *r, int64_t conversation,
                  const struct auth_user *reviewer, const json_t *scores, const char *comment,
                  json_t **out, const char **why)
{
    if (out)
        *out = NULL;
    *why = NULL;
    if (reviewer->role != AUTH_ROLE_SUPERVISOR && reviewer->role != AUTH_ROLE_ADMIN) {
        *why = "only supervisors and admins score conversations";
        return CD_EPERM;
    }
    struct store_conversation c;
    int rc = store_conversation_get(s, conversation, &c);
    if (rc)
        return rc;
    int64_t agent = c.agent_id;
    char queue[STORE_NAME_MAX];
    snprintf(queue, sizeof queue, "%s", c.queue);
    int is_auditable = agent > 0 && c.picked_s > 0 &&
                       (c.state == STORE_STATE_CLOSED || c.state == STORE_STATE_RATED);
    store_conversation_clear(&c);
    if (!is_auditable) {
        *why = "only conversations an agent picked up and closed are audited";
        return CD_ESTATE;
    }
    if (agent == reviewer->id) {
        *why = "nobody reviews their own conversations";
        return CD_EPERM;
    }
    if (reviewer->role == AUTH_ROLE_SUPERVISOR && reviewer->skills[0] &&
        !auth_has_skill(reviewer->skills, queue)) {
        *why = "this conversation's queue is not one of the supervisor's queues";
        return CD_EPERM;
    }
    double score;
    int passed;
    if ((rc = qa_score(r, scores, &score, &passed, why)))
        return rc;
    if (comment && strlen(comment) > COMMENT_MAX) {
        *why = "'comment' is at most 2000 bytes";
        return CD_ETOOBIG;
    }
    char *scores_text = json_dumps(scores, JSON_COMPACT | JSON_SORT_KEYS);
    if (!scores_text)
        return CD_ENOMEM;
    struct db_stmt *st = store_db_prepare(
        s,
        "INSERT INTO qa_audits (conversation, agent_id, reviewer_id, rubric, scores,"
        " score, passed, comment, created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (conversation, reviewer_id) DO UPDATE SET rubric = ?4,"
        " scores = ?5, score = ?6, passed = ?7, comment = ?8, created_s = ?9"
        " RETURNING id",
        NULL);
    int64_t id = 0, now = cd_wall_s();
    rc = st ? 0 : CD_EIO;
    if (!rc) {
        db_bind_int64(st, 1, conversation);
        db_bind_int64(st, 2, agent);
        db_bind_int64(st, 3, reviewer->id);
        db_bind_text(st, 4, r->name);
        db_bind_text(st, 5, scores_text);
        db_bind_double(st, 6, score);
        db_bind_int64(st, 7, passed);
        if (comment && *comment)
            db_bind_text(st, 8, comment);
        db_bind_int64(st, 9, now);
        int step = db_step(st);
        if (step == DB_ROW) {
            id = db_col_int64(st, 0);
            step = db_step(st);
        }
        rc = store_db_step_status(step);
        db_finalize(st);
    }
    if (!rc && out)
        *out = json_pack("{s:I, s:I, s:I, s:I, s:s, s:f, s:b, s:O, s:s?, s:I}", "id",
                         (json_int_t)id, "conversation", (json_int_t)conversation, "agent_id",
                         (json_int_t)agent, "reviewer_id", (json_int_t)reviewer->id, "rubric",
                         r->name, "score", score, "passed", passed, "scores", scores, "comment",
                         comment && *comment ? comment : NULL, "created_s", (json_int_t)now);
    free(scores_text);
    return rc;
}

#define AUDIT_COLUMNS                                                                              \
    "a.id, a.conversation, a.agent_id, coalesce(ua.name, '#' || a.agent_id), a.reviewer_id,"       \
    " coalesce(ur.name, '#' || a.reviewer_id), a.score, a.passed, a.scores, a.comment,"            \
    " a.created_s, c.closed_s"
#define AUDIT_FROM                                                                                 \
    " FROM qa_audits a JOIN conversations c ON c.id = a.conversation"                              \
    " LEFT JOIN users ua ON ua.id = a.agent_id LEFT JOIN users ur ON ur.id = a.reviewer_id"

static json_t *audit_row(struct db_stmt *st)
{
    json_t *scores = json_loads(db_col_str(st, 8), 0, NULL);
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:s, s:I, s:s, s:f, s:b, s:o, s:I, s:I}", "id",
                  (json_int_t)db_col_int64(st, 0), "conversation", (json_int_t)db_col_int64(st, 1),
                  "agent_id", (json_int_t)db_col_int64(st, 2), "agent", db_col_str(st, 3),
                  "reviewer_id", (json_int_t)db_col_int64(st, 4), "reviewer", db_col_str(st, 5),
                  "score", db_col_double(st, 6), "passed", db_col_int(st, 7), "scores",
                  scores ? scores : json_object(), "created_s", (json_int_t)db_col_int64(st, 10),
                  "closed_s", (json_int_t)db_col_int64(st, 11));
    if (o && !db_col_is_null(st, 9))
        json_object_set_new(o, "comment", json_string(db_col_str(st, 9)));
    return o;
}

int qa_audits_list(struct store *s, int64_t agent_id, int64_t since_s, int64_t until_s,
                   json_t **out)
{
    static const char sql[] =
        "SELECT " AUDIT_COLUMNS AUDIT_FROM " WHERE c.closed_s >= ?1 AND c.closed_s < ?2"
        " AND (CAST(?3 AS BIGINT) = 0 OR a.agent_id = ?3)"
        " ORDER BY a.created_s DESC, a.id DESC LIMIT ?4";
    *out = NULL;
    struct db_stmt *st = store_db_prepare_window(s, sql, NULL, since_s, until_s);
    if (!st)
        return CD_EIO;
    int rc;
    db_bind_int64(st, 3, agent_id);
    db_bind_int64(st, 4, MAX_LISTED);
    json_t *list = json_array();
    while ((rc = db_step(st)) == DB_ROW)
        json_array_append_new(list, audit_row(st));
    if ((rc = end_rows(st, rc, list)) != 0)
        return rc;
    *out = json_pack("{s:o}", "audits", list);
    return *out ? 0 : CD_ENOMEM;
}

int qa_calibration(struct store *s, const struct qa_rubric *r, int64_t since_s, int64_t until_s,
                   json_t **out)
{
#define CALIBRATION_SQL(by_bytes)                                                                  \
    "SELECT " AUDIT_COLUMNS AUDIT_FROM " WHERE c.closed_s >= ?1 AND c.closed_s < ?2"               \
    " AND (SELECT count(*) FROM qa_audits b WHERE b.conversation = a.conversation) >= 2"           \
    " ORDER BY a.conversation, coalesce(ur.name, '#' || a.reviewer_id)" by_bytes " LIMIT ?3"
    static const char sql[] = CALIBRATION_SQL(""), pg_sql[] = CALIBRATION_SQL(BY_BYTES_PG);
#undef CALIBRATION_SQL
    *out = NULL;
    struct db_stmt *st = store_db_prepare_window(s, sql, pg_sql, since_s, until_s);
    if (!st)
        return CD_EIO;
    int rc;
    db_bind_int64(st, 3, MAX_LISTED);
    json_t *convs = json_array(), *cur = NULL, *reviews = NULL;
    int64_t cur_id = -1;
    while ((rc = db_step(st)) == DB_ROW) {
        int64_t id = db_col_int64(st, 1);
        if (id != cur_id) {
            cur_id = id;
            reviews = json_array();
            cur = json_pack("{s:I, s:I, s:s, s:o}", "conversation", (json_int_t)id, "agent_id",
                            (json_int_t)db_col_int64(st, 2), "agent", db_col_str(st, 3), "reviews",
                            reviews);
            json_array_append_new(convs, cur);
        }
        json_t *a = audit_row(st);
        json_array_append_new(reviews, a);
    }
    if ((rc = end_rows(st, rc, convs)) != 0)
        return rc;
    /* Spread per criterion and conversation, and its mean per criterion. */
    double *sum_spread = calloc((size_t)r->n_criteria + 1, sizeof *sum_spread);
    int *n_spread = calloc((size_t)r->n_criteria + 1, sizeof *n_spread);
    if (!sum_spread || !n_spread) {
        free(sum_spread);
        free(n_spread);
        json_decref(convs);
        return CD_ENOMEM;
    }
    size_t i;
    json_t *conv;
    json_array_foreach(convs, i, conv)
    {
        json_t *rv = json_object_get(conv, "reviews"), *crit = json_array();
        double lo = 1e9, hi = -1e9;
        size_t k;
        json_t *a;
        json_array_foreach(rv, k, a)
        {
            double sc = json_real_value(json_object_get(a, "score"));
            lo = sc < lo ? sc : lo;
            hi = sc > hi ? sc : hi;
        }
        json_object_set_new(conv, "score_spread", json_real(hi - lo));
        for (int c = 0; c < r->n_criteria; c++) {
            json_t *points = json_array();
            double mn = 1e9, mx = -1e9, sum = 0, sq = 0;
            int n = 0;
            json_array_foreach(rv, k, a)
            {
                json_t *v = json_object_get(json_object_get(a, "scores"), r->criteria[c].id);
                if (!json_is_integer(v)) {
                    json_array_append_new(points, json_null());
                    continue;
                }
                double p = (double)json_integer_value(v);
                json_array_append_new(points, json_integer(json_integer_value(v)));
                mn = p < mn ? p : mn;
                mx = p > mx ? p : mx;
                sum += p;
                sq += p * p;
                n++;
            }
            double mean = n ? sum / n : 0;
            double sd = n ? sqrt(fmax(0, sq / n - mean * mean)) : 0;
            double spread = n ? mx - mn : 0;
            if (n >= 2) {
                sum_spread[c] += spread;
                n_spread[c]++;
            }
            json_array_append_new(crit,
                                  json_pack("{s:s, s:s, s:o, s:f, s:f}", "id", r->criteria[c].id,
                                            "label", r->criteria[c].label, "points", points,
                                            "spread", spread, "stddev", round(sd * 1000) / 1000));
        }
        json_object_set_new(conv, "criteria", crit);
    }
    json_t *summary = json_array();
    for (int c = 0; c < r->n_criteria; c++)
        json_array_append_new(summary, json_pack("{s:s, s:s, s:i, s:f}", "id", r->criteria[c].id,
                                                 "label", r->criteria[c].label, "conversations",
                                                 n_spread[c], "mean_spread",
                                                 n_spread[c] ? sum_spread[c] / n_spread[c] : 0.0));
    free(sum_spread);
    free(n_spread);
    *out = json_pack("{s:i, s:o, s:o}", "scale", r->scale, "conversations", convs, "criteria",
                     summary);
    return *out ? 0 : CD_ENOMEM;
}

int qa_scores(struct store *s, int64_t agent_id, int64_t since_s, int64_t until_s, json_t **out)
{
#define SCORES_SQL(by_bytes)                                                                       \
    "SELECT a.agent_id, coalesce(ua.name, '#' || a.agent_id),"                                     \
    " c.closed_s, a.score, a.passed" AUDIT_FROM " WHERE c.closed_s >= ?1 AND c.closed_s < ?2"      \
    " AND (CAST(?3 AS BIGINT) = 0 OR a.agent_id = ?3)"                                             \
    " ORDER BY coalesce(ua.name, '#' || a.agent_id)" by_bytes ", a.agent_id, c.closed_s LIMIT ?4"
    static const char sql[] = SCORES_SQL(""), pg_sql[] = SCORES_SQL(BY_BYTES_PG);
#undef SCORES_SQL
    *out = NULL;
    struct db_stmt *st = store_db_prepare_window(s, sql, pg_sql, since_s, until_s);
    if (!st)
        return CD_EIO;
    int rc;
    db_bind_int64(st, 3, agent_id);
    db_bind_int64(st, 4, MAX_CANDIDATES);
    json_t *agents = json_array(), *weeks = NULL, *wk = NULL;
    int64_t cur_agent = -1;
    char cur_week[16] = "";
    double sum = 0;
    int64_t n = 0, n_passed = 0;
#define FLUSH_WEEK()                                                                               \
    do {                                                                                           \
        if (wk) {                                                                                  \
            json_object_set_new(wk, "n", json_integer(n));                                         \
            json_object_set_new(wk, "score", json_real(round(sum / (double)n * 100) / 100));       \
            json_object_set_new(wk, "passed", json_integer(n_passed));                             \
            wk = NULL;                                                                             \
        }                                                                                          \
    } while (0)
    while ((rc = db_step(st)) == DB_ROW) {
        int64_t agent = db_col_int64(st, 0);
        char week[16];
        report_week_name(db_col_int64(st, 2), week, sizeof week);
        if (agent != cur_agent) {
            FLUSH_WEEK();
            cur_agent = agent;
            cur_week[0] = '\0';
            weeks = json_array();
            json_array_append_new(agents,
                                  json_pack("{s:I, s:s, s:o}", "agent_id", (json_int_t)agent,
                                            "agent", db_col_str(st, 1), "weeks", weeks));
        }
        if (strcmp(week, cur_week)) {
            FLUSH_WEEK();
            snprintf(cur_week, sizeof cur_week, "%s", week);
            wk = json_pack("{s:s}", "week", week);
            json_array_append_new(weeks, wk);
            sum = 0;
            n = n_passed = 0;
        }
        sum += db_col_double(st, 3);
        n++;
        n_passed += db_col_int(st, 4) != 0;
    }
    FLUSH_WEEK();
#undef FLUSH_WEEK
    if ((rc = end_rows(st, rc, agents)) != 0)
        return rc;
    *out = json_pack("{s:o}", "agents", agents);
    return *out ? 0 : CD_ENOMEM;
}
