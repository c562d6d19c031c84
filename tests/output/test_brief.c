/* test_brief: the template language (every directive, errors naming file:line, unknown
 * directives, variables, conditions, tables, lists) and Markdown rendering of a hand-built
 * analysis: the answer sentence, the recommendation table, cliffs in words, caveats and the
 * number formats of shared/BRIEF.md. Also the shipped templates parse and render. */
#include "analysis/analyze.h"
#include "kernels/base/err.h"
#include "output/brief.h"
#include "tests/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- a hand-built analysis */

static char *sdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* 4 configs down the ladder (f32, w8a8, w4g128, w2g32) x 4 slices:
 *   chat        n=400  holds down to w4g128 (-0.4), w2g32 -6.0 (cliff)   -> w4g128, holds
 *   arithmetic  n=240  w8a8 -0.5, w4g128 -9.1 (6.0 to 12.3)          -> w8a8, cliff (hidden)
 *   json        n=300  holds everywhere but w2g32                      -> w4g128, holds
 *   code        n=8    too few items                                   -> f32, undecided
 * traffic 40/20/30/10 %. */
static struct qb_analysis *make_analysis(void)
{
    struct qb_analysis *a = calloc(1, sizeof *a);
    static const char *specs[] = {"f32", "w8a8", "w4g128", "w2g32"};
    static const double bits[] = {32, 8.0, 4.25, 2.5};
    static const char *names[] = {"chat", "arithmetic", "json", "code"};
    static const int64_t ns[] = {400, 240, 300, 8};
    static const double traffic[] = {0.4, 0.2, 0.3, 0.1};
    /* delta (fraction) per slice x config */
    static const double deltas[4][4] = {
        {0, -0.002, -0.004, -0.060},
        {0, -0.005, -0.091, -0.300},
        {0, 0.001, -0.003, -0.050},
        {0, 0.0, -0.125, -0.250},
    };
    static const int64_t recs[] = {2, 1, 2, 0};
    static const enum qb_an_verdict verdicts[] = {QB_VERDICT_HOLDS, QB_VERDICT_HOLDS,
                                                  QB_VERDICT_HOLDS, QB_VERDICT_UNDECIDED};

    a->run_name = sdup("tiny");
    a->title = sdup("Quantizing support-assistant-7B for CPU serving");
    a->question = sdup("Which precision keeps answers right while cutting memory?");
    a->model_path = sdup("/models/support-assistant-7B.gguf");
    a->model_sha256 = sdup("ab12");
    a->architecture = sdup("llama");
    a->model_format = sdup("gguf");
    a->n_params = 6740000000;
    a->suite_path = sdup("suites/support.csv");
    a->suite_sha256 = sdup("cd34");
    a->n_suite_items = 948;
    a->qbrief_version = sdup("0.1.0");
    a->git_commit = sdup("84b94ce");
    a->command_line = sdup("qbrief run plan.yaml");
    a->host = sdup("box");
    a->machine_json = sdup("{\"cpu\":\"Test CPU 9000\",\"cores\":16,\"isa\":\"avx2\"}");
    a->started_at = sdup("2026-11-23T15:00:00Z");
    a->finished_at = sdup("2026-11-23T16:00:00Z");
    a->confidence = 0.95;
    a->policy = QB_AN_INTERVAL;
    a->resamples = 10000;
    a->seed = 20261123u;

    a->n_configs = 4;
    a->configs = calloc(4, sizeof *a->configs);
    for (int i = 0; i < 4; i++) {
        struct qb_an_config *c = &a->configs[i];
        c->spec = sdup(specs[i]);
        c->is_baseline = i == 0;
        c->ladder = i;
        c->bits_per_weight = bits[i];
        c->weight_bytes = (int64_t)(6.74e9 * bits[i] / 8);
        c->quant_seconds = i ? 10.0 * i : NAN;
        c->n_results = 948;
        c->peak_rss_bytes = c->weight_bytes + 500000000;
        c->kv_cache_bytes = 268435456;
        c->mem_context = 2048;
        c->mem_cost = (double)c->peak_rss_bytes;
        c->lat_cost = 100.0 * bits[i] / 32 + 20;
        c->n_lat = 1;
        c->lat = calloc(1, sizeof *c->lat);
        c->lat[0] = (struct qb_an_latency){.prompt_len = 128,
                                           .gen_len = 128,
                                           .batch = 1,
                                           .n_samples = 5,
                                           .ttft_p50 = 400.0 * bits[i] / 32 + 50,
                                           .ttft_p95 = 500,
                                           .ttft_p99 = 520,
                                           .tpot_p50 = c->lat_cost,
                                           .tpot_p95 = c->lat_cost * 1.1,
                                           .tpot_p99 = c->lat_cost * 1.2,
                                           .e2e_p50 = 3000,
                                           .e2e_p95 = 3300,
                                           .e2e_p99 = 3400,
                                           .decode_tok_s_p50 = 1000.0 / c->lat_cost};
    }
    for (int i = 0; i < 4; i++) {
        a->configs[i].mem_saving = 1.0 - a->configs[i].mem_cost / a->configs[0].mem_cost;
        a->configs[i].lat[0].speedup_tpot = a->configs[0].lat_cost / a->configs[i].lat_cost;
        a->configs[i].lat[0].speedup_ttft =
            a->configs[0].lat[0].ttft_p50 / a->configs[i].lat[0].ttft_p50;
    }
    a->baseline = 0;

