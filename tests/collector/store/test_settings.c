/* test_settings: struct qb_settings to and from the store's JSON -- every field survives a
 * write and a read; the bytes written are the ones runs stored before the settings module
 * (plus batch, repetitions and warmup); settings_json strings stored by the previous version
 * (a plan run and a flag run, copied verbatim from their stores) read back as they always
 * did; and values that cannot be used are warned about in the order analysis reports them. */
#include "collector/store/settings.h"
#include "kernels/base/err.h"
#include "tests/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The demo plan's run as the previous version stored it (examples/demo/plan.yaml). */
static const char old_plan_run[] =
    "{\"baseline\":\"f32\",\"calibration\":{\"file\":\"examples/demo/calib.txt\",\"overlap\":{"
    "\"items\":266,\"ngram\":8,\"of\":1200},\"seq_len\":256,\"sequences\":32,\"sha256\":"
    "\"e5e6c6d5cb967efab0c8283bdcf8c3c7474596187c372aad6b7b4368f83dfe77\"},\"configs\":[\"f32\","
    "\"bf16\",\"fp8\",\"w8a8\",\"w8a8-smooth\",\"w4g128\",\"w4g128-gptq\",\"w4g128-awq\",\"w4g32\","
    "\"w4g32-gptq\",\"w3g64\",\"w3g64-gptq\",\"w2g32\"],\"gen_len\":32,\"latency\":true,\"plan\":"
    "\"examples/demo/plan.yaml\",\"policy\":{\"bound\":\"interval\",\"confidence\":0."
    "94999999999999996},\"prompt_lens\":[64,256],\"question\":\"Which precision serves all six "
    "skills within tolerance at the least memory?\",\"template\":null,\"threads\":1,\"title\":"
    "\"Quantizing the qbrief demo model\",\"tolerances\":{\"default\":2.0,\"slices\":{"
    "\"arithmetic\":2.0,\"chat\":3.0,\"code\":2.0,\"facts\":2.0,\"json\":2.0,\"retrieval\":2.0}},"
    "\"topk\":32,\"traffic\":{\"arithmetic\":0.050000000000000003,\"chat\":0.40000000000000002,"
    "\"code\":0.14999999999999999,\"facts\":0.10000000000000001,\"json\":0.14999999999999999,"
    "\"retrieval\":0.14999999999999999}}";

/* A run from flags (qbrief run --model .. --configs f32,w8 --no-latency), previous version. */
static const char old_flag_run[] = "{\"baseline\":\"f32\",\"configs\":[\"f32\",\"w8\"],\"gen_len\":"
                                   "128,\"latency\":false,\"prompt_lens\":[128,385],\"threads\":0,"
                                   "\"topk\":32}";

static double share(const struct qb_settings *s, const char *slice)
{
    const struct qb_settings_slice *e = qb_settings_find(s->traffic.slices, s->traffic.n, slice);
    return e ? e->value : -1;
}

static double tol(const struct qb_settings *s, const char *slice)
{
    const struct qb_settings_slice *e =
        qb_settings_find(s->tolerances.slices, s->tolerances.n, slice);
    return e ? e->value : -1;
}

/* warnings collected in order, joined by '|' */
struct warns {
    char text[2048];
    int n;
};

static void on_warn(void *ctx, const char *msg)
{
    struct warns *w = ctx;
    size_t len = strlen(w->text);
    snprintf(w->text + len, sizeof w->text - len, "%s%s", w->n++ ? "|" : "", msg);
}

