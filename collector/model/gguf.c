/* gguf: the GGUF v2/v3 reader (see gguf.h). Its checks follow llama.cpp's gguf.cpp
 * (gguf_init_from_file_impl) and are stricter where that is cheap: every length and count is
 * compared with the bytes that remain before anything is read or allocated, every product
 * and sum is overflow-checked, and tensor data must lie inside the data section. */
#include "collector/model/gguf.h"

#include "kernels/base/err.h"
#include "kernels/base/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf reads little-endian numbers with memcpy; port the loads for big-endian hosts"
#endif

#define DEFAULT_ALIGNMENT 32
#define MAX_ALIGNMENT ((int64_t)1 << 30)
#define MAX_NAME 255        /* bytes in a tensor name (ggml itself stops at 63) */
#define MIN_KV_BYTES 13     /* empty key (8), type (4), a one-byte value */
#define MIN_TENSOR_BYTES 24 /* empty name (8), n_dims (4), type (4), offset (8) */
#define KEY_FMT_MAX 200     /* bytes of a key or name quoted in a message */

struct qb_gguf {
    char *path;        /* for messages */
    struct qb_map map; /* zeroed for qb_gguf_open_mem */
    const unsigned char *base;
    size_t size;
    uint32_t version;
    size_t alignment;
    size_t data_off; /* file offset of the data section */
    int64_t n_kv, n_tensors;
    struct qb_gguf_kv *kv;
    const struct qb_gguf_kv **kv_sorted; /* by key, for lookup */
    struct qb_gguf_tensor *t;
    const struct qb_gguf_tensor **t_sorted; /* by name */
    char *names;                            /* NUL-terminated tensor names, back to back */
};

/* Elements and bytes per block of every ggml type (ggml.c type_traits); blck 0 = unknown
 * (never assigned, or removed like Q4_2 and the Q4_0_4_4 repacks). */
