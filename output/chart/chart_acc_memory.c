/* chart_acc_memory: QB_CHART_ACC_MEMORY (output/chart.h), accuracy (or perplexity) against
 * memory per config, with intervals; the Pareto frontier filled and joined by a line, the
 * dominated configs hollow; each label placed where it overlaps least. */
#include "output/chart/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A label's or a mark's box, points. */
struct rect {
    double x0, y0, x1, y1;
};

static double rect_dist(struct rect r, double x, double y)
{
    double dx = fmax(fmax(r.x0 - x, x - r.x1), 0), dy = fmax(fmax(r.y0 - y, y - r.y1), 0);
    return hypot(dx, dy);
}

/* What the chart's phases share; per-config arrays have n_configs entries. */
struct accmem {
    struct chart *c;
    const struct qb_an_slice *row; /* the overall row, or the chosen slice */
    int64_t nc;
    int ppl;         /* the row is perplexity: lower is better */
    int tpot;        /* x is the p50 time per output token (ms), not memory */
    double *mx, *my; /* memory (bytes); accuracy (%) or perplexity */
    double *lo, *hi; /* its interval; NAN when none */
    int *ok, *front; /* measured; on the Pareto frontier */
    int n_ok;
    double mmin, mmax, ymin, ymax; /* over the measured configs */
    int any_rss, any_w;            /* memory is peak RSS for some configs, weights for others */
    struct axis xa, ya;
    double unit;               /* bytes per x unit */
    const char *uname;         /* "GiB", "MiB", "KiB" */
    double px0, px1, py0, py1; /* plot area, points */
    struct rect *placed;       /* marks and labels, for the labels to avoid */
    int n_placed;
};

/* -1 when out of memory (c->oom set). */
static int am_alloc(struct accmem *A)
{
    size_t nc = (size_t)A->nc;
    A->mx = calloc(nc, sizeof *A->mx);
    A->my = calloc(nc, sizeof *A->my);
    A->lo = calloc(nc, sizeof *A->lo);
    A->hi = calloc(nc, sizeof *A->hi);
    A->ok = calloc(nc, sizeof *A->ok);
    A->front = calloc(nc, sizeof *A->front);
    A->placed = calloc(nc * 3 + 4, sizeof *A->placed);
    if (!A->mx || !A->my || !A->lo || !A->hi || !A->ok || !A->front || !A->placed) {
        A->c->oom = 1;
        return -1;
    }
    return 0;
}

/* Each config's point and interval, and the ranges over those measured. */
static void am_points(struct accmem *A)
{
    const struct qb_analysis *a = A->c->a;
    const struct qb_an_slice *row = A->row;
    double base_ppl = NAN;

    A->mmin = INFINITY, A->mmax = 0, A->ymin = INFINITY, A->ymax = -INFINITY;
    if (A->ppl && a->baseline >= 0 && a->baseline < A->nc)
        base_ppl = row->cells[a->baseline].ppl;
    for (int64_t j = 0; j < A->nc; j++) {
        const struct qb_an_cell *e = &row->cells[j];
        int base = is_base(a, j);
        A->mx[j] = A->tpot ? a->configs[j].lat_cost : a->configs[j].mem_cost;
        A->my[j] = A->ppl ? e->ppl : e->acc * 100;
        /* perplexity: the interval of the ratio to the baseline (delta = 1 - ratio) */
        A->lo[j] = A->ppl ? (base ? NAN : base_ppl * (1 - e->delta_ci.hi)) : e->acc_ci.lo * 100;
        A->hi[j] = A->ppl ? (base ? NAN : base_ppl * (1 - e->delta_ci.lo)) : e->acc_ci.hi * 100;
        A->ok[j] = isfinite(A->mx[j]) && A->mx[j] > 0 && isfinite(A->my[j]);
        if (!A->ok[j])
            continue;
        A->n_ok++;
        A->any_rss |= a->configs[j].peak_rss_bytes > 0;
        A->any_w |= !(a->configs[j].peak_rss_bytes > 0);
        A->mmin = fmin(A->mmin, A->mx[j]);
        A->mmax = fmax(A->mmax, A->mx[j]);
        A->ymin = fmin(A->ymin, isfinite(A->lo[j]) ? fmin(A->lo[j], A->my[j]) : A->my[j]);
        A->ymax = fmax(A->ymax, isfinite(A->hi[j]) ? fmax(A->hi[j], A->my[j]) : A->my[j]);
    }
}

/* The frontier from the analysis; recomputed when it marked none: a config no other beats on
 * memory without losing accuracy. */
