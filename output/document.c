/* document: runs a template over an analysis into the document (output/brief_int.h): each
 * directive becomes a block -- text with its {{variables}} expanded, a generated table or list,
 * a chart to draw -- @if and @each choose and repeat; then the charts are drawn, in parallel. */
#include "output/brief.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "output/brief_int.h"
#include "output/chart/chart.h"

#include <ctype.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* verdict word from the template: verdict_holds, verdict_cliff, ... */
static int verdict_word(struct brief_ctx *c, enum qb_an_verdict v, char **out)
{
    char name[32];
    snprintf(name, sizeof name, "verdict_%s", qb_an_verdict_name(v));
    return brief_pattern(c, name, NULL, out);
}

/* Cell delta with its interval, through the delta_points / delta_ppl patterns. */
static int delta_text(struct brief_ctx *c, const struct qb_an_slice *s,
                      const struct qb_an_cell *cell, char **out)
{
    struct scope sc = {0};
    int rc;
    if (s->is_perplexity) {
        /* loss = ppl_ratio - 1 as a fraction; shown as percent of perplexity */
        brief_scope_set(&sc, "delta", brief_spts(-cell->delta));
        brief_scope_set(&sc, "delta_lo", brief_spts(-cell->delta_ci.hi));
        brief_scope_set(&sc, "delta_hi", brief_spts(-cell->delta_ci.lo));
        rc = brief_pattern(c, "delta_ppl", &sc, out);
    } else {
        brief_scope_set(&sc, "delta", brief_spts(cell->delta));
        brief_scope_set(&sc, "delta_lo", brief_spts(cell->delta_ci.lo));
        brief_scope_set(&sc, "delta_hi", brief_spts(cell->delta_ci.hi));
        rc = brief_pattern(c, "delta_points", &sc, out);
    }
    brief_scope_clear(&sc);
    return rc;
}

static struct qb_blk *doc_add(struct qb_doc *d, enum qb_blk_kind k)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->blk = g_renew(struct qb_blk, d->blk, (gsize)d->cap);
    }
    struct qb_blk *b = &d->blk[d->n++];
    memset(b, 0, sizeof *b);
    b->kind = k;
    return b;
}

void brief_doc_free(struct qb_doc *d)
{
    for (int64_t i = 0; i < d->n; i++) {
        struct qb_blk *b = &d->blk[i];
        g_free(b->text);
        for (int64_t j = 0; j < b->n_items; j++)
            g_free(b->items[j]);
        g_free(b->items);
        for (int64_t j = 0; j < b->n_rows * b->n_cols; j++)
            g_free(b->cells[j]);
        g_free(b->cells);
        g_free(b->align);
        free(b->png);
        g_free(b->file);
        g_free(b->title);
        g_free(b->subtitle);
        g_free(b->slice);
    }
    g_free(d->blk);
    g_free(d->footer);
    g_free(d->page_label);
    g_free(d->doc_title);
    g_free(d->answer);
    memset(d, 0, sizeof *d);
}

/* table builder: rows of owned strings */
struct tb {
    GPtrArray *cells;
    int n_cols;
};

static void tb_add(struct tb *t, char *s)
{
    g_ptr_array_add(t->cells, s ? s : g_strdup(NA));
}

static int status_word(struct brief_ctx *c, const struct qb_an_slice *s, int64_t ci, char **out)
{
    const struct qb_an_cell *cell = &s->cells[ci];
    const char *name = ci == c->a->baseline      ? "status_baseline"
                       : cell->significant_loss  ? "status_loss"
                       : cell->changes_behaviour ? "status_behaviour"
                       : cell->within            ? "status_within"
                                                 : "status_unclear";
    char *w = NULL;
    int rc = brief_pattern(c, name, NULL, &w);
    if (rc < 0)
        return rc;
    if (ci == s->rec && ci != c->a->baseline) {
        char *r = NULL;
        if ((rc = brief_pattern(c, "status_recommended", NULL, &r)) < 0) {
            g_free(w);
            return rc;
        }
        if (*r) {
            char *x = *w ? brief_fmt("%s, %s", w, r) : g_strdup(r);
            g_free(w);
            w = x;
        }
        g_free(r);
    }
    *out = w;
    return 0;
}

