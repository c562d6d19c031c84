/* gguf_export: writes a qmodel as GGUF (see gguf_export.h). */
#include "collector/model/gguf_export.h"

#include "kernels/base/err.h"
#include "kernels/half.h"
#include "kernels/qtensor.h"
#include "collector/model/gguf.h"
#include "collector/model/gguf_write.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's llama_ftype numbers for general.file_type */
enum { FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_BF16 = 32 };

struct ex {
    const struct qb_qmodel *qm;
    struct qb_gguf_writer *w;
    int permute; /* HF rotate-half source: q/k rows into llama.cpp's interleaved order */
    int a8;      /* some matrix has quantized activations */
};

/* The spec's name plus "+target=f16": the nearest config that keeps `target` exportable. */
static void nearest_override(const struct ex *x, const char *target, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s+%s=f16", x->qm->name, target);
}

/* Why fmt cannot be written exactly, naming the nearest config that can. */
static int refuse_fmt(const struct ex *x, const struct qb_qtensor *t, const char *name)
{
    const char *cfg = x->qm->name;
    switch (t->fmt) {
    case QB_FMT_E4M3:
    case QB_FMT_E5M2:
        return qb_err(QB_EUNSUP,
                      "config '%s' cannot be exported as GGUF: '%s' is fp8, which no ggml type "
                      "holds (it would be re-quantized); nearest config that exports exactly: "
                      "f16 (or bf16)",
                      cfg, name);
    case QB_FMT_I3:
    case QB_FMT_I2:
        return qb_err(QB_EUNSUP,
                      "config '%s' cannot be exported as GGUF: '%s' is int%d, which no ggml type "
                      "holds exactly (Q3_K/Q2_K use other scales: it would be re-quantized); "
                      "nearest config that exports exactly: w4g%d%s (%s)",
                      cfg, name, qb_fmt_bits(t->fmt), t->group, t->asym ? "" : "-sym",
                      t->asym ? "Q4_1" : "Q4_0");
    default:
        return qb_err(QB_EUNSUP, "config '%s': '%s' has format %s, which has no GGUF type", cfg,
                      name, qb_fmt_name(t->fmt));
    }
}

/* Q4_0 / Q4_1 blocks from a group-wise int4 tensor: every 32-weight sub-block gets its
 * group's header, then its 16 bytes of codes unchanged (the nibble layouts agree). */
static void int4_blocks(const struct qb_qtensor *t, int64_t row, unsigned char *dst)
{
    const size_t hb = t->asym ? sizeof(struct qb_ghdr_asym) : sizeof(struct qb_ghdr_sym);
    const unsigned char *src = (const unsigned char *)t->data + (size_t)row * t->row_bytes;
    const int subs = t->group / QB_SUB;
    for (int64_t g = 0; g < t->cols / t->group; g++) {
        const unsigned char *hdr = src, *codes = src + hb;
        for (int s = 0; s < subs; s++) {
            memcpy(dst, hdr, hb);
            memcpy(dst + hb, codes + (size_t)s * QB_SUB_BYTES_I4, QB_SUB_BYTES_I4);
            dst += hb + QB_SUB_BYTES_I4;
        }
        src += hb + (size_t)subs * QB_SUB_BYTES_I4;
    }
}

/* Q8_0 blocks from an int8 row whose scale s is an f16 value. */
static void int8_blocks(const struct qb_qtensor *t, int64_t row, unsigned char *dst)
{
    const int8_t *q = (const int8_t *)t->data + (size_t)row * t->row_bytes;
    uint16_t d = qb_f32_to_f16(t->row_scale[row]);
    for (int64_t b = 0; b < t->cols / 32; b++, dst += 34) {
        memcpy(dst, &d, 2);
        memcpy(dst + 2, q + b * 32, 32);
    }
}

/* Rows of a w8 tensor whose f32 scale f16 cannot hold exactly. */
static int64_t int8_inexact_rows(const struct qb_qtensor *t)
{
    int64_t bad = 0;
    for (int64_t r = 0; r < t->rows; r++) {
        float s = t->row_scale[r];
        bad += !(isfinite(s) && qb_f16_to_f32(qb_f32_to_f16(s)) == s);
    }
    return bad;
}

