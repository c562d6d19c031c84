/* chart: the brief's charts (output/chart.h), drawn with Cairo. Everything is laid out in
 * points at print size and the raster scale is applied once, so the sizes written here are the
 * printed sizes: no text is smaller than T_SMALL (8 pt).
 *
 * Colours: configs use the Okabe & Ito (2008) "Color Universal Design" palette in ladder order,
 * the baseline grey; deltas use ColorBrewer RdBu (Brewer 2003), red = loss, centred on zero;
 * slices (ladder chart lines) use Paul Tol's "vibrant" scheme (SRON/EPS/TN/09-002), so a slice
 * never looks like a config. Every name drawn comes from a suite or plan file and is hostile:
 * it is cleaned to valid UTF-8 without control characters before Cairo sees it (Cairo puts the
 * whole context in an error state on invalid UTF-8). */
#include "output/chart.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"

#include <cairo.h>

#include <dlfcn.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FACE "DejaVu Sans"
#define T_TITLE 11.0 /* title, bold */
#define T_SUB 8.5    /* subtitle, axis titles, slice and config names */
#define T_SMALL 8.0  /* ticks, cell numbers, notes: the smallest text anywhere */
#define MARGIN 10.0
#define NAME_B 160   /* bytes kept of any name (then an ellipsis) */
#define MAX_PX 16384 /* per side; Cairo's limit is 32767 */

struct rgb {
    double r, g, b;
};
#define HEX(h)                                                                                     \
    {                                                                                              \
        ((h) >> 16 & 255) / 255.0, ((h) >> 8 & 255) / 255.0, ((h)&255) / 255.0                     \
    }

static const struct rgb INK = HEX(0x1A1A1A), DIM = HEX(0x555555), FAINT = HEX(0x8A8A8A),
                        RULE = HEX(0xB0B0B0), GRID = HEX(0xE4E4E4), BASE_GREY = HEX(0x8C8C8C),
                        BASE_FILL = HEX(0xE8E8E8), NA_FILL = HEX(0xF3F3F3), WHITE = HEX(0xFFFFFF),
                        WEAK = HEX(0xA8A8A8);

/* Okabe-Ito without its black first: orange, sky blue, bluish green, blue, vermillion,
 * reddish purple, black, yellow (last: weakest on white paper). */
static const struct rgb okabe_ito[] = {HEX(0xE69F00), HEX(0x56B4E9), HEX(0x009E73), HEX(0x0072B2),
                                       HEX(0xD55E00), HEX(0xCC79A7), HEX(0x000000), HEX(0xF0E442)};
/* Tol vibrant: red, blue, magenta, teal, orange, cyan */
static const struct rgb tol_vibrant[] = {HEX(0xCC3311), HEX(0x0077BB), HEX(0xEE3377),
                                         HEX(0x009988), HEX(0xEE7733), HEX(0x33BBEE)};
/* ColorBrewer RdBu, 11 classes, from -1 (loss, dark red) to +1 (gain, dark blue) */
static const struct rgb rdbu[] = {HEX(0x67001F), HEX(0xB2182B), HEX(0xD6604D), HEX(0xF4A582),
                                  HEX(0xFDDBC7), HEX(0xF7F7F7), HEX(0xD1E5F0), HEX(0x92C5DE),
                                  HEX(0x4393C3), HEX(0x2166AC), HEX(0x053061)};

static const char *const kind_names[QB_CHART_N_KINDS] = {
    [QB_CHART_HEATMAP] = "heatmap",
    [QB_CHART_LADDER] = "ladder",
    [QB_CHART_ACC_MEMORY] = "acc_memory",
    [QB_CHART_LATENCY] = "latency",
    [QB_CHART_TTFT] = "ttft",
    [QB_CHART_KL_FLIPS] = "kl_flips",
};

int qb_chart_kind_parse(const char *name, enum qb_chart_kind *out)
{
    for (int k = 0; k < QB_CHART_N_KINDS; k++)
        if (name && strcmp(name, kind_names[k]) == 0) {
            *out = (enum qb_chart_kind)k;
            return 0;
        }
    return qb_err(
        QB_EINVAL,
        "unknown chart '%s' (known: heatmap, ladder, acc_memory, latency, ttft, kl_flips)",
        name ? name : "(null)");
}

const char *qb_chart_kind_name(enum qb_chart_kind k)
{
    return (int)k >= 0 && k < QB_CHART_N_KINDS ? kind_names[k] : "unknown";
}

/* ---- drawing context ---------------------------------------------------------------------- */

struct chart {
    cairo_t *cr;
    const struct qb_analysis *a;
    const struct qb_chart_opts *o;
    const struct qb_an_slice *sel; /* opts->slice; NULL = all slices / the overall row */
    double w, h;                   /* page, points */
    double x0, y0, x1, y1;         /* what header and notes leave for the plot */
    int oom;                       /* a helper's malloc failed */
};

