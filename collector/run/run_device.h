/* run_device: the device a run measures on (--device, plan key device:), for the runner
 * (run.c): opened and described before anything runs, each config's fit to the device's
 * memory checked once the model is known, and the words and JSON the store records beside
 * every latency and memory measurement.
 *
 *     struct qb_run_device dv = {0};
 *     if ((rc = qb_run_device_open(&dv, o->device)) < 0) ...;   // bad or absent: refused
 *     if ((rc = qb_run_device_fit(&dv, m, specs, names, n_cfg, ctx)) < 0) ...;  // QB_ENOMEM
 *     qb_engine_new_opts(qm, &dv.eo, &e);                        // engines on the device
 *     qb_run_device_release(&dv);
 */
#ifndef QB_RUN_DEVICE_H
#define QB_RUN_DEVICE_H

#include "collector/engine/device.h"
#include "collector/model/qspec.h"

#include <stdint.h>

struct qb_model;

struct qb_run_device {
    struct qb_device dev;
    struct qb_engine_opts eo; /* backend and device; max_ctx 0 (the model's), batch 0 */
    int on_device;            /* 1: not the CPU (memory comes from the backend) */
    char desc[800];           /* qb_device_describe: "cpu", "vulkan:0 NAME, DRIVER, N MiB" */
    char *json;               /* qb_device_json (malloc'ed) */
    char host[256];           /* this machine's hostname */
};

/* Parses and opens spec (NULL: "cpu"), filling d. QB_EINVAL for a bad spec, QB_EUNSUP for
 * an absent device, each naming it. */
int qb_run_device_open(struct qb_run_device *d, const char *spec);

/* 0 when every config (names[i] in specs[i]) fits the device's memory with an engine of ctx
 * positions; else QB_ENOMEM naming the first that does not, its need and the capacity. */
int qb_run_device_fit(const struct qb_run_device *d, const struct qb_model *m,
                      const struct qb_qspec *specs, const char (*names)[QB_QSPEC_MAX], int64_t n,
                      int64_t ctx);

void qb_run_device_release(struct qb_run_device *d);

#endif
