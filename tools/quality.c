/* quality: the calibrated-quantization benchmark behind docs/quality.md. For one model it
 * samples two disjoint sets of stories from the f32 model (temperature 1, top-p 1, different
 * seeds): the calibration text, written to a file and loaded as `qbrief run --calib` would
 * load it, and the held-out text. Each config is then built (calibrated on that file when it
 * has a method) and scored by the mean token-level KL(p_f32 || p_config) over every position
 * of the held-out sequences, on the full vocabulary, with the quantization time.
 *
 *   tools/quality.sh                      # builds this against build/libqbrief.a and runs it
 *   build/tools/quality MODEL TOKENIZER CALIB_OUT [options] CONFIG...
 *     --calib-seqs N (128)  --calib-len L (512, capped at the context)
 *     --held-seqs N (16)    --held-len L (256)   --threads N
 *     --act-order  --no-head (GPTQ leaves the output head RTN)  --damp F (0.01)
 *     --clip -1|0|1 (GPTQ group clipping search, 1)  --clip-weighted 0|1 (1)  --awq-duo 0|1 (0)
 *     --awq-grid N (20)  --awq-tokens N (4096)  --awq-mlp-loss 0|1 (1)
 *     --awq-trace        one line per AWQ search on stderr (collector/quant/calib.h, awq_trace)
 *     --calib-text FILE  calibrate on FILE instead of sampled stories (CALIB_OUT is then unused)
 *     --held-text FILE   score on FILE's first held-seqs x held-len tokens, cut as calibration
 *                        text is (BOS + piece), instead of sampled stories
 * Prints one markdown table row per config. */
#include "collector/quant/calib.h"
#include "collector/engine/engine.h"
#include "collector/engine/generate.h"
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/engine/sampler.h"
#include "collector/tokenizer/tokenizer.h"
#include "collector/model/qspec.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n_seq x len tokens sampled from BOS; each sequence is stories one after another in one
 * context: a story is a qb_generate from a BOS to the next EOS/BOS, which becomes the BOS of
 * the next. One sampler stream over all of them. */
static int sample(const struct qb_model *m, int64_t n_seq, int64_t len, uint64_t seed, int32_t *ids)
{
    struct qb_engine *e = NULL;
    struct qb_sampler smp = {0};
    struct qb_gen_opts o = QB_GEN_OPTS_INIT;
    const int32_t bos = qb_tok_bos(m->tok);
    int rc;
    if ((rc = qb_engine_new(m, len, &e)) < 0 ||
        (rc = qb_sampler_init(&smp, m->cfg.vocab_size, 1.0f, 1.0f, seed)) < 0)
        goto out;
    o.sampler = &smp;
    for (int64_t s = 0; s < n_seq && rc == 0; s++) {
        int32_t *row = ids + s * len;
        int64_t n = 1;
        qb_engine_reset(e);
        row[0] = bos;
        while (n < len) {
            struct qb_gen_result g;
            o.max_tokens = len - n;
            if ((rc = qb_generate(e, m->tok, m->cfg.vocab_size, &row[n - 1], 1, &o, NULL, NULL,
                                  &g)) < 0)
                break;
            memcpy(row + n, g.ids, (size_t)g.n_ids * sizeof *row);
            n += g.n_ids;
            if (g.end == QB_GEN_END_EOS)
                row[n++] = bos;
            qb_gen_result_release(&g);
        }
    }
out:
    qb_sampler_release(&smp);
    qb_engine_free(e);
    return rc;
}

/* The text of sampled sequences, stories separated by blank lines. */
static int write_text(const struct qb_model *m, const int32_t *ids, int64_t n_seq, int64_t len,
                      const char *path)
{
    FILE *f = fopen(path, "w");
    int32_t bos = qb_tok_bos(m->tok);
    if (!f)
        return qb_err(QB_EIO, "cannot write '%s'", path);
    for (int64_t s = 0; s < n_seq; s++) {
        const int32_t *row = ids + s * len;
        int64_t t0 = 1;
        for (int64_t t = 1; t <= len; t++)
            if (t == len || row[t] == bos) {
                char *text = NULL;
                size_t n = 0;
                if (t > t0 && qb_tok_decode(m->tok, row + t0, t - t0, &text, &n) == 0) {
                    fwrite(text, 1, n, f);
                    fputs("\n\n", f);
                }
                free(text);
                t0 = t + 1;
            }
    }
    return fclose(f) == 0 ? 0 : qb_err(QB_EIO, "cannot write '%s'", path);
}