static const struct {
    const char *name;
    uint32_t blck, size;
} ggml_types[] = {
    [0] = {"f32", 1, 4},         [1] = {"f16", 1, 2},         [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},      [6] = {"q5_0", 32, 22},      [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},      [9] = {"q8_1", 32, 36},      [10] = {"q2_K", 256, 84},
    [11] = {"q3_K", 256, 110},   [12] = {"q4_K", 256, 144},   [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210},   [15] = {"q8_K", 256, 292},   [16] = {"iq2_xxs", 256, 66},
    [17] = {"iq2_xs", 256, 74},  [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},   [21] = {"iq3_s", 256, 110},  [22] = {"iq2_s", 256, 82},
    [23] = {"iq4_xs", 256, 136}, [24] = {"i8", 1, 1},         [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},        [27] = {"i64", 1, 8},        [28] = {"f64", 1, 8},
    [29] = {"iq1_m", 256, 56},   [30] = {"bf16", 1, 2},       [34] = {"tq1_0", 256, 54},
    [35] = {"tq2_0", 256, 66},   [39] = {"mxfp4", 32, 17},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

static const char *const type_names[QB_GGUF_NTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

/* Bytes of one scalar value; 0 for strings and arrays. */
static const size_t scalar_size[QB_GGUF_NTYPES] = {
    [QB_GGUF_U8] = 1,  [QB_GGUF_I8] = 1,  [QB_GGUF_U16] = 2, [QB_GGUF_I16] = 2,
    [QB_GGUF_U32] = 4, [QB_GGUF_I32] = 4, [QB_GGUF_F32] = 4, [QB_GGUF_BOOL] = 1,
    [QB_GGUF_U64] = 8, [QB_GGUF_I64] = 8, [QB_GGUF_F64] = 8,
};

const char *qb_gguf_type_name(enum qb_gguf_type t)
{
    return (unsigned)t < QB_GGUF_NTYPES ? type_names[t] : "?";
}

const char *qb_gguf_ggml_type_name(uint32_t type)
{
    return type < N_GGML_TYPES ? ggml_types[type].name : NULL;
}

static int klen(size_t len)
{
    return len > KEY_FMT_MAX ? KEY_FMT_MAX : (int)len;
}

/* --- reading the header, bounds-checked --- */

struct rd {
    const unsigned char *base;
    size_t size, off;
    const char *path;
    char what[KEY_FMT_MAX + 64]; /* what is being read, for messages */
};

static size_t left(const struct rd *r)
{
    return r->size - r->off;
}

static int truncated(const struct rd *r)
{
    return qb_err(QB_EFORMAT, "'%s': file ends inside %s (at byte %zu)", r->path, r->what, r->off);
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    if (left(r) < 4)
        return truncated(r);
    memcpy(v, r->base + r->off, 4);
    r->off += 4;
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
    if (left(r) < 8)
        return truncated(r);
    memcpy(v, r->base + r->off, 8);
    r->off += 8;
    return 0;
}

static int rd_str(struct rd *r, const char **s, size_t *len)
{
    uint64_t n = 0;
    int rc;
    if ((rc = rd_u64(r, &n)) < 0)
        return rc;
    if (n > left(r))
        return qb_err(QB_EFORMAT, "'%s': string of %llu bytes in %s runs past the end of the file",
                      r->path, (unsigned long long)n, r->what);
    *s = (const char *)(r->base + r->off);
    *len = (size_t)n;
    r->off += (size_t)n;
    return 0;
}

/* Grows *arr (of elem-byte entries, *cap of them) to hold at least need, never beyond max. */
static int grow(void **arr, int64_t *cap, int64_t need, int64_t max, size_t elem, const char *path)
{
    int64_t ncap = *cap ? *cap : 64;
    void *p;
    size_t bytes;
    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    if (ncap > max)
        ncap = max;
    if (qb_mul_size((size_t)ncap, elem, &bytes) < 0 || !(p = realloc(*arr, bytes)))
        return qb_err(QB_ENOMEM, "'%s': out of memory for the GGUF header", path);
    *arr = p;
    *cap = ncap;
    return 0;
}

static int parse_kv(struct rd *r, int64_t idx, struct qb_gguf_kv *kv)
{
    uint32_t type = 0, elem = 0;
    uint64_t count = 0;
    size_t start;
    int rc;

    memset(kv, 0, sizeof *kv);
    snprintf(r->what, sizeof r->what, "the key of metadata entry %lld", (long long)idx);
    if ((rc = rd_str(r, &kv->key, &kv->key_len)) < 0)
        return rc;
    snprintf(r->what, sizeof r->what, "metadata '%.*s'", klen(kv->key_len), kv->key);
    if ((rc = rd_u32(r, &type)) < 0)
        return rc;
    if (type >= QB_GGUF_NTYPES)
        return qb_err(QB_EFORMAT, "'%s': metadata '%.*s' has unknown value type %u", r->path,
                      klen(kv->key_len), kv->key, type);
    kv->type = type;
    if (type == QB_GGUF_STR) {
        const char *s;
        if ((rc = rd_str(r, &s, &kv->val_size)) < 0)
            return rc;
        kv->val = (const unsigned char *)s;
        kv->n = (int64_t)kv->val_size;
        return 0;
    }
    if (type != QB_GGUF_ARR) {
        if (left(r) < scalar_size[type])
            return truncated(r);
        kv->val = r->base + r->off;
        kv->val_size = scalar_size[type];
        kv->n = 1;
        r->off += scalar_size[type];
        return 0;
    }
    if ((rc = rd_u32(r, &elem)) < 0 || (rc = rd_u64(r, &count)) < 0)
        return rc;
    if (elem >= QB_GGUF_NTYPES)
        return qb_err(QB_EFORMAT, "'%s': metadata '%.*s' is an array of unknown type %u", r->path,
                      klen(kv->key_len), kv->key, elem);
    if (elem == QB_GGUF_ARR)
        return qb_err(QB_EUNSUP,
                      "'%s': metadata '%.*s' is an array of arrays, which qbrief does not read",
                      r->path, klen(kv->key_len), kv->key);
    /* the cheapest element is 1 byte (8 for a string's length): refuse counts the rest of the
     * file cannot hold before walking them */
    if (count > left(r) / (elem == QB_GGUF_STR ? 8 : scalar_size[elem]))
        return qb_err(QB_EFORMAT,
                      "'%s': metadata '%.*s' claims %llu elements, more than the %zu bytes left in "
                      "the file can hold",
                      r->path, klen(kv->key_len), kv->key, (unsigned long long)count, left(r));
    kv->elem_type = elem;
    kv->n = (int64_t)count;
    kv->val = r->base + r->off;
    start = r->off;
    if (elem == QB_GGUF_STR) {
        for (uint64_t i = 0; i < count; i++) {
            const char *s;
            size_t len;
            if ((rc = rd_str(r, &s, &len)) < 0)
                return rc;
        }
    } else {
        r->off += (size_t)count * scalar_size[elem]; /* fits: checked above */
    }
    kv->val_size = r->off - start;
    return 0;
}

static int cmp_key(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int cmp_kv(const void *pa, const void *pb)
{
    const struct qb_gguf_kv *a = *(const struct qb_gguf_kv *const *)pa;
    const struct qb_gguf_kv *b = *(const struct qb_gguf_kv *const *)pb;
    return cmp_key(a->key, a->key_len, b->key, b->key_len);
}

static int cmp_tensor(const void *pa, const void *pb)
{
    const struct qb_gguf_tensor *a = *(const struct qb_gguf_tensor *const *)pa;
    const struct qb_gguf_tensor *b = *(const struct qb_gguf_tensor *const *)pb;
    return strcmp(a->name, b->name);
}

static int parse_tensor(struct rd *r, int64_t idx, struct qb_gguf_tensor *t, size_t *name_len)
{
    const char *name;
    uint32_t n_dims = 0, type = 0;
    uint64_t ne = 0, offset = 0;
    int rc;

    memset(t, 0, sizeof *t);
    snprintf(r->what, sizeof r->what, "the name of tensor %lld", (long long)idx);
    if ((rc = rd_str(r, &name, name_len)) < 0)
        return rc;
    if (*name_len > MAX_NAME)
        return qb_err(QB_EFORMAT, "'%s': tensor %lld has a name of %zu bytes (at most %d)", r->path,
                      (long long)idx, *name_len, MAX_NAME);
    if (memchr(name, 0, *name_len))
        return qb_err(QB_EFORMAT, "'%s': the name of tensor %lld contains a NUL byte", r->path,
                      (long long)idx);
    t->name = name; /* in the file for now; parse() copies it */
    snprintf(r->what, sizeof r->what, "the info of tensor '%.*s'", (int)*name_len, name);
    if ((rc = rd_u32(r, &n_dims)) < 0)
        return rc;
    if (n_dims > 4)
        return qb_err(QB_EFORMAT, "'%s': tensor '%.*s' has %u dimensions (at most 4)", r->path,
                      (int)*name_len, name, n_dims);
    t->n_dims = (int)n_dims;
    t->n_elements = 1;
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if ((rc = rd_u64(r, &ne)) < 0)
            return rc;
        if (ne > (uint64_t)INT64_MAX)
            return qb_err(QB_EFORMAT, "'%s': tensor '%.*s' has %llu elements in dimension %u",
                          r->path, (int)*name_len, name, (unsigned long long)ne, d);
        t->ne[d] = (int64_t)ne;
        if (__builtin_mul_overflow(t->n_elements, t->ne[d], &t->n_elements))
            return qb_err(QB_EFORMAT, "'%s': tensor '%.*s' has more elements than fit in 64 bits",
                          r->path, (int)*name_len, name);
    }
    if ((rc = rd_u32(r, &type)) < 0 || (rc = rd_u64(r, &offset)) < 0)
        return rc;
    t->type = type;
    t->offset = offset;
    return 0;
}

/* Bytes and bounds of one tensor, once the data section is known. */
static int place_tensor(const struct qb_gguf *g, struct qb_gguf_tensor *t)
{
    size_t data_size = g->size - g->data_off;
    uint32_t blck, tsz;

    if (t->offset % g->alignment)
        return qb_err(
            QB_EFORMAT,
            "'%s': tensor '%s' starts at offset %llu, not a multiple of the alignment %zu", g->path,
            t->name, (unsigned long long)t->offset, g->alignment);
    if (t->offset > data_size)
        return qb_err(QB_EFORMAT,
                      "'%s': tensor '%s' starts at offset %llu, past the end of the file (the data "
                      "section has %zu bytes)",
                      g->path, t->name, (unsigned long long)t->offset, data_size);
    if (t->type >= N_GGML_TYPES || !ggml_types[t->type].blck)
        return 0; /* unknown type: size unknown; an error only if someone needs the tensor */
    blck = ggml_types[t->type].blck;
    tsz = ggml_types[t->type].size;
    if (t->ne[0] % blck)
        return qb_err(
            QB_EFORMAT,
            "'%s': tensor '%s' of type %s has rows of %lld elements, not whole blocks of %u",
            g->path, t->name, ggml_types[t->type].name, (long long)t->ne[0], blck);
    /* ne[0] % blck == 0, so n_elements is whole blocks too */
    if (qb_mul_size((size_t)(t->n_elements / blck), tsz, &t->size) < 0)
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has more bytes than fit in 64 bits", g->path,
                      t->name);
    if (t->size > data_size - (size_t)t->offset)
        return qb_err(QB_EFORMAT,
                      "'%s': tensor '%s' (%zu bytes at offset %llu) ends past the end of the file",
                      g->path, t->name, t->size, (unsigned long long)t->offset);
    t->data = g->base + g->data_off + t->offset;
    return 0;
}

static int parse(struct qb_gguf *g)
{
    struct rd r = {.base = g->base, .size = g->size, .path = g->path};
    uint64_t n_tensors = 0, n_kv = 0;
    int64_t cap = 0, names_bytes = 0;
    size_t *name_len = NULL, pad;
    const struct qb_gguf_kv *align_kv;
    char *np;
    int rc;

    if (g->size < 4)
        return qb_err(QB_EFORMAT, "'%s': too short for a GGUF header (%zu bytes)", g->path,
                      g->size);
    if (memcmp(g->base, "GGUF", 4))
        return qb_err(QB_EFORMAT, "'%s': not a GGUF file (no 'GGUF' magic)", g->path);
    r.off = 4;
    snprintf(r.what, sizeof r.what, "the header");
    if ((rc = rd_u32(&r, &g->version)) < 0)
        return rc;
    if (g->version == 1)
        return qb_err(QB_EUNSUP,
                      "'%s': GGUF version 1 is not supported (only 2 and 3); convert the model "
                      "again with a recent llama.cpp",
                      g->path);
    if (g->version > 0xffff && !(g->version & 0xffff))
        return qb_err(QB_EUNSUP, "'%s': big-endian GGUF files are not supported", g->path);
    if (g->version != 2 && g->version != 3)
        return qb_err(QB_EUNSUP, "'%s': GGUF version %u is not supported (only 2 and 3)", g->path,
                      g->version);
    if ((rc = rd_u64(&r, &n_tensors)) < 0 || (rc = rd_u64(&r, &n_kv)) < 0)
        return rc;
    if (n_kv > left(&r) / MIN_KV_BYTES)
        return qb_err(QB_EFORMAT,
                      "'%s': the header claims %llu metadata entries, more than the file can hold",
                      g->path, (unsigned long long)n_kv);
    if (n_tensors > left(&r) / MIN_TENSOR_BYTES)
        return qb_err(QB_EFORMAT,
                      "'%s': the header claims %llu tensors, more than the file can hold", g->path,
                      (unsigned long long)n_tensors);

    /* metadata: arrays grow as entries actually parse, so a lying count costs nothing */
    for (int64_t i = 0; i < (int64_t)n_kv; i++) {
        if ((rc = grow((void **)&g->kv, &cap, i + 1, (int64_t)n_kv, sizeof *g->kv, g->path)) < 0)
            return rc;
        if ((rc = parse_kv(&r, i, &g->kv[i])) < 0)
            return rc;
        g->n_kv = i + 1;
    }
    if (!(g->kv_sorted = malloc((g->n_kv ? (size_t)g->n_kv : 1) * sizeof *g->kv_sorted)))
        return qb_err(QB_ENOMEM, "'%s': out of memory for the GGUF header", g->path);
    for (int64_t i = 0; i < g->n_kv; i++)
        g->kv_sorted[i] = &g->kv[i];
    qsort(g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, cmp_kv);
    for (int64_t i = 1; i < g->n_kv; i++)
        if (!cmp_kv(&g->kv_sorted[i - 1], &g->kv_sorted[i]))
            return qb_err(QB_EFORMAT, "'%s': metadata key '%.*s' appears twice", g->path,
                          klen(g->kv_sorted[i]->key_len), g->kv_sorted[i]->key);

    g->alignment = DEFAULT_ALIGNMENT;
    if ((align_kv = qb_gguf_find_kv(g, "general.alignment"))) {
        int64_t a = 0;
        if ((rc = qb_gguf_get_int(g, "general.alignment", &a)) < 0)
            return rc;
        if (a <= 0 || (a & (a - 1)) || a > MAX_ALIGNMENT)
            return qb_err(QB_EFORMAT,
                          "'%s': general.alignment is %lld, not a power of two up to 2^30", g->path,
                          (long long)a);
        g->alignment = (size_t)a;
    }

    /* tensor infos */
    cap = 0;
    if (n_tensors &&
        !(name_len = malloc((size_t)n_tensors * sizeof *name_len))) /* <= file size / 3 */
        return qb_err(QB_ENOMEM, "'%s': out of memory for the GGUF header", g->path);
    for (int64_t i = 0; i < (int64_t)n_tensors; i++) {
        if ((rc = grow((void **)&g->t, &cap, i + 1, (int64_t)n_tensors, sizeof *g->t, g->path)) < 0)
            goto out;
        if ((rc = parse_tensor(&r, i, &g->t[i], &name_len[i])) < 0)
            goto out;
        g->n_tensors = i + 1;
        names_bytes += (int64_t)name_len[i] + 1;
    }
    /* names move out of the file into one NUL-terminated block */
    if (!(g->names = malloc(names_bytes ? (size_t)names_bytes : 1))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory for the GGUF header", g->path);
        goto out;
    }
    np = g->names;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        memcpy(np, g->t[i].name, name_len[i]);
        np[name_len[i]] = 0;
        g->t[i].name = np;
        np += name_len[i] + 1;
    }
    if (!(g->t_sorted = malloc((g->n_tensors ? (size_t)g->n_tensors : 1) * sizeof *g->t_sorted))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory for the GGUF header", g->path);
        goto out;
    }
    for (int64_t i = 0; i < g->n_tensors; i++)
        g->t_sorted[i] = &g->t[i];
    qsort(g->t_sorted, (size_t)g->n_tensors, sizeof *g->t_sorted, cmp_tensor);
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (!strcmp(g->t_sorted[i - 1]->name, g->t_sorted[i]->name)) {
            rc = qb_err(QB_EFORMAT, "'%s': tensor '%s' appears twice", g->path,
                        g->t_sorted[i]->name);
            goto out;
        }

    /* data section: after the header, padded to the alignment */
    pad = (g->alignment - r.off % g->alignment) % g->alignment;
    if (pad > g->size - r.off) {
        if (g->n_tensors) {
            rc = qb_err(QB_EFORMAT, "'%s': file ends before its data section (at byte %zu)",
                        g->path, g->size);
            goto out;
        }
        pad = g->size - r.off;
    }
    g->data_off = r.off + pad;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if ((rc = place_tensor(g, &g->t[i])) < 0)
            goto out;
    rc = 0;
out:
    free(name_len);
    return rc;
}

