/* cli_report: `caredesk report --week YYYY-Www [--format md|csv|json]`, the
 * weekly report from the database, with the same settings as `caredesk
 * serve` (business hours, SLA targets, FCR window: flags, CAREDESK_*
 * environment or --config FILE). */
#include "cli.h"

#include "config.h"
#include "report.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char report_usage[] =
    "usage: caredesk report --week YYYY-Www [--format md|csv|json] [--db PATH] [settings]\n"
    "prints the weekly report: service levels and backlog; FCR, handle time, QA score,\n"
    "CSAT and NPS against the previous week; the top 10 contact drivers; the top\n"
    "unanswered questions. --week defaults to the last whole week. Settings as for\n"
    "'caredesk serve' (--config FILE, --business-hours, --sla-targets, --queues,\n"
    "--pickup-target, --fcr-window-days) decide the targets.\n";

/* Takes "--name VALUE" or "--name=VALUE" at argv[*i]: returns the value or
 * NULL if argv[*i] is not that option; *is_missing when the value is. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *is_missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) || (a[n] != '=' && a[n] != '\0'))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        *is_missing = 1;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

int cli_report(int argc, char **argv)
{
    const char *week = NULL, *format = "md";
    /* Everything else is a setting, passed on to config_load(). */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) {
        fputs("caredesk report: out of memory\n", stderr);
        return CLI_FAIL;
    }
    int n_rest = 0;
    rest[n_rest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        int is_missing = 0;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(report_usage, stdout);
            free(rest);
            return CLI_OK;
        }
        if ((v = opt_value(argc, argv, &i, "--week", &is_missing)))
            week = v;
        else if ((v = opt_value(argc, argv, &i, "--format", &is_missing)))
            format = v;
        else if (!is_missing)
            rest[n_rest++] = argv[i];
        if (is_missing) {
            fprintf(stderr, "caredesk report: %s needs a value\n%s", argv[i], report_usage);
            free(rest);
            return CLI_USAGE;
        }
    }
    if (strcmp(format, "md") && strcmp(format, "csv") && strcmp(format, "json")) {
        fprintf(stderr, "caredesk report: --format must be md, csv or json (got '%s')\n", format);
        free(rest);
        return CLI_USAGE;
    }
    int64_t now = cd_wall_s();
    char last_week[16];
    report_week_name(now - 7 * 86400, last_week, sizeof last_week);
    if (!week)
        week = last_week;
    int64_t since, until;
    if (report_week_parse(week, &since, &until)) {
        fprintf(stderr, "caredesk report: --week must be an ISO week such as 2026-W49 (got '%s')\n",
                week);
        free(rest);
        return CLI_USAGE;
    }

    struct config cfg;
    if (config_init(&cfg)) {
        fputs("caredesk report: out of memory\n", stderr);
        free(rest);
        return CLI_FAIL;
    }
    int code = CLI_FAIL;
    char *err = NULL;
    struct store *s = NULL;
    json_t *report = NULL;
    struct cd_buf out = {0};
    if (config_load(&cfg, n_rest, rest, 1, environ, &err)) {
        fprintf(stderr, "caredesk report: %s\n", err ? err : "invalid settings");
        code = CLI_USAGE;
        goto done;
    }
    s = store_open(cfg.db_path, NULL, &err);
    if (!s) {
        fprintf(stderr, "caredesk report: cannot open %s: %s\n", cfg.db_path,
                err ? err : "unknown error");
        goto done;
    }
    struct report_settings rs;
    report_settings_from_config(&rs, &cfg);
    int rc = report_week_build(s, &rs, week, now, &report);
    if (rc) {
        fprintf(stderr, "caredesk report: %s\n", cd_strerror(rc));
        goto done;
    }
    if (!strcmp(format, "json")) {
        char *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        rc = text ? cd_buf_printf(&out, "%s\n", text) : CD_ENOMEM;
        free(text);
    } else if (!strcmp(format, "csv")) {
        rc = report_week_csv(report, &out);
    } else {
        rc = report_week_markdown(report, &out);
    }
    if (rc || fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout)) {
        fprintf(stderr, "caredesk report: %s\n", rc ? cd_strerror(rc) : "cannot write");
        goto done;
    }
    code = CLI_OK;
done:
    cd_buf_free(&out);
    json_decref(report);
    store_close(s);
    free(err);
    config_clear(&cfg);
    free(rest);
    return code;
}
