/* metrics: scoring a model's output for one suite item (docs/suite-format.md says what
 * every metric means). The only module that includes pcre2.h and, for scoring, jansson.
 *
 *     double score;
 *     if ((rc = qb_metric_score(it, out, out_len, &score)) < 0) ...;   // generate items
 *     ...
 *     double ll[4];   // summed log-likelihood of each choice's tokens after the prompt
 *     qb_choice_score(it, ll, NULL, &score);                          // choice items
 *
 * Scores are 1.0 or 0.0. Scoring reads the item only (the compiled regex is shared and
 * read-only), so several threads may score the same item at once. */
#ifndef QB_METRICS_H
#define QB_METRICS_H

#include "collector/eval/item.h"

#include <stddef.h>
#include <stdint.h>

/* Checks and compiles what a generate item's metric needs from it->target (regex, JSON,
 * number with tolerance) into it->priv / it->number / it->tolerance; other kinds need
 * nothing. Errors are QB_EFORMAT and read "'path':line:col: ..." (the target's position).
 * suite.c calls it at load. */
int qb_metric_prepare(struct qb_suite_item *it, const char *path, int64_t line, int col);
void qb_metric_release(struct qb_suite_item *it); /* frees it->priv; no-op when NULL */

/* Scores a generate item's output (len bytes, need not be NUL-terminated): *score is 1.0
 * or 0.0. QB_EINVAL for an item that is not a prepared generate item; QB_ERANGE when a
 * regex hits PCRE2's match limit (the message names the item). */
int qb_metric_score(const struct qb_suite_item *it, const char *output, size_t len, double *score);

/* Index of the largest loglik[i] (first on ties); -1 when n <= 0 or every value is NaN. */
int64_t qb_choice_argmax(const double *loglik, int64_t n);
/* Index of the largest loglik[i] / len[i] (lengths in bytes or tokens, each > 0): the
 * length-normalised choice. -1 when n <= 0 or no length is positive. */
int64_t qb_choice_argmax_norm(const double *loglik, const double *len, int64_t n);

/* Scores a choice item given the summed log-likelihood of each choice's continuation.
 * accuracy: argmax of the sums. accuracy_norm: argmax per token when n_tokens is given
 * (each choice's token count), else per byte of the choice's text. */
int qb_choice_score(const struct qb_suite_item *it, const double *loglik, const int64_t *n_tokens,
                    double *score);

/* The first number in s[0..len): optional '-' or '+' right before it, digits with ','
 * thousands separators only in groups of exactly three ("1,234,567"), an optional
 * fraction (".5", "3.25"); no exponent. Returns 1 and sets *x when found, 0 when none. */
int qb_metric_first_number(const char *s, size_t len, double *x);

#endif
