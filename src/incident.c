/* incident: tracking ids of escalation status updates and the index from a
 * tracking id to its messages (see incident.h), in the store's status_updates table on
 * either backend (db.h). The queries are rare (an escalation, a search): each is prepared
 * when it runs. */
#include "incident.h"

#include "store_db.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int incident_id_valid(const char *id)
{
    if (!id)
        return 0;
    const char *p = id;
    int n = 0;
    while (*p >= 'A' && *p <= 'Z') {
        p++;
        n++;
    }
    if (n < 2 || n > 8 || *p++ != '-')
        return 0;
    for (int part = 0; part < 3; part++) {
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
        if (part < 2 ? digits != 4 : digits < 4 || digits > 6)
            return 0;
        if (part < 2 && *p++ != '-')
            return 0;
    }
    return *p == '\0';
}

int incident_id_new(struct store *s, int64_t now_s, char out[INCIDENT_ID_MAX])
{
    time_t t = (time_t)now_s;
    struct tm tm;
    localtime_r(&t, &tm);
    char prefix[48];
    snprintf(prefix, sizeof prefix, "INC-%04d-%02d%02d-", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday);
    /* Several nodes: one at a time per day, to the commit (the select below then sees the
     * ids the others gave out). SQLite has one writer at a time already. */
    if (db_kind(store_db(s)) == DB_POSTGRES) {
        struct db_stmt *lock =
            store_db_prepare(s, "SELECT 1", "SELECT pg_advisory_xact_lock(hashtext(?1))");
        if (!lock)
            return CD_EIO;
        db_bind_text(lock, 1, prefix);
        int lrc = db_run(lock);
        db_finalize(lock);
        if (lrc)
            return lrc;
    }
    /* The day's ids: the prefix and a number (the prefix holds no pattern characters). SQLite
     * reads the number's leading digits with CAST; PostgreSQL takes them with a pattern, as a
     * cast of anything else would fail and take the transaction with it. */
    struct db_stmt *st =
        store_db_prepare(s,
                         "SELECT coalesce(max(CAST(substr(tracking_id, ?2) AS INTEGER)), 0)"
                         " FROM status_updates WHERE tracking_id GLOB ?1 || '[0-9]*'",
                         "SELECT coalesce(max(CAST(substring(substr(tracking_id, ?2::integer)"
                         " FROM '^[0-9]{1,18}') AS bigint)), 0)"
                         " FROM status_updates WHERE tracking_id LIKE ?1::text || '%'"
                         " AND substr(tracking_id, ?2::integer) ~ '^[0-9]'");
    if (!st)
        return CD_EIO;
    db_bind_text(st, 1, prefix);
    db_bind_int64(st, 2, (int64_t)strlen(prefix) + 1);
    int rc = db_step(st);
    int64_t last = rc == DB_ROW ? db_col_int64(st, 0) : 0;
    db_finalize(st);
    if (rc != DB_ROW)
        return rc < 0 ? rc : CD_EIO;
    if (last >= 999999)
        return CD_EFULL;
    snprintf(out, INCIDENT_ID_MAX, "%s%04lld", prefix, (long long)(last + 1));
    return 0;
}

int incident_record(struct store *s, const char *tracking_id, int64_t conversation, int64_t seq,
                    int64_t agent_id, const char *status)
{
    struct db_stmt *st =
        store_db_prepare(s,
                         "INSERT INTO status_updates (tracking_id, conversation, seq, agent_id,"
                         " status, created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         NULL);
    if (!st)
        return CD_EIO;
    db_bind_text(st, 1, tracking_id);
    db_bind_int64(st, 2, conversation);
    db_bind_int64(st, 3, seq);
    db_bind_int64(st, 4, agent_id);
    db_bind_text(st, 5, status);
    db_bind_int64(st, 6, cd_wall_s());
    int rc = db_run(st);
    db_finalize(st);
    return rc;
}

int incident_search(struct store *s, const char *tracking_id, json_t **out)
{
    *out = NULL;
    char id[INCIDENT_ID_MAX];
    snprintf(id, sizeof id, "%s", tracking_id);
    for (char *p = id; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    struct db_stmt *st =
        store_db_prepare(s,
                         "SELECT u.conversation, u.seq, u.agent_id, coalesce(a.name, ''),"
                         " u.status, u.created_s, m.meta FROM status_updates u"
                         " LEFT JOIN users a ON a.id = u.agent_id"
                         " LEFT JOIN messages m ON m.conversation = u.conversation"
                         " AND m.seq = u.seq WHERE u.tracking_id = ?1"
                         " ORDER BY u.created_s, u.id LIMIT 200",
                         NULL);
    if (!st)
        return CD_EIO;
    db_bind_text(st, 1, id);
    json_t *list = json_array();
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        const char *meta_text = db_col_text(st, 6);
        json_t *meta = meta_text ? json_loads(meta_text, 0, NULL) : NULL;
        json_t *su = meta ? json_object_get(meta, "status_update") : NULL;
        json_t *o = json_pack(
            "{s:I, s:I, s:I, s:s, s:s, s:I, s:O}", "conversation", (json_int_t)db_col_int64(st, 0),
            "seq", (json_int_t)db_col_int64(st, 1), "agent_id", (json_int_t)db_col_int64(st, 2),
            "agent", db_col_str(st, 3), "status", db_col_str(st, 4), "created_s",
            (json_int_t)db_col_int64(st, 5), "status_update", su ? su : json_null());
        json_decref(meta);
        json_array_append_new(list, o);
    }
    db_finalize(st);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    *out = json_pack("{s:s, s:o}", "tracking_id", id, "updates", list);
    return *out ? 0 : CD_ENOMEM;
}
