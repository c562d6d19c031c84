/* safetensors: parser of the Hugging Face tensor file and of its sharding index (see
 * safetensors.h). Must agree with the format the `safetensors` Python/Rust package writes:
 * u64 LE header length, JSON header, data section; offsets relative to the data section. */
#include "collector/model/safetensors.h"

#include "kernels/base/err.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every dtype the safetensors package knows that has a whole number of bytes per element.
 * Only the first three can be converted to f32. */
static const struct {
    const char *name;
    size_t size;
    int supported;
    enum qb_dtype dt;
} dtypes[] = {
    {"F32", 4, 1, QB_DT_F32},     {"F16", 2, 1, QB_DT_F16},     {"BF16", 2, 1, QB_DT_BF16},
    {"F64", 8, 0, QB_DT_F32},     {"I64", 8, 0, QB_DT_F32},     {"U64", 8, 0, QB_DT_F32},
    {"I32", 4, 0, QB_DT_F32},     {"U32", 4, 0, QB_DT_F32},     {"I16", 2, 0, QB_DT_F32},
    {"U16", 2, 0, QB_DT_F32},     {"I8", 1, 0, QB_DT_F32},      {"U8", 1, 0, QB_DT_F32},
    {"BOOL", 1, 0, QB_DT_F32},    {"F8_E4M3", 1, 0, QB_DT_F32}, {"F8_E5M2", 1, 0, QB_DT_F32},
    {"F8_E8M0", 1, 0, QB_DT_F32},
};

static uint64_t rd_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

const char *qb_st_shape_str(int n_dims, const int64_t *shape, char *buf, size_t cap)
{
    size_t len = 0;
    if (!cap)
        return buf;
    buf[0] = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
    return buf;
}

