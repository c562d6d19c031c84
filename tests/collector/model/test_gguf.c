/* test_gguf: the GGUF reader (collector/model/gguf.c) and loader (collector/model/load_gguf.c).
 *  - stories260K.gguf from ../shared parses and its weights equal, bit for bit, those of the
 *    independently exported llama2.c file stories260K.bin;
 *  - small random models written by tests/collector/model/gguf_write.h in F32, F16, BF16, Q8_0 and
 *    Q4_0 load to what ggml's reference quantizers say they hold, within each format's error;
 *  - v2 and v3 headers, qwen2 with biases, tied embeddings, alignment, typed getters;
 *  - missing and mis-shaped tensors, unsupported types, and every truncation and many
 *    corruptions of a valid file fail with a message naming the file, never a crash. */
#include "kernels/base/err.h"
#include "collector/model/gguf.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"
#include "tests/check.h"
#include "tests/collector/model/gguf_write.h"

#include <stdlib.h>
#include <string.h>

#define STORIES_GGUF "models/stories260K-gguf/stories260K.gguf"
#define STORIES_BIN "models/stories260K/stories260K.bin"
#define STORIES_TOK "models/stories260K/tok512.bin"

/* --- a small random model, kept as f32 masters and written in any format --- */

struct tm_tensor {
    char name[64];
    int n_dims;
    int64_t ne[2]; /* innermost first */
    float *w;      /* master values (ne[1], ne[0]) */
    float *expect; /* what the written tensor dequantizes to */
};

struct tm {
    const char *arch;
    int64_t dim, hidden, layers, heads, kv_heads, head_dim, vocab, ctx;
    int tied, qwen;
    int n;
    struct tm_tensor t[64];
};

static uint32_t rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static void tm_add(struct tm *m, const char *name, int64_t ne0, int64_t ne1)
{
    struct tm_tensor *t = &m->t[m->n++];
    size_t n = (size_t)(ne0 * (ne1 ? ne1 : 1));
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = ne1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 ? ne1 : 1;
    t->w = malloc(n * sizeof(float));
    t->expect = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        t->w[i] = frand() * (i % 7 == 0 ? 2.0f : 0.25f); /* uneven, so blocks differ */
}

/* arch "llama" or "qwen2"; dim 64, hidden 96, 2 layers, 4 heads, 2 kv heads, vocab 40 */
static void tm_make(struct tm *m, const char *arch, int tied)
{
    char name[64];
    memset(m, 0, sizeof *m);
    m->arch = arch;
    m->qwen = !strcmp(arch, "qwen2");
    m->dim = 64, m->hidden = 96, m->layers = 2, m->heads = 4, m->kv_heads = 2;
    m->head_dim = 16, m->vocab = 40, m->ctx = 128, m->tied = tied;
    int64_t d = m->dim, h = m->hidden, q = m->heads * m->head_dim, kv = m->kv_heads * m->head_dim;
    tm_add(m, "token_embd.weight", d, m->vocab);
    tm_add(m, "output_norm.weight", d, 0);
    if (!tied)
        tm_add(m, "output.weight", d, m->vocab);
    for (int l = 0; l < m->layers; l++) {
#define ADD(s, a, b) (snprintf(name, sizeof name, "blk.%d." s, l), tm_add(m, name, a, b))
        ADD("attn_norm.weight", d, 0);
        ADD("attn_q.weight", d, q);
        ADD("attn_k.weight", d, kv);
        ADD("attn_v.weight", d, kv);
        ADD("attn_output.weight", q, d);
        if (m->qwen) {
            ADD("attn_q.bias", q, 0);
            ADD("attn_k.bias", kv, 0);
            ADD("attn_v.bias", kv, 0);
        }
        ADD("ffn_norm.weight", d, 0);
        ADD("ffn_gate.weight", d, h);
        ADD("ffn_down.weight", h, d);
        ADD("ffn_up.weight", d, h);
#undef ADD
    }
}

static void tm_free(struct tm *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->t[i].w);
        free(m->t[i].expect);
    }
}

static void tm_kv(const struct tm *m, struct gw *w)
{
    char k[96];
#define K(s) (snprintf(k, sizeof k, "%s." s, m->arch), k)
    gw_kv_str(w, "general.architecture", m->arch);
    gw_kv_str(w, "general.name", "random test model");
    gw_kv_u32(w, K("context_length"), (uint32_t)m->ctx);
    gw_kv_u32(w, K("embedding_length"), (uint32_t)m->dim);
    gw_kv_u32(w, K("feed_forward_length"), (uint32_t)m->hidden);
    gw_kv_u32(w, K("block_count"), (uint32_t)m->layers);
    gw_kv_u32(w, K("attention.head_count"), (uint32_t)m->heads);
    gw_kv_u32(w, K("attention.head_count_kv"), (uint32_t)m->kv_heads);
    gw_kv_f32(w, K("rope.freq_base"), m->qwen ? 1000000.0f : 10000.0f);
    gw_kv_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-6f);
#undef K
}

/* Writes tensor t as ggml type `type` (2-D only for the quantized types, as llama.cpp
 * does: vectors stay F32) and records what it dequantizes to. */
