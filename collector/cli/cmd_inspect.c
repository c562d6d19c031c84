/* cmd_inspect: `qbrief inspect` shows a model's architecture, dimensions, tensors and bytes,
 * and with --config what one quantized config of it weighs. */
#include "collector/cli/cli.h"
#include "collector/engine/device.h"
#include "kernels/base/err.h"
#include "collector/model/chat.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/tokenizer/tokenizer.h"
#include "collector/model/qspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>

static void add_row(const char *what, const struct qb_qweight *w, int64_t n_layers)
{
    char fmt[32];
    size_t bytes = qb_qtensor_bytes(&w->t) * (size_t)n_layers;
    if (w->t.group)
        snprintf(fmt, sizeof fmt, "%s g%d %s", qb_fmt_name(w->t.fmt), w->t.group,
                 w->t.asym ? "asym" : "sym");
    else
        snprintf(fmt, sizeof fmt, "%s", qb_fmt_name(w->t.fmt));
    printf("%-14s %-14s %-5s %12zu %8.3f\n", what, fmt,
           w->act == QB_ACT_I8    ? "int8"
           : w->act == QB_ACT_FP8 ? "fp8"
                                  : "f32",
           bytes, qb_qtensor_bpw(&w->t));
}

/* What one config of the model weighs, tensor kind by tensor kind (layer 0 stands for all;
 * with layer overrides, layer by layer). */
