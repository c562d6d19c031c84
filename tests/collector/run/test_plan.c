/* test_plan: plan files (docs/plan-format.md) load with every value, default and resolved
 * path right, and each class of mistake is refused with 'path':line:col and the reason. */
#include "kernels/base/err.h"
#include "collector/run/plan.h"
#include "tests/check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char plan_path[512];

/* Writes text to <tmpdir>/<name> and returns its path (static buffer). */
static const char *write_plan(const char *name, const char *text)
{
    FILE *f;
    snprintf(plan_path, sizeof plan_path, "%s/%s", check_tmpdir(), name);
    f = fopen(plan_path, "wb");
    if (!f)
        return plan_path;
    fputs(text, f);
    fclose(f);
    return plan_path;
}

static const char full_plan[] = "# every key\n"
                                "title: \"Quantize: the 7B model\"\n"
                                "question: Should we serve int4?\n"
                                "models:\n"
                                "  - m/model.gguf\n"
                                "  - /abs/other.gguf\n"
                                "tokenizer: tok/tokenizer.json\n"
                                "suite: suites/s.csv\n"
                                "prompt_template: |\n"
                                "  Question: {prompt}\n"
                                "  Answer:\n"
                                "calibration:\n"
                                "  file: calib.txt\n"
                                "  sequences: 64\n"
                                "  seq_len: 256\n"
                                "configs: [w4g128-rtn, bf16, w8a8, 'w4g32+output=w8']\n"
                                "baseline: bf16\n"
                                "latency:\n"
                                "  prompt_lens: [16, 1024]\n"
                                "  gen_len: 64\n"
                                "  batch: 8\n"
                                "  repetitions: 7\n"
                                "  warmup: 0\n"
                                "tolerances:\n"
                                "  default: 1.5\n"
                                "  math: 0.5\n"
                                "  chat: 2e0\n"
                                "traffic:\n"
                                "  chat: 3\n"
                                "  math: 1\n"
                                "  code: 0\n"
                                "policy:\n"
                                "  confidence: 0.9\n"
                                "  bound: point\n"
                                "threads: 12\n"
                                "name: nightly-7b\n"
                                "db: out/q.db\n"
                                "template: default\n"
                                "output: /tmp/brief.pdf\n";

