#pragma once
// Delta, the class-mean difference of the connection tensors (docs/science.md#covop-statistics):
//   Delta = (mean conn | root 0) - (mean conn | root 1),  conn = input_mu (x) J_mu,
// from the exact (all-reduced) totals of an evaluation pass. The one place Delta is
// computed: the covariance-operator norms and spectrum (stats/covop_stats.cpp) and the
// theorem check of `dualnet covop` (stats/covop_check.cpp) all read it from here.
#include <cstdint>

#include "stats/eval_layout.hpp"

namespace dualnet {

// Anchors of each root class in a pass; p0 p1 weighs the operator p0 p1 Delta Delta^T.
struct RootClasses {
  double n0 = 0.0, n1 = 0.0;
  double p0() const { return n0 / (n0 + n1); }
  double p1() const { return n1 / (n0 + n1); }
  bool both() const { return n0 > 0.0 && n1 > 0.0; }  // else Delta is undefined (NaN)
};

RootClasses root_classes(const View1<std::int64_t>& total);

// Delta's entries first, first + 1, ... (as many as delta holds) of the flat conn layout of
// TreeShape (node, i, a, b); NaN where a class is empty.
void class_mean_difference(const EvalLayout& layout, const View1<std::int64_t>& total, const RootClasses& classes,
                           std::int64_t first, const View1<real>& delta);

}  // namespace dualnet
