/* stats: normal quantiles, Wilson intervals, exact McNemar, paired bootstraps, the MDE and a
 * seedable binomial sampler (see stats.h). Agrees with: scipy.stats.norm.ppf/cdf, the Wilson
 * interval of Newcombe (1998), scipy.stats.binomtest for McNemar, numpy.quantile (type 7).
 * Every function is pure: randomness only through struct qb_rng seeded from the caller. */
#include "analysis/stats.h"

#include "kernels/base/err.h"

#include <math.h>
#include <stdlib.h>

#define SQRT2 1.41421356237309504880
#define SQRT2PI 2.50662827463100050242
#define LN_SQRT2PI 0.91893853320467274178

static int bad_conf(double conf)
{
    return !(conf > 0.0 && conf < 1.0); /* NaN too */
}

/* ---- normal distribution ---------------------------------------------------------------- */

double qb_norm_cdf(double x)
{
    return 0.5 * erfc(-x / SQRT2);
}

/* Acklam's rational approximation (P. J. Acklam, "An algorithm for computing the inverse normal
 * cumulative distribution function", 2003; relative error < 1.15e-9), then one Halley step on
 * cdf(x) - p, which brings it to about machine precision. Works on the lower tail q =
 * min(p, 1 - p) (1 - p is exact for p >= 0.5) so the upper tail keeps its accuracy. */
double qb_norm_ppf(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    if (isnan(p) || p < 0.0 || p > 1.0)
        return NAN;
    if (p == 0.0)
        return -INFINITY;
    if (p == 1.0)
        return INFINITY;
    int upper = p > 0.5;
    double q = upper ? 1.0 - p : p; /* in (0, 0.5] */
    double x;
    if (q < 0.02425) { /* tail */
        double t = sqrt(-2.0 * log(q));
        x = (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) /
            ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1.0);
    } else { /* central region */
        double t = q - 0.5, r = t * t;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * t /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    }
    /* Halley: e = cdf(x) - q, u = e / pdf(x), x -= u / (1 + x u / 2) */
    double e = 0.5 * erfc(-x / SQRT2) - q;
    double u = e * SQRT2PI * exp(0.5 * x * x);
    x = x - u / (1.0 + 0.5 * x * u);
    return upper ? -x : x;
}

/* ---- Wilson ----------------------------------------------------------------------------- */

/* Wilson (1927): the p for which |phat - p| = z sqrt(p (1 - p) / n), i.e.
 * (phat + z^2/2n -+ z sqrt(phat (1 - phat) / n + z^2/4n^2)) / (1 + z^2/n). */
int qb_wilson(int64_t k, int64_t n, double conf, struct qb_interval *out)
{
    if (k < 0 || k > n || bad_conf(conf))
        return qb_err(QB_EINVAL,
                      "wilson interval: need 0 <= k <= n and conf in (0, 1), got "
                      "k %lld, n %lld, conf %g",
                      (long long)k, (long long)n, conf);
    if (n == 0) {
        out->lo = 0.0;
        out->hi = 1.0;
        return 0;
    }
    double z = qb_norm_ppf(1.0 - (1.0 - conf) / 2.0);
    double nn = (double)n, ph = (double)k / nn, z2 = z * z;
    double den = 1.0 + z2 / nn;
    double mid = (ph + z2 / (2.0 * nn)) / den;
    double half = z / den * sqrt(ph * (1.0 - ph) / nn + z2 / (4.0 * nn * nn));
    /* the bounds are exactly 0 at k == 0 and 1 at k == n; avoid rounding just past them */
    out->lo = k == 0 ? 0.0 : fmax(0.0, mid - half);
    out->hi = k == n ? 1.0 : fmin(1.0, mid + half);
    return 0;
}

/* ---- McNemar ---------------------------------------------------------------------------- */

/* P(X <= k), X ~ Bin(m, 1/2), k <= m/2. The largest term t_k = C(m, k) 2^-m comes from lgammal;
 * the rest by the ratio t_{i-1} / t_i = i / (m - i + 1) <= 1, summed downward until the terms
 * no longer change the sum (about 40 sqrt(m) terms at worst), so b + c in the millions costs
 * microseconds and nothing underflows. */
