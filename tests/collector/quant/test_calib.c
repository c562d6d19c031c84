/* test_calib: calibration data (collector/quant/calib.h) and the calibrated configs.
 *   - a text file becomes BOS-led sequences; fewer when short; empty / missing files are
 *     refused naming the file;
 *   - a method without calibration data is refused;
 *   - folding AWQ or SmoothQuant scales without quantizing leaves the f32 logits unchanged
 *     (<= 1e-5 relative), on a random model with q/k/v biases, rotate-half RoPE and
 *     grouped-query attention (runs anywhere) and on stories260K (interleaved RoPE, GQA);
 *   - calibrated configs run end to end, and on stories260K GPTQ's KL divergence from f32
 *     at w3g32, on held-out text the calibration never saw, is below RTN's (a generous
 *     bound: the measured margins are printed and recorded in docs/quality.md). */
#include "collector/quant/calib.h"
#include "collector/engine/engine.h"
#include "collector/engine/generate.h"
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/run/run.h"
#include "collector/engine/sampler.h"
#include "collector/tokenizer/tokenizer.h"
#include "collector/model/qspec.h"
#include "kernels/quantize.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0);
}

/* A random Llama-shaped model with every feature the fold must respect. */
static struct qb_model *random_model(void)
{
    struct qb_model *m = qb_model_new("random-calib", "test");
    struct qb_config *c;
    if (!m)
        return NULL;
    c = &m->cfg;
    strcpy(c->arch, "qwen2");
    c->dim = 64;
    c->hidden_dim = 96;
    c->n_layers = 2;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 16;
    c->vocab_size = 64;
    c->max_seq_len = 128;
    c->rope_theta = 10000;
    c->norm_eps = 1e-5f;
    c->rope_style = QB_ROPE_HALF;
    c->has_qkv_bias = 1;
#define RND(n, lo, hi)                                                                             \
    ({                                                                                             \
        float *p_ = qb_model_alloc_f32(m, (size_t)(n));                                            \
        for (int64_t i_ = 0; p_ && i_ < (int64_t)(n); i_++)                                        \
            p_[i_] = (lo) + ((hi) - (lo)) * unif();                                                \
        p_;                                                                                        \
    })
    const int64_t d = 64, h = 96, q = 64, kv = 32;
    m->tok_embd = RND(64 * d, -1.0f, 1.0f);
    m->output = RND(64 * d, -0.3f, 0.3f);
    m->out_norm = RND(d, 0.8f, 1.2f);
    m->layers = calloc(2, sizeof *m->layers);
    if (!m->layers) {
        qb_model_free(m);
        return NULL;
    }
    for (int l = 0; l < 2; l++) {
        struct qb_layer *L = &m->layers[l];
        L->attn_norm = RND(d, 0.5f, 1.5f);
        L->ffn_norm = RND(d, 0.5f, 1.5f);
        L->wq = RND(q * d, -0.2f, 0.2f);
        L->wk = RND(kv * d, -0.2f, 0.2f);
        L->wv = RND(kv * d, -0.2f, 0.2f);
        L->bq = RND(q, -0.1f, 0.1f);
        L->bk = RND(kv, -0.1f, 0.1f);
        L->bv = RND(kv, -0.1f, 0.1f);
        L->wo = RND(d * q, -0.2f, 0.2f);
        L->w_gate = RND(h * d, -0.2f, 0.2f);
        L->w_up = RND(h * d, -0.2f, 0.2f);
        L->w_down = RND(d * h, -0.2f, 0.2f);
    }
#undef RND
    return m;
}

/* n_seq sequences of len tokens sampled from the f32 model (temperature 1) from token
 * `start`, with seed: text the model finds natural, different for each seed. */
static int32_t *sample_tokens(const struct qb_model *m, int32_t start, int64_t n_seq, int64_t len,
                              uint64_t seed)
{
    int32_t *ids = malloc((size_t)(n_seq * len) * sizeof *ids);
    struct qb_engine *e = NULL;
    struct qb_sampler smp = {0};
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    int rc = QB_ENOMEM;
    o.max_tokens = len - 1, o.ignore_eos = 1, o.sampler = &smp; /* one stream, fixed lengths */
    if (ids && (rc = qb_engine_new(m, len, &e)) == 0 &&
        (rc = qb_sampler_init(&smp, m->cfg.vocab_size, 1.0f, 1.0f, seed)) == 0)
        for (int64_t s = 0; s < n_seq && rc == 0; s++) {
            struct qb_gen_result g;
            qb_engine_reset(e);
            ids[s * len] = start;
            if ((rc = qb_generate(e, m->tok, m->cfg.vocab_size, &start, 1, &o, NULL, NULL, &g)) ==
                0)
                memcpy(ids + s * len + 1, g.ids, (size_t)(len - 1) * sizeof *ids);
            qb_gen_result_release(&g);
        }
    qb_sampler_release(&smp);
    qb_engine_free(e);
    if (rc < 0) {
        free(ids);
        return NULL;
    }
    return ids;
}

