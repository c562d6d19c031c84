/* tokenizer: the common half of the tokenizer module (see tokenizer.h): the vocabulary
 * and its hash, the llama2.c tokenizer.bin and GGUF-array loaders, added-token
 * matching, and the encode/decode entry points that dispatch to tok_spm.c (SentencePiece
 * BPE by scores) and tok_bpe.c (merge-rank BPE with the HF pipeline).
 *
 * Must agree with llama2.c run.c (encode/decode of tokenizer.bin), SentencePiece for the
 * Llama vocabulary, and llama.cpp's handling of GGUF token types. */
#include "collector/tokenizer/tokenizer.h"

#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/tokenizer/tokenizer_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small containers ---- */

int tok_ids_push(struct tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        int64_t ncap = ids->cap ? ids->cap * 2 : 64;
        int32_t *nv = realloc(ids->v, (size_t)ncap * sizeof *nv);
        if (!nv)
            return qb_err(QB_ENOMEM, "tokenizer: out of memory");
        ids->v = nv;
        ids->cap = ncap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

/* a goes before b: larger key, then smaller left index */
static int pair_before(const struct tok_pair *a, const struct tok_pair *b)
{
    if (a->key != b->key)
        return a->key > b->key;
    return a->left < b->left;
}

int tok_heap_push(struct tok_heap *h, struct tok_pair p)
{
    size_t i;
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 256;
        struct tok_pair *nv = realloc(h->v, ncap * sizeof *nv);
        if (!nv)
            return qb_err(QB_ENOMEM, "tokenizer: out of memory");
        h->v = nv;
        h->cap = ncap;
    }
    i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = p;
    return 0;
}

int tok_heap_pop(struct tok_heap *h, struct tok_pair *out)
{
    struct tok_pair last;
    size_t i = 0;
    if (h->n == 0)
        return 0;
    *out = h->v[0];
    last = h->v[--h->n];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && pair_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!pair_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return 1;
}

/* ---- UTF-8 ---- */

size_t tok_utf8_len(const unsigned char *s, size_t n)
{
    size_t k;
    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        k = 1;
    else if ((s[0] & 0xE0) == 0xC0)
        k = 2;
    else if ((s[0] & 0xF0) == 0xE0)
        k = 3;
    else if ((s[0] & 0xF8) == 0xF0)
        k = 4;
    else
        return 1;
    if (k > n)
        return 1;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 1;
    return k;
}

int32_t tok_utf8_decode(const unsigned char *s, size_t len)
{
    int32_t cp;
    switch (len) {
    case 1: return s[0] < 0x80 ? s[0] : -1;
    case 2: cp = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F); return cp >= 0x80 ? cp : -1;
    case 3:
        cp = ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) ? cp : -1;
    case 4:
        cp = ((s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return cp >= 0x10000 && cp <= 0x10FFFF ? cp : -1;
    }
    return -1;
}

int tok_is_space(int32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

int tok_parse_byte_piece(const char *s, size_t len, unsigned char *b)
{
    unsigned v = 0;
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else
            return 0;
    }
    *b = (unsigned char)v;
    return 1;
}

/* ---- the vocabulary ---- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

struct qb_tokenizer *tok_new(enum qb_tok_kind kind, const char *src)
{
    struct qb_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    t->src = strdup(src ? src : "tokenizer");
    if (!t->src) {
        free(t);
        return NULL;
    }
    t->bos = t->eos = t->unk = t->pad = -1;
    for (int i = 0; i < 256; i++)
        t->byte_id[i] = -1;
    return t;
}

int tok_vocab_init(struct qb_tokenizer *t, int64_t n, int with_scores)
{
    if (n < 1 || n > TOK_MAX_VOCAB)
        return qb_err(QB_EFORMAT, "'%s': vocabulary of %lld tokens (1 to %d allowed)", t->src,
                      (long long)n, TOK_MAX_VOCAB);
    t->n_vocab = t->n_model = n;
    t->off = calloc((size_t)n, sizeof *t->off);
    t->len = calloc((size_t)n, sizeof *t->len);
    t->types = malloc((size_t)n * sizeof *t->types);
    if (with_scores)
        t->scores = calloc((size_t)n, sizeof *t->scores);
    t->arena_cap = (size_t)n * 8 + 64;
    t->arena = malloc(t->arena_cap);
    if (!t->off || !t->len || !t->types || (with_scores && !t->scores) || !t->arena)
        return qb_err(QB_ENOMEM, "'%s': out of memory for %lld tokens", t->src, (long long)n);
    for (int64_t i = 0; i < n; i++)
        t->types[i] = QB_TT_UNUSED;
    t->arena[0] = '\0'; /* every empty piece points here */
    t->arena_len = 1;
    return 0;
}