/* The ggml type of tensor t and its bytes per row in that type; refuses what is not exact. */
static int ggml_type_of(const struct ex *x, const struct qb_qtensor *t, const char *name,
                        const char *target, uint32_t *type, size_t *row_out)
{
    char near[QB_QSPEC_MAX + 32];
    int64_t in = t->in_cols ? t->in_cols : t->cols;
    switch (t->fmt) {
    case QB_FMT_F32:
        *type = QB_GGML_F32;
        *row_out = (size_t)t->cols * 4;
        break;
    case QB_FMT_F16:
        *type = QB_GGML_F16;
        *row_out = (size_t)t->cols * 2;
        break;
    case QB_FMT_BF16:
        *type = QB_GGML_BF16;
        *row_out = (size_t)t->cols * 2;
        break;
    case QB_FMT_I4:
        *type = t->asym ? QB_GGML_Q4_1 : QB_GGML_Q4_0;
        *row_out = (size_t)(t->cols / 32) * (t->asym ? 20 : 18);
        break;
    case QB_FMT_I8: {
        int64_t bad = int8_inexact_rows(t);
        if (bad)
            return qb_err(QB_EUNSUP,
                          "config '%s' cannot be exported as GGUF: int8 rows carry one f32 scale "
                          "each and Q8_0 an f16 scale per 32 weights; %lld of the %lld rows of "
                          "'%s' have a scale f16 cannot hold, so Q8_0 would re-quantize them; "
                          "nearest configs that export exactly: f16, or w4g32-sym (Q4_0)",
                          x->qm->name, (long long)bad, (long long)t->rows, name);
        *type = QB_GGML_Q8_0;
        *row_out = (size_t)(t->cols / 32) * 34;
        break;
    }
    default: return refuse_fmt(x, t, name);
    }
    if (in != t->cols ||
        (*type != QB_GGML_F32 && *type != QB_GGML_F16 && *type != QB_GGML_BF16 && t->cols % 32)) {
        nearest_override(x, target, near, sizeof near);
        return qb_err(QB_EUNSUP,
                      "config '%s' cannot be exported as GGUF: '%s' has %lld inputs, not a whole "
                      "number of 32-weight %s blocks; nearest config that exports exactly: %s",
                      x->qm->name, name, (long long)in, qb_gguf_ggml_type_name(*type), near);
    }
    return 0;
}

/* Row `r` of the GGUF tensor: source row r, or for permuted q/k the rotate-half row that
 * llama.cpp's interleaved order puts there (row h*hd + 2i + j <- h*hd + j*hd/2 + i). */
static int64_t src_row(int64_t r, int64_t hd, int perm)
{
    int64_t h = r / hd, k = r % hd;
    return perm ? h * hd + (k % 2) * (hd / 2) + k / 2 : r;
}

/* Adds one weight matrix (rows, cols) to the file in its exact ggml type. */
static int put_matrix(struct ex *x, const char *name, const char *target,
                      const struct qb_qweight *qw, int perm)
{
    const struct qb_qtensor *t = &qw->t;
    const int64_t hd = x->qm->m->cfg.head_dim;
    uint32_t type = 0;
    size_t rb = 0;
    unsigned char *buf;
    int64_t ne[2] = {t->cols, t->rows};
    int rc;

    if ((rc = ggml_type_of(x, t, name, target, &type, &rb)) < 0)
        return rc;
    x->a8 |= qw->act != QB_ACT_F32;
    if (!perm && (type == QB_GGML_F32 || type == QB_GGML_F16 || type == QB_GGML_BF16))
        return qb_gguf_put_tensor(x->w, name, type, 2, ne, t->data, rb * (size_t)t->rows, 0);
    if (!(buf = malloc(rb * (size_t)t->rows)))
        return qb_err(QB_ENOMEM, "export: out of memory for '%s'", name);
    for (int64_t r = 0; r < t->rows; r++) {
        int64_t s = src_row(r, hd, perm);
        unsigned char *dst = buf + (size_t)r * rb;
        if (type == QB_GGML_Q4_0 || type == QB_GGML_Q4_1)
            int4_blocks(t, s, dst);
        else if (type == QB_GGML_Q8_0)
            int8_blocks(t, s, dst);
        else
            memcpy(dst, (const unsigned char *)t->data + (size_t)s * t->row_bytes, rb);
    }
    return qb_gguf_put_tensor(x->w, name, type, 2, ne, buf, rb * (size_t)t->rows, 1);
}

/* Adds an f32 vector of n values (permuted as q/k rows of one value when perm). */
static int put_vector(struct ex *x, const char *name, const float *v, int64_t n, int perm)
{
    int64_t ne[1] = {n};
    float *buf;
    if (!perm)
        return qb_gguf_put_tensor(x->w, name, QB_GGML_F32, 1, ne, v, (size_t)n * 4, 0);
    if (!(buf = malloc((size_t)n * 4)))
        return qb_err(QB_ENOMEM, "export: out of memory for '%s'", name);
    for (int64_t r = 0; r < n; r++)
        buf[r] = v[src_row(r, x->qm->m->cfg.head_dim, 1)];
    return qb_gguf_put_tensor(x->w, name, QB_GGML_F32, 1, ne, buf, (size_t)n * 4, 1);
}