static void am_frontier(struct accmem *A)
{
    const double *mx = A->mx, *my = A->my;
    int n_front = 0;

    for (int64_t j = 0; !A->tpot && j < A->nc; j++) /* the analysis's flags are on memory */
        if (A->ok[j] && A->row->cells[j].pareto)
            A->front[j] = 1, n_front++;
    if (n_front)
        return;
    for (int64_t j = 0; j < A->nc; j++) {
        int dom = 0;
        for (int64_t i = 0; A->ok[j] && i < A->nc && !dom; i++) {
            double gy = A->ppl ? my[j] - my[i] : my[i] - my[j]; /* >= 0: i at least as good */
            dom = A->ok[i] && i != j && mx[i] <= mx[j] && gy >= 0 && (mx[i] < mx[j] || gy > 0);
        }
        A->front[j] = A->ok[j] && !dom;
    }
}

/* The legend, and what was left out. */
static void am_legend(struct accmem *A)
{
    struct chart *c = A->c;
    const struct qb_analysis *a = c->a;
    struct legend_item it[5];
    int m, miss = 0, n = 0;
    char t[LINE_B], b[NAME_B], base_t[LINE_B], ct[64];

    m = snprintf(t, sizeof t, "not measured: ");
    for (int64_t j = 0; j < A->nc && m < (int)sizeof t - 1; j++)
        if (!A->ok[j]) {
            chart_clean(a->configs[j].spec, b, sizeof b);
            m += snprintf(t + m, sizeof t - m, "%s%s", miss++ ? ", " : "", b);
        }
    snprintf(base_t, sizeof base_t, "%s", chart_base_name(c));
    it[n++] = (struct legend_item){SYM_DOT, FAINT, "on the Pareto frontier (line)"};
    it[n++] = (struct legend_item){SYM_HOLLOW, FAINT, "dominated"};
    it[n++] = (struct legend_item){
        SYM_ERRBAR, DIM,
        chart_conf_text(c, A->ppl ? "CI of the ratio to the baseline" : "Wilson CI", ct,
                        sizeof ct)};
    if (a->baseline >= 0 && a->baseline < A->nc && A->ok[a->baseline])
        it[n++] = (struct legend_item){SYM_DASH, BASE_GREY, base_t};
    if (miss)
        it[n++] = (struct legend_item){SYM_NONE, INK, t};
    chart_legend(c, it, n);
}

/* Memory in GiB, MiB or KiB, log-scaled when it spans more than 10x, zoomed in when within 2x;
 * accuracy within 0..100%, perplexity above 0. */
static void am_scales(struct accmem *A)
{
    double mmin = A->mmin, mmax = A->mmax, ymin = A->ymin, ymax = A->ymax, unit;

    if (A->tpot)
        unit = 1.0, A->uname = "ms";
    else if (mmax >= 1024.0 * 1024 * 1024)
        unit = 1024.0 * 1024 * 1024, A->uname = "GiB";
    else if (mmax >= 1024.0 * 1024)
        unit = 1024.0 * 1024, A->uname = "MiB";
    else
        unit = 1024.0, A->uname = "KiB";
    A->unit = unit;
    if (mmax / mmin > 10)
        chart_axis_log(&A->xa, mmin / unit / 1.2, mmax / unit * 1.2, 1);
    else if (mmin > 0.5 * mmax) { /* within 2x: zoom in, else the points pile up */
        double pad = (mmax - mmin) / unit * 0.1 + mmax / unit * 0.01;
        chart_axis_linear(&A->xa, mmin / unit - pad, mmax / unit + pad, 6);
    } else
        chart_axis_linear(&A->xa, 0, mmax / unit * 1.04, 6);
    double pad = (ymax - ymin) * 0.08 + (A->ppl ? 0.01 * ymax : 0.5);
    double y0 = ymin - pad < 0 && ymin >= 0 ? 0 : ymin - pad;
    chart_axis_linear(&A->ya, y0, ymax + pad, 6);
    if (!A->ppl && A->ya.hi > 100 && ymax <= 100)
        chart_axis_linear(&A->ya, y0, 100, 6);
}

/* The plot area inside the tick labels and axis titles. 0 when too small to draw. */
static int am_layout(struct accmem *A)
{
    struct chart *c = A->c;

    A->px0 = c->x0 + T_SUB * 1.4 + chart_tick_labels_w(c->cr, &A->ya) + 6;
    A->px1 = c->x1 - 4;
    A->py0 = c->y0 + 2;
    A->py1 = c->y1 - (4 + T_SMALL * 1.3) - T_SUB * 1.6;
    return !(A->py1 - A->py0 < 20 || A->px1 - A->px0 < 20);
}

/* Both axes with their titles; the slice's name in the top right corner when the chart shows
 * one slice. */
