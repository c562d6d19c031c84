/* brief_sens: the sentences of `@list sensitivity` -- the units of the model's sensitivity scan
 * (analysis/analyze_sens.h) that carry most of the damage, how the damages add, and the mixed
 * candidates -- from the template's sens_* patterns; a missing pattern adds nothing. */
#include "analysis/analyze.h"
#include "analysis/analyze_sens.h"
#include "output/brief_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "layer 3's down projection", "layer 3", "the output head", "the embeddings" */
static char *unit_words(const struct qb_an_sens_unit *u)
{
    if (!strcmp(u->tensor, "output"))
        return g_strdup("the output head");
    if (!strcmp(u->tensor, "embed"))
        return g_strdup("the embedding table");
    if (!strcmp(u->tensor, "layer"))
        return g_strdup_printf("layer %lld", (long long)u->layer);
    return g_strdup_printf("layer %lld's %s projection", (long long)u->layer, u->tensor);
}

static int add(struct brief_ctx *c, GPtrArray *v, const char *name, struct scope *sc)
{
    char *s = NULL;
    int rc = brief_pattern(c, name, sc, &s);
    brief_scope_clear(sc);
    if (rc < 0)
        return rc;
    if (*s >= 'a' && *s <= 'z') /* a sentence that starts with a unit's name */
        *s = (char)(*s - 'a' + 'A');
    if (*s)
        g_ptr_array_add(v, s);
    else
        g_free(s);
    return 0;
}

int brief_sens_list(struct brief_ctx *c, GPtrArray *v)
{
    const struct qb_an_sens *s = c->a->sens;
    const char *source = s && s->slice ? s->slice : "the calibration text";
    struct scope sc = {0};
    double total = 0, cum = 0;
    int rc;

    if (!s)
        return 0;
    for (int64_t i = 0; i < s->n_units; i++)
        total += s->units[i].kl > 0 ? s->units[i].kl : 0;
    /* the units that matter: the largest, until half the damage is named (at most three) */
    for (int64_t i = 0; i < s->n_units && i < 3 && total > 0 && cum < 0.5 * total; i++) {
        const struct qb_an_sens_unit *u = &s->units[i];
        int acc = !isnan(u->accuracy) && !isnan(s->base_accuracy);
        cum += u->kl;
        brief_scope_set(&sc, "unit", unit_words(u));
        brief_scope_set(&sc, "share", brief_fmt("%.0f%%", 100 * u->kl / total));
        brief_scope_set(&sc, "kl", brief_fmt("%.4f", u->kl));
        brief_scope_set(&sc, "config", g_strdup(s->config));
        brief_scope_set(&sc, "source", g_strdup(source));
        if (acc)
            brief_scope_set(&sc, "acc_loss", brief_fmt("%.1f", s->base_accuracy - u->accuracy));
        if ((rc = add(c, v, acc ? "sens_unit_acc" : "sens_unit", &sc)) < 0)
            return rc;
    }
    if (s->topk > 1 && !isnan(s->topk_measured_kl)) {
        brief_scope_set(&sc, "n", brief_i64(s->topk));
        brief_scope_set(&sc, "kl", brief_fmt("%.4f", s->topk_measured_kl));
        brief_scope_set(&sc, "kl_sum", brief_fmt("%.4f", s->topk_summed_kl));
        brief_scope_set(&sc, "config", g_strdup(s->config));
        if ((rc = add(c, v, "sens_additivity", &sc)) < 0)
            return rc;
    }
    if (!isnan(s->config_kl)) {
        brief_scope_set(&sc, "kl", brief_fmt("%.4f", s->config_kl));
        brief_scope_set(&sc, "kl_sum", brief_fmt("%.4f", total));
        brief_scope_set(&sc, "config", g_strdup(s->config));
        if ((rc = add(c, v, "sens_whole", &sc)) < 0)
            return rc;
    }
    if (s->n_candidates > 0) {
        char *list = g_strjoinv(", ", s->candidates);
        int64_t measured = 0;
        for (int64_t i = 0; i < s->n_candidates; i++)
            for (int64_t j = 0; j < c->a->n_configs; j++)
                measured +=
                    c->a->configs[j].spec && !strcmp(c->a->configs[j].spec, s->candidates[i]);
        brief_scope_set(&sc, "candidates", list);
        brief_scope_set(&sc, "keep", g_strdup(s->keep));
        brief_scope_set(&sc, "n", brief_i64(s->n_candidates));
        brief_scope_set(&sc, "config", g_strdup(s->config));
        if ((rc =
                 add(c, v,
                     measured == s->n_candidates ? "sens_candidates" : "sens_candidates_unmeasured",
                     &sc)) < 0)
            return rc;
    }
    return 0;
}
