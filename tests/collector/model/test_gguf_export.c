/* test_gguf_export: `qbrief export` (collector/model/gguf_export.h). What ships is what was
 * measured: an exported file, loaded back by qbrief, holds bit for bit the weights of the
 * config it was exported from, and in that config gives the same logits, to the bit; the
 * tokenizer encodes alike; configs no ggml type holds are refused with the nearest one that
 * exports, and leave no file behind. */
#include "tests/check.h"

#include "collector/engine/engine.h"
#include "collector/model/gguf.h"
#include "collector/model/gguf_export.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "collector/quant/calib.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"
#include "kernels/half.h"
#include "kernels/quantize.h"
#include "tests/collector/model/tiny_gguf.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEMO "examples/demo/qbrief-demo"
#define STORIES "models/stories260K/stories260K.bin"
#define TEXT "Q: What is 17 + 25?\nA: 42. Once upon a time"

static const float *src_weight(const struct qb_model *m, int64_t l, int k)
{
    const struct qb_layer *ly = &m->layers[l];
    const float *w[QB_LIN_COUNT] = {ly->wq,     ly->wk,   ly->wv,    ly->wo,
                                    ly->w_gate, ly->w_up, ly->w_down};
    return w[k];
}

/* Every real weight of t equals the loaded f32 matrix w (rows, in). */
static int same_values(const struct qb_qtensor *t, const float *w)
{
    int64_t in = t->in_cols ? t->in_cols : t->cols;
    float *row = malloc((size_t)t->cols * sizeof *row);
    int same = 1;
    for (int64_t r = 0; r < t->rows && same; r++) {
        qb_dequantize_row(t, r, row);
        same = !memcmp(row, w + r * in, (size_t)in * sizeof *row);
    }
    free(row);
    return same;
}

/* The logits of every position of TEXT in qm. */
static float *logits_of(const struct qb_qmodel *qm, int64_t *n_out)
{
    struct qb_engine *e = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    float *lg = NULL;
    if (qb_tok_encode(qm->m->tok, TEXT, strlen(TEXT), QB_TOK_DEFAULT, &ids, &n) == 0 &&
        qb_engine_new_q(qm, 0, &e) == 0) {
        lg = malloc((size_t)(n * qm->m->cfg.vocab_size) * sizeof *lg);
        if (qb_engine_forward(e, ids, n, lg) < 0) {
            free(lg);
            lg = NULL;
        }
    }
    qb_engine_free(e);
    free(ids);
    *n_out = n;
    return lg;
}

static int file_exists(const char *p)
{
    return access(p, F_OK) == 0;
}

/* The ggml type of a tensor in the file at path, or -1. */
static int tensor_type(const char *path, const char *name)
{
    struct qb_gguf *g;
    int type = -1;
    if (qb_gguf_open(path, &g) == 0) {
        const struct qb_gguf_tensor *t = qb_gguf_find_tensor(g, name);
        type = t ? (int)t->type : -1;
        qb_gguf_close(g);
    }
    return type;
}

