/* csv: the analysis as one CSV file, every table in it (docs/templates.md, "CSV export"). */
#include "output/brief.h"

#include "analysis/analyze.h"
#include "output/brief_int.h"

#include <csv.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void csv_str(FILE *f, const char *s)
{
    if (s)
        csv_fwrite(f, s, strlen(s));
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
}

static void csv_int(FILE *f, int64_t v, int ok)
{
    if (ok)
        fprintf(f, "%lld", (long long)v);
}

/* One file, one header; the `table` column says which of accuracy, latency, memory a row is
 * (docs/templates.md, "CSV export"). Fractions as in the analysis, not points. */
/* clang-format off */
static const char *const csv_cols[] = {
    "table", "slice", "config", "is_baseline", "ladder", "n", "n_correct", "acc", "acc_lo",
    "acc_hi", "delta", "delta_lo", "delta_hi", "mcnemar_p", "flips_lost", "flips_gained",
    "flip_rate", "kl_mean", "kl_p99", "top1", "ppl", "ppl_ratio", "mde", "tolerance",
    "underpowered", "within", "significant_loss", "pareto", "recommended", "verdict",
    "prompt_len", "gen_len", "batch", "n_samples", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms",
    "tpot_p50_ms", "tpot_p95_ms", "tpot_p99_ms", "e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms",
    "decode_tok_s_p50", "speedup_tpot", "speedup_ttft", "bits_per_weight", "weight_bytes",
    "peak_rss_bytes", "kv_cache_bytes", "mem_context", "mem_cost", "mem_saving",
};
/* clang-format on */
enum { CSV_N = sizeof csv_cols / sizeof csv_cols[0], CSV_LAT0 = 30, CSV_MEM0 = 46 };

static void csv_skip(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc(',', f);
}

static void csv_cell_row(FILE *f, const struct qb_analysis *a, const struct qb_an_slice *s,
                         int64_t ci)
{
    const struct qb_an_cell *c = &s->cells[ci];
    const struct qb_an_config *cf = &a->configs[ci];
    fputs("accuracy,", f);
    csv_str(f, s->name), fputc(',', f);
    csv_str(f, cf->spec), fputc(',', f);
    fprintf(f, "%d,%lld,", ci == a->baseline, (long long)cf->ladder);
    csv_int(f, c->n, 1), fputc(',', f);
    csv_int(f, c->n_correct, 1), fputc(',', f);
    double v[] = {c->acc,         c->acc_ci.lo,   c->acc_ci.hi, c->delta,
                  c->delta_ci.lo, c->delta_ci.hi, c->mcnemar_p};
    for (int i = 0; i < 7; i++)
        csv_num(f, v[i]), fputc(',', f);
    fprintf(f, "%lld,%lld,", (long long)c->flips_lost, (long long)c->flips_gained);
    double w[] = {c->flip_rate, c->kl_mean,   c->kl_p99, c->top1,
                  c->ppl,       c->ppl_ratio, c->mde,    s->tolerance};
    for (int i = 0; i < 8; i++)
        csv_num(f, w[i]), fputc(',', f);
    fprintf(f, "%d,%d,%d,%d,%d,", c->underpowered, c->within, c->significant_loss, c->pareto,
            s->rec == ci);
    if (s->rec == ci)
        csv_str(f, qb_an_verdict_name(s->verdict));
    csv_skip(f, CSV_N - CSV_LAT0);
    fputc('\n', f);
}

int brief_write_csv(const struct qb_analysis *a, FILE *f)
{
    for (int i = 0; i < CSV_N; i++)
        fprintf(f, "%s%s", i ? "," : "", csv_cols[i]);
    fputc('\n', f);
    for (int64_t si = 0; si < a->n_slices; si++)
        for (int64_t ci = 0; ci < a->n_configs; ci++)
            csv_cell_row(f, a, &a->slices[si], ci);
    if (a->overall.cells) {
        struct qb_an_slice ov = a->overall;
        ov.name = "(overall)";
        for (int64_t ci = 0; ci < a->n_configs; ci++)
            csv_cell_row(f, a, &ov, ci);
    }
    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_config *cf = &a->configs[ci];
        for (int64_t li = 0; li < cf->n_lat; li++) {
            const struct qb_an_latency *l = &cf->lat[li];
            fputs("latency,,", f);
            csv_str(f, cf->spec);
            fprintf(f, ",%d,%lld", ci == a->baseline, (long long)cf->ladder);
            csv_skip(f, CSV_LAT0 - 5 + 1);
            fprintf(f, "%lld,%lld,%lld,%lld", (long long)l->prompt_len, (long long)l->gen_len,
                    (long long)l->batch, (long long)l->n_samples);
            double v[] = {l->ttft_p50, l->ttft_p95,         l->ttft_p99,     l->tpot_p50,
                          l->tpot_p95, l->tpot_p99,         l->e2e_p50,      l->e2e_p95,
                          l->e2e_p99,  l->decode_tok_s_p50, l->speedup_tpot, l->speedup_ttft};
            for (int i = 0; i < 12; i++)
                fputc(',', f), csv_num(f, v[i]);
            csv_skip(f, CSV_N - CSV_MEM0);
            fputc('\n', f);
        }
    }
    for (int64_t ci = 0; ci < a->n_configs; ci++) {
        const struct qb_an_config *cf = &a->configs[ci];
        fputs("memory,,", f);
        csv_str(f, cf->spec);
        fprintf(f, ",%d,%lld", ci == a->baseline, (long long)cf->ladder);
        csv_skip(f, CSV_MEM0 - 5 + 1);
        csv_num(f, cf->bits_per_weight), fputc(',', f);
        csv_int(f, cf->weight_bytes, cf->weight_bytes >= 0), fputc(',', f);
        csv_int(f, cf->peak_rss_bytes, cf->peak_rss_bytes >= 0), fputc(',', f);
        csv_int(f, cf->kv_cache_bytes, cf->kv_cache_bytes >= 0), fputc(',', f);
        csv_int(f, cf->mem_context, cf->mem_context >= 0), fputc(',', f);
        csv_num(f, cf->mem_cost), fputc(',', f);
        csv_num(f, cf->mem_saving);
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}
