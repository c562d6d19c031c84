/* test_malformed_llama2c: every file in tests/malformed/llama2c/ (written by
 * make_llama2c.py) fails to load with a message naming it; the unbroken control loads. */
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

#define DIR_PATH "tests/malformed/llama2c"

static int load_model(const char *path)
{
    struct qb_model *m = NULL;
    int rc = qb_model_load(path, NULL, &m);
    qb_model_free(m);
    return rc;
}

static void test_corpus_fails_cleanly(void)
{
    CHECK(check_corpus(DIR_PATH, "", load_model) >= 10);
}

static void test_control_loads(void)
{
    struct qb_model *m = NULL;
    CHECK(qb_model_load("tests/malformed/valid/llama2c.bin", NULL, &m) == 0);
    if (m) {
        CHECK(m->cfg.dim == 8 && m->cfg.n_kv_heads == 1 && m->cfg.vocab_size == 4);
        CHECK(m->tok == NULL);
    }
    qb_model_free(m);
}

int main(void)
{
    RUN(test_corpus_fails_cleanly);
    RUN(test_control_loads);
    return check_summary();
}
