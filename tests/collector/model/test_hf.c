/* test_hf: the Hugging Face directory loader (config.json + safetensors).
 *
 * The key test rebuilds an HF directory from the GGUF stories260K model: Q/K rows go back
 * from GGUF's interleaved layout to HF's rotate-half one (the inverse of the permutation in
 * llama.cpp's convert_hf_to_gguf.py), and both models must give the same logits at every
 * position. A small random Qwen2 model (q/k/v biases, tied embeddings) is checked against a
 * naive double-precision forward pass written here from the HF modeling code. */
#include "collector/engine/engine.h"
#include "kernels/base/err.h"
#include "collector/model/hf_config.h"
#include "collector/model/model.h"
#include "collector/model/safetensors.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/half.h"
#include "tests/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GGUF "models/stories260K-gguf/stories260K.gguf"
#define TOK "models/stories260K/tok512.bin"
#define N_TOK 40

/* ---------- writing HF directories ---------- */

struct tw { /* one tensor to write, PyTorch shape order */
    char name[96];
    int n_dims;
    int64_t shape[2];
    const float *data;
};

struct tlist {
    int n;
    struct tw t[256];
};

static void add(struct tlist *l, const char *name, int64_t d0, int64_t d1, const float *data)
{
    struct tw *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = data;
}

static void add_layer(struct tlist *l, int64_t layer, const char *suffix, int64_t d0, int64_t d1,
                      const float *data)
{
    char name[96];
    snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)layer, suffix);
    add(l, name, d0, d1, data);
}

static int64_t numel(const struct tw *t)
{
    return t->n_dims == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, text, strlen(text));
}

/* A safetensors file: u64 header length, JSON header padded with spaces so the data starts
 * `misalign` bytes past a multiple of 8, then the data. Writes tensors [0, n) as dtype. */
static void write_st_ex(const char *path, const struct tw *t, int n, const char *dtype,
                        int misalign)
{
    size_t esz = strcmp(dtype, "F32") ? 2 : 4, cap = 256 + (size_t)n * 256, len = 0, off = 0;
    char *hdr = malloc(cap);
    FILE *f = fopen(path, "wb");
    uint64_t hlen;
    unsigned char le[8];

    CHECK(f != NULL && hdr != NULL);
    if (!f || !hdr)
        goto out;
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)numel(&t[i]) * esz;
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld",
                                t[i].name, dtype, (long long)t[i].shape[0]);
        if (t[i].n_dims == 2)
            len += (size_t)snprintf(hdr + len, cap - len, ",%lld", (long long)t[i].shape[1]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while ((8 + len) % 8 != (size_t)misalign)
        hdr[len++] = ' ';
    hlen = len;
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, len, f);
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < numel(&t[i]); k++) {
            float x = t[i].data[k];
            uint16_t h = !strcmp(dtype, "F16") ? qb_f32_to_f16(x) : qb_f32_to_bf16(x);
            if (esz == 4)
                fwrite(&x, 4, 1, f);
            else
                fwrite(&h, 2, 1, f);
        }
out:
    if (f)
        fclose(f);
    free(hdr);
}

static void write_st(const char *path, const struct tw *t, int n, const char *dtype)
{
    write_st_ex(path, t, n, dtype, 0);
}

/* config.json for c; extra ("" or ",\"key\":value...") is appended inside the object. */
static void write_config(const char *dir, const struct qb_config *c, const char *arch,
                         const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\n  \"architectures\": [\"%s\"],\n  \"hidden_size\": %lld,\n"
             "  \"intermediate_size\": %lld,\n  \"num_hidden_layers\": %lld,\n"
             "  \"num_attention_heads\": %lld,\n  \"num_key_value_heads\": %lld,\n"
             "  \"vocab_size\": %lld,\n  \"max_position_embeddings\": %lld,\n"
             "  \"rope_theta\": %.9g,\n  \"rms_norm_eps\": %.9g,\n"
             "  \"tie_word_embeddings\": %s,\n  \"hidden_act\": \"silu\",\n"
             "  \"torch_dtype\": \"float32\"%s\n}\n",
             arch, (long long)c->dim, (long long)c->hidden_dim, (long long)c->n_layers,
             (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->vocab_size,
             (long long)c->max_seq_len, c->rope_theta, c->norm_eps,
             c->tied_embeddings ? "true" : "false", extra);
    write_text(dir, "config.json", text);
}

static char *subdir(const char *name)
{
    static char bufs[8][1024];
    static int k;
    char *p = bufs[k++ % 8];
    snprintf(p, 1024, "%s/%s", check_tmpdir(), name);
    mkdir(p, 0755);
    return p;
}

