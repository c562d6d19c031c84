/* fuzz_gguf: libFuzzer harness for the GGUF reader and loader. Every input goes through the
 * reader's own API (each metadata entry read with every typed getter, every tensor's bytes
 * touched) and then the whole model load; whatever loads must survive one forward step and,
 * when it carries one, an encode with its tokenizer. */
#include "collector/engine/engine.h"
#include "collector/model/gguf.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void read_everything(const struct qb_gguf *g)
{
    volatile unsigned sink = 0;
    for (int64_t i = 0; i < qb_gguf_n_kv(g); i++) {
        const struct qb_gguf_kv *kv = qb_gguf_kv_at(g, i);
        char *key = strndup(kv->key, kv->key_len); /* stops at an embedded NUL: fine */
        const char **strs = NULL, *s;
        size_t *lens = NULL, len;
        float *fa = NULL, f;
        int32_t *ia = NULL;
        int64_t n, v;
        int b;
        enum qb_gguf_type et;
        const void *data;
        if (!key)
            return;
        qb_gguf_get_int(g, key, &v);
        qb_gguf_get_f32(g, key, &f);
        qb_gguf_get_bool(g, key, &b);
        if (qb_gguf_get_str(g, key, &s, &len) == 1)
            for (size_t j = 0; j < len; j++)
                sink += (unsigned char)s[j];
        qb_gguf_get_arr(g, key, &et, &n, &data);
        if (qb_gguf_get_str_arr(g, key, &strs, &lens, &n) == 1)
            for (int64_t j = 0; j < n; j++)
                if (lens[j])
                    sink += (unsigned char)strs[j][lens[j] - 1];
        if (qb_gguf_get_f32_arr(g, key, &fa, &n) == 1 && n > 0)
            sink += fa[n - 1] == fa[n - 1]; /* reads it; a float-to-unsigned cast would be UB */
        if (qb_gguf_get_i32_arr(g, key, &ia, &n) == 1 && n > 0)
            sink += (unsigned)ia[n - 1];
        free(strs);
        free(lens);
        free(fa);
        free(ia);
        free(key);
    }
    for (int64_t i = 0; i < qb_gguf_n_tensors(g); i++) {
        const struct qb_gguf_tensor *t = qb_gguf_tensor_at(g, i);
        const unsigned char *p = t->data;
        if (qb_gguf_find_tensor(g, t->name) == NULL)
            __builtin_trap(); /* every name must be found again */
        if (p && t->size)
            sink += p[0] + p[t->size - 1];
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qb_gguf *g = NULL;
    struct qb_model *m = NULL;

    if (qb_gguf_open_mem(data, size, "fuzz.gguf", &g) == 0)
        read_everything(g);
    qb_gguf_close(g);

    if (qb_load_gguf_mem(data, size, "fuzz.gguf", NULL, &m) == 0) {
        struct qb_engine *e = NULL;
        /* cap the context: the fuzzer's context_length may be large but valid */
        if (qb_engine_new(m, 4, &e) == 0) {
            int32_t tok = 0;
            qb_engine_forward(e, &tok, 1, NULL);
        }
        qb_engine_free(e);
        if (m->tok) {
            int32_t *ids = NULL;
            int64_t n = 0;
            qb_tok_encode(m->tok, "Hello world", 11, QB_TOK_DEFAULT, &ids, &n);
            free(ids);
        }
        qb_model_free(m);
    }
    return 0;
}