static double binom_half_cdf(int64_t k, int64_t m)
{
    long double lt = lgammal((long double)m + 1) - lgammal((long double)k + 1) -
                     lgammal((long double)(m - k) + 1) - (long double)m * logl(2.0L);
    long double sum = 1.0L, t = 1.0L;
    for (int64_t i = k; i > 0; i--) {
        t *= (long double)i / (long double)(m - i + 1);
        if (t < sum * 1e-21L)
            break;
        sum += t;
    }
    return (double)expl(lt + logl(sum));
}

double qb_mcnemar_exact(int64_t b, int64_t c)
{
    int64_t m;
    if (b < 0 || c < 0 || __builtin_add_overflow(b, c, &m))
        return NAN;
    if (m == 0 || b == c)
        return 1.0;
    int64_t k = b < c ? b : c;
    double p = 2.0 * binom_half_cdf(k, m);
    return p > 1.0 ? 1.0 : p;
}

/* ---- random numbers --------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void qb_rng_seed(struct qb_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x); /* never all zero: splitmix64 is a bijection of distinct x */
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0 (Blackman and Vigna, 2018) */
uint64_t qb_rng_next(struct qb_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double qb_rng_uniform(struct qb_rng *r)
{
    return (double)(qb_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n >= 1, unbiased (Lemire 2019: multiply, reject the short zone). */
static uint64_t rng_below(struct qb_rng *r, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128)qb_rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t floor = -n % n; /* 2^64 mod n */
        while (lo < floor) {
            m = (unsigned __int128)qb_rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Inversion by sequential search from 0, p <= 1/2 and n p small (expected n p + 1 steps). */
static int64_t binom_inv(struct qb_rng *r, int64_t n, double p)
{
    double q = 1.0 - p, s = p / q, a = ((double)n + 1.0) * s;
    double f0 = exp((double)n * log1p(-p)); /* P(X = 0) >= e^-11 here, no underflow */
    for (;;) {
        double u = qb_rng_uniform(r), f = f0;
        int64_t x = 0;
        while (u >= f) {
            u -= f;
            x++;
            if (x > n)
                break; /* rounding left u above the whole mass: draw again */
            f *= a / (double)x - s;
        }
        if (x <= n)
            return x;
    }
}

/* log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log sqrt(2 pi)]: the Stirling remainder. */
static double stirling_fc(int64_t k)
{
    if (k < 10)
        return lgamma((double)k + 1.0) -
               (((double)k + 0.5) * log((double)k + 1.0) - ((double)k + 1.0) + LN_SQRT2PI);
    double r = 1.0 / ((double)k + 1.0), r2 = r * r;
    return (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / 1260.0 * r2) * r2) * r;
}

/* BTRD: transformed rejection with decomposition, W. Hormann, "The generation of binomial random
 * variates", J. Statist. Comput. Simul. 46 (1993) 101-110, steps numbered as there. p <= 1/2,
 * n p >= 10. Exact: the final test compares against f(k)/f(m) through Stirling's series, whose
 * remainder fc is included. */
static int64_t binom_btrd(struct qb_rng *r, int64_t n, double p)
{
    double nd = (double)n, q = 1.0 - p;
    int64_t m = (int64_t)floor((nd + 1.0) * p); /* the mode */
    double rr = p / q, nr = (nd + 1.0) * rr, npq = nd * p * q, spq = sqrt(npq);
    double b = 1.15 + 2.53 * spq;
    double a = -0.0873 + 0.0248 * b + 0.01 * p;
    double c = nd * p + 0.5;
    double alpha = (2.83 + 5.1 / b) * spq;
    double vr = 0.92 - 4.2 / b, urvr = 0.86 * vr;
    for (;;) {
        /* 1: immediate acceptance from the central box */
        double v = qb_rng_uniform(r), u;
        if (v <= urvr) {
            u = v / vr - 0.43;
            return (int64_t)floor((2.0 * a / (0.5 - fabs(u)) + b) * u + c);
        }
        /* 2: generate u */
        if (v >= vr) {
            u = qb_rng_uniform(r) - 0.5;
        } else {
            u = v / vr - 0.93;
            u = (u > 0 ? 0.5 : -0.5) - u;
            v = qb_rng_uniform(r) * vr;
        }
        /* 3.0 */
        double us = 0.5 - fabs(u);
        if (us <= 0.0)
            continue;
        double kd = floor((2.0 * a / us + b) * u + c);
        if (kd < 0.0 || kd > nd)
            continue;
        int64_t k = (int64_t)kd;
        v = v * alpha / (a / (us * us) + b);
        int64_t km = k > m ? k - m : m - k;
        if (km <= 15) {
            /* 3.1: f(k)/f(m) by the recursion f(i)/f(i-1) = (n + 1) r / i - r */
            double f = 1.0;
            if (m < k)
                for (int64_t i = m + 1; i <= k; i++)
                    f *= nr / (double)i - rr;
            else if (m > k)
                for (int64_t i = k + 1; i <= m; i++)
                    v *= nr / (double)i - rr;
            if (v <= f)
                return k;
            continue;
        }
        /* 3.2: squeeze on log f(k)/f(m) */
        double kmd = (double)km;
        v = log(v);
        double rho = (kmd / npq) * (((kmd / 3.0 + 0.625) * kmd + 1.0 / 6.0) / npq + 0.5);
        double t = -kmd * kmd / (2.0 * npq);
        if (v < t - rho)
            return k;
        if (v > t + rho)
            continue;
        /* 3.3, 3.4: the exact test */
        double nm = nd - (double)m + 1.0, nk = nd - kd + 1.0;
        double h = ((double)m + 0.5) * log(((double)m + 1.0) / (rr * nm)) + stirling_fc(m) +
                   stirling_fc(n - m);
        if (v <= h + (nd + 1.0) * log(nm / nk) + (kd + 0.5) * log(nk * rr / (kd + 1.0)) -
                     stirling_fc(k) - stirling_fc(n - k))
            return k;
    }
}

int64_t qb_rng_binomial(struct qb_rng *r, int64_t n, double p)
{
    if (n <= 0 || !(p > 0.0))
        return 0;
    if (p >= 1.0)
        return n;
    int flip = p > 0.5; /* Bin(n, p) = n - Bin(n, 1 - p) */
    double pp = flip ? 1.0 - p : p;
    int64_t x = (double)n * pp < 10.0 ? binom_inv(r, n, pp) : binom_btrd(r, n, pp);
    return flip ? n - x : x;
}

/* ---- quantiles and bootstraps ----------------------------------------------------------- */

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    if (isnan(a) || isnan(b))
        return isnan(a) - isnan(b); /* NaNs last */
    return (a > b) - (a < b);
}

double qb_quantile(double *v, int64_t n, double q)
{
    if (n <= 0 || !v || !(q >= 0.0 && q <= 1.0))
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double h = (double)(n - 1) * q;
    int64_t lo = (int64_t)floor(h);
    if (lo >= n - 1)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

/* The percentile interval of the resample statistics: type-7 quantiles at (1 - conf)/2 and
 * (1 + conf)/2 of the sorted deltas, as numpy.percentile would give on them. */
static void percentile_interval(double *delta, int64_t resamples, double conf,
                                struct qb_interval *out)
{
    double tail = (1.0 - conf) / 2.0;
    out->lo = qb_quantile(delta, resamples, tail);
    out->hi = qb_quantile(delta, resamples, 1.0 - tail); /* sorted already: qsort is cheap */
}

static int alloc_resamples(int64_t resamples, double **out)
{
    size_t bytes;
    if (qb_mul_size((size_t)resamples, sizeof(double), &bytes) < 0 || !(*out = malloc(bytes)))
        return qb_err(QB_ENOMEM, "bootstrap: cannot allocate %lld resamples", (long long)resamples);
    return 0;
}

/* A resample of n pairs is multinomial over the four cells; only the discordant cells move the
 * delta, so it is drawn as D ~ Bin(n, (n10 + n01)/n) discordant pairs, of which
 * N01 ~ Bin(D, n01 / (n10 + n01)) favour the config: delta* = (N01 - (D - N01)) / n. This is
 * the same law as resampling the n pairs by index, at two binomial draws per resample. */
int qb_bootstrap_paired_binary(int64_t n11, int64_t n10, int64_t n01, int64_t n00,
                               int64_t resamples, uint64_t seed, double conf,
                               struct qb_interval *out)
{
    int64_t n, disc;
    double *delta = NULL;
    int rc;
    if (n11 < 0 || n10 < 0 || n01 < 0 || n00 < 0 || resamples < 1 || bad_conf(conf))
        return qb_err(QB_EINVAL,
                      "paired bootstrap: need counts >= 0, resamples >= 1 and conf "
                      "in (0, 1), got %lld %lld %lld %lld, %lld, %g",
                      (long long)n11, (long long)n10, (long long)n01, (long long)n00,
                      (long long)resamples, conf);
    if (__builtin_add_overflow(n11, n10, &n) || __builtin_add_overflow(n, n01, &n) ||
        __builtin_add_overflow(n, n00, &n) || __builtin_add_overflow(n10, n01, &disc))
        return qb_err(QB_EINVAL, "paired bootstrap: counts overflow");
    if (disc == 0) { /* includes n == 0: every resample has delta 0 */
        out->lo = out->hi = 0.0;
        return 0;
    }
    if ((rc = alloc_resamples(resamples, &delta)) < 0)
        return rc;
    struct qb_rng r;
    qb_rng_seed(&r, seed);
    double p_disc = (double)disc / (double)n, p01 = (double)n01 / (double)disc;
    for (int64_t i = 0; i < resamples; i++) {
        int64_t d = qb_rng_binomial(&r, n, p_disc);
        int64_t c = qb_rng_binomial(&r, d, p01);
        delta[i] = (double)(2 * c - d) / (double)n;
    }
    percentile_interval(delta, resamples, conf, out);
    free(delta);
    return 0;
}

int qb_bootstrap_paired_mean(const double *x, const double *y, int64_t n, int64_t resamples,
                             uint64_t seed, double conf, struct qb_interval *out)
{
    double *delta = NULL, *diff = NULL;
    size_t bytes;
    int rc;
    if (n < 0 || (n > 0 && (!x || !y)) || resamples < 1 || bad_conf(conf))
        return qb_err(QB_EINVAL,
                      "paired bootstrap: need n >= 0 with data, resamples >= 1 and "
                      "conf in (0, 1), got n %lld, resamples %lld, conf %g",
                      (long long)n, (long long)resamples, conf);
    if (n == 0) {
        out->lo = out->hi = 0.0;
        return 0;
    }
    if ((rc = alloc_resamples(resamples, &delta)) < 0)
        goto out;
    if (qb_mul_size((size_t)n, sizeof(double), &bytes) < 0 || !(diff = malloc(bytes))) {
        rc = qb_err(QB_ENOMEM, "paired bootstrap: cannot allocate %lld pairs", (long long)n);
        goto out;
    }
    for (int64_t i = 0; i < n; i++)
        diff[i] = y[i] - x[i];
    struct qb_rng r;
    qb_rng_seed(&r, seed);
    for (int64_t b = 0; b < resamples; b++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++)
            s += diff[rng_below(&r, (uint64_t)n)];
        delta[b] = s / (double)n;
    }
    percentile_interval(delta, resamples, conf, out);
    rc = 0;
out:
    free(diff);
    free(delta);
    return rc;
}

/* ---- power ------------------------------------------------------------------------------ */

double qb_mde_paired(int64_t n, double disagree, double alpha, double power)
{
    if (n < 0 || isnan(disagree) || !(alpha > 0.0 && alpha < 1.0) || !(power > 0.0 && power < 1.0))
        return NAN;
    if (n == 0)
        return INFINITY;
    double nd = (double)n, d = fmax(disagree, 1.0 / nd);
    return (qb_norm_ppf(1.0 - alpha / 2.0) + qb_norm_ppf(power)) * sqrt(d / nd);
}
