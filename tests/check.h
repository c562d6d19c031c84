/* check: the tiny test harness every tests/<folder>/test_*.c uses.
 *
 *     static void test_roundtrip(void) {
 *         CHECK(x == 3);
 *         CHECK_NEAR(a, b, 1e-6);
 *     }
 *     int main(void) {
 *         RUN(test_roundtrip);
 *         if (!qb_shared_has("models/stories260K/stories260K.bin")) SKIP("needs ../shared/models");
 *         return check_summary();
 *     }
 *
 * A test passes when no CHECK inside it failed. Every binary prints one line per test
 * ("ok", "FAIL", "skip") and ends with "# passed N failed N skipped N", which tests/run.sh
 * adds up. */
#ifndef QB_CHECK_H
#define QB_CHECK_H

#include <stdio.h>
#include <math.h>

extern int check_failed_in_test;

void check_fail(const char *file, int line, const char *expr);
void check_run(const char *name, void (*fn)(void));
void check_skip(const char *name, const char *why);
int check_summary(void);

/* Path of a file under ../shared (or $QB_SHARED), or NULL when it is absent. Static buffer. */
const char *qb_shared_path(const char *rel);
/* A fresh empty temporary directory for this test binary (removed at exit). */
const char *check_tmpdir(void);

/* Runs load(path) on every entry of dir whose name ends in suffix ("" for all) and checks
 * that each is refused cleanly: QB_EFORMAT, QB_EUNSUP or QB_EIO (never success, OOM or a
 * crash) with a message quoting the path or a file inside it. load frees what it made.
 * Prints each message; returns how many entries it tried. Run from the repository root. */
int check_corpus(const char *dir, const char *suffix, int (*load)(const char *path));

#define CHECK(e) \
    do { \
        if (!(e)) check_fail(__FILE__, __LINE__, #e); \
    } while (0)
#define CHECK_NEAR(a, b, tol) \
    do { \
        double a_ = (a), b_ = (b); \
        if (!(fabs(a_ - b_) <= (tol))) { \
            fprintf(stderr, "  %s = %.9g, %s = %.9g\n", #a, a_, #b, b_); \
            check_fail(__FILE__, __LINE__, #a " ~ " #b); \
        } \
    } while (0)
#define RUN(fn) check_run(#fn, fn)

#endif
