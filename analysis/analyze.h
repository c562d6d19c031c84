/* analyze: turns one run in the results store into every number the brief shows -- per
 * slice x config accuracy with intervals, paired deltas, flips, KL, perplexity ratios,
 * detectable effects, latency percentiles, memory, the precision ladder, cliffs, the
 * recommendation per slice, the deployment plan under the traffic mix, and Pareto frontiers.
 * Nothing here formats prose: sentences are built by output/ from templates/.
 *
 *     struct qb_store *s = NULL;
 *     struct qb_analysis *a = NULL;
 *     if ((rc = qb_store_open("qbrief.db", QB_STORE_READONLY, &s)) < 0 ||
 *         (rc = qb_analyze(s, "tiny", NULL, &a)) < 0)      // NULL name: the newest run
 *         goto fail;
 *     for (int64_t i = 0; i < a->n_slices; i++)
 *         printf("%s -> %s\n", a->slices[i].name, a->configs[a->slices[i].rec].spec);
 *     char *json = NULL;
 *     qb_analysis_json(a, &json);   // every computed number; caller frees
 *   fail:
 *     qb_analysis_free(a);
 *     qb_store_close(s);
 *
 * Inputs beyond the measurements come from the run's settings_json (written by qbrief run
 * from the plan or the flags), read through collector/store/settings.h, which documents the
 * keys: title, question, template, tolerances {default, slices}, traffic (shares summing to
 * 1), policy {confidence, bound}, calibration. Any key may be absent (older runs, CLI runs):
 * then tolerances default to QB_AN_DEFAULT_TOLERANCE points for every slice, traffic is
 * proportional to the items per slice, and the policy is 95% / interval. opts (may be NULL)
 * overrides them. Settings that cannot be used (a confidence outside (0, 1), a tolerance or
 * share that is not a number >= 0, a traffic slice the suite lacks) are warned about in
 * a->warnings and replaced by the defaults.
 *
 * Definitions (documented for readers in the brief's methodology section):
 *  - Units: accuracies and deltas are fractions in the struct (x100 = points when shown).
 *    Loss = -delta (baseline minus config), so a positive loss is worse.
 *  - Only items with a result under both the baseline and the config, and a non-NULL correct
 *    under both, enter a cell's accuracy statistics (n). Perplexity items have no `correct`;
 *    their cell uses the per-item NLL instead (ppl = exp(mean NLL weighted by n_tokens)).
 *  - A slice's "kind" is perplexity when all its items are perplexity items, else accuracy
 *    (perplexity items inside a mixed slice are left out of its accuracy).
 *  - For perplexity slices the "loss" is the relative perplexity increase, ppl_ratio - 1, as
 *    a fraction, and its interval comes from the paired bootstrap of per-item mean NLL
 *    (exp of the interval of the mean NLL difference, minus 1); the tolerance is then read as
 *    percent of perplexity (a tolerance of 2 means +2% perplexity).
 *  - The "overall" row (a->overall) pools every accuracy item of every slice; its tolerance
 *    is the default tolerance (or the smallest slice tolerance when there is no default).
 *  - Within tolerance, policy "interval": the pessimistic end of the delta interval at the
 *    policy's confidence, -delta_ci.lo <= tol; "point": -delta <= tol.
 *  - Underpowered: mde > tol (the slice cannot detect its own tolerance at alpha =
 *    1 - confidence, power 0.8).
 *  - Ladder: configs sorted by bits/weight, most bits first (ties: more weight bytes first,
 *    then spec; unknown bits last). The baseline is ladder position 0 only if it has the
 *    most bits; it usually does.
 *  - Cliff: for a slice, the first config down the ladder (excluding the baseline) that is a
 *    "significant loss": n >= QB_AN_MIN_ITEMS, loss > tol AND the interval excludes zero
 * (delta_ci.hi < 0), where the config just above it on the ladder is not one. The cliff lies
 * between those two. hides = the overall row at the cliff's config is within tolerance under the
 * policy.
 *  - Memory of a config: its memory row at the largest measured context. Cost of a config:
 *    weight bytes (memory first; peak RSS only when some config's weight bytes are unknown:
 *    RSS adds the process, KV cache and activations, alike for every config), then the
 *    p50 time per output token at the baseline's first latency setting (latency second),
 *    then fewer bits; an unknown cost sorts last.
 *  - Flips: lost = baseline right -> config wrong, gained = the reverse, each with a Wilson
 *    interval of its share of n. The flip limit of a slice (max_flips, percent) comes from
 *    the settings' flips (per slice, else their default, else QB_AN_DEFAULT_FLIPS).
 *  - Changes behaviour: a cell (not the baseline) on n >= QB_AN_MIN_ITEMS items that gains
 *    more than the tolerance with an interval excluding zero (delta > tol, delta_ci.lo > 0),
 *    or whose measured flip share (point estimate) exceeds the flip limit. Perplexity cells
 *    have no flips; only the gain applies to them.
 *  - Holds (within): within tolerance on accuracy (within_acc) and not changing behaviour.
 *  - Recommendation per slice: the cheapest config that holds; if none does, the
 *    baseline. behaviour: the cheapest config cheaper than rec that is within_acc but
 *    changes behaviour (the one a rule on accuracy alone would have recommended), with up
 *    to two example items. The verdict is about rec only: HOLDS (a config cheaper than the
 *    baseline holds), UNDECIDED (underpowered at the config that would be recommended, or
 *    too few items: n < QB_AN_MIN_ITEMS), BASELINE (nothing cheaper holds), FAILS (an
 *    accuracy slice the baseline itself fails: accuracy below QB_AN_FLOOR_ACC on at least
 *    QB_AN_MIN_ITEMS items; no loss can show there, so it is not judged: rec is the
 *    baseline, no cliff, and the deployment plans ignore it). Where the ladder breaks is
 *    the slice's cliff, reported beside the verdict. "The config that would be
 *    recommended" is rec, or, when rec is the baseline, the config just below the baseline
 *    on the ladder. Precedence: too few items, a cliff at or just below rec (a measured loss
 *    decides), underpowered. Underpowered makes a slice UNDECIDED only when nothing cheaper
 *    was shown to hold (rec is the baseline) or under the point policy: an interval inside
 *    the tolerance decides.
 *  - Unstable: a slice whose ladder rises beyond its intervals: two configs of one method
 *    (RTN, GPTQ, AWQ, SmoothQuant) other than the baseline, each on n >= QB_AN_MIN_ITEMS
 *    items, where the one with strictly fewer bits per weight has delta_ci.lo above the
 *    other's delta_ci.hi (the widest such gap is reported).
 *  - The overall row's own cliff is not listed in cliffs (it has no slice index): it is
 *    a->overall_cliff (below == -1 when none), and a->overall.cliff stays -1.
 *  - Cells with n == 0 (nothing measured under both) are never within tolerance, except the
 *    baseline's, which always is; their statistics are NAN.
 *  - Deployment: "single" = the cheapest config within tolerance for every slice at once
 *    (the baseline when none); "routed" = each slice served by its recommendation, except
 *    that a config whose slices all hold on another config the plan deploys at the same
 *    memory cost is dropped and its slices moved there (two configs of one size loaded side
 *    by side hold twice the memory; fewest slices first, then the later in cost order; to
 *    the first in cost order). A FAILS slice constrains neither: "single" skips it (and is
 *    the baseline when every slice fails), "routed" sends it to the cheapest config the
 *    other slices use. Memory of
 *    a plan = the sum of the memory costs of the distinct configs it deploys; its latency =
 *    sum over slices of traffic share x that slice's config's p50 TPOT; both also as ratios
 *    to the baseline.
 *  - Pareto (per slice and overall): a config is on the frontier when no other config has
 *    memory cost <= and accuracy >= with at least one strict (accuracy compared through
 *    delta, which for perplexity slices is minus the relative perplexity increase; an
 *    unknown memory cost counts as infinite).
 *  - MDE of a perplexity cell: exp((z_{1-alpha/2} + z_{0.8}) * sd(NLL difference) / sqrt(n))
 *    - 1, the relative perplexity change it could detect (normal approximation).
 *  - Cells are computed in parallel (OpenMP); every number is deterministic in the seed.
 */
