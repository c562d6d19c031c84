/* test_spm_model: SentencePiece tokenizer.model files. A tiny BPE model and a tiny Unigram
 * model (with and without remove_extra_whitespaces) are written here as protobuf bytes and
 * encoded; the Llama 2 tokenizer.model of ../shared (skipped when absent)
 * encodes 8 multilingual sentences. Every expected id list was produced by Debian's
 * python3-sentencepiece 0.1.97 (SentencePieceProcessor.encode) during development --
 * set QB_SPM_DUMP=DIR to write the tiny model there and rerun it:
 *     /usr/bin/python3 -c 'import sentencepiece as s; p = s.SentencePieceProcessor(
 *         model_file="DIR/tiny.model"); print(p.encode("abc cab"))'
 * Python is not needed to run the test. Malformed and unsupported files fail cleanly. */
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- a protobuf writer for the test model ---------- */

struct buf {
    unsigned char p[65536];
    size_t n;
};

static void put_varint(struct buf *b, uint64_t v)
{
    do {
        b->p[b->n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void put_bytes(struct buf *b, uint32_t field, const void *p, size_t n)
{
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_int(struct buf *b, uint32_t field, uint64_t v)
{
    put_varint(b, (uint64_t)field << 3);
    put_varint(b, v);
}

static void put_float(struct buf *b, uint32_t field, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    put_varint(b, (uint64_t)field << 3 | 5);
    for (int i = 0; i < 4; i++)
        b->p[b->n++] = (unsigned char)(bits >> (8 * i));
}

static void add_piece(struct buf *m, const char *s, float score, int type)
{
    struct buf p = {.n = 0};
    put_bytes(&p, 1, s, strlen(s));
    put_float(&p, 2, score);
    if (type != 1)
        put_int(&p, 3, (uint64_t)type);
    put_bytes(m, 1, p.p, p.n);
}

/* A BPE model: <unk> <s> </s>, 256 byte pieces, then merges of a, b, c and spaces.
 * model_type 2 (BPE) or 1 (Unigram); normalizer "identity" or another name. */
static void tiny_model(struct buf *m, int model_type, const char *norm, int remove_ws)
{
    static const char *const pieces[] = {"\xe2\x96\x81",
                                         "a",
                                         "b",
                                         "c",
                                         "\xe2\x96\x81"
                                         "a",
                                         "ab",
                                         "\xe2\x96\x81"
                                         "ab",
                                         "ca",
                                         "\xe2\x96\x81"
                                         "c",
                                         "abc",
                                         "\xe2\x96\x81"
                                         "abc",
                                         "\xc3\xa9"};
    struct buf t = {.n = 0}, nz = {.n = 0};
    char byte[8];

    m->n = 0;
    add_piece(m, "<unk>", 0, 2);
    add_piece(m, "<s>", 0, 3);
    add_piece(m, "</s>", 0, 3);
    for (int i = 0; i < 256; i++) {
        snprintf(byte, sizeof byte, "<0x%02X>", i);
        add_piece(m, byte, 0, 6);
    }
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        /* Unigram: scores close enough that longer pieces win some paths */
        add_piece(m, pieces[i], model_type == 1 ? -1.0f - 0.5f * (float)i : -(float)i, 1);
    put_int(&t, 3, (uint64_t)model_type);
    put_int(&t, 4, 271);
    put_int(&t, 35, 1); /* byte_fallback */
    put_int(&t, 40, 0);
    put_int(&t, 41, 1);
    put_int(&t, 42, 2);
    put_int(&t, 43, (uint64_t)-1); /* pad_id -1: a 10-byte varint */
    put_bytes(m, 2, t.p, t.n);
    put_bytes(&nz, 1, norm, strlen(norm));
    put_int(&nz, 3, 1);
    put_int(&nz, 4, (uint64_t)remove_ws);
    put_bytes(m, 3, nz.p, nz.n);
}

/* The tiny Unigram model's ids from python3-sentencepiece 0.1.97 (pieces in comments) */
#define UNI_ABC_CAB 269, 259, 262, 264 /* ▁abc ▁ c ab */
#define UNI_ABC_CAB_N 4
#define UNI_AB_A_B 265, 259, 260, 259, 261 /* ▁ab ▁ a ▁ b */
#define UNI_AB_A_B_N 5
#define UNI_CAFE 259, 262, 260, 105, 270, 259, 123 /* ▁ c a <0x66> é ▁ <0x78> */
#define UNI_CAFE_N 7
#define UNI_SPACES 259, 259, 265, 259, 259, 262, 259 /* ▁ ▁ ▁ab ▁ ▁ c ▁ */
#define UNI_SPACES_N 7
#define UNI_SPACES_WS 265, 259, 262 /* remove_extra_whitespaces: ▁ab ▁ c */
#define UNI_SPACES_WS_N 3

static int encode(struct qb_tokenizer *t, const char *s, const int32_t *want, int n)
{
    int32_t *ids = NULL;
    int64_t k = 0;
    int ok = qb_tok_encode(t, s, strlen(s), QB_TOK_NO_BOS, &ids, &k) == 0 && k == n &&
             !memcmp(ids, want, (size_t)n * sizeof *ids);
    if (!ok) {
        fprintf(stderr, "  \"%s\":", s);
        for (int64_t i = 0; i < k; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

static void test_tiny_bpe(void)
{
    static struct buf m;
    struct qb_tokenizer *t = NULL;
    const char *dump = getenv("QB_SPM_DUMP");

    tiny_model(&m, 2, "identity", 0);
    if (dump) {
        char path[1024];
        FILE *f;
        snprintf(path, sizeof path, "%s/tiny.model", dump);
        if ((f = fopen(path, "wb"))) {
            fwrite(m.p, 1, m.n, f);
            fclose(f);
        }
    }
    CHECK(qb_tok_load_spm_model_mem(m.p, m.n, "tiny.model", &t) == 0);
    if (!t) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        return;
    }
    CHECK(qb_tok_n_vocab(t) == 271 && qb_tok_bos(t) == 1 && qb_tok_eos(t) == 2);
    /* python3-sentencepiece 0.1.97 on the same bytes: ▁abc ▁c ab; ▁ab ▁a ▁ b; ▁ ca <0x66>
     * é ▁ <0x78> (byte fallback for f and x, which have no piece) */
    CHECK(encode(t, "abc cab", (int32_t[]){269, 267, 264}, 3));
    CHECK(encode(t, "ab a b", (int32_t[]){265, 263, 259, 261}, 4));
    CHECK(encode(t, "caf\xc3\xa9 x", (int32_t[]){259, 266, 105, 270, 259, 123}, 6));
    qb_tok_free(t);
}

/* the same pieces as a Unigram model: the path of highest total score */
static void test_tiny_unigram(void)
{
    static struct buf m;
    struct qb_tokenizer *t = NULL;
    const char *dump = getenv("QB_SPM_DUMP");

    for (int ws = 0; ws < 2; ws++) {
        tiny_model(&m, 1, "identity", ws);
        if (dump) {
            char path[1024];
            FILE *f;
            snprintf(path, sizeof path, "%s/unigram%d.model", dump, ws);
            if ((f = fopen(path, "wb"))) {
                fwrite(m.p, 1, m.n, f);
                fclose(f);
            }
        }
        CHECK(qb_tok_load_spm_model_mem(m.p, m.n, "uni.model", &t) == 0);
        if (!t) {
            fprintf(stderr, "  %s\n", qb_errmsg());
            return;
        }
        /* python3-sentencepiece 0.1.97 on the same bytes */
        if (!ws) {
            CHECK(encode(t, "abc cab", (int32_t[]){UNI_ABC_CAB}, UNI_ABC_CAB_N));
            CHECK(encode(t, "ab a b", (int32_t[]){UNI_AB_A_B}, UNI_AB_A_B_N));
            CHECK(encode(t, "caf\xc3\xa9 x", (int32_t[]){UNI_CAFE}, UNI_CAFE_N));
            CHECK(encode(t, "  ab  c ", (int32_t[]){UNI_SPACES}, UNI_SPACES_N));
        } else {
            CHECK(encode(t, "  ab  c ", (int32_t[]){UNI_SPACES_WS}, UNI_SPACES_WS_N));
            CHECK(encode(t, "abc cab", (int32_t[]){UNI_ABC_CAB}, UNI_ABC_CAB_N));
        }
        qb_tok_free(t);
        t = NULL;
    }
}

static void test_refused(void)
{
    static struct buf m;
    struct qb_tokenizer *t = NULL;
    static const unsigned char junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};

    tiny_model(&m, 3, "identity", 0);
    CHECK(qb_tok_load_spm_model_mem(m.p, m.n, "word.model", &t) == QB_EUNSUP && !t);
    CHECK(strstr(qb_errmsg(), "word.model") && strstr(qb_errmsg(), "type 3"));
    tiny_model(&m, 2, "nmt_nfkc", 0);
    CHECK(qb_tok_load_spm_model_mem(m.p, m.n, "nfkc.model", &t) == QB_EUNSUP && !t);
    CHECK(strstr(qb_errmsg(), "nmt_nfkc"));
    tiny_model(&m, 2, "identity", 1);
    CHECK(qb_tok_load_spm_model_mem(m.p, m.n, "ws.model", &t) == QB_EUNSUP && !t);
    CHECK(qb_tok_load_spm_model_mem(junk, sizeof junk, "junk.model", &t) == QB_EFORMAT && !t);
    CHECK(strstr(qb_errmsg(), "junk.model") != NULL);
    /* every truncation of a valid model fails cleanly or loads, never crashes */
    tiny_model(&m, 2, "identity", 0);
    for (size_t n = 0; n < m.n; n += 7) {
        int rc = qb_tok_load_spm_model_mem(m.p, n, "cut.model", &t);
        CHECK(rc == 0 || rc == QB_EFORMAT || rc == QB_EUNSUP);
        qb_tok_free(t);
        t = NULL;
    }
}

#include "tests/collector/tokenizer/spm_golden.h"

static void test_llama2_model(void)
{
    const char *path = qb_shared_path("models/llama2-tokenizer/tokenizer.model");
    struct qb_tokenizer *t = NULL;
    int ok = 0;

    CHECK(qb_tok_load_file(path, 0, &t) == 0);
    if (!t) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        return;
    }
    CHECK(qb_tok_n_vocab(t) == 32000 && qb_tok_bos(t) == 1 && qb_tok_eos(t) == 2);
    for (size_t i = 0; i < SPM_N_GOLDEN; i++) {
        int good = encode(t, spm_golden[i].text, spm_golden[i].ids, spm_golden[i].n);
        CHECK(good);
        ok += good;
    }
    printf("# llama2 tokenizer.model: %d of %zu sentences give sentencepiece's ids\n", ok,
           (size_t)SPM_N_GOLDEN);
    qb_tok_free(t);
}

int main(void)
{
    RUN(test_tiny_bpe);
    RUN(test_tiny_unigram);
    RUN(test_refused);
    if (qb_shared_path("models/llama2-tokenizer/tokenizer.model"))
        RUN(test_llama2_model);
    else
        SKIP(test_llama2_model, "needs ../shared/models/llama2-tokenizer/tokenizer.model");
    return check_summary();
}
