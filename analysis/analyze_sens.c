/* analyze_sens: the sensitivity scan of a brief (see analyze_sens.h). */
#include "analysis/analyze_sens.h"

#include "collector/store/store_sens.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <jansson.h>
#include <stdlib.h>

static int on_scan(void *ctx, const struct qb_store_sens_scan *s)
{
    struct qb_an_sens *a = ctx;
    a->config = g_strdup(s->config), a->baseline = g_strdup(s->baseline);
    a->keep = g_strdup(s->keep), a->granularity = g_strdup(s->granularity);
    a->source = g_strdup(s->source), a->slice = g_strdup(s->slice);
    a->n_positions = s->n_positions, a->topk = s->topk;
    a->base_accuracy = s->base_accuracy, a->config_accuracy = s->config_accuracy;
    a->config_kl = s->config_kl, a->seconds = s->seconds;
    a->topk_summed_kl = s->topk_summed_kl, a->topk_measured_kl = s->topk_measured_kl;
    json_t *c = s->candidates_json ? json_loads(s->candidates_json, 0, NULL) : NULL;
    size_t n = json_array_size(c);
    a->candidates = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        if (json_string_value(json_array_get(c, i)))
            a->candidates[a->n_candidates++] = g_strdup(json_string_value(json_array_get(c, i)));
    json_decref(c);
    return 0;
}

static int on_unit(void *ctx, const struct qb_store_sens_unit *u)
{
    struct qb_an_sens *a = ctx;
    a->units = g_renew(struct qb_an_sens_unit, a->units, a->n_units + 1);
    a->units[a->n_units++] = (struct qb_an_sens_unit){
        g_strdup(u->unit), g_strdup(u->tensor), u->layer, u->mean_kl, u->accuracy, u->extra_bytes};
    if (u->layer + 1 > a->n_layers)
        a->n_layers = u->layer + 1;
    return 0;
}

int qb_an_sens_load(struct qb_store *store, const char *model_sha256, const char *run_name,
                    struct qb_an_sens **out)
{
    struct qb_an_sens *a = g_new0(struct qb_an_sens, 1);
    int rc;
    *out = NULL;
    if ((rc = qb_store_sens_latest(store, model_sha256, run_name, on_scan, on_unit, a)) < 0 ||
        !a->config || a->n_units == 0) {
        qb_an_sens_free(a);
        return rc < 0 ? rc : 0;
    }
    *out = a;
    return 0;
}

void qb_an_sens_free(struct qb_an_sens *s)
{
    if (!s)
        return;
    for (int64_t i = 0; i < s->n_units; i++)
        g_free(s->units[i].unit), g_free(s->units[i].tensor);
    g_free(s->units);
    g_strfreev(s->candidates);
    g_free(s->config), g_free(s->baseline), g_free(s->keep);
    g_free(s->granularity), g_free(s->source), g_free(s->slice);
    g_free(s);
}
