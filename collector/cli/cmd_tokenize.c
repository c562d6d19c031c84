/* cmd_tokenize: `qbrief tokenize` shows the ids and pieces of a text, or decodes ids, so
 * users can see what the model sees. */
#include "collector/cli/cli.h"
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>

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

/* A model (its tokenizer as qb_model_tokenizer_file picks it), or failing that a bare
 * tokenizer file read by qb_tok_load_file; a tokenizer.json is never taken for a model. */
static int load_tokenizer(const char *path, long vocab, struct qb_model **m,
                          struct qb_tokenizer **tok)
{
    size_t n = strlen(path);
    int rc;
    char model_err[1024];

    *m = NULL;
    *tok = NULL;
    if (n >= 5 && !strcmp(path + n - 5, ".json"))
        return qb_tok_load_file(path, vocab, tok);
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
    if (qb_tok_load_file(path, vocab, tok) == 0)
        return 0;
    return qb_err(rc, "%s", model_err);
}

int cmd_tokenize(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ids", no_argument, NULL, 'i'},
        {"no-bos", no_argument, NULL, 'b'},
        {"vocab", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("tokenize");
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
            if (qb_parse_long(optarg, 1, 1L << 24, &vocab) < 0)
                return qb_usage_error(self, "--vocab wants a positive count, not '%s'", optarg);
            break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc - 2)
        return qb_usage_error(self, "%s", "expects MODEL|TOKENIZER and TEXT");
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
    return qb_report(rc);
}
