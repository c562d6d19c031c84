/* main: the qbrief command line. One function per subcommand, listed in one table; each
 * parses its own options with getopt_long. Exit status: 0 success, 1 error, 2 bad usage. */
#include "collector/engine.h"
#include "collector/err.h"
#include "collector/model.h"
#include "collector/sampler.h"
#include "collector/tokenizer.h"
#include "kernels/matmul.h"

#include <ctype.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QB_VERSION "0.1.0"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *usage;
};

static int cmd_inspect(int argc, char **argv);
static int cmd_generate(int argc, char **argv);
static int cmd_tokenize(int argc, char **argv);

static const struct command commands[] = {
    {"inspect", cmd_inspect, "show a model's architecture, dimensions, tensors and bytes",
     "usage: qbrief inspect MODEL [--tokenizer FILE]\n"
     "\n"
     "MODEL is a GGUF file, a Hugging Face directory (config.json + safetensors) or a\n"
     "llama2.c .bin checkpoint.\n"
     "  --tokenizer FILE   tokenizer to use instead of the model's own\n"},
    {"generate", cmd_generate, "generate text from a prompt",
     "usage: qbrief generate MODEL [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S]\n"
     "                       [--threads N] [--tokenizer FILE] [--isa ref|avx2|avx512]\n"
     "\n"
     "Prints the prompt and its continuation to stdout, prefill and decode speed to stderr.\n"
     "  -p, --prompt TEXT  prompt (default: empty, generation starts from BOS)\n"
     "  -n, --tokens N     tokens to generate (default 256, capped by the context)\n"
     "      --temp T       temperature; 0 (default) is greedy\n"
     "      --top-p P      nucleus sampling threshold (default 0.9, used when T > 0)\n"
     "      --seed S       random seed for sampling (default 42)\n"
     "      --threads N    OpenMP threads (default: all cores)\n"
     "      --tokenizer F  tokenizer file (llama2.c tokenizer.bin or tokenizer.json)\n"
     "      --isa ISA      force the matmul kernels (default: the best this CPU has)\n"},
    {"tokenize", cmd_tokenize, "show the token ids and pieces of a text, or decode ids",
     "usage: qbrief tokenize MODEL|TOKENIZER [--ids] [--no-bos] TEXT\n"
     "\n"
     "Prints one line per token (id and piece), then the text decoded back.\n"
     "  --ids       TEXT is a list of token ids (spaces or commas) to decode\n"
     "  --no-bos    do not add the BOS token\n"
     "  --vocab N   vocabulary size of a llama2.c tokenizer.bin (default: read to the end)\n"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static int usage_error(const struct command *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "qbrief %s: ", c->name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", c->usage);
    return EXIT_USAGE;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int report(int rc)
{
    if (rc < 0)
        fprintf(stderr, "qbrief: %s\n", qb_errmsg());
    return rc < 0 ? EXIT_ERR : EXIT_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* ---- inspect ---- */

static void print_size(FILE *f, double bytes)
{
    if (bytes >= 1 << 30)
        fprintf(f, "%.2f GiB", bytes / (1 << 30));
    else if (bytes >= 1 << 20)
        fprintf(f, "%.2f MiB", bytes / (1 << 20));
    else if (bytes >= 1 << 10)
        fprintf(f, "%.1f KiB", bytes / (1 << 10));
    else
        fprintf(f, "%.0f B", bytes);
}

static int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tokenizer", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = find_command("inspect");
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    size_t by_dtype[QB_DT_COUNT] = {0}, total = 0;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 't': lo.tokenizer_path = optarg; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc - 1)
        return usage_error(self, "%s", "expects exactly one MODEL");
    if ((rc = qb_model_load(argv[optind], &lo, &m)) < 0)
        return report(rc);

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
    if (c->has_qkv_bias)
        printf("qkv bias:     yes\n");
    if (m->tok)
        printf("tokenizer:    %s, %lld tokens, bos %d, eos %d\n",
               qb_tok_kind(m->tok) == QB_TOK_SPM ? "sentencepiece bpe" : "bpe",
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
    print_size(stdout, (double)total);
    for (int d = 0; d < QB_DT_COUNT; d++)
        if (by_dtype[d]) {
            printf(", %s ", qb_dtype_name(d));
            print_size(stdout, (double)by_dtype[d]);
        }
    printf("\n");
    qb_model_free(m);
    return EXIT_OK;
}

/* ---- generate ---- */

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

static int cmd_generate(int argc, char **argv)
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
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = find_command("generate");
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    struct qb_engine *e = NULL;
    struct qb_sampler smp = {0};
    const char *prompt = "", *isa = NULL;
    long n_gen = 256, threads = 0, seed = 42;
    float temp = 0, top_p = 0.9f;
    int32_t *ids = NULL;
    int64_t n_ids = 0, n_done = 0;
    double t0, t1, t2;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "p:n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': prompt = optarg; break;
        case 'n':
            if (parse_long(optarg, 0, 1L << 30, &n_gen) < 0)
                return usage_error(self, "-n wants a token count, not '%s'", optarg);
            break;
        case 'T':
            if (parse_float(optarg, 0, 100, &temp) < 0)
                return usage_error(self, "--temp wants a number from 0 to 100, not '%s'", optarg);
            break;
        case 'P':
            if (parse_float(optarg, 0, 1, &top_p) < 0)
                return usage_error(self, "--top-p wants a number from 0 to 1, not '%s'", optarg);
            break;
        case 'S':
            if (parse_long(optarg, 0, __LONG_MAX__, &seed) < 0)
                return usage_error(self, "--seed wants a non-negative integer, not '%s'", optarg);
            break;
        case 'j':
            if (parse_long(optarg, 1, 4096, &threads) < 0)
                return usage_error(self, "--threads wants a positive count, not '%s'", optarg);
            break;
        case 't': lo.tokenizer_path = optarg; break;
        case 'I': isa = optarg; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc - 1)
        return usage_error(self, "%s", "expects exactly one MODEL");
    if (isa && (rc = qb_kernels_init(isa)) < 0)
        return rc == QB_EINVAL ? usage_error(self, "%s", qb_errmsg()) : report(rc);
    if (threads)
        omp_set_num_threads((int)threads);

    if ((rc = qb_model_load(argv[optind], &lo, &m)) < 0)
        goto out;
    if (!m->tok) {
        rc = qb_err(QB_EINVAL, "'%s': the model has no tokenizer; pass --tokenizer FILE", m->path);
        goto out;
    }
    if ((rc = qb_tok_encode(m->tok, prompt, strlen(prompt), QB_TOK_DEFAULT, &ids, &n_ids)) < 0)
        goto out;
    if (n_ids == 0) {
        /* nothing to condition on: start from BOS, or EOS for tokenizers without one */
        int32_t start = qb_tok_bos(m->tok) >= 0 ? qb_tok_bos(m->tok) : qb_tok_eos(m->tok);
        if (start < 0) {
            rc = qb_err(QB_EINVAL, "'%s': an empty prompt needs a BOS token, and the tokenizer has none",
                        m->path);
            goto out;
        }
        free(ids);
        if (!(ids = malloc(sizeof *ids))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto out;
        }
        ids[0] = start;
        n_ids = 1;
    }
    if ((rc = qb_engine_new(m, 0, &e)) < 0)
        goto out;
    if (n_ids >= qb_engine_max_ctx(e)) {
        rc = qb_err(QB_ERANGE, "the prompt has %lld tokens; the context holds %lld",
                    (long long)n_ids, (long long)qb_engine_max_ctx(e));
        goto out;
    }
    if (n_gen > qb_engine_max_ctx(e) - n_ids)
        n_gen = qb_engine_max_ctx(e) - n_ids;
    if ((rc = qb_sampler_init(&smp, m->cfg.vocab_size, temp, top_p, (uint64_t)seed)) < 0)
        goto out;

    for (int64_t i = 0; i < n_ids; i++)
        emit(m->tok, i ? ids[i - 1] : -1, ids[i]);
    fflush(stdout);
    t0 = now_s();
    if ((rc = qb_engine_forward(e, ids, n_ids, NULL)) < 0)
        goto out;
    t1 = now_s();
    {
        int32_t prev = ids[n_ids - 1], eos = qb_tok_eos(m->tok), bos = qb_tok_bos(m->tok);
        float *logits = malloc((size_t)m->cfg.vocab_size * sizeof(float));
        if (!logits) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto out;
        }
        while (n_done < n_gen) {
            int32_t next;
            memcpy(logits, qb_engine_logits(e), (size_t)m->cfg.vocab_size * sizeof(float));
            next = qb_sampler_next(&smp, logits);
            if (next == eos || next == bos)
                break;
            emit(m->tok, prev, next);
            n_done++;
            if (n_done == n_gen)
                break;
            if ((rc = qb_engine_forward(e, &next, 1, NULL)) < 0)
                break;
            prev = next;
        }
        free(logits);
        if (rc < 0)
            goto out;
    }
    t2 = now_s();
    if (isatty(STDOUT_FILENO))
        putchar('\n');
    fflush(stdout);
    fprintf(stderr, "prefill: %lld tokens in %.2f ms (%.0f tokens/s)\n", (long long)n_ids,
            (t1 - t0) * 1e3, (double)n_ids / (t1 - t0));
    fprintf(stderr, "decode:  %lld tokens in %.2f ms (%.0f tokens/s), %d threads, %s kernels\n",
            (long long)n_done, (t2 - t1) * 1e3, n_done > 1 ? (double)(n_done - 1) / (t2 - t1) : 0.0,
            omp_get_max_threads(), qb_kernels()->isa);
out:
    qb_sampler_release(&smp);
    qb_engine_free(e);
    free(ids);
    qb_model_free(m);
    return report(rc);
}