/* Exports src in spec, loads the file back and checks every weight and the logits. */
static void roundtrip(const struct qb_model *src, const char *spec_s, int want_type)
{
    struct qb_qspec spec;
    struct qb_qmodel *qa = NULL, *qb = NULL;
    struct qb_model *re = NULL;
    char path[512], note[256];
    int64_t na = 0, nb = 0;
    float *la = NULL, *lb = NULL;
    int32_t *ia = NULL, *ib = NULL;
    int64_t nia = 0, nib = 0;

    snprintf(path, sizeof path, "%s/%s.gguf", check_tmpdir(), spec_s);
    CHECK(qb_qspec_parse(spec_s, &spec) == 0);
    CHECK(qb_qmodel_new(src, &spec, &qa) == 0);
    CHECK(qb_gguf_export(qa, path, note, sizeof note) == 0);
    if (!strchr(spec_s, '+')) /* overrides: checked by the caller */
        CHECK(tensor_type(path, "blk.0.attn_q.weight") == want_type);
    CHECK(tensor_type(path, "blk.0.ffn_up.weight") == want_type);
    CHECK(qb_model_load(path, NULL, &re) == 0);
    if (!re) {
        printf("  %s: %s\n", spec_s, qb_errmsg());
        qb_qmodel_free(qa);
        return;
    }
    CHECK(re->cfg.rope_style == src->cfg.rope_style);
    CHECK(re->cfg.n_layers == src->cfg.n_layers && re->cfg.head_dim == src->cfg.head_dim);
    /* the weights: the export's values are the config's values (q/k un-permuted on load) */
    for (int64_t l = 0; l < src->cfg.n_layers; l++)
        for (int k = 0; k < QB_LIN_COUNT; k++)
            CHECK(same_values(&qa->lin[l * QB_LIN_COUNT + k].t, src_weight(re, l, k)));
    CHECK(same_values(&qa->embed.t, re->tok_embd));
    CHECK(same_values(&qa->output.t, re->output));
    /* the same config of the loaded file: same packed weights, same logits to the bit */
    CHECK(qb_qmodel_new(re, &spec, &qb) == 0);
    if (qb) {
        for (int64_t i = 0; i < src->cfg.n_layers * QB_LIN_COUNT; i++)
            CHECK(!memcmp(qa->lin[i].t.data, qb->lin[i].t.data,
                          qa->lin[i].t.row_bytes * (size_t)qa->lin[i].t.rows));
        la = logits_of(qa, &na);
        lb = logits_of(qb, &nb);
        CHECK(la && lb && na == nb && na > 4);
        if (la && lb && na == nb)
            CHECK(!memcmp(la, lb, (size_t)(na * src->cfg.vocab_size) * sizeof *la));
    }
    /* the tokenizer came along */
    CHECK(qb_tok_encode(src->tok, TEXT, strlen(TEXT), QB_TOK_DEFAULT, &ia, &nia) == 0);
    CHECK(qb_tok_encode(re->tok, TEXT, strlen(TEXT), QB_TOK_DEFAULT, &ib, &nib) == 0);
    CHECK(nia == nib && ia && ib && !memcmp(ia, ib, (size_t)nia * sizeof *ia));
    free(ia);
    free(ib);
    free(la);
    free(lb);
    qb_qmodel_free(qb);
    qb_model_free(re);
    qb_qmodel_free(qa);
    unlink(path);
}

static struct qb_model *demo;

static void test_demo_f32(void)
{
    roundtrip(demo, "f32", QB_GGML_F32);
}

/* What llama.cpp reads: the demo's rotate-half q/k rows in interleaved order, row
 * h*hd + 2i + j of the file = row h*hd + j*hd/2 + i of the model (convert_hf_to_gguf's
 * permute), v unchanged, and the key that lets qbrief undo it. */
static void test_demo_qk_permuted(void)
{
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    struct qb_gguf *g = NULL;
    const char *rope;
    size_t rope_len = 0;
    char path[512];
    const int64_t hd = demo->cfg.head_dim, dim = demo->cfg.dim;
    snprintf(path, sizeof path, "%s/perm.gguf", check_tmpdir());
    CHECK(demo->cfg.rope_style == QB_ROPE_HALF);
    CHECK(qb_qspec_parse("f32", &spec) == 0 && qb_qmodel_new(demo, &spec, &qm) == 0);
    CHECK(qm && qb_gguf_export(qm, path, NULL, 0) == 0);
    CHECK(qb_gguf_open(path, &g) == 0);
    if (g) {
        const struct qb_gguf_tensor *q = qb_gguf_find_tensor(g, "blk.1.attn_q.weight");
        const struct qb_gguf_tensor *k = qb_gguf_find_tensor(g, "blk.1.attn_k.weight");
        const struct qb_gguf_tensor *v = qb_gguf_find_tensor(g, "blk.1.attn_v.weight");
        int same_q = q != NULL, same_k = k != NULL;
        for (int64_t r = 0; q && r < demo->cfg.n_heads * hd; r++) {
            int64_t h = r / hd, i = (r % hd) / 2, j = r % 2;
            same_q &=
                !memcmp((const float *)q->data + r * dim,
                        demo->layers[1].wq + (h * hd + j * hd / 2 + i) * dim, (size_t)dim * 4);
        }
        for (int64_t r = 0; k && r < demo->cfg.n_kv_heads * hd; r++) {
            int64_t h = r / hd, i = (r % hd) / 2, j = r % 2;
            same_k &=
                !memcmp((const float *)k->data + r * dim,
                        demo->layers[1].wk + (h * hd + j * hd / 2 + i) * dim, (size_t)dim * 4);
        }
        CHECK(same_q && same_k);
        CHECK(v && !memcmp(v->data, demo->layers[1].wv, (size_t)(v->n_elements * 4)));
        CHECK(qb_gguf_get_str(g, "qbrief.source_rope", &rope, &rope_len) == 1 && rope_len == 4 &&
              !memcmp(rope, "half", 4));
        qb_gguf_close(g);
    }
    qb_qmodel_free(qm);
}
static void test_demo_f16(void)
{
    roundtrip(demo, "f16", QB_GGML_F16);
}
static void test_demo_bf16(void)
{
    roundtrip(demo, "bf16", QB_GGML_BF16);
}
static void test_demo_w4g32_sym(void)
{
    roundtrip(demo, "w4g32-sym", QB_GGML_Q4_0);
}
static void test_demo_w4g128_sym(void)
{
    roundtrip(demo, "w4g128-sym", QB_GGML_Q4_0);
}
static void test_demo_w4g32(void)
{
    roundtrip(demo, "w4g32", QB_GGML_Q4_1);
}
static void test_demo_w4g128(void)
{
    roundtrip(demo, "w4g128", QB_GGML_Q4_1);
}

