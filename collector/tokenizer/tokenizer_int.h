/* tokenizer_int: what tokenizer.c, tok_spm.c, tok_bpe.c and tok_hf.c share. Never
 * included from outside the tokenizer module.
 *
 * One struct serves every tokenizer: a vocabulary (pieces in one arena, a hash from
 * piece text to id, scores, token types), the added/special tokens matched whole in
 * the text, and for QB_TOK_BPE the merge ranks plus the HF-style pipeline
 * (normalizers -> pre-tokenizers -> model -> decoders). GGUF "gpt2" vocabularies are
 * expressed as that same pipeline (Split regex + ByteLevel). */
#ifndef QB_TOKENIZER_INT_H
#define QB_TOKENIZER_INT_H

#include "collector/tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Caps on what a file may ask for: far above every real tokenizer (Gemma: 256k pieces,
 * Qwen2: 151k merges), low enough that a hostile header cannot exhaust memory. */
#define TOK_MAX_VOCAB (1 << 24)
#define TOK_MAX_PIECE (1 << 16) /* bytes in one piece */
#define TOK_MAX_MERGES (1 << 24)
#define TOK_MAX_STAGES 64              /* normalizers, pre-tokenizers or decoders, flattened */
#define TOK_MAX_PATTERN 4096           /* bytes in one regex or string pattern */
#define TOK_MAX_TEXT ((size_t)1 << 28) /* bytes of text in one qb_tok_encode call */

/* The SentencePiece space, U+2581 "▁". */
#define TOK_SPACE "\xe2\x96\x81"
#define TOK_SPACE_LEN 3

/* The GPT-2 pre-tokenizer regex and the two later ones llama.cpp knows by name. */
extern const char tok_re_gpt2[];
extern const char tok_re_llama3[];
extern const char tok_re_qwen2[];
/* The name llama.cpp gives one of these three regexes (tokenizer.ggml.pre), or NULL. */
const char *tok_regex_gguf_name(const char *re, size_t len);

/* ---- growable id vector (encode output) ---- */
struct tok_ids {
    int32_t *v;
    int64_t n, cap;
};
int tok_ids_push(struct tok_ids *ids, int32_t id);

/* ---- piece text -> id: open addressing over the piece arena ---- */
struct tok_strmap {
    int32_t *slot; /* id, or -1 for empty */
    uint64_t mask;
};

/* ---- (left id, right id) -> merge rank and merged id ---- */
struct tok_pairmap {
    uint64_t *key; /* left << 32 | right; UINT64_MAX for empty */
    int32_t *rank;
    int32_t *id;
    uint64_t mask;
    int64_t n;
};

/* ---- priority queue of adjacent symbol pairs, shared by SPM and BPE merging ---- */
struct tok_pair {
    double key;   /* larger merges first: SPM score, BPE -rank */
    int32_t left; /* symbol index; on equal keys the leftmost merges first */
    int32_t right;
    int32_t id;    /* the merged piece */
    uint32_t size; /* bytes the merged piece spans; stale entries no longer add up */
};
struct tok_heap {
    struct tok_pair *v;
    size_t n, cap;
};
int tok_heap_push(struct tok_heap *h, struct tok_pair p);
int tok_heap_pop(struct tok_heap *h, struct tok_pair *out); /* 0 when empty */

/* A symbol during merging: a contiguous byte range of the word and its current id. */
struct tok_sym {
    int32_t prev, next;
    uint32_t start, len; /* len 0: merged into its left neighbour */
    int32_t id;
    int frozen; /* byte-fallback or unknown symbols never merge */
};

/* Applies a popped pair to the symbol list: the right symbol joins the left one. Returns 0
 * (and changes nothing) when the entry is stale, i.e. either side already merged elsewhere. */
static inline int tok_sym_merge(struct tok_sym *sym, const struct tok_pair *p)
{
    struct tok_sym *l = &sym[p->left], *r = &sym[p->right];
    if (l->len == 0 || r->len == 0 || l->next != p->right || l->len + r->len != p->size)
        return 0;
    l->len += r->len;
    l->id = p->id;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0)
        sym[r->next].prev = p->left;
    return 1;
}

/* ---- HF pipeline ---- */

/* A String or Regex pattern (tokenizer.json), or a built-in regex. */
struct tok_pattern {
    char *lit; /* String pattern when re == NULL */
    size_t lit_len;
    pcre2_code *re;
    const char *known; /* llama.cpp's pre-tokenizer name of re ("gpt-2", ...) or NULL */
};

