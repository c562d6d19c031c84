/* chart_ladder: QB_CHART_LADDER (output/chart.h), one line per slice of the accuracy change
 * (points) down the precision ladder with interval bars, the slices that break first coloured
 * (Paul Tol's "vibrant" scheme, SRON/EPS/TN/09-002, so a slice never looks like a config), the
 * others grey, tolerances dashed, names at the line ends. */
#include "output/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tol vibrant: red, blue, magenta, teal, orange, cyan */
static const struct rgb tol_vibrant[] = {HEX(0xCC3311), HEX(0x0077BB), HEX(0xEE3377),
                                         HEX(0x009988), HEX(0xEE7733), HEX(0x33BBEE)};

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

int chart_ladder(struct chart *c)
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
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
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
                chart_clean(s->name, b, sizeof b);
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
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
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
        chart_axis_linear(&ya, lo - pad, hi + pad, 6);
    }

    /* notes */
    {
        struct legend_item it[5];
        int n = 0;
        char ct[64];
        snprintf(t, sizeof t, "dashed: tolerance (the loss allowed%s)",
                 ntol > 1 ? ", per slice" : "");
        it[n++] = (struct legend_item){SYM_ERRBAR, DIM, chart_conf_text(c, "CI", ct, sizeof ct)};
        if (ntol > 0)
            it[n++] = (struct legend_item){SYM_DASH, DIM, t};
        if (ns > 1 && sr[ns - 1].dashed)
            it[n++] = (struct legend_item){SYM_DASH, INK, "overall: every item pooled"};
        if (any_gap)
            it[n++] = (struct legend_item){SYM_NONE, INK, "gaps: not measured"};
        if (missing[0])
            it[n++] = (struct legend_item){SYM_NONE, INK, missing};
        chart_legend(c, it, n);
    }

    /* layout: y tick labels + axis title on the left, direct labels on the right */
    for (int k = 0; k < ns; k++) {
        chart_font(cr, T_SUB, sr[k].strong && !sr[k].dashed && any_flag);
        label_w = fmax(label_w, chart_text_w(cr, chart_fit(cr, sr[k].name, 0.25 * c->w, b, sizeof b)));
    }
    px0 = c->x0 + T_SUB * 1.4 + chart_tick_labels_w(cr, &ya) + 6;
    px1 = c->x1 - label_w - 8;
    step = (px1 - px0) / nc;
    for (int64_t j = 0; j < nc; j++)
        xc[j] = px0 + (j + 0.5) * step;
    py0 = c->y0 + 2;
    py1 = c->y1 - chart_config_xlabels(c, xc, step, 0, 0) - T_SUB * 1.6;
    if (py1 - py0 < 20 || px1 - px0 < 20) {
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    ya.p0 = py1;
    ya.p1 = py0;
    chart_yaxis(cr, &ya, px0, px1);
    chart_config_xlabels(c, xc, step, py1, 1);
    chart_font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    snprintf(t, sizeof t, "change vs %s, points", chart_base_name(c));
    chart_text_rot(cr, c->x0, (py0 + py1) / 2, -90, chart_fit(cr, t, py1 - py0, b, sizeof b), HC, VT);
    chart_text(cr, (px0 + px1) / 2, c->y1, "config, most bits first", HC, VB);

    /* zero (the baseline) and tolerance lines */
    set_rgb(cr, RULE);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, px0, chart_amap(&ya, 0));
    cairo_line_to(cr, px1, chart_amap(&ya, 0));
    cairo_stroke(cr);
    {
        double ymin = INFINITY, ymax = -INFINITY;
        for (int q = 0; q < ntol; q++) {
            double y = chart_amap(&ya, -tols[q]), d[] = {4, 3};
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
                    cairo_line_to(cr, xc[j] + dodge, chart_amap(&ya, v));
                else
                    cairo_move_to(cr, xc[j] + dodge, chart_amap(&ya, v));
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
                    cairo_move_to(cr, x, chart_amap(&ya, e->delta_ci.lo * 100));
                    cairo_line_to(cr, x, chart_amap(&ya, e->delta_ci.hi * 100));
                    cairo_stroke(cr);
                }
                cairo_new_path(cr);
                cairo_arc(cr, x, chart_amap(&ya, v), sr[k].strong ? 2.2 : 1.7, 0, 2 * M_PI);
                set_rgb(cr, sr[k].col);
                cairo_fill(cr);
            }
        }

    if (ns == 1 && sr[0].s->cells) { /* one line: its values beside the points */
        chart_font(cr, T_SMALL, 0);
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
            chart_fmt_num(v, sizeof v, y, 1, 1);
            chart_text_halo(cr, xc[j] + 4, chart_amap(&ya, y) + (below ? 3 : -3), v, HL, below ? VT : VB,
                      chart_ink_of(sr[0].col));
        }
    }
    if (nc == 1) {
        chart_font_italic(cr, T_SUB);
        set_rgb(cr, DIM);
        chart_text(cr, (px0 + px1) / 2, (py0 + chart_amap(&ya, 0)) / 2, "only the baseline was measured", HC,
                VM);
    }

    /* tolerance labels: one per line when they are apart, else one for all */
    chart_font(cr, T_SMALL, 0);
    for (int q = 0; q < ntol; q++) {
        char v[32], v2[32];
        double y = chart_amap(&ya, -tols[q]);
        if (ntol > 1 && tol_y1 - tol_y0 < T_SMALL * 1.4) {
            double tmin = tols[0], tmax = tols[0];
            if (q > 0)
                break;
            for (int k = 1; k < ntol; k++)
                tmin = fmin(tmin, tols[k]), tmax = fmax(tmax, tols[k]);
            chart_fmt_num(v, sizeof v, -tmin, 1, 0);
            chart_fmt_num(v2, sizeof v2, -tmax, 1, 0);
            snprintf(t, sizeof t, "tolerance %s to %s, by slice", v, v2);
            y = tol_y1;
        } else if (ntol == 1) {
            chart_fmt_num(v, sizeof v, -tols[q], 1, 0);
            snprintf(t, sizeof t, "tolerance %s", v);
        } else {
            chart_fmt_num(v, sizeof v, -tols[q], 1, 0);
            int m = snprintf(t, sizeof t, "tolerance %s:", v);
            for (int k = 0; k < ns && m < (int)sizeof t - 1; k++)
                if (!sr[k].dashed && fabs(sr[k].s->tolerance - tols[q]) < 1e-6) {
                    chart_clean(sr[k].name, b, sizeof b);
                    m += snprintf(t + m, sizeof t - m, " %s", b);
                }
        }
        chart_text_halo(cr, px0 + step * 0.15, y + 2.5, chart_fit(cr, t, px1 - px0 - 6, b, sizeof b), HL, VT,
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
            ly[nl] = chart_amap(&ya, is_base(a, last) ? 0 : s->cells[last].delta * 100);
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
            chart_spread_labels(ly, order, nl, T_SUB * 1.2, py0 + 4, py1 - 4);
            for (int i = 0; i < nl; i++) {
                struct series *s = &sr[idx[i]];
                struct rgb tc = s->strong ? chart_ink_of(s->col) : DIM;
                if (fabs(ly[i] - y_orig[i]) > 1.5) {
                    set_rgba(cr, s->col, 0.7);
                    cairo_set_line_width(cr, 0.5);
                    cairo_move_to(cr, px1 - 0, y_orig[i]);
                    cairo_line_to(cr, lx - 2, ly[i]);
                    cairo_stroke(cr);
                }
                chart_font(cr, T_SUB, s->strong && !s->dashed && any_flag);
                chart_text_halo(cr, lx, ly[i], chart_fit(cr, s->name, c->x1 - lx, b, sizeof b), HL, VM, tc);
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