static char *file_in(const char *dir, const char *name)
{
    static char bufs[4][1024];
    static int k;
    char *p = bufs[k++ % 4];
    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

/* ---------- running models ---------- */

static void make_tokens(int32_t *ids, int n, int64_t vocab)
{
    uint32_t s = 12345;
    ids[0] = 1;
    for (int i = 1; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        ids[i] = (int32_t)((s >> 8) % (uint32_t)vocab);
    }
}

/* Logits of every position, (n, vocab); NULL on failure. */
static float *run_logits(const struct qb_model *m, const int32_t *ids, int n)
{
    struct qb_engine *e = NULL;
    float *out = malloc((size_t)n * (size_t)m->cfg.vocab_size * sizeof(float));
    if (!out || qb_engine_new(m, 64, &e) < 0 || qb_engine_forward(e, ids, n, out) < 0) {
        fprintf(stderr, "  engine: %s\n", qb_errmsg());
        free(out);
        out = NULL;
    }
    qb_engine_free(e);
    return out;
}

/* Max over positions of max|a-b| / max|a| for (n, vocab) logits; NaN counts as infinite. */
static double max_rel_err(const float *a, const float *b, int n, int64_t vocab)
{
    double worst = 0;
    for (int t = 0; t < n; t++) {
        double mx = 0, d = 0, rel;
        for (int64_t i = 0; i < vocab; i++) {
            double ai = a[t * vocab + i], di = fabs(ai - b[t * vocab + i]);
            if (!(fabs(ai) <= mx))
                mx = fabs(ai);
            if (!(di <= d))
                d = di;
        }
        if (isnan(d) || isnan(mx))
            return INFINITY;
        rel = mx > 0 ? d / mx : (d > 0 ? INFINITY : 0);
        if (rel > worst)
            worst = rel;
    }
    return worst;
}

static struct qb_model *load_hf_dir(const char *dir)
{
    struct qb_model *m = NULL;
    struct qb_load_opts o = {0};
    if (qb_model_load(dir, &o, &m) < 0) {
        fprintf(stderr, "  load '%s': %s\n", dir, qb_errmsg());
        return NULL;
    }
    return m;
}

/* ---------- the GGUF model as an HF directory ---------- */

/* GGUF keeps Q/K rows in interleaved-pair order: within a head, row 2*i + j (pair i,
 * j in {0, 1}) is HF row j*(head_dim/2) + i. Returns the HF (rotate-half) order. */
static float *unpermute(const float *w, int64_t n_heads, int64_t hd, int64_t dim)
{
    float *out = malloc((size_t)(n_heads * hd * dim) * sizeof(float));
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(out + (h * hd + j * (hd / 2) + i) * dim, w + (h * hd + 2 * i + j) * dim,
                       (size_t)dim * sizeof(float));
    return out;
}

struct hf_export {
    struct tlist l;
    float *owned[64];
    int n_owned;
};

/* All tensors of m under HF names, Q/K back in rotate-half order. */
static void export_tensors(const struct qb_model *m, struct hf_export *x)
{
    const struct qb_config *c = &m->cfg;
    int64_t d = c->dim, q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    int64_t hid = c->hidden_dim;

    memset(x, 0, sizeof *x);
    add(&x->l, "model.embed_tokens.weight", c->vocab_size, d, m->tok_embd);
    for (int64_t i = 0; i < c->n_layers; i++) {
        const struct qb_layer *y = &m->layers[i];
        float *wq = unpermute(y->wq, c->n_heads, c->head_dim, d);
        float *wk = unpermute(y->wk, c->n_kv_heads, c->head_dim, d);
        x->owned[x->n_owned++] = wq;
        x->owned[x->n_owned++] = wk;
        add_layer(&x->l, i, "input_layernorm.weight", d, 0, y->attn_norm);
        add_layer(&x->l, i, "self_attn.q_proj.weight", q, d, wq);
        add_layer(&x->l, i, "self_attn.k_proj.weight", kv, d, wk);
        add_layer(&x->l, i, "self_attn.v_proj.weight", kv, d, y->wv);
        add_layer(&x->l, i, "self_attn.o_proj.weight", d, q, y->wo);
        add_layer(&x->l, i, "post_attention_layernorm.weight", d, 0, y->ffn_norm);
        add_layer(&x->l, i, "mlp.gate_proj.weight", hid, d, y->w_gate);
        add_layer(&x->l, i, "mlp.up_proj.weight", hid, d, y->w_up);
        add_layer(&x->l, i, "mlp.down_proj.weight", d, hid, y->w_down);
    }
    add(&x->l, "model.norm.weight", d, 0, m->out_norm);
    add(&x->l, "lm_head.weight", c->vocab_size, d, m->output);
}

static void export_free(struct hf_export *x)
{
    for (int i = 0; i < x->n_owned; i++)
        free(x->owned[i]);
}

static struct qb_model *load_gguf(void)
{
    struct qb_model *m = NULL;
    const char *p = qb_shared_path(GGUF);
    struct qb_load_opts o = {0};
    if (!p)
        return NULL;
    if (qb_model_load(p, &o, &m) < 0) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        return NULL;
    }
    return m;
}