static void test_full_plan(void)
{
    struct qb_plan *p = NULL;
    const char *path = write_plan("full.yaml", full_plan);
    char want[600];
    const char *dir = check_tmpdir();
    int rc = qb_plan_load(path, &p);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0 && p);
    if (!p)
        return;
    CHECK(!strcmp(p->path, path));
    CHECK(!strcmp(p->settings.title, "Quantize: the 7B model"));
    CHECK(!strcmp(p->settings.question, "Should we serve int4?"));
    CHECK(p->n_models == 2);
    snprintf(want, sizeof want, "%s/m/model.gguf", dir);
    CHECK(!strcmp(p->models[0], want));
    CHECK(!strcmp(p->models[1], "/abs/other.gguf"));
    snprintf(want, sizeof want, "%s/tok/tokenizer.json", dir);
    CHECK(!strcmp(p->tokenizer, want));
    snprintf(want, sizeof want, "%s/suites/s.csv", dir);
    CHECK(!strcmp(p->suite, want));
    CHECK(!strcmp(p->prompt_template, "Question: {prompt}\nAnswer:\n"));
    snprintf(want, sizeof want, "%s/calib.txt", dir);
    CHECK(p->settings.calibration.file && !strcmp(p->settings.calibration.file, want));
    CHECK(p->settings.calibration.sequences == 64 && p->settings.calibration.seq_len == 256);
    /* canonical names, in the plan's order; the baseline is one of them */
    CHECK(p->n_configs == 4);
    if (p->n_configs == 4) {
        CHECK(!strcmp(p->configs[0].name, "w4g128"));
        CHECK(!strcmp(p->configs[1].name, "bf16"));
        CHECK(!strcmp(p->configs[2].name, "w8a8"));
        CHECK(!strcmp(p->configs[3].name, "w4g32+output=w8"));
        CHECK(p->configs[3].spec.n_overrides == 1);
    }
    CHECK(p->baseline == 1);
    CHECK(p->settings.latency.n_prompt_lens == 2 && p->settings.latency.prompt_lens[0] == 16 &&
          p->settings.latency.prompt_lens[1] == 1024);
    CHECK(p->settings.latency.gen_len == 64 && p->settings.latency.batch == 8 &&
          p->settings.latency.repetitions == 7 && p->settings.latency.warmup == 0);
    CHECK(p->settings.tolerances.n == 2 && p->settings.tolerances.has_default);
    CHECK_NEAR(p->settings.tolerances.default_points, 1.5, 0);
    CHECK_NEAR(qb_plan_tolerance(p, "math"), 0.5, 0);
    CHECK_NEAR(qb_plan_tolerance(p, "chat"), 2.0, 0);
    CHECK_NEAR(qb_plan_tolerance(p, "other"), 1.5, 0);
    CHECK(p->settings.traffic.n == 3);
    if (p->settings.traffic.n == 3) {
        CHECK(!strcmp(p->settings.traffic.slices[0].slice, "chat"));
        CHECK_NEAR(p->settings.traffic.slices[0].value, 0.75, 1e-15);
        CHECK_NEAR(p->settings.traffic.slices[1].value, 0.25, 1e-15);
        CHECK_NEAR(p->settings.traffic.slices[2].value, 0.0, 0);
    }
    CHECK_NEAR(p->settings.policy.confidence, 0.9, 0);
    CHECK(p->settings.policy.bound == QB_BOUND_POINT);
    CHECK(p->settings.threads == 12);
    CHECK(!strcmp(p->name, "nightly-7b"));
    snprintf(want, sizeof want, "%s/out/q.db", dir);
    CHECK(!strcmp(p->db, want));
    CHECK(!strcmp(p->settings.template_name, "default"));
    CHECK(!strcmp(p->output, "/tmp/brief.pdf"));
    qb_plan_free(p);
}

/* plan -> the store's JSON -> settings: everything the plan decided reads back equal (slices
 * by name: the JSON's keys are sorted). The run's own fields are set as qb_run sets them. */
