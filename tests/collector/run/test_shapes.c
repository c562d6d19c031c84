/* test_shapes: the shape matrix of issue 19. Tiny random models whose widths no group size
 * divides -- dim 48/64/80, ffn 100/172/192, 6 heads on 3 kv heads, 5 on 1, a head size of
 * 18 (q width 90 != dim), tied and untied heads, Qwen2's biases and rotate-half RoPE -- go
 * through every config family (float, fp8, int8, int4/3/2 at groups of 32/64/128, sym and
 * asym, -a8, overrides, -gptq/-awq/-smooth) on every path that pads or chunks:
 *   engine   a 300-token prompt in one forward (two prefill chunks: 256 + 44) and 4 decode
 *            steps, as `qbrief generate` runs them: logits finite and equal, to the rounding
 *            of the kernels' inputs (oracle_tol), to those of the f32 engine on the
 *            config's weights dequantized (folded norms included), and within a loose
 *            bound of the f32 model's; the calibrated configs built by qb_qmodel_new_calib;
 *   latency  the latency probe at prompt 300 with batch 2 (two prompts back to back), one
 *            config of each family per shape: samples complete and consistent;
 *   memory   the memory probe, whose child prefills the whole context (384), one config of
 *            each family per shape: weight bytes as qb_qmodel_bytes, KV bytes as
 *            qb_probe_kv_bytes, a positive peak;
 *   run      qb_run with its memory and latency probes (batch 2) and calibration text, on a
 *            suite of one long (~300-token) generate, choice and perplexity item, four
 *            configs per shape: every result "ok" with finite numbers, probes stored;
 *   generate `qbrief generate` ($QBRIEF, set by make test) with a 300-token prompt on the
 *            same four configs: exit 0, the prompt echoed, over 256 tokens prefilled.
 * Each (shape, path) runs in a forked child with a watchdog (in_child), so a sanitizer
 * report or a hang fails that cell and the matrix goes on; models are written as GGUF
 * (tests/collector/model/tiny_gguf.h) and loaded back, so every path, the probes' children
 * included, sees the same weights. Runs anywhere; meant for SAN=address,undefined too (CI),
 * where a write past a buffer sized for the real width (the padded embedding row, issue 19)
 * aborts its cell. The last line counts the (shape, config) pairs of each path. */
#include "collector/engine/engine.h"
#include "collector/eval/probe.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "collector/quant/calib.h"
#include "collector/run/run.h"
#include "collector/store/store.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "kernels/quantize.h"
#include "tests/check.h"
#include "tests/collector/model/tiny_gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define PROMPT 300 /* > the engine's 256-token chunk */
#define DECODE 4
#define CTX 384