/* Writes the GGUF model as dir (one file of dtype, or two shards) with its config. */
static void write_gguf_as_hf(const struct qb_model *g, const char *dir, const char *dtype,
                             int sharded)
{
    struct hf_export x;
    struct qb_config c = g->cfg;
    c.tied_embeddings = 0;
    export_tensors(g, &x);
    write_config(dir, &c, "LlamaForCausalLM", "");
    if (!sharded) {
        write_st(file_in(dir, "model.safetensors"), x.l.t, x.l.n, dtype);
    } else {
        int half = x.l.n / 2;
        size_t cap = 64 + (size_t)x.l.n * 160, len = 0;
        char *idx = malloc(cap);
        write_st(file_in(dir, "model-00001-of-00002.safetensors"), x.l.t, half, dtype);
        write_st(file_in(dir, "model-00002-of-00002.safetensors"), x.l.t + half, x.l.n - half,
                 dtype);
        len += (size_t)snprintf(idx, cap, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        for (int i = 0; i < x.l.n; i++)
            len += (size_t)snprintf(idx + len, cap - len,
                                    "%s\"%s\": \"model-0000%d-of-00002.safetensors\"",
                                    i ? ", " : "", x.l.t[i].name, i < half ? 1 : 2);
        snprintf(idx + len, cap - len, "}}\n");
        write_text(dir, "model.safetensors.index.json", idx);
        free(idx);
    }
    export_free(&x);
}

static void test_llama_matches_gguf(void)
{
    struct qb_model *g = load_gguf(), *h = NULL;
    const char *dir = subdir("llama-f32");
    int32_t ids[N_TOK];
    float *lg = NULL, *lh = NULL;
    double err;

    CHECK(g != NULL);
    if (!g)
        return;
    write_gguf_as_hf(g, dir, "F32", 0);
    h = load_hf_dir(dir);
    CHECK(h != NULL);
    if (!h)
        goto out;
    CHECK(!strcmp(h->format, "hf"));
    CHECK(!strcmp(h->cfg.arch, "llama"));
    CHECK(h->cfg.dim == g->cfg.dim && h->cfg.hidden_dim == g->cfg.hidden_dim);
    CHECK(h->cfg.n_layers == g->cfg.n_layers && h->cfg.n_heads == g->cfg.n_heads);
    CHECK(h->cfg.n_kv_heads == g->cfg.n_kv_heads && h->cfg.head_dim == g->cfg.head_dim);
    CHECK(h->cfg.vocab_size == g->cfg.vocab_size && h->cfg.max_seq_len == g->cfg.max_seq_len);
    CHECK(h->cfg.rope_theta == g->cfg.rope_theta && h->cfg.norm_eps == g->cfg.norm_eps);
    CHECK(h->cfg.rope_style == QB_ROPE_HALF && g->cfg.rope_style == QB_ROPE_INTERLEAVED);
    CHECK(!h->cfg.tied_embeddings && !h->cfg.has_qkv_bias && h->output != h->tok_embd);
    CHECK(h->tok == NULL); /* no tokenizer.json in the directory */
    CHECK(h->n_tensors == 3 + 9 * h->cfg.n_layers);
    /* V, O and the FFN are not permuted: the values must be the same bits */
    CHECK(!memcmp(h->layers[2].wv, g->layers[2].wv,
                  (size_t)(g->cfg.n_kv_heads * g->cfg.head_dim * g->cfg.dim) * sizeof(float)));
    CHECK(!memcmp(h->layers[4].w_down, g->layers[4].w_down,
                  (size_t)(g->cfg.hidden_dim * g->cfg.dim) * sizeof(float)));

    make_tokens(ids, N_TOK, g->cfg.vocab_size);
    lg = run_logits(g, ids, N_TOK);
    lh = run_logits(h, ids, N_TOK);
    CHECK(lg && lh);
    if (lg && lh) {
        err = max_rel_err(lg, lh, N_TOK, g->cfg.vocab_size);
        printf("# hf vs gguf: max relative logit error %.3g over %d positions\n", err, N_TOK);
        CHECK(err <= 1e-5);
    }
out:
    free(lg);
    free(lh);
    qb_model_free(h);
    qb_model_free(g);
}

/* The model's weight pointers in export_tensors' order. */
static int model_ptrs(const struct qb_model *m, const float **p)
{
    int n = 0;
    p[n++] = m->tok_embd;
    for (int64_t i = 0; i < m->cfg.n_layers; i++) {
        const struct qb_layer *y = &m->layers[i];
        p[n++] = y->attn_norm, p[n++] = y->wq, p[n++] = y->wk, p[n++] = y->wv, p[n++] = y->wo;
        p[n++] = y->ffn_norm, p[n++] = y->w_gate, p[n++] = y->w_up, p[n++] = y->w_down;
    }
    p[n++] = m->out_norm;
    p[n++] = m->output;
    return n;
}

/* F16 and BF16 files: every weight equals the f32 weight rounded to that type. */
static void test_half_dtypes(void)
{
    static const char *const dts[2] = {"F16", "BF16"};
    struct qb_model *g = load_gguf();
    struct hf_export x;

    CHECK(g != NULL);
    if (!g)
        return;
    export_tensors(g, &x);
    for (int k = 0; k < 2; k++) {
        char name[32];
        const char *dir;
        struct qb_model *h;
        const float *got[256];
        int64_t bad = 0, n_eq = 0;

        snprintf(name, sizeof name, "llama-%s", dts[k]);
        dir = subdir(name);
        write_gguf_as_hf(g, dir, dts[k], 0);
        h = load_hf_dir(dir);
        CHECK(h != NULL);
        if (!h)
            continue;
        CHECK(model_ptrs(h, got) == x.l.n);
        for (int t = 0; t < x.l.n; t++)
            for (int64_t i = 0; i < numel(&x.l.t[t]); i++) {
                float w = x.l.t[t].data[i];
                float r =
                    k == 0 ? qb_f16_to_f32(qb_f32_to_f16(w)) : qb_bf16_to_f32(qb_f32_to_bf16(w));
                bad += got[t][i] != r;
                n_eq += got[t][i] == w;
            }
        CHECK(bad == 0);
        CHECK(n_eq < 1000); /* really rounded: few weights are exact in 16 bits */
        CHECK(h->n_tensors == x.l.n);
        CHECK(h->tensors[0].dtype == (k == 0 ? QB_DT_F16 : QB_DT_BF16));
        CHECK(h->tensors[0].bytes == (size_t)numel(&x.l.t[0]) * 2);
        qb_model_free(h);
    }
    export_free(&x);
    qb_model_free(g);
}

/* --tokenizer supplies one (a llama2.c tokenizer.bin here; .json would go to qb_tok_load_hf) */
static void test_tokenizer_override(void)
{
    struct qb_model *g = load_gguf(), *h = NULL;
    const char *dir = subdir("llama-tok");
    char tok[4096];
    struct qb_load_opts o = {0};

    CHECK(g != NULL);
    if (!g)
        return;
    write_gguf_as_hf(g, dir, "F32", 0);
    snprintf(tok, sizeof tok, "%s", qb_shared_path(TOK));
    o.tokenizer_path = tok;
    CHECK(qb_model_load(dir, &o, &h) == 0);
    CHECK(h && h->tok && qb_tok_n_vocab(h->tok) == 512);
    qb_model_free(h);
    qb_model_free(g);
}

static void test_sharded(void)
{
    struct qb_model *g = load_gguf(), *one = NULL, *two = NULL;
    const char *d1 = subdir("llama-one"), *d2 = subdir("llama-sharded");
    int32_t ids[N_TOK];
    float *a = NULL, *b = NULL;

    CHECK(g != NULL);
    if (!g)
        return;
    write_gguf_as_hf(g, d1, "F32", 0);
    write_gguf_as_hf(g, d2, "F32", 1);
    one = load_hf_dir(d1);
    two = load_hf_dir(d2);
    CHECK(one && two);
    if (one && two) {
        CHECK(two->n_maps == 2);
        CHECK(two->n_tensors == one->n_tensors);
        make_tokens(ids, N_TOK, g->cfg.vocab_size);
        a = run_logits(one, ids, N_TOK);
        b = run_logits(two, ids, N_TOK);
        CHECK(a && b && !memcmp(a, b, sizeof(float) * N_TOK * (size_t)g->cfg.vocab_size));
    }
    free(a);
    free(b);
    qb_model_free(one);
    qb_model_free(two);
    qb_model_free(g);
}

/* ---------- a random model and a naive reference forward ---------- */

struct rmodel {
    struct qb_config c;
    float *embd, *out_norm, *lm_head;
    float *attn_norm[2], *wq[2], *wk[2], *wv[2], *wo[2], *bq[2], *bk[2], *bv[2];
    float *ffn_norm[2], *wg[2], *wu[2], *wd[2];
    float *all[64];
    int n_all;
};

static uint32_t rng = 1;
static float frand(float a, float b)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return a + (b - a) * (float)(rng >> 8) / 16777216.0f;
}

