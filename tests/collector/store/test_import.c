/* test_import: lm-eval samples and llama-bench tables imported into a run
 * (collector/store/store_import.h), from fixtures written here after the published schemas
 * (lm_eval/evaluator.py's logged sample, evaluation_tracker.py's samples_TASK_DATE.jsonl;
 * llama-bench -o json, jsonl and sql), then malformed variants: each refused with the file
 * and line, the store unchanged. The analysis shows imported configs per slice, labelled. */
#include "analysis/analyze.h"
#include "collector/store/store.h"
#include "collector/store/store_import.h"
#include "kernels/base/err.h"
#include "kernels/base/fileio.h"
#include "tests/check.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHA_A "ab12000000000000000000000000000000000000000000000000000000000000"
#define SHA_S "5e1f000000000000000000000000000000000000000000000000000000000000"

static char *tmp(const char *name)
{
    static char buf[8][512];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 512, "%s/%s", check_tmpdir(), name);
    return p;
}

static int msg_has(const char *s)
{
    if (strstr(qb_errmsg(), s))
        return 1;
    fprintf(stderr, "  message '%s' lacks '%s'\n", qb_errmsg(), s);
    return 0;
}

static char *sha(const char *s)
{
    return g_compute_checksum_for_string(G_CHECKSUM_SHA256, s, -1);
}

/* One lm-eval sample line: doc i of a two-choice task, correct or not; bad_hash changes the
 * doc's hash, drop leaves a field out. */
static void sample(FILE *f, int i, int acc, int bad_hash, const char *drop)
{
    char doc[256], prompt[64], target[8];
    char *dh, *ph, *th;
    snprintf(doc, sizeof doc,
             "{\"question\": \"What is %d + 1?\", \"choices\": [\"%d\", \"%d\"], \"answer\": "
             "%d, \"subject\": \"%s\"}",
             i, i + 1, i + 2, 0, i < 4 ? "math" : "bio");
    snprintf(prompt, sizeof prompt, "Question: What is %d + 1?\nAnswer:", i);
    snprintf(target, sizeof target, "%d", 0);
    dh = sha(bad_hash ? "another doc" : doc);
    ph = sha(prompt);
    th = sha(target);
    fprintf(f, "{");
    if (!drop || strcmp(drop, "doc_id"))
        fprintf(f, "\"doc_id\": %d, ", i);
    fprintf(f,
            "\"doc\": %s, \"target\": 0, \"arguments\": [[\"Question: What is %d + 1?\\nAnswer:\", "
            "\" %d\"]], \"resps\": [[[-0.5, true]], [[-1.5, false]]], \"filtered_resps\": [[-0.5, "
            "true], [-1.5, false]], \"filter\": \"none\", \"metrics\": [\"acc\", \"acc_norm\"], "
            "\"doc_hash\": \"%s\", \"prompt_hash\": \"%s\", \"target_hash\": \"%s\", \"acc\": "
            "%d.0, \"acc_norm\": %d.0}\n",
            doc, i, i + 1, dh, ph, th, acc, acc);
    g_free(dh);
    g_free(ph);
    g_free(th);
}

/* samples_arc_easy_DATE.jsonl in folder dir of n docs with correctness acc[] */
static char *samples(const char *dir, const int *acc, int n, int bad_hash_at, const char *drop_at2,
                     int cut)
{
    char d[512], *path;
    FILE *f;
    snprintf(d, sizeof d, "%s/%s", check_tmpdir(), dir);
    g_mkdir_with_parents(d, 0755);
    path = g_strdup_printf("%s/samples_arc_easy_2024-06-01T10-00-00.123456.jsonl", d);
    f = fopen(path, "w");
    for (int i = 0; i < n; i++)
        sample(f, i, acc[i], i == bad_hash_at, i == 2 ? drop_at2 : NULL);
    fclose(f);
    if (cut) { /* cut the last line in half */
        long size;
        f = fopen(path, "r+");
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
        CHECK(truncate(path, size - 60) == 0);
    }
    return path;
}

