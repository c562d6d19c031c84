/* err: the error codes every fallible qbrief function returns, and the thread-local
 * message that says what failed.
 *
 *     if (size > avail)
 *         return qb_err(QB_EFORMAT, "'%s': tensor '%s' ends past the end of the file", path, name);
 *     ...
 *     if ((rc = qb_model_load(path, &opts, &m)) < 0)
 *         fprintf(stderr, "qbrief: %s\n", qb_errmsg());
 *
 * Messages are lowercase, without a full stop, and quote the subject. */
#ifndef QB_ERR_H
#define QB_ERR_H

#include <stddef.h>

enum {
    QB_OK = 0,
    QB_EIO = -1,     /* cannot open, read, map or write a file */
    QB_EFORMAT = -2, /* the file is malformed or corrupt */
    QB_EUNSUP = -3,  /* well-formed, but something qbrief does not support */
    QB_ENOMEM = -4,  /* allocation failed */
    QB_EINVAL = -5,  /* bad argument from the user (flag, spec, id) */
    QB_ERANGE = -6,  /* a value outside what the model allows (context full, id out of range) */
};

/* Sets the thread-local message (printf-style) and returns code, so callers can
 * `return qb_err(...)`. */
int qb_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message set on this thread ("" when none). Borrowed; valid until the next qb_err. */
const char *qb_errmsg(void);

/* Prefixes the current message with "prefix: " and returns code unchanged. */
int qb_err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Overflow-checked size arithmetic for header fields: return 0 on success, -1 on overflow. */
static inline int qb_mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int qb_add_size(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

#endif
