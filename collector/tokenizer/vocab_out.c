/* vocab_out: a tokenizer as GGUF stores it (tokenizer.ggml.*), the inverse of
 * qb_tok_from_vocab, for the GGUF export. SentencePiece vocabularies become "llama" (pieces,
 * scores, types); merge-rank BPE becomes "gpt2" (pieces, types, merges in rank order) when
 * its pipeline is one llama.cpp knows by a pre-tokenizer name: no normalizer, then the GPT-2
 * regex inside ByteLevel, or one of the named regexes split off before a regex-less
 * ByteLevel. Anything else is QB_EUNSUP: llama.cpp would tokenize it differently. */
#include "kernels/base/err.h"
#include "collector/tokenizer/tokenizer.h"
#include "collector/tokenizer/tokenizer_int.h"

#include <stdlib.h>
#include <string.h>

/* llama.cpp's name for a BPE pipeline, or NULL. */
static const char *bpe_pre_name(const struct qb_tokenizer *t)
{
    const struct tok_pre *p = t->pre;
    if (t->n_norm != 0 || t->byte_fallback)
        return NULL;
    if (t->n_pre == 1 && p[0].kind == TOK_PRE_BYTELEVEL && p[0].use_regex && !p[0].add_prefix_space)
        return p[0].pat.known;
    if (t->n_pre == 2 && p[0].kind == TOK_PRE_SPLIT && !p[0].invert &&
        p[0].behavior == TOK_SPLIT_ISOLATED && p[1].kind == TOK_PRE_BYTELEVEL && !p[1].use_regex &&
        !p[1].add_prefix_space)
        return p[0].pat.known;
    return NULL;
}

struct merge_ent {
    int32_t rank, left, right;
};

static int by_rank(const void *a, const void *b)
{
    const struct merge_ent *x = a, *y = b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

/* The merges as "left right" strings in rank order. */
static int dump_merges(const struct qb_tokenizer *t, struct qb_tok_vocab *v)
{
    const struct tok_pairmap *pm = &t->merges;
    struct merge_ent *e = NULL;
    char **strs = NULL;
    size_t *lens = NULL;
    int64_t n = 0;

    if (pm->n > 0 && !(e = malloc((size_t)pm->n * sizeof *e)))
        goto oom;
    for (uint64_t i = 0; pm->key && i <= pm->mask; i++)
        if (pm->key[i] != UINT64_MAX && n < pm->n)
            e[n++] = (struct merge_ent){pm->rank[i], (int32_t)(pm->key[i] >> 32),
                                        (int32_t)(pm->key[i] & 0xffffffffu)};
    qsort(e, (size_t)n, sizeof *e, by_rank);
    if (n > 0 && (!(strs = calloc((size_t)n, sizeof *strs)) || !(lens = malloc((size_t)n * 8))))
        goto oom;
    for (int64_t i = 0; i < n; i++) {
        uint32_t la = t->len[e[i].left], lb = t->len[e[i].right];
        if (!(strs[i] = malloc((size_t)la + lb + 2)))
            goto oom;
        memcpy(strs[i], t->arena + t->off[e[i].left], la);
        strs[i][la] = ' ';
        memcpy(strs[i] + la + 1, t->arena + t->off[e[i].right], lb);
        strs[i][la + lb + 1] = 0;
        lens[i] = (size_t)la + lb + 1;
    }
    free(e);
    v->merges = (const char *const *)strs;
    v->merge_lens = lens;
    v->n_merges = n;
    return 0;
oom:
    for (int64_t i = 0; strs && i < n; i++)
        free(strs[i]);
    free(strs);
    free(lens);
    free(e);
    return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
}

int qb_tok_to_vocab(const struct qb_tokenizer *t, struct qb_tok_vocab *v)
{
    const char **pieces = NULL;
    size_t *lens = NULL;

    memset(v, 0, sizeof *v);
    if (t->kind == QB_TOK_BPE) {
        if (!(v->pre = bpe_pre_name(t)))
            return qb_err(QB_EUNSUP,
                          "'%s': this tokenizer's normalizers and pre-tokenizers have no "
                          "llama.cpp name (GGUF tokenizer.ggml.pre): only byte-level BPE with "
                          "the GPT-2, Llama 3 or Qwen2 split can be written",
                          t->src);
        v->model = "gpt2";
    } else {
        v->model = "llama";
    }
    if (!(pieces = malloc((size_t)t->n_vocab * sizeof *pieces)) ||
        !(lens = malloc((size_t)t->n_vocab * sizeof *lens))) {
        free(pieces);
        return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
    }
    for (int64_t i = 0; i < t->n_vocab; i++) {
        pieces[i] = t->arena + t->off[i];
        lens[i] = t->len[i];
    }
    v->n_vocab = t->n_vocab;
    v->pieces = pieces;
    v->piece_lens = lens;
    v->scores = t->scores;
    v->types = t->types;
    v->bos_id = t->bos;
    v->eos_id = t->eos;
    v->unk_id = t->unk;
    v->pad_id = t->pad;
    v->add_bos = t->add_bos;
    v->add_eos = t->add_eos;
    v->add_space_prefix = t->kind == QB_TOK_SPM ? t->add_space_prefix : -1;
    if (t->kind == QB_TOK_BPE) {
        int rc = dump_merges(t, v);
        if (rc < 0) {
            qb_tok_vocab_release(v);
            return rc;
        }
    }
    return 0;
}

/* free() of what qb_tok_to_vocab allocated and handed out as const. */
static void free_const(const void *p)
{
    void *q;
    memcpy(&q, &p, sizeof q);
    free(q);
}

void qb_tok_vocab_release(struct qb_tok_vocab *v)
{
    for (int64_t i = 0; v->merges && i < v->n_merges; i++)
        free_const(v->merges[i]);
    free_const(v->merges);
    free_const(v->merge_lens);
    free_const(v->pieces);
    free_const(v->piece_lens);
    memset(v, 0, sizeof *v);
}
