/* chart_heatmap: QB_CHART_HEATMAP (output/chart.h), slices x configs, each cell the accuracy
 * change vs the baseline in points with its interval, coloured on a diverging map centred on
 * zero; the baseline column grey with its accuracy; a colour bar and legend underneath. */
#include "output/chart/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the heatmap's phases share: the rows drawn and the grid's geometry, in points. */
struct heat {
    struct chart *c;
    const struct qb_an_slice **rows; /* the slices, then the overall row when there is one */
    int64_t nr, nc;                  /* rows, configs (columns) */
    int overall_row;
    int any_na, any_beyond, any_sig; /* what the legend explains */
    int saturated;                   /* a change lies beyond the colour range */
    int used_nm;                     /* a cell says "n/m" */
    double range;                    /* the colour range: +-range points */
    double label_w;                  /* row labels: "name  n=240" */
    double gx0, gy0, col_w, row_h;   /* the grid's top left and cell size */
    double gap;                      /* above the overall row */
    int rotate;                      /* column heads at 45 degrees */
};

/* The diverging scale from -range to +range points ("<=" / ">=" when saturated), under the
 * grid, with its caption left of it when there is room. */
static void heat_colourbar(struct chart *c, double range, int saturated)
{
    cairo_t *cr = c->cr;
    char lo[32], hi[32], cap[LINE_B];
    const double bw = 110, bh = 7;
    double x, ytop;

    snprintf(cap, sizeof cap, "accuracy change vs %s, points", chart_base_name(c));
    chart_font(cr, T_SMALL, 0);
    ytop = c->y1 - (bh + 3 + T_SMALL * 1.2);
    x = c->x0 + chart_text_w(cr, cap) + 14;
    if (x + bw + 20 > c->x1)
        x = c->x0 + 12;
    else {
        set_rgb(cr, DIM);
        chart_text(cr, c->x0, ytop + bh / 2, cap, HL, VM);
    }
    for (int i = 0; i < 110; i++) {
        set_rgb(cr, chart_diverging(-1 + 2 * (i + 0.5) / 110));
        cairo_rectangle(cr, x + i * bw / 110, ytop, bw / 110 + 0.05, bh);
        cairo_fill(cr);
    }
    strcpy(lo, saturated ? "\xE2\x89\xA4" : ""); /* less-or-equal sign */
    strcpy(hi, saturated ? "\xE2\x89\xA5" : "");
    chart_fmt_num(lo + strlen(lo), sizeof lo - 3, -range, range < 10 ? 1 : 0, 1);
    chart_fmt_num(hi + strlen(hi), sizeof hi - 3, range, range < 10 ? 1 : 0, 1);
    set_rgb(cr, DIM);
    chart_text(cr, x, ytop + bh + 2, lo, HC, VT);
    chart_text(cr, x + bw / 2, ytop + bh + 2, "0", HC, VT);
    chart_text(cr, x + bw, ytop + bh + 2, hi, HC, VT);
    if (x + bw + 14 + chart_text_w(cr, "red: loss, blue: gain") <= c->x1)
        chart_text(cr, x + bw + 14, ytop + bh / 2, "red: loss, blue: gain", HL, VM);
    c->y1 = ytop - 6;
}

/* The colour bar and the legend entries the grid needs; any_nm: a cell says "n/m". */
static void heat_legends(const struct heat *h, int any_nm)
{
    struct chart *c = h->c;
    struct legend_item it[4];
    int n = 0;
    char bt[LINE_B], ct[64];

    chart_conf_text(c, "CI excludes 0", ct + 2, sizeof ct - 2);
    memcpy(ct, "* ", 2);
    heat_colourbar(c, h->range, h->saturated);
    snprintf(bt, sizeof bt, "grey column: %s accuracy", chart_base_name(c));
    if (h->any_beyond)
        it[n++] = (struct legend_item){SYM_BOLDBOX, INK, "loss beyond the slice's tolerance"};
    if (h->any_sig)
        it[n++] = (struct legend_item){SYM_NONE, INK, ct};
    it[n++] = (struct legend_item){SYM_SWATCH, BASE_FILL, bt};
    if (any_nm)
        it[n++] = (struct legend_item){SYM_NONE, INK, "n/m: not measured"};
    chart_legend(c, it, n);
}

/* Every slice, then the overall row unless it would repeat the only slice. -1 when out of
 * memory (c->oom set). */
static int heat_rows(struct heat *h)
{
    const struct qb_analysis *a = h->c->a;

    h->rows = malloc((size_t)(a->n_slices + 1) * sizeof *h->rows);
    if (!h->rows) {
        h->c->oom = 1;
        return -1;
    }
    h->overall_row = a->overall.cells && a->n_slices != 1;
    for (int64_t i = 0; i < a->n_slices; i++)
        h->rows[h->nr++] = &a->slices[i];
    if (h->overall_row)
        h->rows[h->nr++] = &a->overall;
    return 0;
}