static int cell_row(struct brief_ctx *c, struct tb *t, int64_t si, int64_t ci, int with_slice)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_slice *s = &a->slices[si];
    const struct qb_an_cell *cell = &s->cells[ci];
    char *d = NULL, *w = NULL;
    int rc;
    if (with_slice)
        tb_add(t, g_strdup(s->name));
    tb_add(t, g_strdup(a->configs[ci].spec));
    tb_add(t, brief_i64(cell->n));
    if (s->is_perplexity) {
        tb_add(t, isfinite(cell->ppl) ? brief_fmt("ppl %.3g", cell->ppl) : NULL);
    } else {
        char *x = brief_pts(cell->acc), *lo = brief_pts(cell->acc_ci.lo),
             *hi = brief_pts(cell->acc_ci.hi);
        tb_add(t, brief_fmt("%s (%s–%s)", x, lo, hi));
        g_free(x), g_free(lo), g_free(hi);
    }
    if ((rc = delta_text(c, s, cell, &d)) < 0)
        return rc;
    tb_add(t, ci == a->baseline ? g_strdup(NA) : d);
    if (ci == a->baseline)
        g_free(d);
    tb_add(t, ci == a->baseline || s->is_perplexity
                  ? g_strdup(NA)
                  : brief_fmt("−%lld / +%lld", (long long)cell->flips_lost,
                              (long long)cell->flips_gained));
    if (with_slice) {
        tb_add(t, ci == a->baseline ? g_strdup(NA) : brief_pvalue(cell->mcnemar_p));
    } else {
        tb_add(t, ci == a->baseline ? g_strdup(NA) : brief_pvalue(cell->mcnemar_p));
        tb_add(t, ci == a->baseline || !isfinite(cell->kl_mean) ? g_strdup(NA)
                                                                : brief_fmt("%.3g", cell->kl_mean));
    }
    tb_add(t, ci == a->baseline ? g_strdup(NA) : brief_pts(cell->mde));
    if (with_slice) {
        /* accuracy table: 9 columns: slice config n acc delta flips p mde status */
    }
    if ((rc = status_word(c, s, ci, &w)) < 0)
        return rc;
    tb_add(t, w);
    return 0;
}

/* The rows of each generated table (docs/templates.md lists their columns), one function per
 * table, appended to t. */

static int table_recommendation(struct brief_ctx *c, struct tb *t)
{
    const struct qb_analysis *a = c->a;
    int rc;

    for (int64_t si = 0; si < a->n_slices; si++) {
        const struct qb_an_slice *s = &a->slices[si];
        char *d = NULL, *v = NULL;
        tb_add(t, g_strdup(s->name));
        tb_add(t, brief_percent(s->traffic));
        tb_add(t, g_strdup(a->configs[s->rec].spec));
        char *f = NULL, *br = NULL;
        if ((rc = delta_text(c, s, &s->cells[s->rec], &d)) < 0 ||
            (rc = brief_flips_cell(c, s, s->rec, &f)) < 0 ||
            (rc = verdict_word(c, s->verdict, &v)) < 0 || (rc = brief_breaks_at(c, s, &br)) < 0) {
            g_free(d), g_free(f), g_free(v);
            return rc;
        }
        tb_add(t, d);
        tb_add(t, f);
        tb_add(t, v);
        tb_add(t, br);
    }
    return 0;
}

static int table_slices(struct brief_ctx *c, struct tb *t)
{
    const struct qb_analysis *a = c->a;
    int rc;

    for (int64_t si = 0; si < a->n_slices; si++) {
        const struct qb_an_slice *s = &a->slices[si];
        char *k = NULL;
        if ((rc = brief_pattern(c, s->is_perplexity ? "kind_perplexity" : "kind_accuracy", NULL,
                                &k)) < 0)
            return rc;
        tb_add(t, g_strdup(s->name));
        tb_add(t, k);
        tb_add(t, brief_i64(s->n_items));
        tb_add(t, brief_fmt("%.1f", s->tolerance));
        tb_add(t, brief_percent(s->traffic));
    }
    return 0;
}

