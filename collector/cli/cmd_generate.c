/* cmd_generate: `qbrief generate` runs a model (optionally quantized) on a prompt and prints
 * the text, with prefill and decode speed on stderr: option parsing and printing around the
 * library's generation loop (collector/engine/generate.h). */
#include "collector/cli/cli.h"
#include "collector/engine/device.h"
#include "collector/engine/engine.h"
#include "collector/engine/generate.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "collector/quant/calib.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"

#include <ctype.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes a decoded piece, dropping lone control bytes as llama2.c's safe_printf does
 * (bytes >= 0x80 are kept: they are parts of UTF-8 characters). */
static void put_piece(const char *p, size_t n)
{
    if (n == 1 && (unsigned char)p[0] < 0x80 && !isprint((unsigned char)p[0]) &&
        !isspace((unsigned char)p[0]))
        return;
    fwrite(p, 1, n, stdout);
}

static void emit(const struct qb_tokenizer *tok, int32_t prev, int32_t id)
{
    char buf[256];
    size_t n = qb_tok_decode_piece(tok, prev, id, buf, sizeof buf);
    if (n <= sizeof buf) {
        put_piece(buf, n);
    } else {
        char *big = malloc(n);
        if (big) {
            qb_tok_decode_piece(tok, prev, id, big, n);
            put_piece(big, n);
            free(big);
        }
    }
}

/* qb_generate's callback: each generated piece as it comes */
static int print_piece(void *ctx, const struct qb_gen_token *t)
{
    (void)ctx;
    put_piece(t->piece, t->n_piece);
    return 0;
}

/* *ids, *n_ids: the prompt's tokens; an empty prompt starts from BOS (EOS without one). */
static int prompt_ids(const struct qb_model *m, const char *prompt, int32_t **ids, int64_t *n_ids)
{
    int32_t start;
    int rc;
    if ((rc = qb_tok_encode(m->tok, prompt, strlen(prompt), QB_TOK_DEFAULT, ids, n_ids)) < 0)
        return rc;
    if (*n_ids > 0)
        return 0;
    start = qb_tok_bos(m->tok) >= 0 ? qb_tok_bos(m->tok) : qb_tok_eos(m->tok);
    if (start < 0)
        return qb_err(QB_EINVAL,
                      "'%s': an empty prompt needs a BOS token, and the tokenizer has none",
                      m->path);
    free(*ids);
    if (!(*ids = malloc(sizeof **ids)))
        return qb_err(QB_ENOMEM, "out of memory");
    (*ids)[0] = start;
    *n_ids = 1;
    return 0;
}

/* The config's canonical name, for messages (one buffer: one call per message). */
static const char *qm_name(const struct qb_qspec *spec)
{
    static char name[QB_QSPEC_MAX];
    qb_qspec_format(spec, name, sizeof name);
    return name;
}