static float *rnd(struct rmodel *r, int64_t n, float a, float b)
{
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        p[i] = frand(a, b);
    r->all[r->n_all++] = p;
    return p;
}

/* Qwen2-shaped (biases) or Llama-shaped random model: dim 32, 4 heads of 8, 2 kv heads. */
static void rmodel_init(struct rmodel *r, int qwen)
{
    struct qb_config *c = &r->c;
    memset(r, 0, sizeof *r);
    rng = 7;
    snprintf(c->arch, sizeof c->arch, "%s", qwen ? "qwen2" : "llama");
    c->dim = 32, c->hidden_dim = 48, c->n_layers = 2, c->n_heads = 4, c->n_kv_heads = 2;
    c->head_dim = 8, c->vocab_size = 64, c->max_seq_len = 128;
    c->rope_theta = qwen ? 1000000.0f : 10000.0f;
    c->norm_eps = 1e-6f;
    c->rope_style = QB_ROPE_HALF;
    c->tied_embeddings = qwen;
    c->has_qkv_bias = qwen;
    r->embd = rnd(r, 64 * 32, -1, 1);
    r->out_norm = rnd(r, 32, 0.8f, 1.2f);
    r->lm_head = qwen ? r->embd : rnd(r, 64 * 32, -0.3f, 0.3f);
    for (int l = 0; l < 2; l++) {
        r->attn_norm[l] = rnd(r, 32, 0.8f, 1.2f);
        r->wq[l] = rnd(r, 32 * 32, -0.3f, 0.3f);
        r->wk[l] = rnd(r, 16 * 32, -0.3f, 0.3f);
        r->wv[l] = rnd(r, 16 * 32, -0.3f, 0.3f);
        r->wo[l] = rnd(r, 32 * 32, -0.3f, 0.3f);
        r->bq[l] = rnd(r, 32, -0.5f, 0.5f);
        r->bk[l] = rnd(r, 16, -0.5f, 0.5f);
        r->bv[l] = rnd(r, 16, -0.5f, 0.5f);
        r->ffn_norm[l] = rnd(r, 32, 0.8f, 1.2f);
        r->wg[l] = rnd(r, 48 * 32, -0.3f, 0.3f);
        r->wu[l] = rnd(r, 48 * 32, -0.3f, 0.3f);
        r->wd[l] = rnd(r, 32 * 48, -0.3f, 0.3f);
    }
}

static void rmodel_free(struct rmodel *r)
{
    for (int i = 0; i < r->n_all; i++)
        free(r->all[i]);
}

static void rmodel_tensors(const struct rmodel *r, struct tlist *l, int with_lm_head)
{
    l->n = 0;
    add(l, "model.embed_tokens.weight", 64, 32, r->embd);
    for (int i = 0; i < 2; i++) {
        add_layer(l, i, "input_layernorm.weight", 32, 0, r->attn_norm[i]);
        add_layer(l, i, "self_attn.q_proj.weight", 32, 32, r->wq[i]);
        add_layer(l, i, "self_attn.k_proj.weight", 16, 32, r->wk[i]);
        add_layer(l, i, "self_attn.v_proj.weight", 16, 32, r->wv[i]);
        if (r->c.has_qkv_bias) {
            add_layer(l, i, "self_attn.q_proj.bias", 32, 0, r->bq[i]);
            add_layer(l, i, "self_attn.k_proj.bias", 16, 0, r->bk[i]);
            add_layer(l, i, "self_attn.v_proj.bias", 16, 0, r->bv[i]);
        }
        add_layer(l, i, "self_attn.o_proj.weight", 32, 32, r->wo[i]);
        add_layer(l, i, "post_attention_layernorm.weight", 32, 0, r->ffn_norm[i]);
        add_layer(l, i, "mlp.gate_proj.weight", 48, 32, r->wg[i]);
        add_layer(l, i, "mlp.up_proj.weight", 48, 32, r->wu[i]);
        add_layer(l, i, "mlp.down_proj.weight", 32, 48, r->wd[i]);
    }
    add(l, "model.norm.weight", 32, 0, r->out_norm);
    if (with_lm_head)
        add(l, "lm_head.weight", 64, 32, r->lm_head);
}

