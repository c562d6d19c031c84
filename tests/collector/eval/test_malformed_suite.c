/* test_malformed_suite: every file in tests/malformed/suite/ is refused with a message
 * naming it, and where a row is at fault the message gives its position 'FILE':LINE:COL;
 * a few messages are checked word for word. */
#include "kernels/base/err.h"
#include "collector/eval/suite.h"
#include "tests/check.h"

#include <stdio.h>
#include <string.h>

#define DIR_PATH "tests/malformed/suite"

static int load_suite(const char *path)
{
    struct qb_suite *s = NULL;
    int rc = qb_suite_load(path, NULL, &s);
    qb_suite_free(s);
    if (rc == 0)
        return qb_err(0, "'%s' loaded", path); /* check_corpus flags it */
    return rc;
}

static void test_corpus_fails_cleanly(void)
{
    CHECK(check_corpus(DIR_PATH, ".csv", load_suite) >= 30);
}

/* The message for `name` must contain `want` (which starts with the quoted path). */
static void expect(const char *name, const char *want)
{
    char path[256], full[512];
    snprintf(path, sizeof path, DIR_PATH "/%s", name);
    snprintf(full, sizeof full, "'%s'%s", path, want);
    CHECK(load_suite(path) == QB_EFORMAT);
    if (!strstr(qb_errmsg(), full)) {
        fprintf(stderr, "  %s:\n    got  %s\n    want %s\n", name, qb_errmsg(), full);
        check_fail(__FILE__, __LINE__, "message");
    }
}

static void test_positions(void)
{
    expect("bad_quoting.csv", ":2:4: bad quoting");
    expect("unclosed_quote.csv", ":2:5: quoted field never closed");
    expect("unknown_kind.csv", ":2:3: unknown kind 'generat' (generate, choice, perplexity)");
    expect("unknown_metric.csv", ":2:7: unknown metric 'contain'");
    expect("metric_not_for_kind.csv",
           ":2:7: metric 'exact' does not apply to kind 'choice' (accuracy, accuracy_norm)");
    expect("metric_not_for_kind2.csv",
           ":2:7: metric 'accuracy' does not apply to kind 'perplexity'");
    expect("missing_kind_column.csv", ":1:1: missing required column 'kind'");
    expect("missing_slice_column.csv", ":1:1: missing required column 'slice'");
    expect("duplicate_id.csv", ":4:1: duplicate id 'a1' (first on line 2)");
    expect("too_few_fields.csv", ":2:8: row has 7 fields, the header has 8");
    expect("too_many_fields.csv", ":2:9: row has 9 fields, the header has 8");
    expect("trailing_comma.csv", ":2:9: row has 9 fields, the header has 8");
    expect("max_tokens_zero.csv", ":2:8: max_tokens '0' is not an integer in 1..4096");
    expect("max_tokens_big.csv", ":2:8: max_tokens '5000'");
    expect("max_tokens_junk.csv", ":2:8: max_tokens '12x'");
    expect("bad_regex.csv", ":2:5: bad regex '(Lily' at offset 5: missing closing parenthesis");
    /* issue 19: the encoding named, not "field contains a NUL byte"; a slice name that would
     * break a line of the brief (a Markdown heading out of "names\n# Serve w2g32") refused */
    expect("utf16le_bom.csv", ": the file is UTF-16 (little-endian); save it as UTF-8");
    expect("utf16be.csv", ": the file is UTF-16 (big-endian); save it as UTF-8");
    expect("utf32le_bom.csv", ": the file is UTF-32 (little-endian); save it as UTF-8");
    expect("slice_newline.csv", ":3:2: slice name has a control character (U+000A) after 'names'");
    expect("slice_control.csv", ":2:2: slice name has a control character (U+001B) after 's'");
    expect("bad_json_target.csv", ":2:5: target is not valid JSON");
    expect("empty_id.csv", ":2:1: empty id");
    expect("empty_prompt.csv", ":2:4: empty prompt");
    expect("generate_no_target.csv", ":2:5: metric 'exact' needs a target");
    expect("generate_no_metric.csv", ":2:7: generate item needs a metric");
    expect("one_choice.csv", ":2:6: choice item needs at least 2 choices, has 1");
    expect("choice_index_range.csv", ":2:5: target index 3 out of range (3 choices)");
    expect("choice_target_unknown.csv", ":2:5: target 'd' is neither a choice nor an index");
    expect("choice_target_ambiguous.csv", ":2:5: target '1' is ambiguous");
    expect("choice_empty_option.csv", ":2:6: choice 1 is empty");
    expect("choice_duplicate.csv", ":2:6: choices 0 and 2 are both 'a'");
    expect("choice_max_tokens.csv", ":2:8: kind 'choice' takes no max_tokens");
    expect("perplexity_target.csv", ":2:5: kind 'perplexity' takes no target");
    expect("number_target.csv", ":2:5: number target 'abc'");
    expect("number_tolerance.csv", ":2:5: number target '42 +- x'");
    expect("json_valid_target.csv", ":2:5: metric 'json_valid' takes no target");
    expect("duplicate_column.csv", ":1:5: column 'id' appears twice (also column 1)");
    expect("nul_byte.csv", ":2:4: field contains a NUL byte");
    expect("bad_utf8.csv", ":2:4: field is not valid UTF-8 (byte 3)");
    expect("empty.csv", ": empty suite, no header row");
    expect("header_only.csv", ": suite has a header but no items");
}

int main(void)
{
    RUN(test_corpus_fails_cleanly);
    RUN(test_positions);
    return check_summary();
}