int tok_set_piece(struct qb_tokenizer *t, int64_t id, const char *s, size_t len)
{
    size_t need;
    if (id < 0 || id >= t->n_vocab)
        return qb_err(QB_EFORMAT, "'%s': token id %lld out of range", t->src, (long long)id);
    if (len > TOK_MAX_PIECE)
        return qb_err(QB_EFORMAT, "'%s': token %lld is %zu bytes long (at most %d)", t->src,
                      (long long)id, len, TOK_MAX_PIECE);
    if (len == 0) {
        t->off[id] = 0;
        t->len[id] = 0;
        return 0;
    }
    need = t->arena_len + len + 1;
    if (need > t->arena_cap) {
        size_t ncap = t->arena_cap * 2 > need ? t->arena_cap * 2 : need;
        char *na = realloc(t->arena, ncap);
        if (!na)
            return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
        t->arena = na;
        t->arena_cap = ncap;
    }
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = '\0';
    t->off[id] = t->arena_len;
    t->len[id] = (uint32_t)len;
    t->arena_len += len + 1;
    if (len > t->max_piece_len)
        t->max_piece_len = len;
    return 0;
}

int tok_build_map(struct qb_tokenizer *t)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)t->n_vocab * 2)
        cap <<= 1;
    free(t->map.slot);
    t->map.slot = malloc(cap * sizeof *t->map.slot);
    if (!t->map.slot)
        return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
    memset(t->map.slot, 0xff, cap * sizeof *t->map.slot);
    t->map.mask = cap - 1;
    for (int64_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->arena + t->off[id];
        size_t len = t->len[id];
        uint64_t i;
        if (len == 0)
            continue;
        for (i = hash_bytes(s, len) & t->map.mask;; i = (i + 1) & t->map.mask) {
            int32_t o = t->map.slot[i];
            if (o < 0) {
                t->map.slot[i] = (int32_t)id;
                break;
            }
            if (t->len[o] == len && memcmp(t->arena + t->off[o], s, len) == 0)
                break; /* duplicate piece: the lower id keeps it */
        }
    }
    return 0;
}

int32_t tok_lookup(const struct qb_tokenizer *t, const char *s, size_t len)
{
    if (!t->map.slot || len == 0 || len > t->max_piece_len)
        return -1;
    for (uint64_t i = hash_bytes(s, len) & t->map.mask;; i = (i + 1) & t->map.mask) {
        int32_t o = t->map.slot[i];
        if (o < 0)
            return -1;
        if (t->len[o] == len && memcmp(t->arena + t->off[o], s, len) == 0)
            return o;
    }
}

void tok_find_byte_pieces(struct qb_tokenizer *t)
{
    char name[8];
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tok_lookup(t, name, 6);
    }
}

static int cmp_added(const void *a, const void *b)
{
    const struct tok_added *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int tok_sort_added(struct qb_tokenizer *t)
{
    int64_t count[256] = {0};
    if (t->n_added > 1)
        qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    free(t->by_byte);
    t->by_byte = NULL;
    memset(t->first, 0, sizeof t->first);
    if (t->n_added == 0)
        return 0;
    t->by_byte = malloc((size_t)t->n_added * sizeof *t->by_byte);
    if (!t->by_byte)
        return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
    for (int64_t k = 0; k < t->n_added; k++)
        count[(unsigned char)t->added[k].s[0]]++;
    for (int b = 0; b < 256; b++)
        t->first[b + 1] = t->first[b] + count[b];
    memset(count, 0, sizeof count);
    for (int64_t k = 0; k < t->n_added; k++) {
        unsigned char b = (unsigned char)t->added[k].s[0];
        t->by_byte[t->first[b] + count[b]++] = k;
    }
    return 0;
}

/* ---- lifetime and accessors ---- */

void qb_tok_free(struct qb_tokenizer *t)
{
    if (!t)
        return;
    tok_pipeline_release(t);
    for (int64_t i = 0; i < t->n_added; i++)
        free(t->added[i].s);
    free(t->added);
    free(t->by_byte);
    free(t->merges.key);
    free(t->merges.rank);
    free(t->merges.id);
    free(t->map.slot);
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->scores);
    free(t->types);
    free(t->src);
    free(t);
}