static void tm_put(struct gw *w, struct tm_tensor *t, uint32_t type)
{
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    unsigned char *buf = malloc(n * 4);
    size_t bytes = 0;

    if ((type == GW_Q8_0 || type == GW_Q4_0) && t->n_dims == 1)
        type = GW_F32;
    switch (type) {
    case GW_F32:
        memcpy(buf, t->w, n * 4);
        memcpy(t->expect, t->w, n * 4);
        bytes = n * 4;
        break;
    case GW_F16:
    case GW_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t hv = type == GW_F16 ? qb_f32_to_f16(t->w[i]) : qb_f32_to_bf16(t->w[i]);
            memcpy(buf + 2 * i, &hv, 2);
            t->expect[i] = type == GW_F16 ? qb_f16_to_f32(hv) : qb_bf16_to_f32(hv);
        }
        bytes = n * 2;
        break;
    case GW_Q8_0:
        gw_quant_q8_0(t->w, buf, n, t->expect);
        bytes = n / 32 * 34;
        break;
    case GW_Q4_0:
        gw_quant_q4_0(t->w, buf, n, t->expect);
        bytes = n / 32 * 18;
        break;
    }
    gw_tensor(w, t->name, type, t->n_dims, t->ne, buf, bytes);
    free(buf);
}

static void tm_write(struct tm *m, struct gw *w, uint32_t type)
{
    tm_kv(m, w);
    for (int i = 0; i < m->n; i++)
        tm_put(w, &m->t[i], type);
}

/* The model's pointer for a GGUF tensor name. */
static const float *model_tensor(const struct qb_model *m, const char *name)
{
    int l, k;
    char rest[64];
    if (!strcmp(name, "token_embd.weight"))
        return m->tok_embd;
    if (!strcmp(name, "output_norm.weight"))
        return m->out_norm;
    if (!strcmp(name, "output.weight"))
        return m->output;
    if (sscanf(name, "blk.%d.%n", &l, &k) != 1 || l < 0 || l >= m->cfg.n_layers)
        return NULL;
    snprintf(rest, sizeof rest, "%s", name + k);
    const struct qb_layer *y = &m->layers[l];
    static const char *const names[] = {"attn_norm.weight", "attn_q.weight",      "attn_k.weight",
                                        "attn_v.weight",    "attn_output.weight", "attn_q.bias",
                                        "attn_k.bias",      "attn_v.bias",        "ffn_norm.weight",
                                        "ffn_gate.weight",  "ffn_down.weight",    "ffn_up.weight"};
    const float *ptrs[] = {y->attn_norm, y->wq, y->wk,       y->wv,     y->wo,     y->bq,
                           y->bk,        y->bv, y->ffn_norm, y->w_gate, y->w_down, y->w_up};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(rest, names[i]))
            return ptrs[i];
    return NULL;
}

/* Every tensor loads to exactly what was written, and within `step` (a fraction of the
 * block's or value's magnitude, the format's worst error) of the master values. */
static void check_against(const struct qb_model *mm, const struct tm *m, uint32_t type)
{
    CHECK(mm->cfg.dim == m->dim && mm->cfg.hidden_dim == m->hidden);
    CHECK(mm->cfg.n_layers == m->layers && mm->cfg.n_heads == m->heads);
    CHECK(mm->cfg.n_kv_heads == m->kv_heads && mm->cfg.head_dim == m->head_dim);
    CHECK(mm->cfg.vocab_size == m->vocab && mm->cfg.max_seq_len == m->ctx);
    CHECK(mm->cfg.tied_embeddings == m->tied);
    CHECK(mm->cfg.has_qkv_bias == m->qwen);
    CHECK(mm->cfg.rope_style == (m->qwen ? QB_ROPE_HALF : QB_ROPE_INTERLEAVED));
    CHECK(mm->cfg.norm_eps == 1e-6f);
    CHECK(mm->cfg.rope_theta == (m->qwen ? 1000000.0f : 10000.0f));
    CHECK(mm->n_tensors == m->n);
    CHECK(strcmp(mm->format, "gguf") == 0);
    if (m->tied)
        CHECK(mm->output == mm->tok_embd);
    for (int i = 0; i < m->n; i++) {
        const struct tm_tensor *t = &m->t[i];
        const float *p = model_tensor(mm, t->name);
        size_t n = (size_t)(t->ne[0] * t->ne[1]);
        int quant = (type == GW_Q8_0 || type == GW_Q4_0) && t->n_dims == 2;
        int bad_exact = 0, bad_err = 0;
        CHECK(p != NULL);
        if (!p)
            continue;
        for (size_t b = 0; b < n; b += 32) {
            float amax = 0;
            for (size_t j = b; j < b + 32 && j < n; j++)
                amax = fmaxf(amax, fabsf(t->w[j]));
            for (size_t j = b; j < b + 32 && j < n; j++) {
                float x = t->w[j], tol;
                if (memcmp(&p[j], &t->expect[j], 4))
                    bad_exact++;
                if (!quant && type == GW_F16)
                    tol = fabsf(x) * 0x1p-11f + 0x1p-25f;
                else if (!quant && type == GW_BF16)
                    tol = fabsf(x) * 0x1p-8f;
                else if (!quant)
                    tol = 0;
                else if (type == GW_Q8_0)
                    tol = amax / 127 *
                          (0.5f + 127.0f / 2048 + 1e-3f); /* half a step + 127 x d's f16 rounding */
                else
                    tol = amax / 8 * 1.01f; /* one step: the clamp at 15 costs up to d */
                if (!(fabsf(p[j] - x) <= tol))
                    bad_err++;
            }
        }
        if (bad_exact || bad_err)
            fprintf(stderr,
                    "  %s: %d values differ from the reference dequantization, %d outside the "
                    "format's error\n",
                    t->name, bad_exact, bad_err);
        CHECK(bad_exact == 0 && bad_err == 0);
    }
}