static void am_axes(struct accmem *A)
{
    struct chart *c = A->c;
    cairo_t *cr = c->cr;
    double px0 = A->px0, px1 = A->px1, py0 = A->py0, py1 = A->py1;
    char b[NAME_B], t[LINE_B];

    A->xa.p0 = px0;
    A->xa.p1 = px1;
    A->ya.p0 = py1;
    A->ya.p1 = py0;
    chart_yaxis(cr, &A->ya, px0, px1);
    chart_xaxis(cr, &A->xa, py0, py1);
    chart_font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    if (A->tpot)
        snprintf(t, sizeof t, "time per output token, ms (p50)%s", A->xa.log ? ", log scale" : "");
    else
        snprintf(t, sizeof t, "memory, %s (%s)%s", A->uname,
                 A->any_rss && A->any_w ? "peak RSS where measured, else weights"
                 : A->any_rss           ? "peak RSS"
                                        : "weights",
                 A->xa.log ? ", log scale" : "");
    chart_text(cr, (px0 + px1) / 2, c->y1, chart_fit(cr, t, px1 - px0, b, sizeof b), HC, VB);
    snprintf(t, sizeof t, "%s", A->ppl ? "perplexity (lower is better)" : "accuracy, %");
    chart_text_rot(cr, c->x0, (py0 + py1) / 2, -90, chart_fit(cr, t, py1 - py0, b, sizeof b), HC,
                   VT);
    if (c->sel || A->row != &c->a->overall) {
        chart_font(cr, T_SMALL, 1);
        set_rgb(cr, INK);
        chart_clean(A->row->name, b, sizeof b);
        snprintf(t, sizeof t, "slice: %s", b);
        chart_text(cr, px1 - 3, py0 + 3, chart_fit(cr, t, (px1 - px0) / 2, b, sizeof b), HR, VT);
        A->placed[A->n_placed++] = (struct rect){px1 - 3 - chart_text_w(cr, b), py0, px1, py0 + 14};
    }
}

/* The baseline's accuracy, dashed across, and the frontier line through the frontier points
 * in memory order. */
