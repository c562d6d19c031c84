/* test_qspec_layers: per-layer overrides in the config grammar (qspec.h): they print back in
 * one canonical form and round-trip, layer overrides beat the others, bad ones (overlaps,
 * unknown tensors, reversed ranges, a layer beyond the model) are refused with the valid
 * forms, and qmodel applies them: on the demo model each matrix gets the precision its layer
 * names and the bytes are exactly those of the matrices changed. Run from the repository
 * root (the demo model is examples/demo/qbrief-demo). */
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <string.h>

#define N_OF(a) (int)(sizeof(a) / sizeof *(a))
#define DEMO "examples/demo/qbrief-demo"

static int canon_is(const char *in, const char *want)
{
    struct qb_qspec q, r;
    char a[QB_QSPEC_MAX], b[QB_QSPEC_MAX];
    if (qb_qspec_parse(in, &q) < 0) {
        fprintf(stderr, "  '%s': %s\n", in, qb_errmsg());
        return 0;
    }
    qb_qspec_format(&q, a, sizeof a);
    if (strcmp(a, want)) {
        fprintf(stderr, "  '%s' printed as '%s', wanted '%s'\n", in, a, want);
        return 0;
    }
    /* round trip: the canonical name parses to the same struct and prints the same */
    if (qb_qspec_parse(a, &r) < 0 || memcmp(&q, &r, sizeof q) != 0) {
        fprintf(stderr, "  '%s' does not round-trip\n", a);
        return 0;
    }
    qb_qspec_format(&r, b, sizeof b);
    return strcmp(a, b) == 0;
}

static void test_canonical(void)
{
    static const char *const ex[][2] = {
        {"w4g128+L0-1=w8", "w4g128+L0-1=w8"},
        {"w4g128+L5.down=bf16", "w4g128+L5.down=bf16"},
        {"w3g64+L*.v=w8", "w3g64+v=w8"},
        {"w4g128+L*=w8", "w4g128+L*=w8"},
        {"w3g64+L1.down=w8+L0.down=w8", "w3g64+L0-1.down=w8"},
        {"w3g64+L2.q=w8+L2.k=w8+L2.v=w8+L2.o=w8", "w3g64+L2.attn=w8"},
        {"w3g64+L0.attn=w8+L0.ffn=w8", "w3g64+L0=w8"},
        {"w3g64+L0-1=w8+L2.down=w8", "w3g64+L0-1=w8+L2.down=w8"},
        {"w3g64+L0.down=w8+L1.down=bf16", "w3g64+L0.down=w8+L1.down=bf16"},
        {"w3g64+L3.down=w8+output=w8+L0-1=f16", "w3g64+output=w8+L0-1=f16+L3.down=w8"},
        {"w3g64+L2.up=w8+L0.v=w8+L1.up=w8", "w3g64+L0.v=w8+L1-2.up=w8"},
        {"w4g128-gptq+L1-1.gate=w8", "w4g128-gptq+L1.gate=w8"},
        {"w3g64+L4-5=w8+L0-3=w8", "w3g64+L0-5=w8"},
    };
    for (int i = 0; i < N_OF(ex); i++)
        CHECK(canon_is(ex[i][0], ex[i][1]));
}

static void test_precedence(void)
{
    struct qb_qspec q;
    CHECK(qb_qspec_parse("w4g128+L1=bf16+attn=w8+L2.down=f16+output=w8", &q) == 0);
    CHECK(qb_qspec_for_layer(&q, 1, QB_TGT_Q)->fmt == QB_FMT_BF16); /* layer beats plain */
    CHECK(qb_qspec_for_layer(&q, 1, QB_TGT_DOWN)->fmt == QB_FMT_BF16);
    CHECK(qb_qspec_for_layer(&q, 0, QB_TGT_Q)->fmt == QB_FMT_I8);
    CHECK(qb_qspec_for_layer(&q, 2, QB_TGT_DOWN)->fmt == QB_FMT_F16);
    CHECK(qb_qspec_for_layer(&q, 2, QB_TGT_UP)->fmt == QB_FMT_I4);
    CHECK(qb_qspec_for_layer(&q, 2, QB_TGT_K)->fmt == QB_FMT_I8);
    CHECK(qb_qspec_for(&q, QB_TGT_DOWN) == &q.base); /* layer overrides ignored there */
    CHECK(qb_qspec_for(&q, QB_TGT_OUTPUT)->fmt == QB_FMT_I8);
    CHECK(qb_qspec_max_layer(&q) == 2);
    CHECK(qb_qspec_parse("w4g128+L*=w8", &q) == 0);
    CHECK(qb_qspec_for(&q, QB_TGT_GATE)->fmt == QB_FMT_I8);
    CHECK(qb_qspec_for(&q, QB_TGT_EMBED) == &q.base);
    CHECK(qb_qspec_max_layer(&q) == -1);
}