/* Writes m as `type` with the given header version and loads it from a file. */
static int roundtrip(struct tm *m, uint32_t version, uint32_t type, struct qb_model **out,
                     char *path, size_t cap)
{
    struct gw w;
    gw_init(&w, version);
    tm_write(m, &w, type);
    snprintf(path, cap, "%s/model-v%u-t%u.gguf", check_tmpdir(), version, type);
    CHECK(gw_save(&w, path) == 0);
    gw_free(&w);
    return qb_model_load(path, NULL, out);
}

static void run_format(uint32_t type, const char *arch, int tied, uint32_t version)
{
    struct tm m;
    struct qb_model *mm = NULL;
    char path[512];
    int rc;
    tm_make(&m, arch, tied);
    rc = roundtrip(&m, version, type, &mm, path, sizeof path);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0);
    if (mm) {
        check_against(mm, &m, type);
        CHECK(mm->tok == NULL); /* no tokenizer.ggml.* in these files */
    }
    qb_model_free(mm);
    tm_free(&m);
}

static void test_f32_v3(void)
{
    run_format(GW_F32, "llama", 0, 3);
}

static void test_f32_v2(void)
{
    run_format(GW_F32, "llama", 0, 2);
}

static void test_f16(void)
{
    run_format(GW_F16, "llama", 0, 3);
}

static void test_bf16(void)
{
    run_format(GW_BF16, "llama", 0, 3);
}

static void test_q8_0(void)
{
    run_format(GW_Q8_0, "llama", 0, 3);
}

static void test_q4_0(void)
{
    run_format(GW_Q4_0, "llama", 0, 2);
}

static void test_tied(void)
{
    run_format(GW_F16, "llama", 1, 3);
}

static void test_qwen2_biases(void)
{
    run_format(GW_Q8_0, "qwen2", 0, 3);
    run_format(GW_F32, "qwen2", 1, 3);
}

/* Writes m with tensor `skip` left out and tensor `reshape` given a wrong shape. */
static int load_broken(struct tm *m, const char *skip, const char *reshape, uint32_t retype,
                       char *path, size_t cap, struct qb_model **out)
{
    struct gw w;
    gw_init(&w, 3);
    tm_kv(m, &w);
    for (int i = 0; i < m->n; i++) {
        struct tm_tensor *t = &m->t[i];
        if (skip && !strcmp(t->name, skip))
            continue;
        if (reshape && !strcmp(t->name, reshape)) {
            int64_t ne[2] = {t->ne[1], t->ne[0]}; /* transposed */
            gw_tensor(&w, t->name, GW_F32, 2, ne, t->w, (size_t)(ne[0] * ne[1]) * 4);
            continue;
        }
        if (retype && !strcmp(t->name, "blk.1.attn_v.weight")) {
            /* the right shape in a type the loader refuses; the bytes do not matter */
            size_t n = (size_t)(t->ne[0] * t->ne[1]);
            unsigned char *z = calloc(n / 32, 24);
            gw_tensor(&w, t->name, retype, t->n_dims, t->ne, z, retype == 7 ? n / 32 * 24 : 0);
            free(z);
            continue;
        }
        tm_put(&w, t, GW_F32);
    }
    snprintf(path, cap, "%s/broken.gguf", check_tmpdir());
    CHECK(gw_save(&w, path) == 0);
    gw_free(&w);
    return qb_model_load(path, NULL, out);
}

static int msg_has(const char *a, const char *b)
{
    const char *msg = qb_errmsg();
    int ok = strstr(msg, a) && (!b || strstr(msg, b));
    if (!ok)
        fprintf(stderr, "  message: %s\n", msg);
    return ok;
}

static void test_missing_tensor(void)
{
    struct tm m;
    struct qb_model *mm = NULL;
    char path[512];
    tm_make(&m, "llama", 0);
    CHECK(load_broken(&m, "blk.1.attn_q.weight", NULL, 0, path, sizeof path, &mm) == QB_EFORMAT);
    CHECK(mm == NULL);
    CHECK(msg_has(path, "tensor 'blk.1.attn_q.weight' is missing"));
    CHECK(load_broken(&m, "token_embd.weight", NULL, 0, path, sizeof path, &mm) == QB_EFORMAT);
    CHECK(msg_has(path, "tensor 'token_embd.weight' is missing"));
    tm_free(&m);
    /* qwen2 needs its biases */
    tm_make(&m, "qwen2", 0);
    CHECK(load_broken(&m, "blk.0.attn_k.bias", NULL, 0, path, sizeof path, &mm) == QB_EFORMAT);
    CHECK(msg_has(path, "tensor 'blk.0.attn_k.bias' is missing"));
    tm_free(&m);
}

static void test_misshaped_tensor(void)
{
    struct tm m;
    struct qb_model *mm = NULL;
    char path[512];
    tm_make(&m, "llama", 0);
    /* attn_k is (kv 32, dim 64); written transposed it reads as (64, 32) */
    CHECK(load_broken(&m, NULL, "blk.1.attn_k.weight", 0, path, sizeof path, &mm) == QB_EFORMAT);
    CHECK(mm == NULL);
    CHECK(msg_has(path,
                  "tensor 'blk.1.attn_k.weight' has shape [64, 32] but the model needs [32, 64]"));
    tm_free(&m);
}