#ifndef QB_ANALYZE_H
#define QB_ANALYZE_H

#include "analysis/stats.h"

#include <stdint.h>

struct qb_store;
struct qb_settings;
struct qb_an_sens;

#define QB_AN_DEFAULT_TOLERANCE 2.0 /* points, when the run names none */
#define QB_AN_DEFAULT_FLIPS 10.0    /* percent of a slice's answers a config may change */
#define QB_AN_MIN_ITEMS 10          /* fewer paired items than this: UNDECIDED */
#define QB_AN_FLOOR_ACC 0.05  /* baseline accuracy below this: the slice is not judged (FAILS) */
#define QB_AN_RESAMPLES 10000 /* bootstrap resamples per cell */
#define QB_AN_SEED 20261123u  /* fixed bootstrap seed */

enum qb_an_policy { QB_AN_INTERVAL, QB_AN_POINT };

/* The verdict is about the recommended config only; where the ladder breaks is the slice's
 * cliff, reported apart from it. */
enum qb_an_verdict {
    QB_VERDICT_HOLDS,
    QB_VERDICT_UNDECIDED,
    QB_VERDICT_BASELINE,
    QB_VERDICT_FAILS,
};

struct qb_an_opts {
    double confidence;        /* 0: from the run (default 0.95) */
    int policy;               /* -1: from the run; else enum qb_an_policy */
    double default_tolerance; /* points; < 0: from the run */
    int64_t resamples;        /* 0: QB_AN_RESAMPLES */
    uint64_t seed;            /* 0: QB_AN_SEED */
    /* non-NULL: the tolerances, flip limits and policy of these settings (a plan's, for
     * `qbrief check --policy`) replace the run's; default_tolerance and policy above still win */
    const struct qb_settings *rules;
};
#define QB_AN_OPTS_INIT                                                                            \
    {                                                                                              \
        0, -1, -1.0, 0, 0, NULL                                                                    \
    }

