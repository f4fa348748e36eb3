/* cli_kb_import: `caredesk import --from zendesk|intercom|freshdesk FILE...`, the
 * help-centre exports (kb_import.h); `import` hands over to it for --from or .json files. */
#include "cd.h"
#include "cli.h"
#include "kb.h"
#include "kb_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_DEFAULT_DB "caredesk.db"

static const char import_export_usage[] =
    "usage: caredesk import [--from zendesk|intercom|freshdesk] [--db PATH] FILE.json...\n"
    "\n"
    "Loads a help centre's articles from its own export JSON, as its API returns it:\n"
    "  zendesk    {\"articles\": [...]} pages of the Help Center articles API\n"
    "  intercom   {\"type\": \"list\", \"data\": [...]} of the Articles API\n"
    "  freshdesk  [...] of the solutions articles API\n"
    "Without --from the format is told from each file's shape. HTML bodies become Markdown;\n"
    "drafts stay drafts; labels, tags, sections, folders and collections become tags; ids\n"
    "are stable (zendesk-360001234501), so importing the same export again changes nothing.\n"
    "Problems are reported as FILE:ITEM: message and skipped; the rest still loads.\n"
    "Articles imported before that the files no longer hold are reported, not deleted.\n"
    "\n"
    "Exit status: 0 everything loaded, 1 something was skipped or failed, 2 usage error.\n";

int cli_import_is_export(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--from") || cd_has_suffix(argv[i], ".json"))
            return 1;
    return 0;
}

static void print_problem(void *ctx, const char *where, const char *message)
{
    (void)ctx;
    fprintf(stderr, "%s: %s\n", where, message);
}

int cli_import_export(int argc, char **argv)
{
    const char *db_path = CLI_DEFAULT_DB;
    int format = KB_IMPORT_SNIFF, n_files = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    if (!files) {
        fputs("caredesk: out of memory\n", stderr);
        return CLI_FAIL;
    }
    int rc = CLI_OK, only_files = 0;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        const char *a = argv[i];
        if (!only_files && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            fputs(import_export_usage, stdout);
            free(files);
            return CLI_OK;
        }
        if (!only_files && (!strcmp(a, "--db") || !strcmp(a, "--from"))) {
            if (i + 1 >= argc) {
                fprintf(stderr, "caredesk: option '%s' needs a value\n\n%s", a,
                        import_export_usage);
                rc = CLI_USAGE;
            } else if (!strcmp(a, "--db"))
                db_path = argv[++i];
            else if ((format = kb_import_format_from_name(argv[++i])) < 0) {
                fprintf(stderr, "caredesk: --from takes zendesk, intercom or freshdesk, not '%s'\n",
                        argv[i]);
                rc = CLI_USAGE;
            }
        } else if (!only_files && !strcmp(a, "--"))
            only_files = 1;
        else if (!only_files && a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "caredesk: unknown option '%s'\n\n%s", a, import_export_usage);
            rc = CLI_USAGE;
        } else
            files[n_files++] = argv[i];
    }
    if (rc == CLI_OK && !n_files) {
        fprintf(stderr, "caredesk: no export file given\n\n%s", import_export_usage);
        rc = CLI_USAGE;
    }
    if (rc != CLI_OK) {
        free(files);
        return rc;
    }
    struct kb *kb = cli_open_kb(db_path);
    if (!kb) {
        free(files);
        return CLI_FAIL;
    }
    struct kb_import_report report = {0};
    report.on_problem = print_problem;
    int irc = kb_import_files(kb, format, files, n_files, &report);
    if (irc) {
        fprintf(stderr, "caredesk: %s: %s\n", db_path, cd_strerror(irc));
        rc = CLI_FAIL;
    }
    printf("new %d, updated %d, unchanged %d, skipped %d, no longer in the export %d; "
           "%d published articles in %s\n",
           report.n_new, report.n_updated, report.n_unchanged, report.n_problems, report.n_missing,
           kb_count(kb), db_path);
    kb_close(kb);
    free(files);
    return rc != CLI_OK || report.n_problems ? CLI_FAIL : CLI_OK;
}
