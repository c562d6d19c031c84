/* test_run_batch: the runner scores an item's positions in passes of up to 256 tokens (every
 * pass a multiple of 32 but the last, which is the n % 32 tokens left); each perplexity
 * item's NLL is exactly (==) what passes of 32 tokens give, the runner's old schedule:
 * the engine run here by hand in passes of 32 with the runner's own sums. Items of 1 to
 * ~300 tokens (around every multiple of 32 and past the engine's 256-token batch), float,
 * 8-bit and grouped integer configs with f32 and int8 activations, on a tiny random GGUF
 * model. Runs anywhere. */
#include "collector/engine/engine.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "collector/run/run.h"
#include "collector/tokenizer/tokenizer.h"
#include "tests/check.h"
#include "tests/collector/model/tiny_gguf.h"

#include <math.h>
#include <omp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int lens[] = {2, 30, 31, 32, 33, 63, 64, 65, 95, 130, 257, 300};
#define N_ITEMS ((int)(sizeof lens / sizeof *lens))
static const char *cfgs[] = {"bf16", "w8a8", "w4g32-sym-a8", "w4g32", "w3g64"};
#define N_CFG ((int)(sizeof cfgs / sizeof *cfgs))

static void words(char *buf, int n, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < n; i++)
        buf[i] = i % 6 == 5 ? ' ' : (char)('a' + (int)((tg_unif(&s) + 1.0f) * 12.99f));
    buf[n] = 0;
}

/* The runner's NLL of ids[0..n) on e: passes of 32, log-sum-exp in double, summed in order. */
static double nll_by_32(struct qb_engine *e, const int32_t *ids, int64_t n, int64_t vocab)
{
    float *rows = malloc((size_t)(32 * vocab) * sizeof *rows);
    double sum = 0;
    int64_t cnt = 0;
    qb_engine_reset(e);
    for (int64_t off = 0; rows && off < n - 1; off += 32) {
        int64_t c = n - 1 - off < 32 ? n - 1 - off : 32;
        if (qb_engine_forward(e, ids + off, c, rows) < 0) {
            free(rows);
            return NAN;
        }
        for (int64_t i = 0; i < c; i++) {
            const float *x = rows + i * vocab;
            float mx = x[0];
            for (int64_t j = 1; j < vocab; j++)
                if (x[j] > mx)
                    mx = x[j];
            double s = 0;
            for (int64_t j = 0; j < vocab; j++)
                s += exp((double)x[j] - mx);
            double lse = mx + log(s);
            sum -= x[ids[off + i + 1]] - lse;
            cnt++;
        }
    }
    free(rows);
    return cnt ? sum / (double)cnt : NAN;
}

static void test_nll_as_passes_of_32(void)
{
    const struct tg_shape shape = {.arch = "llama",
                                   .dim = 64,
                                   .hidden = 172,
                                   .n_layers = 2,
                                   .n_heads = 4,
                                   .n_kv_heads = 2,
                                   .head_dim = 16,
                                   .ctx = 384};
    char model[512], suite[512], db[512], text[N_ITEMS][320];
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    sqlite3 *sq = NULL;
    FILE *f;

    snprintf(model, sizeof model, "%s/batch.gguf", check_tmpdir());
    snprintf(suite, sizeof suite, "%s/batch.csv", check_tmpdir());
    snprintf(db, sizeof db, "%s/batch.db", check_tmpdir());
    CHECK(tg_write(&shape, 0x5851f42d4c957f2dull, model) == 0);
    CHECK((f = fopen(suite, "w")) != NULL);
    if (!f)
        return;
    fprintf(f, "id,slice,kind,prompt,target,choices,metric,max_tokens,stop\n");
    for (int k = 0; k < N_ITEMS; k++) {
        words(text[k], lens[k], 100 + (uint64_t)k);
        fprintf(f, "p%02d,ppl,perplexity,\"%s\",,,,,\n", k, text[k]);
    }
    fclose(f);

    struct qb_run_opts o = QB_RUN_OPTS_INIT;
    o.model_path = model;
    o.suite_path = suite;
    o.db_path = db;
    o.name = "batch";
    o.configs = cfgs;
    o.n_configs = N_CFG;
    o.threads = 2;
    o.no_latency = o.no_memory = 1;
    CHECK(qb_run(&o, NULL) == 0);
    CHECK(qb_model_load(model, &lo, &m) == 0 && sqlite3_open(db, &sq) == SQLITE_OK);
    if (!m || !sq)
        goto out;
    omp_set_num_threads(2);
    for (int c = -1; c < N_CFG; c++) { /* -1: the baseline, f32 */
        const char *name = c < 0 ? "f32" : cfgs[c];
        struct qb_qspec spec;
        struct qb_qmodel *qm = NULL;
        struct qb_engine *e = NULL;
        int same = 0, scored = 0;
        CHECK(qb_qspec_parse(name, &spec) == 0 && qb_qmodel_new(m, &spec, &qm) == 0 &&
              qb_engine_new_q(qm, 0, &e) == 0);
        for (int k = 0; e && k < N_ITEMS; k++) {
            int32_t *ids = NULL;
            int64_t n = 0;
            sqlite3_stmt *st = NULL;
            char key[16];
            snprintf(key, sizeof key, "p%02d", k);
            CHECK(qb_tok_encode(m->tok, text[k], strlen(text[k]), QB_TOK_DEFAULT, &ids, &n) == 0);
            CHECK(sqlite3_prepare_v2(sq,
                                     "SELECT r.nll, r.n_tokens FROM item_results r JOIN configs c "
                                     "ON c.id = r.config_id JOIN items i ON i.id = r.item_id "
                                     "WHERE c.spec = ?1 AND i.item_key = ?2 AND r.status = 'ok'",
                                     -1, &st, NULL) == SQLITE_OK);
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                double want = nll_by_32(e, ids, n, m->cfg.vocab_size);
                scored++;
                CHECK(sqlite3_column_int64(st, 1) == n - 1);
                if (sqlite3_column_double(st, 0) == want)
                    same++;
                else
                    fprintf(stderr, "%s %s (%lld tokens): nll %.17g, by passes of 32 %.17g\n", name,
                            key, (long long)n, sqlite3_column_double(st, 0), want);
            }
            sqlite3_finalize(st);
            free(ids);
        }
        /* every item is scored, and each NLL is the same number */
        if (scored != N_ITEMS)
            fprintf(stderr, "%s: %d of %d items scored\n", name, scored, N_ITEMS);
        CHECK(scored == N_ITEMS);
        CHECK(same == scored);
        qb_engine_free(e);
        qb_qmodel_free(qm);
    }
out:
    sqlite3_close(sq);
    qb_model_free(m);
}

int main(void)
{
    RUN(test_nll_as_passes_of_32);
    return check_summary();
}