/* logits (n, vocab) of qm over ids */
static int logits_of(const struct qb_qmodel *qm, const int32_t *ids, int64_t n, float *out)
{
    struct qb_engine *e = NULL;
    int rc = qb_engine_new_q(qm, n, &e);
    if (rc == 0)
        rc = qb_engine_forward(e, ids, n, out);
    qb_engine_free(e);
    return rc;
}

static int build(const struct qb_model *m, const char *spec_s, const struct qb_calib *cal,
                 struct qb_qmodel **qm)
{
    struct qb_qspec spec;
    int rc = qb_qspec_parse(spec_s, &spec);
    if (rc == 0)
        rc = qb_qmodel_new_calib(m, &spec, cal, qm);
    if (rc < 0)
        fprintf(stderr, "  %s: %s\n", spec_s, qb_errmsg());
    return rc;
}

/* Folds AWQ and SmoothQuant scales without quantizing: the logits on held-out tokens must
 * not move (relative L2 change <= 1e-5), while the folded norms and weights did change. */
static void check_fold_exact(const struct qb_model *m, int32_t start)
{
    const int64_t n = 64, v = m->cfg.vocab_size;
    int32_t *cal_ids = sample_tokens(m, start, 4, 64, 11),
            *held = sample_tokens(m, start, 1, n, 99);
    float *ref = malloc((size_t)(n * v) * sizeof *ref),
          *got = malloc((size_t)(n * v) * sizeof *got);
    struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}};
    struct qb_qmodel *qm0 = NULL;
    struct qb_calib *cal = NULL;
    /* the embeddings and head stay f32: only the folded layers are under test */
    static const char *specs[] = {"w4g32-awq+output=f32+embed=f32",
                                  "w8a8-smooth+output=f32+embed=f32",
                                  "fp8-a8-smooth+output=f32+embed=f32"};
    CHECK(cal_ids && held && ref && got);
    if (!cal_ids || !held || !ref || !got)
        goto out;
    CHECK(qb_calib_from_tokens(cal_ids, 4, 64, "sampled", &cal) == 0);
    CHECK(qb_qmodel_new(m, &f32, &qm0) == 0 && logits_of(qm0, held, n, ref) == 0);
    cal->fold_only = 1;
    for (int s = 0; s < 3; s++)
        for (int alpha = 0; alpha < 2; alpha++) {
            struct qb_qmodel *qm = NULL;
            double num = 0, den = 0, moved = 0;
            cal->awq_alpha = alpha ? 0.9f : 0.5f;
            cal->smooth_alpha = alpha ? 0.8f : 0.5f;
            if (build(m, specs[s], cal, &qm) < 0 || logits_of(qm, held, n, got) < 0) {
                CHECK(!"folded model runs");
                qb_qmodel_free(qm);
                continue;
            }
            for (int64_t i = 0; i < n * v; i++) {
                num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
                den += (double)ref[i] * ref[i];
            }
            for (int64_t l = 0; l < m->cfg.n_layers; l++)
                for (int64_t i = 0; i < m->cfg.dim; i++)
                    moved += fabs(qm->layer[l].attn_norm[i] - m->layers[l].attn_norm[i]);
            printf("  %-36s alpha %.1f: relative logit change %.2e (norms moved by %.3g)\n",
                   specs[s], alpha ? 0.9 : 0.5, sqrt(num / den), moved);
            CHECK(sqrt(num / den) <= 1e-5);
            CHECK(moved > 1e-3); /* the scales were really folded */
            CHECK(qm->lin[0].t.fmt == QB_FMT_F32 && qm->lin[0].t.data != m->layers[0].wq);
            qb_qmodel_free(qm);
        }
out:
    qb_calib_free(cal);
    qb_qmodel_free(qm0);
    free(cal_ids);
    free(held);
    free(ref);
    free(got);
}

static struct qb_model *rnd;
static struct qb_model *stories;

