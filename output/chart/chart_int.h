/* chart_int: what the files of the chart module share -- the drawing context, the palette, and
 * the helpers every chart is built from (text, numbers, axes, legends, page furniture).
 * Internal to the chart module: include only from output/chart*.c. Only this module includes
 * cairo.h.
 *
 * The files: chart.c (entry points: validate, make the surface, dispatch, PNG or raw pixels,
 * and the helpers that read the analysis), chart_style.c (colours, fonts, text fitting and
 * wrapping, number formatting), chart_axis.c (axes and ticks, headers, notes, legends, config
 * labels), and one file per chart: chart_heatmap.c, chart_ladder.c, chart_acc_memory.c,
 * chart_bars.c (latency, ttft, kl_flips).
 *
 * Units: every length and coordinate is in points (1/72 inch) at print size, with y growing
 * downwards; render() applies the raster scale once. Font sizes are in points too. Colours
 * are struct rgb, each channel 0..1. A chart function takes the struct chart that render()
 * made (its plot area x0..x1, y0..y1 already inside the header), draws into c->cr, narrows
 * the plot area as it places notes and legends at the bottom, and sets c->oom when a malloc
 * fails (it returns 0 then: the caller turns oom into QB_ENOMEM). A chart with nothing to show
 * draws chart_missing() in its plot area instead. */
#ifndef QB_CHART_INT_H
#define QB_CHART_INT_H

#include "output/chart/chart.h"

#include "analysis/analyze.h"

#include <cairo.h>

#include <stddef.h>
#include <stdint.h>

#define T_TITLE 11.0 /* title, bold */
#define T_SUB 8.5    /* subtitle, axis titles, slice and config names */
#define T_SMALL 8.0  /* ticks, cell numbers, notes: the smallest text anywhere */
#define MARGIN 10.0  /* around the page */
#define NAME_B 160   /* bytes kept of any name (then an ellipsis) */
#define LINE_B 512   /* bytes of one line of text (chart_wrap's lines) */

/* ---- colours --------------------------------------------------------------------------------
 * Configs use Okabe & Ito's palette in ladder order (chart_config_colour), the baseline grey;
 * deltas a diverging red-white-blue map (chart_diverging); slices in the ladder chart Paul
 * Tol's "vibrant" scheme (chart_ladder.c), so a slice never looks like a config. */

struct rgb {
    double r, g, b; /* 0..1 */
};
#define HEX(h)                                                                                     \
    {                                                                                              \
        ((h) >> 16 & 255) / 255.0, ((h) >> 8 & 255) / 255.0, ((h)&255) / 255.0                     \
    }

static const struct rgb INK = HEX(0x1A1A1A);       /* text, black marks */
static const struct rgb DIM = HEX(0x555555);       /* secondary text: axis titles, notes */
static const struct rgb FAINT = HEX(0x8A8A8A);     /* sample sizes, leader lines */
static const struct rgb RULE = HEX(0xB0B0B0);      /* axis lines, separators */
static const struct rgb GRID = HEX(0xE4E4E4);      /* grid lines */
static const struct rgb BASE_GREY = HEX(0x8C8C8C); /* the baseline config */
static const struct rgb BASE_FILL = HEX(0xE8E8E8); /* the baseline's heatmap column */
static const struct rgb NA_FILL = HEX(0xF3F3F3);   /* not measured */
static const struct rgb WHITE = HEX(0xFFFFFF);     /* paper, halos */
static const struct rgb WEAK = HEX(0xA8A8A8);      /* series that are not the finding */

