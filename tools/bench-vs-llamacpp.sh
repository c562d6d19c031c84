#!/usr/bin/env bash
# qbrief against llama.cpp on the same GGUF files, and against llama2.c's run.c on stories260K.
# Not a test; prints one table. Reads no network except `npm i` on the first run.
#
#   tools/bench-vs-llamacpp.sh [REPS]        (default 5 repetitions per engine and format)
#
# Environment:
#   QB_BENCH_DIR   scratch folder outside the repository (default /tmp/qb-bench, ~4 GB): the
#                  random 1.1B Llama (TinyLlama's shape) as rand-1b-{q4_0,q8_0,f16}.gguf with the
#                  Llama 2 vocabulary (tools/make-random-model.py), written once, and
#                  npm/ with node-llama-cpp@3.21.1 (`npm i -E node-llama-cpp@3.21.1
#                  --ignore-scripts`: llama.cpp's prebuilt CPU library; not a qbrief dependency)
#   THREADS        threads of both engines (default 2)
#   FORMATS        which of q4_0 q8_0 f16 (default all three)
#   QB_BASE_ENGINE another build of build/tools/bench-engine (e.g. copied from an older tree):
#                  a third engine in the same interleaving, and a column with qbrief's speed
#                  over that build's (before/after a change, in one run)
#   LLAMA2C_RUN_C  path of llama2.c's run.c (github.com/karpathy/llama2.c); built here with
#                  gcc -Ofast -march=native into QB_BENCH_DIR; the stories260K row is skipped,
#                  with a message, when unset or absent
#
# Each format loads both engines once (tools/bench-llamacpp.mjs, build/tools/bench-engine), then
# alternates their repetitions (A B, B A, ...) so that a load change on a shared machine hits
# both; cells are medians over the repetitions, the ratio is qbrief's speed over llama.cpp's
# (above 1: qbrief faster). Prefill: a prompt of 128 / 512 token ids in one batch, last logits
# only; decode: 64 greedy tokens after a 128-token prompt. Every repetition's line is also
# appended to QB_BENCH_DIR/raw.log.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-5}
DIR=${QB_BENCH_DIR:-/tmp/qb-bench}
THREADS=${THREADS:-2}
FORMATS=${FORMATS:-q4_0 q8_0 f16}
VOCAB=../shared/models/llama2-tokenizer/tokenizer.model
STORIES=../shared/models/stories260K
declare -A CONFIG=([q4_0]=w4g32-sym-a8 [q8_0]=w8a8 [f16]=f16)
declare -A LLNAME=([q4_0]=Q4_0 [q8_0]=Q8_0 [f16]=F16)

mkdir -p "$DIR"
make -s build/tools/bench-engine bin/qbrief >/dev/null
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
# speedup WHAT OTHER QBRIEF: qbrief's speed over the other's (times are inverted)
speedup() {
    case $1 in
    *_ms) awk -v a="$2" -v b="$3" 'BEGIN {printf "%.2fx", a / b}' ;;
    *) awk -v a="$2" -v b="$3" 'BEGIN {printf "%.2fx", b / a}' ;;
    esac
}
field() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p"; } # field NAME < lines: NAME's values

have_llama=1
if [ ! -f "$VOCAB" ]; then
    echo "skipped: the 1.1B rows need $VOCAB (../shared/models absent)"
    have_llama=0
elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "skipped: the 1.1B rows need node and npm for llama.cpp (node-llama-cpp)"
    have_llama=0
elif [ ! -f "$DIR/npm/node_modules/node-llama-cpp/package.json" ]; then
    mkdir -p "$DIR/npm"
    (cd "$DIR/npm" && npm i -E node-llama-cpp@3.21.1 --ignore-scripts --no-audit --no-fund \
        >"$DIR/npm.log" 2>&1) || { echo "skipped: npm i failed, see $DIR/npm.log"; have_llama=0; }
fi

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg); $THREADS threads; medians of $REPS interleaved" \
    "repetitions; ratio = qbrief speed / llama.cpp speed"
BASE=${QB_BASE_ENGINE:-}
if [ -n "$BASE" ]; then
    printf '%-40s %10s %10s %7s %10s %7s\n' "measure" "llama.cpp" "qbrief" "ratio" "before" \
        "after/before"
else
    printf '%-40s %10s %10s %7s\n' "measure" "llama.cpp" "qbrief" "ratio"
fi

