/* test_chart: every chart renders for a hand-built analysis (8 configs, 6 slices, a cliff,
 * NANs, a config without latency) and for degenerate ones; PNG size matches the request;
 * the heatmap's colours mean what the legend says. QB_CHART_DUMP=/dir writes every chart
 * drawn here as a PNG to look at. */
#include "tests/check.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "output/chart/chart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- a synthetic analysis, built by hand (qb_analyze is not used) ------------------------- */

#define NC 8
#define NS 6

static char specs[NC][8] = {"f32", "bf16", "fp8", "w8a8", "w4g128", "w4g32", "w3g64", "w2g32"};
static const double bpw[NC] = {32, 16, 8, 8, 4.125, 4.5, 3.25, 2.5};
/* per slice: name, items, baseline accuracy (or perplexity), tolerance, deltas in points
 * (perplexity slice: -percent of perplexity) for configs 1..7; NAN = not measured */
static struct {
    char name[16];
    int64_t n;
    double base, tol;
    int ppl;
    double d[NC];
} sl[NS] = {
    {"facts", 300, 0.62, 2.0, 0, {0, 0.0, -0.3, -0.5, -1.2, -0.9, -3.5, -12.0}},
    {"arithmetic", 240, 0.71, 3.0, 0, {0, 0.1, -0.4, -0.8, -9.1, -7.5, -21.0, -38.0}},
    {"retrieval", 200, 0.80, 2.0, 0, {0, 0.0, 0.2, -0.3, -0.8, -0.5, -2.1, -8.0}},
    {"code", 40, 0.35, 2.0, 0, {0, 0.0, NAN, -2.5, -5.0, -2.5, -10.0, -25.0}},
    {"json", 150, 0.88, 2.0, 0, {0, 0.0, -0.1, 0.4, -1.0, -0.6, -2.8, -15.0}},
    {"chat", 120, 11.8, 2.0, 1, {0, -0.2, -0.4, -0.6, -3.0, -2.0, -9.0, -35.0}},
};
static const double kl[NC] = {NAN, 0.0004, 0.003, 0.005, 0.04, 0.03, 0.12, 0.6};
static const double tpot[NC] = {61, 34, 22, 18, 12.4, 13.1, 11.2, NAN}; /* w2g32: no latency */

static void wilson95(double p, int64_t n, struct qb_interval *ci)
{
    double z = 1.959964, d = 1 + z * z / n, c = (p + z * z / (2.0 * n)) / d;
    double h = z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / d;
    ci->lo = c - h;
    ci->hi = c + h;
}

static void fill_cell(struct qb_an_cell *e, double base, double dpts, int64_t n, double tol,
                      int ppl, double klv, int is_base)
{
    double d = dpts / 100, hw = is_base ? 0 : 1.959964 * sqrt((0.01 + fabs(d)) / n);
    e->n = n;
    if (ppl) {
        e->acc = NAN;
        e->acc_ci.lo = e->acc_ci.hi = NAN;
        e->ppl = isfinite(d) ? base * (1 - d) : NAN;
        e->ppl_ratio = isfinite(d) ? 1 - d : NAN;
    } else {
        e->acc = base + d;
        e->n_correct = (int64_t)llround(e->acc * n);
        wilson95(e->acc, n, &e->acc_ci);
        e->ppl = e->ppl_ratio = NAN;
    }
    e->delta = d;
    e->delta_ci.lo = d - hw;
    e->delta_ci.hi = d + hw;
    e->mcnemar_p = is_base ? 1 : 0.5;
    double fr = is_base ? 0 : 0.01 + 0.5 * sqrt(klv);
    if (isfinite(d) && !ppl) {
        e->flips_lost = (int64_t)llround(n * (fr / 2 - fmin(d, 0) / 2));
        e->flips_gained = (int64_t)llround(n * (fr / 2 + fmax(d, 0) / 2));
        e->flip_rate = (double)(e->flips_lost + e->flips_gained) / n;
    } else
        e->flip_rate = NAN;
    e->kl_mean = klv;
    e->kl_p99 = klv * 6;
    e->top1 = 1 - fr;
    e->mde = 2.8 * sqrt(fmax(fr, 0.01) / n);
    e->underpowered = e->mde * 100 > tol;
    e->within = isfinite(d) && -(d - hw) * 100 <= tol;
    e->significant_loss = isfinite(d) && -d * 100 > tol && d + hw < 0;
}

