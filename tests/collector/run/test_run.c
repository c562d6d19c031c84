/* test_run: a run killed (SIGKILL) part-way and resumed leaves the same results as a run
 * straight through: the same (config, item) pairs, each once, with the same correctness,
 * score and output. The run reports through its callback and never prints: the events of a
 * small run (progress to the total, a skipped and a failed item as warnings, memory and
 * latency phases) arrive in order and nothing reaches stdout or stderr, with or without a
 * callback. Needs ../shared/models/stories260K-gguf (skips without it). */
#include "tests/check.h"

#include "kernels/base/err.h"
#include "collector/run/run.h"
#include "collector/store/store.h"

#include <fcntl.h>
#include <glib.h>
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
        o.no_latency = o.no_memory = 1;
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
    CHECK(qb_run(&o, NULL) == QB_EINVAL);
    CHECK(access(db, F_OK) != 0);

    /* latency settings a run would change silently (issue 19): gen_len 1 was timed and
     * recorded as 128, prompt lengths past the 16th dropped */
    const char *good[] = {"f32"};
    static const int64_t lens[17] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    o.configs = good;
    o.no_latency = o.no_memory = 1;
    o.prompt_lens = lens;
    o.n_prompt_lens = 1;
    o.gen_len = 1;
    CHECK(qb_run(&o, NULL) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "gen_len is 1; it must be at least 2") != NULL);
    CHECK(access(db, F_OK) != 0);
    o.gen_len = 4;
    o.n_prompt_lens = 17;
    CHECK(qb_run(&o, NULL) == QB_EINVAL);
    CHECK(strstr(qb_errmsg(), "17 latency prompt lengths; a run times at most 16") != NULL);
    CHECK(access(db, F_OK) != 0);
}

/* Events as one line each ("kind config item done/total"), in order. */
struct events {
    GString *log;
    int64_t n_progress, last_done, n_warnings;
    int64_t memory, latency, latency_samples, config_done_ok;
    int order_ok; /* progress counts rise by one within a config, and every event after a
                   * CONFIG_START names that config */
    const char *current;
};

static void on_event(void *ctx, const struct qb_run_event *ev)
{
    struct events *e = ctx;
    static const char *kinds[] = {"warning", "note",    "memory",       "start", "progress",
                                  "done",    "latency", "latency-done", "phase"};
    g_string_append_printf(e->log, "%s %s %s %lld/%lld%s%s\n", kinds[ev->kind],
                           ev->config ? ev->config : "-", ev->item ? ev->item : "-",
                           (long long)ev->done, (long long)ev->total, ev->message ? ": " : "",
                           ev->message ? ev->message : "");
    switch (ev->kind) {
    case QB_RUN_EV_CONFIG_START:
        e->current = ev->config;
        e->last_done = 0;
        break;
    case QB_RUN_EV_PROGRESS:
        e->n_progress++;
        if (!e->current || strcmp(ev->config, e->current) || ev->done <= e->last_done ||
            ev->done > ev->total || ev->rate < 0 || ev->eta < 0)
            e->order_ok = 0;
        e->last_done = ev->done;
        break;
    case QB_RUN_EV_CONFIG_DONE:
        e->config_done_ok += ev->done == ev->total && ev->resumed == 0 && ev->total == 5 &&
                             e->last_done == ev->total;
        break;
    case QB_RUN_EV_WARNING: e->n_warnings++; break;
    case QB_RUN_EV_MEMORY: e->memory += ev->context > 0 && ev->n_configs == 2; break;
    case QB_RUN_EV_LATENCY:
        e->latency += ev->n_prompt_lens == 1 && ev->gen_len == 4 && ev->repetitions == 1;
        break;
    case QB_RUN_EV_LATENCY_DONE: e->latency_samples += ev->n_samples; break;
    case QB_RUN_EV_NOTE: break;
    case QB_RUN_EV_PHASE: break;
    }
}

/* Runs o with stdout and stderr sent to a file; returns qb_run's code, *printed the number
 * of bytes that reached them. */