/* What the legend must explain, and the colour range: the largest change, rounded up to a
 * step of the scale, but at most five times the largest tolerance. */
static void heat_scale(struct heat *h)
{
    const struct qb_analysis *a = h->c->a;
    double range = 0, max_tol = 0;

    for (int64_t r = 0; r < h->nr; r++)
        for (int64_t j = 0; j < h->nc; j++) {
            const struct qb_an_cell *e = cell_of(h->rows[r], j);
            if (is_base(a, j))
                continue;
            if (!e || !isfinite(e->delta)) {
                h->any_na = 1;
                continue;
            }
            range = fmax(range, fabs(e->delta) * 100);
            if (-e->delta * 100 > h->rows[r]->tolerance)
                h->any_beyond = 1;
            if (e->delta_ci.hi < 0 || e->delta_ci.lo > 0)
                h->any_sig = 1;
        }
    for (int64_t r = 0; r < h->nr; r++)
        if (isfinite(h->rows[r]->tolerance) && h->rows[r]->tolerance > max_tol)
            max_tol = h->rows[r]->tolerance;
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
    h->saturated = maxabs > range;
    h->range = range;
}

/* Row r's sample size: the baseline cell's, else the slice's item count. */
static int64_t heat_n(const struct heat *h, int64_t r)
{
    const struct qb_analysis *a = h->c->a;
    const struct qb_an_cell *e =
        a->baseline >= 0 && a->baseline < h->nc ? cell_of(h->rows[r], a->baseline) : NULL;
    return e && e->n > 0 ? e->n : h->rows[r]->n_items;
}

/* Width of the row labels, "name  n=240": names capped at 0.3, the whole at 0.38 of the page. */
static double heat_label_w(const struct heat *h)
{
    const struct qb_analysis *a = h->c->a;
    cairo_t *cr = h->c->cr;
    double label_w = 0, name_cap = 0.3 * h->c->w;
    char b[NAME_B], t[160];

    for (int64_t r = 0; r < h->nr; r++) {
        int64_t n = heat_n(h, r);
        int ov = h->rows[r] == &a->overall;
        chart_font(cr, T_SUB, ov);
        double w = chart_text_w(
            cr, chart_fit(cr, ov ? "overall" : h->rows[r]->name, name_cap, b, sizeof b));
        chart_font(cr, T_SMALL, 0);
        snprintf(t, sizeof t, "n=%lld", (long long)n);
        label_w = fmax(label_w, w + 5 + chart_text_w(cr, t));
    }
    return fmin(label_w, 0.38 * h->c->w);
}

/* The grid: row labels on the left, columns at most 72 pt wide (the block centred when they
 * are capped), column heads above it (at 45 degrees when the names do not fit), rows at most
 * 34 pt high in what the legends leave. 0 when too small to draw. */
static int heat_layout(struct heat *h)
{
    struct chart *c = h->c;
    cairo_t *cr = c->cr;

    h->label_w = heat_label_w(h);
    h->gx0 = c->x0 + h->label_w + 6;
    h->col_w = fmin((c->x1 - h->gx0) / h->nc, 72);
    chart_font(cr, T_SMALL, 0);
    double spec_w = chart_config_names_w(c, 90);
    h->rotate = spec_w > h->col_w - 4;
    double head_h = h->rotate ? spec_w * sin(M_PI / 4) + T_SMALL * 0.8 + 9 : T_SMALL * 1.3 + 7;
    double used = h->label_w + 6 + h->col_w * h->nc, slack = (c->x1 - c->x0) - used;
    if (slack > 0)
        h->gx0 += slack / 2;
    h->gy0 = c->y0 + head_h;
    h->gap = h->overall_row ? 5 : 0;
    h->row_h = fmin((c->y1 - h->gy0 - h->gap) / h->nr, 34);
    return !(h->row_h < 2);
}

/* Config names over the columns, each over a strip of its colour. */
static void heat_column_heads(const struct heat *h)
{
    const struct qb_analysis *a = h->c->a;
    cairo_t *cr = h->c->cr;
    char b[NAME_B];

    for (int64_t j = 0; j < h->nc; j++) {
        double xc = h->gx0 + (j + 0.5) * h->col_w;
        set_rgb(cr, chart_config_colour(a, j));
        cairo_rectangle(cr, h->gx0 + j * h->col_w + 1, h->gy0 - 4.5, h->col_w - 2, 3);
        cairo_fill(cr);
        chart_font(cr, T_SMALL, 0);
        set_rgb(cr, is_base(a, j) ? DIM : INK);
        if (!h->rotate)
            chart_text(cr, xc, h->gy0 - 7,
                       chart_fit(cr, a->configs[j].spec, h->col_w - 2, b, sizeof b), HC, VB);
        else {
            double room = fmin(90, (h->c->w - 3 - xc) / cos(M_PI / 4));
            chart_text_rot(cr, xc - 2, h->gy0 - 8, -45,
                           chart_fit(cr, a->configs[j].spec, room, b, sizeof b), HL, VBL);
        }
    }
}

