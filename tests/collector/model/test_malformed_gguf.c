/* test_malformed_gguf: every file in tests/malformed/gguf/ (written by make_gguf.py) fails to
 * load through qb_model_load with a message naming it and saying what is wrong; the unbroken
 * control from the same generator loads. Run from the repository root. */
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

#define DIR_PATH "tests/malformed/gguf"

/* What each message must say (NULL: only the path; another loader handles the file). */
static const struct {
    const char *file, *says;
} cases[] = {
    {"empty.gguf", NULL},
    {"wrong-magic.gguf", "not a GGUF file"},
    {"version-1.gguf", "GGUF version 1 is not supported"},
    {"version-4.gguf", "GGUF version 4 is not supported"},
    {"big-endian.gguf", "big-endian"},
    {"truncated-header.gguf", "file ends inside the header"},
    {"truncated-metadata.gguf", "file ends inside metadata 'llama.context_length'"},
    {"string-past-end.gguf", "string of 1099511627776 bytes"},
    {"huge-array-count.gguf", "metadata 'tokenizer.ggml.scores' claims 4611686018427387904"},
    {"huge-string-array.gguf", "metadata 'tokenizer.ggml.tokens' claims"},
    {"nested-array.gguf", "array of arrays"},
    {"unknown-value-type.gguf", "metadata 'x' has unknown value type 13"},
    {"absurd-n-kv.gguf", "metadata entries, more than the file can hold"},
    {"absurd-n-tensors.gguf", "tensors, more than the file can hold"},
    {"duplicate-key.gguf", "metadata key 'llama.block_count' appears twice"},
    {"n-dims-5.gguf", "tensor 'output_norm.weight' has 5 dimensions"},
    {"ne-product-overflow.gguf", "tensor 'output_norm.weight' has more elements than fit"},
    {"ne-negative.gguf", "tensor 'output_norm.weight' has 9223372036854775808 elements"},
    {"tensor-offset-past-end.gguf", "tensor 'blk.0.ffn_up.weight' starts at offset"},
    {"tensor-ends-past-end.gguf", "tensor 'blk.0.ffn_up.weight' (512 bytes at offset"},
    {"tensor-offset-unaligned.gguf", "not a multiple of the alignment 32"},
    {"data-section-missing.gguf", "ends past the end of the file"},
    {"bad-alignment.gguf", "general.alignment is 3, not a power of two"},
    {"zero-alignment.gguf", "general.alignment is 0, not a power of two"},
    {"duplicate-tensor.gguf", "tensor 'blk.0.attn_q.weight' appears twice"},
    {"tensor-name-nul.gguf", "contains a NUL byte"},
    {"tensor-name-long.gguf", "has a name of 300 bytes"},
    {"partial-q8-block.gguf", "of type q8_0 has rows of 8 elements, not whole blocks of 32"},
    {"unsupported-tensor-type.gguf", "tensor 'token_embd.weight' has type i8"},
    {"unknown-tensor-type.gguf", "tensor 'blk.0.attn_q.weight' has unknown ggml type 200"},
    {"missing-token-embd.gguf", "tensor 'token_embd.weight' is missing"},
    {"missing-attn-v.gguf", "tensor 'blk.0.attn_v.weight' is missing"},
    {"wrong-tensor-shape.gguf",
     "tensor 'blk.0.attn_k.weight' has shape [8, 4] but the model needs [4, 8]"},
    {"missing-architecture.gguf", "metadata 'general.architecture' is missing"},
    {"unsupported-architecture.gguf", "architecture 'gpt2' is not supported"},
    {"missing-context-length.gguf", "metadata 'llama.context_length' is missing"},
    {"metadata-wrong-type.gguf", "metadata 'llama.embedding_length' is a string"},
    {"kv-heads-not-dividing.gguf", "key/value heads do not divide"},
    {"eps-nan.gguf", "epsilon"},
    {"tokenizer-size-mismatch.gguf", "the tokenizer has 3 tokens but the model's vocabulary"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static void test_each_case_says_what_is_wrong(void)
{
    for (size_t i = 0; i < N_CASES; i++) {
        char path[512];
        struct qb_model *m = NULL;
        int rc, ok;
        snprintf(path, sizeof path, "%s/%s", DIR_PATH, cases[i].file);
        rc = qb_model_load(path, NULL, &m);
        ok = rc < 0 && m == NULL && strstr(qb_errmsg(), path) &&
             (!cases[i].says || strstr(qb_errmsg(), cases[i].says));
        printf("  %-32s -> %s\n", cases[i].file, qb_errmsg());
        if (!ok)
            fprintf(stderr, "  %s: rc %d, expected a message with '%s'\n", cases[i].file, rc,
                    cases[i].says ? cases[i].says : path);
        CHECK(ok);
        qb_model_free(m);
    }
}

static int load_model(const char *path)
{
    struct qb_model *m = NULL;
    int rc = qb_model_load(path, NULL, &m);
    qb_model_free(m);
    return rc;
}

/* Files added to the folder without an entry above still must fail cleanly. */
static void test_whole_folder_fails_cleanly(void)
{
    CHECK(check_corpus(DIR_PATH, "", load_model) >= (int)N_CASES);
}

static void test_control_loads(void)
{
    struct qb_model *m = NULL;
    int rc = qb_model_load("tests/malformed/valid/gguf.gguf", NULL, &m);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0);
    if (m) {
        CHECK(m->cfg.dim == 8 && m->cfg.hidden_dim == 16 && m->cfg.n_layers == 1);
        CHECK(m->cfg.n_heads == 2 && m->cfg.n_kv_heads == 1 && m->cfg.head_dim == 4);
        CHECK(m->cfg.vocab_size == 8 && m->cfg.max_seq_len == 16);
        CHECK(m->cfg.tied_embeddings && m->output == m->tok_embd);
        CHECK(m->tok == NULL && m->n_tensors == 11);
        CHECK(m->layers[0].wq[1] == -0.5f); /* 0.25 * ((i % 7) - 3) */
    }
    qb_model_free(m);
}

/* The control with an embedded tokenizer: tokenizer.ggml.* reaches qb_tok_from_vocab. */
static void test_control_with_tokenizer_loads(void)
{
    struct qb_model *m = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = qb_model_load("tests/malformed/valid/gguf-tokenizer.gguf", NULL, &m);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0);
    if (!m)
        return;
    CHECK(m->tok != NULL);
    if (m->tok) {
        CHECK(qb_tok_n_vocab(m->tok) == 8 && qb_tok_kind(m->tok) == QB_TOK_SPM);
        CHECK(qb_tok_bos(m->tok) == 1 && qb_tok_eos(m->tok) == 2);
        CHECK(qb_tok_encode(m->tok, "a b", 3, QB_TOK_DEFAULT, &ids, &n) == 0);
        CHECK(n == 3 && ids && ids[0] == 1 && ids[1] == 3 && ids[2] == 4); /* <s> ▁a ▁b */
        free(ids);
    }
    qb_model_free(m);
}

int main(void)
{
    RUN(test_each_case_says_what_is_wrong);
    RUN(test_whole_folder_fails_cleanly);
    RUN(test_control_loads);
    RUN(test_control_with_tokenizer_loads);
    return check_summary();
}