enum qb_tok_kind qb_tok_kind(const struct qb_tokenizer *t)
{
    return t->kind;
}

int64_t qb_tok_n_vocab(const struct qb_tokenizer *t)
{
    return t->n_vocab;
}

int32_t qb_tok_bos(const struct qb_tokenizer *t)
{
    return t->bos;
}

int32_t qb_tok_eos(const struct qb_tokenizer *t)
{
    return t->eos;
}

int qb_tok_adds_bos(const struct qb_tokenizer *t)
{
    return t->add_bos;
}

const char *qb_tok_piece(const struct qb_tokenizer *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n_vocab)
        return NULL;
    if (len)
        *len = t->len[id];
    return t->arena + t->off[id];
}

/* ---- llama2.c tokenizer.bin ---- */

/* Control, unknown and byte types for a vocabulary that did not say (llama2.c files,
 * GGUF without token_type): the Llama layout <unk>, <s>, </s>, <0x00>..<0xFF>. */
static void infer_types(struct qb_tokenizer *t)
{
    for (int64_t id = 0; id < t->n_vocab; id++) {
        unsigned char b;
        const char *s = t->arena + t->off[id];
        if (id == t->unk)
            t->types[id] = QB_TT_UNKNOWN;
        else if (id == t->bos || id == t->eos)
            t->types[id] = QB_TT_CONTROL;
        else if (tok_parse_byte_piece(s, t->len[id], &b))
            t->types[id] = QB_TT_BYTE;
        else
            t->types[id] = QB_TT_NORMAL;
    }
}

/* Appends s with every ' ' written as U+2581, into buf (at least 3 * len bytes). */
static size_t spaces_to_meta(const char *s, size_t len, char *buf)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(buf + k, TOK_SPACE, TOK_SPACE_LEN);
            k += TOK_SPACE_LEN;
        } else {
            buf[k++] = s[i];
        }
    }
    return k;
}

/* Counts the records of a tokenizer.bin that ends exactly after its last one (the file
 * does not store its size); -1 when a record runs past the end. */
static int64_t count_llama2c_records(const struct qb_map *map)
{
    size_t pos = 4;
    int64_t n = 0;
    while (pos < map->size) {
        int32_t len;
        if (map->size - pos < 8)
            return -1;
        memcpy(&len, map->data + pos + 4, 4);
        if (len < 0 || (size_t)len > map->size - pos - 8)
            return -1;
        pos += 8 + (size_t)len;
        n++;
    }
    return n;
}

