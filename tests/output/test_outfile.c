/* test_outfile: the brief's output writer under faults (output/outfile.c, issue 19). Every step
 * that writes -- creating the temporary, each write, the fsync, the link, the rename, and the
 * Markdown's chart files and folder -- is failed in turn with ENOSPC, in every format, with
 * O_TMPFILE and with the named-temporary fallback: each time the message says "No space left
 * on device" and names the output, the old file (and the old chart folder) is intact, and no
 * temporary is left; past the last step the new brief is complete. A brief killed by a signal
 * while writing leaves nothing behind either: through O_TMPFILE even for SIGKILL, through the
 * handlers of qb_brief_catch_signals on the fallback. New files get 0666 less the umask. */
#define BRIEF_FIXTURE_ONLY
#include "tests/output/test_brief.c" /* make_analysis, free_analysis */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <sys/wait.h>

/* The hook: counts the steps; fails step fail_at with ENOSPC. no_tmpfile answers the first
 * O_TMPFILE creation with EOPNOTSUPP (a filesystem without it), which is not counted. kill_at:
 * raise that signal at that step instead. */
struct fault {
    int n, fail_at, no_tmpfile, kill_at, sig, refused_tmpfile;
};

static int on_step(void *ctx, enum qb_brief_io step)
{
    struct fault *f = ctx;
    if (f->no_tmpfile && !f->refused_tmpfile && step == QB_BRIEF_IO_CREATE) {
        f->refused_tmpfile = 1;
        return EOPNOTSUPP;
    }
    f->n++;
    if (f->kill_at && f->n == f->kill_at)
        raise(f->sig);
    return f->n == f->fail_at ? ENOSPC : 0;
}

static char *slurp(const char *path, size_t *n)
{
    char *s = NULL;
    *n = 0;
    if (!g_file_get_contents(path, &s, n, NULL))
        return NULL;
    return s;
}