static void test_old_plan_run(void)
{
    struct qb_settings s;
    struct warns w = {"", 0};
    char *again = NULL;

    CHECK(qb_settings_read(old_plan_run, &s, on_warn, &w) == 0);
    CHECK(w.n == 0);
    CHECK(s.title && !strcmp(s.title, "Quantizing the qbrief demo model"));
    CHECK(s.question && strstr(s.question, "six skills"));
    CHECK(s.template_name == NULL);
    CHECK(s.plan && !strcmp(s.plan, "examples/demo/plan.yaml"));
    CHECK(s.n_configs == 13 && !strcmp(s.configs[0], "f32") && !strcmp(s.configs[12], "w2g32"));
    CHECK(s.baseline && !strcmp(s.baseline, "f32"));
    CHECK(s.threads == 1 && s.topk == 32);
    CHECK(s.latency.measured == 1 && s.latency.gen_len == 32);
    CHECK(s.latency.n_prompt_lens == 2 && s.latency.prompt_lens[0] == 64 &&
          s.latency.prompt_lens[1] == 256);
    /* not recorded before: zero, "unknown" */
    CHECK(s.latency.batch == 0 && s.latency.repetitions == 0 && s.latency.warmup == 0);
    CHECK(s.calibration.file && !strcmp(s.calibration.file, "examples/demo/calib.txt"));
    CHECK(s.calibration.sha256 && !strncmp(s.calibration.sha256, "e5e6c6d5", 8));
    CHECK(s.calibration.sequences == 32 && s.calibration.seq_len == 256);
    CHECK(s.calibration.overlap_ngram == 8 && s.calibration.overlap_items == 266 &&
          s.calibration.overlap_of == 1200);
    CHECK(s.tolerances.has_default);
    CHECK_NEAR(s.tolerances.default_points, 2.0, 0);
    CHECK(s.tolerances.n == 6);
    CHECK_NEAR(tol(&s, "chat"), 3.0, 0);
    CHECK_NEAR(tol(&s, "facts"), 2.0, 0);
    CHECK(s.traffic.n == 6 && !strcmp(s.traffic.slices[0].slice, "arithmetic"));
    CHECK_NEAR(share(&s, "chat"), 0.4, 0);
    CHECK_NEAR(share(&s, "arithmetic"), 0.05, 0);
    CHECK_NEAR(s.policy.confidence, 0.95, 0);
    CHECK(s.policy.bound == QB_BOUND_INTERVAL);

    /* written back: the same bytes, with the three keys this version adds */
    CHECK(qb_settings_write(&s, &again) == 0 && again);
    if (again) {
        const char *p = again;
        CHECK(strstr(again, "\"batch\":0,"));
        CHECK(strstr(again, "\"repetitions\":0,"));
        CHECK(strstr(again, "\"warmup\":0}"));
        /* drop them and compare */
        char buf[sizeof old_plan_run + 64];
        size_t k = 0;
        while (*p && k + 1 < sizeof buf) {
            if (!strncmp(p, "\"batch\":0,", 10))
                p += 10;
            else if (!strncmp(p, "\"repetitions\":0,", 16))
                p += 16;
            else if (!strncmp(p, ",\"warmup\":0", 11))
                p += 11;
            else
                buf[k++] = *p++;
        }
        buf[k] = 0;
        CHECK(!strcmp(buf, old_plan_run));
        if (strcmp(buf, old_plan_run))
            fprintf(stderr, "  got  %s\n  want %s\n", buf, old_plan_run);
    }
    free(again);
    qb_settings_release(&s);
}

static void test_old_flag_run(void)
{
    struct qb_settings s;
    struct warns w = {"", 0};
    char *again = NULL;

    CHECK(qb_settings_read(old_flag_run, &s, on_warn, &w) == 0);
    CHECK(w.n == 0);
    CHECK(s.plan == NULL && s.title == NULL && s.question == NULL);
    CHECK(s.n_configs == 2 && !strcmp(s.configs[1], "w8"));
    CHECK(s.latency.measured == 0 && s.latency.gen_len == 128 && s.latency.n_prompt_lens == 2);
    CHECK(s.calibration.file == NULL && s.calibration.sha256 == NULL &&
          s.calibration.overlap_items == -1);
    /* what a run without a plan gets: no tolerances, no traffic, 95% / interval */
    CHECK(s.tolerances.n == 0 && !s.tolerances.has_default && s.traffic.n == 0);
    CHECK_NEAR(s.policy.confidence, 0.95, 0);
    CHECK(s.policy.bound == QB_BOUND_INTERVAL);
    /* no plan: no plan keys written */
    CHECK(qb_settings_write(&s, &again) == 0 && again);
    if (again)
        CHECK(!strcmp(again, "{\"baseline\":\"f32\",\"batch\":0,\"configs\":[\"f32\",\"w8\"],"
                             "\"gen_len\":128,\"latency\":false,\"prompt_lens\":[128,385],"
                             "\"repetitions\":0,\"threads\":0,\"topk\":32,\"warmup\":0}"));
    free(again);
    qb_settings_release(&s);
}

