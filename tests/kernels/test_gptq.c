/* test_gptq: GPTQ (kernels/gptq.h) against round-to-nearest on random layers.
 *   - U from qb_gptq_hinv_chol is upper triangular and U^T U (H + damp I) = I;
 *   - with H diagonal (uncorrelated inputs) nothing propagates, so GPTQ must give RTN's bytes
 *     exactly, with and without act-order (act-order processes the columns in another order
 *     and must put every code back in its own column);
 *   - on correlated inputs GPTQ's output error ||X W^T - X W'^T|| is below RTN's for every
 *     bit width and both group flavours, act-order included;
 *   - the weighted clipping search (qb_quantize_weighted) is RTN with unit weights and beats
 *     RTN's output error with the inputs' energy;
 *   - dead inputs, bad formats and non-finite weights. */
#include "kernels/base/err.h"
#include "kernels/gptq.h"
#include "kernels/quantize.h"
#include "tests/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;

static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
    double u = unif() + 1e-12, v = unif();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* x (n, k): correlated inputs with uneven channel scales: x = z A + noise, A (k/4, k)
 * mixing a few latent factors into every channel, channel j scaled by 0.2 .. 3. */
static void correlated_inputs(float *x, int64_t n, int64_t k)
{
    int64_t f = k / 4;
    float *a = malloc((size_t)(f * k) * sizeof *a), *sc = malloc((size_t)k * sizeof *sc);
    float *z = malloc((size_t)f * sizeof *z);
    for (int64_t i = 0; i < f * k; i++)
        a[i] = (float)gauss();
    for (int64_t j = 0; j < k; j++)
        sc[j] = (float)(0.2 + 2.8 * unif());
    for (int64_t t = 0; t < n; t++) {
        for (int64_t i = 0; i < f; i++)
            z[i] = (float)gauss();
        for (int64_t j = 0; j < k; j++) {
            float s = 0.3f * (float)gauss();
            for (int64_t i = 0; i < f; i++)
                s += z[i] * a[i * k + j] * 0.5f;
            x[t * k + j] = s * sc[j];
        }
    }
    free(a);
    free(sc);
    free(z);
}

/* h (k, k) = 2/n X^T X */
static void hessian(const float *x, int64_t n, int64_t k, double *h)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t t = 0; t < n; t++)
                s += (double)x[t * k + i] * x[t * k + j];
            h[i * k + j] = 2 * s / (double)n;
        }
}

/* ||X W^T - X Wq^T||_F^2 with Wq decoded by the reference dequantizer */
static double out_err(const float *x, int64_t n, const float *w, int64_t rows, int64_t k,
                      const struct qb_qtensor *t)
{
    float *row = malloc((size_t)k * sizeof *row);
    double e = 0;
    for (int64_t r = 0; r < rows; r++) {
        qb_dequantize_row(t, r, row);
        for (int64_t s = 0; s < n; s++) {
            double d = 0;
            for (int64_t j = 0; j < k; j++)
                d += (double)x[s * k + j] * ((double)w[r * k + j] - row[j]);
            e += d * d;
        }
    }
    free(row);
    return e;
}

static void test_hinv_chol(void)
{
    const int64_t k = 40, n = 200;
    float *x = malloc((size_t)(n * k) * sizeof *x), *u = malloc((size_t)(k * k) * sizeof *u);
    double *h = malloc((size_t)(k * k) * sizeof *h), damp = 0.05, worst = 0;
    correlated_inputs(x, n, k);
    hessian(x, n, k, h);
    CHECK(qb_gptq_hinv_chol(h, k, damp, u) == 0);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < i; j++)
            CHECK(u[i * k + j] == 0);
    /* (U^T U)(H + damp I) = I */
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t m = 0; m < k; m++) {
                double utu = 0;
                for (int64_t l = 0; l < k; l++)
                    utu += (double)u[l * k + i] * u[l * k + m];
                s += utu * (h[m * k + j] + (m == j ? damp : 0));
            }
            double d = fabs(s - (i == j));
            worst = d > worst ? d : worst;
        }
    printf("  max |U^T U H - I| = %.2e\n", worst);
    CHECK(worst < 1e-3);
    /* an indefinite matrix is refused */
    for (int64_t i = 0; i < k * k; i++)
        h[i] = 0;
    h[0] = -1;
    CHECK(qb_gptq_hinv_chol(h, k, 0, u) == QB_ERANGE);
    free(x);
    free(u);
    free(h);
}

