/* check: the harness behind check.h. */
#include "tests/check.h"

#include "kernels/base/err.h"

#include <dirent.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int check_failed_in_test;
static int n_pass, n_fail, n_skip;
static char tmpdir[256];

void check_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, expr);
    check_failed_in_test++;
}

void check_run(const char *name, void (*fn)(void))
{
    check_failed_in_test = 0;
    fn();
    if (check_failed_in_test) {
        printf("FAIL %s\n", name);
        n_fail++;
    } else {
        printf("ok   %s\n", name);
        n_pass++;
    }
    fflush(stdout);
}

void check_skip(const char *name, const char *why)
{
    printf("skip %s: %s\n", name, why);
    n_skip++;
}

static void rm_tmpdir(void)
{
    char cmd[300];
    if (!tmpdir[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

const char *check_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/qbtest.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(rm_tmpdir);
    }
    return tmpdir;
}

const char *qb_shared_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("QB_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "../shared", rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

int check_summary(void)
{
    printf("# passed %d failed %d skipped %d\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}

int check_corpus(const char *dir, const char *suffix, int (*load)(const char *path))
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t k = strlen(suffix);
    int n = 0;

    if (!d) {
        fprintf(stderr, "  cannot open %s (run from the repository root)\n", dir);
        check_fail(__FILE__, __LINE__, "corpus directory exists");
        return 0;
    }
    while ((de = readdir(d))) {
        char path[512], quoted[520];
        size_t len = strlen(de->d_name);
        int rc;
        if (de->d_name[0] == '.' || len < k || strcmp(de->d_name + len - k, suffix))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(quoted, sizeof quoted, "'%s", path);
        qb_err(0, "%s", "");
        rc = load(path);
        printf("  %-40s -> %s\n", de->d_name, qb_errmsg());
        if (!(rc == QB_EFORMAT || rc == QB_EUNSUP || rc == QB_EIO) || !strstr(qb_errmsg(), quoted)) {
            fprintf(stderr, "  %s: rc %d, message does not quote it or is not a clean refusal\n",
                    path, rc);
            check_fail(__FILE__, __LINE__, "corpus entry refused cleanly");
        }
        n++;
    }
    closedir(d);
    return n;
}
