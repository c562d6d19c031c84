/* probe: latency and memory measurements per config, and machine information. The
 * definitions of every number are in probe.h; the KV-cache size must agree with the
 * allocation in collector/engine/engine.c (n_layers * max_ctx * kv_dim floats, for K and for V). */
#include "collector/eval/probe.h"

#include "collector/engine/engine.h"
#include "kernels/base/err.h"
#include "kernels/base/progress.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/engine/sampler.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/dispatch.h"
#include "collector/model/qspec.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- latency ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* splitmix64: a fixed, portable stream, so the same seed gives the same prompts everywhere */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* n ids from [0, vocab) minus the tokenizer's BOS and EOS (special ids change nothing about
 * the cost of a forward, but a BOS in mid-prompt is not what a real request looks like). */
static int fill_prompt(const struct qb_model *m, uint64_t seed, int32_t *ids, int64_t n)
{
    int64_t vocab = m->cfg.vocab_size;
    int32_t bos = m->tok ? qb_tok_bos(m->tok) : -1, eos = m->tok ? qb_tok_eos(m->tok) : -1;
    uint64_t s = seed;

    if (vocab < 3)
        return qb_err(QB_EUNSUP, "'%s': a vocabulary of %lld ids is too small to draw prompts from",
                      m->path, (long long)vocab);
    for (int64_t i = 0; i < n; i++) {
        int32_t id;
        do
            id = (int32_t)(next_u64(&s) % (uint64_t)vocab);
        while (id == bos || id == eos);
        ids[i] = id;
    }
    return 0;
}

/* The probe's progress (kernels/base/progress.h) in units of work: a decoded token is one,
 * a prefilled one 1/16 (batched, it costs about that much less per token on a CPU). */
struct ticks {
    int64_t done, total;
};
#define PREFILL_UNITS(p) (((p) + 15) / 16)

static void tick(struct ticks *t, int64_t units)
{
    t->done += units;
    qb_progress("measuring latency", t->done < t->total ? t->done : t->total, t->total);
}

/* One request: prefill, then greedy decoding up to gen_len output tokens. Times in ms. */
static int time_request(struct qb_engine *e, int64_t vocab, const int32_t *prompt, int64_t p,
                        int64_t gen_len, double *ttft, double *decode, struct ticks *tk)
{
    double t0, t1, t2;
    int32_t tok;
    int rc;

    qb_engine_reset(e);
    t0 = now_ms();
    if ((rc = qb_engine_forward(e, prompt, p, NULL)) < 0)
        return rc;
    tok = qb_argmax(qb_engine_logits(e), vocab);
    t1 = now_ms();
    tick(tk, PREFILL_UNITS(p));
    for (int64_t i = 1; i < gen_len; i++) {
        if ((rc = qb_engine_forward(e, &tok, 1, NULL)) < 0)
            return rc;
        tok = qb_argmax(qb_engine_logits(e), vocab);
        tick(tk, 1);
    }
    t2 = now_ms();
    *ttft = t1 - t0;
    *decode = t2 - t1;
    return 0;
}

/* B prompts of p tokens prefilled one after another; the summed prefill time in ms. */
static int time_batch(struct qb_engine *e, int64_t vocab, const int32_t *prompts, int64_t p,
                      int64_t b, double *total, struct ticks *tk)
{
    double sum = 0;
    int rc;

    for (int64_t i = 0; i < b; i++) {
        double t0;
        qb_engine_reset(e);
        t0 = now_ms();
        if ((rc = qb_engine_forward(e, prompts + i * p, p, NULL)) < 0)
            return rc;
        (void)qb_argmax(qb_engine_logits(e), vocab);
        sum += now_ms() - t0;
        tick(tk, PREFILL_UNITS(p));
    }
    *total = sum;
    return 0;
}

