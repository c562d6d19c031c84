/* markdown: the document (output/brief_int.h) as Markdown -- headings, paragraphs, tables,
 * lists, charts linked as PNG files written into STEM_files/ beside the .md (a temporary
 * folder first, renamed once every file is written). */
#include "output/brief.h"

#include "kernels/base/err.h"
#include "output/brief_int.h"

#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void md_escape(GString *g, const char *s, int in_table)
{
    for (; *s; s++) {
        if (strchr("\\`*_[]<>|", *s) && (in_table || *s != '|'))
            g_string_append_c(g, '\\');
        if (in_table && *s == '\n')
            g_string_append(g, "<br>");
        else
            g_string_append_c(g, *s);
    }
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
        case QB_BLK_CODE: g_string_append_printf(g, "```\n%s\n```\n\n", b->text); break;
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

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = brief_fmt("%s/%s", dir, e->d_name);
        unlink(p);
        g_free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Markdown: the .md plus its charts in STEM_files/ (written to a temporary folder first). */
int brief_write_md(const struct qb_doc *doc, const char *path, const char *tmp)
{
    char *dir = g_path_get_dirname(path), *base = g_path_get_basename(path);
    char *stem = g_strdup(base), *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = 0;
    char *files = brief_fmt("%s_files", stem), *files_path = g_build_filename(dir, files, NULL);
    char *tmpdir = brief_fmt("%s.tmpXXXXXX", files_path), *md = NULL;
    int rc = 0, nchart = 0;

    for (int64_t i = 0; i < doc->n; i++)
        nchart += doc->blk[i].kind == QB_BLK_CHART;
    if (nchart && !mkdtemp(tmpdir)) {
        rc = qb_err(QB_EIO, "cannot create '%s': %s", tmpdir, strerror(errno));
        goto out;
    }
    for (int64_t i = 0; i < doc->n && nchart; i++) {
        const struct qb_blk *b = &doc->blk[i];
        if (b->kind != QB_BLK_CHART)
            continue;
        char *p = g_build_filename(tmpdir, b->file, NULL);
        rc = brief_write_text(p, p, (const char *)b->png, b->n_png);
        g_free(p);
        if (rc < 0)
            goto out;
    }
    md = md_render(doc, nchart ? files : NULL);
    if ((rc = brief_write_text(tmp, path, md, strlen(md))) < 0)
        goto out;
    if (nchart) {
        chmod(tmpdir, 0755);
        remove_dir(files_path); /* the previous brief's charts */
        if (rename(tmpdir, files_path) != 0) {
            rc = qb_err(QB_EIO, "cannot write '%s': %s", files_path, strerror(errno));
            goto out;
        }
    }
out:
    if (rc < 0 && nchart)
        remove_dir(tmpdir);
    g_free(md), g_free(dir), g_free(base), g_free(stem), g_free(files), g_free(files_path),
        g_free(tmpdir);
    return rc;
}
