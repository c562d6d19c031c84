/* test_chat: prompt_template "chat" -- the model's own chat template around every prompt
 * (collector/model/chat.h). The exact bytes of each recognised family (ChatML with and
 * without a default system turn, Llama 3 and 3.1, Mistral with and without spaces, Gemma),
 * the refusals (no template, an unknown one). Then a run: a tiny GGUF model written here
 * with a Qwen2.5-style ChatML tokenizer.chat_template runs a suite with prompt_template
 * "chat", and its per-item token counts and NLLs equal those of a run whose prompt_template
 * spells the expected ChatML bytes out -- the same token ids went in -- while a run without
 * a template differs. */
#include "collector/model/chat.h"
#include "collector/model/model.h"
#include "collector/run/run.h"
#include "collector/store/store.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/collector/model/tiny_gguf.h"
#pragma GCC diagnostic pop

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Qwen2.5's template, abridged to the parts that decide the rendering */
static const char qwen25[] =
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content']"
    " + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba "
    "Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages "
    "%}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
#define QWEN25_SYSTEM                                                                              \
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "               \
    "assistant.<|im_end|>\n"

static const char qwen3[] =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + content + "
    "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' "
    "}}{%- endif %}";

static const char llama31[] =
    "{{- bos_token }}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting "
    "Knowledge Date: December 2023\\n\" }}{{- \"Today Date: \" + date_string + \"\\n\\n\" }}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] "
    "| trim + '<|eot_id|>' }}";

static const char llama3[] =
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
    "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = "
    "bos_token + content %}{% endif %}";

static const char mistral[] = "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
                              "message['content'] + ' [/INST]' }}{% endfor %}";
static const char mistral_v3[] = "{{- bos_token }}{{- '[INST]' + message['content'] + '[/INST]' }}";
static const char gemma[] = "{{ bos_token }}{{ '<start_of_turn>' + role + '\\n' + "
                            "message['content'] | trim + '<end_of_turn>\\n' }}{% if "
                            "add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

/* the rendering of "Hi there" by a model with template t (no tokenizer: an empty BOS) */
static int renders(const char *t, const char *prompt, const char *want, const char *family)
{
    struct qb_model m = {.path = "model"};
    const char *fam = NULL;
    char *out = NULL;
    int ok;
    m.chat_template = strdup(t);
    ok = qb_chat_prompt(&m, prompt, &out, &fam) == 0 && !strcmp(out, want) && !strcmp(fam, family);
    if (!ok)
        fprintf(stderr, "  %s: got \"%s\" (%s)\n", family, out ? out : "(none)", qb_errmsg());
    free(out);
    free(m.chat_template);
    return ok;
}