static void test_fold_exact_random(void)
{
    check_fold_exact(rnd, 1);
}

static void test_needs_calibration(void)
{
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    CHECK(qb_qspec_parse("w4g32-gptq", &spec) == 0);
    CHECK(qb_qmodel_new_calib(rnd, &spec, NULL, &qm) == QB_EINVAL && !qm);
    CHECK(strstr(qb_errmsg(), "'w4g32-gptq' needs calibration data") != NULL);
    CHECK(strstr(qb_errmsg(), "--calib") != NULL);
    CHECK(qb_qmodel_new(rnd, &spec, &qm) == QB_EINVAL && !qm);
}

/* Every method on the random model: runs, and the logits stay finite and near f32. */
static void test_methods_run_random(void)
{
    static const char *specs[] = {"w4g32-gptq",     "w3g32-gptq",      "w8a8-gptq",
                                  "w2g32-sym-gptq", "w4g32-awq",       "w3g32-awq",
                                  "w8a8-smooth",    "w4g32-a8-smooth", "w4g32-gptq+down=w8+o=f16"};
    const int64_t n = 32, v = rnd->cfg.vocab_size;
    int32_t *cal_ids = sample_tokens(rnd, 1, 6, 48, 5), *held = sample_tokens(rnd, 1, 1, n, 77);
    float *ref = malloc((size_t)(n * v) * sizeof *ref),
          *got = malloc((size_t)(n * v) * sizeof *got);
    struct qb_calib *cal = NULL;
    struct qb_qmodel *qm0 = NULL;
    struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}};
    CHECK(qb_calib_from_tokens(cal_ids, 6, 48, "sampled", &cal) == 0);
    CHECK(qb_qmodel_new(rnd, &f32, &qm0) == 0 && logits_of(qm0, held, n, ref) == 0);
    for (int s = 0; s < (int)(sizeof specs / sizeof *specs); s++) {
        struct qb_qmodel *qm = NULL;
        double num = 0, den = 0;
        int finite = 1;
        cal->gptq_act_order = s == 1;
        if (build(rnd, specs[s], cal, &qm) < 0 || logits_of(qm, held, n, got) < 0) {
            CHECK(!"calibrated config runs");
            qb_qmodel_free(qm);
            continue;
        }
        for (int64_t i = 0; i < n * v; i++) {
            finite &= isfinite(got[i]);
            num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
            den += (double)ref[i] * ref[i];
        }
        printf("  %-26s relative logit error %.3g, quantized in %.3f s\n", specs[s],
               sqrt(num / den), qm->quant_seconds);
        CHECK(finite && sqrt(num / den) < (strstr(specs[s], "w2") ? 1.0 : 0.5));
        CHECK(qm->quant_seconds > 0);
        qb_qmodel_free(qm);
    }
    /* a token outside the vocabulary is refused */
    cal->tokens[3] = 1000;
    {
        struct qb_qmodel *qm = NULL;
        CHECK(build(rnd, "w4g32-gptq", cal, &qm) == QB_EINVAL && !qm);
    }
    qb_calib_free(cal);
    qb_qmodel_free(qm0);
    free(cal_ids);
    free(held);
    free(ref);
    free(got);
}

/* What the rounding of the embeddings costs layer 0's q, k and v: the sum over the rows e of
 * |W (g * (e - e_hat))|^2, W their stacked rows, g the layer's attention norm weight. */
static double embed_qkv_error(const struct qb_model *m, const struct qb_qmodel *qm)
{
    const struct qb_layer *L = &m->layers[0];
    const struct qb_config *c = &m->cfg;
    const int64_t d = c->dim, kvd = c->n_kv_heads * c->head_dim;
    const float *lin[3] = {L->wq, L->wk, L->wv};
    const int64_t rows[3] = {c->n_heads * c->head_dim, kvd, kvd};
    float *row = malloc((size_t)qm->embed.t.cols * sizeof *row);
    double err = 0;
    for (int64_t t = 0; row && t < c->vocab_size; t++) {
        qb_dequantize_row(&qm->embed.t, t, row);
        for (int64_t i = 0; i < d; i++)
            row[i] = (m->tok_embd[t * d + i] - row[i]) * L->attn_norm[i];
        for (int n = 0; n < 3; n++)
            for (int64_t r = 0; r < rows[n]; r++) {
                double y = 0;
                for (int64_t i = 0; i < d; i++)
                    y += (double)lin[n][r * d + i] * row[i];
                err += y * y;
            }
    }
    free(row);
    return row ? err : NAN;
}

