/* config: every setting of `caredesk serve`, with its default, its
 * environment variable and its flag, read in one order: defaults < config
 * file (--config FILE, `key = value` lines) < CAREDESK_* environment <
 * command-line flags, then validated as a whole.
 *
 * DESIGN. One table in config.c describes each setting once (name, type,
 * range, default, help); the file reader, the environment reader, the flag
 * parser, --help and docs/operations.md all follow it, so a setting cannot
 * exist in one place and be missing in another. Errors always name the
 * setting and where the bad value came from. */
#ifndef CD_CONFIG_H
#define CD_CONFIG_H

#include <stdio.h>

enum config_durability {
    CONFIG_DURABILITY_NORMAL = 0, /* safe against a process crash */
    CONFIG_DURABILITY_FULL = 1,   /* fsync per group commit: safe against power loss */
};

struct config {
    /* Where things are. */
    int port;           /* 0 = an ephemeral port (logged in the "listening" line) */
    char *bind;         /* address to listen on; "" = every interface */
    char *db_path;      /* SQLite database file or PostgreSQL URI */
    char *kb_db_path;   /* the KB's SQLite index ("" = db_path, or per node with PostgreSQL) */
    char *kb_path;      /* directory or JSON Lines file of articles */
    char *intents_path; /* directory or JSON Lines file of intents */
    char *web_root;     /* static files */
    char *public_url;   /* base for article links in replies; "" = relative */

    /* Triage policy. */
    double answer_threshold;
    double clarify_threshold;
    double kb_threshold;
    double oos_prior;
    char *queues;        /* comma-separated queue names */
    char *default_queue; /* queue for handoffs with no better guess */
    char *default_lang;  /* a conversation's language until detected (hello without lang) */

    /* Agents and handoff. */
    int pickup_target_s;
    int agent_capacity;
    int agent_grace_s; /* an agent's chats wait this long for the agent to come back */
    int is_auto_assign;
    char *business_hours;   /* "" = always open, else e.g. "mon-fri 09:00-17:00" */
    int business_open_min;  /* parsed from business_hours by config_validate() */
    int business_close_min; /* open == close: always open */
    int business_days_mask; /* bit 0 = Sunday; 0 = every day */
    /* Reporting (report.h). */
    int fcr_window_days; /* a return within this long counts against FCR */
    char *sla_targets;   /* per-queue "QUEUE=FIRST_S/RESOLUTION,..."; "" = defaults */
    char *qa_rubric;     /* QA rubric file (qa.h) */
    char *phrases_path;  /* the bot's own sentences by language (triage.h); "" = built in */
    int qa_sample;       /* conversations per agent and week drawn for QA */
    int is_nps;          /* ask NPS (0-10) after the CSAT rating */

    /* Limits. */
    int max_message_bytes; /* text of one customer or agent message */
    int max_frame_bytes;   /* a websocket message above this closes with 1009 */
    int rate_limit;        /* messages per second per connection; 0 = off */
    int max_connections;   /* websocket connections at once */
    int idle_timeout_s;    /* ping after half, drop after all of it; 0 = off */
    int max_body_bytes;    /* REST request body */
    int max_queued_frames; /* out queue bound (a resume replay may pass it) */

    /* Security, operations. */
    char *tls_cert;
    char *tls_key;
    char *allowed_origins; /* comma-separated origins, "*" = any; same origin always allowed */
    char *log_level;
    int durability;        /* enum config_durability */
    int retention_days;    /* delete closed conversations after N days; 0 = keep */
    char *redact_patterns; /* extra POSIX ERE patterns to mask, separated by ";;" */

    /* Webhooks (webhook.h, docs/integrations.md). */
    char *webhook_url;         /* "" = none */
    char *webhook_secret;      /* HMAC-SHA256 key of webhook-url (and of endpoints without one) */
    char *webhook_events;      /* filter of webhook-url: names, "kind.*", "*" */
    char *webhook_endpoints;   /* more: "URL [events=a,b] [secret=S]; ..." */
    int webhook_timeout_ms;    /* one attempt */
    int webhook_retry_base_ms; /* the first retry's delay, doubled per attempt, with jitter */
    int webhook_max_age_s;     /* retried for this long, then failed */
};

/* Fills c with the defaults (allocating its strings). Returns 0 or CD_ENOMEM. */
int config_init(struct config *c);

/* Frees c's strings; c may then be initialised again. Accepts NULL. */
void config_clear(struct config *c);

/* Sets one setting by name ("max-message-bytes"; '_' works as '-') from a
 * string. source says where the value came from, for the error message.
 * Returns 0, or CD_EINVAL (unknown setting or bad value) with a malloc'd
 * message naming the setting in *err; c is unchanged then. */
int config_set(struct config *c, const char *name, const char *value, const char *source,
               char **err);

/* Reads `key = value` lines (# starts a comment; blank lines are skipped;
 * values may be quoted). Returns 0, CD_EIO (unreadable), or CD_EINVAL with
 * *err naming the file, line and setting. */
int config_load_file(struct config *c, const char *path, char **err);

/* Applies every CAREDESK_NAME variable of envp (NAME is the setting name in
 * upper case with '_' for '-'). Unknown CAREDESK_* variables are errors. */
int config_load_env(struct config *c, char *const *envp, char **err);

/* Applies flags from argv[first..argc): "--name value" or "--name=value"; a
 * yes/no setting may stand alone ("--auto-assign"). --config is skipped
 * here (config_load() reads it first). */
int config_parse_args(struct config *c, int argc, char **argv, int first, char **err);

/* All layers in order: defaults, the --config file if any (or
 * CAREDESK_CONFIG), environment, flags, then config_validate(). c must be
 * initialised. Returns 0 or CD_E* with *err. */
int config_load(struct config *c, int argc, char **argv, int first, char *const *envp, char **err);

/* Checks settings against each other and the file system (TLS files
 * readable, thresholds ordered, business hours parsed). */
int config_validate(struct config *c, char **err);

/* Parses "mon-fri 09:00-17:00", "09:00-17:00", "sat,sun 10:00-14:00", "always"
 * or "". Returns 0 or CD_EINVAL. */
int config_parse_business_hours(const char *s, int *open_min, int *close_min, int *days_mask);

/* Writes the settings table (flag, environment variable, default, meaning),
 * as `caredesk serve --help` shows it. */
void config_print_help(FILE *out);

/* Writes the effective value of every setting as `key = value` lines (the
 * config file format). */
void config_print(const struct config *c, FILE *out);

#endif
