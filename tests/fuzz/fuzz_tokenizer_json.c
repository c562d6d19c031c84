/* fuzz_tokenizer_json: libFuzzer harness for the Hugging Face tokenizer.json reader.
 * Whatever loads must also encode and decode: a fixed text that touches every part of
 * the pipeline (added tokens, spaces, digits, punctuation, accents, CJK, emoji, invalid
 * UTF-8), with and without special-token parsing, and every id decodes on its own. */
#include "collector/tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static const char text[] =
    "<s>Hello, world! <|endoftext|> <unk>\n\t  12345 naïve cafe\xcc\x81 \xe2\x96\x81x "
    "Привет 你好 😀 <0x0A> \xff\xfe\xc3 end</s>";

static void exercise(const struct qb_tokenizer *t, int flags)
{
    int32_t *ids = NULL;
    int64_t n = 0;
    char *back = NULL;
    size_t len;
    if (qb_tok_encode(t, text, sizeof text - 1, flags, &ids, &n) == 0) {
        char buf[16];
        int32_t prev = -1;
        for (int64_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= qb_tok_n_vocab(t))
                abort(); /* an id outside the vocabulary is a bug */
            qb_tok_decode_piece(t, prev, ids[i], buf, sizeof buf);
            prev = ids[i];
        }
        if (qb_tok_decode(t, ids, n, &back, &len) == 0)
            free(back);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qb_tokenizer *t = NULL;
    if (qb_tok_load_hf_mem((const char *)data, size, "fuzz.json", &t) == 0) {
        int64_t nv = qb_tok_n_vocab(t);
        char buf[8];
        exercise(t, QB_TOK_DEFAULT);
        exercise(t, QB_TOK_NO_SPECIAL | QB_TOK_EOS);
        for (int32_t id = 0; id < nv && id < 4096; id++)
            qb_tok_decode_piece(t, id > 0 ? id - 1 : -1, id, buf, sizeof buf);
        qb_tok_free(t);
    }
    return 0;
}
