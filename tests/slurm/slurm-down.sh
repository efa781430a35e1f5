#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/slurm-up.sh: slurmd, slurmctld, then munged,
# each by its pid file, waiting for it to exit; stale pid files are removed.
#
#   tests/slurm/slurm-down.sh [--keep-munge]
#
# Exit status 0 when no daemon from the pid files is left running, 1 otherwise.
set -euo pipefail

keep_munge=0
case "${1:-}" in
    --keep-munge) keep_munge=1 ;;
    "") ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "slurm-down: unknown argument: $1" >&2; exit 1 ;;
esac

status=0

# shellcheck source-path=SCRIPTDIR source=process.sh
source "$(dirname "${BASH_SOURCE[0]}")/process.sh"  # alive PID

# stop NAME PIDFILE: TERM, wait up to 20 s, then KILL; remove the pid file.
stop() {
    local name=$1 pidfile=$2 pid i
    if [[ ! -e "$pidfile" ]]; then return 0; fi
    pid=$(<"$pidfile")
    if ! alive "$pid"; then
        echo "slurm-down: removing stale $pidfile"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        echo "slurm-down: $name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    if alive "$pid"; then
        echo "slurm-down: $name (pid $pid) is still running" >&2
        status=1
    else
        rm -f "$pidfile"
        echo "slurm-down: stopped $name (pid $pid)"
    fi
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
if ((keep_munge == 0)); then
    stop munged /run/munge/munged.pid
fi
exit "$status"