static const struct shape {
    const char *name;
    struct tg_shape s;
} shapes[] = {
    {"d48-ffn100-h6kv3-qwen2", {"qwen2", 48, 100, 2, 6, 3, 8, CTX, 0}},
    {"d64-ffn172-h8kv4-tied", {"llama", 64, 172, 2, 8, 4, 8, CTX, 1}},
    {"d80-ffn192-h5kv1-hd18-tied", {"llama", 80, 192, 2, 5, 1, 18, CTX, 1}},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

enum family {
    F_FLOAT,
    F_FP8,
    F_INT8,
    F_INT4,
    F_INT3,
    F_INT2,
    F_OVERRIDE,
    F_GPTQ,
    F_AWQ,
    F_SMOOTH,
    F_COUNT
};
static const char *const family_name[F_COUNT] = {"float", "fp8",      "int8", "int4", "int3",
                                                 "int2",  "override", "gptq", "awq",  "smooth"};

/* The configs of the engine path. bound: the largest relative L2 distance of its logits
 * from the f32 model's (random weights, so about twice what was measured; it catches a
 * config that computes something else, not a small loss of accuracy). only: the shape (1 +
 * its index) a config runs on, 0 for all. AWQ and GPTQ at groups of 32-128 cost seconds
 * each under ASan (AWQ's clipping search above all), so those run on one shape each --
 * w4g128-awq on the d64 tied shape of stories260K, where it also unties the head -- and
 * the probes take each family's configs that run everywhere. */
static const struct config {
    const char *spec;
    enum family fam;
    double bound;
    int only;
} configs[] = {
    {"f32", F_FLOAT, 1e-6, 0},
    {"f16", F_FLOAT, 0.01, 0},
    {"bf16", F_FLOAT, 0.05, 0},
    {"fp8", F_FP8, 0.15, 0},
    {"fp8-e5m2", F_FP8, 0.3, 0},
    {"fp8-a8", F_FP8, 0.25, 0},
    {"w8", F_INT8, 0.05, 0},
    {"w8a8", F_INT8, 0.08, 0},
    {"w4g32", F_INT4, 0.4, 0},
    {"w4g64-sym", F_INT4, 0.5, 0},
    {"w4g128", F_INT4, 0.5, 0},
    {"w4g128-sym", F_INT4, 0.6, 0},
    {"w4g128-a8", F_INT4, 0.5, 0},
    {"w4g32-sym-a8", F_INT4, 0.5, 0},
    {"w3g32-sym", F_INT3, 0.9, 0},
    {"w3g64", F_INT3, 0.9, 0},
    {"w3g128", F_INT3, 0.9, 0},
    {"w3g128-sym-a8", F_INT3, 1.0, 0},
    {"w2g32", F_INT2, 1.5, 0},
    {"w2g64-sym", F_INT2, 1.5, 0},
    {"w2g128", F_INT2, 1.5, 0},
    {"w8+embed=w4g128", F_OVERRIDE, 0.3, 0},
    {"w4g128+output=w8+embed=f16", F_OVERRIDE, 0.5, 0},
    {"w2g32+attn=w4g128+ffn=w3g64-a8+output=bf16", F_OVERRIDE, 1.2, 0},
    {"w4g64+q=w8+k=fp8+v=w2g128+o=bf16+gate=w3g32+up=w4g128-a8+down=w8a8", F_OVERRIDE, 1.2, 0},
    {"w4g128-gptq", F_GPTQ, 0.5, 0},
    {"w3g64-sym-gptq", F_GPTQ, 0.9, 0},
    {"w8a8-gptq", F_GPTQ, 0.1, 0},
    {"w4g32-gptq+output=w8+embed=w4g128", F_GPTQ, 0.5, 1},
    {"w4g128-awq", F_AWQ, 0.5, 2},
    {"w2g64-awq", F_AWQ, 1.5, 3},
    {"w8-awq", F_AWQ, 0.05, 0},
    {"w8a8-smooth", F_SMOOTH, 0.1, 0},
    {"w4g128-a8-smooth", F_SMOOTH, 0.5, 0},
    {"fp8-a8-smooth", F_SMOOTH, 0.25, 0},
};
#define N_CONFIGS (int)(sizeof configs / sizeof configs[0])

/* the runner's configs per shape: the baseline, a config with groups of 128 (wider than
 * every dim here, dividing no ffn width), an -a8 or override config, a calibrated one */
static const char *const run_configs[N_SHAPES][4] = {
    {"f32", "w4g128", "w8a8", "w3g64-gptq"},
    {"f32", "w2g128-sym+embed=w4g128", "fp8-a8", "w4g128-a8-smooth"},
    {"f32", "w4g128-a8", "w3g128-sym", "w8-awq"},
};

/* the state of the shape under test */
static struct {
    int idx;
    char path[512];
    struct qb_model *m;
    struct qb_calib *cal;
    int32_t ids[PROMPT + DECODE];
    float *ref; /* (PROMPT + DECODE, vocab): the f32 model's logits */
} cur;

/* coverage, printed at the end: (shape, config) pairs per path. Each path runs in a forked
 * child (see in_child), so this lives in memory the children share with the parent. */
static struct coverage {
    int n_engine, n_calib, n_latency, n_memory, n_run, n_generate;
    int fam_seen[N_SHAPES][F_COUNT][3]; /* engine, latency, memory */
} * cov;

static uint64_t rng = 0x2545f4914f6cdd1dull;

/* a token id in [0, vocab) */
static int32_t rand_id(int64_t vocab)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int32_t)((rng >> 11) % (uint64_t)vocab);
}

/* --- the oracle: the f32 engine on the config's weights, dequantized --- */

/* dst (rows, cols) = w dequantized, without the padding columns. */
static int dequant(struct qb_model *r, const struct qb_qweight *w, int64_t rows, int64_t cols,
                   const float **dst)
{
    const int64_t in = w->t.in_cols ? w->t.in_cols : w->t.cols;
    float *out, *row;
    if (w->t.rows != rows || in != cols || w->t.cols < cols) {
        fprintf(stderr, "  tensor is (%lld, %lld of %lld), expected (%lld, %lld)\n",
                (long long)w->t.rows, (long long)in, (long long)w->t.cols, (long long)rows,
                (long long)cols);
        return -1;
    }
    out = qb_model_alloc_f32(r, (size_t)(rows * cols));
    row = malloc((size_t)w->t.cols * sizeof *row);
    if (!out || !row) {
        free(row);
        return -1;
    }
    for (int64_t i = 0; i < rows; i++) {
        qb_dequantize_row(&w->t, i, row);
        memcpy(out + i * cols, row, (size_t)cols * sizeof *row);
    }
    free(row);
    *dst = out;
    return 0;
}

/* An f32 model holding what qm computes with: its weights dequantized, its (possibly
 * folded) norms and biases borrowed. Lives no longer than qm. */
