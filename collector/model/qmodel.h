/* qmodel: a model's weights in one candidate configuration (a qspec): every linear layer,
 * the token embeddings and the output head quantized once, in the formats of
 * kernels/qtensor.h, for the engine to run directly (no dequantized copy of the model).
 * Norms and biases stay f32: borrowed from the source model, or, for the calibrated methods
 * (-gptq, -awq, -smooth; see collector/quant/calib.h), copies the qmodel owns, into which AWQ and
 * SmoothQuant fold their scales.
 *
 *     struct qb_qspec spec;  qb_qspec_parse("w4g128+output=w8", &spec);
 *     struct qb_qmodel *qm;
 *     if ((rc = qb_qmodel_new(model, &spec, &qm)) < 0) ...;
 *     qb_engine_new_q(qm, 0, &engine);  ...
 *     qb_qmodel_free(qm);   // after the engines that use it
 *
 *     // a calibrated config
 *     struct qb_calib *cal;
 *     qb_calib_load("calib.txt", model->tok, 0, 0, model->cfg.max_seq_len, &cal);
 *     qb_qspec_parse("w4g32-gptq", &spec);
 *     rc = qb_qmodel_new_calib(model, &spec, cal, &qm);   // collector/quant/calib.h
 *     qb_calib_free(cal);   // the qmodel keeps nothing of it
 *
 * The qmodel borrows the source model, which must outlive it. An f32 spec wraps the source
 * weights without copying them. */
#ifndef QB_QMODEL_H
#define QB_QMODEL_H

#include "collector/model/qspec.h"
#include "kernels/qtensor.h"

#include <stddef.h>

struct qb_model;

/* One weight matrix as the engine runs it. */
struct qb_qweight {
    struct qb_qtensor t;
    enum qb_act act;
};

/* The seven matrices of a layer, in this order. */
enum qb_lin {
    QB_LIN_Q,
    QB_LIN_K,
    QB_LIN_V,
    QB_LIN_O,
    QB_LIN_GATE,
    QB_LIN_UP,
    QB_LIN_DOWN,
    QB_LIN_COUNT
};

/* The f32 vectors of a layer as the engine applies them. */
struct qb_qlayer {
    const float *attn_norm, *ffn_norm; /* (dim) */
    const float *bq, *bk, *bv;         /* NULL unless the model has q/k/v biases */
};

struct qb_qmodel {
    const struct qb_model *m;
    struct qb_qspec spec;
    char name[QB_QSPEC_MAX];  /* canonical spec */
    struct qb_qweight *lin;   /* (n_layers, QB_LIN_COUNT) */
    struct qb_qweight embed;  /* (vocab, dim); rows are dequantized on lookup */
    struct qb_qweight output; /* (vocab, dim) */
    int embed_shares_output;  /* tied and quantized alike: one tensor, counted once */
    double quant_seconds;     /* wall time spent quantizing (calibration included) */
    struct qb_qlayer *layer;  /* (n_layers): the model's vectors, or into own_vecs */
    const float *out_norm;    /* (dim) the model's, or AWQ's copy in own_vecs */
    float *own_vecs;          /* copies with folded scales (calibrated configs); or NULL */
};

/* RTN configs. A spec with a method (-gptq, -awq, -smooth) is QB_EINVAL: it needs
 * calibration data, see qb_qmodel_new_calib (collector/quant/calib.h). */
int qb_qmodel_new(const struct qb_model *m, const struct qb_qspec *spec, struct qb_qmodel **out);

/* Fills qm->lin (and may replace qm->layer's vectors, own_vecs and out_norm) for a spec with
 * a method; called with the embeddings and the output head already rounded to nearest. */
typedef int (*qb_qmodel_fill_fn)(const void *ctx, struct qb_qmodel *qm);
/* Any config: fill (with ctx) quantizes the layers when the spec has a method and is
 * ignored otherwise; its time counts in quant_seconds. How calibration plugs in from the
 * layer above (collector/quant/calib.c) without this layer knowing it. */
int qb_qmodel_new_with(const struct qb_model *m, const struct qb_qspec *spec,
                       qb_qmodel_fill_fn fill, const void *fill_ctx, struct qb_qmodel **out);
/* The round-to-nearest twin of a (calibrated) spec, with the same tensors, formats, sizes
 * and sharing as the calibrated config would have (a tied head that calibration unties is
 * untied here too): what the memory probe measures without the calibration data. */
int qb_qmodel_new_twin(const struct qb_model *m, const struct qb_qspec *spec,
                       struct qb_qmodel **out);
void qb_qmodel_free(struct qb_qmodel *qm);

/* Bytes of all weights as stored for this config (norms and biases included, in f32), and
 * of the quantized matrices alone, and their bits per weight. */
size_t qb_qmodel_bytes(const struct qb_qmodel *qm);
double qb_qmodel_bpw(const struct qb_qmodel *qm);

/* For the calibrated quantizers (collector/quant/calib.c). */

/* Inputs a kernel iterates over for a matrix of cols inputs in precision b: integer formats
 * and quantized activations work in whole groups / 32-value sub-blocks (qtensor.h). */
int64_t qb_qbase_padded_cols(const struct qb_qbase *b, int64_t cols);
/* Round-to-nearest of w (rows, cols) into precision b, padded as the engine needs. An f32
 * base wraps w (borrowed) unless copy_f32, which makes an owned copy. what names the
 * matrix in messages. */
int qb_qweight_quantize(const float *w, int64_t rows, int64_t cols, const struct qb_qbase *b,
                        int copy_f32, const char *what, struct qb_qweight *out);

#endif