int qb_probe_latency(const struct qb_qmodel *qm, const struct qb_latency_opts *o, qb_latency_cb cb,
                     void *ctx)
{
    const struct qb_model *m;
    struct qb_engine *e = NULL;
    struct qb_engine_opts eo;
    int32_t *prompt = NULL;
    int64_t batch;
    int rc = 0;

    if (!qm || !o || !cb || !o->prompt_lens || o->n_prompt_lens < 1)
        return qb_err(QB_EINVAL, "latency probe: no model, callback or prompt lengths");
    if (o->gen_len < 2)
        return qb_err(QB_EINVAL,
                      "latency probe: gen_len must be at least 2 (one prefill token and "
                      "one decoded), not %lld",
                      (long long)o->gen_len);
    if (o->warmup < 0 || o->repetitions < 1)
        return qb_err(QB_EINVAL,
                      "latency probe: needs warmup >= 0 and repetitions >= 1, not %d and %d",
                      o->warmup, o->repetitions);
    if (o->batch < 0 || o->batch > (1 << 20))
        return qb_err(QB_EINVAL, "latency probe: batch %lld outside 0..%d", (long long)o->batch,
                      1 << 20);
    m = qm->m;
    batch = o->batch > 1 ? o->batch : 0;
    struct ticks tk = {0, 0};
    for (int li = 0; li < o->n_prompt_lens; li++) {
        int64_t p = o->prompt_lens[li] > 0 ? o->prompt_lens[li] : 0;
        tk.total += (int64_t)(o->warmup + o->repetitions) *
                    (PREFILL_UNITS(p) + o->gen_len - 1 + batch * PREFILL_UNITS(p));
    }

    for (int li = 0; li < o->n_prompt_lens; li++) {
        int64_t p = o->prompt_lens[li];

        if (p < 1)
            return qb_err(QB_EINVAL, "latency probe: prompt length %lld is not positive",
                          (long long)p);
        if (p > m->cfg.max_seq_len || o->gen_len - 1 > m->cfg.max_seq_len - p)
            return qb_err(
                QB_ERANGE,
                "latency probe: a prompt of %lld tokens and %lld generated need a context of "
                "%lld, and '%s' has %lld",
                (long long)p, (long long)o->gen_len, (long long)(p + o->gen_len - 1), m->path,
                (long long)m->cfg.max_seq_len);
    }

    for (int li = 0; li < o->n_prompt_lens; li++) {
        int64_t p = o->prompt_lens[li], need = p + o->gen_len - 1, n_ids = batch ? batch * p : p;
        size_t bytes;

        if (qb_mul_size((size_t)n_ids, sizeof *prompt, &bytes) < 0 || !(prompt = malloc(bytes))) {
            rc = qb_err(QB_ENOMEM, "latency probe: out of memory for %lld prompt ids",
                        (long long)n_ids);
            goto fail;
        }
        /* the batch-1 prompt is the first of the batch's, so both start from the same ids */
        if ((rc = fill_prompt(m, o->seed ^ (uint64_t)p, prompt, n_ids)) < 0)
            goto fail;
        eo = o->engine ? *o->engine : (struct qb_engine_opts){0};
        eo.max_ctx = need;
        if ((rc = qb_engine_new_opts(qm, &eo, &e)) < 0)
            goto fail;
        if (qb_engine_max_ctx(e) < need) {
            rc = qb_err(QB_ERANGE, "latency probe: the engine gave a context of %lld, %lld needed",
                        (long long)qb_engine_max_ctx(e), (long long)need);
            goto fail;
        }

        for (int r = -o->warmup; r < o->repetitions; r++) {
            double ttft, decode;
            struct qb_latency_sample s;
            if ((rc = time_request(e, m->cfg.vocab_size, prompt, p, o->gen_len, &ttft, &decode,
                                   &tk)) < 0)
                goto fail;
            if (r < 0)
                continue;
            s = (struct qb_latency_sample){
                .prompt_len = p,
                .gen_len = o->gen_len,
                .batch = 1,
                .repetition = r,
                .ttft_ms = ttft,
                .tpot_ms = decode / (double)(o->gen_len - 1),
                .e2e_ms = ttft + decode,
                .decode_tok_s = decode > 0 ? (double)(o->gen_len - 1) * 1e3 / decode : NAN,
                .prefill_tok_s = ttft > 0 ? (double)p * 1e3 / ttft : NAN,
            };
            if ((rc = cb(ctx, &s)) < 0)
                goto fail;
        }

        for (int r = -o->warmup; batch && r < o->repetitions; r++) {
            double total;
            struct qb_latency_sample s;
            if ((rc = time_batch(e, m->cfg.vocab_size, prompt, p, batch, &total, &tk)) < 0)
                goto fail;
            if (r < 0)
                continue;
            s = (struct qb_latency_sample){
                .prompt_len = p,
                .gen_len = 0,
                .batch = batch,
                .repetition = r,
                .ttft_ms = NAN,
                .tpot_ms = NAN,
                .e2e_ms = total,
                .decode_tok_s = NAN,
                .prefill_tok_s = total > 0 ? (double)(batch * p) * 1e3 / total : NAN,
            };
            if ((rc = cb(ctx, &s)) < 0)
                goto fail;
        }
        qb_engine_free(e);
        e = NULL;
        free(prompt);
        prompt = NULL;
    }
    return 0;

fail:
    qb_engine_free(e);
    free(prompt);
    return rc;
}

