/* gguf_write: a minimal GGUF writer for tests only (header-only, static functions). It
 * writes what the GGUF specification and llama.cpp's gguf-py write: header, metadata,
 * tensor infos, padding to the alignment, then each tensor's data at an aligned offset.
 * It also carries ggml's reference Q8_0/Q4_0 quantizers (quantize_row_q*_0_ref), so tests can
 * produce quantized tensors the way llama.cpp does.
 *
 *     struct gw w;
 *     gw_init(&w, 3);
 *     gw_kv_str(&w, "general.architecture", "llama");
 *     gw_kv_u32(&w, "llama.embedding_length", 64);
 *     gw_tensor(&w, "output_norm.weight", GW_F32, 1, (int64_t[]){64}, data, 64 * 4);
 *     gw_save(&w, path);      // or gw_finish(&w, &buf, &len) for a malloc'd image
 *     gw_free(&w);
 *
 * Out of memory aborts: this is test code. */
#ifndef QB_TEST_GGUF_WRITE_H
#define QB_TEST_GGUF_WRITE_H

#include "kernels/half.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GW_F32 = 0, GW_F16 = 1, GW_Q4_0 = 2, GW_Q4_1 = 3, GW_Q8_0 = 8, GW_BF16 = 30 };

struct gw_buf {
    unsigned char *p;
    size_t len, cap;
};

struct gw {
    uint32_t version;
    size_t alignment; /* layout; gw_alignment also writes the key */
    uint64_t n_kv, n_tensors;
    struct gw_buf kv, ti, data;
};