static const struct {
    enum qb_fmt fmt;
    int group, asym;
} fmts[] = {
    {QB_FMT_I8, 0, 0},  {QB_FMT_I4, 32, 1}, {QB_FMT_I4, 32, 0}, {QB_FMT_I4, 128, 1},
    {QB_FMT_I3, 32, 1}, {QB_FMT_I3, 64, 0}, {QB_FMT_I2, 32, 1}, {QB_FMT_I2, 32, 0},
};
#define N_FMTS (int)(sizeof fmts / sizeof fmts[0])

static void test_diagonal_is_rtn(void)
{
    const int64_t rows = 19, k = 256;
    float *w = malloc((size_t)(rows * k) * sizeof *w);
    double *h = calloc((size_t)(k * k), sizeof *h);
    for (int64_t i = 0; i < rows * k; i++)
        w[i] = (float)(gauss() * 0.05);
    for (int64_t i = 0; i < k; i++)
        h[i * k + i] = 0.1 + unif(); /* uneven: act-order shuffles the columns */
    for (int f = 0; f < N_FMTS; f++)
        for (int ao = 0; ao < 2; ao++) {
            struct qb_qtensor rtn, g;
            struct qb_quant_opts qo = {.clip = -1};
            struct qb_gptq_opts go = QB_GPTQ_OPTS_INIT;
            go.act_order = ao;
            CHECK(qb_quantize(w, rows, k, fmts[f].fmt, fmts[f].group, fmts[f].asym, &qo, &rtn) ==
                  0);
            CHECK(qb_gptq_quantize(w, rows, k, h, fmts[f].fmt, fmts[f].group, fmts[f].asym, &go,
                                   &g) == 0);
            CHECK(g.fmt == rtn.fmt && g.rows == rtn.rows && g.cols == rtn.cols &&
                  g.group == rtn.group && g.asym == rtn.asym && g.row_bytes == rtn.row_bytes);
            CHECK(memcmp(g.data, rtn.data, (size_t)rows * rtn.row_bytes) == 0);
            if (fmts[f].fmt == QB_FMT_I8) {
                CHECK(memcmp(g.row_scale, rtn.row_scale, (size_t)rows * sizeof(float)) == 0);
                CHECK(memcmp(g.row_sum, rtn.row_sum, (size_t)rows * sizeof(int32_t)) == 0);
            }
            qb_qtensor_release(&rtn);
            qb_qtensor_release(&g);
        }
    free(w);
    free(h);
}

static void test_act_order_perm(void)
{
    const int64_t k = 50;
    double *h = calloc((size_t)(k * k), sizeof *h);
    int64_t perm[50], seen[50] = {0}, inv[50];
    for (int64_t i = 0; i < k; i++)
        h[i * k + i] = (double)((i * 7) % 13); /* ties on purpose */
    qb_gptq_act_order(h, k, perm);
    for (int64_t i = 0; i < k; i++) {
        CHECK(perm[i] >= 0 && perm[i] < k);
        if (perm[i] >= 0 && perm[i] < k)
            seen[perm[i]]++;
    }
    for (int64_t i = 0; i < k; i++)
        CHECK(seen[i] == 1);
    for (int64_t i = 1; i < k; i++) {
        double a = h[perm[i - 1] * k + perm[i - 1]], b = h[perm[i] * k + perm[i]];
        CHECK(a > b || (a == b && perm[i - 1] < perm[i]));
    }
    /* the inverse permutation takes every column back */
    for (int64_t i = 0; i < k; i++)
        inv[perm[i]] = i;
    for (int64_t c = 0; c < k; c++)
        CHECK(perm[inv[c]] == c);
    free(h);
}

