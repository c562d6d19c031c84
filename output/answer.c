/* answer: the sentences a brief composes from the template's patterns (docs/templates.md):
 * the one-sentence answer (answer_* patterns, clause by clause, cheapest config first) and the
 * caveats (caveat_* patterns), with the item scopes of a slice and of a cliff they use. */
#include "output/brief.h"

#include "analysis/analyze.h"
#include "output/brief_int.h"

#include <glib.h>

/* Joins names as "a, b and c" with the template's word for "and". */
static int join_and(struct brief_ctx *c, char **names, int64_t n, char **out)
{
    char *and_word = NULL;
    int rc = brief_pattern(c, "and", NULL, &and_word);
    if (rc < 0)
        return rc;
    GString *g = g_string_new(NULL);
    for (int64_t i = 0; i < n; i++) {
        if (i)
            g_string_append(g, i == n - 1 ? (*and_word ? " " : ", ") : ", ");
        if (i && i == n - 1 && *and_word)
            g_string_append_printf(g, "%s ", and_word);
        g_string_append(g, names[i]);
    }
    g_free(and_word);
    *out = g_string_free(g, FALSE);
    return 0;
}

void brief_slice_scope(struct brief_ctx *c, int64_t si, struct scope *sc)
{
    const struct qb_analysis *a = c->a;
    const struct qb_an_slice *s = &a->slices[si];
    const struct qb_an_cell *cell = &s->cells[s->rec];
    brief_scope_set(sc, "slice", g_strdup(s->name));
    brief_scope_set(sc, "n", brief_i64(cell->n));
    brief_scope_set(sc, "n_items", brief_i64(s->n_items));
    brief_scope_set(sc, "tol", brief_fmt("%.1f", s->tolerance));
    brief_scope_set(sc, "traffic", brief_percent(s->traffic));
    brief_scope_set(sc, "rec", g_strdup(a->configs[s->rec].spec));
    brief_scope_set(sc, "config", g_strdup(a->configs[s->rec].spec));
    brief_scope_set(sc, "mde", brief_pts(cell->mde));
    brief_scope_set(sc, "kind", g_strdup(s->is_perplexity ? "perplexity" : "accuracy"));
    brief_scope_set(sc, "delta",
                    s->is_perplexity ? brief_spts(-cell->delta) : brief_spts(cell->delta));
    brief_scope_set(sc, "delta_lo",
                    s->is_perplexity ? brief_spts(-cell->delta_ci.hi)
                                     : brief_spts(cell->delta_ci.lo));
    brief_scope_set(sc, "delta_hi",
                    s->is_perplexity ? brief_spts(-cell->delta_ci.lo)
                                     : brief_spts(cell->delta_ci.hi));
}

void brief_cliff_scope(const struct qb_analysis *a, const struct qb_an_cliff *cl, struct scope *sc)
{
    const struct qb_an_slice *s = &a->slices[cl->slice];
    brief_scope_set(sc, "slice", g_strdup(s->name));
    brief_scope_set(sc, "above", g_strdup(a->configs[cl->above].spec));
    brief_scope_set(sc, "below", g_strdup(a->configs[cl->below].spec));
    brief_scope_set(sc, "loss", brief_pts(cl->loss));
    brief_scope_set(sc, "loss_lo", brief_pts(cl->loss_ci.lo));
    brief_scope_set(sc, "loss_hi", brief_pts(cl->loss_ci.hi));
    brief_scope_set(sc, "n", brief_i64(s->cells[cl->below].n));
    brief_scope_set(sc, "tol", brief_fmt("%.1f", s->tolerance));
    brief_scope_set(sc, "overall_loss", brief_pts(cl->overall_loss));
    brief_scope_set(sc, "overall_delta", brief_spts(-cl->overall_loss));
}

/* The answer when one config serves everything because routing would not save memory: the
 * slices that need it (their own recommendation is that config; not those too small to tell
 * or failed by the baseline), with a cliff when one of them has one. 1 when it wrote the
 * answer, 0 when no slice needs that config. */
