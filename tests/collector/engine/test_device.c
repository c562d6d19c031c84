/* test_device: device specs (collector/engine/device.h) -- "cpu", "vulkan", "vulkan:N"
 * accepted, anything else refused naming the spec and the accepted forms; the CPU always
 * opens; an absent Vulkan device is refused naming the count; the estimate of an engine's
 * weights matches the bytes the config's qmodel holds (stories260K, several formats), and a
 * device too small is refused naming the config, the need and the capacity. */
#include "collector/engine/device.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <stdlib.h>
#include <string.h>

#define BIN "models/stories260K/stories260K.bin"

static void test_parse(void)
{
    static const char *const bad[] = {"gpu",       "vulkan:",   "vulkan:x",    "vulkan:-1",
                                      "vulkan0",   "vulkan:1x", "cuda",        "CPU",
                                      "vulkan: 1", "cpu:0",     "vulkan:99999"};
    struct qb_device d;

    CHECK(qb_device_parse("cpu", &d) == 0 && d.kind == QB_DEVICE_CPU && !strcmp(d.spec, "cpu"));
    CHECK(qb_device_parse(NULL, &d) == 0 && d.kind == QB_DEVICE_CPU);
    CHECK(qb_device_parse("", &d) == 0 && d.kind == QB_DEVICE_CPU);
    CHECK(qb_device_parse("vulkan", &d) == 0 && d.kind == QB_DEVICE_VULKAN && d.index == 0 &&
          !strcmp(d.spec, "vulkan:0"));
    CHECK(qb_device_parse("vulkan:2", &d) == 0 && d.kind == QB_DEVICE_VULKAN && d.index == 2 &&
          !strcmp(d.spec, "vulkan:2"));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(qb_device_parse(bad[i], &d) == QB_EINVAL);
        CHECK(strstr(qb_errmsg(), bad[i]) && strstr(qb_errmsg(), "vulkan:N"));
    }
}

static void test_open(void)
{
    struct qb_vk_device_info info[4];
    struct qb_device d;
    struct qb_engine_opts o = {.max_ctx = 7};
    char buf[1024], *json = NULL;
    int n = 0;

    CHECK(qb_device_get("cpu", &d) == 0 && d.memory == 0);
    qb_device_engine_opts(&d, &o);
    CHECK(o.backend == NULL && o.device == 0 && o.max_ctx == 7);
    qb_device_describe(&d, buf, sizeof buf);
    CHECK(!strcmp(buf, "cpu"));
    CHECK(qb_device_json(&d, &json) == 0 && strstr(json, "\"kind\":\"cpu\""));
    free(json);

    /* one past the last device (none at all without a Vulkan driver) is absent */
    qb_device_list(info, 4, &n);
    snprintf(buf, sizeof buf, "vulkan:%d", n);
    CHECK(qb_device_get(buf, &d) == QB_EUNSUP);
    CHECK(strstr(qb_errmsg(), buf) != NULL);
    if (n > 0) {
        CHECK(strstr(qb_errmsg(), "is absent") != NULL);
        CHECK(qb_device_get("vulkan", &d) == 0 && d.memory > 0 && d.name[0] && d.driver[0]);
        qb_device_engine_opts(&d, &o);
        CHECK(o.backend != NULL && o.device == 0);
        qb_device_describe(&d, buf, sizeof buf);
        CHECK(!strncmp(buf, "vulkan:0 ", 9) && strstr(buf, d.name) && strstr(buf, " MiB"));
    }
}

static void test_estimate(void)
{
    static const char *const specs[] = {"f32",    "bf16",     "fp8",   "w8a8",
                                        "w4g128", "w4g32-a8", "w3g64", "w2g32"};
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    struct qb_device d;

    CHECK(qb_model_load(qb_shared_path(BIN), &lo, &m) == 0);
    if (!m)
        return;
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        struct qb_qspec spec;
        struct qb_qmodel *qm = NULL;
        struct qb_device_need need;
        CHECK(qb_qspec_parse(specs[i], &spec) == 0);
        CHECK(qb_qmodel_new(m, &spec, &qm) == 0);
        if (!qm)
            continue;
        qb_device_estimate(&m->cfg, &spec, 0, 0, &need);
        /* the same layouts: within 2% of what the qmodel holds */
        if (!(need.weights > 0.98 * (double)qb_qmodel_bytes(qm) &&
              need.weights < 1.02 * (double)qb_qmodel_bytes(qm)))
            fprintf(stderr, "  %s: estimated %lld, qmodel %zu\n", specs[i], (long long)need.weights,
                    qb_qmodel_bytes(qm));
        CHECK(need.weights > 0.98 * (double)qb_qmodel_bytes(qm) &&
              need.weights < 1.02 * (double)qb_qmodel_bytes(qm));
        CHECK(need.kv_cache ==
              m->cfg.n_layers * m->cfg.max_seq_len * m->cfg.n_kv_heads * m->cfg.head_dim * 2 * 4);
        CHECK(need.total == need.weights + need.kv_cache + need.scratch && need.scratch > 0);
        qb_qmodel_free(qm);
    }

    /* a device of 1 MiB holds none of them; the CPU always does */
    struct qb_qspec f32;
    struct qb_device_need need;
    CHECK(qb_qspec_parse("f32", &f32) == 0);
    qb_device_estimate(&m->cfg, &f32, 64, 4, &need);
    CHECK(qb_device_parse("vulkan:1", &d) == 0);
    snprintf(d.name, sizeof d.name, "tiny");
    d.memory = 1 << 20;
    CHECK(qb_device_check_fit(&d, "f32", &need) == QB_ENOMEM);
    CHECK(strstr(qb_errmsg(), "config f32") && strstr(qb_errmsg(), "vulkan:1") &&
          strstr(qb_errmsg(), "1.0 MiB"));
    d.memory = (int64_t)1 << 30;
    CHECK(qb_device_check_fit(&d, "f32", &need) == 0);
    CHECK(qb_device_parse("cpu", &d) == 0 && qb_device_check_fit(&d, "f32", &need) == 0);
    qb_model_free(m);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_open);
    if (qb_shared_path(BIN))
        RUN(test_estimate);
    else
        SKIP(test_estimate, "needs ../shared/models/stories260K");
    return check_summary();
}
