/* chat: a model's chat template applied to one user turn, for suites written for chat
 * models (a plan's `prompt_template: chat`). Jinja is not interpreted: the template the
 * model ships (tokenizer_config.json chat_template or chat_template.jinja in an HF
 * directory, GGUF tokenizer.chat_template; model.h m->chat_template) is recognised by its
 * markers as one of the common families, and that family's rendering of
 * [{"role": "user", "content": prompt}] with add_generation_prompt=True is written out:
 *
 *   ChatML (Qwen)  [<|im_start|>system\nDEFAULT<|im_end|>\n] <|im_start|>user\nP<|im_end|>\n
 *                  <|im_start|>assistant\n   (DEFAULT: the system text the template inserts
 *                  when none is given -- Qwen2/2.5's -- else no system turn)
 *   Llama 3        BOS<|start_header_id|>user<|end_header_id|>\n\nP<|eot_id|>
 *                  <|start_header_id|>assistant<|end_header_id|>\n\n, after Llama 3.1/3.2's
 *                  system turn ("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul
 *                  2024\n\n", the template's default date, so runs are reproducible)
 *   Mistral        BOS[INST] P [/INST]   ("[INST]P[/INST]" for templates without the spaces)
 *   Gemma          BOS<start_of_turn>user\nP<end_of_turn>\n<start_of_turn>model\n
 *
 * BOS is the tokenizer's BOS piece; the text already holds it, so it is encoded without
 * adding another (QB_TOK_NO_BOS), as transformers' apply_chat_template(tokenize=True) does.
 *
 *     char *text; const char *family;
 *     if ((rc = qb_chat_prompt(m, "What is 2+2?", &text, &family)) < 0) ... qb_errmsg() ...
 *
 * Fails with QB_EUNSUP naming the model when it has no chat template or one of no known
 * family. */
#ifndef QB_CHAT_H
#define QB_CHAT_H

#include "collector/model/model.h"

/* The chat family of a template ("chatml", "llama3", "mistral", "gemma"), or NULL. */
const char *qb_chat_family(const char *tmpl);

/* *out (malloc'd): prompt as the model's chat template renders one user turn; *family (may
 * be NULL) the family recognised. */
int qb_chat_prompt(const struct qb_model *m, const char *prompt, char **out, const char **family);

#endif