static void write_rmodel(const struct rmodel *r, const char *dir, int with_lm_head)
{
    struct tlist l;
    rmodel_tensors(r, &l, with_lm_head);
    write_config(dir, &r->c, r->c.has_qkv_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM", "");
    write_st(file_in(dir, "model.safetensors"), l.t, l.n, "F32");
}

static void matvec(const float *w, const float *b, const double *x, int64_t out, int64_t in,
                   double *y)
{
    for (int64_t o = 0; o < out; o++) {
        double s = b ? b[o] : 0;
        for (int64_t i = 0; i < in; i++)
            s += (double)w[o * in + i] * x[i];
        y[o] = s;
    }
}

static void rmsnorm(const double *x, const float *w, int64_t n, double eps, double *y)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * ss * w[i];
}

/* rotate_half RoPE (modeling_llama.py apply_rotary_pos_emb) on n_heads heads of hd. */
static void rope_half(double *v, int64_t n_heads, int64_t hd, int pos, double theta)
{
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < hd / 2; i++) {
            double f = pos * pow(theta, -2.0 * (double)i / (double)hd);
            double a = v[h * hd + i], b = v[h * hd + i + hd / 2];
            v[h * hd + i] = a * cos(f) - b * sin(f);
            v[h * hd + i + hd / 2] = b * cos(f) + a * sin(f);
        }
}

/* The HF forward in double precision, one position at a time. logits: (n, vocab). */
static void ref_forward(const struct rmodel *r, const int32_t *ids, int n, float *logits)
{
    enum { D = 32, Q = 32, KV = 16, HID = 48, V = 64, HD = 8, NH = 4, NKV = 2, MAXT = 64 };
    static double kc[2][MAXT][KV], vc[2][MAXT][KV];
    double x[D], xb[D], q[Q], k[KV], v[KV], att[Q], o[D], g[HID], u[HID], y[V];
    const float *bq, *bk, *bv;
    double eps = r->c.norm_eps, theta = r->c.rope_theta;

    for (int t = 0; t < n; t++) {
        for (int i = 0; i < D; i++)
            x[i] = r->embd[ids[t] * D + i];
        for (int l = 0; l < 2; l++) {
            bq = r->c.has_qkv_bias ? r->bq[l] : NULL;
            bk = r->c.has_qkv_bias ? r->bk[l] : NULL;
            bv = r->c.has_qkv_bias ? r->bv[l] : NULL;
            rmsnorm(x, r->attn_norm[l], D, eps, xb);
            matvec(r->wq[l], bq, xb, Q, D, q);
            matvec(r->wk[l], bk, xb, KV, D, k);
            matvec(r->wv[l], bv, xb, KV, D, v);
            rope_half(q, NH, HD, t, theta);
            rope_half(k, NKV, HD, t, theta);
            memcpy(kc[l][t], k, sizeof k);
            memcpy(vc[l][t], v, sizeof v);
            for (int h = 0; h < NH; h++) {
                int kh = h / (NH / NKV);
                double s[MAXT], mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    s[j] = 0;
                    for (int i = 0; i < HD; i++)
                        s[j] += q[h * HD + i] * kc[l][j][kh * HD + i];
                    s[j] /= sqrt((double)HD);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j <= t; j++)
                    sum += (s[j] = exp(s[j] - mx));
                for (int i = 0; i < HD; i++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++)
                        a += s[j] / sum * vc[l][j][kh * HD + i];
                    att[h * HD + i] = a;
                }
            }
            matvec(r->wo[l], NULL, att, D, Q, o);
            for (int i = 0; i < D; i++)
                x[i] += o[i];
            rmsnorm(x, r->ffn_norm[l], D, eps, xb);
            matvec(r->wg[l], NULL, xb, HID, D, g);
            matvec(r->wu[l], NULL, xb, HID, D, u);
            for (int i = 0; i < HID; i++)
                g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            matvec(r->wd[l], NULL, g, D, HID, o);
            for (int i = 0; i < D; i++)
                x[i] += o[i];
        }
        rmsnorm(x, r->out_norm, D, eps, xb);
        matvec(r->lm_head, NULL, xb, V, D, y);
        for (int i = 0; i < V; i++)
            logits[t * V + i] = (float)y[i];
    }
}

static void test_qwen2_biases(void)
{
    struct rmodel r;
    struct qb_model *m = NULL, *m2 = NULL;
    const char *dir = subdir("qwen2"), *dir2 = subdir("qwen2-bias");
    int32_t ids[N_TOK];
    float ref[N_TOK * 64], *lg = NULL, *lg2 = NULL;
    double err;

    rmodel_init(&r, 1);
    write_rmodel(&r, dir, 0);
    m = load_hf_dir(dir);
    CHECK(m != NULL);
    if (!m)
        goto out;
    CHECK(!strcmp(m->cfg.arch, "qwen2") && m->cfg.has_qkv_bias);
    CHECK(m->cfg.tied_embeddings && m->output == m->tok_embd);
    CHECK(m->cfg.rope_theta == 1000000.0f);
    CHECK(m->layers[1].bq && m->layers[1].bk && m->layers[1].bv);
    CHECK(m->layers[1].bk && !memcmp(m->layers[1].bk, r.bk[1], 16 * sizeof(float)));
    make_tokens(ids, N_TOK, 64);
    ref_forward(&r, ids, N_TOK, ref);
    lg = run_logits(m, ids, N_TOK);
    CHECK(lg != NULL);
    if (lg) {
        err = max_rel_err(ref, lg, N_TOK, 64);
        printf("# qwen2 vs reference forward: max relative logit error %.3g\n", err);
        CHECK(err <= 1e-5);
    }

    /* a different k bias must change the logits (a bias the engine ignored would not) */
    for (int i = 0; i < 16; i++)
        r.bk[0][i] += 0.5f;
    write_rmodel(&r, dir2, 0);
    m2 = load_hf_dir(dir2);
    CHECK(m2 != NULL);
    if (m2 && lg) {
        lg2 = run_logits(m2, ids, N_TOK);
        CHECK(lg2 && max_rel_err(lg, lg2, N_TOK, 64) > 1e-3);
        ref_forward(&r, ids, N_TOK, ref);
        CHECK(lg2 && max_rel_err(ref, lg2, N_TOK, 64) <= 1e-5);
    }
out:
    free(lg);
    free(lg2);
    qb_model_free(m);
    qb_model_free(m2);
    rmodel_free(&r);
}

