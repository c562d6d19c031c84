/* backend_cpu: the CPU implementation of the engine's backend interface (kernels/backend.h):
 * host memory, OpenMP threads, the matmul kernels of kernels/qmatmul.h and the attention
 * kernel of kernels/attend.h in the variant for qb_kernels()->isa, chosen once here.
 *
 *     struct qb_backend be;
 *     if ((rc = qb_backend_cpu_new(&shape, &be)) < 0) ...;
 *     ... be.ops->matmul(be.ctx, y, x, n, w) ...
 *     be.ops->free(be.ctx);
 *
 * Weights are borrowed, not copied (kernels/backend.h, Ownership): a tensor given to
 * weight_new must outlive its handle. Results are those of the f32 reference forward the
 * engine had before this interface, to the bit. */
#ifndef QB_BACKEND_CPU_H
#define QB_BACKEND_CPU_H

#include "kernels/backend.h"

/* A CPU backend for shape; its KV cache is allocated here (cache_layers * max_ctx *
 * n_kv_heads * head_dim floats, twice). QB_EINVAL for a shape that makes no sense,
 * QB_ENOMEM when the cache does not fit. */
int qb_backend_cpu_new(const struct qb_backend_shape *shape, struct qb_backend *out);

#endif
