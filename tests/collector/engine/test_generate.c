/* test_generate: the library's generation loop (collector/engine/generate.h) on stories260K:
 * greedy from BOS reproduces llama2.c's reference text; pieces stream through the callback in
 * order and join into the text; the callback, a stop string, max_tokens and the context end
 * it where they should; sampling with a borrowed sampler is the plain sample-and-feed loop,
 * token for token; a context continued over two calls is one call's; bad arguments are
 * refused. Skips without ../shared/models. */
#include "collector/engine/engine.h"
#include "collector/engine/generate.h"
#include "collector/engine/sampler.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

#define BIN "models/stories260K/stories260K.bin"
#define TOK "models/stories260K/tok512.bin"
#define EXPECTED "models/stories260K/expected_greedy_200steps.txt"

static struct qb_model *m;

static struct qb_engine *engine(int64_t max_ctx)
{
    struct qb_engine *e = NULL;
    CHECK(qb_engine_new(m, max_ctx, &e) == 0);
    return e;
}

static int32_t *encode(const char *text, int64_t *n)
{
    int32_t *ids = NULL;
    CHECK(qb_tok_encode(m->tok, text, strlen(text), QB_TOK_DEFAULT, &ids, n) == 0);
    return ids;
}

static void test_greedy_from_bos_is_the_reference(void)
{
    struct qb_engine *e = engine(0);
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    struct qb_gen_result g;
    int32_t bos = qb_tok_bos(m->tok);
    char *want = NULL;
    size_t n_want = 0;
    FILE *f = fopen(qb_shared_path(EXPECTED), "rb");
    CHECK(f && (want = malloc(1 << 16)) && (n_want = fread(want, 1, 1 << 16, f)) > 0);
    if (f)
        fclose(f);
    o.max_tokens = 200;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, &bos, 1, &o, NULL, NULL, &g) == 0);
    CHECK(g.n_text == n_want && want && memcmp(g.text, want, n_want) == 0);
    CHECK(g.text[g.n_text] == 0 && g.prefill_s >= 0 && g.decode_s >= 0);
    qb_gen_result_release(&g);
    qb_gen_result_release(&g); /* released twice: a no-op */
    free(want);
    qb_engine_free(e);
}

struct seen {
    char text[8192];
    size_t n;
    int64_t calls, stop_at;
    int32_t ids[512];
    int fail_with;
};

static int on_token(void *ctx, const struct qb_gen_token *t)
{
    struct seen *s = ctx;
    if (t->index != s->calls || strlen(t->piece) != t->n_piece || s->n + t->n_piece >= 8192)
        return QB_EINVAL;
    memcpy(s->text + s->n, t->piece, t->n_piece);
    s->n += t->n_piece;
    s->ids[s->calls++] = t->id;
    if (s->fail_with)
        return s->fail_with;
    return s->calls == s->stop_at;
}

static void test_callback_streams_and_stops(void)
{
    struct qb_engine *e = engine(0);
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    struct qb_gen_result g;
    struct seen s = {.stop_at = -1};
    int64_t n;
    int32_t *ids = encode("Once upon a time", &n);
    o.max_tokens = 60;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, n, &o, on_token, &s, &g) == 0);
    CHECK(g.end == QB_GEN_END_LENGTH && g.n_ids == 60 && s.calls == 60);
    CHECK(s.n == g.n_text && memcmp(s.text, g.text, s.n) == 0);
    CHECK(memcmp(s.ids, g.ids, sizeof(int32_t) * 60) == 0);
    CHECK(qb_engine_pos(e) == n + 59); /* the last kept token is not fed */
    qb_gen_result_release(&g);

    /* the callback ends it after its 5th token */
    struct seen s5 = {.stop_at = 5};
    qb_engine_reset(e);
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, n, &o, on_token, &s5, &g) == 0);
    CHECK(g.end == QB_GEN_END_CALLER && g.n_ids == 5 && s5.calls == 5);
    CHECK(memcmp(g.ids, s.ids, sizeof(int32_t) * 5) == 0);
    qb_gen_result_release(&g);

    /* a failure in the callback is the call's, with nothing returned */
    struct seen sf = {.stop_at = -1, .fail_with = QB_EIO};
    qb_engine_reset(e);
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, n, &o, on_token, &sf, &g) == QB_EIO);
    CHECK(g.ids == NULL && g.text == NULL && g.n_ids == 0);
    free(ids);
    qb_engine_free(e);
}

static void test_stop_string(void)
{
    struct qb_engine *e = engine(0);
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    struct qb_gen_result all, g;
    int64_t n;
    int32_t *ids = encode("Once upon a time", &n);
    o.max_tokens = 100;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, n, &o, NULL, NULL, &all) == 0);
    const char *hit = strstr(all.text, "Lily");
    CHECK(hit != NULL);
    o.stop = "Lily";
    qb_engine_reset(e);
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, n, &o, NULL, NULL, &g) == 0);
    CHECK(g.end == QB_GEN_END_STOP && hit && g.n_text == (size_t)(hit - all.text));
    CHECK(memcmp(g.text, all.text, g.n_text) == 0 && g.text[g.n_text] == 0);
    CHECK(g.n_ids < all.n_ids && memcmp(g.ids, all.ids, (size_t)g.n_ids * sizeof(int32_t)) == 0);
    qb_gen_result_release(&g);
    qb_gen_result_release(&all);
    free(ids);
    qb_engine_free(e);
}

/* A context of 16: a 5-token prompt leaves room for 11 tokens (the last is never fed); a
 * prompt that fills it is refused. */