static struct qb_analysis *synth(int n_configs, int n_slices, int with_latency)
{
    struct qb_analysis *a = calloc(1, sizeof *a);
    a->confidence = 0.95;
    a->n_configs = n_configs;
    a->configs = calloc((size_t)n_configs, sizeof *a->configs);
    a->baseline = 0;
    for (int j = 0; j < n_configs; j++) {
        struct qb_an_config *cf = &a->configs[j];
        cf->spec = specs[j];
        cf->is_baseline = j == 0;
        cf->ladder = j;
        cf->bits_per_weight = bpw[j];
        cf->weight_bytes = (int64_t)(1.1e9 * bpw[j] / 8);
        cf->peak_rss_bytes = j == 6 ? -1 : cf->weight_bytes + 180 * 1048576LL;
        cf->mem_cost = (double)(cf->peak_rss_bytes > 0 ? cf->peak_rss_bytes : cf->weight_bytes);
        cf->lat_cost = tpot[j];
        if (with_latency && isfinite(tpot[j])) {
            cf->n_lat = 2;
            cf->lat = calloc(2, sizeof *cf->lat);
            for (int i = 0; i < 2; i++) {
                struct qb_an_latency *l = &cf->lat[i];
                l->prompt_len = i ? 512 : 128;
                l->gen_len = 128;
                l->batch = 1;
                l->n_samples = 5;
                l->tpot_p50 = tpot[j] * (i ? 1.04 : 1);
                l->tpot_p95 = l->tpot_p50 * 1.12;
                l->tpot_p99 = l->tpot_p50 * 1.2;
                l->ttft_p50 = tpot[j] * 14 * (i ? 4.3 : 1);
                l->ttft_p95 = l->ttft_p50 * 1.08;
                l->decode_tok_s_p50 = 1000 / l->tpot_p50;
                l->speedup_tpot = tpot[0] / tpot[j];
                l->speedup_ttft = tpot[0] / tpot[j];
            }
        }
    }
    for (int j = 1; j < n_configs; j++)
        a->configs[j].mem_saving = 1 - a->configs[j].mem_cost / a->configs[0].mem_cost;

    a->n_slices = n_slices;
    a->slices = calloc((size_t)n_slices + 1, sizeof *a->slices);
    for (int i = 0; i < n_slices; i++) {
        struct qb_an_slice *s = &a->slices[i];
        s->name = sl[i].name;
        s->is_perplexity = sl[i].ppl;
        s->n_items = sl[i].n;
        s->tolerance = sl[i].tol;
        s->traffic = 1.0 / n_slices;
        s->cliff = -1;
        s->cells = calloc((size_t)n_configs, sizeof *s->cells);
        for (int j = 0; j < n_configs; j++)
            fill_cell(&s->cells[j], sl[i].base, sl[i].d[j], sl[i].n, sl[i].tol, sl[i].ppl, kl[j],
                      j == 0);
    }
    if (n_slices > 1) { /* pooled accuracy slices */
        struct qb_an_slice *o = &a->overall;
        o->name = (char *)"overall";
        o->tolerance = 2.0;
        o->cliff = -1;
        o->cells = calloc((size_t)n_configs, sizeof *o->cells);
        int64_t n = 0;
        double base = 0;
        for (int i = 0; i < n_slices; i++)
            if (!sl[i].ppl) {
                n += sl[i].n;
                base += sl[i].base * sl[i].n;
            }
        base /= n;
        for (int j = 0; j < n_configs; j++) {
            double d = 0;
            int64_t m = 0;
            for (int i = 0; i < n_slices; i++)
                if (!sl[i].ppl && isfinite(sl[i].d[j])) {
                    d += sl[i].d[j] * sl[i].n;
                    m += sl[i].n;
                }
            fill_cell(&o->cells[j], base, m ? d / m : NAN, m ? m : n, 2.0, 0, kl[j], j == 0);
        }
    }
    if (n_slices > 1 && n_configs > 4) { /* arithmetic breaks between w8a8 and w4g128 */
        a->n_cliffs = 1;
        a->cliffs = calloc(1, sizeof *a->cliffs);
        a->cliffs[0].slice = 1;
        a->cliffs[0].above = 3;
        a->cliffs[0].below = 4;
        a->cliffs[0].loss = 0.091;
        a->cliffs[0].hides = 1;
        a->slices[1].cliff = 0;
    }
    return a;
}