static void test_unsupported_types(void)
{
    struct tm m;
    struct qb_model *mm = NULL;
    char path[512];
    tm_make(&m, "llama", 0);
    /* 7: q5_1 */
    CHECK(load_broken(&m, NULL, NULL, 7, path, sizeof path, &mm) == QB_EUNSUP);
    CHECK(msg_has(path, "tensor 'blk.1.attn_v.weight' has type q5_1"));
    CHECK(load_broken(&m, NULL, NULL, 77, path, sizeof path, &mm) == QB_EUNSUP);
    CHECK(msg_has(path, "tensor 'blk.1.attn_v.weight' has unknown ggml type 77"));
    CHECK(mm == NULL);
    tm_free(&m);
}

/* An extra tensor of a type nobody knows is fine while the model does not need it. */
static void test_unknown_type_unused(void)
{
    struct tm m;
    struct gw w;
    struct qb_model *mm = NULL;
    unsigned char *img;
    size_t len;
    int64_t ne[1] = {8};
    tm_make(&m, "llama", 0);
    gw_init(&w, 3);
    tm_write(&m, &w, GW_F32);
    gw_tensor(&w, "mystery.weight", 200, 1, ne, "12345678", 8);
    gw_finish(&w, &img, &len);
    CHECK(qb_load_gguf_mem(img, len, "mem.gguf", NULL, &mm) == 0);
    if (mm) {
        check_against(mm, &m, GW_F32);
        CHECK(mm->n_tensors == m.n); /* the inventory has no dtype for it */
    }
    qb_model_free(mm);
    free(img);
    gw_free(&w);
    tm_free(&m);
}

/* general.alignment moves the data section; with alignment 1 the f32 data lands at odd
 * addresses and must be copied, not borrowed. */
static void test_alignment(void)
{
    static const uint32_t aligns[] = {1, 8, 64, 4096};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        struct tm m;
        struct gw w;
        struct qb_model *mm = NULL;
        struct qb_gguf *g = NULL;
        unsigned char *img;
        size_t len;
        tm_make(&m, "llama", 0);
        gw_init(&w, 3);
        gw_alignment(&w, aligns[a]);
        gw_kv_u8(&w, "odd.padding", 1); /* knock the header off any natural alignment */
        tm_write(&m, &w, GW_F32);
        gw_finish(&w, &img, &len);
        CHECK(qb_gguf_open_mem(img, len, "mem.gguf", &g) == 0);
        if (g) {
            CHECK(qb_gguf_alignment(g) == aligns[a]);
            CHECK(qb_gguf_data_offset(g) % aligns[a] == 0);
        }
        qb_gguf_close(g);
        CHECK(qb_load_gguf_mem(img, len, "mem.gguf", NULL, &mm) == 0);
        if (mm)
            check_against(mm, &m, GW_F32);
        qb_model_free(mm);
        free(img);
        gw_free(&w);
        tm_free(&m);
    }
}

