/* run: the runner behind `qbrief run` -- scores one model in several configs on a suite and
 * writes everything into the results store (collector/store/store.h), resumably. It prints
 * nothing: progress, warnings and notes reach the caller as events (struct qb_run_event)
 * through o.on_event; a caller that passes none gets silence.
 *
 *     static void show(void *ctx, const struct qb_run_event *ev) {
 *         if (ev->kind == QB_RUN_EV_WARNING) fprintf(stderr, "warning: %s\n", ev->message);
 *     }
 *     const char *cfgs[] = {"f32", "w4g32", "w2g32"};
 *     struct qb_run_opts o = QB_RUN_OPTS_INIT;
 *     o.model_path = "model.gguf"; o.suite_path = "suite.csv"; o.db_path = "qbrief.db";
 *     o.configs = cfgs; o.n_configs = 3;
 *     o.on_event = show;
 *     struct qb_run_stats st;
 *     if ((rc = qb_run(&o, &st)) < 0) fprintf(stderr, "qbrief: %s\n", qb_errmsg());
 *
 * Order of work (one function per phase in run.c). Everything that can be refused is
 * checked before the database is created or touched: the specs, the suite, the model
 * (loaded once and freed) and its sha256, the calibration file. Then the store is opened,
 * the run opened or resumed (a name reused with another model or suite is refused by the
 * store), every item put, and the memory of each config probed in a forked child (before
 * this process holds the model; see collector/eval/probe.h). The model is then loaded, the
 * items tokenized, and each config evaluated, the baseline first, then timed. Each
 * (config, item) is one store transaction (its result row and, for the baseline, its top-k
 * rows), so a run killed at any point resumes where it stopped: completed pairs are listed
 * and skipped, latency samples of a config are written in one transaction and skipped when
 * present. A shard (shard_count > 0, collector/run/shard.h) does all of this for the items
 * it owns only (the others keep their item rows but get no result rows), records itself in
 * the store (qb_store_put_shard), and probes memory and latency only where it is the
 * plan's probe shard (the caller sets no_latency and no_memory elsewhere).
 *
 * What is measured, per kind. "Scored positions" are absolute positions in the token
 * sequence whose next-token distribution is compared with the baseline's.
 *   generate    greedy decode of the formatted prompt (QB_TOK_DEFAULT) up to max_tokens, EOS
 *               or the stop string (the output is cut at the stop string; decoding stops
 *               after the token that completed it). The text is the decode_piece bytes of
 *               the output tokens, the first one following the prompt's last token. Scored
 *               positions: the prompt's last position and each position predicting one of
 *               the baseline's output tokens (its EOS included when it ended on EOS): the
 *               config is teacher-forced on prompt + the baseline's output tokens. The
 *               baseline's output tokens are not stored separately: being greedy, each is the
 *               top-1 of the baseline's stored top-k at the position before it, so they are
 *               read back from baseline_topk (top-k is ordered by logit, ties to the lower
 *               id, as qb_argmax).
 *   choice      the prompt is prefilled once; each choice (QB_TOK_NO_BOS, appended) is scored
 *               after qb_engine_truncate back to the prompt; summed log-probabilities go to
 *               qb_choice_score (accuracy_norm: per byte). Scored positions: those
 *               predicting the correct choice's tokens. output = the chosen option's text.
 *   perplexity  the whole text (QB_TOK_DEFAULT); every position predicting the next token is
 *               scored; score = mean NLL, correct is NULL.
 * nll is the mean negative log-likelihood (nats per token) of the scored targets (baseline
 * output / correct choice / the text), n_tokens their number. mean_kl is the mean over the
 * scored positions of KL(p_base || q) computed on the baseline's top-32 plus one "rest"
 * bucket: sum_i p_i log(p_i/q_i) over the baseline's top-k ids, plus P_rest log(P_rest/Q_rest)
 * with P_rest = 1 - sum p_i and Q_rest = 1 - sum q_i over the same ids (a lower bound of the
 * full KL by the log-sum inequality; exact when the rest of the mass is negligible).
 * top1_agreement: fraction of scored positions where the config's argmax equals the
 * baseline's top-1. flipped: correct differs from the baseline's correct (NULL for the
 * baseline, and where either is not scored). The baseline itself gets mean_kl NULL and
 * top1_agreement 1.
 * Items whose prompt (plus max_tokens, or plus the longest choice) does not fit the model's
 * context, or perplexity texts under 2 tokens, are skipped with a warning and counted; each
 * still gets a row per config with status "skipped" and the reason. An item that fails
 * (anything but out-of-memory or an I/O error) gets a row with status "error" and the
 * message, and the run goes on; configs skip items whose baseline row is not "ok". */