static void synth_free(struct qb_analysis *a)
{
    if (!a)
        return;
    for (int64_t j = 0; j < a->n_configs; j++)
        free(a->configs[j].lat);
    for (int64_t i = 0; i < a->n_slices; i++)
        free(a->slices[i].cells);
    free(a->overall.cells);
    free(a->slices);
    free(a->configs);
    free(a->cliffs);
    free(a);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void dump(const char *name, const unsigned char *png, size_t n)
{
    const char *dir = getenv("QB_CHART_DUMP");
    char path[1024];
    FILE *f;
    if (!dir || !*dir)
        return;
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    if (!(f = fopen(path, "wb")) || fwrite(png, 1, n, f) != n)
        fprintf(stderr, "cannot write %s\n", path);
    if (f)
        fclose(f);
}

/* Renders; checks the PNG signature and that IHDR holds the requested pixel size. */
static int render_ok(const struct qb_analysis *a, enum qb_chart_kind k,
                     const struct qb_chart_opts *o, const char *dump_name)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    unsigned char *png = NULL;
    size_t n = 0;
    int rc = qb_chart_png(a, k, o, &png, &n);
    if (rc < 0)
        fprintf(stderr, "  %s: %s\n", qb_chart_kind_name(k), qb_errmsg());
    CHECK(rc == 0);
    if (rc < 0)
        return 0;
    CHECK(png != NULL && n > 33);
    CHECK(memcmp(png, sig, 8) == 0);
    CHECK(memcmp(png + 12, "IHDR", 4) == 0);
    CHECK(be32(png + 16) == (uint32_t)lround(o->width_pt * o->dpi / 72));
    CHECK(be32(png + 20) == (uint32_t)lround(o->height_pt * o->dpi / 72));
    CHECK(n > 2000); /* something drawn beyond a blank page */
    if (dump_name)
        dump(dump_name, png, n);
    free(png);
    return 1;
}

struct px_count {
    int64_t red, blue, near_white, na_grey, total;
};

static int count_px(const struct qb_analysis *a, enum qb_chart_kind k,
                    const struct qb_chart_opts *o, struct px_count *pc)
{
    unsigned char *rgb = NULL;
    int w = 0, h = 0, rc = qb_chart_rgb(a, k, o, &rgb, &w, &h);
    memset(pc, 0, sizeof *pc);
    CHECK(rc == 0);
    if (rc < 0)
        return rc;
    CHECK(w == lround(o->width_pt * o->dpi / 72) && h == lround(o->height_pt * o->dpi / 72));
    for (int64_t i = 0; i < (int64_t)w * h; i++) {
        int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        pc->red += r - (g > b ? g : b) > 60;
        pc->blue += b - (r > g ? r : g) > 40;
        pc->near_white += abs(r - 247) <= 2 && abs(g - 247) <= 2 && abs(b - 247) <= 2;
        pc->na_grey += r == 243 && g == 243 && b == 243;
    }
    pc->total = (int64_t)w * h;
    free(rgb);
    return 0;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_kind_names(void)
{
    enum qb_chart_kind k;
    for (int i = 0; i < QB_CHART_N_KINDS; i++) {
        const char *name = qb_chart_kind_name((enum qb_chart_kind)i);
        CHECK(strcmp(name, "unknown") != 0);
        CHECK(qb_chart_kind_parse(name, &k) == 0 && (int)k == i);
    }
    CHECK(qb_chart_kind_parse("heatmap", &k) == 0 && k == QB_CHART_HEATMAP);
    CHECK(qb_chart_kind_parse("kl_flips", &k) == 0 && k == QB_CHART_KL_FLIPS);
    CHECK(qb_chart_kind_parse("pie", &k) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "'pie'") && strstr(qb_errmsg(), "acc_memory"));
    CHECK(qb_chart_kind_parse("Heatmap", &k) == QB_EINVAL);
    CHECK(qb_chart_kind_parse("", &k) == QB_EINVAL);
    CHECK(strcmp(qb_chart_kind_name(QB_CHART_N_KINDS), "unknown") == 0);
}