static void log_softmax(float *v, int64_t n)
{
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++)
        mx = v[i] > mx ? v[i] : mx;
    for (int64_t i = 0; i < n; i++)
        s += exp((double)v[i] - mx);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)((double)v[i] - mx - log(s));
}

/* logp (n_seq * len, vocab) of qm on the held-out sequences */
static int score(const struct qb_qmodel *qm, const int32_t *ids, int64_t n_seq, int64_t len,
                 float *logp)
{
    const int64_t v = qm->m->cfg.vocab_size;
    struct qb_engine *e = NULL;
    int rc = qb_engine_new_q(qm, len, &e);
    for (int64_t s = 0; s < n_seq && rc == 0; s++) {
        qb_engine_reset(e);
        rc = qb_engine_forward(e, ids + s * len, len, logp + s * len * v);
    }
    qb_engine_free(e);
    for (int64_t t = 0; rc == 0 && t < n_seq * len; t++)
        log_softmax(logp + t * v, v);
    return rc;
}

int main(int argc, char **argv)
{
    int64_t calib_seqs = 128, calib_len = 512, held_seqs = 16, held_len = 256;
    int act_order = 0, no_head = 0, awq_trace = 0, first = 4, rc = 0, clip = 1, clip_w = 1,
        awq_duo = 0, awq_grid = 0, awq_mlp = 1, awq_attn = 1;
    long long awq_tokens = 0, awq_search = -1;
    const char *calib_text = NULL, *held_text = NULL;
    double damp = 0.01;
    struct qb_model *m = NULL;
    struct qb_calib *cal = NULL;
    int32_t *held = NULL, *cids = NULL;
    float *ref = NULL, *got = NULL;
    if (argc < 5) {
        fprintf(
            stderr,
            "usage: quality MODEL TOKENIZER CALIB_OUT [--calib-seqs N] [--calib-len L] "
            "[--held-seqs N] [--held-len L] [--calib-text FILE] [--held-text FILE] [--act-order] "
            "[--threads N] [--damp D] [--awq-grid N] [--awq-tokens N] [--awq-search-weights N] "
            "[--awq-mlp-loss 0|1] [--awq-attn-loss 0|1] [--awq-duo 0|1] [--awq-trace] CONFIG...\n");
        return 2;
    }
    while (first < argc && !strncmp(argv[first], "--", 2)) {
        const char *o = argv[first];
        if (!strcmp(o, "--act-order") || !strcmp(o, "--no-head") || !strcmp(o, "--awq-trace")) {
            *(!strcmp(o, "--act-order") ? &act_order
              : !strcmp(o, "--no-head") ? &no_head
                                        : &awq_trace) = 1;
            first++;
            continue;
        }
        if (first + 1 >= argc)
            return fprintf(stderr, "%s needs a value\n", o), 2;
        long long val = atoll(argv[first + 1]);
        if (!strcmp(o, "--calib-seqs"))
            calib_seqs = val;
        else if (!strcmp(o, "--calib-len"))
            calib_len = val;
        else if (!strcmp(o, "--held-seqs"))
            held_seqs = val;
        else if (!strcmp(o, "--held-len"))
            held_len = val;
        else if (!strcmp(o, "--threads"))
            omp_set_num_threads((int)val);
        else if (!strcmp(o, "--damp"))
            damp = atof(argv[first + 1]);
        else if (!strcmp(o, "--clip"))
            clip = (int)val;
        else if (!strcmp(o, "--clip-weighted"))
            clip_w = (int)val;
        else if (!strcmp(o, "--awq-duo"))
            awq_duo = (int)val;
        else if (!strcmp(o, "--awq-grid"))
            awq_grid = (int)val;
        else if (!strcmp(o, "--awq-mlp-loss"))
            awq_mlp = (int)val;
        else if (!strcmp(o, "--awq-attn-loss"))
            awq_attn = (int)val;
        else if (!strcmp(o, "--calib-text"))
            calib_text = argv[first + 1];
        else if (!strcmp(o, "--held-text"))
            held_text = argv[first + 1];
        else if (!strcmp(o, "--awq-tokens"))
            awq_tokens = val;
        else if (!strcmp(o, "--awq-search-weights"))
            awq_search = val;
        else
            return fprintf(stderr, "unknown option %s\n", o), 2;
        first += 2;
    }
    struct qb_load_opts lo = {.tokenizer_path = argv[2]};
    if ((rc = qb_model_load(argv[1], &lo, &m)) < 0)
        goto out;
    const int64_t v = m->cfg.vocab_size, ctx = m->cfg.max_seq_len;
    calib_len = calib_len < ctx ? calib_len : ctx;
    held_len = held_len < ctx ? held_len : ctx;
    /* held-out tokens: sampled (seed 2), or the first of --held-text cut as calibration is */
    if (held_text) {
        struct qb_calib *hc = NULL;
        if ((rc = qb_calib_load(held_text, m->tok, held_seqs, held_len, ctx, &hc)) < 0)
            goto out;
        held_seqs = hc->n_seq;
        held_len = hc->seq_len;
        held = hc->tokens;
        hc->tokens = NULL;
        qb_calib_free(hc);
    } else if (!(held = malloc((size_t)(held_seqs * held_len) * sizeof *held)) ||
               (rc = sample(m, held_seqs, held_len, 2, held)) < 0) {
        rc = rc < 0 ? rc : qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    if (!(ref = malloc((size_t)(held_seqs * held_len * v) * sizeof *ref)) ||
        !(got = malloc((size_t)(held_seqs * held_len * v) * sizeof *got))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    /* calibration: --calib-text, or sampled with seed 1 (never the held-out stories) and
     * written to CALIB_OUT; either way loaded as `qbrief run --calib` loads it */
    if (!calib_text) {
        if (!(cids = malloc((size_t)(calib_seqs * calib_len) * sizeof *cids))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = sample(m, calib_seqs, calib_len, 1, cids)) < 0 ||
            (rc = write_text(m, cids, calib_seqs, calib_len, argv[3])) < 0)
            goto out;
    }
    if ((rc = qb_calib_load(calib_text ? calib_text : argv[3], m->tok, calib_seqs, calib_len, ctx,
                            &cal)) < 0)
        goto out;
    cal->gptq_act_order = act_order;
    cal->gptq_head = !no_head;
    cal->gptq_damp = damp;
    cal->gptq_clip = clip;
    cal->gptq_clip_weighted = clip_w;
    cal->awq_duo = awq_duo;
    cal->awq_mlp_loss = awq_mlp;
    cal->awq_attn_loss = awq_attn;
    cal->awq_trace = awq_trace ? stderr : NULL;
    if (awq_grid > 0)
        cal->awq_grid = awq_grid;
    if (awq_tokens > 0)
        cal->awq_tokens = awq_tokens;
    if (awq_search >= 0)
        cal->awq_search_weights = awq_search;
    fprintf(stderr, "%s: calibration %lld x %lld tokens from '%s'; held-out %lld x %lld tokens\n",
            argv[1], (long long)cal->n_seq, (long long)cal->seq_len, cal->name,
            (long long)held_seqs, (long long)held_len);
    {
        struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}};
        struct qb_qmodel *qm = NULL;
        if ((rc = qb_qmodel_new(m, &f32, &qm)) < 0 ||
            (rc = score(qm, held, held_seqs, held_len, ref)) < 0) {
            qb_qmodel_free(qm);
            goto out;
        }
        qb_qmodel_free(qm);
    }
    printf("| config | mean KL from f32 (nats/token) | quantization time (s) |\n|---|---|---|\n");
    for (int i = first; i < argc; i++) {
        struct qb_qspec spec;
        struct qb_qmodel *qm = NULL;
        double kl = 0;
        if ((rc = qb_qspec_parse(argv[i], &spec)) < 0 ||
            (rc = qb_qmodel_new_calib(m, &spec, cal, &qm)) < 0 ||
            (rc = score(qm, held, held_seqs, held_len, got)) < 0) {
            qb_qmodel_free(qm);
            goto out;
        }
        for (int64_t t = 0; t < held_seqs * held_len; t++)
            for (int64_t j = 0; j < v; j++) {
                double p = exp((double)ref[t * v + j]);
                kl += p * ((double)ref[t * v + j] - (double)got[t * v + j]);
            }
        kl /= (double)(held_seqs * held_len);
        printf("| `%s` | %.4f | %.2f |\n", qm->name, kl, qm->quant_seconds);
        fflush(stdout);
        qb_qmodel_free(qm);
    }
out:
    if (rc < 0)
        fprintf(stderr, "quality: %s\n", qb_errmsg());
    qb_calib_free(cal);
    qb_model_free(m);
    free(cids);
    free(held);
    free(ref);
    free(got);
    return rc < 0 ? 1 : 0;
}
