/* cli_server: `caredesk serve` (placeholder until the server lands). */
#include "cli.h"

#include <stdio.h>

int cli_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("caredesk: 'serve' is not built yet\n", stderr);
    return CLI_FAIL;
}
