/* chart_axis: the chart module's axes and ticks, page furniture (header, notes, "not measured"
 * areas, legends) and config labels (declared in output/chart_int.h). All in points. */
#include "output/chart/chart_int.h"

#include <math.h>

/* ---- axes ---------------------------------------------------------------------------------- */

double chart_amap(const struct axis *ax, double v)
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
void chart_axis_linear(struct axis *ax, double lo, double hi, int target)
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
void chart_axis_log(struct axis *ax, double lo, double hi, int tight)
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
    chart_fmt_num(b, n, v, dec < 0 ? 0 : dec > 6 ? 6 : dec, 0);
}

double chart_tick_labels_w(cairo_t *cr, const struct axis *ax)
{
    char b[64];
    double w = 0;
    chart_font(cr, T_SMALL, 0);
    for (int i = 0; i < ax->nt; i++) {
        fmt_tick(ax, ax->t[i], b, sizeof b);
        w = fmax(w, chart_text_w(cr, b));
    }
    return w;
}

/* Vertical value axis at x = xl with grid lines to xr; ticks labelled left of xl. */
void chart_yaxis(cairo_t *cr, const struct axis *ax, double xl, double xr)
{
    char b[64];
    chart_font(cr, T_SMALL, 0);
    cairo_set_line_width(cr, 0.5);
    for (int i = 0; i < ax->nt; i++) {
        double y = chart_amap(ax, ax->t[i]);
        set_rgb(cr, GRID);
        cairo_move_to(cr, xl, y);
        cairo_line_to(cr, xr, y);
        cairo_stroke(cr);
        set_rgb(cr, DIM);
        fmt_tick(ax, ax->t[i], b, sizeof b);
        chart_text(cr, xl - 4, y, b, HR, VM);
    }
}

/* Horizontal value axis: grid lines from yt to yb, tick labels under yb. */
void chart_xaxis(cairo_t *cr, const struct axis *ax, double yt, double yb)
{
    char b[64];
    double last_right = -1e9;
    chart_font(cr, T_SMALL, 0);
    cairo_set_line_width(cr, 0.5);
    for (int i = 0; i < ax->nt; i++) {
        double x = chart_amap(ax, ax->t[i]), w;
        set_rgb(cr, GRID);
        cairo_move_to(cr, x, yt);
        cairo_line_to(cr, x, yb);
        cairo_stroke(cr);
        fmt_tick(ax, ax->t[i], b, sizeof b);
        w = chart_text_w(cr, b);
        if (x - w / 2 < last_right + 4) /* crowded: skip this label, keep the grid line */
            continue;
        set_rgb(cr, DIM);
        chart_text(cr, x, yb + 3, b, HC, VT);
        last_right = x + w / 2;
    }
    set_rgb(cr, RULE);
    cairo_set_line_width(cr, 0.8);
    cairo_move_to(cr, ax->p0, yb);
    cairo_line_to(cr, ax->p1, yb);
    cairo_stroke(cr);
}

/* ---- page furniture ------------------------------------------------------------------------ */

void chart_header(struct chart *c)
{
    char lines[2][LINE_B];
    double y = MARGIN, maxw = c->w - 2 * MARGIN;
    cairo_t *cr = c->cr;

    if (c->o->title && *c->o->title) {
        chart_font(cr, T_TITLE, 1);
        set_rgb(cr, INK);
        int n = chart_wrap(cr, c->o->title, maxw, 2, lines);
        for (int i = 0; i < n; i++, y += T_TITLE * 1.3)
            chart_text(cr, MARGIN, y, lines[i], HL, VT);
        y += 1;
    }
    if (c->o->subtitle && *c->o->subtitle) {
        chart_font(cr, T_SUB, 0);
        set_rgb(cr, DIM);
        int n = chart_wrap(cr, c->o->subtitle, maxw, 2, lines);
        for (int i = 0; i < n; i++, y += T_SUB * 1.35)
            chart_text(cr, MARGIN, y, lines[i], HL, VT);
    }
    c->y0 = y + 8;
    c->x0 = MARGIN;
    c->x1 = c->w - MARGIN;
    c->y1 = c->h - MARGIN;
}

