#include "stats/covop_check.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "hltm/hltm.hpp"
#include "loss/loss.hpp"
#include "model/padded_layout.hpp"
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

void check_sizes(const CovopCheckSpec& spec) {
  if (spec.items < 1 || spec.anchors < 1 || spec.chunk < 1 || spec.micro < 1)
    throw UsageError("covop: batch, samples, chunk and micro must be positive");
  if (spec.items % spec.chunk != 0)
    throw UsageError("covop: batch (" + std::to_string(spec.items) + ") must be a multiple of chunk (" +
                     std::to_string(spec.chunk) + ")");
  if (spec.chunk % spec.micro != 0)
    throw UsageError("covop: micro (" + std::to_string(spec.micro) + ") must divide chunk (" +
                     std::to_string(spec.chunk) + ")");
  if (spec.same_anchors && spec.anchors > spec.items)
    throw UsageError("covop: with the gradient's own anchors, samples must not exceed batch");
}

// The exact totals of the gradient part: per variant its gradient, loss and overflow count
// (n_params + 2 entries each) and its pair weights; the distances of the views.
struct GradientTotals {
  View1<std::int64_t> grad, pair, dist;
  GradientTotals(std::int64_t stride, int variants)
      : grad("stats.covop_grad_totals", variants * stride),
        pair("stats.covop_pair_totals", variants * kPairSlots),
        dist("stats.covop_dist_totals", 3) {}  // sum E_pos, sum E_neg, overflow
};

// The Views one chunk of items runs through.
struct ChunkWork {
  SampleBatch s;
  Activations act;
  View2<real> dist, coef, grad_out, delta;
  View1<real> item_loss;
  View1<std::int64_t> grad, no_batch_sums;  // no_batch_sums: unused, local losses only
  ChunkWork(const TreeShape& t, std::int64_t chunk, int views)
      : dist("stats.covop_dist", chunk, views - 1),
        coef("stats.covop_coef", chunk, views - 1),
        grad_out("stats.covop_grad_out", chunk * views, t.hid),
        delta("stats.covop_delta_rows", chunk * views, PaddedLayout(t).delta_columns()),
        item_loss("stats.covop_item_loss", chunk),
        grad("stats.covop_grad", t.n_params() + 2),
        no_batch_sums("stats.covop_batch_sums", kBatchSums) {
    s.allocate(t, chunk * views);
    act.allocate(t, chunk * views);
  }
};

