/* brief: `qbrief brief` (output/brief.h) -- opens the store, analyses the run, runs the
 * template into a document (document.c) and writes it in one format (markdown.c, pdf.c, csv.c,
 * or the analysis's JSON) through the output file of outfile.c: a temporary renamed over the
 * output at the end. The other files of the module are listed in output/brief_int.h. */
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

/* The analysis's JSON, ending in a newline. */
static int write_json(const struct qb_analysis *a, struct brief_out *out)
{
    char *json = NULL;
    int rc;
    if ((rc = qb_analysis_json(a, &json)) < 0)
        return rc;
    size_t n = strlen(json);
    if ((rc = brief_out_write(out, json, n)) >= 0 && !(n && json[n - 1] == '\n'))
        rc = brief_out_write(out, "\n", 1);
    free(json);
    return rc;
}

/* The CSV tables, gathered in memory first: only the output file's own writes can fail. */
static int write_csv(const struct qb_analysis *a, struct brief_out *out)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    int rc;
    if (!f)
        return qb_err(QB_ENOMEM, "out of memory");
    int bad = brief_write_csv(a, f) < 0;
    if (fclose(f) != 0 || bad)
        rc = qb_err(QB_ENOMEM, "out of memory");
    else
        rc = brief_out_write(out, buf, n);
    free(buf);
    return rc;
}

int qb_brief_render(const struct qb_analysis *a, const struct qb_template *t,
                    const struct qb_brief_opts *o)
{
    struct qb_template *own = NULL;
    struct qb_doc doc = {0};
    struct brief_out out = BRIEF_OUT_INIT;
    char *date = NULL;
    int rc = 0;

    if (!o->out_path || !*o->out_path)
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
    if ((rc = brief_out_open(&out, o->out_path)) < 0)
        goto out;
    switch (o->format) {
    case QB_BRIEF_PDF: rc = qb_pdf_write(&doc, o->paper, &out); break;
    case QB_BRIEF_MD: rc = brief_write_md(&doc, &out); break;
    case QB_BRIEF_JSON: rc = write_json(a, &out); break;
    case QB_BRIEF_CSV: rc = write_csv(a, &out); break;
    }
    if (rc >= 0)
        rc = brief_out_commit(&out);
    if (rc >= 0 && o->answer)
        *o->answer = doc.answer ? strdup(doc.answer) : NULL;
out:
    brief_out_close(&out);
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
    if (o->against)
        return brief_write_against(o);
    if (o->runs)
        return brief_write_candidates(o);
    if (!o->run_name && o->format != QB_BRIEF_CSV && access(o->db_path, F_OK) == 0) {
        /* no run named: the newest, or, when it is one model of a multi-model plan, the
         * candidates brief over all of them */
        char *runs = NULL;
        if ((rc = brief_plan_runs(o->db_path, &runs)) < 0)
            return rc;
        if (runs) {
            struct qb_brief_opts oc = *o;
            oc.runs = runs;
            rc = brief_write_candidates(&oc);
            g_free(runs);
            return rc;
        }
    }
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
