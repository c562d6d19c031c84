/* gguf_write: the GGUF v3 writer (see gguf_write.h). The layout is the one gguf.c reads:
 * header, metadata, tensor infos, padding to the alignment, then the data section with every
 * tensor at a multiple of the alignment. */
#include "collector/model/gguf_write.h"

#include "kernels/base/err.h"
#include "kernels/dequant.h"
#include "collector/model/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf_write writes little-endian numbers with memcpy; port the stores for big-endian hosts"
#endif

#define ALIGNMENT 32

struct buf {
    unsigned char *p;
    size_t n, cap;
};

struct wtensor {
    char *name;
    uint32_t type;
    int n_dims;
    int64_t ne[4];
    const void *data;
    size_t size;
    int owned;
    uint64_t offset;
};

struct qb_gguf_writer {
    struct buf kv; /* serialized metadata */
    int64_t n_kv;
    char **keys;
    struct wtensor *t;
    int64_t n_t, cap_t;
    int has_alignment;
};

static int buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q)
            return qb_err(QB_ENOMEM, "gguf writer: out of memory");
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

static int put_u32(struct buf *b, uint32_t v)
{
    return buf_put(b, &v, 4);
}

static int put_u64(struct buf *b, uint64_t v)
{
    return buf_put(b, &v, 8);
}

static int put_string(struct buf *b, const char *s, size_t len)
{
    int rc = put_u64(b, len);
    return rc < 0 ? rc : buf_put(b, s, len);
}

int qb_gguf_writer_new(struct qb_gguf_writer **out)
{
    if (!(*out = calloc(1, sizeof **out)))
        return qb_err(QB_ENOMEM, "gguf writer: out of memory");
    return 0;
}

void qb_gguf_writer_free(struct qb_gguf_writer *w)
{
    if (!w)
        return;
    for (int64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    for (int64_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (w->t[i].owned) {
            void *p;
            memcpy(&p, &w->t[i].data, sizeof p); /* the writer's own buffer, handed in const */
            free(p);
        }
    }
    free(w->keys);
    free(w->t);
    free(w->kv.p);
    free(w);
}

/* Starts one metadata entry: the key (unique) and the value type. */
static int begin_kv(struct qb_gguf_writer *w, const char *key, enum qb_gguf_type type)
{
    char **keys;
    int rc;
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return qb_err(QB_EINVAL, "gguf writer: metadata key '%s' written twice", key);
    if (!(keys = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *keys)))
        return qb_err(QB_ENOMEM, "gguf writer: out of memory");
    w->keys = keys;
    if (!(keys[w->n_kv] = strdup(key)))
        return qb_err(QB_ENOMEM, "gguf writer: out of memory");
    w->n_kv++;
    if (!strcmp(key, "general.alignment"))
        w->has_alignment = 1;
    if ((rc = put_string(&w->kv, key, strlen(key))) < 0)
        return rc;
    return put_u32(&w->kv, (uint32_t)type);
}

int qb_gguf_put_str(struct qb_gguf_writer *w, const char *key, const char *s)
{
    int rc = begin_kv(w, key, QB_GGUF_STR);
    return rc < 0 ? rc : put_string(&w->kv, s, strlen(s));
}

int qb_gguf_put_u32(struct qb_gguf_writer *w, const char *key, uint32_t v)
{
    int rc = begin_kv(w, key, QB_GGUF_U32);
    return rc < 0 ? rc : put_u32(&w->kv, v);
}

int qb_gguf_put_i32(struct qb_gguf_writer *w, const char *key, int32_t v)
{
    int rc = begin_kv(w, key, QB_GGUF_I32);
    return rc < 0 ? rc : buf_put(&w->kv, &v, 4);
}

int qb_gguf_put_f32(struct qb_gguf_writer *w, const char *key, float v)
{
    int rc = begin_kv(w, key, QB_GGUF_F32);
    return rc < 0 ? rc : buf_put(&w->kv, &v, 4);
}

int qb_gguf_put_bool(struct qb_gguf_writer *w, const char *key, int v)
{
    unsigned char b = v != 0;
    int rc = begin_kv(w, key, QB_GGUF_BOOL);
    return rc < 0 ? rc : buf_put(&w->kv, &b, 1);
}

static int begin_arr(struct qb_gguf_writer *w, const char *key, enum qb_gguf_type elem, int64_t n)
{
    int rc;
    if (n < 0)
        return qb_err(QB_EINVAL, "gguf writer: array '%s' of %lld elements", key, (long long)n);
    if ((rc = begin_kv(w, key, QB_GGUF_ARR)) < 0 || (rc = put_u32(&w->kv, (uint32_t)elem)) < 0)
        return rc;
    return put_u64(&w->kv, (uint64_t)n);
}

int qb_gguf_put_str_arr(struct qb_gguf_writer *w, const char *key, const char *const *s,
                        const size_t *lens, int64_t n)
{
    int rc = begin_arr(w, key, QB_GGUF_STR, n);
    for (int64_t i = 0; rc >= 0 && i < n; i++)
        rc = put_string(&w->kv, s[i], lens ? lens[i] : strlen(s[i]));
    return rc;
}

int qb_gguf_put_f32_arr(struct qb_gguf_writer *w, const char *key, const float *v, int64_t n)
{
    int rc = begin_arr(w, key, QB_GGUF_F32, n);
    return rc < 0 ? rc : buf_put(&w->kv, v, (size_t)n * 4);
}