static int table_accuracy(struct brief_ctx *c, struct tb *t)
{
    int rc;

    for (int64_t si = 0; si < c->a->n_slices; si++)
        for (int64_t ci = 0; ci < c->a->n_configs; ci++)
            if ((rc = cell_row(c, t, si, ci, 1)) < 0)
                return rc;
    return 0;
}

/* inside @each slice: that slice's row per config */
static int table_slice_configs(struct brief_ctx *c, struct tb *t)
{
    int rc;

    for (int64_t ci = 0; ci < c->a->n_configs; ci++)
        if ((rc = cell_row(c, t, c->each_slice, ci, 0)) < 0)
            return rc;
    return 0;
}

static int table_configs(struct brief_ctx *c, struct tb *t)
{
    const struct qb_analysis *a = c->a;

    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_config *cf = &a->configs[ci];
        tb_add(t, g_strdup(cf->spec));
        tb_add(t, isfinite(cf->bits_per_weight) ? brief_fmt("%.2f", cf->bits_per_weight) : NULL);
        tb_add(t, cf->weight_bytes >= 0 ? brief_bytes((double)cf->weight_bytes) : NULL);
        tb_add(t, cf->peak_rss_bytes >= 0 ? brief_bytes((double)cf->peak_rss_bytes) : NULL);
        tb_add(t, ci == a->baseline ? g_strdup(NA) : brief_percent(cf->mem_saving));
        tb_add(t, isfinite(cf->quant_seconds) ? brief_fmt("%.2f", cf->quant_seconds) : NULL);
    }
    return 0;
}

static int table_latency(struct brief_ctx *c, struct tb *t)
{
    const struct qb_analysis *a = c->a;

    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_config *cf = &a->configs[ci];
        for (int64_t li = 0; li < cf->n_lat; li++) {
            const struct qb_an_latency *l = &cf->lat[li];
            char *p50 = brief_ms(l->ttft_p50), *p95 = brief_ms(l->ttft_p95),
                 *t50 = brief_ms(l->tpot_p50), *t95 = brief_ms(l->tpot_p95);
            tb_add(t, g_strdup(cf->spec));
            tb_add(t, brief_fmt("%lld / %lld / %lld", (long long)l->prompt_len,
                                (long long)l->gen_len, (long long)l->batch));
            tb_add(t, brief_fmt("%s / %s", p50, p95));
            tb_add(t, brief_fmt("%s / %s", t50, t95));
            tb_add(t,
                   isfinite(l->decode_tok_s_p50) ? brief_fmt("%.1f", l->decode_tok_s_p50) : NULL);
            tb_add(t, brief_times(l->speedup_tpot));
            tb_add(t, brief_times(l->speedup_ttft));
            tb_add(t, brief_i64(l->n_samples));
            g_free(p50), g_free(p95), g_free(t50), g_free(t95);
        }
    }
    return 0;
}

static int table_memory(struct brief_ctx *c, struct tb *t)
{
    const struct qb_analysis *a = c->a;

    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_config *cf = &a->configs[ci];
        tb_add(t, g_strdup(cf->spec));
        tb_add(t, cf->weight_bytes >= 0 ? brief_bytes((double)cf->weight_bytes) : NULL);
        if (cf->kv_cache_bytes >= 0) {
            char *kv = brief_bytes((double)cf->kv_cache_bytes);
            tb_add(t, cf->mem_context > 0 ? brief_fmt("%s (%lld)", kv, (long long)cf->mem_context)
                                          : g_strdup(kv));
            g_free(kv);
        } else {
            tb_add(t, NULL);
        }
        tb_add(t, cf->peak_rss_bytes >= 0 ? brief_bytes((double)cf->peak_rss_bytes) : NULL);
        tb_add(t, ci == a->baseline ? g_strdup(NA) : brief_percent(cf->mem_saving));
    }
    return 0;
}

