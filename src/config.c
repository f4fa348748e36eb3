/* config: the settings table and its readers (defaults, file, environment,
 * flags) and validation; see config.h. */
#include "config.h"
#include "report.h"

#include "cd.h"
#include "queue.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum setting_type { T_INT, T_DOUBLE, T_STR, T_BOOL, T_DURABILITY, T_LOG_LEVEL };

struct setting {
    const char *name;
    enum setting_type type;
    size_t offset;
    const char *def;
    double min, max; /* for numbers */
    const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct setting settings[] = {
    {"port", T_INT, OFF(port), "8080", 0, 65535, "TCP port to listen on (0 = any free port)"},
    {"bind", T_STR, OFF(bind), "", 0, 0, "address to listen on (empty = all interfaces)"},
    {"db", T_STR, OFF(db_path), "./caredesk.db", 0, 0,
     "database: a SQLite file, or a PostgreSQL URI (postgresql://USER@HOST:PORT/DB)"},
    {"kb-db", T_STR, OFF(kb_db_path), "", 0, 0,
     "the knowledge base's search index, a SQLite file (empty = the 'db' file; with "
     "PostgreSQL, ./caredesk-kb.db on each node)"},
    {"kb", T_STR, OFF(kb_path), "./kb", 0, 0, "articles: a directory or a .jsonl file"},
    {"intents", T_STR, OFF(intents_path), "./intents", 0, 0,
     "intents: a directory or a .jsonl file"},
    {"web", T_STR, OFF(web_root), "./web", 0, 0, "directory of static web files"},
    {"public-url", T_STR, OFF(public_url), "", 0, 0,
     "base URL for article links in replies (empty = relative /kb/ID)"},
    {"answer-threshold", T_DOUBLE, OFF(answer_threshold), "0.55", 0, 1,
     "answer at or above this confidence"},
    {"clarify-threshold", T_DOUBLE, OFF(clarify_threshold), "0.25", 0, 1,
     "offer choices at or above this confidence, hand off below"},
    {"kb-threshold", T_DOUBLE, OFF(kb_threshold), "0.6", 0, 1,
     "answer a how-to question from the KB at or above this score"},
    {"oos-prior", T_DOUBLE, OFF(oos_prior), "0.5", 0.01, 0.99,
     "share of messages taken to be about something no intent covers, when learning "
     "P(in scope)"},
    {"queues", T_STR, OFF(queues), QUEUE_DEFAULT_NAMES, 0, 0, "handoff queues (comma-separated)"},
    {"default-queue", T_STR, OFF(default_queue), "general", 0, 0,
     "queue for handoffs with no better guess"},
    {"phrases", T_STR, OFF(phrases_path), "", 0, 0,
     "the bot's own sentences by language (JSON; empty = the built-in English and Spanish)"},
    {"default-lang", T_STR, OFF(default_lang), "en", 0, 0,
     "language of a chat whose widget sends none, until its messages show another"},
    {"pickup-target", T_INT, OFF(pickup_target_s), CD_XSTR(QUEUE_DEFAULT_PICKUP_TARGET_S), 1, 86400,
     "seconds within which an agent should take a queued chat"},
    {"agent-capacity", T_INT, OFF(agent_capacity), CD_XSTR(QUEUE_DEFAULT_AGENT_CAPACITY), 1, 100,
     "concurrent chats per agent"},
    {"agent-grace", T_INT, OFF(agent_grace_s), "30", 1, 3600,
     "seconds an agent's chats wait for the agent to come back before they are queued again"},
    {"auto-assign", T_BOOL, OFF(is_auto_assign), "false", 0, 1,
     "assign queued chats to the least busy available agent"},
    {"business-hours", T_STR, OFF(business_hours), "", 0, 0,
     "when agents work, e.g. \"mon-fri 09:00-17:00\" (empty = always)"},
    {"fcr-window-days", T_INT, OFF(fcr_window_days), "7", 1, 90,
     "a return about the same driver within this many days counts against first-contact "
     "resolution"},
    {"sla-targets", T_STR, OFF(sla_targets), "", 0, 0,
     "per-queue SLA targets QUEUE=FIRST_RESPONSE_S/RESOLUTION (seconds, or Nbd business days), "
     "comma-separated; others: pickup-target and 1bd"},
    {"nps", T_BOOL, OFF(is_nps), "false", 0, 1,
     "after the CSAT rating, ask \"how likely are you to recommend us\" (0-10) and a comment"},
    {"qa-rubric", T_STR, OFF(qa_rubric), "./qa/rubric.json", 0, 0,
     "QA rubric (JSON: criteria, weights, pass mark); missing: QA audits are off"},
    {"qa-sample", T_INT, OFF(qa_sample), "4", 1, 50,
     "conversations drawn per agent and week for QA audits"},
    {"max-message-bytes", T_INT, OFF(max_message_bytes), "4096", 16, 1048576,
     "longest message text in bytes"},
    {"max-frame-bytes", T_INT, OFF(max_frame_bytes), "65536", 256, 16777216,
     "longest websocket message; above it the connection closes with 1009"},
    {"rate-limit", T_INT, OFF(rate_limit), "10", 0, 1000000,
     "messages per second per connection (0 = off)"},
    {"max-connections", T_INT, OFF(max_connections), "10000", 1, 1000000,
     "websocket connections at once"},
    {"idle-timeout", T_INT, OFF(idle_timeout_s), "120", 0, 86400,
     "seconds without traffic before a ping, twice that before a drop (0 = off)"},
    {"max-body-bytes", T_INT, OFF(max_body_bytes), "1048576", 1024, 67108864,
     "largest REST request body"},
    {"max-queued-frames", T_INT, OFF(max_queued_frames), "256", 4, 65536,
     "frames queued for a client that does not read before it is disconnected"},
    {"tls-cert", T_STR, OFF(tls_cert), "", 0, 0, "PEM certificate: serve https and wss"},
    {"tls-key", T_STR, OFF(tls_key), "", 0, 0, "PEM private key for --tls-cert"},
    {"allowed-origins", T_STR, OFF(allowed_origins), "", 0, 0,
     "origins allowed to open websockets, comma-separated, * = any (same origin always)"},
    {"log-level", T_LOG_LEVEL, OFF(log_level), "info", 0, 0, "debug, info, warn, error or off"},
    {"durability", T_DURABILITY, OFF(durability), "normal", 0, 0,
     "normal (safe against crashes) or full (fsync each commit: safe against power loss)"},
    {"retention-days", T_INT, OFF(retention_days), "0", 0, 36500,
     "delete closed conversations after N days (0 = keep)"},
    {"redact-patterns", T_STR, OFF(redact_patterns), "", 0, 0,
     "extra regular expressions to mask before storing, separated by ;;"},
    {"webhook-url", T_STR, OFF(webhook_url), "", 0, 0,
     "post events to this URL (docs/integrations.md); needs webhook-secret"},
    {"webhook-secret", T_STR, OFF(webhook_secret), "", 0, 0,
     "key of the X-Caredesk-Signature HMAC-SHA256 of webhook deliveries"},
    {"webhook-events", T_STR, OFF(webhook_events), "*", 0, 0,
     "events webhook-url gets, comma-separated: names, conversation.*, or *"},
    {"webhook-endpoints", T_STR, OFF(webhook_endpoints), "", 0, 0,
     "more endpoints: \"URL [events=a,b] [secret=S]; URL ...\""},
    {"webhook-timeout-ms", T_INT, OFF(webhook_timeout_ms), "10000", 100, 300000,
     "time allowed for one delivery attempt"},
    {"webhook-retry-base-ms", T_INT, OFF(webhook_retry_base_ms), "5000", 10, 3600000,
     "delay before the first retry; doubled per attempt (at most 1 h), with jitter"},
    {"webhook-max-age", T_INT, OFF(webhook_max_age_s), "86400", 1, 2592000,
     "seconds a delivery is retried before it is marked failed"},
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

static char *format_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format_err(const char *fmt, ...)
{
    struct cd_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    int rc = cd_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc) {
        cd_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static void set_err(char **err, char *msg)
{
    if (err)
        *err = msg;
    else
        free(msg);
}

/* Finds a setting by name, '_' matching '-' and case ignored. */
static const struct setting *find_setting(const char *name, size_t n)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *s = settings[i].name;
        if (strlen(s) != n)
            continue;
        size_t k = 0;
        for (; k < n; k++) {
            char a = (char)tolower((unsigned char)name[k]);
            if (a == '_')
                a = '-';
            if (a != s[k])
                break;
        }
        if (k == n)
            return &settings[i];
    }
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int apply(struct config *c, const struct setting *s, const char *value, const char *source,
                 char **err)
{
    void *field = (char *)c + s->offset;
    switch (s->type) {
    case T_INT: {
        if (cd_parse_int(value, (int)s->min, (int)s->max, (int *)field)) {
            set_err(err, format_err("setting '%s' (%s): expected an integer from %ld to %ld, "
                                    "got '%s'",
                                    s->name, source, (long)s->min, (long)s->max, value));
            return CD_EINVAL;
        }
        return 0;
    }
    case T_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (!*value || *end || errno || !(v >= s->min && v <= s->max)) {
            set_err(err, format_err("setting '%s' (%s): expected a number from %g to %g, "
                                    "got '%s'",
                                    s->name, source, s->min, s->max, value));
            return CD_EINVAL;
        }
        *(double *)field = v;
        return 0;
    }
    case T_BOOL: {
        int v;
        if (parse_bool(value, &v)) {
            set_err(err, format_err("setting '%s' (%s): expected true or false, got '%s'", s->name,
                                    source, value));
            return CD_EINVAL;
        }
        *(int *)field = v;
        return 0;
    }
    case T_DURABILITY:
        if (!strcmp(value, "normal"))
            *(int *)field = CONFIG_DURABILITY_NORMAL;
        else if (!strcmp(value, "full"))
            *(int *)field = CONFIG_DURABILITY_FULL;
        else {
            set_err(err, format_err("setting '%s' (%s): expected normal or full, got '%s'", s->name,
                                    source, value));
            return CD_EINVAL;
        }
        return 0;
    case T_LOG_LEVEL:
        if (strcmp(value, "debug") && strcmp(value, "info") && strcmp(value, "warn") &&
            strcmp(value, "warning") && strcmp(value, "error") && strcmp(value, "off")) {
            set_err(err, format_err("setting '%s' (%s): expected debug, info, warn, error or "
                                    "off, got '%s'",
                                    s->name, source, value));
            return CD_EINVAL;
        }
        /* Stored as a string, like T_STR. */
        __attribute__((fallthrough));
    case T_STR: {
        if (strlen(value) > 4096) {
            set_err(err,
                    format_err("setting '%s' (%s): value longer than 4096 bytes", s->name, source));
            return CD_EINVAL;
        }
        char *copy = strdup(value);
        if (!copy) {
            set_err(err, format_err("out of memory"));
            return CD_ENOMEM;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    }
    return CD_EINVAL;
}

int config_set(struct config *c, const char *name, const char *value, const char *source,
               char **err)
{
    const struct setting *s = find_setting(name, strlen(name));
    if (!s) {
        set_err(err, format_err("unknown setting '%s' (%s)", name, source));
        return CD_EINVAL;
    }
    return apply(c, s, value, source, err);
}

int config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        int rc = apply(c, &settings[i], settings[i].def, "default", NULL);
        if (rc) {
            config_clear(c);
            return rc;
        }
    }
    return 0;
}

void config_clear(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].type == T_STR || settings[i].type == T_LOG_LEVEL) {
            char **p = (char **)((char *)c + settings[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int config_load_file(struct config *c, const char *path, char **err)
{
    size_t len;
    char *text = cd_read_file(path, &len);
    if (!text) {
        set_err(err, format_err("setting 'config': cannot read '%s': %s", path, strerror(errno)));
        return CD_EIO;
    }
    int rc = 0;
    int line_no = 0;
    char *line = text;
    while (line && !rc) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line_no++;
        char *l = trim(line);
        line = next;
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            set_err(err, format_err("%s:%d: expected 'key = value'", path, line_no));
            rc = CD_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(l);
        char *value = trim(eq + 1);
        size_t n = strlen(value);
        if (n >= 2 && ((value[0] == '"' && value[n - 1] == '"') ||
                       (value[0] == '\'' && value[n - 1] == '\''))) {
            value[n - 1] = '\0';
            value++;
        }
        char source[300];
        snprintf(source, sizeof source, "%s:%d", path, line_no);
        rc = config_set(c, key, value, source, err);
    }
    free(text);
    return rc;
}

int config_load_env(struct config *c, char *const *envp, char **err)
{
    static const char prefix[] = "CAREDESK_";
    for (int i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        if (strncmp(e, prefix, sizeof prefix - 1))
            continue;
        const char *name = e + sizeof prefix - 1;
        const char *eq = strchr(name, '=');
        if (!eq)
            continue;
        size_t n = (size_t)(eq - name);
        /* CAREDESK_CONFIG names the file (read by config_load); CAREDESK_BIN
         * and CAREDESK_NO_* belong to the test and bench scripts. */
        if ((n == 6 && !strncmp(name, "CONFIG", 6)) || (n == 3 && !strncmp(name, "BIN", 3)) ||
            !strncmp(name, "NO_", 3) || !strncmp(name, "TEST_", 5))
            continue;
        char source[128];
        snprintf(source, sizeof source, "environment %.*s", (int)(eq - e), e);
        const struct setting *s = find_setting(name, n);
        if (!s) {
            set_err(err,
                    format_err("unknown setting in environment variable %.*s", (int)(eq - e), e));
            return CD_EINVAL;
        }
        int rc = apply(c, s, eq + 1, source, err);
        if (rc)
            return rc;
    }
    return 0;
}

int config_parse_args(struct config *c, int argc, char **argv, int first, char **err)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) {
            set_err(err, format_err("unexpected argument '%s' (settings are --name value)", a));
            return CD_EINVAL;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;
        int is_config = n == 6 && !strncmp(name, "config", 6);
        const struct setting *s = is_config ? NULL : find_setting(name, n);
        if (!s && !is_config) {
            set_err(err, format_err("unknown option '--%.*s' (see caredesk serve --help)", (int)n,
                                    name));
            return CD_EINVAL;
        }
        if (!value) {
            int dummy;
            if (s && s->type == T_BOOL && (i + 1 >= argc || parse_bool(argv[i + 1], &dummy) != 0)) {
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                set_err(err, format_err("option '--%.*s' needs a value", (int)n, name));
                return CD_EINVAL;
            }
        }
        if (is_config)
            continue;
        char source[140];
        snprintf(source, sizeof source, "flag --%.*s", (int)(n > 100 ? 100 : n), name);
        int rc = apply(c, s, value, source, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Finds --config FILE or --config=FILE in argv. */
static const char *find_config_flag(int argc, char **argv, int first)
{
    const char *path = NULL;
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
    }
    return path;
}

int config_load(struct config *c, int argc, char **argv, int first, char *const *envp, char **err)
{
    const char *file = find_config_flag(argc, argv, first);
    for (int i = 0; !file && envp && envp[i]; i++)
        if (!strncmp(envp[i], "CAREDESK_CONFIG=", 16))
            file = envp[i] + 16;
    int rc = 0;
    if (file && *file)
        rc = config_load_file(c, file, err);
    if (!rc)
        rc = config_load_env(c, envp, err);
    if (!rc)
        rc = config_parse_args(c, argc, argv, first, err);
    if (!rc)
        rc = config_validate(c, err);
    return rc;
}

static int parse_hhmm(const char *s, int *min)
{
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
        !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m))
        return -1;
    *min = h * 60 + m;
    return 0;
}

