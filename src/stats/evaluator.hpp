#pragma once
// One evaluation pass (docs/science.md#measurements): runs its two measurements on the same
// anchors and keeps their exact totals in one int64 View (stats/eval_layout.hpp), so one
// all-reduce makes them global and the statistics are the same bits for any number of ranks:
//  - neuron-latent correlations and neuron activity (stats/correlation_stats.hpp);
//  - covariance-operator statistics per node (stats/covop_stats.hpp).
// Also the sizing of its buffers, for the memory estimate (train/memory_estimate.cpp).
#include <cstdint>

#include "hltm/hltm.hpp"
#include "model/network.hpp"
#include "stats/correlation_stats.hpp"
#include "stats/covop_stats.hpp"
#include "stats/eval_layout.hpp"
#include "stats/eval_result.hpp"

namespace dualnet {

class Evaluator {
 public:
  // all_pairs: sum z*h for every latent and every neuron (what corr_full needs, O(nodes^2));
  // otherwise only for each node's own neurons (corr, best_corr), O(nodes).
  Evaluator(const NetworkShape& net, std::int64_t max_chunk, bool all_pairs = true);

  // Anchors per accumulate() call this evaluator was sized for: a multiple of kEvalBlock.
  std::int64_t chunk() const { return chunk_; }
  // The chunk an evaluator built with max_chunk uses (max_chunk rounded to whole blocks and
  // capped by the Jacobian workspace): the constructor and the memory estimate both use it.
  static std::int64_t chunk_for(const NetworkShape& net, std::int64_t max_chunk);
  // Bytes the constructor allocates for `chunk` anchors (in floating point, for the memory
  // estimate; tests check it against the allocations).
  static double workspace_bytes(const NetworkShape& net, std::int64_t chunk, bool all_pairs);
  // Peak bytes finish() allocates while it runs: the larger of the two measurements' peaks,
  // and the EvalResult's host vectors (which outlive finish()).
  static double finish_bytes(const NetworkShape& net, bool all_pairs);
  // Length of totals() (what each evaluation all-reduces).
  static std::int64_t totals_length(const NetworkShape& net, bool all_pairs);
  // Bytes of the host vectors of one EvalResult.
  static double result_bytes(const NetworkShape& net, bool all_pairs);
  static EvalLayout layout(const TreeShape& t, bool all_pairs) { return EvalLayout::of(t, all_pairs); }

  void reset();
  // The correlations' reference anchor (CorrelationStats::set_shift): same on every rank.
  void set_shift(const Activations& act, std::int64_t row) { corr_.set_shift(act, row); }
  // Adds `rows` anchors (view 0 only) with the forward pass that filled act. The rows must
  // start at a block boundary; every kEvalBlock rows (and the last row) close a block.
  void accumulate(const SampleBatch& samples, const Activations& act, std::int64_t rows);
  // The exact totals, to be all-reduced before finish(); the last entry counts overflows.
  const View1<std::int64_t>& totals() const { return total_; }
  // The statistics from the (all-reduced) totals; `params`: the weights evaluated (for the
  // covop alignment).
  EvalResult finish(const View1<real>& params) const;
  // Delta (stats/class_mean_difference.hpp) from the totals: entries first, first + 1, ...
  // (as many as delta holds), and the class weights p0, p1; NaN where a class is empty.
  void class_mean_difference(const View1<real>& delta, double* p0, double* p1, std::int64_t first = 0) const;
  // Which anchors [begin, end) of a pass of n this rank evaluates: whole blocks.
  static void rank_range(std::int64_t n, int rank, int size, std::int64_t* begin, std::int64_t* end);
  // The anchors [begin, end) of `count` blocks from block `first` of a pass of n.
  static void block_range(std::int64_t n, std::int64_t first, std::int64_t count, std::int64_t* begin,
                          std::int64_t* end);

 private:
  NetworkShape net_;
  std::int64_t chunk_;
  bool all_pairs_;
  EvalLayout layout_;
  View1<std::int64_t> total_;  // fixed-point totals of closed blocks, + overflow count
  CorrelationStats corr_;
  CovopStats covop_;
};

}  // namespace dualnet
