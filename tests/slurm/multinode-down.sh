#!/usr/bin/env bash
# Tear down the multi-node test cluster of multinode-up.sh: every process inside its
# namespaces (the daemons, the keepers, any job still running) gets SIGTERM, then SIGKILL
# after 10 s; then the namespaces are deleted and the state directory removed.
#
#   tests/slurm/multinode-down.sh [--if-marked FILE]
#
#   --if-marked  do nothing unless FILE exists (written by multinode-up.sh --mark FILE when
#                it started the cluster); FILE is removed
#
# Only namespaces named dnmn-* (made by multinode-up.sh) and the processes inside them are
# touched. Exit status 0 when none is left, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=multinode-lib.sh
source "$here/multinode-lib.sh"

case "${1:-}" in
    --if-marked)
        mark=${2:?--if-marked needs a file}
        [[ -e "$mark" ]] || { echo "multinode-down: cluster not started by this run ($mark absent): leaving it"; exit 0; }
        rm -f "$mark" ;;
    "") ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "multinode-down: unknown argument: $1" >&2; exit 1 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "multinode-down: must run as root" >&2; exit 1; }

mapfile -t spaces < <(ip netns list 2>/dev/null | awk -v p="$MN_PREFIX" 'index($1, p) == 1 { print $1 }')
# pids_in: every process in one of our namespaces.
pids_in() {
    local ns
    for ns in "${spaces[@]}"; do ip netns pids "$ns" 2>/dev/null || true; done
}
if ((${#spaces[@]})); then
    t0=$SECONDS
    mapfile -t pids < <(pids_in)
    ((${#pids[@]} == 0)) || kill -TERM "${pids[@]}" 2>/dev/null || true
    while [[ -n "$(pids_in)" ]] && ((SECONDS - t0 < 10)); do sleep 0.1; done
    mapfile -t pids < <(pids_in)
    if ((${#pids[@]})); then
        echo "multinode-down: ${#pids[@]} process(es) ignored SIGTERM for 10 s: SIGKILL" >&2
        kill -KILL "${pids[@]}" 2>/dev/null || true
        t0=$SECONDS
        while [[ -n "$(pids_in)" ]] && ((SECONDS - t0 < 5)); do sleep 0.1; done
    fi
    if [[ -n "$(pids_in)" ]]; then
        echo "multinode-down: processes still running in ${spaces[*]}: $(pids_in | tr '\n' ' ')" >&2
        exit 1
    fi
    for ns in "${spaces[@]}"; do ip netns del "$ns"; done
    echo "multinode-down: stopped ${#spaces[@]} machine(s): ${spaces[*]}"
fi
rm -rf "$MN_STATE"
