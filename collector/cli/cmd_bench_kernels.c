/* cmd_bench_kernels: `qbrief bench-kernels` times each weight format's matmul at decode
 * (batch 1) and prefill (batch > 1) shapes and sets it against this machine's read bandwidth,
 * measured in the same run. A benchmark that prints a table, never a pass/fail test. */
#include "collector/cli/cli.h"
#include "collector/engine/device.h"
#include "kernels/bandwidth.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"
#include "kernels/qmatmul.h"
#include "collector/model/qspec.h"
#include "kernels/quantize.h"

#include <getopt.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 32
#define DEFAULT_FORMATS                                                                            \
    "f32,f16,bf16,fp8,fp8-e5m2,fp8-a8,w8,w8a8,w4g32,w4g128,w4g32-sym,w4g128-a8,w3g64,w2g32"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Last-level cache size from sysfs (0 when unknown). */
static size_t llc_bytes(void)
{
    size_t best = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], buf[32];
        FILE *f;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r")))
            continue;
        if (fgets(buf, sizeof buf, f)) {
            char *end;
            size_t v = strtoul(buf, &end, 10);
            if (*end == 'K')
                v <<= 10;
            else if (*end == 'M')
                v <<= 20;
            if (v > best)
                best = v;
        }
        fclose(f);
    }
    return best;
}

/* Reads a buffer twice the size of the last-level cache so the next matmul finds none of its
 * weights there: decode streams weights from memory, and so does the benchmark. */
static void evict_caches(const uint64_t *buf, size_t n)
{
    uint64_t s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s)
    for (size_t i = 0; i < n; i += 8)
        s += buf[i];
    /* keep the loads: the compiler may not drop a read whose result reaches an asm input */
    __asm__ volatile("" : : "r"(s));
}

static int split(char *s, char **out)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < MAX_LIST; tok = strtok(NULL, ","))
        out[n++] = tok;
    return n;
}

void qb_bench_random(float *v, size_t n, float scale, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = scale * ((float)((*seed >> 40) & 0xffffff) / 8388608.0f - 1.0f);
    }
}

double qb_bench_row(long in, long out, long batch, const char *name, double *times, int n_rep,
                    const struct qb_qtensor *t, double bw, double b1_ms)
{
    double ms, gbs;

    qsort(times, (size_t)n_rep, sizeof times[0], cmp_double);
    ms = times[n_rep / 2] * 1e3;
    gbs = (double)qb_qtensor_bytes(t) / (ms * 1e-3) / 1e9;
    printf("%5ldx%-5ld %-5ld %-12s %9.3f %9.1f %6.0f%% %9.1f %8.3f", in, out, batch, name, ms, gbs,
           bw > 0 ? 100 * gbs / bw : 0.0,
           2.0 * (double)batch * (double)in * (double)out / (ms * 1e-3) / 1e9, qb_qtensor_bpw(t));
    if (batch > 1 && b1_ms > 0)
        printf(" %9.3f", ms / (double)batch / b1_ms);
    printf("\n");
    fflush(stdout);
    return ms;
}

