/* device: where an engine runs, as the user names it -- "cpu", "vulkan" (the first Vulkan
 * device) or "vulkan:N" -- mapped to a backend constructor (kernels/backend.h) and its device
 * index, described in words (name, driver, memory), and checked before anything runs: a
 * device that is absent, or a model and config that do not fit its memory, are refused with
 * a message that names them.
 *
 *     struct qb_device d;
 *     if ((rc = qb_device_parse(spec, &d)) < 0) ...;   // syntax: QB_EINVAL
 *     if ((rc = qb_device_open(&d)) < 0) ...;          // absent: QB_EUNSUP; d.name, d.memory
 *     struct qb_engine_opts o = {0};
 *     qb_device_engine_opts(&d, &o);                   // o.backend, o.device
 *     qb_engine_new_opts(qm, &o, &e);
 *
 *     struct qb_device_need need;
 *     qb_device_estimate(&m->cfg, &spec, ctx, 256, &need); // weights + KV cache + scratch
 *     if ((rc = qb_device_check_fit(&d, "w4g128", &need)) < 0) ...;  // QB_ENOMEM
 */
#ifndef QB_DEVICE_H
#define QB_DEVICE_H

#include "collector/engine/engine.h"
#include "kernels/vulkan/backend_vulkan.h"

#include <stddef.h>
#include <stdint.h>

struct qb_config;
struct qb_qspec;

enum qb_device_kind {
    QB_DEVICE_CPU,
    QB_DEVICE_VULKAN,
};

struct qb_device {
    enum qb_device_kind kind;
    int index;        /* the N of vulkan:N; 0 on the CPU */
    char spec[32];    /* canonical: "cpu", "vulkan:0" */
    char name[256];   /* "cpu"; the device's name once opened ("llvmpipe (LLVM 15.0.6, ...)") */
    char driver[256]; /* "" on the CPU; "llvmpipe, Mesa 22.3.6 (LLVM 15.0.6)" */
    int64_t memory;   /* bytes of device memory (its largest device-local heap); 0: the host */
};

/* Parses "cpu", "vulkan" or "vulkan:N" (N a decimal index, 0 first); NULL or "" is "cpu".
 * Anything else is QB_EINVAL naming the spec and the accepted forms. Does not look for the
 * device (qb_device_open does). */
int qb_device_parse(const char *spec, struct qb_device *out);

/* Finds the device d names and fills its name, driver and memory (QB_DEVICE_MEMORY_MIB, when
 * set, lowers the memory the fit check assumes). QB_EUNSUP when it is
 * absent ("vulkan:3: there is 1 Vulkan device (vulkan:0 ...)", or no Vulkan at all, with
 * the reason). The CPU is always there. */
int qb_device_open(struct qb_device *d);

/* parse + open */
int qb_device_get(const char *spec, struct qb_device *out);

/* Sets o->backend and o->device for d (the CPU: NULL, 0); the rest of o is left alone. */
void qb_device_engine_opts(const struct qb_device *d, struct qb_engine_opts *o);

/* "cpu", or "vulkan:0 llvmpipe (LLVM 15.0.6, 256 bits), llvmpipe Mesa 22.3.6, 2048 MiB" */
void qb_device_describe(const struct qb_device *d, char *buf, size_t cap);

/* A JSON object {"spec","kind","index","name","driver","memory_bytes"} (malloc'ed). */
int qb_device_json(const struct qb_device *d, char **json);

/* Lists the Vulkan devices (qb_vulkan_devices): *n = 0 and QB_EUNSUP with the reason
 * where there is no Vulkan loader or driver. */
int qb_device_list(struct qb_vk_device_info *out, int max, int *n);

/* What an engine on a device holds, estimated before it is made, in bytes. */
struct qb_device_need {
    int64_t weights;  /* every matrix in the config's formats, the norms, the embedding */
    int64_t kv_cache; /* n_layers * ctx * kv_dim * 2 floats */
    int64_t scratch;  /* activations of max_batch tokens, attention scores, logits */
    int64_t total;
};

/* Estimates what an engine of ctx positions and max_batch tokens per pass holds for the
 * model's config in spec's formats (the layouts of kernels/qtensor.h). */
void qb_device_estimate(const struct qb_config *cfg, const struct qb_qspec *spec, int64_t ctx,
                        int64_t max_batch, struct qb_device_need *out);

/* 0 when need fits d's memory (always on the CPU); else QB_ENOMEM naming the config, the
 * need (weights, KV cache, scratch) and the capacity. */
int qb_device_check_fit(const struct qb_device *d, const char *config,
                        const struct qb_device_need *need);

#endif
