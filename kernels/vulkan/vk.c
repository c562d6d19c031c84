/* vk: instance, device, buffers in ranges, pipelines, one recording command buffer (vk.h). */
#include "kernels/vulkan/vk.h"

#include "kernels/base/err.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int validation_errors;

int qb_vk_validation_errors(void)
{
    return atomic_load(&validation_errors);
}

static const char *vkstr(VkResult r)
{
    switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
    case VK_ERROR_INITIALIZATION_FAILED: return "initialization failed";
    case VK_ERROR_DEVICE_LOST: return "device lost";
    case VK_ERROR_MEMORY_MAP_FAILED: return "memory map failed";
    case VK_ERROR_LAYER_NOT_PRESENT: return "layer not present";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "extension not present";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "feature not present";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "incompatible driver";
    case VK_ERROR_TOO_MANY_OBJECTS: return "too many objects";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "out of pool memory";
    case VK_TIMEOUT: return "timeout";
    default: return "error";
    }
}

/* 0, or the QB_E* code of a failed VkResult with the message naming what failed */
static int vkfail(VkResult r, const char *what)
{
    if (r == VK_SUCCESS)
        return 0;
    int code = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY) ? QB_ENOMEM
               : (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_FEATURE_NOT_PRESENT ||
                  r == VK_ERROR_EXTENSION_NOT_PRESENT)
                   ? QB_EUNSUP
                   : QB_EIO;
    return qb_err(code, "vulkan: %s: %s (VkResult %d)", what, vkstr(r), (int)r);
}

#define VKTRY(call, what)                                                                          \
    do {                                                                                           \
        int rc_ = vkfail((call), (what));                                                          \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

/* ---- instance --------------------------------------------------------------------------- */

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *d,
                                                 void *user)
{
    (void)user;
    /* the loader's own messages ("Found no drivers!" where there is no device) are general,
     * not validation: the caller reports those conditions itself */
    if (!(type & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                  VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)))
        return VK_FALSE;
    if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        atomic_fetch_add(&validation_errors, 1);
        fprintf(stderr, "vulkan validation error: %s\n", d && d->pMessage ? d->pMessage : "?");
    } else if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        fprintf(stderr, "vulkan validation warning: %s\n", d && d->pMessage ? d->pMessage : "?");
    }
    return VK_FALSE;
}

static int has_layer(const char *name)
{
    uint32_t n = 0;
    VkLayerProperties *p;
    int found = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n)
        return 0;
    if (!(p = calloc(n, sizeof *p)))
        return 0;
    if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            found |= strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

int qb_vk_instance(VkInstance *inst, VkDebugUtilsMessengerEXT *msg, VkPhysicalDevice **devs,
                   uint32_t *n)
{
    static const char *layer = "VK_LAYER_KHRONOS_validation";
    static const char *ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    const char *env = getenv("QB_VK_VALIDATION");
    int validate = env && strcmp(env, "1") == 0;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "qbrief",
                             .apiVersion = VK_API_VERSION_1_3};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message};
    VkResult r;

    *inst = VK_NULL_HANDLE;
    *msg = VK_NULL_HANDLE;
    *devs = NULL;
    *n = 0;
    if (validate && !has_layer(layer)) {
        fprintf(stderr, "vulkan: QB_VK_VALIDATION=1 but %s is not installed; running without\n",
                layer);
        validate = 0;
    }
    if (validate) {
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = &layer;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = &ext;
        ci.pNext = &mi; /* also reports on vkCreateInstance and vkDestroyInstance */
    }
    r = vkCreateInstance(&ci, NULL, inst);
    if (r != VK_SUCCESS) {
        *inst = VK_NULL_HANDLE;
        return qb_err(QB_EUNSUP, "no Vulkan driver: vkCreateInstance: %s (VkResult %d)", vkstr(r),
                      (int)r);
    }
    if (validate) {
        PFN_vkCreateDebugUtilsMessengerEXT f = (PFN_vkCreateDebugUtilsMessengerEXT)(void (*)(
            void))vkGetInstanceProcAddr(*inst, "vkCreateDebugUtilsMessengerEXT");
        if (f && f(*inst, &mi, NULL, msg) != VK_SUCCESS)
            *msg = VK_NULL_HANDLE;
    }
    r = vkEnumeratePhysicalDevices(*inst, n, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        *n = 0;
    if (*n) {
        if (!(*devs = calloc(*n, sizeof **devs)))
            return qb_err(QB_ENOMEM, "out of memory listing Vulkan devices");
        r = vkEnumeratePhysicalDevices(*inst, n, *devs);
        if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
            free(*devs);
            *devs = NULL;
            *n = 0;
        }
    }
    return 0;
}

