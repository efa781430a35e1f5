#!/usr/bin/env bash
# One machine of the multi-node test cluster; started by multinode-up.sh inside fresh network,
# UTS and mount namespaces (do not run it by hand):
#   multinode-machine.sh ROLE(head|node) NAME STATE_DIR
# Gives the machine its host name, a private /run and /dev/shm (munged's socket, pid files;
# Open MPI's shared-memory files must not collide between "nodes"), the cluster's /etc/hosts
# and /etc/slurm, then starts munged and slurmctld (head) or slurmd (node), writes
# STATE_DIR/NAME.status (ready, or the error) and becomes `sleep infinity`, the process that
# keeps the namespaces alive.
set -euo pipefail
role=$1 name=$2 state=$3
status="$state/$name.status"
trap 'echo "failed at line $LINENO" >"$status"' ERR

hostname "$name"
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount --bind "$state/etc/hosts" /etc/hosts
mount --bind "$state/etc/slurm" /etc/slurm
# munged refuses a socket directory that is not 755 and owned by munge.
mkdir -p /run/munge
chown munge:munge /run/munge
chmod 755 /run/munge
runuser -u munge -- munged
if [[ "$role" == head ]]; then
    slurmctld
else
    slurmd
fi
echo ready >"$status"
trap - ERR
exec sleep infinity