/* One latency setting of one config: percentiles over its repetitions. */
struct qb_an_latency {
    int64_t prompt_len, gen_len, batch, n_samples;
    double ttft_p50, ttft_p95, ttft_p99; /* ms */
    double tpot_p50, tpot_p95, tpot_p99; /* ms per output token */
    double e2e_p50, e2e_p95, e2e_p99;    /* ms */
    double decode_tok_s_p50;             /* tokens/s (median of samples) */
    double speedup_tpot,
        speedup_ttft; /* baseline p50 / this p50 at the same setting; NAN if absent */
};

struct qb_an_config {
    char *spec;
    int is_baseline;
    int64_t ladder;                                      /* position on the ladder, 0 = most bits */
    double bits_per_weight;                              /* NAN = unknown */
    int64_t weight_bytes;                                /* -1 = unknown */
    double quant_seconds;                                /* NAN = unknown */
    int64_t peak_rss_bytes, kv_cache_bytes, mem_context; /* -1 = not measured */
    double mem_cost;           /* bytes used for "cheapest": weight bytes, else peak RSS */
    double lat_cost;           /* p50 TPOT ms at the first latency setting; NAN if none */
    double mem_saving;         /* 1 - mem_cost / baseline's */
    int64_t n_results;         /* "ok" results of this config */
    struct qb_an_latency *lat; /* one per (prompt_len, gen_len, batch): decode settings
                                * (gen_len > 0, batch 1) first, then by prompt_len, gen_len,
                                * batch; lat[0] is where costs and speedups are read */
    int64_t n_lat;
};