/* Llama with a random lm_head against the reference; tied or head-less -> output = embedding. */
static void test_llama_random_and_tied(void)
{
    struct rmodel r;
    struct qb_model *m = NULL;
    const char *d1 = subdir("llama-rand"), *d2 = subdir("llama-tied"), *d3 = subdir("llama-nohead");
    int32_t ids[N_TOK];
    float ref[N_TOK * 64], *lg = NULL;

    rmodel_init(&r, 0);
    write_rmodel(&r, d1, 1);
    make_tokens(ids, N_TOK, 64);
    ref_forward(&r, ids, N_TOK, ref);
    m = load_hf_dir(d1);
    CHECK(m != NULL);
    if (m) {
        CHECK(!m->cfg.tied_embeddings && m->output != m->tok_embd && !m->layers[0].bq);
        lg = run_logits(m, ids, N_TOK);
        CHECK(lg && max_rel_err(ref, lg, N_TOK, 64) <= 1e-5);
        qb_model_free(m);
    }
    /* tie_word_embeddings true: lm_head in the file is ignored, as transformers ties it */
    r.c.tied_embeddings = 1;
    write_rmodel(&r, d2, 1);
    m = load_hf_dir(d2);
    CHECK(m && m->cfg.tied_embeddings && m->output == m->tok_embd);
    qb_model_free(m);
    /* no lm_head at all: tied */
    r.c.tied_embeddings = 0;
    write_rmodel(&r, d3, 0);
    m = load_hf_dir(d3);
    CHECK(m && m->cfg.tied_embeddings && m->output == m->tok_embd);
    qb_model_free(m);
    free(lg);
    rmodel_free(&r);
}

/* tokenizer.json beside the weights is loaded; a broken one fails the load, naming it */
static void test_tokenizer_json(void)
{
    struct rmodel r;
    struct qb_model *m = NULL;
    const char *dir = subdir("qwen2-tok");

    rmodel_init(&r, 1);
    write_rmodel(&r, dir, 0);
    write_text(dir, "tokenizer.json",
               "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null,\n"
               " \"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null,\n"
               " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},\n"
               "           \"merges\": [\"a b\"]}}\n");
    m = load_hf_dir(dir);
    CHECK(m && m->tok && qb_tok_n_vocab(m->tok) == 3);
    qb_model_free(m);
    m = NULL;
    write_text(dir, "tokenizer.json", "{\"model\": ");
    CHECK(qb_model_load(dir, NULL, &m) < 0 && m == NULL);
    CHECK(strstr(qb_errmsg(), file_in(dir, "tokenizer.json")) != NULL);
    rmodel_free(&r);
}

/* F32 data at an offset that is not a multiple of 4 is copied, never cast. */
static void test_unaligned_f32(void)
{
    struct rmodel r;
    struct tlist l;
    struct qb_st_file *f = NULL;
    struct qb_model *m;
    const char *dir = subdir("llama-unaligned");

    rmodel_init(&r, 0);
    rmodel_tensors(&r, &l, 1);
    write_config(dir, &r.c, "LlamaForCausalLM", "");
    write_st_ex(file_in(dir, "model.safetensors"), l.t, l.n, "F32", 2);
    CHECK(qb_st_open(file_in(dir, "model.safetensors"), &f) == 0);
    CHECK(f && f->n_tensors == l.n && !f->tensors[0].aligned);
    qb_st_free(f);
    m = load_hf_dir(dir);
    CHECK(m != NULL);
    if (m) {
        CHECK(((uintptr_t)m->layers[1].wq & 3) == 0);
        CHECK(!memcmp(m->layers[1].wq, r.wq[1], 32 * 32 * sizeof(float)));
        CHECK(!memcmp(m->output, r.lm_head, 64 * 32 * sizeof(float)));
    }
    qb_model_free(m);
    rmodel_free(&r);
}

/* ---------- the parsers on their own ---------- */

/* A safetensors image in memory: 8-byte length + header + data_size zero bytes. */
static unsigned char *st_image(const char *header, size_t data_size, size_t *size)
{
    size_t h = strlen(header);
    unsigned char *p = calloc(1, 8 + h + data_size);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(p + 8, header, h);
    *size = 8 + h + data_size;
    return p;
}

static void test_st_parse(void)
{
    size_t n;
    struct qb_st_file *f = NULL;
    const struct qb_st_tensor *t;
    unsigned char *img =
        st_image("{\"b\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[16,32]},"
                 "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2,2],\"data_offsets\":[0,16]},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[32,32]},"
                 "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[32,34]},"
                 "\"__metadata__\":{\"format\":\"pt\"}}   ",
                 34, &n);

    CHECK(qb_st_open_mem(img, n, "mem", &f) == 0);
    if (f) {
        CHECK(f->n_tensors == 4 && f->n_meta == 1);
        CHECK(qb_st_meta(f, "format") && !strcmp(qb_st_meta(f, "format"), "pt"));
        CHECK(!strcmp(f->tensors[0].name, "a")); /* file order */
        t = qb_st_find(f, "b");
        CHECK(t && !t->supported && !strcmp(t->dtype_name, "I64") && t->nbytes == 16);
        t = qb_st_find(f, "a");
        CHECK(t && t->supported && t->dtype == QB_DT_BF16 && t->n_dims == 3 && t->n_elems == 8);
        t = qb_st_find(f, "e");
        CHECK(t && t->n_elems == 0 && t->nbytes == 0);
        t = qb_st_find(f, "s");
        CHECK(t && t->n_dims == 0 && t->n_elems == 1 && t->data == f->data + 32);
        CHECK(qb_st_find(f, "zz") == NULL && qb_st_find(f, "") == NULL);
    }
    qb_st_free(f);
    free(img);
}