static int print_config(const struct qb_model *m, const struct qb_qspec *spec)
{
    static const char *names[QB_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
    struct qb_qmodel *qm;
    int rc;

    /* the round-to-nearest twin has the layout a calibrated config would have */
    if ((rc = qb_qmodel_new_twin(m, spec, &qm)) < 0)
        return rc;
    printf("\nconfig %s (quantized in %.2f s)\n", qm->name, qm->quant_seconds);
    printf("%-14s %-14s %-5s %12s %8s\n", "tensors", "format", "acts", "bytes", "bits/w");
    for (int64_t l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < QB_LIN_COUNT; k++) {
            char what[32];
            if (qb_qspec_max_layer(spec) < 0 && l > 0)
                break;
            if (qb_qspec_max_layer(spec) < 0)
                snprintf(what, sizeof what, "layers.*.%s", names[k]);
            else
                snprintf(what, sizeof what, "layers.%lld.%s", (long long)l, names[k]);
            add_row(what, &qm->lin[l * QB_LIN_COUNT + k],
                    qb_qspec_max_layer(spec) < 0 ? m->cfg.n_layers : 1);
        }
    add_row("output", &qm->output, 1);
    if (qm->embed_shares_output)
        printf("%-14s (shares the output head's tensor)\n", "embeddings");
    else
        add_row("embeddings", &qm->embed, 1);
    printf("total weights: ");
    qb_print_size(stdout, (double)qb_qmodel_bytes(qm));
    printf(" (%zu bytes with f32 norms), %.3f bits/weight over the matrices\n", qb_qmodel_bytes(qm),
           qb_qmodel_bpw(qm));
    qb_qmodel_free(qm);
    return 0;
}

/* `inspect --devices`: every Vulkan device with its memory, limits and features; none is
 * not an error (the CPU is always there). */
static int print_devices(void)
{
    struct qb_vk_device_info dev[16];
    int n = 0, rc = qb_device_list(dev, 16, &n);

    printf("cpu: always available (--device cpu, the default)\n");
    if (rc < 0 || n == 0) {
        printf("vulkan: no devices (%s)\n", rc < 0 ? qb_errmsg() : "the loader found none");
        return 0;
    }
    printf("vulkan: %d device%s\n", n, n == 1 ? "" : "s");
    for (int i = 0; i < n && i < 16; i++) {
        const struct qb_vk_device_info *d = &dev[i];
        printf("\nvulkan:%d  %s\n", d->index, d->name);
        printf("  type:          %s\n", d->type);
        printf("  driver:        %s\n", d->driver);
        printf("  api version:   %u.%u.%u\n", (d->api_version >> 22) & 0x7f,
               (d->api_version >> 12) & 0x3ff, d->api_version & 0xfff);
        printf("  memory:        ");
        qb_print_size(stdout, (double)d->memory);
        printf(" (largest device-local heap)\n");
        printf("  max storage buffer range: ");
        qb_print_size(stdout, (double)d->max_storage_buffer_range);
        printf("\n  workgroup:     %u invocations, %u bytes of shared memory\n",
               d->max_workgroup_invocations, d->max_shared_memory);
        printf("  features:      int8 %s, fp16 %s, integer dot product %s, subgroups %s",
               d->int8 ? "yes" : "no", d->fp16 ? "yes" : "no", d->int_dot ? "yes" : "no",
               d->subgroup ? "yes" : "no");
        if (d->subgroup && d->subgroup_size)
            printf(" (size %u)", d->subgroup_size);
        printf("\n");
    }
    if (n > 16)
        printf("\n(%d more not shown)\n", n - 16);
    return 0;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tokenizer", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'},
        {"devices", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("inspect");
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    struct qb_qspec spec;
    int have_spec = 0, devices = 0;
    size_t by_dtype[QB_DT_COUNT] = {0}, total = 0;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 't': lo.tokenizer_path = optarg; break;
        case 'c':
            if (qb_qspec_parse(optarg, &spec) < 0)
                return qb_usage_error(self, "%s", qb_errmsg());
            have_spec = 1;
            break;
        case 'D': devices = 1; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (devices) {
        if (optind != argc || have_spec || lo.tokenizer_path)
            return qb_usage_error(self, "%s", "--devices takes no MODEL or other options");
        return qb_report(print_devices());
    }
    if (optind != argc - 1)
        return qb_usage_error(self, "%s", "expects exactly one MODEL");
    if ((rc = qb_model_load(argv[optind], &lo, &m)) < 0)
        return qb_report(rc);

    const struct qb_config *c = &m->cfg;
    printf("model:        %s\n", m->path);
    printf("format:       %s\n", m->format);
    printf("architecture: %s\n", c->arch);
    printf("parameters:   %lld (%.2fM)\n", (long long)qb_model_n_params(m),
           (double)qb_model_n_params(m) / 1e6);
    printf("dim:          %lld\n", (long long)c->dim);
    printf("ffn dim:      %lld\n", (long long)c->hidden_dim);
    printf("layers:       %lld\n", (long long)c->n_layers);
    printf("heads:        %lld (kv heads %lld, head dim %lld)\n", (long long)c->n_heads,
           (long long)c->n_kv_heads, (long long)c->head_dim);
    printf("vocab:        %lld\n", (long long)c->vocab_size);
    printf("context:      %lld\n", (long long)c->max_seq_len);
    printf("rope:         theta %g, %s\n", c->rope_theta,
           c->rope_style == QB_ROPE_HALF ? "rotate-half" : "interleaved pairs");
    printf("rms norm eps: %g\n", c->norm_eps);
    printf("output head:  %s\n", c->tied_embeddings ? "tied to the embeddings" : "separate");
    if (c->rope_scale.type != QB_ROPE_SCALE_NONE)
        printf(
            "rope scaling: %s, factor %g, original context %lld\n",
            qb_rope_scaling_name(c->rope_scale.type), c->rope_scale.factor,
            (long long)(c->rope_scale.orig_ctx ? c->rope_scale.orig_ctx : c->rope_scale.max_pos));
    if (c->sliding_window > 0)
        printf("attention:    sliding window of %lld in layers %lld..%lld\n",
               (long long)c->sliding_window, (long long)c->swa_from_layer,
               (long long)c->n_layers - 1);
    if (c->has_qkv_bias)
        printf("qkv bias:     yes\n");
    if (c->has_qk_norm)
        printf("q/k norm:     per head\n");
    if (m->chat_template)
        printf("chat:         %s template\n", qb_chat_family(m->chat_template)
                                                  ? qb_chat_family(m->chat_template)
                                                  : "an unrecognised");
    if (m->tok)
        printf("tokenizer:    %s, %lld tokens, bos %d, eos %d\n",
               qb_tok_kind(m->tok) == QB_TOK_SPM ? "sentencepiece" : "bpe",
               (long long)qb_tok_n_vocab(m->tok), qb_tok_bos(m->tok), qb_tok_eos(m->tok));
    else
        printf("tokenizer:    none (pass --tokenizer)\n");
    printf("\n%-40s %-5s %-22s %12s\n", "tensor", "dtype", "shape", "bytes");
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const struct qb_tensor_info *t = &m->tensors[i];
        char shape[64] = "[";
        for (int d = 0; d < t->n_dims; d++) {
            size_t len = strlen(shape);
            snprintf(shape + len, sizeof shape - len, "%s%lld", d ? ", " : "",
                     (long long)t->shape[d]);
        }
        strncat(shape, "]", sizeof shape - strlen(shape) - 1);
        printf("%-40s %-5s %-22s %12zu\n", t->name, qb_dtype_name(t->dtype), shape, t->bytes);
        by_dtype[t->dtype] += t->bytes;
        total += t->bytes;
    }
    printf("\nweights in file: ");
    qb_print_size(stdout, (double)total);
    for (int d = 0; d < QB_DT_COUNT; d++)
        if (by_dtype[d]) {
            printf(", %s ", qb_dtype_name(d));
            qb_print_size(stdout, (double)by_dtype[d]);
        }
    printf("\n");
    rc = have_spec ? print_config(m, &spec) : 0;
    qb_model_free(m);
    return qb_report(rc);
}
