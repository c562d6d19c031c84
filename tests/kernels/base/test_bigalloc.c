/* test_bigalloc: qb_alloc_big gives buffers of the asked alignment that can be written end to
 * end and freed with free(), small (a plain aligned_alloc, any size, not only multiples of
 * the alignment) and large (2 MiB aligned, huge-page advice where the kernel has it). */
#include "kernels/base/bigalloc.h"
#include "tests/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_sizes(void)
{
    const size_t sizes[] = {
        1, 63, 64, 4097, QB_BIG_MIN - 1, QB_BIG_MIN, QB_BIG_MIN + 1, 3 * QB_BIG_MIN + 12345};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *p = qb_alloc_big(64, n);
        CHECK(p != NULL);
        if (!p)
            continue;
        CHECK((uintptr_t)p % 64 == 0);
        if (n >= QB_BIG_MIN) /* whole huge pages */
            CHECK((uintptr_t)p % ((size_t)2 << 20) == 0);
        memset(p, 0xa5, n); /* every byte is ours (ASan checks the bounds) */
        CHECK(p[0] == 0xa5 && p[n - 1] == 0xa5);
        free(p);
    }
}

static void test_too_large(void)
{
    CHECK(qb_alloc_big(64, SIZE_MAX - 16) == NULL); /* refused, no overflow of the padding */
}

int main(void)
{
    RUN(test_sizes);
    RUN(test_too_large);
    return check_summary();
}
