/* bigalloc: memory for large buffers (model tensors, quantized weights) backed by transparent
 * huge pages where the kernel offers them (madvise mode), freed with free().
 *
 *     float *w = qb_alloc_big(64, n * sizeof *w);     // like aligned_alloc(64, ...)
 *     ...
 *     free(w);
 *
 * Every first touch of a 4 KiB page is a fault; a model of a few GiB written once takes
 * about a million of them, which under virtualization cost seconds of system time per GiB.
 * A 2 MiB page takes one fault for 512 of them. Buffers of QB_BIG_MIN bytes or more are
 * aligned to 2 MiB, padded to whole huge pages and marked MADV_HUGEPAGE; smaller ones are a
 * plain aligned_alloc. The contents are never touched here. */
#ifndef QB_BIGALLOC_H
#define QB_BIGALLOC_H

#include <stddef.h>

#define QB_BIG_MIN ((size_t)8 << 20)

/* align: a power of two, at most 2 MiB; NULL when out of memory (no message set). */
void *qb_alloc_big(size_t align, size_t bytes);

#endif