int qb_tok_load_llama2c(const char *path, int64_t n_vocab, struct qb_tokenizer **out)
{
    struct qb_map map = {0};
    struct qb_tokenizer *t = NULL;
    char *buf = NULL;
    size_t pos = 0;
    int32_t max_len;
    int rc;

    if (!out || !path)
        return qb_err(QB_EINVAL, "qb_tok_load_llama2c: no path");
    *out = NULL;
    if (n_vocab > TOK_MAX_VOCAB)
        return qb_err(QB_EINVAL, "'%s': vocabulary size %lld out of range", path,
                      (long long)n_vocab);
    if ((rc = qb_map_open(path, &map)) < 0)
        return rc;
    if (n_vocab <= 0 && map.size >= 4) {
        n_vocab = count_llama2c_records(&map);
        if (n_vocab <= 0 || n_vocab > TOK_MAX_VOCAB) {
            qb_map_close(&map);
            return qb_err(QB_EFORMAT,
                          "'%s': not a llama2.c tokenizer (its records do not end "
                          "at the end of the file)",
                          path);
        }
    }
    t = tok_new(QB_TOK_SPM, path);
    buf = malloc(3 * (size_t)TOK_MAX_PIECE);
    if (!t || !buf) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto fail;
    }
    if ((rc = tok_vocab_init(t, n_vocab, 1)) < 0)
        goto fail;
    if (map.size < 4) {
        rc = qb_err(QB_EFORMAT, "'%s': too short for a llama2.c tokenizer (%zu bytes)", path,
                    map.size);
        goto fail;
    }
    memcpy(&max_len, map.data, 4);
    if (max_len < 0) {
        rc = qb_err(QB_EFORMAT, "'%s': negative max_token_length %d", path, max_len);
        goto fail;
    }
    pos = 4;
    for (int64_t id = 0; id < n_vocab; id++) {
        float score;
        int32_t len;
        size_t k;
        const char *s;
        if (map.size - pos < 8) {
            rc = qb_err(QB_EFORMAT, "'%s': truncated at token %lld of %lld", path, (long long)id,
                        (long long)n_vocab);
            goto fail;
        }
        memcpy(&score, map.data + pos, 4);
        memcpy(&len, map.data + pos + 4, 4);
        pos += 8;
        if (isnan(score)) {
            rc = qb_err(QB_EFORMAT, "'%s': token %lld has a NaN score", path, (long long)id);
            goto fail;
        }
        if (len < 0) {
            rc = qb_err(QB_EFORMAT, "'%s': token %lld has negative length %d", path, (long long)id,
                        len);
            goto fail;
        }
        if (len > TOK_MAX_PIECE) {
            rc = qb_err(QB_EFORMAT, "'%s': token %lld is %d bytes long (at most %d)", path,
                        (long long)id, len, TOK_MAX_PIECE);
            goto fail;
        }
        if ((size_t)len > map.size - pos) {
            rc = qb_err(QB_EFORMAT, "'%s': token %lld ends past the end of the file", path,
                        (long long)id);
            goto fail;
        }
        s = (const char *)map.data + pos;
        pos += (size_t)len;
        /* llama2.c's export wrote BOS/EOS as "\n<s>\n" / "\n</s>\n" and every U+2581 as ' ' */
        if (id == 1 && len == 5 && memcmp(s, "\n<s>\n", 5) == 0)
            k = 3, memcpy(buf, "<s>", 3);
        else if (id == 2 && len == 6 && memcmp(s, "\n</s>\n", 6) == 0)
            k = 4, memcpy(buf, "</s>", 4);
        else
            k = spaces_to_meta(s, (size_t)len, buf);
        if (k > TOK_MAX_PIECE) {
            rc = qb_err(QB_EFORMAT, "'%s': token %lld is too long", path, (long long)id);
            goto fail;
        }
        if ((rc = tok_set_piece(t, id, buf, k)) < 0)
            goto fail;
        t->scores[id] = score;
    }
    if ((rc = tok_build_map(t)) < 0)
        goto fail;
    /* llama convention: <unk> 0, <s> 1, </s> 2 */
    t->unk = n_vocab > 0 ? 0 : -1;
    t->bos = n_vocab > 1 ? 1 : -1;
    t->eos = n_vocab > 2 ? 2 : -1;
    t->add_bos = t->bos >= 0;
    t->add_space_prefix = 1;
    infer_types(t);
    tok_find_byte_pieces(t);
    free(buf);
    qb_map_close(&map);
    *out = t;
    return 0;
fail:
    free(buf);
    qb_tok_free(t);
    qb_map_close(&map);
    return rc;
}

int qb_tok_load_file(const char *path, int64_t n_vocab, struct qb_tokenizer **out)
{
    size_t n = path ? strlen(path) : 0;
    if (n >= 5 && !strcmp(path + n - 5, ".json"))
        return qb_tok_load_hf(path, out);
    if (n >= 6 && !strcmp(path + n - 6, ".model"))
        return qb_tok_load_spm_model(path, out);
    return qb_tok_load_llama2c(path, n_vocab, out);
}

/* ---- GGUF arrays ---- */

static int check_special(const struct qb_tokenizer *t, const char *what, int32_t *id, int strict)
{
    if (*id < 0) {
        *id = -1;
        return 0;
    }
    if (*id >= t->n_vocab) {
        if (!strict) {
            *id = -1;
            return 0;
        }
        return qb_err(QB_EFORMAT, "'%s': %s id %d is outside the vocabulary (%lld tokens)", t->src,
                      what, *id, (long long)t->n_vocab);
    }
    return 0;
}

/* Control, unknown and user-defined pieces are matched whole in the text, as llama.cpp
 * does: control/unknown only when special tokens are parsed, user-defined always. */