    a->n_slices = 4;
    a->slices = calloc(4, sizeof *a->slices);
    for (int s = 0; s < 4; s++) {
        struct qb_an_slice *sl = &a->slices[s];
        sl->name = sdup(names[s]);
        sl->n_items = ns[s];
        sl->tolerance = 2.0;
        sl->traffic = traffic[s];
        sl->rec = recs[s];
        sl->verdict = verdicts[s];
        sl->cliff = -1;
        sl->max_flips = 10;
        sl->behaviour = sl->unstable_above = sl->unstable_below = -1;
        sl->cells = calloc(4, sizeof *sl->cells);
        for (int c = 0; c < 4; c++) {
            struct qb_an_cell *cell = &sl->cells[c];
            double d = deltas[s][c], half = 1.0 / sqrt((double)ns[s]) * 0.5;
            cell->n = ns[s];
            cell->acc = 0.8 + d;
            cell->n_correct = (int64_t)llround(cell->acc * (double)ns[s]);
            cell->acc_ci = (struct qb_interval){cell->acc - half, cell->acc + half};
            cell->delta = d;
            cell->delta_ci =
                c ? (struct qb_interval){d - half, d + half} : (struct qb_interval){0, 0};
            cell->mcnemar_p = c ? 0.5 : 1;
            cell->flips_lost = c * 3;
            cell->flips_gained = c;
            cell->flip_rate = (double)(c * 4) / (double)ns[s];
            cell->kl_mean = c ? 0.01 * c * c : NAN;
            cell->kl_p99 = c ? 0.1 * c : NAN;
            cell->top1 = 1 - 0.02 * c;
            cell->ppl = NAN;
            cell->ppl_ratio = NAN;
            cell->mde = s == 3 ? 0.30 : 0.015;
            cell->underpowered = cell->mde * 100 > sl->tolerance;
            cell->significant_loss = -d * 100 > sl->tolerance && d + half < 0;
            cell->within = -(d - half) * 100 <= sl->tolerance;
        }
    }
    /* the arithmetic cliff: 9.1 points (6.0 to 12.3) between w8a8 and w4g128 */
    a->slices[1].cells[2].delta_ci = (struct qb_interval){-0.123, -0.060};
    a->n_cliffs = 2;
    a->cliffs = calloc(2, sizeof *a->cliffs);
    a->cliffs[0] = (struct qb_an_cliff){.slice = 1,
                                        .above = 1,
                                        .below = 2,
                                        .loss = 0.091,
                                        .loss_ci = {0.060, 0.123},
                                        .hides = 1,
                                        .overall_loss = 0.012};
    a->cliffs[1] = (struct qb_an_cliff){.slice = 0,
                                        .above = 2,
                                        .below = 3,
                                        .loss = 0.060,
                                        .loss_ci = {0.035, 0.085},
                                        .hides = 0,
                                        .overall_loss = 0.10};
    a->slices[1].cliff = 0;
    a->slices[0].cliff = 1;

    a->overall.name = sdup("overall");
    a->overall.tolerance = 2.0;
    a->overall.rec = 1;
    a->overall.cliff = -1;
    a->overall.cells = calloc(4, sizeof *a->overall.cells);
    for (int c = 0; c < 4; c++) {
        a->overall.cells[c] = a->slices[0].cells[c];
        a->overall.cells[c].delta = -0.004 * c;
    }
    a->single_config = 1;
    a->single.config = calloc(4, sizeof(int64_t));
    a->routed.config = calloc(4, sizeof(int64_t));
    for (int s = 0; s < 4; s++) {
        a->single.config[s] = 1;
        a->routed.config[s] = recs[s];
    }
    a->single.n_distinct = 1;
    a->single.mem_cost = a->configs[1].mem_cost;
    a->single.mem_ratio = a->configs[1].mem_cost / a->configs[0].mem_cost;
    a->single.tpot_ms = a->configs[1].lat_cost;
    a->single.tpot_ratio = a->configs[1].lat_cost / a->configs[0].lat_cost;
    a->routed.n_distinct = 3;
    /* routing must save memory over the single config for the brief to recommend it */
    a->routed.mem_cost = a->single.mem_cost * 0.9;
    a->routed.mem_ratio = a->routed.mem_cost / a->configs[0].mem_cost;
    a->routed.tpot_ms = 0;
    for (int s = 0; s < 4; s++)
        a->routed.tpot_ms += traffic[s] * a->configs[recs[s]].lat_cost;
    a->routed.tpot_ratio = a->routed.tpot_ms / a->configs[0].lat_cost;
    a->n_results = 4 * 948;
    a->n_missing = 0;
    a->n_warnings = 1;
    a->warnings = calloc(1, sizeof(char *));
    a->warnings[0] = sdup("slice 'code' has 8 items: too few to decide");
    return a;
}

