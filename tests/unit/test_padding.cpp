// The kernels' padding (model/padded_layout.hpp) is read but never used: with every padding
// entry NaN — forward's and backward's weight copies and the padding columns of dL/dh — the
// pre-activations, outputs, dL/dh, the fixed-point weight gradient (its overflow count
// included) and every evaluation statistic are the same bits as with zero padding. The
// parameters, gradients and checkpoints have no padding, so nothing else can carry it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "hltm/hltm.hpp"
#include "model/network.hpp"
#include "stats/evaluator.hpp"

namespace dualnet {
namespace {

constexpr std::int64_t kRows = 150;  // two full blocks of 64 anchors and one of 22
constexpr std::int64_t kChunk = 5;   // rows per fixed-point gradient sum

struct Results {
  std::vector<double> pre, out, norm, delta;  // delta without its padding columns
  std::vector<std::int64_t> grad;             // P entries, then the overflow count
  EvalResult eval;
  std::int64_t nan_entries = 0;  // NaN left in the padded Views after the kernels ran
};

std::int64_t count_nan(const std::vector<double>& v) {
  std::int64_t n = 0;
  for (double x : v) n += std::isnan(x) ? 1 : 0;
  return n;
}

Results run(const NetworkShape& net, const View1<real>& params, const SampleBatch& s, bool nan_padding) {
  const TreeShape& t = net.tree;
  const PaddedLayout pad(t);
  Activations act;
  act.allocate(t, kRows);
  View2<real> grad_out("grad_out", kRows, t.hid), delta("delta", kRows, pad.delta_columns());
  if (nan_padding) {  // the kernels write everything but the padding
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Kokkos::deep_copy(act.wt, nan);
    Kokkos::deep_copy(act.wb, nan);
    Kokkos::deep_copy(delta, nan);
  }
  forward(net, params, s.leaves, kRows, act);
  {
    auto h = Kokkos::create_mirror_view(grad_out);
    for (std::int64_t r = 0; r < kRows; ++r)
      for (int a = 0; a < t.hid; ++a) h(r, a) = std::sin(1.0 + 0.37 * static_cast<double>(r * t.hid + a));
    Kokkos::deep_copy(grad_out, h);
  }
  backward(net, act, grad_out, kRows, delta);
  View1<std::int64_t> grad("grad", t.n_params() + 1);
  weight_gradient(net, act, s.leaves, delta, kRows, kChunk, grad, t.n_params());
  Evaluator ev(net, 192, true);  // one accumulate() of all kRows anchors
  ev.reset();
  ev.set_shift(act, 0);
  ev.accumulate(s, act, kRows);

  Results r;
  r.pre = host_vector(act.pre);
  r.out = host_vector(act.out);
  r.norm = host_vector(act.norm);
  const auto d = host_vector(delta);
  for (std::int64_t row = 0; row < kRows; ++row)
    for (int mu = 0; mu < t.n_latent; ++mu) {
      const auto from = d.begin() + row * pad.delta_columns() + static_cast<std::int64_t>(mu) * pad.stride;
      r.delta.insert(r.delta.end(), from, from + t.hid);
    }
  const auto g = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
  r.grad.assign(g.data(), g.data() + g.size());
  r.eval = ev.finish(params);
  r.nan_entries = count_nan(host_vector(act.wt)) + count_nan(host_vector(act.wb)) + count_nan(d);
  return r;
}

// Same bits, NaN included (memcmp).
void expect_same(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(double))) << what;
}

void expect_padding_unused(int depth, int k, int hid) {
  SCOPED_TRACE("depth " + std::to_string(depth) + " k " + std::to_string(k) + " hid " + std::to_string(hid));
  NetworkShape net;
  net.tree = TreeShape(depth, k, hid);
  const TreeShape& t = net.tree;
  const PaddedLayout pad(t);
  const View1<real> params = init_params(net, 13);
  SampleBatch s;
  s.allocate(t, kRows);
  sample_views(t, draw_polarities(t, 13, 0.6, 1.0), 13, 1, 0, kRows, 1, s);

  const Results zero = run(net, params, s, false), nan = run(net, params, s, true);
  // Every padding entry was NaN through the kernels: forward's weights, backward's weights
  // (nodes fed by neurons) and the padding columns of dL/dh.
  const std::int64_t extra = pad.stride - t.hid, inner = t.level_start[t.depth - 1];
  std::int64_t padding = kRows * t.n_latent * extra + static_cast<std::int64_t>(inner) * t.hid * t.k * extra;
  for (int mu = 0; mu < t.n_latent; ++mu) padding += (t.in_size(mu) + 1) * extra;
  EXPECT_EQ(zero.nan_entries, 0);
  EXPECT_EQ(nan.nan_entries, padding);
  if (t.hid >= 4 && t.hid <= kTileMaxCols && t.hid % 4 != 0) {
    EXPECT_GT(padding, 0);
  }

  expect_same(nan.pre, zero.pre, "pre-activations");
  expect_same(nan.out, zero.out, "outputs");
  expect_same(nan.norm, zero.norm, "output norms");
  expect_same(nan.delta, zero.delta, "dL/dh");
  EXPECT_EQ(nan.grad, zero.grad) << "weight gradient (fixed point)";
  EXPECT_EQ(nan.grad.back(), 0) << "the padding reached the overflow check";
  const EvalResult &a = nan.eval, &b = zero.eval;
  expect_same(a.corr_full, b.corr_full, "corr_full");
  expect_same(a.corr, b.corr, "corr");
  expect_same(a.best_corr, b.best_corr, "best_corr");
  expect_same(a.level_mean_best_corr, b.level_mean_best_corr, "level_mean_best_corr");
  expect_same(a.covop_norm_ref, b.covop_norm_ref, "covop_norm_ref");
  expect_same(a.covop_norm_paper, b.covop_norm_paper, "covop_norm_paper");
  expect_same(a.gram_paper, b.gram_paper, "gram_paper");
  expect_same(a.covop_eigenvalues, b.covop_eigenvalues, "covop_eigenvalues");
  expect_same(a.covop_alignment, b.covop_alignment, "covop_alignment");
  expect_same(a.dead_fraction, b.dead_fraction, "dead_fraction");
  expect_same(a.active_fraction, b.active_fraction, "active_fraction");
  expect_same({a.output_rank1_gap}, {b.output_rank1_gap}, "output_rank1_gap");
  EXPECT_EQ(a.samples, b.samples);
}

// hid 10, 5, 7: one tile padded by 2, 3 and 1 columns; hid 8 and 17: no padding.
TEST(Padding, NaNPaddingChangesNoResult) {
  expect_padding_unused(3, 2, 10);
  expect_padding_unused(3, 3, 5);
  expect_padding_unused(2, 2, 7);
  expect_padding_unused(3, 2, 8);
  expect_padding_unused(2, 2, 17);
}

}  // namespace
}  // namespace dualnet
