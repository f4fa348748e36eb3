/* cli: the caredesk subcommands called by main(); each parses its own
 * arguments and returns the process exit code: 0 success, 1 failure, 2 usage.
 * At the end, the few helpers the subcommands share. */
#ifndef CD_CLI_H
#define CD_CLI_H

#include <stddef.h>
#include <string.h>

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/* src/cli_kb.c */
int cli_search(int argc, char **argv);
int cli_import(int argc, char **argv);
/* import of help-centre exports (cli_kb_import.c): wanted for --from or a .json file. */
int cli_import_is_export(int argc, char **argv);
int cli_import_export(int argc, char **argv);
int cli_eval_kb(int argc, char **argv);

/* src/cli_triage.c */
int cli_ask(int argc, char **argv);
int cli_eval_intents(int argc, char **argv);
int cli_check_intents(int argc, char **argv);

/* src/cli_server.c */
int cli_serve(int argc, char **argv);

/* src/cli_admin.c */
int cli_user(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_erase(int argc, char **argv);
/* cli_backup.c */
int cli_backup(int argc, char **argv);

/* src/cli_report.c */
int cli_report(int argc, char **argv);

/* ---- shared by the subcommands ---- */

/* An option of a subcommand that takes a string: "--name VALUE" stores VALUE in *value. */
struct cli_str_opt {
    const char *name;
    const char **value;
};

/* Where the value of option arg goes, if arg is one of the n options of opts; NULL if not. */
static inline const char **cli_str_opt_find(const struct cli_str_opt *opts, size_t n,
                                            const char *arg)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(arg, opts[i].name))
            return opts[i].value;
    return NULL;
}

/* The KB in the database at path (":memory:": a new one in memory) for a subcommand, or NULL
 * after saying why on stderr; a PostgreSQL URI, which may hold a password, is called --db
 * there. Close it with kb_close(). In src/cli_kb.c. */
struct kb;
struct kb *cli_open_kb(const char *path);

#endif
