/* markdown: the document (output/brief_int.h) as Markdown -- headings, paragraphs, tables,
 * lists, charts linked as PNG files written into STEM_files/ beside the .md (a temporary
 * folder first, exchanged with the old one just before the .md is committed). Text from the
 * run (slice and config names, warnings) is escaped so that it stays inline text: no heading,
 * list, HTML tag or link can come out of a name. */
#include "output/brief.h"

#include "kernels/base/err.h"
#include "output/brief_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* s as Markdown inline text (in_table: inside a table cell). Whatever Markdown could read as
 * markup is backslash-escaped: \ ` * _ [ ] < > and # ~ everywhere, '|' in a cell, '&' before
 * a letter or '#' (an entity), a list marker ("-", "+", "1.") at the start. A line break
 * becomes a space (in a cell "<br>"), other control characters are dropped: a name like
 * "x\n# y" stays one line of text, never a heading. */
static void md_escape(GString *g, const char *s, int in_table)
{
    const char *p = s;
    if (!in_table && (*p == '-' || *p == '+')) { /* a bullet: "- x" */
        if (!p[1] || p[1] == ' ' || p[1] == '\t')
            g_string_append_c(g, '\\');
    } else if (!in_table && g_ascii_isdigit(*p)) { /* an ordered item: "1. x", "2) x" */
        while (g_ascii_isdigit(*p))
            p++;
        if ((*p == '.' || *p == ')') && (!p[1] || p[1] == ' ' || p[1] == '\t')) {
            g_string_append_len(g, s, p - s);
            g_string_append_c(g, '\\');
            s = p;
        }
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' && s[1] == '\n')
            continue;
        if (c == '\n' || c == '\r') {
            g_string_append(g, in_table ? "<br>" : " ");
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            continue;
        if ((strchr("\\`*_[]<>#~", c) || (in_table && c == '|') ||
             (c == '&' && (g_ascii_isalpha(s[1]) || s[1] == '#'))))
            g_string_append_c(g, '\\');
        g_string_append_c(g, (char)c);
    }
}

