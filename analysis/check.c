/* check: the gate of `qbrief check` over an analysis (analysis/check.h). */
#include "analysis/check.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

const char *qb_check_reason_name(enum qb_check_reason r)
{
    switch (r) {
    case QB_CHECK_HOLDS: return "holds";
    case QB_CHECK_NOT_JUDGED: return "not judged";
    case QB_CHECK_FEW_ITEMS: return "too few items";
    case QB_CHECK_LOSS: return "loss";
    case QB_CHECK_GAIN: return "gain";
    case QB_CHECK_FLIPS: return "flips";
    }
    return "?";
}

/* the deployment the brief recommends (output/vars.c brief_chosen_plan says the same) */
static const struct qb_an_plan *chosen(const struct qb_analysis *a)
{
    if (a->routed.n_distinct > 1 && !(a->routed.mem_cost < a->single.mem_cost))
        return &a->single;
    return &a->routed;
}

static enum qb_check_reason judge(const struct qb_analysis *a, const struct qb_an_slice *s,
                                  int64_t ci)
{
    const struct qb_an_cell *e = &s->cells[ci];
    if (s->verdict == QB_VERDICT_FAILS)
        return QB_CHECK_NOT_JUDGED;
    if (ci == a->baseline)
        return QB_CHECK_HOLDS;
    if (e->n < QB_AN_MIN_ITEMS)
        return QB_CHECK_FEW_ITEMS;
    if (!e->within_acc)
        return QB_CHECK_LOSS;
    if (e->flips_over)
        return QB_CHECK_FLIPS;
    if (e->gains_beyond)
        return QB_CHECK_GAIN;
    return QB_CHECK_HOLDS;
}

int qb_check(const struct qb_analysis *a, const char *config, struct qb_check **out)
{
    int64_t ci = -1;
    struct qb_check *k;

    *out = NULL;
    if (config) {
        for (int64_t i = 0; i < a->n_configs; i++)
            if (!strcmp(a->configs[i].spec, config))
                ci = i;
        if (ci < 0) {
            GString *g = g_string_new(NULL);
            for (int64_t i = 0; i < a->n_configs; i++)
                g_string_append_printf(g, "%s%s", i ? ", " : "", a->configs[i].spec);
            int rc = qb_err(QB_EINVAL, "run '%s' has no config '%s'; it has %s",
                            a->run_name ? a->run_name : "?", config, g->str);
            g_string_free(g, TRUE);
            return rc;
        }
    }
    if (!(k = calloc(1, sizeof *k)) ||
        !(k->slices = calloc((size_t)a->n_slices + 1, sizeof *k->slices))) {
        free(k);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    const struct qb_an_plan *pl = chosen(a);
    for (int64_t s = 0; s < a->n_slices; s++) {
        struct qb_check_slice *r = &k->slices[k->n++];
        r->slice = s;
        r->config = ci >= 0                            ? ci
                    : pl->config && pl->config[s] >= 0 ? pl->config[s]
                                                       : a->slices[s].rec;
        r->reason = judge(a, &a->slices[s], r->config);
        r->holds = r->reason == QB_CHECK_HOLDS || r->reason == QB_CHECK_NOT_JUDGED;
        k->n_failing += !r->holds;
    }
    *out = k;
    return 0;
}

void qb_check_free(struct qb_check *k)
{
    if (!k)
        return;
    free(k->slices);
    free(k);
}
