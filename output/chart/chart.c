/* chart: the brief's charts (output/chart.h), drawn with Cairo: checks the request, makes the
 * surface at the raster scale, runs one chart function (chart_heatmap.c, chart_ladder.c,
 * chart_acc_memory.c, chart_bars.c) and hands back PNG bytes or raw pixels; also the helpers
 * that read the analysis for every chart. The drawing helpers the charts share are in
 * chart_style.c and chart_axis.c (output/chart_int.h documents them). */
#include "output/chart/chart.h"

#include "kernels/base/err.h"
#include "output/chart/chart_int.h"

#include <cairo.h>

#include <dlfcn.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PX 16384 /* per side; Cairo's limit is 32767 */

static const char *const kind_names[QB_CHART_N_KINDS] = {
    [QB_CHART_HEATMAP] = "heatmap",
    [QB_CHART_LADDER] = "ladder",
    [QB_CHART_ACC_MEMORY] = "acc_memory",
    [QB_CHART_LATENCY] = "latency",
    [QB_CHART_TTFT] = "ttft",
    [QB_CHART_KL_FLIPS] = "kl_flips",
    [QB_CHART_ACC_TPOT] = "acc_tpot",
    [QB_CHART_SENSITIVITY] = "sensitivity",
};

int qb_chart_kind_parse(const char *name, enum qb_chart_kind *out)
{
    for (int k = 0; k < QB_CHART_N_KINDS; k++)
        if (name && strcmp(name, kind_names[k]) == 0) {
            *out = (enum qb_chart_kind)k;
            return 0;
        }
    return qb_err(
        QB_EINVAL,
        "unknown chart '%s' (known: heatmap, ladder, acc_memory, latency, ttft, kl_flips, "
        "acc_tpot, sensitivity)",
        name ? name : "(null)");
}

const char *qb_chart_kind_name(enum qb_chart_kind k)
{
    return (int)k >= 0 && k < QB_CHART_N_KINDS ? kind_names[k] : "unknown";
}

/* ---- shared data helpers ------------------------------------------------------------------- */

/* "95% CI..." at the analysis's confidence */
const char *chart_conf_text(const struct chart *c, const char *fmt_rest, char *b, size_t n)
{
    double conf = c->a->confidence > 0 && c->a->confidence < 1 ? c->a->confidence : 0.95;
    snprintf(b, n, "%g%% %s", round(conf * 1000) / 10, fmt_rest);
    return b;
}

const char *chart_base_name(const struct chart *c)
{
    const struct qb_analysis *a = c->a;
    if (a->baseline >= 0 && a->baseline < a->n_configs && a->configs[a->baseline].spec)
        return a->configs[a->baseline].spec;
    return "baseline";
}

/* The row ACC_MEMORY and KL_FLIPS plot: the chosen slice, else the overall row, else the only
 * slice. */
const struct qb_an_slice *chart_main_row(const struct chart *c)
{
    if (c->sel)
        return c->sel;
    if (c->a->overall.cells)
        return &c->a->overall;
    if (c->a->n_slices == 1)
        return &c->a->slices[0];
    return NULL;
}

/* ---- raster and PNG ------------------------------------------------------------------------ */

struct membuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
};

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int len)
{
    struct membuf *m = closure;
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->n + len)
            cap *= 2;
        unsigned char *p = realloc(m->p, cap);
        if (!p) {
            m->oom = 1;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
    return CAIRO_STATUS_SUCCESS;
}

static int cairo_fail(cairo_status_t st, const char *what, enum qb_chart_kind k)
{
    if (st == CAIRO_STATUS_NO_MEMORY)
        return qb_err(QB_ENOMEM, "chart '%s': out of memory %s", qb_chart_kind_name(k), what);
    return qb_err(QB_EIO, "chart '%s': %s: %s", qb_chart_kind_name(k), what,
                  cairo_status_to_string(st));
}

