/* test_stats: the statistics of analysis/stats.h against published worked examples and
 * independent computations: Newcombe's (1998) Wilson intervals, exact binomial McNemar p-values
 * summed here term by term, normal quantiles from tables, numpy's type-7 quantile by hand, the
 * binomial sampler's law (moments and a chi-square fit to the exact pmf), and the coverage of
 * both bootstraps on simulated data with a known true delta. All seeded: deterministic. */
#include "analysis/stats.h"

#include "kernels/base/err.h"
#include "tests/check.h"

#include <stdlib.h>
#include <time.h>

#define N_OF(a) (int)(sizeof(a) / sizeof *(a))

/* Reference quantiles: R qnorm / scipy.stats.norm.ppf (and Abramowitz & Stegun table 26.5:
 * z_0.975 = 1.959963985, z_0.999 = 3.090232306). */
static void test_norm_ppf(void)
{
    CHECK_NEAR(qb_norm_ppf(0.975), 1.959963984540054, 1e-12);
    CHECK_NEAR(qb_norm_ppf(0.025), -1.959963984540054, 1e-12);
    CHECK(qb_norm_ppf(0.5) == 0.0);
    CHECK_NEAR(qb_norm_ppf(0.001), -3.090232306167813, 1e-12);
    CHECK_NEAR(qb_norm_ppf(0.999), 3.090232306167813, 1e-11);
    CHECK_NEAR(qb_norm_ppf(0.8), 0.8416212335729143, 1e-12);
    CHECK_NEAR(qb_norm_ppf(1e-10), -6.361340902404056, 1e-10);
    CHECK_NEAR(qb_norm_ppf(0.02425), -1.9729610513118845, 1e-11); /* Acklam's region boundary */
    CHECK(isinf(qb_norm_ppf(0.0)) && qb_norm_ppf(0.0) < 0);
    CHECK(isinf(qb_norm_ppf(1.0)) && qb_norm_ppf(1.0) > 0);
    CHECK(isnan(qb_norm_ppf(-0.1)) && isnan(qb_norm_ppf(1.5)) && isnan(qb_norm_ppf(NAN)));

    /* cdf: A&S 26.2 values */
    CHECK_NEAR(qb_norm_cdf(0.0), 0.5, 1e-15);
    CHECK_NEAR(qb_norm_cdf(1.96), 0.9750021048517795, 1e-14);
    CHECK_NEAR(qb_norm_cdf(3.0), 0.9986501019683699, 1e-14);
    CHECK_NEAR(qb_norm_cdf(-6.0) / 9.865876450377e-10, 1.0, 1e-9);

    /* round trip over (0, 1), both tails and the middle, |error| well below 1e-9 */
    double worst = 0.0;
    for (int e = -300; e <= -1; e++) {
        for (int m = 1; m <= 9; m += 2) {
            double p = m * pow(10.0, e);
            if (p >= 1.0)
                continue;
            double x = qb_norm_ppf(p);
            double rel = fabs(qb_norm_cdf(x) - p) / p;
            if (rel > worst)
                worst = rel;
        }
    }
    for (int i = 1; i < 1000; i++) {
        double p = i / 1000.0, x = qb_norm_ppf(p);
        CHECK_NEAR(qb_norm_cdf(x), p, 1e-14);
        CHECK_NEAR(qb_norm_ppf(1.0 - p), -x, 1e-9);
    }
    CHECK(worst < 1e-12);
}

/* Newcombe R. G. (1998), "Two-sided confidence intervals for the single proportion: comparison
 * of seven methods", Statistics in Medicine 17:857-872, Table II, method 3 (Wilson score). */
