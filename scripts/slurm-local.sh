#!/bin/sh
# A one-node Slurm cluster on this machine, for tests and trying `qbrief slurm`:
#   scripts/slurm-local.sh start    munged, slurmctld and slurmd, as root, without systemd
#   scripts/slurm-local.sh stop     ends only what `start` started (the pids it recorded)
#   scripts/slurm-local.sh status   exit 0 when the node answers (sinfo), 1 otherwise
# Needs the Debian packages slurmctld slurmd slurm-client munge (scripts/install-deps.sh).
# Writes /etc/slurm/slurm.conf (marked as this script's; another one there is refused) and
# keeps its state under /var/spool/qbrief-slurm. start and stop are idempotent.
set -eu

STATE=${QB_SLURM_STATE:-/var/spool/qbrief-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by qbrief scripts/slurm-local.sh"

die() { echo "slurm-local: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_up() {
    out=$(sinfo -h -n localhost -o '%T' 2>/dev/null) || return 1
    case "$out" in idle* | mixed* | allocated* | completing*) return 0 ;; *) return 1 ;; esac
}

need() {
    [ "$(id -u)" -eq 0 ] || die "needs root (slurmd runs jobs as any user)"
    for b in munged slurmctld slurmd sinfo sbatch; do
        command -v "$b" >/dev/null 2>&1 || die "'$b' is not installed (apt-get install slurmctld slurmd slurm-client munge)"
    done
}

write_conf() {
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and is not this script's; move it away or use that cluster"
    fi
    node=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]*/NodeName=localhost/' -e 's/ UpTime=.*//')
    mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
    cat >"$CONF.tmp" <<CONF
$MARK
ClusterName=qbrief
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MinJobAge=3600
$node NodeHostname=$(hostname) State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    mv "$CONF.tmp" "$CONF"
}

start() {
    need
    if node_up; then
        echo "slurm-local: already running"
        return 0
    fi
    write_conf
    if ! pgrep -x munged >/dev/null 2>&1; then
        mkdir -p /run/munge
        chown munge:munge /run/munge 2>/dev/null || true
        rm -f /run/munge/munged.pid
        munged --force
        # the daemon's pid (munged forks; its pid file names the process that stays)
        i=0
        until alive /run/munge/munged.pid; do
            i=$((i + 1))
            [ "$i" -le 50 ] || die "munged did not start"
            sleep 0.1
        done
        cp /run/munge/munged.pid "$STATE/munged.started"
    fi
    if ! alive "$STATE/slurmctld.pid"; then
        slurmctld
        touch "$STATE/slurmctld.started"
    fi
    if ! alive "$STATE/slurmd.pid"; then
        slurmd -N localhost
        touch "$STATE/slurmd.started"
    fi
    i=0
    while ! node_up; do
        i=$((i + 1))
        [ "$i" -le 60 ] || die "the node did not come up in 30 s; see $STATE/slurmctld.log and $STATE/slurmd.log"
        sleep 0.5
    done
    echo "slurm-local: up (partition main, node localhost; state in $STATE)"
}

stop_one() { # NAME PIDFILE
    if [ -f "$STATE/$1.started" ]; then
        if alive "$2"; then
            pid=$(cat "$2")
            kill "$pid"
            i=0
            while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
        fi
        rm -f "$STATE/$1.started"
    fi
}

stop() {
    [ -d "$STATE" ] || { echo "slurm-local: nothing to stop"; return 0; }
    stop_one slurmd "$STATE/slurmd.pid"
    stop_one slurmctld "$STATE/slurmctld.pid"
    if [ -f "$STATE/munged.started" ]; then
        pid=$(cat "$STATE/munged.started")
        if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = munged ]; then
            kill "$pid"
        fi
        rm -f "$STATE/munged.started"
    fi
    echo "slurm-local: stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if node_up; then echo "slurm-local: up"; else echo "slurm-local: down"; exit 1; fi ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
