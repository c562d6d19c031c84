/* test_archs: the model variants of issue 26 -- RoPE scaling (linear, dynamic, yarn, llama3),
 * sliding-window attention, Qwen3's q/k norms -- loaded from tiny models written here (a
 * Hugging Face directory and a GGUF file of the same random weights) and run by the engine,
 * against an independent reference forward in double precision whose frequencies are
 * computed here from the formulas of transformers' modeling_rope_utils.py and Meta's
 * llama3 apply_scaling. Positions run past the original context, where the scalings differ
 * from plain RoPE; each case also checks that its scaling changed the logits. The Vulkan
 * backend runs the cases that stress its table and window (skipped without a device). */
#include "collector/engine/engine.h"
#include "collector/model/model.h"
#include "kernels/base/err.h"
#include "kernels/vulkan/backend_vulkan.h"
#include "tests/check.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/collector/model/gguf_write.h"
#pragma GCC diagnostic pop

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { D = 32, HID = 48, NL = 2, NH = 4, NKV = 2, HD = 16, QD = NH * HD, KVD = NKV * HD };
enum { V = 64, MAXT = 64 };

/* ---------- one test case ---------- */

enum scale { S_NONE, S_LINEAR, S_DYNAMIC, S_YARN, S_LLAMA3 };

struct tcase {
    const char *name;
    const char *hf_arch;   /* LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3... */
    const char *gguf_arch; /* NULL: no GGUF twin */
    enum scale scale;
    double factor, lo, hi; /* lo/hi: llama3's low/high frequency factors */
    int64_t orig;          /* original context */
    int64_t max_pos;       /* max_position_embeddings / context_length */
    int64_t window, swa_from;
    int qk_norm, bias;
    int n;       /* tokens run: past orig */
    int64_t ctx; /* the engine's context */
};

/* ---------- random weights ---------- */

struct w {
    float embd[V * D], out_norm[D], head[V * D];
    float attn_norm[NL][D], wq[NL][QD * D], wk[NL][KVD * D], wv[NL][KVD * D], wo[NL][D * QD];
    float bq[NL][QD], bk[NL][KVD], bv[NL][KVD], qn[NL][HD], kn[NL][HD];
    float ffn_norm[NL][D], wg[NL][HID * D], wu[NL][HID * D], wd[NL][D * HID];
};

static uint32_t rng = 1;
static void fill(float *p, int64_t n, float a, float b)
{
    for (int64_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        p[i] = a + (b - a) * (float)(rng >> 8) / 16777216.0f;
    }
}

static void init_weights(struct w *w)
{
    rng = 12345;
    fill(w->embd, V * D, -1, 1);
    fill(w->out_norm, D, 0.8f, 1.2f);
    fill(w->head, V * D, -0.3f, 0.3f);
    for (int l = 0; l < NL; l++) {
        fill(w->attn_norm[l], D, 0.8f, 1.2f);
        /* large q/k weights: sharp attention, so positions (and their angles) matter */
        fill(w->wq[l], QD * D, -0.6f, 0.6f);
        fill(w->wk[l], KVD * D, -0.6f, 0.6f);
        fill(w->wv[l], KVD * D, -0.3f, 0.3f);
        fill(w->wo[l], D * QD, -0.3f, 0.3f);
        fill(w->bq[l], QD, -0.5f, 0.5f);
        fill(w->bk[l], KVD, -0.5f, 0.5f);
        fill(w->bv[l], KVD, -0.5f, 0.5f);
        fill(w->qn[l], HD, 0.5f, 2.0f);
        fill(w->kn[l], HD, 0.5f, 2.0f);
        fill(w->ffn_norm[l], D, 0.8f, 1.2f);
        fill(w->wg[l], HID * D, -0.3f, 0.3f);
        fill(w->wu[l], HID * D, -0.3f, 0.3f);
        fill(w->wd[l], D * HID, -0.3f, 0.3f);
    }
}

/* ---------- the reference ---------- */

