/* cli_admin: `caredesk user add|list|remove`, `export --conversation ID` and
 * `erase --email ADDR`: account management and data-subject requests,
 * working directly on the database (default ./caredesk.db, or CAREDESK_DB,
 * or --db PATH). */
#include "cli.h"

#include "auth.h"
#include "cd.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char user_usage[] =
    "usage: caredesk user add NAME --role agent|author|admin|supervisor [--skills billing,orders]\n"
    "       caredesk user list\n"
    "       caredesk user remove NAME\n"
    "options: --db PATH (default $CAREDESK_DB or ./caredesk.db)\n"
    "'user add' prints the account's token as the last line; it is stored hashed\n"
    "and cannot be shown again.\n";

static const char export_usage[] =
    "usage: caredesk export --conversation ID [--db PATH]\n"
    "       caredesk export --email ADDR [--db PATH]\n"
    "prints the conversation with its whole transcript as one JSON object; with --email,\n"
    "{\"email\",\"conversations\":[...]} with every conversation of that customer (a\n"
    "data-subject access request)\n";

static const char erase_usage[] =
    "usage: caredesk erase --email ADDR [--db PATH]\n"
    "deletes every conversation (with messages, feedback and ratings) of that email, and\n"
    "truncates the database's -wal file so that no copy of them stays there (also while\n"
    "the server runs); on PostgreSQL, the server's VACUUM reclaims the deleted rows\n";

static const char *default_db(void)
{
    const char *env = getenv("CAREDESK_DB");
    return env && *env ? env : "caredesk.db";
}

static struct store *open_db(const char *path)
{
    char *err = NULL;
    struct store *s = store_open(path, NULL, &err);
    if (!s)
        fprintf(stderr, "caredesk: %s\n", err ? err : "cannot open the database");
    free(err);
    return s;
}

static int is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* Takes "--name VALUE" or "--name=VALUE" at argv[*i]; returns the value or
 * NULL if argv[*i] is not that option. *i moves past what was used. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *is_missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *is_missing = 1;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

static int user_add(struct store *s, const char *name, const char *role_name, const char *skills)
{
    int role = auth_role_parse(role_name);
    if (role < 0) {
        fprintf(stderr, "caredesk: --role must be agent, author, admin or supervisor (got '%s')\n",
                role_name ? role_name : "");
        return CLI_USAGE;
    }
    if (!auth_skills_valid(skills)) {
        fprintf(stderr,
                "caredesk: --skills must be comma-separated queue names of a-z, 0-9, "
                "'_' or '-' (got '%s')\n",
                skills);
        return CLI_USAGE;
    }
    char token[AUTH_TOKEN_HEX + 1];
    struct auth_user u;
    int rc = auth_user_create(s, name, role, skills, token, &u);
    if (rc == CD_EEXIST) {
        fprintf(stderr, "caredesk: a user named '%s' already exists\n", name);
        return CLI_FAIL;
    }
    if (rc == CD_EINVAL) {
        fprintf(stderr,
                "caredesk: invalid user name '%s' (1-63 characters: letters, digits, "
                "space, '.', '_', '@', '-')\n",
                name);
        return CLI_USAGE;
    }
    if (rc) {
        fprintf(stderr, "caredesk: cannot add user: %s\n", cd_strerror(rc));
        return CLI_FAIL;
    }
    printf("added %s '%s' (id %lld, skills: %s)\n", auth_role_name(u.role), u.name, (long long)u.id,
           u.skills[0] ? u.skills : "all queues");
    printf("token (shown once; store it now):\n%s\n", token);
    return CLI_OK;
}