static int day_index(const char *s, size_t n)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (n != 3)
        return -1;
    for (int i = 0; i < 7; i++)
        if (!strncasecmp(s, days[i], 3))
            return i;
    return -1;
}

int config_parse_business_hours(const char *s, int *open_min, int *close_min, int *days_mask)
{
    *open_min = *close_min = 0;
    *days_mask = 0;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s || !strcasecmp(s, "always"))
        return 0;
    int mask = 0;
    const char *p = s;
    if (isalpha((unsigned char)*p)) {
        /* A list of days or day ranges, then a space. */
        while (*p && !isspace((unsigned char)*p)) {
            int a = day_index(p, 3);
            if (a < 0 || strlen(p) < 3)
                return CD_EINVAL;
            p += 3;
            int b = a;
            if (*p == '-') {
                b = day_index(p + 1, strlen(p + 1) >= 3 ? 3 : 0);
                if (b < 0)
                    return CD_EINVAL;
                p += 4;
            }
            for (int d = a;; d = (d + 1) % 7) {
                mask |= 1 << d;
                if (d == b)
                    break;
            }
            if (*p == ',')
                p++;
            else if (*p && !isspace((unsigned char)*p))
                return CD_EINVAL;
        }
        while (isspace((unsigned char)*p))
            p++;
    }
    int o, cl;
    if (strlen(p) != 11 || parse_hhmm(p, &o) || p[5] != '-' || parse_hhmm(p + 6, &cl))
        return CD_EINVAL;
    if (o >= cl)
        return CD_EINVAL;
    *open_min = o;
    *close_min = cl;
    *days_mask = mask;
    return 0;
}