static void test_beats_rtn(void)
{
    const int64_t rows = 48, k = 256, n = 1024;
    float *x = malloc((size_t)(n * k) * sizeof *x), *w = malloc((size_t)(rows * k) * sizeof *w);
    double *h = malloc((size_t)(k * k) * sizeof *h);
    correlated_inputs(x, n, k);
    hessian(x, n, k, h);
    for (int64_t i = 0; i < rows * k; i++)
        w[i] = (float)(gauss() * 0.05);
    for (int f = 0; f < N_FMTS; f++) {
        struct qb_qtensor rtn, g, ga;
        struct qb_quant_opts qo = {.clip = -1};
        struct qb_gptq_opts go = QB_GPTQ_OPTS_INIT, goa = QB_GPTQ_OPTS_INIT;
        goa.act_order = 1;
        CHECK(qb_quantize(w, rows, k, fmts[f].fmt, fmts[f].group, fmts[f].asym, &qo, &rtn) == 0);
        CHECK(qb_gptq_quantize(w, rows, k, h, fmts[f].fmt, fmts[f].group, fmts[f].asym, &go, &g) ==
              0);
        CHECK(qb_gptq_quantize(w, rows, k, h, fmts[f].fmt, fmts[f].group, fmts[f].asym, &goa,
                               &ga) == 0);
        double er = out_err(x, n, w, rows, k, &rtn), eg = out_err(x, n, w, rows, k, &g);
        double ea = out_err(x, n, w, rows, k, &ga);
        printf("  %s g%d %s: output error rtn %.4g, gptq %.4g (%.0f%%), act-order %.4g (%.0f%%)\n",
               qb_fmt_name(fmts[f].fmt), fmts[f].group, fmts[f].asym ? "asym" : "sym", er, eg,
               100 * eg / er, ea, 100 * ea / er);
        CHECK(eg < er);
        CHECK(ea < er);
        qb_qtensor_release(&rtn);
        qb_qtensor_release(&g);
        qb_qtensor_release(&ga);
    }
    free(x);
    free(w);
    free(h);
}

/* qb_quantize_weighted: unit weights are RTN byte for byte; input-energy weights (diagonal
 * or the full block of H) lower the output error below RTN's clipping search. GPTQ with the
 * weighted clipping search still beats RTN. */
