/* brief: `qbrief brief` -- one run of the results store, analysed (analysis/analyze.h), laid
 * out by a template (templates/NAME.tmpl, language in docs/templates.md) and written as a PDF,
 * Markdown with PNG charts, the analysis JSON, or CSV tables.
 *
 *     struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
 *     o.db_path = "qbrief.db";          // o.run_name NULL: the newest run
 *     o.out_path = "brief.pdf";         // o.format QB_BRIEF_PDF, o.paper QB_PAPER_A4
 *     o.template_name = "leadership";   // or "review", or a path to a .tmpl file
 *     if ((rc = qb_brief_write(&o)) < 0)
 *         fprintf(stderr, "qbrief: %s\n", qb_errmsg());
 *
 * Every sentence, heading, verdict word and caveat comes from the template; this module only
 * computes values ({{var}}), fills the generated tables and lists, and lays them out. The
 * output is written to a temporary file beside out_path and renamed over it at the end, so a
 * failure leaves neither a half brief nor a clobbered old one. out_path "-" is stdout; any
 * other path must be a regular file of this user or none: a symlink is followed, a device or
 * FIFO refused, the old file's permissions kept (output/outfile.c). Markdown also writes its
 * charts (PNG, 150 dpi) into a folder beside the .md: brief.md -> brief_files/heatmap.png
 * (none when written to stdout).
 *
 * Templates are found by name in $QBRIEF_TEMPLATES, else in ../templates beside the
 * executable (bin/../templates), else in ./templates; a name with a '/' or ending in .tmpl is
 * a path. Parse errors name file:line. */
#ifndef QB_BRIEF_H
#define QB_BRIEF_H

#include <stdint.h>

struct qb_analysis;
struct qb_compare;
struct qb_template;

enum qb_brief_format { QB_BRIEF_PDF, QB_BRIEF_MD, QB_BRIEF_JSON, QB_BRIEF_CSV };
enum qb_brief_paper { QB_PAPER_A4, QB_PAPER_LETTER };

struct qb_brief_opts {
    const char *db_path;       /* results database (required by qb_brief_write) */
    const char *run_name;      /* NULL: the newest run */
    const char *out_path;      /* required; "-" for stdout */
    const char *template_name; /* NULL: the run's template, else "leadership" */
    enum qb_brief_format format;
    enum qb_brief_paper paper;
    const char *command_line; /* shown as "how to reproduce this brief"; may be NULL */
    const char *date;         /* the brief's date (YYYY-MM-DD); NULL: today (UTC) */
    char **answer;            /* out, may be NULL: the one-sentence answer of a PDF or
                               * Markdown brief (malloc'd; NULL for JSON and CSV) */
    /* run against run: the run compared with -- a run of db_path, "FILE.db" (its only run) or
     * "FILE.db#RUN"; NULL for a brief of one run. Template "compare" by default; PDF or
     * Markdown only. */
    const char *against;
    const struct qb_compare *compare; /* set by qb_brief_write for qb_brief_render */
    /* candidates: "R1,R2,..." runs of db_path, one per model on one suite, briefed as one
     * (analysis/candidates.h; template "candidates" by default); NULL for one run */
    const char *runs;
};
#define QB_BRIEF_OPTS_INIT                                                                         \
    {                                                                                              \
        NULL, NULL, NULL, NULL, QB_BRIEF_PDF, QB_PAPER_A4, NULL, NULL, NULL, NULL, NULL, NULL      \
    }

/* Opens the store read-only, analyses the run and writes the brief. QB_EINVAL for an unknown
 * run or template name, QB_EFORMAT for a bad template line, QB_EIO when a file cannot be
 * written (or the PDF font is missing). */
int qb_brief_write(const struct qb_brief_opts *o);

/* The same from an analysis already computed (borrowed). t may be NULL: then the template is
 * loaded from o->template_name as above. JSON and CSV ignore the template. */
int qb_brief_render(const struct qb_analysis *a, const struct qb_template *t,
                    const struct qb_brief_opts *o);

/* Templates. Load by name or path (see above), or parse text in memory; `file` is the name
 * used in error messages ("'leadership.tmpl':12: unknown directive '@foo'"). */
int qb_template_load(const char *name_or_path, struct qb_template **out);
int qb_template_parse(const char *text, const char *file, struct qb_template **out);
void qb_template_free(struct qb_template *t);
/* Directives and defines parsed, for tests and tooling. */
int64_t qb_template_n_lines(const struct qb_template *t);
const char *qb_template_define(const struct qb_template *t, const char *name); /* NULL if absent */

/* Renders t for a into a Markdown string (charts are linked as files_dir/NAME.png but not
 * drawn; pass NULL files_dir to leave charts out). *out is malloc'd. For tests and tooling. */
int qb_brief_markdown(const struct qb_analysis *a, const struct qb_template *t,
                      const char *files_dir, const char *date, char **out);

/* For a CLI: handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGXFSZ that remove the temporary
 * files of a brief being written, then let the signal end the process as before. Signals ignored
 * (nohup) stay ignored. Where the filesystem has O_TMPFILE a killed brief leaves nothing
 * behind even without them; these cover the other filesystems. */
void qb_brief_catch_signals(void);

/* Fault injection, for tests: fail is called before each step that writes a brief's output
 * (creating a temporary file, each write(2), the fsync, linking and renaming it); a nonzero
 * return fails that step with that errno, as ENOSPC from a full disk would. NULL removes the
 * hook. Process-wide and not thread-safe: for tests only. */
enum qb_brief_io {
    QB_BRIEF_IO_CREATE,
    QB_BRIEF_IO_WRITE,
    QB_BRIEF_IO_SYNC,
    QB_BRIEF_IO_LINK,
    QB_BRIEF_IO_RENAME,
};
void qb_brief_set_io_fault(int (*fail)(void *ctx, enum qb_brief_io step), void *ctx);

/* "pdf", "md", "json", "csv" / "a4", "letter" -> enum; QB_EINVAL otherwise. */
int qb_brief_format_parse(const char *s, enum qb_brief_format *out);
int qb_brief_paper_parse(const char *s, enum qb_brief_paper *out);
/* The format a file name implies by its extension (.pdf .md .json .csv); -1 when none. */
int qb_brief_format_from_path(const char *path);

#endif