static void test_config_parse(void)
{
    struct qb_config c;
#define BASE                                                                                       \
    "{\"architectures\":[\"%s\"],\"hidden_size\":64,\"intermediate_size\":128,"                    \
    "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"vocab_size\":100%s}"
    char text[1024];

#define PARSE(arch, extra)                                                                         \
    (snprintf(text, sizeof text, BASE, arch, extra),                                               \
     qb_hf_config_parse(text, strlen(text), "cfg.json", &c))

    CHECK(PARSE("LlamaForCausalLM", "") == 0);
    CHECK(c.n_kv_heads == 8 && c.head_dim == 8 && c.rope_theta == 10000.0f);
    CHECK(c.max_seq_len == 2048 && c.norm_eps == 1e-6f && !c.tied_embeddings);
    CHECK(c.rope_style == QB_ROPE_HALF && !c.has_qkv_bias && !strcmp(c.arch, "llama"));
    CHECK(PARSE("Qwen2ForCausalLM", ",\"tie_word_embeddings\":true") == 0);
    CHECK(c.has_qkv_bias && c.tied_embeddings && c.rope_theta == 1000000.0f);
    CHECK(PARSE("Qwen2ForCausalLM", ",\"rope_theta\":10000.0,\"sliding_window\":32") == 0);
    CHECK(c.rope_theta == 10000.0f && c.max_seq_len == 2048); /* use_sliding_window absent */
    CHECK(PARSE("MistralForCausalLM", ",\"sliding_window\":256,\"max_position_embeddings\":4096,"
                                      "\"num_key_value_heads\":2,\"head_dim\":16") == 0);
    /* the window is computed, not a cap on the context */
    CHECK(!strcmp(c.arch, "mistral") && c.max_seq_len == 4096 && c.head_dim == 16);
    CHECK(c.sliding_window == 256 && c.swa_from_layer == 0);
    CHECK(c.n_kv_heads == 2);
    CHECK(PARSE("LlamaForCausalLM", ",\"rope_scaling\":{\"rope_type\":\"default\"}") == 0);
    text[0] = 0;
    snprintf(text, sizeof text,
             "{\"model_type\":\"qwen2\",\"hidden_size\":64,"
             "\"intermediate_size\":128,\"num_hidden_layers\":2,"
             "\"num_attention_heads\":8,\"vocab_size\":100}");
    CHECK(qb_hf_config_parse(text, strlen(text), "cfg.json", &c) == 0 && c.has_qkv_bias);

    /* refused, naming the file */
    CHECK(PARSE("LlamaForCausalLM",
                ",\"rope_scaling\":{\"rope_type\":\"longrope\",\"factor\":8}") == QB_EUNSUP);
    CHECK(strstr(qb_errmsg(), "'cfg.json'") != NULL);
    CHECK(PARSE("GPT2LMHeadModel", "") == QB_EUNSUP);
    CHECK(PARSE("LlamaForCausalLM", ",\"num_key_value_heads\":3") == QB_EFORMAT);
    CHECK(PARSE("LlamaForCausalLM", ",\"max_position_embeddings\":\"4096\"") == QB_EFORMAT);
    CHECK(PARSE("LlamaForCausalLM", ",\"rms_norm_eps\":-1") == QB_EFORMAT);
    CHECK(PARSE("LlamaForCausalLM", ",\"tie_word_embeddings\":1") == QB_EFORMAT);
    CHECK(PARSE("LlamaForCausalLM", ",\"hidden_act\":\"gelu\"") == QB_EUNSUP);
    CHECK(PARSE("LlamaForCausalLM", ",\"attention_bias\":true") == QB_EUNSUP);
    CHECK(PARSE("LlamaForCausalLM", ",\"head_dim\":7") == QB_EFORMAT);
    CHECK(PARSE("LlamaForCausalLM", ",\"hidden_size\":65") == QB_EFORMAT); /* duplicate key */
    CHECK(qb_hf_config_parse("[1]", 3, "cfg.json", &c) == QB_EFORMAT);
    CHECK(qb_hf_config_parse("{\"hidden_size\":", 15, "cfg.json", &c) == QB_EFORMAT);
#undef PARSE
}

/* ---------- malformed directories ---------- */

/* A valid tiny Llama directory to break one thing in. */
static const char *tiny_dir(const char *name, struct rmodel *r, int with_weights)
{
    const char *dir = subdir(name);
    rmodel_init(r, 0);
    write_config(dir, &r->c, "LlamaForCausalLM", "");
    if (with_weights) {
        struct tlist l;
        rmodel_tensors(r, &l, 1);
        write_st(file_in(dir, "model.safetensors"), l.t, l.n, "F32");
    }
    return dir;
}

/* Loads dir, which must fail with a message naming file. */
static void expect_fail(const char *dir, const char *file, const char *what)
{
    struct qb_model *m = NULL;
    int rc = qb_model_load(dir, NULL, &m);
    if (rc >= 0 || !strstr(qb_errmsg(), file)) {
        fprintf(stderr, "  case %s: rc %d, message \"%s\" (should name %s)\n", what, rc,
                qb_errmsg(), file);
        check_fail(__FILE__, __LINE__, what);
    }
    CHECK(m == NULL);
    qb_model_free(m);
}