static int collect_added_from_types(struct qb_tokenizer *t)
{
    int64_t n = 0;
    for (int64_t id = 0; id < t->n_vocab; id++) {
        int ty = t->types[id];
        if ((ty == QB_TT_CONTROL || ty == QB_TT_UNKNOWN || ty == QB_TT_USER_DEFINED) && t->len[id])
            n++;
    }
    if (n == 0)
        return 0;
    t->added = calloc((size_t)n, sizeof *t->added);
    if (!t->added)
        return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
    for (int64_t id = 0; id < t->n_vocab; id++) {
        int ty = t->types[id];
        struct tok_added *a;
        if (!((ty == QB_TT_CONTROL || ty == QB_TT_UNKNOWN || ty == QB_TT_USER_DEFINED) &&
              t->len[id]))
            continue;
        a = &t->added[t->n_added];
        a->id = (int32_t)id;
        a->len = t->len[id];
        a->s = malloc(a->len + 1);
        if (!a->s)
            return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
        memcpy(a->s, t->arena + t->off[id], a->len + 1);
        a->special = ty != QB_TT_USER_DEFINED;
        t->n_added++;
    }
    return tok_sort_added(t);
}

static const char *gpt2_regex_for(const char *pre)
{
    static const char *const llama3[] = {"llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx"};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"};
    if (!pre)
        return tok_re_gpt2;
    for (size_t i = 0; i < sizeof llama3 / sizeof *llama3; i++)
        if (strcmp(pre, llama3[i]) == 0)
            return tok_re_llama3;
    for (size_t i = 0; i < sizeof qwen2 / sizeof *qwen2; i++)
        if (strcmp(pre, qwen2[i]) == 0)
            return tok_re_qwen2;
    return tok_re_gpt2; /* "default", "gpt2" and names we do not know */
}

static int build_gpt2(struct qb_tokenizer *t, const struct qb_tok_vocab *v)
{
    char *buf = NULL;
    const char *re = gpt2_regex_for(v->pre);
    int rc;

    if (v->n_merges < 0 || v->n_merges > TOK_MAX_MERGES)
        return qb_err(QB_EFORMAT, "'%s': %lld merges (0 to %d allowed)", t->src,
                      (long long)v->n_merges, TOK_MAX_MERGES);
    if (v->n_merges > 0 && !v->merges)
        return qb_err(QB_EINVAL, "'%s': merges missing", t->src);
    if ((rc = tok_pairmap_init(&t->merges, v->n_merges)) < 0)
        return rc;
    buf = malloc(2 * (size_t)TOK_MAX_PIECE + 2);
    if (!buf)
        return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
    for (int64_t i = 0; i < v->n_merges; i++) {
        const char *m = v->merges[i];
        size_t len, sp;
        int32_t a, b, ab;
        if (!m) {
            rc = qb_err(QB_EFORMAT, "'%s': merge %lld is missing", t->src, (long long)i);
            goto fail;
        }
        len = v->merge_lens ? v->merge_lens[i] : strlen(m);
        /* the first space after the first byte: a lone " " may be the left piece */
        for (sp = 1; sp < len && m[sp] != ' '; sp++)
            ;
        if (len < 3 || sp >= len - 1) {
            rc = qb_err(QB_EFORMAT, "'%s': merge %lld ('%.*s') is not two pieces", t->src,
                        (long long)i, (int)(len > 64 ? 64 : len), m);
            goto fail;
        }
        a = tok_lookup(t, m, sp);
        b = tok_lookup(t, m + sp + 1, len - sp - 1);
        if (a < 0 || b < 0 || len - 1 > 2 * (size_t)TOK_MAX_PIECE) {
            rc = qb_err(QB_EFORMAT, "'%s': merge %lld ('%.*s') names a piece not in the vocabulary",
                        t->src, (long long)i, (int)(len > 64 ? 64 : len), m);
            goto fail;
        }
        memcpy(buf, m, sp);
        memcpy(buf + sp, m + sp + 1, len - sp - 1);
        ab = tok_lookup(t, buf, len - 1);
        if (ab < 0) {
            rc = qb_err(QB_EFORMAT, "'%s': merge %lld ('%.*s') makes a piece not in the vocabulary",
                        t->src, (long long)i, (int)(len > 64 ? 64 : len), m);
            goto fail;
        }
        tok_pairmap_add(&t->merges, a, b, (int32_t)i, ab);
    }
    free(buf);
    buf = NULL;

    t->pre = calloc(2, sizeof *t->pre);
    t->dec = calloc(1, sizeof *t->dec);
    if (!t->pre || !t->dec)
        return qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
    t->pre[0].kind = TOK_PRE_SPLIT;
    t->pre[0].behavior = TOK_SPLIT_ISOLATED;
    t->n_pre = 1;
    if ((rc = tok_regex_compile(re, strlen(re), t->src, "pre-tokenizer regex", &t->pre[0].pat.re)) <
        0)
        return rc;
    t->pre[0].pat.known = tok_regex_gguf_name(re, strlen(re));
    t->pre[1].kind = TOK_PRE_BYTELEVEL;
    t->n_pre = 2;
    t->dec[0].kind = TOK_DEC_BYTELEVEL;
    t->n_dec = 1;
    return 0;
fail:
    free(buf);
    return rc;
}

