/* pdf: lays a brief document (brief_int.h) out on A4 or Letter pages with libharu 2.3.0 --
 * the only file that includes hpdf.h. Text is UTF-8 in embedded DejaVu Sans (any model or
 * slice name renders); paragraphs wrap; tables repeat their header row after a page break;
 * charts are the pixels (or PNGs) the chart module drew at 300 dpi, placed at their size in
 * points; every page gets the footer line and its page label ("Page 2 of 5") once the page
 * count is known. */
#include "kernels/base/err.h"
#include "output/brief_int.h"

#include <glib.h>
#include <hpdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FONT_DIR "/usr/share/fonts/truetype/dejavu"

/* sizes in points */
enum { MARGIN_X = 56, MARGIN_TOP = 56, MARGIN_BOTTOM = 62, FOOTER_Y = 30 };

struct pdf {
    HPDF_Doc doc;
    HPDF_Font reg, bold;
    HPDF_Page page;
    GPtrArray *pages;
    double w, h, y, left, right;
    int fresh; /* nothing drawn on this page yet */
    HPDF_STATUS err, detail;
};

static void on_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *user)
{
    struct pdf *p = user;
    if (!p->err) {
        p->err = error_no;
        p->detail = detail_no;
    }
}

/* libharu 2.3.0 gives a UTF-8 font its encoding CMap as the ToUnicode map: one cidrange
 * over <0000>-<FFFF>, which a ToUnicode CMap may not hold (it maps codes to Unicode with
 * bfchar/bfrange, a range within one high byte), so readers that follow the PDF reference
 * cannot map the brief's text back to Unicode for copying and searching, and pdftotext
 * warns. The codes that encoder writes are the text's UTF-16 code units themselves, so the
 * right map is the identity: one bfrange per high byte (surrogates left out), at most 100
 * per block as the CMap format allows. The unused stream stays in the file, unreferenced. */
static int identity_to_unicode(HPDF_Font font)
{
    const HPDF_FontAttr attr = font->attr;
    HPDF_Dict map = HPDF_DictStream_New(font->mmgr, attr->xref);
    GString *g =
        g_string_new("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
                     "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
                     "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
                     "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n");
    int hi[256], n = 0, rc = 0;
    for (int h = 0; h < 256; h++)
        if (h < 0xD8 || h > 0xDF)
            hi[n++] = h;
    for (int i = 0; i < n; i += 100) {
        const int m = n - i < 100 ? n - i : 100;
        g_string_append_printf(g, "%d beginbfrange\n", m);
        for (int j = i; j < i + m; j++)
            g_string_append_printf(g, "<%02X00> <%02XFF> <%02X00>\n", hi[j], hi[j], hi[j]);
        g_string_append(g, "endbfrange\n");
    }
    g_string_append(g, "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    if (!map || HPDF_Stream_WriteStr(map->stream, g->str) != HPDF_OK ||
        HPDF_Dict_Add(font, "ToUnicode", map) != HPDF_OK)
        rc = qb_err(QB_ENOMEM, "libharu cannot add the fonts' Unicode map");
    else
        map->filter = HPDF_STREAM_FILTER_FLATE_DECODE;
    g_string_free(g, TRUE);
    return rc;
}

/* the character after the one at p (glib's g_utf8_next_char, without casting const away) */
static const char *next_char(const char *p)
{
    return p + g_utf8_skip[*(const guchar *)p];
}

static double text_w(struct pdf *p, HPDF_Font f, double size, const char *s, size_t n)
{
    /* per code point: HPDF_Font_TextWidth mis-measures multi-byte UTF-8 in 2.3.0 */
    double w = 0;
    const char *e = s + n;
    (void)p;
    while (s < e) {
        gunichar u = g_utf8_get_char_validated(s, e - s);
        if (u == (gunichar)-1 || u == (gunichar)-2) {
            s++;
            continue;
        }
        w += HPDF_Font_GetUnicodeWidth(f, (HPDF_UNICODE)(u > 0xFFFF ? 0xFFFD : u));
        s = next_char(s);
    }
    return w * size / 1000.0;
}

