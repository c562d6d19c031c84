/* qspec: the config-spec grammar shared by the CLI, plan files, the store and the brief.
 * A spec names one candidate configuration of a model; it is printed back in one canonical
 * form, so the same config always has the same name.
 *
 *   spec      = base [ "-" method ] { "+" override }
 *   base      = "f32" | "f16" | "bf16"
 *             | "fp8" [ "-e5m2" ] [ "-a8" ]         fp8 weights, per-channel scales
 *             | "w8" | "w8a8"                       int8 per-channel (weight-only / +int8 acts)
 *             | "w4g" N [ "-sym" ] [ "-a8" ]         int4 groups of N (32, 64, 128); asym default
 *             | "w3g" N [ "-sym" ] | "w2g" N [ "-sym" ]
 *   method    = "rtn" (default, not printed) | "gptq" | "awq" | "smooth"
 *   override  = [ layers [ "." tensor ] | tensor ] "=" base   e.g. +output=w8, +L0-1=w8
 *   tensor    = "output" | "embed" | "attn" | "ffn" | "q" | "k" | "v" | "o" | "gate" | "up" |
 * "down"
 *   layers    = "L" ( "*" | N [ "-" M ] )                0-based, N <= M < QB_QSPEC_MAX_LAYERS
 *
 * Layer overrides ("L5.down=bf16", "L0-1=w8": every linear matrix of layers 0 and 1) take
 * precedence over overrides without layers, may not overlap one another, and print back in
 * one canonical order (whole layers, then attn/ffn groups, then single tensors, each by
 * first layer; adjacent layers with the same precision merged into ranges). "L*.v" is "v".
 *
 * Examples: f32, bf16, fp8, fp8-a8, w8, w8a8, w4g128, w4g32-sym, w4g128-a8, w3g64, w2g32,
 * w4g128-gptq+output=w8.
 *
 *     struct qb_qspec s;
 *     if (qb_qspec_parse("w4g128+output=w8", &s) < 0) puts(qb_errmsg()); // lists valid forms
 *     char buf[QB_QSPEC_MAX]; qb_qspec_format(&s, buf, sizeof buf);
 */
#ifndef QB_QSPEC_H
#define QB_QSPEC_H

#include "kernels/qtensor.h"

#include <stddef.h>
#include <stdint.h>

#define QB_QSPEC_MAX 128
#define QB_QSPEC_MAX_OVERRIDES 32
#define QB_QSPEC_MAX_LAYERS 256

enum qb_method { QB_METHOD_RTN, QB_METHOD_GPTQ, QB_METHOD_AWQ, QB_METHOD_SMOOTH };

/* Which tensors an override applies to. */
enum qb_target {
    QB_TGT_OUTPUT,
    QB_TGT_EMBED,
    QB_TGT_ATTN,
    QB_TGT_FFN,
    QB_TGT_Q,
    QB_TGT_K,
    QB_TGT_V,
    QB_TGT_O,
    QB_TGT_GATE,
    QB_TGT_UP,
    QB_TGT_DOWN,
    QB_TGT_LAYER, /* every linear matrix of the layers named (written "L0-1=w8") */
    QB_TGT_COUNT
};

/* One precision: the weight format and how activations enter the matmul. */
struct qb_qbase {
    enum qb_fmt fmt;
    int group; /* I4/I3/I2 */
    int asym;  /* I4/I3/I2 */
    enum qb_act act;
};

struct qb_qspec {
    struct qb_qbase base;
    enum qb_method method;
    int n_overrides;
    struct {
        enum qb_target target;
        struct qb_qbase base;
        int layered; /* 0: every layer (an override without layers); 1: layers lo..hi */
        int lo, hi;
    } overrides[QB_QSPEC_MAX_OVERRIDES];
};

/* Parses s. QB_EINVAL with a message that quotes s and lists the valid forms. */
int qb_qspec_parse(const char *s, struct qb_qspec *out);

/* Writes the canonical form (at most QB_QSPEC_MAX bytes with the NUL). */
void qb_qspec_format(const struct qb_qspec *s, char *buf, size_t cap);
void qb_qbase_format(const struct qb_qbase *b, char *buf, size_t cap);

/* The precision a tensor gets, ignoring layer overrides: the last matching override without
 * layers, else the base. Tensor kinds are the targets Q..DOWN, EMBED and OUTPUT. */
const struct qb_qbase *qb_qspec_for(const struct qb_qspec *s, enum qb_target tensor);
/* The precision tensor (Q..DOWN) of layer l gets: the layer override covering it, else
 * qb_qspec_for. */
const struct qb_qbase *qb_qspec_for_layer(const struct qb_qspec *s, int64_t l,
                                          enum qb_target tensor);
/* The highest layer a layer override names, or -1. */
int qb_qspec_max_layer(const struct qb_qspec *s);
/* 0 when every layer s names exists in a model of n_layers; else QB_EINVAL naming the
 * layer, the model's range and the valid forms. */
int qb_qspec_check_layers(const struct qb_qspec *s, int64_t n_layers);

/* 1 when the spec's method also quantizes the output head (GPTQ: an integer head; AWQ: a
 * group-wise head), so that a head tied to the embeddings gets untied
 * (collector/quant/calib.h). */
int qb_qspec_unties_head(const struct qb_qspec *s);

#endif