static const char *const titles[QB_CHART_N_KINDS] = {
    "Arithmetic is the only slice that breaks at 4 bits",
    "Arithmetic falls off between w8a8 and w4g128; other slices hold to 4 bits",
    "w4g128 keeps accuracy within 2 points at a sixth of the memory",
    "4-bit configs decode 4.9x faster than f32",
    "Time to first token grows with the prompt; 4-bit is 5x faster than f32",
    "KL divergence and flipped answers grow as bits fall",
};
static const char *const subtitles[QB_CHART_N_KINDS] = {
    "Accuracy change vs f32 per slice, points, 95% CI half-width; perplexity slices: % of "
    "perplexity",
    "Accuracy change vs f32 in points down the precision ladder, 95% CI",
    "Overall accuracy (%) vs memory; 95% Wilson intervals",
    "Time per output token on 16 cores, ms; p50 bar, p95 whisker",
    "Time to first token, ms, by prompt length",
    "All slices pooled; mean KL (nats) and share of answers that changed",
};

static void test_every_kind_at_300_and_150_dpi(void)
{
    struct qb_analysis *a = synth(NC, NS, 1);
    char name[64];
    for (int k = 0; k < QB_CHART_N_KINDS; k++) {
        struct qb_chart_opts o = QB_CHART_OPTS_INIT;
        o.title = titles[k];
        o.subtitle = subtitles[k];
        CHECK(o.dpi == 300 && o.width_pt == 480 && o.height_pt == 300);
        render_ok(a, (enum qb_chart_kind)k, &o, NULL);
        o.dpi = 150;
        snprintf(name, sizeof name, "%s", qb_chart_kind_name((enum qb_chart_kind)k));
        render_ok(a, (enum qb_chart_kind)k, &o, name);
        /* a smaller page, a different aspect */
        o.width_pt = 340;
        o.height_pt = 260;
        o.dpi = 100;
        snprintf(name, sizeof name, "%s_small", qb_chart_kind_name((enum qb_chart_kind)k));
        render_ok(a, (enum qb_chart_kind)k, &o, name);
    }
    synth_free(a);
}

static void test_one_slice_option(void)
{
    struct qb_analysis *a = synth(NC, NS, 1);
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    unsigned char *png = NULL;
    size_t n = 0;
    o.dpi = 150;
    o.title = "Arithmetic loses 9.1 points at w4g128";
    o.subtitle = "Arithmetic, change vs f32 in points, 95% CI";
    o.slice = "arithmetic";
    render_ok(a, QB_CHART_LADDER, &o, "ladder_arithmetic");
    render_ok(a, QB_CHART_ACC_MEMORY, &o, "acc_memory_arithmetic");
    render_ok(a, QB_CHART_KL_FLIPS, &o, "kl_flips_arithmetic");
    o.slice = "chat"; /* a perplexity slice */
    render_ok(a, QB_CHART_ACC_MEMORY, &o, "acc_memory_chat");
    render_ok(a, QB_CHART_LADDER, &o, NULL);
    o.slice = "poetry";
    CHECK(qb_chart_png(a, QB_CHART_LADDER, &o, &png, &n) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "'poetry'") != NULL);
    CHECK(png == NULL && n == 0);
    synth_free(a);
}

