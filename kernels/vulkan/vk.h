/* vk: the Vulkan infrastructure under the Vulkan backend (backend_vulkan.c) and the quantized
 * matmuls (matmul_q.c): instance and device, buffers bound in ranges, pipelines from the
 * SPIR-V embedded at build time, and one command buffer that records every op of a forward
 * and is submitted (and waited for) only when the host needs a result.
 *
 * Instance. QB_VK_VALIDATION=1 enables VK_LAYER_KHRONOS_validation (when installed) with a
 * debug messenger that prints each error to stderr and counts it: qb_vk_validation_errors()
 * is the count for the process, which the tests require to stay 0.
 *
 * Device. qb_vk_new opens device N with one compute queue and enables what the device has of
 * shaderInt8, shaderFloat16, storageBuffer8/16BitAccess, shaderIntegerDotProduct; vk->caps
 * says what was enabled, and vk->lim the limits the kernels size themselves from
 * (workgroup invocations, shared memory, subgroup size). Workgroup sizes reach the shaders as
 * specialization constants, never as constants compiled in.
 *
 * Buffers are bound in ranges: no binding spans more than vk->max_range bytes (the device's
 * maxStorageBufferRange, lowered by QB_VK_MAX_RANGE=<bytes> for tests). A buffer is made of
 * units (a weight's packed rows, say) and split into chunks of whole units, each chunk its
 * own VkBuffer of at most max_range bytes; a kernel over a split tensor dispatches once per
 * chunk. Memory is device-local; where that memory is also host-visible (lavapipe,
 * integrated GPUs) it is mapped and written in place, else uploads and reads go through a
 * host-visible staging buffer (QB_VK_STAGING=1 forces that path, for tests).
 *
 * Adding a shader: put NAME.comp in kernels/vulkan/shaders/ (the Makefile compiles every
 * .comp there with glslc and embeds it; nothing else to edit). Bindings are storage buffers
 * 0 .. n-1 in set 0; parameters are a push-constant block (at most 128 bytes); the workgroup
 * size is specialization constant 0 (`layout(local_size_x_id = 0) in;`), further constants
 * 1, 2, ... as the shader declares them. Then, from C:
 *
 *     struct qb_vk_pipe *p;
 *     uint32_t spec[2] = {vk->lim.wg_size, 4};     // constant_id 0 and 1
 *     if ((rc = qb_vk_pipeline(vk, "mm_q4", 3, spec, 2, &p)) < 0)  // cached by name + spec
 *         return rc;
 *     struct qb_vk_range b[3] = {qb_vk_chunk_range(y, 0), qb_vk_chunk_range(x, 0),
 *                               qb_vk_chunk_range(w, c)};     // chunk c: rows from
 *                                                             // c * w->units_per_chunk
 *     struct { uint32_t rows, cols; } pc = {rows, cols};
 *     if ((rc = qb_vk_dispatch(vk, p, b, 3, &pc, sizeof pc, groups_x, groups_y, 1)) < 0)
 *         return rc;
 *
 * Shaders are compiled for Vulkan 1.2 (SPIR-V 1.5). One that needs an optional feature
 * (8-bit storage, int8 or f16 arithmetic, integer dot products, subgroup arithmetic) is built
 * like any other but must only be used where vk->caps says the feature was enabled: keep a
 * plain variant beside it (mv_f.comp and mv_f_sg.comp are such a pair). Per-context state of
 * another file (scratch buffers, say) hangs on vk->ext, released through vk->ext_free.
 *
 * qb_vk_dispatch only records: a barrier follows every dispatch and copy, so the next
 * recorded op sees its writes; qb_vk_flush submits, waits on a fence, and starts a new
 * command buffer. qb_vk_download flushes first, so results are always complete on the host.
 *
 * Every function returns 0 or a negative QB_E* code with the message set (kernels/base/err.h);
 * every VkResult is checked. */
#ifndef QB_VK_H
#define QB_VK_H

#include <stdint.h>
#include <vulkan/vulkan.h>