/* ---- memory ---- */

int64_t qb_probe_kv_bytes(const struct qb_config *c, int64_t ctx)
{
    size_t n;
    if (!c || ctx < 0 || c->n_layers < 0 || c->n_kv_heads < 0 || c->head_dim < 0)
        return -1;
    if (qb_mul_size((size_t)c->n_layers, (size_t)ctx, &n) < 0 ||
        qb_mul_size(n, (size_t)c->n_kv_heads, &n) < 0 ||
        qb_mul_size(n, (size_t)c->head_dim, &n) < 0 || qb_mul_size(n, 2 * sizeof(float), &n) < 0 ||
        n > (size_t)INT64_MAX)
        return -1;
    return (int64_t)n;
}

/* What the child writes to the pipe: one fixed-size record. */
struct mem_msg {
    int32_t rc;
    struct qb_mem_result res;
    char err[1024];
};

int64_t qb_proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kib = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        size_t kl = strlen(key);
        if (strncmp(line, key, kl) == 0 && line[kl] == ':' &&
            sscanf(line + kl + 1, "%lld", &kib) == 1)
            break;
    }
    fclose(f);
    return kib >= 0 ? (int64_t)kib * 1024 : -1;
}

/* Runs in the forked child: everything it makes dies with it, so nothing is freed on the
 * error paths beyond what keeps the code obviously right. */
/* Returns the whole pages inside [p, p + bytes) to the kernel. Only for memory nobody reads
 * again: anonymous pages read back as zeros, file pages are re-read from the file. */