static void test_weighted_clip(void)
{
    const int64_t rows = 40, k = 128, n = 1024;
    float *x = malloc((size_t)(n * k) * sizeof *x), *w = malloc((size_t)(rows * k) * sizeof *w);
    float *ones = malloc((size_t)k * sizeof *ones), *diag = malloc((size_t)k * sizeof *diag);
    double *h = malloc((size_t)(k * k) * sizeof *h);
    correlated_inputs(x, n, k);
    hessian(x, n, k, h);
    for (int64_t i = 0; i < rows * k; i++)
        w[i] = (float)(gauss() * 0.05);
    for (int64_t i = 0; i < k; i++) {
        ones[i] = 1;
        diag[i] = (float)h[i * k + i];
    }
    for (int f = 1; f < N_FMTS; f++) {
        struct qb_qtensor rtn, t1, td, th, gw;
        struct qb_quant_opts qo = {.clip = 1};
        struct qb_gptq_opts go = QB_GPTQ_OPTS_INIT;
        go.clip = 1;
        go.clip_weighted = 1;
        if (fmts[f].group > 64)
            continue;
        CHECK(qb_quantize(w, rows, k, fmts[f].fmt, fmts[f].group, fmts[f].asym, &qo, &rtn) == 0);
        CHECK(qb_quantize_weighted(w, rows, k, ones, NULL, fmts[f].fmt, fmts[f].group, fmts[f].asym,
                                   1, &t1) == 0);
        CHECK(qb_quantize_weighted(w, rows, k, diag, NULL, fmts[f].fmt, fmts[f].group, fmts[f].asym,
                                   1, &td) == 0);
        CHECK(qb_quantize_weighted(w, rows, k, NULL, h, fmts[f].fmt, fmts[f].group, fmts[f].asym, 1,
                                   &th) == 0);
        CHECK(qb_gptq_quantize(w, rows, k, h, fmts[f].fmt, fmts[f].group, fmts[f].asym, &go, &gw) ==
              0);
        CHECK(memcmp(t1.data, rtn.data, (size_t)rows * rtn.row_bytes) == 0);
        double er = out_err(x, n, w, rows, k, &rtn), ed = out_err(x, n, w, rows, k, &td);
        double eh = out_err(x, n, w, rows, k, &th), eg = out_err(x, n, w, rows, k, &gw);
        printf("  %s g%d %s: output error rtn+clip %.4g, diag-weighted %.4g, H-weighted %.4g, "
               "gptq weighted %.4g\n",
               qb_fmt_name(fmts[f].fmt), fmts[f].group, fmts[f].asym ? "asym" : "sym", er, ed, eh,
               eg);
        CHECK(ed < er && eh < er && eg < er);
        qb_qtensor_release(&rtn);
        qb_qtensor_release(&t1);
        qb_qtensor_release(&td);
        qb_qtensor_release(&th);
        qb_qtensor_release(&gw);
    }
    {
        struct qb_qtensor t;
        CHECK(qb_quantize_weighted(w, rows, k, NULL, NULL, QB_FMT_I4, 32, 1, 1, &t) == QB_EINVAL);
        CHECK(qb_quantize_weighted(w, rows, k, ones, NULL, QB_FMT_I8, 32, 1, 1, &t) == QB_EINVAL);
    }
    free(x);
    free(w);
    free(ones);
    free(diag);
    free(h);
}

static void test_dead_and_errors(void)
{
    const int64_t rows = 4, k = 64;
    float w[4 * 64], row[64];
    double *h = calloc((size_t)(k * k), sizeof *h);
    struct qb_qtensor t;
    for (int64_t i = 0; i < rows * k; i++)
        w[i] = (float)gauss();
    for (int64_t i = 0; i < k; i++)
        h[i * k + i] = i % 5 == 0 ? 0 : 1; /* every fifth input dead */
    h[1 * k + 2] = h[2 * k + 1] = 0.5;
    CHECK(qb_gptq_quantize(w, rows, k, h, QB_FMT_I4, 32, 0, NULL, &t) == 0);
    for (int64_t r = 0; r < rows; r++) {
        qb_dequantize_row(&t, r, row);
        for (int64_t i = 0; i < k; i += 5)
            CHECK(row[i] == 0); /* symmetric grids hold 0 exactly */
    }
    qb_qtensor_release(&t);
    /* every input dead: all zero, no failure */
    memset(h, 0, (size_t)(k * k) * sizeof *h);
    CHECK(qb_gptq_quantize(w, rows, k, h, QB_FMT_I8, 0, 0, NULL, &t) == 0);
    qb_qtensor_release(&t);
    CHECK(qb_gptq_quantize(w, rows, k, h, QB_FMT_F16, 0, 0, NULL, &t) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "f16") != NULL);
    CHECK(qb_gptq_quantize(w, rows, k, h, QB_FMT_I4, 48, 0, NULL, &t) == QB_EINVAL);
    CHECK(qb_gptq_quantize(w, rows, 48, h, QB_FMT_I4, 32, 0, NULL, &t) == QB_EINVAL);
    w[70] = NAN;
    CHECK(qb_gptq_quantize(w, rows, k, h, QB_FMT_I4, 32, 0, NULL, &t) == QB_ERANGE);
    CHECK(strstr(qb_errmsg(), "row 1") != NULL);
    CHECK(t.data == NULL);
    free(h);
}

int main(void)
{
    RUN(test_hinv_chol);
    RUN(test_diagonal_is_rtn);
    RUN(test_act_order_perm);
    RUN(test_beats_rtn);
    RUN(test_weighted_clip);
    RUN(test_dead_and_errors);
    return check_summary();
}