int qb_tok_from_vocab(const struct qb_tok_vocab *v, const char *src, struct qb_tokenizer **out)
{
    struct qb_tokenizer *t = NULL;
    int spm, rc;

    if (!out)
        return qb_err(QB_EINVAL, "qb_tok_from_vocab: no output");
    *out = NULL;
    if (!src)
        src = "tokenizer";
    if (!v || !v->model)
        return qb_err(QB_EFORMAT, "'%s': no tokenizer model", src);
    if (strcmp(v->model, "llama") == 0 || strcmp(v->model, "unigram") == 0)
        spm = 1;
    else if (strcmp(v->model, "gpt2") == 0)
        spm = 0;
    else
        return qb_err(QB_EUNSUP,
                      "'%s': tokenizer model '%.64s' is not supported (llama, gpt2, unigram)", src,
                      v->model);
    if (!v->pieces)
        return qb_err(QB_EFORMAT, "'%s': no token list", src);
    t = tok_new(spm ? QB_TOK_SPM : QB_TOK_BPE, src);
    if (!t)
        return qb_err(QB_ENOMEM, "'%s': out of memory", src);
    if ((rc = tok_vocab_init(t, v->n_vocab, spm)) < 0)
        goto fail;
    for (int64_t id = 0; id < v->n_vocab; id++) {
        const char *s = v->pieces[id];
        if (!s) {
            rc = qb_err(QB_EFORMAT, "'%s': token %lld is missing", src, (long long)id);
            goto fail;
        }
        if ((rc = tok_set_piece(t, id, s, v->piece_lens ? v->piece_lens[id] : strlen(s))) < 0)
            goto fail;
        if (spm) {
            float sc = v->scores ? v->scores[id] : -(float)id;
            if (isnan(sc)) {
                rc = qb_err(QB_EFORMAT, "'%s': token %lld has a NaN score", src, (long long)id);
                goto fail;
            }
            t->scores[id] = sc;
        }
    }
    if ((rc = tok_build_map(t)) < 0)
        goto fail;
    t->bos = v->bos_id;
    t->eos = v->eos_id;
    t->unk = v->unk_id;
    t->pad = v->pad_id;
    if ((rc = check_special(t, "bos", &t->bos, 1)) < 0 ||
        (rc = check_special(t, "eos", &t->eos, 1)) < 0 ||
        (rc = check_special(t, "unknown-token", &t->unk, 1)) < 0 ||
        (rc = check_special(t, "padding", &t->pad, 0)) < 0)
        goto fail;
    if (v->types) {
        for (int64_t id = 0; id < v->n_vocab; id++) {
            int32_t ty = v->types[id];
            t->types[id] = ty >= QB_TT_NORMAL && ty <= QB_TT_BYTE ? ty : QB_TT_NORMAL;
        }
    } else {
        infer_types(t);
    }
    if (spm) {
        t->add_bos = v->add_bos >= 0 ? !!v->add_bos : 1;
        t->add_space_prefix = v->add_space_prefix >= 0 ? !!v->add_space_prefix : 1;
        t->unigram = strcmp(v->model, "unigram") == 0;
        t->remove_ws = t->unigram && v->remove_extra_ws > 0;
        tok_find_byte_pieces(t);
    } else {
        t->add_bos = v->add_bos >= 0 ? !!v->add_bos : 0;
        if ((rc = build_gpt2(t, v)) < 0)
            goto fail;
    }
    t->add_eos = v->add_eos > 0;
    if (t->add_bos && t->bos < 0)
        t->add_bos = 0;
    if (t->add_eos && t->eos < 0)
        t->add_eos = 0;
    if ((rc = collect_added_from_types(t)) < 0)
        goto fail;
    *out = t;
    return 0;
fail:
    qb_tok_free(t);
    return rc;
}

/* ---- encode ---- */

/* s[0..n) before position i: the code point ending there, and where it starts */
static int32_t cp_before(const char *s, size_t lo, size_t i, size_t *start)
{
    size_t j = i;
    int back = 0;
    while (j > lo && back < 4) {
        j--;
        back++;
        if (((unsigned char)s[j] & 0xC0) != 0x80)
            break;
    }
    *start = j;
    if (tok_utf8_len((const unsigned char *)s + j, i - j) != i - j)
        return -1;
    return tok_utf8_decode((const unsigned char *)s + j, i - j);
}

