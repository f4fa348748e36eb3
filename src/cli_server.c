/* cli_server: placeholder subcommands, replaced as the modules behind them land. */
#include "cli.h"

#include <stdio.h>

int cli_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'serve' is not built yet\n", stderr);
    return CLI_FAIL;
}

int cli_user(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'user' is not built yet\n", stderr);
    return CLI_FAIL;
}

int cli_export(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'export' is not built yet\n", stderr);
    return CLI_FAIL;
}

int cli_erase(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'erase' is not built yet\n", stderr);
    return CLI_FAIL;
}
