/* test_store_faults: I/O faults under the results store, and rows only raw SQL can forge.
 *
 * A VFS shim around SQLite's default VFS (registered as the default, so qb_store_open uses
 * it unchanged) fails the Nth write, sync or truncate of any file of the store (database,
 * -wal, -journal) with SQLITE_IOERR_*, SQLITE_FULL from the Nth write on (a full disk), or
 * a torn write (half of it written, then an error). For every N the workload reaches, in
 * three stores (a new file; a current store; a version 2 store, so the migration is under
 * fault too), the workload -- open, open the run, write units (item, then result and top-k
 * in one transaction), finish, close -- meets the fault; then, with the fault gone, the
 * store must open, pass PRAGMA integrity_check and foreign_key_check, hold every unit
 * whose commit succeeded and no unit in part, and let the run resume to completion with
 * each unit once. This file links SQLite itself (the only test that does); the store
 * module stays the only library code that includes sqlite3.h. Also with raw SQL: a
 * version 2 store read as it is, and run_locks rows of other processes. */
#include "collector/store/store.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <malloc.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHA_M "ab12000000000000000000000000000000000000000000000000000000000000"
#define SHA_S "5e1f000000000000000000000000000000000000000000000000000000000000"
#define N_POS 4 /* top-k rows per unit */
#define K 16

/* --- the VFS shim ----------------------------------------------------------------------- */

enum { OP_WRITE, OP_SYNC, OP_TRUNCATE, N_OPS };
static const char *const op_name[N_OPS] = {"write", "sync", "truncate"};

static struct {
    int op;     /* the kind of call that fails; -1 = none */
    long at;    /* the at-th such call (1-based) fails */
    int code;   /* what it returns */
    int sticky; /* every later call of that kind fails as well */
    int torn;   /* a failing write first writes half of its bytes */
    long count[N_OPS];
    int fired;
} fault = {.op = -1};

struct shim_file {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, allocated right after this struct */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;

static int hit(int op)
{
    long n = ++fault.count[op];
    if (fault.op != op || n < fault.at || (n > fault.at && !fault.sticky))
        return 0;
    fault.fired++;
    return 1;
}

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((struct shim_file *)(void *)f)->real;
}

static int shim_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}
static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xRead(real_of(f), p, n, off);
}
static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    if (hit(OP_WRITE)) {
        if (fault.torn && n > 1)
            real_of(f)->pMethods->xWrite(real_of(f), p, n / 2, off);
        return fault.code;
    }
    return real_of(f)->pMethods->xWrite(real_of(f), p, n, off);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    if (hit(OP_TRUNCATE))
        return fault.code;
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
/* A sync that succeeds is not passed on: this test loses no power, and a thousand fsyncs
 * would cost minutes on a busy disk. */
static int shim_sync(sqlite3_file *f, int flags)
{
    (void)f, (void)flags;
    return hit(OP_SYNC) ? fault.code : SQLITE_OK;
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
static int shim_lock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xLock(real_of(f), level);
}
static int shim_unlock(sqlite3_file *f, int level)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}
static int shim_reserved(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
static int shim_sector(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}
static int shim_devchar(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
static int shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend, pp);
}
static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}
static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, pp);
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods shim_io = {
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_size,
    shim_lock,
    shim_unlock,
    shim_reserved,
    shim_fcntl,
    shim_sector,
    shim_devchar,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    struct shim_file *sf = (struct shim_file *)(void *)f;
    int rc;
    (void)vfs;
    sf->real = (sqlite3_file *)(void *)(sf + 1);
    rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out);
    if (rc == SQLITE_OK && sf->real->pMethods->iVersion < 3) {
        sf->real->pMethods->xClose(sf->real);
        rc = SQLITE_CANTOPEN;
    }
    sf->base.pMethods = rc == SQLITE_OK ? &shim_io : NULL;
    return rc;
}
static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs, (void)sync_dir; /* no fsync of the folder, as in shim_sync */
    return real_vfs->xDelete(real_vfs, name, 0);
}
static int shim_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int shim_full(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static int shim_random(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xRandomness(real_vfs, n, out);
}
static int shim_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return real_vfs->xSleep(real_vfs, us);
}
static int shim_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return real_vfs->xCurrentTime(real_vfs, out);
}
static int shim_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return real_vfs->xGetLastError(real_vfs, n, out);
}
static int shim_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static int shim_install(void)
{
    if (sqlite3_initialize() != SQLITE_OK || !(real_vfs = sqlite3_vfs_find(NULL)) ||
        real_vfs->iVersion < 2)
        return -1;
    shim_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = "qbfault",
        .xOpen = shim_open,
        .xDelete = shim_delete,
        .xAccess = shim_access,
        .xFullPathname = shim_full,
        .xRandomness = shim_random,
        .xSleep = shim_sleep,
        .xCurrentTime = shim_time,
        .xGetLastError = shim_last_error,
        .xCurrentTimeInt64 = shim_time64,
    };
    return sqlite3_vfs_register(&shim_vfs, 1) == SQLITE_OK ? 0 : -1;
}

