/* hf_config: a Hugging Face config.json (Llama, Mistral, Qwen2, Qwen3 decoders) read into a
 * struct qb_config. Must agree with transformers' LlamaConfig / MistralConfig / Qwen2Config /
 * Qwen3Config: same keys, same defaults where a key is absent.
 *
 *     struct qb_config c;
 *     if ((rc = qb_hf_config_load("model/config.json", &c)) < 0) ... qb_errmsg() ...
 *
 * The architecture comes from "architectures" (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM, Qwen3ForCausalLM) or, failing that, "model_type" (llama, mistral, qwen2,
 * qwen3). Required:
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size.
 * Defaults: num_key_value_heads = num_attention_heads, head_dim = hidden_size /
 * num_attention_heads (128 for qwen3), max_position_embeddings = 2048, rope_theta = 10000
 * (1e6 for qwen2),
 * rms_norm_eps = 1e-6, tie_word_embeddings = false. rope_style is always QB_ROPE_HALF (HF
 * keeps Q/K rows in rotate-half order); qwen2 has q/k/v biases.
 *
 * RoPE scaling (rope_scaling, or rope_parameters in transformers 5): default, linear, dynamic,
 * yarn and llama3 into cfg.rope_scale (collector/model/rope.c turns it into frequencies);
 * linear, dynamic and yarn (with a factor) extend max_seq_len to factor x the original
 * context. Sliding windows (Mistral; Qwen2/Qwen3 with use_sliding_window, from
 * max_window_layers on) go into cfg.sliding_window / swa_from_layer. Qwen3 has q/k norms.
 *
 * Refused: wrong JSON types, missing keys and absurd values (QB_EFORMAT); other RoPE types,
 * partial rotary factors, an activation other than SiLU, attention_bias or mlp_bias, Gemma
 * 2/3 (named with what the engine lacks) (QB_EUNSUP). */
#ifndef QB_HF_CONFIG_H
#define QB_HF_CONFIG_H

#include "collector/model/model.h"

#include <stddef.h>

/* Parses len bytes of JSON (need not be NUL-terminated); path is used in messages only.
 * *out is written only on success. */
int qb_hf_config_parse(const char *text, size_t len, const char *path, struct qb_config *out);

/* Reads the file at path (at most 16 MiB) and parses it. */
int qb_hf_config_load(const char *path, struct qb_config *out);

/* The chat template of the HF directory dir: chat_template.jinja, else tokenizer_config.json's
 * "chat_template" (a string, or a list of {name, template}: "default", else the first).
 * *out malloc'd, NULL when there is none. */
int qb_hf_chat_template(const char *dir, char **out);

#endif