/* GPTQ and AWQ round the embeddings for that error (collector/quant/calib.h): it falls below
 * round-to-nearest's by at least `gain`; an 8-bit embedding table (no groups) stays
 * round-to-nearest. */
static void check_embed_rows(const struct qb_model *m, double gain)
{
    int32_t *ids = sample_tokens(m, 1, 2, 32, 99);
    static const char *specs[] = {"w3g32", "w3g32-gptq", "w3g32-awq", "w8", "w8-gptq"};
    struct qb_calib *cal = NULL;
    double err[5];
    CHECK(ids && qb_calib_from_tokens(ids, 2, 32, "sampled", &cal) == 0);
    if (!cal) {
        free(ids);
        return;
    }
    for (int s = 0; s < 5; s++) {
        struct qb_qmodel *qm = NULL;
        err[s] = NAN;
        if (build(m, specs[s], cal, &qm) < 0) {
            CHECK(!"config builds");
            continue;
        }
        err[s] = embed_qkv_error(m, qm);
        printf("  %-10s embeddings' error at layer 0's q/k/v %.4g\n", specs[s], err[s]);
        qb_qmodel_free(qm);
    }
    CHECK(err[1] < (1 - gain) * err[0] && err[2] < (1 - gain) * err[0]);
    CHECK(err[4] == err[3]);
    qb_calib_free(cal);
    free(ids);
}

/* random weights: W^T W is nearly a multiple of I, so the weighting has little to use
 * (measured 9.5%) */
static void test_embed_rows_random(void)
{
    check_embed_rows(rnd, 0.05);
}

