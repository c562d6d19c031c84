/* chart_bars: the horizontal bar charts (output/chart.h), one row per config in ladder order:
 * QB_CHART_LATENCY (p50 time per output token, p95 whisker), QB_CHART_TTFT (time to first
 * token, one panel per prompt length) and QB_CHART_KL_FLIPS (mean KL bars, flip rates with
 * Wilson intervals). */
#include "output/chart/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
    chart_font(cr, T_SUB, 0);
    for (int64_t j = 0; j < c->a->n_configs; j++) {
        double yc = y0 + (j + 0.5) * row_h;
        set_rgb(cr, chart_config_colour(c->a, j));
        cairo_rectangle(cr, xr - 6, yc - 3, 5, 6);
        cairo_fill(cr);
        set_rgb(cr, is_base(c->a, j) ? DIM : INK);
        chart_text(cr, xr - 9, yc,
                   chart_fit(cr, c->a->configs[j].spec, xr - 9 - c->x0, b, sizeof b), HR, VM);
    }
}

/* Row r has a value the panel can draw (a log panel needs it above zero). */
static int measured(const struct bars *r, int log)
{
    return !(!isfinite(r->v50) || (log && !(r->v50 > 0)));
}

/* Where row r's marks end on the value axis: the whisker, the interval, or the bar. */
static double bar_top(const struct bars *r)
{
    double top = isfinite(r->v95) ? fmax(r->v95, r->v50) : r->v50;
    if (isfinite(r->hi))
        top = fmax(top, r->hi);
    return top;
}

/* Width of the value scale, wtot points at most: shrunk until every row's label fits right of
 * its marks, but not below 0.45 wtot. */
static double bar_scale_w(cairo_t *cr, const struct bars *r, int64_t nc, const struct axis *xa,
                          int log, double wtot)
{
    double wb = wtot;

    chart_font(cr, T_SMALL, 0);
    for (int64_t j = 0; j < nc; j++) {
        double top, f, lw;
        if (!measured(&r[j], log))
            continue;
        top = bar_top(&r[j]);
        lw = r[j].label[0] ? chart_text_w(cr, r[j].label) + 5 : 0;
        f = log ? (log10(top) - log10(xa->lo)) / (log10(xa->hi) - log10(xa->lo)) : top / xa->hi;
        if (f > 0 && wb * f + lw > wtot)
            wb = (wtot - lw) / f;
    }
    return fmax(wb, 0.45 * wtot);
}

/* Row r centred at yc as a dot with its interval bar; returns where its marks end. */
static double bar_dot(cairo_t *cr, const struct bars *r, struct rgb col, const struct axis *xa,
                      double yc, int log)
{
    double x50 = chart_amap(xa, r->v50), xr = x50;

    if (isfinite(r->lo) && isfinite(r->hi)) {
        double xl = chart_amap(xa, fmax(r->lo, log ? xa->lo : 0)), xh = chart_amap(xa, r->hi);
        set_rgb(cr, chart_ink_of(col));
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
    return fmax(xr, x50 + 3.4);
}

/* Row r centred at yc as a bar from px0 to its p50, a whisker to its p95; returns where its
 * marks end. */
static double bar_bar(cairo_t *cr, const struct bars *r, struct rgb col, const struct axis *xa,
                      double px0, double yc, double row_h)
{
    double bh = fmin(row_h * 0.62, 14), x50 = chart_amap(xa, r->v50), xr = x50;

    set_rgb(cr, col);
    cairo_rectangle(cr, px0, yc - bh / 2, x50 - px0, bh);
    cairo_fill(cr);
    if (isfinite(r->v95) && r->v95 > r->v50) {
        double x95 = chart_amap(xa, r->v95);
        set_rgb(cr, INK);
        cairo_set_line_width(cr, 0.9);
        cairo_move_to(cr, x50, yc);
        cairo_line_to(cr, x95, yc);
        cairo_move_to(cr, x95, yc - bh * 0.35);
        cairo_line_to(cr, x95, yc + bh * 0.35);
        cairo_stroke(cr);
        xr = x95;
    }
    return xr;
}

/* The baseline's value, dashed down the panel from py0 to py1. */
static void bar_ref_line(cairo_t *cr, const struct axis *xa, double ref, double py0, double py1)
{
    double x = chart_amap(xa, ref);
    chart_dashed(cr, x, py0 - 2, x, py1, 3, 2, BASE_GREY);
}

/* A panel of bars (dots when as_dots) from px0 to px1, rows from py0 at row_h; axis title
 * under it, panel title over it (may be NULL), the baseline's value ref dashed (NAN: none).
 * The value axis leaves room for each row's label right of its whisker. */
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
        chart_font(cr, T_SUB, 1);
        set_rgb(cr, INK);
        chart_text(cr, px0, py0 - 6, chart_fit(cr, panel_title, px1 - px0, b, sizeof b), HL, VB);
    }
    for (int64_t j = 0; j < nc; j++) {
        if (!measured(&r[j], log))
            continue;
        any = 1;
        vmax = fmax(vmax, bar_top(&r[j]));
        vmin = fmin(vmin, r[j].v50);
    }
    if (!any) {
        chart_missing(cr, px0, py0, px1, py1, "not measured");
        return;
    }
    if (log)
        chart_axis_log(&xa, vmin, vmax, 0);
    else
        chart_axis_linear(&xa, 0, vmax, 4);
    wb = bar_scale_w(cr, r, nc, &xa, log, wtot);
    xa.p0 = px0;
    xa.p1 = px0 + wb;
    chart_xaxis(cr, &xa, py0, py1);
    chart_font(cr, T_SUB, 0);
    set_rgb(cr, DIM);
    chart_text(cr, px0 + wb / 2, py1 + 4 + T_SMALL * 1.3 + 2,
               chart_fit(cr, axis_title, px1 - px0, b, sizeof b), HC, VT);
    if (isfinite(ref) && (!log || ref > 0))
        bar_ref_line(cr, &xa, ref, py0, py1);
    for (int64_t j = 0; j < nc; j++) {
        double yc = py0 + (j + 0.5) * row_h, xr;
        struct rgb col = chart_config_colour(c->a, j);
        if (!measured(&r[j], log)) {
            chart_font_italic(cr, T_SMALL);
            set_rgb(cr, FAINT);
            chart_text(
                cr, px0 + 4, yc,
                chart_fit(cr, r[j].missing ? r[j].missing : "not measured", wtot - 4, b, sizeof b),
                HL, VM);
            continue;
        }
        xr = as_dots ? bar_dot(cr, &r[j], col, &xa, yc, log)
                     : bar_bar(cr, &r[j], col, &xa, px0, yc, row_h);
        if (r[j].label[0]) {
            chart_font(cr, T_SMALL, 0);
            set_rgb(cr, INK);
            chart_text(cr, xr + 4, yc, chart_fit(cr, r[j].label, px1 - xr - 4, b, sizeof b), HL,
                       VM);
        }
    }
}

