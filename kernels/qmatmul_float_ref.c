/* qmatmul_float_ref: scalar reference kernels (placeholder until written). */
#include "kernels/qmatmul.h"

void qb_qkern_register_float_ref(struct qb_qkern_table *t)
{
    (void)t;
}
