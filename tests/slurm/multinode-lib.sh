# shellcheck shell=bash
# Shared by the multi-node test cluster scripts (multinode-up.sh, multinode-down.sh,
# multinode-run.sh, test_multinode.sh): where its state lives and how to run a command on
# one of its machines. Source it; it runs nothing by itself.
#
# The cluster: a head (slurmctld) and DUALNET_MN_NODES compute nodes n1..nN (slurmd), each
# in its own network + UTS + mount namespace (named dnmn-<machine>), joined by a bridge in
# the head's namespace on 10.77.0.0/24. Nothing is added to the root namespace, so the
# one-node cluster of slurm-up.sh (ports 6817/6818 of the root namespace) can run alongside.

# shellcheck disable=SC2034  # used by the scripts that source this file
MN_STATE=${DUALNET_MN_STATE:-/var/lib/dualnet-mn}
MN_PREFIX=dnmn-
MN_NET=10.77.0
MN_HEAD_IP=$MN_NET.1

# mn_ns MACHINE: the network namespace of head / n1 / n2 ...
mn_ns() { printf '%s%s\n' "$MN_PREFIX" "$1"; }

# mn_keeper MACHINE: pid of the process that holds MACHINE's namespaces (sleep infinity);
# empty when there is none alive.
mn_keeper() {
    local f="$MN_STATE/$1.keeper" pid
    [[ -s "$f" ]] || return 0
    pid=$(<"$f")
    # Only a live process that is still in that machine's network namespace counts.
    if [[ "$pid" =~ ^[0-9]+$ && -e "/proc/$pid" && -e "/run/netns/$(mn_ns "$1")" ]] &&
        [[ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" == "$(stat -L -c %i "/run/netns/$(mn_ns "$1")" 2>/dev/null)" ]]; then
        echo "$pid"
    fi
}

# mn_machines: the machines of the running cluster (head first), from its state.
mn_machines() {
    [[ -s "$MN_STATE/machines" ]] && cat "$MN_STATE/machines"
    return 0
}

# mn_run MACHINE CMD...: run CMD on MACHINE (in its network, host name and mounts: its
# /etc/slurm and /etc/hosts are the cluster's). The environment and working directory stay.
mn_run() {
    local m=$1 pid
    shift
    pid=$(mn_keeper "$m")
    [[ -n "$pid" ]] || { echo "multinode: machine '$m' is not running (tests/slurm/multinode-up.sh)" >&2; return 1; }
    # Entering a mount namespace moves to its root: go back to this directory.
    nsenter -t "$pid" -n -u -m --wd="$PWD" -- "$@"
}