/* the single config, then the routed plan: configs used, memory, blended speed */
static int table_deployment(struct brief_ctx *c, struct tb *t)
{
    const struct qb_analysis *a = c->a;
    int rc;

    for (int p = 0; p < 2; p++) {
        const struct qb_an_plan *pl = p ? &a->routed : &a->single;
        char *name = NULL;
        if ((rc = brief_pattern(c, p ? "plan_routed" : "plan_single", NULL, &name)) < 0)
            return rc;
        tb_add(t, name);
        GString *g = g_string_new(NULL);
        for (int64_t ci = 0; ci < a->n_configs; ci++) {
            int used = 0;
            for (int64_t si = 0; si < a->n_slices && pl->config; si++)
                used |= pl->config[si] == ci;
            if (used)
                g_string_append_printf(g, "%s%s", g->len ? ", " : "", a->configs[ci].spec);
        }
        tb_add(t, g_string_free(g, FALSE));
        tb_add(t, brief_bytes(pl->mem_cost));
        tb_add(t, brief_times(pl->mem_ratio));
        double tpot, ratio;
        brief_plan_tpot(a, pl, &tpot, &ratio);
        tb_add(t, brief_ms(tpot));
        tb_add(t, brief_times(ratio));
    }
    return 0;
}

static int table_divergence(struct brief_ctx *c, struct tb *t)
{
    const struct qb_analysis *a = c->a;

    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_cell *cell = a->overall.cells ? &a->overall.cells[ci] : NULL;
        tb_add(t, g_strdup(a->configs[ci].spec));
        if (!cell || ci == a->baseline) {
            for (int k = 0; k < 4; k++)
                tb_add(t, NULL);
            continue;
        }
        tb_add(t, isfinite(cell->kl_mean) ? brief_fmt("%.3g", cell->kl_mean) : NULL);
        tb_add(t, isfinite(cell->kl_p99) ? brief_fmt("%.3g", cell->kl_p99) : NULL);
        tb_add(t, isfinite(cell->top1) ? brief_percent(cell->top1) : NULL);
        tb_add(t, isfinite(cell->flip_rate) ? brief_percent(cell->flip_rate) : NULL);
    }
    return 0;
}

static int table_compare(struct brief_ctx *c, struct tb *t)
{
    return brief_table_compare(c, t->cells);
}

static int table_compare_recs(struct brief_ctx *c, struct tb *t)
{
    return brief_table_compare_recs(c, t->cells);
}

static int table_compare_cost(struct brief_ctx *c, struct tb *t)
{
    return brief_table_compare_cost(c, t->cells);
}

static int (*const table_rows[N_TABLES])(struct brief_ctx *c, struct tb *t) = {
    [T_RECOMMENDATION] = table_recommendation,
    [T_SLICES] = table_slices,
    [T_ACCURACY] = table_accuracy,
    [T_SLICE_CONFIGS] = table_slice_configs,
    [T_CONFIGS] = table_configs,
    [T_LATENCY] = table_latency,
    [T_MEMORY] = table_memory,
    [T_DEPLOYMENT] = table_deployment,
    [T_DIVERGENCE] = table_divergence,
    [T_COMPARE] = table_compare,
    [T_COMPARE_RECS] = table_compare_recs,
    [T_COMPARE_COST] = table_compare_cost,
};

/* @table NAME [cols=...]: the header row (cols= expanded, else empty), then the table's rows. */
static int build_table(struct brief_ctx *c, const struct tline *tl, struct qb_blk *b)
{
    struct tb t = {g_ptr_array_new(), brief_tables[tl->arg].n_cols};
    int rc = 0;

    if (tl->cols) {
        char *cols = NULL;
        if ((rc = brief_expand(c, tl->cols, tl->line, &cols)) < 0)
            goto out;
        char **v = g_strsplit(cols, "|", -1);
        for (int i = 0; v[i]; i++)
            tb_add(&t, g_strdup(g_strstrip(v[i])));
        g_strfreev(v);
        g_free(cols);
    } else {
        for (int i = 0; i < t.n_cols; i++)
            tb_add(&t, g_strdup(""));
    }
    if (tl->arg == T_SLICE_CONFIGS && c->each_slice < 0) {
        rc = qb_err(QB_EFORMAT, "'%s':%d: table 'slice_configs' belongs inside @each slice",
                    c->t->file, tl->line);
        goto out;
    }
    if ((rc = table_rows[tl->arg](c, &t)) < 0)
        goto out;
    b->n_cols = t.n_cols;
    b->n_rows = (int64_t)t.cells->len / t.n_cols;
    b->align = g_strdup(brief_tables[tl->arg].align);
out:
    if (rc < 0) {
        for (guint i = 0; i < t.cells->len; i++)
            g_free(g_ptr_array_index(t.cells, i));
        g_ptr_array_set_size(t.cells, 0);
        b->n_rows = b->n_cols = 0;
    }
    b->cells = (char **)g_ptr_array_free(t.cells, FALSE);
    if (rc >= 0 && b->n_rows * b->n_cols == 0)
        b->n_rows = 0;
    return rc;
}