static void test_wilson(void)
{
    static const struct {
        int64_t k, n;
        double lo, hi;
    } ex[] = {
        {81, 263, 0.2553, 0.3662}, {15, 148, 0.0624, 0.1605}, {0, 20, 0.0, 0.1611},
        {1, 29, 0.0061, 0.1718},   {29, 29, 0.8830, 1.0}, /* the mirror of 0/29 */
    };
    struct qb_interval ci;
    for (int i = 0; i < N_OF(ex); i++) {
        CHECK(qb_wilson(ex[i].k, ex[i].n, 0.95, &ci) == 0);
        CHECK_NEAR(ci.lo, ex[i].lo, 1e-4);
        CHECK_NEAR(ci.hi, ex[i].hi, 1e-4);
    }
    /* 81/263 to more places (the formula evaluated in python3 at z = 1.959963984540054) */
    CHECK(qb_wilson(81, 263, 0.95, &ci) == 0);
    CHECK_NEAR(ci.lo, 0.2552885198782743, 1e-12);
    CHECK_NEAR(ci.hi, 0.3662095769828001, 1e-12);
    /* symmetry: k/n mirrors (n-k)/n */
    struct qb_interval a, b;
    CHECK(qb_wilson(7, 50, 0.9, &a) == 0 && qb_wilson(43, 50, 0.9, &b) == 0);
    CHECK_NEAR(a.lo, 1.0 - b.hi, 1e-14);
    CHECK_NEAR(a.hi, 1.0 - b.lo, 1e-14);
    /* a wider confidence gives a wider interval */
    CHECK(qb_wilson(7, 50, 0.99, &b) == 0 && b.lo < a.lo && b.hi > a.hi);
    CHECK(qb_wilson(0, 0, 0.95, &ci) == 0 && ci.lo == 0.0 && ci.hi == 1.0);
    CHECK(qb_wilson(0, 1000000000, 0.95, &ci) == 0 && ci.lo == 0.0 && ci.hi > 0 && ci.hi < 1e-8);
    CHECK(qb_wilson(-1, 10, 0.95, &ci) == QB_EINVAL);
    CHECK(qb_wilson(11, 10, 0.95, &ci) == QB_EINVAL);
    CHECK(qb_wilson(1, 10, 1.0, &ci) == QB_EINVAL);
    CHECK(qb_wilson(1, 10, 0.0, &ci) == QB_EINVAL);
    CHECK(qb_wilson(1, 10, NAN, &ci) == QB_EINVAL);
}

/* min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2), summed term by term in long double from
 * t_0 = 2^-(b+c) (no logs, no lgamma): independent of the library's method. */
static double mcnemar_direct(int64_t b, int64_t c)
{
    int64_t m = b + c, k = b < c ? b : c;
    long double t = ldexpl(1.0L, (int)-m), s = 0.0L;
    for (int64_t i = 0; i <= k; i++) {
        s += t;
        t = t * (long double)(m - i) / (long double)(i + 1);
    }
    return s * 2 > 1 ? 1.0 : (double)(2 * s);
}