static void set_rgb(cairo_t *cr, struct rgb c)
{
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static void set_rgba(cairo_t *cr, struct rgb c, double alpha)
{
    cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

static struct rgb mix(struct rgb a, struct rgb b, double t)
{
    struct rgb m = {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
    return m;
}

static double lin(double c)
{
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

/* WCAG relative luminance; text on a fill darker than 0.18 is more legible in white. */
static double luminance(struct rgb c)
{
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

static struct rgb text_on(struct rgb fill)
{
    return luminance(fill) < 0.18 ? WHITE : INK;
}

/* t in [-1, 1] (clamped): -1 dark red, 0 near white, +1 dark blue */
static struct rgb diverging(double t)
{
    if (!isfinite(t))
        return NA_FILL;
    t = t < -1 ? -1 : t > 1 ? 1 : t;
    double u = (t + 1) * 5; /* 0..10 over the 11 stops */
    int i = (int)floor(u);
    if (i >= 10)
        return rdbu[10];
    return mix(rdbu[i], rdbu[i + 1], u - i);
}

static int is_base(const struct qb_analysis *a, int64_t i)
{
    return i == a->baseline || a->configs[i].is_baseline;
}

/* One colour per config, fixed by ladder position, the same in every chart. */
static struct rgb config_colour(const struct qb_analysis *a, int64_t i)
{
    int64_t k = 0;
    if (is_base(a, i))
        return BASE_GREY;
    for (int64_t j = 0; j < i; j++)
        k += !is_base(a, j);
    return okabe_ito[k % (int64_t)(sizeof okabe_ito / sizeof okabe_ito[0])];
}

/* A darker shade of a config's colour for text and thin marks (yellow and sky blue are too
 * light for text on white). */
static struct rgb ink_of(struct rgb c)
{
    while (luminance(c) > 0.25)
        c = mix(c, INK, 0.25);
    return c;
}

/* ---- text ---------------------------------------------------------------------------------- */

enum { HL, HC, HR };      /* horizontal anchor */
enum { VT, VM, VB, VBL }; /* vertical anchor: cap top, middle of caps, descender bottom, baseline */

static void font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FACE, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static void font_italic(cairo_t *cr, double size)
{
    cairo_select_font_face(cr, FACE, CAIRO_FONT_SLANT_ITALIC, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double font_size(cairo_t *cr)
{
    cairo_matrix_t m;
    cairo_get_font_matrix(cr, &m);
    return m.yy;
}

/* s must be valid UTF-8 (every string drawn is a literal, a number, or went through clean) */
static double text_w(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* DejaVu Sans: cap height 0.73 em, descender 0.24 em */
static void text_at(cairo_t *cr, double x, double y, const char *s, int ha, int va)
{
    double size = font_size(cr), w = text_w(cr, s);
    double by = va == VT   ? y + 0.73 * size
                : va == VM ? y + 0.365 * size
                : va == VB ? y - 0.24 * size
                           : y;
    double bx = ha == HL ? x : ha == HC ? x - w / 2 : x - w;
    cairo_move_to(cr, bx, by);
    cairo_show_text(cr, s);
}

/* Text with a white outline, readable over grid and data lines. */
static void text_halo(cairo_t *cr, double x, double y, const char *s, int ha, int va,
                      struct rgb col)
{
    double size = font_size(cr), w = text_w(cr, s);
    double by = va == VT   ? y + 0.73 * size
                : va == VM ? y + 0.365 * size
                : va == VB ? y - 0.24 * size
                           : y;
    double bx = ha == HL ? x : ha == HC ? x - w / 2 : x - w;
    cairo_save(cr);
    cairo_new_path(cr);
    cairo_move_to(cr, bx, by);
    cairo_text_path(cr, s);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_width(cr, 2.6);
    set_rgb(cr, WHITE);
    cairo_stroke_preserve(cr);
    set_rgb(cr, col);
    cairo_fill(cr);
    cairo_restore(cr);
}

/* Text rotated by deg (counter-clockwise negative, as Cairo), anchored like text_at in its own
 * frame. */
static void text_rot(cairo_t *cr, double x, double y, double deg, const char *s, int ha, int va)
{
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, deg * M_PI / 180);
    text_at(cr, 0, 0, s, ha, va);
    cairo_restore(cr);
}

/* Copies s into out (n bytes) as valid UTF-8 without control characters, leaving room for an
 * ellipsis: invalid bytes become '?', controls a space. */
static void clean(const char *s, char *out, size_t n)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "?");
    size_t o = 0;

    while (*p) {
        unsigned c = *p;
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        int ok = len > 0 && !(c >= 0xC0 && c < 0xC2) && c <= 0xF4;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[k] & 0xC0) == 0x80; /* also stops at the terminating NUL */
        if (ok && len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
            ok = 0; /* overlong, surrogate */
        if (ok && len == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)))
            ok = 0;
        if (!ok)
            len = 1;
        if (o + len + 4 > n)
            break;
        if (!ok)
            out[o++] = '?';
        else if (len == 1 && (c < 0x20 || c == 0x7F))
            out[o++] = ' ';
        else {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    out[o] = 0;
}

/* s cleaned into buf and cut to maxw points with an ellipsis; returns buf. */
static const char *fit(cairo_t *cr, const char *s, double maxw, char *buf, size_t n)
{
    size_t len;

    clean(s, buf, n);
    if (text_w(cr, buf) <= maxw)
        return buf;
    len = strlen(buf);
    while (len > 0) {
        do
            len--;
        while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80);
        while (len > 0 && buf[len - 1] == ' ')
            len--;
        memcpy(buf + len, "\xE2\x80\xA6", 4); /* U+2026 and the NUL */
        if (text_w(cr, buf) <= maxw)
            return buf;
    }
    return buf;
}

#define LINE_B 512

/* Greedy word wrap of s into at most max_lines lines of maxw points; the last line is cut
 * with an ellipsis. Returns the number of lines. */
static int wrap(cairo_t *cr, const char *s, double maxw, int max_lines, char (*lines)[LINE_B])
{
    char buf[2048], tmp[LINE_B];
    const char *p = buf;
    int nl = 0;

    clean(s, buf, sizeof buf);
    while (nl < max_lines) {
        const char *end = NULL, *q;
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (nl == max_lines - 1) {
            fit(cr, p, maxw, lines[nl++], LINE_B);
            break;
        }
        q = p;
        for (;;) { /* extend by one word while it fits */
            const char *r = q;
            while (*r == ' ')
                r++;
            while (*r && *r != ' ')
                r++;
            if ((size_t)(r - p) >= LINE_B - 4)
                break;
            memcpy(tmp, p, r - p);
            tmp[r - p] = 0;
            if (text_w(cr, tmp) > maxw && end)
                break;
            end = r;
            if (text_w(cr, tmp) > maxw || !*r)
                break;
            q = r;
        }
        if (!end) { /* a word longer than a line buffer */
            fit(cr, p, maxw, lines[nl++], LINE_B);
            break;
        }
        memcpy(tmp, p, end - p);
        tmp[end - p] = 0;
        fit(cr, tmp, maxw, lines[nl++], LINE_B);
        p = end;
    }
    return nl;
}

/* "−3.1" with a true minus sign; plus: "+0.4"; a value that rounds to zero has no sign */
static void fmt_num(char *b, size_t n, double v, int dec, int plus)
{
    char t[64];
    int zero = 1;

    if (!isfinite(v)) {
        snprintf(b, n, "n/a");
        return;
    }
    snprintf(t, sizeof t, "%.*f", dec, fabs(v));
    for (const char *p = t; *p; p++)
        if (*p >= '1' && *p <= '9')
            zero = 0;
    snprintf(b, n, "%s%s", zero ? "" : v < 0 ? "\xE2\x88\x92" : plus ? "+" : "", t);
}

/* Value with about 2-3 significant digits, for latency and KL labels */
static void fmt_sig(char *b, size_t n, double v)
{
    double a = fabs(v);
    int dec = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a > 0 ? (int)ceil(-log10(a)) + 1 : 1;
    if (dec > 6)
        dec = 6;
    fmt_num(b, n, v, dec, 0);
}

/* ---- axes ---------------------------------------------------------------------------------- */

struct axis {
    double lo, hi; /* data range */
    int log;
    double p0, p1; /* page coordinates of lo and hi */
    double step;   /* linear tick step */
    double t[32];
    int nt;
};

static double amap(const struct axis *ax, double v)
{
    double t;
    if (ax->log)
        t = (log10(v) - log10(ax->lo)) / (log10(ax->hi) - log10(ax->lo));
    else
        t = (v - ax->lo) / (ax->hi - ax->lo);
    return ax->p0 + t * (ax->p1 - ax->p0);
}

static double nice_step(double range, int target)
{
    double raw = range / (target > 0 ? target : 1), mag, f;
    if (!(raw > 0) || !isfinite(raw))
        return 1;
    mag = pow(10, floor(log10(raw)));
    f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* Linear axis over [lo, hi] widened to whole ticks, about target ticks. */
static void axis_linear(struct axis *ax, double lo, double hi, int target)
{
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0;
        hi = 1;
    }
    if (hi - lo < 1e-12) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1;
        lo -= d;
        hi += d;
    }
    ax->log = 0;
    ax->step = nice_step(hi - lo, target);
    ax->lo = floor(lo / ax->step + 1e-9) * ax->step;
    ax->hi = ceil(hi / ax->step - 1e-9) * ax->step;
    ax->nt = 0;
    for (double v = ax->lo; v <= ax->hi + ax->step * 1e-6 && ax->nt < 32; v += ax->step)
        ax->t[ax->nt++] = fabs(v) < ax->step * 1e-9 ? 0 : v;
}

/* Log axis over [lo, hi] (both > 0), widened to whole decades unless tight; 1-2-5 ticks
 * when it spans few decades. */
static void axis_log(struct axis *ax, double lo, double hi, int tight)
{
    int d0, d1;
    if (!(lo > 0) || !isfinite(lo))
        lo = 1;
    if (!(hi > lo) || !isfinite(hi))
        hi = lo * 10;
    d0 = (int)floor(log10(lo) + 1e-9);
    d1 = (int)ceil(log10(hi) - 1e-9);
    if (d1 <= d0)
        d1 = d0 + 1;
    ax->log = 1;
    ax->lo = tight ? lo : pow(10, d0);
    ax->hi = tight ? hi : pow(10, d1);
    ax->nt = 0;
    for (int d = d0 - 1; d <= d1 && ax->nt < 30; d++) {
        static const double m[] = {1, 2, 5};
        for (int k = 0; k < 3; k++) {
            double v = m[k] * pow(10, d);
            if (k > 0 && d1 - d0 > 2)
                break;
            if (v >= ax->lo * 0.9999 && v <= ax->hi * 1.0001)
                ax->t[ax->nt++] = v;
        }
    }
}

static void fmt_tick(const struct axis *ax, double v, char *b, size_t n)
{
    double s = ax->log ? v : ax->step;
    int dec = s > 0 ? (int)-floor(log10(s) + 1e-9) : 0;
    fmt_num(b, n, v, dec < 0 ? 0 : dec > 6 ? 6 : dec, 0);
}

static double tick_labels_w(cairo_t *cr, const struct axis *ax)
{
    char b[64];
    double w = 0;
    font(cr, T_SMALL, 0);
    for (int i = 0; i < ax->nt; i++) {
        fmt_tick(ax, ax->t[i], b, sizeof b);
        w = fmax(w, text_w(cr, b));
    }
    return w;
}

/* Vertical value axis at x = xl with grid lines to xr; ticks labelled left of xl. */
static void draw_yaxis(cairo_t *cr, const struct axis *ax, double xl, double xr)
{
    char b[64];
    font(cr, T_SMALL, 0);
    cairo_set_line_width(cr, 0.5);
    for (int i = 0; i < ax->nt; i++) {
        double y = amap(ax, ax->t[i]);
        set_rgb(cr, GRID);
        cairo_move_to(cr, xl, y);
        cairo_line_to(cr, xr, y);
        cairo_stroke(cr);
        set_rgb(cr, DIM);
        fmt_tick(ax, ax->t[i], b, sizeof b);
        text_at(cr, xl - 4, y, b, HR, VM);
    }
}

/* Horizontal value axis: grid lines from yt to yb, tick labels under yb. */
static void draw_xaxis(cairo_t *cr, const struct axis *ax, double yt, double yb)
{
    char b[64];
    double last_right = -1e9;
    font(cr, T_SMALL, 0);
    cairo_set_line_width(cr, 0.5);
    for (int i = 0; i < ax->nt; i++) {
        double x = amap(ax, ax->t[i]), w;
        set_rgb(cr, GRID);
        cairo_move_to(cr, x, yt);
        cairo_line_to(cr, x, yb);
        cairo_stroke(cr);
        fmt_tick(ax, ax->t[i], b, sizeof b);
        w = text_w(cr, b);
        if (x - w / 2 < last_right + 4) /* crowded: skip this label, keep the grid line */
            continue;
        set_rgb(cr, DIM);
        text_at(cr, x, yb + 3, b, HC, VT);
        last_right = x + w / 2;
    }
    set_rgb(cr, RULE);
    cairo_set_line_width(cr, 0.8);
    cairo_move_to(cr, ax->p0, yb);
    cairo_line_to(cr, ax->p1, yb);
    cairo_stroke(cr);
}

/* ---- page furniture ------------------------------------------------------------------------ */

static void draw_header(struct chart *c)
{
    char lines[2][LINE_B];
    double y = MARGIN, maxw = c->w - 2 * MARGIN;
    cairo_t *cr = c->cr;

    if (c->o->title && *c->o->title) {
        font(cr, T_TITLE, 1);
        set_rgb(cr, INK);
        int n = wrap(cr, c->o->title, maxw, 2, lines);
        for (int i = 0; i < n; i++, y += T_TITLE * 1.3)
            text_at(cr, MARGIN, y, lines[i], HL, VT);
        y += 1;
    }
    if (c->o->subtitle && *c->o->subtitle) {
        font(cr, T_SUB, 0);
        set_rgb(cr, DIM);
        int n = wrap(cr, c->o->subtitle, maxw, 2, lines);
        for (int i = 0; i < n; i++, y += T_SUB * 1.35)
            text_at(cr, MARGIN, y, lines[i], HL, VT);
    }
    c->y0 = y + 8;
    c->x0 = MARGIN;
    c->x1 = c->w - MARGIN;
    c->y1 = c->h - MARGIN;
}

/* A grey note under the plot (wrapped to 2 lines), taking its height from c->y1. */
static void draw_note(struct chart *c, const char *s)
{
    char lines[2][LINE_B];
    cairo_t *cr = c->cr;
    font(cr, T_SMALL, 0);
    int n = wrap(cr, s, c->x1 - c->x0, 2, lines);
    c->y1 -= n * T_SMALL * 1.3;
    set_rgb(cr, DIM);
    for (int i = 0; i < n; i++)
        text_at(cr, c->x0, c->y1 + i * T_SMALL * 1.3 + 2, lines[i], HL, VT);
    c->y1 -= 4;
}

/* An empty plot area that says why. */
static void draw_missing(cairo_t *cr, double x0, double y0, double x1, double y1, const char *msg)
{
    char b[LINE_B];
    if (x1 - x0 < 4 || y1 - y0 < 4)
        return;
    set_rgb(cr, NA_FILL);
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_fill(cr);
    font_italic(cr, T_SUB);
    set_rgb(cr, DIM);
    text_at(cr, (x0 + x1) / 2, (y0 + y1) / 2, fit(cr, msg, x1 - x0 - 8, b, sizeof b), HC, VM);
}

/* Legend entries laid out left to right, wrapped; drawn at the bottom (above what is there). */
enum { SYM_NONE, SYM_BOLDBOX, SYM_SWATCH, SYM_LINE, SYM_DASH, SYM_DOT, SYM_HOLLOW, SYM_ERRBAR };
struct legend_item {
    int sym;
    struct rgb col;
    const char *text;
};

static void draw_symbol(cairo_t *cr, int sym, struct rgb col, double x, double ym)
{
    cairo_save(cr);
    switch (sym) {
    case SYM_BOLDBOX:
        set_rgb(cr, WHITE);
        cairo_rectangle(cr, x + 1, ym - 4, 10, 8);
        cairo_fill(cr);
        set_rgb(cr, INK);
        cairo_set_line_width(cr, 1.6);
        cairo_rectangle(cr, x + 1, ym - 4, 10, 8);
        cairo_stroke(cr);
        break;
    case SYM_SWATCH:
        set_rgb(cr, col);
        cairo_rectangle(cr, x + 1, ym - 4, 10, 8);
        cairo_fill(cr);
        break;
    case SYM_LINE:
    case SYM_DASH:
        if (sym == SYM_DASH) {
            double d[] = {3, 2};
            cairo_set_dash(cr, d, 2, 0);
        }
        set_rgb(cr, col);
        cairo_set_line_width(cr, 1.2);
        cairo_move_to(cr, x, ym);
        cairo_line_to(cr, x + 12, ym);
        cairo_stroke(cr);
        break;
    case SYM_DOT:
    case SYM_HOLLOW:
        cairo_new_path(cr);
        cairo_arc(cr, x + 6, ym, 3, 0, 2 * M_PI);
        set_rgb(cr, sym == SYM_DOT ? col : WHITE);
        cairo_fill_preserve(cr);
        set_rgb(cr, sym == SYM_DOT ? INK : col);
        cairo_set_line_width(cr, sym == SYM_DOT ? 0.6 : 1.4);
        cairo_stroke(cr);
        break;
    case SYM_ERRBAR:
        set_rgb(cr, col);
        cairo_set_line_width(cr, 0.9);
        cairo_move_to(cr, x + 6, ym - 4.5);
        cairo_line_to(cr, x + 6, ym + 4.5);
        cairo_move_to(cr, x + 4, ym - 4.5);
        cairo_line_to(cr, x + 8, ym - 4.5);
        cairo_move_to(cr, x + 4, ym + 4.5);
        cairo_line_to(cr, x + 8, ym + 4.5);
        cairo_stroke(cr);
        cairo_new_path(cr);
        cairo_arc(cr, x + 6, ym, 2, 0, 2 * M_PI);
        cairo_fill(cr);
        break;
    }
    cairo_restore(cr);
}

static void draw_legend(struct chart *c, const struct legend_item *it, int n)
{
    cairo_t *cr = c->cr;
    double lh = T_SMALL * 1.6, x, avail = c->x1 - c->x0;
    int nlines = 1, line;
    char b[LINE_B];

    if (n <= 0)
        return;
    font(cr, T_SMALL, 0);
    /* pass 0 counts lines, pass 1 draws */
    for (int pass = 0; pass < 2; pass++) {
        double ytop = c->y1 - nlines * lh;
        x = c->x0;
        line = 0;
        for (int i = 0; i < n; i++) {
            double sw = it[i].sym ? 15 : 0;
            double tw = text_w(cr, fit(cr, it[i].text, avail - sw, b, sizeof b));
            if (x > c->x0 && x + sw + tw > c->x1) {
                line++;
                x = c->x0;
            }
            if (pass == 1) {
                double ym = ytop + line * lh + lh / 2;
                if (it[i].sym)
                    draw_symbol(cr, it[i].sym, it[i].col, x, ym);
                set_rgb(cr, DIM);
                text_at(cr, x + sw, ym, b, HL, VM);
            }
            x += sw + tw + 12;
        }
        nlines = line + 1;
    }
    c->y1 -= nlines * lh + 4;
}

/* ---- shared data helpers ------------------------------------------------------------------- */

static const struct qb_an_cell *cell_of(const struct qb_an_slice *s, int64_t j)
{
    return s && s->cells ? &s->cells[j] : NULL;
}

/* "95% CI..." at the analysis's confidence */
static const char *conf_text(const struct chart *c, const char *fmt_rest, char *b, size_t n)
{
    double conf = c->a->confidence > 0 && c->a->confidence < 1 ? c->a->confidence : 0.95;
    snprintf(b, n, "%g%% %s", round(conf * 1000) / 10, fmt_rest);
    return b;
}

static const char *base_name(const struct chart *c)
{
    const struct qb_analysis *a = c->a;
    if (a->baseline >= 0 && a->baseline < a->n_configs && a->configs[a->baseline].spec)
        return a->configs[a->baseline].spec;
    return "baseline";
}

/* The row ACC_MEMORY and KL_FLIPS plot: the chosen slice, else the overall row, else the only
 * slice. */
static const struct qb_an_slice *main_row(const struct chart *c)
{
    if (c->sel)
        return c->sel;
    if (c->a->overall.cells)
        return &c->a->overall;
    if (c->a->n_slices == 1)
        return &c->a->slices[0];
    return NULL;
}

static double z_of(double conf)
{
    double lo = 0, hi = 10, p;
    if (!(conf > 0 && conf < 1))
        conf = 0.95;
    p = 0.5 + conf / 2;
    for (int i = 0; i < 80; i++) { /* bisection on the normal CDF */
        double m = (lo + hi) / 2;
        if (0.5 * erfc(-m / M_SQRT2) < p)
            lo = m;
        else
            hi = m;
    }
    return (lo + hi) / 2;
}

/* Wilson score interval (Wilson 1927) for k of n */
static void wilson(int64_t k, int64_t n, double z, double *lo, double *hi)
{
    double p, d, ctr, half;
    if (n <= 0) {
        *lo = *hi = NAN;
        return;
    }
    p = (double)k / n;
    d = 1 + z * z / n;
    ctr = (p + z * z / (2.0 * n)) / d;
    half = z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / d;
    *lo = fmax(0, ctr - half);
    *hi = fmin(1, ctr + half);
}

/* Width of the widest config name at the current font, capped. */
static double config_names_w(struct chart *c, double cap)
{
    char b[NAME_B];
    double w = 0;
    for (int64_t j = 0; j < c->a->n_configs; j++)
        w = fmax(w, text_w(c->cr, fit(c->cr, c->a->configs[j].spec, cap, b, sizeof b)));
    return w;
}

static void spread_labels(double *y, const int *order, int n, double gap, double lo, double hi)
{
    for (int k = 1; k < n; k++)
        if (y[order[k]] < y[order[k - 1]] + gap)
            y[order[k]] = y[order[k - 1]] + gap;
    if (n > 0 && y[order[n - 1]] > hi)
        y[order[n - 1]] = hi;
    for (int k = n - 2; k >= 0; k--)
        if (y[order[k]] > y[order[k + 1]] - gap)
            y[order[k]] = y[order[k + 1]] - gap;
    if (n > 0 && y[order[0]] < lo) /* too many to fit: keep the top in place, overlap below */
        for (int k = 0; k < n; k++)
            y[order[k]] = fmax(y[order[k]], lo + k * fmin(gap, (hi - lo) / (n > 1 ? n - 1 : 1)));
}

/* x tick labels with config names under a category axis at centres xc[], rotated by 40 degrees
 * when they do not fit side by side. Returns the height used; measure only when draw == 0. */
static double config_xlabels(struct chart *c, const double *xc, double step, double y, int draw)
{
    cairo_t *cr = c->cr;
    char b[NAME_B];
    const double cap = 80, ang = 40 * M_PI / 180;
    double wmax;
    int64_t n = c->a->n_configs;

    font(cr, T_SMALL, 0);
    wmax = config_names_w(c, cap);
    if (wmax <= step - 4) {
        if (draw)
            for (int64_t j = 0; j < n; j++) {
                set_rgb(cr, is_base(c->a, j) ? DIM : INK);
                text_at(cr, xc[j], y + 4, fit(cr, c->a->configs[j].spec, step - 2, b, sizeof b), HC,
                        VT);
            }
        return 4 + T_SMALL * 1.25;
    }
    if (draw)
        for (int64_t j = 0; j < n; j++) {
            double room = fmin(cap, (xc[j] - 2) / cos(ang));
            set_rgb(cr, is_base(c->a, j) ? DIM : INK);
            /* the label ends at the tick and runs down to the left */
            text_rot(cr, xc[j] + 3, y + 5, -40, fit(cr, c->a->configs[j].spec, room, b, sizeof b),
                     HR, VT);
        }
    return 6 + wmax * sin(ang) + T_SMALL * cos(ang) + 2;
}

/* ---- heatmap ------------------------------------------------------------------------------- */

static void heat_colourbar(struct chart *c, double range, int saturated)
{
    cairo_t *cr = c->cr;
    char lo[32], hi[32], cap[LINE_B];
    const double bw = 110, bh = 7;
    double x, ytop;

    snprintf(cap, sizeof cap, "accuracy change vs %s, points", base_name(c));
    font(cr, T_SMALL, 0);
    ytop = c->y1 - (bh + 3 + T_SMALL * 1.2);
    x = c->x0 + text_w(cr, cap) + 14;
    if (x + bw + 20 > c->x1)
        x = c->x0 + 12;
    else {
        set_rgb(cr, DIM);
        text_at(cr, c->x0, ytop + bh / 2, cap, HL, VM);
    }
    for (int i = 0; i < 110; i++) {
        set_rgb(cr, diverging(-1 + 2 * (i + 0.5) / 110));
        cairo_rectangle(cr, x + i * bw / 110, ytop, bw / 110 + 0.05, bh);
        cairo_fill(cr);
    }
    strcpy(lo, saturated ? "\xE2\x89\xA4" : ""); /* less-or-equal sign */
    strcpy(hi, saturated ? "\xE2\x89\xA5" : "");
    fmt_num(lo + strlen(lo), sizeof lo - 3, -range, range < 10 ? 1 : 0, 1);
    fmt_num(hi + strlen(hi), sizeof hi - 3, range, range < 10 ? 1 : 0, 1);
    set_rgb(cr, DIM);
    text_at(cr, x, ytop + bh + 2, lo, HC, VT);
    text_at(cr, x + bw / 2, ytop + bh + 2, "0", HC, VT);
    text_at(cr, x + bw, ytop + bh + 2, hi, HC, VT);
    if (x + bw + 14 + text_w(cr, "red: loss, blue: gain") <= c->x1)
        text_at(cr, x + bw + 14, ytop + bh / 2, "red: loss, blue: gain", HL, VM);
    c->y1 = ytop - 6;
}

static void heat_legends(struct chart *c, double range, int saturated, int any_beyond, int any_sig,
                         int any_nm)
{
    struct legend_item it[4];
    int n = 0;
    char bt[LINE_B], ct[64];

    conf_text(c, "CI excludes 0", ct + 2, sizeof ct - 2);
    memcpy(ct, "* ", 2);
    heat_colourbar(c, range, saturated);
    snprintf(bt, sizeof bt, "grey column: %s accuracy", base_name(c));
    if (any_beyond)
        it[n++] = (struct legend_item){SYM_BOLDBOX, INK, "loss beyond the slice's tolerance"};
    if (any_sig)
        it[n++] = (struct legend_item){SYM_NONE, INK, ct};
    it[n++] = (struct legend_item){SYM_SWATCH, BASE_FILL, bt};
    if (any_nm)
        it[n++] = (struct legend_item){SYM_NONE, INK, "n/m: not measured"};
    draw_legend(c, it, n);
}

static int chart_heatmap(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    cairo_t *cr = c->cr;
    int64_t nc = a->n_configs, nr = 0;
    const struct qb_an_slice **rows = NULL;
    int overall_row, any_na = 0, any_beyond = 0, any_sig = 0, saturated = 0, used_nm = 0;
    double range = 0, max_tol = 0, y1_full, leg_h, label_w = 0, name_cap = 0.3 * c->w, col_w, row_h,
           gx0, gy0, gap;
    char b[NAME_B], d[64], hw[64], t[160];

    rows = malloc((size_t)(a->n_slices + 1) * sizeof *rows);
    if (!rows) {
        c->oom = 1;
        return 0;
    }
    overall_row = a->overall.cells && a->n_slices != 1;
    for (int64_t i = 0; i < a->n_slices; i++)
        rows[nr++] = &a->slices[i];
    if (overall_row)
        rows[nr++] = &a->overall;
    if (nc <= 0 || nr == 0) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        free(rows);
        return 0;
    }

    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < nc; j++) {
            const struct qb_an_cell *e = cell_of(rows[r], j);
            if (is_base(a, j))
                continue;
            if (!e || !isfinite(e->delta)) {
                any_na = 1;
                continue;
            }
            range = fmax(range, fabs(e->delta) * 100);
            if (-e->delta * 100 > rows[r]->tolerance)
                any_beyond = 1;
            if (e->delta_ci.hi < 0 || e->delta_ci.lo > 0)
                any_sig = 1;
        }
    for (int64_t r = 0; r < nr; r++)
        if (isfinite(rows[r]->tolerance) && rows[r]->tolerance > max_tol)
            max_tol = rows[r]->tolerance;
    {
        /* colour saturates at five tolerances: a loss past that is equally bad, and a 40-point
         * loss must not wash out the 5-point one that decides (the numbers are in the cells) */
        static const double steps[] = {1, 2, 3, 5, 10, 15, 20, 30, 50, 75, 100};
        double r0 = fmin(range, 5 * (max_tol > 0 ? max_tol : QB_AN_DEFAULT_TOLERANCE));
        double maxabs = range;
        range = 100;
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
            if (steps[i] >= r0) {
                range = steps[i];
                break;
            }
        saturated = maxabs > range;
    }
    /* measure the legends (drawn into a discarded group) so they can sit under the grid */
    y1_full = c->y1;
    cairo_push_group(cr);
    heat_legends(c, range, saturated, any_beyond, any_sig, any_na);
    cairo_pattern_destroy(cairo_pop_group(cr));
    leg_h = y1_full - c->y1;

    /* row labels: "name  n=240" */
    for (int64_t r = 0; r < nr; r++) {
        const struct qb_an_cell *e =
            a->baseline >= 0 && a->baseline < nc ? cell_of(rows[r], a->baseline) : NULL;
        int64_t n = e && e->n > 0 ? e->n : rows[r]->n_items;
        font(cr, T_SUB, rows[r] == &a->overall);
        double w = text_w(
            cr, fit(cr, rows[r] == &a->overall ? "overall" : rows[r]->name, name_cap, b, sizeof b));
        font(cr, T_SMALL, 0);
        snprintf(t, sizeof t, "n=%lld", (long long)n);
        label_w = fmax(label_w, w + 5 + text_w(cr, t));
    }
    label_w = fmin(label_w, 0.38 * c->w);

    /* column headers */
    gx0 = c->x0 + label_w + 6;
    col_w = fmin((c->x1 - gx0) / nc, 72);
    font(cr, T_SMALL, 0);
    double spec_w = config_names_w(c, 90);
    int rotate = spec_w > col_w - 4;
    double head_h = rotate ? spec_w * sin(M_PI / 4) + T_SMALL * 0.8 + 9 : T_SMALL * 1.3 + 7;
    {
        /* centre the block when the columns are capped */
        double used = label_w + 6 + col_w * nc, slack = (c->x1 - c->x0) - used;
        if (slack > 0)
            gx0 += slack / 2;
    }
    gy0 = c->y0 + head_h;
    gap = overall_row ? 5 : 0;
    row_h = fmin((c->y1 - gy0 - gap) / nr, 34);
    if (row_h < 2) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        free(rows);
        return 0;
    }

    for (int64_t j = 0; j < nc; j++) {
        double xc = gx0 + (j + 0.5) * col_w;
        set_rgb(cr, config_colour(a, j));
        cairo_rectangle(cr, gx0 + j * col_w + 1, gy0 - 4.5, col_w - 2, 3);
        cairo_fill(cr);
        font(cr, T_SMALL, 0);
        set_rgb(cr, is_base(a, j) ? DIM : INK);
        if (!rotate)
            text_at(cr, xc, gy0 - 7, fit(cr, a->configs[j].spec, col_w - 2, b, sizeof b), HC, VB);
        else {
            double room = fmin(90, (c->w - 3 - xc) / cos(M_PI / 4));
            text_rot(cr, xc - 2, gy0 - 8, -45, fit(cr, a->configs[j].spec, room, b, sizeof b), HL,
                     VBL);
        }
    }

    for (int64_t r = 0; r < nr; r++) {
        int ov = rows[r] == &a->overall;
        double y = gy0 + r * row_h + (ov ? gap : 0);
        const struct qb_an_cell *e0 =
            a->baseline >= 0 && a->baseline < nc ? cell_of(rows[r], a->baseline) : NULL;
        int64_t n = e0 && e0->n > 0 ? e0->n : rows[r]->n_items;

        if (ov) {
            set_rgb(cr, RULE);
            cairo_set_line_width(cr, 0.6);
            cairo_move_to(cr, c->x0, y - gap / 2);
            cairo_line_to(cr, gx0 + nc * col_w, y - gap / 2);
            cairo_stroke(cr);
        }
        /* label, right-aligned against the grid */
        font(cr, T_SMALL, 0);
        snprintf(t, sizeof t, "n=%lld", (long long)n);
        double nw = text_w(cr, t);
        if (row_h >= T_SMALL) {
            set_rgb(cr, FAINT);
            text_at(cr, gx0 - 6, y + row_h / 2, t, HR, VM);
            font(cr, T_SUB, ov);
            set_rgb(cr, INK);
            text_at(cr, gx0 - 11 - nw, y + row_h / 2,
                    fit(cr, ov ? "overall" : rows[r]->name, label_w - nw - 5, b, sizeof b), HR, VM);
        }

        for (int64_t j = 0; j < nc; j++) {
            const struct qb_an_cell *e = cell_of(rows[r], j);
            double x = gx0 + j * col_w, xc = x + col_w / 2, yc = y + row_h / 2;
            struct rgb fill, tc;
            int two = row_h >= 2 * T_SMALL * 1.2 + 4, base = is_base(a, j);
            int na = !e || (base ? !(isfinite(e->acc) || isfinite(e->ppl)) : !isfinite(e->delta));

            fill = na ? NA_FILL : base ? BASE_FILL : diverging(e->delta * 100 / range);
            set_rgb(cr, fill);
            cairo_rectangle(cr, x + 0.5, y + 0.5, col_w - 1, row_h - 1);
            cairo_fill(cr);
            tc = text_on(fill);
            if (na) {
                font_italic(cr, T_SMALL);
                set_rgb(cr, DIM);
                if (text_w(cr, "not measured") <= col_w - 4)
                    text_at(cr, xc, yc, "not measured", HC, VM);
                else if (two && text_w(cr, "measured") <= col_w - 4) {
                    text_at(cr, xc, yc - 1, "not", HC, VB);
                    text_at(cr, xc, yc + 1, "measured", HC, VT);
                } else if (text_w(cr, "n/m") <= col_w - 2 && row_h >= T_SMALL) {
                    text_at(cr, xc, yc, "n/m", HC, VM);
                    used_nm = 1;
                }
                continue;
            }
            if (base) {
                if (rows[r]->is_perplexity || !isfinite(e->acc))
                    snprintf(d, sizeof d, "ppl "), fmt_sig(d + 4, sizeof d - 4, e->ppl);
                else {
                    fmt_num(d, sizeof d, e->acc * 100, 1, 0);
                    strcat(d, "%");
                }
                font(cr, T_SMALL, 0);
                set_rgb(cr, INK);
                if (text_w(cr, d) > col_w - 3 && d[0] == 'p')
                    memmove(d, d + 4, strlen(d + 4) + 1); /* "11.8" without "ppl " */
                if (text_w(cr, d) <= col_w - 3 && row_h >= T_SMALL)
                    text_at(cr, xc, yc, d, HC, VM);
                continue;
            }
            int sig = e->delta_ci.hi < 0 || e->delta_ci.lo > 0;
            /* narrow cells: "−38.0*", else "−38*", else "−38" */
            font(cr, T_SMALL, 1);
            for (int tries = 0; tries < 3; tries++) {
                int dec = tries == 0 || fabs(e->delta * 100) < 9.95 ? 1 : 0;
                fmt_num(d, sizeof d, e->delta * 100, dec, 1);
                if (sig && tries < 2)
                    strcat(d, "*");
                if (text_w(cr, d) <= col_w - 3)
                    break;
            }
            hw[0] = 0;
            if (isfinite(e->delta_ci.lo) && isfinite(e->delta_ci.hi)) {
                strcpy(hw, "\xC2\xB1");
                fmt_num(hw + 2, sizeof hw - 2, (e->delta_ci.hi - e->delta_ci.lo) / 2 * 100, 1, 0);
            }
            set_rgb(cr, tc);
            font(cr, T_SMALL, 1);
            double dw = text_w(cr, d);
            font(cr, T_SMALL, 0);
            double hww = hw[0] ? text_w(cr, hw) : 0;
            if (row_h < T_SMALL || dw > col_w - 3)
                ; /* colour only */
            else if (hw[0] && two && hww <= col_w - 3) {
                font(cr, T_SMALL, 1);
                text_at(cr, xc, yc - 1, d, HC, VB);
                font(cr, T_SMALL, 0);
                text_at(cr, xc, yc + 1.5, hw, HC, VT);
            } else if (hw[0] && dw + 3 + hww <= col_w - 3) {
                font(cr, T_SMALL, 1);
                text_at(cr, xc - (dw + 3 + hww) / 2, yc, d, HL, VM);
                font(cr, T_SMALL, 0);
                text_at(cr, xc + (dw + 3 + hww) / 2, yc, hw, HR, VM);
            } else {
                font(cr, T_SMALL, 1);
                text_at(cr, xc, yc, d, HC, VM);
            }
        }
        /* bold borders after the fills, so neighbours do not paint over them */
        for (int64_t j = 0; j < nc; j++) {
            const struct qb_an_cell *e = cell_of(rows[r], j);
            if (is_base(a, j) || !e || !isfinite(e->delta) ||
                !(-e->delta * 100 > rows[r]->tolerance))
                continue;
            set_rgb(cr, INK);
            cairo_set_line_width(cr, 1.6);
            cairo_rectangle(cr, gx0 + j * col_w + 1.3, y + 1.3, col_w - 2.6, row_h - 2.6);
            cairo_stroke(cr);
        }
    }
    c->y1 = fmin(y1_full, gy0 + nr * row_h + gap + 12 + leg_h);
    heat_legends(c, range, saturated, any_beyond, any_sig, used_nm);
    free(rows);
    return 0;
}

