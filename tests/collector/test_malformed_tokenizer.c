/* test_malformed_tokenizer: every file in tests/malformed/tokenizer/ (written by
 * make_tokenizer.py) fails to load with a message naming it: *.json through
 * qb_tok_load_hf, *.bin through qb_tok_load_llama2c with 4 tokens. The unbroken controls
 * in tests/malformed/valid/ load and tokenize (the .bin has 6 tokens). */
#include "collector/err.h"
#include "collector/tokenizer.h"
#include "tests/check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define DIR_PATH "tests/malformed/tokenizer"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void test_corpus_fails_cleanly(void)
{
    DIR *d = opendir(DIR_PATH);
    struct dirent *de;
    int n_json = 0, n_bin = 0;
    CHECK(d != NULL);
    if (!d)
        return;
    while ((de = readdir(d))) {
        char path[512];
        struct qb_tokenizer *t = NULL;
        int rc;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", DIR_PATH, de->d_name);
        if (ends_with(de->d_name, ".json")) {
            rc = qb_tok_load_hf(path, &t);
            n_json++;
        } else if (ends_with(de->d_name, ".bin")) {
            rc = qb_tok_load_llama2c(path, 4, &t);
            n_bin++;
        } else {
            continue;
        }
        printf("  %-34s -> %s\n", de->d_name, qb_errmsg());
        CHECK(rc < 0 && t == NULL);
        CHECK(rc == QB_EFORMAT || rc == QB_EUNSUP);
        CHECK(strstr(qb_errmsg(), path) != NULL);
        qb_tok_free(t);
    }
    closedir(d);
    CHECK(n_json >= 40 && n_bin >= 8);
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