static void free_analysis(struct qb_analysis *a)
{
    if (!a)
        return;
    char **strs[] = {&a->run_name,     &a->title,        &a->question,       &a->template_name,
                     &a->model_path,   &a->model_sha256, &a->architecture,   &a->model_format,
                     &a->suite_path,   &a->suite_sha256, &a->qbrief_version, &a->git_commit,
                     &a->command_line, &a->host,         &a->machine_json,   &a->started_at,
                     &a->finished_at,  &a->calib_file,   &a->calib_sha256,   &a->settings_json};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    for (int64_t i = 0; i < a->n_configs; i++) {
        free(a->configs[i].spec);
        free(a->configs[i].lat);
    }
    free(a->configs);
    for (int64_t i = 0; i < a->n_slices; i++) {
        free(a->slices[i].name);
        free(a->slices[i].cells);
    }
    free(a->slices);
    free(a->overall.name);
    free(a->overall.cells);
    free(a->cliffs);
    free(a->single.config);
    free(a->routed.config);
    for (int64_t i = 0; i < a->n_warnings; i++)
        free(a->warnings[i]);
    free(a->warnings);
    free(a);
}

#ifndef BRIEF_FIXTURE_ONLY

/* ---------------------------------------------------------------- helpers */

static int parse_fails(const char *text, const char *want_in_message)
{
    struct qb_template *t = NULL;
    int rc = qb_template_parse(text, "bad.tmpl", &t);
    int ok = rc == QB_EFORMAT && t == NULL && strstr(qb_errmsg(), want_in_message) != NULL;
    if (!ok)
        fprintf(stderr, "  rc %d, message '%s', wanted '%s'\n", rc, qb_errmsg(), want_in_message);
    qb_template_free(t);
    return ok;
}

/* CHECK that the rendered md holds s; when it does not, md goes to stderr too */
#define CHECK_HAS(md, s)                                                                           \
    do {                                                                                           \
        CHECK(strstr((md), (s)) != NULL);                                                          \
        if (!strstr((md), (s)))                                                                    \
            fprintf(stderr, "%s\n", (md));                                                         \
    } while (0)

/* The Markdown brief of a under the template text; NULL (with the message) when it fails. */
static char *render_with(const struct qb_analysis *a, const char *text)
{
    struct qb_template *t = NULL;
    char *md = NULL;
    if (qb_template_parse(text, "t.tmpl", &t) < 0 ||
        qb_brief_markdown(a, t, "x_files", "2026-11-23", &md) < 0)
        fprintf(stderr, "  render: %s\n", qb_errmsg());
    qb_template_free(t);
    return md;
}

/* The same for the fixture analysis. */
static char *render(const char *text)
{
    struct qb_analysis *a = make_analysis();
    char *md = render_with(a, text);
    free_analysis(a);
    return md;
}

/* routing that would hold more memory than the one config holding everywhere is not what
 * the brief recommends: the answer and the headline numbers are the single config's */
static void test_single_config_when_routing_costs_more(void)
{
    struct qb_analysis *a = make_analysis();
    a->routed.mem_cost = a->single.mem_cost * 2.5; /* f32 + w8a8 + w4g128 loaded side by side */
    char *md = render_with(
        a, "@define and and\n"
           "@define answer_serve serve {{config}} for {{slices}} traffic\n"
           "@define answer_single Serve {{config}} for all traffic: it holds on {{slices}}\n"
           "@lead {{answer}}\n"
           "@p saved {{mem_saving}}; plan {{mem_plan}}\n");
    CHECK(md != NULL);
    if (md) {
        /* arithmetic's own recommendation is w8a8, the single config: it is the slice that needs it
         */
        CHECK(strstr(md, "**Serve w8a8 for all traffic: it holds on arithmetic.**") != NULL);
        CHECK(strstr(md, "saved 74%") != NULL); /* 1 - 7.24e9 / 27.46e9 */
    }
    free(md);
    free_analysis(a);
}

/* ---------------------------------------------------------------- the parser */

static void test_parse_every_directive(void)
{
    const char *text = "# a comment\n"
                       "\n"
                       "@define and and\n"
                       "@define greeting Hello {{model}}\n"
                       "@footer {{model}} · {{date}}\n"
                       "@title {{title}}\n"
                       "@lead {{answer}}\n"
                       "@h1 One\n"
                       "@h2 Two\n"
                       "@p A paragraph \\\n"
                       "   continued on the next line.\n"
                       "@note small\n"
                       "@code qbrief run\n"
                       "@stat 1 | a | b\n"
                       "@stat 2 | c\n"
                       "@table recommendation cols=\"A|B|C|D|E|F|G\"\n"
                       "@chart heatmap title=\"T {{baseline}}\" subtitle=\"S\" height=200\n"
                       "@chart ladder slice=chat\n"
                       "@list cliffs\n"
                       "@if has_cliffs\n"
                       "@p yes\n"
                       "@else\n"
                       "@p no\n"
                       "@endif\n"
                       "@if !has_latency\n"
                       "@p no latency\n"
                       "@endif\n"
                       "@each slice\n"
                       "@if slice_has_cliff\n"
                       "@h2 {{slice}}\n"
                       "@endif\n"
                       "@table slice_configs\n"
                       "@endeach\n"
                       "@page\n";
    struct qb_template *t = NULL;
    CHECK(qb_template_parse(text, "all.tmpl", &t) == 0);
    if (!t) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        return;
    }
    CHECK(qb_template_n_lines(t) == 31); /* every directive line, continuation joined */
    CHECK(qb_template_define(t, "greeting") &&
          !strcmp(qb_template_define(t, "greeting"), "Hello {{model}}"));
    CHECK(qb_template_define(t, "nope") == NULL);
    qb_template_free(t);
}