/* ---- ladder -------------------------------------------------------------------------------- */

struct series {
    const struct qb_an_slice *s;
    const char *name;
    struct rgb col;
    int strong, dashed;
};

/* Ladder position of a slice's first significant loss (past its tolerance, interval below
 * zero); n_configs when it has none. */
static int64_t first_loss(const struct qb_analysis *a, const struct qb_an_slice *s)
{
    for (int64_t j = 0; s->cells && j < a->n_configs; j++) {
        const struct qb_an_cell *e = &s->cells[j];
        if (!is_base(a, j) && isfinite(e->delta) &&
            (e->significant_loss || (-e->delta * 100 > s->tolerance && e->delta_ci.hi < 0)))
            return j;
    }
    return a->n_configs;
}

static int chart_ladder(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    cairo_t *cr = c->cr;
    int64_t nc = a->n_configs;
    struct series *sr = NULL;
    double *xc = NULL, *ly = NULL;
    int *order = NULL, ns = 0, any_flag = 0, any_gap = 0;
    char b[NAME_B], t[LINE_B], missing[LINE_B] = "";
    struct axis ya;
    double lo = 0, hi = 0, px0, px1, py0, py1, step, label_w = 0;
    double tols[8], tol_y0 = 0, tol_y1 = 0;
    int ntol = 0;

    if (nc <= 0 || (a->n_slices == 0 && !a->overall.cells)) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        return 0;
    }
    sr = calloc((size_t)a->n_slices + 1, sizeof *sr);
    xc = calloc((size_t)nc, sizeof *xc);
    ly = calloc((size_t)a->n_slices + 1, sizeof *ly);
    order = calloc((size_t)a->n_slices + 1, sizeof *order);
    if (!sr || !xc || !ly || !order) {
        c->oom = 1;
        goto out;
    }
    /* colour goes to the slices that break first down the ladder (the finding); the others
     * are grey. When none breaks, or all break at once, every slice gets a colour. */
    int64_t first = nc;
    int n_first = 0, n_sel = 0;
    for (int64_t i = 0; i < a->n_slices; i++)
        if (!c->sel || c->sel == &a->slices[i]) {
            int64_t f = first_loss(a, &a->slices[i]);
            n_sel++;
            if (f < first)
                first = f, n_first = 0;
            n_first += f == first;
        }
    any_flag = first < nc && n_first < n_sel;
    {
        int k = 0, m = 0;
        for (int64_t i = 0; i < a->n_slices; i++) {
            const struct qb_an_slice *s = &a->slices[i];
            int has = nc == 1;
            if (c->sel && c->sel != s)
                continue;
            for (int64_t j = 0; s->cells && j < nc; j++)
                has |= !is_base(a, j) && isfinite(s->cells[j].delta);
            if (!has) { /* nothing but the baseline: listed under the chart, not drawn */
                clean(s->name, b, sizeof b);
                if (m < (int)sizeof missing - 1)
                    m += snprintf(missing + m, sizeof missing - m, "%s%s",
                                  m ? ", " : "not measured: ", b);
                continue;
            }
            sr[ns].s = s;
            sr[ns].name = s->name;
            sr[ns].strong = !any_flag || first_loss(a, s) == first;
            sr[ns].col = sr[ns].strong ? tol_vibrant[k++ % 6] : WEAK;
            ns++;
        }
    }
    if (!c->sel && a->overall.cells && a->n_slices != 1) {
        sr[ns] = (struct series){&a->overall, "overall", INK, 1, 1};
        ns++;
    }
    if (ns == 0) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        goto out;
    }

    for (int k = 0; k < ns; k++) {
        const struct qb_an_slice *s = sr[k].s;
        for (int64_t j = 0; s->cells && j < nc; j++) {
            const struct qb_an_cell *e = &s->cells[j];
            if (is_base(a, j))
                continue;
            if (!isfinite(e->delta)) {
                any_gap = 1;
                continue;
            }
            lo = fmin(lo, e->delta * 100);
            hi = fmax(hi, e->delta * 100);
            if (isfinite(e->delta_ci.lo))
                lo = fmin(lo, e->delta_ci.lo * 100);
            if (isfinite(e->delta_ci.hi))
                hi = fmax(hi, e->delta_ci.hi * 100);
        }
        if (!s->cells)
            any_gap = 1;
        if (isfinite(s->tolerance) && s->tolerance > 0 && !sr[k].dashed) {
            int seen = 0;
            for (int q = 0; q < ntol; q++)
                seen |= fabs(tols[q] - s->tolerance) < 1e-6;
            if (!seen && ntol < 8)
                tols[ntol++] = s->tolerance;
            lo = fmin(lo, -s->tolerance);
        }
    }
    {
        double pad = (hi - lo) * 0.06 + 0.2;
        axis_linear(&ya, lo - pad, hi + pad, 6);
    }

    /* notes */
    {
        struct legend_item it[5];
        int n = 0;
        char ct[64];
        snprintf(t, sizeof t, "dashed: tolerance (the loss allowed%s)",
                 ntol > 1 ? ", per slice" : "");
        it[n++] = (struct legend_item){SYM_ERRBAR, DIM, conf_text(c, "CI", ct, sizeof ct)};
        if (ntol > 0)
            it[n++] = (struct legend_item){SYM_DASH, DIM, t};
        if (ns > 1 && sr[ns - 1].dashed)
            it[n++] = (struct legend_item){SYM_DASH, INK, "overall: every item pooled"};
        if (any_gap)
            it[n++] = (struct legend_item){SYM_NONE, INK, "gaps: not measured"};
        if (missing[0])
            it[n++] = (struct legend_item){SYM_NONE, INK, missing};
        draw_legend(c, it, n);
    }

    /* layout: y tick labels + axis title on the left, direct labels on the right */
    for (int k = 0; k < ns; k++) {
        font(cr, T_SUB, sr[k].strong && !sr[k].dashed && any_flag);
        label_w = fmax(label_w, text_w(cr, fit(cr, sr[k].name, 0.25 * c->w, b, sizeof b)));
    }
    px0 = c->x0 + T_SUB * 1.4 + tick_labels_w(cr, &ya) + 6;
    px1 = c->x1 - label_w - 8;
    step = (px1 - px0) / nc;
    for (int64_t j = 0; j < nc; j++)
        xc[j] = px0 + (j + 0.5) * step;
    py0 = c->y0 + 2;
    py1 = c->y1 - config_xlabels(c, xc, step, 0, 0) - T_SUB * 1.6;
    if (py1 - py0 < 20 || px1 - px0 < 20) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    ya.p0 = py1;
    ya.p1 = py0;
    draw_yaxis(cr, &ya, px0, px1);
    config_xlabels(c, xc, step, py1, 1);
    font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    snprintf(t, sizeof t, "change vs %s, points", base_name(c));
    text_rot(cr, c->x0, (py0 + py1) / 2, -90, fit(cr, t, py1 - py0, b, sizeof b), HC, VT);
    text_at(cr, (px0 + px1) / 2, c->y1, "config, most bits first", HC, VB);

    /* zero (the baseline) and tolerance lines */
    set_rgb(cr, RULE);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, px0, amap(&ya, 0));
    cairo_line_to(cr, px1, amap(&ya, 0));
    cairo_stroke(cr);
    {
        double ymin = INFINITY, ymax = -INFINITY;
        for (int q = 0; q < ntol; q++) {
            double y = amap(&ya, -tols[q]), d[] = {4, 3};
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
            cairo_save(cr);
            cairo_set_dash(cr, d, 2, 0);
            set_rgb(cr, DIM);
            cairo_set_line_width(cr, 0.8);
            cairo_move_to(cr, px0, y);
            cairo_line_to(cr, px1, y);
            cairo_stroke(cr);
            cairo_restore(cr);
        }
        /* the labels go on top of the lines drawn below, with a halo */
        tol_y0 = ymin;
        tol_y1 = ymax;
    }
    /* lines: weak series first, strong on top */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < ns; k++) {
            const struct qb_an_slice *s = sr[k].s;
            double dodge = (k - (ns - 1) / 2.0) * fmin(3, step * 0.5 / ns);
            int pen = 0;
            if (sr[k].strong != pass || !s->cells)
                continue;
            cairo_save(cr);
            if (sr[k].dashed) {
                double d[] = {4, 2};
                cairo_set_dash(cr, d, 2, 0);
            }
            set_rgb(cr, sr[k].col);
            cairo_set_line_width(cr, sr[k].strong ? 1.6 : 1.0);
            for (int64_t j = 0; j < nc; j++) {
                double v = is_base(a, j) ? 0 : s->cells[j].delta * 100;
                if (!isfinite(v)) {
                    pen = 0;
                    continue;
                }
                if (pen)
                    cairo_line_to(cr, xc[j] + dodge, amap(&ya, v));
                else
                    cairo_move_to(cr, xc[j] + dodge, amap(&ya, v));
                pen = 1;
            }
            cairo_stroke(cr);
            cairo_restore(cr);
            /* intervals and markers */
            for (int64_t j = 0; j < nc; j++) {
                const struct qb_an_cell *e = &s->cells[j];
                double v = is_base(a, j) ? 0 : e->delta * 100, x = xc[j] + dodge;
                if (!isfinite(v))
                    continue;
                if (!is_base(a, j) && isfinite(e->delta_ci.lo) && isfinite(e->delta_ci.hi)) {
                    set_rgba(cr, sr[k].col, sr[k].strong ? 0.8 : 0.6);
                    cairo_set_line_width(cr, 0.9);
                    cairo_move_to(cr, x, amap(&ya, e->delta_ci.lo * 100));
                    cairo_line_to(cr, x, amap(&ya, e->delta_ci.hi * 100));
                    cairo_stroke(cr);
                }
                cairo_new_path(cr);
                cairo_arc(cr, x, amap(&ya, v), sr[k].strong ? 2.2 : 1.7, 0, 2 * M_PI);
                set_rgb(cr, sr[k].col);
                cairo_fill(cr);
            }
        }

    if (ns == 1 && sr[0].s->cells) { /* one line: its values beside the points */
        font(cr, T_SMALL, 0);
        for (int64_t j = 0; j < nc; j++) {
            const struct qb_an_cell *e = &sr[0].s->cells[j];
            char v[32];
            if (is_base(a, j) || !isfinite(e->delta))
                continue;
            /* above the point, unless its neighbours are higher on average: then below */
            double nb = 0, y = e->delta * 100;
            int nn = 0;
            for (int64_t q = j - 1; q <= j + 1; q += 2)
                if (q >= 0 && q < nc) {
                    double u = is_base(a, q) ? 0 : sr[0].s->cells[q].delta * 100;
                    if (isfinite(u))
                        nb += u, nn++;
                }
            int below = nn > 0 && nb / nn > y;
            fmt_num(v, sizeof v, y, 1, 1);
            text_halo(cr, xc[j] + 4, amap(&ya, y) + (below ? 3 : -3), v, HL, below ? VT : VB,
                      ink_of(sr[0].col));
        }
    }
    if (nc == 1) {
        font_italic(cr, T_SUB);
        set_rgb(cr, DIM);
        text_at(cr, (px0 + px1) / 2, (py0 + amap(&ya, 0)) / 2, "only the baseline was measured", HC,
                VM);
    }

    /* tolerance labels: one per line when they are apart, else one for all */
    font(cr, T_SMALL, 0);
    for (int q = 0; q < ntol; q++) {
        char v[32], v2[32];
        double y = amap(&ya, -tols[q]);
        if (ntol > 1 && tol_y1 - tol_y0 < T_SMALL * 1.4) {
            double tmin = tols[0], tmax = tols[0];
            if (q > 0)
                break;
            for (int k = 1; k < ntol; k++)
                tmin = fmin(tmin, tols[k]), tmax = fmax(tmax, tols[k]);
            fmt_num(v, sizeof v, -tmin, 1, 0);
            fmt_num(v2, sizeof v2, -tmax, 1, 0);
            snprintf(t, sizeof t, "tolerance %s to %s, by slice", v, v2);
            y = tol_y1;
        } else if (ntol == 1) {
            fmt_num(v, sizeof v, -tols[q], 1, 0);
            snprintf(t, sizeof t, "tolerance %s", v);
        } else {
            fmt_num(v, sizeof v, -tols[q], 1, 0);
            int m = snprintf(t, sizeof t, "tolerance %s:", v);
            for (int k = 0; k < ns && m < (int)sizeof t - 1; k++)
                if (!sr[k].dashed && fabs(sr[k].s->tolerance - tols[q]) < 1e-6) {
                    clean(sr[k].name, b, sizeof b);
                    m += snprintf(t + m, sizeof t - m, " %s", b);
                }
        }
        text_halo(cr, px0 + step * 0.15, y + 2.5, fit(cr, t, px1 - px0 - 6, b, sizeof b), HL, VT,
                  DIM);
    }

    /* direct labels at the line ends */
    {
        int nl = 0;
        double lx = px1 + 6;
        int idx[64];
        for (int k = 0; k < ns && nl < 64; k++) {
            const struct qb_an_slice *s = sr[k].s;
            int64_t last = -1;
            for (int64_t j = 0; s->cells && j < nc; j++)
                if (is_base(a, j) || isfinite(s->cells[j].delta))
                    last = j;
            if (last < 0)
                continue;
            ly[nl] = amap(&ya, is_base(a, last) ? 0 : s->cells[last].delta * 100);
            idx[nl] = k;
            order[nl] = nl;
            nl++;
        }
        for (int i = 1; i < nl; i++) /* insertion sort by y */
            for (int j = i; j > 0 && ly[order[j]] < ly[order[j - 1]]; j--) {
                int tmp = order[j];
                order[j] = order[j - 1];
                order[j - 1] = tmp;
            }
        {
            double y_orig[64];
            for (int i = 0; i < nl; i++)
                y_orig[i] = ly[i];
            spread_labels(ly, order, nl, T_SUB * 1.2, py0 + 4, py1 - 4);
            for (int i = 0; i < nl; i++) {
                struct series *s = &sr[idx[i]];
                struct rgb tc = s->strong ? ink_of(s->col) : DIM;
                if (fabs(ly[i] - y_orig[i]) > 1.5) {
                    set_rgba(cr, s->col, 0.7);
                    cairo_set_line_width(cr, 0.5);
                    cairo_move_to(cr, px1 - 0, y_orig[i]);
                    cairo_line_to(cr, lx - 2, ly[i]);
                    cairo_stroke(cr);
                }
                font(cr, T_SUB, s->strong && !s->dashed && any_flag);
                text_halo(cr, lx, ly[i], fit(cr, s->name, c->x1 - lx, b, sizeof b), HL, VM, tc);
            }
        }
    }