// Sums of the chunk's d^2 of positive and negative pairs.
void add_distance_sums(const View2<real>& dist, std::int64_t chunk, int negs, const View1<std::int64_t>& dist_total) {
  Kokkos::parallel_for(
      "stats::covop_dist_sums", range(1), KOKKOS_LAMBDA(const std::int64_t) {
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
}

// beta = -2 * items * dL/dE_k: the weight of negative k in -grad L = sum_k beta_k (grad d_k^2
// - grad d+^2), summed by (anchor root, negative root).
void add_pair_weights(const ChunkWork& w, std::int64_t chunk, int views, double items, std::int64_t pbase,
                      const View1<std::int64_t>& pair_total) {
  const auto latent = w.s.latent;
  const auto coef = w.coef;
  const int negs = views - 2;
  Kokkos::parallel_for(
      "stats::covop_pair_weights", range(1), KOKKOS_LAMBDA(const std::int64_t) {
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

// Variant v's gradient over the chunk in w (its forward pass done), added to the totals.
void add_variant_gradient(const NetworkShape& net, const Variant& var, int v, const CovopCheckSpec& spec,
                          const ChunkWork& w, const GradientTotals& totals) {
  const std::int64_t n_params = net.tree.n_params(), stride = n_params + 2, chunk = spec.chunk;
  const int views = spec.negatives + 2;
  const std::int64_t rows = chunk * views;
  Kokkos::deep_copy(w.grad, std::int64_t(0));
  loss_gradient(var.params, w.act.out, w.dist, chunk, spec.micro, w.no_batch_sums, w.coef, w.item_loss, w.grad_out,
                w.grad, n_params);
  backward(net, w.act, w.grad_out, rows, w.delta);
  weight_gradient(net, w.act, w.s.leaves, w.delta, rows, spec.micro * views, w.grad, n_params + 1);
  const std::int64_t base = v * stride;
  const auto grad = w.grad;
  const auto grad_total = totals.grad;
  Kokkos::parallel_for(
      "stats::covop_grad_accumulate", range(stride),
      KOKKOS_LAMBDA(const std::int64_t p) { grad_total(base + p) += grad(p); });
  add_pair_weights(w, chunk, views, static_cast<double>(spec.items), v * kPairSlots, totals.pair);
}

// The mean gradient of every variant over the same items (this rank's whole chunks).
void add_gradients(const NetworkShape& net, const View1<real>& params, const View1<real>& polarity,
                   const CovopCheckSpec& spec, const std::vector<Variant>& vars, const World& world,
                   const GradientTotals& totals) {
  const TreeShape& t = net.tree;
  const int views = spec.negatives + 2;
  const std::int64_t chunk = spec.chunk, rows = chunk * views;
  ChunkWork w(t, chunk, views);
  const std::int64_t chunks = spec.items / chunk;
  const std::int64_t c_begin = chunks * world.rank / world.size, c_end = chunks * (world.rank + 1) / world.size;
  for (std::int64_t c = c_begin; c < c_end; ++c) {
    sample_views(t, polarity, spec.seed, spec.share_levels, spec.first_item + c * chunk, chunk, views, w.s);
    forward(net, params, w.s.leaves, rows, w.act);
    pair_distances(w.act.out, chunk, views, spec.micro, w.dist);
    add_distance_sums(w.dist, chunk, spec.negatives, totals.dist);
    for (int v = 0; v < static_cast<int>(vars.size()); ++v) add_variant_gradient(net, vars[v], v, spec, w, totals);
  }
}

// The anchors' statistics (Evaluator) on `anchors` anchors: Delta of every node into dlt,
// p0 and p1, and the pass's EvalResult (spectrum and alignment per node).
EvalResult class_means(const NetworkShape& net, const View1<real>& params, const View1<real>& polarity,
                       const CovopCheckSpec& spec, const World& world, Reducer& reducer, const View1<real>& dlt,
                       double* p0, double* p1) {
  const TreeShape& t = net.tree;
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
      ev.accumulate(s, act, n);
    }
  }
  reducer.sum(ev.totals());
  EvalResult r = ev.finish(params);
  ev.class_mean_difference(dlt, p0, p1);
  return r;
}

// OP_l w = p0 p1 Delta_l (Delta_l^T w), level by level, in the parameter layout (biases 0).
View1<real> operator_on_weights(const TreeShape& tree, const View1<real>& params, const View1<real>& dlt, double w01) {
  const TreeShape t = tree;
  const int hid = t.hid, depth = t.depth;
  const View2<real> dtw("stats.covop_delta_t_w", depth, hid);  // Delta_l^T w_l
  Kokkos::parallel_for(
      "stats::covop_delta_t_w", range(depth * hid), KOKKOS_LAMBDA(const std::int64_t idx) {
        const int l = static_cast<int>(idx / hid), a = static_cast<int>(idx % hid);
        double s = 0.0;
        for (int node = t.level_start[l]; node < t.level_start[l + 1]; ++node) {
          const int in = t.in_size(node);
          const std::int64_t wo = t.param_offset(node), co = t.conn_offset(node);
          for (int i = 0; i < in; ++i)
            for (int b = 0; b < hid; ++b)
              s += dlt(co + (static_cast<std::int64_t>(i) * hid + a) * hid + b) *
                   params(wo + static_cast<std::int64_t>(b) * in + i);
        }
        dtw(l, a) = s;
      });
  const View1<real> opw("stats.covop_op_w", t.n_params());
  Kokkos::parallel_for(
      "stats::covop_op_w", range(t.n_latent * hid), KOKKOS_LAMBDA(const std::int64_t idx) {
        const int node = static_cast<int>(idx / hid), b = static_cast<int>(idx % hid);
        const int in = t.in_size(node), l = t.level_of(node);
        const std::int64_t wo = t.param_offset(node), co = t.conn_offset(node);
        for (int i = 0; i < in; ++i) {
          double s = 0.0;
          for (int a = 0; a < hid; ++a) s += dlt(co + (static_cast<std::int64_t>(i) * hid + a) * hid + b) * dtw(l, a);
          opw(wo + static_cast<std::int64_t>(b) * in + i) = w01 * s;
        }
      });
  return opw;
}

// Per level: |g|^2, <g, OPw>, |OPw|^2, |residue|^2, |w|^2 of the variant whose gradient
// totals start at grad_total(base).
constexpr int kProducts = 5;
View2<real> level_products(const TreeShape& tree, const View1<real>& params, const View1<std::int64_t>& grad_total,
                           std::int64_t base, const View1<real>& opw, double s_alpha) {
  const TreeShape t = tree;
  const int hid = t.hid;
  const View2<real> prod("stats.covop_products", t.depth, kProducts);
  Kokkos::parallel_for(
      "stats::covop_level_products", range(t.depth), KOKKOS_LAMBDA(const std::int64_t l) {
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
  return prod;
}

// The mean pair weight beta by (anchor root, negative root) of one variant; NaN for a pair
// that never occurred.
void mean_pair_weights(const View1<std::int64_t>::HostMirror& h_pair, int v, double alpha_pair[4]) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int q = 0; q < 4; ++q) {
    const std::int64_t n = h_pair(v * kPairSlots + 4 + q);
    alpha_pair[q] = n > 0 ? from_fixed(h_pair(v * kPairSlots + q), kStatFixed) / static_cast<double>(n) : nan;
  }
}

// The rows of variant v, level by level (and, for the first variant, the per-level norms).
void add_rows(const TreeShape& t, const View1<real>& params, const Variant& var, int v, const GradientTotals& totals,
              const View1<std::int64_t>::HostMirror& h_grad, const View1<std::int64_t>::HostMirror& h_pair,
              const View1<real>& opw, int negs, CovopCheckResult* res) {
  double alpha_pair[4];
  mean_pair_weights(h_pair, v, alpha_pair);
  // s_alpha = H (alpha_01 + alpha_10) / 2; exactly 1 for simp (beta = 1/H for every pair).
  const double s_alpha = var.loss == "simp" ? 1.0 : negs * 0.5 * (alpha_pair[1] + alpha_pair[2]);
  const std::int64_t base = v * (t.n_params() + 2);
  const auto h_prod = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(),
                                                          level_products(t, params, totals.grad, base, opw, s_alpha));
  const double loss_mean = from_fixed(h_grad(base + t.n_params()));
  for (int l = 0; l < t.depth; ++l) {
    CovopCheckRow r;
    r.loss = var.loss;
    r.tau = var.tau;
    r.level = l;
    r.loss_mean = loss_mean;
    r.grad_norm = std::sqrt(h_prod(l, 0));
    r.pred_norm = 2.0 * std::fabs(s_alpha) * std::sqrt(h_prod(l, 2));
    r.alpha = s_alpha;
    r.residue_norm = std::sqrt(h_prod(l, 3));
    r.rel_residue = r.residue_norm / r.grad_norm;
    r.cosine = -h_prod(l, 1) / std::sqrt(h_prod(l, 0) * h_prod(l, 2));
    std::copy(alpha_pair, alpha_pair + 4, r.alpha_pairs);
    res->rows.push_back(r);
    if (v == 0) {
      res->weight_norm.push_back(std::sqrt(h_prod(l, 4)));
      res->op_norm.push_back(std::sqrt(h_prod(l, 2)));
    }
  }
}

}  // namespace

CovopCheckResult covop_check(const NetworkShape& net, const View1<real>& params, const View1<real>& polarity,
                             const CovopCheckSpec& spec, const World& world, Reducer& reducer) {
  const TreeShape& t = net.tree;
  check_sizes(spec);
  const std::vector<Variant> vars = variants(spec, t.hid);
  const int nv = static_cast<int>(vars.size());
  const std::int64_t n_params = t.n_params(), stride = n_params + 2;

  // ---- The mean gradient of every variant, over the same items. ----
  const GradientTotals totals(stride, nv);
  add_gradients(net, params, polarity, spec, vars, world, totals);
  reducer.sum(totals.grad);
  reducer.sum(totals.pair);
  reducer.sum(totals.dist);
  auto h_grad = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), totals.grad);
  auto h_pair = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), totals.pair);
  auto h_dist = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), totals.dist);
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
  res.d2_neg = 0.5 * from_fixed(h_dist(1), kStatFixed) / (static_cast<double>(spec.items) * spec.negatives);
  const View1<real> dlt("stats.covop_delta", t.n_conn());
  res.eval = class_means(net, params, polarity, spec, world, reducer, dlt, &res.p0, &res.p1);

  // ---- Per variant and level: the gradient against 2 s_alpha OP_l w. ----
  const View1<real> opw = operator_on_weights(t, params, dlt, res.p0 * res.p1);
  for (int v = 0; v < nv; ++v) add_rows(t, params, vars[v], v, totals, h_grad, h_pair, opw, spec.negatives, &res);
  return res;
}

}  // namespace dualnet
