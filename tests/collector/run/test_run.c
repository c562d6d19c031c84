/* test_run: a run killed (SIGKILL) part-way and resumed leaves the same results as a run
 * straight through: the same (config, item) pairs, each once, with the same correctness,
 * score and output. Needs ../shared/models/stories260K-gguf (skips without it). */
#include "tests/check.h"

#include "kernels/base/err.h"
#include "collector/run/run.h"
#include "collector/store/store.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *cfgs[] = {"f32", "w4g32", "w2g32"};

static int kill_after(void *ctx, int64_t n)
{
    if (n >= *(int64_t *)ctx)
        raise(SIGKILL);
    return 0;
}

/* Runs the runner in a child; kill_at > 0 makes the child SIGKILL itself after that many
 * committed units. Returns the child's wait status. */
static int run_child(const char *model, const char *db, int64_t kill_at)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct qb_run_opts o = QB_RUN_OPTS_INIT;
        o.model_path = model;
        o.suite_path = "examples/suites/tiny.csv";
        o.db_path = db;
        o.name = "t";
        o.configs = cfgs;
        o.n_configs = 3;
        o.threads = 1;
        o.no_latency = o.no_memory = o.quiet = 1;
        if (kill_at > 0) {
            o.on_unit = kill_after;
            o.on_unit_ctx = &kill_at;
        }
        _exit(qb_run(&o, NULL) < 0 ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

struct rows {
    char *line[256];
    int n;
};

static int on_result(void *ctx, const struct qb_store_result *r)
{
    struct rows *rs = ctx;
    char buf[1024];
    snprintf(buf, sizeof buf, "%lld|%lld|%d|%.9g|%s|%.6g", (long long)r->config_id,
             (long long)r->item_id, r->correct, r->score, r->output ? r->output : "(null)", r->nll);
    if (rs->n < 256)
        rs->line[rs->n++] = strdup(buf);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load(const char *db, struct rows *rs)
{
    struct qb_store *s = NULL;
    int64_t run;
    memset(rs, 0, sizeof *rs);
    CHECK(qb_store_open(db, QB_STORE_READONLY, &s) == 0);
    CHECK(qb_store_run_find(s, "t", &run) == 0);
    CHECK(qb_store_list_results(s, run, 0, on_result, rs) == 0);
    qb_store_close(s);
    qsort(rs->line, (size_t)rs->n, sizeof rs->line[0], cmp);
}

static void test_kill_and_resume(void)
{
    const char *model = qb_shared_path("models/stories260K-gguf/stories260K.gguf");
    char a[512], b[512];
    struct rows ra, rb;
    int st;
    snprintf(a, sizeof a, "%s/straight.db", check_tmpdir());
    snprintf(b, sizeof b, "%s/killed.db", check_tmpdir());
    st = run_child(model, a, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = run_child(model, b, 15); /* mid-way through the second config */
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    load(b, &rb);
    CHECK(rb.n == 15);
    for (int i = 0; i < rb.n; i++)
        free(rb.line[i]);
    st = run_child(model, b, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    load(a, &ra);
    load(b, &rb);
    CHECK(ra.n == 33);
    CHECK(ra.n == rb.n);
    for (int i = 0; i < ra.n && i < rb.n; i++) {
        if (strcmp(ra.line[i], rb.line[i]))
            fprintf(stderr, "  straight %s\n  resumed  %s\n", ra.line[i], rb.line[i]);
        CHECK(!strcmp(ra.line[i], rb.line[i]));
        if (i)
            CHECK(strcmp(rb.line[i - 1], rb.line[i])); /* no duplicates */
    }
    for (int i = 0; i < ra.n; i++)
        free(ra.line[i]);
    for (int i = 0; i < rb.n; i++)
        free(rb.line[i]);
}

static void test_refused_before_db(void)
{
    const char *model = qb_shared_path("models/stories260K-gguf/stories260K.gguf");
    const char *bad[] = {"w5g7"};
    char db[512];
    struct qb_run_opts o = QB_RUN_OPTS_INIT;
    snprintf(db, sizeof db, "%s/never.db", check_tmpdir());
    o.model_path = model;
    o.suite_path = "examples/suites/tiny.csv";
    o.db_path = db;
    o.configs = bad;
    o.n_configs = 1;
    o.quiet = 1;
    CHECK(qb_run(&o, NULL) == QB_EINVAL);
    CHECK(access(db, F_OK) != 0);
}

int main(void)
{
    if (!qb_shared_path("models/stories260K-gguf/stories260K.gguf")) {
        check_skip("test_kill_and_resume", "needs ../shared/models/stories260K-gguf");
        check_skip("test_refused_before_db", "needs ../shared/models/stories260K-gguf");
        return check_summary();
    }
    RUN(test_kill_and_resume);
    RUN(test_refused_before_db);
    return check_summary();
}
