/* test_suite: the control suite tests/malformed/valid/suite.csv (BOM, CRLF, quoted
 * newlines, a blank and a whitespace row, an unknown column, every kind and metric) loads
 * with the right fields; every metric scores positive and negative outputs; the sha256
 * matches values computed independently with sha256sum. */
#include "kernels/base/err.h"
#include "collector/eval/metrics.h"
#include "collector/eval/suite.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALID "tests/malformed/valid/suite.csv"

static const struct qb_suite_item *find(const struct qb_suite *s, const char *id)
{
    for (int64_t i = 0; i < s->n_items; i++)
        if (!strcmp(s->items[i].id, id))
            return &s->items[i];
    return NULL;
}

static double score(const struct qb_suite_item *it, const char *out)
{
    double v = -1;
    if (qb_metric_score(it, out, strlen(out), &v) < 0) {
        fprintf(stderr, "  %s\n", qb_errmsg());
        return -1;
    }
    return v;
}

static struct qb_suite *load_valid(void)
{
    struct qb_suite *s = NULL;
    int rc = qb_suite_load(VALID, NULL, &s);
    if (rc < 0)
        fprintf(stderr, "  %s\n", qb_errmsg());
    CHECK(rc == 0 && s);
    return s;
}

static void test_fields(void)
{
    struct qb_suite *s = load_valid();
    const struct qb_suite_item *it;
    if (!s)
        return;
    CHECK(s->n_items == 11);
    CHECK(s->n_slices == 5);
    CHECK(!strcmp(s->slices[0].name, "gen") && s->slices[0].n_items == 3);
    CHECK(!strcmp(s->slices[1].name, "math") && s->slices[1].n_items == 2);
    CHECK(!strcmp(s->slices[4].name, "ppl") && s->slices[4].n_items == 2);

    CHECK((it = find(s, "g-exact")) != NULL);
    if (it) {
        CHECK(it->kind == QB_KIND_GENERATE && it->metric == QB_METRIC_EXACT);
        CHECK(!strcmp(it->prompt, "Say hi:") && !strcmp(it->target, "  hi there "));
        CHECK(it->max_tokens == 16 && it->stop && !strcmp(it->stop, "\n"));
        CHECK(it->line == 2 && !strcmp(it->slice, "gen"));
    }
    CHECK((it = find(s, "g-contains")) != NULL);
    if (it) {
        CHECK(it->max_tokens == 64 && it->stop == NULL && it->line == 4);
        CHECK(!strcmp(it->target, " Lily"));
        CHECK(!strcmp(it->prompt, "Once upon a time, there was a little girl named"));
    }
    CHECK((it = find(s, "g-number")) != NULL);
    if (it) {
        CHECK(it->line == 7 && it->metric == QB_METRIC_NUMBER);
        CHECK_NEAR(it->number, 42, 0);
        CHECK_NEAR(it->tolerance, 0.5, 0);
    }
    CHECK((it = find(s, "g-number2")) != NULL);
    if (it) {
        CHECK_NEAR(it->number, -1234.5, 0);
        CHECK_NEAR(it->tolerance, 0, 0);
    }
    CHECK((it = find(s, "g-json-valid")) != NULL);
    if (it)
        CHECK(it->target == NULL && it->max_tokens == 4096);
    CHECK((it = find(s, "c-text")) != NULL);
    if (it) {
        CHECK(it->kind == QB_KIND_CHOICE && it->metric == QB_METRIC_ACCURACY);
        CHECK(it->n_choices == 4 && it->target_index == 0 && it->line == 12);
        if (it->n_choices == 4) {
            CHECK(!strcmp(it->choices[0], "blue") && !strcmp(it->choices[1], "green"));
            CHECK(!strcmp(it->choices[2], "red|ish") && !strcmp(it->choices[3], "back\\slash"));
        }
        CHECK(it->max_tokens == 0);
    }
    CHECK((it = find(s, "c-index")) != NULL);
    if (it) {
        CHECK(it->metric == QB_METRIC_ACCURACY_NORM && it->n_choices == 2 && it->target_index == 1);
        if (it->n_choices == 2)
            CHECK(!strcmp(it->choices[0], " three") && !strcmp(it->choices[1], " four"));
    }
    CHECK((it = find(s, "p-1")) != NULL);
    if (it) {
        CHECK(it->kind == QB_KIND_PERPLEXITY && it->metric == QB_METRIC_PERPLEXITY);
        CHECK(!strcmp(it->prompt, "Once upon a time,\nthere was a cat.") && it->line == 14);
        CHECK(it->target == NULL && it->n_choices == 0);
    }
    CHECK((it = find(s, "p-2")) != NULL);
    if (it)
        CHECK(it->line == 16);

    /* warnings: the unknown column, then every slice below 30 items */
    CHECK(s->n_warnings == 6);
    if (s->n_warnings == 6) {
        CHECK(strstr(s->warnings[0], "'" VALID "':1:10: unknown column 'notes'") != NULL);
        CHECK(strstr(s->warnings[1], "slice 'gen' has 3 items, fewer than 30") != NULL);
    }
    qb_suite_free(s);
}