/* A store with one qbrief run (f32 baseline, one item, one result). */
static const char *make_store(const char *name)
{
    static const struct qb_store_model model = {"m/a.gguf", SHA_A, "llama", "gguf", 1000};
    static const struct qb_store_suite suite = {"s.csv", SHA_S, 1};
    struct qb_store_run r = {.name = "r1", .baseline_config = "f32"};
    struct qb_store_item it = {"q1", "facts", "choice", "accuracy", NULL, NULL, 1};
    struct qb_store *s = NULL;
    int64_t run, sid, cfg, item;
    const char *path = tmp(name);
    CHECK(qb_store_open(path, 0, &s) == 0);
    CHECK(qb_store_run_open(s, &r, &model, &suite, &run, &sid) == 0);
    CHECK(qb_store_put_config(s, run, &(struct qb_store_config){"f32", 32, 4000, 0}, &cfg) == 0);
    CHECK(qb_store_put_item(s, sid, &it, &item) == 0);
    CHECK(qb_store_put_result(s, run,
                              &(struct qb_store_result){cfg, item, 1, 1, NULL, NAN, -1, NAN, NAN,
                                                        -1, "ok", NULL}) == 0);
    CHECK(qb_store_run_finish(s, run) == 0);
    qb_store_close(s);
    return path;
}

/* --- what the store holds, to show it unchanged ------------------------------------------- */

static int count_cb(void *ctx, int64_t a, int64_t b)
{
    (void)a, (void)b;
    ++*(int64_t *)ctx;
    return 0;
}
static int count_cfg(void *ctx, int64_t id, const struct qb_store_config *c)
{
    (void)id, (void)c;
    ++*(int64_t *)ctx;
    return 0;
}
static int count_imp(void *ctx, const struct qb_store_import *im)
{
    (void)im;
    ++*(int64_t *)ctx;
    return 0;
}
static int count_lat(void *ctx, const struct qb_store_latency *l)
{
    (void)l;
    ++*(int64_t *)ctx;
    return 0;
}
static int count_item(void *ctx, int64_t id, const struct qb_store_item *it)
{
    (void)id, (void)it;
    ++*(int64_t *)ctx;
    return 0;
}

/* results, configs, imports, imported items, latency samples of every config */
static void census(struct qb_store *s, int64_t out[5])
{
    int64_t run = 0, suite = 0;
    memset(out, 0, 5 * sizeof *out);
    CHECK(qb_store_run_find(s, "r1", &run) == 0);
    CHECK(qb_store_list_done(s, run, count_cb, &out[0]) == 0);
    CHECK(qb_store_list_configs(s, run, count_cfg, &out[1]) == 0);
    CHECK(qb_store_list_imports(s, run, count_imp, &out[2]) == 0);
    CHECK(qb_store_import_suite(s, run, &suite) == 0);
    if (suite)
        CHECK(qb_store_list_items(s, suite, count_item, &out[3]) == 0);
    for (int64_t c = 1; c < 10; c++)
        qb_store_list_latency(s, run, c, count_lat, &out[4]);
}

static const int ACC_BASE[8] = {1, 1, 1, 0, 1, 1, 0, 1}, ACC_Q4[8] = {1, 0, 1, 0, 1, 1, 0, 0};

static int import1(struct qb_store *s, const char *cfg, int baseline, const char *path,
                   struct qb_import_summary *sum)
{
    struct qb_import_opts o = {.run = "r1", .config = cfg, .baseline = baseline};
    const char *paths[1] = {path};
    return qb_import_lmeval(s, &o, paths, 1, sum);
}