static void test_mcnemar(void)
{
    /* b = 2, c = 10: 2 P(X <= 2), X ~ Bin(12, 1/2) = 2 (1 + 12 + 66) / 4096 = 0.03857421875
     * (the exact McNemar example of e.g. Agresti, Categorical Data Analysis, 3rd ed., 11.1.4
     * uses the same computation) */
    CHECK_NEAR(qb_mcnemar_exact(2, 10), 158.0 / 4096.0, 1e-14);
    CHECK_NEAR(qb_mcnemar_exact(10, 2), 158.0 / 4096.0, 1e-14);
    CHECK_NEAR(qb_mcnemar_exact(0, 5), 2.0 / 32.0, 1e-15);
    CHECK_NEAR(qb_mcnemar_exact(7, 3), 2.0 * 176.0 / 1024.0, 1e-14); /* 1+10+45+120 = 176 */
    CHECK(qb_mcnemar_exact(0, 0) == 1.0);
    CHECK(qb_mcnemar_exact(5, 5) == 1.0);
    CHECK(qb_mcnemar_exact(5, 6) == 1.0); /* 2 P(X <= 5), X ~ Bin(11, 1/2) = 2 * 0.5: clamped */
    CHECK(qb_mcnemar_exact(1000000, 1000000) == 1.0);
    CHECK(isnan(qb_mcnemar_exact(-1, 3)));
    /* large counts: 0.030720707864242296 from exact rational arithmetic in python3
     * (fractions, math.comb) */
    double p = qb_mcnemar_exact(1000, 1100);
    CHECK(isfinite(p));
    CHECK_NEAR(p / 0.030720707864242296, 1.0, 1e-9);
    CHECK_NEAR(p / mcnemar_direct(1000, 1100), 1.0, 1e-9);
    static const int64_t bc[][2] = {{3, 17}, {40, 60}, {123, 77}, {4000, 4200}, {7000, 7400}};
    /* (b + c stays below 16000 so 2^-(b+c) is a normal long double) */
    for (int i = 0; i < N_OF(bc); i++) {
        double ref = mcnemar_direct(bc[i][0], bc[i][1]);
        CHECK_NEAR(qb_mcnemar_exact(bc[i][0], bc[i][1]) / ref, 1.0, 1e-9);
    }
    /* millions: tiny but positive, and monotone in the imbalance */
    double p1 = qb_mcnemar_exact(1000000, 1002000), p2 = qb_mcnemar_exact(1000000, 1004000);
    CHECK(p1 > 0 && p1 < 1 && p2 > 0 && p2 < p1);
    /* normal approximation check at 2M pairs: z = 2000 / sqrt(2002000) = 1.41350..., two-sided
     * p ~ 0.1575 (continuity-corrected normal tail, good to ~1e-3 at this size) */
    double z = (2000.0 - 1.0) / sqrt(2002000.0);
    CHECK_NEAR(p1, 2.0 * qb_norm_cdf(-z), 2e-3);
}

/* numpy.quantile(v, q) (method 'linear', Hyndman-Fan type 7): h = (n - 1) q,
 * v[floor h] + (h - floor h) (v[floor h + 1] - v[floor h]) on the sorted v. */
static void test_quantile(void)
{
    double v[] = {15, 20, 35, 40, 50}; /* sorted: h = 4q */
    CHECK_NEAR(qb_quantile(v, 5, 0.0), 15, 1e-12);
    CHECK_NEAR(qb_quantile(v, 5, 0.25), 20, 1e-12); /* h = 1 */
    CHECK_NEAR(qb_quantile(v, 5, 0.4), 29, 1e-12);  /* h = 1.6: 20 + 0.6 * 15 */
    CHECK_NEAR(qb_quantile(v, 5, 0.5), 35, 1e-12);
    CHECK_NEAR(qb_quantile(v, 5, 0.9), 46, 1e-12); /* h = 3.6: 40 + 0.6 * 10 */
    CHECK_NEAR(qb_quantile(v, 5, 1.0), 50, 1e-12);
    double w[] = {3, 1, 4, 1, 5, 9, 2, 6};              /* sorted 1 1 2 3 4 5 6 9, h = 7q */
    CHECK_NEAR(qb_quantile(w, 8, 0.5), 3.5, 1e-12);     /* h = 3.5 */
    CHECK(w[0] == 1 && w[1] == 1 && w[7] == 9);         /* sorted in place */
    CHECK_NEAR(qb_quantile(w, 8, 0.1), 1.0, 1e-12);     /* h = 0.7 between 1 and 1 */
    CHECK_NEAR(qb_quantile(w, 8, 0.2), 1.4, 1e-12);     /* h = 1.4: 1 + 0.4 * 1 */
    CHECK_NEAR(qb_quantile(w, 8, 0.975), 8.475, 1e-12); /* h = 6.825: 6 + 0.825 * 3 */
    double one[] = {-2.5};
    CHECK(qb_quantile(one, 1, 0.3) == -2.5);
    CHECK(isnan(qb_quantile(v, 0, 0.5)));
    CHECK(isnan(qb_quantile(v, 5, 1.5)) && isnan(qb_quantile(v, 5, -0.1)));
}

/* Binomial pmf in long double, from lgammal (the test's reference law). */
static double binom_pmf(int64_t n, double p, int64_t k)
{
    long double l = lgammal(n + 1.0L) - lgammal(k + 1.0L) - lgammal(n - k + 1.0L) + k * logl(p) +
                    (n - k) * log1pl(-(long double)p);
    return (double)expl(l);
}

