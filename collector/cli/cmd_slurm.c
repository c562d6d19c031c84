/* cmd_slurm: `qbrief slurm PLAN.yaml --shards N` -- a sharded run as a Slurm job array, plus
 * a job that merges the shards and renders the brief once they are done (and a probe job
 * when the plan says `shards: {probe: job}`). Writes the sbatch scripts into DIR, submits
 * them with sbatch (or prints them with --dry-run) and prints the job ids and where the
 * brief will appear. docs/distributed.md says how it fits together. */
#include "collector/cli/cli.h"
#include "collector/run/plan.h"
#include "collector/run/shard.h"
#include "kernels/base/err.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
    const char *plan, *partition, *time, *gpus;
    char *qbrief, *cwd, *dir, *db, *brief, *name;
    long shards;
    int threads, probe_job;
};

/* The #SBATCH lines every job shares. */
static void common_head(GString *s, const struct job *j, const char *what, const char *log)
{
    g_string_append_printf(s, "#!/bin/bash\n# %s, written by: qbrief slurm %s --shards %ld\n", what,
                           j->plan, j->shards);
    if (strcmp(what, "merge and brief"))
        g_string_append_printf(s, "#SBATCH --job-name=qbrief-%s\n", j->name);
    g_string_append_printf(s, "#SBATCH --output=%s\n#SBATCH --chdir=%s\n", log, j->cwd);
    if (j->partition)
        g_string_append_printf(s, "#SBATCH --partition=%s\n", j->partition);
    if (j->time)
        g_string_append_printf(s, "#SBATCH --time=%s\n", j->time);
}

static int on_path(const char *prog)
{
    char *p = g_find_program_in_path(prog);
    g_free(p);
    return p != NULL;
}

/* The array: one task per shard, each into DIR/shard-I.db, its exit status in DIR/shard-I.rc
 * (what the merge job reads to report failed tasks). */
static char *shards_script(const struct job *j, const char *cmd, const char *what)
{
    GString *s = g_string_new(NULL);
    char *log = g_strdup_printf("%s/%s-%%a.log", j->dir, cmd);
    char *qb = g_shell_quote(j->qbrief), *plan = g_shell_quote(j->plan),
         *dir = g_shell_quote(j->dir);
    common_head(s, j, what, log);
    if (!strcmp(cmd, "shard"))
        g_string_append_printf(s, "#SBATCH --array=0-%ld\n", j->shards - 1);
    g_string_append_printf(s, "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=%d\n",
                           j->threads > 0 ? j->threads : 1);
    if (j->gpus)
        g_string_append_printf(s, "#SBATCH --gpus-per-task=%s\n", j->gpus);
    g_string_append_printf(s, "set -u\ndir=%s\n", dir);
    if (!strcmp(cmd, "shard")) {
        g_string_append(s, "i=$SLURM_ARRAY_TASK_ID\nrm -f \"$dir/shard-$i.rc\"\n");
        g_string_append_printf(s, "%s run %s --shard auto --db \"$dir/shard-$i.db\"\n", qb, plan);
        g_string_append(s, "rc=$?\necho \"$rc\" >\"$dir/shard-$i.rc\"\nexit \"$rc\"\n");
    } else {
        g_string_append(s, "rm -f \"$dir/probe.rc\"\n");
        g_string_append_printf(s, "%s run %s --probe --db \"$dir/probe.db\"\n", qb, plan);
        g_string_append(s, "rc=$?\necho \"$rc\" >\"$dir/probe.rc\"\nexit \"$rc\"\n");
    }
    g_free(log);
    g_free(qb);
    g_free(plan);
    g_free(dir);
    return g_string_free(s, FALSE);
}

/* The merge: reports every task that failed or did not finish, merges what there is
 * (a shard that failed half way still has its finished units) and renders the brief; exits
 * 1 when a task failed, so the job shows it too. */