/* inv_freq (HD/2) and the factor on cos/sin, in double, for a pass of seq_len positions */
static double ref_freqs(const struct tcase *k, double theta, int64_t seq_len, double *f)
{
    double attn = 1;
    for (int i = 0; i < HD / 2; i++)
        f[i] = pow(theta, -2.0 * i / HD);
    switch (k->scale) {
    case S_LINEAR:
        for (int i = 0; i < HD / 2; i++)
            f[i] /= k->factor;
        break;
    case S_DYNAMIC: {
        double len = seq_len > k->orig ? (double)seq_len : (double)k->orig;
        double base =
            theta * pow(k->factor * len / (double)k->orig - (k->factor - 1), HD / (HD - 2.0));
        for (int i = 0; i < HD / 2; i++)
            f[i] = pow(base, -2.0 * i / HD);
        break;
    }
    case S_YARN: {
        /* YaRN (Peng et al. 2023): dimensions turning fewer than beta_slow times in the
         * original context interpolate, more than beta_fast extrapolate, a ramp between */
        double lo = floor(HD * log(k->orig / (32 * 2 * M_PI)) / (2 * log(theta)));
        double hi = ceil(HD * log(k->orig / (1 * 2 * M_PI)) / (2 * log(theta)));
        lo = lo < 0 ? 0 : lo;
        hi = hi > HD - 1 ? HD - 1 : hi;
        for (int i = 0; i < HD / 2; i++) {
            double r = (i - lo) / (hi - lo);
            r = r < 0 ? 0 : r > 1 ? 1 : r; /* 0: extrapolate, 1: interpolate */
            f[i] = f[i] * (1 - r) + f[i] / k->factor * r;
        }
        attn = 0.1 * log(k->factor) + 1;
        break;
    }
    case S_LLAMA3:
        for (int i = 0; i < HD / 2; i++) {
            double wl = 2 * M_PI / f[i];
            if (wl > k->orig / k->lo) {
                f[i] /= k->factor;
            } else if (wl >= k->orig / k->hi) {
                double s = (k->orig / wl - k->lo) / (k->hi - k->lo);
                f[i] = (1 - s) * f[i] / k->factor + s * f[i];
            }
        }
        break;
    default: break;
    }
    return attn;
}

static void matvec(const float *w, const float *b, const double *x, int out, int in, double *y)
{
    for (int o = 0; o < out; o++) {
        double s = b ? b[o] : 0;
        for (int i = 0; i < in; i++)
            s += (double)w[o * in + i] * x[i];
        y[o] = s;
    }
}

static void rmsnorm(const double *x, const float *w, int n, double *y)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0 / sqrt(ss / n + 1e-6);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * ss * w[i];
}

/* rotate-half RoPE of nh heads at position pos, cos and sin times attn */
static void rope(double *v, int nh, int pos, const double *f, double attn)
{
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < HD / 2; i++) {
            double c = cos(pos * f[i]) * attn, s = sin(pos * f[i]) * attn;
            double a = v[h * HD + i], b = v[h * HD + i + HD / 2];
            v[h * HD + i] = a * c - b * s;
            v[h * HD + i + HD / 2] = b * c + a * s;
        }
}

/* The HF forward of the case in double, one position at a time: logits (n, V). */
static void ref_forward(const struct tcase *k, const struct w *w, double theta, const int32_t *ids,
                        int n, float *logits)
{
    static double kc[NL][MAXT][KVD], vc[NL][MAXT][KVD];
    double x[D], xb[D], q[QD], kk[KVD], v[KVD], att[QD], o[D], g[HID], u[HID], y[V], f[HD / 2];
    /* dynamic NTK at the scaled context (factor x original), as the engine fixes it */
    double attn = ref_freqs(k, theta, (int64_t)(k->factor * (double)k->orig), f);

    for (int t = 0; t < n; t++) {
        for (int i = 0; i < D; i++)
            x[i] = w->embd[ids[t] * D + i];
        for (int l = 0; l < NL; l++) {
            int lo = 0;
            if (k->window > 0 && l >= k->swa_from && t + 1 > k->window)
                lo = t + 1 - (int)k->window;
            rmsnorm(x, w->attn_norm[l], D, xb);
            matvec(w->wq[l], k->bias ? w->bq[l] : NULL, xb, QD, D, q);
            matvec(w->wk[l], k->bias ? w->bk[l] : NULL, xb, KVD, D, kk);
            matvec(w->wv[l], k->bias ? w->bv[l] : NULL, xb, KVD, D, v);
            if (k->qk_norm) {
                for (int h = 0; h < NH; h++)
                    rmsnorm(q + h * HD, w->qn[l], HD, q + h * HD);
                for (int h = 0; h < NKV; h++)
                    rmsnorm(kk + h * HD, w->kn[l], HD, kk + h * HD);
            }
            rope(q, NH, t, f, attn);
            rope(kk, NKV, t, f, attn);
            memcpy(kc[l][t], kk, sizeof kk);
            memcpy(vc[l][t], v, sizeof v);
            for (int h = 0; h < NH; h++) {
                int kh = h / (NH / NKV);
                double s[MAXT], mx = -1e300, sum = 0;
                for (int j = lo; j <= t; j++) {
                    s[j] = 0;
                    for (int i = 0; i < HD; i++)
                        s[j] += q[h * HD + i] * kc[l][j][kh * HD + i];
                    s[j] /= sqrt((double)HD);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = lo; j <= t; j++)
                    sum += (s[j] = exp(s[j] - mx));
                for (int i = 0; i < HD; i++) {
                    double a = 0;
                    for (int j = lo; j <= t; j++)
                        a += s[j] / sum * vc[l][j][kh * HD + i];
                    att[h * HD + i] = a;
                }
            }
            matvec(w->wo[l], NULL, att, D, QD, o);
            for (int i = 0; i < D; i++)
                x[i] += o[i];
            rmsnorm(x, w->ffn_norm[l], D, xb);
            matvec(w->wg[l], NULL, xb, HID, D, g);
            matvec(w->wu[l], NULL, xb, HID, D, u);
            for (int i = 0; i < HID; i++)
                g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            matvec(w->wd[l], NULL, g, D, HID, o);
            for (int i = 0; i < D; i++)
                x[i] += o[i];
        }
        rmsnorm(x, w->out_norm, D, xb);
        matvec(w->head, NULL, xb, V, D, y);
        for (int i = 0; i < V; i++)
            logits[t * V + i] = (float)y[i];
    }
}