static void test_getters(void)
{
    struct gw w;
    struct qb_gguf *g = NULL;
    unsigned char *img;
    size_t len;
    int64_t i = -7, n = 0;
    float f = 0;
    int b = -1;
    const char *s;
    size_t slen;
    const char **strs = NULL;
    size_t *lens = NULL;
    float *fa = NULL;
    int32_t *ia = NULL;
    static const char *const words[] = {"alpha", "", "gamma"};
    static const int16_t i16s[] = {-3, 4, 32767};
    static const int64_t big[] = {1, (int64_t)1 << 40};
    static const double f64s[] = {0.5, -2.25};

    gw_init(&w, 3);
    gw_kv_u8(&w, "u8", 200);
    gw_kv_i16(&w, "i16", -300);
    gw_kv_u32(&w, "u32", 4000000000u);
    gw_kv_i32(&w, "i32", -5);
    gw_kv_u64(&w, "u64", 1ull << 40);
    gw_kv_u64(&w, "u64.huge", 1ull << 63);
    gw_kv_i64(&w, "i64", -(1ll << 50));
    gw_kv_f32(&w, "f32", 0.25f);
    gw_kv_f64(&w, "f64", 1e-6);
    gw_kv_bool(&w, "bool", 1);
    gw_kv_str(&w, "str", "hello");
    gw_kv_str_arr(&w, "strs", words, 3);
    gw_kv_str_arr(&w, "strs.empty", NULL, 0);
    gw_kv_arr(&w, "i16s", 3, i16s, 3, 2);
    gw_kv_arr(&w, "i64s", 11, big, 2, 8);
    gw_kv_arr(&w, "f64s", 12, f64s, 2, 8);
    gw_finish(&w, &img, &len);
    gw_free(&w);
    CHECK(qb_gguf_open_mem(img, len, "getters.gguf", &g) == 0);
    if (!g) {
        free(img);
        return;
    }
    CHECK(qb_gguf_n_kv(g) == 16 && qb_gguf_n_tensors(g) == 0);
    CHECK(qb_gguf_get_int(g, "u8", &i) == 1 && i == 200);
    CHECK(qb_gguf_get_int(g, "i16", &i) == 1 && i == -300);
    CHECK(qb_gguf_get_int(g, "u32", &i) == 1 && i == 4000000000ll);
    CHECK(qb_gguf_get_int(g, "i32", &i) == 1 && i == -5);
    CHECK(qb_gguf_get_int(g, "u64", &i) == 1 && i == 1ll << 40);
    CHECK(qb_gguf_get_int(g, "i64", &i) == 1 && i == -(1ll << 50));
    CHECK(qb_gguf_get_int(g, "bool", &i) == 1 && i == 1);
    i = 42;
    CHECK(qb_gguf_get_int(g, "absent", &i) == 0 && i == 42); /* default untouched */
    CHECK(qb_gguf_get_int(g, "u64.huge", &i) == QB_EFORMAT);
    CHECK(msg_has("'getters.gguf'", "u64.huge"));
    CHECK(qb_gguf_get_int(g, "f32", &i) == QB_EFORMAT);
    CHECK(msg_has("'getters.gguf': metadata 'f32' is a f32, expected an integer", NULL));
    CHECK(qb_gguf_get_int(g, "str", &i) == QB_EFORMAT);
    CHECK(qb_gguf_get_f32(g, "f32", &f) == 1 && f == 0.25f);
    CHECK(qb_gguf_get_f32(g, "f64", &f) == 1 && f == 1e-6f);
    CHECK(qb_gguf_get_f32(g, "i32", &f) == 1 && f == -5.0f);
    CHECK(qb_gguf_get_f32(g, "str", &f) == QB_EFORMAT);
    CHECK(qb_gguf_get_bool(g, "bool", &b) == 1 && b == 1);
    CHECK(qb_gguf_get_bool(g, "u8", &b) == 1 && b == 1);
    CHECK(qb_gguf_get_str(g, "str", &s, &slen) == 1 && slen == 5 && !memcmp(s, "hello", 5));
    CHECK(qb_gguf_get_str(g, "u8", &s, &slen) == QB_EFORMAT);
    CHECK(qb_gguf_get_str(g, "strs", &s, &slen) == QB_EFORMAT);
    CHECK(msg_has("metadata 'strs' is an array of string, expected a string", NULL));
    CHECK(qb_gguf_get_str_arr(g, "strs", &strs, &lens, &n) == 1 && n == 3);
    if (strs) {
        CHECK(lens[0] == 5 && !memcmp(strs[0], "alpha", 5));
        CHECK(lens[1] == 0);
        CHECK(lens[2] == 5 && !memcmp(strs[2], "gamma", 5));
    }
    free(strs);
    free(lens);
    strs = NULL;
    lens = NULL;
    CHECK(qb_gguf_get_str_arr(g, "strs.empty", &strs, &lens, &n) == 1 && n == 0);
    free(strs);
    free(lens);
    CHECK(qb_gguf_get_str_arr(g, "i16s", &strs, &lens, &n) == QB_EFORMAT);
    CHECK(qb_gguf_get_str_arr(g, "str", &strs, &lens, &n) == QB_EFORMAT);
    CHECK(qb_gguf_get_i32_arr(g, "i16s", &ia, &n) == 1 && n == 3);
    if (ia)
        CHECK(ia[0] == -3 && ia[1] == 4 && ia[2] == 32767);
    free(ia);
    ia = NULL;
    CHECK(qb_gguf_get_i32_arr(g, "i64s", &ia, &n) == QB_EFORMAT); /* 2^40 does not fit */
    CHECK(ia == NULL);
    CHECK(qb_gguf_get_f32_arr(g, "f64s", &fa, &n) == 1 && n == 2);
    if (fa)
        CHECK(fa[0] == 0.5f && fa[1] == -2.25f);
    free(fa);
    CHECK(qb_gguf_get_f32_arr(g, "i16s", &fa, &n) == QB_EFORMAT);
    {
        enum qb_gguf_type et;
        const void *data;
        CHECK(qb_gguf_get_arr(g, "i16s", &et, &n, &data) == 1);
        CHECK(et == QB_GGUF_I16 && n == 3 && !memcmp(data, i16s, 6));
        CHECK(qb_gguf_get_arr(g, "u8", &et, &n, &data) == QB_EFORMAT);
    }
    CHECK(qb_gguf_kv_at(g, 0) && qb_gguf_kv_at(g, 0)->key_len == 2);
    CHECK(qb_gguf_kv_at(g, 16) == NULL && qb_gguf_kv_at(g, -1) == NULL);
    CHECK(qb_gguf_find_tensor(g, "x") == NULL && qb_gguf_tensor_at(g, 0) == NULL);
    qb_gguf_close(g);
    free(img);
}

static void check_open_fails(const unsigned char *img, size_t len, int want_rc, const char *want)
{
    struct qb_gguf *g = NULL;
    int rc = qb_gguf_open_mem(img, len, "bad.gguf", &g);
    CHECK(rc == want_rc && g == NULL);
    CHECK(msg_has("'bad.gguf': ", want));
    qb_gguf_close(g);
}

