/* spm_model: a SentencePiece tokenizer.model (the ModelProto of sentencepiece_model.proto)
 * read by hand -- only the fields qbrief needs -- into the SPM tokenizer (tok_spm, the
 * algorithm llama.cpp uses for `tokenizer.ggml.model = llama`).
 *
 * Fields read (field number, wire type):
 *   ModelProto      1 pieces (repeated message), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, NORMAL when absent)
 *   TrainerSpec     3 model_type (UNIGRAM 1, BPE 2, WORD 3, CHAR 4), 35 byte_fallback,
 *                   40 unk_id (0), 41 bos_id (1), 42 eos_id (2), 43 pad_id (-1)
 *   NormalizerSpec  1 name, 3 add_dummy_prefix (true), 4 remove_extra_whitespaces (true)
 * Everything else is skipped by its wire type. Supported: BPE models whose normalizer is
 * "identity" without whitespace collapsing (Llama 2, Mistral): sentencepiece's BPE merges
 * the adjacent pair whose merged piece has the highest score, which is what tok_spm does;
 * Unigram models with the identity normalizer (unigram.c, Viterbi over the pieces' scores).
 * Other normalizers (nmt_nfkc and its precompiled character map) are refused by name
 * (QB_EUNSUP). The file is
 * hostile: every length is checked against what is left. */
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"

#include <stdlib.h>
#include <string.h>

struct pb {
    const unsigned char *p, *end;
};

