/* rope: the RoPE inverse-frequency table of a model, with its scaling (see model.h). Must
 * agree with transformers' modeling_rope_utils.py (_compute_default_rope_parameters,
 * _compute_linear_scaling_rope_parameters, _compute_dynamic_ntk_parameters,
 * _compute_yarn_parameters, _compute_llama3_parameters): tensors there are float32, the
 * scalar arithmetic (bases, correction ranges, factors) Python doubles, and so here. GGUF's
 * rope_freqs.weight (llama.cpp's freq_factors, convert_hf_to_gguf.py's llama3 factors)
 * divides each frequency, as ggml_rope_ext does. */
#include "collector/model/model.h"

#include <math.h>

const char *qb_rope_scaling_name(enum qb_rope_scaling t)
{
    switch (t) {
    case QB_ROPE_SCALE_NONE: return "none";
    case QB_ROPE_SCALE_LINEAR: return "linear";
    case QB_ROPE_SCALE_DYNAMIC: return "dynamic";
    case QB_ROPE_SCALE_YARN: return "yarn";
    case QB_ROPE_SCALE_LLAMA3: return "llama3";
    }
    return "?";
}

int qb_layer_uses_window(const struct qb_config *c, int64_t l)
{
    return c->sliding_window > 0 && l >= c->swa_from_layer;
}

/* inv_freq[i] = 1 / base^(2i / dim): the base a float32 scalar, the exponent a float32 tensor */
static void default_freqs(double base, int64_t dim, float *inv_freq)
{
    for (int64_t i = 0; i < dim / 2; i++)
        inv_freq[i] = 1.0f / powf((float)base, (float)(2 * i) / (float)dim);
}

/* yarn's get_mscale */
static double yarn_mscale(double scale, double m)
{
    return scale <= 1 ? 1.0 : 0.1 * m * log(scale) + 1.0;
}

/* the dimension whose wavelength makes num_rotations turns in max_pos positions */
static double correction_dim(double num_rot, int64_t dim, double base, double max_pos)
{
    return ((double)dim * log(max_pos / (num_rot * 2 * M_PI))) / (2 * log(base));
}

static void yarn(const struct qb_config *c, int64_t dim, float *inv_freq, float *attn)
{
    const struct qb_rope_scale *s = &c->rope_scale;
    double base = c->rope_theta, orig = (double)(s->orig_ctx > 0 ? s->orig_ctx : s->max_pos);
    double factor = s->factor, low, high;

    /* an explicit factor wins; without one it is the ratio of the two contexts (transformers
     * 5; 4.4x took the ratio whenever original_max_position_embeddings was given) */
    if (!(factor > 0))
        factor = (double)s->max_pos / orig;
    if (s->attn_factor > 0)
        *attn = s->attn_factor;
    else if (s->mscale > 0 && s->mscale_all_dim > 0)
        *attn = (float)(yarn_mscale(factor, s->mscale) / yarn_mscale(factor, s->mscale_all_dim));
    else
        *attn = (float)yarn_mscale(factor, 1);
    low = correction_dim(s->beta_fast > 0 ? s->beta_fast : 32, dim, base, orig);
    high = correction_dim(s->beta_slow > 0 ? s->beta_slow : 1, dim, base, orig);
    if (s->truncate) {
        low = floor(low);
        high = ceil(high);
    }
    low = low > 0 ? low : 0;
    high = high < (double)(dim - 1) ? high : (double)(dim - 1);
    if (low == high)
        high += 0.001;
    for (int64_t i = 0; i < dim / 2; i++) {
        float pos_freq = powf((float)base, (float)(2 * i) / (float)dim);
        float extrap = 1.0f / pos_freq, interp = 1.0f / ((float)factor * pos_freq);
        float ramp = ((float)i - (float)low) / (float)(high - low);
        float keep; /* inv_freq_extrapolation_factor = 1 - clamp(ramp, 0, 1) */
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        keep = 1.0f - ramp;
        inv_freq[i] = interp * (1.0f - keep) + extrap * keep;
    }
}

static void llama3(const struct qb_config *c, int64_t dim, float *inv_freq)
{
    const struct qb_rope_scale *s = &c->rope_scale;
    const double old = (double)(s->orig_ctx > 0 ? s->orig_ctx : 8192);
    const float factor = s->factor, lo = s->low_freq_factor, hi = s->high_freq_factor;
    const double low_wavelen = old / lo, high_wavelen = old / hi;

    default_freqs(c->rope_theta, dim, inv_freq);
    for (int64_t i = 0; i < dim / 2; i++) {
        float f = inv_freq[i], wavelen = 2.0f * (float)M_PI / f;
        if (wavelen > low_wavelen) {
            inv_freq[i] = f / factor;
        } else if (!(wavelen < high_wavelen)) {
            float smooth = ((float)old / wavelen - lo) / (hi - lo);
            inv_freq[i] = (1.0f - smooth) * f / factor + smooth * f;
        }
    }
}

void qb_rope_inv_freq(const struct qb_model *m, int64_t seq_len, float *inv_freq,
                      float *attn_factor)
{
    const struct qb_config *c = &m->cfg;
    const struct qb_rope_scale *s = &c->rope_scale;
    const int64_t dim = c->head_dim;
    double base = c->rope_theta;

    *attn_factor = 1.0f;
    switch (s->type) {
    case QB_ROPE_SCALE_LINEAR:
        default_freqs(base, dim, inv_freq);
        for (int64_t i = 0; i < dim / 2; i++)
            inv_freq[i] /= s->factor;
        break;
    case QB_ROPE_SCALE_DYNAMIC: {
        double orig = (double)(s->orig_ctx > 0 ? s->orig_ctx : s->max_pos);
        double len = (double)seq_len > orig ? (double)seq_len : orig;
        base *= pow(s->factor * len / orig - (s->factor - 1), (double)dim / (double)(dim - 2));
        default_freqs(base, dim, inv_freq);
        break;
    }
    case QB_ROPE_SCALE_YARN: yarn(c, dim, inv_freq, attn_factor); break;
    case QB_ROPE_SCALE_LLAMA3: llama3(c, dim, inv_freq); break;
    default: default_freqs(base, dim, inv_freq); break;
    }
    if (m->rope_freqs)
        for (int64_t i = 0; i < dim / 2; i++)
            inv_freq[i] /= m->rope_freqs[i];
}
