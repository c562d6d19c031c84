/* main: the qbrief command line. One function per subcommand (collector/cmd_*.c), listed
 * in one table; each parses its own options with getopt_long. Exit status: 0 success,
 * 1 error, 2 bad usage. */
#include "collector/cli/cli.h"

#include <stdio.h>
#include <string.h>

#define QB_VERSION "0.1.0"

const struct command qb_commands[] = {
    {"inspect", cmd_inspect, "show a model's architecture, dimensions, tensors and bytes",
     "usage: qbrief inspect MODEL [--tokenizer FILE] [--config SPEC]\n"
     "       qbrief inspect --devices\n"
     "\n"
     "MODEL is a GGUF file, a Hugging Face directory (config.json + safetensors) or a\n"
     "llama2.c .bin checkpoint.\n"
     "  --tokenizer FILE   tokenizer to use instead of the model's own\n"
     "  --config SPEC      also quantize into SPEC and show each tensor's format, bytes\n"
     "                     and bits/weight (see docs/configs.md)\n"
     "  --devices          list the Vulkan devices (--device vulkan:N) with their memory,\n"
     "                     limits and features; says so when there are none\n"},
    {"generate", cmd_generate, "generate text from a prompt",
     "usage: qbrief generate MODEL [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S]\n"
     "                       [--threads N] [--tokenizer FILE] [--isa ref|avx2|avx512]\n"
     "                       [--device cpu|vulkan[:N]]\n"
     "\n"
     "Prints the prompt and its continuation to stdout, prefill and decode speed to stderr.\n"
     "  -p, --prompt TEXT  prompt (default: empty, generation starts from BOS)\n"
     "  -n, --tokens N     tokens to generate (default 256, capped by the context)\n"
     "      --temp T       temperature; 0 (default) is greedy\n"
     "      --top-p P      nucleus sampling threshold (default 0.9, used when T > 0)\n"
     "      --seed S       random seed for sampling (default 42)\n"
     "      --threads N    OpenMP threads (default: all cores)\n"
     "      --tokenizer F  tokenizer file (llama2.c tokenizer.bin or tokenizer.json)\n"
     "      --isa ISA      force the matmul kernels (default: the best this CPU has)\n"
     "      --config SPEC  run quantized: f32 (default), bf16, fp8, w8a8, w4g128, w4g32-sym,\n"
     "                     w4g128-a8, w3g64, w2g32, w4g32-gptq, ... (see docs/configs.md)\n"
     "      --calib FILE   calibration text for -gptq, -awq and -smooth configs\n"
     "      --device D     cpu (default), vulkan (the first Vulkan device) or vulkan:N\n"
     "                     (`qbrief inspect --devices` lists them)\n"},
    {"run", cmd_run, "score a model's configs on a suite into the results database",
     "usage: qbrief run --model M --suite S.csv --configs LIST [--baseline SPEC] [--db FILE]\n"
     "                  [--name RUN] [--threads N] [--tokenizer F] [--no-latency] [--quiet]\n"
     "                  [--device cpu|vulkan[:N]]\n"
     "       qbrief run PLAN.yaml [--db FILE] [--name RUN] [--threads N] [--no-latency] [--quiet]\n"
     "                  [--device cpu|vulkan[:N]]\n"
     "                  [--shard I/N|auto|auto/N] [--probe]\n"
     "\n"
     "Quantizes the model into each config (the baseline first), scores every suite item\n"
     "(output, correctness, NLL, KL and top-1 agreement against the baseline), probes\n"
     "memory and latency, and records it all in an SQLite database. Rerunning the same\n"
     "command resumes: finished (config, item) pairs are not evaluated again.\n"
     "  --model M        GGUF file, Hugging Face directory or llama2.c .bin\n"
     "  --suite S.csv    evaluation suite (docs/suite-format.md)\n"
     "  --configs LIST   config specs, comma-separated (docs/configs.md)\n"
     "  --baseline SPEC  the reference config (default f32; added first if not listed)\n"
     "  --db FILE        results database (default qbrief.db)\n"
     "  --name RUN       run name (default MODEL-SUITE, file names without extensions)\n"
     "  --threads N      OpenMP threads (default: all cores)\n"
     "  --calib FILE     calibration text for -gptq, -awq and -smooth configs (plan key\n"
     "                   calibration:); its sha256 is recorded\n"
     "  --tokenizer F    tokenizer file (llama2.c tokenizer.bin or tokenizer.json) instead of\n"
     "                   the model's own or the tok<vocab>.bin / tokenizer.bin beside a .bin\n"
     "  --no-latency     skip the latency probe\n"
     "  --no-memory      skip the memory probe\n"
     "  --quiet          no progress on stderr\n"
     "  --shard I/N      evaluate only shard I (0-based) of N into its own database (default\n"
     "                   DB.shard-I-of-N.db); auto or auto/N reads the index (and count) from\n"
     "                   SLURM_ARRAY_TASK_ID/_COUNT or JOB_COMPLETION_INDEX/QBRIEF_SHARDS.\n"
     "                   Combine the shards with qbrief merge (docs/distributed.md)\n"
     "  --probe          the probe job of a sharded plan (shards: {probe: job}): latency and\n"
     "                   memory only, into DB.probe.db\n"
     "  --device D       cpu (default), vulkan or vulkan:N: every item, the latency and the\n"
     "                   memory are measured on that device (plan key device:)\n"
     "With a PLAN (docs/plan-format.md), --db, --name, --threads, --tokenizer, --no-latency,\n"
     "--device and --quiet override the plan.\n"},
    {"tokenize", cmd_tokenize, "show the token ids and pieces of a text, or decode ids",
     "usage: qbrief tokenize MODEL|TOKENIZER [--ids] [--no-bos] TEXT\n"
     "\n"
     "Prints one line per token (id and piece), then the text decoded back.\n"
     "  --ids       TEXT is a list of token ids (spaces or commas) to decode\n"
     "  --no-bos    do not add the BOS token\n"
     "  --vocab N   vocabulary size of a llama2.c tokenizer.bin (default: read to the end)\n"},
    {"bench-kernels", cmd_bench_kernels,
     "time every weight format's matmul against memory bandwidth",
     "usage: qbrief bench-kernels [--formats LIST] [--shapes LIST] [--batches LIST]\n"
     "                            [--threads N] [--isa ref|avx2|avx512] [--reps N]\n"
     "                            [--device cpu|vulkan[:N]]\n"
     "\n"
     "Prints, per shape, batch and format: time per matmul, GB/s of weight bytes read, the\n"
     "fraction of this machine's read bandwidth (measured in the same run by streaming a\n"
     "buffer larger than the caches) and GFLOP/s. A benchmark, not a test.\n"
     "  --formats LIST  config specs, comma-separated (default: f32,f16,bf16,fp8,fp8-e5m2,\n"
     "                  fp8-a8,w8,w8a8,w4g32,w4g128,w4g32-sym,w4g128-a8,w3g64,w2g32)\n"
     "  --shapes LIST   INxOUT (input x output features), comma-separated\n"
     "                  (default 4096x4096,4096x14336,14336x4096)\n"
     "  --batches LIST  tokens per matmul (default 1,32)\n"
     "  --threads N     OpenMP threads (default: all cores)\n"
     "  --reps N        timed repetitions per cell, the median is printed (default 15)\n"
     "  --device D      cpu (default), vulkan or vulkan:N: the matmuls run on that device\n"
     "                  through the engine's backend, against the device's bandwidth\n"
     "                  (timed copying a large buffer on it)\n"},
    {"brief", cmd_brief, "render the decision brief (PDF, Markdown, JSON or CSV) from a run",
     "usage: qbrief brief --db FILE [--run NAME] -o OUT [--template leadership|review|FILE]\n      "
     "              [--format pdf|md|json|csv] [--paper a4|letter]\n"
     "       qbrief brief --db FILE --run NEW --against OLD|OTHER.db|OTHER.db#RUN -o OUT\n"
     "       qbrief brief --db FILE --runs R1,R2,... -o OUT\n\nAnalyses one run of the "
     "results database and writes the brief: page 1 answers the\nquestion (the recommendation per "
     "slice, cliffs, memory and speed), later pages say how\nsure we are. Written to a temporary "
     "file and renamed, so a failure leaves no half brief.\n  --db FILE        results database "
     "(default qbrief.db)\n  --run NAME       run name (default: the newest run)\n  -o, --output "
     "OUT the brief; its extension picks the format unless --format is given;\n                   "
     "'-' writes to stdout (Markdown then without its charts). An existing\n                   "
     "file is replaced only if it is a regular file of yours (symlinks are\n                   "
     "followed; permissions are kept)\n  --template T     leadership (2-4 pages, default), review "
     "(everything) or a .tmpl file\n                   (docs/templates.md; $QBRIEF_TEMPLATES is "
     "searched first)\n  --format F       pdf (default), md (charts as PNG files in OUT_files/), "
     "json (every\n                   number of the analysis) or csv (every table, "
     "docs/templates.md)\n  --paper P        a4 (default) or letter\n"
     "  --against OLD    what changed since run OLD (of this store, of OTHER.db if it holds one\n"
     "                   run, or OTHER.db#RUN): per slice and config, paired where the items\n"
     "                   match; cost side by side; whether the decision changed (PDF or\n"
     "                   Markdown; template compare)\n"
     "  --runs R1,R2,... one brief across candidate models (one run each, one suite): per\n"
     "                   slice the cheapest (model, config) that holds against R1's baseline\n"
     "                   (template candidates)\n"},
    {"check", cmd_check, "exit 0 when a config holds on every slice of a run, 1 when not (for CI)",
     "usage: qbrief check --db FILE [--run NAME] [--config SPEC] [--policy PLAN.yaml] [--json]\n\n"
     "Analyses one run and checks that a config holds on every slice: within the slice's\n"
     "tolerance on accuracy, no gain beyond it, and no more changed answers than its flip\n"
     "limit. Prints one line per failing slice (docs/ci.md).\n"
     "  --db FILE        results database (default qbrief.db)\n"
     "  --run NAME       run name (default: the newest run)\n"
     "  --config SPEC    the config to check (default: the brief's recommendation per slice)\n"
     "  --policy PLAN    take tolerances, flip limits and policy from this plan, not the run\n"
     "  --json           one JSON document instead of lines\n"
     "Exit status: 0 holds on every slice, 1 some slice fails, 2 bad input.\n"},
    {"merge", cmd_merge, "merge the stores of a sharded run into one",
     "usage: qbrief merge OUT.db SHARD.db... [--quiet]\n"
     "\n"
     "Checks that the shards belong together (one plan, model, suite, calibration and qbrief\n"
     "version; disjoint units; no shard twice) and writes OUT.db, atomically: OUT.db is left\n"
     "as it was when anything is refused. OUT.db may hold shards merged before: merging a\n"
     "shard again changes nothing, and a partial set can be merged and completed later.\n"
     "Prints per run the units merged and missing (the brief counts the missing too).\n"
     "  --quiet  no line per shard\n"},
    {"sensitivity", cmd_sensitivity, "which layers a low-bit config breaks, and mixed candidates",
     "usage: qbrief sensitivity --model M --config SPEC (--calib TEXT | --suite S.csv\n"
     "                          [--slice NAME]) [--db FILE] [--baseline SPEC] [--keep SPEC]\n"
     "                          [--granularity tensor|layer] [--budgets P,P,...] [--topk K]\n"
     "                          [--threads N] [--tokenizer F] [--quiet]\n"
     "\n"
     "Quantizes one unit at a time (a layer's matrix, or a whole layer; plus the output head\n"
     "and the embeddings) at SPEC while the rest stays at the baseline, and measures the mean\n"
     "KL from the baseline on the calibration text or the suite's slice (and, with a suite,\n"
     "the slice's accuracy). Prints the units ranked by damage, how the damages add (the top\n"
     "K units together), and mixed candidates: SPEC with the most damaging units per extra\n"
     "byte kept at --keep, for each budget; stores everything in the database\n"
     "(docs/sensitivity.md).\n"
     "  --baseline SPEC  the precision of everything else (default f32)\n"
     "  --keep SPEC      what candidates keep damaging units at (default w8)\n"
     "  --granularity G  tensor (default) or layer\n"
     "  --budgets LIST   percents of the bytes keeping every unit would add (default 10,25,50)\n"
     "  --topk K         units quantized together for the additivity check (default 3)\n"
     "  --db FILE        results database (default qbrief.db)\n"},
    {"slurm", cmd_slurm, "submit a plan as a Slurm job array of shards plus a merge-and-brief job",
     "usage: qbrief slurm PLAN.yaml --shards N [--partition P] [--time T] [--gpus-per-task G]\n"
     "                    [--dir DIR] [--db OUT.db] [-o BRIEF] [--dry-run]\n"
     "\n"
     "Writes DIR/shards.sbatch (an array of N tasks, each `qbrief run PLAN --shard auto`) and\n"
     "DIR/merge.sbatch (after the array: reports failed tasks, qbrief merge, qbrief brief),\n"
     "plus DIR/probe.sbatch when the plan has shards: {probe: job}; submits them with sbatch\n"
     "and prints the job ids and where the brief will appear (docs/distributed.md).\n"
     "  --shards N          array tasks\n"
     "  --partition P       Slurm partition (checked against sinfo)\n"
     "  --time T            time limit per job (sbatch --time)\n"
     "  --gpus-per-task G   GPUs per shard\n"
     "  --dir DIR           scripts, shard stores and logs (default: beside the plan's db,\n"
     "                      slurm-NAME)\n"
     "  --db OUT.db         the merged store (default: DIR/merged.db)\n"
     "  -o BRIEF            the brief (default: the plan's output, else brief.pdf)\n"
     "  --dry-run           print the scripts and the sbatch commands; write nothing\n"},
    {"export", cmd_export, "write a model in one config as GGUF for llama.cpp, weights exact",
     "usage: qbrief export MODEL --config SPEC -o OUT.gguf [--tokenizer FILE]\n"
     "                    [--calib FILE [--calib-seqs N] [--calib-len N]]\n"
     "\n"
     "Writes exactly the weights qbrief runs in SPEC: f32/f16/bf16 as themselves, w4gN-sym as\n"
     "Q4_0, w4gN as Q4_1, w8 as Q8_0 when its row scales are f16 values; a config no ggml type\n"
     "holds exactly (fp8, int3, int2, rows not whole 32-blocks) is refused with the nearest\n"
     "one that exports (docs/interop.md).\n"
     "  --config SPEC     the config (docs/configs.md)\n"
     "  -o, --output F    the GGUF file (written to F.tmp, then renamed)\n"
     "  --tokenizer F     tokenizer to use instead of the model's own\n"
     "  --calib FILE      calibration text for -gptq, -awq and -smooth configs; --calib-seqs\n"
     "                    and --calib-len as the run's plan had them (calibration: sequences,\n"
     "                    seq_len) so that the export holds the weights that run measured\n"},
    {"import", cmd_import, "record lm-eval samples or a llama-bench table in a run, as imported",
     "usage: qbrief import lm-eval SAMPLES.jsonl... --db D --run R --config NAME [--baseline]\n"
     "                    [--metric M] [--filter F] [--slice-field FIELD] [--task T]\n"
     "       qbrief import llama-bench FILE.json|.jsonl|.sql --db D --run R --config NAME\n"
     "\n"
     "Adds what another tool measured to run R as config NAME, labelled imported with each\n"
     "file's sha256; all files or nothing (docs/interop.md).\n"
     "  lm-eval       --log_samples output: one item per (task, doc_id), sliced by task;\n"
     "                the same item imported for two configs must have the same hashes\n"
     "  llama-bench   -o json, jsonl or sql: pp/tg speeds as latency on their device\n"
     "  --baseline    NAME is the reference the other configs are compared with on these\n"
     "                items\n"
     "  --metric M    the 0/1 metric that is correctness (default acc, acc_norm, exact_match)\n"
     "  --filter F    keep the samples of filter F (lm-eval logs one per filter)\n"
     "  --slice-field FIELD  slice TASK/doc[FIELD] instead of TASK\n"
     "  --task T      the task, when the file is not named samples_TASK_DATE.jsonl\n"},
};
const int qb_n_commands = sizeof qb_commands / sizeof qb_commands[0];

static void print_help(FILE *f)
{
    fprintf(f, "usage: qbrief <command> [options]\n\n"
               "qbrief measures what quantization costs a language model, slice by slice.\n\n"
               "commands:\n");
    for (int i = 0; i < qb_n_commands; i++)
        fprintf(f, "  %-14s %s\n", qb_commands[i].name, qb_commands[i].summary);
    fprintf(f, "\n'qbrief <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    const struct command *c;

    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("qbrief %s\n", QB_VERSION);
        return EXIT_OK;
    }
    if (!(c = qb_find_command(argv[1]))) {
        fprintf(stderr, "qbrief: '%s' is not a command\n\n", argv[1]);
        print_help(stderr);
        return EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}