static void test_families(void)
{
    struct qb_model m = {.path = "model"};
    char *out = NULL;

    CHECK(renders(qwen25, "Hi there",
                  QWEN25_SYSTEM "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
                  "chatml"));
    CHECK(renders(qwen3, " Hi there ",
                  "<|im_start|>user\n Hi there <|im_end|>\n<|im_start|>assistant\n", "chatml"));
    CHECK(renders(llama3, " Hi there\n",
                  "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n",
                  "llama3"));
    CHECK(renders(llama31, "Hi there",
                  "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
                  "2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_"
                  "id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                  "llama3"));
    CHECK(renders(mistral, "Hi there", "[INST] Hi there [/INST]", "mistral"));
    CHECK(renders(mistral_v3, "Hi there", "[INST]Hi there[/INST]", "mistral"));
    CHECK(renders(gemma, "Hi there ",
                  "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n", "gemma"));

    /* refused, naming the model */
    CHECK(qb_chat_prompt(&m, "x", &out, NULL) == QB_EUNSUP && !out);
    CHECK(strstr(qb_errmsg(), "'model'") && strstr(qb_errmsg(), "no chat template"));
    m.chat_template = strdup("{{ '### User: ' + message['content'] }}");
    CHECK(qb_chat_prompt(&m, "x", &out, NULL) == QB_EUNSUP && !out);
    free(m.chat_template);
    CHECK(strstr(qb_errmsg(), "not one qbrief can apply") != NULL);
}

/* ---------- a run ---------- */

#define N_VOCAB (TG_VOCAB + 2)

/* TG's tokenizer plus <|im_start|> and <|im_end|> (control), no BOS added by default, and
 * the chat template */
static void chat_tokenizer(struct gw *w)
{
    static char bytes[256][8], letters[26][2];
    const char *pieces[N_VOCAB];
    float scores[N_VOCAB];
    int32_t types[N_VOCAB];
    int n = 0;

    pieces[n] = "<unk>", types[n] = 2, scores[n++] = 0;
    pieces[n] = "<s>", types[n] = 3, scores[n++] = 0;
    pieces[n] = "</s>", types[n] = 3, scores[n++] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[n] = bytes[b], types[n] = 6, scores[n++] = 0;
    }
    pieces[n] = "\xe2\x96\x81", types[n] = 1, scores[n++] = -1;
    for (int c = 0; c < 26; c++) {
        letters[c][0] = (char)('a' + c);
        pieces[n] = letters[c], types[n] = 1, scores[n] = -2.0f - (float)c, n++;
    }
    pieces[n] = "<|im_start|>", types[n] = 3, scores[n++] = 0;
    pieces[n] = "<|im_end|>", types[n] = 3, scores[n++] = 0;
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_str_arr(w, "tokenizer.ggml.tokens", pieces, N_VOCAB);
    gw_kv_arr(w, "tokenizer.ggml.scores", 6, scores, N_VOCAB, 4);
    gw_kv_arr(w, "tokenizer.ggml.token_type", 5, types, N_VOCAB, 4);
    gw_kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_kv_bool(w, "tokenizer.ggml.add_bos_token", 0);
    gw_kv_str(w, "tokenizer.chat_template", qwen25);
}

static int write_model(const char *path)
{
    const struct tg_shape s = {.arch = "llama",
                               .dim = 32,
                               .hidden = 64,
                               .n_layers = 2,
                               .n_heads = 4,
                               .n_kv_heads = 2,
                               .head_dim = 8,
                               .ctx = 256};
    uint64_t rng = 99;
    char name[64];
    struct gw w;
    int rc;

    gw_init(&w, 3);
    tg_metadata(&w, &s);
    chat_tokenizer(&w);
    tg_tensor(&w, &rng, "token_embd.weight", 32, N_VOCAB, -1.0f, 1.0f);
    tg_tensor(&w, &rng, "output_norm.weight", 32, 1, 0.6f, 1.4f);
    for (int l = 0; l < 2; l++) {
#define N(x) (snprintf(name, sizeof name, "blk.%d." x, l), name)
        tg_tensor(&w, &rng, N("attn_norm.weight"), 32, 1, 0.6f, 1.4f);
        tg_linear(&w, &rng, N("attn_q.weight"), 32, 32);
        tg_linear(&w, &rng, N("attn_k.weight"), 32, 16);
        tg_linear(&w, &rng, N("attn_v.weight"), 32, 16);
        tg_linear(&w, &rng, N("attn_output.weight"), 32, 32);
        tg_tensor(&w, &rng, N("ffn_norm.weight"), 32, 1, 0.6f, 1.4f);
        tg_linear(&w, &rng, N("ffn_gate.weight"), 32, 64);
        tg_linear(&w, &rng, N("ffn_up.weight"), 32, 64);
        tg_linear(&w, &rng, N("ffn_down.weight"), 64, 32);
#undef N
    }
    rc = gw_save(&w, path);
    gw_free(&w);
    return rc;
}

struct res {
    int n;
    int64_t n_tokens[16];
    double nll[16];
};

static int on_result(void *ctx, const struct qb_store_result *r)
{
    struct res *s = ctx;
    if (s->n < 16 && r->item_id >= 1 && r->item_id <= 16) {
        s->n_tokens[r->item_id - 1] = r->n_tokens;
        s->nll[r->item_id - 1] = r->nll;
        s->n++;
    }
    return 0;
}

/* Runs the suite with template tmpl (NULL: none) into its own db; per-item results. */
static int run_with(const char *model, const char *suite, const char *tmpl, const char *tag,
                    struct res *out)
{
    static const char *cfgs[] = {"f32"};
    struct qb_run_opts o = QB_RUN_OPTS_INIT;
    struct qb_store *s = NULL;
    char db[1024];
    int64_t run = 0;
    int rc;

    memset(out, 0, sizeof *out);
    snprintf(db, sizeof db, "%s/chat-%s.db", check_tmpdir(), tag);
    o.model_path = model;
    o.suite_path = suite;
    o.db_path = db;
    o.name = "t";
    o.configs = cfgs;
    o.n_configs = 1;
    o.threads = 1;
    o.no_latency = o.no_memory = 1;
    o.prompt_template = tmpl;
    if ((rc = qb_run(&o, NULL)) < 0) {
        fprintf(stderr, "  run %s: %s\n", tag, qb_errmsg());
        return rc;
    }
    if ((rc = qb_store_open(db, QB_STORE_READONLY, &s)) == 0 &&
        (rc = qb_store_run_find(s, "t", &run)) == 0)
        rc = qb_store_list_results(s, run, 0, on_result, out);
    qb_store_close(s);
    return rc;
}

static void test_run_chatml(void)
{
    char model[1024], suite[1024];
    struct qb_model *m = NULL;
    struct res chat, spelled, plain;
    char *text = NULL;
    const char *fam = NULL;
    FILE *f;

    snprintf(model, sizeof model, "%s/chatml.gguf", check_tmpdir());
    snprintf(suite, sizeof suite, "%s/chat.csv", check_tmpdir());
    CHECK(write_model(model) == 0);
    /* the loaded model carries the template; the prompt bytes */
    CHECK(qb_model_load(model, NULL, &m) == 0);
    if (!m)
        return;
    CHECK(m->chat_template && !strcmp(m->chat_template, qwen25));
    CHECK(qb_chat_prompt(m, "hello there", &text, &fam) == 0 && !strcmp(fam, "chatml"));
    CHECK(text && !strcmp(text, QWEN25_SYSTEM "<|im_start|>user\nhello there<|im_end|>\n"
                                              "<|im_start|>assistant\n"));
    free(text);
    qb_model_free(m);

    CHECK((f = fopen(suite, "w")) != NULL);
    if (!f)
        return;
    fputs("id,slice,kind,prompt,target,choices,metric,max_tokens,stop\n"
          "p1,s,perplexity,hello there how are you,,,perplexity,,\n"
          "p2,s,perplexity,the cat sat on a mat,,,perplexity,,\n",
          f);
    fclose(f);
    CHECK(run_with(model, suite, "chat", "chat", &chat) == 0);
    CHECK(run_with(model, suite,
                   QWEN25_SYSTEM "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
                   "spelled", &spelled) == 0);
    CHECK(run_with(model, suite, NULL, "plain", &plain) == 0);
    CHECK(chat.n == 2 && spelled.n == 2 && plain.n == 2);
    for (int i = 0; i < 2; i++) {
        printf("# item %d: %lld tokens through the chat template (%lld spelled out, %lld plain), "
               "nll %.6f vs %.6f\n",
               i + 1, (long long)chat.n_tokens[i], (long long)spelled.n_tokens[i],
               (long long)plain.n_tokens[i], chat.nll[i], spelled.nll[i]);
        CHECK(chat.n_tokens[i] == spelled.n_tokens[i] && chat.nll[i] == spelled.nll[i]);
        CHECK(chat.n_tokens[i] > plain.n_tokens[i] + 20);
    }
}

int main(void)
{
    RUN(test_families);
    RUN(test_run_chatml);
    return check_summary();
}
