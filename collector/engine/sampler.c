/* sampler: greedy and temperature/top-p sampling (see sampler.h). */
#include "collector/engine/sampler.h"

#include "kernels/base/err.h"

#include <math.h>
#include <stdlib.h>

struct qb_prob_index {
    float p;
    int32_t i;
};

int qb_sampler_init(struct qb_sampler *s, int64_t vocab, float temp, float top_p, uint64_t seed)
{
    s->vocab = vocab;
    s->temp = temp;
    s->top_p = top_p;
    s->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    s->buf = NULL;
    if (temp > 0 && top_p > 0 && top_p < 1 && !(s->buf = malloc((size_t)vocab * sizeof *s->buf)))
        return qb_err(QB_ENOMEM, "out of memory for the sampler");
    return 0;
}

void qb_sampler_release(struct qb_sampler *s)
{
    free(s->buf);
    s->buf = NULL;
}

int32_t qb_argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int32_t)best;
}

/* xorshift64*: uniform float in [0, 1) */
static float uniform(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (float)((*state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int by_prob_desc(const void *a, const void *b)
{
    float pa = ((const struct qb_prob_index *)a)->p, pb = ((const struct qb_prob_index *)b)->p;
    return (pa < pb) - (pa > pb);
}

int32_t qb_sampler_next(struct qb_sampler *s, float *logits)
{
    float mx, sum = 0, r, cdf = 0;
    int64_t n = s->vocab;

    if (s->temp <= 0)
        return qb_argmax(logits, n);
    mx = logits[qb_argmax(logits, n)];
    for (int64_t i = 0; i < n; i++) {
        logits[i] = expf((logits[i] - mx) / s->temp);
        sum += logits[i];
    }
    for (int64_t i = 0; i < n; i++)
        logits[i] /= sum;
    r = uniform(&s->rng);
    if (!s->buf) {
        for (int64_t i = 0; i < n; i++) {
            cdf += logits[i];
            if (r < cdf)
                return (int32_t)i;
        }
        return (int32_t)(n - 1);
    }
    /* top-p: keep the smallest set of tokens whose probability reaches top_p. Tokens below
     * (1 - top_p) / (n - 1) cannot be in it, which keeps the sort short. */
    int64_t m = 0;
    float cutoff = (1.0f - s->top_p) / (float)(n > 1 ? n - 1 : 1), kept = 0;
    for (int64_t i = 0; i < n; i++)
        if (logits[i] >= cutoff)
            s->buf[m++] = (struct qb_prob_index){logits[i], (int32_t)i};
    qsort(s->buf, (size_t)m, sizeof *s->buf, by_prob_desc);
    int64_t last = m - 1;
    for (int64_t i = 0; i < m; i++) {
        kept += s->buf[i].p;
        if (kept > s->top_p) {
            last = i;
            break;
        }
    }
    r *= kept;
    for (int64_t i = 0; i <= last; i++) {
        cdf += s->buf[i].p;
        if (r < cdf)
            return s->buf[i].i;
    }
    return s->buf[last].i;
}
