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

#include <stddef.h>
#include <stdint.h>

enum qb_suite_kind {
    QB_KIND_GENERATE,   /* greedy generation, output scored by a metric */
    QB_KIND_CHOICE,     /* log-likelihood of each choice after the prompt */
    QB_KIND_PERPLEXITY, /* the prompt is the text whose perplexity is measured */
};

enum qb_metric {
    QB_METRIC_EXACT,         /* generate: trimmed output == trimmed target */
    QB_METRIC_CONTAINS,      /* generate: target is a substring of the output */
    QB_METRIC_REGEX,         /* generate: PCRE2 target matches somewhere in the output */
    QB_METRIC_NUMBER,        /* generate: first number in the output within target's tolerance */
    QB_METRIC_JSON,          /* generate: output's first JSON value equals the target JSON */
    QB_METRIC_JSON_VALID,    /* generate: trimmed output is one valid JSON value (no target) */
    QB_METRIC_ACCURACY,      /* choice: argmax of summed log-likelihood is the target */
    QB_METRIC_ACCURACY_NORM, /* choice: argmax of log-likelihood per byte of the choice */
    QB_METRIC_PERPLEXITY,    /* perplexity */
};

struct qb_metric_priv; /* compiled regex / parsed target JSON, metrics.c internals */

struct qb_suite_item {
    char *id;
    char *slice;
    enum qb_suite_kind kind;
    char *prompt;   /* raw, without the template; see qb_suite_format_prompt */
    char *target;   /* NULL when the row has none */
    char **choices; /* choice: n_choices options, `\|` and `\\` unescaped */
    int64_t n_choices;
    int64_t target_index; /* choice: index of the correct option; -1 otherwise */
    enum qb_metric metric;
    int64_t max_tokens;          /* generate: 1..4096, default 64; 0 for other kinds */
    char *stop;                  /* generate: stop string, NULL when none */
    double number;               /* number metric: the target value ... */
    double tolerance;            /* ... and its tolerance (0 when not written) */
    int64_t line;                /* line the row starts on */
    struct qb_metric_priv *priv; /* owned; built at load by qb_metric_prepare */
};

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

/* Names as written in the CSV ("generate", "json_valid"); "?" when out of range. */
const char *qb_suite_kind_name(enum qb_suite_kind k);
const char *qb_metric_name(enum qb_metric m);

#endif
