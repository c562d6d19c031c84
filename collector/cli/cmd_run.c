/* cmd_run: `qbrief run` -- flags or a plan file into struct qb_run_opts, then qb_run
 * (collector/run/run.h). Flags given with a plan override the plan's values. */
#include "collector/cli/cli.h"
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/run/plan.h"
#include "collector/engine/device.h"
#include "collector/run/run.h"
#include "collector/run/shard.h"
#include "collector/model/qspec.h"

#include <getopt.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int run_one(const struct qb_run_opts *op, int quiet);

/* --shard and --probe into o (docs/distributed.md): which share of the work, whether this
 * shard measures latency and memory (the plan's shards.probe; shard 0 for a run from
 * flags), the plan's hash, and a database of its own (DB less .db, plus .shard-I-of-N.db, or
 * .probe.db) unless --db names one. 0, a negative QB_E* code, or 1 for a usage error (the
 * message set). */
static int shard_opts(const char *text, int probe_job, const struct qb_plan *plan,
                      const char *db_flag, int quiet, struct qb_run_opts *o, char plan_sha[65],
                      char **db_out)
{
    struct qb_shard sh = {-1, 0};
    const char *db = o->db_path ? o->db_path : "qbrief.db";
    size_t n = strlen(db);
    int rc;
    if (text && probe_job) {
        qb_err(QB_EINVAL, "--probe is a job of its own: give --shard or --probe, not both");
        return 1;
    }
    if (text && qb_shard_parse(text, &sh) < 0)
        return 1;
    if (plan && (rc = qb_file_sha256(plan->path, plan_sha)) < 0)
        return rc;
    o->plan_sha256 = plan ? plan_sha : NULL;
    o->shard_index = sh.index;
    o->shard_count = sh.count;
    o->probe = probe_job || (plan ? plan->probe_shard == sh.index : sh.index == 0);
    if (!o->probe)
        o->no_latency = o->no_memory = 1;
    if (!db_flag) {
        if (n > 3 && !strcmp(db + n - 3, ".db"))
            n -= 3;
        *db_out = probe_job ? g_strdup_printf("%.*s.probe.db", (int)n, db)
                            : g_strdup_printf("%.*s.shard-%lld-of-%lld.db", (int)n, db,
                                              (long long)sh.index, (long long)sh.count);
        o->db_path = *db_out;
    }
    if (!quiet && o->shard_count > 0)
        fprintf(stderr, "shard %lld of %lld (0-based) into '%s'%s\n", (long long)o->shard_index,
                (long long)o->shard_count, o->db_path,
                o->probe ? "; it measures latency and memory" : "");
    return 0;
}

/* One config's progress (PROGRESS or CONFIG_DONE). On a terminal each evaluated item
 * rewrites one line ("\r", ended at CONFIG_DONE); elsewhere a config gets one line when
 * its items are done. */
/* Seconds between progress lines where stderr is not a terminal (QB_PROGRESS_EVERY_S in the
 * environment sets it, for tests). */
static double progress_every_s = QB_RUN_PHASE_EVERY_S;

static void print_progress(const struct qb_run_event *ev, int tty)
{
    static double last; /* when a line for a non-terminal was last printed */
    int final = ev->kind == QB_RUN_EV_CONFIG_DONE;
    double t = (double)g_get_monotonic_time() / 1e6;
    char also[64] = "";
    if (ev->resumed > 0)
        snprintf(also, sizeof also, " (%lld already done)", (long long)ev->resumed);
    if (tty)
        fprintf(stderr, "\r%s: %lld/%lld items%s, %.2f items/s, eta %.0f s   %s", ev->config,
                (long long)ev->done, (long long)ev->total, also, ev->rate, ev->eta,
                final ? "\n" : "");
    else if (!final && t - last >= progress_every_s) {
        /* not a terminal: a line every few seconds, so a long config is never silent */
        last = t;
        fprintf(stderr, "%s: %lld/%lld items%s, %.2f items/s, eta %.0f s\n", ev->config,
                (long long)ev->done, (long long)ev->total, also, ev->rate, ev->eta);
    } else if (final && ev->done == ev->resumed)
        fprintf(stderr, "%s: %lld/%lld items, all already done\n", ev->config, (long long)ev->done,
                (long long)ev->total);
    else if (final)
        fprintf(stderr, "%s: %lld/%lld items, %.2f items/s%s\n", ev->config, (long long)ev->done,
                (long long)ev->total, ev->rate, also);
}

