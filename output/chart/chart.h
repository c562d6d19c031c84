/* chart: the brief's charts, drawn with Cairo from a struct qb_analysis. The only module that
 * includes cairo.h. Charts are drawn in points (1/72 inch) at the size they will be printed
 * and rasterised to PNG at a given DPI (300 for the PDF: crisp at print size; 150 for
 * Markdown), so text is at least 8 pt on paper.
 *
 *     struct qb_chart_opts o = QB_CHART_OPTS_INIT;     // 480 x 300 pt, 300 dpi
 *     o.title = "Arithmetic is the only slice that breaks at 4 bits";
 *     o.subtitle = "Accuracy change vs f32, points, 95% CI";
 *     unsigned char *png = NULL; size_t n = 0;
 *     if ((rc = qb_chart_png(a, QB_CHART_HEATMAP, &o, &png, &n)) < 0) goto fail;
 *     ...
 *     free(png);
 *
 * House rules (shared/BRIEF.md): configs always in ladder order (a->configs order), one colour
 * per config in every chart (Okabe-Ito; the baseline grey), deltas on a diverging
 * blue-white-red map centred on zero, every accuracy mark with its interval, every latency
 * bar with its p95 whisker, axis labels with units, labels rather than legends where they fit,
 * no meaning carried by red/green alone. Text uses the "DejaVu Sans" face.
 *
 * Inside the module: chart.c runs one chart function per kind (chart_heatmap.c,
 * chart_ladder.c, chart_acc_memory.c, chart_bars.c); the helpers they share -- colours, fonts,
 * text fitting and wrapping, numbers, axes, ticks, legends, headers, notes -- are in
 * chart_style.c and chart_axis.c and documented in chart_int.h.
 *
 * What each chart draws (so the brief's text can describe it):
 *  - heatmap: the overall row under the slices; the baseline column grey with its accuracy
 *    (perplexity for perplexity slices); colour saturates at five times the largest slice
 *    tolerance (the colour bar says "<=" then); "*" = interval excludes 0; bold border = point
 *    loss beyond the slice's tolerance; "not measured" (or "n/m") where delta is NAN.
 *  - ladder: 95% CI error bars; the slices whose first significant loss comes earliest on the
 *    ladder are coloured (Tol "vibrant"), the others grey, the overall row dashed black;
 *    tolerances dashed; names at the line ends. opts.slice: that slice alone, values labelled.
 *  - acc_memory: the overall row (or opts.slice); filled = on the Pareto frontier (the
 *    analysis's flags; recomputed when none is set), hollow = dominated; x log-scaled when
 *    memory spans more than 10x; perplexity slices plot perplexity (lower is better).
 *  - latency: the baseline's first latency setting; labels "p50 ms . tok/s . speed-up".
 *  - ttft: one panel per prompt length (at most 4, spread over the lengths measured).
 *  - acc_tpot: as acc_memory with the x axis the p50 time per output token at each config's
 *    first latency setting (lat_cost); the frontier recomputed on it.
 *  - kl_flips: the overall row (or opts.slice); flip-rate intervals are Wilson at
 *    a->confidence from (flips_lost + flips_gained) of n.
 */
#ifndef QB_CHART_H
#define QB_CHART_H

#include <stddef.h>

struct qb_analysis;

enum qb_chart_kind {
    QB_CHART_HEATMAP, /* slices x configs, accuracy delta in points, cells show "−3.1 ±2.0" */
    QB_CHART_LADDER,  /* lines per slice: delta (points) vs ladder position, CI bars, tolerance */
    QB_CHART_ACC_MEMORY, /* overall and per-slice accuracy vs memory (GiB/MiB), Pareto frontier */
    QB_CHART_LATENCY,    /* per config: p50 TPOT bars with p95 whiskers, and decode tokens/s */
    QB_CHART_TTFT,       /* per config and prompt length: p50 TTFT bars with p95 whiskers */
    QB_CHART_KL_FLIPS,   /* per config: mean KL (bars, log scale) and flip rate (points) */
    QB_CHART_ACC_TPOT,   /* as acc_memory, against the p50 time per output token */
    /* layers x matrix kinds: each unit's damage quantized alone (a->sens) */
    QB_CHART_SENSITIVITY,
    QB_CHART_N_KINDS
};

struct qb_chart_opts {
    double width_pt, height_pt; /* drawing size in points */
    double dpi;                 /* raster resolution */
    const char *title;          /* the finding; may be NULL */
    const char *subtitle;       /* what is plotted and units; may be NULL */
    const char *slice;          /* LADDER / ACC_MEMORY: one slice only; NULL = all / overall */
};
#define QB_CHART_OPTS_INIT                                                                         \
    {                                                                                              \
        480.0, 300.0, 300.0, NULL, NULL, NULL                                                      \
    }

/* "heatmap", "ladder", "acc_memory", "latency", "ttft", "kl_flips", "acc_tpot", "sensitivity" <->
 * enum; QB_EINVAL when unknown (the message lists the names). */
int qb_chart_kind_parse(const char *name, enum qb_chart_kind *out);
const char *qb_chart_kind_name(enum qb_chart_kind k);

/* Draws chart k of a as a PNG in memory; *png is malloc'd (caller frees). A chart with
 * nothing to show (no latency measured) still renders, saying so in its plot area. */
int qb_chart_png(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                 unsigned char **png /* out */, size_t *n_png /* out */);

/* The same drawing as raw pixels: *rgb is malloc'd (caller frees), 3 bytes per pixel (R, G, B),
 * rows top to bottom, *width x *height. For tests and thumbnails. */
int qb_chart_rgb(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                 unsigned char **rgb /* out */, int *width /* out */, int *height /* out */);

/* Frees the font caches Cairo keeps for the life of the process, so leak checkers see a clean
 * exit; call only when no chart is being drawn (the next chart rebuilds them). */
void qb_chart_release_caches(void);

#endif
