/* bench-engine: prefill and decode timings of one model in one config, one repetition per
 * line read from stdin, so that tools/bench-vs-llamacpp.sh can interleave it with another
 * engine's repetitions in one run (both loaded once, side by side). The prompt is token ids,
 * not text: BOS, then id (i * 7919 + 13) % 31000 + 259 at position i >= 1 -- the same ids
 * tools/bench-llamacpp.mjs feeds llama.cpp, so both engines see the same tokens.
 *
 *     build/tools/bench-engine MODEL CONFIG [--prompts 128,512] [--gen 64] [--threads 2]
 *     (then, per line on stdin, one repetition; each prints one line:)
 *     prefill128_ms 812.4 prefill512_ms 3571.0 decode_tok_s 25.31
 *
 * Prefill: a fresh context, the prompt in one forward, the last position's logits only.
 * Decode: a fresh context, the first 128 prompt tokens less one prefilled (not timed), then
 * --gen single-token forwards, each fed the argmax of the one before (the first is fed the
 * prompt's last token); decode_tok_s is --gen over their wall time. Loading and quantizing
 * the config happen once, before the first repetition, and are not timed. */
#include "collector/engine/engine.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PROMPTS 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t prompt_id(int64_t i)
{
    return i == 0 ? 1 : (int32_t)((i * 7919 + 13) % 31000 + 259);
}

static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* One repetition: every prompt length, then the decode run; one line on stdout. */
static int repetition(struct qb_engine *e, const int32_t *ids, const int64_t *lens, int n_lens,
                      int64_t gen, int64_t vocab)
{
    int rc;
    for (int k = 0; k < n_lens; k++) {
        double t0;
        qb_engine_reset(e);
        t0 = now_s();
        if ((rc = qb_engine_forward(e, ids, lens[k], NULL)) < 0)
            return rc;
        printf("prefill%lld_ms %.1f ", (long long)lens[k], 1e3 * (now_s() - t0));
    }
    qb_engine_reset(e);
    int64_t dp = lens[0] < 128 ? lens[0] : 128;
    if ((rc = qb_engine_forward(e, ids, dp - 1, NULL)) < 0)
        return rc;
    int32_t next = ids[dp - 1];
    double t0 = now_s();
    for (int64_t g = 0; g < gen; g++) {
        if ((rc = qb_engine_forward(e, &next, 1, NULL)) < 0)
            return rc;
        next = (int32_t)argmax(qb_engine_logits(e), vocab);
    }
    printf("decode_tok_s %.2f\n", (double)gen / (now_s() - t0));
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    struct qb_qmodel *qm = NULL;
    struct qb_engine *e = NULL;
    struct qb_qspec spec;
    int64_t lens[MAX_PROMPTS] = {128, 512}, gen = 64, max_len = 0;
    int n_lens = 2, threads = 2, rc;
    int32_t *ids = NULL;
    char line[64];

    for (int a = 3; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--prompts")) {
            char *s = argv[a + 1], *end;
            for (n_lens = 0; *s && n_lens < MAX_PROMPTS; s = *end ? end + 1 : end) {
                lens[n_lens] = strtoll(s, &end, 10);
                if (end == s || lens[n_lens] < 2)
                    goto usage;
                n_lens++;
            }
        } else if (!strcmp(argv[a], "--gen"))
            gen = atoll(argv[a + 1]);
        else if (!strcmp(argv[a], "--threads"))
            threads = atoi(argv[a + 1]);
        else
            goto usage;
    }
    if (argc < 3 || argc % 2 == 0 || n_lens < 1 || gen < 1 || threads < 1)
        goto usage;
    for (int k = 0; k < n_lens; k++)
        max_len = lens[k] > max_len ? lens[k] : max_len;
    omp_set_num_threads(threads);
    if ((rc = qb_kernels_init(NULL)) < 0 || (rc = qb_qspec_parse(argv[2], &spec)) < 0 ||
        (rc = qb_model_load(argv[1], &lo, &m)) < 0 || (rc = qb_qmodel_new(m, &spec, &qm)) < 0)
        goto out;
    {
        struct qb_engine_opts o = {.max_ctx = max_len + gen + 1, .max_batch = max_len};
        if ((rc = qb_engine_new_opts(qm, &o, &e)) < 0)
            goto out;
    }
    if (!(ids = malloc((size_t)(max_len + gen) * sizeof *ids))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < max_len + gen; i++)
        ids[i] = prompt_id(i);
    fprintf(stderr, "bench-engine: %s as %s, %s kernels, %d threads, ready\n", argv[1], argv[2],
            qb_kernels()->isa, threads);
    while (fgets(line, sizeof line, stdin))
        if ((rc = repetition(e, ids, lens, n_lens, gen, m->cfg.vocab_size)) < 0)
            goto out;
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "bench-engine: %s\n", qb_errmsg());
    free(ids);
    qb_engine_free(e);
    qb_qmodel_free(qm);
    qb_model_free(m);
    return rc < 0 ? 1 : 0;
usage:
    fprintf(stderr, "usage: bench-engine MODEL CONFIG [--prompts 128,512] [--gen N] "
                    "[--threads N]\n");
    return 2;
}