static void fault_set(int op, long at, int code, int sticky, int torn)
{
    memset(fault.count, 0, sizeof fault.count);
    fault.op = op;
    fault.at = at;
    fault.code = code;
    fault.sticky = sticky;
    fault.torn = torn;
    fault.fired = 0;
}

/* --- the workload ----------------------------------------------------------------------- */

static const struct qb_store_model model = {"m/a.gguf", SHA_M, "llama", "gguf", 260000};
static const struct qb_store_suite suite = {"suites/s.csv", SHA_S, 64};

static void unit_topk(int u, int p, int32_t *tok, float *l)
{
    for (int j = 0; j < K; j++)
        tok[j] = u * 1000 + p * 10 + j, l[j] = -0.5f * (float)j - (float)u;
}

/* Opens path, opens run "sweep", writes those of units first..first+n-1 not yet there and
 * finishes; *committed counts the units whose commit returned 0. The first failure's code
 * (0 when none). */
static int workload(const char *path, int first, int n, int *committed)
{
    struct qb_store *s = NULL;
    struct qb_store_run r = {.name = "sweep", .baseline_config = "f32", .host = "test"};
    int64_t run, sid, cfg;
    int rc;

    *committed = 0;
    if ((rc = qb_store_open(path, 0, &s)) < 0 ||
        (rc = qb_store_run_open(s, &r, &model, &suite, &run, &sid)) < 0 ||
        (rc = qb_store_put_config(s, run, &(struct qb_store_config){"f32", 32, -1, NAN}, &cfg)) < 0)
        goto out;
    for (int u = first; u < first + n; u++) {
        char key[16];
        int64_t item;
        int done;
        snprintf(key, sizeof key, "f%d", u);
        if ((rc = qb_store_put_item(
                 s, sid, &(struct qb_store_item){key, "x", "choice", "accuracy", NULL, NULL, -1},
                 &item)) < 0 ||
            (rc = qb_store_result_exists(s, run, cfg, item, &done)) < 0)
            goto out;
        if (done) /* a resume, as qbrief run does it */
            continue;
        if ((rc = qb_store_begin(s)) < 0)
            goto out;
        rc = qb_store_put_result(s, run,
                                 &(struct qb_store_result){cfg, item, u % 2, NAN, "an answer", 1.5,
                                                           7, NAN, NAN, -1, NULL, NULL});
        for (int p = 0; rc == 0 && p < N_POS; p++) {
            int32_t tok[K];
            float l[K];
            unit_topk(u, p, tok, l);
            rc = qb_store_put_topk(s, run, item, p, K, tok, l);
        }
        if (rc < 0) {
            qb_store_rollback(s);
            goto out;
        }
        if ((rc = qb_store_commit(s)) < 0)
            goto out;
        ++*committed;
    }
    rc = qb_store_run_finish(s, run);
out:
    qb_store_close(s);
    return rc;
}