void qb_vk_instance_free(VkInstance inst, VkDebugUtilsMessengerEXT msg)
{
    if (!inst)
        return;
    if (msg) {
        PFN_vkDestroyDebugUtilsMessengerEXT f = (PFN_vkDestroyDebugUtilsMessengerEXT)(void (*)(
            void))vkGetInstanceProcAddr(inst, "vkDestroyDebugUtilsMessengerEXT");
        if (f)
            f(inst, msg, NULL);
    }
    vkDestroyInstance(inst, NULL);
}

/* ---- device ------------------------------------------------------------------------------ */

uint64_t qb_vk_local_heap(const VkPhysicalDeviceMemoryProperties *mp, uint32_t *heap)
{
    uint64_t bytes = 0;

    *heap = 0;
    for (uint32_t h = 0; h < mp->memoryHeapCount; h++)
        if ((mp->memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp->memoryHeaps[h].size > bytes) {
            bytes = mp->memoryHeaps[h].size;
            *heap = h;
        }
    return bytes;
}

int qb_vk_subgroup_usable(const VkPhysicalDeviceSubgroupProperties *sub)
{
    const VkSubgroupFeatureFlags need =
        VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    return (sub->supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
           (sub->supportedOperations & need) == need && sub->subgroupSize >= 1;
}

static void pick_memory(struct qb_vk *vk)
{
    VkPhysicalDeviceMemoryProperties mp;
    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t big_heap = 0;
    const char *force = getenv("QB_VK_STAGING");

    vkGetPhysicalDeviceMemoryProperties(vk->phys, &mp);
    vk->capacity = qb_vk_local_heap(&mp, &big_heap);
    vk->mem_type = vk->host_type = UINT32_MAX;
    vk->caps.uma = 0;
    for (uint32_t t = 0; t < mp.memoryTypeCount; t++) {
        VkMemoryPropertyFlags f = mp.memoryTypes[t].propertyFlags;
        if ((f & hv) == hv && vk->host_type == UINT32_MAX)
            vk->host_type = t;
        if ((f & (dl | hv)) == (dl | hv) && mp.memoryTypes[t].heapIndex == big_heap &&
            !vk->caps.uma && !(force && strcmp(force, "1") == 0)) {
            vk->caps.uma = 1;
            vk->mem_type = t;
        }
    }
    if (!vk->caps.uma)
        for (uint32_t t = 0; t < mp.memoryTypeCount; t++)
            if ((mp.memoryTypes[t].propertyFlags & dl) && mp.memoryTypes[t].heapIndex == big_heap) {
                vk->mem_type = t;
                break;
            }
    if (vk->mem_type == UINT32_MAX) /* no device-local type at all: any will do */
        vk->mem_type = vk->host_type;
}

static int open_device(struct qb_vk *vk)
{
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    VkPhysicalDeviceSubgroupProperties sub = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan13Features f13 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    VkPhysicalDeviceFeatures2 feat = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    VkPhysicalDeviceVulkan11Features e11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceVulkan12Features e12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan13Features e13 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    VkPhysicalDeviceFeatures2 en = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    uint32_t nq = 0, api;
    VkQueueFamilyProperties *qf;
    const VkPhysicalDeviceLimits *L = &props.properties.limits;

    props.pNext = &sub;
    sub.pNext = &drv;
    drv.pNext = &m3;
    vkGetPhysicalDeviceProperties2(vk->phys, &props);
    api = props.properties.apiVersion;
    snprintf(vk->name, sizeof vk->name, "%s", props.properties.deviceName);
    snprintf(vk->driver, sizeof vk->driver, "%s", drv.driverInfo[0] ? drv.driverInfo : "?");
    if (VK_API_VERSION_MAJOR(api) == 1 && VK_API_VERSION_MINOR(api) < 2)
        return qb_err(QB_EUNSUP, "vulkan: %s supports Vulkan %u.%u; qbrief needs 1.2", vk->name,
                      VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));

    feat.pNext = &f11;
    f11.pNext = &f12;
    if (VK_API_VERSION_MINOR(api) >= 3)
        f12.pNext = &f13;
    vkGetPhysicalDeviceFeatures2(vk->phys, &feat);
    e11.storageBuffer16BitAccess = f11.storageBuffer16BitAccess;
    e12.shaderInt8 = f12.shaderInt8;
    e12.shaderFloat16 = f12.shaderFloat16;
    e12.storageBuffer8BitAccess = f12.storageBuffer8BitAccess;
    e13.shaderIntegerDotProduct = f13.shaderIntegerDotProduct;
    en.features.shaderInt16 = feat.features.shaderInt16;
    en.pNext = &e11;
    e11.pNext = &e12;
    if (VK_API_VERSION_MINOR(api) >= 3)
        e12.pNext = &e13;
    vk->caps.int8 = e12.shaderInt8;
    vk->caps.fp16 = e12.shaderFloat16;
    vk->caps.storage8 = e12.storageBuffer8BitAccess;
    vk->caps.storage16 = e11.storageBuffer16BitAccess;
    vk->caps.int_dot = e13.shaderIntegerDotProduct;

    vk->lim.max_invocations = L->maxComputeWorkGroupInvocations;
    vk->lim.max_group_x = L->maxComputeWorkGroupCount[0] < L->maxComputeWorkGroupCount[1]
                              ? L->maxComputeWorkGroupCount[0]
                              : L->maxComputeWorkGroupCount[1];
    vk->lim.shared_bytes = L->maxComputeSharedMemorySize;
    vk->lim.align =
        L->minStorageBufferOffsetAlignment < 16 ? 16 : L->minStorageBufferOffsetAlignment;
    vk->caps.subgroup = qb_vk_subgroup_usable(&sub);
    vk->lim.subgroup_size = vk->caps.subgroup ? sub.subgroupSize : 0;
    {
        uint32_t wg = vk->lim.max_invocations < 256 ? vk->lim.max_invocations : 256;
        if (L->maxComputeWorkGroupSize[0] < wg)
            wg = L->maxComputeWorkGroupSize[0];
        while (wg & (wg - 1)) /* a power of two (so a multiple of any subgroup size below it) */
            wg &= wg - 1;
        vk->lim.wg_size = wg;
    }
    /* one chunk is one allocation: no larger than the device allocates at once either */
    vk->max_range = L->maxStorageBufferRange;
    if (m3.maxMemoryAllocationSize && m3.maxMemoryAllocationSize < vk->max_range)
        vk->max_range = m3.maxMemoryAllocationSize;
    {
        const char *e = getenv("QB_VK_MAX_RANGE");
        if (e && *e) {
            unsigned long long v = strtoull(e, NULL, 10);
            if (v >= 256 && v < vk->max_range)
                vk->max_range = v;
        }
    }
    pick_memory(vk);
    if (vk->host_type == UINT32_MAX)
        return qb_err(QB_EUNSUP, "vulkan: %s has no host-visible memory", vk->name);
    snprintf(vk->device_words, sizeof vk->device_words, "%.250s, %.100s %.200s, %llu MiB", vk->name,
             drv.driverName[0] ? drv.driverName : "?", vk->driver,
             (unsigned long long)(vk->capacity >> 20));

    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, NULL);
    if (!nq || !(qf = calloc(nq, sizeof *qf)))
        return qb_err(QB_EUNSUP, "vulkan: %s has no queue families", vk->name);
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qf);
    vk->queue_family = UINT32_MAX;
    for (uint32_t i = 0; i < nq && vk->queue_family == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            vk->queue_family = i;
    free(qf);
    if (vk->queue_family == UINT32_MAX)
        return qb_err(QB_EUNSUP, "vulkan: %s has no compute queue", vk->name);

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = vk->queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &en,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi};
    VKTRY(vkCreateDevice(vk->phys, &di, NULL, &vk->dev), "vkCreateDevice");
    vkGetDeviceQueue(vk->dev, vk->queue_family, 0, &vk->queue);

    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .queueFamilyIndex = vk->queue_family};
    VKTRY(vkCreateCommandPool(vk->dev, &pi, NULL, &vk->cmd_pool), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vk->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VKTRY(vkAllocateCommandBuffers(vk->dev, &ai, &vk->cmd), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VKTRY(vkCreateFence(vk->dev, &fi, NULL, &vk->fence), "vkCreateFence");

    enum { SETS = 512, PER_SET = 8 };
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = SETS * PER_SET};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = SETS,
                                      .poolSizeCount = 1,
                                      .pPoolSizes = &ps};
    VKTRY(vkCreateDescriptorPool(vk->dev, &dpi, NULL, &vk->desc_pool), "vkCreateDescriptorPool");
    vk->desc_sets_left = SETS;
    return 0;
}