static void test_settings_round_trip(void)
{
    struct qb_plan *p = NULL;
    struct qb_settings run, back;
    char *names[8], *json = NULL;

    CHECK(qb_plan_load(write_plan("full.yaml", full_plan), &p) == 0 && p);
    if (!p)
        return;
    run = p->settings; /* borrowed, as qb_run completes it */
    for (int64_t i = 0; i < p->n_configs && i < 8; i++)
        names[i] = p->configs[i].name;
    run.configs = names;
    run.n_configs = p->n_configs;
    run.baseline = p->configs[p->baseline].name;
    run.topk = 32;
    run.latency.measured = 1;
    run.calibration.sha256 = "e5e6";
    run.calibration.overlap_ngram = 8;
    run.calibration.overlap_items = 0;
    run.calibration.overlap_of = 10;
    CHECK(qb_settings_write(&run, &json) == 0 && json);
    CHECK(qb_settings_read(json, &back, NULL, NULL) == 0);
    const struct qb_settings *a = &p->settings, *b = &back;
    CHECK(b->title && !strcmp(b->title, a->title));
    CHECK(b->question && !strcmp(b->question, a->question));
    CHECK(b->template_name && !strcmp(b->template_name, a->template_name));
    CHECK(b->plan && !strcmp(b->plan, p->path));
    CHECK(b->threads == 12 && b->threads == a->threads);
    CHECK(b->n_configs == 4 && !strcmp(b->configs[1], "bf16") && !strcmp(b->baseline, "bf16"));
    CHECK(b->calibration.file && !strcmp(b->calibration.file, a->calibration.file));
    CHECK(b->calibration.sequences == a->calibration.sequences &&
          b->calibration.seq_len == a->calibration.seq_len);
    CHECK(b->latency.n_prompt_lens == a->latency.n_prompt_lens);
    for (int64_t i = 0; i < a->latency.n_prompt_lens && i < b->latency.n_prompt_lens; i++)
        CHECK(b->latency.prompt_lens[i] == a->latency.prompt_lens[i]);
    CHECK(b->latency.gen_len == a->latency.gen_len && b->latency.batch == a->latency.batch &&
          b->latency.repetitions == a->latency.repetitions &&
          b->latency.warmup == a->latency.warmup);
    CHECK(b->tolerances.n == a->tolerances.n &&
          b->tolerances.has_default == a->tolerances.has_default);
    CHECK(b->tolerances.default_points == a->tolerances.default_points);
    for (int64_t i = 0; i < a->tolerances.n; i++) {
        const struct qb_settings_slice *e =
            qb_settings_find(b->tolerances.slices, b->tolerances.n, a->tolerances.slices[i].slice);
        CHECK(e && e->value == a->tolerances.slices[i].value);
    }
    CHECK(b->traffic.n == a->traffic.n);
    for (int64_t i = 0; i < a->traffic.n; i++) {
        const struct qb_settings_slice *e =
            qb_settings_find(b->traffic.slices, b->traffic.n, a->traffic.slices[i].slice);
        CHECK(e && e->value == a->traffic.slices[i].value); /* exact: 17 digits */
    }
    CHECK(b->policy.confidence == a->policy.confidence && b->policy.bound == QB_BOUND_POINT);
    free(json);
    qb_settings_release(&back);
    qb_plan_free(p);
}

/* flips: per slice and a default, like tolerances; stored through the settings and read
 * back; absent from the JSON of a plan without them; out-of-range values named */
static void test_flips(void)
{
    struct qb_plan *p = NULL;
    struct qb_settings b;
    char *json = NULL;
    const char *path = write_plan("flips.yaml", "title: t\nmodels: a.bin\nsuite: s.csv\n"
                                                "configs: [w8]\nflips:\n  default: 10\n"
                                                "  code: 25.5\n");
    CHECK(qb_plan_load(path, &p) == 0 && p);
    if (!p)
        return;
    CHECK(p->settings.flips.has_default && p->settings.flips.default_percent == 10);
    CHECK(p->settings.flips.n == 1 && !strcmp(p->settings.flips.slices[0].slice, "code") &&
          p->settings.flips.slices[0].value == 25.5);
    CHECK(qb_settings_write(&p->settings, &json) == 0 && json);
    CHECK(json && strstr(json, "\"flips\":{\"default\":10.0,\"slices\":{\"code\":25.5}}"));
    CHECK(json && qb_settings_read(json, &b, NULL, NULL) == 0);
    if (json) {
        CHECK(b.flips.has_default && b.flips.default_percent == 10 && b.flips.n == 1 &&
              b.flips.slices[0].value == 25.5);
        qb_settings_release(&b);
    }
    free(json);
    qb_plan_free(p);
    p = NULL;
    json = NULL;
    path = write_plan("plain.yaml", "title: t\nmodels: a.bin\nsuite: s.csv\nconfigs: [w8]\n");
    CHECK(qb_plan_load(path, &p) == 0 && p && !p->settings.flips.has_default);
    CHECK(p && qb_settings_write(&p->settings, &json) == 0 && json && !strstr(json, "\"flips\""));
    free(json);
    qb_plan_free(p);
    p = NULL;
    path = write_plan("badflips.yaml",
                      "title: t\nmodels: a.bin\nsuite: s.csv\nconfigs: [w8]\nflips:\n  a: 101\n");
    CHECK(qb_plan_load(path, &p) < 0 && !p && strstr(qb_errmsg(), "'flips.a' is 101"));
}

