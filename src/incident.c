/* incident: tracking ids of escalation status updates and the index from a
 * tracking id to its messages (see incident.h). */
#include "incident.h"

#include "store_sqlite.h"

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

static int done_rc(int rc)
{
    if (rc == SQLITE_DONE)
        return 0;
    return rc == SQLITE_FULL ? CD_EFULL : CD_EIO;
}

int incident_id_new(struct store *s, int64_t now_s, char out[INCIDENT_ID_MAX])
{
    time_t t = (time_t)now_s;
    struct tm tm;
    localtime_r(&t, &tm);
    char prefix[48];
    snprintf(prefix, sizeof prefix, "INC-%04d-%02d%02d-", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_sqlite_db(s),
                           "SELECT coalesce(max(CAST(substr(tracking_id, ?2) AS INTEGER)), 0)"
                           " FROM status_updates WHERE tracking_id GLOB ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return CD_EIO;
    char glob[64];
    snprintf(glob, sizeof glob, "%s[0-9]*", prefix);
    sqlite3_bind_text(st, 1, glob, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, (int)strlen(prefix) + 1);
    int rc = sqlite3_step(st);
    int64_t last = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return done_rc(rc);
    if (last >= 999999)
        return CD_EFULL;
    snprintf(out, INCIDENT_ID_MAX, "%s%04lld", prefix, (long long)(last + 1));
    return 0;
}

int incident_record(struct store *s, const char *tracking_id, int64_t conversation, int64_t seq,
                    int64_t agent_id, const char *status)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_sqlite_db(s),
                           "INSERT INTO status_updates (tracking_id, conversation, seq, agent_id,"
                           " status, created_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) != SQLITE_OK)
        return CD_EIO;
    sqlite3_bind_text(st, 1, tracking_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, conversation);
    sqlite3_bind_int64(st, 3, seq);
    sqlite3_bind_int64(st, 4, agent_id);
    sqlite3_bind_text(st, 5, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, cd_wall_s());
    int rc = done_rc(sqlite3_step(st));
    sqlite3_finalize(st);
    return rc;
}

int incident_search(struct store *s, const char *tracking_id, json_t **out)
{
    *out = NULL;
    char id[INCIDENT_ID_MAX];
    snprintf(id, sizeof id, "%s", tracking_id);
    for (char *p = id; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_sqlite_db(s),
                           "SELECT u.conversation, u.seq, u.agent_id, coalesce(a.name, ''),"
                           " u.status, u.created_s, m.meta FROM status_updates u"
                           " LEFT JOIN users a ON a.id = u.agent_id"
                           " LEFT JOIN messages m ON m.conversation = u.conversation"
                           " AND m.seq = u.seq WHERE u.tracking_id = ?1"
                           " ORDER BY u.created_s, u.id LIMIT 200",
                           -1, &st, NULL) != SQLITE_OK)
        return CD_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *meta_text = sqlite3_column_text(st, 6);
        json_t *meta = meta_text ? json_loads((const char *)meta_text, 0, NULL) : NULL;
        json_t *su = meta ? json_object_get(meta, "status_update") : NULL;
        json_t *o = json_pack(
            "{s:I, s:I, s:I, s:s, s:s, s:I, s:O}", "conversation",
            (json_int_t)sqlite3_column_int64(st, 0), "seq", (json_int_t)sqlite3_column_int64(st, 1),
            "agent_id", (json_int_t)sqlite3_column_int64(st, 2), "agent",
            (const char *)sqlite3_column_text(st, 3), "status",
            (const char *)sqlite3_column_text(st, 4), "created_s",
            (json_int_t)sqlite3_column_int64(st, 5), "status_update", su ? su : json_null());
        json_decref(meta);
        json_array_append_new(list, o);
    }
    sqlite3_finalize(st);
    rc = done_rc(rc);
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = json_pack("{s:s, s:o}", "tracking_id", id, "updates", list);
    return *out ? 0 : CD_ENOMEM;
}