/* Names in dir that look like a temporary (NAME.tmpXXXXXX), or 0. */
static int n_temps(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void put(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

/* A short template with one small chart: the writer's steps, not the layout, are under test
 * (a PDF of it still takes a few 64 KiB writes). */
static const char *small_template(void)
{
    static char path[512];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/small.tmpl", check_tmpdir());
        put(path, "@title Small\n@p {{n_configs}} configs\n"
                  "@chart heatmap title=\"h\" width=200 height=150\n");
    }
    return path;
}

/* One format: the brief rendered without faults is the reference; then step N = 1, 2, ...
 * fails until a render gets past every step. */
static void sweep(struct qb_analysis *a, enum qb_brief_format fmt, const char *ext, int no_tmpfile)
{
    char dir[512], out[600], charts[600], old_chart[700], want[700];
    struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
    size_t n_ref = 0, n = 0;
    char *ref = NULL;
    int steps = 0;

    snprintf(dir, sizeof dir, "%s/sweep-%s-%d", check_tmpdir(), ext, no_tmpfile);
    mkdir(dir, 0755);
    snprintf(out, sizeof out, "%s/b.%s", dir, ext);
    snprintf(charts, sizeof charts, "%s/b_files", dir);
    snprintf(old_chart, sizeof old_chart, "%s/old.png", charts);
    o.out_path = out;
    o.format = fmt;
    o.template_name = small_template();
    o.date = "2026-11-23";
    if (qb_brief_render(a, NULL, &o) < 0) {
        fprintf(stderr, "  %s: %s\n", ext, qb_errmsg());
        CHECK(0);
        return;
    }
    ref = slurp(out, &n_ref);
    for (int fail_at = 1; fail_at < 200; fail_at++) {
        struct fault f = {.fail_at = fail_at, .no_tmpfile = no_tmpfile};
        put(out, "old brief\n");
        if (fmt == QB_BRIEF_MD) { /* an old chart folder, to be kept on failure */
            char cmd[1400];
            snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir '%s'", charts, charts);
            CHECK(system(cmd) == 0);
            put(old_chart, "old chart");
        }
        qb_brief_set_io_fault(on_step, &f);
        int rc = qb_brief_render(a, NULL, &o);
        qb_brief_set_io_fault(NULL, NULL);
        char *got = slurp(out, &n);
        if (rc == 0) { /* past the last step: the complete new brief */
            steps = f.n;
            CHECK(got && n == n_ref && !memcmp(got, ref, n));
            if (fmt == QB_BRIEF_MD)
                CHECK(access(old_chart, F_OK) != 0);
            g_free(got);
            break;
        }
        snprintf(want, sizeof want, "'%s", dir);
        if (rc != QB_EIO || !strstr(qb_errmsg(), "No space left on device") ||
            !strstr(qb_errmsg(), want)) {
            fprintf(stderr, "  %s step %d: rc %d, '%s'\n", ext, fail_at, rc, qb_errmsg());
            CHECK(0);
        }
        CHECK(got && !strcmp(got, "old brief\n"));
        if (fmt == QB_BRIEF_MD)
            CHECK(access(old_chart, F_OK) == 0);
        if (n_temps(dir) != 0) {
            fprintf(stderr, "  %s step %d: a temporary is left\n", ext, fail_at);
            CHECK(0);
        }
        g_free(got);
    }
    /* create, one write at least (PDF: several), sync, link (O_TMPFILE only), rename */
    CHECK(steps >= (no_tmpfile ? 4 : 5) + (fmt == QB_BRIEF_PDF ? 2 : 0));
    printf("# %s%s: %d steps, each failed once\n", ext, no_tmpfile ? " (no O_TMPFILE)" : "", steps);
    g_free(ref);
}

static void test_fault_sweep(void)
{
    struct qb_analysis *a = make_analysis();
    struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
    char probe[512];
    int pdf = 1;
    snprintf(probe, sizeof probe, "%s/probe.pdf", check_tmpdir());
    o.out_path = probe;
    o.template_name = "leadership";
    if (qb_brief_render(a, NULL, &o) < 0 && strstr(qb_errmsg(), "fonts-dejavu-core")) {
        check_skip("test_fault_sweep (pdf)", "DejaVu fonts not installed");
        pdf = 0;
    }
    for (int no_tmpfile = 0; no_tmpfile < 2; no_tmpfile++) {
        sweep(a, QB_BRIEF_JSON, "json", no_tmpfile);
        sweep(a, QB_BRIEF_CSV, "csv", no_tmpfile);
        sweep(a, QB_BRIEF_MD, "md", no_tmpfile);
        if (pdf)
            sweep(a, QB_BRIEF_PDF, "pdf", no_tmpfile);
    }
    free_analysis(a);
}

/* A child renders a brief (fmt) and is killed by sig at step kill_at; returns its wait status
 * (exit 0 when kill_at is past the last step). */
static int killed_child(const char *out, enum qb_brief_format fmt, int sig, int kill_at,
                        int no_tmpfile)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct qb_analysis *a = make_analysis();
        struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
        struct fault f = {.kill_at = kill_at, .sig = sig, .no_tmpfile = no_tmpfile};
        o.out_path = out;
        o.format = fmt;
        o.template_name = small_template();
        qb_brief_catch_signals();
        qb_brief_set_io_fault(on_step, &f);
        _exit(qb_brief_render(a, NULL, &o) < 0 ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* Killed at every step in turn until the brief gets past the last: the old file stays and no
 * temporary is left. SIGTERM and SIGINT run the handlers (a Markdown brief: the .md and its
 * chart folder, with and without O_TMPFILE); SIGKILL runs none, so only what O_TMPFILE holds
 * unnamed is safe from it: the JSON's steps before its link. */
static void test_killed_leaves_nothing(void)
{
    static const struct {
        int sig, no_tmpfile, last;
        enum qb_brief_format fmt;
    } cases[] = {{SIGTERM, 1, 99, QB_BRIEF_MD},
                 {SIGINT, 0, 99, QB_BRIEF_MD},
                 {SIGKILL, 0, 3, QB_BRIEF_JSON}};
    char dir[512], out[600];
    snprintf(dir, sizeof dir, "%s/killed", check_tmpdir());
    mkdir(dir, 0755);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int finished = 0;
        snprintf(out, sizeof out, "%s/k.%s", dir, cases[i].fmt == QB_BRIEF_MD ? "md" : "json");
        for (int kill_at = 1; kill_at <= cases[i].last && !finished; kill_at++) {
            put(out, "old brief\n");
            int st = killed_child(out, cases[i].fmt, cases[i].sig, kill_at, cases[i].no_tmpfile);
            size_t n;
            char *got = slurp(out, &n);
            finished = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            int dead = WIFSIGNALED(st) && WTERMSIG(st) == cases[i].sig;
            if (!finished && (!dead || !got || strcmp(got, "old brief\n") || n_temps(dir))) {
                fprintf(stderr,
                        "  signal %d at step %d (no O_TMPFILE %d): status %#x, %d temporaries\n",
                        cases[i].sig, kill_at, cases[i].no_tmpfile, st, n_temps(dir));
                CHECK(0);
            }
            if (finished)
                CHECK(n_temps(dir) == 0 && got && strcmp(got, "old brief\n"));
            g_free(got);
        }
        CHECK(finished || cases[i].last < 99);
    }
}

/* "-" is stdout; a new file gets 0666 less the umask; an existing one keeps its mode. */
static void test_stdout_and_modes(void)
{
    struct qb_analysis *a = make_analysis();
    struct qb_brief_opts o = QB_BRIEF_OPTS_INIT;
    char path[512], cap[512], cwd[1024];
    struct stat st;
    size_t n1 = 0, n2 = 0;

    snprintf(path, sizeof path, "%s/m.json", check_tmpdir());
    snprintf(cap, sizeof cap, "%s/captured.json", check_tmpdir());
    o.format = QB_BRIEF_JSON;
    o.out_path = path;
    mode_t old = umask(027);
    unlink(path);
    CHECK(qb_brief_render(a, NULL, &o) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
    chmod(path, 0604);
    CHECK(qb_brief_render(a, NULL, &o) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0604);
    umask(old);

    /* stdout, from another folder: no file named "-" appears */
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(check_tmpdir()) == 0);
    int fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0644), save = dup(1);
    fflush(stdout);
    dup2(fd, 1);
    o.out_path = "-";
    int rc = qb_brief_render(a, NULL, &o);
    dup2(save, 1);
    close(save);
    close(fd);
    CHECK(rc == 0 && access("-", F_OK) != 0);
    CHECK(chdir(cwd) == 0);
    char *x = slurp(path, &n1), *y = slurp(cap, &n2);
    CHECK(x && y && n1 == n2 && !memcmp(x, y, n1));
    g_free(x), g_free(y);
    free_analysis(a);
}

int main(void)
{
    /* first: its children fork before this process has started OpenMP's threads (the charts
     * draw in parallel), which a forked child could not use */
    RUN(test_killed_leaves_nothing);
    RUN(test_stdout_and_modes);
    RUN(test_fault_sweep);
    return check_summary();
}
