/* gguf: a reader for GGUF v2/v3 files (llama.cpp's model format) that treats every byte as
 * hostile. Agrees with the GGUF specification (ggml/docs/gguf.md) and llama.cpp's gguf.cpp:
 *
 *     "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *     n_kv x      { string key, u32 value_type, value }
 *     n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *     padding to general.alignment (default 32), then the data section; tensor offsets are
 *     relative to its start.
 *     string = u64 length + bytes (not NUL-terminated); array = u32 elem_type, u64 n, elements
 *
 * Every count, length, offset and size is checked against the bytes that remain before it is
 * used, so a truncated or corrupt file gives QB_EFORMAT with a message naming the file, never
 * a read out of bounds. Well-formed files qbrief cannot read (version 1, big-endian, nested
 * arrays) give QB_EUNSUP.
 *
 *     struct qb_gguf *g;
 *     if ((rc = qb_gguf_open("model.gguf", &g)) < 0) ... qb_errmsg() ...;
 *     int64_t ctx = 2048;                                   // default when the key is absent
 *     if ((rc = qb_gguf_get_int(g, "llama.context_length", &ctx)) < 0) ...; // wrong type
 *     const struct qb_gguf_tensor *t = qb_gguf_find_tensor(g, "token_embd.weight");
 *     ... t->type, t->ne[0] (innermost), t->data[0 .. t->size) ...
 *     qb_gguf_close(g);
 *
 * Everything a qb_gguf hands out (keys, strings, tensor data) is borrowed: it points into the
 * mapping (or the caller's buffer for qb_gguf_open_mem) and lives until qb_gguf_close (or as
 * long as that buffer). Numbers in the file are little-endian and may be unaligned. */
#ifndef QB_GGUF_H
#define QB_GGUF_H

#include <stddef.h>
#include <stdint.h>

struct qb_gguf;
struct qb_model;
struct qb_load_opts;

/* Metadata value types, numbered as in the file. */
enum qb_gguf_type {
    QB_GGUF_U8 = 0,
    QB_GGUF_I8 = 1,
    QB_GGUF_U16 = 2,
    QB_GGUF_I16 = 3,
    QB_GGUF_U32 = 4,
    QB_GGUF_I32 = 5,
    QB_GGUF_F32 = 6,
    QB_GGUF_BOOL = 7,
    QB_GGUF_STR = 8,
    QB_GGUF_ARR = 9,
    QB_GGUF_U64 = 10,
    QB_GGUF_I64 = 11,
    QB_GGUF_F64 = 12,
    QB_GGUF_NTYPES
};

/* The ggml tensor types qbrief converts (the rest are listed by name only). */
enum qb_ggml_type {
    QB_GGML_F32 = 0,
    QB_GGML_F16 = 1,
    QB_GGML_Q4_0 = 2,
    QB_GGML_Q4_1 = 3,
    QB_GGML_Q8_0 = 8,
    QB_GGML_BF16 = 30,
};

/* One metadata entry. */
struct qb_gguf_kv {
    const char *key; /* in the file, NOT NUL-terminated */
    size_t key_len;
    enum qb_gguf_type type;
    enum qb_gguf_type elem_type; /* arrays only */
    int64_t n;                   /* arrays: element count; strings: byte length; scalars: 1 */
    const unsigned char *val;    /* scalars: the value; strings: the bytes; arrays: element 0 */
    size_t val_size;             /* bytes at val */
};

/* One tensor. */
struct qb_gguf_tensor {
    const char *name; /* NUL-terminated copy, owned by the qb_gguf */
    uint32_t type;    /* ggml type as stored; may be one qbrief does not know */
    int n_dims;       /* 0..4 */
    int64_t ne[4];    /* innermost first (ne[0] = in_features); unused entries are 1 */
    int64_t n_elements;
    uint64_t offset;  /* from the start of the data section */
    const void *data; /* in the file; NULL when the type's size is unknown */
    size_t size;      /* bytes; 0 when the type's size is unknown */
};