static void am_reference(struct accmem *A)
{
    const struct qb_analysis *a = A->c->a;
    cairo_t *cr = A->c->cr;
    int pen = 0;
    double lastx = -INFINITY;

    if (a->baseline >= 0 && a->baseline < A->nc && A->ok[a->baseline]) {
        double y = chart_amap(&A->ya, A->my[a->baseline]);
        chart_dashed(cr, A->px0, y, A->px1, y, 3, 3, BASE_GREY);
    }
    cairo_save(cr);
    set_rgba(cr, INK, 0.55);
    cairo_set_line_width(cr, 1.2);
    for (;;) { /* selection by memory, nc is small */
        int64_t best = -1;
        for (int64_t j = 0; j < A->nc; j++)
            if (A->front[j] && A->mx[j] > lastx && (best < 0 || A->mx[j] < A->mx[best]))
                best = j;
        if (best < 0)
            break;
        lastx = A->mx[best];
        double x = chart_amap(&A->xa, A->mx[best] / A->unit), y = chart_amap(&A->ya, A->my[best]);
        if (pen)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* Error bars and points: filled on the frontier, hollow when dominated. */
static void am_marks(struct accmem *A)
{
    const struct qb_analysis *a = A->c->a;
    cairo_t *cr = A->c->cr;
    const struct axis *ya = &A->ya;

    for (int64_t j = 0; j < A->nc; j++) {
        double x, y, lo = A->lo[j], hi = A->hi[j];
        struct rgb col = chart_config_colour(a, j);
        if (!A->ok[j])
            continue;
        x = chart_amap(&A->xa, A->mx[j] / A->unit);
        y = chart_amap(ya, A->my[j]);
        if (isfinite(lo) && isfinite(hi)) {
            set_rgb(cr, chart_ink_of(col));
            cairo_set_line_width(cr, 0.9);
            cairo_move_to(cr, x, chart_amap(ya, lo));
            cairo_line_to(cr, x, chart_amap(ya, hi));
            cairo_move_to(cr, x - 2.5, chart_amap(ya, lo));
            cairo_line_to(cr, x + 2.5, chart_amap(ya, lo));
            cairo_move_to(cr, x - 2.5, chart_amap(ya, hi));
            cairo_line_to(cr, x + 2.5, chart_amap(ya, hi));
            cairo_stroke(cr);
            A->placed[A->n_placed++] =
                (struct rect){x - 3, chart_amap(ya, hi), x + 3, chart_amap(ya, lo)};
        }
        cairo_new_path(cr);
        cairo_arc(cr, x, y, 3.6, 0, 2 * M_PI);
        set_rgb(cr, A->front[j] ? col : WHITE);
        cairo_fill_preserve(cr);
        set_rgb(cr, A->front[j] ? INK : chart_ink_of(col));
        cairo_set_line_width(cr, A->front[j] ? 0.6 : 1.5);
        cairo_stroke(cr);
        A->placed[A->n_placed++] = (struct rect){x - 4, y - 4, x + 4, y + 4};
    }
}

/* Where config j's label (w x T_SMALL points) goes beside its point (x, y): of 8 directions x 3
 * distances, the spot that overlaps least with what is placed, stays inside the plot and is
 * nearer its own point than any other. *far: not next to the point (draw a leader line). */
static struct rect am_label_spot(const struct accmem *A, int64_t j, double x, double y, double w,
                                 int *far)
{
    const double hh = T_SMALL;
    double best = INFINITY;
    struct rect pick = {0, 0, 0, 0};

    *far = 0;
    for (int dist = 0; dist < 3; dist++) {
        double d = dist * 10;
        const double cand[8][2] = {{x + 6 + d, y - hh / 2},         {x - 6 - w - d, y - hh / 2},
                                   {x + 4 + d, y - 5 - hh - d},     {x + 4 + d, y + 5 + d},
                                   {x - 4 - w - d, y - 5 - hh - d}, {x - 4 - w - d, y + 5 + d},
                                   {x - w / 2, y - 7 - hh - d},     {x - w / 2, y + 7 + d}};
        for (int k = 0; k < 8; k++) {
            struct rect r = {cand[k][0], cand[k][1], cand[k][0] + w, cand[k][1] + hh};
            double cost = dist * 3 + k * 0.01;
            for (int i = 0; i < A->n_placed; i++) {
                double ox = fmin(r.x1, A->placed[i].x1) - fmax(r.x0, A->placed[i].x0);
                double oy = fmin(r.y1, A->placed[i].y1) - fmax(r.y0, A->placed[i].y0);
                if (ox > 0 && oy > 0)
                    cost += ox * oy;
            }
            if (r.x0 < A->px0 || r.x1 > A->px1 || r.y0 < A->py0 || r.y1 > A->py1)
                cost += 1e6;
            /* a label nearer another point than its own reads as that point's */
            double own = rect_dist(r, x, y);
            for (int64_t i = 0; i < A->nc; i++)
                if (i != j && A->ok[i] &&
                    rect_dist(r, chart_amap(&A->xa, A->mx[i] / A->unit),
                              chart_amap(&A->ya, A->my[i])) < own)
                    cost += 300;
            if (cost < best) {
                best = cost;
                pick = r;
                *far = dist > 0;
            }
        }
    }
    return pick;
}

/* Config names beside their points, in the config's ink, with a leader line when moved away. */
static void am_labels(struct accmem *A)
{
    const struct qb_analysis *a = A->c->a;
    cairo_t *cr = A->c->cr;
    char b[NAME_B];

    chart_font(cr, T_SMALL, 0);
    for (int64_t j = 0; j < A->nc; j++) {
        double x, y, w, hh = T_SMALL;
        int far;
        if (!A->ok[j])
            continue;
        x = chart_amap(&A->xa, A->mx[j] / A->unit);
        y = chart_amap(&A->ya, A->my[j]);
        chart_fit(cr, a->configs[j].spec, 90, b, sizeof b);
        w = chart_text_w(cr, b);
        struct rect pick = am_label_spot(A, j, x, y, w, &far);
        A->placed[A->n_placed++] = pick;
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
}

static int acc_x(struct chart *c, int tpot)
{
    struct accmem A = {.c = c, .row = chart_main_row(c), .nc = c->a->n_configs, .tpot = tpot};

    if (A.nc <= 0 || !A.row || !A.row->cells) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        return 0;
    }
    A.ppl = A.row->is_perplexity;
    if (am_alloc(&A) < 0)
        goto out;
    am_points(&A);
    am_frontier(&A);
    am_legend(&A);
    if (!A.n_ok) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "memory or accuracy not measured");
        goto out;
    }
    am_scales(&A);
    if (!am_layout(&A)) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    am_axes(&A);
    am_reference(&A);
    am_marks(&A);
    am_labels(&A);
out:
    free(A.mx);
    free(A.my);
    free(A.lo);
    free(A.hi);
    free(A.ok);
    free(A.front);
    free(A.placed);
    return 0;
}

int chart_acc_memory(struct chart *c)
{
    return acc_x(c, 0);
}

int chart_acc_tpot(struct chart *c)
{
    return acc_x(c, 1);
}
