/* stats: the statistics behind every number in the brief. Pure functions of their inputs,
 * no I/O, no globals; randomness only through the seed argument (a brief must reproduce).
 *
 *     struct qb_interval ci;
 *     qb_wilson(81, 263, 0.95, &ci);                 // [0.2553, 0.3662] (Newcombe 1998)
 *     double p = qb_mcnemar_exact(b, c);             // b: base right, config wrong; c: reverse
 *     qb_bootstrap_paired_binary(n11, n10, n01, n00, 10000, 1, 0.95, &ci);  // delta of accuracy
 *     double mde = qb_mde_paired(n, disagree, 0.05, 0.80);
 *
 * Conventions: proportions and deltas are fractions (0.031, not 3.1 points); an interval is
 * two-sided at confidence conf (0.95 = 2.5% in each tail); a delta is config minus baseline. */
#ifndef QB_STATS_H
#define QB_STATS_H

#include <stddef.h>
#include <stdint.h>

struct qb_interval {
    double lo, hi;
};

/* Standard normal quantile (inverse CDF), |error| < 1e-9 on (0, 1); -inf/+inf at 0/1. */
double qb_norm_ppf(double p);
/* Standard normal CDF. */
double qb_norm_cdf(double x);

/* Wilson score interval of k successes in n trials. n == 0 gives [0, 1]. QB_EINVAL when
 * k < 0, k > n or conf outside (0, 1). */
int qb_wilson(int64_t k, int64_t n, double conf, struct qb_interval *out);

/* Exact two-sided McNemar test from the discordant counts: b pairs right under the baseline
 * and wrong under the config, c the reverse. p = min(1, 2 * P(X <= min(b, c))) with
 * X ~ Binomial(b + c, 1/2), computed in log space so b + c in the millions is fine. 1 when
 * b + c == 0; NAN when b or c is negative. */
double qb_mcnemar_exact(int64_t b, int64_t c);

/* Paired bootstrap (percentile) interval of the accuracy delta, config minus baseline, for
 * paired 0/1 outcomes given as the four cell counts (n11 both right, n10 base right and config
 * wrong, n01 base wrong and config right, n00 both wrong). Each resample draws n pairs with
 * replacement -- exactly, as a multinomial over the four cells, not a normal approximation --
 * so 10,000 resamples of 5,000 pairs cost milliseconds. The bounds are the type-7 quantiles
 * (qb_quantile) at (1 - conf)/2 and (1 + conf)/2 of the resampled deltas. Deterministic in seed.
 * QB_EINVAL when a count is negative, resamples < 1 or conf outside (0, 1); QB_ENOMEM when the
 * resamples cannot be held. n == 0 (or no discordant pair) gives [0, 0]. */
int qb_bootstrap_paired_binary(int64_t n11, int64_t n10, int64_t n01, int64_t n00,
                               int64_t resamples, uint64_t seed, double conf,
                               struct qb_interval *out);

/* Paired bootstrap (percentile) interval of mean(y[i] - x[i]) over n real-valued pairs
 * (e.g. per-item NLL of config and baseline). Bounds as for qb_bootstrap_paired_binary; costs
 * n * resamples draws. Deterministic in seed; scratch is allocated internally (QB_ENOMEM).
 * QB_EINVAL when n < 0, x or y is NULL with n > 0, resamples < 1 or conf outside (0, 1).
 * n == 0 gives [0, 0]. */
int qb_bootstrap_paired_mean(const double *x, const double *y, int64_t n, int64_t resamples,
                             uint64_t seed, double conf, struct qb_interval *out);

/* Minimum detectable effect (as a fraction) of a paired comparison of n items whose outcomes
 * disagree (flip either way) at rate disagree, for a two-sided test at level alpha with the
 * given power: (z_{1-alpha/2} + z_{power}) * sqrt(d / n) (the normal approximation to
 * McNemar's test, Connor 1987), with d = max(disagree, 1/n) so a slice with no observed flips
 * still gets a finite bound. +inf when n == 0; NAN when n < 0, disagree is NAN, or alpha or
 * power is outside (0, 1). */
double qb_mde_paired(int64_t n, double disagree, double alpha, double power);

/* The q-quantile (q in [0, 1]) of v[0..n) by linear interpolation between order statistics
 * (Hyndman-Fan type 7, as numpy's default). Sorts v in place (NaNs last). NAN when n == 0 or
 * q is outside [0, 1]. */
double qb_quantile(double *v, int64_t n, double q);

/* A small, fast, seedable generator (splitmix64 seeding a xoshiro256**). */
struct qb_rng {
    uint64_t s[4];
};
void qb_rng_seed(struct qb_rng *r, uint64_t seed);
uint64_t qb_rng_next(struct qb_rng *r);
double qb_rng_uniform(struct qb_rng *r); /* [0, 1) with 53 random bits */
/* A Binomial(n, p) draw, exact (inversion when n*min(p, 1-p) < 10, else BTRD, Hormann 1993;
 * p > 1/2 by symmetry). 0 when n <= 0 or p <= 0 (or NAN), n when p >= 1. */
int64_t qb_rng_binomial(struct qb_rng *r, int64_t n, double p);

#endif