static int build_list(struct brief_ctx *c, const struct tline *tl, struct qb_blk *b)
{
    const struct qb_analysis *a = c->a;
    GPtrArray *v = g_ptr_array_new();
    int rc = 0;
    if (tl->arg == L_CLIFFS) {
        for (int64_t i = 0; i < a->n_cliffs; i++) {
            const struct qb_an_cliff *cl = &a->cliffs[i];
            struct scope sc = {0};
            char *s1 = NULL, *s2 = NULL;
            brief_cliff_scope(a, cl, &sc);
            int ppl = a->slices[cl->slice].is_perplexity;
            rc = brief_pattern(c, ppl ? "cliff_ppl" : "cliff", &sc, &s1);
            if (rc >= 0)
                rc = brief_pattern(c, cl->hides ? "cliff_hidden" : "cliff_visible", &sc, &s2);
            /* a config further down the ladder than the loss holds for the slice all the same
             * (losses need not grow as bits fall): say so, or the cliff reads as binding */
            const struct qb_an_slice *sl = &a->slices[cl->slice];
            char *s3 = NULL;
            if (rc >= 0 && sl->verdict == QB_VERDICT_HOLDS && sl->rec > cl->below) {
                brief_scope_set(&sc, "rec", g_strdup(a->configs[sl->rec].spec));
                rc = brief_pattern(c, "cliff_passed", &sc, &s3);
            }
            brief_scope_clear(&sc);
            if (rc < 0) {
                g_free(s1), g_free(s2), g_free(s3);
                break;
            }
            GString *item = g_string_new(s1);
            if (*s2)
                g_string_append_printf(item, " %s", s2);
            if (s3 && *s3)
                g_string_append_printf(item, " %s", s3);
            g_ptr_array_add(v, g_string_free(item, FALSE));
            g_free(s1), g_free(s2), g_free(s3);
        }
    } else if (tl->arg == L_BEHAVIOUR) {
        rc = brief_list_behaviour(c, v);
    } else if (tl->arg == L_EXAMPLES) {
        rc = brief_list_examples(c, v);
    } else if (tl->arg == L_COMPARE_WARNINGS) {
        rc = brief_list_compare_warnings(c, v);
    } else if (tl->arg == L_CAVEATS) {
        for (int64_t i = 0; i < c->n_caveats; i++)
            g_ptr_array_add(v, g_strdup(c->caveats[i]));
    } else if (tl->arg == L_SENSITIVITY) {
        rc = brief_sens_list(c, v);
    } else {
        for (int64_t i = 0; i < a->n_warnings; i++)
            g_ptr_array_add(v, g_strdup(a->warnings[i]));
    }
    b->n_items = (int64_t)v->len;
    b->items = (char **)g_ptr_array_free(v, FALSE);
    return rc;
}

static int eval_cond(struct brief_ctx *c, const struct tline *tl)
{
    int v;
    if (tl->arg < N_GLOBAL_CONDS) {
        v = c->conds[tl->arg];
    } else {
        const struct qb_an_slice *s = &c->a->slices[c->each_slice];
        v = tl->arg == C_SLICE_HAS_CLIFF       ? s->cliff >= 0
            : tl->arg == C_SLICE_IS_PERPLEXITY ? s->is_perplexity
            : tl->arg == C_SLICE_HAS_BEHAVIOUR ? s->behaviour >= 0
                                               : s->verdict == QB_VERDICT_UNDECIDED;
    }
    return tl->negate ? !v : v;
}