static void gw_put(struct gw_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void gw_u32(struct gw_buf *b, uint32_t v)
{
    gw_put(b, &v, 4);
}
static void gw_u64(struct gw_buf *b, uint64_t v)
{
    gw_put(b, &v, 8);
}

static void gw_rawstr(struct gw_buf *b, const char *s, size_t len)
{
    gw_u64(b, len);
    gw_put(b, s, len);
}

static void gw_init(struct gw *w, uint32_t version)
{
    memset(w, 0, sizeof *w);
    w->version = version;
    w->alignment = 32;
}

static void gw_free(struct gw *w)
{
    free(w->kv.p);
    free(w->ti.p);
    free(w->data.p);
    memset(w, 0, sizeof *w);
}

/* Starts a key/value entry of the given value type; the caller appends the value. */
static struct gw_buf *gw_key(struct gw *w, const char *key, uint32_t type)
{
    gw_rawstr(&w->kv, key, strlen(key));
    gw_u32(&w->kv, type);
    w->n_kv++;
    return &w->kv;
}

static void gw_kv_u8(struct gw *w, const char *k, uint8_t v)
{
    gw_put(gw_key(w, k, 0), &v, 1);
}
static void gw_kv_i16(struct gw *w, const char *k, int16_t v)
{
    gw_put(gw_key(w, k, 3), &v, 2);
}
static void gw_kv_u32(struct gw *w, const char *k, uint32_t v)
{
    gw_put(gw_key(w, k, 4), &v, 4);
}
static void gw_kv_i32(struct gw *w, const char *k, int32_t v)
{
    gw_put(gw_key(w, k, 5), &v, 4);
}
static void gw_kv_f32(struct gw *w, const char *k, float v)
{
    gw_put(gw_key(w, k, 6), &v, 4);
}
static void gw_kv_bool(struct gw *w, const char *k, int v)
{
    uint8_t b = v != 0;
    gw_put(gw_key(w, k, 7), &b, 1);
}
static void gw_kv_u64(struct gw *w, const char *k, uint64_t v)
{
    gw_put(gw_key(w, k, 10), &v, 8);
}
static void gw_kv_i64(struct gw *w, const char *k, int64_t v)
{
    gw_put(gw_key(w, k, 11), &v, 8);
}
static void gw_kv_f64(struct gw *w, const char *k, double v)
{
    gw_put(gw_key(w, k, 12), &v, 8);
}

static void gw_kv_str(struct gw *w, const char *k, const char *s)
{
    gw_rawstr(gw_key(w, k, 8), s, strlen(s));
}

/* An array of n scalars of elem_type (esz bytes each) taken from data. */
static void gw_kv_arr(struct gw *w, const char *k, uint32_t elem_type, const void *data, uint64_t n,
                      size_t esz)
{
    struct gw_buf *b = gw_key(w, k, 9);
    gw_u32(b, elem_type);
    gw_u64(b, n);
    gw_put(b, data, (size_t)n * esz);
}

static void gw_kv_str_arr(struct gw *w, const char *k, const char *const *s, uint64_t n)
{
    struct gw_buf *b = gw_key(w, k, 9);
    gw_u32(b, 8);
    gw_u64(b, n);
    for (uint64_t i = 0; i < n; i++)
        gw_rawstr(b, s[i], strlen(s[i]));
}

/* Lays the data section out at this alignment and records it as general.alignment. */
static void gw_alignment(struct gw *w, uint32_t a)
{
    w->alignment = a;
    gw_kv_u32(w, "general.alignment", a);
}

static void gw_pad(struct gw_buf *b, size_t align)
{
    static const unsigned char zero[64];
    while (b->len % align)
        gw_put(b, zero, align - b->len % align > 64 ? 64 : align - b->len % align);
}

/* A tensor with ne innermost first (ne[0] = in_features) and nbytes of data. */
static void gw_tensor(struct gw *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                      const void *data, size_t nbytes)
{
    gw_pad(&w->data, w->alignment);
    gw_rawstr(&w->ti, name, strlen(name));
    gw_u32(&w->ti, (uint32_t)n_dims);
    for (int d = 0; d < n_dims; d++)
        gw_u64(&w->ti, (uint64_t)ne[d]);
    gw_u32(&w->ti, type);
    gw_u64(&w->ti, w->data.len);
    gw_put(&w->data, data, nbytes);
    w->n_tensors++;
}

/* The whole file as one malloc'd image. */
static void gw_finish(const struct gw *w, unsigned char **out, size_t *len)
{
    struct gw_buf b = {0};
    gw_put(&b, "GGUF", 4);
    gw_u32(&b, w->version);
    gw_u64(&b, w->n_tensors);
    gw_u64(&b, w->n_kv);
    gw_put(&b, w->kv.p, w->kv.len);
    gw_put(&b, w->ti.p, w->ti.len);
    if (w->n_tensors)
        gw_pad(&b, w->alignment);
    gw_put(&b, w->data.p, w->data.len);
    *out = b.p;
    *len = b.len;
}

static int gw_save(const struct gw *w, const char *path)
{
    unsigned char *p;
    size_t len;
    FILE *f;
    int ok;
    gw_finish(w, &p, &len);
    f = fopen(path, "wb");
    ok = f && fwrite(p, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = 0;
    free(p);
    return ok ? 0 : -1;
}

/* ggml quantize_row_q8_0_ref: 32 values -> f16 d, 32 int8; y = d * q. Also writes what
 * the block dequantizes to into deq (may be NULL). */
static void gw_quant_q8_0(const float *x, unsigned char *out, size_t n, float *deq)
{
    for (size_t b = 0; b < n / 32; b++, x += 32, out += 34) {
        float amax = 0, d, id;
        uint16_t dh;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        d = amax / 127;
        id = d ? 1.0f / d : 0.0f;
        dh = qb_f32_to_f16(d);
        memcpy(out, &dh, 2);
        for (int j = 0; j < 32; j++) {
            int8_t q = (int8_t)roundf(x[j] * id);
            out[2 + j] = (unsigned char)q;
            if (deq)
                *deq++ = qb_f16_to_f32(dh) * q;
        }
    }
}

/* ggml quantize_row_q4_0_ref: 32 values -> f16 d, 16 bytes of nibbles (low: 0..15, high:
 * 16..31); y = d * (q - 8), d = (value of largest magnitude) / -8. */
static void gw_quant_q4_0(const float *x, unsigned char *out, size_t n, float *deq)
{
    for (size_t b = 0; b < n / 32; b++, x += 32, out += 18) {
        float amax = 0, max = 0, d, id;
        uint16_t dh;
        int q[32];
        for (int j = 0; j < 32; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        d = max / -8;
        id = d ? 1.0f / d : 0.0f;
        dh = qb_f32_to_f16(d);
        memcpy(out, &dh, 2);
        for (int j = 0; j < 32; j++) {
            int v = (int8_t)(x[j] * id + 8.5f);
            q[j] = v < 15 ? v : 15;
        }
        for (int j = 0; j < 16; j++)
            out[2 + j] = (unsigned char)(q[j] | (q[16 + j] << 4));
        if (deq)
            for (int j = 0; j < 32; j++)
                *deq++ = qb_f16_to_f32(dh) * (float)(q[j] - 8);
    }
}

#endif
