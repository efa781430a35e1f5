// The gradient of every loss through the whole network (kernels: forward -> pair_distances
// (with the batch sums) -> loss_gradient -> backward -> weight_gradient)
// against central finite differences of the mean loss computed by the independent host
// implementation in host_model.hpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "hltm/hltm.hpp"
#include "host_model.hpp"
#include "loss/loss.hpp"
#include "model/network.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {
namespace {

using dualnet_test::HostNet;

struct GradCase {
  std::string loss;
  int negatives = 1;
  bool bias = true;
  bool normalize = true;
  double margin = 0.0;
  double temp = 0.1;
};

void PrintTo(const GradCase& c, std::ostream* os) {
  *os << c.loss << " H=" << c.negatives << " bias=" << c.bias << " normalize_output=" << c.normalize
      << " margin=" << c.margin << " temp=" << c.temp;
}

std::string case_name(const ::testing::TestParamInfo<GradCase>& info) {
  const GradCase& c = info.param;
  std::string s = c.loss + "_H" + std::to_string(c.negatives);
  if (!c.bias) s += "_nobias";
  if (!c.normalize) s += "_unnormalized";
  if (c.margin != 0.0) s += "_margin";
  return s;
}

template <class V>
std::vector<typename V::non_const_value_type> flat(const V& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<typename V::non_const_value_type>(h.data(), h.data() + h.size());
}

constexpr int kDepth = 3, kK = 2, kHid = 3, kItems = 4, kMicro = 2;

class Gradient : public ::testing::TestWithParam<GradCase> {};

TEST(GradientSetup, HostLayoutMatchesTreeShape) {
  const TreeShape t(kDepth, kK, kHid);
  const HostNet h(kDepth, kK, kHid);
  ASSERT_EQ(h.n_latent, t.n_latent);
  ASSERT_EQ(h.n_leaf, t.n_leaf);
  ASSERT_EQ(h.n_params(), t.n_params());
  for (int node = 0; node <= t.n_latent; ++node)
    EXPECT_EQ(h.offset[static_cast<size_t>(node)], t.param_offset(node)) << node;
  for (int node = 0; node < t.n_latent; ++node) EXPECT_EQ(h.in_size(node), t.in_size(node)) << node;
}

TEST_P(Gradient, MatchesCentralFiniteDifferences) {
  const GradCase c = GetParam();
  NetworkShape net;
  net.tree = TreeShape(kDepth, kK, kHid);
  net.bias = c.bias;
  net.normalize_output = c.normalize;
  const TreeShape& t = net.tree;
  const HostNet host(kDepth, kK, kHid, c.bias, c.normalize);
  const int H = c.negatives, views = H + 2;
  const std::int64_t rows = static_cast<std::int64_t>(kItems) * views;
  const std::int64_t P = t.n_params();
  const auto kind = dualnet_test::host_loss_kind(c.loss);

  // Host forward of the whole batch -> mean loss.
  const auto host_loss = [&](const std::vector<double>& p, const std::vector<double>& leaves) {
    std::vector<double> out_all, pre, out;
    for (std::int64_t r = 0; r < rows; ++r) {
      host.forward(p.data(), leaves.data() + r * t.n_leaf, pre, out);
      out_all.insert(out_all.end(), out.begin(), out.end());
    }
    return dualnet_test::host_mean_loss(kind, c.temp, c.margin, H, kItems, kHid, out_all);
  };

  // Draw weights and views until no ReLU sits within 1e-4 of its kink (a pre-activation that
  // is exactly zero because its inputs are all zero in a bias-free net stays zero under any
  // perturbation and is harmless), and no output norm is tiny.
  std::vector<double> params, leaves;
  SampleBatch samples;
  samples.allocate(t, rows);
  View1<real> params_dev;
  bool found = false;
  for (int attempt = 0; attempt < 200 && !found; ++attempt) {
    params_dev = init_params(net, 1000 + attempt);
    const View1<real> pol = draw_polarities(t, 77, 0.8, 1.0);
    sample_views(t, pol, 77 + attempt, 1, 0, kItems, views, samples);
    params = flat(params_dev);
    leaves.assign(static_cast<size_t>(rows * t.n_leaf), 0.0);
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), samples.leaves);
    for (std::int64_t r = 0; r < rows; ++r)
      for (int l = 0; l < t.n_leaf; ++l) leaves[static_cast<size_t>(r * t.n_leaf + l)] = hl(r, l);
    found = true;
    std::vector<double> pre, out, x;
    for (std::int64_t r = 0; r < rows && found; ++r) {
      const double* lv = leaves.data() + r * t.n_leaf;
      host.forward(params.data(), lv, pre, out);
      double sq = 0.0;
      for (int j = 0; j < kHid; ++j) sq += pre[static_cast<size_t>(j)] * pre[static_cast<size_t>(j)];
      if (std::sqrt(sq) < 1e-2) found = false;
      for (int node = 1; node < t.n_latent && found; ++node) {
        host.input(lv, pre, node, x);
        bool zero_input = true;
        for (double v : x) zero_input = zero_input && v == 0.0;
        for (int j = 0; j < kHid; ++j) {
          const double h = pre[static_cast<size_t>(node) * kHid + j];
          if (std::fabs(h) < 1e-4 && !(h == 0.0 && zero_input && !c.bias)) found = false;
        }
      }
    }
  }
  ASSERT_TRUE(found) << "no kink-free draw found";

  // The kernels.
  Activations act;
  act.allocate(t, rows);
  forward(net, params_dev, samples.leaves, rows, act);
  View2<real> dist("dist", kItems, views - 1), coef("coef", kItems, views - 1), grad_out("grad_out", rows, kHid),
      delta("delta", rows, PaddedLayout(t).delta_columns());
  View1<real> item_loss("item_loss", kItems), losses("losses", 1);
  View1<std::int64_t> bsums("bsums", kBatchSums), loss_sums("loss_sums", 2), grad("grad", P + 1);
  LossParams lp;
  lp.kind = loss_kind(c.loss);
  lp.temp = c.temp;
  lp.margin = c.margin;
  lp.negatives = H;
  lp.global_batch = kItems;
  lp.out_dim = kHid;
  pair_distances(act.out, kItems, views, kMicro, dist, lp.batch_coupled() ? bsums : View1<std::int64_t>());
  loss_gradient(lp, act.out, dist, kItems, kMicro, bsums, coef, item_loss, grad_out, loss_sums, 0);
  backward(net, act, grad_out, rows, delta);
  weight_gradient(net, act, samples.leaves, delta, rows, kMicro * views, grad, P);
  Kokkos::parallel_for(  // what the update kernel records
      "test::batch_loss", range(1),
      KOKKOS_LAMBDA(const std::int64_t) { losses(0) = batch_loss(lp, bsums, loss_sums, 0); });
  const auto g_fixed = flat(grad);
  const auto bs = flat(bsums);
  const auto ls = flat(loss_sums);
  ASSERT_EQ(g_fixed[static_cast<size_t>(P)], 0) << "fixed-point overflow in weight_gradient";
  ASSERT_EQ(bs[2], 0) << "fixed-point overflow in batch_sums";
  ASSERT_EQ(ls[1], 0) << "fixed-point overflow in the loss sum";

  // The loss value itself: host formula vs batch_loss.
  const double L0 = host_loss(params, leaves);
  EXPECT_NEAR(flat(losses)[0], L0, 1e-10 + 1e-10 * std::fabs(L0));

  // Every parameter against central differences.
  const double h = 1e-6;
  int checked = 0, bad = 0;
  double max_fd = 0.0;
  std::ostringstream report;
  for (std::int64_t p = 0; p < P; ++p) {
    const double g = from_fixed(g_fixed[static_cast<size_t>(p)]);
    int node = 0;
    while (host.offset[static_cast<size_t>(node) + 1] <= p) ++node;
    const bool is_bias =
        p >= host.offset[static_cast<size_t>(node)] + static_cast<std::int64_t>(kHid) * host.in_size(node);
    if (is_bias && !c.bias) {
      EXPECT_EQ(g_fixed[static_cast<size_t>(p)], 0) << "bias-free net has a bias gradient at " << p;
      continue;
    }
    std::vector<double> plus = params, minus = params;
    plus[static_cast<size_t>(p)] += h;
    minus[static_cast<size_t>(p)] -= h;
    const double fd = (host_loss(plus, leaves) - host_loss(minus, leaves)) / (2.0 * h);
    max_fd = std::max(max_fd, std::fabs(fd));
    ++checked;
    if (std::fabs(g - fd) > 1e-6 + 1e-5 * std::fabs(fd)) {
      if (++bad <= 10)
        report << "  param " << p << " (node " << node << (is_bias ? ", bias" : ", weight") << "): kernel " << g
               << ", finite difference " << fd << "\n";
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << checked << " parameters disagree:\n" << report.str();
  EXPECT_EQ(checked, c.bias ? P : P - static_cast<std::int64_t>(t.n_latent) * kHid);
  // The test is only meaningful if the loss actually depends on the weights.
  EXPECT_GT(max_fd, 1e-3);
}

std::vector<GradCase> all_cases() {
  std::vector<GradCase> v;
  for (const char* loss : {"simp", "triplet", "infonce", "ref_nce", "ref_subtract"}) {
    v.push_back({loss, 1, true, true});
    v.push_back({loss, 1, false, true});
    v.push_back({loss, 1, true, false});
    if (std::string(loss) != "triplet") v.push_back({loss, 3, true, true});
  }
  v.push_back({"triplet", 1, true, true, 0.2});
  return v;
}

INSTANTIATE_TEST_SUITE_P(AllLosses, Gradient, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace dualnet
