/* generate: the generation loop. Prefill a prompt, then pick one token at a time (greedy or
 * sampled, collector/engine/sampler.h), decode it and feed it back, until the token budget,
 * the context, an end-of-sequence token, a stop string or the caller says stop. Shared by
 * `qbrief generate` (collector/cli/cmd_generate.c), the tools and the tests, so that they all
 * run the same loop; it never prints: pieces stream through a callback.
 *
 *     static int on_token(void *ctx, const struct qb_gen_token *t)
 *     {
 *         fwrite(t->piece, 1, t->n_piece, stdout);     // stream as it comes
 *         return 0;                                    // 1: stop here; < 0: fail
 *     }
 *     ...
 *     struct qb_gen_opts o = QB_GEN_OPTS_INIT;         // 256 tokens, greedy
 *     struct qb_gen_result g;
 *     o.max_tokens = 100, o.temp = 0.8f, o.stop = "\n\n";
 *     qb_engine_reset(e);                              // a fresh context (or continue one)
 *     if ((rc = qb_generate(e, m->tok, m->cfg.vocab_size, ids, n_ids, &o, on_token, NULL,
 *                           &g)) < 0)
 *         return rc;
 *     printf("%lld tokens: %s\n", (long long)g.n_ids, g.text);  // text cut before the stop
 *     qb_gen_result_release(&g);
 *
 * The loop, as llama2.c's run.c generates: the prompt goes through the engine in one forward
 * (prefill) at the engine's current position; then, while tokens remain, the next token is
 * chosen from the last logits; an EOS or BOS token ends the text (it is not kept, unless
 * ignore_eos); otherwise the token is kept, decoded against the one before it (the prompt's
 * last for the first), handed to the callback, and, unless it was the last one allowed or a
 * stop came, fed to the engine for the next logits. So when the loop ends on the length, a
 * stop string or the callback, the last kept token is not in the engine yet (a later call
 * continuing the context passes it as its prompt); when it ends on EOS, every kept token
 * is. */
#ifndef QB_GENERATE_H
#define QB_GENERATE_H

#include <stddef.h>
#include <stdint.h>

struct qb_engine;
struct qb_tokenizer;
struct qb_sampler;

struct qb_gen_opts {
    int64_t max_tokens; /* new tokens at most; fewer when the context fills up */
    float temp, top_p;  /* temperature 0: greedy (argmax); else top-p sampling (sampler.h) */
    uint64_t seed;      /* of the sampling generator */
    const char *stop;   /* NULL or "": none; else stop once the text contains it */
    int ignore_eos;     /* 1: EOS and BOS are kept and fed back like any other token */
    /* borrowed, may be NULL: picks tokens instead of a sampler made from temp, top_p and
     * seed, and keeps its generator's state across calls (one stream over many texts) */
    struct qb_sampler *sampler;
};
#define QB_GEN_OPTS_INIT                                                                           \
    {                                                                                              \
        256, 0.0f, 0.9f, 42, NULL, 0, NULL                                                         \
    }

/* One kept token, as the callback sees it. */
struct qb_gen_token {
    int32_t id;
    int64_t index;     /* 0 for the first generated token */
    const char *piece; /* its text (qb_tok_decode_piece against the token before; NUL-ended;
                          borrowed until the callback returns); "" without a tokenizer */
    size_t n_piece;
};

/* Called once per kept token, in order. Returns 0 to go on, 1 to stop after this token, or a
 * negative QB_E* code, which qb_generate returns (the caller set the message). */
typedef int (*qb_gen_token_fn)(void *ctx, const struct qb_gen_token *t);

enum qb_gen_end {
    QB_GEN_END_LENGTH, /* max_tokens or the context reached */
    QB_GEN_END_EOS,    /* an EOS or BOS token was chosen (not kept) */
    QB_GEN_END_STOP,   /* the text came to contain opts->stop */
    QB_GEN_END_CALLER, /* the callback returned 1 */
};

struct qb_gen_result {
    int32_t *ids; /* (n_ids) the kept tokens; owned */
    int64_t n_ids;
    char *text; /* their pieces joined, NUL-ended, cut before the stop string; owned.
                   The callback saw every piece, the stop string's included. */
    size_t n_text;
    enum qb_gen_end end;
    double prefill_s; /* wall time of the prompt's forward */
    double decode_s;  /* wall time of the rest: choosing, decoding, callbacks, forwards */
};

/* Generates after prompt (n_prompt >= 1 tokens) on e, from its current position (reset it for
 * a fresh context). tok (borrowed, may be NULL: no EOS/BOS ends, no text) decodes the
 * tokens; vocab is the logits' width (the model's vocab_size). cb may be NULL. *out is
 * filled (release with qb_gen_result_release) on success and left empty on failure.
 * QB_EINVAL for an empty prompt or bad options, QB_ERANGE when the prompt leaves no room in
 * the context, QB_ENOMEM, or what the engine or the callback returned. */
int qb_generate(struct qb_engine *e, const struct qb_tokenizer *tok, int64_t vocab,
                const int32_t *prompt, int64_t n_prompt, const struct qb_gen_opts *opts,
                qb_gen_token_fn cb, void *ctx, struct qb_gen_result *out);

/* Frees what qb_generate put in r and empties it; an empty r is a no-op. */
void qb_gen_result_release(struct qb_gen_result *r);

#endif