static void test_bad_arguments(void)
{
    struct qb_analysis *a = synth(NC, NS, 1);
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    unsigned char *png = NULL;
    size_t n = 0;
    o.dpi = 0;
    CHECK(qb_chart_png(a, QB_CHART_HEATMAP, &o, &png, &n) == QB_EINVAL);
    o.dpi = 150;
    o.width_pt = -5;
    CHECK(qb_chart_png(a, QB_CHART_HEATMAP, &o, &png, &n) == QB_EINVAL);
    o.width_pt = NAN;
    CHECK(qb_chart_png(a, QB_CHART_HEATMAP, &o, &png, &n) == QB_EINVAL);
    o.width_pt = 1e6; /* 2 million pixels wide */
    CHECK(qb_chart_png(a, QB_CHART_HEATMAP, &o, &png, &n) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "pixels") != NULL);
    o.width_pt = 480;
    CHECK(qb_chart_png(a, QB_CHART_N_KINDS, &o, &png, &n) == QB_EINVAL);
    CHECK(qb_chart_png(NULL, QB_CHART_HEATMAP, &o, &png, &n) == QB_EINVAL);
    CHECK(png == NULL && n == 0);
    /* NULL opts: the defaults (480 x 300 pt at 300 dpi) */
    CHECK(qb_chart_png(a, QB_CHART_HEATMAP, NULL, &png, &n) == 0);
    CHECK(png && be32(png + 16) == 2000 && be32(png + 20) == 1250);
    free(png);
    synth_free(a);
}

static void test_degenerate_analyses(void)
{
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    char name[64];
    o.dpi = 150;
    o.title = "Only the baseline was measured";
    o.subtitle = "Nothing to compare";
    /* one config (the baseline), one slice, no latency */
    struct qb_analysis *a = synth(1, 1, 0);
    for (int k = 0; k < QB_CHART_N_KINDS; k++) {
        snprintf(name, sizeof name, "one_%s", qb_chart_kind_name((enum qb_chart_kind)k));
        render_ok(a, (enum qb_chart_kind)k, &o, name);
    }
    synth_free(a);
    /* two configs, one slice */
    a = synth(2, 1, 1);
    for (int k = 0; k < QB_CHART_N_KINDS; k++) {
        snprintf(name, sizeof name, "two_%s", qb_chart_kind_name((enum qb_chart_kind)k));
        render_ok(a, (enum qb_chart_kind)k, &o, name);
    }
    synth_free(a);
    /* no slices, no overall, no cliffs: nothing but configs */
    a = synth(NC, 0, 0);
    for (int k = 0; k < QB_CHART_N_KINDS; k++)
        render_ok(a, (enum qb_chart_kind)k, &o, NULL);
    synth_free(a);
    /* no configs at all */
    a = calloc(1, sizeof *a);
    for (int k = 0; k < QB_CHART_N_KINDS; k++)
        render_ok(a, (enum qb_chart_kind)k, &o, NULL);
    free(a);
    /* every measurement NAN */
    a = synth(NC, NS, 1);
    for (int64_t i = 0; i < a->n_slices; i++)
        for (int j = 0; j < NC; j++) {
            struct qb_an_cell *e = &a->slices[i].cells[j];
            e->acc = e->delta = e->ppl = e->kl_mean = e->flip_rate = NAN;
            e->delta_ci.lo = e->delta_ci.hi = e->acc_ci.lo = e->acc_ci.hi = NAN;
        }
    for (int j = 0; j < NC; j++)
        a->configs[j].mem_cost = NAN;
    for (int k = 0; k < QB_CHART_N_KINDS; k++) {
        snprintf(name, sizeof name, "nan_%s", qb_chart_kind_name((enum qb_chart_kind)k));
        render_ok(a, (enum qb_chart_kind)k, &o, name);
    }
    synth_free(a);
}

