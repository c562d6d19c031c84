/* chart_sensitivity: QB_CHART_SENSITIVITY (output/chart.h), the sensitivity scan of the run's
 * model (analysis/analyze_sens.h) as a heatmap: layers down, matrix kinds across (one column,
 * "layer", for a scan by whole layers), the output head and the embeddings as a last row;
 * each cell the unit's share of the summed damage (mean KL from the baseline when quantized
 * alone), coloured white to red by its KL, "n/m" where the scan has no such unit. */
#include "analysis/analyze.h"
#include "analysis/analyze_sens.h"
#include "output/chart/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kinds[] = {"q", "k", "v", "o", "gate", "up", "down"};

/* The unit at layer l (-1: the model row) and column name, or NULL. */
static const struct qb_an_sens_unit *unit_at(const struct qb_an_sens *s, int64_t l, const char *col)
{
    for (int64_t i = 0; i < s->n_units; i++)
        if (s->units[i].layer == l && !strcmp(s->units[i].tensor, col))
            return &s->units[i];
    return NULL;
}

static void cell(struct chart *c, const struct qb_an_sens_unit *u, double x, double y, double w,
                 double h, double max_kl, double total)
{
    cairo_t *cr = c->cr;
    char b[32];
    if (!u) {
        set_rgb(cr, NA_FILL);
        cairo_rectangle(cr, x, y, w - 1, h - 1);
        cairo_fill(cr);
        return;
    }
    double t = max_kl > 0 && u->kl > 0 ? sqrt(u->kl / max_kl) : 0; /* small ones stay visible */
    struct rgb fill = chart_diverging(-(t > 1 ? 1 : t));
    set_rgb(cr, fill);
    cairo_rectangle(cr, x, y, w - 1, h - 1);
    cairo_fill(cr);
    snprintf(b, sizeof b, "%.0f%%", total > 0 && u->kl > 0 ? 100 * u->kl / total : 0.0);
    chart_font(cr, T_SMALL, 0);
    set_rgb(cr, chart_text_on(fill));
    chart_text(cr, x + w / 2, y + h / 2, b, HC, VM);
}

int chart_sensitivity(struct chart *c)
{
    const struct qb_an_sens *s = c->a->sens;
    cairo_t *cr = c->cr;
    char note[LINE_B];
    double max_kl = 0, total = 0;

    chart_header(c);
    if (!s || s->n_units == 0) {
        chart_missing(cr, c->x0, c->y0, c->x1, c->y1, "no sensitivity scan for this model");
        return 0;
    }
    for (int64_t i = 0; i < s->n_units; i++) {
        max_kl = s->units[i].kl > max_kl ? s->units[i].kl : max_kl;
        total += s->units[i].kl > 0 ? s->units[i].kl : 0;
    }
    snprintf(note, sizeof note,
             "%s one unit at a time, the rest %s; mean KL from %s on %s. Cells: share of the "
             "summed damage; darker red: more KL (square-root scale).",
             s->config, s->baseline, s->baseline, s->slice ? s->slice : "calibration text");
    chart_note(c, note);

    int by_layer = s->granularity && !strcmp(s->granularity, "layer");
    int nk = by_layer ? 1 : 7, ncols = nk + 2;
    int64_t nrows = s->n_layers + 1;
    chart_font(cr, T_SUB, 0);
    double label_w = chart_text_w(cr, "L000") + 8;
    double gx0 = c->x0 + label_w, head_h = T_SUB * 1.6;
    double col_w = (c->x1 - gx0) / ncols, row_h = (c->y1 - c->y0 - head_h) / (double)nrows;
    row_h = row_h > 22 ? 22 : row_h;
    double gy0 = c->y0 + head_h;

    set_rgb(cr, DIM);
    for (int k = 0; k < ncols; k++) {
        const char *name = k < nk ? (by_layer ? "layer" : kinds[k]) : k == nk ? "output" : "embed";
        chart_text(cr, gx0 + (k + 0.5) * col_w, gy0 - 3, name, HC, VB);
    }
    for (int64_t l = 0; l < nrows; l++) {
        char lab[24];
        int model_row = l == s->n_layers;
        double y = gy0 + (double)l * row_h;
        snprintf(lab, sizeof lab, model_row ? "model" : "L%lld", (long long)l);
        set_rgb(cr, DIM);
        chart_font(cr, T_SUB, 0);
        chart_text(cr, gx0 - 4, y + row_h / 2, lab, HR, VM);
        for (int k = 0; k < ncols; k++) {
            const char *col = k < nk    ? (by_layer ? "layer" : kinds[k])
                              : k == nk ? "output"
                                        : "embed";
            if (model_row != (k >= nk))
                continue; /* output and embed only on the model row */
            cell(c, unit_at(s, model_row ? -1 : l, col), gx0 + k * col_w, y, col_w, row_h, max_kl,
                 total);
        }
    }
    return 0;
}
