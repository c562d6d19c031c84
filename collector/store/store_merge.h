/* store_merge: `qbrief merge OUT.db SHARD.db...` -- the stores of a sharded run's shards
 * (collector/run/shard.h) into one store that `qbrief brief` reads like any other.
 *
 *     static void show(void *ctx, const struct qb_merge_event *ev) { ... }
 *     const char *in[] = {"s0.db", "s1.db"};
 *     if ((rc = qb_store_merge("out.db", in, 2, show, NULL)) < 0)
 *         fprintf(stderr, "qbrief: %s\n", qb_errmsg());
 *
 * What is checked, before OUT changes: every input is a qbrief store holding shard records
 * (a corrupt or foreign file is refused as qb_store_open refuses it); all shards, and those
 * already in OUT, come from one plan (plan sha256) and one shard count; a run found in
 * several has the same model, suite and calibration sha256, qbrief version and commit and
 * baseline; no file and no shard is given twice; and no (config, item) unit of a shard is
 * already in OUT from another shard (the units are disjoint). A shard that OUT already holds
 * (the same shard's run, by its token) is merged again without change: merging is
 * idempotent, and merging a shard that went on after an earlier merge adds what it has
 * since.
 *
 * How: OUT is copied (or created) beside itself as OUT.merge-XXXXXX, each shard is ATTACHed
 * and copied in one transaction, and the copy is renamed over OUT at the end; on any error
 * the copy is removed and OUT is untouched. Rows are copied column by column as the two
 * schemas have them (PRAGMA table_info), so columns that later schema versions add travel
 * too; ids are renumbered (models and suites by sha256, runs by name, configs by spec, items
 * by key). Each shard's record goes along with the file it came from: the host and machine
 * of each shard, and which one measured latency and memory (probe). */
#ifndef QB_STORE_MERGE_H
#define QB_STORE_MERGE_H

#include <stdint.h>

enum qb_merge_event_kind {
    QB_MERGE_EV_SHARD, /* one shard of one run copied (path, run, host, index, count,
                        * n_units, n_results, probe, again: OUT had this shard already) */
    QB_MERGE_EV_RUN,   /* after the merge, per run of OUT: n_units expected, n_results held,
                        * n_missing, shards held of count, missing_shards ("2, 3" or NULL) */
};

struct qb_merge_event {
    enum qb_merge_event_kind kind;
    const char *path; /* SHARD: the input file */
    const char *run;  /* the run's name */
    const char *host; /* SHARD: the host the shard ran on (may be NULL) */
    int64_t index, count;
    int64_t n_units, n_results, n_missing;
    int64_t n_shards;
    int probe, again;
    const char *missing_shards;
};

/* Merges n input stores into out_path (see above). 0, or a negative QB_E* code with out_path
 * untouched. on_event (may be NULL) hears each shard and then each run. */
int qb_store_merge(const char *out_path, const char *const *in, int n,
                   void (*on_event)(void *ctx, const struct qb_merge_event *ev), void *ctx);

#endif
