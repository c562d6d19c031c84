/* calib: calibration data and the calibrated quantizers -- GPTQ, AWQ and SmoothQuant -- that
 * qb_qmodel_new_calib (collector/model/qmodel.h) runs for the -gptq, -awq and -smooth configs.
 *
 *     struct qb_calib *cal;
 *     if ((rc = qb_calib_load("calib.txt", model->tok, 0, 0, model->cfg.max_seq_len, &cal)) < 0)
 *         ...;                                   // 128 x 512 by default, fewer if the text is
 * short cal->gptq_act_order = 1;                   // settings may be changed after loading
 *     qb_qmodel_new_calib(model, &spec, cal, &qm);
 *     qb_calib_free(cal);
 *
 * Calibration data. The text is tokenized without a BOS and cut into consecutive pieces;
 * each sequence is the tokenizer's BOS (when it has one) followed by one piece, seq_len
 * tokens in all (seq_len is capped at the model's context). There are as many sequences as
 * the text fills, at most n_seq; a text shorter than one sequence gives one shorter
 * sequence. Only the first 32 bytes per wanted token of the file are read.
 *
 * Streaming, layer by layer (as GPTQ's reference implementation does). The residual stream
 * of every sequence, (n_seq, seq_len, dim) f32, is all that is held across layers. For layer
 * l, each group of linear layers that share an input -- q/k/v (the attn-normed stream), o (the
 * attention output), gate/up (the ffn-normed stream), down (the SwiGLU product) -- is
 * handled in turn: the sequences are run (a batch of one per thread) through layer l up to
 * that input, with the matrices of layer l already quantized, and what the method needs is
 * accumulated in sequence order (GPTQ: H = 2/N sum x x^T; AWQ: mean |x| per channel,
 * E[x x^T] and a strided sample of awq_tokens inputs -- for q/k/v, that many tokens' worth
 * of whole sequences; SmoothQuant: max |x| per channel); then that group is quantized. Once
 * the layer is done its output, computed by the quantized layer, feeds layer l+1. The layer
 * forward is the engine's own pass (collector/engine/engine.h: qb_engine_layer from the
 * stored residual stream, with layer l's weights of the moment passed per call, and a hook
 * that copies out the input and stops the pass there), so the quantized layers see exactly
 * what the engine will feed them; it is rerun rather than stored, so memory beyond the
 * residual stream is one layers-only engine per thread (one sequence's activations and one
 * layer's KV cache; sequences run in parallel, one per thread) and one H (AWQ: two, q/k/v's
 * and o's, until the attention block is quantized).
 *
 * Methods.
 *   GPTQ (Frantar et al. 2022, arXiv 2210.17323): every int8/int4/int3/int2 linear layer by
 *     kernels/gptq.h with that group's H (damping gptq_damp; act-order if asked); the group
 *     headers' clipping search is on at every width and weighs each column's error by its
 *     GPTQ loss (gptq_clip, gptq_clip_weighted). Other precisions (overrides) round to nearest.
 *   AWQ (Lin et al. 2023, arXiv 2306.00978): per input channel s = mean|x|^alpha, normalised
 *     by sqrt(max s * min s); alpha = k / awq_grid for k = 0 .. awq_grid-1 (k = 0 is plain
 *     rounding), the one whose quantized outputs on the sampled inputs are closest (squared
 *     error) to the f32 outputs of the block the scales act on, as AWQ inspects it: for
 *     q/k/v, the attention block's (RoPE, causal attention, o in f32; awq_attn_loss) on
 *     awq_tokens' worth of whole sequences, evenly spaced; for gate/up, the MLP's (down in
 *     f32; awq_mlp_loss); for o and down, their own. A block is run by the engine from the
 *     residual stream, its norm weight divided by the candidate scales as the fold will
 *     leave it. Scales fold
 *     exactly: q/k/v and gate/up divide the preceding RMSNorm weight by s and multiply their
 *     columns by s; o divides the rows of v (and its bias) by s, one scale per v channel
 *     shared by the query heads that read it (grouped-query attention); down divides the rows
 *     of up by s. Group formats are then rounded with AWQ's clipping search, here scoring
 *     each candidate group header by the expected output error r^T E[x x^T]_gg r of the
 *     scaled inputs (kernels/gptq.h, qb_quantize_weighted) -- the search above uses the same
 *     quantizer. Rows are rounded independently, so on a layer of over awq_search_weights
 *     weights the search scores evenly spaced rows only (the MLP: the same hidden units of
 *     gate and up, and down's columns for them; the attention: whole kv heads, at least one,
 *     with the query heads that read them and o's columns for those); the layers of the
 *     small models fit whole.
 *   SmoothQuant (Xiao et al. 2022, arXiv 2211.10438): for q/k/v and gate/up,
 *     s_j = max|x_j|^a / max|w_j|^(1-a) (max over the rows of every layer of the group; s = 1
 *     where either is 0; at least 1e-5), folded into the RMSNorm as above; then every layer is
 *     rounded to nearest (o and down unsmoothed).
 * Token embeddings come first (the calibration runs on the embeddings the engine will look
 * up): rounded to nearest, except that GPTQ and AWQ round a group-wise table with the
 * clipping search and refit scored by the error each row's rounding causes in layer 0's q, k
 * and v, which read it through the attention norm (embed_rows in calib.c; it needs only the
 * weights). The output head is the last layer the method quantizes, on the final
 * normed stream: GPTQ (gptq_head) for an integer head, AWQ (awq_head; scales folded into a
 * copy of the output norm) for a group-wise one; SmoothQuant rounds it to nearest. A head
 * tied to the embeddings is then untied: the embeddings keep their own rows (looking up the
 * GPTQ head's rows instead cost a lot of accuracy on llama2xs), which adds one (vocab, dim) tensor
 * to the config's bytes (qb_qmodel_new_twin lays an RTN config out the same way). */
