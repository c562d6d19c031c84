/* cmd_merge: `qbrief merge OUT.db SHARD.db...` -- the stores of a sharded run into one
 * (collector/store/store_merge.h), then what was merged and what is missing. */
#include "collector/cli/cli.h"
#include "collector/store/store_merge.h"
#include "kernels/base/err.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void print_event(void *ctx, const struct qb_merge_event *ev)
{
    int quiet = *(const int *)ctx;
    if (ev->kind == QB_MERGE_EV_SHARD) {
        if (quiet)
            return;
        if (ev->index < 0)
            fprintf(stderr, "%s: run '%s', the probe job", ev->path, ev->run);
        else
            fprintf(stderr, "%s: run '%s', shard %lld/%lld, %lld of its %lld units", ev->path,
                    ev->run, (long long)ev->index, (long long)ev->count, (long long)ev->n_results,
                    (long long)ev->n_units);
        if (ev->probe)
            fprintf(stderr, "; measured latency and memory on %s", ev->host ? ev->host : "?");
        fprintf(stderr, "%s\n",
                ev->again ? "; merged before, nothing new unless it went on since" : "");
        return;
    }
    printf("run '%s': %lld of %lld units, %lld missing; %lld of %lld shards", ev->run,
           (long long)ev->n_results, (long long)ev->n_units, (long long)ev->n_missing,
           (long long)ev->n_shards, (long long)ev->count);
    if (ev->missing_shards)
        printf(" (not merged: %s)", ev->missing_shards);
    printf("\n");
}

int cmd_merge(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("merge");
    int quiet = 0, opt;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'q': quiet = 1; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (argc - optind < 2)
        return qb_usage_error(self, "%s", "expects OUT.db and at least one SHARD.db");
    int rc = qb_store_merge(argv[optind], (const char *const *)argv + optind + 1, argc - optind - 1,
                            print_event, &quiet);
    if (rc == 0 && !quiet)
        fprintf(stderr, "merged into '%s'\n", argv[optind]);
    return qb_report(rc);
}
