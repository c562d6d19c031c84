/* chat: one user turn through a model's chat template, by recognising the template's family
 * (see chat.h). The renderings follow the templates Qwen2/2.5/3, Llama 3/3.1/3.2, Mistral
 * 7B Instruct and Gemma ship in tokenizer_config.json. */
#include "collector/model/chat.h"

#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

const char *qb_chat_family(const char *t)
{
    if (!t)
        return NULL;
    if (strstr(t, "<|im_start|>"))
        return "chatml";
    if (strstr(t, "<|start_header_id|>"))
        return "llama3";
    if (strstr(t, "<start_of_turn>"))
        return "gemma";
    if (strstr(t, "[INST]"))
        return "mistral";
    return NULL;
}

/* The default system prompt a ChatML template inserts when the conversation has none
 * (Qwen2.5: "You are Qwen, created by ...", Qwen2: "You are a helpful assistant."), found
 * as the literal inside '<|im_start|>system\n...<|im_end|>'; NULL when it inserts none. */
static char *chatml_default_system(const char *t)
{
    static const char open[] = "'<|im_start|>system\\n";
    for (const char *p = strstr(t, open); p; p = strstr(p, open)) {
        const char *end;
        p += strlen(open);
        /* a literal: no quote or expression before the turn's end */
        if ((end = strstr(p, "<|im_end|>")) && !memchr(p, '\'', (size_t)(end - p)) &&
            !memchr(p, '{', (size_t)(end - p)))
            return g_strndup(p, (size_t)(end - p));
    }
    return NULL;
}

int qb_chat_prompt(const struct qb_model *m, const char *prompt, char **out, const char **family)
{
    const char *t = m->chat_template, *fam = qb_chat_family(t), *bos = "";
    char bos_buf[64] = "";
    char *sys = NULL, *s = NULL, *trimmed = NULL;
    size_t len = 0;

    *out = NULL;
    if (family)
        *family = fam;
    if (!t)
        return qb_err(QB_EUNSUP,
                      "'%s': the model has no chat template (tokenizer_config.json chat_template "
                      "or GGUF tokenizer.chat_template), which prompt_template 'chat' needs",
                      m->path);
    if (!fam)
        return qb_err(QB_EUNSUP,
                      "'%s': the model's chat template is not one qbrief can apply (ChatML, "
                      "Llama 3, Mistral and Gemma templates it can); give prompt_template "
                      "explicitly",
                      m->path);
    if (m->tok && qb_tok_bos(m->tok) >= 0) {
        const char *piece = qb_tok_piece(m->tok, qb_tok_bos(m->tok), &len);
        if (piece && len < sizeof bos_buf) {
            memcpy(bos_buf, piece, len);
            bos_buf[len] = 0;
            bos = bos_buf;
        }
    }
    /* Llama 3 and Gemma templates trim each message's content; ChatML and Mistral do not */
    if (!strcmp(fam, "llama3") || !strcmp(fam, "gemma"))
        prompt = trimmed = g_strstrip(g_strdup(prompt));
    if (!strcmp(fam, "chatml")) {
        sys = chatml_default_system(t);
        s = sys ? g_strdup_printf("<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>"
                                  "\n<|im_start|>assistant\n",
                                  sys, prompt)
                : g_strdup_printf("<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n",
                                  prompt);
    } else if (!strcmp(fam, "llama3")) {
        const char *dated = strstr(t, "Cutting Knowledge Date")
                                ? "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
                                  "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                                : "";
        s = g_strdup_printf("%s%s<|start_header_id|>user<|end_header_id|>\n\n%s<|eot_id|>"
                            "<|start_header_id|>assistant<|end_header_id|>\n\n",
                            bos, dated, prompt);
    } else if (!strcmp(fam, "gemma")) {
        s = g_strdup_printf("%s<start_of_turn>user\n%s<end_of_turn>\n<start_of_turn>model\n", bos,
                            prompt);
    } else {
        int spaced = strstr(t, "[INST] ") != NULL;
        s = g_strdup_printf(spaced ? "%s[INST] %s [/INST]" : "%s[INST]%s[/INST]", bos, prompt);
    }
    g_free(sys);
    g_free(trimmed);
    if (!s || !(*out = strdup(s))) {
        g_free(s);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    g_free(s);
    return 0;
}
