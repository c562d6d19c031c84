/* candidates: several runs -- one per candidate model, on one suite -- as one run of a new
 * store, so that one brief answers "which model at which precision": each (model, config) is a
 * config of that run, named "MODEL:SPEC", and the reference (the first run's baseline) is its
 * baseline. Every number of the brief is then the analysis of that run: per slice the change
 * of each candidate against the reference, paired over items with the same key and prompt
 * hash, its flips, the cheapest candidate that holds under the first run's tolerances, flip
 * limits and policy, the frontiers of accuracy against memory and time per token.
 *
 *     const struct qb_analysis *runs[] = {a_v1, a_v2};   // analysed with qb_analyze
 *     if ((rc = qb_candidates_write(runs, 2, "/tmp/cand.db", "qbrief brief --runs ...")) < 0)
 *         ...
 *     qb_analyze(store of /tmp/cand.db, "candidates", NULL, &all);
 *
 * What carries over: per item, whether each candidate answered right (correct), and its mean
 * KL and top-1 agreement against its OWN model's baseline (these do not compare across
 * vocabularies, so they stay within a model); per config, bits per weight, weight bytes,
 * memory rows and the p50 of each latency setting (one sample each: the candidates brief
 * states p50s only). Perplexity slices are left out (their per-item NLL is not carried), with
 * a warning; so are items of the reference that a candidate's run lacks (missing results). */
#ifndef QB_CANDIDATES_H
#define QB_CANDIDATES_H

#include <stdint.h>

struct qb_analysis;

#define QB_CANDIDATES_RUN "candidates" /* the run's name in the written store */

/* Writes runs[0..n) (n >= 2; runs[0] holds the reference) into a new store at path (which
 * must not exist). command_line is recorded as the run's. QB_EINVAL when n < 2 or when two
 * runs are the same run. */
int qb_candidates_write(const struct qb_analysis *const *runs, int64_t n, const char *path,
                        const char *command_line);

/* The label of run i among runs: its model's file name less its extension, with "-2", "-3"
 * ... when two runs share one. g_malloc'd. */
char *qb_candidates_label(const struct qb_analysis *const *runs, int64_t n, int64_t i);

#endif
