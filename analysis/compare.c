/* compare: one run against another (analysis/compare.h). */
#include "analysis/compare.h"

#include "analysis/analyze.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t find_slice(const struct qb_analysis *a, const char *name)
{
    for (int64_t s = 0; s < a->n_slices; s++)
        if (!strcmp(a->slices[s].name, name))
            return s;
    return -1;
}

static int64_t find_config(const struct qb_analysis *a, const char *spec)
{
    for (int64_t c = 0; c < a->n_configs; c++)
        if (!strcmp(a->configs[c].spec, spec))
            return c;
    return -1;
}

/* "key\x1fhash" -> item index, for the items of slice s of a */
static GHashTable *item_index(const struct qb_analysis *a, int64_t s)
{
    GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (int64_t i = 0; i < a->n_items; i++)
        if (a->items[i].slice == s)
            g_hash_table_insert(
                h,
                g_strdup_printf("%s\x1f%s", a->items[i].key,
                                a->items[i].prompt_sha256 ? a->items[i].prompt_sha256 : ""),
                GINT_TO_POINTER((gint)(i + 1)));
    return h;
}

/* 1 when both slices hold the same (key, hash) items */
static int same_items(GHashTable *hn, GHashTable *hb)
{
    GHashTableIter it;
    gpointer k;
    if (g_hash_table_size(hn) != g_hash_table_size(hb))
        return 0;
    g_hash_table_iter_init(&it, hn);
    while (g_hash_table_iter_next(&it, &k, NULL))
        if (!g_hash_table_contains(hb, k))
            return 0;
    return 1;
}

static int paired_cell(const struct qb_analysis *now, const struct qb_analysis *before,
                       GHashTable *hn, GHashTable *hb, struct qb_cmp_cell *e)
{
    GHashTableIter it;
    gpointer k, v;
    int64_t n11 = 0, n10 = 0, n01 = 0, n00 = 0;
    const signed char *cn = &now->correct[e->config * now->n_items],
                      *cb = &before->correct[e->config_before * before->n_items];
    g_hash_table_iter_init(&it, hn);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        int64_t i = GPOINTER_TO_INT(v) - 1, j = GPOINTER_TO_INT(g_hash_table_lookup(hb, k)) - 1;
        if (j < 0 || cn[i] < 0 || cb[j] < 0)
            continue;
        if (cb[j] && cn[i])
            n11++;
        else if (cb[j])
            n10++;
        else if (cn[i])
            n01++;
        else
            n00++;
    }
    int64_t n = n11 + n10 + n01 + n00;
    e->paired = 1;
    e->n_before = e->n_now = n;
    e->lost = n10;
    e->gained = n01;
    e->acc_before = n ? (double)(n11 + n10) / (double)n : NAN;
    e->acc_now = n ? (double)(n11 + n01) / (double)n : NAN;
    e->delta = n ? (double)(n01 - n10) / (double)n : NAN;
    e->mcnemar_p = qb_mcnemar_exact(n10, n01);
    if (!n) {
        e->delta_ci = (struct qb_interval){NAN, NAN};
        return 0;
    }
    return qb_bootstrap_paired_binary(n11, n10, n01, n00, now->resamples, now->seed,
                                      now->confidence, &e->delta_ci);
}

/* accuracy of config c over the scored items of slice s: k of n */
static void slice_acc(const struct qb_analysis *a, int64_t s, int64_t c, int64_t *k, int64_t *n)
{
    *k = *n = 0;
    for (int64_t i = 0; i < a->n_items; i++) {
        signed char v = a->correct[c * a->n_items + i];
        if (a->items[i].slice == s && v >= 0) {
            (*n)++;
            *k += v;
        }
    }
}

