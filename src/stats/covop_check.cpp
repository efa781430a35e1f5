#include "stats/covop_check.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "hltm/hltm.hpp"
#include "loss/loss.hpp"
#include "util/error.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {
namespace {

// One loss at one temperature: the gradient totals of its own backward pass.
struct Variant {
  std::string loss;
  double tau;
  LossParams params;
};

std::vector<Variant> variants(const CovopCheckSpec& spec, int hid) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<Variant> out;
  for (const auto& name : spec.losses) {
    const auto theorem = loss_name_list(true);
    if (std::find(theorem.begin(), theorem.end(), name) == theorem.end())
      throw UsageError("covop: losses must be among " + loss_name_text(true) + " (the theorem's losses), got '" + name +
                       "'");
    if (name == "triplet" && spec.negatives != 1)
      throw UsageError("covop: triplet needs negatives=1, got " + std::to_string(spec.negatives));
    LossParams p;
    p.kind = loss_kind(name);
    p.margin = spec.margin;
    p.negatives = spec.negatives;
    p.global_batch = spec.items;  // coefficients of the mean over all items
    p.out_dim = hid;
    if (name == "simp") {
      out.push_back({name, nan, p});
      continue;
    }
    for (double tau : spec.taus) {
      if (!(tau > 0.0)) throw UsageError("covop: every tau must be > 0");
      p.temp = tau;
      out.push_back({name, tau, p});
    }
  }
  if (out.empty()) throw UsageError("covop: nothing to check (empty losses, or no taus for infonce/triplet)");
  return out;
}

// Slots of the pair-weight totals of one variant: beta sums (stat fixed point) and counts
// per (anchor root, negative root), then an overflow count.
constexpr int kPairSlots = 9;

}  // namespace

