/* chart_ladder: QB_CHART_LADDER (output/chart.h), one line per slice of the accuracy change
 * (points) down the precision ladder with interval bars, the slices that break first coloured
 * (Paul Tol's "vibrant" scheme, SRON/EPS/TN/09-002, so a slice never looks like a config), the
 * others grey, tolerances dashed, names at the line ends. */
#include "output/chart/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Tol vibrant: red, blue, magenta, teal, orange, cyan */
static const struct rgb tol_vibrant[] = {HEX(0xCC3311), HEX(0x0077BB), HEX(0xEE3377),
                                         HEX(0x009988), HEX(0xEE7733), HEX(0x33BBEE)};

/* One line: a slice, or the overall row (dashed). */
struct series {
    const struct qb_an_slice *s;
    const char *name;
    struct rgb col;
    int strong, dashed; /* strong: coloured and drawn on top; dashed: the overall row */
};

/* What the ladder's phases share; coordinates in points. */
struct ladder {
    struct chart *c;
    int64_t nc;        /* configs: the x axis */
    struct series *sr; /* the lines drawn */
    int ns;
    int any_flag;         /* some slices coloured, the others grey */
    int any_gap;          /* a point is not measured */
    char missing[LINE_B]; /* "not measured: a, b": slices without a point */
    double tols[8];       /* distinct tolerances, points */
    int ntol;
    struct axis ya;                  /* change vs the baseline, points */
    double *xc;                      /* config centres */
    double px0, px1, py0, py1, step; /* plot area; step: between configs */
    double tol_y0, tol_y1;           /* extent of the tolerance lines */
    double *ly;                      /* end labels: y, and their order top to bottom */
    int *order;
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

/* The lines: colour goes to the slices that break first down the ladder (the finding); the
 * others are grey. When none breaks, or all break at once, every slice gets a colour. Slices
 * with nothing but the baseline are listed under the chart instead; the overall row last. */
static void ladder_series(struct ladder *L)
{
    struct chart *c = L->c;
    const struct qb_analysis *a = c->a;
    int64_t nc = L->nc, first = nc;
    int n_first = 0, n_sel = 0, k = 0, m = 0;
    char b[NAME_B];

    for (int64_t i = 0; i < a->n_slices; i++)
        if (!c->sel || c->sel == &a->slices[i]) {
            int64_t f = first_loss(a, &a->slices[i]);
            n_sel++;
            if (f < first)
                first = f, n_first = 0;
            n_first += f == first;
        }
    L->any_flag = first < nc && n_first < n_sel;
    for (int64_t i = 0; i < a->n_slices; i++) {
        const struct qb_an_slice *s = &a->slices[i];
        struct series *sr = &L->sr[L->ns];
        int has = nc == 1;
        if (c->sel && c->sel != s)
            continue;
        for (int64_t j = 0; s->cells && j < nc; j++)
            has |= !is_base(a, j) && isfinite(s->cells[j].delta);
        if (!has) { /* nothing but the baseline: listed under the chart, not drawn */
            chart_clean(s->name, b, sizeof b);
            if (m < (int)sizeof L->missing - 1)
                m += snprintf(L->missing + m, sizeof L->missing - m, "%s%s",
                              m ? ", " : "not measured: ", b);
            continue;
        }
        sr->s = s;
        sr->name = s->name;
        sr->strong = !L->any_flag || first_loss(a, s) == first;
        sr->col = sr->strong ? tol_vibrant[k++ % 6] : WEAK;
        L->ns++;
    }
    if (!c->sel && a->overall.cells && a->n_slices != 1)
        L->sr[L->ns++] = (struct series){&a->overall, "overall", INK, 1, 1};
}

/* The y axis: every change and interval, zero, and each slice's tolerance (kept, distinct, in
 * tols), padded. */
static void ladder_range(struct ladder *L)
{
    const struct qb_analysis *a = L->c->a;
    double lo = 0, hi = 0;

    for (int k = 0; k < L->ns; k++) {
        const struct qb_an_slice *s = L->sr[k].s;
        for (int64_t j = 0; s->cells && j < L->nc; j++) {
            const struct qb_an_cell *e = &s->cells[j];
            if (is_base(a, j))
                continue;
            if (!isfinite(e->delta)) {
                L->any_gap = 1;
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
            L->any_gap = 1;
        if (isfinite(s->tolerance) && s->tolerance > 0 && !L->sr[k].dashed) {
            int seen = 0;
            for (int q = 0; q < L->ntol; q++)
                seen |= fabs(L->tols[q] - s->tolerance) < 1e-6;
            if (!seen && L->ntol < 8)
                L->tols[L->ntol++] = s->tolerance;
            lo = fmin(lo, -s->tolerance);
        }
    }
    double pad = (hi - lo) * 0.06 + 0.2;
    chart_axis_linear(&L->ya, lo - pad, hi + pad, 6);
}

/* The notes under the chart: intervals, tolerances, the overall row, gaps, slices left out. */
static void ladder_legend(struct ladder *L)
{
    struct legend_item it[5];
    int n = 0;
    char ct[64], t[LINE_B];

    snprintf(t, sizeof t, "dashed: tolerance (the loss allowed%s)",
             L->ntol > 1 ? ", per slice" : "");
    it[n++] = (struct legend_item){SYM_ERRBAR, DIM, chart_conf_text(L->c, "CI", ct, sizeof ct)};
    if (L->ntol > 0)
        it[n++] = (struct legend_item){SYM_DASH, DIM, t};
    if (L->ns > 1 && L->sr[L->ns - 1].dashed)
        it[n++] = (struct legend_item){SYM_DASH, INK, "overall: every item pooled"};
    if (L->any_gap)
        it[n++] = (struct legend_item){SYM_NONE, INK, "gaps: not measured"};
    if (L->missing[0])
        it[n++] = (struct legend_item){SYM_NONE, INK, L->missing};
    chart_legend(L->c, it, n);
}

/* y tick labels and the axis title on the left, direct labels on the right, config names
 * underneath. 0 when too small to draw. */
static int ladder_layout(struct ladder *L)
{
    struct chart *c = L->c;
    cairo_t *cr = c->cr;
    double label_w = 0;
    char b[NAME_B];

    for (int k = 0; k < L->ns; k++) {
        const struct series *sr = &L->sr[k];
        chart_font(cr, T_SUB, sr->strong && !sr->dashed && L->any_flag);
        label_w =
            fmax(label_w, chart_text_w(cr, chart_fit(cr, sr->name, 0.25 * c->w, b, sizeof b)));
    }
    L->px0 = c->x0 + T_SUB * 1.4 + chart_tick_labels_w(cr, &L->ya) + 6;
    L->px1 = c->x1 - label_w - 8;
    L->step = (L->px1 - L->px0) / L->nc;
    for (int64_t j = 0; j < L->nc; j++)
        L->xc[j] = L->px0 + (j + 0.5) * L->step;
    L->py0 = c->y0 + 2;
    L->py1 = c->y1 - chart_config_xlabels(c, L->xc, L->step, 0, 0) - T_SUB * 1.6;
    return !(L->py1 - L->py0 < 20 || L->px1 - L->px0 < 20);
}

/* The y axis with its title, config names under the plot, the x axis title. */
static void ladder_axes(struct ladder *L)
{
    struct chart *c = L->c;
    cairo_t *cr = c->cr;
    char b[NAME_B], t[LINE_B];

    L->ya.p0 = L->py1;
    L->ya.p1 = L->py0;
    chart_yaxis(cr, &L->ya, L->px0, L->px1);
    chart_config_xlabels(c, L->xc, L->step, L->py1, 1);
    chart_font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    snprintf(t, sizeof t, "change vs %s, points", chart_base_name(c));
    chart_text_rot(cr, c->x0, (L->py0 + L->py1) / 2, -90,
                   chart_fit(cr, t, L->py1 - L->py0, b, sizeof b), HC, VT);
    chart_text(cr, (L->px0 + L->px1) / 2, c->y1, "config, most bits first", HC, VB);
}

/* Zero (the baseline) and the tolerance lines, dashed; their labels come last, on top. */
static void ladder_ref_lines(struct ladder *L)
{
    cairo_t *cr = L->c->cr;
    double ymin = INFINITY, ymax = -INFINITY;

    set_rgb(cr, RULE);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, L->px0, chart_amap(&L->ya, 0));
    cairo_line_to(cr, L->px1, chart_amap(&L->ya, 0));
    cairo_stroke(cr);
    for (int q = 0; q < L->ntol; q++) {
        double y = chart_amap(&L->ya, -L->tols[q]);
        ymin = fmin(ymin, y);
        ymax = fmax(ymax, y);
        chart_dashed(cr, L->px0, y, L->px1, y, 4, 3, DIM);
    }
    L->tol_y0 = ymin;
    L->tol_y1 = ymax;
}

/* Series k: its line (broken where a point is missing), then interval bars and markers, all
 * dodged sideways a little so that lines on the same values stay apart. */
static void ladder_line(struct ladder *L, int k)
{
    const struct qb_analysis *a = L->c->a;
    cairo_t *cr = L->c->cr;
    const struct series *sr = &L->sr[k];
    const struct qb_an_slice *s = sr->s;
    double dodge = (k - (L->ns - 1) / 2.0) * fmin(3, L->step * 0.5 / L->ns);
    int pen = 0;

    cairo_save(cr);
    if (sr->dashed) {
        double d[] = {4, 2};
        cairo_set_dash(cr, d, 2, 0);
    }
    set_rgb(cr, sr->col);
    cairo_set_line_width(cr, sr->strong ? 1.6 : 1.0);
    for (int64_t j = 0; j < L->nc; j++) {
        double v = is_base(a, j) ? 0 : s->cells[j].delta * 100;
        if (!isfinite(v)) {
            pen = 0;
            continue;
        }
        if (pen)
            cairo_line_to(cr, L->xc[j] + dodge, chart_amap(&L->ya, v));
        else
            cairo_move_to(cr, L->xc[j] + dodge, chart_amap(&L->ya, v));
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_restore(cr);
    for (int64_t j = 0; j < L->nc; j++) {
        const struct qb_an_cell *e = &s->cells[j];
        double v = is_base(a, j) ? 0 : e->delta * 100, x = L->xc[j] + dodge;
        if (!isfinite(v))
            continue;
        if (!is_base(a, j) && isfinite(e->delta_ci.lo) && isfinite(e->delta_ci.hi)) {
            set_rgba(cr, sr->col, sr->strong ? 0.8 : 0.6);
            cairo_set_line_width(cr, 0.9);
            cairo_move_to(cr, x, chart_amap(&L->ya, e->delta_ci.lo * 100));
            cairo_line_to(cr, x, chart_amap(&L->ya, e->delta_ci.hi * 100));
            cairo_stroke(cr);
        }
        cairo_new_path(cr);
        cairo_arc(cr, x, chart_amap(&L->ya, v), sr->strong ? 2.2 : 1.7, 0, 2 * M_PI);
        set_rgb(cr, sr->col);
        cairo_fill(cr);
    }
}

/* One line: its values beside the points, above each unless its neighbours are higher on
 * average (then below). */
static void ladder_values(struct ladder *L)
{
    const struct qb_analysis *a = L->c->a;
    cairo_t *cr = L->c->cr;
    const struct series *sr = &L->sr[0];

    chart_font(cr, T_SMALL, 0);
    for (int64_t j = 0; j < L->nc; j++) {
        const struct qb_an_cell *e = &sr->s->cells[j];
        char v[32];
        if (is_base(a, j) || !isfinite(e->delta))
            continue;
        double nb = 0, y = e->delta * 100;
        int nn = 0;
        for (int64_t q = j - 1; q <= j + 1; q += 2)
            if (q >= 0 && q < L->nc) {
                double u = is_base(a, q) ? 0 : sr->s->cells[q].delta * 100;
                if (isfinite(u))
                    nb += u, nn++;
            }
        int below = nn > 0 && nb / nn > y;
        chart_fmt_num(v, sizeof v, y, 1, 1);
        chart_text_halo(cr, L->xc[j] + 4, chart_amap(&L->ya, y) + (below ? 3 : -3), v, HL,
                        below ? VT : VB, chart_ink_of(sr->col));
    }
}

/* The label of tolerance line q into t (n bytes); *y moves to the lowest line when one label
 * stands for all. 0 when line q needs no label of its own. */
static int ladder_tol_text(const struct ladder *L, int q, char *t, size_t n, double *y)
{
    char v[32], v2[32], b[NAME_B];

    if (L->ntol > 1 && L->tol_y1 - L->tol_y0 < T_SMALL * 1.4) { /* too close: one for all */
        double tmin = L->tols[0], tmax = L->tols[0];
        if (q > 0)
            return 0;
        for (int k = 1; k < L->ntol; k++)
            tmin = fmin(tmin, L->tols[k]), tmax = fmax(tmax, L->tols[k]);
        chart_fmt_num(v, sizeof v, -tmin, 1, 0);
        chart_fmt_num(v2, sizeof v2, -tmax, 1, 0);
        snprintf(t, n, "tolerance %s to %s, by slice", v, v2);
        *y = L->tol_y1;
    } else if (L->ntol == 1) {
        chart_fmt_num(v, sizeof v, -L->tols[q], 1, 0);
        snprintf(t, n, "tolerance %s", v);
    } else { /* one per line, naming its slices */
        chart_fmt_num(v, sizeof v, -L->tols[q], 1, 0);
        int m = snprintf(t, n, "tolerance %s:", v);
        for (int k = 0; k < L->ns && m < (int)n - 1; k++)
            if (!L->sr[k].dashed && fabs(L->sr[k].s->tolerance - L->tols[q]) < 1e-6) {
                chart_clean(L->sr[k].name, b, sizeof b);
                m += snprintf(t + m, n - m, " %s", b);
            }
    }
    return 1;
}

/* Tolerance labels, with a halo over the lines: one per line when they are apart, else one for
 * all. */
static void ladder_tol_labels(struct ladder *L)
{
    cairo_t *cr = L->c->cr;
    char t[LINE_B], b[NAME_B];

    chart_font(cr, T_SMALL, 0);
    for (int q = 0; q < L->ntol; q++) {
        double y = chart_amap(&L->ya, -L->tols[q]);
        if (!ladder_tol_text(L, q, t, sizeof t, &y))
            break;
        chart_text_halo(cr, L->px0 + L->step * 0.15, y + 2.5,
                        chart_fit(cr, t, L->px1 - L->px0 - 6, b, sizeof b), HL, VT, DIM);
    }
}

/* Names at the line ends, moved apart where they would overlap (with a leader line then). */
static void ladder_end_labels(struct ladder *L)
{
    struct chart *c = L->c;
    const struct qb_analysis *a = c->a;
    cairo_t *cr = c->cr;
    double *ly = L->ly, lx = L->px1 + 6, y_orig[64];
    int *order = L->order, nl = 0, idx[64];
    char b[NAME_B];

    for (int k = 0; k < L->ns && nl < 64; k++) {
        const struct qb_an_slice *s = L->sr[k].s;
        int64_t last = -1;
        for (int64_t j = 0; s->cells && j < L->nc; j++)
            if (is_base(a, j) || isfinite(s->cells[j].delta))
                last = j;
        if (last < 0)
            continue;
        ly[nl] = chart_amap(&L->ya, is_base(a, last) ? 0 : s->cells[last].delta * 100);
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
    for (int i = 0; i < nl; i++)
        y_orig[i] = ly[i];
    chart_spread_labels(ly, order, nl, T_SUB * 1.2, L->py0 + 4, L->py1 - 4);
    for (int i = 0; i < nl; i++) {
        const struct series *s = &L->sr[idx[i]];
        struct rgb tc = s->strong ? chart_ink_of(s->col) : DIM;
        if (fabs(ly[i] - y_orig[i]) > 1.5) {
            set_rgba(cr, s->col, 0.7);
            cairo_set_line_width(cr, 0.5);
            cairo_move_to(cr, L->px1 - 0, y_orig[i]);
            cairo_line_to(cr, lx - 2, ly[i]);
            cairo_stroke(cr);
        }
        chart_font(cr, T_SUB, s->strong && !s->dashed && L->any_flag);
        chart_text_halo(cr, lx, ly[i], chart_fit(cr, s->name, c->x1 - lx, b, sizeof b), HL, VM, tc);
    }
}

int chart_ladder(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    struct ladder L = {.c = c, .nc = a->n_configs};

    if (L.nc <= 0 || (a->n_slices == 0 && !a->overall.cells)) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        return 0;
    }
    L.sr = calloc((size_t)a->n_slices + 1, sizeof *L.sr);
    L.xc = calloc((size_t)L.nc, sizeof *L.xc);
    L.ly = calloc((size_t)a->n_slices + 1, sizeof *L.ly);
    L.order = calloc((size_t)a->n_slices + 1, sizeof *L.order);
    if (!L.sr || !L.xc || !L.ly || !L.order) {
        c->oom = 1;
        goto out;
    }
    ladder_series(&L);
    if (L.ns == 0) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        goto out;
    }
    ladder_range(&L);
    ladder_legend(&L);
    if (!ladder_layout(&L)) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    ladder_axes(&L);
    ladder_ref_lines(&L);
    for (int pass = 0; pass < 2; pass++) /* weak series first, strong on top */
        for (int k = 0; k < L.ns; k++)
            if (L.sr[k].strong == pass && L.sr[k].s->cells)
                ladder_line(&L, k);
    if (L.ns == 1 && L.sr[0].s->cells)
        ladder_values(&L);
    if (L.nc == 1) {
        chart_font_italic(c->cr, T_SUB);
        set_rgb(c->cr, DIM);
        chart_text(c->cr, (L.px0 + L.px1) / 2, (L.py0 + chart_amap(&L.ya, 0)) / 2,
                   "only the baseline was measured", HC, VM);
    }
    ladder_tol_labels(&L);
    ladder_end_labels(&L);
out:
    free(L.sr);
    free(L.xc);
    free(L.ly);
    free(L.order);
    return 0;
}