static int put_tensors(struct ex *x)
{
    static const char *const lin_names[QB_LIN_COUNT] = {
        "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    static const char *const lin_targets[QB_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
    const struct qb_qmodel *qm = x->qm;
    const struct qb_config *c = &qm->m->cfg;
    char name[64];
    int rc;

    if ((rc = put_matrix(x, "token_embd.weight", "embed", &qm->embed, 0)) < 0 ||
        (rc = put_vector(x, "output_norm.weight", qm->out_norm, c->dim, 0)) < 0)
        return rc;
    if (!qm->embed_shares_output &&
        (rc = put_matrix(x, "output.weight", "output", &qm->output, 0)) < 0)
        return rc;
    for (int64_t l = 0; l < c->n_layers; l++) {
        const struct qb_qlayer *ly = &qm->layer[l];
        snprintf(name, sizeof name, "blk.%lld.attn_norm.weight", (long long)l);
        if ((rc = put_vector(x, name, ly->attn_norm, c->dim, 0)) < 0)
            return rc;
        snprintf(name, sizeof name, "blk.%lld.ffn_norm.weight", (long long)l);
        if ((rc = put_vector(x, name, ly->ffn_norm, c->dim, 0)) < 0)
            return rc;
        for (int k = 0; k < QB_LIN_COUNT; k++) {
            int perm = x->permute && (k == QB_LIN_Q || k == QB_LIN_K);
            snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, lin_names[k]);
            if ((rc = put_matrix(x, name, lin_targets[k], &qm->lin[l * QB_LIN_COUNT + k], perm)) <
                0)
                return rc;
        }
        if (!ly->bq)
            continue;
        snprintf(name, sizeof name, "blk.%lld.attn_q.bias", (long long)l);
        if ((rc = put_vector(x, name, ly->bq, c->n_heads * c->head_dim, x->permute)) < 0)
            return rc;
        snprintf(name, sizeof name, "blk.%lld.attn_k.bias", (long long)l);
        if ((rc = put_vector(x, name, ly->bk, c->n_kv_heads * c->head_dim, x->permute)) < 0)
            return rc;
        snprintf(name, sizeof name, "blk.%lld.attn_v.bias", (long long)l);
        if ((rc = put_vector(x, name, ly->bv, c->n_kv_heads * c->head_dim, 0)) < 0)
            return rc;
    }
    return 0;
}

static int file_type(const struct qb_qbase *b)
{
    switch (b->fmt) {
    case QB_FMT_F16: return FT_F16;
    case QB_FMT_BF16: return FT_BF16;
    case QB_FMT_I4: return b->asym ? FT_Q4_1 : FT_Q4_0;
    case QB_FMT_I8: return FT_Q8_0;
    default: return FT_F32;
    }
}

static int put_hparams(struct ex *x, const char *arch)
{
    const struct qb_qmodel *qm = x->qm;
    const struct qb_config *c = &qm->m->cfg;
    const char *base = strrchr(qm->m->path, '/');
    char key[96], gname[256];
    int rc = 0;

    snprintf(gname, sizeof gname, "%s %s", base ? base + 1 : qm->m->path, qm->name);
#define K(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    if ((rc = qb_gguf_put_str(x->w, "general.architecture", arch)) < 0 ||
        (rc = qb_gguf_put_str(x->w, "general.name", gname)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, "general.alignment", 32)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, "general.quantization_version", 2)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, "general.file_type", (uint32_t)file_type(&qm->spec.base))) <
            0 ||
        (rc = qb_gguf_put_u32(x->w, K("context_length"), (uint32_t)c->max_seq_len)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("embedding_length"), (uint32_t)c->dim)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("block_count"), (uint32_t)c->n_layers)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("feed_forward_length"), (uint32_t)c->hidden_dim)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("rope.dimension_count"), (uint32_t)c->head_dim)) < 0 ||
        (rc = qb_gguf_put_f32(x->w, K("rope.freq_base"), c->rope_theta)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("attention.head_count"), (uint32_t)c->n_heads)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("attention.head_count_kv"), (uint32_t)c->n_kv_heads)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("attention.key_length"), (uint32_t)c->head_dim)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("attention.value_length"), (uint32_t)c->head_dim)) < 0 ||
        (rc = qb_gguf_put_f32(x->w, K("attention.layer_norm_rms_epsilon"), c->norm_eps)) < 0 ||
        (rc = qb_gguf_put_u32(x->w, K("vocab_size"), (uint32_t)c->vocab_size)) < 0 ||
        (rc = qb_gguf_put_str(x->w, "qbrief.config", qm->name)) < 0 ||
        (rc = qb_gguf_put_str(x->w, "qbrief.source", qm->m->path)) < 0)
        return rc;
