// The covariance-operator theorem and its measurements (docs/covop.md):
//  - the identity behind it, f = K_l^T vec(W_l) at every level of a bias-free network, and
//    the exact finite-batch form of the simp gradient, against the independent host model;
//  - the per-node spectrum (Jacobi kernel) against known spectra and against a dense
//    eigen-decomposition of the (in*hid) x (in*hid) operator p0 p1 Delta Delta^T;
//  - the check itself: simp error below 1 % on a large batch, falling as 1/sqrt(batch); the
//    infonce/triplet residue growing as tau shrinks;
//  - training amplifies the selective directions: the alignment of W_mu with its operator's
//    top eigenvector grows for most nodes of the lowest level;
//  - the metrics rows and the `dualnet covop` report.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "comm/reducer.hpp"
#include "comm/world.hpp"
#include "commands/commands.hpp"
#include "config/config.hpp"
#include "hltm/hltm.hpp"
#include "host_model.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5.hpp"
#include "io/metrics_file.hpp"
#include "loss/loss.hpp"
#include "model/network.hpp"
#include "stats/covop_check.hpp"
#include "stats/covop_spectrum.hpp"
#include "stats/covop_stats.hpp"
#include "stats/evaluator.hpp"
#include "stats/tree_windows.hpp"
#include "train/trainer.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {
namespace {

using dualnet_test::HostNet;

NetworkShape small_net(bool bias, int depth = 3, int hid = 4) {
  NetworkShape net;
  net.tree = TreeShape(depth, 2, hid);
  net.bias = bias;
  net.normalize_output = false;
  return net;
}

// Host rows of a sampled, forwarded batch.
struct HostBatch {
  std::vector<double> leaves, pre, out;  // [rows][n_leaf], [rows][n_neuron], [rows][hid]
  std::vector<int> root;                 // [rows]
};

HostBatch run_batch(const NetworkShape& net, const View1<real>& params, std::int64_t items, int views, SampleBatch& s,
                    Activations& act) {
  const TreeShape& t = net.tree;
  const View1<real> pol = draw_polarities(t, 11, 0.7, 1.0);
  s.allocate(t, items * views);
  act.allocate(t, items * views);
  sample_views(t, pol, 11, 1, 0, items, views, s);
  forward(net, params, s.leaves, items * views, act);
  HostBatch b;
  b.leaves = host_vector(s.leaves);
  b.pre = host_vector(act.pre);
  b.out = host_vector(act.out);
  auto z = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), s.latent);
  for (std::int64_t r = 0; r < items * views; ++r) b.root.push_back(z(r, 0));
  return b;
}

// K_l(x) of one row as [param index p][output a] over the weights of level l (0 elsewhere):
// K[(mu, b, i), a] = input_mu(i) J_mu(a, b), indexed like the flat parameters.
std::vector<std::vector<double>> level_k(const HostNet& host, const std::vector<double>& params, const HostBatch& b,
                                         std::int64_t row, int level) {
  const size_t hid = static_cast<size_t>(host.hid);
  const size_t n_leaf = static_cast<size_t>(host.n_leaf), n_neuron = static_cast<size_t>(host.n_latent) * hid;
  const std::vector<double> pre(b.pre.begin() + static_cast<long>(row * n_neuron),
                                b.pre.begin() + static_cast<long>((row + 1) * n_neuron));
  const auto J = host.jacobians(params.data(), pre);
  std::vector<std::vector<double>> K(static_cast<size_t>(host.n_params()), std::vector<double>(hid, 0.0));
  std::vector<double> x;
  for (int mu = host.level_start[static_cast<size_t>(level)]; mu < host.level_start[static_cast<size_t>(level) + 1];
       ++mu) {
    host.input(b.leaves.data() + row * static_cast<std::int64_t>(n_leaf), pre, mu, x);
    const int in = host.in_size(mu);
    for (size_t bb = 0; bb < hid; ++bb)
      for (int i = 0; i < in; ++i)
        for (size_t a = 0; a < hid; ++a)
          K[static_cast<size_t>(host.offset[static_cast<size_t>(mu)]) + bb * static_cast<size_t>(in) +
            static_cast<size_t>(i)][a] = x[static_cast<size_t>(i)] * J[static_cast<size_t>(mu)][a * hid + bb];
  }
  return K;
}

// ---------------------------------------------------------------------------------------
TEST(CovopIdentity, OutputIsKTransposeWAtEveryLevelOfABiasFreeNetwork) {
  for (const bool bias : {false, true}) {
    const NetworkShape net = small_net(bias);
    const TreeShape& t = net.tree;
    const View1<real> params = init_params(net, 5);
    SampleBatch s;
    Activations act;
    const std::int64_t rows = 40;
    const HostBatch b = run_batch(net, params, rows, 1, s, act);
    const HostNet host(t.depth, t.k, t.hid, bias, false);
    const std::vector<double> p = host_vector(params);
    double worst = 0.0, scale = 0.0;
    for (std::int64_t r = 0; r < rows; ++r)
      for (int l = 0; l < t.depth; ++l) {
        const auto K = level_k(host, p, b, r, l);
        for (int a = 0; a < t.hid; ++a) {
          double f = 0.0;  // (K_l^T vec W_l)_a
          for (size_t q = 0; q < K.size(); ++q) f += K[q][static_cast<size_t>(a)] * p[q];
          const double out = b.out[static_cast<size_t>(r * t.hid + a)];
          worst = std::max(worst, std::fabs(f - out));
          scale = std::max(scale, std::fabs(out));
        }
      }
    ASSERT_GT(scale, 1e-3);
    if (!bias)
      EXPECT_LT(worst, 1e-12 * scale) << "f = K_l^T vec(W_l) must hold exactly without biases";
    else
      EXPECT_GT(worst, 1e-3 * scale) << "with biases the identity must fail (the test would be vacuous)";
  }
}

