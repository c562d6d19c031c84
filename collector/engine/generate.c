/* generate: the generation loop (see generate.h). It must keep choosing, keeping and feeding
 * tokens in the order `qbrief generate` always has (llama2.c's run.c), so that a greedy run
 * from BOS on stories260K prints ../shared/models/stories260K/expected_greedy_200steps.txt
 * exactly and seeded sampling stays reproducible. */
#include "collector/engine/generate.h"

#include "collector/engine/engine.h"
#include "collector/engine/sampler.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One call's state: the options, the token picker, scratch and the growing result. */
struct gen {
    struct qb_engine *e;
    const struct qb_tokenizer *tok;
    int64_t vocab;
    const struct qb_gen_opts *o;
    qb_gen_token_fn cb;
    void *ctx;
    struct qb_sampler own, *smp;
    float *logits; /* (vocab) a copy of the engine's, which the sampler may change */
    char *piece;   /* the decoded piece of the token being kept, NUL-ended */
    size_t piece_cap, ids_cap, text_cap, stop_len;
    struct qb_gen_result r;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Grows *buf (of *cap elements of size each) to hold at least need. */
static int grow(void **buf, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap ? *cap : 64;
    void *p;
    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if (!(p = realloc(*buf, n * size)))
        return qb_err(QB_ENOMEM, "out of memory while generating (%zu items)", need);
    *buf = p;
    *cap = n;
    return 0;
}

static int setup(struct gen *g)
{
    int rc;
    if (g->o->sampler) {
        g->smp = g->o->sampler;
    } else {
        rc = qb_sampler_init(&g->own, g->vocab, g->o->temp, g->o->top_p, g->o->seed);
        if (rc < 0)
            return rc;
        g->smp = &g->own;
    }
    g->stop_len = g->o->stop ? strlen(g->o->stop) : 0;
    if (!(g->logits = malloc((size_t)g->vocab * sizeof *g->logits)) ||
        grow((void **)&g->piece, &g->piece_cap, 256, 1) < 0 ||
        grow((void **)&g->r.text, &g->text_cap, 256, 1) < 0)
        return qb_err(QB_ENOMEM, "out of memory for generation");
    g->r.text[0] = 0;
    return 0;
}

/* piece = the text of id after prev, NUL-ended; its length in *n. */
static int decode(struct gen *g, int32_t prev, int32_t id, size_t *n)
{
    *n = 0;
    if (g->tok) {
        *n = qb_tok_decode_piece(g->tok, prev, id, g->piece, g->piece_cap);
        if (*n + 1 > g->piece_cap) {
            if (grow((void **)&g->piece, &g->piece_cap, *n + 1, 1) < 0)
                return QB_ENOMEM;
            qb_tok_decode_piece(g->tok, prev, id, g->piece, g->piece_cap);
        }
    }
    g->piece[*n] = 0;
    return 0;
}

/* Keeps id: appends it and its piece, tells the callback, looks for the stop string.
 * 1 when generation ends here (g->r.end says why), 0 to go on, < 0 on failure. */
static int keep(struct gen *g, int32_t prev, int32_t id)
{
    struct qb_gen_token t = {.id = id, .index = g->r.n_ids, .piece = g->piece};
    size_t from = g->r.n_text;
    int rc;
    if ((rc = grow((void **)&g->r.ids, &g->ids_cap, (size_t)g->r.n_ids + 1, sizeof(int32_t))) < 0 ||
        (rc = decode(g, prev, id, &t.n_piece)) < 0 ||
        (rc = grow((void **)&g->r.text, &g->text_cap, from + t.n_piece + 1, 1)) < 0)
        return rc;
    g->r.ids[g->r.n_ids++] = id;
    memcpy(g->r.text + from, t.piece, t.n_piece + 1);
    g->r.n_text += t.n_piece;
    if (g->cb && (rc = g->cb(g->ctx, &t)) != 0) {
        g->r.end = QB_GEN_END_CALLER;
        return rc < 0 ? rc : 1;
    }
    if (g->stop_len) {
        /* only where the new piece can complete it; memmem: pieces may hold NUL bytes */
        size_t start = from >= g->stop_len - 1 ? from - (g->stop_len - 1) : 0;
        const char *hit = memmem(g->r.text + start, g->r.n_text - start, g->o->stop, g->stop_len);
        if (hit) {
            g->r.n_text = (size_t)(hit - g->r.text);
            g->r.text[g->r.n_text] = 0;
            g->r.end = QB_GEN_END_STOP;
            return 1;
        }
    }
    return 0;
}

/* Up to n_gen tokens after the prefill; prev is the prompt's last token. */
static int loop(struct gen *g, int32_t prev, int64_t n_gen)
{
    int32_t eos = g->tok ? qb_tok_eos(g->tok) : -1, bos = g->tok ? qb_tok_bos(g->tok) : -1;
    int rc;
    g->r.end = QB_GEN_END_LENGTH;
    while (g->r.n_ids < n_gen) {
        int32_t next;
        memcpy(g->logits, qb_engine_logits(g->e), (size_t)g->vocab * sizeof *g->logits);
        next = qb_sampler_next(g->smp, g->logits);
        if (!g->o->ignore_eos && (next == eos || next == bos)) {
            g->r.end = QB_GEN_END_EOS;
            break;
        }
        if ((rc = keep(g, prev, next)) != 0)
            return rc < 0 ? rc : 0;
        if (g->r.n_ids == n_gen)
            break;
        if ((rc = qb_engine_forward(g->e, &next, 1, NULL)) < 0)
            return rc;
        prev = next;
    }
    return 0;
}

int qb_generate(struct qb_engine *e, const struct qb_tokenizer *tok, int64_t vocab,
                const int32_t *prompt, int64_t n_prompt, const struct qb_gen_opts *opts,
                qb_gen_token_fn cb, void *ctx, struct qb_gen_result *out)
{
    static const struct qb_gen_opts defaults = QB_GEN_OPTS_INIT;
    struct gen g = {.e = e, .tok = tok, .vocab = vocab, .o = opts ? opts : &defaults};
    int64_t pos, room;
    double t0, t1;
    int rc;

    g.cb = cb;
    g.ctx = ctx;
    if (out)
        memset(out, 0, sizeof *out);
    if (!e || !out || !prompt || n_prompt < 1 || vocab < 1 || g.o->max_tokens < 0)
        return qb_err(QB_EINVAL, "generate: %s",
                      !prompt || n_prompt < 1 ? "an empty prompt"
                      : g.o->max_tokens < 0   ? "a negative token count"
                                              : "a missing argument");
    pos = qb_engine_pos(e);
    room = qb_engine_max_ctx(e) - pos;
    if (n_prompt >= room) {
        if (pos == 0)
            return qb_err(QB_ERANGE, "the prompt has %lld tokens; the context holds %lld",
                          (long long)n_prompt, (long long)room);
        return qb_err(QB_ERANGE, "the prompt has %lld tokens; the context has room for %lld more",
                      (long long)n_prompt, (long long)room);
    }
    if ((rc = setup(&g)) < 0)
        goto out;
    t0 = now_s();
    if ((rc = qb_engine_forward(e, prompt, n_prompt, NULL)) < 0)
        goto out;
    t1 = now_s();
    room -= n_prompt; /* the last kept token is not fed: it may take the last position */
    rc = loop(&g, prompt[n_prompt - 1], g.o->max_tokens < room ? g.o->max_tokens : room);
    g.r.prefill_s = t1 - t0;
    g.r.decode_s = now_s() - t1;
out:
    if (rc == 0) {
        *out = g.r;
        g.r = (struct qb_gen_result){0};
    }
    qb_gen_result_release(&g.r);
    qb_sampler_release(&g.own);
    free(g.logits);
    free(g.piece);
    return rc;
}

void qb_gen_result_release(struct qb_gen_result *r)
{
    if (!r)
        return;
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}