/* Newcombe's hybrid score interval of p1 - p2 from the two Wilson intervals */
static int unpaired_cell(const struct qb_analysis *now, const struct qb_analysis *before,
                         struct qb_cmp_cell *e)
{
    int64_t kn, nn, kb, nb;
    struct qb_interval wn, wb;
    int rc;
    slice_acc(now, e->slice, e->config, &kn, &nn);
    slice_acc(before, e->slice_before, e->config_before, &kb, &nb);
    e->paired = 0;
    e->n_now = nn;
    e->n_before = nb;
    e->mcnemar_p = NAN;
    e->acc_now = nn ? (double)kn / (double)nn : NAN;
    e->acc_before = nb ? (double)kb / (double)nb : NAN;
    e->delta = e->acc_now - e->acc_before;
    if (!nn || !nb) {
        e->delta_ci = (struct qb_interval){NAN, NAN};
        return 0;
    }
    if ((rc = qb_wilson(kn, nn, now->confidence, &wn)) < 0 ||
        (rc = qb_wilson(kb, nb, now->confidence, &wb)) < 0)
        return rc;
    double p1 = e->acc_now, p2 = e->acc_before;
    e->delta_ci.lo = e->delta - sqrt((p1 - wn.lo) * (p1 - wn.lo) + (wb.hi - p2) * (wb.hi - p2));
    e->delta_ci.hi = e->delta + sqrt((wn.hi - p1) * (wn.hi - p1) + (p2 - wb.lo) * (p2 - wb.lo));
    return 0;
}

static void warn(GPtrArray *w, char *msg)
{
    g_ptr_array_add(w, msg);
}

/* the cells of slice s of now (matched to sb of before), one per config both runs have */
static int slice_cells(struct qb_compare *k, GArray *cells, GPtrArray *w, int64_t s, int64_t sb)
{
    const struct qb_analysis *now = k->now, *before = k->before;
    GHashTable *hn = item_index(now, s), *hb = item_index(before, sb);
    int paired = same_items(hn, hb), rc = 0;
    if (!paired) {
        k->n_unpaired++;
        warn(w, g_strdup_printf("slice '%s': the runs scored different items (%u and %u; keys or "
                                "prompts differ), so it is compared unpaired",
                                now->slices[s].name, g_hash_table_size(hn), g_hash_table_size(hb)));
    }
    for (int64_t c = 0; rc >= 0 && c < now->n_configs; c++) {
        int64_t cb = find_config(before, now->configs[c].spec);
        if (cb < 0)
            continue;
        struct qb_cmp_cell e = {.slice = s, .slice_before = sb, .config = c, .config_before = cb};
        rc = paired ? paired_cell(now, before, hn, hb, &e) : unpaired_cell(now, before, &e);
        g_array_append_val(cells, e);
    }
    g_hash_table_destroy(hn);
    g_hash_table_destroy(hb);
    return rc;
}

int qb_compare(const struct qb_analysis *now, const struct qb_analysis *before,
               struct qb_compare **out)
{
    struct qb_compare *k = calloc(1, sizeof *k);
    GArray *cells = g_array_new(FALSE, TRUE, sizeof(struct qb_cmp_cell));
    GPtrArray *w = g_ptr_array_new();
    int rc = 0;

    *out = NULL;
    if (!k || !(k->slice_before = calloc((size_t)now->n_slices + 1, sizeof *k->slice_before))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    k->now = now;
    k->before = before;
    for (int64_t s = 0; rc >= 0 && s < now->n_slices; s++) {
        int64_t sb = find_slice(before, now->slices[s].name);
        k->slice_before[s] = sb;
        if (sb < 0) {
            warn(w, g_strdup_printf("slice '%s' is new: the other run has no such slice",
                                    now->slices[s].name));
            continue;
        }
        if (strcmp(now->configs[now->slices[s].rec].spec,
                   before->configs[before->slices[sb].rec].spec))
            k->n_changed++;
        rc = slice_cells(k, cells, w, s, sb);
    }
    for (int64_t s = 0; s < before->n_slices; s++)
        if (find_slice(now, before->slices[s].name) < 0)
            warn(w, g_strdup_printf("slice '%s' of the other run is not in this one",
                                    before->slices[s].name));
out:
    if (k) {
        k->n_cells = (int64_t)cells->len;
        k->cells = (struct qb_cmp_cell *)(void *)g_array_free(cells, FALSE);
        k->n_warnings = (int64_t)w->len;
        g_ptr_array_add(w, NULL);
        k->warnings = (char **)g_ptr_array_free(w, FALSE);
    } else {
        g_array_free(cells, TRUE);
        g_ptr_array_free(w, TRUE);
    }
    if (rc < 0) {
        qb_compare_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void qb_compare_free(struct qb_compare *k)
{
    if (!k)
        return;
    g_free(k->cells);
    free(k->slice_before);
    g_strfreev(k->warnings);
    free(k);
}