static struct qb_model *dequant_model(const struct qb_qmodel *qm)
{
    const struct qb_config *c = &qm->m->cfg;
    const int64_t d = c->dim, h = c->hidden_dim, qd = c->n_heads * c->head_dim;
    const int64_t kvd = c->n_kv_heads * c->head_dim;
    struct qb_model *r = qb_model_new("dequantized", "test");
    int bad = 0;
    if (!r)
        return NULL;
    r->cfg = *c;
    r->cfg.tied_embeddings = 0;
    r->layers = calloc((size_t)c->n_layers, sizeof *r->layers);
    if (!r->layers) {
        qb_model_free(r);
        return NULL;
    }
    bad |= dequant(r, &qm->embed, c->vocab_size, d, &r->tok_embd);
    bad |= dequant(r, &qm->output, c->vocab_size, d, &r->output);
    r->out_norm = qm->out_norm;
    for (int64_t l = 0; l < c->n_layers && !bad; l++) {
        const struct qb_qweight *W = &qm->lin[l * QB_LIN_COUNT];
        struct qb_layer *L = &r->layers[l];
        bad |= dequant(r, &W[QB_LIN_Q], qd, d, &L->wq);
        bad |= dequant(r, &W[QB_LIN_K], kvd, d, &L->wk);
        bad |= dequant(r, &W[QB_LIN_V], kvd, d, &L->wv);
        bad |= dequant(r, &W[QB_LIN_O], d, qd, &L->wo);
        bad |= dequant(r, &W[QB_LIN_GATE], h, d, &L->w_gate);
        bad |= dequant(r, &W[QB_LIN_UP], h, d, &L->w_up);
        bad |= dequant(r, &W[QB_LIN_DOWN], d, h, &L->w_down);
        L->attn_norm = qm->layer[l].attn_norm;
        L->ffn_norm = qm->layer[l].ffn_norm;
        L->bq = qm->layer[l].bq;
        L->bk = qm->layer[l].bk;
        L->bv = qm->layer[l].bv;
    }
    if (bad) {
        qb_model_free(r);
        return NULL;
    }
    return r;
}

/* How far (relative L2 of the logits) qm's engine may be from the oracle's, which runs
 * the same weights in f32: the largest over qm's matrices of what its kernel rounds besides
 * the weights. Float weights with f32 inputs: only the order of the sums (1e-5). Integer
 * weights with f32 inputs: the SIMD kernels round the inputs to 16 bits per token
 * (qmatmul.c; measured ~7e-5). -a8: inputs rounded to int8 steps of max|x|/127 (measured
 * ~2e-2) or to fp8 e4m3's 3-bit mantissa (~6e-2). About 4x and 2.5x those. */
static double oracle_tol(const struct qb_qmodel *qm)
{
    double tol = 1e-5;
    for (int64_t i = -1; i < qm->m->cfg.n_layers * QB_LIN_COUNT; i++) {
        const struct qb_qweight *w = i < 0 ? &qm->output : &qm->lin[i];
        double t = w->act == QB_ACT_I8     ? 0.05
                   : w->act == QB_ACT_FP8  ? 0.15
                   : w->t.fmt >= QB_FMT_I8 ? 3e-4
                                           : 1e-5;
        tol = t > tol ? t : tol;
    }
    return tol;
}

/* logits (PROMPT + DECODE, vocab): the prompt in one forward (two chunks), then one token
 * at a time, as `qbrief generate` runs. */
static int run_ids(struct qb_engine *e, float *out)
{
    const int64_t v = cur.m->cfg.vocab_size;
    int rc;
    qb_engine_reset(e);
    if ((rc = qb_engine_forward(e, cur.ids, PROMPT, out)) < 0)
        return rc;
    for (int64_t k = PROMPT; k < PROMPT + DECODE; k++) {
        if ((rc = qb_engine_forward(e, &cur.ids[k], 1, NULL)) < 0)
            return rc;
        memcpy(out + k * v, qb_engine_logits(e), (size_t)v * sizeof *out);
    }
    return 0;
}

/* relative L2 distance of a from b over n values; -1 when a has a non-finite value */
static double rel_l2(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]))
            return -1;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

static int build(const char *spec_s, struct qb_qmodel **qm)
{
    struct qb_qspec spec;
    int rc = qb_qspec_parse(spec_s, &spec);
    if (rc == 0)
        rc = spec.method == QB_METHOD_RTN ? qb_qmodel_new(cur.m, &spec, qm)
                                          : qb_qmodel_new_calib(cur.m, &spec, cur.cal, qm);
    if (rc < 0)
        fprintf(stderr, "  %s: %s\n", spec_s, qb_errmsg());
    return rc;
}

