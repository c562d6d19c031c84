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
#include "tests/collector/engine/vk_logits.h"

#include <stdlib.h>
#include <string.h>

#define BIN "models/stories260K/stories260K.bin"
#define TOK "models/stories260K/tok512.bin"

static struct qb_model *m;

static void logits_vs_cpu(const char *spec_s, double bound)
{
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    struct vk_logits_diff d;

    CHECK(qb_qspec_parse(spec_s, &spec) == 0 && qb_qmodel_new(m, &spec, &qm) == 0);
    if (qm) {
        CHECK(vk_logits_vs_cpu(qm, 256, 37, NULL, &d) == 0);
        printf("# stories260K %-16s max |logit gpu - cpu| = %.3g (bound %.0e), argmax differs "
               "at %d of %d positions\n",
               spec_s, d.worst, bound, d.argmax_differs, d.positions);
        CHECK(d.worst <= bound);
        CHECK(d.argmax_differs == 0);
    }
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
    char tok[4096];
    struct qb_load_opts lo = {0};

    setenv("QB_VK_VALIDATION", "1", 0);
    setenv("QB_ISA_MAX", "ref", 1);
    if (!qb_shared_path(BIN) || !qb_shared_path(TOK)) {
        check_skip("vulkan quantized engine tests", "../shared/models/stories260K not found");
        return check_summary();
    }
    if (!vk_device_or_skip("vulkan quantized engine tests"))
        return check_summary();
    snprintf(tok, sizeof tok, "%s", qb_shared_path(TOK));
    lo.tokenizer_path = tok;
    if (qb_model_load(qb_shared_path(BIN), &lo, &m) < 0) {
        fprintf(stderr, "%s\n", qb_errmsg());
        return 1;
    }
    RUN(test_weight_only);
    RUN(test_quantized_activations);
    RUN(test_no_validation_errors);
    qb_model_free(m);
    return check_summary();
}