static int run_captured(struct qb_run_opts *o, struct qb_run_stats *st, long *printed)
{
    char path[512];
    int fd, save1 = dup(1), save2 = dup(2), rc;
    snprintf(path, sizeof path, "%s/printed.txt", check_tmpdir());
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    fflush(stdout);
    fflush(stderr);
    dup2(fd, 1);
    dup2(fd, 2);
    rc = qb_run(o, st);
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    *printed = lseek(fd, 0, SEEK_END);
    close(fd);
    return rc;
}

static void test_events(void)
{
    const char *model = qb_shared_path("models/stories260K-gguf/stories260K.gguf");
    const char *two[] = {"w4g32"};
    const int64_t lens[] = {8};
    char suite[512], db[512];
    struct events e = {.log = g_string_new(NULL), .order_ok = 1};
    struct qb_run_stats st;
    long printed = -1;
    FILE *f;

    /* the long item (more tokens than the context of 2048) comes first, so the last
     * progress event of a config is its last item; the regex overruns PCRE2's match limit
     * in the baseline, so the other config skips it too */
    snprintf(suite, sizeof suite, "%s/events.csv", check_tmpdir());
    snprintf(db, sizeof db, "%s/events.db", check_tmpdir());
    f = fopen(suite, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("id,slice,kind,prompt,target,choices,metric,max_tokens,stop\nlong,s,generate,\"", f);
    for (int i = 0; i < 300; i++)
        fputs("Once upon a time there was a big dog. ", f);
    fputs("\",Lily,,contains,8,\n"
          "bad,s,generate,Once upon a time,\"(\\w+\\s?)*$\",,regex,24,\n"
          "girl,s,generate,\"Once upon a time, there was a little girl named\",Lily,,contains,8,\n"
          "ball,s,choice,Tom had a big red,\" ball\",\" car| ball| idea\",,,\n"
          "ppl,s,perplexity,\"Tom had a big red ball. He liked to play with his "
          "ball.\",,,perplexity,,\n",
          f);
    fclose(f);

    struct qb_run_opts o = QB_RUN_OPTS_INIT;
    o.model_path = model;
    o.suite_path = suite;
    o.db_path = db;
    o.name = "ev";
    o.configs = two;
    o.n_configs = 1;
    o.threads = 1;
    o.prompt_lens = lens;
    o.n_prompt_lens = 1;
    o.gen_len = 4;
    o.batch = 1;
    o.warmup = 0;
    o.repetitions = 1;
    o.on_event = on_event;
    o.on_event_ctx = &e;
    CHECK(run_captured(&o, &st, &printed) == 0);
    CHECK(printed == 0);
    CHECK(st.n_skipped_items == 1 && st.n_errors == 1 && st.n_evaluated == 6);
    CHECK(e.order_ok);
    CHECK(e.config_done_ok == 2); /* both configs reach 5 of 5, the last progress included */
    CHECK(e.n_progress == 6);     /* one per item evaluated, none for skipped or failed ones */
    CHECK(e.memory == 2);
    CHECK(e.latency == 2 && e.latency_samples > 0);
    /* the skipped item: a run-wide warning naming it, before any config starts */
    CHECK(strstr(e.log->str, "warning - long 0/0: item 'long' skipped: ") != NULL);
    CHECK(strstr(e.log->str, "warning - long") < strstr(e.log->str, "start f32"));
    /* the failed item: a warning of the baseline's pass */
    CHECK(strstr(e.log->str, "warning f32 bad 0/0: config 'f32', item 'bad' failed: ") != NULL);
    CHECK(e.n_warnings == 3); /* and the suite's: its one slice is small */

    /* resumed without a callback: silent, and nothing new */
    o.on_event = NULL;
    CHECK(run_captured(&o, &st, &printed) == 0);
    CHECK(printed == 0);
    CHECK(st.n_evaluated == 0 && st.n_resumed == 10);
    g_string_free(e.log, TRUE);
}

int main(void)
{
    if (!qb_shared_path("models/stories260K-gguf/stories260K.gguf")) {
        check_skip("test_kill_and_resume", "needs ../shared/models/stories260K-gguf");
        check_skip("test_refused_before_db", "needs ../shared/models/stories260K-gguf");
        check_skip("test_events", "needs ../shared/models/stories260K-gguf");
        return check_summary();
    }
    RUN(test_kill_and_resume);
    RUN(test_refused_before_db);
    RUN(test_events);
    return check_summary();
}
