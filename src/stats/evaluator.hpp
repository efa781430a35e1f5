#pragma once
// The measurements of one evaluation pass (SPEC §6), accumulated as sufficient statistics:
//  - neuron-latent correlation: sums of z, h, h^2 and z*h for every latent z and neuron h;
//  - covariance operator: for every node mu, the sums of conn = input_mu (x) J_mu per root
//    class, where J_mu = d h_root / d h_mu (ReLU gate of mu included).
// All sums live in one flat View of doubles, so one all-reduce makes them global; the
// statistics formed from them are then the same for any number of ranks.
#include <cstdint>
#include <vector>

#include "hltm/hltm.hpp"
#include "model/network.hpp"

namespace dualnet {

// Host copies of the statistics of one pass (one metrics row).
struct EvalResult {
  std::vector<double> corr_full;             // [latent][neuron]
  std::vector<double> corr;                  // [latent][hid]
  std::vector<double> best_corr;             // [latent]
  std::vector<double> level_mean_best_corr;  // [depth]
  std::vector<double> covop_norm_ref;        // [latent]
  std::vector<double> covop_norm_paper;      // [latent]
  std::vector<double> gram_paper;            // [latent][hid][hid]: p0 p1 Delta^T Delta, paper reshape
  std::int64_t samples = 0;
};

class Evaluator {
 public:
  Evaluator(const NetworkShape& net, std::int64_t max_chunk);

  // Anchors per accumulate() call this evaluator was sized for.
  std::int64_t chunk() const { return chunk_; }
  void reset();
  // Adds `rows` anchors (view 0 only) with their forward pass.
  void accumulate(const View1<real>& params, const SampleBatch& samples, const Activations& act, std::int64_t rows);
  // The flat sums, to be all-reduced before finish().
  const View1<double>& sums() const { return acc_; }
  EvalResult finish() const;

 private:
  NetworkShape net_;
  std::int64_t chunk_;
  // Offsets into acc_.
  std::int64_t o_sum_z_, o_sum_h_, o_sum_h2_, o_sum_zh_, o_conn0_, o_conn1_;
  View1<double> acc_;
  View3<real> jac_;  // [chunk][latent][hid*hid]
};

}  // namespace dualnet