static void test_parse_errors_name_file_and_line(void)
{
    CHECK(parse_fails("@p ok\n@frobnicate x\n", "'bad.tmpl':2: unknown directive '@frobnicate'"));
    CHECK(
        parse_fails("# c\n\n@p {{nosuchvar}}\n", "'bad.tmpl':3: unknown variable '{{nosuchvar}}'"));
    CHECK(parse_fails("@p {{title\n", "'bad.tmpl':1: '{{' without a closing '}}'"));
    CHECK(parse_fails("@p a\nplain text\n", "'bad.tmpl':2: a line starts with a directive"));
    CHECK(
        parse_fails("@if has_nothing\n@endif\n", "'bad.tmpl':1: unknown condition 'has_nothing'"));
    CHECK(parse_fails("@if has_cliffs\n@p x\n", "'bad.tmpl':1: @if is never closed"));
    CHECK(parse_fails("@endif\n", "'bad.tmpl':1: @endif without its @if"));
    CHECK(parse_fails("@p a\n@else\n", "'bad.tmpl':2: @else without its @if"));
    CHECK(parse_fails("@if has_cliffs\n@else\n@else\n@endif\n",
                      "'bad.tmpl':3: @else without its @if"));
    CHECK(parse_fails("@endeach\n", "'bad.tmpl':1: @endeach without its @each"));
    CHECK(parse_fails("@each config\n@endeach\n", "@each knows only 'slice'"));
    CHECK(parse_fails("@table nosuch\n", "'bad.tmpl':1: unknown table 'nosuch'"));
    CHECK(parse_fails("@table recommendation cols=\"A|B\"\n",
                      "'bad.tmpl':1: table 'recommendation' has 7 columns"));
    CHECK(parse_fails("@table recommendation colour=red\n", "unknown attribute 'colour'"));
    CHECK(parse_fails("@chart piechart\n", "'bad.tmpl':1"));
    CHECK(parse_fails("@chart heatmap title=\"oops\n", "unterminated quote"));
    CHECK(parse_fails("@chart heatmap height=5\n", "height wants points"));
    CHECK(parse_fails("@list nosuch\n", "'bad.tmpl':1: unknown list 'nosuch'"));
    CHECK(parse_fails("@define x a\n@define x b\n", "'bad.tmpl':2: 'x' is defined twice"));
    CHECK(parse_fails("@define 9x a\n", "@define needs a NAME"));
    CHECK(parse_fails("@define title a\n", "'title' is a variable"));
    CHECK(parse_fails("@p\n", "@p needs text"));
    CHECK(parse_fails("@page now\n", "@page takes no arguments"));
    CHECK(parse_fails("@if slice_has_cliff\n@endif\n", "condition of @each slice only"));
    /* a define may be used before the line that defines it */
    struct qb_template *t = NULL;
    CHECK(qb_template_parse("@p {{later}}\n@define later x\n", "ok.tmpl", &t) == 0);
    qb_template_free(t);
}

static void test_load_by_name_and_path(void)
{
    struct qb_template *t = NULL;
    CHECK(qb_template_load("leadership", &t) == 0);
    CHECK(t && qb_template_define(t, "verdict_holds") && qb_template_define(t, "breaks_at"));
    CHECK(t && !qb_template_define(t, "verdict_cliff"));
    qb_template_free(t);
    t = NULL;
    CHECK(qb_template_load("review", &t) == 0);
    qb_template_free(t);
    t = NULL;
    CHECK(qb_template_load("no-such-template", &t) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "unknown template 'no-such-template'") != NULL);
    CHECK(qb_template_load("/nonexistent/x.tmpl", &t) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "/nonexistent/x.tmpl") != NULL);
    /* a path: the error names the path and the line */
    char path[512];
    snprintf(path, sizeof path, "%s/my.tmpl", check_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("@title x\n@p y\n@oops\n", f);
    fclose(f);
    CHECK(qb_template_load(path, &t) == QB_EFORMAT);
    char want[600];
    snprintf(want, sizeof want, "'%s':3: unknown directive '@oops'", path);
    CHECK(strstr(qb_errmsg(), want) != NULL);
    /* $QBRIEF_TEMPLATES */
    f = fopen(path, "w");
    fputs("@title from env\n", f);
    fclose(f);
    setenv("QBRIEF_TEMPLATES", check_tmpdir(), 1);
    CHECK(qb_template_load("my", &t) == 0);
    qb_template_free(t);
    unsetenv("QBRIEF_TEMPLATES");
}

/* ---------------------------------------------------------------- rendering */