static int buf_alloc(struct qb_vk *vk, uint64_t bytes, uint64_t unit, int kind, int host,
                     const char *what, struct qb_vk_buf **out);

int qb_vk_new(int index, struct qb_vk **out)
{
    struct qb_vk *vk;
    VkPhysicalDevice *devs = NULL;
    uint32_t n = 0;
    int rc;

    *out = NULL;
    if (!(vk = calloc(1, sizeof *vk)))
        return qb_err(QB_ENOMEM, "out of memory for a Vulkan context");
    if ((rc = qb_vk_instance(&vk->inst, &vk->msg, &devs, &n)) < 0) {
        qb_vk_free(vk);
        free(devs);
        return rc;
    }
    if (index < 0 || (uint32_t)index >= n) {
        free(devs);
        qb_vk_free(vk);
        return qb_err(QB_EUNSUP, "no Vulkan device %d (%u found)", index, n);
    }
    vk->phys = devs[index];
    free(devs);
    if ((rc = open_device(vk)) < 0 ||
        (rc = buf_alloc(vk,
                        vk->max_range < (256u << 10) ? vk->max_range & ~(uint64_t)15 : (256u << 10),
                        0, QB_VK_MEM_SCRATCH, 1, "the upload arena", &vk->arena)) < 0 ||
        (!vk->caps.uma &&
         (rc =
              buf_alloc(vk, vk->max_range < (4u << 20) ? vk->max_range & ~(uint64_t)15 : (4u << 20),
                        0, QB_VK_MEM_SCRATCH, 1, "the staging buffer", &vk->staging)) < 0)) {
        qb_vk_free(vk);
        return rc;
    }
    *out = vk;
    return 0;
}

