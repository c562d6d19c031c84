/* greedy-ids: qbrief's side of tools/export-vs-llamacpp.sh. Runs MODEL in config SPEC on a
 * prompt (tokenized with the model's own tokenizer, BOS as it says), decodes N tokens
 * greedily (argmax, EOS not special) and prints one JSON object:
 *   {"prompt_ids": [...], "ids": [...N generated...], "top1": [argmax at every position of
 *    prompt + ids but the last], "text": "the generated text"}
 *
 *     build/tools/greedy-ids MODEL SPEC N "prompt"
 */
#include "collector/engine/engine.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

static void put_ids(const char *key, const int32_t *v, int64_t n, int last)
{
    printf("\"%s\": [", key);
    for (int64_t i = 0; i < n; i++)
        printf("%s%d", i ? ", " : "", v[i]);
    printf("]%s\n", last ? "" : ",");
}

static void put_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    struct qb_model *m = NULL;
    struct qb_qmodel *qm = NULL;
    struct qb_engine *e = NULL;
    struct qb_qspec spec;
    int32_t *prompt = NULL, *gen = NULL, *top1 = NULL;
    float *logits = NULL;
    char *text = NULL;
    int64_t np = 0, n, V;
    size_t tlen;
    int rc;

    if (argc != 5) {
        fprintf(stderr, "usage: greedy-ids MODEL SPEC N PROMPT\n");
        return 2;
    }
    n = atol(argv[3]);
    if ((rc = qb_kernels_init(NULL)) < 0 || (rc = qb_qspec_parse(argv[2], &spec)) < 0 ||
        (rc = qb_model_load(argv[1], NULL, &m)) < 0 || (rc = qb_qmodel_new(m, &spec, &qm)) < 0 ||
        (rc = qb_engine_new_q(qm, 0, &e)) < 0 ||
        (rc = qb_tok_encode(m->tok, argv[4], strlen(argv[4]), QB_TOK_DEFAULT, &prompt, &np)) < 0)
        goto out;
    V = m->cfg.vocab_size;
    gen = malloc((size_t)(n + 1) * sizeof *gen);
    top1 = malloc((size_t)(np + n) * sizeof *top1);
    logits = malloc((size_t)np * (size_t)V * sizeof *logits);
    if (!gen || !top1 || !logits || np == 0) {
        rc = qb_err(QB_EINVAL, "out of memory or empty prompt");
        goto out;
    }
    if ((rc = qb_engine_forward(e, prompt, np, logits)) < 0)
        goto out;
    for (int64_t i = 0; i < np; i++)
        top1[i] = argmax(logits + i * V, V);
    for (int64_t i = 0; i < n; i++) {
        gen[i] = i == 0 ? top1[np - 1] : argmax(qb_engine_logits(e), V);
        if (i > 0)
            top1[np + i - 1] = gen[i];
        if (i + 1 < n && (rc = qb_engine_forward(e, &gen[i], 1, NULL)) < 0)
            goto out;
    }
    if ((rc = qb_tok_decode(m->tok, gen, n, &text, &tlen)) < 0)
        goto out;
    printf("{\n");
    put_ids("prompt_ids", prompt, np, 0);
    put_ids("ids", gen, n, 0);
    put_ids("top1", top1, np + n - 1, 0);
    printf("\"text\": ");
    put_json_str(text);
    printf("\n}\n");
out:
    if (rc < 0)
        fprintf(stderr, "greedy-ids: %s\n", qb_errmsg());
    free(text);
    free(logits);
    free(top1);
    free(gen);
    free(prompt);
    qb_engine_free(e);
    qb_qmodel_free(qm);
    qb_model_free(m);
    return rc < 0;
}
