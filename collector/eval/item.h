/* item: one suite item and the names of its kinds and metrics -- what the suite reader
 * (suite.h) fills and the metrics (metrics.h) score, below both so that neither includes the
 * other. docs/suite-format.md says what every kind and metric means. */
#ifndef QB_ITEM_H
#define QB_ITEM_H

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

#define QB_N_KINDS (QB_KIND_PERPLEXITY + 1)
#define QB_N_METRICS (QB_METRIC_PERPLEXITY + 1)

/* Names as written in the CSV ("generate", "json_valid"); "?" when out of range. */
const char *qb_suite_kind_name(enum qb_suite_kind k);
const char *qb_metric_name(enum qb_metric m);

#endif
