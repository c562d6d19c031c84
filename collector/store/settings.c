/* settings: struct qb_settings to and from its JSON form in the store (see settings.h for the
 * keys). The writer must produce the bytes runs have always stored (jansson, compact, sorted
 * keys); the reader must read every run ever stored the way the analysis always has: the
 * same defaults, the same warnings, in the same order (policy, then the default tolerance). */
#include "collector/store/settings.h"

#include "kernels/base/err.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qb_settings_init(struct qb_settings *s)
{
    memset(s, 0, sizeof *s);
    s->calibration.overlap_items = -1;
    s->tolerances.default_points = NAN;
    s->flips.default_percent = NAN;
    s->policy.confidence = 0.95;
    s->policy.bound = QB_BOUND_INTERVAL;
}

static void free_slices(struct qb_settings_slice *v, int64_t n)
{
    for (int64_t i = 0; v && i < n; i++)
        free(v[i].slice);
    free(v);
}

void qb_settings_release(struct qb_settings *s)
{
    if (!s)
        return;
    free(s->title);
    free(s->question);
    free(s->template_name);
    free(s->plan);
    for (int64_t i = 0; s->configs && i < s->n_configs; i++)
        free(s->configs[i]);
    free(s->configs);
    free(s->baseline);
    free(s->latency.prompt_lens);
    free(s->calibration.file);
    free(s->calibration.sha256);
    free_slices(s->tolerances.slices, s->tolerances.n);
    free_slices(s->flips.slices, s->flips.n);
    free_slices(s->traffic.slices, s->traffic.n);
    memset(s, 0, sizeof *s);
}

const struct qb_settings_slice *qb_settings_find(const struct qb_settings_slice *slices, int64_t n,
                                                 const char *slice)
{
    for (int64_t i = 0; i < n; i++)
        if (!strcmp(slices[i].slice, slice))
            return &slices[i];
    return NULL;
}

/* --- writing ----------------------------------------------------------------------------- */

/* Sets o[key] = v, taking v; a NULL v (allocation failed) marks *bad. */
static void put(json_t *o, const char *key, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, key, v) < 0)
        *bad = 1;
}

/* A string, or null for NULL. A string that is not UTF-8 cannot be JSON: its key is left
 * out, as runs always did (jansson refuses it). */
static void put_str(json_t *o, const char *key, const char *s, int *bad)
{
    json_t *v = s ? json_string(s) : json_null();
    if (v)
        put(o, key, v, bad);
}

/* A number that is not finite (a value read back as NAN) is written as null. */
static json_t *real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *slices_json(const struct qb_settings_slice *v, int64_t n, int *bad)
{
    json_t *o = json_object();
    for (int64_t i = 0; o && i < n; i++)
        put(o, v[i].slice, real_or_null(v[i].value), bad);
    return o;
}

/* What the run decided: configs, latency, calibration. */
static void put_run(json_t *j, const struct qb_settings *s, int *bad)
{
    json_t *jc = json_array(), *jl = json_array();
    for (int64_t i = 0; jc && i < s->n_configs; i++)
        if (json_array_append_new(jc, json_string(s->configs[i])) < 0)
            *bad = 1;
    for (int64_t i = 0; jl && i < s->latency.n_prompt_lens; i++)
        if (json_array_append_new(jl, json_integer(s->latency.prompt_lens[i])) < 0)
            *bad = 1;
    put(j, "configs", jc, bad);
    put_str(j, "baseline", s->baseline, bad);
    put(j, "threads", json_integer(s->threads), bad);
    put(j, "topk", json_integer(s->topk), bad);
    put(j, "latency", json_boolean(s->latency.measured), bad);
    put(j, "gen_len", json_integer(s->latency.gen_len), bad);
    put(j, "prompt_lens", jl, bad);
    put(j, "batch", json_integer(s->latency.batch), bad);
    put(j, "repetitions", json_integer(s->latency.repetitions), bad);
    put(j, "warmup", json_integer(s->latency.warmup), bad);
    if (s->calibration.sha256) {
        json_t *c = json_object();
        if (c) {
            put_str(c, "file", s->calibration.file, bad);
            put_str(c, "sha256", s->calibration.sha256, bad);
            put(c, "sequences", json_integer(s->calibration.sequences), bad);
            put(c, "seq_len", json_integer(s->calibration.seq_len), bad);
            if (s->calibration.overlap_items >= 0)
                put(c, "overlap",
                    json_pack("{s:I, s:I, s:I}", "ngram", (json_int_t)s->calibration.overlap_ngram,
                              "items", (json_int_t)s->calibration.overlap_items, "of",
                              (json_int_t)s->calibration.overlap_of),
                    bad);
        }
        put(j, "calibration", c, bad);
    }
}

