/* compare-logits: the logits of one model in several configs on two devices, side by side --
 * the debug path behind tools/compare-devices.sh. For each config, every suite item's
 * formatted prompt (QB_TOK_DEFAULT) is run through an engine on each device, the logits of
 * every position are compared, and one line per config says how many items and positions,
 * the largest absolute logit difference, the largest relative to the item's logit range, and
 * the share of positions whose argmax agrees. A config the second device cannot run gets a
 * line saying why.
 *
 *     build/tools/compare-logits MODEL SUITE.csv [--items N] [--devices A,B] CONFIG...
 *     config      items positions  max|dlogit|  max rel  argmax agree
 *     f32            60      1234   3.1e-05     1.2e-06      100.00%
 */
#include "collector/engine/device.h"
#include "collector/engine/engine.h"
#include "collector/eval/suite.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmp {
    int64_t items, positions, agree;
    double max_abs, max_rel;
};

static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Both engines on one item's tokens; the differences go into r. */
static int compare_item(struct qb_engine *e[2], const int32_t *ids, int64_t n, int64_t vocab,
                        float *la, float *lb, struct cmp *r)
{
    int rc;
    qb_engine_reset(e[0]);
    qb_engine_reset(e[1]);
    if ((rc = qb_engine_forward(e[0], ids, n, la)) < 0 ||
        (rc = qb_engine_forward(e[1], ids, n, lb)) < 0)
        return rc;
    for (int64_t t = 0; t < n; t++) {
        const float *a = la + t * vocab, *b = lb + t * vocab;
        float lo = a[0], hi = a[0];
        double d = 0;
        for (int64_t v = 0; v < vocab; v++) {
            d = fmax(d, fabs((double)a[v] - b[v]));
            lo = fminf(lo, a[v]);
            hi = fmaxf(hi, a[v]);
        }
        r->max_abs = fmax(r->max_abs, d);
        if (hi > lo)
            r->max_rel = fmax(r->max_rel, d / (hi - lo));
        r->agree += argmax(a, vocab) == argmax(b, vocab);
    }
    r->positions += n;
    r->items++;
    return 0;
}

static int compare_config(const struct qb_model *m, const struct qb_suite *su, int64_t max_items,
                          const struct qb_device dev[2], const char *cfg, struct cmp *r)
{
    struct qb_qspec spec;
    struct qb_qmodel *qm = NULL;
    struct qb_engine *e[2] = {NULL, NULL};
    int64_t vocab = m->cfg.vocab_size, ctx = m->cfg.max_seq_len;
    float *la = NULL, *lb = NULL;
    int rc;

    memset(r, 0, sizeof *r);
    if ((rc = qb_qspec_parse(cfg, &spec)) < 0 || (rc = qb_qmodel_new(m, &spec, &qm)) < 0)
        return rc;
    for (int k = 0; k < 2; k++) {
        struct qb_engine_opts o = {.max_ctx = ctx};
        qb_device_engine_opts(&dev[k], &o);
        if ((rc = qb_engine_new_opts(qm, &o, &e[k])) < 0) {
            rc = qb_err_prefix(rc, "%s on %s", cfg, dev[k].spec);
            goto out;
        }
    }
    if (!(la = malloc((size_t)(ctx * vocab) * sizeof *la)) ||
        !(lb = malloc((size_t)(ctx * vocab) * sizeof *lb))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < su->n_items && (max_items <= 0 || r->items < max_items); i++) {
        char *p = NULL;
        int32_t *ids = NULL;
        int64_t n = 0;
        if ((rc = qb_suite_format_prompt(su, &su->items[i], &p)) < 0)
            goto out;
        rc = qb_tok_encode(m->tok, p, strlen(p), QB_TOK_DEFAULT, &ids, &n);
        free(p);
        if (rc >= 0 && n > 0 && n <= ctx)
            rc = compare_item(e, ids, n, vocab, la, lb, r);
        free(ids);
        if (rc < 0)
            goto out;
    }
out:
    free(la);
    free(lb);
    qb_engine_free(e[0]);
    qb_engine_free(e[1]);
    qb_qmodel_free(qm);
    return rc;
}

int main(int argc, char **argv)
{
    struct qb_load_opts lo = {0};
    struct qb_model *m = NULL;
    struct qb_suite *su = NULL;
    struct qb_suite_opts so = QB_SUITE_OPTS_INIT;
    struct qb_device dev[2];
    const char *devices[2] = {"cpu", "vulkan"};
    char devbuf[128] = "";
    int64_t max_items = 0;
    int a = 3, rc, failed = 0;

    for (; a < argc && !strncmp(argv[a], "--", 2); a += 2) {
        if (a + 1 >= argc)
            break;
        if (!strcmp(argv[a], "--items"))
            max_items = atoll(argv[a + 1]);
        else if (!strcmp(argv[a], "--devices")) {
            char *comma;
            snprintf(devbuf, sizeof devbuf, "%s", argv[a + 1]);
            if (!(comma = strchr(devbuf, ',')))
                break;
            *comma = 0;
            devices[0] = devbuf;
            devices[1] = comma + 1;
        } else
            break;
    }
    if (argc < 4 || a >= argc) {
        fprintf(stderr,
                "usage: compare-logits MODEL SUITE.csv [--items N] [--devices A,B] CONFIG...\n");
        return 2;
    }
    so.min_slice_items = 0;
    if ((rc = qb_device_get(devices[0], &dev[0])) < 0 ||
        (rc = qb_device_get(devices[1], &dev[1])) < 0 ||
        (rc = qb_model_load(argv[1], &lo, &m)) < 0 || (rc = qb_suite_load(argv[2], &so, &su)) < 0) {
        fprintf(stderr, "compare-logits: %s\n", qb_errmsg());
        qb_model_free(m);
        return 1;
    }
    printf("%s against %s, %s\n", dev[1].spec, dev[0].spec, dev[1].name);
    printf("%-12s %6s %9s %12s %10s %13s\n", "config", "items", "positions", "max|dlogit|",
           "max rel", "argmax agree");
    for (; a < argc; a++) {
        struct cmp r;
        if ((rc = compare_config(m, su, max_items, dev, argv[a], &r)) < 0) {
            printf("%-12s not compared: %s\n", argv[a], qb_errmsg());
            failed++;
        } else {
            printf("%-12s %6lld %9lld %12.3g %10.3g %12.2f%%\n", argv[a], (long long)r.items,
                   (long long)r.positions, r.max_abs, r.max_rel,
                   r.positions ? 100.0 * (double)r.agree / (double)r.positions : 0.0);
        }
        fflush(stdout);
    }
    qb_suite_free(su);
    qb_model_free(m);
    return failed ? 1 : 0;
}
