/* probe: the latency and memory measurements `qbrief run` takes for each config, and a
 * description of the machine they were taken on. Only what is timed or read is reported;
 * a quantity that was not measured is NAN (times) or -1 (bytes), as collector/store/store.h
 * expects.
 *
 *     static int on_sample(void *ctx, const struct qb_latency_sample *s) { ...; return 0; }
 *     int64_t lens[] = {128, 512};
 *     struct qb_latency_opts o = {.prompt_lens = lens, .n_prompt_lens = 2, .gen_len = 64,
 *                                 .warmup = 1, .repetitions = 5, .batch = 4, .seed = 1};
 *     rc = qb_probe_latency(qm, &o, on_sample, ctx);
 *
 *     struct qb_mem_result mr;
 *     rc = qb_probe_memory("model.gguf", &load_opts, &spec, 2048, &mr);  // forks a child
 *
 *     struct qb_machine mi;  char *json;
 *     qb_machine_info(&mi);  qb_machine_json(&mi, &json);  ...  free(json);
 *
 * Definitions (the numbers mean exactly this):
 *   Latency, batch 1. A prompt of prompt_len ids drawn with a fixed seed from [0, vocab),
 *   skipping the tokenizer's BOS and EOS, is run through a fresh (reset) engine, then greedy
 *   decoding continues until gen_len output tokens exist. The first output token comes from
 *   the prefill, so there are gen_len - 1 decode steps (one-token forward + argmax each).
 *     ttft_ms      prefill forward of the prompt + argmax of the last logits
 *     tpot_ms      (decode time) / (gen_len - 1): time per output token after the first
 *     e2e_ms       ttft + decode time, the whole request
 *     decode_tok_s (gen_len - 1) / (decode time in seconds) = 1000 / tpot_ms
 *     prefill_tok_s prompt_len / (ttft in seconds)
 *   Engine construction and the reset are not timed. The engine is made for exactly
 *   prompt_len + gen_len - 1 positions (the last output token is never fed back).
 *   Throughput, batch B > 1. The engine runs one sequence at a time, so "batch B" is B
 *   different prompts of prompt_len tokens prefilled back to back through one engine, reset
 *   (untimed) before each, each followed by the argmax of its last logits. gen_len = 0;
 *   e2e_ms is the summed time of the B prefills; prefill_tok_s = B * prompt_len / e2e;
 *   ttft_ms, tpot_ms and decode_tok_s are NAN. This is the rate at which the engine scores
 *   B requests, not a batched kernel: it is what a caller of this engine can get.
 *   Clock: CLOCK_MONOTONIC.
 *
 *   Memory. A forked child loads the model and builds the config's qmodel. A process serving
 *   the config would hold only that, so the child then returns to the kernel the source
 *   copy of every matrix the config re-encoded (madvise MADV_DONTNEED; an f32 config borrows
 *   the source and keeps it), trims the allocator, and resets its peak (VmHWM, via
 *   /proc/self/clear_refs). It then makes an engine of `context` positions, prefills all of
 *   them (the KV cache and prefill buffers at full size), and reports weight bytes
 *   (qb_qmodel_bytes), KV-cache bytes (qb_probe_kv_bytes) and its peak resident set since the
 *   reset (VmHWM; ru_maxrss, which includes loading and quantizing, where the reset is not
 *   available). The peak counts what the config touches: its weights, the f32 norms, the
 *   file pages an f32 config reads, the KV cache and activations -- and the parent's pages
 *   the child shares after fork (start_rss_bytes is that starting point).
 *   Probe while the parent holds little (before it loads models) for the cleanest peak. */
#ifndef QB_PROBE_H
#define QB_PROBE_H

#include <stddef.h>
#include <stdint.h>

struct qb_qmodel;
struct qb_config;
struct qb_load_opts;
struct qb_qspec;
struct qb_engine_opts;

struct qb_latency_opts {
    const int64_t *prompt_lens; /* n_prompt_lens lengths, each >= 1 */
    int n_prompt_lens;
    int64_t gen_len; /* output tokens per request, >= 2 */
    int warmup;      /* untimed repetitions before the timed ones, >= 0 */
    int repetitions; /* timed repetitions, >= 1 */
    int64_t batch;   /* > 1: also measure prefill throughput at this batch; 0/1: skip */
    uint64_t seed;   /* for the prompt ids */
    /* the backend and device the engines run on (max_ctx is set per prompt length); NULL:
     * the CPU */
    const struct qb_engine_opts *engine;
};

