#!/usr/bin/env bash
# Per-rank wrapper started by the launcher (srun or mpirun) for every task:
#   task.sh DUALNET_BIN ARGS...
# On a GPU node it appends --kokkos-device-id=<local rank modulo the GPUs this task sees>,
# so that the ranks of a node spread over its GPUs; then it execs dualnet (signals from the
# launcher reach dualnet directly).
# DUALNET_GPU: 1 = always add the device id, 0 = never, auto (default) = when Slurm allocated
# GPUs to the job on this node or CUDA/ROCm visible-device variables list some.
set -euo pipefail

(($# >= 1)) || { echo "task.sh: usage: task.sh DUALNET_BIN ARGS..." >&2; exit 2; }

# The launcher's own variables first: under mpirun every rank inherits the batch shell's
# SLURM_LOCALID (0), while srun sets SLURM_LOCALID per task and no MPI variables.
local_rank=${OMPI_COMM_WORLD_LOCAL_RANK:-${MPI_LOCALRANKID:-${PMI_LOCAL_RANK:-${SLURM_LOCALID:-0}}}}

visible=${CUDA_VISIBLE_DEVICES:-${ROCR_VISIBLE_DEVICES:-${HIP_VISIBLE_DEVICES:-}}}
[[ "$visible" == NoDevFiles ]] && visible=""
ngpus=0
if [[ -n "$visible" ]]; then
    IFS=, read -r -a devs <<<"$visible"
    ngpus=${#devs[@]}
elif [[ "${SLURM_GPUS_ON_NODE:-0}" =~ ^[0-9]+$ ]]; then
    ngpus=${SLURM_GPUS_ON_NODE:-0}
fi

use_gpu=0
case "${DUALNET_GPU:-auto}" in
    1) use_gpu=1 ;;
    0) use_gpu=0 ;;
    *) ((ngpus > 0)) && use_gpu=1 ;;
esac

if ((use_gpu)); then
    # Unknown GPU count (DUALNET_GPU=1 without visibility information): the local rank itself.
    dev=$local_rank
    ((ngpus == 0)) || dev=$((local_rank % ngpus))
    exec "$@" "--kokkos-device-id=$dev"
fi
exec "$@"
