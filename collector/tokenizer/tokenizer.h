/* tokenizer: text <-> token ids for every tokenizer qbrief loads.
 *
 * Two algorithms behind one interface:
 *  - QB_TOK_SPM: SentencePiece-style BPE driven by piece scores, with byte fallback
 *    (<0xAB> pieces). Used by llama2.c tokenizer.bin and GGUF `tokenizer.ggml.model = llama`.
 *    Pieces are stored with U+2581 ("▁") for spaces whatever the source spelled.
 *  - QB_TOK_BPE: merge-rank BPE (GGUF `gpt2`, HF tokenizer.json BPE), with the HF
 *    normalizers / pre-tokenizers / decoders that Llama, Mistral and Qwen ship.
 *
 *     struct qb_tokenizer *t;
 *     if ((rc = qb_tok_load_llama2c("tok512.bin", 512, &t)) < 0) ...;
 *     int32_t *ids; int64_t n;
 *     qb_tok_encode(t, "Hello world", 11, QB_TOK_BOS, &ids, &n);   // ids owned by caller
 *     char buf[256];
 *     size_t k = qb_tok_decode_piece(t, prev_id, ids[i], buf, sizeof buf); // streaming
 *     free(ids); qb_tok_free(t);
 */
#ifndef QB_TOKENIZER_H
#define QB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

struct qb_tokenizer;

enum qb_tok_kind { QB_TOK_SPM, QB_TOK_BPE };

/* Token types as GGUF numbers them (tokenizer.ggml.token_type). */
enum qb_tok_type {
    QB_TT_NORMAL = 1,
    QB_TT_UNKNOWN = 2,
    QB_TT_CONTROL = 3,
    QB_TT_USER_DEFINED = 4,
    QB_TT_UNUSED = 5,
    QB_TT_BYTE = 6,
};

/* Flags for qb_tok_encode. QB_TOK_DEFAULT adds BOS/EOS as the tokenizer's config says. */
enum {
    QB_TOK_DEFAULT = 0,
    QB_TOK_BOS = 1,        /* force a BOS */
    QB_TOK_NO_BOS = 2,     /* never a BOS */
    QB_TOK_EOS = 4,        /* append EOS */
    QB_TOK_NO_SPECIAL = 8, /* treat special-token text as plain text */
};

/* llama2.c tokenizer.bin: int32 max_token_length, then per token float score, int32 len,
 * bytes. n_vocab comes from the model header (the file does not store it); 0 reads records
 * to the end of the file. */
int qb_tok_load_llama2c(const char *path, int64_t n_vocab, struct qb_tokenizer **out);

/* HF tokenizer.json (BPE model). */
int qb_tok_load_hf(const char *path, struct qb_tokenizer **out);

/* SentencePiece tokenizer.model (protobuf; BPE models with the identity normalizer: Llama 2,
 * Mistral), read by collector/tokenizer/spm_model.c. The _mem variant reads size bytes;
 * path names them in messages. */
int qb_tok_load_spm_model(const char *path, struct qb_tokenizer **out);
int qb_tok_load_spm_model_mem(const void *data, size_t size, const char *path,
                              struct qb_tokenizer **out);

/* A tokenizer file read by its name: "*.json" as HF tokenizer.json, "*.model" as a
 * SentencePiece model, anything else as a llama2.c tokenizer.bin of n_vocab records (0: to
 * the end of the file). Which file a
 * model uses is decided by qb_model_tokenizer_file (collector/model/model.h). */
int qb_tok_load_file(const char *path, int64_t n_vocab, struct qb_tokenizer **out);
/* The same from len bytes of JSON in memory (need not be NUL-terminated); `name` names
 * it in messages. For tests and the fuzz harness. */
int qb_tok_load_hf_mem(const char *json, size_t len, const char *name, struct qb_tokenizer **out);

/* Builds a tokenizer from GGUF-style arrays (the GGUF loader calls this). model is
 * "llama" or "gpt2"; scores/types/merges may be NULL where the format does not have
 * them; pre is tokenizer.ggml.pre (may be NULL). Strings are copied. `src` names the file
 * in messages. Special ids < 0 mean absent. */
struct qb_tok_vocab {
    const char *model;
    const char *pre;
    int64_t n_vocab;
    const char *const *pieces;
    const size_t *piece_lens;
    const float *scores;
    const int32_t *types;
    int64_t n_merges;
    const char *const *merges; /* "a b" */
    const size_t *merge_lens;
    int32_t bos_id, eos_id, unk_id, pad_id;
    int add_bos, add_eos; /* -1: the model's default */
    int add_space_prefix; /* -1: default (1 for llama) */
    int remove_extra_ws;  /* unigram: SentencePiece's remove_extra_whitespaces (0: off) */
};
int qb_tok_from_vocab(const struct qb_tok_vocab *v, const char *src, struct qb_tokenizer **out);
/* The inverse (collector/tokenizer/vocab_out.c), for writing GGUF: fills v from t. Pieces,
 * scores and types are borrowed from t; the arrays it allocates (and the merges, "a b" in
 * rank order, for BPE) are freed by qb_tok_vocab_release. v->pre is llama.cpp's name of the
 * pre-tokenizer; a BPE pipeline llama.cpp has no name for is QB_EUNSUP. */
int qb_tok_to_vocab(const struct qb_tokenizer *t, struct qb_tok_vocab *v);
void qb_tok_vocab_release(struct qb_tok_vocab *v);

void qb_tok_free(struct qb_tokenizer *t);

enum qb_tok_kind qb_tok_kind(const struct qb_tokenizer *t);
int64_t qb_tok_n_vocab(const struct qb_tokenizer *t);
int32_t qb_tok_bos(const struct qb_tokenizer *t); /* -1 when none */
int32_t qb_tok_eos(const struct qb_tokenizer *t); /* -1 when none */
int qb_tok_adds_bos(const struct qb_tokenizer *t);

/* The raw piece as stored ("▁the", "<0x0A>", "Ġthe"); NULL if id is out of range. */
const char *qb_tok_piece(const struct qb_tokenizer *t, int32_t id, size_t *len);

/* Encodes len bytes of text (need not be NUL-terminated). *ids is malloc'd. Special-token
 * text (HF added tokens, GGUF control tokens) becomes that token unless QB_TOK_NO_SPECIAL;
 * asking for a BOS/EOS the tokenizer does not have is QB_EINVAL. */
int qb_tok_encode(const struct qb_tokenizer *t, const char *text, size_t len, int flags,
                  int32_t **ids, int64_t *n);

/* The bytes token `id` contributes to the text when it follows `prev` (-1 at the start):
 * spaces restored, byte tokens turned into bytes, the leading space of the first piece
 * dropped as SentencePiece does; control tokens (BOS/EOS) give nothing. Writes at most
 * cap bytes and returns how many the piece has (may exceed cap, like snprintf). */
size_t qb_tok_decode_piece(const struct qb_tokenizer *t, int32_t prev, int32_t id, char *buf,
                           size_t cap);

/* Decodes a whole sequence into a malloc'd NUL-terminated string: the decode_piece
 * bytes one after another (raw bytes, never U+FFFD for a split character). */
int qb_tok_decode(const struct qb_tokenizer *t, const int32_t *ids, int64_t n, char **text,
                  size_t *len);

#endif