enum tok_split_behavior {
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_PREV,
    TOK_SPLIT_MERGED_NEXT,
    TOK_SPLIT_CONTIGUOUS,
};

enum tok_norm_kind {
    TOK_NORM_PREPEND,
    TOK_NORM_REPLACE,
    TOK_NORM_NFC,
    TOK_NORM_NFKC,
    TOK_NORM_NFD,
    TOK_NORM_NFKD,
    TOK_NORM_LOWER,
    TOK_NORM_STRIP,
};
struct tok_norm {
    enum tok_norm_kind kind;
    struct tok_pattern pat; /* REPLACE */
    char *str;              /* PREPEND text, REPLACE content */
    size_t str_len;
    int left, right; /* STRIP */
};

enum tok_pre_kind { TOK_PRE_SPLIT, TOK_PRE_BYTELEVEL, TOK_PRE_METASPACE };
enum tok_prepend { TOK_PREPEND_NEVER, TOK_PREPEND_FIRST, TOK_PREPEND_ALWAYS };
struct tok_pre {
    enum tok_pre_kind kind;
    struct tok_pattern pat; /* SPLIT; BYTELEVEL with use_regex */
    enum tok_split_behavior behavior;
    int invert;
    int add_prefix_space; /* BYTELEVEL */
    int use_regex;        /* BYTELEVEL */
    char repl[8];         /* METASPACE replacement character */
    size_t repl_len;
    enum tok_prepend prepend; /* METASPACE */
    int split;                /* METASPACE */
};

enum tok_dec_kind {
    TOK_DEC_BYTELEVEL,
    TOK_DEC_METASPACE,
    TOK_DEC_REPLACE,
    TOK_DEC_BYTEFALLBACK,
    TOK_DEC_FUSE,
    TOK_DEC_STRIP,
};
struct tok_dec {
    enum tok_dec_kind kind;
    struct tok_pattern pat; /* REPLACE */
    char *str;              /* REPLACE content; STRIP content character */
    size_t str_len;
    char repl[8]; /* METASPACE */
    size_t repl_len;
    enum tok_prepend prepend;
    int64_t start, stop; /* STRIP */
};

/* A token matched whole in the text before anything else (HF added_tokens; GGUF
 * control and user-defined tokens). */
struct tok_added {
    int32_t id;
    char *s;
    size_t len;
    unsigned special : 1;     /* skipped under QB_TOK_NO_SPECIAL */
    unsigned lstrip : 1;      /* swallows whitespace on its left */
    unsigned rstrip : 1;      /* and on its right */
    unsigned single_word : 1; /* only between non-word characters */
    unsigned normalized : 1;  /* matched after normalization */
};

struct qb_tokenizer {
    enum qb_tok_kind kind;
    char *src;       /* the file, for messages */
    int64_t n_vocab; /* every id, added tokens included */
    int64_t n_model; /* ids the model itself (merges, lookups) may produce */

    /* pieces: id -> arena[off[id] .. off[id] + len[id]), NUL-terminated */
    char *arena;
    size_t arena_len, arena_cap;
    size_t *off;
    uint32_t *len;
    float *scores;  /* SPM; NULL otherwise */
    int32_t *types; /* enum qb_tok_type */
    struct tok_strmap map;
    size_t max_piece_len;

    int32_t bos, eos, unk, pad;
    int add_bos, add_eos;
    int add_space_prefix; /* SPM dummy prefix */
    int unigram;          /* SPM: SentencePiece Unigram (unigram.c) instead of score merges */
    int remove_ws;        /* Unigram: strip and collapse spaces (remove_extra_whitespaces) */
    int32_t byte_id[256]; /* the <0xAB> pieces, -1 when absent */

    /* BPE */
    struct tok_pairmap merges;
    int byte_fallback, ignore_merges, fuse_unk;
    struct tok_norm *norm;
    int n_norm;
    struct tok_pre *pre;
    int n_pre;
    struct tok_dec *dec;
    int n_dec;

    struct tok_added *added; /* longest first */
    int64_t n_added;
    /* added[by_byte[first[b] .. first[b + 1])]: the tokens starting with byte b, longest
     * first, so matching at a position looks at a few candidates, not all */
    int64_t *by_byte;
    int64_t first[257];
};