static void test_header_checks(void)
{
    struct gw w;
    unsigned char *img;
    size_t len;
    int64_t ne[2] = {4, 4};
    float z[16] = {0};

    check_open_fails(NULL, 0, QB_EFORMAT, "too short");
    check_open_fails((const unsigned char *)"GGML\3\0\0\0", 8, QB_EFORMAT, "not a GGUF file");
    check_open_fails((const unsigned char *)"GGUF\1\0\0\0", 8, QB_EUNSUP, "version 1");
    check_open_fails((const unsigned char *)"GGUF\0\0\0\3", 8, QB_EUNSUP, "big-endian");
    check_open_fails((const unsigned char *)"GGUF\4\0\0\0", 8, QB_EUNSUP, "version 4");
    check_open_fails((const unsigned char *)"GGUF\3\0\0\0\0\0", 10, QB_EFORMAT, "file ends");

    /* duplicate key */
    gw_init(&w, 3);
    gw_kv_u32(&w, "a.b", 1);
    gw_kv_u32(&w, "a.b", 2);
    gw_finish(&w, &img, &len);
    check_open_fails(img, len, QB_EFORMAT, "metadata key 'a.b' appears twice");
    free(img);
    gw_free(&w);

    /* duplicate tensor */
    gw_init(&w, 3);
    gw_tensor(&w, "t", GW_F32, 2, ne, z, sizeof z);
    gw_tensor(&w, "t", GW_F32, 2, ne, z, sizeof z);
    gw_finish(&w, &img, &len);
    check_open_fails(img, len, QB_EFORMAT, "tensor 't' appears twice");
    free(img);
    gw_free(&w);

    /* alignment not a power of two, and of the wrong type */
    gw_init(&w, 3);
    gw_kv_u32(&w, "general.alignment", 48);
    gw_finish(&w, &img, &len);
    check_open_fails(img, len, QB_EFORMAT, "general.alignment is 48, not a power of two");
    free(img);
    gw_free(&w);
    gw_init(&w, 3);
    gw_kv_str(&w, "general.alignment", "32");
    gw_finish(&w, &img, &len);
    check_open_fails(img, len, QB_EFORMAT, "metadata 'general.alignment' is a string");
    free(img);
    gw_free(&w);

    /* Q8_0 rows must be whole blocks */
    gw_init(&w, 3);
    gw_tensor(&w, "q", GW_Q8_0, 2, ne, z, 34);
    gw_finish(&w, &img, &len);
    check_open_fails(img, len, QB_EFORMAT, "tensor 'q' of type q8_0 has rows of 4 elements");
    free(img);
    gw_free(&w);

    /* nested arrays: legal GGUF, not read */
    gw_init(&w, 3);
    {
        struct gw_buf *b = gw_key(&w, "nested", 9);
        gw_u32(b, 9);
        gw_u64(b, 0);
    }
    gw_finish(&w, &img, &len);
    check_open_fails(img, len, QB_EUNSUP, "array of arrays");
    free(img);
    gw_free(&w);
}

/* Every prefix of a valid file is refused cleanly (no tensor may end past the end of the
 * file), and damaging any header byte never crashes the reader or the loader. */
static void test_truncation_and_corruption(void)
{
    struct tm m;
    struct gw w;
    unsigned char *img, *copy;
    size_t len, hdr;
    int bad = 0;

    tm_make(&m, "qwen2", 0);
    gw_init(&w, 3);
    tm_write(&m, &w, GW_Q4_0);
    gw_finish(&w, &img, &len);
    {
        struct qb_gguf *g = NULL;
        CHECK(qb_gguf_open_mem(img, len, "cut.gguf", &g) == 0);
        hdr = g ? qb_gguf_data_offset(g) : 0;
        qb_gguf_close(g);
    }
    /* copies of exactly `cut` bytes, so ASan sees any read past them */
    for (size_t cut = 0; cut < len; cut += cut < hdr + 64 ? 1 : 61) {
        struct qb_gguf *g = NULL;
        copy = malloc(cut ? cut : 1);
        memcpy(copy, img, cut);
        if (qb_gguf_open_mem(copy, cut, "cut.gguf", &g) >= 0 || !strstr(qb_errmsg(), "'cut.gguf'"))
            bad++;
        qb_gguf_close(g);
        free(copy);
    }
    CHECK(bad == 0);

    bad = 0;
    copy = malloc(len);
    for (size_t at = 0; at < hdr; at++) {
        static const unsigned char vals[] = {0x00, 0xff, 0x80, 0x07};
        for (size_t v = 0; v < sizeof vals; v++) {
            struct qb_model *mm = NULL;
            int rc;
            memcpy(copy, img, len);
            if (copy[at] == vals[v])
                continue;
            copy[at] = vals[v];
            rc = qb_load_gguf_mem(copy, len, "flip.gguf", NULL, &mm);
            if (rc < 0 && !strstr(qb_errmsg(), "'flip.gguf'"))
                bad++;
            if (rc == 0 && (!mm || !mm->tok_embd || !mm->layers))
                bad++;
            qb_model_free(mm);
        }
    }
    CHECK(bad == 0);
    free(copy);
    free(img);
    gw_free(&w);
    tm_free(&m);
}

/* An embedded tokenizer whose size differs from the embedding is an error. */
static void test_tokenizer_vocab_mismatch(void)
{
    struct tm m;
    struct gw w;
    struct qb_model *mm = NULL;
    unsigned char *img;
    size_t len;
    const char *pieces[39];
    char bufs[39][16];
    for (int i = 0; i < 39; i++) {
        snprintf(bufs[i], sizeof bufs[i], "t%d", i);
        pieces[i] = bufs[i];
    }
    tm_make(&m, "llama", 0);
    gw_init(&w, 3);
    tm_write(&m, &w, GW_F32);
    gw_kv_str(&w, "tokenizer.ggml.model", "llama");
    gw_kv_str_arr(&w, "tokenizer.ggml.tokens", pieces, 39); /* vocab is 40 */
    gw_finish(&w, &img, &len);
    CHECK(qb_load_gguf_mem(img, len, "tok.gguf", NULL, &mm) == QB_EFORMAT);
    CHECK(
        msg_has("'tok.gguf': the tokenizer has 39 tokens but the model's vocabulary has 40", NULL));
    CHECK(mm == NULL);
    free(img);
    gw_free(&w);

    /* llama.cpp writes model "none" for a file without a vocabulary */
    gw_init(&w, 3);
    tm_write(&m, &w, GW_F32);
    gw_kv_str(&w, "tokenizer.ggml.model", "none");
    gw_finish(&w, &img, &len);
    CHECK(qb_load_gguf_mem(img, len, "tok.gguf", NULL, &mm) == 0);
    CHECK(mm && mm->tok == NULL);
    qb_model_free(mm);
    free(img);
    gw_free(&w);
    tm_free(&m);
}

