/* fuzz_spm_model: libFuzzer harness for the SentencePiece tokenizer.model reader (the
 * hand-written protobuf reader of collector/tokenizer/spm_model.c, BPE and Unigram). Whatever
 * loads must also encode a fixed text and decode every id it gives. */
#include "collector/tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static const char text[] = "<s>Hello, world!  two  spaces\n\t 12345 naïve cafe\xcc\x81 "
                           "\xe2\x96\x81x Привет 你好 😀 <0x0A> \xff\xfe\xc3 end</s>";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qb_tokenizer *t = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    char buf[16];

    if (qb_tok_load_spm_model_mem(data, size, "fuzz.model", &t) != 0)
        return 0;
    for (int flags = 0; flags < 2; flags++) {
        if (qb_tok_encode(t, text, sizeof text - 1, flags ? QB_TOK_NO_SPECIAL : QB_TOK_DEFAULT,
                          &ids, &n) == 0)
            for (int64_t i = 0; i < n; i++) {
                if (ids[i] < 0 || ids[i] >= qb_tok_n_vocab(t))
                    abort(); /* an id outside the vocabulary is a bug */
                qb_tok_decode_piece(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
            }
        free(ids);
        ids = NULL;
    }
    qb_tok_free(t);
    return 0;
}