/* A grey note under the plot (wrapped to 2 lines), taking its height from c->y1. */
void chart_note(struct chart *c, const char *s)
{
    char lines[2][LINE_B];
    cairo_t *cr = c->cr;
    chart_font(cr, T_SMALL, 0);
    int n = chart_wrap(cr, s, c->x1 - c->x0, 2, lines);
    c->y1 -= n * T_SMALL * 1.3;
    set_rgb(cr, DIM);
    for (int i = 0; i < n; i++)
        chart_text(cr, c->x0, c->y1 + i * T_SMALL * 1.3 + 2, lines[i], HL, VT);
    c->y1 -= 4;
}

/* An empty plot area that says why. */
void chart_missing(cairo_t *cr, double x0, double y0, double x1, double y1, const char *msg)
{
    char b[LINE_B];
    if (x1 - x0 < 4 || y1 - y0 < 4)
        return;
    set_rgb(cr, NA_FILL);
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_fill(cr);
    chart_font_italic(cr, T_SUB);
    set_rgb(cr, DIM);
    chart_text(cr, (x0 + x1) / 2, (y0 + y1) / 2, chart_fit(cr, msg, x1 - x0 - 8, b, sizeof b), HC,
               VM);
}

/* Legend entries laid out left to right, wrapped; drawn at the bottom (above what is there). */
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

void chart_legend(struct chart *c, const struct legend_item *it, int n)
{
    cairo_t *cr = c->cr;
    double lh = T_SMALL * 1.6, x, avail = c->x1 - c->x0;
    int nlines = 1, line;
    char b[LINE_B];

    if (n <= 0)
        return;
    chart_font(cr, T_SMALL, 0);
    /* pass 0 counts lines, pass 1 draws */
    for (int pass = 0; pass < 2; pass++) {
        double ytop = c->y1 - nlines * lh;
        x = c->x0;
        line = 0;
        for (int i = 0; i < n; i++) {
            double sw = it[i].sym ? 15 : 0;
            double tw = chart_text_w(cr, chart_fit(cr, it[i].text, avail - sw, b, sizeof b));
            if (x > c->x0 && x + sw + tw > c->x1) {
                line++;
                x = c->x0;
            }
            if (pass == 1) {
                double ym = ytop + line * lh + lh / 2;
                if (it[i].sym)
                    draw_symbol(cr, it[i].sym, it[i].col, x, ym);
                set_rgb(cr, DIM);
                chart_text(cr, x + sw, ym, b, HL, VM);
            }
            x += sw + tw + 12;
        }
        nlines = line + 1;
    }
    c->y1 -= nlines * lh + 4;
}

/* ---- config labels -------------------------------------------------------------------------- */

/* Width of the widest config name at the current font, capped. */
double chart_config_names_w(struct chart *c, double cap)
{
    char b[NAME_B];
    double w = 0;
    for (int64_t j = 0; j < c->a->n_configs; j++)
        w = fmax(w, chart_text_w(c->cr, chart_fit(c->cr, c->a->configs[j].spec, cap, b, sizeof b)));
    return w;
}

void chart_spread_labels(double *y, const int *order, int n, double gap, double lo, double hi)
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
double chart_config_xlabels(struct chart *c, const double *xc, double step, double y, int draw)
{
    cairo_t *cr = c->cr;
    char b[NAME_B];
    const double cap = 80, ang = 40 * M_PI / 180;
    double wmax;
    int64_t n = c->a->n_configs;

    chart_font(cr, T_SMALL, 0);
    wmax = chart_config_names_w(c, cap);
    if (wmax <= step - 4) {
        if (draw)
            for (int64_t j = 0; j < n; j++) {
                set_rgb(cr, is_base(c->a, j) ? DIM : INK);
                chart_text(cr, xc[j], y + 4,
                           chart_fit(cr, c->a->configs[j].spec, step - 2, b, sizeof b), HC, VT);
            }
        return 4 + T_SMALL * 1.25;
    }
    if (draw)
        for (int64_t j = 0; j < n; j++) {
            double room = fmin(cap, (xc[j] - 2) / cos(ang));
            set_rgb(cr, is_base(c->a, j) ? DIM : INK);
            /* the label ends at the tick and runs down to the left */
            chart_text_rot(cr, xc[j] + 3, y + 5, -40,
                           chart_fit(cr, c->a->configs[j].spec, room, b, sizeof b), HR, VT);
        }
    return 6 + wmax * sin(ang) + T_SMALL * cos(ang) + 2;
}
