/* cmd_import: `qbrief import lm-eval|llama-bench FILE... --db D --run R --config NAME` records
 * results qbrief was given (collector/store/store_import.h) in a run of the store, labelled
 * with their files' sha256, for the brief to show beside what qbrief measured. */
#include "collector/cli/cli.h"
#include "collector/store/store.h"
#include "collector/store/store_import.h"
#include "kernels/base/err.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"run", required_argument, NULL, 'r'},
        {"config", required_argument, NULL, 'c'},
        {"baseline", no_argument, NULL, 'b'},
        {"metric", required_argument, NULL, 'm'},
        {"filter", required_argument, NULL, 'f'},
        {"slice-field", required_argument, NULL, 's'},
        {"task", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("import");
    struct qb_import_opts o = {0};
    struct qb_import_summary sum;
    struct qb_store *s = NULL;
    const char *db = "qbrief.db", *kind;
    int opt, rc, lmeval;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': db = optarg; break;
        case 'r': o.run = optarg; break;
        case 'c': o.config = optarg; break;
        case 'b': o.baseline = 1; break;
        case 'm': o.metric = optarg; break;
        case 'f': o.filter = optarg; break;
        case 's': o.slice_field = optarg; break;
        case 't': o.task = optarg; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind >= argc)
        return qb_usage_error(self, "%s", "expects lm-eval or llama-bench, then the files");
    kind = argv[optind++];
    lmeval = !strcmp(kind, "lm-eval");
    if (!lmeval && strcmp(kind, "llama-bench"))
        return qb_usage_error(self, "unknown source '%s' (lm-eval, llama-bench)", kind);
    if (optind >= argc)
        return qb_usage_error(self, "%s", "no file to import");
    if (!lmeval && argc - optind != 1)
        return qb_usage_error(self, "%s", "llama-bench imports one file at a time");
    if (!o.run || !o.config || !*o.config)
        return qb_usage_error(self, "%s", "--run RUN and --config NAME are required");
    if (!lmeval && (o.baseline || o.metric || o.filter || o.slice_field || o.task))
        return qb_usage_error(self, "%s",
                              "--baseline, --metric, --filter, --slice-field and --task are "
                              "for lm-eval samples");
    if ((rc = qb_store_open(db, 0, &s)) < 0)
        return qb_report(rc);
    if (lmeval)
        rc = qb_import_lmeval(s, &o, (const char *const *)(argv + optind), argc - optind, &sum);
    else
        rc = qb_import_llamabench(s, &o, argv[optind], &sum);
    if (rc == 0) {
        printf("imported %lld %s into run '%s' as config '%s' (imported, sha256 %.12s...)",
               (long long)sum.rows, lmeval ? "samples" : "latency samples", o.run, o.config,
               sum.sha256);
        if (sum.skipped)
            printf("; %lld %s skipped", (long long)sum.skipped,
                   lmeval ? "samples of other filters" : "tests at n_depth > 0");
        if (!lmeval)
            printf("\ndevice: %s", sum.device);
        printf("\n");
    }
    qb_store_close(s);
    return qb_report(rc);
}