static void test_hostile_names(void)
{
    struct qb_analysis *a = synth(NC, NS, 1);
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    char *long_name = malloc(600);
    memset(long_name, 'x', 599);
    memcpy(long_name, "customer-support-escalations-", 29);
    long_name[599] = 0;
    a->slices[0].name = long_name;
    a->slices[2].name = (char *)"bad \xFF\xFE utf8 \xE2\x82 \x01\tctrl";
    a->configs[4].spec = (char *)"w4g128-gptq-act-order-calibrated-on-wikitext2";
    a->configs[5].spec = (char *)"\xC3\x28";
    o.dpi = 150;
    o.title = "A title long enough that it has to wrap onto a second line and then, because it "
              "keeps going well past any reasonable length, be cut with an ellipsis at the end";
    o.subtitle = "sub \xF0\x9F\x98";
    for (int k = 0; k < QB_CHART_N_KINDS; k++) {
        char name[64];
        snprintf(name, sizeof name, "hostile_%s", qb_chart_kind_name((enum qb_chart_kind)k));
        render_ok(a, (enum qb_chart_kind)k, &o, name);
    }
    free(long_name);
    synth_free(a);
}

/* The heatmap's colour means what the legend says: a large loss is red, no change near white,
 * a gain blue; an unmeasured cell is the grey "not measured" fill. */
static void test_heatmap_colours(void)
{
    struct qb_analysis *a = synth(3, 1, 0);
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    struct px_count pc;
    o.dpi = 100;
    o.title = "colours";
    /* config 1: no change, config 2: a 30-point loss */
    fill_cell(&a->slices[0].cells[1], 0.62, 0.0, 300, 2, 0, 0.001, 0);
    fill_cell(&a->slices[0].cells[2], 0.62, -30.0, 300, 2, 0, 0.5, 0);
    CHECK(count_px(a, QB_CHART_HEATMAP, &o, &pc) == 0);
    render_ok(a, QB_CHART_HEATMAP, &o, "colours");
    /* a cell is about 1.7% of the page (at most 72 x 34 of 480 x 300 pt); the legend's colour
     * bar is 0.5%, half red, half blue */
    CHECK(pc.red > pc.total / 100);
    CHECK(pc.near_white > pc.total / 100);
    CHECK(pc.blue < pc.total / 150);
    /* the same loss as a gain turns blue, not red */
    fill_cell(&a->slices[0].cells[2], 0.62, +30.0, 300, 2, 0, 0.5, 0);
    CHECK(count_px(a, QB_CHART_HEATMAP, &o, &pc) == 0);
    CHECK(pc.blue > pc.total / 100);
    CHECK(pc.red < pc.total / 150);
    /* a small loss against a large one is pale, not red */
    fill_cell(&a->slices[0].cells[1], 0.62, -1.0, 300, 2, 0, 0.001, 0);
    fill_cell(&a->slices[0].cells[2], 0.62, -30.0, 300, 2, 0, 0.5, 0);
    CHECK(count_px(a, QB_CHART_HEATMAP, &o, &pc) == 0);
    CHECK(pc.red > pc.total / 100 && pc.red < pc.total / 40);
    /* unmeasured: grey fill, neither red nor blue */
    a->slices[0].cells[2].delta = NAN;
    a->slices[0].cells[1].delta = NAN;
    CHECK(count_px(a, QB_CHART_HEATMAP, &o, &pc) == 0);
    CHECK(pc.na_grey > pc.total / 70);
    CHECK(pc.red < pc.total / 150 && pc.blue < pc.total / 150);
    synth_free(a);
}

/* A chart with nothing to show says so in a grey box instead of drawing empty axes. */
static void test_not_measured_box(void)
{
    struct qb_analysis *a = synth(NC, NS, 0);
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    struct px_count pc;
    o.dpi = 72;
    CHECK(count_px(a, QB_CHART_LATENCY, &o, &pc) == 0);
    CHECK(pc.na_grey > pc.total / 3);
    CHECK(count_px(a, QB_CHART_TTFT, &o, &pc) == 0);
    CHECK(pc.na_grey > pc.total / 3);
    synth_free(a);
    a = synth(NC, NS, 1); /* measured: bars, no grey box */
    CHECK(count_px(a, QB_CHART_LATENCY, &o, &pc) == 0);
    CHECK(pc.na_grey < pc.total / 50);
    synth_free(a);
}

