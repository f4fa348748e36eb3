/* chat_team: the frames a support team's measures add to the protocols: the
 * NPS question after the CSAT rating (customer "nps") and the escalation
 * status update (agent "status_update"), which reaches the customer as an
 * agent_message carrying a "status_update" card. Same rules as the
 * other protocol files (chat_int.h): a frame is validated whole, its writes
 * are one unit of work, and what it causes is queued until the commit. */
#include "chat_int.h"

#include "incident.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *chat_nps_request(void)
{
    return json_pack("{s:s, s:i, s:i}", "type", "nps_request", "min", 0, "max", 10);
}

/* nps {score 0-10, comment?}: after the conversation closed, when the
 * deployment asks (chat_settings.is_nps). A second answer replaces the first. */
void chat_customer_nps(struct chat *chat, struct conn *k, json_t *o)
{
    uint64_t id = k->node.key;
    struct conv *c = k->conv;
    if (!chat->settings.is_nps) {
        chat_emit_error(chat, id, "bad_state", "this service does not ask that question", NULL, 0);
        return;
    }
    int64_t score;
    const char *comment;
    if (chat_need_int(chat, id, o, "score", 0, 10, &score) < 0 ||
        chat_field_str(chat, id, o, "comment", 0, NOTE_MAX_BYTES, &comment, NULL) < 0)
        return;
    if (c->rec.state != STORE_STATE_CLOSED && c->rec.state != STORE_STATE_RATED) {
        chat_emit_error(chat, id, "bad_state", "answer after the conversation is closed", NULL, 0);
        return;
    }
    char *masked = comment ? redact_text(chat->redactor, comment, strlen(comment), NULL) : NULL;
    if (comment && !masked) {
        chat_emit_error(chat, id, "store_failed", "out of memory", NULL, 0);
        return;
    }
    int rc = chat_unit_begin(chat);
    if (!rc)
        rc = report_nps_save(chat->store, c->rec.id, (int)score, masked);
    free(masked);
    if (rc) {
        chat_unit_undo(chat);
        chat_emit_error(chat, id, "store_failed", cd_strerror(rc), NULL, 0);
        return;
    }
    chat_unit_end(chat);
    chat_emit_customer(chat, c, json_pack("{s:s, s:i}", "type", "nps_ok", "score", (int)score));
}

/* ---- escalation status updates ---- */

#define OWNER_MAX       128
#define STATUS_MAX      500
#define TIME_ZONE_MAX   64
#define NEXT_UPDATE_MAX 40

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Parses "YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM|-HH:MM)" into epoch seconds.
 * Returns 0 or -1. */
