/* shard: the split of a run's work into N shards that run apart (Slurm job array tasks,
 * Kubernetes Indexed Job pods) into their own stores, merged afterwards by `qbrief merge`
 * (collector/store/store_merge.h). docs/distributed.md is the user's side.
 *
 *     struct qb_shard sh;
 *     if ((rc = qb_shard_parse("auto", &sh)) < 0) ...     // index and count from the environment
 *     unsigned char *mine = NULL;
 *     int64_t n_mine;
 *     rc = qb_shard_items(suite, n_configs, 0, 1, &sh, &mine, &n_mine);
 *
 * The unit of work is (model, config, item). A shard owns whole (model, item) pairs with all
 * their configs, so the baseline's top-k that a config's KL needs is computed in the shard
 * that needs it and no unit is evaluated twice. Pairs are dealt out by estimated cost,
 * tokens x configs (tokens estimated from bytes: the formatted prompt, plus max_tokens for a
 * generate item, plus every choice of a choice item, at 4 bytes a token), largest first, each
 * to the shard with the least cost so far (ties: the lower shard, the earlier pair): every
 * shard computes the same split from the suite alone, with no coordination. */
#ifndef QB_SHARD_H
#define QB_SHARD_H

#include "collector/eval/suite.h"

#include <stdint.h>

/* At most this many shards (a job array larger than this is a mistake). */
#define QB_SHARD_MAX 100000

struct qb_shard {
    int64_t index; /* 0-based; -1: the probe job (latency and memory only, no items) */
    int64_t count; /* >= 1; 0 with index -1 */
};

/* "I/N" (0 <= I < N), "auto" (index and count from the environment: SLURM_ARRAY_TASK_ID and
 * SLURM_ARRAY_TASK_COUNT, less SLURM_ARRAY_TASK_MIN when the array does not start at 0; else
 * JOB_COMPLETION_INDEX and QBRIEF_SHARDS) or "auto/N" (the index from the environment, N
 * given). QB_EINVAL naming the text or the variable that is missing or wrong. */
int qb_shard_parse(const char *text, struct qb_shard *out);

/* The estimated cost of one item in one config (see above). */
int64_t qb_shard_item_cost(const struct qb_suite *su, const struct qb_suite_item *it);

/* owner[m * su->n_items + i] = the shard that owns item i of model m, for n_models models and
 * count shards. owner has n_models * su->n_items entries. */
int qb_shard_split(const struct qb_suite *su, int64_t n_models, int64_t count, int64_t *owner);

/* *mine (malloc'd, su->n_items bytes; free) marks the items shard sh owns for model
 * model_index of n_models; *n_mine counts them. The probe job owns none. */
int qb_shard_items(const struct qb_suite *su, int64_t model_index, int64_t n_models,
                   const struct qb_shard *sh, unsigned char **mine, int64_t *n_mine);

#endif