static void expect_bad(const char *s, const char *needle)
{
    struct qb_qspec q;
    const char *msg;
    CHECK(qb_qspec_parse(s, &q) == QB_EINVAL);
    msg = qb_errmsg();
    if (!strstr(msg, s) || !strstr(msg, "valid forms are") || !strstr(msg, "+L0-1=w8") ||
        !strstr(msg, needle)) {
        fprintf(stderr, "  '%s': \"%s\" (wanted %s)\n", s, msg, needle);
        CHECK(0);
    }
}

static void test_bad(void)
{
    expect_bad("w4g128+L0-2=w8+L1.down=bf16", "'L0-2' and 'L1.down' overlap (layer 1 down)");
    expect_bad("w4g128+L3.attn=w8+L3.q=f16", "overlap (layer 3 q)");
    expect_bad("w4g128+L0.ffn=w8+L0.ffn=w8", "overlap");
    expect_bad("w4g128+L3-1=w8", "'L3-1' ends before it starts");
    expect_bad("w4g128+L0.foo=w8", "unknown tensor 'foo' in 'L0.foo'");
    expect_bad("w4g128+L0.output=w8", "'output' has no layers");
    expect_bad("w4g128+L*.embed=w8", "'embed' has no layers");
    expect_bad("w4g128+L999=w8", "beyond L255");
    expect_bad("w4g128+Lx=w8", "bad layers in 'Lx'");
    expect_bad("w4g128+L1-=w8", "bad layer range in 'L1-'");
    expect_bad("w4g128+L1:down=w8", "bad layers in 'L1:down'");
    expect_bad("w4g128+L*=w8+L*=f16", "override target 'L*' given twice");
    expect_bad("w4g128+L1.down=w8-gptq", "an override takes no method");
}

/* A layer the model lacks is refused when the model is known. */
static void test_check_layers(void)
{
    struct qb_qspec q;
    CHECK(qb_qspec_parse("w4g128+L5.down=bf16", &q) == 0);
    CHECK(qb_qspec_check_layers(&q, 6) == 0);
    CHECK(qb_qspec_check_layers(&q, 4) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "names layer 5 but the model has 4 layers (L0-3)") != NULL);
    CHECK(strstr(qb_errmsg(), "valid forms are") != NULL);
}

static size_t lin_bytes(const struct qb_qmodel *qm, int64_t l, int k)
{
    return qb_qtensor_bytes(&qm->lin[l * QB_LIN_COUNT + k].t);
}

/* qmodel applies the overrides: formats per matrix, and exact bytes. */
static struct qb_model *demo;

static void test_qmodel(void)
{
    struct qb_model *m = demo;
    struct qb_qspec s;
    struct qb_qmodel *lo = NULL, *hi = NULL, *mix = NULL;
    CHECK(qb_qspec_parse("w3g64", &s) == 0 && qb_qmodel_new(m, &s, &lo) == 0);
    CHECK(qb_qspec_parse("w8", &s) == 0 && qb_qmodel_new(m, &s, &hi) == 0);
    CHECK(qb_qspec_parse("w3g64+L1=w8+L3.down=w8", &s) == 0 && qb_qmodel_new(m, &s, &mix) == 0);
    if (!lo || !hi || !mix)
        goto out;
    size_t want = qb_qmodel_bytes(lo);
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < QB_LIN_COUNT; k++) {
            int up = l == 1 || (l == 3 && k == QB_LIN_DOWN);
            CHECK(mix->lin[l * QB_LIN_COUNT + k].t.fmt == (up ? QB_FMT_I8 : QB_FMT_I3));
            if (up)
                want += lin_bytes(hi, l, k) - lin_bytes(lo, l, k);
        }
    CHECK(qb_qmodel_bytes(mix) == want);
    CHECK(qb_qmodel_bpw(mix) > qb_qmodel_bpw(lo) && qb_qmodel_bpw(mix) < qb_qmodel_bpw(hi));
    printf("  w3g64 %.4f, w3g64+L1=w8+L3.down=w8 %.4f, w8 %.4f bits/weight; %zu bytes\n",
           qb_qmodel_bpw(lo), qb_qmodel_bpw(mix), qb_qmodel_bpw(hi), qb_qmodel_bytes(mix));

    /* a layer beyond the model */
    struct qb_qmodel *bad = NULL;
    CHECK(qb_qspec_parse("w3g64+L4.down=w8", &s) == 0);
    CHECK(qb_qmodel_new(m, &s, &bad) == QB_EINVAL && !bad);
    CHECK(strstr(qb_errmsg(), "names layer 4 but the model has 4 layers") != NULL);
out:
    qb_qmodel_free(lo);
    qb_qmodel_free(hi);
    qb_qmodel_free(mix);
}

int main(void)
{
    RUN(test_canonical);
    RUN(test_precedence);
    RUN(test_bad);
    RUN(test_check_layers);
    if (qb_model_load(DEMO, NULL, &demo) == 0)
        RUN(test_qmodel);
    else
        SKIP(test_qmodel, DEMO " does not load (run from the repository root)");
    qb_model_free(demo);
    return check_summary();
}