/* One slice x config cell. Fractions, not points. */
struct qb_an_cell {
    int64_t n; /* paired items */
    int64_t n_correct;
    double acc;                  /* NAN for perplexity slices */
    struct qb_interval acc_ci;   /* Wilson */
    double delta;                /* acc - baseline acc (perplexity slice: -(ppl_ratio - 1)) */
    struct qb_interval delta_ci; /* paired bootstrap */
    double mcnemar_p;            /* exact; 1 for the baseline; NAN for perplexity slices */
    int64_t flips_lost;          /* baseline right -> config wrong */
    int64_t flips_gained;        /* baseline wrong -> config right */
    double flip_rate;            /* (lost + gained) / n */
    /* Wilson intervals of lost / n, gained / n and flip_rate; NAN for perplexity cells */
    struct qb_interval lost_ci, gained_ci, flip_ci;
    double kl_mean, kl_p99; /* over the config's items with a mean_kl; NAN for the baseline */
    double top1;            /* mean top-1 agreement */
    double ppl, ppl_ratio;  /* perplexity slices (and ppl items of mixed slices); NAN otherwise */
    double mde;             /* minimum detectable effect (fraction); NAN for the baseline,
                             * +inf when n == 0 */
    int underpowered;       /* mde > tolerance */
    int within_acc;         /* the accuracy (or perplexity) change alone is within tolerance */
    int gains_beyond;       /* gains more than the tolerance, interval excluding zero */
    int flips_over;         /* flip_rate above the slice's flip limit */
    int changes_behaviour;  /* gains_beyond || flips_over */
    int within;             /* holds: within_acc && !changes_behaviour (the baseline always) */
    int significant_loss;   /* loss > tol and the interval excludes zero */
    int pareto;             /* on this slice's accuracy-vs-memory frontier */
};

struct qb_an_slice {
    char *name;
    int is_perplexity;
    int64_t n_items;  /* in the suite */
    double tolerance; /* points (or percent of perplexity) */
    double max_flips; /* percent of the slice's answers a config may change */
    double traffic;   /* share in [0, 1] */
    int64_t rec;      /* index into configs */
    enum qb_an_verdict verdict;
    int64_t cliff;            /* index into cliffs, -1 when none */
    struct qb_an_cell *cells; /* n_configs, indexed like configs */
    /* the cheapest config, cheaper than rec, within tolerance on accuracy but changing
     * behaviour (passed over for it); -1 when none. examples: up to two of its items whose
     * answer flipped against the baseline (one lost, one gained when both exist) */
    int64_t behaviour;
    struct qb_an_example *examples;
    int64_t n_examples;
    /* the ladder rises beyond its intervals: unstable_below, with fewer bits, scores higher
     * than unstable_above (delta_ci.lo of below > delta_ci.hi of above); -1 when not */
    int64_t unstable_above, unstable_below;
};

/* One item whose answer a config changed: what the brief quotes. Owned strings; NULL when
 * the store kept none (a prompt kept only as its hash). */
struct qb_an_example {
    char *key, *prompt, *baseline_output, *config_output;
    int lost; /* 1: right under the baseline, wrong under the config; 0: the reverse */
};

struct qb_an_item {
    char *key, *prompt_sha256;
    int64_t slice; /* index into slices */
};

struct qb_an_cliff {
    int64_t slice;        /* index into slices */
    int64_t above, below; /* config indices: holds / breaks */
    double loss;          /* fraction (or relative perplexity) at `below` */
    struct qb_interval loss_ci;
    int hides;           /* the overall row stays within tolerance at `below` */
    double overall_loss; /* overall loss at `below` (fraction) */
};