static double str_w(struct pdf *p, HPDF_Font f, double size, const char *s)
{
    return text_w(p, f, size, s, strlen(s));
}

/* Breaks s into lines no wider than maxw: at spaces, or anywhere (between UTF-8 characters)
 * inside a word wider than a line, or everywhere when anywhere is set (command lines). */
static GPtrArray *wrap(struct pdf *p, HPDF_Font f, double size, const char *s, double maxw,
                       int anywhere)
{
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);
    const char *q = s;
    while (*q) {
        if (*q == '\n') {
            g_ptr_array_add(lines, g_strdup(cur->str));
            g_string_truncate(cur, 0);
            q++;
            continue;
        }
        /* next token: a word, or one character when breaking anywhere */
        const char *e = q;
        if (anywhere) {
            e = next_char(q);
        } else {
            while (*e && *e != ' ' && *e != '\n')
                e++;
        }
        size_t before = cur->len;
        if (cur->len && !anywhere)
            g_string_append_c(cur, ' ');
        g_string_append_len(cur, q, e - q);
        if (str_w(p, f, size, cur->str) > maxw + 0.01 && before > 0) {
            g_string_truncate(cur, before);
            g_ptr_array_add(lines, g_strdup(cur->str));
            g_string_assign(cur, "");
            continue; /* retry the token on a fresh line */
        }
        if (str_w(p, f, size, cur->str) > maxw + 0.01) {
            /* a single word wider than the line: split it by characters */
            g_string_truncate(cur, 0);
            const char *c = q;
            while (c < e) {
                const char *nx = next_char(c);
                size_t keep = cur->len;
                g_string_append_len(cur, c, nx - c);
                if (str_w(p, f, size, cur->str) > maxw + 0.01 && keep) {
                    g_string_truncate(cur, keep);
                    g_ptr_array_add(lines, g_strdup(cur->str));
                    g_string_assign(cur, "");
                    continue;
                }
                c = nx;
            }
        }
        q = e;
        while (!anywhere && *q == ' ')
            q++;
    }
    if (cur->len || !lines->len)
        g_ptr_array_add(lines, g_strdup(cur->str));
    g_string_free(cur, TRUE);
    return lines;
}

static void new_page(struct pdf *p)
{
    p->page = HPDF_AddPage(p->doc);
    g_ptr_array_add(p->pages, p->page);
    HPDF_Page_SetWidth(p->page, (HPDF_REAL)p->w);
    HPDF_Page_SetHeight(p->page, (HPDF_REAL)p->h);
    p->y = p->h - MARGIN_TOP;
    p->fresh = 1;
}

/* room for h more points on this page, else a new one */
static void ensure(struct pdf *p, double h)
{
    if (p->y - h < MARGIN_BOTTOM && !p->fresh)
        new_page(p);
}

static void color(struct pdf *p, double r, double g, double b)
{
    HPDF_Page_SetRGBFill(p->page, (HPDF_REAL)r, (HPDF_REAL)g, (HPDF_REAL)b);
}

static void text_at(struct pdf *p, HPDF_Font f, double size, double x, double y, const char *s)
{
    if (!*s)
        return;
    HPDF_Page_BeginText(p->page);
    HPDF_Page_SetFontAndSize(p->page, f, (HPDF_REAL)size);
    HPDF_Page_TextOut(p->page, (HPDF_REAL)x, (HPDF_REAL)y, s);
    HPDF_Page_EndText(p->page);
}

/* A wrapped paragraph at x with width w; breaks pages between lines. */
static void para(struct pdf *p, HPDF_Font f, double size, double lead, double x, double w,
                 const char *s, int anywhere)
{
    GPtrArray *lines = wrap(p, f, size, s, w, anywhere);
    for (guint i = 0; i < lines->len; i++) {
        ensure(p, lead);
        p->y -= lead;
        text_at(p, f, size, x, p->y + (lead - size) * 0.5 + size * 0.22,
                g_ptr_array_index(lines, i));
        p->fresh = 0;
    }
    g_ptr_array_free(lines, TRUE);
}