out:
    free(sr);
    free(xc);
    free(ly);
    free(order);
    return 0;
}

/* ---- accuracy vs memory -------------------------------------------------------------------- */

struct rect {
    double x0, y0, x1, y1;
};

static double rect_dist(struct rect r, double x, double y)
{
    double dx = fmax(fmax(r.x0 - x, x - r.x1), 0), dy = fmax(fmax(r.y0 - y, y - r.y1), 0);
    return hypot(dx, dy);
}

static int chart_acc_memory(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    cairo_t *cr = c->cr;
    const struct qb_an_slice *row = main_row(c);
    int64_t nc = a->n_configs;
    double *mx = NULL, *my = NULL, *lo = NULL, *hi = NULL, unit = 1;
    int *ok = NULL, *front = NULL, n_ok = 0, n_front = 0, ppl, any_rss = 0, any_w = 0;
    struct rect *placed = NULL;
    int n_placed = 0;
    struct axis xa, ya;
    char b[NAME_B], t[LINE_B];
    const char *uname = "GiB";

    if (nc <= 0 || !row || !row->cells) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        return 0;
    }
    ppl = row->is_perplexity;
    mx = calloc((size_t)nc, sizeof *mx);
    my = calloc((size_t)nc, sizeof *my);
    lo = calloc((size_t)nc, sizeof *lo);
    hi = calloc((size_t)nc, sizeof *hi);
    ok = calloc((size_t)nc, sizeof *ok);
    front = calloc((size_t)nc, sizeof *front);
    placed = calloc((size_t)nc * 3 + 4, sizeof *placed);
    if (!mx || !my || !lo || !hi || !ok || !front || !placed) {
        c->oom = 1;
        goto out;
    }
    double mmin = INFINITY, mmax = 0, ymin = INFINITY, ymax = -INFINITY, base_ppl = NAN;
    if (ppl && a->baseline >= 0 && a->baseline < nc)
        base_ppl = row->cells[a->baseline].ppl;
    for (int64_t j = 0; j < nc; j++) {
        const struct qb_an_cell *e = &row->cells[j];
        mx[j] = a->configs[j].mem_cost;
        my[j] = ppl ? e->ppl : e->acc * 100;
        /* perplexity: the interval of the ratio to the baseline (delta = 1 - ratio) */
        lo[j] = ppl ? (is_base(a, j) ? NAN : base_ppl * (1 - e->delta_ci.hi)) : e->acc_ci.lo * 100;
        hi[j] = ppl ? (is_base(a, j) ? NAN : base_ppl * (1 - e->delta_ci.lo)) : e->acc_ci.hi * 100;
        ok[j] = isfinite(mx[j]) && mx[j] > 0 && isfinite(my[j]);
        if (!ok[j])
            continue;
        n_ok++;
        any_rss |= a->configs[j].peak_rss_bytes > 0;
        any_w |= !(a->configs[j].peak_rss_bytes > 0);
        mmin = fmin(mmin, mx[j]);
        mmax = fmax(mmax, mx[j]);
        ymin = fmin(ymin, isfinite(lo[j]) ? fmin(lo[j], my[j]) : my[j]);
        ymax = fmax(ymax, isfinite(hi[j]) ? fmax(hi[j], my[j]) : my[j]);
    }
    /* the frontier from the analysis; recomputed when it marked none */
    for (int64_t j = 0; j < nc; j++)
        if (ok[j] && row->cells[j].pareto)
            front[j] = 1, n_front++;
    if (!n_front)
        for (int64_t j = 0; j < nc; j++) {
            int dom = 0;
            for (int64_t i = 0; ok[j] && i < nc && !dom; i++) {
                double gy = ppl ? my[j] - my[i] : my[i] - my[j]; /* >= 0: i at least as good */
                dom = ok[i] && i != j && mx[i] <= mx[j] && gy >= 0 && (mx[i] < mx[j] || gy > 0);
            }
            front[j] = ok[j] && !dom;
        }
    {
        /* notes: what was left out */
        int m = 0, miss = 0;
        m = snprintf(t, sizeof t, "not measured: ");
        for (int64_t j = 0; j < nc && m < (int)sizeof t - 1; j++)
            if (!ok[j]) {
                clean(a->configs[j].spec, b, sizeof b);
                m += snprintf(t + m, sizeof t - m, "%s%s", miss++ ? ", " : "", b);
            }
        struct legend_item it[5];
        int n = 0;
        char base_t[LINE_B], ct[64];
        snprintf(base_t, sizeof base_t, "%s", base_name(c));
        it[n++] = (struct legend_item){SYM_DOT, FAINT, "on the Pareto frontier (line)"};
        it[n++] = (struct legend_item){SYM_HOLLOW, FAINT, "dominated"};
        it[n++] = (struct legend_item){
            SYM_ERRBAR, DIM,
            conf_text(c, ppl ? "CI of the ratio to the baseline" : "Wilson CI", ct, sizeof ct)};
        if (a->baseline >= 0 && a->baseline < nc && ok[a->baseline])
            it[n++] = (struct legend_item){SYM_DASH, BASE_GREY, base_t};
        if (miss)
            it[n++] = (struct legend_item){SYM_NONE, INK, t};
        draw_legend(c, it, n);
    }
    if (!n_ok) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "memory or accuracy not measured");
        goto out;
    }

    if (mmax >= 1024.0 * 1024 * 1024)
        unit = 1024.0 * 1024 * 1024, uname = "GiB";
    else if (mmax >= 1024.0 * 1024)
        unit = 1024.0 * 1024, uname = "MiB";
    else
        unit = 1024.0, uname = "KiB";
    if (mmax / mmin > 10)
        axis_log(&xa, mmin / unit / 1.2, mmax / unit * 1.2, 1);
    else if (mmin > 0.5 * mmax) { /* within 2x: zoom in, else the points pile up */
        double pad = (mmax - mmin) / unit * 0.1 + mmax / unit * 0.01;
        axis_linear(&xa, mmin / unit - pad, mmax / unit + pad, 6);
    } else
        axis_linear(&xa, 0, mmax / unit * 1.04, 6);
    {
        double pad = (ymax - ymin) * 0.08 + (ppl ? 0.01 * ymax : 0.5);
        /* accuracies stay within 0..100%, perplexities above 0 */
        double y0 = ymin - pad < 0 && ymin >= 0 ? 0 : ymin - pad;
        axis_linear(&ya, y0, ymax + pad, 6);
        if (!ppl && ya.hi > 100 && ymax <= 100)
            axis_linear(&ya, y0, 100, 6);
    }

    double px0, px1, py0, py1;
    px0 = c->x0 + T_SUB * 1.4 + tick_labels_w(cr, &ya) + 6;
    px1 = c->x1 - 4;
    py0 = c->y0 + 2;
    py1 = c->y1 - (4 + T_SMALL * 1.3) - T_SUB * 1.6;
    if (py1 - py0 < 20 || px1 - px0 < 20) {
        draw_missing(cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    xa.p0 = px0;
    xa.p1 = px1;
    ya.p0 = py1;
    ya.p1 = py0;
    draw_yaxis(cr, &ya, px0, px1);
    draw_xaxis(cr, &xa, py0, py1);
    font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    snprintf(t, sizeof t, "memory, %s (%s)%s", uname,
             any_rss && any_w ? "peak RSS where measured, else weights"
             : any_rss        ? "peak RSS"
                              : "weights",
             xa.log ? ", log scale" : "");
    text_at(cr, (px0 + px1) / 2, c->y1, fit(cr, t, px1 - px0, b, sizeof b), HC, VB);
    snprintf(t, sizeof t, "%s", ppl ? "perplexity (lower is better)" : "accuracy, %");
    text_rot(cr, c->x0, (py0 + py1) / 2, -90, fit(cr, t, py1 - py0, b, sizeof b), HC, VT);
    if (c->sel || row != &a->overall) {
        font(cr, T_SMALL, 1);
        set_rgb(cr, INK);
        clean(row->name, b, sizeof b);
        snprintf(t, sizeof t, "slice: %s", b);
        text_at(cr, px1 - 3, py0 + 3, fit(cr, t, (px1 - px0) / 2, b, sizeof b), HR, VT);
        placed[n_placed++] = (struct rect){px1 - 3 - text_w(cr, b), py0, px1, py0 + 14};
    }

    /* baseline reference */
    if (a->baseline >= 0 && a->baseline < nc && ok[a->baseline]) {
        double y = amap(&ya, my[a->baseline]), d[] = {3, 3};
        cairo_save(cr);
        cairo_set_dash(cr, d, 2, 0);
        set_rgb(cr, BASE_GREY);
        cairo_set_line_width(cr, 0.8);
        cairo_move_to(cr, px0, y);
        cairo_line_to(cr, px1, y);
        cairo_stroke(cr);
        cairo_restore(cr);
    }
    /* frontier line through the frontier points in memory order */
    {
        int pen = 0;
        double lastx = -INFINITY;
        cairo_save(cr);
        set_rgba(cr, INK, 0.55);
        cairo_set_line_width(cr, 1.2);
        for (;;) { /* selection by memory, nc is small */
            int64_t best = -1;
            for (int64_t j = 0; j < nc; j++)
                if (front[j] && mx[j] > lastx && (best < 0 || mx[j] < mx[best]))
                    best = j;
            if (best < 0)
                break;
            lastx = mx[best];
            double x = amap(&xa, mx[best] / unit), y = amap(&ya, my[best]);
            if (pen)
                cairo_line_to(cr, x, y);
            else
                cairo_move_to(cr, x, y);
            pen = 1;
        }
        cairo_stroke(cr);
        cairo_restore(cr);
    }
    /* error bars and points */
    for (int64_t j = 0; j < nc; j++) {
        double x, y;
        struct rgb col = config_colour(a, j);
        if (!ok[j])
            continue;
        x = amap(&xa, mx[j] / unit);
        y = amap(&ya, my[j]);
        if (isfinite(lo[j]) && isfinite(hi[j])) {
            set_rgb(cr, ink_of(col));
            cairo_set_line_width(cr, 0.9);
            cairo_move_to(cr, x, amap(&ya, lo[j]));
            cairo_line_to(cr, x, amap(&ya, hi[j]));
            cairo_move_to(cr, x - 2.5, amap(&ya, lo[j]));
            cairo_line_to(cr, x + 2.5, amap(&ya, lo[j]));
            cairo_move_to(cr, x - 2.5, amap(&ya, hi[j]));
            cairo_line_to(cr, x + 2.5, amap(&ya, hi[j]));
            cairo_stroke(cr);
            placed[n_placed++] = (struct rect){x - 3, amap(&ya, hi[j]), x + 3, amap(&ya, lo[j])};
        }
        cairo_new_path(cr);
        cairo_arc(cr, x, y, 3.6, 0, 2 * M_PI);
        set_rgb(cr, front[j] ? col : WHITE);
        cairo_fill_preserve(cr);
        set_rgb(cr, front[j] ? INK : ink_of(col));
        cairo_set_line_width(cr, front[j] ? 0.6 : 1.5);
        cairo_stroke(cr);
        placed[n_placed++] = (struct rect){x - 4, y - 4, x + 4, y + 4};
    }
    /* labels beside the points: the spot (8 directions x 3 distances) that overlaps least
     * with points, bars and labels already placed; a leader line when it had to move away */
    font(cr, T_SMALL, 0);
    for (int64_t j = 0; j < nc; j++) {
        double x, y, w, hh = T_SMALL, best = INFINITY;
        struct rect pick = {0, 0, 0, 0};
        int far = 0;
        if (!ok[j])
            continue;
        x = amap(&xa, mx[j] / unit);
        y = amap(&ya, my[j]);
        fit(cr, a->configs[j].spec, 90, b, sizeof b);
        w = text_w(cr, b);
        for (int dist = 0; dist < 3; dist++) {
            double d = dist * 10;
            const double cand[8][2] = {{x + 6 + d, y - hh / 2},         {x - 6 - w - d, y - hh / 2},
                                       {x + 4 + d, y - 5 - hh - d},     {x + 4 + d, y + 5 + d},
                                       {x - 4 - w - d, y - 5 - hh - d}, {x - 4 - w - d, y + 5 + d},
                                       {x - w / 2, y - 7 - hh - d},     {x - w / 2, y + 7 + d}};
            for (int k = 0; k < 8; k++) {
                struct rect r = {cand[k][0], cand[k][1], cand[k][0] + w, cand[k][1] + hh};
                double cost = dist * 3 + k * 0.01;
                for (int i = 0; i < n_placed; i++) {
                    double ox = fmin(r.x1, placed[i].x1) - fmax(r.x0, placed[i].x0);
                    double oy = fmin(r.y1, placed[i].y1) - fmax(r.y0, placed[i].y0);
                    if (ox > 0 && oy > 0)
                        cost += ox * oy;
                }
                if (r.x0 < px0 || r.x1 > px1 || r.y0 < py0 || r.y1 > py1)
                    cost += 1e6;
                /* a label nearer another point than its own reads as that point's */
                double own = rect_dist(r, x, y);
                for (int64_t i = 0; i < nc; i++)
                    if (i != j && ok[i] &&
                        rect_dist(r, amap(&xa, mx[i] / unit), amap(&ya, my[i])) < own)
                        cost += 300;
                if (cost < best) {
                    best = cost;
                    pick = r;
                    far = dist > 0;
                }
            }
        }
        placed[n_placed++] = pick;
        if (far) {
            double lx = fmin(fmax(x, pick.x0), pick.x1), lyy = fmin(fmax(y, pick.y0), pick.y1);
            double dx = lx - x, dy = lyy - y, len = hypot(dx, dy);
            if (len > 5) {
                set_rgb(cr, FAINT);
                cairo_set_line_width(cr, 0.5);
                cairo_move_to(cr, x + dx / len * 4.5, y + dy / len * 4.5);
                cairo_line_to(cr, lx, lyy);
                cairo_stroke(cr);
            }
        }
        text_halo(cr, pick.x0, pick.y0 + hh / 2, b, HL, VM,
                  is_base(a, j) ? DIM : ink_of(config_colour(a, j)));
    }
out:
    free(mx);
    free(my);
    free(lo);
    free(hi);
    free(ok);
    free(front);
    free(placed);
    return 0;
}

/* ---- horizontal bar panels (latency, TTFT, KL/flips) --------------------------------------- */

/* One row per config, ladder order top to bottom. */
struct bars {
    double v50, v95; /* bar and whisker end; NAN = not measured */
    double lo, hi;   /* interval for dot panels */
    char label[160]; /* right of the whisker */
    const char *missing;
};

/* Draws config names in the left column for rows between y0 and y1. */
static void row_names(struct chart *c, double xr, double y0, double row_h)
{
    char b[NAME_B];
    cairo_t *cr = c->cr;
    font(cr, T_SUB, 0);
    for (int64_t j = 0; j < c->a->n_configs; j++) {
        double yc = y0 + (j + 0.5) * row_h;
        set_rgb(cr, config_colour(c->a, j));
        cairo_rectangle(cr, xr - 6, yc - 3, 5, 6);
        cairo_fill(cr);
        set_rgb(cr, is_base(c->a, j) ? DIM : INK);
        text_at(cr, xr - 9, yc, fit(cr, c->a->configs[j].spec, xr - 9 - c->x0, b, sizeof b), HR,
                VM);
    }
}

/* A panel of bars (dots when as_dots) from px0 to px1, rows from py0 at row_h; axis title
 * under it. The value axis leaves room for each row's label right of its whisker. */
static void bar_panel(struct chart *c, const struct bars *r, double px0, double px1, double py0,
                      double row_h, int log, int as_dots, const char *axis_title,
                      const char *panel_title, double ref)
{
    cairo_t *cr = c->cr;
    int64_t nc = c->a->n_configs;
    double vmax = 0, vmin = INFINITY, py1 = py0 + nc * row_h, wtot = px1 - px0, wb;
    struct axis xa;
    char b[LINE_B];
    int any = 0;

    if (panel_title) {
        font(cr, T_SUB, 1);
        set_rgb(cr, INK);
        text_at(cr, px0, py0 - 6, fit(cr, panel_title, px1 - px0, b, sizeof b), HL, VB);
    }
    for (int64_t j = 0; j < nc; j++) {
        double top = isfinite(r[j].v95) ? fmax(r[j].v95, r[j].v50) : r[j].v50;
        if (isfinite(r[j].hi))
            top = fmax(top, r[j].hi);
        if (!isfinite(r[j].v50) || (log && !(r[j].v50 > 0)))
            continue;
        any = 1;
        vmax = fmax(vmax, top);
        vmin = fmin(vmin, r[j].v50);
    }
    if (!any) {
        draw_missing(cr, px0, py0, px1, py1, "not measured");
        return;
    }
    if (log)
        axis_log(&xa, vmin, vmax, 0);
    else
        axis_linear(&xa, 0, vmax, 4);
    /* shrink the bar scale until every label fits right of its whisker */
    font(cr, T_SMALL, 0);
    wb = wtot;
    for (int64_t j = 0; j < nc; j++) {
        double top, f, lw;
        if (!isfinite(r[j].v50) || (log && !(r[j].v50 > 0)))
            continue;
        top = isfinite(r[j].v95) ? fmax(r[j].v95, r[j].v50) : r[j].v50;
        if (isfinite(r[j].hi))
            top = fmax(top, r[j].hi);
        lw = r[j].label[0] ? text_w(cr, r[j].label) + 5 : 0;
        f = log ? (log10(top) - log10(xa.lo)) / (log10(xa.hi) - log10(xa.lo)) : top / xa.hi;
        if (f > 0 && wb * f + lw > wtot)
            wb = (wtot - lw) / f;
    }
    wb = fmax(wb, 0.45 * wtot);
    xa.p0 = px0;
    xa.p1 = px0 + wb;
    draw_xaxis(cr, &xa, py0, py1);
    font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    text_at(cr, px0 + wb / 2, py1 + 4 + T_SMALL * 1.3 + 2,
            fit(cr, axis_title, px1 - px0, b, sizeof b), HC, VT);
    if (isfinite(ref) && (!log || ref > 0)) {
        double x = amap(&xa, ref), d[] = {3, 2};
        cairo_save(cr);
        cairo_set_dash(cr, d, 2, 0);
        set_rgb(cr, BASE_GREY);
        cairo_set_line_width(cr, 0.8);
        cairo_move_to(cr, x, py0 - 2);
        cairo_line_to(cr, x, py1);
        cairo_stroke(cr);
        cairo_restore(cr);
    }
    for (int64_t j = 0; j < nc; j++) {
        double yc = py0 + (j + 0.5) * row_h, bh = fmin(row_h * 0.62, 14), x50, x95, xr;
        struct rgb col = config_colour(c->a, j);
        if (!isfinite(r[j].v50) || (log && !(r[j].v50 > 0))) {
            font_italic(cr, T_SMALL);
            set_rgb(cr, FAINT);
            text_at(cr, px0 + 4, yc,
                    fit(cr, r[j].missing ? r[j].missing : "not measured", wtot - 4, b, sizeof b),
                    HL, VM);
            continue;
        }
        x50 = amap(&xa, r[j].v50);
        xr = x50;
        if (as_dots) {
            if (isfinite(r[j].lo) && isfinite(r[j].hi)) {
                double xl = amap(&xa, fmax(r[j].lo, log ? xa.lo : 0)), xh = amap(&xa, r[j].hi);
                set_rgb(cr, ink_of(col));
                cairo_set_line_width(cr, 1.1);
                cairo_move_to(cr, xl, yc);
                cairo_line_to(cr, xh, yc);
                cairo_move_to(cr, xl, yc - 2.5);
                cairo_line_to(cr, xl, yc + 2.5);
                cairo_move_to(cr, xh, yc - 2.5);
                cairo_line_to(cr, xh, yc + 2.5);
                cairo_stroke(cr);
                xr = fmax(xr, xh);
            }
            cairo_new_path(cr);
            cairo_arc(cr, x50, yc, 3.4, 0, 2 * M_PI);
            set_rgb(cr, col);
            cairo_fill_preserve(cr);
            set_rgb(cr, INK);
            cairo_set_line_width(cr, 0.6);
            cairo_stroke(cr);
            xr = fmax(xr, x50 + 3.4);
        } else {
            set_rgb(cr, col);
            cairo_rectangle(cr, px0, yc - bh / 2, x50 - px0, bh);
            cairo_fill(cr);
            if (isfinite(r[j].v95) && r[j].v95 > r[j].v50) {
                x95 = amap(&xa, r[j].v95);
                set_rgb(cr, INK);
                cairo_set_line_width(cr, 0.9);
                cairo_move_to(cr, x50, yc);
                cairo_line_to(cr, x95, yc);
                cairo_move_to(cr, x95, yc - bh * 0.35);
                cairo_line_to(cr, x95, yc + bh * 0.35);
                cairo_stroke(cr);
                xr = x95;
            }
        }
        if (r[j].label[0]) {
            font(cr, T_SMALL, 0);
            set_rgb(cr, INK);
            text_at(cr, xr + 4, yc, fit(cr, r[j].label, px1 - xr - 4, b, sizeof b), HL, VM);
        }
    }
}

/* Layout shared by the bar charts: the left name column and the rows. */
static int bar_layout(struct chart *c, double *name_r, double *py0, double *row_h, int titled)
{
    double names_w;
    int64_t nc = c->a->n_configs;
    font(c->cr, T_SUB, 0);
    names_w = config_names_w(c, 0.25 * c->w);
    *name_r = c->x0 + names_w + 10;
    *py0 = c->y0 + (titled ? T_SUB * 1.6 : 2);
    double bottom = c->y1 - (4 + T_SMALL * 1.3 + 2 + T_SUB * 1.3);
    *row_h = nc > 0 ? fmin((bottom - *py0) / nc, 24) : 0;
    return *row_h >= 4;
}

/* the latency setting a chart shows: the baseline's first, else the first measured */
static const struct qb_an_latency *ref_setting(const struct qb_analysis *a)
{
    if (a->baseline >= 0 && a->baseline < a->n_configs && a->configs[a->baseline].n_lat > 0 &&
        a->configs[a->baseline].lat)
        return &a->configs[a->baseline].lat[0];
    for (int64_t j = 0; j < a->n_configs; j++)
        if (a->configs[j].n_lat > 0 && a->configs[j].lat)
            return &a->configs[j].lat[0];
    return NULL;
}

static const struct qb_an_latency *find_lat(const struct qb_an_config *cf, int64_t prompt_len,
                                            int64_t gen_len, int64_t batch)
{
    const struct qb_an_latency *best = NULL;
    for (int64_t i = 0; cf->lat && i < cf->n_lat; i++) {
        const struct qb_an_latency *l = &cf->lat[i];
        if (l->prompt_len != prompt_len)
            continue;
        if ((gen_len < 0 || l->gen_len == gen_len) && (batch < 0 || l->batch == batch))
            return l;
        if (gen_len < 0 && (!best || l->batch < best->batch))
            best = l;
    }
    return best;
}

static int chart_latency(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    int64_t nc = a->n_configs;
    const struct qb_an_latency *ref = ref_setting(a);
    struct bars *r = NULL;
    double name_r, py0, row_h, base_tpot = NAN, base_tok = NAN;
    char t[LINE_B];

    if (nc <= 0 || !ref) {
        draw_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "latency not measured");
        return 0;
    }
    r = calloc((size_t)nc, sizeof *r);
    if (!r) {
        c->oom = 1;
        return 0;
    }
    if (a->baseline >= 0 && a->baseline < nc) {
        const struct qb_an_latency *l =
            find_lat(&a->configs[a->baseline], ref->prompt_len, ref->gen_len, ref->batch);
        if (l)
            base_tpot = l->tpot_p50, base_tok = l->decode_tok_s_p50;
    }
    for (int64_t j = 0; j < nc; j++) {
        const struct qb_an_latency *l =
            find_lat(&a->configs[j], ref->prompt_len, ref->gen_len, ref->batch);
        r[j].v50 = l ? l->tpot_p50 : NAN;
        r[j].v95 = l ? l->tpot_p95 : NAN;
        r[j].lo = r[j].hi = NAN;
        r[j].missing = a->configs[j].n_lat > 0 ? "not measured at this setting" : "not measured";
        if (!l || !isfinite(l->tpot_p50))
            continue;
        char ms[32], tok[32], sp[48] = "";
        fmt_sig(ms, sizeof ms, l->tpot_p50);
        fmt_num(tok, sizeof tok, l->decode_tok_s_p50, l->decode_tok_s_p50 < 10 ? 1 : 0, 0);
        double s = isfinite(l->speedup_tpot) ? l->speedup_tpot : base_tpot / l->tpot_p50;
        if (!is_base(a, j) && isfinite(s)) {
            snprintf(sp, sizeof sp, " \xC2\xB7 %.*f\xC3\x97", s < 10 ? 2 - (s >= 1) : 0, s);
        }
        if (isfinite(l->decode_tok_s_p50))
            snprintf(r[j].label, sizeof r[j].label, "%s ms \xC2\xB7 %s tok/s%s", ms, tok, sp);
        else
            snprintf(r[j].label, sizeof r[j].label, "%s ms%s", ms, sp);
    }
    (void)base_tok;
    snprintf(t, sizeof t,
             "prompt %lld tokens, %lld generated, batch %lld; labels: p50 ms per token \xC2\xB7 "
             "decode tokens/s \xC2\xB7 speed-up vs %s",
             (long long)ref->prompt_len, (long long)ref->gen_len, (long long)ref->batch,
             base_name(c));
    draw_note(c, t);
    {
        struct legend_item it[2] = {{SYM_NONE, INK, "bar: p50, whisker: p95"},
                                    {SYM_DASH, BASE_GREY, "baseline p50"}};
        draw_legend(c, it, isfinite(base_tpot) ? 2 : 1);
    }
    if (!bar_layout(c, &name_r, &py0, &row_h, 0)) {
        draw_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    row_names(c, name_r, py0, row_h);
    bar_panel(c, r, name_r + 2, c->x1, py0, row_h, 0, 0, "time per output token, ms", NULL,
              base_tpot);
out:
    free(r);
    return 0;
}

static int chart_ttft(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    int64_t nc = a->n_configs, lens[64], nl = 0, show[4];
    int ns = 0;
    struct bars *r = NULL;
    double name_r, py0, row_h, gapx = 14;
    char t[LINE_B], pt[64];

    for (int64_t j = 0; j < nc; j++)
        for (int64_t i = 0; a->configs[j].lat && i < a->configs[j].n_lat; i++) {
            int64_t p = a->configs[j].lat[i].prompt_len, k = 0;
            while (k < nl && lens[k] != p)
                k++;
            if (k == nl && nl < 64)
                lens[nl++] = p;
        }
    if (nc <= 0 || nl == 0) {
        draw_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "latency not measured");
        return 0;
    }
    for (int64_t i = 1; i < nl; i++) /* sort ascending */
        for (int64_t k = i; k > 0 && lens[k] < lens[k - 1]; k--) {
            int64_t tmp = lens[k];
            lens[k] = lens[k - 1];
            lens[k - 1] = tmp;
        }
    ns = nl < 4 ? (int)nl : 4; /* at most four panels, spread over the lengths */
    for (int i = 0; i < ns; i++)
        show[i] = lens[ns == 1 ? 0 : (int64_t)llround((double)i * (nl - 1) / (ns - 1))];
    r = calloc((size_t)nc, sizeof *r);
    if (!r) {
        c->oom = 1;
        return 0;
    }
    if (nl > ns)
        snprintf(t, sizeof t, "%d of %lld prompt lengths shown; bar: p50, whisker: p95", ns,
                 (long long)nl);
    else
        snprintf(t, sizeof t, "bar: p50, whisker: p95; label: p50 ms");
    {
        struct legend_item it[1] = {{SYM_NONE, INK, t}};
        draw_legend(c, it, 1);
    }
    if (!bar_layout(c, &name_r, &py0, &row_h, 1)) {
        draw_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    row_names(c, name_r, py0, row_h);
    double pw = (c->x1 - name_r - 2 - gapx * (ns - 1)) / ns;
    for (int p = 0; p < ns; p++) {
        double base = NAN;
        for (int64_t j = 0; j < nc; j++) {
            const struct qb_an_latency *l = find_lat(&a->configs[j], show[p], -1, -1);
            r[j].v50 = l ? l->ttft_p50 : NAN;
            r[j].v95 = l ? l->ttft_p95 : NAN;
            r[j].lo = r[j].hi = NAN;
            r[j].label[0] = 0;
            r[j].missing = "not measured";
            if (l && isfinite(l->ttft_p50))
                fmt_sig(r[j].label, sizeof r[j].label, l->ttft_p50);
            if (l && is_base(a, j))
                base = l->ttft_p50;
        }
        snprintf(pt, sizeof pt, "prompt %lld tokens", (long long)show[p]);
        double x0 = name_r + 2 + p * (pw + gapx);
        bar_panel(c, r, x0, x0 + pw, py0, row_h, 0, 0, "time to first token, ms", pt, base);
    }
out:
    free(r);
    return 0;
}

static int chart_kl_flips(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_slice *row = main_row(c);
    int64_t nc = a->n_configs;
    struct bars *r = NULL;
    double name_r, py0, row_h, gapx = 18, z = z_of(a->confidence);
    char t[LINE_B], b[NAME_B], kl_t[LINE_B], fl_t[LINE_B];

    if (nc <= 0 || !row || !row->cells) {
        draw_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "not measured");
        return 0;
    }
    r = calloc((size_t)nc, sizeof *r);
    if (!r) {
        c->oom = 1;
        return 0;
    }
    clean(row == &a->overall ? "all slices pooled" : row->name, b, sizeof b);
    snprintf(
        t, sizeof t,
        "%s%s. KL: mean over items of the per-token KL(%s \xE2\x80\x96 config). Flipped: items "
        "whose answer changed vs %s (lost + gained).",
        row == &a->overall ? "" : "Slice: ", b, base_name(c), base_name(c));
    if (row == &a->overall)
        t[0] = 'A';
    draw_note(c, t);
    if (!bar_layout(c, &name_r, &py0, &row_h, 1)) {
        draw_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    row_names(c, name_r, py0, row_h);
    double pw = (c->x1 - name_r - 2 - gapx) / 2, x0 = name_r + 2;
    for (int64_t j = 0; j < nc; j++) {
        const struct qb_an_cell *e = &row->cells[j];
        r[j].v50 = e->kl_mean;
        r[j].v95 = r[j].lo = r[j].hi = NAN;
        r[j].missing = is_base(a, j)     ? "baseline"
                       : e->kl_mean == 0 ? "0 (identical)"
                                         : "not measured";
        r[j].label[0] = 0;
        if (isfinite(e->kl_mean) && e->kl_mean > 0)
            fmt_sig(r[j].label, sizeof r[j].label, e->kl_mean);
    }
    snprintf(kl_t, sizeof kl_t, "mean KL, nats (log scale)");
    bar_panel(c, r, x0, x0 + pw, py0, row_h, 1, 0, kl_t, "KL divergence", NAN);
    for (int64_t j = 0; j < nc; j++) {
        const struct qb_an_cell *e = &row->cells[j];
        int64_t k = e->flips_lost + e->flips_gained;
        r[j].v50 = is_base(a, j) ? NAN : isfinite(e->flip_rate) ? e->flip_rate * 100 : NAN;
        r[j].v95 = NAN;
        wilson(k, e->n, z, &r[j].lo, &r[j].hi);
        r[j].lo *= 100;
        r[j].hi *= 100;
        r[j].missing = is_base(a, j) ? "baseline" : "not measured";
        r[j].label[0] = 0;
        if (isfinite(r[j].v50)) {
            char v[32];
            fmt_num(v, sizeof v, r[j].v50, r[j].v50 < 10 ? 1 : 0, 0);
            snprintf(r[j].label, sizeof r[j].label, "%s%%", v);
        }
    }
    snprintf(fl_t, sizeof fl_t, "answers flipped, %% (%.0f%% CI)",
             (a->confidence > 0 && a->confidence < 1 ? a->confidence : 0.95) * 100);
    x0 += pw + gapx;
    bar_panel(c, r, x0, x0 + pw, py0, row_h, 0, 1, fl_t, "Flipped answers", NAN);
out:
    free(r);
    return 0;
}

/* ---- raster and PNG ------------------------------------------------------------------------ */

struct membuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
};

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int len)
{
    struct membuf *m = closure;
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->n + len)
            cap *= 2;
        unsigned char *p = realloc(m->p, cap);
        if (!p) {
            m->oom = 1;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
    return CAIRO_STATUS_SUCCESS;
}