#ifndef QB_RUN_H
#define QB_RUN_H

#include <stdint.h>

struct qb_settings;

/* Top-k of the baseline stored per scored position. */
#define QB_RUN_TOPK 32
/* Calibration overlap: an item overlaps when it shares a run of this many words with the
 * calibration text (recorded in settings_json "calibration": {"overlap": ...}). */
#define QB_RUN_OVERLAP_NGRAM 8

/* What a run tells its caller as it goes. */
enum qb_run_event_kind {
    QB_RUN_EV_WARNING,      /* message: a suite warning, calibration text that shares runs of
                             * words with the suite, an item skipped (item set: it does not
                             * fit the context or is too short), an item that failed in a
                             * config (config and item set; the run goes on) */
    QB_RUN_EV_NOTE,         /* message: a setting adjusted (a latency prompt length capped) */
    QB_RUN_EV_MEMORY,       /* config, context: its peak memory is about to be measured */
    QB_RUN_EV_CONFIG_START, /* config, total: about to be quantized and evaluated */
    QB_RUN_EV_PROGRESS,     /* config, done, resumed, total, rate, eta: after each item this
                             * call evaluated (not after items resumed, skipped or failed) */
    QB_RUN_EV_CONFIG_DONE,  /* the same counts, once all of a config's items are done */
    QB_RUN_EV_LATENCY,      /* config, n_prompt_lens, gen_len, repetitions, batch: its
                             * latency is about to be measured */
    QB_RUN_EV_LATENCY_DONE, /* config, n_samples: its latency samples are stored */
    QB_RUN_EV_PHASE,        /* config, phase, done, total, rate, eta: how far a long phase
                             * (quantizing, calibrating, measuring latency) has come; every
                             * QB_RUN_PHASE_EVERY_S seconds while it goes on, and once at its
                             * end when it had one before */
};

/* Seconds between two PHASE events of one phase (at most; fewer when its units are slow),
 * unless the options say otherwise. */
#define QB_RUN_PHASE_EVERY_S 5.0

/* One event. config, config_index and n_configs come with every kind; the other fields
 * are set where the kind names them and zero or NULL elsewhere. Strings are borrowed for
 * the duration of the callback. */
struct qb_run_event {
    enum qb_run_event_kind kind;
    const char *config;   /* the config's canonical spec; NULL for run-wide events. Warnings
                           * with a config come while its items are evaluated (between its
                           * CONFIG_START and CONFIG_DONE: a progress line may be open) */
    int64_t config_index; /* 0-based, the baseline 0; -1 with no config */
    int64_t n_configs;    /* configs of the run, the baseline included */
    const char *item;     /* the suite item's id, for warnings about one item */
    const char *message;  /* WARNING, NOTE: one line, without "warning: " or a newline */
    int64_t done;         /* items of this config done: evaluated now, resumed, skipped, failed */
    int64_t resumed;      /* of them, found already in the store */
    int64_t total;        /* items in the suite */
    double rate;          /* items/s, counting only the items evaluated by this call (PHASE:
                           * the phase's units per second) */
    double eta;           /* seconds left at that rate; 0 when the rate is 0 */
    int64_t context;      /* MEMORY: tokens of context the peak is measured at */
    int n_prompt_lens, repetitions; /* LATENCY */
    int64_t gen_len, batch;
    int64_t n_samples; /* LATENCY_DONE */
    const char *phase; /* PHASE: "loading", "hashing" (config NULL), "quantizing", "calibrating",
                        * "measuring memory", "measuring latency" */
};

