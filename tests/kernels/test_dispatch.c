/* test_matmul: choosing and forcing the instruction set (the kernels themselves are tested
 * in test_qmatmul_float.c and test_qmatmul_int.c). */
#include "kernels/base/err.h"
#include "kernels/dispatch.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

/* Forcing a path sticks; one the CPU lacks is refused and leaves the choice alone. */
static void test_forcing_each_isa(void)
{
    static const char *isas[] = {"ref", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const char *before = qb_kernels()->isa;
        int rc = qb_kernels_init(isas[i]);
        if (rc == 0)
            CHECK(!strcmp(qb_kernels()->isa, isas[i]));
        else
            CHECK(rc == QB_EUNSUP && !strcmp(qb_kernels()->isa, before));
    }
    CHECK(qb_kernels_init(NULL) == 0);
}

static void test_unknown_isa(void)
{
    CHECK(qb_kernels_init("sse9") == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "sse9") != NULL);
    CHECK(qb_kernels() != NULL);
}

int main(void)
{
    RUN(test_forcing_each_isa);
    RUN(test_unknown_isa);
    return check_summary();
}