/* How a run looks on stderr: qb_run reports events (collector/run/run.h), this prints
 * them. ctx points to an int, nonzero when stderr is a terminal. */
static void print_event(void *ctx, const struct qb_run_event *ev)
{
    int tty = *(const int *)ctx;
    switch (ev->kind) {
    case QB_RUN_EV_WARNING:
        /* a warning amid a config's items may follow an unfinished progress line */
        fprintf(stderr, "%swarning: %s\n", ev->config ? "\n" : "", ev->message);
        break;
    case QB_RUN_EV_NOTE: fprintf(stderr, "note: %s\n", ev->message); break;
    case QB_RUN_EV_MEMORY:
        fprintf(stderr,
                "%s: measuring peak memory at a context of %lld tokens (config %lld of %lld)\n",
                ev->config, (long long)ev->context, (long long)ev->config_index + 1,
                (long long)ev->n_configs);
        break;
    case QB_RUN_EV_CONFIG_START: break;
    case QB_RUN_EV_PROGRESS:
    case QB_RUN_EV_CONFIG_DONE: print_progress(ev, tty); break;
    case QB_RUN_EV_LATENCY:
        fprintf(
            stderr,
            "%s: measuring latency: %d prompt lengths x %lld generated tokens, %d repetitions%s\n",
            ev->config, ev->n_prompt_lens, (long long)ev->gen_len, ev->repetitions,
            ev->batch > 1 ? ", and batched prefill" : "");
        break;
    case QB_RUN_EV_LATENCY_DONE:
        fprintf(stderr, "%s: %lld latency samples\n", ev->config, (long long)ev->n_samples);
        break;
    case QB_RUN_EV_PHASE:
        fprintf(stderr, "%s%s: %s, %.0f%% (%lld/%lld), eta %.0f s%s", tty ? "\r" : "",
                ev->config ? ev->config : "run", ev->phase,
                ev->total > 0 ? 100.0 * (double)ev->done / (double)ev->total : 100.0,
                (long long)ev->done, (long long)ev->total, ev->eta,
                !tty || ev->done >= ev->total ? "\n" : "   ");
        break;
    }
}

/* A model's name in run names: the file name less its extension, or a directory's name. */
static char *model_base(const char *path)
{
    char *b = g_path_get_basename(path), *dot = strrchr(b, '.');
    if (dot && dot != b && g_file_test(path, G_FILE_TEST_IS_REGULAR))
        *dot = 0;
    return b;
}

/* The run options a plan sets (options given on the command line override some after);
 * *cfgs (caller frees) holds the config names o->configs points to. */
