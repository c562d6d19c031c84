/* `qbrief sensitivity`: the per-layer sensitivity scan (collector/run/sens.h), printed as a
 * ranked table and stored. */
#include "collector/cli/cli.h"
#include "collector/run/sens.h"
#include "kernels/base/err.h"

#include <getopt.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_unit(void *ctx, int64_t i, int64_t n, const char *unit, double kl, double acc)
{
    if (*(int *)ctx)
        return;
    fprintf(stderr, "\r  %lld/%lld %-10s KL %.5f", (long long)i + 1, (long long)n, unit, kl);
    if (!isnan(acc))
        fprintf(stderr, "  acc %.1f", acc);
    fprintf(stderr, "   ");
}

static int parse_budgets(const char *s, struct qb_sens_opts *o)
{
    char **parts = g_strsplit(s, ",", -1);
    int rc = 0;
    o->n_budgets = 0;
    for (char **p = parts; *p && rc == 0; p++) {
        float x;
        if (o->n_budgets == QB_SENS_MAX_BUDGETS || qb_parse_float(*p, 0.1f, 100.0f, &x) < 0)
            rc = -1;
        else
            o->budgets[o->n_budgets++] = x;
    }
    g_strfreev(parts);
    return o->n_budgets ? rc : -1;
}

/* The ranked table, how the damages add, and the candidates. */
void qb_sens_print(FILE *f, const struct qb_sens_result *r, const char *source)
{
    double total = 0;
    int acc = !isnan(r->base_accuracy);
    for (int64_t i = 0; i < r->n_units; i++)
        total += r->units[i].kl > 0 ? r->units[i].kl : 0;
    fprintf(f, "sensitivity of %s (rest at %s) on %s: %lld sequences, %lld scored positions\n",
            r->config, r->baseline, source, (long long)r->n_sequences, (long long)r->n_positions);
    if (acc)
        fprintf(f, "accuracy: %s %.1f, %s %.1f (%lld items)\n", r->baseline, r->base_accuracy,
                r->config, r->config_accuracy, (long long)r->n_items);
    fprintf(f, "%4s  %-10s %10s %7s %s %12s\n", "rank", "unit", "mean KL", "share",
            acc ? " acc loss" : "", "keep +bytes");
    for (int64_t i = 0; i < r->n_units; i++) {
        const struct qb_sens_unit *u = &r->units[i];
        fprintf(f, "%4lld  %-10s %10.5f %6.1f%%", (long long)i + 1, u->name, u->kl,
                total > 0 ? 100.0 * (u->kl > 0 ? u->kl : 0) / total : 0.0);
        if (acc)
            fprintf(f, " %9.1f", r->base_accuracy - u->accuracy);
        fprintf(f, " %12lld\n", (long long)u->extra_bytes);
    }
    fprintf(f, "whole config: measured KL %.5f, sum of the units' %.5f\n", r->config_kl, total);
    fprintf(f, "top %d together: measured KL %.5f, sum of their single KLs %.5f (ratio %.2f)\n",
            r->topk, r->topk_measured_kl, r->topk_summed_kl,
            r->topk_summed_kl > 0 ? r->topk_measured_kl / r->topk_summed_kl : NAN);
    for (int i = 0; i < r->n_candidates; i++)
        fprintf(f, "candidate %s (+%lld bytes over %lld)\n", r->candidates[i],
                (long long)r->candidate_extra[i], (long long)r->config_bytes);
    fprintf(f, "scan took %.1f s on %d thread%s\n", r->seconds, r->threads,
            r->threads == 1 ? "" : "s");
}

int cmd_sensitivity(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"config", required_argument, NULL, 'c'},
        {"calib", required_argument, NULL, 'C'},
        {"suite", required_argument, NULL, 's'},
        {"slice", required_argument, NULL, 'S'},
        {"db", required_argument, NULL, 'd'},
        {"baseline", required_argument, NULL, 'b'},
        {"keep", required_argument, NULL, 'k'},
        {"granularity", required_argument, NULL, 'g'},
        {"budgets", required_argument, NULL, 'B'},
        {"topk", required_argument, NULL, 'K'},
        {"threads", required_argument, NULL, 't'},
        {"tokenizer", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("sensitivity");
    struct qb_sens_opts o = QB_SENS_OPTS_INIT;
    struct qb_sens_result r;
    const char *db = "qbrief.db";
    int opt, rc, quiet = 0;
    long v;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm': o.model_path = optarg; break;
        case 'c': o.config = optarg; break;
        case 'C': o.calib_path = optarg; break;
        case 's': o.suite_path = optarg; break;
        case 'S': o.slice = optarg; break;
        case 'd': db = optarg; break;
        case 'b': o.baseline = optarg; break;
        case 'k': o.keep = optarg; break;
        case 'T': o.tokenizer_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'g':
            if (strcmp(optarg, "tensor") && strcmp(optarg, "layer"))
                return qb_usage_error(self, "--granularity '%s': tensor or layer", optarg);
            o.by_layer = !strcmp(optarg, "layer");
            break;
        case 'B':
            if (parse_budgets(optarg, &o) < 0)
                return qb_usage_error(
                    self, "--budgets '%s': up to %d percents in (0, 100], comma-separated", optarg,
                    QB_SENS_MAX_BUDGETS);
            break;
        case 'K':
            if (qb_parse_long(optarg, 1, 16, &v) < 0)
                return qb_usage_error(self, "--topk '%s': a whole number from 1 to 16", optarg);
            o.topk = (int)v;
            break;
        case 't':
            if (qb_parse_long(optarg, 1, 4096, &v) < 0)
                return qb_usage_error(self, "--threads '%s': a whole number from 1", optarg);
            o.threads = (int)v;
            break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc)
        return qb_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (!o.model_path || !o.config)
        return qb_usage_error(self, "%s", "needs --model and --config");
    if (!!o.calib_path == !!o.suite_path)
        return qb_usage_error(self, "%s", "needs --calib TEXT or --suite S.csv (one of them)");
    if (o.slice && !o.suite_path)
        return qb_usage_error(self, "%s", "--slice needs --suite");
    o.on_unit = on_unit;
    o.ctx = &quiet;
    if ((rc = qb_sens_scan(&o, &r)) < 0) {
        if (!quiet)
            fprintf(stderr, "\n");
        return qb_report(rc);
    }
    if (!quiet)
        fprintf(stderr, "\n");
    char *source = o.calib_path ? g_strdup_printf("calibration text '%s'", o.calib_path)
                   : o.slice    ? g_strdup_printf("slice '%s' of '%s'", o.slice, o.suite_path)
                                : g_strdup_printf("suite '%s'", o.suite_path);
    qb_sens_print(stdout, &r, source);
    g_free(source);
    int64_t id = 0;
    rc = qb_sens_store(&o, &r, db, &id);
    if (rc == 0)
        printf("stored as scan %lld in %s\n", (long long)id, db);
    qb_sens_result_release(&r);
    return qb_report(rc);
}