TEST(CovopIdentity, SimpGradientIsTheDifferenceOfPairOperatorsOnAnyBatch) {
  // The finite-batch theorem: -grad L_simp = (1/B) sum_i [(K-K-)(K-K-)^T - (K-K+)(K-K+)^T] w,
  // level by level, with the training kernels on one side and host K's on the other.
  const NetworkShape net = small_net(false);
  const TreeShape& t = net.tree;
  const View1<real> params = init_params(net, 6);
  const std::int64_t items = 32, micro = 4;
  const int views = 3;
  SampleBatch s;
  Activations act;
  const HostBatch b = run_batch(net, params, items, views, s, act);
  const std::int64_t rows = items * views, n_params = t.n_params();
  LossParams lp;
  lp.kind = LossKind::simp;
  lp.global_batch = items;
  lp.out_dim = t.hid;
  View2<real> dist("dist", items, views - 1), coef("coef", items, views - 1), grad_out("go", rows, t.hid),
      delta("delta", rows, PaddedLayout(t).delta_columns());
  View1<real> item_loss("il", items);
  View1<std::int64_t> grad("grad", n_params + 2), sums("sums", kBatchSums);
  pair_distances(act.out, items, views, micro, dist);
  loss_gradient(lp, act.out, dist, items, micro, sums, coef, item_loss, grad_out, grad, n_params);
  backward(net, act, grad_out, rows, delta);
  weight_gradient(net, act, s.leaves, delta, rows, micro * views, grad, n_params + 1);
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);

  const HostNet host(t.depth, t.k, t.hid, false, false);
  const std::vector<double> p = host_vector(params);
  const size_t hid = static_cast<size_t>(t.hid);
  std::vector<double> expect(static_cast<size_t>(n_params), 0.0);
  for (int l = 0; l < t.depth; ++l)
    for (std::int64_t i = 0; i < items; ++i) {
      const auto K0 = level_k(host, p, b, i * views, l), Kp = level_k(host, p, b, i * views + 1, l),
                 Kn = level_k(host, p, b, i * views + 2, l);
      // (K - K')^T w for both pairs, then (K - K') times it.
      std::vector<double> up(hid, 0.0), un(hid, 0.0);
      for (size_t q = 0; q < K0.size(); ++q)
        for (size_t a = 0; a < hid; ++a) {
          up[a] += (K0[q][a] - Kp[q][a]) * p[q];
          un[a] += (K0[q][a] - Kn[q][a]) * p[q];
        }
      for (size_t q = 0; q < K0.size(); ++q)
        for (size_t a = 0; a < hid; ++a)
          expect[q] -= ((K0[q][a] - Kn[q][a]) * un[a] - (K0[q][a] - Kp[q][a]) * up[a]) / static_cast<double>(items);
      // expect = grad L_simp (the minus sign of the theorem is in the accumulation above).
    }
  double scale = 0.0, worst = 0.0;
  for (std::int64_t q = 0; q < n_params; ++q) {
    scale = std::max(scale, std::fabs(expect[static_cast<size_t>(q)]));
    worst = std::max(worst, std::fabs(from_fixed(hg(q)) - expect[static_cast<size_t>(q)]));
  }
  ASSERT_GT(scale, 1e-4);
  // Fixed point: each micro-batch sum is rounded to 2^-40.
  EXPECT_LT(worst, 1e-10 + 1e-10 * scale);
}

