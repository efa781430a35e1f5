// The dense kernels (forward, backward, weight gradient, the evaluation's Jacobians and
// covariance-operator class sums) against the independent host model, over tree shapes that
// take every path of their register tiles of 4 rows x 4, 8 or 12 columns
// (model/tile_product.hpp): one node of 4 <= hid <= 12 as a single 8- or 12-wide tile (hid 8,
// and hid 10 with 2 padding columns, model/padded_layout.hpp), narrower nodes (hid 1, 3),
// several 8-wide tiles with an overlapping last one (hid 17, 64), k = 3 and 5, and row counts
// that are not multiples of the 4-row blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "hltm/hltm.hpp"
#include "host_model.hpp"
#include "model/network.hpp"
#include "stats/evaluator.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {
namespace {

using dualnet_test::HostNet;

struct Shape {
  int depth, k, hid;
};

std::string shape_name(const ::testing::TestParamInfo<Shape>& info) {
  std::ostringstream s;
  s << "depth" << info.param.depth << "_k" << info.param.k << "_hid" << info.param.hid;
  return s.str();
}

// |a - b| within tol relative to the largest |b| of the comparison (values near zero carry
// the rounding of their larger neighbours).
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  ASSERT_GT(scale, 0.0) << what << ": the reference is all zeros, the comparison would prove nothing";
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * scale) && bad++ == 0) first_bad = i;
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " entries differ; first at " << first_bad
                     << ": kernel " << got[first_bad] << ", host " << want[first_bad] << " (scale " << scale << ")";
}

class KernelShapes : public ::testing::TestWithParam<Shape> {};

// Training kernels: 5 items x 3 views = 15 rows (three full 4-row blocks and one of 3),
// summed in chunks of 5 rows. normalize_output is off, so dL/dh_root = grad_out and
// dL/dh_mu = J_mu^T grad_out with the host's Jacobians.
TEST_P(KernelShapes, ForwardBackwardWeightGradientMatchHost) {
  const Shape sh = GetParam();
  NetworkShape net;
  net.tree = TreeShape(sh.depth, sh.k, sh.hid);
  net.normalize_output = false;
  const TreeShape& t = net.tree;
  const HostNet host(sh.depth, sh.k, sh.hid, true, false);
  constexpr int kItems = 5, kViews = 3, kChunk = 5;
  const std::int64_t rows = kItems * kViews, P = t.n_params(), N = t.n_neuron();

  const View1<real> params = init_params(net, 7);
  SampleBatch s;
  s.allocate(t, rows);
  sample_views(t, draw_polarities(t, 5, 0.6, 1.0), 5, 1, 0, kItems, kViews, s);
  Activations act;
  act.allocate(t, rows);
  forward(net, params, s.leaves, rows, act);

  // grad_out: fixed, varied values.
  const PaddedLayout pad(t);
  View2<real> grad_out("grad_out", rows, t.hid), delta("delta", rows, pad.delta_columns());
  {
    auto h = Kokkos::create_mirror_view(grad_out);
    for (std::int64_t r = 0; r < rows; ++r)
      for (int a = 0; a < t.hid; ++a) h(r, a) = std::sin(1.0 + 0.37 * static_cast<double>(r * t.hid + a));
    Kokkos::deep_copy(grad_out, h);
  }
  backward(net, act, grad_out, rows, delta);
  View1<std::int64_t> grad("grad", P + 1);
  weight_gradient(net, act, s.leaves, delta, rows, kChunk, grad, P);

  const auto p = host_vector(params), leaves = host_vector(s.leaves), go = host_vector(grad_out);
  std::vector<double> want_pre, want_delta, want_grad(static_cast<size_t>(P), 0.0);
  std::vector<double> pre, out, x;
  for (std::int64_t r = 0; r < rows; ++r) {
    const double* lv = leaves.data() + r * t.n_leaf;
    host.forward(p.data(), lv, pre, out);
    want_pre.insert(want_pre.end(), pre.begin(), pre.end());
    const auto J = host.jacobians(p.data(), pre);
    std::vector<double> d(static_cast<size_t>(N), 0.0);
    for (int mu = 0; mu < t.n_latent; ++mu)
      for (int b = 0; b < t.hid; ++b) {
        double v = 0.0;
        for (int a = 0; a < t.hid; ++a)
          v += go[static_cast<size_t>(r * t.hid + a)] * J[mu][static_cast<size_t>(a * t.hid + b)];
        d[static_cast<size_t>(mu * t.hid + b)] = v;
      }
    want_delta.insert(want_delta.end(), d.begin(), d.end());
    for (int mu = 0; mu < t.n_latent; ++mu) {
      host.input(lv, pre, mu, x);
      for (int j = 0; j < t.hid; ++j) {
        const double dj = d[static_cast<size_t>(mu * t.hid + j)];
        for (size_t i = 0; i < x.size(); ++i)
          want_grad[static_cast<size_t>(host.offset[mu] + j * host.in_size(mu)) + i] += dj * x[i];
        want_grad[static_cast<size_t>(host.bias_index(mu, j))] += dj;
      }
    }
  }
  expect_close(host_vector(act.pre), want_pre, 1e-13, "pre-activations");
  std::vector<double> got_delta;  // without the padding columns
  const auto hd = host_vector(delta);
  for (std::int64_t r = 0; r < rows; ++r)
    for (int mu = 0; mu < t.n_latent; ++mu) {
      const auto from = hd.begin() + r * pad.delta_columns() + static_cast<std::int64_t>(mu) * pad.stride;
      got_delta.insert(got_delta.end(), from, from + t.hid);
    }
  expect_close(got_delta, want_delta, 1e-13, "dL/dh");
  const auto g_fixed = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);  // int64, exact
  ASSERT_EQ(g_fixed(P), 0) << "fixed-point overflow";
  std::vector<double> g(static_cast<size_t>(P));
  for (std::int64_t i = 0; i < P; ++i) g[static_cast<size_t>(i)] = from_fixed(g_fixed(i));
  expect_close(g, want_grad, 1e-10, "weight gradient");
}

