/* test_progress: reports reach the listener in order with their counts, nothing is called
 * without one, and removing it stops the calls. */
#include "kernels/base/progress.h"
#include "tests/check.h"

#include <string.h>

struct seen {
    int calls;
    char phase[32];
    long long done, total;
};

static void listen(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct seen *s = ctx;
    s->calls++;
    strncpy(s->phase, phase, sizeof s->phase - 1);
    s->done = done;
    s->total = total;
}

static void test_listener(void)
{
    struct seen s = {0};
    qb_progress("nobody listens", 1, 2); /* no listener: a no-op */
    qb_progress_set(listen, &s);
    qb_progress("quantizing", 3, 22);
    /* a report reaches the listener with its phase and counts */
    CHECK(s.calls == 1 && !strcmp(s.phase, "quantizing") && s.done == 3 && s.total == 22);
    qb_progress("measuring latency", 22, 22);
    CHECK(s.calls == 2 && !strcmp(s.phase, "measuring latency") && s.done == 22);
    qb_progress_set(NULL, NULL);
    qb_progress("quantizing", 4, 22);
    CHECK(s.calls == 2); /* no calls once the listener is removed */
}

int main(void)
{
    RUN(test_listener);
    return check_summary();
}