/* Every field set, written and read back equal (slices compared by name: keys are sorted). */
static void test_round_trip(void)
{
    char *cfgs[] = {"bf16", "w4g32", "w2g32"};
    int64_t lens[] = {16, 1024, 7};
    struct qb_settings_slice tols[] = {{"math", 0.5, 0}, {"chat", 2.0, 0}};
    struct qb_settings_slice mix[] = {{"chat", 0.75, 0}, {"math", 0.25, 0}, {"code", 0, 0}};
    struct qb_settings s, b;
    char *json = NULL;

    qb_settings_init(&s);
    s.title = "Quantize: \"the\" 7B model";
    s.question = "Should we serve int4?";
    s.template_name = "leadership";
    s.plan = "plans/p.yaml";
    s.configs = cfgs;
    s.n_configs = 3;
    s.baseline = "bf16";
    s.threads = 12;
    s.topk = 32;
    s.latency.measured = 1;
    s.latency.prompt_lens = lens;
    s.latency.n_prompt_lens = 3;
    s.latency.gen_len = 64;
    s.latency.batch = 8;
    s.latency.repetitions = 7;
    s.latency.warmup = 0;
    s.calibration.file = "c.txt";
    s.calibration.sha256 = "00ff";
    s.calibration.sequences = 64;
    s.calibration.seq_len = 256;
    s.calibration.overlap_ngram = 8;
    s.calibration.overlap_items = 3;
    s.calibration.overlap_of = 500;
    s.tolerances.slices = tols;
    s.tolerances.n = 2;
    s.tolerances.has_default = 1;
    s.tolerances.default_points = 1.5;
    s.traffic.slices = mix;
    s.traffic.n = 3;
    s.policy.confidence = 0.9;
    s.policy.bound = QB_BOUND_POINT;

    CHECK(qb_settings_write(&s, &json) == 0 && json);
    CHECK(qb_settings_read(json, &b, NULL, NULL) == 0);
    CHECK(b.title && !strcmp(b.title, s.title));
    CHECK(b.question && !strcmp(b.question, s.question));
    CHECK(b.template_name && !strcmp(b.template_name, "leadership"));
    CHECK(b.plan && !strcmp(b.plan, "plans/p.yaml"));
    CHECK(b.n_configs == 3);
    for (int64_t i = 0; i < 3 && i < b.n_configs; i++)
        CHECK(!strcmp(b.configs[i], cfgs[i]));
    CHECK(b.baseline && !strcmp(b.baseline, "bf16"));
    CHECK(b.threads == 12 && b.topk == 32);
    CHECK(b.latency.measured == 1 && b.latency.n_prompt_lens == 3);
    for (int64_t i = 0; i < 3 && i < b.latency.n_prompt_lens; i++)
        CHECK(b.latency.prompt_lens[i] == lens[i]);
    CHECK(b.latency.gen_len == 64 && b.latency.batch == 8 && b.latency.repetitions == 7 &&
          b.latency.warmup == 0);
    CHECK(b.calibration.file && !strcmp(b.calibration.file, "c.txt"));
    CHECK(b.calibration.sha256 && !strcmp(b.calibration.sha256, "00ff"));
    CHECK(b.calibration.sequences == 64 && b.calibration.seq_len == 256);
    CHECK(b.calibration.overlap_ngram == 8 && b.calibration.overlap_items == 3 &&
          b.calibration.overlap_of == 500);
    CHECK(b.tolerances.n == 2 && b.tolerances.has_default);
    CHECK(b.tolerances.default_points == 1.5);
    CHECK(tol(&b, "math") == 0.5 && tol(&b, "chat") == 2.0);
    CHECK(b.traffic.n == 3);
    CHECK(share(&b, "chat") == 0.75 && share(&b, "math") == 0.25 && share(&b, "code") == 0);
    CHECK(b.policy.confidence == 0.9 && b.policy.bound == QB_BOUND_POINT);
    free(json);
    qb_settings_release(&b);

    /* no default tolerance: written as null, read back as none */
    s.tolerances.has_default = 0;
    CHECK(qb_settings_write(&s, &json) == 0 && json && strstr(json, "\"default\":null"));
    CHECK(qb_settings_read(json, &b, NULL, NULL) == 0 && !b.tolerances.has_default);
    free(json);
    qb_settings_release(&b);
}

