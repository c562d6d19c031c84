/* vk_logits.h: what the engine tests on the Vulkan backend share (test_engine_vulkan.c for
 * the float formats, test_engine_vulkan_q.c for the quantized ones): the logits of one
 * config on the device against the CPU backend's, and the skip where no device exists.
 * Included by one test file each, so its functions are static. */
#ifndef QB_TEST_VK_LOGITS_H
#define QB_TEST_VK_LOGITS_H

#include "collector/engine/engine.h"
#include "kernels/base/err.h"
#include "kernels/vulkan/backend_vulkan.h"
#include "tests/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static struct qb_engine *vk_engine(const struct qb_qmodel *qm, int64_t max_ctx,
                                   qb_backend_new_fn be)
{
    struct qb_engine_opts o = {.max_ctx = max_ctx, .backend = be};
    struct qb_engine *e = NULL;
    int rc = qb_engine_new_opts(qm, &o, &e);
    if (rc < 0)
        fprintf(stderr, "  engine: %s\n", qb_errmsg());
    CHECK(rc == 0);
    return e;
}

/* How far the device's logits are from the CPU's in one config. */
struct vk_logits_diff {
    double worst;       /* max |logit gpu - cpu| (NaN where either is NaN) */
    int argmax_differs; /* positions whose argmax differs */
    int positions;      /* positions compared: the prefill's n, then 5 single steps */
};

/* Runs qm on the Vulkan backend and on the CPU's: an n-token prefill (the tiled kernels),
 * then 5 single-token steps (the matrix-vector kernels), and compares every position's
 * logits. gpu_check, when given, is shown the device engine afterwards. Returns 0 when both
 * engines ran every pass. */
static int vk_logits_vs_cpu(const struct qb_qmodel *qm, int64_t max_ctx, int64_t n,
                            void (*gpu_check)(struct qb_engine *g), struct vk_logits_diff *out)
{
    const int64_t v = qm->m->cfg.vocab_size;
    struct qb_engine *g = vk_engine(qm, max_ctx, qb_backend_vulkan_new);
    struct qb_engine *c = g ? vk_engine(qm, max_ctx, NULL) : NULL;
    float *lg = malloc((size_t)(n * v) * sizeof *lg), *lc = malloc((size_t)(n * v) * sizeof *lc);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    int rc = -1;

    *out = (struct vk_logits_diff){0};
    if (!g || !c || !lg || !lc || !ids)
        goto out;
    for (int64_t i = 0; i < n; i++)
        ids[i] = (int32_t)((i * 37 + 11) % v);
    if (qb_engine_forward(g, ids, n, lg) < 0 || qb_engine_forward(c, ids, n, lc) < 0)
        goto out;
    for (int s = 0; s < 6; s++) {
        int64_t rows = s == 0 ? n : 1;
        for (int64_t i = 0; i < rows * v; i++) {
            double d = fabs((double)lg[i] - lc[i]);
            out->worst = d > out->worst || d != d ? d : out->worst;
        }
        for (int64_t t = 0; t < rows; t++) {
            int64_t ag = 0, ac = 0;
            for (int64_t j = 1; j < v; j++) {
                ag = lg[t * v + j] > lg[t * v + ag] ? j : ag;
                ac = lc[t * v + j] > lc[t * v + ac] ? j : ac;
            }
            out->argmax_differs += ag != ac;
        }
        out->positions += (int)rows;
        if (s == 5)
            break;
        int32_t next = (int32_t)((s * 13 + 7) % v);
        if (qb_engine_forward(g, &next, 1, lg) < 0 || qb_engine_forward(c, &next, 1, lc) < 0)
            goto out;
    }
    if (gpu_check)
        gpu_check(g);
    rc = 0;
out:
    if (rc < 0 && g && c)
        fprintf(stderr, "  forward: %s\n", qb_errmsg());
    free(lg);
    free(lc);
    free(ids);
    qb_engine_free(g);
    qb_engine_free(c);
    return rc;
}

/* 1 where a Vulkan device exists (its name printed); else skips `what`, saying why, and 0. */
static int vk_device_or_skip(const char *what)
{
    struct qb_vk_device_info dev[4];
    char why[512];
    int nd = 0;

    if (qb_vulkan_devices(dev, 4, &nd) < 0 || nd == 0) {
        snprintf(why, sizeof why, "no Vulkan device: %s", qb_errmsg());
        check_skip(what, why);
        return 0;
    }
    printf("# device: %s (%s)\n", dev[0].name, dev[0].driver);
    return 1;
}

#endif
