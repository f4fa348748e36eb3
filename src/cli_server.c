/* cli_server: `caredesk serve`: reads the settings, opens the store and the
 * knowledge base, loads and trains the intents, then serves until SIGTERM. */
#include "cli.h"

#include "cd.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int cli_serve(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            config_print_help(stdout);
            return CLI_OK;
        }
    }
    struct config cfg;
    if (config_init(&cfg)) {
        fputs("caredesk serve: out of memory\n", stderr);
        return CLI_FAIL;
    }
    int code = CLI_FAIL;
    struct metrics *metrics = NULL;
    struct server *server = NULL;
    char *err = NULL;
    if (config_load(&cfg, argc, argv, 1, environ, &err)) {
        fprintf(stderr, "caredesk serve: %s\n", err ? err : "invalid settings");
        code = CLI_USAGE;
        goto done;
    }
    log_init((enum log_level)log_level_parse(cfg.log_level), stderr);
    metrics = metrics_new();
    if (!metrics) {
        fputs("caredesk serve: out of memory\n", stderr);
        goto done;
    }
    server = server_new(&cfg, metrics, &err);
    if (!server) {
        log_event(LOG_ERROR, "start_failed", "error:s", err, LOG_END);
        fprintf(stderr, "caredesk serve: %s\n", err ? err : "cannot start");
        goto done;
    }
    code = server_run(server) ? CLI_FAIL : CLI_OK;
done:
    server_free(server);
    metrics_free(metrics);
    free(err);
    config_clear(&cfg);
    return code;
}