static void test_defaults(void)
{
    struct qb_plan *p = NULL;
    const char *path = write_plan("min.yaml", "title: t\nmodels: a.bin\nsuite: s.csv\n"
                                              "configs: [w8, w4g32-sym]\n");
    CHECK(qb_plan_load(path, &p) == 0 && p);
    if (!p)
        return;
    CHECK(p->n_models == 1 && strstr(p->models[0], "/a.bin"));
    CHECK(p->settings.question == NULL && p->tokenizer == NULL &&
          p->settings.calibration.file == NULL);
    CHECK(!strcmp(p->prompt_template, "{prompt}"));
    {
        /* "chat": the model's chat template, taken as the plan gives it */
        struct qb_plan *q = NULL;
        const char *cp = write_plan("chat.yaml", "title: t\nmodels: a.bin\nsuite: s.csv\n"
                                                 "configs: [f32]\nprompt_template: chat\n");
        CHECK(qb_plan_load(cp, &q) == 0 && q && !strcmp(q->prompt_template, "chat"));
        qb_plan_free(q);
    }
    /* f32 is the default baseline and is prepended when the list lacks it */
    CHECK(p->n_configs == 3 && p->baseline == 0);
    if (p->n_configs == 3) {
        CHECK(!strcmp(p->configs[0].name, "f32"));
        CHECK(!strcmp(p->configs[1].name, "w8"));
        CHECK(!strcmp(p->configs[2].name, "w4g32-sym"));
    }
    CHECK(p->settings.latency.n_prompt_lens == 2 && p->settings.latency.prompt_lens[0] == 128 &&
          p->settings.latency.prompt_lens[1] == 512);
    CHECK(p->settings.latency.gen_len == 128 && p->settings.latency.batch == 4 &&
          p->settings.latency.repetitions == 5 && p->settings.latency.warmup == 1);
    CHECK(p->settings.tolerances.n == 0 && !p->settings.tolerances.has_default);
    CHECK(qb_plan_tolerance(p, "any") < 0);
    CHECK(p->settings.traffic.n == 0);
    CHECK_NEAR(p->settings.policy.confidence, 0.95, 0);
    CHECK(p->settings.policy.bound == QB_BOUND_INTERVAL);
    CHECK(p->settings.threads == 0 && !p->name && !p->db && !p->settings.template_name &&
          !p->output);
    qb_plan_free(p);
}

/* A plan named without a directory keeps its relative paths as written; a calibration
 * given as one path gets the default sizes. */
static void test_plan_in_cwd(void)
{
    char cwd[PATH_MAX];
    struct qb_plan *p = NULL;
    write_plan("cwd.yaml", "title: t\nmodels: a.bin\nsuite: s.csv\nconfigs: [f32]\n"
                           "calibration: c.txt\n");
    if (!getcwd(cwd, sizeof cwd) || chdir(check_tmpdir()) != 0) {
        CHECK(!"chdir to the temporary directory");
        return;
    }
    CHECK(qb_plan_load("cwd.yaml", &p) == 0 && p);
    if (p) {
        CHECK(!strcmp(p->models[0], "a.bin") && !strcmp(p->suite, "s.csv"));
        CHECK(!strcmp(p->settings.calibration.file, "c.txt") &&
              p->settings.calibration.sequences == 128 && p->settings.calibration.seq_len == 512);
        CHECK(p->n_configs == 1 && p->baseline == 0);
    }
    qb_plan_free(p);
    CHECK(chdir(cwd) == 0);
}

static void test_example_plan(void)
{
    struct qb_plan *p = NULL;
    int rc = qb_plan_load("examples/plan-tiny.yaml", &p);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0 && p);
    if (!p)
        return;
    CHECK(!strcmp(p->models[0], "examples/../../shared/models/stories260K/stories260K.bin"));
    CHECK(!strcmp(p->suite, "examples/suites/tiny.csv"));
    CHECK(p->n_configs == 5 && p->baseline == 0);
    if (p->n_configs == 5) {
        const char *want[] = {"f32", "bf16", "w8a8", "w4g32", "w2g32"};
        for (int i = 0; i < 5; i++)
            CHECK(!strcmp(p->configs[i].name, want[i]));
    }
    qb_plan_free(p);
}