/* Per-tensor overrides keep their own types. */
static void test_demo_overrides(void)
{
    char path[512];
    roundtrip(demo, "w4g128+attn=w4g32-sym+output=f16", QB_GGML_Q4_1);
    snprintf(path, sizeof path, "%s/ov.gguf", check_tmpdir());
    {
        struct qb_qspec spec;
        struct qb_qmodel *qm = NULL;
        CHECK(qb_qspec_parse("w4g128+attn=w4g32-sym+output=f16", &spec) == 0);
        CHECK(qb_qmodel_new(demo, &spec, &qm) == 0);
        CHECK(qb_gguf_export(qm, path, NULL, 0) == 0);
        CHECK(tensor_type(path, "blk.1.attn_v.weight") == QB_GGML_Q4_0);
        CHECK(tensor_type(path, "blk.1.ffn_down.weight") == QB_GGML_Q4_1);
        CHECK(tensor_type(path, "output.weight") == QB_GGML_F16);
        qb_qmodel_free(qm);
    }
}

/* Refusals name the nearest config that exports and leave nothing behind. */
static void refused(const struct qb_model *m, const char *spec_s, const char *want)
{
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/refused.gguf", check_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(qb_qspec_parse(spec_s, &spec) == 0);
    CHECK(qb_qmodel_new(m, &spec, &qm) == 0);
    CHECK(qb_gguf_export(qm, path, NULL, 0) == QB_EUNSUP);
    if (!strstr(qb_errmsg(), want))
        printf("  %s: '%s' lacks '%s'\n", spec_s, qb_errmsg(), want);
    CHECK(strstr(qb_errmsg(), want) != NULL);
    CHECK(!file_exists(path) && !file_exists(tmp));
    qb_qmodel_free(qm);
}

static void test_demo_refusals(void)
{
    refused(demo, "w3g64", "nearest config that exports exactly: w4g64 (Q4_1)");
    refused(demo, "w2g32-sym", "w4g32-sym (Q4_0)");
    refused(demo, "fp8", "fp8, which no ggml type holds");
    refused(demo, "w8", "Q8_0 would re-quantize them; nearest configs that export exactly: f16");
    refused(demo, "w4g128+down=w3g64", "'blk.0.ffn_down.weight' is int3");
}

/* w8 whose row scales are f16 values is Q8_0, exactly (the scales made so by hand here). */
static void test_w8_f16_scales(void)
{
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    struct qb_model *re = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/w8.gguf", check_tmpdir());
    CHECK(qb_qspec_parse("w8", &spec) == 0);
    CHECK(qb_qmodel_new(demo, &spec, &qm) == 0);
    if (!qm)
        return;
    /* round every scale to f16 in place: the codes stay, the values move a little */
    for (int64_t i = 0; i < demo->cfg.n_layers * QB_LIN_COUNT + 2; i++) {
        struct qb_qweight *w = i < demo->cfg.n_layers * QB_LIN_COUNT    ? &qm->lin[i]
                               : i == demo->cfg.n_layers * QB_LIN_COUNT ? &qm->embed
                                                                        : &qm->output;
        float *s;
        memcpy(&s, &w->t.row_scale, sizeof s);
        for (int64_t r = 0; r < w->t.rows; r++)
            s[r] = qb_f16_to_f32(qb_f32_to_f16(s[r]));
    }
    CHECK(qb_gguf_export(qm, path, NULL, 0) == 0);
    CHECK(tensor_type(path, "blk.0.attn_q.weight") == QB_GGML_Q8_0);
    CHECK(qb_model_load(path, NULL, &re) == 0);
    if (re) {
        for (int64_t l = 0; l < demo->cfg.n_layers; l++)
            for (int k = 0; k < QB_LIN_COUNT; k++)
                CHECK(same_values(&qm->lin[l * QB_LIN_COUNT + k].t, src_weight(re, l, k)));
        CHECK(same_values(&qm->embed.t, re->tok_embd));
    }
    qb_model_free(re);
    qb_qmodel_free(qm);
}

