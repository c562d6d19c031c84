/* flips: what the brief says about changed answers -- the flips cell of a table (right->wrong
 * and wrong->right with their intervals), where a slice's ladder breaks, the configs passed
 * over because they change behaviour, their example items, and the slices whose ladder is
 * unstable. One function per block; every word comes from the template's patterns
 * (flips_cell, breaks_at, breaks_at_ppl, breaks_none, behaviour, why_flips, why_gain,
 * example_lost, example_gained, caveat_unstable). */
#include "analysis/analyze.h"
#include "output/brief_int.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define QUOTE_MAX 160 /* characters of a prompt or an answer quoted */

/* a count's interval from a share's: rounded to whole items */
static char *count_of(double share, int64_t n)
{
    return isfinite(share) ? brief_i64((int64_t)llround(share * (double)n)) : g_strdup(NA);
}

/* {{lost}}, {{gained}} with their intervals as counts, {{share}}, {{share_lo}}, {{share_hi}},
 * {{limit}} of one cell */
static void flip_scope(const struct qb_an_slice *s, const struct qb_an_cell *e, struct scope *sc)
{
    brief_scope_set(sc, "lost", brief_i64(e->flips_lost));
    brief_scope_set(sc, "lost_lo", count_of(e->lost_ci.lo, e->n));
    brief_scope_set(sc, "lost_hi", count_of(e->lost_ci.hi, e->n));
    brief_scope_set(sc, "gained", brief_i64(e->flips_gained));
    brief_scope_set(sc, "gained_lo", count_of(e->gained_ci.lo, e->n));
    brief_scope_set(sc, "gained_hi", count_of(e->gained_ci.hi, e->n));
    brief_scope_set(sc, "share", brief_percent(e->flip_rate));
    brief_scope_set(sc, "share_lo", brief_percent(e->flip_ci.lo));
    brief_scope_set(sc, "share_hi", brief_percent(e->flip_ci.hi));
    brief_scope_set(sc, "limit", brief_fmt("%g%%", s->max_flips));
    brief_scope_set(sc, "n", brief_i64(e->n));
}

int brief_flips_cell(struct brief_ctx *c, const struct qb_an_slice *s, int64_t ci, char **out)
{
    const struct qb_an_cell *e = &s->cells[ci];
    struct scope sc = {0};
    int rc;
    if (ci == c->a->baseline || s->is_perplexity || e->n == 0) {
        *out = g_strdup(NA);
        return 0;
    }
    flip_scope(s, e, &sc);
    rc = brief_pattern(c, "flips_cell", &sc, out);
    brief_scope_clear(&sc);
    return rc;
}

int brief_breaks_at(struct brief_ctx *c, const struct qb_an_slice *s, char **out)
{
    struct scope sc = {0};
    int rc;
    if (s->cliff < 0)
        return brief_pattern(c, "breaks_none", NULL, out);
    const struct qb_an_cliff *cl = &c->a->cliffs[s->cliff];
    brief_scope_set(&sc, "below", g_strdup(c->a->configs[cl->below].spec));
    brief_scope_set(&sc, "loss", s->is_perplexity ? brief_spts(cl->loss) : brief_spts(-cl->loss));
    rc = brief_pattern(c, s->is_perplexity ? "breaks_at_ppl" : "breaks_at", &sc, out);
    brief_scope_clear(&sc);
    return rc;
}

/* "why" of a passed-over config: why_gain and/or why_flips, joined by the template's "and" */
static int behaviour_why(struct brief_ctx *c, const struct qb_an_cell *e, struct scope *sc,
                         char **out)
{
    char *g = NULL, *f = NULL, *and = NULL;
    int rc = 0;
    if (e->gains_beyond && (rc = brief_pattern(c, "why_gain", sc, &g)) < 0)
        goto out;
    if (e->flips_over && (rc = brief_pattern(c, "why_flips", sc, &f)) < 0)
        goto out;
    if ((rc = brief_pattern(c, "and", NULL, &and)) < 0)
        goto out;
    *out = g && f && *g && *f ? brief_fmt("%s %s %s", g, and, f)
                              : g_strdup(g && *g ? g
                                         : f     ? f
                                                 : "");
out:
    g_free(g), g_free(f), g_free(and);
    return rc;
}

/* {{also}}: the other configs no dearer than rec that are within tolerance on accuracy but
 * change behaviour (behaviour_also with {{configs}}), or "" */
static int behaviour_also(struct brief_ctx *c, const struct qb_an_slice *s, char **out)
{
    const struct qb_analysis *a = c->a;
    GString *g = g_string_new(NULL);
    struct scope sc = {0};
    int rc;
    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_cell *e = &s->cells[ci];
        if (ci != s->behaviour && ci != s->rec && e->within_acc && e->changes_behaviour &&
            a->configs[ci].mem_cost <= a->configs[s->rec].mem_cost)
            g_string_append_printf(g, "%s%s", g->len ? ", " : "", a->configs[ci].spec);
    }
    if (!g->len) {
        g_string_free(g, TRUE);
        *out = g_strdup("");
        return 0;
    }
    char *t = NULL;
    brief_scope_set(&sc, "configs", g_string_free(g, FALSE));
    brief_scope_set(&sc, "rec", g_strdup(a->configs[s->rec].spec));
    rc = brief_pattern(c, "behaviour_also", &sc, &t);
    brief_scope_clear(&sc);
    /* a sentence of its own after the pattern's full stop (a template trims its patterns) */
    *out = rc >= 0 && t && *t ? brief_fmt(" %s", t) : g_strdup("");
    g_free(t);
    return rc;
}

