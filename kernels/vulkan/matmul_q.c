/* matmul_q: placeholder until the quantized kernels land (see matmul_q.h): every quantized
 * format is refused with QB_EUNSUP, so a quantized config fails cleanly on the Vulkan
 * backend instead of running wrong. */
#include "kernels/vulkan/matmul_q.h"

#include "kernels/base/err.h"

int qb_vkq_weight_new(struct qb_vk *vk, const struct qb_qtensor *t, enum qb_act act,
                      struct qb_vkq_weight **out)
{
    (void)vk;
    (void)act;
    *out = NULL;
    return qb_err(QB_EUNSUP, "vulkan: no kernel yet for %s weights", qb_fmt_name(t->fmt));
}

void qb_vkq_weight_free(struct qb_vk *vk, struct qb_vkq_weight *w)
{
    (void)vk;
    (void)w;
}

int qb_vkq_matmul(struct qb_vk *vk, struct qb_vk_buf *y, const struct qb_vk_buf *x, int64_t n,
                  const struct qb_vkq_weight *w)
{
    (void)vk;
    (void)y;
    (void)x;
    (void)n;
    (void)w;
    return qb_err(QB_EUNSUP, "vulkan: no quantized matmul yet");
}

int qb_vkq_embed(struct qb_vk *vk, const struct qb_vkq_weight *table, struct qb_vk_range tok,
                 int64_t n, struct qb_vk_buf *x)
{
    (void)vk;
    (void)table;
    (void)tok;
    (void)n;
    (void)x;
    return qb_err(QB_EUNSUP, "vulkan: no quantized embedding yet");
}

int64_t qb_vkq_weight_bytes(const struct qb_vkq_weight *w)
{
    (void)w;
    return 0;
}
