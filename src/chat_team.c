/* chat_team: the frames a support team's measures add to the protocols: the
 * NPS question after the CSAT rating (customer "nps"). Same rules as the
 * other protocol files (chat_int.h): a frame is validated whole, its writes
 * are one unit of work, and what it causes is queued until the commit. */
#include "chat_int.h"

#include "report.h"

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