/* ---- pipelines ----------------------------------------------------------------------------- */

struct qb_vk_pipe {
    struct qb_vk_pipe *next;
    char name[64];
    int n_bind, n_spec;
    uint32_t spec[16];
    VkShaderModule mod;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
};

static void pipe_free(struct qb_vk *vk, struct qb_vk_pipe *p)
{
    if (p->pipe)
        vkDestroyPipeline(vk->dev, p->pipe, NULL);
    if (p->layout)
        vkDestroyPipelineLayout(vk->dev, p->layout, NULL);
    if (p->dsl)
        vkDestroyDescriptorSetLayout(vk->dev, p->dsl, NULL);
    if (p->mod)
        vkDestroyShaderModule(vk->dev, p->mod, NULL);
    free(p);
}

static int pipe_build(struct qb_vk *vk, const struct qb_vk_shader *sh, struct qb_vk_pipe *p)
{
    VkDescriptorSetLayoutBinding b[16];
    VkSpecializationMapEntry me[16];

    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = sh->size,
                                   .pCode = sh->words};
    VKTRY(vkCreateShaderModule(vk->dev, &mi, NULL, &p->mod), "vkCreateShaderModule");
    for (int i = 0; i < p->n_bind; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo li = {.sType =
                                              VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = (uint32_t)p->n_bind,
                                          .pBindings = b};
    VKTRY(vkCreateDescriptorSetLayout(vk->dev, &li, NULL, &p->dsl), "vkCreateDescriptorSetLayout");
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 128};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &p->dsl,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pr};
    VKTRY(vkCreatePipelineLayout(vk->dev, &pli, NULL, &p->layout), "vkCreatePipelineLayout");
    for (int i = 0; i < p->n_spec; i++)
        me[i] = (VkSpecializationMapEntry){
            .constantID = (uint32_t)i, .offset = (uint32_t)(i * 4), .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = (uint32_t)p->n_spec,
                               .pMapEntries = me,
                               .dataSize = (size_t)p->n_spec * 4,
                               .pData = p->spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = p->mod,
                  .pName = "main",
                  .pSpecializationInfo = p->n_spec ? &si : NULL},
        .layout = p->layout};
    VKTRY(vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &ci, NULL, &p->pipe),
          "vkCreateComputePipelines");
    return 0;
}

int qb_vk_pipeline(struct qb_vk *vk, const char *name, int n_bind, const uint32_t *spec, int n_spec,
                   struct qb_vk_pipe **out)
{
    const struct qb_vk_shader *sh = NULL;
    struct qb_vk_pipe *p;
    int rc;

