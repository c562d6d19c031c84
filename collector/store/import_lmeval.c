/* import_lmeval: lm-evaluation-harness --log_samples files into a run (store_import.h). The
 * record is the one lm_eval/evaluator.py logs per doc and loggers/evaluation_tracker.py writes
 * as one JSON line: doc_id, doc, target, arguments, resps, filtered_resps, filter, metrics,
 * doc_hash, prompt_hash, target_hash (sha256 hex of the doc's JSON, the first request's
 * prompt, str(target)), then each metric's value under its name. */
#include "collector/store/store_import.h"

#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "collector/store/store.h"

#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lm {
    struct qb_store *s;
    const struct qb_import_opts *o;
    int64_t run_id, config_id, suite_id;
    const char *path;
    char task[256];
    int64_t line;
    GHashTable *seen; /* item key -> first line (this import) */
    int64_t rows, skipped;
};

/* TASK of samples_TASK_DATE.jsonl (DATE: what evaluation_tracker appends, from its last '_'). */
static int task_of(struct lm *x)
{
    const char *base = strrchr(x->path, '/'), *end;
    size_t n;
    base = base ? base + 1 : x->path;
    if (x->o->task) {
        snprintf(x->task, sizeof x->task, "%s", x->o->task);
        return 0;
    }
    end = strrchr(base, '_');
    if (strncmp(base, "samples_", 8) || !end || end <= base + 8 || !strstr(end, ".json"))
        return qb_err(QB_EINVAL,
                      "'%s': cannot tell the task from the file name (lm-eval writes "
                      "samples_TASK_DATE.jsonl); pass --task NAME",
                      x->path);
    n = (size_t)(end - (base + 8));
    snprintf(x->task, sizeof x->task, "%.*s", (int)(n < 255 ? n : 255), base + 8);
    return 0;
}

