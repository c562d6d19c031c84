/* test_sens: the sensitivity scan (collector/run/sens.h) finds a layer made fragile on
 * purpose -- a copy of the demo model in which one input channel in each group of 64 of
 * layer 1's down projection is scaled up 64x and the matching row of up scaled down 64x: the
 * same function in f32, but each of down's groups now spans an outlier, so rounding to 3
 * bits crushes the other weights -- at both granularities; its mixed
 * candidates parse and keep that unit; the scan is stored and read back; bad inputs are
 * refused. Run from the repository root (examples/demo). */
#include "collector/model/qspec.h"
#include "collector/run/sens.h"
#include "collector/store/store.h"
#include "collector/store/store_sens.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO "examples/demo/qbrief-demo"
#define CALIB "examples/demo/calib.txt"
#define DOWN "model.layers.1.mlp.down_proj.weight" /* (dim 128, hidden 384) */
#define UP "model.layers.1.mlp.up_proj.weight"     /* (hidden 384, dim 128) */
#define SCALE 64.0f

static char dir[512];

/* The f32 data of tensor name in the safetensors bytes st (n). */
static float *tensor_at(gchar *st, gsize n, json_t *h, uint64_t hlen, const char *name, size_t want)
{
    json_t *off = json_object_get(json_object_get(h, name), "data_offsets");
    size_t a = (size_t)json_integer_value(json_array_get(off, 0));
    size_t b = (size_t)json_integer_value(json_array_get(off, 1));
    if (!off || b - a != want * 4 || 8 + hlen + b > n)
        return NULL;
    return (float *)(void *)(st + 8 + hlen + a);
}

/* A copy of the demo model with layer 1's down projection made fragile. */
static int make_fragile(void)
{
    gchar *st = NULL, *cfg = NULL, *tok = NULL;
    gsize n = 0, ncfg = 0, ntok = 0;
    uint64_t hlen = 0;
    json_t *h = NULL;
    int ok = 0;
    snprintf(dir, sizeof dir, "%s/fragile", check_tmpdir());
    g_mkdir_with_parents(dir, 0700);
    if (!g_file_get_contents(DEMO "/model.safetensors", &st, &n, NULL) ||
        !g_file_get_contents(DEMO "/config.json", &cfg, &ncfg, NULL) ||
        !g_file_get_contents(DEMO "/tokenizer.json", &tok, &ntok, NULL) || n < 8)
        goto out;
    memcpy(&hlen, st, 8);
    if (!(h = json_loadb(st + 8, (size_t)hlen, 0, NULL)))
        goto out;
    float *down = tensor_at(st, n, h, hlen, DOWN, 128 * 384);
    float *up = tensor_at(st, n, h, hlen, UP, 384 * 128);
    if (!down || !up || (uintptr_t)down % 4 || (uintptr_t)up % 4)
        goto out;
    for (int c = 0; c < 384; c += 64) { /* one channel per group of 64 inputs of down */
        for (int r = 0; r < 128; r++)
            down[r * 384 + c] *= SCALE;
        for (int j = 0; j < 128; j++)
            up[c * 128 + j] /= SCALE;
    }
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    ok = g_file_set_contents(p, st, (gssize)n, NULL);
    snprintf(p, sizeof p, "%s/config.json", dir);
    ok = ok && g_file_set_contents(p, cfg, (gssize)ncfg, NULL);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    ok = ok && g_file_set_contents(p, tok, (gssize)ntok, NULL);
out:
    json_decref(h);
    g_free(st);
    g_free(cfg);
    g_free(tok);
    return ok;
}

static int scan(int by_layer, struct qb_sens_result *r)
{
    struct qb_sens_opts o = QB_SENS_OPTS_INIT;
    o.model_path = dir;
    o.config = "w3g64";
    o.calib_path = CALIB;
    o.calib_sequences = 4;
    o.calib_seq_len = 128;
    o.by_layer = by_layer;
    int rc = qb_sens_scan(&o, r);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    return rc;
}

