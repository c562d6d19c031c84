/* gguf_export: a model in one config (a qmodel) written as a GGUF v3 file that llama.cpp
 * loads, holding exactly the weights qbrief measured. Each matrix maps onto the ggml type
 * that stores its values bit for bit, or the export is refused:
 *
 *   f32, f16, bf16                 F32, F16, BF16 (the same bits)
 *   w4gN-sym (N = 32, 64, 128)     Q4_0: each 32-weight sub-block gets its group's f16 scale;
 *                                  qbrief's code q and Q4_0's agree: w = d * (q - 8)
 *   w4gN (asymmetric)              Q4_1: the group's f16 scale d and f16 minimum m per
 *                                  sub-block: w = d * q + m, as qbrief stores it
 *   w8, w8a8                       Q8_0 only when every row's f32 scale is an f16 value
 *                                  (then each block gets that scale); otherwise refused
 *   fp8, w3gN, w2gN                refused: no ggml type holds them
 * A matrix whose input count is not a whole number of 32-weight blocks (stories260K's
 * 172-wide FFN) cannot be a block type either and is refused with the override that would
 * keep it (e.g. "+down=f16"). Overrides are honoured per tensor, since the mapping is per
 * tensor. The -a8 activation modes are not part of a GGUF file (llama.cpp picks its own
 * activation arithmetic), so their weights are exported and *note says so. Calibrated configs
 * (-gptq, -awq, -smooth) export their quantized codes and their folded norms as they are.
 *
 * Metadata: general.architecture (llama for Llama/Mistral, qwen2), the llama.cpp hyper-
 * parameters, general.file_type, general.quantization_version = 2, general.alignment, the
 * tokenizer (tokenizer.ggml.*: SentencePiece as "llama", byte-level BPE as "gpt2" with its
 * merges), and qbrief.config / qbrief.source. Rotate-half (Hugging Face) Llama sources get
 * their q/k rows permuted into llama.cpp's interleaved order (whole rows move, so the packed
 * rows are exact) and qbrief.source_rope = "half", by which qbrief's loader puts them back.
 *
 *     char note[256];
 *     if ((rc = qb_gguf_export(qm, "out.gguf", note, sizeof note)) < 0) ... qb_errmsg() ...;
 */
#ifndef QB_GGUF_EXPORT_H
#define QB_GGUF_EXPORT_H

#include <stddef.h>

struct qb_qmodel;

/* Writes qm to path (atomically: nothing is left behind on error). note (may be NULL) gets a
 * line to show the user, or "" when there is nothing to say. QB_EUNSUP with a message naming
 * the config, the tensor and the nearest config that exports exactly. */
int qb_gguf_export(const struct qb_qmodel *qm, const char *path, char *note, size_t note_cap);

#endif