/* A cell without a value: "not measured", on two lines, or "n/m" (then the legend explains it)
 * as room allows. */
static void heat_cell_na(struct heat *h, double xc, double yc)
{
    cairo_t *cr = h->c->cr;
    int two = h->row_h >= 2 * T_SMALL * 1.2 + 4;

    chart_font_italic(cr, T_SMALL);
    set_rgb(cr, DIM);
    if (chart_text_w(cr, "not measured") <= h->col_w - 4)
        chart_text(cr, xc, yc, "not measured", HC, VM);
    else if (two && chart_text_w(cr, "measured") <= h->col_w - 4) {
        chart_text(cr, xc, yc - 1, "not", HC, VB);
        chart_text(cr, xc, yc + 1, "measured", HC, VT);
    } else if (chart_text_w(cr, "n/m") <= h->col_w - 2 && h->row_h >= T_SMALL) {
        chart_text(cr, xc, yc, "n/m", HC, VM);
        h->used_nm = 1;
    }
}

/* A baseline cell: its accuracy, or perplexity for perplexity slices ("ppl " dropped when
 * narrow). */
static void heat_cell_base(const struct heat *h, const struct qb_an_slice *s,
                           const struct qb_an_cell *e, double xc, double yc)
{
    cairo_t *cr = h->c->cr;
    char d[64];

    if (s->is_perplexity || !isfinite(e->acc))
        snprintf(d, sizeof d, "ppl "), chart_fmt_sig(d + 4, sizeof d - 4, e->ppl);
    else {
        chart_fmt_num(d, sizeof d, e->acc * 100, 1, 0);
        strcat(d, "%");
    }
    chart_font(cr, T_SMALL, 0);
    set_rgb(cr, INK);
    if (chart_text_w(cr, d) > h->col_w - 3 && d[0] == 'p')
        memmove(d, d + 4, strlen(d + 4) + 1); /* "11.8" without "ppl " */
    if (chart_text_w(cr, d) <= h->col_w - 3 && h->row_h >= T_SMALL)
        chart_text(cr, xc, yc, d, HC, VM);
}

/* A config's cell: the change in points, bold, "*" when its interval excludes 0, over (or
 * beside) the interval's half-width, "±2.0", in tc; fewer digits, then the change alone, as
 * room shrinks; colour only in the smallest cells. */
static void heat_cell_delta(const struct heat *h, const struct qb_an_cell *e, struct rgb tc,
                            double xc, double yc)
{
    cairo_t *cr = h->c->cr;
    double col_w = h->col_w, row_h = h->row_h;
    int two = row_h >= 2 * T_SMALL * 1.2 + 4, sig = e->delta_ci.hi < 0 || e->delta_ci.lo > 0;
    char d[64], hw[64];

    /* narrow cells: "−38.0*", else "−38*", else "−38" */
    chart_font(cr, T_SMALL, 1);
    for (int tries = 0; tries < 3; tries++) {
        int dec = tries == 0 || fabs(e->delta * 100) < 9.95 ? 1 : 0;
        chart_fmt_num(d, sizeof d, e->delta * 100, dec, 1);
        if (sig && tries < 2)
            strcat(d, "*");
        if (chart_text_w(cr, d) <= col_w - 3)
            break;
    }
    hw[0] = 0;
    if (isfinite(e->delta_ci.lo) && isfinite(e->delta_ci.hi)) {
        strcpy(hw, "\xC2\xB1");
        chart_fmt_num(hw + 2, sizeof hw - 2, (e->delta_ci.hi - e->delta_ci.lo) / 2 * 100, 1, 0);
    }
    set_rgb(cr, tc);
    chart_font(cr, T_SMALL, 1);
    double dw = chart_text_w(cr, d);
    chart_font(cr, T_SMALL, 0);
    double hww = hw[0] ? chart_text_w(cr, hw) : 0;
    if (row_h < T_SMALL || dw > col_w - 3)
        ; /* colour only */
    else if (hw[0] && two && hww <= col_w - 3) {
        chart_font(cr, T_SMALL, 1);
        chart_text(cr, xc, yc - 1, d, HC, VB);
        chart_font(cr, T_SMALL, 0);
        chart_text(cr, xc, yc + 1.5, hw, HC, VT);
    } else if (hw[0] && dw + 3 + hww <= col_w - 3) {
        chart_font(cr, T_SMALL, 1);
        chart_text(cr, xc - (dw + 3 + hww) / 2, yc, d, HL, VM);
        chart_font(cr, T_SMALL, 0);
        chart_text(cr, xc + (dw + 3 + hww) / 2, yc, hw, HR, VM);
    } else {
        chart_font(cr, T_SMALL, 1);
        chart_text(cr, xc, yc, d, HC, VM);
    }
}

