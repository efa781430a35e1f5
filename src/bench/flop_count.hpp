#pragma once
// Nominal floating-point operations of dualnet's kernels (a multiply-add counts 2), from
// the tree's shape alone: what a dense implementation executes. The kernels are dense: they
// skip no work behind closed ReLU gates (docs/performance.md), and they also compute the
// padding columns of their tiles (hid = 10 as 12, model/padded_layout.hpp), which these
// counts leave out. FLOP rates from them are useful work per second, at most what the
// hardware executes.
#include "hltm/tree.hpp"

namespace dualnet {

struct FlopCount {
  double forward_per_view;   // bottom-up pass of one view, output normalisation included
  double backward_per_view;  // dL/dh for every neuron and the weight gradient
  double train_per_item;     // forward + backward of every view of an item
  double eval_per_anchor;    // forward, moments, cross sums, Jacobians, conn sums
};

FlopCount count_flops(const TreeShape& t, int views);

}  // namespace dualnet
