#!/usr/bin/env bash
# Run a command on a machine of the multi-node test cluster (multinode-up.sh):
#
#   tests/slurm/multinode-run.sh MACHINE CMD...     e.g.  multinode-run.sh head sinfo
#
# MACHINE is head or n1..nN. The command sees that machine's host name, network, /etc/hosts
# and /etc/slurm, and keeps this shell's environment and working directory.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=multinode-lib.sh
source "$here/multinode-lib.sh"
(($# >= 2)) || { sed -n '2,7p' "$0" >&2; exit 2; }
mn_run "$@"
