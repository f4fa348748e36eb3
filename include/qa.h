/* qa: quality audits of agents' conversations: the rubric (a JSON file under
 * qa/), the weekly sample drawn per agent, reviewers' scores, the
 * calibration view of reviewers' spread, and scores per agent over time.
 *
 * DESIGN. Like report.c, qa.c keeps its tables in the store's database
 * (SQLite or PostgreSQL) and queries them on the store's connection. The
 * sample is stratified by queue and reproducible: each
 * candidate conversation gets a key from a hash of (seed, conversation id),
 * and each stratum takes its lowest keys, so the same seed draws the same
 * conversations whatever order the rows come in, and a conversation added
 * later does not reshuffle the others. Who may score what is decided here,
 * not in the routes: reviewers are supervisors or admins, a supervisor with
 * skills only reviews those queues, and nobody reviews their own chats. */
#ifndef CD_QA_H
#define CD_QA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cd.h"

struct store;
struct auth_user;

#define QA_CRITERIA_MAX 32
#define QA_ID_MAX       32

struct qa_criterion {
    char id[QA_ID_MAX]; /* [a-z0-9_-], unique in the rubric */
    char label[160];    /* what the reviewer checks */
    double weight;      /* > 0 */
    int is_critical;    /* scored 0: the audit fails whatever the total */
};

/* A rubric: criteria scored 0..scale each; score = the weighted mean of
 * points / scale, in percent; passed when score >= pass_mark and no
 * critical criterion scored 0. */
struct qa_rubric {
    char name[64];
    double pass_mark; /* percent, 0-100 */
    int scale;        /* points per criterion, 1-10 (default 4) */
    struct qa_criterion criteria[QA_CRITERIA_MAX];
    int n_criteria;
};

/* Parses a rubric: {"name", "pass_mark", "scale"?, "criteria": [{"id",
 * "label", "weight", "critical"?}]}. Returns 0, or CD_EPARSE / CD_EINVAL
 * with a malloc'd message naming the problem in *err (if err is not NULL). */
int qa_rubric_parse(const char *text, size_t n, struct qa_rubric *out, char **err);

/* Reads and parses the rubric file at path. CD_ENOTFOUND if there is none. */
int qa_rubric_load(const char *path, struct qa_rubric *out, char **err);

/* The rubric as JSON (new reference, NULL when out of memory). */
json_t *qa_rubric_json(const struct qa_rubric *r);

/* Scores {"criterion": points} against r: *score_out gets the percent,
 * *passed_out 1 or 0. Returns 0, or CD_EINVAL with a static message in *why
 * (a criterion missing or unknown, points not an integer in 0..scale). */
int qa_score(const struct qa_rubric *r, const json_t *scores, double *score_out, int *passed_out,
             const char **why);

/* ---- sampling ---- */

struct qa_pick {
    int64_t conversation;
    int64_t agent_id;
    char queue[64];
};

/* Draws up to per_agent conversations for each agent among those an agent
 * closed in [since_s, until_s), stratified by queue (each queue's share of
 * the agent's sample follows its share of the agent's chats, largest
 * remainder first), random within each queue from seed. *out is malloc'd
 * (free() it), ordered by agent, queue, conversation. Returns 0 or CD_E*. */
int qa_sample_draw(struct store *s, int64_t since_s, int64_t until_s, int per_agent, uint64_t seed,
                   struct qa_pick **out, int *n_out);

/* Replaces the stored sample of week with picks. Returns 0 or CD_E*. */
int qa_sample_save(struct store *s, const char *week, uint64_t seed, int64_t drawn_by,
                   const struct qa_pick *picks, int n);

/* The stored sample of week: {"week","seed","samples":[{"conversation",
 * "agent_id","agent","queue","audits","reviewed_by_me"}]}; seed is null when
 * none was drawn. reviewer_id: for "reviewed_by_me". */
int qa_sample_list(struct store *s, const char *week, int64_t reviewer_id, json_t **out);

/* ---- audits ---- */

/* Stores reviewer's audit of conversation (replacing their earlier one).
 * Returns 0 with the stored audit as JSON in *out (may be NULL); CD_EPERM
 * (not a supervisor or admin, the queue is outside the supervisor's skills,
 * or the reviewer handled the chat), CD_ENOTFOUND, CD_ESTATE (not a chat an
 * agent closed), CD_EINVAL (scores; *why says why), CD_ETOOBIG (comment over
 * 2000 bytes) or CD_E*. Nothing is stored on error. */
int qa_audit_save(struct store *s, const struct qa_rubric *r, int64_t conversation,
                  const struct auth_user *reviewer, const json_t *scores, const char *comment,
                  json_t **out, const char **why);

/* Audits of conversations closed in [since_s, until_s), of one agent
 * (agent_id > 0) or all (0), newest first, at most 500:
 * {"audits":[{"id","conversation","agent_id","agent","reviewer_id","reviewer",
 * "score","passed","scores","comment","created_s","closed_s"}]}. */
int qa_audits_list(struct store *s, int64_t agent_id, int64_t since_s, int64_t until_s,
                   json_t **out);

/* Calibration: conversations closed in [since_s, until_s) that several
 * reviewers scored, with each criterion's points per reviewer and their
 * spread (max - min) and standard deviation, and per criterion the mean
 * spread over those conversations: {"conversations":[...],"criteria":[...]}. */
int qa_calibration(struct store *s, const struct qa_rubric *r, int64_t since_s, int64_t until_s,
                   json_t **out);

/* Mean audit score per agent (agent_id > 0: that agent only) per ISO week
 * of the conversations' close in [since_s, until_s):
 * {"agents":[{"agent_id","agent","weeks":[{"week","n","score","passed"}]}]}. */
int qa_scores(struct store *s, int64_t agent_id, int64_t since_s, int64_t until_s, json_t **out);

#endif