static int open_common(const void *data, size_t size, const char *name, struct qb_gguf **out)
{
    struct qb_gguf *g;
    int rc;

    *out = NULL;
    if (!(g = calloc(1, sizeof *g)) || !(g->path = strdup(name))) {
        free(g);
        return qb_err(QB_ENOMEM, "'%s': out of memory", name);
    }
    g->base = data;
    g->size = data ? size : 0;
    if ((rc = parse(g)) < 0) {
        qb_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int qb_gguf_open_mem(const void *data, size_t size, const char *name, struct qb_gguf **out)
{
    return open_common(data, size, name, out);
}

int qb_gguf_open(const char *path, struct qb_gguf **out)
{
    struct qb_map map;
    int rc;

    *out = NULL;
    if ((rc = qb_map_open(path, &map)) < 0)
        return rc;
    if ((rc = open_common(map.data, map.size, path, out)) < 0) {
        qb_map_close(&map);
        return rc;
    }
    (*out)->map = map;
    return 0;
}

void qb_gguf_close(struct qb_gguf *g)
{
    if (!g)
        return;
    qb_map_close(&g->map);
    free(g->kv);
    free(g->kv_sorted);
    free(g->t);
    free(g->t_sorted);
    free(g->names);
    free(g->path);
    free(g);
}

const char *qb_gguf_path(const struct qb_gguf *g)
{
    return g->path;
}

uint32_t qb_gguf_version(const struct qb_gguf *g)
{
    return g->version;
}

size_t qb_gguf_alignment(const struct qb_gguf *g)
{
    return g->alignment;
}

size_t qb_gguf_data_offset(const struct qb_gguf *g)
{
    return g->data_off;
}

int64_t qb_gguf_n_kv(const struct qb_gguf *g)
{
    return g->n_kv;
}

const struct qb_gguf_kv *qb_gguf_kv_at(const struct qb_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const struct qb_gguf_kv *qb_gguf_find_kv(const struct qb_gguf *g, const char *key)
{
    size_t len = strlen(key);
    int64_t lo = 0, hi = g->n_kv;
    if (!g->kv_sorted)
        return NULL;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const struct qb_gguf_kv *kv = g->kv_sorted[mid];
        int c = cmp_key(kv->key, kv->key_len, key, len);
        if (!c)
            return kv;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int64_t qb_gguf_n_tensors(const struct qb_gguf *g)
{
    return g->n_tensors;
}

const struct qb_gguf_tensor *qb_gguf_tensor_at(const struct qb_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->t[i] : NULL;
}

const struct qb_gguf_tensor *qb_gguf_find_tensor(const struct qb_gguf *g, const char *name)
{
    int64_t lo = 0, hi = g->n_tensors;
    if (!g->t_sorted)
        return NULL;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->t_sorted[mid]->name, name);
        if (!c)
            return g->t_sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* --- typed getters --- */

static int wrong_type(const struct qb_gguf *g, const struct qb_gguf_kv *kv, const char *want)
{
    if (kv->type == QB_GGUF_ARR)
        return qb_err(QB_EFORMAT, "'%s': metadata '%.*s' is an array of %s, expected %s", g->path,
                      klen(kv->key_len), kv->key, qb_gguf_type_name(kv->elem_type), want);
    return qb_err(QB_EFORMAT, "'%s': metadata '%.*s' is a %s, expected %s", g->path,
                  klen(kv->key_len), kv->key, qb_gguf_type_name(kv->type), want);
}

static int is_int_type(enum qb_gguf_type t)
{
    return t <= QB_GGUF_I32 || t == QB_GGUF_BOOL || t == QB_GGUF_U64 || t == QB_GGUF_I64;
}

/* One integer of type t at p; 0, or -1 for a u64 above INT64_MAX. */
static int load_int(enum qb_gguf_type t, const unsigned char *p, int64_t *out)
{
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int16_t i16;
    int32_t i32;
    int64_t i64;

    switch (t) {
    case QB_GGUF_U8: *out = p[0]; return 0;
    case QB_GGUF_I8: *out = (int8_t)p[0]; return 0;
    case QB_GGUF_BOOL: *out = p[0] != 0; return 0;
    case QB_GGUF_U16:
        memcpy(&u16, p, 2);
        *out = u16;
        return 0;
    case QB_GGUF_I16:
        memcpy(&i16, p, 2);
        *out = i16;
        return 0;
    case QB_GGUF_U32:
        memcpy(&u32, p, 4);
        *out = u32;
        return 0;
    case QB_GGUF_I32:
        memcpy(&i32, p, 4);
        *out = i32;
        return 0;
    case QB_GGUF_I64:
        memcpy(&i64, p, 8);
        *out = i64;
        return 0;
    case QB_GGUF_U64:
        memcpy(&u64, p, 8);
        if (u64 > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)u64;
        return 0;
    default: return -1;
    }
}

int qb_gguf_get_int(const struct qb_gguf *g, const char *key, int64_t *out)
{
    const struct qb_gguf_kv *kv = qb_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    if (!is_int_type(kv->type))
        return wrong_type(g, kv, "an integer");
    if (load_int(kv->type, kv->val, out) < 0)
        return qb_err(QB_EFORMAT, "'%s': metadata '%s' is too large", g->path, key);
    return 1;
}

int qb_gguf_get_bool(const struct qb_gguf *g, const char *key, int *out)
{
    int64_t v;
    int rc = qb_gguf_get_int(g, key, &v);
    if (rc == 1)
        *out = v != 0;
    return rc;
}

int qb_gguf_get_f32(const struct qb_gguf *g, const char *key, float *out)
{
    const struct qb_gguf_kv *kv = qb_gguf_find_kv(g, key);
    float f;
    double d;
    int64_t i;

    if (!kv)
        return 0;
    if (kv->type == QB_GGUF_F32) {
        memcpy(&f, kv->val, 4);
        *out = f;
    } else if (kv->type == QB_GGUF_F64) {
        memcpy(&d, kv->val, 8);
        *out = (float)d;
    } else if (is_int_type(kv->type) && load_int(kv->type, kv->val, &i) == 0) {
        *out = (float)i;
    } else {
        return wrong_type(g, kv, "a number");
    }
    return 1;
}

int qb_gguf_get_str(const struct qb_gguf *g, const char *key, const char **s, size_t *len)
{
    const struct qb_gguf_kv *kv = qb_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != QB_GGUF_STR)
        return wrong_type(g, kv, "a string");
    *s = (const char *)kv->val;
    *len = kv->val_size;
    return 1;
}

static int find_arr(const struct qb_gguf *g, const char *key, const char *want,
                    const struct qb_gguf_kv **out)
{
    const struct qb_gguf_kv *kv = qb_gguf_find_kv(g, key);
    *out = kv;
    if (!kv)
        return 0;
    if (kv->type != QB_GGUF_ARR)
        return wrong_type(g, kv, want);
    return 1;
}

int qb_gguf_get_arr(const struct qb_gguf *g, const char *key, enum qb_gguf_type *elem_type,
                    int64_t *n, const void **data)
{
    const struct qb_gguf_kv *kv;
    int rc = find_arr(g, key, "an array", &kv);
    if (rc <= 0)
        return rc;
    *elem_type = kv->elem_type;
    *n = kv->n;
    *data = kv->val;
    return 1;
}

int qb_gguf_get_str_arr(const struct qb_gguf *g, const char *key, const char ***strs, size_t **lens,
                        int64_t *n)
{
    const struct qb_gguf_kv *kv;
    const char **s = NULL;
    size_t *l = NULL, off = 0;
    int rc = find_arr(g, key, "an array of strings", &kv);

    if (rc <= 0)
        return rc;
    if (kv->elem_type != QB_GGUF_STR)
        return wrong_type(g, kv, "an array of strings");
    s = malloc((kv->n ? (size_t)kv->n : 1) * sizeof *s);
    l = malloc((kv->n ? (size_t)kv->n : 1) * sizeof *l);
    if (!s || !l) {
        free(s);
        free(l);
        return qb_err(QB_ENOMEM, "'%s': out of memory for metadata '%s'", g->path, key);
    }
    for (int64_t i = 0; i < kv->n; i++) {
        uint64_t len = 0;
        /* checked when the file was opened; checked again so this never trusts it */
        if (kv->val_size - off >= 8)
            memcpy(&len, kv->val + off, 8);
        if (kv->val_size - off < 8 || len > kv->val_size - off - 8) {
            free(s);
            free(l);
            return qb_err(QB_EFORMAT, "'%s': metadata '%s' is corrupt", g->path, key);
        }
        s[i] = (const char *)(kv->val + off + 8);
        l[i] = (size_t)len;
        off += 8 + (size_t)len;
    }
    *strs = s;
    *lens = l;
    *n = kv->n;
    return 1;
}

int qb_gguf_get_f32_arr(const struct qb_gguf *g, const char *key, float **out, int64_t *n)
{
    const struct qb_gguf_kv *kv;
    float *a;
    int rc = find_arr(g, key, "an array of floats", &kv);

    if (rc <= 0)
        return rc;
    if (kv->elem_type != QB_GGUF_F32 && kv->elem_type != QB_GGUF_F64)
        return wrong_type(g, kv, "an array of floats");
    if (!(a = malloc((kv->n ? (size_t)kv->n : 1) * sizeof *a)))
        return qb_err(QB_ENOMEM, "'%s': out of memory for metadata '%s'", g->path, key);
    for (int64_t i = 0; i < kv->n; i++) {
        if (kv->elem_type == QB_GGUF_F32) {
            memcpy(&a[i], kv->val + 4 * i, 4);
        } else {
            double d;
            memcpy(&d, kv->val + 8 * i, 8);
            a[i] = (float)d;
        }
    }
    *out = a;
    *n = kv->n;
    return 1;
}

int qb_gguf_get_i32_arr(const struct qb_gguf *g, const char *key, int32_t **out, int64_t *n)
{
    const struct qb_gguf_kv *kv;
    int32_t *a;
    size_t esz;
    int rc = find_arr(g, key, "an array of integers", &kv);

    if (rc <= 0)
        return rc;
    if (!is_int_type(kv->elem_type))
        return wrong_type(g, kv, "an array of integers");
    esz = scalar_size[kv->elem_type];
    if (!(a = malloc((kv->n ? (size_t)kv->n : 1) * sizeof *a)))
        return qb_err(QB_ENOMEM, "'%s': out of memory for metadata '%s'", g->path, key);
    for (int64_t i = 0; i < kv->n; i++) {
        int64_t v;
        if (load_int(kv->elem_type, kv->val + esz * (size_t)i, &v) < 0 || v < INT32_MIN ||
            v > INT32_MAX) {
            free(a);
            return qb_err(QB_EFORMAT, "'%s': element %lld of metadata '%s' is out of range",
                          g->path, (long long)i, key);
        }
        a[i] = (int32_t)v;
    }
    *out = a;
    *n = kv->n;
    return 1;
}
