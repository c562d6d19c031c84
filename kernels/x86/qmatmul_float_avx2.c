/* qmatmul_float_avx2: SIMD kernels (placeholder until written). */
#include "kernels/qmatmul.h"

void qb_qkern_register_float_avx2(struct qb_qkern_table *t)
{
    (void)t;
}