/* Values analysis cannot use: warned about in order (policy, then the default tolerance) and
 * left at their defaults; per-slice values kept for the caller to judge. */
static void test_lenient_read(void)
{
    struct qb_settings s;
    struct warns w = {"", 0};

    CHECK(qb_settings_read("{\"title\":7,\"tolerances\":{\"default\":\"x\",\"slices\":{"
                           "\"big\":-3,\"small\":null,\"odd\":\"y\"}},\"traffic\":{\"a\":\"z\","
                           "\"b\":2},\"policy\":{\"confidence\":7,\"bound\":\"weird\"},"
                           "\"prompt_lens\":[8,\"x\",16],\"configs\":[\"f32\",3]}",
                           &s, on_warn, &w) == 0);
    CHECK(w.n == 3);
    CHECK(!strcmp(w.text, "policy confidence 7 is not between 0 and 1; using 0.95|"
                          "unknown policy bound 'weird' (interval, point); using interval|"
                          "the default tolerance is not a number >= 0; ignored"));
    CHECK(s.title == NULL);
    CHECK_NEAR(s.policy.confidence, 0.95, 0);
    CHECK(s.policy.bound == QB_BOUND_INTERVAL && !s.tolerances.has_default);
    CHECK(s.tolerances.n == 3);
    if (s.tolerances.n == 3) {
        CHECK(s.tolerances.slices[0].value == -3 && !s.tolerances.slices[0].is_null);
        CHECK(isnan(s.tolerances.slices[1].value) && s.tolerances.slices[1].is_null);
        CHECK(isnan(s.tolerances.slices[2].value) && !s.tolerances.slices[2].is_null);
    }
    CHECK(s.traffic.n == 2 && isnan(share(&s, "a")) && share(&s, "b") == 2);
    CHECK(s.latency.n_prompt_lens == 2 && s.latency.prompt_lens[1] == 16);
    CHECK(s.n_configs == 1);
    qb_settings_release(&s);

    w.text[0] = 0;
    w.n = 0;
    CHECK(qb_settings_read("{not json", &s, on_warn, &w) == 0);
    CHECK(w.n == 1 && strstr(w.text, "the run's settings are not valid JSON ("));
    CHECK(s.title == NULL && s.policy.confidence == 0.95);
    qb_settings_release(&s);
    w.text[0] = 0;
    w.n = 0;
    CHECK(qb_settings_read("[1,2]", &s, on_warn, &w) == 0);
    CHECK(!strcmp(w.text, "the run's settings are not a JSON object; using the defaults"));
    qb_settings_release(&s);
    /* none at all: the defaults, silently */
    w.n = 0;
    CHECK(qb_settings_read(NULL, &s, on_warn, &w) == 0 && w.n == 0);
    CHECK(s.calibration.overlap_items == -1 && s.policy.confidence == 0.95);
    qb_settings_release(&s);
    qb_settings_release(NULL);
}

int main(void)
{
    RUN(test_old_plan_run);
    RUN(test_old_flag_run);
    RUN(test_round_trip);
    RUN(test_lenient_read);
    return check_summary();
}