/* The chart of each kind, as chart.h lists them. */
static int (*const draw[QB_CHART_N_KINDS])(struct chart *c) = {
    [QB_CHART_HEATMAP] = chart_heatmap,
    [QB_CHART_LADDER] = chart_ladder,
    [QB_CHART_ACC_MEMORY] = chart_acc_memory,
    [QB_CHART_LATENCY] = chart_latency,
    [QB_CHART_TTFT] = chart_ttft,
    [QB_CHART_KL_FLIPS] = chart_kl_flips,
    [QB_CHART_ACC_TPOT] = chart_acc_tpot,
    [QB_CHART_SENSITIVITY] = chart_sensitivity,
};

/* Checks a request (o NULL: the defaults, in *def) and fills c with it; *wpx x *hpx: the raster
 * size. QB_EINVAL for a missing analysis, an unknown kind, a size that is not positive or too
 * many pixels, a malformed analysis or an unknown slice. */
static int check_request(const struct qb_analysis *a, enum qb_chart_kind k,
                         const struct qb_chart_opts *o, struct chart *c, double *wpx, double *hpx)
{
    if (!a)
        return qb_err(QB_EINVAL, "chart: no analysis given");
    if ((int)k < 0 || k >= QB_CHART_N_KINDS)
        return qb_err(QB_EINVAL, "chart: unknown kind %d", (int)k);
    if (!(o->width_pt > 0) || !(o->height_pt > 0) || !(o->dpi > 0))
        return qb_err(QB_EINVAL, "chart '%s': size %g x %g pt at %g dpi is not positive",
                      kind_names[k], o->width_pt, o->height_pt, o->dpi);
    *wpx = round(o->width_pt * o->dpi / 72);
    *hpx = round(o->height_pt * o->dpi / 72);
    if (!(*wpx >= 1 && *hpx >= 1 && *wpx <= MAX_PX && *hpx <= MAX_PX))
        return qb_err(QB_EINVAL, "chart '%s': %g x %g pt at %g dpi is %.0f x %.0f pixels (1 to %d)",
                      kind_names[k], o->width_pt, o->height_pt, o->dpi, *wpx, *hpx, MAX_PX);
    if (a->n_configs < 0 || a->n_slices < 0 || (a->n_configs > 0 && !a->configs) ||
        (a->n_slices > 0 && !a->slices))
        return qb_err(QB_EINVAL, "chart '%s': malformed analysis", kind_names[k]);
    c->a = a;
    c->o = o;
    c->w = o->width_pt;
    c->h = o->height_pt;
    if (o->slice && (k == QB_CHART_LADDER || k == QB_CHART_ACC_MEMORY || k == QB_CHART_ACC_TPOT ||
                     k == QB_CHART_KL_FLIPS)) {
        for (int64_t i = 0; i < a->n_slices && !c->sel; i++)
            if (a->slices[i].name && strcmp(a->slices[i].name, o->slice) == 0)
                c->sel = &a->slices[i];
        if (!c->sel)
            return qb_err(QB_EINVAL, "chart '%s': no slice '%s' in the analysis", kind_names[k],
                          o->slice);
    }
    return 0;
}

/* A white wpx x hpx surface and its context scaled to points, fonts unhinted so the layout is
 * the same at any dpi. */
static int new_page(const struct chart *c, enum qb_chart_kind k, double wpx, double hpx,
                    cairo_surface_t **sf, cairo_t **cr)
{
    cairo_font_options_t *fo;
    cairo_status_t st;

    *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)wpx, (int)hpx);
    if ((st = cairo_surface_status(*sf)) != CAIRO_STATUS_SUCCESS)
        return cairo_fail(st, "creating the surface", k);
    *cr = cairo_create(*sf);
    if ((st = cairo_status(*cr)) != CAIRO_STATUS_SUCCESS)
        return cairo_fail(st, "creating the context", k);
    fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF); /* same layout at any dpi */
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(*cr, fo);
    cairo_font_options_destroy(fo);
    cairo_scale(*cr, wpx / c->w, hpx / c->h);
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    cairo_set_line_cap(*cr, CAIRO_LINE_CAP_BUTT);
    return 0;
}