static int parse_time(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5 || n != 16)
        return -1;
    const char *p = s + n;
    if (*p == ':') {
        if (!(p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'))
            return -1;
        sec = (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
    }
    int offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh > 14 || om > 59)
            return -1;
        offset = (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        p += 6;
    } else {
        return -1;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return 0;
}

static int time_zone_valid(const char *tz)
{
    for (const char *p = tz; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '_' || *p == '+' || *p == '-'))
            return 0;
    return 1;
}

/* A masked copy of s ("" for NULL), or NULL when out of memory. */
static char *masked(struct chat *chat, const char *s)
{
    s = s ? s : "";
    return redact_text(chat->redactor, s, strlen(s), NULL);
}

void chat_agent_status_update(struct chat *chat, struct conn *k, struct conv *c, json_t *o)
{
    uint64_t id = k->node.key;
    const char *client_id, *owner, *status, *next_update, *time_zone, *tracking, *workaround;
    if (chat_need_str(chat, id, o, "id", 1, AGENT_ID_MAX, &client_id, NULL) < 0 ||
        chat_need_str(chat, id, o, "owner", 1, OWNER_MAX, &owner, NULL) < 0 ||
        chat_need_str(chat, id, o, "status", 1, STATUS_MAX, &status, NULL) < 0 ||
        chat_need_str(chat, id, o, "next_update", 1, NEXT_UPDATE_MAX, &next_update, NULL) < 0 ||
        chat_field_str(chat, id, o, "time_zone", 0, TIME_ZONE_MAX, &time_zone, NULL) < 0 ||
        chat_field_str(chat, id, o, "tracking_id", 0, INCIDENT_ID_MAX - 1, &tracking, NULL) < 0 ||
        chat_field_str(chat, id, o, "workaround", 0, NOTE_MAX_BYTES, &workaround, NULL) < 0)
        return;
    int64_t next_s;
    if (parse_time(next_update, &next_s)) {
        chat_emit_error(chat, id, "bad_frame",
                        "field 'next_update' must be a date and time with its offset, e.g. "
                        "2026-12-07T10:00+01:00",
                        client_id, c->rec.id);
        return;
    }
    if (next_s < cd_wall_s() - 300) {
        chat_emit_error(chat, id, "bad_frame", "field 'next_update' is in the past", client_id,
                        c->rec.id);
        return;
    }
    if (time_zone && !time_zone_valid(time_zone)) {
        chat_emit_error(chat, id, "bad_frame",
                        "field 'time_zone' is an IANA name such as Europe/Madrid", client_id,
                        c->rec.id);
        return;
    }
    if (tracking && *tracking && !incident_id_valid(tracking)) {
        chat_emit_error(chat, id, "bad_frame",
                        "field 'tracking_id' looks like INC-2026-1206-0042 (or leave it out for "
                        "a new one)",
                        client_id, c->rec.id);
        return;
    }
    char tid[INCIDENT_ID_MAX];
    int rc = chat_unit_begin(chat);
    if (!rc && tracking && *tracking)
        snprintf(tid, sizeof tid, "%s", tracking);
    else if (!rc)
        rc = incident_id_new(chat->store, cd_wall_s(), tid);
    char *m_owner = masked(chat, owner), *m_status = masked(chat, status);
    char *m_work = masked(chat, workaround);
    json_t *su = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "tracking_id", tid, "status",
                           m_status ? m_status : "", "owner", m_owner ? m_owner : "", "next_update",
                           next_update, "next_update_s", (json_int_t)next_s, "time_zone",
                           time_zone ? time_zone : "", "workaround", m_work ? m_work : "");
    json_t *meta = json_pack("{s:s, s:O}", "agent", k->agent.name, "status_update", su);
    char *meta_text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    struct cd_buf text = {0};
    if (!rc && (!m_owner || !m_status || !m_work || !su || !meta_text))
        rc = CD_ENOMEM;
    if (!rc)
        rc = cd_buf_printf(&text, "Status update %s\nStatus: %s\nOwner: %s\nNext update: %s%s%s%s",
                           tid, m_status, m_owner, next_update, time_zone && *time_zone ? " (" : "",
                           time_zone ? time_zone : "", time_zone && *time_zone ? ")" : "");
    if (!rc && *m_work)
        rc = cd_buf_printf(&text, "\nWorkaround: %s", m_work);
    char scoped[CLIENT_ID_MAX + 1];
    chat_agent_scoped_id(k, client_id, scoped, sizeof scoped);
    int64_t seq = 0;
    if (!rc)
        rc = chat_append_message(chat, c, STORE_SENDER_AGENT, scoped, NULL, text.data, meta_text,
                                 k->agent.id, &seq);
    if (!rc)
        rc = incident_record(chat->store, tid, c->rec.id, seq, k->agent.id, m_status);
    if (rc == CD_EEXIST) {
        /* The same update sent again: it is stored once; the first one's seq. */
        chat_unit_undo(chat);
        json_t *ack = chat_agent_ack(c, client_id, seq);
        json_object_set_new(ack, "duplicate", json_true());
        chat_emit(chat, id, ack);
    } else if (!chat_unit_finish(chat, rc, id, client_id, c->rec.id)) {
        chat->m.n_agent_messages++;
        chat_emit_customer_stored(chat, c,
                                  json_pack("{s:s, s:I, s:s, s:s, s:O}", "type", "agent_message",
                                            "seq", (json_int_t)seq, "text", text.data, "agent",
                                            k->agent.name, "status_update", su));
        json_t *ack = chat_agent_ack(c, client_id, seq);
        json_object_set_new(ack, "tracking_id", json_string(tid));
        chat_emit(chat, id, ack);
    }
    cd_buf_free(&text);
    free(meta_text);
    json_decref(meta);
    json_decref(su);
    free(m_owner);
    free(m_status);
    free(m_work);
}
