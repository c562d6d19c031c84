/* tiny_gguf: random tiny Llama/Qwen2 models of any shape, written as GGUF files with a small
 * SentencePiece ("llama") tokenizer inside, for tests that need a model file (the memory
 * probe and the runner load one by path) at shapes no shipped model has. Header-only,
 * test code: out of memory aborts (through gguf_write.h).
 *
 *     struct tg_shape s = {.arch = "llama", .dim = 48, .hidden = 100, .n_layers = 2,
 *                          .n_heads = 6, .n_kv_heads = 3, .head_dim = 8, .ctx = 384};
 *     if (tg_write(&s, 7, "/tmp/x/model.gguf") < 0) ...;
 *     qb_model_load("/tmp/x/model.gguf", &lo, &m);   // m->tok encodes any text
 *
 * The file is what llama.cpp's converter writes for such a model: f32 tensors named
 * token_embd / blk.N.attn_q ... / output, ne innermost first; attention.key_length when
 * head_dim * n_heads differs from dim; qwen2 gets q/k/v biases (and the loader rotate-half
 * RoPE). tied = 1 leaves output.weight out, so the head shares the embeddings.
 *
 * Tokenizer: <unk> <s> </s>, the 256 byte pieces <0x00>..<0xFF>, then "▁" and "a".."z"
 * (TG_VOCAB = 286 ids, a count no group size divides). Any text encodes: letters and
 * spaces as pieces, everything else as bytes, so a text of n characters is about n
 * tokens -- an easy way to make a prompt longer than the engine's 256-token chunk. */
#ifndef QB_TEST_TINY_GGUF_H
#define QB_TEST_TINY_GGUF_H

/* the writer's helpers this header does not use are no warning in the tests that include it */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/collector/model/gguf_write.h"
#pragma GCC diagnostic pop

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_VOCAB (3 + 256 + 27)

struct tg_shape {
    const char *arch; /* "llama" or "qwen2" */
    int64_t dim, hidden, n_layers, n_heads, n_kv_heads, head_dim, ctx;
    int tied;
};

/* xorshift64 in [-1, 1); the state must be nonzero */
static float tg_unif(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((double)(*s >> 11) / 4503599627370496.0 - 1.0);
}

/* A (ne1, ne0) tensor (ne0 = in_features) of values lo + (hi - lo) * U[0, 1). */
static void tg_tensor(struct gw *w, uint64_t *rng, const char *name, int64_t ne0, int64_t ne1,
                      float lo, float hi)
{
    size_t n = (size_t)(ne0 * ne1);
    float *v = malloc(n * sizeof *v);
    int64_t ne[2] = {ne0, ne1};
    if (!v)
        abort();
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * 0.5f * (tg_unif(rng) + 1.0f);
    gw_tensor(w, name, GW_F32, ne1 > 1 ? 2 : 1, ne, v, n * sizeof *v);
    free(v);
}

/* Weights of a matrix with `in` inputs: uniform with std about 1/sqrt(in), so activations
 * keep their scale through the layers and the logits stay O(1). */
static void tg_linear(struct gw *w, uint64_t *rng, const char *name, int64_t in, int64_t out)
{
    float a = 1.7f / sqrtf((float)in);
    tg_tensor(w, rng, name, in, out, -a, a);
}

static void tg_tokenizer(struct gw *w)
{
    static char bytes[256][8];
    const char *pieces[TG_VOCAB];
    float scores[TG_VOCAB];
    int32_t types[TG_VOCAB];
    static char letters[26][2];
    int n = 0;
    pieces[n] = "<unk>", types[n] = 2, scores[n++] = 0;
    pieces[n] = "<s>", types[n] = 3, scores[n++] = 0;
    pieces[n] = "</s>", types[n] = 3, scores[n++] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[n] = bytes[b], types[n] = 6, scores[n++] = 0;
    }
    pieces[n] = "\xe2\x96\x81", types[n] = 1, scores[n++] = -1;
    for (int c = 0; c < 26; c++) {
        letters[c][0] = (char)('a' + c);
        pieces[n] = letters[c], types[n] = 1, scores[n] = -2.0f - (float)c, n++;
    }
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_str_arr(w, "tokenizer.ggml.tokens", pieces, TG_VOCAB);
    gw_kv_arr(w, "tokenizer.ggml.scores", 6, scores, TG_VOCAB, 4);
    gw_kv_arr(w, "tokenizer.ggml.token_type", 5, types, TG_VOCAB, 4);
    gw_kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
}