CovopCheckResult covop_check(const NetworkShape& net, const View1<real>& params, const View1<real>& polarity,
                             const CovopCheckSpec& spec, const World& world, Reducer& reducer) {
  const TreeShape t = net.tree;
  if (spec.items < 1 || spec.anchors < 1 || spec.chunk < 1 || spec.micro < 1)
    throw UsageError("covop: batch, samples, chunk and micro must be positive");
  if (spec.items % spec.chunk != 0)
    throw UsageError("covop: batch (" + std::to_string(spec.items) + ") must be a multiple of chunk (" +
                     std::to_string(spec.chunk) + ")");
  if (spec.chunk % spec.micro != 0)
    throw UsageError("covop: micro (" + std::to_string(spec.micro) + ") must divide chunk (" +
                     std::to_string(spec.chunk) + ")");
  const std::vector<Variant> vars = variants(spec, t.hid);
  const int nv = static_cast<int>(vars.size());
  const int views = spec.negatives + 2, negs = spec.negatives;
  const std::int64_t n_params = t.n_params(), stride = n_params + 2;
  const std::int64_t chunk = spec.chunk, rows = chunk * views;

  // ---- The mean gradient of every variant, over the same items. ----
  const View1<std::int64_t> grad_total("stats.covop_grad_totals", nv * stride);  // gradient, loss, overflow
  const View1<std::int64_t> pair_total("stats.covop_pair_totals", nv * kPairSlots);
  const View1<std::int64_t> dist_total("stats.covop_dist_totals", 3);  // sum E_pos, sum E_neg, overflow
  {
    SampleBatch s;
    s.allocate(t, rows);
    Activations act;
    act.allocate(t, rows);
    const View2<real> dist("stats.covop_dist", chunk, views - 1), coef("stats.covop_coef", chunk, views - 1);
    const View1<real> item_loss("stats.covop_item_loss", chunk);
    const View2<real> grad_out("stats.covop_grad_out", rows, t.hid);
    const View2<real> delta("stats.covop_delta_rows", rows, t.n_neuron());
    const View1<std::int64_t> grad("stats.covop_grad", stride);
    const View1<std::int64_t> no_batch_sums("stats.covop_batch_sums", kBatchSums);  // unused: local losses only
    const std::int64_t chunks = spec.items / chunk;
    const std::int64_t c_begin = chunks * world.rank / world.size, c_end = chunks * (world.rank + 1) / world.size;
    const double items = static_cast<double>(spec.items);
    for (std::int64_t c = c_begin; c < c_end; ++c) {
      sample_views(t, polarity, spec.seed, spec.share_levels, spec.first_item + c * chunk, chunk, views, s);
      forward(net, params, s.leaves, rows, act);
      pair_distances(act.out, chunk, views, dist);
      Kokkos::parallel_for("stats::covop_dist_sums", range(1), KOKKOS_LAMBDA(const std::int64_t) {
        double sp = 0.0, sn = 0.0;
        for (std::int64_t i = 0; i < chunk; ++i) {
          sp += dist(i, 0);
          for (int k = 1; k <= negs; ++k) sn += dist(i, k);
        }
        bool overflow = false;
        dist_total(0) += to_fixed(sp, &overflow, kStatFixed);
        dist_total(1) += to_fixed(sn, &overflow, kStatFixed);
        if (overflow) dist_total(2) += 1;
      });
      for (int v = 0; v < nv; ++v) {
        Kokkos::deep_copy(grad, std::int64_t(0));
        loss_coefficients(vars[v].params, dist, chunk, spec.micro, no_batch_sums, coef, item_loss, grad, n_params);
        output_gradient(act.out, coef, chunk, views, grad_out);
        backward(net, params, act, grad_out, rows, delta);
        weight_gradient(net, act, s.leaves, delta, rows, spec.micro * views, grad, n_params + 1);
        const std::int64_t base = v * stride;
        Kokkos::parallel_for("stats::covop_grad_accumulate", range(stride),
                             KOKKOS_LAMBDA(const std::int64_t p) { grad_total(base + p) += grad(p); });
        // beta = -2 * items * dL/dE_k: the weight of negative k in -grad L = sum_k beta_k (grad d_k^2 - grad d+^2).
        const auto latent = s.latent;
        const std::int64_t pbase = v * kPairSlots;
        Kokkos::parallel_for("stats::covop_pair_weights", range(1), KOKKOS_LAMBDA(const std::int64_t) {
          double sum[4] = {0.0, 0.0, 0.0, 0.0};
          std::int64_t count[4] = {0, 0, 0, 0};
          for (std::int64_t i = 0; i < chunk; ++i) {
            const int ca = latent(i * views, 0) ? 1 : 0;
            for (int k = 1; k <= negs; ++k) {
              const int pair = 2 * ca + (latent(i * views + 1 + k, 0) ? 1 : 0);
              sum[pair] += -2.0 * items * coef(i, k);
              count[pair] += 1;
            }
          }
          bool overflow = false;
          for (int q = 0; q < 4; ++q) {
            pair_total(pbase + q) += to_fixed(sum[q], &overflow, kStatFixed);
            pair_total(pbase + 4 + q) += count[q];
          }
          if (overflow) pair_total(pbase + 8) += 1;
        });
      }
    }
  }
  reducer.sum(grad_total);
  reducer.sum(pair_total);
  reducer.sum(dist_total);
  auto h_grad = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad_total);
  auto h_pair = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), pair_total);
  auto h_dist = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dist_total);
  if (h_dist(2) != 0)
    throw RuntimeError("covop: the distances between views left the exact fixed-point range: the outputs are too large",
                       true);
  for (int v = 0; v < nv; ++v)
    if (h_grad(v * stride + n_params + 1) != 0 || h_pair(v * kPairSlots + 8) != 0)
      throw RuntimeError("covop: a gradient sum of " + vars[v].loss +
                             " left the exact fixed-point range (|x| >= 2^23): the network's outputs are too large",
                         true);

  // ---- Class means of K on independent anchors: Delta, p0, p1, spectrum, alignment. ----
  CovopCheckResult res;
  res.d2_pos = 0.5 * from_fixed(h_dist(0), kStatFixed) / static_cast<double>(spec.items);
  res.d2_neg = 0.5 * from_fixed(h_dist(1), kStatFixed) / (static_cast<double>(spec.items) * negs);
  if (spec.same_anchors && spec.anchors > spec.items)
    throw UsageError("covop: with the gradient's own anchors, samples must not exceed batch");
  const std::int64_t anchor_first = spec.same_anchors ? spec.first_item : spec.first_item + spec.items;
  Evaluator ev(net, spec.chunk);
  ev.reset();
  {
    SampleBatch s;
    s.allocate(t, ev.chunk());
    Activations act;
    act.allocate(t, ev.chunk());
    std::int64_t begin, end;
    Evaluator::rank_range(spec.anchors, world.rank, world.size, &begin, &end);
    for (std::int64_t start = begin; start < end; start += ev.chunk()) {
      const std::int64_t n = std::min(ev.chunk(), end - start);
      sample_views(t, polarity, spec.seed, spec.share_levels, anchor_first + start, n, 1, s);
      forward(net, params, s.leaves, n, act);
      ev.accumulate(params, s, act, n);
    }
  }
  reducer.sum(ev.totals());
  res.eval = ev.finish();
  const View1<real> dlt("stats.covop_delta", t.n_conn());
  ev.class_mean_difference(dlt, &res.p0, &res.p1);
  const double w01 = res.p0 * res.p1;

  // ---- OP_l w = p0 p1 Delta_l (Delta_l^T w), level by level. ----
  const int hid = t.hid, depth = t.depth;
  const View2<real> dtw("stats.covop_delta_t_w", depth, hid);  // Delta_l^T w_l
  Kokkos::parallel_for("stats::covop_delta_t_w", range(depth * hid), KOKKOS_LAMBDA(const std::int64_t idx) {
    const int l = static_cast<int>(idx / hid), a = static_cast<int>(idx % hid);
    double s = 0.0;
    for (int node = t.level_start[l]; node < t.level_start[l + 1]; ++node) {
      const int in = t.in_size(node);
      const std::int64_t wo = t.param_offset(node), co = t.conn_offset(node);
      for (int i = 0; i < in; ++i)
        for (int b = 0; b < hid; ++b)
          s += dlt(co + (static_cast<std::int64_t>(i) * hid + a) * hid + b) * params(wo + static_cast<std::int64_t>(b) * in + i);
    }
    dtw(l, a) = s;
  });
  const View1<real> opw("stats.covop_op_w", n_params);  // biases stay 0
  Kokkos::parallel_for("stats::covop_op_w", range(t.n_latent * hid), KOKKOS_LAMBDA(const std::int64_t idx) {
    const int node = static_cast<int>(idx / hid), b = static_cast<int>(idx % hid);
    const int in = t.in_size(node), l = t.level_of(node);
    const std::int64_t wo = t.param_offset(node), co = t.conn_offset(node);
    for (int i = 0; i < in; ++i) {
      double s = 0.0;
      for (int a = 0; a < hid; ++a) s += dlt(co + (static_cast<std::int64_t>(i) * hid + a) * hid + b) * dtw(l, a);
      opw(wo + static_cast<std::int64_t>(b) * in + i) = w01 * s;
    }
  });

  // ---- Per variant and level: |g|^2, <g, OPw>, |OPw|^2, |residue|^2, |w|^2. ----
  constexpr int kProducts = 5;
  const View2<real> prod("stats.covop_products", depth, kProducts);
  auto h_prod = Kokkos::create_mirror_view(prod);
  for (int v = 0; v < nv; ++v) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    double alpha_pair[4];
    for (int q = 0; q < 4; ++q) {
      const std::int64_t n = h_pair(v * kPairSlots + 4 + q);
      alpha_pair[q] = n > 0 ? from_fixed(h_pair(v * kPairSlots + q), kStatFixed) / static_cast<double>(n) : nan;
    }
    // s_alpha = H (alpha_01 + alpha_10) / 2; exactly 1 for simp (beta = 1/H for every pair).
    const double s_alpha = vars[v].loss == "simp" ? 1.0 : negs * 0.5 * (alpha_pair[1] + alpha_pair[2]);
    const std::int64_t base = v * stride;
    Kokkos::parallel_for("stats::covop_level_products", range(depth), KOKKOS_LAMBDA(const std::int64_t l) {
      double gg = 0.0, go = 0.0, oo = 0.0, rr = 0.0, ww = 0.0;
      for (int node = t.level_start[l]; node < t.level_start[l + 1]; ++node) {
        const std::int64_t wo = t.param_offset(node), count = static_cast<std::int64_t>(hid) * t.in_size(node);
        for (std::int64_t p = wo; p < wo + count; ++p) {
          const double g = from_fixed(grad_total(base + p)), o = opw(p), r = -g - 2.0 * s_alpha * o;
          gg += g * g;
          go += g * o;
          oo += o * o;
          rr += r * r;
          ww += params(p) * params(p);
        }
      }
      prod(l, 0) = gg;
      prod(l, 1) = go;
      prod(l, 2) = oo;
      prod(l, 3) = rr;
      prod(l, 4) = ww;
    });
    Kokkos::deep_copy(h_prod, prod);
    const double loss_mean = from_fixed(h_grad(base + n_params));
    for (int l = 0; l < depth; ++l) {
      CovopCheckRow r;
      r.loss = vars[v].loss;
      r.tau = vars[v].tau;
      r.level = l;
      r.loss_mean = loss_mean;
      r.grad_norm = std::sqrt(h_prod(l, 0));
      r.pred_norm = 2.0 * std::fabs(s_alpha) * std::sqrt(h_prod(l, 2));
      r.alpha = s_alpha;
      r.residue_norm = std::sqrt(h_prod(l, 3));
      r.rel_residue = r.residue_norm / r.grad_norm;
      r.cosine = -h_prod(l, 1) / std::sqrt(h_prod(l, 0) * h_prod(l, 2));
      std::copy(alpha_pair, alpha_pair + 4, r.alpha_pairs);
      res.rows.push_back(r);
      if (v == 0) {
        res.weight_norm.push_back(std::sqrt(h_prod(l, 4)));
        res.op_norm.push_back(std::sqrt(h_prod(l, 2)));
      }
    }
  }
  return res;
}

}  // namespace dualnet