    *out = NULL;
    if (n_bind < 1 || n_bind > 8 || n_spec < 0 || n_spec > 16 || strlen(name) >= 64)
        return qb_err(QB_EINVAL, "vulkan: pipeline %s: %d bindings, %d constants", name, n_bind,
                      n_spec);
    for (p = vk->pipes; p; p = p->next)
        if (strcmp(p->name, name) == 0 && p->n_bind == n_bind && p->n_spec == n_spec &&
            (!n_spec || memcmp(p->spec, spec, (size_t)n_spec * 4) == 0)) {
            *out = p;
            return 0;
        }
    for (int i = 0; i < qb_vk_n_shaders; i++)
        if (strcmp(qb_vk_shaders[i].name, name) == 0)
            sh = &qb_vk_shaders[i];
    if (!sh)
        return qb_err(QB_EINVAL, "vulkan: no shader named %s is built in", name);
    if (!(p = calloc(1, sizeof *p)))
        return qb_err(QB_ENOMEM, "out of memory for a pipeline");
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_bind = n_bind;
    p->n_spec = n_spec;
    if (n_spec)
        memcpy(p->spec, spec, (size_t)n_spec * 4);
    if ((rc = pipe_build(vk, sh, p)) < 0) {
        pipe_free(vk, p);
        return qb_err_prefix(rc, "shader %s: ", name);
    }
    p->next = vk->pipes;
    vk->pipes = p;
    *out = p;
    return 0;
}

/* ---- recording ------------------------------------------------------------------------------ */

static int begin(struct qb_vk *vk)
{
    if (vk->recording)
        return 0;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VKTRY(vkBeginCommandBuffer(vk->cmd, &bi), "vkBeginCommandBuffer");
    vk->recording = 1;
    vk->pending = 0;
    return 0;
}

/* every write so far (shader or transfer) is seen by every later read or write */
static void barrier(struct qb_vk *vk)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    const VkPipelineStageFlags st =
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(vk->cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
}

int qb_vk_flush(struct qb_vk *vk)
{
    if (!vk->recording)
        return 0;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask =
                              VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(vk->cmd,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    vk->recording = 0;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &vk->cmd};
    int rc = vkfail(vkEndCommandBuffer(vk->cmd), "vkEndCommandBuffer");
    if (rc == 0 && (rc = vkfail(vkQueueSubmit(vk->queue, 1, &si, vk->fence), "vkQueueSubmit")) == 0)
        rc =
            vkfail(vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX), "vkWaitForFences");
    if (rc < 0) { /* the work is lost; the context stays usable for the next */
        (void)vkDeviceWaitIdle(vk->dev);
        (void)vkResetFences(vk->dev, 1, &vk->fence);
        (void)vkResetCommandPool(vk->dev, vk->cmd_pool, 0);
        (void)vkResetDescriptorPool(vk->dev, vk->desc_pool, 0);
        vk->desc_sets_left = 512;
        vk->arena_used = 0;
        vk->pending = 0;
        return rc;
    }
    VKTRY(vkResetFences(vk->dev, 1, &vk->fence), "vkResetFences");
    VKTRY(vkResetCommandPool(vk->dev, vk->cmd_pool, 0), "vkResetCommandPool");
    VKTRY(vkResetDescriptorPool(vk->dev, vk->desc_pool, 0), "vkResetDescriptorPool");
    vk->desc_sets_left = 512;
    vk->arena_used = 0;
    vk->pending = 0;
    return 0;
}

int qb_vk_dispatch(struct qb_vk *vk, struct qb_vk_pipe *p, const struct qb_vk_range *bind,
                   int n_bind, const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy,
                   uint32_t gz)
{
    VkDescriptorBufferInfo bi[8];
    VkWriteDescriptorSet w[8];
    VkDescriptorSet set;
    int rc;

    if (n_bind != p->n_bind || push_bytes > 128 || push_bytes % 4)
        return qb_err(QB_EINVAL, "vulkan: dispatch of %s: %d bindings of %d, %u push bytes",
                      p->name, n_bind, p->n_bind, push_bytes);
    if (!gx || !gy || !gz)
        return 0;
    if (gx > vk->lim.max_group_x || gy > vk->lim.max_group_x || gz > 65535)
        return qb_err(QB_EINVAL,
                      "vulkan: dispatch of %s: %u x %u x %u workgroups is past the "
                      "device's limit of %u",
                      p->name, gx, gy, gz, vk->lim.max_group_x);
    if (!vk->desc_sets_left && (rc = qb_vk_flush(vk)) < 0)
        return rc;
    if ((rc = begin(vk)) < 0)
        return rc;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = vk->desc_pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &p->dsl};
    VKTRY(vkAllocateDescriptorSets(vk->dev, &ai, &set), "vkAllocateDescriptorSets");
    vk->desc_sets_left--;
    for (int i = 0; i < n_bind; i++) {
        if (!bind[i].buf || !bind[i].size || bind[i].size > vk->max_range ||
            bind[i].off % vk->lim.align)
            return qb_err(QB_EINVAL,
                          "vulkan: dispatch of %s: binding %d (%llu bytes at %llu) is empty, "
                          "past the %llu-byte range or misaligned",
                          p->name, i, (unsigned long long)bind[i].size,
                          (unsigned long long)bind[i].off, (unsigned long long)vk->max_range);
        bi[i] = (VkDescriptorBufferInfo){
            .buffer = bind[i].buf, .offset = bind[i].off, .range = bind[i].size};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    vkUpdateDescriptorSets(vk->dev, (uint32_t)n_bind, w, 0, NULL);
    vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0,
                            NULL);
    if (push_bytes)
        vkCmdPushConstants(vk->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    vkCmdDispatch(vk->cmd, gx, gy, gz);
    barrier(vk);
    vk->pending++;
    return 0;
}

