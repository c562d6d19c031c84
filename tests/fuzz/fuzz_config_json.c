/* fuzz_config_json: libFuzzer harness for the Hugging Face JSON files a model directory
 * holds besides its weights: config.json (qb_hf_config_parse) and
 * model.safetensors.index.json (qb_st_index_parse), both fed the same bytes. A config that
 * parses must pass qb_config_check; an index must map every name to a listed, safe shard. */
#include "collector/model/hf_config.h"
#include "collector/model/model.h"
#include "collector/model/safetensors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qb_config c;
    struct qb_st_index *ix = NULL;

    if (qb_hf_config_parse((const char *)data, size, "fuzz/config.json", &c) == 0 &&
        (qb_config_check(&c, "fuzz/config.json") != 0 || c.rope_style != QB_ROPE_HALF))
        abort();
    if (qb_st_index_parse((const char *)data, size, "fuzz/index.json", &ix) == 0) {
        for (int64_t i = 0; i < ix->n_entries; i++) {
            int s = ix->shard_of[i];
            if (s < 0 || s >= ix->n_shards || qb_st_index_lookup(ix, ix->names[i]) != s ||
                strchr(ix->shards[s], '/') || strstr(ix->shards[s], ".."))
                abort();
        }
        qb_st_index_free(ix);
    }
    return 0;
}
