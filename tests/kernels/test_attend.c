/* test_attend: the attention kernel (kernels/attend.h) of every instruction set this CPU has
 * against the scalar reference, to the bit, on odd head sizes and lengths (1, 2, 3, 5, 7, 15,
 * 16, 17, 31, 33 ...), with odd strides; the reference against an independent
 * double-precision softmax attention; the polynomial exp against expf; and the variant a CPU
 * backend picks following --isa (qb_kernels_init). */
#include "kernels/attend.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"
#include "tests/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int64_t head_dims[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 32, 33, 48, 64, 65, 128};
static const int64_t lengths[] = {1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 257};
#define LEN(a) (int)(sizeof(a) / sizeof((a)[0]))

static const char *const isas[] = {"avx2", "avx512"};

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static float frand(uint32_t *s) /* uniform in [-1, 1) */
{
    return (float)(rnd(s) >> 8) / 8388608.0f - 1.0f;
}

/* One problem: q (hd), keys transposed kt (hd, ld), values vc (len, stride), random, with
 * ld and stride wider than len and hd so that a kernel reading past them is caught by the
 * values (and by ASan at the end of the buffers). */
struct prob {
    int64_t hd, len, ld, stride;
    float *q, *kt, *vc;
};

static int prob_init(struct prob *p, int64_t hd, int64_t len, uint32_t *s)
{
    p->hd = hd;
    p->len = len;
    p->ld = len + 3;
    p->stride = hd + 5;
    p->q = malloc((size_t)hd * sizeof *p->q);
    p->kt = malloc((size_t)(hd * p->ld) * sizeof *p->kt);
    p->vc = malloc((size_t)(len * p->stride) * sizeof *p->vc);
    if (!p->q || !p->kt || !p->vc)
        return -1;
    for (int64_t i = 0; i < hd; i++)
        p->q[i] = 2 * frand(s);
    for (int64_t i = 0; i < hd * p->ld; i++)
        p->kt[i] = 2 * frand(s);
    for (int64_t i = 0; i < len * p->stride; i++)
        p->vc[i] = frand(s);
    return 0;
}

static void prob_free(struct prob *p)
{
    free(p->q);
    free(p->kt);
    free(p->vc);
}

/* out (hd) in double: softmax over p of scale * q . k_p, applied to v_p */
static void attend_double(const struct prob *p, double scale, double *out)
{
    double *w = malloc((size_t)p->len * sizeof *w), mx = -INFINITY, sum = 0;
    if (!w)
        return;
    for (int64_t t = 0; t < p->len; t++) {
        double d = 0;
        for (int64_t i = 0; i < p->hd; i++)
            d += (double)p->q[i] * p->kt[i * p->ld + t];
        w[t] = d * scale;
        mx = w[t] > mx ? w[t] : mx;
    }
    for (int64_t t = 0; t < p->len; t++)
        sum += w[t] = exp(w[t] - mx);
    for (int64_t i = 0; i < p->hd; i++) {
        double a = 0;
        for (int64_t t = 0; t < p->len; t++)
            a += w[t] * p->vc[t * p->stride + i];
        out[i] = a / sum;
    }
    free(w);
}

/* The reference agrees with double precision; every variant with the reference, exactly. */
static void test_variants_match_ref(void)
{
    uint32_t seed = 0x1234567;
    int n_isa = 0, n_bad = 0;
    double worst = 0;
    for (int a = 0; a < LEN(isas); a++) {
        if (qb_kernels_init(isas[a]) < 0) {
            printf("  %s: not on this cpu\n", isas[a]);
            continue;
        }
        n_isa++;
    }
    for (int h = 0; h < LEN(head_dims); h++)
        for (int l = 0; l < LEN(lengths); l++) {
            struct prob p;
            const float scale = 1.0f / sqrtf((float)head_dims[h]);
            float *s = malloc((size_t)lengths[l] * sizeof *s);
            float *ref = malloc((size_t)head_dims[h] * sizeof *ref);
            float *got = malloc((size_t)head_dims[h] * sizeof *got);
            double *dbl = malloc((size_t)head_dims[h] * sizeof *dbl);
            if (!s || !ref || !got || !dbl || prob_init(&p, head_dims[h], lengths[l], &seed) < 0) {
                CHECK(0);
                return;
            }
            qb_attend_ref(p.q, p.kt, p.ld, p.vc, p.stride, p.len, p.hd, scale, s, ref);
            attend_double(&p, scale, dbl);
            for (int64_t i = 0; i < p.hd; i++) {
                double e = fabs(ref[i] - dbl[i]);
                worst = e > worst ? e : worst;
            }
            for (int a = 0; a < LEN(isas); a++) {
                if (qb_kernels_init(isas[a]) < 0)
                    continue;
                memset(got, 0xff, (size_t)p.hd * sizeof *got);
                qb_attend_for(isas[a])(p.q, p.kt, p.ld, p.vc, p.stride, p.len, p.hd, scale, s, got);
                if (memcmp(got, ref, (size_t)p.hd * sizeof *got)) {
                    n_bad++;
                    fprintf(stderr, "  %s differs from ref at hd %lld, len %lld\n", isas[a],
                            (long long)p.hd, (long long)p.len);
                }
            }
            prob_free(&p);
            free(s);
            free(ref);
            free(got);
            free(dbl);
        }
    qb_kernels_init(NULL);
    printf("  %d simd variants on %d x %d shapes: %d differ from ref; ref vs double %.3g\n", n_isa,
           LEN(head_dims), LEN(lengths), n_bad, worst);
    CHECK(n_bad == 0);
    CHECK(worst < 1e-5);
}

