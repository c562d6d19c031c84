/* cmd_brief: `qbrief brief` -- flags into struct qb_brief_opts, then qb_brief_write
 * (output/brief.h): analyse one run of the results database and write the brief as PDF,
 * Markdown, JSON or CSV. The format follows -o's extension unless --format names one; `-o -`
 * writes to stdout (then the one-line summary goes to stderr). */
#include "collector/cli/cli.h"
#include "kernels/base/err.h"
#include "output/brief.h"

#include <getopt.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The answer as one line of plain text for the terminal: it quotes slice and config names
 * from the store, and a control character there (a newline, an escape sequence) must not
 * reach the terminal. */
static void print_summary(FILE *f, const char *out, const char *answer)
{
    fprintf(f, "%s: ", out);
    for (const unsigned char *p = (const unsigned char *)(answer ? answer : "written"); *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
    fputc('\n', f);
}

int cmd_brief(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},     {"run", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'}, {"template", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'}, {"paper", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},         {"against", required_argument, NULL, 'a'},
        {"runs", required_argument, NULL, 'R'},   {0},
    };
    const struct command *self = qb_find_command("brief");
    struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
    const char *format = NULL, *paper = NULL;
    char *cmdline = NULL;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': o.db_path = optarg; break;
        case 'r': o.run_name = optarg; break;
        case 'o': o.out_path = optarg; break;
        case 't': o.template_name = optarg; break;
        case 'f': format = optarg; break;
        case 'p': paper = optarg; break;
        case 'a': o.against = optarg; break;
        case 'R': o.runs = optarg; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind < argc)
        return qb_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (o.runs && (o.run_name || o.against))
        return qb_usage_error(self, "%s", "--runs names every run: not with --run or --against");
    if (!o.out_path || !*o.out_path)
        return qb_usage_error(self, "%s", "needs -o OUT");
    if (!o.db_path)
        o.db_path = "qbrief.db";
    if (format) {
        if (qb_brief_format_parse(format, &o.format) < 0)
            return qb_usage_error(self, "%s", qb_errmsg());
    } else if (qb_brief_format_from_path(o.out_path) >= 0) {
        o.format = (enum qb_brief_format)qb_brief_format_from_path(o.out_path);
    }
    if (paper && qb_brief_paper_parse(paper, &o.paper) < 0)
        return qb_usage_error(self, "%s", qb_errmsg());
    int to_stdout = !strcmp(o.out_path, "-");
    if (to_stdout && o.format == QB_BRIEF_PDF && isatty(STDOUT_FILENO))
        return qb_usage_error(self, "%s",
                              "-o - would write a PDF to the terminal: redirect stdout, or pick "
                              "--format md, json or csv");
    qb_brief_catch_signals(); /* a brief interrupted leaves no temporary behind */
    cmdline = qb_command_line(argc, argv);
    o.command_line = cmdline;
    char *answer = NULL;
    o.answer = &answer;
    /* one line on success: where the brief went and, for a PDF or Markdown brief, its answer
     * (on stderr when the brief itself went to stdout) */
    if ((rc = qb_brief_write(&o)) >= 0)
        print_summary(to_stdout ? stderr : stdout, to_stdout ? "stdout" : o.out_path, answer);
    free(answer);
    g_free(cmdline);
    return qb_report(rc);
}