struct qb_latency_sample {
    int64_t prompt_len, gen_len, batch, repetition; /* repetition counts from 0 */
    double ttft_ms, tpot_ms, e2e_ms, decode_tok_s;  /* NAN = not measured (see above) */
    double prefill_tok_s;
};

/* Called once per timed sample; a negative return stops the probe and is returned. */
typedef int (*qb_latency_cb)(void *ctx, const struct qb_latency_sample *s);

/* For each prompt length in order: its batch-1 samples (repetitions in order), then, when
 * o->batch > 1, its batch samples. Every length is checked before anything runs: QB_EINVAL
 * for bad options, QB_ERANGE when prompt_len + gen_len - 1 exceeds the model's context. */
int qb_probe_latency(const struct qb_qmodel *qm, const struct qb_latency_opts *o, qb_latency_cb cb,
                     void *ctx);

struct qb_mem_result {
    int64_t context;
    int64_t weight_bytes;    /* qb_qmodel_bytes */
    int64_t kv_cache_bytes;  /* qb_probe_kv_bytes(cfg, context) */
    int64_t peak_rss_bytes;  /* the child's peak while serving (see above), in bytes */
    int64_t vm_hwm_bytes;    /* VmHWM of the child; -1 when /proc is unavailable */
    int64_t start_rss_bytes; /* VmRSS of the child just after fork, before loading; -1 unknown */
};

/* Measures one config at one context in a forked child (so the peak is this config's
 * alone). context <= 0 means the model's max_seq_len; a larger context than the model's is
 * QB_ERANGE. The child's error (load failure etc.) comes back with its code and message;
 * a child that crashes or exits without reporting is QB_EIO naming the signal or status.
 * The child is always reaped. */
int qb_probe_memory(const char *path, const struct qb_load_opts *lo, const struct qb_qspec *spec,
                    int64_t context, struct qb_mem_result *out);

/* Memory on a device (a backend that reports its memory, kernels/backend.h): in this
 * process, an engine of `context` positions on eo's backend serves qm and prefills every
 * position, then its backend reports weight_bytes (uploaded weights), kv_cache_bytes and
 * peak_rss_bytes = the peak of weights + KV cache + scratch the device held (device memory,
 * not a resident set; vm_hwm_bytes and start_rss_bytes are -1). QB_EUNSUP when the backend
 * does not report its memory. */
int qb_probe_device_memory(const struct qb_qmodel *qm, const struct qb_engine_opts *eo,
                           int64_t context, struct qb_mem_result *out);

/* Bytes of an engine's KV cache for ctx positions: n_layers * ctx * kv_dim * 2 (K and V)
 * * sizeof(float), kv_dim = n_kv_heads * head_dim; as collector/engine/engine.c allocates it.
 * -1 on overflow. */
int64_t qb_probe_kv_bytes(const struct qb_config *c, int64_t ctx);

/* A "Key:   1234 kB" line of /proc/self/status (VmRSS, VmHWM, ...) in bytes, -1 when
 * unavailable. */
int64_t qb_proc_status_bytes(const char *key);

/* Resets this process's VmHWM to its current RSS (Linux >= 4.0, /proc/self/clear_refs);
 * 0 when it worked, -1 when not. */
int qb_proc_reset_peak(void);

#define QB_ISA_FEATURES_MAX 128

struct qb_machine {
    char cpu[256];                      /* /proc/cpuinfo "model name"; "unknown" when absent */
    int64_t cores;                      /* online logical CPUs */
    int threads;                        /* omp_get_max_threads() */
    char isa[16];                       /* kernels in use: qb_kernels()->isa */
    char features[QB_ISA_FEATURES_MAX]; /* space-separated: "avx2 fma avx512f ..." */
    int64_t memory_bytes;               /* physical memory; -1 unknown */
    char os[256];                       /* uname: "Linux 6.1.0 x86_64" */
    char hostname[256];
};

/* Fills out; never fails (fields it cannot read say "unknown" or -1). Initializes the
 * kernels (qb_kernels) if nothing has yet. */
void qb_machine_info(struct qb_machine *out);

/* A JSON object {"cpu","cores","threads","isa","features":[..],"memory_bytes","os",
 * "hostname"} for runs.machine_json; *json is malloc'ed, the caller frees it. */
int qb_machine_json(const struct qb_machine *mi, char **json);

#endif