/* ---------- writing the model ---------- */

static double theta_of(const struct tcase *k)
{
    return !strcmp(k->hf_arch, "Qwen2ForCausalLM") ? 1000000.0 : 10000.0;
}

static char *tmp_path(const char *name)
{
    static char bufs[4][1024];
    static int i;
    char *p = bufs[i++ % 4];
    snprintf(p, 1024, "%s/%s", check_tmpdir(), name);
    return p;
}

struct st { /* a safetensors entry */
    char name[96];
    int64_t d0, d1; /* d1 = 0: a vector */
    const float *data;
};

static void write_st(const char *path, const struct st *t, int n)
{
    char hdr[16384];
    size_t len = 0, off = 0;
    uint64_t hlen;
    FILE *f = fopen(path, "wb");

    CHECK(f != NULL);
    if (!f)
        return;
    len += (size_t)snprintf(hdr, sizeof hdr, "{");
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)(t[i].d0 * (t[i].d1 ? t[i].d1 : 1)) * 4;
        if (t[i].d1)
            len += (size_t)snprintf(hdr + len, sizeof hdr - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                                    "\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", t[i].name, (long long)t[i].d0, (long long)t[i].d1,
                                    off, off + bytes);
        else
            len += (size_t)snprintf(hdr + len, sizeof hdr - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],"
                                    "\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", t[i].name, (long long)t[i].d0, off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    hlen = len;
    fwrite(&hlen, 8, 1, f);
    fwrite(hdr, 1, len, f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 4, (size_t)(t[i].d0 * (t[i].d1 ? t[i].d1 : 1)), f);
    fclose(f);
}

static void add(struct st *t, int *n, const char *name, int l, int64_t d0, int64_t d1,
                const float *data)
{
    if (l >= 0)
        snprintf(t[*n].name, sizeof t[*n].name, "model.layers.%d.%s", l, name);
    else
        snprintf(t[*n].name, sizeof t[*n].name, "%s", name);
    t[*n].d0 = d0;
    t[*n].d1 = d1;
    t[*n].data = data;
    (*n)++;
}

/* The rope_scaling object of the case, or "" */
static void scaling_json(const struct tcase *k, char *buf, size_t cap)
{
    switch (k->scale) {
    case S_LINEAR:
        snprintf(buf, cap, ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":%g}", k->factor);
        break;
    case S_DYNAMIC:
        snprintf(buf, cap, ",\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":%g}", k->factor);
        break;
    case S_YARN:
        snprintf(buf, cap,
                 ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":%g,"
                 "\"original_max_position_embeddings\":%lld}",
                 k->factor, (long long)k->orig);
        break;
    case S_LLAMA3:
        /* transformers 5 spelling: the base and the scaling in rope_parameters */
        snprintf(buf, cap,
                 ",\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":10000.0,"
                 "\"factor\":%g,\"low_freq_factor\":%g,\"high_freq_factor\":%g,"
                 "\"original_max_position_embeddings\":%lld}",
                 k->factor, k->lo, k->hi, (long long)k->orig);
        break;
    default: buf[0] = 0;
    }
}

