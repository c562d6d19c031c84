/* suite: evaluation suites read from CSV (format in docs/suite-format.md).
 *
 *     struct qb_suite_opts o = QB_SUITE_OPTS_INIT;      // min_slice_items 30, no template
 *     struct qb_suite *s = NULL;
 *     if ((rc = qb_suite_load("suite.csv", &o, &s)) < 0) {
 *         fprintf(stderr, "qbrief: %s\n", qb_errmsg());  // 'suite.csv':12:3: unknown kind ...
 *         return rc;
 *     }
 *     for (int64_t i = 0; i < s->n_warnings; i++) fprintf(stderr, "warning: %s\n", s->warnings[i]);
 *     for (int64_t i = 0; i < s->n_items; i++) {
 *         char *p;
 *         qb_suite_format_prompt(s, &s->items[i], &p);    // template applied; caller frees
 *         ...
 *     }
 *     qb_suite_free(s);
 *
 * The suite owns everything it points to; items, slices and warnings live until
 * qb_suite_free. Positions in messages are 'FILE':LINE:COL where LINE is the 1-based
 * line the field starts on and COL the field's 1-based position in its row. */
#ifndef QB_SUITE_H
#define QB_SUITE_H

#include "collector/eval/item.h"

#include <stddef.h>
#include <stdint.h>

struct qb_suite_slice {
    char *name;
    int64_t n_items;
};

struct qb_suite {
    char *path;
    char sha256[65];       /* lowercase hex of the file's bytes, NUL-terminated */
    char *prompt_template; /* NULL when none; contains "{prompt}" */
    struct qb_suite_item *items;
    int64_t n_items;
    struct qb_suite_slice *slices; /* in order of first appearance */
    int64_t n_slices;
    char **warnings; /* unknown columns, small slices; never printed by the library */
    int64_t n_warnings;
};

struct qb_suite_opts {
    int64_t min_slice_items;     /* slices with fewer items get a warning (0: none) */
    const char *prompt_template; /* NULL or a string containing "{prompt}"; copied */
    size_t max_bytes;            /* refuse larger files (0: 256 MiB) */
};
#define QB_SUITE_OPTS_INIT                                                                         \
    {                                                                                              \
        30, NULL, 0                                                                                \
    }

/* Reads and validates a suite. o may be NULL (QB_SUITE_OPTS_INIT). On failure *out is
 * NULL and the message names the file and, where there is one, LINE:COL. QB_EIO when the
 * file cannot be read, QB_EFORMAT when it is malformed, QB_EINVAL for a bad template. */
int qb_suite_load(const char *path, const struct qb_suite_opts *o, struct qb_suite **out);
void qb_suite_free(struct qb_suite *s); /* NULL is a no-op */

/* Replaces every "{prompt}" in tmpl with prompt, into a malloc'd string (caller frees).
 * tmpl NULL copies prompt. QB_EINVAL when tmpl has no "{prompt}". */
int qb_suite_apply_template(const char *tmpl, const char *prompt, char **out);
/* The item's prompt with the suite's template applied (caller frees). */
int qb_suite_format_prompt(const struct qb_suite *s, const struct qb_suite_item *it, char **out);

#endif