static char *merge_script(const struct job *j)
{
    GString *s = g_string_new(NULL);
    char *log = g_strdup_printf("%s/merge.log", j->dir);
    char *qb = g_shell_quote(j->qbrief), *dir = g_shell_quote(j->dir), *db = g_shell_quote(j->db),
         *brief = g_shell_quote(j->brief);
    common_head(s, j, "merge and brief", log);
    g_string_append_printf(s, "#SBATCH --job-name=qbrief-%s-merge\n", j->name);
    g_string_append_printf(s, "#SBATCH --ntasks=1\nset -u\ndir=%s\nfailed=0\nshards=()\n", dir);
    g_string_append_printf(s, "for i in $(seq 0 %ld); do\n", j->shards - 1);
    g_string_append_printf(
        s,
        "    rc=$(cat \"$dir/shard-$i.rc\" 2>/dev/null || echo 'no exit status: killed or "
        "never ran')\n"
        "    if [ \"$rc\" != 0 ]; then\n"
        "        failed=$((failed + 1))\n"
        "        echo \"qbrief: shard $i of %ld failed ($rc); log: $dir/shard-$i.log\" >&2\n"
        "    fi\n"
        "    [ -f \"$dir/shard-$i.db\" ] && shards+=(\"$dir/shard-$i.db\")\n"
        "done\n",
        j->shards);
    if (j->probe_job)
        g_string_append(s, "if [ \"$(cat \"$dir/probe.rc\" 2>/dev/null)\" != 0 ]; then\n"
                           "    failed=$((failed + 1))\n"
                           "    echo \"qbrief: the probe job failed; log: $dir/probe-*.log\" >&2\n"
                           "fi\n"
                           "[ -f \"$dir/probe.db\" ] && shards+=(\"$dir/probe.db\")\n");
    g_string_append(s, "[ \"${#shards[@]}\" -gt 0 ] || { echo \"qbrief: no shard wrote a "
                       "store\" >&2; exit 1; }\n");
    g_string_append_printf(s, "%s merge %s \"${shards[@]}\" || exit 1\n", qb, db);
    g_string_append_printf(s, "%s brief --db %s -o %s || exit 1\n", qb, db, brief);
    g_string_append_printf(s, "echo \"qbrief: brief in %s\"\n", j->brief);
    g_string_append(s, "[ \"$failed\" -eq 0 ] || { echo \"qbrief: $failed task(s) failed; the "
                       "brief counts their units as missing\" >&2; exit 1; }\n");
    g_free(log);
    g_free(qb);
    g_free(dir);
    g_free(db);
    g_free(brief);
    return g_string_free(s, FALSE);
}

/* Runs argv; its stdout into *out (trimmed). Nonzero exit: QB_EIO with its stderr. */
static int run_cmd(char **argv, char **out)
{
    char *so = NULL, *se = NULL;
    int status = 0;
    GError *err = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &so, &se, &status, &err)) {
        int rc = qb_err(QB_EIO, "cannot run %s: %s", argv[0], err->message);
        g_error_free(err);
        return rc;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        int rc = qb_err(QB_EIO, "%s failed: %s", argv[0], g_strstrip(se));
        g_free(so);
        g_free(se);
        return rc;
    }
    g_free(se);
    *out = g_strstrip(so);
    return 0;
}

/* The partition must be one sinfo lists (a typo fails here, before anything is written). */
static int check_partition(const char *p)
{
    char *argv[] = {"sinfo", "-h", "-o", "%R", NULL}, *out = NULL;
    int rc;
    if (!on_path("sinfo"))
        return 0; /* sbatch will say */
    if ((rc = run_cmd(argv, &out)) < 0)
        return rc;
    char **names = g_strsplit(out, "\n", -1);
    int found = g_strv_contains((const char *const *)names, p);
    char *list = g_strjoinv(", ", names);
    rc = found ? 0
               : qb_err(QB_EINVAL, "--partition '%s': no such partition (sinfo lists: %s)", p,
                        *list ? list : "none");
    g_strfreev(names);
    g_free(list);
    g_free(out);
    return rc;
}

