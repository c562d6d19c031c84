/* test_engine_vulkan_q: the engine on the Vulkan backend in the quantized configs, on
 * stories260K: the logits of a 37-token prefill (the tiled kernels) and of 5 single-token
 * steps (the matrix-vector kernels) against the CPU backend's with the reference kernels
 * (QB_ISA_MAX=ref: the kernels the device's are defined against), per config. Bounds, max
 * |logit gpu - cpu| (logits of stories260K reach about 15):
 *   weight-only configs (f32 activations): 2e-4, as f32 -- the same products, f32 sums in
 *     another order;
 *   configs with int8 or fp8 activations: 0.5 -- the device quantizes activations exactly as
 *     the CPU does, but their inputs come out of sums in another order, so now and then a
 *     value on a rounding boundary takes the neighbouring code (one step of max|x|/127) and
 *     the later layers carry that on. w8a8 is that sensitive on the CPU alone: its reference
 *     and AVX2 kernels differ by 0.16 in the prefill's logits (observed), the device by 0.23 from
 * the reference; the other a8 configs stay below 1e-5. Also checks that the argmax of every
 * position agrees. Runs with QB_VK_VALIDATION=1 and requires no validation error; skips, saying
 * why, without ../shared/models or without a Vulkan device. */
#include "collector/engine/engine.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "kernels/base/err.h"
#include "kernels/vulkan/backend_vulkan.h"
#include "kernels/vulkan/vk.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

#define BIN "models/stories260K/stories260K.bin"
#define TOK "models/stories260K/tok512.bin"

static struct qb_model *m;

static struct qb_engine *engine(const struct qb_qmodel *qm, qb_backend_new_fn be)
{
    struct qb_engine_opts o = {.max_ctx = 256, .backend = be};
    struct qb_engine *e = NULL;
    int rc = qb_engine_new_opts(qm, &o, &e);
    if (rc < 0)
        fprintf(stderr, "  engine: %s\n", qb_errmsg());
    CHECK(rc == 0);
    return e;
}

static void logits_vs_cpu(const char *spec_s, double bound)
{
    const int64_t n = 37, v = m->cfg.vocab_size;
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    struct qb_engine *g = NULL, *c = NULL;
    float *lg = malloc((size_t)(n * v) * sizeof *lg), *lc = malloc((size_t)(n * v) * sizeof *lc);
    int32_t ids[37];
    double worst = 0;
    int argmax_differs = 0;

    CHECK(qb_qspec_parse(spec_s, &spec) == 0 && qb_qmodel_new(m, &spec, &qm) == 0);
    if (qm) {
        g = engine(qm, qb_backend_vulkan_new);
        c = engine(qm, NULL);
    }
    if (!g || !c || !lg || !lc)
        goto out;
    for (int64_t i = 0; i < n; i++)
        ids[i] = (int32_t)((i * 37 + 11) % v);
    CHECK(qb_engine_forward(g, ids, n, lg) == 0 && qb_engine_forward(c, ids, n, lc) == 0);
    for (int s = 0; s < 6; s++) {
        int64_t rows = s == 0 ? n : 1;
        for (int64_t i = 0; i < rows * v; i++) {
            double d = fabs((double)lg[i] - lc[i]);
            worst = d > worst || d != d ? d : worst;
        }
        for (int64_t t = 0; t < rows; t++) {
            int64_t ag = 0, ac = 0;
            for (int64_t j = 1; j < v; j++) {
                ag = lg[t * v + j] > lg[t * v + ag] ? j : ag;
                ac = lc[t * v + j] > lc[t * v + ac] ? j : ac;
            }
            argmax_differs += ag != ac;
        }
        int32_t next = (int32_t)((s * 13 + 7) % v);
        CHECK(qb_engine_forward(g, &next, 1, lg) == 0 && qb_engine_forward(c, &next, 1, lc) == 0);
    }
    printf("# stories260K %-16s max |logit gpu - cpu| = %.3g (bound %.0e), argmax differs at %d "
           "of 42 positions\n",
           spec_s, worst, bound, argmax_differs);
    CHECK(worst <= bound);
    CHECK(argmax_differs == 0);
out:
    free(lg);
    free(lc);
    qb_engine_free(g);
    qb_engine_free(c);
    qb_qmodel_free(qm);
}

static void test_weight_only(void)
{
    static const char *const specs[] = {"w8",    "w4g32", "w4g128-sym", "w3g64",
                                        "w2g32", "fp8",   "fp8-e5m2",   "w4g64+embed=w8"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
        logits_vs_cpu(specs[i], 2e-4);
}

static void test_quantized_activations(void)
{
    static const char *const specs[] = {"w8a8", "w4g32-a8", "w4g128-sym-a8", "fp8-a8"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
        logits_vs_cpu(specs[i], 0.5);
}

static void test_no_validation_errors(void)
{
    CHECK(qb_vk_validation_errors() == 0);
}

int main(void)
{
    char tok[4096], why[512];
    struct qb_load_opts lo = {0};
    struct qb_vk_device_info dev[4];
    int nd = 0;

    setenv("QB_VK_VALIDATION", "1", 0);
    setenv("QB_ISA_MAX", "ref", 1);
    if (!qb_shared_path(BIN) || !qb_shared_path(TOK)) {
        check_skip("vulkan quantized engine tests", "../shared/models/stories260K not found");
        return check_summary();
    }
    if (qb_vulkan_devices(dev, 4, &nd) < 0 || nd == 0) {
        snprintf(why, sizeof why, "no Vulkan device: %s", qb_errmsg());
        check_skip("vulkan quantized engine tests", why);
        return check_summary();
    }
    snprintf(tok, sizeof tok, "%s", qb_shared_path(TOK));
    lo.tokenizer_path = tok;
    if (qb_model_load(qb_shared_path(BIN), &lo, &m) < 0) {
        fprintf(stderr, "%s\n", qb_errmsg());
        return 1;
    }
    printf("# device: %s (%s)\n", dev[0].name, dev[0].driver);
    RUN(test_weight_only);
    RUN(test_quantized_activations);
    RUN(test_no_validation_errors);
    qb_model_free(m);
    return check_summary();
}