#undef K
    if (x->permute)
        rc = qb_gguf_put_str(x->w, "qbrief.source_rope", "half");
    return rc;
}

static int put_special(struct qb_gguf_writer *w, const char *key, int32_t id)
{
    return id >= 0 ? qb_gguf_put_u32(w, key, (uint32_t)id) : 0;
}

static int put_tokenizer(struct ex *x)
{
    const struct qb_tokenizer *tok = x->qm->m->tok;
    struct qb_tok_vocab v;
    int rc;

    if (!tok)
        return qb_err(QB_EINVAL,
                      "'%s' has no tokenizer, so llama.cpp could not use the export; pass "
                      "--tokenizer FILE",
                      x->qm->m->path);
    if ((rc = qb_tok_to_vocab(tok, &v)) < 0)
        return rc;
    /* stops at the first failure, whose code is in rc */
    (void)((rc = qb_gguf_put_str(x->w, "tokenizer.ggml.model", v.model)) < 0 ||
           (v.pre && (rc = qb_gguf_put_str(x->w, "tokenizer.ggml.pre", v.pre)) < 0) ||
           (rc = qb_gguf_put_str_arr(x->w, "tokenizer.ggml.tokens", v.pieces, v.piece_lens,
                                     v.n_vocab)) < 0 ||
           (v.scores &&
            (rc = qb_gguf_put_f32_arr(x->w, "tokenizer.ggml.scores", v.scores, v.n_vocab)) < 0) ||
           (rc = qb_gguf_put_i32_arr(x->w, "tokenizer.ggml.token_type", v.types, v.n_vocab)) < 0 ||
           (v.merges && (rc = qb_gguf_put_str_arr(x->w, "tokenizer.ggml.merges", v.merges,
                                                  v.merge_lens, v.n_merges)) < 0) ||
           (rc = put_special(x->w, "tokenizer.ggml.bos_token_id", v.bos_id)) < 0 ||
           (rc = put_special(x->w, "tokenizer.ggml.eos_token_id", v.eos_id)) < 0 ||
           (rc = put_special(x->w, "tokenizer.ggml.unknown_token_id", v.unk_id)) < 0 ||
           (rc = put_special(x->w, "tokenizer.ggml.padding_token_id", v.pad_id)) < 0 ||
           (rc = qb_gguf_put_bool(x->w, "tokenizer.ggml.add_bos_token", v.add_bos > 0)) < 0 ||
           (rc = qb_gguf_put_bool(x->w, "tokenizer.ggml.add_eos_token", v.add_eos > 0)) < 0 ||
           (v.add_space_prefix >= 0 &&
            (rc = qb_gguf_put_bool(x->w, "tokenizer.ggml.add_space_prefix", v.add_space_prefix)) <
                0));
    qb_tok_vocab_release(&v);
    return rc;
}

int qb_gguf_export(const struct qb_qmodel *qm, const char *path, char *note, size_t note_cap)
{
    const struct qb_config *c = &qm->m->cfg;
    struct ex x = {.qm = qm};
    const char *arch;
    int rc;

    if (note && note_cap)
        note[0] = 0;
    if (!strcmp(c->arch, "qwen2")) {
        arch = "qwen2";
    } else if (!strcmp(c->arch, "llama") || !strcmp(c->arch, "mistral")) {
        arch = "llama";
        x.permute = c->rope_style == QB_ROPE_HALF;
        if (c->has_qkv_bias)
            return qb_err(QB_EUNSUP,
                          "'%s': a Llama with q/k/v biases is not exported (GGUF llama files "
                          "carry none that qbrief reads back)",
                          qm->m->path);
    } else {
        return qb_err(QB_EUNSUP, "'%s': architecture '%s' is not exported (llama, qwen2 are)",
                      qm->m->path, c->arch);
    }
    if (x.permute && c->head_dim % 2)
        return qb_err(QB_EUNSUP, "'%s': odd head size %lld", qm->m->path, (long long)c->head_dim);
    if ((rc = qb_gguf_writer_new(&x.w)) < 0)
        return rc;
    if ((rc = put_hparams(&x, arch)) < 0 || (rc = put_tokenizer(&x)) < 0 ||
        (rc = put_tensors(&x)) < 0 || (rc = qb_gguf_writer_write(x.w, path)) < 0)
        goto out;
    if (x.a8 && note && note_cap)
        snprintf(note, note_cap,
                 "config %s quantizes activations at run time; GGUF stores weights only, and "
                 "llama.cpp chooses its own activation arithmetic",
                 qm->name);
out:
    qb_gguf_writer_free(x.w);
    return rc;
}