/* The same chart at two resolutions is the same drawing: the 300 dpi image is the 150 dpi one
 * at twice the size (layout does not depend on the raster). Compared on 4x4-pixel block means
 * of the 300 dpi image against 2x2 blocks of the 150 dpi one. */
static void test_resolution_independent(void)
{
    struct qb_analysis *a = synth(NC, NS, 1);
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    unsigned char *hi = NULL, *lo = NULL;
    int wh, hh, wl, hl;
    o.title = titles[0];
    o.dpi = 144;
    CHECK(qb_chart_rgb(a, QB_CHART_HEATMAP, &o, &hi, &wh, &hh) == 0);
    o.dpi = 72;
    CHECK(qb_chart_rgb(a, QB_CHART_HEATMAP, &o, &lo, &wl, &hl) == 0);
    if (hi && lo) {
        CHECK(wh == 2 * wl && hh == 2 * hl);
        double err = 0;
        int64_t nb = 0;
        for (int y = 0; y + 1 < hl; y += 2)
            for (int x = 0; x + 1 < wl; x += 2) {
                for (int ch = 0; ch < 3; ch++) {
                    double sh = 0, slo = 0;
                    for (int dy = 0; dy < 4; dy++)
                        for (int dx = 0; dx < 4; dx++)
                            sh += hi[((int64_t)(2 * y + dy) * wh + 2 * x + dx) * 3 + ch];
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            slo += lo[((int64_t)(y + dy) * wl + x + dx) * 3 + ch];
                    err += fabs(sh / 16 - slo / 4);
                }
                nb++;
            }
        CHECK(err / (nb * 3) < 6); /* mean absolute difference per channel, 0-255 */
    }
    free(hi);
    free(lo);
    synth_free(a);
}

/* The brief draws its charts in parallel (OpenMP): concurrent renders give the same bytes as
 * one at a time. */
static void test_parallel_renders_match(void)
{
    enum { REPS = 4 };
    struct qb_analysis *a = synth(NC, NS, 1);
    unsigned char *seq[QB_CHART_N_KINDS] = {0}, *par[REPS * QB_CHART_N_KINDS] = {0};
    size_t nseq[QB_CHART_N_KINDS] = {0}, npar[REPS * QB_CHART_N_KINDS] = {0};
    int rcs[REPS * QB_CHART_N_KINDS];
    struct qb_chart_opts o = QB_CHART_OPTS_INIT;
    o.dpi = 100;
    o.title = titles[0];
    o.subtitle = subtitles[0];
    for (int k = 0; k < QB_CHART_N_KINDS; k++)
        CHECK(qb_chart_png(a, (enum qb_chart_kind)k, &o, &seq[k], &nseq[k]) == 0);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < REPS * QB_CHART_N_KINDS; i++)
        rcs[i] = qb_chart_png(a, (enum qb_chart_kind)(i % QB_CHART_N_KINDS), &o, &par[i], &npar[i]);
    for (int i = 0; i < REPS * QB_CHART_N_KINDS; i++) {
        int k = i % QB_CHART_N_KINDS;
        CHECK(rcs[i] == 0);
        CHECK(npar[i] == nseq[k] && par[i] && seq[k] && memcmp(par[i], seq[k], nseq[k]) == 0);
        free(par[i]);
    }
    for (int k = 0; k < QB_CHART_N_KINDS; k++)
        free(seq[k]);
    synth_free(a);
}

int main(void)
{
    RUN(test_kind_names);
    RUN(test_every_kind_at_300_and_150_dpi);
    RUN(test_one_slice_option);
    RUN(test_bad_arguments);
    RUN(test_degenerate_analyses);
    RUN(test_hostile_names);
    RUN(test_heatmap_colours);
    RUN(test_not_measured_box);
    RUN(test_resolution_independent);
    RUN(test_parallel_renders_match);
    qb_chart_release_caches(); /* font caches, for the leak checker */
    return check_summary();
}
