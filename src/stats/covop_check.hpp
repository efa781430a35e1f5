#pragma once
// The covariance-operator theorem measured on a network as it is (docs/covop.md).
// For a bias-free ReLU network with f = h_root, every level l satisfies, in expectation,
//   -grad_{W_l} E[L_simp] = 2 OP_l vec(W_l),   OP_l = V_{x0}[Kbar_l(x0)] = p0 p1 Delta_l Delta_l^T,
// with Delta_l the difference of the root-class means of K_l (the conn tensors of every node
// of the level, paper reshape). For infonce and triplet the same derivation gives a weighted
// operator s_alpha OP_l plus a residue that vanishes as tau grows.
// The check estimates the mean gradient with the training kernels on `items` fresh items and
// Delta on `anchors` further, independent anchors (Evaluator), and reports per loss, tau and
// level the norms below. OP_l w is formed as p0 p1 Delta_l (Delta_l^T w): no dd x dd matrix.
#include <cstdint>
#include <string>
#include <vector>

#include "comm/reducer.hpp"
#include "comm/world.hpp"
#include "model/network.hpp"
#include "stats/evaluator.hpp"

namespace dualnet {

struct CovopCheckSpec {
  std::int64_t items = 1 << 20;                     // gradient items: anchor, positive, `negatives` negatives
  std::int64_t anchors = 1 << 20;                   // anchors of the class means of K
  std::int64_t chunk = 4096;                        // items per kernel launch; must divide `items`
  std::int64_t micro = 64;                          // items per rounded (fixed-point) gradient sum; must divide `chunk`
  std::int64_t first_item = std::int64_t(1) << 62;  // stream index of the first item
  // false: the anchors of Kbar are fresh (they follow the items in the stream); true: they are
  // the anchors of the first `anchors` gradient items (anchors <= items).
  bool same_anchors = false;
  std::vector<std::string> losses = {"simp", "infonce"};
  std::vector<double> taus = {0.001, 0.01, 0.1, 1.0};
  int negatives = 1;
  double margin = 0.0;  // triplet's r
  int share_levels = 1;
  std::uint64_t seed = 1;
};

// One loss (and tau) at one level. g is the mean gradient over the items; OPw = OP_l w.
struct CovopCheckRow {
  std::string loss;
  double tau = 0.0;  // NaN for simp
  int level = 0;
  double loss_mean = 0.0;
  double grad_norm = 0.0;      // |g_l|
  double pred_norm = 0.0;      // |2 s_alpha OP_l w_l|
  double alpha = 1.0;          // s_alpha (1 for simp)
  double residue_norm = 0.0;   // |-g_l - 2 s_alpha OP_l w_l|
  double rel_residue = 0.0;    // residue_norm / grad_norm: for simp the theorem's relative error
  double cosine = 0.0;         // cos(-g_l, OP_l w_l)
  double alpha_pairs[4] = {};  // mean pair weight beta by (anchor root, negative root): 00, 01, 10, 11
};

struct CovopCheckResult {
  std::vector<CovopCheckRow> rows;    // loss by loss (in spec order), tau by tau, level by level
  double p0 = 0.0, p1 = 0.0;          // root class weights of the anchors
  double d2_pos = 0.0, d2_neg = 0.0;  // mean d^2 = |f - f'|^2 / 2 of positive and negative pairs
  std::vector<double> weight_norm;    // [depth] |vec(W_l)|
  std::vector<double> op_norm;        // [depth] |OP_l w_l|
  EvalResult eval;                    // the anchors' statistics (spectrum, alignment per node)
};

// Runs the check on every rank of `world` (items and anchors are split in whole chunks and
// blocks, the sums are exact, so the numbers do not depend on the rank count). Throws
// UsageError for sizes that do not fit and for a loss the theorem does not cover
// (loss/loss_names.hpp).
CovopCheckResult covop_check(const NetworkShape& net, const View1<real>& params, const View1<real>& polarity,
                             const CovopCheckSpec& spec, const World& world, Reducer& reducer);

}  // namespace dualnet