/* --- stories260K --- */

static void test_stories_parse(void)
{
    const char *path = qb_shared_path(STORIES_GGUF);
    struct qb_gguf *g = NULL;
    const struct qb_gguf_tensor *t;
    const char *s, **strs = NULL;
    size_t len, *lens = NULL;
    int64_t v = 0, n = 0;
    float f = 0;
    float *scores = NULL;
    int32_t *types = NULL;

    CHECK(qb_gguf_open(path, &g) == 0);
    if (!g)
        return;
    CHECK(qb_gguf_version(g) == 3);
    CHECK(qb_gguf_n_tensors(g) == 48 && qb_gguf_n_kv(g) == 19);
    CHECK(qb_gguf_alignment(g) == 32);
    CHECK(qb_gguf_get_str(g, "general.architecture", &s, &len) == 1);
    CHECK(len == 5 && !memcmp(s, "llama", 5));
    CHECK(qb_gguf_get_int(g, "llama.context_length", &v) == 1 && v == 2048);
    CHECK(qb_gguf_get_int(g, "llama.embedding_length", &v) == 1 && v == 64);
    CHECK(qb_gguf_get_int(g, "llama.attention.head_count_kv", &v) == 1 && v == 4);
    CHECK(qb_gguf_get_int(g, "tokenizer.ggml.padding_token_id", &v) == 1 && v == 4294967295ll);
    CHECK(qb_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) == 1 && f == 1e-5f);
    CHECK(qb_gguf_get_int(g, "general.architecture", &v) == QB_EFORMAT);
    CHECK(strstr(qb_errmsg(), path) != NULL);
    CHECK(qb_gguf_get_str_arr(g, "tokenizer.ggml.tokens", &strs, &lens, &n) == 1 && n == 512);
    if (strs) {
        CHECK(lens[1] == 3 && !memcmp(strs[1], "<s>", 3));
        CHECK(lens[2] == 4 && !memcmp(strs[2], "</s>", 4));
        CHECK(lens[3] == 6 && !memcmp(strs[3], "<0x00>", 6));
    }
    CHECK(qb_gguf_get_f32_arr(g, "tokenizer.ggml.scores", &scores, &n) == 1 && n == 512);
    CHECK(qb_gguf_get_i32_arr(g, "tokenizer.ggml.token_type", &types, &n) == 1 && n == 512);
    if (types)
        CHECK(types[0] == QB_TT_UNKNOWN && types[1] == QB_TT_CONTROL && types[3] == QB_TT_BYTE);
    t = qb_gguf_find_tensor(g, "blk.0.attn_k.weight");
    CHECK(t != NULL);
    if (t) {
        CHECK(t->type == QB_GGML_F32 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 32);
        CHECK(t->size == 64 * 32 * 4 && t->n_elements == 64 * 32);
        CHECK(t->data == (const unsigned char *)qb_gguf_tensor_at(g, 0)->data + t->offset);
    }
    t = qb_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t && t->ne[0] == 64 && t->ne[1] == 512 && t->offset == 0);
    CHECK(qb_gguf_find_tensor(g, "blk.5.attn_k.weight") == NULL);
    for (int64_t i = 0; i < qb_gguf_n_tensors(g); i++)
        CHECK(qb_gguf_find_tensor(g, qb_gguf_tensor_at(g, i)->name) == qb_gguf_tensor_at(g, i));
    free(strs);
    free(lens);
    free(scores);
    free(types);
    qb_gguf_close(g);
}

/* The GGUF and the llama.c .bin hold the same weights bit for bit; the .bin is read here
 * straight from its bytes, independently of the llama2.c loader. */
static void test_stories_matches_llama2c(void)
{
    const char *gpath = qb_shared_path(STORIES_GGUF);
    char *gp = gpath ? strdup(gpath) : NULL;
    const char *bpath = qb_shared_path(STORIES_BIN);
    struct qb_model *m = NULL;
    struct qb_load_opts opts = {0};
    float *bin = NULL;
    FILE *f = NULL;
    int32_t hdr[7];
    int rc;

    if (!gp || !bpath)
        return;
    f = fopen(bpath, "rb");
    CHECK(f != NULL);
    if (!f)
        goto out;
    CHECK(fread(hdr, 4, 7, f) == 7);
    CHECK(hdr[0] == 64 && hdr[1] == 172 && hdr[2] == 5 && hdr[3] == 8 && hdr[4] == 4);
    CHECK(hdr[5] == 512); /* positive: the classifier is the embedding */
    bin = malloc(2 << 20);
    size_t nf = fread(bin, 4, (2 << 20) / 4, f);
    CHECK(nf > 200000);

    rc = qb_model_load(gp, &opts, &m);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0);
    if (!m)
        goto out;
    const struct qb_config *c = &m->cfg;
    CHECK(!strcmp(c->arch, "llama") && !strcmp(m->format, "gguf"));
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 && c->n_heads == 8);
    CHECK(c->n_kv_heads == 4 && c->head_dim == 8 && c->vocab_size == 512);
    CHECK(c->max_seq_len == 2048 && c->rope_theta == 10000.0f && c->norm_eps == 1e-5f);
    CHECK(c->rope_style == QB_ROPE_INTERLEAVED && !c->has_qkv_bias);
    CHECK(c->tied_embeddings == 0); /* output.weight is a separate copy in this file */
    CHECK(m->n_tensors == 48);
    if (m->n_tensors == 48) {
        CHECK(!strcmp(m->tensors[0].name, "token_embd.weight"));
        CHECK(m->tensors[0].n_dims == 2 && m->tensors[0].shape[0] == 512);
        CHECK(m->tensors[0].shape[1] == 64 && m->tensors[0].dtype == QB_DT_F32);
        CHECK(m->tensors[0].bytes == 512 * 64 * 4);
    }
    if (m->tok) {
        CHECK(qb_tok_n_vocab(m->tok) == 512);
        CHECK(qb_tok_bos(m->tok) == 1 && qb_tok_eos(m->tok) == 2);
    } else {
        CHECK(m->tok != NULL);
    }

    {
        const int64_t D = 64, H = 172, L = 5, V = 512, KV = 32;
        const float *p = bin;
        size_t bad = 0;
#define SAME(ptr, count)                                                                           \
    do {                                                                                           \
        if (memcmp((ptr), p, (size_t)(count)*4))                                                   \
            bad++;                                                                                 \
        p += (count);                                                                              \
    } while (0)
        SAME(m->tok_embd, V * D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].attn_norm, D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].wq, D * D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].wk, KV * D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].wv, KV * D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].wo, D * D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].ffn_norm, D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].w_gate, H * D);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].w_down, D * H);
        for (int l = 0; l < L; l++)
            SAME(m->layers[l].w_up, H * D);
        SAME(m->out_norm, D);