/* stories260K's measured 73% */
static void test_embed_rows_stories(void)
{
    check_embed_rows(stories, 0.5);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void test_load_text(void)
{
    char path[512], missing[512];
    struct qb_calib *cal = NULL;
    const struct qb_tokenizer *tok = stories->tok;
    snprintf(path, sizeof path, "%s/calib.txt", check_tmpdir());
    snprintf(missing, sizeof missing, "%s/nope.txt", check_tmpdir());
    /* long text: as many full sequences as asked */
    {
        size_t cap = 200000, n = 0;
        char *buf = malloc(cap);
        while (n + 100 < cap)
            n += (size_t)snprintf(buf + n, cap - n, "Once upon a time, a little fox saw the sun. ");
        CHECK(write_file(path, buf) == 0);
        free(buf);
    }
    CHECK(qb_calib_load(path, tok, 8, 100, 512, &cal) == 0);
    if (cal) {
        CHECK(cal->n_seq == 8 && cal->seq_len == 100);
        CHECK(cal->tokens[0] == qb_tok_bos(tok) && cal->tokens[100] == qb_tok_bos(tok));
        CHECK(cal->tokens[1] != qb_tok_bos(tok));
        CHECK(strstr(cal->name, "calib.txt") != NULL);
        CHECK(cal->gptq_damp == 0.01 && cal->awq_grid == 20 && cal->smooth_alpha == 0.5f);
    }
    qb_calib_free(cal);
    /* the model's context caps the length; the defaults are 128 x 512 */
    CHECK(qb_calib_load(path, tok, 0, 0, 256, &cal) == 0);
    CHECK(cal && cal->seq_len == 256 && cal->n_seq == 128);
    qb_calib_free(cal);
    /* short text: fewer sequences, or one short one */
    CHECK(write_file(path, "Once upon a time, there was a cat. The cat liked milk. One day the cat "
                           "went out to play in the park with a dog.") == 0);
    CHECK(qb_calib_load(path, tok, 128, 10, 512, &cal) == 0);
    CHECK(cal && cal->n_seq > 1 && cal->n_seq < 128 && cal->seq_len == 10);
    qb_calib_free(cal);
    CHECK(qb_calib_load(path, tok, 4, 512, 512, &cal) == 0);
    CHECK(cal && cal->n_seq == 1 && cal->seq_len > 10 && cal->seq_len < 100);
    qb_calib_free(cal);
    /* empty and missing files */
    CHECK(write_file(path, "") == 0);
    CHECK(qb_calib_load(path, tok, 4, 64, 512, &cal) == QB_EINVAL && !cal);
    CHECK(strstr(qb_errmsg(), "calib.txt") && strstr(qb_errmsg(), "empty"));
    CHECK(qb_calib_load(missing, tok, 4, 64, 512, &cal) == QB_EIO && !cal);
    CHECK(strstr(qb_errmsg(), "nope.txt") != NULL);
}

static void test_fold_exact_stories(void)
{
    check_fold_exact(stories, 1);
}

static double mean_kl(const float *ref, const float *got, int64_t n, int64_t v)
{
    double total = 0;
    for (int64_t t = 0; t < n; t++) {
        const float *a = ref + t * v, *b = got + t * v;
        double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0, kl = 0;
        for (int64_t i = 0; i < v; i++) {
            ma = fmax(ma, a[i]);
            mb = fmax(mb, b[i]);
        }
        for (int64_t i = 0; i < v; i++) {
            sa += exp(a[i] - ma);
            sb += exp(b[i] - mb);
        }
        for (int64_t i = 0; i < v; i++) {
            double la = a[i] - ma - log(sa), lb = b[i] - mb - log(sb);
            kl += exp(la) * (la - lb);
        }
        total += kl;
    }
    return total / (double)n;
}

/* Calibrate on sampled stories; score on other sampled stories. */
static void test_gptq_beats_rtn_stories(void)
{
    const int64_t n_cal = 16, len = 256, n_held = 4, v = stories->cfg.vocab_size;
    int32_t *cal_ids = sample_tokens(stories, 1, n_cal, len, 1234);
    int32_t *held = sample_tokens(stories, 1, n_held, len, 987654);
    float *ref = malloc((size_t)(n_held * len * v) * sizeof *ref);
    float *got = malloc((size_t)(n_held * len * v) * sizeof *got);
    struct qb_calib *cal = NULL;
    static const char *specs[] = {"f32", "w3g32", "w3g32-gptq", "w3g32-awq", "w4g32", "w4g32-gptq"};
    double kl[6];
    CHECK(cal_ids && held && ref && got);
    if (!cal_ids || !held || !ref || !got)
        goto out;
    CHECK(qb_calib_from_tokens(cal_ids, n_cal, len, "sampled stories", &cal) == 0);
    if (!cal)
        goto out;
    cal->awq_tokens = 1024; /* a quicker AWQ search than the default 4096 */
    for (int s = 0; s < 6; s++) {
        struct qb_qmodel *qm = NULL;
        float *dst = s == 0 ? ref : got;
        kl[s] = NAN;
        if (build(stories, specs[s], cal, &qm) < 0) {
            CHECK(!"config builds");
            continue;
        }
        for (int64_t q = 0; q < n_held; q++)
            CHECK(logits_of(qm, held + q * len, len, dst + q * len * v) == 0);
        if (s > 0)
            kl[s] = mean_kl(ref, got, n_held * len, v);
        printf("  %-12s mean KL from f32 %.5f nats (quantized in %.2f s)\n", specs[s],
               s ? kl[s] : 0.0, qm->quant_seconds);
        {
            /* the memory probe's stand-in has the config's exact size (a tied head that
             * calibration unties is untied in the twin too) */
            struct qb_qmodel *tw = NULL;
            CHECK(qb_qmodel_new_twin(stories, &qm->spec, &tw) == 0);
            CHECK(tw && qb_qmodel_bytes(tw) == qb_qmodel_bytes(qm) &&
                  tw->embed_shares_output == qm->embed_shares_output);
            if (strstr(specs[s], "gptq"))
                CHECK(!qm->embed_shares_output); /* stories260K ties its head: now untied */
            qb_qmodel_free(tw);
        }
        qb_qmodel_free(qm);
    }
    CHECK(kl[2] < kl[1]); /* GPTQ below RTN at w3g32 */
    CHECK(kl[3] < kl[1]); /* AWQ too */
    CHECK(kl[5] < kl[4] * 1.05);
    {
        /* AWQ's search on a sample of the rows (here 64 of gate's and up's 172, 64 of the
         * head's 512, q/k/v's attention on one of the 4 kv heads and its 2 query heads), as
         * on the wide layers of real models; and q/k/v scored on their own outputs rather
         * than the attention's: still below RTN */
        static const struct {
            int64_t search_weights;
            int attn_loss;
            const char *what;
        } var[] = {{1, 1, "search on sampled rows"}, {0, 0, "q/k/v on their own outputs"}};
        for (int i = 0; i < 2; i++) {
            struct qb_qmodel *qm = NULL;
            cal->awq_search_weights = var[i].search_weights;
            cal->awq_attn_loss = var[i].attn_loss;
            if (build(stories, "w3g32-awq", cal, &qm) < 0) {
                CHECK(!"config builds");
                continue;
            }
            for (int64_t q = 0; q < n_held; q++)
                CHECK(logits_of(qm, held + q * len, len, got + q * len * v) == 0);
            double k = mean_kl(ref, got, n_held * len, v);
            printf("  w3g32-awq, %s: mean KL from f32 %.5f nats\n", var[i].what, k);
            CHECK(k < kl[1]);
            qb_qmodel_free(qm);
        }
    }
out:
    qb_calib_free(cal);
    free(cal_ids);
    free(held);
    free(ref);
    free(got);
}

/* qbrief run with a calibrated config: the text comes from the calibration file; without
 * one the run is refused before any database exists. */
static char model_path[4096], tok_path[4096];

static void test_run_calibrated(void)
{
    char calib[512], db[512], db2[512];
    const char *cfgs[] = {"w4g32-gptq", "w8a8-smooth"};
    struct qb_run_opts o = QB_RUN_OPTS_INIT;
    struct qb_run_stats st;
    FILE *f;
    snprintf(calib, sizeof calib, "%s/run-calib.txt", check_tmpdir());
    snprintf(db, sizeof db, "%s/run.db", check_tmpdir());
    snprintf(db2, sizeof db2, "%s/run2.db", check_tmpdir());
    f = fopen(calib, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    for (int i = 0; i < 40; i++)
        fprintf(f, "Once upon a time, there was a little girl named Lily. She loved to play in the "
                   "park with her dog. One day, the sun was hot and they found a big red ball. ");
    fclose(f);
    o.model_path = model_path;
    o.tokenizer_path = tok_path;
    o.suite_path = "examples/suites/tiny.csv";
    o.db_path = db2;
    o.name = "calib";
    o.configs = cfgs;
    o.n_configs = 2;
    o.threads = 1;
    /* no memory probe: it forks, and this process already runs OpenMP threads, which a
     * forked child cannot use (qbrief run probes before any parallel work) */
    o.no_latency = o.no_memory = 1;
    CHECK(qb_run(&o, &st) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "'w4g32-gptq' needs calibration data") != NULL);
    CHECK(access(db2, F_OK) != 0);
    o.db_path = db;
    o.calib_path = calib;
    o.calib_sequences = 8;
    o.calib_seq_len = 64;
    if (qb_run(&o, &st) < 0) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        CHECK(!"calibrated run");
        return;
    }
    printf("  run: %lld units evaluated, %lld errors\n", (long long)st.n_evaluated,
           (long long)st.n_errors);
    CHECK(st.n_evaluated > 0 && st.n_errors == 0);
}