static void tg_metadata(struct gw *w, const struct tg_shape *s)
{
    char k[96];
#define TG_K(x) (snprintf(k, sizeof k, "%s." x, s->arch), k)
    gw_kv_str(w, "general.architecture", s->arch);
    gw_kv_str(w, "general.name", "tiny random test model");
    gw_kv_u32(w, TG_K("context_length"), (uint32_t)s->ctx);
    gw_kv_u32(w, TG_K("embedding_length"), (uint32_t)s->dim);
    gw_kv_u32(w, TG_K("feed_forward_length"), (uint32_t)s->hidden);
    gw_kv_u32(w, TG_K("block_count"), (uint32_t)s->n_layers);
    gw_kv_u32(w, TG_K("attention.head_count"), (uint32_t)s->n_heads);
    gw_kv_u32(w, TG_K("attention.head_count_kv"), (uint32_t)s->n_kv_heads);
    if (s->head_dim * s->n_heads != s->dim)
        gw_kv_u32(w, TG_K("attention.key_length"), (uint32_t)s->head_dim);
    gw_kv_f32(w, TG_K("rope.freq_base"), 10000.0f);
    gw_kv_f32(w, TG_K("attention.layer_norm_rms_epsilon"), 1e-5f);
#undef TG_K
}

/* Writes the model with weights drawn from seed (nonzero) to path; 0 or -1. */
static int tg_write(const struct tg_shape *s, uint64_t seed, const char *path)
{
    const int64_t d = s->dim, h = s->hidden, qd = s->n_heads * s->head_dim;
    const int64_t kvd = s->n_kv_heads * s->head_dim;
    const int bias = !strcmp(s->arch, "qwen2");
    uint64_t rng = seed;
    struct gw w;
    char name[64];
    int rc;

    gw_init(&w, 3);
    tg_metadata(&w, s);
    tg_tokenizer(&w);
    tg_tensor(&w, &rng, "token_embd.weight", d, TG_VOCAB, -1.0f, 1.0f);
    tg_tensor(&w, &rng, "output_norm.weight", d, 1, 0.6f, 1.4f);
    if (!s->tied)
        tg_linear(&w, &rng, "output.weight", d, TG_VOCAB);
    for (int64_t l = 0; l < s->n_layers; l++) {
#define TG_N(x) (snprintf(name, sizeof name, "blk.%lld." x, (long long)l), name)
        tg_tensor(&w, &rng, TG_N("attn_norm.weight"), d, 1, 0.6f, 1.4f);
        tg_linear(&w, &rng, TG_N("attn_q.weight"), d, qd);
        tg_linear(&w, &rng, TG_N("attn_k.weight"), d, kvd);
        tg_linear(&w, &rng, TG_N("attn_v.weight"), d, kvd);
        if (bias) {
            tg_tensor(&w, &rng, TG_N("attn_q.bias"), qd, 1, -0.1f, 0.1f);
            tg_tensor(&w, &rng, TG_N("attn_k.bias"), kvd, 1, -0.1f, 0.1f);
            tg_tensor(&w, &rng, TG_N("attn_v.bias"), kvd, 1, -0.1f, 0.1f);
        }
        tg_linear(&w, &rng, TG_N("attn_output.weight"), qd, d);
        tg_tensor(&w, &rng, TG_N("ffn_norm.weight"), d, 1, 0.6f, 1.4f);
        tg_linear(&w, &rng, TG_N("ffn_gate.weight"), d, h);
        tg_linear(&w, &rng, TG_N("ffn_up.weight"), d, h);
        tg_linear(&w, &rng, TG_N("ffn_down.weight"), h, d);
#undef TG_N
    }
    rc = gw_save(&w, path);
    gw_free(&w);
    return rc;
}

#endif