static void test_context_limit(void)
{
    struct qb_engine *e = engine(16);
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    struct qb_gen_result g;
    int32_t ids[16];
    o.temp = 1.0f, o.top_p = 1.0f, o.ignore_eos = 1;
    for (int i = 0; i < 16; i++)
        ids[i] = 100 + i;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, 5, &o, NULL, NULL, &g) == 0);
    CHECK(g.n_ids == 11 && g.end == QB_GEN_END_LENGTH && qb_engine_pos(e) == 15);
    qb_gen_result_release(&g);
    qb_engine_reset(e);
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, 16, &o, NULL, NULL, &g) == QB_ERANGE);
    CHECK(strstr(qb_errmsg(), "context") != NULL);
    qb_engine_free(e);
}

/* Sampling with a borrowed sampler over two texts is the plain loop (as tools/quality.c and
 * test_calib.c sampled before): forward, copy the logits, sample, feed, one stream. */
static void test_shared_sampler_is_the_plain_loop(void)
{
    enum { LEN = 24, SEQ = 2 };
    struct qb_engine *e = engine(LEN);
    struct qb_sampler smp;
    int32_t want[SEQ * LEN], got[SEQ * LEN], bos = qb_tok_bos(m->tok);
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
    CHECK(qb_sampler_init(&smp, m->cfg.vocab_size, 1.0f, 1.0f, 5) == 0);
    for (int s = 0; s < SEQ; s++) {
        int32_t *row = want + s * LEN;
        qb_engine_reset(e);
        row[0] = bos;
        for (int t = 0; t + 1 < LEN; t++) {
            CHECK(qb_engine_forward(e, &row[t], 1, NULL) == 0);
            memcpy(logits, qb_engine_logits(e), (size_t)m->cfg.vocab_size * sizeof *logits);
            row[t + 1] = qb_sampler_next(&smp, logits);
        }
    }
    qb_sampler_release(&smp);
    CHECK(qb_sampler_init(&smp, m->cfg.vocab_size, 1.0f, 1.0f, 5) == 0);
    for (int s = 0; s < SEQ; s++) {
        struct qb_gen_opts o = QB_GEN_OPTS_INIT;
        struct qb_gen_result g;
        o.max_tokens = LEN - 1, o.ignore_eos = 1, o.sampler = &smp;
        qb_engine_reset(e);
        got[s * LEN] = bos;
        CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, &bos, 1, &o, NULL, NULL, &g) == 0);
        CHECK(g.n_ids == LEN - 1);
        memcpy(got + s * LEN + 1, g.ids, (size_t)(LEN - 1) * sizeof *got);
        qb_gen_result_release(&g);
    }
    CHECK(memcmp(got, want, sizeof got) == 0);
    qb_sampler_release(&smp);
    free(logits);
    qb_engine_free(e);
}

/* 10 tokens, then 10 more continuing the context from the last kept one, are one call's 20. */
static void test_continue_context(void)
{
    struct qb_engine *e = engine(0);
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    struct qb_gen_result one, a, b;
    int64_t n;
    int32_t *ids = encode("Tom and", &n);
    o.max_tokens = 20;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, n, &o, NULL, NULL, &one) == 0);
    qb_engine_reset(e);
    o.max_tokens = 10;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, ids, n, &o, NULL, NULL, &a) == 0);
    CHECK(a.n_ids == 10 && a.end == QB_GEN_END_LENGTH);
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, &a.ids[9], 1, &o, NULL, NULL, &b) == 0);
    CHECK(one.n_ids == 20 && b.n_ids == 10);
    CHECK(memcmp(one.ids, a.ids, 10 * sizeof(int32_t)) == 0);
    CHECK(memcmp(one.ids + 10, b.ids, 10 * sizeof(int32_t)) == 0);
    qb_gen_result_release(&one);
    qb_gen_result_release(&a);
    qb_gen_result_release(&b);
    free(ids);
    qb_engine_free(e);
}

static void test_bad_arguments(void)
{
    struct qb_engine *e = engine(0);
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    struct qb_gen_result g;
    int32_t id = 1;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, &id, 0, &o, NULL, NULL, &g) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "empty prompt") != NULL);
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, NULL, 1, &o, NULL, NULL, &g) == QB_EINVAL);
    o.max_tokens = -1;
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, &id, 1, &o, NULL, NULL, &g) == QB_EINVAL);
    CHECK(qb_generate(e, m->tok, m->cfg.vocab_size, &id, 1, NULL, NULL, NULL, NULL) == QB_EINVAL);
    CHECK(qb_engine_pos(e) == 0); /* nothing ran */
    qb_engine_free(e);
}

int main(void)
{
    char tok[4096];
    struct qb_load_opts lo = {0};
    if (!qb_shared_path(BIN) || !qb_shared_path(TOK) || !qb_shared_path(EXPECTED)) {
        check_skip("generate tests", "../shared/models/stories260K not found");
        return check_summary();
    }
    snprintf(tok, sizeof tok, "%s", qb_shared_path(TOK));
    lo.tokenizer_path = tok;
    if (qb_model_load(qb_shared_path(BIN), &lo, &m) < 0) {
        fprintf(stderr, "%s\n", qb_errmsg());
        return 1;
    }
    RUN(test_greedy_from_bos_is_the_reference);
    RUN(test_callback_streams_and_stops);
    RUN(test_stop_string);
    RUN(test_context_limit);
    RUN(test_shared_sampler_is_the_plain_loop);
    RUN(test_continue_context);
    RUN(test_bad_arguments);
    qb_model_free(m);
    return check_summary();
}
