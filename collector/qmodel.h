/* qmodel: a model's weights in one candidate configuration (a qspec): every linear layer,
 * the token embeddings and the output head quantized once, in the formats of
 * kernels/qtensor.h, for the engine to run directly (no dequantized copy of the model).
 * Norms and biases stay f32 and are borrowed from the source model.
 *
 *     struct qb_qspec spec;  qb_qspec_parse("w4g128+output=w8", &spec);
 *     struct qb_qmodel *qm;
 *     if ((rc = qb_qmodel_new(model, &spec, &qm)) < 0) ...;
 *     qb_engine_new_q(qm, 0, &engine);  ...
 *     qb_qmodel_free(qm);   // after the engines that use it
 *
 * The qmodel borrows the source model, which must outlive it. An f32 spec wraps the source
 * weights without copying them. */
#ifndef QB_QMODEL_H
#define QB_QMODEL_H

#include "kernels/qspec.h"
#include "kernels/qtensor.h"

#include <stddef.h>

struct qb_model;

/* One weight matrix as the engine runs it. */
struct qb_qweight {
    struct qb_qtensor t;
    enum qb_act act;
};

/* The seven matrices of a layer, in this order. */
enum qb_lin { QB_LIN_Q, QB_LIN_K, QB_LIN_V, QB_LIN_O, QB_LIN_GATE, QB_LIN_UP, QB_LIN_DOWN, QB_LIN_COUNT };

struct qb_qmodel {
    const struct qb_model *m;
    struct qb_qspec spec;
    char name[QB_QSPEC_MAX];     /* canonical spec */
    struct qb_qweight *lin;      /* (n_layers, QB_LIN_COUNT) */
    struct qb_qweight embed;     /* (vocab, dim); rows are dequantized on lookup */
    struct qb_qweight output;    /* (vocab, dim) */
    int embed_shares_output;     /* tied and quantized alike: one tensor, counted once */
    double quant_seconds;        /* wall time spent quantizing */
};

int qb_qmodel_new(const struct qb_model *m, const struct qb_qspec *spec, struct qb_qmodel **out);
void qb_qmodel_free(struct qb_qmodel *qm);

/* Bytes of all weights as stored for this config (norms and biases included, in f32), and
 * of the quantized matrices alone, and their bits per weight. */
size_t qb_qmodel_bytes(const struct qb_qmodel *qm);
double qb_qmodel_bpw(const struct qb_qmodel *qm);

#endif