/* Pearson chi-square of n_draws draws of Bin(n, p) against the exact pmf, cells with expected
 * count >= 20 kept apart, the tails lumped. Returns the statistic; *df the degrees of freedom. */
static double binom_chisq(struct qb_rng *r, int64_t n, double p, int n_draws, int *df)
{
    double mean = n * p, sd = sqrt(n * p * (1 - p));
    int64_t lo = (int64_t)fmax(0, floor(mean - 8 * sd - 2)),
            hi = (int64_t)fmin(n, ceil(mean + 8 * sd + 2));
    int64_t width = hi - lo + 1;
    double *obs = calloc((size_t)width + 2, sizeof *obs); /* [0] below lo, [width+1] above hi */
    for (int i = 0; i < n_draws; i++) {
        int64_t k = qb_rng_binomial(r, n, p);
        CHECK(k >= 0 && k <= n);
        obs[k < lo ? 0 : k > hi ? width + 1 : k - lo + 1] += 1;
    }
    /* walk the cells, merging neighbours until the expected count reaches 20 */
    double chi = 0, eacc = 0, oacc = obs[0], ebelow = 0;
    for (int64_t k = 0; k < lo; k++)
        ebelow += binom_pmf(n, p, k);
    eacc = ebelow * n_draws;
    int cells = 0;
    double etot = eacc;
    for (int64_t k = lo; k <= hi; k++) {
        double e = binom_pmf(n, p, k) * n_draws;
        eacc += e;
        etot += e;
        oacc += obs[k - lo + 1];
        if (eacc >= 20 && etot < n_draws - 20) {
            chi += (oacc - eacc) * (oacc - eacc) / eacc;
            cells++;
            eacc = oacc = 0;
        }
    }
    /* the rest (upper tail, whatever its expected count) */
    eacc += n_draws - etot;
    oacc += obs[width + 1];
    if (eacc > 0) {
        chi += (oacc - eacc) * (oacc - eacc) / eacc;
        cells++;
    }
    free(obs);
    *df = cells - 1;
    return chi;
}

