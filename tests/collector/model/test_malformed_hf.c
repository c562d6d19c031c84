/* test_malformed_hf: every file in tests/malformed/safetensors/ and every directory in
 * tests/malformed/hf/ (written by make_hf.py) fails to load with a message naming the file;
 * the unbroken controls in tests/malformed/valid/ load. Run from the repository root. */
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/model/safetensors.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

#define ST_DIR "tests/malformed/safetensors"
#define HF_DIR "tests/malformed/hf"

static int load_st(const char *path)
{
    struct qb_st_file *f = NULL;
    int rc = qb_st_open(path, &f);
    qb_st_free(f);
    return rc;
}

static int load_model(const char *path)
{
    struct qb_model *m = NULL;
    int rc = qb_model_load(path, NULL, &m);
    qb_model_free(m);
    return rc;
}

static void test_safetensors_corpus(void)
{
    CHECK(check_corpus(ST_DIR, "", load_st) >= 20);
}

/* the messages quote a file inside each directory */
static void test_hf_corpus(void)
{
    CHECK(check_corpus(HF_DIR, "", load_model) >= 30);
}

static void test_controls_load(void)
{
    struct qb_model *m = NULL;
    struct qb_st_file *f = NULL;

    CHECK(qb_model_load("tests/malformed/valid/hf", NULL, &m) == 0);
    if (m) {
        CHECK(!strcmp(m->format, "hf") && !strcmp(m->cfg.arch, "llama"));
        CHECK(m->cfg.dim == 4 && m->cfg.n_kv_heads == 1 && m->cfg.vocab_size == 8);
        CHECK(m->cfg.norm_eps == 1e-5f && m->output != m->tok_embd && m->tok == NULL);
        CHECK(m->layers[0].wq[1] == 0.25f * ((2 + 1) % 7 - 3)); /* the generator's values */
    } else {
        fprintf(stderr, "  %s\n", qb_errmsg());
    }
    qb_model_free(m);
    CHECK(qb_st_open("tests/malformed/valid/tiny.safetensors", &f) == 0);
    CHECK(f && f->n_tensors == 3 && f->tensors[0].dtype == QB_DT_F16);
    CHECK(f && qb_st_meta(f, "format") && !strcmp(qb_st_meta(f, "format"), "pt"));
    qb_st_free(f);
}

int main(void)
{
    RUN(test_safetensors_corpus);
    RUN(test_hf_corpus);
    RUN(test_controls_load);
    return check_summary();
}