static void write_hf(const struct tcase *k, const struct w *w, const char *dir)
{
    static struct st t[64];
    char cfg[4096], sc[512], win[256] = "", path[1200];
    int n = 0;
    FILE *f;

    mkdir(dir, 0755);
    scaling_json(k, sc, sizeof sc);
    if (k->window && !strcmp(k->hf_arch, "MistralForCausalLM"))
        snprintf(win, sizeof win, ",\"sliding_window\":%lld", (long long)k->window);
    else if (k->window)
        snprintf(win, sizeof win,
                 ",\"sliding_window\":%lld,\"use_sliding_window\":true,\"max_window_layers\":%lld",
                 (long long)k->window, (long long)k->swa_from);
    else if (!strcmp(k->hf_arch, "MistralForCausalLM"))
        snprintf(win, sizeof win, ",\"sliding_window\":null");
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"%s\"],\"hidden_size\":%d,\"intermediate_size\":%d,"
             "\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,"
             "\"head_dim\":%d,\"vocab_size\":%d,\"max_position_embeddings\":%lld,"
             "\"rope_theta\":%.1f,\"rms_norm_eps\":1e-6,\"tie_word_embeddings\":false,"
             "\"hidden_act\":\"silu\"%s%s}\n",
             k->hf_arch, D, HID, NL, NH, NKV, HD, V, (long long)k->max_pos, theta_of(k), sc, win);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK((f = fopen(path, "w")) != NULL);
    if (!f)
        return;
    fputs(cfg, f);
    fclose(f);

    add(t, &n, "model.embed_tokens.weight", -1, V, D, w->embd);
    add(t, &n, "model.norm.weight", -1, D, 0, w->out_norm);
    add(t, &n, "lm_head.weight", -1, V, D, w->head);
    for (int l = 0; l < NL; l++) {
        add(t, &n, "input_layernorm.weight", l, D, 0, w->attn_norm[l]);
        add(t, &n, "self_attn.q_proj.weight", l, QD, D, w->wq[l]);
        add(t, &n, "self_attn.k_proj.weight", l, KVD, D, w->wk[l]);
        add(t, &n, "self_attn.v_proj.weight", l, KVD, D, w->wv[l]);
        add(t, &n, "self_attn.o_proj.weight", l, D, QD, w->wo[l]);
        if (k->bias) {
            add(t, &n, "self_attn.q_proj.bias", l, QD, 0, w->bq[l]);
            add(t, &n, "self_attn.k_proj.bias", l, KVD, 0, w->bk[l]);
            add(t, &n, "self_attn.v_proj.bias", l, KVD, 0, w->bv[l]);
        }
        if (k->qk_norm) {
            add(t, &n, "self_attn.q_norm.weight", l, HD, 0, w->qn[l]);
            add(t, &n, "self_attn.k_norm.weight", l, HD, 0, w->kn[l]);
        }
        add(t, &n, "post_attention_layernorm.weight", l, D, 0, w->ffn_norm[l]);
        add(t, &n, "mlp.gate_proj.weight", l, HID, D, w->wg[l]);
        add(t, &n, "mlp.up_proj.weight", l, HID, D, w->wu[l]);
        add(t, &n, "mlp.down_proj.weight", l, D, HID, w->wd[l]);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, t, n);
}

/* llama.cpp's llama layout: Q/K rows of each head in interleaved-pair order (row 2i+j of a
 * head is HF row j*HD/2 + i), as convert_hf_to_gguf.py's permute writes them */
static void permute(const float *hf, int nh, float *out)
{
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < HD / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(out + (size_t)(h * HD + 2 * i + j) * D,
                       hf + (size_t)(h * HD + j * HD / 2 + i) * D, D * sizeof(float));
}

static void gt(struct gw *g, const char *name, int l, int64_t ne0, int64_t ne1, const float *p)
{
    char nm[96];
    int64_t ne[2] = {ne0, ne1};
    if (l >= 0)
        snprintf(nm, sizeof nm, "blk.%d.%s", l, name);
    else
        snprintf(nm, sizeof nm, "%s", name);
    gw_tensor(g, nm, GW_F32, ne1 ? 2 : 1, ne, p, (size_t)(ne0 * (ne1 ? ne1 : 1)) * 4);
}

