/* cli: helpers shared by the subcommands (see cli.h). */
#include "collector/cli/cli.h"

#include "kernels/base/err.h"

#include <glib.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int qb_usage_error(const struct command *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "qbrief %s: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", c->usage);
    return EXIT_USAGE;
}

const struct command *qb_find_command(const char *name)
{
    for (int i = 0; i < qb_n_commands; i++)
        if (!strcmp(qb_commands[i].name, name))
            return &qb_commands[i];
    return NULL;
}

int qb_report(int rc)
{
    if (rc < 0)
        fprintf(stderr, "qbrief: %s\n", qb_errmsg());
    return rc < 0 ? EXIT_ERR : EXIT_OK;
}

double qb_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int qb_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int qb_parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

void qb_print_size(FILE *f, double bytes)
{
    if (bytes >= 1 << 30)
        fprintf(f, "%.2f GiB", bytes / (1 << 30));
    else if (bytes >= 1 << 20)
        fprintf(f, "%.2f MiB", bytes / (1 << 20));
    else if (bytes >= 1 << 10)
        fprintf(f, "%.1f KiB", bytes / (1 << 10));
    else
        fprintf(f, "%.0f B", bytes);
}

char *qb_command_line(int argc, char **argv)
{
    GString *cl = g_string_new("qbrief");
    for (int i = 0; i < argc; i++) {
        char *q = g_shell_quote(argv[i]);
        g_string_append_c(cl, ' ');
        g_string_append(cl, strpbrk(argv[i], " \t\n'\"\\$*?") ? q : argv[i]);
        g_free(q);
    }
    return g_string_free(cl, FALSE);
}