static void st_case(const char *name, const char *header, size_t data_size, const char *what)
{
    struct rmodel r;
    const char *dir = tiny_dir(name, &r, 0), *file = file_in(dir, "model.safetensors");
    size_t n;
    unsigned char *img = st_image(header, data_size, &n);
    write_bytes(file, img, n);
    expect_fail(dir, file, what);
    free(img);
    rmodel_free(&r);
}

static void test_malformed(void)
{
    struct rmodel r;
    struct tlist l;
    const char *dir, *file;
    unsigned char bad[16] = {0xe8, 0x03}; /* header length 1000 in a 16-byte file */
    char cfg[2048];

    /* safetensors */
    dir = tiny_dir("bad-hlen", &r, 0);
    file = file_in(dir, "model.safetensors");
    write_bytes(file, bad, sizeof bad);
    expect_fail(dir, file, "header length past the end");
    rmodel_free(&r);
    st_case("bad-json", "{\"a\": {\"dtype\": ", 0, "bad JSON");
    st_case("bad-range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,1000016]}}",
            16, "offsets past the data");
    st_case("bad-size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16,
            "offsets not matching shape * dtype");
    st_case("bad-overlap",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
            24, "overlapping tensors");
    st_case("bad-negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-16,0]}}",
            16, "negative offset");
    st_case("bad-reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}", 16,
            "end before begin");
    st_case("bad-overflow",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
            "\"data_offsets\":[0,0]}}",
            0, "shape overflow");
    st_case("bad-negdim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
            "negative dimension");
    st_case("bad-dtype", "{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
            "unknown dtype");

    /* tensors against the config */
    dir = tiny_dir("no-norm", &r, 0);
    rmodel_tensors(&r, &l, 1);
    l.n -= 2; /* drop model.norm.weight, keep lm_head */
    l.t[l.n] = l.t[l.n + 1];
    l.n++;
    write_st(file_in(dir, "model.safetensors"), l.t, l.n, "F32");
    expect_fail(dir, file_in(dir, "model.safetensors"), "missing tensor");
    rmodel_free(&r);

    dir = tiny_dir("wrong-shape", &r, 0);
    rmodel_tensors(&r, &l, 1);
    l.t[3].shape[0] = 32, l.t[3].shape[1] = 16; /* layer 0 k_proj as (32, 16) */
    CHECK(strstr(l.t[3].name, "k_proj") != NULL);
    write_st(file_in(dir, "model.safetensors"), l.t, l.n, "F32");
    expect_fail(dir, file_in(dir, "model.safetensors"), "wrong shape");
    rmodel_free(&r);

    /* config.json */
    dir = tiny_dir("arch", &r, 1);
    write_config(dir, &r.c, "GPT2LMHeadModel", "");
    expect_fail(dir, file_in(dir, "config.json"), "unknown architecture");
    write_config(dir, &r.c, "LlamaForCausalLM",
                 ",\"rope_scaling\":{\"type\":\"longrope\",\"factor\":2}");
    expect_fail(dir, file_in(dir, "config.json"), "rope_scaling");
    snprintf(cfg, sizeof cfg, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":\"32\"}");
    write_text(dir, "config.json", cfg);
    expect_fail(dir, file_in(dir, "config.json"), "config wrong type");
    write_text(dir, "config.json", "{\"architectures\":\"LlamaForCausalLM\"}");
    expect_fail(dir, file_in(dir, "config.json"), "architectures not a list");
    write_text(dir, "config.json", "{\"architectures\":[\"LlamaForCausalLM\"],");
    expect_fail(dir, file_in(dir, "config.json"), "config bad JSON");
    rmodel_free(&r);

    /* no config, no weights */
    dir = subdir("empty");
    expect_fail(dir, file_in(dir, "config.json"), "no config.json");
    dir = tiny_dir("no-weights", &r, 0);
    expect_fail(dir, file_in(dir, "model.safetensors"), "no weights");
    rmodel_free(&r);

    /* the index cannot point outside the directory */
    dir = tiny_dir("index-escape", &r, 0);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"model.embed_tokens.weight\":\"../x.safetensors\"}}");
    expect_fail(dir, file_in(dir, "model.safetensors.index.json"), "index pointing to ../x");
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"model.embed_tokens.weight\":\"/etc/passwd\"}}");
    expect_fail(dir, file_in(dir, "model.safetensors.index.json"), "index with an absolute path");
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"model.embed_tokens.weight\":\"missing.safetensors\"}}");
    expect_fail(dir, file_in(dir, "missing.safetensors"), "index naming an absent shard");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":[]}");
    expect_fail(dir, file_in(dir, "model.safetensors.index.json"), "index without a map");
    rmodel_free(&r);
}

int main(void)
{
    RUN(test_st_parse);
    RUN(test_config_parse);
    RUN(test_qwen2_biases);
    RUN(test_llama_random_and_tied);
    RUN(test_unaligned_f32);
    RUN(test_tokenizer_json);
    RUN(test_malformed);
    if (!qb_shared_path(GGUF)) {
        check_skip("test_llama_matches_gguf", "needs ../shared/" GGUF);
        check_skip("test_half_dtypes", "needs ../shared/" GGUF);
        check_skip("test_sharded", "needs ../shared/" GGUF);
        check_skip("test_tokenizer_override", "needs ../shared/" GGUF);
    } else {
        RUN(test_llama_matches_gguf);
        RUN(test_half_dtypes);
        RUN(test_sharded);
        if (qb_shared_path(TOK))
            RUN(test_tokenizer_override);
        else
            check_skip("test_tokenizer_override", "needs ../shared/" TOK);
    }
    return check_summary();
}