static void test_binomial(void)
{
    struct qb_rng r;
    qb_rng_seed(&r, 12345);
    CHECK(qb_rng_binomial(&r, 0, 0.3) == 0);
    CHECK(qb_rng_binomial(&r, 100, 0.0) == 0);
    CHECK(qb_rng_binomial(&r, 100, 1.0) == 100);
    CHECK(qb_rng_binomial(&r, -5, 0.5) == 0);

    /* moments: inversion (n p < 10), BTRD (n p >= 10), both sides of 1/2, huge n */
    static const struct {
        int64_t n;
        double p;
    } cases[] = {{1, 0.5},     {10, 0.3},      {1000, 0.005},     {50, 0.999},
                 {40, 0.25},   {100, 0.1},     {1000, 0.5},       {5000, 0.9},
                 {5000, 0.03}, {123456, 0.77}, {1000000000, 0.3}, {2000000, 1e-6}};
    const int draws = 200000;
    for (int i = 0; i < N_OF(cases); i++) {
        double n = (double)cases[i].n, p = cases[i].p, s = 0, s2 = 0;
        for (int j = 0; j < draws; j++) {
            double k = (double)qb_rng_binomial(&r, cases[i].n, p);
            s += k;
            s2 += k * k;
        }
        double mean = s / draws, var = s2 / draws - mean * mean;
        double tm = n * p, tv = n * p * (1 - p);
        /* standard errors of the sample mean and variance: sqrt(v / N), ~ v sqrt(2 / N) */
        double se_m = sqrt(tv / draws), se_v = tv * sqrt((2.0 + 1.0 / tv) / draws);
        if (fabs(mean - tm) > 5 * se_m || fabs(var - tv) > 5 * se_v)
            fprintf(stderr, "  Bin(%lld, %g): mean %.6g (want %.6g), var %.6g (want %.6g)\n",
                    (long long)cases[i].n, p, mean, tm, var, tv);
        CHECK(fabs(mean - tm) <= 5 * se_m);
        CHECK(fabs(var - tv) <= 5 * se_v);
    }

    /* the whole law: chi-square against the exact pmf; the 99.99% point of chi2(df) is below
     * df + 5.4 sqrt(2 df) + 10 for every df here */
    static const struct {
        int64_t n;
        double p;
    } fit[] = {{20, 0.3},   {30, 0.32},  {100, 0.1}, {100, 0.3},
               {1000, 0.5}, {5000, 0.9}, {500, 0.02}};
    for (int i = 0; i < N_OF(fit); i++) {
        int df;
        double chi = binom_chisq(&r, fit[i].n, fit[i].p, 300000, &df);
        double lim = df + 5.4 * sqrt(2.0 * df) + 10;
        if (!(chi < lim))
            fprintf(stderr, "  Bin(%lld, %g): chi2 %.1f on %d df (limit %.1f)\n",
                    (long long)fit[i].n, fit[i].p, chi, df, lim);
        CHECK(df >= 3 && chi < lim);
    }

    /* determinism */
    struct qb_rng a, b;
    qb_rng_seed(&a, 99);
    qb_rng_seed(&b, 99);
    int same = 1;
    for (int j = 0; j < 1000; j++)
        same &= qb_rng_binomial(&a, 777, 0.4) == qb_rng_binomial(&b, 777, 0.4);
    CHECK(same);
    /* uniform: [0, 1) and mean 1/2 */
    double s = 0;
    int inrange = 1;
    for (int j = 0; j < 100000; j++) {
        double u = qb_rng_uniform(&a);
        inrange &= u >= 0 && u < 1;
        s += u;
    }
    CHECK(inrange);
    CHECK_NEAR(s / 100000, 0.5, 5 * sqrt(1.0 / 12 / 100000));
}

/* Draws a multinomial sample of the four cells (n11, n10, n01, n00) by sequential binomials. */
static void draw_cells(struct qb_rng *r, int64_t n, const double p[4], int64_t c[4])
{
    double rest = 1.0;
    int64_t left = n;
    for (int j = 0; j < 3; j++) {
        c[j] = qb_rng_binomial(r, left, rest > 0 ? fmin(1.0, p[j] / rest) : 0);
        left -= c[j];
        rest -= p[j];
    }
    c[3] = left;
}