static int opts_from_plan(const struct qb_plan *plan, struct qb_run_opts *o, const char ***cfgs)
{
    if (!(*cfgs = calloc((size_t)plan->n_configs, sizeof **cfgs)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < plan->n_configs; i++)
        (*cfgs)[i] = plan->configs[i].name;
    o->model_path = plan->models[0];
    o->settings = &plan->settings;
    o->calib_path = plan->settings.calibration.file;
    o->calib_sequences = plan->settings.calibration.sequences;
    o->calib_seq_len = plan->settings.calibration.seq_len;
    o->suite_path = plan->suite;
    o->prompt_template = plan->prompt_template;
    o->configs = *cfgs;
    o->n_configs = plan->n_configs;
    o->baseline = plan->configs[plan->baseline].name;
    o->prompt_lens = plan->settings.latency.prompt_lens;
    o->n_prompt_lens = (int)plan->settings.latency.n_prompt_lens;
    o->gen_len = plan->settings.latency.gen_len;
    o->batch = plan->settings.latency.batch;
    o->warmup = (int)plan->settings.latency.warmup;
    o->repetitions = (int)plan->settings.latency.repetitions;
    return 0;
}

/* One run, or with a plan of several models one run per model, named NAME-MODEL. */
static int run_models(struct qb_run_opts *o, const struct qb_plan *plan, int quiet)
{
    int rc = 0;

    for (int64_t mi = 0; mi < (plan ? plan->n_models : 1); mi++) {
        char *mname = NULL;
        if (plan && plan->n_models > 1) {
            char *b = model_base(plan->models[mi]);
            int dup = 0; /* two models with one base name (a/model, b/model) */
            for (int64_t mj = 0; mj < mi; mj++) {
                char *c = model_base(plan->models[mj]);
                dup |= !strcmp(b, c);
                g_free(c);
            }
            o->model_path = plan->models[mi];
            o->model_index = mi;
            o->n_models = plan->n_models;
            mname =
                dup ? g_strdup_printf("%s-%s-%lld", o->name ? o->name : "run", b, (long long)mi + 1)
                    : g_strdup_printf("%s-%s", o->name ? o->name : "run", b);
            g_free(b);
            if (!quiet)
                fprintf(stderr, "model %lld of %lld: %s (run '%s')\n", (long long)mi + 1,
                        (long long)plan->n_models, o->model_path, mname);
        }
        const char *keep = o->name;
        if (mname)
            o->name = mname;
        rc = run_one(o, quiet);
        o->name = keep;
        g_free(mname);
        if (rc < 0)
            return rc;
    }
    return rc;
}

int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"suite", required_argument, NULL, 's'},
        {"configs", required_argument, NULL, 'c'},
        {"baseline", required_argument, NULL, 'b'},
        {"db", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'N'},
        {"threads", required_argument, NULL, 'j'},
        {"tokenizer", required_argument, NULL, 't'},
        {"no-latency", no_argument, NULL, 'L'},
        {"no-memory", no_argument, NULL, 'M'},
        {"quiet", no_argument, NULL, 'q'},
        {"calib", required_argument, NULL, 'C'},
        {"shard", required_argument, NULL, 'S'},
        {"probe", no_argument, NULL, 'P'},
        {"device", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("run");
    struct qb_run_opts o = QB_RUN_OPTS_INIT;
    struct qb_plan *plan = NULL;
    const char *model = NULL, *suite = NULL, *configs = NULL, *baseline = NULL, *db = NULL,
               *name = NULL, *tokenizer = NULL, *calib = NULL, *shard = NULL, *device = NULL;
    char **list = NULL, *cmdline = NULL, *shard_db = NULL, plan_sha[65] = "", **sens_cfgs = NULL;
    int probe_job = 0, usage = 0;
    const char **cfgs = NULL;
    long threads = 0;
    int no_latency = 0, no_memory = 0, quiet = 0, opt, rc = 0, tty = isatty(STDERR_FILENO);
    struct qb_qspec sp;
    struct qb_device dev;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm': model = optarg; break;
        case 's': suite = optarg; break;
        case 'c': configs = optarg; break;
        case 'b': baseline = optarg; break;
        case 'd': db = optarg; break;
        case 'N': name = optarg; break;
        case 't': tokenizer = optarg; break;
        case 'C': calib = optarg; break; /* the text -gptq/-awq/-smooth configs calibrate on */
        case 'D':
            device = optarg;
            if (qb_device_parse(device, &dev) < 0)
                return qb_usage_error(self, "--device: %s", qb_errmsg());
            break;
        case 'L': no_latency = 1; break;
        case 'M': no_memory = 1; break;
        case 'q': quiet = 1; break;
        case 'S': shard = optarg; break;
        case 'P': probe_job = 1; break;
        case 'j':
            if (qb_parse_long(optarg, 1, 4096, &threads) < 0)
                return qb_usage_error(self, "--threads wants a positive count, not '%s'", optarg);
            break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind < argc - 1)
        return qb_usage_error(self, "%s", "expects at most one PLAN");
    if (optind == argc - 1) {
        if (model || suite || configs || baseline)
            return qb_usage_error(self, "%s", "a PLAN names the model, suite and configs itself");
        if ((rc = qb_plan_load(argv[optind], &plan)) < 0)
            return qb_report(rc);
        if ((rc = opts_from_plan(plan, &o, &cfgs)) < 0)
            goto out;
        o.tokenizer_path = tokenizer ? tokenizer : plan->tokenizer;
        o.threads = threads ? (int)threads : (int)plan->settings.threads;
        o.name = name ? name : plan->name;
        o.db_path = db ? db : plan->db;
        o.device = device ? device : plan->device;
    } else {
        if (!model || !suite || !configs)
            return qb_usage_error(self, "%s", "needs --model, --suite and --configs, or a PLAN");
        list = g_strsplit(configs, ",", -1);
        for (char **p = list; *p; p++) {
            g_strstrip(*p);
            if (!**p || qb_qspec_parse(*p, &sp) < 0) {
                rc = qb_usage_error(self, "%s", **p ? qb_errmsg() : "an empty config in --configs");
                g_strfreev(list);
                return rc;
            }
        }
        if (baseline && qb_qspec_parse(baseline, &sp) < 0) {
            g_strfreev(list);
            return qb_usage_error(self, "%s", qb_errmsg());
        }
        o.model_path = model;
        o.tokenizer_path = tokenizer;
        o.suite_path = suite;
        o.configs = (const char *const *)list;
        o.n_configs = g_strv_length(list);
        o.baseline = baseline;
        o.threads = (int)threads;
        o.name = name;
        o.db_path = db;
        o.device = device;
    }
    if (calib) /* over the plan's calibration: file, keeping its sequence settings */
        o.calib_path = calib;
    o.no_latency = no_latency;
    o.no_memory = no_memory;
    if ((shard || probe_job) &&
        (rc = shard_opts(shard, probe_job, plan, db, quiet, &o, plan_sha, &shard_db)) != 0) {
        usage = rc > 0;
        goto out;
    }
    if (plan && (rc = qb_run_plan_sens(plan, &o, &cfgs, &sens_cfgs, quiet)) < 0)
        goto out; /* a sensitivity: section's scan and candidates */
    if (!quiet) { /* --quiet: no callback, so the run says nothing */
        const char *every = getenv("QB_PROGRESS_EVERY_S");
        o.on_event = print_event;
        o.on_event_ctx = &tty;
        if (every && atof(every) > 0)
            progress_every_s = o.phase_every_s = atof(every);
    }
    cmdline = qb_command_line(argc, argv);
    o.command_line = cmdline;
    rc = run_models(&o, plan, quiet);