static int user_list(struct store *s)
{
    enum { MAX_USERS = 10000 };
    struct store_user *users = calloc(MAX_USERS, sizeof *users);
    if (!users) {
        fputs("caredesk: out of memory\n", stderr);
        return CLI_FAIL;
    }
    int n = 0;
    int rc = store_user_list(s, users, MAX_USERS, &n);
    if (rc) {
        fprintf(stderr, "caredesk: cannot list users: %s\n", cd_strerror(rc));
        free(users);
        return CLI_FAIL;
    }
    printf("%-6s %-24s %-7s %s\n", "ID", "NAME", "ROLE", "SKILLS");
    for (int i = 0; i < n; i++)
        printf("%-6lld %-24s %-7s %s\n", (long long)users[i].id, users[i].name, users[i].role,
               users[i].skills[0] ? users[i].skills : "-");
    free(users);
    return CLI_OK;
}

int cli_user(int argc, char **argv)
{
    /* argv[0] = "user" */
    if (argc < 2 || is_help(argv[1])) {
        fputs(user_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    const char *db = default_db(), *role = NULL, *skills = "", *name = NULL;
    for (int i = 2; i < argc; i++) {
        int is_missing = 0;
        const char *v;
        if (is_help(argv[i])) {
            fputs(user_usage, stdout);
            return CLI_OK;
        } else if ((v = opt_value(argc, argv, &i, "--db", &is_missing))) {
            db = v;
        } else if ((v = opt_value(argc, argv, &i, "--role", &is_missing))) {
            role = v;
        } else if ((v = opt_value(argc, argv, &i, "--skills", &is_missing))) {
            skills = v;
        } else if (is_missing) {
            fprintf(stderr, "caredesk: %s needs a value\n", argv[i]);
            return CLI_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "caredesk: unknown option '%s'\n%s", argv[i], user_usage);
            return CLI_USAGE;
        } else if (!name) {
            name = argv[i];
        } else {
            fprintf(stderr, "caredesk: unexpected argument '%s'\n%s", argv[i], user_usage);
            return CLI_USAGE;
        }
    }
    int is_add = !strcmp(verb, "add"), is_remove = !strcmp(verb, "remove");
    if (!is_add && !is_remove && strcmp(verb, "list")) {
        fprintf(stderr, "caredesk: unknown 'user' command '%s'\n%s", verb, user_usage);
        return CLI_USAGE;
    }
    if ((is_add || is_remove) && !name) {
        fprintf(stderr, "caredesk: 'user %s' needs a NAME\n%s", verb, user_usage);
        return CLI_USAGE;
    }
    if (is_add && !role) {
        fprintf(stderr, "caredesk: 'user add' needs --role agent|author|admin\n");
        return CLI_USAGE;
    }
    struct store *s = open_db(db);
    if (!s)
        return CLI_FAIL;
    int rc = CLI_OK;
    if (is_add) {
        rc = user_add(s, name, role, skills);
    } else if (is_remove) {
        int r = store_user_remove(s, name);
        if (!r)
            r = store_event_add(s, "user_remove", 0, 0, NULL);
        if (r == CD_ENOTFOUND) {
            fprintf(stderr, "caredesk: no user named '%s'\n", name);
            rc = CLI_FAIL;
        } else if (r) {
            fprintf(stderr, "caredesk: cannot remove user: %s\n", cd_strerror(r));
            rc = CLI_FAIL;
        } else {
            printf("removed '%s'\n", name);
        }
    } else {
        rc = user_list(s);
    }
    store_close(s);
    return rc;
}

/* Parses "--NAME VALUE" options for export/erase (opt, or alt when not NULL: one of the two);
 * returns CLI_OK or a code. */
static int parse_options(int argc, char **argv, const char *opt, const char **value,
                         const char *alt, const char **alt_value, const char **db,
                         const char *usage)
{
    for (int i = 1; i < argc; i++) {
        int is_missing = 0;
        const char *v;
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            return -1;
        } else if ((v = opt_value(argc, argv, &i, "--db", &is_missing))) {
            *db = v;
        } else if ((v = opt_value(argc, argv, &i, opt, &is_missing))) {
            *value = v;
        } else if (alt && (v = opt_value(argc, argv, &i, alt, &is_missing))) {
            *alt_value = v;
        } else {
            fprintf(stderr, "caredesk: %s '%s'\n%s",
                    is_missing ? "missing value for" : "unexpected argument", argv[i], usage);
            return CLI_USAGE;
        }
    }
    if (alt && *value && *alt_value) {
        fprintf(stderr, "caredesk: give %s or %s, not both\n%s", opt, alt, usage);
        return CLI_USAGE;
    }
    if ((!*value || !**value) && (!alt || !*alt_value || !**alt_value)) {
        fprintf(stderr, "caredesk: %s%s%s is required\n%s", opt, alt ? " or " : "", alt ? alt : "",
                usage);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int parse_one(int argc, char **argv, const char *opt, const char **value, const char **db,
                     const char *usage)
{
    return parse_options(argc, argv, opt, value, NULL, NULL, db, usage);
}

/* 1 when email looks like an email address; else says so on stderr and returns 0. */
static int email_ok(const char *email)
{
    if (cd_is_email(email))
        return 1;
    fprintf(stderr, "caredesk: --email must be an email address (got '%s')\n", email);
    return 0;
}

/* Prints the export in out, or why it failed (r), then frees out and closes s. */
static int finish_export(struct store *s, struct cd_buf *out, int r)
{
    if (r)
        fprintf(stderr, "caredesk: export failed: %s\n", cd_strerror(r));
    else
        printf("%s\n", out->data);
    cd_buf_free(out);
    store_close(s);
    return r ? CLI_FAIL : CLI_OK;
}

/* export --email ADDR: every conversation of that customer, in the audit log by id. */
static int export_email(const char *db, const char *email)
{
    if (!email_ok(email))
        return CLI_USAGE;
    struct store *s = open_db(db);
    if (!s)
        return CLI_FAIL;
    struct cd_buf out = {0};
    int n = 0;
    int r = store_export_email(s, email, &out, &n);
    if (!r) {
        char detail[64];
        snprintf(detail, sizeof detail, "{\"by\":\"email\",\"conversations\":%d}", n);
        r = store_event_add(s, "export", 0, 0, detail);
    }
    return finish_export(s, &out, r);
}

int cli_export(int argc, char **argv)
{
    const char *db = default_db(), *id_text = NULL, *email = NULL;
    int rc =
        parse_options(argc, argv, "--conversation", &id_text, "--email", &email, &db, export_usage);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (email)
        return export_email(db, email);
    char *end = NULL;
    errno = 0;
    long long id = strtoll(id_text, &end, 10);
    if (errno || !end || *end || id <= 0) {
        fprintf(stderr, "caredesk: --conversation must be a conversation id (got '%s')\n", id_text);
        return CLI_USAGE;
    }
    struct store *s = open_db(db);
    if (!s)
        return CLI_FAIL;
    struct cd_buf out = {0};
    int r = store_export_conversation(s, id, &out);
    if (!r)
        r = store_event_add(s, "export", id, 0, NULL);
    if (r == CD_ENOTFOUND) {
        fprintf(stderr, "caredesk: no conversation %lld\n", id);
        cd_buf_free(&out);
        store_close(s);
        return CLI_FAIL;
    }
    return finish_export(s, &out, r);
}

int cli_erase(int argc, char **argv)
{
    const char *db = default_db(), *email = NULL;
    int rc = parse_one(argc, argv, "--email", &email, &db, erase_usage);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (!email_ok(email))
        return CLI_USAGE;
    struct store *s = open_db(db);
    if (!s)
        return CLI_FAIL;
    int n = 0;
    int r = store_erase_email(s, email, 0, &n);
    if (r) {
        fprintf(stderr, "caredesk: erase failed, nothing was deleted: %s\n", cd_strerror(r));
        rc = CLI_FAIL;
    } else if ((r = store_purge_erased(s))) {
        fprintf(stderr,
                "caredesk: erased %d conversation%s of %s, but the -wal file could not be "
                "truncated (%s): earlier copies may stay in it until it is; run erase again\n",
                n, n == 1 ? "" : "s", email, cd_strerror(r));
        rc = CLI_FAIL;
    } else {
        printf("erased %d conversation%s of %s\n", n, n == 1 ? "" : "s", email);
    }
    store_close(s);
    return rc;
}
