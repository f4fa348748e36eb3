/* incident: the escalation status updates agents send when a case is handed
 * on (owner, next update, tracking id, status, workaround), as records a
 * tracking id finds: which conversation, which message, what status.
 *
 * DESIGN. The update itself is an agent message of its conversation (its
 * text for any reader, its fields in the message's meta as "status_update"),
 * so transcripts, replays and exports carry it like any message; this module
 * keeps the index from tracking id to those messages, in the same unit of
 * work. Tracking ids look like INC-2026-1206-0042: a prefix, the local date
 * the incident was opened, and a number counting that day's incidents. The
 * index is a table of the store's database, SQLite or PostgreSQL alike. */
#ifndef CD_INCIDENT_H
#define CD_INCIDENT_H

#include <stdint.h>

#include <jansson.h>

#include "cd.h"

struct store;

#define INCIDENT_ID_MAX 32 /* with the NUL */

/* 1 if id is a tracking id: 2-8 capital letters, '-', 4 digits (year), '-',
 * 4 digits (month, day), '-', 4-6 digits; else 0. */
int incident_id_valid(const char *id);

/* A new tracking id "INC-YYYY-MMDD-NNNN" for local date of now_s, numbered
 * after the day's highest so far. Returns 0 or CD_E*. */
int incident_id_new(struct store *s, int64_t now_s, char out[INCIDENT_ID_MAX]);

/* Records that message seq of conversation is a status update of tracking_id
 * with status. Returns 0 or CD_E*. */
int incident_record(struct store *s, const char *tracking_id, int64_t conversation, int64_t seq,
                    int64_t agent_id, const char *status);

/* The updates of tracking_id (exact, any case), oldest first (at most 200):
 * {"tracking_id","updates":[{"conversation","seq","agent_id","agent","status",
 * "created_s","status_update":{...}}]}. Returns 0 (an empty list when none) or CD_E*. */
int incident_search(struct store *s, const char *tracking_id, json_t **out);

#endif
