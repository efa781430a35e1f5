#!/usr/bin/env bash
# No single-thread kernel in the training step or the evaluation's per-chunk work
# (docs/gpu.md#step-budget): on a GPU a kernel of one thread (`range(1)`, `teams(1)`) runs
# one of thousands of cores, and the budget test (tests/budget) counts launches, not their
# width. Checked in the sources whose kernels run every step or every chunk.
#
#   tests/lint/check_step_kernels.sh
#
# Exit status: 0 clean, 1 findings.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
files=(src/train/trainer.cpp src/train/sgd.cpp src/loss/loss.cpp src/model/network.cpp src/hltm/hltm.cpp
  src/stats/correlation_stats.cpp src/stats/covop_stats.cpp src/comm/reducer.cpp)
for f in "${files[@]}"; do [[ -f $f ]] || { echo "missing $f (renamed? update this list)" >&2; exit 1; }; done
if grep -nE '\b(range|teams)\(\s*1\s*\)|RangePolicy<[^>]*>\(\s*0\s*,\s*1\s*\)' "${files[@]}"; then
  echo "single-thread kernels above: give each a parallel range, or fold the work into a kernel that has one" >&2
  exit 1
fi
echo "no single-thread kernel in ${#files[@]} step and evaluation sources"
