/* brief_int: the laid-out-but-not-yet-paginated brief that brief.c builds from a template and
 * an analysis, and that the Markdown writer (brief.c) and the PDF writer (pdf.c) both read.
 * Internal to the brief module: include only from output/brief.c and output/pdf.c. All text is
 * UTF-8 and owned by the document. */
#ifndef QB_BRIEF_INT_H
#define QB_BRIEF_INT_H

#include "output/brief.h"

#include <stddef.h>
#include <stdint.h>

enum qb_blk_kind {
    QB_BLK_PAGE,  /* page break */
    QB_BLK_TITLE, /* the decision, large */
    QB_BLK_LEAD,  /* the answer in one sentence, emphasised */
    QB_BLK_H1,
    QB_BLK_H2,
    QB_BLK_P,
    QB_BLK_NOTE,  /* small grey text */
    QB_BLK_CODE,  /* a command line: breaks anywhere */
    QB_BLK_STATS, /* headline numbers: items = value, label, note per number */
    QB_BLK_TABLE, /* cells row-major, row 0 the header; align 'l' or 'r' per column */
    QB_BLK_CHART, /* png (or raw RGB for the PDF; NULL when not drawn), file name for Markdown */
    QB_BLK_LIST,  /* bulleted items */
};

struct qb_blk {
    enum qb_blk_kind kind;
    char *text;
    char **items;
    int64_t n_items;
    char **cells;
    int64_t n_rows, n_cols;
    char *align;
    unsigned char *png;
    size_t n_png;
    double width_pt, height_pt;
    char *file;     /* chart: "heatmap.png" */
    char *title;    /* chart: drawn by the chart, and the Markdown alt text */
    char *subtitle; /* chart */
    char *slice;    /* chart: one slice, or NULL */
    int chart_kind; /* enum qb_chart_kind */
    int px_w, px_h; /* chart: when > 0, png holds raw RGB pixels (3 bytes each) instead */
    int line;       /* template line, for messages */
};

struct qb_doc {
    struct qb_blk *blk;
    int64_t n, cap;
    char *footer;     /* one line, on every page */
    char *page_label; /* pattern with {page} and {pages} */
    char *doc_title;  /* PDF metadata */
    char *answer;     /* the one-sentence answer, for the caller's summary line */
};

/* Writes doc as a PDF to the open path (the caller renames it). QB_EIO when the fonts are
 * missing or the file cannot be written. */
int qb_pdf_write(const struct qb_doc *doc, enum qb_brief_paper paper, const char *path);

#endif