/* Reads a JSON integer that must be >= 0 into *out. */
static int get_nonneg(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int parse_entry(struct qb_st_file *f, const char *name, json_t *v, struct qb_st_tensor *t)
{
    const char *path = f->path;
    json_t *jdt, *jshape, *joff;
    const char *dt;
    size_t i, k, nbytes;
    int64_t n = 1, begin, end;

    if (!json_is_object(v))
        return qb_err(QB_EFORMAT, "'%s': entry '%s' is not a JSON object", path, name);
    jdt = json_object_get(v, "dtype");
    jshape = json_object_get(v, "shape");
    joff = json_object_get(v, "data_offsets");
    if (!json_is_string(jdt))
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has no string 'dtype'", path, name);
    if (!json_is_array(jshape))
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has no 'shape' array", path, name);
    if (!json_is_array(joff) || json_array_size(joff) != 2)
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has no 'data_offsets' pair", path, name);

    dt = json_string_value(jdt);
    for (k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
        if (!strcmp(dt, dtypes[k].name))
            break;
    if (k == sizeof dtypes / sizeof dtypes[0])
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has unknown dtype '%.32s'", path, name, dt);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtypes[k].name);
    t->supported = dtypes[k].supported;
    t->dtype = dtypes[k].dt;
    t->elem_size = dtypes[k].size;

    if (json_array_size(jshape) > QB_ST_MAX_DIMS)
        return qb_err(QB_EUNSUP, "'%s': tensor '%s' has %zu dimensions (at most %d supported)",
                      path, name, json_array_size(jshape), QB_ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(jshape);
    for (i = 0; i < json_array_size(jshape); i++) {
        if (get_nonneg(json_array_get(jshape, i), &t->shape[i]) < 0)
            return qb_err(QB_EFORMAT, "'%s': tensor '%s': shape[%zu] is not a non-negative integer",
                          path, name, i);
        if (__builtin_mul_overflow(n, t->shape[i], &n))
            return qb_err(QB_EFORMAT, "'%s': tensor '%s': element count overflows", path, name);
    }
    t->n_elems = n;
    if ((uint64_t)n > SIZE_MAX || qb_mul_size((size_t)n, t->elem_size, &nbytes) < 0)
        return qb_err(QB_EFORMAT, "'%s': tensor '%s': byte size overflows", path, name);

    if (get_nonneg(json_array_get(joff, 0), &begin) < 0 ||
        get_nonneg(json_array_get(joff, 1), &end) < 0)
        return qb_err(QB_EFORMAT, "'%s': tensor '%s': data_offsets are not non-negative integers",
                      path, name);
    if (begin > end)
        return qb_err(QB_EFORMAT,
                      "'%s': tensor '%s': data_offsets [%lld, %lld] end before they begin", path,
                      name, (long long)begin, (long long)end);
    if ((uint64_t)end > f->data_size)
        return qb_err(QB_EFORMAT,
                      "'%s': tensor '%s' ends at %lld, past the end of the data (%zu bytes)", path,
                      name, (long long)end, f->data_size);
    if ((uint64_t)(end - begin) != nbytes) {
        char s[128];
        return qb_err(QB_EFORMAT, "'%s': tensor '%s' has %lld bytes, but %s %s needs %zu", path,
                      name, (long long)(end - begin), t->dtype_name,
                      qb_st_shape_str(t->n_dims, t->shape, s, sizeof s), nbytes);
    }
    t->offset = (size_t)begin;
    t->nbytes = nbytes;
    t->data = f->data + t->offset;
    t->aligned = (uintptr_t)t->data % t->elem_size == 0;
    if (!(t->name = strdup(name)))
        return qb_err(QB_ENOMEM, "'%s': out of memory", path);
    return 0;
}

static int parse_meta(struct qb_st_file *f, json_t *v)
{
    const char *key;
    json_t *val;

    if (!json_is_object(v))
        return qb_err(QB_EFORMAT, "'%s': '__metadata__' is not a JSON object", f->path);
    f->meta_keys = calloc(json_object_size(v) + 1, sizeof *f->meta_keys);
    f->meta_values = calloc(json_object_size(v) + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return qb_err(QB_ENOMEM, "'%s': out of memory", f->path);
    json_object_foreach(v, key, val)
    {
        if (!json_is_string(val))
            return qb_err(QB_EFORMAT, "'%s': '__metadata__' value of '%s' is not a string", f->path,
                          key);
        f->meta_keys[f->n_meta] = strdup(key);
        f->meta_values[f->n_meta] = strdup(json_string_value(val));
        if (!f->meta_keys[f->n_meta] || !f->meta_values[f->n_meta])
            return qb_err(QB_ENOMEM, "'%s': out of memory", f->path);
        f->n_meta++;
    }
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const struct qb_st_tensor *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    const struct qb_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

int qb_st_open_mem(const void *data, size_t size, const char *name, struct qb_st_file **out)
{
    const unsigned char *p = data;
    struct qb_st_file *f = NULL;
    json_t *root = NULL, *v;
    json_error_t jerr;
    const char *key;
    uint64_t hlen;
    int64_t i, end = 0;
    int rc = 0;

    *out = NULL;
    if (!(f = calloc(1, sizeof *f)) || !(f->path = strdup(name))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", name);
        goto fail;
    }
    f->size = size;
    if (size < 8) {
        rc = qb_err(QB_EFORMAT, "'%s': %zu bytes is too short for a safetensors file", name, size);
        goto fail;
    }
    hlen = rd_u64le(p);
    if (hlen > size - 8) {
        rc =
            qb_err(QB_EFORMAT, "'%s': header length %llu runs past the end of the file (%zu bytes)",
                   name, (unsigned long long)hlen, size);
        goto fail;
    }
    if (hlen > QB_ST_MAX_HEADER) {
        rc = qb_err(QB_EFORMAT, "'%s': header length %llu is over the %zu-byte limit", name,
                    (unsigned long long)hlen, QB_ST_MAX_HEADER);
        goto fail;
    }
    f->header_len = (size_t)hlen;
    f->data = p + 8 + f->header_len;
    f->data_size = size - 8 - f->header_len;

    root = json_loadb((const char *)p + 8, f->header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = qb_err(QB_EFORMAT, "'%s': header is not valid JSON: %s (column %d)", name, jerr.text,
                    jerr.column);
        goto fail;
    }
    if (!json_is_object(root)) {
        rc = qb_err(QB_EFORMAT, "'%s': header is not a JSON object", name);
        goto fail;
    }
    f->tensors = calloc(json_object_size(root) + 1, sizeof *f->tensors);
    f->by_name = calloc(json_object_size(root) + 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", name);
        goto fail;
    }
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = parse_meta(f, v)) < 0)
                goto fail;
            continue;
        }
        if ((rc = parse_entry(f, key, v, &f->tensors[f->n_tensors])) < 0)
            goto fail;
        f->n_tensors++;
    }

    /* file order; tensors may leave gaps but never share bytes */
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_offset);
    for (i = 0; i < f->n_tensors; i++) {
        const struct qb_st_tensor *t = &f->tensors[i];
        if (t->nbytes == 0)
            continue;
        if (t->offset < (size_t)end) {
            rc = qb_err(QB_EFORMAT, "'%s': tensor '%s' overlaps the tensor before it", name,
                        t->name);
            goto fail;
        }
        end = (int64_t)(t->offset + t->nbytes);
    }
    for (i = 0; i < f->n_tensors; i++)
        f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_name);

    json_decref(root);
    *out = f;
    return 0;
fail:
    json_decref(root);
    qb_st_free(f);
    return rc;
}

int qb_st_open(const char *path, struct qb_st_file **out)
{
    struct qb_map map;
    int rc;

    *out = NULL;
    if ((rc = qb_map_open(path, &map)) < 0)
        return rc;
    if ((rc = qb_st_open_mem(map.data, map.size, path, out)) < 0) {
        qb_map_close(&map);
        return rc;
    }
    (*out)->map = map;
    return 0;
}

