/* err: the thread-local error message behind qb_err (see err.h). */
#include "kernels/base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char msg[1024];

int qb_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *qb_errmsg(void)
{
    return msg;
}

int qb_err_prefix(int code, const char *fmt, ...)
{
    char old[sizeof msg];
    size_t k, n;
    va_list ap;

    memcpy(old, msg, sizeof msg);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* append ": old", cut at the buffer's end */
    k = strlen(msg);
    if (k + 2 < sizeof msg) {
        memcpy(msg + k, ": ", 2);
        k += 2;
        n = strnlen(old, sizeof old - 1);
        if (n > sizeof msg - 1 - k)
            n = sizeof msg - 1 - k;
        memcpy(msg + k, old, n);
        msg[k + n] = 0;
    }
    return code;
}