static int check_readable(const char *name, const char *path, char **err)
{
    if (access(path, R_OK)) {
        set_err(err, format_err("setting '%s': cannot read '%s': %s", name, path, strerror(errno)));
        return CD_EINVAL;
    }
    return 0;
}

/* Checks a comma-separated list of names made of [a-z0-9_.-]. */
static int check_name_list(const char *name, const char *list, char **err)
{
    int n = 0;
    for (const char *p = list; *p; p++) {
        if (*p == ',') {
            if (!n)
                goto bad;
            n = 0;
            continue;
        }
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '-' ||
              *p == '.'))
            goto bad;
        n++;
    }
    if (!n)
        goto bad;
    return 0;
bad:
    set_err(err, format_err("setting '%s': expected comma-separated names of a-z, 0-9, _ . -, "
                            "got '%s'",
                            name, list));
    return CD_EINVAL;
}

int config_validate(struct config *c, char **err)
{
    if (c->clarify_threshold > c->answer_threshold) {
        set_err(err, format_err("setting 'clarify-threshold': %g is above answer-threshold %g",
                                c->clarify_threshold, c->answer_threshold));
        return CD_EINVAL;
    }
    if (c->max_frame_bytes < c->max_message_bytes + 256) {
        set_err(err,
                format_err("setting 'max-frame-bytes': %d leaves no room for a message of "
                           "max-message-bytes %d (needs at least %d)",
                           c->max_frame_bytes, c->max_message_bytes, c->max_message_bytes + 256));
        return CD_EINVAL;
    }
    if (!*c->db_path) {
        set_err(err, format_err("setting 'db': empty path"));
        return CD_EINVAL;
    }
    size_t n_lang = strspn(c->default_lang, "abcdefghijklmnopqrstuvwxyz");
    if (n_lang < 2 || n_lang > 3 || c->default_lang[n_lang]) {
        set_err(err, format_err("setting 'default-lang': expected a language code such as "
                                "\"en\", got '%s'",
                                c->default_lang));
        return CD_EINVAL;
    }
    if (check_name_list("queues", c->queues, err) ||
        check_name_list("default-queue", c->default_queue, err))
        return CD_EINVAL;
    if (!!*c->tls_cert != !!*c->tls_key) {
        set_err(err, format_err("setting '%s': tls-cert and tls-key go together",
                                *c->tls_cert ? "tls-key" : "tls-cert"));
        return CD_EINVAL;
    }
    if (*c->tls_cert && (check_readable("tls-cert", c->tls_cert, err) ||
                         check_readable("tls-key", c->tls_key, err)))
        return CD_EINVAL;
    if (config_parse_business_hours(c->business_hours, &c->business_open_min,
                                    &c->business_close_min, &c->business_days_mask)) {
        set_err(err, format_err("setting 'business-hours': expected e.g. \"mon-fri 09:00-17:00\" "
                                "or \"09:00-17:00\" (opening before closing), got '%s'",
                                c->business_hours));
        return CD_EINVAL;
    }
    if (report_sla_targets_valid(c->sla_targets)) {
        set_err(err, format_err("setting 'sla-targets': expected e.g. \"billing=120/2bd, "
                                "orders=60/28800\" (queue=first-response seconds/resolution "
                                "seconds or business days), got '%s'",
                                c->sla_targets));
        return CD_EINVAL;
    }
    for (const char *p = c->allowed_origins; *p; p++) {
        if (isspace((unsigned char)*p) && p[1] && p[1] != ',' && p > c->allowed_origins &&
            p[-1] != ',') {
            set_err(err, format_err("setting 'allowed-origins': separate origins with commas, "
                                    "got '%s'",
                                    c->allowed_origins));
            return CD_EINVAL;
        }
    }
    return 0;
}

