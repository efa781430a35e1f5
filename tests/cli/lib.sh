#!/usr/bin/env bash
# Shared by the command-line tests: where the binary and mpiexec are, and run comparison.
#   DUALNET_BIN      the dualnet binary (default <repo>/build/dualnet)
#   DUALNET_MPIEXEC  mpiexec with its flags (default: mpiexec, plus root flags when root)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${DUALNET_BIN:-$repo/build/dualnet}
if [[ -n ${DUALNET_MPIEXEC:-} ]]; then
  read -r -a mpiexec <<<"$DUALNET_MPIEXEC"
elif [[ $(id -u) -eq 0 ]]; then
  mpiexec=(mpiexec --allow-run-as-root --oversubscribe)
else
  mpiexec=(mpiexec --oversubscribe)
fi
[[ -x $bin ]] || { echo "no dualnet binary at $bin (build it, or set DUALNET_BIN)" >&2; exit 1; }
command -v h5diff >/dev/null || { echo "h5diff missing (apt-get install hdf5-tools)" >&2; exit 1; }

# Runs dualnet on NP ranks (1: without mpiexec); -q keeps mpiexec's own banners off stderr.
dualnet_np() {
  local np=$1
  shift
  if [[ $np == 1 ]]; then "$bin" "$@"; else "${mpiexec[@]}" -q -n "$np" "$bin" "$@"; fi
}

# Every /metrics dataset but the timing one must be bit-identical in two runs (the epoch
# scale is left out: its attributes hold object references, which h5diff compares too).
same_metrics() {
  local a=$1 b=$2 ds
  for ds in corr best_corr level_mean_best_corr covop_norm_ref covop_norm_paper weight_norm \
    train_loss_mean train_loss_sem corr_full; do
    if ! h5diff -q "$a/metrics.h5" "$b/metrics.h5" "/metrics/$ds" "/metrics/$ds"; then
      echo "FAIL: /metrics/$ds differs between $a and $b" >&2
      h5diff "$a/metrics.h5" "$b/metrics.h5" "/metrics/$ds" "/metrics/$ds" | head -5 >&2
      return 1
    fi
  done
}

# The final weights (and optimiser state) in the latest checkpoints must be identical.
same_weights() {
  local a=$1 b=$2 ca cb
  ca=$a/checkpoints/$(cat "$a/checkpoints/latest")
  cb=$b/checkpoints/$(cat "$b/checkpoints/latest")
  for ds in params velocity; do
    if ! h5diff -q "$ca" "$cb" "/$ds" "/$ds"; then
      echo "FAIL: /$ds differs between $ca and $cb" >&2
      return 1
    fi
  done
}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