/* What the plan decided for the brief: its text, tolerances, traffic and policy. */
static void put_plan(json_t *j, const struct qb_settings *s, int *bad)
{
    json_t *tol = json_object();
    put_str(j, "title", s->title, bad);
    put_str(j, "question", s->question, bad);
    put_str(j, "template", s->template_name, bad);
    put_str(j, "plan", s->plan, bad);
    if (tol) {
        put(tol, "default",
            s->tolerances.has_default ? real_or_null(s->tolerances.default_points) : json_null(),
            bad);
        put(tol, "slices", slices_json(s->tolerances.slices, s->tolerances.n, bad), bad);
    }
    put(j, "tolerances", tol, bad);
    /* absent unless the plan names flips: runs without them keep their bytes */
    if (s->flips.has_default || s->flips.n > 0) {
        json_t *fl = json_object();
        if (fl) {
            put(fl, "default",
                s->flips.has_default ? real_or_null(s->flips.default_percent) : json_null(), bad);
            put(fl, "slices", slices_json(s->flips.slices, s->flips.n, bad), bad);
        }
        put(j, "flips", fl, bad);
    }
    put(j, "traffic", slices_json(s->traffic.slices, s->traffic.n, bad), bad);
    put(j, "policy",
        json_pack("{s:f, s:s}", "confidence", s->policy.confidence, "bound",
                  s->policy.bound == QB_BOUND_POINT ? "point" : "interval"),
        bad);
}

int qb_settings_write(const struct qb_settings *s, char **out)
{
    json_t *j = json_object();
    int bad = !j;

    *out = NULL;
    if (j) {
        put_run(j, s, &bad);
        if (s->plan)
            put_plan(j, s, &bad);
    }
    if (!bad)
        *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (!*out)
        return qb_err(QB_ENOMEM, "out of memory writing the run's settings");
    return 0;
}

/* --- reading ----------------------------------------------------------------------------- */

struct reader {
    qb_settings_warn_fn warn;
    void *ctx;
    int oom;
};