static void print_value(const struct config *c, const struct setting *s, FILE *out)
{
    const void *field = (const char *)c + s->offset;
    switch (s->type) {
    case T_INT:
        fprintf(out, "%d", *(const int *)field);
        break;
    case T_DOUBLE:
        fprintf(out, "%g", *(const double *)field);
        break;
    case T_BOOL:
        fputs(*(const int *)field ? "true" : "false", out);
        break;
    case T_DURABILITY:
        fputs(*(const int *)field == CONFIG_DURABILITY_FULL ? "full" : "normal", out);
        break;
    case T_STR:
    case T_LOG_LEVEL: {
        const char *v = *(char *const *)field;
        fprintf(out, "\"%s\"", v ? v : "");
        break;
    }
    }
}

void config_print(const struct config *c, FILE *out)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        fprintf(out, "%s = ", settings[i].name);
        print_value(c, &settings[i], out);
        fputc('\n', out);
    }
}

void config_print_help(FILE *out)
{
    fputs("usage: caredesk serve [--config FILE] [--SETTING VALUE ...]\n\n"
          "Settings (precedence: defaults < config file < CAREDESK_* environment < flags):\n",
          out);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        char env[64] = "CAREDESK_";
        size_t k = strlen(env);
        for (const char *p = s->name; *p && k < sizeof env - 1; p++)
            env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[k] = '\0';
        fprintf(out, "  --%-20s %-28s default \"%s\"\n      %s\n", s->name, env, s->def, s->help);
    }
    fputs("  --config FILE          CAREDESK_CONFIG            `key = value` lines, "
          "# comments\n",
          out);
}