static void test_min_slice_and_template(void)
{
    struct qb_suite_opts o = QB_SUITE_OPTS_INIT;
    struct qb_suite *s = NULL;
    char *p = NULL;

    o.min_slice_items = 3;
    o.prompt_template = "Q: {prompt}\nA:";
    CHECK(qb_suite_load(VALID, &o, &s) == 0 && s);
    if (!s)
        return;
    CHECK(s->n_warnings == 5); /* 'gen' has 3: no warning */
    CHECK(qb_suite_format_prompt(s, find(s, "g-exact"), &p) == 0 && p);
    if (p)
        CHECK(!strcmp(p, "Q: Say hi:\nA:"));
    free(p);
    qb_suite_free(s);

    CHECK(qb_suite_apply_template("{prompt}|{prompt}", "ab", &p) == 0 && !strcmp(p, "ab|ab"));
    free(p);
    CHECK(qb_suite_apply_template(NULL, "ab", &p) == 0 && !strcmp(p, "ab"));
    free(p);
    CHECK(qb_suite_apply_template("no placeholder", "ab", &p) == QB_EINVAL && p == NULL);
    o.prompt_template = "{prmpt}";
    s = NULL;
    CHECK(qb_suite_load(VALID, &o, &s) == QB_EINVAL && s == NULL);
    CHECK(strstr(qb_errmsg(), "no {prompt}") != NULL);
}

static void test_sha256(void)
{
    struct qb_suite *s = load_valid();
    const char *dir = check_tmpdir();
    char path[512];
    FILE *f;

    if (s)
        CHECK(
            !strcmp(s->sha256, "d8e843f0a4136b658beaefdca07526ca33d7d76f6c0f5d95b20c24cdcb1ccb06"));
    qb_suite_free(s);
    /* a one-item file written here, against `printf ... | sha256sum` */
    snprintf(path, sizeof path, "%s/one.csv", dir);
    CHECK((f = fopen(path, "wb")) != NULL);
    if (!f)
        return;
    fputs("id,slice,kind,prompt\nx,s,perplexity,abc\n", f);
    fclose(f);
    s = NULL;
    CHECK(qb_suite_load(path, NULL, &s) == 0 && s);
    if (s)
        CHECK(
            !strcmp(s->sha256, "144f1df8a053fc76cd22c819c80aa519dfc8cf710290b09cf681b7ff0107b31d"));
    qb_suite_free(s);
}