struct units {
    struct qb_store *s;
    int64_t run, cfg;
    int complete, partial;
};

static int see_config(void *ctx, int64_t id, const struct qb_store_config *c)
{
    (void)c;
    ((struct units *)ctx)->cfg = id;
    return 0;
}

/* A unit is its result and its N_POS top-k rows with the data written: all or none. */
static int see_item(void *ctx, int64_t id, const struct qb_store_item *it)
{
    struct units *v = ctx;
    int u = atoi(it->key + 1), has = 0, n_pos = 0, k;
    int32_t tok[K], want_tok[K];
    float l[K], want_l[K];

    if (v->cfg && qb_store_result_exists(v->s, v->run, v->cfg, id, &has) < 0)
        v->partial++;
    for (int p = 0; p < N_POS; p++) {
        if (qb_store_get_topk(v->s, v->run, id, p, K, tok, l, &k) < 0)
            continue;
        unit_topk(u, p, want_tok, want_l);
        n_pos += k == K && !memcmp(tok, want_tok, sizeof tok) && !memcmp(l, want_l, sizeof l);
    }
    if (has && n_pos == N_POS)
        v->complete++;
    else if (has || n_pos)
        v->partial++;
    return 0;
}

/* Reopens path without faults and counts its units; -1 when it does not open or check. */
static int check_store(const char *path, int *complete)
{
    struct units v = {0};
    int64_t sid = 1;
    int rc;

    *complete = 0;
    if ((rc = qb_store_open(path, 0, &v.s)) < 0 || (rc = qb_store_check(v.s)) < 0) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        qb_store_close(v.s);
        return -1;
    }
    if (qb_store_run_find(v.s, "sweep", &v.run) == 0) {
        if (qb_store_list_configs(v.s, v.run, see_config, &v) < 0 ||
            qb_store_list_items(v.s, sid, see_item, &v) < 0)
            v.partial++;
    }
    qb_store_close(v.s);
    *complete = v.complete;
    return v.partial ? -1 : 0;
}

static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    size_t n;
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b && fclose(b))
        ok = 0;
    return ok ? 0 : -1;
}

