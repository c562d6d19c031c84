/* test_calib_overlap: the run's check of how much of the suite its calibration text contains
 * (a shared run of QB_RUN_OVERLAP_NGRAM words) counts the same items as before, and its memory
 * stays bounded on a large text: a 32 MB calibration file of distinct n-grams once peaked at
 * about 500 MB (every n-gram of the text hashed into a set, issue 19); the suite's n-grams
 * alone now, and the text streamed. Needs ../shared/models/stories260K-gguf (skips without). */
#include "tests/check.h"

#include "collector/run/run.h"
#include "kernels/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* The overlap warning's count: "'FILE' shares a run of 8 words with N of the M suite items". */
static void on_event(void *ctx, const struct qb_run_event *ev)
{
    const char *p;
    if (ev->kind == QB_RUN_EV_WARNING && (p = strstr(ev->message, " words with ")))
        *(int *)ctx = atoi(p + strlen(" words with "));
}

/* Runs f32 over the tiny suite with calib as calibration text in a child; returns the items
 * the overlap warning counted (0 when none, -1 on failure) and the child's peak RSS in KiB. */
static int overlap_in_child(const char *model, const char *calib, const char *db, long *max_kib)
{
    pid_t pid = fork();
    if (pid == 0) {
        const char *cfg[] = {"f32"};
        int hits = 0;
        struct qb_run_opts o = QB_RUN_OPTS_INIT;
        o.model_path = model;
        o.suite_path = "examples/suites/tiny.csv";
        o.db_path = db;
        o.configs = cfg;
        o.n_configs = 1;
        o.threads = 1;
        o.no_latency = o.no_memory = 1;
        o.calib_path = calib;
        o.on_event = on_event;
        o.on_event_ctx = &hits;
        _exit(qb_run(&o, NULL) < 0 ? 255 : hits);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    wait4(pid, &status, 0, &ru);
    *max_kib = ru.ru_maxrss;
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 255)
        return -1;
    return WEXITSTATUS(status);
}

/* Four items share "once upon a time there was a little" (names-girl, names-boy,
 * names-girl-stop, ppl-1; case and punctuation do not count); seven words of ppl-3 are not
 * enough, and the rest of the text is words of no item. big: about 32 MB of them, every
 * 8-gram distinct. */
static void write_calib(const char *path, int big)
{
    FILE *f = fopen(path, "w");
    uint64_t x = 88172645463325252ull;
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("Prelude. ONCE upon a time -- there was a little, girl!\n"
          "The quarterly earnings call covered EBITDA margins, then stopped.\n",
          f);
    for (long i = 0; big && i < 4L << 20; i++) { /* xorshift64: words w0 .. w999999 */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        fprintf(f, "w%llu%c", (unsigned long long)(x % 1000000), i % 16 == 15 ? '\n' : ' ');
    }
    fputs("\nThe end.\n", f);
    fclose(f);
}

static void test_overlap_counts_and_memory(void)
{
    const char *model = qb_shared_path("models/stories260K-gguf/stories260K.gguf");
    char calib[512], db[512];
    long small_kib = 0, big_kib = 0;

    snprintf(calib, sizeof calib, "%s/calib.txt", check_tmpdir());
    snprintf(db, sizeof db, "%s/small.db", check_tmpdir());
    write_calib(calib, 0);
    CHECK(overlap_in_child(model, calib, db, &small_kib) == 4);

    snprintf(db, sizeof db, "%s/big.db", check_tmpdir());
    write_calib(calib, 1);
    CHECK(overlap_in_child(model, calib, db, &big_kib) == 4);
#if !defined(__SANITIZE_ADDRESS__)
    /* the same run on 32 MB more text: a few MB more, not hundreds (the old set: ~500 MB) */
    printf("# peak RSS: %ld KiB with a 100-byte calibration text, %ld KiB with 32 MB\n", small_kib,
           big_kib);
    CHECK(big_kib - small_kib < 64 * 1024);
#endif
    unlink(calib);
}

int main(void)
{
    if (!qb_shared_path("models/stories260K-gguf/stories260K.gguf")) {
        check_skip("test_overlap_counts_and_memory", "needs ../shared/models/stories260K-gguf");
        return check_summary();
    }
    RUN(test_overlap_counts_and_memory);
    return check_summary();
}