static void test_bootstrap_binary(void)
{
    struct qb_interval ci, ci2;
    /* coverage: true cells p11 .62, p10 .08, p01 .05, p00 .25: baseline accuracy .70, config
     * .67, true delta p01 - p10 = -0.03. 1000 data sets of 300 pairs, 2000 resamples each. */
    const double p[4] = {0.62, 0.08, 0.05, 0.25}, truth = 0.05 - 0.08;
    struct qb_rng r;
    qb_rng_seed(&r, 2024);
    int covered = 0, sets = 1000;
    for (int s = 0; s < sets; s++) {
        int64_t c[4];
        draw_cells(&r, 300, p, c);
        CHECK(qb_bootstrap_paired_binary(c[0], c[1], c[2], c[3], 2000, 1000 + s, 0.95, &ci) == 0);
        covered += ci.lo <= truth && truth <= ci.hi;
    }
    double cov = (double)covered / sets;
    printf("  binary bootstrap coverage of a 95%% interval: %.3f (%d sets)\n", cov, sets);
    CHECK(cov >= 0.92 && cov <= 0.97);

    /* deterministic in seed; another seed moves it a little (3000 pairs: a fine grid of
     * deltas, so the percentiles of two seeds differ) */
    CHECK(qb_bootstrap_paired_binary(1800, 250, 150, 800, 5000, 7, 0.95, &ci) == 0);
    CHECK(qb_bootstrap_paired_binary(1800, 250, 150, 800, 5000, 7, 0.95, &ci2) == 0);
    CHECK(ci.lo == ci2.lo && ci.hi == ci2.hi);
    CHECK(qb_bootstrap_paired_binary(1800, 250, 150, 800, 5000, 8, 0.95, &ci2) == 0);
    CHECK(ci.lo != ci2.lo || ci.hi != ci2.hi);
    CHECK(fabs(ci.lo - ci2.lo) < 0.003 && fabs(ci.hi - ci2.hi) < 0.003);
    /* observed delta (150 - 250) / 3000 inside; close to the normal-theory interval
     * d +- 1.96 sqrt((p10 + p01 - (p01 - p10)^2) / n) */
    double d = -100.0 / 3000, se = sqrt((400.0 / 3000 - d * d) / 3000);
    CHECK(ci.lo < d && d < ci.hi);
    CHECK_NEAR(ci.lo, d - 1.959964 * se, 0.002);
    CHECK_NEAR(ci.hi, d + 1.959964 * se, 0.002);

    /* the same data as 0/1 vectors through the index bootstrap */
    double x[300], y[300];
    int i = 0;
    for (int j = 0; j < 180; j++, i++)
        x[i] = 1, y[i] = 1;
    for (int j = 0; j < 25; j++, i++)
        x[i] = 1, y[i] = 0;
    for (int j = 0; j < 15; j++, i++)
        x[i] = 0, y[i] = 1;
    for (int j = 0; j < 80; j++, i++)
        x[i] = 0, y[i] = 0;
    CHECK(qb_bootstrap_paired_binary(180, 25, 15, 80, 10000, 3, 0.95, &ci) == 0);
    CHECK(qb_bootstrap_paired_mean(x, y, 300, 10000, 4, 0.95, &ci2) == 0);
    CHECK_NEAR(ci.lo, ci2.lo, 0.01);
    CHECK_NEAR(ci.hi, ci2.hi, 0.01);

    /* edge cases */
    CHECK(qb_bootstrap_paired_binary(0, 0, 0, 0, 100, 1, 0.95, &ci) == 0 && ci.lo == 0 &&
          ci.hi == 0);
    CHECK(qb_bootstrap_paired_binary(50, 0, 0, 50, 100, 1, 0.95, &ci) == 0 && ci.lo == 0 &&
          ci.hi == 0);
    CHECK(qb_bootstrap_paired_binary(0, 0, 10, 0, 100, 1, 0.95, &ci) == 0 && ci.lo == 1 &&
          ci.hi == 1); /* every pair flips to right */
    CHECK(qb_bootstrap_paired_binary(-1, 0, 0, 0, 100, 1, 0.95, &ci) == QB_EINVAL);
    CHECK(qb_bootstrap_paired_binary(1, 0, 0, 0, 0, 1, 0.95, &ci) == QB_EINVAL);
    CHECK(qb_bootstrap_paired_binary(1, 0, 0, 0, 10, 1, 1.0, &ci) == QB_EINVAL);
    CHECK(qb_bootstrap_paired_binary(INT64_MAX, 1, 0, 0, 10, 1, 0.95, &ci) == QB_EINVAL);

    /* info: the size the brief uses (no assertion on time) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(qb_bootstrap_paired_binary(3500, 260, 240, 1000, 10000, 1, 0.95, &ci) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  info: 10,000 resamples of 5,000 pairs in %.2f ms: [%.4f, %.4f]\n",
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, ci.lo, ci.hi);
}

static void test_bootstrap_mean(void)
{
    /* coverage: x ~ N(1, 1), y = x + N(0.2, 0.5^2): true mean(y - x) = 0.2. 500 data sets of
     * 100 pairs, 1000 resamples each. */
    enum { N = 100 };
    double x[N], y[N];
    struct qb_rng r;
    struct qb_interval ci, ci2;
    qb_rng_seed(&r, 77);
    int covered = 0, sets = 500;
    for (int s = 0; s < sets; s++) {
        for (int i = 0; i < N; i++) {
            x[i] = 1.0 + qb_norm_ppf(1.0 - qb_rng_uniform(&r)); /* (0, 1]: no -inf */
            y[i] = x[i] + 0.2 + 0.5 * qb_norm_ppf(1.0 - qb_rng_uniform(&r));
        }
        CHECK(qb_bootstrap_paired_mean(x, y, N, 1000, 500 + s, 0.95, &ci) == 0);
        covered += ci.lo <= 0.2 && 0.2 <= ci.hi;
    }
    double cov = (double)covered / sets;
    printf("  mean bootstrap coverage of a 95%% interval: %.3f (%d sets)\n", cov, sets);
    CHECK(cov >= 0.92 && cov <= 0.97);

    /* the last data set: close to mean +- 1.96 sd / sqrt(n) */
    double m = 0, v = 0;
    for (int i = 0; i < N; i++)
        m += (y[i] - x[i]) / N;
    for (int i = 0; i < N; i++)
        v += (y[i] - x[i] - m) * (y[i] - x[i] - m) / N;
    CHECK(qb_bootstrap_paired_mean(x, y, N, 20000, 1, 0.95, &ci) == 0);
    CHECK_NEAR(ci.lo, m - 1.959964 * sqrt(v / N), 0.015);
    CHECK_NEAR(ci.hi, m + 1.959964 * sqrt(v / N), 0.015);
    /* deterministic in seed */
    CHECK(qb_bootstrap_paired_mean(x, y, N, 20000, 1, 0.95, &ci2) == 0);
    CHECK(ci.lo == ci2.lo && ci.hi == ci2.hi);
    /* a constant difference has a point interval */
    double z[3] = {0, 0, 0}, w[3] = {0.5, 0.5, 0.5};
    CHECK(qb_bootstrap_paired_mean(z, w, 3, 50, 1, 0.9, &ci) == 0 && ci.lo == 0.5 && ci.hi == 0.5);
    CHECK(qb_bootstrap_paired_mean(NULL, NULL, 0, 50, 1, 0.9, &ci) == 0 && ci.lo == 0 &&
          ci.hi == 0);
    CHECK(qb_bootstrap_paired_mean(NULL, w, 3, 50, 1, 0.9, &ci) == QB_EINVAL);
    CHECK(qb_bootstrap_paired_mean(z, w, 3, 0, 1, 0.9, &ci) == QB_EINVAL);
    CHECK(qb_bootstrap_paired_mean(z, w, -3, 10, 1, 0.9, &ci) == QB_EINVAL);
    CHECK(qb_bootstrap_paired_mean(z, w, 3, 10, 1, -0.9, &ci) == QB_EINVAL);
}

