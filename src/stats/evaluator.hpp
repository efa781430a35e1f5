#pragma once
// The measurements of one evaluation pass (SPEC §6), accumulated as sufficient statistics:
//  - neuron-latent correlation: sums of z, h, h^2 and z*h for every latent z and neuron h;
//  - covariance operator: for every node mu, the sums of conn = input_mu (x) J_mu per root
//    class, where J_mu = d h_root / d h_mu (ReLU gate of mu included).
// Anchors are summed in blocks of kEvalBlock (fixed by global index); each block's sums are
// rounded to fixed point and added as integers (util/fixed_point.hpp). All totals live in
// one flat int64 View, so one exact all-reduce makes them global: the statistics are the
// same bits for any number of ranks.
#include <cstdint>
#include <vector>

#include "hltm/hltm.hpp"
#include "model/network.hpp"

namespace dualnet {

constexpr std::int64_t kEvalBlock = 64;

// Host copies of the statistics of one pass (one metrics row).
struct EvalResult {
  std::vector<double> corr_full;             // [latent][neuron]; empty without all_pairs
  std::vector<double> corr;                  // [latent][hid]
  std::vector<double> best_corr;             // [latent]
  std::vector<double> level_mean_best_corr;  // [depth]
  std::vector<double> covop_norm_ref;        // [latent]
  std::vector<double> covop_norm_paper;      // [latent]
  std::vector<double> gram_paper;            // [latent][hid][hid]: p0 p1 Delta^T Delta, paper reshape
  std::vector<double> covop_eigenvalues;     // [latent][hid]: eigenvalues of gram_paper, descending
  std::vector<double> covop_alignment;       // [latent]: |projection of vec W_mu on OP_mu's top eigenspace| / |W_mu|
  std::int64_t samples = 0;
};

class Evaluator {
 public:
  // all_pairs: sum z*h for every latent and every neuron (what corr_full needs, O(nodes^2));
  // otherwise only for each node's own neurons (corr, best_corr), O(nodes).
  Evaluator(const NetworkShape& net, std::int64_t max_chunk, bool all_pairs = true);

  // Anchors per accumulate() call this evaluator was sized for: a multiple of kEvalBlock.
  std::int64_t chunk() const { return chunk_; }
  void reset();
  // Pre-activations are summed relative to those of one reference anchor (row `row` of
  // act): correlations do not change, and the fixed-point sums keep their precision for
  // neurons whose spread is small compared with their mean. Same anchor on every rank.
  void set_shift(const Activations& act, std::int64_t row);
  // Adds `rows` anchors (view 0 only) with their forward pass. The rows must start at a
  // block boundary; every kEvalBlock rows (and the last row) close a block.
  void accumulate(const View1<real>& params, const SampleBatch& samples, const Activations& act, std::int64_t rows);
  // The exact totals, to be all-reduced before finish(); the last entry counts overflows.
  const View1<std::int64_t>& totals() const { return total_; }
  EvalResult finish() const;
  // Delta = (mean conn | root 0) - (mean conn | root 1) in the flat conn layout of TreeShape,
  // entries first, first + 1, ... (as many as delta holds), and the class weights p0, p1,
  // from the (all-reduced) totals; NaN where a class is empty.
  void class_mean_difference(const View1<real>& delta, double* p0, double* p1, std::int64_t first = 0) const;
  // Which anchors [begin, end) of a pass of n this rank evaluates: whole blocks.
  static void rank_range(std::int64_t n, int rank, int size, std::int64_t* begin, std::int64_t* end);

 private:
  NetworkShape net_;
  std::int64_t chunk_;
  bool all_pairs_;
  // Offsets into acc_.
  std::int64_t o_sum_z_, o_sum_h_, o_sum_h2_, o_sum_zh_, o_conn0_, o_conn1_;
  std::int64_t zh_width_;  // z*h sums per latent: n_neuron with all_pairs, else hid
  View1<double> acc_;          // sums of the block in progress (all but conn)
  View1<real> shift_;          // [neuron] reference pre-activations (set_shift)
  View1<std::int64_t> total_;  // fixed-point totals of closed blocks, + overflow count
  View3<real> jac_;  // [latent][slot][hid*hid]: a node's Jacobians, anchors in class order per block
  View1<std::int64_t> slot_;  // [anchor] its row in jac_: the block's class-0 anchors first
  View1<int> class0_count_;   // [block] anchors with root 0
  View1<real> params_;  // the weights of the last accumulate() (for the covop alignment)
};

}  // namespace dualnet
