/* bandwidth: the best of several ways to stream a buffer (see bandwidth.h). Each way sums
 * its share of the buffer into a value the caller keeps, so no load can be dropped. */
#include "kernels/bandwidth.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef uint64_t (*reader_fn)(const uint64_t *p, size_t n); /* n: multiple of 32 words */

static uint64_t read_scalar(const uint64_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint64_t *p, size_t n)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 16) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(p + i + 4)));
        c = _mm256_add_epi64(c, _mm256_load_si256((const __m256i *)(p + i + 8)));
        d = _mm256_add_epi64(d, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) + (uint64_t)_mm256_extract_epi64(a, 1) +
           (uint64_t)_mm256_extract_epi64(a, 2) + (uint64_t)_mm256_extract_epi64(a, 3);
}

__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint64_t *p, size_t n)
{
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 32) {
        a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 8));
        c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 16));
        d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 24));
    }
    return (uint64_t)_mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

__attribute__((target("avx512f"))) static uint64_t read_avx512_nt(const uint64_t *p, size_t n)
{
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 32) {
        a = _mm512_add_epi64(a, _mm512_stream_load_si512((void *)(uintptr_t)(p + i)));
        b = _mm512_add_epi64(b, _mm512_stream_load_si512((void *)(uintptr_t)(p + i + 8)));
        c = _mm512_add_epi64(c, _mm512_stream_load_si512((void *)(uintptr_t)(p + i + 16)));
        d = _mm512_add_epi64(d, _mm512_stream_load_si512((void *)(uintptr_t)(p + i + 24)));
    }
    return (uint64_t)_mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One pass of fn over the buffer on `threads` threads, each its own contiguous share. */
static double pass_gb_s(reader_fn fn, const uint64_t *buf, size_t n, int threads)
{
    uint64_t s = 0;
    double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : s)
    {
        int k = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t per = n / (size_t)nt / 32 * 32, lo = (size_t)k * per;
        s += fn(buf + lo, k == nt - 1 ? n - lo : per);
    }
    double dt = now_s() - t0;
    __asm__ volatile("" : : "r"(s));
    return dt > 0 ? (double)(n * sizeof *buf) / dt / 1e9 : 0;
}

void qb_read_bandwidth(size_t bytes, int reps, struct qb_bw *out)
{
    static const char *const names[4] = {"scalar", "avx2", "avx512", "avx512-nt"};
    const reader_fn fns[4] = {read_scalar, read_avx2, read_avx512, read_avx512_nt};
    size_t n = bytes / 256 * 32; /* whole 256-byte steps, in 8-byte words */
    uint64_t *buf = n ? aligned_alloc(64, n * sizeof *buf) : NULL;
    int max_threads = omp_get_max_threads();

    *out = (struct qb_bw){0, "none", 0};
    if (!buf)
        return;
    __builtin_cpu_init();
    int have[4] = {1, __builtin_cpu_supports("avx2"), __builtin_cpu_supports("avx512f"),
                   __builtin_cpu_supports("avx512f")};
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    for (int ti = 0; ti < 2; ti++) {
        int threads = ti == 0 ? max_threads : 1;
        if (ti == 1 && max_threads == 1)
            break;
        for (int w = 0; w < 4; w++)
            for (int r = 0; r < reps && have[w]; r++) {
                double g = pass_gb_s(fns[w], buf, n, threads);
                if (g > out->gb_s)
                    *out = (struct qb_bw){g, names[w], threads};
            }
    }
    free(buf);
}
