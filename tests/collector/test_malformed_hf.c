/* test_malformed_hf: every file in tests/malformed/safetensors/ and every directory in
 * tests/malformed/hf/ (written by make_hf.py) fails to load with a message naming the file;
 * the unbroken controls in tests/malformed/valid/ load. Run from the repository root. */
#include "collector/err.h"
#include "collector/model.h"
#include "collector/safetensors.h"
#include "tests/check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define ST_DIR "tests/malformed/safetensors"
#define HF_DIR "tests/malformed/hf"

/* A clean refusal: a format, support or I/O error, never a crash, OOM or success. */
static int clean_rc(int rc)
{
    return rc == QB_EFORMAT || rc == QB_EUNSUP || rc == QB_EIO;
}

static void test_safetensors_corpus(void)
{
    DIR *d = opendir(ST_DIR);
    struct dirent *de;
    int n = 0;
    CHECK(d != NULL);
    if (!d)
        return;
    while ((de = readdir(d))) {
        char path[512];
        struct qb_st_file *f = NULL;
        int rc;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", ST_DIR, de->d_name);
        rc = qb_st_open(path, &f);
        printf("  %-44s -> %s\n", de->d_name, qb_errmsg());
        if (!clean_rc(rc) || f || !strstr(qb_errmsg(), path)) {
            fprintf(stderr, "  %s: rc %d\n", path, rc);
            check_fail(__FILE__, __LINE__, "safetensors case refused cleanly");
        }
        qb_st_free(f);
        n++;
    }
    closedir(d);
    CHECK(n >= 20);
}

static void test_hf_corpus(void)
{
    DIR *d = opendir(HF_DIR);
    struct dirent *de;
    int n = 0;
    CHECK(d != NULL);
    if (!d)
        return;
    while ((de = readdir(d))) {
        char path[512], inside[520];
        struct qb_model *m = NULL;
        int rc;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", HF_DIR, de->d_name);
        snprintf(inside, sizeof inside, "'%s/", path); /* the message quotes a file in it */
        rc = qb_model_load(path, NULL, &m);
        printf("  %-32s -> %s\n", de->d_name, qb_errmsg());
        if (!clean_rc(rc) || m || !strstr(qb_errmsg(), inside)) {
            fprintf(stderr, "  %s: rc %d\n", path, rc);
            check_fail(__FILE__, __LINE__, "model directory refused cleanly");
        }
        qb_model_free(m);
        n++;
    }
    closedir(d);
    CHECK(n >= 30);
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