/* ---- tokenizer.c ---- */
struct qb_tokenizer *tok_new(enum qb_tok_kind kind, const char *src);
/* Sizes the piece tables for n ids (pieces start empty, types UNUSED). */
int tok_vocab_init(struct qb_tokenizer *t, int64_t n, int with_scores);
/* Sets piece `id` (copied); call once per id, in any order. */
int tok_set_piece(struct qb_tokenizer *t, int64_t id, const char *s, size_t len);
/* Builds the hash after every piece is set; the lowest id wins for duplicate pieces. */
int tok_build_map(struct qb_tokenizer *t);
/* The id of a piece, or -1. */
int32_t tok_lookup(const struct qb_tokenizer *t, const char *s, size_t len);
/* Fills byte_id[] from the <0xAB> pieces. */
void tok_find_byte_pieces(struct qb_tokenizer *t);
/* Sorts t->added longest first and indexes it by first byte. */
int tok_sort_added(struct qb_tokenizer *t);
/* 1 if s[0..len) is exactly "<0xAB>" (hex, either case); the byte in *b. */
int tok_parse_byte_piece(const char *s, size_t len, unsigned char *b);
/* Bytes of the UTF-8 character starting at s (1 for an invalid lead byte), at most n. */
size_t tok_utf8_len(const unsigned char *s, size_t n);
/* The code point at s (len bytes from tok_utf8_len), or -1 when invalid. */
int32_t tok_utf8_decode(const unsigned char *s, size_t len);
/* 1 if the code point is Unicode White_Space (Rust char::is_whitespace). */
int tok_is_space(int32_t cp);

/* ---- tok_spm.c ---- */
/* Encodes one run of plain text (no special tokens) SentencePiece-style, with a dummy
 * "▁" in front when prefix and the text is non-empty. */
/* ---- unigram.c ---- */
int tok_unigram_encode(const struct qb_tokenizer *t, const char *text, size_t len, int prefix,
                       struct tok_ids *out);

int tok_spm_encode(const struct qb_tokenizer *t, const char *text, size_t len, int prefix,
                   struct tok_ids *out);
size_t tok_spm_decode_piece(const struct qb_tokenizer *t, int32_t prev, int32_t id, char *buf,
                            size_t cap);

/* ---- tok_bpe.c ---- */
/* Per-call regex state: encoding is re-entrant on a const tokenizer. */
struct tok_scratch {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
};
int tok_scratch_init(struct tok_scratch *sc);
void tok_scratch_release(struct tok_scratch *sc);

/* Compiles a regex (UTF, UCP, invalid UTF-8 tolerated, JIT when available). The
 * message names src and what. */
int tok_regex_compile(const char *pat, size_t len, const char *src, const char *what,
                      pcre2_code **out);
void tok_pattern_release(struct tok_pattern *p);
void tok_pipeline_release(struct qb_tokenizer *t);

/* Adds merge `rank` (left, right) -> merged; the first of duplicate pairs wins. */
int tok_pairmap_init(struct tok_pairmap *m, int64_t n);
void tok_pairmap_add(struct tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t id);

/* Runs normalizers (normalized=1 stage) over one run of text that holds no
 * non-normalized added token, then normalized added tokens, pre-tokenizers and the
 * BPE model. at_start: the run begins at offset 0 of the original text. */
/* Replaces the content of normalized added tokens by its normalized form (what HF
 * matches in normalized text), then re-sorts them. Call after the normalizers are read. */
int tok_normalize_added(struct qb_tokenizer *t);
int tok_bpe_encode(const struct qb_tokenizer *t, struct tok_scratch *sc, const char *text,
                   size_t len, int at_start, int flags, struct tok_ids *out);
size_t tok_bpe_decode_piece(const struct qb_tokenizer *t, int32_t prev, int32_t id, char *buf,
                            size_t cap);

/* Splits text on the added tokens with the given `normalized` flag (HF matches
 * non-normalized ones in the raw text, normalized ones after normalization) and hands
 * each plain run between them to fn; matched tokens go straight to out. at_start: text
 * begins at offset 0 of the caller's text; a run gets it when it begins there too. */
typedef int (*tok_run_fn)(const struct qb_tokenizer *t, void *ctx, const char *s, size_t len,
                          int at_start, struct tok_ids *out);
int tok_split_added(const struct qb_tokenizer *t, const char *text, size_t len, int at_start,
                    int normalized, int flags, tok_run_fn fn, void *ctx, struct tok_ids *out);

#endif