static void warnf(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(struct reader *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (!r->warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->warn(r->ctx, msg);
}

/* A copy of o[key] when it is a string; NULL otherwise. */
static char *get_str(struct reader *r, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    char *s;
    if (!json_is_string(v))
        return NULL;
    if (!(s = strdup(json_string_value(v))))
        r->oom = 1;
    return s;
}

/* o[key] when it is an integer; else keep *out. */
static void get_int(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        *out = json_integer_value(v);
}

static void read_slices(struct reader *r, json_t *o, struct qb_settings_slice **out, int64_t *n)
{
    const char *k;
    json_t *v;
    if (!(*out = calloc(json_object_size(o) + 1, sizeof **out))) {
        r->oom = 1;
        return;
    }
    json_object_foreach(o, k, v)
    {
        struct qb_settings_slice *e = &(*out)[*n];
        if (!(e->slice = strdup(k))) {
            r->oom = 1;
            return;
        }
        e->value = json_is_number(v) ? json_number_value(v) : NAN;
        e->is_null = json_is_null(v);
        (*n)++;
    }
}

static void read_run(struct reader *r, json_t *st, struct qb_settings *s)
{
    json_t *v, *e;
    if (json_is_array(v = json_object_get(st, "configs"))) {
        if (!(s->configs = calloc(json_array_size(v) + 1, sizeof *s->configs)))
            r->oom = 1;
        for (size_t i = 0; s->configs && i < json_array_size(v); i++) {
            if (!json_is_string(e = json_array_get(v, i)))
                continue;
            if (!(s->configs[s->n_configs] = strdup(json_string_value(e))))
                r->oom = 1;
            else
                s->n_configs++;
        }
    }
    s->baseline = get_str(r, st, "baseline");
    get_int(st, "threads", &s->threads);
    get_int(st, "topk", &s->topk);
    s->latency.measured = json_is_true(json_object_get(st, "latency"));
    get_int(st, "gen_len", &s->latency.gen_len);
    get_int(st, "batch", &s->latency.batch);
    get_int(st, "repetitions", &s->latency.repetitions);
    get_int(st, "warmup", &s->latency.warmup);
    if (json_is_array(v = json_object_get(st, "prompt_lens"))) {
        if (!(s->latency.prompt_lens = calloc(json_array_size(v) + 1, sizeof(int64_t))))
            r->oom = 1;
        for (size_t i = 0; s->latency.prompt_lens && i < json_array_size(v); i++)
            if (json_is_integer(e = json_array_get(v, i)))
                s->latency.prompt_lens[s->latency.n_prompt_lens++] = json_integer_value(e);
    }
    if (json_is_object(v = json_object_get(st, "calibration"))) {
        json_t *ov = json_object_get(v, "overlap");
        s->calibration.file = get_str(r, v, "file");
        s->calibration.sha256 = get_str(r, v, "sha256");
        get_int(v, "sequences", &s->calibration.sequences);
        get_int(v, "seq_len", &s->calibration.seq_len);
        /* the counts come as a pair: one without the other says nothing */
        if (json_is_object(ov) && json_is_integer(json_object_get(ov, "items")) &&
            json_is_integer(json_object_get(ov, "ngram"))) {
            get_int(ov, "items", &s->calibration.overlap_items);
            get_int(ov, "ngram", &s->calibration.overlap_ngram);
            get_int(ov, "of", &s->calibration.overlap_of);
        }
    }
}

static void read_policy(struct reader *r, json_t *v, struct qb_settings *s)
{
    json_t *cf = json_object_get(v, "confidence"), *b = json_object_get(v, "bound");
    if (json_is_number(cf)) {
        double c = json_number_value(cf);
        if (c > 0.0 && c < 1.0)
            s->policy.confidence = c;
        else
            warnf(r, "policy confidence %g is not between 0 and 1; using 0.95", c);
    }
    if (json_is_string(b)) {
        const char *bs = json_string_value(b);
        if (!strcmp(bs, "point"))
            s->policy.bound = QB_BOUND_POINT;
        else if (strcmp(bs, "interval"))
            warnf(r, "unknown policy bound '%s' (interval, point); using interval", bs);
    }
}

static void read_plan(struct reader *r, json_t *st, struct qb_settings *s)
{
    json_t *v;
    s->title = get_str(r, st, "title");
    s->question = get_str(r, st, "question");
    s->template_name = get_str(r, st, "template");
    s->plan = get_str(r, st, "plan");
    if (json_is_object(v = json_object_get(st, "policy")))
        read_policy(r, v, s);
    if (json_is_object(v = json_object_get(st, "tolerances"))) {
        json_t *d = json_object_get(v, "default");
        if (json_is_number(d) && json_number_value(d) >= 0) {
            s->tolerances.has_default = 1;
            s->tolerances.default_points = json_number_value(d);
        } else if (d && !json_is_null(d)) {
            warnf(r, "the default tolerance is not a number >= 0; ignored");
        }
        if (json_is_object(d = json_object_get(v, "slices")))
            read_slices(r, d, &s->tolerances.slices, &s->tolerances.n);
    }
    if (json_is_object(v = json_object_get(st, "flips"))) {
        json_t *d = json_object_get(v, "default");
        if (json_is_number(d) && json_number_value(d) >= 0 && json_number_value(d) <= 100) {
            s->flips.has_default = 1;
            s->flips.default_percent = json_number_value(d);
        } else if (d && !json_is_null(d)) {
            warnf(r, "the default flip limit is not a number from 0 to 100; ignored");
        }
        if (json_is_object(d = json_object_get(v, "slices")))
            read_slices(r, d, &s->flips.slices, &s->flips.n);
    }
    if (json_is_object(v = json_object_get(st, "traffic")))
        read_slices(r, v, &s->traffic.slices, &s->traffic.n);
}

int qb_settings_read(const char *json, struct qb_settings *out, qb_settings_warn_fn warn, void *ctx)
{
    struct reader r = {warn, ctx, 0};
    json_error_t e;
    json_t *st = NULL;

    qb_settings_init(out);
    if (!json)
        return 0;
    if (!(st = json_loads(json, 0, &e))) {
        warnf(&r, "the run's settings are not valid JSON (%s); using the defaults", e.text);
        return 0;
    }
    if (!json_is_object(st)) {
        warnf(&r, "the run's settings are not a JSON object; using the defaults");
        json_decref(st);
        return 0;
    }
    read_run(&r, st, out);
    read_plan(&r, st, out);
    json_decref(st);
    if (r.oom) {
        qb_settings_release(out);
        return qb_err(QB_ENOMEM, "out of memory reading the run's settings");
    }
    return 0;
}
