/* item: the names of suite kinds and metrics as written in the CSV (see item.h). */
#include "collector/eval/item.h"

static const char *const kind_names[QB_N_KINDS] = {"generate", "choice", "perplexity"};
static const char *const metric_names[QB_N_METRICS] = {"exact",    "contains",      "regex",
                                                       "number",   "json",          "json_valid",
                                                       "accuracy", "accuracy_norm", "perplexity"};

const char *qb_suite_kind_name(enum qb_suite_kind k)
{
    return (int)k >= 0 && (int)k < QB_N_KINDS ? kind_names[k] : "?";
}

const char *qb_metric_name(enum qb_metric m)
{
    return (int)m >= 0 && (int)m < QB_N_METRICS ? metric_names[m] : "?";
}