static int answer_single(struct brief_ctx *c, GString *g)
{
    const struct qb_analysis *a = c->a;
    int64_t sc_cfg = a->single_config, n = 0, first = -1;
    char **names = g_new0(char *, (gsize)a->n_slices + 1), *list = NULL, *s = NULL;
    struct scope sc = {0};
    int rc;

    for (int64_t si = 0; si < a->n_slices; si++) {
        const struct qb_an_slice *sl = &a->slices[si];
        if (sl->rec != sc_cfg || sl->verdict == QB_VERDICT_UNDECIDED ||
            sl->verdict == QB_VERDICT_FAILS)
            continue;
        if (first < 0 || (a->slices[first].cliff < 0 && sl->cliff >= 0))
            first = si;
        names[n++] = sl->name;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    if ((rc = join_and(c, names, n, &list)) < 0)
        goto out;
    if (a->slices[first].cliff >= 0)
        brief_cliff_scope(a, &a->cliffs[a->slices[first].cliff], &sc);
    brief_scope_set(&sc, "config", g_strdup(a->configs[sc_cfg].spec));
    brief_scope_set(&sc, "slices", list);
    /* the baseline is kept, not served: answer_keep_all(_cliff) when the template has them */
    const int keep = sc_cfg == a->baseline && brief_find_define(c->t, "answer_keep_all");
    const int with_cliff =
        a->slices[first].cliff >= 0 &&
        brief_find_define(c->t, keep ? "answer_keep_all_cliff" : "answer_single_cliff");
    rc = brief_pattern(c,
                       keep ? (with_cliff ? "answer_keep_all_cliff" : "answer_keep_all")
                            : (with_cliff ? "answer_single_cliff" : "answer_single"),
                       &sc, &s);
    brief_scope_clear(&sc);
    if (rc >= 0) {
        g_string_assign(g, s);
        rc = 1;
    }
    g_free(s);
out:
    g_free(names);
    return rc;
}

/* Appends the clause on the slices the baseline itself fails (not judged), if any. */
static int answer_fails(struct brief_ctx *c, GString *g)
{
    const struct qb_analysis *a = c->a;
    char **names = g_new0(char *, (gsize)a->n_slices + 1), *list = NULL, *clause = NULL;
    struct scope sc = {0};
    int64_t n = 0;
    int rc = 0;

    for (int64_t si = 0; si < a->n_slices; si++)
        if (a->slices[si].verdict == QB_VERDICT_FAILS)
            names[n++] = a->slices[si].name;
    if (n == 0 || (rc = join_and(c, names, n, &list)) < 0)
        goto out;
    brief_scope_set(&sc, "config", g_strdup(a->configs[a->baseline].spec));
    brief_scope_set(&sc, "slices", list);
    brief_scope_set(&sc, "floor", brief_fmt("%g", 100 * QB_AN_FLOOR_ACC));
    if ((rc = brief_pattern(c, "answer_fails", &sc, &clause)) >= 0 && *clause) {
        if (g->len)
            g_string_append(g, "; ");
        g_string_append(g, clause);
    }
    g_free(clause);
    brief_scope_clear(&sc);
out:
    g_free(names);
    return rc;
}

/* Appends the clause for config ci and one kind of slice it is recommended for (0: they hold,
 * 1: the baseline kept, by a cliff or not, 2: too small to tell), if any; names: room
 * for every slice name. */
static int answer_clause(struct brief_ctx *c, GString *g, char **names, int64_t ci, int kind)
{
    const struct qb_analysis *a = c->a;
    int64_t n = 0, first = -1;
    struct scope sc = {0};
    char *list = NULL, *clause = NULL;
    int rc;

    for (int64_t si = 0; si < a->n_slices; si++) {
        const struct qb_an_slice *s = &a->slices[si];
        if (s->rec != ci || s->verdict == QB_VERDICT_FAILS)
            continue;
        /* the verdict is about the recommended config: a config that holds is served, the
         * baseline kept (with the cliff that keeps it there, when there is one) */
        int k = s->verdict == QB_VERDICT_UNDECIDED ? 2 : ci == a->baseline ? 1 : 0;
        if (k != kind)
            continue;
        if (first < 0)
            first = si;
        names[n++] = a->slices[si].name;
    }
    if (!n)
        return 0;
    const char *pat = kind == 0 ? "answer_serve" : kind == 2 ? "answer_undecided" : "answer_keep";
    if ((rc = join_and(c, names, n, &list)) < 0)
        return rc;
    if (kind == 1 && a->slices[first].cliff >= 0) {
        brief_cliff_scope(a, &a->cliffs[a->slices[first].cliff], &sc);
        pat = "answer_keep_cliff";
    } else {
        brief_scope_set(&sc, "n", brief_i64(a->slices[first].cells[ci].n));
    }
    brief_scope_set(&sc, "config", g_strdup(a->configs[ci].spec));
    brief_scope_set(&sc, "slices", list);
    rc = brief_pattern(c, pat, &sc, &clause);
    brief_scope_clear(&sc);
    if (rc < 0)
        return rc;
    if (*clause) {
        if (g->len)
            g_string_append(g, "; ");
        g_string_append(g, clause);
    }
    g_free(clause);
    return rc;
}

/* One config serves everything and holds (answer_all), or nothing but the baseline does
 * (answer_none): the short form replaces the clauses, when the template has it. */
static int answer_short(struct brief_ctx *c, GString *g)
{
    const struct qb_analysis *a = c->a;
    int all_one = a->n_slices > 0, none = a->n_slices > 0, rc = 0;

    for (int64_t si = 0; si < a->n_slices; si++)
        if (a->slices[si].rec != a->slices[0].rec || a->slices[si].verdict != QB_VERDICT_HOLDS)
            all_one = 0;
    for (int64_t si = 0; si < a->n_slices; si++)
        if (a->slices[si].rec != a->baseline || a->slices[si].cliff >= 0 ||
            a->slices[si].verdict == QB_VERDICT_FAILS)
            none = 0;
    const char *pat = all_one ? "answer_all" : none ? "answer_none" : NULL;
    if (pat && brief_find_define(c->t, pat)) {
        struct scope sc = {0};
        char *s = NULL;
        brief_scope_set(&sc, "config",
                        g_strdup(a->configs[all_one ? a->slices[0].rec : a->baseline].spec));
        rc = brief_pattern(c, pat, &sc, &s);
        brief_scope_clear(&sc);
        if (rc < 0)
            return rc;
        g_string_assign(g, s);
        g_free(s);
    }
    return rc;
}

/* A sentence: capital first letter, one full stop. */
static void as_sentence(GString *g)
{
    if (!g->len)
        return;
    gunichar u = g_utf8_get_char(g->str);
    if (g_unichar_islower(u)) {
        char buf[8];
        int n0 = g_unichar_to_utf8(u, NULL), n1 = g_unichar_to_utf8(g_unichar_toupper(u), buf);
        g_string_erase(g, 0, n0);
        g_string_insert_len(g, 0, buf, n1);
    }
    if (g->str[g->len - 1] != '.')
        g_string_append_c(g, '.');
}

/* The one-sentence answer, from the answer_* patterns (see docs/templates.md): clauses,
 * cheapest config first (the ladder's bottom), per config the slices it serves that hold, then
 * those kept there by a cliff, then those too small to tell; or the single-config or short
 * form; then the slices the baseline itself fails. */
int brief_make_answer(struct brief_ctx *c, char **out)
{
    const struct qb_analysis *a = c->a;
    GString *g = g_string_new(NULL);
    char **names = g_new0(char *, (gsize)a->n_slices + 1);
    int rc = 0, single = 0;

    *out = NULL;
    for (int64_t ci = a->n_configs - 1; ci >= 0; ci--)
        for (int kind = 0; kind < 3; kind++)
            if ((rc = answer_clause(c, g, names, ci, kind)) < 0)
                goto out;
    /* routing would not save memory: one config for all traffic (the baseline too, when a
     * slice needs it: the clauses above would route the rest to configs the deployment
     * figures do not count) */
    if (brief_chosen_plan(a) == &a->single && brief_find_define(c->t, "answer_single")) {
        if ((single = answer_single(c, g)) < 0) {
            rc = single;
            goto out;
        }
    }
    if (!single && (rc = answer_short(c, g)) < 0)
        goto out;
    if ((rc = answer_fails(c, g)) < 0)
        goto out;
    as_sentence(g);
out:
    g_free(names);
    *out = g_string_free(g, rc < 0);
    return rc;
}

int brief_make_caveats(struct brief_ctx *c)
{
    const struct qb_analysis *a = c->a;
    GPtrArray *v = g_ptr_array_new();
    int rc = 0;
    char *s;

#define ADD(name, sc)                                                                              \
    do {                                                                                           \
        if ((rc = brief_pattern(c, name, sc, &s)) < 0)                                             \
            goto out;                                                                              \
        if (*s)                                                                                    \
            g_ptr_array_add(v, s);                                                                 \
        else                                                                                       \
            g_free(s);                                                                             \
    } while (0)

    for (int64_t si = 0; si < a->n_slices; si++) {
        const struct qb_an_slice *sl = &a->slices[si];
        const struct qb_an_cell *cell = &sl->cells[sl->rec];
        struct scope sc = {0};
        brief_slice_scope(c, si, &sc);
        /* the cell that decides: the recommendation, or the cheapest config when that is
         * the baseline (whose own mde says nothing) */
        const struct qb_an_cell *dec = cell;
        if (sl->rec == a->baseline && a->n_configs > 1)
            dec = &sl->cells[a->n_configs - 1 == a->baseline ? a->n_configs - 2 : a->n_configs - 1];
        brief_scope_set(&sc, "mde", brief_pts(dec->mde));
        if (cell->n < QB_AN_MIN_ITEMS)
            ADD("caveat_few_items", &sc);
        else if (dec->underpowered)
            ADD(sl->is_perplexity ? "caveat_underpowered_ppl" : "caveat_underpowered", &sc);
        brief_scope_clear(&sc);
    }
    if ((rc = brief_unstable_caveats(c, v)) < 0)
        goto out;
    if (a->n_missing > 0) {
        struct scope sc = {0};
        brief_scope_set(&sc, "n", brief_i64(a->n_missing));
        ADD("caveat_missing", &sc);
        brief_scope_clear(&sc);
    }
    for (int64_t si = 0; si < a->n_slices; si++)
        if (a->slices[si].is_perplexity) {
            ADD("caveat_perplexity", NULL);
            break;
        }
    if (!brief_has_latency(a))
        ADD("caveat_no_latency", NULL);
    if (!brief_has_memory(a))
        ADD("caveat_no_memory", NULL);
    if (!(a->calib_file || a->calib_sha256)) {
        ADD("caveat_no_calibration", NULL);
    } else if (a->calib_overlap_items < 0) {
        ADD("caveat_calibration", NULL);
    } else {
        struct scope sc = {0};
        brief_scope_set(&sc, "n", brief_i64(a->calib_overlap_items));
        brief_scope_set(&sc, "ngram", brief_i64(a->calib_overlap_ngram));
        ADD(a->calib_overlap_items > 0 ? "caveat_calibration_overlap" : "caveat_calibration_clean",
            &sc);
        brief_scope_clear(&sc);
    }
#undef ADD
out:
    c->n_caveats = (int64_t)v->len;
    g_ptr_array_add(v, NULL);
    c->caveats = (char **)g_ptr_array_free(v, FALSE);
    return rc;
}
