/* sampler: picks the next token from logits: greedy (temperature 0) or temperature +
 * nucleus (top-p) sampling with a seeded generator, so runs are reproducible.
 *
 *     struct qb_sampler s;
 *     qb_sampler_init(&s, vocab, 0.8f, 0.9f, 42);
 *     int32_t next = qb_sampler_next(&s, logits);   // may modify logits in place
 *     qb_sampler_release(&s);
 */
#ifndef QB_SAMPLER_H
#define QB_SAMPLER_H

#include <stdint.h>

struct qb_sampler {
    int64_t vocab;
    float temp, top_p;
    uint64_t rng;
    struct qb_prob_index *buf; /* (vocab) scratch for top-p */
};

int qb_sampler_init(struct qb_sampler *s, int64_t vocab, float temp, float top_p, uint64_t seed);
void qb_sampler_release(struct qb_sampler *s);
int32_t qb_sampler_next(struct qb_sampler *s, float *logits);

/* Index of the largest value (the first one on ties). */
int32_t qb_argmax(const float *v, int64_t n);

#endif