static void test_metrics(void)
{
    struct qb_suite *s = load_valid();
    const struct qb_suite_item *it;
    if (!s)
        return;
    if ((it = find(s, "g-exact"))) {
        CHECK(score(it, "hi there") == 1.0);
        CHECK(score(it, "\n  hi there \n\t") == 1.0);
        CHECK(score(it, "hi there!") == 0.0);
        CHECK(score(it, "Hi there") == 0.0);
        CHECK(score(it, "") == 0.0);
    }
    if ((it = find(s, "g-contains"))) {
        CHECK(score(it, " Lily. She liked") == 1.0);
        CHECK(score(it, "Lily.") == 0.0); /* the target's leading space counts */
        CHECK(score(it, " Sue") == 0.0);
    }
    if ((it = find(s, "g-regex"))) {
        CHECK(score(it, "  1, 2, 3 and more") == 1.0);
        CHECK(score(it, "1, 2, 34") == 0.0);
        CHECK(score(it, "0, 1, 2, 3") == 0.0);
        CHECK(score(it, "\xff\xfe 1, 2, 3") == 0.0); /* invalid UTF-8 does not fail the match */
    }
    if ((it = find(s, "g-number"))) {
        CHECK(score(it, "The answer is 42.") == 1.0);
        CHECK(score(it, "about 42.4 I think") == 1.0);
        CHECK(score(it, "41.4") == 0.0);
        CHECK(score(it, "6*7 = 42") == 0.0); /* the first number counts */
        CHECK(score(it, "no idea") == 0.0);
    }
    if ((it = find(s, "g-number2"))) {
        CHECK(score(it, "It costs -1,234.5 dollars") == 1.0);
        CHECK(score(it, "-1234.50") == 1.0);
        CHECK(score(it, "1234.5") == 0.0);
        CHECK(score(it, "-1,2345") == 0.0);
    }
    if ((it = find(s, "g-json"))) {
        CHECK(score(it, " {\"b\": \"x\", \"a\": [1, 2]} and then text {") == 1.0);
        CHECK(score(it, "Sure! {\"a\":[1,2],\"b\":\"x\"}") == 1.0);
        CHECK(score(it, "{\"a\": [2, 1], \"b\": \"x\"}") == 0.0);
        CHECK(score(it, "{\"a\": [1, 2]}") == 0.0);
        CHECK(score(it, "not json") == 0.0);
    }
    if ((it = find(s, "g-json-valid"))) {
        CHECK(score(it, "  [1, {\"x\": null}]\n") == 1.0);
        CHECK(score(it, "42") == 1.0);
        CHECK(score(it, "[1, 2] trailing") == 0.0);
        CHECK(score(it, "{'x': 1}") == 0.0);
        CHECK(score(it, "   ") == 0.0);
    }
    if ((it = find(s, "c-text"))) {
        double ll[4] = {-1.0, -3.0, -0.5, -2.0}, v = -1;
        CHECK(qb_metric_score(it, "x", 1, &v) == QB_EINVAL);
        CHECK(qb_choice_score(it, ll, NULL, &v) == 0 && v == 0.0); /* argmax 2, target 0 */
        ll[0] = -0.1;
        CHECK(qb_choice_score(it, ll, NULL, &v) == 0 && v == 1.0);
    }
    if ((it = find(s, "c-index"))) {
        /* " three" 6 bytes, " four" 5 bytes: per byte favours the longer choice */
        double ll[2] = {-6.3, -6.0}, v = -1; /* sums pick 1, per byte -1.05 > -1.2 picks 0 */
        int64_t ntok[2] = {1, 3};
        CHECK(qb_choice_score(it, ll, NULL, &v) == 0 && v == 0.0);
        ll[0] = -6.6, ll[1] = -5.0; /* per byte -1.1 < -1.0 */
        CHECK(qb_choice_score(it, ll, NULL, &v) == 0 && v == 1.0);
        ll[1] = -6.5; /* per token -6.6 < -2.17 */
        CHECK(qb_choice_score(it, ll, ntok, &v) == 0 && v == 1.0);
        ntok[1] = 1;
        ll[0] = -6.4;
        CHECK(qb_choice_score(it, ll, ntok, &v) == 0 && v == 0.0);
    }
    qb_suite_free(s);
}

static void test_helpers(void)
{
    double x = 0, ll[3] = {-2, -1, -1}, len[3] = {1, 4, 2};
    CHECK(qb_metric_first_number("x 1,234,567.25 y", 16, &x) == 1);
    CHECK_NEAR(x, 1234567.25, 0);
    CHECK(qb_metric_first_number("list 3,4,5", 10, &x) == 1 && x == 3);
    CHECK(qb_metric_first_number("1234,567", 8, &x) == 1 && x == 1234);
    CHECK(qb_metric_first_number("v.5", 3, &x) == 1 && x == 0.5);
    CHECK(qb_metric_first_number("-.25", 4, &x) == 1 && x == -0.25);
    CHECK(qb_metric_first_number("7.", 2, &x) == 1 && x == 7);
    CHECK(qb_metric_first_number("1e5", 3, &x) == 1 && x == 1);
    CHECK(qb_metric_first_number("none - . ,", 10, &x) == 0);
    CHECK(qb_choice_argmax(ll, 3) == 1); /* first on ties */
    CHECK(qb_choice_argmax(ll, 0) == -1);
    CHECK(qb_choice_argmax_norm(ll, len, 3) == 1); /* -0.25 */
}

static void test_example_suite(void)
{
    struct qb_suite *s = NULL;
    CHECK(qb_suite_load("examples/suites/tiny.csv", NULL, &s) == 0 && s);
    if (s)
        CHECK(s->n_items == 11 && s->n_slices >= 3);
    qb_suite_free(s);
}

int main(void)
{
    RUN(test_example_suite);
    RUN(test_fields);
    RUN(test_min_slice_and_template);
    RUN(test_sha256);
    RUN(test_metrics);
    RUN(test_helpers);
    return check_summary();
}