/* Points the start of block b needs on the same page as the heading above it. */
static double keep_need(struct pdf *p, const struct qb_blk *b)
{
    if (!b)
        return 0;
    switch (b->kind) {
    case QB_BLK_CHART: {
        double w = fmin(b->width_pt, p->right - p->left);
        return 0.8 * w * b->height_pt / b->width_pt;
    }
    /* a short table moves whole to the next page (table()): keep its heading with all of it
     * (about 14 pt a row, the header's lines more) */
    case QB_BLK_TABLE: {
        double all = 14.0 * (double)b->n_rows + 16;
        return all < 0.4 * (p->h - MARGIN_TOP - MARGIN_BOTTOM) ? all : 50;
    }
    case QB_BLK_STATS: return 70;
    default: return 30;
    }
}

static void heading(struct pdf *p, HPDF_Font f, double size, double before, double after,
                    const char *s, double keep)
{
    GPtrArray *lines = wrap(p, f, size, s, p->right - p->left, 0);
    double h = lines->len * size * 1.25;
    g_ptr_array_free(lines, TRUE);
    if (!p->fresh)
        p->y -= before;
    ensure(p, h + keep); /* keep with what follows */
    color(p, 0.05, 0.20, 0.38);
    para(p, f, size, size * 1.25, p->left, p->right - p->left, s, 0);
    color(p, 0.1, 0.1, 0.1);
    p->y -= after;
}

static void stats(struct pdf *p, const struct qb_blk *b)
{
    int64_t n = b->n_items / 3;
    if (!n)
        return;
    double gap = 10, bw = (p->right - p->left - gap * (double)(n - 1)) / (double)n, pad = 8;
    double hmax = 0;
    GPtrArray **lab = g_new0(GPtrArray *, (gsize)n), **note = g_new0(GPtrArray *, (gsize)n);
    for (int64_t i = 0; i < n; i++) {
        lab[i] = wrap(p, p->bold, 8.5, b->items[3 * i + 1], bw - 2 * pad, 0);
        note[i] = wrap(p, p->reg, 7.5, b->items[3 * i + 2], bw - 2 * pad, 0);
        double h = pad + 24 + lab[i]->len * 10.5 +
                   (*b->items[3 * i + 2] ? note[i]->len * 9.5 + 2 : 0) + pad;
        hmax = fmax(hmax, h);
    }
    ensure(p, hmax + 8);
    double top = p->y - 4;
    for (int64_t i = 0; i < n; i++) {
        double x = p->left + (double)i * (bw + gap), y = top;
        color(p, 0.93, 0.95, 0.97);
        HPDF_Page_Rectangle(p->page, (HPDF_REAL)x, (HPDF_REAL)(top - hmax), (HPDF_REAL)bw,
                            (HPDF_REAL)hmax);
        HPDF_Page_Fill(p->page);
        color(p, 0.0, 0.447, 0.698); /* Okabe-Ito blue */
        HPDF_Page_Rectangle(p->page, (HPDF_REAL)x, (HPDF_REAL)(top - hmax), 3, (HPDF_REAL)hmax);
        HPDF_Page_Fill(p->page);
        color(p, 0.05, 0.20, 0.38);
        y -= pad + 19;
        text_at(p, p->bold, 20, x + pad, y, b->items[3 * i]);
        y -= 5;
        color(p, 0.1, 0.1, 0.1);
        for (guint k = 0; k < lab[i]->len; k++) {
            y -= 10.5;
            text_at(p, p->bold, 8.5, x + pad, y + 2, g_ptr_array_index(lab[i], k));
        }
        if (*b->items[3 * i + 2]) {
            y -= 2;
            color(p, 0.35, 0.35, 0.35);
            for (guint k = 0; k < note[i]->len; k++) {
                y -= 9.5;
                text_at(p, p->reg, 7.5, x + pad, y + 2, g_ptr_array_index(note[i], k));
            }
        }
        g_ptr_array_free(lab[i], TRUE);
        g_ptr_array_free(note[i], TRUE);
    }
    color(p, 0.1, 0.1, 0.1);
    g_free(lab), g_free(note);
    p->y = top - hmax - 10;
    p->fresh = 0;
}