#undef SAME
        CHECK(bad == 0);
        CHECK((size_t)(p - bin) <= nf);
        CHECK(!memcmp(m->output, bin, (size_t)(V * D) * 4)); /* shared classifier */
    }
out:
    if (f)
        fclose(f);
    free(bin);
    free(gp);
    qb_model_free(m);
}

/* The tokenizer built from the GGUF's tokenizer.ggml.* arrays encodes and decodes like the
 * llama2.c tok512.bin it was converted from. */
static void test_stories_tokenizer_matches_llama2c(void)
{
    static const char *const texts[] = {
        "Once upon a time, there was a little girl named Lily.",
        "She liked to play outside\nin the park!",
        "  two spaces, caf\xc3\xa9 and \xe2\x98\x83",
        "",
    };
    char *gp = strdup(qb_shared_path(STORIES_GGUF));
    const char *tp = qb_shared_path(STORIES_TOK);
    struct qb_model *m = NULL;
    struct qb_tokenizer *ref = NULL;

    CHECK(gp && tp);
    CHECK(qb_model_load(gp, NULL, &m) == 0);
    CHECK(tp && qb_tok_load_llama2c(tp, 512, &ref) == 0);
    if (!m || !m->tok || !ref)
        goto out;
    CHECK(qb_tok_kind(m->tok) == QB_TOK_SPM);
    CHECK(qb_tok_adds_bos(m->tok) == qb_tok_adds_bos(ref));
    for (int32_t id = 0; id < 512; id++) {
        size_t la = 0, lb = 0;
        const char *a = qb_tok_piece(m->tok, id, &la), *b = qb_tok_piece(ref, id, &lb);
        CHECK(a && b && la == lb && !memcmp(a, b, la));
    }
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *a = NULL, *b = NULL;
        int64_t na = -1, nb = -2;
        char *da = NULL, *db = NULL;
        size_t la, lb;
        CHECK(qb_tok_encode(m->tok, texts[i], strlen(texts[i]), QB_TOK_BOS, &a, &na) == 0);
        CHECK(qb_tok_encode(ref, texts[i], strlen(texts[i]), QB_TOK_BOS, &b, &nb) == 0);
        CHECK(na == nb && na > 0 && a && b && !memcmp(a, b, (size_t)na * sizeof *a));
        if (a && na > 0 && qb_tok_decode(m->tok, a, na, &da, &la) == 0 &&
            qb_tok_decode(ref, b, nb, &db, &lb) == 0)
            CHECK(la == lb && !memcmp(da, db, la));
        free(a);
        free(b);
        free(da);
        free(db);
    }
out:
    qb_tok_free(ref);
    qb_model_free(m);
    free(gp);
}

int main(void)
{
    RUN(test_f32_v3);
    RUN(test_f32_v2);
    RUN(test_f16);
    RUN(test_bf16);
    RUN(test_q8_0);
    RUN(test_q4_0);
    RUN(test_tied);
    RUN(test_qwen2_biases);
    RUN(test_missing_tensor);
    RUN(test_misshaped_tensor);
    RUN(test_unsupported_types);
    RUN(test_unknown_type_unused);
    RUN(test_alignment);
    RUN(test_getters);
    RUN(test_header_checks);
    RUN(test_truncation_and_corruption);
    RUN(test_tokenizer_vocab_mismatch);
    if (qb_shared_path(STORIES_GGUF) && qb_shared_path(STORIES_BIN)) {
        RUN(test_stories_parse);
        RUN(test_stories_matches_llama2c);
    } else {
        check_skip("test_stories_parse", "needs ../shared/" STORIES_GGUF);
        check_skip("test_stories_matches_llama2c", "needs ../shared/" STORIES_BIN);
    }
    if (qb_shared_path(STORIES_GGUF) && qb_shared_path(STORIES_TOK))
        RUN(test_stories_tokenizer_matches_llama2c);
    else
        check_skip("test_stories_tokenizer_matches_llama2c", "needs ../shared/" STORIES_TOK);
    return check_summary();
}
