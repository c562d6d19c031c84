/* device: a device spec ("cpu", "vulkan[:N]") mapped to a backend, described and checked
 * (see device.h). */
#include "collector/engine/device.h"

#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "kernels/base/err.h"
#include "kernels/qtensor.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCEPTED "cpu, vulkan or vulkan:N (N the device's index, 0 first)"
#define MAX_DEVICES 16

int qb_device_parse(const char *spec, struct qb_device *out)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec || !strcmp(spec, "cpu")) {
        out->kind = QB_DEVICE_CPU;
        strcpy(out->spec, "cpu");
        strcpy(out->name, "cpu");
        return 0;
    }
    if (!strncmp(spec, "vulkan", 6) && (spec[6] == 0 || spec[6] == ':')) {
        long n = 0;
        if (spec[6] == ':') {
            const char *d = spec + 7;
            char *end;
            errno = 0;
            n = *d >= '0' && *d <= '9' ? strtol(d, &end, 10) : -1;
            if (n < 0 || errno || *end || n > 1000)
                return qb_err(QB_EINVAL,
                              "device '%s': the index after 'vulkan:' must be a "
                              "number from 0 (accepted: " ACCEPTED ")",
                              spec);
        }
        out->kind = QB_DEVICE_VULKAN;
        out->index = (int)n;
        snprintf(out->spec, sizeof out->spec, "vulkan:%d", out->index);
        snprintf(out->name, sizeof out->name, "%s", out->spec);
        return 0;
    }
    return qb_err(QB_EINVAL, "device '%s' is not one qbrief knows (accepted: " ACCEPTED ")", spec);
}

int qb_device_list(struct qb_vk_device_info *out, int max, int *n)
{
    return qb_vulkan_devices(out, max, n);
}

int qb_device_open(struct qb_device *d)
{
    struct qb_vk_device_info dev[MAX_DEVICES];
    int n = 0, rc;

    if (d->kind == QB_DEVICE_CPU)
        return 0;
    if ((rc = qb_vulkan_devices(dev, MAX_DEVICES, &n)) < 0)
        return qb_err_prefix(QB_EUNSUP, "device %s: no Vulkan device is available", d->spec);
    if (n == 0)
        return qb_err(QB_EUNSUP,
                      "device %s: no Vulkan device is available (the Vulkan loader found "
                      "none; `qbrief inspect --devices` lists them)",
                      d->spec);
    if (d->index >= n || d->index >= MAX_DEVICES) {
        char have[32];
        if (n == 1)
            snprintf(have, sizeof have, "vulkan:0");
        else
            snprintf(have, sizeof have, "vulkan:0 to vulkan:%d", n - 1);
        return qb_err(QB_EUNSUP,
                      "device %s is absent: there %s %d Vulkan device%s (%s); `qbrief "
                      "inspect --devices` lists them",
                      d->spec, n == 1 ? "is" : "are", n, n == 1 ? "" : "s", have);
    }
    snprintf(d->name, sizeof d->name, "%s", dev[d->index].name);
    snprintf(d->driver, sizeof d->driver, "%s", dev[d->index].driver);
    d->memory = (int64_t)dev[d->index].memory;
    /* QB_DEVICE_MEMORY_MIB: the capacity the fit check assumes, at most the device's (to try
     * a smaller device's refusal on a larger one) */
    const char *cap = getenv("QB_DEVICE_MEMORY_MIB");
    if (cap && *cap) {
        char *end;
        long long mib = strtoll(cap, &end, 10);
        if (*end || mib < 1)
            return qb_err(QB_EINVAL, "QB_DEVICE_MEMORY_MIB='%s' is not a positive count of MiB",
                          cap);
        if (mib < d->memory >> 20)
            d->memory = (int64_t)mib << 20;
    }
    return 0;
}

int qb_device_get(const char *spec, struct qb_device *out)
{
    int rc = qb_device_parse(spec, out);
    return rc < 0 ? rc : qb_device_open(out);
}

void qb_device_engine_opts(const struct qb_device *d, struct qb_engine_opts *o)
{
    o->backend = d->kind == QB_DEVICE_VULKAN ? qb_backend_vulkan_new : NULL;
    o->device = d->kind == QB_DEVICE_VULKAN ? d->index : 0;
}