// ---------------------------------------------------------------------------------------
// A plain sequential cyclic Jacobi on the host: the dense reference.
void dense_eigen(std::vector<double> A, int n, std::vector<double>& values, std::vector<double>& vectors) {
  vectors.assign(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) vectors[static_cast<size_t>(i) * n + i] = 1.0;
  const auto at = [&](std::vector<double>& M, int r, int c) -> double& { return M[static_cast<size_t>(r) * n + c]; };
  for (int sweep = 0; sweep < 200; ++sweep) {
    double off = 0.0, all = 0.0;
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) {
        all += at(A, r, c) * at(A, r, c);
        if (r != c) off += at(A, r, c) * at(A, r, c);
      }
    if (off <= 1e-32 * all) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        if (at(A, p, q) == 0.0) continue;
        const double phi = 0.5 * std::atan2(2.0 * at(A, p, q), at(A, q, q) - at(A, p, p));
        const double c = std::cos(phi), s = std::sin(phi);
        for (int k = 0; k < n; ++k) {
          const double akp = at(A, k, p), akq = at(A, k, q);
          at(A, k, p) = c * akp - s * akq;
          at(A, k, q) = s * akp + c * akq;
          const double vkp = at(vectors, k, p), vkq = at(vectors, k, q);
          at(vectors, k, p) = c * vkp - s * vkq;
          at(vectors, k, q) = s * vkp + c * vkq;
        }
        for (int k = 0; k < n; ++k) {
          const double apk = at(A, p, k), aqk = at(A, q, k);
          at(A, p, k) = c * apk - s * aqk;
          at(A, q, k) = s * apk + c * aqk;
        }
      }
  }
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](int x, int y) { return at(A, x, x) > at(A, y, y); });
  values.clear();
  std::vector<double> sorted(static_cast<size_t>(n) * n);
  for (int j = 0; j < n; ++j) {
    values.push_back(at(A, order[static_cast<size_t>(j)], order[static_cast<size_t>(j)]));
    for (int r = 0; r < n; ++r) sorted[static_cast<size_t>(r) * n + j] = at(vectors, r, order[static_cast<size_t>(j)]);
  }
  vectors = sorted;
}

TEST(CovopSpectrum, JacobiKernelRecoversKnownSpectra) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  struct Case {
    int n;
    std::vector<double> lambda;  // empty: a NaN matrix
  };
  const std::vector<Case> cases = {
      {1, {2.5}},
      {4, {0.0, 0.0, 0.0, 0.0}},
      {5, {3.0, -1.0, 0.5, 7.0, 1e-9}},
      {6, {2.0, 2.0, 2.0, 1.0, 1.0, 0.0}},  // degenerate
      {10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
      {12, {1e-3, 5e-4, 1e-6, 0, 0, 0, 0, 0, 0, 0, 0, 0}},  // low rank and tiny, like a Gram matrix
      {3, {}},
  };
  // One launch per matrix (the kernel takes count matrices of one size).
  for (size_t m = 0; m < cases.size(); ++m) {
    const Case& c = cases[m];
    const int n = c.n;
    // A random orthogonal Q by Gram-Schmidt; A = Q diag(lambda) Q^T.
    std::vector<double> Q(static_cast<size_t>(n) * n);
    for (double& x : Q) x = normal(rng);
    for (int j = 0; j < n; ++j) {
      for (int k = 0; k < j; ++k) {
        double d = 0.0;
        for (int r = 0; r < n; ++r) d += Q[static_cast<size_t>(r) * n + j] * Q[static_cast<size_t>(r) * n + k];
        for (int r = 0; r < n; ++r) Q[static_cast<size_t>(r) * n + j] -= d * Q[static_cast<size_t>(r) * n + k];
      }
      double nn = 0.0;
      for (int r = 0; r < n; ++r) nn += Q[static_cast<size_t>(r) * n + j] * Q[static_cast<size_t>(r) * n + j];
      for (int r = 0; r < n; ++r) Q[static_cast<size_t>(r) * n + j] /= std::sqrt(nn);
    }
    View3<real> one("one", 1, n, n);
    auto h = Kokkos::create_mirror_view(one);
    for (int r = 0; r < n; ++r)
      for (int s = 0; s < n; ++s) {
        double v = 0.0;
        if (c.lambda.empty())
          v = (r == 1 && s == 2) ? std::nan("") : 1.0;
        else
          for (int k = 0; k < n; ++k)
            v += Q[static_cast<size_t>(r) * n + k] * c.lambda[static_cast<size_t>(k)] *
                 Q[static_cast<size_t>(s) * n + k];
        h(0, r, s) = v;
      }
    // Symmetrise exactly (the kernel treats the matrix as symmetric).
    for (int r = 0; r < n; ++r)
      for (int s = 0; s < r; ++s) h(0, r, s) = h(0, s, r);
    Kokkos::deep_copy(one, h);
    View2<real> values("values", 1, n);
    View3<real> vectors("vectors", 1, n, n);
    symmetric_eigen(one, values, vectors);
    const auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), values);
    const auto hV = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), vectors);
    if (c.lambda.empty()) {
      for (int j = 0; j < n; ++j) EXPECT_TRUE(std::isnan(hv(0, j)));
      continue;
    }
    std::vector<double> want = c.lambda;
    std::sort(want.rbegin(), want.rend());
    double scale = 1e-300;
    for (double l : want) scale = std::max(scale, std::fabs(l));
    for (int j = 0; j < n; ++j)
      EXPECT_NEAR(hv(0, j), want[static_cast<size_t>(j)], 1e-13 * scale) << "n=" << n << " j=" << j;
    // V orthonormal, A V = V Lambda, largest entry of each vector positive.
    for (int j = 0; j < n; ++j) {
      int big = 0;
      for (int r = 0; r < n; ++r) {
        if (std::fabs(hV(0, r, j)) > std::fabs(hV(0, big, j))) big = r;
        double av = 0.0;
        for (int k = 0; k < n; ++k) av += h(0, r, k) * hV(0, k, j);
        EXPECT_NEAR(av, hv(0, j) * hV(0, r, j), 1e-12 * (scale + 1e-300)) << "n=" << n;
      }
      EXPECT_GT(hV(0, big, j), 0.0);
      for (int k = 0; k < n; ++k) {
        double d = 0.0;
        for (int r = 0; r < n; ++r) d += hV(0, r, j) * hV(0, r, k);
        EXPECT_NEAR(d, j == k ? 1.0 : 0.0, 1e-12);
      }
    }
  }
}

