/* test_tokenizer_file: qb_model_tokenizer_file, the one choice of a model's tokenizer file,
 * takes its candidates in the documented order (model.h): --tokenizer over everything, GGUF
 * none of its own, HF DIR/tokenizer.json, llama2.c tok<vocab>.bin before tokenizer.bin
 * beside the file; a model read from memory looks nowhere. The last test loads the real
 * stories260K.bin through qb_model_load and needs ../shared/models (skips without it). */
#include "tests/check.h"

#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static void touch(const char *name)
{
    char p[640];
    FILE *f;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f)
        fclose(f);
}

/* The file picked for (model, format), relative to dir ("" when none). */
static const char *pick(const char *model, const char *format, int64_t vocab, const char *override)
{
    static char got[640];
    char mp[640];
    char *out = (char *)1;
    struct qb_load_opts o = {.tokenizer_path = override};
    snprintf(mp, sizeof mp, "%s/%s", dir, model);
    CHECK(qb_model_tokenizer_file(model ? mp : NULL, format, vocab, &o, &out) == 0);
    if (!out)
        return "";
    snprintf(got, sizeof got, "%s", !strncmp(out, dir, strlen(dir)) ? out + strlen(dir) + 1 : out);
    free(out);
    return got;
}

static void test_llama2c_order(void)
{
    touch("m.bin");
    CHECK(!strcmp(pick("m.bin", "llama2c", 512, NULL), ""));
    touch("tokenizer.bin");
    CHECK(!strcmp(pick("m.bin", "llama2c", 512, NULL), "tokenizer.bin"));
    touch("tok512.bin");
    CHECK(!strcmp(pick("m.bin", "llama2c", 512, NULL), "tok512.bin"));
    /* the vocabulary names the file: another size falls back to tokenizer.bin */
    CHECK(!strcmp(pick("m.bin", "llama2c", 32000, NULL), "tokenizer.bin"));
    /* --tokenizer wins over both */
    CHECK(!strcmp(pick("m.bin", "llama2c", 512, "/x/t.json"), "/x/t.json"));
    /* from memory: nothing beside it */
    CHECK(!strcmp(pick(NULL, "llama2c", 512, NULL), ""));
    CHECK(!strcmp(pick(NULL, "llama2c", 512, "/x/t.bin"), "/x/t.bin"));
}

static void test_hf_and_gguf(void)
{
    char sub[640];
    snprintf(sub, sizeof sub, "%s/hf", dir);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(!strcmp(pick("hf", "hf", 100, NULL), ""));
    touch("hf/tokenizer.json");
    CHECK(!strcmp(pick("hf", "hf", 100, NULL), "hf/tokenizer.json"));
    CHECK(!strcmp(pick("hf", "hf", 100, "/x/tok512.bin"), "/x/tok512.bin"));
    /* GGUF carries its own: a tokenizer.json or tokenizer.bin beside it is not taken */
    touch("g.gguf");
    CHECK(!strcmp(pick("g.gguf", "gguf", 512, NULL), ""));
    CHECK(!strcmp(pick("g.gguf", "gguf", 512, "/x/t.json"), "/x/t.json"));
}

/* stories260K.bin has tok512.bin beside it: loaded without --tokenizer, it gets that one;
 * a tokenizer.json named with --tokenizer goes to the HF reader by its name. */
static void test_load_beside(void)
{
    const char *model = qb_shared_path("models/stories260K/stories260K.bin");
    struct qb_model *m = NULL;
    struct qb_tokenizer *t = NULL;
    CHECK(qb_model_load(model, NULL, &m) == 0);
    CHECK(m && m->tok && qb_tok_n_vocab(m->tok) == 512);
    qb_model_free(m);
    char tj[640];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    FILE *f = fopen(tj, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("not json", f);
        fclose(f);
    }
    struct qb_load_opts o = {.tokenizer_path = tj};
    CHECK(qb_model_load(model, &o, &m) == QB_EFORMAT);
    CHECK(strstr(qb_errmsg(), "tokenizer.json") != NULL);
    CHECK(qb_tok_load_file(tj, 0, &t) == QB_EFORMAT);
    CHECK(t == NULL);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", check_tmpdir());
    RUN(test_llama2c_order);
    RUN(test_hf_and_gguf);
    if (qb_shared_path("models/stories260K/stories260K.bin"))
        RUN(test_load_beside);
    else
        check_skip("test_load_beside", "needs ../shared/models/stories260K");
    return check_summary();
}