/* ---- buffers --------------------------------------------------------------------------------- */

static void count(struct qb_vk *vk, int kind, int64_t bytes)
{
    vk->mem[kind] += bytes;
    int64_t total = vk->mem[0] + vk->mem[1] + vk->mem[2];
    if (total > vk->peak)
        vk->peak = total;
}

static void buf_release(struct qb_vk *vk, struct qb_vk_buf *b)
{
    for (int c = 0; c < b->n_chunks; c++) {
        struct qb_vk_chunk *ch = &b->chunk[c];
        if (ch->map)
            vkUnmapMemory(vk->dev, ch->mem);
        if (ch->buf)
            vkDestroyBuffer(vk->dev, ch->buf, NULL);
        if (ch->mem)
            vkFreeMemory(vk->dev, ch->mem, NULL);
    }
    free(b->chunk);
    free(b);
}

static int chunk_alloc(struct qb_vk *vk, struct qb_vk_chunk *ch, uint64_t bytes, int host,
                       const char *what)
{
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = (bytes + 15) & ~(uint64_t)15,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkMemoryRequirements req;
    uint32_t type = host ? vk->host_type : vk->mem_type;
    VkResult r;

    ch->bytes = bytes;
    VKTRY(vkCreateBuffer(vk->dev, &bi, NULL, &ch->buf), "vkCreateBuffer");
    vkGetBufferMemoryRequirements(vk->dev, ch->buf, &req);
    if (!(req.memoryTypeBits & (1u << type)))
        return qb_err(QB_EUNSUP, "vulkan: %s cannot live in memory type %u", what, type);
    VkMemoryAllocateInfo mi = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = type};
    r = vkAllocateMemory(vk->dev, &mi, NULL, &ch->mem);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
        ch->mem = VK_NULL_HANDLE;
        return qb_err(QB_ENOMEM, "vulkan: %s (%llu MiB) does not fit the memory of %s", what,
                      (unsigned long long)(bytes >> 20), vk->name);
    }
    VKTRY(r, "vkAllocateMemory");
    VKTRY(vkBindBufferMemory(vk->dev, ch->buf, ch->mem, 0), "vkBindBufferMemory");
    if (host || vk->caps.uma)
        VKTRY(vkMapMemory(vk->dev, ch->mem, 0, VK_WHOLE_SIZE, 0, &ch->map), "vkMapMemory");
    return 0;
}

static int buf_alloc(struct qb_vk *vk, uint64_t bytes, uint64_t unit, int kind, int host,
                     const char *what, struct qb_vk_buf **out)
{
    struct qb_vk_buf *b;
    uint64_t limit = vk->max_range & ~(uint64_t)15; /* chunks allocate in multiples of 16 */
    int rc;

    *out = NULL;
    if (!bytes)
        bytes = 4;
    if (!unit)
        unit = bytes;
    if (unit > limit)
        return qb_err(QB_ENOMEM,
                      "vulkan: %s needs %llu bytes in one binding; %s allows %llu "
                      "(maxStorageBufferRange)",
                      what, (unsigned long long)unit, vk->name, (unsigned long long)limit);
    if (!host && vk->capacity &&
        (uint64_t)(vk->mem[0] + vk->mem[1] + vk->mem[2]) + bytes > vk->capacity)
        return qb_err(QB_ENOMEM,
                      "vulkan: %s (%llu MiB) does not fit %s: %llu MiB of its %llu MiB are "
                      "in use",
                      what, (unsigned long long)(bytes >> 20), vk->name,
                      (unsigned long long)((vk->mem[0] + vk->mem[1] + vk->mem[2]) >> 20),
                      (unsigned long long)(vk->capacity >> 20));
    if (!(b = calloc(1, sizeof *b)))
        return qb_err(QB_ENOMEM, "out of memory for %s", what);
    b->bytes = bytes;
    b->unit = unit;
    b->kind = kind;
    b->units_per_chunk = limit / unit;
    {
        uint64_t units = (bytes + unit - 1) / unit;
        b->n_chunks = (int)((units + b->units_per_chunk - 1) / b->units_per_chunk);
    }
    if (!(b->chunk = calloc((size_t)b->n_chunks, sizeof *b->chunk))) {
        free(b);
        return qb_err(QB_ENOMEM, "out of memory for %s", what);
    }
    for (int c = 0; c < b->n_chunks; c++) {
        uint64_t off = (uint64_t)c * b->units_per_chunk * unit;
        uint64_t n =
            bytes - off < b->units_per_chunk * unit ? bytes - off : b->units_per_chunk * unit;
        if ((rc = chunk_alloc(vk, &b->chunk[c], n, host, what)) < 0) {
            b->n_chunks = c + 1;
            buf_release(vk, b);
            return rc;
        }
    }
    count(vk, kind, (int64_t)bytes);
    b->next = vk->bufs;
    if (vk->bufs)
        vk->bufs->prev = b;
    vk->bufs = b;
    *out = b;
    return 0;
}

