/* gguf_write: builds a GGUF v3 file (the layout gguf.h reads) from metadata and tensors.
 *
 *     struct qb_gguf_writer *w;
 *     if ((rc = qb_gguf_writer_new(&w)) < 0) ...;
 *     qb_gguf_put_str(w, "general.architecture", "llama");
 *     qb_gguf_put_u32(w, "llama.block_count", 5);
 *     int64_t ne[2] = {64, 512};                    // innermost first
 *     qb_gguf_put_tensor(w, "token_embd.weight", QB_GGML_F32, 2, ne, data, bytes, 0);
 *     rc = qb_gguf_writer_write(w, "out.gguf");     // all at once, via a temporary file
 *     qb_gguf_writer_free(w);
 *
 * Metadata is serialized as it is put (strings and arrays are copied); tensor data is
 * borrowed unless `owned` (then the writer frees it). Keys and tensor names must be unique:
 * a repeat is QB_EINVAL. Tensors are laid out in the order they are put, each at a multiple
 * of general.alignment (32, written by qb_gguf_writer_write unless already put). */
#ifndef QB_GGUF_WRITE_H
#define QB_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

struct qb_gguf_writer;

int qb_gguf_writer_new(struct qb_gguf_writer **out);
void qb_gguf_writer_free(struct qb_gguf_writer *w); /* no-op on NULL */

int qb_gguf_put_str(struct qb_gguf_writer *w, const char *key, const char *s);
int qb_gguf_put_u32(struct qb_gguf_writer *w, const char *key, uint32_t v);
int qb_gguf_put_i32(struct qb_gguf_writer *w, const char *key, int32_t v);
int qb_gguf_put_f32(struct qb_gguf_writer *w, const char *key, float v);
int qb_gguf_put_bool(struct qb_gguf_writer *w, const char *key, int v);
/* Arrays: strings (lens[i] bytes each; lens NULL: NUL-terminated), f32, i32. */
int qb_gguf_put_str_arr(struct qb_gguf_writer *w, const char *key, const char *const *s,
                        const size_t *lens, int64_t n);
int qb_gguf_put_f32_arr(struct qb_gguf_writer *w, const char *key, const float *v, int64_t n);
int qb_gguf_put_i32_arr(struct qb_gguf_writer *w, const char *key, const int32_t *v, int64_t n);

/* One tensor of ggml type `type` (enum qb_ggml_type or any ggml number), ne innermost
 * first; size is the byte count of data, which must match the type's block size. */
int qb_gguf_put_tensor(struct qb_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                       const int64_t *ne, const void *data, size_t size, int owned);

/* Writes the file: PATH.tmp, then renamed over path. QB_EIO with the path on failure. */
int qb_gguf_writer_write(struct qb_gguf_writer *w, const char *path);

#endif
