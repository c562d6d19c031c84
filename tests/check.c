/* check: the harness behind check.h. */
#include "tests/check.h"

#include "kernels/base/err.h"
#include "kernels/dispatch.h"

#include <dirent.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int check_failed_in_test;
static int n_pass, n_fail, n_skip;
static char tmpdir[256];
/* the variant run by check_run_variants: its skip reasons, the current one, failures of each */
static const char *const *variant_why;
static int n_variants, cur_variant = -1, variant_failed[CHECK_MAX_VARIANTS];

void check_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, expr);
    if (cur_variant >= 0)
        variant_failed[cur_variant]++;
    else
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

void check_run_variants(const char *name, void (*fn)(void), int n, const char *const *variants,
                        const char *const *why)
{
    if (n > CHECK_MAX_VARIANTS) {
        printf("FAIL %s: %d variants, at most %d\n", name, n, CHECK_MAX_VARIANTS);
        n_fail++;
        return;
    }
    check_failed_in_test = 0;
    memset(variant_failed, 0, sizeof variant_failed);
    variant_why = why;
    n_variants = n;
    cur_variant = -1;
    fn();
    cur_variant = -1;
    n_variants = 0;
    for (int k = 0; k < n; k++) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", name, variants[k]);
        if (why[k]) {
            check_skip(full, why[k]);
        } else if (variant_failed[k] || check_failed_in_test) {
            printf("FAIL %s\n", full);
            n_fail++;
        } else {
            printf("ok   %s\n", full);
            n_pass++;
        }
    }
    check_failed_in_test = 0;
    fflush(stdout);
}

int check_begin_variant(int k)
{
    if (k < 0 || k >= n_variants || variant_why[k]) {
        cur_variant = -1;
        return 0;
    }
    cur_variant = k;
    return 1;
}

void check_end_variant(void)
{
    cur_variant = -1;
}

const char *check_isa_lacks(const char *isa)
{
    /* "avx512bw" and other sub-variants of a set need what the set needs */
    if (!strncmp(isa, "avx512", 6))
        return qb_kernels_cpu_has("avx512") ? NULL : "CPU lacks AVX-512";
    if (!strcmp(isa, "avx2"))
        return qb_kernels_cpu_has("avx2") ? NULL : "CPU lacks AVX2";
    return qb_kernels_cpu_has(isa) ? NULL : "unknown instruction set";
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
        if (!(rc == QB_EFORMAT || rc == QB_EUNSUP || rc == QB_EIO) ||
            !strstr(qb_errmsg(), quoted)) {
            fprintf(stderr, "  %s: rc %d, message does not quote it or is not a clean refusal\n",
                    path, rc);
            check_fail(__FILE__, __LINE__, "corpus entry refused cleanly");
        }
        n++;
    }
    closedir(d);
    return n;
}