/* One config on the engine path. */
static void engine_config(const struct config *cf)
{
    const int64_t n = (PROMPT + DECODE) * cur.m->cfg.vocab_size;
    struct qb_qmodel *qm = NULL;
    struct qb_model *r = NULL;
    struct qb_engine *e = NULL, *er = NULL;
    float *got = malloc((size_t)n * sizeof *got), *want = malloc((size_t)n * sizeof *want);
    double d_oracle, d_f32, tol;

    CHECK(got && want);
    if (!got || !want || build(cf->spec, &qm) < 0) {
        CHECK(!"config builds");
        goto out;
    }
    /* named before it runs: a sanitizer report then follows the config that caused it */
    printf("  %-44s embed %3lld/%lld cols", cf->spec, (long long)qm->embed.t.cols,
           (long long)cur.m->cfg.dim);
    fflush(stdout);
    r = dequant_model(qm);
    CHECK(r != NULL);
    if (!r) {
        printf("\n");
        goto out;
    }
    if (qb_engine_new_q(qm, CTX, &e) < 0 || qb_engine_new(r, CTX, &er) < 0 || run_ids(e, got) < 0 ||
        run_ids(er, want) < 0) {
        printf("\n  %s\n", qb_errmsg());
        CHECK(!"both engines run");
        goto out;
    }
    tol = oracle_tol(qm);
    d_oracle = rel_l2(got, want, n);
    d_f32 = rel_l2(got, cur.ref, n);
    printf(", %6.3f bpw: logits vs dequantized %.1e (tol %.2g), vs f32 %.3f (bound %.2g)\n",
           qb_qmodel_bpw(qm), d_oracle, tol, d_f32, cf->bound);
    CHECK(d_oracle >= 0 && d_oracle <= tol);
    CHECK(d_f32 >= 0 && d_f32 <= cf->bound);
    CHECK(qb_qmodel_bpw(qm) > 1 && qb_qmodel_bpw(qm) <= 32.001);
    if (d_oracle >= 0 && d_oracle <= tol && d_f32 >= 0 && d_f32 <= cf->bound) {
        cov->n_engine++;
        cov->n_calib += qm->spec.method != QB_METHOD_RTN;
        cov->fam_seen[cur.idx][cf->fam][0] = 1;
    }
out:
    qb_engine_free(e);
    qb_engine_free(er);
    qb_model_free(r);
    qb_qmodel_free(qm);
    free(got);
    free(want);
}

static void test_engine(void)
{
    const int64_t v = cur.m->cfg.vocab_size;
    struct qb_engine *e = NULL;
    /* the f32 model's logits, which every config's are compared with */
    cur.ref = malloc((size_t)((PROMPT + DECODE) * v) * sizeof *cur.ref);
    CHECK(cur.ref && qb_engine_new(cur.m, CTX, &e) == 0 && run_ids(e, cur.ref) == 0);
    qb_engine_free(e);
    for (int c = 0; c < N_CONFIGS && cur.ref; c++)
        if (!configs[c].only || configs[c].only == cur.idx + 1)
            engine_config(&configs[c]);
    free(cur.ref);
    cur.ref = NULL;
}

/* --- probes: one config of each family per shape, a different one on each shape --- */

static const struct config *family_pick(enum family f)
{
    int n = 0, k;
    for (int c = 0; c < N_CONFIGS; c++)
        n += configs[c].fam == f && !configs[c].only;
    k = cur.idx % n;
    for (int c = 0; c < N_CONFIGS; c++)
        if (configs[c].fam == f && !configs[c].only && k-- == 0)
            return &configs[c];
    return NULL;
}

struct lat {
    int n1, nb, bad;
};

static int on_sample(void *ctx, const struct qb_latency_sample *s)
{
    struct lat *l = ctx;
    if (s->batch == 1) {
        l->n1++;
        l->bad += !(s->prompt_len == PROMPT && s->gen_len == 3 && isfinite(s->ttft_ms) &&
                    s->ttft_ms > 0 && isfinite(s->tpot_ms) && s->tpot_ms > 0 &&
                    s->e2e_ms >= s->ttft_ms && s->decode_tok_s > 0 && s->prefill_tok_s > 0);
    } else {
        l->nb++;
        l->bad += !(s->batch == 2 && s->prompt_len == PROMPT && isfinite(s->e2e_ms) &&
                    s->e2e_ms > 0 && s->prefill_tok_s > 0 && isnan(s->ttft_ms));
    }
    return 0;
}

static void test_latency(void)
{
    int64_t lens[] = {PROMPT};
    struct qb_latency_opts o = {.prompt_lens = lens,
                                .n_prompt_lens = 1,
                                .gen_len = 3,
                                .warmup = 0,
                                .repetitions = 1,
                                .batch = 2,
                                .seed = 3};
    for (int f = 0; f < F_COUNT; f++) {
        const struct config *cf = family_pick((enum family)f);
        struct qb_qmodel *qm = NULL;
        struct lat l = {0};
        if (build(cf->spec, &qm) < 0) {
            CHECK(!"config builds");
            continue;
        }
        printf("  latency probe of %s\n", cf->spec); /* before it runs, as in engine_config */
        CHECK(qb_probe_latency(qm, &o, on_sample, &l) == 0);
        if (l.n1 != 1 || l.nb != 1 || l.bad)
            fprintf(stderr, "  %s: %d batch-1 and %d batch-2 samples, %d bad\n", cf->spec, l.n1,
                    l.nb, l.bad);
        CHECK(l.n1 == 1 && l.nb == 1 && l.bad == 0);
        if (l.n1 == 1 && l.nb == 1 && l.bad == 0) {
            cov->n_latency++;
            cov->fam_seen[cur.idx][f][1] = 1;
        }
        qb_qmodel_free(qm);
    }
}