struct qb_run_opts {
    const char *model_path;      /* required */
    const char *tokenizer_path;  /* over the model's own: qb_model_tokenizer_file */
    const char *suite_path;      /* required */
    const char *prompt_template; /* NULL: none */
    const char *db_path;         /* NULL: "qbrief.db" */
    const char *name;            /* NULL: model basename + "-" + suite basename, minus extensions */
    const char *const *configs;  /* spec strings; the baseline is prepended when absent */
    int64_t n_configs;
    const char *baseline; /* NULL: "f32" */
    int threads;          /* 0: OpenMP's default */
    /* "cpu" (NULL), "vulkan" or "vulkan:N" (collector/engine/device.h): every item, the
     * latency and the memory are measured there; the store records it beside the host. A
     * bad spec, an absent device or a config that does not fit its memory is refused before
     * the store is touched. On a device the memory of a config is what its backend reports
     * (weights, KV cache, peak with scratch), measured after the config's items. */
    const char *device;
    int no_latency, no_memory;
    /* latency settings; n_prompt_lens 0 takes the defaults {128, 512}, gen_len 128, warmup 1,
     * repetitions 5, batch 4 (the struct's zeroes are replaced only with n_prompt_lens 0) */
    const int64_t *prompt_lens;
    int n_prompt_lens;
    int64_t gen_len, batch;
    int warmup, repetitions;
    const char *command_line; /* recorded in the run row; may be NULL */
    /* The plan's settings (collector/store/settings.h), recorded in the run's settings_json
     * completed with what the run decided (configs, latency, calibration); borrowed; NULL
     * for a run from flags. */
    const struct qb_settings *settings;
    /* Calibration text of the plan (NULL: none): its sha256 and the sequence settings are
     * recorded for the whole run (calibration table), so the brief can name them. */
    const char *calib_path;
    int64_t calib_sequences, calib_seq_len;
    /* A shard of a sharded run (collector/run/shard.h, docs/distributed.md): shard_count > 0
     * evaluates only the items shard shard_index owns for model model_index of n_models
     * (0 and 0 are read as model 0 of 1), and records the shard (qb_store_put_shard) with
     * plan_sha256 (NULL: the sha256 of the canonical config list) and probe (this shard
     * measures latency and memory; set no_latency and no_memory where it does not).
     * shard_index -1 with shard_count 0 is the probe job: no items. Both 0: not sharded. */
    int64_t shard_index, shard_count;
    int64_t model_index, n_models;
    const char *plan_sha256;
    int probe;
    /* Called after each committed (config, item) unit with the number of units this call
     * committed so far; a nonzero return stops the run (QB_EINVAL "stopped"). For tests. */
    int (*on_unit)(void *ctx, int64_t n_committed);
    void *on_unit_ctx;
    /* Called with each event, in order, on the calling thread; NULL: the run is silent. */
    void (*on_event)(void *ctx, const struct qb_run_event *ev);
    double phase_every_s; /* seconds between PHASE events of a phase; 0: QB_RUN_PHASE_EVERY_S */
    void *on_event_ctx;
};
#define QB_RUN_OPTS_INIT                                                                           \
    {                                                                                              \
        0                                                                                          \
    }

struct qb_run_stats {
    int64_t n_evaluated;     /* (config, item) units evaluated by this call */
    int64_t n_resumed;       /* units found already done */
    int64_t n_skipped_items; /* items that do not fit (per suite, not per config) */
    int64_t n_errors;        /* (config, item) units that failed and were recorded as errors */
    int64_t n_kind[3];       /* units evaluated per enum qb_suite_kind */
    double seconds_kind[3];  /* time spent on them */
    int64_t n_latency_configs;
};

/* The sha256 a run records for the model at path (a file, or a Hugging Face directory's
 * config.json and .safetensors files in name order). */
int qb_run_model_sha256(const char *path, char out[65]);

/* Runs o into the store; st (may be NULL) receives counts. 0 or a negative QB_E* code. */
int qb_run(const struct qb_run_opts *o, struct qb_run_stats *st);

#endif
