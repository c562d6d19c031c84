/* bench-calib: peak memory and time of calibrated quantization (collector/quant/calib.h), to check
 * that streaming keeps calibration's working set to the residual stream plus one layer.
 *
 *     build/tools/bench-calib MODEL TOKENIZER TEXT SEQS LEN CONFIG...
 *
 * Each config runs in its own child process: load the model, note the RSS, reset the peak
 * (VmHWM, via /proc/self/clear_refs), run qb_qmodel_new_calib on SEQS x LEN tokens of TEXT,
 * read the peak. The working set is the peak less the RSS before and less the quantized
 * model's bytes. It is compared with the bound this benchmark states (docs/quality.md):
 *
 *   stream   n_seq T d                     the residual stream of every sequence (f32)
 *   acts     threads T (2d+2qd+2kvd+2hid+1+hd) + 2 threads T kmax    one sequence per thread
 *   layer    sum of one layer's rows x cols                       its f32 working copies
 *   stats    6 kmax^2 doubles + n (4 max(kmax, hid) + 4d + 3qd + 4kvd) floats, n =
 *            max(awq_tokens, T)   H or E[xx^T], their copies inside GPTQ (the Cholesky
 *            inverse and its work), AWQ's sampled inputs and its search's outputs (for
 *            q/k/v: whole sequences, the attention's inputs, outputs and o's output)
 *   head     3 vocab d + 2 x 512 vocab floats + d^2 doubles       the output head's search
 *            (GPTQ's and AWQ's rounding of the embeddings, before the first layer, needs
 *            d^2 doubles + d (qd + 2 kvd) floats besides the table: within this term)
 *
 * all f32 (4 bytes) unless noted; kmax = max(d, qd, hid). Nothing in it grows with the number
 * of layers: that is what "bounded by one layer's activations" means. */
#include "collector/quant/calib.h"
#include "kernels/base/err.h"
#include "collector/model/model.h"
#include "collector/eval/probe.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mib(double bytes)
{
    return bytes / (1024.0 * 1024.0);
}

/* The stated bound on the working set, in bytes (see the top of this file). */
static double bound_bytes(const struct qb_config *c, int64_t n_seq, int64_t T, int64_t awq_tokens,
                          int threads, double *stream)
{
    const double d = (double)c->dim, qd = (double)(c->n_heads * c->head_dim);
    const double kvd = (double)(c->n_kv_heads * c->head_dim), hid = (double)c->hidden_dim;
    const double kmax = d > qd ? (d > hid ? d : hid) : (qd > hid ? qd : hid);
    const double vocab = (double)c->vocab_size, nt = threads < n_seq ? threads : (double)n_seq;
    const double wide = kmax > hid ? kmax : hid;
    *stream = 4.0 * (double)n_seq * (double)T * d;
    const double hd = (double)c->head_dim, n = awq_tokens > T ? (double)awq_tokens : (double)T;
    double acts = 4.0 * nt * (double)T * (2 * d + 2 * qd + 2 * kvd + 2 * hid + 1 + hd + 2 * kmax);
    double layer = 4.0 * (qd * d + 2 * kvd * d + d * qd + 3 * hid * d);
    double stats = 8.0 * 6 * kmax * kmax + 4.0 * n * (4 * wide + 4 * d + 3 * qd + 4 * kvd);
    double head = 4.0 * (3 * vocab * d + 2 * 512 * vocab) + 8.0 * d * d;
    return *stream + acts + layer + stats + head;
}

static int one(const char *model, const char *tokenizer, const char *text, int64_t n_seq,
               int64_t len, const char *config)
{
    struct qb_load_opts lo = {.tokenizer_path = tokenizer};
    struct qb_model *m = NULL;
    struct qb_calib *cal = NULL;
    struct qb_qmodel *qm = NULL;
    struct qb_qspec spec;
    struct timespec t0, t1;
    int rc;

    if ((rc = qb_qspec_parse(config, &spec)) < 0 || (rc = qb_model_load(model, &lo, &m)) < 0 ||
        (rc = qb_calib_load(text, m->tok, n_seq, len, m->cfg.max_seq_len, &cal)) < 0)
        goto out;
    double before = mib((double)qb_proc_status_bytes("VmRSS"));
    if (qb_proc_reset_peak() < 0) {
        rc = qb_err(QB_EIO, "cannot reset the peak RSS (/proc/self/clear_refs)");
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((rc = qb_qmodel_new_calib(m, &spec, cal, &qm)) < 0)
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double peak = mib((double)qb_proc_status_bytes("VmHWM")), stream;
    double qbytes = mib((double)qb_qmodel_bytes(qm));
    double bound = mib(bound_bytes(&m->cfg, cal->n_seq, cal->seq_len, cal->awq_tokens,
                                   omp_get_max_threads(), &stream));
    double work = peak - before - qbytes;
    printf("| `%s` | %lld x %lld | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.1f |\n", config,
           (long long)cal->n_seq, (long long)cal->seq_len, before, peak, qbytes, work, mib(stream),
           bound, work <= bound ? "yes" : "NO",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    fflush(stdout);
out:
    if (rc < 0)
        fprintf(stderr, "bench-calib: %s: %s\n", config, qb_errmsg());
    qb_qmodel_free(qm);
    qb_calib_free(cal);
    qb_model_free(m);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    int failed = 0;
    if (argc < 7) {
        fprintf(stderr, "usage: bench-calib MODEL TOKENIZER TEXT SEQS LEN CONFIG...\n");
        return 2;
    }
    const int64_t n_seq = atoll(argv[4]), len = atoll(argv[5]);
    if (n_seq < 1 || len < 2) {
        fprintf(stderr, "bench-calib: SEQS must be >= 1 and LEN >= 2\n");
        return 2;
    }
    printf("| config | sequences x tokens | RSS before MiB | peak RSS MiB | quantized MiB | "
           "working set MiB | of it the stream MiB | bound MiB | within | seconds |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    for (int i = 6; i < argc; i++) {
        pid_t pid = fork();
        int st;
        if (pid == 0)
            _exit(one(argv[1], argv[2], argv[3], n_seq, len, argv[i]));
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed++;
    }
    return failed ? 1 : 0;
}
