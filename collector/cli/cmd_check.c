/* cmd_check: `qbrief check` -- a gate for CI. Analyses one run and checks that a config (default:
 * the brief's recommendation) holds on every slice under the run's tolerances and flip limits,
 * or a plan's (--policy); analysis/check.h says when a slice fails. Exit 0: it holds everywhere;
 * 1: some slice fails (one line per failing slice on stdout); 2: bad input (a flag, the store,
 * the run, the config or the policy file). --json prints one JSON document instead. */
#include "analysis/analyze.h"
#include "analysis/check.h"
#include "collector/cli/cli.h"
#include "collector/model/qspec.h"
#include "collector/run/plan.h"
#include "collector/store/store.h"
#include "kernels/base/err.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* one failing slice in words: "code: w3g64 changes 30.0% of answers (limit 10%)" */
static void print_line(const struct qb_analysis *a, const struct qb_check_slice *r)
{
    const struct qb_an_slice *s = &a->slices[r->slice];
    const struct qb_an_cell *e = &s->cells[r->config];
    printf("FAIL %s: %s ", s->name, a->configs[r->config].spec);
    switch (r->reason) {
    case QB_CHECK_FEW_ITEMS: printf("has too few items to tell (n=%lld)", (long long)e->n); break;
    case QB_CHECK_LOSS:
        printf("changes accuracy by %+.1f points (%.0f%% CI %+.1f to %+.1f), not within the "
               "tolerance of %.1f",
               100 * e->delta, 100 * a->confidence, 100 * e->delta_ci.lo, 100 * e->delta_ci.hi,
               s->tolerance);
        break;
    case QB_CHECK_FLIPS:
        printf("changes %.1f%% of answers (%lld right->wrong, %lld wrong->right of %lld); limit "
               "%g%%",
               100 * e->flip_rate, (long long)e->flips_lost, (long long)e->flips_gained,
               (long long)e->n, s->max_flips);
        break;
    case QB_CHECK_GAIN:
        printf("gains %+.1f points (%.0f%% CI %+.1f to %+.1f), beyond the tolerance of %.1f",
               100 * e->delta, 100 * a->confidence, 100 * e->delta_ci.lo, 100 * e->delta_ci.hi,
               s->tolerance);
        break;
    default: printf("holds"); break;
    }
    putchar('\n');
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int print_json(const struct qb_analysis *a, const struct qb_check *k)
{
    json_t *j = json_object(), *arr = json_array();
    for (int64_t i = 0; i < k->n; i++) {
        const struct qb_check_slice *r = &k->slices[i];
        const struct qb_an_slice *s = &a->slices[r->slice];
        const struct qb_an_cell *e = &s->cells[r->config];
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:b, s:s, s:I, s:o, s:o, s:o, s:f, s:o, s:f}", "slice",
                           s->name, "config", a->configs[r->config].spec, "holds", r->holds,
                           "reason", qb_check_reason_name(r->reason), "n", (json_int_t)e->n,
                           "delta", num(e->delta), "delta_lo", num(e->delta_ci.lo), "delta_hi",
                           num(e->delta_ci.hi), "tolerance", s->tolerance, "flip_share",
                           num(e->flip_rate), "flip_limit", s->max_flips / 100.0));
    }
    json_object_set_new(j, "run", json_string(a->run_name ? a->run_name : ""));
    json_object_set_new(j, "holds", json_boolean(k->n_failing == 0));
    json_object_set_new(j, "failing", json_integer(k->n_failing));
    json_object_set_new(j, "slices", arr);
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!s)
        return qb_err(QB_ENOMEM, "out of memory");
    puts(s);
    free(s);
    return 0;
}

/* the exit status: 0 holds, 1 fails, 2 bad input (messages on stderr) */
static int check(const char *db, const char *run, const char *config, const char *policy,
                 int as_json)
{
    struct qb_store *s = NULL;
    struct qb_plan *p = NULL;
    struct qb_analysis *a = NULL;
    struct qb_check *k = NULL;
    struct qb_an_opts o = QB_AN_OPTS_INIT;
    char canon[QB_QSPEC_MAX];
    int rc, status = EXIT_USAGE;

    if (config) {
        struct qb_qspec q;
        if ((rc = qb_qspec_parse(config, &q)) < 0)
            goto out;
        qb_qspec_format(&q, canon, sizeof canon);
        config = canon;
    }
    if (policy) {
        if ((rc = qb_plan_load(policy, &p)) < 0)
            goto out;
        o.rules = &p->settings;
    }
    if ((rc = qb_store_open(db, QB_STORE_READONLY, &s)) < 0 ||
        (rc = qb_analyze(s, run, &o, &a)) < 0 || (rc = qb_check(a, config, &k)) < 0)
        goto out;
    if (as_json) {
        if ((rc = print_json(a, k)) < 0)
            goto out;
    } else {
        for (int64_t i = 0; i < k->n; i++)
            if (!k->slices[i].holds)
                print_line(a, &k->slices[i]);
        if (!k->n_failing)
            printf("ok: run '%s' holds on all %lld slices\n", a->run_name ? a->run_name : "",
                   (long long)k->n);
    }
    status = k->n_failing ? EXIT_ERR : EXIT_OK;
out:
    if (rc < 0)
        fprintf(stderr, "qbrief check: %s\n", qb_errmsg());
    qb_check_free(k);
    qb_analysis_free(a);
    qb_store_close(s);
    qb_plan_free(p);
    return status;
}

int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"run", required_argument, NULL, 'r'},
        {"config", required_argument, NULL, 'c'},
        {"policy", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("check");
    const char *db = "qbrief.db", *run = NULL, *config = NULL, *policy = NULL;
    int opt, as_json = 0;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': db = optarg; break;
        case 'r': run = optarg; break;
        case 'c': config = optarg; break;
        case 'p': policy = optarg; break;
        case 'j': as_json = 1; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind < argc)
        return qb_usage_error(self, "unexpected argument '%s'", argv[optind]);
    return check(db, run, config, policy, as_json);
}
