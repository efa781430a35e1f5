#!/usr/bin/env bash
# The rank-count invariance of whole runs (the one harness for it): the same seed and config
# give bit-identical weights, metrics and tree at 1, 2 and 4 ranks, for every loss — the
# batch-coupled ones (ref_nce, ref_subtract) and the per-item ones (infonce, simp) — with
# momentum and weight decay, and an eval_chunk that splits the evaluation differently at each
# rank count, with either gradient transport on one host (shared memory, MPI's all-reduce),
# and with uneven splits of the work among the ranks (balance). (tests/unit/
# test_mpi_invariance.cpp: the sample stream's slicing and that all ranks hold the same
# weights; tests/e2e: a 2-rank run's file layout.)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for loss in "loss=ref_nce" "loss=infonce negatives=3" "loss=simp" "loss=ref_subtract negatives=3"; do
  # shellcheck disable=SC2206
  cfg=(depth=4 hid=6 samples_per_pass=4096 batch=64 eval_chunk=300 seed=5 epochs=2 momentum=0.9 weight_decay=1e-4 $loss)
  for np in 1 2 4; do
    dualnet_np "$np" train "${cfg[@]}" out="$work/np$np" overwrite=true >/dev/null
  done
  # On one host reducer=auto sums the gradient through shared memory; MPI's all-reduce too.
  dualnet_np 2 train "${cfg[@]}" reducer=mpi out="$work/np2mpi" overwrite=true >/dev/null
  # Uneven fixed splits of every step and evaluation pass (balance=auto moves the split by
  # the ranks' measured speeds, so its splits cannot be chosen; these can), one held at a
  # rank's most (1.5 times its even share).
  dualnet_np 2 train "${cfg[@]}" balance=3,1 out="$work/np2skew" overwrite=true >/dev/null
  dualnet_np 4 train "${cfg[@]}" balance=1,2,3,4 out="$work/np4skew" overwrite=true >/dev/null
  for run in np2 np4 np2mpi np2skew np4skew; do
    same_metrics "$work/np1" "$work/$run"
    same_weights "$work/np1" "$work/$run"
    h5diff -q "$work/np1/metrics.h5" "$work/$run/metrics.h5" /hltm /hltm ||
      fail "$loss: /hltm differs between 1 rank and $run"
  done
  echo "$loss: 1, 2 and 4 ranks (2 also with reducer=mpi, 2 and 4 with uneven splits) bit-identical"
done
echo "PASS: rank-count invariance"