static void write_gguf(const struct tcase *k, const struct w *w, const char *path)
{
    static float pq[NL][QD * D], pk[NL][KVD * D];
    const char *a = k->gguf_arch;
    const int interleaved = !strcmp(a, "llama");
    float factors[HD / 2];
    char key[128];
    struct gw g;

#define K(x) (snprintf(key, sizeof key, "%s." x, a), key)
    gw_init(&g, 3);
    gw_kv_str(&g, "general.architecture", a);
    gw_kv_u32(&g, K("context_length"), (uint32_t)k->max_pos);
    gw_kv_u32(&g, K("embedding_length"), D);
    gw_kv_u32(&g, K("feed_forward_length"), HID);
    gw_kv_u32(&g, K("block_count"), NL);
    gw_kv_u32(&g, K("attention.head_count"), NH);
    gw_kv_u32(&g, K("attention.head_count_kv"), NKV);
    gw_kv_u32(&g, K("attention.key_length"), HD);
    gw_kv_f32(&g, K("rope.freq_base"), (float)theta_of(k));
    gw_kv_f32(&g, K("attention.layer_norm_rms_epsilon"), 1e-6f);
    if (k->scale == S_LINEAR || k->scale == S_YARN) {
        gw_kv_str(&g, K("rope.scaling.type"), k->scale == S_LINEAR ? "linear" : "yarn");
        gw_kv_f32(&g, K("rope.scaling.factor"), (float)k->factor);
        if (k->scale == S_YARN)
            gw_kv_u32(&g, K("rope.scaling.original_context_length"), (uint32_t)k->orig);
    }
    if (k->window)
        gw_kv_u32(&g, K("attention.sliding_window"), (uint32_t)k->window);
#undef K
    gt(&g, "token_embd.weight", -1, D, V, w->embd);
    gt(&g, "output_norm.weight", -1, D, 0, w->out_norm);
    gt(&g, "output.weight", -1, D, V, w->head);
    if (k->scale == S_LLAMA3) {
        /* convert_hf_to_gguf.py's LlamaModel rope factors: what each frequency is divided by */
        for (int i = 0; i < HD / 2; i++) {
            double fr = pow(theta_of(k), -2.0 * i / HD), wl = 2 * M_PI / fr;
            if (wl < k->orig / k->hi)
                factors[i] = 1;
            else if (wl > k->orig / k->lo)
                factors[i] = (float)k->factor;
            else {
                double s = (k->orig / wl - k->lo) / (k->hi - k->lo);
                factors[i] = (float)(1 / ((1 - s) / k->factor + s));
            }
        }
        gt(&g, "rope_freqs.weight", -1, HD / 2, 0, factors);
    }
    for (int l = 0; l < NL; l++) {
        if (interleaved) {
            permute(w->wq[l], NH, pq[l]);
            permute(w->wk[l], NKV, pk[l]);
        }
        gt(&g, "attn_norm.weight", l, D, 0, w->attn_norm[l]);
        gt(&g, "attn_q.weight", l, D, QD, interleaved ? pq[l] : w->wq[l]);
        gt(&g, "attn_k.weight", l, D, KVD, interleaved ? pk[l] : w->wk[l]);
        gt(&g, "attn_v.weight", l, D, KVD, w->wv[l]);
        gt(&g, "attn_output.weight", l, QD, D, w->wo[l]);
        if (k->bias) {
            gt(&g, "attn_q.bias", l, QD, 0, w->bq[l]);
            gt(&g, "attn_k.bias", l, KVD, 0, w->bk[l]);
            gt(&g, "attn_v.bias", l, KVD, 0, w->bv[l]);
        }
        if (k->qk_norm) {
            gt(&g, "attn_q_norm.weight", l, HD, 0, w->qn[l]);
            gt(&g, "attn_k_norm.weight", l, HD, 0, w->kn[l]);
        }
        gt(&g, "ffn_norm.weight", l, D, 0, w->ffn_norm[l]);
        gt(&g, "ffn_gate.weight", l, D, HID, w->wg[l]);
        gt(&g, "ffn_up.weight", l, D, HID, w->wu[l]);
        gt(&g, "ffn_down.weight", l, HID, D, w->wd[l]);
    }
    CHECK(gw_save(&g, path) == 0);
    gw_free(&g);
}

/* ---------- running ---------- */

static void tokens(int32_t *ids, int n)
{
    uint32_t s = 777;
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        ids[i] = (int32_t)((s >> 8) % V);
    }
}