/* The probes come first: this process (a fresh child of the test) has started no OpenMP
 * thread when it forks the probe's children, as in `qbrief run`; test_fork_after_threads
 * is the case where it has. */
static void test_memory(void)
{
    struct qb_load_opts lo = {0};
    struct qb_mem_result mr[F_COUNT];
    int rc[F_COUNT];
    for (int f = 0; f < F_COUNT; f++) {
        struct qb_qspec spec;
        memset(&mr[f], 0, sizeof mr[f]);
        rc[f] = qb_qspec_parse(family_pick((enum family)f)->spec, &spec);
        if (rc[f] == 0)
            rc[f] = qb_probe_memory(cur.path, &lo, &spec, 0, &mr[f]);
        if (rc[f] < 0)
            fprintf(stderr, "  %s: %s\n", family_pick((enum family)f)->spec, qb_errmsg());
    }
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* every child reaped */
    for (int f = 0; f < F_COUNT; f++) {
        struct qb_qmodel *qm = NULL;
        struct qb_qspec spec;
        CHECK(rc[f] == 0);
        if (rc[f] < 0)
            continue;
        CHECK(qb_qspec_parse(family_pick((enum family)f)->spec, &spec) == 0);
        /* the probe measures a calibrated config on its round-to-nearest twin */
        CHECK(qb_qmodel_new_twin(cur.m, &spec, &qm) == 0);
        CHECK(mr[f].context == CTX);
        CHECK(qm && mr[f].weight_bytes == (int64_t)qb_qmodel_bytes(qm));
        CHECK(mr[f].kv_cache_bytes == qb_probe_kv_bytes(&cur.m->cfg, CTX));
        CHECK(mr[f].peak_rss_bytes > 0);
        if (qm && mr[f].weight_bytes == (int64_t)qb_qmodel_bytes(qm) && mr[f].peak_rss_bytes > 0) {
            cov->n_memory++;
            cov->fam_seen[cur.idx][f][2] = 1;
        }
        qb_qmodel_free(qm);
    }
}

/* --- the runner --- */

/* n characters of lowercase words and spaces, seeded: about n tokens in tiny_gguf's
 * tokenizer (one per letter or space). */