/* Column widths: each column gets its natural width when they all fit. Otherwise, when the
 * body rows fit unwrapped (each column at least its longest word, the header's included),
 * they do, and what is left goes to the columns whose header is wider than their body, in
 * proportion to the excess, so headers wrap rather than numbers. Otherwise narrow columns keep
 * their natural width and the rest share what is left in proportion to it (never below their
 * longest word). */
static void col_widths(struct pdf *p, const struct qb_blk *b, double size, double pad, double avail,
                       double *w)
{
    int64_t nc = b->n_cols;
    double *nat = g_new0(double, (gsize)nc), *minw = g_new0(double, (gsize)nc);
    double *body = g_new0(double, (gsize)nc);
    for (int64_t r = 0; r < b->n_rows; r++)
        for (int64_t c = 0; c < nc; c++) {
            const char *s = b->cells[r * nc + c];
            HPDF_Font f = r == 0 ? p->bold : p->reg;
            nat[c] = fmax(nat[c], str_w(p, f, size, s) + 2 * pad);
            if (r > 0)
                body[c] = fmax(body[c], str_w(p, f, size, s) + 2 * pad);
            char **words = g_strsplit(s, " ", -1);
            for (int k = 0; words[k]; k++)
                minw[c] =
                    fmax(minw[c], fmin(str_w(p, f, size, words[k]) + 2 * pad, avail / (double)nc));
            g_strfreev(words);
        }
    double total = 0, total_body = 0, excess = 0;
    for (int64_t c = 0; c < nc; c++) {
        total += nat[c];
        body[c] = fmax(body[c], minw[c]);
        total_body += body[c];
        excess += nat[c] - body[c];
    }
    if (total <= avail) {
        for (int64_t c = 0; c < nc; c++)
            w[c] = nat[c];
    } else if (total_body <= avail && excess > 0) {
        for (int64_t c = 0; c < nc; c++)
            w[c] = body[c] + (avail - total_body) * (nat[c] - body[c]) / excess;
    } else {
        /* water-filling */
        int *fixed = g_new0(int, (gsize)nc);
        for (int it = 0; it < 8; it++) {
            double rest = avail, nat_free = 0;
            for (int64_t c = 0; c < nc; c++)
                if (fixed[c])
                    rest -= w[c];
                else
                    nat_free += nat[c];
            int changed = 0;
            for (int64_t c = 0; c < nc; c++) {
                if (fixed[c])
                    continue;
                w[c] = rest * nat[c] / nat_free;
                if (w[c] < minw[c]) {
                    w[c] = minw[c];
                    fixed[c] = 1;
                    changed = 1;
                }
            }
            if (!changed)
                break;
        }
        g_free(fixed);
    }
    g_free(nat), g_free(minw), g_free(body);
}