/* Colours cairo draws with from now on (alpha 0..1). */
static inline void set_rgb(cairo_t *cr, struct rgb c)
{
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static inline void set_rgba(cairo_t *cr, struct rgb c, double alpha)
{
    cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

/* INK or WHITE, whichever reads on fill (WCAG relative luminance below 0.18: white). */
struct rgb chart_text_on(struct rgb fill);
/* t in [-1, 1] (clamped): -1 dark red (loss), 0 near white, +1 dark blue (gain); NA_FILL when
 * t is not finite. ColorBrewer RdBu, 11 classes, interpolated. */
struct rgb chart_diverging(double t);
/* Config i's colour, fixed by its ladder position and the same in every chart; BASE_GREY for
 * the baseline. */
struct rgb chart_config_colour(const struct qb_analysis *a, int64_t i);
/* c darkened until it reads as text or a thin mark on white (yellow, sky blue). */
struct rgb chart_ink_of(struct rgb c);

/* ---- text -----------------------------------------------------------------------------------
 * Every name drawn comes from a suite or plan file and is hostile: it goes through
 * chart_clean (or chart_fit / chart_wrap, which clean) before cairo sees it, since cairo puts
 * the whole context in an error state on invalid UTF-8. */

enum { HL, HC, HR };      /* horizontal anchor: left, centre, right */
enum { VT, VM, VB, VBL }; /* vertical anchor: cap top, middle of caps, descender bottom, baseline */

/* Selects "DejaVu Sans" at size points, bold or not / italic. */
void chart_font(cairo_t *cr, double size, int bold);
void chart_font_italic(cairo_t *cr, double size);
/* Advance width of s in points at the current font; s must be valid UTF-8. */
double chart_text_w(cairo_t *cr, const char *s);
/* Draws s at (x, y) anchored by ha (HL, HC, HR) and va (VT, VM, VB, VBL) in the current colour
 * and font; _halo adds a 2.6 pt white outline (readable over grid and data lines) and draws in
 * col; _rot rotates by deg (negative: counter-clockwise) about (x, y). */
void chart_text(cairo_t *cr, double x, double y, const char *s, int ha, int va);
void chart_text_halo(cairo_t *cr, double x, double y, const char *s, int ha, int va,
                     struct rgb col);
/* A reference line from (x0, y0) to (x1, y1), 0.8 pt wide, dashed on/off points, in col;
 * the dash and colour do not outlive the call. */
void chart_dashed(cairo_t *cr, double x0, double y0, double x1, double y1, double on, double off,
                  struct rgb col);
void chart_text_rot(cairo_t *cr, double x, double y, double deg, const char *s, int ha, int va);
/* Copies s (NULL: "?") into out (n bytes) as valid UTF-8 without control characters, leaving
 * room for an ellipsis: invalid bytes become '?', controls a space. */
void chart_clean(const char *s, char *out, size_t n);
/* s cleaned into buf (n bytes) and cut to maxw points with an ellipsis; returns buf. */
const char *chart_fit(cairo_t *cr, const char *s, double maxw, char *buf, size_t n);
/* Greedy word wrap of s into at most max_lines lines of maxw points at the current font; the
 * last line is cut with an ellipsis. Returns the number of lines. */
int chart_wrap(cairo_t *cr, const char *s, double maxw, int max_lines, char (*lines)[LINE_B]);

/* ---- numbers --------------------------------------------------------------------------------
 * Into b (n bytes): "−3.1" with a true minus sign, dec decimals; plus: "+0.4"; a value that
 * rounds to zero has no sign; "n/a" when not finite. _sig: about 2-3 significant digits (for
 * latency and KL labels). */
void chart_fmt_num(char *b, size_t n, double v, int dec, int plus);
void chart_fmt_sig(char *b, size_t n, double v);

/* ---- the drawing context -------------------------------------------------------------------- */

struct chart {
    cairo_t *cr;
    const struct qb_analysis *a;
    const struct qb_chart_opts *o;
    const struct qb_an_slice *sel; /* opts->slice; NULL = all slices / the overall row */
    double w, h;                   /* page, points */
    double x0, y0, x1, y1;         /* what header and notes leave for the plot */
    int oom;                       /* a helper's malloc failed */
};

/* One chart each (chart_heatmap.c, chart_ladder.c, chart_acc_memory.c, chart_bars.c); chart.h
 * says what each draws. 0, or c->oom set. */
int chart_heatmap(struct chart *c);
int chart_ladder(struct chart *c);
int chart_acc_memory(struct chart *c);
int chart_acc_tpot(struct chart *c);
int chart_latency(struct chart *c);
int chart_ttft(struct chart *c);
int chart_kl_flips(struct chart *c);
int chart_sensitivity(struct chart *c); /* chart_sensitivity.c */

/* ---- reading the analysis (chart.c) --------------------------------------------------------- */

/* Config i is the baseline. */
static inline int is_base(const struct qb_analysis *a, int64_t i)
{
    return i == a->baseline || a->configs[i].is_baseline;
}

/* Slice s's cell for config j; NULL when s (or its cells) is missing. */
static inline const struct qb_an_cell *cell_of(const struct qb_an_slice *s, int64_t j)
{
    return s && s->cells ? &s->cells[j] : NULL;
}

/* The baseline config's name ("baseline" when it has none). */
const char *chart_base_name(const struct chart *c);
/* "95% " + rest, at the analysis's confidence, into b (n bytes); returns b. */
const char *chart_conf_text(const struct chart *c, const char *rest, char *b, size_t n);
/* The row ACC_MEMORY and KL_FLIPS plot: the chosen slice, else the overall row, else the only
 * slice; NULL when there is none. */
const struct qb_an_slice *chart_main_row(const struct chart *c);

/* ---- axes (chart_axis.c) ---------------------------------------------------------------------
 * A value axis maps data [lo, hi] (log10-scaled when log) onto page points [p0, p1]: the caller
 * sets p0 and p1 once the layout is known (a vertical axis runs p0 = bottom to p1 = top). */

struct axis {
    double lo, hi; /* data range */
    int log;
    double p0, p1; /* page coordinates of lo and hi, points */
    double step;   /* linear tick step */
    double t[32];  /* tick values */
    int nt;
};

/* Page coordinate of data value v. */
double chart_amap(const struct axis *ax, double v);
/* Linear axis over [lo, hi] widened to whole ticks, about target ticks (1-2-5 steps). */
void chart_axis_linear(struct axis *ax, double lo, double hi, int target);
/* Log axis over [lo, hi] (both > 0), widened to whole decades unless tight; 1-2-5 ticks when
 * it spans few decades. */
void chart_axis_log(struct axis *ax, double lo, double hi, int tight);
/* Width of the widest tick label (T_SMALL), to reserve left of a vertical axis. */
double chart_tick_labels_w(cairo_t *cr, const struct axis *ax);
/* Vertical value axis at x = xl with grid lines to xr; tick labels right-aligned left of xl. */
void chart_yaxis(cairo_t *cr, const struct axis *ax, double xl, double xr);
/* Horizontal value axis: grid lines from yt to yb, tick labels under yb (crowded ones
 * skipped), a rule along yb. */
void chart_xaxis(cairo_t *cr, const struct axis *ax, double yt, double yb);

/* ---- page furniture (chart_axis.c) ---------------------------------------------------------- */

/* Title (T_TITLE bold) and subtitle (T_SUB), two lines each at most, from the top margin; sets
 * the plot area c->x0..x1, y0..y1 to what is left inside the margins. */
void chart_header(struct chart *c);
/* A grey note (T_SMALL, wrapped to 2 lines) at the bottom of the plot area; raises c->y1. */
void chart_note(struct chart *c, const char *s);
/* Fills x0..x1, y0..y1 with NA_FILL and says msg in italics in its middle. */
void chart_missing(cairo_t *cr, double x0, double y0, double x1, double y1, const char *msg);

/* Legend entries, laid out left to right and wrapped, at the bottom of the plot area (raising
 * c->y1): a 12 pt symbol in col, then the text in DIM. */
enum { SYM_NONE, SYM_BOLDBOX, SYM_SWATCH, SYM_LINE, SYM_DASH, SYM_DOT, SYM_HOLLOW, SYM_ERRBAR };
struct legend_item {
    int sym;
    struct rgb col;
    const char *text;
};
void chart_legend(struct chart *c, const struct legend_item *it, int n);

/* Width of the widest config name (at the current font), each capped at cap points. */
double chart_config_names_w(struct chart *c, double cap);
/* Config names under a category axis with centres xc[] (step points apart) at y, rotated by
 * 40 degrees when they do not fit side by side. Returns the height used in points; only
 * measures when draw == 0. */
double chart_config_xlabels(struct chart *c, const double *xc, double step, double y, int draw);
/* Moves labels at y[order[0..n)] (sorted top to bottom) apart to at least gap points, within
 * lo..hi where they fit. */
void chart_spread_labels(double *y, const int *order, int n, double gap, double lo, double hi);

#endif
