/* engine: the f32 reference forward pass of a Llama-family decoder (Llama, Mistral, Qwen2),
 * with a KV cache, batched prefill and one-token decode. Matches the Hugging Face
 * LlamaForCausalLM forward (RMSNorm, RoPE, grouped-query attention, SwiGLU) and
 * llama2.c's run.c to float rounding.
 *
 *     struct qb_engine *e;
 *     qb_engine_new(model, 0, &e);               // 0: the model's max_seq_len
 *     qb_engine_forward(e, prompt, n, NULL);      // prefill; last logits in qb_engine_logits(e)
 *     qb_engine_forward(e, &next, 1, NULL);       // decode one token
 *     float *all = malloc(n * vocab * 4);
 *     qb_engine_reset(e); qb_engine_forward(e, ids, n, all); // logits of every position (n, vocab)
 *     qb_engine_free(e);
 *
 * The engine borrows the model, which must outlive it. Threads come from OpenMP
 * (omp_set_num_threads). */
#ifndef QB_ENGINE_H
#define QB_ENGINE_H

#include <stdint.h>

struct qb_model;
struct qb_engine;

struct qb_qmodel;

/* An engine over the model's own f32 weights. */
int qb_engine_new(const struct qb_model *m, int64_t max_ctx, struct qb_engine **out);
/* An engine over one quantized config; qm (and its model) must outlive the engine. */
int qb_engine_new_q(const struct qb_qmodel *qm, int64_t max_ctx, struct qb_engine **out);
void qb_engine_free(struct qb_engine *e);

/* Forgets the KV cache: the next forward starts at position 0. */
void qb_engine_reset(struct qb_engine *e);
/* Drops cached positions >= pos (pos <= current position), e.g. to rescore from a shared prefix. */
int qb_engine_truncate(struct qb_engine *e, int64_t pos);
int64_t qb_engine_pos(const struct qb_engine *e);
int64_t qb_engine_max_ctx(const struct qb_engine *e);

/* Runs tokens[0..n) at positions pos..pos+n-1. When logits is non-NULL it receives the
 * logits of every one of the n positions, (n, vocab_size) row-major. QB_ERANGE when the
 * context would overflow, QB_EINVAL for a token id outside the vocabulary. */
int qb_engine_forward(struct qb_engine *e, const int32_t *tokens, int64_t n, float *logits);

/* Logits (vocab_size) of the last position processed. Borrowed; overwritten by the next
 * forward. */
const float *qb_engine_logits(const struct qb_engine *e);

#endif