out:
    g_free(cmdline);
    g_free(shard_db);
    g_strfreev(list);
    g_strfreev(sens_cfgs);
    free(cfgs);
    qb_plan_free(plan);
    return usage ? qb_usage_error(self, "%s", qb_errmsg()) : qb_report(rc);
}

static int run_one(const struct qb_run_opts *op, int quiet)
{
    struct qb_run_stats st;
    struct qb_run_opts o = *op;
    int rc;
    if ((rc = qb_run(&o, &st)) < 0)
        return rc;
    if (!quiet) {
        static const char *kinds[] = {"generate", "choice", "perplexity"};
        fprintf(stderr, "%lld evaluated, %lld already done, %lld items skipped",
                (long long)st.n_evaluated, (long long)st.n_resumed, (long long)st.n_skipped_items);
        for (int k = 0; k < 3; k++)
            if (st.n_kind[k])
                fprintf(stderr, "; %s %.2f items/s", kinds[k],
                        st.seconds_kind[k] > 0 ? (double)st.n_kind[k] / st.seconds_kind[k] : 0.0);
        fprintf(stderr, "; results in '%s'\n", o.db_path ? o.db_path : "qbrief.db");
        if (st.n_errors)
            fprintf(stderr, "%lld items failed and were recorded as errors\n",
                    (long long)st.n_errors);
    }
    return 0;
}