static void test_render_answer_and_numbers(void)
{
    char *md =
        render("@define and and\n"
               "@define answer_serve serve {{config}} for {{slices}} traffic\n"
               "@define answer_keep_cliff keep {{config}} for {{slices}}, where {{below}} loses "
               "{{loss}} points ({{confidence}} CI {{loss_lo}} to {{loss_hi}})\n"
               "@define answer_undecided keep {{config}} for {{slices}}: too few items (n={{n}})\n"
               "@lead {{answer}}\n"
               "@p saved {{mem_saving}}; speedup {{speedup}} ({{speedup_config}}); blended "
               "{{blended_cost}}\n");
    CHECK(md != NULL);
    if (!md)
        return;
    /* cheapest config first; "and" joins; capital letter, one full stop */
    CHECK(
        strstr(
            md,
            "**Serve w4g128 for chat and json traffic; serve w8a8 for arithmetic traffic; keep f32 "
            "for code: too few items (n=8).**") != NULL);
    /* routed memory 0.9 x the single config's (w8a8: 1 - 0.9 x 7.66e9 / 27.46e9 = 76%); speedup
     * of w4g128 (most traffic):
     * (100 + 20) / (100 * 4.25 / 32 + 20) = 3.6; blended = traffic-weighted TPOT / f32's */
    CHECK_HAS(md, "saved 76%");
    CHECK_HAS(md, "speedup 3.6× (w4g128)");
    CHECK_HAS(md, "blended 0.37×");
    free(md);
}

/* a cliff above a config that holds for the slice all the same says so */
static void test_cliff_passed(void)
{
    struct qb_analysis *a = make_analysis();
    a->slices[1].rec = 3; /* arithmetic: w2g32 holds, below its cliff at w4g128 */
    a->slices[1].verdict = QB_VERDICT_HOLDS;
    char *md = render_with(a, "@define cliff {{slice}} falls off between {{above}} and {{below}}.\n"
                              "@define cliff_passed Further down, {{rec}} holds for {{slice}}.\n"
                              "@list cliffs\n");
    CHECK(md != NULL);
    if (md) {
        CHECK_HAS(md, "arithmetic falls off between w8a8 and w4g128. Further down, w2g32 holds for "
                      "arithmetic.");
        /* chat's recommendation (w4g128) is above its cliff: nothing added */
        CHECK_HAS(md, "chat falls off between w4g128 and w2g32.\n");
    }
    free(md);
    free_analysis(a);
}

/* when a slice needs the baseline, routing the rest costs more memory than the baseline alone:
 * the answer keeps the baseline for all traffic, as the headline numbers do, naming the
 * slices that need it (not those too small to tell) */
static void test_keep_baseline_for_all(void)
{
    static const char tmpl[] =
        "@define and and\n"
        "@define answer_serve serve {{config}} for {{slices}} traffic\n"
        "@define answer_single Serve {{config}} for all traffic: it holds on {{slices}}\n"
        "@define answer_keep_all Keep {{config}} for all traffic: nothing cheaper holds on "
        "{{slices}}\n"
        "@lead {{answer}}\n"
        "@p saved {{mem_saving}}\n";
    struct qb_analysis *a = make_analysis();
    a->slices[3].verdict = QB_VERDICT_BASELINE; /* code: nothing cheaper holds */
    a->single_config = 0;
    a->single.mem_cost = a->configs[0].mem_cost;
    a->single.mem_ratio = 1;
    a->routed.mem_cost = a->configs[0].mem_cost * 1.4;
    char *md = render_with(a, tmpl);
    CHECK(md != NULL);
    if (md) {
        CHECK_HAS(md, "**Keep f32 for all traffic: nothing cheaper holds on code.**");
        CHECK_HAS(md, "saved 0%");
    }
    free(md);
    /* only a slice too small to tell needs it: the per-slice clauses, as before */
    a->slices[3].verdict = QB_VERDICT_UNDECIDED;
    md = render_with(a, tmpl);
    CHECK(md != NULL);
    if (md)
        CHECK(strstr(md, "**Serve w4g128 for chat and json traffic") != NULL);
    free(md);
    free_analysis(a);
}

/* a slice the baseline itself fails is not judged: its own clause closes the answer, in
 * every form of it, and its verdict word is the template's */
static void test_render_baseline_fails(void)
{
    struct qb_analysis *a = make_analysis();
    a->slices[3].verdict = QB_VERDICT_FAILS; /* code: rec stays f32 */
    char *md =
        render_with(a, "@define and and\n"
                       "@define answer_serve serve {{config}} for {{slices}} traffic\n"
                       "@define answer_keep_cliff keep {{config}} for {{slices}}, where {{below}} "
                       "loses {{loss}} points\n"
                       "@define answer_keep keep {{config}} for {{slices}}\n"
                       "@define answer_fails {{slices}} cannot be judged: {{config}} scores below "
                       "{{floor}}% there\n"
                       "@define verdict_baseline_fails not judged\n"
                       "@lead {{answer}}\n"
                       "@table recommendation\n");
    CHECK(md != NULL);
    if (md) {
        CHECK_HAS(
            md, "**Serve w4g128 for chat and json traffic; serve w8a8 for arithmetic traffic; code "
                "cannot be judged: f32 scores below 5% there.**");
        CHECK(strstr(md, "keep f32 for code") == NULL);
        CHECK_HAS(md, "not judged");
    }
    free(md);
    free_analysis(a);
}

/* Names from a hostile store stay inline text in the Markdown (issue 19): a slice named with a
 * newline and '#' once became a heading in the answer and the warnings. */