static void drop_pages(const void *p, size_t bytes)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + bytes) & ~(page - 1);
    if (p && b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* A process serving one config holds that config, not the source it was made from: drop the
 * source copy of every matrix the config re-encoded (an f32 config borrows, and keeps, them). */
static void drop_source(const struct qb_model *m, const struct qb_qmodel *qm)
{
    const struct qb_config *c = &m->cfg;
    size_t q = (size_t)(c->n_heads * c->head_dim), kv = (size_t)(c->n_kv_heads * c->head_dim);
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim;
    for (int64_t l = 0; l < c->n_layers; l++) {
        const struct qb_layer *L = &m->layers[l];
        const float *src[QB_LIN_COUNT] = {L->wq,     L->wk,   L->wv,    L->wo,
                                          L->w_gate, L->w_up, L->w_down};
        const size_t n[QB_LIN_COUNT] = {q * d, kv * d, kv * d, d * q, h * d, h * d, d * h};
        for (int j = 0; j < QB_LIN_COUNT; j++)
            if (qm->lin[l * QB_LIN_COUNT + j].t.data != (const void *)src[j])
                drop_pages(src[j], n[j] * sizeof(float));
    }
    size_t ne = (size_t)c->vocab_size * d;
    const void *keep_e = qm->embed.t.data, *keep_o = qm->output.t.data;
    if (keep_e != (const void *)m->tok_embd && keep_o != (const void *)m->tok_embd)
        drop_pages(m->tok_embd, ne * sizeof(float));
    if (m->output != m->tok_embd && keep_o != (const void *)m->output &&
        keep_e != (const void *)m->output)
        drop_pages(m->output, ne * sizeof(float));
    /* the file's pages read while converting (an f16 file read into f32 buffers): the
     * mappings are read-only views of the file, so whatever still borrows them (an f32
     * config, the norms) faults its pages back in and is counted then */
    for (int i = 0; i < m->n_maps; i++)
        drop_pages(m->maps[i].data, m->maps[i].size);
}

int qb_proc_reset_peak(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC), ok;
    if (fd < 0)
        return -1;
    ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok ? 0 : -1;
}

#define MEM_BATCH 256 /* tokens per forward of the memory probe: the engine's default batch */

static int child_measure(const char *path, const struct qb_load_opts *lo,
                         const struct qb_qspec *spec, int64_t context, struct qb_mem_result *res)
{
    struct qb_model *m = NULL;
    struct qb_qmodel *qm = NULL;
    struct qb_engine *e = NULL;
    struct qb_load_opts none = {0};
    struct rusage ru;
    int32_t *ids = NULL;
    int rc, reset;

    res->start_rss_bytes = qb_proc_status_bytes("VmRSS");
    if ((rc = qb_model_load(path, lo ? lo : &none, &m)) < 0)
        goto out;
    if (context <= 0)
        context = m->cfg.max_seq_len;
    if (context > m->cfg.max_seq_len) {
        rc = qb_err(QB_ERANGE, "'%s': a context of %lld is longer than the model's %lld", path,
                    (long long)context, (long long)m->cfg.max_seq_len);
        goto out;
    }
    /* a calibrated config (-gptq, -awq, -smooth) is measured on its round-to-nearest twin:
     * the same tensors, formats and sizes (qmodel.h), without the calibration data */
    if ((rc = qb_qmodel_new_twin(m, spec, &qm)) < 0)
        goto out;
    /* what loading and quantizing cost is not what serving costs: drop the source the config
     * no longer needs and the allocator's free memory, then restart the peak from here */
    drop_source(m, qm);
    malloc_trim(0);
    reset = qb_proc_reset_peak();
    if ((rc = qb_engine_new_q(qm, context, &e)) < 0)
        goto out;
    /* fill the whole context, as a request of that length would */
    if (!(ids = malloc((size_t)context * sizeof *ids))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = fill_prompt(m, 1, ids, context)) < 0)
        goto out;
    /* in the engine's own batches (the same activations), with progress between them */
    qb_progress("measuring memory", 0, context);
    for (int64_t t0 = 0, k; t0 < context; t0 += k) {
        k = context - t0 < MEM_BATCH ? context - t0 : MEM_BATCH;
        if ((rc = qb_engine_forward(e, ids + t0, k, NULL)) < 0)
            goto out;
        qb_progress("measuring memory", t0 + k, context);
    }
    if (getrusage(RUSAGE_SELF, &ru) < 0) {
        rc = qb_err(QB_EIO, "getrusage: %s", strerror(errno));
        goto out;
    }
    res->context = context;
    res->weight_bytes = (int64_t)qb_qmodel_bytes(qm);
    res->kv_cache_bytes = qb_probe_kv_bytes(&m->cfg, qb_engine_max_ctx(e));
    res->vm_hwm_bytes = qb_proc_status_bytes("VmHWM");
    /* after the reset VmHWM is the serving peak; without it only ru_maxrss (which then
     * includes loading and quantizing) is available */
    res->peak_rss_bytes =
        reset == 0 && res->vm_hwm_bytes > 0 ? res->vm_hwm_bytes : (int64_t)ru.ru_maxrss * 1024;
