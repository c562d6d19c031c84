/* matmul_q: the quantized formats on the Vulkan device -- I8, I4, I3, I2 (sym/asym, groups of
 * 32/64/128), E4M3 and E5M2 with a per-row scale -- with f32, int8 or fp8 activations as
 * qb_qmatmul_supported allows (kernels/qmatmul.h). The Vulkan backend (backend_vulkan.c)
 * keeps F32/F16/BF16 itself and hands every other format to these functions; each follows
 * the CPU's _ref kernels (kernels/qmatmul_int_ref.c, qmatmul_float_ref.c).
 *
 * Buffers are those of kernels/vulkan/vk.h. Activations (x, y) are one chunk each, f32, rows
 * of tokens: x (n, in_cols), y (n, rows), row t at t * width floats. A weight may be split in
 * row chunks (qb_vk_buf units = packed rows); a kernel dispatches once per chunk. */
#ifndef QB_VK_MATMUL_Q_H
#define QB_VK_MATMUL_Q_H

#include "kernels/qtensor.h"
#include "kernels/vulkan/vk.h"

#include <stdint.h>

struct qb_vkq_weight; /* a quantized weight on the device, owned by the caller */

/* Uploads t (any format but F32/F16/BF16) for matmuls with activations act (or, for an
 * embedding table, for qb_vkq_embed). QB_EUNSUP for a format/activation pair there is no
 * kernel for; QB_ENOMEM naming what did not fit. */
int qb_vkq_weight_new(struct qb_vk *vk, const struct qb_qtensor *t, enum qb_act act,
                      struct qb_vkq_weight **out);
void qb_vkq_weight_free(struct qb_vk *vk, struct qb_vkq_weight *w); /* NULL: no-op */

/* Records y (n, w rows) = x (n, w in_cols) . W^T in w's format and activation mode. */
int qb_vkq_matmul(struct qb_vk *vk, struct qb_vk_buf *y, const struct qb_vk_buf *x, int64_t n,
                  const struct qb_vkq_weight *w);
/* Records x (n, in_cols) = rows tok[0..n) of the table, dequantized (exactly in_cols floats
 * per token); tok is n int32 ids on the device (a qb_vk_arena range), each in [0, rows). */
int qb_vkq_embed(struct qb_vk *vk, const struct qb_vkq_weight *table, struct qb_vk_range tok,
                 int64_t n, struct qb_vk_buf *x);
/* Whether matmuls with activations act use integer dot-product instructions here: int8
 * activations on a device with shaderIntegerDotProduct, unless QB_VK_NO_INTDOT=1. */
int qb_vkq_int_dot(const struct qb_vk *vk, enum qb_act act);
/* Bytes the weight holds on the device (codes, headers, scales, sums). */
int64_t qb_vkq_weight_bytes(const struct qb_vkq_weight *w);

#endif
