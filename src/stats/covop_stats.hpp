#pragma once
// Covariance-operator statistics per node (docs/science.md#covop-statistics), one of the two
// measurements of an evaluation pass (stats/evaluator.hpp runs both). accumulate() sums, for
// every node mu and root class, conn_mu = input_mu (x) J_mu over the anchors, where
// J_mu = d h_root / d h_mu (the ReLU gate of mu included), as exact fixed-point totals
// (stats/eval_layout.hpp). finish() turns them into Delta (stats/class_mean_difference.hpp),
// the Gram matrices of the operator p0 p1 Delta Delta^T in both reshapes, their norms, the
// spectrum and the alignment of the weights with it, a batch of nodes at a time.
#include <cstdint>

#include "hltm/hltm.hpp"
#include "model/network.hpp"
#include "stats/class_mean_difference.hpp"
#include "stats/eval_layout.hpp"
#include "stats/eval_result.hpp"
#include "stats/tree_windows.hpp"

namespace dualnet {

class CovopStats {
 public:
  // chunk: anchors per accumulate(), a multiple of kEvalBlock. split: the level the tree is
  // cut at for the Jacobians (stats/tree_windows.hpp); 0 chooses it (tests force one).
  CovopStats(const TreeShape& tree, const EvalLayout& layout, std::int64_t chunk, int split = 0);
  // The windows a CovopStats of this tree uses (split 0: the one it chooses).
  static TreeWindows windows_of(const TreeShape& tree, int split = 0);
  // Bytes the constructor allocates, and the most finish() holds at once (Views only).
  static double workspace_bytes(const TreeShape& tree, std::int64_t chunk);
  static double finish_bytes(const TreeShape& tree);
  // Workspace bytes per anchor of a chunk (the Jacobians and their open-gate lists, in the
  // slots of the windows it chooses).
  static double bytes_per_anchor(const TreeShape& tree);
  // Nodes per batch of finish() (nodes fed by neurons come first and are the largest).
  static int batch_nodes(const TreeShape& tree);

  // Adds `rows` anchors (view 0 only) of the forward pass that filled act (its padded
  // weights included) to `total`; the rows start at a block boundary.
  void accumulate(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                  const View1<std::int64_t>& total) const;
  // covop_norm_ref, covop_norm_paper, gram_paper, covop_eigenvalues and covop_alignment of r,
  // from the all-reduced totals; the alignment is that of `params`, the weights evaluated.
  void finish(const View1<std::int64_t>& total, const View1<real>& params, EvalResult* r) const;

  // The steps of accumulate(), one kernel each (public only because CUDA does not allow
  // device lambdas in private member functions).
  void class_order(const SampleBatch& samples, std::int64_t rows) const;
  void root_jacobians() const;
  void jacobians(const Activations& act, std::int64_t rows, const TreeWindow& win) const;
  void conn_sums(const SampleBatch& samples, const Activations& act, std::int64_t rows, const TreeWindow& win,
                 const View1<std::int64_t>& total) const;

 private:
  TreeShape t_;
  EvalLayout l_;
  int stride_;                  // a row of jac_: the root's neurons and their padding (model/padded_layout.hpp)
  TreeWindows windows_;         // where each node's Jacobians are kept: its slot in its window
  View3<real> jac_;             // [slot][anchor][k*stride + a]: J_mu^T(open[k], a), open gates only
  View3<int> open_;             // [slot][anchor][k]: the neuron of open gate k, ascending
  View2<int> open_count_;       // [slot][anchor]: open gates
  View1<std::int64_t> row_at_;  // [slot]: the anchor at each place of its block's class order
  View1<int> class0_count_;     // [block] anchors with root 0
};

}  // namespace dualnet