static void test_lmeval(void)
{
    const char *db = make_store("lm.db");
    char *base = samples("base", ACC_BASE, 8, -1, NULL, 0),
         *q4 = samples("q4", ACC_Q4, 8, -1, NULL, 0);
    struct qb_store *s = NULL;
    struct qb_import_summary sum;
    struct qb_analysis *a = NULL;
    char want[65];
    int64_t n[5];

    CHECK(qb_store_open(db, 0, &s) == 0);
    CHECK(import1(s, "f16 (lm-eval)", 1, base, &sum) == 0 && sum.rows == 8);
    CHECK(qb_file_sha256(base, want) == 0 && !strcmp(sum.sha256, want));
    CHECK(import1(s, "Q4_0 (lm-eval)", 0, q4, &sum) == 0 && sum.rows == 8);
    census(s, n);
    CHECK(n[0] == 1 + 16 && n[1] == 3 && n[2] == 2 && n[3] == 8);
    /* the same file again for the same config: refused, nothing added */
    CHECK(import1(s, "Q4_0 (lm-eval)", 0, q4, &sum) == QB_EINVAL);
    /* a qbrief-measured config's name is not taken over */
    CHECK(import1(s, "f32", 0, q4, &sum) == QB_EINVAL && msg_has("was measured by qbrief"));
    qb_store_close(s);

    CHECK(qb_store_open(db, QB_STORE_READONLY, &s) == 0);
    CHECK(qb_analyze(s, "r1", NULL, &a) == 0);
    if (a) {
        int64_t q = -1, b = -1, sl = -1;
        for (int64_t c = 0; c < a->n_configs; c++) {
            if (strstr(a->configs[c].spec, "Q4_0 (lm-eval)"))
                q = c;
            if (strstr(a->configs[c].spec, "f16 (lm-eval)"))
                b = c;
        }
        for (int64_t i = 0; i < a->n_slices; i++)
            if (!strcmp(a->slices[i].name, "arc_easy"))
                sl = i;
        CHECK(q >= 0 && b >= 0 && sl >= 0);
        if (q >= 0 && b >= 0 && sl >= 0) {
            /* labelled with the mark and the file's sha256 */
            CHECK(!strncmp(a->configs[q].spec, "[imported] ", 11));
            CHECK(strstr(a->configs[b].spec, "lm-eval sha256 ") != NULL);
            /* per slice against the imported baseline: 6/8 -> 4/8, two lost */
            CHECK(a->slices[sl].cells[q].n == 8 && a->slices[sl].cells[q].n_correct == 4);
            CHECK(a->slices[sl].cells[q].flips_lost == 2 &&
                  a->slices[sl].cells[q].flips_gained == 0);
            CHECK_NEAR(a->slices[sl].cells[q].delta, -0.25, 1e-12);
            CHECK(a->slices[sl].cells[b].n == 8 && a->slices[sl].cells[b].n_correct == 6);
        }
        qb_analysis_free(a);
    }
    qb_store_close(s);
    g_free(base);
    g_free(q4);
}

/* Every malformed import: refused, named by file and line, and the store as it was. */
static void refused(struct qb_store *s, const char *cfg, const char *path, int want_rc,
                    const char *want_msg)
{
    int64_t before[5], after[5];
    struct qb_import_summary sum;
    census(s, before);
    CHECK(import1(s, cfg, 0, path, &sum) == want_rc);
    CHECK(msg_has(want_msg));
    census(s, after);
    CHECK(!memcmp(before, after, sizeof before));
}

static void test_lmeval_malformed(void)
{
    const char *db = make_store("bad.db");
    char *base = samples("b2", ACC_BASE, 8, -1, NULL, 0);
    char *trunc = samples("trunc", ACC_Q4, 8, -1, NULL, 1);
    char *noid = samples("noid", ACC_Q4, 8, -1, "doc_id", 0);
    char *hash = samples("hash", ACC_Q4, 8, 5, NULL, 0);
    char line[600];
    struct qb_store *s = NULL;
    struct qb_import_summary sum;
    CHECK(qb_store_open(db, 0, &s) == 0);
    CHECK(import1(s, "base", 1, base, &sum) == 0);
    snprintf(line, sizeof line, "'%s':8: truncated (no end of line) JSON", trunc);
    refused(s, "q4", trunc, QB_EINVAL, line);
    snprintf(line, sizeof line, "'%s':3: the sample has no doc_id", noid);
    refused(s, "q4", noid, QB_EINVAL, line);
    snprintf(line, sizeof line, "'%s':6: doc_id 5 of task 'arc_easy' has doc_hash", hash);
    refused(s, "q4", hash, QB_EINVAL, line);
    CHECK(msg_has("not the same doc"));
    qb_store_close(s);
    g_free(base);
    g_free(trunc);
    g_free(noid);
    g_free(hash);
}

