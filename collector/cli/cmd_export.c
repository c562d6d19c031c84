/* cmd_export: `qbrief export MODEL --config SPEC -o OUT.gguf` writes the model in one config as
 * a GGUF file for llama.cpp, with exactly the weights qbrief measures in that config
 * (collector/model/gguf_export.h), or refuses naming the nearest config that exports. */
#include "collector/cli/cli.h"
#include "collector/model/gguf_export.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/model/qspec.h"
#include "collector/quant/calib.h"
#include "kernels/base/err.h"
#include "kernels/dispatch.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"output", required_argument, NULL, 'o'},
        {"tokenizer", required_argument, NULL, 't'},
        {"calib", required_argument, NULL, 'C'},
        {"calib-seqs", required_argument, NULL, 'N'},
        {"calib-len", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct command *self = qb_find_command("export");
    struct qb_load_opts lo = {0};
    struct qb_qspec spec;
    struct qb_model *m = NULL;
    struct qb_qmodel *qm = NULL;
    struct qb_calib *cal = NULL;
    const char *out = NULL, *calib_path = NULL, *cfg = NULL;
    long n_seq = 0, seq_len = 0;
    char note[512];
    struct stat st;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (qb_qspec_parse(optarg, &spec) < 0)
                return qb_usage_error(self, "%s", qb_errmsg());
            cfg = optarg;
            break;
        case 'o': out = optarg; break;
        case 't': lo.tokenizer_path = optarg; break;
        case 'C': calib_path = optarg; break;
        case 'N':
            if (qb_parse_long(optarg, 1, 1 << 20, &n_seq) < 0)
                return qb_usage_error(self, "--calib-seqs wants a positive count, not '%s'",
                                      optarg);
            break;
        case 'L':
            if (qb_parse_long(optarg, 1, 1 << 20, &seq_len) < 0)
                return qb_usage_error(self, "--calib-len wants a positive count, not '%s'", optarg);
            break;
        case 'h': fputs(self->usage, stdout); return EXIT_OK;
        default: return qb_usage_error(self, "%s", "bad option");
        }
    }
    if (optind != argc - 1)
        return qb_usage_error(self, "%s", "expects exactly one MODEL");
    if (!cfg)
        return qb_usage_error(self, "%s", "--config SPEC is required");
    if (!out)
        return qb_usage_error(self, "%s", "-o OUT.gguf is required");
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return qb_usage_error(self, "-o '%s' is a directory", out);
    if ((rc = qb_kernels_init(NULL)) < 0)
        return qb_report(rc);
    if ((rc = qb_model_load(argv[optind], &lo, &m)) < 0)
        goto done;
    if (spec.method != QB_METHOD_RTN) {
        if (!calib_path) {
            rc = qb_err(QB_EINVAL,
                        "config '%s' needs calibration data (--calib FILE, with --calib-seqs and "
                        "--calib-len as the run's plan had them)",
                        cfg);
            goto done;
        }
        if (!m->tok) {
            rc = qb_err(QB_EINVAL, "'%s' has no tokenizer; pass --tokenizer FILE", m->path);
            goto done;
        }
        if ((rc = qb_calib_load(calib_path, m->tok, n_seq, seq_len, m->cfg.max_seq_len, &cal)) < 0)
            goto done;
    }
    if ((rc = qb_qmodel_new_calib(m, &spec, cal, &qm)) < 0 ||
        (rc = qb_gguf_export(qm, out, note, sizeof note)) < 0)
        goto done;
    printf("wrote %s: %s in config %s, ", out, m->path, qm->name);
    qb_print_size(stdout, (double)(stat(out, &st) == 0 ? st.st_size : 0));
    printf("\n");
    if (note[0])
        fprintf(stderr, "note: %s\n", note);
done:
    qb_qmodel_free(qm);
    qb_calib_free(cal);
    qb_model_free(m);
    return qb_report(rc);
}