/* sbatch --parsable [--dependency=D] SCRIPT: the job id. */
static int submit(const char *script, const char *dep, char **id)
{
    char *d = dep ? g_strdup_printf("--dependency=afterany:%s", dep) : NULL;
    char *sc = g_strdup(script);
    char *argv[] = {"sbatch", "--parsable", d ? d : sc, d ? sc : NULL, NULL};
    int rc = run_cmd(argv, id);
    g_free(d);
    g_free(sc);
    if (rc == 0) {
        char *semi = strchr(*id, ';'); /* "id;cluster" */
        if (semi)
            *semi = 0;
    }
    return rc;
}

static int write_script(const char *path, const char *text)
{
    GError *err = NULL;
    if (!g_file_set_contents(path, text, -1, &err)) {
        int rc = qb_err(QB_EIO, "cannot write '%s': %s", path, err->message);
        g_error_free(err);
        return rc;
    }
    return 0;
}

static char *absolute(const char *p)
{
    return g_canonicalize_filename(p, NULL);
}

/* Where everything goes: scripts, shard stores and logs in DIR (default: slurm-NAME in the
 * folder of the plan's db), the merged store DIR/merged.db (not the plan's db, which may hold
 * a one-process run that a merge would refuse) and the brief at the plan's output. */
static int place(struct job *j, const struct qb_plan *plan, const char *db, const char *out,
                 const char *dir)
{
    char *self = g_file_read_link("/proc/self/exe", NULL);
    j->qbrief = self ? self : g_strdup("qbrief");
    j->cwd = g_get_current_dir();
    j->brief = absolute(out ? out : plan->output ? plan->output : "brief.pdf");
    j->name = g_strdup(plan->name ? plan->name : "run");
    for (char *c = j->name; *c; c++)
        if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_')
            *c = '_';
    if (dir) {
        j->dir = absolute(dir);
    } else {
        char *pdb = absolute(plan->db ? plan->db : "qbrief.db"), *d = g_path_get_dirname(pdb);
        j->dir = g_strdup_printf("%s/slurm-%s", d, j->name);
        g_free(d);
        g_free(pdb);
    }
    j->db = db ? absolute(db) : g_build_filename(j->dir, "merged.db", NULL);
    j->threads = (int)plan->settings.threads;
    j->probe_job = plan->probe_shard < 0;
    if (!j->probe_job && plan->probe_shard >= j->shards)
        return qb_err(QB_EINVAL,
                      "the plan's shards.probe is %lld, but there are only %ld shards: no shard "
                      "would measure latency and memory",
                      (long long)plan->probe_shard, j->shards);
    return 0;
}

static void job_free(struct job *j)
{
    g_free(j->qbrief);
    g_free(j->cwd);
    g_free(j->dir);
    g_free(j->db);
    g_free(j->brief);
    g_free(j->name);
}

/* Writes the scripts and submits them: the array, the probe job, then the merge after both. */
static int submit_all(const struct job *j, char *const scripts[3], const char *const paths[3])
{
    char *arr = NULL, *probe = NULL, *merge = NULL, *dep = NULL;
    int rc = 0;
    if (g_mkdir_with_parents(j->dir, 0755) != 0)
        return qb_err(QB_EIO, "cannot create '%s': %s", j->dir, strerror(errno));
    for (int k = 0; k < 3 && rc == 0; k++)
        if (scripts[k])
            rc = write_script(paths[k], scripts[k]);
    if (rc == 0)
        rc = submit(paths[0], NULL, &arr);
    if (rc == 0 && scripts[1])
        rc = submit(paths[1], NULL, &probe);
    if (rc == 0) {
        dep = probe ? g_strdup_printf("%s:%s", arr, probe) : g_strdup(arr);
        rc = submit(paths[2], dep, &merge);
    }
    if (rc == 0) {
        printf("job array %s: %ld shards, logs in %s/\n", arr, j->shards, j->dir);
        if (probe)
            printf("probe job %s: latency and memory\n", probe);
        printf("merge job %s (after the array%s): %s, then the brief %s\n", merge,
               probe ? " and the probe" : "", j->db, j->brief);
    }
    g_free(arr);
    g_free(probe);
    g_free(merge);
    g_free(dep);
    return rc;
}

