/* qmodel: quantizes a source model into one config (see qmodel.h). */
#include "collector/model/qmodel.h"

#include "kernels/base/err.h"
#include "kernels/base/progress.h"
#include "collector/model/model.h"
#include "kernels/qmatmul.h"
#include "kernels/quantize.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const enum qb_target lin_target[QB_LIN_COUNT] = {
    QB_TGT_Q, QB_TGT_K, QB_TGT_V, QB_TGT_O, QB_TGT_GATE, QB_TGT_UP, QB_TGT_DOWN,
};

/* Inputs a kernel iterates over: integer formats and quantized activations work in whole
 * groups / 32-value sub-blocks (see the padding note in qtensor.h). */
int64_t qb_qbase_padded_cols(const struct qb_qbase *b, int64_t cols)
{
    int64_t unit = b->group > 0 ? b->group : QB_SUB;
    if (b->fmt == QB_FMT_I8 || b->group > 0 || b->act != QB_ACT_F32)
        return (cols + unit - 1) / unit * unit;
    return cols;
}

int qb_qweight_quantize(const float *w, int64_t rows, int64_t cols, const struct qb_qbase *b,
                        int copy_f32, const char *what, struct qb_qweight *out)
{
    struct qb_quant_opts o = {.clip = -1};
    int64_t kpad = qb_qbase_padded_cols(b, cols);
    float *padded = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    out->act = b->act;
    if (b->fmt == QB_FMT_F32 && !copy_f32) {
        qb_qtensor_wrap_f32(w, rows, cols, &out->t);
        out->t.in_cols = 0;
        return 0;
    }
    if (kpad != cols) {
        if (!(padded = calloc((size_t)(rows * kpad), sizeof(float))))
            return qb_err(QB_ENOMEM, "%s: out of memory", what);
        for (int64_t r = 0; r < rows; r++)
            memcpy(padded + r * kpad, w + r * cols, (size_t)cols * sizeof(float));
        w = padded;
    }
    rc = qb_quantize(w, rows, kpad, b->fmt, b->group, b->asym, &o, &out->t);
    free(padded);
    if (rc < 0)
        return qb_err_prefix(rc, "%s", what);
    out->t.in_cols = kpad != cols ? cols : 0;
    return 0;
}

void qb_qmodel_free(struct qb_qmodel *qm)
{
    if (!qm)
        return;
    if (qm->lin && qm->m)
        for (int64_t i = 0; i < qm->m->cfg.n_layers * QB_LIN_COUNT; i++)
            qb_qtensor_release(&qm->lin[i].t);
    if (!qm->embed_shares_output)
        qb_qtensor_release(&qm->embed.t);
    qb_qtensor_release(&qm->output.t);
    free(qm->lin);
    free(qm->layer);
    free(qm->own_vecs);
    free(qm);
}

int qb_qmodel_new(const struct qb_model *m, const struct qb_qspec *spec, struct qb_qmodel **out)
{
    return qb_qmodel_new_with(m, spec, NULL, NULL, out);
}

