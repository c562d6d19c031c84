/* settings: what a plan decides that the run and the analysis both need -- the brief's title
 * and question, latency settings, calibration, per-slice tolerances and traffic, the decision
 * policy -- as one struct, and its JSON form in the store (runs.settings_json). The plan fills
 * it (collector/run/plan.c), the run completes it with what it decided (the configs it runs,
 * prompt lengths capped to the context, the calibration file's hash) and writes it with
 * qb_settings_write; the analysis reads it back with qb_settings_read. This module is the only
 * code that knows the JSON keys.
 *
 *     struct qb_settings st;
 *     qb_settings_init(&st);                 // defaults: nothing given, policy 95% / interval
 *     st.latency.gen_len = 128;              // ... (borrowed strings are fine for writing)
 *     char *json = NULL;
 *     if ((rc = qb_settings_write(&st, &json)) < 0) return rc;   // free(json)
 *
 *     struct qb_settings back;               // owned: qb_settings_release(&back)
 *     if ((rc = qb_settings_read(json, &back, on_warning, ctx)) < 0) return rc;
 *
 * The JSON form, compact with sorted keys (the same bytes as runs written before this module;
 * batch, repetitions and warmup are new and absent from older runs):
 *   {"configs":["f32",..], "baseline":"f32", "threads":N, "topk":32, "latency":true,
 *    "gen_len":128, "prompt_lens":[128,512], "batch":4, "repetitions":5, "warmup":1,
 *    "calibration":{"file":"..","sha256":"..","sequences":128,"seq_len":512,
 *                   "overlap":{"ngram":8,"items":3,"of":1200}},       only when sha256 is set
 *    "title":"..."|null, "question":"..."|null, "template":"leadership"|null,   plan keys:
 *    "plan":"path.yaml",                                                  written only when
 *    "tolerances":{"default":1.0|null, "slices":{"math":2.0, ...}},       plan is set (a run
 *    "flips":{"default":10.0|null, "slices":{"code":20.0}},  only when    from a plan file)
 *                                                  the plan names flips
 *    "traffic":{"chat":0.5, "math":0.5}|{},  shares summing to 1
 *    "policy":{"confidence":0.95, "bound":"interval"|"point"}}
 * Reading accepts any subset of these keys (older runs, runs from flags): what is absent keeps
 * the qb_settings_init default. */
#ifndef QB_SETTINGS_H
#define QB_SETTINGS_H

#include <stdint.h>

enum qb_settings_bound {
    QB_BOUND_INTERVAL, /* decide on the pessimistic end of the confidence interval */
    QB_BOUND_POINT,    /* decide on the point estimate */
};

/* One slice's number: a tolerance in accuracy points, or a normalised traffic share. Read back
 * from a store, a value that is not a number is NAN, and `is_null` is set when it was JSON null:
 * the analysis warns about unusable values, but a null tolerance only means "the default". */
struct qb_settings_slice {
    char *slice;
    double value;
    int is_null;
};

struct qb_settings {
    /* the brief's text; NULL when absent */
    char *title, *question, *template_name;
    char *plan; /* the plan file as given to qbrief run; NULL for a run from flags */

    /* what the run measured (filled by the run, not the plan): canonical specs, the baseline
     * first; topk = baseline top-k stored per scored position */
    char **configs;
    int64_t n_configs;
    char *baseline;
    int64_t threads; /* 0: the engine's default */
    int64_t topk;

    struct {
        int measured;         /* the run timed the configs (0 with --no-latency) */
        int64_t *prompt_lens; /* tokens; the run records them capped to the context */
        int64_t n_prompt_lens;
        int64_t gen_len;     /* tokens generated per timed request */
        int64_t batch;       /* requests per timed batch */
        int64_t repetitions; /* timed repetitions per setting */
        int64_t warmup;      /* untimed repetitions first */
    } latency;

    struct {
        char *file;        /* NULL when the run is not calibrated */
        char *sha256;      /* set by the run; the JSON carries calibration only when set */
        int64_t sequences; /* sequences of seq_len tokens drawn from file */
        int64_t seq_len;
        /* suite items sharing a run of overlap_ngram words with the text (of overlap_of);
         * overlap_items -1 when not checked */
        int64_t overlap_ngram, overlap_items, overlap_of;
    } calibration;

    struct {
        struct qb_settings_slice *slices; /* points of accuracy loss tolerated, >= 0 */
        int64_t n;
        int has_default;
        double default_points; /* for slices not listed; meaningful when has_default */
    } tolerances;

    struct {
        struct qb_settings_slice *slices; /* percent of a slice's answers a config may change
                                           * (right -> wrong plus wrong -> right), 0..100 */
        int64_t n;
        int has_default;
        double default_percent; /* for slices not listed; meaningful when has_default */
    } flips;

    struct {
        struct qb_settings_slice *slices; /* shares normalised to sum to 1; n == 0 when absent */
        int64_t n;
    } traffic;

    struct {
        double confidence; /* in (0, 1) */
        enum qb_settings_bound bound;
    } policy;
};

/* Zeroes s and sets the defaults of a run that says nothing: confidence 0.95, bound interval,
 * no default tolerance or flip limit, overlap not checked. */
void qb_settings_init(struct qb_settings *s);

/* Frees what s owns (filled by qb_settings_read, or by a plan) and zeroes it; no-op on NULL.
 * Not for a struct whose strings are borrowed. */
void qb_settings_release(struct qb_settings *s);

/* The JSON form of s (see above) into *out, malloc'd: free it. s is only read, so its strings
 * may be borrowed. 0, or QB_ENOMEM. */
int qb_settings_write(const struct qb_settings *s, char **out);

/* Called with each value qb_settings_read cannot use (msg is borrowed for the call). */
typedef void (*qb_settings_warn_fn)(void *ctx, const char *msg);

/* Reads a run's settings JSON (NULL: none) into *out, which owns everything in it afterwards
 * (qb_settings_release). Settings are read leniently, as the analysis has always read them:
 * a document that is not a JSON object, a policy confidence outside (0, 1), an unknown policy
 * bound or a default tolerance that is not a number >= 0 is passed to warn (may be NULL) and
 * its default kept; keys of the wrong type are ignored; per-slice values are kept as given
 * (NAN when not a number), for the caller to judge against its slices. 0, or QB_ENOMEM (then
 * *out is released). */
int qb_settings_read(const char *json, struct qb_settings *out, qb_settings_warn_fn warn,
                     void *ctx);

/* The entry of `slice` in one of s's slice lists (tolerances, flips or traffic); NULL when
 * absent. */
const struct qb_settings_slice *qb_settings_find(const struct qb_settings_slice *slices, int64_t n,
                                                 const char *slice);

#endif
