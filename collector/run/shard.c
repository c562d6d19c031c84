/* shard: the deterministic split of a run's (model, item) pairs into shards (see shard.h). */
#include "collector/run/shard.h"

#include "kernels/base/err.h"
#include "kernels/base/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A count or index: plain decimal digits, within [lo, hi]. */
static int parse_num(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The index from the environment, and the count when the environment gives one (0 if not). */
static int from_env(int64_t *index, int64_t *count)
{
    const char *id = getenv("SLURM_ARRAY_TASK_ID"), *n = getenv("SLURM_ARRAY_TASK_COUNT");
    const char *mn = getenv("SLURM_ARRAY_TASK_MIN");
    int64_t min = 0;
    *count = 0;
    if (id) {
        if (parse_num(id, 0, INT64_MAX / 2, index) < 0)
            return qb_err(QB_EINVAL, "--shard auto: SLURM_ARRAY_TASK_ID is '%s', not an index", id);
        if (mn && parse_num(mn, 0, *index, &min) < 0)
            return qb_err(QB_EINVAL, "--shard auto: SLURM_ARRAY_TASK_MIN is '%s', not an index",
                          mn);
        *index -= min;
        if (n && parse_num(n, 1, QB_SHARD_MAX, count) < 0)
            return qb_err(QB_EINVAL,
                          "--shard auto: SLURM_ARRAY_TASK_COUNT is '%s', not a count of at most "
                          "%d",
                          n, QB_SHARD_MAX);
        return 0;
    }
    id = getenv("JOB_COMPLETION_INDEX");
    if (!id)
        return qb_err(QB_EINVAL,
                      "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor "
                      "JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set; give --shard I/N");
    if (parse_num(id, 0, INT64_MAX / 2, index) < 0)
        return qb_err(QB_EINVAL, "--shard auto: JOB_COMPLETION_INDEX is '%s', not an index", id);
    n = getenv("QBRIEF_SHARDS");
    if (n && parse_num(n, 1, QB_SHARD_MAX, count) < 0)
        return qb_err(QB_EINVAL, "--shard auto: QBRIEF_SHARDS is '%s', not a count of at most %d",
                      n, QB_SHARD_MAX);
    return 0;
}

int qb_shard_parse(const char *text, struct qb_shard *out)
{
    const char *slash = text ? strchr(text, '/') : NULL;
    char head[32];
    int64_t env_count = 0;
    int rc;

    if (!text || !*text)
        return qb_err(QB_EINVAL, "--shard wants I/N, auto or auto/N, not an empty value");
    if (slash && (size_t)(slash - text) >= sizeof head)
        return qb_err(QB_EINVAL, "--shard '%s': wants I/N, auto or auto/N", text);
    if (slash) {
        memcpy(head, text, (size_t)(slash - text));
        head[slash - text] = 0;
    } else {
        snprintf(head, sizeof head, "%s", text);
    }
    if (slash && parse_num(slash + 1, 1, QB_SHARD_MAX, &out->count) < 0)
        return qb_err(QB_EINVAL, "--shard '%s': the count must be a number from 1 to %d", text,
                      QB_SHARD_MAX);
    if (!strcmp(head, "auto")) {
        if ((rc = from_env(&out->index, &env_count)) < 0)
            return rc;
        if (!slash && !env_count)
            return qb_err(QB_EINVAL,
                          "--shard auto: the environment gives an index but no count "
                          "(SLURM_ARRAY_TASK_COUNT or QBRIEF_SHARDS); give --shard auto/N");
        if (slash && env_count && env_count != out->count)
            return qb_err(QB_EINVAL,
                          "--shard '%s': the environment says %lld shards, the flag %lld", text,
                          (long long)env_count, (long long)out->count);
        if (!slash)
            out->count = env_count;
    } else if (!slash) {
        return qb_err(QB_EINVAL, "--shard '%s': wants I/N (e.g. 0/4), auto or auto/N", text);
    } else if (parse_num(head, 0, QB_SHARD_MAX, &out->index) < 0) {
        return qb_err(QB_EINVAL, "--shard '%s': the index must be a number from 0 to N-1", text);
    }
    if (out->index >= out->count)
        return qb_err(QB_EINVAL, "--shard: index %lld is out of range for %lld shards (0 to %lld)",
                      (long long)out->index, (long long)out->count, (long long)out->count - 1);
    return 0;
}

int64_t qb_shard_item_cost(const struct qb_suite *su, const struct qb_suite_item *it)
{
    int64_t bytes = (int64_t)strlen(it->prompt);
    if (su->prompt_template)
        bytes += (int64_t)strlen(su->prompt_template) - 8; /* less "{prompt}" */
    int64_t tokens = bytes / 4 + 1;
    if (it->kind == QB_KIND_GENERATE)
        tokens += it->max_tokens;
    for (int64_t c = 0; c < it->n_choices; c++)
        tokens += (int64_t)strlen(it->choices[c]) / 4 + 1;
    return tokens;
}

struct unit {
    int64_t cost, order; /* order: model * n_items + item */
};

static int unit_cmp(const void *a, const void *b)
{
    const struct unit *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost > y->cost ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

int qb_shard_split(const struct qb_suite *su, int64_t n_models, int64_t count, int64_t *owner)
{
    int64_t n = su->n_items * n_models;
    struct unit *u = malloc((size_t)(n ? n : 1) * sizeof *u);
    int64_t *load = calloc((size_t)count, sizeof *load);
    if (!u || !load) {
        free(u);
        free(load);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    for (int64_t m = 0; m < n_models; m++)
        for (int64_t i = 0; i < su->n_items; i++)
            u[m * su->n_items + i] =
                (struct unit){qb_shard_item_cost(su, &su->items[i]), m * su->n_items + i};
    qsort(u, (size_t)n, sizeof *u, unit_cmp);
    /* the least loaded shard, by a linear scan: n x count is small next to evaluating n */
    for (int64_t k = 0; k < n; k++) {
        int64_t best = 0;
        for (int64_t s = 1; s < count; s++)
            if (load[s] < load[best])
                best = s;
        load[best] += u[k].cost;
        owner[u[k].order] = best;
    }
    free(u);
    free(load);
    return 0;
}

int qb_shard_items(const struct qb_suite *su, int64_t model_index, int64_t n_models,
                   const struct qb_shard *sh, unsigned char **mine, int64_t *n_mine)
{
    int64_t *owner = NULL;
    int rc = 0;
    *mine = calloc((size_t)su->n_items + 1, 1);
    *n_mine = 0;
    if (!*mine)
        return qb_err(QB_ENOMEM, "out of memory");
    if (sh->index < 0) /* the probe job */
        return 0;
    if (n_models < 1 || model_index < 0 || model_index >= n_models)
        return qb_err(QB_EINVAL, "model %lld of %lld", (long long)model_index, (long long)n_models);
    if (!(owner = malloc((size_t)(su->n_items * n_models + 1) * sizeof *owner)))
        return qb_err(QB_ENOMEM, "out of memory");
    if ((rc = qb_shard_split(su, n_models, sh->count, owner)) == 0)
        for (int64_t i = 0; i < su->n_items; i++)
            if (owner[model_index * su->n_items + i] == sh->index) {
                (*mine)[i] = 1;
                ++*n_mine;
            }
    free(owner);
    return rc;
}