/* Draws chart k on a fresh surface; *out owns it. */
static int render(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                  cairo_surface_t **out)
{
    struct qb_chart_opts def = QB_CHART_OPTS_INIT;
    struct chart c = {0};
    cairo_surface_t *sf = NULL;
    cairo_t *cr = NULL;
    cairo_status_t st;
    double wpx = 0, hpx = 0;
    int rc;

    *out = NULL;
    if ((rc = check_request(a, k, o ? o : &def, &c, &wpx, &hpx)) < 0)
        return rc;
    if ((rc = new_page(&c, k, wpx, hpx, &sf, &cr)) < 0)
        goto fail;
    c.cr = cr;
    chart_header(&c);
    if ((rc = draw[k](&c)) < 0)
        goto fail;
    if (c.oom) {
        rc = qb_err(QB_ENOMEM, "chart '%s': out of memory", kind_names[k]);
        goto fail;
    }
    if ((st = cairo_status(cr)) != CAIRO_STATUS_SUCCESS) {
        rc = cairo_fail(st, "drawing", k);
        goto fail;
    }
    cairo_destroy(cr);
    cairo_surface_flush(sf);
    *out = sf;
    return 0;
fail:
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    return rc;
}

int qb_chart_png(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                 unsigned char **png, size_t *n_png)
{
    cairo_surface_t *sf = NULL;
    struct membuf m = {0};
    cairo_status_t st;
    int rc;

    if (!png || !n_png)
        return qb_err(QB_EINVAL, "chart: no output given");
    *png = NULL;
    *n_png = 0;
    if ((rc = render(a, k, o, &sf)) < 0)
        return rc;
    st = cairo_surface_write_to_png_stream(sf, png_write, &m);
    cairo_surface_destroy(sf);
    if (m.oom || st == CAIRO_STATUS_NO_MEMORY) {
        free(m.p);
        return qb_err(QB_ENOMEM, "chart '%s': out of memory writing the png", kind_names[k]);
    }
    if (st != CAIRO_STATUS_SUCCESS) {
        free(m.p);
        return qb_err(QB_EIO, "chart '%s': cannot write the png: %s", kind_names[k],
                      cairo_status_to_string(st));
    }
    *png = m.p;
    *n_png = m.n;
    return 0;
}

int qb_chart_rgb(const struct qb_analysis *a, enum qb_chart_kind k, const struct qb_chart_opts *o,
                 unsigned char **rgb, int *width, int *height)
{
    cairo_surface_t *sf = NULL;
    unsigned char *px, *p;
    int w, h, stride, rc;

    if (!rgb || !width || !height)
        return qb_err(QB_EINVAL, "chart: no output given");
    *rgb = NULL;
    *width = *height = 0;
    if ((rc = render(a, k, o, &sf)) < 0)
        return rc;
    w = cairo_image_surface_get_width(sf);
    h = cairo_image_surface_get_height(sf);
    stride = cairo_image_surface_get_stride(sf);
    px = cairo_image_surface_get_data(sf);
    p = malloc((size_t)w * h * 3);
    if (!p) {
        cairo_surface_destroy(sf);
        return qb_err(QB_ENOMEM, "chart '%s': out of memory (%d x %d pixels)", kind_names[k], w, h);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v;
            memcpy(&v, px + (size_t)y * stride + (size_t)x * 4, 4); /* native-endian xRGB */
            p[((size_t)y * w + x) * 3 + 0] = v >> 16 & 255;
            p[((size_t)y * w + x) * 3 + 1] = v >> 8 & 255;
            p[((size_t)y * w + x) * 3 + 2] = v & 255;
        }
    cairo_surface_destroy(sf);
    *rgb = p;
    *width = w;
    *height = h;
    return 0;
}

void qb_chart_release_caches(void)
{
    void (*fc_fini)(void);

    cairo_debug_reset_static_data();
    /* then fontconfig's configuration, as Cairo's own test suite does; looked up at run time
     * because fontconfig is Cairo's dependency, not one this program links by name */
    *(void **)&fc_fini = dlsym(RTLD_DEFAULT, "FcFini");
    if (fc_fini)
        fc_fini();
}
