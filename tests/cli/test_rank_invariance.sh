#!/usr/bin/env bash
# The same seed and config give bit-identical weights and metrics at 1, 2 and 4 ranks,
# for a batch-coupled loss (ref_nce) and a per-item one (infonce with 3 negatives).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for loss in "loss=ref_nce" "loss=infonce negatives=3"; do
  # shellcheck disable=SC2206
  cfg=(depth=4 hid=6 samples_per_pass=4096 batch=64 seed=5 epochs=2 momentum=0.9 weight_decay=1e-4 $loss)
  for np in 1 2 4; do
    dualnet_np "$np" train "${cfg[@]}" out="$work/np$np" overwrite=true >/dev/null
  done
  for np in 2 4; do
    same_metrics "$work/np1" "$work/np$np"
    same_weights "$work/np1" "$work/np$np"
  done
  echo "$loss: 1, 2 and 4 ranks bit-identical"
done
echo "PASS: rank-count invariance"