# one format: both engines loaded side by side, repetitions interleaved
bench_format() {
    local fmt=$1 model="$DIR/rand-1b-$1.gguf" cfg=${CONFIG[$1]} q=() l=() b=() r line sides
    [ -f "$model" ] || python3 tools/make-random-model.py "$model" --preset 1b --type "$fmt" \
        --vocab "$VOCAB" >/dev/null
    local fifo="$DIR/fifo.$$"
    rm -f "$fifo".*
    mkfifo "$fifo".qi "$fifo".qo "$fifo".li "$fifo".lo "$fifo".bi "$fifo".bo
    build/tools/bench-engine "$model" "$cfg" --threads "$THREADS" <"$fifo".qi >"$fifo".qo \
        2>"$DIR/qb.err" &
    node tools/bench-llamacpp.mjs "$DIR/npm" "$model" 128,512 64 "$THREADS" <"$fifo".li \
        >"$fifo".lo 2>"$DIR/ll.err" &
    exec {qin}>"$fifo".qi {qout}<"$fifo".qo {lin}>"$fifo".li {lout}<"$fifo".lo
    if [ -n "$BASE" ]; then
        "$BASE" "$model" "$cfg" --threads "$THREADS" <"$fifo".bi >"$fifo".bo 2>"$DIR/base.err" &
        exec {bin}>"$fifo".bi {bout}<"$fifo".bo
    fi
    rm -f "$fifo".*
    for r in $(seq "$REPS"); do
        sides="q l"
        [ -n "$BASE" ] && sides="q l b"
        ((r % 2)) || sides=$(echo "$sides" | rev)
        for side in $sides; do
            if [ "$side" = b ]; then
                echo go >&"$bin"
                read -r line <&"$bout" || { cat "$DIR/base.err" >&2; return 1; }
                b+=("$line")
                echo "$fmt before: $line" >>"$DIR/raw.log"
            elif [ "$side" = q ]; then
                echo go >&"$qin"
                read -r line <&"$qout" || { cat "$DIR/qb.err" >&2; return 1; }
                q+=("$line")
                echo "$fmt qbrief: $line" >>"$DIR/raw.log"
            else
                echo go >&"$lin"
                read -r line <&"$lout" || { cat "$DIR/ll.err" >&2; return 1; }
                l+=("$line")
                echo "$fmt llama.cpp: $line" >>"$DIR/raw.log"
            fi
        done
    done
    exec {qin}>&- {lin}>&-
    [ -n "$BASE" ] && exec {bin}>&-
    wait
    exec {qout}<&- {lout}<&-
    [ -n "$BASE" ] && exec {bout}<&-
    local what name lv qv bv ratio bratio
    for what in prefill128_ms prefill512_ms decode_tok_s; do
        lv=$(printf '%s\n' "${l[@]}" | field "$what" | median)
        qv=$(printf '%s\n' "${q[@]}" | field "$what" | median)
        case $what in
        prefill128_ms) name="prefill 128, ms" ;;
        prefill512_ms) name="prefill 512, ms" ;;
        decode_tok_s) name="decode, tok/s" ;;
        esac
        # ratio as speed: time ratios are inverted
        ratio=$(speedup "$what" "$lv" "$qv")
        if [ -n "$BASE" ]; then
            bv=$(printf '%s\n' "${b[@]}" | field "$what" | median)
            bratio=$(speedup "$what" "$bv" "$qv")
            printf '%-40s %10s %10s %7s %10s %7s\n' "${LLNAME[$fmt]} vs $cfg: $name" "$lv" "$qv" \
                "$ratio" "$bv" "$bratio"
        else
            printf '%-40s %10s %10s %7s\n' "${LLNAME[$fmt]} vs $cfg: $name" "$lv" "$qv" "$ratio"
        fi
    done
}

if [ "$have_llama" = 1 ]; then
    for fmt in $FORMATS; do bench_format "$fmt"; done
fi

# stories260K, one thread: llama2.c's run.c (its own "achieved tok/s": every position after the
# first, the prompt's too, one token per forward) against qbrief generate's decode tokens/s
if [ -z "${LLAMA2C_RUN_C:-}" ] || [ ! -f "${LLAMA2C_RUN_C:-}" ]; then
    echo "skipped: stories260K vs llama2.c's run.c (set LLAMA2C_RUN_C to the path of run.c)"
elif [ ! -f "$STORIES/stories260K.bin" ]; then
    echo "skipped: stories260K vs run.c ($STORIES absent)"
else
    gcc -Ofast -march=native -o "$DIR/llama2c-run" "$LLAMA2C_RUN_C" -lm
    rc=() qb=()
    for _ in $(seq "$REPS"); do
        rc+=("$("$DIR/llama2c-run" "$STORIES/stories260K.bin" -z "$STORIES/tok512.bin" -t 0 \
            -n 512 -i "Once upon a time" 2>&1 >/dev/null | sed -n 's/achieved tok\/s: //p')")
        qb+=("$(OMP_NUM_THREADS=1 bin/qbrief generate "$STORIES/stories260K.bin" --tokenizer \
            "$STORIES/tok512.bin" -p "Once upon a time" -n 508 --threads 1 2>&1 >/dev/null |
            sed -n 's/^decode:.*(\([0-9.]*\) tokens\/s).*/\1/p')")
    done
    lv=$(printf '%s\n' "${rc[@]}" | median)
    qv=$(printf '%s\n' "${qb[@]}" | median)
    printf '%-40s %10s %10s %7s\n' "stories260K 1 thread tok/s" "${lv%.*}" "${qv%.*}" \
        "$(awk -v a="$lv" -v b="$qv" 'BEGIN {printf "%.2fx", b / a}')"
    echo "(stories260K row: llama2.c's run.c in the llama.cpp column)"
fi
