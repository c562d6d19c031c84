/* test_malformed_plan: every file in tests/malformed/plan/ is refused with a message that
 * names it, and the refusals that matter say where (line and column) and why. */
#include "kernels/base/err.h"
#include "collector/run/plan.h"
#include "tests/check.h"

#include <string.h>

#define DIR_PATH "tests/malformed/plan"

static int load_plan(const char *path)
{
    struct qb_plan *p = NULL;
    int rc = qb_plan_load(path, &p);
    if (rc == 0 && p)
        qb_plan_free(p);
    return rc;
}

static void test_corpus_fails_cleanly(void)
{
    CHECK(check_corpus(DIR_PATH, ".yaml", load_plan) >= 11);
}

/* file, and a piece its message must contain (position first, then the reason) */
static const char *const expected[][3] = {
    {"syntax_error.yaml", ":3:", "yaml syntax error"},
    {"unknown_key.yaml", ":5:1: unknown key 'config'", "valid keys: title, question, models"},
    {"configs_map.yaml", ":5:3:", "'configs' must be a list of config specs"},
    {"gen_len_string.yaml", ":6:12:", "'latency.gen_len' must be an integer, not a quoted string"},
    {"threads_list.yaml", ":5:10:", "'threads' must be an integer, not a list"},
    {"int_trailing.yaml", ":6:12:", "must be an integer, not '12x'"},
    {"nan.yaml", ":6:15:", "must be a number"},
    {"bad_spec.yaml", ":4:16:", "w5g32"},
    {"duplicate_config.yaml", ":4:24:", "same as 'w4g32' at 4:11"},
    {"negative_tolerance.yaml", ":7:9:", "'tolerances.code' is -0.5"},
    {"traffic_all_zero.yaml", ":6:3:", "all zero"},
    {"missing_suite.yaml", ":1:1:", "missing required key 'suite'"},
    {"empty.yaml", ":1:1:", "empty"},
    {"only_comment.yaml", ":1:1:", "empty"},
    {"two_documents.yaml", ":5:1:", "second"},
    {"alias.yaml", ":3:8:", "alias '*t'"},
    {"duplicate_key.yaml", ":4:1:", "duplicate key 'title' in the plan (first at 1:1)"},
    {"not_utf8.yaml", ":1:12:", "not valid UTF-8"},
    {"utf16.yaml", ":1:1:", "not valid UTF-8"},
    {"control_char.yaml", ":1:9:", "not plain text: control characters are not allowed (0x01)"},
    {"root_list.yaml", ":1:1:", "must be a map"},
    {"no_models.yaml", ":2:9:", "empty list"},
    {"template_no_prompt.yaml", ":5:18:", "{prompt}"},
    {"bad_bound.yaml", ":6:10:", "'interval' or 'point'"},
    {"prompt_lens_scalar.yaml", ":6:16:", "must be a list of integers"},
    {"tag.yaml", ":1:8:", "tag"},
    {"title_null.yaml", ":", "'title' must be a string, not empty"},
    {"int_overflow.yaml", ":5:10:", "must lie in"},
    {"deep.yaml", ":1:", "nested deeper"},
    {"long_list.yaml", ":4:", "more than 4096 entries in one list"},
    /* values a run would change: refused, not recorded as something else (issue 19) */
    {"gen_len_one.yaml", ":6:12:", "'latency.gen_len' is 1; it must be at least 2"},
    {"prompt_lens_17.yaml",
     ":6:72:", "'latency.prompt_lens' lists 17 lengths; a run times at most 16"},
};

static void test_messages_say_where_and_why(void)
{
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char path[256];
        struct qb_plan *p = NULL;
        int rc;
        snprintf(path, sizeof path, DIR_PATH "/%s", expected[i][0]);
        rc = qb_plan_load(path, &p);
        CHECK(rc == QB_EFORMAT && p == NULL);
        if (!strstr(qb_errmsg(), path) || !strstr(qb_errmsg(), expected[i][1]) ||
            !strstr(qb_errmsg(), expected[i][2])) {
            fprintf(stderr, "  %s: got \"%s\", wanted \"%s\" and \"%s\"\n", expected[i][0],
                    qb_errmsg(), expected[i][1], expected[i][2]);
            check_fail(__FILE__, __LINE__, "message names position and reason");
        }
        qb_plan_free(p);
    }
}

static void test_missing_file_is_eio(void)
{
    struct qb_plan *p = NULL;
    CHECK(qb_plan_load(DIR_PATH "/no-such-plan.yaml", &p) == QB_EIO && p == NULL);
    CHECK(strstr(qb_errmsg(), "no-such-plan.yaml") != NULL);
}

int main(void)
{
    RUN(test_corpus_fails_cleanly);
    RUN(test_messages_say_where_and_why);
    RUN(test_missing_file_is_eio);
    return check_summary();
}
