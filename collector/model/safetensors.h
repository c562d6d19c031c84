/* safetensors: the Hugging Face tensor file, parsed over a read-only map, and the
 * model.safetensors.index.json that splits a model over several such files.
 *
 * Layout (https://github.com/huggingface/safetensors): u64 little-endian N, N bytes of JSON
 * (an object, possibly padded with spaces), then the data section. Each JSON entry but
 * "__metadata__" is name -> {"dtype": "F32", "shape": [out, in], "data_offsets": [b, e]},
 * offsets relative to the start of the data section. "__metadata__" is a string -> string map.
 *
 *     struct qb_st_file *f;
 *     if ((rc = qb_st_open("model.safetensors", &f)) < 0) return rc;   // message names the path
 *     const struct qb_st_tensor *t = qb_st_find(f, "model.norm.weight");
 *     if (t && t->supported) ... t->data[0 .. t->nbytes) as t->dtype ...
 *     qb_st_free(f);
 *
 * Everything the header says is checked before it is used: the header fits in the file,
 * the JSON is an object without duplicate keys, every dtype is known, every shape is a list
 * of non-negative integers whose product (times the dtype size) does not overflow and equals
 * end - begin, 0 <= begin <= end <= data section size, and no two tensors overlap. Dtypes
 * qbrief cannot convert (I64, F8_E4M3, ...) parse fine with supported == 0; a loader that
 * needs such a tensor reports QB_EUNSUP. */
#ifndef QB_SAFETENSORS_H
#define QB_SAFETENSORS_H

#include "kernels/base/fileio.h"
#include "collector/model/model.h"

#include <stddef.h>
#include <stdint.h>

#define QB_ST_MAX_DIMS 8
#define QB_ST_MAX_HEADER ((size_t)100 << 20) /* 100 MiB of JSON is already absurd */

struct qb_st_tensor {
    char *name;          /* owned by the file */
    char dtype_name[12]; /* as spelled in the file: "F32", "BF16", "I64", ... */
    int supported;       /* 1 when the dtype is F32, F16 or BF16 */
    enum qb_dtype dtype; /* valid when supported */
    size_t elem_size;    /* bytes per element */
    int n_dims;
    int64_t shape[QB_ST_MAX_DIMS]; /* outermost first, as PyTorch prints it */
    int64_t n_elems;
    size_t offset;    /* begin, relative to the data section */
    size_t nbytes;    /* end - begin == n_elems * elem_size */
    const void *data; /* borrowed from the map or buffer the file was opened on */
    int aligned;      /* data is aligned to elem_size (else: copy, never cast) */
};

struct qb_st_file {
    char *path;                /* as given (or the name passed to qb_st_open_mem) */
    size_t size;               /* whole file */
    size_t header_len;         /* N */
    const unsigned char *data; /* data section: file + 8 + N */
    size_t data_size;
    int64_t n_tensors;
    struct qb_st_tensor *tensors;        /* in file order (by offset) */
    const struct qb_st_tensor **by_name; /* the same tensors sorted by name (qb_st_find) */
    int64_t n_meta;                      /* "__metadata__" entries, in file order */
    char **meta_keys;
    char **meta_values;
    struct qb_map map; /* owned when opened with qb_st_open; zero otherwise */
};

/* Maps path read-only and parses it. *out is owned by the caller (qb_st_free). */
int qb_st_open(const char *path, struct qb_st_file **out);

/* Parses size bytes at data, which are borrowed and must outlive *out (tensor data points
 * into them). name is used in messages only. Used by loaders that keep the map themselves
 * and by the fuzzer. */
int qb_st_open_mem(const void *data, size_t size, const char *name, struct qb_st_file **out);

void qb_st_free(struct qb_st_file *f); /* no-op on NULL */

/* The tensor called name, or NULL. O(log n). */
const struct qb_st_tensor *qb_st_find(const struct qb_st_file *f, const char *name);

/* The value of a "__metadata__" key, or NULL. */
const char *qb_st_meta(const struct qb_st_file *f, const char *key);

/* Formats a shape as "[4096, 11008]" into buf (always NUL-terminated). */
const char *qb_st_shape_str(int n_dims, const int64_t *shape, char *buf, size_t cap);

/* --- model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: file}} --- */

struct qb_st_index {
    char *path;
    int64_t n_entries;
    char **names;  /* tensor names, sorted */
    int *shard_of; /* names[i] lives in shards[shard_of[i]] */
    int n_shards;
    char **shards; /* distinct file names, sorted; plain names in the same
                      directory ('/' and ".." refused) */
};

/* Parses len bytes of index JSON; path is used in messages only. */
int qb_st_index_parse(const char *text, size_t len, const char *path, struct qb_st_index **out);
/* Reads and parses the index file at path. */
int qb_st_index_load(const char *path, struct qb_st_index **out);
/* The shard (index into ix->shards) holding tensor name, or -1 when the index lacks it. */
int qb_st_index_lookup(const struct qb_st_index *ix, const char *name);
void qb_st_index_free(struct qb_st_index *ix); /* no-op on NULL */

#endif
