/* test_spm_dir: a Hugging Face directory with SentencePiece's tokenizer.model and no
 * tokenizer.json (as many Llama 2 and Mistral checkpoints ship) gets that tokenizer: a tiny
 * random Llama of 32000 tokens is written here beside a link to the Llama 2 tokenizer.model
 * of ../shared (skipped when absent), loaded with qb_model_load, and its tokenizer encodes
 * the 8 sentences of spm_golden.h to sentencepiece's ids. tokenizer.json wins when both are
 * there (model.h's order). */
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "tests/check.h"
#include "tests/collector/tokenizer/spm_golden.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { D = 8, HID = 16, V = 32000 };

/* config.json and model.safetensors of a one-layer Llama, every weight 0.01 */
static void write_model(const char *dir)
{
    static const struct {
        const char *name;
        int64_t d0, d1;
    } t[] = {
        {"model.embed_tokens.weight", V, D},
        {"model.norm.weight", D, 0},
        {"model.layers.0.input_layernorm.weight", D, 0},
        {"model.layers.0.self_attn.q_proj.weight", D, D},
        {"model.layers.0.self_attn.k_proj.weight", D, D},
        {"model.layers.0.self_attn.v_proj.weight", D, D},
        {"model.layers.0.self_attn.o_proj.weight", D, D},
        {"model.layers.0.post_attention_layernorm.weight", D, 0},
        {"model.layers.0.mlp.gate_proj.weight", HID, D},
        {"model.layers.0.mlp.up_proj.weight", HID, D},
        {"model.layers.0.mlp.down_proj.weight", D, HID},
    };
    char path[1100], hdr[4096];
    size_t len = 0, off = 0;
    uint64_t hlen;
    FILE *f;

    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK((f = fopen(path, "w")) != NULL);
    if (!f)
        return;
    fprintf(f,
            "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":%d,"
            "\"intermediate_size\":%d,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
            "\"vocab_size\":%d,\"tie_word_embeddings\":true}\n",
            D, HID, V);
    fclose(f);
    len += (size_t)snprintf(hdr, sizeof hdr, "{");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t bytes = (size_t)(t[i].d0 * (t[i].d1 ? t[i].d1 : 1)) * 4;
        len += (size_t)snprintf(hdr + len, sizeof hdr - len,
                                "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld%s%.0lld],"
                                "\"data_offsets\":[%zu,%zu]}",
                                i ? "," : "", t[i].name, (long long)t[i].d0, t[i].d1 ? "," : "",
                                (long long)t[i].d1, off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    hlen = len;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK((f = fopen(path, "wb")) != NULL);
    if (!f)
        return;
    fwrite(&hlen, 8, 1, f);
    fwrite(hdr, 1, len, f);
    for (size_t i = 0; i < off / 4; i++) {
        float x = 0.01f;
        fwrite(&x, 4, 1, f);
    }
    fclose(f);
}

static void test_hf_dir_with_tokenizer_model(void)
{
    const char *spm = qb_shared_path("models/llama2-tokenizer/tokenizer.model");
    char dir[1024], link[1100], real[PATH_MAX];
    struct qb_model *m = NULL;
    int ok = 0;

    snprintf(dir, sizeof dir, "%s/llama2-spm", check_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    write_model(dir);
    snprintf(link, sizeof link, "%s/tokenizer.model", dir);
    CHECK(realpath(spm, real) != NULL && symlink(real, link) == 0);
    if (qb_model_load(dir, NULL, &m) < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(m && m->tok);
    if (!m || !m->tok)
        goto out;
    CHECK(qb_tok_n_vocab(m->tok) == V && qb_tok_adds_bos(m->tok));
    for (int i = 0; i < SPM_N_GOLDEN; i++) {
        int32_t *ids = NULL;
        int64_t n = 0;
        const char *s = spm_golden[i].text;
        int good = qb_tok_encode(m->tok, s, strlen(s), QB_TOK_NO_BOS, &ids, &n) == 0 &&
                   n == spm_golden[i].n && !memcmp(ids, spm_golden[i].ids, (size_t)n * sizeof *ids);
        CHECK(good);
        ok += good;
        free(ids);
    }
    printf("# HF directory with only tokenizer.model: %d of %d sentences give sentencepiece's "
           "ids\n",
           ok, SPM_N_GOLDEN);
out:
    qb_model_free(m);
}

static void test_json_wins(void)
{
    char dir[1024], p[1100];
    char *out = NULL;
    FILE *f;

    snprintf(dir, sizeof dir, "%s/both", check_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(p, sizeof p, "%s/tokenizer.model", dir);
    if ((f = fopen(p, "w")))
        fclose(f);
    CHECK(qb_model_tokenizer_file(dir, "hf", 10, NULL, &out) == 0 && out &&
          strstr(out, "tokenizer.model"));
    free(out);
    out = NULL;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if ((f = fopen(p, "w")))
        fclose(f);
    CHECK(qb_model_tokenizer_file(dir, "hf", 10, NULL, &out) == 0 && out &&
          strstr(out, "tokenizer.json"));
    free(out);
}

int main(void)
{
    RUN(test_json_wins);
    if (qb_shared_path("models/llama2-tokenizer/tokenizer.model"))
        RUN(test_hf_dir_with_tokenizer_model);
    else
        SKIP(test_hf_dir_with_tokenizer_model,
             "needs ../shared/models/llama2-tokenizer/tokenizer.model");
    return check_summary();
}