/* --- llama-bench ---------------------------------------------------------------------------- */

#define REC                                                                                        \
    "{\"build_commit\": \"3f4fc97f\", \"build_number\": 5678, \"cpu_info\": \"AMD EPYC 7763\", "   \
    "\"gpu_info\": \"NVIDIA H100 80GB HBM3\", \"backends\": \"CUDA\", \"model_filename\": "        \
    "\"m.gguf\", \"model_type\": \"llama 1B Q4_0\", \"model_size\": 700000000, "                   \
    "\"model_n_params\": 1100000000, \"n_batch\": 2048, \"n_ubatch\": 512, \"n_threads\": 8, "     \
    "\"cpu_mask\": \"0x0\", \"cpu_strict\": false, \"poll\": 50, \"type_k\": \"f16\", "            \
    "\"type_v\": \"f16\", \"n_gpu_layers\": 99, \"split_mode\": \"layer\", \"main_gpu\": 0, "      \
    "\"no_kv_offload\": false, \"flash_attn\": false, \"tensor_split\": \"0.00\", "                \
    "\"use_mmap\": true, \"embeddings\": false, \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": 0, " \
    "\"test_time\": \"2025-06-01T10:00:00Z\", \"avg_ns\": 1000, \"stddev_ns\": 10, "               \
    "\"avg_ts\": %s, \"stddev_ts\": 1.0, \"samples_ns\": [1000, 1000, 1000], "                     \
    "\"samples_ts\": [%s]}"