struct qb_an_plan {
    int64_t *config;    /* per slice: index into configs */
    int64_t n_distinct; /* distinct configs deployed */
    double mem_cost;    /* bytes */
    double mem_ratio;   /* / baseline's mem_cost */
    double tpot_ms;     /* traffic-weighted p50 TPOT; NAN when not measured */
    double tpot_ratio;  /* / baseline's */
};

struct qb_analysis {
    /* provenance, all owned strings; NULL when the store has none */
    char *run_name, *title, *question, *template_name;
    char *model_path, *model_sha256, *architecture, *model_format;
    int64_t n_params;
    char *suite_path, *suite_sha256;
    int64_t n_suite_items;
    char *qbrief_version, *git_commit, *command_line, *host, *machine_json;
    char *device; /* where latency and memory were measured: "cpu", "vulkan:0 NAME, DRIVER,
                   * N MiB"; NULL for a run stored before schema 4 (the CPU) */
    char *started_at, *finished_at;
    char *calib_file, *calib_sha256;        /* NULL when uncalibrated */
    int64_t calib_sequences, calib_seq_len; /* 0 when uncalibrated */
    int64_t calib_overlap_items; /* suite items sharing a calib_overlap_ngram-word run with the
                                  * calibration text; -1 when not checked */
    int64_t calib_overlap_ngram;
    char *settings_json;

    double confidence; /* e.g. 0.95 */
    enum qb_an_policy policy;
    int64_t resamples;
    uint64_t seed;

    struct qb_an_config *configs; /* in ladder order: configs[i].ladder == i */
    int64_t n_configs;
    int64_t baseline; /* index into configs */

    struct qb_an_slice *slices; /* in suite order of first appearance */
    int64_t n_slices;
    struct qb_an_slice overall;       /* pooled accuracy items; rec/verdict as for slices */
    struct qb_an_cliff overall_cliff; /* the overall row's cliff; below == -1 when none */
    int mem_cost_rss; /* 1: mem_cost is peak RSS (weight bytes unknown); 0: weight bytes */

    struct qb_an_cliff *cliffs; /* down the ladder, then slice order */
    int64_t n_cliffs;

    struct qb_an_plan single, routed;
    int64_t single_config; /* index into configs */

    int64_t n_results, n_missing; /* "ok" results read; (config, item) pairs without one */
    int64_t n_failed; /* results with status "skipped" or "error" (also counted missing) */
    char **warnings;  /* e.g. "slice 'code' has 8 items: too few to decide" */
    int64_t n_warnings;

    /* the suite's items, for comparing runs item by item (analysis/compare.h): key, prompt
     * hash (NULL when the store has none) and slice index, in item-id order; correct is
     * [config * n_items + item]: 1, 0, or -1 (no result, or not scored right/wrong) */
    struct qb_an_item *items;
    int64_t n_items;
    signed char *correct;
    double *kl, *top1;       /* likewise: the result's mean KL and top-1 agreement against this
                              * run's own baseline; NAN when none */
    struct qb_an_sens *sens; /* the model's sensitivity scan (analyze_sens.h); NULL: none */
};

/* Reads run `run_name` (NULL: the most recently started run) from s and computes everything.
 * QB_EINVAL when there is no such run (the message lists the runs there are), when opts are
 * out of range, or when the run has no baseline results. *out is the caller's, to
 * qb_analysis_free. Warnings (settings that cannot be used, missing results, small or
 * underpowered slices, no calibration for a calibrated method) go to a->warnings. */
int qb_analyze(struct qb_store *s, const char *run_name, const struct qb_an_opts *opts,
               struct qb_analysis **out);
void qb_analysis_free(struct qb_analysis *a);

/* Every number above as one JSON document (jansson), indented; *out is malloc'd. NaN and
 * infinities are written as null. */
int qb_analysis_json(const struct qb_analysis *a, char **out);

/* "holds", "undecided", "baseline", "baseline_fails" */
const char *qb_an_verdict_name(enum qb_an_verdict v);

#endif
