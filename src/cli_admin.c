/* cli_admin: `caredesk user`, `export` and `erase` (placeholders until the store lands). */
#include "cli.h"

#include <stdio.h>

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