static char *write_file(const char *name, const char *text)
{
    char *p = tmp(name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static char *bench_text(const char *sep, const char *open, const char *close)
{
    GString *g = g_string_new(open);
    g_string_append_printf(g, REC, 128, 0, "4000.0", "3990.0, 4000.0, 4010.0");
    g_string_append(g, sep);
    g_string_append_printf(g, REC, 0, 128, "200.0", "199.0, 200.0, 201.0");
    g_string_append(g, close);
    return g_string_free(g, FALSE);
}

static int bench(struct qb_store *s, const char *cfg, const char *path)
{
    struct qb_import_opts o = {.run = "r1", .config = cfg};
    struct qb_import_summary sum;
    return qb_import_llamabench(s, &o, path, &sum);
}

static char lat_device[256];

/* The first sample; its strings are borrowed during the call, so the device is copied. */
static int first_lat(void *ctx, const struct qb_store_latency *l)
{
    struct qb_store_latency *out = ctx;
    *out = *l;
    snprintf(lat_device, sizeof lat_device, "%s", l->device ? l->device : "");
    out->device = lat_device;
    out->host = NULL;
    return 1;
}

static void test_llamabench(void)
{
    const char *db = make_store("lb.db");
    char *jl = bench_text("\n", "", "\n"), *js = bench_text(",\n", "[\n", "\n]\n");
    const char *pjl = write_file("bench.jsonl", jl), *pjs = write_file("bench.json", js);
    const char *sql = write_file(
        "bench.sql",
        "CREATE TABLE IF NOT EXISTS test (\n  build_commit TEXT,\n  build_number INTEGER,\n"
        "  cpu_info TEXT,\n  gpu_info TEXT,\n  backends TEXT,\n  n_prompt INTEGER,\n"
        "  n_gen INTEGER,\n  n_depth INTEGER,\n  avg_ts REAL,\n  stddev_ts REAL\n);\n\n"
        "INSERT INTO test (build_commit, build_number, cpu_info, gpu_info, backends, n_prompt, "
        "n_gen, n_depth, avg_ts, stddev_ts) VALUES ('3f4fc97f', 5678, 'AMD EPYC', 'NVIDIA H100', "
        "'CUDA', 128, 0, 0, 4000.0, 10.0);\n"
        "INSERT INTO test (build_commit, build_number, cpu_info, gpu_info, backends, n_prompt, "
        "n_gen, n_depth, avg_ts, stddev_ts) VALUES ('3f4fc97f', 5678, 'AMD EPYC', 'NVIDIA H100', "
        "'CUDA', 0, 128, 0, 200.0, 1.0);\n");
    struct qb_store *s = NULL;
    struct qb_store_latency l;
    int64_t n[5], run = 0;
    CHECK(qb_store_open(db, 0, &s) == 0);
    CHECK(bench(s, "Q4_0 jsonl", pjl) == 0);
    CHECK(bench(s, "Q4_0 json", pjs) == 0);
    CHECK(bench(s, "Q4_0 sql", sql) == 0);
    census(s, n);
    CHECK(n[2] == 3 && n[4] == 3 + 3 + 1);
    /* pp128 + tg128 -> one request of 128 then 128: ttft 32 ms, tpot 5 ms, e2e 672 ms */
    CHECK(qb_store_run_find(s, "r1", &run) == 0);
    memset(&l, 0, sizeof l);
    CHECK(qb_store_list_latency(s, run, 4, first_lat, &l) == 1); /* config 4: "Q4_0 sql" */
    CHECK(l.prompt_len == 128 && l.gen_len == 128 && l.batch == 1);
    CHECK_NEAR(l.ttft_ms, 32.0, 1e-9);
    CHECK_NEAR(l.tpot_ms, 5.0, 1e-9);
    CHECK_NEAR(l.e2e_ms, 32.0 + 128 * 5.0, 1e-9);
    CHECK(l.device && strstr(l.device, "NVIDIA H100") && strstr(l.device, "CUDA"));
    qb_store_close(s);
    g_free(jl);
    g_free(js);
}

static void lb_refused(struct qb_store *s, const char *path, int want_rc, const char *want)
{
    int64_t before[5], after[5];
    census(s, before);
    CHECK(bench(s, "lb", path) == want_rc);
    CHECK(msg_has(want));
    census(s, after);
    CHECK(!memcmp(before, after, sizeof before));
}

static void test_llamabench_malformed(void)
{
    const char *db = make_store("lbbad.db");
    char *jl = bench_text("\n", "", "\n"), msg[600];
    struct qb_store *s = NULL;
    /* an old llama-bench: per-backend flags, no backends field */
    const char *old =
        write_file("old.jsonl",
                   "{\"build_commit\": \"a\", \"build_number\": 1, \"cuda\": true, \"vulkan\": "
                   "false, \"gpu_info\": \"\", \"n_prompt\": 512, \"n_gen\": 0, \"avg_ts\": 10}\n"
                   "{\"build_commit\": \"a\", \"build_number\": 1, \"cuda\": true, \"vulkan\": "
                   "false, \"gpu_info\": \"\", \"n_prompt\": 0, \"n_gen\": 128, \"avg_ts\": 5}\n");
    const char *cut = write_file("cut.jsonl", "");
    const char *evil = write_file(
        "evil.sql", "CREATE TABLE test (n_prompt INTEGER);\nATTACH DATABASE '/tmp/x.db' AS x;\n");
    FILE *f;
    CHECK(qb_store_open(db, 0, &s) == 0);
    f = fopen(cut, "w");
    fwrite(jl, 1, strlen(jl) - 40, f);
    fclose(f);
    snprintf(msg, sizeof msg,
             "'%s':1: not a llama-bench record of a version qbrief knows: field "
             "'backends' is missing",
             old);
    lb_refused(s, old, QB_EUNSUP, msg);
    snprintf(msg, sizeof msg, "'%s':2: truncated (no end of line) JSON", cut);
    lb_refused(s, cut, QB_EINVAL, msg);
    snprintf(msg, sizeof msg, "'%s':2: not a llama-bench -o sql statement", evil);
    lb_refused(s, evil, QB_EINVAL, msg);
    CHECK(access("/tmp/x.db", F_OK) != 0);
    qb_store_close(s);
    g_free(jl);
}

int main(void)
{
    RUN(test_lmeval);
    RUN(test_lmeval_malformed);
    RUN(test_llamabench);
    RUN(test_llamabench_malformed);
    return check_summary();
}
