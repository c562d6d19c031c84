/* test_malformed_tokenizer: every file in tests/malformed/tokenizer/ (written by
 * make_tokenizer.py) fails to load with a message naming it: *.json through
 * qb_tok_load_hf, *.bin through qb_tok_load_llama2c with 4 tokens. The unbroken controls
 * in tests/malformed/valid/ load and tokenize (the .bin has 6 tokens). */
#include "kernels/base/err.h"
#include "collector/tokenizer/tokenizer.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

#define DIR_PATH "tests/malformed/tokenizer"

static int load_json(const char *path)
{
    struct qb_tokenizer *t = NULL;
    int rc = qb_tok_load_hf(path, &t);
    qb_tok_free(t);
    return rc;
}

static int load_bin(const char *path)
{
    struct qb_tokenizer *t = NULL;
    int rc = qb_tok_load_llama2c(path, 4, &t);
    qb_tok_free(t);
    return rc;
}

static void test_corpus_fails_cleanly(void)
{
    CHECK(check_corpus(DIR_PATH, ".json", load_json) >= 40);
    CHECK(check_corpus(DIR_PATH, ".bin", load_bin) >= 8);
}

static void test_controls_load(void)
{
    struct qb_tokenizer *t = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    char *text = NULL;
    size_t len = 0;

    CHECK(qb_tok_load_hf("tests/malformed/valid/tokenizer-control.json", &t) == 0);
    if (t) {
        /* "ab ab!\n": Strip(right) drops the newline, Prepend and Replace make
         * "▁ab▁ab!", Punctuation takes "!" apart, Metaspace splits before each "▁":
         * "▁ab" "▁ab" "!" -> a+b, ▁+ab twice, and BOS from the template */
        CHECK(qb_tok_encode(t, "ab ab!\n", 7, QB_TOK_DEFAULT, &ids, &n) == 0);
        CHECK(n == 4 && ids[0] == 1 && ids[1] == 8 && ids[2] == 8 && ids[3] == 11);
        CHECK(qb_tok_decode(t, ids, n, &text, &len) == 0 && strcmp(text, "ab ab!") == 0);
        free(ids);
        free(text);
    }
    qb_tok_free(t);
    t = NULL;
    CHECK(qb_tok_load_llama2c("tests/malformed/valid/tokenizer-control.bin", 6, &t) == 0);
    if (t) {
        /* "▁a": ▁ (3) + a (4) -> "▁a" (5) */
        CHECK(qb_tok_encode(t, "a", 1, QB_TOK_DEFAULT, &ids, &n) == 0);
        CHECK(n == 2 && ids[0] == 1 && ids[1] == 5);
        free(ids);
    }
    qb_tok_free(t);
}

int main(void)
{
    RUN(test_corpus_fails_cleanly);
    RUN(test_controls_load);
    return check_summary();
}