/* Cell (r, j) with its top at y: the fill, then its text. */
static void heat_cell(struct heat *h, int64_t r, int64_t j, double y)
{
    const struct qb_analysis *a = h->c->a;
    cairo_t *cr = h->c->cr;
    const struct qb_an_cell *e = cell_of(h->rows[r], j);
    double x = h->gx0 + j * h->col_w, xc = x + h->col_w / 2, yc = y + h->row_h / 2;
    int base = is_base(a, j);
    int na = !e || (base ? !(isfinite(e->acc) || isfinite(e->ppl)) : !isfinite(e->delta));
    struct rgb fill = na ? NA_FILL : base ? BASE_FILL : chart_diverging(e->delta * 100 / h->range);

    set_rgb(cr, fill);
    cairo_rectangle(cr, x + 0.5, y + 0.5, h->col_w - 1, h->row_h - 1);
    cairo_fill(cr);
    if (na)
        heat_cell_na(h, xc, yc);
    else if (base)
        heat_cell_base(h, h->rows[r], e, xc, yc);
    else
        heat_cell_delta(h, e, chart_text_on(fill), xc, yc);
}

/* Row r: a rule above the overall row, the label, the cells, then a bold border on each loss
 * beyond the slice's tolerance. */
static void heat_row(struct heat *h, int64_t r)
{
    const struct qb_analysis *a = h->c->a;
    cairo_t *cr = h->c->cr;
    int ov = h->rows[r] == &a->overall;
    double y = h->gy0 + r * h->row_h + (ov ? h->gap : 0), gx0 = h->gx0, row_h = h->row_h;
    int64_t n = heat_n(h, r);
    char b[NAME_B], t[160];

    if (ov) {
        set_rgb(cr, RULE);
        cairo_set_line_width(cr, 0.6);
        cairo_move_to(cr, h->c->x0, y - h->gap / 2);
        cairo_line_to(cr, gx0 + h->nc * h->col_w, y - h->gap / 2);
        cairo_stroke(cr);
    }
    /* label, right-aligned against the grid */
    chart_font(cr, T_SMALL, 0);
    snprintf(t, sizeof t, "n=%lld", (long long)n);
    double nw = chart_text_w(cr, t);
    if (row_h >= T_SMALL) {
        set_rgb(cr, FAINT);
        chart_text(cr, gx0 - 6, y + row_h / 2, t, HR, VM);
        chart_font(cr, T_SUB, ov);
        set_rgb(cr, INK);
        chart_text(
            cr, gx0 - 11 - nw, y + row_h / 2,
            chart_fit(cr, ov ? "overall" : h->rows[r]->name, h->label_w - nw - 5, b, sizeof b), HR,
            VM);
    }
    for (int64_t j = 0; j < h->nc; j++)
        heat_cell(h, r, j, y);
    /* bold borders after the fills, so neighbours do not paint over them */
    for (int64_t j = 0; j < h->nc; j++) {
        const struct qb_an_cell *e = cell_of(h->rows[r], j);
        if (is_base(a, j) || !e || !isfinite(e->delta) ||
            !(-e->delta * 100 > h->rows[r]->tolerance))
            continue;
        set_rgb(cr, INK);
        cairo_set_line_width(cr, 1.6);
        cairo_rectangle(cr, gx0 + j * h->col_w + 1.3, y + 1.3, h->col_w - 2.6, row_h - 2.6);
        cairo_stroke(cr);
    }
}

/* Rows, then measure the legends so the grid can take the rest, the grid, the legends under it. */
int chart_heatmap(struct chart *c)
{
    struct heat h = {.c = c, .nc = c->a->n_configs};
    double y1_full, leg_h;

    if (heat_rows(&h) < 0)
        goto out;
    if (h.nc <= 0 || h.nr == 0) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
        goto out;
    }
    heat_scale(&h);
    /* measure the legends (drawn into a discarded group) so they can sit under the grid */
    y1_full = c->y1;
    cairo_push_group(c->cr);
    heat_legends(&h, h.any_na);
    cairo_pattern_destroy(cairo_pop_group(c->cr));
    leg_h = y1_full - c->y1;
    if (!heat_layout(&h)) {
        chart_missing(c->cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        goto out;
    }
    heat_column_heads(&h);
    for (int64_t r = 0; r < h.nr; r++)
        heat_row(&h, r);
    c->y1 = fmin(y1_full, h.gy0 + h.nr * h.row_h + h.gap + 12 + leg_h);
    heat_legends(&h, h.used_nm);
out:
    free(h.rows);
    return 0;
}
