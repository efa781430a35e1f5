#pragma once
// Neuron-latent correlations and neuron activity (docs/science.md#correlations), one of the
// two measurements of an evaluation pass (stats/evaluator.hpp runs both):
//  - correlation: sums of z, h, h^2 and z*h for every latent z and neuron h;
//  - dead neurons: per neuron, the number of anchors on which it is active (h > 0);
//  - collapse: sums of h_i h_j over the root's neurons after the ReLU (the output's Gram).
// Anchors are summed in blocks of kEvalBlock (fixed by global index); each block's sums are
// rounded to fixed point and added as integers into the pass's totals (stats/eval_layout.hpp).
#include <cstdint>

#include "hltm/hltm.hpp"
#include "model/network.hpp"
#include "stats/eval_layout.hpp"
#include "stats/eval_result.hpp"

namespace dualnet {

class CorrelationStats {
 public:
  CorrelationStats(const TreeShape& tree, const EvalLayout& layout, bool all_pairs);
  // Bytes the constructor allocates, and the most finish() holds at once (Views only).
  static double workspace_bytes(const TreeShape& tree);
  static double finish_bytes(const TreeShape& tree, const EvalLayout& layout);

  // Pre-activations are summed relative to those of one reference anchor (row `row` of
  // act): correlations do not change, and the fixed-point sums keep their precision for
  // neurons whose spread is small compared with their mean. Same anchor on every rank.
  void set_shift(const Activations& act, std::int64_t row);
  // Adds `rows` anchors (view 0 only) to `total`; the rows start at a block boundary.
  void accumulate(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                  const View1<std::int64_t>& total) const;
  // corr_full, corr, best_corr, level_mean_best_corr, dead_fraction, active_fraction,
  // output_rank1_gap and samples of r, from the all-reduced totals.
  void finish(const View1<std::int64_t>& total, EvalResult* r) const;

  // The steps of accumulate() and finish(), one kernel or two each (public only because CUDA
  // does not allow device lambdas in private member functions).
  void moment_sums(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                   const View1<std::int64_t>& total) const;
  void cross_sums(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                  const View1<std::int64_t>& total) const;
  void correlations(const View1<real>& acc, EvalResult* r) const;
  void activity(const View1<real>& acc, EvalResult* r) const;

 private:
  TreeShape t_;
  EvalLayout l_;
  bool all_pairs_;
  View1<real> shift_;  // [neuron] reference pre-activations (set_shift)
};

}  // namespace dualnet