void qb_device_describe(const struct qb_device *d, char *buf, size_t cap)
{
    if (d->kind == QB_DEVICE_CPU)
        snprintf(buf, cap, "cpu");
    else
        snprintf(buf, cap, "%s %s, %s, %lld MiB", d->spec, d->name, d->driver,
                 (long long)(d->memory >> 20));
}

int qb_device_json(const struct qb_device *d, char **json)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:I}", "spec", d->spec, "kind",
                          d->kind == QB_DEVICE_CPU ? "cpu" : "vulkan", "index", d->index, "name",
                          d->name, "driver", d->driver, "memory_bytes", (json_int_t)d->memory);
    *json = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return *json ? 0 : qb_err(QB_ENOMEM, "out of memory describing device %s", d->spec);
}

/* bytes of a (rows, cols) matrix in base's format, as qb_qweight_quantize lays it out */
static int64_t matrix_bytes(const struct qb_qbase *b, int64_t rows, int64_t cols)
{
    int64_t k = qb_qbase_padded_cols(b, cols);
    int64_t per_row = (int64_t)qb_fmt_row_bytes(b->fmt, k, b->group, b->asym);
    if (b->fmt == QB_FMT_E4M3 || b->fmt == QB_FMT_E5M2)
        per_row += 4; /* row scale */
    else if (b->fmt == QB_FMT_I8)
        per_row += 8; /* row scale and row sum */
    return rows * per_row;
}

void qb_device_estimate(const struct qb_config *c, const struct qb_qspec *spec, int64_t ctx,
                        int64_t max_batch, struct qb_device_need *out)
{
    int64_t q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim, w = 0;
    static const struct {
        enum qb_target t;
        int rows, cols; /* 0 dim, 1 q width, 2 kv width, 3 hidden */
    } lin[] = {{QB_TGT_Q, 1, 0},    {QB_TGT_K, 2, 0},  {QB_TGT_V, 2, 0},   {QB_TGT_O, 0, 1},
               {QB_TGT_GATE, 3, 0}, {QB_TGT_UP, 3, 0}, {QB_TGT_DOWN, 0, 3}};
    int64_t width[4] = {c->dim, q, kv, c->hidden_dim};

    if (ctx <= 0 || ctx > c->max_seq_len)
        ctx = c->max_seq_len;
    if (max_batch <= 0)
        max_batch = 256;
    for (int64_t l = 0; l < c->n_layers; l++)
        for (size_t i = 0; i < sizeof lin / sizeof *lin; i++)
            w += matrix_bytes(qb_qspec_for_layer(spec, l, lin[i].t), width[lin[i].rows],
                              width[lin[i].cols]);
    w += c->n_layers * (2 * c->dim + (c->has_qkv_bias ? q + 2 * kv : 0)) * 4; /* norms, biases */
    w += matrix_bytes(qb_qspec_for(spec, QB_TGT_EMBED), c->vocab_size, c->dim) + c->dim * 4;
    if (!c->tied_embeddings || qb_qspec_unties_head(spec) ||
        memcmp(qb_qspec_for(spec, QB_TGT_EMBED), qb_qspec_for(spec, QB_TGT_OUTPUT),
               sizeof(struct qb_qbase)))
        w += matrix_bytes(qb_qspec_for(spec, QB_TGT_OUTPUT), c->vocab_size, c->dim);
    out->weights = w;
    out->kv_cache = c->n_layers * ctx * kv * 2 * 4;
    /* the stream, its normed copy, q, k, v, attention output, gate and up, per token; the
     * attention scores of a batch against the whole context; the logits of a batch */
    out->scratch = max_batch * (3 * c->dim + 2 * q + 2 * kv + 2 * c->hidden_dim) * 4 +
                   max_batch * c->n_heads * ctx * 4 + max_batch * c->vocab_size * 4;
    out->total = out->weights + out->kv_cache + out->scratch;
}

int qb_device_check_fit(const struct qb_device *d, const char *config,
                        const struct qb_device_need *need)
{
    if (d->kind == QB_DEVICE_CPU || d->memory <= 0 || need->total <= d->memory)
        return 0;
    return qb_err(QB_ENOMEM,
                  "config %s does not fit device %s (%s): it needs about %.1f MiB (weights "
                  "%.1f, KV cache %.1f, scratch %.1f MiB) and the device has %.1f MiB",
                  config, d->spec, d->name, (double)need->total / 1048576.0,
                  (double)need->weights / 1048576.0, (double)need->kv_cache / 1048576.0,
                  (double)need->scratch / 1048576.0, (double)d->memory / 1048576.0);
}