/* Validation errors the debug messenger has seen in this process (QB_VK_VALIDATION=1). */
int qb_vk_validation_errors(void);

/* Creates a Vulkan instance (validation as above) and lists its physical devices into
 * *devs (malloc'd, *n of them). QB_EUNSUP where there is no loader or driver. */
int qb_vk_instance(VkInstance *inst, VkDebugUtilsMessengerEXT *msg, VkPhysicalDevice **devs,
                   uint32_t *n);
void qb_vk_instance_free(VkInstance inst, VkDebugUtilsMessengerEXT msg);
/* What a device offers, decided in one place for the backend and for the device list: the
 * bytes of its largest device-local heap (its index in *heap), and whether compute shaders
 * may use subgroup arithmetic (basic and arithmetic operations, a subgroup size). */
uint64_t qb_vk_local_heap(const VkPhysicalDeviceMemoryProperties *mp, uint32_t *heap);
int qb_vk_subgroup_usable(const VkPhysicalDeviceSubgroupProperties *sub);

struct qb_vk_caps {
    int int8, fp16, int_dot, storage8, storage16; /* features enabled on the device */
    int subgroup; /* subgroup arithmetic and shuffles usable in compute shaders */
    int uma;      /* device-local memory is mapped into the host (no staging) */
};

struct qb_vk_limits {
    uint32_t max_invocations; /* maxComputeWorkGroupInvocations */
    uint32_t max_group_x;     /* maxComputeWorkGroupCount[0] (also [1]) */
    uint32_t shared_bytes;    /* maxComputeSharedMemorySize */
    uint32_t subgroup_size;   /* 0 where subgroups are not usable */
    uint32_t wg_size;         /* the 1-D workgroup size kernels use: min(256, max_invocations),
                                 a power of two (tree reductions halve it) */
    uint64_t align;           /* minStorageBufferOffsetAlignment */
};

/* One chunk of a buffer: its own VkBuffer, at most max_range bytes. */
struct qb_vk_chunk {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;      /* host address where mapped (uma), else NULL */
    uint64_t bytes; /* bytes in use (a whole number of units; allocation rounded up to 16) */
};

struct qb_vk_buf {
    uint64_t bytes;           /* total, units * unit */
    uint64_t unit;            /* bytes per unit; chunks hold whole units */
    uint64_t units_per_chunk; /* every chunk but the last holds this many units */
    int n_chunks;
    int kind; /* QB_VK_MEM_* (what it is counted as) */
    struct qb_vk_chunk *chunk;
    struct qb_vk_buf *prev, *next; /* every live buffer of the context, for teardown */
};

/* A range of one chunk to bind: size bytes at off of buf. */
struct qb_vk_range {
    VkBuffer buf;
    uint64_t off, size;
};

enum { QB_VK_MEM_WEIGHTS, QB_VK_MEM_KV, QB_VK_MEM_SCRATCH, QB_VK_MEM_KINDS };

struct qb_vk_pipe; /* a compute pipeline with its layouts, owned (and cached) by the context */

struct qb_vk {
    VkInstance inst;
    VkDebugUtilsMessengerEXT msg;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool desc_pool;
    uint32_t desc_sets_left; /* sets the pool has left before a flush */
    int recording;           /* cmd has begun and holds ops not yet submitted */
    int64_t pending;         /* ops recorded since the last flush */

    struct qb_vk_caps caps;
    struct qb_vk_limits lim;
    uint64_t max_range; /* bytes one binding may span (device limit, or QB_VK_MAX_RANGE) */
    uint32_t mem_type;  /* the memory type buffers are allocated from */
    uint32_t host_type; /* a host-visible coherent type (staging, arena) */
    uint64_t capacity;  /* bytes of the largest device-local heap */
    char name[256], driver[256];
    char device_words[600]; /* "<name>, <driver info>, <N> MiB" */

    /* host-visible, per submission: inline data (token ids) appended by qb_vk_arena */
    struct qb_vk_buf *arena;
    uint64_t arena_used;
    struct qb_vk_buf *staging; /* NULL on uma devices (unless forced) */

