/* cli: what the subcommands share: their table entry, usage errors, number parsing and
 * exit statuses. Each subcommand lives in collector/cmd_<name>.c; main.c lists them. */
#ifndef QB_CLI_H
#define QB_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
    const char *usage;
};

/* The subcommands, in the order --help lists them (defined in main.c). */
extern const struct command qb_commands[];
extern const int qb_n_commands;

const struct command *qb_find_command(const char *name);

/* Prints "qbrief NAME: <message>" and the command's usage to stderr; returns EXIT_USAGE. */
int qb_usage_error(const struct command *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints qb_errmsg() when rc < 0; maps rc to EXIT_OK / EXIT_ERR. */
int qb_report(int rc);

int qb_parse_long(const char *s, long lo, long hi, long *out);
int qb_parse_float(const char *s, float lo, float hi, float *out);
double qb_now_s(void);
/* "qbrief ARGV..." with arguments shell-quoted where needed, as runs and briefs record how
 * they were made. g_malloc'd (g_free). */
char *qb_command_line(int argc, char **argv);
void qb_print_size(FILE *f, double bytes);

struct qb_device;
struct qb_qspec;
/* bench-kernels on a device (bench_device.c): the CPU's table, through the backend seam. */
int qb_bench_device(const struct qb_device *d, const struct qb_qspec *specs, int n_fmt,
                    const long *ins, const long *outs, int n_shape, const long *batches,
                    int n_batch, int reps);
/* What the CPU's and the device's tables share (cmd_bench_kernels.c): the benchmark's weights
 * (scale 0.02) and inputs (scale 1), n pseudo-random values in [-scale, scale) from *seed; and
 * one row of the table from the n_rep times (seconds, sorted here) of a matmul of `batch`
 * tokens through the (in x out) weight t, against bandwidth bw (GB/s; <= 0: unknown) and
 * the median of the 1-token row b1_ms (0: none yet). Returns the median in milliseconds. */
struct qb_qtensor;
void qb_bench_random(float *v, size_t n, float scale, uint64_t *seed);
double qb_bench_row(long in, long out, long batch, const char *name, double *times, int n_rep,
                    const struct qb_qtensor *t, double bw, double b1_ms);

int cmd_inspect(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench_kernels(int argc, char **argv);
int cmd_brief(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_sensitivity(int argc, char **argv);

/* Sensitivity (cmd_sensitivity.c, run_sens.c): the scan's ranked table, and a plan's scan
 * before its run, whose mixed candidates join o's configs (*cfgs is replaced; *owned, a
 * NULL-padded list the caller frees with g_strfreev-like care, holds their names). */
struct qb_sens_result;
struct qb_plan;
struct qb_run_opts;
void qb_sens_print(FILE *f, const struct qb_sens_result *r, const char *source);
int qb_run_plan_sens(const struct qb_plan *p, struct qb_run_opts *o, const char ***cfgs,
                     char ***owned, int quiet);
int cmd_slurm(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);

#endif
