/* fuzz_plan: libFuzzer harness for the YAML plan loader. */
#include "collector/run/plan.h"
#include "tests/fuzz/memfile.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qb_plan *p = NULL;
    char path[64];
    int fd = memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    if (qb_plan_load(path, &p) == 0)
        qb_plan_free(p);
    close(fd);
    return 0;
}