int cmd_slurm(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"shards", required_argument, NULL, 'n'}, {"partition", required_argument, NULL, 'p'},
        {"time", required_argument, NULL, 't'},   {"gpus-per-task", required_argument, NULL, 'g'},
        {"dir", required_argument, NULL, 'D'},    {"db", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'}, {"dry-run", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},         {0},
    };
    const struct command *self = qb_find_command("slurm");
    struct job j = {0};
    struct qb_plan *plan = NULL;
    const char *db = NULL, *out = NULL, *dir = NULL;
    int dry = 0, opt, rc;
    long gpus;

    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (qb_parse_long(optarg, 1, QB_SHARD_MAX, &j.shards) < 0)
                return qb_usage_error(self, "--shards wants a count from 1 to %d, not '%s'",
                                      QB_SHARD_MAX, optarg);
            break;
        case 'p': j.partition = optarg; break;
        case 't': j.time = optarg; break;
        case 'g':
            if (qb_parse_long(optarg, 1, 64, &gpus) < 0)
                return qb_usage_error(self, "--gpus-per-task wants a count, not '%s'", optarg);
            j.gpus = optarg;
            break;
        case 'D': dir = optarg; break;
        case 'd': db = optarg; break;
        case 'o': out = optarg; break;
        case 'r': dry = 1; break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc - 1)
        return qb_usage_error(self, "%s", "expects one PLAN");
    if (!j.shards)
        return qb_usage_error(self, "%s", "needs --shards N");
    if (j.partition && (!*j.partition || strpbrk(j.partition, " \t\n'\"$`\\")))
        return qb_usage_error(self, "--partition '%s' is not a partition name", j.partition);
    if (j.time && (!*j.time || strpbrk(j.time, " \t\n'\"$`\\")))
        return qb_usage_error(self, "--time '%s' is not a Slurm time limit", j.time);
    j.plan = argv[optind];
    if ((rc = qb_plan_load(j.plan, &plan)) < 0)
        return qb_report(rc);
    char *plan_abs = absolute(j.plan);
    j.plan = plan_abs;
    if ((rc = place(&j, plan, db, out, dir)) < 0)
        goto out;
    char *scripts[3] = {shards_script(&j, "shard", "the shards, one array task each"),
                        j.probe_job ? shards_script(&j, "probe", "latency and memory") : NULL,
                        merge_script(&j)};
    char *paths[3] = {g_build_filename(j.dir, "shards.sbatch", NULL),
                      g_build_filename(j.dir, "probe.sbatch", NULL),
                      g_build_filename(j.dir, "merge.sbatch", NULL)};
    if (dry) {
        for (int k = 0; k < 3; k++)
            if (scripts[k])
                printf("# ---- %s\n%s", paths[k], scripts[k]);
        printf("# ---- submit: sbatch --parsable %s; then sbatch "
               "--dependency=afterany:ARRAY_ID%s %s\n",
               paths[0], j.probe_job ? ":PROBE_ID" : "", paths[2]);
    } else if (!on_path("sbatch")) {
        rc = qb_err(QB_EIO, "sbatch is not on PATH: this machine cannot submit Slurm jobs (install "
                            "slurm-client, or use --dry-run to see the scripts)");
    } else if (!j.partition || (rc = check_partition(j.partition)) == 0) {
        rc = submit_all(&j, scripts, (const char *const *)paths);
    }
    for (int k = 0; k < 3; k++) {
        g_free(scripts[k]);
        g_free(paths[k]);
    }
out:
    job_free(&j);
    g_free(plan_abs);
    qb_plan_free(plan);
    return qb_report(rc);
}