static void test_finds_fragile_tensor(void)
{
    struct qb_sens_result r;
    if (scan(0, &r) < 0) {
        CHECK(0);
        return;
    }
    CHECK(r.n_units == 4 * 7 + 2);
    CHECK(r.n_positions == 4 * 127);
    printf("  top: %s %.4f, then %s %.4f; whole config %.4f; top %d together %.4f vs %.4f\n",
           r.units[0].name, r.units[0].kl, r.units[1].name, r.units[1].kl, r.config_kl, r.topk,
           r.topk_measured_kl, r.topk_summed_kl);
    CHECK(strcmp(r.units[0].name, "L1.down") == 0);
    CHECK(r.units[0].kl > 2 * r.units[1].kl);
    for (int64_t i = 1; i < r.n_units; i++)
        CHECK(r.units[i].kl <= r.units[i - 1].kl);
    CHECK(r.units[0].extra_bytes > 0);
    CHECK(isnan(r.base_accuracy) && isnan(r.units[0].accuracy)); /* no suite */
    CHECK(r.topk == 3 && r.topk_measured_kl > 0 && r.topk_summed_kl > 0);
    /* candidates: canonical specs that keep the fragile unit, cheapest first */
    CHECK(r.n_candidates >= 1);
    for (int i = 0; i < r.n_candidates; i++) {
        struct qb_qspec sp;
        char back[QB_QSPEC_MAX];
        CHECK(qb_qspec_parse(r.candidates[i], &sp) == 0);
        qb_qspec_format(&sp, back, sizeof back);
        CHECK(strcmp(back, r.candidates[i]) == 0);
        printf("  candidate %s\n", r.candidates[i]);
        CHECK(qb_qspec_for_layer(&sp, 1, QB_TGT_DOWN)->fmt == QB_FMT_I8);
        CHECK(i == 0 || r.candidate_extra[i] > r.candidate_extra[i - 1]);
    }

    /* stored with its provenance, read back by rank */
    char db[600];
    struct qb_sens_opts o = QB_SENS_OPTS_INIT;
    int64_t id = 0;
    snprintf(db, sizeof db, "%s/sens.db", check_tmpdir());
    o.model_path = dir, o.config = "w3g64", o.calib_path = CALIB, o.run_name = "t";
    CHECK(qb_sens_store(&o, &r, db, &id) == 0 && id == 1);
    struct qb_store *s = NULL;
    CHECK(qb_store_open(db, QB_STORE_READONLY, &s) == 0); /* the schema is current */
    qb_store_close(s);
    qb_sens_result_release(&r);
}

struct readback {
    int scans, units;
    char first[24];
};

static int on_scan(void *ctx, const struct qb_store_sens_scan *s)
{
    struct readback *rb = ctx;
    rb->scans++;
    CHECK(strcmp(s->config, "w3g64") == 0 && strcmp(s->baseline, "f32") == 0);
    CHECK(strcmp(s->keep, "w8") == 0 && strcmp(s->granularity, "tensor") == 0);
    CHECK(strcmp(s->source, "calib") == 0 && strlen(s->source_sha256) == 64);
    CHECK(s->slice == NULL && s->n_positions == 4 * 127 && s->run_name &&
          !strcmp(s->run_name, "t"));
    CHECK(s->candidates_json && s->candidates_json[0] == '[');
    return 0;
}

static int on_unit(void *ctx, const struct qb_store_sens_unit *u)
{
    struct readback *rb = ctx;
    if (rb->units++ == 0)
        snprintf(rb->first, sizeof rb->first, "%s", u->unit);
    CHECK(u->rank == rb->units);
    return 0;
}

static void test_store_readback(void)
{
    char db[600];
    struct readback rb = {0};
    snprintf(db, sizeof db, "%s/sens.db", check_tmpdir());
    struct qb_store *s = NULL;
    CHECK(qb_store_open(db, QB_STORE_READONLY, &s) == 0);
    CHECK(qb_store_sens_latest(s, NULL, "t", on_scan, on_unit, &rb) == 0);
    CHECK(rb.scans == 1 && rb.units == 30 && strcmp(rb.first, "L1.down") == 0);
    /* another model's sha finds nothing */
    rb.scans = 0;
    CHECK(qb_store_sens_latest(s,
                               "0000000000000000000000000000000000000000000000000000000000000000",
                               NULL, on_scan, NULL, &rb) == 0 &&
          rb.scans == 0);
    qb_store_close(s);
}

static void test_finds_fragile_layer(void)
{
    struct qb_sens_result r;
    if (scan(1, &r) < 0) {
        CHECK(0);
        return;
    }
    CHECK(r.n_units == 4 + 2);
    CHECK(strcmp(r.units[0].name, "L1") == 0);
    printf("  top: %s %.4f, then %s %.4f\n", r.units[0].name, r.units[0].kl, r.units[1].name,
           r.units[1].kl);
    qb_sens_result_release(&r);
}

static void test_bad_inputs(void)
{
    struct qb_sens_opts o = QB_SENS_OPTS_INIT;
    struct qb_sens_result r;
    o.model_path = DEMO, o.config = "w4g128-gptq", o.calib_path = CALIB;
    CHECK(qb_sens_scan(&o, &r) == QB_EUNSUP);
    CHECK(strstr(qb_errmsg(), "calibrated configs") != NULL);
    o.config = "w4g128+L7.down=w8";
    CHECK(qb_sens_scan(&o, &r) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "names layer 7 but the model has 4 layers") != NULL);
    o.config = "w4g128", o.suite_path = "examples/demo/skills.csv";
    CHECK(qb_sens_scan(&o, &r) == QB_EINVAL); /* both a text and a suite */
    o.calib_path = NULL, o.slice = "no-such-slice";
    CHECK(qb_sens_scan(&o, &r) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "no item of slice 'no-such-slice'") != NULL);
}

int main(void)
{
    if (!g_file_test(DEMO "/model.safetensors", G_FILE_TEST_EXISTS) || !make_fragile()) {
        SKIP(test_finds_fragile_tensor, DEMO " is absent or unreadable (run from the root)");
        return check_summary();
    }
    RUN(test_finds_fragile_tensor);
    RUN(test_store_readback);
    RUN(test_finds_fragile_layer);
    RUN(test_bad_inputs);
    return check_summary();
}