TEST(CovopWindows, EveryNodeHasOneSlotAndItsParentsSlotIsItsParents) {
  for (const TreeShape& t : {TreeShape(1, 2, 4), TreeShape(4, 3, 5), TreeShape(6, 2, 10)})
    for (int split = 1; split <= t.depth; ++split) {
      const TreeWindows ws(t, 0.0, 0.0, split);
      std::vector<int> slot_of(static_cast<size_t>(t.n_latent), -1);
      for (int w = 0; w < ws.windows(); ++w) {
        const TreeWindow win = ws.window(w);
        for (int n = 0; n < win.nodes(); ++n) {
          const int d = win.depth_of(n), i = n - (win.first_slot[d] - win.first_slot[0]);
          const int node = win.first_node[d] + i, slot = win.first_slot[d] + i;
          ASSERT_EQ(t.level_of(node), win.first_level + d);
          ASSERT_EQ(win.node_at(n), node);  // what the kernels use
          ASSERT_EQ(slot, win.first_slot[0] + n);
          ASSERT_EQ(slot_of[static_cast<size_t>(node)], -1) << "node " << node << " in two windows";
          ASSERT_LT(slot, ws.slots());
          ASSERT_EQ(slot == 0, node == 0) << "slot 0 holds the root alone (made once: root_jacobians)";
          slot_of[static_cast<size_t>(node)] = slot;
          if (node > 0) {  // the parent, and its slot (still holding it, filled earlier)
            const TreeWindow::Parent up = win.parent_of(d, i, t);
            const int parent = (node - 1) / t.k;  // the numbering's definition, a plain divide
            EXPECT_EQ(up.node, parent) << "node " << node << " split " << split;
            EXPECT_EQ(up.slot, slot_of[static_cast<size_t>(parent)]) << "node " << node << " split " << split;
          }
        }
      }
      for (int node = 0; node < t.n_latent; ++node) EXPECT_GE(slot_of[static_cast<size_t>(node)], 0);
    }
  // Chosen: no cut where one block fits, a cut that keeps about two subtrees' room otherwise.
  const TreeShape shallow(5, 2, 10), deep(10, 2, 10);
  EXPECT_EQ(CovopStats::windows_of(shallow).windows(), 1);
  EXPECT_EQ(CovopStats::windows_of(deep).slots(), 62);  // cut at level 5: 31 + 31 of 1023
}

TEST(CovopWindows, EveryCutGivesTheSameTotalsBitForBit) {
  // The conn sums of a pass whose Jacobians are made a window at a time are those of the
  // whole tree at once: the same integers, for every level the tree may be cut at.
  for (const NetworkShape& net : {small_net(true, 4, 10), small_net(false, 3, 5)}) {
    const TreeShape& t = net.tree;
    const View1<real> params = init_params(net, 5);
    const EvalLayout layout = EvalLayout::of(t, false);
    const std::int64_t rows = 200, chunk = 256;  // a last block of 8 anchors
    SampleBatch s;
    Activations act;
    s.allocate(t, chunk);
    act.allocate(t, chunk);
    sample_views(t, draw_polarities(t, 5, 0.7, 1.0), 5, 1, 0, rows, 1, s);
    forward(net, params, s.leaves, rows, act);
    std::vector<std::int64_t> whole;
    for (int split = t.depth; split >= 1; --split) {
      const CovopStats covop(t, layout, chunk, split);
      View1<std::int64_t> total("total", layout.length);
      covop.accumulate(s, act, rows, total);
      const auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), total);
      const std::vector<std::int64_t> got(h.data(), h.data() + h.size());
      if (split == t.depth) {
        whole = got;
        EXPECT_NE(std::count(whole.begin() + layout.conn0, whole.begin() + layout.overflow, 0),
                  layout.overflow - layout.conn0);  // the sums are not all 0
        continue;
      }
      EXPECT_EQ(got, whole) << "cut at level " << split << " of " << t.depth;
    }
  }
}

