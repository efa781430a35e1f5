#!/usr/bin/env bash
# Two builds of dualnet must give the same bits: a short reference training with REFERENCE
# (as is), then with CANDIDATE once per SETTING (environment assignments, e.g. the threads and
# team size of an OpenMP build). Every dataset of metrics.h5 but samples_per_s, and of the
# last checkpoint (weights, velocity, losses), must be byte-identical to the reference's
# (tests/slurm/compare_metrics.py). CI compares the Serial build with the OpenMP builds
# (.ci/run, docs/gpu.md).
#
# Usage: tests/backends/compare_backends.sh [options] REFERENCE CANDIDATE [SETTING ...]
#   REFERENCE, CANDIDATE   dualnet binaries
#   SETTING                "VAR=VALUE ..." for one candidate run (default: one run, no change)
# Options:
#   --keys "K=V ..."       training keys of every run (default: "epochs=2 samples_per_pass=16000")
#   --candidate-keys "K=V ..."
#                          keys for the candidate runs only: a check of this script, e.g.
#                          seed=2 must make it fail
#   --workdir DIR          where the runs go (default: a temporary directory, removed after)
# Environment: DUALNET_PYTHON, a python with h5py (default <repo>/.venv/bin/python).
# Exit status: 0 all identical, 1 a difference or a failed run, 2 bad usage.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
keys="epochs=2 samples_per_pass=16000"
candidate_keys=""
workdir=""
usage() {
  sed -n '9,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [[ $# -gt 0 && $1 == --* ]]; do
  [[ $# -ge 2 ]] || usage
  case $1 in
    --keys) keys=$2 ;;
    --candidate-keys) candidate_keys=$2 ;;
    --workdir) workdir=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[[ $# -ge 2 ]] || usage
reference=$1 candidate=$2
shift 2
settings=("$@")
((${#settings[@]} > 0)) || settings=("")
python=${DUALNET_PYTHON:-$repo/.venv/bin/python}
for b in "$reference" "$candidate"; do
  [[ -x $b ]] || { echo "compare_backends: no dualnet binary at $b" >&2; exit 2; }
done
[[ -x $python ]] || { echo "compare_backends: no python at $python (run cmake/setup-debian.sh, or set DUALNET_PYTHON)" >&2; exit 2; }

if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/compare-backends.XXXXXX")
  trap 'rm -rf "$workdir"' EXIT
fi
mkdir -p "$workdir"
read -r -a key_args <<<"$keys"
read -r -a candidate_args <<<"$candidate_keys"

# run NAME BINARY SETTING [KEY=VALUE ...]: one training into $workdir/NAME, its log beside it.
run() {
  local name=$1 bin=$2 setting=$3 assignments start
  shift 3
  read -r -a assignments <<<"$setting"
  start=$SECONDS
  if ! env "${assignments[@]}" "$bin" train "$repo/configs/reference.toml" "${key_args[@]}" "$@" \
    out="$workdir/$name" overwrite=true >"$workdir/$name.log" 2>&1; then
    echo "compare_backends: FAIL: the run $name ($bin${setting:+ with $setting}) failed; its log:" >&2
    tail -n 20 "$workdir/$name.log" >&2
    return 1
  fi
  echo "compare_backends: $name: $(grep -m1 'execution space' "$workdir/$name.log" | sed 's/  */ /g')," \
    "$((SECONDS - start)) s${setting:+ ($setting)}"
}

# same NAME: the candidate run NAME against the reference, metrics and last checkpoint.
same() {
  local name=$1 a b
  a=$workdir/reference b=$workdir/$name
  "$python" "$repo/tests/slurm/compare_metrics.py" "$a/metrics.h5" "$b/metrics.h5" || return 1
  "$python" "$repo/tests/slurm/compare_metrics.py" \
    "$a/checkpoints/$(cat "$a/checkpoints/latest")" "$b/checkpoints/$(cat "$b/checkpoints/latest")" || return 1
}

echo "compare_backends: keys: ${keys}${candidate_keys:+; candidate only: $candidate_keys}"
run reference "$reference" ""
failed=0
for i in "${!settings[@]}"; do
  name=candidate$((i + 1))
  if run "$name" "$candidate" "${settings[$i]}" "${candidate_args[@]}" && same "$name"; then
    echo "compare_backends: $name is bit-identical to the reference"
  else
    echo "compare_backends: FAIL: $name (${settings[$i]:-no environment change}${candidate_keys:+; keys $candidate_keys})" \
      "differs from the reference" >&2
    failed=1
  fi
done
exit "$failed"
