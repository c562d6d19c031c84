/* err: the thread-local error message behind qb_err (see err.h). */
#include "collector/err.h"

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
    char old[sizeof msg], pre[512];
    va_list ap;
    memcpy(old, msg, sizeof msg);
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s: %s", pre, old);
    return code;
}