int main(void)
{
    char bin[4096] = "", tokpath[4096] = "";
    const char *p = qb_shared_path("models/stories260K/stories260K.bin"), *tok;
    if (p) /* qb_shared_path returns a static buffer */
        snprintf(bin, sizeof bin, "%s", p);
    tok = qb_shared_path("models/stories260K/tok512.bin");
    rnd = random_model();
    if (!rnd) {
        fprintf(stderr, "cannot build the random model: %s\n", qb_errmsg());
        return 1;
    }
    RUN(test_needs_calibration);
    RUN(test_fold_exact_random);
    RUN(test_methods_run_random);
    RUN(test_embed_rows_random);
    if (tok)
        snprintf(tokpath, sizeof tokpath, "%s", tok);
    if (bin[0] && tok) {
        struct qb_load_opts lo = {.tokenizer_path = tokpath};
        if (qb_model_load(bin, &lo, &stories) < 0) {
            fprintf(stderr, "%s\n", qb_errmsg());
            return 1;
        }
        RUN(test_load_text);
        RUN(test_fold_exact_stories);
        RUN(test_embed_rows_stories);
        RUN(test_gptq_beats_rtn_stories);
        snprintf(model_path, sizeof model_path, "%s", bin);
        snprintf(tok_path, sizeof tok_path, "%s", tokpath);
        RUN(test_run_calibrated);
        qb_model_free(stories);
    } else {
        check_skip("test_load_text", "../shared/models/stories260K not found");
        check_skip("test_fold_exact_stories", "../shared/models/stories260K not found");
        check_skip("test_embed_rows_stories", "../shared/models/stories260K not found");
        check_skip("test_gptq_beats_rtn_stories", "../shared/models/stories260K not found");
        check_skip("test_run_calibrated", "../shared/models/stories260K not found");
    }
    qb_model_free(rnd);
    return check_summary();
}
