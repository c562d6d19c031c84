/* fuzz_suite: libFuzzer harness for the suite CSV reader; whatever loads is also scored with
 * every generate item's metric on a fixed output, as a run would. */
#include "collector/eval/metrics.h"
#include "collector/eval/suite.h"
#include "tests/fuzz/memfile.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char out[] = "  {\"a\": [1, 2.5]} Lily 42 ";
    struct qb_suite_opts o = QB_SUITE_OPTS_INIT;
    struct qb_suite *s = NULL;
    char path[64];
    int fd = memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    if (qb_suite_load(path, &o, &s) == 0) {
        for (int64_t i = 0; i < s->n_items; i++) {
            double score;
            if (s->items[i].kind == QB_KIND_GENERATE)
                qb_metric_score(&s->items[i], out, strlen(out), &score);
        }
        qb_suite_free(s);
    }
    close(fd);
    return 0;
}