/* One plan per class of mistake: rc < 0, *out NULL, and 'path':line:col: then the reason. */
static void test_errors_say_where(void)
{
    static const char *const cases[][3] = {
        {"title: t\nmodels: [a\n", ":3:1:", "yaml syntax error"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\nsuit: s\n", ":5:1:", "unknown key 'suit'"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\nlatency: [1]\n",
         ":5:10:", "'latency' must be a map, not a list"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\nlatency:\n  batch: four\n",
         ":6:10:", "'latency.batch' must be an integer, not 'four'"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\npolicy:\n  confidence: 1\n",
         ":6:15:", "strictly between 0 and 1"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\npolicy:\n  confidence: 0x1p-1\n",
         ":6:15:", "must be a number"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\ntraffic:\n  a: .inf\n",
         ":6:6:", "must be a number"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [w4g64]\nbaseline: f64\n",
         ":5:11:", "unknown config 'f64'"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [bf16, f32, 'bf16-rtn']\n",
         ":4:22:", "same as 'bf16'"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\ntolerances:\n  a: -1\n",
         ":6:6:", "'tolerances.a' is -1"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\ntraffic: {a: 0, b: 0}\n",
         ":5:10:", "all zero"},
        {"title: t\nsuite: s\nconfigs: [f32]\n", ":1:1:", "missing required key 'models'"},
        {"", ":1:1:", "empty"},
        {"title: t\n...\n---\ntitle: u\n", ":3:1:", "second"},
        {"title: t\nmodels: &m a\nsuite: *m\nconfigs: [f32]\n", ":3:8:", "alias"},
        {"title: t\nmodels: a\nmodels: b\n", ":3:1:", "duplicate key 'models'"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\nlatency:\n  warmup: 1\n  warmup: 2\n",
         ":7:3:", "duplicate key 'warmup' in 'latency'"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\nthreads: 3.5\n",
         ":5:10:", "must be an integer"},
        {"title: t\nmodels: {a: 1}\nsuite: s\nconfigs: [f32]\n",
         ":2:9:", "'models' must be a list of model paths"},
        {"title: [t]\nmodels: a\nsuite: s\nconfigs: [f32]\n", ":1:8:", "'title' must be a string"},
        {"title: t\nmodels: a\nsuite: s\nconfigs: [f32]\ncalibration: {sequences: 4}\n",
         ":5:14:", "needs a 'file'"},
        {"title: \"a\\0b\"\nmodels: a\nsuite: s\nconfigs: [f32]\n", ":1:8:", "NUL byte"},
        {"\xef\xbb\xbftitle: t\nmodels: a\nsuite: s\nconfigs: [f32]\nname: \xc3\x28\n",
         ":5:", "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], where[600];
        struct qb_plan *p = (struct qb_plan *)1;
        const char *path;
        int rc;
        snprintf(name, sizeof name, "bad%zu.yaml", i);
        path = write_plan(name, cases[i][0]);
        rc = qb_plan_load(path, &p);
        snprintf(where, sizeof where, "'%s'%s", path, cases[i][1]);
        CHECK(rc < 0 && p == NULL);
        if (!strstr(qb_errmsg(), where) || !strstr(qb_errmsg(), cases[i][2])) {
            fprintf(stderr, "  case %zu: got \"%s\", wanted \"%s\" and \"%s\"\n", i, qb_errmsg(),
                    where, cases[i][2]);
            check_fail(__FILE__, __LINE__, "message names position and reason");
        }
    }
}

int main(void)
{
    RUN(test_full_plan);
    RUN(test_settings_round_trip);
    RUN(test_flips);
    RUN(test_defaults);
    RUN(test_plan_in_cwd);
    RUN(test_example_plan);
    RUN(test_errors_say_where);
    return check_summary();
}