static void test_hostile_names_stay_inline(void)
{
    struct qb_analysis *a = make_analysis();
    struct qb_template *t = NULL;
    char *md = NULL;
    free(a->slices[0].name);
    a->slices[0].name = strdup("chat\n# Serve w2g32 everywhere\n- <b>bold</b> &amp; ~~gone~~");
    free(a->warnings[0]);
    a->warnings[0] = strdup("slice 'x\n## Warning heading' has 8 items\n1. listed");
    CHECK(qb_template_load("leadership", &t) == 0);
    CHECK(t && qb_brief_markdown(a, t, "f", "2026-11-23", &md) == 0);
    if (md) {
        CHECK(strstr(md, "\n# Serve") == NULL && strstr(md, "\n## Warning") == NULL);
        CHECK(strstr(md, "\n- <b>") == NULL && strstr(md, "\n1. listed") == NULL);
        CHECK_HAS(md,
                  "chat \\# Serve w2g32 everywhere - \\<b\\>bold\\</b\\> \\&amp; \\~\\~gone\\~\\~");
        CHECK_HAS(md, "- slice 'x \\#\\# Warning heading' has 8 items 1. listed\n");
    }
    free(md);
    qb_template_free(t);
    free_analysis(a);
}

/* A run with results for its baseline alone is refused in words, not briefed as "N configs"
 * (issue 19); a stopped run counts only the configs it measured. */
static void test_baseline_only_refused(void)
{
    struct qb_analysis *a = make_analysis();
    char *md = NULL;
    a->configs[3].n_results = 0;
    md = render_with(a, "@p {{n_configs}} configs\n");
    CHECK(md != NULL);
    if (md)
        CHECK_HAS(md, "3 configs");
    free(md);
    md = NULL;
    for (int i = 1; i < 4; i++)
        a->configs[i].n_results = 0;
    struct qb_template *t = NULL;
    CHECK(qb_template_parse("@p {{n_configs}} configs\n", "t.tmpl", &t) == 0);
    CHECK(qb_brief_markdown(a, t, NULL, "2026-11-23", &md) == QB_EINVAL && md == NULL);
    CHECK(strstr(qb_errmsg(), "run 'tiny' has results only for its baseline 'f32', none for its 3 "
                              "other configs") != NULL);
    free(md);
    qb_template_free(t);
    free_analysis(a);
}

static void test_render_tables_lists_conditions(void)
{
    char *md = render(
        "@define delta_points {{delta}} ({{delta_lo}} to {{delta_hi}})\n"
        "@define verdict_holds holds\n"
        "@define verdict_undecided too few items to tell\n"
        "@define flips_cell −{{lost}} / +{{gained}}\n"
        "@define breaks_at {{below}}, {{loss}}\n"
        "@define breaks_none does not break\n"
        "@define cliff {{slice}} falls off between {{above}} and {{below}} ({{loss}} points, "
        "n={{n}}).\n"
        "@define cliff_hidden The pooled score hides it ({{overall_delta}} points overall).\n"
        "@define caveat_underpowered Too few {{slice}} items (n={{n}}) to detect a {{tol}}-point "
        "loss.\n"
        "@define caveat_few_items few {{slice}} n={{n}}\n"
        "@table recommendation cols=\"Slice|Traffic|Config|Change|Flips|Verdict|Breaks at\"\n"
        "@list cliffs\n"
        "@list caveats\n"
        "@list warnings\n"
        "@if has_cliffs\n@p CLIFFS\n@else\n@p NOCLIFFS\n@endif\n"
        "@if !has_latency\n@p NOLATENCY\n@endif\n"
        "@each slice\n@if slice_has_cliff\n@h2 {{slice}} has a cliff "
        "({{verdict}})\n@endif\n@endeach\n"
        "@chart heatmap title=\"{{cliff_slice}} breaks\" subtitle=\"points\"\n"
        "@chart ladder slice=chat\n"
        "@chart ladder slice=chat\n"
        "@footer {{model}} · {{date}} · {{machine}}\n");
    CHECK(md != NULL);
    if (!md)
        return;
    CHECK(strstr(md, "| Slice | Traffic | Config | Change | Flips | Verdict | Breaks at |\n| --- | "
                     "---: | --- | ---: | ---: | --- | --- |\n") != NULL);
    /* one meaning per column: the verdict about the recommended config, the cliff apart */
    CHECK(strstr(md, "| chat | 40% | w4g128 | -0.4 (-2.9 to +2.1) | −6 / +2 | holds | w2g32, "
                     "-6.0 |") != NULL);
    CHECK(strstr(md, "| arithmetic | 20% | w8a8 | -0.5 (-3.7 to +2.7) | −3 / +1 | holds | "
                     "w4g128, -9.1 |") != NULL);
    CHECK(strstr(md, "| code | 10% | f32 | 0.0 (0.0 to 0.0) | – | too few items to tell | does "
                     "not break |") != NULL);
    CHECK(
        strstr(
            md,
            "- arithmetic falls off between w8a8 and w4g128 (9.1 points, n=240). The pooled score "
            "hides it (-1.2 points overall).\n") != NULL);
    /* no cliff_visible pattern: the second cliff's sentence stands alone */
    CHECK(strstr(md, "- chat falls off between w4g128 and w2g32 (6.0 points, n=400).\n") != NULL);
    CHECK(strstr(md, "- few code n=8\n") != NULL);
    CHECK(strstr(md, "- slice 'code' has 8 items: too few to decide\n") != NULL);
    CHECK(strstr(md, "CLIFFS") && !strstr(md, "NOCLIFFS") && !strstr(md, "NOLATENCY"));
    CHECK(strstr(md, "### arithmetic has a cliff (holds)") &&
          strstr(md, "### chat has a cliff (holds)"));
    CHECK(!strstr(md, "### json"));
    CHECK(strstr(md, "![arithmetic breaks](x_files/heatmap.png)\n\n*points*") != NULL);
    CHECK(strstr(md, "(x_files/ladder-chat.png)") && strstr(md, "(x_files/ladder-chat-2.png)"));
    CHECK(
        strstr(
            md,
            "<small>support-assistant-7B · 2026-11-23 · Test CPU 9000 (16 cores, avx2)</small>") !=
        NULL);
    free(md);
}