out:
    free(ids);
    qb_engine_free(e);
    qb_qmodel_free(qm);
    qb_model_free(m);
    return rc;
}

int qb_probe_device_memory(const struct qb_qmodel *qm, const struct qb_engine_opts *eo,
                           int64_t context, struct qb_mem_result *out)
{
    const struct qb_model *m = qm->m;
    struct qb_engine_opts o = *eo;
    struct qb_engine *e = NULL;
    struct qb_backend_mem bm;
    int32_t *ids = NULL;
    int rc;

    if (context <= 0)
        context = m->cfg.max_seq_len;
    if (context > m->cfg.max_seq_len)
        return qb_err(QB_ERANGE, "'%s': a context of %lld is longer than the model's %lld", m->path,
                      (long long)context, (long long)m->cfg.max_seq_len);
    o.max_ctx = context;
    if ((rc = qb_engine_new_opts(qm, &o, &e)) < 0)
        goto out;
    if (!(ids = malloc((size_t)context * sizeof *ids))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = fill_prompt(m, 1, ids, context)) < 0 ||
        (rc = qb_engine_forward(e, ids, context, NULL)) < 0 || (rc = qb_engine_mem(e, &bm)) < 0)
        goto out;
    *out = (struct qb_mem_result){.context = context,
                                  .weight_bytes = bm.weights,
                                  .kv_cache_bytes = bm.kv_cache,
                                  .peak_rss_bytes = bm.peak,
                                  .vm_hwm_bytes = -1,
                                  .start_rss_bytes = -1};
out:
    free(ids);
    qb_engine_free(e);
    return rc;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to n bytes until EOF; returns the count read. */
static size_t read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

int qb_probe_memory(const char *path, const struct qb_load_opts *lo, const struct qb_qspec *spec,
                    int64_t context, struct qb_mem_result *out)
{
    char name[QB_QSPEC_MAX];
    struct mem_msg msg;
    int fds[2] = {-1, -1}, status = 0, rc;
    size_t got;
    pid_t pid, w;

    if (!path || !spec || !out)
        return qb_err(QB_EINVAL, "memory probe: no model path, config or result");
    qb_qspec_format(spec, name, sizeof name);
    if (pipe2(fds, O_CLOEXEC) < 0)
        return qb_err(QB_EIO, "memory probe: pipe: %s", strerror(errno));
    fflush(NULL); /* no buffered output is duplicated by the child */
    pid = fork();
    if (pid < 0) {
        rc = qb_err(QB_EIO, "memory probe: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (pid == 0) {
        /* GNU libgomp's thread pool does not survive fork: a child of a process that already
         * ran a parallel region waits forever for workers that were not copied. The child
         * measures memory, not speed, on one thread (the weights, KV cache and scratch it
         * holds do not depend on the thread count beyond a few KiB of per-thread scores). */
        omp_set_num_threads(1);
        memset(&msg, 0, sizeof msg);
        close(fds[0]);
        msg.rc = child_measure(path, lo, spec, context, &msg.res);
        if (msg.rc < 0)
            snprintf(msg.err, sizeof msg.err, "%s", qb_errmsg());
        if (write_all(fds[1], &msg, sizeof msg) < 0)
            _exit(3);
        _exit(msg.rc < 0 ? 1 : 0);
    }

    close(fds[1]);
    memset(&msg, 0, sizeof msg);
    got = read_all(fds[0], &msg, sizeof msg);
    close(fds[0]);
    do
        w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return qb_err(QB_EIO, "memory probe of '%s' (config %s): waitpid: %s", path, name,
                      strerror(errno));

    msg.err[sizeof msg.err - 1] = '\0';
    if (WIFSIGNALED(status))
        return qb_err(
            QB_EIO, "memory probe of '%s' (config %s): the child was killed by signal %d (%s)%s%s",
            path, name, WTERMSIG(status), strsignal(WTERMSIG(status)), msg.err[0] ? ": " : "",
            msg.err);
    if (got == sizeof msg && msg.rc < 0) {
        if (strstr(msg.err, path))
            return qb_err(msg.rc, "%s", msg.err);
        return qb_err(msg.rc, "memory probe of '%s' (config %s): %s", path, name, msg.err);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != sizeof msg)
        return qb_err(
            QB_EIO,
            "memory probe of '%s' (config %s): the child exited with status %d without a report",
            path, name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    *out = msg.res;
    return 0;
}

/* ---- machine ---- */

static void cpu_model(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];

    snprintf(buf, cap, "unknown");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char *colon;
        if (strncmp(line, "model name", 10) != 0 || !(colon = strchr(line, ':')))
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        colon[strcspn(colon, "\n")] = '\0';
        if (*colon)
            snprintf(buf, cap, "%s", colon);
        break;
    }
    fclose(f);
}