    struct qb_vk_pipe *pipes; /* cache, a list */
    struct qb_vk_buf *bufs;   /* live buffers: qb_vk_free releases those still here */
    /* state another file keeps per context (matmul_q.c: its scratch), released by ext_free
     * in qb_vk_free before the device goes */
    void *ext;
    void (*ext_free)(struct qb_vk *vk, void *ext);
    int64_t mem[QB_VK_MEM_KINDS], peak;
};

/* Opens device `index` (QB_EUNSUP "no Vulkan device N (K found)" when absent). */
int qb_vk_new(int index, struct qb_vk **out);
/* Waits for pending work, then releases pipelines, every buffer not yet freed, the device and
 * the instance. */
void qb_vk_free(struct qb_vk *vk);

/* A buffer of `bytes` in chunks of whole units of `unit` bytes (unit 0: one chunk, which
 * must fit max_range). `what` names it in an out-of-memory message. kind: QB_VK_MEM_*. */
int qb_vk_buf_new(struct qb_vk *vk, uint64_t bytes, uint64_t unit, int kind, const char *what,
                  struct qb_vk_buf **out);
/* Flushes pending work first (it may still read the buffer). NULL: no-op. */
void qb_vk_buf_free(struct qb_vk *vk, struct qb_vk_buf *b);
/* Chunk c whole, and a byte range inside one chunk (off from the chunk's start). */
struct qb_vk_range qb_vk_chunk_range(const struct qb_vk_buf *b, int c);
struct qb_vk_range qb_vk_sub(const struct qb_vk_buf *b, int c, uint64_t off, uint64_t size);
/* The chunk and offset in it of byte off of the buffer. */
int qb_vk_locate(const struct qb_vk_buf *b, uint64_t off, uint64_t *chunk_off);

/* Host -> buffer and buffer -> host, n bytes at byte off (may span chunks). Both are ordered
 * after every op recorded before them (they flush). */
int qb_vk_upload(struct qb_vk *vk, struct qb_vk_buf *b, uint64_t off, const void *src, uint64_t n);
int qb_vk_download(struct qb_vk *vk, const struct qb_vk_buf *b, uint64_t off, void *dst,
                   uint64_t n);
/* Records dst[doff ..) = src[soff ..) for n bytes (the ranges may span chunks). */
int qb_vk_copy(struct qb_vk *vk, struct qb_vk_buf *dst, uint64_t doff, const struct qb_vk_buf *src,
               uint64_t soff, uint64_t n);
/* Copies n bytes of host data into the per-submission arena and returns its range (bound
 * by the next dispatches; valid until the next flush, which may happen here). */
int qb_vk_arena(struct qb_vk *vk, const void *src, uint64_t n, struct qb_vk_range *out);

/* The pipeline of shader `name` (kernels/vulkan/shaders/NAME.comp) with n_bind storage
 * buffers and n_spec specialization constants (constant_id 0 .. n_spec-1), built once. */
int qb_vk_pipeline(struct qb_vk *vk, const char *name, int n_bind, const uint32_t *spec, int n_spec,
                   struct qb_vk_pipe **out);
/* Records one dispatch of (gx, gy, gz) workgroups with the ranges bound to 0 .. n_bind-1 and
 * push bytes of push constants (at most 128), then a barrier. */
int qb_vk_dispatch(struct qb_vk *vk, struct qb_vk_pipe *p, const struct qb_vk_range *bind,
                   int n_bind, const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy,
                   uint32_t gz);
/* Submits what was recorded and waits for it (no-op when nothing is). */
int qb_vk_flush(struct qb_vk *vk);

/* The embedded shaders: words of SPIR-V by name (generated at build time). */
struct qb_vk_shader {
    const char *name;
    const uint32_t *words;
    size_t size; /* bytes */
};
extern const struct qb_vk_shader qb_vk_shaders[];
extern const int qb_vk_n_shaders;

#endif