static int varint(struct pb *b, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end)
            return -1;
        v |= (uint64_t)(*b->p & 0x7f) << shift;
        if (!(*b->p++ & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The next field: number, wire type, and for a length-delimited one its bytes in *sub, for
 * a varint its value in *v, for a fixed32 its bits in *v. -1 when malformed. */
static int field(struct pb *b, uint32_t *num, int *wt, uint64_t *v, struct pb *sub)
{
    uint64_t key, len;

    if (varint(b, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return -1;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0: return varint(b, v);
    case 1:
        if (b->end - b->p < 8)
            return -1;
        b->p += 8;
        return 0;
    case 2:
        if (varint(b, &len) < 0 || len > (uint64_t)(b->end - b->p))
            return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 0;
    case 5:
        if (b->end - b->p < 4)
            return -1;
        *v = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 |
             (uint64_t)b->p[3] << 24;
        b->p += 4;
        return 0;
    default: return -1;
    }
}

struct model {
    int64_t n;
    const char **pieces;
    size_t *lens;
    float *scores;
    int32_t *types;
    uint64_t model_type;
    int byte_fallback;
    int64_t unk, bos, eos, pad;
    struct pb norm_name;
    int dummy_prefix, remove_ws;
};

static int piece(struct pb b, struct model *m, const char *path)
{
    struct pb sub = {0};
    uint64_t v = 0;
    uint32_t num;
    int wt;
    const int64_t i = m->n;

    m->pieces[i] = "";
    m->lens[i] = 0;
    m->scores[i] = 0;
    m->types[i] = QB_TT_NORMAL;
    while (b.p < b.end) {
        if (field(&b, &num, &wt, &v, &sub) < 0)
            return qb_err(QB_EFORMAT, "'%s': piece %lld is malformed", path, (long long)i);
        if (num == 1 && wt == 2) {
            m->pieces[i] = (const char *)sub.p;
            m->lens[i] = (size_t)(sub.end - sub.p);
        } else if (num == 2 && wt == 5) {
            uint32_t bits = (uint32_t)v;
            memcpy(&m->scores[i], &bits, 4);
        } else if (num == 3 && wt == 0) {
            if (v < QB_TT_NORMAL || v > QB_TT_BYTE)
                return qb_err(QB_EFORMAT, "'%s': piece %lld has type %llu", path, (long long)i,
                              (unsigned long long)v);
            m->types[i] = (int32_t)v;
        }
    }
    m->n++;
    return 0;
}

static int trainer(struct pb b, struct model *m, const char *path)
{
    struct pb sub;
    uint64_t v = 0;
    uint32_t num;
    int wt;

    while (b.p < b.end) {
        if (field(&b, &num, &wt, &v, &sub) < 0)
            return qb_err(QB_EFORMAT, "'%s': trainer_spec is malformed", path);
        if (wt != 0)
            continue;
        switch (num) {
        case 3: m->model_type = v; break;
        case 35: m->byte_fallback = v != 0; break;
        case 40: m->unk = (int32_t)v; break; /* int32: negatives are 10-byte varints */
        case 41: m->bos = (int32_t)v; break;
        case 42: m->eos = (int32_t)v; break;
        case 43: m->pad = (int32_t)v; break;
        }
    }
    return 0;
}

static int normalizer(struct pb b, struct model *m, const char *path)
{
    struct pb sub = {0};
    uint64_t v = 0;
    uint32_t num;
    int wt;

    while (b.p < b.end) {
        if (field(&b, &num, &wt, &v, &sub) < 0)
            return qb_err(QB_EFORMAT, "'%s': normalizer_spec is malformed", path);
        if (num == 1 && wt == 2)
            m->norm_name = sub;
        else if (num == 3 && wt == 0)
            m->dummy_prefix = v != 0;
        else if (num == 4 && wt == 0)
            m->remove_ws = v != 0;
    }
    return 0;
}

/* Counts the pieces (field 1) so that the arrays are allocated once. */
static int64_t count_pieces(struct pb b)
{
    struct pb sub;
    uint64_t v;
    uint32_t num;
    int wt;
    int64_t n = 0;

    while (b.p < b.end) {
        if (field(&b, &num, &wt, &v, &sub) < 0)
            return -1;
        n += num == 1 && wt == 2;
    }
    return n;
}

static int parse(struct pb b, struct model *m, const char *path)
{
    struct pb sub = {0};
    uint64_t v = 0;
    uint32_t num;
    int wt, rc;

    while (b.p < b.end) {
        if (field(&b, &num, &wt, &v, &sub) < 0)
            return qb_err(QB_EFORMAT, "'%s': not a SentencePiece model (malformed protobuf)", path);
        if (wt != 2)
            continue;
        if (num == 1)
            rc = piece(sub, m, path);
        else if (num == 2)
            rc = trainer(sub, m, path);
        else if (num == 3)
            rc = normalizer(sub, m, path);
        else
            rc = 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int check(const struct model *m, const char *path)
{
    size_t nl = (size_t)(m->norm_name.end - m->norm_name.p);

    if (m->n == 0)
        return qb_err(QB_EFORMAT, "'%s': the SentencePiece model has no pieces", path);
    if (m->model_type != 1 && m->model_type != 2)
        return qb_err(QB_EUNSUP,
                      "'%s': SentencePiece model type %llu is not supported (Unigram and BPE are)",
                      path, (unsigned long long)m->model_type);
    if (m->norm_name.p && !(nl == 8 && !memcmp(m->norm_name.p, "identity", 8)))
        return qb_err(QB_EUNSUP,
                      "'%s': SentencePiece normalizer '%.*s' is not supported (identity is)", path,
                      (int)(nl > 32 ? 32 : nl), (const char *)m->norm_name.p);
    if (m->remove_ws && m->model_type == 2)
        return qb_err(QB_EUNSUP,
                      "'%s': remove_extra_whitespaces in a SentencePiece BPE model is not "
                      "supported (Llama and Mistral models leave it off)",
                      path);
    for (int64_t i = 0; i < m->n; i++)
        if (memchr(m->pieces[i], 0, m->lens[i]))
            return qb_err(QB_EFORMAT, "'%s': piece %lld contains a NUL byte", path, (long long)i);
    return 0;
}

int qb_tok_load_spm_model_mem(const void *data, size_t size, const char *path,
                              struct qb_tokenizer **out)
{
    struct pb b = {data, (const unsigned char *)data + size};
    struct model m = {.model_type = 1, .unk = 0, .bos = 1, .eos = 2, .pad = -1};
    struct qb_tok_vocab v;
    int64_t n;
    int rc;

    *out = NULL;
    m.dummy_prefix = 1;
    m.remove_ws = 1;
    if ((n = count_pieces(b)) < 0)
        return qb_err(QB_EFORMAT, "'%s': not a SentencePiece model (malformed protobuf)", path);
    if (n > (1 << 22))
        return qb_err(QB_EFORMAT, "'%s': %lld pieces is too many", path, (long long)n);
    m.pieces = calloc((size_t)n + 1, sizeof *m.pieces);
    m.lens = calloc((size_t)n + 1, sizeof *m.lens);
    m.scores = calloc((size_t)n + 1, sizeof *m.scores);
    m.types = calloc((size_t)n + 1, sizeof *m.types);
    if (!m.pieces || !m.lens || !m.scores || !m.types) {
        rc = qb_err(QB_ENOMEM, "'%s': out of memory", path);
        goto out;
    }
    if ((rc = parse(b, &m, path)) < 0 || (rc = check(&m, path)) < 0)
        goto out;
    memset(&v, 0, sizeof v);
    v.model = m.model_type == 1 ? "unigram" : "llama";
    v.remove_extra_ws = m.remove_ws;
    v.n_vocab = m.n;
    v.pieces = m.pieces;
    v.piece_lens = m.lens;
    v.scores = m.scores;
    v.types = m.types;
    v.bos_id = m.bos >= 0 && m.bos < m.n ? (int32_t)m.bos : -1;
    v.eos_id = m.eos >= 0 && m.eos < m.n ? (int32_t)m.eos : -1;
    v.unk_id = m.unk >= 0 && m.unk < m.n ? (int32_t)m.unk : -1;
    v.pad_id = m.pad >= 0 && m.pad < m.n ? (int32_t)m.pad : -1;
    v.add_bos = -1; /* HF's LlamaTokenizer adds BOS; tok_spm's default for "llama" */
    v.add_eos = -1;
    v.add_space_prefix = m.dummy_prefix;
    rc = qb_tok_from_vocab(&v, path, out);
out:
    free(m.pieces);
    free(m.lens);
    free(m.scores);
    free(m.types);
    return rc;
}

int qb_tok_load_spm_model(const char *path, struct qb_tokenizer **out)
{
    char *data = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = qb_read_file(path, (size_t)64 << 20, &data, &len)) < 0)
        return rc;
    rc = qb_tok_load_spm_model_mem(data, len, path, out);
    free(data);
    return rc;
}
