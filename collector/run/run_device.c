/* run_device: the device a run measures on (see run_device.h). */
#include "collector/run/run_device.h"

#include "collector/model/model.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int qb_run_device_open(struct qb_run_device *d, const char *spec)
{
    int rc;

    memset(d, 0, sizeof *d);
    if ((rc = qb_device_get(spec, &d->dev)) < 0)
        return rc;
    qb_device_engine_opts(&d->dev, &d->eo);
    d->on_device = d->dev.kind != QB_DEVICE_CPU;
    qb_device_describe(&d->dev, d->desc, sizeof d->desc);
    if (gethostname(d->host, sizeof d->host - 1) != 0)
        strcpy(d->host, "unknown");
    return qb_device_json(&d->dev, &d->json);
}

int qb_run_device_fit(const struct qb_run_device *d, const struct qb_model *m,
                      const struct qb_qspec *specs, const char (*names)[QB_QSPEC_MAX], int64_t n,
                      int64_t ctx)
{
    for (int64_t i = 0; d->on_device && i < n; i++) {
        struct qb_device_need need;
        int rc;
        qb_device_estimate(&m->cfg, &specs[i], ctx, 0, &need);
        if ((rc = qb_device_check_fit(&d->dev, names[i], &need)) < 0)
            return rc;
    }
    return 0;
}

void qb_run_device_release(struct qb_run_device *d)
{
    free(d->json);
    d->json = NULL;
}