/* A calibrated config exports its own codes: the loaded values are GPTQ's, bit for bit. */
static void test_demo_gptq(void)
{
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    struct qb_model *re = NULL;
    struct qb_calib *cal = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/gptq.gguf", check_tmpdir());
    CHECK(qb_qspec_parse("w4g32-gptq", &spec) == 0);
    CHECK(qb_calib_load("examples/demo/calib.txt", demo->tok, 4, 64, 0, &cal) == 0);
    CHECK(qb_qmodel_new_calib(demo, &spec, cal, &qm) == 0);
    CHECK(qm && qb_gguf_export(qm, path, NULL, 0) == 0);
    CHECK(tensor_type(path, "blk.0.attn_q.weight") == QB_GGML_Q4_1);
    CHECK(qb_model_load(path, NULL, &re) == 0);
    if (re && qm) {
        for (int64_t l = 0; l < demo->cfg.n_layers; l++)
            for (int k = 0; k < QB_LIN_COUNT; k++)
                CHECK(same_values(&qm->lin[l * QB_LIN_COUNT + k].t, src_weight(re, l, k)));
        CHECK(same_values(&qm->output.t, re->output));
    }
    qb_model_free(re);
    qb_qmodel_free(qm);
    qb_calib_free(cal);
}

/* qwen2 (rotate-half, no permutation, q/k/v biases) and a tied llama, from random models. */
static void test_tiny_qwen2_and_tied(void)
{
    struct tg_shape q = {.arch = "qwen2",
                         .dim = 64,
                         .hidden = 96,
                         .n_layers = 2,
                         .n_heads = 4,
                         .n_kv_heads = 2,
                         .head_dim = 16,
                         .ctx = 128};
    struct tg_shape t = {.arch = "llama",
                         .dim = 64,
                         .hidden = 128,
                         .n_layers = 2,
                         .n_heads = 4,
                         .n_kv_heads = 4,
                         .head_dim = 16,
                         .ctx = 128,
                         .tied = 1};
    char path[512];
    struct qb_model *m = NULL;
    snprintf(path, sizeof path, "%s/qwen2.gguf", check_tmpdir());
    CHECK(tg_write(&q, 11, path) == 0);
    CHECK(qb_model_load(path, NULL, &m) == 0);
    if (m) {
        roundtrip(m, "f32", QB_GGML_F32);
        roundtrip(m, "w4g32", QB_GGML_Q4_1);
        qb_model_free(m);
        m = NULL;
    }
    snprintf(path, sizeof path, "%s/tied.gguf", check_tmpdir());
    CHECK(tg_write(&t, 12, path) == 0);
    CHECK(qb_model_load(path, NULL, &m) == 0);
    if (m) {
        roundtrip(m, "w4g32-sym", QB_GGML_Q4_0);
        qb_model_free(m);
    }
}

static void test_stories(void)
{
    struct qb_model *m = NULL;
    CHECK(qb_model_load(qb_shared_path(STORIES), NULL, &m) == 0);
    if (!m)
        return;
    roundtrip(m, "f32", QB_GGML_F32);
    roundtrip(m, "w4g32-sym+down=f16", QB_GGML_Q4_0);
    roundtrip(m, "w4g32+down=f16", QB_GGML_Q4_1);
    refused(m, "w4g32-sym",
            "has 172 inputs, not a whole number of 32-weight q4_0 blocks; nearest "
            "config that exports exactly: w4g32-sym+down=f16");
    qb_model_free(m);
}

int main(void)
{
    qb_kernels_init(NULL);
    RUN(test_tiny_qwen2_and_tied);
    if (qb_model_load(DEMO, NULL, &demo) == 0) {
        RUN(test_demo_f32);
        RUN(test_demo_qk_permuted);
        RUN(test_demo_f16);
        RUN(test_demo_bf16);
        RUN(test_demo_w4g32_sym);
        RUN(test_demo_w4g128_sym);
        RUN(test_demo_w4g32);
        RUN(test_demo_w4g128);
        RUN(test_demo_overrides);
        RUN(test_demo_refusals);
        RUN(test_w8_f16_scales);
        RUN(test_demo_gptq);
        qb_model_free(demo);
    } else {
        SKIP(test_demo, DEMO " does not load (run from the repository root)");
    }
    if (qb_shared_path(STORIES))
        RUN(test_stories);
    else
        SKIP(test_stories, "needs ../shared/models/stories260K");
    return check_summary();
}