int qb_qmodel_new_with(const struct qb_model *m, const struct qb_qspec *spec,
                       qb_qmodel_fill_fn fill, const void *fill_ctx, struct qb_qmodel **out)
{
    const struct qb_config *c = &m->cfg;
    const int64_t d = c->dim, q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    const int64_t hid = c->hidden_dim;
    struct qb_qmodel *qm;
    const struct qb_qbase *be, *bo;
    double t0 = omp_get_wtime();
    int rc = 0;

    *out = NULL;
    if (spec->method != QB_METHOD_RTN && !fill) {
        char name[QB_QSPEC_MAX];
        qb_qspec_format(spec, name, sizeof name);
        return qb_err(QB_EINVAL,
                      "config '%s' needs calibration data (plan key calibration: or "
                      "--calib FILE)",
                      name);
    }
    if ((rc = qb_qspec_check_layers(spec, c->n_layers)) < 0)
        return qb_err_prefix(rc, "'%s'", m->path);
    if (!(qm = calloc(1, sizeof *qm)) ||
        !(qm->lin = calloc((size_t)(c->n_layers * QB_LIN_COUNT), sizeof *qm->lin)) ||
        !(qm->layer = calloc((size_t)c->n_layers, sizeof *qm->layer))) {
        if (qm)
            free(qm->lin);
        free(qm);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    qm->m = m;
    qm->spec = *spec;
    qb_qspec_format(spec, qm->name, sizeof qm->name);
    qm->out_norm = m->out_norm;
    for (int64_t l = 0; l < c->n_layers; l++) {
        const struct qb_layer *L = &m->layers[l];
        qm->layer[l] = (struct qb_qlayer){L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv};
    }

    /* progress in units of a layer, the output head and the embeddings one each */
    qb_progress("quantizing", 0, c->n_layers + 2);
    bo = qb_qspec_for(spec, QB_TGT_OUTPUT);
    be = qb_qspec_for(spec, QB_TGT_EMBED);
    rc = qb_qweight_quantize(m->output, c->vocab_size, d, bo, 0, "output head", &qm->output);
    if (rc == 0 && m->output == m->tok_embd && be->fmt == bo->fmt && be->group == bo->group &&
        be->asym == bo->asym) {
        qm->embed = qm->output;
        qm->embed.act = QB_ACT_F32;
        qm->embed_shares_output = 1;
    } else if (rc == 0) {
        /* embeddings are looked up, never multiplied: their activation mode is irrelevant */
        struct qb_qbase eb = *be;
        eb.act = QB_ACT_F32;
        rc = qb_qweight_quantize(m->tok_embd, c->vocab_size, d, &eb, 0, "token embeddings",
                                 &qm->embed);
    }
    if (rc == 0)
        qb_progress("quantizing", 2, c->n_layers + 2);
    /* the embeddings first: calibration feeds the layers what the engine will look up */
    if (rc == 0 && spec->method != QB_METHOD_RTN)
        rc = fill(fill_ctx, qm);
    for (int64_t l = 0; l < c->n_layers && rc == 0 && spec->method == QB_METHOD_RTN; l++) {
        const struct qb_layer *L = &m->layers[l];
        const float *src[QB_LIN_COUNT] = {L->wq,     L->wk,   L->wv,    L->wo,
                                          L->w_gate, L->w_up, L->w_down};
        const int64_t rows[QB_LIN_COUNT] = {q, kv, kv, d, hid, hid, d};
        const int64_t cols[QB_LIN_COUNT] = {d, d, d, q, d, d, hid};
        for (int k = 0; k < QB_LIN_COUNT && rc == 0; k++) {
            static const char *names[QB_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
            char what[64];
            snprintf(what, sizeof what, "layer %lld %s projection", (long long)l, names[k]);
            rc = qb_qweight_quantize(src[k], rows[k], cols[k],
                                     qb_qspec_for_layer(spec, l, lin_target[k]), 0, what,
                                     &qm->lin[l * QB_LIN_COUNT + k]);
        }
        qb_progress("quantizing", l + 3, c->n_layers + 2);
    }
    if (rc < 0) {
        char name[QB_QSPEC_MAX];
        memcpy(name, qm->name, sizeof name);
        qb_qmodel_free(qm);
        return qb_err_prefix(rc, "'%s' in config '%s'", m->path, name);
    }
    qm->quant_seconds = omp_get_wtime() - t0;
    *out = qm;
    return 0;
}

int qb_qmodel_new_twin(const struct qb_model *m, const struct qb_qspec *spec,
                       struct qb_qmodel **out)
{
    struct qb_qspec rtn = *spec;
    struct qb_qmodel *qm;
    int rc;
    rtn.method = QB_METHOD_RTN;
    if ((rc = qb_qmodel_new(m, &rtn, &qm)) < 0)
        return rc;
    if (qm->embed_shares_output && qb_qspec_unties_head(spec)) {
        struct qb_qbase eb = *qb_qspec_for(spec, QB_TGT_EMBED);
        eb.act = QB_ACT_F32;
        qm->embed_shares_output = 0;
        if ((rc = qb_qweight_quantize(m->tok_embd, m->cfg.vocab_size, m->cfg.dim, &eb, 0,
                                      "token embeddings", &qm->embed)) < 0) {
            memset(&qm->embed, 0, sizeof qm->embed);
            qb_qmodel_free(qm);
            return rc;
        }
    }
    qm->spec = *spec;
    qb_qspec_format(spec, qm->name, sizeof qm->name);
    *out = qm;
    return 0;
}

size_t qb_qmodel_bytes(const struct qb_qmodel *qm)
{
    const struct qb_config *c = &qm->m->cfg;
    size_t b = qb_qtensor_bytes(&qm->output.t);
    if (!qm->embed_shares_output)
        b += qb_qtensor_bytes(&qm->embed.t);
    for (int64_t i = 0; i < c->n_layers * QB_LIN_COUNT; i++)
        b += qb_qtensor_bytes(&qm->lin[i].t);
    /* norms (2 per layer + final) and q/k/v biases stay f32 */
    b += (size_t)((2 * c->n_layers + 1) * c->dim) * sizeof(float);
    if (c->has_qkv_bias)
        b += (size_t)(c->n_layers * (c->n_heads + 2 * c->n_kv_heads) * c->head_dim) * sizeof(float);
    return b;
}

double qb_qmodel_bpw(const struct qb_qmodel *qm)
{
    const struct qb_config *c = &qm->m->cfg;
    size_t bytes = qb_qtensor_bytes(&qm->output.t);
    double n = (double)c->vocab_size * (double)c->dim;
    if (!qm->embed_shares_output) {
        bytes += qb_qtensor_bytes(&qm->embed.t);
        n += (double)c->vocab_size * (double)c->dim;
    }
    for (int64_t i = 0; i < c->n_layers * QB_LIN_COUNT; i++) {
        bytes += qb_qtensor_bytes(&qm->lin[i].t);
        const struct qb_qtensor *t = &qm->lin[i].t;
        n += (double)t->rows * (double)(t->in_cols > 0 ? t->in_cols : t->cols);
    }
    return 8.0 * (double)bytes / n;
}