static void table(struct pdf *p, const struct qb_blk *b)
{
    const double size = 8, lead = 10, pad = 4;
    int64_t nc = b->n_cols;
    if (!b->n_rows || !nc)
        return;
    double avail = p->right - p->left, *w = g_new0(double, (gsize)nc);
    col_widths(p, b, size, pad, avail, w);
    double tw = 0;
    for (int64_t c = 0; c < nc; c++)
        tw += w[c];
    GPtrArray **cells = g_new0(GPtrArray *, (gsize)(b->n_rows * nc));
    double *rh = g_new0(double, (gsize)b->n_rows);
    for (int64_t r = 0; r < b->n_rows; r++) {
        int64_t nl = 1;
        for (int64_t c = 0; c < nc; c++) {
            cells[r * nc + c] =
                wrap(p, r == 0 ? p->bold : p->reg, size, b->cells[r * nc + c], w[c] - 2 * pad, 0);
            nl = MAX(nl, (int64_t)cells[r * nc + c]->len);
        }
        rh[r] = (double)nl * lead + 2 * pad - 2;
    }
    /* a short table that would split keeps together on the next page */
    double total = 0;
    for (int64_t r = 0; r < b->n_rows; r++)
        total += rh[r];
    if (total + 2 > p->y - MARGIN_BOTTOM && total < 0.4 * (p->h - MARGIN_TOP - MARGIN_BOTTOM))
        ensure(p, total + 2);
    p->y -= 2;
    for (int64_t r = 0; r < b->n_rows; r++) {
        int header_again = 0;
        if (p->y - rh[r] < MARGIN_BOTTOM && !p->fresh) {
            new_page(p);
            header_again = r > 1;
        }
        for (int pass = header_again ? 0 : 1; pass < 2; pass++) {
            int64_t row = pass == 0 ? 0 : r;
            double top = p->y;
            if (row == 0 || row % 2 == 0) {
                if (row == 0)
                    color(p, 0.86, 0.89, 0.93);
                else
                    color(p, 0.96, 0.965, 0.97);
                HPDF_Page_Rectangle(p->page, (HPDF_REAL)p->left, (HPDF_REAL)(top - rh[row]),
                                    (HPDF_REAL)tw, (HPDF_REAL)rh[row]);
                HPDF_Page_Fill(p->page);
            }
            color(p, 0.1, 0.1, 0.1);
            double x = p->left;
            for (int64_t c = 0; c < nc; c++) {
                GPtrArray *ls = cells[row * nc + c];
                HPDF_Font f = row == 0 ? p->bold : p->reg;
                for (guint k = 0; k < ls->len; k++) {
                    const char *s = g_ptr_array_index(ls, k);
                    double sx =
                        b->align[c] == 'r' ? x + w[c] - pad - str_w(p, f, size, s) : x + pad;
                    text_at(p, f, size, sx, top - pad - (double)(k + 1) * lead + 2.5, s);
                }
                x += w[c];
            }
            p->y -= rh[row];
            p->fresh = 0;
        }
    }
    HPDF_Page_SetRGBStroke(p->page, 0.6f, 0.6f, 0.6f);
    HPDF_Page_SetLineWidth(p->page, 0.5f);
    HPDF_Page_MoveTo(p->page, (HPDF_REAL)p->left, (HPDF_REAL)p->y);
    HPDF_Page_LineTo(p->page, (HPDF_REAL)(p->left + tw), (HPDF_REAL)p->y);
    HPDF_Page_Stroke(p->page);
    p->y -= 10;
    for (int64_t i = 0; i < b->n_rows * nc; i++)
        g_ptr_array_free(cells[i], TRUE);
    g_free(cells), g_free(rh), g_free(w);
}

static int chart(struct pdf *p, const struct qb_blk *b)
{
    if (!b->png)
        return 0;
    HPDF_Image img = b->px_w > 0
                         ? HPDF_LoadRawImageFromMem(p->doc, b->png, (HPDF_UINT)b->px_w,
                                                    (HPDF_UINT)b->px_h, HPDF_CS_DEVICE_RGB, 8)
                         : HPDF_LoadPngImageFromMem(p->doc, b->png, (HPDF_UINT)b->n_png);
    if (!img)
        return qb_err(QB_EFORMAT, "chart '%s': libharu cannot read its image (error 0x%04X)",
                      b->file, (unsigned)p->err);
    double iw = HPDF_Image_GetWidth(img), ih = HPDF_Image_GetHeight(img);
    double w = fmin(b->width_pt, p->right - p->left), h = iw > 0 ? w * ih / iw : 0;
    double maxh = p->h - MARGIN_TOP - MARGIN_BOTTOM - 4;
    if (h > maxh)
        w *= maxh / h, h = maxh;
    ensure(p, h + 8);
    p->y -= 4;
    HPDF_Page_DrawImage(p->page, img, (HPDF_REAL)(p->left + (p->right - p->left - w) / 2),
                        (HPDF_REAL)(p->y - h), (HPDF_REAL)w, (HPDF_REAL)h);
    p->y -= h + 8;
    p->fresh = 0;
    return 0;
}