static int is_word_cp(int32_t cp)
{
    /* ASCII word characters and anything beyond ASCII that is not a space: a cheap
     * stand-in for \w, only used by single_word added tokens */
    if (cp < 0)
        return 0;
    if (cp < 128)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    return !tok_is_space(cp);
}

/* The longest eligible added token at text[i..n), or NULL. */
static const struct tok_added *match_added(const struct qb_tokenizer *t, const char *text, size_t i,
                                           size_t n, int normalized, int flags)
{
    unsigned char c = (unsigned char)text[i];
    for (int64_t k = t->first[c]; k < t->first[c + 1]; k++) {
        const struct tok_added *a = &t->added[t->by_byte[k]];
        if (a->len == 0 || a->len > n - i)
            continue;
        if ((int)a->normalized != normalized)
            continue;
        if (a->special && (flags & QB_TOK_NO_SPECIAL))
            continue;
        if (memcmp(text + i, a->s, a->len) != 0)
            continue;
        if (a->single_word) {
            size_t st;
            size_t e = i + a->len;
            int32_t before = i > 0 ? cp_before(text, 0, i, &st) : -1;
            int32_t after = -1;
            if (e < n) {
                size_t l = tok_utf8_len((const unsigned char *)text + e, n - e);
                after = tok_utf8_decode((const unsigned char *)text + e, l);
            }
            if (is_word_cp(before) || is_word_cp(after))
                continue;
        }
        return a;
    }
    return NULL;
}

int tok_split_added(const struct qb_tokenizer *t, const char *text, size_t len, int at_start,
                    int normalized, int flags, tok_run_fn fn, void *ctx, struct tok_ids *out)
{
    size_t run = 0, i = 0;
    unsigned char first[256] = {0};
    int any = 0, rc;

    for (int64_t k = 0; k < t->n_added; k++) {
        const struct tok_added *a = &t->added[k];
        if (a->len && (int)a->normalized == normalized &&
            !(a->special && (flags & QB_TOK_NO_SPECIAL))) {
            first[(unsigned char)a->s[0]] = 1;
            any = 1;
        }
    }
    if (!any)
        return fn(t, ctx, text, len, at_start, out);
    while (i < len) {
        const struct tok_added *a;
        size_t s, e;
        if (!first[(unsigned char)text[i]] ||
            !(a = match_added(t, text, i, len, normalized, flags))) {
            i++;
            continue;
        }
        s = i;
        e = i + a->len;
        if (a->lstrip) {
            for (;;) {
                size_t st;
                int32_t cp = s > run ? cp_before(text, run, s, &st) : -1;
                if (!tok_is_space(cp))
                    break;
                s = st;
            }
        }
        if (a->rstrip) {
            while (e < len) {
                size_t l = tok_utf8_len((const unsigned char *)text + e, len - e);
                if (!tok_is_space(tok_utf8_decode((const unsigned char *)text + e, l)))
                    break;
                e += l;
            }
        }
        if (s > run && (rc = fn(t, ctx, text + run, s - run, at_start && run == 0, out)) < 0)
            return rc;
        if ((rc = tok_ids_push(out, a->id)) < 0)
            return rc;
        run = i = e;
    }
    if (run < len && (rc = fn(t, ctx, text + run, len - run, at_start && run == 0, out)) < 0)
        return rc;
    return 0;
}

static int spm_run(const struct qb_tokenizer *t, void *ctx, const char *s, size_t len, int at_start,
                   struct tok_ids *out)
{
    (void)ctx;
    (void)at_start;
    /* llama.cpp prefixes every run of text with the dummy space, also after a special
     * token; llama2.c files have no special tokens, so only the start gets one */
    if (t->unigram)
        return tok_unigram_encode(t, s, len, t->add_space_prefix, out);
    return tok_spm_encode(t, s, len, t->add_space_prefix, out);
}

struct bpe_ctx {
    struct tok_scratch *sc;
    int flags;
};

static int bpe_run(const struct qb_tokenizer *t, void *ctx, const char *s, size_t len, int at_start,
                   struct tok_ids *out)
{
    struct bpe_ctx *c = ctx;
    return tok_bpe_encode(t, c->sc, s, len, at_start, c->flags, out);
}

