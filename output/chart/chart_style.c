/* chart_style: the chart module's colours, fonts, text and numbers (declared in
 * output/chart_int.h). Everything is laid out in points at print size, so the sizes here are
 * the printed sizes: no text is smaller than T_SMALL (8 pt).
 *
 * Colours: configs use the Okabe & Ito (2008) "Color Universal Design" palette in ladder order,
 * the baseline grey; deltas use ColorBrewer RdBu (Brewer 2003), red = loss, centred on zero.
 * Every name drawn comes from a suite or plan file and is hostile: it is cleaned to valid UTF-8
 * without control characters before Cairo sees it (Cairo puts the whole context in an error
 * state on invalid UTF-8). */
#include "output/chart/chart_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FACE "DejaVu Sans"

/* Okabe-Ito without its black first: orange, sky blue, bluish green, blue, vermillion,
 * reddish purple, black, yellow (last: weakest on white paper). */
static const struct rgb okabe_ito[] = {HEX(0xE69F00), HEX(0x56B4E9), HEX(0x009E73), HEX(0x0072B2),
                                       HEX(0xD55E00), HEX(0xCC79A7), HEX(0x000000), HEX(0xF0E442)};
/* ColorBrewer RdBu, 11 classes, from -1 (loss, dark red) to +1 (gain, dark blue) */
static const struct rgb rdbu[] = {HEX(0x67001F), HEX(0xB2182B), HEX(0xD6604D), HEX(0xF4A582),
                                  HEX(0xFDDBC7), HEX(0xF7F7F7), HEX(0xD1E5F0), HEX(0x92C5DE),
                                  HEX(0x4393C3), HEX(0x2166AC), HEX(0x053061)};

/* ---- colours ------------------------------------------------------------------------------- */