TEST(CovopSpectrum, NodeSpectraAndAlignmentMatchTheDenseOperator) {
  // Evaluate a small bias-free network, then for every node form the dense (in*hid)^2
  // operator p0 p1 Delta Delta^T on the host (paper reshape, rows (i, b)), decompose it, and
  // compare: its top hid eigenvalues are the kernel's spectrum of p0 p1 Delta^T Delta (and
  // the rest are 0), its top eigenvector gives the alignment.
  const NetworkShape net = small_net(false);
  const TreeShape& t = net.tree;
  const View1<real> params = init_params(net, 8);
  const View1<real> pol = draw_polarities(t, 8, 0.7, 1.0);
  Evaluator ev(net, 1024);
  SampleBatch s;
  s.allocate(t, ev.chunk());
  Activations act;
  act.allocate(t, ev.chunk());
  ev.reset();
  const std::int64_t n = 8192;
  for (std::int64_t start = 0; start < n; start += ev.chunk()) {
    const std::int64_t rows = std::min(ev.chunk(), n - start);
    sample_views(t, pol, 8, 1, start, rows, 1, s);
    forward(net, params, s.leaves, rows, act);
    ev.accumulate(s, act, rows);
  }
  const EvalResult r = ev.finish(params);
  View1<real> dv("delta", t.n_conn());
  double p0, p1;
  ev.class_mean_difference(dv, &p0, &p1);
  const std::vector<double> delta = host_vector(dv), w = host_vector(params);
  const int hid = t.hid;
  ASSERT_EQ(r.covop_eigenvalues.size(), static_cast<size_t>(t.n_latent * hid));
  {
    // One node per batch gives the same bits as the evaluation.
    View3<real> gram("gram", t.n_latent, hid, hid);
    auto hg = Kokkos::create_mirror_view(gram);
    std::copy(r.gram_paper.begin(), r.gram_paper.end(), hg.data());
    Kokkos::deep_copy(gram, hg);
    View2<real> values("values", t.n_latent, hid);
    View1<real> alignment("alignment", t.n_latent);
    for (int mu = 0; mu < t.n_latent; ++mu) {
      View1<real> d("delta_node", t.conn_size(mu));
      double q0, q1;
      ev.class_mean_difference(d, &q0, &q1, t.conn_offset(mu));
      covop_spectrum(t, mu, 1, gram, d, params, values, alignment);
    }
    const auto v = host_vector(values), a = host_vector(alignment);
    EXPECT_EQ(0, std::memcmp(v.data(), r.covop_eigenvalues.data(), v.size() * sizeof(double)));
    EXPECT_EQ(0, std::memcmp(a.data(), r.covop_alignment.data(), a.size() * sizeof(double)));
  }
  ASSERT_EQ(r.covop_alignment.size(), static_cast<size_t>(t.n_latent));
  int compared = 0;
  for (int mu = 0; mu < t.n_latent; ++mu) {
    const int in = t.in_size(mu), dd = in * hid;
    const auto D = [&](int row, int a) {  // Delta_mu[(i, b), a]
      const int i = row / hid, b = row % hid;
      return delta[static_cast<size_t>(t.conn_offset(mu) + (static_cast<std::int64_t>(i) * hid + a) * hid + b)];
    };
    // gram_paper is p0 p1 Delta^T Delta.
    for (int a1 = 0; a1 < hid; ++a1)
      for (int a2 = 0; a2 < hid; ++a2) {
        double g = 0.0;
        for (int row = 0; row < dd; ++row) g += D(row, a1) * D(row, a2);
        EXPECT_NEAR(r.gram_paper[(static_cast<size_t>(mu) * hid + a1) * hid + a2], p0 * p1 * g,
                    1e-14 + 1e-12 * std::fabs(p0 * p1 * g));
      }
    std::vector<double> op(static_cast<size_t>(dd) * dd, 0.0);
    for (int r1 = 0; r1 < dd; ++r1)
      for (int r2 = 0; r2 < dd; ++r2)
        for (int a = 0; a < hid; ++a) op[static_cast<size_t>(r1) * dd + r2] += p0 * p1 * D(r1, a) * D(r2, a);
    std::vector<double> values, vectors;
    dense_eigen(op, dd, values, vectors);
    const double top = values[0];
    if (!(top > 0.0)) {
      EXPECT_TRUE(std::isnan(r.covop_alignment[static_cast<size_t>(mu)]) ||
                  r.covop_eigenvalues[static_cast<size_t>(mu) * hid] <= 0.0);
      continue;
    }
    for (int j = 0; j < dd; ++j) {
      const double want = j < hid ? values[static_cast<size_t>(j)] : 0.0;
      if (j < hid)
        EXPECT_NEAR(r.covop_eigenvalues[static_cast<size_t>(mu) * hid + j], want, 1e-10 * top)
            << "node " << mu << " j " << j;
      else
        EXPECT_NEAR(values[static_cast<size_t>(j)], 0.0, 1e-10 * top) << "node " << mu << ": rank above hid";
    }
    // Alignment: the length of the projection of vec(W_mu) onto the top eigenspace of the
    // dense operator over |W_mu| (at the root, J = I makes hid eigenvalues tie exactly);
    // vec(W_mu)[(i, b)] = W_mu(b, i) = params[off + b*in + i].
    double projected = 0.0, ww = 0.0;
    int tied = 0;
    for (int j = 0; j < dd && values[static_cast<size_t>(j)] >= top * (1.0 - kCovopTopTie); ++j, ++tied) {
      double dot = 0.0;
      for (int row = 0; row < dd; ++row) {
        const int i = row / hid, b = row % hid;
        dot += w[static_cast<size_t>(t.param_offset(mu) + static_cast<std::int64_t>(b) * in + i)] *
               vectors[static_cast<size_t>(row) * dd + j];
      }
      projected += dot * dot;
    }
    for (int row = 0; row < dd; ++row) {
      const int i = row / hid, b = row % hid;
      const double x = w[static_cast<size_t>(t.param_offset(mu) + static_cast<std::int64_t>(b) * in + i)];
      ww += x * x;
    }
    if (mu == 0)
      EXPECT_EQ(tied, hid) << "J_root = I: the root's operator is p0 p1 (dx dx^T) (x) I";
    else
      EXPECT_EQ(tied, 1) << "node " << mu;
    // Away from a near-tie (gap below 1e-6) the eigenspace, hence the alignment, is well conditioned.
    if (tied < dd && values[static_cast<size_t>(tied)] > top * (1.0 - 1e-6)) continue;
    EXPECT_NEAR(r.covop_alignment[static_cast<size_t>(mu)], std::sqrt(projected / ww), 1e-9) << "node " << mu;
    ++compared;
  }
  EXPECT_EQ(compared, t.n_latent);
}

