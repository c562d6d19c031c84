/* fuzz_llama2c: libFuzzer harness for the llama2.c checkpoint parser. Whatever loads must
 * also survive one forward step (a model whose header passed every check is runnable). */
#include "collector/engine/engine.h"
#include "collector/model/model.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qb_model *m = NULL;
    if (qb_load_llama2c_mem(data, size, "fuzz.bin", NULL, &m) == 0) {
        struct qb_engine *e = NULL;
        /* cap the context: the fuzzer's seq_len may be large but valid */
        if (qb_engine_new(m, 4, &e) == 0) {
            int32_t tok = 0;
            qb_engine_forward(e, &tok, 1, NULL);
        }
        qb_engine_free(e);
        qb_model_free(m);
    }
    return 0;
}
