#pragma once
// Host copies of the statistics of one evaluation pass: one row of /metrics
// (docs/science.md#measurements). stats/correlation_stats fills the correlation and activity
// fields, stats/covop_stats the covariance-operator ones.
#include <cstdint>
#include <vector>

namespace dualnet {

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
  std::vector<double> dead_fraction;  // [latent]: share of the node's neurons with pre-activation <= 0 on every anchor
  std::vector<double> active_fraction;  // [latent][hid]: share of the anchors on which each neuron is active
  // 1 - |M|_F / tr M for M = E[h h^T] over the root's outputs (after ReLU): 0 when every
  // output lies on one ray (or is zero), i.e. the representation has collapsed to a line.
  double output_rank1_gap = 0.0;
  std::int64_t samples = 0;
};

}  // namespace dualnet
