/* cli: the caredesk subcommands called by main(); each parses its own
 * arguments and returns the process exit code: 0 success, 1 failure, 2 usage. */
#ifndef CD_CLI_H
#define CD_CLI_H

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/* src/cli_kb.c */
int cli_search(int argc, char **argv);
int cli_import(int argc, char **argv);
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

/* src/cli_report.c */
int cli_report(int argc, char **argv);

#endif