// Evaluation: 150 anchors (two full blocks of 64 and one of 22); the class-mean difference
// Delta of conn = input (x) J for every node against the host's Jacobians.
TEST_P(KernelShapes, CovarianceOperatorClassMeansMatchHost) {
  const Shape sh = GetParam();
  NetworkShape net;
  net.tree = TreeShape(sh.depth, sh.k, sh.hid);
  const TreeShape& t = net.tree;
  const HostNet host(sh.depth, sh.k, sh.hid);
  constexpr std::int64_t kAnchors = 150;
  const View1<real> params = init_params(net, 11);
  // One chunk of three blocks, or (hid 64, whose Jacobians cap the chunk at one block) three
  // chunks: both add up to the same sums.
  Evaluator ev(net, 192, false);
  const View1<real> polarity = draw_polarities(t, 3, 0.6, 1.0);
  SampleBatch all, s;
  all.allocate(t, kAnchors);
  sample_views(t, polarity, 3, 1, 0, kAnchors, 1, all);
  s.allocate(t, ev.chunk());
  Activations act;
  act.allocate(t, ev.chunk());
  ev.reset();
  for (std::int64_t start = 0; start < kAnchors; start += ev.chunk()) {
    const std::int64_t rows = std::min(ev.chunk(), kAnchors - start);
    sample_views(t, polarity, 3, 1, start, rows, 1, s);
    forward(net, params, s.leaves, rows, act);
    if (start == 0) ev.set_shift(act, 0);
    ev.accumulate(s, act, rows);
  }
  View1<real> delta("delta", t.n_conn());
  double p0 = 0.0, p1 = 0.0;
  ev.class_mean_difference(delta, &p0, &p1);

  const auto p = host_vector(params), leaves = host_vector(all.leaves);
  auto z = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.latent);
  std::vector<double> sum[2] = {std::vector<double>(static_cast<size_t>(t.n_conn()), 0.0),
                                std::vector<double>(static_cast<size_t>(t.n_conn()), 0.0)};
  double count[2] = {0.0, 0.0};
  std::vector<double> pre, out, x;
  for (std::int64_t r = 0; r < kAnchors; ++r) {
    const double* lv = leaves.data() + r * t.n_leaf;
    host.forward(p.data(), lv, pre, out);
    const auto J = host.jacobians(p.data(), pre);
    const int cls = z(r, 0) ? 1 : 0;
    count[cls] += 1.0;
    for (int mu = 0; mu < t.n_latent; ++mu) {
      host.input(lv, pre, mu, x);
      const std::int64_t base = t.conn_offset(mu);
      for (size_t i = 0; i < x.size(); ++i)
        for (int ab = 0; ab < t.hid * t.hid; ++ab)
          sum[cls][static_cast<size_t>(base + static_cast<std::int64_t>(i) * t.hid * t.hid + ab)] +=
              x[i] * J[mu][static_cast<size_t>(ab)];
    }
  }
  ASSERT_GT(count[0], 0.0);
  ASSERT_GT(count[1], 0.0);
  EXPECT_DOUBLE_EQ(p0, count[0] / kAnchors);
  std::vector<double> want(static_cast<size_t>(t.n_conn()));
  for (size_t e = 0; e < want.size(); ++e) want[e] = sum[0][e] / count[0] - sum[1][e] / count[1];
  // Fixed point at 2^-32 per block of 64 anchors: a few 1e-10 absolute.
  expect_close(host_vector(delta), want, 1e-8, "class-mean difference of conn");
}

INSTANTIATE_TEST_SUITE_P(TileEdges, KernelShapes,
                         ::testing::Values(Shape{3, 2, 3}, Shape{3, 2, 8}, Shape{3, 2, 10}, Shape{2, 3, 17},
                                           Shape{2, 5, 1}, Shape{2, 2, 64}),
                         shape_name);

}  // namespace
}  // namespace dualnet