/* Maps and parses the file. The message of every error names path. */
int qb_gguf_open(const char *path, struct qb_gguf **out);
/* Parses size bytes at data (borrowed: they must outlive the qb_gguf); name is used in
 * messages as the path would be. */
int qb_gguf_open_mem(const void *data, size_t size, const char *name, struct qb_gguf **out);
void qb_gguf_close(struct qb_gguf *g); /* no-op on NULL */

const char *qb_gguf_path(const struct qb_gguf *g);
uint32_t qb_gguf_version(const struct qb_gguf *g);
size_t qb_gguf_alignment(const struct qb_gguf *g);
size_t qb_gguf_data_offset(const struct qb_gguf *g); /* file offset of the data section */

/* Metadata, in file order. */
int64_t qb_gguf_n_kv(const struct qb_gguf *g);
const struct qb_gguf_kv *qb_gguf_kv_at(const struct qb_gguf *g, int64_t i);
const struct qb_gguf_kv *qb_gguf_find_kv(const struct qb_gguf *g, const char *key); /* or NULL */

/* Typed getters. Each returns 1 and sets *out when the key is present with a convertible
 * type, 0 when the key is absent (outputs untouched, so preset them to the default), and
 * QB_EFORMAT with a message naming the file and key when the type does not fit.
 *  - _int: any integer type (and bool); a u64 above INT64_MAX is an error.
 *  - _f32: f32, f64 or any integer.
 *  - _bool: bool or any integer (non-zero is true).
 *  - _str: pointer into the file and length; the bytes are NOT NUL-terminated. */
int qb_gguf_get_int(const struct qb_gguf *g, const char *key, int64_t *out);
int qb_gguf_get_f32(const struct qb_gguf *g, const char *key, float *out);
int qb_gguf_get_bool(const struct qb_gguf *g, const char *key, int *out);
int qb_gguf_get_str(const struct qb_gguf *g, const char *key, const char **s, size_t *len);

/* Arrays. _arr gives the raw elements (little-endian, possibly unaligned; for string arrays
 * the u64-length-prefixed strings back to back). The others convert into malloc'd arrays the
 * caller frees (for _str_arr, *strs and *lens; the strings stay in the file, not
 * NUL-terminated). _f32_arr takes f32/f64 elements, _i32_arr integer elements that fit in
 * int32. Same return convention as the getters above. */
int qb_gguf_get_arr(const struct qb_gguf *g, const char *key, enum qb_gguf_type *elem_type,
                    int64_t *n, const void **data);
int qb_gguf_get_str_arr(const struct qb_gguf *g, const char *key, const char ***strs, size_t **lens,
                        int64_t *n);
int qb_gguf_get_f32_arr(const struct qb_gguf *g, const char *key, float **out, int64_t *n);
int qb_gguf_get_i32_arr(const struct qb_gguf *g, const char *key, int32_t **out, int64_t *n);

/* Tensors, in file order. */
int64_t qb_gguf_n_tensors(const struct qb_gguf *g);
const struct qb_gguf_tensor *qb_gguf_tensor_at(const struct qb_gguf *g, int64_t i);
const struct qb_gguf_tensor *qb_gguf_find_tensor(const struct qb_gguf *g, const char *name);

/* "u32", "string", ... ("?" when out of range). */
const char *qb_gguf_type_name(enum qb_gguf_type t);
/* "f32", "q4_0", "q4_K", ... or NULL for a ggml type qbrief does not know. */
const char *qb_gguf_ggml_type_name(uint32_t type);

/* Implemented in load_gguf.c: qb_load_gguf (model.h) over a GGUF image in memory, which is
 * borrowed and must outlive the model. For the fuzz harness and tests; name is used in
 * messages. opts may be NULL. */
int qb_load_gguf_mem(const void *data, size_t size, const char *name,
                     const struct qb_load_opts *opts, struct qb_model **out);

#endif
