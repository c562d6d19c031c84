/* plan: the plan file of `qbrief run PLAN.yaml` -- which models to quantize into which
 * configs, which suite to score them on, how to time them and how to decide. The format is
 * documented in docs/plan-format.md; examples/plan-tiny.yaml is a complete plan.
 *
 *     struct qb_plan *p = NULL;
 *     if ((rc = qb_plan_load("plan.yaml", &p)) < 0) {
 *         fprintf(stderr, "qbrief: %s\n", qb_errmsg());  // 'plan.yaml':7:3: ...
 *         return rc;
 *     }
 *     for (int64_t i = 0; i < p->n_configs; i++) puts(p->configs[i].name);
 *     qb_plan_free(p);
 *
 * Every value in struct qb_plan has been validated and defaulted; relative paths are already
 * resolved against the plan file's directory. The plan owns every string in it. */
#ifndef QB_PLAN_H
#define QB_PLAN_H

#include "collector/model/qspec.h"
#include "collector/store/settings.h"

#include <stdint.h>

/* Plan files larger than this are refused: a plan is a page of YAML, not a data file. */
#define QB_PLAN_MAX_BYTES (1u << 20)
/* latency.prompt_lens: at most as many lengths as a run times (qb_run refuses more). */
#define QB_PLAN_MAX_PROMPT_LENS 16

struct qb_plan_config {
    char name[QB_QSPEC_MAX]; /* canonical form (qb_qspec_format) */
    struct qb_qspec spec;
};

struct qb_plan {
    char *path;    /* the plan file, as given to qb_plan_load */
    char **models; /* resolved paths, n_models >= 1 */
    int64_t n_models;
    char *tokenizer;       /* resolved path; NULL when absent (found beside the model) */
    char *suite;           /* resolved path, required */
    char *prompt_template; /* contains "{prompt}"; "{prompt}" when absent */

    /* Canonical, distinct; the baseline is among them (prepended when the plan's list
     * lacked it). */
    struct qb_plan_config *configs;
    int64_t n_configs;
    int64_t baseline; /* index into configs; default spec f32 */

    /* What the run and the brief read, stored with the run (collector/store/settings.h):
     *   title (required), question (NULL when absent), template_name (brief template; NULL
     *   when absent), plan (= path), threads (0 when absent: the engine's default);
     *   calibration.file (resolved; NULL when the plan has none), .sequences (default 128),
     *   .seq_len (default 512);
     *   latency.prompt_lens (default {128, 512}; at most QB_PLAN_MAX_PROMPT_LENS), .gen_len
     *   (default 128; at least 2), .batch (default 4),
     *   .repetitions (default 5), .warmup (default 1);
     *   tolerances: points of accuracy loss tolerated per slice, >= 0, in plan order, and
     *   `default` for slices not listed (has_default);
     *   flips: percent of a slice's answers a config may change, 0..100, likewise;
     *   traffic: shares per slice in plan order, normalised to sum to 1 (n == 0 when absent);
     *   policy.confidence in (0, 1) (default 0.95), policy.bound (default QB_BOUND_INTERVAL).
     * The run fills the rest (configs as run, topk, calibration.sha256 ...). */
    struct qb_settings settings;

    char *name;   /* run name; NULL when absent */
    char *db;     /* resolved path; NULL when absent */
    char *output; /* resolved path; NULL when absent */
    char *device; /* "cpu", "vulkan" or "vulkan:N" (syntax checked); NULL when absent: cpu */
    /* shards.probe: the shard that measures latency and memory in a sharded run (default 0),
     * or -1 for `probe: job` (a separate `qbrief run PLAN --probe`; docs/distributed.md) */
    int64_t probe_shard;
    /* sensitivity: {config, slice, granularity, keep, budgets} (docs/sensitivity.md): a scan
     * of config before the run, on the suite's slice (or, without one, the calibration
     * text), whose mixed candidates join the configs. config[0] == 0 when absent. */
    struct {
        char config[QB_QSPEC_MAX], keep[QB_QSPEC_MAX]; /* canonical; keep "" = w8 */
        char *slice;                                   /* NULL: the calibration text */
        int by_layer;
        int n_budgets; /* 0: the scan's defaults */
        double budgets[8];
    } sens;
};

/* Reads and validates the plan at path. On success *out owns a new plan (free with
 * qb_plan_free). On failure *out is NULL and the message reads 'PATH':LINE:COL: what is wrong
 * (QB_EFORMAT), or names the path when it cannot be read (QB_EIO) or is too large. */
int qb_plan_load(const char *path, struct qb_plan **out);

/* Frees p and everything in it; no-op on NULL. */
void qb_plan_free(struct qb_plan *p);

/* The tolerance for a slice: its own entry, else `default`, else -1 (none given). */
double qb_plan_tolerance(const struct qb_plan *p, const char *slice);

#endif