static char *safe_name(const char *s)
{
    char *r = g_strdup(s);
    for (char *p = r; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_'))
            *p = '_';
    return r;
}

static int build_range(struct brief_ctx *c, int64_t from, int64_t to);

/* @if at line i: the then-branch or the @else branch; *next: its @endif. */
static int build_if(struct brief_ctx *c, int64_t i, int64_t *next)
{
    const struct qb_template *t = c->t;
    const struct tline *tl = &t->l[i];
    int64_t m = tl->match, end = m;
    int rc = 0;

    while (t->l[end].d == D_ELSE)
        end = t->l[end].match;
    if (eval_cond(c, tl))
        rc = build_range(c, i + 1, m);
    else if (t->l[m].d == D_ELSE)
        rc = build_range(c, m + 1, end);
    *next = end;
    return rc;
}

/* @each slice at line i: its body once per slice, with the slice's item variables and
 * {{verdict}}. */
static int build_each(struct brief_ctx *c, int64_t i)
{
    const struct tline *tl = &c->t->l[i];
    struct scope sc = {0};
    struct scope *save = c->local;
    int rc = 0;

    for (int64_t si = 0; si < c->a->n_slices; si++) {
        char *v = NULL;
        brief_slice_scope(c, si, &sc);
        if ((rc = verdict_word(c, c->a->slices[si].verdict, &v)) < 0)
            break;
        brief_scope_set(&sc, "verdict", v);
        c->local = &sc;
        c->each_slice = si;
        rc = build_range(c, i + 1, tl->match);
        c->local = save;
        c->each_slice = -1;
        brief_scope_clear(&sc);
        if (rc < 0)
            return rc;
    }
    brief_scope_clear(&sc);
    return rc;
}

/* @title, @lead, @h1, @h2, @p, @note, @code: one text block; the first title names the PDF. */
static int build_text(struct brief_ctx *c, const struct tline *tl)
{
    static const enum qb_blk_kind k[] = {
        [D_TITLE] = QB_BLK_TITLE, [D_LEAD] = QB_BLK_LEAD, [D_H1] = QB_BLK_H1,
        [D_H2] = QB_BLK_H2,       [D_P] = QB_BLK_P,       [D_NOTE] = QB_BLK_NOTE,
        [D_CODE] = QB_BLK_CODE,
    };
    char *s = NULL;
    int rc;

    if ((rc = brief_expand(c, tl->text, tl->line, &s)) < 0)
        return rc;
    if (tl->d == D_TITLE && !c->doc->doc_title)
        c->doc->doc_title = g_strdup(s);
    doc_add(c->doc, k[tl->d])->text = s;
    return rc;
}

/* @stat "value | label | note": three items of a stats row; consecutive @stat lines share
 * one row. */
static int build_stat(struct brief_ctx *c, const struct tline *tl)
{
    char *s = NULL;
    int rc;

    if ((rc = brief_expand(c, tl->text, tl->line, &s)) < 0)
        return rc;
    struct qb_blk *prev = c->doc->n ? &c->doc->blk[c->doc->n - 1] : NULL;
    struct qb_blk *b = prev && prev->kind == QB_BLK_STATS ? prev : doc_add(c->doc, QB_BLK_STATS);
    char **v = g_strsplit(s, "|", 3);
    b->items = g_renew(char *, b->items, (gsize)b->n_items + 3);
    for (int k = 0, have = 1; k < 3; k++) {
        have = have && v[k];
        b->items[b->n_items + k] = g_strdup(have ? g_strstrip(v[k]) : "");
    }
    b->n_items += 3;
    g_strfreev(v);
    g_free(s);
    return rc;
}

/* A chart's file name, unique in the document: kind[-slice][-N].png */
static char *chart_file(const struct qb_doc *doc, int kind, const char *slice)
{
    const char *name = qb_chart_kind_name((enum qb_chart_kind)kind);
    char *base = slice ? brief_fmt("%s-%s", name, slice) : g_strdup(name);
    char *sb = safe_name(base), *file = brief_fmt("%s.png", sb);

    for (int k = 2;; k++) {
        int dup = 0;
        for (int64_t j = 0; j < doc->n; j++)
            if (doc->blk[j].kind == QB_BLK_CHART && !strcmp(doc->blk[j].file, file))
                dup = 1;
        if (!dup)
            break;
        g_free(file);
        file = brief_fmt("%s-%d.png", sb, k);
    }
    g_free(base), g_free(sb);
    return file;
}

/* @chart KIND: a chart block, drawn later (brief_draw_charts) at the size given, else the text
 * width by 0.6 of it. */
static int build_chart(struct brief_ctx *c, const struct tline *tl)
{
    char *title = NULL, *sub = NULL, *slice = NULL;
    struct qb_blk *b;
    int rc = 0;

    if ((tl->title && (rc = brief_expand(c, tl->title, tl->line, &title)) < 0) ||
        (tl->subtitle && (rc = brief_expand(c, tl->subtitle, tl->line, &sub)) < 0) ||
        (tl->slice && (rc = brief_expand(c, tl->slice, tl->line, &slice)) < 0)) {
        g_free(title), g_free(sub);
        return rc;
    }
    char *file = chart_file(c->doc, tl->arg, slice);
    b = doc_add(c->doc, QB_BLK_CHART);
    b->chart_kind = tl->arg;
    b->title = title;
    b->subtitle = sub;
    b->slice = slice;
    b->line = tl->line;
    b->file = file;
    b->width_pt = tl->width > 0 ? tl->width : c->text_width_pt;
    /* a heatmap grows with its rows (about 30 pt per slice, plus header and legend) so its text
     * stays at print size; other charts default to 0.6 x their width */
    b->height_pt = tl->height > 0 ? tl->height
                   : tl->arg == QB_CHART_HEATMAP && !slice
                       ? fmin(600.0, 95.0 + 30.0 * (double)(c->a->n_slices + 1))
                       : b->width_pt * 0.6;
    return rc;
}

/* Template lines from..to-1 into c->doc: directives in order, @if and @each recursing. */
static int build_range(struct brief_ctx *c, int64_t from, int64_t to)
{
    const struct qb_template *t = c->t;
    char *s = NULL;
    int rc = 0;

    for (int64_t i = from; i < to; i++) {
        const struct tline *tl = &t->l[i];
        switch (tl->d) {
        case D_DEFINE:
        case D_ENDIF:
        case D_ENDEACH: break;
        case D_ELSE: /* reached from the then-branch: skip to @endif */ i = tl->match; break;
        case D_IF: rc = build_if(c, i, &i); break;
        case D_EACH:
            rc = build_each(c, i);
            i = tl->match;
            break;
        case D_PAGE: doc_add(c->doc, QB_BLK_PAGE); break;
        case D_FOOTER:
            if ((rc = brief_expand(c, tl->text, tl->line, &s)) < 0)
                return rc;
            g_free(c->doc->footer);
            c->doc->footer = s;
            break;
        case D_TITLE:
        case D_LEAD:
        case D_H1:
        case D_H2:
        case D_P:
        case D_NOTE:
        case D_CODE: rc = build_text(c, tl); break;
        case D_STAT: rc = build_stat(c, tl); break;
        case D_TABLE: rc = build_table(c, tl, doc_add(c->doc, QB_BLK_TABLE)); break;
        case D_LIST: rc = build_list(c, tl, doc_add(c->doc, QB_BLK_LIST)); break;
        case D_CHART: rc = build_chart(c, tl); break;
        }
        if (rc < 0)
            return rc;
    }
    return rc;
}

/* Draws every chart of doc (in parallel: each chart is its own Cairo surface): PNG files for
 * Markdown, raw pixels for the PDF (libharu compresses them once; no PNG encode and decode). */
int brief_draw_charts(const struct qb_analysis *a, struct qb_doc *doc, double dpi, int raw)
{
    int64_t n = 0;
    int64_t *idx = g_new(int64_t, (gsize)doc->n + 1);
    for (int64_t i = 0; i < doc->n; i++)
        if (doc->blk[i].kind == QB_BLK_CHART)
            idx[n++] = i;
    int *rcs = g_new0(int, (gsize)n + 1);
    char **msgs = g_new0(char *, (gsize)n + 1);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t j = 0; j < n; j++) {
        struct qb_blk *b = &doc->blk[idx[j]];
        struct qb_chart_opts o = QB_CHART_OPTS_INIT;
        o.width_pt = b->width_pt;
        o.height_pt = b->height_pt;
        o.dpi = dpi;
        o.title = b->title;
        o.subtitle = b->subtitle;
        o.slice = b->slice;
        if (raw) {
            rcs[j] =
                qb_chart_rgb(a, (enum qb_chart_kind)b->chart_kind, &o, &b->png, &b->px_w, &b->px_h);
            b->n_png = rcs[j] < 0 ? 0 : (size_t)b->px_w * (size_t)b->px_h * 3;
        } else {
            rcs[j] = qb_chart_png(a, (enum qb_chart_kind)b->chart_kind, &o, &b->png, &b->n_png);
        }
        if (rcs[j] < 0)
            msgs[j] = g_strdup(qb_errmsg());
    }
    int rc = 0;
    for (int64_t j = 0; j < n; j++)
        if (rcs[j] < 0 && !rc)
            rc = qb_err(rcs[j], "chart '%s' (template line %d): %s", doc->blk[idx[j]].file,
                        doc->blk[idx[j]].line, msgs[j]);
    for (int64_t j = 0; j < n; j++)
        g_free(msgs[j]);
    g_free(msgs), g_free(rcs), g_free(idx);
    if (n)
        qb_chart_release_caches(); /* Cairo's font caches: a clean exit for leak checkers */
    return rc;
}
/* A brief compares configs with the baseline: a run without baseline results, or with none
 * for any other config (stopped after the baseline, or run with the baseline alone), has
 * nothing to say, and a brief of it would count configs it never measured. */
