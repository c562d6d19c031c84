/* brief_int: what the files of the brief module share. Internal to the brief module: include
 * only from the files below, never from outside output/.
 *
 *   brief.c     qb_brief_write / qb_brief_render: analyse, build the document, write one format
 *               to the output (outfile.c)
 *   template.c  the template language (docs/templates.md): parse, check and load .tmpl files;
 *               expand {{variables}}, @define patterns and item scopes
 *   vars.c      numbers in words and the global {{variables}} and @if conditions of a brief
 *   answer.c    the sentences composed from patterns: the one-sentence answer, the caveats
 *   document.c  the document: a template run over an analysis into blocks (text, tables,
 *               lists, charts), and the charts drawn
 *   markdown.c  the document as Markdown with PNG charts beside it
 *   csv.c       the analysis as one CSV file
 *   pdf.c       the document laid out as a PDF (the only file that includes hpdf.h)
 *   outfile.c   the output file: checked, written to a temporary, renamed over the old one
 *
 * The document (struct qb_doc) is the laid-out-but-not-yet-paginated brief that document.c
 * builds and the Markdown and PDF writers read. All text is UTF-8 and owned by the document.
 * Functions that return char * return a g_malloc'd string the caller g_frees. */
#ifndef QB_BRIEF_INT_H
#define QB_BRIEF_INT_H

#include "output/brief.h"

#include <glib.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct qb_analysis;
struct qb_an_config;
struct qb_an_plan;
struct qb_an_slice;
struct qb_an_cliff;
struct qb_compare;

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

/* ---- the template language (template.c) ------------------------------------------------- */

enum dir {
    D_TITLE,
    D_LEAD,
    D_H1,
    D_H2,
    D_P,
    D_NOTE,
    D_CODE,
    D_STAT,
    D_TABLE,
    D_CHART,
    D_LIST,
    D_IF,
    D_ELSE,
    D_ENDIF,
    D_EACH,
    D_ENDEACH,
    D_PAGE,
    D_FOOTER,
    D_DEFINE,
};

/* @if conditions, in the order of their names in template.c; the per-slice ones hold only
 * inside @each slice */
enum cond {
    C_HAS_CLIFFS,
    C_HAS_HIDDEN_CLIFF,
    C_HAS_LATENCY,
    C_HAS_MEMORY,
    C_HAS_CALIBRATION,
    C_HAS_WARNINGS,
    C_HAS_CAVEATS,
    C_HAS_QUESTION,
    C_HAS_UNDECIDED,
    C_HAS_PERPLEXITY,
    C_HAS_MISSING,
    C_ROUTED,
    C_HAS_SPEEDUP,
    C_ON_DEVICE,            /* latency and memory were measured on a device, not the CPU */
    C_HAS_BEHAVIOUR,        /* a config was passed over because it changes behaviour */
    C_HAS_UNSTABLE,         /* a slice's ladder rises beyond its intervals */
    C_COMPARED,             /* a brief against another run (--against) */
    C_DECISION_CHANGED,     /* ... and some slice's recommendation changed */
    C_HAS_COMPARE_WARNINGS, /* ... and some slice could not be paired or matched */
    /* the store holds a sensitivity scan of the model (brief_sens.c) */
    C_HAS_SENSITIVITY,
    N_GLOBAL_CONDS,
    C_SLICE_HAS_CLIFF = N_GLOBAL_CONDS,
    C_SLICE_IS_PERPLEXITY,
    C_SLICE_UNDECIDED,
    C_SLICE_HAS_BEHAVIOUR,
};

/* generated tables (@table NAME), their column count, and the columns right-aligned */
enum {
    T_RECOMMENDATION,
    T_SLICES,
    T_ACCURACY,
    T_SLICE_CONFIGS,
    T_CONFIGS,
    T_LATENCY,
    T_MEMORY,
    T_DEPLOYMENT,
    T_DIVERGENCE,
    T_COMPARE,
    T_COMPARE_RECS,
    T_COMPARE_COST,
    N_TABLES
};
struct brief_table {
    const char *name;
    int n_cols;
    const char *align; /* 'l' or 'r' per column */
};
extern const struct brief_table brief_tables[N_TABLES];

enum {
    L_CLIFFS,
    L_CAVEATS,
    L_WARNINGS,
    L_BEHAVIOUR,
    L_EXAMPLES,
    L_COMPARE_WARNINGS,
    L_SENSITIVITY,
    N_LISTS
}; /* @list NAME */

/* One directive of a template. */
struct tline {
    enum dir d;
    int line;
    int match;  /* @if: its @else or @endif; @else: its @endif; @each: its @endeach */
    int negate; /* @if !cond */
    int arg;    /* condition, table, list or chart kind index */
    char *text; /* text; @stat "value | label | note"; @define body */
    char *name; /* @define name */
    char *cols; /* @table cols= */
    char *title, *subtitle, *slice; /* @chart */
    double width, height;
};