static void test_render_errors(void)
{
    struct qb_template *t = NULL;
    struct qb_analysis *a = make_analysis();
    char *md = NULL;
    /* an item variable outside its pattern has no value: file:line */
    CHECK(qb_template_parse("@p ok\n@p {{slice}}\n", "scope.tmpl", &t) == 0);
    CHECK(qb_brief_markdown(a, t, NULL, "2026-11-23", &md) == QB_EFORMAT);
    CHECK(md == NULL &&
          strstr(qb_errmsg(), "'scope.tmpl':2: '{{slice}}' has no value here") != NULL);
    qb_template_free(t);
    /* a define that refers to itself */
    CHECK(qb_template_parse("@define loop x {{loop}}\n@p {{loop}}\n", "loop.tmpl", &t) == 0);
    CHECK(qb_brief_markdown(a, t, NULL, "2026-11-23", &md) == QB_EFORMAT);
    CHECK(strstr(qb_errmsg(), "refers to itself") != NULL);
    qb_template_free(t);
    /* a per-slice table outside @each */
    CHECK(qb_template_parse("@table slice_configs\n", "each.tmpl", &t) == 0);
    CHECK(qb_brief_markdown(a, t, NULL, "2026-11-23", &md) == QB_EFORMAT);
    CHECK(strstr(qb_errmsg(), "'each.tmpl':1: table 'slice_configs' belongs inside @each slice") !=
          NULL);
    qb_template_free(t);
    free_analysis(a);
}

static void test_number_formats(void)
{
    struct qb_analysis *a = make_analysis();
    struct qb_template *t = NULL;
    char *md = NULL;
    /* speedups with two significant digits; -0.0 never printed */
    a->configs[2].lat[0].speedup_tpot = 12.345;
    a->configs[2].lat[0].speedup_ttft = 0.98765;
    a->slices[0].cells[2].delta = -0.00004;
    a->slices[0].cells[2].delta_ci = (struct qb_interval){-0.0004, 0.0004};
    CHECK(qb_template_parse("@define delta_points {{delta}} ({{delta_lo}} to {{delta_hi}})\n"
                            "@p {{speedup}}\n@table latency\n@table recommendation\n",
                            "n.tmpl", &t) == 0);
    CHECK(qb_brief_markdown(a, t, NULL, "2026-11-23", &md) == 0);
    if (md) {
        CHECK(strstr(md, "12×") != NULL);
        CHECK(strstr(md, "0.99×") != NULL);
        CHECK(strstr(md, "| chat | 40% | w4g128 | 0.0 (0.0 to 0.0) |") != NULL);
        CHECK(strstr(md, "-0.0") == NULL);
    }
    free(md);
    qb_template_free(t);
    free_analysis(a);
}

static void test_shipped_templates_render(void)
{
    const char *names[] = {"leadership", "review"};
    for (int i = 0; i < 2; i++) {
        struct qb_template *t = NULL;
        struct qb_analysis *a = make_analysis();
        char *md = NULL;
        CHECK(qb_template_load(names[i], &t) == 0);
        int rc = t ? qb_brief_markdown(a, t, "f", "2026-11-23", &md) : -1;
        CHECK(rc == 0);
        if (rc < 0)
            fprintf(stderr, "  %s: %s\n", names[i], qb_errmsg());
        if (md) {
            CHECK(strstr(md, "# Quantizing support-assistant-7B for CPU serving") != NULL);
            CHECK(strstr(md, "Serve w4g128 for chat and json traffic") != NULL);
            CHECK(strstr(md, "{{") == NULL && strstr(md, "{page}") == NULL);
        }
        free(md);
        qb_template_free(t);
        free_analysis(a);
    }
}

