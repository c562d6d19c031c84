#!/usr/bin/env bash
# bench-shards: wall time of a plan submitted with `qbrief slurm` to the local one-node
# cluster (scripts/slurm-local.sh), from submission until the merge-and-brief job has
# finished, for each shard count given.
#
#     tools/bench-shards.sh [PLAN] [N...]      (default: examples/demo/plan.yaml 1 2 4)
#
# Needs root and the Slurm packages; starts the cluster when it is down and stops what it
# started. Prints one line per count: shards, seconds, and the merge job's last line.
set -u
cd "$(dirname "$0")/.."
plan=${1:-examples/demo/plan.yaml}
shift || true
[ $# -gt 0 ] || set -- 1 2 4
started=0
if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
    scripts/slurm-local.sh start >/dev/null || exit 1
    started=1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-shards.XXXXXX")
echo "shards seconds"
for n in "$@"; do
    d=$work/n$n
    t0=$(date +%s.%N)
    out=$(bin/qbrief slurm "$plan" --shards "$n" --dir "$d" --db "$d/merged.db" -o "$d/brief.pdf") || exit 1
    merge=$(printf '%s\n' "$out" | sed -n 's/^merge job \([0-9]*\).*/\1/p')
    while squeue -h -j "$merge" 2>/dev/null | grep -q .; do sleep 1; done
    t1=$(date +%s.%N)
    printf "%s %s %s\n" "$n" "$(awk "BEGIN { printf \"%.0f\", $t1 - $t0 }")" "$(tail -1 "$d/merge.log" 2>/dev/null)"
done
rm -rf "$work"
[ "$started" = 0 ] || scripts/slurm-local.sh stop >/dev/null
