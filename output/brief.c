/* brief: `qbrief brief` (output/brief.h) -- opens the store, analyses the run, runs the
 * template into a document (document.c) and writes it in one format (markdown.c, pdf.c, csv.c,
 * or the analysis's JSON) to a temporary file renamed over the output at the end. The other
 * files of the module are listed in output/brief_int.h. */
#include "output/brief.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "output/brief_int.h"
#include "collector/store/store.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *today_utc(void)
{
    time_t now = time(NULL);
    struct tm tm;
    char buf[32];
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return g_strdup(buf);
}

/* ---------------------------------------------------------------- files */

int qb_brief_format_parse(const char *s, enum qb_brief_format *out)
{
    static const char *n[] = {"pdf", "md", "json", "csv"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, n[i])) {
            *out = (enum qb_brief_format)i;
            return 0;
        }
    return qb_err(QB_EINVAL, "unknown format '%s' (pdf, md, json, csv)", s);
}

int qb_brief_paper_parse(const char *s, enum qb_brief_paper *out)
{
    if (!g_ascii_strcasecmp(s, "a4"))
        *out = QB_PAPER_A4;
    else if (!g_ascii_strcasecmp(s, "letter"))
        *out = QB_PAPER_LETTER;
    else
        return qb_err(QB_EINVAL, "unknown paper '%s' (a4, letter)", s);
    return 0;
}

int qb_brief_format_from_path(const char *path)
{
    static const char *ext[] = {".pdf", ".md", ".json", ".csv"};
    for (int i = 0; i < 4; i++)
        if (g_str_has_suffix(path, ext[i]))
            return i;
    return -1;
}

/* A temporary file beside path: path.tmpXXXXXX, created (fd closed). */
static int make_temp(const char *path, char **tmp)
{
    *tmp = brief_fmt("%s.tmpXXXXXX", path);
    int fd = mkstemp(*tmp);
    if (fd < 0) {
        int rc = qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno));
        g_free(*tmp);
        *tmp = NULL;
        return rc;
    }
    fchmod(fd, 0644);
    close(fd);
    return 0;
}

int brief_write_text(const char *tmp, const char *path, const char *s, size_t n)
{
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno));
    size_t w = fwrite(s, 1, n, f);
    int bad = w != n || ferror(f);
    if (fclose(f) != 0 || bad)
        return qb_err(QB_EIO, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    return 0;
}
int qb_brief_render(const struct qb_analysis *a, const struct qb_template *t,
                    const struct qb_brief_opts *o)
{
    struct qb_template *own = NULL;
    struct qb_doc doc = {0};
    char *tmp = NULL, *date = NULL, *json = NULL;
    int rc = 0;

    if (!o->out_path)
        return qb_err(QB_EINVAL, "no output file");
    date = o->date ? g_strdup(o->date) : today_utc();
    if (o->format == QB_BRIEF_PDF || o->format == QB_BRIEF_MD) {
        if (!t) {
            if ((rc = qb_template_load(o->template_name ? o->template_name : a->template_name,
                                       &own)) < 0)
                goto out;
            t = own;
        }
        /* text width: A4 595 pt or Letter 612 pt less 2 x 56 pt margins */
        double tw = (o->paper == QB_PAPER_LETTER ? 612.0 : 595.0) - 2 * 56.0;
        if ((rc = brief_build_doc(a, t, o, date, tw, &doc)) < 0 ||
            (rc = brief_draw_charts(a, &doc, o->format == QB_BRIEF_PDF ? 300.0 : 150.0,
                                    o->format == QB_BRIEF_PDF)) < 0)
            goto out;
    }
    if ((rc = make_temp(o->out_path, &tmp)) < 0)
        goto out;
    switch (o->format) {
    case QB_BRIEF_PDF: rc = qb_pdf_write(&doc, o->paper, tmp); break;
    case QB_BRIEF_MD: rc = brief_write_md(&doc, o->out_path, tmp); break;
    case QB_BRIEF_JSON:
        if ((rc = qb_analysis_json(a, &json)) >= 0) {
            size_t n = strlen(json);
            char *j2 = brief_fmt("%s%s", json, n && json[n - 1] == '\n' ? "" : "\n");
            rc = brief_write_text(tmp, o->out_path, j2, strlen(j2));
            g_free(j2);
        }
        break;
    case QB_BRIEF_CSV: {
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            rc = qb_err(QB_EIO, "cannot write '%s': %s", o->out_path, strerror(errno));
            break;
        }
        int bad = brief_write_csv(a, f) < 0;
        if (fclose(f) != 0 || bad)
            rc =
                qb_err(QB_EIO, "cannot write '%s': %s", o->out_path, strerror(errno ? errno : EIO));
        break;
    }
    }
    if (rc >= 0 && rename(tmp, o->out_path) != 0)
        rc = qb_err(QB_EIO, "cannot write '%s': %s", o->out_path, strerror(errno));
    if (rc >= 0 && o->answer)
        *o->answer = doc.answer ? strdup(doc.answer) : NULL;
out:
    if (tmp && rc < 0)
        unlink(tmp);
    g_free(tmp);
    free(json);
    g_free(date);
    brief_doc_free(&doc);
    qb_template_free(own);
    return rc;
}

int qb_brief_write(const struct qb_brief_opts *o)
{
    struct qb_store *s = NULL;
    struct qb_analysis *a = NULL;
    struct qb_template *t = NULL;
    int rc;

    if (!o->db_path || !o->out_path)
        return qb_err(QB_EINVAL, "qb_brief_write needs a database and an output file");
    if (access(o->db_path, F_OK) != 0)
        return qb_err(QB_EIO, "cannot open database '%s': %s", o->db_path, strerror(errno));
    /* the template first: a bad template line fails before the slow part */
    if ((o->format == QB_BRIEF_PDF || o->format == QB_BRIEF_MD) && o->template_name &&
        (rc = qb_template_load(o->template_name, &t)) < 0)
        return rc;
    if ((rc = qb_store_open(o->db_path, QB_STORE_READONLY, &s)) < 0 ||
        (rc = qb_analyze(s, o->run_name, NULL, &a)) < 0)
        goto out;
    rc = qb_brief_render(a, t, o);
out:
    qb_template_free(t);
    qb_analysis_free(a);
    qb_store_close(s);
    return rc;
}