static int cairo_fail(cairo_status_t st, const char *what, enum qb_chart_kind k)
{
    if (st == CAIRO_STATUS_NO_MEMORY)
        return qb_err(QB_ENOMEM, "chart '%s': out of memory %s", qb_chart_kind_name(k), what);
    return qb_err(QB_EIO, "chart '%s': %s: %s", qb_chart_kind_name(k), what,
                  cairo_status_to_string(st));
}

/* Draws chart k on a fresh surface; *out owns it. */
static int render(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                  cairo_surface_t **out)
{
    struct qb_chart_opts def = QB_CHART_OPTS_INIT;
    struct chart c = {0};
    cairo_surface_t *sf = NULL;
    cairo_t *cr = NULL;
    cairo_font_options_t *fo = NULL;
    cairo_status_t st;
    double wpx, hpx;
    int rc = 0;

    *out = NULL;
    if (!o)
        o = &def;
    if (!a)
        return qb_err(QB_EINVAL, "chart: no analysis given");
    if ((int)k < 0 || k >= QB_CHART_N_KINDS)
        return qb_err(QB_EINVAL, "chart: unknown kind %d", (int)k);
    if (!(o->width_pt > 0) || !(o->height_pt > 0) || !(o->dpi > 0))
        return qb_err(QB_EINVAL, "chart '%s': size %g x %g pt at %g dpi is not positive",
                      kind_names[k], o->width_pt, o->height_pt, o->dpi);
    wpx = round(o->width_pt * o->dpi / 72);
    hpx = round(o->height_pt * o->dpi / 72);
    if (!(wpx >= 1 && hpx >= 1 && wpx <= MAX_PX && hpx <= MAX_PX))
        return qb_err(QB_EINVAL, "chart '%s': %g x %g pt at %g dpi is %.0f x %.0f pixels (1 to %d)",
                      kind_names[k], o->width_pt, o->height_pt, o->dpi, wpx, hpx, MAX_PX);
    if (a->n_configs < 0 || a->n_slices < 0 || (a->n_configs > 0 && !a->configs) ||
        (a->n_slices > 0 && !a->slices))
        return qb_err(QB_EINVAL, "chart '%s': malformed analysis", kind_names[k]);
    c.a = a;
    c.o = o;
    c.w = o->width_pt;
    c.h = o->height_pt;
    if (o->slice && (k == QB_CHART_LADDER || k == QB_CHART_ACC_MEMORY || k == QB_CHART_KL_FLIPS)) {
        for (int64_t i = 0; i < a->n_slices && !c.sel; i++)
            if (a->slices[i].name && strcmp(a->slices[i].name, o->slice) == 0)
                c.sel = &a->slices[i];
        if (!c.sel)
            return qb_err(QB_EINVAL, "chart '%s': no slice '%s' in the analysis", kind_names[k],
                          o->slice);
    }

    sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)wpx, (int)hpx);
    if ((st = cairo_surface_status(sf)) != CAIRO_STATUS_SUCCESS) {
        rc = cairo_fail(st, "creating the surface", k);
        goto fail;
    }
    cr = cairo_create(sf);
    if ((st = cairo_status(cr)) != CAIRO_STATUS_SUCCESS) {
        rc = cairo_fail(st, "creating the context", k);
        goto fail;
    }
    fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF); /* same layout at any dpi */
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
    cairo_scale(cr, wpx / o->width_pt, hpx / o->height_pt);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    c.cr = cr;
    draw_header(&c);
    switch (k) {
    case QB_CHART_HEATMAP: rc = chart_heatmap(&c); break;
    case QB_CHART_LADDER: rc = chart_ladder(&c); break;
    case QB_CHART_ACC_MEMORY: rc = chart_acc_memory(&c); break;
    case QB_CHART_LATENCY: rc = chart_latency(&c); break;
    case QB_CHART_TTFT: rc = chart_ttft(&c); break;
    case QB_CHART_KL_FLIPS: rc = chart_kl_flips(&c); break;
    default: break;
    }
    if (rc < 0)
        goto fail;
    if (c.oom) {
        rc = qb_err(QB_ENOMEM, "chart '%s': out of memory", kind_names[k]);
        goto fail;
    }
    if ((st = cairo_status(cr)) != CAIRO_STATUS_SUCCESS) {
        rc = cairo_fail(st, "drawing", k);
        goto fail;
    }
    cairo_destroy(cr);
    cairo_surface_flush(sf);
    *out = sf;
    return 0;
