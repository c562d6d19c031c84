/* chart_heatmap: QB_CHART_HEATMAP (output/chart.h), slices x configs, each cell the accuracy
 * change vs the baseline in points with its interval, coloured on a diverging map centred on
 * zero; the baseline column grey with its accuracy; a colour bar and legend underneath. */
#include "output/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- heatmap ------------------------------------------------------------------------------- */

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

static void heat_legends(struct chart *c, double range, int saturated, int any_beyond, int any_sig,
                         int any_nm)
{
    struct legend_item it[4];
    int n = 0;
    char bt[LINE_B], ct[64];

    chart_conf_text(c, "CI excludes 0", ct + 2, sizeof ct - 2);
    memcpy(ct, "* ", 2);
    heat_colourbar(c, range, saturated);
    snprintf(bt, sizeof bt, "grey column: %s accuracy", chart_base_name(c));
    if (any_beyond)
        it[n++] = (struct legend_item){SYM_BOLDBOX, INK, "loss beyond the slice's tolerance"};
    if (any_sig)
        it[n++] = (struct legend_item){SYM_NONE, INK, ct};
    it[n++] = (struct legend_item){SYM_SWATCH, BASE_FILL, bt};
    if (any_nm)
        it[n++] = (struct legend_item){SYM_NONE, INK, "n/m: not measured"};
    chart_legend(c, it, n);
}

int chart_heatmap(struct chart *c)
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
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "accuracy not measured");
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
        chart_font(cr, T_SUB, rows[r] == &a->overall);
        double w = chart_text_w(
            cr, chart_fit(cr, rows[r] == &a->overall ? "overall" : rows[r]->name, name_cap, b, sizeof b));
        chart_font(cr, T_SMALL, 0);
        snprintf(t, sizeof t, "n=%lld", (long long)n);
        label_w = fmax(label_w, w + 5 + chart_text_w(cr, t));
    }
    label_w = fmin(label_w, 0.38 * c->w);

    /* column headers */
    gx0 = c->x0 + label_w + 6;
    col_w = fmin((c->x1 - gx0) / nc, 72);
    chart_font(cr, T_SMALL, 0);
    double spec_w = chart_config_names_w(c, 90);
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
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "too small to draw");
        free(rows);
        return 0;
    }

    for (int64_t j = 0; j < nc; j++) {
        double xc = gx0 + (j + 0.5) * col_w;
        set_rgb(cr, chart_config_colour(a, j));
        cairo_rectangle(cr, gx0 + j * col_w + 1, gy0 - 4.5, col_w - 2, 3);
        cairo_fill(cr);
        chart_font(cr, T_SMALL, 0);
        set_rgb(cr, is_base(a, j) ? DIM : INK);
        if (!rotate)
            chart_text(cr, xc, gy0 - 7, chart_fit(cr, a->configs[j].spec, col_w - 2, b, sizeof b), HC, VB);
        else {
            double room = fmin(90, (c->w - 3 - xc) / cos(M_PI / 4));
            chart_text_rot(cr, xc - 2, gy0 - 8, -45, chart_fit(cr, a->configs[j].spec, room, b, sizeof b), HL,
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
        chart_font(cr, T_SMALL, 0);
        snprintf(t, sizeof t, "n=%lld", (long long)n);
        double nw = chart_text_w(cr, t);
        if (row_h >= T_SMALL) {
            set_rgb(cr, FAINT);
            chart_text(cr, gx0 - 6, y + row_h / 2, t, HR, VM);
            chart_font(cr, T_SUB, ov);
            set_rgb(cr, INK);
            chart_text(cr, gx0 - 11 - nw, y + row_h / 2,
                    chart_fit(cr, ov ? "overall" : rows[r]->name, label_w - nw - 5, b, sizeof b), HR, VM);
        }

        for (int64_t j = 0; j < nc; j++) {
            const struct qb_an_cell *e = cell_of(rows[r], j);
            double x = gx0 + j * col_w, xc = x + col_w / 2, yc = y + row_h / 2;
            struct rgb fill, tc;
            int two = row_h >= 2 * T_SMALL * 1.2 + 4, base = is_base(a, j);
            int na = !e || (base ? !(isfinite(e->acc) || isfinite(e->ppl)) : !isfinite(e->delta));

            fill = na ? NA_FILL : base ? BASE_FILL : chart_diverging(e->delta * 100 / range);
            set_rgb(cr, fill);
            cairo_rectangle(cr, x + 0.5, y + 0.5, col_w - 1, row_h - 1);
            cairo_fill(cr);
            tc = chart_text_on(fill);
            if (na) {
                chart_font_italic(cr, T_SMALL);
                set_rgb(cr, DIM);
                if (chart_text_w(cr, "not measured") <= col_w - 4)
                    chart_text(cr, xc, yc, "not measured", HC, VM);
                else if (two && chart_text_w(cr, "measured") <= col_w - 4) {
                    chart_text(cr, xc, yc - 1, "not", HC, VB);
                    chart_text(cr, xc, yc + 1, "measured", HC, VT);
                } else if (chart_text_w(cr, "n/m") <= col_w - 2 && row_h >= T_SMALL) {
                    chart_text(cr, xc, yc, "n/m", HC, VM);
                    used_nm = 1;
                }
                continue;
            }
            if (base) {
                if (rows[r]->is_perplexity || !isfinite(e->acc))
                    snprintf(d, sizeof d, "ppl "), chart_fmt_sig(d + 4, sizeof d - 4, e->ppl);
                else {
                    chart_fmt_num(d, sizeof d, e->acc * 100, 1, 0);
                    strcat(d, "%");
                }
                chart_font(cr, T_SMALL, 0);
                set_rgb(cr, INK);
                if (chart_text_w(cr, d) > col_w - 3 && d[0] == 'p')
                    memmove(d, d + 4, strlen(d + 4) + 1); /* "11.8" without "ppl " */
                if (chart_text_w(cr, d) <= col_w - 3 && row_h >= T_SMALL)
                    chart_text(cr, xc, yc, d, HC, VM);
                continue;
            }
            int sig = e->delta_ci.hi < 0 || e->delta_ci.lo > 0;
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