static void list(struct pdf *p, const struct qb_blk *b)
{
    for (int64_t i = 0; i < b->n_items; i++) {
        ensure(p, 13);
        double top = p->y;
        para(p, p->reg, 9.5, 13, p->left + 14, p->right - p->left - 14, b->items[i], 0);
        /* the bullet on the item's first line (which may have moved to a new page) */
        double y0 = p->y > top ? p->h - MARGIN_TOP : top;
        text_at(p, p->reg, 9.5, p->left + 3, y0 - 13 + 1.75 + 9.5 * 0.22, "•");
        p->y -= 3;
    }
    if (b->n_items)
        p->y -= 4;
}

static void footers(struct pdf *p, const struct qb_doc *d)
{
    guint n = p->pages->len;
    for (guint i = 0; i < n; i++) {
        p->page = g_ptr_array_index(p->pages, i);
        char *label = NULL;
        if (d->page_label && *d->page_label) {
            char pg[16], pgs[16];
            snprintf(pg, sizeof pg, "%u", i + 1);
            snprintf(pgs, sizeof pgs, "%u", n);
            char **a = g_strsplit(d->page_label, "{page}", -1);
            char *t1 = g_strjoinv(pg, a);
            g_strfreev(a);
            a = g_strsplit(t1, "{pages}", -1);
            label = g_strjoinv(pgs, a);
            g_strfreev(a);
            g_free(t1);
        }
        double lw = label ? str_w(p, p->reg, 7.5, label) : 0;
        HPDF_Page_SetRGBStroke(p->page, 0.75f, 0.75f, 0.75f);
        HPDF_Page_SetLineWidth(p->page, 0.5f);
        HPDF_Page_MoveTo(p->page, (HPDF_REAL)p->left, FOOTER_Y + 12);
        HPDF_Page_LineTo(p->page, (HPDF_REAL)p->right, FOOTER_Y + 12);
        HPDF_Page_Stroke(p->page);
        color(p, 0.4, 0.4, 0.4);
        if (d->footer) {
            GPtrArray *ls = wrap(p, p->reg, 7, d->footer, p->right - p->left - lw - 16, 0);
            for (guint k = 0; k < ls->len && k < 2; k++)
                text_at(p, p->reg, 7, p->left, FOOTER_Y - 9.0 * k, g_ptr_array_index(ls, k));
            g_ptr_array_free(ls, TRUE);
        }
        if (label)
            text_at(p, p->reg, 7.5, p->right - lw, FOOTER_Y, label);
        g_free(label);
    }
}

/* The two DejaVu faces, regular and bold, from $QBRIEF_FONT_DIR or FONT_DIR; fpath[] gets
 * their paths (g_malloc'd, also on failure). QB_EIO when one is missing. */
static int font_paths(char *fpath[2])
{
    const char *fonts[2] = {FONT_DIR "/DejaVuSans.ttf", FONT_DIR "/DejaVuSans-Bold.ttf"};
    const char *env = getenv("QBRIEF_FONT_DIR");

    for (int i = 0; i < 2; i++) {
        fpath[i] = env && *env ? g_build_filename(env, strrchr(fonts[i], '/') + 1, NULL)
                               : g_strdup(fonts[i]);
        if (access(fpath[i], R_OK) != 0)
            return qb_err(QB_EIO, "font '%s' is missing (install the fonts-dejavu-core package)",
                          fpath[i]);
    }
    return 0;
}

/* A compressed UTF-8 libharu document with both fonts embedded, the title in its metadata,
 * and the page geometry of the paper. */
