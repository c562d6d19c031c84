/* bigalloc: huge-page backed large buffers (see bigalloc.h). */
#include "kernels/base/bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *qb_alloc_big(size_t align, size_t bytes)
{
    void *p;
    size_t padded;
    if (bytes < QB_BIG_MIN) /* aligned_alloc wants a multiple of the alignment */
        return aligned_alloc(align, (bytes + align - 1) / align * align);
    if (bytes > SIZE_MAX - HUGE_PAGE)
        return NULL;
    padded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (!(p = aligned_alloc(HUGE_PAGE, padded)))
        return NULL;
#ifdef MADV_HUGEPAGE
    /* advice only: without transparent huge pages the buffer is simply 4 KiB pages */
    (void)madvise(p, padded, MADV_HUGEPAGE);
#endif
    return p;
}