static void words(char *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    size_t i = 0;
    while (i + 1 < n) {
        int len = 2 + (int)((tg_unif(&s) + 1.0f) * 3.0f);
        for (int k = 0; k < len && i + 1 < n; k++)
            buf[i++] = (char)('a' + (int)((tg_unif(&s) + 1.0f) * 12.99f));
        if (i + 1 < n)
            buf[i++] = ' ';
    }
    buf[i] = 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

struct results {
    int n, ok, bad;
};

static int on_result(void *ctx, const struct qb_store_result *r)
{
    struct results *rs = ctx;
    rs->n++;
    if (r->status && strcmp(r->status, "ok")) {
        fprintf(stderr, "  item %lld config %lld: %s: %s\n", (long long)r->item_id,
                (long long)r->config_id, r->status, r->error ? r->error : "");
        return 0;
    }
    rs->ok++;
    rs->bad += !(isfinite(r->nll) && r->n_tokens > 0);
    return 0;
}

struct probes {
    struct qb_store *s;
    int64_t run;
    int n_cfg, n_mem, n_lat1, n_latb, bad;
    int64_t kv;
};

static int on_memory(void *ctx, const struct qb_store_memory *m)
{
    struct probes *p = ctx;
    p->n_mem++;
    p->bad += !(m->context == PROMPT + 3 && m->weight_bytes > 0 && m->kv_cache_bytes == p->kv &&
                m->peak_rss_bytes > 0);
    return 0;
}

static int on_latency(void *ctx, const struct qb_store_latency *l)
{
    struct probes *p = ctx;
    if (l->batch == 1)
        p->n_lat1++;
    else
        p->n_latb += l->batch == 2;
    p->bad += !(l->prompt_len == PROMPT && isfinite(l->e2e_ms) && l->e2e_ms > 0);
    return 0;
}

static int on_config(void *ctx, int64_t id, const struct qb_store_config *c)
{
    struct probes *p = ctx;
    int rc;
    p->n_cfg++;
    p->bad += !(c->weight_bytes > 0 && c->bits_per_weight > 1);
    if ((rc = qb_store_list_memory(p->s, p->run, id, on_memory, p)) < 0)
        return rc;
    return qb_store_list_latency(p->s, p->run, id, on_latency, p);
}

/* Checks what the run stored: every (config, item) "ok" with finite numbers, one memory row
 * at the probed context and a batch-1 and a batch-2 latency sample per config. */
static void check_store(const char *db, int n_cfg)
{
    struct qb_store *s = NULL;
    struct results rs = {0};
    struct probes p = {0};
    int64_t run = 0;
    CHECK(qb_store_open(db, QB_STORE_READONLY, &s) == 0);
    if (!s)
        return;
    CHECK(qb_store_run_find(s, "shapes", &run) == 0);
    CHECK(qb_store_list_results(s, run, 0, on_result, &rs) == 0);
    CHECK(rs.n == 3 * n_cfg && rs.ok == rs.n && rs.bad == 0);
    p.s = s;
    p.run = run;
    p.kv = qb_probe_kv_bytes(&cur.m->cfg, PROMPT + 3);
    CHECK(qb_store_list_configs(s, run, on_config, &p) == 0);
    if (p.n_mem != n_cfg || p.n_lat1 != n_cfg || p.n_latb != n_cfg || p.bad)
        fprintf(stderr, "  %d configs: %d memory rows, %d + %d latency samples, %d bad\n", p.n_cfg,
                p.n_mem, p.n_lat1, p.n_latb, p.bad);
    CHECK(p.n_cfg == n_cfg && p.n_mem == n_cfg && p.n_lat1 == n_cfg && p.n_latb == n_cfg);
    CHECK(p.bad == 0);
    qb_store_close(s);
}

static void test_run(void)
{
    const char *const *cfgs = run_configs[cur.idx];
    const int n_cfg = 4;
    char suite[512], calib[512], db[512], gen[PROMPT + 1], cho[PROMPT + 1], ppl[PROMPT + 1];
    char cal_text[1024], *csv = NULL;
    int64_t lens[] = {PROMPT};
    struct qb_run_opts o = QB_RUN_OPTS_INIT;
    struct qb_run_stats st = {0};
    int rc;

    snprintf(suite, sizeof suite, "%s/suite-%d.csv", check_tmpdir(), cur.idx);
    snprintf(calib, sizeof calib, "%s/calib-%d.txt", check_tmpdir(), cur.idx);
    snprintf(db, sizeof db, "%s/shapes-%d.db", check_tmpdir(), cur.idx);
    words(gen, sizeof gen, 11 + (uint64_t)cur.idx);
    words(cho, sizeof cho, 23 + (uint64_t)cur.idx);
    words(ppl, sizeof ppl, 37 + (uint64_t)cur.idx);
    words(cal_text, sizeof cal_text, 51 + (uint64_t)cur.idx);
    CHECK(asprintf(&csv,
                   "id,slice,kind,prompt,target,choices,metric,max_tokens,stop\n"
                   "gen,long,generate,\"%s\",a,,contains,4,\n"
                   "cho,long,choice,\"%s\",0,\" cat| dog| bird\",,,\n"
                   "ppl,long,perplexity,\"%s\",,,,,\n",
                   gen, cho, ppl) > 0);
    CHECK(csv && write_text(suite, csv) == 0 && write_text(calib, cal_text) == 0);
    free(csv);
    /* each prompt fills more than one 256-token prefill chunk */
    for (int k = 0; k < 3; k++) {
        const char *text = k == 0 ? gen : k == 1 ? cho : ppl;
        int32_t *ids = NULL;
        int64_t n_ids = 0;
        CHECK(qb_tok_encode(cur.m->tok, text, strlen(text), QB_TOK_DEFAULT, &ids, &n_ids) == 0);
        CHECK(n_ids > 256 && n_ids + 4 <= CTX);
        free(ids);
    }

    o.model_path = cur.path;
    o.suite_path = suite;
    o.db_path = db;
    o.name = "shapes";
    o.configs = cfgs;
    o.n_configs = n_cfg;
    o.prompt_lens = lens;
    o.n_prompt_lens = 1;
    o.gen_len = 3;
    o.batch = 2;
    o.warmup = 0;
    o.repetitions = 1;
    o.calib_path = calib;
    o.calib_sequences = 4;
    o.calib_seq_len = 64;
    rc = qb_run(&o, &st);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0);
    CHECK(st.n_evaluated == 3 * n_cfg && st.n_errors == 0 && st.n_skipped_items == 0);
    CHECK(st.n_latency_configs == n_cfg);
    if (rc == 0)
        cov->n_run += n_cfg;
    check_store(db, n_cfg);
}

/* --- the CLI --- */

/* The qbrief binary `make test` names in $QBRIEF (bin/qbrief-san under sanitizers), or NULL. */
static const char *qbrief_bin;

/* Reads a whole small file into buf (NUL-terminated); its length, or -1. */
static long read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f)
        return -1;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return (long)n;
}

/* `qbrief generate MODEL -p PROMPT -n 4 --config SPEC --calib FILE` on the runner's configs,
 * as issue 19 reached the overflow: exits 0, prints the prompt then its continuation, and
 * prefilled more than one 256-token chunk. */