static void test_write_csv_and_atomic_output(void)
{
    struct qb_analysis *a = make_analysis();
    struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
    char path[512], buf[4096];
    snprintf(path, sizeof path, "%s/out.csv", check_tmpdir());
    o.out_path = path;
    o.format = QB_BRIEF_CSV;
    a->slices[0].name[0] = 'C'; /* a name with a comma and a quote must survive */
    free(a->slices[0].name);
    a->slices[0].name = strdup("chat, \"casual\"");
    CHECK(qb_brief_render(a, NULL, &o) == 0);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        int rows = 0, quoted = 0, lat = 0, mem = 0;
        CHECK(fgets(buf, sizeof buf, f) && !strncmp(buf, "table,slice,config,", 19));
        while (fgets(buf, sizeof buf, f)) {
            rows++;
            quoted += strstr(buf, "\"chat, \"\"casual\"\"\"") != NULL;
            lat += !strncmp(buf, "latency,", 8);
            mem += !strncmp(buf, "memory,", 7);
        }
        fclose(f);
        CHECK(rows == 4 * 4 + 4 + 4 + 4); /* cells, overall, latency, memory */
        CHECK(quoted == 4 && lat == 4 && mem == 4);
    }
    /* a failing render (bad template) leaves the old file and no temporary beside it */
    struct qb_template *t = NULL;
    CHECK(qb_template_parse("@p {{slice}}\n", "x.tmpl", &t) == 0);
    o.format = QB_BRIEF_MD;
    CHECK(qb_brief_render(a, t, &o) < 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 100);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '[.]tmp......$'", check_tmpdir());
    CHECK(system(cmd) != 0);
    qb_template_free(t);
    free_analysis(a);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void test_write_pdf_and_md(void)
{
    struct qb_analysis *a = make_analysis();
    struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
    char pdf[512], md[512], png[600], cmd[1400], buf[16] = {0};
    snprintf(pdf, sizeof pdf, "%s/b r.pdf", check_tmpdir());
    snprintf(md, sizeof md, "%s/b r.md", check_tmpdir());
    o.out_path = pdf;
    o.template_name = "leadership";
    o.command_line = "qbrief brief -o 'b r.pdf'";
    int rc = qb_brief_render(a, NULL, &o);
    if (rc < 0 && strstr(qb_errmsg(), "fonts-dejavu-core")) {
        check_skip("test_write_pdf_and_md", "DejaVu fonts not installed");
        free_analysis(a);
        return;
    }
    CHECK(rc == 0);
    FILE *f = fopen(pdf, "rb");
    CHECK(f && fread(buf, 1, 5, f) == 5 && !memcmp(buf, "%PDF-", 5));
    if (f)
        fclose(f);
    CHECK(file_size(pdf) > 20000); /* three 300 dpi charts and two embedded fonts */
    if (system("command -v pdfinfo >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "pdfinfo '%s' 2>/dev/null | grep -q 'Pages: *[234]$'", pdf);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd,
                 "pdfinfo '%s' 2>/dev/null | grep -q 'Title: *Quantizing support-assistant-7B'",
                 pdf);
        CHECK(system(cmd) == 0);
    }
    if (system("command -v pdftotext >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd,
                 "pdftotext -layout '%s' - 2>/dev/null | grep -q 'arithmetic .*20%% .*w8a8 .*-0.5 "
                 "(-3.7 to +2.7) .*holds .*w4g128, -9.1'",
                 pdf);
        CHECK(system(cmd) == 0);
        /* the fonts' ToUnicode maps are well-formed: read without a warning */
        snprintf(cmd, sizeof cmd, "test -z \"$(pdftotext '%s' - 2>&1 >/dev/null)\"", pdf);
        CHECK(system(cmd) == 0);
    }
    /* Letter paper */
    o.paper = QB_PAPER_LETTER;
    CHECK(qb_brief_render(a, NULL, &o) == 0);
    if (system("command -v pdfinfo >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "pdfinfo '%s' 2>/dev/null | grep -q '612 x 792'", pdf);
        CHECK(system(cmd) == 0);
    }
    /* Markdown: charts in "b r_files/", linked */
    o.out_path = md;
    o.format = QB_BRIEF_MD;
    CHECK(qb_brief_render(a, NULL, &o) == 0);
    snprintf(png, sizeof png, "%s/b r_files/heatmap.png", check_tmpdir());
    CHECK(file_size(png) > 1000);
    /* rendering again replaces the charts folder */
    CHECK(qb_brief_render(a, NULL, &o) == 0);
    CHECK(file_size(png) > 1000);
    char *text = NULL;
    size_t n = 0;
    f = fopen(md, "r");
    if (f) {
        text = calloc(1, 1 << 20);
        n = fread(text, 1, (1 << 20) - 1, f);
        fclose(f);
    }
    CHECK(n > 0 && text && strstr(text, "](<b r_files/heatmap.png>)") != NULL);
    free(text);
    free_analysis(a);
}

int main(void)
{
    RUN(test_parse_every_directive);
    RUN(test_parse_errors_name_file_and_line);
    RUN(test_load_by_name_and_path);
    RUN(test_render_answer_and_numbers);
    RUN(test_single_config_when_routing_costs_more);
    RUN(test_render_baseline_fails);
    RUN(test_keep_baseline_for_all);
    RUN(test_cliff_passed);
    RUN(test_render_tables_lists_conditions);
    RUN(test_hostile_names_stay_inline);
    RUN(test_baseline_only_refused);
    RUN(test_render_errors);
    RUN(test_number_formats);
    RUN(test_shipped_templates_render);
    RUN(test_write_csv_and_atomic_output);
    RUN(test_write_pdf_and_md);
    return check_summary();
}

#endif