static void remove_store(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* user_version of path, read with SQLite directly; -1 when unreadable. */
static int schema_version(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "  %s: %s\n", sql, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

/* --- the sweep -------------------------------------------------------------------------- */

static const struct {
    int op, code, sticky, torn;
    const char *what;
} kinds[] = {
    {OP_WRITE, SQLITE_IOERR_WRITE, 0, 0, "a write fails"},
    {OP_WRITE, SQLITE_IOERR_WRITE, 0, 1, "a write is torn"},
    {OP_WRITE, SQLITE_FULL, 1, 0, "the disk is full from a write on"},
    {OP_SYNC, SQLITE_IOERR_FSYNC, 0, 0, "a sync fails"},
    {OP_TRUNCATE, SQLITE_IOERR_TRUNCATE, 0, 0, "a truncate fails"},
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* One point: the workload (n_work units after the n_base units of base) meets the fault,
 * then the store is checked and resumed. 0 ok. */
static int sweep_point(const char *path, const char *base, int n_base, int n_work, int kind,
                       long at)
{
    int rc, committed = 0, complete = 0, again = 0;

    remove_store(path);
    if (base && copy_file(base, path) < 0)
        return -1;
    fault_set(kinds[kind].op, at, kinds[kind].code, kinds[kind].sticky, kinds[kind].torn);
    qb_err(0, "%s", "");
    rc = workload(path, n_base, n_work, &committed);
    fault_set(-1, 0, 0, 0, 0);
    if (rc < 0 && !strstr(qb_errmsg(), path)) {
        fprintf(stderr, "  the failure's message does not name the store: '%s'\n", qb_errmsg());
        return -1;
    }
    if (check_store(path, &complete) < 0)
        return -1;
    if (complete < n_base + committed || complete > n_base + committed + 1) {
        fprintf(stderr, "  %d units complete, %d were there and %d committed\n", complete, n_base,
                committed);
        return -1;
    }
    if (workload(path, n_base, n_work, &again) < 0) {
        fprintf(stderr, "  resume: %s\n", qb_errmsg());
        return -1;
    }
    if (check_store(path, &complete) < 0 || complete != n_base + n_work ||
        schema_version(path) != QB_STORE_SCHEMA_VERSION) {
        fprintf(stderr, "  after the resume: %d units complete, schema version %d\n", complete,
                schema_version(path));
        return -1;
    }
    return 0;
}

/* Every fault kind at every N the clean workload of n_work units reaches, on a copy of base
 * (NULL: a new file) that holds n_base units. Returns the number of points tried. */
static long sweep(const char *base, int n_base, int n_work, const char *label)
{
    char path[512];
    long counts[N_OPS], points = 0;
    int committed;

    snprintf(path, sizeof path, "%s/work.db", check_tmpdir());
    remove_store(path);
    if (base)
        CHECK(copy_file(base, path) == 0);
    fault_set(-1, 0, 0, 0, 0);
    CHECK(workload(path, n_base, n_work, &committed) == 0 && committed == n_work);
    memcpy(counts, fault.count, sizeof counts);
    printf("  %s: %ld writes, %ld syncs, %ld truncates\n", label, counts[OP_WRITE], counts[OP_SYNC],
           counts[OP_TRUNCATE]);
    for (int k = 0; k < N_KINDS; k++)
        for (long at = 1; at <= counts[kinds[k].op]; at++, points++)
            if (sweep_point(path, base, n_base, n_work, k, at) < 0) {
                fprintf(stderr, "  %s: %s (%s %ld of %ld)\n", label, kinds[k].what,
                        op_name[kinds[k].op], at, counts[kinds[k].op]);
                CHECK(0);
                return points;
            }
    return points;
}

/* SQL that takes a current store back to version 2: without version 4's columns, version 3's
 * run_locks and the later tables (5: shards, 6: imports). */
#define TO_VERSION_2                                                                               \
    "ALTER TABLE runs DROP COLUMN device; ALTER TABLE runs DROP COLUMN device_json; "              \
    "ALTER TABLE latency_samples DROP COLUMN host; "                                               \
    "ALTER TABLE latency_samples DROP COLUMN device; ALTER TABLE memory DROP COLUMN host; "        \
    "ALTER TABLE memory DROP COLUMN device; DROP TABLE run_locks; DROP TABLE shards; "             \
    "DROP TABLE sens_units; DROP TABLE sens_scans; "                                               \
    "DROP TABLE imports; DROP TABLE import_suites; DROP TABLE import_items; "                      \
    "PRAGMA user_version = 2"

static void test_fault_sweep(void)
{
    char cur[512], v2[512];
    int committed;
    long points = 0;
    double t0 = now_s();

    snprintf(cur, sizeof cur, "%s/current.db", check_tmpdir());
    snprintf(v2, sizeof v2, "%s/v2.db", check_tmpdir());
    CHECK(workload(cur, 0, 3, &committed) == 0 && committed == 3);
    CHECK(copy_file(cur, v2) == 0);
    /* the version 2 schema is the current one without run_locks, the device columns and shards */
    CHECK(exec_sql(v2, TO_VERSION_2) == 0);
    CHECK(schema_version(v2) == 2);

    /* a new store: creating the schema is the part under test, one unit is enough */
    points += sweep(NULL, 0, 1, "new store");
    points += sweep(cur, 3, 2, "current store");
    points += sweep(v2, 3, 2, "version 2 store (migrated under fault)");
    printf("  %ld fault points in %.2f s\n", points, now_s() - t0);
}

/* A version 2 store (before run_locks) is read as it is, without a migration, and a
 * writer upgrades it; its runs and units are unchanged either way. */
static void test_version2_store(void)
{
    char base[512], path[512];
    struct qb_store *s = NULL;
    int committed, complete = 0;
    int64_t run;

    snprintf(base, sizeof base, "%s/v2-base.db", check_tmpdir());
    snprintf(path, sizeof path, "%s/v2-read.db", check_tmpdir());
    CHECK(workload(base, 0, 2, &committed) == 0 && committed == 2);
    CHECK(copy_file(base, path) == 0);
    CHECK(exec_sql(path, TO_VERSION_2) == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == 0);
    if (s) {
        CHECK(qb_store_run_find(s, "sweep", &run) == 0 && qb_store_check(s) == 0);
        qb_store_close(s);
    }
    CHECK(schema_version(path) == 2);
    CHECK(check_store(path, &complete) == 0 && complete == 2); /* a writer's open */
    CHECK(schema_version(path) == QB_STORE_SCHEMA_VERSION);
    /* version 1 lacks item_results.status: a reader refuses it by its version */
    CHECK(exec_sql(path, "PRAGMA user_version = 1") == 0);
    CHECK(qb_store_open(path, QB_STORE_READONLY, &s) == QB_EUNSUP && !s);
    CHECK(strstr(qb_errmsg(), "older than 2") && strstr(qb_errmsg(), "qbrief run"));
}

/* --- lock rows only raw SQL can write ---------------------------------------------------- */

static int try_run(const char *path)
{
    struct qb_store *s = NULL;
    struct qb_store_run r = {.name = "sweep", .baseline_config = "f32"};
    int64_t run;
    int rc = qb_store_open(path, 0, &s);
    if (rc == 0)
        rc = qb_store_run_open(s, &r, &model, &suite, &run, NULL);
    qb_store_close(s);
    return rc;
}

/* A run's lock row of a live process on this host refuses the run; one whose process
 * started at another time (the PID was reused), of another host, or of a dead process is
 * taken over. */
static void test_forged_locks(void)
{
    char path[512], host[256] = "", sql[1024];
    long long alive = (long long)getppid(), dead;
    int committed, status;
    pid_t p;

    snprintf(path, sizeof path, "%s/locks.db", check_tmpdir());
    CHECK(workload(path, 0, 1, &committed) == 0);
    CHECK(gethostname(host, sizeof host - 1) == 0);
    fflush(NULL);
    if ((p = fork()) == 0)
        _exit(0);
    waitpid(p, &status, 0);
    dead = (long long)p;

#define LOCK(h, pid, start)                                                                        \
    snprintf(sql, sizeof sql,                                                                      \
             "DELETE FROM run_locks; INSERT INTO run_locks(run_id, host, pid, proc_start) "        \
             "SELECT id, '%s', %lld, %lld FROM runs WHERE name = 'sweep'",                         \
             h, pid, (long long)(start));                                                          \
    CHECK(exec_sql(path, sql) == 0)

    LOCK(host, alive, 0); /* start time unknown: the PID alone says it lives */
    CHECK(try_run(path) == QB_EIO);
    {
        char want[320];
        snprintf(want, sizeof want, "process %lld on '%s'", alive, host);
        if (!strstr(qb_errmsg(), want)) {
            fprintf(stderr, "  '%s' lacks '%s'\n", qb_errmsg(), want);
            CHECK(0);
        }
    }
    if (access("/proc/self/stat", R_OK) == 0) {
        LOCK(host, alive, 1); /* the same PID, another process start: reused */
        CHECK(try_run(path) == 0);
    }
    LOCK("another-machine", alive, 0);
    CHECK(try_run(path) == 0);
    LOCK(host, dead, 0);
    CHECK(try_run(path) == 0);
#undef LOCK
}

int main(void)
{
    /* each point opens and closes the store several times: without this, glibc hands the
     * freed page cache back to the kernel at every close, which costs more than the test */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    if (shim_install() < 0) {
        check_skip("test_fault_sweep", "cannot install the VFS shim");
        return check_summary();
    }
    RUN(test_fault_sweep);
    RUN(test_version2_store);
    RUN(test_forged_locks);
    return check_summary();
}
