/* backend_vulkan: the engine's backend (kernels/backend.h) on a Vulkan compute device -- a
 * GPU from any vendor, or Mesa's lavapipe on the CPU. Shaders are GLSL compute shaders
 * (kernels/vulkan/shaders/), compiled to SPIR-V by glslc at build time and embedded in the
 * binary. Weights live on the device in the packed layouts of kernels/qtensor.h.
 *
 *     struct qb_vk_device_info dev[8];
 *     int n;
 *     qb_vulkan_devices(dev, 8, &n);             // what `qbrief inspect --devices` lists
 *     struct qb_backend_shape sh = {..., .device = 0};
 *     struct qb_backend be;
 *     if ((rc = qb_backend_vulkan_new(&sh, &be)) < 0) ...;  // no device: QB_EUNSUP, message set
 */
#ifndef QB_BACKEND_VULKAN_H
#define QB_BACKEND_VULKAN_H

#include "kernels/backend.h"

#include <stdint.h>

/* One Vulkan device as the driver reports it. */
struct qb_vk_device_info {
    int index;            /* the N of --device vulkan:N */
    char name[256];       /* "llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H100 80GB HBM3" */
    char driver[256];     /* driver name and info: "llvmpipe, Mesa 22.3.6 (LLVM 15.0.6)" */
    char type[16];        /* "discrete", "integrated", "virtual", "cpu", "other" */
    uint32_t api_version; /* VK_MAKE_API_VERSION */
    uint64_t memory;      /* bytes of its largest device-local heap */
    uint64_t max_storage_buffer_range;  /* bytes one storage-buffer binding may span */
    uint32_t max_workgroup_invocations; /* per workgroup */
    uint32_t max_shared_memory;         /* bytes of shared memory per workgroup */
    uint32_t subgroup_size;             /* 0 where subgroup operations are not usable */
    int int8, fp16, int_dot, subgroup;  /* shaderInt8, shaderFloat16, integer dot products,
                                           subgroup arithmetic in compute shaders */
};

/* Lists up to max devices into out and their count into *n (all of them, even past max).
 * Where no Vulkan loader or driver is present: *n = 0 and QB_EUNSUP with the reason. */
int qb_vulkan_devices(struct qb_vk_device_info *out, int max, int *n);

/* A backend on device shape->device. QB_EUNSUP (message naming the device count) when the
 * device is absent; QB_ENOMEM when the KV cache and scratch do not fit its memory. */
int qb_backend_vulkan_new(const struct qb_backend_shape *shape, struct qb_backend *out);

#endif
