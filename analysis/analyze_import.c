/* analyze_import: what the run was given rather than measured (collector/store/store_import.h).
 * An imported config keeps its place in every table and chart, but its name carries the label
 * "[imported] NAME (KIND sha256 PREFIX, ...)" with the files it came from (the mark first,
 * where a chart shortens a long name), so that wherever the brief
 * shows it a reader can tell it from what qbrief measured. An imported --baseline config is
 * the reference of the imported items, which the run's own baseline has no results on
 * (analyze_cells.c). */
#include "analysis/analyze_int.h"

#include "collector/store/store_import.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <string.h>

struct imp {
    struct an *x;
    GHashTable *labels; /* ladder index + 1 -> GString */
};

static int on_import(void *ctx, const struct qb_store_import *im)
{
    struct imp *p = ctx;
    struct an *x = p->x;
    int64_t c = -1;
    GString *g;
    for (int64_t i = 0; i < x->n_raw; i++)
        if (x->raw[i].id == im->config_id)
            c = x->ladder_of[i];
    if (c < 0)
        return 0;
    if (im->baseline)
        x->import_base1 = c + 1;
    if (!(g = g_hash_table_lookup(p->labels, GSIZE_TO_POINTER((gsize)c + 1)))) {
        g = g_string_new(NULL);
        g_hash_table_insert(p->labels, GSIZE_TO_POINTER((gsize)c + 1), g);
    }
    g_string_append_printf(g, "%s%s sha256 %.8s", g->len ? ", " : "", im->kind,
                           im->sha256 ? im->sha256 : "?");
    if (im->device && *im->device)
        an_warn(x,
                "config '%s': its latency was imported from %s (sha256 %.12s...), timed by "
                "another tool on %s, not by qbrief on this machine",
                x->a->configs[c].spec, im->source ? im->source : "?", im->sha256 ? im->sha256 : "?",
                im->device);
    return 0;
}

static void free_label(gpointer p)
{
    g_string_free(p, TRUE);
}

int an_load_imports(struct an *x)
{
    struct imp p = {x, g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, free_label)};
    GHashTableIter it;
    gpointer k, v;
    int rc = qb_store_list_imports(x->s, x->run_id, on_import, &p);

    g_hash_table_iter_init(&it, p.labels);
    while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
        struct qb_an_config *c = &x->a->configs[GPOINTER_TO_SIZE(k) - 1];
        char *label = g_strdup_printf("[imported] %s (%s)", c->spec, ((GString *)v)->str);
        g_free(c->spec);
        c->spec = label;
    }
    g_hash_table_destroy(p.labels);
    return rc;
}