int brief_list_behaviour(struct brief_ctx *c, GPtrArray *v)
{
    const struct qb_analysis *a = c->a;
    int rc = 0;
    for (int64_t si = 0; rc >= 0 && si < a->n_slices; si++) {
        const struct qb_an_slice *s = &a->slices[si];
        if (s->behaviour < 0)
            continue;
        const struct qb_an_cell *e = &s->cells[s->behaviour];
        struct scope sc = {0};
        char *why = NULL, *line = NULL;
        brief_slice_scope(c, si, &sc);
        flip_scope(s, e, &sc);
        brief_scope_set(&sc, "config", g_strdup(a->configs[s->behaviour].spec));
        brief_scope_set(&sc, "delta", brief_spts(e->delta));
        brief_scope_set(&sc, "delta_lo", brief_spts(e->delta_ci.lo));
        brief_scope_set(&sc, "delta_hi", brief_spts(e->delta_ci.hi));
        char *also = NULL;
        if ((rc = behaviour_why(c, e, &sc, &why)) >= 0 && (rc = behaviour_also(c, s, &also)) >= 0) {
            brief_scope_set(&sc, "why", why);
            brief_scope_set(&sc, "also", also);
            rc = brief_pattern(c, "behaviour", &sc, &line);
        } else {
            g_free(why);
            g_free(also);
        }
        brief_scope_clear(&sc);
        if (rc >= 0 && *line)
            g_ptr_array_add(v, line);
        else
            g_free(line);
    }
    return rc;
}

/* text quoted on one line: control characters as spaces, cut at QUOTE_MAX characters */
static char *quote(const char *s)
{
    if (!s)
        return g_strdup(NA);
    GString *g = g_string_new(NULL);
    glong n = 0;
    for (const char *p = s; *p && n < QUOTE_MAX; p = g_utf8_next_char(p), n++) {
        gunichar u = g_utf8_get_char_validated(p, -1);
        if (u == (gunichar)-1 || u == (gunichar)-2)
            break;
        g_string_append_unichar(g, u < 0x20 || u == 0x7f ? ' ' : u);
    }
    if (g_utf8_strlen(s, -1) > QUOTE_MAX)
        g_string_append(g, "…");
    return g_string_free(g, FALSE);
}

/* inside @each slice: the example items of the slice's passed-over config */
int brief_list_examples(struct brief_ctx *c, GPtrArray *v)
{
    const struct qb_analysis *a = c->a;
    if (c->each_slice < 0)
        return 0;
    const struct qb_an_slice *s = &a->slices[c->each_slice];
    int rc = 0;
    for (int64_t k = 0; rc >= 0 && s->behaviour >= 0 && k < s->n_examples; k++) {
        const struct qb_an_example *ex = &s->examples[k];
        struct scope sc = {0};
        char *line = NULL;
        brief_scope_set(&sc, "item", quote(ex->key));
        brief_scope_set(&sc, "prompt", quote(ex->prompt));
        brief_scope_set(&sc, "baseline_answer", quote(ex->baseline_output));
        brief_scope_set(&sc, "config_answer", quote(ex->config_output));
        brief_scope_set(&sc, "config", g_strdup(a->configs[s->behaviour].spec));
        rc = brief_pattern(c, ex->lost ? "example_lost" : "example_gained", &sc, &line);
        brief_scope_clear(&sc);
        if (rc >= 0 && *line)
            g_ptr_array_add(v, line);
        else
            g_free(line);
    }
    return rc;
}

int brief_unstable_caveats(struct brief_ctx *c, GPtrArray *v)
{
    const struct qb_analysis *a = c->a;
    int rc = 0;
    for (int64_t si = 0; rc >= 0 && si < a->n_slices; si++) {
        const struct qb_an_slice *s = &a->slices[si];
        if (s->unstable_below < 0)
            continue;
        const struct qb_an_cell *u = &s->cells[s->unstable_above],
                                *d = &s->cells[s->unstable_below];
        struct scope sc = {0};
        char *line = NULL;
        brief_scope_set(&sc, "slice", g_strdup(s->name));
        brief_scope_set(&sc, "above", g_strdup(a->configs[s->unstable_above].spec));
        brief_scope_set(&sc, "below", g_strdup(a->configs[s->unstable_below].spec));
        brief_scope_set(&sc, "above_delta", brief_spts(u->delta));
        brief_scope_set(&sc, "below_delta", brief_spts(d->delta));
        brief_scope_set(&sc, "above_hi", brief_spts(u->delta_ci.hi));
        brief_scope_set(&sc, "below_lo", brief_spts(d->delta_ci.lo));
        rc = brief_pattern(c, "caveat_unstable", &sc, &line);
        brief_scope_clear(&sc);
        if (rc >= 0 && *line)
            g_ptr_array_add(v, line);
        else
            g_free(line);
    }
    return rc;
}
