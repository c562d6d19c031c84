/* progress: one process-wide listener behind a lock (see progress.h). */
#include "kernels/base/progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(qb_progress_fn) listener;
static void *listener_ctx;

void qb_progress_set(qb_progress_fn fn, void *ctx)
{
    pthread_mutex_lock(&lock);
    listener_ctx = ctx;
    atomic_store(&listener, fn);
    pthread_mutex_unlock(&lock);
}

void qb_progress(const char *phase, int64_t done, int64_t total)
{
    if (!atomic_load_explicit(&listener, memory_order_relaxed))
        return;
    pthread_mutex_lock(&lock);
    qb_progress_fn fn = atomic_load(&listener);
    if (fn)
        fn(listener_ctx, phase, done, total);
    pthread_mutex_unlock(&lock);
}