/* A fence longer than any run of backticks in s, so that s cannot close it. */
static void md_code(GString *g, const char *s)
{
    int run = 0, longest = 0;
    for (const char *p = s; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    int n = longest < 3 ? 3 : longest + 1;
    for (int i = 0; i < n; i++)
        g_string_append_c(g, '`');
    g_string_append_printf(g, "\n%s\n", s);
    for (int i = 0; i < n; i++)
        g_string_append_c(g, '`');
    g_string_append(g, "\n\n");
}

static char *md_render(const struct qb_doc *d, const char *files_dir)
{
    GString *g = g_string_new(NULL);
    for (int64_t i = 0; i < d->n; i++) {
        const struct qb_blk *b = &d->blk[i];
        switch (b->kind) {
        case QB_BLK_PAGE:
            if (i > 0 && i < d->n - 1)
                g_string_append(g, "---\n\n");
            break;
        case QB_BLK_TITLE:
        case QB_BLK_H1:
        case QB_BLK_H2:
            g_string_append(g, b->kind == QB_BLK_TITLE ? "# "
                               : b->kind == QB_BLK_H1  ? "## "
                                                       : "### ");
            md_escape(g, b->text, 0);
            g_string_append(g, "\n\n");
            break;
        case QB_BLK_LEAD:
            g_string_append(g, "**");
            md_escape(g, b->text, 0);
            g_string_append(g, "**\n\n");
            break;
        case QB_BLK_P:
            md_escape(g, b->text, 0);
            g_string_append(g, "\n\n");
            break;
        case QB_BLK_NOTE:
            g_string_append(g, "*");
            md_escape(g, b->text, 0);
            g_string_append(g, "*\n\n");
            break;
        case QB_BLK_CODE: md_code(g, b->text); break;
        case QB_BLK_STATS:
            for (int64_t k = 0; k + 2 < b->n_items; k += 3) {
                g_string_append(g, "- **");
                md_escape(g, b->items[k], 0);
                g_string_append(g, "** ");
                md_escape(g, b->items[k + 1], 0);
                if (*b->items[k + 2]) {
                    g_string_append(g, " — ");
                    md_escape(g, b->items[k + 2], 0);
                }
                g_string_append(g, "\n");
            }
            g_string_append(g, "\n");
            break;
        case QB_BLK_LIST:
            for (int64_t k = 0; k < b->n_items; k++) {
                g_string_append(g, "- ");
                md_escape(g, b->items[k], 0);
                g_string_append(g, "\n");
            }
            if (b->n_items)
                g_string_append(g, "\n");
            break;
        case QB_BLK_TABLE:
            if (!b->n_rows)
                break;
            for (int64_t r = 0; r < b->n_rows; r++) {
                g_string_append(g, "|");
                for (int64_t k = 0; k < b->n_cols; k++) {
                    g_string_append_c(g, ' ');
                    md_escape(g, b->cells[r * b->n_cols + k], 1);
                    g_string_append(g, " |");
                }
                g_string_append(g, "\n");
                if (r == 0) {
                    g_string_append(g, "|");
                    for (int64_t k = 0; k < b->n_cols; k++)
                        g_string_append(g, b->align[k] == 'r' ? " ---: |" : " --- |");
                    g_string_append(g, "\n");
                }
            }
            g_string_append(g, "\n");
            break;
        case QB_BLK_CHART:
            if (!files_dir)
                break;
            g_string_append(g, "![");
            md_escape(g, b->title ? b->title : b->file, 0);
            /* <...> keeps a folder name with spaces one link */
            g_string_append_printf(g, strchr(files_dir, ' ') ? "](<%s/%s>)\n\n" : "](%s/%s)\n\n",
                                   files_dir, b->file);
            if (b->subtitle) {
                g_string_append(g, "*");
                md_escape(g, b->subtitle, 0);
                g_string_append(g, "*\n\n");
            }
            break;
        }
    }
    if (d->footer) {
        g_string_append(g, "---\n\n<small>");
        md_escape(g, d->footer, 0);
        g_string_append(g, "</small>\n");
    }
    return g_string_free(g, FALSE);
}

int qb_brief_markdown(const struct qb_analysis *a, const struct qb_template *t,
                      const char *files_dir, const char *date, char **out)
{
    struct qb_doc doc = {0};
    int rc;
    *out = NULL;
    if ((rc = brief_build_doc(a, t, NULL, date ? date : "1970-01-01", 480, &doc)) >= 0)
        *out = md_render(&doc, files_dir);
    brief_doc_free(&doc);
    return rc;
}

/* Empties and removes a chart folder: its files only (a folder inside stays, and so the
 * rmdir fails), never following a symlink. */
static void remove_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(fd, e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

/* The chart folder beside the .md, and its temporary twin while the charts are written. */
struct charts {
    char *files; /* "brief_files": the name the .md links */
    char *path;  /* that folder beside the .md */
    char *tmp;   /* "brief_files.tmpXXXXXX", holding the new charts */
    int slot;    /* tmp among the temporaries removed on a signal */
    int swapped; /* tmp and path exchanged: tmp holds the old charts (when old) */
    int old;     /* path existed before */
};

/* The new charts into a temporary folder beside path; an old chart folder there must be a
 * folder of this user (not a symlink: its contents are deleted once replaced). */
static int charts_write(const struct qb_doc *doc, const char *md_path, struct charts *ch)
{
    char *dir = g_path_get_dirname(md_path), *stem = g_path_get_basename(md_path);
    char *dot = strrchr(stem, '.');
    struct stat st;
    int rc = 0;

    if (dot && dot != stem)
        *dot = 0;
    ch->files = brief_fmt("%s_files", stem);
    ch->path = g_build_filename(dir, ch->files, NULL);
    g_free(dir), g_free(stem);
    if (lstat(ch->path, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            return qb_err(QB_EIO, "cannot write the charts to '%s': %s", ch->path,
                          !S_ISDIR(st.st_mode) ? "it is not a folder"
                                               : "it belongs to another user");
        ch->old = 1;
    }
    ch->tmp = brief_fmt("%s.tmpXXXXXX", ch->path);
    if (brief_io_step(QB_BRIEF_IO_CREATE) || !g_mkdtemp_full(ch->tmp, 0777)) {
        rc = qb_err(QB_EIO, "cannot write the charts to '%s': %s", ch->path, strerror(errno));
        g_free(ch->tmp);
        ch->tmp = NULL;
        return rc;
    }
    ch->slot = brief_temp_register(ch->tmp, 1);
    for (int64_t i = 0; i < doc->n && rc >= 0; i++) {
        const struct qb_blk *b = &doc->blk[i];
        if (b->kind != QB_BLK_CHART)
            continue;
        char *p = g_build_filename(ch->tmp, b->file, NULL);
        rc = brief_write_new_file(p, b->png, b->n_png);
        g_free(p);
    }
    return rc;
}

/* Puts the new charts in place, the old ones (if any) moving to the temporary name in the
 * same step, so that undoing it is one more exchange. */
static int charts_swap(struct charts *ch)
{
    if (brief_io_step(QB_BRIEF_IO_RENAME) ||
        (ch->old ? renameat2(AT_FDCWD, ch->tmp, AT_FDCWD, ch->path, RENAME_EXCHANGE)
                 : rename(ch->tmp, ch->path)) != 0)
        return qb_err(QB_EIO, "cannot write the charts to '%s': %s", ch->path, strerror(errno));
    ch->swapped = 1;
    return 0;
}

/* Success (ok): the old charts, now under the temporary name, go. Failure: the old charts
 * come back, and the new ones go. */
static void charts_finish(struct charts *ch, int ok)
{
    if (ch->tmp && ch->swapped && !ok) {
        if (ch->old)
            renameat2(AT_FDCWD, ch->tmp, AT_FDCWD, ch->path, RENAME_EXCHANGE);
        else
            rename(ch->path, ch->tmp);
    }
    if (ch->tmp && (!ok || ch->old))
        remove_dir(ch->tmp);
    brief_temp_forget(ch->slot);
    g_free(ch->files), g_free(ch->path), g_free(ch->tmp);
}

/* Markdown: the .md plus its charts in STEM_files/ beside it (none for stdout). The charts
 * are put in place just before the .md and taken back if the .md cannot be. */
int brief_write_md(const struct qb_doc *doc, struct brief_out *out)
{
    struct charts ch = {.slot = -1};
    char *md = NULL;
    int rc = 0, nchart = 0;

    for (int64_t i = 0; out->path && i < doc->n; i++)
        nchart += doc->blk[i].kind == QB_BLK_CHART;
    if (nchart && (rc = charts_write(doc, out->path, &ch)) < 0)
        goto out;
    md = md_render(doc, nchart ? ch.files : NULL);
    if ((rc = brief_out_write(out, md, strlen(md))) < 0 || (nchart && (rc = charts_swap(&ch)) < 0))
        goto out;
    rc = brief_out_commit(out);
out:
    if (nchart)
        charts_finish(&ch, rc >= 0);
    g_free(md);
    return rc;
}