static int check_measured(const struct qb_analysis *a)
{
    const char *run = a->run_name ? a->run_name : "";
    int64_t n_other = 0;
    if (a->n_configs < 1 || a->baseline < 0 || a->baseline >= a->n_configs ||
        a->configs[a->baseline].n_results <= 0)
        return qb_err(QB_EINVAL, "run '%s' has no baseline results", run);
    for (int64_t i = 0; i < a->n_configs; i++)
        n_other += i != a->baseline && a->configs[i].n_results > 0;
    if (n_other)
        return 0;
    if (a->n_configs == 1)
        return qb_err(QB_EINVAL,
                      "run '%s' measured only its baseline '%s': a brief compares other configs "
                      "with it (run with --configs listing them)",
                      run, a->configs[a->baseline].spec);
    return qb_err(QB_EINVAL,
                  "run '%s' has results only for its baseline '%s', none for its %lld other "
                  "configs: nothing to compare yet (rerun the same qbrief run to resume it)",
                  run, a->configs[a->baseline].spec, (long long)(a->n_configs - 1));
}

int brief_build_doc(const struct qb_analysis *a, const struct qb_template *t,
                    const struct qb_brief_opts *o, const char *date, double text_width_pt,
                    struct qb_doc *doc)
{
    struct brief_ctx c = {0};
    int rc;
    if ((rc = check_measured(a)) < 0)
        return rc;
    c.a = a;
    c.t = t;
    c.doc = doc;
    c.each_slice = -1;
    c.text_width_pt = text_width_pt;
    c.cmp = o ? o->compare : NULL;
    c.vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if ((rc = brief_make_vars(&c, o, date)) < 0)
        goto out;
    rc = build_range(&c, 0, t->n);
    if (rc >= 0) {
        const char *ans = g_hash_table_lookup(c.vars, "answer");
        doc->answer = ans ? g_strdup(ans) : NULL;
    }
    if (rc >= 0) {
        char *lab = NULL;
        if ((rc = brief_pattern(&c, "page_label", NULL, &lab)) >= 0)
            doc->page_label = lab;
    }
out:
    g_strfreev(c.caveats);
    g_hash_table_destroy(c.vars);
    return rc;
}