// ---------------------------------------------------------------------------------------
// Level RMS of the simp relative error of one check.
double simp_error(const CovopCheckResult& r) {
  double s = 0.0;
  int n = 0;
  for (const auto& row : r.rows)
    if (row.loss == "simp") s += row.rel_residue * row.rel_residue, ++n;
  return std::sqrt(s / n);
}

class CovopCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    net = small_net(false);
    params = init_params(net, 1);
    pol = draw_polarities(net.tree, 1, 0.8, 1.0);
    world = World::from_mpi();
    reducer = make_reducer(world, "auto");
  }
  CovopCheckResult check(std::int64_t items, std::int64_t stream, std::vector<std::string> losses,
                         std::vector<double> taus = {}) {
    CovopCheckSpec spec;
    spec.items = spec.anchors = items;
    spec.chunk = std::min<std::int64_t>(items, 4096);
    spec.first_item = (std::int64_t(1) << 62) + stream * (std::int64_t(1) << 44);
    spec.losses = losses;
    spec.taus = taus;
    spec.seed = 1;
    return covop_check(net, params, pol, spec, world, *reducer);
  }
  NetworkShape net;
  View1<real> params, pol;
  World world;
  std::unique_ptr<Reducer> reducer;
};

TEST_F(CovopCheckTest, SimpErrorIsBelowOnePercentAndFallsAsOneOverSqrtBatch) {
  // Statistical error only: sqrt(E|err|^2) ~ c / sqrt(batch). The RMS over 4 independent
  // streams at batch 2^12, 2^14, 2^16 gives the slope of log(error) against log(batch).
  std::vector<double> logb, loge;
  for (int p = 12; p <= 16; p += 2) {
    double ms = 0.0;
    for (int stream = 0; stream < 4; ++stream) {
      const double e = simp_error(check(std::int64_t(1) << p, stream, {"simp"}));
      ms += e * e / 4.0;
    }
    logb.push_back(p * std::log(2.0));
    loge.push_back(0.5 * std::log(ms));
    RecordProperty("rms_error_batch_2^" + std::to_string(p), std::to_string(std::sqrt(ms)));
  }
  double mb = 0.0, me = 0.0;
  for (size_t i = 0; i < logb.size(); ++i) mb += logb[i] / 3.0, me += loge[i] / 3.0;
  double sxy = 0.0, sxx = 0.0;
  for (size_t i = 0; i < logb.size(); ++i)
    sxy += (logb[i] - mb) * (loge[i] - me), sxx += (logb[i] - mb) * (logb[i] - mb);
  const double slope = sxy / sxx;
  RecordProperty("slope", std::to_string(slope));
  EXPECT_NEAR(slope, -0.5, 0.12) << "error against batch should fall as batch^-1/2";
  EXPECT_LT(loge[2], loge[0]);

  // One large batch: every level within 1 % (expected about 0.5 %).
  const CovopCheckResult big = check(std::int64_t(1) << 19, 7, {"simp"});
  for (const auto& row : big.rows) {
    EXPECT_LT(row.rel_residue, 0.01) << "level " << row.level;
    EXPECT_GT(row.cosine, 0.9999) << "level " << row.level;
    EXPECT_EQ(row.alpha, 1.0);
  }
  EXPECT_NEAR(big.p0, 0.5, 0.01);
}