static void test_generate(void)
{
    char prompt[PROMPT + 1], calib[512], out[512], err[512], cal_text[1024], bin[512], spec[128];
    static char text[8192];
    snprintf(bin, sizeof bin, "%s", qbrief_bin); /* execv's argv is not const */
    words(prompt, sizeof prompt, 71 + (uint64_t)cur.idx);
    words(cal_text, sizeof cal_text, 83 + (uint64_t)cur.idx);
    snprintf(calib, sizeof calib, "%s/generate-calib-%d.txt", check_tmpdir(), cur.idx);
    CHECK(write_text(calib, cal_text) == 0);
    for (int c = 0; c < 4; c++) {
        char *const argv[] = {bin, "generate", cur.path, "-p",      prompt, "-n",
                              "4", "--config", spec,     "--calib", calib,  NULL};
        long long n_prefill = 0;
        const char *at;
        int st = 0;
        pid_t pid;
        snprintf(spec, sizeof spec, "%s", run_configs[cur.idx][c]);
        snprintf(out, sizeof out, "%s/generate-%d-%d.out", check_tmpdir(), cur.idx, c);
        snprintf(err, sizeof err, "%s/generate-%d-%d.err", check_tmpdir(), cur.idx, c);
        fflush(NULL);
        pid = fork();
        if (pid == 0) {
            int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
                _exit(126);
            execv(bin, argv);
            _exit(127);
        }
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (WIFSIGNALED(st))
                fprintf(stderr, "  generate --config %s: killed by signal %d (%s); stderr:\n", spec,
                        WTERMSIG(st), strsignal(WTERMSIG(st)));
            else
                fprintf(stderr, "  generate --config %s: exit status %d; stderr:\n", spec,
                        WEXITSTATUS(st));
            if (read_text(err, text, sizeof text) > 0)
                fprintf(stderr, "%s\n", text);
            CHECK(!"qbrief generate succeeds");
            continue;
        }
        CHECK(read_text(out, text, sizeof text) > 0 && !strncmp(text, prompt, strlen(prompt)));
        CHECK(read_text(err, text, sizeof text) > 0 && (at = strstr(text, "prefill: ")) &&
              sscanf(at, "prefill: %lld tokens", &n_prefill) == 1);
        printf("  generate --config %-28s prefilled %lld tokens\n", spec, n_prefill);
        CHECK(n_prefill > 256);
        cov->n_generate++;
    }
}

/* --- per shape --- */

static int next_shape;

/* Writes the next shape's model and loads it back, for the paths' children to share. Runs
 * no engine: this process forks every path, and must start no OpenMP thread. */
static void test_open(void)
{
    const int idx = next_shape++;
    const struct tg_shape *s = &shapes[idx].s;
    const int64_t v = TG_VOCAB;
    struct qb_load_opts lo = {0};
    int32_t cal_ids[4 * 48];

    memset(&cur, 0, sizeof cur);
    cur.idx = idx;
    snprintf(cur.path, sizeof cur.path, "%s/%s.gguf", check_tmpdir(), shapes[idx].name);
    CHECK(tg_write(s, 0x9e3779b97f4a7c15ull + (uint64_t)idx, cur.path) == 0);
    if (qb_model_load(cur.path, &lo, &cur.m) < 0) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        CHECK(!"the model loads");
        return;
    }
    CHECK(cur.m->cfg.dim == s->dim && cur.m->cfg.hidden_dim == s->hidden &&
          cur.m->cfg.head_dim == s->head_dim && cur.m->cfg.n_kv_heads == s->n_kv_heads &&
          cur.m->cfg.vocab_size == v && cur.m->cfg.tied_embeddings == s->tied && cur.m->tok);
    for (int i = 0; i < PROMPT + DECODE; i++)
        cur.ids[i] = rand_id(v);
    for (int i = 0; i < 4 * 48; i++)
        cal_ids[i] = i % 48 ? rand_id(v) : 1; /* BOS-led sequences */
    CHECK(qb_calib_from_tokens(cal_ids, 4, 48, "random", &cur.cal) == 0);
    if (cur.cal) /* alphas 0 and 0.5: the search runs, at a tenth of the default's cost */
        cur.cal->awq_grid = 2;
    if (check_failed_in_test) { /* the paths skip a shape that did not open */
        qb_model_free(cur.m);
        cur.m = NULL;
    }
}

static void shape_close(void)
{
    qb_calib_free(cur.cal);
    qb_model_free(cur.m);
    memset(&cur, 0, sizeof cur);
}

/* Every family went through the engine, latency and memory paths on every shape. */
static void test_coverage(void)
{
    static const char *const path[3] = {"engine", "latency", "memory"};
    int missing = 0;
    for (int i = 0; i < N_SHAPES; i++)
        for (int f = 0; f < F_COUNT; f++)
            for (int p = 0; p < 3; p++)
                if (!cov->fam_seen[i][f][p]) {
                    fprintf(stderr, "  not covered: %s x %s x %s\n", shapes[i].name, family_name[f],
                            path[p]);
                    missing++;
                }
    CHECK(missing == 0);
}