static void isa_features(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    __builtin_cpu_init();
#define FEATURE(s)                                                                                 \
    if (__builtin_cpu_supports(s) && len < cap)                                                    \
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? " " : "", s);
    FEATURE("avx2")
    FEATURE("fma")
    FEATURE("avx512f")
    FEATURE("avx512bw")
    FEATURE("avx512vl")
    FEATURE("avx512vnni")
    FEATURE("avx512bf16")
#undef FEATURE
}

void qb_machine_info(struct qb_machine *out)
{
    struct utsname u;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE), cores;

    memset(out, 0, sizeof *out);
    cpu_model(out->cpu, sizeof out->cpu);
    cores = sysconf(_SC_NPROCESSORS_ONLN);
    out->cores = cores > 0 ? cores : 1;
    out->threads = omp_get_max_threads();
    snprintf(out->isa, sizeof out->isa, "%s", qb_kernels()->isa);
    isa_features(out->features, sizeof out->features);
    out->memory_bytes = pages > 0 && psize > 0 ? (int64_t)pages * psize : -1;
    if (uname(&u) == 0) {
        snprintf(out->os, sizeof out->os, "%s %s %s", u.sysname, u.release, u.machine);
        snprintf(out->hostname, sizeof out->hostname, "%s", u.nodename);
    } else {
        snprintf(out->os, sizeof out->os, "unknown");
        snprintf(out->hostname, sizeof out->hostname, "unknown");
    }
}

int qb_machine_json(const struct qb_machine *mi, char **json)
{
    json_t *o = json_object(), *feats = json_array();
    char buf[QB_ISA_FEATURES_MAX], *tok, *save = NULL;
    int rc = 0;

    *json = NULL;
    if (!o || !feats)
        goto oom;
    snprintf(buf, sizeof buf, "%s", mi->features);
    for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (json_array_append_new(feats, json_string(tok)) < 0)
            goto oom;
    if (json_object_set_new(o, "cpu", json_string(mi->cpu)) < 0 ||
        json_object_set_new(o, "cores", json_integer(mi->cores)) < 0 ||
        json_object_set_new(o, "threads", json_integer(mi->threads)) < 0 ||
        json_object_set_new(o, "isa", json_string(mi->isa)) < 0 ||
        json_object_set(o, "features", feats) < 0 ||
        json_object_set_new(o, "memory_bytes", json_integer(mi->memory_bytes)) < 0 ||
        json_object_set_new(o, "os", json_string(mi->os)) < 0 ||
        json_object_set_new(o, "hostname", json_string(mi->hostname)) < 0)
        goto oom;
    if (!(*json = json_dumps(o, JSON_COMPACT)))
        goto oom;
    goto out;
oom:
    rc = qb_err(QB_ENOMEM, "out of memory for the machine description");
out:
    json_decref(feats);
    json_decref(o);
    return rc;
}