#ifndef QB_CALIB_H
#define QB_CALIB_H

#include <stdint.h>
#include <stdio.h>

#define QB_CALIB_SEQUENCES 128
#define QB_CALIB_SEQ_LEN 512

struct qb_tokenizer;
struct qb_qmodel;

struct qb_calib {
    char *name;      /* the file the tokens came from, for messages */
    int32_t *tokens; /* (n_seq, seq_len) */
    int64_t n_seq, seq_len;
    /* settings: qb_calib_load and qb_calib_from_tokens set these defaults */
    double gptq_damp;   /* 0.01: fraction of the mean diagonal of H added to it */
    int gptq_act_order; /* 0: columns in order; 1: by decreasing H_ii, static groups */
    int gptq_head;      /* 1: GPTQ the output head too, on the final normed stream */
    int awq_head;       /* 1: AWQ scales (folded into the output norm) and clipping for the head */
    int awq_duo;        /* 0: s = m^a; 1: s = m^a / wm^(1-a), wm the mean |w| / group max */
    int awq_mlp_loss;   /* 1: gate/up's scales are scored on the MLP's output (down in f32),
                           as AWQ inspects the whole MLP; 0: on gate's and up's outputs */
    int awq_attn_loss;  /* 1: q/k/v's scales are scored on the attention block's output (o in
                           f32) over whole sequences, as AWQ inspects the whole attention;
                           0: on q's, k's and v's outputs */
    int gptq_clip;      /* 1: group clipping search at every width; 0 off; -1 as RTN (I3/I2) */
    int gptq_clip_weighted;     /* 1: the search weighs each column's squared error by its GPTQ
                                   loss (1 / U_ii^2); 0: plain squared weight error */
    int awq_grid;               /* 20: alphas searched */
    float awq_alpha;            /* -1: search; >= 0: use this alpha */
    int64_t awq_tokens;         /* 4096: sampled inputs per group for the AWQ search */
    int64_t awq_search_weights; /* 2^20: the AWQ search scores a layer on at most this many
                            weights' worth of evenly spaced output rows (at least 64; 0: all) */
    float smooth_alpha;         /* 0.5: SmoothQuant's migration strength */
    int fold_only;              /* for tests: AWQ/SmoothQuant fold their scales (alpha awq_alpha, or
                                   0.5 when searching) and every linear layer stays f32 */
    FILE *awq_trace;            /* NULL; else it gets one line per AWQ search: layer, site,
                                   max / min of the mean |x| per input, and the output error at alpha
                                   0 (no scales) and at the alpha chosen */
};

/* Tokenizes the text file at path into at most n_seq sequences of seq_len tokens (<= 0: the
 * defaults above), seq_len capped at max_len when max_len > 0. QB_EIO naming the file when
 * it cannot be read, QB_EINVAL when it holds no text. */
int qb_calib_load(const char *path, const struct qb_tokenizer *tok, int64_t n_seq, int64_t seq_len,
                  int64_t max_len, struct qb_calib **out);

/* The same from tokens (n_seq, seq_len), copied; name is for messages. */
int qb_calib_from_tokens(const int32_t *tokens, int64_t n_seq, int64_t seq_len, const char *name,
                         struct qb_calib **out);

void qb_calib_free(struct qb_calib *c);

struct qb_qspec;

struct qb_model;

/* Any config (collector/model/qmodel.h): calib (borrowed for the call) is required when the
 * spec has a method and ignored otherwise. The calibration fills qm->lin (and qm->layer /
 * qm->own_vecs with the folded norms and biases); its time counts in quant_seconds.
 * QB_EINVAL without calibration data for a method, or when a token is outside the
 * vocabulary. */
int qb_qmodel_new_calib(const struct qb_model *m, const struct qb_qspec *spec,
                        const struct qb_calib *calib, struct qb_qmodel **out);

#endif
