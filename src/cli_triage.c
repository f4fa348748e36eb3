/* cli_triage: placeholder subcommands, replaced as the modules behind them land. */
#include "cli.h"

#include <stdio.h>

int cli_ask(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'ask' is not built yet\n", stderr);
    return CLI_FAIL;
}

int cli_eval_intents(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'eval_intents' is not built yet\n", stderr);
    return CLI_FAIL;
}