/* The grouped kernel (several query heads on one KV head) against the reference per head,
 * exactly: head counts 1..9 and 12 (chunks of 8, 4, 2, 1 heads), odd head sizes and lengths,
 * the heads' queries, scratch rows and outputs at odd strides. */
static void test_heads_match_ref(void)
{
    static const int64_t hds[] = {1, 7, 16, 17, 33, 64, 65};
    static const int64_t lens[] = {1, 2, 5, 15, 16, 17, 31, 32, 33, 63, 65, 129, 257};
    static const int64_t nhs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12};
    qb_attend_heads_fn f = qb_attend_heads_for("avx512");
    uint32_t seed = 0x7654321;
    int n_bad = 0, n = 0;
    if (!f || qb_kernels_init("avx512") < 0) {
        printf("  grouped heads: skipped, the CPU has no AVX-512\n");
        qb_kernels_init(NULL);
        return;
    }
    for (int h = 0; h < LEN(hds); h++)
        for (int l = 0; l < LEN(lens); l++)
            for (int k = 0; k < LEN(nhs); k++) {
                struct prob p;
                const int64_t hd = hds[h], len = lens[l], nh = nhs[k];
                const int64_t qs = hd + 3, ss = len + 5, os = hd + 7;
                const float scale = 1.0f / sqrtf((float)hd);
                float *q = malloc((size_t)(nh * qs) * sizeof *q);
                float *s = malloc((size_t)(nh * ss) * sizeof *s);
                float *ref = malloc((size_t)hd * sizeof *ref);
                float *got = malloc((size_t)(nh * os) * sizeof *got);
                if (!q || !s || !ref || !got || prob_init(&p, hd, len, &seed) < 0) {
                    CHECK(0);
                    return;
                }
                for (int64_t i = 0; i < nh * qs; i++)
                    q[i] = 2 * frand(&seed);
                memset(got, 0xff, (size_t)(nh * os) * sizeof *got);
                f(q, qs, nh, p.kt, p.ld, p.vc, p.stride, len, hd, scale, s, ss, got, os);
                for (int64_t j = 0; j < nh; j++) {
                    qb_attend_ref(q + j * qs, p.kt, p.ld, p.vc, p.stride, len, hd, scale, s, ref);
                    n++;
                    if (memcmp(got + j * os, ref, (size_t)hd * sizeof *ref)) {
                        n_bad++;
                        fprintf(stderr,
                                "  grouped head %lld of %lld differs at hd %lld, len %lld\n",
                                (long long)j, (long long)nh, (long long)hd, (long long)len);
                    }
                }
                prob_free(&p);
                free(q);
                free(s);
                free(ref);
                free(got);
            }
    qb_kernels_init(NULL);
    printf("  grouped heads: %d heads, %d differ from ref\n", n, n_bad);
    CHECK(n_bad == 0);
}

/* qb_attend_exp against expf over [QB_ATTEND_EXP_MIN, 0] (what softmax passes it), 2^22
 * points evenly spaced plus every float in [-1e-3, 0]: the largest relative error is
 * printed and held under 3 ulp of 1 (3.6e-7); below the range it gives 0. */
static void test_exp_accuracy(void)
{
    const int n = 1 << 22;
    double worst = 0;
    float at = 0;
    for (int i = 0; i <= n; i++) {
        const float x = QB_ATTEND_EXP_MIN * (float)i / (float)n;
        const double want = expf(x), e = fabs(qb_attend_exp(x) - want) / want;
        if (e > worst) {
            worst = e;
            at = x;
        }
    }
    for (float x = -1e-3f; x < 0; x = nextafterf(x, 0)) {
        const double want = expf(x), e = fabs(qb_attend_exp(x) - want) / want;
        if (e > worst) {
            worst = e;
            at = x;
        }
    }
    printf("  qb_attend_exp vs expf on [%g, 0]: max relative error %.3g (at %g)\n",
           (double)QB_ATTEND_EXP_MIN, worst, (double)at);
    CHECK(worst < 3.6e-7);
    CHECK(qb_attend_exp(0.0f) == 1.0f);
    CHECK(qb_attend_exp(-0.0f) == 1.0f);
    CHECK(qb_attend_exp(QB_ATTEND_EXP_MIN) > 0);
    CHECK(qb_attend_exp(-88.0f) == 0);
    CHECK(qb_attend_exp(-INFINITY) == 0);
    CHECK(qb_attend_exp(NAN) == 0);
}

/* --isa reaches attention: the variant follows the choice in force. */
static void test_follows_isa(void)
{
    CHECK(qb_kernels_init("ref") == 0);
    CHECK(qb_attend_for(qb_kernels()->isa) == qb_attend_ref);
    if (qb_kernels_init("avx2") == 0)
        CHECK(qb_attend_for(qb_kernels()->isa) == qb_attend_avx2);
    if (qb_kernels_init("avx512") == 0)
        CHECK(qb_attend_for(qb_kernels()->isa) == qb_attend_avx512);
    CHECK(qb_attend_for("sse9") == qb_attend_ref);
    qb_kernels_init(NULL);
}

int main(void)
{
    RUN(test_variants_match_ref);
    RUN(test_heads_match_ref);
    RUN(test_exp_accuracy);
    RUN(test_follows_isa);
    return check_summary();
}
