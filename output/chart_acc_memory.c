/* chart_acc_memory: QB_CHART_ACC_MEMORY (output/chart.h), accuracy (or perplexity) against
 * memory per config, with intervals; the Pareto frontier filled and joined by a line, the
 * dominated configs hollow; each label placed where it overlaps least. */
#include "output/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- accuracy vs memory -------------------------------------------------------------------- */

struct rect {
    double x0, y0, x1, y1;
};

static double rect_dist(struct rect r, double x, double y)
{
    double dx = fmax(fmax(r.x0 - x, x - r.x1), 0), dy = fmax(fmax(r.y0 - y, y - r.y1), 0);
    return hypot(dx, dy);
}

int chart_acc_memory(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    cairo_t *cr = c->cr;
    const struct qb_an_slice *row = chart_main_row(c);
    int64_t nc = a->n_configs;
    double *mx = NULL, *my = NULL, *lo = NULL, *hi = NULL, unit = 1;
    int *ok = NULL, *front = NULL, n_ok = 0, n_front = 0, ppl, any_rss = 0, any_w = 0;
    struct rect *placed = NULL;
    int n_placed = 0;
    struct axis xa, ya;
    char b[NAME_B], t[LINE_B];
    const char *uname = "GiB";

    if (nc <= 0 || !row || !row->cells) {
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
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
                chart_clean(a->configs[j].spec, b, sizeof b);
                m += snprintf(t + m, sizeof t - m, "%s%s", miss++ ? ", " : "", b);
            }
        struct legend_item it[5];
        int n = 0;
        char base_t[LINE_B], ct[64];
        snprintf(base_t, sizeof base_t, "%s", chart_base_name(c));
        it[n++] = (struct legend_item){SYM_DOT, FAINT, "on the Pareto frontier (line)"};
        it[n++] = (struct legend_item){SYM_HOLLOW, FAINT, "dominated"};
        it[n++] = (struct legend_item){
            SYM_ERRBAR, DIM,
            chart_conf_text(c, ppl ? "CI of the ratio to the baseline" : "Wilson CI", ct, sizeof ct)};
        if (a->baseline >= 0 && a->baseline < nc && ok[a->baseline])
            it[n++] = (struct legend_item){SYM_DASH, BASE_GREY, base_t};
        if (miss)
            it[n++] = (struct legend_item){SYM_NONE, INK, t};
        chart_legend(c, it, n);
    }
    if (!n_ok) {
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "memory or accuracy not measured");
        goto out;
    }

    if (mmax >= 1024.0 * 1024 * 1024)
        unit = 1024.0 * 1024 * 1024, uname = "GiB";
    else if (mmax >= 1024.0 * 1024)
        unit = 1024.0 * 1024, uname = "MiB";
    else
        unit = 1024.0, uname = "KiB";
    if (mmax / mmin > 10)
        chart_axis_log(&xa, mmin / unit / 1.2, mmax / unit * 1.2, 1);
    else if (mmin > 0.5 * mmax) { /* within 2x: zoom in, else the points pile up */
        double pad = (mmax - mmin) / unit * 0.1 + mmax / unit * 0.01;
        chart_axis_linear(&xa, mmin / unit - pad, mmax / unit + pad, 6);
    } else
        chart_axis_linear(&xa, 0, mmax / unit * 1.04, 6);
    {
        double pad = (ymax - ymin) * 0.08 + (ppl ? 0.01 * ymax : 0.5);
        /* accuracies stay within 0..100%, perplexities above 0 */
        double y0 = ymin - pad < 0 && ymin >= 0 ? 0 : ymin - pad;
        chart_axis_linear(&ya, y0, ymax + pad, 6);
        if (!ppl && ya.hi > 100 && ymax <= 100)
            chart_axis_linear(&ya, y0, 100, 6);
    }

    double px0, px1, py0, py1;
    px0 = c->x0 + T_SUB * 1.4 + chart_tick_labels_w(cr, &ya) + 6;
    px1 = c->x1 - 4;
    py0 = c->y0 + 2;
    py1 = c->y1 - (4 + T_SMALL * 1.3) - T_SUB * 1.6;
    if (py1 - py0 < 20 || px1 - px0 < 20) {
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    xa.p0 = px0;
    xa.p1 = px1;
    ya.p0 = py1;
    ya.p1 = py0;
    chart_yaxis(cr, &ya, px0, px1);
    chart_xaxis(cr, &xa, py0, py1);
    chart_font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    snprintf(t, sizeof t, "memory, %s (%s)%s", uname,
             any_rss && any_w ? "peak RSS where measured, else weights"
             : any_rss        ? "peak RSS"
                              : "weights",
             xa.log ? ", log scale" : "");
    chart_text(cr, (px0 + px1) / 2, c->y1, chart_fit(cr, t, px1 - px0, b, sizeof b), HC, VB);
    snprintf(t, sizeof t, "%s", ppl ? "perplexity (lower is better)" : "accuracy, %");
    chart_text_rot(cr, c->x0, (py0 + py1) / 2, -90, chart_fit(cr, t, py1 - py0, b, sizeof b), HC, VT);
    if (c->sel || row != &a->overall) {
        chart_font(cr, T_SMALL, 1);
        set_rgb(cr, INK);
        chart_clean(row->name, b, sizeof b);
        snprintf(t, sizeof t, "slice: %s", b);
        chart_text(cr, px1 - 3, py0 + 3, chart_fit(cr, t, (px1 - px0) / 2, b, sizeof b), HR, VT);
        placed[n_placed++] = (struct rect){px1 - 3 - chart_text_w(cr, b), py0, px1, py0 + 14};
    }

    /* baseline reference */
    if (a->baseline >= 0 && a->baseline < nc && ok[a->baseline]) {
        double y = chart_amap(&ya, my[a->baseline]), d[] = {3, 3};
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
            double x = chart_amap(&xa, mx[best] / unit), y = chart_amap(&ya, my[best]);
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
        struct rgb col = chart_config_colour(a, j);
        if (!ok[j])
            continue;
        x = chart_amap(&xa, mx[j] / unit);
        y = chart_amap(&ya, my[j]);
        if (isfinite(lo[j]) && isfinite(hi[j])) {
            set_rgb(cr, chart_ink_of(col));
            cairo_set_line_width(cr, 0.9);
            cairo_move_to(cr, x, chart_amap(&ya, lo[j]));
            cairo_line_to(cr, x, chart_amap(&ya, hi[j]));
            cairo_move_to(cr, x - 2.5, chart_amap(&ya, lo[j]));
            cairo_line_to(cr, x + 2.5, chart_amap(&ya, lo[j]));
            cairo_move_to(cr, x - 2.5, chart_amap(&ya, hi[j]));
            cairo_line_to(cr, x + 2.5, chart_amap(&ya, hi[j]));
            cairo_stroke(cr);
            placed[n_placed++] = (struct rect){x - 3, chart_amap(&ya, hi[j]), x + 3, chart_amap(&ya, lo[j])};
        }
        cairo_new_path(cr);
        cairo_arc(cr, x, y, 3.6, 0, 2 * M_PI);
        set_rgb(cr, front[j] ? col : WHITE);
        cairo_fill_preserve(cr);
        set_rgb(cr, front[j] ? INK : chart_ink_of(col));
        cairo_set_line_width(cr, front[j] ? 0.6 : 1.5);
        cairo_stroke(cr);
        placed[n_placed++] = (struct rect){x - 4, y - 4, x + 4, y + 4};
    }
    /* labels beside the points: the spot (8 directions x 3 distances) that overlaps least
     * with points, bars and labels already placed; a leader line when it had to move away */
    chart_font(cr, T_SMALL, 0);
    for (int64_t j = 0; j < nc; j++) {
        double x, y, w, hh = T_SMALL, best = INFINITY;
        struct rect pick = {0, 0, 0, 0};
        int far = 0;
        if (!ok[j])
            continue;
        x = chart_amap(&xa, mx[j] / unit);
        y = chart_amap(&ya, my[j]);
        chart_fit(cr, a->configs[j].spec, 90, b, sizeof b);
        w = chart_text_w(cr, b);
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
                        rect_dist(r, chart_amap(&xa, mx[i] / unit), chart_amap(&ya, my[i])) < own)
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
        chart_text_halo(cr, pick.x0, pick.y0 + hh / 2, b, HL, VM,
                  is_base(a, j) ? DIM : chart_ink_of(chart_config_colour(a, j)));
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