void qb_st_free(struct qb_st_file *f)
{
    if (!f)
        return;
    for (int64_t i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    for (int64_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    /* a failed parse may leave one half-filled metadata pair behind */
    if (f->meta_keys)
        free(f->meta_keys[f->n_meta]);
    if (f->meta_values)
        free(f->meta_values[f->n_meta]);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->tensors);
    free(f->by_name);
    qb_map_close(&f->map);
    free(f->path);
    free(f);
}

const struct qb_st_tensor *qb_st_find(const struct qb_st_file *f, const char *name)
{
    size_t lo = 0, hi = (size_t)f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (!c)
            return f->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *qb_st_meta(const struct qb_st_file *f, const char *key)
{
    for (int64_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key))
            return f->meta_values[i];
    return NULL;
}

/* --- the index --- */

struct pair {
    const char *name, *shard;
};

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const struct pair *)a)->name, ((const struct pair *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int qb_st_index_parse(const char *text, size_t len, const char *path, struct qb_st_index **out)
{
    struct qb_st_index *ix = NULL;
    struct pair *pairs = NULL;
    const char **files = NULL;
    json_t *root = NULL, *wm, *v;
    json_error_t jerr;
    const char *key;
    size_t n = 0, i, n_files = 0;
    int rc = 0;

    *out = NULL;
    if (!(ix = calloc(1, sizeof *ix)) || !(ix->path = strdup(path))) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = qb_err(QB_EFORMAT, "'%s': not valid JSON: %s (line %d)", path, jerr.text, jerr.line);
        goto fail;
    }
    wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        rc = qb_err(QB_EFORMAT, "'%s': no 'weight_map' object", path);
        goto fail;
    }
    pairs = calloc(json_object_size(wm) + 1, sizeof *pairs);
    files = calloc(json_object_size(wm) + 1, sizeof *files);
    if (!pairs || !files) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    json_object_foreach(wm, key, v)
    {
        const char *s = json_string_value(v);
        if (!s) {
            rc = qb_err(QB_EFORMAT, "'%s': weight_map entry '%s' is not a string", path, key);
            goto fail;
        }
        /* a shard is a plain file name beside the index: nothing may reach outside the
         * model directory */
        if (!*s || strlen(s) > 255 || strchr(s, '/') || strchr(s, '\\') || strstr(s, "..")) {
            rc = qb_err(QB_EFORMAT,
                        "'%s': tensor '%s' names shard '%.64s', not a file name in "
                        "the model directory",
                        path, key, s);
            goto fail;
        }
        pairs[n].name = key;
        pairs[n].shard = s;
        files[n] = s;
        n++;
    }
    qsort(files, n, sizeof *files, cmp_str);
    for (i = 0; i < n; i++)
        if (!n_files || strcmp(files[n_files - 1], files[i]))
            files[n_files++] = files[i];
    qsort(pairs, n, sizeof *pairs, cmp_pair);

    ix->names = calloc(n + 1, sizeof *ix->names);
    ix->shard_of = calloc(n + 1, sizeof *ix->shard_of);
    ix->shards = calloc(n_files + 1, sizeof *ix->shards);
    if (!ix->names || !ix->shard_of || !ix->shards || n_files > INT32_MAX) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    for (i = 0; i < n_files; i++, ix->n_shards++)
        if (!(ix->shards[i] = strdup(files[i]))) {
            rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
            goto fail;
        }
    for (i = 0; i < n; i++, ix->n_entries++) {
        const char **hit = bsearch(&pairs[i].shard, files, n_files, sizeof *files, cmp_str);
        ix->shard_of[i] = (int)(hit - files);
        if (!(ix->names[i] = strdup(pairs[i].name))) {
            rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
            goto fail;
        }
    }
    free(pairs);
    free(files);
    json_decref(root);
    *out = ix;
    return 0;
fail:
    free(pairs);
    free(files);
    json_decref(root);
    qb_st_index_free(ix);
    return rc;
}

int qb_st_index_load(const char *path, struct qb_st_index **out)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = qb_read_file(path, (size_t)64 << 20, &text, &len)) < 0)
        return rc;
    rc = qb_st_index_parse(text, len, path, out);
    free(text);
    return rc;
}

int qb_st_index_lookup(const struct qb_st_index *ix, const char *name)
{
    size_t lo = 0, hi = (size_t)ix->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ix->names[mid]);
        if (!c)
            return ix->shard_of[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

void qb_st_index_free(struct qb_st_index *ix)
{
    if (!ix)
        return;
    for (int64_t i = 0; i < ix->n_entries; i++)
        free(ix->names[i]);
    for (int i = 0; i < ix->n_shards; i++)
        free(ix->shards[i]);
    free(ix->names);
    free(ix->shard_of);
    free(ix->shards);
    free(ix->path);
    free(ix);
}