struct qb_template {
    char *file;
    struct tline *l;
    int64_t n, cap;
};

/* @define name of t, or NULL. */
const struct tline *brief_find_define(const struct qb_template *t, const char *name);

/* Item variables ({{slice}}, {{config}} ...): up to 32 names (borrowed, usually literals) with
 * owned values. */
struct scope {
    const char *k[32];
    char *v[32];
    int n;
};
void brief_scope_set(struct scope *s, const char *k, char *v /* owned */);
void brief_scope_clear(struct scope *s);

/* Rendering one template over one analysis into one document. */
struct brief_ctx {
    const struct qb_analysis *a;
    const struct qb_template *t;
    GHashTable *vars;    /* global name -> value */
    struct scope *local; /* item variables, or NULL */
    int64_t each_slice;  /* inside @each: the slice, else -1 */
    int conds[N_GLOBAL_CONDS];
    char **caveats;
    int64_t n_caveats;
    struct qb_doc *doc;
    double text_width_pt;         /* the page's text width: a chart's default width */
    const struct qb_compare *cmp; /* --against: the run compared with; NULL otherwise */
};

/* s with every {{name}} replaced: an item variable of c->local, a global variable, or a
 * @define expanded in turn (line: for messages). QB_EFORMAT for a name with no value here. */
int brief_expand(struct brief_ctx *c, const char *s, int line, char **out);
/* @define name expanded with local as the item variables; "" when the template has no such
 * define. */
int brief_pattern(struct brief_ctx *c, const char *name, struct scope *local, char **out);

/* ---- numbers in words (vars.c), shared/BRIEF.md's formats ---------------------------------- */

#define NA "–" /* a value that is not there */

char *brief_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
char *brief_pts(double frac);     /* fraction -> points, one decimal, no "-0.0" */
char *brief_spts(double frac);    /* signed: "+1.2", "-3.1", "0.0" */
char *brief_times(double x);      /* "2.1×", two significant digits */
char *brief_percent(double frac); /* "12%", "4.5%" */
char *brief_bytes(double b);      /* "1.2 GiB" */
char *brief_ms(double v);         /* "123", "12.3", "1.23" */
char *brief_i64(int64_t v);
char *brief_pvalue(double p); /* "<0.001", "0.004", "0.12" */

/* ---- the values a brief states (vars.c, answer.c) ------------------------------------------ */

int brief_has_latency(const struct qb_analysis *a);
/* 1 when the run measured latency and memory on a device other than the CPU */
int brief_on_device(const struct qb_analysis *a);
int brief_has_memory(const struct qb_analysis *a);
/* The deployment the brief recommends: routed, or the single config when routing would hold
 * more memory. */
const struct qb_an_plan *brief_chosen_plan(const struct qb_analysis *a);
/* A plan's blended p50 time per output token (ms) and its ratio to the baseline's. */
void brief_plan_tpot(const struct qb_analysis *a, const struct qb_an_plan *pl, double *tpot,
                     double *ratio);
/* Sets every global {{variable}} and @if condition of c (date: the brief's date), the caveats
 * and the answer included. */
int brief_make_vars(struct brief_ctx *c, const struct qb_brief_opts *o, const char *date);
/* The item variables of slice si ({{slice}}, {{n}}, {{rec}}, {{delta}} ...) / of a cliff. */
void brief_slice_scope(struct brief_ctx *c, int64_t si, struct scope *sc);
void brief_cliff_scope(const struct qb_analysis *a, const struct qb_an_cliff *cl, struct scope *sc);
/* The one-sentence answer (answer_* patterns) / the caveats into c->caveats. */
int brief_make_answer(struct brief_ctx *c, char **out);
int brief_make_caveats(struct brief_ctx *c);
/* The sentences of @list sensitivity (sens_* patterns): the units that matter, how the damages
 * add, the mixed candidates (brief_sens.c). */
int brief_sens_list(struct brief_ctx *c, GPtrArray *v);

/* ---- changed answers (flips.c) ------------------------------------------------------------ */

/* The flips cell of slice s at config ci (flips_cell; NA for the baseline and perplexity). */
int brief_flips_cell(struct brief_ctx *c, const struct qb_an_slice *s, int64_t ci, char **out);
/* Where s's ladder breaks (breaks_at, breaks_at_ppl), or breaks_none. */
int brief_breaks_at(struct brief_ctx *c, const struct qb_an_slice *s, char **out);
/* Appends to v (g_free'd strings): one `behaviour` line per slice with a passed-over config;
 * inside @each slice, that slice's example items; one caveat_unstable per unstable slice. */
int brief_list_behaviour(struct brief_ctx *c, GPtrArray *v);
int brief_list_examples(struct brief_ctx *c, GPtrArray *v);
int brief_unstable_caveats(struct brief_ctx *c, GPtrArray *v);

/* ---- one run against another (compare.c) -------------------------------------------------- */