TEST_F(CovopCheckTest, ResidueGrowsAsTauShrinksAndVanishesForLargeTau) {
  // At this initialisation the mean d^2 is about 1e-3: tau from d^2 to 1000 d^2.
  const std::vector<double> taus = {1e-3, 1e-2, 1e-1, 1.0};
  const CovopCheckResult r = check(std::int64_t(1) << 16, 3, {"simp", "infonce", "triplet"}, taus);
  const int depth = net.tree.depth;
  ASSERT_EQ(r.rows.size(), static_cast<size_t>(depth * (1 + 2 * taus.size())));
  EXPECT_GT(r.d2_neg, 1e-4);
  EXPECT_LT(r.d2_neg, 1e-2);
  for (int l = 0; l < depth; ++l) {
    const double simp = r.rows[static_cast<size_t>(l)].rel_residue;
    for (size_t k = 0; k < taus.size(); ++k) {
      const auto& nce = r.rows[static_cast<size_t>(depth * (1 + k) + l)];
      const auto& tri = r.rows[static_cast<size_t>(depth * (1 + taus.size() + k) + l)];
      ASSERT_EQ(nce.loss, "infonce");
      ASSERT_EQ(nce.tau, taus[k]);
      // One negative, no margin: triplet and infonce are the same loss.
      EXPECT_NEAR(tri.rel_residue, nce.rel_residue, 1e-12 * nce.rel_residue);
      EXPECT_GT(nce.alpha, 0.0);
      EXPECT_LE(nce.alpha, 0.5 + 1e-9);  // s_alpha = mean sigmoid weight
      if (k + 1 < taus.size()) {
        const auto& next = r.rows[static_cast<size_t>(depth * (2 + k) + l)];
        EXPECT_GT(nce.rel_residue, 1.2 * next.rel_residue) << "level " << l << " tau " << taus[k];
      }
    }
    // Large tau: the weight is 1/2 everywhere and the residue is the simp error.
    const auto& last = r.rows[static_cast<size_t>(depth * taus.size() + l)];
    EXPECT_NEAR(last.alpha, 0.5, 1e-3);
    EXPECT_NEAR(last.rel_residue, simp, 0.3 * simp);
    // Small tau: far from the weighted covariance alone.
    EXPECT_GT(r.rows[static_cast<size_t>(depth + l)].rel_residue, 0.3);
  }
}

// ---------------------------------------------------------------------------------------
TEST(CovopTraining, AlignmentGrowsForMostNodesOfTheLowestLevel) {
  // simp, bias-free, f = h_root: a few epochs amplify the directions the operator selects.
  Config cfg;
  cfg.depth = 3;
  cfg.hid = 4;
  cfg.bias = false;
  cfg.normalize_output = false;
  cfg.loss = "simp";
  cfg.lr = 0.03;
  cfg.samples_per_pass = 6400;
  cfg.seed = 1;
  const World world = World::from_mpi();
  Trainer tr(cfg, world);
  const EvalResult before = tr.evaluate(0);
  for (std::int64_t e = 0; e < 3; ++e)
    for (std::int64_t step = 0; step < tr.steps_per_pass(); ++step) tr.train_step(e, step);
  const EvalResult after = tr.evaluate(3);
  const TreeShape& t = tr.network().tree;
  int up = 0, n = 0;
  double mean0 = 0.0, mean1 = 0.0;
  for (int mu = t.level_start[t.depth - 1]; mu < t.n_latent; ++mu, ++n) {
    const double a0 = before.covop_alignment[static_cast<size_t>(mu)],
                 a1 = after.covop_alignment[static_cast<size_t>(mu)];
    up += a1 > a0;
    mean0 += a0;
    mean1 += a1;
    RecordProperty("alignment_node_" + std::to_string(mu), std::to_string(a0) + " -> " + std::to_string(a1));
  }
  EXPECT_GT(2 * up, n) << up << " of " << n << " nodes of the lowest level gained alignment";
  // bias=false keeps the network bias-free through training (the theorem's setting).
  const std::vector<double> p = host_vector(tr.params());
  for (int mu = 0; mu < t.n_latent; ++mu)
    for (int j = 0; j < t.hid; ++j)
      EXPECT_EQ(p[static_cast<size_t>(t.param_offset(mu) + static_cast<std::int64_t>(t.hid) * t.in_size(mu) + j)], 0.0);
  EXPECT_GT(mean1, mean0);
  // The spectrum is recorded too, descending.
  for (int mu = 0; mu < t.n_latent; ++mu)
    for (int j = 0; j + 1 < t.hid; ++j)
      EXPECT_GE(after.covop_eigenvalues[static_cast<size_t>(mu * t.hid + j)],
                after.covop_eigenvalues[static_cast<size_t>(mu * t.hid + j + 1)]);
}