static void test_mde(void)
{
    /* n = 1000, d = 0.10, alpha 0.05, power 0.80: (1.959963985 + 0.841621234) sqrt(0.1 / 1000)
     * = 2.801585218 * 0.01 */
    CHECK_NEAR(qb_mde_paired(1000, 0.10, 0.05, 0.80), 0.02801585218, 1e-9);
    /* no observed flips: d = 1/n = 0.005 for n = 200: 2.801585218 * sqrt(0.005 / 200) */
    CHECK_NEAR(qb_mde_paired(200, 0.0, 0.05, 0.80), 2.801585218 * 0.005, 1e-9);
    /* alpha 0.01, power 0.9: (2.575829304 + 1.281551566) sqrt(0.2 / 500) = 3.857380870 * 0.02 */
    CHECK_NEAR(qb_mde_paired(500, 0.2, 0.01, 0.9), 0.0771476174, 1e-9);
    CHECK(isinf(qb_mde_paired(0, 0.1, 0.05, 0.8)));
    CHECK(isnan(qb_mde_paired(100, 0.1, 0.0, 0.8)));
    CHECK(isnan(qb_mde_paired(100, 0.1, 0.05, 1.0)));
}

int main(void)
{
    RUN(test_norm_ppf);
    RUN(test_wilson);
    RUN(test_mcnemar);
    RUN(test_quantile);
    RUN(test_binomial);
    RUN(test_bootstrap_binary);
    RUN(test_bootstrap_mean);
    RUN(test_mde);
    return check_summary();
}
