/* cli_kb: placeholder subcommands, replaced as the modules behind them land. */
#include "cli.h"

#include <stdio.h>

int cli_search(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'search' is not built yet\n", stderr);
    return CLI_FAIL;
}

int cli_import(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'import' is not built yet\n", stderr);
    return CLI_FAIL;
}

int cli_eval_kb(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'eval_kb' is not built yet\n", stderr);
    return CLI_FAIL;
}
