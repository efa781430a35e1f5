#pragma once
// The measurements of one evaluation pass (docs/science.md#measurements), accumulated as
// sufficient statistics:
//  - neuron-latent correlation: sums of z, h, h^2 and z*h for every latent z and neuron h;
//  - dead neurons: per neuron, the number of anchors on which it is active (h > 0);
//  - collapse: sums of h_i h_j over the root's neurons after the ReLU (the output's Gram);
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
  std::vector<double> dead_fraction;         // [latent]: share of the node's neurons with pre-activation <= 0 on every anchor
  std::vector<double> active_fraction;       // [latent][hid]: share of the anchors on which each neuron is active
  // 1 - |M|_F / tr M for M = E[h h^T] over the root's outputs (after ReLU): 0 when every
  // output lies on one ray (or is zero), i.e. the representation has collapsed to a line.
  double output_rank1_gap = 0.0;
  std::int64_t samples = 0;
};

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
  // Peak bytes finish() allocates while it runs: its Views, then the larger of the covop
  // spectrum's workspace and the EvalResult's host vectors (which outlive finish()).
  static double finish_bytes(const NetworkShape& net, bool all_pairs);
  // Length of totals() (what each evaluation all-reduces).
  static std::int64_t totals_length(const NetworkShape& net, bool all_pairs);
  // Bytes of the host vectors of one EvalResult.
  static double result_bytes(const NetworkShape& net, bool all_pairs);
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
  // Where each sum sits in acc_ and total_: one layout for the constructor and the sizing.
  struct Layout {
    std::int64_t sum_z, sum_h, sum_h2, active, root_gram, sum_zh, conn0, conn1, zh_width, totals;
  };
  static Layout layout(const TreeShape& t, bool all_pairs);
  // Offsets into acc_.
  std::int64_t o_sum_z_, o_sum_h_, o_sum_h2_, o_active_, o_root_gram_, o_sum_zh_, o_conn0_, o_conn1_;
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
