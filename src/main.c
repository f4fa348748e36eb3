/* main: the caredesk command line; dispatches to one subcommand (cli.h). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#ifndef CAREDESK_VERSION
#define CAREDESK_VERSION "0.1.0"
#endif

static const char usage[] =
    "usage: caredesk COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve                  run the chat server (port 8080, ./caredesk.db, ./kb, ./intents)\n"
    "  ask \"message\"          decide one customer message; prints the decision as JSON\n"
    "  search \"question\"      search the knowledge base; prints ranked articles and passages\n"
    "  import FILE_OR_DIR     load articles (Markdown files or JSON Lines) into the database\n"
    "  eval kb ...            measure KB search on a query set\n"
    "  eval intents ...       measure the triage engine on a labelled intent set\n"
    "  check intents [DIR]    the author's report: confused intents, thin ones, misread\n"
    "                         examples, where the out-of-scope threshold landed\n"
    "  user add|list|remove   manage agent, author and admin accounts\n"
    "  export --conversation ID   print one conversation as JSON (data-subject access)\n"
    "  erase --email ADDR     erase a customer's conversations (data-subject erasure)\n"
    "  report --week YYYY-Www the weekly report (service levels, FCR, AHT, drivers ...)\n"
    "  version                print the version\n"
    "\n"
    "Run 'caredesk COMMAND --help' for a command's options.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("caredesk %s\n", CAREDESK_VERSION);
        return CLI_OK;
    }
    if (!strcmp(cmd, "eval")) {
        if (argc >= 3 && !strcmp(argv[2], "kb"))
            return cli_eval_kb(argc - 2, argv + 2);
        if (argc >= 3 && !strcmp(argv[2], "intents"))
            return cli_eval_intents(argc - 2, argv + 2);
        fputs("usage: caredesk eval kb|intents [options]   (see --help of each)\n",
              argc >= 3 && !strcmp(argv[2], "--help") ? stdout : stderr);
        return argc >= 3 && !strcmp(argv[2], "--help") ? CLI_OK : CLI_USAGE;
    }
    if (!strcmp(cmd, "check")) {
        if (argc >= 3 && !strcmp(argv[2], "intents"))
            return cli_check_intents(argc - 2, argv + 2);
        fputs("usage: caredesk check intents [DIR|FILE] [--json]\n",
              argc >= 3 && !strcmp(argv[2], "--help") ? stdout : stderr);
        return argc >= 3 && !strcmp(argv[2], "--help") ? CLI_OK : CLI_USAGE;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"serve", cli_serve},   {"ask", cli_ask},       {"search", cli_search},
        {"import", cli_import}, {"user", cli_user},     {"export", cli_export},
        {"erase", cli_erase},   {"report", cli_report},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "caredesk: unknown command '%s'\n\n%s", cmd, usage);
    return CLI_USAGE;
}