/* ---- tokenize ---- */

static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch == '\\')
            fputs("\\\\", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
}

/* A model, or failing that a bare tokenizer file (tokenizer.json or llama2.c .bin). */
static int load_tokenizer(const char *path, long vocab, struct qb_model **m,
                          struct qb_tokenizer **tok)
{
    size_t n = strlen(path);
    int rc;
    char model_err[1024];

    *m = NULL;
    *tok = NULL;
    if (n >= 5 && !strcmp(path + n - 5, ".json"))
        return qb_tok_load_hf(path, tok);
    rc = qb_model_load(path, NULL, m);
    if (rc == 0) {
        if (!(*m)->tok)
            return qb_err(QB_EINVAL, "'%s': the model has no tokenizer", path);
        *tok = (*m)->tok;
        return 0;
    }
    if (rc == QB_EIO)
        return rc;
    snprintf(model_err, sizeof model_err, "%s", qb_errmsg());
    if (qb_tok_load_llama2c(path, vocab, tok) == 0)
        return 0;
    return qb_err(rc, "%s", model_err);
}

static int cmd_tokenize(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ids", no_argument, NULL, 'i'},
        {"no-bos", no_argument, NULL, 'b'},
        {"vocab", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = find_command("tokenize");
    struct qb_model *m = NULL;
    struct qb_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    char *text = NULL;
    size_t text_len = 0;
    int opt, rc, decode_ids = 0, no_bos = 0;
    long vocab = 0;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i': decode_ids = 1; break;
        case 'b': no_bos = 1; break;
        case 'v':
            if (parse_long(optarg, 1, 1L << 24, &vocab) < 0)
                return usage_error(self, "--vocab wants a positive count, not '%s'", optarg);
            break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc - 2)
        return usage_error(self, "%s", "expects MODEL|TOKENIZER and TEXT");
    if ((rc = load_tokenizer(argv[optind], vocab, &m, &tok)) < 0)
        goto out;
    if (decode_ids) {
        const char *s = argv[optind + 1];
        if (!(ids = malloc((strlen(s) / 2 + 1) * sizeof *ids))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto out;
        }
        while (*s) {
            char *end;
            long v;
            if (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') {
                s++;
                continue;
            }
            v = strtol(s, &end, 10);
            if (end == s || v < 0 || v >= qb_tok_n_vocab(tok)) {
                rc = qb_err(QB_EINVAL, "'%.20s' is not a token id (0..%lld)", s,
                            (long long)qb_tok_n_vocab(tok) - 1);
                goto out;
            }
            ids[n_ids++] = (int32_t)v;
            s = end;
        }
    } else {
        const char *s = argv[optind + 1];
        if ((rc = qb_tok_encode(tok, s, strlen(s), no_bos ? QB_TOK_NO_BOS : QB_TOK_DEFAULT, &ids,
                                &n_ids)) < 0)
            goto out;
    }
    for (int64_t i = 0; i < n_ids; i++) {
        size_t len;
        const char *p = qb_tok_piece(tok, ids[i], &len);
        printf("%8d  ", ids[i]);
        print_escaped(p ? p : "", p ? len : 0);
        putchar('\n');
    }
    if ((rc = qb_tok_decode(tok, ids, n_ids, &text, &text_len)) < 0)
        goto out;
    printf("%lld tokens; decoded: ", (long long)n_ids);
    print_escaped(text, text_len);
    putchar('\n');
out:
    free(text);
    free(ids);
    if (m)
        qb_model_free(m);
    else
        qb_tok_free(tok);
    return report(rc);
}

/* ---- main ---- */

static void print_help(FILE *f)
{
    fprintf(f, "usage: qbrief <command> [options]\n\n"
               "qbrief measures what quantization costs a language model, slice by slice.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'qbrief <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    const struct command *c;

    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("qbrief %s\n", QB_VERSION);
        return EXIT_OK;
    }
    if (!(c = find_command(argv[1]))) {
        fprintf(stderr, "qbrief: '%s' is not a command\n\n", argv[1]);
        print_help(stderr);
        return EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}