/* --- running each path in a child --- */

static void (*child_fn)(void);
static int child_timeout_s;

/* Runs child_fn in a forked child and fails when it failed a check, crashed (a sanitizer
 * report, a heap corruption abort), leaked, or hung past child_timeout_s (then it and what
 * it forked are killed): one crash fails its own (shape, path) and the matrix goes on. The
 * children also keep this process free of OpenMP threads, so each one forks the memory
 * probe's children as `qbrief run` does (see test_fork_after_threads). */
static void in_child(void)
{
    struct timespec t0, t;
    int st = 0;
    pid_t pid, w;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* one process group with the children it forks, for the watchdog */
        check_failed_in_test = 0;
        child_fn();
#ifdef __SANITIZE_ADDRESS__
        if (__lsan_do_recoverable_leak_check())
            CHECK(!"no leaks");
#endif
        fflush(NULL);
        _exit(check_failed_in_test ? 1 : 0); /* not exit: the parent's atexit owns the tmpdir */
    }
    CHECK(pid > 0);
    if (pid < 0)
        return;
    setpgid(pid, pid);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((w = waitpid(pid, &st, WNOHANG)) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec >= child_timeout_s) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "  the child hung: killed after %d s\n", child_timeout_s);
            CHECK(!"the child finishes");
            return;
        }
        usleep(20 * 1000);
    }
    if (w != pid)
        return;
    if (WIFSIGNALED(st))
        fprintf(stderr, "  the child died of signal %d (%s)\n", WTERMSIG(st),
                strsignal(WTERMSIG(st)));
    else if (WEXITSTATUS(st))
        fprintf(stderr,
                "  the child exited with status %d (a failed check, or a sanitizer report "
                "above)\n",
                WEXITSTATUS(st));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Regression, found by this matrix: the memory probe forks a child that runs the engine.
 * When the calling process has already run OpenMP regions on several threads -- `qbrief
 * run` with a plan of several models probes the second model's memory after evaluating
 * the first -- libgomp's thread pool does not survive the fork, and the child waits
 * forever in its first parallel region (attention's, engine.c). Run under in_child's
 * watchdog, so that a hang fails the test instead of stopping `make test`. */
static void test_fork_after_threads(void)
{
    struct qb_load_opts lo = {0};
    struct qb_mem_result mr = {0};
    struct qb_qspec spec;
    int n = 0, rc;
    /* two threads here, and in the probe's child (which inherits the setting) whatever
     * OMP_NUM_THREADS or the core count says */
    omp_set_num_threads(2);
#pragma omp parallel reduction(+ : n)
    n++;
    CHECK(n == 2);
    CHECK(qb_qspec_parse("w4g32", &spec) == 0);
    rc = qb_probe_memory(cur.path, &lo, &spec, 0, &mr);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0 && mr.context == CTX && mr.peak_rss_bytes > 0);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } paths[] = {{"engine", test_engine},
                 {"latency", test_latency},
                 {"memory", test_memory},
                 {"run", test_run},
                 {"generate", test_generate}};
    char name[128];

    setvbuf(stdout, NULL, _IOLBF, 0); /* a crash mid-matrix still shows which config it was in */
    cov = mmap(NULL, sizeof *cov, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (cov == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(cov, 0, sizeof *cov);
    qbrief_bin = getenv("QBRIEF");
    if (qbrief_bin && access(qbrief_bin, X_OK) != 0)
        qbrief_bin = NULL;
    for (int i = 0; i < N_SHAPES; i++) {
        snprintf(name, sizeof name, "open %s", shapes[i].name);
        check_run(name, test_open);
        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            snprintf(name, sizeof name, "%s %s", paths[p].name, shapes[i].name);
            child_fn = paths[p].fn;
            child_timeout_s = 600;
            if (paths[p].fn == test_generate && !qbrief_bin)
                check_skip(name, "needs $QBRIEF, the qbrief binary (make test sets it)");
            else if (cur.m)
                check_run(name, in_child);
            else
                check_skip(name, "the shape's model did not open");
        }
        if (i == 0 && cur.m) {
            /* a working probe takes well under a second here, even under ASan */
            child_fn = test_fork_after_threads;
            child_timeout_s = 15;
            check_run("test_fork_after_threads", in_child);
        }
        shape_close();
    }
    RUN(test_coverage);
    printf("# shapes %d x configs %d; (shape, config) pairs per path: engine %d (calibrated %d), "
           "latency batch 1+2 %d, memory %d, run %d, generate (CLI) %d\n",
           N_SHAPES, N_CONFIGS, cov->n_engine, cov->n_calib, cov->n_latency, cov->n_memory,
           cov->n_run, cov->n_generate);
    return check_summary();
}