static const struct option longopts[] = {
    {"formats", required_argument, NULL, 'f'},
    {"shapes", required_argument, NULL, 's'},
    {"batches", required_argument, NULL, 'b'},
    {"threads", required_argument, NULL, 'j'},
    {"isa", required_argument, NULL, 'I'},
    {"reps", required_argument, NULL, 'r'},
    {"device", required_argument, NULL, 'D'},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* The table on a device (bench_device.c), once the shapes are read. */
static int on_device(const struct command *self, const struct qb_device *dev,
                     const struct qb_qspec *specs, int n_fmt, char **shapes, int n_shape,
                     const long *batches, int n_batch, int reps)
{
    long ins[MAX_LIST], outs[MAX_LIST];
    for (int s = 0; s < n_shape; s++) {
        char *x_at = strchr(shapes[s], 'x');
        if (!x_at || (*x_at = 0, qb_parse_long(shapes[s], 1, 1 << 20, &ins[s]) < 0) ||
            qb_parse_long(x_at + 1, 1, 1 << 20, &outs[s]) < 0)
            return qb_usage_error(self, "shape '%s' is not INxOUT", shapes[s]);
    }
    return qb_report(
        qb_bench_device(dev, specs, n_fmt, ins, outs, n_shape, batches, n_batch, reps));
}

int cmd_bench_kernels(int argc, char **argv)
{
    const struct command *self = qb_find_command("bench-kernels");
    char formats_buf[1024] = DEFAULT_FORMATS, shapes_buf[256] = "4096x4096,4096x14336,14336x4096";
    char batches_buf[128] = "1,32";
    char *formats[MAX_LIST], *shapes[MAX_LIST], *batches_s[MAX_LIST];
    struct qb_qspec specs[MAX_LIST];
    long batches[MAX_LIST], threads = 0, reps = 15;
    int n_fmt, n_shape, n_batch, opt, rc = 0;
    const char *isa = NULL, *device = NULL;
    struct qb_device dev;
    double bw;
    size_t llc, flush_n;
    uint64_t *flush;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': snprintf(formats_buf, sizeof formats_buf, "%s", optarg); break;
        case 's': snprintf(shapes_buf, sizeof shapes_buf, "%s", optarg); break;
        case 'b': snprintf(batches_buf, sizeof batches_buf, "%s", optarg); break;
        case 'j':
            if (qb_parse_long(optarg, 1, 4096, &threads) < 0)
                return qb_usage_error(self, "--threads wants a positive count, not '%s'", optarg);
            break;
        case 'r':
            if (qb_parse_long(optarg, 1, 100000, &reps) < 0)
                return qb_usage_error(self, "--reps wants a positive count, not '%s'", optarg);
            break;
        case 'I': isa = optarg; break;
        case 'D': device = optarg; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc)
        return qb_usage_error(self, "%s", "takes no positional arguments");
    /* also without --isa: a bad QB_ISA_MAX is reported here, not silently read as "ref" */
    if ((rc = qb_kernels_init(isa)) < 0)
        return isa && rc == QB_EINVAL ? qb_usage_error(self, "%s", qb_errmsg()) : qb_report(rc);
    if (threads)
        omp_set_num_threads((int)threads);
    n_fmt = split(formats_buf, formats);
    n_shape = split(shapes_buf, shapes);
    n_batch = split(batches_buf, batches_s);
    for (int i = 0; i < n_fmt; i++)
        if (qb_qspec_parse(formats[i], &specs[i]) < 0)
            return qb_usage_error(self, "%s", qb_errmsg());
    for (int i = 0; i < n_batch; i++)
        if (qb_parse_long(batches_s[i], 1, 4096, &batches[i]) < 0)
            return qb_usage_error(self, "batch '%s' is not a count from 1 to 4096", batches_s[i]);

    if (qb_device_parse(device, &dev) < 0)
        return qb_usage_error(self, "--device: %s", qb_errmsg());
    if ((rc = qb_device_open(&dev)) < 0)
        return qb_report(rc);
    if (dev.kind != QB_DEVICE_CPU)
        return on_device(self, &dev, specs, n_fmt, shapes, n_shape, batches, n_batch, (int)reps);
    struct qb_bw bwr;
    qb_read_bandwidth((size_t)1 << 30, 5, &bwr);
    bw = bwr.gb_s;
    llc = llc_bytes();
    flush_n = (2 * (llc > ((size_t)32 << 20) ? llc : ((size_t)32 << 20))) / sizeof(uint64_t);
    if (!(flush = malloc(flush_n * sizeof(uint64_t))))
        return qb_report(qb_err(QB_ENOMEM, "out of memory for the cache-eviction buffer"));
    for (size_t i = 0; i < flush_n; i++)
        flush[i] = i;
    printf("machine: %d threads, %s kernels, read bandwidth %.1f GB/s (streaming 1 GiB, the best "
           "of several ways: %s loads on %d threads), last-level cache %zu MiB (evicted before "
           "every timed matmul)\n",
           omp_get_max_threads(), qb_kernels()->isa, bw, bwr.how, bwr.threads, llc >> 20);
    printf("%-11s %-5s %-12s %9s %9s %7s %9s %8s %9s\n", "shape", "batch", "config", "ms", "GB/s",
           "of bw", "GFLOP/s", "bits/w", "tok vs b1");

    for (int s = 0; s < n_shape && rc == 0; s++) {
        long in, out;
        char *x_at = strchr(shapes[s], 'x');
        float *w = NULL, *x = NULL, *y = NULL;
        long max_batch = 1;
        uint64_t seed = 1;

        if (!x_at || (*x_at = 0, qb_parse_long(shapes[s], 1, 1 << 20, &in) < 0) ||
            qb_parse_long(x_at + 1, 1, 1 << 20, &out) < 0)
            return qb_usage_error(self, "shape '%s' is not INxOUT", shapes[s]);
        for (int b = 0; b < n_batch; b++)
            if (batches[b] > max_batch)
                max_batch = batches[b];
        w = malloc((size_t)in * (size_t)out * sizeof(float));
        x = malloc((size_t)in * (size_t)max_batch * sizeof(float));
        y = malloc((size_t)out * (size_t)max_batch * sizeof(float));
        if (!w || !x || !y) {
            rc = qb_err(QB_ENOMEM, "out of memory for a %ldx%ld matrix", in, out);
        } else {
            qb_bench_random(w, (size_t)in * (size_t)out, 0.02f, &seed);
            qb_bench_random(x, (size_t)in * (size_t)max_batch, 1.0f, &seed);
        }
        for (int f = 0; f < n_fmt && rc == 0; f++) {
            const struct qb_qbase *q = &specs[f].base;
            struct qb_quant_opts qo = {.clip = 0};
            struct qb_qtensor t;
            double b1_ms = 0;
            char name[QB_QSPEC_MAX];

            qb_qspec_format(&specs[f], name, sizeof name);
            if (q->fmt == QB_FMT_F32)
                qb_qtensor_wrap_f32(w, out, in, &t);
            else if ((rc = qb_quantize(w, out, in, q->fmt, q->group, q->asym, &qo, &t)) < 0)
                break;
            t.in_cols = 0;
            for (int b = 0; b < n_batch && rc == 0; b++) {
                double times[101], ms;
                int n_rep = reps > 100 ? 100 : (int)reps;
                /* warm-up: page in, fill caches and branch predictors */
                for (int i = 0; i < 2 && rc == 0; i++)
                    rc = qb_qmatmul(y, x, batches[b], &t, q->act);
                for (int i = 0; i < n_rep && rc == 0; i++) {
                    double t0;
                    evict_caches(flush, flush_n);
                    t0 = qb_now_s();
                    rc = qb_qmatmul(y, x, batches[b], &t, q->act);
                    times[i] = qb_now_s() - t0;
                }
                if (rc < 0)
                    break;
                ms = qb_bench_row(in, out, batches[b], name, times, n_rep, &t, bw, b1_ms);
                if (batches[b] == 1)
                    b1_ms = ms;
            }
            qb_qtensor_release(&t);
        }
        free(w);
        free(x);
        free(y);
    }
    free(flush);
    return qb_report(rc);
}
