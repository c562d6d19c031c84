/* test_demo: the bundled demo model (examples/demo/qbrief-demo, a Hugging Face directory) against
 * the golden file its trainer wrote (examples/demo/golden.json, tools/make-demo.py): the
 * PyTorch f32 logits of the last positions of a few prompts. This is the independent check
 * of the HF path: config.json, hand-written safetensors, tokenizer.json and the f32 forward
 * must all agree with a separate implementation of the Llama forward.
 *
 * golden.json: {"model": "qbrief-demo", "positions": P, "prompts": [{"text": T, "ids": [...],
 * "logits": [[vocab floats] x P]}]}, logits of the last P positions of ids (ids start with
 * BOS). Skips when examples/demo/qbrief-demo is absent. Run from the repository root. */
#include "collector/engine/engine.h"
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/tokenizer/tokenizer.h"
#include "tests/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef DEMO_MODEL /* -D overrides, to check another build of the demo */
#define DEMO_MODEL "examples/demo/qbrief-demo"
#define DEMO_GOLDEN "examples/demo/golden.json"
#endif
#define MAX_REL_ERR 1e-4

/* max over i |got[i] - want[i]| / max over i |want[i]|, vocab values */
static double rel_err(const float *got, const double *want, int64_t vocab)
{
    double mx = 0, d = 0;
    for (int64_t i = 0; i < vocab; i++) {
        if (fabs(want[i]) > mx)
            mx = fabs(want[i]);
        if (fabs(got[i] - want[i]) > d)
            d = fabs(got[i] - want[i]);
    }
    return mx > 0 ? d / mx : d;
}

/* The golden prompts' ids must be what qbrief's tokenizer makes of their text. */
static void check_tokens(const struct qb_model *m, json_t *p, size_t k)
{
    const char *text = json_string_value(json_object_get(p, "text"));
    json_t *ids = json_object_get(p, "ids");
    int32_t *got = NULL;
    int64_t n = 0;
    int same;
    CHECK(text != NULL && json_is_array(ids));
    if (!text || !json_is_array(ids))
        return;
    CHECK(qb_tok_encode(m->tok, text, strlen(text), QB_TOK_DEFAULT, &got, &n) == 0);
    same = got && n == (int64_t)json_array_size(ids);
    for (int64_t i = 0; same && i < n; i++)
        same = got[i] == json_integer_value(json_array_get(ids, (size_t)i));
    if (!same)
        fprintf(stderr, "  prompt %zu: qbrief's ids differ from the golden ids\n", k);
    CHECK(same);
    free(got);
}

static void test_golden_logits(void)
{
    struct qb_model *m = NULL;
    struct qb_engine *e = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(DEMO_GOLDEN, 0, &jerr), *prompts, *p;
    float *logits = NULL;
    double *want = NULL, worst = 0;
    int64_t vocab, npos;
    size_t k;

    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "  %s: %s (line %d)\n", DEMO_GOLDEN, jerr.text, jerr.line);
        return;
    }
    if (qb_model_load(DEMO_MODEL, &(struct qb_load_opts){0}, &m) < 0) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        CHECK(!"demo model loads");
        goto out;
    }
    vocab = m->cfg.vocab_size;
    npos = json_integer_value(json_object_get(root, "positions"));
    prompts = json_object_get(root, "prompts");
    CHECK(npos >= 1 && json_is_array(prompts) && json_array_size(prompts) >= 1);
    CHECK(m->tok != NULL);
    if (npos < 1 || !json_is_array(prompts) || !m->tok)
        goto out;
    want = malloc((size_t)vocab * sizeof *want);
    CHECK(want != NULL && qb_engine_new(m, 0, &e) == 0);
    if (!want || !e)
        goto out;
    json_array_foreach(prompts, k, p)
    {
        json_t *ids = json_object_get(p, "ids"), *rows = json_object_get(p, "logits");
        int64_t n = (int64_t)json_array_size(ids);
        int32_t *tok = malloc((size_t)(n ? n : 1) * sizeof *tok);
        check_tokens(m, p, k);
        CHECK(tok != NULL && n >= npos && (int64_t)json_array_size(rows) == npos);
        if (!tok || n < npos || (int64_t)json_array_size(rows) != npos) {
            free(tok);
            continue;
        }
        for (int64_t i = 0; i < n; i++)
            tok[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
        free(logits);
        logits = malloc((size_t)n * (size_t)vocab * sizeof *logits);
        qb_engine_reset(e);
        CHECK(logits != NULL && qb_engine_forward(e, tok, n, logits) == 0);
        free(tok);
        if (!logits)
            continue;
        for (int64_t r = 0; r < npos; r++) {
            json_t *row = json_array_get(rows, (size_t)r);
            double err;
            CHECK((int64_t)json_array_size(row) == vocab);
            if ((int64_t)json_array_size(row) != vocab)
                break;
            for (int64_t i = 0; i < vocab; i++)
                want[i] = json_number_value(json_array_get(row, (size_t)i));
            err = rel_err(logits + (n - npos + r) * vocab, want, vocab);
            if (err > worst)
                worst = err;
            CHECK(err <= MAX_REL_ERR);
        }
    }
    printf("  %zu prompts: max relative logit error against PyTorch %.3g (limit %g)\n",
           json_array_size(prompts), worst, MAX_REL_ERR);
out:
    free(logits);
    free(want);
    qb_engine_free(e);
    qb_model_free(m);
    json_decref(root);
}

int main(void)
{
    struct stat st;
    if (stat(DEMO_MODEL "/model.safetensors", &st) != 0 || stat(DEMO_GOLDEN, &st) != 0)
        check_skip(
            "test_golden_logits",
            "examples/demo/qbrief-demo or golden.json absent (tools/make-demo.py writes them)");
    else
        RUN(test_golden_logits);
    return check_summary();
}