/* logits (n, V) of m on a backend (NULL: the CPU), context k->ctx; NULL on failure */
static float *run(const struct qb_model *m, const struct tcase *k, const int32_t *ids,
                  qb_backend_new_fn be)
{
    struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}};
    struct qb_qmodel *qm = NULL;
    struct qb_engine *e = NULL;
    struct qb_engine_opts o = {.max_ctx = k->ctx, .backend = be};
    float *out = malloc((size_t)k->n * V * sizeof *out);

    if (!out || qb_qmodel_new(m, &f32, &qm) < 0 || qb_engine_new_opts(qm, &o, &e) < 0 ||
        qb_engine_forward(e, ids, k->n, out) < 0) {
        fprintf(stderr, "  %s: %s\n", k->name, qb_errmsg());
        free(out);
        out = NULL;
    }
    qb_engine_free(e);
    qb_qmodel_free(qm);
    return out;
}

/* max over positions of max|a-b| / max|ref| */
static double rel_err(const float *ref, const float *b, int n)
{
    double worst = 0;
    for (int t = 0; t < n; t++) {
        double mx = 0, d = 0;
        for (int i = 0; i < V; i++) {
            double r = fabs(ref[t * V + i]), di = fabs((double)ref[t * V + i] - b[t * V + i]);
            mx = r > mx ? r : mx;
            d = di > d || di != di ? di : d;
        }
        if (d != d)
            return INFINITY;
        worst = d / mx > worst ? d / mx : worst;
    }
    return worst;
}