// ---------------------------------------------------------------------------------------
std::string temp_dir(const std::string& name) {
  const auto d =
      std::filesystem::temp_directory_path() / ("dualnet-covop-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

TEST(CovopMetrics, RowsCarryTheSpectrumAndAlignment) {
  Config cfg;
  cfg.depth = 3;
  cfg.hid = 4;
  cfg.bias = false;
  cfg.samples_per_pass = 1024;
  const World world = World::from_mpi();
  Trainer tr(cfg, world);
  const EvalResult r = tr.evaluate(0);
  const TreeShape& t = tr.network().tree;
  const std::string path = temp_dir("metrics") + "/metrics.h5";
  create_metrics_file(path, cfg, t, host_vector(tr.polarity()), host_vector(root_correlations(t, tr.polarity())), 1);
  MetricsRow row;
  row.eval = &r;
  row.weight_norm = host_vector(weight_norms(tr.network(), tr.params()));
  row.weight_change.assign(row.weight_norm.size(), 0.0);
  append_metrics_row(path, row);
  row.epoch = 1;
  append_metrics_row(path, row);
  h5::Handle f = h5::open_file(path, false);
  h5::Handle g = h5::open_group(f, "metrics");
  EXPECT_EQ(h5::shape(h5::open_dataset(g, "covop_eigenvalues")),
            (std::vector<hsize_t>{2, static_cast<hsize_t>(t.n_latent), static_cast<hsize_t>(t.hid)}));
  EXPECT_EQ(h5::shape(h5::open_dataset(g, "covop_alignment")),
            (std::vector<hsize_t>{2, static_cast<hsize_t>(t.n_latent)}));
  const auto ev = h5::read_doubles(g, "covop_eigenvalues");
  const auto al = h5::read_doubles(g, "covop_alignment");
  for (size_t i = 0; i < r.covop_eigenvalues.size(); ++i) EXPECT_EQ(ev[i], r.covop_eigenvalues[i]);
  for (size_t i = 0; i < r.covop_alignment.size(); ++i) EXPECT_EQ(al[i], r.covop_alignment[i]);
  EXPECT_GT(r.covop_eigenvalues[0], 0.0);
}

TEST(CovopCommand, WritesTheReportForAConfigAndForACheckpointRun) {
  const World world = World::from_mpi();
  const std::string dir = temp_dir("command");
  const std::string path = dir + "/covop.h5";
  testing::internal::CaptureStdout();
  const int rc = covop_command({"depth=3", "hid=4", "bias=false", "normalize_output=false", "batch=8192", "chunk=2048",
                                "taus=[0.01, 1]", "losses=simp,infonce", "file=" + path},
                               world);
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  EXPECT_NE(out.find("simp"), std::string::npos);
  EXPECT_NE(out.find("infonce"), std::string::npos);
  h5::Handle f = h5::open_file(path, false);
  EXPECT_EQ(h5::read_attr_string(f, "format"), "dualnet-covop");
  EXPECT_EQ(h5::read_attr_int(f, "batch"), 8192);
  EXPECT_EQ(h5::shape(h5::open_dataset(h5::open_group(f, "simp"), "rel_error")), (std::vector<hsize_t>{3}));
  EXPECT_EQ(h5::shape(h5::open_dataset(h5::open_group(f, "infonce"), "rel_residue")), (std::vector<hsize_t>{2, 3}));
  EXPECT_EQ(h5::read_doubles(h5::open_group(f, "infonce"), "tau"), (std::vector<double>{0.01, 1.0}));
  EXPECT_EQ(h5::shape(h5::open_dataset(h5::open_group(f, "nodes"), "covop_eigenvalues")), (std::vector<hsize_t>{7, 4}));
  for (double e : h5::read_doubles(h5::open_group(f, "simp"), "rel_error")) EXPECT_LT(e, 0.2);

  // A run directory: its latest checkpoint's weights; the report lands beside it.
  Config cfg;
  cfg.depth = 3;
  cfg.hid = 4;
  cfg.bias = false;
  cfg.normalize_output = false;
  Checkpoint c;
  c.config = cfg;
  c.epoch = 2;
  c.step = 0;
  NetworkShape net = small_net(false);
  c.params = host_vector(init_params(net, 99));
  c.velocity.assign(c.params.size(), 0.0);
  c.row_params = c.params;
  c.step_losses.assign(static_cast<size_t>(cfg.samples_per_pass / cfg.batch), 0.0);
  c.polarity =
      host_vector(draw_polarities(net.tree, static_cast<std::uint64_t>(cfg.seed), cfg.delta_lower, cfg.delta_upper));
  const std::string run = dir + "/run";
  write_checkpoint(run, c, 2);
  testing::internal::CaptureStdout();
  ASSERT_EQ(covop_command({run, "batch=4096", "losses=simp"}, world), 0);
  const std::string out2 = testing::internal::GetCapturedStdout();
  EXPECT_NE(out2.find("epoch 2"), std::string::npos) << out2;
  h5::Handle f2 = h5::open_file(run + "/covop-e2-s0.h5", false);
  EXPECT_EQ(h5::read_attr_int(f2, "epoch"), 2);
  const auto wn = h5::read_doubles(h5::open_group(f2, "levels"), "weight_norm");
  double root = 0.0;  // |W_root| of the checkpoint's weights (not those of seed 1)
  for (std::int64_t q = 0; q < net.tree.hid * net.tree.in_size(0); ++q)
    root += c.params[static_cast<size_t>(q)] * c.params[static_cast<size_t>(q)];
  EXPECT_NEAR(wn[0], std::sqrt(root), 1e-12);
  try {
    covop_command({run, "hid=8"}, world);
    ADD_FAILURE() << "a checkpoint's network keys must not change";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("hid"), std::string::npos) << e.what();
  }

  // Bad keys are usage errors naming the key.
  try {
    covop_command({"batch=1000", "chunk=300"}, world);
    ADD_FAILURE() << "a batch that chunk does not divide must be refused";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("chunk"), std::string::npos) << e.what();
  }
  try {
    covop_command({"losses=ref_nce"}, world);
    ADD_FAILURE() << "ref_nce is not a loss of the theorem";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("ref_nce"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dualnet