int qb_vk_buf_new(struct qb_vk *vk, uint64_t bytes, uint64_t unit, int kind, const char *what,
                  struct qb_vk_buf **out)
{
    return buf_alloc(vk, bytes, unit, kind, 0, what, out);
}

void qb_vk_buf_free(struct qb_vk *vk, struct qb_vk_buf *b)
{
    if (!b)
        return;
    (void)qb_vk_flush(vk); /* pending ops may still read it */
    count(vk, b->kind, -(int64_t)b->bytes);
    if (b->prev)
        b->prev->next = b->next;
    else
        vk->bufs = b->next;
    if (b->next)
        b->next->prev = b->prev;
    buf_release(vk, b);
}

struct qb_vk_range qb_vk_chunk_range(const struct qb_vk_buf *b, int c)
{
    struct qb_vk_range r = {b->chunk[c].buf, 0, (b->chunk[c].bytes + 15) & ~(uint64_t)15};
    return r;
}

struct qb_vk_range qb_vk_sub(const struct qb_vk_buf *b, int c, uint64_t off, uint64_t size)
{
    struct qb_vk_range r = {b->chunk[c].buf, off, size};
    return r;
}

int qb_vk_locate(const struct qb_vk_buf *b, uint64_t off, uint64_t *chunk_off)
{
    uint64_t per = b->units_per_chunk * b->unit;
    int c = (int)(off / per);
    if (c >= b->n_chunks)
        c = b->n_chunks - 1;
    *chunk_off = off - (uint64_t)c * per;
    return c;
}

int qb_vk_upload(struct qb_vk *vk, struct qb_vk_buf *b, uint64_t off, const void *src, uint64_t n)
{
    const uint8_t *s = src;
    int rc;

    if (off + n > b->bytes)
        return qb_err(QB_EINVAL, "vulkan: upload of %llu bytes at %llu past a %llu-byte buffer",
                      (unsigned long long)n, (unsigned long long)off, (unsigned long long)b->bytes);
    if ((rc = qb_vk_flush(vk)) < 0) /* ops recorded before may still read the old contents */
        return rc;
    for (uint64_t done = 0, coff, len; done < n; done += len) {
        int c = qb_vk_locate(b, off + done, &coff);
        len = b->chunk[c].bytes - coff < n - done ? b->chunk[c].bytes - coff : n - done;
        struct qb_vk_chunk *ch = &b->chunk[c];
        if (ch->map) {
            memcpy((uint8_t *)ch->map + coff, s, len);
        } else {
            for (uint64_t d = 0; d < len;) {
                uint64_t k = len - d < vk->staging->bytes ? len - d : vk->staging->bytes;
                memcpy(vk->staging->chunk[0].map, s + d, k);
                if ((rc = begin(vk)) < 0)
                    return rc;
                VkBufferCopy cp = {.srcOffset = 0, .dstOffset = coff + d, .size = k};
                vkCmdCopyBuffer(vk->cmd, vk->staging->chunk[0].buf, ch->buf, 1, &cp);
                barrier(vk);
                if ((rc = qb_vk_flush(vk)) < 0)
                    return rc;
                d += k;
            }
        }
        s += len;
    }
    return 0;
}