int qb_tok_encode(const struct qb_tokenizer *t, const char *text, size_t len, int flags,
                  int32_t **ids, int64_t *n)
{
    struct tok_ids v = {0};
    struct tok_scratch sc = {0};
    int add_bos, add_eos, rc;

    if (!ids || !n)
        return qb_err(QB_EINVAL, "qb_tok_encode: no output");
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len))
        return qb_err(QB_EINVAL, "qb_tok_encode: no tokenizer or text");
    if ((flags & QB_TOK_BOS) && (flags & QB_TOK_NO_BOS))
        return qb_err(QB_EINVAL, "qb_tok_encode: both QB_TOK_BOS and QB_TOK_NO_BOS");
    if (len > TOK_MAX_TEXT)
        return qb_err(QB_EINVAL, "text of %zu bytes is too long to tokenize (at most %zu)", len,
                      TOK_MAX_TEXT);
    add_bos = (flags & QB_TOK_NO_BOS) ? 0 : (flags & QB_TOK_BOS) ? 1 : t->add_bos;
    add_eos = (flags & QB_TOK_EOS) ? 1 : t->add_eos;
    if (add_bos && t->bos < 0)
        return qb_err(QB_EINVAL, "'%s': the tokenizer has no bos token", t->src);
    if (add_eos && t->eos < 0)
        return qb_err(QB_EINVAL, "'%s': the tokenizer has no eos token", t->src);
    if (add_bos && (rc = tok_ids_push(&v, t->bos)) < 0)
        goto fail;
    if (t->kind == QB_TOK_SPM) {
        rc = tok_split_added(t, text, len, 1, 0, flags, spm_run, NULL, &v);
    } else {
        struct bpe_ctx c = {&sc, flags};
        if ((rc = tok_scratch_init(&sc)) < 0)
            goto fail;
        rc = tok_split_added(t, text, len, 1, 0, flags, bpe_run, &c, &v);
    }
    if (rc < 0)
        goto fail;
    if (add_eos && (rc = tok_ids_push(&v, t->eos)) < 0)
        goto fail;
    if (!v.v && !(v.v = malloc(sizeof *v.v))) { /* never a NULL array, even for no ids */
        rc = qb_err(QB_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    tok_scratch_release(&sc);
    *ids = v.v;
    *n = v.n;
    return 0;
fail:
    tok_scratch_release(&sc);
    free(v.v);
    return rc;
}

/* ---- decode ---- */

size_t qb_tok_decode_piece(const struct qb_tokenizer *t, int32_t prev, int32_t id, char *buf,
                           size_t cap)
{
    if (!t || id < 0 || id >= t->n_vocab)
        return 0;
    if (!buf)
        cap = 0;
    if (t->kind == QB_TOK_SPM)
        return tok_spm_decode_piece(t, prev, id, buf, cap);
    return tok_bpe_decode_piece(t, prev, id, buf, cap);
}

int qb_tok_decode(const struct qb_tokenizer *t, const int32_t *ids, int64_t n, char **text,
                  size_t *len)
{
    char *out = NULL;
    size_t used = 0, cap = 256;
    int32_t prev = -1;

    if (!text)
        return qb_err(QB_EINVAL, "qb_tok_decode: no output");
    *text = NULL;
    if (len)
        *len = 0;
    if (!t || (n > 0 && !ids) || n < 0)
        return qb_err(QB_EINVAL, "qb_tok_decode: no tokenizer or ids");
    out = malloc(cap);
    if (!out)
        return qb_err(QB_ENOMEM, "tokenizer: out of memory");
    for (int64_t i = 0; i < n; i++) {
        size_t k;
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            free(out);
            return qb_err(QB_ERANGE, "'%s': token id %d outside the vocabulary (%lld tokens)",
                          t->src, ids[i], (long long)t->n_vocab);
        }
        k = qb_tok_decode_piece(t, prev, ids[i], out + used, cap - used - 1);
        if (k > cap - used - 1) {
            size_t ncap = cap;
            char *no;
            while (ncap - used - 1 < k)
                ncap *= 2;
            no = realloc(out, ncap);
            if (!no) {
                free(out);
                return qb_err(QB_ENOMEM, "tokenizer: out of memory");
            }
            out = no;
            cap = ncap;
            k = qb_tok_decode_piece(t, prev, ids[i], out + used, cap - used - 1);
        }
        used += k;
        prev = ids[i];
    }
    out[used] = '\0';
    *text = out;
    if (len)
        *len = used;
    return 0;
}
