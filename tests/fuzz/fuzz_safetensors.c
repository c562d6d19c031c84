/* fuzz_safetensors: libFuzzer harness for the safetensors header parser. Whatever parses
 * must keep its promises: every tensor lies inside the data section, qb_st_find finds it,
 * and supported tensors convert to f32 (ASan sees any byte read outside the input). */
#include "collector/model/safetensors.h"
#include "kernels/dequant.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qb_st_file *f = NULL;
    float buf[256];

    if (qb_st_open_mem(data, size, "fuzz.safetensors", &f) < 0)
        return 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const struct qb_st_tensor *t = &f->tensors[i];
        const unsigned char *p = t->data;
        size_t n, sum = 0;
        if (t->offset > f->data_size || t->nbytes > f->data_size - t->offset ||
            (size_t)t->n_elems * t->elem_size != t->nbytes || qb_st_find(f, t->name) != t)
            abort();
        for (size_t k = 0; k < t->nbytes; k++)
            sum += p[k];
        (void)sum;
        if (!t->supported)
            continue;
        n = (size_t)t->n_elems < 256 ? (size_t)t->n_elems : 256;
        if (t->dtype == QB_DT_F32)
            memcpy(buf, t->data, n * 4);
        else if (t->dtype == QB_DT_F16)
            qb_dequant_f16(t->data, buf, n);
        else
            qb_dequant_bf16(t->data, buf, n);
    }
    for (int64_t i = 0; i < f->n_meta; i++)
        if (qb_st_meta(f, f->meta_keys[i]) == NULL)
            abort();
    qb_st_free(f);
    return 0;
}