int qb_vk_download(struct qb_vk *vk, const struct qb_vk_buf *b, uint64_t off, void *dst, uint64_t n)
{
    uint8_t *d8 = dst;
    int rc;

    if (off + n > b->bytes)
        return qb_err(QB_EINVAL, "vulkan: read of %llu bytes at %llu past a %llu-byte buffer",
                      (unsigned long long)n, (unsigned long long)off, (unsigned long long)b->bytes);
    if ((rc = qb_vk_flush(vk)) < 0)
        return rc;
    for (uint64_t done = 0, coff, len; done < n; done += len) {
        int c = qb_vk_locate(b, off + done, &coff);
        len = b->chunk[c].bytes - coff < n - done ? b->chunk[c].bytes - coff : n - done;
        const struct qb_vk_chunk *ch = &b->chunk[c];
        if (ch->map) {
            memcpy(d8, (const uint8_t *)ch->map + coff, len);
        } else {
            for (uint64_t d = 0; d < len;) {
                uint64_t k = len - d < vk->staging->bytes ? len - d : vk->staging->bytes;
                if ((rc = begin(vk)) < 0)
                    return rc;
                VkBufferCopy cp = {.srcOffset = coff + d, .dstOffset = 0, .size = k};
                vkCmdCopyBuffer(vk->cmd, ch->buf, vk->staging->chunk[0].buf, 1, &cp);
                if ((rc = qb_vk_flush(vk)) < 0)
                    return rc;
                memcpy(d8 + d, vk->staging->chunk[0].map, k);
                d += k;
            }
        }
        d8 += len;
    }
    return 0;
}

int qb_vk_copy(struct qb_vk *vk, struct qb_vk_buf *dst, uint64_t doff, const struct qb_vk_buf *src,
               uint64_t soff, uint64_t n)
{
    int rc;
    if (doff + n > dst->bytes || soff + n > src->bytes)
        return qb_err(QB_EINVAL, "vulkan: copy of %llu bytes past a buffer's end",
                      (unsigned long long)n);
    if (!n)
        return 0;
    if ((rc = begin(vk)) < 0)
        return rc;
    for (uint64_t done = 0; done < n;) {
        uint64_t so, dof;
        int sc = qb_vk_locate(src, soff + done, &so), dc = qb_vk_locate(dst, doff + done, &dof);
        uint64_t len = n - done;
        if (src->chunk[sc].bytes - so < len)
            len = src->chunk[sc].bytes - so;
        if (dst->chunk[dc].bytes - dof < len)
            len = dst->chunk[dc].bytes - dof;
        VkBufferCopy cp = {.srcOffset = so, .dstOffset = dof, .size = len};
        vkCmdCopyBuffer(vk->cmd, src->chunk[sc].buf, dst->chunk[dc].buf, 1, &cp);
        done += len;
    }
    barrier(vk);
    vk->pending++;
    return 0;
}

int qb_vk_arena(struct qb_vk *vk, const void *src, uint64_t n, struct qb_vk_range *out)
{
    uint64_t at = (vk->arena_used + vk->lim.align - 1) / vk->lim.align * vk->lim.align;
    int rc;
    if (n > vk->arena->bytes)
        return qb_err(QB_EINVAL, "vulkan: %llu bytes of inline data exceed the %llu-byte arena",
                      (unsigned long long)n, (unsigned long long)vk->arena->bytes);
    if (at + n > vk->arena->bytes) {
        if ((rc = qb_vk_flush(vk)) < 0)
            return rc;
        at = 0;
    }
    memcpy((uint8_t *)vk->arena->chunk[0].map + at, src, n);
    vk->arena_used = at + n;
    *out = (struct qb_vk_range){vk->arena->chunk[0].buf, at, (n + 3) & ~(uint64_t)3};
    return 0;
}

void qb_vk_free(struct qb_vk *vk)
{
    if (!vk)
        return;
    if (vk->dev) {
        if (vk->recording) {
            (void)vkEndCommandBuffer(vk->cmd);
            vk->recording = 0;
        }
        (void)vkDeviceWaitIdle(vk->dev);
        if (vk->ext && vk->ext_free)
            vk->ext_free(vk, vk->ext);
        vk->ext = NULL;
        while (vk->pipes) {
            struct qb_vk_pipe *p = vk->pipes;
            vk->pipes = p->next;
            pipe_free(vk, p);
        }
        while (vk->bufs) { /* arena, staging, and whatever a caller did not free */
            struct qb_vk_buf *b = vk->bufs;
            vk->bufs = b->next;
            buf_release(vk, b);
        }
        if (vk->desc_pool)
            vkDestroyDescriptorPool(vk->dev, vk->desc_pool, NULL);
        if (vk->fence)
            vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->cmd_pool)
            vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL);
        vkDestroyDevice(vk->dev, NULL);
    }
    qb_vk_instance_free(vk->inst, vk->msg);
    free(vk);
}