/* qb_brief_write with o->against: both runs analysed, compared, rendered (PDF or Markdown). */
int brief_write_against(const struct qb_brief_opts *o);
/* The comparison's {{variables}} and conditions (before_run, compare_answer, ...). */
int brief_compare_vars(struct brief_ctx *c, const struct qb_brief_opts *o, const char *date);
/* The rows of @table compare, compare_recs, compare_cost; the compare_warnings list. */
int brief_table_compare(struct brief_ctx *c, GPtrArray *cells);
int brief_table_compare_recs(struct brief_ctx *c, GPtrArray *cells);
int brief_table_compare_cost(struct brief_ctx *c, GPtrArray *cells);
int brief_list_compare_warnings(struct brief_ctx *c, GPtrArray *v);
/* qb_brief_write with o->runs: the candidates brief (candidates.c). */
int brief_write_candidates(const struct qb_brief_opts *o);
/* The runs of a plan of several models, when the store's newest run is one: the runs of the
 * same plan file on the same suite with distinct models, oldest first, as "R1,R2,..."
 * (g_malloc'd) into *runs; NULL when there are fewer than two. */
int brief_plan_runs(const char *db, char **runs);
/* "CPU (N cores, ISA)" of a run's machine JSON, else its host (vars.c) */
char *brief_machine_text(const char *json, const char *host);

/* ---- the document (document.c) --------------------------------------------------------------- */

/* Runs t over a into doc (text_width_pt: the page's text width, the charts' default width);
 * QB_EINVAL when the run has no baseline. */
int brief_build_doc(const struct qb_analysis *a, const struct qb_template *t,
                    const struct qb_brief_opts *o, const char *date, double text_width_pt,
                    struct qb_doc *doc);
/* Draws every chart of doc at dpi: PNG bytes, or raw RGB pixels when raw (for the PDF). */
int brief_draw_charts(const struct qb_analysis *a, struct qb_doc *doc, double dpi, int raw);
void brief_doc_free(struct qb_doc *d);

/* ---- the output file (outfile.c) ----------------------------------------------------------- */

/* A brief's output: stdout ("-") or a regular file replaced atomically (outfile.c says how).
 * Open, write, commit, close; close without a commit leaves the old file as it was. */
struct brief_out {
    const char *shown; /* the path as the user gave it (borrowed): every message names it */
    char *path;        /* the file replaced, symlinks followed; NULL for stdout */
    char *tmp;         /* the temporary's name while it has one, else NULL */
    int fd;            /* -1 when closed */
    int anon;          /* fd is an unnamed O_TMPFILE, linked only at the commit */
    int slot;          /* tmp's entry among the temporaries removed on a signal, or -1 */
    int committed;
};
#define BRIEF_OUT_INIT                                                                             \
    {                                                                                              \
        NULL, NULL, NULL, -1, 0, -1, 0                                                             \
    }

/* Checks path (a regular file of this user, or none; symlinks followed) and opens a temporary
 * beside the file it names. QB_EIO naming path when it may not be replaced. */
int brief_out_open(struct brief_out *o, const char *path);
/* Appends n bytes; QB_EIO "cannot write 'OUT': No space left on device" and the like. */
int brief_out_write(struct brief_out *o, const void *p, size_t n);
/* Syncs the temporary and renames it over the file (no-op for stdout or when done). */
int brief_out_commit(struct brief_out *o);
/* Removes the temporary unless committed, frees o; no-op on a closed or BRIEF_OUT_INIT o. */
void brief_out_close(struct brief_out *o);
/* Writes n bytes to the new file path (O_EXCL), through the same fault hook; for the charts
 * of a Markdown brief, which go to a temporary folder first. */
int brief_write_new_file(const char *path, const void *p, size_t n);
/* A temporary (a file, or a folder emptied first) for the signal handlers of
 * qb_brief_catch_signals to remove; returns its slot (-1 when none is free), which
 * brief_temp_forget releases once the temporary is gone or renamed. */
int brief_temp_register(const char *path, int is_dir);
void brief_temp_forget(int slot);
/* The fault hook's answer for one step (qb_brief_set_io_fault): 0, or the errno it fails
 * with (also left in errno). */
int brief_io_step(enum qb_brief_io step);

/* ---- the writers ---------------------------------------------------------------------------- */

/* Markdown: the .md to out and its charts in STEM_files/ beside out->path (none for stdout),
 * committed together (markdown.c). */
int brief_write_md(const struct qb_doc *doc, struct brief_out *out);
/* Every table of the analysis as CSV rows to f (csv.c); -1 when f reports an error. */
int brief_write_csv(const struct qb_analysis *a, FILE *f);
/* Writes doc as a PDF to out (the caller commits it). QB_EIO when the fonts are missing or
 * the file cannot be written. */
int qb_pdf_write(const struct qb_doc *doc, enum qb_brief_paper paper, struct brief_out *out);

#endif
