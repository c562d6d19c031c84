/* check: the tiny test harness every tests/<folder>/test_*.c uses.
 *
 *     static void test_roundtrip(void) {
 *         CHECK(x == 3);
 *         CHECK_NEAR(a, b, 1e-6);
 *     }
 *     int main(void) {
 *         if (qb_shared_path("models/stories260K/stories260K.bin"))
 *             RUN(test_roundtrip);
 *         else
 *             SKIP(test_roundtrip, "needs ../shared/models");
 *         return check_summary();
 *     }
 *
 * A test passes when no CHECK inside it failed. Every binary prints one line per test
 * ("ok", "FAIL", "skip") and ends with "# passed N failed N skipped N", which tests/run.sh
 * adds up.
 *
 * Variants: a kernel test checks every instruction set against one reference in one pass
 * (the reference is the slow part) and reports one line per instruction set, skipped with
 * the reason where the CPU lacks it, never passed:
 *
 *     static const char *const isas[] = {"ref", "avx2", "avx512"};
 *     static void test_kernel(void) {
 *         ... the reference ...
 *         for (int k = 0; k < 3; k++) {
 *             if (!check_begin_variant(k))   // skipped variant: do not run it
 *                 continue;
 *             CHECK(...);                    // counts against variant k
 *         }
 *         check_end_variant();
 *     }
 *     RUN_VARIANTS(test_kernel, 3, isas, why);  // why[k] = check_isa_lacks(isas[k]) */
#ifndef QB_CHECK_H
#define QB_CHECK_H

#include <stdio.h>
#include <math.h>

extern int check_failed_in_test;

void check_fail(const char *file, int line, const char *expr);
void check_run(const char *name, void (*fn)(void));
void check_skip(const char *name, const char *why);
int check_summary(void);

/* Runs fn once and prints one line per variant, "name/variants[k]": skip with why[k] when it
 * is non-NULL, FAIL when a CHECK failed while variant k was current or outside any variant,
 * ok otherwise. At most CHECK_MAX_VARIANTS. */
#define CHECK_MAX_VARIANTS 8
void check_run_variants(const char *name, void (*fn)(void), int n, const char *const *variants,
                        const char *const *why);
/* Makes variant k current; 0 (and none current) when it is skipped. */
int check_begin_variant(int k);
/* No variant current: failures count against every variant. */
void check_end_variant(void);
/* Why an instruction set's kernels cannot be tested here ("CPU lacks AVX-512"), as
 * kernels/dispatch.h sees the CPU (QB_ISA_MAX considered); NULL when they can. */
const char *check_isa_lacks(const char *isa);

/* Path of a file under ../shared (or $QB_SHARED), or NULL when it is absent. Static buffer. */
const char *qb_shared_path(const char *rel);
/* A fresh empty temporary directory for this test binary (removed at exit). */
const char *check_tmpdir(void);

/* Runs load(path) on every entry of dir whose name ends in suffix ("" for all) and checks
 * that each is refused cleanly: QB_EFORMAT, QB_EUNSUP or QB_EIO (never success, OOM or a
 * crash) with a message quoting the path or a file inside it. load frees what it made.
 * Prints each message; returns how many entries it tried. Run from the repository root. */
int check_corpus(const char *dir, const char *suffix, int (*load)(const char *path));

#define CHECK(e)                                                                                   \
    do {                                                                                           \
        if (!(e))                                                                                  \
            check_fail(__FILE__, __LINE__, #e);                                                    \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            fprintf(stderr, "  %s = %.9g, %s = %.9g\n", #a, a_, #b, b_);                           \
            check_fail(__FILE__, __LINE__, #a " ~ " #b);                                           \
        }                                                                                          \
    } while (0)
#define RUN(fn) check_run(#fn, fn)
#define RUN_VARIANTS(fn, n, variants, why) check_run_variants(#fn, fn, n, variants, why)
#define SKIP(fn, why) check_skip(#fn, why)

#endif