/* Echoes the prompt, generates with qb_generate printing each piece, then the speeds. */
static int generate(const struct qb_model *m, struct qb_engine *e, const int32_t *ids,
                    int64_t n_ids, const struct qb_gen_opts *o)
{
    struct qb_gen_result g;
    int rc;
    for (int64_t i = 0; i < n_ids; i++)
        emit(m->tok, i ? ids[i - 1] : -1, ids[i]);
    fflush(stdout);
    if ((rc = qb_generate(e, m->tok, m->cfg.vocab_size, ids, n_ids, o, print_piece, NULL, &g)) < 0)
        return rc;
    if (isatty(STDOUT_FILENO))
        putchar('\n');
    fflush(stdout);
    fprintf(stderr, "prefill: %lld tokens in %.2f ms (%.0f tokens/s)\n", (long long)n_ids,
            g.prefill_s * 1e3, (double)n_ids / g.prefill_s);
    if (strcmp(qb_engine_backend(e), "cpu"))
        fprintf(stderr, "decode:  %lld tokens in %.2f ms (%.0f tokens/s) on %s\n",
                (long long)g.n_ids, g.decode_s * 1e3,
                g.n_ids > 1 ? (double)(g.n_ids - 1) / g.decode_s : 0.0, qb_engine_device_name(e));
    else
        fprintf(stderr, "decode:  %lld tokens in %.2f ms (%.0f tokens/s), %d threads, %s kernels\n",
                (long long)g.n_ids, g.decode_s * 1e3,
                g.n_ids > 1 ? (double)(g.n_ids - 1) / g.decode_s : 0.0, omp_get_max_threads(),
                qb_kernels()->isa);
    qb_gen_result_release(&g);
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"prompt", required_argument, NULL, 'p'},
        {"tokens", required_argument, NULL, 'n'},
        {"temp", required_argument, NULL, 'T'},
        {"top-p", required_argument, NULL, 'P'},
        {"seed", required_argument, NULL, 'S'},
        {"threads", required_argument, NULL, 'j'},
        {"tokenizer", required_argument, NULL, 't'},
        {"isa", required_argument, NULL, 'I'},
        {"config", required_argument, NULL, 'c'},
        {"calib", required_argument, NULL, 'C'},
        {"device", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("generate");
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    struct qb_engine *e = NULL;
    struct qb_qmodel *qm = NULL;
    struct qb_qspec spec = {.base = {.fmt = QB_FMT_F32}};
    struct qb_gen_opts go = QB_GEN_OPTS_INIT;
    const char *prompt = "", *isa = NULL, *calib_path = NULL, *device = NULL;
    struct qb_device dev;
    struct qb_engine_opts eo = {0};
    struct qb_device_need need;
    struct qb_calib *cal = NULL;
    long n_gen = 256, threads = 0, seed = 42;
    float temp = 0, top_p = 0.9f;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "p:n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': prompt = optarg; break;
        case 'n':
            if (qb_parse_long(optarg, 0, 1L << 30, &n_gen) < 0)
                return qb_usage_error(self, "-n wants a token count, not '%s'", optarg);
            break;
        case 'T':
            if (qb_parse_float(optarg, 0, 100, &temp) < 0)
                return qb_usage_error(self, "--temp wants a number from 0 to 100, not '%s'",
                                      optarg);
            break;
        case 'P':
            if (qb_parse_float(optarg, 0, 1, &top_p) < 0)
                return qb_usage_error(self, "--top-p wants a number from 0 to 1, not '%s'", optarg);
            break;
        case 'S':
            if (qb_parse_long(optarg, 0, __LONG_MAX__, &seed) < 0)
                return qb_usage_error(self, "--seed wants a non-negative integer, not '%s'",
                                      optarg);
            break;
        case 'j':
            if (qb_parse_long(optarg, 1, 4096, &threads) < 0)
                return qb_usage_error(self, "--threads wants a positive count, not '%s'", optarg);
            break;
        case 't': lo.tokenizer_path = optarg; break;
        case 'I': isa = optarg; break;
        case 'C': calib_path = optarg; break;
        case 'D': device = optarg; break;
        case 'c':
            if (qb_qspec_parse(optarg, &spec) < 0)
                return qb_usage_error(self, "%s", qb_errmsg());
            break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc - 1)
        return qb_usage_error(self, "%s", "expects exactly one MODEL");
    /* also without --isa: a bad QB_ISA_MAX is reported here, not silently read as "ref" */
    if ((rc = qb_kernels_init(isa)) < 0)
        return isa && rc == QB_EINVAL ? qb_usage_error(self, "%s", qb_errmsg()) : qb_report(rc);
    if (threads)
        omp_set_num_threads((int)threads);
    /* a bad or absent device is refused before the model is read */
    if (qb_device_parse(device, &dev) < 0)
        return qb_usage_error(self, "--device: %s", qb_errmsg());
    if ((rc = qb_device_open(&dev)) < 0)
        return qb_report(rc);
    qb_device_engine_opts(&dev, &eo);

    if ((rc = qb_model_load(argv[optind], &lo, &m)) < 0)
        goto out;
    if (!m->tok) {
        rc = qb_err(QB_EINVAL, "'%s': the model has no tokenizer; pass --tokenizer FILE", m->path);
        goto out;
    }
    if ((rc = prompt_ids(m, prompt, &ids, &n_ids)) < 0)
        goto out;
    /* a calibrated config (-gptq, -awq, -smooth) calibrates on the --calib text */
    if (calib_path && spec.method != QB_METHOD_RTN &&
        (rc = qb_calib_load(calib_path, m->tok, 0, 0, m->cfg.max_seq_len, &cal)) < 0)
        goto out;
    qb_device_estimate(&m->cfg, &spec, 0, 256, &need);
    if ((rc = qb_device_check_fit(&dev, qm_name(&spec), &need)) < 0 ||
        (rc = qb_qmodel_new_calib(m, &spec, cal, &qm)) < 0 ||
        (rc = qb_engine_new_opts(qm, &eo, &e)) < 0)
        goto out;
    if (spec.base.fmt != QB_FMT_F32 || spec.n_overrides) {
        fprintf(stderr, "config %s: %.2f bits/weight, ", qm->name, qb_qmodel_bpw(qm));
        qb_print_size(stderr, (double)qb_qmodel_bytes(qm));
        fprintf(stderr, " of weights, quantized in %.2f s\n", qm->quant_seconds);
    }
    if (n_ids >= qb_engine_max_ctx(e)) { /* as qb_generate would, but before the echo */
        rc = qb_err(QB_ERANGE, "the prompt has %lld tokens; the context holds %lld",
                    (long long)n_ids, (long long)qb_engine_max_ctx(e));
        goto out;
    }
    go.max_tokens = n_gen;
    go.temp = temp;
    go.top_p = top_p;
    go.seed = (uint64_t)seed;
    rc = generate(m, e, ids, n_ids, &go);
out:
    qb_engine_free(e);
    qb_qmodel_free(qm);
    qb_calib_free(cal);
    free(ids);
    qb_model_free(m);
    return qb_report(rc);
}