int qb_gguf_put_i32_arr(struct qb_gguf_writer *w, const char *key, const int32_t *v, int64_t n)
{
    int rc = begin_arr(w, key, QB_GGUF_I32, n);
    return rc < 0 ? rc : buf_put(&w->kv, v, (size_t)n * 4);
}

/* Bytes of n elements of a ggml type this writer knows; 0 when unknown or not whole blocks. */
static size_t type_bytes(uint32_t type, int64_t n)
{
    switch (type) {
    case QB_GGML_F32: return (size_t)n * 4;
    case QB_GGML_F16:
    case QB_GGML_BF16: return (size_t)n * 2;
    case QB_GGML_Q4_0: return n % 32 ? 0 : (size_t)(n / 32) * sizeof(struct qb_block_q4_0);
    case QB_GGML_Q4_1: return n % 32 ? 0 : (size_t)(n / 32) * sizeof(struct qb_block_q4_1);
    case QB_GGML_Q8_0: return n % 32 ? 0 : (size_t)(n / 32) * sizeof(struct qb_block_q8_0);
    default: return 0;
    }
}

int qb_gguf_put_tensor(struct qb_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                       const int64_t *ne, const void *data, size_t size, int owned)
{
    struct wtensor *t;
    int64_t n = 1;

    if (n_dims < 1 || n_dims > 4)
        return qb_err(QB_EINVAL, "gguf writer: tensor '%s' has %d dimensions", name, n_dims);
    for (int d = 0; d < n_dims; d++)
        n *= ne[d];
    if (!type_bytes(type, ne[0]) || type_bytes(type, n) != size)
        return qb_err(QB_EINVAL, "gguf writer: tensor '%s': %zu bytes do not hold %lld %s values",
                      name, size, (long long)n,
                      qb_gguf_ggml_type_name(type) ? qb_gguf_ggml_type_name(type) : "?");
    for (int64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return qb_err(QB_EINVAL, "gguf writer: tensor '%s' written twice", name);
    if (w->n_t == w->cap_t) {
        int64_t cap = w->cap_t ? 2 * w->cap_t : 64;
        struct wtensor *p = realloc(w->t, (size_t)cap * sizeof *p);
        if (!p)
            return qb_err(QB_ENOMEM, "gguf writer: out of memory");
        w->t = p;
        w->cap_t = cap;
    }
    t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return qb_err(QB_ENOMEM, "gguf writer: out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->size = size;
    t->owned = owned;
    w->n_t++;
    return 0;
}

static size_t pad_to(size_t n)
{
    return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
}

/* Header, metadata and tensor infos (offsets assigned here). */
static int build_head(struct qb_gguf_writer *w, struct buf *h)
{
    uint64_t off = 0;
    int rc;
    if (!w->has_alignment && (rc = qb_gguf_put_u32(w, "general.alignment", ALIGNMENT)) < 0)
        return rc;
    if ((rc = buf_put(h, "GGUF", 4)) < 0 || (rc = put_u32(h, 3)) < 0 ||
        (rc = put_u64(h, (uint64_t)w->n_t)) < 0 || (rc = put_u64(h, (uint64_t)w->n_kv)) < 0 ||
        (rc = buf_put(h, w->kv.p, w->kv.n)) < 0)
        return rc;
    for (int64_t i = 0; i < w->n_t; i++) {
        struct wtensor *t = &w->t[i];
        t->offset = off;
        if ((rc = put_string(h, t->name, strlen(t->name))) < 0 ||
            (rc = put_u32(h, (uint32_t)t->n_dims)) < 0)
            return rc;
        for (int d = 0; d < t->n_dims; d++)
            if ((rc = put_u64(h, (uint64_t)t->ne[d])) < 0)
                return rc;
        if ((rc = put_u32(h, t->type)) < 0 || (rc = put_u64(h, off)) < 0)
            return rc;
        off = pad_to(off + t->size);
    }
    return 0;
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

int qb_gguf_writer_write(struct qb_gguf_writer *w, const char *path)
{
    static const unsigned char zeros[ALIGNMENT];
    struct buf h = {0};
    char *tmp = NULL;
    FILE *f = NULL;
    size_t pos;
    int rc, bad = 0;

    if ((rc = build_head(w, &h)) < 0)
        goto out;
    if (!(tmp = malloc(strlen(path) + 5))) {
        rc = qb_err(QB_ENOMEM, "gguf writer: out of memory");
        goto out;
    }
    sprintf(tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "wb"))) {
        rc = qb_err(QB_EIO, "'%s': cannot create: %m", tmp);
        goto out;
    }
    bad |= write_all(f, h.p, h.n);
    pos = pad_to(h.n);
    bad |= write_all(f, zeros, pos - h.n);
    for (int64_t i = 0; i < w->n_t && !bad; i++) {
        const struct wtensor *t = &w->t[i];
        bad |= write_all(f, t->data, t->size);
        if (i + 1 < w->n_t)
            bad |= write_all(f, zeros, pad_to(t->size) - t->size);
    }
    bad |= fclose(f) != 0;
    f = NULL;
    if (bad) {
        rc = qb_err(QB_EIO, "'%s': write failed (disk full?)", tmp);
        remove(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = qb_err(QB_EIO, "'%s': cannot rename to '%s': %m", tmp, path);
        remove(tmp);
    }
out:
    if (f)
        fclose(f);
    free(tmp);
    free(h.p);
    return rc;
}