static int start_doc(struct pdf *p, const struct qb_doc *d, enum qb_brief_paper paper,
                     char *const fpath[2])
{
    int rc;

    if (!(p->doc = HPDF_New(on_error, p)))
        return qb_err(QB_ENOMEM, "libharu cannot start a document");
    p->pages = g_ptr_array_new();
    HPDF_SetCompressionMode(p->doc, HPDF_COMP_ALL);
    HPDF_UseUTFEncodings(p->doc);
    HPDF_SetCurrentEncoder(p->doc, "UTF-8");
    const char *rn = HPDF_LoadTTFontFromFile(p->doc, fpath[0], HPDF_TRUE);
    const char *bn = HPDF_LoadTTFontFromFile(p->doc, fpath[1], HPDF_TRUE);
    if (rn)
        p->reg = HPDF_GetFont(p->doc, rn, "UTF-8");
    if (bn)
        p->bold = HPDF_GetFont(p->doc, bn, "UTF-8");
    if (!p->reg || !p->bold)
        return qb_err(QB_EIO, "cannot load the font '%s' (libharu error 0x%04X)",
                      fpath[p->reg ? 1 : 0], (unsigned)p->err);
    if ((rc = identity_to_unicode(p->reg)) < 0 || (rc = identity_to_unicode(p->bold)) < 0)
        return rc;
    HPDF_SetInfoAttr(p->doc, HPDF_INFO_CREATOR, "qbrief");
    if (d->doc_title)
        HPDF_SetInfoAttr(p->doc, HPDF_INFO_TITLE, d->doc_title);
    p->w = paper == QB_PAPER_LETTER ? 612 : 595.276;
    p->h = paper == QB_PAPER_LETTER ? 792 : 841.89;
    p->left = MARGIN_X;
    p->right = p->w - MARGIN_X;
    return 0;
}

/* The answer: a paragraph in 12.5 pt with a blue bar down its left. */
static void lead(struct pdf *p, const char *text)
{
    double top = p->y, tw = p->right - p->left;

    ensure(p, 32);
    if (p->fresh)
        top = p->y;
    color(p, 0.1, 0.1, 0.1);
    para(p, p->reg, 12.5, 16.5, p->left + 10, tw - 10, text, 0);
    color(p, 0.0, 0.447, 0.698);
    double y1 = p->y > top ? p->y : p->y; /* the bar spans the paragraph on this page */
    HPDF_Page_Rectangle(p->page, (HPDF_REAL)p->left, (HPDF_REAL)(y1 - 3), 3,
                        (HPDF_REAL)(fmin(top, p->h - MARGIN_TOP) - y1 + 1));
    HPDF_Page_Fill(p->page);
    color(p, 0.1, 0.1, 0.1);
    p->y -= 12;
}

static double lines_h(struct pdf *p, double size, double lead, double w, const char *s)
{
    GPtrArray *lines = wrap(p, p->reg, size, s ? s : "", w, 0);
    double h = (double)lines->len * lead;
    g_ptr_array_free(lines, TRUE);
    return h;
}

/* About how many points block b takes (tables and charts estimated as keep_need and chart()
 * lay them out); for keeping a section together. */
static double block_h(struct pdf *p, const struct qb_blk *b)
{
    double tw = p->right - p->left, h = 0;
    switch (b->kind) {
    case QB_BLK_H1: return 14 * 1.25 + 19;
    case QB_BLK_H2: return 11 * 1.25 + 12;
    case QB_BLK_P: return lines_h(p, 9.5, 13, tw, b->text) + 5;
    case QB_BLK_NOTE: return lines_h(p, 8, 10.5, tw, b->text) + 5;
    case QB_BLK_CODE: return lines_h(p, 8, 10.5, tw - 8, b->text) + 6;
    case QB_BLK_TABLE: return 14.0 * (double)b->n_rows + 18;
    case QB_BLK_CHART: return fmin(b->width_pt, tw) * b->height_pt / b->width_pt + 12;
    case QB_BLK_LIST:
        for (int64_t i = 0; i < b->n_items; i++)
            h += lines_h(p, 9.5, 13, tw - 14, b->items[i]) + 3;
        return h + 4;
    case QB_BLK_STATS: return 80;
    default: return 40;
    }
}

/* A section (an H1 and what follows it up to the next H1 or page break) that does not fit on
 * what is left of a page at least half full, but fits on a page of its own, starts one: the
 * method stays with its provenance, and no page is left more than half empty. */
static void keep_section(struct pdf *p, const struct qb_doc *d, int64_t i)
{
    double usable = p->h - MARGIN_TOP - MARGIN_BOTTOM, need = 14;
    if (p->fresh || p->h - MARGIN_TOP - p->y < usable / 2)
        return;
    for (int64_t k = i; k < d->n; k++) {
        if (k > i && (d->blk[k].kind == QB_BLK_H1 || d->blk[k].kind == QB_BLK_PAGE))
            break;
        need += block_h(p, &d->blk[k]);
    }
    if (need > p->y - MARGIN_BOTTOM && need <= usable)
        new_page(p);
}

