/* tok_spm: SentencePiece-style BPE driven by piece scores (llama2.c tokenizer.bin, GGUF
 * `tokenizer.ggml.model = llama`).
 *
 * Must agree with llama2.c run.c `encode` (bos=1, eos=0): spaces become U+2581, a dummy
 * "▁" goes in front of non-empty text, each UTF-8 character (a lead byte and at most
 * three continuation bytes) is looked up, unknown characters fall back to <0xAB> byte
 * pieces, then the adjacent pair whose concatenation is a piece with the highest score
 * merges, leftmost on ties, until none does. run.c rescans all pairs after each merge
 * (O(n^2)); here a heap of adjacent pairs gives the same order in O(n log n): ties go
 * to the smaller left symbol index, which is the leftmost position because a merged
 * symbol keeps its left half's index. Stale heap entries are recognised by their byte
 * size: a live symbol only grows, so a pair whose halves no longer add up to the size
 * it was pushed with has changed. */
#include "kernels/base/err.h"
#include "collector/tokenizer/tokenizer_int.h"

#include <stdlib.h>
#include <string.h>

/* Pieces text may produce: control, unknown and user-defined pieces only ever come
 * whole from added-token matching, never from characters or merges. */
static int32_t lookup_text(const struct qb_tokenizer *t, const char *s, size_t len)
{
    int32_t id = tok_lookup(t, s, len);
    if (id < 0 || id >= t->n_model)
        return -1;
    switch (t->types[id]) {
    case QB_TT_CONTROL:
    case QB_TT_UNKNOWN:
    case QB_TT_USER_DEFINED: return -1;
    }
    return id;
}

static int try_pair(const struct qb_tokenizer *t, const char *text, struct tok_sym *sym,
                    struct tok_heap *heap, int32_t l, int32_t r)
{
    struct tok_pair p;
    size_t size;
    int32_t id;
    if (l < 0 || r < 0 || sym[l].frozen || sym[r].frozen)
        return 0;
    size = (size_t)sym[l].len + sym[r].len;
    if (size > t->max_piece_len)
        return 0;
    id = lookup_text(t, text + sym[l].start, size);
    /* run.c starts its search at best_score = -1e10: pieces scored below never merge */
    if (id < 0 || !(t->scores[id] > -1e10f))
        return 0;
    p.key = t->scores[id];
    p.left = l;
    p.right = r;
    p.id = id;
    p.size = (uint32_t)size;
    return tok_heap_push(heap, p);
}

int tok_spm_encode(const struct qb_tokenizer *t, const char *text, size_t len, int prefix,
                   struct tok_ids *out)
{
    char *buf = NULL;
    struct tok_sym *sym = NULL;
    struct tok_heap heap = {0};
    struct tok_pair p;
    size_t nlen = 0, i;
    int32_t n_sym = 0;
    int rc = 0;

    if (len == 0)
        return 0;
    buf = malloc(3 * len + TOK_SPACE_LEN);
    if (!buf)
        return qb_err(QB_ENOMEM, "tokenizer: out of memory for %zu bytes of text", len);
    if (prefix) {
        memcpy(buf, TOK_SPACE, TOK_SPACE_LEN);
        nlen = TOK_SPACE_LEN;
    }
    for (i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + nlen, TOK_SPACE, TOK_SPACE_LEN);
            nlen += TOK_SPACE_LEN;
        } else {
            buf[nlen++] = text[i];
        }
    }
    sym = malloc(nlen * sizeof *sym);
    if (!sym) {
        rc = qb_err(QB_ENOMEM, "tokenizer: out of memory for %zu bytes of text", len);
        goto out;
    }
    /* characters as run.c groups them: a byte and the continuation bytes after it */
    for (i = 0; i < nlen;) {
        size_t g = 1;
        int32_t id;
        while (i + g < nlen && g < 4 && ((unsigned char)buf[i + g] & 0xC0) == 0x80)
            g++;
        id = lookup_text(t, buf + i, g);
        if (id >= 0) {
            sym[n_sym] = (struct tok_sym){n_sym - 1, n_sym + 1, (uint32_t)i, (uint32_t)g, id, 0};
            n_sym++;
        } else {
            for (size_t k = 0; k < g; k++) {
                int32_t b = t->byte_id[(unsigned char)buf[i + k]];
                if (b < 0)
                    b = t->unk;
                if (b < 0)
                    continue; /* neither a byte piece nor <unk>: the byte is lost */
                sym[n_sym] = (struct tok_sym){n_sym - 1, n_sym + 1, (uint32_t)(i + k), 1, b, 1};
                n_sym++;
            }
        }
        i += g;
    }
    if (n_sym == 0)
        goto out;
    sym[n_sym - 1].next = -1;
    for (int32_t k = 0; k + 1 < n_sym; k++)
        if ((rc = try_pair(t, buf, sym, &heap, k, k + 1)) < 0)
            goto out;
    while (tok_heap_pop(&heap, &p)) {
        const struct tok_sym *l = &sym[p.left];
        if (!tok_sym_merge(sym, &p))
            continue;
        if ((rc = try_pair(t, buf, sym, &heap, l->prev, p.left)) < 0 ||
            (rc = try_pair(t, buf, sym, &heap, p.left, l->next)) < 0)
            goto out;
    }
    for (int32_t k = 0; k >= 0; k = sym[k].next)
        if ((rc = tok_ids_push(out, sym[k].id)) < 0)
            goto out;
out:
    free(heap.v);
    free(sym);
    free(buf);
    return rc;
}

size_t tok_spm_decode_piece(const struct qb_tokenizer *t, int32_t prev, int32_t id, char *buf,
                            size_t cap)
{
    const char *s = t->arena + t->off[id];
    size_t len = t->len[id], k = 0, i = 0;
    unsigned char b;

    switch (t->types[id]) {
    case QB_TT_CONTROL:
    case QB_TT_UNKNOWN:
    case QB_TT_UNUSED: return 0;
    case QB_TT_BYTE:
        if (tok_parse_byte_piece(s, len, &b)) {
            if (cap >= 1)
                buf[0] = (char)b;
            return 1;
        }
        break;
    }
    /* SentencePiece drops the dummy prefix of the first piece; run.c does so after BOS */
    if (t->add_space_prefix && (prev < 0 || prev == t->bos) && len >= TOK_SPACE_LEN &&
        memcmp(s, TOK_SPACE, TOK_SPACE_LEN) == 0)
        i = TOK_SPACE_LEN;
    while (i < len) {
        if (len - i >= TOK_SPACE_LEN && memcmp(s + i, TOK_SPACE, TOK_SPACE_LEN) == 0) {
            if (k < cap)
                buf[k] = ' ';
            k++;
            i += TOK_SPACE_LEN;
        } else {
            if (k < cap)
                buf[k] = s[i];
            k++;
            i++;
        }
    }
    return k;
}