static struct rgb mix(struct rgb a, struct rgb b, double t)
{
    struct rgb m = {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
    return m;
}

static double lin(double c)
{
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

/* WCAG relative luminance; text on a fill darker than 0.18 is more legible in white. */
static double luminance(struct rgb c)
{
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

struct rgb chart_text_on(struct rgb fill)
{
    return luminance(fill) < 0.18 ? WHITE : INK;
}

/* t in [-1, 1] (clamped): -1 dark red, 0 near white, +1 dark blue */
struct rgb chart_diverging(double t)
{
    if (!isfinite(t))
        return NA_FILL;
    t = t < -1 ? -1 : t > 1 ? 1 : t;
    double u = (t + 1) * 5; /* 0..10 over the 11 stops */
    int i = (int)floor(u);
    if (i >= 10)
        return rdbu[10];
    return mix(rdbu[i], rdbu[i + 1], u - i);
}

/* One colour per config, fixed by ladder position, the same in every chart. */
struct rgb chart_config_colour(const struct qb_analysis *a, int64_t i)
{
    int64_t k = 0;
    if (is_base(a, i))
        return BASE_GREY;
    for (int64_t j = 0; j < i; j++)
        k += !is_base(a, j);
    return okabe_ito[k % (int64_t)(sizeof okabe_ito / sizeof okabe_ito[0])];
}

/* A darker shade of a config's colour for text and thin marks (yellow and sky blue are too
 * light for text on white). */
struct rgb chart_ink_of(struct rgb c)
{
    while (luminance(c) > 0.25)
        c = mix(c, INK, 0.25);
    return c;
}

/* ---- text ---------------------------------------------------------------------------------- */

void chart_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FACE, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

void chart_font_italic(cairo_t *cr, double size)
{
    cairo_select_font_face(cr, FACE, CAIRO_FONT_SLANT_ITALIC, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double font_size(cairo_t *cr)
{
    cairo_matrix_t m;
    cairo_get_font_matrix(cr, &m);
    return m.yy;
}

/* s must be valid UTF-8 (every string drawn is a literal, a number, or went through clean) */
double chart_text_w(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Where s starts (bx, by on its baseline) to sit at x, y anchored by ha, va. DejaVu Sans: cap
 * height 0.73 em, descender 0.24 em. */
static void text_origin(cairo_t *cr, double x, double y, const char *s, int ha, int va, double *bx,
                        double *by)
{
    double size = font_size(cr), w = chart_text_w(cr, s);
    *by = va == VT ? y + 0.73 * size : va == VM ? y + 0.365 * size : va == VB ? y - 0.24 * size : y;
    *bx = ha == HL ? x : ha == HC ? x - w / 2 : x - w;
}

void chart_text(cairo_t *cr, double x, double y, const char *s, int ha, int va)
{
    double bx, by;
    text_origin(cr, x, y, s, ha, va, &bx, &by);
    cairo_move_to(cr, bx, by);
    cairo_show_text(cr, s);
}

/* Text with a white outline, readable over grid and data lines. */
void chart_text_halo(cairo_t *cr, double x, double y, const char *s, int ha, int va, struct rgb col)
{
    double bx, by;
    text_origin(cr, x, y, s, ha, va, &bx, &by);
    cairo_save(cr);
    cairo_new_path(cr);
    cairo_move_to(cr, bx, by);
    cairo_text_path(cr, s);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_width(cr, 2.6);
    set_rgb(cr, WHITE);
    cairo_stroke_preserve(cr);
    set_rgb(cr, col);
    cairo_fill(cr);
    cairo_restore(cr);
}

void chart_dashed(cairo_t *cr, double x0, double y0, double x1, double y1, double on, double off,
                  struct rgb col)
{
    double d[] = {on, off};
    cairo_save(cr);
    cairo_set_dash(cr, d, 2, 0);
    set_rgb(cr, col);
    cairo_set_line_width(cr, 0.8);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* Text rotated by deg (counter-clockwise negative, as Cairo), anchored like text_at in its own
 * frame. */
void chart_text_rot(cairo_t *cr, double x, double y, double deg, const char *s, int ha, int va)
{
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, deg * M_PI / 180);
    chart_text(cr, 0, 0, s, ha, va);
    cairo_restore(cr);
}

/* Copies s into out (n bytes) as valid UTF-8 without control characters, leaving room for an
 * ellipsis: invalid bytes become '?', controls a space. */
void chart_clean(const char *s, char *out, size_t n)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "?");
    size_t o = 0;

    while (*p) {
        unsigned c = *p;
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        int ok = len > 0 && !(c >= 0xC0 && c < 0xC2) && c <= 0xF4;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[k] & 0xC0) == 0x80; /* also stops at the terminating NUL */
        if (ok && len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
            ok = 0; /* overlong, surrogate */
        if (ok && len == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)))
            ok = 0;
        if (!ok)
            len = 1;
        if (o + len + 4 > n)
            break;
        if (!ok)
            out[o++] = '?';
        else if (len == 1 && (c < 0x20 || c == 0x7F))
            out[o++] = ' ';
        else {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    out[o] = 0;
}

/* s cleaned into buf and cut to maxw points with an ellipsis; returns buf. */
const char *chart_fit(cairo_t *cr, const char *s, double maxw, char *buf, size_t n)
{
    size_t len;

    chart_clean(s, buf, n);
    if (chart_text_w(cr, buf) <= maxw)
        return buf;
    len = strlen(buf);
    while (len > 0) {
        do
            len--;
        while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80);
        while (len > 0 && buf[len - 1] == ' ')
            len--;
        memcpy(buf + len, "\xE2\x80\xA6", 4); /* U+2026 and the NUL */
        if (chart_text_w(cr, buf) <= maxw)
            return buf;
    }
    return buf;
}

/* Greedy word wrap of s into at most max_lines lines of maxw points; the last line is cut
 * with an ellipsis. Returns the number of lines. */
int chart_wrap(cairo_t *cr, const char *s, double maxw, int max_lines, char (*lines)[LINE_B])
{
    char buf[2048], tmp[LINE_B];
    const char *p = buf;
    int nl = 0;

    chart_clean(s, buf, sizeof buf);
    while (nl < max_lines) {
        const char *end = NULL, *q;
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (nl == max_lines - 1) {
            chart_fit(cr, p, maxw, lines[nl++], LINE_B);
            break;
        }
        q = p;
        for (;;) { /* extend by one word while it fits */
            const char *r = q;
            while (*r == ' ')
                r++;
            while (*r && *r != ' ')
                r++;
            if ((size_t)(r - p) >= LINE_B - 4)
                break;
            memcpy(tmp, p, r - p);
            tmp[r - p] = 0;
            if (chart_text_w(cr, tmp) > maxw && end)
                break;
            end = r;
            if (chart_text_w(cr, tmp) > maxw || !*r)
                break;
            q = r;
        }
        if (!end) { /* a word longer than a line buffer */
            chart_fit(cr, p, maxw, lines[nl++], LINE_B);
            break;
        }
        memcpy(tmp, p, end - p);
        tmp[end - p] = 0;
        chart_fit(cr, tmp, maxw, lines[nl++], LINE_B);
        p = end;
    }
    return nl;
}

/* "−3.1" with a true minus sign; plus: "+0.4"; a value that rounds to zero has no sign */
void chart_fmt_num(char *b, size_t n, double v, int dec, int plus)
{
    char t[64];
    int zero = 1;

    if (!isfinite(v)) {
        snprintf(b, n, "n/a");
        return;
    }
    snprintf(t, sizeof t, "%.*f", dec, fabs(v));
    for (const char *p = t; *p; p++)
        if (*p >= '1' && *p <= '9')
            zero = 0;
    snprintf(b, n, "%s%s", zero ? "" : v < 0 ? "\xE2\x88\x92" : plus ? "+" : "", t);
}

/* Value with about 2-3 significant digits, for latency and KL labels */
void chart_fmt_sig(char *b, size_t n, double v)
{
    double a = fabs(v);
    int dec = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a > 0 ? (int)ceil(-log10(a)) + 1 : 1;
    if (dec > 6)
        dec = 6;
    chart_fmt_num(b, n, v, dec, 0);
}