/* Block i of d onto the pages; a heading keeps with what follows it. */
static int block(struct pdf *p, const struct qb_doc *d, int64_t i)
{
    const struct qb_blk *b = &d->blk[i], *next = i + 1 < d->n ? &d->blk[i + 1] : NULL;
    double tw = p->right - p->left;

    switch (b->kind) {
    case QB_BLK_PAGE:
        if (!p->fresh)
            new_page(p);
        break;
    case QB_BLK_TITLE: heading(p, p->bold, 20, 0, 8, b->text, 60); break;
    case QB_BLK_LEAD: lead(p, b->text); break;
    case QB_BLK_H1:
        keep_section(p, d, i);
        heading(p, p->bold, 14, 14, 5, b->text, keep_need(p, next));
        break;
    case QB_BLK_H2: heading(p, p->bold, 11, 9, 3, b->text, keep_need(p, next)); break;
    case QB_BLK_P:
        para(p, p->reg, 9.5, 13, p->left, tw, b->text, 0);
        p->y -= 5;
        break;
    case QB_BLK_NOTE:
        color(p, 0.35, 0.35, 0.35);
        para(p, p->reg, 8, 10.5, p->left, tw, b->text, 0);
        color(p, 0.1, 0.1, 0.1);
        p->y -= 5;
        break;
    case QB_BLK_CODE:
        para(p, p->reg, 8, 10.5, p->left + 8, tw - 8, b->text, 1);
        p->y -= 6;
        break;
    case QB_BLK_STATS: stats(p, b); break;
    case QB_BLK_TABLE: table(p, b); break;
    case QB_BLK_CHART: return chart(p, b);
    case QB_BLK_LIST: list(p, b); break;
    }
    return 0;
}

/* The finished document, built in libharu's memory stream and handed to out in chunks: the
 * output file's own writes report a full disk as such ("No space left on device"), where
 * libharu's file stream would say "error 0x1066". */
static int save(struct pdf *p, struct brief_out *out)
{
    HPDF_BYTE buf[65536];
    int rc = 0;

    if (HPDF_SaveToStream(p->doc) != HPDF_OK || p->err)
        return qb_err(QB_ENOMEM, "libharu cannot assemble the PDF for '%s' (error 0x%04X)",
                      out->shown, (unsigned)p->err);
    HPDF_ResetStream(p->doc);
    for (;;) {
        HPDF_UINT32 n = sizeof buf;
        HPDF_STATUS st = HPDF_ReadFromStream(p->doc, buf, &n);
        if (n && (rc = brief_out_write(out, buf, n)) < 0)
            return rc;
        if (st == HPDF_STREAM_EOF)
            return 0;
        if (st != HPDF_OK)
            return qb_err(QB_EIO, "libharu cannot read back the PDF for '%s' (error 0x%04X)",
                          out->shown, (unsigned)st);
    }
}

int qb_pdf_write(const struct qb_doc *d, enum qb_brief_paper paper, struct brief_out *out)
{
    struct pdf p = {0};
    char *fpath[2] = {NULL, NULL};
    int rc;

    if ((rc = font_paths(fpath)) < 0 || (rc = start_doc(&p, d, paper, fpath)) < 0)
        goto out;
    new_page(&p);
    color(&p, 0.1, 0.1, 0.1);
    for (int64_t i = 0; i < d->n && rc >= 0 && !p.err; i++)
        rc = block(&p, d, i);
    if (rc >= 0 && !p.err)
        footers(&p, d);
    if (rc >= 0 && p.err)
        rc = qb_err(QB_EIO, "libharu failed laying out the brief (error 0x%04X, detail %u)",
                    (unsigned)p.err, (unsigned)p.detail);
    if (rc >= 0)
        rc = save(&p, out);
out:
    if (p.doc)
        HPDF_Free(p.doc);
    if (p.pages)
        g_ptr_array_free(p.pages, TRUE);
    g_free(fpath[0]), g_free(fpath[1]);
    return rc;
}
