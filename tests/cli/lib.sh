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

# The /metrics datasets with a row per evaluation (their first axis extendible), as the file
# itself lists them (dualnet's list is metrics_datasets() in src/io/metrics_file.cpp), but
# the epoch scale (its attributes hold object references, which h5diff compares too) and the
# timing samples_per_s.
row_datasets() {
  h5ls "$1/metrics.h5/metrics" | awk '$2 == "Dataset" && $3 ~ /\/Inf/ && $1 != "epoch" && $1 != "samples_per_s" { print $1 }'
}

# Every /metrics dataset but the timing one must be bit-identical in two runs.
same_metrics() {
  local a=$1 b=$2 ds names
  names=$(row_datasets "$a")
  if [[ -z $names || $names != "$(row_datasets "$b")" ]]; then
    echo "FAIL: $a and $b do not hold the same /metrics datasets" >&2
    return 1
  fi
  for ds in $names; do
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