fail:
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    return rc;
}

int qb_chart_png(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                 unsigned char **png, size_t *n_png)
{
    cairo_surface_t *sf = NULL;
    struct membuf m = {0};
    cairo_status_t st;
    int rc;

    if (!png || !n_png)
        return qb_err(QB_EINVAL, "chart: no output given");
    *png = NULL;
    *n_png = 0;
    if ((rc = render(a, k, o, &sf)) < 0)
        return rc;
    st = cairo_surface_write_to_png_stream(sf, png_write, &m);
    cairo_surface_destroy(sf);
    if (m.oom || st == CAIRO_STATUS_NO_MEMORY) {
        free(m.p);
        return qb_err(QB_ENOMEM, "chart '%s': out of memory writing the png", kind_names[k]);
    }
    if (st != CAIRO_STATUS_SUCCESS) {
        free(m.p);
        return qb_err(QB_EIO, "chart '%s': cannot write the png: %s", kind_names[k],
                      cairo_status_to_string(st));
    }
    *png = m.p;
    *n_png = m.n;
    return 0;
}

int qb_chart_rgb(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                 unsigned char **rgb, int *width, int *height)
{
    cairo_surface_t *sf = NULL;
    unsigned char *px, *p;
    int w, h, stride, rc;

    if (!rgb || !width || !height)
        return qb_err(QB_EINVAL, "chart: no output given");
    *rgb = NULL;
    *width = *height = 0;
    if ((rc = render(a, k, o, &sf)) < 0)
        return rc;
    w = cairo_image_surface_get_width(sf);
    h = cairo_image_surface_get_height(sf);
    stride = cairo_image_surface_get_stride(sf);
    px = cairo_image_surface_get_data(sf);
    p = malloc((size_t)w * h * 3);
    if (!p) {
        cairo_surface_destroy(sf);
        return qb_err(QB_ENOMEM, "chart '%s': out of memory (%d x %d pixels)", kind_names[k], w, h);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v;
            memcpy(&v, px + (size_t)y * stride + (size_t)x * 4, 4); /* native-endian xRGB */
            p[((size_t)y * w + x) * 3 + 0] = v >> 16 & 255;
            p[((size_t)y * w + x) * 3 + 1] = v >> 8 & 255;
            p[((size_t)y * w + x) * 3 + 2] = v & 255;
        }
    cairo_surface_destroy(sf);
    *rgb = p;
    *width = w;
    *height = h;
    return 0;
}

void qb_chart_release_caches(void)
{
    void (*fc_fini)(void);

    cairo_debug_reset_static_data();
    /* then fontconfig's configuration, as Cairo's own test suite does; looked up at run time
     * because fontconfig is Cairo's dependency, not one this program links by name */
    *(void **)&fc_fini = dlsym(RTLD_DEFAULT, "FcFini");
    if (fc_fini)
        fc_fini();
}
