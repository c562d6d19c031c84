/* bench_device: `qbrief bench-kernels --device vulkan[:N]` -- the same table as on the CPU,
 * timed through the engine's backend seam (kernels/backend.h): each format's weight is
 * uploaded once (weight_new), then each matmul is queued and followed by a one-float read,
 * which returns only when the device has finished. The device's bandwidth is measured in
 * the same run by timing the backend's copy op on a large buffer (bytes read + written). */
#include "collector/cli/cli.h"
#include "collector/engine/device.h"
#include "collector/model/qspec.h"
#include "kernels/backend.h"
#include "kernels/base/err.h"
#include "kernels/quantize.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_FLOATS ((int64_t)16 << 20) /* 64 MiB per buffer: under lavapipe's 128 MiB range */

/* A backend on d sized for (in, out) matmuls of up to max_batch tokens. */
static int open_backend(const struct qb_device *d, long in, long out, long max_batch,
                        struct qb_backend *be)
{
    struct qb_engine_opts eo = {0};
    struct qb_backend_shape sh = {.dim = in,
                                  .hidden_dim = out,
                                  .n_heads = 1,
                                  .n_kv_heads = 1,
                                  .head_dim = 32,
                                  .max_ctx = 1,
                                  .cache_layers = 1,
                                  .max_batch = max_batch,
                                  .rope_theta = 10000,
                                  .norm_eps = 1e-5f,
                                  .device = d->index};
    qb_device_engine_opts(d, &eo);
    return eo.backend(&sh, be);
}

/* Best of 7 copies of a COPY_FLOATS buffer on the device, in GB/s (read + write). */
static int device_bandwidth(struct qb_backend *be, double *gbs)
{
    const struct qb_backend_ops *B = be->ops;
    struct qb_bbuf *a = NULL, *b = NULL;
    float one;
    int rc;

    *gbs = 0;
    if ((rc = B->buf_new(be->ctx, COPY_FLOATS, &a)) < 0 ||
        (rc = B->buf_new(be->ctx, COPY_FLOATS, &b)) < 0)
        goto out;
    for (int rep = -1; rep < 7; rep++) {
        double t0 = qb_now_s(), dt;
        if ((rc = B->copy(be->ctx, b, 0, a, 0, COPY_FLOATS)) < 0 ||
            (rc = B->read(be->ctx, b, 0, &one, 1)) < 0)
            goto out;
        dt = qb_now_s() - t0;
        if (rep >= 0 && 2.0 * (double)COPY_FLOATS * 4 / dt / 1e9 > *gbs)
            *gbs = 2.0 * (double)COPY_FLOATS * 4 / dt / 1e9;
    }
out:
    B->buf_free(be->ctx, a);
    B->buf_free(be->ctx, b);
    return rc;
}

/* One format at one shape: every batch's row of the table. A format the device does not
 * run gets one line saying so; the benchmark goes on. */
static int bench_format(struct qb_backend *be, const struct qb_qspec *spec, const float *w, long in,
                        long out, const long *batches, int n_batch, int reps, double bw,
                        struct qb_bbuf *x, struct qb_bbuf *y)
{
    const struct qb_backend_ops *B = be->ops;
    const struct qb_qbase *q = &spec->base;
    struct qb_quant_opts qo = {.clip = 0};
    struct qb_qtensor t;
    struct qb_bweight *bw_w = NULL;
    char name[QB_QSPEC_MAX];
    double b1_ms = 0;
    int rc;

    qb_qspec_format(spec, name, sizeof name);
    if (q->fmt == QB_FMT_F32)
        qb_qtensor_wrap_f32(w, out, in, &t);
    else if ((rc = qb_quantize(w, out, in, q->fmt, q->group, q->asym, &qo, &t)) < 0)
        return rc;
    t.in_cols = 0;
    if ((rc = B->weight_new(be->ctx, &t, q->act, &bw_w)) < 0)
        goto unsupported;
    for (int b = 0; b < n_batch; b++) {
        double times[101], ms;
        float one;
        int n_rep = reps > 100 ? 100 : reps;
        for (int i = -2; i < n_rep; i++) { /* two untimed: shaders, pipelines, first touch */
            double t0 = qb_now_s();
            if ((rc = B->matmul(be->ctx, y, x, batches[b], bw_w)) < 0 ||
                (rc = B->read(be->ctx, y, 0, &one, 1)) < 0)
                goto unsupported;
            if (i >= 0)
                times[i] = qb_now_s() - t0;
        }
        ms = qb_bench_row(in, out, batches[b], name, times, n_rep, &t, bw, b1_ms);
        if (batches[b] == 1)
            b1_ms = ms;
    }
    B->weight_free(be->ctx, bw_w);
    qb_qtensor_release(&t);
    return 0;
unsupported:
    printf("%5ldx%-5ld %-5s %-12s not run on this device: %s\n", in, out, "-", name, qb_errmsg());
    fflush(stdout);
    B->weight_free(be->ctx, bw_w);
    qb_qtensor_release(&t);
    return rc == QB_ENOMEM ? rc : 0;
}

int qb_bench_device(const struct qb_device *d, const struct qb_qspec *specs, int n_fmt,
                    const long *ins, const long *outs, int n_shape, const long *batches,
                    int n_batch, int reps)
{
    long max_batch = 1;
    double bw = 0;
    int rc = 0;

    for (int b = 0; b < n_batch; b++)
        if (batches[b] > max_batch)
            max_batch = batches[b];
    for (int s = 0; s < n_shape && rc == 0; s++) {
        long in = ins[s], out = outs[s];
        struct qb_backend be = {0};
        struct qb_bbuf *x = NULL, *y = NULL;
        float *w = NULL, *hx = NULL;
        uint64_t seed = 1;

        if ((rc = open_backend(d, in, out, max_batch, &be)) < 0)
            break;
        if (s == 0) {
            if ((rc = device_bandwidth(&be, &bw)) < 0)
                goto next;
            printf("device: %s %s, copy bandwidth %.1f GB/s (a 64 MiB buffer copied on the "
                   "device, bytes read + written)\n",
                   d->spec, be.ops->device_name ? be.ops->device_name(be.ctx) : d->name, bw);
            printf("%-11s %-5s %-12s %9s %9s %7s %9s %8s %9s\n", "shape", "batch", "config", "ms",
                   "GB/s", "of bw", "GFLOP/s", "bits/w", "tok vs b1");
        }
        w = malloc((size_t)in * (size_t)out * sizeof(float));
        hx = malloc((size_t)in * (size_t)max_batch * sizeof(float));
        if (!w || !hx) {
            rc = qb_err(QB_ENOMEM, "out of memory for a %ldx%ld matrix", in, out);
            goto next;
        }
        qb_bench_random(w, (size_t)in * (size_t)out, 0.02f, &seed);
        qb_bench_random(hx, (size_t)in * (size_t)max_batch, 1.0f, &seed);
        if ((rc = be.ops->buf_new(be.ctx, in * max_batch, &x)) < 0 ||
            (rc = be.ops->buf_new(be.ctx, out * max_batch, &y)) < 0 ||
            (rc = be.ops->write(be.ctx, x, 0, hx, in * max_batch)) < 0)
            goto next;
        for (int f = 0; f < n_fmt && rc == 0; f++)
            rc = bench_format(&be, &specs[f], w, in, out, batches, n_batch, reps, bw, x, y);
    next:
        if (be.ops) {
            be.ops->buf_free(be.ctx, x);
            be.ops->buf_free(be.ctx, y);
            be.ops->free(be.ctx);
        }
        free(w);
        free(hx);
    }
    return rc;
}