static const struct tcase cases[] = {
    /* name        hf arch               gguf     scale     factor lo hi orig max_pos win from qkn
       bias n ctx */
    {"plain", "LlamaForCausalLM", "llama", S_NONE, 0, 0, 0, 32, 64, 0, 0, 0, 0, 48, 48},
    {"linear", "LlamaForCausalLM", "llama", S_LINEAR, 2, 0, 0, 32, 32, 0, 0, 0, 0, 48, 48},
    {"dynamic", "LlamaForCausalLM", NULL, S_DYNAMIC, 2, 0, 0, 32, 32, 0, 0, 0, 0, 48, 48},
    {"yarn", "LlamaForCausalLM", "llama", S_YARN, 4, 0, 0, 32, 128, 0, 0, 0, 0, 48, 48},
    {"llama3", "LlamaForCausalLM", "llama", S_LLAMA3, 4, 1, 4, 32, 64, 0, 0, 0, 0, 48, 48},
    {"mistral-window", "MistralForCausalLM", "llama", S_NONE, 0, 0, 0, 32, 64, 8, 0, 0, 0, 40, 64},
    {"qwen2-window", "Qwen2ForCausalLM", NULL, S_NONE, 0, 0, 0, 32, 64, 8, 1, 0, 1, 40, 64},
    {"qwen2-window-all", "Qwen2ForCausalLM", "qwen2", S_NONE, 0, 0, 0, 32, 64, 8, 0, 0, 1, 40, 64},
    {"qwen3", "Qwen3ForCausalLM", "qwen3", S_NONE, 0, 0, 0, 32, 64, 0, 0, 1, 0, 40, 64},
    {"qwen3-yarn", "Qwen3ForCausalLM", "qwen3", S_YARN, 4, 0, 0, 32, 128, 0, 0, 1, 0, 48, 48},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static struct w W;

/* One case from HF and GGUF against the reference; the logits also differ from the same
 * weights with plain, full attention (the scaling or window changed something). */
static void run_case(const struct tcase *k)
{
    struct tcase plain = *k;
    float ref[MAXT * V], base[MAXT * V];
    int32_t ids[MAXT];
    char dir[1100], gpath[1200];
    struct qb_model *m = NULL;
    float *lg = NULL;
    double err;

    snprintf(dir, sizeof dir, "%s", tmp_path(k->name));
    snprintf(gpath, sizeof gpath, "%s.gguf", dir);
    tokens(ids, k->n);
    ref_forward(k, &W, theta_of(k), ids, k->n, ref);
    plain.scale = S_NONE;
    plain.window = 0;
    ref_forward(&plain, &W, theta_of(k), ids, k->n, base);
    if (k->scale != S_NONE || k->window)
        CHECK(rel_err(ref, base, k->n) > 1e-3);

    write_hf(k, &W, dir);
    if (qb_model_load(dir, NULL, &m) < 0)
        fprintf(stderr, "  load %s: %s\n", dir, qb_errmsg());
    CHECK(m != NULL);
    if (m && (lg = run(m, k, ids, NULL))) {
        err = rel_err(ref, lg, k->n);
        printf("# %-15s hf   vs reference: max relative logit error %.3g over %d positions "
               "(original context %lld)\n",
               k->name, err, k->n, (long long)k->orig);
        CHECK(err <= 1e-5);
    }
    CHECK(lg != NULL);
    free(lg);
    lg = NULL;
    qb_model_free(m);
    m = NULL;
    if (!k->gguf_arch)
        return;
    write_gguf(k, &W, gpath);
    if (qb_model_load(gpath, NULL, &m) < 0)
        fprintf(stderr, "  load %s: %s\n", gpath, qb_errmsg());
    CHECK(m != NULL);
    if (m && (lg = run(m, k, ids, NULL))) {
        err = rel_err(ref, lg, k->n);
        printf("# %-15s gguf vs reference: max relative logit error %.3g\n", k->name, err);
        CHECK(err <= 1e-5);
    }
    CHECK(lg != NULL);
    free(lg);
    qb_model_free(m);
}

#define CASE_FN(i, fn)                                                                             \
    static void fn(void)                                                                           \
    {                                                                                              \
        run_case(&cases[i]);                                                                       \
    }
CASE_FN(0, test_plain)
CASE_FN(1, test_linear)
CASE_FN(2, test_dynamic)
CASE_FN(3, test_yarn)
CASE_FN(4, test_llama3)
CASE_FN(5, test_mistral_window)
CASE_FN(6, test_qwen2_window)
CASE_FN(7, test_qwen2_window_all)
CASE_FN(8, test_qwen3)
CASE_FN(9, test_qwen3_yarn)

/* The parsed configs say what was asked for. */
static void test_config_fields(void)
{
    struct qb_model *m = NULL;
    char dir[1100];

    snprintf(dir, sizeof dir, "%s", tmp_path("cfg-llama3"));
    write_hf(&cases[4], &W, dir);
    CHECK(qb_model_load(dir, NULL, &m) == 0);
    if (m) {
        CHECK(m->cfg.rope_scale.type == QB_ROPE_SCALE_LLAMA3 && m->cfg.rope_scale.factor == 4);
        CHECK(m->cfg.rope_scale.orig_ctx == 32 && m->cfg.max_seq_len == 64);
    }
    qb_model_free(m);
    m = NULL;
    snprintf(dir, sizeof dir, "%s", tmp_path("cfg-linear"));
    write_hf(&cases[1], &W, dir);
    CHECK(qb_model_load(dir, NULL, &m) == 0);
    if (m) /* linear runs to factor x the original context */
        CHECK(m->cfg.rope_scale.type == QB_ROPE_SCALE_LINEAR && m->cfg.max_seq_len == 64);
    qb_model_free(m);
    m = NULL;
    snprintf(dir, sizeof dir, "%s", tmp_path("cfg-qwen2w"));
    write_hf(&cases[6], &W, dir);
    CHECK(qb_model_load(dir, NULL, &m) == 0);
    if (m) {
        CHECK(m->cfg.sliding_window == 8 && m->cfg.swa_from_layer == 1);
        CHECK(!qb_layer_uses_window(&m->cfg, 0) && qb_layer_uses_window(&m->cfg, 1));
        CHECK(m->cfg.max_seq_len == 64); /* not capped at the window */
    }
    qb_model_free(m);
}

/* The Vulkan backend takes the same table and window. */
static void test_vulkan(void)
{
    static const int which[] = {3, 4, 5, 6, 8};
    for (size_t c = 0; c < sizeof which / sizeof which[0]; c++) {
        const struct tcase *k = &cases[which[c]];
        float ref[MAXT * V], *lg = NULL;
        int32_t ids[MAXT];
        char dir[1100];
        struct qb_model *m = NULL;

        snprintf(dir, sizeof dir, "%s-vk", tmp_path(k->name));
        tokens(ids, k->n);
        ref_forward(k, &W, theta_of(k), ids, k->n, ref);
        write_hf(k, &W, dir);
        CHECK(qb_model_load(dir, NULL, &m) == 0);
        if (m && (lg = run(m, k, ids, qb_backend_vulkan_new))) {
            double err = rel_err(ref, lg, k->n);
            printf("# %-15s vulkan vs reference: max relative logit error %.3g\n", k->name, err);
            CHECK(err <= 1e-4);
        }
        CHECK(lg != NULL);
        free(lg);
        qb_model_free(m);
    }
}

/* A layer at a time from a residual stream with weights per call (how calibration runs the
 * model) gives the forward's logits: the window and the q/k norms reach that path too. */
static void test_layer_path(void)
{
    static const int which[] = {5, 6, 8};
    for (size_t c = 0; c < sizeof which / sizeof which[0]; c++) {
        const struct tcase *k = &cases[which[c]];
        struct qb_qspec f32 = {.base = {.fmt = QB_FMT_F32}};
        struct qb_engine_opts lo = {.max_ctx = k->ctx, .max_batch = k->n, .layers_only = 1};
        struct qb_qmodel *qm = NULL;
        struct qb_engine *full = NULL, *lay = NULL;
        static float x[MAXT * D], lg[MAXT * V], lg2[MAXT * V];
        int32_t ids[MAXT];
        char dir[1100];
        struct qb_model *m = NULL;

        snprintf(dir, sizeof dir, "%s-layers", tmp_path(k->name));
        tokens(ids, k->n);
        write_hf(k, &W, dir);
        CHECK(qb_model_load(dir, NULL, &m) == 0);
        if (!m || qb_qmodel_new(m, &f32, &qm) < 0 || qb_engine_new_q(qm, k->ctx, &full) < 0 ||
            qb_engine_new_opts(qm, &lo, &lay) < 0) {
            CHECK(0);
            goto next;
        }
        CHECK(qb_engine_forward(full, ids, k->n, lg) == 0);
        CHECK(qb_engine_embed(lay, &qm->embed, ids, k->n, x) == 0);
        for (int64_t l = 0; l < NL; l++) {
            struct qb_engine_lw w = {.attn_norm = qm->layer[l].attn_norm,
                                     .ffn_norm = qm->layer[l].ffn_norm,
                                     .bq = qm->layer[l].bq,
                                     .bk = qm->layer[l].bk,
                                     .bv = qm->layer[l].bv};
            for (int i = 0; i < QB_LIN_COUNT; i++)
                w.lin[i] = &qm->lin[l * QB_LIN_COUNT + i];
            CHECK(qb_engine_layer(lay, l, &w, QB_START_LAYER, x, 0, k->n) == 0);
        }
        CHECK(qb_engine_head(full, NULL, x, 0, k->n, lg2) == 0);
        printf("# %-15s layer by layer vs forward: max relative logit difference %.3g\n", k->name,
               rel_err(lg, lg2, k->n));
        CHECK(rel_err(lg, lg2, k->n) <= 1e-6);
    next:
        qb_engine_free(full);
        qb_engine_free(lay);
        qb_qmodel_free(qm);
        qb_model_free(m);
    }
}

/* Refusals name the file and the missing piece. */
static void test_refusals(void)
{
    struct tcase k = cases[0];
    struct qb_model *m = NULL;
    char dir[1100];

    k.hf_arch = "Gemma2ForCausalLM";
    snprintf(dir, sizeof dir, "%s", tmp_path("gemma2"));
    write_hf(&k, &W, dir);
    CHECK(qb_model_load(dir, NULL, &m) == QB_EUNSUP && m == NULL);
    CHECK(strstr(qb_errmsg(), "Gemma2ForCausalLM") && strstr(qb_errmsg(), "soft-capping") &&
          strstr(qb_errmsg(), "config.json"));
    k.gguf_arch = "gemma3";
    snprintf(dir, sizeof dir, "%s", tmp_path("gemma3.gguf"));
    write_gguf(&k, &W, dir);
    CHECK(qb_model_load(dir, NULL, &m) == QB_EUNSUP && m == NULL);
    CHECK(strstr(qb_errmsg(), "gemma3") && strstr(qb_errmsg(), "GeGLU"));
}

int main(void)
{
    struct qb_vk_device_info dev[4];
    int nd = 0;

    init_weights(&W);
    RUN(test_plain);
    RUN(test_linear);
    RUN(test_dynamic);
    RUN(test_yarn);
    RUN(test_llama3);
    RUN(test_mistral_window);
    RUN(test_qwen2_window);
    RUN(test_qwen2_window_all);
    RUN(test_qwen3);
    RUN(test_qwen3_yarn);
    RUN(test_config_fields);
    RUN(test_layer_path);
    RUN(test_refusals);
    if (qb_vulkan_devices(dev, 4, &nd) < 0 || nd == 0) {
        SKIP(test_vulkan, "no Vulkan device");
    } else {
        printf("# device: %s (%s)\n", dev[0].name, dev[0].driver);
        RUN(test_vulkan);
    }
    return check_summary();
}