static int is_hash(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* The metric that is the doc's correctness, its name made a lowercase identifier. */
static int metric_of(struct lm *x, json_t *o, double *v, char *name, size_t cap)
{
    static const char *const known[] = {"acc", "acc_norm", "exact_match"};
    const char *key = x->o->metric;
    json_t *m = NULL;
    size_t k = 0;
    for (size_t i = 0; !key && i < sizeof known / sizeof *known; i++)
        if (json_is_number(json_object_get(o, known[i])) ||
            json_is_boolean(json_object_get(o, known[i])))
            key = known[i];
    if (key)
        m = json_object_get(o, key);
    if (!m)
        return qb_err(QB_EINVAL,
                      "'%s':%lld: the sample has no %s%s; pass --metric NAME (one of its 0/1 "
                      "metrics)",
                      x->path, (long long)x->line, x->o->metric ? "metric " : "acc, acc_norm or ",
                      x->o->metric ? x->o->metric : "exact_match");
    *v = json_is_boolean(m) ? (json_is_true(m) ? 1.0 : 0.0) : json_number_value(m);
    if (!json_is_number(m) && !json_is_boolean(m))
        *v = NAN;
    if (!(*v == 0.0 || *v == 1.0))
        return qb_err(QB_EINVAL,
                      "'%s':%lld: metric '%s' is not 0 or 1 for this doc, so it is no "
                      "correctness; pass --metric NAME",
                      x->path, (long long)x->line, key);
    for (const char *p = key; *p && k + 1 < cap; p++) {
        char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        name[k++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_';
    }
    name[k] = 0;
    if (!(name[0] >= 'a' && name[0] <= 'z'))
        snprintf(name, cap, "metric");
    return 0;
}

/* The slice: the task, or TASK/doc[slice_field]. */
static int slice_of(struct lm *x, json_t *o, char *buf, size_t cap)
{
    json_t *f;
    char *v;
    if (!x->o->slice_field) {
        snprintf(buf, cap, "%s", x->task);
        return 0;
    }
    f = json_object_get(json_object_get(o, "doc"), x->o->slice_field);
    if (!f || json_is_null(f))
        return qb_err(QB_EINVAL, "'%s':%lld: the doc has no field '%s' (--slice-field)", x->path,
                      (long long)x->line, x->o->slice_field);
    v = json_is_string(f) ? strdup(json_string_value(f)) : json_dumps(f, JSON_ENCODE_ANY);
    snprintf(buf, cap, "%s/%s", x->task, v ? v : "?");
    free(v);
    return 0;
}

static int check_hashes(struct lm *x, json_t *o, int64_t doc_id, int64_t item_id)
{
    static const char *const names[3] = {"doc_hash", "prompt_hash", "target_hash"};
    const char *h[3];
    char have[3][65];
    int same, rc;
    for (int k = 0; k < 3; k++)
        if (!is_hash(h[k] = json_string_value(json_object_get(o, names[k]))))
            return qb_err(QB_EINVAL, "'%s':%lld: doc_id %lld has no %s (64 hex digits)", x->path,
                          (long long)x->line, (long long)doc_id, names[k]);
    if ((rc = qb_import_item_hashes(x->s, item_id, h, &same, have)) < 0)
        return rc;
    for (int k = 0; !same && k < 3; k++)
        if (strcmp(h[k], have[k]))
            return qb_err(QB_EINVAL,
                          "'%s':%lld: doc_id %lld of task '%s' has %s %.12s... but the same item "
                          "imported before has %.12s...: not the same doc, refused",
                          x->path, (long long)x->line, (long long)doc_id, x->task, names[k], h[k],
                          have[k]);
    return 0;
}

static int one_sample(struct lm *x, json_t *o)
{
    json_t *id = json_object_get(o, "doc_id"), *filt = json_object_get(o, "filter");
    char key[400], slice[512], metric[64];
    struct qb_store_item it = {0};
    struct qb_store_result r;
    int64_t doc_id, item_id;
    double v = NAN;
    char *out;
    gpointer first;
    int rc;

    if (!json_is_object(o))
        return qb_err(QB_EINVAL, "'%s':%lld: not a JSON object", x->path, (long long)x->line);
    if (!json_is_integer(id))
        return qb_err(QB_EINVAL, "'%s':%lld: the sample has no doc_id (an integer)", x->path,
                      (long long)x->line);
    doc_id = json_integer_value(id);
    if (x->o->filter && json_is_string(filt) && strcmp(json_string_value(filt), x->o->filter)) {
        x->skipped++;
        return 0;
    }
    snprintf(key, sizeof key, "lm-eval/%s/%lld", x->task, (long long)doc_id);
    if ((first = g_hash_table_lookup(x->seen, key)))
        return qb_err(QB_EINVAL,
                      "'%s':%lld: doc_id %lld of task '%s' appears again (first at line %lld)%s",
                      x->path, (long long)x->line, (long long)doc_id, x->task,
                      (long long)GPOINTER_TO_SIZE(first),
                      json_is_string(filt) ? "; keep one filter with --filter NAME" : "");
    g_hash_table_insert(x->seen, g_strdup(key), GSIZE_TO_POINTER((gsize)x->line));
    if ((rc = metric_of(x, o, &v, metric, sizeof metric)) < 0 ||
        (rc = slice_of(x, o, slice, sizeof slice)) < 0)
        return rc;
    it.key = key;
    it.slice = slice;
    it.kind = "imported";
    it.metric = metric;
    it.prompt_sha256 = json_string_value(json_object_get(o, "prompt_hash"));
    if (!is_hash(it.prompt_sha256))
        it.prompt_sha256 = NULL; /* check_hashes names it */
    it.line = x->line;
    if ((rc = qb_store_put_item(x->s, x->suite_id, &it, &item_id)) < 0 ||
        (rc = check_hashes(x, o, doc_id, item_id)) < 0)
        return rc;
    out = json_dumps(json_object_get(o, "filtered_resps"), JSON_ENCODE_ANY | JSON_COMPACT);
    r = (struct qb_store_result){.config_id = x->config_id,
                                 .item_id = item_id,
                                 .correct = v == 1.0,
                                 .score = v,
                                 .output = out,
                                 .nll = NAN,
                                 .n_tokens = -1,
                                 .mean_kl = NAN,
                                 .top1_agreement = NAN,
                                 .flipped = -1,
                                 .status = "ok"};
    rc = qb_store_put_result(x->s, x->run_id, &r);
    free(out);
    x->rows += rc == 0;
    return rc;
}

static int one_file(struct lm *x, struct qb_import_summary *sum)
{
    FILE *f;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t before = x->rows;
    int rc = 0;

    if ((rc = qb_file_sha256(x->path, sum->sha256)) < 0 || (rc = task_of(x)) < 0)
        return rc;
    if (!(f = fopen(x->path, "rb")))
        return qb_err(QB_EIO, "'%s': cannot open: %m", x->path);
    x->line = 0;
    while (rc == 0 && (n = getline(&buf, &cap, f)) > 0) {
        json_error_t je;
        json_t *o;
        int complete = buf[n - 1] == '\n';
        x->line++;
        if (strspn(buf, " \t\r\n") == (size_t)n)
            continue;
        if (!(o = json_loadb(buf, (size_t)n, 0, &je))) {
            rc = qb_err(QB_EINVAL, "'%s':%lld: %s JSON: %s", x->path, (long long)x->line,
                        complete ? "invalid" : "truncated (no end of line)", je.text);
            break;
        }
        rc = one_sample(x, o);
        json_decref(o);
    }
    free(buf);
    fclose(f);
    if (rc == 0 && x->rows == before)
        rc = qb_err(QB_EINVAL, "'%s': no samples to import", x->path);
    if (rc == 0)
        rc = qb_import_record(x->s, x->run_id, x->config_id, "lm-eval", x->path, sum->sha256,
                              x->rows - before, x->o->baseline, NULL);
    return rc;
}

int qb_import_lmeval(struct qb_store *s, const struct qb_import_opts *o, const char *const *paths,
                     int n_paths, struct qb_import_summary *sum)
{
    struct lm x = {.s = s, .o = o};
    int rc;

    memset(sum, 0, sizeof *sum);
    if ((rc = qb_store_run_find(s, o->run, &x.run_id)) < 0)
        return rc;
    if ((rc = qb_store_begin(s)) < 0)
        return rc;
    x.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if ((rc = qb_import_config(s, x.run_id, o->config, &x.config_id)) < 0 ||
        (rc = qb_import_suite_get(s, x.run_id, &x.suite_id)) < 0)
        goto out;
    for (int i = 0; i < n_paths && rc == 0; i++) {
        x.path = paths[i];
        rc = one_file(&x, sum);
    }
out:
    g_hash_table_destroy(x.seen);
    sum->rows = x.rows;
    sum->skipped = x.skipped;
    if (rc < 0) {
        qb_store_rollback(s);
        return rc;
    }
    return qb_store_commit(s);
}