/* Layout shared by the bar charts: the left name column and the rows. */
static int bar_layout(struct chart *c, double *name_r, double *py0, double *row_h, int titled)
{
    double names_w;
    int64_t nc = c->a->n_configs;
    chart_font(c->cr, T_SUB, 0);
    names_w = chart_config_names_w(c, 0.25 * c->w);
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

int chart_latency(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    int64_t nc = a->n_configs;
    const struct qb_an_latency *ref = ref_setting(a);
    struct bars *r = NULL;
    double name_r, py0, row_h, base_tpot = NAN, base_tok = NAN;
    char t[LINE_B];

    if (nc <= 0 || !ref) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "latency not measured");
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
        chart_fmt_sig(ms, sizeof ms, l->tpot_p50);
        chart_fmt_num(tok, sizeof tok, l->decode_tok_s_p50, l->decode_tok_s_p50 < 10 ? 1 : 0, 0);
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
             chart_base_name(c));
    chart_note(c, t);
    {
        struct legend_item it[2] = {{SYM_NONE, INK, "bar: p50, whisker: p95"},
                                    {SYM_DASH, BASE_GREY, "baseline p50"}};
        chart_legend(c, it, isfinite(base_tpot) ? 2 : 1);
    }
    if (!bar_layout(c, &name_r, &py0, &row_h, 0)) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    row_names(c, name_r, py0, row_h);
    bar_panel(c, r, name_r + 2, c->x1, py0, row_h, 0, 0, "time per output token, ms", NULL,
              base_tpot);
out:
    free(r);
    return 0;
}

int chart_ttft(struct chart *c)
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
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "latency not measured");
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
        chart_legend(c, it, 1);
    }
    if (!bar_layout(c, &name_r, &py0, &row_h, 1)) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
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
                chart_fmt_sig(r[j].label, sizeof r[j].label, l->ttft_p50);
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

int chart_kl_flips(struct chart *c)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_slice *row = chart_main_row(c);
    int64_t nc = a->n_configs;
    struct bars *r = NULL;
    double name_r, py0, row_h, gapx = 18, z = z_of(a->confidence);
    char t[LINE_B], b[NAME_B], kl_t[LINE_B], fl_t[LINE_B];

    if (nc <= 0 || !row || !row->cells) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "not measured");
        return 0;
    }
    r = calloc((size_t)nc, sizeof *r);
    if (!r) {
        c->oom = 1;
        return 0;
    }
    chart_clean(row == &a->overall ? "all slices pooled" : row->name, b, sizeof b);
    snprintf(
        t, sizeof t,
        "%s%s. KL: mean over items of the per-token KL(%s \xE2\x80\x96 config). Flipped: items "
        "whose answer changed vs %s (lost + gained).",
        row == &a->overall ? "" : "Slice: ", b, chart_base_name(c), chart_base_name(c));
    if (row == &a->overall)
        t[0] = 'A';
    chart_note(c, t);
    if (!bar_layout(c, &name_r, &py0, &row_h, 1)) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
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
            chart_fmt_sig(r[j].label, sizeof r[j].label, e->kl_mean);
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
            chart_fmt_num(v, sizeof v, r[j].v50, r[j].v50 < 10 ? 1 : 0, 0);
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
